// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The SQLite store on a temporary database: schema and migrations, the rows each table
 * keeps, the listings the API serves, retention, batches, and a database that cannot be
 * written (read-only, locked, file size limit) which must fail cleanly and recover.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "addr.h"
#include "log.h"
#include "store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ebpfmon-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/ebpfmon.db", f->dir);
	*state = f;
	return 0;
}

/* Open the fixture's database with store_open(), which must succeed. */
static int setup_open(void **state)
{
	struct fixture *f;

	if (setup(state))
		return -1;
	f = *state;
	return store_open(f->path, &f->st) ? -1 : 0;
}

static int teardown(void **state)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", ".x"};
	struct fixture *f = *state;
	char p[160];
	unsigned int i;

	store_close(f->st);
	chmod(f->dir, 0700);
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- helpers --- */

/* One integer from sql on a separate connection to path; -1 on any error. */
static int64_t sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Run sql on a separate connection to path; expects success. */
static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	assert_int_equal(
		sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
		SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
}

static struct addr_cidr net_of(const char *s)
{
	struct addr_cidr c;

	assert_int_equal(cidr_parse(s, &c), 0);
	return c;
}

static struct store_ban ban_of(const char *net, enum ebpfmon_ban_reason reason, int64_t at)
{
	struct store_ban b;

	memset(&b, 0, sizeof(b));
	b.net = net_of(net);
	b.reason = reason;
	b.source = reason == EBPFMON_BAN_MANUAL ? STORE_SOURCE_MANUAL : STORE_SOURCE_AUTO;
	b.banned_at = at;
	b.expires_at = at + 3600;
	return b;
}

static int64_t insert_ban(struct store *st, const char *net, enum ebpfmon_ban_reason reason,
			  int64_t at)
{
	struct store_ban b = ban_of(net, reason, at);
	int64_t id = store_ban_insert(st, &b);

	assert_true(id > 0);
	return id;
}

#define MAX_ROWS 64

/* What a listing passed to its callback. */
struct rows {
	int n;
	int stop_after; /* 0: never stop */
	struct store_ban bans[MAX_ROWS];
	struct store_anomaly anomalies[MAX_ROWS];
	struct store_net_stats stats[MAX_ROWS];
	struct store_top top[MAX_ROWS][8];
	size_t ntop[MAX_ROWS];
};

static int collect_ban(const struct store_ban *b, void *ctx)
{
	struct rows *r = ctx;

	assert_true(r->n < MAX_ROWS);
	r->bans[r->n++] = *b;
	return r->stop_after && r->n >= r->stop_after ? 1 : 0;
}

static int collect_anomaly(const struct store_anomaly *a, void *ctx)
{
	struct rows *r = ctx;

	assert_true(r->n < MAX_ROWS);
	r->anomalies[r->n++] = *a;
	return 0;
}

static int collect_stats(const struct store_net_stats *s, const struct store_top *top, size_t ntop,
			 void *ctx)
{
	struct rows *r = ctx;

	assert_true(r->n < MAX_ROWS);
	r->stats[r->n] = *s;
	r->ntop[r->n] = ntop;
	if (ntop) /* top is NULL without rows */
		memcpy(r->top[r->n], top, (ntop > 8 ? 8 : ntop) * sizeof(*top));
	else
		assert_null(top);
	r->n++;
	return 0;
}

static int fail_with_eintr(const struct store_ban *b, void *ctx)
{
	(void)b;
	(void)ctx;
	return -EINTR;
}

static const char *ban_text(const struct store_ban *b, char *buf)
{
	return cidr_format(&b->net, buf, ADDR_STRLEN);
}

static int64_t list_bans(struct store *st, const struct store_query *q, struct rows *r)
{
	memset(r, 0, sizeof(*r));
	return store_ban_list(st, q, collect_ban, r);
}

/* --- schema --- */

static unsigned int file_mode(const char *path, const char *suffix)
{
	char p[600];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) ? 01000 /* missing */ : (unsigned int)(st.st_mode & 07777);
}

/*
 * The database, its -wal and its -shm are its owner's alone, whatever the umask: a reader
 * could hold a read transaction and keep every checkpoint from emptying the WAL. A file an
 * earlier version left readable by the group is narrowed at the next open for writing.
 */
static void test_owner_only(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	mode_t old = umask(022);
	int fd;

	assert_int_equal(store_open(f->path, &st), 0);
	assert_int_equal(file_mode(f->path, ""), 0600);
	assert_int_equal(file_mode(f->path, "-wal"), 0600);
	assert_int_equal(file_mode(f->path, "-shm"), 0600);
	store_close(st);

	/* left by an earlier version, group-readable, with a WAL of a crashed run */
	assert_int_equal(chmod(f->path, 0640), 0);
	{
		char p[600];

		snprintf(p, sizeof(p), "%s-wal", f->path);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(store_open(f->path, &st), 0);
	assert_int_equal(file_mode(f->path, ""), 0600);
	assert_int_equal(file_mode(f->path, "-wal"), 0600);
	assert_int_equal(file_mode(f->path, "-shm"), 0600);
	store_close(st);
	umask(old);
}

static void test_migrate_from_empty(void **state)
{
	struct fixture *f = *state;
	struct store *st;

	assert_int_equal(store_open(f->path, &st), 0);
	assert_non_null(st);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	assert_true(store_healthy(st));
	assert_string_equal(store_last_error(st), "");

	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
					  " AND name IN ('malicious_ips', 'network_stats',"
					  " 'network_stats_top', 'system_anomalies')"),
			 4);
	assert_true(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'") >=
		    8);
	/* WAL is a property of the file: a second connection sees it */
	{
		sqlite3 *db;
		sqlite3_stmt *s;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
		sqlite3_finalize(s);
		sqlite3_close(db);
	}
	store_close(st);

	/* opening again applies nothing and keeps the version */
	assert_int_equal(store_open(f->path, &st), 0);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct store_net_stats ns = {.ts = 1000, .rx_packets = 5};
	struct store_anomaly a = {
		.kind = STORE_ANOMALY_MEMORY, .started_at = 990, .peak = 91.5, .threshold = 85};
	struct store *st;
	struct rows r;
	char buf[ADDR_STRLEN];

	assert_int_equal(store_open(f->path, &st), 0);
	insert_ban(st, "2001:db8::7", EBPFMON_BAN_URL_RULE, 1000);
	assert_true(store_stats_insert(st, &ns, NULL, 0) > 0);
	assert_true(store_anomaly_open(st, &a) > 0);
	store_close(st);

	assert_int_equal(store_open(f->path, &st), 0);
	assert_int_equal(list_bans(st, NULL, &r), 1);
	assert_string_equal(ban_text(&r.bans[0], buf), "2001:db8::7");
	assert_int_equal(r.bans[0].reason, EBPFMON_BAN_URL_RULE);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, NULL, collect_stats, &r), 1);
	assert_int_equal(r.stats[0].rx_packets, 5);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, NULL, collect_anomaly, &r), 1);
	assert_int_equal(r.anomalies[0].kind, STORE_ANOMALY_MEMORY);
	store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	static char dummy;
	struct store *st = (struct store *)&dummy; /* must come back NULL */
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
	sql_exec(f->path, sql);
	assert_int_equal(store_open(f->path, &st), -ENOTSUP);
	assert_null(st);
	assert_int_equal(store_open_readonly(f->path, &st), -ENOTSUP);
	assert_null(st);
	/* and the file is left as it was */
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master"), 0);
}

/* A migration that fails leaves the file at its previous version, with nothing half-made. */
static void test_failed_migration_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct store *st;

	sql_exec(f->path, "CREATE TABLE network_stats (something_else)");
	assert_true(store_open(f->path, &st) < 0);
	assert_null(st);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name IN"
					  " ('malicious_ips', 'system_anomalies')"),
			 0);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char p[160];
	FILE *fp;

	/* a folder that does not exist */
	snprintf(p, sizeof(p), "%s/missing/ebpfmon.db", f->dir);
	assert_int_equal(store_open(p, &st), -ENOENT);
	assert_null(st);
	assert_true(store_open("", &st) < 0);

	/* read-only open of a file that does not exist: nothing is created */
	assert_true(store_open_readonly(f->path, &st) < 0);
	assert_int_equal(access(f->path, F_OK), -1);

	/* a file that is not a database */
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, but it is long enough to have a header...\n"
	      "this is not an SQLite database, but it is long enough to have a header...\n",
	      fp);
	fclose(fp);
	assert_int_equal(store_open(f->path, &st), -EBADMSG);
	assert_null(st);
	unlink(f->path);

	/* a folder we may not write to (root may: then this case says nothing) */
	assert_int_equal(chmod(f->dir, 0555), 0);
	if (access(f->dir, W_OK) == 0) {
		print_message("running with CAP_DAC_OVERRIDE: unwritable-folder case skipped\n");
	} else {
		assert_int_equal(store_open(f->path, &st), -EACCES);
		assert_null(st);
	}
	chmod(f->dir, 0700);
}

