# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Shared helpers of the ebpfmon integration tests (Python 3 standard library only).

What lives here:
  * prerequisites: root with the capabilities we need, the `ebpfmon` user and group, bpffs
    (mounted at /sys/fs/bpf when it is not), the tools; a missing one is a skip (exit 77),
    or a failure (exit 1) when EBPFMON_REQUIRE_BPF=1;
  * Cleanup: one stack of undo actions, run from a finally block, from atexit and on
    SIGTERM/SIGINT/SIGHUP (turned into SystemExit so that every finally block runs);
  * Topology: two network namespaces made by the test and a veth pair between them, using
    only 198.18.0.0/15 and 2001:db8::/32;
  * Loader: ebpfmon-loader started inside the monitor namespace with nsenter (not
    `ip netns exec`, which remounts /sys and hides /sys/fs/bpf), with a real sd_notify socket;
  * Bpftool: map lookup/update/delete/dump on pinned maps, decoding the raw bytes;
  * small TCP server/client helpers run as `python3 nstest.py serve|connect ...` inside a
    namespace;
  * the runner of a test file (main(): options, prerequisites, the selected tests, cleanup,
    "N passed, N failed", the exit status) and its test registry.

Nothing here touches anything outside the namespaces, the veth pair and the private pin root
(/sys/fs/bpf/ebpfmon-test-<pid>) it creates.
"""

import argparse
import atexit
import grp
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP_RC = 77
BPFFS = "/sys/fs/bpf"
NETNS_DIR = "/run/netns"
PIN_PREFIX = "ebpfmon-test-"
NS_PREFIX = "emt-"
USER = "ebpfmon"
GROUP = "ebpfmon"

T0 = time.monotonic()
VERBOSE = False


def log(msg):
    print(f"[{time.monotonic() - T0:7.2f}s] {msg}", flush=True)


def vlog(msg):
    if VERBOSE:
        log(msg)


# ---------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------


def skip(msg):
    """Exit 77 (skipped) with a message, or 1 when EBPFMON_REQUIRE_BPF=1."""
    if os.environ.get("EBPFMON_REQUIRE_BPF") == "1":
        print(f"FAILED (EBPFMON_REQUIRE_BPF=1, cannot skip): {msg}", flush=True)
        sys.exit(1)
    print(f"SKIPPED: {msg}", flush=True)
    sys.exit(SKIP_RC)


def bpffs_mounted(path=BPFFS):
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == path and parts[2] == "bpf":
                return True
    return False


def _cap_eff():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def check_prerequisites(tools):
    """Return None when everything is there, else a message saying what is missing."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, XDP, bpffs)"
    caps = _cap_eff()
    for bit, name in ((12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")):
        if not caps & (1 << bit):
            return f"running as root but without {name}"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"no user '{USER}' (the loader drops to it); create it (packaging/sysusers.d)"
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        return f"no group '{GROUP}' (owner group of the pins)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"'{tool}' not found in PATH"
    if not bpffs_mounted():
        os.makedirs(BPFFS, exist_ok=True)
        r = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], capture_output=True, text=True)
        if r.returncode != 0 or not bpffs_mounted():
            return f"bpffs is not mounted at {BPFFS} and mounting it failed: {r.stderr.strip()}"
        log(f"mounted bpffs at {BPFFS}")
    return None


# ---------------------------------------------------------------------------------------
# Cleanup
# ---------------------------------------------------------------------------------------


class Cleanup:
    """A stack of undo actions; run() pops and runs them all, errors are logged, not raised."""

    def __init__(self):
        self._stack = []
        self._lock = threading.Lock()

    def push(self, desc, fn):
        with self._lock:
            self._stack.append((desc, fn))

    def run(self):
        # A second SIGTERM/SIGINT must not cut the cleanup short.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (ValueError, OSError):
                pass
        while True:
            with self._lock:
                if not self._stack:
                    break
                desc, fn = self._stack.pop()
            try:
                vlog(f"cleanup: {desc}")
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup: {desc}: {e!r}")


