/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The pure core of the ban policy: every decision on plain structs, with no I/O, no clock
 * (callers pass the time in) and no allocation, so that each is a unit test. policy.c is the
 * shell around it that reads events and maps and writes maps and the store.
 */
#ifndef EBPFMON_POLICY_CORE_H
#define EBPFMON_POLICY_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "ebpfmon_abi.h"

enum policy_verdict {
	POLICY_BAN,	     /* write the ban */
	POLICY_WOULD_BAN,    /* dry run: record it, enforce nothing */
	POLICY_SKIP_ALLOWED, /* allowlisted: never banned */
	POLICY_SKIP_BANNED,  /* banned already (a retransmitted probe, a late event) */
};

/* The decision for an address, given whether it is banned now (or would be, in dry run). */
enum policy_verdict policy_decide(const struct config *cfg, const struct ebpfmon_addr *addr,
				  bool banned_now);

bool policy_allowlisted(const struct config *cfg, const struct ebpfmon_addr *addr);

/* Ban duration in seconds for an address banned `prior` times before; 0 = permanent. */
uint64_t policy_duration_s(const struct config *cfg, uint32_t prior);

/*
 * Whether a URL-hit path is malicious by cfg's patterns: the pattern it matched or NULL.
 * Prefix patterns compare the start of the path; patterns with '*' are fnmatch(3) globs
 * ('*' also matches '/'), matched against the whole path. Case-sensitive, except with
 * url_case_insensitive (ASCII case folded, FNM_CASEFOLD for globs).
 */
const char *policy_url_match(const struct config *cfg, const char *path);

/* The /24 (IPv4) or /64 (IPv6) that CIDR escalation and the capacity fallback ban for addr. */
void policy_escalation_net(const struct ebpfmon_addr *addr, struct addr_cidr *net);

/* --- one request, one offence --- */

/* A request as TCP delivers it: retransmissions of one request carry the same four. */
struct policy_req {
	struct ebpfmon_addr addr;
	uint16_t sport, dport;
	uint32_t seq; /* of the first byte of the request line */
	uint32_t isn; /* this host's initial sequence number of the connection; 0: not known */
};

#define POLICY_SEEN_WAYS 8
#define POLICY_SEEN_SETS 512 /* 4096 requests remembered */
/* TCP gives up retransmitting long before (tcp_retries2: about 15 minutes). */
#define POLICY_SEEN_TTL_NS (30ull * 60 * 1000000000ull)

struct policy_seen_entry {
	struct policy_req req;
	uint64_t at_ns; /* when first seen */
	bool used;
};

/* Recent URL offences: a set-associative table, each set forgetting its oldest first. */
struct policy_seen {
	struct policy_seen_entry e[POLICY_SEEN_SETS][POLICY_SEEN_WAYS];
	uint64_t seed;
};

/* Empty the table; seed keys its hash (pass something an attacker cannot guess). */
void policy_seen_init(struct policy_seen *s, uint64_t seed);

/*
 * Whether req is a request already counted within POLICY_SEEN_TTL_NS before now_ns (any
 * clock, the same for every call): true for a retransmission, which is no new offence.
 * Otherwise req is remembered from now_ns on and false is returned. now_ns may be older
 * than earlier calls' (seeding from the database after events came): newer entries stay.
 */
bool policy_seen_check(struct policy_seen *s, const struct policy_req *req, uint64_t now_ns);

/* --- the kernel map against the database --- */

/* An entry of bans (prefixlen 128) or ban_nets. */
struct policy_map_ban {
	struct addr_cidr net;
	uint64_t expires_ns; /* CLOCK_BOOTTIME; 0 = permanent */
	uint32_t reason;
};

/*
 * A ban in force in bans, by the network cidr_ban_threshold counts it in (its /24 or /64,
 * policy_escalation_net()); seq: when the policy wrote it (its count of writes), 0 when a walk
 * found it. Arrays of these are sorted by policy_esc_cmp(): by net, then address.
 */
struct policy_esc {
	struct addr_cidr net;
	struct ebpfmon_addr addr;
	uint64_t seq;
};

/* qsort()/bsearch() order of struct policy_esc: net (address, then length), then address. */
int policy_esc_cmp(const void *a, const void *b);

/* An active, enforced (not dry-run) row of the database. */
struct policy_db_ban {
	struct addr_cidr net;
	int64_t id;
	int64_t expires_at; /* unix seconds; 0 = permanent */
	uint32_t reason;    /* enum ebpfmon_ban_reason */
};

enum policy_rc_action {
	POLICY_RC_END_EXPIRED,	  /* row: its deadline passed; end it at its deadline */
	POLICY_RC_END_REMOVED,	  /* row: gone from the map before its deadline, an unban */
	POLICY_RC_RESTORE,	  /* row: the maps are new (reboot, --unload); write it back */
	POLICY_RC_RECORD,	  /* map entry: in force and unknown to the database; record it */
	POLICY_RC_END_SUPERSEDED, /* row: an older row of a network whose newest row stands */
};

/* Times in both clocks, taken at one moment. */
struct policy_now {
	uint64_t boot_ns;
	int64_t unix_s;
};

/* A row whose deadline is within this of now counts as expired: the two clocks drift. */
#define POLICY_RC_GRACE_S 2

typedef void (*policy_rc_cb)(enum policy_rc_action action, const struct policy_map_ban *entry,
			     const struct policy_db_ban *row, void *ctx);

/*
 * Compare a snapshot of the maps with the database's active rows and call cb once per
 * difference: for a row the map lacks END_EXPIRED, or RESTORE when maps_new, else
 * END_REMOVED (entry NULL); for a map entry in force (beyond POLICY_RC_GRACE_S) that no row
 * knows, RECORD (row NULL). A network in both is left alone, except that of several rows
 * the older ones are END_SUPERSEDED (the newest is the highest id; id 0, a row not yet
 * written, is newer still and never passed to cb). Both arrays are sorted in place.
 */
void policy_reconcile_diff(struct policy_map_ban *map, size_t n_map, struct policy_db_ban *db,
			   size_t n_db, bool maps_new, const struct policy_now *now,
			   policy_rc_cb cb, void *ctx);

/* --- a full bans map --- */

/*
 * The order in which bans are evicted for new ones when bans is full: the one expiring
 * soonest first (an expired one, which drops nothing any more, first of all); never a
 * permanent ban. Moves the n - k permanent entries out and sorts the k others to the front
 * of bans, soonest deadline first; returns k (0 when every ban is permanent: then the
 * offender's network is banned in ban_nets instead).
 */
size_t policy_evict_order(struct policy_map_ban *bans, size_t n);

#endif
