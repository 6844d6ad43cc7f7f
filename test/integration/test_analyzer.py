#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of ebpfmon-analyzer: the real loader, real traffic, an unprivileged analyzer.

    test_analyzer.py --loader build/loader/ebpfmon-loader \
        --analyzer build/analyzer/ebpfmon-analyzer [--bpftool bpftool] [--only NAME] [-v]

The namespaces, veth pair and private pin root are those of nstest.Topology (see
test_loader.py); the loader runs in the monitor namespace, the analyzer runs as user ebpfmon
with no capabilities (setpriv) on the loader's pins. Bans last 5 s (ban_duration = 5s). The
analyzer keeps its offence history in SQLite: every test starts a fresh analyzer on an empty
`bans` and a private database (--db) in a directory of its own owned by user ebpfmon (0700);
the test reads it read-only with Python's sqlite3 (WAL: reading while the analyzer writes is fine).

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import grp
import ipaddress
import os
import pwd
import re
import selectors
import shlex
import shutil
import signal
import socket
import sqlite3
import struct
import sys
import tempfile
import time

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
PEER2 = "198.18.0.3"  # a second address of the peer (added by the tests that need it)
PEER3 = "198.18.0.4"  # a third one, never banned itself (test 14)
MANUAL = "198.18.0.77"  # written into `bans` by hand (bpftool), never used as a source
THIS = os.path.abspath(__file__)
REASON_CONN_LIMIT, REASON_URL_RULE, REASON_ESCALATED = 1, 2, 3
F_DRY_RUN = 1 << 0  # EBPFMON_F_DRY_RUN, settings.flags (common/ebpfmon_abi.h)
NOTE_SEED_OFF = 36  # settings.note_seed (common/ebpfmon_abi.h, test_abi)
F_BAN_NETS = 1 << 2  # EBPFMON_F_BAN_NETS
F_URL_NOCASE = 1 << 3  # EBPFMON_F_URL_NOCASE

# The analyzer's API socket: private to this run (never the system's /run/ebpfmon/api.sock).
API_DIR = f"/tmp/ebpfmon-it-api-{os.getpid()}"

