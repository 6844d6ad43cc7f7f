/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the API's read-only calls answer from on nng's threads: snapshots that the analyzer's
 * loop takes and publishes, so that GetMonitorStatus and the live top list of GetNetworkStats
 * need neither the loop nor a walk of ip_stats per request.
 *
 * The loop runs a cycle every API_SNAP_PERIOD_MS (longer when a cycle costs more than 1/20 of
 * it) while clients ask, in slices of at most API_SNAP_SLICE_NS between its other work: the
 * status figures (interfaces, programs, loader, database, resources, open anomalies, bans in
 * force), one walk of ip_stats that counts the tracked addresses and keeps the top k by
 * packets and by bytes, then their connections and whether they are banned. At the end of a
 * cycle both snapshots are published at once (a pointer swap under a mutex; readers hold a
 * reference). BanIP and UnbanIP patch the published ones at once (bans in force, the banned
 * flag of the addresses concerned). Cycles stop after API_SNAP_DEMAND_MS without a request;
 * a request that finds no fresh snapshot goes to the loop, which answers it after the next
 * cycle.
 *
 * Threads: api_snap_status()/api_snap_top()/api_snap_put_*()/api_snap_demand()/
 * api_snap_counters() on any thread; everything else on the loop's thread only.
 */
#ifndef EBPFMON_API_SNAP_H
#define EBPFMON_API_SNAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ebpfmon_abi.h"

struct maps;
struct policy;
struct sysmon;

#define API_SNAP_PERIOD_MS  1000   /* a cycle this often at least, while clients ask */
#define API_SNAP_COST_SHARE 20	   /* and never more often than 20 times its own cost */
#define API_SNAP_DEMAND_MS  10000  /* cycles stop this long after the last request */
#define API_SNAP_SLICE_NS   500000 /* the loop is held this long at most per slice */
#define API_SNAP_TOP_MIN    100	   /* addresses kept per order at least */
#define API_SNAP_IFACES	    64
#define API_SNAP_PROGS	    64

struct api_snap_iface {
	char name[64];
	uint32_t ifindex;
	const char *xdp_mode; /* a static string */
};

/*
 * The loader's ingress links under the pin root root, at most max into out: links/xdp-IFNAME
 * (XDP: "native", "generic" or "offload" as netlink tells) and links/ingress-IFNAME (xdp_mode
 * tc: a tcx link, "tc"); "none" when the link lost its interface, "unknown" when the mode
 * cannot be read (another network namespace, no permission). Returns how many were filled.
 */
size_t api_snap_interfaces(const char *root, struct api_snap_iface *out, size_t max);

struct api_snap_prog {
	char name[64];
	uint32_t id;
	uint64_t run_count, run_time_ns;
};

/* GetMonitorStatus's figures but the kernel counters and the uptime (read per request). */
struct api_status_snap {
	atomic_uint refs;
	uint64_t taken_ns;	 /* CLOCK_MONOTONIC: the cycle began */
	uint64_t fresh_until_ns; /* CLOCK_MONOTONIC: served from until then */
	bool loader_running, dry_run;
	bool db_open, db_ok;
	int64_t db_failing_since; /* unix seconds, when open and failing */
	char db_error[256];
	uint64_t active_bans, tracked, open_anomalies;
	unsigned int have; /* enum sysmon_have */
	double cpu_pct, mem_pct, disk_bps;
	size_t n_ifaces, n_progs;
	struct api_snap_iface ifaces[API_SNAP_IFACES];
	struct api_snap_prog progs[API_SNAP_PROGS];
};

/* One tracked address, its counters summed over the CPUs. */
struct api_top_entry {
	struct ebpfmon_addr addr;
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, syns;
	uint64_t first_ns, last_ns; /* CLOCK_MONOTONIC(_COARSE), 0 unknown */
	uint32_t connections;	    /* established now */
	uint8_t in;		    /* bit o: among the top k of order o */
};

enum { API_TOP_PACKETS, API_TOP_BYTES, API_TOP_ORDERS };

