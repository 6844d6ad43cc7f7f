#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of xdp_mode = tc: the ingress logic as a tcx ingress program.

    test_tc.py --loader build/loader/ebpfmon-loader --analyzer build/analyzer/ebpfmon-analyzer \
        --ctl build/ctl/ebpfmonctl [--bpftool bpftool] [--only NAME] [-v]

The set-up is test_analyzer.py's (namespaces, veth pair, the real loader on a private pin
root, an unprivileged analyzer on a private database), on a subnet of its own
(198.18.211.0/24, 2001:db8:211::/64), with [loader] xdp_mode = tc. The interface must carry
one tcx ingress program and no XDP; a ban through the API drops the peer's packets and an
unban lets them through; ip_stats counts the packets the wire carried (the segments of a GSO
packet); a restart keeps one ingress hook, a switch to generic XDP and back leaves only the
new kind, and a stop detaches everything.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import ctypes
import json
import os
import re
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import Background, log  # noqa: E402
import test_analyzer as ta  # noqa: E402
import test_metrics as tm  # noqa: E402

THIS = os.path.abspath(__file__)
SINK_PORT = 9211
MSS_MAX = 1460  # the largest TCP payload of a 1500-byte IPv4 packet: segments >= bytes / this


class TcTopology(nstest.Topology):
    """nstest.Topology on a subnet no other test uses."""

    MON_V4 = "198.18.211.1"
    PEER_V4 = "198.18.211.2"
    MON_V6 = "2001:db8:211::1"
    PEER_V6 = "2001:db8:211::2"


MON, PEER = TcTopology.MON_V4, TcTopology.PEER_V4

LINK_TYPE_TCX = 11  # enum bpf_link_type BPF_LINK_TYPE_TCX (Linux 6.6)
TCX_INGRESS = 46  # enum bpf_attach_type BPF_TCX_INGRESS
BPF_OBJ_GET_INFO_BY_FD = 15  # enum bpf_cmd


def link_info(path):
    """(type, id, prog_id, ifindex, attach_type) of the BPF link pinned at path (struct
    bpf_link_info: three u32, then at offset 16 the 8-aligned union's .tcx = {ifindex,
    attach_type}), or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = nstest.bpf_obj_get(path)
    if fd < 0:
        return None
    try:
        info = ctypes.create_string_buffer(256)
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("<IIQ", attr, 0, fd, len(info), ctypes.addressof(info))
        if libc.syscall(nstest.SYS_BPF, BPF_OBJ_GET_INFO_BY_FD, attr, ctypes.c_uint(128)) < 0:
            return None
        return struct.unpack_from("<III4xII", info, 0)
    finally:
        os.close(fd)


def conf_text(pin_root, mode):
    """test_analyzer.py's configuration with [loader] xdp_mode = mode."""
    return ta.CONF.format(pin_root=pin_root).replace("[loader]\n", f"[loader]\nxdp_mode = {mode}\n")


