#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of the quick start's demo (packaging/quickstart.sh --demo).

    test_quickstart.py --loader build/loader/ebpfmon-loader --build-dir build \
        --quickstart packaging/quickstart.sh [--only NAME] [-v]

`quickstart.sh --no-install --demo --demo-seconds 0` runs the programs of the build folder on
a veth pair between namespaces it makes, while this host has an address in 198.18.100.0/24
(the demo's first choice) on an interface of its own: the demo must choose another /24 and say
which, its peer must be banned for a URL and for its connections, `ebpfmonctl bans` must list
both, the script must exit 0, and nothing it made may stay: no namespace, no interface, no
process, no pin, no temporary folder. The same once more with Ctrl-C (SIGINT to its process
group) in the middle of the demo.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import BPFFS, NETNS_DIR, log  # noqa: E402

HOST_NET = "198.18.100"  # the demo's first choice, taken on this host by test_demo
RUN_TIMEOUT = 60  # seconds a demo run may take (about 10 s here)


class Run:
    """One run of the quick start in a session of its own (its process group is what a
    terminal's Ctrl-C reaches), with its output collected as it comes."""

    def __init__(self, ctx, *args):
        self.cmd = [ctx.quickstart, "--no-install", "--build-dir", ctx.build_dir] + list(args)
        nstest.vlog("$ " + " ".join(self.cmd))
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        self.lines = []
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()
        nstest.CLEANUP.push(f"stop quickstart.sh (pid {self.pid})", self.kill)

    def _reader(self):
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self.lines.append(text)
            nstest.vlog(f"quickstart[{self.pid}]: {text}")

    def output(self):
        with self._lock:
            return "\n".join(self.lines)

    def wait_line(self, regex, timeout):
        rx = re.compile(regex)
        return nstest.wait_until(lambda: rx.search(self.output()), timeout, 0.05)

    def wait(self, timeout=RUN_TIMEOUT):
        """The exit status; AssertionError (with the output) when it runs longer."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"quickstart.sh still ran after {timeout} s:\n{self.output()}")
        self._t.join(5)  # the daemons' output comes through tee: read it to the end
        return rc

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGINT)
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)


class Ctx:
    def __init__(self, args):
        self.quickstart = os.path.abspath(args.quickstart)
        self.build_dir = os.path.abspath(args.build_dir)
        self.loader = os.path.abspath(args.loader)

    def setup(self):
        if not os.access(self.quickstart, os.X_OK):
            raise AssertionError(f"{self.quickstart} is not executable")


def leftovers(pid):
    """What a demo run as pid left behind: a list of descriptions (empty: nothing)."""
    found = []
    for ns in (f"ebpfmon-demo-mon-{pid}", f"ebpfmon-demo-peer-{pid}"):
        if os.path.exists(f"{NETNS_DIR}/{ns}"):
            found.append(f"namespace {ns}")
    for ifname in (f"dmon-{pid}", f"dpeer-{pid}"):
        if os.path.exists(f"/sys/class/net/{ifname}"):
            found.append(f"interface {ifname} in this namespace")
    if os.path.lexists(f"{BPFFS}/ebpfmon-demo-{pid}"):
        found.append(f"pin root {BPFFS}/ebpfmon-demo-{pid}")
    tmp_prefix = f"ebpfmon-demo-{pid}."
    found += [f"/tmp/{n}" for n in os.listdir("/tmp") if n.startswith(tmp_prefix)]
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").replace("\0", " ")
            with open(f"/proc/{p}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgid = stat[0], int(stat[2])
        if state == "Z":
            continue
        if pgid == pid or f"/tmp/{tmp_prefix}" in argv or f"ebpfmon-demo-{pid}" in argv:
            found.append(f"process {p}: {argv.strip()}")
    return found


def assert_nothing_left(ctx, pid):
    left = []

    def clean():
        nonlocal left
        left = leftovers(pid)
        return not left

    # The kernel removes a namespace's interfaces with it; give it a moment.
    nstest.wait_until(clean, 5, 0.2)
    if left:
        remove_leftovers(ctx, pid)
    assert not left, "left behind:\n  " + "\n  ".join(left)


def remove_leftovers(ctx, pid):
    """Remove what leftovers(pid) finds, so that a failed run leaves nothing either."""
    for what in leftovers(pid):
        if what.startswith("process "):
            try:
                os.kill(int(what.split()[1].rstrip(":")), signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.2)
    for ns in (f"ebpfmon-demo-mon-{pid}", f"ebpfmon-demo-peer-{pid}"):
        nstest.run(["ip", "netns", "del", ns], check=False)
    nstest.unload_and_remove(ctx.loader, f"{BPFFS}/ebpfmon-demo-{pid}")
    for n in os.listdir("/tmp"):
        if n.startswith(f"ebpfmon-demo-{pid}."):
            shutil.rmtree(f"/tmp/{n}", ignore_errors=True)


TESTS, test = nstest.test_registry()


@test("--help exits 0; -i or -c with --demo, and an unknown option, exit 2")
def test_options(ctx):
    r = nstest.run([ctx.quickstart, "--help"], check=False)
    assert r.returncode == 0 and "--demo" in r.stdout, f"--help: {r.returncode} {r.stdout!r}"
    for args in (["--demo", "-i", "lo"], ["--demo", "-c", "/dev/null"], ["--bogus"],
                 ["--demo-seconds", "5"]):
        r = nstest.run([ctx.quickstart, "--no-install"] + args, check=False)
        assert r.returncode == 2, f"{args}: exit {r.returncode}, expected 2: {r.stderr!r}"


@test("the demo bans its peer for /wp-admin and for too many connections, ebpfmonctl bans "
      "lists both, the script exits 0 and leaves nothing behind")
def test_demo(ctx):
    # this host uses 198.18.100.0/24: the demo must take another /24. The address goes on a
    # veth pair of this namespace (the dummy driver is not in every kernel).
    host_if = f"qs{os.getpid()}"[:13]
    nstest.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", f"{host_if}p"])
    nstest.CLEANUP.push(f"delete {host_if}",
                        lambda: nstest.run(["ip", "link", "del", host_if], check=False))
    nstest.run(["ip", "addr", "add", f"{HOST_NET}.1/24", "dev", host_if])
    nstest.run(["ip", "link", "set", host_if, "up"])
    t0 = time.monotonic()
    run = Run(ctx, "--demo", "--demo-seconds", "0")
    rc = run.wait()
    took = time.monotonic() - t0
    out = run.output()
    log(f"demo run: exit {rc} after {took:.1f} s")
    assert rc == 0, f"exit status {rc}, expected 0:\n{out}"
    m = re.search(r"^quickstart\.sh: demo: subnet (198\.1[89]\.\d+)\.0/24 ", out, re.M)
    assert m, f"the demo did not say which subnet it chose:\n{out}"
    net = m.group(1)
    assert net != HOST_NET, f"the demo chose {net}.0/24, which this host uses ({host_if}):\n{out}"
    log(f"demo subnet {net}.0/24 ({HOST_NET}.0/24 is on {host_if})")
    url_peer, flood_peer = f"{net}.2", f"{net}.3"  # the demo's peer addresses
    # The analyzer's log lines, shown as they come.
    assert re.search(rf"^ebpfmon-analyzer: info: banned {re.escape(url_peer)} for \d+s "
                     r"\(url_rule: requested '/wp-admin/'", out, re.M), \
        f"no URL-rule ban of {url_peer} in the output:\n{out}"
    assert re.search(rf"^ebpfmon-analyzer: info: banned {re.escape(flood_peer)} for \d+s "
                     r"\(conn_limit: ", out, re.M), \
        f"no connection-limit ban of {flood_peer} in the output:\n{out}"
    # `ebpfmonctl bans`, printed by the script after the traffic.
    table = out.rsplit("ebpfmonctl -s ", 1)[-1]
    assert re.search(r"^ADDRESS\s+REASON", table, re.M), f"no ebpfmonctl bans table:\n{out}"
    assert re.search(rf"^{re.escape(url_peer)}\s+url_rule\s", table, re.M), \
        f"ebpfmonctl bans does not list {url_peer} (url_rule):\n{table}"
    assert re.search(rf"^{re.escape(flood_peer)}\s+conn_limit\s", table, re.M), \
        f"ebpfmonctl bans does not list {flood_peer} (conn_limit):\n{table}"
    # What a newcomer is told: the socket, the database, the next commands.
    for what in (r"API socket\s+/tmp/ebpfmon-demo-", r"database\s+/tmp/ebpfmon-demo-",
                 r"ebpfmonctl -s \S+ status", r"map dump pinned /sys/fs/bpf/ebpfmon-demo-"):
        assert re.search(what, out), f"the summary lacks /{what}/:\n{out}"
    assert re.search(rf"dmon-{run.pid}: no XDP attached any more", out), \
        f"the script did not report the interface detached:\n{out}"
    assert_nothing_left(ctx, run.pid)
    nstest.run(["ip", "link", "del", host_if])


@test("Ctrl-C (SIGINT to the process group) in the middle of the demo: exit 0, nothing left")
def test_ctrl_c(ctx):
    run = Run(ctx, "--demo")
    if not run.wait_line(r"opens connections", 40):
        raise AssertionError(f"the demo did not reach its connection flood:\n{run.output()}")
    os.killpg(run.pid, signal.SIGINT)
    rc = run.wait(30)
    out = run.output()
    assert rc == 0, f"exit status {rc} after SIGINT, expected 0:\n{out}"
    assert re.search(r"removed the pins under /sys/fs/bpf/ebpfmon-demo-", out), \
        f"the script did not remove its pins:\n{out}"
    assert_nothing_left(ctx, run.pid)


def main():
    return nstest.main(
        __doc__.split("\n")[0], TESTS, Ctx,
        programs=[("loader", "path of ebpfmon-loader (leftovers of killed runs)")],
        tools=["ip", "nsenter", "setpriv", "curl", "python3"],
        options=[(("--build-dir",), {"required": True,
                                     "help": "the build folder whose programs the demo runs"}),
                 (("--quickstart",), {"required": True, "help": "packaging/quickstart.sh"})],
        setup_what="the quick start")


if __name__ == "__main__":
    sys.exit(main())
