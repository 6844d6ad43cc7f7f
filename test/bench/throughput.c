// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * throughput: TCP throughput (iperf3) over a veth pair between two namespaces, with nothing
 * attached and with the real ebpfmon-loader + ebpfmon-analyzer watching the server's end.
 *
 *   sudo build/test/bench/throughput [-r ROUNDS] [-t SECONDS] [-P STREAMS] [-m MODE]
 *                                    [--loader-only] [--frags]
 *
 * Namespaces ebb-mon-PID (iperf3 -s, 198.18.210.1/24) and ebb-peer-PID (iperf3 -c,
 * 198.18.210.2/24). Data flows peer -> mon: the ingress program sees it on the monitored
 * end, the egress accounting program sees the ACKs going back. Each round measures five
 * setups, in ABCDE order and EDCBA the next round (the machine's drift falls on all alike),
 * nothing attached in the middle so that each ebpfmon setup runs right beside it:
 *
 *   empty XDP  a two-instruction XDP_PASS program in the mode the loader uses: what the hook
 *              itself costs, before any work of ebpfmon's
 *   ebpfmon    the loader started afresh, the analyzer as user ebpfmon without capabilities
 *   nothing    the loader stopped (its link pins removed): no XDP on the veth (checked, ip link)
 *   ebpfmon tc the same as ebpfmon with [loader] xdp_mode = tc (tc_ingress on a tcx link)
 *   empty tcx  a two-instruction tcx ingress program returning TCX_NEXT: the tc hook's cost
 *
 * One iperf3 client run per setup and round: SECONDS measured after 1 s that iperf3 omits
 * (slow start), the receiver's bits per second. Figures are medians over the rounds; the
 * paired per-round ratios are printed too.
 *
 * After each ebpfmon run, ip_stats[client] says what XDP saw (packets, bytes): bytes per
 * packet far above the MTU mean XDP ran on GSO/GRO super-packets (generic XDP), near the MTU
 * that the sender had to segment (native XDP on a veth switches its peer's GSO off). tc
 * counts the segments of a super-packet (skb->gso_segs), so its bytes per packet stay near
 * the MSS whatever the skbs were. With
 * BPF_STATS_RUN_TIME enabled for the whole run, the time spent in the loader's programs (and
 * in the empty one) during each iperf3 run says how much of the difference is theirs.
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails, 2 on usage. Everything it makes is removed at exit, also after ^C.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "benchproc.h"
#include "ebpfmon_abi.h"
#include "log.h"
#include "nsbench.h"
#include "pkt.h"

#define PROG "throughput"

#define MON_ADDR	"198.18.210.1"
#define PEER_ADDR	"198.18.210.2"
#define IPERF_PORT	"5201"
#define DEFAULT_ROUNDS	3u
#define DEFAULT_SECONDS 5u
#define MAX_ROUNDS	31u
#define SETTLE_MS	500u /* after the daemons are up, before iperf3 starts */
#define TARGET_RATIO	0.97
#define TCX_INGRESS	46 /* enum bpf_attach_type BPF_TCX_INGRESS (Linux 6.6; not in our uapi) */
#define TCX_NEXT	-1 /* the next tcx program, else the stack */
#define OUT_LEN		(256 * 1024) /* iperf3 -J: ~1.5 kB per stream and second */

struct opts {
	unsigned int rounds, seconds, streams;
	const char *xdp_mode; /* NULL: the loader's default (auto) */
	bool loader_only;
	bool frags; /* the empty program declared frags-aware */
	const char *loader, *analyzer;
	/* the rig's configuration with [loader] xdp_mode = tc (as long as struct nsb's conf) */
	char conf_tc[128];
};

/* One iperf3 run. */
struct run {
	double gbps;				   /* receiver's bits per second / 1e9 */
	double cpu_client;			   /* iperf3's host_total (the sender), % */
	double cpu_server;			   /* remote_total (the receiver), % */
	long long retransmits;			   /* sender's; -1 unknown */
	unsigned long long xdp_packets, xdp_bytes; /* ip_stats[client] rx growth (ebpfmon) */
	/* time in the programs during the run (BPF_STATS_RUN_TIME): ingress (XDP or tc),
	 * egress, the rest */
	struct prog_time {
		unsigned long long ns, cnt;
	} prog[3];
	double wall_s; /* of the iperf3 run, omitted second included */
};

enum { P_XDP, P_EGRESS, P_OTHER };

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"TCP throughput of iperf3 over a veth pair between two private namespaces, with\n"
		"nothing attached, with the real ebpfmon-loader and ebpfmon-analyzer watching the\n"
		"server's end through XDP and through tc (xdp_mode = tc), and with empty XDP and tcx\n"
		"programs, in alternating order, ROUNDS times each. Needs root, iperf3 and tcx\n"
		"(Linux 6.6+).\n"
		"\n"
		"  -r, --rounds N       rounds; figures are medians (default %u, 1..%u)\n"
		"  -t, --seconds S      measured seconds per iperf3 run (default %u, 1..60)\n"
		"  -P, --streams N      parallel TCP streams (default 1, 1..16)\n"
		"  -m, --xdp-mode MODE  the loader's xdp_mode in the XDP setup: auto, native or\n"
		"                       generic (default: the loader's own, auto = generic on a\n"
		"                       veth); the tc setup always runs xdp_mode = tc\n"
		"      --loader-only    no analyzer: what the kernel programs alone cost\n"
		"      --frags          load the empty XDP program frags-aware\n"
		"                       (BPF_F_XDP_HAS_FRAGS, as SEC(\"xdp.frags\")): generic XDP\n"
		"                       then takes GSO packets without linearising them\n"
		"      --loader PATH    ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH  ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help           this text\n"
		"\n"
		"Prints, besides the table, one line per figure for test/bench/run-all:\n"
		"  FIGURE<TAB>id<TAB>ebpfmon<TAB>peer<TAB>unit<TAB>target\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -r 5 -t 10 -m native\n",
		PROG, DEFAULT_ROUNDS, MAX_ROUNDS, DEFAULT_SECONDS, PROG, PROG);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { OPT_LOADER = 256, OPT_ANALYZER, OPT_LOADER_ONLY, OPT_FRAGS };
	static const struct option lo[] = {
		{"rounds", required_argument, NULL, 'r'},
		{"seconds", required_argument, NULL, 't'},
		{"streams", required_argument, NULL, 'P'},
		{"xdp-mode", required_argument, NULL, 'm'},
		{"loader-only", no_argument, NULL, OPT_LOADER_ONLY},
		{"frags", no_argument, NULL, OPT_FRAGS},
		{"loader", required_argument, NULL, OPT_LOADER},
		{"analyzer", required_argument, NULL, OPT_ANALYZER},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt;

	*o = (struct opts){.rounds = DEFAULT_ROUNDS, .seconds = DEFAULT_SECONDS, .streams = 1};
	while ((opt = getopt_long(argc, argv, "r:t:P:m:h", lo, NULL)) != -1) {
		unsigned int *dst = NULL;
		long long min = 1, max = 0;

		switch (opt) {
		case 'r':
			dst = &o->rounds, max = MAX_ROUNDS;
			break;
		case 't':
			dst = &o->seconds, max = 60;
			break;
		case 'P':
			dst = &o->streams, max = 16;
			break;
		case 'm':
			if (strcmp(optarg, "auto") && strcmp(optarg, "native") &&
			    strcmp(optarg, "generic")) {
				fprintf(stderr, "%s: --xdp-mode %s: want auto, native or generic\n",
					PROG, optarg);
				usage(stderr);
				return -EINVAL;
			}
			o->xdp_mode = optarg;
			continue;
		case OPT_LOADER_ONLY:
			o->loader_only = true;
			continue;
		case OPT_FRAGS:
			o->frags = true;
			continue;
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
		if (bench_opt_num(PROG, opt, optarg, min, max, dst)) {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* The number after "key": in json, searched from the first occurrence of after. */
static int json_num(const char *json, const char *after, const char *key, double *v)
{
	char pat[64];
	const char *p = strstr(json, after);
	char *end;

	if (!p)
		return -ENOENT;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(p, pat);
	if (!p)
		return -ENOENT;
	p += strlen(pat);
	errno = 0;
	*v = strtod(p, &end);
	return errno || end == p ? -EINVAL : 0;
}

/* Sum over the CPUs of ip_stats[PEER_ADDR]: rx packets and bytes. 0 or -errno. */
static int client_rx(int ip_fd, unsigned long long *packets, unsigned long long *bytes)
{
	struct ebpfmon_addr key = pkt_addr(PEER_ADDR);
	int ncpus = libbpf_num_possible_cpus();
	struct ebpfmon_ip_stats *v;

	*packets = *bytes = 0;
	if (ncpus <= 0)
		return -EINVAL;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(ip_fd, &key, v)) {
		int err = errno == ENOENT ? 0 : -errno;

		free(v);
		return err;
	}
	for (int c = 0; c < ncpus; c++) {
		*packets += v[c].rx_packets;
		*bytes += v[c].rx_bytes;
	}
	free(v);
	return 0;
}

/* One iperf3 client run from the peer namespace; fills r. 0, -EINTR, or -EIO (logged). */
static int iperf_run(const struct nsb *ns, unsigned int seconds, unsigned int streams,
		     struct run *r)
{
	static char out[OUT_LEN];
	char t[16], p[16];
	double v;
	int st;

	snprintf(t, sizeof(t), "%u", seconds);
	snprintf(p, sizeof(p), "%u", streams);
	for (int attempt = 0;; attempt++) {
		st = bp_run(ns->peer_ns,
			    (char *const[]){"iperf3", "-c", MON_ADDR, "-p", IPERF_PORT, "-t", t,
					    "-O", "1", "-P", p, "-J", NULL},
			    out, sizeof(out));
		if (st == -EINTR)
			return st;
		/* the server may not listen yet on the first run */
		if (st == 0 || attempt == 5 || !strstr(out, "unable to connect"))
			break;
		if (nsb_sleep_ms(200))
			return -EINTR;
	}
	if (st != 0 || json_num(out, "\"sum_received\"", "bits_per_second", &v)) {
		fprintf(stderr, "%s: iperf3 -c failed (status %d):\n%.2000s\n", PROG, st, out);
		return -EIO;
	}
	r->gbps = v / 1e9;
	r->retransmits = json_num(out, "\"sum_sent\"", "retransmits", &v) ? -1 : (long long)v;
	r->cpu_client = json_num(out, "\"cpu_utilization_percent\"", "host_total", &v) ? 0 : v;
	r->cpu_server = json_num(out, "\"cpu_utilization_percent\"", "remote_total", &v) ? 0 : v;
	return 0;
}

/* Append [loader] xdp_mode to the rig's configuration (a second [loader] section is fine). */
static int conf_xdp_mode(const struct nsb *ns, const char *mode)
{
	FILE *f = fopen(ns->conf, "ae");

	if (!f)
		return -errno;
	fprintf(f, "[loader]\nxdp_mode = %s\n", mode);
	return fclose(f) ? -errno : 0;
}

/*
 * The rig's configuration (before any xdp_mode is added to it) with [loader] xdp_mode = tc,
 * as o->conf_tc beside it. 0 or -errno.
 */
static int conf_tc(const struct nsb *ns, struct opts *o)
{
	char buf[4096];
	size_t n;
	FILE *in, *out;
	int err = 0;

	snprintf(o->conf_tc, sizeof(o->conf_tc), "%s/ebpfmon-tc.conf", ns->tmpdir);
	in = fopen(ns->conf, "re");
	if (!in)
		return -errno;
	out = fopen(o->conf_tc, "we");
	if (!out) {
		err = -errno;
		fclose(in);
		return err;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			err = -EIO;
	fprintf(out, "[loader]\nxdp_mode = tc\n");
	fclose(in);
	if (fclose(out) && !err)
		err = -errno;
	/* the analyzer reads it as user ebpfmon */
	if (!err && chmod(o->conf_tc, 0644))
		err = -errno;
	return err;
}

/* The mode the loader reports it attached XDP in, from its log ("..." when not found). */
static void attached_mode(const struct nsb *ns, char *buf, size_t len)
{
	char line[512];
	FILE *f = fopen(ns->loader_log, "re");

	snprintf(buf, len, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "XDP attached");

		if (!p)
			p = strstr(line, "ingress attached as tcx");
		if (p) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s", p);
		}
	}
	fclose(f);
}

/* Whether the loader pinned a tcx ingress link for the veth (links/ingress-IFNAME). */
static bool tc_link_pinned(const struct nsb *ns)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/" EBPFMON_PIN_LINKS "/ingress-%s", ns->pin_root,
		 ns->mon_if);
	return access(path, F_OK) == 0;
}

