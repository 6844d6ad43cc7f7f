// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Ban policy arithmetic and URL matching; the survey of the ban maps with maps of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <errno.h>
#include <time.h>

#include "addr.h"
#include "policy.h"
#include "store.h"

static void set_patterns(struct config *cfg, const char *const *pats, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		snprintf(cfg->url_patterns[i], sizeof(cfg->url_patterns[i]), "%s", pats[i]);
	cfg->n_url_patterns = n;
}

static void duration_escalates_and_caps(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg); /* 1 h, factor 2, cap 7 d */
	assert_int_equal(policy_duration_s(&cfg, 0), 3600);
	assert_int_equal(policy_duration_s(&cfg, 1), 7200);
	assert_int_equal(policy_duration_s(&cfg, 3), 28800);
	assert_int_equal(policy_duration_s(&cfg, 7), 460800); /* 128 h */
	assert_int_equal(policy_duration_s(&cfg, 8), 604800); /* 256 h, capped at a week */
	assert_int_equal(policy_duration_s(&cfg, 1000), 604800);
	cfg.ban_escalation_factor = 1;
	assert_int_equal(policy_duration_s(&cfg, 5), 3600);
}

static void duration_permanent_and_seconds(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	cfg.ban_duration_s = 0;
	assert_int_equal(policy_duration_s(&cfg, 0), 0);
	assert_int_equal(policy_duration_s(&cfg, 4), 0);
	cfg.ban_duration_s = 5; /* ban_duration = 5s */
	assert_int_equal(policy_duration_s(&cfg, 0), 5);
	assert_int_equal(policy_duration_s(&cfg, 2), 20);
	cfg.ban_max_duration_s = 30; /* ban_max_duration = 30s */
	assert_int_equal(policy_duration_s(&cfg, 2), 20);
	assert_int_equal(policy_duration_s(&cfg, 3), 30);
}

static void url_prefix_and_glob(void **state)
{
	static const char *const pats[] = {"/wp-admin", "*.php", "/cgi-bin/*.sh"};
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	set_patterns(&cfg, pats, 3);
	assert_string_equal(policy_url_match(&cfg, "/wp-admin/install.php"), "/wp-admin");
	assert_string_equal(policy_url_match(&cfg, "/index.php"), "*.php");
	assert_string_equal(policy_url_match(&cfg, "/a/b/c.php"), "*.php"); /* '*' spans '/' */
	assert_string_equal(policy_url_match(&cfg, "/cgi-bin/x/y.sh"), "/cgi-bin/*.sh");
	assert_null(policy_url_match(&cfg, "/index.html"));
	assert_null(policy_url_match(&cfg, "/WP-ADMIN")); /* case-sensitive */
	assert_null(policy_url_match(&cfg, "/index.PHP"));
	assert_null(policy_url_match(&cfg, "/cgi-bin/x.py"));

	cfg.url_case_insensitive = true; /* prefix and glob alike */
	assert_string_equal(policy_url_match(&cfg, "/WP-ADMIN"), "/wp-admin");
	assert_string_equal(policy_url_match(&cfg, "/index.PHP"), "*.php");
	assert_string_equal(policy_url_match(&cfg, "/CGI-BIN/x/Y.SH"), "/cgi-bin/*.sh");
	assert_null(policy_url_match(&cfg, "/index.html"));
}

static void decide_allowlist_banned_dry_run(void **state)
{
	struct config cfg;
	struct ebpfmon_addr a, lo, inside;

	(void)state;
	config_defaults(&cfg); /* allowlist 127.0.0.0/8, ::1 */
	assert_int_equal(addr_parse("198.51.100.7", &a), 0);
	assert_int_equal(addr_parse("127.0.0.1", &lo), 0);
	assert_int_equal(policy_decide(&cfg, &a, false), POLICY_BAN);
	assert_int_equal(policy_decide(&cfg, &a, true), POLICY_SKIP_BANNED);
	assert_int_equal(policy_decide(&cfg, &lo, false), POLICY_SKIP_ALLOWED);
	assert_int_equal(policy_decide(&cfg, &lo, true), POLICY_SKIP_ALLOWED);

	assert_int_equal(cidr_parse("198.51.100.0/24", &cfg.allowlist[cfg.n_allowlist++]), 0);
	assert_int_equal(addr_parse("198.51.100.200", &inside), 0);
	assert_int_equal(policy_decide(&cfg, &inside, false), POLICY_SKIP_ALLOWED);

	cfg.dry_run = true;
	assert_int_equal(addr_parse("203.0.113.9", &a), 0);
	assert_int_equal(policy_decide(&cfg, &a, false), POLICY_WOULD_BAN);
	assert_int_equal(policy_decide(&cfg, &a, true), POLICY_SKIP_BANNED);
	assert_int_equal(policy_decide(&cfg, &inside, false), POLICY_SKIP_ALLOWED);
}

