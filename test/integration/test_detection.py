#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of URL detection as an attacker probes it: real clients, a real nginx.

    test_detection.py --loader build/loader/ebpfmon-loader \
        --analyzer build/analyzer/ebpfmon-analyzer [--bpftool bpftool] [--xdp-mode MODE]
        [-k NAME] [-v]

nginx (Debian's) runs inside the monitor namespace, where the loader attaches XDP to the veth
(or, with --xdp-mode tc, its tcx ingress program: the same logic after GRO),
and serves a docroot with /index.html, /wp-admin/index.html and /.env on 198.19.44.1:80 and
[2001:db8:44::1]:80 (this file's own subnets: 198.19.44.0/24, 2001:db8:44::/64). The rules are
`malicious_url_patterns = /wp-admin, /.env` (docs/url-matching.md: the kernel matches the
canonical path, the way nginx routes the request). Every probe walks around a raw-bytes
matcher; the test asserts what a user notices: the protected file is not served (the client
gets no 200, nginx's access log has no 200 for it) and the source is banned ("banned ADDR" in
the analyzer's log, an entry in the `bans` map).

Clients: curl --path-as-is and raw TCP sockets from the peer namespace, each probe from an
address of its own on the peer's veth (so one probe's retransmissions never meet another's
verdict). Packets a kernel client cannot send (IP fragments, a chain of IPv6 Destination
Options, a spoofed source) are built with scapy and sent on the peer's veth through an
AF_PACKET socket; where the test needs a real connection, scapy completes a real handshake
from a "phantom" address: one the peer does not own, which the monitor namespace resolves to
the peer's MAC by a permanent neighbour entry, so the peer's kernel silently drops the
SYN-ACK (no forwarding) instead of answering it with a RST.

Each test starts a fresh unprivileged analyzer on an empty `bans` map and a private database;
bans last BAN_S seconds (3 s where the test says so). Exit status: 0 all passed, 1 a test
failed, 77 skipped (no root, no nginx/curl/scapy...). The last line is "N passed, N failed".
"""

import grp
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import (BPFFS, CLEANUP, PIN_PREFIX, Background, Bpftool, Loader, Topology,  # noqa: E402
                    log, unload_and_remove)

THIS = os.path.abspath(__file__)
HTTP_PORT = 80
BAN_S = 10  # long enough that a ban is still in the map when a probe's checks run
SHORT_BAN_S = 3  # "one request is one offence"
CURL_T = 3  # seconds a curl probe may take: a dropped request times out then
BAN_WAIT = 3  # seconds from the probe to the "banned" line (the kernel reports at once)
REASON_CONN_LIMIT = 1  # EBPFMON_BAN_CONN_LIMIT
REASON_URL_RULE = 2  # EBPFMON_BAN_URL_RULE
TEST_ANALYZER = os.path.join(os.path.dirname(THIS), "test_analyzer.py")  # its "hold" helper
XDP_MODES = ("auto", "native", "generic", "tc")


class DetTopology(Topology):
    """nstest's topology on this file's own subnets."""

    MON_V4 = "198.19.44.1"
    PEER_V4 = "198.19.44.2"
    MON_V6 = "2001:db8:44::1"
    PEER_V6 = "2001:db8:44::2"


MON4, MON6 = DetTopology.MON_V4, DetTopology.MON_V6
# Extra addresses of the peer: real clients (on its veth), phantoms (not on it: scapy speaks
# for them), spoofed sources (nobody's).
POOLS = {
    ("client", 4): ("198.19.44.{}", range(10, 150)),
    ("phantom", 4): ("198.19.44.{}", range(150, 200)),
    ("spoof", 4): ("198.19.44.{}", range(200, 250)),
    ("client", 6): ("2001:db8:44::1:{:x}", range(1, 0x1000)),
    ("phantom", 6): ("2001:db8:44::2:{:x}", range(1, 0x1000)),
    ("spoof", 6): ("2001:db8:44::3:{:x}", range(1, 0x1000)),
}

CONF = """\
# ebpfmon integration test configuration (written by test_detection.py)
[network]
max_connections_per_ip = 1000
http_ports = {port}
malicious_url_patterns = /wp-admin, /.env
allowlist = 127.0.0.0/8, ::1
# every probe comes from 198.19.44.0/24: a network ban would ban the controls too
cidr_ban_threshold = 0
ban_duration = {ban_s}s
monitoring_interval = 500ms
{extra}
[loader]
pin_root = {pin_root}
{loader_extra}
[api]
uds_socket_path = {api_dir}/api.sock
"""

NGINX_CONF = """\
# nginx for test_detection.py: foreground, everything in {d}
daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    log_format det '$remote_addr $status $uri "$request"';
    access_log {d}/access.log det;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    # longer than any probe: nginx must not end a connection whose request XDP drops while
    # its client still retransmits it (one request is one offence)
    client_header_timeout 15s;
    keepalive_timeout 5s;
    default_type text/plain;
    # merge_slashes: left at its default (on), as on a real server
    server {{
        listen {mon4}:{port} default_server;
        listen [{mon6}]:{port} default_server;
        server_name _;
        root {d}/www;
        location / {{
        }}
    }}
}}
"""

DOCROOT = {
    "index.html": "public page\n",
    "wp-admin/index.html": "PROTECTED wp-admin\n",
    ".env": "PROTECTED SECRET=1\n",
}

REQ_WP = b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n"
REQ_INDEX = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
SCAPY_PY = None  # an interpreter that imports scapy (main() finds it)


def ip_rx(ip):
    """An address in a log line, not a prefix of a longer one (198.19.44.1 vs .10)."""
    return re.escape(ip) + r"(?![0-9A-Fa-f.:])"


def url_host(ip):
    return f"[{ip}]" if ":" in ip else ip


class Ctx:
    def __init__(self, args):
        self.loader_path = os.path.abspath(args.loader)
        self.analyzer_path = os.path.abspath(args.analyzer)
        self.bpftool = Bpftool(args.bpftool)
        self.topo = DetTopology()
        self.pin_root = f"{BPFFS}/{PIN_PREFIX}{os.getpid()}"
        self.loader = None
        self.analyzer = None
        self.nginx = None
        self.db = None
        self.next_addr = {k: iter(r) for k, (_, r) in POOLS.items()}
        self.mon_mac = self.peer_mac = None
        self.tmpdir = tempfile.mkdtemp(prefix=f"ebpfmon-it-{os.getpid()}-")
        CLEANUP.push(f"remove {self.tmpdir}", lambda: shutil.rmtree(self.tmpdir, True))
        os.chmod(self.tmpdir, 0o755)  # the analyzer (ebpfmon) and nginx's worker (nobody) read
        self.api_dir = nstest.make_api_dir(f"/tmp/ebpfmon-it-api-{os.getpid()}")
        self.xdp_mode = args.xdp_mode  # None: the loader's default (auto)
        self.conf = self.write_conf("ebpfmon.conf")
        self.web = os.path.join(self.tmpdir, "nginx")
        self.access_log = os.path.join(self.web, "access.log")

    def write_file(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def write_conf(self, name, extra="", ban_s=BAN_S):
        """The test configuration with lines added to [network] and the ban duration."""
        loader_extra = f"xdp_mode = {self.xdp_mode}" if self.xdp_mode else ""
        return self.write_file(name, CONF.format(port=HTTP_PORT, extra=extra,
                                                 pin_root=self.pin_root, ban_s=ban_s,
                                                 api_dir=self.api_dir,
                                                 loader_extra=loader_extra))

    def setup(self):
        if os.path.lexists(self.pin_root):
            raise AssertionError(f"{self.pin_root} exists already")
        self.topo.setup()
        # A client killed with a request in flight leaves an orphan socket that retransmits
        # for minutes: here it gives up after one retry (the peer namespace is the test's).
        nstest.run(self.topo.in_peer(["sysctl", "-q", "-w", "net.ipv4.tcp_orphan_retries=1"]))
        self.mon_mac = self.mac(self.topo.mon, self.topo.mon_if)
        self.peer_mac = self.mac(self.topo.peer, self.topo.peer_if)
        CLEANUP.push(f"unload {self.pin_root}", lambda: unload_and_remove(
            self.loader_path, self.pin_root, self.topo.mon))
        self.loader = Loader(self.loader_path, self.topo.mon,
                             ["-c", self.conf, "-i", self.topo.mon_if, "--pin-root",
                              self.pin_root], self.tmpdir)
        self.loader.wait_ready()
        self.check_ingress_hook()
        self.start_nginx()

    def check_ingress_hook(self):
        """The loader's ingress link is of the kind --xdp-mode asks: links/ingress-IF (tcx)
        for tc, links/xdp-IF otherwise, never both."""
        links = sorted(os.listdir(os.path.join(self.pin_root, "links")))
        want, other = (("ingress", "xdp") if self.xdp_mode == "tc" else ("xdp", "ingress"))
        ifn = self.topo.mon_if
        assert f"{want}-{ifn}" in links and f"{other}-{ifn}" not in links, \
            f"xdp_mode {self.xdp_mode or 'default'}: link pins {links}, expected " \
            f"{want}-{ifn} alone"
        log(f"  ingress hook: links/{want}-{ifn} (xdp_mode {self.xdp_mode or 'default'})")

    def restart_loader(self, conf=None):
        """Stop the loader (its links go, the maps stay) and start it again with conf."""
        self.loader.stop()
        self.start_loader(conf)

    def start_loader(self, conf=None):
        self.loader = Loader(self.loader_path, self.topo.mon,
                             ["-c", conf or self.conf, "-i", self.topo.mon_if, "--pin-root",
                              self.pin_root], self.tmpdir)
        self.loader.wait_ready()

    def mac(self, ns, ifname):
        out = nstest.run(nstest.ns_cmd(ns, ["ip", "-j", "link", "show", "dev", ifname])).stdout
        return json.loads(out)[0]["address"]

    # -- nginx --------------------------------------------------------------------------

    def start_nginx(self):
        d = self.web
        for rel, text in DOCROOT.items():
            path = os.path.join(d, "www", rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        for root, dirs, files in os.walk(d):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, mon4=MON4, mon6=MON6, port=HTTP_PORT))
        r = nstest.run(self.topo.in_mon(["nginx", "-t", "-p", d + "/", "-c", conf, "-e",
                                         f"{d}/error.log"]),
                       check=False)
        if r.returncode != 0:
            raise AssertionError(f"nginx -t refused {conf}:\n{r.stderr.strip()}")
        self.nginx = Background(self.topo.in_mon(["nginx", "-p", d + "/", "-c", conf, "-e",
                                                  f"{d}/error.log"]), "nginx")
        CLEANUP.push("stop nginx's workers", self.kill_nginx_workers)
        for host in (MON4, MON6):
            ok = nstest.wait_until(lambda h=host: nstest.tcp_connect(self.topo.mon, h, HTTP_PORT,
                                                                     1.0) == "connected", 10)
            if not ok:
                raise AssertionError(f"nginx does not accept on [{host}]:{HTTP_PORT} within "
                                     f"10 s (running={self.nginx.running()}):\n"
                                     f"{self.nginx.output()}\n{self.error_log()}")

    def kill_nginx_workers(self):
        """Workers of our nginx master (by parent pid), should the master have died first."""
        master = self.nginx.pid if self.nginx else None
        if master is None:
            return
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master and nstest.proc_comm(p) == "nginx":
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass

    def error_log(self):
        try:
            with open(os.path.join(self.web, "error.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def access(self, src=None):
        """nginx's access log as (remote_addr, status, uri, request line) tuples."""
        out = []
        try:
            with open(self.access_log) as f:
                for line in f:
                    m = re.match(r'^(\S+) (\d{3}) (\S*) "(.*)"$', line.rstrip("\n"))
                    if m and (src is None or m.group(1) == src):
                        out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
        except FileNotFoundError:
            pass
        return out

    def served(self, src, prefix):
        """Access-log entries of src answered 200 for a (decoded, normalised) uri under
        prefix: the protected file was served."""
        return [e for e in self.access(src) if e[1] == 200 and e[2].startswith(prefix)]

    # -- addresses ----------------------------------------------------------------------

    def new_addr(self, kind, family):
        fmt, _ = POOLS[(kind, family)]
        return fmt.format(next(self.next_addr[(kind, family)]))

    def client(self, family=4):
        """A fresh address on the peer's veth (gone with the namespace)."""
        ip = self.new_addr("client", family)
        plen = 24 if family == 4 else 64
        nstest.run(self.topo.in_peer(["ip", "addr", "add", f"{ip}/{plen}", "dev",
                                      self.topo.peer_if] + (["nodad"] if family == 6 else [])))
        return ip

    def phantom(self, family=4):
        """An address the peer does not own, that the monitor resolves to the peer's MAC."""
        ip = self.new_addr("phantom", family)
        nstest.run(self.topo.in_mon(["ip", "neigh", "replace", ip, "lladdr", self.peer_mac,
                                     "dev", self.topo.mon_if, "nud", "permanent"]))
        return ip

    # -- the analyzer -------------------------------------------------------------------

    def new_db(self):
        d = tempfile.mkdtemp(prefix="db-", dir=self.tmpdir)
        os.chown(d, pwd.getpwnam(nstest.USER).pw_uid, grp.getgrnam(nstest.GROUP).gr_gid)
        os.chmod(d, 0o700)
        self.db = os.path.join(d, "ebpfmon.db")
        return self.db

    def fresh(self, *extra, conf=None):
        """A new unprivileged analyzer (no history) on an empty bans map and a new database."""
        self.stop_analyzer()
        self.clear_bans()
        self.new_db()
        cmd = ["setpriv", "--reuid", nstest.USER, "--regid", nstest.GROUP, "--init-groups",
               "--inh-caps=-all", "--bounding-set=-all", self.analyzer_path,
               "-c", conf or self.conf, "--db", self.db, "--wait", "10"] + list(extra)
        an = Background(cmd, "analyzer")
        self.analyzer = an
        ready = nstest.wait_until(lambda: an.wait_line(r"\bready\b", 0) or not an.running(),
                                  10, 0.05)
        if not an.wait_line(r"\bready\b", 0):
            an.wait(2)
            why = f"exited {an.proc.returncode}" if ready else "no 'ready' line within 10 s"
            raise AssertionError(f"the analyzer did not start ({why}): " +
                                 " / ".join(an.output().splitlines()[-3:]))
        return an

    def stop_analyzer(self):
        if self.analyzer is not None:
            self.analyzer.kill()

    def query(self, sql, *params):
        """Rows (dicts) of a query on ctx.db, read-only; [] while the file does not exist."""
        return nstest.db_query(self.db, sql, *params)

    def rows_of(self, ip):
        return self.query("SELECT * FROM malicious_ips WHERE address = ? ORDER BY id", ip)

    # -- maps ---------------------------------------------------------------------------

    def map_path(self, name):
        return os.path.join(self.pin_root, "maps", name)

    def get_ban(self, ip):
        return self.bpftool.ban_get(self.map_path("bans"), ip)

    def counters(self):
        return self.bpftool.counters(self.map_path("counters"))

    def clear_bans(self):
        for name in ("bans", "ban_nets"):
            path = self.map_path(name)
            if not os.path.lexists(path):
                continue
            d = self.bpftool.json("map", "dump", "pinned", path, check=False) or []
            for e in d:
                if isinstance(e, dict) and "key" in e:
                    self.bpftool.map_delete(path, nstest._raw(e["key"]))

    # -- clients ------------------------------------------------------------------------

    def curl(self, src, path, host=None, extra=(), timeout=CURL_T):
        """curl --path-as-is from src in the peer: (http code, 'rc=N stderr'). '000': no
        response (dropped, reset, timed out)."""
        host = host or (MON6 if ":" in src else MON4)
        cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is",
               "-m", str(timeout), "--interface", src] + list(extra) + \
              [f"http://{url_host(host)}{path}"]
        r = nstest.run(self.topo.in_peer(cmd), check=False, timeout=timeout + 15)
        return r.stdout.strip()[-3:] or "000", f"rc={r.returncode} {r.stderr.strip()}"

    def raw(self, src, chunks, delay=0.05, timeout=2.0, expect=1):
        """A TCP client in the peer (TCP_NODELAY) that sends each chunk in its own send(),
        delay s apart, then reads for up to timeout s (or until `expect` responses came); it
        closes with a RST. Returns its result: {"result", "statuses", "head"}."""
        host = MON6 if ":" in src else MON4
        r = nstest.run(self.topo.in_peer([sys.executable, THIS, "raw", host, str(HTTP_PORT), src,
                                          str(timeout), str(delay), str(expect)] +
                                         [c.hex() for c in chunks]),
                       check=False, timeout=timeout + len(chunks) * delay + 15)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError(f"raw client failed (rc={r.returncode}): {r.stdout!r} "
                                 f"{r.stderr.strip()}") from None

    def scapy(self, spec, timeout=20):
        """The scapy helper (below, pkt_main) in the peer namespace; its JSON result."""
        spec = dict(spec, iface=self.topo.peer_if, src_mac=self.peer_mac, dst_mac=self.mon_mac)
        r = nstest.run(self.topo.in_peer([SCAPY_PY, THIS, "pkt", json.dumps(spec)]),
                       check=False, timeout=timeout)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError(f"scapy helper failed (rc={r.returncode}): {r.stdout!r} "
                                 f"{r.stderr.strip()[-2000:]}") from None

    def kill_peer_sockets(self):
        """Every TCP socket of the peer namespace (ss -K): no orphan retransmits a dropped
        request into the next test."""
        nstest.run(self.topo.in_peer(["ss", "-K", "-t"]), check=False)


# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------


def ban_line(an, ip, timeout=BAN_WAIT):
    return an.wait_line(r"\bbanned " + ip_rx(ip), timeout)


def ban_lines(an, ip):
    return re.findall(r"^.*\bbanned " + ip_rx(ip) + r".*$", an.output(), re.M)


def expect_blocked_and_banned(ctx, an, src, prefix, what, client):
    """The user's view of a probe walked around no more: the protected path was not served
    (client: what the client got; the access log) and src is banned (log line, bans map)."""
    problems = []
    if client.get("served"):
        problems.append(f"the probe was SERVED: the client got {client['got']}")
    hits = ctx.served(src, prefix)
    if hits:
        problems.append(f"nginx's access log has 200 for {prefix}: {hits}")
    line = ban_line(an, src)
    if not line:
        problems.append(f"no 'banned {src}' within {BAN_WAIT} s")
    else:
        log(f"  {line}")
        ban = ctx.get_ban(src)
        if ban is None:
            problems.append(f"'{line}' but no entry for {src} in the bans map")
        elif ban["reason"] != REASON_URL_RULE:
            problems.append(f"bans[{src}].reason = {ban['reason']}, expected {REASON_URL_RULE} "
                            f"(url_rule)")
        # the row shows the canonical path the server would have routed
        paths = []
        nstest.wait_until(lambda: paths.extend(r["path"] for r in ctx.rows_of(src)) or paths,
                          3, 0.1)
        if not any(p.lower().startswith(prefix.lower()) for p in paths):
            problems.append(f"malicious_ips.path for {src} is {paths}, expected the canonical "
                            f"path starting {prefix} (lower-cased when case-insensitive)")
    assert not problems, f"{what} from {src}: " + "; ".join(problems) + \
        f"\n  client: {client}\n  access log of {src}: {ctx.access(src)}"


