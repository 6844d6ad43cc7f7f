/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The real ebpfmon BPF object, loaded for BPF_PROG_TEST_RUN: no map pinned (bpffs is left
 * alone, and nothing another test or a running ebpfmon pinned is reused), only the ingress
 * programs loaded (xdp_ingress, and tc_ingress on request), and helpers to read the maps the way user space does (per-CPU values summed).
 */
#ifndef EBPFMON_TEST_XDP_HARNESS_H
#define EBPFMON_TEST_XDP_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ebpfmon.skel.h"
#include "ebpfmon_abi.h"

/*
 * Open and load the skeleton with every pin path cleared (libbpf then neither reuses nor
 * creates a pin) and every program but xdp_ingress (and tc_ingress when tc) switched off.
 * ip_stats_max > 0 resizes ip_stats. url_verify false makes every URL hit count as one of an
 * established connection (BPF_PROG_TEST_RUN frames belong to none). Returns 0 or -errno; on
 * failure *out is NULL and nothing is left behind.
 */
static inline int xh_load_hooks(struct ebpfmon **out, uint32_t ip_stats_max, bool url_verify,
				bool tc)
{
	struct ebpfmon *skel;
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	*out = NULL;
	skel = ebpfmon__open();
	if (!skel)
		return -errno;
	bpf_object__for_each_map(map, skel->obj)
	{
		err = bpf_map__set_pin_path(map, NULL);
		if (err)
			goto fail;
	}
	bpf_object__for_each_program(prog, skel->obj)
	{
		err = bpf_program__set_autoload(prog,
						prog == skel->progs.xdp_ingress ||
							(tc && prog == skel->progs.tc_ingress));
		if (err)
			goto fail;
	}
	if (ip_stats_max) {
		err = bpf_map__set_max_entries(skel->maps.ip_stats, ip_stats_max);
		if (err)
			goto fail;
	}
	skel->rodata->url_verify = url_verify;
	err = ebpfmon__load(skel);
	if (err)
		goto fail;
	*out = skel;
	return 0;
fail:
	ebpfmon__destroy(skel);
	return err < 0 ? err : -err;
}

static inline int xh_load_opts(struct ebpfmon **out, uint32_t ip_stats_max, bool url_verify)
{
	return xh_load_hooks(out, ip_stats_max, url_verify, false);
}

static inline int xh_load(struct ebpfmon **out, uint32_t ip_stats_max)
{
	return xh_load_opts(out, ip_stats_max, true);
}

/* One BPF_PROG_TEST_RUN of prog_fd on a frame; *duration_ns is the mean over repeat runs. */
static inline int xh_run(int prog_fd, const void *data, size_t len, uint32_t repeat,
			 uint32_t *retval, uint32_t *duration_ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = (uint32_t)len,
		    .repeat = repeat);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	if (err)
		return err < 0 ? err : -errno;
	if (retval)
		*retval = opts.retval;
	if (duration_ns)
		*duration_ns = opts.duration;
	return 0;
}

/*
 * One BPF_PROG_TEST_RUN of a SCHED_CLS prog_fd (tc_ingress) on a frame of at least 14 bytes,
 * as a socket buffer that stands for gso_segs segments (0: not a GSO packet). The kernel makes
 * the socket buffer linear: test run has no way to put bytes in frags.
 */
static inline int xh_run_skb(int prog_fd, const void *data, size_t len, uint32_t repeat,
			     uint32_t gso_segs, uint32_t *retval, uint32_t *duration_ns)
{
	struct __sk_buff ctx = {.gso_segs = gso_segs};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = (uint32_t)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	if (err)
		return err < 0 ? err : -errno;
	if (retval)
		*retval = opts.retval;
	if (duration_ns)
		*duration_ns = opts.duration;
	return 0;
}

static inline int xh_ncpus(void)
{
	static int n;

	if (!n)
		n = libbpf_num_possible_cpus();
	return n;
}

/* counters[0] summed over the CPUs. */
static inline int xh_counters(struct ebpfmon *skel, struct ebpfmon_counters *sum)
{
	int n = xh_ncpus();
	struct ebpfmon_counters *v = calloc(n, sizeof(*v));
	uint32_t zero = 0;
	int err;

	memset(sum, 0, sizeof(*sum));
	if (!v)
		return -ENOMEM;
	err = bpf_map__lookup_elem(skel->maps.counters, &zero, sizeof(zero), v, n * sizeof(*v), 0);
	for (int c = 0; !err && c < n; c++) {
		__u64 *d = (__u64 *)sum;
		const __u64 *s = (const __u64 *)&v[c];

		for (size_t i = 0; i < sizeof(*sum) / sizeof(__u64); i++)
			d[i] += s[i];
	}
	free(v);
	return err;
}

