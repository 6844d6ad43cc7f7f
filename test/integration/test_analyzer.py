#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of ebpfmon-analyzer: the real loader, real traffic, an unprivileged analyzer.

    test_analyzer.py --loader build/loader/ebpfmon-loader \
        --analyzer build/analyzer/ebpfmon-analyzer [--bpftool bpftool] [--only NAME] [-v]

The namespaces, veth pair and private pin root are those of nstest.Topology (see
test_loader.py); the loader runs in the monitor namespace, the analyzer runs as user ebpfmon
with no capabilities (setpriv) on the loader's pins. Bans last 5 s ([testing]). The analyzer
keeps its offence history in memory: every test starts a fresh analyzer on an empty `bans`.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import argparse
import os
import re
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import (BPFFS, CLEANUP, PIN_PREFIX, Background, Bpftool, Loader, Topology,  # noqa: E402
                    log, proc_comm, proc_status, tcp_connect, unload_and_remove,
                    wait_connect_ok)

HTTP_PORT = 80
BAN_S = 5
PEER, MON = Topology.PEER_V4, Topology.MON_V4
PEER_RX = re.escape(PEER) + r"\b"
THIS = os.path.abspath(__file__)
REASON_CONN_LIMIT, REASON_URL_RULE = 1, 2

CONF = f"""\
# ebpfmon integration test configuration (written by test_analyzer.py)
[network]
max_connections_per_ip = 3
http_ports = {HTTP_PORT}
malicious_url_patterns = /wp-admin, *.php
allowlist = 127.0.0.0/8, ::1
[loader]
pin_root = {{pin_root}}
[testing]
ban_duration_seconds = {BAN_S}
monitoring_interval_ms = 500
"""

BROKEN_CONF = "[network]\nmax_connections_per_ip = 0\n"