CLEANUP = Cleanup()
atexit.register(CLEANUP.run)


def install_signal_handlers():
    """SIGTERM (ctest's timeout), SIGHUP and SIGINT unwind through every finally block."""

    def handler(signum, _frame):
        log(f"caught signal {signum}: cleaning up")
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, handler)
    # When python3 is a wrapper (pyenv shim) that ctest signals instead of us, or the parent
    # dies: get SIGTERM as well (prctl(PR_SET_PDEATHSIG)), so the cleanup still runs.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        ppid = os.getppid()
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != ppid:
            handler(signal.SIGTERM, None)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------


def run(cmd, check=True, timeout=30, env=None, quiet=False):
    """Run a command, capture text output. Raises AssertionError on failure when check."""
    if not quiet:
        vlog("$ " + " ".join(cmd))
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"command timed out after {timeout}s: {' '.join(cmd)}") from e
    if check and r.returncode != 0:
        raise AssertionError(f"command failed (rc={r.returncode}): {' '.join(cmd)}\n"
                             f"stdout: {r.stdout.strip()}\nstderr: {r.stderr.strip()}")
    return r


def ns_cmd(ns, cmd):
    """Command line that runs cmd in network namespace ns (mount namespace untouched)."""
    return ["nsenter", f"--net={NETNS_DIR}/{ns}", "--"] + list(cmd)


def pid_alive(pid):
    return os.path.exists(f"/proc/{pid}")


def wait_until(pred, timeout, interval=0.1):
    """Poll pred() until it returns a truthy value or timeout; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def proc_status(pid):
    """/proc/PID/status as a dict of field -> string."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


class Background:
    """A long-running child in its own session, killed by cleanup. Output is collected."""

    def __init__(self, cmd, name, env=None, stderr=None):
        """stderr: a file descriptor for the child's stderr instead of a pipe collected here
        (then only stdout is collected)."""
        self.name = name
        self.cmd = list(cmd)
        self.lines = []  # (stream, text)
        self._lock = threading.Lock()
        vlog(f"$ {' '.join(self.cmd)} &")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE if stderr is None else stderr,
                                     env=env, start_new_session=True)
        self.pid = self.proc.pid
        streams = [(self.proc.stdout, "out")]
        if stderr is None:
            streams.append((self.proc.stderr, "err"))
        self._threads = [threading.Thread(target=self._reader, args=(s, n), daemon=True)
                         for s, n in streams]
        for t in self._threads:
            t.start()
        CLEANUP.push(f"stop {name} (pid {self.pid})", self.kill)

    def _reader(self, stream, sname):
        for raw in iter(stream.readline, b""):
            text = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self.lines.append((sname, text))
            vlog(f"{self.name}[{self.pid}] {sname}: {text}")
        stream.close()

    def output(self, stream=None):
        with self._lock:
            return "\n".join(t for s, t in self.lines if stream is None or s == stream)

    def wait_line(self, regex, timeout, stream=None):
        rx = re.compile(regex, re.I)

        def found():
            with self._lock:
                for s, t in self.lines:
                    if (stream is None or s == stream) and rx.search(t):
                        return t
            return None

        return wait_until(found, timeout, 0.05)

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Return the exit status (negative: signal) or None if still running after timeout."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(2)
        return rc

    def kill(self):
        if not self.running():
            self.proc.wait()
            return
        self.signal(signal.SIGTERM)
        if self.wait(5) is None:
            log(f"{self.name} (pid {self.pid}) ignored SIGTERM for 5 s: SIGKILL")
            self.signal(signal.SIGKILL)
            self.wait(5)


# ---------------------------------------------------------------------------------------
# Network namespaces
# ---------------------------------------------------------------------------------------