class Ctx(ta.Ctx):
    def __init__(self, args):
        super().__init__(args)
        self.topo = TcTopology()
        self.ctl_path = os.path.abspath(args.ctl)
        self.conf = self.write_file("ebpfmon.conf", conf_text(self.pin_root, "tc"))
        self.conf_generic = self.write_file("generic.conf", conf_text(self.pin_root, "generic"))
        self.seen_links = set()  # ids of the tcx links expect_ingress() found

    # -- what is attached -------------------------------------------------------------

    def net_show(self):
        """bpftool net show dev <veth> in the monitor namespace: (xdp entries, tc entries)."""
        r = nstest.run(self.topo.in_mon([self.bpftool.path, "-j", "net", "show", "dev",
                                         self.topo.mon_if]))
        data = json.loads(r.stdout or "[]")
        xdp, tc = [], []
        for item in data if isinstance(data, list) else [data]:
            xdp.extend(item.get("xdp", []) or [])
            tc.extend(item.get("tc", []) or [])
        return xdp, tc

    def tcx_links(self):
        """The tcx links on the veth that the pins of the test's pin root hold: [(pin name,
        link id, program id, attach type)]. bpftool 7.1 lists no tcx link under `net show`
        and decodes no tcx link info, so the info is read with the bpf syscall."""
        ifindex = json.loads(nstest.run(self.topo.in_mon(
            ["ip", "-j", "link", "show", "dev", self.topo.mon_if])).stdout)[0]["ifindex"]
        out = []
        for name in self.link_pins():
            info = link_info(os.path.join(self.pin_root, "links", name))
            if info and info[0] == LINK_TYPE_TCX and info[3] == ifindex:
                out.append((name, info[1], info[2], info[4]))
        return out

    def link_pins(self):
        d = os.path.join(self.pin_root, "links")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def prog_name(self, prog_id):
        p = self.bpftool.json("prog", "show", "id", str(prog_id), check=False) or {}
        return p.get("name")

    def expect_ingress(self, kind):
        """Exactly one ingress hook on the veth: 'tc' (tcx, tc_ingress, links/ingress-IF) or
        'xdp' (generic XDP, xdp_ingress, links/xdp-IF). Returns the hook's program id."""
        ifn = self.topo.mon_if
        xdp, tc = self.net_show()
        links = self.tcx_links()
        ingress = [ln for ln in links if ln[3] == TCX_INGRESS]
        pins = self.link_pins()
        state = f"bpftool net show: xdp {xdp}, tc {tc}; tcx links {links}; pins {pins}"
        if kind == "tc":
            assert not xdp, f"XDP attached in tc mode: {state}"
            assert not self.topo.xdp_in_link_details(), \
                f"ip -d link shows XDP in tc mode:\n{self.topo.link_details()}"
            assert len(ingress) == 1 and ingress[0][0] == f"ingress-{ifn}" and \
                self.prog_name(ingress[0][2]) == "tc_ingress", \
                f"expected one tcx ingress link of tc_ingress, pinned as ingress-{ifn}: {state}"
            assert f"xdp-{ifn}" not in pins, state
            self.seen_links.add(ingress[0][1])
            return ingress[0][2]
        assert len(xdp) == 1 and xdp[0].get("mode") == "generic" and \
            self.prog_name(xdp[0].get("id")) == "xdp_ingress", f"expected generic XDP: {state}"
        assert not ingress, f"tcx ingress still attached besides XDP: {state}"
        assert f"xdp-{ifn}" in pins and f"ingress-{ifn}" not in pins, state
        return xdp[0].get("id")

    def ip_stats(self, ip):
        return self.bpftool.ip_stats_get(os.path.join(self.pin_root, "maps", "ip_stats"), ip)

    # -- the API ----------------------------------------------------------------------

    def ctl(self, *argv):
        r = nstest.run([self.ctl_path, "-s", f"{ta.API_DIR}/api.sock", "--timeout", "3000"] +
                       list(argv), check=False, timeout=15)
        assert r.returncode == 0, \
            f"ebpfmonctl {' '.join(argv)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
        return r.stdout


def reaches(ctx):
    """(ping replies of 3, TCP connect result) from the peer to the monitor."""
    return (nstest.ping(ctx.topo.peer, MON, count=3, wait=1),
            nstest.tcp_connect(ctx.topo.peer, MON, SINK_PORT, 1.0))


def start_sink(ctx):
    """A server on SINK_PORT in the monitor namespace that reads and discards."""
    srv = Background(ctx.topo.in_mon([sys.executable, THIS, "sink", str(SINK_PORT)]), "sink")
    if not srv.wait_line(r"^listening", 10, stream="out"):
        raise AssertionError(f"sink did not start: {srv.output()}")
    return srv


TESTS, test = nstest.test_registry()


@test("1. xdp_mode = tc: one tcx ingress link of tc_ingress on the veth, pinned as "
      "links/ingress-IF; no XDP; the loader says so; the API and the metrics report the mode 'tc'")
def t1_attached(ctx):
    ctx.expect_ingress("tc")
    assert ctx.loader.wait_line(rf"interface {ctx.topo.mon_if} .*ingress attached as tcx", 1), \
        f"no 'ingress attached as tcx' line:\n{ctx.loader.output('err')}"
    port = tm.free_port()
    with open(ctx.conf) as f:
        conf = ctx.write_file("metrics.conf", f.read() +
                              f"[api]\nmetrics_address = http://127.0.0.1:{port}\n")
    ctx.fresh(conf=conf)
    st = json.loads(ctx.ctl("--json", "status"))
    ifs = [i for i in st.get("interfaces", []) if i.get("name") == ctx.topo.mon_if]
    assert len(ifs) == 1 and ifs[0].get("xdp_mode") == "tc", f"status interfaces: {ifs}"
    text = ctx.ctl("status")
    assert re.search(rf"{ctx.topo.mon_if}\b.*\btc\b", text), f"ebpfmonctl status:\n{text}"
    key = f'ebpfmon_interface_info{{interface="{ctx.topo.mon_if}",mode="tc"}}'
    tm.wait_sample(port, key, lambda v: v == 1)


