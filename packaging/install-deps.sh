#!/bin/sh
# Install what ebpfmon needs on Debian 12, as root. Idempotent.
#   packaging/install-deps.sh          build and run dependencies
#   packaging/install-deps.sh --test   also what the tests use
#   packaging/install-deps.sh --demo   also what packaging/quickstart.sh --demo uses
#   packaging/install-deps.sh --dev    also the developer's tools: the lint and fmt targets
#   packaging/install-deps.sh --bench  also the peers test/bench/run-all measures against
# It also creates the system user and group `ebpfmon` that the daemons run as and their
# folders /var/lib/ebpfmon and /run/ebpfmon (what the .deb does through sysusers.d and
# tmpfiles.d), and mounts bpffs on /sys/fs/bpf when nothing is there.
set -eu

want_test=0
want_demo=0
want_dev=0
want_bench=0
for arg in "$@"; do
	case "$arg" in
	--test) want_test=1 ;;
	--demo) want_demo=1 ;;
	--dev) want_dev=1 ;;
	--bench) want_bench=1 ;;
	*) echo "install-deps.sh: unknown option '$arg' (use --test, --demo, --dev or --bench)" >&2; exit 2 ;;
	esac
done
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (apt-get, useradd, mount)" >&2
	exit 1
fi

# sqlite3 and man-db: the README's commands read the database and the installed man pages
pkgs="build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
	libnng-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev libinih-dev
	libsystemd-dev libjson-c-dev iproute2 sqlite3 man-db"
# nginx-light, curl, python3-scapy, procps: test/integration/test_detection.py (nginx runs in a
# namespace of the test; the package's own service is disabled below)
# prometheus: its promtool checks /metrics in test/integration/test_metrics.py (the package's
# own server is disabled below)
# python3-seccomp, systemd (systemd-analyze): test/integration/test_units.py applies the units'
# system call filters; dpkg-dev (dpkg-shlibdeps): test/integration/test_package.py
# openssl: the CA and certificates of the tls+tcp:// test in test/integration/test_api.py
# protobuf-compiler (protoc), nng-utils (nngcat): docs/api.md's shell client, run by test_api.py
# clang-format: the unit test unit_fmt_check (the C sources as .clang-format says)
test_pkgs="libcmocka-dev python3 iputils-ping netcat-openbsd util-linux sqlite3 systemd
	nginx-light curl python3-scapy procps prometheus python3-seccomp dpkg-dev openssl
	protobuf-compiler nng-utils clang-format"
# the demo's web server (python3 -m http.server) and its client (curl)
demo_pkgs="python3 curl"
# the lint target (cppcheck, clang-tidy of LLVM 14 like clang; its run-clang-tidy is Python) and
# the fmt target (clang-format); not needed to build or to test
dev_pkgs="cppcheck clang-tidy clang-format python3"
# the peers of test/bench/run-all: xdp-filter, fail2ban (with the inotify backend Debian
# recommends) banning through nftables in front of nginx, iperf3 (Debian starts no daemon of
# it unless asked), CrowdSec and its nftables bouncer (f2b_latency runs them all from private
# configurations; the services the packages enable are disabled below)
bench_pkgs="xdp-tools nftables fail2ban python3-pyinotify iperf3 nginx-light curl
	crowdsec crowdsec-firewall-bouncer"
[ "$want_test" = 1 ] && pkgs="$pkgs $test_pkgs"
[ "$want_bench" = 1 ] && pkgs="$pkgs $bench_pkgs"
[ "$want_demo" = 1 ] && pkgs="$pkgs $demo_pkgs"
[ "$want_dev" = 1 ] && pkgs="$pkgs $dev_pkgs"

# apt only for what is missing: with everything installed, a held dpkg lock or an unrelated
# broken package cannot stop the build.
missing=""
for p in $pkgs; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
		missing="$missing $p"
	fi
done

