// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "policy.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "addr.h"
#include "log.h"
#include "mapconf.h"
#include "mapwalk.h"
#include "monoclock.h"
#include "store.h"
#include "urlcanon.h"

static const char *const reason_names[] = {
	[EBPFMON_BAN_MANUAL] = "manual",
	[EBPFMON_BAN_CONN_LIMIT] = "conn_limit",
	[EBPFMON_BAN_URL_RULE] = "url_rule",
	[EBPFMON_BAN_ESCALATED] = "escalated",
};

static const char *reason_name(__u32 reason)
{
	return reason < sizeof(reason_names) / sizeof(reason_names[0]) ? reason_names[reason]
								       : "unknown";
}

void policy_init(struct policy *p, const struct config *cfg, const struct maps *maps,
		 struct store *store)
{
	uint64_t seed;

	memset(p, 0, sizeof(*p));
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ maps_boot_ns();
	policy_seen_init(&p->seen, seed);
	p->cfg = cfg;
	p->maps = maps;
	p->store = store;
}

void policy_free(struct policy *p)
{
	free(p->hist);
	free(p->pending);
	free(p->evict);
	free(p->evicted);
	p->evicted = NULL;
	p->n_evicted = p->cap_evicted = 0;
	p->hist = NULL;
	p->pending = NULL;
	p->evict = NULL;
	p->n_evict = p->evict_next = p->cap_evict = 0;
	free(p->esc);
	free(p->esc_new);
	p->esc = p->esc_new = NULL;
	p->n_esc = p->n_esc_new = p->cap_esc_new = 0;
	p->evict_walked = false;
	p->n_hist = p->cap_hist = p->n_pending = p->cap_pending = 0;
}

static size_t addr_hash(const struct ebpfmon_addr *a)
{
	uint64_t w[2], h;

	memcpy(w, a->a, sizeof(w));
	/* Every bit must reach the low bits the table uses: the last two bytes of an IPv4
	 * address sit in the top bits of w[1], which a multiplication alone leaves there, and
	 * 65536 addresses of one /16 then shared one slot chain (a start of seconds). */
	h = w[0] ^ (w[1] * 0x9e3779b97f4a7c15ull);
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	return (size_t)(h ^ (h >> 32));
}

static struct policy_offence *hist_slot(struct policy_offence *tab, size_t cap,
					const struct ebpfmon_addr *a)
{
	size_t i = addr_hash(a) & (cap - 1);

	while (tab[i].used && memcmp(&tab[i].addr, a, sizeof(*a)))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* The record of addr, created on first use; NULL only when memory runs out. */
static struct policy_offence *offence(struct policy *p, const struct ebpfmon_addr *addr)
{
	struct policy_offence *o;

	if (p->cap_hist && (o = hist_slot(p->hist, p->cap_hist, addr))->used)
		return o;
	if ((p->n_hist + 1) * 10 > p->cap_hist * 7) { /* keep the load under 70 % */
		size_t cap = p->cap_hist ? p->cap_hist * 2 : 256;
		struct policy_offence *tab = calloc(cap, sizeof(*tab));

		if (!tab)
			return NULL;
		for (size_t i = 0; i < p->cap_hist; i++)
			if (p->hist[i].used)
				*hist_slot(tab, cap, &p->hist[i].addr) = p->hist[i];
		free(p->hist);
		p->hist = tab;
		p->cap_hist = cap;
	}
	o = hist_slot(p->hist, p->cap_hist, addr);
	*o = (struct policy_offence){.addr = *addr, .used = true};
	p->n_hist++;
	return o;
}

static int seed_one(const struct ebpfmon_addr *addr, bool dry_run, uint64_t count, void *ctx)
{
	struct policy_offence *o = offence(ctx, addr);
	uint32_t n = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;

	if (!o)
		return -ENOMEM;
	if (dry_run && o->dry_bans < n)
		o->dry_bans = n;
	else if (!dry_run && o->bans < n)
		o->bans = n;
	return 0;
}

struct seen_seed {
	struct policy_seen *seen;
	int64_t unix_now;
	uint64_t boot_now;
};

static int seed_request(const struct store_request *r, void *ctx)
{
	const struct seen_seed *sd = ctx;
	struct policy_req req = {.addr = r->addr,
				 .sport = r->sport,
				 .dport = r->dport,
				 .seq = r->seq,
				 .isn = r->conn_isn};
	uint64_t ago = r->banned_at < sd->unix_now
			       ? (uint64_t)(sd->unix_now - r->banned_at) * 1000000000ull
			       : 0;

	/* the ban's time on the events' clock; before this boot: as old as the boot */
	policy_seen_check(sd->seen, &req, ago < sd->boot_now ? sd->boot_now - ago : 0);
	return 0;
}

void policy_load_history(struct policy *p)
{
	struct seen_seed sd = {
		.seen = &p->seen, .unix_now = time(NULL), .boot_now = maps_boot_ns()};
	int64_t n, since;

	if (!p->store)
		return;
	n = store_ban_offences(p->store, 0, seed_one, p);
	if (n < 0)
		log_warn("cannot read the ban history: repeat offenders are counted from now on");
	else
		log_debug("ban history of %lld addresses loaded", (long long)n);
	since = sd.unix_now - (int64_t)(POLICY_SEEN_TTL_NS / 1000000000ull);
	n = store_ban_requests(p->store, since, seed_request, &sd);
	if (n < 0)
		log_warn("cannot read the requests of recent URL bans: a retransmission of one "
			 "may count as a new offence");
	else
		log_debug("requests of %lld recent URL bans loaded", (long long)n);
}

/* Earlier bans of an address (would-bans in dry run). */
static uint32_t prior_bans(const struct policy *p, const struct policy_offence *off)
{
	if (!off)
		return 0;
	return p->cfg->dry_run ? off->dry_bans : off->bans;
}

#define POLICY_PENDING_MAX 10000

/* A free slot at the end of the queue policy_flush() writes; NULL when there is none. */
static struct store_ban *pending_slot(struct policy *p)
{
	if (p->n_pending == p->cap_pending) {
		size_t cap = p->cap_pending ? p->cap_pending * 2 : 64;
		struct store_ban *q = NULL;

		if (cap > POLICY_PENDING_MAX && p->cap_pending < POLICY_PENDING_MAX)
			cap = POLICY_PENDING_MAX;
		if (cap <= POLICY_PENDING_MAX)
			q = realloc(p->pending, cap * sizeof(*q));
		if (q) {
			p->pending = q;
			p->cap_pending = cap;
		} else if (p->n_pending) {
			/* The database has been away too long: the oldest row gives way. */
			p->unrecorded++;
			memmove(p->pending, p->pending + 1, (p->n_pending - 1) * sizeof(*q));
			p->n_pending--;
		} else {
			p->unrecorded++;
			return NULL;
		}
	}
	return &p->pending[p->n_pending++];
}

/* Queue the row of a decision; policy_flush() writes it. */
static void record(struct policy *p, const struct addr_cidr *net, enum ebpfmon_ban_reason reason,
		   const char *rule, uint64_t dur, uint32_t level)
{
	struct store_ban *row = pending_slot(p);

	if (!row)
		return;
	*row = (struct store_ban){
		.net = *net,
		.reason = reason,
		.source = reason == EBPFMON_BAN_MANUAL ? STORE_SOURCE_MANUAL : STORE_SOURCE_AUTO,
		.hits = 1,
		.banned_at = time(NULL),
		.escalation_level = level,
		.dry_run = p->cfg->dry_run,
	};
	row->expires_at = dur ? row->banned_at + (int64_t)dur : 0;
	snprintf(row->rule, sizeof(row->rule), "%s", rule ? rule : "");
	if (reason == EBPFMON_BAN_URL_RULE && p->hit_path)
		snprintf(row->path, sizeof(row->path), "%s", p->hit_path);
	/* the request of a single address's URL ban: seeds the seen table after a restart */
	if (reason == EBPFMON_BAN_URL_RULE && p->hit_req && net->prefixlen == 128) {
		row->has_req = true;
		row->sport = p->hit_req->sport;
		row->dport = p->hit_req->dport;
		row->seq = p->hit_req->seq;
		row->conn_isn = p->hit_req->isn;
	}
}

/* The rows of at most max bans evicted from a full map end, saying so. */
static void flush_evicted(struct policy *p, size_t max)
{
	int64_t now = time(NULL);
	size_t done = 0;

	for (; done < p->n_evicted && done < max; done++) {
		struct store_ban row;

		if (store_ban_find_active(p->store, &p->evicted[done], &row) == 1)
			store_ban_end_why(p->store, row.id, now, "evicted: bans map full");
	}
	memmove(p->evicted, p->evicted + done, (p->n_evicted - done) * sizeof(*p->evicted));
	p->n_evicted -= done;
}

bool policy_flush_some(struct policy *p, size_t max_rows)
{
	size_t done = 0;

	if (!p->store || p->rows_wait || (!p->n_pending && !p->n_evicted))
		return false;
	store_begin(p->store);
	flush_evicted(p, max_rows);
	while (done < p->n_pending && done < max_rows &&
	       store_ban_insert(p->store, &p->pending[done]) > 0)
		done++;
	if (store_commit(p->store))
		done = 0; /* the batch was rolled back: every row is still to be written */
	memmove(p->pending, p->pending + done, (p->n_pending - done) * sizeof(*p->pending));
	p->n_pending -= done;
	/* a database that refuses rows is tried again later, not at once */
	return store_healthy(p->store) && (p->n_pending || p->n_evicted);
}

void policy_flush(struct policy *p)
{
	policy_flush_some(p, SIZE_MAX);
}

static void set_ban_nets_flag(struct policy *p, bool on)
{
	struct ebpfmon_settings set;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(p->maps->settings, &zero, &set))
		return;
	if (!!(set.flags & EBPFMON_F_BAN_NETS) == on)
		return;
	set.flags = on ? set.flags | EBPFMON_F_BAN_NETS : set.flags & ~EBPFMON_F_BAN_NETS;
	set.ban_gen++; /* XDP's notes of "no ban" were made without ban_nets */
	if (bpf_map_update_elem(p->maps->settings, &zero, &set, BPF_ANY))
		log_error("cannot write map settings: %s", strerror(errno));
}