/* --- bans --- */

static void test_bans(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_query q = {0};
	struct store_ban b, got;
	struct addr_cidr n;
	struct rows r;
	char buf[ADDR_STRLEN];
	int64_t id1, id2, id3, id4, id5;

	b = ban_of("192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1000);
	b.hits = 3;
	b.escalation_level = 2;
	id1 = store_ban_insert(st, &b);
	assert_true(id1 > 0);
	b = ban_of("2001:db8::1", EBPFMON_BAN_URL_RULE, 1010);
	snprintf(b.rule, sizeof(b.rule), "/wp-admin*");
	snprintf(b.path, sizeof(b.path), "/wp-admin/x\\x0a");
	b.expires_at = 0; /* permanent */
	id2 = store_ban_insert(st, &b);
	/* the canonical path of the request that matched */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE"
					  " path = '/wp-admin/x\\x0a' AND rule = '/wp-admin*'"),
			 1);
	id3 = insert_ban(st, "198.18.0.0/24", EBPFMON_BAN_ESCALATED, 1020);
	id4 = insert_ban(st, "192.0.2.1", EBPFMON_BAN_MANUAL, 1030);
	b = ban_of("192.0.2.9", EBPFMON_BAN_CONN_LIMIT, 1040);
	b.dry_run = true;
	id5 = store_ban_insert(st, &b);
	assert_true(id2 > id1 && id3 > id2 && id4 > id3 && id5 > id4);

	/* the table holds printed addresses, network prefixes in their family */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE"
					  " address = '198.18.0.0' AND prefix_len = 24"),
			 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE"
					  " address = '192.0.2.1' AND prefix_len IS NULL"),
			 2);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE"
					  " source = 'manual' AND reason = 'manual'"),
			 1);

	/* everything, newest first, every field back */
	assert_int_equal(list_bans(st, NULL, &r), 5);
	assert_int_equal(r.bans[0].id, id5);
	assert_int_equal(r.bans[4].id, id1);
	assert_true(r.bans[0].dry_run);
	assert_string_equal(ban_text(&r.bans[2], buf), "198.18.0.0/24");
	assert_int_equal(r.bans[2].net.prefixlen, 120);
	assert_string_equal(r.bans[3].rule, "/wp-admin*");
	assert_int_equal(r.bans[3].expires_at, 0);
	assert_int_equal(r.bans[4].hits, 3);
	assert_int_equal(r.bans[4].escalation_level, 2);
	assert_int_equal(r.bans[4].expires_at, 4600);
	assert_int_equal(r.bans[4].ended_at, 0);
	assert_int_equal(r.bans[4].source, STORE_SOURCE_AUTO);
	assert_int_equal(r.bans[1].source, STORE_SOURCE_MANUAL);

	/* end one, unban an address, count hits */
	assert_int_equal(store_ban_end(st, id1, 1100), 0);
	assert_int_equal(store_ban_end(st, id1, 1200), -ENOENT); /* already ended */
	assert_int_equal(store_ban_end(st, 999999, 1200), -ENOENT);
	n = net_of("2001:db8::1");
	assert_int_equal(store_ban_end_net(st, &n, 1150), 1);
	assert_int_equal(store_ban_end_net(st, &n, 1160), 0);
	assert_int_equal(store_ban_end_why(st, id2, 1170, "removed from the map"), -ENOENT);
	assert_int_equal(store_ban_add_hits(st, id4, 2), 0);
	assert_int_equal(store_ban_add_hits(st, id4, UINT64_MAX), 0); /* saturates */
	assert_int_equal(store_ban_add_hits(st, 999999, 1), -ENOENT);

	/* active only: bans in force, not id5, the would-ban of a dry run */
	q.active_only = true;
	assert_int_equal(list_bans(st, &q, &r), 2);
	assert_int_equal(r.bans[0].id, id4);
	assert_int_equal(r.bans[0].hits, INT64_MAX);
	assert_int_equal(r.bans[1].id, id3);

	/* one address, ended or not */
	n = net_of("192.0.2.1");
	memset(&q, 0, sizeof(q));
	q.net = &n;
	assert_int_equal(list_bans(st, &q, &r), 2);
	assert_int_equal(r.bans[0].id, id4);
	assert_int_equal(r.bans[1].id, id1);
	assert_int_equal(r.bans[1].ended_at, 1100);

	/* time range, limit, offset */
	memset(&q, 0, sizeof(q));
	q.since = 1010;
	q.until = 1030;
	assert_int_equal(list_bans(st, &q, &r), 3);
	assert_int_equal(r.bans[0].id, id4);
	assert_int_equal(r.bans[2].id, id2);
	q.limit = 2;
	assert_int_equal(list_bans(st, &q, &r), 2);
	assert_int_equal(r.bans[0].id, id4);
	q.offset = 2;
	assert_int_equal(list_bans(st, &q, &r), 1);
	assert_int_equal(r.bans[0].id, id2);
	q.offset = 3;
	assert_int_equal(list_bans(st, &q, &r), 0);

	/* a callback stops the walk */
	memset(&r, 0, sizeof(r));
	r.stop_after = 2;
	assert_int_equal(store_ban_list(st, NULL, collect_ban, &r), 2);
	assert_int_equal(store_ban_list(st, NULL, fail_with_eintr, NULL), -EINTR);

	/* the active ban of an address */
	assert_int_equal(store_ban_find_active(st, &n, &got), 1);
	assert_int_equal(got.id, id4);
	n = net_of("2001:db8::1");
	assert_int_equal(store_ban_find_active(st, &n, &got), 0);
	n = net_of("198.18.0.0/24");
	assert_int_equal(store_ban_find_active(st, &n, &got), 1);
	assert_int_equal(got.id, id3);
	n = net_of("198.18.0.5"); /* an address inside is not the network's row */
	assert_int_equal(store_ban_find_active(st, &n, &got), 0);

	/* reconciliation: active ones, oldest first; a dry run's would-ban (id5) is never one */
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_ban_list_active(st, collect_ban, &r), 2);
	assert_int_equal(r.bans[0].id, id3);
	assert_int_equal(r.bans[1].id, id4);
	memset(&q, 0, sizeof(q));
	q.active_only = true;
	assert_int_equal(list_bans(st, &q, &r), 2);
	assert_int_equal(r.bans[0].id, id4);
	assert_int_equal(r.bans[1].id, id3);

	/* expired while nobody watched: ended at their expiry, saying so */
	assert_int_equal(store_ban_end_expired(st, 4635), 2); /* id3 (4620), id4 (4630) */
	assert_int_equal(list_bans(st, &q, &r), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE"
					  " end_reason = 'expired'"),
			 2);
	n = net_of("192.0.2.1");
	q.active_only = false;
	q.net = &n;
	assert_int_equal(list_bans(st, &q, &r), 2);
	assert_int_equal(r.bans[0].ended_at, 4630);

	/* refused inputs write nothing */
	b = ban_of("192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1);
	b.reason = (enum ebpfmon_ban_reason)42;
	assert_int_equal(store_ban_insert(st, &b), -EINVAL);
	b = ban_of("192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1);
	b.source = (enum store_ban_source)7;
	assert_int_equal(store_ban_insert(st, &b), -EINVAL);
	b = ban_of("192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1);
	b.net.prefixlen = 120; /* host bits set */
	assert_int_equal(store_ban_insert(st, &b), -EINVAL);
	b.net.prefixlen = 129;
	assert_int_equal(store_ban_insert(st, &b), -EINVAL);
	b = ban_of("192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1);
	memset(b.rule, 'x', sizeof(b.rule)); /* no NUL */
	assert_int_equal(store_ban_insert(st, &b), -EINVAL);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 5);
	assert_true(store_healthy(st));
}

/* A ban ended for a reason says it; the analyzer's notes survive a reopen. */
static int first_ban(const struct store_ban *b, void *ctx)
{
	*(struct store_ban *)ctx = *b;
	return 0;
}

static void test_end_reason_and_state(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	char buf[64];
	int64_t id = insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 100);

	assert_int_equal(store_ban_end_why(st, id, 150, "removed from the map"), 0);
	assert_int_equal(store_ban_end_why(st, id, 160, "again"), -ENOENT);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE ended_at = 150"
					  " AND end_reason = 'removed from the map'"),
			 1);
	{
		/* the listings read it back, and the path of a URL ban */
		struct store_ban b = ban_of("192.0.2.2", EBPFMON_BAN_URL_RULE, 110), got;
		struct addr_cidr n = net_of("192.0.2.2");

		snprintf(b.path, sizeof(b.path), "/wp-admin/x");
		assert_true(store_ban_insert(st, &b) > 0);
		assert_int_equal(store_ban_find_active(st, &n, &got), 1);
		assert_string_equal(got.path, "/wp-admin/x");
		assert_string_equal(got.end_reason, "");
		n = net_of("192.0.2.1");
		assert_int_equal(
			store_ban_list(st, &(struct store_query){.net = &n}, first_ban, &got), 1);
		assert_string_equal(got.end_reason, "removed from the map");
	}

	assert_int_equal(store_state_get(st, "bans_map", buf, sizeof(buf)), 0);
	assert_int_equal(store_state_set(st, "bans_map", "boot-1 id 7"), 0);
	assert_int_equal(store_state_set(st, "bans_map", "boot-1 id 9"), 0);
	store_close(st);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_state_get(f->st, "bans_map", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "boot-1 id 9");
}