CONF = f"""\
# ebpfmon integration test configuration (written by test_analyzer.py)
[network]
max_connections_per_ip = 3
http_ports = {HTTP_PORT}
malicious_url_patterns = /wp-admin, *.php
allowlist = 127.0.0.0/8, ::1
ban_duration = {BAN_S}s
monitoring_interval = 500ms
# the analyzer's reactions to XDP's evidence (dropped requests that clients retransmit);
# test_detection.py tests the stream guard
url_stream_guard = false
[loader]
pin_root = {{pin_root}}
[api]
uds_socket_path = {API_DIR}/api.sock
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
        self.db = None
        self.peer_addrs = set()  # added to the peer's veth by add_peer_addr()
        self.n_notify = 0
        self.test_start_ns = 0  # CLOCK_BOOTTIME when the current test began
        self.tmpdir = tempfile.mkdtemp(prefix=f"ebpfmon-it-{os.getpid()}-")
        CLEANUP.push(f"remove {self.tmpdir}", lambda: shutil.rmtree(self.tmpdir, True))
        os.chmod(self.tmpdir, 0o755)  # the analyzer (user ebpfmon) reads the config
        nstest.make_api_dir(API_DIR)
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

    def new_db(self):
        """A private database: <tmpdir>/db-XXXX/ebpfmon.db, the folder owned by ebpfmon, 0700
        (removed with tmpdir). The analyzer creates the file."""
        d = tempfile.mkdtemp(prefix="db-", dir=self.tmpdir)
        pw = pwd.getpwnam(nstest.USER)
        os.chown(d, pw.pw_uid, grp.getgrnam(nstest.GROUP).gr_gid)
        os.chmod(d, 0o700)
        self.db = os.path.join(d, "ebpfmon.db")
        return self.db

    def analyzer_cmd(self, *extra, conf=None, wait=10):
        """The command line of an unprivileged analyzer on ctx.db."""
        return ["setpriv", "--reuid", nstest.USER, "--regid", nstest.GROUP, "--init-groups",
                "--inh-caps=-all", "--bounding-set=-all", self.analyzer_path,
                "-c", conf or self.conf, "--db", self.db, "--wait", str(wait)] + list(extra)

    def notify_socket(self):
        """A NOTIFY_SOCKET for an analyzer (closed at the end of the run, after the analyzer
        is stopped; the folder is 0755 and the socket 0666: user ebpfmon can send)."""
        self.n_notify += 1
        ns = nstest.NotifySocket(os.path.join(self.tmpdir, f"an-notify-{self.n_notify}.sock"))
        CLEANUP.push("close notify socket", ns.close)
        return ns

    def start_analyzer(self, *extra, conf=None, notify=None):
        """Start an analyzer on the current database (ctx.db; a new one when there is none),
        with NOTIFY_SOCKET set to notify.path when notify (a NotifySocket) is given."""
        self.stop_analyzer()
        if self.db is None:
            self.new_db()
        env = dict(os.environ, NOTIFY_SOCKET=notify.path) if notify else None
        an = Background(self.analyzer_cmd(*extra, conf=conf), "analyzer", env=env)
        self.analyzer = an
        if not an.wait_line(r"\bready\b", 10):
            raise AssertionError(f"no 'ready' line from the analyzer within 10 s "
                                 f"(running={an.running()}):\n{an.output()}")
        return an

    def stop_analyzer(self):
        if self.analyzer is not None:
            self.analyzer.kill()

    def fresh(self, *extra, conf=None):
        """A new analyzer (no offence history) on an empty bans map and a new database."""
        self.stop_analyzer()
        self.clear_bans()
        self.new_db()
        return self.start_analyzer(*extra, conf=conf)

    # -- the database (read-only) -----------------------------------------------------

    def query(self, sql, *params):
        """Rows (dicts) of a query on ctx.db, read-only; [] while the file does not exist."""
        return nstest.db_query(self.db, sql, *params)

    def bans_of(self, ip):
        return self.query("SELECT * FROM malicious_ips WHERE address = ? AND prefix_len IS NULL"
                          " ORDER BY id", ip)

    def wait_rows(self, pred, timeout, sql, *params):
        """Poll a query until pred(rows) holds; return the last rows."""
        rows = []

        def ok():
            nonlocal rows
            rows = self.query(sql, *params)
            return pred(rows)

        nstest.wait_until(ok, timeout, 0.1)
        return rows

    # -- maps -------------------------------------------------------------------------

    def bans_map(self):
        return os.path.join(self.pin_root, "maps", "bans")

    def get_ban(self, ip=PEER):
        return self.bpftool.ban_get(self.bans_map(), ip)

    def map_entries(self, name):
        """(key, value) bytes of the entries of a (not per-CPU) map of the private pin root."""
        d = self.bpftool.json("map", "dump", "pinned", os.path.join(self.pin_root, "maps", name),
                              check=False) or []
        return [(nstest._raw(e["key"]), nstest._raw(e.get("value", []))) for e in d
                if isinstance(e, dict) and "key" in e]

    def mangled_conn_keys(self):
        """conn_count keys of connections accepted since the current test began that look like
        BPF_ADDR_BUG: the one byte really read is 0x00 (as in ::ffff:a.b.c.d), bytes 1..7 are
        not all zero (stale stack), so the address is in 00xx::/8, which no peer uses."""
        out = []
        for k, v in self.map_entries("conn_count"):
            if len(k) == 16 and k[0] == 0 and k[:8] != bytes(8) and len(v) >= 24 and \
                    struct.unpack_from("<Q", v, 16)[0] >= self.test_start_ns:
                out.append(str(ipaddress.ip_address(k)))
        return out

    def clear_bans(self):
        """Empty `bans` and `ban_nets` (every entry: the pin root is the test's own)."""
        for name in ("bans", "ban_nets"):
            path = os.path.join(self.pin_root, "maps", name)
            if os.path.lexists(path):
                for key, _ in self.map_entries(name):
                    self.bpftool.map_delete(path, key)

    def settings(self):
        """settings[0] as (max_conn_per_ip, flags) (struct ebpfmon_settings: u32, u32, ...)."""
        raw = self.bpftool.map_lookup_raw(os.path.join(self.pin_root, "maps", "settings"),
                                          bytes(4))
        assert raw is not None and len(raw) >= 8, f"settings[0]: {raw!r}"
        return struct.unpack_from("<II", raw)

    def settings_flags(self):
        """settings[0].flags."""
        return self.settings()[1]

    def restart_loader(self, stop=True, conf=None):
        """Stop the loader (SIGTERM: links go, map pins stay; unless stop is False) and start
        a new one on the same pin root, with conf (default: the test configuration)."""
        if stop:
            rc = self.loader.stop()
            assert rc == 0, f"loader exit status {rc}:\n{self.loader.tail()}"
        self.loader = Loader(self.loader_path, self.topo.mon,
                             ["-c", conf or self.conf, "-i", self.topo.mon_if, "--pin-root",
                              self.pin_root], self.tmpdir)
        self.loader.wait_ready()

    def ban_nets(self):
        """ban_nets as a list of (network text, prefixlen of the 128-bit key, decoded ban)."""
        out = []
        for k, v in self.map_entries("ban_nets"):
            plen = struct.unpack_from("<I", k)[0]
            a = ipaddress.ip_address(k[4:20])
            out.append((str(a.ipv4_mapped or a), plen, nstest.decode_ban(v)))
        return out

    def conn_active(self, ip=PEER):
        """conn_count[ip].active: the established connections the kernel counts for ip."""
        raw = self.bpftool.map_lookup_raw(os.path.join(self.pin_root, "maps", "conn_count"),
                                          nstest.addr_key(ip))
        return 0 if raw is None else struct.unpack_from("<I", raw)[0]

    def wait_conns_closed(self, ip=PEER, timeout=5):
        assert nstest.wait_until(lambda: self.conn_active(ip) == 0, timeout, 0.1), \
            f"conn_count[{ip}].active still {self.conn_active(ip)} {timeout} s after the " \
            f"connections were closed"

    def add_peer_addr(self, ip):
        """Another address on the peer's veth (gone with the namespace); once per run."""
        if ip in self.peer_addrs:
            return
        self.peer_addrs.add(ip)
        nstest.run(self.topo.in_peer(["ip", "addr", "add", f"{ip}/24", "dev",
                                      self.topo.peer_if]))
        CLEANUP.push(f"remove {ip} from the peer", lambda: nstest.run(self.topo.in_peer(
            ["ip", "addr", "del", f"{ip}/24", "dev", self.topo.peer_if]), check=False))

    # -- traffic ----------------------------------------------------------------------

    def start_server(self):
        """A server on port 80 in the monitor namespace that holds connections and prints
        every chunk it receives ('recv <hex>')."""
        srv = Background(self.topo.in_mon([sys.executable, THIS, "serve-hold", str(HTTP_PORT)]),
                         "http-server")
        if not srv.wait_line(r"^listening", 10, stream="out"):
            raise AssertionError(f"server did not start: {srv.output()}")
        return srv

    def hold(self, n, timeout=1.0, src=None, host=MON):
        """The peer opens n connections to host port 80 (one after the other) and holds them;
        from its address src when given."""
        return Background(self.topo.in_peer([sys.executable, THIS, "hold", host, str(HTTP_PORT),
                                              str(n), str(timeout)] + ([src] if src else [])),
                          f"holder{'@' + src if src else ''}")

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


# A bug that the conn-limit tests run into (reported, not fixed here): in bpf/ebpfmon.bpf.c
# sock_remote_addr(), BPF_CORE_READ_INTO(a->a, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8)
# copies sizeof(*(a->a)) = 1 byte (a->a is a __u8 array), so for a connection to a dual-stack
# listener the address is that byte plus whatever the stack held: zeros (then the IPv4 fallback
# saves the day) or stale data, and the IPv4 peer is counted under a mangled address such as
# 5c:2934:8188:ffff:0:ffff:c612:2 (stale kernel-pointer bytes + ::ffff:198.18.0.2's tail).
BPF_ADDR_BUG = ("BUG in bpf/ebpfmon.bpf.c sock_remote_addr(): BPF_CORE_READ_INTO(a->a, ...) "
                "copies 1 byte of skc_v6_daddr (sizeof(*(a->a))), the other 15 are stale stack")


def mangled_rx(ip):
    """An IPv4 address as the buggy kernel side may count it: <stale>:0:ffff:xxxx:yyyy (the
    tail may be stale too: conn_count is checked as well)."""
    b = ipaddress.ip_address(ip).packed
    return r"[0-9a-f:]*:0:ffff:" + f"{b[0] << 8 | b[1]:x}:{b[2] << 8 | b[3]:x}" + r"\b"


def wait_verdict(ctx, an, regex, ip, timeout, n=1):
    """The n-th analyzer line matching regex (a verdict about ip), waiting for it. Missing,
    while the kernel counted connections under mangled addresses (conn_count keys) or the
    analyzer logged a verdict about a mangled form of ip: fail naming the bug."""
    line = wait_nth_line(an, regex, n, timeout)
    if line:
        return line
    bad = re.findall(r"^.*\b(?:banned|would ban|not banning) " + mangled_rx(ip) + r".*$",
                     an.output(), re.M)
    keys = ctx.mangled_conn_keys()
    assert not bad and not keys, \
        f"{BPF_ADDR_BUG}: the connections of {ip} were counted under mangled addresses: " \
        f"conn_count keys (accepted during this test) {keys}; analyzer: {bad}"
    return None


def wait_nth_line(bg, regex, n, timeout):
    """The n-th (1-based) output line of bg matching regex, waiting for it; None if none."""
    rx = re.compile(regex, re.I)

    def found():
        hits = [t for t in bg.output().splitlines() if rx.search(t)]
        return hits[n - 1] if len(hits) >= n else None

    return nstest.wait_until(found, timeout, 0.05)


def conf_with(ctx, name, *replacements, append=""):
    """The test configuration with (old, new) replacements and text appended, as a file."""
    text = CONF.format(pin_root=ctx.pin_root)
    for old, new in replacements:
        assert old in text, f"{old!r} not in the test configuration"
        text = text.replace(old, new)
    return ctx.write_file(name, text + append)


def ip_rx(ip):
    return re.escape(ip) + r"\b"


TESTS, test = nstest.test_registry()


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


def ban_row(ctx, ip, timeout=2, n=1):
    """The n-th (1-based) malicious_ips row of ip, waiting for it; AssertionError if none."""
    rows = ctx.wait_rows(lambda r: len(r) >= n, timeout,
                         "SELECT * FROM malicious_ips WHERE address = ? ORDER BY id", ip)
    assert len(rows) >= n, f"malicious_ips has {len(rows)} row(s) for {ip}, expected {n} " \
                           f"within {timeout} s: {rows}"
    return rows[n - 1]


def check_ban_row(row, reason, duration, level=0, dry_run=0, source="auto"):
    """A user's view of a ban in malicious_ips: what, by whom, how long, which offence."""
    problems = []
    for k, want in (("reason", reason), ("source", source), ("dry_run", dry_run),
                    ("escalation_level", level), ("prefix_len", None)):
        if row[k] != want:
            problems.append(f"{k} = {row[k]!r}, expected {want!r}")
    if row["expires_at"] is None or row["expires_at"] - row["banned_at"] != duration:
        problems.append(f"expires_at - banned_at = {row['expires_at']} - {row['banned_at']}, "
                        f"expected {duration}")
    now = time.time()
    if not now - 30 <= row["banned_at"] <= now + 1:
        problems.append(f"banned_at {row['banned_at']} is not about now ({now:.0f})")
    assert not problems, f"malicious_ips row {row}: " + "; ".join(problems)


def wait_ban_ended(ctx, row_id, timeout=2):
    rows = ctx.wait_rows(lambda r: r and r[0]["ended_at"] is not None, timeout,
                         "SELECT * FROM malicious_ips WHERE id = ?", row_id)
    assert rows and rows[0]["ended_at"] is not None, \
        f"malicious_ips row {row_id} has no ended_at {timeout} s after the ban ended: {rows}"
    return rows[0]


@test("2. 5 held connections: banned within 2 s, connects time out; the ban ends after 5 s; "
      "the ban and its end are in malicious_ips")
def t2_conn_limit(ctx):
    an = ctx.fresh()
    srv = ctx.start_server()
    t0 = time.monotonic()
    holder = ctx.hold(5)
    try:
        line = wait_verdict(ctx, an, r"\bbanned " + PEER_RX, PEER, 2)
        assert line, f"no 'banned {PEER}' within 2 s of opening 5 connections:\n{an.output()}\n" \
                     f"holder: {holder.output()}"
        log(f"  after {time.monotonic() - t0:.2f}s: {line}")
        assert "conn_limit" in line, f"ban line does not name conn_limit: {line}"
        ban = ctx.get_ban()
        assert ban is not None, f"bans has no entry for {PEER} after '{line}'"
        assert ban["reason"] == REASON_CONN_LIMIT, f"bans[{PEER}].reason = {ban['reason']}"
        row = ban_row(ctx, PEER)
        check_ban_row(row, "conn_limit", BAN_S)
        assert row["ended_at"] is None, f"the ban in force already has an ended_at: {row}"
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
        row = wait_ban_ended(ctx, row["id"])
        log(f"  malicious_ips: banned_at {row['banned_at']} expires_at {row['expires_at']} "
            f"ended_at {row['ended_at']}")
        assert row["ended_at"] >= row["banned_at"], f"ended before it began: {row}"
        assert len(ctx.bans_of(PEER)) == 1, f"more than one row for {PEER}: {ctx.bans_of(PEER)}"
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


@test("5. --dry-run: 5 connections log 'would ban' once, stored as dry_run 1; bans stays "
      "empty, connects keep working")
def t5_dry_run(ctx):
    an = ctx.fresh("--dry-run")
    assert re.search(r"dry run", an.output()), f"ready line does not say dry run:\n{an.output()}"
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        line = wait_verdict(ctx, an, r"would ban " + PEER_RX, PEER, 3)
        assert line, f"no 'would ban {PEER}':\n{an.output()}"
        t_line = time.monotonic()
        log(f"  {line}")
        row = ban_row(ctx, PEER)
        check_ban_row(row, "conn_limit", BAN_S, dry_run=1)
        assert holder.wait_line(r"^done", 8, "out"), f"holder: {holder.output()}"
        conns = holder.output("out").split()
        assert conns.count("connected") == 5, f"dry run: the 5 connections got {conns}"
        time.sleep(0.6)  # one scan (500 ms) as well
        assert ctx.get_ban() is None, f"dry run wrote bans[{PEER}] = {ctx.get_ban()}"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 2.0)
        assert res == "connected", f"dry run: connect {res}, expected connected"
        bans = re.findall(r"^.*\bbanned .*$", an.output(), re.M)
        assert not bans, f"dry run logged real bans: {bans}"
        time.sleep(max(0.0, t_line + 2.0 - time.monotonic()))  # 2 s with the connections held
        would = re.findall(r"^.*would ban " + PEER_RX + ".*$", an.output(), re.M)
        assert len(would) == 1, f"{len(would)} 'would ban' lines in 2 s, expected 1: {would}"
        rows = ctx.bans_of(PEER)
        assert len(rows) == 1, f"dry run: {len(rows)} rows for {PEER}, expected 1: {rows}"
        assert holder.running(), f"holder exited: {holder.output()}"
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


@test("7. a repeat offence gets a longer ban (5 s, then 10 s, escalation_level 1), counted from "
      "the database: also across an analyzer restart")