def curl_probe(ctx, path, prefix, family=4, extra=(), what=None):
    an = ctx.fresh()
    src = ctx.client(family)
    code, detail = ctx.curl(src, path, extra=extra)
    log(f"  curl {' '.join(extra + (path,))} from {src}: {code} ({detail})")
    expect_blocked_and_banned(ctx, an, src, prefix, what or f"GET {path}",
                              {"served": code == "200", "got": f"HTTP {code} ({detail})"})


def raw_probe(ctx, chunks, prefix, what, expect=1, family=4):
    an = ctx.fresh()
    src = ctx.client(family)
    res = ctx.raw(src, chunks, expect=expect)
    log(f"  raw client {src}: {res}")
    expect_blocked_and_banned(ctx, an, src, prefix, what, {
        "served": any(e[1] == 200 and e[2].startswith(prefix) for e in ctx.access(src)),
        "got": res})
    return src, res


def delta(before, after, *fields):
    return {f: after[f] - before[f] for f in fields}


def expect_not_banned(ctx, an, ip, what, settle=1.0):
    """No 'banned ip' / 'would ban ip' line (waiting settle s for one), no bans entry."""
    line = an.wait_line(r"\b(?:banned|would ban) " + ip_rx(ip), settle)
    ban = ctx.get_ban(ip)
    assert not line and ban is None, f"{what}: {ip} was banned: line {line!r}, bans map {ban}"


TESTS, test = nstest.test_registry()


# ---------------------------------------------------------------------------------------
# Controls
# ---------------------------------------------------------------------------------------


def control(ctx, an, src, what):
    code, detail = ctx.curl(src, "/index.html")
    log(f"  control GET /index.html from {src}: {code}")
    assert code == "200", f"{what}: GET /index.html from {src} got {code} ({detail}), " \
                          f"expected 200\n{ctx.error_log()[-1500:]}"
    assert any(e[1] == 200 and e[2] == "/index.html" for e in ctx.access(src)), \
        f"{what}: curl got 200 but nginx did not log it: {ctx.access(src)}"
    expect_not_banned(ctx, an, src, what)


@test("control: GET /index.html from real clients (IPv4, IPv6) is served, nobody is banned")
def t01_control_before(ctx):
    an = ctx.fresh()
    ctx.control_v4, ctx.control_v6 = ctx.client(4), ctx.client(6)
    for src in (ctx.control_v4, ctx.control_v6):
        control(ctx, an, src, "control before the probes")
    bans = re.findall(r"^.*\b(?:banned|would ban) .*$", an.output(), re.M)
    assert not bans, f"a ban without a probe: {bans}"


@test("baseline: the literal GET /wp-admin/ (curl) and GET /.env (raw socket) are not served "
      "and ban their sources")
def t01b_baseline_literal(ctx):
    curl_probe(ctx, "/wp-admin/", "/wp-admin")
    raw_probe(ctx, [b"GET /.env HTTP/1.1\r\nHost: x\r\n\r\n"], "/.env", "GET /.env (raw socket)")


@test("baseline: GET /wp-admin/ in one plain segment of a scapy-made connection (phantom "
      "address) is not served and bans the phantom")
def t01c_baseline_phantom(ctx):
    an = ctx.fresh()
    src, res = phantom_request(ctx, 4, "plain")
    expect_blocked_and_banned(ctx, an, src, "/wp-admin", "GET /wp-admin/ (scapy, plain)", {
        "served": bool(res.get("response")), "got": res})


# ---------------------------------------------------------------------------------------
# Paths nginx routes to /wp-admin/ or /.env (curl --path-as-is)
# ---------------------------------------------------------------------------------------


@test("GET //wp-admin/ (merged slashes): not served, banned")
def t02_double_slash(ctx):
    curl_probe(ctx, "//wp-admin/", "/wp-admin")


@test("GET /./wp-admin/ (dot segment): not served, banned")
def t03_dot_segment(ctx):
    curl_probe(ctx, "/./wp-admin/", "/wp-admin")


@test("GET /wp%2dadmin/ (percent-encoded '-'): not served, banned")
def t04_pct_dash(ctx):
    curl_probe(ctx, "/wp%2dadmin/", "/wp-admin")


@test("GET /%2fwp-admin/ (percent-encoded '/'): not served, banned")
def t05_pct_slash(ctx):
    curl_probe(ctx, "/%2fwp-admin/", "/wp-admin")


@test("GET /%2eenv (rule /.env, percent-encoded '.'): not served, banned")
def t06_pct_dot_env(ctx):
    curl_probe(ctx, "/%2eenv", "/.env")


@test("GET /static/../wp-admin/ (dot-dot segment): not served, banned")
def t07_dotdot(ctx):
    curl_probe(ctx, "/static/../wp-admin/", "/wp-admin")


@test("GET //wp-admin/ over IPv6: not served, the IPv6 source banned")
def t08_double_slash_v6(ctx):
    curl_probe(ctx, "//wp-admin/", "/wp-admin", family=6)


@test("absolute form: GET http://198.19.44.1/wp-admin/ HTTP/1.1: not served, banned")
def t09_absolute_form(ctx):
    curl_probe(ctx, "/", "/wp-admin",
               extra=("--request-target", f"http://{MON4}/wp-admin/"),
               what=f"GET http://{MON4}/wp-admin/ (absolute form)")


@test("a decoded CR LF in the path cannot forge a log line: the ban line shows it escaped")
def t09b_log_injection(ctx):
    forged = "198.19.44.251"
    curl_probe(ctx, f"/wp-admin%0d%0abanned%20{forged}%20for%2099s", "/wp-admin")
    an = ctx.analyzer
    assert not re.search(r"^banned " + re.escape(forged), an.output(), re.M), \
        f"a forged line reached the log:\n{an.output()}"
    assert "\\x0d\\x0a" in an.output(), f"the CR LF is not shown escaped:\n{an.output()}"