/* What reconciliation does: end bans from inside the walk over the active ones. */
static int end_each(const struct store_ban *b, void *ctx)
{
	struct store *st = ctx;

	return store_ban_end(st, b->id, b->banned_at + 1);
}

static void test_reconcile_writes_in_callback(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct rows r;
	int i;

	for (i = 0; i < 5; i++)
		insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 100 + i);
	assert_int_equal(store_ban_list_active(st, end_each, st), 5);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_ban_list_active(st, collect_ban, &r), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"
					  " WHERE ended_at = banned_at + 1"),
			 5);
}

static void test_escalation_count(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_ban b;
	struct addr_cidr n = net_of("192.0.2.50"), other = net_of("192.0.2.51");

	assert_int_equal(store_ban_count_since(st, &n, 0, false), 0);
	insert_ban(st, "192.0.2.50", EBPFMON_BAN_CONN_LIMIT, 100);
	store_ban_end(st, 1, 200);
	insert_ban(st, "192.0.2.50", EBPFMON_BAN_URL_RULE, 500);
	insert_ban(st, "192.0.2.50", EBPFMON_BAN_CONN_LIMIT, 900);
	insert_ban(st, "192.0.2.51", EBPFMON_BAN_CONN_LIMIT, 900);
	insert_ban(st, "192.0.2.0/24", EBPFMON_BAN_ESCALATED, 900);
	b = ban_of("192.0.2.50", EBPFMON_BAN_CONN_LIMIT, 950);
	b.dry_run = true;
	assert_true(store_ban_insert(st, &b) > 0);

	/* ended or not, since a time, one address only, real and dry run apart */
	assert_int_equal(store_ban_count_since(st, &n, 0, false), 3);
	assert_int_equal(store_ban_count_since(st, &n, 100, false), 3);
	assert_int_equal(store_ban_count_since(st, &n, 101, false), 2);
	assert_int_equal(store_ban_count_since(st, &n, 900, false), 1);
	assert_int_equal(store_ban_count_since(st, &n, 901, false), 0);
	assert_int_equal(store_ban_count_since(st, &n, 0, true), 1);
	assert_int_equal(store_ban_count_since(st, &other, 0, false), 1);
	n = net_of("192.0.2.0/24");
	assert_int_equal(store_ban_count_since(st, &n, 0, false), 1);
}

/* What store_ban_requests() passed. */
struct reqs {
	int n;
	struct store_request r[8];
};

static int collect_req(const struct store_request *r, void *ctx)
{
	struct reqs *q = ctx;

	if (q->n < 8)
		q->r[q->n] = *r;
	q->n++;
	return 0;
}

static void test_ban_requests(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_ban b;
	struct reqs q = {0};
	char a[ADDR_STRLEN];

	/* a URL ban keeps its request (seq 0 and the top of the range are requests too) */
	b = ban_of("192.0.2.7", EBPFMON_BAN_URL_RULE, 1000);
	b.has_req = true;
	b.sport = 65535;
	b.dport = 80;
	b.seq = UINT32_MAX;
	assert_true(store_ban_insert(st, &b) > 0);
	b = ban_of("2001:db8::7", EBPFMON_BAN_URL_RULE, 1001);
	b.has_req = true;
	b.sport = 40000;
	b.dport = 8080;
	b.seq = 0;
	b.dry_run = true;
	assert_true(store_ban_insert(st, &b) > 0);
	/* too old, no request (conn_limit, a URL ban without one), a network: not listed */
	b = ban_of("192.0.2.8", EBPFMON_BAN_URL_RULE, 999);
	b.has_req = true;
	assert_true(store_ban_insert(st, &b) > 0);
	insert_ban(st, "192.0.2.9", EBPFMON_BAN_CONN_LIMIT, 1002);
	insert_ban(st, "192.0.2.10", EBPFMON_BAN_URL_RULE, 1002);
	b = ban_of("192.0.2.0/24", EBPFMON_BAN_URL_RULE, 1002);
	b.has_req = true;
	assert_true(store_ban_insert(st, &b) > 0);

	assert_int_equal(store_ban_requests(st, 1000, collect_req, &q), 2);
	assert_int_equal(q.n, 2);
	assert_string_equal(addr_format(&q.r[0].addr, a, sizeof(a)), "192.0.2.7");
	assert_int_equal(q.r[0].sport, 65535);
	assert_int_equal(q.r[0].dport, 80);
	assert_int_equal(q.r[0].seq, UINT32_MAX);
	assert_int_equal(q.r[0].banned_at, 1000);
	assert_string_equal(addr_format(&q.r[1].addr, a, sizeof(a)), "2001:db8::7");
	assert_int_equal(q.r[1].sport, 40000);
	assert_int_equal(q.r[1].dport, 8080);
	assert_int_equal(q.r[1].seq, 0);
	/* the columns of a ban without a request are NULL, as a user querying sees them */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE sport IS NULL"
					  " AND dport IS NULL AND seq IS NULL"),
			 2);
}

/* --- network_stats --- */

static struct store_top top_of(const char *addr, uint64_t packets)
{
	struct store_top t = {
		.packets = packets, .bytes = packets * 100, .syns = packets / 10, .connections = 1};

	assert_int_equal(addr_parse(addr, &t.addr), 0);
	return t;
}

static void test_stats(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {.ts = 2000,
				     .rx_packets = 100,
				     .rx_bytes = 10000,
				     .tx_packets = 50,
				     .tx_bytes = 5000,
				     .tracked = 3,
				     .bans_active = 1,
				     .drops = 7};
	struct store_top top[3];
	struct store_query q = {0};
	struct rows r;
	char buf[ADDR_STRLEN];
	int64_t id1, id2, id3;

	top[0] = top_of("192.0.2.10", 30);
	top[1] = top_of("2001:db8::10", 60);
	top[2] = top_of("192.0.2.11", 10);
	id1 = store_stats_insert(st, &ns, top, 3);
	assert_true(id1 > 0);
	ns.ts = 2010;
	ns.rx_bytes = UINT64_MAX; /* clamps, never wraps negative */
	id2 = store_stats_insert(st, &ns, top, 1);
	ns.ts = 2020;
	id3 = store_stats_insert(st, &ns, NULL, 0);
	assert_true(id2 > id1 && id3 > id2);
	assert_int_equal(store_stats_insert(st, &ns, NULL, 2), -EINVAL);

	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, NULL, collect_stats, &r), 3);
	assert_int_equal(r.stats[0].id, id3);
	assert_int_equal(r.ntop[0], 0);
	assert_int_equal(r.stats[1].rx_bytes, INT64_MAX);
	assert_int_equal(r.ntop[1], 1);
	/* the oldest, with its top rows by packets */
	assert_int_equal(r.stats[2].ts, 2000);
	assert_int_equal(r.stats[2].rx_packets, 100);
	assert_int_equal(r.stats[2].rx_bytes, 10000);
	assert_int_equal(r.stats[2].tx_packets, 50);
	assert_int_equal(r.stats[2].tx_bytes, 5000);
	assert_int_equal(r.stats[2].tracked, 3);
	assert_int_equal(r.stats[2].bans_active, 1);
	assert_int_equal(r.stats[2].drops, 7);
	assert_int_equal(r.ntop[2], 3);
	assert_string_equal(addr_format(&r.top[2][0].addr, buf, sizeof(buf)), "2001:db8::10");
	assert_int_equal(r.top[2][0].packets, 60);
	assert_int_equal(r.top[2][0].bytes, 6000);
	assert_int_equal(r.top[2][0].syns, 6);
	assert_int_equal(r.top[2][0].connections, 1);
	assert_string_equal(addr_format(&r.top[2][1].addr, buf, sizeof(buf)), "192.0.2.10");
	assert_string_equal(addr_format(&r.top[2][2].addr, buf, sizeof(buf)), "192.0.2.11");

	/* time range, limit, offset */
	q.since = 2005;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, &q, collect_stats, &r), 2);
	q.until = 2015;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, &q, collect_stats, &r), 1);
	assert_int_equal(r.stats[0].id, id2);
	memset(&q, 0, sizeof(q));
	q.limit = 1;
	q.offset = 1;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, &q, collect_stats, &r), 1);
	assert_int_equal(r.stats[0].id, id2);

	/* appending top rows: to a snapshot that exists, not to one that does not */
	assert_int_equal(store_stats_add_top(st, id3, top, 3), 3);
	assert_int_equal(store_stats_add_top(st, id3 + 100, top, 3), -ENOENT);
	assert_int_equal(store_stats_add_top(st, id3, NULL, 1), -EINVAL);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"), 7);
	assert_true(store_healthy(st));
}

