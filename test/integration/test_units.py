#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""The systemd units' settings suffice: each unit's ExecStart runs as the unit would run it.

    test_units.py --loader build/loader/ebpfmon-loader --analyzer build/analyzer/ebpfmon-analyzer \
        --ctl build/ctl/ebpfmonctl --units packaging/systemd [--only NAME] [-v]

PID 1 need not be systemd: the settings are read from the unit files and applied by hand, in
the order systemd applies them, to the unit's own ExecStart (the programs of this build, the
configuration replaced by a private one: the veth of a test namespace, a private pin root under
/sys/fs/bpf, private runtime and state folders):

  * in a mount namespace of its own (unshare): ProtectSystem=strict (every mount read-only but
    /dev and /proc), ReadWritePaths=, RuntimeDirectory= and StateDirectory= (private folders,
    writable, owned and moded as the unit says), ProtectKernelTunables= (/sys and /proc/sys
    read-only), ProtectHome= and PrivateTmp= (empty file systems), ProtectProc= and
    ProcSubset= (a proc instance with hidepid= and subset=); LimitMEMLOCK=, UMask=;
  * setpriv: User=, Group=, the user's groups and SupplementaryGroups=,
    CapabilityBoundingSet=, AmbientCapabilities= (the inheritable set emptied),
    NoNewPrivileges=;
  * then, unprivileged: MemoryDenyWriteExecute= (prctl PR_SET_MDWE), SystemCallFilter= with
    SystemCallErrorNumber= and SystemCallArchitectures=native (libseccomp, the groups as
    `systemd-analyze syscall-filter` lists them), RestrictAddressFamilies= (socket() refused
    with EAFNOSUPPORT), Environment= and what systemd sets (NOTIFY_SOCKET, WATCHDOG_USEC,
    RUNTIME_DIRECTORY, STATE_DIRECTORY, HOME, USER...), and exec.

Not applied: PrivateDevices=, the namespace, realtime, personality and SUID/SGID
restrictions, IPAddressDeny=, cgroup settings. The watchdog interval is shortened to 2 s so that
the pings show within the test.

The tests: the exposure of `systemd-analyze security --offline=true` (loader <= 1.9,
analyzer <= 1.9); the loader without each capability of its bounding set fails before READY,
names the capability, and leaves nothing attached; the loader reaches READY, attaches XDP and
ends unprivileged; the analyzer opens the pins, serves the API (a ban through ebpfmonctl is a
dropped packet) and reloads on SIGHUP; a crashed loader leaves the programs attached and the
next start under the unit takes them over.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import ctypes
import errno
import grp
import json
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import (BPFFS, CLEANUP, PIN_PREFIX, Background, Bpftool, NotifySocket,  # noqa: E402
                    Topology, log, proc_status, run, tcp_connect, unload_and_remove,
                    wait_connect_ok, wait_until)

THIS = os.path.abspath(__file__)
# The stages that run inside the sandbox need python3-seccomp, which Debian installs for
# /usr/bin/python3 (not for another python3 that may come first in PATH).
SYS_PYTHON = "/usr/bin/python3"
EXPOSURE_MAX = {"ebpfmon-loader.service": 1.9, "ebpfmon-analyzer.service": 1.9}
WATCHDOG_TEST_USEC = 2_000_000
HTTP_PORT = 8080
# Paths of the installed system that the units name, and their private stand-ins (set in Ctx).
CONF_PATH = "/etc/ebpfmon/ebpfmon.conf"
CAP_NAMES = {"CAP_" + n.upper(): n for n in (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap "
    "linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner "
    "sys_module sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice "
    "sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap "
    "mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf "
    "checkpoint_restore").split()}

# ---------------------------------------------------------------------------------------
# Unit files
# ---------------------------------------------------------------------------------------


def parse_unit(path):
    """{section: {key: [value, ...]}}: every assignment in order (an empty one included, which
    resets a list setting); continuation lines joined, comments dropped."""
    out, section, pending = {}, None, ""
    with open(path) as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1]
                out.setdefault(section, {})
                continue
            k, _, v = s.partition("=")
            out[section].setdefault(k.strip(), []).append(v.strip())
    return out