# ---------------------------------------------------------------------------------------
# Request lines a raw socket sends
# ---------------------------------------------------------------------------------------


@test("two spaces: 'GET  /wp-admin/ HTTP/1.1': not served, banned")
def t10_two_spaces(ctx):
    raw_probe(ctx, [b"GET  /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n"], "/wp-admin",
              "'GET  /wp-admin/' (two spaces)")


@test("two requests in one segment: GET /index.html then GET /wp-admin/: the second is not "
      "served, banned")
def t11_pipelined(ctx):
    src, res = raw_probe(ctx, [REQ_INDEX + REQ_WP], "/wp-admin",
                         "GET /index.html + GET /wp-admin/ in one segment", expect=2)
    log(f"  the first response {'came back' if res['statuses'] else 'did not come back'} "
        f"(either is fine: the segment carries the probe)")


@test("request line split over two segments: 'GET /wp' | '-admin/ HTTP/1.1...': not served, "
      "banned")
def t12_split_path(ctx):
    raw_probe(ctx, [b"GET /wp", b"-admin/ HTTP/1.1\r\nHost: x\r\n\r\n"], "/wp-admin",
              "'GET /wp' | '-admin/ ...' (two segments, 50 ms apart)")


@test("method split over two segments: 'GE' | 'T /.env HTTP/1.1...': not served, banned")
def t13_split_method(ctx):
    raw_probe(ctx, [b"GE", b"T /.env HTTP/1.1\r\nHost: x\r\n\r\n"], "/.env",
              "'GE' | 'T /.env ...' (two segments, 50 ms apart)")


# ---------------------------------------------------------------------------------------
# What the kernel reassembles for the server: the stream guard (bpf/stream.h)
# ---------------------------------------------------------------------------------------

REST = b"-admin/ HTTP/1.1\r\nHost: x\r\n\r\n"


def stream_probe(ctx, segments, what, burst=False):
    """A real connection from a phantom address whose request is sent as the given segments
    ([offset, bytes, options]); the server would read GET /wp-admin/."""
    an = ctx.fresh()
    src = ctx.phantom(4)
    before = ctx.counters()
    res = ctx.scapy(dict(mode="segments", src=src, dst=MON4, dport=HTTP_PORT, burst=burst,
                         segments=[[o, d.hex(), opts] for o, d, opts in segments], wait=2.0))
    log(f"  {what} from phantom {src}: {res}")
    assert res.get("synack"), f"harness: no SYN-ACK for the phantom {src}: {res}"
    d = delta(before, ctx.counters(), "url_hits", "stream_url_hits", "stream_drop_url",
              "stream_overlap", "stream_split", "url_to_stream")
    log(f"  counters: {d}")
    expect_blocked_and_banned(ctx, an, src, "/wp-admin", what, {
        "served": bool(res.get("response")), "got": res})
    return d


