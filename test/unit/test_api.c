// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API's calls without a socket: the envelope (malformed, empty, wrong version, unknown
 * call, too large), argument checks, who may change bans, and the calls on a temporary
 * database. BanIP and UnbanIP run on real BPF maps of the kernel's types when this process
 * may create maps (root or CAP_BPF), else those cases are skipped.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_handlers.h"
#include "api_snap.h"
#include "api_wire.h"
#include "utf8.h"
#include "config.h"
#include "ebpfmon_abi.h"
#include "ebpfmon.pb-c.h"
#include "log.h"
#include "maps.h"
#include "policy.h"
#include "store.h"

#define ST(name) EBPFMON__V1__STATUS__STATUS_##name

struct fixture {
	char dir[64], path[128];
	struct config cfg;
	struct maps maps;
	struct store *st;
	struct policy policy;
	struct api_env env;
	bool have_maps;
};

static const struct api_peer root_peer = {.local = true, .has_creds = true, .uid = 0, .gid = 0};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ebpfmon-api-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/ebpfmon.db", f->dir);
	if (store_open(f->path, &f->st))
		return -1;
	config_defaults(&f->cfg);
	snprintf(f->cfg.pin_root, sizeof(f->cfg.pin_root), "%s/pins", f->dir); /* empty */
	snprintf(f->cfg.admin_group, sizeof(f->cfg.admin_group), "root");
	memset(&f->maps, -1, sizeof(f->maps));
	policy_init(&f->policy, &f->cfg, &f->maps, f->st);
	f->env = (struct api_env){.policy = &f->policy, .own_uid = 4242};
	*state = f;
	return 0;
}

/* The ban maps of the kernel's types, when this process may create maps. */
static int setup_maps(void **state)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
	struct fixture *f;

	if (setup(state))
		return -1;
	f = *state;
	f->maps.bans = bpf_map_create(BPF_MAP_TYPE_HASH, "bans", sizeof(struct ebpfmon_addr),
				      sizeof(struct ebpfmon_ban), 1024, NULL);
	f->maps.ban_nets = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "ban_nets",
					  sizeof(struct ebpfmon_lpm_key),
					  sizeof(struct ebpfmon_ban), 1024, &lpm);
	f->maps.settings = bpf_map_create(BPF_MAP_TYPE_ARRAY, "settings", sizeof(__u32),
					  sizeof(struct ebpfmon_settings), 1, NULL);
	f->have_maps = f->maps.bans >= 0 && f->maps.ban_nets >= 0 && f->maps.settings >= 0;
	return 0;
}

/* And the maps the snapshots read: ip_stats, conn_count, counters (per-CPU). */
static int setup_all_maps(void **state)
{
	struct fixture *f;

	if (setup_maps(state))
		return -1;
	f = *state;
	f->maps.ip_stats = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ip_stats",
					  sizeof(struct ebpfmon_addr),
					  sizeof(struct ebpfmon_ip_stats), 4096, NULL);
	f->maps.conn_count = bpf_map_create(BPF_MAP_TYPE_HASH, "conn_count",
					    sizeof(struct ebpfmon_addr),
					    sizeof(struct ebpfmon_conn), 1024, NULL);
	f->maps.counters = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "counters", sizeof(__u32),
					  sizeof(struct ebpfmon_counters), 1, NULL);
	f->have_maps = f->have_maps && f->maps.ip_stats >= 0 && f->maps.conn_count >= 0 &&
		       f->maps.counters >= 0;
	return 0;
}

static int teardown(void **state)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	struct fixture *f = *state;
	char p[160];

	policy_free(&f->policy);
	store_close(f->st);
	maps_close(&f->maps);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- helpers --- */

static Ebpfmon__V1__Response *handle_raw(struct fixture *f, const struct api_peer *peer,
					 const void *body, size_t len)
{
	Ebpfmon__V1__Response *resp;
	void *out = NULL;
	size_t n = 0;
	int status = -1;

	assert_int_equal(api_handle(&f->env, peer, body, len, &out, &n, &status), 0);
	resp = ebpfmon__v1__response__unpack(NULL, n, out);
	free(out);
	assert_non_null(resp);
	assert_int_equal(resp->version, 1); /* always the version the server speaks */
	assert_int_equal(resp->status, status);
	if (resp->status != ST(OK))
		assert_true(resp->message[0]); /* every error says what was wrong */
	return resp;
}

static Ebpfmon__V1__Response *handle(struct fixture *f, const struct api_peer *peer,
				     Ebpfmon__V1__Request *rq)
{
	size_t n = ebpfmon__v1__request__get_packed_size(rq);
	uint8_t *buf = malloc(n + 1);
	Ebpfmon__V1__Response *resp;

	assert_non_null(buf);
	ebpfmon__v1__request__pack(rq, buf);
	resp = handle_raw(f, peer, buf, n);
	free(buf);
	return resp;
}

static void expect(Ebpfmon__V1__Response *resp, int status, const char *msg_part)
{
	if ((int)resp->status != status || (msg_part && !strstr(resp->message, msg_part)))
		fail_msg("status %d message '%s'; expected %d with '%s'", resp->status,
			 resp->message, status, msg_part ? msg_part : "");
	ebpfmon__v1__response__free_unpacked(resp, NULL);
}

static Ebpfmon__V1__Response *bans_call(struct fixture *f, Ebpfmon__V1__GetMaliciousIPsRequest *g)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;

	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS;
	rq.get_malicious_ips = g;
	return handle(f, &root_peer, &rq);
}

static Ebpfmon__V1__Response *ban_call(struct fixture *f, const struct api_peer *peer,
				       const char *addr, uint64_t dur, bool permanent,
				       const char *reason)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__BanIPRequest b = EBPFMON__V1__BAN_IPREQUEST__INIT;

	b.address = (char *)addr;
	b.duration_seconds = dur;
	b.permanent = permanent;
	if (reason)
		b.reason = (char *)reason;
	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
	rq.ban_ip = &b;
	return handle(f, peer, &rq);
}

static Ebpfmon__V1__Response *unban_call(struct fixture *f, const struct api_peer *peer,
					 const char *addr)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__UnbanIPRequest u = EBPFMON__V1__UNBAN_IPREQUEST__INIT;

	u.address = (char *)addr;
	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_UNBAN_IP;
	rq.unban_ip = &u;
	return handle(f, peer, &rq);
}

static int64_t insert_ban(struct store *st, const char *net, enum ebpfmon_ban_reason reason,
			  int64_t at, int64_t ended)
{
	struct store_ban b = {.reason = reason,
			      .hits = 1,
			      .banned_at = at,
			      .expires_at = at + 60,
			      .ended_at = ended};
	int64_t id;

	assert_int_equal(cidr_parse(net, &b.net), 0);
	if (ended)
		snprintf(b.end_reason, sizeof(b.end_reason), "expired");
	id = store_ban_insert(st, &b);
	assert_true(id > 0);
	return id;
}