def words(values):
    """The words of a list setting: assignments accumulate, an empty one resets. None when the
    setting is absent."""
    if values is None:
        return None
    acc = []
    for v in values:
        acc = [] if v == "" else acc + v.split()
    return acc


def last(svc, key, default=None):
    v = svc.get(key)
    return v[-1] if v else default


def yes(svc, key):
    return last(svc, key, "no").lower() in ("yes", "true", "on", "1")


def cap_set(tokens):
    """A CapabilityBoundingSet= / AmbientCapabilities= list as a set of capability names (None:
    every capability). A leading ~ inverts it."""
    if tokens is None:
        return None
    if tokens and tokens[0].startswith("~"):
        drop = {tokens[0][1:]} | set(tokens[1:])
        return set(CAP_NAMES) - drop
    return set(tokens)


def syscall_groups():
    """{"@name": [member, ...]} as `systemd-analyze syscall-filter` lists them."""
    r = run(["systemd-analyze", "syscall-filter"], timeout=30)
    groups, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("@"):
            cur = line.strip()
            groups[cur] = []
        elif not line.strip() or not line.startswith(" "):
            cur = None
        elif cur and not line.strip().startswith("#"):
            groups[cur].append(line.strip())
    return groups


def expand(names, groups, seen=None):
    out = set()
    seen = seen if seen is not None else set()
    for n in names:
        n = n.split(":")[0]  # NAME:ERRNO
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            if n not in groups:
                raise AssertionError(f"unknown system call group {n}")
            out |= expand(groups[n], groups, seen)
        else:
            out.add(n)
    return out


def syscall_filter(values, groups):
    """The system calls a SystemCallFilter= list allows (allow-list mode, @default implied),
    or ("deny", set) for a deny list; None when absent."""
    if values is None:
        return None
    mode, allow, deny = None, set(), set()
    for v in values:
        if v == "":
            mode, allow, deny = None, set(), set()
            continue
        inv = v.startswith("~")
        items = (v[1:] if inv else v).split()
        if mode is None:
            mode = "deny" if inv else "allow"
            if mode == "allow":
                allow |= expand(["@default"], groups)
        s = expand(items, groups)
        if mode == "allow":
            allow = allow - s if inv else allow | s
        else:
            deny = deny | s if inv else deny - s
    return ("allow", sorted(allow)) if mode == "allow" else ("deny", sorted(deny))


def exec_start(svc):
    """argv of the unit's ExecStart (its prefixes -@:+! stripped)."""
    v = last(svc, "ExecStart")
    argv = shlex.split(v)
    argv[0] = argv[0].lstrip("-@:+!")
    return argv


def environment(svc):
    env = {}
    for v in svc.get("Environment", []):
        for item in shlex.split(v):
            k, _, val = item.partition("=")
            env[k] = val
    return env


# ---------------------------------------------------------------------------------------
# The plan: everything a unit's process gets, resolved here and applied by the two stages
# ---------------------------------------------------------------------------------------