def t7_repeat_offence(ctx):
    ctx.add_peer_addr(PEER2)
    an = ctx.fresh()
    srv = ctx.start_server()
    holders = [ctx.hold(5, src=PEER), ctx.hold(5, src=PEER2)]
    try:
        first = {}
        for ip in (PEER, PEER2):
            line = wait_verdict(ctx, an, r"\bbanned " + ip_rx(ip), ip, 3)
            assert line, f"no 'banned {ip}' within 3 s of 5 connections:\n{an.output()}"
            log(f"  {line}")
            assert re.search(rf"\bfor {BAN_S}s\b", line), f"first offence not {BAN_S} s: {line}"
            first[ip] = ban_row(ctx, ip)
            check_ban_row(first[ip], "conn_limit", BAN_S, level=0)
        for h in holders:
            h.kill()
        srv.kill()
        for ip in (PEER, PEER2):
            ctx.wait_conns_closed(ip)
            end = an.wait_line(r"ban of " + ip_rx(ip) + r".*ended", BAN_S + 3)
            assert end, f"no 'ban of {ip} ended' within {BAN_S + 3} s:\n{an.output()}"
            wait_ban_ended(ctx, first[ip]["id"])

        # Second offence of PEER: the same analyzer process, the same database.
        srv = ctx.start_server()
        holders.append(ctx.hold(5, src=PEER))
        line = wait_verdict(ctx, an, r"\bbanned " + PEER_RX, PEER, 3, n=2)
        assert line, f"no second 'banned {PEER}' within 3 s:\n{an.output()}"
        log(f"  {line}")
        assert re.search(rf"\bfor {2 * BAN_S}s\b", line), \
            f"repeat offence (same process): expected 'for {2 * BAN_S}s': {line}"
        check_ban_row(ban_row(ctx, PEER, n=2), "conn_limit", 2 * BAN_S, level=1)

        # Second offence of PEER2 after a restart: the count can only come from the database.
        for h in holders:
            h.kill()
        srv.kill()
        an = ctx.start_analyzer()
        log(f"  restarted the analyzer (pid {an.pid}) on the same database")
        srv = ctx.start_server()
        holders.append(ctx.hold(5, src=PEER2))
        line = wait_verdict(ctx, an, r"\bbanned " + ip_rx(PEER2), PEER2, 3)
        assert line, f"no 'banned {PEER2}' from the restarted analyzer:\n{an.output()}"
        log(f"  {line}")
        assert re.search(rf"\bfor {2 * BAN_S}s\b", line), \
            f"repeat offence after a restart: expected 'for {2 * BAN_S}s' (history from the " \
            f"database): {line}"
        check_ban_row(ban_row(ctx, PEER2, n=2), "conn_limit", 2 * BAN_S, level=1)
        assert len(ctx.bans_of(PEER)) == 2, f"rows of {PEER}: {ctx.bans_of(PEER)}"
    finally:
        for h in holders:
            h.kill()
        srv.kill()


@test("8. an allowlisted peer is never banned: 5 connections and GET /wp-admin reach the server")
def t8_allowlist(ctx):
    conf = conf_with(ctx, "allow.conf", ("allowlist = 127.0.0.0/8, ::1",
                                         f"allowlist = 127.0.0.0/8, ::1, {PEER}"))
    an = ctx.fresh(conf=conf)
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        line = wait_verdict(ctx, an, r"not banning " + PEER_RX + r" \(allowlisted\)", PEER, 3)
        assert line, f"no 'not banning {PEER} (allowlisted)' after 5 connections:\n{an.output()}"
        log(f"  {line}")
        assert holder.wait_line(r"^done", 8, "out"), f"holder: {holder.output()}"
        conns = holder.output("out").split()
        assert conns.count("connected") == 5, f"allowlisted: the 5 connections got {conns}"
        res = ctx.send(b"GET /wp-admin/install.php HTTP/1.1\r\nHost: x\r\n\r\n")
        log(f"  peer: {res}")
        line = an.wait_line(r"not banning " + PEER_RX + r" \(allowlisted\).*wp-admin", 3)
        assert line, f"no 'not banning {PEER} (allowlisted)' for GET /wp-admin:\n{an.output()}"
        log(f"  {line}")
        # The kernel reports the request of an allowlisted source; it does not drop it.
        assert srv.wait_line(r"^recv ", 2, "out") and b"/wp-admin" in received(srv), \
            f"the server did not receive the allowlisted GET /wp-admin: {received(srv)!r}"
        time.sleep(0.6)  # a scan as well
        assert ctx.get_ban() is None, f"allowlisted {PEER} in bans: {ctx.get_ban()}"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 2.0)
        assert res == "connected", f"allowlisted: connect {res}, expected connected"
        bans = re.findall(r"^.*\b(?:banned|would ban) " + PEER_RX + ".*$", an.output(), re.M)
        assert not bans, f"allowlisted peer banned: {bans}"
        assert ctx.bans_of(PEER) == [], f"malicious_ips rows for allowlisted {PEER}: " \
                                        f"{ctx.bans_of(PEER)}"
    finally:
        holder.kill()
        srv.kill()


LONG_BAN_S = 30


@test("9. kill -9 of the analyzer: the ban stays enforced; a restart keeps it (map and table, no "
      "duplicate); reconciliation restores a lost map entry and records a hand-written one")
def t9_kill9_restart(ctx):
    conf = conf_with(ctx, "long-ban.conf", (f"ban_duration = {BAN_S}s",
                                            f"ban_duration = {LONG_BAN_S}s"))
    an = ctx.fresh(conf=conf)
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        line = wait_verdict(ctx, an, r"\bbanned " + PEER_RX, PEER, 2)
        assert line, f"no 'banned {PEER}' within 2 s:\n{an.output()}"
        log(f"  {line}")
        row = ban_row(ctx, PEER)
        check_ban_row(row, "conn_limit", LONG_BAN_S)
        before = ctx.get_ban()
        assert before is not None, f"bans has no entry for {PEER} after '{line}'"

        an.signal(signal.SIGKILL)
        rc = an.wait(5)
        assert rc == -signal.SIGKILL, f"analyzer exit status {rc} after SIGKILL"
        holder.kill()
        srv.kill()
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 1.5)
        assert res == "timeout", f"analyzer killed: connect from {PEER}: {res}, expected a " \
                                 f"timeout (the kernel enforces the ban on its own)"

        an = ctx.start_analyzer(conf=conf)
        time.sleep(0.7)  # reconciliation at start, then a scan
        ban = ctx.get_ban()
        assert ban is not None and ban["expires_ns"] == before["expires_ns"], \
            f"after the restart bans[{PEER}] = {ban}, expected it unchanged: {before}"
        rows = ctx.bans_of(PEER)
        assert len(rows) == 1 and rows[0]["id"] == row["id"] and rows[0]["ended_at"] is None, \
            f"after the restart: rows of {PEER} {rows}, expected the one active row {row}"
        odd = re.findall(r"^.*\b(?:banned|restored the ban of|recorded the ban of) " + PEER_RX +
                         r".*$", an.output(), re.M)
        assert not odd, f"restart with the ban in force in both places: {odd}"

        # Reconciliation: while the analyzer is down, someone deletes PEER's ban from the map
        # (bpftool) and writes another by hand. The maps are the same maps: the deletion was
        # an unban, never to be restored; the hand-written ban is recorded.
        ctx.stop_analyzer()
        ctx.bpftool.map_delete(ctx.bans_map(), nstest.addr_key(PEER), missing_ok=False)
        ctx.bpftool.map_update(ctx.bans_map(), nstest.addr_key(MANUAL), nstest.ban_value(
            expires_ns=nstest.boottime_ns() + LONG_BAN_S * 10**9, reason=0))
        t_manual = time.time()
        an = ctx.start_analyzer(conf=conf)
        line = an.wait_line(r"ban of " + PEER_RX + r" was removed from the map", 2)
        assert line, f"no 'ban of {PEER} was removed from the map':\n{an.output()}"
        log(f"  {line}")
        assert ctx.get_ban() is None, f"the removed ban of {PEER} came back: {ctx.get_ban()}"
        restored = re.findall(r"^.*restored the ban of .*$", an.output(), re.M)
        assert not restored, f"same maps, yet bans were restored: {restored}"
        rows = ctx.bans_of(PEER)
        assert len(rows) == 1 and rows[0]["ended_at"] is not None and \
            rows[0]["end_reason"] == "removed from the map", \
            f"the removed ban's row: {rows}, expected it ended as 'removed from the map'"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 1.5)
        # the server is gone: refused means the packets pass again
        assert res in ("connected", "refused"), \
            f"unbanned by bpftool: connect from {PEER}: {res}, expected it to pass"
        line = an.wait_line(r"recorded the ban of " + re.escape(MANUAL) +
                            r" found in the kernel map", 2)
        assert line, f"no 'recorded the ban of {MANUAL} found in the kernel map':\n{an.output()}"
        log(f"  {line}")
        mrows = ctx.bans_of(MANUAL)
        assert len(mrows) == 1, f"rows of {MANUAL}: {mrows}"
        m = mrows[0]
        assert m["source"] == "manual" and m["ended_at"] is None and m["dry_run"] == 0, \
            f"hand-written ban recorded as {m}"
        assert m["expires_at"] is not None and \
            abs(m["expires_at"] - (t_manual + LONG_BAN_S)) <= 3, \
            f"hand-written ban: expires_at {m['expires_at']}, expected about " \
            f"{t_manual + LONG_BAN_S:.0f}"
        # A second restart changes nothing: the removed ban stays ended, not restored.
        an = ctx.start_analyzer(conf=conf)
        time.sleep(0.7)
        restored = re.findall(r"^.*restored the ban of .*$", an.output(), re.M)
        first = ctx.query("SELECT * FROM malicious_ips WHERE id = ?", row["id"])
        assert not restored and first[0]["end_reason"] == "removed from the map", \
            f"second restart: {restored}, the removed ban's row {first}"
    finally:
        holder.kill()
        srv.kill()


@test("18. settings belong to the analyzer: with the analyzer in --dry-run and its own limit, a "
      "loader restart keeps the dry-run flag, the limit, ban_nets' flag and the ban notes' "
      "seed")