class Topology:
    """mon <-veth-> peer, both made and destroyed by the test."""

    MON_V4 = "198.18.0.1"
    PEER_V4 = "198.18.0.2"
    MON_V6 = "2001:db8::1"
    PEER_V6 = "2001:db8::2"

    def __init__(self, pid=None):
        pid = pid or os.getpid()
        self.mon = f"{NS_PREFIX}mon-{pid}"
        self.peer = f"{NS_PREFIX}peer-{pid}"
        # Interface names live inside the private namespaces; keep them <= 15 chars anyway.
        self.mon_if = f"emtm{pid}"[:15]
        self.peer_if = f"emtp{pid}"[:15]

    def setup(self):
        for ns in (self.mon, self.peer):
            run(["ip", "netns", "add", ns])
            CLEANUP.push(f"delete netns {ns}",
                         lambda ns=ns: run(["ip", "netns", "del", ns], check=False))
        run(ns_cmd(self.mon, ["ip", "link", "add", self.mon_if, "type", "veth", "peer", "name",
                              self.peer_if, "netns", f"{NETNS_DIR}/{self.peer}"]))
        for ns, ifn, v4, v6 in ((self.mon, self.mon_if, self.MON_V4, self.MON_V6),
                                (self.peer, self.peer_if, self.PEER_V4, self.PEER_V6)):
            run(ns_cmd(ns, ["ip", "link", "set", "lo", "up"]))
            run(ns_cmd(ns, ["ip", "addr", "add", f"{v4}/24", "dev", ifn]))
            run(ns_cmd(ns, ["ip", "-6", "addr", "add", f"{v6}/64", "dev", ifn, "nodad"]))
            run(ns_cmd(ns, ["ip", "link", "set", ifn, "up"]))
        # Baseline: both families reach the other side before any BPF is loaded.
        for dst, v6 in ((self.MON_V4, False), (self.MON_V6, True)):
            if not wait_ping_ok(self.peer, dst, v6=v6, timeout=10):
                raise AssertionError(f"baseline ping {self.peer} -> {dst} failed without BPF")

    def in_mon(self, cmd):
        return ns_cmd(self.mon, cmd)

    def in_peer(self, cmd):
        return ns_cmd(self.peer, cmd)

    def link_details(self):
        """`ip -d link show` of the monitored veth, as text."""
        return run(self.in_mon(["ip", "-d", "link", "show", "dev", self.mon_if])).stdout

    def xdp_in_link_details(self):
        """The XDP tokens that `ip -d link show` prints for the veth (empty: none)."""
        return re.findall(r"\bxdp(?:generic|drv|offload|multi)?\b|prog/xdp", self.link_details())

    def bpftool_net_xdp(self, bpftool):
        """bpftool net show dev <veth> in the monitor namespace: the list of XDP entries."""
        r = run(self.in_mon([bpftool, "-j", "net", "show", "dev", self.mon_if]))
        data = json.loads(r.stdout or "[]")
        out = []
        for item in data if isinstance(data, list) else [data]:
            out.extend(item.get("xdp", []) or [])
        return out


def ping(ns, dst, count=3, wait=1, interval=0.2, v6=False, src=None):
    """Number of echo replies received by `ping` run in ns (from address src when given)."""
    cmd = ["ping", "-6" if v6 else "-4", "-n", "-q", "-c", str(count), "-W", str(wait),
           "-i", str(interval)] + (["-I", src] if src else []) + [dst]
    r = run(ns_cmd(ns, cmd), check=False, timeout=count * (interval + wait) + 10)
    m = re.search(r"(\d+) (?:packets )?received", r.stdout)
    if not m:
        raise AssertionError(f"cannot parse ping output: {r.stdout!r} {r.stderr!r}")
    n = int(m.group(1))
    vlog(f"ping {ns}{' from ' + src if src else ''} -> {dst}: {n}/{count} replies")
    return n


def wait_ping_ok(ns, dst, v6=False, timeout=5):
    """True once a single ping gets a reply (neighbour resolution may cost the first ones)."""
    return bool(wait_until(lambda: ping(ns, dst, count=1, wait=1, v6=v6) == 1, timeout, 0.1))


HELPER = os.path.abspath(__file__)