def make_plan(unit_path, programs, paths, notify, extra_env=None, drop_caps=(), scratch=None):
    """The execution plan of a unit (a dict, written as JSON for the stages).
    programs: {basename: path of this build's program}; paths: {installed path: private path}
    (the configuration, /run/ebpfmon, /var/lib/ebpfmon); notify: NOTIFY_SOCKET path;
    drop_caps: capabilities taken out of the bounding set (the negative tests)."""
    unit = parse_unit(unit_path)
    svc = unit["Service"]
    groups = syscall_groups()

    argv = exec_start(svc)
    prog = programs.get(os.path.basename(argv[0]))
    if not prog:
        raise AssertionError(f"{unit_path}: ExecStart runs {argv[0]}, not a program of this build")
    argv = [prog] + [paths.get(a, a) for a in argv[1:]]

    user = last(svc, "User")
    pw = pwd.getpwnam(user) if user else pwd.getpwuid(0)
    group = last(svc, "Group")
    gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
    supp = [grp.getgrnam(g).gr_gid for g in words(svc.get("SupplementaryGroups")) or []]
    if user:
        supp = sorted(set(os.getgrouplist(pw.pw_name, gid)) | set(supp))

    bounding = cap_set(words(svc.get("CapabilityBoundingSet")))
    if drop_caps:
        bounding = (set(CAP_NAMES) if bounding is None else bounding) - set(drop_caps)
    ambient = cap_set(words(svc.get("AmbientCapabilities"))) or set()

    runtime = [(d, svc.get("RuntimeDirectoryMode", ["0755"])[-1])
               for d in words(svc.get("RuntimeDirectory")) or []]
    state = [(d, svc.get("StateDirectoryMode", ["0755"])[-1])
             for d in words(svc.get("StateDirectory")) or []]
    dirs = []  # (private path, mode, env var)
    for base, lst, var in (("/run", runtime, "RUNTIME_DIRECTORY"),
                           ("/var/lib", state, "STATE_DIRECTORY")):
        for d, mode in lst:
            dirs.append((paths[f"{base}/{d}"], int(mode, 8), var))

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "NOTIFY_SOCKET": notify, "INVOCATION_ID": os.urandom(16).hex()}
    if user:
        env.update(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name, SHELL=pw.pw_shell)
    if last(svc, "WatchdogSec"):
        env["WATCHDOG_USEC"] = str(WATCHDOG_TEST_USEC)
    for _, _, var in dirs:
        env[var] = ":".join(p for p, _, v in dirs if v == var)
    env.update(environment(svc))
    env.update(extra_env or {})

    protect_system = last(svc, "ProtectSystem", "no")
    if protect_system not in ("strict", "no"):
        raise AssertionError(f"ProtectSystem={protect_system}: only strict and no are emulated")
    rw = [paths.get(p, p) for p in words(svc.get("ReadWritePaths")) or []]
    seccomp = syscall_filter(svc.get("SystemCallFilter"), groups)
    families = words(svc.get("RestrictAddressFamilies"))
    errno_name = last(svc, "SystemCallErrorNumber")
    nnp = yes(svc, "NoNewPrivileges") or (
        (seccomp or families) and bounding is not None and "CAP_SYS_ADMIN" not in bounding)
    memlock = last(svc, "LimitMEMLOCK")
    return {
        "unit": os.path.basename(unit_path), "argv": argv, "env": env,
        "uid": pw.pw_uid if user else None, "gid": gid if (user or group) else None,
        "groups": supp, "bounding": sorted(bounding) if bounding is not None else None,
        "ambient": sorted(ambient), "nnp": bool(nnp),
        "umask": int(last(svc, "UMask", "0022"), 8),
        "memlock": memlock, "dirs": [(p, m) for p, m, _ in dirs],
        "protect_system": protect_system, "rw": rw,
        "protect_home": yes(svc, "ProtectHome"), "private_tmp": yes(svc, "PrivateTmp"),
        "protect_tunables": yes(svc, "ProtectKernelTunables"),
        "protect_proc": last(svc, "ProtectProc", "default"),
        "proc_subset": last(svc, "ProcSubset", "all"),
        "mdwe": yes(svc, "MemoryDenyWriteExecute"),
        "seccomp": seccomp, "errno": getattr(errno, errno_name) if errno_name else None,
        "native": last(svc, "SystemCallArchitectures") == "native",
        "families": families, "scratch": scratch,
    }


# ---------------------------------------------------------------------------------------
# Stage 1 (root, in a new mount namespace): the file system, limits, umask; then setpriv
# ---------------------------------------------------------------------------------------

MOUNT_ATTR_RDONLY = 0x1
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # x86_64 and the generic table alike


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def set_readonly(path, ro, recursive=True):
    """mount_setattr(2): the mount at path (and the mounts below) read-only or writable."""
    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                    ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

    attr = MountAttr(MOUNT_ATTR_RDONLY if ro else 0, 0 if ro else MOUNT_ATTR_RDONLY, 0, 0)
    libc = _libc()
    r = libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(-100),
                     ctypes.c_char_p(path.encode()),
                     ctypes.c_uint(AT_RECURSIVE if recursive else 0), ctypes.byref(attr),
                     ctypes.c_size_t(ctypes.sizeof(attr)))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount_setattr {path}: {os.strerror(e)}")


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise OSError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def bind_writable(path):
    """path becomes a mount of its own, writable (ReadWritePaths=)."""
    sh("mount", "--bind", path, path)
    set_readonly(path, False, recursive=False)