static void escalation_network(void **state)
{
	struct ebpfmon_addr a;
	struct addr_cidr net;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(addr_parse("198.51.100.77", &a), 0);
	policy_escalation_net(&a, &net);
	assert_string_equal(cidr_format(&net, buf, sizeof(buf)), "198.51.100.0/24");
	assert_int_equal(addr_parse("2001:db8:1:2:3:4:5:6", &a), 0);
	policy_escalation_net(&a, &net);
	assert_string_equal(cidr_format(&net, buf, sizeof(buf)), "2001:db8:1:2::/64");
}

/* ---- one request, one offence ---- */

#define MIN_NS (60ull * 1000000000ull)

static struct policy_seen seen; /* 160 KiB: not on the stack */

static struct policy_req req(const char *ip, uint16_t sport, uint32_t seq)
{
	struct policy_req r = {.sport = sport, .dport = 80, .seq = seq};

	assert_int_equal(addr_parse(ip, &r.addr), 0);
	return r;
}

static void retransmission_is_not_a_new_offence(void **state)
{
	struct policy_req r = req("198.51.100.7", 40000, 1000);
	struct policy_req other_seq = req("198.51.100.7", 40000, 2000);
	struct policy_req other_port = req("198.51.100.7", 40001, 1000);
	struct policy_req other_addr = req("198.51.100.8", 40000, 1000);
	uint64_t t = 5 * MIN_NS;

	(void)state;
	policy_seen_init(&seen, 42);
	assert_false(policy_seen_check(&seen, &r, t));		  /* the offence */
	assert_true(policy_seen_check(&seen, &r, t + 200000000)); /* retransmitted 200 ms on */
	/* after the ban expired (5 s) or an unban, the kernel reports it again: still the same */
	assert_true(policy_seen_check(&seen, &r, t + 10 * MIN_NS));
	/* another request on the connection, another connection, another client: offences */
	assert_false(policy_seen_check(&seen, &other_seq, t + 1));
	assert_false(policy_seen_check(&seen, &other_port, t + 1));
	assert_false(policy_seen_check(&seen, &other_addr, t + 1));
	/* 30 minutes on, the request is forgotten: TCP gave up retransmitting long before */
	assert_false(policy_seen_check(&seen, &r, t + 31 * MIN_NS));
}

/*
 * A new connection that reuses the port and the sequence number (a client that picks its own
 * ISN) is a new offence: the connection is told apart by this host's ISN. A row from before
 * the ISN was kept (0) still matches its retransmissions.
 */
static void a_replayed_sequence_number_on_a_new_connection_is_a_new_offence(void **state)
{
	struct policy_req r = req("198.51.100.7", 40000, 1000), again = r, replay = r, old = r;
	uint64_t t = 5 * MIN_NS;

	(void)state;
	r.isn = again.isn = 0x1234567;
	replay.isn = 0x89abcdef;
	old.isn = 0;
	policy_seen_init(&seen, 42);
	assert_false(policy_seen_check(&seen, &r, t));
	assert_true(policy_seen_check(&seen, &again, t + 1000));     /* a retransmission */
	assert_false(policy_seen_check(&seen, &replay, t + MIN_NS)); /* another connection */
	assert_true(policy_seen_check(&seen, &replay, t + MIN_NS + 1));
	policy_seen_init(&seen, 42);
	assert_false(policy_seen_check(&seen, &old, t)); /* remembered from an old row */
	assert_true(policy_seen_check(&seen, &r, t + 1000));
}