/* "nothing attached": the loader is stopped and nothing else is on the veth. */
static int run_nothing(struct nsb *ns, const struct opts *o, struct run *r)
{
	int att = bp_xdp_attached(ns);

	if (att != 0 || tc_link_pinned(ns)) {
		fprintf(stderr, "%s: %s", PROG,
			att > 0	   ? "XDP still attached with the loader stopped\n"
			: att == 0 ? "the tcx ingress link still pinned with the loader stopped\n"
				   : "cannot read the veth's state\n");
		return -EIO;
	}
	return iperf_run(ns, o->seconds, o->streams, r);
}

/* The XDP flags of the mode the loader attaches in: native only when asked for. */
static __u32 xdp_flags(const struct opts *o)
{
	return o->xdp_mode && !strcmp(o->xdp_mode, "native") ? XDP_FLAGS_DRV_MODE
							     : XDP_FLAGS_SKB_MODE;
}

/* ifindex of the monitored veth end, looked up inside its namespace; or -errno. */
static int mon_ifindex(const struct nsb *ns)
{
	unsigned int idx;
	int err;

	if (setns(ns->mon_netns, CLONE_NEWNET))
		return -errno;
	idx = if_nametoindex(ns->mon_if);
	err = idx ? 0 : -errno;
	if (setns(ns->orig_netns, CLONE_NEWNET)) {
		fprintf(stderr, "%s: cannot return to the original netns: %s\n", PROG,
			strerror(errno));
		exit(EXIT_FAILURE);
	}
	return err ?: (int)idx;
}