/* The bulk path: many top rows in one call, one transaction. */
static void test_stats_bulk_top(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {.ts = 1};
	enum { N = 20000 };
	struct store_top *top = calloc(N, sizeof(*top));
	int64_t id;
	int i;

	assert_non_null(top);
	for (i = 0; i < N; i++) {
		addr_from_v4(htonl(0xc6120000u + (uint32_t)i), &top[i].addr);
		top[i].packets = (uint64_t)i;
	}
	id = store_stats_insert(st, &ns, NULL, 0);
	assert_true(id > 0);
	assert_int_equal(store_stats_add_top(st, id, top, N), N);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"), N);
	assert_int_equal(sql_int(f->path, "SELECT count(DISTINCT address) FROM network_stats_top"),
			 N);
	free(top);
}

/* --- anomalies --- */

/* The totals of the API's listings: what the listing gives without its limit and offset. */
static int count_one(const void *row, void *ctx)
{
	(void)row;
	++*(int64_t *)ctx;
	return 0;
}

static int count_ban(const struct store_ban *b, void *ctx)
{
	return count_one(b, ctx);
}

static int count_anomaly(const struct store_anomaly *a, void *ctx)
{
	return count_one(a, ctx);
}

/* A read transaction on a read-only connection: one state of the database until it ends. */
static void test_read_transaction(void **state)
{
	struct fixture *f = *state;
	struct store_query q = {0};
	struct store *ro;

	insert_ban(f->st, "198.51.100.1", EBPFMON_BAN_CONN_LIMIT, 1000);
	assert_int_equal(store_open_readonly(f->path, &ro), 0);
	assert_int_equal(store_read_begin(ro), 0);
	assert_int_equal(store_ban_count(ro, &q), 1);
	insert_ban(f->st, "198.51.100.2", EBPFMON_BAN_CONN_LIMIT, 1010);
	assert_int_equal(store_ban_count(ro, &q), 1); /* the state it began with */
	store_read_end(ro);
	assert_int_equal(store_ban_count(ro, &q), 2);
	/* on the writer's connection it does nothing */
	assert_int_equal(store_read_begin(f->st), 0);
	insert_ban(f->st, "198.51.100.3", EBPFMON_BAN_CONN_LIMIT, 1020);
	store_read_end(f->st);
	assert_int_equal(store_ban_count(ro, &q), 3);
	store_close(ro);
}

static void test_counts_match_listings(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct addr_cidr one = net_of("198.51.100.7");
	struct store_anomaly a = {.peak = 90, .threshold = 80};
	const struct store_query qs[] = {
		{0},
		{.active_only = true},
		{.since = 1050},
		{.since = 1050, .until = 1080},
		{.active_only = true, .since = 1050},
		{.net = &one},
		{.net = &one, .active_only = true},
		{.net = &one, .since = 1060},
		{.limit = 2, .offset = 3}, /* the count ignores both */
	};
	const struct store_query aq[] = {
		{0},
		{.active_only = true},
		{.kind = STORE_ANOMALY_MEMORY},
		{.since = 1040},
		{.until = 1020},
		{.active_only = true, .kind = STORE_ANOMALY_CPU},
	};

	for (int i = 0; i < 12; i++) {
		struct store_ban b = ban_of(i % 3 ? "198.51.100.7" : "2001:db8::9",
					    EBPFMON_BAN_CONN_LIMIT, 1000 + 10 * i);
		int64_t id;

		b.dry_run = i == 5; /* a would-ban: never active */
		id = store_ban_insert(st, &b);
		assert_true(id > 0);
		if (i % 4 == 0)
			assert_int_equal(store_ban_end(st, id, b.banned_at + 5), 0);
		a.kind = (enum store_anomaly_kind)(1 + i % 3);
		a.started_at = 1000 + 10 * i;
		id = store_anomaly_open(st, &a);
		assert_true(id > 0);
		if (i % 2)
			assert_int_equal(store_anomaly_close(st, id, a.started_at + 7), 0);
	}
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct store_query all = qs[i];
		int64_t listed = 0;

		all.limit = 0;
		all.offset = 0;
		assert_true(store_ban_list(st, &all, count_ban, &listed) >= 0);
		assert_true(listed > 0 || i == 7);
		assert_int_equal(store_ban_count(st, &qs[i]), listed);
	}
	for (size_t i = 0; i < sizeof(aq) / sizeof(aq[0]); i++) {
		int64_t listed = 0;

		assert_true(store_anomaly_list(st, &aq[i], count_anomaly, &listed) >= 0);
		assert_true(listed > 0);
		assert_int_equal(store_anomaly_count(st, &aq[i]), listed);
	}
	assert_int_equal(store_ban_count(st, NULL), 12);
	assert_int_equal(store_anomaly_count(st, NULL), 12);
}

static void test_anomalies(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_anomaly a = {.kind = STORE_ANOMALY_CPU,
				  .started_at = 3000,
				  .peak = 91,
				  .threshold = 80,
				  .top_pid = 4242};
	struct store_query q = {0};
	struct rows r;
	int64_t cpu, mem, disk;

	snprintf(a.top_comm, sizeof(a.top_comm), "burn (x)");
	cpu = store_anomaly_open(st, &a);
	assert_true(cpu > 0);
	a.kind = STORE_ANOMALY_MEMORY;
	a.started_at = 3100;
	a.top_pid = 0;
	a.top_comm[0] = '\0';
	mem = store_anomaly_open(st, &a);
	a.kind = STORE_ANOMALY_DISK_IO;
	a.started_at = 3200;
	a.peak = 150;
	a.threshold = 100;
	disk = store_anomaly_open(st, &a);
	assert_true(mem > cpu && disk > mem);
	a.kind = (enum store_anomaly_kind)9;
	assert_int_equal(store_anomaly_open(st, &a), -EINVAL);
	a.kind = STORE_ANOMALY_CPU;
	a.peak = 0.0 / 0.0;
	assert_int_equal(store_anomaly_open(st, &a), -EINVAL);

	/* the peak only rises, and names the top process at the peak */
	assert_int_equal(store_anomaly_peak(st, cpu, 95.5, 4343, "other"), 1);
	assert_int_equal(store_anomaly_peak(st, cpu, 93, 1, "lower"), 0);
	assert_int_equal(store_anomaly_peak(st, cpu, 99, 0, NULL), 1); /* keeps the process */
	/* another process used the most over the episode: named without a new peak */
	assert_int_equal(store_anomaly_top(st, cpu, 5151, "stress-ng"), 0);
	assert_int_equal(store_anomaly_close(st, cpu, 3300), 0);
	assert_int_equal(store_anomaly_top(st, cpu, 1, "late"), -ENOENT); /* closed */
	assert_int_equal(store_anomaly_close(st, cpu, 3400), -ENOENT);
	assert_int_equal(store_anomaly_peak(st, cpu, 100, 1, "late"), 0); /* closed */

	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, NULL, collect_anomaly, &r), 3);
	assert_int_equal(r.anomalies[0].id, disk);
	assert_int_equal(r.anomalies[2].id, cpu);
	assert_int_equal(r.anomalies[2].kind, STORE_ANOMALY_CPU);
	assert_true(r.anomalies[2].peak == 99);
	assert_true(r.anomalies[2].threshold == 80);
	assert_int_equal(r.anomalies[2].top_pid, 5151);
	assert_string_equal(r.anomalies[2].top_comm, "stress-ng");
	assert_int_equal(r.anomalies[2].started_at, 3000);
	assert_int_equal(r.anomalies[2].ended_at, 3300);
	assert_int_equal(r.anomalies[1].top_pid, 0);
	assert_string_equal(r.anomalies[1].top_comm, "");
	assert_int_equal(r.anomalies[1].ended_at, 0);

	/* open only; one kind */
	q.active_only = true;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), 2);
	q.kind = STORE_ANOMALY_DISK_IO;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), 1);
	assert_int_equal(r.anomalies[0].id, disk);
	q.kind = (enum store_anomaly_kind)9;
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), -EINVAL);

	/* range by overlap: cpu ran 3000..3300, memory and disk are still open */
	memset(&q, 0, sizeof(q));
	q.since = 3350;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), 2);
	q.since = 3250;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), 3);
	q.until = 3150;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), 2);
	assert_int_equal(r.anomalies[0].id, mem);
	q.limit = 1;
	q.offset = 1;
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, &q, collect_anomaly, &r), 1);
	assert_int_equal(r.anomalies[0].id, cpu);

	/* a restart closes what the previous run left open, never before it started */
	assert_int_equal(store_anomaly_close_all(st, 3150), 2);
	assert_int_equal(
		sql_int(f->path, "SELECT ended_at FROM system_anomalies WHERE kind = 'disk_io'"),
		3200);
	assert_int_equal(store_anomaly_close_all(st, 4000), 0);
}