static void seen_table_is_bounded_and_forgets_the_oldest(void **state)
{
	struct policy_req first = req("198.51.100.1", 1, 1);
	unsigned int remembered = 0;

	(void)state;
	policy_seen_init(&seen, 7);
	assert_false(policy_seen_check(&seen, &first, 1000));
	/* 20000 further requests: the table keeps 4096, so the first one gives way */
	for (uint32_t i = 0; i < 20000; i++) {
		struct policy_req r = req("198.51.100.2", (uint16_t)(i % 60000), i);

		assert_false(policy_seen_check(&seen, &r, 2000 + i));
	}
	assert_false(policy_seen_check(&seen, &first, 30000));
	/* most of the newest 4096 are still known (some sets fill faster than others) */
	for (uint32_t i = 20000 - 2048; i < 20000; i++) {
		struct policy_req r = req("198.51.100.2", (uint16_t)(i % 60000), i);

		remembered += policy_seen_check(&seen, &r, 40000);
	}
	assert_true(remembered > 1800);
}

/* ---- reconciliation ---- */

struct rc_log {
	enum policy_rc_action act[16];
	char what[16][ADDR_STRLEN];
	int n;
};

static void rc_collect(enum policy_rc_action action, const struct policy_map_ban *entry,
		       const struct policy_db_ban *row, void *ctx)
{
	struct rc_log *l = ctx;

	assert_true(l->n < 16);
	assert_true(!entry != !row); /* exactly one of them */
	l->act[l->n] = action;
	cidr_format(entry ? &entry->net : &row->net, l->what[l->n], ADDR_STRLEN);
	l->n++;
}

static struct addr_cidr net_of(const char *s)
{
	struct addr_cidr c;

	assert_int_equal(cidr_parse(s, &c), 0);
	return c;
}

#define NOW_UNIX 1700000000
#define NOW_BOOT (1000ull * 1000000000ull)

static void reconcile_running(void **state)
{
	const struct policy_now now = {.boot_ns = NOW_BOOT, .unix_s = NOW_UNIX};
	struct policy_map_ban map[] = {
		{.net = net_of("198.51.100.1"), .expires_ns = NOW_BOOT + 60000000000ull},
		{.net = net_of("198.51.100.9"), .expires_ns = 0}, /* by hand, permanent */
		{.net = net_of("198.51.100.10"), .expires_ns = NOW_BOOT - 1}, /* expired */
		/* about to expire: its row may have been ended already (the clocks drift) */
		{.net = net_of("198.51.100.11"), .expires_ns = NOW_BOOT + 1000000000ull},
		{.net = net_of("203.0.113.0/24"), .expires_ns = NOW_BOOT + 1},
	};
	struct policy_db_ban db[] = {
		{.net = net_of("198.51.100.1"), .id = 1, .expires_at = NOW_UNIX + 60},
		{.net = net_of("198.51.100.1"), .id = 2, .expires_at = NOW_UNIX + 60}, /* dup */
		{.net = net_of("198.51.100.2"), .id = 3, .expires_at = NOW_UNIX + 600},
		{.net = net_of("198.51.100.3"), .id = 4, .expires_at = 0}, /* permanent */
		{.net = net_of("198.51.100.4"), .id = 5, .expires_at = NOW_UNIX + 1},
		{.net = net_of("203.0.113.0/24"), .id = 6, .expires_at = NOW_UNIX + 1},
	};
	struct rc_log l = {0};

	(void)state;
	policy_reconcile_diff(map, 5, db, 6, false, &now, rc_collect, &l);
	assert_int_equal(l.n, 5);
	/* .1 has two rows: the older one is superseded by the newer, the ban stands */
	assert_int_equal(l.act[0], POLICY_RC_END_SUPERSEDED);
	assert_string_equal(l.what[0], "198.51.100.1");
	/* in address order: .2 and .3 were deleted from the map before their deadline */
	assert_int_equal(l.act[1], POLICY_RC_END_REMOVED);
	assert_string_equal(l.what[1], "198.51.100.2");
	assert_int_equal(l.act[2], POLICY_RC_END_REMOVED);
	assert_string_equal(l.what[2], "198.51.100.3");
	/* .4's deadline is now (within the clocks' drift): it expired, nobody removed it */
	assert_int_equal(l.act[3], POLICY_RC_END_EXPIRED);
	assert_string_equal(l.what[3], "198.51.100.4");
	/* .9 was written by hand; .10 is expired and .11 about to: nothing to record */
	assert_int_equal(l.act[4], POLICY_RC_RECORD);
	assert_string_equal(l.what[4], "198.51.100.9");
}

