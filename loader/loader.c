// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The privileged half of ebpfmon, kept as small as it can be: open the skeleton, size the
 * maps, reuse the pinned maps of an earlier run, load, attach every program through a bpf_link,
 * pin maps, programs and links, hand the pins to the analyzer's group, and give up root.
 * What is left runs unprivileged: it waits for a signal and removes its link pins on the way
 * out, which detaches the programs while the maps, and so the bans, stay.
 */
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <mntent.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "ebpfmon.skel.h"
#include "log.h"
#include "mapconf.h"
#include "netif.h"
#include "privdrop.h"

#define PIN_PATH_MAX 512
/* ingress (XDP or tcx) and egress each, 2 tracepoints, the stream guard's sock_ops */
#define LOADER_MAX_LINKS (2 * CONFIG_MAX_INTERFACES + 3)
/*
 * enum bpf_attach_type's BPF_TCX_INGRESS and BPF_TCX_EGRESS (Linux 6.6): the uapi headers that
 * libbpf 1.1.2 is built against may predate them, and they are enums, not macros, so they are
 * spelt out here.
 */
#define LOADER_TCX_INGRESS 46
#define LOADER_TCX_EGRESS  47

struct pinned_link {
	char path[PIN_PATH_MAX];
	int fd;
};

struct loader {
	const struct config *cfg;
	struct ebpfmon *skel;
	int lock_fd;  /* progs/ of the pin root, flock()ed while we run: no second loader */
	int links_fd; /* links/ of the pin root, flock()ed while we run: what the analyzer sees */
	bool links_locked; /* links_fd holds the lock (open_locked() may go on without it) */
	uid_t uid;
	gid_t uid_gid;		    /* the user's primary group */
	gid_t pin_gid;		    /* group that owns the pins */
	char cgroup2[PIN_PATH_MAX]; /* where the cgroup v2 root was found, for messages */
	int cg_fd;		    /* the cgroup v2 root; -errno when none (no stream guard) */
	struct pinned_link links[LOADER_MAX_LINKS];
	unsigned int n_links;
	char status[CONFIG_PATH_MAX + 192];
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t len;

	if (level == LIBBPF_DEBUG && log_get_level() < LOG_LVL_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	if (len && line[len - 1] == '\n')
		line[len - 1] = '\0';
	log_msg(level == LIBBPF_WARN ? LOG_LVL_WARN : LOG_LVL_DEBUG, "libbpf: %s", line);
	return 0;
}

static void pin_path(char *buf, size_t len, const char *root, const char *sub, const char *name)
{
	if (name)
		snprintf(buf, len, "%s/%s/%s", root, sub, name);
	else
		snprintf(buf, len, "%s/%s", root, sub);
}

/* dir/name into buf; -ENAMETOOLONG (logged) when it does not fit. */
static int join_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) < len)
		return 0;
	log_error("path too long: %s/%s", dir, name);
	errno = ENAMETOOLONG;
	return -ENAMETOOLONG;
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/*
 * An exclusive flock() on fd, a folder of the pin root: 0, or -1 with errno (EWOULDBLOCK:
 * another process holds it). A loader holds two, on folders that no reader of the pins
 * (group ebpfmon) may open, so that none can take them and keep a loader from starting, as
 * one could on the group-readable pin root or maps/:
 * - progs/, root's 0700 always: one loader per pin root. Taken first, before anything of the
 *   pin root is changed.
 * - links/, 0700 and the user's while a loader runs (root's while it starts): how the
 *   analyzer, the same user, sees that a loader runs. It tries a shared lock on it for
 *   microseconds (api_snap.c), so a loader that meets one tries again, for LOCK_TRIES x 10 ms;
 *   one held longer (by that user) is logged and does not stop the start (open_locked()).
 */
#define LOCK_TRIES 20

