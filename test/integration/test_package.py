#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""The .deb: built as the README says, its control data and files, installed into a scratch root.

    test_package.py --source . [--vmlinux-h build/bpf-gen/vmlinux.h] [--only NAME] [-v]

A scratch build folder configured with -DCMAKE_INSTALL_PREFIX=/usr builds the three programs
(the BPF object from --vmlinux-h when given, which saves generating it again) and
`cpack -G DEB` packs them. The package is checked with `dpkg-deb --info` (name, version,
architecture, the Maintainer that -DEBPFMON_PACKAGE_MAINTAINER names, Depends: the Debian
packages of the shared libraries and passwd, all of them installed here; the conffile; the
maintainer scripts as in packaging/deb/) and `dpkg-deb --contents` (exactly the expected
files, owners and modes; units that start the programs it ships). `cmake --install` into a
DESTDIR and the uninstall target leave nothing but an edited configuration. Then
`dpkg --root=DIR --force-script-chrootless` installs, reinstalls, removes and purges it in a
scratch root: the maintainer scripts act on $DPKG_ROOT only
(systemd-sysusers and systemd-tmpfiles --root, nothing enabled), and a second scratch root
runs the postinst where neither tool exists (groupadd and useradd --prefix). The real
system is checked to be unchanged: accounts, units, programs.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import argparse
import glob
import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import CLEANUP, log, run  # noqa: E402

PROGRAMS = ("ebpfmon-loader", "ebpfmon-analyzer", "ebpfmonctl")
# what -DEBPFMON_PACKAGE_MAINTAINER gives the scratch build; the Maintainer field must be it
MAINTAINER = "Package Test <ebpfmon-test@example.org>"
LIB_PACKAGES = ("libbpf1", "libc6", "libinih1", "libjson-c5", "libnng1", "libprotobuf-c1",
                "libsqlite3-0", "libsystemd0")
# What of the real system must be the same after the test as before it: the files the package
# would install, the accounts it would create and dpkg's record of it (not whole files, which
# other tests running beside this one may change).
HOST_FILES = ("/lib/systemd/system/ebpfmon-loader.service",
              "/lib/systemd/system/ebpfmon-analyzer.service", "/usr/sbin/ebpfmon-loader",
              "/usr/sbin/ebpfmon-analyzer", "/usr/bin/ebpfmonctl",
              "/usr/lib/sysusers.d/ebpfmon.conf", "/usr/lib/tmpfiles.d/ebpfmon.conf")
HOST_ACCOUNTS = ("passwd", "group", "shadow", "gshadow")


def expected_files(src):
    """{path: mode} of every file the .deb must hold (directories aside)."""
    files = {
        "/etc/ebpfmon/ebpfmon.conf": 0o644,
        "/lib/systemd/system/ebpfmon-loader.service": 0o644,
        "/lib/systemd/system/ebpfmon-analyzer.service": 0o644,
        "/usr/sbin/ebpfmon-loader": 0o755,
        "/usr/sbin/ebpfmon-analyzer": 0o755,
        "/usr/bin/ebpfmonctl": 0o755,
        "/usr/lib/sysusers.d/ebpfmon.conf": 0o644,
        "/usr/lib/tmpfiles.d/ebpfmon.conf": 0o644,
        "/usr/share/bash-completion/completions/ebpfmonctl": 0o644,
        "/usr/share/ebpfmon/ebpfmon.conf": 0o644,
        "/usr/share/doc/ebpfmon/README.md": 0o644,
        "/usr/share/doc/ebpfmon/copyright": 0o644,
        "/usr/share/doc/ebpfmon/changelog.gz": 0o644,
    }
    for md in glob.glob(os.path.join(src, "docs", "*.md")):
        files[f"/usr/share/doc/ebpfmon/docs/{os.path.basename(md)}"] = 0o644
    files["/usr/share/doc/ebpfmon/docs/examples/api_example.c"] = 0o644
    for man in glob.glob(os.path.join(src, "docs", "man", "*.[1-8]")):
        name = os.path.basename(man)
        files[f"/usr/share/man/man{name[-1]}/{name}.gz"] = 0o644  # Debian policy: gzip
    return files