static void reconcile_new_maps_restore(void **state)
{
	const struct policy_now now = {.boot_ns = NOW_BOOT, .unix_s = NOW_UNIX};
	struct policy_db_ban db[] = {
		{.net = net_of("198.51.100.2"), .id = 3, .expires_at = NOW_UNIX + 600},
		{.net = net_of("2001:db8::/64"), .id = 4, .expires_at = 0},
		{.net = net_of("198.51.100.4"), .id = 5, .expires_at = NOW_UNIX - 5},
	};
	struct rc_log l = {0};

	(void)state;
	/* after a reboot or --unload the maps are empty: what is in force is written back */
	policy_reconcile_diff(NULL, 0, db, 3, true, &now, rc_collect, &l);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.act[0], POLICY_RC_RESTORE); /* IPv4-mapped sorts first */
	assert_string_equal(l.what[0], "198.51.100.2");
	assert_int_equal(l.act[1], POLICY_RC_END_EXPIRED);
	assert_string_equal(l.what[1], "198.51.100.4");
	assert_int_equal(l.act[2], POLICY_RC_RESTORE);
	assert_string_equal(l.what[2], "2001:db8::/64");
}

/* ---- a full bans map ---- */

static void evict_soonest_expiring_never_permanent(void **state)
{
	struct policy_map_ban bans[] = {
		{.net = net_of("198.51.100.1"), .expires_ns = 0},
		{.net = net_of("198.51.100.2"), .expires_ns = 900},
		{.net = net_of("198.51.100.3"), .expires_ns = 300},
		{.net = net_of("198.51.100.4"), .expires_ns = 600},
		{.net = net_of("198.51.100.5"), .expires_ns = 0},
	};
	struct policy_map_ban perm[] = {{.net = net_of("198.51.100.1"), .expires_ns = 0}};
	char a[ADDR_STRLEN];

	(void)state;
	assert_int_equal(policy_evict_order(bans, 5), 3);
	assert_string_equal(cidr_format(&bans[0].net, a, sizeof(a)), "198.51.100.3");
	assert_string_equal(cidr_format(&bans[1].net, a, sizeof(a)), "198.51.100.4");
	assert_string_equal(cidr_format(&bans[2].net, a, sizeof(a)), "198.51.100.2");
	assert_int_equal(policy_evict_order(perm, 1), 0); /* all permanent: ban the network */
	assert_int_equal(policy_evict_order(bans, 0), 0);
}

static struct policy pol; /* holds a seen table: not on the stack */

/* ---- the interval's survey of the ban maps, with maps of its own (needs CAP_BPF) ---- */

struct survey_rig {
	char dir[40], path[64];
	struct maps maps;
	struct store *st, *ro;
	struct config cfg;
};

/* bans (max_entries entries), ban_nets, settings: what the survey and evictions use. */
static bool survey_rig_up(struct survey_rig *r, unsigned int max_entries)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
	struct ebpfmon_settings set = {0};
	__u32 zero = 0;

	memset(r, 0, sizeof(*r));
	r->maps.bans = bpf_map_create(BPF_MAP_TYPE_HASH, "t_bans", sizeof(struct ebpfmon_addr),
				      sizeof(struct ebpfmon_ban), max_entries, NULL);
	if (r->maps.bans < 0)
		return false;
	r->maps.ban_nets = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_ban_nets",
					  sizeof(struct ebpfmon_lpm_key),
					  sizeof(struct ebpfmon_ban), 64, &lpm);
	r->maps.settings = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_settings", sizeof(__u32),
					  sizeof(struct ebpfmon_settings), 1, NULL);
	r->maps.conn_count = bpf_map_create(BPF_MAP_TYPE_HASH, "t_conn_count",
					    sizeof(struct ebpfmon_addr),
					    sizeof(struct ebpfmon_conn), 64, NULL);
	assert_true(r->maps.ban_nets >= 0 && r->maps.settings >= 0 && r->maps.conn_count >= 0);
	assert_int_equal(bpf_map_update_elem(r->maps.settings, &zero, &set, BPF_ANY), 0);
	snprintf(r->dir, sizeof(r->dir), "/tmp/ebpfmon-test-survey-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/ebpfmon.db", r->dir);
	assert_int_equal(store_open(r->path, &r->st), 0);
	assert_int_equal(store_open_readonly(r->path, &r->ro), 0);
	config_defaults(&r->cfg);
	r->cfg.max_connections_per_ip = 3;
	policy_init(&pol, &r->cfg, &r->maps, r->st);
	return true;
}