def stage_sandbox(plan_path):
    with open(plan_path) as f:
        p = json.load(f)
    if p["protect_proc"] != "default" or p["proc_subset"] != "all":
        opts = [f"hidepid={p['protect_proc']}"] + (
            [f"subset={p['proc_subset']}"] if p["proc_subset"] != "all" else [])
        sh("mount", "-t", "proc", "-o", ",".join(["nosuid", "nodev", "noexec"] + opts),
           "proc", "/proc")
    if p["protect_system"] == "strict":
        set_readonly("/", True)
        set_readonly("/dev", False)
        set_readonly("/proc", False)
        if not p["protect_tunables"]:
            set_readonly("/sys", False)
    if p["protect_tunables"] and os.path.isdir("/proc/sys"):
        sh("mount", "--bind", "/proc/sys", "/proc/sys")
        set_readonly("/proc/sys", True)
    if p["protect_home"]:
        for d in ("/home", "/root", "/run/user"):
            if os.path.isdir(d):
                sh("mount", "-t", "tmpfs", "-o", "ro,mode=0000,size=4k", "tmpfs", d)
    if p["private_tmp"]:
        for d in ("/tmp", "/var/tmp"):
            sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", d)
    for d, _ in p["dirs"]:
        bind_writable(d)
    for d in p["rw"]:
        bind_writable(d)
    if p["memlock"]:
        v = resource.RLIM_INFINITY if p["memlock"] == "infinity" else int(p["memlock"])
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (v, v))
        except ValueError:  # this test runs without CAP_SYS_RESOURCE
            print(f"test_units: LimitMEMLOCK={p['memlock']} not applied (no CAP_SYS_RESOURCE "
                  "here)", file=sys.stderr, flush=True)
    os.umask(p["umask"])

    cmd = ["setpriv"]
    if p["uid"] is not None:
        cmd += ["--reuid", str(p["uid"])]
    if p["gid"] is not None:
        cmd += ["--regid", str(p["gid"])]
    cmd += ["--groups", ",".join(map(str, p["groups"]))] if p["groups"] else ["--clear-groups"]
    cmd += ["--inh-caps=-all", "--ambient-caps=-all"]
    if p["bounding"] is not None:
        cmd += ["--bounding-set=" + ",".join(
            ["-all"] + ["+" + CAP_NAMES[c] for c in p["bounding"]])]
    if p["ambient"]:
        cmd += ["--inh-caps=" + ",".join("+" + CAP_NAMES[c] for c in p["ambient"]),
                "--ambient-caps=" + ",".join("+" + CAP_NAMES[c] for c in p["ambient"])]
    if p["nnp"]:
        cmd.append("--no-new-privs")
    cmd += ["--", SYS_PYTHON, THIS, "confine", plan_path]
    os.execvp(cmd[0], cmd)


# ---------------------------------------------------------------------------------------
# Stage 2 (the unit's user and capabilities): MDWE, seccomp, environment; then the program
# ---------------------------------------------------------------------------------------

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
AF_MAX = 46


