// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * event_rate: ring-buffer events consumed per second, none lost.
 *
 *   sudo build/test/bench/event_rate [-d SECONDS] [-b BATCH] [-r ROUNDS] [--no-load]
 *
 * Producer: the real xdp_ingress, loaded unpinned (test/bpf/xdp_harness.h) and run with
 * BPF_PROG_TEST_RUN on an HTTP request to port 80, with a url_rules REPORT rule "/" that
 * every path matches: one EBPFMON_EV_URL_HIT (176 bytes) per run. Consumer: a thread with
 * libbpf's ring_buffer, whose handler either only counts (the baseline) or does what the
 * analyzer does per event, policy_on_event() of analyzer/policy.c, with the default URL
 * patterns plus a glob; the path the events carry matches none, so nothing is banned and
 * the cost is the decoding and the matching.
 *
 * Two measurements per handler:
 *  - capacity: the ring is filled first (nobody consuming), then one ring_buffer__consume()
 *    empties it, timed in the consumer thread: what the consumer can do, alone, whatever
 *    the producer's speed (events.capacity_per_s);
 *  - sustained: producer and consumer at once for SECONDS, the consumer in
 *    ring_buffer__poll() (epoll, as the analyzer), the producer at full speed with no flow
 *    control (BATCH runs per BPF_PROG_TEST_RUN call): events produced, consumed, lost
 *    (counters.ringbuf_drops) and consumed/s, which is the slower side's rate: the producer's
 *    (events.producer_per_s) when it is below the capacity, and then the figure says that the
 *    consumer kept up with what was offered, not how much more it could take. Meanwhile a
 *    competing load runs (unless --no-load): one busy child process per online CPU, at the
 *    default priority, for the phase only (each ends by itself at its deadline, and with
 *    the benchmark). The producer stands for XDP, which runs in softirq ahead of every
 *    process: it has CPU 0 to itself, and the load runs on the other CPUs, where it competes
 *    with the consumer (CPU 1) and not with the events' source. The consumer asks the
 *    scheduler for the short slices the analyzer's loop asks for (cpusched_short_slices(),
 *    analyzer/cpusched.h).
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails or an event is not what was produced.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "bpf_test_env.h"
#include "config.h"
#include "cpusched.h"
#include "log.h"
#include "maps.h"
#include "pkt.h"
#include "policy.h"
#include "xdp_harness.h"

#define PROG "event_rate"

#define DEFAULT_SECONDS 3u
#define DEFAULT_BATCH	500000u
#define DEFAULT_ROUNDS	100u
#define TARGET_RATE	1e6
#define MAX_LOAD	256 /* busy children at most */
#define PATTERNS	"/admin, /wp-admin, /.env, /config, *.php"
#define REQUEST                                                                                    \
	"GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: bench\r\n"              \
	"Accept: */*\r\n\r\n"

enum cmd { CMD_IDLE, CMD_POLL, CMD_DRAIN, CMD_QUIT };

struct consumer {
	struct ring_buffer *rb;
	struct policy *policy; /* NULL: count only */
	int cpu;	       /* -1: not pinned */
	_Atomic int cmd;       /* written by main, acknowledged by the consumer going idle */
	_Atomic int busy;
	_Atomic uint64_t published; /* events handled, updated after every poll */
	uint64_t handled, bad;	    /* consumer thread only */
	uint64_t drain_ns, drained; /* result of the last CMD_DRAIN */
	int err;
};

struct figures {
	uint64_t cap_events, cap_ns;
	uint64_t produced, consumed, lost, elapsed_ns, prod_ns;
};

