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

struct netstats {
	const struct maps *maps;
	unsigned int ncpus;
	void *keys, *vals; /* batch buffers */
	size_t batch;
	bool primed;
	uint64_t prev_rx_packets, prev_rx_bytes, prev_tx_packets, prev_tx_bytes, prev_drops;
};

int netstats_init(struct netstats *ns, const struct maps *maps);
void netstats_free(struct netstats *ns);

/*
 * Read ip_stats (in batches: memory stays small whatever the map holds), conn_count, bans and
 * counters. Fills *out (totals are this interval's: the growth since the previous call, the
 * first call only primes them and returns 0) and top[0..*ntop) (addresses by packets since
 * they were first seen, with their established connections). 1 when *out is a snapshot to
 * store, 0 on the first call, -errno. between(ctx), when not NULL, runs after every batch, so
 * that a large map does not hold up the caller's other work (the analyzer's events).
 */
int netstats_collect(struct netstats *ns, int64_t now, struct store_net_stats *out,
		     struct store_top top[NETSTATS_TOP_N], size_t *ntop, void (*between)(void *),
		     void *ctx);

#endif
