#!/bin/sh
# The systemd units parse, and their exposure stays where it is (systemd-analyze security
# --offline=true, thresholds in tenths): the loader, which must start as root with seven
# capabilities, 1.9; the analyzer, with no capability, 1.9. test/integration/test_units.py
# checks that their settings suffice.
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
	# verify: everything but the missing installed binary is an error (the Documentation= man
	# pages are those of the package: not looked up)
	if systemd-analyze verify --man=no "$unit" 2>&1 |
		grep -v 'is not executable: No such file' | grep .; then
		echo "FAIL: $1: systemd-analyze verify complains"
		fail=1
	fi
}
check ebpfmon-loader.service 19
check ebpfmon-analyzer.service 19
exit $fail
