// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "policy.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "log.h"

static const char *const reason_names[] = {
	[EBPFMON_BAN_MANUAL] = "manual",
	[EBPFMON_BAN_CONN_LIMIT] = "conn_limit",
	[EBPFMON_BAN_URL_RULE] = "url_rule",
	[EBPFMON_BAN_ESCALATED] = "escalated",
};

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void policy_init(struct policy *p, const struct config *cfg, const struct maps *maps)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->maps = maps;
}

void policy_free(struct policy *p)
{
	free(p->hist);
	p->hist = NULL;
	p->n_hist = p->cap_hist = 0;
}

uint64_t policy_duration_s(const struct config *cfg, uint32_t prior)
{
	uint64_t base = cfg->ban_duration_seconds ? cfg->ban_duration_seconds
						  : (uint64_t)cfg->ban_duration_minutes * 60;
	uint64_t cap = (uint64_t)cfg->ban_max_duration_minutes * 60, d = base;

	if (!base)
		return 0;
	for (uint32_t i = 0; i < prior && d < cap; i++)
		d *= cfg->ban_escalation_factor;
	return d > cap && cap >= base ? cap : d;
}

const char *policy_url_match(const struct config *cfg, const char *path)
{
	for (unsigned int i = 0; i < cfg->n_url_patterns; i++) {
		const char *pat = cfg->url_patterns[i];

		if (strchr(pat, '*') ? fnmatch(pat, path, 0) == 0
				     : strncmp(path, pat, strlen(pat)) == 0)
			return pat;
	}
	return NULL;
}

static bool allowlisted(const struct config *cfg, const struct ebpfmon_addr *addr)
{
	for (unsigned int i = 0; i < cfg->n_allowlist; i++)
		if (cidr_contains(&cfg->allowlist[i], addr))
			return true;
	return false;
}

static struct policy_offence *offence(struct policy *p, const struct ebpfmon_addr *addr)
{
	for (size_t i = 0; i < p->n_hist; i++)
		if (!memcmp(&p->hist[i].addr, addr, sizeof(*addr)))
			return &p->hist[i];
	if (p->n_hist == p->cap_hist) {
		size_t cap = p->cap_hist ? p->cap_hist * 2 : 64;
		struct policy_offence *h = realloc(p->hist, cap * sizeof(*h));

		if (!h)
			return NULL;
		p->hist = h;
		p->cap_hist = cap;
	}
	p->hist[p->n_hist] = (struct policy_offence){ .addr = *addr };
	return &p->hist[p->n_hist++];
}

int policy_ban(struct policy *p, const struct ebpfmon_addr *addr, enum ebpfmon_ban_reason reason,
	       const char *detail)
{
	struct ebpfmon_ban ban = { .reason = reason }, old;
	char a[ADDR_STRLEN];
	struct policy_offence *off;
	uint64_t now = boot_ns(), dur;

	addr_format(addr, a, sizeof(a));
	if (allowlisted(p->cfg, addr)) {
		log_info("not banning %s (allowlisted): %s", a, detail);
		return 0;
	}
	if (bpf_map_lookup_elem(p->maps->bans, addr, &old) == 0 &&
	    (!old.expires_ns || old.expires_ns > now))
		return 0; /* banned already: a retransmitted probe or a late event */
	off = offence(p, addr);
	dur = policy_duration_s(p->cfg, off ? off->bans : 0);
	if (p->cfg->dry_run) {
		if (off && (off->dry_until_ns == UINT64_MAX || off->dry_until_ns > now))
			return 0; /* would be banned already */
		log_info("would ban %s for %llus (dry run; %s: %s)", a, (unsigned long long)dur,
			 reason_names[reason], detail);
		p->would_bans++;
		if (off) {
			off->bans++;
			off->dry_until_ns = dur ? now + dur * 1000000000ull : UINT64_MAX;
		}
		return 1;
	}
	ban.expires_ns = dur ? now + dur * 1000000000ull : 0;
	if (bpf_map_update_elem(p->maps->bans, addr, &ban, BPF_ANY)) {
		int err = -errno;

		log_error("cannot ban %s: map bans: %s", a, strerror(errno));
		return err;
	}
	if (dur)
		log_info("banned %s for %llus (%s: %s; offence %u)", a, (unsigned long long)dur,
			 reason_names[reason], detail, off ? off->bans + 1 : 1);
	else
		log_info("banned %s permanently (%s: %s)", a, reason_names[reason], detail);
	if (off)
		off->bans++;
	p->bans++;
	return 1;
}

static int on_url_hit(struct policy *p, const struct ebpfmon_ev_url_hit *ev)
{
	char path[EBPFMON_URL_PATH_MAX + 1], detail[EBPFMON_URL_PATH_MAX + 192];
	const char *pat;
	size_t len = ev->path_len < EBPFMON_URL_PATH_MAX ? ev->path_len : EBPFMON_URL_PATH_MAX;

	memcpy(path, ev->path, len);
	path[len] = '\0';
	if (strlen(path) != len)
		return 0; /* a NUL inside the path: not a request line we judge */
	pat = policy_url_match(p->cfg, path);
	if (!pat)
		return 0;
	snprintf(detail, sizeof(detail), "requested '%s' (pattern '%s', port %u)", path, pat,
		 ev->dport);
	return policy_ban(p, &ev->addr, EBPFMON_BAN_URL_RULE, detail);
}

int policy_on_event(struct policy *p, const void *data, size_t len)
{
	const struct ebpfmon_event_hdr *h = data;
	char detail[128];

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
		snprintf(detail, sizeof(detail), "%u established connections, limit %u",
			 ev->active, ev->limit);
		return policy_ban(p, &ev->addr, EBPFMON_BAN_CONN_LIMIT, detail);
	}
	case EBPFMON_EV_URL_HIT:
		if (len != sizeof(struct ebpfmon_ev_url_hit))
			break;
		return on_url_hit(p, data);
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

void policy_scan(struct policy *p)
{
	struct ebpfmon_addr key, next, *cur = NULL;
	uint64_t now = boot_ns();
	char a[ADDR_STRLEN], detail[128];

	/* Safety net: an address over the limit whose crossing event was lost. */
	while (bpf_map_get_next_key(p->maps->conn_count, cur, &next) == 0) {
		struct ebpfmon_conn c;

		key = next;
		cur = &key;
		if (bpf_map_lookup_elem(p->maps->conn_count, &key, &c) ||
		    c.active <= p->cfg->max_connections_per_ip)
			continue;
		snprintf(detail, sizeof(detail), "%u established connections, limit %u (scan)",
			 c.active, p->cfg->max_connections_per_ip);
		policy_ban(p, &key, EBPFMON_BAN_CONN_LIMIT, detail);
	}

	/* Expired bans no longer drop (the kernel checks the deadline); tidy them away. */
	cur = NULL;
	while (bpf_map_get_next_key(p->maps->bans, cur, &next) == 0) {
		struct ebpfmon_ban ban;

		key = next;
		cur = &key;
		if (bpf_map_lookup_elem(p->maps->bans, &key, &ban) || !ban.expires_ns ||
		    ban.expires_ns > now)
			continue;
		if (bpf_map_delete_elem(p->maps->bans, &key) == 0) {
			p->expired++;
			log_info("ban of %s ended (%llu packets dropped)",
				 addr_format(&key, a, sizeof(a)), (unsigned long long)ban.drops);
		}
	}
}
