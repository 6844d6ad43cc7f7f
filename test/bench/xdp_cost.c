// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xdp_cost: what xdp_ingress costs per packet, measured with BPF_PROG_TEST_RUN against an
 * empty XDP program (return XDP_PASS) in the same run, with maps filled the way a busy
 * server fills them (100k tracked addresses, 10k bans, URL rules on port 80).
 *
 * Not a ctest: timings depend on the machine. It prints the targets and PASS/OVER next to
 * them, and exits 0 whatever the figures are. It exits 77 without root (1 when
 * EBPFMON_REQUIRE_BPF=1), and 1 when the setup fails or a case gives the wrong verdict,
 * because then the figures would not measure what they claim.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "bpf_test_env.h"
#include "pkt.h"
#include "xdp_harness.h"

#define PROG "xdp_cost"

#define DEFAULT_REPEAT	 1000000u
#define DEFAULT_ROUNDS	 5u
#define IP_STATS_MAX	 131072u
#define N_TRACKED	 100000u
#define N_BANS		 10000u
#define DROP_SAMPLE_MASK 1023u

#define TARGET_CLEAN_NS	 40.0
#define TARGET_BANNED_NS 20.0

/* Tracked: 198.18.0.0 + i, i < N_TRACKED. Banned: 198.19.200.0 + i, i < N_BANS. */
#define TRACKED_BASE 0xc6120000u /* 198.18.0.0 */
#define BANNED_BASE  0xc613c800u /* 198.19.200.0 */

struct bench_case {
	const char *name;
	struct frame f;
	int prog; /* 0: xdp_ingress, 1: the empty program */
	__u32 want;
	double ns[16];
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [-n REPEAT] [-r ROUNDS]\n"
		"\n"
		"Measure xdp_ingress per packet with BPF_PROG_TEST_RUN, next to an empty XDP\n"
		"program, on maps holding %u tracked addresses and %u bans. Needs root.\n"
		"\n"
		"  -n REPEAT  runs per measurement (default %u, at least 1000; below 1000000\n"
		"             the figures are noisy)\n"
		"  -r ROUNDS  measurements per case, the median is printed (default %u, 1..15)\n"
		"  -h         this help\n"
		"\n"
		"EXAMPLES\n"
		"  sudo %s\n"
		"  sudo %s -n 5000000 -r 9\n",
		PROG, N_TRACKED, N_BANS, DEFAULT_REPEAT, DEFAULT_ROUNDS, PROG, PROG);
}

/* A whole decimal number in [min, max], or -1. */
static long long parse_num(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

static void v4_text(uint32_t host_order, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", host_order >> 24, (host_order >> 16) & 0xff,
		 (host_order >> 8) & 0xff, host_order & 0xff);
}

static struct ebpfmon_addr v4_addr(uint32_t host_order)
{
	char buf[16];

	v4_text(host_order, buf, sizeof(buf));
	return pkt_addr(buf);
}

static int fill_maps(struct ebpfmon *skel)
{
	int n = xh_ncpus();
	struct ebpfmon_ip_stats *vals = calloc(n, sizeof(*vals));
	struct ebpfmon_ban ban = {.expires_ns = 0, .reason = EBPFMON_BAN_MANUAL};
	uint64_t now = xh_boot_ns();
	int err = 0;

	if (!vals)
		return -ENOMEM;
	for (int c = 0; c < n; c++)
		vals[c] = (struct ebpfmon_ip_stats){.rx_packets = 10,
						    .rx_bytes = 1000,
						    .first_seen_ns = now,
						    .last_seen_ns = now};
	for (uint32_t i = 0; i < N_TRACKED && !err; i++) {
		struct ebpfmon_addr a = v4_addr(TRACKED_BASE + i);

		err = bpf_map__update_elem(skel->maps.ip_stats, &a, sizeof(a), vals,
					   n * sizeof(*vals), BPF_NOEXIST);
		if (err)
			fprintf(stderr, "%s: ip_stats entry %u: %s\n", PROG, i, strerror(-err));
	}
	free(vals);
	for (uint32_t i = 0; i < N_BANS && !err; i++) {
		struct ebpfmon_addr a = v4_addr(BANNED_BASE + i);

		err = bpf_map__update_elem(skel->maps.bans, &a, sizeof(a), &ban, sizeof(ban),
					   BPF_NOEXIST);
		if (err)
			fprintf(stderr, "%s: bans entry %u: %s\n", PROG, i, strerror(-err));
	}
	return err;
}