static inline int xh_counters_zero(struct ebpfmon *skel)
{
	int n = xh_ncpus();
	struct ebpfmon_counters *v = calloc(n, sizeof(*v));
	uint32_t zero = 0;
	int err;

	if (!v)
		return -ENOMEM;
	err = bpf_map__update_elem(skel->maps.counters, &zero, sizeof(zero), v, n * sizeof(*v), 0);
	free(v);
	return err;
}

/*
 * ip_stats[addr] as user space reads it: its EBPFMON_IP_STATS_NVALS values summed (counts
 * added, first_seen the earliest non-zero, last_seen the latest). -ENOENT when the address
 * is not tracked.
 */
static inline int xh_ip_stats(struct ebpfmon *skel, const struct ebpfmon_addr *addr,
			      struct ebpfmon_ip_stats *sum)
{
	int n = EBPFMON_IP_STATS_NVALS;
	struct ebpfmon_ip_stats *v = calloc(n, sizeof(*v));
	int err;

	memset(sum, 0, sizeof(*sum));
	if (!v)
		return -ENOMEM;
	err = bpf_map__lookup_elem(skel->maps.ip_stats, addr, sizeof(*addr), v, n * sizeof(*v), 0);
	if (err) {
		free(v);
		return err < 0 ? err : -errno;
	}
	for (int c = 0; c < n; c++) {
		sum->rx_packets += v[c].rx_packets;
		sum->rx_bytes += v[c].rx_bytes;
		sum->tx_packets += v[c].tx_packets;
		sum->tx_bytes += v[c].tx_bytes;
		sum->syns += v[c].syns;
		if (v[c].first_seen_ns &&
		    (!sum->first_seen_ns || v[c].first_seen_ns < sum->first_seen_ns))
			sum->first_seen_ns = v[c].first_seen_ns;
		if (v[c].last_seen_ns > sum->last_seen_ns)
			sum->last_seen_ns = v[c].last_seen_ns;
		sum->ban_note = v[c].ban_note; /* one value (EBPFMON_IP_STATS_NVALS) */
	}
	free(v);
	return 0;
}

/* Put the same value on every CPU of a per-CPU map entry. */
static inline int xh_percpu_update(struct bpf_map *map, const void *key, size_t key_sz,
				   const void *val, size_t val_sz, uint64_t flags)
{
	int n = xh_ncpus();
	size_t stride = (val_sz + 7) & ~(size_t)7;
	uint8_t *v = calloc(n, stride);
	int err;

	if (!v)
		return -ENOMEM;
	for (int c = 0; c < n; c++)
		memcpy(v + c * stride, val, val_sz);
	err = bpf_map__update_elem(map, key, key_sz, v, n * stride, flags);
	free(v);
	return err;
}

/* Delete every entry of a hash or LPM map. Returns the number deleted or -errno. */
static inline int xh_map_clear(struct bpf_map *map)
{
	size_t ksz = bpf_map__key_size(map);
	uint8_t *key = calloc(1, ksz);
	int fd = bpf_map__fd(map), n = 0;

	if (!key)
		return -ENOMEM;
	/* Always ask for the first key: deleting while walking would skip entries. */
	while (!bpf_map_get_next_key(fd, NULL, key)) {
		if (bpf_map_delete_elem(fd, key)) {
			n = -errno;
			break;
		}
		n++;
	}
	free(key);
	return n;
}

/* Now on the clock of ban deadlines (expires_ns) and event timestamps. */
static inline uint64_t xh_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Now on the clock of ip_stats first_seen_ns/last_seen_ns. */
static inline uint64_t xh_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int xh_settings_set(struct ebpfmon *skel, const struct ebpfmon_settings *set)
{
	uint32_t zero = 0;

	return bpf_map__update_elem(skel->maps.settings, &zero, sizeof(zero), set, sizeof(*set),
				    BPF_ANY);
}

/* url_rules[pattern] = {id, action}; prefixlen is the pattern length in bits. */
static inline int xh_url_rule_add(struct ebpfmon *skel, const char *pattern, uint32_t id,
				  uint32_t action)
{
	struct ebpfmon_url_key key = {0};
	struct ebpfmon_url_rule rule = {.id = id, .action = action};
	size_t n = strlen(pattern);

	if (n == 0 || n > EBPFMON_URL_PATH_MAX)
		return -EINVAL;
	key.prefixlen = (uint32_t)n * 8;
	memcpy(key.path, pattern, n);
	return bpf_map__update_elem(skel->maps.url_rules, &key, sizeof(key), &rule, sizeof(rule),
				    BPF_ANY);
}

#endif /* EBPFMON_TEST_XDP_HARNESS_H */
