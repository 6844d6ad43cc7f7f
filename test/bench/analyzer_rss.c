// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * analyzer_rss: the resident memory of ebpfmon-analyzer with 100k addresses in ip_stats,
 * against the same analyzer on an empty ip_stats in the same run.
 *
 *   sudo build/test/bench/analyzer_rss [-n ADDRESSES] [-t SECONDS]
 *
 * The real loader runs on a private pin root, attached to a veth in a private namespace,
 * with max_tracked_ips = 131072. The analyzer runs unprivileged (user ebpfmon, no
 * capabilities) with monitoring_interval = 500ms for SECONDS, so that it reads ip_stats
 * (its network snapshot) several times; then VmRSS, VmHWM, RssAnon and RssFile of
 * /proc/PID/status and its CPU time are read, and it is stopped. First on ip_stats as the
 * loader left it (the baseline), then again, fresh, after this program wrote ADDRESSES
 * entries (198.18.1.0 upwards, per-CPU values, as root through the pin). The last snapshot
 * each run stored in its database says how many addresses it saw.
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails. Everything it makes is removed at exit, also after ^C.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ebpfmon_abi.h"
#include "log.h"
#include "nsbench.h"
#include "store.h"

#define PROG "analyzer_rss"

#define DEFAULT_ADDRS	100000u
#define DEFAULT_SECONDS 5u
#define MAX_TRACKED	131072u
#define FIRST_ADDR	0xc6120100u /* 198.18.1.0 */
#define MAX_ADDRS	(MAX_TRACKED - 256u)
#define INTERVAL_MS	500u
#define TARGET_KB	(16 * 1024)

struct phase {
	const char *name;
	long long entries_before, entries_after;
	long long rss, hwm, anon, file, cpu_ms;
	int64_t started, ended; /* unix seconds, for its snapshots in the database */
	int64_t tracked, ntop;	/* of its last snapshot; -1 unknown */
	int exit_status;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"Resident memory of ebpfmon-analyzer with ADDRESSES entries in ip_stats, next to\n"
		"the same analyzer on an empty ip_stats. Needs root; the analyzer runs as user\n"
		"ebpfmon without capabilities, the loader in a private network namespace.\n"
		"\n"
		"  -n, --addresses N    entries written to ip_stats (default %u, 1..%u)\n"
		"  -t, --seconds S      how long each analyzer runs before it is measured\n"
		"                       (default %u, 2..60; an interval is %u ms)\n"
		"      --loader PATH    ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH  ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help           this text\n"
		"\n"
		"Prints, besides the table, one line per figure for test/bench/run-all:\n"
		"  FIGURE<TAB>id<TAB>ebpfmon<TAB>baseline<TAB>unit<TAB>target\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -n 130000 -t 10\n",
		PROG, DEFAULT_ADDRS, MAX_ADDRS, DEFAULT_SECONDS, INTERVAL_MS, PROG, PROG);
}

/* Entries of a hash map, by walking its keys. */
static long long count_entries(int fd)
{
	struct ebpfmon_addr key, next, *cur = NULL;
	long long n = 0;

	while (bpf_map_get_next_key(fd, cur, &next) == 0) {
		key = next;
		cur = &key;
		n++;
	}
	return errno == ENOENT ? n : -errno;
}

static int run_phase(struct nsb *ns, int ip_fd, unsigned int seconds, struct phase *p)
{
	pid_t pid;
	int err;

	p->entries_before = count_entries(ip_fd);
	p->started = time(NULL);
	if ((err = nsb_start_analyzer(ns, 15)))
		return err;
	pid = ns->analyzer_pid;
	if ((err = nsb_sleep_ms(seconds * 1000)))
		return err;
	if (!nsb_analyzer_alive(ns))
		return -ECHILD;
	p->rss = bench_status_kb(pid, "VmRSS");
	p->hwm = bench_status_kb(pid, "VmHWM");
	p->anon = bench_status_kb(pid, "RssAnon");
	p->file = bench_status_kb(pid, "RssFile");
	p->cpu_ms = bench_cpu_ms(pid);
	p->entries_after = count_entries(ip_fd);
	p->exit_status = nsb_stop_analyzer(ns);
	p->ended = time(NULL);
	if (p->rss < 0 || p->hwm < 0) {
		fprintf(stderr, "%s: cannot read /proc/%d/status\n", PROG, (int)pid);
		return -EIO;
	}
	return 0;
}