def start_tcp_server(ns, port):
    """A dual-stack TCP server on [::]:port inside ns that accepts and closes connections."""
    srv = Background(ns_cmd(ns, [sys.executable, HELPER, "serve", str(port)]), f"tcp-server:{port}")
    if not srv.wait_line(r"^listening", 10, stream="out"):
        raise AssertionError(f"TCP server in {ns} did not start: {srv.output()}")
    return srv


def tcp_connect(ns, host, port, timeout=2.0, src=None):
    """'connected', 'timeout', 'refused', 'unreachable' or 'error ...' for a connect from ns
    (from address src when given)."""
    r = run(ns_cmd(ns, [sys.executable, HELPER, "connect", host, str(port), str(timeout)] +
                   ([src] if src else [])), check=False, timeout=timeout + 15)
    res = (r.stdout.strip() or f"error rc={r.returncode} {r.stderr.strip()}").splitlines()[-1]
    vlog(f"connect {ns}{' from ' + src if src else ''} -> [{host}]:{port}: {res}")
    return res


def wait_connect_ok(ns, host, port, timeout=5):
    return bool(wait_until(lambda: tcp_connect(ns, host, port, 1.0) == "connected", timeout, 0.1))


SYS_BPF = 321  # x86_64
BPF_OBJ_GET = 7  # enum bpf_cmd
BPF_F_RDONLY = 1 << 3