/* Without CAP_BPF: skipped, or failed under EBPFMON_REQUIRE_BPF=1 (CI). */
static void no_bpf(void)
{
	const char *req = getenv("EBPFMON_REQUIRE_BPF");

	if (req && !strcmp(req, "1"))
		fail_msg("cannot create BPF maps (%s) and EBPFMON_REQUIRE_BPF=1", strerror(errno));
	skip();
}

static void survey_rig_down(struct survey_rig *r)
{
	policy_free(&pol);
	store_close(r->ro);
	store_close(r->st);
	close(r->maps.bans);
	close(r->maps.ban_nets);
	close(r->maps.settings);
	close(r->maps.conn_count);
	for (int i = 0; i < 3; i++) {
		snprintf(r->path, sizeof(r->path), "%s/ebpfmon.db%s", r->dir,
			 (const char *[]){"", "-wal", "-shm"}[i]);
		unlink(r->path);
	}
	assert_int_equal(rmdir(r->dir), 0);
}

static void map_ban(struct survey_rig *r, const char *ip, int64_t in_s)
{
	struct ebpfmon_ban b = {.reason = EBPFMON_BAN_CONN_LIMIT};
	struct ebpfmon_addr a;

	assert_int_equal(addr_parse(ip, &a), 0);
	b.expires_ns = (uint64_t)((int64_t)maps_boot_ns() + in_s * 1000000000ll);
	assert_int_equal(bpf_map_update_elem(r->maps.bans, &a, &b, BPF_ANY), 0);
}

static void conns(struct survey_rig *r, const char *ip, uint32_t active)
{
	struct ebpfmon_conn c = {.active = active, .total = active};
	struct ebpfmon_addr a;

	assert_int_equal(addr_parse(ip, &a), 0);
	assert_int_equal(bpf_map_update_elem(r->maps.conn_count, &a, &c, BPF_ANY), 0);
}

/* A connection-limit ban of ip (its address into *x), written by the policy pol. */
static void ban_conn(const char *ip, struct ebpfmon_addr *x)
{
	assert_int_equal(addr_parse(ip, x), 0);
	assert_int_equal(policy_ban(&pol, x, EBPFMON_BAN_CONN_LIMIT, NULL, "test"), 1);
}

static bool in_map(struct survey_rig *r, const char *ip)
{
	struct ebpfmon_ban b;
	struct ebpfmon_addr a;

	assert_int_equal(addr_parse(ip, &a), 0);
	return !bpf_map_lookup_elem(r->maps.bans, &a, &b);
}

static int64_t row_ban(struct survey_rig *r, const char *ip, int64_t in_s)
{
	struct store_ban b = {.reason = EBPFMON_BAN_CONN_LIMIT, .hits = 1};

	b.net = net_of(ip);
	b.banned_at = time(NULL) - 10;
	b.expires_at = time(NULL) + in_s;
	return store_ban_insert(r->st, &b);
}

static void survey_run(struct survey_rig *r, struct policy_survey *sv, bool apply)
{
	memset(sv, 0, sizeof(*sv));
	policy_survey(&r->maps, r->cfg.max_connections_per_ip, r->ro, sv);
	assert_int_equal(sv->err, 0);
	if (apply) {
		while (!policy_survey_apply(&pol, sv, 0))
			;
		policy_survey_free(sv);
	}
}

/*
 * The survey finds a row whose ban left the map (an unban), a ban no row knows (written by
 * hand) and an expired entry; the loop acts a slice at a time, but takes nothing the maps or
 * the database changed since the walk: a ban made again, or recorded, after it stays.
 */