class Ctx:
    def __init__(self, args):
        self.loader_path = os.path.abspath(args.loader)
        self.analyzer_path = os.path.abspath(args.analyzer)
        self.bpftool = Bpftool(args.bpftool)
        self.topo = Topology()
        self.pin_root = f"{BPFFS}/{PIN_PREFIX}{os.getpid()}"
        self.loader = None
        self.analyzer = None
        self.tmpdir = tempfile.mkdtemp(prefix=f"ebpfmon-it-{os.getpid()}-")
        CLEANUP.push(f"remove {self.tmpdir}", lambda: shutil.rmtree(self.tmpdir, True))
        os.chmod(self.tmpdir, 0o755)  # the analyzer (user ebpfmon) reads the config
        self.conf = self.write_file("ebpfmon.conf", CONF.format(pin_root=self.pin_root))

    def write_file(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def setup(self):
        if os.path.lexists(self.pin_root):
            raise AssertionError(f"{self.pin_root} exists already")
        self.topo.setup()
        CLEANUP.push(f"unload {self.pin_root}", lambda: unload_and_remove(
            self.loader_path, self.pin_root, self.topo.mon))
        self.loader = Loader(self.loader_path, self.topo.mon,
                             ["-c", self.conf, "-i", self.topo.mon_if, "--pin-root",
                              self.pin_root], self.tmpdir)
        self.loader.wait_ready()

    # -- the analyzer -----------------------------------------------------------------

    def start_analyzer(self, *extra, conf=None):
        self.stop_analyzer()
        cmd = ["setpriv", "--reuid", nstest.USER, "--regid", nstest.GROUP, "--init-groups",
               "--inh-caps=-all", "--bounding-set=-all", self.analyzer_path,
               "-c", conf or self.conf, "--wait", "10"] + list(extra)
        an = Background(cmd, "analyzer")
        self.analyzer = an
        if not an.wait_line(r"\bready\b", 10):
            raise AssertionError(f"no 'ready' line from the analyzer within 10 s "
                                 f"(running={an.running()}):\n{an.output()}")
        return an

    def stop_analyzer(self):
        if self.analyzer is not None:
            self.analyzer.kill()

    def fresh(self, *extra, conf=None):
        """A new analyzer (no offence history) on an empty bans map."""
        self.stop_analyzer()
        self.clear_bans()
        return self.start_analyzer(*extra, conf=conf)

    # -- maps -------------------------------------------------------------------------

    def bans_map(self):
        return os.path.join(self.pin_root, "maps", "bans")

    def get_ban(self, ip=PEER):
        return self.bpftool.ban_get(self.bans_map(), ip)

    def clear_bans(self):
        if os.path.lexists(self.bans_map()):
            for ip in (Topology.PEER_V4, Topology.PEER_V6, Topology.MON_V4, Topology.MON_V6):
                self.bpftool.map_delete(self.bans_map(), nstest.addr_key(ip))

    # -- traffic ----------------------------------------------------------------------

    def start_server(self):
        """A server on port 80 in the monitor namespace that holds connections and prints
        every chunk it receives ('recv <hex>')."""
        srv = Background(self.topo.in_mon([sys.executable, THIS, "serve-hold", str(HTTP_PORT)]),
                         "http-server")
        if not srv.wait_line(r"^listening", 10, stream="out"):
            raise AssertionError(f"server did not start: {srv.output()}")
        return srv

    def hold(self, n, timeout=1.0):
        """The peer opens n connections to port 80 (one after the other) and holds them."""
        return Background(self.topo.in_peer([sys.executable, THIS, "hold", MON, str(HTTP_PORT),
                                              str(n), str(timeout)]), "holder")

    def send(self, data, timeout=2.0):
        r = nstest.run(self.topo.in_peer([sys.executable, THIS, "send", MON, str(HTTP_PORT),
                                          data.hex(), str(timeout)]), check=False,
                       timeout=timeout + 15)
        return (r.stdout.strip() or f"error rc={r.returncode} {r.stderr.strip()}").splitlines()[-1]


def received(srv):
    """Everything the server received, concatenated."""
    out = b""
    for line in srv.output("out").splitlines():
        if line.startswith("recv "):
            out += bytes.fromhex(line[5:])
    return out


TESTS = []


def test(title):
    def deco(fn):
        TESTS.append((fn.__name__, title, fn))
        return fn

    return deco


# ---------------------------------------------------------------------------------------


@test("1. the analyzer runs unprivileged: uid != 0, CapEff/CapPrm/CapBnd all zero")
def t1_unprivileged(ctx):
    an = ctx.fresh()
    comm = proc_comm(an.pid)
    assert comm and comm.startswith("ebpfmon-analyz"), \
        f"pid {an.pid} is {comm!r}, not the analyzer (setpriv did not exec?)"
    st = proc_status(an.pid)
    problems = []
    if any(int(u) == 0 for u in st["Uid"].split()):
        problems.append(f"Uid: {st['Uid']}")
    for cap in ("CapEff", "CapPrm", "CapBnd"):
        if int(st.get(cap, "1"), 16) != 0:
            problems.append(f"{cap}: {st.get(cap)}")
    log(f"  pid {an.pid}: Uid {st['Uid']} CapEff {st['CapEff']} CapPrm {st['CapPrm']} "
        f"CapBnd {st['CapBnd']}")
    assert not problems, f"/proc/{an.pid}/status: " + "; ".join(problems)


@test("2. 5 held connections: banned within 2 s, connects time out; the ban ends after 5 s")
def t2_conn_limit(ctx):
    an = ctx.fresh()
    srv = ctx.start_server()
    t0 = time.monotonic()
    holder = ctx.hold(5)
    try:
        line = an.wait_line(r"\bbanned " + PEER_RX, 2)
        assert line, f"no 'banned {PEER}' within 2 s of opening 5 connections:\n{an.output()}\n" \
                     f"holder: {holder.output()}"
        log(f"  after {time.monotonic() - t0:.2f}s: {line}")
        assert "conn_limit" in line, f"ban line does not name conn_limit: {line}"
        ban = ctx.get_ban()
        assert ban is not None, f"bans has no entry for {PEER} after '{line}'"
        assert ban["reason"] == REASON_CONN_LIMIT, f"bans[{PEER}].reason = {ban['reason']}"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 2.0)
        assert res == "timeout", \
            f"banned peer: connect to {MON}:{HTTP_PORT}: {res}, expected a timeout"
        holder.wait_line(r"^done", 5, stream="out")
        log(f"  holder: {' '.join(holder.output('out').split())}")
        # Close the held connections (the server side too: the peer's FINs are dropped now).
        holder.kill()
        srv.kill()
        end = an.wait_line(r"ban of " + PEER_RX + r".*ended", BAN_S + 3)
        assert end, f"no 'ban of {PEER} ended' within {BAN_S + 3} s:\n{an.output()}"
        log(f"  after {time.monotonic() - t0:.2f}s: {end}")
        assert ctx.get_ban() is None, f"bans[{PEER}] still there after '{end}': {ctx.get_ban()}"
        srv = ctx.start_server()
        try:
            assert wait_connect_ok(ctx.topo.peer, MON, HTTP_PORT, timeout=3), \
                f"connect from {PEER} still fails after the ban ended"
        finally:
            srv.kill()
        rebans = re.findall(r"\bbanned " + PEER_RX + r".*", an.output())
        assert len(rebans) == 1, f"{PEER} banned more than once: {rebans}"
    finally:
        holder.kill()
        srv.kill()


