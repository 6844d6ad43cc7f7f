// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ban_latency: how long after the TCP connection that crosses max_connections_per_ip the
 * offender's packets are dropped, end to end: the real loader (XDP on a veth, the socket
 * tracepoint that counts connections), the ring buffer, the real unprivileged analyzer
 * deciding and writing `bans`, and XDP dropping the next packet.
 *
 *   sudo build/test/bench/ban_latency [-n TRIALS] [-l LIMIT] [-i PROBE_US] [-b BASELINE]
 *                                     [-m MONITORING_MS] [-f FILL] [-q API_RATE] [-r ROWS]
 *                                     [-a ACTIVE] [-d SECONDS]
 *
 * The scenario by default, so that the analyzer's periodic work runs all the time beside the
 * bans, on the state an attacker makes cheaply: 100,000 addresses written to ip_stats first
 * (as on a busy host); a 200 ms monitoring interval (the walk of ip_stats, the resource
 * sample, the scans of the ban maps, the database); a database that already holds ROWS rows
 * in each of malicious_ips (ended bans), network_stats (each with its top addresses) and
 * system_anomalies (ended), written through store.c's own schema while the analyzer is
 * stopped, so that the queries read real tables and the retention (max_records, by default
 * 10000 a table) has rows to delete; ACTIVE bans in force (below); and, during the trials, an
 * API client asking API_RATE calls a second, in turn, of the ones that read the database:
 * GetMaliciousIPs with history, GetSystemAnomalies, GetNetworkStats with history.
 *
 * Bans in force (-a, 20000 by default). Each source that sends one URL probe, or crosses the
 * connection limit once, is a ban of an hour, and one IPv6 /64 supplies sources without end:
 * tens of thousands of bans in force cost an attacker nothing, and every interval the
 * analyzer walks `bans` (expiry) and compares the database's active rows with the maps
 * (reconciliation). So before the analyzer starts, with the loader's maps pinned, the
 * benchmark writes ACTIVE bans as the analyzer would have left them before a restart: hosts
 * of 2001:db8:ba7::/64 (ACTIVE_NET; no trial uses IPv6), each a row of malicious_ips (source
 * auto, reason conn_limit or url_rule with its rule, path and request, banned in the last 10
 * minutes, expires_at one hour after banned_at, ended_at NULL) and the matching entry of the
 * pinned `bans` map (expires_ns: the same deadline on CLOCK_BOOTTIME, both computed from one
 * reading of the two clocks, as the analyzer converts them), then settings.ban_gen once. It
 * also writes the analyzer's marker of the maps its bans were enforced in (analyzer_state
 * 'maps' = "BOOT_ID bans=ID ban_nets=ID", policy_maps_marker(); docs/policy.md): the
 * analyzer then starts as after a restart of its own, on maps it knows, and restores nothing.
 * That is the state of a busy host, and the one that keeps the start quiet: had it taken the
 * maps for new and restored the bans from the rows, it would have written 20000 entries and
 * logged one line each before "ready". Map and rows agree either way, so reconciliation finds
 * nothing to do whichever view the analyzer takes (the benchmark prints which it took). After
 * "ready" the benchmark counts the bans in force in the map and the active rows and stops
 * unless both are ACTIVE; both are printed again at the end. -a 0: no ban in force (the
 * scenario before this option).
 *
 * The measured window (-d, 15 s by default). The trials are paced so that they span at least
 * SECONDS from the analyzer's "ready": one every SECONDS / (TRIALS + BASELINE), the baseline
 * trials spread among the others, so that both meet the same periodic work: about 75
 * intervals, and the first retention run. Retention runs at the analyzer's first interval
 * (200 ms after its start) and then once a minute; the first run deletes the rows over
 * max_records that ROWS put there (with -a, every ended row of malicious_ips: the active ones
 * keep the table over max_records). The benchmark counts the rows of malicious_ips and
 * system_anomalies when the trials start and when they end, and says whether the retention
 * ran inside the window. A window under a minute covers only that first run; -d 70 or more
 * covers a second one (with the few rows the run itself added). -d 0: the trials back to
 * back, 10 ms apart (about a second for 200: the pacing before this option, whose baseline
 * trials all came first).
 *
 * t0 and t1. Each trial uses its own source address (the analyzer escalates repeat
 * offenders): from the peer namespace it opens LIMIT connections, checks that the address is
 * not banned yet, and opens the crossing one without waiting (a non-blocking connect()).
 * t0 is the kernel's time of the crossing: this benchmark's own tracepoint program on
 * sock:inet_sock_set_state stores bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the server's
 * socket of a connection goes from SYN_RECV to ESTABLISHED, the transition ebpfmon's raw
 * tracepoint counts, keyed by the client's address and port; the benchmark reads the entry
 * of the crossing connection. A thread of the benchmark probes from before the crossing
 * connect() is called: every PROBE_US it looks bans[addr] up (t_ban: the entry is there),
 * sends a UDP datagram from the offender and looks the entry up again; t1 is
 * CLOCK_MONOTONIC right after the look-up that first shows a drop counted by XDP (its drops
 * counter above 0). t1 - t0 therefore also holds up to one probe period, one sendto() and two
 * look-ups after the first drop. A trial whose ban was in force at the probe's first look
 * would have an upper bound for a figure; they are counted in the output (there should be
 * none: the first look comes before the connect()). The UDP socket sends one datagram before
 * the trial: the first send of a socket costs ~0.15 ms more.
 *
 * Baseline in the same run, probed the same way, by a thread started first: the benchmark
 * writes a ban itself (the entry, then settings.ban_gen, as the analyzer does); t0 is
 * CLOCK_MONOTONIC right before it writes the entry, t1 as above. It is the floor of the
 * method (probe interval, XDP, map look-ups), with no connection and no analyzer.
 *
 * At the end it reads the analyzer's /metrics: per task, the longest time one callback held
 * the analyzer's loop (ebpfmon_loop_hold_max_seconds, wall clock) and the most CPU time one
 * used (ebpfmon_loop_cpu_max_seconds), over the whole run (the start's retention included).
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails. Everything it makes (namespaces, pins, the tracepoint program,
 * temporary files) is removed at exit, also after ^C.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addr.h"
#include "bench_util.h"
#include "ebpfmon.pb-c.h"
#include "ebpfmon_abi.h"
#include "log.h"
#include "mapconf.h"
#include "mapwalk.h"
#include "nsbench.h"
#include "pkt.h"
#include "policy.h"
#include "store.h"

#define PROG "ban_latency"

#define DEFAULT_TRIALS	      200u
#define DEFAULT_LIMIT	      3u
#define DEFAULT_PROBE_US      50u
#define DEFAULT_BASELINE      50u
#define DEFAULT_WAIT_MS	      1000u
#define WARMUP		      3u
#define PAUSE_MS	      10u /* between trials: the analyzer is idle when the next one starts */
#define MAX_LIMIT	      64u
#define MAX_TRIALS	      10000u
#define MAX_BASELINE	      1000u
#define TCP_PORT	      9000
#define UDP_PORT	      9001
#define DEFAULT_MONITORING_MS 200u
#define FILL_TRACKED	      131072u
#define MAX_FILL	      130000u
#define FILL_BASE	      0xc6130000u /* 198.19.0.0: no trial address is there */
#define TARGET_P99_MS	      1.0
#define DEFAULT_FILL	      100000u
#define METRICS_PORT_BASE     20000 /* + pid % 20000, on 127.0.0.1 of the host */
#define TARGET_HOLD_US	      1000.0
#define DEFAULT_API_RATE      50u /* API calls a second during the trials */
#define MAX_API_RATE	      5000u
#define DEFAULT_ROWS	      30000u /* rows a table in the database before the analyzer starts */
#define MAX_ROWS	      1000000u
#define API_LIMIT	      100u /* rows one API call asks for */
#define STATS_TOP	      10u  /* top addresses of one network_stats row */
#define CROSSING_ENTRIES      65536u
#define DEFAULT_ACTIVE	      20000u	       /* bans in force before the analyzer starts */
#define MAX_BANS	      65536u	       /* the configuration's max_bans (its default) */
#define MAX_ACTIVE	      60000u	       /* below MAX_BANS: room for the trials' own bans */
#define ACTIVE_NET	      "2001:db8:ba7::" /* their /64: host i is ACTIVE_NET + i + 1 */
#define ACTIVE_BAN_S	      3600	       /* an hour, banned_at to expires_at */
#define ACTIVE_SPREAD_S	      600	       /* banned_at within the last 10 minutes */
#define DEFAULT_DURATION_S    15u	       /* the trials span at least this from "ready" */
#define MAX_DURATION_S	      600u
#define MAX_RECORDS	      10000u /* the configuration's max_records (its default) */

struct opts {
	unsigned int trials, limit, probe_us, baseline, wait_ms, monitoring_ms, fill;
	unsigned int api_rate, rows, active, duration_s;
	const char *loader, *analyzer;
};

/* The API client of the measured phase (a thread of its own). */
struct apiload {
	char url[200];
	unsigned int rate; /* calls a second */
	pthread_t thread;
	bool running;
	atomic_bool stop;
	uint64_t ok[3], failed[3], max_ns[3]; /* by call, read after the join */
	char err[320];			      /* the first failure */
};

struct rig {
	struct nsb ns;
	int bans_fd, settings_fd, listen_fd, sink_fd;
	int cross_map_fd, cross_prog_fd, cross_perf_fd; /* the crossing's clock */
	struct sockaddr_in srv, sink;
	uint16_t metrics_port; /* the analyzer's /metrics on 127.0.0.1 */
	struct apiload api;
};

struct sample {
	uint64_t ban_ns, drop_ns; /* from t0; 0 = not seen */
	bool at_first_look;	  /* the drop was seen at the probe's first look */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"Time from the kernel's crossing of max_connections_per_ip (the server's socket\n"
		"established) to the first packet XDP drops, with the real loader and analyzer in\n"
		"two private network namespaces, while the analyzer's periodic work and API\n"
		"queries run. Needs root; the analyzer runs as user ebpfmon without capabilities.\n"
		"\n"
		"  -n, --trials N          measured trials, one source address each (default %u)\n"
		"  -l, --limit N           max_connections_per_ip (default %u, 1..%u)\n"
		"  -i, --probe-us US       a probe every US microseconds (default %u)\n"
		"  -b, --baseline N        baseline trials: ban written by this program (default "
		"%u)\n"
		"  -w, --wait-ms MS        give up on a trial after MS (default %u)\n"
		"  -m, --monitoring-ms MS  the analyzer's monitoring_interval in ms (default %u,\n"
		"                          100..60000)\n"
		"  -f, --fill N            first write N addresses to ip_stats, as on a busy host\n"
		"                          (default %u, at most %u; max_tracked_ips is then %u)\n"
		"  -q, --api-rate N        API calls a second during the trials that read the\n"
		"                          database (default %u, 0: none, at most %u)\n"
		"  -r, --rows N            rows in each table of the database before the analyzer\n"
		"                          starts (default %u, 0: an empty database, at most %u)\n"
		"  -a, --active N          bans in force before the analyzer starts, in the map and\n"
		"                          as active rows, hosts of %s/64 banned for an hour\n"
		"                          (default %u, 0: none, at most %u; max_bans %u)\n"
		"  -d, --duration S        pace the trials so that they span at least S seconds from\n"
		"                          the analyzer's start: many intervals and the first\n"
		"                          retention run (default %u, 0: back to back, at most %u;\n"
		"                          70 or more: a second retention run too)\n"
		"      --loader PATH       ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH     ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help              this text\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -n 1000 -i 20 -m 10000\n"
		"  sudo build/test/bench/%s -a 60000 -d 30\n"
		"  sudo build/test/bench/%s -a 0 -d 0 -f 0 -m 60000 -q 0 -r 0\n"
		"\n"
		"Besides the table it prints FIGURE lines (tab-separated: id, value, baseline,\n"
		"unit, target): ban.p50_us and ban.p99_us against the baseline, the analyzer's\n"
		"ban.loop_hold_max_us (wall clock) and ban.loop_cpu_max_us (CPU time) over every\n"
		"task, ban.hold_us.TASK and ban.cpu_us.TASK for each task, and ban.active_bans\n"
		"(bans in force in the map when the trials start).\n"
		"\n"
		"A default run takes about 17 s: 2 s to set up (-a 60000: 3 s), then the trials'\n"
		"15 s.\n",
		PROG, DEFAULT_TRIALS, DEFAULT_LIMIT, MAX_LIMIT, DEFAULT_PROBE_US, DEFAULT_BASELINE,
		DEFAULT_WAIT_MS, DEFAULT_MONITORING_MS, DEFAULT_FILL, MAX_FILL, FILL_TRACKED,
		DEFAULT_API_RATE, MAX_API_RATE, DEFAULT_ROWS, MAX_ROWS, ACTIVE_NET, DEFAULT_ACTIVE,
		MAX_ACTIVE, MAX_BANS, DEFAULT_DURATION_S, MAX_DURATION_S, PROG, PROG, PROG, PROG);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { OPT_LOADER = 256, OPT_ANALYZER };
	static const struct option lo[] = {
		{"trials", required_argument, NULL, 'n'},
		{"limit", required_argument, NULL, 'l'},
		{"probe-us", required_argument, NULL, 'i'},
		{"baseline", required_argument, NULL, 'b'},
		{"wait-ms", required_argument, NULL, 'w'},
		{"monitoring-ms", required_argument, NULL, 'm'},
		{"fill", required_argument, NULL, 'f'},
		{"api-rate", required_argument, NULL, 'q'},
		{"rows", required_argument, NULL, 'r'},
		{"active", required_argument, NULL, 'a'},
		{"duration", required_argument, NULL, 'd'},
		{"loader", required_argument, NULL, OPT_LOADER},
		{"analyzer", required_argument, NULL, OPT_ANALYZER},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt;

	*o = (struct opts){.trials = DEFAULT_TRIALS,
			   .limit = DEFAULT_LIMIT,
			   .probe_us = DEFAULT_PROBE_US,
			   .baseline = DEFAULT_BASELINE,
			   .wait_ms = DEFAULT_WAIT_MS,
			   .monitoring_ms = DEFAULT_MONITORING_MS,
			   .fill = DEFAULT_FILL,
			   .api_rate = DEFAULT_API_RATE,
			   .rows = DEFAULT_ROWS,
			   .active = DEFAULT_ACTIVE,
			   .duration_s = DEFAULT_DURATION_S};
	while ((opt = getopt_long(argc, argv, "n:l:i:b:w:m:f:q:r:a:d:h", lo, NULL)) != -1) {
		struct {
			unsigned int *dst;
			long long min, max;
		} num = {NULL, 0, 0};

		switch (opt) {
		case 'n':
			num.dst = &o->trials, num.min = 1, num.max = MAX_TRIALS;
			break;
		case 'l':
			num.dst = &o->limit, num.min = 1, num.max = MAX_LIMIT;
			break;
		case 'i':
			num.dst = &o->probe_us, num.min = 5, num.max = 100000;
			break;
		case 'b':
			num.dst = &o->baseline, num.min = 0, num.max = MAX_BASELINE;
			break;
		case 'w':
			num.dst = &o->wait_ms, num.min = 10, num.max = 60000;
			break;
		case 'm':
			num.dst = &o->monitoring_ms, num.min = 100, num.max = 60000;
			break;
		case 'f':
			num.dst = &o->fill, num.min = 0, num.max = MAX_FILL;
			break;
		case 'q':
			num.dst = &o->api_rate, num.min = 0, num.max = MAX_API_RATE;
			break;
		case 'r':
			num.dst = &o->rows, num.min = 0, num.max = MAX_ROWS;
			break;
		case 'a':
			num.dst = &o->active, num.min = 0, num.max = MAX_ACTIVE;
			break;
		case 'd':
			num.dst = &o->duration_s, num.min = 0, num.max = MAX_DURATION_S;
			break;
		case OPT_LOADER:
			o->loader = optarg;
			continue;
		case OPT_ANALYZER:
			o->analyzer = optarg;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (bench_opt_num(PROG, opt, optarg, num.min, num.max, num.dst)) {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Source address of trial i (198.18.1.1 ...) and of baseline trial i (198.18.101.1 ...). */
static void trial_addr(unsigned int i, bool baseline, char *buf, size_t len)
{
	uint8_t third = (uint8_t)((baseline ? 101 : 1) + i / 250); /* i < MAX_TRIALS: < 142 */

	snprintf(buf, len, "198.18.%u.%u", third, 1 + i % 250);
}

static int sock_in_peer(struct rig *r, int type, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct linger lin = {.l_onoff = 1, .l_linger = 0}; /* close = RST, nothing lingers */
	struct timeval tv = {.tv_sec = 2};
	int fd = nsb_socket(&r->ns, r->ns.peer_netns, AF_INET, type);

	if (fd < 0)
		return fd;
	inet_pton(AF_INET, src, &a.sin_addr);
	if ((type == SOCK_STREAM &&
	     (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)) ||
	      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))) || /* connect timeout */
	    bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * ---- The crossing's clock -----------------------------------------------------------------
 *
 * A tracepoint program on sock:inet_sock_set_state, written out as instructions (28 of them),
 * that stores bpf_ktime_get_ns() in crossing[key] when a TCP socket of IPv4 on this
 * benchmark's server port (TCP_PORT) goes from SYN_RECV to ESTABLISHED: the server's side of
 * a connection, the transition ebpfmon's raw tracepoint counts (bpf/ebpfmon.bpf.c,
 * sock_state). key = the remote address (the tracepoint's daddr, 4 bytes as on the wire, read
 * as a native u32) | the remote port (its dport, host order) << 32. The tracepoint sees every
 * namespace: the benchmark clears the key before the crossing connect() and reads it right
 * after the trial. The offsets are those of the tracepoint's format
 * (/sys/kernel/tracing/events/sock/inet_sock_set_state/format), checked at start.
 */
#define TP_FORMAT "events/sock/inet_sock_set_state/format"
#define TP_ID	  "events/sock/inet_sock_set_state/id"

static const struct {
	const char *field; /* as the format file spells it */
	int off;
} tp_fields[] = {
	{"int oldstate;\toffset:16;\tsize:4;", 16},  {"int newstate;\toffset:20;\tsize:4;", 20},
	{"__u16 sport;\toffset:24;\tsize:2;", 24},   {"__u16 dport;\toffset:26;\tsize:2;", 26},
	{"__u16 family;\toffset:28;\tsize:2;", 28},  {"__u16 protocol;\toffset:30;\tsize:2;", 30},
	{"__u8 daddr[4];\toffset:36;\tsize:4;", 36},
};

#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX(sz, d, s, o) INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define CALL(fn)	 INSN(BPF_JMP | BPF_CALL, 0, 0, 0, fn)

/* tracefs: the first of the two usual mount points that has the tracepoint. */
static FILE *tracefs_open(const char *rel, char *path, size_t len)
{
	static const char *const roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
	FILE *f = NULL;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]) && !f; i++) {
		snprintf(path, len, "%s/%s", roots[i], rel);
		f = fopen(path, "re");
	}
	return f;
}