def t18_settings_survive_loader_restart(ctx):
    conf = conf_with(ctx, "limit7.conf", ("max_connections_per_ip = 3",
                                          "max_connections_per_ip = 7"))
    an = ctx.fresh("--dry-run", conf=conf)
    limit, flags = ctx.settings()
    assert limit == 7 and flags & F_DRY_RUN, \
        f"analyzer --dry-run wrote limit {limit} flags {flags:#x}, expected 7 and dry run"
    # ban_nets in use (as after a network ban): the flag is set in settings by whoever adds
    # the entry; here by hand, as an operator with bpftool would.
    nets = os.path.join(ctx.pin_root, "maps", "ban_nets")
    key = struct.pack("<I", 120) + nstest.addr_key("198.19.7.0")
    ctx.bpftool.map_update(nets, key, nstest.ban_value(reason=0))
    raw = ctx.bpftool.map_lookup_raw(os.path.join(ctx.pin_root, "maps", "settings"), bytes(4))
    ctx.bpftool.map_update(os.path.join(ctx.pin_root, "maps", "settings"), bytes(4),
                           raw[:4] + struct.pack("<I", flags | F_BAN_NETS) + raw[8:])

    seed = struct.unpack_from("<I", raw, NOTE_SEED_OFF)[0]
    assert seed != 0, f"settings.note_seed is 0 after the loader made the map: {raw.hex()}"

    ctx.restart_loader()
    assert "settings reused" in ctx.loader.output("err"), \
        f"the new loader did not say it reused settings:\n{ctx.loader.tail()}"
    raw = ctx.bpftool.map_lookup_raw(os.path.join(ctx.pin_root, "maps", "settings"), bytes(4))
    assert struct.unpack_from("<I", raw, NOTE_SEED_OFF)[0] == seed, \
        f"settings.note_seed changed from {seed:#x} across a loader restart: {raw.hex()}"
    limit, flags = ctx.settings()
    assert flags & F_DRY_RUN, f"after a loader restart settings.flags = {flags:#x}: the " \
                              f"analyzer's dry run was cleared"
    assert limit == 7, f"after a loader restart settings.max_conn_per_ip = {limit}, expected " \
                       f"the analyzer's 7 (the loader's file says 3)"
    assert flags & F_BAN_NETS, f"after a loader restart settings.flags = {flags:#x}: " \
                               f"EBPFMON_F_BAN_NETS lost while ban_nets has an entry"
    assert an.running(), f"analyzer exited on the loader restart:\n{an.output()}"
    ctx.bpftool.map_delete(nets, key)


@test("19. the map is the truth while the analyzer runs: a ban deleted with bpftool ends its "
      "row within an interval, a ban written by hand is recorded within an interval")
def t19_map_is_truth(ctx):
    conf = conf_with(ctx, "long-ban.conf", (f"ban_duration = {BAN_S}s",
                                            f"ban_duration = {LONG_BAN_S}s"))
    an = ctx.fresh(conf=conf)
    srv = ctx.start_server()
    holder = None
    try:
        # a URL ban: one connection, so the connection limit cannot ban the peer again
        res = ctx.send(b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n")
        line = an.wait_line(r"\bbanned " + PEER_RX, 3)
        assert line, f"no 'banned {PEER}' after GET /wp-admin/ ({res}):\n{an.output()}"
        row = ban_row(ctx, PEER)
        ctx.bpftool.map_delete(ctx.bans_map(), nstest.addr_key(PEER), missing_ok=False)
        t0 = time.monotonic()
        rows = ctx.wait_rows(lambda r: r and r[0]["ended_at"] is not None, 2,
                             "SELECT * FROM malicious_ips WHERE id = ?", row["id"])
        assert rows and rows[0]["end_reason"] == "removed from the map", \
            f"ban deleted with bpftool: row {rows}, expected ended as 'removed from the map' " \
            f"within 2 s (interval 0.5 s)"
        log(f"  row ended {time.monotonic() - t0:.1f}s after bpftool map delete")

        ctx.bpftool.map_update(ctx.bans_map(), nstest.addr_key(MANUAL), nstest.ban_value(
            expires_ns=0, reason=0))
        t0 = time.monotonic()
        rows = ctx.wait_rows(lambda r: len(r) == 1, 2,
                             "SELECT * FROM malicious_ips WHERE address = ?", MANUAL)
        assert len(rows) == 1 and rows[0]["source"] == "manual" and \
            rows[0]["expires_at"] is None and rows[0]["ended_at"] is None, \
            f"ban written by hand: rows {rows}, expected one active permanent manual row " \
            f"within 2 s"
        log(f"  hand-written ban recorded {time.monotonic() - t0:.1f}s after bpftool update")
        time.sleep(1.2)  # two more intervals: no duplicate row, no second ban of the peer
        assert len(ctx.bans_of(MANUAL)) == 1, f"rows of {MANUAL}: {ctx.bans_of(MANUAL)}"
        assert len(ctx.bans_of(PEER)) == 1 and ctx.get_ban() is None, \
            f"after the unban: rows of {PEER} {ctx.bans_of(PEER)}, bans {ctx.get_ban()}"
    finally:
        srv.kill()


@test("20. new maps (loader --unload, then a new loader): the analyzer restores the bans in "
      "force from the database; a would-ban of a dry run is never restored")
def t20_new_maps_restore(ctx):
    conf = conf_with(ctx, "long-ban.conf", (f"ban_duration = {BAN_S}s",
                                            f"ban_duration = {LONG_BAN_S}s"))
    an = ctx.fresh(conf=conf)
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        line = wait_verdict(ctx, an, r"\bbanned " + PEER_RX, PEER, 2)
        assert line, f"no 'banned {PEER}' within 2 s:\n{an.output()}"
        before = ctx.get_ban()
        holder.kill()
        srv.kill()
        # a would-ban of a dry run on the same database, still open there
        an = ctx.start_analyzer("--dry-run", conf=conf)
        ctx.add_peer_addr(PEER2)
        srv = ctx.start_server()
        holder = ctx.hold(5, src=PEER2)
        assert wait_verdict(ctx, an, r"would ban " + re.escape(PEER2), PEER2, 3), \
            f"no 'would ban {PEER2}':\n{an.output()}"
        holder.kill()
        srv.kill()
        ctx.stop_analyzer()

        rc = ctx.loader.stop()
        assert rc == 0, f"loader exit status {rc}"
        unload_and_remove(ctx.loader_path, ctx.pin_root, ctx.topo.mon)
        ctx.restart_loader(stop=False)
        assert ctx.get_ban() is None, "the new maps are not empty"
        an = ctx.start_analyzer(conf=conf)
        line = an.wait_line(r"restored the ban of " + PEER_RX + r" from the database", 2)
        assert line, f"no 'restored the ban of {PEER}':\n{an.output()}"
        log(f"  {line}")
        ban = ctx.get_ban()
        assert ban is not None and abs(ban["expires_ns"] - before["expires_ns"]) <= 2 * 10**9, \
            f"restored bans[{PEER}] = {ban}, the original {before}"
        assert ctx.get_ban(PEER2) is None, \
            f"the would-ban of {PEER2} was restored: {ctx.get_ban(PEER2)}"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 1.5)
        assert res == "timeout", f"restored ban: connect from {PEER}: {res}, expected a timeout"
    finally:
        holder.kill()
        srv.kill()


@test("21. max_bans = 1024, filled to capacity: the analyzer starts in under 2 s (twice: "
      "recording the 1024 bans, then knowing them); a new offender evicts the ban expiring "
      "soonest, whose row ends as evicted; one warning")