GLUED = (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
         b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n")


@test("a request glued to the last byte of a body (Content-Length: 5, 'hello', then "
      "'GET /wp-admin/...' with no line break): not served, banned (the stream guard's framing)")
def t11b_glued_after_body(ctx):
    before = ctx.counters()
    raw_probe(ctx, [GLUED], "/wp-admin", "POST with a 5-byte body, GET /wp-admin/ glued to it",
              expect=2)
    d = delta(before, ctx.counters(), "stream_url_hits")
    assert d["stream_url_hits"] >= 1, f"counters.stream_url_hits did not increase: {d}"


@test("a body is data, not requests: POSTs whose bodies hold 'GET /.env HTTP/1.1' and "
      "'COPY /.env /app/.env' lines (in one segment, cut across segments, and chunked) reach "
      "nginx (405), nobody is banned")
def t11d_body_is_data(ctx):
    an = ctx.fresh()
    before = ctx.counters()
    bodies = [b"hello=\r\nGET /.env HTTP/1.1\r\nHost: x\r\n\r\n",
              b"FROM debian:12\nCOPY /.env /app/.env\nRUN true\n",
              b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n" * 3]
    problems = []
    for i, body in enumerate(bodies):
        src = ctx.client(4)
        head = (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        if i == 2:  # the same lines, chunked, chunks cut across segments, with a trailer
            head = (b"POST /index.html HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            data = (b"%x;ext=1\r\n%s\r\n" % (len(body[:50]), body[:50]) +
                    b"%X\r\n%s\r\n0\r\nX-Trailer: GET /.env HTTP/1.1\r\n\r\n" %
                    (len(body[50:]), body[50:]))
            chunks = [head + data[:30], data[30:70], data[70:]]
        else:
            chunks = [head + body] if i == 0 else [head, body[:9], body[9:]]
        res = ctx.raw(src, chunks)
        log(f"  POST with body {body!r} from {src} in {len(chunks)} segment(s): {res}")
        if "405" not in res.get("statuses", []):
            problems.append(f"{src}: nginx did not answer the POST (405): {res}")
        if ban_line(an, src, timeout=1.5):
            problems.append(f"{src} was banned for a line of its body: {ban_lines(an, src)}")
    d = delta(before, ctx.counters(), "stream_url_hits", "url_hits", "stream_drop_url")
    log(f"  counters: {d}")
    assert not problems, "; ".join(problems) + f" (counters {d})"


def chunked(*parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@test("a fake request line with a Content-Length inside a chunked body, or in its trailer, "
      "does not hide the request after it: not served, banned")
def t11e_chunked_decoy(ctx):
    fake = b"GET / HTTP/1.1\r\nContent-Length: 21\r\n\r\n"
    head = b"GET /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw_probe(ctx, [head + chunked(fake) + REQ_WP], "/wp-admin",
              "a Content-Length decoy inside a chunked body, then GET /wp-admin/", expect=2)
    trailer = (b"5\r\nhello\r\n0\r\nGET / HTTP/1.1\r\nContent-Length: 14\r\n\r\n")
    raw_probe(ctx, [head + trailer + REQ_WP], "/wp-admin",
              "a Content-Length decoy in a chunked trailer, then GET /wp-admin/", expect=2)


@test("framing across chunks: the headers, the body's start, its end with the glued request, "
      "in 3 segments 50 ms apart: not served, banned")
def t11c_glued_split(ctx):
    head, rest = GLUED.split(b"\r\n\r\n", 1)
    raw_probe(ctx, [head + b"\r\n", b"\r\nhel", b"loGET /wp-admin/ HTTP/1.1\r\n\r\n"],
              "/wp-admin", "headers | start of the body | its end and the glued request",
              expect=2)


@test("out of order: '-admin/ HTTP/1.1...' sent before 'GET /wp': the server would read "
      "GET /wp-admin/; not served, banned (the stream guard)")
def t13b_out_of_order(ctx):
    d = stream_probe(ctx, [[7, REST, ""], [0, b"GET /wp", ""]], "second half first")
    assert d["stream_url_hits"] >= 1, f"counters.stream_url_hits did not increase: {d}"
    # XDP left the connection's segments to the guard, and matched none of them itself
    assert d["url_to_stream"] >= 2 and d["url_hits"] == 0, f"XDP's share: {d}"


@test("overlap: 'GET /wp' then 'XX-admin/ HTTP/1.1...' at offset 5: TCP keeps 'wp', the "
      "server would read GET /wp-admin/; not served, banned")
def t13c_overlap(ctx):
    d = stream_probe(ctx, [[0, b"GET /wp", ""], [5, b"XX" + REST, ""]],
                     "overlapping segments with other bytes")
    assert d["stream_overlap"] >= 1, f"counters.stream_overlap did not increase: {d}"


@test("after the guard drops a chunk, the connection's later chunks are dropped too: "
      "'ET /wp' (out of order), 'G', then '-admin/ ' and the rest again in one burst: the "
      "server never reads GET /wp-admin/")
def t13g_after_a_drop(ctx):
    rest = b"-admin/ HTTP/1.1\r\nHost: x\r\n\r\n"
    stream_probe(ctx, [[1, b"ET /wp", ""], [0, b"G", ""], [7, b"-admin/ ", "pause"],
                       [15, rest, ""]], "a line completed again after its dropped chunk",
                 burst=True)


@test("decoy: 'GET /wp', a bad-checksum 'GET /xx' at the same place, '-admin/...', in one "
      "burst: the kernel discards the decoy; not served, banned")
def t13d_decoy(ctx):
    stream_probe(ctx, [[0, b"GET /wp", ""], [0, b"GET /xx", "badsum"], [7, REST, ""]],
                 "bad-checksum decoy", burst=True)


@test("a connection opened while no loader runs is taken under the stream guard when one "
      "starts: the out-of-order probe sent on it afterwards is not served, banned")
def t13f_adopted_connection(ctx):
    import threading
    an = ctx.fresh()
    src = ctx.phantom(4)
    got = []
    spec = dict(mode="segments", src=src, dst=MON4, dport=HTTP_PORT, hold=6.0,
                segments=[[7, REST.hex(), ""], [0, b"GET /wp".hex(), ""]], wait=2.0)
    ctx.loader.stop()  # nothing attached: the connection is made unguarded
    try:
        t = threading.Thread(target=lambda: got.append(ctx.scapy(spec, timeout=30)))
        t.start()
        time.sleep(1.5)  # the handshake is done; the request is held back
    finally:
        ctx.start_loader()
    line = ctx.loader.wait_line(r"already open taken in", 5)
    t.join(40)
    assert got, "harness: the scapy helper returned nothing"
    res = got[0]
    log(f"  {line}")
    log(f"  second half first, on a connection opened before the restart, from {src}: {res}")
    assert res.get("synack"), f"harness: no SYN-ACK for the phantom {src}: {res}"
    m = re.search(r"(\d+) connection\(s\)", line or "")
    assert m and int(m.group(1)) >= 1, \
        f"the new loader did not report taking in the open connection: {line!r}\n" \
        f"{ctx.loader.tail()}"
    expect_blocked_and_banned(ctx, an, src, "/wp-admin", "out-of-order probe after a restart", {
        "served": bool(res.get("response")), "got": res})


@test("a body in flight across a loader restart keeps its framing: the rest of the body, a fake "
      "request with a huge Content-Length inside it, then GET /wp-admin/: not served, banned")
def t13h_framing_across_restart(ctx):
    import threading
    an = ctx.fresh()
    src = ctx.client(4)
    fake = b"x\r\nGET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
    first = b"0123456789"
    head = (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" %
            (len(first) + len(fake)))
    got = []
    t = threading.Thread(target=lambda: got.append(
        ctx.raw(src, [head + first, fake + REQ_WP], delay=5.0, timeout=3.0, expect=2)))
    t.start()
    time.sleep(1.5)  # the head and the body's first bytes are in; the rest is held back
    ctx.restart_loader()
    t.join(30)
    assert got, "harness: the raw client returned nothing"
    an = ctx.analyzer
    expect_blocked_and_banned(ctx, an, src, "/wp-admin", "a request after a body in flight "
                              "across a loader restart", {
                                  "served": any(e[1] == 200 and e[2].startswith("/wp-admin")
                                                for e in ctx.access(src)),
                                  "got": got[0]})


@test("url_stream_guard = false (the documented switch): the out-of-order probe is served, "
      "XDP alone cannot follow it")
def t13e_stream_switch_off(ctx):
    conf = ctx.write_conf("stream-off.conf", extra="url_stream_guard = false")
    ctx.restart_loader(conf)
    try:
        ctx.fresh(conf=conf)
        src = ctx.phantom(4)
        res = ctx.scapy(dict(mode="segments", src=src, dst=MON4, dport=HTTP_PORT,
                             segments=[[7, REST.hex(), ""], [0, b"GET /wp".hex(), ""]],
                             wait=2.0))
    finally:
        ctx.stop_analyzer()
        ctx.restart_loader()
    log(f"  second half first from phantom {src}, no stream guard: {res}")
    assert (res.get("response") or "").startswith("HTTP/1.1 200") and \
        ctx.served(src, "/wp-admin"), \
        f"without the stream guard the out-of-order probe was expected to be served (a " \
        f"limit of XDP alone, docs/url-matching.md); the client got {res}, access log " \
        f"{ctx.access(src)}"


# ---------------------------------------------------------------------------------------
# What a kernel client cannot send: scapy
# ---------------------------------------------------------------------------------------


def phantom_request(ctx, family, mode, request=REQ_WP, wait=2.0, **kw):
    """A real connection from a phantom address; the request sent as mode ('plain', 'frag',
    'dstopts'). Returns (phantom address, helper result)."""
    src = ctx.phantom(family)
    res = ctx.scapy(dict(kw, mode=mode, src=src, dst=MON6 if family == 6 else MON4,
                         dport=HTTP_PORT, payload=request.hex(), wait=wait))
    log(f"  {mode} request from phantom {src}: {res}")
    assert res.get("synack"), f"harness: no SYN-ACK for the phantom {src} (scapy handshake): " \
                              f"{res}"
    return src, res


def frag_dropped(ctx, family):
    an = ctx.fresh()
    before = ctx.counters()
    src, res = phantom_request(ctx, family, "frag")
    d = delta(before, ctx.counters(), "rx_drop_unseen", "rx_passed", "url_hits")
    log(f"  counters: {d}")
    problems = []
    if res.get("response"):
        problems.append(f"the fragmented request was SERVED: {res['response']!r}")
    if ctx.access(src):
        problems.append(f"nginx logged it: {ctx.access(src)}")
    if d["rx_drop_unseen"] < 1:
        problems.append(f"counters.rx_drop_unseen did not increase ({d})")
    assert not problems, f"IPv{family} fragments (TCP header + 'GET ' | the rest) from {src}: " + \
        "; ".join(problems) + f"\n  helper: {res}"
    return an, src


@test("IPv4 fragments (first: TCP header + 'GET ', second: the rest) of an established "
      "connection: dropped (rx_drop_unseen), nginx never sees the request")
def t14_frag_v4(ctx):
    frag_dropped(ctx, 4)


@test("IPv6 fragments (first: TCP header + 'GET ', second: the rest): dropped "
      "(rx_drop_unseen), nginx never sees the request")
def t15_frag_v6(ctx):
    frag_dropped(ctx, 6)


@test("url_drop_unseen = false (the documented switch): fragments pass XDP (rx_drop_unseen "
      "stays), the stream guard reads the reassembled request: not served, banned")
def t16_frag_switch_off(ctx):
    conf = ctx.write_conf("unseen-off.conf", extra="url_drop_unseen = false")
    an = ctx.fresh(conf=conf)
    for family in (4, 6):
        before = ctx.counters()
        src, res = phantom_request(ctx, family, "frag")
        d = delta(before, ctx.counters(), "rx_drop_unseen", "stream_url_hits")
        log(f"  counters: {d}")
        assert not d["rx_drop_unseen"], f"url_drop_unseen = false, IPv{family} fragments " \
            f"from {src}: counters.rx_drop_unseen increased by {d['rx_drop_unseen']}"
        assert d["stream_url_hits"] >= 1, f"IPv{family} fragments from {src}: the stream " \
            f"guard did not match the reassembled request ({d})"
        expect_blocked_and_banned(ctx, an, src, "/wp-admin",
                                  f"IPv{family} fragments, url_drop_unseen = false", {
                                      "served": bool(res.get("response")), "got": res})


@test("IPv6 request behind 6 Destination Options headers: not served; matched and banned, or "
      "dropped as unseen")
def t17_dstopts_v6(ctx):
    an = ctx.fresh()
    before = ctx.counters()
    src, res = phantom_request(ctx, 6, "dstopts", n_ext=6)
    d = delta(before, ctx.counters(), "rx_drop_unseen", "url_hits", "rx_drop_url",
              "stream_url_hits")
    d["url_hits"] += d["stream_url_hits"]  # XDP's or the stream guard's
    log(f"  counters: {d}")
    problems = []
    if res.get("response"):
        problems.append(f"the request was SERVED: {res['response']!r}")
    if ctx.served(src, "/wp-admin"):
        problems.append(f"nginx logged a 200: {ctx.access(src)}")
    if d["url_hits"] >= 1:
        how = "matched (url_hits)"
        if not ban_line(an, src):
            problems.append(f"matched (url_hits {d['url_hits']}) but no 'banned {src}' within "
                            f"{BAN_WAIT} s")
    elif d["rx_drop_unseen"] >= 1:
        how = "dropped as unseen (rx_drop_unseen)"
    else:
        how = "neither matched nor dropped as unseen"
        problems.append(f"counters: neither url_hits nor rx_drop_unseen increased ({d})")
    log(f"  6 Destination Options: {how}")
    assert not problems, f"GET /wp-admin/ behind 6 Destination Options from {src}: " + \
        "; ".join(problems) + f"\n  helper: {res}"


@test("spoofed source (no handshake): PSH/ACK 'GET /wp-admin/' bans nobody, counted "
      "url_unverified; a real client with the same probe is banned")
def t18_spoof(ctx):
    an = ctx.fresh()
    spoofed = ctx.new_addr("spoof", 4)
    before = ctx.counters()
    res = ctx.scapy(dict(mode="spoof", src=spoofed, dst=MON4, dport=HTTP_PORT,
                         payload=b"GET /wp-admin/ HTTP/1.1\r\n\r\n".hex()))
    log(f"  spoofed segment from {spoofed}: {res}")
    unverified = nstest.wait_until(
        lambda: ctx.counters()["url_unverified"] - before["url_unverified"], 2)
    log(f"  counters: {delta(before, ctx.counters(), 'url_unverified', 'url_hits')}")
    problems = []
    if not unverified:
        problems.append(f"counters.url_unverified did not increase within 2 s "
                        f"({delta(before, ctx.counters(), 'url_unverified', 'url_hits')})")
    line = an.wait_line(r"\b(?:banned|would ban) " + ip_rx(spoofed), 1.5)
    if line:
        problems.append(f"the spoofed source was banned: {line!r}")
    if ctx.get_ban(spoofed) is not None:
        problems.append(f"the spoofed source is in the bans map: {ctx.get_ban(spoofed)}")
    assert not problems, f"spoofed GET /wp-admin/ from {spoofed}: " + "; ".join(problems)

    src = ctx.client(4)
    code, detail = ctx.curl(src, "/wp-admin/")
    expect_blocked_and_banned(ctx, an, src, "/wp-admin", "GET /wp-admin/ after the spoof",
                              {"served": code == "200", "got": f"HTTP {code} ({detail})"})


# ---------------------------------------------------------------------------------------
# Policy seen from the client
# ---------------------------------------------------------------------------------------


@test("TCP Fast Open without cookies (tcp_fastopen = 0x602): a spoofed SYN whose data is a "
      "POST with a body and GET /wp-admin/ glued to it bans nobody (url_unverified)")
def t18b_tfo_spoof(ctx):
    tfo_port = 8081  # a listener made after the sysctl: TFO applies to it
    spoofed = ctx.phantom(4)
    old = nstest.run(ctx.topo.in_mon(["sysctl", "-n", "net.ipv4.tcp_fastopen"])).stdout.strip()
    nstest.run(ctx.topo.in_mon(["sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=0x602"]))
    srv = None
    try:
        # a second http_ports line adds to the list (docs/configuration.md)
        an = ctx.fresh(conf=ctx.write_conf("tfo.conf", extra=f"http_ports = {tfo_port}"))
        srv = Background(ctx.topo.in_mon([sys.executable, "-m", "http.server", str(tfo_port),
                                          "--bind", MON4]), "tfo-server")
        time.sleep(1.0)
        before = ctx.counters()
        payload = (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
                   REQ_WP)
        res = ctx.scapy(dict(mode="syndata", src=spoofed, dst=MON4, dport=tfo_port,
                             payload=payload.hex()))
        time.sleep(1.5)  # the server reads the data it accepted with the SYN
        d = delta(before, ctx.counters(), "url_unverified", "stream_url_hits", "url_hits")
        log(f"  spoofed TFO SYN from {spoofed}: {res}; counters {d}")
    finally:
        if srv is not None:
            srv.kill()
        nstest.run(ctx.topo.in_mon(["sysctl", "-q", "-w", f"net.ipv4.tcp_fastopen={old}"]))
    assert not ban_line(an, spoofed, timeout=1.5), \
        f"a spoofed TFO SYN banned {spoofed}: {ban_lines(an, spoofed)}"
    assert ctx.get_ban(spoofed) is None, f"bans[{spoofed}] = {ctx.get_ban(spoofed)}"
    assert d["url_unverified"] >= 1, f"the hit was not counted as unverified: {d}"


@test("one request is one offence: a retransmitted GET /wp-admin/ (curl -m 8, ban 3 s) bans "
      "once, not again after the ban expires, nor after a manual unban (bpftool)")
def t19_one_offence(ctx):
    conf = ctx.write_conf("short-ban.conf", ban_s=SHORT_BAN_S)
    an = ctx.fresh(conf=conf)
    a, b = ctx.client(4), ctx.client(4)
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "8", "--interface"]
    curls = {ip: Background(ctx.topo.in_peer(cmd + [ip, f"http://{MON4}/wp-admin/"]),
                            f"curl@{ip}") for ip in (a, b)}
    try:
        t0 = time.monotonic()
        lb = ban_line(an, b)
        assert lb, f"no 'banned {b}' within {BAN_WAIT} s of GET /wp-admin/:\n{an.output()}"
        ctx.bpftool.map_delete(ctx.map_path("bans"), nstest.addr_key(b), missing_ok=False)
        log(f"  {lb}; unbanned {b} with bpftool {time.monotonic() - t0:.2f} s after the request")
        la = ban_line(an, a)
        assert la, f"no 'banned {a}' within {BAN_WAIT} s of GET /wp-admin/:\n{an.output()}"
        log(f"  {la}")
        for ip, c in curls.items():
            assert c.wait(12) is not None, f"curl from {ip} still running after 12 s"
        # the orphan of each curl (the request still unacknowledged) retries once more
        time.sleep(0.5)
        log(f"  curls ended after {time.monotonic() - t0:.1f} s: "
            f"{ {ip: c.output('out') for ip, c in curls.items()} }")
        problems = []
        for ip, why in ((a, f"after its {SHORT_BAN_S} s ban expired"),
                        (b, "after the manual unban")):
            lines, rows = ban_lines(an, ip), ctx.rows_of(ip)
            if len(lines) != 1:
                problems.append(f"{ip} banned {len(lines)} times (re-banned {why}): {lines}")
            if len(rows) != 1:
                problems.append(f"malicious_ips has {len(rows)} rows for {ip}, expected 1: "
                                f"{[(r['id'], r['banned_at'], r['ended_at']) for r in rows]}")
            if curls[ip].output("out").strip() == "200" or ctx.served(ip, "/wp-admin"):
                problems.append(f"{ip}: the retransmitted request was SERVED "
                                f"({ctx.access(ip)})")
        assert not problems, "; ".join(problems)
    finally:
        for c in curls.values():
            c.kill()


@test("one request is one offence, but a new connection is a new request: the same port and "
      "ISN reused after the ban expired bans again (offence 2)")
def t19b_replayed_isn(ctx):
    conf = ctx.write_conf("short-ban.conf", ban_s=SHORT_BAN_S)
    an = ctx.fresh(conf=conf)
    src = ctx.phantom(4)
    spec = dict(mode="plain", src=src, dst=MON4, dport=HTTP_PORT, payload=REQ_WP.hex(),
                wait=1.0, sport=43211, isn=1432778632)
    first = ctx.scapy(spec)
    assert first.get("synack"), f"harness: no SYN-ACK for {src}: {first}"
    assert ban_line(an, src), f"no 'banned {src}' after the first GET /wp-admin/:\n" \
        f"{an.output()}"
    assert nstest.wait_until(lambda: ctx.get_ban(src) is None, SHORT_BAN_S + 5, 0.2), \
        f"the {SHORT_BAN_S} s ban of {src} did not end"
    # the server still holds the first connection (its RST met the ban): end it, as the
    # attacker would, then connect again from the same port with the same ISN
    ctx.scapy(dict(spec, mode="rst"))
    time.sleep(0.2)
    second = ctx.scapy(spec)
    log(f"  first connection: {first}; second (same port {spec['sport']}, same ISN): {second}")
    assert second.get("synack"), f"harness: no SYN-ACK for the second connection: {second}"
    assert nstest.wait_until(lambda: len(ban_lines(an, src)) >= 2, BAN_WAIT, 0.1), \
        f"{src} was not banned again for the same request on a new connection (same port " \
        f"and sequence number): {ban_lines(an, src)}\n{an.output()}"
    log(f"  {ban_lines(an, src)[-1]}")
    assert "offence 2" in ban_lines(an, src)[-1], ban_lines(an, src)
    assert not second.get("response"), f"the second request was SERVED: {second}"


@test("--dry-run: the probe is served (200), 'would ban', bans stays empty, rx_would_drop "
      "counts; a ban written with bpftool drops nothing (ping passes) and counts would_drops")
def t20_dry_run(ctx):
    an = ctx.fresh("--dry-run")
    src = ctx.client(4)
    before = ctx.counters()
    code, detail = ctx.curl(src, "/wp-admin/")
    log(f"  dry run: curl /wp-admin/ from {src}: {code}")
    problems = []
    if code != "200" or not ctx.served(src, "/wp-admin"):
        problems.append(f"the probe was not served in dry run: curl {code} ({detail}), "
                        f"access log {ctx.access(src)}")
    line = an.wait_line(r"\bwould ban " + ip_rx(src), BAN_WAIT)
    if not line:
        problems.append(f"no 'would ban {src}' within {BAN_WAIT} s")
    else:
        log(f"  {line}")
    if ban_lines(an, src):
        problems.append(f"dry run logged a real ban: {ban_lines(an, src)}")
    if ctx.get_ban(src) is not None:
        problems.append(f"dry run wrote bans[{src}] = {ctx.get_ban(src)}")
    entries = ctx.bpftool.json("map", "dump", "pinned", ctx.map_path("bans")) or []
    if entries:
        problems.append(f"dry run: the bans map is not empty: {entries}")
    d = delta(before, ctx.counters(), "rx_would_drop", "rx_drop_url", "url_hits")
    log(f"  counters: {d}")
    if d["rx_would_drop"] < 1:
        problems.append(f"counters.rx_would_drop did not increase ({d})")
    if d["rx_drop_url"]:
        problems.append(f"dry run dropped {d['rx_drop_url']} packet(s) by a URL rule")

    banned = ctx.client(4)
    ctx.bpftool.map_update(ctx.map_path("bans"), nstest.addr_key(banned), nstest.ban_value(
        expires_ns=nstest.boottime_ns() + 60 * 10**9, reason=0))
    n = nstest.ping(ctx.topo.peer, MON4, count=3, wait=1, src=banned)
    ban = ctx.get_ban(banned)
    log(f"  dry run: ping from {banned} (in bans, written with bpftool): {n}/3 replies; {ban}")
    if n < 1:
        problems.append(f"dry run: ping from {banned} (banned with bpftool) got no reply: the "
                        f"ban dropped")
    if ban is None:
        problems.append(f"bans[{banned}] vanished in dry run")
    else:
        if ban["would_drops"] < 1:
            problems.append(f"bans[{banned}].would_drops = {ban['would_drops']} after the pings")
        if ban["drops"]:
            problems.append(f"bans[{banned}].drops = {ban['drops']} in dry run")
    assert not problems, "dry run: " + "; ".join(problems)


@test("case: without url_case_insensitive, GET /WP-Admin/ is not a hit (nginx answers 404), "
      "nobody is banned")
def t21_case_sensitive_default(ctx):
    an = ctx.fresh()
    src = ctx.client(4)
    code, detail = ctx.curl(src, "/WP-Admin/")
    log(f"  curl /WP-Admin/ from {src}: {code}")
    assert code == "404", f"GET /WP-Admin/ (no case-insensitive rule) got {code} ({detail}), " \
                          f"expected nginx's 404"
    expect_not_banned(ctx, an, src, "GET /WP-Admin/ without url_case_insensitive")


@test("case: url_case_insensitive = true: GET /WP-Admin/ is dropped and banned")
def t22_case_insensitive(ctx):
    conf = ctx.write_conf("nocase.conf", extra="url_case_insensitive = true")
    an = ctx.fresh(conf=conf)
    src = ctx.client(4)
    code, detail = ctx.curl(src, "/WP-Admin/")
    log(f"  curl /WP-Admin/ from {src}: {code} ({detail})")
    # nginx itself answers 404 (case-sensitive file system): "not served" means no answer
    expect_blocked_and_banned(ctx, an, src, "/WP-Admin", "GET /WP-Admin/ (case-insensitive)",
                              {"served": code != "000", "got": f"HTTP {code} ({detail})"})


@test("without the stream guard the ingress program matches by itself: curl GET /wp-admin/ is "
      "dropped there (rx_drop_url; in tc mode its payload lies in the socket buffer's frags), "
      "not served, banned")
def t22b_ingress_matcher(ctx):
    conf = ctx.write_conf("ingress-only.conf", extra="url_stream_guard = false")
    ctx.restart_loader(conf)
    try:
        an = ctx.fresh(conf=conf)
        src = ctx.client(4)
        before = ctx.counters()
        code, detail = ctx.curl(src, "/wp-admin/")
        d = delta(before, ctx.counters(), "rx_drop_url", "url_hits", "stream_url_hits")
        log(f"  curl /wp-admin/ from {src}, no stream guard: {code} ({detail}); counters {d}")
        expect_blocked_and_banned(ctx, an, src, "/wp-admin", "GET /wp-admin/ without the guard",
                                  {"served": code == "200", "got": f"HTTP {code} ({detail})"})
        assert d["rx_drop_url"] >= 1 and d["url_hits"] >= 1 and not d["stream_url_hits"], \
            f"the ingress program did not match and drop the request itself: {d}"
    finally:
        ctx.stop_analyzer()
        ctx.restart_loader()


@test("connection limit: a client that holds more than max_connections_per_ip (3) connections "
      "to nginx is banned (conn_limit) and its next request gets no answer")
def t22c_conn_limit(ctx):
    with open(ctx.write_conf("conn-limit.conf")) as f:
        text = f.read()
    conf = ctx.write_file("conn-limit.conf", text.replace("max_connections_per_ip = 1000",
                                                          "max_connections_per_ip = 3"))
    an = ctx.fresh(conf=conf)
    src = ctx.client(4)
    holder = Background(ctx.topo.in_peer([sys.executable, TEST_ANALYZER, "hold", MON4,
                                          str(HTTP_PORT), "5", "1.0", src]), f"holder@{src}")
    try:
        line = ban_line(an, src)
        assert line, f"no 'banned {src}' within {BAN_WAIT} s of 5 held connections:\n" \
            f"{an.output()}\nholder: {holder.output()}"
        log(f"  {line}")
        ban = ctx.get_ban(src)
        assert "conn_limit" in line and ban is not None and \
            ban["reason"] == REASON_CONN_LIMIT, f"'{line}', bans[{src}] = {ban}"
        code, detail = ctx.curl(src, "/index.html", timeout=2)
        assert code == "000", f"the banned client got HTTP {code} ({detail})"
    finally:
        holder.kill()


@test("control: after the probes of other clients, GET /index.html from the control clients is "
      "still served, they are not banned")
def t23_control_after(ctx):
    an = ctx.fresh()
    srcs = [s for s in (getattr(ctx, "control_v4", None), getattr(ctx, "control_v6", None)) if s]
    if not srcs:  # run alone (-k): clients of their own
        srcs = [ctx.client(4), ctx.client(6)]
    for src in srcs:
        control(ctx, an, src, "control after the probes")
        bad = [e for e in ctx.access(src) if e[1] != 200]
        assert not bad, f"control client {src} got non-200 answers: {bad}"


# ---------------------------------------------------------------------------------------
# Helpers run in the peer namespace
# ---------------------------------------------------------------------------------------


def raw_main(host, port, src, timeout, delay, expect, chunks):
    """Connect from src, send the chunks (TCP_NODELAY, delay s apart), read until `expect`
    status lines, EOF, a reset or timeout; close with a RST (SO_LINGER 0) so that nothing is
    retransmitted after we are gone. Prints one JSON line."""
    nstest._die_with_parent()
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.settimeout(timeout)
    data, result = b"", None
    try:
        c.bind((src, 0))
        c.connect((host, port))
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(delay)
            c.sendall(chunk)
        deadline = time.monotonic() + timeout
        while True:
            if len(re.findall(rb"HTTP/1\.[01] \d{3}", data)) >= expect:
                result = "responses"
                break
            left = deadline - time.monotonic()
            if left <= 0:
                result = "timeout"
                break
            c.settimeout(left)
            try:
                b = c.recv(65536)
            except (socket.timeout, TimeoutError):
                result = "timeout"
                break
            if not b:
                result = "closed"
                break
            data += b
    except ConnectionResetError:
        result = "reset"
    except (socket.timeout, TimeoutError):
        result = "connect timeout"
    except OSError as e:
        result = f"error {e}"
    finally:
        c.close()
    print(json.dumps({"result": result,
                      "statuses": [s.decode() for s in
                                   re.findall(rb"HTTP/1\.[01] (\d{3})", data)],
                      "head": data[:80].decode(errors="replace")}), flush=True)
    return 0


def pkt_main(spec):
    """Run with an interpreter that has scapy. Modes:
      spoof:   one PSH/ACK segment carrying the payload from spec.src, no handshake;
      plain, frag, dstopts: a real handshake from spec.src (a phantom address: the monitor
               sends its replies to our MAC, our kernel drops them), then the payload in one
               segment: as is (plain), as two IP fragments (frag: the first holds the TCP
               header and 4 payload bytes), or behind spec.n_ext Destination Options headers
               (dstopts, IPv6); then read the answer for spec.wait s, and reset.
    Prints one JSON line: synack, response (first line of what the server sent), rst,
    acked (the server acknowledged the request)."""
    nstest._die_with_parent()
    import random
    import logging

    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    src, dst, dport = spec["src"], spec["dst"], spec["dport"]
    payload = bytes.fromhex(spec.get("payload", ""))
    v6 = ":" in dst
    eth = Ether(src=spec["src_mac"], dst=spec["dst_mac"])

    def ip():
        return IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((spec["iface"], 0))
    sport = spec.get("sport") or random.randint(20000, 60000)
    isn = spec.get("isn") or random.getrandbits(32)
    out = {"synack": False, "response": None, "rst": False, "acked": False}

    def send(pkt):
        s.send(bytes(eth / pkt))

    def replies(timeout, stop):
        """TCP segments from dst:dport to src:sport until stop(seg) or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            s.settimeout(left)
            try:
                frame = s.recv(65535)
            except (socket.timeout, TimeoutError):
                return
            p = Ether(frame)
            l3 = p.getlayer(IPv6 if v6 else IP)
            if l3 is None or l3.src != dst or l3.dst != src or TCP not in p:
                continue
            t = p[TCP]
            if t.sport != dport or t.dport != sport:
                continue
            yield t
            if stop(t):
                return

    if spec["mode"] == "syndata":
        # a SYN carrying the payload (TCP Fast Open without a cookie), and nothing after it
        send(ip() / TCP(sport=sport, dport=dport, flags="S", seq=isn, window=64240,
                        options=[("MSS", 1220)]) / Raw(payload))
        print(json.dumps(dict(out, sent=True)), flush=True)
        return 0

    if spec["mode"] == "rst":
        # end the connection spec.sport/spec.isn left open (its request dropped, its RST too)
        for sq in (isn + 1, isn + 1 + len(payload)):  # before or after the request
            send(ip() / TCP(sport=sport, dport=dport, flags="R", seq=sq & 0xffffffff,
                            window=0))
        print(json.dumps(dict(out, sent=True)), flush=True)
        return 0

    if spec["mode"] == "spoof":
        send(ip() / TCP(sport=sport, dport=dport, flags="PA", seq=isn,
                        ack=random.getrandbits(32), window=64240) / Raw(payload))
        out["sent"] = True
        print(json.dumps(out), flush=True)
        return 0

    send(ip() / TCP(sport=sport, dport=dport, flags="S", seq=isn, window=64240,
                    options=[("MSS", 1220)]))
    synack = None
    for t in replies(3.0, lambda t: (int(t.flags) & 0x12) == 0x12):
        if (int(t.flags) & 0x12) == 0x12:
            synack = t
    if synack is None:
        print(json.dumps(out), flush=True)
        return 0
    out["synack"] = True
    seq, ack = isn + 1, synack.seq + 1
    send(ip() / TCP(sport=sport, dport=dport, flags="A", seq=seq, ack=ack, window=64240))
    if spec.get("hold"):
        time.sleep(spec["hold"])  # the connection is open; the test restarts the loader
    seg = TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=ack, window=64240) / \
        Raw(payload)
    if spec["mode"] == "plain":
        send(ip() / seg)
    elif spec["mode"] == "frag":
        whole = bytes(ip() / seg)  # checksums computed over the whole segment
        tcp_bytes = whole[40:] if v6 else whole[(whole[0] & 0xf) * 4:]
        cut = 24  # the TCP header (20) and "GET ": a multiple of 8
        fid = random.getrandbits(16 if not v6 else 32)
        if v6:
            send(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=fid) /
                 Raw(tcp_bytes[:cut]))
            send(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=6, offset=cut // 8, m=0,
                                                              id=fid) / Raw(tcp_bytes[cut:]))
        else:
            send(IP(src=src, dst=dst, id=fid, flags="MF", frag=0, proto=6) /
                 Raw(tcp_bytes[:cut]))
            send(IP(src=src, dst=dst, id=fid, frag=cut // 8, proto=6) / Raw(tcp_bytes[cut:]))
    elif spec["mode"] == "segments":
        # [offset, payload hex, options]: each a segment at seq + offset, in the order given;
        # options: "badsum": a wrong TCP checksum (the kernel discards it, XDP sees it);
        # "pause": 200 ms before this one
        pkts = []
        for off, data, opts in spec["segments"]:
            t = TCP(sport=sport, dport=dport, flags="PA", seq=(seq + off) & 0xffffffff,
                    ack=ack, window=64240)
            if "badsum" in opts:
                t.chksum = (bytes(ip() / t / Raw(bytes.fromhex(data)))[-1] + 0x1234) & 0xffff
            pkts.append(bytes(eth / ip() / t / Raw(bytes.fromhex(data))))
        for i, frame in enumerate(pkts):
            if "pause" in spec["segments"][i][2]:
                time.sleep(0.2)
            s.send(frame)
            if not spec.get("burst") and i + 1 < len(pkts):
                time.sleep(0.05)
        payload = b"x" * max(off + len(bytes.fromhex(data))
                             for off, data, _ in spec["segments"])
    elif spec["mode"] == "dstopts":
        pkt = IPv6(src=src, dst=dst)
        for _ in range(spec.get("n_ext", 6)):
            pkt = pkt / IPv6ExtHdrDestOpt()
        send(pkt / seg)
    else:
        raise SystemExit(f"unknown mode {spec['mode']}")

    data = b""
    end_seq = (seq + len(payload)) & 0xffffffff
    for t in replies(spec.get("wait", 2.0), lambda t: b"\r\n" in data or bool(int(t.flags) & 4)):
        if int(t.flags) & 4:
            out["rst"] = True
        if int(t.flags) & 0x10 and t.ack == end_seq:
            out["acked"] = True
        if Raw in t:
            data += t[Raw].load
    if data:
        out["response"] = data.split(b"\r\n", 1)[0].decode(errors="replace")
    # Reset our end: at the sequence number the server expects, whether it has the request
    # or not.
    for sq in (seq, end_seq):
        send(ip() / TCP(sport=sport, dport=dport, flags="R", seq=sq, window=0))
    print(json.dumps(out), flush=True)
    return 0


# ---------------------------------------------------------------------------------------


def before_test(ctx):
    ctx.analyzer = None
    if ctx.nginx is not None and not ctx.nginx.running():
        raise AssertionError(f"nginx is not running:\n{ctx.error_log()}")


def on_fail(ctx):
    if ctx.analyzer is not None:
        log(f"    analyzer output:\n{ctx.analyzer.output()}")


def after_test(ctx):
    ctx.stop_analyzer()
    ctx.kill_peer_sockets()
    ctx.clear_bans()


def find_scapy_python():
    for py in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        if py and os.access(py, os.X_OK) and subprocess.run(
                [py, "-c", "import scapy.layers.inet6"], capture_output=True).returncode == 0:
            return py
    return None


def main():
    global SCAPY_PY
    if os.geteuid() == 0:  # without root nstest skips first, whatever is installed
        SCAPY_PY = find_scapy_python()
        if SCAPY_PY is None:
            nstest.skip(f"scapy is not importable by {sys.executable} nor /usr/bin/python3 "
                        f"(packaging/install-deps.sh installs python3-scapy)")
    return nstest.main(
        __doc__.split("\n")[0], TESTS, Ctx,
        programs=[("loader", "path of ebpfmon-loader"),
                  ("analyzer", "path of ebpfmon-analyzer")],
        tools=["ip", "nsenter", "ping", "setpriv", "ss", "sysctl", "nginx", "curl"],
        options=[(("--xdp-mode",), dict(choices=XDP_MODES, default=None,
                                        help="the loader's [loader] xdp_mode (default: its "
                                             "own default, auto)"))],
        setup_what="the namespaces, the loader and nginx", before_test=before_test,
        on_fail=on_fail, after_test=("stopping the analyzer / clearing bans", after_test))


if __name__ == "__main__":
    if len(sys.argv) >= 9 and sys.argv[1] == "raw":
        sys.exit(raw_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]),
                          float(sys.argv[6]), int(sys.argv[7]),
                          [bytes.fromhex(x) for x in sys.argv[8:]]))
    elif len(sys.argv) == 3 and sys.argv[1] == "pkt":
        sys.exit(pkt_main(json.loads(sys.argv[2])))
    else:
        sys.exit(main())