/* --- retention --- */

static void test_cleanup_by_count(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {0};
	struct store_anomaly a = {.kind = STORE_ANOMALY_CPU, .peak = 90, .threshold = 80};
	struct store_top top[2];
	struct rows r;
	int64_t id;
	int i;

	top[0] = top_of("192.0.2.1", 2);
	top[1] = top_of("192.0.2.2", 1);
	/* 40 bans: the even ones ended (the newest ended first), the odd ones active */
	for (i = 0; i < 40; i++) {
		id = insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1000 + i);
		if (i % 2 == 0)
			assert_int_equal(store_ban_end(st, id, 5000 - i), 0);
	}
	/* 30 snapshots with 2 top rows each */
	for (i = 0; i < 30; i++) {
		ns.ts = 1000 + i;
		assert_true(store_stats_insert(st, &ns, top, 2) > 0);
	}
	/* 12 anomalies, the first 8 closed */
	for (i = 0; i < 12; i++) {
		a.started_at = 1000 + i;
		id = store_anomaly_open(st, &a);
		if (i < 8)
			assert_int_equal(store_anomaly_close(st, id, 1100 + i), 0);
	}

	/* keep 30: 10 ended bans, 0 snapshots (30 = 30), 0 anomalies */
	assert_int_equal(store_cleanup(st, 30, 0, 9999), 10);
	/* the bans that ended first went first: those that ended latest remain */
	assert_int_equal(
		sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE ended_at IS NULL"), 20);
	assert_int_equal(sql_int(f->path, "SELECT min(ended_at) FROM malicious_ips"), 5000 - 18);

	/* keep 10: every ended ban goes and the 20 active stay; 20 snapshots; 2 anomalies */
	assert_int_equal(store_cleanup(st, 10, 0, 9999), 10 + 20 + 2);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 20);
	assert_int_equal(
		sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE ended_at IS NULL"), 20);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 10);
	assert_int_equal(sql_int(f->path, "SELECT min(ts) FROM network_stats"), 1020);
	/* their top rows went with them */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"), 20);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM system_anomalies"), 10);
	assert_int_equal(sql_int(f->path, "SELECT min(ended_at) FROM system_anomalies"), 1102);

	/* keep 1: active bans and open anomalies are never deleted */
	assert_int_equal(store_cleanup(st, 1, 0, 9999), 9 + 6);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 20);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM system_anomalies"), 4);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM system_anomalies"
					  " WHERE ended_at IS NULL"),
			 4);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_ban_list_active(st, collect_ban, &r), 20);

	/* nothing to do, or limits off */
	assert_int_equal(store_cleanup(st, 1, 0, 9999), 0);
	assert_int_equal(store_cleanup(st, 0, 0, 9999), 0);
}

static void test_cleanup_by_age(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {0};
	struct store_anomaly a = {.kind = STORE_ANOMALY_DISK_IO, .peak = 200, .threshold = 100};
	int64_t id;
	int i;

	/* now = 100000, max age 1000: anything that ended before 99000 goes */
	id = insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 10);
	store_ban_end(st, id, 20);				 /* old: goes */
	insert_ban(st, "192.0.2.2", EBPFMON_BAN_CONN_LIMIT, 10); /* old but active: stays */
	id = insert_ban(st, "192.0.2.3", EBPFMON_BAN_CONN_LIMIT, 10);
	store_ban_end(st, id, 99500); /* banned long ago, ended recently: stays */
	id = insert_ban(st, "192.0.2.4", EBPFMON_BAN_CONN_LIMIT, 98000);
	store_ban_end(st, id, 98999); /* goes */
	for (i = 0; i < 10; i++) {
		ns.ts = 98500 + i * 100; /* 98500..99400: five are older than 99000 */
		assert_true(store_stats_insert(st, &ns, NULL, 0) > 0);
	}
	a.started_at = 10;
	assert_true(store_anomaly_open(st, &a) > 0); /* open since long ago: stays */
	id = store_anomaly_open(st, &a);
	store_anomaly_close(st, id, 50); /* goes */
	a.started_at = 98000;
	id = store_anomaly_open(st, &a);
	store_anomaly_close(st, id, 99000); /* exactly max age: stays */

	assert_int_equal(store_cleanup(st, 0, 1000, 100000), 2 + 5 + 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 2);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips WHERE address IN"
					  " ('192.0.2.2', '192.0.2.3')"),
			 2);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 5);
	assert_int_equal(sql_int(f->path, "SELECT min(ts) FROM network_stats"), 99000);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM system_anomalies"), 2);
	assert_int_equal(store_cleanup(st, 0, 1000, 100000), 0);
}

/* A cleanup bigger than one chunk: several transactions, the same result. */
static void test_cleanup_chunks(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {0};
	int i;

	assert_int_equal(store_begin(st), 0);
	for (i = 0; i < 12000; i++) {
		ns.ts = i;
		assert_true(store_stats_insert(st, &ns, NULL, 0) > 0);
	}
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_cleanup(st, 500, 0, 20000), 11500);
	assert_int_equal(sql_int(f->path, "SELECT min(ts) FROM network_stats"), 11500);
	assert_int_equal(store_cleanup(st, 0, 100, 11700), 100);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 400);

	/* a run counts each table once: rows added during the run are the next run's */
	struct store_cleanup run = {0};

	assert_int_equal(store_begin(st), 0);
	for (i = 0; i < 600; i++) {
		ns.ts = 3000 + i;
		assert_true(store_stats_insert(st, &ns, NULL, 0) > 0);
	}
	assert_int_equal(store_commit(st), 0);
	/* 1000 rows, max_records 500: 500 over */
	assert_int_equal(store_cleanup_some(st, 500, 0, 20000, 300, &run), 300);
	for (i = 0; i < 50; i++) {
		ns.ts = 4000 + i;
		assert_true(store_stats_insert(st, &ns, NULL, 0) > 0);
	}
	assert_int_equal(store_cleanup_some(st, 500, 0, 20000, 300, &run), 200);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 550);
	/* the next run takes the rest */
	memset(&run, 0, sizeof(run));
	assert_int_equal(store_cleanup_some(st, 500, 0, 20000, 300, &run), 50);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 500);
}

/* Retention in slices of at most a limit of rows: the same end, never more per call. */
static void test_cleanup_some(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {0};
	int64_t n, total = 0;
	int i, calls = 0;

	assert_int_equal(store_begin(st), 0);
	for (i = 0; i < 2500; i++) {
		ns.ts = i;
		assert_true(store_stats_insert(st, &ns, NULL, 0) > 0);
	}
	assert_int_equal(store_commit(st), 0);
	/* 2000 rows over max_records 500: 300 a call, so 7 calls, the last one short */
	do {
		n = store_cleanup_some(st, 500, 0, 20000, 300, NULL);
		assert_true(n >= 0 && n <= 300);
		total += n;
		calls++;
	} while (n == 300);
	assert_int_equal(total, 2000);
	assert_int_equal(calls, 7);
	assert_int_equal(sql_int(f->path, "SELECT min(ts) FROM network_stats"), 2000);
	/* by age: 100 rows older than 2100 (now 2200, max age 100) */
	assert_int_equal(store_cleanup_some(st, 0, 100, 2200, 60, NULL), 60);
	assert_int_equal(store_cleanup_some(st, 0, 100, 2200, 60, NULL), 40);
	assert_int_equal(store_cleanup_some(st, 0, 100, 2200, 60, NULL), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 400);
}

static uint64_t mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Retention with a deadline: a call past it still does one count or chunk, so a run always
 * ends; a table's first chunk is 2 rows; the run deletes exactly what it counted, across
 * tables of different costs (snapshots with and without top addresses).
 */