def bpf_obj_get(path, flags=0):
    """A file descriptor of the BPF object pinned at path (bpf(2) BPF_OBJ_GET, union bpf_attr's
    pathname, bpf_fd, file_flags: 0 read-write, BPF_F_RDONLY), or -errno."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    name = ctypes.create_string_buffer(os.fsencode(path))
    attr = ctypes.create_string_buffer(struct.pack("<QII", ctypes.addressof(name), 0, flags),
                                       128)
    fd = libc.syscall(SYS_BPF, BPF_OBJ_GET, attr, ctypes.c_uint(128))
    return fd if fd >= 0 else -ctypes.get_errno()


def _die_with_parent():
    """prctl(PR_SET_PDEATHSIG, SIGKILL): a helper never outlives a test killed by SIGKILL."""
    try:
        import ctypes

        ppid = os.getppid()
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != ppid:
            sys.exit(1)
    except (OSError, AttributeError):
        pass


def _serve(port):
    _die_with_parent()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(128)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        c.close()


def _connect(host, port, timeout, src=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        s.connect((host, port))
        print("connected")
        return 0
    except (socket.timeout, TimeoutError):
        print("timeout")
        return 3
    except ConnectionRefusedError:
        print("refused")
        return 4
    except OSError as e:
        if e.errno in (113, 101):  # EHOSTUNREACH, ENETUNREACH
            print("unreachable")
            return 5
        print(f"error {e}")
        return 6
    finally:
        s.close()


# ---------------------------------------------------------------------------------------
# Addresses and map values (common/ebpfmon_abi.h, little-endian)
# ---------------------------------------------------------------------------------------


def addr_key(ip):
    """16-byte struct ebpfmon_addr: IPv6 as is, IPv4 as ::ffff:a.b.c.d."""
    a = ipaddress.ip_address(ip)
    if a.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + a.packed
    return a.packed


BAN_FMT = "<QQQII"  # expires_ns, drops, would_drops, reason, flags
STATS_FMT = "<8Q"
STATS_FIELDS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "syns", "first_seen_ns",
                "last_seen_ns", "ban_note")


# struct ebpfmon_counters, in its order (counters[0], per CPU; u64 each)
COUNTERS_FIELDS = ("rx_seen", "rx_passed", "rx_drop_ban", "rx_drop_net", "rx_drop_url",
                   "rx_allowed", "rx_not_ip", "rx_parse_err", "url_hits", "tx_seen",
                   "conn_opened", "conn_table_full", "events", "ringbuf_drops", "io_events",
                   "io_table_full", "rx_drop_unseen", "rx_would_drop", "url_lines",
                   "url_hits_over", "url_split", "url_unverified", "url_scan_cut",
                   "http_flows_full", "url_partial", "url_urgent", "stream_socks",
                   "stream_socks_full", "stream_chunks", "stream_lines", "stream_split",
                   "stream_url_hits", "stream_drop_url", "stream_overlap", "stream_state_full",
                   "stream_nested", "url_to_stream")


def ban_value(expires_ns=0, reason=0, drops=0, flags=0, would_drops=0):
    return struct.pack(BAN_FMT, expires_ns, drops, would_drops, reason, flags)


def decode_ban(raw):
    e, d, w, r, f = struct.unpack(BAN_FMT, raw)
    return {"expires_ns": e, "drops": d, "would_drops": w, "reason": r, "flags": f}


def db_query(db, sql, *params):
    """Rows (dicts) of a query on the SQLite file db, read-only; [] while it does not exist."""
    if not db or not os.path.exists(db):
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def boottime_ns():
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


# ---------------------------------------------------------------------------------------
# bpftool
# ---------------------------------------------------------------------------------------


def _hexargs(b):
    return ["hex"] + [f"{x:02x}" for x in b]


def _raw(arr):
    return bytes(int(x, 16) if isinstance(x, str) else int(x) for x in arr)


class Bpftool:
    def __init__(self, path="bpftool"):
        self.path = path

    def cmd(self, *args, check=True):
        return run([self.path] + list(args), check=check)

    def json(self, *args, check=True):
        r = self.cmd("-j", *args, check=check)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout) if r.stdout.strip() else None

    def map_lookup_raw(self, pinned, key):
        """Raw value bytes (bytes, or list of per-CPU bytes), None when there is no entry."""
        r = self.cmd("-j", "map", "lookup", "pinned", pinned, "key", *_hexargs(key), check=False)
        if r.returncode != 0:
            err = r.stderr + r.stdout
            if re.search(r"No such file|not found|ENOENT", err, re.I) or r.stdout.strip() == "null":
                return None
            raise AssertionError(f"bpftool map lookup {pinned} failed: {err.strip()}")
        entry = json.loads(r.stdout)
        if entry is None:
            return None
        if "values" in entry:
            return [_raw(v["value"]) for v in entry["values"]]
        return _raw(entry["value"])

    def map_update(self, pinned, key, value, flags="any"):
        self.cmd("map", "update", "pinned", pinned, "key", *_hexargs(key), "value",
                 *_hexargs(value), flags)

    def ban_gen_bump(self, settings_pinned):
        """settings[0].ban_gen + 1 (struct ebpfmon_settings, bytes 32..35): what the analyzer
        does after writing a ban, so that XDP looks every tracked address up in bans again at
        its next packet instead of within 1 s (docs/operations.md)."""
        raw = bytearray(self.map_lookup_raw(settings_pinned, bytes(4)))
        assert len(raw) >= 36, f"settings[0] is {len(raw)} bytes: no ban_gen"
        gen = (struct.unpack_from("<I", raw, 32)[0] + 1) & 0xffffffff
        struct.pack_into("<I", raw, 32, gen)
        self.map_update(settings_pinned, bytes(4), bytes(raw))

    def map_delete(self, pinned, key, missing_ok=True):
        r = self.cmd("map", "delete", "pinned", pinned, "key", *_hexargs(key), check=False)
        if r.returncode != 0 and not missing_ok:
            raise AssertionError(f"bpftool map delete {pinned} failed: {r.stderr.strip()}")
        return r.returncode == 0

    def ban_get(self, pinned, ip):
        raw = self.map_lookup_raw(pinned, addr_key(ip))
        return None if raw is None else decode_ban(raw)

    def ip_stats_get(self, pinned, ip):
        """Per-CPU struct ebpfmon_ip_stats of ip summed over the CPUs, or all zeros."""
        raw = self.map_lookup_raw(pinned, addr_key(ip))
        tot = dict.fromkeys(STATS_FIELDS, 0)
        if raw is None:
            return tot
        for cpu in raw if isinstance(raw, list) else [raw]:
            for k, v in zip(STATS_FIELDS, struct.unpack(STATS_FMT, cpu)):
                if k == "first_seen_ns":
                    if v and (not tot[k] or v < tot[k]):
                        tot[k] = v
                elif k in ("last_seen_ns", "ban_note"):
                    tot[k] = max(tot[k], v)
                else:
                    tot[k] += v
        return tot

    def counters(self, pinned):
        """counters[0] (struct ebpfmon_counters) summed over the CPUs, as a dict. A value
        shorter than the struct (an older ABI) leaves the missing fields at 0."""
        raw = self.map_lookup_raw(pinned, bytes(4))
        tot = dict.fromkeys(COUNTERS_FIELDS, 0)
        for cpu in [] if raw is None else raw if isinstance(raw, list) else [raw]:
            n = min(len(cpu) // 8, len(COUNTERS_FIELDS))
            for k, v in zip(COUNTERS_FIELDS, struct.unpack_from(f"<{n}Q", cpu)):
                tot[k] += v
        return tot

    def obj_id(self, kind, pinned):
        """id of the prog/link pinned at a path, or None."""
        d = self.json(kind, "show", "pinned", pinned, check=False)
        return d.get("id") if isinstance(d, dict) else None

    def ids(self, kind):
        d = self.json(kind, "show") or []
        return {x["id"]: x for x in d}


# ---------------------------------------------------------------------------------------
# Pins and stale state
# ---------------------------------------------------------------------------------------


def make_api_dir(path):
    """A folder for an analyzer's API socket: user ebpfmon, mode 0750 (removed at the end).
    Returns path."""
    os.makedirs(path, exist_ok=True)
    os.chown(path, pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid)
    os.chmod(path, 0o750)
    CLEANUP.push(f"remove {path}", lambda: shutil.rmtree(path, True))
    return path


def stat_owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def remove_pin_root(path):
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)
        if os.path.lexists(path):
            run(["rm", "-rf", path], check=False)


def unload_and_remove(loader, pin_root, ns=None):
    """Last-resort cleanup of a pin root: the loader's --unload first, then rm -rf."""
    if not os.path.lexists(pin_root):
        return
    cmd = [loader, "--unload", "--pin-root", pin_root]
    if ns and os.path.exists(f"{NETNS_DIR}/{ns}"):
        cmd = ns_cmd(ns, cmd)
    if loader and os.access(loader, os.X_OK):
        r = run(cmd, check=False, timeout=30)
        if r.returncode != 0:
            log(f"cleanup: {loader} --unload --pin-root {pin_root}: rc={r.returncode} "
                f"{r.stderr.strip()}")
    if os.path.lexists(pin_root):
        log(f"cleanup: {pin_root} still there after --unload: rm -rf")
        remove_pin_root(pin_root)


