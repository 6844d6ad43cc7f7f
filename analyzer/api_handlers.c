// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The six calls of the API on the owner thread: decode the Request, check its version and
 * arguments, authorize changes, read the maps and the store or act through the policy, and
 * encode the Response. Responses are built in an arena of small allocations freed at once.
 */
#include "api_handlers.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_snap.h"
#include "api_wire.h"
#include "ebpfmon.pb-c.h"
#include "log.h"
#include "maps.h"
#include "mapwalk.h"
#include "policy.h"
#include "store.h"
#include "sysmon.h"

#ifndef EBPFMON_VERSION
#define EBPFMON_VERSION "unknown"
#endif

typedef Ebpfmon__V1__Status api_status; /* the generated names are long */

#define ST(name) EBPFMON__V1__STATUS__STATUS_##name

/* --- the arena of one response --- */

struct arena {
	void **p;
	size_t n, cap;
	bool failed;
};

static void *arena_alloc(struct arena *ar, size_t size)
{
	void *v;

	if (ar->n == ar->cap) {
		size_t cap = ar->cap ? ar->cap * 2 : 64;
		void **p = realloc(ar->p, cap * sizeof(*p));

		if (!p) {
			ar->failed = true;
			return NULL;
		}
		ar->p = p;
		ar->cap = cap;
	}
	v = calloc(1, size ? size : 1);
	if (!v) {
		ar->failed = true;
		return NULL;
	}
	ar->p[ar->n++] = v;
	return v;
}

static char *arena_str(struct arena *ar, const char *s)
{
	size_t n = strlen(s);
	char *c = arena_alloc(ar, n + 1);

	if (c)
		memcpy(c, s, n + 1);
	return c ? c : (char *)protobuf_c_empty_string;
}

static void arena_free(struct arena *ar)
{
	for (size_t i = 0; i < ar->n; i++)
		free(ar->p[i]);
	free(ar->p);
	*ar = (struct arena){0};
}

/* A growing array of message pointers (a repeated field). */
struct vec {
	void **v;
	size_t n, cap;
};

static int vec_push(struct arena *ar, struct vec *vec, void *item)
{
	if (!item)
		return -ENOMEM;
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 16;
		void **v = arena_alloc(ar, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		if (vec->n)
			memcpy(v, vec->v, vec->n * sizeof(*v));
		vec->v = v; /* the old array stays in the arena until the end */
		vec->cap = cap;
	}
	vec->v[vec->n++] = item;
	return 0;
}

/* --- the reply --- */

struct reply {
	Ebpfmon__V1__Response resp;
	struct arena ar;
	char msg[512];
	bool fast;			    /* on nng's thread: only what the snapshots answer */
	struct api_status_snap *status_ref; /* the message points into it until packed */
	void *keep;			    /* likewise; freed after packing */
	void *packed;			    /* a whole packed Response (OK) from a cache */
	size_t packed_len;
	struct api_top_snap *top_ref; /* the packed reply is kept for it (k, order, gen) */
	uint32_t top_k;
	int top_o;
	uint64_t top_gen;
};

/* Not answered here: on nng's thread, the loop's turn; on the loop, after the next cycle. */
#define ST_LATER ((api_status)-1)

/* Set the status and its message; returns the status, so that handlers can return it. */
__attribute__((format(printf, 3, 4))) static api_status fail(struct reply *r, api_status st,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->resp.status = st;
	return st;
}

/* A client's text in a message, quoted: at most 64 bytes, control and non-ASCII as '?'. */
static const char *quote(const char *s, char buf[72])
{
	size_t i, o = 0;

	buf[o++] = '\'';
	for (i = 0; s[i] && i < 64; i++)
		buf[o++] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
	if (s[i]) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

/*
 * No control character (C0, DEL, C1): what a reason text may hold besides being UTF-8, which
 * dispatch() checked on the wire for every string field (api_wire.h).
 */
static bool text_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0))
			return false;
	return true;
}

/* --- arguments --- */

int api_parse_net(const char *s, struct addr_cidr *out, char *err, size_t errlen)
{
	char q[72], b[ADDR_STRLEN];
	struct addr_cidr loose;

	if (!s || !*s) {
		snprintf(err, errlen, "no address given");
		return -EINVAL;
	}
	if (!cidr_parse(s, out))
		return 0;
	if (cidr_parse_loose(s, &loose) == 1) {
		snprintf(err, errlen, "host bits set in %s: did you mean %s?", quote(s, q),
			 cidr_format(&loose, b, sizeof(b)));
		return -EINVAL;
	}
	snprintf(err, errlen,
		 "%s is not an IPv4 or IPv6 address or network (e.g. 198.51.100.7, "
		 "198.51.100.0/24, 2001:db8::/32)",
		 quote(s, q));
	return -EINVAL;
}

/*
 * What no packet ever comes from, or NULL: a ban of it (or of a network inside it) would
 * never drop anything. RFC 1122 section 3.2.1.3 (0.0.0.0, 255.255.255.255 and multicast are
 * never a source), RFC 4291 sections 2.5.2 and 2.7 (:: and ff00::/8).
 */
static const char *never_source(const struct addr_cidr *net)
{
	static const struct {
		const char *net, *what;
	} nets[] = {
		{"0.0.0.0", "the unspecified address"},
		{"255.255.255.255", "the limited broadcast address"},
		{"224.0.0.0/4", "multicast"},
		{"::", "the unspecified address"},
		{"ff00::/8", "multicast"},
	};

	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		struct addr_cidr c;

		if (!cidr_parse(nets[i].net, &c) && net->prefixlen >= c.prefixlen &&
		    cidr_contains(&c, &net->addr))
			return nets[i].what;
	}
	return NULL;
}

int api_parse_reason(const char *s, enum ebpfmon_ban_reason *out)
{
	for (unsigned int r = EBPFMON_BAN_MANUAL; r <= EBPFMON_BAN_ESCALATED; r++) {
		const char *name = store_reason_name(r);

		if (name && s && !strcmp(s, name)) {
			*out = r;
			return 0;
		}
	}
	return -EINVAL;
}

/* limit 0: the default; over API_LIMIT_MAX: refused. */
static int check_limit(struct reply *r, const char *what, uint32_t in, uint32_t dflt, uint32_t *out)
{
	if (in > API_LIMIT_MAX) {
		fail(r, ST(INVALID_ARGUMENT), "%s %u is over the maximum %u", what, in,
		     API_LIMIT_MAX);
		return -EINVAL;
	}
	*out = in ? in : dflt;
	return 0;
}

static int check_since(struct reply *r, int64_t since)
{
	if (since < 0) {
		fail(r, ST(INVALID_ARGUMENT), "since_unix %lld is negative", (long long)since);
		return -EINVAL;
	}
	return 0;
}

/* --- authorization --- */