@test("2. a ban through the API drops the peer's pings and connections; the unban lets them "
      "through")
def t2_ban_unban(ctx):
    srv = start_sink(ctx)
    try:
        ctx.fresh()
        assert nstest.wait_ping_ok(ctx.topo.peer, MON), "the peer does not reach the monitor"
        assert reaches(ctx) == (3, "connected"), f"before the ban: {reaches(ctx)}"
        ctx.ctl("ban", PEER, "--duration", "60s", "--reason", "tc test")
        got = reaches(ctx)
        assert got[0] == 0 and got[1] != "connected", f"banned peer still gets through: {got}"
        ban = ctx.get_ban(PEER)
        assert ban and ban["drops"] >= 4, f"bans[{PEER}]: {ban}"
        ctx.ctl("unban", PEER)
        assert nstest.wait_ping_ok(ctx.topo.peer, MON), "no ping after the unban"
        assert reaches(ctx) == (3, "connected"), f"after the unban: {reaches(ctx)}"
    finally:
        srv.kill()


@test("3. ip_stats counts what the wire carried: N pings are >= N packets, a bulk TCP transfer "
      "(GSO super-packets on the veth) at least its bytes / MSS packets")
def t3_wire_packets(ctx):
    before = ctx.ip_stats(PEER)["rx_packets"]
    n = nstest.ping(ctx.topo.peer, MON, count=10, wait=1, interval=0.05)
    assert n == 10, f"{n}/10 ping replies"
    got = ctx.ip_stats(PEER)["rx_packets"] - before
    assert got >= 10, f"ip_stats[{PEER}].rx_packets grew by {got} for 10 pings"

    srv = start_sink(ctx)
    try:
        size = 8 << 20
        before = ctx.ip_stats(PEER)
        r = nstest.run(ctx.topo.in_peer([sys.executable, THIS, "blast", MON, str(SINK_PORT),
                                         str(size)]), timeout=60)
        assert r.stdout.strip().endswith("sent"), f"blast: {r.stdout} {r.stderr}"
        after = ctx.ip_stats(PEER)
    finally:
        srv.kill()
    pkts = after["rx_packets"] - before["rx_packets"]
    nbytes = after["rx_bytes"] - before["rx_bytes"]
    log(f"  {size} bytes sent: rx_packets +{pkts}, rx_bytes +{nbytes}")
    assert pkts >= size // MSS_MAX, \
        f"rx_packets +{pkts} for {size} bytes: fewer than {size // MSS_MAX} segments (counted " \
        f"socket buffers, not the segments of GSO packets?)"
    assert nbytes >= size, f"rx_bytes +{nbytes} for {size} bytes of payload"


@test("4. a loader restart keeps one ingress hook; after a crash the pinned link stays and the "
      "next loader updates it in place; bans hold throughout")
def t4_restart(ctx):
    prog0 = ctx.expect_ingress("tc")
    ctx.restart_loader()
    prog1 = ctx.expect_ingress("tc")
    assert prog1 != prog0, "the restarted loader's program is not the one attached"

    ctx.fresh()
    ctx.ctl("ban", PEER, "--duration", "60s")
    link1 = ctx.tcx_links()
    ctx.loader.stop(sig=signal.SIGKILL)
    assert ctx.expect_ingress("tc") == prog1, "the crashed loader's program went with it"
    assert nstest.ping(ctx.topo.peer, MON, count=2, wait=1) == 0, "ban not enforced after a crash"
    ctx.restart_loader(stop=False)
    prog2 = ctx.expect_ingress("tc")
    link2 = ctx.tcx_links()
    log(f"  after SIGKILL and start: tcx links {link1} -> {link2}")
    ing1 = [ln for ln in link1 if ln[3] == TCX_INGRESS][0]
    ing2 = [ln for ln in link2 if ln[3] == TCX_INGRESS][0]
    assert ing2[1] == ing1[1] and prog2 != prog1, \
        f"the link was not updated in place: link {ing1[1]} -> {ing2[1]}, " \
        f"program {prog1} -> {prog2}"
    assert nstest.ping(ctx.topo.peer, MON, count=2, wait=1) == 0, "ban not enforced after restart"
    ctx.ctl("unban", PEER)
    assert nstest.wait_ping_ok(ctx.topo.peer, MON), "no ping after the unban"