def t21_full_bans_map(ctx):
    small = conf_with(ctx, "small.conf", ("max_connections_per_ip = 3",
                                          "max_connections_per_ip = 3\nmax_bans = 1024"))
    holder = srv = None
    try:
        ctx.stop_analyzer()
        ctx.restart_loader(conf=small)
        boot = nstest.boottime_ns()
        soonest = "198.19.3.7"
        lines = []
        for i in range(1024):
            ip = f"198.19.{i // 256}.{i % 256}"
            exp = boot + (600 if ip == soonest else 3600) * 10**9
            lines.append("map update pinned " + ctx.bans_map() + " key " +
                         " ".join(f"0x{b:02x}" for b in nstest.addr_key(ip)) + " value " +
                         " ".join(f"0x{b:02x}" for b in nstest.ban_value(expires_ns=exp)))
        batch = ctx.write_file("fill.batch", "\n".join(lines) + "\n")
        ctx.bpftool.cmd("batch", "file", batch)
        assert len(ctx.map_entries("bans")) == 1024, "bans not filled"
        ctx.new_db()
        for what in ("unknown to the database", "known to the database"):
            t0 = time.monotonic()
            an = ctx.start_analyzer(conf=small)
            dt = time.monotonic() - t0
            log(f"  start with 1024 bans {what}: ready after {dt:.2f}s")
            assert dt < 2.0, f"start with a full bans map ({what}) took {dt:.2f}s"
            ctx.stop_analyzer()
        rows = ctx.query("SELECT count(*) AS n FROM malicious_ips WHERE ended_at IS NULL")
        assert rows[0]["n"] == 1024, f"{rows[0]['n']} active rows, expected the 1024 bans"

        an = ctx.start_analyzer(conf=small)
        srv = ctx.start_server()
        res = ctx.send(b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n")
        line = an.wait_line(r"map bans is full", 3)
        assert line, f"no 'map bans is full' after GET /wp-admin/ ({res}):\n{an.output()}"
        log(f"  {line}")
        assert "evicted" in line and "warning" in line, f"unexpected: {line}"
        assert ctx.get_ban() is not None, f"the new offender {PEER} is not in bans"
        assert ctx.get_ban(soonest) is None, f"the ban expiring soonest ({soonest}) stayed"
        rows = ctx.wait_rows(lambda r: r and r[0]["ended_at"] is not None, 2,
                             "SELECT * FROM malicious_ips WHERE address = ?", soonest)
        assert rows and rows[0]["end_reason"] == "evicted: bans map full", \
            f"the evicted ban's row: {rows}"
        assert len(ctx.map_entries("bans")) == 1024
    finally:
        if srv:
            srv.kill()
        ctx.stop_analyzer()
        ctx.clear_bans()
        ctx.restart_loader()  # the test's own configuration: bans back to its size


RETAIN_ROWS = 3000  # rows a table before the start; max_records = 1000
RETAIN_MAX = 1000


@test("27. retention on a full database: 3000 rows a table over max_records = 1000 are cut to "
      "the newest 1000 a table within 5 s of the start, in the interval's slices, while a "
      "connection-limit ban still lands at once")
def t27_retention(ctx):
    conf = conf_with(ctx, "retention.conf", append=f"[database]\nmax_records = {RETAIN_MAX}\n")
    srv = holder = None
    ctx.stop_analyzer()
    ctx.clear_bans()
    ctx.new_db()
    ctx.start_analyzer(conf=conf)  # the schema
    ctx.stop_analyzer()
    now = int(time.time())
    db = sqlite3.connect(ctx.db)
    with db:
        for i in range(RETAIN_ROWS):
            at = now - 86400 + i
            db.execute("INSERT INTO malicious_ips (address, reason, source, hits, banned_at,"
                       " expires_at, ended_at, end_reason) VALUES (?, 'conn_limit', 'auto', 1,"
                       " ?, ?, ?, 'expired')",
                       (f"203.0.113.{i % 250 + 1}", at, at + 60, at + 60))
            sid = db.execute("INSERT INTO network_stats (ts, rx_packets) VALUES (?, ?)",
                             (at, i)).lastrowid
            for k in range(2):
                db.execute("INSERT INTO network_stats_top (stats_id, address, packets)"
                           " VALUES (?, ?, ?)", (sid, f"198.51.100.{k + 1}", 10 - k))
            db.execute("INSERT INTO system_anomalies (kind, started_at, ended_at, peak,"
                       " threshold) VALUES ('cpu', ?, ?, 95, 90)", (at, at + 30))
    db.close()
    pw = pwd.getpwnam(nstest.USER)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(ctx.db + suffix):
            os.chown(ctx.db + suffix, pw.pw_uid, grp.getgrnam(nstest.GROUP).gr_gid)

    counts_sql = ("SELECT (SELECT count(*) FROM malicious_ips) AS bans,"
                  " (SELECT count(*) FROM network_stats) AS stats,"
                  " (SELECT count(*) FROM system_anomalies) AS anomalies,"
                  " (SELECT count(*) FROM network_stats_top) AS tops")
    t0 = time.monotonic()
    an = ctx.start_analyzer(conf=conf)
    try:
        srv, holder = conn_limit_enforced(ctx, an, "while retention runs")
        rows = ctx.wait_rows(lambda r: r and r[0]["bans"] <= RETAIN_MAX + 1
                             and r[0]["stats"] <= RETAIN_MAX + 20
                             and r[0]["anomalies"] <= RETAIN_MAX + 1, 5, counts_sql)
        dt = time.monotonic() - t0
        c = rows[0] if rows else {}
        log(f"  after {dt:.1f}s: {c}")
        # the ban of this test is a row too, and the analyzer's own snapshots come on top
        # (a cpu anomaly of a busy host may open meanwhile: open ones are never deleted)
        assert RETAIN_MAX <= c.get("anomalies", 0) <= RETAIN_MAX + 1 and \
            RETAIN_MAX <= c.get("bans", 0) <= RETAIN_MAX + 1 and \
            RETAIN_MAX <= c.get("stats", 0) <= RETAIN_MAX + 20, \
            f"not cut to max_records = {RETAIN_MAX} within 5 s: {c}\n{an.output()}"
        orphans = ctx.query("SELECT count(*) AS n FROM network_stats_top WHERE stats_id NOT IN"
                            " (SELECT id FROM network_stats)")[0]["n"]
        assert orphans == 0, f"{orphans} top rows of deleted snapshots stayed: {c}"
        oldest = ctx.query("SELECT min(started_at) AS t FROM system_anomalies"
                           " WHERE ended_at IS NOT NULL")[0]["t"]
        assert oldest in (now - 86400 + RETAIN_ROWS - RETAIN_MAX,
                          now - 86400 + RETAIN_ROWS - RETAIN_MAX + 1), \
            f"not the newest {RETAIN_MAX} anomalies kept: the oldest starts at {oldest}"
    finally:
        if holder:
            end_conn_limit(ctx, srv, holder)


def host_cpu():
    """(busy, total) jiffies of /proc/stat's cpu line, counted as the analyzer counts them."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def cpu_percent(a, b):
    return 100.0 * (b[0] - a[0]) / max(1, b[1] - a[1])


BURN_NAME = "ebpfmon-burn"
BURN_S = 4


@test("10. a CPU-burning process opens exactly one cpu anomaly naming it, closed after it stops")
def t10_cpu_anomaly(ctx):
    conf = conf_with(ctx, "cpu.conf", append="[system]\ncpu_threshold_percent = 30\n"
                                             "anomaly_min_intervals = 2\n")
    an = ctx.fresh(conf=conf)

    def quiet():
        """Host CPU under 20% for 0.5 s and no cpu anomaly open: the burner's own episode."""
        c = host_cpu()
        time.sleep(0.5)
        out = an.output()
        return cpu_percent(c, host_cpu()) < 20 and \
            out.count("cpu anomaly: ") == out.count("cpu anomaly ended")

    time.sleep(0.6)  # the first sample: a baseline without the burner
    c = host_cpu()
    ok = nstest.wait_until(quiet, 6, 0)
    assert ok, f"the host is too busy for this test: {cpu_percent(c, host_cpu()):.0f}% CPU " \
               f"without the burner (threshold 30%), or a cpu anomaly is open:\n{an.output()}"
    sql = "SELECT * FROM system_anomalies WHERE kind = 'cpu' AND top_comm = ? ORDER BY id"
    assert ctx.query(sql, BURN_NAME) == [], "a cpu anomaly naming the burner before it started"
    t_start = time.time()
    burner = Background([sys.executable, THIS, "burn", str(BURN_S), BURN_NAME], "burner")
    try:
        assert burner.wait_line(r"^burning", 5, "out"), f"burner: {burner.output()}"
        line = an.wait_line(r"cpu anomaly: .*\(" + re.escape(BURN_NAME) + r"\)", BURN_S)
        assert line, f"no cpu anomaly naming {BURN_NAME} while it burns:\n{an.output()}"
        log(f"  {line}")
        rows = ctx.wait_rows(lambda r: len(r) >= 1, 2, sql, BURN_NAME)
        assert len(rows) == 1 and rows[0]["ended_at"] is None, \
            f"while the burner runs: cpu anomalies naming it {rows}, expected one open row"
        assert burner.wait_line(r"^done", BURN_S + 3, "out"), f"burner: {burner.output()}"
        t_end = time.time()
        cpu0 = host_cpu()
        line = an.wait_line(r"cpu anomaly ended", 5)
        busy = cpu_percent(cpu0, host_cpu())
        assert line, f"the cpu anomaly did not end within 5 s of the burner's end; host CPU " \
                     f"meanwhile {busy:.0f}% (the episode closes below 28.5%: a host busy with " \
                     f"something else keeps it open):\n{an.output()}"
        log(f"  {line}")
        rows = ctx.wait_rows(lambda r: r and r[0]["ended_at"] is not None, 2, sql, BURN_NAME)
        assert len(rows) == 1, f"cpu anomalies naming {BURN_NAME}: {rows}, expected exactly one"
        r = rows[0]
        log(f"  system_anomalies: started_at {r['started_at']} ended_at {r['ended_at']} peak "
            f"{r['peak']:.1f} threshold {r['threshold']} top {r['top_pid']} {r['top_comm']} "
            f"(burner {t_start:.1f}..{t_end:.1f})")
        assert int(t_start) <= r["started_at"] <= t_end, \
            f"anomaly started at {r['started_at']}, the burner ran {t_start:.1f}..{t_end:.1f}"
        assert r["ended_at"] is not None and t_end - 1 <= r["ended_at"] <= t_end + 3, \
            f"anomaly ended at {r['ended_at']}, the burner stopped at {t_end:.1f}"
        assert r["threshold"] == 30 and r["peak"] >= 30, f"threshold/peak: {r}"
        assert r["top_pid"] == burner.pid, f"top_pid {r['top_pid']}, burner pid {burner.pid}"
    finally:
        burner.kill()


@test("11. SIGHUP with a lower limit takes effect: 5 connections pass under 10, are banned "
      "under 3")
def t11_sighup_limit(ctx):
    conf = conf_with(ctx, "limit.conf", ("max_connections_per_ip = 3",
                                         "max_connections_per_ip = 10"))
    an = ctx.fresh(conf=conf)
    assert re.search(r"limit 10 connections", an.output()), f"ready line:\n{an.output()}"
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        assert holder.wait_line(r"^done", 8, "out"), f"holder: {holder.output()}"
        conns = holder.output("out").split()
        assert conns.count("connected") == 5, f"limit 10: the 5 connections got {conns}"
        time.sleep(1.1)  # two scans
        assert ctx.get_ban() is None, f"limit 10, 5 connections: bans[{PEER}] = {ctx.get_ban()}"
        assert not re.search(r"\bbanned " + PEER_RX, an.output()), \
            f"banned under limit 10:\n{an.output()}"
        holder.kill()
        ctx.wait_conns_closed()

        # the same file, now with max_connections_per_ip = 3, and a key read only at start
        old_sock, new_sock = f"{API_DIR}/api.sock", f"{API_DIR}/moved.sock"
        conf_with(ctx, "limit.conf", (f"uds_socket_path = {old_sock}",
                                      f"uds_socket_path = {new_sock}"))
        an.signal(signal.SIGHUP)
        line = an.wait_line(r"reloaded .*limit 3 connections", 3)
        assert line, f"no 'reloaded ... limit 3 connections' after SIGHUP:\n{an.output()}"
        log(f"  {line}")
        kept = an.wait_line(r"reload: uds_socket_path changes from " + re.escape(old_sock) +
                            r" to " + re.escape(new_sock) + r" at the next start", 1)
        assert kept, f"no line saying uds_socket_path applies at the next start:\n{an.output()}"
        assert os.path.exists(old_sock) and not os.path.exists(new_sock), \
            f"the API socket moved on a reload: {os.listdir(API_DIR)}"
        holder = ctx.hold(5)
        line = wait_verdict(ctx, an, r"\bbanned " + PEER_RX, PEER, 3)
        assert line, f"no 'banned {PEER}' after the reload to limit 3:\n{an.output()}"
        log(f"  {line}")
        assert "limit 3" in line, f"ban line does not name the new limit 3: {line}"
        assert "(scan)" not in line, \
            f"the ban came from the scan, not from the kernel's crossing event: the settings " \
            f"map did not get the new limit on reload? {line}"
        assert ctx.get_ban() is not None, f"bans has no entry for {PEER} after '{line}'"
    finally:
        holder.kill()
        srv.kill()


@test("12. network_stats: pings from the peer show in the per-interval totals and in the top "
      "addresses")
def t12_network_stats(ctx):
    ctx.fresh()
    time.sleep(0.7)  # the first interval only primes the deltas
    t0 = time.time()
    n = nstest.ping(ctx.topo.peer, MON, count=6, interval=0.2)
    assert n == 6, f"{n}/6 ping replies from {MON}"
    rows = ctx.wait_rows(lambda r: sum(x["rx_packets"] for x in r) >= 6, 3,
                         "SELECT * FROM network_stats ORDER BY id")
    got = sum(x["rx_packets"] for x in rows)
    assert got >= 6, f"network_stats: {len(rows)} rows, rx_packets summing to {got}, " \
                     f"expected >= 6 after 6 pings: {rows}"
    assert all(t0 - 5 <= x["ts"] <= time.time() + 1 for x in rows), f"odd ts: {rows}"
    top = ctx.query("SELECT t.*, s.ts FROM network_stats_top t JOIN network_stats s"
                    " ON s.id = t.stats_id WHERE t.address = ? ORDER BY s.id", PEER)
    assert top and max(x["packets"] for x in top) > 0, \
        f"network_stats_top has no entry for {PEER} with packets > 0: {top}"
    log(f"  {len(rows)} snapshots, rx_packets {got}; {PEER} in {len(top)} top lists, "
        f"packets up to {max(x['packets'] for x in top)}")


def conn_limit_enforced(ctx, an, what, connect_timeout=1.0):
    """5 held connections from PEER: banned (log line, bans entry), its connects fail. The
    server and the holder are left to the caller: (srv, holder)."""
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        line = wait_verdict(ctx, an, r"\bbanned " + PEER_RX, PEER, 3)
        assert line, f"{what}: no 'banned {PEER}' within 3 s of 5 connections:\n{an.output()}"
        log(f"  {line}")
        ban = ctx.get_ban()
        assert ban is not None and ban["reason"] == REASON_CONN_LIMIT, \
            f"{what}: bans[{PEER}] = {ban} after '{line}'"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, connect_timeout)
        assert res == "timeout", f"{what}: banned peer: connect {res}, expected a timeout"
    except BaseException:
        holder.kill()
        srv.kill()
        raise
    return srv, holder