static int handle(void *ctx, void *data, size_t len)
{
	struct consumer *c = ctx;
	const struct ebpfmon_event_hdr *h = data;

	if (len != sizeof(struct ebpfmon_ev_url_hit) || h->type != EBPFMON_EV_URL_HIT)
		c->bad++;
	if (c->policy)
		policy_on_event(c->policy, data, len);
	c->handled++;
	return 0;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	int err = cpusched_short_slices(); /* as the analyzer's loop */

	if (err)
		fprintf(stderr,
			"%s: short scheduler slices: %s (the analyzer runs without them "
			"too)\n",
			PROG, strerror(-err));
	pin(c->cpu);
	for (;;) {
		int cmd = atomic_load(&c->cmd);

		if (cmd == CMD_QUIT)
			return NULL;
		if (cmd == CMD_IDLE) {
			atomic_store(&c->busy, 0);
			sched_yield();
			continue;
		}
		atomic_store(&c->busy, 1);
		if (cmd == CMD_DRAIN) {
			uint64_t before = c->handled, t0 = bench_now();
			int n = ring_buffer__consume(c->rb);

			c->drain_ns = bench_now() - t0;
			c->drained = c->handled - before;
			if (n < 0)
				c->err = n;
			atomic_store(&c->published, c->handled);
			atomic_store(&c->cmd, CMD_IDLE);
			continue;
		}
		/* CMD_POLL: the analyzer's way, epoll then consume. */
		if (ring_buffer__poll(c->rb, 20) < 0 && errno != EINTR)
			c->err = -errno;
		atomic_store(&c->published, c->handled);
	}
}

/* The competing load: busy children, each ending by itself at its deadline. */
struct load {
	pid_t pid[MAX_LOAD];
	unsigned int n;
};

static void load_stop(struct load *l)
{
	for (unsigned int i = 0; i < l->n; i++)
		kill(l->pid[i], SIGKILL);
	for (unsigned int i = 0; i < l->n; i++)
		waitpid(l->pid[i], NULL, 0);
	l->n = 0;
}

/*
 * n busy children for at most seconds (+1 s), on CPUs 1 .. n_cpus - 1 (all when there is
 * one): 0 or -errno (those started are stopped).
 */
static int load_start(struct load *l, unsigned int n, unsigned int n_cpus, unsigned int seconds)
{
	uint64_t end = bench_now() + (seconds + 1) * 1000000000ull;

	l->n = 0;
	for (unsigned int i = 0; i < n && i < MAX_LOAD; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			int err = -errno;

			load_stop(l);
			return err;
		}
		if (pid == 0) {
			volatile uint64_t spin = 0;
			cpu_set_t all;

			/* any CPU but the producer's (CPU 0, when there are more) */
			CPU_ZERO(&all);
			for (int c = n_cpus > 1 ? 1 : 0; c < CPU_SETSIZE && c < (int)n_cpus; c++)
				CPU_SET(c, &all);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			sched_setaffinity(0, sizeof(all), &all);
			while (bench_now() < end)
				for (int k = 0; k < 10000; k++)
					spin++;
			_exit(0);
		}
		l->pid[l->n++] = pid;
	}
	return 0;
}

/* Wait until the consumer is idle (it finished a command). */
static void wait_idle(struct consumer *c)
{
	while (atomic_load(&c->cmd) != CMD_IDLE || atomic_load(&c->busy))
		sched_yield();
}

static int produce(int prog_fd, const struct frame *f, uint32_t n, uint64_t *ns)
{
	__u32 ret = 0, dur = 0;
	int err = xh_run(prog_fd, f->b, f->len, n, &ret, &dur);

	if (err) {
		fprintf(stderr, "%s: BPF_PROG_TEST_RUN: %s\n", PROG, strerror(-err));
		return err;
	}
	if (ret != XDP_PASS) {
		fprintf(stderr, "%s: xdp_ingress returned %u, want XDP_PASS\n", PROG, ret);
		return -EPROTO;
	}
	if (ns)
		*ns += (uint64_t)dur * n;
	return 0;
}

static int lost_events(struct ebpfmon *skel, uint64_t *lost, uint64_t *events)
{
	struct ebpfmon_counters cnt;
	int err = xh_counters(skel, &cnt);

	if (err) {
		fprintf(stderr, "%s: reading counters: %s\n", PROG, strerror(-err));
		return err;
	}
	*lost = cnt.ringbuf_drops;
	*events = cnt.events;
	return 0;
}