/*
 * "empty XDP": a program of two instructions (r0 = XDP_PASS; exit) attached in the mode the
 * loader uses, for what the hook alone costs before any work of ebpfmon's.
 */
static int run_empty_xdp(struct nsb *ns, const struct opts *o, struct run *r)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, lo, .prog_flags = o->frags ? BPF_F_XDP_HAS_FRAGS : 0);
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int ifindex = mon_ifindex(ns), fd, err;
	uint64_t w0;

	if (ifindex < 0)
		return ifindex;
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", insns, 2, &lo);
	if (fd < 0) {
		fprintf(stderr, "%s: loading an XDP_PASS program: %s\n", PROG, strerror(errno));
		return -errno;
	}
	/* bpf_xdp_attach() is netlink: it acts in the calling thread's namespace */
	if (setns(ns->mon_netns, CLONE_NEWNET)) {
		err = -errno;
		close(fd);
		return err;
	}
	err = bpf_xdp_attach(ifindex, fd, xdp_flags(o), NULL);
	if (setns(ns->orig_netns, CLONE_NEWNET))
		exit(EXIT_FAILURE);
	if (err) {
		fprintf(stderr, "%s: attaching an XDP_PASS program to %s: %s\n", PROG, ns->mon_if,
			strerror(-err));
		close(fd);
		return err;
	}
	w0 = bench_now();
	err = iperf_run(ns, o->seconds, o->streams, r);
	r->wall_s = (bench_now() - w0) / 1e9;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		r->prog[P_XDP].ns = info.run_time_ns;
		r->prog[P_XDP].cnt = info.run_cnt;
	}
	close(fd);
	if (setns(ns->mon_netns, CLONE_NEWNET))
		exit(EXIT_FAILURE);
	if (bpf_xdp_detach(ifindex, xdp_flags(o), NULL) && !err)
		err = -errno;
	if (setns(ns->orig_netns, CLONE_NEWNET))
		exit(EXIT_FAILURE);
	return err;
}