def stage_confine(plan_path):
    import seccomp  # python3-seccomp

    with open(plan_path) as f:
        p = json.load(f)
    if p["mdwe"]:
        libc = _libc()
        if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
            print(f"test_units: PR_SET_MDWE: {os.strerror(ctypes.get_errno())} "
                  "(MemoryDenyWriteExecute= not applied)", file=sys.stderr, flush=True)
    if p["families"]:
        allowed = {getattr(__import__("socket"), fam) for fam in p["families"]}
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        for fam in range(AF_MAX):
            if fam not in allowed:
                f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket",
                           seccomp.Arg(0, seccomp.EQ, fam))
        f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
        f.load()
    # the system call filter last: it need not allow seccomp() itself
    if p["seccomp"]:
        mode, calls = p["seccomp"]
        refuse = seccomp.ERRNO(p["errno"]) if p["errno"] else seccomp.KILL_PROCESS
        f = seccomp.SyscallFilter(refuse if mode == "allow" else seccomp.ALLOW)
        for c in calls:
            try:
                f.add_rule(seccomp.ALLOW if mode == "allow" else refuse, c)
            except (RuntimeError, ValueError, OSError):
                pass  # not a system call of this architecture
        f.load()
    os.execve(p["argv"][0], p["argv"], p["env"])


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------


class Unit(Background):
    """A unit's ExecStart running in its sandbox, in the monitor namespace."""

    def __init__(self, ctx, unit, name, drop_caps=(), paths=None):
        ctx.n += 1
        self.notify = NotifySocket(os.path.join(ctx.scratch, f"notify-{ctx.n}.sock"))
        CLEANUP.push("close notify socket", self.notify.close)
        plan = make_plan(os.path.join(ctx.units, unit), ctx.programs, paths or ctx.paths,
                         self.notify.path, drop_caps=drop_caps, scratch=ctx.scratch)
        self.plan = plan
        plan_path = os.path.join(ctx.scratch, f"plan-{ctx.n}.json")
        with open(plan_path, "w") as f:
            json.dump(plan, f, indent=1)
        os.chmod(plan_path, 0o644)
        cmd = nstest.ns_cmd(ctx.topo.mon, ["unshare", "--mount", "--propagation", "slave",
                                           SYS_PYTHON, THIS, "sandbox", plan_path])
        super().__init__(cmd, f"{name}#{ctx.n}", env={"PATH": os.environ.get("PATH", "")})

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.notify.seen("READY", "1"):
                return
            if not self.running():
                self.wait(2)
                raise AssertionError(f"{self.name} exited with status {self.proc.returncode} "
                                     f"before READY=1:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no READY=1 within {timeout} s:\n{self.output()}")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            raise AssertionError(f"{self.name} still running {timeout} s after signal {sig}")
        return rc


class Ctx:
    def __init__(self, args):
        self.bpftool = Bpftool(args.bpftool)
        self.ctl = os.path.abspath(args.ctl)
        self.units = os.path.abspath(args.units)
        self.programs = {os.path.basename(p): os.path.abspath(p)
                         for p in (args.loader, args.analyzer)}
        self.loader_path = os.path.abspath(args.loader)
        self.topo = Topology()
        self.pin_root = f"{BPFFS}/{PIN_PREFIX}{os.getpid()}"
        self.n = 0
        self.loader = self.analyzer = None
        # Not under /tmp: PrivateTmp= hides it from the units. Under /run, which they see
        # read-only; the runtime and state folders in it are made writable for them.
        self.scratch = tempfile.mkdtemp(prefix=f"ebpfmon-it-{os.getpid()}-", dir="/run")
        CLEANUP.push(f"remove {self.scratch}", lambda: shutil.rmtree(self.scratch, True))
        os.chmod(self.scratch, 0o755)
        # The stages run as the units' users, which must reach this build's files also when
        # the checkout sits in a folder only root may enter (a clone in a 0700 temporary
        # folder): they run copies made here.
        global THIS
        bindir = os.path.join(self.scratch, "bin")
        os.mkdir(bindir)
        os.chmod(bindir, 0o755)
        for src in (args.loader, args.analyzer, args.ctl, THIS,
                    os.path.join(os.path.dirname(THIS), "nstest.py")):
            dst = os.path.join(bindir, os.path.basename(src))
            shutil.copy(src, dst)
            os.chmod(dst, 0o755)
        THIS = os.path.join(bindir, os.path.basename(THIS))
        self.programs = {os.path.basename(p): os.path.join(bindir, os.path.basename(p))
                         for p in (args.loader, args.analyzer)}
        self.ctl = os.path.join(bindir, os.path.basename(args.ctl))
        self.runtime = os.path.join(self.scratch, "run-ebpfmon")
        self.state = os.path.join(self.scratch, "lib-ebpfmon")
        pw = pwd.getpwnam(nstest.USER)
        for d in (self.runtime, self.state):
            os.mkdir(d)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o750)
        self.conf = self.write_conf("ebpfmon.conf", self.pin_root)
        self.paths = {CONF_PATH: self.conf, "/run/ebpfmon": self.runtime,
                      "/var/lib/ebpfmon": self.state}

    def write_conf(self, name, pin_root):
        path = os.path.join(self.scratch, name)
        with open(path, "w") as f:
            f.write(f"""\
# written by test_units.py
[network]
interfaces = {self.topo.mon_if}
[loader]
pin_root = {pin_root}
[api]
uds_socket_path = {self.runtime}/api.sock
[database]
sqlite_path = {self.state}/ebpfmon.db
""")
        os.chmod(path, 0o644)
        return path

    def setup(self):
        for root in (self.pin_root, self.pin_root + "-neg"):
            if os.path.lexists(root):
                raise AssertionError(f"{root} exists already")
            CLEANUP.push(f"unload {root}", lambda root=root: unload_and_remove(
                self.loader_path, root, self.topo.mon))
        self.topo.setup()

    def links(self, root=None):
        d = os.path.join(root or self.pin_root, "links")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def xdp(self):
        return self.topo.bpftool_net_xdp(self.bpftool.path)

    def start_loader(self):
        self.loader = Unit(self, "ebpfmon-loader.service", "loader")
        self.loader.wait_ready()
        return self.loader

    def ctl_run(self, *args, check=True):
        return run([self.ctl, "-s", os.path.join(self.runtime, "api.sock")] + list(args),
                   check=check)


