#!/bin/sh
# packaging/install-deps.sh, with apt-get, dpkg-query, systemctl and the account and mount
# commands replaced by stubs that log: the services of the packages it installs for the tests
# and the benchmark only (nginx on :80, prometheus on :9090, fail2ban on the host's logs) are
# disabled, and those of packages that were there before are left alone.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: install-deps.sh runs as root"
	exit 77
fi
script=$(dirname "$0")/../../packaging/install-deps.sh
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
log=$stub/log
# installed: everything but these
cat >"$stub/dpkg-query" <<'EOS'
#!/bin/sh
for a; do p=$a; done
case " nginx-light prometheus fail2ban " in
*" $p "*) printf 'not-installed' ;;
*) printf 'installed' ;;
esac
EOS
for c in apt-get systemctl groupadd useradd mount install; do
	printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$c" "$log" >"$stub/$c"
done
chmod +x "$stub"/*
PATH=$stub:$PATH sh "$script" --test --bench >"$stub/out" 2>&1 || {
	cat "$stub/out"
	echo "FAIL: install-deps.sh exited non-zero"
	exit 1
}
fail=0
for svc in nginx prometheus fail2ban; do
	if ! grep -q "^systemctl disable.* $svc.service" "$log"; then
		echo "FAIL: $svc.service was not disabled"
		fail=1
	fi
done
if grep "^systemctl" "$log" | grep -Ev " (nginx|prometheus|fail2ban)\.service"; then
	echo "FAIL: a service of a package installed before was touched"
	fail=1
fi
for p in nginx-light prometheus fail2ban; do
	if ! grep "^apt-get .* install " "$log" | grep -q " $p\b"; then
		echo "FAIL: apt-get install did not get $p, which is missing"
		fail=1
	fi
done
cat "$log"
exit $fail