/* The tracepoint's id, after checking the offsets the program reads: id or -errno (logged). */
static int tracepoint_id(void)
{
	static char fmt[8192];
	char path[256];
	size_t len;
	int id = -1;
	FILE *f = tracefs_open(TP_FORMAT, path, sizeof(path));

	if (!f) {
		fprintf(stderr, "%s: cannot read %s under tracefs: %s\n", PROG, TP_FORMAT,
			strerror(errno));
		return -errno;
	}
	len = fread(fmt, 1, sizeof(fmt) - 1, f);
	fclose(f);
	fmt[len] = '\0';
	for (size_t i = 0; i < sizeof(tp_fields) / sizeof(tp_fields[0]); i++)
		if (!strstr(fmt, tp_fields[i].field)) {
			fprintf(stderr,
				"%s: %s has no \"%s\": a format this benchmark does not "
				"know\n",
				PROG, path, tp_fields[i].field);
			return -EPROTO;
		}
	f = tracefs_open(TP_ID, path, sizeof(path));
	if (!f || fscanf(f, "%d", &id) != 1 || id < 0) {
		fprintf(stderr, "%s: cannot read %s\n", PROG, path);
		if (f)
			fclose(f);
		return -EPROTO;
	}
	fclose(f);
	return id;
}

/* Load and attach the program: 0, or -errno (logged); crossing_close() undoes it. */
static int crossing_open(struct rig *r)
{
	static char log[65536];
	LIBBPF_OPTS(bpf_map_create_opts, mo);
	LIBBPF_OPTS(bpf_prog_load_opts, po, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.sample_period = 1,
		.wakeup_events = 1,
	};
	int id = tracepoint_id(), err;

	if (id < 0)
		return id;
	r->cross_map_fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "bl_crossing", sizeof(__u64),
					 sizeof(__u64), CROSSING_ENTRIES, &mo);
	if (r->cross_map_fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: the crossing map: %s\n", PROG, strerror(errno));
		return err;
	}
	{
		const struct bpf_insn insns[] = {
			INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0), /* r6 = ctx */
			LDX(BPF_W, 2, 6, 16),			       /* oldstate */
			JNE_IMM(2, 3 /* TCP_SYN_RECV */, 23),
			LDX(BPF_W, 2, 6, 20), /* newstate */
			JNE_IMM(2, 1 /* TCP_ESTABLISHED */, 21),
			LDX(BPF_H, 2, 6, 28), /* family */
			JNE_IMM(2, AF_INET, 19),
			LDX(BPF_H, 2, 6, 30), /* protocol */
			JNE_IMM(2, IPPROTO_TCP, 17),
			LDX(BPF_H, 2, 6, 24), /* sport: the server's port, this benchmark's */
			JNE_IMM(2, TCP_PORT, 15),
			LDX(BPF_H, 2, 6, 26), /* dport: the client's port */
			INSN(BPF_ALU64 | BPF_LSH | BPF_K, 2, 0, 0, 32),
			LDX(BPF_W, 3, 6, 36), /* daddr: the client's address */
			INSN(BPF_ALU64 | BPF_OR | BPF_X, 2, 3, 0, 0),
			INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 2, -8, 0), /* key at fp - 8 */
			CALL(BPF_FUNC_ktime_get_ns),
			INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -16, 0), /* value at fp - 16 */
			INSN(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_MAP_FD, 0, r->cross_map_fd),
			INSN(0, 0, 0, 0, 0),
			INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
			INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8),
			INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),
			INSN(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -16),
			INSN(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, BPF_ANY),
			CALL(BPF_FUNC_map_update_elem),
			INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0), /* out: return 0 */
			INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		};

		r->cross_prog_fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, "bl_crossing", "GPL",
						 insns, sizeof(insns) / sizeof(insns[0]), &po);
	}
	if (r->cross_prog_fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: loading the crossing program: %s\n%s\n", PROG, strerror(errno),
			log);
		return err;
	}
	attr.config = (__u64)id;
	r->cross_perf_fd =
		(int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (r->cross_perf_fd < 0 ||
	    ioctl(r->cross_perf_fd, PERF_EVENT_IOC_SET_BPF, r->cross_prog_fd) ||
	    ioctl(r->cross_perf_fd, PERF_EVENT_IOC_ENABLE, 0)) {
		err = -errno;
		fprintf(stderr,
			"%s: attaching the crossing program to sock:inet_sock_set_state: "
			"%s\n",
			PROG, strerror(errno));
		return err;
	}
	return 0;
}