/*
 * "empty tcx": a program of two instructions (r0 = TCX_NEXT; exit) on a tcx ingress link, for
 * what the tc hook alone costs (the baseline of xdp_mode = tc).
 */
static int run_empty_tcx(struct nsb *ns, const struct opts *o, struct run *r)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TCX_NEXT},
		{.code = BPF_JMP | BPF_EXIT},
	};
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int ifindex = mon_ifindex(ns), fd, link, err;
	uint64_t w0;

	if (ifindex < 0)
		return ifindex;
	fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "tcx_next", "GPL", insns, 2, NULL);
	if (fd < 0) {
		fprintf(stderr, "%s: loading a TCX_NEXT program: %s\n", PROG, strerror(errno));
		return -errno;
	}
	/* the kernel finds ifindex in the calling thread's namespace */
	if (setns(ns->mon_netns, CLONE_NEWNET)) {
		err = -errno;
		close(fd);
		return err;
	}
	link = bpf_link_create(fd, ifindex, TCX_INGRESS, NULL);
	err = link < 0 ? -errno : 0;
	if (setns(ns->orig_netns, CLONE_NEWNET))
		exit(EXIT_FAILURE);
	if (err) {
		fprintf(stderr,
			"%s: attaching a tcx ingress program to %s: %s (tcx needs Linux "
			"6.6)\n",
			PROG, ns->mon_if, strerror(-err));
		close(fd);
		return err;
	}
	w0 = bench_now();
	err = iperf_run(ns, o->seconds, o->streams, r);
	r->wall_s = (bench_now() - w0) / 1e9;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		r->prog[P_XDP].ns = info.run_time_ns;
		r->prog[P_XDP].cnt = info.run_cnt;
	}
	close(link); /* the last reference: detached */
	close(fd);
	return err;
}