bool api_may_change(const struct api_peer *peer, uid_t own_uid, const gid_t *admin_gid,
		    const gid_t *groups, size_t ngroups)
{
	if (!peer->local || !peer->has_creds)
		return false;
	if (peer->uid == 0 || peer->uid == own_uid)
		return true;
	if (!admin_gid)
		return false;
	if (peer->gid == *admin_gid)
		return true;
	for (size_t i = 0; i < ngroups; i++)
		if (groups[i] == *admin_gid)
			return true;
	return false;
}

bool api_tls_may_change(const struct api_peer *peer, const char *admin_names)
{
	size_t n = strlen(peer->cn);

	if (!peer->tls || !peer->tls_verified)
		return false;
	if (!admin_names || !admin_names[0])
		return true;
	if (!n)
		return false;
	for (const char *p = admin_names; *p; p += strcspn(p, ","), p += *p == ',') {
		if (strcspn(p, ",") == n && !strncmp(p, peer->cn, n))
			return true;
	}
	return false;
}

#define API_GROUPS_MAX 256

/* Whether peer may change bans; if not, the reply says why. "uid N" into who. */
static bool authorize(struct api_env *env, const struct api_peer *peer, struct reply *r, char *who,
		      size_t wlen)
{
	const char *gname = env->policy->cfg->admin_group;
	gid_t groups[API_GROUPS_MAX], admin;
	const struct group *gr;
	const struct passwd *pw;
	int ngroups = 0;

	if (peer->tls) {
		const char *names = env->policy->cfg->tls_admin_names;

		snprintf(who, wlen, "tls %s%s%s%s", peer->cn[0] ? "CN=" : "", peer->cn,
			 peer->cn[0] ? " from " : "", peer->addr[0] ? peer->addr : "?");
		if (api_tls_may_change(peer, names))
			return true;
		if (!peer->tls_verified)
			fail(r, ST(NOT_PERMITTED),
			     "not permitted: the client certificate is not "
			     "verified");
		else
			fail(r, ST(NOT_PERMITTED), "not permitted: %s is not in tls_admin_names",
			     peer->cn[0] ? peer->cn : "a certificate whose CN is unknown");
		return false;
	}
	snprintf(who, wlen, "uid %u", peer->uid);
	if (!peer->local) {
		fail(r, ST(NOT_PERMITTED),
		     "not permitted: changes are refused over the network "
		     "listener (read-only); use the local socket");
		return false;
	}
	if (!peer->has_creds) {
		fail(r, ST(NOT_PERMITTED), "not permitted: the peer's uid and gid are unknown");
		return false;
	}
	/* root and the analyzer's user need no look-up in the group database (files, NSS) */
	if (api_may_change(peer, env->own_uid, NULL, NULL, 0))
		return true;
	gr = getgrnam(gname);
	if (gr)
		admin = gr->gr_gid;
	/* the peer's supplementary groups are those of its user (SO_PEERCRED has only one) */
	pw = gr ? getpwuid(peer->uid) : NULL;
	if (pw) {
		ngroups = API_GROUPS_MAX;
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) < 0)
			ngroups = API_GROUPS_MAX; /* the first API_GROUPS_MAX */
	}
	if (api_may_change(peer, env->own_uid, gr ? &admin : NULL, groups, (size_t)ngroups))
		return true;
	if (gr)
		fail(r, ST(NOT_PERMITTED), "not permitted: uid %u is neither root nor in group %s",
		     peer->uid, gname);
	else
		fail(r, ST(NOT_PERMITTED),
		     "not permitted: uid %u is not root, and the admin group "
		     "%s does not exist",
		     peer->uid, gname);
	return false;
}

/* --- conversions --- */

static const struct maps *maps_of(struct api_env *env)
{
	return env->policy->maps;
}

/* The connection the read calls read: the caller thread's own, else the policy's. */
static struct store *store_of(struct api_env *env)
{
	return env->store ? env->store : env->policy->store;
}

/* The map entry of exactly net (bans or ban_nets): 0 and *ban, or -errno. */
static int map_ban(struct api_env *env, const struct addr_cidr *net, struct ebpfmon_ban *ban)
{
	struct ebpfmon_lpm_key lpm;

	if (net->prefixlen == 128)
		return bpf_map_lookup_elem(maps_of(env)->bans, &net->addr, ban) ? -errno : 0;
	cidr_to_lpm_key(net, &lpm);
	return bpf_map_lookup_elem(maps_of(env)->ban_nets, &lpm, ban) ? -errno : 0;
}

static Ebpfmon__V1__Ban *ban_msg(struct api_env *env, struct reply *r, const struct store_ban *b)
{
	Ebpfmon__V1__Ban *m = arena_alloc(&r->ar, sizeof(*m));
	const char *reason = store_reason_name(b->reason), *source = store_source_name(b->source);
	struct ebpfmon_ban kb;
	char a[ADDR_STRLEN];

	if (!m)
		return NULL;
	ebpfmon__v1__ban__init(m);
	m->id = b->id > 0 ? (uint64_t)b->id : 0;
	m->address = arena_str(&r->ar, cidr_format(&b->net, a, sizeof(a)));
	m->reason = arena_str(&r->ar, reason ? reason : "");
	m->rule = arena_str(&r->ar, b->rule);
	m->path = arena_str(&r->ar, b->path);
	m->source = arena_str(&r->ar, source ? source : "");
	m->hits = b->hits;
	/* the kernel counts the drops of the ban in force */
	if (!b->ended_at && !b->dry_run && !map_ban(env, &b->net, &kb))
		m->drops = kb.drops;
	m->banned_unix = b->banned_at;
	m->expires_unix = b->expires_at;
	m->ended_unix = b->ended_at;
	m->end_reason = arena_str(&r->ar, b->end_reason);
	m->escalation_level = b->escalation_level;
	m->dry_run = b->dry_run;
	return m;
}

/* CLOCK_MONOTONIC(_COARSE) ns of a map entry to unix seconds; 0 stays 0. */
static int64_t mono_to_unix(uint64_t ns)
{
	struct timespec m;
	uint64_t now;

	if (!ns)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &m);
	now = (uint64_t)m.tv_sec * 1000000000ull + (uint64_t)m.tv_nsec;
	return (int64_t)time(NULL) - (int64_t)(now > ns ? (now - ns) / 1000000000ull : 0);
}

/* One address's counters summed over the values of its ip_stats entry. */
struct addr_sum {
	struct ebpfmon_addr addr;
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, syns, first_ns, last_ns;
};

static void sum_cpus(const struct ebpfmon_ip_stats *v, int n, struct addr_sum *s)
{
	for (int c = 0; c < n; c++) {
		s->rx_packets += v[c].rx_packets;
		s->rx_bytes += v[c].rx_bytes;
		s->tx_packets += v[c].tx_packets;
		s->tx_bytes += v[c].tx_bytes;
		s->syns += v[c].syns;
		if (v[c].first_seen_ns && (!s->first_ns || v[c].first_seen_ns < s->first_ns))
			s->first_ns = v[c].first_seen_ns;
		if (v[c].last_seen_ns > s->last_ns)
			s->last_ns = v[c].last_seen_ns;
	}
}