def host_state():
    """{what: state} of the real system's files, accounts and dpkg record of ebpfmon."""
    out = {}
    for p in HOST_FILES:
        try:
            with open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
        except FileNotFoundError:
            out[p] = None
    for db in HOST_ACCOUNTS:
        with open(f"/etc/{db}") as f:
            out[f"/etc/{db}"] = sorted(ln for ln in f if ln.split(":")[0] in
                                       ("ebpfmon", "ebpfmon-admin"))
    out["dpkg"] = run(["dpkg-query", "-W", "-f=${db:Status-Status}", "ebpfmon"],
                      check=False).stdout
    return out


def control_field(info, name):
    m = re.search(rf"^ {re.escape(name)}: (.*)$", info, re.M)
    return m.group(1).strip() if m else None


def passwd_entry(root, db, name):
    """The fields of NAME in ROOT/etc/DB, or None."""
    try:
        with open(os.path.join(root, "etc", db)) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
    except FileNotFoundError:
        pass
    return None


class Ctx:
    def __init__(self, args):
        self.src = os.path.abspath(args.source)
        self.vmlinux_h = args.vmlinux_h if args.vmlinux_h and os.path.isfile(args.vmlinux_h) \
            else None
        self.scratch = tempfile.mkdtemp(prefix=f"ebpfmon-pkg-{os.getpid()}-")
        CLEANUP.push(f"remove {self.scratch}", lambda: shutil.rmtree(self.scratch, True))
        self.build = os.path.join(self.scratch, "build")
        self.root = os.path.join(self.scratch, "root")
        self.deb = None
        self.host_before = host_state()

    def setup(self):
        t = time.monotonic()
        cfg = ["cmake", "-S", self.src, "-B", self.build, "-DCMAKE_INSTALL_PREFIX=/usr",
               "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
               # cpack installs what the three programs need, not the tests
               "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON",
               f"-DEBPFMON_PACKAGE_MAINTAINER={MAINTAINER}"]
        if self.vmlinux_h:
            cfg.append(f"-DEBPFMON_VMLINUX_H={self.vmlinux_h}")
        run(cfg, timeout=120)
        run(["cmake", "--build", self.build, "-j", str(os.cpu_count() or 2), "--target"] +
            list(PROGRAMS), timeout=600)
        run(["cpack", "-G", "DEB", "--config", os.path.join(self.build, "CPackConfig.cmake"),
             "-B", self.build], timeout=300)
        debs = glob.glob(os.path.join(self.build, "*.deb"))
        assert len(debs) == 1, f"cpack made {debs}"
        self.deb = debs[0]
        log(f"built {os.path.basename(self.deb)} in {time.monotonic() - t:.1f}s")

    def dpkg(self, *args, check=True):
        """dpkg on the scratch root, its maintainer scripts run outside a chroot with
        DPKG_ROOT set."""
        return run(["dpkg", f"--root={self.root}", "--force-script-chrootless",
                    "--force-depends", "--force-confold"] + list(args), check=check, timeout=60)

    def rooted(self, path):
        return os.path.join(self.root, path.lstrip("/"))


tests, test = nstest.test_registry()


@test("dpkg-deb --info: name, version, Maintainer (-DEBPFMON_PACKAGE_MAINTAINER), Depends (the "
      "shared libraries' packages), conffile, maintainer scripts")
def test_info(ctx):
    info = run(["dpkg-deb", "--info", ctx.deb]).stdout
    with open(os.path.join(ctx.src, "CMakeLists.txt")) as f:
        version = re.search(r"project\(ebpfmon VERSION (\S+)", f.read()).group(1)
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    assert control_field(info, "Package") == "ebpfmon", info
    assert control_field(info, "Version") == version, info
    assert control_field(info, "Architecture") == arch, info
    maintainer = run(["dpkg-deb", "--field", ctx.deb, "Maintainer"]).stdout.strip()
    assert maintainer == MAINTAINER, f"Maintainer: {maintainer!r}, configured {MAINTAINER!r}"
    depends = control_field(info, "Depends") or ""
    log(f"Depends: {depends}")
    names = [re.match(r"\s*([^\s(]+)", d).group(1) for d in depends.split(",")]
    for pkg in LIB_PACKAGES + ("passwd",):
        assert pkg in names, f"Depends lacks {pkg}: {depends}"
    for pkg in names:
        r = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], check=False)
        assert r.stdout == "installed", f"Depends names {pkg}, which is not an installed package"
    ctrl = os.path.join(ctx.scratch, "control")
    run(["dpkg-deb", "--control", ctx.deb, ctrl])
    with open(os.path.join(ctrl, "conffiles")) as f:
        assert f.read().split() == ["/etc/ebpfmon/ebpfmon.conf"], "conffiles"
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(ctrl, script)
        assert os.path.isfile(path), f"no {script}"
        assert os.stat(path).st_mode & 0o777 == 0o755, f"{script} mode"
        with open(path) as a, open(os.path.join(ctx.src, "packaging", "deb", script)) as b:
            assert a.read() == b.read(), f"{script} differs from packaging/deb/{script}"
    assert not os.path.exists(os.path.join(ctrl, "preinst")), "an unexpected preinst"