/* After a write to bans or ban_nets: XDP looks the address up at its next packet. */
static void ban_written(struct policy *p)
{
	mapconf_ban_written(p->maps->settings);
}

static unsigned int esc_count(struct policy *p, const struct addr_cidr *net, unsigned int enough,
			      uint64_t now);

/*
 * Enough banned addresses in one /24 or /64: ban the network. They are counted without a
 * walk of bans (esc_count()), which took 17-118 ms a ban with 60 000 bans in force.
 */
static void cidr_escalate(struct policy *p, const struct ebpfmon_addr *addr, uint64_t dur)
{
	uint64_t now = maps_boot_ns();
	struct ebpfmon_lpm_key lpm;
	struct ebpfmon_ban ban;
	struct addr_cidr net;
	char buf[ADDR_STRLEN];
	unsigned int n;

	if (!p->cfg->cidr_ban_threshold || p->cfg->dry_run)
		return;
	policy_escalation_net(addr, &net);
	n = esc_count(p, &net, p->cfg->cidr_ban_threshold, now);
	if (n < p->cfg->cidr_ban_threshold)
		return;
	cidr_to_lpm_key(&net, &lpm);
	if (!bpf_map_lookup_elem(p->maps->ban_nets, &lpm, &ban) && maps_ban_in_force(&ban, now))
		return;
	for (unsigned int i = 0; i < p->cfg->n_allowlist; i++) {
		const struct addr_cidr *a = &p->cfg->allowlist[i];

		if (cidr_contains(&net, &a->addr) || cidr_contains(a, &net.addr)) {
			log_info("not banning network %s: it overlaps allowlisted %s",
				 cidr_format(&net, buf, sizeof(buf)),
				 cidr_format(a, (char[ADDR_STRLEN]){0}, ADDR_STRLEN));
			return;
		}
	}
	ban = (struct ebpfmon_ban){.reason = EBPFMON_BAN_ESCALATED,
				   .expires_ns = dur ? now + dur * 1000000000ull : 0};
	if (bpf_map_update_elem(p->maps->ban_nets, &lpm, &ban, BPF_ANY)) {
		log_error("cannot ban network %s: map ban_nets: %s",
			  cidr_format(&net, buf, sizeof(buf)), strerror(errno));
		return;
	}
	set_ban_nets_flag(p, true);
	ban_written(p);
	p->net_bans++;
	p->bans_by_reason[EBPFMON_BAN_ESCALATED]++;
	{
		char d[24], cnt_s[16];
		struct log_field f[] = {
			{"EBPFMON_ADDRESS", cidr_format(&net, buf, sizeof(buf))},
			{"EBPFMON_REASON", reason_name(EBPFMON_BAN_ESCALATED)},
			{"EBPFMON_DURATION_SEC", d},
			{"EBPFMON_ADDRESSES_BANNED", cnt_s},
		};

		snprintf(d, sizeof(d), "%llu", (unsigned long long)dur);
		snprintf(cnt_s, sizeof(cnt_s), "%u", n);
		log_event(LOG_LVL_INFO, LOG_MID_NET_BAN, LOG_FIELDS(f),
			  "banned network %s for %llus (escalated: %u of its addresses banned)",
			  buf, (unsigned long long)dur, n);
	}
	record(p, &net, EBPFMON_BAN_ESCALATED, NULL, dur, 0);
}

/* --- snapshots of the maps --- */

struct snapshot {
	struct policy_map_ban *v;
	size_t n, cap;
};

static int snap_push(struct snapshot *sn, const struct addr_cidr *net, const struct ebpfmon_ban *b)
{
	if (sn->n == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 256;
		struct policy_map_ban *v = realloc(sn->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sn->v = v;
		sn->cap = cap;
	}
	sn->v[sn->n++] = (struct policy_map_ban){
		.net = *net, .expires_ns = b->expires_ns, .reason = b->reason};
	return 0;
}

static int snap_ban(const void *key, const void *value, void *ctx)
{
	struct addr_cidr net = {.prefixlen = 128};

	memcpy(&net.addr, key, sizeof(net.addr));
	return snap_push(ctx, &net, value);
}

static int snap_net(const void *key, const void *value, void *ctx)
{
	const struct ebpfmon_lpm_key *k = key;
	struct addr_cidr net = {.prefixlen = k->prefixlen};

	memcpy(net.addr.a, k->a, sizeof(net.addr.a));
	return snap_push(ctx, &net, value);
}

/*
 * Every entry of bans, then of ban_nets; n_bans: how many came from bans. 0 or -errno. Only
 * reads the maps: the offload worker may call it (policy_survey()).
 */
static int snapshot_maps(const struct maps *maps, struct snapshot *sn, size_t *n_bans)
{
	long n;

	sn->n = 0;
	n = maps_walk(maps->bans, sizeof(struct ebpfmon_addr), sizeof(struct ebpfmon_ban), snap_ban,
		      sn);
	*n_bans = sn->n;
	if (n >= 0)
		n = maps_walk(maps->ban_nets, sizeof(struct ebpfmon_lpm_key),
			      sizeof(struct ebpfmon_ban), snap_net, sn);
	if (n < 0) {
		log_warn("cannot read maps bans/ban_nets: %s", strerror((int)-n));
		return (int)n;
	}
	return 0;
}

#define FULL_WARN_NS (60ull * 1000000000ull)

/*
 * The first POLICY_EVICT_CANDIDATES bans of the first n of v (entries of bans) in the order
 * of eviction (policy_evict_order()), as a new array in *out (NULL when there is none). The
 * count, or -ENOMEM. v is reordered.
 */
static long evict_candidates(struct policy_map_ban *v, size_t n, struct policy_map_ban **out)
{
	size_t k = policy_evict_order(v, n);

	*out = NULL;
	if (!k)
		return 0;
	if (k > POLICY_EVICT_CANDIDATES)
		k = POLICY_EVICT_CANDIDATES;
	*out = malloc(k * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	memcpy(*out, v, k * sizeof(**out));
	return (long)k;
}

/*
 * v (n elements of elem bytes used, room for *cap) with room for one more: as it is, or
 * reallocated to twice *cap (first when 0), max elements at most; NULL when it is full at
 * max or memory ran out (v is then unchanged).
 */
static void *room_for_one(void *v, size_t n, size_t *cap, size_t elem, size_t first, size_t max)
{
	size_t c = *cap ? *cap * 2 : first;
	void *nv;

	if (n < *cap)
		return v;
	if (c > max)
		c = max;
	if (c <= n || !(nv = realloc(v, c * elem)))
		return NULL;
	*cap = c;
	return nv;
}

/*
 * Keep the network of an evicted ban, whose row policy_flush() ends ("evicted: bans map
 * full"). Eviction never waits for that: past POLICY_PENDING_MAX kept (the database away
 * long) the row ends at the next reconciliation instead, as removed from the map.
 */
static void note_evicted(struct policy *p, const struct addr_cidr *net)
{
	struct addr_cidr *v = room_for_one(p->evicted, p->n_evicted, &p->cap_evicted, sizeof(*v),
					   64, POLICY_PENDING_MAX);

	if (!v)
		return;
	p->evicted = v;
	p->evicted[p->n_evicted++] = *net;
}

/* Replace the eviction candidates (taking c, n from evict_candidates(), a walk's). */
static void evict_set(struct policy *p, struct policy_map_ban *c, size_t n)
{
	free(p->evict);
	p->evict = c;
	p->n_evict = p->cap_evict = n;
	p->evict_next = 0;
	p->evict_walked = true;
}

/*
 * A timed ban of addr, until expires_ns (CLOCK_BOOTTIME; 0: permanent, not kept), was written
 * to bans here: it is a candidate too, after those of the last walk, so that when every other
 * ban of a full map is permanent the next victim needs no walk. At most
 * POLICY_EVICT_NOTED candidates are kept; past that the sample finds the others.
 */
static void evict_note(struct policy *p, const struct ebpfmon_addr *addr, uint64_t expires_ns)
{
	struct policy_map_ban *v;

	if (!expires_ns)
		return;
	if (p->n_evict == p->cap_evict && p->evict_next) { /* the used ones go */
		memmove(p->evict, p->evict + p->evict_next,
			(p->n_evict - p->evict_next) * sizeof(*p->evict));
		p->n_evict -= p->evict_next;
		p->evict_next = 0;
	}
	v = room_for_one(p->evict, p->n_evict, &p->cap_evict, sizeof(*v), 64, POLICY_EVICT_NOTED);
	if (!v)
		return;
	p->evict = v;
	p->evict[p->n_evict++] = (struct policy_map_ban){.net = {.addr = *addr, .prefixlen = 128},
							 .expires_ns = expires_ns};
}

/* --- the bans in force by network, for cidr_ban_threshold --- */

/*
 * On the worker: the entries of bans (the first n of v, CLOCK_BOOTTIME sv->now) in force,
 * by their network, sorted, into sv->esc. Without memory, none (esc_made stays false).
 */
static void esc_index(struct policy_survey *sv, const struct policy_map_ban *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += v[i].net.prefixlen == 128 &&
		     (!v[i].expires_ns || v[i].expires_ns > sv->now.boot_ns);
	sv->esc = malloc((k ? k : 1) * sizeof(*sv->esc));
	if (!sv->esc)
		return;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].net.prefixlen != 128 ||
		    (v[i].expires_ns && v[i].expires_ns <= sv->now.boot_ns))
			continue;
		sv->esc[k] = (struct policy_esc){.addr = v[i].net.addr};
		policy_escalation_net(&v[i].net.addr, &sv->esc[k].net);
		k++;
	}
	qsort(sv->esc, k, sizeof(*sv->esc), policy_esc_cmp);
	sv->n_esc = k;
	sv->esc_made = true;
}