@test("5. a switch tc -> generic at restart leaves only XDP, generic -> tc only tcx")
def t5_switch(ctx):
    ctx.restart_loader(conf=ctx.conf_generic)
    ctx.expect_ingress("xdp")
    ctx.restart_loader()
    ctx.expect_ingress("tc")


@test("6. a stop detaches everything: no tcx link, no XDP, no link pin")
def t6_stop(ctx):
    rc = ctx.loader.stop()
    assert rc == 0, f"loader exit status {rc}:\n{ctx.loader.tail()}"
    xdp, tc = ctx.net_show()
    assert not xdp and not tc, f"still attached after the stop: xdp {xdp}, tc {tc}"
    assert not ctx.link_pins(), f"link pins left: {ctx.link_pins()}"
    # the links themselves are gone (a link outlives its pin while a descriptor holds it)
    alive = [ln for ln in ctx.bpftool.json("link", "show") or []
             if ln.get("id") in ctx.seen_links]
    assert not alive, f"links of the test still exist after the stop: {alive}"
    assert nstest.wait_ping_ok(ctx.topo.peer, MON), "no ping with nothing attached"
    ctx.restart_loader(stop=False)  # for whatever runs after (--only)


VNET_UDP_PORT = 9212


def mac_of(ns, ifname):
    return json.loads(nstest.run(nstest.ns_cmd(ns, ["ip", "-j", "link", "show", "dev",
                                                    ifname])).stdout)[0]["address"]


def set_mtu(ctx, mtu):
    for ns, ifn in ((ctx.topo.mon, ctx.topo.mon_if), (ctx.topo.peer, ctx.topo.peer_if)):
        nstest.run(nstest.ns_cmd(ns, ["ip", "link", "set", "dev", ifn, "mtu", str(mtu)]))


def vnet_send(ctx, src, kind, n):
    """n frames of kind (VNET_FRAMES) from src to the monitor, sent by the peer through an
    AF_PACKET socket with a vnet header (virtio_net_hdr.hdr_len: how much of the frame the
    kernel puts in the linear part)."""
    smac, dmac = mac_of(ctx.topo.peer, ctx.topo.peer_if), mac_of(ctx.topo.mon, ctx.topo.mon_if)
    nstest.run(ctx.topo.in_peer([sys.executable, THIS, "vnet", ctx.topo.peer_if, smac, dmac,
                                 src, MON, kind, str(n)]), timeout=30)


@test("7. headers past the linear part of the socket buffer (a vnet header's short hdr_len, as "
      "a tap or an AF_PACKET sender makes them): a banned source's frames are dropped and a URL "
      "rule's request is dropped, as XDP does")
def t7_headers_in_frags(ctx):
    ctx.fresh()
    set_mtu(ctx, 9000)
    try:
        ctx.ctl("ban", PEER, "--duration", "60s", "--reason", "headers in frags")
        drops = ctx.get_ban(PEER)["drops"]
        sink = Background(ctx.topo.in_mon([sys.executable, THIS, "udpsink",
                                           str(VNET_UDP_PORT), "1.5"]), "udpsink")
        assert sink.wait_line(r"^listening", 10, stream="out"), sink.output()
        kinds = [k for k in VNET_FRAMES if k.startswith("udp_")]
        for kind in kinds:
            vnet_send(ctx, PEER, kind, 5)
        sink.wait(10)
        got = re.search(r"received (\d+)", sink.output("out"))
        assert got and int(got.group(1)) == 0, \
            f"the banned source's frames reached the monitor: {sink.output()}"
        grew = ctx.get_ban(PEER)["drops"] - drops
        assert grew >= 5 * len(kinds), f"bans[{PEER}].drops grew by {grew}, sent {5 * len(kinds)}"
        ctx.ctl("unban", PEER)

        # a request line on port 80 with TCP options past the linear part: the ingress
        # matcher reads it (no socket holds it: dropped, never a ban)
        counters = os.path.join(ctx.pin_root, "maps", "counters")
        before = ctx.bpftool.counters(counters)
        vnet_send(ctx, PEER, "http_tsopt_lin54", 5)
        after = ctx.bpftool.counters(counters)
        d = {k: after[k] - before[k] for k in ("rx_drop_url", "rx_parse_err", "rx_passed")}
        assert d["rx_drop_url"] == 5 and d["rx_parse_err"] == 0, \
            f"GET /wp-admin/ with its TCP header past the linear part: {d}"
        log(f"  {5 * len(kinds)} frames of a banned source dropped ({', '.join(kinds)}); "
            f"5 requests dropped by the URL rule: {d}")
    finally:
        set_mtu(ctx, 1500)