@test("dpkg-deb --contents: exactly the expected files, root-owned, with their modes")
def test_contents(ctx):
    out = run(["dpkg-deb", "--contents", ctx.deb]).stdout
    got = {}
    for line in out.splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        path = path[1:]  # ./usr/... -> /usr/...
        assert owner == "root/root", f"{path} is {owner}"
        if perms.startswith("-"):
            mode = 0
            for i, c in enumerate(perms[1:]):
                if c != "-":
                    mode |= 1 << (8 - i)
            got[path] = mode
        else:
            assert perms.startswith("d"), f"{path}: not a file nor a folder: {perms}"
    want = expected_files(ctx.src)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"missing {missing}, unexpected {extra}"
    for path, mode in want.items():
        assert got[path] == mode, f"{path}: mode {got[path]:o}, want {mode:o}"
    log(f"{len(got)} files, as expected")


@test("dpkg --root installs it into a scratch root: programs, units that start them, users and "
      "folders made under the root, nothing enabled, the real system untouched")
def test_install(ctx):
    admin = os.path.join(ctx.root, "var", "lib", "dpkg")
    os.makedirs(os.path.join(admin, "info"))
    os.makedirs(os.path.join(admin, "updates"))
    for f in ("status", "available"):
        open(os.path.join(admin, f), "w").close()
    r = ctx.dpkg("-i", ctx.deb)
    log("dpkg -i: " + " | ".join(r.stdout.strip().splitlines()[-2:]))
    st = run(["dpkg", f"--root={ctx.root}", "-s", "ebpfmon"]).stdout
    assert "Status: install ok installed" in st, st

    for p in PROGRAMS:
        d = "bin" if p == "ebpfmonctl" else "sbin"
        path = ctx.rooted(f"/usr/{d}/{p}")
        assert os.access(path, os.X_OK), f"{path} is not an executable"
        run([path, "--help"])  # it starts: its libraries are there
    for unit in ("ebpfmon-loader.service", "ebpfmon-analyzer.service"):
        with open(ctx.rooted(f"/lib/systemd/system/{unit}")) as f:
            text = f.read()
        exe = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
        assert os.access(ctx.rooted(exe), os.X_OK), f"{unit}: ExecStart={exe}: not shipped"
        for doc in re.findall(r"file://(\S+)", text):
            assert os.path.isfile(ctx.rooted(doc)), f"{unit}: Documentation={doc}: not shipped"
        for man in re.findall(r"man:([\w-]+)\((\d)\)", text):
            assert os.path.isfile(ctx.rooted(f"/usr/share/man/man{man[1]}/{man[0]}.{man[1]}.gz")), \
                f"{unit}: man:{man[0]}({man[1]}) not shipped"

    user = passwd_entry(ctx.root, "passwd", "ebpfmon")
    assert user and user[5] == "/nonexistent" and user[6] == "/usr/sbin/nologin", user
    uid, gid = int(user[2]), int(user[3])
    group = passwd_entry(ctx.root, "group", "ebpfmon")
    assert group and int(group[2]) == gid, f"group ebpfmon {group}, user's gid {gid}"
    assert passwd_entry(ctx.root, "group", "ebpfmon-admin"), "no group ebpfmon-admin"
    for d in ("/var/lib/ebpfmon", "/run/ebpfmon"):
        s = os.stat(ctx.rooted(d))
        assert (s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)) == (uid, gid, 0o750), \
            f"{d}: {s.st_uid}:{s.st_gid} {stat.S_IMODE(s.st_mode):o}"
    wants = glob.glob(ctx.rooted("/etc/systemd/system/*.wants/ebpfmon-*"))
    assert not wants, f"installing enabled {wants}"

    if shutil.which("systemd-analyze"):
        # verify needs systemd's own units under the root, and the commands the units run
        units = ctx.rooted("/lib/systemd/system")
        run(["cp", "-rn", "/lib/systemd/system/.", units])
        os.makedirs(ctx.rooted("/bin"), exist_ok=True)
        shutil.copy2("/bin/kill", ctx.rooted("/bin/kill"))
        r = run(["systemd-analyze", "verify", "--man=no", f"--root={ctx.root}",
                 os.path.join(units, "ebpfmon-loader.service"),
                 os.path.join(units, "ebpfmon-analyzer.service")], check=False)
        assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), \
            f"systemd-analyze verify: {r.stdout} {r.stderr}"
        log("systemd-analyze verify: the installed units are clean")