static void survey_actions_are_checked_again(void **state)
{
	struct survey_rig r;
	struct policy_survey sv;
	struct addr_cidr a = net_of("198.51.100.1"), b = net_of("198.51.100.2");
	int64_t id;

	(void)state;
	if (!survey_rig_up(&r, 64))
		no_bpf();

	/* as the walk finds them: 198.51.100.1 has a row only, .2 an entry only, .3 expired;
	 * .6 and .7 over the connection limit of 3, whose crossing events were lost */
	id = row_ban(&r, "198.51.100.1", 3600);
	assert_true(id > 0);
	map_ban(&r, "198.51.100.2", 3600);
	map_ban(&r, "198.51.100.3", -5);
	conns(&r, "198.51.100.6", 5);
	conns(&r, "198.51.100.7", 4);
	conns(&r, "198.51.100.8", 3);
	survey_run(&r, &sv, false);
	assert_int_equal(sv.n_over, 2);
	assert_int_equal(sv.n_expired, 1);
	assert_true(sv.reconciled);
	assert_int_equal(sv.n_items, 2); /* END_REMOVED .1, RECORD .2 */

	/* meanwhile on the loop: .1 banned again, .2 recorded by someone else, .7 down to 2 */
	map_ban(&r, "198.51.100.1", 3600);
	conns(&r, "198.51.100.7", 2);
	assert_true(row_ban(&r, "198.51.100.2", 3600) > 0);
	while (!policy_survey_apply(&pol, &sv, 0)) /* one action a call */
		;
	policy_survey_free(&sv);
	assert_false(in_map(&r, "198.51.100.3")); /* the expired entry is gone */
	assert_true(in_map(&r, "198.51.100.6"));  /* still over the limit: banned */
	assert_false(in_map(&r, "198.51.100.7")); /* under it again: not */
	assert_false(in_map(&r, "198.51.100.8")); /* at the limit: never over it */
	assert_int_equal(store_ban_count_since(r.st, &a, 0, false), 1);
	assert_int_equal(store_ban_count_since(r.st, &b, 0, false), 1); /* not recorded twice */
	{
		struct store_ban row;

		assert_int_equal(store_ban_find_active(r.st, &a, &row), 1); /* not ended */
		assert_int_equal(row.id, id);
	}

	/* with nothing changed since the walk, the same findings are acted on */
	{
		struct addr_cidr c = net_of("198.51.100.4");
		struct store_ban row;

		map_ban(&r, "198.51.100.4", 3600);	/* by hand */
		id = row_ban(&r, "198.51.100.5", 3600); /* its entry gone */
		survey_run(&r, &sv, true);
		assert_int_equal(store_ban_find_active(r.st, &c, &row), 1); /* recorded */
		/* with the policy's reason: an automatic ban whose row was lost */
		assert_int_equal(row.reason, EBPFMON_BAN_CONN_LIMIT);
		assert_int_equal(row.source, STORE_SOURCE_AUTO);
		c = net_of("198.51.100.5");
		assert_int_equal(store_ban_find_active(r.st, &c, &row), 0); /* ended */
	}
	survey_rig_down(&r);
}

/*
 * A full bans map: each new ban evicts the one expiring soonest, from the candidates of the
 * interval's walk, passing over one renewed since; a permanent ban is never evicted.
 */
static void full_map_evicts_from_candidates(void **state)
{
	struct survey_rig r;
	struct policy_survey sv;
	struct ebpfmon_addr x;
	char ip[32];

	(void)state;
	if (!survey_rig_up(&r, 8))
		no_bpf();
	for (int i = 1; i <= 8; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		map_ban(&r, ip, i == 1 ? 0 : 100 * i); /* .1 permanent: expires_ns 0 below */
	}
	{
		struct ebpfmon_ban perm = {.reason = EBPFMON_BAN_MANUAL};

		assert_int_equal(addr_parse("198.51.100.1", &x), 0);
		assert_int_equal(bpf_map_update_elem(r.maps.bans, &x, &perm, BPF_ANY), 0);
	}
	survey_run(&r, &sv, true);
	assert_int_equal(pol.n_evict, 7);
	map_ban(&r, "198.51.100.2", 5000); /* renewed since the walk: now the latest */

	ban_conn("203.0.113.1", &x);
	assert_false(in_map(&r, "198.51.100.3")); /* .2 passed over: .3 the soonest */
	assert_true(in_map(&r, "198.51.100.2") && in_map(&r, "203.0.113.1"));
	ban_conn("203.0.113.2", &x);
	assert_false(in_map(&r, "198.51.100.4"));
	assert_true(in_map(&r, "198.51.100.1")); /* permanent */

	/*
	 * 300 more without a flush of their rows between them (a burst, the database away or
	 * busy): each evicts a timed ban, past the candidates and past any count of rows to
	 * end; never a network instead while a timed ban is there to evict.
	 */
	for (int i = 0; i < 300; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:7::%x", i + 1);
		ban_conn(ip, &x);
		assert_true(in_map(&r, ip));
	}
	{
		struct ebpfmon_lpm_key k;

		assert_int_not_equal(bpf_map_get_next_key(r.maps.ban_nets, NULL, &k), 0);
	}
	assert_true(in_map(&r, "198.51.100.1")); /* still: permanent */
	assert_int_equal(pol.n_evicted, 302);	 /* every evicted ban's row is still to end */
	survey_rig_down(&r);
}

