#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of ebpfmon-loader: real BPF, real network namespaces, real traffic.

    test_loader.py --loader build/loader/ebpfmon-loader [--bpftool bpftool] [--only NAME] [-v]

Two namespaces (emt-mon-<pid>, emt-peer-<pid>) joined by a veth pair, 198.18.0.0/24 and
2001:db8::/64 only; the loader runs in the monitor namespace on a private pin root
/sys/fs/bpf/ebpfmon-test-<pid>. Everything is removed again, also on failure and on SIGTERM.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped (not root, no ebpfmon user/group, no bpffs).
The last line is "N passed, N failed".
"""

import grp
import inspect
import os
import pwd
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import (BPFFS, CLEANUP, PIN_PREFIX, Bpftool, Loader, Topology, addr_key,  # noqa: E402
                    ban_value, boottime_ns, log, ns_cmd, ping, proc_comm, proc_status, run,
                    start_tcp_server, stat_owner_mode, tcp_connect, unload_and_remove,
                    wait_connect_ok, wait_ping_ok, wait_until)

MAPS = ("bans", "ban_nets", "allow_nets", "ip_stats", "conn_count", "conn_socks", "url_rules",
        "settings", "counters", "events", "proc_io", "prog_stats")
# the analyzer's user's (0640); the other maps root's (0640)
MAPS_RW = ("bans", "ban_nets", "allow_nets", "url_rules", "settings", "events")

# each pin given opened read-write, else read-only (nstest.bpf_obj_get, carried in the script:
# the other user may not read the source tree): prints "PATH rw", "PATH ro" or "PATH none"
OBJ_GET_PY = f"""
import os, struct, sys
SYS_BPF, BPF_OBJ_GET = {nstest.SYS_BPF}, {nstest.BPF_OBJ_GET}
{inspect.getsource(nstest.bpf_obj_get)}
for p in sys.argv[1:]:
    got = "none"
    for flags, what in ((0, "rw"), ({nstest.BPF_F_RDONLY}, "ro")):
        fd = bpf_obj_get(p, flags)
        if fd >= 0:
            os.close(fd)
            got = what
            break
    print(p, got)
