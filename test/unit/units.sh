#!/bin/sh
# The systemd units parse, and their exposure stays where it is: the analyzer runs with no
# capability and a tight sandbox (<= 2.0), the loader, which must start as root, <= 5.0 (thresholds in tenths).
set -eu
dir=$(dirname "$0")/../../packaging/systemd
if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze not installed"
	exit 77
fi
fail=0
check() {
	unit=$dir/$1
	if ! out=$(systemd-analyze security --offline=true --threshold="$2" "$unit" 2>&1); then
		printf '%s\n' "$out" | tail -3
		echo "FAIL: $1: exposure above $2 (or the unit does not parse)"
		fail=1
	else
		printf '%s: %s\n' "$1" "$(printf '%s\n' "$out" | tail -1)"
	fi
	# verify: everything but the missing installed binary is an error
	if systemd-analyze verify "$unit" 2>&1 | grep -v 'is not executable: No such file' | grep .; then
		echo "FAIL: $1: systemd-analyze verify complains"
		fail=1
	fi
}
check ebpfmon-loader.service 50
check ebpfmon-analyzer.service 20
exit $fail
