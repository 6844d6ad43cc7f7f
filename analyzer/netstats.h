/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * One network snapshot per interval from the kernel maps: traffic totals of the interval,
 * tracked addresses, bans in force, drops, and the top addresses by packets.
 */
#ifndef EBPFMON_NETSTATS_H
#define EBPFMON_NETSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maps.h"
#include "store.h"

#define NETSTATS_TOP_N 10

/* A walk of ip_stats in progress: what the batches read so far. */
struct netstats_walk {
	bool active, first;
	unsigned char batch[32]; /* the kernel's position in the map */
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, tracked;
	struct store_top top[NETSTATS_TOP_N];
	size_t ntop;
};

struct netstats {
	const struct maps *maps;
	struct netstats_walk walk;
	unsigned int ncpus;
	void *keys, *vals; /* batch buffers */
	size_t batch;
	bool primed;
	uint64_t prev_rx_packets, prev_rx_bytes, prev_tx_packets, prev_tx_bytes, prev_drops;
};

int netstats_init(struct netstats *ns, const struct maps *maps);
void netstats_free(struct netstats *ns);

/*
 * One snapshot in steps, so that a large map never holds the caller's loop for long:
 * netstats_begin() starts a walk of ip_stats; netstats_step() reads it in batches until
 * clock_ns() (CLOCK_MONOTONIC ns) reaches deadline_ns, and returns 0 when more is left, 1 when
 * the walk is over, -errno when the map cannot be read (the walk is abandoned; begin again);
 * clock_ns NULL reads it all. netstats_finish() then reads conn_count, bans and counters and
 * fills *out (totals are this interval's: the growth since the previous snapshot, the first
 * only primes them and returns 0) and top[0..*ntop) (addresses by packets since they were
 * first seen, with their established connections): 1 when *out is a snapshot to store, 0 on
 * the first. An entry added or removed while a walk is between steps may be missed or not.
 */
void netstats_begin(struct netstats *ns);
int netstats_step(struct netstats *ns, uint64_t deadline_ns, uint64_t (*clock_ns)(void));
int netstats_finish(struct netstats *ns, int64_t now, struct store_net_stats *out,
		    struct store_top top[NETSTATS_TOP_N], size_t *ntop);

#endif