/* Whether addr is banned now: by bans, or by a network of ban_nets. */
static bool addr_banned(struct api_env *env, const struct ebpfmon_addr *addr)
{
	struct addr_cidr one = {.addr = *addr, .prefixlen = 128};
	struct ebpfmon_lpm_key lpm;
	struct ebpfmon_ban b;
	uint64_t now = maps_boot_ns();

	if (!map_ban(env, &one, &b) && maps_ban_in_force(&b, now))
		return true;
	cidr_to_lpm_key(&one, &lpm); /* the longest network holding addr */
	return !bpf_map_lookup_elem(maps_of(env)->ban_nets, &lpm, &b) && maps_ban_in_force(&b, now);
}

/* An AddressStats (initialised) with its address and traffic counters; packets, bytes: rx + tx. */
static void addr_counters(Ebpfmon__V1__AddressStats *m, struct arena *ar, const char *addr,
			  uint64_t rx_packets, uint64_t rx_bytes, uint64_t tx_packets,
			  uint64_t tx_bytes, uint64_t syns)
{
	ebpfmon__v1__address_stats__init(m);
	m->address = arena_str(ar, addr);
	m->rx_packets = rx_packets;
	m->rx_bytes = rx_bytes;
	m->tx_packets = tx_packets;
	m->tx_bytes = tx_bytes;
	m->packets = rx_packets + tx_packets;
	m->bytes = rx_bytes + tx_bytes;
	m->syns = syns;
}

static Ebpfmon__V1__AddressStats *addr_msg(struct api_env *env, struct reply *r,
					   const struct addr_sum *s)
{
	Ebpfmon__V1__AddressStats *m = arena_alloc(&r->ar, sizeof(*m));
	struct ebpfmon_conn c;
	char a[ADDR_STRLEN];

	if (!m)
		return NULL;
	addr_counters(m, &r->ar, addr_format(&s->addr, a, sizeof(a)), s->rx_packets, s->rx_bytes,
		      s->tx_packets, s->tx_bytes, s->syns);
	if (!bpf_map_lookup_elem(maps_of(env)->conn_count, &s->addr, &c))
		m->connections = c.active;
	m->first_seen_unix = mono_to_unix(s->first_ns);
	m->last_seen_unix = mono_to_unix(s->last_ns);
	m->banned = addr_banned(env, &s->addr);
	return m;
}

static api_status no_store(struct api_env *env, struct reply *r)
{
	return fail(r, ST(UNAVAILABLE),
		    "the database %s is not open (see the analyzer's log; "
		    "it is retried every minute)",
		    env->policy->cfg->sqlite_path);
}

/*
 * The status of a listing from the store that returned n (rows, or -errno): OK, INTERNAL when
 * memory ran out (in the store or in the reply's arena), else UNAVAILABLE naming what.
 */
static api_status store_failed(struct reply *r, const char *what, long err);

static api_status listed(struct reply *r, const char *what, long n)
{
	if (n == -ENOMEM || r->ar.failed)
		return ST(INTERNAL);
	return n < 0 ? store_failed(r, what, n) : ST(OK);
}

static api_status store_failed(struct reply *r, const char *what, long err)
{
	return fail(r, ST(UNAVAILABLE), "cannot read %s from the database: %s", what,
		    strerror((int)-err));
}

/* --- GetMonitorStatus --- */

static Ebpfmon__V1__Counters *counters_msg(struct reply *r, const struct ebpfmon_counters *s)
{
	Ebpfmon__V1__Counters *m = arena_alloc(&r->ar, sizeof(*m));

	if (!m)
		return NULL;
	ebpfmon__v1__counters__init(m);
	m->rx_seen = s->rx_seen;
	m->rx_passed = s->rx_passed;
	m->rx_drop_ban = s->rx_drop_ban;
	m->rx_drop_net = s->rx_drop_net;
	m->rx_drop_url = s->rx_drop_url;
	m->rx_drop_unseen = s->rx_drop_unseen;
	m->rx_allowed = s->rx_allowed;
	m->rx_would_drop = s->rx_would_drop;
	m->rx_not_ip = s->rx_not_ip;
	m->rx_parse_err = s->rx_parse_err;
	m->url_hits = s->url_hits;
	m->url_unverified = s->url_unverified;
	m->tx_seen = s->tx_seen;
	m->conn_opened = s->conn_opened;
	m->conn_table_full = s->conn_table_full;
	m->events_lost = s->ringbuf_drops;
	m->stream_url_hits = s->stream_url_hits;
	m->stream_drop_url = s->stream_drop_url;
	return m;
}

/* The reply from the figures st, the kernel's counters now and the uptime now. */
static api_status status_msg(struct reply *r, const struct api_status_snap *st,
			     const struct ebpfmon_counters *counters, uint64_t started_ns)
{
	Ebpfmon__V1__GetMonitorStatusResponse *m = arena_alloc(&r->ar, sizeof(*m));
	Ebpfmon__V1__Resources *res = arena_alloc(&r->ar, sizeof(*res));
	Ebpfmon__V1__Interface *ifs;
	Ebpfmon__V1__ProgramStats *progs;
	uint64_t now = api_snap_now();

	if (!m || !res)
		return ST(INTERNAL);
	ebpfmon__v1__get_monitor_status_response__init(m);
	ebpfmon__v1__resources__init(res);
	m->version = EBPFMON_VERSION;
	m->uptime_seconds = (now - started_ns) / 1000000000ull;
	if (st->n_ifaces) {
		ifs = arena_alloc(&r->ar, st->n_ifaces * sizeof(*ifs));
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): protobuf-c's array of pointers */
		m->interfaces = arena_alloc(&r->ar, st->n_ifaces * sizeof(*m->interfaces));
		if (!ifs || !m->interfaces)
			return ST(INTERNAL);
		for (size_t i = 0; i < st->n_ifaces; i++) {
			ebpfmon__v1__interface__init(&ifs[i]);
			ifs[i].name = (char *)st->ifaces[i].name;
			ifs[i].ifindex = st->ifaces[i].ifindex;
			ifs[i].xdp_mode = (char *)st->ifaces[i].xdp_mode;
			m->interfaces[i] = &ifs[i];
		}
		m->n_interfaces = st->n_ifaces;
	}
	m->loader_running = st->loader_running;
	m->analyzer_running = true;
	m->counters = counters_msg(r, counters);
	m->active_bans = st->active_bans;
	m->tracked_addresses = st->tracked;
	m->database_ok = st->db_ok;
	if (!st->db_open) {
		m->database_failing_since_unix = time(NULL) - (int64_t)m->uptime_seconds;
		m->database_error = "the database could not be opened (see the analyzer's log)";
	} else if (!st->db_ok) {
		m->database_failing_since_unix = st->db_failing_since;
		m->database_error = (char *)st->db_error;
	}
	m->dry_run = st->dry_run;
	if (st->have & SYSMON_HAVE_CPU)
		res->cpu_percent = st->cpu_pct;
	if (st->have & SYSMON_HAVE_MEM)
		res->memory_percent = st->mem_pct;
	if (st->have & SYSMON_HAVE_DISK)
		res->disk_io_bytes_per_second = st->disk_bps;
	m->resources = res;
	if (st->n_progs) {
		progs = arena_alloc(&r->ar, st->n_progs * sizeof(*progs));
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): protobuf-c's array of pointers */
		m->programs = arena_alloc(&r->ar, st->n_progs * sizeof(*m->programs));
		if (!progs || !m->programs)
			return ST(INTERNAL);
		for (size_t i = 0; i < st->n_progs; i++) {
			ebpfmon__v1__program_stats__init(&progs[i]);
			progs[i].name = (char *)st->progs[i].name;
			progs[i].id = st->progs[i].id;
			progs[i].run_count = st->progs[i].run_count;
			progs[i].run_time_ns = st->progs[i].run_time_ns;
			m->programs[i] = &progs[i];
		}
		m->n_programs = st->n_progs;
	}
	m->open_anomalies = st->open_anomalies;
	r->resp.result_case = EBPFMON__V1__RESPONSE__RESULT_GET_MONITOR_STATUS;
	r->resp.get_monitor_status = m;
	return r->ar.failed ? ST(INTERNAL) : ST(OK);
}