/* Capacity: fill the ring, then time one ring_buffer__consume() in the consumer. */
static int capacity(struct ebpfmon *skel, const struct frame *f, struct consumer *c,
		    unsigned int rounds, uint32_t fill, struct figures *fig)
{
	int prog_fd = bpf_program__fd(skel->progs.xdp_ingress), err;
	uint64_t lost0, lost1, ev;

	if ((err = lost_events(skel, &lost0, &ev)))
		return err;
	for (unsigned int r = 0; r < rounds; r++) {
		if ((err = produce(prog_fd, f, fill, NULL)))
			return err;
		atomic_store(&c->cmd, CMD_DRAIN);
		wait_idle(c);
		if (c->err) {
			fprintf(stderr, "%s: ring_buffer__consume: %s\n", PROG, strerror(-c->err));
			return c->err;
		}
		if (c->drained != fill) {
			fprintf(stderr, "%s: consumed %" PRIu64 " events of %u produced\n", PROG,
				c->drained, fill);
			return -EPROTO;
		}
		fig->cap_events += c->drained;
		fig->cap_ns += c->drain_ns;
	}
	if ((err = lost_events(skel, &lost1, &ev)))
		return err;
	if (lost1 != lost0) {
		fprintf(stderr, "%s: %" PRIu64 " events lost while filling: fill %u too large\n",
			PROG, lost1 - lost0, fill);
		return -EOVERFLOW;
	}
	return 0;
}

/*
 * Sustained: the producer runs batch events per call, as fast as XDP goes, while the
 * consumer is in ring_buffer__poll(); whatever it does not keep up with is lost (counted by
 * the kernel in counters.ringbuf_drops), there is no flow control.
 */
static int sustained(struct ebpfmon *skel, const struct frame *f, struct consumer *c,
		     unsigned int seconds, uint32_t batch, unsigned int n_load, struct figures *fig)
{
	int prog_fd = bpf_program__fd(skel->progs.xdp_ingress), err = 0;
	uint64_t lost0, lost1, ev0, ev1, base = atomic_load(&c->published), t0, end;
	struct load load = {0};

	if ((err = lost_events(skel, &lost0, &ev0)))
		return err;
	if ((err = load_start(&load, n_load, xh_ncpus(), seconds))) {
		fprintf(stderr, "%s: starting the load: %s\n", PROG, strerror(-err));
		return err;
	}
	atomic_store(&c->cmd, CMD_POLL);
	while (!atomic_load(&c->busy))
		sched_yield();
	t0 = bench_now();
	end = t0 + seconds * 1000000000ull;
	while (bench_now() < end) {
		if ((err = produce(prog_fd, f, batch, &fig->prod_ns)))
			break;
		fig->produced += batch;
	}
	if ((err = err ?: lost_events(skel, &lost1, &ev1)))
		goto stop;
	fig->lost = lost1 - lost0;
	/* The consumer is done when it has handled everything that was not lost. */
	while (atomic_load(&c->published) - base < fig->produced - fig->lost &&
	       bench_now() < end + 1000000000ull)
		sched_yield();
	fig->elapsed_ns = bench_now() - t0;
	if (ev1 - ev0 != fig->produced - fig->lost)
		fprintf(stderr, "%s: counters.events moved by %" PRIu64 ", %" PRIu64 " produced\n",
			PROG, ev1 - ev0, fig->produced);
stop:
	load_stop(&load);
	atomic_store(&c->cmd, CMD_IDLE);
	wait_idle(c);
	ring_buffer__consume(c->rb); /* anything left, so that the next phase starts empty */
	fig->consumed = c->handled - base;
	if (!err && c->err) {
		fprintf(stderr, "%s: ring_buffer__poll: %s\n", PROG, strerror(-c->err));
		err = c->err;
	}
	return err;
}

static int configure(struct ebpfmon *skel, struct frame *f)
{
	struct ebpfmon_settings set = {
		.flags = EBPFMON_F_URL_MATCH, .max_conn_per_ip = 100, .drop_sample_mask = 0xffff};
	int err;

	set.http_ports[0] = 80;
	err = xh_settings_set(skel, &set);
	err = err ?: xh_url_rule_add(skel, "/", 1, EBPFMON_URL_REPORT);
	if (err) {
		fprintf(stderr, "%s: settings or url_rules: %s\n", PROG, strerror(-err));
		return err;
	}
	frame_init(f);
	put_eth(f, PKT_ETH_P_IP);
	put_ipv4(f, "198.18.0.2", "198.18.0.1", IPPROTO_TCP, 0, 0);
	put_tcp(f, 40000, 80, TCP_ACK | TCP_PSH);
	put_str(f, REQUEST);
	frame_finish(f);
	return 0;
}