static void test_cleanup_deadline(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {0};
	struct store_top top[10];
	struct store_cleanup run = {0};
	int64_t n, total = 0;
	int i, calls = 0;

	for (i = 0; i < 10; i++) {
		char a[32];

		snprintf(a, sizeof(a), "198.51.100.%d", i);
		top[i] = top_of(a, 10 - i);
	}
	assert_int_equal(store_begin(st), 0);
	for (i = 0; i < 3000; i++) {
		struct store_ban b = {
			.reason = EBPFMON_BAN_CONN_LIMIT,
			.hits = 1,
			.banned_at = i,
			.expires_at = i + 10,
			.ended_at = i + 10,
		};

		b.net.prefixlen = 128;
		assert_int_equal(addr_parse("198.51.100.1", &b.net.addr), 0);
		assert_true(store_ban_insert(st, &b) > 0);
		ns.ts = i;
		assert_true(store_stats_insert(st, &ns, i < 1500 ? top : NULL, i < 1500 ? 10 : 0) >
			    0);
	}
	assert_int_equal(store_commit(st), 0);

	/* a deadline already past: one count or one chunk a call, the first chunk 2 rows */
	run.until_ns = 1;
	n = store_cleanup_some(st, 1000, 0, 20000, INT64_MAX, &run);
	assert_int_equal(n, 0); /* the count of malicious_ips */
	assert_true(run.more);
	n = store_cleanup_some(st, 1000, 0, 20000, INT64_MAX, &run);
	assert_int_equal(n, 2);
	assert_true(run.more);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 3000 - 2);

	/* cut (a BanIP waits): a generous deadline, yet one chunk a call */
	atomic_store(&run.cut, true);
	run.until_ns = mono_now_ns() + 1000000000ull;
	n = store_cleanup_some(st, 1000, 0, 20000, INT64_MAX, &run);
	assert_true(n > 0 && n <= 4); /* the chunk after 2 rows: at most twice as many */
	assert_true(run.more);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 3000 - 2 - n);
	total = n;
	/* still cut, but not before cut_after_ns: the calls below run to their deadlines */
	run.cut_after_ns = mono_now_ns() + 60ull * 1000000000ull;

	/* a generous deadline: chunks grow, both tables end at max_records */
	do {
		run.until_ns = mono_now_ns() + 1000000000ull;
		n = store_cleanup_some(st, 1000, 0, 20000, INT64_MAX, &run);
		assert_true(n >= 0);
		total += n;
		calls++;
	} while (run.more && calls < 100);
	assert_false(run.more);
	assert_true(calls <= 3); /* cut at once, a call would end after one chunk: 20 or more */
	assert_int_equal(total, 2 * 2000 - 2);
	for (i = 0; i < 2; i++) /* what a chunk costs depends on the machine; its bounds do not */
		assert_true(run.chunk[i] >= 1 && run.chunk[i] <= 5000);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 1000);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 1000);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"), 0);
}

/*
 * Connections of several threads share no mutex for memory: SQLite's memory statistics,
 * which take one process-wide mutex on every allocation, are off once a store is open (run
 * first: a connection opened before store_open() would keep them on).
 */
static void test_no_memory_statistics(void **state)
{
	struct fixture *f = *state;
	struct store_net_stats ns = {.ts = 1};
	sqlite3_int64 cur = -1, hi = -1;

	assert_true(store_stats_insert(f->st, &ns, NULL, 0) > 0);
	assert_int_equal(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0), SQLITE_OK);
	assert_int_equal(cur, 0);
	assert_int_equal(hi, 0);
}

/* --- batches --- */

/*
 * A VFS over the default one that counts xSync() calls by the calling thread: which thread
 * waits for the disk.
 */
static sqlite3_vfs count_vfs, *base_vfs;
static struct sqlite3_io_methods count_io;
static __thread int syncs_here;

struct count_file {
	sqlite3_file base; /* count_io */
	sqlite3_file *real;
};

static int count_close(sqlite3_file *f)
{
	struct count_file *c = (struct count_file *)f;
	int rc = c->real->pMethods->xClose(c->real);

	sqlite3_free(c->real);
	return rc;
}

static int count_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xRead(r, buf, n, off);
}

static int count_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xWrite(r, buf, n, off);
}

static int count_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xTruncate(r, size);
}

static int count_sync(sqlite3_file *f, int flags)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	syncs_here++;
	return r->pMethods->xSync(r, flags);
}

static int count_size(sqlite3_file *f, sqlite3_int64 *size)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xFileSize(r, size);
}

static int count_lock(sqlite3_file *f, int lock)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xLock(r, lock);
}

static int count_unlock(sqlite3_file *f, int lock)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xUnlock(r, lock);
}

static int count_reserved(sqlite3_file *f, int *out)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xCheckReservedLock(r, out);
}

static int count_fcntl(sqlite3_file *f, int op, void *arg)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xFileControl(r, op, arg);
}

static int count_sector(sqlite3_file *f)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xSectorSize(r);
}

static int count_chars(sqlite3_file *f)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xDeviceCharacteristics(r);
}

static int count_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **p)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xShmMap(r, pg, pgsz, extend, p);
}

static int count_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xShmLock(r, off, n, flags);
}

static void count_shm_barrier(sqlite3_file *f)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	r->pMethods->xShmBarrier(r);
}

static int count_shm_unmap(sqlite3_file *f, int del)
{
	sqlite3_file *r = ((struct count_file *)f)->real;

	return r->pMethods->xShmUnmap(r, del);
}

static int count_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct count_file *c = (struct count_file *)f;
	int rc;

	(void)vfs;
	c->base.pMethods = NULL;
	c->real = sqlite3_malloc(base_vfs->szOsFile);
	if (!c->real)
		return SQLITE_NOMEM;
	memset(c->real, 0, base_vfs->szOsFile);
	rc = base_vfs->xOpen(base_vfs, name, c->real, flags, out);
	if (rc != SQLITE_OK || !c->real->pMethods) {
		sqlite3_free(c->real);
		return rc;
	}
	c->base.pMethods = &count_io;
	return SQLITE_OK;
}

/* Make count_vfs SQLite's default: every connection opened after it counts its syncs. */
static void count_vfs_register(void)
{
	if (base_vfs)
		return;
	base_vfs = sqlite3_vfs_find(NULL);
	count_vfs = *base_vfs;
	count_vfs.zName = "count-syncs";
	count_vfs.szOsFile = sizeof(struct count_file);
	count_vfs.xOpen = count_open;
	count_io = (struct sqlite3_io_methods){
		.iVersion = 2,
		.xClose = count_close,
		.xRead = count_read,
		.xWrite = count_write,
		.xTruncate = count_truncate,
		.xSync = count_sync,
		.xFileSize = count_size,
		.xLock = count_lock,
		.xUnlock = count_unlock,
		.xCheckReservedLock = count_reserved,
		.xFileControl = count_fcntl,
		.xSectorSize = count_sector,
		.xDeviceCharacteristics = count_chars,
		.xShmMap = count_shm_map,
		.xShmLock = count_shm_lock,
		.xShmBarrier = count_shm_barrier,
		.xShmUnmap = count_shm_unmap,
	};
	assert_int_equal(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
}

struct ckpt_call {
	const char *path;
	int rc, frames, syncs;
	char err[256];
};

static void *ckpt_thread(void *arg)
{
	struct ckpt_call *c = arg;
	struct store_checkpointer *ck = NULL;

	syncs_here = 0;
	c->rc = store_checkpoint(&ck, c->path, &c->frames, c->err, sizeof(c->err));
	store_checkpointer_free(ck);
	c->syncs = syncs_here;
	return NULL;
}

struct reads_loop {
	const char *path;
	_Atomic int stop;
	_Atomic int reads;
	struct rows rows;
};

/* A client asking for history in a loop: read transactions of ~20 ms, back to back. */
static void *reads_thread(void *arg)
{
	struct reads_loop *r = arg;
	struct store *ro;

	if (store_open_readonly(r->path, &ro))
		return NULL;
	while (!r->stop) {
		store_read_begin(ro);
		list_bans(ro, NULL, &r->rows);
		usleep(20 * 1000);
		store_read_end(ro);
		r->reads++;
	}
	store_close(ro);
	return NULL;
}

/*
 * Read calls of the API's reader back to back leave the WAL no gap to be emptied in: the
 * checkpoint holds new ones back and waits for the one in progress, so it still empties the
 * WAL (to a few pages: the first commit of the next one), and the reads go on after it.
 */
static void test_checkpoint_between_reads(void **state)
{
	struct fixture *f = *state;
	struct store_net_stats ns = {0};
	struct store_top top[100];
	struct ckpt_call call = {.path = f->path};
	static struct reads_loop r;
	char wal[160];
	struct stat sb;
	pthread_t t, rt;
	int i, reads;

	r.path = f->path;
	r.stop = 0;
	r.reads = 0;
	assert_int_equal(store_open(f->path, &f->st), 0);
	for (i = 0; i < 100; i++) {
		char a[32];

		snprintf(a, sizeof(a), "198.51.100.%d", i);
		top[i] = top_of(a, 100 - i);
	}
	assert_int_equal(pthread_create(&rt, NULL, reads_thread, &r), 0);
	usleep(50 * 1000);
	for (i = 0; store_wal_frames(f->st) < STORE_CHECKPOINT_FRAMES; i++) {
		ns.ts = i;
		assert_true(store_stats_insert(f->st, &ns, top, 100) > 0);
	}
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 1000 * 4096);
	reads = r.reads;
	assert_int_equal(pthread_create(&t, NULL, ckpt_thread, &call), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(call.rc, 0);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size < 16 * 4096);
	usleep(100 * 1000);
	r.stop = 1;
	assert_int_equal(pthread_join(rt, NULL), 0);
	assert_true(r.reads > reads); /* the reads went on */
}