/* --- the envelope --- */

static void test_envelope(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest s = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	/* version 1, then field 16 (a call this server does not know), one byte long */
	static const uint8_t unknown[] = {0x08, 0x01, 0x82, 0x01, 0x01, 0x00};
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t truncated[] = {0x08, 0x01, 0x52, 0x05, 0x08};
	static const uint8_t version_only[] = {0x08, 0x01};
	uint8_t *big;

	expect(handle_raw(f, &root_peer, "", 0), ST(MALFORMED), "empty body");
	expect(handle_raw(f, &root_peer, garbage, sizeof(garbage)), ST(MALFORMED),
	       "not an ebpfmon.v1.Request");
	expect(handle_raw(f, &root_peer, truncated, sizeof(truncated)), ST(MALFORMED),
	       "not an ebpfmon.v1.Request");
	expect(handle_raw(f, &root_peer, unknown, sizeof(unknown)), ST(MALFORMED), "field 16");
	expect(handle_raw(f, &root_peer, version_only, sizeof(version_only)), ST(MALFORMED),
	       "names no call");

	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
	rq.get_monitor_status = &s;
	rq.version = 0; /* a client that did not set it */
	expect(handle(f, &root_peer, &rq), ST(UNSUPPORTED_VERSION),
	       "protocol version 0 is not supported: this server speaks version 1");
	rq.version = 2;
	expect(handle(f, &root_peer, &rq), ST(UNSUPPORTED_VERSION), "version 2");

	big = calloc(1, API_BODY_MAX + 1);
	assert_non_null(big);
	expect(handle_raw(f, &root_peer, big, API_BODY_MAX + 1), ST(TOO_LARGE), "65537 bytes");
	free(big);

	/* a status without the maps: zeros, and the database is fine */
	rq.version = 1;
	{
		Ebpfmon__V1__Response *resp = handle(f, &root_peer, &rq);

		assert_int_equal(resp->status, ST(OK));
		assert_int_equal(resp->result_case,
				 EBPFMON__V1__RESPONSE__RESULT_GET_MONITOR_STATUS);
		assert_true(resp->get_monitor_status->database_ok);
		assert_true(resp->get_monitor_status->analyzer_running);
		assert_false(resp->get_monitor_status->loader_running);
		assert_int_equal(resp->get_monitor_status->n_interfaces, 0);
		assert_string_equal(resp->get_monitor_status->version, "0.1.0");
		ebpfmon__v1__response__free_unpacked(resp, NULL);
	}
}

/* BanIP(addr, reason) encoded, with the first `mark` in the encoding replaced by `with`. */
static Ebpfmon__V1__Response *ban_patched(struct fixture *f, const char *addr, const char *reason,
					  const char *mark, const uint8_t *with, size_t with_len)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__BanIPRequest b = EBPFMON__V1__BAN_IPREQUEST__INIT;
	Ebpfmon__V1__Response *resp;
	uint8_t *buf, *at;
	size_t n;

	b.address = (char *)addr;
	b.reason = (char *)reason;
	b.duration_seconds = 60;
	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
	rq.ban_ip = &b;
	n = ebpfmon__v1__request__get_packed_size(&rq);
	buf = malloc(n);
	assert_non_null(buf);
	ebpfmon__v1__request__pack(&rq, buf);
	at = memmem(buf, n, mark, strlen(mark));
	assert_non_null(at);
	assert_int_equal(strlen(mark), with_len);
	memcpy(at, with, with_len);
	resp = handle_raw(f, &root_peer, buf, n);
	free(buf);
	return resp;
}

/* A string field is text: a NUL inside it or bytes that are not UTF-8 are refused by name,
 * not cut short or stored as they came. */
static void test_strings(void **state)
{
	struct fixture *f = *state;
	static const uint8_t nul[] = {0};
	static const uint8_t latin1[] = {0xe9};		/* "é" in ISO 8859-1 */
	static const uint8_t overlong[] = {0xc0, 0xaf}; /* "/" in two bytes */
	static const uint8_t surrogate[] = {0xed, 0xa0, 0x80};
	Ebpfmon__V1__Response *resp;

	expect(ban_patched(f, "198.51.100.7X", "probe", "X", nul, 1), ST(INVALID_ARGUMENT),
	       "ban_ip.address holds a NUL byte at byte 12");
	expect(ban_patched(f, "198.51.100.7", "scan Xfrom here", "X", nul, 1), ST(INVALID_ARGUMENT),
	       "ban_ip.reason holds a NUL byte at byte 5");
	expect(ban_patched(f, "198.51.100.7", "caXfe", "X", latin1, 1), ST(INVALID_ARGUMENT),
	       "ban_ip.reason is not valid UTF-8 (byte 2)");
	expect(ban_patched(f, "198.51.100.7", "aXXb", "XX", overlong, 2), ST(INVALID_ARGUMENT),
	       "ban_ip.reason is not valid UTF-8 (byte 1)");
	expect(ban_patched(f, "198.51.100.7", "aXXXb", "XXX", surrogate, 3), ST(INVALID_ARGUMENT),
	       "not valid UTF-8");
	/* real text goes through to the call itself */
	resp = ban_patched(f, "198.51.100.7", "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9d\x84\x9e", "caf",
			   (const uint8_t *)"caf", 3);
	assert_int_not_equal(resp->status, ST(MALFORMED));
	ebpfmon__v1__response__free_unpacked(resp, NULL);
}

static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t bad; /* == strlen: valid */
	} v[] = {
		{"plain ASCII", 11},
		{"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf",
		 23},
		{"a\x80", 1},		  /* a continuation byte first */
		{"a\xc1\xbf", 1},	  /* overlong two-byte form */
		{"a\xe0\x9f\xbf", 1},	  /* overlong three-byte form */
		{"a\xed\xbf\xbf", 1},	  /* a surrogate, U+DFFF */
		{"a\xf4\x90\x80\x80", 1}, /* U+110000 */
		{"a\xf5\x80\x80\x80", 1},
		{"ab\xe2\x82", 2},   /* cut short */
		{"\xe2\x28\xa1", 0}, /* a bad second byte */
	};
	size_t i, bad;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t len = strlen(v[i].s);
		bool ok = utf8_valid((const uint8_t *)v[i].s, len, &bad);

		if (ok != (v[i].bad == len) || bad != v[i].bad)
			fail_msg("case %zu: valid %d at %zu, expected %zu", i, ok, bad, v[i].bad);
	}
}

/* --- arguments --- */