static void crossing_close(struct rig *r)
{
	int *fds[] = {&r->cross_perf_fd, &r->cross_prog_fd, &r->cross_map_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* The crossing map's key of a connection from fd (bound: its address and port are known). */
static int crossing_key(int fd, __u64 *key)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len))
		return -errno;
	*key = (__u64)a.sin_addr.s_addr | (__u64)ntohs(a.sin_port) << 32;
	return 0;
}

/* The server side: accept what the trial opened and reset it (conn_count goes down). */
static void drain_server(struct rig *r)
{
	struct linger lin = {.l_onoff = 1, .l_linger = 0};
	char buf[2048];
	int fd;

	while ((fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
		close(fd);
	}
	while (recv(r->sink_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* bans[key]: 1 and *ban when there, 0 when not, -errno. */
static int ban_lookup(const struct rig *r, const struct ebpfmon_addr *key, struct ebpfmon_ban *ban)
{
	if (bpf_map_lookup_elem(r->bans_fd, key, ban) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

static int send_probe(const struct rig *r, int udp)
{
	if (sendto(udp, "probe", 5, MSG_DONTWAIT, (const struct sockaddr *)&r->sink,
		   sizeof(r->sink)) < 0 &&
	    errno != EAGAIN)
		return -errno;
	return 0;
}

/* What one probing saw, in CLOCK_MONOTONIC ns (0: not seen). */
struct seen {
	uint64_t ban_at;    /* the first look-up that found bans[key] */
	uint64_t drop_at;   /* the first look-up that found its drops counter above 0 */
	bool at_first_look; /* drop_at is the first round's */
};

/*
 * From now until bans[key] shows a drop or wait_ms passed, every probe_us: look the ban up,
 * send a datagram from the offender, look it up again. 0, or -EINTR, or -errno of a send or
 * look-up.
 */
static int probe(struct rig *r, const struct opts *o, int udp, const struct ebpfmon_addr *key,
		 struct seen *s)
{
	struct timespec next;
	uint64_t period = o->probe_us * 1000ull, deadline = bench_now() + o->wait_ms * 1000000ull;

	*s = (struct seen){0};
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (bool first = true;; first = false) {
		struct ebpfmon_ban ban;
		uint64_t now;
		int found, err;

		found = ban_lookup(r, key, &ban);
		if (found < 0)
			return found;
		if (found && !s->ban_at)
			s->ban_at = bench_now();
		err = send_probe(r, udp);
		found = err ?: ban_lookup(r, key, &ban);
		if (found < 0)
			return found;
		now = bench_now();
		if (found && ban.drops) {
			if (!s->ban_at)
				s->ban_at = now;
			s->drop_at = now;
			s->at_first_look = first;
			return 0;
		}
		if (now >= deadline)
			return 0;
		if (nsb_interrupted)
			return -EINTR;
		next.tv_nsec += (long)period;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}

/*
 * probe() on a thread of its own, started before the event it times (the crossing connect(),
 * the baseline's write), so that its first look comes before t0 and the figure is not bounded
 * below by the time the connect() call takes.
 */
struct prober {
	struct rig *r;
	const struct opts *o;
	int udp;
	struct ebpfmon_addr key;
	struct seen seen;
	int err;
	pthread_t thread;
	atomic_bool started;
};

static void *prober_main(void *arg)
{
	struct prober *p = arg;

	atomic_store(&p->started, true);
	p->err = probe(p->r, p->o, p->udp, &p->key, &p->seen);
	return NULL;
}

/* Start p's thread and wait until it runs: 0 or -errno (logged). */
static int prober_start(struct prober *p)
{
	sigset_t all, old;
	int err;

	atomic_store(&p->started, false);
	sigfillset(&all); /* signals stay with the main thread */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&p->thread, NULL, prober_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		fprintf(stderr, "%s: the probe's thread: %s\n", PROG, strerror(err));
		return -err;
	}
	while (!atomic_load(&p->started))
		sched_yield();
	return 0;
}

/* Wait for p's probing to end (a drop, or wait_ms): its result. */
static int prober_join(struct prober *p)
{
	pthread_join(p->thread, NULL);
	return p->err;
}

/* t - t0, at least 1 (0 means "not seen"); 0 when t is 0. */
static uint64_t since(uint64_t t, uint64_t t0)
{
	if (!t)
		return 0;
	return t > t0 ? t - t0 : 1;
}

/* One trial of the analyzer's path. 0, or -errno (logged). */
static int ban_trial(struct rig *r, const struct opts *o, unsigned int idx, struct sample *s)
{
	int fds[MAX_LIMIT + 1], udp, err = 0;
	unsigned int n = 0;
	char src[INET_ADDRSTRLEN];
	struct ebpfmon_addr key;
	struct seen seen = {0};
	struct prober pr = {.r = r, .o = o};
	__u64 ckey = 0, t0 = 0;
	int cerr;

	trial_addr(idx, false, src, sizeof(src));
	key = pkt_addr(src);
	*s = (struct sample){0};
	udp = sock_in_peer(r, SOCK_DGRAM, src);
	if (udp < 0) {
		fprintf(stderr, "%s: UDP socket from %s: %s\n", PROG, src, strerror(-udp));
		return udp;
	}
	pr.udp = udp;
	pr.key = key;
	send_probe(r, udp); /* the first send of a socket costs ~0.15 ms more: not timed */
	for (n = 0; n <= o->limit; n++) {
		struct ebpfmon_ban ban;

		fds[n] = sock_in_peer(r, SOCK_STREAM, src);
		if (fds[n] < 0) {
			err = fds[n];
			break;
		}
		if (n < o->limit) {
			if (connect(fds[n], (struct sockaddr *)&r->srv, sizeof(r->srv))) {
				err = -errno;
				close(fds[n]);
				break;
			}
			continue;
		}
		/* the crossing one: not banned yet, its clock entry cleared, then no wait */
		err = ban_lookup(r, &key, &ban);
		if (err) {
			fprintf(stderr, "%s: %s is %s before it crossed the limit\n", PROG, src,
				err > 0 ? "banned" : "unreadable in bans");
			err = err > 0 ? -EEXIST : err;
			close(fds[n]);
			goto out;
		}
		err = crossing_key(fds[n], &ckey);
		if (!err && bpf_map_delete_elem(r->cross_map_fd, &ckey) && errno != ENOENT)
			err = -errno;
		if (!err && fcntl(fds[n], F_SETFL, O_NONBLOCK))
			err = -errno;
		if (err || (err = prober_start(&pr))) {
			close(fds[n]);
			break;
		}
		/* probing already; a connect() that fails leaves it to end at wait_ms */
		cerr = connect(fds[n], (struct sockaddr *)&r->srv, sizeof(r->srv)) &&
				       errno != EINPROGRESS
			       ? -errno
			       : 0;
		err = prober_join(&pr);
		err = cerr ?: err;
		seen = pr.seen;
		n++;
		break;
	}
	if (err) {
		if (err != -EINTR)
			fprintf(stderr, "%s: trial from %s (connection %u of %u): %s\n", PROG, src,
				n + 1, o->limit + 1, strerror(-err));
		goto out;
	}
	if (bpf_map_lookup_elem(r->cross_map_fd, &ckey, &t0)) {
		fprintf(stderr,
			"%s: no crossing seen for %s port %u (sock:inet_sock_set_state): %s\n",
			PROG, src, (unsigned int)(ckey >> 32), strerror(errno));
		err = -ENOENT;
		goto out;
	}
	bpf_map_delete_elem(r->cross_map_fd, &ckey);
	s->ban_ns = since(seen.ban_at, t0);
	s->drop_ns = since(seen.drop_at, t0);
	s->at_first_look = seen.at_first_look;
out:
	while (n-- > 0)
		close(fds[n]);
	close(udp);
	drain_server(r);
	return err;
}

/* One baseline trial: the ban is written here, the analyzer has no part in it. */
static int baseline_trial(struct rig *r, const struct opts *o, unsigned int idx, struct sample *s)
{
	struct ebpfmon_ban ban = {.reason = EBPFMON_BAN_MANUAL};
	char src[INET_ADDRSTRLEN];
	struct prober pr = {.r = r, .o = o};
	int udp, err, werr;
	uint64_t t0;

	trial_addr(idx, true, src, sizeof(src));
	pr.key = pkt_addr(src);
	*s = (struct sample){0};
	udp = sock_in_peer(r, SOCK_DGRAM, src);
	if (udp < 0)
		return udp;
	pr.udp = udp;
	send_probe(r, udp); /* as in ban_trial(): a warm socket */
	ban.expires_ns = bench_ns(CLOCK_BOOTTIME) + 1000000000ull; /* gone like the others */
	err = prober_start(&pr);
	if (err) {
		close(udp);
		return err;
	}
	/* as the analyzer writes a ban: the entry, then settings.ban_gen (mapconf.h) */
	t0 = bench_now();
	werr = bpf_map_update_elem(r->bans_fd, &pr.key, &ban, BPF_ANY) ? -errno : 0;
	if (werr)
		fprintf(stderr, "%s: writing bans[%s]: %s\n", PROG, src, strerror(-werr));
	werr = werr ?: mapconf_ban_written(r->settings_fd);
	err = prober_join(&pr); /* without a ban: it ends at wait_ms */
	err = werr ?: err;
	s->ban_ns = since(pr.seen.ban_at, t0);
	s->drop_ns = since(pr.seen.drop_at, t0);
	s->at_first_look = pr.seen.at_first_look;
	close(udp);
	drain_server(r);
	return err;
}

/*
 * ---- The database's content and the API client ---------------------------------------------
 */

/* Host i of ACTIVE_NET/64 (i < 2^32 - 1). */
static void active_addr(unsigned int i, struct ebpfmon_addr *a)
{
	uint32_t host = htonl(i + 1);

	inet_pton(AF_INET6, ACTIVE_NET, a->a);
	memcpy(a->a + 12, &host, sizeof(host));
}

/*
 * The analyzer's marker of the maps its bans are enforced in (policy_maps_marker(), which it
 * writes to analyzer_state 'maps'). 0 or -errno (logged).
 */
static int maps_marker(const struct nsb *ns, int bans_fd, char *buf, size_t len)
{
	int nets_fd = nsb_map_fd(ns, EBPFMON_MAP_BAN_NETS), err;

	err = nets_fd < 0 ? nets_fd : policy_maps_marker(bans_fd, nets_fd, buf, len);
	if (err)
		fprintf(stderr, "%s: the maps' marker (boot id, ids of bans and ban_nets): %s\n",
			PROG, strerror(-err));
	if (nets_fd >= 0)
		close(nets_fd);
	return err;
}

/*
 * active bans in force, as the analyzer leaves them (the header comment): the entries of
 * bans (bans_fd) and the rows, in st's open batch; then settings.ban_gen. 0 or -errno (logged).
 */
static int active_fill(struct store *st, int bans_fd, int settings_fd, unsigned int active)
{
	/* one reading of both clocks: expires_ns and expires_at name the same deadline */
	int64_t now = time(NULL);
	uint64_t boot = bench_ns(CLOCK_BOOTTIME);
	int err = 0;

	for (unsigned int i = 0; i < active && !err; i++) {
		int64_t at = now - (int64_t)(i % ACTIVE_SPREAD_S);
		struct store_ban b = {
			.net.prefixlen = 128,
			.reason = i % 3 ? EBPFMON_BAN_CONN_LIMIT : EBPFMON_BAN_URL_RULE,
			.source = STORE_SOURCE_AUTO,
			.hits = 1,
			.banned_at = at,
			.expires_at = at + ACTIVE_BAN_S,
		};
		struct ebpfmon_ban ban = {
			.expires_ns = boot + (uint64_t)(b.expires_at - now) * 1000000000ull,
			.reason = b.reason,
		};

		active_addr(i, &b.net.addr);
		if (b.reason == EBPFMON_BAN_URL_RULE) { /* the request, as policy.c records it */
			snprintf(b.rule, sizeof(b.rule), "/wp-admin");
			snprintf(b.path, sizeof(b.path), "/wp-admin/setup-config.php");
			b.has_req = true;
			b.sport = (uint16_t)(32768 + i % 28000);
			b.dport = 80;
			b.seq = i * 2654435761u;
			b.conn_isn = b.seq - 1;
		}
		if (bpf_map_update_elem(bans_fd, &b.net.addr, &ban, BPF_NOEXIST)) {
			err = -errno;
			fprintf(stderr, "%s: writing ban %u of %u to the map: %s\n", PROG, i + 1,
				active, strerror(errno));
		} else if (store_ban_insert(st, &b) <= 0) {
			err = -EIO;
		} else if (i % 5000 == 4999) {
			err = store_commit(st);
			store_begin(st);
		}
	}
	/* as the analyzer writes bans: the entries, then settings.ban_gen (mapconf.h) */
	return err ?: mapconf_ban_written(settings_fd);
}

/*
 * Before the analyzer starts, in its database (which it does not hold yet), through store.c:
 * rows rows in each of malicious_ips (ended bans of 203.0.113.0/24 and 2001:db8::/64),
 * network_stats (each with STATS_TOP top addresses) and system_anomalies (ended), spread over
 * the last days; active bans in force, in bans_fd and as rows (active_fill()), and the maps'
 * marker; then the files go to user ebpfmon. Nothing when both are 0 (the analyzer creates
 * the database). 0 or -errno (logged).
 */
static int db_fill(const struct rig *r, unsigned int rows, unsigned int active)
{
	struct store *st = NULL;
	char path[PATH_MAX], marker[160];
	int64_t now = time(NULL);
	int err;

	if (!rows && !active)
		return 0;
	snprintf(path, sizeof(path), "%s/var/ebpfmon.db", r->ns.tmpdir);
	err = store_open(path, &st);
	if (err) {
		fprintf(stderr, "%s: store_open %s: %s\n", PROG, path, strerror(-err));
		return err;
	}
	store_begin(st);
	for (unsigned int i = 0; i < rows && !err; i++) {
		int64_t at = now - 7 * 86400 + (int64_t)i * (7 * 86400) / rows;
		struct store_ban b = {
			.reason = i % 3 ? EBPFMON_BAN_CONN_LIMIT : EBPFMON_BAN_URL_RULE,
			.source = STORE_SOURCE_AUTO,
			.hits = 1 + i % 7,
			.banned_at = at,
			.expires_at = at + 600,
			.ended_at = at + 600,
			.escalation_level = i % 4,
		};
		struct store_net_stats ns_row = {
			.ts = at,
			.rx_packets = 1000000 + i,
			.rx_bytes = 900000000ull + i,
			.tx_packets = 800000 + i,
			.tx_bytes = 700000000ull + i,
			.tracked = 100000,
			.bans_active = i % 50,
			.drops = i % 1000,
		};
		struct store_top top[STATS_TOP];
		struct store_anomaly an = {
			.kind = (enum store_anomaly_kind)(1 + i % 3),
			.started_at = at,
			.peak = 95.0,
			.threshold = 90.0,
			.top_pid = 1000 + (int32_t)(i % 30000),
		};
		int64_t id;

		b.net.prefixlen = 128;
		if (i % 2) {
			inet_pton(AF_INET6, "2001:db8::", b.net.addr.a);
			memcpy(b.net.addr.a + 12, &i, sizeof(i));
		} else {
			addr_from_v4(htonl(0xcb007100u | (i & 0xff)),
				     &b.net.addr); /* 203.0.113.x */
		}
		snprintf(b.end_reason, sizeof(b.end_reason), "expired");
		if (b.reason == EBPFMON_BAN_URL_RULE) {
			snprintf(b.rule, sizeof(b.rule), "/wp-admin");
			snprintf(b.path, sizeof(b.path), "/wp-admin/setup-config.php");
		}
		for (unsigned int k = 0; k < STATS_TOP; k++) {
			top[k] = (struct store_top){.packets = 10000 - k, .bytes = 1000000 - k};
			addr_from_v4(htonl(0xc6120000u + (i * STATS_TOP + k) % 65536),
				     &top[k].addr);
		}
		snprintf(an.top_comm, sizeof(an.top_comm), "worker-%u", i % 100);
		if (store_ban_insert(st, &b) <= 0 ||
		    store_stats_insert(st, &ns_row, top, STATS_TOP) <= 0)
			err = -EIO;
		id = err ? 0 : store_anomaly_open(st, &an);
		if (!err && (id <= 0 || store_anomaly_close(st, id, at + 120)))
			err = -EIO;
		if (!err && i % 5000 == 4999) {
			err = store_commit(st);
			store_begin(st);
		}
	}
	if (!err && active) {
		err = active_fill(st, r->bans_fd, r->settings_fd, active);
		err = err ?: maps_marker(&r->ns, r->bans_fd, marker, sizeof(marker));
		if (!err && store_state_set(st, "maps", marker))
			err = -EIO;
	}
	err = store_commit(st) ?: err;
	if (err)
		fprintf(stderr, "%s: writing rows to %s: %s\n", PROG, path, store_last_error(st));
	store_close(st); /* in var/, root's until nsb_start_analyzer() hands it over */
	return err;
}

/* What the map and the database hold (db_count(), bans_count()); -1: could not be read. */
struct census {
	long in_force;	      /* entries of bans in force (not expired) */
	long ours;	      /* of them, hosts of ACTIVE_NET/64 */
	int64_t active_rows;  /* malicious_ips: active, not dry run */
	int64_t ban_rows;     /* malicious_ips: every row */
	int64_t anomaly_rows; /* system_anomalies: every row */
};

struct in_force {
	uint64_t now;
	struct addr_cidr net;
	long all, ours;
};

static int in_force_one(const void *key, const void *value, void *ctx)
{
	const struct ebpfmon_ban *ban = value;
	struct in_force *f = ctx;

	if (ban->expires_ns && ban->expires_ns <= f->now)
		return 0;
	f->all++;
	f->ours += cidr_contains(&f->net, key);
	return 0;
}

/* The bans in force in the map: c->in_force and c->ours (-1 when unreadable). */
static void bans_count(const struct rig *r, struct census *c)
{
	struct in_force f = {.now = bench_ns(CLOCK_BOOTTIME), .net.prefixlen = 64};
	long n;

	active_addr(0, &f.net.addr);
	memset(f.net.addr.a + 8, 0, 8);
	n = maps_walk(r->bans_fd, sizeof(struct ebpfmon_addr), sizeof(struct ebpfmon_ban),
		      in_force_one, &f);
	if (n < 0) {
		fprintf(stderr, "%s: walking bans: %s\n", PROG, strerror((int)-n));
		f.all = f.ours = -1;
	}
	c->in_force = f.all;
	c->ours = f.ours;
}

/* The database's rows, read on a read-only connection of this program's (-1: unreadable). */
static void db_count(const struct rig *r, struct census *c)
{
	const struct store_query active = {.active_only = true};
	struct store *st = NULL;
	char path[PATH_MAX];
	int err;

	c->active_rows = c->ban_rows = c->anomaly_rows = -1;
	err = nsb_db_path(&r->ns, path, sizeof(path)) ?: store_open_readonly(path, &st);
	if (err) {
		fprintf(stderr, "%s: reading %s: %s\n", PROG, path, strerror(-err));
		return;
	}
	c->active_rows = store_ban_count(st, &active);
	c->ban_rows = store_ban_count(st, NULL);
	c->anomaly_rows = store_anomaly_count(st, NULL);
	store_close(st);
}

static void census_take(const struct rig *r, struct census *c)
{
	bans_count(r, c);
	db_count(r, c);
}

enum api_call { API_BANS, API_ANOMALIES, API_STATS, API_CALLS };
static const char *const api_call_name[API_CALLS] = {
	[API_BANS] = "GetMaliciousIPs history",
	[API_ANOMALIES] = "GetSystemAnomalies",
	[API_STATS] = "GetNetworkStats history",
};

static size_t api_pack(enum api_call c, uint8_t *buf, size_t cap)
{
	Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMaliciousIPsRequest mb = EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	Ebpfmon__V1__GetSystemAnomaliesRequest an = EBPFMON__V1__GET_SYSTEM_ANOMALIES_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest ns = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;

	req.version = 1;
	switch (c) {
	case API_BANS:
		mb.history = true;
		mb.limit = API_LIMIT;
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS;
		req.get_malicious_ips = &mb;
		break;
	case API_ANOMALIES:
		an.limit = API_LIMIT;
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES;
		req.get_system_anomalies = &an;
		break;
	default:
		ns.history = true;
		ns.limit = API_LIMIT;
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
		req.get_network_stats = &ns;
		break;
	}
	if (ebpfmon__v1__request__get_packed_size(&req) > cap)
		return 0;
	return ebpfmon__v1__request__pack(&req, buf);
}

/* One call and its reply, which must be OK: 0, or -EIO with the reason in l->err. */
static int api_call(struct apiload *l, nng_socket s, enum api_call c)
{
	uint8_t body[256];
	size_t len = api_pack(c, body, sizeof(body)), rlen = 0;
	void *buf = NULL;
	Ebpfmon__V1__Response *resp;
	int rv = len ? nng_send(s, body, len, 0) : NNG_EINVAL;

	if (!rv)
		rv = nng_recv(s, &buf, &rlen, NNG_FLAG_ALLOC);
	if (rv) {
		if (!l->err[0])
			snprintf(l->err, sizeof(l->err), "%s: %s", api_call_name[c],
				 nng_strerror(rv));
		return -EIO;
	}
	resp = ebpfmon__v1__response__unpack(NULL, rlen, buf);
	rv = !resp || resp->status != EBPFMON__V1__STATUS__STATUS_OK;
	if (rv && !l->err[0])
		snprintf(l->err, sizeof(l->err), "%s: %s", api_call_name[c],
			 resp ? resp->message : "a reply that does not decode");
	if (resp)
		ebpfmon__v1__response__free_unpacked(resp, NULL);
	nng_free(buf, rlen);
	return rv ? -EIO : 0;
}

/* The client: the three calls in turn, one every 1 / rate s on a fixed schedule. */
static void *api_main(void *arg)
{
	struct apiload *l = arg;
	uint64_t period = 1000000000ull / l->rate, next = bench_now();
	nng_socket s;
	int rv = nng_req0_open(&s);

	if (!rv)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	if (!rv)
		rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	if (!rv)
		rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);
	if (!rv)
		rv = nng_dial(s, l->url, NULL, 0);
	if (rv) {
		snprintf(l->err, sizeof(l->err), "%s: %s", l->url, nng_strerror(rv));
		return NULL;
	}
	for (unsigned int i = 0; !atomic_load(&l->stop); i++) {
		enum api_call c = (enum api_call)(i % API_CALLS);
		uint64_t t = bench_now(), took;
		struct timespec ts;

		if (api_call(l, s, c)) {
			l->failed[c]++;
		} else {
			l->ok[c]++;
			took = bench_now() - t;
			if (took > l->max_ns[c])
				l->max_ns[c] = took;
		}
		next += period;
		ts.tv_sec = (time_t)(next / 1000000000ull);
		ts.tv_nsec = (long)(next % 1000000000ull);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	nng_close(s);
	return NULL;
}

/* Start the client on the analyzer's API socket: 0 or -errno (logged). Nothing when rate 0. */
static int api_start(struct rig *r, unsigned int rate)
{
	sigset_t all, old;
	int err;

	r->api.rate = rate;
	if (!rate)
		return 0;
	snprintf(r->api.url, sizeof(r->api.url), "ipc://%s/var/api.sock", r->ns.tmpdir);
	sigfillset(&all); /* signals stay with the main thread, which cleans up */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&r->api.thread, NULL, api_main, &r->api);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		fprintf(stderr, "%s: the API client's thread: %s\n", PROG, strerror(err));
		return -err;
	}
	r->api.running = true;
	return 0;
}

static void api_stop(struct rig *r)
{
	if (!r->api.running)
		return;
	atomic_store(&r->api.stop, true);
	pthread_join(r->api.thread, NULL);
	r->api.running = false;
}

static int setup_sockets(struct rig *r)
{
	int one = 1;

	r->srv = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(TCP_PORT)};
	inet_pton(AF_INET, NSB_MON_V4, &r->srv.sin_addr);
	r->sink = r->srv;
	r->sink.sin_port = htons(UDP_PORT);
	r->listen_fd = nsb_socket(&r->ns, r->ns.mon_netns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	r->sink_fd = nsb_socket(&r->ns, r->ns.mon_netns, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK);
	if (r->listen_fd < 0 || r->sink_fd < 0 ||
	    setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(r->listen_fd, (struct sockaddr *)&r->srv, sizeof(r->srv)) ||
	    listen(r->listen_fd, 1024) ||
	    bind(r->sink_fd, (struct sockaddr *)&r->sink, sizeof(r->sink))) {
		fprintf(stderr, "%s: server sockets in %s: %s\n", PROG, r->ns.mon_ns,
			strerror(errno));
		return -errno;
	}
	return 0;
}

/* Figures of one column set: sorted copy of the non-zero values, their count. */
enum column { COL_BAN, COL_DROP };

static size_t collect(const struct sample *s, size_t n, enum column col, uint64_t *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t v = col == COL_DROP ? s[i].drop_ns : s[i].ban_ns;

		if (v)
			out[k++] = v;
	}
	qsort(out, k, sizeof(*out), bench_cmp_u64);
	return k;
}

static void row(const char *name, const uint64_t *v, size_t k, size_t of)
{
	size_t over = 0;

	if (!k) {
		printf("  %-44s %5zu/%-5zu %8s %8s %8s %8s %6s\n", name, k, of, "-", "-", "-", "-",
		       "-");
		return;
	}
	while (over < k && v[k - 1 - over] >= TARGET_P99_MS * 1e6)
		over++;
	printf("  %-44s %5zu/%-5zu %8.3f %8.3f %8.3f %8.3f %6zu\n", name, k, of,
	       bench_pct(v, k, 50) / 1e6, bench_pct(v, k, 90) / 1e6, bench_pct(v, k, 99) / 1e6,
	       v[k - 1] / 1e6, over);
}

#define MAX_TASKS 16

/* The longest hold of the analyzer's loop by task, from its /metrics. */
struct holds {
	unsigned int n;
	char task[MAX_TASKS][32];
	double us[MAX_TASKS];	  /* ebpfmon_loop_hold_max_seconds: wall clock */
	double cpu_us[MAX_TASKS]; /* ebpfmon_loop_cpu_max_seconds: CPU time */
};

/*
 * GET /metrics from the analyzer (in the host's namespace) and keep the
 * ebpfmon_loop_hold_max_seconds and ebpfmon_loop_cpu_max_seconds samples. 0, or -errno
 * (-EPROTO: no such samples).
 */
static int scrape_holds(struct rig *r, struct holds *h)
{
	static char buf[1 << 20];
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
	static const char key[] = "ebpfmon_loop_hold_max_seconds{task=\"";
	static const char cpu_key[] = "ebpfmon_loop_cpu_max_seconds{task=\"";
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(r->metrics_port)};
	struct timeval tv = {.tv_sec = 5};
	size_t len = 0;
	ssize_t got;
	char *line;
	int fd = nsb_socket(&r->ns, r->ns.orig_netns, AF_INET, SOCK_STREAM);

	if (fd < 0)
		return fd;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		int err = -errno;

		close(fd);
		return err;
	}
	while (len < sizeof(buf) - 1 && (got = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
		len += (size_t)got;
	close(fd);
	buf[len] = '\0';
	h->n = 0;
	for (line = strstr(buf, key); line && h->n < MAX_TASKS; line = strstr(line + 1, key)) {
		char *name = line + sizeof(key) - 1, *end = strchr(name, '"');

		if (!end || end - name >= (ptrdiff_t)sizeof(h->task[0]) || end[1] != '}')
			continue;
		snprintf(h->task[h->n], sizeof(h->task[0]), "%.*s", (int)(end - name), name);
		h->us[h->n++] = strtod(end + 2, NULL) * 1e6;
	}
	for (line = strstr(buf, cpu_key); line; line = strstr(line + 1, cpu_key)) {
		char *name = line + sizeof(cpu_key) - 1, *end = strchr(name, '"');

		for (unsigned int i = 0; end && end[1] == '}' && i < h->n; i++)
			if (strlen(h->task[i]) == (size_t)(end - name) &&
			    !strncmp(h->task[i], name, (size_t)(end - name)))
				h->cpu_us[i] = strtod(end + 2, NULL) * 1e6;
	}
	return h->n ? 0 : -EPROTO;
}

/* Lines of the analyzer's log that contain both needles. */
static unsigned int log_count(const char *path, const char *a, const char *b)
{
	char line[1024];
	unsigned int n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, a) && (!b || strstr(line, b)))
			n++;
	fclose(f);
	return n;
}

/* Trials whose drop was seen at the probe's first look. */
static unsigned int at_first(const struct sample *s, size_t n)
{
	unsigned int k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i].drop_ns && s[i].at_first_look;
	return k;
}