def _sink(port):
    nstest._die_with_parent()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(16)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        while c.recv(1 << 16):
            pass
        c.close()


def _blast(host, port, size):
    c = socket.create_connection((host, port), timeout=10)
    buf = bytes(1 << 16)
    left = size
    while left > 0:
        n = c.send(buf[:min(left, len(buf))])
        left -= n
    c.shutdown(socket.SHUT_WR)
    c.recv(1)  # the sink's close: everything was read
    c.close()
    print("sent", flush=True)


# name: (IPv4 option bytes, UDP payload bytes, vnet hdr_len = the linear part; 0: all)
VNET_FRAMES = {
    "udp_opts_lin54": (40, 5900, 54),
    "udp_opts_lin70": (40, 5900, 70),
    "udp_lin14": (0, 5900, 14),
    "udp_lin60": (0, 5900, 60),
    "http_tsopt_lin54": None,
}


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff


def _vnet(ifname, smac, dmac, src, dst, kind, n):
    """Send n frames of kind through AF_PACKET with PACKET_VNET_HDR (struct virtio_net_hdr:
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR
    s.bind((ifname, 0))
    eth = bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex(smac.replace(":", "")) + \
        b"\x08\x00"

    def ipv4(proto, opts, l4):
        h = struct.pack("!BBHHHBBH4s4s", 0x40 | (20 + len(opts)) // 4, 0, 20 + len(opts) +
                        len(l4), 1, 0, 64, proto, 0, socket.inet_aton(src),
                        socket.inet_aton(dst)) + opts
        return h[:10] + struct.pack("!H", _csum(h)) + h[12:] + l4

    if kind == "http_tsopt_lin54":
        payload = b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 5800 + b"\r\n\r\n"
        opts = b"\x01\x01\x08\x0a" + bytes(8)  # NOP, NOP, timestamps
        tcp = struct.pack("!HHIIBBHHH", 40001, 80, 1000, 0, (20 + len(opts)) // 4 << 4, 0x18,
                          65535, 0, 0) + opts + payload
        frame, hdr_len = eth + ipv4(6, b"", tcp), 54
    else:
        nopts, size, hdr_len = VNET_FRAMES[kind]
        payload = kind.encode().ljust(size, b"x")
        udp = struct.pack("!HHHH", 40000, VNET_UDP_PORT, 8 + len(payload), 0) + payload
        frame = eth + ipv4(17, b"\x01" * nopts, udp)
    for _ in range(n):
        s.send(struct.pack("<BBHHHH", 0, 0, hdr_len, 0, 0, 0) + frame)
    s.close()


def _udpsink(port, idle_s):
    nstest._die_with_parent()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(idle_s)
    print("listening", flush=True)
    n = 0
    try:
        while True:
            s.recv(1 << 16)
            n += 1
    except socket.timeout:
        pass
    print(f"received {n}", flush=True)


def main():
    return nstest.main(
        __doc__.split("\n")[0], TESTS, Ctx,
        programs=[("loader", "path of ebpfmon-loader"),
                  ("analyzer", "path of ebpfmon-analyzer"),
                  ("ctl", "path of ebpfmonctl")],
        tools=["ip", "nsenter", "ping", "setpriv"],
        setup_what="the namespaces and the loader (xdp_mode = tc)",
        before_test=ta.before_test, on_fail=ta.on_fail,
        after_test=("stopping the analyzer / clearing bans", ta.after_test))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sink":
        _sink(int(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "blast":
        _blast(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 9 and sys.argv[1] == "vnet":
        _vnet(*sys.argv[2:8], int(sys.argv[8]))
    elif len(sys.argv) == 4 and sys.argv[1] == "udpsink":
        _udpsink(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(main())
