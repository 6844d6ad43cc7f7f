/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Prometheus metrics: a pure renderer of the text exposition format 0.0.4 over a snapshot of
 * plain numbers, and an opt-in HTTP listener (nng's HTTP server) that serves the latest
 * snapshot at GET /metrics. Every metric is listed in docs/operations.md (Metrics).
 *
 * Threads: the analyzer's loop owns its state and fills a snapshot (each interval, and after
 * a batch of events that banned); metrics_server_publish() copies it under a mutex. nng's
 * threads answer scrapes from that copy alone and never touch the analyzer's state.
 */
#ifndef EBPFMON_METRICS_H
#define EBPFMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ebpfmon_abi.h"

/* Upper bounds (seconds) of the time-to-ban histogram's buckets; +Inf follows them. */
#define METRICS_TTB_BOUNDS                                                                         \
	{                                                                                          \
		0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  \
			1, 2.5, 5, 10                                                              \
	}
#define METRICS_TTB_BUCKETS 16

/* A histogram of seconds over the METRICS_TTB_BOUNDS buckets. */
struct metrics_histogram {
	uint64_t bucket[METRICS_TTB_BUCKETS]; /* observations in (bound[i-1], bound[i]] */
	uint64_t count; /* every observation, those above the last bound too */
	double sum;	/* seconds */
};

/* Record one observation of seconds (negative counts as 0). */
void metrics_histogram_observe(struct metrics_histogram *h, double seconds);

/*
 * The analyzer's loop runs one callback at a time: a callback that holds it delays every ban
 * behind it. Each kind of work is timed per callback (one slice of a sliced task).
 */
enum metrics_loop_task {
	METRICS_LOOP_EVENTS,	 /* ring-buffer events: decisions, bans */
	METRICS_LOOP_API,	 /* API calls answered on the loop (BanIP, queries) */
	METRICS_LOOP_API_SNAP,	 /* a slice of the API's snapshots */
	METRICS_LOOP_MAPS_CHECK, /* whether the pins are still the maps held */
	METRICS_LOOP_SCAN,	 /* connection-limit safety net, expired bans, reconciliation */
	METRICS_LOOP_NETSTATS,	 /* the network_stats row (the walk of ip_stats: off the loop) */
	METRICS_LOOP_SYSMON,	 /* the resource report (the processes of /proc: off the loop) */
	METRICS_LOOP_STORE,	 /* the decisions' rows and the database's upkeep */
	METRICS_LOOP_RETENTION,	 /* a slice of the database's retention */
	METRICS_LOOP_METRICS,	 /* this snapshot, for /metrics */
	METRICS_LOOP_TASKS
};

/* The task's label value in ebpfmon_loop_hold_seconds ("events", ...). */
const char *metrics_loop_task_name(enum metrics_loop_task t);

#define METRICS_BAN_REASONS   4 /* enum ebpfmon_ban_reason */
#define METRICS_IFACES	      CONFIG_MAX_INTERFACES
#define METRICS_ANOMALY_KINDS 3

/* URL requests that matched one rule (the first configured pattern that matches them). */
struct metrics_rule {
	char pattern[EBPFMON_URL_PATH_MAX]; /* as configured */
	uint64_t hits;
};

/* Everything /metrics shows, as plain numbers. */
struct metrics_snapshot {
	/* the kernel's counters map, summed over the CPUs */
	struct ebpfmon_counters kernel;
	/* the analyzer since it started */
	uint64_t bans[METRICS_BAN_REASONS]; /* bans written to the maps, by reason */
	uint64_t would_bans;		    /* dry run: bans decided, none written */
	uint64_t bans_expired;		    /* map entries removed at their deadline */
	uint64_t url_retransmits;	    /* URL hits of a request counted already */
	uint64_t ban_rows_pending;	    /* decisions waiting for the database */
	uint64_t ban_rows_lost;		    /* decisions the database never got (queue full) */
	uint64_t database_errors;	    /* failed database calls */
	bool database_up;		    /* open and its last write succeeded */
	bool dry_run;
	struct metrics_histogram time_to_ban; /* kernel event -> ban in the map, seconds */
	/*
	 * how long one callback of each task held the loop (seconds, wall clock: a wait for a
	 * CPU included), the longest, and the most CPU time one used
	 */
	struct metrics_histogram loop_hold[METRICS_LOOP_TASKS];
	double loop_hold_max[METRICS_LOOP_TASKS];
	double loop_cpu_max[METRICS_LOOP_TASKS];
	/* the maps at the last interval */
	uint64_t bans_active;	      /* entries of bans in force */
	uint64_t network_bans_active; /* entries of ban_nets in force */
	uint64_t tracked_addresses;   /* entries of ip_stats */
	/* resource anomalies: kind names are static strings ("cpu", ...) */
	unsigned int n_anomalies;
	const char *anomaly_kind[METRICS_ANOMALY_KINDS];
	bool anomaly_open[METRICS_ANOMALY_KINDS];
	/* the BPF programs' run statistics (prog_stats; 0 unless kernel.bpf_stats_enabled) */
	unsigned int n_progs;
	struct {
		char name[16];
		uint64_t run_ns, runs;
	} progs[EBPFMON_PROG_STATS_MAX];
	/* the monitored interfaces and how the ingress program is attached to each ("native",
	 * "generic", "offload", "tc", "none", "unknown": static strings) */
	unsigned int n_ifaces;
	struct {
		char name[64];
		const char *mode;
	} ifaces[METRICS_IFACES];
	/* URL rules in their configured order */
	unsigned int n_rules;
	struct metrics_rule rules[CONFIG_MAX_URL_PATTERNS];
};

/*
 * Render s in the Prometheus text format 0.0.4 into buf (len bytes, NUL-terminated when len
 * > 0; buf may be NULL when len is 0). Returns the length of the whole text (without the
 * NUL), as snprintf() does: a result >= len means it was cut and needs result + 1 bytes;
 * -ENOMEM when memory ran out.
 */
int metrics_render(const struct metrics_snapshot *s, char *buf, size_t len);

/* --- the HTTP listener --- */

struct metrics_server;

/*
 * Serve GET /metrics at url ("http://HOST:PORT", as [api] metrics_address allows) on nng's
 * threads; 404 elsewhere. Until the first metrics_server_publish() a scrape gets 503.
 * 0 and *out, or -errno (logged, naming the address).
 */
int metrics_server_start(const char *url, struct metrics_server **out);
/* Copy s for the scrapes that follow (the caller keeps s). */
void metrics_server_publish(struct metrics_server *srv, const struct metrics_snapshot *s);
/* The address it was started on. */
const char *metrics_server_address(const struct metrics_server *srv);
/*
 * Close the listener and every connection, and free: a scrape still running on an nng thread
 * finishes on its own copy. NULL is fine.
 */
void metrics_server_stop(struct metrics_server *srv);

#endif