/* The live top list: the top k addresses by packets and by bytes (rx + tx). */
struct api_top_snap {
	atomic_uint refs;
	uint64_t taken_ns, fresh_until_ns;
	int64_t as_of_unix_ms; /* the walk of ip_stats began (CLOCK_REALTIME) */
	uint64_t tracked;      /* entries of ip_stats the walk saw */
	uint32_t k;	       /* per order; fewer when fewer are tracked */
	size_t n;	       /* entries (both orders), sorted by address */
	struct api_top_entry *e;
	atomic_uchar *banned;	      /* per entry; the loop patches it after a change */
	uint32_t *by[API_TOP_ORDERS]; /* indices into e, largest first */
	size_t n_by[API_TOP_ORDERS];
	atomic_uint_fast64_t gen; /* grows with every banned flag that changes */
	/* the packed reply last built per order (api_snap_top_cached()), under cache_mu */
	pthread_mutex_t cache_mu;
	struct {
		void *buf;
		size_t len;
		uint32_t k;
		uint64_t gen;
	} cache[API_TOP_ORDERS];
};

struct api_snap;

/*
 * Make the snapshots' home for the maps m (which outlive it); started_ns: CLOCK_MONOTONIC
 * when the analyzer started serving. No cycle is due until a request asks. 0 or -ENOMEM.
 */
int api_snap_create(struct api_snap **out, const struct maps *m, uint64_t started_ns);
/* Free, after every reader is gone (api_destroy() first). NULL is fine. */
void api_snap_destroy(struct api_snap *s);

/* --- any thread --- */

/* A reference to the latest snapshot (NULL: none yet); give it back with the put. */
struct api_status_snap *api_snap_status(struct api_snap *s);
void api_snap_put_status(struct api_status_snap *st);
struct api_top_snap *api_snap_top(struct api_snap *s);
void api_snap_put_top(struct api_top_snap *t);
/*
 * The packed reply to a top list of k of order o, when one was kept for t at generation gen
 * (t->gen read before the flags): 0 and a malloc()ed copy in *buf, *len; else -ENOENT.
 */
int api_snap_top_cached(struct api_top_snap *t, uint32_t k, int o, uint64_t gen, void **buf,
			size_t *len);
/* Keep a copy of the packed reply built from t at generation gen (no memory: not kept). */
void api_snap_top_cache(struct api_top_snap *t, uint32_t k, int o, uint64_t gen, const void *buf,
			size_t len);
/* A client asked (a top list of k addresses; 0 for the status): keeps the cycles going. */
void api_snap_demand(struct api_snap *s, uint32_t k);
/* The kernel's counters now, summed over the CPUs: 0 or -errno. */
int api_snap_counters(struct api_snap *s, struct ebpfmon_counters *sum);
uint64_t api_snap_started_ns(const struct api_snap *s);
/* CLOCK_MONOTONIC now, in ns. */
uint64_t api_snap_now(void);

/* --- the loop's thread --- */

/*
 * Run the next slice of work that is due at now_ns (CLOCK_MONOTONIC): returns 1 when it
 * published new snapshots (requests waiting for them can be answered), else 0; *next_ns is
 * when to call again (0: not before api_snap_due() says so).
 */
int api_snap_step(struct api_snap *s, struct policy *p, const struct sysmon *sm, uint64_t now_ns,
		  uint64_t *next_ns);
/* A request waits for fresh snapshots (of at least k addresses): a cycle starts at once. */
void api_snap_want(struct api_snap *s, uint32_t k);
/* When the next slice is due (0: nothing is). */
uint64_t api_snap_due(const struct api_snap *s);
/*
 * The bans of net changed (BanIP, UnbanIP): delta entries in force more or fewer. The
 * published snapshots are patched at once: bans in force, and the banned flag of the
 * addresses inside net.
 */
void api_snap_bans_changed(struct api_snap *s, const struct addr_cidr *net, int delta);

/* --- without a loop (and the unit tests): everything now --- */

/* Every status figure now (a walk of ip_stats counts the tracked addresses). */
void api_snap_collect_status(struct policy *p, const struct sysmon *sm,
			     struct api_status_snap *out);
/* The top k now (one walk of ip_stats); NULL when memory ran out or the map is unreadable. */
struct api_top_snap *api_snap_collect_top(const struct maps *m, uint32_t k, int *err);

#endif