/*
 * The writer never waits for the disk: with synchronous = NORMAL a commit syncs nothing, but
 * the first commit of a new WAL syncs its header. store_checkpoint() on another thread
 * empties the WAL and writes that first commit itself, so the writer's commits after it
 * only append.
 */
static void test_checkpoint_writer_never_syncs(void **state)
{
	struct fixture *f = *state;
	struct store_net_stats ns = {0};
	struct store_top top[100];
	struct ckpt_call call = {.path = f->path};
	char v[32], wal[160];
	struct stat sb;
	pthread_t t;
	int i;

	count_vfs_register();
	/* closed, its WAL gone, opened again: the open starts the WAL, not the first row */
	assert_int_equal(store_open(f->path, &f->st), 0);
	store_close(f->st);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_not_equal(stat(wal, &sb), 0);
	assert_int_equal(store_open(f->path, &f->st), 0);
	syncs_here = 0;
	ns.ts = -1;
	assert_true(store_stats_insert(f->st, &ns, NULL, 0) > 0);
	assert_int_equal(syncs_here, 0);
	for (i = 0; i < 100; i++) {
		char a[32];

		snprintf(a, sizeof(a), "198.51.100.%d", i);
		top[i] = top_of(a, 100 - i);
	}
	for (i = 0; store_wal_frames(f->st) < STORE_CHECKPOINT_FRAMES; i++) {
		ns.ts = i;
		assert_true(store_stats_insert(f->st, &ns, top, 100) > 0);
	}
	assert_int_equal(pthread_create(&t, NULL, ckpt_thread, &call), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(call.rc, 0);
	assert_true(call.frames >= STORE_CHECKPOINT_FRAMES);
	assert_true(call.syncs >= 3); /* the WAL, the database, the new WAL's header */
	assert_int_equal(store_state_get(f->st, "wal_emptied_at", v, sizeof(v)), 1);
	assert_true(strtoll(v, NULL, 10) >= time(NULL) - 60);

	/* the writer goes on: 50 commits, none syncs, the WAL grows from its start */
	syncs_here = 0;
	for (int j = 0; j < 50; j++, i++) {
		ns.ts = i;
		assert_true(store_stats_insert(f->st, &ns, top, 100) > 0);
	}
	assert_int_equal(syncs_here, 0);
	assert_true(store_wal_frames(f->st) < STORE_CHECKPOINT_FRAMES);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), i + 1);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size < (off_t)STORE_CHECKPOINT_FRAMES * 4096);
}

/*
 * No commit checkpoints: the WAL grows past SQLite's autocheckpoint size until
 * store_checkpoint() (the analyzer's offload worker) copies it back from a connection of its
 * own; the next commit then starts the WAL over.
 */
static void test_checkpoint(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_checkpointer *ck = NULL;
	struct store_net_stats ns = {0};
	struct store_top top[100];
	char err[256];
	int i, frames;

	for (i = 0; i < 100; i++) {
		char a[32];

		snprintf(a, sizeof(a), "198.51.100.%d", i);
		top[i] = top_of(a, 100 - i);
	}
	assert_true(store_wal_frames(st) < STORE_CHECKPOINT_FRAMES); /* the schema */
	for (i = 0; i < 20000 && store_wal_frames(st) < STORE_CHECKPOINT_FRAMES * 3 / 2; i++) {
		ns.ts = i;
		assert_true(store_stats_insert(st, &ns, top, 100) > 0);
		if (store_wal_frames(st) < STORE_CHECKPOINT_FRAMES)
			assert_false(store_checkpoint_due(st));
	}
	/* past 1000 frames with no checkpoint: SQLite's would have started the WAL over */
	assert_true(store_wal_frames(st) >= STORE_CHECKPOINT_FRAMES * 3 / 2);
	assert_true(store_checkpoint_due(st));
	store_checkpoint_started(st);
	assert_false(store_checkpoint_due(st)); /* one a second at most */

	assert_int_equal(store_checkpoint(&ck, store_path(st), &frames, err, sizeof(err)), 0);
	assert_int_equal(frames, store_wal_frames(st));
	ns.ts = i;
	assert_true(store_stats_insert(st, &ns, top, 100) > 0);
	assert_true(store_wal_frames(st) < 100); /* the WAL started over */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), i + 1);
	/* a second call reuses its connection; a missing database is an error that says so */
	assert_int_equal(store_checkpoint(&ck, store_path(st), &frames, err, sizeof(err)), 0);
	assert_int_equal(
		store_checkpoint(&ck, "/nonexistent/ebpfmon.db", &frames, err, sizeof(err)),
		-ENOENT);
	assert_non_null(strstr(err, "open a checkpoint connection"));
	assert_null(ck);
	store_checkpointer_free(ck);
}

static void test_batch(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {0};
	struct store_top top[3];
	int i;

	top[0] = top_of("192.0.2.1", 3);
	top[1] = top_of("192.0.2.2", 2);
	top[2] = top_of("192.0.2.3", 1);
	assert_int_equal(store_commit(st), -EINVAL); /* no batch */

	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_begin(st), 0); /* nested */
	for (i = 0; i < 100; i++) {
		ns.ts = i;
		assert_true(store_stats_insert(st, &ns, top, 3) > 0);
	}
	insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1);
	/* a failed call inside a batch undoes itself only */
	assert_int_equal(store_stats_add_top(st, 99999, top, 3), -ENOENT);
	assert_int_equal(store_commit(st), 0); /* inner: nothing committed yet */
	/* another connection sees nothing before the outermost commit */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 100);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"), 300);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 1);
	assert_int_equal(store_commit(st), -EINVAL);
	assert_true(store_healthy(st));

	/* closing inside a batch rolls it back */
	assert_int_equal(store_begin(st), 0);
	insert_ban(st, "192.0.2.2", EBPFMON_BAN_CONN_LIMIT, 2);
	store_close(st);
	f->st = NULL;
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM malicious_ips"), 1);
}

/* --- a database that cannot be written --- */

/* Chmod the database and its folder read-only; false when that does not stop us (root). */
static bool make_readonly(struct fixture *f)
{
	assert_int_equal(chmod(f->path, 0444), 0);
	assert_int_equal(chmod(f->dir, 0555), 0);
	return access(f->path, W_OK) != 0;
}

/* Writes fail, reads work, and the failure is reported; for any store that cannot write. */
static void check_readonly_store(struct store *st)
{
	struct store_ban b = ban_of("192.0.2.77", EBPFMON_BAN_CONN_LIMIT, 600);
	struct store_net_stats ns = {.ts = 600};
	struct store_top top = top_of("192.0.2.5", 1);
	struct store_anomaly a = {.kind = STORE_ANOMALY_CPU, .peak = 90, .threshold = 80};
	struct addr_cidr n = net_of("192.0.2.1");
	struct store_ban got;
	struct rows r;
	int ret;

	int64_t since;

	assert_true(store_healthy(st));
	assert_int_equal(store_failing_since(st), 0);
	assert_int_equal(store_ban_insert(st, &b), -EROFS);
	assert_false(store_healthy(st));
	since = store_failing_since(st);
	assert_true(since > 0 && since <= time(NULL));
	assert_non_null(strstr(store_last_error(st), "readonly"));
	assert_true(store_error_count(st) >= 1);
	assert_int_equal(store_stats_insert(st, &ns, &top, 1), -EROFS);
	assert_int_equal(store_anomaly_open(st, &a), -EROFS);
	assert_int_equal(store_ban_end(st, 1, 700), -EROFS);
	assert_int_equal(store_cleanup(st, 1, 1, 99999), -EROFS);
	ret = store_begin(st); /* SQLite may grant a read-only connection BEGIN IMMEDIATE */
	assert_true(ret == 0 || ret == -EROFS);
	assert_int_equal(store_ban_insert(st, &b), -EROFS);
	assert_int_equal(store_commit(st), 0);	     /* nothing that had succeeded was lost */
	assert_int_equal(store_commit(st), -EINVAL); /* and the batch is over */

	/* reads still work */
	assert_int_equal(list_bans(st, NULL, &r), 2);
	assert_int_equal(store_ban_find_active(st, &n, &got), 1);
	assert_int_equal(store_ban_count_since(st, &n, 0, false), 1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, NULL, collect_stats, &r), 1);
	assert_int_equal(r.ntop[0], 1);
	assert_false(store_healthy(st));		  /* a read does not prove writes work */
	assert_int_equal(store_failing_since(st), since); /* since the first failure */
}