def reap_stale(loader):
    """Remove what an earlier run of this test left behind when it was killed (SIGKILL):
    only names of our own pattern whose owning test pid no longer exists."""
    stale_pids = set()
    if os.path.isdir(NETNS_DIR):
        for name in os.listdir(NETNS_DIR):
            m = re.fullmatch(re.escape(NS_PREFIX) + r"(?:mon|peer|other)-(\d+)", name)
            if m and not pid_alive(int(m.group(1))):
                stale_pids.add(int(m.group(1)))
    for name in os.listdir(BPFFS):
        m = re.fullmatch(re.escape(PIN_PREFIX) + r"(\d+)(?:-.*)?", name)
        if m and not pid_alive(int(m.group(1))):
            stale_pids.add(int(m.group(1)))
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        m = re.fullmatch(r"ebpfmon-it-(\d+)-\w+", name)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    for pid in sorted(stale_pids):
        log(f"removing leftovers of an earlier test run (pid {pid})")
        root = f"{BPFFS}/{PIN_PREFIX}{pid}"
        # Loaders still running on that root: killed by pid, matched on their exact argv.
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0].decode(errors="replace")) == "ebpfmon-loader" \
                    and root.encode() in argv:
                log(f"  killing stale loader pid {p}")
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
        for name in os.listdir(BPFFS):
            if re.fullmatch(re.escape(PIN_PREFIX) + str(pid) + r"(?:-.*)?", name):
                unload_and_remove(loader, f"{BPFFS}/{name}")
        for ns in (f"{NS_PREFIX}mon-{pid}", f"{NS_PREFIX}peer-{pid}", f"{NS_PREFIX}other-{pid}"):
            if os.path.exists(f"{NETNS_DIR}/{ns}"):
                run(["ip", "netns", "del", ns], check=False)


