/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The rig of the end-to-end benchmarks (ban_latency, analyzer_rss): two network namespaces
 * and a veth pair made by the benchmark, the real ebpfmon-loader attached to the monitored
 * end on a private pin root, and the real ebpfmon-analyzer run as user ebpfmon with no
 * capabilities, the way test/integration/nstest.py runs them.
 *
 * Names carry the benchmark's pid: namespaces ebb-mon-PID / ebb-peer-PID, pin root
 * /sys/fs/bpf/ebpfmon-bench-PID, temporary folder /tmp/ebpfmon-bench-PID-XXXXXX. Only
 * 198.18.0.0/15 addresses are used, and only inside the namespaces.
 *
 * Everything made is undone by nsb_cleanup(), which runs at exit (atexit) and so after
 * SIGINT/SIGTERM/SIGHUP too: those only set nsb_interrupted, which every wait here checks
 * (returning -EINTR), so that the benchmark unwinds to its normal exit. Leftovers of a run
 * killed with SIGKILL are reaped by the next run (nsb_init()), matched on the naming
 * pattern and a pid that no longer exists.
 *
 * Single-threaded: nsb_socket() switches the calling thread's network namespace.
 */
#ifndef EBPFMON_BENCH_NSBENCH_H
#define EBPFMON_BENCH_NSBENCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NSB_MON_V4  "198.18.0.1"
#define NSB_PEER_V4 "198.18.0.2"

extern volatile sig_atomic_t nsb_interrupted;

struct nsb {
	const char *prog;
	char mon_ns[32], peer_ns[32];
	char mon_if[16], peer_if[16];
	char pin_root[64];
	char tmpdir[64];
	char conf[128];
	char loader[PATH_MAX], analyzer[PATH_MAX];
	char loader_log[128], analyzer_log[128];
	char notify_path[100]; /* fits sun_path */
	int notify_fd;
	int orig_netns, mon_netns, peer_netns; /* fds of /proc/self/ns/net and /run/netns/X */
	pid_t loader_pid, analyzer_pid;
	unsigned int analyzer_runs;
	const char *api_lines; /* more lines of [api] for nsb_write_conf() (NULL: none) */
	bool made_mon, made_peer;
};

/*
 * Fill n for prog, install the signal handlers and the exit cleanup, reap leftovers of
 * earlier runs. loader/analyzer NULL: the binaries of the build tree this benchmark belongs
 * to (../../loader/ebpfmon-loader, ../../analyzer/ebpfmon-analyzer next to the executable).
 * Exits 77 (skipped) without root or without the user ebpfmon, 1 when a tool or binary is
 * missing.
 */
void nsb_init(struct nsb *n, const char *prog, const char *loader, const char *analyzer);

/*
 * mon (NSB_MON_V4/16) <-veth-> peer (NSB_PEER_V4/16), plus n_extra /32 addresses on the peer
 * end (extra_peer_v4[i], text). Checks that the peer reaches the monitor side. 0 or -errno.
 */
int nsb_topology(struct nsb *n, char *const *extra_peer_v4, size_t n_extra);

/*
 * Write the configuration file (0644 in a 0755 folder: the analyzer reads it as ebpfmon):
 * network_lines under [network]; the pin root, a private database and API socket are added.
 * 0 or -errno.
 */
int nsb_write_conf(struct nsb *n, const char *network_lines);

/* Start the loader in the monitor namespace on the veth; wait for its READY=1. 0 or -errno. */
int nsb_start_loader(struct nsb *n, unsigned int timeout_s);

/* Start the analyzer (user ebpfmon, no capabilities); wait for its "ready" line. 0 or -errno. */
int nsb_start_analyzer(struct nsb *n, unsigned int timeout_s);

/* SIGTERM the analyzer (SIGKILL after 5 s); its exit status, or -errno. */
int nsb_stop_analyzer(struct nsb *n);

/* True while the analyzer still runs (prints its log tail once when it has died). */
bool nsb_analyzer_alive(struct nsb *n);

/*
 * The analyzer's database, TMPDIR/var/ebpfmon.db, into path: 0, or -ELOOP when it is not a
 * regular file (var/ is the analyzer's user's: a link there would have root read another
 * file), or -errno of lstat(). For reading it as root, read-only.
 */
int nsb_db_path(const struct nsb *n, char *path, size_t len);

/* A pinned map of the loader, opened read-write (we are root). fd or -errno. */
int nsb_map_fd(const struct nsb *n, const char *name);

/*
 * Write n entries to ip_stats (fd), IPv4 first_v4 (host order) upwards, the same per-CPU
 * value on every CPU, packet counts spread so that a top-N means something, last seen now:
 * a busy host's map. 0, -EINTR, or -errno (logged).
 */
int nsb_fill_ip_stats(const struct nsb *n, int fd, uint32_t first_v4, unsigned int count);

/* socket(domain, type, 0) created inside the namespace netns_fd. fd or -errno. */
int nsb_socket(const struct nsb *n, int netns_fd, int domain, int type);

/* Print the last lines of a log file to stderr, indented. */
void nsb_tail(const char *path, int lines);

/* Sleep ms milliseconds unless interrupted: 0 or -EINTR. */
int nsb_sleep_ms(unsigned int ms);

/* Undo everything nsb_* made; idempotent. Also run at exit. */
void nsb_cleanup(void);

#endif /* EBPFMON_BENCH_NSBENCH_H */