static int configure(struct ebpfmon *skel)
{
	static const char *const patterns[] = {"/admin", "/wp-admin", "/.env", "/config"};
	static const char *const allow[][2] = {{"127.0.0.0", "8"},
					       {"198.19.200.2", "32"}, /* banned too */
					       {"2001:db8:a11::", "48"}};
	struct ebpfmon_settings set = {.flags = EBPFMON_F_URL_MATCH,
				       .drop_sample_mask = DROP_SAMPLE_MASK};
	__u32 one = 1;
	int err;

	set.http_ports[0] = 80;
	err = xh_settings_set(skel, &set);
	for (size_t i = 0; !err && i < sizeof(patterns) / sizeof(patterns[0]); i++)
		err = xh_url_rule_add(skel, patterns[i], (uint32_t)i + 1, EBPFMON_URL_DROP);
	for (size_t i = 0; !err && i < sizeof(allow) / sizeof(allow[0]); i++) {
		struct ebpfmon_lpm_key k = pkt_lpm_key(allow[i][0], (unsigned)atoi(allow[i][1]));

		err = bpf_map__update_elem(skel->maps.allow_nets, &k, sizeof(k), &one, sizeof(one),
					   BPF_ANY);
	}
	if (err)
		fprintf(stderr, "%s: settings, url_rules or allow_nets: %s\n", PROG,
			strerror(-err));
	return err;
}

/* Two instructions: r0 = XDP_PASS; exit. */
static int load_empty_prog(void)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
		{.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_empty", "GPL", insns, 2, NULL);

	return fd < 0 ? -errno : fd;
}

