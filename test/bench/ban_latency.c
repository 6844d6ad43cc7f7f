// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ban_latency: how long after the TCP connection that crosses max_connections_per_ip the
 * offender's packets are dropped, end to end: the real loader (XDP on a veth, the socket
 * tracepoint that counts connections), the ring buffer, the real unprivileged analyzer
 * deciding and writing `bans`, and XDP dropping the next packet.
 *
 *   sudo build/test/bench/ban_latency [-n TRIALS] [-l LIMIT] [-i PROBE_US] [-b BASELINE]
 *                                     [-m MONITORING_MS] [-f FILL]
 *
 * The scenario by default: 100,000 addresses written to ip_stats first (as on a busy host)
 * and a 200 ms monitoring interval, so that the analyzer's periodic work (the walk of
 * ip_stats, the resource sample, the database) runs all the time beside the bans.
 *
 * Each trial uses its own source address (the analyzer escalates repeat offenders, and an
 * address banned by one trial must not disturb the next): from the peer namespace it opens
 * LIMIT connections, checks that the address is not banned yet, and then opens the crossing
 * one; t0 is taken right before that connect() is called, since over a veth the server's
 * side of the connection (whose establishment the kernel reports) can be established, and
 * banned, before connect() returns. The figures therefore include the handshake (its
 * connect() time is printed). Then, every PROBE_US, it looks bans[addr] up (t_ban: the entry
 * is there), sends a UDP datagram from the same address and looks the entry up again
 * (t_drop: its drops counter, counted by XDP, is above 0). Both are quantised by the probe
 * interval. The UDP socket sends one datagram before t0: the first send of a socket costs
 * ~0.15 ms more. Baseline in the same run: the benchmark writes a ban itself (the entry, then
 * settings.ban_gen, as the analyzer does) and measures,
 * the same way, until the first drop: the floor of the method (probe interval, XDP, map
 * lookups). At the end it reads the analyzer's /metrics: the longest time one callback of
 * each task held the analyzer's loop (ebpfmon_loop_hold_max_seconds).
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails. Everything it makes (namespaces, pins, temporary files) is removed
 * at exit, also after ^C.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "ebpfmon_abi.h"
#include "mapconf.h"
#include "nsbench.h"
#include "pkt.h"

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

struct opts {
	unsigned int trials, limit, probe_us, baseline, wait_ms, monitoring_ms, fill;
	const char *loader, *analyzer;
};

struct rig {
	struct nsb ns;
	int bans_fd, settings_fd, listen_fd, sink_fd;
	struct sockaddr_in srv, sink;
	uint16_t metrics_port; /* the analyzer's /metrics on 127.0.0.1 */
};