def end_conn_limit(ctx, srv, holder, *ips):
    """Close the held connections (server side too: the peer's FINs are dropped), unban."""
    holder.kill()
    srv.kill()
    for ip in ips or (PEER,):
        ctx.wait_conns_closed(ip)
    ctx.clear_bans()


def status_with(notify, regex, timeout):
    """The first STATUS= sent to notify that matches regex, waiting for it; None if none."""
    rx = re.compile(regex)

    def found():
        for _, text in notify.datagrams(r"(?m)^STATUS="):
            m = re.search(r"(?m)^STATUS=(.*)$", text)
            if m and rx.search(m.group(1)):
                return m.group(1)
        return None

    return nstest.wait_until(found, timeout, 0.05)


def statuses(notify):
    return [re.search(r"(?m)^STATUS=(.*)$", x).group(1)
            for _, x in notify.datagrams(r"(?m)^STATUS=")]


INTERVAL_S = 0.5  # monitoring_interval of the test configuration


@test("17. IPv6: 5 held connections from 2001:db8::2 ban that very address; its connects time "
      "out; off systemd, the status line is in the log")
def t17_conn_limit_v6(ctx):
    peer6, mon6 = Topology.PEER_V6, Topology.MON_V6
    an = ctx.fresh()
    # no NOTIFY_SOCKET: what STATUS= would say goes to the log when the analyzer is ready
    assert an.wait_line(r"status: \d+ events, \d+ bans", 2), \
        f"no 'status: N events, N bans' line off systemd:\n{an.output()}"
    srv = ctx.start_server()
    holder = ctx.hold(5, host=mon6)
    try:
        line = wait_verdict(ctx, an, r"\bbanned " + re.escape(peer6) + r"\b", peer6, 3)
        assert line, f"no 'banned {peer6}' within 3 s of opening 5 connections:\n{an.output()}"
        log(f"  {line}")
        assert ctx.get_ban(peer6) is not None, f"bans has no entry for {peer6} after '{line}'"
        res = tcp_connect(ctx.topo.peer, mon6, HTTP_PORT, 2.0)
        assert res == "timeout", f"banned peer: connect to [{mon6}]:{HTTP_PORT}: {res}"
    finally:
        holder.kill()
        srv.kill()


@test("13. a database the analyzer cannot write (read-only file, or none in a root-owned "
      "folder) does not stop enforcement: bans work, a warning names it, STATUS says so")
def t13_db_unwritable(ctx):
    # (1) The file exists (made by a first analyzer run), then becomes root's, 0644, in a
    # root-owned 0755 folder: user ebpfmon can read it, not write it.
    ctx.fresh()
    ctx.stop_analyzer()
    db = ctx.db
    folder = os.path.dirname(db)
    for name in os.listdir(folder):
        os.chown(os.path.join(folder, name), 0, 0)
        os.chmod(os.path.join(folder, name), 0o644)
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o755)
    log(f"  {folder}: {sorted(os.listdir(folder))}, all root:root 0644, folder 0755")
    notify = ctx.notify_socket()
    an = ctx.start_analyzer(notify=notify)
    srv, holder = conn_limit_enforced(ctx, an, "read-only database")
    try:
        warn_rx = r"database " + re.escape(db) + r"\b.*(?:unavailable|cannot be written)"
        line = an.wait_line(warn_rx, 2 * INTERVAL_S + 1)
        assert line, f"read-only database: no warning 'database {db} ... unavailable' or " \
                     f"'... cannot be written':\n{an.output()}"
        log(f"  {line}")
        st = status_with(notify, r"\b1 bans\b.*database (?:unavailable|failing)",
                         2 * INTERVAL_S + 0.5)
        assert st, f"read-only database: no STATUS= with '1 bans' and 'database unavailable'" \
                   f" or 'database failing' within two intervals: {statuses(notify)}"
        log(f"  STATUS={st}")
        assert an.running(), f"the analyzer exited ({an.proc.returncode}):\n{an.output()}"
    finally:
        end_conn_limit(ctx, srv, holder)
    ctx.stop_analyzer()
    assert ctx.bans_of(PEER) == [], \
        f"the read-only database got a row after all (the test's setup is wrong): " \
        f"{ctx.bans_of(PEER)}"

    # (2) No file, and a folder (root's, 0755) where user ebpfmon cannot create one.
    folder = tempfile.mkdtemp(prefix="db-root-", dir=ctx.tmpdir)
    os.chmod(folder, 0o755)
    ctx.db = db = os.path.join(folder, "ebpfmon.db")
    notify = ctx.notify_socket()
    an = ctx.start_analyzer(notify=notify)
    line = an.wait_line(r"database " + re.escape(db) + r"\b.*unavailable", 1)
    assert line, f"no database: no warning 'database {db} unavailable':\n{an.output()}"
    log(f"  {line}")
    st = status_with(notify, r"database unavailable", 2 * INTERVAL_S + 0.5)
    assert st, f"no database: no STATUS= saying 'database unavailable': {statuses(notify)}"
    log(f"  STATUS={st}")
    srv, holder = conn_limit_enforced(ctx, an, "no database")
    try:
        st = status_with(notify, r"\b1 bans\b.*database unavailable", 2 * INTERVAL_S + 0.5)
        assert st, f"no database: no STATUS= with '1 bans' and 'database unavailable' within " \
                   f"two intervals of the ban: {statuses(notify)}"
        log(f"  STATUS={st}")
        assert an.running(), f"the analyzer exited ({an.proc.returncode}):\n{an.output()}"
        assert not os.path.lexists(db), f"{db} exists: {os.listdir(folder)}"
    finally:
        end_conn_limit(ctx, srv, holder)


NET24 = "198.18.0.0"


@test("14. cidr_ban_threshold = 2: two banned addresses of 198.18.0.0/24 ban the network "
      "(ban_nets, EBPFMON_F_BAN_NETS), a third address is dropped too; not when the network "
      "overlaps the allowlist")