/*
 * From the published figures when they are fresh; else, on nng's thread, the loop's turn,
 * and on the loop, a wait for the next cycle. Without snapshots (no loop): everything now.
 */
static api_status get_monitor_status(struct api_env *env, struct reply *r)
{
	struct ebpfmon_counters c = {0};
	struct api_status_snap *st, *now;
	api_status ret;

	if (!env->snap) {
		now = malloc(sizeof(*now));
		if (!now)
			return ST(INTERNAL);
		api_snap_collect_status(env->policy, env->sysmon, now);
		maps_counters_sum(maps_of(env), &c);
		ret = status_msg(r, now, &c, env->started_ns);
		r->keep = now; /* the message points into it */
		return ret;
	}
	st = api_snap_status(env->snap);
	if (!st || api_snap_now() >= st->fresh_until_ns) {
		api_snap_put_status(st);
		if (!r->fast)
			api_snap_want(env->snap, 0);
		return ST_LATER;
	}
	api_snap_demand(env->snap, 0);
	api_snap_counters(env->snap, &c); /* unreadable: zeros */
	ret = status_msg(r, st, &c, api_snap_started_ns(env->snap));
	r->status_ref = st; /* the message points into it: given back with the reply */
	return ret;
}

/* --- GetMaliciousIPs --- */

struct ban_walk {
	struct api_env *env;
	struct reply *r;
	const struct addr_cidr *within; /* NULL: any */
	int reason;			/* -1: any */
	uint64_t offset, total;
	uint32_t limit;
	struct vec out;
};

static bool net_within(const struct addr_cidr *inner, const struct addr_cidr *outer)
{
	return inner->prefixlen >= outer->prefixlen && cidr_contains(outer, &inner->addr);
}

static int ban_walk_one(const struct store_ban *b, void *ctx)
{
	struct ban_walk *w = ctx;

	if (w->within && !net_within(&b->net, w->within))
		return 0;
	if (w->reason >= 0 && (int)b->reason != w->reason)
		return 0;
	if (w->total++ < w->offset || w->out.n >= w->limit)
		return 0;
	return vec_push(&w->r->ar, &w->out, ban_msg(w->env, w->r, b));
}

static api_status get_malicious_ips(struct api_env *env,
				    const Ebpfmon__V1__GetMaliciousIPsRequest *rq, struct reply *r)
{
	Ebpfmon__V1__GetMaliciousIPsResponse *m = arena_alloc(&r->ar, sizeof(*m));
	struct ban_walk w = {.env = env, .r = r, .reason = -1};
	struct store_query q = {0};
	enum ebpfmon_ban_reason reason;
	bool paged;
	struct addr_cidr net;
	char err[256], qb[72];
	int64_t n;
	api_status st;

	if (!m)
		return ST(INTERNAL);
	if (rq->network[0]) {
		if (api_parse_net(rq->network, &net, err, sizeof(err)))
			return fail(r, ST(INVALID_ARGUMENT), "network: %s", err);
		w.within = &net;
	}
	if (rq->reason[0]) {
		if (api_parse_reason(rq->reason, &reason))
			return fail(r, ST(INVALID_ARGUMENT),
				    "reason %s is unknown (expected "
				    "conn_limit, url_rule, manual or escalated)",
				    quote(rq->reason, qb));
		w.reason = (int)reason;
	}
	if (check_since(r, rq->since_unix) ||
	    check_limit(r, "limit", rq->limit, API_LIMIT_DEFAULT, &w.limit))
		return r->resp.status;
	w.offset = rq->offset;
	if (!store_of(env))
		return no_store(env, r);
	q.since = rq->since_unix;
	q.active_only = !rq->history;
	/* without a filter of its own the database pages and counts: only the page is read */
	paged = !w.within && w.reason < 0 && rq->offset <= UINT32_MAX;
	if (paged) {
		q.limit = w.limit;
		q.offset = (uint32_t)rq->offset;
		w.offset = 0;
	}
	n = store_ban_list(store_of(env), &q, ban_walk_one, &w);
	if (n >= 0 && paged) {
		q.limit = 0;
		q.offset = 0;
		n = store_ban_count(store_of(env), &q);
		w.total = n > 0 ? (uint64_t)n : 0;
	}
	if ((st = listed(r, "the bans", n)) != ST(OK))
		return st;
	ebpfmon__v1__get_malicious_ips_response__init(m);
	m->n_bans = w.out.n;
	m->bans = (Ebpfmon__V1__Ban **)w.out.v;
	m->total = w.total;
	r->resp.result_case = EBPFMON__V1__RESPONSE__RESULT_GET_MALICIOUS_IPS;
	r->resp.get_malicious_ips = m;
	return ST(OK);
}

/* --- GetNetworkStats --- */

/* One address of a top list, as the snapshot holds it; unix = mono + off (seconds). */
static Ebpfmon__V1__AddressStats *top_addr_msg(struct reply *r, const struct api_top_entry *e,
					       bool banned, int64_t off)
{
	Ebpfmon__V1__AddressStats *m = arena_alloc(&r->ar, sizeof(*m));
	char a[ADDR_STRLEN];

	if (!m)
		return NULL;
	addr_counters(m, &r->ar, addr_format(&e->addr, a, sizeof(a)), e->rx_packets, e->rx_bytes,
		      e->tx_packets, e->tx_bytes, e->syns);
	m->connections = e->connections;
	m->first_seen_unix = e->first_ns ? (int64_t)(e->first_ns / 1000000000ull) + off : 0;
	m->last_seen_unix = e->last_ns ? (int64_t)(e->last_ns / 1000000000ull) + off : 0;
	m->banned = banned;
	return m;
}