@test("3. URL rule /wp-admin: the request never reaches the server; the peer is banned")
def t3_url_prefix(ctx):
    an = ctx.fresh()
    srv = ctx.start_server()
    try:
        res = ctx.send(b"GET /wp-admin/install.php HTTP/1.1\r\nHost: x\r\n\r\n")
        log(f"  peer: {res}")
        line = an.wait_line(r"\bbanned " + PEER_RX, 3)
        assert line, f"no 'banned {PEER}' after GET /wp-admin/install.php:\n{an.output()}"
        log(f"  {line}")
        assert "url_rule" in line, f"ban line does not name url_rule: {line}"
        ban = ctx.get_ban()
        assert ban is not None, f"bans has no entry for {PEER}"
        assert ban["reason"] == REASON_URL_RULE, f"bans[{PEER}].reason = {ban['reason']}"
        time.sleep(0.5)  # a retransmission would have arrived by now
        got = received(srv)
        assert b"/wp-admin" not in got, f"the server received the request: {got!r}"
    finally:
        srv.kill()


@test("4. glob *.php (user space): GET /index.php bans the peer; the request is not dropped")
def t4_url_glob(ctx):
    an = ctx.fresh()
    srv = ctx.start_server()
    try:
        req = b"GET /index.php HTTP/1.1\r\nHost: x\r\n\r\n"
        res = ctx.send(req)
        log(f"  peer: {res}")
        line = an.wait_line(r"\bbanned " + PEER_RX, 3)
        assert line, f"no 'banned {PEER}' after GET /index.php:\n{an.output()}"
        log(f"  {line}")
        assert "*.php" in line, f"ban line does not name the pattern '*.php': {line}"
        ban = ctx.get_ban()
        assert ban is not None and ban["reason"] == REASON_URL_RULE, f"bans[{PEER}] = {ban}"
        assert srv.wait_line(r"^recv ", 2, "out") and b"/index.php" in received(srv), \
            f"the server did not receive GET /index.php: {received(srv)!r}"
    finally:
        srv.kill()


@test("5. --dry-run: 5 connections log 'would ban', bans stays empty, connects keep working")
def t5_dry_run(ctx):
    an = ctx.fresh("--dry-run")
    assert re.search(r"dry run", an.output()), f"ready line does not say dry run:\n{an.output()}"
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        line = an.wait_line(r"would ban " + PEER_RX, 3)
        assert line, f"no 'would ban {PEER}':\n{an.output()}"
        log(f"  {line}")
        assert holder.wait_line(r"^done", 8, "out"), f"holder: {holder.output()}"
        conns = holder.output("out").split()
        assert conns.count("connected") == 5, f"dry run: the 5 connections got {conns}"
        time.sleep(0.6)  # one scan (500 ms) as well
        assert ctx.get_ban() is None, f"dry run wrote bans[{PEER}] = {ctx.get_ban()}"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 2.0)
        assert res == "connected", f"dry run: connect {res}, expected connected"
        bans = re.findall(r"^.*\bbanned .*$", an.output(), re.M)
        assert not bans, f"dry run logged real bans: {bans}"
    finally:
        holder.kill()
        srv.kill()


@test("6. SIGHUP with a broken config: 'reload refused', the analyzer keeps running")
def t6_sighup_broken(ctx):
    conf = ctx.write_file("sighup.conf", CONF.format(pin_root=ctx.pin_root))
    an = ctx.fresh(conf=conf)
    with open(conf, "w") as f:
        f.write(BROKEN_CONF)
    an.signal(signal.SIGHUP)
    line = an.wait_line(r"reload refused", 3)
    assert line, f"no 'reload refused' after SIGHUP with a broken file:\n{an.output()}"
    log(f"  {line}")
    time.sleep(0.6)
    assert an.running(), f"the analyzer exited ({an.proc.returncode}) after SIGHUP:\n{an.output()}"