def units_exist(ctx):
    for u in EXPOSURE_MAX:
        if not os.path.isfile(os.path.join(ctx.units, u)):
            raise AssertionError(f"{ctx.units}/{u} is missing")


tests, test = nstest.test_registry()


@test("systemd-analyze security --offline=true: the exposure of each unit stays at its level")
def test_exposure(ctx):
    units_exist(ctx)
    if shutil.which("systemd-analyze") is None:
        log("systemd-analyze is not installed: exposure not checked")
        return
    for unit, limit in EXPOSURE_MAX.items():
        r = run(["systemd-analyze", "security", "--offline=true", os.path.join(ctx.units, unit)],
                check=False)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
        assert m, f"no exposure level for {unit}: {r.stdout[-500:]} {r.stderr}"
        level = float(m.group(1))
        log(f"{unit}: exposure {level} (at most {limit})")
        assert level <= limit, f"{unit}: exposure {level} > {limit}:\n" + "\n".join(
            ln for ln in r.stdout.splitlines() if ln.startswith("✗"))


@test("each capability of the loader's bounding set is needed: without it, no READY and a "
      "message that names it, and nothing left attached")
def test_each_capability_needed(ctx):
    neg_root = ctx.pin_root + "-neg"
    paths = dict(ctx.paths, **{CONF_PATH: ctx.write_conf("neg.conf", neg_root)})
    bounding = cap_set(words(parse_unit(os.path.join(ctx.units, "ebpfmon-loader.service"))
                             ["Service"].get("CapabilityBoundingSet")))
    assert bounding, "the loader's unit sets no CapabilityBoundingSet="
    for cap in sorted(bounding):
        u = Unit(ctx, "ebpfmon-loader.service", f"loader-no-{cap}", drop_caps=[cap], paths=paths)
        rc = u.wait(30)
        assert rc is not None, f"without {cap} the loader still runs:\n{u.output()}"
        assert rc != 0 and not u.notify.seen("READY", "1"), \
            f"without {cap}: status {rc}, READY={u.notify.seen('READY')}:\n{u.output()}"
        err = u.output("err")
        failed = [ln for ln in err.splitlines() if "error:" in ln]
        log(f"without {cap}: status {rc}: {failed[-1] if failed else err[-200:]}")
        assert cap in err, f"without {cap} the loader's messages do not name it:\n{err}"
        assert not ctx.links(neg_root), f"without {cap}: links left: {ctx.links(neg_root)}"
        assert not ctx.xdp(), f"without {cap}: XDP still attached: {ctx.xdp()}"
        unload_and_remove(ctx.loader_path, neg_root, ctx.topo.mon)