def t14_cidr_escalation(ctx):
    ctx.add_peer_addr(PEER2)
    ctx.add_peer_addr(PEER3)
    threshold = ("[network]\n", "[network]\ncidr_ban_threshold = 2\n")
    net_rx = re.escape(NET24) + r"/24\b"

    def two_offenders(an):
        srv = ctx.start_server()
        holders = [ctx.hold(5, src=PEER), ctx.hold(5, src=PEER2)]
        try:
            for ip in (PEER, PEER2):
                line = wait_verdict(ctx, an, r"\bbanned " + ip_rx(ip), ip, 3)
                assert line, f"no 'banned {ip}' within 3 s of 5 connections:\n{an.output()}"
                log(f"  {line}")
        except BaseException:
            for bg in holders + [srv]:
                bg.kill()
            raise
        return srv, holders

    # (1) The monitor's own 198.18.0.1 is allowlisted: the /24 overlaps it, is not banned.
    conf = conf_with(ctx, "cidr-allow.conf", threshold,
                     ("allowlist = 127.0.0.0/8, ::1", f"allowlist = 127.0.0.0/8, ::1, {MON}"))
    an = ctx.fresh(conf=conf)
    srv, holders = two_offenders(an)
    try:
        line = an.wait_line(r"not banning network " + net_rx + r".*overlaps allowlisted " +
                            re.escape(MON) + r"\b", 1)
        assert line, f"allowlisted {MON}: no 'not banning network {NET24}/24 ... overlaps " \
                     f"allowlisted {MON}':\n{an.output()}"
        log(f"  {line}")
        assert not re.search(r"\bbanned network", an.output()), \
            f"network banned although it overlaps the allowlist:\n{an.output()}"
        assert ctx.ban_nets() == [], f"ban_nets: {ctx.ban_nets()}"
        assert not ctx.settings_flags() & F_BAN_NETS, \
            f"settings.flags {ctx.settings_flags():#x} has EBPFMON_F_BAN_NETS, ban_nets is empty"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 1.5, src=PEER3)
        assert res == "connected", f"{PEER3} (not banned, network not banned): connect {res}"
        n = nstest.ping(ctx.topo.peer, MON, count=1, src=PEER3)
        assert n == 1, f"{PEER3} (not banned, network not banned): ping {n}/1"
    finally:
        for h in holders:
            h.kill()
        srv.kill()
    for ip in (PEER, PEER2, PEER3):
        ctx.wait_conns_closed(ip)

    # (2) Not allowlisted: the second banned address bans 198.18.0.0/24 (for as long as its
    # own ban: 30 s here, so that the checks below are well inside it).
    conf = conf_with(ctx, "cidr.conf", threshold, (f"ban_duration = {BAN_S}s",
                                                   f"ban_duration = {LONG_BAN_S}s"))
    an = ctx.fresh(conf=conf)
    assert not ctx.settings_flags() & F_BAN_NETS, \
        f"settings.flags {ctx.settings_flags():#x}: EBPFMON_F_BAN_NETS before any network ban"
    srv, holders = two_offenders(an)
    try:
        line = an.wait_line(r"\bbanned network " + net_rx, 1)
        assert line, f"two banned addresses of {NET24}/24, threshold 2: no 'banned network " \
                     f"{NET24}/24':\n{an.output()}"
        log(f"  {line}")
        nets = ctx.ban_nets()
        assert len(nets) == 1 and nets[0][:2] == (NET24, 120), \
            f"ban_nets: {nets}, expected one entry ::ffff:{NET24} prefixlen 120"
        ban = nets[0][2]
        left_s = (ban["expires_ns"] - nstest.boottime_ns()) / 1e9
        assert ban["reason"] == REASON_ESCALATED and LONG_BAN_S - 5 < left_s <= LONG_BAN_S, \
            f"ban_nets[{NET24}/24] = {ban} ({left_s:.1f} s left), expected reason " \
            f"{REASON_ESCALATED} (escalated) and about {LONG_BAN_S} s"
        flags = ctx.settings_flags()
        assert flags & F_BAN_NETS, \
            f"settings.flags {flags:#x}: EBPFMON_F_BAN_NETS not set, XDP skips ban_nets"
        n = nstest.ping(ctx.topo.peer, MON, count=2, wait=1, src=PEER3)
        assert n == 0, f"network {NET24}/24 banned: ping from {PEER3} got {n}/2 replies"
        res = tcp_connect(ctx.topo.peer, MON, HTTP_PORT, 1.0, src=PEER3)
        assert res == "timeout", f"network {NET24}/24 banned: connect from {PEER3}: {res}, " \
                                 f"expected a timeout"
        assert ctx.get_ban(PEER3) is None, f"{PEER3} got a ban of its own: {ctx.get_ban(PEER3)}"
        drops = ctx.ban_nets()[0][2]["drops"]
        assert drops > 0, f"ban_nets[{NET24}/24].drops = {drops} after {PEER3}'s packets"
        log(f"  {PEER3}: ping 0/2, connect {res}; ban_nets drops {drops}, flags {flags:#x}")
        rows = ctx.wait_rows(lambda r: r, 2, "SELECT * FROM malicious_ips WHERE address = ? "
                             "AND prefix_len = 24", NET24)
        assert len(rows) == 1 and rows[0]["reason"] == "escalated", \
            f"malicious_ips rows of {NET24}/24: {rows}, expected one 'escalated'"
    finally:
        for h in holders:
            h.kill()
        srv.kill()
        ctx.clear_bans()


# Found by test 15 (reported, not fixed here).
WAIT_BUG = ("BUG in analyzer/maps.c maps_open(): the --wait deadline compares whole seconds "
            "(now.tv_sec - start.tv_sec >= wait_s), so --wait N gives up after N-1 to N s: "
            "--wait 1 may not wait at all")


@test("15. no loader: --wait 1 on a pin root that does not exist exits 1 within 3 s, naming "
      "the map and asking 'is ebpfmon-loader running?'")
def t15_no_loader(ctx):
    root = f"{ctx.pin_root}-noloader"
    assert not os.path.lexists(root), f"{root} exists"
    CLEANUP.push(f"remove {root}", lambda: nstest.remove_pin_root(root))
    ctx.new_db()
    # Start 0.3 s into a second of CLOCK_MONOTONIC (time.monotonic()'s clock): a deadline
    # counted in whole seconds of it (tv_sec) then comes 0.6 to 0.7 s later, every time.
    time.sleep((1.3 - time.monotonic() % 1.0) % 1.0)
    t0 = time.monotonic()
    r = nstest.run(ctx.analyzer_cmd("--pin-root", root, wait=1), check=False, timeout=15)
    took = time.monotonic() - t0
    out = (r.stderr + r.stdout).strip()
    log(f"  rc={r.returncode} after {took:.2f}s (started {t0 % 1.0:.2f} s into a second of "
        f"CLOCK_MONOTONIC): {out.splitlines()[-1] if out else ''}")
    assert r.returncode == 1, f"exit status {r.returncode}, expected 1:\n{out}"
    assert took <= 3.0, f"--wait 1: exited after {took:.1f} s, expected within 3 s"
    lines = re.findall(r"^.*" + re.escape(f"{root}/maps/") + r"\w+.*$", out, re.M)
    assert any("is ebpfmon-loader running?" in x for x in lines), \
        f"no message naming a map under {root}/maps/ and 'is ebpfmon-loader running?':\n{out}"
    assert not os.path.lexists(root), f"{root} was created"
    assert took >= 0.95, f"{WAIT_BUG}: --wait 1 gave up after {took:.2f} s"


@test("16. NOTIFY_SOCKET: READY=1 only after the 'ready' log line; a STATUS= with events and "
      "bans within two intervals, and again")
def t16_ready_status(ctx):
    ctx.new_db()
    notify = ctx.notify_socket()
    # The analyzer's stderr is a socket connected to the notify socket: its log lines and its
    # notifications land in one queue, in the order the analyzer wrote and sent them.
    err = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        err.connect(notify.path)
        ctx.analyzer = an = Background(ctx.analyzer_cmd(), "analyzer",
                                       env=dict(os.environ, NOTIFY_SOCKET=notify.path),
                                       stderr=err.fileno())
    finally:
        err.close()

    def dump():
        seq = notify.datagrams()
        return "\n".join(f"{t - seq[0][0]:7.3f}s {x!r}" for t, x in seq) or "(nothing)"

    ready = nstest.wait_until(lambda: notify.datagrams(r"(?m)^READY=1$"), 10)
    assert ready, f"no READY=1 within 10 s (running={an.running()}); got:\n{dump()}"
    seq = notify.datagrams()
    i_ready = next(i for i, (_, x) in enumerate(seq) if re.search(r"(?m)^READY=1$", x))
    lines = [i for i, (_, x) in enumerate(seq) if re.search(r"^ebpfmon-analyzer: \w+: ready\b", x)]
    assert lines and lines[0] < i_ready, \
        f"READY=1 (datagram {i_ready}) was not preceded by the 'ready' log line " \
        f"(datagrams {lines}):\n{dump()}"
    log(f"  {seq[lines[0]][1].strip()}")
    t_ready = seq[i_ready][0]
    time.sleep(2 * INTERVAL_S + 0.2)
    st = [(t, re.search(r"(?m)^STATUS=(.*)$", x).group(1))
          for t, x in notify.datagrams(r"(?m)^STATUS=") if t >= t_ready]
    good = [(t, x) for t, x in st if re.search(r"\d+ events\b", x) and re.search(r"\d+ bans\b", x)]
    assert good and good[0][0] - t_ready <= 2 * INTERVAL_S, \
        f"no STATUS= naming events and bans within {2 * INTERVAL_S} s of READY=1:\n{dump()}"
    log(f"  STATUS={good[0][1]} ({good[0][0] - t_ready:.3f}s after READY=1)")
    assert len(good) >= 2 and good[1][0] - good[0][0] <= 2 * INTERVAL_S, \
        f"STATUS= not sent again within two intervals ({2 * INTERVAL_S} s):\n{dump()}"
    log(f"  STATUS= again after {good[1][0] - good[0][0]:.3f}s: {good[1][1]}")
    ready_count = len(notify.datagrams(r"(?m)^READY=1$"))
    assert ready_count == 1, f"READY=1 sent {ready_count} times:\n{dump()}"
    assert an.running(), f"the analyzer exited ({an.proc.returncode}):\n{dump()}"


@test("26. under journald a ban is one structured journal entry (MESSAGE_ID, EBPFMON_ADDRESS, "
      "EBPFMON_REASON, EBPFMON_DURATION_SEC) and not a stderr line")
def t26_journal_entries(ctx):
    ctx.new_db()
    # journald's native socket: in a private mount namespace of the analyzer, a tmpfs on /run
    # holds /run/systemd/journal, bound to a datagram socket of this test; stderr is a pipe that
    # JOURNAL_STREAM names, as systemd sets it for a service.
    jdir = os.path.join(ctx.tmpdir, "journal")
    os.makedirs(jdir, exist_ok=True)
    os.chmod(jdir, 0o755)
    journal = nstest.NotifySocket(os.path.join(jdir, "socket"))
    CLEANUP.push("close the journal socket", journal.close)
    inner = " ".join(shlex.quote(x) for x in ctx.analyzer_cmd())
    script = ("mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "
              f"mount --bind {shlex.quote(jdir)} /run/systemd/journal && "
              "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) && export JOURNAL_STREAM && "
              f"exec {inner}")
    ctx.stop_analyzer()
    ctx.analyzer = an = Background(["unshare", "-m", "sh", "-c", script], "analyzer")
    ready = an.wait_line(r"\bready\b", 10)
    assert ready and an.running(), f"the analyzer did not start under 'journald':\n{an.output()}"
    srv = ctx.start_server()
    holder = ctx.hold(5)
    try:
        banned = nstest.wait_until(lambda: ctx.get_ban() is not None, 3)
        assert banned, f"no ban of {PEER} within 3 s of 5 connections:\n{an.output()}"
        entry = nstest.wait_until(
            lambda: [x for _, x in journal.datagrams(r"(?m)^MESSAGE_ID=" + BAN_MID + "$")], 2)
        assert entry, f"no journal entry with MESSAGE_ID={BAN_MID}; got:\n" + \
            "\n".join(x for _, x in journal.datagrams())
        fields = dict(l.split("=", 1) for l in entry[0].splitlines() if "=" in l)
        log("  " + " ".join(f"{k}={v}" for k, v in sorted(fields.items())
                            if k.startswith(("EBPFMON_", "MESSAGE_ID", "PRIORITY"))))
        assert fields.get("EBPFMON_ADDRESS") == PEER and \
            fields.get("EBPFMON_REASON") == "conn_limit" and \
            fields.get("EBPFMON_DURATION_SEC", "").isdigit() and \
            fields.get("PRIORITY") == "6" and \
            fields.get("SYSLOG_IDENTIFIER") == "ebpfmon-analyzer" and \
            re.match(r"banned " + PEER_RX, fields.get("MESSAGE", "")), f"fields: {fields}"
        assert not an.wait_line(r"\bbanned " + PEER_RX, 0.2), \
            f"the ban went to stderr as well:\n{an.output()}"
    finally:
        holder.kill()
        srv.kill()
        ctx.stop_analyzer()
        for ip in (PEER,):
            ctx.wait_conns_closed(ip)
        ctx.clear_bans()