/* The first k of order o from t. */
static api_status top_msg(struct reply *r, const struct api_top_snap *t, uint32_t k, int o,
			  Ebpfmon__V1__GetNetworkStatsResponse *m)
{
	size_t n = t->n_by[o] < k ? t->n_by[o] : k;
	Ebpfmon__V1__AddressStats **out;
	struct timespec mono;
	int64_t off;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	off = (int64_t)time(NULL) - (int64_t)mono.tv_sec;
	m->tracked_addresses = t->tracked;
	m->as_of_unix_ms = t->as_of_unix_ms;
	if (!n)
		return ST(OK);
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): protobuf-c's array of pointers */
	out = arena_alloc(&r->ar, n * sizeof(*out));
	if (!out)
		return ST(INTERNAL);
	for (size_t i = 0; i < n; i++) {
		uint32_t j = t->by[o][i];

		out[i] = top_addr_msg(r, &t->e[j],
				      atomic_load_explicit(&t->banned[j], memory_order_relaxed),
				      off);
		if (!out[i])
			return ST(INTERNAL);
	}
	m->top = out;
	m->n_top = n;
	return ST(OK);
}

/*
 * From the published top list when it is fresh and long enough; else, on nng's thread, the
 * loop's turn, and on the loop, a wait for the next cycle. Without snapshots: a walk now.
 */
static api_status stats_live(struct api_env *env, const Ebpfmon__V1__GetNetworkStatsRequest *rq,
			     Ebpfmon__V1__GetNetworkStatsResponse *m, struct reply *r)
{
	int o = rq->order == EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES
			? API_TOP_BYTES
			: API_TOP_PACKETS;
	struct api_top_snap *t;
	api_status ret;
	uint64_t gen;
	uint32_t k;
	int err;

	if (rq->top > API_LIMIT_MAX)
		return fail(r, ST(INVALID_ARGUMENT), "top %u is over the maximum %u", rq->top,
			    API_LIMIT_MAX);
	k = rq->top ? rq->top : API_TOP_DEFAULT;
	if (!env->snap) {
		t = api_snap_collect_top(maps_of(env), k, &err);
		if (!t)
			return err == -ENOMEM
				       ? ST(INTERNAL)
				       : fail(r, ST(UNAVAILABLE), "cannot read map ip_stats: %s",
					      strerror(-err));
		ret = top_msg(r, t, k, o, m);
		api_snap_put_top(t);
		return ret;
	}
	t = api_snap_top(env->snap);
	/* a list of k needs k kept, unless fewer are tracked than were kept */
	if (!t || api_snap_now() >= t->fresh_until_ns || (t->k < k && t->n_by[o] >= t->k)) {
		api_snap_put_top(t);
		if (!r->fast)
			api_snap_want(env->snap, k);
		return ST_LATER;
	}
	api_snap_demand(env->snap, k);
	/* the same list as the previous request's: its bytes (the flags are read after gen) */
	gen = atomic_load_explicit(&t->gen, memory_order_acquire);
	if (!api_snap_top_cached(t, k, o, gen, &r->packed, &r->packed_len)) {
		api_snap_put_top(t);
		return ST(OK);
	}
	ret = top_msg(r, t, k, o, m); /* copies what it needs */
	r->top_ref = t;		      /* its packed form is kept after packing */
	r->top_k = k;
	r->top_o = o;
	r->top_gen = gen;
	return ret;
}

struct addr_bans {
	struct api_env *env;
	struct reply *r;
	struct ebpfmon_addr addr;
	uint32_t limit;
	struct vec out;
};

static int addr_ban_one(const struct store_ban *b, void *ctx)
{
	struct addr_bans *w = ctx;

	if (!cidr_contains(&b->net, &w->addr))
		return 0;
	if (w->out.n >= w->limit)
		return 1;
	return vec_push(&w->r->ar, &w->out, ban_msg(w->env, w->r, b));
}

static api_status stats_address(struct api_env *env, const Ebpfmon__V1__GetNetworkStatsRequest *rq,
				Ebpfmon__V1__GetNetworkStatsResponse *m, struct reply *r)
{
	struct addr_bans w = {.env = env, .r = r};
	struct addr_sum s = {0};
	struct ebpfmon_ip_stats *v;
	char qb[72];
	int n = EBPFMON_IP_STATS_NVALS;
	int64_t got;

	if (strchr(rq->address, '/') || addr_parse(rq->address, &s.addr))
		return fail(r, ST(INVALID_ARGUMENT), "address %s is not one IPv4 or IPv6 address",
			    quote(rq->address, qb));
	if (check_limit(r, "limit", rq->limit, API_LIMIT_DEFAULT, &w.limit))
		return r->resp.status;
	v = n > 0 ? calloc((size_t)n, sizeof(*v)) : NULL;
	if (!v)
		return ST(INTERNAL);
	if (!bpf_map_lookup_elem(maps_of(env)->ip_stats, &s.addr, v))
		sum_cpus(v, n, &s);
	free(v);
	m->address = addr_msg(env, r, &s);
	w.addr = s.addr;
	if (store_of(env)) {
		struct store_query q = {0};

		got = store_ban_list(store_of(env), &q, addr_ban_one, &w);
		if (got < 0 && got != -ENOMEM)
			return store_failed(r, "the address's bans", got);
	}
	m->n_bans = w.out.n;
	m->bans = (Ebpfmon__V1__Ban **)w.out.v;
	return r->ar.failed ? ST(INTERNAL) : ST(OK);
}

struct snap_walk {
	struct api_env *env;
	struct reply *r;
	struct vec out;
};

static int snap_one(const struct store_net_stats *st, const struct store_top *top, size_t ntop,
		    void *ctx)
{
	struct snap_walk *w = ctx;
	Ebpfmon__V1__Snapshot *m = arena_alloc(&w->r->ar, sizeof(*m));
	struct vec tops = {0};
	char a[ADDR_STRLEN];

	if (!m)
		return -ENOMEM;
	ebpfmon__v1__snapshot__init(m);
	m->ts_unix = st->ts;
	m->rx_packets = st->rx_packets;
	m->rx_bytes = st->rx_bytes;
	m->tx_packets = st->tx_packets;
	m->tx_bytes = st->tx_bytes;
	m->tracked_addresses = st->tracked;
	m->active_bans = st->bans_active;
	m->drops = st->drops;
	for (size_t i = 0; i < ntop; i++) {
		Ebpfmon__V1__AddressStats *t = arena_alloc(&w->r->ar, sizeof(*t));

		if (!t)
			return -ENOMEM;
		ebpfmon__v1__address_stats__init(t);
		t->address = arena_str(&w->r->ar, addr_format(&top[i].addr, a, sizeof(a)));
		t->packets = top[i].packets;
		t->bytes = top[i].bytes;
		t->syns = top[i].syns;
		t->connections = top[i].connections;
		if (vec_push(&w->r->ar, &tops, t))
			return -ENOMEM;
	}
	m->n_top = tops.n;
	m->top = (Ebpfmon__V1__AddressStats **)tops.v;
	return vec_push(&w->r->ar, &w->out, m);
}