"""
PROGS = ("xdp_ingress", "egress_account", "sock_state", "block_io")
LINKS_FIXED = ("sock_state", "block_io")  # plus xdp-<ifname> and egress-<ifname>
TCP_PORT = 9000
COMM = "ebpfmon-loader"

CONF = """\
# ebpfmon integration test configuration (written by test_loader.py)
[network]
max_connections_per_ip = 100
max_tracked_ips = 4096
http_ports = 80
allowlist = 127.0.0.0/8, ::1
"""

BAD_CONF = """\
[network]
max_tracked_ips = 4096
no_such_key_xyz = 1
"""
BAD_CONF_LINE = 3
BAD_KEY = "no_such_key_xyz"


class Ctx:
    def __init__(self, args):
        self.loader_path = os.path.abspath(args.loader)
        self.bpftool = Bpftool(args.bpftool)
        self.topo = Topology()
        self.pin_root = f"{BPFFS}/{PIN_PREFIX}{os.getpid()}"
        self.extra = ["-v"] if args.loader_verbose else []
        self.loader = None
        self.uid = pwd.getpwnam(nstest.USER).pw_uid
        self.gid = grp.getgrnam(nstest.GROUP).gr_gid
        self.tmpdir = tempfile.mkdtemp(prefix=f"ebpfmon-it-{os.getpid()}-")
        CLEANUP.push(f"remove {self.tmpdir}", lambda: shutil.rmtree(self.tmpdir, True))
        os.chmod(self.tmpdir, 0o755)  # the unprivileged loader reaches the notify socket
        self.conf = self.write_file("ebpfmon.conf", CONF)

    def write_file(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def setup(self):
        if os.path.lexists(self.pin_root):
            raise AssertionError(f"{self.pin_root} exists already")
        self.topo.setup()  # pushes the namespace removal
        # Runs after every loader is stopped (they are pushed later) and before the
        # namespaces go: --unload, then rm -rf as the last resort.
        CLEANUP.push(f"unload {self.pin_root}", lambda: unload_and_remove(
            self.loader_path, self.pin_root, self.topo.mon))
        self.server = start_tcp_server(self.topo.mon, TCP_PORT)

    # -- the loader -------------------------------------------------------------------

    def loader_args(self, *extra, pin_root=None, conf=None):
        return (["-c", conf or self.conf, "-i", self.topo.mon_if, "--pin-root",
                 pin_root or self.pin_root] + self.extra + list(extra))

    def start_loader(self):
        lo = Loader(self.loader_path, self.topo.mon, self.loader_args(), self.tmpdir)
        self.loader = lo
        lo.wait_ready()
        comm = proc_comm(lo.pid)
        assert comm == COMM, f"pid {lo.pid} is {comm!r}, not {COMM!r} (nsenter did not exec?)"
        return lo

    def ensure_loader(self):
        if self.loader is not None and self.loader.running():
            return self.loader
        return self.start_loader()

    def run_loader(self, args, timeout=30):
        """One-shot loader run inside the monitor namespace."""
        return run(ns_cmd(self.topo.mon, [self.loader_path] + list(args)), check=False,
                   timeout=timeout)

    # -- maps -------------------------------------------------------------------------

    def pin(self, *parts):
        return os.path.join(self.pin_root, *parts)

    def map(self, name):
        return self.pin("maps", name)

    def ban(self, ip, expires_ns=0):
        """A ban as the analyzer writes it: the entry, then settings.ban_gen grown."""
        self.bpftool.map_update(self.map("bans"), addr_key(ip), ban_value(expires_ns))
        self.bpftool.ban_gen_bump(self.map("settings"))

    def unban(self, ip):
        return self.bpftool.map_delete(self.map("bans"), addr_key(ip))

    def get_ban(self, ip):
        return self.bpftool.ban_get(self.map("bans"), ip)

    def clear_bans(self):
        if os.path.lexists(self.map("bans")):
            for ip in (Topology.PEER_V4, Topology.PEER_V6):
                self.unban(ip)

    def link_pins(self):
        d = self.pin("links")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


TESTS, test = nstest.test_registry()


# ---------------------------------------------------------------------------------------


# The loader unit's CapabilityBoundingSet= (packaging/systemd/ebpfmon-loader.service): root
# without CAP_DAC_OVERRIDE, as under systemd.
UNIT_CAPS = ["setpriv", "--bounding-set=-all,+bpf,+perfmon,+net_admin,+chown,+setuid,+setgid,"
             "+setpcap", "--inh-caps=-all"]


def as_loader_user(cmd):
    """cmd run as the user the loader becomes, without capabilities."""
    return ["setpriv", f"--reuid={nstest.USER}", f"--regid={nstest.GROUP}", "--init-groups",
            "--inh-caps=-all", "--bounding-set=-all"] + cmd


@test("startup: READY=1 over NOTIFY_SOCKET, 'ready' logged, XDP mode logged and attached")
def t0_startup(ctx):
    if ctx.loader is not None and ctx.loader.running():
        ctx.loader.stop()
    lo = ctx.start_loader()  # asserts READY=1 arrived on the notify socket
    assert lo.wait_line(r"ready", 3, "err"), f"no line containing 'ready' on stderr:\n{lo.tail()}"
    status = wait_until(lambda: lo.notify.seen("STATUS"), 2)
    assert status, f"no STATUS=... sent to NOTIFY_SOCKET (got {lo.notify.messages})"
    log(f"  STATUS={status}")

    ifn = ctx.topo.mon_if
    line = lo.wait_line(rf"{re.escape(ifn)}.*\b(generic|native|driver|skb|drv)\b|"
                        rf"\b(generic|native|driver|skb|drv)\b.*{re.escape(ifn)}", 3, "err")
    assert line, f"no line saying which XDP mode {ifn} got:\n{lo.tail()}"
    log(f"  mode line: {line}")
    xdp = ctx.topo.bpftool_net_xdp(ctx.bpftool.path)
    assert len(xdp) == 1, f"bpftool net show dev {ifn}: expected one XDP program, got {xdp}"
    kmode = xdp[0].get("mode")
    reported = "generic" if re.search(r"\b(generic|skb)\b", line) else "native"
    expected = {"generic": "generic", "skb": "generic", "driver": "native",
                "drv": "native"}.get(kmode)
    assert reported == expected, (f"loader says {reported!r} but the kernel has XDP mode "
                                  f"{kmode!r} on {ifn}: {line}")
    log(f"  {ifn}: XDP mode {kmode} (auto)")
    # --xdp-mode auto: native on NICs, generic on virtual devices such as veth.
    assert reported == "generic", f"auto mode on a veth should be generic, got {reported}: {line}"
    assert ctx.topo.xdp_in_link_details(), f"ip -d link show: no xdp:\n{ctx.topo.link_details()}"


@test("1. pins exist with the documented owners and modes; bans dump shows BTF field names")
def t1_pins(ctx):
    ctx.ensure_loader()
    problems = []

    def expect(path, uid, gid, mode):
        if not os.path.lexists(path):
            problems.append(f"{path}: missing")
            return
        u, g, m = stat_owner_mode(path)
        want = f"{uid if uid is not None else '*'}:{gid if gid is not None else '*'} {mode:04o}"
        if (uid is not None and u != uid) or (gid is not None and g != gid) or m != mode:
            problems.append(f"{path}: {u}:{g} {m:04o}, expected {want}")

    expect(ctx.pin_root, 0, ctx.gid, 0o750)
    expect(ctx.pin("maps"), 0, ctx.gid, 0o750)
    for m in MAPS:
        expect(ctx.map(m), ctx.uid if m in MAPS_RW else 0, ctx.gid, 0o640)
    expect(ctx.pin("progs"), 0, 0, 0o700)
    for p in PROGS:
        path = ctx.pin("progs", p)
        if not os.path.lexists(path):
            problems.append(f"{path}: missing")
        elif os.lstat(path).st_uid != 0:
            problems.append(f"{path}: owner uid {os.lstat(path).st_uid}, expected 0")
    expect(ctx.pin("links"), ctx.uid, None, 0o700)
    expect(ctx.pin("analyzer"), ctx.uid, None, 0o700)
    if os.path.isdir(ctx.pin("analyzer")) and os.listdir(ctx.pin("analyzer")):
        problems.append(f"{ctx.pin('analyzer')}: not empty: {os.listdir(ctx.pin('analyzer'))}")
    for link in (f"xdp-{ctx.topo.mon_if}", f"egress-{ctx.topo.mon_if}") + LINKS_FIXED:
        if not os.path.lexists(ctx.pin("links", link)):
            problems.append(f"{ctx.pin('links', link)}: missing")
    extra = sorted(set(os.listdir(ctx.pin("maps"))) - set(MAPS)) if os.path.isdir(
        ctx.pin("maps")) else []
    if extra:
        log(f"  note: extra map pins {extra}")
    assert not problems, "pin layout:\n  " + "\n  ".join(problems)

    # A member of the group (not the analyzer's user) opens every map for reading only: the
    # bans, the allowlist and the rules are not theirs to change, the ring buffer not theirs
    # to consume. The analyzer's user opens the maps it writes for writing.
    opens = {}
    for who in ("nobody", nstest.USER):
        r = run(["setpriv", f"--reuid={who}", f"--regid={ctx.gid}", "--clear-groups",
                 sys.executable, "-c", OBJ_GET_PY] + [ctx.map(m) for m in MAPS], check=False)
        assert r.returncode == 0, f"obj_get as {who}: {r.stdout}{r.stderr}"
        opens[who] = dict(line.split(" ", 1) for line in r.stdout.split("\n") if line)
    for m in MAPS:
        got = opens["nobody"][ctx.map(m)]
        if got != "ro":
            problems.append(f"{m}: a group member opens it {got}, expected read-only")
        got = opens[nstest.USER][ctx.map(m)]
        want = "rw" if m in MAPS_RW else "ro"
        if got != want:
            problems.append(f"{m}: the analyzer's user opens it {got}, expected {want}")
    assert not problems, "pin access:\n  " + "\n  ".join(problems)

    # BTF: the dump of bans names the fields.
    ctx.ban(Topology.PEER_V4, expires_ns=boottime_ns() + 3600 * 10**9)
    try:
        out = ctx.bpftool.cmd("map", "dump", "pinned", ctx.map("bans")).stdout
    finally:
        ctx.unban(Topology.PEER_V4)
    missing = [f for f in ("expires_ns", "drops", "reason") if f not in out]
    assert not missing, f"bpftool map dump bans lacks field names {missing} (no BTF?):\n{out}"


@test("2. traffic from the peer shows up in ip_stats for 198.18.0.2 (rx_packets, syns)")
def t2_ip_stats(ctx):
    ctx.ensure_loader()
    peer, mon = ctx.topo.peer, Topology.MON_V4
    stats = ctx.map("ip_stats")
    before = ctx.bpftool.ip_stats_get(stats, Topology.PEER_V4)
    n = ping(peer, mon, count=3)
    assert n == 3, f"ping {mon} from the peer: {n}/3 replies (no ban set)"
    res = tcp_connect(peer, mon, TCP_PORT)
    assert res == "connected", f"TCP connect to [{mon}]:{TCP_PORT}: {res}"
    after = ctx.bpftool.ip_stats_get(stats, Topology.PEER_V4)
    log(f"  ip_stats[198.18.0.2] before {before}")
    log(f"  ip_stats[198.18.0.2] after  {after}")
    assert after["rx_packets"] - before["rx_packets"] >= 4, \
        f"rx_packets grew by {after['rx_packets'] - before['rx_packets']}, expected >= 4"
    assert after["rx_bytes"] > before["rx_bytes"], "rx_bytes did not grow"
    assert after["syns"] >= 1 and after["syns"] > before["syns"], \
        f"syns {before['syns']} -> {after['syns']}, expected to grow by the TCP connect"
    assert after["last_seen_ns"] > 0 and after["first_seen_ns"] > 0, "first/last seen not set"


@test("2b. what the monitored side sends to the peer shows up as tx in ip_stats (egress)")
def t2b_egress(ctx):
    ctx.ensure_loader()
    stats = ctx.map("ip_stats")
    before = ctx.bpftool.ip_stats_get(stats, Topology.PEER_V4)
    for _ in range(3):
        res = tcp_connect(ctx.topo.peer, Topology.MON_V4, TCP_PORT)
        assert res == "connected", f"TCP connect to {Topology.MON_V4}:{TCP_PORT}: {res}"
    after = ctx.bpftool.ip_stats_get(stats, Topology.PEER_V4)
    log(f"  ip_stats[198.18.0.2] tx {before['tx_packets']}/{before['tx_bytes']} -> "
        f"{after['tx_packets']}/{after['tx_bytes']}")
    assert after["tx_packets"] - before["tx_packets"] >= 3, \
        f"tx_packets grew by {after['tx_packets'] - before['tx_packets']} over 3 accepted " \
        "connections (a SYN-ACK each at least), expected >= 3"
    assert after["tx_bytes"] > before["tx_bytes"], "tx_bytes did not grow"


PROC_IO_FMT = "<5Q16s"  # struct ebpfmon_proc_io


@test("2c. a process's direct disk writes and reads show up in proc_io under its pid, to the "
      "byte")
def t2c_proc_io(ctx):
    ctx.ensure_loader()
    folder = tempfile.mkdtemp(prefix="ebpfmon-io-", dir="/var/tmp")
    CLEANUP.push(f"remove {folder}", lambda: shutil.rmtree(folder, ignore_errors=True))
    path = os.path.join(folder, "data")
    mib = 8

    def dd(*args):
        p = subprocess.Popen(["dd", "bs=1M", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=30)
        # O_DIRECT needs a disk-backed file system: say so rather than guess
        assert p.returncode == 0, f"dd {' '.join(args)} in {folder} failed: {err.strip()}"
        raw = ctx.bpftool.map_lookup_raw(ctx.map("proc_io"), struct.pack("<I", p.pid))
        assert raw is not None, f"proc_io has no entry for dd {' '.join(args)} (pid {p.pid})"
        rb, wb, rops, wops, _, comm = struct.unpack(PROC_IO_FMT, raw)
        comm = comm.split(b"\0")[0].decode()
        log(f"  proc_io[{p.pid}] {comm}: read {rb} B in {rops}, wrote {wb} B in {wops}")
        assert comm == "dd", f"proc_io[{p.pid}].comm = {comm!r}, expected 'dd'"
        return rb, wb

    # Direct I/O goes to the disk byte for byte; a process may also read a few pages of its
    # own binary and libraries when it starts, which count under its pid too.
    _, wb = dd("if=/dev/zero", f"of={path}", f"count={mib}", "oflag=direct")
    assert wb == mib << 20, f"the writer's write_bytes {wb}, expected {mib << 20}"
    rb, wb = dd(f"if={path}", "of=/dev/null", "iflag=direct")
    assert mib << 20 <= rb < (mib + 1) << 20 and wb == 0, \
        f"the reader: read_bytes {rb} (expected {mib << 20} and a little), write_bytes {wb}"


def _ban_cycle(ctx, peer_ip, mon_ip, v6):
    peer = ctx.topo.peer
    assert wait_ping_ok(peer, mon_ip, v6=v6), f"{mon_ip} unreachable before the ban"
    ctx.ban(peer_ip)
    n = ping(peer, mon_ip, count=3, wait=1, v6=v6)
    assert n == 0, f"banned {peer_ip}: ping -c 3 -W 1 {mon_ip} got {n} replies, expected 0"
    res = tcp_connect(peer, mon_ip, TCP_PORT, 2.0)
    ok = ("timeout",) if not v6 else ("timeout", "unreachable")
    assert res in ok, \
        f"banned {peer_ip}: TCP connect to [{mon_ip}]:{TCP_PORT}: {res}, expected a timeout"
    ban = ctx.get_ban(peer_ip)
    assert ban is not None, f"bans[{peer_ip}] vanished"
    assert ban["drops"] > 0, f"bans[{peer_ip}].drops = {ban['drops']}, expected > 0"
    log(f"  {peer_ip}: ping 0/3, connect {res}, drops={ban['drops']}")
    assert ctx.unban(peer_ip), f"bpftool map delete bans {peer_ip} failed"
    assert wait_ping_ok(peer, mon_ip, v6=v6, timeout=6), f"unbanned {peer_ip}: ping still fails"
    assert wait_connect_ok(peer, mon_ip, TCP_PORT, timeout=6), \
        f"unbanned {peer_ip}: TCP connect still fails"


OTHER_A, OTHER_B = "198.18.20.1", "198.18.20.2"  # inside the other namespace only
OTHER_PORT = 9020


def conn_total(ctx, ip):
    """conn_count[ip].total: connections the kernel ever counted for ip (0 when none)."""
    raw = ctx.bpftool.map_lookup_raw(ctx.map("conn_count"), addr_key(ip))
    return 0 if raw is None else struct.unpack_from("<Q", raw, 8)[0]


@test("2d. scope: a second namespace's loopback and internal traffic is neither in ip_stats nor "
      "in conn_count; traffic over the monitored veth is, both ways")
def t2d_scope(ctx):
    ctx.ensure_loader()
    other = f"{nstest.NS_PREFIX}other-{os.getpid()}"
    run(["ip", "netns", "add", other])
    CLEANUP.push(f"delete netns {other}", lambda: run(["ip", "netns", "del", other], check=False))
    dummy, dummy_peer = f"emto{os.getpid()}"[:15], f"emtq{os.getpid()}"[:15]
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "link", "add", dummy, "type", "veth", "peer", "name", dummy_peer],
                ["ip", "link", "set", dummy_peer, "up"],
                ["ip", "addr", "add", f"{OTHER_A}/24", "dev", dummy],
                ["ip", "addr", "add", f"{OTHER_B}/24", "dev", dummy],
                ["ip", "link", "set", dummy, "up"]):
        run(ns_cmd(other, cmd))
    srv = start_tcp_server(other, OTHER_PORT)
    stats = ctx.map("ip_stats")
    watched = ("127.0.0.1", "::1", OTHER_A, OTHER_B)
    st0 = {ip: ctx.bpftool.ip_stats_get(stats, ip) for ip in watched}
    cc0 = {ip: conn_total(ctx, ip) for ip in watched}
    peer0 = ctx.bpftool.ip_stats_get(stats, Topology.PEER_V4)
    peer_cc0 = conn_total(ctx, Topology.PEER_V4)

    # The other namespace: TCP to its own loopback (both families) and between its addresses.
    n = 5
    for _ in range(n):
        for host, src in (("127.0.0.1", None), ("::1", None), (OTHER_A, OTHER_B)):
            res = tcp_connect(other, host, OTHER_PORT, src=src)
            assert res == "connected", f"in {other}: connect [{host}]:{OTHER_PORT}: {res}"
    assert ping(other, OTHER_A, count=3, src=OTHER_B) == 3, f"ping inside {other} failed"
    # The monitored veth: the peer connects to the monitored side, which pings the peer.
    for _ in range(n):
        res = tcp_connect(ctx.topo.peer, Topology.MON_V4, TCP_PORT)
        assert res == "connected", f"peer -> [{Topology.MON_V4}]:{TCP_PORT}: {res}"
    assert ping(ctx.topo.mon, Topology.PEER_V4, count=3) == 3, "mon -> peer ping failed"
    srv.kill()

    def counted():
        st = {ip: ctx.bpftool.ip_stats_get(stats, ip) for ip in watched}
        cc = {ip: conn_total(ctx, ip) for ip in watched}
        return st, cc

    # A connection is counted when it is established (no waiting for closes needed), but
    # give a slow CPU a moment before concluding that something was not counted.
    wait_until(lambda: conn_total(ctx, Topology.PEER_V4) >= peer_cc0 + n, 3)
    peer_cc1 = conn_total(ctx, Topology.PEER_V4)
    peer1 = ctx.bpftool.ip_stats_get(stats, Topology.PEER_V4)
    st1, cc1 = counted()
    problems = []
    for ip in watched:
        for k in ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes"):
            if st1[ip][k] != st0[ip][k]:
                problems.append(f"ip_stats[{ip}].{k} {st0[ip][k]} -> {st1[ip][k]}")
        if cc1[ip] != cc0[ip]:
            problems.append(f"conn_count[{ip}].total {cc0[ip]} -> {cc1[ip]}")
    log(f"  {other}: {n} connections each to 127.0.0.1, ::1 and {OTHER_A}: "
        f"{'; '.join(problems) or 'nothing counted'}")
    assert not problems, f"traffic inside another network namespace was counted: " \
                         f"{'; '.join(problems)}"
    log(f"  peer: conn_count total {peer_cc0} -> {peer_cc1}, tx_packets "
        f"{peer0['tx_packets']} -> {peer1['tx_packets']}, tx_bytes {peer0['tx_bytes']} -> "
        f"{peer1['tx_bytes']}")
    assert peer_cc1 - peer_cc0 == n, \
        f"conn_count[{Topology.PEER_V4}].total grew by {peer_cc1 - peer_cc0} over {n} " \
        f"connections over the monitored veth, expected {n}"
    # a SYN-ACK per connection and 3 echo requests at least
    assert peer1["tx_packets"] - peer0["tx_packets"] >= n + 3, \
        f"ip_stats[{Topology.PEER_V4}].tx_packets grew by " \
        f"{peer1['tx_packets'] - peer0['tx_packets']}, expected >= {n + 3}"
    assert peer1["tx_bytes"] - peer0["tx_bytes"] >= (n + 3) * 54, \
        f"ip_stats[{Topology.PEER_V4}].tx_bytes grew by {peer1['tx_bytes'] - peer0['tx_bytes']}"


@test("3. a permanent ban drops the peer's IPv4 and IPv6 pings and TCP; unban restores them")
def t3_ban(ctx):
    ctx.ensure_loader()
    _ban_cycle(ctx, Topology.PEER_V4, Topology.MON_V4, v6=False)
    _ban_cycle(ctx, Topology.PEER_V6, Topology.MON_V6, v6=True)


@test("4. a ban with expires_ns = now + 3 s stops dropping by itself, entry left in the map")
def t4_expiry(ctx):
    ctx.ensure_loader()
    peer, mon, ip = ctx.topo.peer, Topology.MON_V4, Topology.PEER_V4
    assert wait_ping_ok(peer, mon), "peer cannot ping before the ban"
    expires = boottime_ns() + 3 * 10**9
    ctx.ban(ip, expires_ns=expires)
    n = ping(peer, mon, count=3, wait=1)
    left = (expires - boottime_ns()) / 1e9
    assert left > 0, "the ping took longer than the ban; machine too slow for this test"
    assert n == 0, f"timed ban: ping got {n}/3 replies before the deadline, expected 0"
    drops = ctx.get_ban(ip)["drops"]
    assert drops > 0, "timed ban: drops = 0 while it was in force"
    time.sleep(left + 0.3)
    assert wait_ping_ok(peer, mon, timeout=5), "ban did not stop dropping after its deadline"
    n = ping(peer, mon, count=3)
    assert n == 3, f"after the deadline: {n}/3 replies"
    ban = ctx.get_ban(ip)
    assert ban is not None, "the expired ban entry was removed (nobody should have removed it)"
    assert ban["expires_ns"] == expires, f"expires_ns changed: {ban['expires_ns']} != {expires}"
    assert ban["drops"] == drops, f"drops grew after the deadline: {drops} -> {ban['drops']}"
    log(f"  dropped {drops} before the deadline, none after; entry still present")


@test("11. prog_stats names each program with its id, readable by group ebpfmon; with "
      "kernel.bpf_stats_enabled=1 the XDP program's run count grows with traffic")
def t11_prog_stats(ctx):
    lo = ctx.ensure_loader()
    path = ctx.map("prog_stats")
    st = os.stat(path)
    assert st.st_gid == grp.getgrnam(nstest.GROUP).gr_gid and st.st_mode & 0o040, \
        f"{path}: gid {st.st_gid} mode {oct(st.st_mode)}: group {nstest.GROUP} cannot read it"

    def stats():
        out = {}
        for e in ctx.bpftool.json("map", "dump", "pinned", path):
            v = e["formatted"]["value"] if "formatted" in e else e["value"]
            name = v["name"] if isinstance(v["name"], str) else \
                bytes(int(x, 0) if isinstance(x, str) else x for x in v["name"]).split(b"\0")[0].decode()
            out[name] = v
        return out

    xdp_id = next((p["id"] for p in ctx.bpftool.json("prog", "show") if p.get("name") == "xdp_ingress"
                   and p["id"] in [v["id"] for v in stats().values()]), None)
    s0 = stats()
    assert "xdp_ingress" in s0 and s0["xdp_ingress"]["id"] == xdp_id, f"prog_stats: {s0}"
    old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    CLEANUP.push("restore kernel.bpf_stats_enabled",
                 lambda: open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old))
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        ping(ctx.topo.peer, Topology.MON_V4, count=5, interval=0.2)
        grown = wait_until(lambda: stats()["xdp_ingress"]["run_cnt"] >=
                           s0["xdp_ingress"]["run_cnt"] + 5, 8)
        s1 = stats()["xdp_ingress"]
        log(f"  xdp_ingress id {s1['id']}: run_cnt {s0['xdp_ingress']['run_cnt']} -> "
            f"{s1['run_cnt']}, run_time_ns {s1['run_time_ns']}")
        assert grown and s1["run_time_ns"] > 0, \
            f"prog_stats xdp_ingress did not grow within 8 s of 5 pings: {s1}"
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
    assert lo.running(), "the loader exited"


@test("5. after READY the loader runs unprivileged: uid/gid != 0, no capabilities, NoNewPrivs")
def t5_privileges(ctx):
    lo = ctx.ensure_loader()
    comm = proc_comm(lo.pid)
    assert comm == COMM, f"/proc/{lo.pid}/comm is {comm!r}"
    st = proc_status(lo.pid)
    problems = []
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    if any(u == 0 for u in uids):
        problems.append(f"Uid: {st['Uid']}")
    elif any(u != ctx.uid for u in uids):
        problems.append(f"Uid: {st['Uid']}, expected {nstest.USER} ({ctx.uid})")
    if any(g == 0 for g in gids):
        problems.append(f"Gid: {st['Gid']}")
    if "0" in st.get("Groups", "").split():
        problems.append(f"Groups: {st['Groups']} (still in group 0)")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if st.get(cap) != "0000000000000000":
            problems.append(f"{cap}: {st.get(cap)}")
    if st.get("NoNewPrivs") != "1":
        problems.append(f"NoNewPrivs: {st.get('NoNewPrivs')}")
    log(f"  pid {lo.pid}: Uid {st['Uid']} Gid {st['Gid']} Groups '{st.get('Groups')}' "
        f"CapEff {st.get('CapEff')} NoNewPrivs {st.get('NoNewPrivs')}")
    assert not problems, f"/proc/{lo.pid}/status: " + "; ".join(problems)


@test("6. SIGTERM detaches and keeps the maps; after a restart the earlier ban is in force")
def t6_sigterm_restart(ctx):
    lo = ctx.ensure_loader()
    peer, mon, ip = ctx.topo.peer, Topology.MON_V4, Topology.PEER_V4
    ctx.ban(ip)
    assert ping(peer, mon) == 0, "ban not enforced before SIGTERM"
    rc = lo.stop(signal.SIGTERM)
    assert rc == 0, f"loader exit status after SIGTERM: {rc}, expected 0\n{lo.tail()}"
    xdp = ctx.topo.xdp_in_link_details()
    assert not xdp, f"XDP still on the veth after SIGTERM ({xdp}):\n{ctx.topo.link_details()}"
    assert not ctx.topo.bpftool_net_xdp(ctx.bpftool.path), "bpftool net show still lists XDP"
    assert not ctx.link_pins(), f"link pins left after SIGTERM: {ctx.link_pins()}"
    missing = [m for m in MAPS if not os.path.lexists(ctx.map(m))]
    assert not missing, f"map pins removed by SIGTERM: {missing}"
    assert ctx.get_ban(ip) is not None, "the ban disappeared from the pinned map"
    assert wait_ping_ok(peer, mon), "peer still cannot ping with no loader (XDP not detached?)"

    ctx.start_loader()
    n = ping(peer, mon)
    assert n == 0, f"after the restart the ban written before it is not enforced ({n}/3 replies)"
    ctx.unban(ip)
    assert wait_ping_ok(peer, mon, timeout=6), "unban after restart: ping still fails"


@test("6c. the pin root removed and made again under a running loader: on SIGTERM it says "
      "links/ is no longer its folder and removes no pin of the new one")
def t6c_links_replaced(ctx):
    lo = ctx.ensure_loader()
    links, name = ctx.pin("links"), f"xdp-{ctx.topo.mon_if}"
    link_id = ctx.bpftool.obj_id("link", os.path.join(links, name))
    assert link_id, f"cannot read the link pinned at {os.path.join(links, name)}"
    try:
        shutil.rmtree(ctx.pin_root)  # the loader's fds keep its links attached
        os.makedirs(links, 0o700)
        # another loader's pin under the same name: here the same link, pinned again
        nstest.run([ctx.bpftool.path, "link", "pin", "id", str(link_id),
                    os.path.join(links, name)])
        rc = lo.stop(signal.SIGTERM)
        assert rc == 0, f"loader exit status after SIGTERM: {rc}\n{lo.tail()}"
        assert re.search(r"is no longer the folder this loader locked", lo.output("err")), \
            f"no line saying links/ was replaced:\n{lo.tail()}"
        assert os.path.lexists(os.path.join(links, name)), \
            f"the stopped loader removed {os.path.join(links, name)}, a pin of the new folder"
    finally:
        if lo.running():
            lo.stop(signal.SIGKILL)
        ctx.loader = None
        shutil.rmtree(ctx.pin_root, ignore_errors=True)
    assert wait_until(lambda: not ctx.topo.xdp_in_link_details(), 3, 0.05), \
        f"XDP still on the veth once every pin and fd of its link went:\n" \
        f"{ctx.topo.link_details()}"
    ctx.start_loader()

@test("6d. what the loader's user leaves in links/ is not followed: symbolic links to a root "
      "file, to progs/ and to nothing, and a hard link to maps/bans, are removed at the next "
      "start, which changes none of their targets")
def t6d_links_symlinks(ctx):
    lo = ctx.ensure_loader()
    rc = lo.stop(signal.SIGTERM)
    assert rc == 0, f"loader exit status after SIGTERM: {rc}\n{lo.tail()}"
    ctx.loader = None
    links = ctx.pin("links")
    with tempfile.TemporaryDirectory(prefix="ebpfmon-victim-") as d:
        os.chmod(d, 0o755)
        victim = os.path.join(d, "victim")
        with open(victim, "w") as f:
            f.write("root's\n")
        os.chmod(victim, 0o644)
        made = {"zz-file": victim, "zz-progs": "../progs", "zz-dangling": "/nonexistent"}
        for name, target in made.items():
            run(as_loader_user(["ln", "-s", target, os.path.join(links, name)]))
        # and a second name of the bans map (the user's, so protected_hardlinks allows it)
        run(as_loader_user(["ln", ctx.map("bans"), os.path.join(links, "zz-hard")]))
        bans_before = stat_owner_mode(ctx.map("bans"))
        lo = ctx.start_loader()
        st = os.stat(victim)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o644), \
            f"{victim} is now {st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):04o}"
    u, g, m = stat_owner_mode(ctx.pin("progs"))
    assert (u, g, m) == (0, 0, 0o700), f"progs/ is now {u}:{g} {m:04o}"
    left = [n for n in list(made) + ["zz-hard"] if os.path.lexists(os.path.join(links, n))]
    assert not left, f"symbolic and hard links left in {links}: {left}"
    assert stat_owner_mode(ctx.map("bans")) == bans_before, \
        f"maps/bans went from {bans_before} to {stat_owner_mode(ctx.map('bans'))}"
    assert re.search(re.escape(os.path.join(links, "zz-hard")) + r" had 2 names, not a pin of "
                     r"ours: removed", lo.output("err")), f"no line about zz-hard:\n{lo.tail()}"
    err = lo.output("err")
    for name in made:
        assert re.search(re.escape(os.path.join(links, name)) + r" was a symbolic link, not a "
                         r"pin: removed", err), f"no line about links/{name}:\n{lo.tail()}"
    assert_enforces(ctx, "the restarted loader does not enforce")


@test("6e. after a crash, a lock that the loader's user holds on links/ does not keep the "
      "next loader from starting (it says so), which takes the lock once it is let go")
def t6e_links_locked_by_user(ctx):
    lo = ctx.ensure_loader()
    assert lo.stop(signal.SIGKILL) == -signal.SIGKILL
    ctx.loader = None
    # one process holds it (flock(1) would hand it to its command too)
    hold = ("import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
            "fcntl.flock(fd, fcntl.LOCK_SH)\nprint('held', flush=True)\ntime.sleep(60)\n")
    holder = nstest.Background(as_loader_user(["python3", "-c", hold, ctx.pin("links")]),
                               "links/ lock holder")
    try:
        assert holder.wait_line(r"^held$", 5), f"the lock holder did not start:\n" \
            f"{holder.output()}"
        lo = ctx.start_loader()
        assert lo.wait_line(r"is locked by a process that is not a loader", 3, "err"), \
            f"no warning about the lock on links/:\n{lo.tail()}"
    finally:
        holder.kill()
    # let go: the loader takes it within its 5 s round
    assert lo.wait_line(r"took the lock on links/", 8, "err"), \
        f"the loader did not take the lock on links/ once it was let go:\n{lo.tail()}"
    r = run(["flock", "-n", "-s", ctx.pin("links"), "true"], check=False)
    assert r.returncode != 0, "links/ is not locked by the running loader"
    assert_enforces(ctx, "the loader started does not enforce")


@test("6f. a pin root, or a folder in it, that another user made is refused, by a start and by "
      "--unload, and nothing behind it is touched")
def t6f_foreign_pin_root(ctx):
    nobody = pwd.getpwnam("nobody").pw_uid
    root = f"{BPFFS}/{PIN_PREFIX}{os.getpid()}-foreign"
    with tempfile.TemporaryDirectory(prefix="ebpfmon-victim-") as d:
        victim = os.path.join(d, "keep")
        with open(victim, "w") as f:
            f.write("root's\n")
        os.chmod(victim, 0o644)
        CLEANUP.push(f"remove {root}", lambda: run(["rm", "-rf", root], check=False))
        cases = (("a pin root of another user", None),
                 ("maps/ a symbolic link", "maps"))
        for what, link in cases:
            os.mkdir(root, 0o750)
            if link:
                os.symlink(d, os.path.join(root, link))
            else:
                os.mkdir(os.path.join(root, "maps"), 0o755)
                os.chown(root, nobody, -1)
                os.symlink(d, os.path.join(root, "links"))
            for argv in (["--unload"], ["-i", ctx.topo.mon_if]):
                r = ctx.run_loader(["-c", ctx.conf, "--pin-root", root] + argv + ctx.extra)
                log(f"  {what}, {argv[0]}: rc={r.returncode} {r.stderr.strip()[-160:]}")
                assert r.returncode == 1 and "is not a folder that ebpfmon-loader made" in \
                    r.stderr, f"{what}, {' '.join(argv)}: exit {r.returncode}\n{r.stderr}"
                st = os.stat(victim)
                assert os.listdir(d) == ["keep"] and \
                    (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o644), \
                    f"{what}, {' '.join(argv)}: {d} now {os.listdir(d)}, keep " \
                    f"{st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):04o}"
            run(["rm", "-rf", root])
    assert not ctx.topo.bpftool_net_xdp(ctx.bpftool.path) or ctx.loader, \
        "XDP attached by a refused start"


@test("6g. a second name of the XDP link that the loader's user keeps (in analyzer/) does not "
      "keep XDP attached after SIGTERM, and is gone at the next start")
def t6g_link_second_name(ctx):
    lo = ctx.ensure_loader()
    name = f"xdp-{ctx.topo.mon_if}"
    keep = ctx.pin("analyzer", "keep")
    run(as_loader_user(["ln", ctx.pin("links", name), keep]))
    rc = lo.stop(signal.SIGTERM)
    assert rc == 0, f"loader exit status after SIGTERM: {rc}\n{lo.tail()}"
    ctx.loader = None
    assert wait_until(lambda: not ctx.topo.xdp_in_link_details(), 3, 0.05), \
        f"XDP still attached after SIGTERM, a second name of its link kept:\n" \
        f"{ctx.topo.link_details()}"
    ctx.start_loader()
    assert not os.path.lexists(keep), f"{keep} is still there after a start"
    assert_enforces(ctx, "the loader started after does not enforce")


def assert_enforces(ctx, message):
    """A ban of the peer written now drops its pings (message when not); unbanned after."""
    ctx.ban(Topology.PEER_V4)
    assert ping(ctx.topo.peer, Topology.MON_V4) == 0, message
    ctx.unban(Topology.PEER_V4)


def tx_to_peer(ctx):
    return ctx.bpftool.ip_stats_get(ctx.map("ip_stats"), Topology.PEER_V4)["tx_packets"]


def assert_tx_counted(ctx, what):
    before = tx_to_peer(ctx)
    assert ping(ctx.topo.mon, Topology.PEER_V4, count=3) == 3, f"{what}: mon -> peer ping failed"
    after = tx_to_peer(ctx)
    assert after - before >= 3, \
        f"{what}: tx_packets to {Topology.PEER_V4} grew by {after - before} over 3 echo " \
        f"requests, expected >= 3"


@test("6b. after a crash the egress link stays and counts; a restart updates it in place: one "
      "link runs the new egress_account")
def t6b_egress_restart(ctx):
    lo = ctx.ensure_loader()
    bt = ctx.bpftool
    link = ctx.pin("links", f"egress-{ctx.topo.mon_if}")
    old_id = bt.obj_id("link", link)
    assert old_id, f"no egress link pinned at {link}: {ctx.link_pins()}"
    rc = lo.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL, f"exit status {rc}"
    ctx.loader = None
    assert os.path.lexists(link), "a crashed loader took its egress link pin with it"
    assert_tx_counted(ctx, "no loader (crashed)")

    lo = ctx.start_loader()
    line = lo.wait_line(r"replaced the program of the egress link", 3, "err")
    assert line, f"no line saying the egress link of the crashed run was updated:\n{lo.tail()}"
    prog_id = bt.obj_id("prog", ctx.pin("progs", "egress_account"))
    new_id = bt.obj_id("link", link)
    running = sorted(i for i, lk in bt.ids("link").items() if lk.get("prog_id") == prog_id)
    log(f"  egress link id {old_id} -> {new_id}; links running egress_account (prog id "
        f"{prog_id}): {running}")
    assert new_id == old_id, f"the egress link was replaced ({old_id} -> {new_id}), not updated"
    assert running == [old_id], \
        f"links running the new egress_account: {running}, expected only [{old_id}]"
    assert_tx_counted(ctx, "after the restart")


@test("7. a second loader on the same pin root is refused while the first runs, and so is "
      "--unload")
def t7_second_instance(ctx):
    lo = ctx.ensure_loader()
    links_before = ctx.link_pins()
    r = ctx.run_loader(ctx.loader_args(), timeout=30)
    log(f"  second loader: rc={r.returncode} stderr: {r.stderr.strip()[-300:]}")
    assert r.returncode != 0, "the second loader exited 0"
    assert "already running" in (r.stderr + r.stdout).lower(), \
        f"second loader's message lacks 'already running':\n{r.stderr}"
    assert lo.running(), f"the first loader died:\n{lo.tail()}"
    assert ctx.link_pins() == links_before, \
        f"link pins changed: {links_before} -> {ctx.link_pins()}"
    r = ctx.run_loader(["-c", ctx.conf, "--pin-root", ctx.pin_root, "--unload"] + ctx.extra)
    log(f"  --unload meanwhile: rc={r.returncode} stderr: {r.stderr.strip()[-200:]}")
    assert r.returncode == 1 and "stop it first" in r.stderr, \
        f"--unload with a loader running: exit {r.returncode}: {r.stderr}"
    assert ctx.link_pins() == links_before and os.path.isdir(ctx.pin("maps")), \
        f"link pins after the refused --unload: {ctx.link_pins()}"
    assert ctx.topo.xdp_in_link_details(), "XDP no longer attached after the refused second start"
    assert_enforces(ctx, "first loader no longer enforces bans")


@test("8. after a crash, --unload with the unit's capabilities leaves nothing: no pin root, no "
      "XDP, no programs; a pin root off bpffs is refused with every file kept")
def t8_unload(ctx):
    lo = ctx.ensure_loader()
    bt = ctx.bpftool
    prog_ids = {p: bt.obj_id("prog", ctx.pin("progs", p)) for p in PROGS}
    link_ids = {n: bt.obj_id("link", ctx.pin("links", n)) for n in ctx.link_pins()}
    log(f"  prog ids {prog_ids}, link ids {link_ids}")
    assert all(prog_ids.values()), f"cannot read prog pins: {prog_ids}"
    attached = ctx.topo.bpftool_net_xdp(bt.path)
    assert [x.get("id") for x in attached] == [prog_ids["xdp_ingress"]], \
        f"XDP on the veth is {attached}, not our xdp_ingress (id {prog_ids['xdp_ingress']})"

    # A crash (SIGKILL) leaves the links pinned, so bans stay enforced.
    ctx.ban(Topology.PEER_V4)
    rc = lo.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL, f"exit status {rc}"
    ctx.loader = None
    assert ctx.topo.xdp_in_link_details(), "a crashed loader took XDP with it"
    assert ping(ctx.topo.peer, Topology.MON_V4) == 0, "ban not enforced after a loader crash"

    # a pin root that is not on bpffs (a typo): refused, and not one file removed
    with tempfile.TemporaryDirectory(prefix="ebpfmon-notbpffs-") as d:
        for sub in ("maps", "links", "progs"):
            os.mkdir(os.path.join(d, sub))
            with open(os.path.join(d, sub, "file"), "w") as f:
                f.write("keep me\n")
        r = ctx.run_loader(["-c", ctx.conf, "--pin-root", d, "--unload"] + ctx.extra)
        kept = sorted(os.path.relpath(os.path.join(w, f), d)
                      for w, _, fs in os.walk(d) for f in fs)
        assert r.returncode == 1 and "is not on a BPF filesystem" in r.stderr and \
            kept == ["links/file", "maps/file", "progs/file"], \
            f"--unload on {d}: exit {r.returncode}, {r.stderr.strip()}; left {kept}"

    # what the loader's user may leave in analyzer/, its own: folders, a link to root's files
    victim = tempfile.mkdtemp(prefix="ebpfmon-victim-")
    CLEANUP.push(f"remove {victim}", lambda: shutil.rmtree(victim, True))
    with open(os.path.join(victim, "keep"), "w") as f:
        f.write("root's\n")
    os.chmod(victim, 0o755)
    run(as_loader_user(["mkdir", "-p", ctx.pin("analyzer", "sub", "deeper")]))
    run(as_loader_user(["ln", "-s", victim, ctx.pin("analyzer", "sub", "deeper", "to-root")]))
    # with the unit's capabilities: no CAP_DAC_OVERRIDE for links/ and analyzer/, the user's
    r = run(ns_cmd(ctx.topo.mon, UNIT_CAPS + [ctx.loader_path, "-c", ctx.conf, "--pin-root",
                                              ctx.pin_root, "--unload"] + ctx.extra),
            check=False, timeout=30)
    assert os.listdir(victim) == ["keep"], f"--unload reached {victim}: {os.listdir(victim)}"
    log(f"  --unload: rc={r.returncode} stderr: {r.stderr.strip()[-300:]}")
    assert r.returncode == 0, f"--unload exited {r.returncode}: {r.stderr}"
    assert not os.path.lexists(ctx.pin_root), \
        f"{ctx.pin_root} still exists: {list(os.walk(ctx.pin_root))}"
    # the last link reference goes with the pin; the kernel detaches right after, not before
    # unlink() returns
    assert nstest.wait_until(lambda: not ctx.topo.xdp_in_link_details(), 3, 0.05), \
        f"XDP still on the veth 3 s after --unload:\n{ctx.topo.link_details()}"
    assert not ctx.topo.bpftool_net_xdp(bt.path), "bpftool net show still lists XDP"
    assert wait_ping_ok(ctx.topo.peer, Topology.MON_V4), "peer cannot ping after --unload"

    # Programs and links are freed asynchronously (RCU): give them a moment. (bpftool 7.1
    # does not print an XDP link's ifindex: the veth is checked with `bpftool net` above.)
    def leftovers():
        progs, links = bt.ids("prog"), bt.ids("link")
        left = [f"prog {n} id {i}" for n, i in prog_ids.items() if i in progs]
        left += [f"link {n} id {i}" for n, i in link_ids.items() if i and i in links]
        left += [f"link id {i} ({lk.get('type')}) of our prog id {lk.get('prog_id')}"
                 for i, lk in links.items() if lk.get("prog_id") in prog_ids.values()]
        return left

    if not wait_until(lambda: not leftovers(), 5):
        raise AssertionError(f"still in the kernel after --unload: {leftovers()}")
    pinned = bt.json("-f", "prog", "show") or []
    ours = [p for p in pinned for path in p.get("pinned", []) if path.startswith(ctx.pin_root)]
    assert not ours, f"bpftool -f prog show lists programs pinned under {ctx.pin_root}: {ours}"


@test("9. a bad config (unknown key) exits 2 naming FILE:LINE and the key; nothing pinned")
def t9_bad_config(ctx):
    bad = ctx.write_file("bad.conf", BAD_CONF)
    root = ctx.pin_root + "-badconf"
    CLEANUP.push(f"remove {root}", lambda: unload_and_remove(ctx.loader_path, root))
    r = ctx.run_loader(ctx.loader_args(pin_root=root, conf=bad), timeout=30)
    log(f"  rc={r.returncode} stderr: {r.stderr.strip()[-300:]}")
    assert r.returncode == 2, f"exit status {r.returncode}, expected 2; stderr:\n{r.stderr}"
    assert f"{bad}:{BAD_CONF_LINE}" in r.stderr, \
        f"stderr does not name {bad}:{BAD_CONF_LINE}:\n{r.stderr}"
    assert BAD_KEY in r.stderr, f"stderr does not name the key {BAD_KEY}:\n{r.stderr}"
    assert not os.path.lexists(root), f"{root} was created: {list(os.walk(root))}"
    # A usage error is exit status 2 as well.
    r = ctx.run_loader(["--no-such-option"], timeout=30)
    assert r.returncode == 2, f"unknown option: exit status {r.returncode}, expected 2"


@test("10. --check reports this kernel and the veth and exits 0, also as a user without "
      "privilege; a missing interface makes it exit 1; --list-interfaces shows the veth")
def t10_check_and_list(ctx):
    ifn = ctx.topo.mon_if
    r = ctx.run_loader(["--check", "-i", ifn])
    log("  " + "\n  ".join(r.stdout.strip().splitlines()[-4:]))
    assert r.returncode == 0, f"--check -i {ifn}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    for what in ("kernel BTF", "XDP programs", "ring buffer", "raw tracepoints"):
        assert re.search(r"^" + re.escape(what) + r"\s+yes\b", r.stdout, re.M), \
            f"--check does not say '{what} yes':\n{r.stdout}"
    assert re.search(r"^interface " + re.escape(ifn) + r"\s+yes\b.*driver veth.*generic",
                     r.stdout, re.M), f"--check has no line for {ifn} (veth, generic):\n{r.stdout}"
    assert "ebpfmon can run here" in r.stdout

    # Not root: what needs privilege to probe is read from the kernel's BTF, same conclusion.
    r = run(ns_cmd(ctx.topo.mon, ["setpriv", "--reuid=ebpfmon", "--regid=ebpfmon",
                                  "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                                  ctx.loader_path, "--check", "-i", ifn]),
            check=False, timeout=30)
    assert r.returncode == 0 and "ebpfmon can run here" in r.stdout, \
        f"--check as user ebpfmon: exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert re.search(r"^XDP programs\s+yes\b.*kernel BTF", r.stdout, re.M), r.stdout

    r = ctx.run_loader(["--check", "-i", ifn, "-i", "nosuchif0"])
    assert r.returncode == 1, f"--check with a missing interface: exit {r.returncode}, want 1"
    assert re.search(r"^interface nosuchif0\s+no\b", r.stdout, re.M), r.stdout
    assert "ebpfmon cannot run here" in r.stdout, r.stdout

    # no interface named: the one the loader would take, the default route's; none here yet
    r = ctx.run_loader(["--check"])
    assert r.returncode == 1 and re.search(r"^interface \(default route\)\s+no\b.*no default "
                                           r"route", r.stdout, re.M), \
        f"--check with no interface and no default route: exit {r.returncode}\n{r.stdout}"
    run(ctx.topo.in_mon(["ip", "route", "add", "default", "dev", ifn]))
    try:
        r = ctx.run_loader(["--check"])
    finally:
        run(ctx.topo.in_mon(["ip", "route", "del", "default", "dev", ifn]), check=False)
    assert r.returncode == 0 and re.search(r"^interface " + re.escape(ifn) + r"\s+yes\b",
                                           r.stdout, re.M), \
        f"--check with the default route on {ifn}: exit {r.returncode}\n{r.stdout}"

    r = ctx.run_loader(["--list-interfaces"])
    assert r.returncode == 0, f"--list-interfaces: exit {r.returncode}\n{r.stderr}"
    line = next((l for l in r.stdout.splitlines() if l.split()[:1] == [ifn]), None)
    assert line, f"--list-interfaces does not list {ifn}:\n{r.stdout}"
    log(f"  {line}")
    assert "veth" in line and Topology.MON_V4 in line and Topology.MON_V6 in line, \
        f"{ifn}: driver or addresses missing: {line}"


# ---------------------------------------------------------------------------------------


def on_fail(ctx):
    if ctx.loader is not None:
        log(f"    loader stderr (last lines):\n{ctx.loader.tail()}")


def main():
    return nstest.main(
        __doc__.split("\n")[0], TESTS, Ctx,
        programs=[("loader", "path of ebpfmon-loader")],
        tools=["ip", "nsenter", "ping"],
        options=[(["--loader-verbose"], {"action": "store_true",
                                         "help": "pass -v to the loader"})],
        setup_what="the namespaces", on_fail=on_fail,
        after_test=("clearing bans", lambda ctx: ctx.clear_bans()))


if __name__ == "__main__":
    sys.exit(main())
