#!/bin/bash
# shellcheck disable=SC2317 # cleanup() and what it calls run from the EXIT trap
# ebpfmon quick start, as root: install what is missing, build, install, then run
# ebpfmon-loader and ebpfmon-analyzer in the foreground with the installed configuration.
# --demo runs them on a veth pair to a network namespace it makes, sends a probe and a
# connection flood from there, and removes at exit what the demo made (the installation
# stays). `--help` for the rest.
set -euo pipefail

prog=quickstart.sh
src=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<'EOF'
Usage: sudo packaging/quickstart.sh [OPTION]...
Install what ebpfmon needs (apt-get only for missing packages), build it in build/, install
it with `cmake --install build` (programs in /usr/local/sbin and /usr/local/bin, man pages,
bash completion, /etc/ebpfmon/ebpfmon.conf only when there is none), then run
ebpfmon-loader and ebpfmon-analyzer in the foreground with /etc/ebpfmon/ebpfmon.conf.
XDP goes on the configured interfaces, by default on the interface of the default route.
Edit the configuration and `kill -HUP` the analyzer to reload it. Ctrl-C stops both and
detaches every program; pins this run created are removed (the analyzer's database keeps the
bans and restores them at the next start).

  -i, --interface IFACE  attach to IFACE instead (repeatable)
  -c, --config FILE      run with FILE (default /etc/ebpfmon/ebpfmon.conf; with
                         --no-install and no such file, conf/ebpfmon.conf of the source)
      --no-install       no apt-get, no build, no install: run the programs of the build
                         folder as they are (what the CMake target `run` does)
      --build-dir DIR    the build folder (default: build/ of the source tree)
      --demo             run on a veth pair between two network namespaces made for the
                         demo, on a /24 of 198.18.0.0/15 that this host does not use, with
                         a demo configuration, a web server on port 8080 and a peer
                         that requests /wp-admin and floods connections: bans within
                         seconds. Installs as above (unless --no-install) but runs
                         with its own configuration and touches none of the host's
                         interfaces; removes at exit what the demo made (namespaces,
                         pins, its configuration, socket and database)
      --demo-seconds N   with --demo: stop N seconds after the demo's traffic (default: at
                         Ctrl-C)
  -h, --help             this text

Exit status: 0 stopped by Ctrl-C (or after --demo-seconds), 1 failure, 2 bad option.

EXAMPLES
  sudo packaging/quickstart.sh
  sudo packaging/quickstart.sh -i eth1
  sudo packaging/quickstart.sh --demo
  sudo cmake --build build --target run
EOF
}

say() { printf '%s: %s\n' "$prog" "$*"; }
die() {
	printf '%s: %s\n' "$prog" "$1" >&2
	# before the EXIT trap is set, the run's temporary folder is removed here
	[ -n "${tmp:-}" ] && [ -z "${cleanup_set:-}" ] && rm -rf "$tmp"
	exit "${2:-1}"
}

