/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Ban policy: turns kernel events and periodic scans into bans in the `bans` and `ban_nets`
 * maps, honouring the allowlist, dry run and escalation of repeat offenders, and records
 * every decision in the store.
 */
#ifndef EBPFMON_POLICY_H
#define EBPFMON_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ebpfmon_abi.h"
#include "maps.h"
#include "metrics.h"
#include "policy_core.h"

struct store;
struct store_ban;

/* What the policy remembers of an address: its earlier bans, seeded from the database. */
struct policy_offence {
	struct ebpfmon_addr addr;
	uint32_t bans;	       /* real bans so far */
	uint32_t dry_bans;     /* would-bans so far (dry run escalates as the real thing would) */
	uint64_t dry_until_ns; /* dry run: "would be banned" until then, so said once */
	uint8_t allow_said;    /* reasons (bits) already logged as "not banning (allowlisted)" */
	bool used;
};

struct policy {
	const struct config *cfg;
	const struct maps *maps;
	struct store *store;	     /* NULL while the database is unavailable */
	struct policy_offence *hist; /* open-addressing hash table, cap_hist a power of 2 */
	size_t n_hist, cap_hist;
	struct store_ban *pending; /* rows to write, outside the ring-buffer callback */
	const char *hit_path;	   /* while a URL hit is judged: its escaped canonical path */
	const struct policy_req *hit_req; /* and its request, kept with the ban's row */
	size_t n_pending, cap_pending;
	bool rows_wait; /* a checkpoint holds the database: policy_flush() keeps the rows */
	uint64_t bans, would_bans, net_bans, expired, unrecorded; /* for the status line */
	uint64_t retransmits;	   /* URL hits of a request counted already */
	uint64_t full_warned_ns;   /* the last "bans map full" warning (one a minute) */
	uint64_t full_events;	   /* bans that met a full map */
	struct addr_cidr *evicted; /* bans evicted from a full map, rows to end (note_evicted()) */
	size_t n_evicted, cap_evicted;
	/* the next bans to evict from a full map, soonest deadline first (evict_soonest()) */
	struct policy_map_ban *evict;
	size_t n_evict, evict_next, cap_evict;
	bool evict_walked; /* a walk (the survey's or the loop's) made them at least once */
	/*
	 * cidr_ban_threshold's count of the bans in force in a network, without a walk of bans
	 * per ban: those the last survey found (esc), and those written here since (esc_new),
	 * each array sorted by policy_esc_cmp(); esc_seq counts the writes.
	 */
	struct policy_esc *esc, *esc_new;
	size_t n_esc, n_esc_new, cap_esc_new;
	uint64_t esc_seq;
	uint64_t evict_walks; /* walks of bans on the loop for them (before the first survey) */
	struct ebpfmon_addr evict_cursor; /* where the last sample of bans stopped */
	bool evict_cursor_set;
	struct policy_seen seen; /* recent URL offences: one request, one offence */
	/* for the metrics */
	uint64_t ev_ts_ns; /* while an event is judged: its CLOCK_BOOTTIME */
	uint64_t bans_by_reason[METRICS_BAN_REASONS]; /* bans and network bans written */
	struct metrics_histogram time_to_ban;	      /* event -> ban in the map, seconds */
	struct metrics_rule url_hits[CONFIG_MAX_URL_PATTERNS]; /* requests by matching pattern */
	unsigned int n_url_hits;
};

/*
 * The marker of the ban maps the database's bans were enforced in, kept in analyzer_state
 * 'maps' (docs/policy.md): "BOOT_ID bans=ID ban_nets=ID" from /proc/sys/kernel/random/boot_id
 * and the kernel's ids of the two maps (a map id can repeat after a reboot, a boot id never
 * does). 0, or -EIO when either is unknown.
 */
int policy_maps_marker(int bans, int ban_nets, char *buf, size_t len);

