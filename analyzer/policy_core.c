// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "policy_core.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t policy_duration_s(const struct config *cfg, uint32_t prior)
{
	uint64_t base = cfg->ban_duration_s, cap = cfg->ban_max_duration_s, d = base;

	if (!base)
		return 0;
	for (uint32_t i = 0; i < prior && d < cap; i++)
		d *= cfg->ban_escalation_factor;
	return d > cap && cap >= base ? cap : d;
}

const char *policy_url_match(const struct config *cfg, const char *path)
{
	bool nocase = cfg->url_case_insensitive;

	for (unsigned int i = 0; i < cfg->n_url_patterns; i++) {
		const char *pat = cfg->url_patterns[i];
		size_t len = strlen(pat);

		if (strchr(pat, '*') ? fnmatch(pat, path, nocase ? FNM_CASEFOLD : 0) == 0
		    : nocase	     ? strncasecmp(path, pat, len) == 0
				     : strncmp(path, pat, len) == 0)
			return pat;
	}
	return NULL;
}

bool policy_allowlisted(const struct config *cfg, const struct ebpfmon_addr *addr)
{
	for (unsigned int i = 0; i < cfg->n_allowlist; i++)
		if (cidr_contains(&cfg->allowlist[i], addr))
			return true;
	return false;
}

enum policy_verdict policy_decide(const struct config *cfg, const struct ebpfmon_addr *addr,
				  bool banned_now)
{
	if (policy_allowlisted(cfg, addr))
		return POLICY_SKIP_ALLOWED;
	if (banned_now)
		return POLICY_SKIP_BANNED;
	return cfg->dry_run ? POLICY_WOULD_BAN : POLICY_BAN;
}

int policy_esc_cmp(const void *a, const void *b)
{
	const struct policy_esc *x = a, *y = b;
	int c = memcmp(x->net.addr.a, y->net.addr.a, sizeof(x->net.addr.a));

	if (c)
		return c;
	if (x->net.prefixlen != y->net.prefixlen)
		return x->net.prefixlen < y->net.prefixlen ? -1 : 1;
	return memcmp(x->addr.a, y->addr.a, sizeof(x->addr.a));
}

void policy_escalation_net(const struct ebpfmon_addr *addr, struct addr_cidr *net)
{
	bool v4 = addr_is_v4(addr);

	net->addr = *addr;
	net->prefixlen = v4 ? 120 : 64;
	memset(net->addr.a + (v4 ? 15 : 8), 0, v4 ? 1 : 8);
}

/* --- one request, one offence --- */

void policy_seen_init(struct policy_seen *s, uint64_t seed)
{
	memset(s->e, 0, sizeof(s->e));
	s->seed = seed;
}

static bool req_equal(const struct policy_req *a, const struct policy_req *b)
{
	/* an unknown ISN (a row from before it was kept) matches any */
	return a->sport == b->sport && a->dport == b->dport && a->seq == b->seq &&
	       (a->isn == b->isn || !a->isn || !b->isn) &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

static size_t req_set(const struct policy_seen *s, const struct policy_req *r)
{
	uint64_t w[2], h = s->seed;

	memcpy(w, r->addr.a, sizeof(w));
	h ^= w[0] * 0x9e3779b97f4a7c15ull;
	h = (h ^ (h >> 31) ^ w[1]) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 29) ^ ((uint64_t)r->sport << 48 | (uint64_t)r->dport << 32 | r->seq)) *
	    0x94d049bb133111ebull;
	h ^= h >> 32;
	return (size_t)(h % POLICY_SEEN_SETS);
}