static api_status stats_history(struct api_env *env, const Ebpfmon__V1__GetNetworkStatsRequest *rq,
				Ebpfmon__V1__GetNetworkStatsResponse *m, struct reply *r)
{
	struct snap_walk w = {.env = env, .r = r};
	struct store_query q = {0};
	int64_t n;
	api_status st;

	if (check_since(r, rq->since_unix) ||
	    check_limit(r, "limit", rq->limit, API_LIMIT_DEFAULT, &q.limit))
		return r->resp.status;
	if (!store_of(env))
		return no_store(env, r);
	q.since = rq->since_unix;
	n = store_stats_list(store_of(env), &q, snap_one, &w);
	if ((st = listed(r, "the snapshots", n)) != ST(OK))
		return st;
	m->n_snapshots = w.out.n;
	m->snapshots = (Ebpfmon__V1__Snapshot **)w.out.v;
	return ST(OK);
}

static api_status get_network_stats(struct api_env *env,
				    const Ebpfmon__V1__GetNetworkStatsRequest *rq, struct reply *r)
{
	Ebpfmon__V1__GetNetworkStatsResponse *m = arena_alloc(&r->ar, sizeof(*m));
	api_status st;

	if (!m)
		return ST(INTERNAL);
	ebpfmon__v1__get_network_stats_response__init(m);
	if (rq->order != EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_PACKETS &&
	    rq->order != EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES)
		return fail(r, ST(INVALID_ARGUMENT), "order %d is unknown (0 packets, 1 bytes)",
			    (int)rq->order);
	if (rq->address[0] && rq->history)
		return fail(r, ST(INVALID_ARGUMENT), "address and history cannot be combined");
	if (r->fast && (rq->address[0] || rq->history))
		return ST_LATER; /* the maps' bans and the store: the loop's */
	if (rq->address[0])
		st = stats_address(env, rq, m, r);
	else if (rq->history)
		st = stats_history(env, rq, m, r);
	else
		st = stats_live(env, rq, m, r);
	if (st != ST(OK))
		return st;
	r->resp.result_case = EBPFMON__V1__RESPONSE__RESULT_GET_NETWORK_STATS;
	r->resp.get_network_stats = m;
	return ST(OK);
}

/* --- GetSystemAnomalies --- */

struct anomaly_walk {
	struct reply *r;
	int64_t since;
	uint64_t offset, total;
	uint32_t limit;
	struct vec out;
};

static int anomaly_one(const struct store_anomaly *a, void *ctx)
{
	struct anomaly_walk *w = ctx;
	Ebpfmon__V1__Anomaly *m;
	const char *kind = store_anomaly_kind_name(a->kind);
	double unit = a->kind == STORE_ANOMALY_DISK_IO ? 1e6 : 1; /* MB/s -> bytes/s */

	if (a->started_at < w->since)
		return 0;
	if (w->total++ < w->offset || w->out.n >= w->limit)
		return 0;
	m = arena_alloc(&w->r->ar, sizeof(*m));
	if (!m)
		return -ENOMEM;
	ebpfmon__v1__anomaly__init(m);
	m->id = a->id > 0 ? (uint64_t)a->id : 0;
	m->kind = arena_str(&w->r->ar, kind ? kind : "");
	m->started_unix = a->started_at;
	m->ended_unix = a->ended_at;
	m->peak = a->peak * unit;
	m->threshold = a->threshold * unit;
	m->top_pid = a->top_pid;
	m->top_comm = arena_str(&w->r->ar, a->top_comm);
	return vec_push(&w->r->ar, &w->out, m);
}

static api_status get_system_anomalies(struct api_env *env,
				       const Ebpfmon__V1__GetSystemAnomaliesRequest *rq,
				       struct reply *r)
{
	Ebpfmon__V1__GetSystemAnomaliesResponse *m = arena_alloc(&r->ar, sizeof(*m));
	struct anomaly_walk w = {.r = r};
	struct store_query q = {0};
	char qb[72];
	int64_t n;
	api_status st;
	bool paged;

	if (!m)
		return ST(INTERNAL);
	if (rq->kind[0]) {
		if (!strcmp(rq->kind, "cpu"))
			q.kind = STORE_ANOMALY_CPU;
		else if (!strcmp(rq->kind, "memory"))
			q.kind = STORE_ANOMALY_MEMORY;
		else if (!strcmp(rq->kind, "disk_io"))
			q.kind = STORE_ANOMALY_DISK_IO;
		else
			return fail(r, ST(INVALID_ARGUMENT),
				    "kind %s is unknown (expected cpu, "
				    "memory or disk_io)",
				    quote(rq->kind, qb));
	}
	if (check_since(r, rq->since_unix) ||
	    check_limit(r, "limit", rq->limit, API_LIMIT_DEFAULT, &w.limit))
		return r->resp.status;
	if (!store_of(env))
		return no_store(env, r);
	w.since = rq->since_unix;
	w.offset = rq->offset;
	q.active_only = rq->open_only;
	q.since = rq->since_unix; /* overlap: a superset of those started since */
	/* without "started since" (filtered here) the database pages and counts */
	paged = !rq->since_unix && rq->offset <= UINT32_MAX;
	if (paged) {
		q.limit = w.limit;
		q.offset = (uint32_t)rq->offset;
		w.offset = 0;
	}
	n = store_anomaly_list(store_of(env), &q, anomaly_one, &w);
	if (n >= 0 && paged) {
		q.limit = 0;
		q.offset = 0;
		n = store_anomaly_count(store_of(env), &q);
		w.total = n > 0 ? (uint64_t)n : 0;
	}
	if ((st = listed(r, "the anomalies", n)) != ST(OK))
		return st;
	ebpfmon__v1__get_system_anomalies_response__init(m);
	m->n_anomalies = w.out.n;
	m->anomalies = (Ebpfmon__V1__Anomaly **)w.out.v;
	m->total = w.total;
	r->resp.result_case = EBPFMON__V1__RESPONSE__RESULT_GET_SYSTEM_ANOMALIES;
	r->resp.get_system_anomalies = m;
	return ST(OK);
}

/* --- BanIP / UnbanIP --- */