# ---------------------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------------------


class NotifySocket:
    """An AF_UNIX SOCK_DGRAM socket standing in for systemd's NOTIFY_SOCKET.

    A thread drains it all the time (sd_notify blocks when the receive queue is full).
    Every datagram is also kept as it came, with its arrival time (`raw`): a daemon whose
    stderr is a socket connected here puts its log lines in the same queue, in the order it
    wrote them and sent its notifications."""

    def __init__(self, path):
        self.path = path
        self.messages = []  # list of dicts (one per datagram)
        self.raw = []  # (time.monotonic() of arrival, text), one per datagram
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if os.path.lexists(path):
            os.unlink(path)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # the loader sends after it dropped to the ebpfmon user
        self.sock.settimeout(0.1)
        self._stop = False
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()

    def _reader(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            text = data.decode(errors="replace")
            msg = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, _, v = line.partition("=")
                    msg[k] = v
            vlog(f"sd_notify: {msg}")
            with self._lock:
                self.messages.append(msg)
                self.raw.append((t, text))

    def seen(self, key, value=None):
        with self._lock:
            for m in self.messages:
                if key in m and (value is None or m[key] == value):
                    return m[key]
        return None

    def datagrams(self, regex=None):
        """(arrival time, text) of the datagrams so far (those matching regex when given)."""
        rx = re.compile(regex) if regex else None
        with self._lock:
            return [(t, x) for t, x in self.raw if rx is None or rx.search(x)]

    def close(self):
        self._stop = True
        self._t.join(1)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Loader(Background):
    """ebpfmon-loader run inside the monitor namespace via nsenter (which execs it: the pid
    we spawn becomes the loader's pid)."""

    _n = 0

    def __init__(self, loader, ns, args, tmpdir):
        Loader._n += 1
        self.notify = NotifySocket(os.path.join(tmpdir, f"notify-{Loader._n}.sock"))
        CLEANUP.push("close notify socket", self.notify.close)  # after the loader is gone
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        super().__init__(ns_cmd(ns, [loader] + list(args)), f"loader#{Loader._n}", env=env)

    def wait_ready(self, timeout=20):
        """Wait for READY=1 on the notify socket; AssertionError (with stderr) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.notify.seen("READY", "1"):
                return True
            if not self.running():
                self.wait(2)
                raise AssertionError(
                    f"loader exited with status {self.proc.returncode} before READY=1; "
                    f"stderr:\n{self.output('err')}")
            time.sleep(0.05)
        raise AssertionError(f"no READY=1 on NOTIFY_SOCKET within {timeout} s; stderr:\n"
                             f"{self.output('err')}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        self.signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            raise AssertionError(f"loader pid {self.pid} still running {timeout} s after signal "
                                 f"{sig}; stderr:\n{self.output('err')}")
        return rc

    def tail(self, n=25):
        return "\n".join(self.output("err").splitlines()[-n:])


# ---------------------------------------------------------------------------------------
# The runner of a test file
# ---------------------------------------------------------------------------------------


def test_registry():
    """(tests, test): @test("title") on a function fn(ctx) appends (name, title, fn) to the
    list tests, in the order of the file."""
    tests = []

    def test(title):
        def deco(fn):
            tests.append((fn.__name__, title, fn))
            return fn

        return deco

    return tests, test


def main(description, tests, make_ctx, *, programs, tools, options=(), setup_what,
         before_test=None, on_fail=None, after_test=None):
    """The command line of a test file: parse the arguments, check the prerequisites, run the
    selected tests (--only) one after the other on one context, clean up, print
    "N passed, N failed". Returns the exit status: 0 all passed, 1 a test failed.

    description: the --help text; tests: (name, title, fn) of every test, fn(ctx) raising on
    failure; make_ctx(args): the context (its setup() runs first, a failure there fails every
    test); programs: (name, help) of the required --NAME executables, --loader first; tools:
    what must be in PATH besides --bpftool; options: (flags, kwargs) of options of the file's
    own, added after --only; setup_what: what setup() sets up, for its failure message;
    before_test(ctx) and on_fail(ctx): called before a test and after a failed one;
    after_test: (what, fn) with fn(ctx) run after every test, its failure logged as what."""
    ap = argparse.ArgumentParser(description=description)
    for name, help_text in programs:
        ap.add_argument(f"--{name}", required=True, help=help_text)
    ap.add_argument("--bpftool", default=shutil.which("bpftool") or "/usr/sbin/bpftool")
    ap.add_argument("--only", "-k", action="append", default=[],
                    help="run only tests whose function name contains this (repeatable)")
    for flags, kwargs in options:
        ap.add_argument(*flags, **kwargs)
    ap.add_argument("-v", "--verbose", action="store_true", help="log every command")
    args = ap.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    install_signal_handlers()

    msg = check_prerequisites(list(tools) + [args.bpftool])
    if msg:
        skip(msg)
    for name, _ in programs:
        path = getattr(args, name)
        if not os.access(path, os.X_OK):
            print(f"FAILED: {name} {path} is not an executable file", flush=True)
            return 1
    reap_stale(os.path.abspath(args.loader))

    tests = [t for t in tests if not args.only or any(o in t[0] for o in args.only)]
    passed, failed = [], []
    start = time.monotonic()
    try:
        ctx = make_ctx(args)
        try:
            ctx.setup()
        except Exception:  # noqa: BLE001
            log(f"FAILED: setting up {setup_what}:\n" + traceback.format_exc())
            failed = [t[0] for t in tests]
            tests = []
        for name, title, fn in tests:
            log(f"=== {name}: {title}")
            t = time.monotonic()
            if before_test:
                before_test(ctx)
            try:
                fn(ctx)
                passed.append(name)
                log(f"--- PASS {name} ({time.monotonic() - t:.1f}s)")
            except Exception as e:  # noqa: BLE001
                failed.append(name)
                tb = traceback.extract_tb(e.__traceback__)
                here = os.path.basename(fn.__code__.co_filename)
                where = next((f"{f.filename.split('/')[-1]}:{f.lineno}" for f in reversed(tb)
                              if f.filename.endswith(here)), "?")
                log(f"--- FAIL {name} ({time.monotonic() - t:.1f}s) at {where}: "
                    f"{type(e).__name__}: {e}")
                if not isinstance(e, AssertionError):
                    log(traceback.format_exc())
                if on_fail:
                    on_fail(ctx)
            finally:
                if after_test:
                    what, after = after_test
                    try:
                        after(ctx)
                    except Exception as e:  # noqa: BLE001
                        log(f"    {what}: {e}")
    finally:
        CLEANUP.run()
    log(f"runtime {time.monotonic() - start:.1f}s")
    if failed:
        log("failed: " + ", ".join(failed))
    print(f"{len(passed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        _serve(int(sys.argv[2]))
    elif len(sys.argv) in (5, 6) and sys.argv[1] == "connect":
        sys.exit(_connect(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                          sys.argv[5] if len(sys.argv) == 6 else None))
    else:
        print("usage: nstest.py serve PORT | connect HOST PORT TIMEOUT [SRC]", file=sys.stderr)
        sys.exit(2)