/* Two bans and a snapshot, written and closed: the database the read-only tests open. */
static void fill_and_close(struct fixture *f)
{
	struct store_net_stats ns = {.ts = 500};
	struct store_top top = top_of("192.0.2.5", 1);
	struct store *st;

	assert_int_equal(store_open(f->path, &st), 0);
	insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 500);
	insert_ban(st, "2001:db8::1", EBPFMON_BAN_URL_RULE, 510);
	assert_true(store_stats_insert(st, &ns, &top, 1) > 0);
	store_close(st);
}

static void test_readonly_file(void **state)
{
	struct fixture *f = *state;

	fill_and_close(f);
	if (!make_readonly(f)) {
		/*
		 * Root (CAP_DAC_OVERRIDE) writes through file modes, so chmod cannot make this
		 * file read-only; test_readonly_open() covers the same failures with a read-only
		 * connection, which SQLite refuses to write exactly as it refuses a 0444 file.
		 */
		print_message("running with CAP_DAC_OVERRIDE: chmod 0444 cannot stop writes; "
			      "read-only file case covered by test_readonly_open\n");
		return;
	}
	assert_int_equal(store_open(f->path, &f->st), 0);
	check_readonly_store(f->st);
	store_close(f->st);
	f->st = NULL;

	/* writable again: the same file takes writes */
	chmod(f->dir, 0700);
	chmod(f->path, 0644);
	assert_int_equal(store_open(f->path, &f->st), 0);
	insert_ban(f->st, "192.0.2.78", EBPFMON_BAN_CONN_LIMIT, 700);
	assert_true(store_healthy(f->st));
}

static void test_readonly_open(void **state)
{
	struct fixture *f = *state;

	fill_and_close(f);
	make_readonly(f);
	assert_int_equal(store_open_readonly(f->path, &f->st), 0);
	check_readonly_store(f->st);
}

/* A read-only store refuses an old schema rather than read it wrong. */
static void test_readonly_old_schema(void **state)
{
	struct fixture *f = *state;
	struct store *st;

	sql_exec(f->path, "CREATE TABLE x (a)");
	assert_int_equal(store_open_readonly(f->path, &st), -ENOTSUP);
	assert_null(st);
	/* a writable store upgrades it and keeps what was there */
	assert_int_equal(store_open(f->path, &st), 0);
	store_close(st);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM x"), 0);
}

/* Another connection holds the write lock: -EBUSY after the timeout, then it works again. */
static void test_locked(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_ban b = ban_of("192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 1);
	sqlite3 *other;

	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_ban_insert(st, &b), -EBUSY);
	assert_false(store_healthy(st));
	assert_non_null(strstr(store_last_error(st), "insert ban"));
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);

	assert_true(store_ban_insert(st, &b) > 0);
	assert_true(store_healthy(st));
	assert_int_equal(store_failing_since(st), 0);
	assert_string_equal(store_last_error(st), "");
	sqlite3_close(other);
}

/*
 * A write that the file system refuses mid-way (here RLIMIT_FSIZE, which even root obeys:
 * the WAL cannot grow, SQLite fails with SQLITE_IOERR as it would with SQLITE_FULL): the call
 * fails, a batch reports its loss at commit, nothing half-written stays, and once the file
 * may grow again the same store writes.
 */
static void test_write_failure_recovers(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_net_stats ns = {.ts = 1};
	enum { N = 20000 };
	struct store_top *top = calloc(N, sizeof(*top));
	struct rlimit old, lim;
	struct stat sb;
	char wal[160];
	int64_t id, ret, kept;
	int i, com;

	assert_non_null(top);
	for (i = 0; i < N; i++)
		addr_from_v4(htonl(0xc6120000u + (uint32_t)i), &top[i].addr);
	id = store_stats_insert(st, &ns, top, 10);
	assert_true(id > 0);

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 64 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	/* one call: fails whole */
	ret = store_stats_add_top(st, id, top, N);
	assert_true(ret == -EIO || ret == -ENOSPC);
	assert_false(store_healthy(st));
	assert_string_not_equal(store_last_error(st), "");

	/*
	 * A batch: the small snapshot goes in, the big one fails either at once (its pages
	 * spilled) or when the batch commits; then commit says the batch is lost.
	 */
	assert_int_equal(store_begin(st), 0);
	assert_true(store_stats_insert(st, &ns, top, 2) > 0);
	ret = store_stats_insert(st, &ns, top, N);
	com = store_commit(st);
	if (ret > 0)
		assert_true(com == -EIO || com == -ENOSPC);
	else
		assert_true(ret == -EIO || ret == -ENOSPC);
	assert_false(store_healthy(st));

	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);

	/* nothing of the failed writes is there (the small snapshot only if commit said so) */
	kept = com ? 0 : 1;
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats"), 1 + kept);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"), 10 + 2 * kept);
	/* and the same store writes again */
	assert_int_equal(store_stats_add_top(st, id, top, N), N);
	assert_true(store_healthy(st));
	assert_string_equal(store_last_error(st), "");
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM network_stats_top"),
			 N + 10 + 2 * kept);
	free(top);
}

/* Rows written by something else, or damaged: skipped, never a crash, never a stop. */
static void test_bad_rows(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_query q = {0};
	struct rows r;
	char buf[ADDR_STRLEN];

	insert_ban(st, "192.0.2.1", EBPFMON_BAN_CONN_LIMIT, 100);
	sql_exec(f->path,
		 "PRAGMA ignore_check_constraints = ON;"
		 "INSERT INTO malicious_ips (address, reason, source, banned_at)"
		 "  VALUES ('not an address', 'conn_limit', 'auto', 200);"
		 "INSERT INTO malicious_ips (address, reason, source, banned_at)"
		 "  VALUES ('192.0.2.2', 'gremlins', 'auto', 210);"
		 "INSERT INTO malicious_ips (address, reason, source, banned_at)"
		 "  VALUES ('192.0.2.3', 'manual', 'nobody', 220);"
		 "INSERT INTO malicious_ips (address, prefix_len, reason, source, banned_at)"
		 "  VALUES ('192.0.2.0', 40, 'manual', 'manual', 230);"
		 "INSERT INTO malicious_ips (address, reason, source, banned_at, hits, rule)"
		 "  VALUES ('192.0.2.4', 'manual', 'manual', 'soon', -5, printf('%.300c', 'r'));"
		 "INSERT INTO malicious_ips (address, reason, source, banned_at, hits,"
		 "  escalation_level) VALUES (X'00ff', 'manual', 'manual', 240, 'many', -1);"
		 "INSERT INTO malicious_ips (address, reason, source, banned_at, hits)"
		 "  VALUES ('2001:db8::5', 'manual', 'manual', 250, 'many');"
		 "INSERT INTO network_stats (ts, rx_packets) VALUES (300, -7);"
		 "INSERT INTO network_stats_top (stats_id, address) VALUES (last_insert_rowid(),"
		 "  'nonsense');"
		 "INSERT INTO system_anomalies (kind, started_at, peak, threshold, top_comm)"
		 "  VALUES ('gpu', 10, 1, 1, 'x');"
		 "INSERT INTO system_anomalies (kind, started_at, peak, threshold, top_pid, "
		 "top_comm)"
		 "  VALUES ('cpu', 20, 'high', 80, 'pid', printf('%.300c', 'c'));");

	/* only the good bans come out; a wrong type in a number column reads as 0 */
	assert_int_equal(list_bans(st, NULL, &r), 2);
	assert_string_equal(ban_text(&r.bans[0], buf), "2001:db8::5");
	assert_int_equal(r.bans[0].hits, 0);
	assert_string_equal(ban_text(&r.bans[1], buf), "192.0.2.1");
	q.active_only = true;
	assert_int_equal(list_bans(st, &q, &r), 2);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_ban_list_active(st, collect_ban, &r), 2);

	memset(&r, 0, sizeof(r));
	assert_int_equal(store_stats_list(st, NULL, collect_stats, &r), 1);
	assert_int_equal(r.stats[0].rx_packets, 0);
	assert_int_equal(r.ntop[0], 0);

	memset(&r, 0, sizeof(r));
	assert_int_equal(store_anomaly_list(st, NULL, collect_anomaly, &r), 1);
	assert_int_equal(r.anomalies[0].kind, STORE_ANOMALY_CPU);
	assert_int_equal(strlen(r.anomalies[0].top_comm), STORE_COMM_MAX - 1);
	assert_true(store_healthy(st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_memory_statistics, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_between_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_reason_and_state, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bans, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_writer_never_syncs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_writes_in_callback, setup_open,
						teardown),
		cmocka_unit_test_setup_teardown(test_escalation_count, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_ban_requests, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_stats_bulk_top, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_anomalies, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_counts_match_listings, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_read_transaction, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_by_count, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_by_age, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_chunks, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_some, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_deadline, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_old_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_write_failure_recovers, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rows, setup_open, teardown),
	};

	/* expected failures log errors; keep those, not the info lines of every open */
	log_init("test_store", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