/* Ban trial i, counted: 0 to go on, or the error that ends the run. */
static int ban_step(struct rig *r, const struct opts *o, unsigned int i, struct sample *s,
		    unsigned int *errors, unsigned int *timeouts)
{
	int terr = ban_trial(r, o, i, s);

	if (terr == -EINTR)
		return terr;
	if (terr && ++*errors > 5) {
		fprintf(stderr, "%s: too many failed trials; giving up\n", PROG);
		return terr;
	}
	if (!terr && !s->drop_ns && i >= WARMUP)
		++*timeouts;
	return nsb_analyzer_alive(&r->ns) ? 0 : -ECHILD;
}

/* Sleep until CLOCK_MONOTONIC at, and at least PAUSE_MS: 0 or -EINTR. */
static int pause_until(uint64_t at)
{
	uint64_t now = bench_now(), ms = PAUSE_MS;

	if (at > now + ms * 1000000ull)
		ms = (at - now + 999999) / 1000000;
	return nsb_sleep_ms((unsigned int)ms);
}

/*
 * Where the retention run stood against the trials: the rows written before the analyzer
 * started, at the trials' start and at their end. Only the tables the pre-fill put over
 * max_records tell (malicious_ips: ended rows only; system_anomalies).
 */
static void retention_print(const struct opts *o, const struct census *a, const struct census *b)
{
	int64_t written = (int64_t)o->rows + o->active, before, during;

	if (o->rows <= MAX_RECORDS) {
		printf("retention: nothing to delete (-r %u, max_records %u)\n", o->rows,
		       MAX_RECORDS);
		return;
	}
	before = (written - a->ban_rows) + ((int64_t)o->rows - a->anomaly_rows);
	during = (a->ban_rows - b->ban_rows) + (a->anomaly_rows - b->anomaly_rows);
	printf("retention: malicious_ips %" PRId64 " rows written, %" PRId64 " at the trials' "
	       "start, %" PRId64 " at their end; system_anomalies %u, %" PRId64 ", %" PRId64 "\n",
	       written, a->ban_rows, b->ban_rows, o->rows, a->anomaly_rows, b->anomaly_rows);
	printf("  %s: %" PRId64 " of those rows deleted during the trials, %" PRId64
	       " before them\n",
	       during > 0 && before <= 0 ? "the first retention run fell within the trials"
	       : during > 0		 ? "the first retention run began before the trials"
					 : "NO retention run during the trials",
	       during, before);
}