@test("reinstalling keeps an edited /etc/ebpfmon/ebpfmon.conf (a conffile) and the users")
def test_reinstall_keeps_conffile(ctx):
    conf = ctx.rooted("/etc/ebpfmon/ebpfmon.conf")
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    uid = passwd_entry(ctx.root, "passwd", "ebpfmon")[2]
    ctx.dpkg("-i", ctx.deb)
    with open(conf) as f:
        assert f.read().endswith("# edited by the operator\n"), "the edited conffile was replaced"
    assert passwd_entry(ctx.root, "passwd", "ebpfmon")[2] == uid, "the user changed"


@test("remove keeps the configuration, the database folder and the users; purge removes the "
      "configuration, the data and the enablement links, and keeps the users")
def test_remove_purge(ctx):
    db = ctx.rooted("/var/lib/ebpfmon/ebpfmon.db")
    with open(db, "w") as f:
        f.write("data")
    wants = ctx.rooted("/etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    link = os.path.join(wants, "ebpfmon-analyzer.service")
    os.symlink("/lib/systemd/system/ebpfmon-analyzer.service", link)  # systemctl enable

    ctx.dpkg("-r", "ebpfmon")
    for p in PROGRAMS:
        assert not glob.glob(ctx.rooted(f"/usr/*bin/{p}")), f"{p} left after remove"
    assert not os.path.exists(ctx.rooted("/lib/systemd/system/ebpfmon-loader.service"))
    assert os.path.isfile(ctx.rooted("/etc/ebpfmon/ebpfmon.conf")), "remove took the conffile"
    assert os.path.isfile(db), "remove took the database"

    ctx.dpkg("-P", "ebpfmon")
    for p in ("/etc/ebpfmon/ebpfmon.conf", "/var/lib/ebpfmon", "/run/ebpfmon"):
        assert not os.path.lexists(ctx.rooted(p)), f"{p} left after purge"
    assert not os.path.lexists(link), "the enablement link is left after purge"
    assert passwd_entry(ctx.root, "passwd", "ebpfmon"), "purge removed the user"
    st = run(["dpkg", f"--root={ctx.root}", "-s", "ebpfmon"], check=False)
    assert st.returncode != 0 or "not-installed" in st.stdout, st.stdout


@test("the postinst without systemd-sysusers and systemd-tmpfiles: groupadd and useradd "
      "--prefix make the same users and folders")
def test_postinst_fallback(ctx):
    root = os.path.join(ctx.scratch, "root-nosystemd")
    os.makedirs(os.path.join(root, "etc"))
    for db, mode in (("passwd", 0o644), ("group", 0o644), ("shadow", 0o640),
                     ("gshadow", 0o640)):
        with open(os.path.join(root, "etc", db), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n" if db == "passwd" else
                    "root:x:0:\n" if db == "group" else
                    "root:*:19000:0:99999:7:::\n" if db == "shadow" else "root:*::\n")
        os.chmod(os.path.join(root, "etc", db), mode)
    bindir = os.path.join(ctx.scratch, "bin-nosystemd")
    os.makedirs(bindir)
    for tool in ("sh", "grep", "cut", "install", "groupadd", "useradd", "getent", "cat"):
        path = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        assert path, f"{tool} not found"
        os.symlink(path, os.path.join(bindir, tool))
    postinst = os.path.join(ctx.src, "packaging", "deb", "postinst")
    r = subprocess.run(["/bin/sh", postinst, "configure", ""], capture_output=True, text=True,
                       env={"PATH": bindir, "DPKG_ROOT": root}, timeout=60)
    assert r.returncode == 0, f"postinst: {r.returncode} {r.stdout} {r.stderr}"
    user = passwd_entry(root, "passwd", "ebpfmon")
    assert user and user[6] == "/usr/sbin/nologin" and int(user[2]) < 1000, user
    gid = int(passwd_entry(root, "group", "ebpfmon")[2])
    assert int(user[3]) == gid, f"user {user}, group {gid}"
    assert passwd_entry(root, "group", "ebpfmon-admin"), "no group ebpfmon-admin"
    for d in ("var/lib/ebpfmon", "run/ebpfmon"):
        s = os.stat(os.path.join(root, d))
        assert (s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)) == (int(user[2]), gid, 0o750), d
    # again: nothing to do, no error
    r = subprocess.run(["/bin/sh", postinst, "configure", "0.1.0"], capture_output=True,
                       text=True, env={"PATH": bindir, "DPKG_ROOT": root}, timeout=60)
    assert r.returncode == 0, f"postinst again: {r.returncode} {r.stderr}"