struct sample {
	uint64_t ban_ns, drop_ns; /* 0 = not seen */
	uint64_t connect_ns;	  /* the crossing connect() */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"Time from the TCP connection that crosses max_connections_per_ip to the first\n"
		"packet XDP drops, with the real loader and analyzer in two private network\n"
		"namespaces. Needs root; the analyzer runs as user ebpfmon without capabilities.\n"
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
		"      --loader PATH       ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH     ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help              this text\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -n 1000 -i 20 -m 10000\n"
		"  sudo build/test/bench/%s -f 0 -m 60000\n"
		"\n"
		"Besides the table it prints FIGURE lines (tab-separated: id, value, baseline,\n"
		"unit, target): ban.p50_us and ban.p99_us against the baseline, and the\n"
		"analyzer's ban.loop_hold_max_us (wall clock) and ban.loop_cpu_max_us (CPU time).\n",
		PROG, DEFAULT_TRIALS, DEFAULT_LIMIT, MAX_LIMIT, DEFAULT_PROBE_US, DEFAULT_BASELINE,
		DEFAULT_WAIT_MS, DEFAULT_MONITORING_MS, DEFAULT_FILL, MAX_FILL, FILL_TRACKED, PROG,
		PROG, PROG);
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
			   .fill = DEFAULT_FILL};
	while ((opt = getopt_long(argc, argv, "n:l:i:b:w:m:f:h", lo, NULL)) != -1) {
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
		if (bench_opt_num(PROG, opt, optarg, num.min, num.max, num.dst))
			return -EINVAL;
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

/*
 * From t0 until bans[key] shows a drop or wait_ms passed, every probe_us: look the ban up
 * (s->ban_ns when it is there), send a datagram from the offender, look it up again
 * (s->drop_ns when its drops counter moved). 0, or -EINTR, or -errno of a send or lookup.
 */
static int probe(struct rig *r, const struct opts *o, int udp, const struct ebpfmon_addr *key,
		 uint64_t t0, struct sample *s)
{
	struct timespec next;
	uint64_t period = o->probe_us * 1000ull, deadline = t0 + o->wait_ms * 1000000ull;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		struct ebpfmon_ban ban;
		uint64_t now;
		int found, err;

		found = ban_lookup(r, key, &ban);
		if (found < 0)
			return found;
		if (found && !s->ban_ns)
			s->ban_ns = bench_now() - t0 ?: 1;
		err = send_probe(r, udp);
		found = err ?: ban_lookup(r, key, &ban);
		if (found < 0)
			return found;
		now = bench_now();
		if (found && ban.drops) {
			if (!s->ban_ns)
				s->ban_ns = now - t0 ?: 1;
			s->drop_ns = now - t0 ?: 1;
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

/* One trial of the analyzer's path. 0, or -errno (logged). */
static int ban_trial(struct rig *r, const struct opts *o, unsigned int idx, struct sample *s)
{
	int fds[MAX_LIMIT + 1], udp, err = 0;
	unsigned int n = 0;
	char src[INET_ADDRSTRLEN];
	struct ebpfmon_addr key;
	uint64_t t0 = 0;

	trial_addr(idx, false, src, sizeof(src));
	key = pkt_addr(src);
	*s = (struct sample){0};
	udp = sock_in_peer(r, SOCK_DGRAM, src);
	if (udp < 0) {
		fprintf(stderr, "%s: UDP socket from %s: %s\n", PROG, src, strerror(-udp));
		return udp;
	}
	send_probe(r, udp); /* the first send of a socket costs ~0.15 ms more: not timed */
	for (n = 0; n <= o->limit; n++) {
		struct ebpfmon_ban ban;

		fds[n] = sock_in_peer(r, SOCK_STREAM, src);
		if (fds[n] < 0) {
			err = fds[n];
			break;
		}
		if (n == o->limit) { /* the crossing one: the clock starts before it */
			err = ban_lookup(r, &key, &ban);
			if (err) {
				fprintf(stderr, "%s: %s is %s before it crossed the limit\n", PROG,
					src, err > 0 ? "banned" : "unreadable in bans");
				err = err > 0 ? -EEXIST : err;
				close(fds[n]);
				goto out;
			}
			t0 = bench_now();
		}
		if (connect(fds[n], (struct sockaddr *)&r->srv, sizeof(r->srv))) {
			err = -errno;
			close(fds[n]);
			break;
		}
	}
	if (err) {
		fprintf(stderr, "%s: connection %u of %u from %s: %s\n", PROG, n + 1, o->limit + 1,
			src, strerror(-err));
		goto out;
	}
	s->connect_ns = bench_now() - t0;
	err = probe(r, o, udp, &key, t0, s);
	if (err && err != -EINTR)
		fprintf(stderr, "%s: probing from %s: %s\n", PROG, src, strerror(-err));
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
	struct ebpfmon_addr key;
	int udp, err;
	uint64_t t0;

	trial_addr(idx, true, src, sizeof(src));
	key = pkt_addr(src);
	*s = (struct sample){0};
	udp = sock_in_peer(r, SOCK_DGRAM, src);
	if (udp < 0)
		return udp;
	send_probe(r, udp); /* as in ban_trial(): a warm socket */
	ban.expires_ns = bench_ns(CLOCK_BOOTTIME) + 1000000000ull; /* gone like the others */
	/* as the analyzer writes a ban: the entry, then settings.ban_gen (mapconf.h) */
	if (bpf_map_update_elem(r->bans_fd, &key, &ban, BPF_ANY)) {
		err = -errno;
		fprintf(stderr, "%s: writing bans[%s]: %s\n", PROG, src, strerror(errno));
		close(udp);
		return err;
	}
	err = mapconf_ban_written(r->settings_fd);
	if (err) {
		close(udp);
		return err;
	}
	t0 = bench_now();
	err = probe(r, o, udp, &key, t0, s);
	close(udp);
	drain_server(r);
	return err;
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
enum column { COL_BAN, COL_DROP, COL_CONNECT };

static size_t collect(const struct sample *s, size_t n, enum column col, uint64_t *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t v = col == COL_DROP  ? s[i].drop_ns
			     : col == COL_BAN ? s[i].ban_ns
					      : s[i].connect_ns;

		if (v)
			out[k++] = v;
	}
	qsort(out, k, sizeof(*out), bench_cmp_u64);
	return k;
}

static void row(const char *name, const uint64_t *v, size_t k, size_t of)
{
	if (!k) {
		printf("  %-44s %5zu/%-5zu %8s %8s %8s\n", name, k, of, "-", "-", "-");
		return;
	}
	printf("  %-44s %5zu/%-5zu %8.3f %8.3f %8.3f\n", name, k, of, bench_pct(v, k, 50) / 1e6,
	       bench_pct(v, k, 99) / 1e6, v[k - 1] / 1e6);
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

int main(int argc, char **argv)
{
	static struct rig r = {.bans_fd = -1, .settings_fd = -1, .listen_fd = -1, .sink_fd = -1};
	struct sample *ban_s = NULL, *base_s = NULL;
	uint64_t *sorted = NULL;
	char **addrs = NULL, net[640], api_lines[64];
	unsigned int n_addrs, timeouts = 0, errors = 0;
	struct opts o;
	size_t k_drop, k_ban, k_base;
	double p99_ms, p50_ms = 0, base_p50, base_p99, hold_max = 0, cpu_max = 0;
	struct holds holds = {0};
	int herr;
	int rc = 1, err = 0;

	if (parse_opts(argc, argv, &o))
		return 2;
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
		 "monitoring_interval = %ums",
		 o.limit, o.fill ? FILL_TRACKED : 65536u, o.monitoring_ms);
	if ((err = nsb_topology(&r.ns, addrs, n_addrs)) || (err = nsb_write_conf(&r.ns, net)) ||
	    (err = nsb_start_loader(&r.ns, 20)) || (err = nsb_start_analyzer(&r.ns, 15)))
		goto out;
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

	for (unsigned int i = 0; i < o.baseline && !err; i++) {
		err = baseline_trial(&r, &o, i, &base_s[i]);
		err = err ?: nsb_sleep_ms(PAUSE_MS);
	}
	for (unsigned int i = 0; i < WARMUP + o.trials && !err; i++) {
		int terr = ban_trial(&r, &o, i, &ban_s[i]);

		if (terr == -EINTR) {
			err = terr;
			break;
		}
		if (terr && ++errors > 5) {
			fprintf(stderr, "%s: too many failed trials; giving up\n", PROG);
			err = terr;
			break;
		}
		if (!terr && !ban_s[i].drop_ns && i >= WARMUP)
			timeouts++;
		if (!nsb_analyzer_alive(&r.ns)) {
			err = -ECHILD;
			break;
		}
		err = nsb_sleep_ms(PAUSE_MS);
	}
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
	printf("probe every %u us: look bans[addr] up, send a UDP datagram from the offender, "
	       "look it up again (drops > 0: dropped); figures are quantised by it\n",
	       o.probe_us);
	printf("rig: %s -> %s on a veth (XDP by %s), analyzer uid ebpfmon without capabilities, "
	       "monitoring_interval %u ms, ban 1 s, %u extra addresses in ip_stats\n\n",
	       r.ns.peer_ns, r.ns.mon_ns, r.ns.loader, o.monitoring_ms, o.fill);
	printf("  %-44s %11s %8s %8s %8s\n", "from t0 (before the crossing connect()) to",
	       "n/trials", "p50 ms", "p99 ms", "max ms");
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
	row("(the crossing connect() itself)", sorted,
	    collect(ban_s + WARMUP, o.trials, COL_CONNECT, sorted), o.trials);
	k_base = collect(base_s, o.baseline, COL_DROP, sorted);
	printf("\n  baseline: the ban written by this program, then probed the same way\n");
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
	}
	rc = 0;
out:
	if (rc == 1 && err != -EINTR && r.ns.analyzer_log[0])
		nsb_tail(r.ns.analyzer_log, 15);
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