static int lock_folder(int fd)
{
	for (int i = 0;; i++) {
		if (!flock(fd, LOCK_EX | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK || i + 1 >= LOCK_TRIES)
			return -1;
		usleep(10 * 1000);
	}
}

/*
 * Open the folder pin_root/sub and lock it (lock_folder()): its fd, or -errno (logged).
 * Unless required, a lock that another process holds is logged and the folder's fd returned
 * unlocked: links/, once this loader holds progs/, is held by no other loader, but may be by
 * the user the loader becomes, which must not keep a loader from starting.
 */
static int open_locked(const char *pin_root, const char *sub, bool required)
{
	char path[PIN_PATH_MAX];
	int fd, err;

	pin_path(path, sizeof(path), pin_root, sub, NULL);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		log_error("cannot open %s: %s", path, strerror(-err));
		return err;
	}
	if (lock_folder(fd)) {
		err = -errno;
		if (err == -EWOULDBLOCK && !required) {
			log_warn("%s is locked by a process that is not a loader (this one holds "
				 "the loaders' lock): going on without its lock, so the analyzer's "
				 "status may say that no loader runs",
				 path);
			return fd;
		}
		if (err == -EWOULDBLOCK)
			log_error("another ebpfmon-loader is already running on %s (it holds the "
				  "lock on %s)",
				  pin_root, path);
		else
			log_error("cannot lock %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/* Make sure pin_root lies on bpffs, mounting /sys/fs/bpf when nothing is mounted there yet. */
static int ensure_bpffs(const char *pin_root)
{
	char parent[PIN_PATH_MAX], *slash;
	int err;

	snprintf(parent, sizeof(parent), "%s", pin_root);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (on_bpffs(pin_root) || on_bpffs(parent))
		return 0;
	if (!strcmp(parent, "/sys/fs/bpf")) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0755") == 0) {
			log_info("mounted bpffs on /sys/fs/bpf");
			return 0;
		}
		err = -errno;
		log_error("cannot mount bpffs on /sys/fs/bpf: %s%s", strerror(-err),
			  privdrop_cap_hint(err, PRIVDROP_CAP(CAP_SYS_ADMIN)));
		return err;
	}
	log_error("pin root %s is not on a bpf filesystem (mount -t bpf bpf %s)", pin_root, parent);
	return -ENOTSUP;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		log_error("cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * Whether path is a folder a loader made: a folder (not a symbolic link), owned by root or by
 * user (0: root only), writable by its owner alone. 0, or -EPERM logged: bpffs mounted
 * without mode= (mount -t bpf) lets every user make folders in it, and a pin root or folder
 * made by another would have the root loader chown, chmod and remove what that user chooses.
 */
static int folder_ours(const char *path, uid_t user)
{
	struct stat st;

	if (lstat(path, &st)) {
		log_error("cannot check %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode) || (st.st_uid != 0 && (!user || st.st_uid != user)) ||
	    (st.st_mode & 022)) {
		log_error("%s is not a folder that ebpfmon-loader made (%s, owner uid %u, mode "
			  "%04o): refusing to use or remove it; whoever made it may control what "
			  "is in it (remove it by hand once you know what it is)",
			  path,
			  S_ISLNK(st.st_mode)	? "a symbolic link"
			  : S_ISDIR(st.st_mode) ? "a folder"
						: "not a folder",
			  (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* A warning when the folder that holds the pin root lets every user make folders in it. */
static void warn_open_parent(const char *pin_root)
{
	char parent[PIN_PATH_MAX], *slash;
	struct stat st;

	snprintf(parent, sizeof(parent), "%s", pin_root);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return;
	*slash = '\0';
	if (!stat(parent, &st) && (st.st_mode & 002))
		log_warn("%s is writable by every user (mode %04o): any of them could make %s "
			 "before the loader does (mount bpffs with mode=0700, as systemd does)",
			 parent, (unsigned int)(st.st_mode & 07777), pin_root);
}

/* folders in a pin folder, which no loader makes, removed this deep */
#define REMOVE_DEPTH 32

static int reclaim_pins(const struct loader *l, bool maps);
static int set_owner(const char *path, uid_t uid, gid_t gid, mode_t mode);
static int remove_entries(int dirfd, const char *path, int depth);

/*
 * analyzer/ is the analyzer's lock and holds nothing: what its user left there (a second name
 * of a link pin would keep that link, and its program, attached) is removed, root's for the
 * time (hand_over_pins() gives it back). A running analyzer's lock on it stays. What cannot be
 * removed is logged and does not stop the start.
 */
static void empty_analyzer_dir(const char *root)
{
	char path[PIN_PATH_MAX];
	int fd;

	pin_path(path, sizeof(path), root, EBPFMON_PIN_ANALYZER, NULL);
	if (set_owner(path, 0, 0, 0700))
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		log_warn("cannot open %s to empty it: %s", path, strerror(errno));
		return;
	}
	remove_entries(fd, path, REMOVE_DEPTH);
	close(fd);
}

/*
 * The pin root and its four folders, and the locks (lock_folder()): progs/ first, which keeps
 * a second loader out, then links/. Link pins that an earlier run left (it crashed) are taken
 * back from its user, to be taken over in place, and the maps it handed to the analyzer's
 * user, to be reused.
 */
static int pin_root_setup(struct loader *l)
{
	const char *root = l->cfg->pin_root;
	char path[PIN_PATH_MAX];
	const char *subs[] = {EBPFMON_PIN_MAPS, EBPFMON_PIN_LINKS, EBPFMON_PIN_ANALYZER};
	int err;

	err = ensure_bpffs(root);
	if (err)
		return err;
	warn_open_parent(root);
	err = make_dir(root);
	err = err ?: folder_ours(root, 0);
	if (err)
		return err;
	pin_path(path, sizeof(path), root, EBPFMON_PIN_PROGS, NULL);
	err = make_dir(path);
	err = err ?: folder_ours(path, 0);
	if (err)
		return err;
	l->lock_fd = open_locked(root, EBPFMON_PIN_PROGS, true);
	if (l->lock_fd < 0)
		return l->lock_fd;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		pin_path(path, sizeof(path), root, subs[i], NULL);
		err = make_dir(path);
		err = err ?: folder_ours(path, l->uid);
		if (err)
			return err;
	}
	/* links/ is root's again from here: root without CAP_DAC_OVERRIDE may open it */
	err = reclaim_pins(l, true);
	if (err)
		return err;
	empty_analyzer_dir(root);
	l->links_fd = open_locked(root, EBPFMON_PIN_LINKS, false);
	if (l->links_fd < 0)
		return l->links_fd;
	l->links_locked = flock(l->links_fd, LOCK_EX | LOCK_NB) == 0; /* held: a no-op */
	return 0;
}

/*
 * libbpf reuses a pinned map only when type, sizes and flags all match, and fails the load
 * otherwise. Replace such an old pin (from an older or differently sized build) instead.
 */
static void drop_incompatible_pins(struct loader *l)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, l->skel->obj)
	{
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		const char *path = bpf_map__pin_path(map);
		int fd;

		if (!path)
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
		    info.value_size == bpf_map__value_size(map) &&
		    info.max_entries == bpf_map__max_entries(map) &&
		    info.map_flags == bpf_map__map_flags(map)) {
			close(fd);
			continue;
		}
		log_warn("pinned map %s does not match this build (type %u key %u value %u "
			 "entries %u, want %u/%u/%u/%u): replacing it, its entries are lost",
			 path, info.type, info.key_size, info.value_size, info.max_entries,
			 bpf_map__type(map), bpf_map__key_size(map), bpf_map__value_size(map),
			 bpf_map__max_entries(map));
		close(fd);
		if (unlink(path))
			log_warn("cannot remove %s: %s", path, strerror(errno));
	}
}

static bool kernel_has_tracepoint(const struct btf *vmlinux, const char *tp)
{
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return vmlinux && btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) > 0;
}

/*
 * The root of the cgroup v2 hierarchy, opened (O_DIRECTORY); where says where it was found.
 * When no cgroup2 is mounted in our mount namespace (ip netns exec remounts /sys without it),
 * a private mount is made, opened and detached again: the hierarchy is the same. -errno when
 * neither works.
 */
static int cgroup2_open(char *where, size_t len)
{
	char tmp[] = "/tmp/ebpfmon-cgroup2-XXXXXX";
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	int fd = -ENOENT;

	while (f && fd < 0 && (m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			fd = open(m->mnt_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0)
				snprintf(where, len, "%s", m->mnt_dir);
		}
	if (f)
		endmntent(f);
	if (fd >= 0)
		return fd;
	if (!mkdtemp(tmp))
		return -errno;
	if (mount("cgroup2", tmp, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
		fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		umount2(tmp, MNT_DETACH);
		snprintf(where, len, "the cgroup v2 root (a private mount)");
	} else {
		fd = -errno;
	}
	rmdir(tmp);
	return fd;
}

/* Programs whose hook this kernel lacks are left out with a warning, not a failure. */
static void choose_programs(struct loader *l)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();

	if (!kernel_has_tracepoint(vmlinux, "inet_sock_set_state")) {
		log_warn(
			"kernel has no tracepoint inet_sock_set_state: connection counting is off");
		bpf_program__set_autoload(l->skel->progs.sock_state, false);
	}
	if (!kernel_has_tracepoint(vmlinux, "block_bio_queue")) {
		log_warn("kernel has no tracepoint block_bio_queue: per-process disk I/O is off");
		bpf_program__set_autoload(l->skel->progs.block_io, false);
	}
	btf__free(vmlinux);
	/* one ingress program: the one xdp_mode attaches */
	bpf_program__set_autoload(l->skel->progs.xdp_ingress, l->cfg->xdp_mode != CONFIG_XDP_TC);
	bpf_program__set_autoload(l->skel->progs.tc_ingress, l->cfg->xdp_mode == CONFIG_XDP_TC);
	if (l->cfg->url_stream_guard) {
		l->cg_fd = cgroup2_open(l->cgroup2, sizeof(l->cgroup2));
		if (l->cg_fd < 0)
			log_warn("cannot open the cgroup v2 hierarchy (%s): the stream guard "
				 "(url_stream_guard) is off, URL rules are matched in XDP only",
				 strerror(-l->cg_fd));
	}
	if (!l->cfg->url_stream_guard || l->cg_fd < 0) {
		bpf_program__set_autoload(l->skel->progs.stream_sockops, false);
		bpf_program__set_autoload(l->skel->progs.stream_verdict, false);
		bpf_program__set_autoload(l->skel->progs.stream_adopt, false);
	}
}

static int pin_programs(struct loader *l)
{
	struct bpf_program *prog;
	char path[PIN_PATH_MAX];

	bpf_object__for_each_program(prog, l->skel->obj)
	{
		/* stream_adopt runs once, at load: nothing to keep */
		if (prog == l->skel->progs.stream_adopt)
			continue;
		pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_PROGS,
			 bpf_program__name(prog));
		unlink(path); /* the program of an earlier run, which this run may not load */
		if (!bpf_program__autoload(prog))
			continue;
		if (bpf_obj_pin(bpf_program__fd(prog), path)) {
			log_error("cannot pin program at %s: %s", path, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/*
 * Keep link_fd pinned at links/NAME. An earlier run's link there is replaced: for links that
 * can take a new program in place (XDP, cgroup) the caller updates it instead; here the new
 * link is already attached, so removing the old pin leaves no moment without a program.
 */
static int keep_link(struct loader *l, const char *name, int link_fd)
{
	struct pinned_link *pl = &l->links[l->n_links];

	pin_path(pl->path, sizeof(pl->path), l->cfg->pin_root, EBPFMON_PIN_LINKS, name);
	unlink(pl->path);
	if (bpf_obj_pin(link_fd, pl->path)) {
		log_error("cannot pin link at %s: %s", pl->path, strerror(errno));
		close(link_fd);
		return -errno;
	}
	pl->fd = link_fd;
	l->n_links++;
	return 0;
}

/* Point an earlier run's link at our program: no window in which nothing is attached. */
static int update_old_link(struct loader *l, const char *name, int prog_fd)
{
	char path[PIN_PATH_MAX];
	int fd;

	pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_LINKS, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -ENOENT;
	if (bpf_link_update(fd, prog_fd, NULL)) {
		log_info("cannot update the link %s of an earlier run (%s): replacing it", path,
			 strerror(errno));
		close(fd);
		unlink(path);
		return -ENOENT;
	}
	struct pinned_link *pl = &l->links[l->n_links++];

	snprintf(pl->path, sizeof(pl->path), "%s", path);
	pl->fd = fd;
	return 0;
}

static int attach_xdp_mode(int prog_fd, const struct netif_info *ifi, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	int fd = bpf_link_create(prog_fd, ifi->ifindex, BPF_XDP, &opts);

	return fd < 0 ? -errno : fd;
}

/*
 * Remove the link pin links/PREFIX-IFNAME of the other kind of ingress hook than the one just
 * attached (an earlier run's, with another xdp_mode): its link goes with its pin, and only one
 * ingress program ever stays attached to an interface.
 */
static void drop_other_ingress(struct loader *l, const char *prefix, const char *ifname)
{
	char path[PIN_PATH_MAX], name[64];

	snprintf(name, sizeof(name), "%s-%s", prefix, ifname);
	pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_LINKS, name);
	if (unlink(path) == 0)
		log_info("interface %s: removed %s, the %s link of an earlier run with another "
			 "xdp_mode",
			 ifname, path, strcmp(prefix, "xdp") ? "tcx ingress" : "XDP");
	else if (errno != ENOENT)
		log_warn("interface %s: cannot remove %s (an earlier run's ingress link): %s; two "
			 "ingress programs stay attached",
			 ifname, path, strerror(errno));
}

/*
 * xdp_mode = tc: tc_ingress on one interface through a tcx ingress link (Linux 6.6+), pinned
 * as links/ingress-IFNAME; a restart updates the link of the earlier run in place. It passes
 * with TCX_NEXT, so tcx programs attached after it still run. -errno when tcx is missing:
 * unlike egress accounting, there is no ingress without it.
 */
static int attach_tc_ingress(struct loader *l, const struct netif_info *ifi)
{
	int prog_fd = bpf_program__fd(l->skel->progs.tc_ingress), fd, err;
	char name[64];

	snprintf(name, sizeof(name), "ingress-%s", ifi->name);
	if (update_old_link(l, name, prog_fd) == 0) {
		log_info("interface %s: replaced the program of the tcx ingress link left by an "
			 "earlier run",
			 ifi->name);
		drop_other_ingress(l, "xdp", ifi->name);
		return 0;
	}
	fd = bpf_link_create(prog_fd, ifi->ifindex, LOADER_TCX_INGRESS, NULL);
	if (fd < 0) {
		err = -errno;
		log_error(
			"interface %s: cannot attach tcx ingress (xdp_mode = tc): %s%s", ifi->name,
			strerror(-err),
			err == -EINVAL || err == -EOPNOTSUPP
				? " (tcx links need Linux 6.6 or later; use xdp_mode = generic on an "
				  "older kernel)"
				: privdrop_cap_hint(err, PRIVDROP_CAP(CAP_NET_ADMIN)));
		return err;
	}
	log_info("interface %s (ifindex %u, driver %s): ingress attached as tcx", ifi->name,
		 ifi->ifindex, ifi->driver[0] ? ifi->driver : "unknown");
	err = keep_link(l, name, fd);
	if (!err)
		drop_other_ingress(l, "xdp", ifi->name);
	return err;
}

/*
 * The ingress program on one interface, as xdp_mode says: an XDP link pinned as
 * links/xdp-IFNAME (auto, native, generic), or a tcx link (tc). -errno when it cannot be
 * attached.
 */
static int attach_ingress(struct loader *l, const char *ifname)
{
	int prog_fd = bpf_program__fd(l->skel->progs.xdp_ingress);
	enum config_xdp_mode mode = l->cfg->xdp_mode;
	struct netif_info ifi;
	char name[64];
	int fd = -EINVAL, err;

	err = netif_get(ifname, &ifi);
	if (err == -ENODEV || !ifi.ifindex) {
		log_error("interface %s does not exist", ifname);
		return -ENODEV;
	}
	if (mode == CONFIG_XDP_TC)
		return attach_tc_ingress(l, &ifi);
	snprintf(name, sizeof(name), "xdp-%s", ifname);
	if (update_old_link(l, name, prog_fd) == 0) {
		log_info(
			"interface %s: replaced the program of the XDP link left by an earlier run",
			ifname);
		drop_other_ingress(l, "ingress", ifname);
		return 0;
	}
	if (mode == CONFIG_XDP_AUTO)
		mode = netif_is_virtual(&ifi) || netif_xdp_native(ifi.ifindex) == 0
			       ? CONFIG_XDP_GENERIC
			       : CONFIG_XDP_NATIVE;
	if (mode == CONFIG_XDP_NATIVE) {
		fd = attach_xdp_mode(prog_fd, &ifi, XDP_FLAGS_DRV_MODE);
		if (fd < 0 && l->cfg->xdp_mode == CONFIG_XDP_AUTO) {
			log_warn("interface %s (driver %s): native XDP failed (%s), using generic",
				 ifname, ifi.driver[0] ? ifi.driver : "unknown", strerror(-fd));
			mode = CONFIG_XDP_GENERIC;
		}
	}
	if (mode == CONFIG_XDP_GENERIC)
		fd = attach_xdp_mode(prog_fd, &ifi, XDP_FLAGS_SKB_MODE);
	if (fd < 0) {
		log_error("interface %s: cannot attach XDP in %s mode: %s%s", ifname,
			  config_xdp_mode_name(mode), strerror(-fd),
			  privdrop_cap_hint(fd, PRIVDROP_CAP(CAP_NET_ADMIN)));
		return fd;
	}
	log_info("interface %s (ifindex %u, driver %s): XDP attached in %s mode", ifname,
		 ifi.ifindex, ifi.driver[0] ? ifi.driver : "unknown", config_xdp_mode_name(mode));
	err = keep_link(l, name, fd);
	if (!err)
		drop_other_ingress(l, "ingress", ifname);
	return err;
}

/*
 * Egress accounting on one interface: a tcx egress link (Linux 6.6+), pinned as
 * links/egress-IFNAME; a restart updates the link of the earlier run in place. Without tcx
 * there is no egress accounting on that interface (logged): libbpf 1.1.2 cannot make a
 * legacy TC clsact filter a link, and counting host-wide instead would count what never
 * crosses the interface. Returns 0 whether attached or not; -errno only when pinning fails.
 */
static int attach_egress(struct loader *l, const char *ifname)
{
	int prog_fd = bpf_program__fd(l->skel->progs.egress_account);
	struct netif_info ifi;
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "egress-%s", ifname);
	if (update_old_link(l, name, prog_fd) == 0) {
		log_info("interface %s: replaced the program of the egress link left by an earlier "
			 "run",
			 ifname);
		return 0;
	}
	if (netif_get(ifname, &ifi) || !ifi.ifindex)
		return 0; /* attach_ingress() said so */
	fd = bpf_link_create(prog_fd, ifi.ifindex, LOADER_TCX_EGRESS, NULL);
	if (fd < 0) {
		log_warn("interface %s: cannot attach tcx egress (%s; tcx needs Linux 6.6): no "
			 "egress accounting on it (tx_* of ip_stats stay 0 for its traffic)",
			 ifname, strerror(errno));
		return 0;
	}
	log_info("interface %s: egress accounting attached (tcx)", ifname);
	return keep_link(l, name, fd);
}

/*
 * Earlier versions counted egress host-wide with a cgroup_skb link pinned as links/egress:
 * remove it, or it would go on counting every namespace's traffic.
 */
static void drop_hostwide_egress(struct loader *l)
{
	char path[PIN_PATH_MAX];

	pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_LINKS, "egress");
	if (unlink(path) == 0)
		log_info("removed %s, the host-wide egress link of an earlier version", path);
	else if (errno != ENOENT)
		log_warn("cannot remove %s (host-wide egress link of an earlier version): %s", path,
			 strerror(errno));
}

/*
 * Put the connections to the HTTP ports that are open already under the stream guard (the
 * iterator stream_adopt, run once over this namespace's TCP sockets). Logs what it did; a
 * failure leaves them to XDP alone.
 */
static void stream_adopt(struct loader *l)
{
	struct bpf_link *link = bpf_program__attach_iter(l->skel->progs.stream_adopt, NULL);
	char buf[64];
	ssize_t n = 0;
	int fd;

	if (!link) {
		log_warn("stream guard: cannot walk the open connections (%s): those open now are "
			 "matched in XDP only",
			 strerror(errno));
		return;
	}
	/* A connection still in the sockhash of the loader before us cannot join ours until
	 * that map is freed, which the kernel does shortly after the old programs go: walk
	 * again, 50 ms apart, for up to 2 s. */
	for (int tries = 0; tries < 40; tries++) {
		l->skel->bss->stream_adopt_failed = 0;
		fd = bpf_iter_create(bpf_link__fd(link));
		if (fd < 0) {
			n = -1;
			break;
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		close(fd);
		if (n < 0 || !l->skel->bss->stream_adopt_failed)
			break;
		usleep(50000);
	}
	bpf_link__destroy(link);
	if (n < 0)
		log_warn("stream guard: the walk of the open connections failed: %s",
			 strerror(errno));
	if (l->skel->bss->stream_adopt_failed)
		log_warn("stream guard: %llu open connection(s) could not be taken in (%s): they "
			 "are matched in XDP only",
			 (unsigned long long)l->skel->bss->stream_adopt_failed,
			 strerror((int)-l->skel->bss->stream_adopt_err));
	log_info("stream guard: %llu connection(s) to the HTTP ports already open taken in",
		 (unsigned long long)l->skel->bss->stream_adopted);
}

/*
 * The guard watches: take in the open connections, then tell XDP to leave the connections the
 * guard holds to it (one it could not take in, XDP reads as before).
 */
static void stream_on(struct loader *l)
{
	stream_adopt(l);
	l->skel->bss->stream_guard_on = 1;
}

/*
 * The stream guard (bpf/stream.h): stream_verdict on the sockhash http_socks first, then
 * stream_sockops, which fills it, on the root of the cgroup v2 hierarchy through a link pinned
 * as links/stream_sockops (a restart updates the earlier run's link in place). Returns 0 or
 * -errno.
 */
static int attach_stream(struct loader *l)
{
	int sfd = bpf_program__fd(l->skel->progs.stream_sockops), fd, err;

	if (!bpf_program__autoload(l->skel->progs.stream_sockops))
		return 0;
	if (bpf_prog_attach(bpf_program__fd(l->skel->progs.stream_verdict),
			    bpf_map__fd(l->skel->maps.http_socks), BPF_SK_SKB_VERDICT, 0)) {
		err = -errno;
		log_error("cannot attach the stream guard's verdict to its sockhash: %s%s",
			  strerror(-err), privdrop_cap_hint(err, PRIVDROP_CAP(CAP_NET_ADMIN)));
		return err;
	}
	if (update_old_link(l, "stream_sockops", sfd) == 0) {
		log_info(
			"stream guard: replaced the program of the sock_ops link left by an earlier "
			"run");
		stream_on(l);
		return 0;
	}
	fd = bpf_link_create(sfd, l->cg_fd, BPF_CGROUP_SOCK_OPS, NULL);
	err = fd < 0 ? -errno : 0;
	if (err) {
		log_error(
			"cannot attach the stream guard to the cgroup %s: %s%s (url_stream_guard = "
			"false matches URL rules in XDP only)",
			l->cgroup2, strerror(-err),
			privdrop_cap_hint(err, PRIVDROP_CAP(CAP_NET_ADMIN)));
		return err;
	}
	log_info("stream guard: URL rules also on what connections to the HTTP ports deliver "
		 "(sock_ops on %s)",
		 l->cgroup2);
	err = keep_link(l, "stream_sockops", fd);
	if (!err)
		stream_on(l);
	return err;
}

static int attach_all(struct loader *l)
{
	const struct config *cfg = l->cfg;
	typeof(l->skel->progs) *p = &l->skel->progs;
	struct bpf_link *link;
	int err, fd;

	drop_hostwide_egress(l);
	for (unsigned int i = 0; i < cfg->n_interfaces; i++) {
		err = attach_ingress(l, cfg->interfaces[i]);
		if (err)
			return err;
		err = attach_egress(l, cfg->interfaces[i]);
		if (err)
			return err;
	}
	err = attach_stream(l);
	if (err)
		return err;

	struct {
		struct bpf_program *prog;
		const char *tp;
	} tps[] = {{p->sock_state, "inet_sock_set_state"}, {p->block_io, "block_bio_queue"}};
	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		if (!bpf_program__autoload(tps[i].prog))
			continue;
		link = bpf_program__attach_raw_tracepoint(tps[i].prog, tps[i].tp);
		if (!link) {
			err = -errno;
			log_error("cannot attach to raw tracepoint %s: %s%s", tps[i].tp,
				  strerror(-err),
				  privdrop_cap_hint(err, PRIVDROP_CAP(CAP_BPF) |
								 PRIVDROP_CAP(CAP_PERFMON)));
			return err;
		}
		fd = dup(bpf_link__fd(link));
		bpf_link__disconnect(link); /* the pin, not this object, keeps it attached */
		bpf_link__destroy(link);
		err = fd < 0 ? -errno : keep_link(l, bpf_program__name(tps[i].prog), fd);
		if (err)
			return err;
	}
	return 0;
}

/*
 * The maps the analyzer writes belong to its user (the one the loader becomes); every map is
 * readable by the group and by nobody else. Group members (the API's readers) may inspect
 * the maps but not change a ban, an allowlist entry or a rule, nor consume the ring buffer:
 * a group-writable pin would let them do what the API refuses them.
 */
static const char *const analyzer_maps[] = {
	EBPFMON_MAP_BANS,      EBPFMON_MAP_BAN_NETS, EBPFMON_MAP_ALLOW_NETS,
	EBPFMON_MAP_URL_RULES, EBPFMON_MAP_SETTINGS, EBPFMON_MAP_EVENTS,
};

/*
 * chmod() only while the pin is ours: a pin that is someone else's is taken first (chown to
 * us), then given its mode, then its owner. CAP_CHOWN is then all this needs (no CAP_FOWNER).
 * Only a folder or a pin (a regular file on bpffs), never through a symbolic link: the user
 * the loader becomes owns links/ and may put anything there, which a root loader must not
 * follow (reclaim_pins() takes the folder back before set_owner_all() looks into it).
 */
static int set_owner(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;
	bool ours;
	int err;

	if (lstat(path, &st)) {
		err = -errno;
		log_error("cannot set owner and mode of %s: %s", path, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		log_error("cannot set owner and mode of %s: neither a folder nor a pin", path);
		return -EINVAL;
	}
	ours = st.st_uid == geteuid();
	if ((!ours && fchownat(AT_FDCWD, path, geteuid(), (gid_t)-1, AT_SYMLINK_NOFOLLOW)) ||
	    chmod(path, mode) || fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)) {
		err = -errno;
		log_error("cannot set owner and mode of %s: %s%s", path, strerror(-err),
			  privdrop_cap_hint(err, PRIVDROP_CAP(CAP_CHOWN)));
		return err;
	}
	return 0;
}

/* Whether name is one of names[0, n). */
static bool name_in(const char *name, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/*
 * Set owner and mode of every pin of a pin folder: uid:gid, or user:gid for the entries named
 * in users[0, n_users). What is not a pin was not made by a loader: a symbolic link is removed
 * (one in links/ would otherwise lead the loader to another program's link, or its chown to
 * any file), anything else is left as it is; both are logged. With one_name (links/, which
 * the loader's user owned), a pin that has another name too is removed as well: a hard link
 * to a pin elsewhere (a map of maps/, another loader's link) whose mode and owner this would
 * change. The folder must not be writable by anyone but root meanwhile (links/:
 * reclaim_pins() takes it back first, hand_over_pins() hands it over last), so that no entry
 * changes between the look and the change.
 */
static int set_owner_all(const char *dir, uid_t uid, gid_t gid, mode_t mode, uid_t user,
			 const char *const *users, size_t n_users, bool one_name)
{
	char path[PIN_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d) {
		err = -errno;
		log_error("cannot open %s: %s", dir, strerror(-err));
		return err;
	}
	while (!err && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (join_path(path, sizeof(path), dir, de->d_name))
			continue;
		if (lstat(path, &st))
			continue; /* gone meanwhile */
		if (S_ISLNK(st.st_mode)) {
			if (unlink(path))
				log_warn("%s is a symbolic link, not a pin: cannot remove it: %s",
					 path, strerror(errno));
			else
				log_warn("%s was a symbolic link, not a pin: removed", path);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			log_warn("%s is not a pin: left as it is", path);
			continue;
		}
		if (one_name && st.st_nlink > 1) {
			if (unlink(path))
				log_warn(
					"%s has %lu names, not a pin of ours: cannot remove it: %s",
					path, (unsigned long)st.st_nlink, strerror(errno));
			else
				log_warn("%s had %lu names, not a pin of ours: removed this one",
					 path, (unsigned long)st.st_nlink);
			continue;
		}
		err = set_owner(path, name_in(de->d_name, users, n_users) ? user : uid, gid, mode);
	}
	closedir(d);
	return err;
}

/*
 * analyzer/ USER 0700, the analyzer's lock (maps_lock()), first: an analyzer waiting for the
 * maps then finds it its own; root/ and maps/ root:GROUP 0750 with each map 0640, USER:GROUP
 * for the maps the analyzer writes and root:GROUP for the others; progs/ root 0700;
 * links/ owned by the user we become, so that it can remove the link pins on the way out (its
 * pins first: root without CAP_DAC_OVERRIDE cannot list a folder that is no longer its own).
 * The folders that hold a lock, progs/, links/ and analyzer/, are 0700: readers of the pins
 * (the group) cannot open them, so cannot take their locks (lock_folder(), maps_lock()).
 */
static int hand_over_pins(struct loader *l)
{
	const char *root = l->cfg->pin_root;
	char path[PIN_PATH_MAX];
	int err;

	pin_path(path, sizeof(path), root, EBPFMON_PIN_ANALYZER, NULL);
	err = set_owner(path, l->uid, l->uid_gid, 0700);
	err = err ?: set_owner(root, 0, l->pin_gid, 0750);
	pin_path(path, sizeof(path), root, EBPFMON_PIN_MAPS, NULL);
	err = err ?: set_owner(path, 0, l->pin_gid, 0750);
	err = err
		      ?: set_owner_all(path, 0, l->pin_gid, 0640, l->uid, analyzer_maps,
				       sizeof(analyzer_maps) / sizeof(analyzer_maps[0]), false);
	pin_path(path, sizeof(path), root, EBPFMON_PIN_PROGS, NULL);
	err = err ?: set_owner(path, 0, 0, 0700);
	err = err ?: set_owner_all(path, 0, 0, 0600, 0, NULL, 0, false);
	pin_path(path, sizeof(path), root, EBPFMON_PIN_LINKS, NULL);
	err = err ?: set_owner_all(path, l->uid, l->uid_gid, 0600, 0, NULL, 0, true);
	err = err ?: set_owner(path, l->uid, l->uid_gid, 0700);
	return err;
}

/*
 * links/ and its pins back to root, and with maps the maps an earlier run handed to the
 * analyzer's user (hand_over_pins()): root without CAP_DAC_OVERRIDE may neither open nor
 * remove a pin that is its user's. A loader that ended without removing its links (a crash, a failed privilege
 * drop) left them attached meanwhile: bans stay enforced. An analyzer that runs keeps the map
 * fds it holds; hand_over_pins() gives the maps back before the loader is ready.
 */
static int reclaim_pins(const struct loader *l, bool maps)
{
	char path[PIN_PATH_MAX];
	int err;

	pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_LINKS, NULL);
	err = set_owner(path, 0, 0, 0700);
	err = err ?: set_owner_all(path, 0, 0, 0600, 0, NULL, 0, true);
	if (!maps)
		return err;
	pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_MAPS, NULL);
	return err ?: set_owner_all(path, 0, (gid_t)-1, 0640, 0, NULL, 0, false);
}

static int resolve_ids(struct loader *l)
{
	const struct passwd *pw = getpwnam(l->cfg->user);
	const struct group *gr;

	if (!pw) {
		log_error(
			"user '%s' does not exist (create it, e.g. with packaging/install-deps.sh, "
			"or choose another with --user)",
			l->cfg->user);
		return -ESRCH;
	}
	l->uid = pw->pw_uid;
	l->uid_gid = pw->pw_gid;
	gr = getgrnam(l->cfg->group);
	if (!gr) {
		log_error("group '%s' does not exist (choose another with --group)", l->cfg->group);
		return -ESRCH;
	}
	l->pin_gid = gr->gr_gid;
	if (l->uid == 0) {
		log_error("user '%s' is root: the loader must drop to an unprivileged user",
			  l->cfg->user);
		return -EINVAL;
	}
	return 0;
}

/* BPF_LINK_DETACH of fd, pinned at path; raw tracepoint links cannot be: not logged. */
static void detach_link(int fd, const char *path)
{
	if (bpf_link_detach(fd) && errno != EOPNOTSUPP && errno != EINVAL)
		log_warn("cannot detach the link pinned at %s: %s", path, strerror(errno));
}

/*
 * Detach the links this run made and remove their pins. Detached first (BPF_LINK_DETACH,
 * which needs only the link's fd): a pin removed is the program's detachment only when it
 * was the last reference, and a second name of the pin, or an fd, that the loader's user
 * kept elsewhere would keep XDP attached (and the next start out: EBUSY). Links that cannot
 * be detached (raw tracepoints) go with their last reference as before. Not when links/ is
 * no longer the folder this run locked (the pin root was removed and made again, and another
 * loader may have pinned its own links there under the same names, or taken these over).
 */
static void unpin_links(struct loader *l)
{
	char path[PIN_PATH_MAX];
	struct stat held, now;

	pin_path(path, sizeof(path), l->cfg->pin_root, EBPFMON_PIN_LINKS, NULL);
	if (l->n_links && l->links_fd >= 0 && !fstat(l->links_fd, &held) &&
	    (stat(path, &now) || now.st_dev != held.st_dev || now.st_ino != held.st_ino)) {
		log_warn("%s is no longer the folder this loader locked: leaving the link pins "
			 "there as they are",
			 path);
		for (unsigned int i = 0; i < l->n_links; i++)
			close(l->links[i].fd);
		l->n_links = 0;
		return;
	}
	for (unsigned int i = 0; i < l->n_links; i++) {
		detach_link(l->links[i].fd, l->links[i].path);
		if (unlink(l->links[i].path) && errno != ENOENT)
			log_warn("cannot remove link pin %s: %s", l->links[i].path,
				 strerror(errno));
		close(l->links[i].fd);
	}
	l->n_links = 0;
}

#define PROG_STATS_EVERY_US (5 * 1000000ull) /* prog_stats is refreshed this often */

/*
 * Copy each program's run statistics (bpf_prog_info) into the prog_stats map, where the
 * unprivileged analyzer reads them: the loader keeps the program fds it loaded, which serve
 * after it gave up every capability. 0 or -errno (not logged: the next round tries again).
 */
static int prog_stats_copy(struct loader *l)
{
	const struct bpf_program *progs[EBPFMON_PROG_STATS_MAX] = {
		[EBPFMON_PROG_XDP_INGRESS] = l->cfg->xdp_mode == CONFIG_XDP_TC
						     ? l->skel->progs.tc_ingress
						     : l->skel->progs.xdp_ingress,
		[EBPFMON_PROG_EGRESS_ACCOUNT] = l->skel->progs.egress_account,
		[EBPFMON_PROG_SOCK_STATE] = l->skel->progs.sock_state,
		[EBPFMON_PROG_BLOCK_IO] = l->skel->progs.block_io,
		[EBPFMON_PROG_STREAM_VERDICT] = l->skel->progs.stream_verdict,
		[EBPFMON_PROG_STREAM_SOCKOPS] = l->skel->progs.stream_sockops,
	};
	int map = bpf_map__fd(l->skel->maps.prog_stats), err = 0;

	for (__u32 i = 0; i < EBPFMON_PROG_STATS_MAX; i++) {
		struct ebpfmon_prog_stats st = {0};
		struct bpf_prog_info info = {0};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(progs[i]);

		if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
			st.run_time_ns = info.run_time_ns;
			st.run_cnt = info.run_cnt;
			st.id = info.id;
			memcpy(st.name, info.name, sizeof(st.name) - 1);
		}
		if (bpf_map_update_elem(map, &i, &st, BPF_ANY))
			err = -errno;
	}
	return err;
}

static int on_prog_stats(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct loader *l = userdata;
	int r;

	prog_stats_copy(l);
	/* the lock on links/ that another process held at the start, once it is let go */
	if (!l->links_locked && l->links_fd >= 0 && !flock(l->links_fd, LOCK_EX | LOCK_NB)) {
		l->links_locked = true;
		log_info("took the lock on links/ that another process held at the start");
	}
	r = sd_event_source_set_time(s, usec + PROG_STATS_EVERY_US);
	return r < 0 ? r : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* SIGTERM/SIGINT end the loop; SIGHUP is the analyzer's business. */
static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)userdata;
	if (si->ssi_signo == SIGHUP) {
		log_info("SIGHUP: the analyzer reloads the configuration; nothing to do here");
		return 0;
	}
	log_info("%s: detaching the programs, keeping the maps",
		 si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

int loader_run(const struct config *cfg)
{
	struct loader l = {.cfg = cfg, .lock_fd = -1, .links_fd = -1, .cg_fd = -ENOENT};
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	char maps_dir[PIN_PATH_MAX];
	struct stat netns;
	struct mapconf_fds fds;
	sd_event *event = NULL;
	int err, ret = LOADER_EXIT_FAIL;
	bool settings_new;

	if (geteuid() != 0) {
		log_error("ebpfmon-loader must be started as root (it gives root up once loaded)");
		return LOADER_EXIT_FAIL;
	}
	/* Signals are read by the event loop: block them before anything else can start. */
	if (daemon_event_new(&event, on_signal, NULL))
		return LOADER_EXIT_FAIL;

	libbpf_set_print(libbpf_log);
	/* a mistyped interface is refused before anything is loaded or pinned */
	for (unsigned int i = 0; i < cfg->n_interfaces; i++) {
		struct netif_info ifi;

		if (netif_get(cfg->interfaces[i], &ifi) == -ENODEV || !ifi.ifindex) {
			log_error("interface %s does not exist (ebpfmon-loader --list-interfaces "
				  "shows those that do)",
				  cfg->interfaces[i]);
			goto out;
		}
	}
	if (resolve_ids(&l) || pin_root_setup(&l))
		goto out;
	/* Connections are counted in the namespace of the monitored interfaces: ours. */
	if (stat("/proc/self/ns/net", &netns)) {
		log_error("cannot stat /proc/self/ns/net: %s", strerror(errno));
		goto out;
	}

	pin_path(maps_dir, sizeof(maps_dir), cfg->pin_root, EBPFMON_PIN_MAPS, NULL);
	opts.pin_root_path = maps_dir;
	l.skel = ebpfmon__open_opts(&opts);
	if (!l.skel) {
		log_error("cannot open the BPF object: %s", strerror(errno));
		goto out;
	}
	bpf_map__set_max_entries(l.skel->maps.ip_stats, cfg->max_tracked_ips);
	bpf_map__set_max_entries(l.skel->maps.events, cfg->event_buffer_kb * 1024);
	bpf_map__set_max_entries(l.skel->maps.bans, cfg->max_bans);
	l.skel->rodata->mon_netns_ino = (__u32)netns.st_ino;
	log_info("connections are counted for sockets of this network namespace only "
		 "(net:[%llu])",
		 (unsigned long long)netns.st_ino);
	choose_programs(&l);
	drop_incompatible_pins(&l);
	/* settings belong to the analyzer once it runs: fill them only in a map made now */
	settings_new = access(bpf_map__pin_path(l.skel->maps.settings), F_OK) != 0;
	err = ebpfmon__load(l.skel);
	if (err) {
		log_error("cannot load the BPF programs: %s%s (run with -v for the verifier log)",
			  strerror(-err),
			  privdrop_cap_hint(err, PRIVDROP_CAP(CAP_BPF) | PRIVDROP_CAP(CAP_PERFMON) |
							 PRIVDROP_CAP(CAP_NET_ADMIN)));
		goto out;
	}
	fds = (struct mapconf_fds){
		.settings = bpf_map__fd(l.skel->maps.settings),
		.allow_nets = bpf_map__fd(l.skel->maps.allow_nets),
		.url_rules = bpf_map__fd(l.skel->maps.url_rules),
		.ban_nets = bpf_map__fd(l.skel->maps.ban_nets),
	};
	if (settings_new)
		log_info("map settings created: filled from the configuration");
	else
		log_info("map settings reused: kept as they are (the analyzer owns them)");
	if (mapconf_apply(&fds, cfg, MAPCONF_RULES | (settings_new ? MAPCONF_SETTINGS : 0)) ||
	    pin_programs(&l) || attach_all(&l) || hand_over_pins(&l))
		goto out_unpin;

	if (privdrop(l.uid, l.pin_gid))
		goto out_unpin;
	snprintf(l.status, sizeof(l.status),
		 "attached to %u interface(s), pins in %s, running as %s", cfg->n_interfaces,
		 cfg->pin_root, cfg->user);
	log_info("ready: %s", l.status);
	sd_notifyf(0, "READY=1\nSTATUS=%s", l.status);

	/* Unprivileged from here: wait for SIGTERM/SIGINT, ping the watchdog, copy prog_stats. */
	prog_stats_copy(&l);
	if (sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, PROG_STATS_EVERY_US, 1000000,
				       on_prog_stats, &l) < 0)
		log_warn("cannot arm the prog_stats timer: the programs' statistics stay as now");
	if (daemon_event_run(event) == 0)
		ret = LOADER_EXIT_OK;
out_unpin:
	sd_notify(0, "STOPPING=1");
	/* Failed while still root: links/ may be the user's already, root takes it back first. */
	if (geteuid() == 0)
		reclaim_pins(&l, false);
	unpin_links(&l);
out:
	ebpfmon__destroy(l.skel);
	if (l.links_fd >= 0)
		close(l.links_fd);
	if (l.lock_fd >= 0)
		close(l.lock_fd);
	if (l.cg_fd >= 0)
		close(l.cg_fd);
	sd_event_unref(event);
	return ret;
}

/*
 * Remove what the folder dirfd (named path, for messages) holds, folders too (up to depth
 * levels, each taken by root first: CAP_CHOWN), through descriptors: nothing is followed
 * (O_NOFOLLOW, unlinkat()), whatever the user who owned analyzer/ or links/ may have left.
 * 0 or the last -errno (each logged).
 */
static int remove_entries(int dirfd, const char *path, int depth)
{
	char sub[PIN_PATH_MAX];
	struct dirent *de;
	struct stat st;
	int fd = dup(dirfd), err = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		log_error("cannot list %s: %s", path, strerror(-err));
		return err;
	}
	while ((de = readdir(d))) {
		bool dir;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		dir = !fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISDIR(st.st_mode);
		if (dir && depth > 0) {
			int subfd = openat(dirfd, de->d_name,
					   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			/* ours first: root without CAP_DAC_OVERRIDE may not write another's */
			if (subfd >= 0 &&
			    (fchown(subfd, geteuid(), (gid_t)-1) || fchmod(subfd, 0700)))
				log_warn("cannot take %s: %s", sub, strerror(errno));
			if (subfd >= 0) {
				int r = remove_entries(subfd, sub, depth - 1);

				close(subfd);
				if (r)
					err = r;
			}
		}
		if (unlinkat(dirfd, de->d_name, dir ? AT_REMOVEDIR : 0)) {
			err = -errno;
			log_error("cannot remove %s: %s", sub, strerror(-err));
		}
	}
	closedir(d);
	return err;
}

/*
 * Detach every link pinned in dir (BPF_LINK_DETACH): a second name or an fd kept elsewhere
 * would otherwise keep a program attached once the pins are removed.
 */
static void detach_all(const char *dir)
{
	char path[PIN_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		int fd;

		if (join_path(path, sizeof(path), dir, de->d_name) || lstat(path, &st) ||
		    !S_ISREG(st.st_mode))
			continue;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			detach_link(fd, path);
			close(fd);
		}
	}
	if (d)
		closedir(d);
}

