// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ebpfmon_abi.h"
#include "log.h"
#include "mapwalk.h"

struct map_spec {
	const char *name;
	size_t off;
	bool writable;
};

static const struct map_spec specs[] = {
	{EBPFMON_MAP_BANS, offsetof(struct maps, bans), true},
	{EBPFMON_MAP_BAN_NETS, offsetof(struct maps, ban_nets), true},
	{EBPFMON_MAP_ALLOW_NETS, offsetof(struct maps, allow_nets), true},
	{EBPFMON_MAP_URL_RULES, offsetof(struct maps, url_rules), true},
	{EBPFMON_MAP_SETTINGS, offsetof(struct maps, settings), true},
	{EBPFMON_MAP_EVENTS, offsetof(struct maps, events), true},
	{EBPFMON_MAP_IP_STATS, offsetof(struct maps, ip_stats), false},
	{EBPFMON_MAP_CONN_COUNT, offsetof(struct maps, conn_count), false},
	{EBPFMON_MAP_COUNTERS, offsetof(struct maps, counters), false},
	{EBPFMON_MAP_PROC_IO, offsetof(struct maps, proc_io), false},
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))
_Static_assert(N_SPECS == sizeof(((struct maps *)0)->ids) / sizeof(unsigned int),
	       "struct maps: one id per map");

static int *map_fd(struct maps *m, size_t i)
{
	return (int *)((char *)m + specs[i].off);
}

unsigned long long maps_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

bool maps_ban_in_force(const struct ebpfmon_ban *ban, unsigned long long now)
{
	return !ban->expires_ns || ban->expires_ns > now;
}

int maps_counters_sum(const struct maps *m, struct ebpfmon_counters *sum)
{
	int ncpus = libbpf_num_possible_cpus();
	__u32 zero = 0;

	_Static_assert(sizeof(*sum) % sizeof(__u64) == 0, "counters: only __u64 fields");
	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	{
		struct ebpfmon_counters c[ncpus];
		__u64 *out = (__u64 *)sum;

		if (bpf_map_lookup_elem(m->counters, &zero, c))
			return -errno;
		memset(sum, 0, sizeof(*sum));
		for (int i = 0; i < ncpus; i++) {
			const __u64 *v = (const __u64 *)&c[i];

			for (size_t f = 0; f < sizeof(*sum) / sizeof(__u64); f++)
				out[f] += v[f];
		}
	}
	return 0;
}

struct in_force {
	unsigned long long now;
	long n;
};

static int in_force_one(const void *key, const void *value, void *ctx)
{
	struct in_force *f = ctx;

	(void)key;
	f->n += maps_ban_in_force(value, f->now);
	return 0;
}

long maps_bans_in_force(int fd, size_t key_size)
{
	struct in_force f = {.now = maps_boot_ns()};
	long n = maps_walk(fd, key_size, sizeof(struct ebpfmon_ban), in_force_one, &f);

	return n < 0 ? n : f.n;
}