# ---------------------------------------------------------------------------------------
# Helpers run inside a namespace: python3 test_analyzer.py serve-hold|hold|send ...


def _serve_hold(port):
    nstest._die_with_parent()
    # Dual-stack, as most servers listen: the IPv4 peer's connections arrive on an AF_INET6
    # socket and must still be counted (and banned) under its IPv4 address.
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(128)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is s:
                c, _ = s.accept()
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if data:
                print(f"recv {data.hex()}", flush=True)
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()


def _hold(host, port, n, timeout):
    nstest._die_with_parent()
    held = []
    for _ in range(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(timeout)
        try:
            c.connect((host, port))
            held.append(c)
            print("connected", flush=True)
        except (socket.timeout, TimeoutError):
            print("timeout", flush=True)
        except OSError as e:
            print(f"error-{e.errno}", flush=True)
    print("done", flush=True)
    while True:
        signal.pause()


def _send(host, port, data, timeout):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(timeout)
    try:
        c.connect((host, port))
        c.sendall(data)
        time.sleep(0.5)
        print("sent")
        return 0
    except (socket.timeout, TimeoutError):
        print("timeout")
        return 3
    except OSError as e:
        print(f"error {e}")
        return 6
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loader", required=True, help="path of ebpfmon-loader")
    ap.add_argument("--analyzer", required=True, help="path of ebpfmon-analyzer")
    ap.add_argument("--bpftool", default=shutil.which("bpftool") or "/usr/sbin/bpftool")
    ap.add_argument("--only", action="append", default=[],
                    help="run only tests whose function name contains this (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every command")
    args = ap.parse_args()
    nstest.VERBOSE = args.verbose
    nstest.install_signal_handlers()

    msg = nstest.check_prerequisites(["ip", "nsenter", "ping", "setpriv", args.bpftool])
    if msg:
        nstest.skip(msg)
    for what, path in (("loader", args.loader), ("analyzer", args.analyzer)):
        if not os.access(path, os.X_OK):
            print(f"FAILED: {what} {path} is not an executable file", flush=True)
            return 1
    nstest.reap_stale(os.path.abspath(args.loader))

    tests = [t for t in TESTS if not args.only or any(o in t[0] for o in args.only)]
    passed, failed = [], []
    start = time.monotonic()
    try:
        ctx = Ctx(args)
        try:
            ctx.setup()
        except Exception:  # noqa: BLE001
            log("FAILED: setting up the namespaces and the loader:\n" + traceback.format_exc())
            failed = [t[0] for t in tests]
            tests = []
        for name, title, fn in tests:
            log(f"=== {name}: {title}")
            t = time.monotonic()
            try:
                fn(ctx)
                passed.append(name)
                log(f"--- PASS {name} ({time.monotonic() - t:.1f}s)")
            except Exception as e:  # noqa: BLE001
                failed.append(name)
                tb = traceback.extract_tb(e.__traceback__)
                where = next((f"{f.filename.split('/')[-1]}:{f.lineno}" for f in reversed(tb)
                              if f.filename.endswith("test_analyzer.py")), "?")
                log(f"--- FAIL {name} ({time.monotonic() - t:.1f}s) at {where}: "
                    f"{type(e).__name__}: {e}")
                if not isinstance(e, AssertionError):
                    log(traceback.format_exc())
                if ctx.analyzer is not None:
                    log(f"    analyzer output:\n{ctx.analyzer.output()}")
            finally:
                try:
                    ctx.stop_analyzer()
                    ctx.clear_bans()
                except Exception as e:  # noqa: BLE001
                    log(f"    stopping the analyzer / clearing bans: {e}")
    finally:
        CLEANUP.run()
    log(f"runtime {time.monotonic() - start:.1f}s")
    if failed:
        log("failed: " + ", ".join(failed))
    print(f"{len(passed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve-hold":
        _serve_hold(int(sys.argv[2]))
    elif len(sys.argv) == 6 and sys.argv[1] == "hold":
        _hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif len(sys.argv) == 6 and sys.argv[1] == "send":
        sys.exit(_send(sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4]),
                       float(sys.argv[5])))
    else:
        sys.exit(main())