/* Remove every entry of a pin folder and the folder; 0 when it is not there. */
static int remove_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), err;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		err = -errno;
		log_error("cannot open %s: %s", dir, strerror(-err));
		return err;
	}
	err = remove_entries(fd, dir, REMOVE_DEPTH);
	close(fd);
	if (!err && rmdir(dir)) {
		err = -errno;
		log_error("cannot remove %s: %s", dir, strerror(errno));
	}
	return err;
}

int loader_unload(const struct config *cfg)
{
	const char *subs[] = {EBPFMON_PIN_LINKS, EBPFMON_PIN_PROGS, EBPFMON_PIN_MAPS,
			      EBPFMON_PIN_ANALYZER};
	char path[PIN_PATH_MAX];
	int fd = -1, err = 0;

	if (geteuid() != 0) {
		log_error("--unload must be run as root");
		return LOADER_EXIT_FAIL;
	}
	if (access(cfg->pin_root, F_OK)) {
		if (errno == ENOENT) {
			log_info("nothing to unload: %s does not exist", cfg->pin_root);
			return LOADER_EXIT_OK;
		}
		log_error("cannot open %s: %s", cfg->pin_root, strerror(errno));
		return LOADER_EXIT_FAIL;
	}
	/* only pins are removed: a pin root elsewhere (a typo) holds someone's files */
	if (!on_bpffs(cfg->pin_root)) {
		log_error("%s is not on a BPF filesystem (bpffs): nothing of ebpfmon's can be "
			  "pinned there, and nothing is removed",
			  cfg->pin_root);
		return LOADER_EXIT_FAIL;
	}
	/* only folders a loader made are looked into: nothing is followed or removed elsewhere */
	{
		const struct passwd *pw = getpwnam(cfg->user);
		uid_t user = pw ? pw->pw_uid : 0;

		if (folder_ours(cfg->pin_root, 0))
			return LOADER_EXIT_FAIL;
		struct stat st;

		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
			pin_path(path, sizeof(path), cfg->pin_root, subs[i], NULL);
			if (!lstat(path, &st) && folder_ours(path, user))
				return LOADER_EXIT_FAIL;
		}
	}
	/* a running loader holds progs/ (lock_folder()); without progs/ none runs here */
	pin_path(path, sizeof(path), cfg->pin_root, EBPFMON_PIN_PROGS, NULL);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return LOADER_EXIT_FAIL;
	}
	if (fd >= 0 && lock_folder(fd)) {
		log_error("an ebpfmon-loader is running on %s: stop it first", cfg->pin_root);
		close(fd);
		return LOADER_EXIT_FAIL;
	}
	/*
	 * links/ and analyzer/ are the loader's user's: root without CAP_DAC_OVERRIDE (the
	 * unit's) takes them back before it may list them (CAP_CHOWN).
	 */
	{
		const struct loader l = {.cfg = cfg};

		pin_path(path, sizeof(path), cfg->pin_root, EBPFMON_PIN_LINKS, NULL);
		if (!access(path, F_OK) && !reclaim_pins(&l, false))
			detach_all(path);
		pin_path(path, sizeof(path), cfg->pin_root, EBPFMON_PIN_ANALYZER, NULL);
		if (!access(path, F_OK))
			set_owner(path, 0, 0, 0700);
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		int r;

		pin_path(path, sizeof(path), cfg->pin_root, subs[i], NULL);
		r = remove_dir(path);
		if (r)
			err = r; /* the last failure is reported; the other folders are removed */
	}
	if (fd >= 0)
		close(fd);
	if (!err && rmdir(cfg->pin_root)) {
		err = -errno;
		log_error("cannot remove %s: %s", cfg->pin_root, strerror(errno));
	}
	if (err)
		return LOADER_EXIT_FAIL;
	log_info("unloaded: removed every pin under %s; the programs are detached", cfg->pin_root);
	return LOADER_EXIT_OK;
}