/* Whether the map entry of exactly net is in force (counted in active_bans). */
static bool in_force(struct api_env *env, const struct addr_cidr *net)
{
	struct ebpfmon_ban b;

	return !map_ban(env, net, &b) && maps_ban_in_force(&b, maps_boot_ns());
}

/*
 * Whether a change, authorized and valid, waits: while a job of the analyzer's worker holds
 * the database (policy.rows_wait) the loop would wait for its write lock, so the call is
 * parked (ST_LATER) and the job asked to end soon. Checked after authorize() and the
 * arguments, so that a call that is refused never delays the worker.
 */
static bool change_waits(struct api_env *env)
{
	if (!env->policy->rows_wait)
		return false;
	if (env->db_wanted)
		env->db_wanted(env->db_wanted_arg);
	return true;
}

static api_status ban_ip(struct api_env *env, const struct api_peer *peer,
			 const Ebpfmon__V1__BanIPRequest *rq, struct reply *r)
{
	Ebpfmon__V1__BanIPResponse *m = arena_alloc(&r->ar, sizeof(*m));
	struct addr_cidr net, allowed;
	struct store_ban row;
	char err[256], who[API_WHO_MAX], a[ADDR_STRLEN], b[ADDR_STRLEN];
	uint64_t dur;
	bool was;
	int ret;

	if (!m)
		return ST(INTERNAL);
	if (!authorize(env, peer, r, who, sizeof(who)))
		return r->resp.status;
	if (api_parse_net(rq->address, &net, err, sizeof(err)))
		return fail(r, ST(INVALID_ARGUMENT), "address: %s", err);
	if (rq->permanent && rq->duration_seconds)
		return fail(r, ST(INVALID_ARGUMENT),
			    "permanent and duration_seconds %llu are "
			    "both set: choose one",
			    (unsigned long long)rq->duration_seconds);
	if (rq->duration_seconds > API_DURATION_MAX)
		return fail(r, ST(INVALID_ARGUMENT),
			    "duration_seconds %llu is over the maximum "
			    "%llu (ten years); use permanent",
			    (unsigned long long)rq->duration_seconds, API_DURATION_MAX);
	if (strlen(rq->reason) > API_REASON_MAX)
		return fail(r, ST(INVALID_ARGUMENT), "reason is %zu bytes long, at most %d",
			    strlen(rq->reason), API_REASON_MAX);
	if (!text_ok(rq->reason))
		return fail(r, ST(INVALID_ARGUMENT), "reason holds a control character");
	if (rq->permanent)
		dur = 0;
	else if (rq->duration_seconds)
		dur = rq->duration_seconds;
	else
		dur = policy_duration_s(env->policy->cfg, 0); /* 0 when bans are permanent */
	cidr_format(&net, a, sizeof(a));
	if (never_source(&net))
		return fail(r, ST(INVALID_ARGUMENT),
			    "%s is %s: no packet comes from it, a ban "
			    "would never drop anything",
			    a, never_source(&net));
	if (change_waits(env))
		return ST_LATER;
	was = in_force(env, &net);
	ret = policy_ban_manual(env->policy, &net, dur, rq->reason, who, &row, &allowed);
	if (ret == -EPERM && net.prefixlen == 128)
		return fail(r, ST(ALLOWLISTED), "%s is allowlisted (%s): it is never banned", a,
			    cidr_format(&allowed, b, sizeof(b)));
	if (ret == -EPERM)
		return fail(r, ST(ALLOWLISTED),
			    "%s overlaps the allowlist entry %s: a network "
			    "ban may not cover an allowlisted address",
			    a, cidr_format(&allowed, b, sizeof(b)));
	if (ret == -ENOSPC)
		return fail(r, ST(UNAVAILABLE), "cannot ban %s: map %s is full", a,
			    net.prefixlen == 128 ? "bans (max_bans)" : "ban_nets");
	if (ret)
		return fail(r, ST(UNAVAILABLE), "cannot ban %s: the kernel map refused: %s", a,
			    strerror(-ret));
	if (env->snap) /* what the status and the top list show, at once */
		api_snap_bans_changed(env->snap, &net, (int)in_force(env, &net) - (int)was);
	ebpfmon__v1__ban_ipresponse__init(m);
	m->ban = ban_msg(env, r, &row);
	if (!row.id)
		snprintf(r->msg, sizeof(r->msg),
			 "%s %s; the database cannot take its row now: it "
			 "is written when it can",
			 row.dry_run ? "would ban (dry run)" : "banned", a);
	else if (row.dry_run)
		snprintf(r->msg, sizeof(r->msg),
			 "dry run: %s is recorded as a would-ban, not "
			 "enforced",
			 a);
	r->resp.result_case = EBPFMON__V1__RESPONSE__RESULT_BAN_IP;
	r->resp.ban_ip = m;
	return r->ar.failed ? ST(INTERNAL) : ST(OK);
}

struct holder {
	struct ebpfmon_addr addr;
	uint64_t now;
	struct addr_cidr net;
	bool found;
};

static int holder_one(const void *key, const void *value, void *ctx)
{
	const struct ebpfmon_lpm_key *k = key;
	struct holder *h = ctx;
	struct addr_cidr net = {.prefixlen = k->prefixlen};

	memcpy(net.addr.a, k->a, sizeof(net.addr.a));
	if (!maps_ban_in_force(value, h->now) || !cidr_contains(&net, &h->addr))
		return 0;
	h->net = net;
	h->found = true;
	return 1;
}

static api_status unban_ip(struct api_env *env, const struct api_peer *peer,
			   const Ebpfmon__V1__UnbanIPRequest *rq, struct reply *r)
{
	Ebpfmon__V1__UnbanIPResponse *m = arena_alloc(&r->ar, sizeof(*m));
	struct addr_cidr net;
	struct holder h = {.now = maps_boot_ns()};
	char err[256], who[API_WHO_MAX], why[API_WHO_MAX + 16], a[ADDR_STRLEN], b[ADDR_STRLEN];
	bool was;
	int ret;

	if (!m)
		return ST(INTERNAL);
	if (!authorize(env, peer, r, who, sizeof(who)))
		return r->resp.status;
	if (api_parse_net(rq->address, &net, err, sizeof(err)))
		return fail(r, ST(INVALID_ARGUMENT), "address: %s", err);
	cidr_format(&net, a, sizeof(a));
	snprintf(why, sizeof(why), "unbanned by %s", who);
	if (change_waits(env))
		return ST_LATER;
	was = in_force(env, &net);
	ret = policy_unban(env->policy, &net, why);
	if (ret < 0)
		return fail(r, ST(UNAVAILABLE), "cannot unban %s: %s", a, strerror(-ret));
	if (!ret) {
		h.addr = net.addr;
		maps_walk(maps_of(env)->ban_nets, sizeof(struct ebpfmon_lpm_key),
			  sizeof(struct ebpfmon_ban), holder_one, &h);
		if (h.found && net_within(&net, &h.net))
			return fail(r, ST(NOT_BANNED),
				    "%s is not banned itself, but lies in the "
				    "banned network %s: unban that",
				    a, cidr_format(&h.net, b, sizeof(b)));
		return fail(r, ST(NOT_BANNED), "%s is not banned", a);
	}
	if (env->snap)
		api_snap_bans_changed(env->snap, &net, (int)in_force(env, &net) - (int)was);
	ebpfmon__v1__unban_ipresponse__init(m);
	m->ended = (uint32_t)ret;
	if (env->policy->store && !store_healthy(env->policy->store))
		snprintf(r->msg, sizeof(r->msg),
			 "unbanned %s; the database cannot be written "
			 "now (%s): its row ends when it can",
			 a, store_last_error(env->policy->store));
	r->resp.result_case = EBPFMON__V1__RESPONSE__RESULT_UNBAN_IP;
	r->resp.unban_ip = m;
	return ST(OK);
}