void maps_close(struct maps *m)
{
	for (size_t i = 0; i < N_SPECS; i++) {
		int *fd = map_fd(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	if (m->lock >= 0)
		close(m->lock); /* releases the flock */
	m->lock = -1;
}

/* "name (uid N, groups a, b)" of the effective user, for messages about permissions. */
static void describe_user(char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(geteuid());
	gid_t groups[32];
	int n = getgroups(32, groups);
	size_t off;

	off = snprintf(buf, len, "%s (uid %u, groups ", pw ? pw->pw_name : "?",
		       (unsigned int)geteuid());
	if (n <= 0) {
		groups[0] = getegid();
		n = 1;
	}
	for (int i = 0; i < n && off < len; i++) {
		const struct group *gr = getgrgid(groups[i]);

		if (gr)
			off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "", gr->gr_name);
		else
			off += snprintf(buf + off, len - off, "%s%u", i ? ", " : "",
					(unsigned int)groups[i]);
	}
	if (off < len)
		snprintf(buf + off, len - off, ")");
}

/*
 * Which object refuses this user access to path: the deepest of path and its folders that
 * the user can stat (a folder above one that cannot be stat()ed lacks search permission for
 * it). Writes "PATH (owner U, group G, mode 0750)" to what. Returns true when that object lies
 * at or under pin_root and is still root:root, that is, the loader may not have handed its
 * pins over yet (it pins as root and chowns afterwards): worth waiting for.
 */
static bool denied_by(const char *path, const char *pin_root, char *what, size_t len)
{
	char p[512], user[32], group[32];
	const struct passwd *pw;
	const struct group *gr;
	struct stat st;
	char *slash;

	snprintf(p, sizeof(p), "%s", path);
	while (stat(p, &st)) {
		slash = strrchr(p, '/');
		if (!slash || slash == p) {
			snprintf(what, len, "%s", path);
			return false;
		}
		*slash = '\0';
	}
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	snprintf(user, sizeof(user), "%s", pw ? pw->pw_name : "?");
	snprintf(group, sizeof(group), "%s", gr ? gr->gr_name : "?");
	if (!pw)
		snprintf(user, sizeof(user), "%u", (unsigned int)st.st_uid);
	if (!gr)
		snprintf(group, sizeof(group), "%u", (unsigned int)st.st_gid);
	snprintf(what, len, "%s (%s, owner %s, group %s, mode %04o)", p,
		 S_ISDIR(st.st_mode) ? "folder" : "pin", user, group, st.st_mode & 07777);
	return !strncmp(p, pin_root, strlen(pin_root)) &&
	       (p[strlen(pin_root)] == '\0' || p[strlen(pin_root)] == '/') && st.st_uid == 0 &&
	       st.st_gid == 0;
}

static int open_one(const char *path, bool writable)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = writable ? 0 : BPF_F_RDONLY);
	int fd = bpf_obj_get_opts(path, &opts);

	return fd < 0 ? -errno : fd;
}

/* The kernel's id of the map behind fd; 0 when it cannot be read. */
static unsigned int map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

int maps_check(const struct maps *m, const char *pin_root, char *what, size_t len)
{
	char path[512];
	struct stat now;
	unsigned int id;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_root, EBPFMON_PIN_MAPS);
	if (stat(path, &now)) {
		fd = -errno;
		snprintf(what, len, "%s: %s", path, strerror(-fd));
		return fd;
	}
	if (m->maps_ino && (now.st_dev != m->maps_dev || now.st_ino != m->maps_ino)) {
		snprintf(what, len, "%s is a new folder (inode %llu, the opened one %llu)", path,
			 (unsigned long long)now.st_ino, m->maps_ino);
		return 1;
	}
	for (size_t i = 0; i < N_SPECS; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", pin_root, EBPFMON_PIN_MAPS, specs[i].name);
		fd = open_one(path, false);
		if (fd < 0) {
			snprintf(what, len, "%s: %s", path, strerror(-fd));
			return fd;
		}
		id = map_id(fd);
		close(fd);
		if (id && m->ids[i] && id != m->ids[i]) {
			snprintf(what, len, "%s is map id %u, this analyzer holds id %u", path, id,
				 m->ids[i]);
			return 1;
		}
	}
	return 0;
}

/* Log that the pin at path refused this user (err), naming what refuses and the remedy. */
static void log_refused(const char *path, const char *pin_root, bool writable, int err,
			const char *hint)
{
	char what[700], user[512];

	denied_by(path, pin_root, what, sizeof(what));
	describe_user(user, sizeof(user));
	log_error("cannot open map %s (%s): %s: refused by %s to user %s; %s", path,
		  writable ? "read-write" : "read-only", strerror(-err), what, user, hint);
}

