/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Helpers of the benchmarks that run third-party programs beside the nsbench.h rig
 * (throughput: iperf3; f2b_latency: nginx, fail2ban, nft): run a command and keep its output,
 * start a server in one of the rig's namespaces, stop it, stop and restart the loader, and a
 * topology on a /24 of the benchmark's choosing.
 *
 * Every process started with bp_spawn() is stopped by bp_cleanup(), which bp_init() registers
 * with atexit() after nsb_init() has registered nsb_cleanup(): exit handlers run in reverse
 * order, so the servers go before the namespaces they run in.
 */
#ifndef EBPFMON_BENCH_BENCHPROC_H
#define EBPFMON_BENCH_BENCHPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "nsbench.h"

/* Register bp_cleanup() at exit. Call once, after nsb_init(). */
void bp_init(void);

/*
 * Run argv (NULL-terminated; argv[0] looked up in PATH) with stdin from /dev/null, in the
 * namespace netns (a name under /run/netns, NULL: this one), and wait for it. Its stdout and
 * stderr together go to out (NUL-terminated, cut at outlen - 1 bytes; out may be NULL).
 * Returns the exit status (128 + signal when killed), or -errno when it cannot start;
 * -EINTR when the benchmark was interrupted (the command is then killed).
 */
int bp_run(const char *netns, char *const argv[], char *out, size_t outlen);

/*
 * Start argv in the background in the namespace netns (NULL: this one), stdout and stderr to
 * log_path (truncated), in its own process group, with SIGTERM when this process dies.
 * Returns its pid (nsenter execs the program: the pid is the program's), or -errno.
 */
pid_t bp_spawn(const char *netns, char *const argv[], const char *log_path);

/* SIGTERM pid, SIGKILL after 5 s; *pid becomes 0. Its exit status, or -errno. */
int bp_stop(pid_t *pid, const char *name);

/* Wait up to ms for pid to exit by itself (asked some other way), then bp_stop() it. */
int bp_wait_exit(pid_t *pid, const char *name, unsigned int ms);

/*
 * Stop the rig's analyzer (if running) and loader: the loader removes its link pins, which
 * detaches XDP and the egress program; the maps stay pinned for the next nsb_start_loader().
 * 0, or -errno.
 */
int bp_stop_daemons(struct nsb *n);

/*
 * The rig's two namespaces and veth pair (names from nsb_init()) with mon_addr and
 * peer_addr ("198.18.210.1/24" ...) instead of nsb_topology()'s /16, so that a benchmark
 * keeps to a subnet of its own. Fills the fields nsb_cleanup() undoes. 0 or -errno.
 */
int bp_topology(struct nsb *n, const char *mon_addr, const char *peer_addr);

/* Whether the rig's monitored interface has an XDP program attached (ip link), or -errno. */
int bp_xdp_attached(const struct nsb *n);

#endif /* EBPFMON_BENCH_BENCHPROC_H */