# apt-get, waiting up to 10 minutes for a lock another apt or dpkg run holds (apt's own
# DPkg::Lock::Timeout covers the dpkg lock, not the package lists' lock of `update`).
apt_wait() {
	err=$(mktemp)
	waited=0
	while ! apt-get -o DPkg::Lock::Timeout=600 "$@" 2>"$err"; do
		if ! grep -q 'Could not get lock' "$err" || [ "$waited" -ge 600 ]; then
			cat "$err" >&2
			rm -f "$err"
			echo "install-deps.sh: apt-get $* failed" >&2
			exit 1
		fi
		[ "$waited" = 0 ] && echo "install-deps.sh: waiting for the apt lock held by another run..." >&2
		sleep 5
		waited=$((waited + 5))
	done
	cat "$err" >&2
	rm -f "$err"
}

if [ -n "$missing" ]; then
	echo "install-deps.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# crowdsec's postinst registers with CrowdSec's Central API unless this file exists and is
	# not empty (README.Debian); offline, the registration fails and so would the install.
	# The benchmark does not use the Central API either.
	capi=/etc/crowdsec/online_api_credentials.yaml
	case "$missing " in
	*" crowdsec "*)
		if [ ! -s "$capi" ]; then
			install -d -m 0755 /etc/crowdsec
			echo "# no Central API registration (written by ebpfmon's install-deps.sh)" >"$capi"
			capi_written=1
		fi
		;;
	esac
	apt_wait update -q
	# shellcheck disable=SC2086
	apt_wait install -y -q --no-install-recommends $missing
	# Installed for the tests and the benchmark only: the services the postinst enables (and,
	# under systemd, starts) would listen on the host (nginx on :80, prometheus on :9090,
	# crowdsec on 127.0.0.1:8080), read the host's logs and ban in the host's nftables
	# (fail2ban's Debian default is an sshd jail). They are disabled whether systemd runs or
	# not (an image booted later), stopped when it runs, and the bouncer's tables are removed
	# (it leaves them when stopped). The tests and benchmarks run each of them with a private
	# configuration of their own. PACKAGE:SERVICE.
	for ps in crowdsec-firewall-bouncer:crowdsec-firewall-bouncer crowdsec:crowdsec \
		fail2ban:fail2ban nginx-light:nginx prometheus:prometheus; do
		case "$missing " in
		*" ${ps%%:*} "*)
			if [ -d /run/systemd/system ]; then
				systemctl disable --now "${ps#*:}.service" || true
			else
				systemctl disable "${ps#*:}.service" || true
			fi
			;;
		esac
	done
	case "$missing " in
	*" crowdsec-firewall-bouncer "*)
		if command -v nft >/dev/null; then
			nft delete table ip crowdsec 2>/dev/null || true
			nft delete table ip6 crowdsec6 2>/dev/null || true
		fi
		;;
	esac
	case "$missing " in
	*" fail2ban "*)
		echo "install-deps.sh: fail2ban is installed for the benchmark only, its service" \
			"disabled (systemctl enable --now fail2ban to use it)"
		;;
	esac
	if [ "${capi_written:-0}" = 1 ]; then
		echo "install-deps.sh: crowdsec is installed for the benchmark only, its services" \
			"disabled; $capi opts this host out of CrowdSec's Central API (delete it" \
			"before using crowdsec for real)"
	fi
fi

if ! getent group ebpfmon >/dev/null; then
	groupadd --system ebpfmon
fi
# the API's admin group ([api] admin_group): its members may ban and unban (sysusers.d does
# the same for the package)
if ! getent group ebpfmon-admin >/dev/null; then
	groupadd --system ebpfmon-admin
fi
if ! getent passwd ebpfmon >/dev/null; then
	useradd --system --gid ebpfmon --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "ebpfmon daemons" ebpfmon
fi

# What packaging/systemd/ebpfmon.tmpfiles sets up on an installed system.
install -d -o ebpfmon -g ebpfmon -m 0750 /var/lib/ebpfmon /run/ebpfmon

if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	mount -t bpf bpf /sys/fs/bpf
fi