bool policy_seen_check(struct policy_seen *s, const struct policy_req *req, uint64_t now_ns)
{
	struct policy_seen_entry *set = s->e[req_set(s, req)], *victim = NULL;

	for (int i = 0; i < POLICY_SEEN_WAYS; i++) {
		struct policy_seen_entry *e = &set[i];
		/* an entry newer than now_ns (history seeded late) is live too */
		bool live = e->used &&
			    (e->at_ns >= now_ns || now_ns - e->at_ns < POLICY_SEEN_TTL_NS);

		if (live && req_equal(&e->req, req))
			return true;
		if (!live) {
			if (!victim || victim->used)
				victim = e;
		} else if (!victim || (victim->used && e->at_ns < victim->at_ns)) {
			victim = e;
		}
	}
	*victim = (struct policy_seen_entry){.req = *req, .at_ns = now_ns, .used = true};
	return false;
}

/* --- the kernel map against the database --- */

static int cidr_cmp(const struct addr_cidr *a, const struct addr_cidr *b)
{
	int c = memcmp(a->addr.a, b->addr.a, sizeof(a->addr.a));

	if (c)
		return c;
	return (a->prefixlen > b->prefixlen) - (a->prefixlen < b->prefixlen);
}

static int map_cmp(const void *a, const void *b)
{
	return cidr_cmp(&((const struct policy_map_ban *)a)->net,
			&((const struct policy_map_ban *)b)->net);
}

static int db_cmp(const void *a, const void *b)
{
	return cidr_cmp(&((const struct policy_db_ban *)a)->net,
			&((const struct policy_db_ban *)b)->net);
}

/* In force beyond the clocks' drift: a ban about to expire may have lost its row already. */
static bool entry_lasts(const struct policy_map_ban *m, uint64_t boot_ns)
{
	return !m->expires_ns || m->expires_ns > boot_ns + POLICY_RC_GRACE_S * 1000000000ull;
}

static void judge_row(const struct policy_db_ban *row, bool maps_new, const struct policy_now *now,
		      policy_rc_cb cb, void *ctx)
{
	if (row->expires_at && row->expires_at <= now->unix_s + POLICY_RC_GRACE_S)
		cb(POLICY_RC_END_EXPIRED, NULL, row, ctx);
	else
		cb(maps_new ? POLICY_RC_RESTORE : POLICY_RC_END_REMOVED, NULL, row, ctx);
}

void policy_reconcile_diff(struct policy_map_ban *map, size_t n_map, struct policy_db_ban *db,
			   size_t n_db, bool maps_new, const struct policy_now *now,
			   policy_rc_cb cb, void *ctx)
{
	size_t i = 0, j = 0;

	if (n_map)
		qsort(map, n_map, sizeof(*map), map_cmp);
	if (n_db)
		qsort(db, n_db, sizeof(*db), db_cmp);
	while (i < n_map || j < n_db) {
		int c = i == n_map ? 1 : j == n_db ? -1 : cidr_cmp(&map[i].net, &db[j].net);

		if (c < 0) {
			if (entry_lasts(&map[i], now->boot_ns))
				cb(POLICY_RC_RECORD, &map[i], NULL, ctx);
			i++;
		} else if (c > 0) {
			judge_row(&db[j++], maps_new, now, cb, ctx);
		} else {
			/* agreed; of several rows the newest (or the one not yet written) stands */
			struct addr_cidr net = map[i++].net;
			size_t k, first = j, newest = j;

			while (j < n_db && !cidr_cmp(&db[j].net, &net)) {
				if (db[newest].id && (!db[j].id || db[j].id > db[newest].id))
					newest = j;
				j++;
			}
			for (k = first; k < j; k++)
				if (k != newest && db[k].id)
					cb(POLICY_RC_END_SUPERSEDED, NULL, &db[k], ctx);
		}
	}
}

/* --- a full bans map --- */

static int evict_cmp(const void *x, const void *y)
{
	const struct policy_map_ban *a = x, *b = y;

	return a->expires_ns < b->expires_ns ? -1 : a->expires_ns > b->expires_ns;
}

size_t policy_evict_order(struct policy_map_ban *bans, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (bans[i].expires_ns)
			bans[k++] = bans[i];
	if (k > 1)
		qsort(bans, k, sizeof(*bans), evict_cmp);
	return k;
}