/* --- the envelope --- */

static api_status dispatch(struct api_env *env, const struct api_peer *peer, const void *body,
			   size_t len, struct reply *r)
{
	Ebpfmon__V1__Request *rq;
	char err[160];
	api_status st;

	if (len > API_BODY_MAX)
		return fail(r, ST(TOO_LARGE),
			    "the request is %zu bytes, more than the limit of "
			    "%d",
			    len, API_BODY_MAX);
	if (!len)
		return fail(r, ST(MALFORMED), "empty body: not an ebpfmon.v1.Request");
	rq = ebpfmon__v1__request__unpack(NULL, len, body);
	if (!rq)
		return fail(r, ST(MALFORMED), "the body (%zu bytes) is not an ebpfmon.v1.Request",
			    len);
	if (rq->version != API_PROTOCOL_VERSION) {
		st = fail(r, ST(UNSUPPORTED_VERSION),
			  "protocol version %u is not supported: this "
			  "server speaks version %d",
			  rq->version, API_PROTOCOL_VERSION);
		goto out;
	}
	switch (api_wire_check_strings(body, len, &ebpfmon__v1__request__descriptor, err,
				       sizeof(err))) {
	case 0:
		break;
	case -EINVAL:
		st = fail(r, ST(INVALID_ARGUMENT), "%s", err);
		goto out;
	default:
		st = fail(r, ST(MALFORMED), "the body is not an ebpfmon.v1.Request: %s", err);
		goto out;
	}
	if (r->fast && rq->call_case != EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS &&
	    rq->call_case != EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS &&
	    rq->call_case != EBPFMON__V1__REQUEST__CALL__NOT_SET) {
		st = ST_LATER; /* the store or the policy: the loop's */
		goto out;
	}
	switch (rq->call_case) {
	case EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS:
		st = get_monitor_status(env, r);
		break;
	case EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS:
		st = get_malicious_ips(env, rq->get_malicious_ips, r);
		break;
	case EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS:
		st = get_network_stats(env, rq->get_network_stats, r);
		break;
	case EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES:
		st = get_system_anomalies(env, rq->get_system_anomalies, r);
		break;
	case EBPFMON__V1__REQUEST__CALL_BAN_IP:
		st = ban_ip(env, peer, rq->ban_ip, r);
		break;
	case EBPFMON__V1__REQUEST__CALL_UNBAN_IP:
		st = unban_ip(env, peer, rq->unban_ip, r);
		break;
	default:
		if (rq->base.n_unknown_fields)
			st = fail(r, ST(MALFORMED),
				  "the request names a call this server does not "
				  "know (field %u)",
				  rq->base.unknown_fields[0].tag);
		else
			st = fail(r, ST(MALFORMED), "the request names no call");
		break;
	}
out:
	ebpfmon__v1__request__free_unpacked(rq, NULL);
	return st;
}

static int handle(struct api_env *env, bool fast, const struct api_peer *peer, const void *body,
		  size_t len, void **out, size_t *out_len, int *status)
{
	struct reply r = {.resp = EBPFMON__V1__RESPONSE__INIT, .fast = fast};
	api_status st = dispatch(env, peer, body, len, &r);
	size_t n;
	void *buf = NULL;
	int ret = 0;

	if (st == ST_LATER) {
		ret = 1;
		goto out;
	}
	if (st == ST(OK) && r.packed) {
		*out = r.packed;
		*out_len = r.packed_len;
		r.packed = NULL;
		if (status)
			*status = (int)st;
		goto out;
	}
	if (r.ar.failed || (st == ST(INTERNAL) && !r.msg[0])) {
		/* what was built may be incomplete: answer with the status alone */
		r.resp.result_case = EBPFMON__V1__RESPONSE__RESULT__NOT_SET;
		st = fail(&r, ST(INTERNAL), "the server ran out of memory");
	}
	if (st != ST(OK)) {
		r.resp.result_case = EBPFMON__V1__RESPONSE__RESULT__NOT_SET;
		r.resp.status = st;
	}
	r.resp.version = API_PROTOCOL_VERSION;
	r.resp.message = r.msg;
	n = ebpfmon__v1__response__get_packed_size(&r.resp);
	buf = malloc(n ? n : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ebpfmon__v1__response__pack(&r.resp, buf);
	if (r.top_ref && st == ST(OK) && !r.msg[0])
		api_snap_top_cache(r.top_ref, r.top_k, r.top_o, r.top_gen, buf, n);
	*out = buf;
	*out_len = n;
	if (status)
		*status = (int)st;
out:
	arena_free(&r.ar);
	api_snap_put_status(r.status_ref);
	api_snap_put_top(r.top_ref);
	free(r.keep);
	free(r.packed);
	return ret;
}

bool api_is_store_read(const void *body, size_t len)
{
	Ebpfmon__V1__Request *rq;
	bool ret = false;

	if (!len || len > API_BODY_MAX)
		return false;
	rq = ebpfmon__v1__request__unpack(NULL, len, body);
	if (!rq)
		return false;
	switch (rq->call_case) {
	case EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS:
	case EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES:
		ret = true;
		break;
	case EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS:
		ret = rq->get_network_stats &&
		      (rq->get_network_stats->address[0] || rq->get_network_stats->history);
		break;
	default:
		break;
	}
	ebpfmon__v1__request__free_unpacked(rq, NULL);
	return ret;
}

int api_handle(struct api_env *env, const struct api_peer *peer, const void *body, size_t len,
	       void **out, size_t *out_len, int *status)
{
	return handle(env, false, peer, body, len, out, out_len, status);
}

int api_handle_fast(struct api_snap *snap, const struct api_peer *peer, const void *body,
		    size_t len, void **out, size_t *out_len, int *status)
{
	struct api_env env = {.snap = snap};

	if (!snap)
		return 1; /* without snapshots, everything needs the policy: api_handle() */
	return handle(&env, true, peer, body, len, out, out_len, status);
}