ifaces=()
conf=""
install=1
build=$src/build
demo=0
demo_seconds=""
while [ $# -gt 0 ]; do
	case "$1" in
	-i | --interface)
		[ $# -ge 2 ] || die "$1 needs an interface name" 2
		ifaces+=("$2")
		shift
		;;
	-c | --config)
		[ $# -ge 2 ] || die "$1 needs a file" 2
		conf=$2
		shift
		;;
	--no-install) install=0 ;;
	--build-dir)
		[ $# -ge 2 ] || die "$1 needs a folder" 2
		build=$(realpath -m "$2")
		shift
		;;
	--demo) demo=1 ;;
	--demo-seconds)
		if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]{1,5}$ ]]; then
			die "$1 needs a number of seconds (0..99999)" 2
		fi
		demo_seconds=$((10#$2))
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown option '$1'" 2
		;;
	esac
	shift
done
if [ "$demo" = 1 ] && { [ ${#ifaces[@]} -gt 0 ] || [ -n "$conf" ]; }; then
	die "--demo makes its own interface and configuration: no -i or -c with it" 2
fi
if [ -n "$demo_seconds" ] && [ "$demo" = 0 ]; then
	die "--demo-seconds goes with --demo" 2
fi
if [ "$(id -u)" -ne 0 ]; then
	die "run as root (sudo $0): the loader attaches XDP and pins maps, then drops privileges"
fi
# The daemons log to this terminal, not to a journal stream inherited from a service.
unset JOURNAL_STREAM NOTIFY_SOCKET

# --- install, build, and find the programs --------------------------------------------
if [ "$install" = 1 ]; then
	if [ "$demo" = 1 ]; then
		"$src/packaging/install-deps.sh" --demo
	else
		"$src/packaging/install-deps.sh"
	fi
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build "$build" -j"$(nproc)"
	cmake --install "$build"
	installed() {
		grep -m1 "/$1\$" "$build/install_manifest.txt" ||
			die "cmake --install did not install $1"
	}
	loader=$(installed ebpfmon-loader)
	analyzer=$(installed ebpfmon-analyzer)
	ctl=$(installed ebpfmonctl)
else
	loader=$build/loader/ebpfmon-loader
	analyzer=$build/analyzer/ebpfmon-analyzer
	ctl=$build/ctl/ebpfmonctl
	for p in "$loader" "$analyzer" "$ctl"; do
		[ -x "$p" ] || die "$p is missing: build first (cmake -S . -B build && cmake --build build)"
	done
	if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
		mount -t bpf bpf /sys/fs/bpf
	fi
fi
if [ "$demo" = 1 ]; then
	for t in python3 curl; do
		command -v "$t" >/dev/null || die "--demo needs $t (packaging/install-deps.sh --demo)"
	done
	# Debian's interpreter when there is one: the web server runs as nobody, who may not
	# enter a python3 installed under a home folder.
	py=/usr/bin/python3
	[ -x "$py" ] || py=$(command -v python3)
fi

# How to print a command: its bare name when PATH finds this very file.
cmd_name() {
	local found
	found=$(command -v "$(basename "$1")" 2>/dev/null || true)
	if [ -n "$found" ] && [ "$(realpath "$found")" = "$(realpath "$1")" ]; then
		basename "$1"
	else
		printf '%s' "$1"
	fi
}
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)

# --- the configuration ----------------------------------------------------------------
# Everything this run makes outside the kernel: logs, the demo's configuration, socket and
# database. PID in the name: a later demo finds what a killed one left.
if [ "$demo" = 1 ]; then
	tmp=$(mktemp -d "/tmp/ebpfmon-demo-$$.XXXXXX")
else
	tmp=$(mktemp -d "/tmp/ebpfmon-quickstart-$$.XXXXXX")
fi
chmod 0755 "$tmp" # user ebpfmon reads the configuration when it is here
log=$tmp/daemons.log
# held open here: a tee that starts after an early failure removed $tmp still has the file
exec {log_fd}>"$log"

loader_pid=""
analyzer_pid=""
http_pid=""
traffic_pid=""
loader_ready=0
pins_before=1
mon_ns=""
peer_ns=""
stopping=0

# conf_get SECTION KEY DEFAULT: the value in $conf (the last one wins), else DEFAULT.
conf_get() {
	awk -v sec="$1" -v key="$2" '
		/^[ \t]*[#;]/ { next }
		/^[ \t]*\[/ { s = $0; sub(/^[ \t]*\[/, "", s); sub(/\].*$/, "", s); cur = s; next }
		cur == sec {
			i = index($0, "=")
			if (!i) next
			k = substr($0, 1, i - 1); gsub(/^[ \t]+|[ \t]+$/, "", k)
			if (k != key) next
			v = substr($0, i + 1); sub(/[ \t];.*$/, "", v); gsub(/^[ \t]+|[ \t]+$/, "", v)
			val = v; found = 1
		}
		END { if (found) print val; else exit 1 }' "$conf" || printf '%s\n' "$3"
}

demo_net=""        # the first three octets of the demo's /24, chosen by demo_network
mon_if="dmon-$$"  # in the demo's namespaces; the PID tells demos apart in logs
peer_if="dpeer-$$"
http_port=8080
conn_limit=5
if [ "$demo" = 1 ]; then
	pin_root=/sys/fs/bpf/ebpfmon-demo-$$
	install -d -o ebpfmon -g ebpfmon -m 0750 "$tmp/api"
	install -d -o ebpfmon -g ebpfmon -m 0700 "$tmp/db"
	conf=$tmp/ebpfmon.conf
	cat >"$conf" <<EOF
# ebpfmon demo configuration (packaging/quickstart.sh --demo): a private pin root, API
# socket and database, a low connection limit and one-minute bans.
[network]
interfaces = $mon_if
max_connections_per_ip = $conn_limit
ban_duration = 1m
monitoring_interval = 2s
http_ports = $http_port
malicious_url_patterns = /wp-admin, /.env
allowlist = 127.0.0.0/8, ::1

[api]
uds_socket_path = $tmp/api/api.sock

[database]
sqlite_path = $tmp/db/ebpfmon.db

[loader]
pin_root = $pin_root
EOF
	chmod 0644 "$conf"
elif [ -z "$conf" ]; then
	conf=/etc/ebpfmon/ebpfmon.conf
	if [ "$install" = 0 ] && [ ! -e "$conf" ]; then
		conf=$src/conf/ebpfmon.conf
	fi
fi
[ -r "$conf" ] || die "cannot read the configuration $conf"
conf=$(realpath "$conf")
user=$(conf_get loader user ebpfmon)
group=$(conf_get loader group ebpfmon)
pin_root=$(conf_get loader pin_root /sys/fs/bpf/ebpfmon)
sock=$(conf_get api uds_socket_path /run/ebpfmon/api.sock)
sock=${sock#ipc://}
db=$(conf_get database sqlite_path /var/lib/ebpfmon/ebpfmon.db)
getent passwd "$user" >/dev/null ||
	die "no user '$user' to run as: packaging/install-deps.sh creates it"

# The analyzer reads the configuration as $user: a file in a folder closed to it (a checkout
# under /root) is run from a copy, and the reload advice below names the copy.
if ! setpriv --reuid "$user" --regid "$group" --init-groups test -r "$conf"; then
	cp "$conf" "$tmp/ebpfmon.conf"
	chmod 0644 "$tmp/ebpfmon.conf"
	say "user $user cannot read $conf: running a copy, $tmp/ebpfmon.conf (edit that one;" \
		"it goes away at exit)"
	conf=$tmp/ebpfmon.conf
fi
# The folders of the socket and the database (/run is empty after a reboot).
for d in "$(dirname "$sock")" "$(dirname "$db")"; do
	[ -d "$d" ] || install -d -o "$user" -g "$group" -m 0750 "$d"
done

# --- the demo's network: mon namespace <-veth-> peer namespace ------------------------
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# demo_alive PID: a quick start runs as PID (not a zombie, not another program).
demo_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q quickstart.sh
}

# What a demo killed with SIGKILL left: its namespaces, pins, processes and folder carry
# its PID; those of PIDs that no longer run are removed.
reap_stale_demos() {
	local f pid p
	for f in /run/netns/ebpfmon-demo-mon-* /run/netns/ebpfmon-demo-peer-* \
		/sys/fs/bpf/ebpfmon-demo-* /tmp/ebpfmon-demo-*.*; do
		[ -e "$f" ] || continue
		pid=${f##*-}
		pid=${pid%%.*}
		[[ $pid =~ ^[0-9]+$ ]] || continue
		demo_alive "$pid" && continue
		say "removing $f, left by demo $pid"
		case "$f" in
		/run/netns/*) ip netns del "$(basename "$f")" || true ;;
		/sys/fs/bpf/*)
			for p in /proc/[0-9]*; do
				if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -q "^/tmp/ebpfmon-demo-$pid\."; then
					kill -KILL "${p#/proc/}" 2>/dev/null || true
				fi
			done
			sleep 0.2
			"$loader" --unload --pin-root "$f" >/dev/null 2>&1 || rm -rf "$f"
			;;
		/tmp/*) rm -rf "$f" ;;
		esac
	done
}

# free_demo_net: the first three octets of a /24 of 198.18.0.0/15 (from 198.18.100.0 on) that
# overlaps no IPv4 address or route of this host (the default route aside) nor an address of
# another demo's namespaces, so that the demo's addresses name nobody else's.
free_demo_net() {
	local ns
	{
		ip -o -4 addr show | awk '{ print $4 }'
		# a route's destination, after its type when it has one
		ip -4 route show table all | awk '
			BEGIN {
				n = split("unicast local broadcast multicast throw unreachable " \
					"prohibit blackhole nat anycast", t, " ")
				for (i = 1; i <= n; i++) type[t[i]] = 1
			}
			{ print(($1 in type) ? $2 : $1) }'
		for ns in /run/netns/ebpfmon-demo-mon-* /run/netns/ebpfmon-demo-peer-*; do
			[ -e "$ns" ] || continue
			ip -n "$(basename "$ns")" -o -4 addr show 2>/dev/null | awk '{ print $4 }'
		done
	} | "$py" -c '
import ipaddress, sys
used = []
for word in sys.stdin.read().split():
    try:
        net = ipaddress.ip_network(word, strict=False)
    except ValueError:
        continue  # "default" and the like
    if net.prefixlen > 0:
        used.append(net)
nets = list(ipaddress.ip_network("198.18.0.0/15").subnets(new_prefix=24))
start = nets.index(ipaddress.ip_network("198.18.100.0/24"))
for net in nets[start:] + nets[:start]:
    if not any(net.overlaps(u) for u in used):
        print(str(net.network_address).rsplit(".", 1)[0])
        sys.exit(0)
sys.exit(1)'
}

demo_network() {
	local lock_fd
	mon_ns=ebpfmon-demo-mon-$$
	peer_ns=ebpfmon-demo-peer-$$
	# one demo at a time between choosing a subnet and taking its addresses
	exec {lock_fd}>/run/lock/ebpfmon-demo.lock
	flock -w 30 "$lock_fd" || die "demo: /run/lock/ebpfmon-demo.lock is held by another demo"
	demo_net=$(free_demo_net) ||
		die "demo: every /24 of 198.18.0.0/15 overlaps an address or a route of this host"
	ip netns add "$mon_ns"
	ip netns add "$peer_ns"
	in_ns "$mon_ns" ip link add "$mon_if" type veth peer name "$peer_if" netns "$peer_ns"
	in_ns "$mon_ns" ip link set lo up
	in_ns "$mon_ns" ip addr add "$demo_net.1/24" dev "$mon_if"
	in_ns "$mon_ns" ip link set "$mon_if" up
	in_ns "$peer_ns" ip link set lo up
	in_ns "$peer_ns" ip addr add "$demo_net.2/24" dev "$peer_if"
	in_ns "$peer_ns" ip addr add "$demo_net.3/24" dev "$peer_if"
	in_ns "$peer_ns" ip link set "$peer_if" up
	exec {lock_fd}>&-
	say "demo: subnet $demo_net.0/24 (free on this host: no address or route of it here)"
	say "demo: namespace $mon_ns ($mon_if, $demo_net.1) <-veth-> namespace $peer_ns" \
		"($peer_if, $demo_net.2 and $demo_net.3)"
}

# --- stopping -------------------------------------------------------------------------
# stop_pid PID NAME: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$2 (pid $pid) still runs 10 s after SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# The interfaces the loader attached to, from its log.
attached_ifaces() {
	sed -n 's/^ebpfmon-loader: info: interface \([^ ]*\) (ifindex.*XDP attached.*/\1/p' "$log" |
		sort -u
}

cleanup() {
	local rc=$? ifn out
	trap '' INT TERM HUP
	set +e
	[ "$stopping" = 1 ] && rc=0
	echo
	say "stopping"
	if [ -n "$traffic_pid" ]; then
		kill -TERM -- "-$traffic_pid" 2>/dev/null
		wait "$traffic_pid" 2>/dev/null
	fi
	stop_pid "$http_pid" "the demo's web server"
	stop_pid "$analyzer_pid" ebpfmon-analyzer
	stop_pid "$loader_pid" ebpfmon-loader
	if [ "$loader_ready" = 1 ]; then
		for ifn in $(attached_ifaces); do
			if [ -n "$mon_ns" ]; then
				out=$(in_ns "$mon_ns" ip -d link show dev "$ifn" 2>&1)
			else
				out=$(ip -d link show dev "$ifn" 2>&1)
			fi
			if grep -Eq '\bxdp(generic|drv|offload)?\b|prog/xdp' <<<"$out"; then
				say "XDP is still attached to $ifn (ip -d link show dev $ifn):" \
					"\`$(cmd_name "$loader") --unload --pin-root $pin_root\` detaches it"
				rc=1
			else
				say "$ifn: no XDP attached any more"
			fi
		done
	fi
	if [ "$loader_ready" = 1 ] && [ "$pins_before" = 0 ]; then
		if "$loader" --unload --pin-root "$pin_root" >/dev/null 2>&1; then
			say "removed the pins under $pin_root"
		else
			say "could not remove the pins under $pin_root:" \
				"$(cmd_name "$loader") --unload --pin-root $pin_root"
			rc=1
		fi
	elif [ "$loader_ready" = 1 ]; then
		say "the maps stay pinned under $pin_root as before this run" \
			"(\`$(cmd_name "$loader") --unload\` removes them)"
	fi
	if [ -n "$mon_ns" ]; then
		ip netns del "$mon_ns" 2>/dev/null
		ip netns del "$peer_ns" 2>/dev/null
		# A demo's pin root is its own, whatever happened.
		[ -e "$pin_root" ] && { "$loader" --unload --pin-root "$pin_root" >/dev/null 2>&1 ||
			rm -rf "$pin_root"; }
		say "demo: removed namespaces $mon_ns and $peer_ns (and the veth pair), the pins" \
			"under $pin_root and $tmp"
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
cleanup_set=1
trap 'stopping=1' INT TERM HUP

# --- start ----------------------------------------------------------------------------
# start NAME COMMAND...: COMMAND in the background, its output on this terminal and in
# $log. tee ignores Ctrl-C so that the daemons' last lines still have a reader.
start() {
	shift
	"$@" > >(
		trap '' INT TERM HUP
		exec tee -a "/dev/fd/$log_fd"
	) 2>&1 &
}

# wait_log PID REGEX SECONDS: until the log has a line matching REGEX; 1 when PID exits or
# SECONDS pass first.
wait_log() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -Eq "$2" "$log" && return 0
		kill -0 "$1" 2>/dev/null || return 1
		[ "$stopping" = 1 ] && return 1
		sleep 0.1
	done
	return 1
}

if [ "$demo" = 1 ]; then
	reap_stale_demos
	[ ! -e "$pin_root" ] || die "$pin_root exists already"
	demo_network
fi
[ -e "$pin_root" ] || pins_before=0

loader_cmd=("$loader" -c "$conf")
for ifn in "${ifaces[@]}"; do
	loader_cmd+=(-i "$ifn")
done
if [ "$demo" = 1 ]; then
	loader_cmd=(nsenter --net="/run/netns/$mon_ns" -- "${loader_cmd[@]}")
fi
start loader "${loader_cmd[@]}"
loader_pid=$!
if ! wait_log "$loader_pid" '^ebpfmon-loader: info: ready:' 60; then
	[ "$stopping" = 1 ] && exit 0
	die "ebpfmon-loader did not get ready (its messages are above)"
fi
loader_ready=1

start analyzer setpriv --reuid "$user" --regid "$group" --init-groups --inh-caps=-all \
	--bounding-set=-all "$analyzer" -c "$conf" --wait 10
analyzer_pid=$!
if ! wait_log "$analyzer_pid" '^ebpfmon-analyzer: info: ready:' 30; then
	[ "$stopping" = 1 ] && exit 0
	die "ebpfmon-analyzer did not get ready (its messages are above)"
fi

ctl_cmd=$(cmd_name "$ctl")
[ "$sock" = /run/ebpfmon/api.sock ] || ctl_cmd="$ctl_cmd -s $sock"
where=$(attached_ifaces | paste -sd, - | sed 's/,/, /g')
cat <<EOF

$prog: ebpfmon runs: XDP on ${where:-?}$([ "$demo" = 1 ] && echo " (in namespace $mon_ns)")
  configuration  $conf
                 (edit it, then \`kill -HUP $analyzer_pid\` makes the analyzer reload it)
  API socket     $sock
  database       $db
  pins           $pin_root
  log            the lines above and below (ebpfmon-loader:, ebpfmon-analyzer:)
Next, in another terminal:
  $ctl_cmd status
  $ctl_cmd bans
  $(cmd_name "$bpftool") map dump pinned $pin_root/maps/counters
$([ "$demo" = 1 ] && echo "Ctrl-C stops the demo and removes everything it made." ||
	echo "Ctrl-C stops both and detaches the programs.")

EOF

# --- the demo's traffic ---------------------------------------------------------------
# peer_curl SRC PATH SECONDS: the HTTP status of a request from SRC, or 000 (no answer).
peer_curl() {
	in_ns "$peer_ns" curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time "$3" \
		--interface "$1" "http://$demo_net.1:$http_port$2" || true
}

# wait_ban ADDR SECONDS: until `ebpfmonctl bans` lists ADDR.
wait_ban() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		"$ctl" -s "$sock" bans 2>/dev/null | grep -qFw "$1" && return 0
		sleep 0.2
	done
	return 1
}

# The flood: up to 20 connections from one address, held open, each given 1 s to connect;
# it stops at the first that gets no answer.
flood_py='
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
held, refused = [], ""
for i in range(1, 21):
    s = socket.socket()
    s.settimeout(1.0)
    s.bind((src, 0))
    try:
        s.connect((dst, port))
    except OSError as e:
        refused = f"connection {i}: no answer ({e.__class__.__name__}): banned"
        s.close()
        break
    held.append(s)
print(f"{len(held)} connections established and held")
if refused:
    print(refused)
'

# The web server in the monitor namespace, as nobody, serving a folder of this run.
demo_http() {
	mkdir -p "$tmp/www/wp-admin"
	echo "ebpfmon demo" >"$tmp/www/index.html"
	echo "not for you" >"$tmp/www/wp-admin/index.html"
	chmod -R a+rX "$tmp/www"
	nsenter --net="/run/netns/$mon_ns" -- setpriv --reuid nobody --regid nogroup \
		--clear-groups "$py" -m http.server "$http_port" --bind "$demo_net.1" \
		--directory "$tmp/www" >"$tmp/http.log" 2>&1 &
	http_pid=$!
}

# The peer's requests and connections, then `ebpfmonctl bans`; 1 when a step fails.
demo_traffic() {
	local code i
	for ((i = 0; i < 50; i++)); do
		code=$(peer_curl "$demo_net.2" / 1)
		[ "$code" = 200 ] && break
		sleep 0.2
	done
	say "demo: $demo_net.2 GET / -> HTTP $code (web server on $demo_net.1:$http_port)"
	[ "$code" = 200 ] || { say "demo: the web server does not answer"; return 1; }

	sleep 2
	code=$(peer_curl "$demo_net.2" /wp-admin/ 3)
	say "demo: $demo_net.2 GET /wp-admin/ -> $([ "$code" = 000 ] && echo "no answer: the" \
		"request was dropped before the web server read it (URL rule /wp-admin)" ||
		echo "HTTP $code")"
	wait_ban "$demo_net.2" 10 || { say "demo: no ban of $demo_net.2 within 10 s"; return 1; }

	sleep 1
	say "demo: $demo_net.3 opens connections to $demo_net.1:$http_port" \
		"(max_connections_per_ip = $conn_limit)"
	in_ns "$peer_ns" "$py" -c "$flood_py" "$demo_net.3" "$demo_net.1" "$http_port" |
		sed "s/^/$prog: demo:   /"
	wait_ban "$demo_net.3" 10 || { say "demo: no ban of $demo_net.3 within 10 s"; return 1; }

	code=$(peer_curl "$demo_net.2" / 2)
	say "demo: $demo_net.2 GET / -> $([ "$code" = 000 ] && echo "no answer: banned" ||
		echo "HTTP $code")"
	say "demo: $ctl_cmd bans"
	"$ctl" -s "$sock" bans
	echo
	say "demo: the bans end after a minute (ban_duration = 1m); a repeat offender's" \
		"ban lasts longer"
}

rc=0
if [ "$demo" = 1 ]; then
	demo_http
	# In a process group of its own (set -m), so that the cleanup stops all of it at once
	# and the script's trap runs as soon as Ctrl-C comes (during `wait`).
	set -m
	demo_traffic &
	traffic_pid=$!
	set +m
	wait "$traffic_pid" || rc=$?
	[ "$stopping" = 1 ] && exit 0
	traffic_pid=""
	[ "$rc" = 0 ] || exit 1
	if [ "$demo_seconds" = 0 ]; then
		exit 0
	elif [ -n "$demo_seconds" ]; then
		say "demo: stopping in $demo_seconds s (or at Ctrl-C)"
	else
		say "demo: running until Ctrl-C"
	fi
fi

# Until Ctrl-C, --demo-seconds, or the end of a daemon.
deadline=""
[ -n "$demo_seconds" ] && deadline=$((SECONDS + demo_seconds))
while [ "$stopping" = 0 ]; do
	if ! kill -0 "$loader_pid" 2>/dev/null; then
		wait "$loader_pid" || rc=$?
		say "ebpfmon-loader exited (status $rc)"
		rc=1
		break
	fi
	if ! kill -0 "$analyzer_pid" 2>/dev/null; then
		wait "$analyzer_pid" || rc=$?
		say "ebpfmon-analyzer exited (status $rc)"
		rc=1
		break
	fi
	if [ -n "$deadline" ] && [ "$SECONDS" -ge "$deadline" ]; then
		break
	fi
	sleep 0.5 &
	wait $! || true
done
exit "$rc"