BAN_MID = "100b12c5333a4931b5494b767a39e081"  # LOG_MID_BAN of common/log.h


@test("22. a second analyzer on the same pins exits 1 at once naming the first one's pid and "
      "the lock; the first goes on")
def t22_second_analyzer(ctx):
    first = ctx.fresh()
    db = ctx.db
    ctx.new_db()  # the second one's own database: only the pins are shared
    t0 = time.monotonic()
    r = nstest.run(ctx.analyzer_cmd(wait=5), check=False, timeout=20)
    took = time.monotonic() - t0
    ctx.db = db
    out = (r.stderr + r.stdout).strip()
    log(f"  rc={r.returncode} after {took:.2f}s: {out.splitlines()[-1] if out else ''}")
    assert r.returncode == 1, f"second analyzer: exit status {r.returncode}, expected 1:\n{out}"
    assert took <= 3.0, f"second analyzer exited after {took:.1f} s, expected at once"
    lock = f"{ctx.pin_root}/analyzer"
    assert re.search(r"\bpid " + str(first.pid) + r"\b.*" + re.escape(lock), out), \
        f"no message naming the first analyzer (pid {first.pid}) and {lock}:\n{out}"
    assert not re.search(r"\bready\b", out), f"the second analyzer got ready:\n{out}"
    assert first.running(), f"the first analyzer exited:\n{first.output()}"
    # The first one still owns the ring buffer: a connection-limit crossing still bans.
    srv, holder = conn_limit_enforced(ctx, first, "the first analyzer, after the second")
    end_conn_limit(ctx, srv, holder)


@test("23. a user that may not open the pins: exits 1 at once (not after --wait), naming the "
      "refusing folder, its owner, group and mode, and the user")
def t23_pins_denied(ctx):
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise AssertionError("no user 'nobody' to run an analyzer outside group ebpfmon")
    gr = grp.getgrgid(pw.pw_gid)
    assert nstest.USER not in gr.gr_mem and gr.gr_name != nstest.GROUP, \
        f"user nobody is in group {gr.gr_name}"
    ctx.new_db()
    cmd = ["setpriv", "--reuid", "nobody", "--regid", gr.gr_name, "--init-groups",
           "--inh-caps=-all", "--bounding-set=-all", ctx.analyzer_path, "-c", ctx.conf,
           "--db", ctx.db, "--wait", "10"]
    t0 = time.monotonic()
    r = nstest.run(cmd, check=False, timeout=30)
    took = time.monotonic() - t0
    out = (r.stderr + r.stdout).strip()
    log(f"  rc={r.returncode} after {took:.2f}s: {out.splitlines()[-1] if out else ''}")
    assert r.returncode == 1, f"exit status {r.returncode}, expected 1:\n{out}"
    assert took <= 3.0, f"exited after {took:.1f} s of --wait 10: it waited for a loader that " \
                        f"is already there\n{out}"
    # The pin root is root:ebpfmon 0750: nobody may not search it.
    want = (re.escape(ctx.pin_root) + r" \(folder, owner root, group " + nstest.GROUP +
            r", mode 0750\).*\buser nobody\b")
    assert re.search(want, out), f"no message naming {ctx.pin_root}, root, {nstest.GROUP}, " \
                                 f"0750 and user nobody:\n{out}"
    assert re.search(re.escape(f"{ctx.pin_root}/maps/") + r"\w+", out), \
        f"the message does not name the map it could not open:\n{out}"


@test("24. new maps under a running analyzer (loader --unload, then a new loader): it exits 1 "
      "within 2 intervals naming the pin root; a new analyzer then bans")
def t24_maps_replaced(ctx):
    an = ctx.fresh()
    rc = ctx.loader.stop()
    assert rc == 0, f"loader exit status {rc}:\n{ctx.loader.tail()}"
    unload_and_remove(ctx.loader_path, ctx.pin_root, ctx.topo.mon)
    ctx.restart_loader(stop=False)
    t0 = time.monotonic()
    rc = an.wait(2 * INTERVAL_S)
    took = time.monotonic() - t0
    assert rc is not None, f"the analyzer still runs {2 * INTERVAL_S} s after a new loader " \
                           f"replaced the maps it holds (deaf to the new ring buffer, its " \
                           f"bans in maps no longer attached):\n{an.output()}"
    line = an.wait_line(r"maps under " + re.escape(ctx.pin_root) + r" were replaced.*"
                        r"exiting so that a restart attaches to the new ones", 1)
    log(f"  rc={rc} {took:.2f}s after the new loader was ready: {line}")
    assert rc == 1, f"exit status {rc}, expected 1 (Restart=on-failure):\n{an.output()}"
    assert line, f"no 'maps under {ctx.pin_root} were replaced ... exiting so that a restart " \
                 f"attaches to the new ones':\n{an.output()}"
    an = ctx.start_analyzer()
    srv, holder = conn_limit_enforced(ctx, an, "the analyzer started on the new maps")
    end_conn_limit(ctx, srv, holder)


@test("25. one request, one offence across a restart: GET /wp-admin/ from a client that keeps "
      "retransmitting it, the analyzer restarted during the ban: after the ban ends the "
      "retransmission bans nobody")
def t25_retransmit_after_restart(ctx):
    an = ctx.fresh()
    srv = ctx.start_server()
    # XDP drops the request: the client's kernel retransmits it (0.2, 0.6, 1.4, 3, 6.2 s...)
    client = Background(ctx.topo.in_peer([sys.executable, THIS, "send-keep", MON,
                                          str(HTTP_PORT),
                                          b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n".hex()]),
                        "retransmitter")
    try:
        line = an.wait_line(r"\bbanned " + PEER_RX, 3)
        assert line, f"no 'banned {PEER}' after GET /wp-admin/:\n{an.output()}\n" \
                     f"client: {client.output()}"
        log(f"  {line}")
        an = ctx.start_analyzer("-v")  # same database; -v shows the retransmissions
        end = an.wait_line(r"ban of " + PEER_RX + r".*ended", BAN_S + 3)
        assert end, f"no 'ban of {PEER} ended' within {BAN_S + 3} s:\n{an.output()}"
        again = an.wait_line(r"\bbanned " + PEER_RX + r"|" + re.escape(PEER) +
                             r":\d+ requested .* a retransmission, not a new offence", 10)
        log(f"  after the ban: {again}")
        assert again, f"the request was not seen again within 10 s of the ban's end (no " \
                      f"retransmission?):\n{an.output()}\nclient: {client.output()}"
        assert not re.search(r"\bbanned " + PEER_RX, an.output()), \
            f"the retransmitted request banned {PEER} again after a restart:\n{an.output()}"
        assert len(ctx.bans_of(PEER)) == 1, f"rows of {PEER}: {ctx.bans_of(PEER)}"
    finally:
        client.kill()
        srv.kill()


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


def _hold(host, port, n, timeout, src=None):
    nstest._die_with_parent()
    held = []
    for _ in range(n):
        c = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(timeout)
        if src:
            c.bind((src, 0))
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
    # close() resets the connection: a request that XDP drops is not retransmitted for
    # minutes by an orphaned socket, reaching (and banning in) the tests that follow.
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
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


def _send_keep(host, port, data):
    """Send data and keep the connection open: the kernel retransmits what XDP drops. Killed,
    the socket is reset (SO_LINGER 0), so no orphan goes on retransmitting."""
    nstest._die_with_parent()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.connect((host, port))
    c.sendall(data)
    print("sent", flush=True)
    while True:
        signal.pause()


def _burn(seconds, name):
    """Keep one CPU busy for seconds, named name (comm, prctl PR_SET_NAME)."""
    nstest._die_with_parent()
    import ctypes

    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
    print("burning", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    print("done", flush=True)


def before_test(ctx):
    ctx.test_start_ns = nstest.boottime_ns()
    ctx.analyzer = None  # the previous test's (stopped): not to be shown if this one fails


def on_fail(ctx):
    if ctx.analyzer is not None:
        log(f"    analyzer output:\n{ctx.analyzer.output()}")


def after_test(ctx):
    ctx.stop_analyzer()
    ctx.clear_bans()


def main():
    return nstest.main(
        __doc__.split("\n")[0], TESTS, Ctx,
        programs=[("loader", "path of ebpfmon-loader"),
                  ("analyzer", "path of ebpfmon-analyzer")],
        tools=["ip", "nsenter", "ping", "setpriv"],
        setup_what="the namespaces and the loader", before_test=before_test, on_fail=on_fail,
        after_test=("stopping the analyzer / clearing bans", after_test))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve-hold":
        _serve_hold(int(sys.argv[2]))
    elif len(sys.argv) in (6, 7) and sys.argv[1] == "hold":
        _hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
              sys.argv[6] if len(sys.argv) == 7 else None)
    elif len(sys.argv) == 5 and sys.argv[1] == "send-keep":
        _send_keep(sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "burn":
        _burn(float(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "send":
        sys.exit(_send(sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4]),
                       float(sys.argv[5])))
    else:
        sys.exit(main())