/* Bans of a full map evicted without a walk of it: taken from the last one (bans entries). */
#define POLICY_EVICT_CANDIDATES 4096
/* And with the timed bans written since (evict_note() in policy.c), at most this many. */
#define POLICY_EVICT_NOTED 65536

void policy_init(struct policy *p, const struct config *cfg, const struct maps *maps,
		 struct store *store);
void policy_free(struct policy *p);

/*
 * Ban addr for reason (rule: the pattern that matched, or NULL; detail is logged): nothing
 * when it is allowlisted or banned already; "would ban" only in dry run. Returns 1 when it
 * banned (or would have), 0 when not, -errno when the map refused.
 */
int policy_ban(struct policy *p, const struct ebpfmon_addr *addr, enum ebpfmon_ban_reason reason,
	       const char *rule, const char *detail);

/* Requests that matched pattern since the start (0 for a pattern that never matched). */
uint64_t policy_url_hits(const struct policy *p, const char *pattern);

/* One ring-buffer record; a malformed one is logged and dropped. */
int policy_on_event(struct policy *p, const void *data, size_t len);

/*
 * Write the decisions taken since the last call to the database, in one transaction. Called
 * from the loop after each batch of events, never from the ring-buffer callback, so that a
 * ban is in the kernel before SQLite is touched. Rows that could not be written are kept and
 * retried on the next call (up to a bound: then the oldest are dropped and counted). Nothing
 * while rows_wait is set.
 */
void policy_flush(struct policy *p);
/*
 * The same, writing at most max_rows queued rows and ending at most max_rows rows of evicted
 * bans in this call (~7 and ~20 us each), so that a backlog does not hold the loop: true when
 * rows are left (call again), false when none is, or the store is away, waiting or failing
 * (then the next call at its usual time tries again).
 */
bool policy_flush_some(struct policy *p, size_t max_rows);

/*
 * The periodic pass: addresses over the limit that no event reported, and expired bans.
 * policy_scan() is the three parts below in turn; each is a walk of a kernel map (conn_count;
 * bans and ban_nets; those again against the database), which the analyzer's loop runs as
 * separate slices of its work.
 */
void policy_scan(struct policy *p);
/* Ban every address of conn_count over the limit (its crossing event was lost). */
void policy_scan_conn(struct policy *p);
/* Remove the map entries whose deadline passed. */
void policy_scan_expiry(struct policy *p);
/* End the expired rows; reconcile the database with the ban maps (without a store: nothing). */
void policy_scan_reconcile(struct policy *p);

/*
 * The three scans as the analyzer runs them every interval, without holding its loop for the
 * size of maps a sender fills (conn_count, bans): policy_survey() walks conn_count, bans and
 * ban_nets, and reads the database's active rows from a connection of its own, on the offload
 * worker; policy_survey_apply() then acts on what it found on the loop, a little at a time.
 * Between the two the loop goes on banning and unbanning, so every action is checked again
 * against the maps and the queued rows before it is taken (an address is banned only while
 * it is still over the limit; a ban made since the walk is never ended nor recorded twice).
 */
struct policy_reconcile_item {
	enum policy_rc_action action;
	struct policy_map_ban entry; /* RECORD */
	struct policy_db_ban row;    /* END_* */
};

struct policy_survey {
	/* filled by policy_survey() */
	struct policy_now now;
	struct ebpfmon_addr *over; /* addresses of conn_count over the limit */
	size_t n_over;
	uint32_t limit;			/* max_connections_per_ip the walk compared with */
	struct policy_map_ban *expired; /* entries of bans and ban_nets past their deadline */
	size_t n_expired;
	bool nets_left;			     /* ban_nets held an entry in force */
	struct policy_reconcile_item *items; /* the database against the maps */
	size_t n_items;
	bool reconciled;	      /* the database was read (items is what it found) */
	struct policy_map_ban *evict; /* the next candidates of a full map (evict_soonest()) */
	size_t n_evict;
	bool evict_made;	/* evict, n_evict are the walk's (none: every ban permanent) */
	struct policy_esc *esc; /* with want_esc: the bans in force, sorted (policy_esc_cmp()) */
	size_t n_esc;
	bool esc_made;
	/* set by policy_survey_prepare() on the loop */
	bool want_esc;	  /* cidr_ban_threshold is on: make esc */
	uint64_t esc_seq; /* the policy's esc_seq when the survey began */
	int err;	  /* 0, or -errno of the maps' walk (nothing to apply) */
	/* policy_survey_apply()'s progress */
	size_t done_over, done_expired, done_items;
	bool nets_checked;
	unsigned int recorded, removed;
};