def tree(root):
    """The files and folders under ROOT, relative to it ("d path" and "f path")."""
    out = set()
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        out.update(f"d {os.path.normpath(os.path.join(rel, n))}" for n in dirs)
        out.update(f"f {os.path.normpath(os.path.join(rel, n))}" for n in files)
    return out


@test("cmake --install into a DESTDIR, then the uninstall target: every installed file and "
      "every folder the install made removed, an edited configuration and folders that were "
      "there before kept")
def test_uninstall(ctx):
    dest = os.path.join(ctx.scratch, "destdir")
    # there before the install: an empty folder the install puts a file in, and a file of
    # someone else's beside ours
    os.makedirs(os.path.join(dest, "usr/lib/tmpfiles.d"))
    os.makedirs(os.path.join(dest, "usr/share/man/man1"))
    with open(os.path.join(dest, "usr/share/man/man1/other.1.gz"), "w") as f:
        f.write("not ours")
    before = tree(dest)
    env = dict(os.environ, DESTDIR=dest)
    run(["cmake", "--install", ctx.build], env=env, timeout=120)
    with open(os.path.join(ctx.build, "install_manifest.txt")) as f:
        manifest = f.read().split()
    assert "/etc/ebpfmon/ebpfmon.conf" in manifest and "/usr/sbin/ebpfmon-loader" in manifest, \
        manifest
    for p in manifest:
        assert os.path.isfile(dest + p), f"{p}: in install_manifest.txt, not installed"
    conf = os.path.join(dest, "etc/ebpfmon/ebpfmon.conf")
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    gone = manifest[-1]  # one removed by hand before the uninstall
    os.unlink(dest + gone)

    r = run(["cmake", "--build", ctx.build, "--target", "uninstall"], env=env, timeout=120)
    out = r.stdout
    for p in manifest:
        if p == "/etc/ebpfmon/ebpfmon.conf":
            assert f"Keeping: {dest}{p} (changed" in out, f"the edited {p} not said kept:\n{out}"
        elif p == gone:
            assert f"Already gone: {dest}{p}" in out, f"{p} not said gone:\n{out}"
        else:
            assert f"Removed: {dest}{p}\n" in out, f"{p} not said removed:\n{out}"
    left = tree(dest) - before
    assert left == {"d etc", "d etc/ebpfmon", "f etc/ebpfmon/ebpfmon.conf"}, \
        f"left after uninstall: {sorted(left)}"
    assert before <= tree(dest), f"removed what was there before: {sorted(before - tree(dest))}"
    with open(conf) as f:
        assert f.read().endswith("# edited by the operator\n"), "the edited configuration changed"
    log(f"uninstall: {len(manifest) - 2} files removed, 1 already gone, the edited "
        "configuration and the folders that were there kept")

    # an unedited configuration goes too, and with it the folders, also when a second install
    # kept the file the first one put there
    os.unlink(conf)
    run(["cmake", "--install", ctx.build], env=env, timeout=120)
    r = run(["cmake", "--install", ctx.build], env=env, timeout=120)
    assert f"Keeping: {conf}" in r.stdout, f"the second install replaced {conf}:\n{r.stdout}"
    r = run(["cmake", "--build", ctx.build, "--target", "uninstall"], env=env, timeout=120)
    assert f"Removed: {conf}\n" in r.stdout, r.stdout
    assert tree(dest) == before, f"left: {sorted(tree(dest) - before)}"
    # a configuration that was there before the install is not the install's, edited or not
    shutil.copytree(os.path.join(ctx.src, "conf"), os.path.join(dest, "etc/ebpfmon"))
    theirs = tree(dest)
    run(["cmake", "--install", ctx.build], env=env, timeout=120)
    r = run(["cmake", "--build", ctx.build, "--target", "uninstall"], env=env, timeout=120)
    assert conf not in r.stdout, f"the uninstall acted on a configuration it did not install:\n" \
        f"{r.stdout}"
    assert tree(dest) == theirs, f"changed: {sorted(tree(dest) ^ theirs)}"
    shutil.rmtree(os.path.join(dest, "etc"))
    # the uninstall refuses a DESTDIR other than the install's
    run(["cmake", "--install", ctx.build], env=env, timeout=120)
    r = run(["cmake", "--build", ctx.build, "--target", "uninstall"], check=False, timeout=120,
            env=dict(os.environ, DESTDIR=os.path.join(ctx.scratch, "elsewhere")))
    assert r.returncode != 0 and f"with DESTDIR={dest}" in r.stdout + r.stderr, \
        f"uninstall with another DESTDIR: {r.returncode} {r.stdout} {r.stderr}"
    run(["cmake", "--build", ctx.build, "--target", "uninstall"], env=env, timeout=120)
    assert tree(dest) == before, f"left: {sorted(tree(dest) - before)}"