/* What the analyzer's log says of the maps it found at start. */
static const char *maps_view(const struct rig *r)
{
	if (log_count(r->ns.analyzer_log, "ban maps are those of the last run", NULL))
		return "those of its last run (the marker matched)";
	if (log_count(r->ns.analyzer_log, "ban maps are new since the last run", NULL))
		return "new (the marker did not match: it restores missing bans)";
	return "new (no marker: a first run with this database)";
}

static void census_print(const char *when, const struct census *c)
{
	printf("  %-22s %6ld in force in the map (%ld of %s/64), %6" PRId64 " active rows; %" PRId64
	       " rows in malicious_ips, %" PRId64 " in system_anomalies\n",
	       when, c->in_force, c->ours, ACTIVE_NET, c->active_rows, c->ban_rows,
	       c->anomaly_rows);
}

int main(int argc, char **argv)
{
	static struct rig r = {.bans_fd = -1,
			       .settings_fd = -1,
			       .listen_fd = -1,
			       .sink_fd = -1,
			       .cross_map_fd = -1,
			       .cross_prog_fd = -1,
			       .cross_perf_fd = -1};
	struct sample *ban_s = NULL, *base_s = NULL;
	uint64_t *sorted = NULL;
	char **addrs = NULL, net[640], api_lines[64];
	unsigned int n_addrs, timeouts = 0, errors = 0;
	struct opts o;
	size_t k_drop, k_ban, k_base;
	double p99_ms, p50_ms = 0, base_p50, base_p99, hold_max = 0, cpu_max = 0;
	struct holds holds = {0};
	struct census at_start = {0}, at_end = {0};
	uint64_t t_start, t_rows = 0, t_ready = 0, t_end = 0;
	unsigned int slots, n_base = 0, n_ban = WARMUP;
	int herr;
	int rc = 1, err = 0;

	if (parse_opts(argc, argv, &o))
		return 2;
	log_init(PROG, LOG_LVL_WARN); /* store.c's, while it fills the database */
	nsb_init(&r.ns, PROG, o.loader, o.analyzer);
	/* the analyzer runs in the host's namespace (it needs only the pins) */
	r.metrics_port = (uint16_t)(METRICS_PORT_BASE + getpid() % 20000);
	snprintf(api_lines, sizeof(api_lines), "metrics_address = http://127.0.0.1:%u",
		 r.metrics_port);
	r.ns.api_lines = api_lines;
	prctl(PR_SET_TIMERSLACK, 1UL); /* probes every PROBE_US, not PROBE_US + 50 us */

	n_addrs = WARMUP + o.trials + o.baseline;
	addrs = calloc(n_addrs, sizeof(*addrs));
	ban_s = calloc(WARMUP + o.trials, sizeof(*ban_s));
	base_s = calloc(o.baseline + 1, sizeof(*base_s));
	sorted = calloc(WARMUP + o.trials + o.baseline + 1, sizeof(*sorted));
	if (!addrs || !ban_s || !base_s || !sorted)
		goto out;
	for (unsigned int i = 0; i < n_addrs; i++) {
		bool base = i >= WARMUP + o.trials;

		addrs[i] = malloc(INET_ADDRSTRLEN);
		if (!addrs[i])
			goto out;
		trial_addr(base ? i - WARMUP - o.trials : i, base, addrs[i], INET_ADDRSTRLEN);
	}

	snprintf(net, sizeof(net),
		 "max_connections_per_ip = %u\n"
		 "max_tracked_ips = %u\n"
		 "http_ports = 80\n"
		 "malicious_url_patterns = /wp-admin\n"
		 "allowlist = 127.0.0.0/8, ::1\n"
		 "cidr_ban_threshold = 0\n"
		 "ban_duration = 1s\n"
		 "max_bans = %u\n"
		 "monitoring_interval = %ums",
		 o.limit, o.fill ? FILL_TRACKED : 65536u, MAX_BANS, o.monitoring_ms);
	if ((err = crossing_open(&r)) || (err = nsb_topology(&r.ns, addrs, n_addrs)) ||
	    (err = nsb_write_conf(&r.ns, net)) || (err = nsb_start_loader(&r.ns, 20)))
		goto out;
	/*
	 * Every state the analyzer meets is written before it starts, so that the measured
	 * window begins at its "ready", with the first retention run ahead.
	 */
	r.bans_fd = nsb_map_fd(&r.ns, EBPFMON_MAP_BANS);
	r.settings_fd = nsb_map_fd(&r.ns, EBPFMON_MAP_SETTINGS);
	if (r.bans_fd < 0 || r.settings_fd < 0 || setup_sockets(&r))
		goto out;
	if (o.fill) {
		int ip_fd = nsb_map_fd(&r.ns, EBPFMON_MAP_IP_STATS);

		err = ip_fd < 0 ? ip_fd : nsb_fill_ip_stats(&r.ns, ip_fd, FILL_BASE, o.fill);
		if (ip_fd >= 0)
			close(ip_fd);
		if (err)
			goto out;
	}
	t_start = bench_now();
	if ((err = db_fill(&r, o.rows, o.active)))
		goto out;
	t_rows = bench_now() - t_start;
	if ((err = nsb_start_analyzer(&r.ns, 30)))
		goto out;
	t_ready = bench_now();
	/* the figures mean nothing unless the analyzer runs with the bans in force */
	census_take(&r, &at_start);
	if (at_start.in_force != (long)o.active || at_start.ours != (long)o.active ||
	    at_start.active_rows != (int64_t)o.active) {
		fprintf(stderr,
			"%s: after the analyzer's start, %ld bans in force in the map (%ld of "
			"%s/64) and %" PRId64 " active rows, want %u of each\n",
			PROG, at_start.in_force, at_start.ours, ACTIVE_NET, at_start.active_rows,
			o.active);
		err = -EPROTO;
		goto out;
	}
	if ((err = api_start(&r, o.api_rate)))
		goto out;

	/*
	 * The warm-up, then the trials in slots of duration_s / (trials + baseline) from "ready",
	 * the baseline's spread among them (Bresenham): each starts at its slot or PAUSE_MS after
	 * the one before, whichever is later.
	 */
	for (unsigned int i = 0; i < WARMUP && !err; i++) {
		err = ban_step(&r, &o, i, &ban_s[i], &errors, &timeouts);
		err = err ?: nsb_sleep_ms(PAUSE_MS);
	}
	slots = o.trials + o.baseline;
	for (unsigned int k = 0; k < slots && !err; k++) {
		uint64_t span = o.duration_s * 1000000000ull;

		if ((uint64_t)(k + 1) * o.baseline / slots > (uint64_t)k * o.baseline / slots) {
			err = baseline_trial(&r, &o, n_base, &base_s[n_base]);
			n_base++;
		} else {
			err = ban_step(&r, &o, n_ban, &ban_s[n_ban], &errors, &timeouts);
			n_ban++;
		}
		err = err ?: pause_until(t_ready + span * (k + 1) / slots);
	}
	t_end = bench_now();
	api_stop(&r);
	if (!err)
		census_take(&r, &at_end);
	if (err) {
		if (err == -EINTR)
			fprintf(stderr, "%s: interrupted; cleaning up\n", PROG);
		rc = err == -EINTR ? 130 : 1;
		goto out;
	}

	herr = scrape_holds(&r, &holds);
	printf("ban_latency: %u trials (+%u warm-up), one source address each, "
	       "max_connections_per_ip %u\n",
	       o.trials, WARMUP, o.limit);
	printf("t0: the kernel's crossing (sock:inet_sock_set_state, the server's socket "
	       "SYN_RECV -> ESTABLISHED, bpf_ktime_get_ns()); t1: the probe's look-up that "
	       "first shows a drop\n");
	printf("probe every %u us: look bans[addr] up, send a UDP datagram from the offender, "
	       "look it up again (drops > 0: dropped); figures are quantised by it\n",
	       o.probe_us);
	printf("rig: %s -> %s on a veth (XDP by %s), analyzer uid ebpfmon without capabilities, "
	       "monitoring_interval %u ms, ban 1 s, %u extra addresses in ip_stats\n",
	       r.ns.peer_ns, r.ns.mon_ns, r.ns.loader, o.monitoring_ms, o.fill);
	printf("database: %u rows in each of malicious_ips, network_stats (+%u top addresses "
	       "each), system_anomalies, and %u active bans, written in %.1f s before the "
	       "analyzer started; max_records %u a table\n",
	       o.rows, STATS_TOP, o.active, (double)t_rows / 1e9, MAX_RECORDS);
	if (o.active)
		printf("bans in force: %u hosts of %s/64 banned for 1 h (conn_limit, url_rule), "
		       "entries of bans and active rows, max_bans %u; the analyzer found the ban "
		       "maps %s\n",
		       o.active, ACTIVE_NET, MAX_BANS, maps_view(&r));
	else
		printf("bans in force: none before the analyzer started (-a 0)\n");
	census_print("at the trials' start:", &at_start);
	census_print("at their end:", &at_end);
	printf("trials: %u (+%u warm-up) and %u baseline, interleaved, over %.1f s from the "
	       "analyzer's ready (-d %u: at least %u s), %.0f monitoring intervals\n",
	       o.trials, WARMUP, o.baseline, (double)(t_end - t_ready) / 1e9, o.duration_s,
	       o.duration_s, (double)(t_end - t_ready) / 1e6 / o.monitoring_ms);
	retention_print(&o, &at_start, &at_end);
	if (o.api_rate) {
		printf("API during the trials: %u calls/s in turn that read the database "
		       "(%s)\n",
		       o.api_rate, r.api.url);
		for (int c = 0; c < API_CALLS; c++)
			printf("  %-26s %7" PRIu64 " answered, %" PRIu64 " failed, slowest %.2f "
			       "ms\n",
			       api_call_name[c], r.api.ok[c], r.api.failed[c],
			       (double)r.api.max_ns[c] / 1e6);
		if (r.api.err[0])
			printf("  first failure: %s\n", r.api.err);
	} else {
		printf("API: no calls (-q 0)\n");
	}
	printf("\n  %-44s %11s %8s %8s %8s %8s %6s\n", "from t0 (the kernel's crossing) to",
	       "n/trials", "p50 ms", "p90 ms", "p99 ms", "max ms", ">=1 ms");
	k_ban = collect(ban_s + WARMUP, o.trials, COL_BAN, sorted);
	row("the ban entry in the map", sorted, k_ban, o.trials);
	k_drop = collect(ban_s + WARMUP, o.trials, COL_DROP, sorted);
	row("the first dropped packet", sorted, k_drop, o.trials);
	p99_ms = k_drop ? bench_pct(sorted, k_drop, 99) / 1e6 : 0;
	p50_ms = k_drop ? bench_pct(sorted, k_drop, 50) / 1e6 : 0;
	/* a trial without a drop within wait_ms stands above every other: when there are enough
	 * of them to reach a percentile, that figure is the wait, and fails */
	if ((o.trials - k_drop) * 100 >= o.trials * 1)
		p99_ms = o.wait_ms;
	if ((o.trials - k_drop) * 100 >= o.trials * 50)
		p50_ms = o.wait_ms;
	printf("  (dropped at the probe's first look, an upper bound: %u of %zu)\n",
	       at_first(ban_s + WARMUP, o.trials), k_drop);
	k_base = collect(base_s, o.baseline, COL_DROP, sorted);
	printf("\n  baseline: the ban written by this program (t0 right before), then probed the "
	       "same way\n");
	row("ban written -> first dropped packet", sorted, k_base, o.baseline);
	base_p50 = k_base ? bench_pct(sorted, k_base, 50) / 1e6 : 0;
	base_p99 = k_base ? bench_pct(sorted, k_base, 99) / 1e6 : 0;
	if (k_drop && k_base) {
		k_drop = collect(ban_s + WARMUP, o.trials, COL_DROP, sorted);
		printf("\n  the analyzer's path adds %.3f ms at p50 over the baseline "
		       "(%.1fx the baseline at p50, %.1fx at p99)\n",
		       bench_pct(sorted, k_drop, 50) / 1e6 - base_p50,
		       bench_pct(sorted, k_drop, 50) / 1e6 / base_p50,
		       p99_ms / (base_p99 > 0 ? base_p99 : 1));
	}
	printf("  no drop within %u ms: %u trial(s); failed trials: %u\n", o.wait_ms, timeouts,
	       errors);
	printf("  analyzer log: %u 'banned' lines, %u of them from the periodic scan\n",
	       log_count(r.ns.analyzer_log, "banned 198.18.", NULL),
	       log_count(r.ns.analyzer_log, "banned 198.18.", "(scan)"));
	if (herr) {
		printf("\n  the analyzer's /metrics could not be read: %s\n", strerror(-herr));
		fflush(stdout);
		nsb_tail(r.ns.analyzer_log, 10);
	} else {
		printf("\n  the longest one callback held the analyzer's loop, by task (/metrics;\n"
		       "  wall clock, with any wait for a CPU, and the most CPU time one used):\n");
		for (unsigned int i = 0; i < holds.n; i++) {
			printf("    %-16s %9.1f us %9.1f us CPU\n", holds.task[i], holds.us[i],
			       holds.cpu_us[i]);
			if (holds.us[i] > hold_max)
				hold_max = holds.us[i];
			if (holds.cpu_us[i] > cpu_max)
				cpu_max = holds.cpu_us[i];
		}
	}
	if (k_drop)
		printf("\ntarget\n  p99 < %.0f ms: %.3f ms  %s\n", TARGET_P99_MS, p99_ms,
		       p99_ms < TARGET_P99_MS ? "PASS" : "OVER");
	else
		printf("\ntarget\n  p99 < %.0f ms: no figure (no trial saw a drop)\n",
		       TARGET_P99_MS);
	if (!herr) {
		printf("  longest loop hold < %.0f us: %.1f us  %s\n", TARGET_HOLD_US, hold_max,
		       hold_max < TARGET_HOLD_US ? "PASS" : "OVER");
		printf("  most CPU in one callback < %.0f us: %.1f us  %s\n", TARGET_HOLD_US,
		       cpu_max, cpu_max < TARGET_HOLD_US ? "PASS" : "OVER");
	}
	/* always printed: an analyzer that never bans shows as a figure that fails */
	printf("FIGURE\tban.active_bans\t%ld\t-\tcount\t-\n", at_start.in_force);
	if (k_base) {
		printf("FIGURE\tban.p50_us\t%.1f\t%.1f\tus\t-\n", p50_ms * 1e3, base_p50 * 1e3);
		printf("FIGURE\tban.p99_us\t%.1f\t%.1f\tus\t<%.0f\n", p99_ms * 1e3, base_p99 * 1e3,
		       TARGET_P99_MS * 1e3);
	} else {
		printf("FIGURE\tban.p50_us\t%.1f\t-\tus\t-\n", p50_ms * 1e3);
		printf("FIGURE\tban.p99_us\t%.1f\t-\tus\t<%.0f\n", p99_ms * 1e3,
		       TARGET_P99_MS * 1e3);
	}
	if (!herr) {
		printf("FIGURE\tban.loop_hold_max_us\t%.1f\t-\tus\t<%.0f\n", hold_max,
		       TARGET_HOLD_US);
		printf("FIGURE\tban.loop_cpu_max_us\t%.1f\t-\tus\t<%.0f\n", cpu_max,
		       TARGET_HOLD_US);
		for (unsigned int i = 0; i < holds.n; i++) {
			printf("FIGURE\tban.hold_us.%s\t%.1f\t-\tus\t<%.0f\n", holds.task[i],
			       holds.us[i], TARGET_HOLD_US);
			printf("FIGURE\tban.cpu_us.%s\t%.1f\t-\tus\t<%.0f\n", holds.task[i],
			       holds.cpu_us[i], TARGET_HOLD_US);
		}
	}
	rc = 0;
out:
	api_stop(&r);
	if (rc == 1 && err != -EINTR && r.ns.analyzer_log[0])
		nsb_tail(r.ns.analyzer_log, 15);
	crossing_close(&r);
	if (r.listen_fd >= 0)
		close(r.listen_fd);
	if (r.sink_fd >= 0)
		close(r.sink_fd);
	if (r.bans_fd >= 0)
		close(r.bans_fd);
	if (r.settings_fd >= 0)
		close(r.settings_fd);
	for (unsigned int i = 0; addrs && i < n_addrs; i++)
		free(addrs[i]);
	free(addrs);
	free(ban_s);
	free(base_s);
	free(sorted);
	return rc; /* nsb_cleanup() runs at exit */
}