/*
 * On any thread: fill *sv from the maps (conn_count against limit, max_connections_per_ip)
 * and, with rstore (a store of the analyzer's database; NULL: no reconciliation), the
 * database's active rows. Reads, never writes, and touches no policy state. *sv must be
 * zeroed, or passed to policy_survey_prepare() (or policy_survey_free()) before. With
 * sv->want_esc, also the bans in force by network (sv->esc) for cidr_ban_threshold.
 */
void policy_survey(const struct maps *maps, uint32_t limit, struct store *rstore,
		   struct policy_survey *sv);
/*
 * On the loop: act on *sv for about budget_ns (at least one action): ban the addresses over
 * the connection limit (their crossing event was lost), remove expired entries, end rows and
 * record bans the reconciliation found, each checked again first; then take the eviction
 * candidates. 1 when all is done (then policy_survey_free() it), 0 when more is left.
 */
int policy_survey_apply(struct policy *p, struct policy_survey *sv, uint64_t budget_ns);
/* Free what policy_survey() allocated and zero *sv. */
void policy_survey_free(struct policy_survey *sv);
/*
 * On the loop, before policy_survey(): free and zero *sv, and set what the survey takes from
 * the policy (whether cidr_ban_threshold needs the bans by network, and since when).
 */
void policy_survey_prepare(struct policy *p, struct policy_survey *sv);

/*
 * At start: bans the database holds active but the kernel lost (a reboot) are written back,
 * bans the kernel holds that the database does not know (written by hand) are recorded, and
 * what expired while nobody watched is ended. Needs p->store.
 */
void policy_reconcile(struct policy *p);

/*
 * A manual ban (the API's BanIP) of net, a single address (/128) or a network, for dur_s
 * seconds (0: permanent); text is kept in the row's rule column and who (e.g. "uid 0") is
 * named in the log. Written to bans or ban_nets, replacing a ban of exactly net (whose rows
 * end "replaced by a manual ban"), and recorded at once; in dry run only recorded, as a
 * would-ban. Manual bans do not escalate and count as no offence. Returns 0 with *row the
 * new row (row->id 0 when the database could not take it yet: it is queued); -EPERM when net
 * overlaps the allowlist (*allowed, when not NULL, the entry); -ENOSPC when the map is full;
 * other -errno when the map refused.
 */
int policy_ban_manual(struct policy *p, const struct addr_cidr *net, uint64_t dur_s,
		      const char *text, const char *who, struct store_ban *row,
		      struct addr_cidr *allowed);

/*
 * Unban exactly net (as it was banned: an address in bans, a network in ban_nets): remove
 * its map entry and end its active rows, dry-run would-bans and queued rows included, with
 * why as their end_reason (e.g. "unbanned by uid 0"). Since the rows end, neither the next
 * reconciliation nor a restart (new maps included) brings the ban back. Returns the number
 * of bans ended (>= 1; an entry in force that no row knew counts 1), 0 when net was not
 * banned, -errno when the map refused (or the database did and the map held nothing).
 */
int policy_unban(struct policy *p, const struct addr_cidr *net, const char *why);

/*
 * Seed the escalation counts from the database's ban history, and the requests of the URL
 * bans of the last POLICY_SEEN_TTL_NS, so that a retransmission after a restart is no new
 * offence (when the store opens).
 */
void policy_load_history(struct policy *p);

#endif