int maps_open(struct maps *m, const char *pin_root, unsigned int wait_s)
{
	struct timespec start, now;
	char path[512], what[700];
	bool said = false;
	struct stat st;
	int fd;

	for (size_t i = 0; i < N_SPECS; i++) {
		*map_fd(m, i) = -1;
		m->ids[i] = 0;
	}
	m->lock = -1;
	m->maps_dev = m->maps_ino = 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t i = 0; i < N_SPECS; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", pin_root, EBPFMON_PIN_MAPS, specs[i].name);
		for (;;) {
			fd = open_one(path, specs[i].writable);
			if (fd == -EACCES || fd == -EPERM) {
				/*
				 * Refused by a pin or folder the loader has handed over already:
				 * waiting cannot help. Still root:root: the loader is between
				 * pinning and handing over, wait.
				 */
				if (!denied_by(path, pin_root, what, sizeof(what))) {
					log_refused(
						path, pin_root, specs[i].writable, fd,
						"run the analyzer as a member of the pins' group "
						"([loader] group)");
					maps_close(m);
					return fd;
				}
			} else if (fd != -ENOENT) {
				break;
			}
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - start.tv_sec) * 1000000000ll + now.tv_nsec -
				    start.tv_nsec >=
			    (long long)wait_s * 1000000000ll)
				break;
			if (!said) {
				log_info("waiting up to %us for ebpfmon-loader to pin %s", wait_s,
					 path);
				said = true;
			}
			usleep(100 * 1000);
		}
		if (fd == -EACCES || fd == -EPERM) {
			log_refused(path, pin_root, specs[i].writable, fd,
				    "has ebpfmon-loader finished handing its pins over?");
			maps_close(m);
			return fd;
		}
		if (fd < 0) {
			log_error("cannot open map %s (%s): %s%s", path,
				  specs[i].writable ? "read-write" : "read-only", strerror(-fd),
				  fd == -ENOENT ? "; is ebpfmon-loader running?" : "");
			maps_close(m);
			return fd;
		}
		*map_fd(m, i) = fd;
		m->ids[i] = map_id(fd);
	}
	snprintf(path, sizeof(path), "%s/%s", pin_root, EBPFMON_PIN_MAPS);
	if (!stat(path, &st)) {
		m->maps_dev = st.st_dev;
		m->maps_ino = st.st_ino;
	}
	return 0;
}

/* The pid holding a flock on (dev, ino) according to /proc/locks; 0 when not found. */
static long flock_holder(dev_t dev, ino_t ino)
{
	char line[256];
	FILE *f = fopen("/proc/locks", "re");
	long pid = 0;

	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		unsigned int maj, min;
		unsigned long long i;
		long p;

		/* "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; "1: -> FLOCK ..." waits */
		/* NOLINTNEXTLINE(cert-err34-c): /proc/locks is the kernel's; pid and inode fit */
		if (sscanf(line, "%*d: FLOCK %*s %*s %ld %x:%x:%llu", &p, &maj, &min, &i) == 4 &&
		    makedev(maj, min) == dev && i == (unsigned long long)ino)
			pid = p;
	}
	fclose(f);
	return pid;
}

int maps_lock(struct maps *m, const char *pin_root)
{
	char path[512];
	struct stat st;
	long pid;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", pin_root, EBPFMON_PIN_ANALYZER);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		char what[700], user[512];

		err = -errno;
		if (err == -ENOENT) {
			log_error(
				"cannot open %s to lock it: %s (ebpfmon-loader makes it; a loader "
				"of an older version did not: restart the loader)",
				path, strerror(-err));
			return err;
		}
		denied_by(path, pin_root, what, sizeof(what));
		describe_user(user, sizeof(user));
		log_error("cannot open %s to lock it: %s: refused by %s to user %s%s", path,
			  strerror(-err), what, user,
			  err == -EACCES ? "; run the analyzer as the user the loader becomes "
					   "([loader] user)"
					 : "");
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		m->lock = fd;
		return 0;
	}
	err = -errno;
	if (err != -EWOULDBLOCK) {
		log_error("cannot lock %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	pid = fstat(fd, &st) ? 0 : flock_holder(st.st_dev, st.st_ino);
	close(fd);
	if (pid > 0)
		log_error("another ebpfmon-analyzer (pid %ld) is already running on %s (it holds "
			  "the lock on %s): not starting a second one",
			  pid, pin_root, path);
	else
		log_error("another ebpfmon-analyzer is already running on %s (a process of another "
			  "pid namespace holds the lock on %s): not starting a second one",
			  pin_root, path);
	return -EBUSY;
}

int maps_prog_stats(const char *pin_root, struct ebpfmon_prog_stats *out, size_t n)
{
	LIBBPF_OPTS(bpf_obj_get_opts, ro, .file_flags = BPF_F_RDONLY);
	char path[PATH_MAX];
	size_t got = 0;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/maps/%s", pin_root, EBPFMON_MAP_PROG_STATS);
	fd = bpf_obj_get_opts(path, &ro);
	if (fd < 0)
		return -errno;
	for (__u32 i = 0; i < EBPFMON_PROG_STATS_MAX && got < n; i++) {
		struct ebpfmon_prog_stats st;

		if (bpf_map_lookup_elem(fd, &i, &st)) {
			err = -errno;
			break;
		}
		if (!st.id)
			continue;
		st.name[sizeof(st.name) - 1] = '\0';
		out[got++] = st;
	}
	close(fd);
	return err ? err : (int)got;
}