@test("cmake --install --prefix /usr/local (the quick start's): the units and the man pages "
      "name the documentation and the units where this installation put them")
def test_local_prefix_paths(ctx):
    dest = os.path.join(ctx.scratch, "local")
    env = dict(os.environ, DESTDIR=dest)
    run(["cmake", "--install", ctx.build, "--prefix", "/usr/local"], env=env, timeout=120)
    try:
        named = []
        for unit in ("ebpfmon-loader.service", "ebpfmon-analyzer.service"):
            with open(f"{dest}/usr/local/lib/systemd/system/{unit}") as f:
                named += [(unit, d) for d in re.findall(r"file://(\S+)", f.read())]
        for page in ("man8/ebpfmon-loader.8", "man8/ebpfmon-analyzer.8", "man1/ebpfmonctl.1"):
            with gzip.open(f"{dest}/usr/local/share/man/{page}.gz", "rt") as f:
                named += [(page, p.rstrip(".,")) for p in
                          re.findall(r"(/(?:usr|lib)/\S*(?:\.md|\.service)\S*)", f.read())]
        assert named, "no paths named in the units and man pages"
        missing = [f"{where}: {p}" for where, p in named if not os.path.isfile(dest + p)]
        assert not missing, "named but not installed there:\n  " + "\n  ".join(missing)
        log(f"{len(named)} paths named by the units and man pages, all installed")
    finally:
        run(["cmake", "--build", ctx.build, "--target", "uninstall"], env=env, timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="the source tree")
    ap.add_argument("--vmlinux-h", help="a vmlinux.h to build the BPF object with")
    ap.add_argument("--only", "-k", action="append", default=[])
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    nstest.VERBOSE = args.verbose
    nstest.install_signal_handlers()
    if os.geteuid() != 0:
        nstest.skip("needs root (dpkg --root installs files owned by root)")
    for tool in ("cmake", "cpack", "dpkg", "dpkg-deb", "dpkg-shlibdeps", "groupadd", "useradd"):
        if shutil.which(tool) is None:
            nstest.skip(f"'{tool}' not found in PATH (packaging/install-deps.sh --test)")

    selected = [t for t in tests if not args.only or any(o in t[0] for o in args.only)]
    passed, failed = [], []
    start = time.monotonic()
    try:
        ctx = Ctx(args)
        try:
            ctx.setup()
        except Exception:  # noqa: BLE001
            log("FAILED: building the package:\n" + traceback.format_exc())
            failed, selected = [t[0] for t in selected], []
        for name, title, fn in selected:
            log(f"=== {name}: {title}")
            t = time.monotonic()
            try:
                fn(ctx)
                passed.append(name)
                log(f"--- PASS {name} ({time.monotonic() - t:.1f}s)")
            except Exception as e:  # noqa: BLE001
                failed.append(name)
                log(f"--- FAIL {name}: {type(e).__name__}: {e}")
                if not isinstance(e, AssertionError):
                    log(traceback.format_exc())
        after = host_state()
        changed = [k for k in after if after[k] != ctx.host_before[k]]
        if changed:
            log(f"FAIL: the real system changed: {changed}")
            failed.append("host_untouched")
        else:
            passed.append("host_untouched")
    finally:
        CLEANUP.run()
    log(f"runtime {time.monotonic() - start:.1f}s")
    print(f"{len(passed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