@test("the loader under its unit: READY, XDP attached, pins handed over, then no privilege, "
      "watchdog pings")
def test_loader_ready(ctx):
    u = ctx.start_loader()
    status = u.notify.seen("STATUS")
    log(f"loader READY: STATUS={status}")
    assert ctx.xdp(), "READY but no XDP program on the veth"
    assert ctx.links(), "READY but no link pins"
    st = proc_status(u.pid)
    uid = pwd.getpwnam(nstest.USER).pw_uid
    assert st["Uid"].split() == [str(uid)] * 4, f"loader uids {st['Uid']}"
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[k], 16) == 0, f"loader {k}={st[k]}"
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", \
        f"NoNewPrivs={st['NoNewPrivs']} Seccomp={st['Seccomp']}"
    assert wait_until(lambda: u.notify.seen("WATCHDOG", "1"), 5), "no WATCHDOG=1 within 5 s"
    g = grp.getgrnam(nstest.GROUP).gr_gid
    maps = os.path.join(ctx.pin_root, "maps")
    assert os.stat(maps).st_gid == g, "maps/ is not group ebpfmon"


@test("the analyzer under its unit: opens the pins, READY, serves the API (a ban is a dropped "
      "packet), reloads on SIGHUP, no capability")
def test_analyzer_serves(ctx):
    if not ctx.loader or not ctx.loader.running():
        ctx.start_loader()
    srv = nstest.start_tcp_server(ctx.topo.mon, HTTP_PORT)
    assert wait_connect_ok(ctx.topo.peer, Topology.MON_V4, HTTP_PORT), "no baseline connection"
    an = Unit(ctx, "ebpfmon-analyzer.service", "analyzer")
    ctx.analyzer = an
    an.wait_ready()
    st = proc_status(an.pid)
    uid = pwd.getpwnam(nstest.USER).pw_uid
    assert st["Uid"].split() == [str(uid)] * 4, f"analyzer uids {st['Uid']}"
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[k], 16) == 0, f"analyzer {k}={st[k]}"
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", \
        f"NoNewPrivs={st['NoNewPrivs']} Seccomp={st['Seccomp']}"
    sock = os.path.join(ctx.runtime, "api.sock")
    assert os.path.exists(sock), f"no API socket {sock}"
    r = ctx.ctl_run("status")
    log("ebpfmonctl status: " + " | ".join(r.stdout.strip().splitlines()[:3]))
    assert wait_until(lambda: an.notify.seen("WATCHDOG", "1"), 5), "no WATCHDOG=1 within 5 s"

    ctx.ctl_run("ban", Topology.PEER_V4, "--duration", "1h", "--reason", "test_units")
    assert tcp_connect(ctx.topo.peer, Topology.MON_V4, HTTP_PORT, 1.0) == "timeout", \
        "banned through the API, yet the peer still connects"
    ctx.ctl_run("unban", Topology.PEER_V4)
    assert wait_connect_ok(ctx.topo.peer, Topology.MON_V4, HTTP_PORT), "unbanned, still dropped"
    db = os.path.join(ctx.state, "ebpfmon.db")
    rows = nstest.db_query(db, "SELECT reason FROM malicious_ips WHERE address = ?",
                           Topology.PEER_V4)
    assert rows, f"the ban is not in {db}"

    n_before = len(an.output().splitlines())
    an.signal(signal.SIGHUP)  # ExecReload=
    assert an.wait_line(r"reload", 10), f"no reload line after SIGHUP:\n{an.output()}"
    time.sleep(0.5)
    assert an.running(), f"the analyzer died on SIGHUP:\n{an.output()}"
    log("after SIGHUP: " + " | ".join(an.output().splitlines()[n_before:][:2]))
    assert an.stop() == 0, f"analyzer exit status on SIGTERM:\n{an.output()}"
    srv.kill()