/* Run time and count of the loader's programs (its pins), summed into t[P_XDP..P_OTHER]. */
static int progs_time(const struct nsb *ns, struct prog_time t[3])
{
	char dir[128], path[400];
	struct dirent *e;
	DIR *d;

	memset(t, 0, 3 * sizeof(*t));
	snprintf(dir, sizeof(dir), "%s/" EBPFMON_PIN_PROGS, ns->pin_root);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		struct bpf_prog_info info = {0};
		__u32 len = sizeof(info);
		int fd, k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
			k = !strcmp(info.name, "xdp_ingress") || !strcmp(info.name, "tc_ingress")
				    ? P_XDP
			    : !strcmp(info.name, "egress_account") ? P_EGRESS
								   : P_OTHER;
			t[k].ns += info.run_time_ns;
			t[k].cnt += info.run_cnt;
		}
		close(fd);
	}
	closedir(d);
	return 0;
}

/* ebpfmon with its XDP ingress (tc false, xdp_mode as -m says) or xdp_mode = tc. */
static int run_ebpfmon_hook(struct nsb *ns, const struct opts *o, struct run *r, bool tc)
{
	unsigned long long p0, b0, p1, b1;
	struct prog_time t0[3];
	char conf[sizeof(ns->conf)];
	int err, ip_fd = -1, xdp;
	uint64_t w0;

	snprintf(conf, sizeof(conf), "%s", ns->conf);
	if (tc)
		snprintf(ns->conf, sizeof(ns->conf), "%s", o->conf_tc);
	err = nsb_start_loader(ns, 20);
	if (!err && !o->loader_only)
		err = nsb_start_analyzer(ns, 15);
	snprintf(ns->conf, sizeof(ns->conf), "%s", conf);
	if (err || (err = nsb_sleep_ms(SETTLE_MS)))
		goto out;
	xdp = bp_xdp_attached(ns);
	if (!tc && xdp != 1) {
		fprintf(stderr, "%s: the loader runs but the veth shows no XDP program\n", PROG);
		err = -EIO;
		goto out;
	}
	if (tc && (xdp != 0 || !tc_link_pinned(ns))) {
		fprintf(stderr, "%s: xdp_mode = tc: %s\n", PROG,
			xdp ? "the veth shows an XDP program" : "no links/ingress-IFNAME pinned");
		err = -EIO;
		goto out;
	}
	ip_fd = nsb_map_fd(ns, EBPFMON_MAP_IP_STATS);
	if (ip_fd < 0) {
		err = ip_fd;
		goto out;
	}
	if ((err = client_rx(ip_fd, &p0, &b0)) || (err = progs_time(ns, t0)))
		goto out;
	w0 = bench_now();
	if ((err = iperf_run(ns, o->seconds, o->streams, r)))
		goto out;
	r->wall_s = (bench_now() - w0) / 1e9;
	if ((err = client_rx(ip_fd, &p1, &b1)) || (err = progs_time(ns, r->prog)))
		goto out;
	for (int k = 0; k < 3; k++) {
		r->prog[k].ns -= t0[k].ns;
		r->prog[k].cnt -= t0[k].cnt;
	}
	r->xdp_packets = p1 - p0;
	r->xdp_bytes = b1 - b0;
	if (!o->loader_only && !nsb_analyzer_alive(ns))
		err = -ECHILD;
out:
	if (ip_fd >= 0)
		close(ip_fd);
	if (bp_stop_daemons(ns) && !err)
		err = -EIO;
	return err;
}

static int run_ebpfmon(struct nsb *ns, const struct opts *o, struct run *r)
{
	return run_ebpfmon_hook(ns, o, r, false);
}

