// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "netstats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ebpfmon_abi.h"
#include "log.h"

#define NETSTATS_BATCH 256 /* entries a system call: ~0.1 ms on 2 CPUs */

int netstats_init(struct netstats *ns, const struct maps *maps)
{
	int n = libbpf_num_possible_cpus();

	memset(ns, 0, sizeof(*ns));
	if (n <= 0)
		return n ? n : -EINVAL;
	ns->maps = maps;
	ns->ncpus = n;
	ns->batch = NETSTATS_BATCH;
	ns->keys = calloc(ns->batch, sizeof(struct ebpfmon_addr));
	ns->vals = calloc(ns->batch * EBPFMON_IP_STATS_NVALS, sizeof(struct ebpfmon_ip_stats));
	if (!ns->keys || !ns->vals) {
		netstats_free(ns);
		return -ENOMEM;
	}
	return 0;
}

void netstats_free(struct netstats *ns)
{
	free(ns->keys);
	free(ns->vals);
	ns->keys = ns->vals = NULL;
}

/* Keep top[] sorted by packets, largest first. */
static void top_offer(struct store_top *top, size_t *ntop, const struct store_top *t)
{
	size_t i = *ntop;

	if (i == NETSTATS_TOP_N) {
		if (t->packets <= top[i - 1].packets)
			return;
		i--;
	} else {
		(*ntop)++;
	}
	while (i > 0 && top[i - 1].packets < t->packets) {
		top[i] = top[i - 1];
		i--;
	}
	top[i] = *t;
}

static uint64_t delta(uint64_t now, uint64_t prev)
{
	return now > prev ? now - prev : 0; /* an evicted address takes its counts with it */
}

static uint64_t drops_total(const struct netstats *ns)
{
	struct ebpfmon_counters c;

	if (maps_counters_sum(ns->maps, &c))
		return 0;
	return c.rx_drop_ban + c.rx_drop_net + c.rx_drop_url;
}

static uint64_t bans_in_force(const struct netstats *ns)
{
	long n = maps_bans_in_force(ns->maps->bans, sizeof(struct ebpfmon_addr));

	return n > 0 ? (uint64_t)n : 0;
}

void netstats_begin(struct netstats *ns)
{
	memset(&ns->walk, 0, sizeof(ns->walk));
	ns->walk.first = true;
	ns->walk.active = true;
}

int netstats_step(struct netstats *ns, uint64_t deadline_ns, uint64_t (*clock_ns)(void))
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct netstats_walk *w = &ns->walk;
	struct store_top *top = w->top;
	size_t *ntop = &w->ntop;
	int err = 0;

	if (!w->active)
		return 1;
	do {
		uint64_t rx_p = 0, rx_b = 0, tx_p = 0, tx_b = 0, tracked = 0;
		__u32 count = ns->batch;
		struct ebpfmon_ip_stats *v = ns->vals;

		err = bpf_map_lookup_batch(ns->maps->ip_stats, w->first ? NULL : w->batch, w->batch,
					   ns->keys, ns->vals, &count, &opts);
		if (err && errno != ENOENT) {
			err = -errno;
			log_warn("cannot read map ip_stats: %s", strerror(errno));
			w->active = false;
			return err;
		}
		w->first = false;
		for (__u32 i = 0; i < count; i++) {
			struct store_top t = {.addr = ((struct ebpfmon_addr *)ns->keys)[i]};

			for (unsigned int c = 0; c < EBPFMON_IP_STATS_NVALS; c++, v++) {
				t.packets += v->rx_packets + v->tx_packets;
				t.bytes += v->rx_bytes + v->tx_bytes;
				t.syns += v->syns;
				rx_p += v->rx_packets;
				rx_b += v->rx_bytes;
				tx_p += v->tx_packets;
				tx_b += v->tx_bytes;
			}
			tracked++;
			top_offer(top, ntop, &t);
		}
		w->rx_packets += rx_p;
		w->rx_bytes += rx_b;
		w->tx_packets += tx_p;
		w->tx_bytes += tx_b;
		w->tracked += tracked;
		if (err) { /* ENOENT: that was the last batch */
			w->active = false;
			return 1;
		}
	} while (!clock_ns || clock_ns() < deadline_ns);
	return 0;
}

int netstats_finish(struct netstats *ns, int64_t now, struct store_net_stats *out,
		    struct store_top top[NETSTATS_TOP_N], size_t *ntop)
{
	const struct netstats_walk *w = &ns->walk;
	uint64_t rx_p = w->rx_packets, rx_b = w->rx_bytes, tx_p = w->tx_packets, tx_b = w->tx_bytes,
		 drops;

	*ntop = w->ntop;
	memcpy(top, w->top, w->ntop * sizeof(*top));
	for (size_t i = 0; i < *ntop; i++) {
		struct ebpfmon_conn c;

		if (!bpf_map_lookup_elem(ns->maps->conn_count, &top[i].addr, &c))
			top[i].connections = c.active;
	}
	drops = drops_total(ns);
	*out = (struct store_net_stats){
		.ts = now,
		.rx_packets = delta(rx_p, ns->prev_rx_packets),
		.rx_bytes = delta(rx_b, ns->prev_rx_bytes),
		.tx_packets = delta(tx_p, ns->prev_tx_packets),
		.tx_bytes = delta(tx_b, ns->prev_tx_bytes),
		.tracked = w->tracked,
		.bans_active = bans_in_force(ns),
		.drops = delta(drops, ns->prev_drops),
	};
	ns->prev_rx_packets = rx_p;
	ns->prev_rx_bytes = rx_b;
	ns->prev_tx_packets = tx_p;
	ns->prev_tx_bytes = tx_b;
	ns->prev_drops = drops;
	if (!ns->primed) {
		ns->primed = true;
		return 0;
	}
	return 1;
}