static void tcp_frame(struct frame *f, uint32_t src, uint16_t dport, uint8_t flags,
		      const char *payload)
{
	char s[16];

	v4_text(src, s, sizeof(s));
	frame_init(f);
	put_eth(f, PKT_ETH_P_IP);
	put_ipv4(f, s, "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(f, 40000, dport, flags);
	if (payload)
		put_str(f, payload);
	frame_finish(f);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[16];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int discard_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

static const char *verdict_name(__u32 v)
{
	return v == XDP_PASS ? "PASS" : v == XDP_DROP ? "DROP" : "other";
}

int main(int argc, char **argv)
{
	static const char http_req_miss[] =
		"GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: bench\r\n"
		"Accept: */*\r\n\r\n";
	static const char http_req_hit[] =
		"GET /wp-admin/setup-config.php HTTP/1.1\r\nHost: www.example.test\r\n"
		"User-Agent: bench\r\nAccept: */*\r\n\r\n";
	unsigned repeat = DEFAULT_REPEAT, rounds = DEFAULT_ROUNDS;
	struct bench_case cases[8];
	struct ebpfmon *skel = NULL;
	struct ring_buffer *rb = NULL;
	struct ebpfmon_counters cnt;
	struct utsname un;
	int opt, err, empty_fd = -1, prog_fd, rc = 1;
	size_t nc = 0;
	double empty_ns, clean_over, banned_over;

	while ((opt = getopt(argc, argv, "n:r:h")) != -1) {
		long long v;

		switch (opt) {
		case 'n':
			v = parse_num(optarg, 1000, UINT32_MAX);
			if (v < 0) {
				fprintf(stderr, "%s: -n %s: want a number from 1000 to %u\n", PROG,
					optarg, UINT32_MAX);
				return 2;
			}
			repeat = (unsigned)v;
			break;
		case 'r':
			v = parse_num(optarg, 1, 15);
			if (v < 0) {
				fprintf(stderr, "%s: -r %s: want a number from 1 to 15\n", PROG,
					optarg);
				return 2;
			}
			rounds = (unsigned)v;
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

	bpf_test_require_root_or_skip(PROG);
	err = xh_load_opts(&skel, IP_STATS_MAX, false);
	if (err) {
		bpf_test_skip_if_privilege(PROG, "the ebpfmon BPF object", err);
		fprintf(stderr, "%s: cannot load the ebpfmon BPF object: %s\n", PROG,
			strerror(-err));
		return 1;
	}
	empty_fd = load_empty_prog();
	if (empty_fd < 0) {
		bpf_test_skip_if_privilege(PROG, "an empty XDP program", empty_fd);
		fprintf(stderr, "%s: cannot load the empty XDP program: %s\n", PROG,
			strerror(-empty_fd));
		goto out;
	}
	prog_fd = bpf_program__fd(skel->progs.xdp_ingress);
	if (fill_maps(skel) || configure(skel))
		goto out;
	/* Nobody else reads the events; drained between rounds so each round starts empty. */
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), discard_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "%s: ring_buffer__new: %s\n", PROG, strerror(errno));
		goto out;
	}

	cases[nc] = (struct bench_case){.name = "empty XDP program", .prog = 1, .want = XDP_PASS};
	tcp_frame(&cases[nc++].f, TRACKED_BASE + 1, 443, TCP_ACK, NULL);
	cases[nc] = (struct bench_case){.name = "clean tracked IPv4 TCP ACK", .want = XDP_PASS};
	tcp_frame(&cases[nc++].f, TRACKED_BASE + 1, 443, TCP_ACK, NULL);
	cases[nc] = (struct bench_case){.name = "clean IPv6 TCP ACK", .want = XDP_PASS};
	frame_init(&cases[nc].f);
	put_eth(&cases[nc].f, PKT_ETH_P_IPV6);
	put_ipv6(&cases[nc].f, "2001:db8:1::1", "2001:db8::1", IPPROTO_TCP);
	put_tcp(&cases[nc].f, 40000, 443, TCP_ACK);
	frame_finish(&cases[nc++].f);
	cases[nc] = (struct bench_case){.name = "banned IPv4 (permanent ban)", .want = XDP_DROP};
	tcp_frame(&cases[nc++].f, BANNED_BASE + 1, 443, TCP_SYN, NULL);
	cases[nc] = (struct bench_case){.name = "banned but allowlisted IPv4", .want = XDP_PASS};
	tcp_frame(&cases[nc++].f, BANNED_BASE + 2, 443, TCP_SYN, NULL);
	cases[nc] = (struct bench_case){.name = "HTTP request, rules miss", .want = XDP_PASS};
	tcp_frame(&cases[nc++].f, TRACKED_BASE + 2, 80, TCP_ACK | TCP_PSH, http_req_miss);
	cases[nc] = (struct bench_case){.name = "HTTP request, drop rule hit", .want = XDP_DROP};
	tcp_frame(&cases[nc++].f, TRACKED_BASE + 3, 80, TCP_ACK | TCP_PSH, http_req_hit);

	/* Rounds go across the cases, so that drift of the machine hits every case alike. */
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t i = 0; i < nc; i++) {
			struct bench_case *c = &cases[i];
			__u32 verdict = 0, dur = 0;

			err = xh_run(c->prog ? empty_fd : prog_fd, c->f.b, c->f.len, repeat,
				     &verdict, &dur);
			if (err) {
				fprintf(stderr, "%s: BPF_PROG_TEST_RUN (%s): %s\n", PROG, c->name,
					strerror(-err));
				goto out;
			}
			if (verdict != c->want) {
				fprintf(stderr,
					"%s: %s: verdict %s, want %s; the figures would be "
					"meaningless\n",
					PROG, c->name, verdict_name(verdict),
					verdict_name(c->want));
				goto out;
			}
			c->ns[r] = dur;
			ring_buffer__consume(rb);
		}
	}
	if (xh_counters(skel, &cnt))
		goto out;

	uname(&un);
	printf("xdp_cost: BPF_PROG_TEST_RUN, %u runs per measurement, median of %u rounds\n",
	       repeat, rounds);
	printf("kernel %s, %d possible CPUs\n", un.release, xh_ncpus());
	printf("maps: ip_stats %u tracked (max %u), bans %u, url_rules /admin /wp-admin /.env "
	       "/config (drop), http_ports {80}, drop_sample_mask %u, ban_nets off\n\n",
	       N_TRACKED, IP_STATS_MAX, N_BANS, DROP_SAMPLE_MASK);
	printf("%-30s %7s %7s %7s   %s\n", "case", "bytes", "ns/pkt", "-empty", "verdict");
	empty_ns = median(cases[0].ns, rounds);
	for (size_t i = 0; i < nc; i++) {
		double m = median(cases[i].ns, rounds);

		if (i == 0)
			printf("%-30s %7zu %7.0f %7s   %s\n", cases[i].name, cases[i].f.len, m, "-",
			       verdict_name(cases[i].want));
		else
			printf("%-30s %7zu %7.0f %+7.0f   %s\n", cases[i].name, cases[i].f.len, m,
			       m - empty_ns, verdict_name(cases[i].want));
	}
	printf("\nevents written %" PRIu64 ", lost to a full ring buffer %" PRIu64
	       " (the URL-hit case fills the %u KiB ring each round: nobody consumes during a "
	       "run)\n",
	       (uint64_t)cnt.events, (uint64_t)cnt.ringbuf_drops,
	       bpf_map__max_entries(skel->maps.events) / 1024);

	clean_over = median(cases[1].ns, rounds) - empty_ns;
	banned_over = median(cases[3].ns, rounds) - empty_ns;
	printf("\ntargets\n");
	printf("  clean tracked <= %.0f ns over empty: %5.0f ns  %s\n", TARGET_CLEAN_NS, clean_over,
	       clean_over <= TARGET_CLEAN_NS ? "PASS" : "OVER");
	printf("  banned        <= %.0f ns over empty: %5.0f ns  %s\n", TARGET_BANNED_NS,
	       banned_over, banned_over <= TARGET_BANNED_NS ? "PASS" : "OVER");
	rc = 0;
out:
	ring_buffer__free(rb);
	if (empty_fd >= 0)
		close(empty_fd);
	ebpfmon__destroy(skel);
	return rc;
}