struct last_snap {
	int64_t tracked, ntop;
};

static int take_first(const struct store_net_stats *s, const struct store_top *top, size_t ntop,
		      void *ctx)
{
	struct last_snap *l = ctx;

	(void)top;
	l->tracked = (int64_t)s->tracked;
	l->ntop = (int64_t)ntop;
	return 1; /* newest first: the first is the last one */
}

/* The last snapshot each phase stored: what the analyzer saw in ip_stats. */
static void read_snapshots(const struct nsb *ns, struct phase *ph, int n)
{
	char path[160];
	struct store *st;
	int err;

	err = nsb_db_path(ns, path, sizeof(path)) ?: store_open_readonly(path, &st);
	if (err) {
		fprintf(stderr, "%s: cannot read the analyzer's database %s: %s\n", PROG, path,
			strerror(-err));
		return;
	}
	for (int i = 0; i < n; i++) {
		struct store_query q = {.since = ph[i].started, .until = ph[i].ended, .limit = 1};
		struct last_snap l = {-1, -1};

		store_stats_list(st, &q, take_first, &l);
		ph[i].tracked = l.tracked;
		ph[i].ntop = l.ntop;
	}
	store_close(st);
}

static void print_row(const struct phase *p)
{
	char snap[32] = "-";

	if (p->tracked >= 0)
		snprintf(snap, sizeof(snap), "%" PRId64 "/%" PRId64, p->tracked, p->ntop);
	printf("  %-28s %8lld %9lld %9lld %9lld %9lld %7lld %16s %6d\n", p->name, p->entries_after,
	       p->rss, p->hwm, p->anon, p->file, p->cpu_ms, snap, p->exit_status);
}