static int run_ebpfmon_tc(struct nsb *ns, const struct opts *o, struct run *r)
{
	return run_ebpfmon_hook(ns, o, r, true);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, min and max of n values (n >= 1). */
static double median(const double *v, unsigned int n, double *min, double *max)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	if (min)
		*min = s[0];
	if (max)
		*max = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double per_run(const struct prog_time *t)
{
	return t->cnt ? (double)t->ns / (double)t->cnt : 0;
}

static double cpu_pct(const struct prog_time *t, double wall_s)
{
	return wall_s > 0 ? t->ns / 1e7 / wall_s : 0;
}

enum setup { S_NOTHING, S_EMPTY, S_EBPFMON, S_EMPTY_TC, S_TC, S_N };
static const char *const setup_name[S_N] = {"nothing", "empty XDP", "ebpfmon", "empty tcx",
					    "ebpfmon tc"};
static int (*const setup_run[S_N])(struct nsb *, const struct opts *, struct run *) = {
	run_nothing, run_empty_xdp, run_ebpfmon, run_empty_tcx, run_ebpfmon_tc};

int main(int argc, char **argv)
{
	/* nothing in the middle, each ebpfmon beside it: the paired ratios of the targets are
	 * taken a run apart, and the order's reversal evens out a drift of the machine */
	static const enum setup order[2][S_N] = {{S_EMPTY, S_EBPFMON, S_NOTHING, S_TC, S_EMPTY_TC},
						 {S_EMPTY_TC, S_TC, S_NOTHING, S_EBPFMON, S_EMPTY}};
	static struct nsb ns;
	static struct run run[S_N][MAX_ROUNDS];
	double g[S_N][MAX_ROUNDS], pr[MAX_ROUNDS], prt[MAX_ROUNDS], med[S_N], lo[S_N], hi[S_N];
	double load[1], mr, rmin, rmax, ratio, ratio_tc;
	char iperf_log[128], mode[256] = "?";
	const char *sfx;
	pid_t server;
	struct opts o;
	int err = 0, rc = 1;

	if (parse_opts(argc, argv, &o))
		return 2;
	log_init(PROG, LOG_LVL_WARN);
	nsb_init(&ns, PROG, o.loader, o.analyzer);
	bp_init();
	if (access("/usr/bin/iperf3", X_OK)) {
		fprintf(stderr,
			"%s: iperf3 not found (apt-get install iperf3, or "
			"packaging/install-deps.sh --bench)\n",
			PROG);
		return 1;
	}
	/* run time of the programs, for as long as this fd is open (Linux 5.8) */
	if (bpf_enable_stats(BPF_STATS_RUN_TIME) < 0)
		fprintf(stderr,
			"%s: cannot enable BPF run-time statistics: %s (no program times)\n", PROG,
			strerror(errno));
	if ((err = bp_topology(&ns, MON_ADDR "/24", PEER_ADDR "/24")) ||
	    (err = nsb_write_conf(&ns, "max_connections_per_ip = 100\n"
				       "http_ports = 80\n"
				       "allowlist = 127.0.0.0/8, ::1\n"
				       "monitoring_interval = 1s")) ||
	    (err = conf_tc(&ns, &o)) || (o.xdp_mode && (err = conf_xdp_mode(&ns, o.xdp_mode))))
		goto out;
	snprintf(iperf_log, sizeof(iperf_log), "%s/iperf3-server.log", ns.tmpdir);
	server = bp_spawn(ns.mon_ns,
			  (char *const[]){"iperf3", "-s", "-B", MON_ADDR, "-p", IPERF_PORT, NULL},
			  iperf_log);
	if (server < 0) {
		err = server;
		goto out;
	}
	/* warm-up: caches, the server's first accept; not counted */
	{
		struct run w;

		if ((err = nsb_sleep_ms(300)) || (err = iperf_run(&ns, 1, o.streams, &w)))
			goto out;
	}
	for (unsigned int i = 0; i < o.rounds && !err; i++) {
		for (int k = 0; k < S_N && !err; k++) {
			enum setup s = order[i % 2][k];

			err = setup_run[s](&ns, &o, &run[s][i]);
			if (!err && s == S_EBPFMON && i == 0)
				attached_mode(&ns, mode, sizeof(mode));
		}
		if (!err)
			fprintf(stderr,
				"%s: round %u/%u: nothing %.2f, empty XDP %.2f, ebpfmon %.2f, "
				"empty tcx %.2f, ebpfmon tc %.2f Gbit/s\n",
				PROG, i + 1, o.rounds, run[S_NOTHING][i].gbps, run[S_EMPTY][i].gbps,
				run[S_EBPFMON][i].gbps, run[S_EMPTY_TC][i].gbps, run[S_TC][i].gbps);
	}
	if (err)
		goto out;

	printf("throughput: iperf3 TCP, %u stream(s), %u s (+1 s omitted) per run, %u rounds in "
	       "ABCDE/EDCBA order; %s -> %s over a veth (MTU 1500)\n",
	       o.streams, o.seconds, o.rounds, PEER_ADDR, MON_ADDR);
	printf("ebpfmon: %s%s, xdp_mode %s (%s)\n", ns.loader,
	       o.loader_only ? " alone (no analyzer)" : " + analyzer (user ebpfmon)",
	       o.xdp_mode ? o.xdp_mode : "default", mode);
	printf("empty XDP: r0 = XDP_PASS; exit, attached in %s mode%s\n",
	       xdp_flags(&o) == XDP_FLAGS_DRV_MODE ? "native" : "generic",
	       o.frags ? ", frags-aware (BPF_F_XDP_HAS_FRAGS)" : "");
	printf("ebpfmon tc: the same with xdp_mode = tc; empty tcx: r0 = TCX_NEXT; exit, on a "
	       "tcx ingress link\n");
	if (getloadavg(load, 1) != 1)
		load[0] = -1;
	printf("load average: %.2f (%ld CPUs online)\n\n", load[0], sysconf(_SC_NPROCESSORS_ONLN));
	printf("  %5s %9s %9s %9s %7s %16s %15s %12s %9s\n", "round", "nothing", "empty XDP",
	       "ebpfmon", "ratio", "retransmits n/e/m", "srv CPU% n/e/m", "XDP packets",
	       "B/packet");
	for (unsigned int i = 0; i < o.rounds; i++) {
		const struct run *n = &run[S_NOTHING][i], *e = &run[S_EMPTY][i],
				 *m = &run[S_EBPFMON][i];

		for (int s = 0; s < S_N; s++)
			g[s][i] = run[s][i].gbps;
		pr[i] = n->gbps > 0 ? m->gbps / n->gbps : 0;
		printf("  %5u %9.3f %9.3f %9.3f %7.3f %5lld/%lld/%lld %6.0f/%.0f/%.0f %12llu "
		       "%9.0f\n",
		       i + 1, n->gbps, e->gbps, m->gbps, pr[i], n->retransmits, e->retransmits,
		       m->retransmits, n->cpu_server, e->cpu_server, m->cpu_server, m->xdp_packets,
		       m->xdp_packets ? (double)m->xdp_bytes / m->xdp_packets : 0.0);
	}
	printf("  (Gbit/s received; ratio: ebpfmon / nothing of the round)\n\n");
	printf("  %5s %9s %9s %9s %7s %16s %15s %12s %9s\n", "round", "nothing", "empty tcx",
	       "ebpfmon tc", "ratio", "retransmits n/e/m", "srv CPU% n/e/m", "tc packets",
	       "B/packet");
	for (unsigned int i = 0; i < o.rounds; i++) {
		const struct run *n = &run[S_NOTHING][i], *e = &run[S_EMPTY_TC][i],
				 *m = &run[S_TC][i];

		prt[i] = n->gbps > 0 ? m->gbps / n->gbps : 0;
		printf("  %5u %9.3f %9.3f %9.3f %7.3f %5lld/%lld/%lld %6.0f/%.0f/%.0f %12llu "
		       "%9.0f\n",
		       i + 1, n->gbps, e->gbps, m->gbps, prt[i], n->retransmits, e->retransmits,
		       m->retransmits, n->cpu_server, e->cpu_server, m->cpu_server, m->xdp_packets,
		       m->xdp_packets ? (double)m->xdp_bytes / m->xdp_packets : 0.0);
	}
	printf("  (tc packets: wire segments, skb->gso_segs of each socket buffer)\n\n");
	printf("  time in the BPF programs during the runs (BPF_STATS_RUN_TIME), %% of one CPU "
	       "over "
	       "the run:\n");
	for (unsigned int i = 0; i < o.rounds; i++) {
		for (int t = 0; t < 2; t++) {
			const struct run *e = &run[t ? S_EMPTY_TC : S_EMPTY][i],
					 *m = &run[t ? S_TC : S_EBPFMON][i];

			printf("  %5u  empty %-3s %9llu runs %6.0f ns/run %5.2f%%   ebpfmon %-3s "
			       "%9llu runs %6.0f ns/run %5.2f%%, egress %9llu runs %6.0f ns/run "
			       "%5.2f%%\n",
			       i + 1, t ? "tcx" : "XDP", e->prog[P_XDP].cnt,
			       per_run(&e->prog[P_XDP]), cpu_pct(&e->prog[P_XDP], e->wall_s),
			       t ? "tc" : "XDP", m->prog[P_XDP].cnt, per_run(&m->prog[P_XDP]),
			       cpu_pct(&m->prog[P_XDP], m->wall_s), m->prog[P_EGRESS].cnt,
			       per_run(&m->prog[P_EGRESS]), cpu_pct(&m->prog[P_EGRESS], m->wall_s));
		}
	}
	printf("\n");
	for (int s = 0; s < S_N; s++) {
		med[s] = median(g[s], o.rounds, &lo[s], &hi[s]);
		printf("  median %-10s %7.3f (%.3f..%.3f) Gbit/s, %.3fx nothing\n", setup_name[s],
		       med[s], lo[s], hi[s], med[S_NOTHING] > 0 ? med[s] / med[S_NOTHING] : 0);
	}
	mr = median(pr, o.rounds, &rmin, &rmax);
	ratio = med[S_NOTHING] > 0 ? med[S_EBPFMON] / med[S_NOTHING] : 0;
	printf("  paired per-round ratio ebpfmon / nothing: median %.3f (%.3f..%.3f)\n", mr, rmin,
	       rmax);
	mr = median(prt, o.rounds, &rmin, &rmax);
	printf("  paired per-round ratio ebpfmon tc / nothing: median %.3f (%.3f..%.3f)\n", mr,
	       rmin, rmax);
	printf("  (XDP packets: growth of ip_stats[%s] rx_packets during the ebpfmon run; "
	       "B/packet above 1500 = XDP saw GSO super-packets)\n",
	       PEER_ADDR);
	ratio_tc = med[S_NOTHING] > 0 ? med[S_TC] / med[S_NOTHING] : 0;
	printf("\ntarget\n  ebpfmon >= %.2fx nothing attached: %.3fx  %s\n", TARGET_RATIO, ratio,
	       ratio >= TARGET_RATIO ? "met" : "NOT met");
	printf("  ebpfmon tc >= %.2fx nothing attached: %.3fx  %s\n", TARGET_RATIO, ratio_tc,
	       ratio_tc >= TARGET_RATIO ? "met" : "NOT met");
	sfx = !o.xdp_mode || !strcmp(o.xdp_mode, "auto") ? ""
	      : !strcmp(o.xdp_mode, "native")		 ? "_native"
							 : "_generic";
	printf("\nFIGURE\tthroughput.tcp_gbps%s%s\t%.3f\t%.3f\tGbit/s\tratio>=%.2f\n", sfx,
	       o.loader_only ? "_loader_only" : "", med[S_EBPFMON], med[S_NOTHING], TARGET_RATIO);
	/* what the hook alone costs, and ebpfmon over it: where the difference comes from */
	printf("FIGURE\tthroughput.empty_xdp_gbps%s\t%.3f\t%.3f\tGbit/s\t-\n", sfx, med[S_EMPTY],
	       med[S_NOTHING]);
	printf("FIGURE\tthroughput.over_empty_xdp_gbps%s\t%.3f\t%.3f\tGbit/s\t-\n", sfx,
	       med[S_EBPFMON], med[S_EMPTY]);
	/* xdp_mode = tc: against nothing attached (the target), and its hook's share */
	printf("FIGURE\tthroughput.tc_ratio%s\t%.3f\t%.3f\tGbit/s\tratio>=%.2f\n",
	       o.loader_only ? "_loader_only" : "", med[S_TC], med[S_NOTHING], TARGET_RATIO);
	printf("FIGURE\tthroughput.empty_tcx_gbps\t%.3f\t%.3f\tGbit/s\t-\n", med[S_EMPTY_TC],
	       med[S_NOTHING]);
	printf("FIGURE\tthroughput.over_empty_tcx_gbps%s\t%.3f\t%.3f\tGbit/s\t-\n",
	       o.loader_only ? "_loader_only" : "", med[S_TC], med[S_EMPTY_TC]);
	rc = 0;
out:
	if (err == -EINTR) {
		fprintf(stderr, "%s: interrupted; cleaning up\n", PROG);
		rc = 130;
	}
	return rc; /* bp_cleanup() then nsb_cleanup() run at exit */
}