static void test_parse(void **state)
{
	struct addr_cidr n;
	enum ebpfmon_ban_reason r;
	char err[256];

	(void)state;
	assert_int_equal(api_parse_net("198.51.100.7", &n, err, sizeof(err)), 0);
	assert_int_equal(n.prefixlen, 128);
	assert_int_equal(api_parse_net("198.51.100.0/24", &n, err, sizeof(err)), 0);
	assert_int_equal(n.prefixlen, 120);
	assert_int_equal(api_parse_net("2001:db8::/32", &n, err, sizeof(err)), 0);
	assert_int_equal(api_parse_net("198.51.100.7/24", &n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "host bits set in '198.51.100.7/24': did you mean 198.51.100.0/24?");
	assert_int_equal(api_parse_net("300.1.1.1", &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'300.1.1.1' is not an IPv4 or IPv6 address or network"));
	assert_int_equal(api_parse_net("198.51.100.0/33", &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(api_parse_net("", &n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "no address given");
	assert_int_equal(api_parse_net("a\nb", &n, err, sizeof(err)), -EINVAL);
	assert_null(strchr(err, '\n')); /* a client's bytes never reach a log line raw */
	assert_non_null(strstr(err, "'a?b'"));

	assert_int_equal(api_parse_reason("url_rule", &r), 0);
	assert_int_equal(r, EBPFMON_BAN_URL_RULE);
	assert_int_equal(api_parse_reason("manual", &r), 0);
	assert_int_equal(r, EBPFMON_BAN_MANUAL);
	assert_int_equal(api_parse_reason("URL_RULE", &r), -EINVAL);
	assert_int_equal(api_parse_reason("", &r), -EINVAL);
}

static void test_bad_arguments(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__GetMaliciousIPsRequest g = EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	Ebpfmon__V1__GetSystemAnomaliesRequest a = EBPFMON__V1__GET_SYSTEM_ANOMALIES_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest s = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	char long_reason[API_REASON_MAX + 2];

	g.reason = "bogus";
	expect(bans_call(f, &g), ST(INVALID_ARGUMENT),
	       "reason 'bogus' is unknown (expected conn_limit, url_rule, manual or escalated)");
	g.reason = "";
	g.network = "198.51.100.1/24";
	expect(bans_call(f, &g), ST(INVALID_ARGUMENT), "did you mean 198.51.100.0/24?");
	g.network = "";
	g.limit = API_LIMIT_MAX + 1;
	expect(bans_call(f, &g), ST(INVALID_ARGUMENT), "limit 10001 is over the maximum 10000");
	g.limit = 0;
	g.since_unix = -1;
	expect(bans_call(f, &g), ST(INVALID_ARGUMENT), "since_unix -1 is negative");

	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES;
	rq.get_system_anomalies = &a;
	a.kind = "gpu";
	expect(handle(f, &root_peer, &rq), ST(INVALID_ARGUMENT), "kind 'gpu' is unknown");

	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
	rq.get_network_stats = &s;
	s.address = "198.51.100.0/24";
	expect(handle(f, &root_peer, &rq), ST(INVALID_ARGUMENT), "is not one IPv4 or IPv6 address");
	s.address = "";
	s.top = API_LIMIT_MAX + 1;
	expect(handle(f, &root_peer, &rq), ST(INVALID_ARGUMENT), "top 10001");
	s.top = 0;
	s.order = 7;
	expect(handle(f, &root_peer, &rq), ST(INVALID_ARGUMENT), "order 7 is unknown");

	expect(ban_call(f, &root_peer, "", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "no address given");
	expect(ban_call(f, &root_peer, "198.51.100.300", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "is not an IPv4 or IPv6 address");
	expect(ban_call(f, &root_peer, "2001:db8::1/32", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "did you mean 2001:db8::/32?");
	expect(ban_call(f, &root_peer, "198.51.100.7", 60, true, NULL), ST(INVALID_ARGUMENT),
	       "both set");
	expect(ban_call(f, &root_peer, "198.51.100.7", API_DURATION_MAX + 1, false, NULL),
	       ST(INVALID_ARGUMENT), "over the maximum");
	memset(long_reason, 'x', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	expect(ban_call(f, &root_peer, "198.51.100.7", 0, false, long_reason), ST(INVALID_ARGUMENT),
	       "reason is 129 bytes long, at most 128");
	expect(ban_call(f, &root_peer, "198.51.100.7", 0, false, "line\nbreak"),
	       ST(INVALID_ARGUMENT), "control character");
	expect(ban_call(f, &root_peer, "198.51.100.7", 0, false, "\xc3\x28"), ST(INVALID_ARGUMENT),
	       "not valid UTF-8");
	expect(ban_call(f, &root_peer, "198.51.100.7", 0, false, "C1 \xc2\x85 NEL"),
	       ST(INVALID_ARGUMENT), "control character");
	expect(unban_call(f, &root_peer, "not-an-address"), ST(INVALID_ARGUMENT),
	       "is not an IPv4 or IPv6 address");
	/* the allowlist is checked before any map is touched */
	expect(ban_call(f, &root_peer, "127.0.0.1", 0, false, NULL), ST(ALLOWLISTED),
	       "127.0.0.1 is allowlisted (127.0.0.0/8)");
	expect(ban_call(f, &root_peer, "0.0.0.0/0", 0, false, NULL), ST(ALLOWLISTED),
	       "0.0.0.0/0 overlaps the allowlist entry 127.0.0.0/8");
	/* what no packet comes from (RFC 1122 3.2.1.3, RFC 4291 2.5.2 and 2.7) */
	expect(ban_call(f, &root_peer, "0.0.0.0", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "0.0.0.0 is the unspecified address: no packet comes from it");
	expect(ban_call(f, &root_peer, "255.255.255.255", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "the limited broadcast address");
	expect(ban_call(f, &root_peer, "224.0.0.1", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "224.0.0.1 is multicast");
	expect(ban_call(f, &root_peer, "239.0.0.0/8", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "multicast");
	expect(ban_call(f, &root_peer, "ff02::1", 0, false, NULL), ST(INVALID_ARGUMENT),
	       "multicast");
	expect(ban_call(f, &root_peer, "::", 0, false, NULL), ST(INVALID_ARGUMENT), "unspecified");
}

/* --- authorization --- */

static void test_may_change(void **state)
{
	struct api_peer p = {.local = true, .has_creds = true, .uid = 1000, .gid = 1000};
	gid_t admin = 990, groups[] = {27, 990}, other[] = {27, 100};

	(void)state;
	assert_false(api_may_change(&p, 999, &admin, other, 2));
	assert_true(api_may_change(&p, 999, &admin, groups, 2)); /* supplementary group */
	assert_false(api_may_change(&p, 999, NULL, groups, 2));	 /* no such group: root only */
	p.gid = 990;
	assert_true(api_may_change(&p, 999, &admin, NULL, 0)); /* primary group */
	p.gid = 1000;
	p.uid = 999;
	assert_true(api_may_change(&p, 999, NULL, NULL, 0)); /* the analyzer's own user */
	p.uid = 0;
	assert_true(api_may_change(&p, 999, NULL, NULL, 0)); /* root */
	p.has_creds = false;
	assert_false(api_may_change(&p, 999, &admin, groups, 2));
	p.has_creds = true;
	p.local = false; /* tcp:// is read-only, whoever asks */
	assert_false(api_may_change(&p, 999, &admin, groups, 2));
}

/* tls+tcp://: a verified certificate, and its CN in tls_admin_names when that is set */
static void test_tls_may_change(void **state)
{
	struct api_peer p = {.tls = true, .tls_verified = true, .addr = "192.0.2.20:40512"};

	(void)state;
	assert_true(api_tls_may_change(&p, "")); /* every client the CA signed */
	assert_true(api_tls_may_change(&p, NULL));
	assert_false(api_tls_may_change(&p, "alice")); /* names set, the CN unknown (nng 1.5) */
	snprintf(p.cn, sizeof(p.cn), "alice");
	assert_true(api_tls_may_change(&p, "alice"));
	assert_true(api_tls_may_change(&p, "bob,alice"));
	assert_false(api_tls_may_change(&p, "bob"));
	assert_false(api_tls_may_change(&p, "alic,alicee,lice")); /* whole names only */
	assert_false(api_tls_may_change(&p, "ALICE"));
	p.tls_verified = false;
	assert_false(api_tls_may_change(&p, ""));
	p.tls_verified = true;
	p.tls = false; /* tcp:// or ipc://: not this function's to allow */
	assert_false(api_tls_may_change(&p, ""));
	/* and api_may_change() never allows a network peer */
	p.tls = true;
	assert_false(api_may_change(&p, 999, NULL, NULL, 0));
}

static void test_not_permitted(void **state)
{
	struct fixture *f = *state;
	struct api_peer p = {.local = true, .has_creds = true, .uid = 54321, .gid = 54321};
	struct api_peer tcp = {.local = false};
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest s = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;

	/* a uid that is neither root nor the analyzer's, outside the admin group ("root") */
	expect(ban_call(f, &p, "198.51.100.7", 0, false, NULL), ST(NOT_PERMITTED),
	       "not permitted: uid 54321 is neither root nor in group root");
	expect(unban_call(f, &p, "198.51.100.7"), ST(NOT_PERMITTED),
	       "not permitted: uid 54321 is neither root nor in group root");
	/* checked before the arguments: an outsider learns nothing about them */
	expect(ban_call(f, &p, "bad", 0, false, NULL), ST(NOT_PERMITTED), "not permitted");
	expect(ban_call(f, &tcp, "198.51.100.7", 0, false, NULL), ST(NOT_PERMITTED),
	       "refused over the network listener");
	snprintf(f->cfg.admin_group, sizeof(f->cfg.admin_group), "ebpfmon-no-such-group");
	expect(ban_call(f, &p, "198.51.100.7", 0, false, NULL), ST(NOT_PERMITTED),
	       "uid 54321 is not root, and the admin group ebpfmon-no-such-group does not exist");
	/* reading is for everyone who reaches the socket */
	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
	rq.get_monitor_status = &s;
	expect(handle(f, &p, &rq), ST(OK), NULL);
	expect(handle(f, &tcp, &rq), ST(OK), NULL);
	/* the primary group of the peer's process counts */
	snprintf(f->cfg.admin_group, sizeof(f->cfg.admin_group), "root");
	p.gid = 0;
	expect(ban_call(f, &p, "127.0.0.2", 0, false, NULL), ST(ALLOWLISTED), NULL);
}

/* --- listings on a temporary database --- */

static void test_malicious_ips(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__GetMaliciousIPsRequest g = EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	Ebpfmon__V1__Response *resp;
	Ebpfmon__V1__GetMaliciousIPsResponse *m;

	insert_ban(f->st, "198.51.100.1", EBPFMON_BAN_CONN_LIMIT, 1000, 0);
	insert_ban(f->st, "198.51.100.2", EBPFMON_BAN_URL_RULE, 1010, 0);
	insert_ban(f->st, "198.51.100.3", EBPFMON_BAN_CONN_LIMIT, 1020, 1080);
	insert_ban(f->st, "198.51.100.0/24", EBPFMON_BAN_ESCALATED, 1030, 0);
	insert_ban(f->st, "2001:db8::1", EBPFMON_BAN_MANUAL, 1040, 0);

	/* active by default, newest first */
	resp = bans_call(f, &g);
	assert_int_equal(resp->status, ST(OK));
	m = resp->get_malicious_ips;
	assert_int_equal(m->total, 4);
	assert_int_equal(m->n_bans, 4);
	assert_string_equal(m->bans[0]->address, "2001:db8::1");
	assert_string_equal(m->bans[0]->reason, "manual");
	assert_string_equal(m->bans[1]->address, "198.51.100.0/24");
	assert_int_equal(m->bans[3]->banned_unix, 1000);
	assert_int_equal(m->bans[3]->expires_unix, 1060);
	assert_int_equal(m->bans[3]->ended_unix, 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* history, inside a network (the /24 itself too), paged */
	g.history = true;
	g.network = "198.51.100.0/24";
	g.limit = 2;
	g.offset = 1;
	resp = bans_call(f, &g);
	m = resp->get_malicious_ips;
	assert_int_equal(m->total, 4);
	assert_int_equal(m->n_bans, 2);
	assert_string_equal(m->bans[0]->address, "198.51.100.3");
	assert_int_equal(m->bans[0]->ended_unix, 1080);
	assert_string_equal(m->bans[0]->end_reason, "expired");
	assert_string_equal(m->bans[1]->address, "198.51.100.2");
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* one address; a reason; since */
	g.network = "198.51.100.3";
	g.limit = 0;
	g.offset = 0;
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->total, 1);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	g.network = "";
	g.reason = "conn_limit";
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->total, 2);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	g.reason = "";
	g.since_unix = 1030;
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->total, 2);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* history of every address, paged: the total counts every row, the page is in order */
	g.since_unix = 0;
	g.limit = 2;
	g.offset = 1;
	resp = bans_call(f, &g);
	m = resp->get_malicious_ips;
	assert_int_equal(m->total, 5);
	assert_int_equal(m->n_bans, 2);
	assert_string_equal(m->bans[0]->address, "198.51.100.0/24");
	assert_string_equal(m->bans[1]->address, "198.51.100.3");
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	g.offset = 5; /* past the end: no entry, the same total */
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->total, 5);
	assert_int_equal(resp->get_malicious_ips->n_bans, 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	g.limit = 0;
	g.offset = 0;

	/* no database: said so */
	f->policy.store = NULL;
	expect(bans_call(f, &g), ST(UNAVAILABLE), "is not open");
	f->policy.store = f->st;
}

/* Whether a Request packs into a body that api_is_store_read() sends to the reader. */
static bool store_read(Ebpfmon__V1__Request *rq)
{
	uint8_t buf[512];
	size_t n = ebpfmon__v1__request__get_packed_size(rq);

	assert_true(n <= sizeof(buf));
	ebpfmon__v1__request__pack(rq, buf);
	return api_is_store_read(buf, n);
}

/* The reader's calls: which go to it, and that they read its own read-only connection. */
static void test_reader_connection(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMaliciousIPsRequest g = EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest ns = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;
	Ebpfmon__V1__GetSystemAnomaliesRequest an = EBPFMON__V1__GET_SYSTEM_ANOMALIES_REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest gs = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	Ebpfmon__V1__BanIPRequest b = EBPFMON__V1__BAN_IPREQUEST__INIT;
	Ebpfmon__V1__Response *resp;
	struct store *ro;

	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS;
	rq.get_malicious_ips = &g;
	assert_true(store_read(&rq));
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES;
	rq.get_system_anomalies = &an;
	assert_true(store_read(&rq));
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
	rq.get_network_stats = &ns;
	assert_false(store_read(&rq)); /* the live top list: snapshots */
	ns.history = true;
	assert_true(store_read(&rq));
	ns.history = false;
	ns.address = "198.51.100.1";
	assert_true(store_read(&rq));
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
	rq.get_monitor_status = &gs;
	assert_false(store_read(&rq));
	rq.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
	rq.ban_ip = &b;
	b.address = "198.51.100.1";
	assert_false(store_read(&rq)); /* changes: the loop's */
	assert_false(api_is_store_read("\xff\xff", 2));
	assert_false(api_is_store_read("", 0));

	/* with env.store, the listing is read there, not from the policy's connection */
	insert_ban(f->st, "198.51.100.1", EBPFMON_BAN_CONN_LIMIT, 1000, 0);
	assert_int_equal(store_open_readonly(f->path, &ro), 0);
	f->env.store = ro;
	f->policy.store = NULL;
	resp = bans_call(f, &g);
	assert_int_equal(resp->status, ST(OK));
	assert_int_equal(resp->get_malicious_ips->total, 1);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	/* and it sees what the writer committed since */
	insert_ban(f->st, "198.51.100.2", EBPFMON_BAN_URL_RULE, 1010, 0);
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->total, 2);
	assert_string_equal(resp->get_malicious_ips->bans[0]->address, "198.51.100.2");
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	f->env.store = NULL;
	f->policy.store = f->st;
	store_close(ro);
}

static void test_anomalies_and_snapshots(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetSystemAnomaliesRequest a = EBPFMON__V1__GET_SYSTEM_ANOMALIES_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest s = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;
	struct store_anomaly an = {.kind = STORE_ANOMALY_CPU,
				   .started_at = 100,
				   .peak = 95,
				   .threshold = 80,
				   .top_pid = 42,
				   .top_comm = "burn"};
	struct store_net_stats ns = {.ts = 500, .rx_packets = 10, .tracked = 3};
	struct store_top top = {.packets = 7, .bytes = 700, .connections = 2};
	Ebpfmon__V1__Response *resp;
	int64_t id;

	id = store_anomaly_open(f->st, &an);
	assert_true(id > 0);
	assert_int_equal(store_anomaly_close(f->st, id, 160), 0);
	an.started_at = 200;
	an.kind = STORE_ANOMALY_DISK_IO;
	an.peak = 150; /* MB/s */
	an.threshold = 100;
	assert_true(store_anomaly_open(f->st, &an) > 0);
	an.started_at = 300;
	an.kind = STORE_ANOMALY_MEMORY;
	assert_true(store_anomaly_open(f->st, &an) > 0);

	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES;
	rq.get_system_anomalies = &a;
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->get_system_anomalies->total, 3);
	assert_string_equal(resp->get_system_anomalies->anomalies[0]->kind, "memory");
	assert_string_equal(resp->get_system_anomalies->anomalies[2]->top_comm, "burn");
	assert_int_equal(resp->get_system_anomalies->anomalies[2]->ended_unix, 160);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	a.kind = "disk_io";
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->get_system_anomalies->total, 1);
	assert_true(resp->get_system_anomalies->anomalies[0]->peak == 150e6); /* bytes/s */
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	a.kind = "";
	a.open_only = true;
	a.limit = 1;
	a.offset = 1;
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->get_system_anomalies->total, 2);
	assert_int_equal(resp->get_system_anomalies->n_anomalies, 1);
	assert_int_equal(resp->get_system_anomalies->anomalies[0]->started_unix, 200);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	a.open_only = false;
	a.limit = 0;
	a.offset = 0;
	a.since_unix = 150; /* started at or after */
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->get_system_anomalies->total, 2);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	assert_int_equal(addr_parse("198.51.100.9", &top.addr), 0);
	assert_true(store_stats_insert(f->st, &ns, &top, 1) > 0);
	ns.ts = 600;
	assert_true(store_stats_insert(f->st, &ns, NULL, 0) > 0);
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
	rq.get_network_stats = &s;
	s.history = true;
	s.since_unix = 550;
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->status, ST(OK));
	assert_int_equal(resp->get_network_stats->n_snapshots, 1);
	assert_int_equal(resp->get_network_stats->snapshots[0]->ts_unix, 600);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	s.since_unix = 0;
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->get_network_stats->n_snapshots, 2);
	assert_int_equal(resp->get_network_stats->snapshots[1]->n_top, 1);
	assert_string_equal(resp->get_network_stats->snapshots[1]->top[0]->address, "198.51.100.9");
	assert_int_equal(resp->get_network_stats->snapshots[1]->top[0]->packets, 7);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* one address: its bans, here from the database (no maps in this test) */
	insert_ban(f->st, "198.51.100.0/24", EBPFMON_BAN_ESCALATED, 1030, 0);
	insert_ban(f->st, "198.51.100.10", EBPFMON_BAN_CONN_LIMIT, 1040, 0);
	s.history = false;
	s.address = "198.51.100.9";
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->status, ST(OK));
	assert_string_equal(resp->get_network_stats->address->address, "198.51.100.9");
	assert_int_equal(resp->get_network_stats->n_bans, 1);
	assert_string_equal(resp->get_network_stats->bans[0]->address, "198.51.100.0/24");
	ebpfmon__v1__response__free_unpacked(resp, NULL);
}

/* --- BanIP and UnbanIP on real maps --- */

static bool in_bans(struct fixture *f, const char *addr, struct ebpfmon_ban *out)
{
	struct ebpfmon_addr a;
	struct ebpfmon_ban b;

	assert_int_equal(addr_parse(addr, &a), 0);
	if (bpf_map_lookup_elem(f->maps.bans, &a, &b))
		return false;
	if (out)
		*out = b;
	return true;
}

static void test_ban_unban(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__GetMaliciousIPsRequest g = EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	struct api_peer admin = {.local = true, .has_creds = true, .uid = 54321, .gid = 0};
	Ebpfmon__V1__Response *resp;
	struct ebpfmon_ban b;
	struct ebpfmon_lpm_key k;
	struct addr_cidr net;
	uint64_t id1;

	if (!f->have_maps)
		skip(); /* needs root or CAP_BPF to create maps */

	/* a timed ban: map and row at once, source manual, the reason in the rule column */
	resp = ban_call(f, &admin, "198.51.100.7", 600, false, "scanner");
	assert_int_equal(resp->status, ST(OK));
	assert_true(resp->ban_ip->ban->id > 0);
	assert_string_equal(resp->ban_ip->ban->source, "manual");
	assert_string_equal(resp->ban_ip->ban->reason, "manual");
	assert_string_equal(resp->ban_ip->ban->rule, "scanner");
	assert_int_equal(resp->ban_ip->ban->expires_unix - resp->ban_ip->ban->banned_unix, 600);
	id1 = resp->ban_ip->ban->id;
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_true(in_bans(f, "198.51.100.7", &b));
	assert_int_equal(b.reason, EBPFMON_BAN_MANUAL);
	assert_true(b.expires_ns > maps_boot_ns() + 590ull * 1000000000ull);

	/* again, permanent: it replaces the first, whose row ends */
	resp = ban_call(f, &root_peer, "198.51.100.7", 0, true, NULL);
	assert_int_equal(resp->status, ST(OK));
	assert_true(resp->ban_ip->ban->id > id1);
	assert_int_equal(resp->ban_ip->ban->expires_unix, 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_true(in_bans(f, "198.51.100.7", &b));
	assert_int_equal(b.expires_ns, 0);
	g.history = true;
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->total, 2);
	assert_string_equal(resp->get_malicious_ips->bans[1]->end_reason,
			    "replaced by a manual ban");
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* the configured duration when none is given */
	f->cfg.ban_duration_s = 5;
	resp = ban_call(f, &root_peer, "2001:db8::7", 0, false, NULL);
	assert_int_equal(resp->ban_ip->ban->expires_unix - resp->ban_ip->ban->banned_unix, 5);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* a network goes to ban_nets and switches its lookup on */
	resp = ban_call(f, &root_peer, "203.0.113.0/24", 60, false, NULL);
	assert_int_equal(resp->status, ST(OK));
	assert_string_equal(resp->ban_ip->ban->address, "203.0.113.0/24");
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_int_equal(cidr_parse("203.0.113.0/24", &net), 0);
	cidr_to_lpm_key(&net, &k);
	assert_int_equal(bpf_map_lookup_elem(f->maps.ban_nets, &k, &b), 0);
	expect(unban_call(f, &root_peer, "203.0.113.9"), ST(NOT_BANNED),
	       "203.0.113.9 is not banned itself, but lies in the banned network 203.0.113.0/24");

	/* unban: map entry gone, the row ends naming who */
	resp = unban_call(f, &admin, "198.51.100.7");
	assert_int_equal(resp->status, ST(OK));
	assert_int_equal(resp->unban_ip->ended, 1);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_false(in_bans(f, "198.51.100.7", NULL));
	g.network = "198.51.100.7";
	resp = bans_call(f, &g);
	assert_int_equal(resp->get_malicious_ips->n_bans, 2);
	assert_string_equal(resp->get_malicious_ips->bans[0]->end_reason, "unbanned by uid 54321");
	assert_true(resp->get_malicious_ips->bans[0]->ended_unix > 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	expect(unban_call(f, &root_peer, "198.51.100.7"), ST(NOT_BANNED),
	       "198.51.100.7 is not banned");

	/* neither a reconciliation on new maps (a reboot) nor the next scan brings it back */
	policy_reconcile(&f->policy);
	policy_scan(&f->policy);
	assert_false(in_bans(f, "198.51.100.7", NULL));
	assert_true(in_bans(f, "2001:db8::7", NULL)); /* what is banned stays */

	resp = unban_call(f, &root_peer, "203.0.113.0/24");
	assert_int_equal(resp->status, ST(OK));
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_int_not_equal(bpf_map_lookup_elem(f->maps.ban_nets, &k, &b), 0);
	assert_int_equal(errno, ENOENT);
}

static void count_call(void *arg)
{
	(*(int *)arg)++;
}

/* api_handle() of rq on the owner's thread: 1 when the call waits (api_resume()). */
static int handle_later(struct fixture *f, Ebpfmon__V1__Request *rq)
{
	uint8_t buf[256];
	size_t n = ebpfmon__v1__request__get_packed_size(rq);
	void *out = NULL;
	size_t len = 0;
	int rv;

	assert_true(n <= sizeof(buf));
	ebpfmon__v1__request__pack(rq, buf);
	rv = api_handle(&f->env, &root_peer, buf, n, &out, &len, NULL);
	free(out);
	return rv;
}

/*
 * While a job of the worker holds the database (policy.rows_wait), BanIP and UnbanIP wait
 * for its end instead of holding the loop on the write lock, and ask the job to end soon;
 * nothing is done before they are answered.
 */
static void test_ban_waits_for_worker(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__BanIPRequest b = EBPFMON__V1__BAN_IPREQUEST__INIT;
	Ebpfmon__V1__UnbanIPRequest u = EBPFMON__V1__UNBAN_IPREQUEST__INIT;
	Ebpfmon__V1__Response *resp;
	int wanted = 0;

	if (!f->have_maps)
		skip();
	f->env.db_wanted = count_call;
	f->env.db_wanted_arg = &wanted;
	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
	rq.ban_ip = &b;
	b.address = "198.18.5.1";
	b.duration_seconds = 600;

	f->policy.rows_wait = true;
	/* a call that is refused, or malformed, is answered at once and delays nothing */
	expect(handle(f, &(struct api_peer){.local = false}, &rq), ST(NOT_PERMITTED), "read-only");
	b.address = "198.18.5.1/33";
	expect(handle(f, &root_peer, &rq), ST(INVALID_ARGUMENT), "address");
	b.address = "198.18.5.1";
	assert_int_equal(wanted, 0);
	assert_int_equal(handle_later(f, &rq), 1);
	assert_int_equal(wanted, 1);
	assert_false(in_bans(f, "198.18.5.1", NULL));
	/* the job ended: the same call bans, map and row */
	f->policy.rows_wait = false;
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->status, ST(OK));
	assert_true(resp->ban_ip->ban->id > 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_true(in_bans(f, "198.18.5.1", NULL));

	rq.call_case = EBPFMON__V1__REQUEST__CALL_UNBAN_IP;
	rq.unban_ip = &u;
	u.address = "198.18.5.1";
	f->policy.rows_wait = true;
	expect(handle(f, &(struct api_peer){.local = false}, &rq), ST(NOT_PERMITTED), "read-only");
	assert_int_equal(wanted, 1);
	assert_int_equal(handle_later(f, &rq), 1);
	assert_int_equal(wanted, 2);
	assert_true(in_bans(f, "198.18.5.1", NULL));
	f->policy.rows_wait = false;
	resp = handle(f, &root_peer, &rq);
	assert_int_equal(resp->status, ST(OK));
	assert_int_equal(resp->unban_ip->ended, 1);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_false(in_bans(f, "198.18.5.1", NULL));
}

static void test_dry_run(void **state)
{
	struct fixture *f = *state;
	Ebpfmon__V1__Response *resp;

	if (!f->have_maps)
		skip();
	f->cfg.dry_run = true;
	resp = ban_call(f, &root_peer, "198.51.100.8", 60, false, NULL);
	assert_int_equal(resp->status, ST(OK));
	assert_true(resp->ban_ip->ban->dry_run);
	assert_non_null(strstr(resp->message, "would-ban"));
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	assert_false(in_bans(f, "198.51.100.8", NULL)); /* nothing enforced */
	resp = unban_call(f, &root_peer, "198.51.100.8");
	assert_int_equal(resp->status, ST(OK)); /* the would-ban ends */
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	expect(unban_call(f, &root_peer, "198.51.100.8"), ST(NOT_BANNED), NULL);
}

/* --- the snapshots that nng's threads answer from --- */

#define SNAP_ADDRS 300

/* 198.18.1.i: packets i + 1 (the last the busiest), bytes the other way round. */
static void fill_ip_stats(struct fixture *f)
{
	int ncpus = libbpf_num_possible_cpus();
	struct ebpfmon_ip_stats *v = calloc((size_t)ncpus, sizeof(*v));
	struct ebpfmon_conn c = {.active = 3};

	assert_non_null(v);
	for (uint32_t i = 0; i < SNAP_ADDRS; i++) {
		struct ebpfmon_addr key = {.a = {[10] = 0xff, [11] = 0xff}};
		uint32_t be = htonl(0xc6120100u + i);

		memcpy(&key.a[12], &be, 4);
		v[0] = (struct ebpfmon_ip_stats){.rx_packets = i + 1,
						 .rx_bytes = (SNAP_ADDRS - i) * 1000ull};
		assert_int_equal(bpf_map_update_elem(f->maps.ip_stats, &key, v, BPF_ANY), 0);
		if (i == SNAP_ADDRS - 1)
			assert_int_equal(bpf_map_update_elem(f->maps.conn_count, &key, &c, BPF_ANY),
					 0);
	}
	free(v);
}

static size_t pack_status(uint8_t *buf)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest s = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;

	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
	rq.get_monitor_status = &s;
	return ebpfmon__v1__request__pack(&rq, buf);
}

static size_t pack_top(uint8_t *buf, uint32_t top, bool bytes)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest s = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;

	rq.version = 1;
	rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
	rq.get_network_stats = &s;
	s.top = top;
	s.order = bytes ? EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES
			: EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_PACKETS;
	return ebpfmon__v1__request__pack(&rq, buf);
}

/* api_handle_fast(): NULL when it hands the call to the loop, else the Response. */
static Ebpfmon__V1__Response *fast(struct api_snap *snap, const void *body, size_t len)
{
	Ebpfmon__V1__Response *resp;
	void *out = NULL;
	size_t n = 0;
	int rv = api_handle_fast(snap, &root_peer, body, len, &out, &n, NULL);

	assert_true(rv == 0 || rv == 1);
	if (rv)
		return NULL;
	resp = ebpfmon__v1__response__unpack(NULL, n, out);
	free(out);
	assert_non_null(resp);
	return resp;
}

/* Run the snapshots' slices until a cycle publishes. */
static void cycle(struct fixture *f, struct api_snap *snap)
{
	uint64_t next;

	for (int i = 0; i < 1000; i++) {
		uint64_t now = api_snap_now();

		if (!api_snap_due(snap))
			api_snap_want(snap, 0);
		else if (api_snap_due(snap) > now) /* as the loop would: not before it is due */
			usleep((useconds_t)((api_snap_due(snap) - now) / 1000 + 1));
		if (api_snap_step(snap, &f->policy, NULL, api_snap_now(), &next))
			return;
	}
	fail_msg("no snapshot published after 1000 slices");
}

static void test_snapshots(void **state)
{
	struct fixture *f = *state;
	struct api_snap *snap;
	Ebpfmon__V1__Response *resp;
	uint8_t body[64];
	size_t len;
	void *out = NULL;
	size_t n;

	if (!f->have_maps)
		skip();
	fill_ip_stats(f);
	assert_int_equal(api_snap_create(&snap, &f->maps, api_snap_now()), 0);
	f->env.snap = snap;

	/* nothing published yet: nng's thread hands over, the loop parks the request */
	len = pack_status(body);
	assert_null(fast(snap, body, len));
	assert_int_equal(api_handle(&f->env, &root_peer, body, len, &out, &n, NULL), 1);
	/* a malformed request needs no snapshot */
	resp = fast(snap, "\xff\xff", 2);
	assert_non_null(resp);
	expect(resp, ST(MALFORMED), "not an ebpfmon.v1.Request");

	cycle(f, snap);
	resp = fast(snap, body, len);
	assert_non_null(resp);
	assert_int_equal(resp->status, ST(OK));
	assert_int_equal(resp->get_monitor_status->tracked_addresses, SNAP_ADDRS);
	assert_int_equal(resp->get_monitor_status->active_bans, 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* the top list by packets and by bytes, with connections; twice (the kept reply) */
	for (int again = 0; again < 2; again++) {
		len = pack_top(body, 5, false);
		resp = fast(snap, body, len);
		assert_non_null(resp);
		assert_int_equal(resp->get_network_stats->n_top, 5);
		assert_int_equal(resp->get_network_stats->tracked_addresses, SNAP_ADDRS);
		assert_string_equal(resp->get_network_stats->top[0]->address, "198.18.2.43");
		assert_int_equal(resp->get_network_stats->top[0]->packets, SNAP_ADDRS);
		assert_int_equal(resp->get_network_stats->top[0]->connections, 3);
		assert_false(resp->get_network_stats->top[0]->banned);
		assert_int_equal(resp->get_network_stats->top[4]->packets, SNAP_ADDRS - 4);
		/* when ip_stats was read: within the last minute */
		assert_true(resp->get_network_stats->as_of_unix_ms >
			    (int64_t)time(NULL) * 1000 - 60000);
		ebpfmon__v1__response__free_unpacked(resp, NULL);
	}
	len = pack_top(body, 3, true);
	resp = fast(snap, body, len);
	assert_non_null(resp);
	assert_string_equal(resp->get_network_stats->top[0]->address, "198.18.1.0");
	assert_int_equal(resp->get_network_stats->top[0]->bytes, SNAP_ADDRS * 1000);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* a ban shows at once, in the status and in the top list; so does the unban */
	resp = ban_call(f, &root_peer, "198.18.2.43", 60, false, NULL);
	assert_int_equal(resp->status, ST(OK));
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	len = pack_status(body);
	resp = fast(snap, body, len);
	assert_int_equal(resp->get_monitor_status->active_bans, 1);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	len = pack_top(body, 5, false);
	resp = fast(snap, body, len);
	assert_true(resp->get_network_stats->top[0]->banned);
	assert_false(resp->get_network_stats->top[1]->banned);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	/* a network ban too, and a ban made during a cycle counts in what it publishes */
	api_snap_want(snap, 0);
	api_snap_step(snap, &f->policy, NULL, api_snap_now(), &(uint64_t){0});
	resp = ban_call(f, &root_peer, "198.18.2.0/24", 60, false, NULL);
	assert_int_equal(resp->status, ST(OK));
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	cycle(f, snap);
	len = pack_status(body);
	resp = fast(snap, body, len);
	assert_int_equal(resp->get_monitor_status->active_bans, 2);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	len = pack_top(body, 5, false);
	resp = fast(snap, body, len);
	assert_true(resp->get_network_stats->top[1]->banned); /* 198.18.2.42, by the network */
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	expect(unban_call(f, &root_peer, "198.18.2.0/24"), ST(OK), NULL);
	expect(unban_call(f, &root_peer, "198.18.2.43"), ST(OK), NULL);
	len = pack_status(body);
	resp = fast(snap, body, len);
	assert_int_equal(resp->get_monitor_status->active_bans, 0);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	len = pack_top(body, 5, false);
	resp = fast(snap, body, len);
	assert_false(resp->get_network_stats->top[0]->banned);
	assert_false(resp->get_network_stats->top[1]->banned);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* more than were kept (100 per order, 300 tracked): the loop's, after a cycle */
	len = pack_top(body, 200, false);
	assert_null(fast(snap, body, len));
	assert_int_equal(api_handle(&f->env, &root_peer, body, len, &out, &n, NULL), 1);
	cycle(f, snap);
	resp = fast(snap, body, len);
	assert_non_null(resp);
	assert_int_equal(resp->get_network_stats->n_top, 200);
	assert_int_equal(resp->get_network_stats->top[199]->packets, SNAP_ADDRS - 199);
	ebpfmon__v1__response__free_unpacked(resp, NULL);

	/* calls of the store and the policy are the loop's */
	{
		Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
		Ebpfmon__V1__GetMaliciousIPsRequest g =
			EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;

		rq.version = 1;
		rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS;
		rq.get_malicious_ips = &g;
		len = ebpfmon__v1__request__pack(&rq, body);
		assert_null(fast(snap, body, len));
	}
	f->env.snap = NULL;
	api_snap_destroy(snap);
}

/* The status's loader_running of a fresh cycle. */
static bool loader_seen(struct fixture *f, struct api_snap *snap)
{
	Ebpfmon__V1__Response *resp;
	uint8_t body[64];
	size_t len = pack_status(body);
	bool running;

	cycle(f, snap);
	resp = fast(snap, body, len);
	assert_non_null(resp);
	assert_int_equal(resp->status, ST(OK));
	running = resp->get_monitor_status->loader_running;
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	return running;
}

/*
 * Whether the loader runs is whether a process holds the flock on links/ of the pin root,
 * tried without /proc/locks (whose read holds up every file lock of the system): a lock on the
 * pin root, which any reader of the pins may take, does not count; the cycle after the
 * holder went says so.
 */
static void test_snapshot_loader(void **state)
{
	struct fixture *f = *state;
	char links[sizeof(f->cfg.pin_root) + 16];
	struct api_snap *snap;
	int ready[2], root_fd;
	pid_t child;
	char c;

	if (!f->have_maps)
		skip();
	snprintf(links, sizeof(links), "%s/%s", f->cfg.pin_root, EBPFMON_PIN_LINKS);
	assert_int_equal(mkdir(f->cfg.pin_root, 0700), 0);
	assert_int_equal(mkdir(links, 0700), 0);
	assert_int_equal(api_snap_create(&snap, &f->maps, api_snap_now()), 0);
	/* a reader's lock on the pin root (the loader's lock before) is no loader */
	root_fd = open(f->cfg.pin_root, O_RDONLY | O_DIRECTORY);
	assert_true(root_fd >= 0);
	assert_int_equal(flock(root_fd, LOCK_EX | LOCK_NB), 0);
	assert_false(loader_seen(f, snap));
	close(root_fd);

	assert_int_equal(pipe(ready), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) { /* the loader: holds the lock until killed */
		int fd = open(links, O_RDONLY | O_DIRECTORY);

		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) || write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);

	assert_true(loader_seen(f, snap));
	assert_true(loader_seen(f, snap)); /* trying it did not take it from the holder */
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_false(loader_seen(f, snap)); /* gone: the next cycle says so */
	{ /* and the lock is free again: a loader starting now takes it */
		int fd = open(links, O_RDONLY | O_DIRECTORY);

		assert_true(fd >= 0);
		assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
		close(fd);
	}
	api_snap_destroy(snap);
	rmdir(links);
	rmdir(f->cfg.pin_root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test(test_may_change),
		cmocka_unit_test(test_tls_may_change),
		cmocka_unit_test_setup_teardown(test_not_permitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malicious_ips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_anomalies_and_snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ban_unban, setup_maps, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run, setup_maps, teardown),
		cmocka_unit_test_setup_teardown(test_ban_waits_for_worker, setup_maps, teardown),
		cmocka_unit_test_setup_teardown(test_snapshots, setup_all_maps, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_loader, setup_all_maps, teardown),
	};

	log_init("test_api", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