int main(int argc, char **argv)
{
	enum { OPT_LOADER = 256, OPT_ANALYZER };
	static const struct option lo[] = {
		{"addresses", required_argument, NULL, 'n'},
		{"seconds", required_argument, NULL, 't'},
		{"loader", required_argument, NULL, OPT_LOADER},
		{"analyzer", required_argument, NULL, OPT_ANALYZER},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	static struct nsb ns;
	unsigned int addrs = DEFAULT_ADDRS, seconds = DEFAULT_SECONDS;
	const char *loader = NULL, *analyzer = NULL;
	struct phase ph[2] = {{.name = "baseline: ip_stats as left"},
			      {.name = "after filling ip_stats"}};
	struct bpf_map_info info = {0};
	__u32 info_len = sizeof(info);
	char net[320];
	int opt, err, ip_fd = -1, rc = 1;

	while ((opt = getopt_long(argc, argv, "n:t:h", lo, NULL)) != -1) {
		long long v;

		switch (opt) {
		case 'n':
			v = bench_parse_num(optarg, 1, MAX_ADDRS);
			if (v < 0) {
				fprintf(stderr, "%s: -n %s: want 1..%u\n", PROG, optarg, MAX_ADDRS);
				return 2;
			}
			addrs = (unsigned int)v;
			break;
		case 't':
			v = bench_parse_num(optarg, 2, 60);
			if (v < 0) {
				fprintf(stderr, "%s: -t %s: want 2..60\n", PROG, optarg);
				return 2;
			}
			seconds = (unsigned int)v;
			break;
		case OPT_LOADER:
			loader = optarg;
			break;
		case OPT_ANALYZER:
			analyzer = optarg;
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
	nsb_init(&ns, PROG, loader, analyzer);

	snprintf(net, sizeof(net),
		 "max_tracked_ips = %u\n"
		 "max_connections_per_ip = 100\n"
		 "http_ports = 80\n"
		 "allowlist = 127.0.0.0/8, ::1\n"
		 "cidr_ban_threshold = 0\n"
		 "monitoring_interval = %ums",
		 MAX_TRACKED, INTERVAL_MS);
	if ((err = nsb_topology(&ns, NULL, 0)) || (err = nsb_write_conf(&ns, net)) ||
	    (err = nsb_start_loader(&ns, 20)))
		goto fail;
	ip_fd = nsb_map_fd(&ns, EBPFMON_MAP_IP_STATS);
	if (ip_fd < 0 || bpf_obj_get_info_by_fd(ip_fd, &info, &info_len)) {
		err = ip_fd < 0 ? ip_fd : -errno;
		goto fail;
	}

	if ((err = run_phase(&ns, ip_fd, seconds, &ph[0])))
		goto fail;
	if ((err = nsb_fill_ip_stats(&ns, ip_fd, FIRST_ADDR, addrs)))
		goto fail;
	if ((err = run_phase(&ns, ip_fd, seconds, &ph[1])))
		goto fail;
	read_snapshots(&ns, ph, 2);

	printf("analyzer_rss: %s as user ebpfmon without capabilities, monitoring_interval %u ms, "
	       "measured after %u s (%u intervals)\n",
	       ns.analyzer, INTERVAL_MS, seconds, seconds * 1000 / INTERVAL_MS);
	printf("ip_stats: max_entries %u, %d possible CPUs (%zu bytes of per-CPU values per "
	       "entry); %u entries written between the runs\n\n",
	       info.max_entries, libbpf_num_possible_cpus(),
	       (size_t)libbpf_num_possible_cpus() * sizeof(struct ebpfmon_ip_stats), addrs);
	printf("  %-28s %8s %9s %9s %9s %9s %7s %16s %6s\n", "run", "ip_stats", "VmRSS kB",
	       "VmHWM kB", "RssAnon", "RssFile", "CPU ms", "snapshot tracked", "exit");
	print_row(&ph[0]);
	print_row(&ph[1]);
	printf("  %-28s %8lld %+9lld %+9lld %+9lld %+9lld %+7lld\n", "difference",
	       ph[1].entries_after - ph[0].entries_after, ph[1].rss - ph[0].rss,
	       ph[1].hwm - ph[0].hwm, ph[1].anon - ph[0].anon, ph[1].file - ph[0].file,
	       ph[1].cpu_ms - ph[0].cpu_ms);
	printf("  %-28s %8s %8.2fx %8.2fx\n", "ratio to the baseline", "",
	       (double)ph[1].rss / ph[0].rss, (double)ph[1].hwm / ph[0].hwm);
	if (ph[1].entries_after < (long long)addrs)
		printf("  note: ip_stats held %lld entries after the fill (%u written): the LRU "
		       "map evicted some\n",
		       ph[1].entries_before, addrs);
	printf("  (CPU ms: user + system time of the whole run, start-up included; snapshot "
	       "tracked: addresses/top rows of the last network_stats row the run stored)\n");
	printf("\ntarget\n  RSS <= %d MB with %u addresses: VmRSS %.1f MB, VmHWM %.1f MB  %s\n",
	       TARGET_KB / 1024, addrs, ph[1].rss / 1024.0, ph[1].hwm / 1024.0,
	       ph[1].hwm <= TARGET_KB ? "PASS" : "OVER");
	/* peak RSS with the addresses, next to the same analyzer's on an empty ip_stats */
	printf("\nFIGURE\tanalyzer.rss_%uk_mb\t%.1f\t%.1f\tMB\t<=%d\n", addrs / 1000,
	       ph[1].hwm / 1024.0, ph[0].hwm / 1024.0, TARGET_KB / 1024);
	rc = 0;
	goto out;
fail:
	if (err == -EINTR) {
		fprintf(stderr, "%s: interrupted; cleaning up\n", PROG);
		rc = 130;
	}
out:
	if (ip_fd >= 0)
		close(ip_fd);
	return rc; /* nsb_cleanup() runs at exit */
}