/* The first entry of v (n, sorted) at or after key's place. */
static size_t esc_lower(const struct policy_esc *v, size_t n, const struct policy_esc *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (policy_esc_cmp(&v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool esc_same_net(const struct policy_esc *a, const struct addr_cidr *net)
{
	return a->net.prefixlen == net->prefixlen && !memcmp(&a->net.addr, &net->addr, 16);
}

/*
 * addr was banned in bans here: kept, by its network, until a survey that began later has
 * seen it. Only while cidr_ban_threshold counts; at most POLICY_EVICT_NOTED (the count is
 * then low until the next survey).
 */
static void esc_note(struct policy *p, const struct ebpfmon_addr *addr)
{
	struct policy_esc e = {.addr = *addr}, *v;
	size_t at;

	if (!p->cfg->cidr_ban_threshold || p->cfg->dry_run)
		return;
	e.seq = ++p->esc_seq;
	policy_escalation_net(addr, &e.net);
	at = esc_lower(p->esc_new, p->n_esc_new, &e);
	if (at < p->n_esc_new && !policy_esc_cmp(&p->esc_new[at], &e)) {
		p->esc_new[at].seq = e.seq; /* banned again: seen by a survey after this one */
		return;
	}
	v = room_for_one(p->esc_new, p->n_esc_new, &p->cap_esc_new, sizeof(*v), 64,
			 POLICY_EVICT_NOTED);
	if (!v)
		return;
	p->esc_new = v;
	memmove(&p->esc_new[at + 1], &p->esc_new[at], (p->n_esc_new - at) * sizeof(e));
	p->esc_new[at] = e;
	p->n_esc_new++;
}

/*
 * The bans in force in net, counted up to enough: the addresses the last survey found there
 * and those banned here since, each looked up in bans again (one lookup each, never a walk).
 */
static unsigned int esc_count(struct policy *p, const struct addr_cidr *net, unsigned int enough,
			      uint64_t now)
{
	struct policy_esc key = {.net = *net};
	struct ebpfmon_ban b;
	unsigned int n = 0;

	for (size_t i = esc_lower(p->esc, p->n_esc, &key);
	     i < p->n_esc && n < enough && esc_same_net(&p->esc[i], net); i++)
		n += !bpf_map_lookup_elem(p->maps->bans, &p->esc[i].addr, &b) &&
		     maps_ban_in_force(&b, now);
	for (size_t i = esc_lower(p->esc_new, p->n_esc_new, &key);
	     i < p->n_esc_new && n < enough && esc_same_net(&p->esc_new[i], net); i++) {
		size_t j = esc_lower(p->esc, p->n_esc, &p->esc_new[i]);

		if (j < p->n_esc && !policy_esc_cmp(&p->esc[j], &p->esc_new[i]))
			continue; /* counted above */
		n += !bpf_map_lookup_elem(p->maps->bans, &p->esc_new[i].addr, &b) &&
		     maps_ban_in_force(&b, now);
	}
	return n;
}

/* A ban of addr until expires_ns (0: permanent) was written to bans here. */
static void ban_of_addr_written(struct policy *p, const struct ebpfmon_addr *addr,
				uint64_t expires_ns)
{
	evict_note(p, addr, expires_ns);
	esc_note(p, addr);
}

/* Keys of bans looked at when the candidates ran out, before a walk of the whole map. */
#define EVICT_SAMPLE 256

/*
 * The candidates ran out: the soonest-expiring of the next EVICT_SAMPLE entries of bans, read
 * by one BPF_MAP_LOOKUP_BATCH from where the last sample stopped (p->evict_cursor, the
 * kernel's batch token), deleted; its network in *victim. 0, or -ENOENT when the sample held
 * only permanent bans (or the map cannot be read).
 */
static int evict_sampled(struct policy *p, struct addr_cidr *victim)
{
	struct ebpfmon_addr keys[EVICT_SAMPLE], next;
	struct ebpfmon_ban vals[EVICT_SAMPLE];
	uint64_t best_ns = UINT64_MAX;
	long best = -1;
	__u32 n = 0;

	for (int tries = 0; tries < 2 && !n; tries++) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		int err;

		n = EVICT_SAMPLE;
		err = bpf_map_lookup_batch(p->maps->bans,
					   p->evict_cursor_set ? &p->evict_cursor : NULL, &next,
					   keys, vals, &n, &opts);
		if (err && errno != ENOENT)
			return -ENOENT;
		p->evict_cursor = next;
		p->evict_cursor_set = !err; /* ENOENT: the end, from the start again next time */
	}
	for (__u32 i = 0; i < n; i++)
		if (vals[i].expires_ns && vals[i].expires_ns < best_ns) {
			best = (long)i;
			best_ns = vals[i].expires_ns;
		}
	if (best < 0 || bpf_map_delete_elem(p->maps->bans, &keys[best]))
		return -ENOENT;
	*victim = (struct addr_cidr){.addr = keys[best], .prefixlen = 128};
	return 0;
}

/*
 * Delete from bans the ban expiring soonest, never a permanent one, and say which: 0, or
 * -ENOSPC when every ban is permanent (or the map cannot be read). The candidates come from
 * the interval's survey, the last walk of the map, then the timed bans written here since
 * (evict_note()): a candidate renewed or removed since is passed over, so the victim is the
 * soonest as of that walk. When they run out before the next survey, the soonest of a sample
 * of EVICT_SAMPLE entries goes (the sample moves on through the map); a sample of permanent
 * bans alone means -ENOSPC, never a walk, which a sender of new networks could make every
 * ban pay when the map holds permanent bans only (15-23 ms each at 65 536 entries). The
 * loop walks the whole map only before the first survey.
 */
static int evict_soonest(struct policy *p, struct addr_cidr *victim)
{
	struct policy_map_ban *c;
	struct snapshot sn = {0};
	size_t n_bans;
	long n;

	for (int walked = 0; walked < 2; walked++) {
		while (p->evict_next < p->n_evict) {
			const struct policy_map_ban *m = &p->evict[p->evict_next++];
			struct ebpfmon_ban b;

			if (bpf_map_lookup_elem(p->maps->bans, &m->net.addr, &b) || !b.expires_ns ||
			    b.expires_ns != m->expires_ns)
				continue; /* gone, made permanent or renewed since the walk */
			if (bpf_map_delete_elem(p->maps->bans, &m->net.addr))
				continue;
			*victim = m->net;
			return 0;
		}
		/* used up: a sample; none yet (no survey since the start): the walk makes them */
		if (p->evict_walked)
			return evict_sampled(p, victim) ? -ENOSPC : 0;
		if (walked || snapshot_maps(p->maps, &sn, &n_bans))
			break;
		p->evict_walks++;
		n = evict_candidates(sn.v, n_bans, &c);
		free(sn.v);
		if (n < 0)
			break;
		evict_set(p, c, (size_t)n);
	}
	return -ENOSPC;
}

/*
 * bans is full: evict the ban expiring soonest (never a permanent one) and write ban in its
 * place; when every ban is permanent, ban addr's /24 or /64 in ban_nets. 1 when addr is
 * banned (*how says how), 0 when not, or -errno.
 */
static int ban_when_full(struct policy *p, const struct ebpfmon_addr *addr,
			 const struct ebpfmon_ban *ban, struct addr_cidr *net, const char **how)
{
	struct snapshot sn = {0};
	struct ebpfmon_lpm_key lpm;
	struct addr_cidr victim;
	int err = -ENOSPC;

	if (!evict_soonest(p, &victim)) {
		note_evicted(p, &victim);
		if (!bpf_map_update_elem(p->maps->bans, addr, ban, BPF_NOEXIST)) {
			ban_of_addr_written(p, addr, ban->expires_ns);
			*net = (struct addr_cidr){.addr = *addr, .prefixlen = 128};
			*how = "evicted the ban expiring soonest";
			err = 1;
			goto out;
		}
	}
	policy_escalation_net(addr, net);
	for (unsigned int i = 0; i < p->cfg->n_allowlist; i++) {
		const struct addr_cidr *a = &p->cfg->allowlist[i];

		if (cidr_contains(net, &a->addr) || cidr_contains(a, &net->addr)) {
			err = 0; /* the network holds allowlisted addresses: no fallback */
			goto out;
		}
	}
	cidr_to_lpm_key(net, &lpm);
	if (bpf_map_update_elem(p->maps->ban_nets, &lpm, ban, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	set_ban_nets_flag(p, true);
	*how = "every ban is permanent: banned the network instead";
	err = 1;
out:
	free(sn.v);
	return err;
}

/* A ban decision as a structured log entry (LOG_MID_BAN or LOG_MID_WOULD_BAN); dur_s 0: permanent. */
__attribute__((format(printf, 8, 9))) static void
log_ban(const char *mid, const char *addr, enum ebpfmon_ban_reason reason, const char *rule,
	const char *detail, uint64_t dur_s, uint32_t offence, const char *fmt, ...)
{
	char d[24], o[16], msg[512];
	struct log_field f[] = {
		{"EBPFMON_ADDRESS", addr},	    {"EBPFMON_REASON", reason_name(reason)},
		{"EBPFMON_RULE", rule ? rule : ""}, {"EBPFMON_DETAIL", detail ? detail : ""},
		{"EBPFMON_DURATION_SEC", d},	    {"EBPFMON_OFFENCE", o},
	};
	va_list ap;

	if (dur_s)
		snprintf(d, sizeof(d), "%llu", (unsigned long long)dur_s);
	else
		snprintf(d, sizeof(d), "permanent");
	snprintf(o, sizeof(o), "%u", offence);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_event(LOG_LVL_INFO, mid, LOG_FIELDS(f), "%s", msg);
}

int policy_ban(struct policy *p, const struct ebpfmon_addr *addr, enum ebpfmon_ban_reason reason,
	       const char *rule, const char *detail)
{
	struct ebpfmon_ban ban = {.reason = reason}, old;
	struct addr_cidr net = {.addr = *addr, .prefixlen = 128};
	struct policy_offence *off = offence(p, addr);
	uint64_t now = maps_boot_ns(), dur, written_ns;
	bool banned;
	uint32_t prior;
	char a[ADDR_STRLEN];

	if (p->cfg->dry_run)
		banned = off && (off->dry_until_ns == UINT64_MAX || off->dry_until_ns > now);
	else
		banned = bpf_map_lookup_elem(p->maps->bans, addr, &old) == 0 &&
			 maps_ban_in_force(&old, now);
	addr_format(addr, a, sizeof(a));
	switch (policy_decide(p->cfg, addr, banned)) {
	case POLICY_SKIP_ALLOWED:
		/* Said once per address and reason: the scan would repeat it every interval. */
		log_msg(off && (off->allow_said & 1u << reason) ? LOG_LVL_DEBUG : LOG_LVL_INFO,
			"not banning %s (allowlisted): %s", a, detail);
		if (off)
			off->allow_said |= 1u << reason;
		return 0;
	case POLICY_SKIP_BANNED:
		return 0;
	case POLICY_WOULD_BAN:
		prior = prior_bans(p, off);
		dur = policy_duration_s(p->cfg, prior);
		log_ban(LOG_MID_WOULD_BAN, a, reason, rule, detail, dur, prior + 1,
			"would ban %s for %llus (dry run; %s: %s)", a, (unsigned long long)dur,
			reason_name(reason), detail);
		p->would_bans++;
		if (off) {
			off->dry_bans++;
			off->dry_until_ns = dur ? now + dur * 1000000000ull : UINT64_MAX;
		}
		record(p, &net, reason, rule, dur, prior);
		return 1;
	case POLICY_BAN:
		break;
	}

	prior = prior_bans(p, off);
	dur = policy_duration_s(p->cfg, prior);
	ban.expires_ns = dur ? now + dur * 1000000000ull : 0;
	if (!bpf_map_update_elem(p->maps->bans, addr, &ban, BPF_ANY)) {
		ban_of_addr_written(p, addr, ban.expires_ns);
	} else {
		int err = -errno;
		const char *how = NULL;
		bool warn = now - p->full_warned_ns >= FULL_WARN_NS || !p->full_warned_ns;

		if (err != -E2BIG) {
			log_error("cannot ban %s: map bans: %s", a, strerror(-err));
			return err;
		}
		/* bans is full (max_bans): the fallback of docs/policy.md */
		p->full_events++;
		err = ban_when_full(p, addr, &ban, &net, &how);
		if (warn)
			p->full_warned_ns = now;
		log_msg(warn ? LOG_LVL_WARN : LOG_LVL_DEBUG,
			"map bans is full (max_bans): %s for %s: %s (%llu times so far; this "
			"warning at most once a minute)",
			err == 1 ? "banned" : "could not ban", a,
			err == 1 ? how : strerror(err < 0 ? -err : EPERM),
			(unsigned long long)p->full_events);
		if (err != 1) {
			/* the decision stands in the history, marked as never enforced */
			size_t before = p->n_pending;

			record(p, &net, reason, rule, dur, prior);
			if (p->n_pending > before) {
				struct store_ban *row = &p->pending[p->n_pending - 1];

				row->ended_at = row->banned_at;
				snprintf(row->end_reason, sizeof(row->end_reason),
					 "not enforced: bans map full");
			}
			return err ? err : -ENOSPC;
		}
	}
	ban_written(p);
	written_ns = maps_boot_ns();
	if (p->ev_ts_ns) /* the ban of a kernel event: how long it took */
		metrics_histogram_observe(
			&p->time_to_ban,
			written_ns > p->ev_ts_ns ? (double)(written_ns - p->ev_ts_ns) / 1e9 : 0);
	if (dur)
		log_ban(LOG_MID_BAN, a, reason, rule, detail, dur, prior + 1,
			"banned %s for %llus (%s: %s; offence %u)", a, (unsigned long long)dur,
			reason_name(reason), detail, prior + 1);
	else
		log_ban(LOG_MID_BAN, a, reason, rule, detail, 0, prior + 1,
			"banned %s permanently (%s: %s)", a, reason_name(reason), detail);
	if (off)
		off->bans++;
	p->bans++;
	if (reason < METRICS_BAN_REASONS)
		p->bans_by_reason[reason]++;
	record(p, &net, reason, rule, dur, prior);
	cidr_escalate(p, addr, dur);
	return 1;
}

/* Count a request that matched pattern (a pattern of p->cfg). */
static void count_url_hit(struct policy *p, const char *pattern)
{
	unsigned int i, n = 0;

	for (i = 0; i < p->n_url_hits; i++) {
		if (!strcmp(p->url_hits[i].pattern, pattern)) {
			p->url_hits[i].hits++;
			return;
		}
	}
	if (p->n_url_hits == CONFIG_MAX_URL_PATTERNS) {
		/* full: a reload replaced patterns; forget those no longer configured */
		for (i = 0; i < p->n_url_hits; i++) {
			for (unsigned int k = 0; k < p->cfg->n_url_patterns; k++) {
				if (!strcmp(p->url_hits[i].pattern, p->cfg->url_patterns[k])) {
					p->url_hits[n++] = p->url_hits[i];
					break;
				}
			}
		}
		p->n_url_hits = n;
		if (n == CONFIG_MAX_URL_PATTERNS)
			return;
	}
	snprintf(p->url_hits[p->n_url_hits].pattern, sizeof(p->url_hits[0].pattern), "%s", pattern);
	p->url_hits[p->n_url_hits++].hits = 1;
}

uint64_t policy_url_hits(const struct policy *p, const char *pattern)
{
	for (unsigned int i = 0; i < p->n_url_hits; i++)
		if (!strcmp(p->url_hits[i].pattern, pattern))
			return p->url_hits[i].hits;
	return 0;
}

static int on_url_hit(struct policy *p, const struct ebpfmon_ev_url_hit *ev)
{
	char path[EBPFMON_URL_PATH_MAX + 1], shown[STORE_PATH_MAX], a[ADDR_STRLEN];
	char detail[STORE_PATH_MAX + 192];
	struct policy_req req;
	const char *pat;
	size_t len = ev->path_len < EBPFMON_URL_PATH_MAX ? ev->path_len : EBPFMON_URL_PATH_MAX;
	int rc;

	memcpy(path, ev->path, len);
	path[len] = '\0';
	if (strlen(path) != len)
		return 0; /* a NUL inside the path: not a request line we judge */
	pat = policy_url_match(p->cfg, path);
	if (!pat)
		return 0;
	/* the path is the client's: never let its bytes into a log line or a row as they are */
	urlcanon_escape(ev->path, len, ev->flags & EBPFMON_URL_HIT_TRUNCATED, shown, sizeof(shown));
	req = (struct policy_req){.addr = ev->addr,
				  .sport = ev->sport,
				  .dport = ev->dport,
				  .seq = ev->seq,
				  .isn = ev->conn_isn};
	if (policy_seen_check(&p->seen, &req, ev->hdr.ts_ns)) {
		p->retransmits++;
		log_debug("%s:%u requested '%s' again (port %u, seq %u, connection %u): a "
			  "retransmission, not a new offence",
			  addr_format(&ev->addr, a, sizeof(a)), ev->sport, shown, ev->dport,
			  ev->seq, ev->conn_isn);
		return 0;
	}
	count_url_hit(p, pat);
	snprintf(detail, sizeof(detail), "requested '%s' (pattern '%s', port %u)", shown, pat,
		 ev->dport);
	p->hit_path = shown;
	p->hit_req = &req;
	rc = policy_ban(p, &ev->addr, EBPFMON_BAN_URL_RULE, pat, detail);
	p->hit_path = NULL;
	p->hit_req = NULL;
	return rc;
}

int policy_on_event(struct policy *p, const void *data, size_t len)
{
	const struct ebpfmon_event_hdr *h = data;
	char detail[128];
	int rc;

	if (len < sizeof(*h) || h->len != len) {
		log_warn("dropping a malformed event (%zu bytes, header says %u)", len,
			 len >= sizeof(*h) ? h->len : 0);
		return -EINVAL;
	}
	switch (h->type) {
	case EBPFMON_EV_CONN_LIMIT: {
		const struct ebpfmon_ev_conn_limit *ev = data;

		if (len != sizeof(*ev))
			break;
		snprintf(detail, sizeof(detail), "%u established connections, limit %u", ev->active,
			 ev->limit);
		p->ev_ts_ns = h->ts_ns;
		rc = policy_ban(p, &ev->addr, EBPFMON_BAN_CONN_LIMIT, NULL, detail);
		p->ev_ts_ns = 0;
		return rc;
	}
	case EBPFMON_EV_URL_HIT:
		if (len != sizeof(struct ebpfmon_ev_url_hit))
			break;
		p->ev_ts_ns = h->ts_ns;
		rc = on_url_hit(p, data);
		p->ev_ts_ns = 0;
		return rc;
	case EBPFMON_EV_BAN_DROP:
		if (len != sizeof(struct ebpfmon_ev_ban_drop))
			break;
		return 0;
	default:
		log_warn("dropping an event of unknown type %u", h->type);
		return -EINVAL;
	}
	log_warn("dropping an event of type %u with a bad length %zu", h->type, len);
	return -EINVAL;
}

static int ban_map_fd(const struct policy *p, const struct addr_cidr *net, const void **key,
		      struct ebpfmon_lpm_key *lpm)
{
	if (net->prefixlen == 128) {
		*key = &net->addr;
		return p->maps->bans;
	}
	cidr_to_lpm_key(net, lpm);
	*key = lpm;
	return p->maps->ban_nets;
}

/*
 * Remove a map entry whose deadline passed (m, from a snapshot; now: CLOCK_BOOTTIME ns): read
 * again first, since it may have been renewed since the snapshot. True when removed.
 */
static bool expire_one(struct policy *p, const struct policy_map_ban *m, uint64_t now)
{
	struct ebpfmon_lpm_key lpm;
	struct ebpfmon_ban ban;
	const void *key;
	int fd = ban_map_fd(p, &m->net, &key, &lpm);
	char a[ADDR_STRLEN], drops[24];

	if (bpf_map_lookup_elem(fd, key, &ban) || maps_ban_in_force(&ban, now) ||
	    bpf_map_delete_elem(fd, key))
		return false;
	p->expired++;
	{
		struct log_field f[] = {
			{"EBPFMON_ADDRESS", cidr_format(&m->net, a, sizeof(a))},
			{"EBPFMON_END_REASON", "expired"},
			{"EBPFMON_DROPS", drops},
		};

		snprintf(drops, sizeof(drops), "%llu", (unsigned long long)ban.drops);
		log_event(LOG_LVL_INFO, LOG_MID_BAN_ENDED, LOG_FIELDS(f),
			  "ban of %s ended (%llu packets dropped)", a,
			  (unsigned long long)ban.drops);
	}
	return true;
}

/* Remove the map entries whose deadline passed: they drop nothing any more. */
static void remove_expired(struct policy *p, const struct snapshot *sn, uint64_t now)
{
	bool nets_left = false;

	for (size_t i = 0; i < sn->n; i++) {
		const struct policy_map_ban *m = &sn->v[i];

		if (!m->expires_ns || m->expires_ns > now)
			nets_left |= m->net.prefixlen != 128;
		else
			expire_one(p, m, now);
	}
	if (!nets_left)
		set_ban_nets_flag(p, false);
}

/* --- the kernel maps against the database --- */

struct db_rows {
	struct policy_db_ban *v;
	size_t n, cap;
};

static int db_push(struct db_rows *r, const struct addr_cidr *net, int64_t id, int64_t expires_at,
		   uint32_t reason)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct policy_db_ban *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = (struct policy_db_ban){
		.net = *net, .id = id, .expires_at = expires_at, .reason = reason};
	return 0;
}

static int db_collect(const struct store_ban *row, void *ctx)
{
	return db_push(ctx, &row->net, row->id, row->expires_at, row->reason);
}

struct rc_ctx {
	struct policy *p;
	struct policy_now now;
	bool recheck; /* the diff is older than the maps (policy_survey()): look again first */
	unsigned int restored, recorded, removed;
};

/* An unended row of net waits in the queue of policy_flush(). */
static bool pending_has(const struct policy *p, const struct addr_cidr *net)
{
	for (size_t i = 0; i < p->n_pending; i++) {
		const struct store_ban *q = &p->pending[i];

		if (!q->dry_run && !q->ended_at && q->net.prefixlen == net->prefixlen &&
		    !memcmp(&q->net.addr, &net->addr, sizeof(net->addr)))
			return true;
	}
	return false;
}

/*
 * Whether an action of an older diff still holds: a row is not "removed" while its network
 * is in the map again, and a map entry needs recording only while it is there and no row,
 * written or queued, knows it.
 */
static bool rc_still(struct policy *p, enum policy_rc_action action, const struct policy_map_ban *m,
		     const struct policy_db_ban *row)
{
	const struct addr_cidr *net = action == POLICY_RC_RECORD ? &m->net : &row->net;
	struct ebpfmon_lpm_key lpm;
	struct ebpfmon_ban ban;
	struct store_ban found;
	const void *key;
	int fd = ban_map_fd(p, net, &key, &lpm);
	bool in_map = !bpf_map_lookup_elem(fd, key, &ban);

	switch (action) {
	case POLICY_RC_END_REMOVED:
		return !in_map;
	case POLICY_RC_RECORD:
		return in_map && maps_ban_in_force(&ban, maps_boot_ns()) && !pending_has(p, net) &&
		       store_ban_find_active(p->store, net, &found) == 0;
	default:
		return true;
	}
}

static void rc_act(enum policy_rc_action action, const struct policy_map_ban *m,
		   const struct policy_db_ban *row, void *ctx)
{
	struct rc_ctx *rc = ctx;
	struct policy *p = rc->p;
	struct ebpfmon_ban ban = {0};
	struct ebpfmon_lpm_key lpm;
	struct store_ban rec;
	const void *key;
	char a[ADDR_STRLEN];
	int fd;

	if (rc->recheck && !rc_still(p, action, m, row))
		return;
	switch (action) {
	case POLICY_RC_END_EXPIRED:
		if (row->id)
			store_ban_end_why(p->store, row->id, row->expires_at, "expired");
		return;
	case POLICY_RC_END_REMOVED:
		if (!row->id)
			return; /* not written yet: judged again at the next interval */
		if (store_ban_end_why(p->store, row->id, rc->now.unix_s, "removed from the map"))
			return;
		rc->removed++;
		{
			struct log_field f[] = {
				{"EBPFMON_ADDRESS", cidr_format(&row->net, a, sizeof(a))},
				{"EBPFMON_END_REASON", "removed from the map"},
			};

			log_event(
				LOG_LVL_INFO, LOG_MID_BAN_REMOVED, LOG_FIELDS(f),
				"ban of %s was removed from the map before its deadline: ended as "
				"an unban",
				a);
		}
		return;
	case POLICY_RC_END_SUPERSEDED:
		store_ban_end_why(p->store, row->id, rc->now.unix_s, "replaced by a newer ban");
		return;
	case POLICY_RC_RESTORE:
		fd = ban_map_fd(p, &row->net, &key, &lpm);
		ban.reason = row->reason;
		if (row->expires_at)
			ban.expires_ns =
				rc->now.boot_ns +
				(uint64_t)(row->expires_at - rc->now.unix_s) * 1000000000ull;
		if (bpf_map_update_elem(fd, key, &ban, BPF_NOEXIST)) {
			log_warn("cannot restore the ban of %s: %s",
				 cidr_format(&row->net, a, sizeof(a)), strerror(errno));
			return;
		}
		rc->restored++;
		if (row->net.prefixlen != 128)
			set_ban_nets_flag(p, true);
		else
			ban_of_addr_written(p, &row->net.addr, ban.expires_ns);
		ban_written(p);
		log_info("restored the ban of %s from the database (the maps are new)",
			 cidr_format(&row->net, a, sizeof(a)));
		return;
	case POLICY_RC_RECORD:
		rec = (struct store_ban){
			.net = m->net,
			.reason = m->reason <= EBPFMON_BAN_ESCALATED ? m->reason
								     : EBPFMON_BAN_MANUAL,
			/* the policy's reason: its row was lost (a crash while rows waited) */
			.source = m->reason == EBPFMON_BAN_MANUAL ? STORE_SOURCE_MANUAL
								  : STORE_SOURCE_AUTO,
			.hits = 1,
			.banned_at = rc->now.unix_s,
			.expires_at = m->expires_ns ? rc->now.unix_s + (int64_t)((m->expires_ns -
										  rc->now.boot_ns) /
										 1000000000ull)
						    : 0,
		};
		if (store_ban_insert(p->store, &rec) > 0) {
			rc->recorded++;
			log_info("recorded the ban of %s found in the kernel map",
				 cidr_format(&m->net, a, sizeof(a)));
		}
		return;
	}
}

/* Diff the maps against the database's active rows and act; maps_new: restore, not end. */
static void reconcile(struct policy *p, const struct snapshot *sn, bool maps_new)
{
	struct rc_ctx rc = {.p = p, .now = {.boot_ns = maps_boot_ns(), .unix_s = time(NULL)}};
	struct policy_map_ban *map = NULL;
	struct db_rows rows = {0};
	int64_t n;

	policy_flush(p); /* our own bans are rows before they are compared */
	n = store_ban_list_active(p->store, db_collect, &rows);
	/* rows still waiting to be written are known too (id 0: nothing to end yet) */
	for (size_t i = 0; n >= 0 && i < p->n_pending; i++)
		if (!p->pending[i].dry_run && !p->pending[i].ended_at &&
		    db_push(&rows, &p->pending[i].net, 0, p->pending[i].expires_at,
			    p->pending[i].reason))
			n = -ENOMEM;
	if (n >= 0 && sn->n)
		map = malloc(sn->n * sizeof(*map));
	if (n < 0 || (sn->n && !map)) {
		log_debug("reconciliation skipped: %s", strerror(n < 0 ? (int)-n : ENOMEM));
		goto out;
	}
	if (sn->n)
		memcpy(map, sn->v, sn->n * sizeof(*map));
	policy_reconcile_diff(map, sn->n, rows.v, rows.n, maps_new, &rc.now, rc_act, &rc);
	if (rc.restored || rc.recorded || rc.removed)
		log_info("reconciled: %u bans restored from the database, %u recorded from the "
			 "kernel, %u ended as removed from the map",
			 rc.restored, rc.recorded, rc.removed);
out:
	free(map);
	free(rows.v);
}

/* --- the survey: the interval's scans of the ban maps, off the loop --- */

struct survey_ctx {
	struct policy_survey *sv;
	size_t cap;
	int err;
};

/* policy_reconcile_diff()'s callback on the worker: the action, kept for the loop. */
static void survey_collect(enum policy_rc_action action, const struct policy_map_ban *m,
			   const struct policy_db_ban *row, void *ctx)
{
	struct survey_ctx *sc = ctx;
	struct policy_survey *sv = sc->sv;
	struct policy_reconcile_item *it;

	if (sc->err)
		return;
	if (sv->n_items == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;

		it = realloc(sv->items, cap * sizeof(*it));
		if (!it) {
			sc->err = -ENOMEM;
			return;
		}
		sv->items = it;
		sc->cap = cap;
	}
	it = &sv->items[sv->n_items++];
	*it = (struct policy_reconcile_item){.action = action};
	if (m)
		it->entry = *m;
	if (row)
		it->row = *row;
}

struct over_walk {
	struct policy_survey *sv;
	size_t cap;
	int err;
};

/* An address of conn_count over the limit (maps_walk callback, on the worker). */
static int over_one(const void *key, const void *value, void *ctx)
{
	const struct ebpfmon_conn *c = value;
	struct over_walk *w = ctx;
	struct policy_survey *sv = w->sv;

	if (c->active <= sv->limit)
		return 0;
	if (sv->n_over == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct ebpfmon_addr *v = realloc(sv->over, cap * sizeof(*v));

		if (!v) {
			w->err = -ENOMEM;
			return 1; /* stop: what was found is acted on */
		}
		sv->over = v;
		w->cap = cap;
	}
	memcpy(&sv->over[sv->n_over++], key, sizeof(*sv->over));
	return 0;
}

void policy_survey(const struct maps *maps, uint32_t limit, struct store *rstore,
		   struct policy_survey *sv)
{
	struct over_walk ow = {.sv = sv};
	struct survey_ctx sc = {.sv = sv};
	struct policy_map_ban *map = NULL;
	struct snapshot sn = {0};
	struct db_rows rows = {0};
	size_t n_bans, cap = 0;
	int64_t n = 0;
	long k;

	sv->now = (struct policy_now){.boot_ns = maps_boot_ns(), .unix_s = time(NULL)};
	sv->limit = limit;
	if (maps_walk(maps->conn_count, sizeof(struct ebpfmon_addr), sizeof(struct ebpfmon_conn),
		      over_one, &ow) < 0 ||
	    ow.err)
		log_debug("the scan of conn_count stopped early: %s",
			  strerror(ow.err ? -ow.err : EIO));
	sv->err = snapshot_maps(maps, &sn, &n_bans);
	if (sv->err)
		goto out;
	for (size_t i = 0; i < sn.n; i++) {
		const struct policy_map_ban *m = &sn.v[i];

		if (!m->expires_ns || m->expires_ns > sv->now.boot_ns) {
			sv->nets_left |= m->net.prefixlen != 128;
			continue;
		}
		if (sv->n_expired == cap) {
			struct policy_map_ban *v;

			cap = cap ? cap * 2 : 64;
			v = realloc(sv->expired, cap * sizeof(*v));
			if (!v) {
				sv->err = -ENOMEM;
				goto out;
			}
			sv->expired = v;
		}
		sv->expired[sv->n_expired++] = *m;
	}
	if (rstore) {
		n = store_ban_list_active(rstore, db_collect, &rows);
		if (n >= 0 && sn.n && !(map = malloc(sn.n * sizeof(*map))))
			n = -ENOMEM;
		if (n >= 0) {
			if (sn.n)
				memcpy(map, sn.v, sn.n * sizeof(*map));
			policy_reconcile_diff(map, sn.n, rows.v, rows.n, false, &sv->now,
					      survey_collect, &sc);
			sv->reconciled = !sc.err;
		}
		if (n < 0 || sc.err)
			log_debug("reconciliation skipped: %s",
				  strerror(n < 0 ? (int)-n : -sc.err));
	}
	k = evict_candidates(sn.v, n_bans, &sv->evict);
	if (k >= 0) {
		sv->n_evict = (size_t)k;
		sv->evict_made = true;
	}
	if (sv->want_esc)
		esc_index(sv, sn.v, n_bans);
out:
	free(map);
	free(rows.v);
	free(sn.v);
}

int policy_survey_apply(struct policy *p, struct policy_survey *sv, uint64_t budget_ns)
{
	struct rc_ctx rc = {.p = p,
			    .now = {.boot_ns = maps_boot_ns(), .unix_s = time(NULL)},
			    .recheck = true,
			    .recorded = sv->recorded,
			    .removed = sv->removed};
	uint64_t until = mono_ns() + budget_ns;
	struct ebpfmon_lpm_key next;
	bool more = false;
	int work = 0;

	while (sv->done_over < sv->n_over) {
		const struct ebpfmon_addr *addr = &sv->over[sv->done_over];
		struct ebpfmon_conn c;
		char detail[128];

		if (work++ && mono_ns() >= until)
			return 0;
		sv->done_over++;
		/* still over the limit now, and the limit the walk compared with is still it */
		if (sv->limit != p->cfg->max_connections_per_ip ||
		    bpf_map_lookup_elem(p->maps->conn_count, addr, &c) ||
		    c.active <= p->cfg->max_connections_per_ip)
			continue;
		snprintf(detail, sizeof(detail), "%u established connections, limit %u (scan)",
			 c.active, p->cfg->max_connections_per_ip);
		policy_ban(p, addr, EBPFMON_BAN_CONN_LIMIT, NULL, detail);
	}
	if (sv->err)
		return 1;
	while (sv->done_expired < sv->n_expired) {
		if (work++ && mono_ns() >= until)
			return 0;
		expire_one(p, &sv->expired[sv->done_expired++], rc.now.boot_ns);
	}
	/* a network banned since the walk keeps the flag: the map is asked again */
	if (!sv->nets_left && !sv->nets_checked &&
	    bpf_map_get_next_key(p->maps->ban_nets, NULL, &next) && errno == ENOENT)
		set_ban_nets_flag(p, false);
	sv->nets_checked = true;
	if (sv->reconciled && p->store && sv->done_items < sv->n_items) {
		store_begin(p->store);
		while (sv->done_items < sv->n_items) {
			const struct policy_reconcile_item *it = &sv->items[sv->done_items];

			if (work++ && mono_ns() >= until) {
				more = true;
				break;
			}
			sv->done_items++;
			rc_act(it->action, &it->entry, &it->row, &rc);
		}
		store_commit(p->store);
		sv->recorded = rc.recorded;
		sv->removed = rc.removed;
		if (more)
			return 0;
	}
	if (sv->recorded || sv->removed)
		log_info("reconciled: %u bans recorded from the kernel, %u ended as removed from "
			 "the map",
			 sv->recorded, sv->removed);
	if (sv->evict_made) { /* none: every ban was permanent at the walk */
		evict_set(p, sv->evict, sv->n_evict);
		sv->evict = NULL;
		sv->n_evict = 0;
		sv->evict_made = false;
	}
	if (sv->esc_made) { /* the walk saw what was written before it began */
		size_t k = 0;

		free(p->esc);
		p->esc = sv->esc;
		p->n_esc = sv->n_esc;
		sv->esc = NULL;
		sv->esc_made = false;
		for (size_t i = 0; i < p->n_esc_new; i++)
			if (p->esc_new[i].seq > sv->esc_seq)
				p->esc_new[k++] = p->esc_new[i];
		p->n_esc_new = k;
	}
	return 1;
}

void policy_survey_free(struct policy_survey *sv)
{
	free(sv->over);
	free(sv->expired);
	free(sv->items);
	free(sv->evict);
	free(sv->esc);
	memset(sv, 0, sizeof(*sv));
}

void policy_survey_prepare(struct policy *p, struct policy_survey *sv)
{
	policy_survey_free(sv);
	sv->want_esc = p->cfg->cidr_ban_threshold && !p->cfg->dry_run;
	sv->esc_seq = p->esc_seq;
}

/* An address over the limit whose crossing event was lost (maps_walk callback). */
static int conn_over_one(const void *key, const void *value, void *ctx)
{
	const struct ebpfmon_conn *c = value;
	struct policy *p = ctx;
	char detail[128];

	if (c->active <= p->cfg->max_connections_per_ip)
		return 0;
	snprintf(detail, sizeof(detail), "%u established connections, limit %u (scan)", c->active,
		 p->cfg->max_connections_per_ip);
	policy_ban(p, key, EBPFMON_BAN_CONN_LIMIT, NULL, detail);
	return 0;
}

void policy_scan_conn(struct policy *p)
{
	maps_walk(p->maps->conn_count, sizeof(struct ebpfmon_addr), sizeof(struct ebpfmon_conn),
		  conn_over_one, p);
}

void policy_scan_expiry(struct policy *p)
{
	struct snapshot sn = {0};
	size_t n_bans;

	/* Expired bans no longer drop (the kernel checks the deadline); tidy them away. */
	if (!snapshot_maps(p->maps, &sn, &n_bans))
		remove_expired(p, &sn, maps_boot_ns());
	free(sn.v);
}

void policy_scan_reconcile(struct policy *p)
{
	struct snapshot sn = {0};
	size_t n_bans;

	if (!p->store)
		return;
	store_ban_end_expired(p->store, time(NULL));
	/* The map is the truth: what left it early was unbanned, what came by hand is new. */
	if (!snapshot_maps(p->maps, &sn, &n_bans))
		reconcile(p, &sn, false);
	free(sn.v);
}

void policy_scan(struct policy *p)
{
	policy_scan_conn(p);
	policy_scan_expiry(p);
	policy_scan_reconcile(p);
}

int policy_maps_marker(int bans, int ban_nets, char *buf, size_t len)
{
	struct bpf_map_info bi = {0}, ni = {0};
	__u32 bl = sizeof(bi), nl = sizeof(ni);
	char boot[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f) {
		if (!fgets(boot, sizeof(boot), f))
			boot[0] = '\0';
		fclose(f);
	}
	boot[strcspn(boot, "\n")] = '\0';
	if (!boot[0] || bpf_obj_get_info_by_fd(bans, &bi, &bl) ||
	    bpf_obj_get_info_by_fd(ban_nets, &ni, &nl))
		return -EIO;
	snprintf(buf, len, "%s bans=%u ban_nets=%u", boot, bi.id, ni.id);
	return 0;
}

void policy_reconcile(struct policy *p)
{
	char was[128] = "", is[128] = "";
	struct snapshot sn = {0};
	bool maps_new, first;
	size_t n_bans;

	if (!p->store)
		return;
	store_begin(p->store);
	store_ban_end_expired(p->store, time(NULL));
	/* A map id can repeat after a reboot, the boot id never does. Unknown: assume new. */
	first = store_state_get(p->store, "maps", was, sizeof(was)) != 1;
	maps_new = policy_maps_marker(p->maps->bans, p->maps->ban_nets, is, sizeof(is)) || first ||
		   strcmp(was, is);
	if (first)
		log_debug("first run with this database (%s)", is[0] ? is : "maps unidentified");
	else
		log_info("%s (%s)",
			 maps_new
				 ? "the ban maps are new since the last run: bans in force are "
				   "restored from the database"
				 : "the ban maps are those of the last run: bans missing from them "
				   "were removed, and are ended",
			 is[0] ? is : "maps unidentified");
	if (!snapshot_maps(p->maps, &sn, &n_bans))
		reconcile(p, &sn, maps_new);
	if (is[0])
		store_state_set(p->store, "maps", is);
	store_commit(p->store);
	free(sn.v);
}

/* --- manual bans and unbans (the API) --- */

/*
 * End the active rows of exactly net, written or still queued, at `at` saying why: the number
 * ended or -errno (the database refused; what was ended before stays ended).
 */
static int end_rows(struct policy *p, const struct addr_cidr *net, int64_t at, const char *why)
{
	struct store_ban row;
	int n = 0, ret;

	for (size_t i = 0; i < p->n_pending; i++) {
		struct store_ban *q = &p->pending[i];

		if (q->ended_at || q->net.prefixlen != net->prefixlen ||
		    memcmp(&q->net.addr, &net->addr, sizeof(net->addr)))
			continue;
		q->ended_at = at;
		snprintf(q->end_reason, sizeof(q->end_reason), "%s", why);
		n++;
	}
	if (!p->store)
		return n;
	/* one row per ban; the bound only guards against a database that never lets go */
	for (int i = 0; i < 100000; i++) {
		ret = store_ban_find_active(p->store, net, &row);
		if (ret <= 0)
			return ret < 0 ? ret : n;
		ret = store_ban_end_why(p->store, row.id, at, why);
		if (ret)
			return ret;
		n++;
	}
	return n;
}

/* The allowlist entry that net overlaps (either holds the other), or NULL. */
static const struct addr_cidr *allow_overlap(const struct policy *p, const struct addr_cidr *net)
{
	for (unsigned int i = 0; i < p->cfg->n_allowlist; i++) {
		const struct addr_cidr *a = &p->cfg->allowlist[i];

		if (cidr_contains(a, &net->addr) || cidr_contains(net, &a->addr))
			return a;
	}
	return NULL;
}

int policy_ban_manual(struct policy *p, const struct addr_cidr *net, uint64_t dur_s,
		      const char *text, const char *who, struct store_ban *row,
		      struct addr_cidr *allowed)
{
	struct ebpfmon_ban ban = {.reason = EBPFMON_BAN_MANUAL};
	const struct addr_cidr *al = allow_overlap(p, net);
	uint64_t now = maps_boot_ns();
	struct ebpfmon_lpm_key lpm;
	const void *key;
	int fd = ban_map_fd(p, net, &key, &lpm);
	bool dry = p->cfg->dry_run, single = net->prefixlen == 128;
	char a[ADDR_STRLEN], b[ADDR_STRLEN], dur[32];
	struct store_ban *q;
	int64_t id = -ENODEV;

	cidr_format(net, a, sizeof(a));
	if (al) {
		log_info("not banning %s, asked by %s: allowlisted (%s)", a, who,
			 cidr_format(al, b, sizeof(b)));
		if (allowed)
			*allowed = *al;
		return -EPERM;
	}
	*row = (struct store_ban){
		.net = *net,
		.reason = EBPFMON_BAN_MANUAL,
		.source = STORE_SOURCE_MANUAL,
		.hits = 1,
		.banned_at = time(NULL),
		.dry_run = dry,
	};
	row->expires_at = dur_s ? row->banned_at + (int64_t)dur_s : 0;
	snprintf(row->rule, sizeof(row->rule), "%s", text ? text : "");
	if (dur_s)
		snprintf(dur, sizeof(dur), "for %llus", (unsigned long long)dur_s);
	else
		snprintf(dur, sizeof(dur), "permanently");
	if (!dry) {
		ban.expires_ns = dur_s ? now + dur_s * 1000000000ull : 0;
		if (bpf_map_update_elem(fd, key, &ban, BPF_ANY)) {
			int err = errno == E2BIG ? -ENOSPC : -errno;

			log_error("cannot ban %s, asked by %s: map %s: %s", a, who,
				  single ? "bans" : "ban_nets", strerror(errno));
			return err;
		}
		if (!single)
			set_ban_nets_flag(p, true);
		else
			ban_of_addr_written(p, &net->addr, ban.expires_ns);
		ban_written(p);
		if (single)
			p->bans++;
		else
			p->net_bans++;
		p->bans_by_reason[EBPFMON_BAN_MANUAL]++;
	} else {
		struct policy_offence *off = single ? offence(p, &net->addr) : NULL;

		p->would_bans++;
		if (off)
			off->dry_until_ns = dur_s ? now + dur_s * 1000000000ull : UINT64_MAX;
	}
	{
		char d[24];
		struct log_field f[] = {
			{"EBPFMON_ADDRESS", a},	     {"EBPFMON_REASON", "manual"},
			{"EBPFMON_RULE", row->rule}, {"EBPFMON_DURATION_SEC", d},
			{"EBPFMON_BY", who},
		};

		if (dur_s)
			snprintf(d, sizeof(d), "%llu", (unsigned long long)dur_s);
		else
			snprintf(d, sizeof(d), "permanent");
		log_event(LOG_LVL_INFO, dry ? LOG_MID_WOULD_BAN : LOG_MID_BAN, LOG_FIELDS(f),
			  "%s %s %s (manual, by %s%s%s)", dry ? "would ban (dry run)" : "banned", a,
			  dur, who, row->rule[0] ? ": " : "", row->rule);
	}
	/* this ban replaces any earlier one of exactly net: their rows end, this one is new */
	if (p->store) {
		store_begin(p->store);
		end_rows(p, net, row->banned_at, "replaced by a manual ban");
		id = store_ban_insert(p->store, row);
		if (store_commit(p->store) && id > 0)
			id = -EIO; /* rolled back with the batch */
	} else {
		end_rows(p, net, row->banned_at, "replaced by a manual ban");
	}
	if (id > 0) {
		row->id = id;
		return 0;
	}
	q = pending_slot(p); /* written when the database takes it */
	if (q)
		*q = *row;
	row->id = 0;
	return 0;
}

int policy_unban(struct policy *p, const struct addr_cidr *net, const char *why)
{
	struct ebpfmon_lpm_key lpm;
	struct ebpfmon_ban ban;
	const void *key;
	int fd = ban_map_fd(p, net, &key, &lpm), rows, err = 0;
	bool in_force = false, single = net->prefixlen == 128;
	char a[ADDR_STRLEN];

	cidr_format(net, a, sizeof(a));
	if (!bpf_map_lookup_elem(fd, key, &ban)) {
		in_force = maps_ban_in_force(&ban, maps_boot_ns());
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT) {
			err = -errno;
			log_error("cannot unban %s: map %s: %s", a, single ? "bans" : "ban_nets",
				  strerror(errno));
			return err;
		}
	}
	if (!single) {
		struct ebpfmon_lpm_key next;

		if (bpf_map_get_next_key(p->maps->ban_nets, NULL, &next) && errno == ENOENT)
			set_ban_nets_flag(p, false);
	} else if (p->cap_hist) {
		struct policy_offence *off = hist_slot(p->hist, p->cap_hist, &net->addr);

		if (off->used)
			off->dry_until_ns = 0; /* a dry run's would-ban ends too */
	}
	if (p->store)
		store_begin(p->store);
	rows = end_rows(p, net, time(NULL), why);
	if (p->store && store_commit(p->store) && rows > 0)
		rows = -EIO;
	if (rows < 0) {
		/* the kernel no longer drops it; the row ends at the next reconciliation */
		log_warn("unbanned %s (%s) but could not end its row in the database: %s", a, why,
			 strerror(-rows));
		return in_force ? 1 : rows;
	}
	if (!rows && !in_force)
		return 0;
	{
		struct log_field f[] = {
			{"EBPFMON_ADDRESS", a},
			{"EBPFMON_END_REASON", why},
		};

		log_event(LOG_LVL_INFO, LOG_MID_UNBAN, LOG_FIELDS(f),
			  "unbanned %s (%s; %d %s ended)", a, why, rows ? rows : 1,
			  rows > 1 ? "bans" : "ban");
	}
	return rows ? rows : 1;
}