/*
 * A full map of permanent bans: each new offender's network is banned instead, with no walk
 * of the map per ban (a sender of new /64s would make each ban pay it); a timed ban written
 * since the last walk is still found and evicted.
 */
static void full_map_of_permanent_bans(void **state)
{
	struct ebpfmon_ban perm = {.reason = EBPFMON_BAN_MANUAL}, b;
	struct ebpfmon_lpm_key k = {.prefixlen = 128};
	struct survey_rig r;
	struct policy_survey sv;
	struct ebpfmon_addr x;
	char ip[48];

	(void)state;
	if (!survey_rig_up(&r, 512))
		no_bpf();
	for (int i = 0; i < 512; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:5::%x", i + 1);
		assert_int_equal(addr_parse(ip, &x), 0);
		assert_int_equal(bpf_map_update_elem(r.maps.bans, &x, &perm, BPF_ANY), 0);
	}
	survey_run(&r, &sv, true);
	assert_true(pol.evict_walked);
	assert_int_equal(pol.n_evict, 0);

	for (int i = 0; i < 20; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:6:%x::1", i + 1);
		ban_conn(ip, &x);
		assert_false(in_map(&r, ip));
	}
	/* the last one's /64 is banned instead (the longest prefix holding it) */
	memcpy(k.a, x.a, sizeof(k.a));
	assert_int_equal(bpf_map_lookup_elem(r.maps.ban_nets, &k, &b), 0);

	/* a slot frees up; the timed ban written there is the next victim */
	assert_int_equal(addr_parse("2001:db8:5::1", &x), 0);
	assert_int_equal(bpf_map_delete_elem(r.maps.bans, &x), 0);
	ban_conn("2001:db8:7::1", &x);
	assert_true(in_map(&r, "2001:db8:7::1"));
	ban_conn("2001:db8:7::2", &x);
	assert_true(in_map(&r, "2001:db8:7::2"));
	assert_false(in_map(&r, "2001:db8:7::1"));
	assert_int_equal(pol.evict_walks, 0); /* never a walk of the map on the loop */
	survey_rig_down(&r);
}

static bool net_banned(struct survey_rig *r, const char *ip)
{
	struct ebpfmon_lpm_key k = {.prefixlen = 128};
	struct ebpfmon_addr a;
	struct ebpfmon_ban b;

	assert_int_equal(addr_parse(ip, &a), 0);
	memcpy(k.a, a.a, sizeof(k.a));
	return !bpf_map_lookup_elem(r->maps.ban_nets, &k, &b);
}

/*
 * cidr_ban_threshold counts the bans in force in the offender's /24 without a walk of bans:
 * those the last survey found (written by anyone), and those the policy wrote since, each
 * looked up again, so that a ban lifted since the survey no longer counts.
 */
static void escalation_counts_without_a_walk(void **state)
{
	struct policy_survey sv = {0};
	struct survey_rig r;
	struct ebpfmon_addr x;

	(void)state;
	if (!survey_rig_up(&r, 64))
		no_bpf();
	r.cfg.cidr_ban_threshold = 3;
	map_ban(&r, "198.18.9.1", 600); /* not the policy's: only the survey knows them */
	map_ban(&r, "198.18.9.2", 600);
	map_ban(&r, "198.18.9.9", -5);	/* expired: does not count */
	map_ban(&r, "198.18.8.1", 600); /* another /24 */
	policy_survey_prepare(&pol, &sv);
	policy_survey(&r.maps, r.cfg.max_connections_per_ip, r.ro, &sv);
	while (!policy_survey_apply(&pol, &sv, 0))
		;
	policy_survey_free(&sv);
	assert_int_equal(pol.n_esc, 3);

	/* .2 lifted since the survey: .3 makes two in force, not three */
	assert_int_equal(addr_parse("198.18.9.2", &x), 0);
	assert_int_equal(bpf_map_delete_elem(r.maps.bans, &x), 0);
	ban_conn("198.18.9.3", &x);
	assert_false(net_banned(&r, "198.18.9.3"));
	/* .4, written since the survey like .3: three, the network goes */
	ban_conn("198.18.9.4", &x);
	assert_true(net_banned(&r, "198.18.9.200"));
	assert_false(net_banned(&r, "198.18.8.1"));

	/* a survey that began after them takes them over; the count stays right */
	policy_survey_prepare(&pol, &sv);
	policy_survey(&r.maps, r.cfg.max_connections_per_ip, r.ro, &sv);
	while (!policy_survey_apply(&pol, &sv, 0))
		;
	policy_survey_free(&sv);
	assert_int_equal(pol.n_esc_new, 0);
	assert_int_equal(pol.n_esc, 4); /* .1, .3, .4 and 198.18.8.1 */
	survey_rig_down(&r);
}