/* One run, one event, the expected one: or the figures would not mean anything. */
static int check_one(struct ebpfmon *skel, const struct frame *f)
{
	struct consumer probe = {0};
	int prog_fd = bpf_program__fd(skel->progs.xdp_ingress), err;
	struct ring_buffer *rb =
		ring_buffer__new(bpf_map__fd(skel->maps.events), handle, &probe, NULL);

	if (!rb) {
		fprintf(stderr, "%s: ring_buffer__new: %s\n", PROG, strerror(errno));
		return -errno;
	}
	err = produce(prog_fd, f, 1, NULL);
	if (!err)
		ring_buffer__consume(rb);
	ring_buffer__free(rb);
	if (!err && (probe.handled != 1 || probe.bad)) {
		fprintf(stderr, "%s: one run gave %" PRIu64 " events (%" PRIu64 " not a URL hit)\n",
			PROG, probe.handled, probe.bad);
		err = -EPROTO;
	}
	return err;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [-d SECONDS] [-b BATCH] [-r ROUNDS] [--no-load]\n"
		"\n"
		"Ring-buffer events consumed per second with none lost: the real xdp_ingress\n"
		"(BPF_PROG_TEST_RUN) produces URL-hit events, a thread consumes them counting\n"
		"only, then calling policy_on_event(). In the sustained phases one busy process\n"
		"per CPU competes with the consumer. Needs root.\n"
		"\n"
		"  -d, --seconds SECONDS  length of each sustained phase (default %u, 1..60)\n"
		"  -b, --batch BATCH      events per BPF_PROG_TEST_RUN call in the sustained phase\n"
		"                         (default %u, 1000..100000000; every call with more than\n"
		"                         one run costs the kernel ~15 ms to switch the XDP\n"
		"                         dispatcher)\n"
		"  -r, --rounds ROUNDS    capacity rounds, one full ring each (default %u, 1..10000)\n"
		"      --no-load          no competing load in the sustained phases\n"
		"  -h, --help             this help\n"
		"\n"
		"Besides the tables it prints FIGURE lines (tab-separated: id, value, baseline,\n"
		"unit, target): events.sustained_per_s, events.lost, events.capacity_per_s and\n"
		"events.producer_per_s (the rate offered in the sustained phase), each against\n"
		"the count-only consumer of the same run.\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -d 10 -b 2000000\n",
		PROG, DEFAULT_SECONDS, DEFAULT_BATCH, DEFAULT_ROUNDS, PROG, PROG);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	static const struct option lo[] = {
		{"seconds", required_argument, NULL, 'd'}, {"batch", required_argument, NULL, 'b'},
		{"rounds", required_argument, NULL, 'r'},  {"no-load", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},	   {},
	};
	unsigned int seconds = DEFAULT_SECONDS, batch = DEFAULT_BATCH, rounds = DEFAULT_ROUNDS;
	unsigned int n_load;
	bool no_load = false;
	struct consumer c = {.cpu = -1};
	struct figures fig[2] = {0};
	struct ebpfmon *skel = NULL;
	struct frame f;
	struct policy policy;
	struct maps maps;
	pthread_t th;
	bool started = false;
	char err_buf[512];
	uint32_t ring_events, fill;
	int opt, err, rc = 1;

	while ((opt = getopt_long(argc, argv, "d:b:r:h", lo, NULL)) != -1) {
		long long v;

		switch (opt) {
		case 'd':
		case 'b':
		case 'r':
			v = bench_parse_num(optarg, opt == 'b' ? 1000 : 1,
					    opt == 'd'	 ? 60
					    : opt == 'b' ? 100000000
							 : 10000);
			if (v < 0) {
				fprintf(stderr, "%s: -%c %s: out of range\n", PROG, opt, optarg);
				return 2;
			}
			*(opt == 'd' ? &seconds : opt == 'b' ? &batch : &rounds) = (unsigned int)v;
			break;
		case 'L':
			no_load = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	log_init(PROG, LOG_LVL_WARN);
	bpf_test_require_root_or_skip(PROG);
	err = xh_load_opts(&skel, 0, false);
	if (err) {
		bpf_test_skip_if_privilege(PROG, "the ebpfmon BPF object", err);
		fprintf(stderr, "%s: cannot load the ebpfmon BPF object: %s\n", PROG,
			strerror(-err));
		return 1;
	}
	if (configure(skel, &f) || check_one(skel, &f))
		goto out;

	/* A record is the event rounded up to 8 bytes plus an 8-byte header. */
	ring_events = bpf_map__max_entries(skel->maps.events) /
		      (uint32_t)(((sizeof(struct ebpfmon_ev_url_hit) + 7) & ~7ul) + 8);
	fill = ring_events - ring_events / 8;

	config_defaults(&cfg);
	if (config_set(&cfg, "network", "malicious_url_patterns", PATTERNS, err_buf,
		       sizeof(err_buf))) {
		fprintf(stderr, "%s: %s\n", PROG, err_buf);
		goto out;
	}
	maps = (struct maps){
		.bans = bpf_map__fd(skel->maps.bans),
		.ban_nets = bpf_map__fd(skel->maps.ban_nets),
		.allow_nets = bpf_map__fd(skel->maps.allow_nets),
		.url_rules = bpf_map__fd(skel->maps.url_rules),
		.settings = bpf_map__fd(skel->maps.settings),
		.events = bpf_map__fd(skel->maps.events),
		.ip_stats = bpf_map__fd(skel->maps.ip_stats),
		.conn_count = bpf_map__fd(skel->maps.conn_count),
		.counters = bpf_map__fd(skel->maps.counters),
		.proc_io = bpf_map__fd(skel->maps.proc_io),
	};
	policy_init(&policy, &cfg, &maps, NULL);

	c.rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle, &c, NULL);
	if (!c.rb) {
		fprintf(stderr, "%s: ring_buffer__new: %s\n", PROG, strerror(errno));
		goto out_policy;
	}
	if (xh_ncpus() >= 2 && libbpf_num_possible_cpus() >= 2) {
		pin(0);
		c.cpu = 1;
	}
	n_load = no_load ? 0 : (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
	atomic_store(&c.cmd, CMD_IDLE);
	if ((err = pthread_create(&th, NULL, consumer_main, &c))) {
		fprintf(stderr, "%s: pthread_create: %s\n", PROG, strerror(err));
		goto out_policy;
	}
	started = true;

	for (int m = 0; m < 2; m++) {
		c.policy = m ? &policy : NULL;
		if (capacity(skel, &f, &c, rounds, fill, &fig[m]) ||
		    sustained(skel, &f, &c, seconds, batch, n_load, &fig[m]))
			goto out_thread;
	}
	if (c.bad) {
		fprintf(stderr, "%s: %" PRIu64 " events were not the URL hit produced\n", PROG,
			c.bad);
		goto out_thread;
	}

	printf("event_rate: xdp_ingress (BPF_PROG_TEST_RUN) emits one EBPFMON_EV_URL_HIT of %zu "
	       "bytes per run; ring buffer %u KiB = %u events\n",
	       sizeof(struct ebpfmon_ev_url_hit), bpf_map__max_entries(skel->maps.events) / 1024,
	       ring_events);
	printf("producer on CPU 0, consumer thread on CPU %d; policy_on_event() with the patterns "
	       "%s: the path \"/index.html\" matches none, nothing is banned\n",
	       c.cpu, PATTERNS);
	printf("competing load in the sustained phases: %u busy process(es) on the CPUs but the "
	       "producer's (XDP runs in softirq, ahead of any process)\n\n",
	       n_load);
	printf("capacity: ring filled with %u events, then one ring_buffer__consume() timed; "
	       "%u rounds\n",
	       fill, rounds);
	printf("  %-22s %10s %10s %12s\n", "handler", "events", "ns/event", "M events/s");
	for (int m = 0; m < 2; m++) {
		double ns = (double)fig[m].cap_ns / (double)fig[m].cap_events;

		printf("  %-22s %10" PRIu64 " %10.1f %12.2f",
		       m ? "policy_on_event()" : "count only", fig[m].cap_events, ns, 1e3 / ns);
		if (m)
			printf("   %.2fx the baseline's rate\n",
			       ((double)fig[0].cap_ns / (double)fig[0].cap_events) / ns);
		else
			printf("   (baseline)\n");
	}
	printf("\nsustained: %u s each, the producer at full speed (%u events per call, no flow "
	       "control), the consumer in ring_buffer__poll() (epoll) as the analyzer\n",
	       seconds, batch);
	printf("  %-22s %10s %10s %6s %12s %12s\n", "handler", "produced", "consumed", "lost",
	       "M consumed/s", "XDP ns/event");
	for (int m = 0; m < 2; m++) {
		double rate = (double)fig[m].consumed * 1e3 / (double)fig[m].elapsed_ns;

		printf("  %-22s %10" PRIu64 " %10" PRIu64 " %6" PRIu64 " %12.2f %12.1f",
		       m ? "policy_on_event()" : "count only", fig[m].produced, fig[m].consumed,
		       fig[m].lost, rate, (double)fig[m].prod_ns / (double)fig[m].produced);
		if (m)
			printf("   %.2fx the baseline's rate\n",
			       rate / ((double)fig[0].consumed * 1e3 / (double)fig[0].elapsed_ns));
		else
			printf("   (baseline)\n");
	}
	printf("  (XDP ns/event: BPF_PROG_TEST_RUN's own time per run; when the consumer's "
	       "capacity is above 1e3 / that, the producer sets the pace)\n");
	for (int m = 0; m < 2; m++) {
		double prod = 1e3 * (double)fig[m].produced / (double)fig[m].elapsed_ns;
		double cap = 1e3 * (double)fig[m].cap_events / (double)fig[m].cap_ns;

		printf("  %-22s produced %.2f M/s against a capacity of %.2f M/s: %s\n",
		       m ? "policy_on_event()" : "count only", prod, cap,
		       prod < cap ? "the producer set the pace (the consumer had headroom)"
				  : "the consumer set the pace");
	}
	printf("  the ring holds %u events: %.1f ms of the producer's rate; a consumer that "
	       "sleeps in epoll and wakes later than that loses events\n",
	       ring_events,
	       ring_events * ((double)fig[1].elapsed_ns / (double)fig[1].produced) / 1e6);

	{
		double cap = 1e9 * (double)fig[1].cap_events / (double)fig[1].cap_ns;
		double rate = 1e9 * (double)fig[1].consumed / (double)fig[1].elapsed_ns;

		printf("\ntarget: >= %.0f M events/s consumed with none lost (policy_on_event())\n",
		       TARGET_RATE / 1e6);
		printf("  consumer capacity %6.2f M/s, none lost: %s\n", cap / 1e6,
		       cap >= TARGET_RATE ? "PASS" : "UNDER");
		printf("  sustained         %6.2f M/s, %" PRIu64 " lost: %s\n", rate / 1e6,
		       fig[1].lost, rate >= TARGET_RATE && !fig[1].lost ? "PASS" : "UNDER");
		printf("FIGURE\tevents.sustained_per_s\t%.0f\t%.0f\tevents/s\t>=%.0f\n", rate,
		       1e9 * (double)fig[0].consumed / (double)fig[0].elapsed_ns, TARGET_RATE);
		printf("FIGURE\tevents.lost\t%" PRIu64 "\t%" PRIu64 "\tevents\t<1\n", fig[1].lost,
		       fig[0].lost);
		printf("FIGURE\tevents.capacity_per_s\t%.0f\t%.0f\tevents/s\t>=%.0f\n", cap,
		       1e9 * (double)fig[0].cap_events / (double)fig[0].cap_ns, TARGET_RATE);
		/* what paced the sustained phase: the producer, when it is below the capacity */
		printf("FIGURE\tevents.producer_per_s\t%.0f\t%.0f\tevents/s\t-\n",
		       1e9 * (double)fig[1].produced / (double)fig[1].elapsed_ns,
		       1e9 * (double)fig[0].produced / (double)fig[0].elapsed_ns);
	}
	rc = 0;
out_thread:
	if (started) {
		atomic_store(&c.cmd, CMD_QUIT);
		pthread_join(th, NULL);
	}
out_policy:
	ring_buffer__free(c.rb);
	policy_free(&policy);
out:
	ebpfmon__destroy(skel);
	return rc;
}