@test("a crashed loader leaves the programs attached and bans enforced; the next start under "
      "the unit takes its links over, and SIGTERM detaches them and keeps the maps")
def test_crash_restart(ctx):
    if not ctx.loader or not ctx.loader.running():
        ctx.start_loader()
    srv = nstest.start_tcp_server(ctx.topo.mon, HTTP_PORT)
    peer, mon = Topology.PEER_V4, Topology.MON_V4
    links = ctx.links()
    link_id = {n: ctx.bpftool.obj_id("link", os.path.join(ctx.pin_root, "links", n))
               for n in links}
    bans = os.path.join(ctx.pin_root, "maps", "bans")
    ctx.bpftool.map_update(bans, nstest.addr_key(peer), nstest.ban_value())
    CLEANUP.push("unban the peer", lambda: ctx.bpftool.map_delete(bans, nstest.addr_key(peer)))
    assert tcp_connect(ctx.topo.peer, mon, HTTP_PORT, 1.0) == "timeout", "the ban is not enforced"

    ctx.loader.stop(signal.SIGKILL)
    assert ctx.links() == links, f"links after a crash: {ctx.links()} (were {links})"
    assert ctx.xdp(), "a crashed loader's XDP program is gone"
    assert tcp_connect(ctx.topo.peer, mon, HTTP_PORT, 1.0) == "timeout", \
        "the ban is no longer enforced after the crash"
    owner = os.stat(os.path.join(ctx.pin_root, "links")).st_uid
    log(f"after SIGKILL: {len(links)} links pinned (links/ uid {owner}), the ban enforced")

    u = ctx.start_loader()  # what Restart=on-failure does
    assert ctx.links() == links, f"links after the restart: {ctx.links()} (were {links})"
    for n in links:
        now = ctx.bpftool.obj_id("link", os.path.join(ctx.pin_root, "links", n))
        # XDP and tcx links take the new program in place; tracepoint links are replaced
        # once the new one is attached
        if n.startswith(("xdp-", "egress-")):
            assert now == link_id[n], f"link {n}: id {link_id[n]} replaced by {now}"
    assert tcp_connect(ctx.topo.peer, mon, HTTP_PORT, 1.0) == "timeout", \
        "the ban is not enforced after the restart"
    assert u.stop() == 0, f"loader exit status on SIGTERM:\n{u.output()}"
    assert not ctx.links(), f"links after SIGTERM: {ctx.links()}"
    assert not ctx.xdp(), "XDP still attached after SIGTERM"
    assert ctx.bpftool.ban_get(bans, peer) is not None, "SIGTERM removed the bans"
    assert wait_connect_ok(ctx.topo.peer, mon, HTTP_PORT), "detached, yet the peer is dropped"
    srv.kill()


def reap_scratch():
    """Scratch folders of an earlier run killed by SIGKILL (the rest is nstest.reap_stale's)."""
    for name in os.listdir("/run"):
        m = re.fullmatch(r"ebpfmon-it-(\d+)-\w+", name)
        if m and not nstest.pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join("/run", name), ignore_errors=True)


def prerequisites():
    """None, or what is missing for the sandbox itself."""
    r = subprocess.run([SYS_PYTHON, "-c", "import seccomp"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"{SYS_PYTHON} cannot import seccomp (Debian package python3-seccomp)"
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze not found (Debian package systemd)"
    return None


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "sandbox":
        stage_sandbox(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "confine":
        stage_confine(sys.argv[2])
    if os.geteuid() == 0:
        msg = prerequisites()
        if msg:
            nstest.skip(msg)
        reap_scratch()
    return nstest.main(
        __doc__, tests, Ctx,
        programs=(("loader", "ebpfmon-loader to test"), ("analyzer", "ebpfmon-analyzer to test"),
                  ("ctl", "ebpfmonctl")),
        tools=("ip", "nsenter", "unshare", "setpriv", "mount"),
        options=((("--units",), {"required": True, "help": "folder of the unit files"}),),
        setup_what="the namespaces")


if __name__ == "__main__":
    sys.exit(main())