/* ---- one request, one offence, across a restart (dry run: no maps needed) ---- */

static struct ebpfmon_ev_url_hit url_hit(const char *ip, uint16_t sport, uint32_t seq,
					 const char *path)
{
	struct ebpfmon_ev_url_hit ev = {
		.hdr = {.type = EBPFMON_EV_URL_HIT, .len = sizeof(ev), .ts_ns = maps_boot_ns()},
		.dport = 80,
		.sport = sport,
		.seq = seq,
		.path_len = (uint16_t)strlen(path),
	};

	assert_int_equal(addr_parse(ip, &ev.addr), 0);
	memcpy(ev.path, path, ev.path_len);
	return ev;
}

static int64_t rows_of(struct store *st, const char *ip)
{
	struct addr_cidr net = {.prefixlen = 128};

	assert_int_equal(addr_parse(ip, &net.addr), 0);
	return store_ban_count_since(st, &net, 0, true);
}

static void url_offence_survives_a_restart(void **state)
{
	char dir[] = "/tmp/ebpfmon-test-policy-XXXXXX", path[64];
	struct ebpfmon_ev_url_hit ev = url_hit("198.51.100.7", 40000, 1234, "/wp-admin/");
	struct ebpfmon_ev_url_hit next = url_hit("198.51.100.7", 40000, 1300, "/wp-admin/");
	struct store *st;
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	cfg.dry_run = true;
	snprintf(cfg.url_patterns[0], sizeof(cfg.url_patterns[0]), "/wp-admin");
	cfg.n_url_patterns = 1;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ebpfmon.db", dir);
	assert_int_equal(store_open(path, &st), 0);

	policy_init(&pol, &cfg, NULL, st);
	policy_load_history(&pol);
	assert_int_equal(policy_on_event(&pol, &ev, sizeof(ev)), 1); /* the offence */
	policy_flush(&pol);
	assert_int_equal(rows_of(st, "198.51.100.7"), 1);
	policy_free(&pol);

	/* a restart: the client's kernel retransmits the same request, no new offence */
	policy_init(&pol, &cfg, NULL, st);
	policy_load_history(&pol);
	ev.hdr.ts_ns = maps_boot_ns();
	assert_int_equal(policy_on_event(&pol, &ev, sizeof(ev)), 0);
	assert_int_equal(pol.would_bans, 0);
	assert_int_equal(pol.retransmits, 1);
	/* the next request on that connection is a new offence */
	assert_int_equal(policy_on_event(&pol, &next, sizeof(next)), 1);
	/* while a checkpoint holds the database, the row waits in memory */
	pol.rows_wait = true;
	policy_flush(&pol);
	assert_int_equal(rows_of(st, "198.51.100.7"), 1);
	pol.rows_wait = false;
	policy_flush(&pol);
	assert_int_equal(rows_of(st, "198.51.100.7"), 2);
	policy_free(&pol);

	store_close(st);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/ebpfmon.db%s", dir,
			 (const char *[]){"", "-wal", "-shm"}[i]);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(duration_escalates_and_caps),
		cmocka_unit_test(duration_permanent_and_seconds),
		cmocka_unit_test(url_prefix_and_glob),
		cmocka_unit_test(decide_allowlist_banned_dry_run),
		cmocka_unit_test(escalation_network),
		cmocka_unit_test(retransmission_is_not_a_new_offence),
		cmocka_unit_test(a_replayed_sequence_number_on_a_new_connection_is_a_new_offence),
		cmocka_unit_test(seen_table_is_bounded_and_forgets_the_oldest),
		cmocka_unit_test(url_offence_survives_a_restart),
		cmocka_unit_test(reconcile_running),
		cmocka_unit_test(reconcile_new_maps_restore),
		cmocka_unit_test(survey_actions_are_checked_again),
		cmocka_unit_test(full_map_evicts_from_candidates),
		cmocka_unit_test(full_map_of_permanent_bans),
		cmocka_unit_test(escalation_counts_without_a_walk),
		cmocka_unit_test(evict_soonest_expiring_never_permanent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
