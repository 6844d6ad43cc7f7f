// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The SQLite store of ebpfmon-analyzer. See store.h for the API and its conventions.
 *
 * Schema: a list of migrations, store_migrations[i] taking user_version i to i + 1, each run
 * in its own BEGIN IMMEDIATE transaction together with the new user_version, so that a crash
 * mid-way leaves the previous version whole and two processes opening the same new file do
 * not both migrate it. Never edit a released migration: append one.
 *
 * Transactions: store_begin()/store_commit() keep a nesting counter; only the outermost pair
 * issues BEGIN IMMEDIATE/COMMIT (IMMEDIATE takes the write lock at once, so a batch cannot
 * fail half-way with SQLITE_BUSY on lock upgrade). A write call of several statements (a
 * snapshot and its top rows, a cleanup chunk) is atomic on its own: its own BEGIN IMMEDIATE
 * outside a batch, a SAVEPOINT inside one.
 *
 * Failures: every SQLite error goes through store_fail(), which records the message, marks
 * the store unhealthy and notices when SQLite rolled the whole transaction back by itself
 * (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM do that), so that the bookkeeping above stays true.
 * Statements are always reset after use, so a failed call never leaves one busy.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "monoclock.h"
#include "store.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Rows deleted per statement (and per transaction outside a batch) by store_cleanup(). */
#define STORE_CLEANUP_CHUNK 5000
/* With a deadline: the first chunk of a table, and what a chunk should take (ns). */
#define STORE_CLEANUP_CHUNK_MIN	  1
#define STORE_CLEANUP_CHUNK_FIRST 2
#define STORE_CLEANUP_CHUNK_NS	  50000ull
/* Milliseconds the checkpoint that empties the WAL waits for readers, holding the write lock. */
#define STORE_CKPT_READERS_MS 10
/*
 * The most the checkpoint waits for the read transactions of read-only stores (the API's
 * reader) to end, new ones held back meanwhile (read_gate), and the most a new one is held
 * back (ms).
 */
#define STORE_CKPT_DRAIN_MS 50
#define STORE_READ_HOLD_MS  100
/* Bytes the WAL file is truncated to after a checkpoint, so a big batch does not leave it big. */
#define STORE_WAL_SIZE_LIMIT (16 * 1024 * 1024)

/* --- schema --- */

static const char *const store_migrations[] = {
	/* 0 -> 1: the first schema */
	"CREATE TABLE malicious_ips ("
	"  id INTEGER PRIMARY KEY,"
	"  address TEXT NOT NULL," /* addr_format(): network address of a CIDR */
	"  prefix_len INTEGER"	   /* NULL: one address; else in its family */
	"    CHECK (prefix_len IS NULL OR prefix_len BETWEEN 0 AND 128),"
	"  reason TEXT NOT NULL"
	"    CHECK (reason IN ('conn_limit', 'url_rule', 'manual', 'escalated')),"
	"  rule TEXT NOT NULL DEFAULT ''," /* the pattern that matched, or '' */
	"  source TEXT NOT NULL CHECK (source IN ('auto', 'manual')),"
	"  hits INTEGER NOT NULL DEFAULT 0,"
	"  banned_at INTEGER NOT NULL," /* unix seconds */
	"  expires_at INTEGER,"		/* unix seconds; NULL = permanent */
	"  ended_at INTEGER,"		/* unix seconds; NULL = active */
	"  escalation_level INTEGER NOT NULL DEFAULT 0,"
	"  dry_run INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1))"
	");"
	/* escalation counts and lookups by address */
	"CREATE INDEX malicious_ips_address ON malicious_ips (address, banned_at);"
	/* listings, newest first */
	"CREATE INDEX malicious_ips_banned ON malicious_ips (banned_at);"
	"CREATE INDEX malicious_ips_active ON malicious_ips (banned_at) WHERE ended_at IS NULL;"
	/* retention */
	"CREATE INDEX malicious_ips_ended ON malicious_ips (ended_at)"
	"  WHERE ended_at IS NOT NULL;"

	"CREATE TABLE network_stats ("
	"  id INTEGER PRIMARY KEY,"
	"  ts INTEGER NOT NULL," /* unix seconds, end of the interval */
	"  rx_packets INTEGER NOT NULL DEFAULT 0,"
	"  rx_bytes INTEGER NOT NULL DEFAULT 0,"
	"  tx_packets INTEGER NOT NULL DEFAULT 0,"
	"  tx_bytes INTEGER NOT NULL DEFAULT 0,"
	"  tracked_ips INTEGER NOT NULL DEFAULT 0,"
	"  bans_active INTEGER NOT NULL DEFAULT 0,"
	"  drops INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX network_stats_ts ON network_stats (ts);"
	"CREATE TABLE network_stats_top ("
	"  id INTEGER PRIMARY KEY,"
	"  stats_id INTEGER NOT NULL REFERENCES network_stats (id) ON DELETE CASCADE,"
	"  address TEXT NOT NULL,"
	"  packets INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  syns INTEGER NOT NULL DEFAULT 0,"
	"  connections INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX network_stats_top_stats ON network_stats_top (stats_id, packets);"

	"CREATE TABLE system_anomalies ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('cpu', 'memory', 'disk_io')),"
	"  started_at INTEGER NOT NULL," /* unix seconds */
	"  ended_at INTEGER,"		 /* unix seconds; NULL = open */
	"  peak REAL NOT NULL,"
	"  threshold REAL NOT NULL,"
	"  top_pid INTEGER," /* NULL = unknown */
	"  top_comm TEXT"
	");"
	"CREATE INDEX system_anomalies_started ON system_anomalies (started_at);"
	"CREATE INDEX system_anomalies_open ON system_anomalies (started_at)"
	"  WHERE ended_at IS NULL;"
	"CREATE INDEX system_anomalies_ended ON system_anomalies (ended_at)"
	"  WHERE ended_at IS NOT NULL;",

	/* 1 -> 2: why a ban ended; the analyzer's notes (which maps it saw last) */
	"ALTER TABLE malicious_ips ADD COLUMN end_reason TEXT;" /* NULL while active */
	"UPDATE malicious_ips SET end_reason = 'expired'"
	"  WHERE ended_at IS NOT NULL AND ended_at = expires_at;"
	"CREATE TABLE analyzer_state ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL"
	");",

	/*
	 * 2 -> 3: the canonical request path of a url_rule ban (docs/url-matching.md), and its
	 * request as TCP delivers it (NULL for other bans): one request, one offence, across
	 * restarts
	 */
	"ALTER TABLE malicious_ips ADD COLUMN path TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE malicious_ips ADD COLUMN sport INTEGER;"
	"ALTER TABLE malicious_ips ADD COLUMN dport INTEGER;"
	"ALTER TABLE malicious_ips ADD COLUMN seq INTEGER;",

	/* 3 -> 4: the connection of that request (its ISN on this host's side), so that a new
	 * connection reusing the port and sequence number is a new offence */
	"ALTER TABLE malicious_ips ADD COLUMN conn_isn INTEGER;",
};

_Static_assert(ARRAY_SIZE(store_migrations) == STORE_SCHEMA_VERSION,
	       "STORE_SCHEMA_VERSION must count the migrations");

/* --- prepared statements --- */

#define BAN_COLS                                                                                   \
	"id, address, prefix_len, reason, rule, source, hits, banned_at, expires_at, ended_at, "   \
	"escalation_level, dry_run, end_reason, path"
#define STATS_COLS                                                                                 \
	"id, ts, rx_packets, rx_bytes, tx_packets, tx_bytes, tracked_ips, bans_active, drops"
#define ANOM_COLS "id, kind, started_at, ended_at, peak, threshold, top_pid, top_comm"

enum store_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_BAN_INSERT,
	STMT_BAN_END,
	STMT_BAN_END_WHY,
	STMT_STATE_GET,
	STMT_STATE_SET,
	STMT_BAN_END_NET,
	STMT_BAN_END_EXPIRED,
	STMT_BAN_ADD_HITS,
	STMT_BAN_FIND_ACTIVE,
	STMT_BAN_COUNT_SINCE,
	STMT_BAN_LIST_RECONCILE,
	STMT_BAN_LIST,
	STMT_BAN_LIST_ACTIVE,
	STMT_STATS_INSERT,
	STMT_STATS_EXISTS,
	STMT_TOP_INSERT,
	STMT_STATS_LIST,
	STMT_TOP_LIST,
	STMT_ANOM_OPEN,
	STMT_ANOM_PEAK,
	STMT_ANOM_TOP,
	STMT_ANOM_CLOSE,
	STMT_ANOM_CLOSE_ALL,
	STMT_ANOM_LIST,
	STMT_BAN_COUNT,
	STMT_BAN_DEL_AGE,
	STMT_BAN_DEL_OLDEST,
	STMT_STATS_COUNT,
	STMT_STATS_DEL_AGE,
	STMT_STATS_DEL_OLDEST,
	STMT_ANOM_COUNT,
	STMT_ANOM_DEL_AGE,
	STMT_ANOM_DEL_OLDEST,
	STMT_BAN_COUNT_RANGE,
	STMT_BAN_COUNT_ACTIVE,
	STMT_BAN_COUNT_NET,
	STMT_ANOM_COUNT_MATCH,
	STMT_COUNT_
};

static const char *const store_sql[STMT_COUNT_] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_SAVEPOINT] = "SAVEPOINT store_op",
	[STMT_RELEASE] = "RELEASE store_op",
	[STMT_ROLLBACK_TO] = "ROLLBACK TO store_op",

	[STMT_BAN_INSERT] = "INSERT INTO malicious_ips (address, prefix_len, reason, rule, source,"
			    " hits, banned_at, expires_at, ended_at, escalation_level, dry_run,"
			    " end_reason, path, sport, dport, seq, conn_isn)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
			    " ?15, ?16, ?17)",
	[STMT_BAN_END] =
		"UPDATE malicious_ips SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
	[STMT_BAN_END_WHY] = "UPDATE malicious_ips SET ended_at = ?2, end_reason = ?3"
			     " WHERE id = ?1 AND ended_at IS NULL",
	[STMT_STATE_GET] = "SELECT value FROM analyzer_state WHERE key = ?1",
	[STMT_STATE_SET] = "INSERT INTO analyzer_state (key, value) VALUES (?1, ?2)"
			   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[STMT_BAN_END_NET] = "UPDATE malicious_ips SET ended_at = ?3"
			     " WHERE address = ?1 AND prefix_len IS ?2 AND ended_at IS NULL",
	[STMT_BAN_END_EXPIRED] = "UPDATE malicious_ips SET ended_at = expires_at,"
				 " end_reason = 'expired'"
				 " WHERE ended_at IS NULL AND expires_at IS NOT NULL"
				 " AND expires_at <= ?1",
	[STMT_BAN_ADD_HITS] = "UPDATE malicious_ips SET hits = CASE"
			      " WHEN hits > 9223372036854775807 - ?2 THEN 9223372036854775807"
			      " ELSE hits + ?2 END WHERE id = ?1",
	[STMT_BAN_FIND_ACTIVE] = "SELECT " BAN_COLS " FROM malicious_ips"
				 " WHERE address = ?1 AND prefix_len IS ?2 AND ended_at IS NULL"
				 " ORDER BY banned_at DESC, id DESC LIMIT 1",
	[STMT_BAN_COUNT_SINCE] = "SELECT count(*) FROM malicious_ips WHERE address = ?1"
				 " AND prefix_len IS ?2 AND banned_at >= ?3 AND dry_run = ?4",
	[STMT_BAN_LIST_RECONCILE] = "SELECT " BAN_COLS " FROM malicious_ips WHERE ended_at IS NULL"
				    " AND dry_run = 0 ORDER BY banned_at, id",
	[STMT_BAN_LIST] = "SELECT " BAN_COLS " FROM malicious_ips"
			  " WHERE (?1 IS NULL OR (address = ?1 AND prefix_len IS ?2))"
			  " AND (?3 IS NULL OR banned_at >= ?3) AND (?4 IS NULL OR banned_at <= ?4)"
			  " ORDER BY banned_at DESC, id DESC LIMIT ?5 OFFSET ?6",
	[STMT_BAN_LIST_ACTIVE] = "SELECT " BAN_COLS " FROM malicious_ips WHERE ended_at IS NULL"
				 " AND dry_run = 0"
				 " AND (?1 IS NULL OR (address = ?1 AND prefix_len IS ?2))"
				 " AND (?3 IS NULL OR banned_at >= ?3)"
				 " AND (?4 IS NULL OR banned_at <= ?4)"
				 " ORDER BY banned_at DESC, id DESC LIMIT ?5 OFFSET ?6",

	[STMT_STATS_INSERT] = "INSERT INTO network_stats (ts, rx_packets, rx_bytes, tx_packets,"
			      " tx_bytes, tracked_ips, bans_active, drops)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[STMT_STATS_EXISTS] = "SELECT 1 FROM network_stats WHERE id = ?1",
	[STMT_TOP_INSERT] =
		"INSERT INTO network_stats_top (stats_id, address, packets, bytes, syns,"
		" connections) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_STATS_LIST] = "SELECT " STATS_COLS " FROM network_stats"
			    " WHERE (?1 IS NULL OR ts >= ?1) AND (?2 IS NULL OR ts <= ?2)"
			    " ORDER BY ts DESC, id DESC LIMIT ?3 OFFSET ?4",
	/*
	 * Ties of packets in the order the index network_stats_top_stats (stats_id, packets, and
	 * the rowid) gives backwards: "id DESC", so that SQLite reads the index and sorts nothing
	 * (a temporary B-tree per snapshot made a listing of 100 snapshots 3 times as long).
	 */
	[STMT_TOP_LIST] = "SELECT address, packets, bytes, syns, connections FROM network_stats_top"
			  " WHERE stats_id = ?1 ORDER BY packets DESC, id DESC",

	[STMT_ANOM_OPEN] = "INSERT INTO system_anomalies (kind, started_at, peak, threshold,"
			   " top_pid, top_comm) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_ANOM_PEAK] = "UPDATE system_anomalies SET peak = ?2, top_pid = coalesce(?3, top_pid),"
			   " top_comm = coalesce(?4, top_comm)"
			   " WHERE id = ?1 AND ended_at IS NULL AND peak < ?2",
	[STMT_ANOM_TOP] = "UPDATE system_anomalies SET top_pid = ?2, top_comm = ?3"
			  " WHERE id = ?1 AND ended_at IS NULL",
	[STMT_ANOM_CLOSE] = "UPDATE system_anomalies SET ended_at = ?2"
			    " WHERE id = ?1 AND ended_at IS NULL",
	[STMT_ANOM_CLOSE_ALL] = "UPDATE system_anomalies SET ended_at = max(?1, started_at)"
				" WHERE ended_at IS NULL",
	[STMT_ANOM_LIST] = "SELECT " ANOM_COLS " FROM system_anomalies"
			   " WHERE (?1 = 0 OR ended_at IS NULL) AND (?2 IS NULL OR kind = ?2)"
			   " AND (?3 IS NULL OR ended_at IS NULL OR ended_at >= ?3)"
			   " AND (?4 IS NULL OR started_at <= ?4)"
			   " ORDER BY started_at DESC, id DESC LIMIT ?5 OFFSET ?6",

	[STMT_BAN_COUNT] = "SELECT count(*) FROM malicious_ips",
	[STMT_BAN_DEL_AGE] = "DELETE FROM malicious_ips WHERE id IN (SELECT id FROM malicious_ips"
			     " WHERE ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)",
	[STMT_BAN_DEL_OLDEST] =
		"DELETE FROM malicious_ips WHERE id IN (SELECT id FROM malicious_ips"
		" WHERE ended_at IS NOT NULL ORDER BY ended_at, id LIMIT ?1)",
	[STMT_STATS_COUNT] = "SELECT count(*) FROM network_stats",
	[STMT_STATS_DEL_AGE] = "DELETE FROM network_stats WHERE id IN (SELECT id FROM network_stats"
			       " WHERE ts < ?1 LIMIT ?2)",
	[STMT_STATS_DEL_OLDEST] = "DELETE FROM network_stats WHERE id IN (SELECT id FROM"
				  " network_stats ORDER BY ts, id LIMIT ?1)",
	[STMT_ANOM_COUNT] = "SELECT count(*) FROM system_anomalies",
	[STMT_ANOM_DEL_AGE] = "DELETE FROM system_anomalies WHERE id IN (SELECT id FROM"
			      " system_anomalies WHERE ended_at IS NOT NULL AND ended_at < ?1"
			      " LIMIT ?2)",
	[STMT_ANOM_DEL_OLDEST] = "DELETE FROM system_anomalies WHERE id IN (SELECT id FROM"
				 " system_anomalies WHERE ended_at IS NOT NULL"
				 " ORDER BY ended_at, id LIMIT ?1)",

	/*
	 * The totals of a listing (store_ban_count(), store_anomaly_count()), each written so that
	 * SQLite counts from an index: a range of malicious_ips_banned, of the partial index of
	 * the active bans, or of one address's rows.
	 */
	[STMT_BAN_COUNT_RANGE] = "SELECT count(*) FROM malicious_ips"
				 " WHERE banned_at BETWEEN ?1 AND ?2",
	[STMT_BAN_COUNT_ACTIVE] = "SELECT count(*) FROM malicious_ips WHERE ended_at IS NULL"
				  " AND dry_run = 0 AND banned_at BETWEEN ?1 AND ?2",
	[STMT_BAN_COUNT_NET] = "SELECT count(*) FROM malicious_ips WHERE address = ?1"
			       " AND prefix_len IS ?2 AND banned_at BETWEEN ?3 AND ?4"
			       " AND (?5 = 0 OR (ended_at IS NULL AND dry_run = 0))",
	[STMT_ANOM_COUNT_MATCH] =
		"SELECT count(*) FROM system_anomalies"
		" WHERE (?1 = 0 OR ended_at IS NULL) AND (?2 IS NULL OR kind = ?2)"
		" AND (?3 IS NULL OR ended_at IS NULL OR ended_at >= ?3)"
		" AND (?4 IS NULL OR started_at <= ?4)",
};

struct store {
	sqlite3 *db;
	char *path;
	bool readonly;
	sqlite3_stmt *stmt[STMT_COUNT_];

	int depth;	  /* store_begin() nesting */
	bool batch_open;  /* the outermost store_begin() holds an open transaction */
	bool read_open;	  /* store_read_begin() began a read transaction */
	bool op_open;	  /* one write call holds its own transaction */
	bool batch_wrote; /* a write succeeded inside the batch */
	int batch_err;	  /* SQLite rolled the batch back: what store_commit() returns */

	bool healthy;
	int64_t failing_since; /* unix seconds of the failure that ended healthy; 0 when healthy */
	uint64_t errors;
	char errbuf[STORE_ERR_MAX];

	struct store_top *top; /* store_stats_list(): top rows of one snapshot */
	size_t top_cap;

	int wal_frames;		   /* frames in the WAL after the last commit (the WAL hook) */
	uint64_t checkpoint_at_ns; /* CLOCK_MONOTONIC of the last store_checkpoint_started() */
};

/* Commits wait no longer than this after a WAL of STORE_CHECKPOINT_FRAMES for a checkpoint. */
#define STORE_CHECKPOINT_GAP_NS 1000000000ull

/* --- names --- */

static const char *const store_reasons[] = {
	[EBPFMON_BAN_MANUAL] = "manual",
	[EBPFMON_BAN_CONN_LIMIT] = "conn_limit",
	[EBPFMON_BAN_URL_RULE] = "url_rule",
	[EBPFMON_BAN_ESCALATED] = "escalated",
};

static const char *const store_sources[] = {
	[STORE_SOURCE_AUTO] = "auto",
	[STORE_SOURCE_MANUAL] = "manual",
};

static const char *const store_kinds[] = {
	[STORE_ANOMALY_CPU] = "cpu",
	[STORE_ANOMALY_MEMORY] = "memory",
	[STORE_ANOMALY_DISK_IO] = "disk_io",
};

static const char *store_name(const char *const *names, size_t n, unsigned int v)
{
	return v < n ? names[v] : NULL;
}

/* The index of s in names, or -1. */
static int store_name_index(const char *const *names, size_t n, const char *s)
{
	size_t i;

	if (!s)
		return -1;
	for (i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -1;
}

const char *store_reason_name(enum ebpfmon_ban_reason reason)
{
	return store_name(store_reasons, ARRAY_SIZE(store_reasons), reason);
}

const char *store_source_name(enum store_ban_source source)
{
	return store_name(store_sources, ARRAY_SIZE(store_sources), source);
}

const char *store_anomaly_kind_name(enum store_anomaly_kind kind)
{
	return store_name(store_kinds, ARRAY_SIZE(store_kinds), kind);
}

/* --- errors and health --- */

/* SQLite result code -> -errno (see store.h). */
static int store_errno(sqlite3 *db, int rc)
{
	int sys;

	switch (rc & 0xff) {
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_IOERR:
		return -EIO;
	case SQLITE_CANTOPEN:
		sys = db ? sqlite3_system_errno(db) : 0;
		return sys > 0 ? -sys : -EIO;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_INTERRUPT:
		return -EINTR;
	default:
		return -EIO;
	}
}

/*
 * Record a failure of what (SQLite code rc, message from the connection) and return it as
 * -errno. Call it before resetting the statement, so that the message is the step's.
 */
static int store_fail(struct store *st, const char *what, int rc)
{
	int err = store_errno(st->db, rc);

	snprintf(st->errbuf, sizeof(st->errbuf), "%s: %s", what, sqlite3_errmsg(st->db));
	if (st->healthy || !st->failing_since)
		st->failing_since = time(NULL);
	st->healthy = false;
	st->errors++;
	log_debug("database %s: %s", st->path, st->errbuf);

	/* SQLite rolls the whole transaction back on some errors: follow it. */
	if ((st->batch_open || st->op_open) && sqlite3_get_autocommit(st->db)) {
		if (st->batch_open && !st->batch_err)
			st->batch_err = err;
		st->batch_open = false;
		st->op_open = false;
	}
	return err;
}

/*
 * A write succeeded: healthy again when it reached the database (autocommit, or its own
 * transaction committed); inside a batch only when the batch commits.
 */
static void store_ok(struct store *st)
{
	if (st->batch_open) {
		st->batch_wrote = true;
		return;
	}
	if (st->op_open)
		return;
	st->healthy = true;
	st->failing_since = 0;
	st->errbuf[0] = '\0';
}

bool store_healthy(const struct store *st)
{
	return st && st->healthy;
}

const char *store_last_error(const struct store *st)
{
	return st ? st->errbuf : "no store";
}

int64_t store_failing_since(const struct store *st)
{
	return st && !st->healthy ? st->failing_since : 0;
}

uint64_t store_error_count(const struct store *st)
{
	return st ? st->errors : 0;
}

/* --- statement helpers --- */

/* Step a statement that returns no row, then reset it: 0 or -errno. */
static int store_run(struct store *st, enum store_stmt id, const char *what)
{
	sqlite3_stmt *s = st->stmt[id];
	int rc, err = 0;

	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = store_fail(st, what, rc);
	sqlite3_reset(s);
	return err;
}

/* Step a statement that returns one integer (count(*)), then reset it: >= 0 or -errno. */
static int64_t store_run_int(struct store *st, enum store_stmt id, const char *what)
{
	sqlite3_stmt *s = st->stmt[id];
	int64_t v = 0;
	int rc;

	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		v = store_fail(st, what, rc);
	sqlite3_reset(s);
	return v;
}

static sqlite3_int64 u64_to_db(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

static uint64_t db_to_u64(sqlite3_stmt *s, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(s, col);

	return v < 0 ? 0 : (uint64_t)v;
}

/* Bind v, or NULL when v is 0 (a time that is not set). */
static void bind_time_or_null(sqlite3_stmt *s, int idx, int64_t v)
{
	if (v)
		sqlite3_bind_int64(s, idx, v);
	else
		sqlite3_bind_null(s, idx);
}

static void bind_limit(sqlite3_stmt *s, int idx, const struct store_query *q)
{
	sqlite3_bind_int64(s, idx, q && q->limit ? (sqlite3_int64)q->limit : -1);
	sqlite3_bind_int64(s, idx + 1, q ? (sqlite3_int64)q->offset : 0);
}

/*
 * A network as the table stores it: printed address into buf, *prefix the family's prefix
 * length or -1 for a single address. -EINVAL for a prefix out of range, host bits set, or an
 * IPv4-mapped address under a prefix shorter than /96.
 */
static int net_to_db(const struct addr_cidr *net, char *buf, size_t len, int *prefix)
{
	if (!net || net->prefixlen > 128 || !cidr_contains(net, &net->addr))
		return -EINVAL;
	addr_format(&net->addr, buf, len);
	if (net->prefixlen == 128) {
		*prefix = -1;
	} else if (addr_is_v4(&net->addr)) {
		if (net->prefixlen < 96)
			return -EINVAL;
		*prefix = (int)net->prefixlen - 96;
	} else {
		*prefix = (int)net->prefixlen;
	}
	return 0;
}

/* Bind a network to ?idx (address) and ?idx+1 (prefix_len): 0 or -EINVAL. */
static int bind_net(sqlite3_stmt *s, int idx, const struct addr_cidr *net)
{
	char buf[ADDR_STRLEN];
	int prefix, err;

	err = net_to_db(net, buf, sizeof(buf), &prefix);
	if (err)
		return err;
	sqlite3_bind_text(s, idx, buf, -1, SQLITE_TRANSIENT);
	if (prefix < 0)
		sqlite3_bind_null(s, idx + 1);
	else
		sqlite3_bind_int(s, idx + 1, prefix);
	return 0;
}

/* Columns acol (address) and acol+1 (prefix_len) -> *out: 0 or -EINVAL for a bad row. */
static int db_to_net(sqlite3_stmt *s, int acol, struct addr_cidr *out)
{
	const char *text = (const char *)sqlite3_column_text(s, acol);
	sqlite3_int64 prefix;

	if (!text || addr_parse(text, &out->addr))
		return -EINVAL;
	if (sqlite3_column_type(s, acol + 1) == SQLITE_NULL) {
		out->prefixlen = 128;
		return 0;
	}
	prefix = sqlite3_column_int64(s, acol + 1);
	if (addr_is_v4(&out->addr)) {
		if (prefix < 0 || prefix > 32)
			return -EINVAL;
		out->prefixlen = (uint32_t)prefix + 96;
	} else {
		if (prefix < 0 || prefix > 128)
			return -EINVAL;
		out->prefixlen = (uint32_t)prefix;
	}
	return 0;
}

/* Copy a text column into buf: 0, or -EINVAL when it does not fit. NULL reads as "". */
static int db_to_str(sqlite3_stmt *s, int col, char *buf, size_t len)
{
	const char *text = (const char *)sqlite3_column_text(s, col);
	size_t n;

	if (!text) {
		buf[0] = '\0';
		return 0;
	}
	n = strlen(text);
	if (n >= len)
		return -EINVAL;
	memcpy(buf, text, n + 1);
	return 0;
}

/* --- transactions --- */

/*
 * Make one write call atomic: its own transaction outside a batch, a savepoint inside one.
 * *own says which, for store_op_end().
 */
static int store_op_begin(struct store *st, const char *what, bool *own)
{
	int err;

	if (st->batch_open) {
		*own = false;
		return store_run(st, STMT_SAVEPOINT, what);
	}
	*own = true;
	err = store_run(st, STMT_BEGIN, what);
	if (!err)
		st->op_open = true;
	return err;
}

/* End what store_op_begin() started: commit when err is 0, else roll back. Returns err. */
static int store_op_end(struct store *st, const char *what, bool own, int err)
{
	if (own) {
		if (!st->op_open)
			return err; /* SQLite rolled it back already */
		if (!err) {
			err = store_run(st, STMT_COMMIT, what);
			if (!err) {
				st->op_open = false;
				store_ok(st);
				return 0;
			}
		}
		if (!sqlite3_get_autocommit(st->db))
			store_run(st, STMT_ROLLBACK, what);
		st->op_open = false;
		return err;
	}

	if (!st->batch_open)
		return err; /* the batch was rolled back by SQLite, the savepoint with it */
	if (err)
		store_run(st, STMT_ROLLBACK_TO, what);
	if (st->batch_open) {
		int rerr = store_run(st, STMT_RELEASE, what);

		if (!err)
			err = rerr;
	}
	if (!err)
		store_ok(st);
	return err;
}

int store_begin(struct store *st)
{
	int err;

	if (st->depth++ > 0)
		return 0;
	st->batch_err = 0;
	st->batch_wrote = false;
	err = store_run(st, STMT_BEGIN, "begin");
	if (!err)
		st->batch_open = true;
	return err;
}

int store_commit(struct store *st)
{
	int err;

	if (st->depth <= 0)
		return -EINVAL;
	if (--st->depth > 0)
		return 0;
	if (!st->batch_open) {
		err = st->batch_err;
		st->batch_err = 0;
		return err;
	}
	err = store_run(st, STMT_COMMIT, "commit");
	if (err && !sqlite3_get_autocommit(st->db))
		store_run(st, STMT_ROLLBACK, "rollback");
	st->batch_open = false;
	if (!err) {
		err = st->batch_err;
		if (!err && st->batch_wrote)
			store_ok(st);
	}
	st->batch_err = 0;
	return err;
}

/* --- opening --- */

/* PRAGMA user_version, >= 0, or -errno. */
static int store_read_version(struct store *st)
{
	sqlite3_stmt *s;
	int rc, v;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_fail(st, "read schema version", rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_int(s, 0);
	} else {
		v = store_fail(st, "read schema version", rc);
		if (v >= 0)
			v = -EIO;
	}
	sqlite3_finalize(s);
	return v;
}

int store_schema_version(struct store *st)
{
	return store_read_version(st);
}

/* sqlite3_exec() of sql: 0 or -errno, the error recorded as what. */
static int store_exec(struct store *st, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc, err;

	rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return 0;
	err = store_fail(st, what, rc);
	if (msg) {
		snprintf(st->errbuf, sizeof(st->errbuf), "%s: %s", what, msg);
		sqlite3_free(msg);
	}
	return err;
}

static int store_newer_refused(struct store *st, int version)
{
	log_error("database %s: schema version %d is newer than this ebpfmon knows (%d); "
		  "refusing to open it: use a newer ebpfmon or another database file",
		  st->path, version, STORE_SCHEMA_VERSION);
	return -ENOTSUP;
}

/*
 * Bring the schema to STORE_SCHEMA_VERSION, one migration per transaction. ro_requested: the
 * caller asked for a read-only store (else st->readonly means the file is read-only).
 */
static int store_migrate(struct store *st, bool ro_requested)
{
	int version, err;
	char sql[64];

	version = store_read_version(st);
	if (version < 0) {
		log_error("database %s: %s", st->path, st->errbuf);
		return version;
	}
	if (version > STORE_SCHEMA_VERSION)
		return store_newer_refused(st, version);
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (st->readonly) {
		log_error("database %s: schema version %d is older than %d and a read-only %s "
			  "cannot be upgraded",
			  st->path, version, STORE_SCHEMA_VERSION, ro_requested ? "store" : "file");
		return ro_requested ? -ENOTSUP : -EROFS;
	}

	while (version < STORE_SCHEMA_VERSION) {
		err = store_exec(st, "BEGIN IMMEDIATE", "begin migration");
		if (err)
			goto fail;
		/* another process may have migrated while we waited for the lock */
		version = store_read_version(st);
		if (version < 0) {
			err = version;
			goto fail_rollback;
		}
		if (version >= STORE_SCHEMA_VERSION) {
			err = store_exec(st, "COMMIT", "commit migration");
			if (err)
				goto fail_rollback;
			if (version > STORE_SCHEMA_VERSION)
				return store_newer_refused(st, version);
			break;
		}
		err = store_exec(st, store_migrations[version], "migration");
		if (err)
			goto fail_rollback;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		err = store_exec(st, sql, "set schema version");
		if (err)
			goto fail_rollback;
		err = store_exec(st, "COMMIT", "commit migration");
		if (err)
			goto fail_rollback;
		log_info("database %s: schema upgraded from version %d to %d", st->path, version,
			 version + 1);
		version++;
	}
	return 0;

fail_rollback:
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
fail:
	log_error("database %s: cannot bring the schema from version %d to %d: %s", st->path,
		  version, STORE_SCHEMA_VERSION, st->errbuf);
	return err;
}

/* After each commit in WAL mode: how many frames the WAL holds now. */
static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *st = arg;

	(void)db;
	(void)name;
	st->wal_frames = frames;
	return SQLITE_OK;
}

/* Connection settings of a read-write store. Failures here are logged and survived. */
static void store_pragmas(struct store *st)
{
	sqlite3_stmt *s;
	char sql[64];

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK) {
		const char *mode = NULL;

		if (sqlite3_step(s) == SQLITE_ROW)
			mode = (const char *)sqlite3_column_text(s, 0);
		if (!mode || strcmp(mode, "wal"))
			log_warn("database %s: cannot switch to WAL mode (journal mode %s): %s",
				 st->path, mode ? mode : "unknown", sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
	}
	if (store_exec(st, "PRAGMA synchronous = NORMAL", "set synchronous"))
		log_warn("database %s: %s", st->path, st->errbuf);
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d", STORE_WAL_SIZE_LIMIT);
	if (store_exec(st, sql, "set journal_size_limit"))
		log_warn("database %s: %s", st->path, st->errbuf);
	/* replaces SQLite's autocheckpoint: no commit of this connection runs a checkpoint */
	sqlite3_wal_hook(st->db, store_wal_hook, st);
}

static int store_prepare(struct store *st)
{
	unsigned int i;
	int rc;

	for (i = 0; i < STMT_COUNT_; i++) {
		rc = sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&st->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			int err = store_fail(st, "prepare", rc);

			log_error("database %s: cannot prepare \"%s\": %s", st->path, store_sql[i],
				  sqlite3_errmsg(st->db));
			return err;
		}
	}
	return 0;
}

/*
 * Why a file could not be opened, as -errno. SQLite's own errno is that of its last attempt
 * (often a read-only retry: ENOENT), so a file that does not exist in a folder we may not
 * write to is reported as that folder's EACCES/EROFS.
 */
static int store_open_errno(struct store *st, const char *path, int rc)
{
	int err = store_errno(st->db, rc);
	char *copy, *slash;

	if ((rc & 0xff) != SQLITE_CANTOPEN || st->readonly || access(path, F_OK) == 0)
		return err;
	copy = strdup(path);
	if (!copy)
		return err;
	slash = strrchr(copy, '/');
	if (slash == copy)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(copy, ".");
	if (access(copy, F_OK) == 0 && access(copy, W_OK | X_OK) != 0)
		err = -errno;
	free(copy);
	return err;
}

/*
 * SQLite's process-wide settings, before its first connection. Memory statistics off: with
 * them, every allocation of every connection takes one global mutex, so the loop's writer
 * waited for the API's reader and the checkpointer, threads of lower priority (a wait of a
 * scheduler's slice when one was preempted holding it). A process that opened SQLite
 * elsewhere first keeps its settings (sqlite3_config() then fails, harmlessly).
 */
static void store_sqlite_config(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void store_sqlite_once(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, store_sqlite_config);
}

/*
 * Open name with flags into st->db and read its schema version (which reads the header, so a
 * file that is no database fails here): the version, or -errno with st->errbuf set.
 */
static int store_connect(struct store *st, const char *name, int flags)
{
	int rc;

	store_sqlite_once();
	rc = sqlite3_open_v2(name, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		int err = store_open_errno(st, st->path, rc);

		snprintf(st->errbuf, sizeof(st->errbuf), "cannot %s it: %s (%s)",
			 st->readonly ? "open" : "open or create", strerror(-err),
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		return err;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	return store_read_version(st);
}

/* The commit that starts a WAL (its header synced): analyzer_state 'wal_emptied_at', unix s. */
#define WAL_START_SQL                                                                              \
	"INSERT INTO analyzer_state (key, value)"                                                  \
	"  VALUES ('wal_emptied_at', CAST(strftime('%s', 'now') AS TEXT))"                         \
	"  ON CONFLICT (key) DO UPDATE SET value = excluded.value"

/*
 * "file:PATH?immutable=1", PATH escaped for a URI. Immutable tells SQLite that nobody can
 * change the file, so it reads it without the -shm file that WAL mode otherwise needs.
 */
static char *store_immutable_uri(const char *path)
{
	size_t len = strlen(path);
	char *uri = malloc(len * 3 + sizeof("file:?immutable=1"));
	char *p = uri;

	if (!uri)
		return NULL;
	p += sprintf(p, "file:");
	for (; *path; path++) {
		if (*path == '%' || *path == '?' || *path == '#')
			p += sprintf(p, "%%%02X", (unsigned char)*path);
		else
			*p++ = *path;
	}
	strcpy(p, "?immutable=1");
	return uri;
}

/*
 * The database and its -wal and -shm files readable by their owner alone (0600). A reader of
 * them, even a read-only one, may hold a read transaction open: each checkpoint then stops at
 * its snapshot, and the WAL, which only a checkpoint past every reader may start over, grows
 * for as long as it holds it, without bound. The data is the API's to show (GetMaliciousIPs,
 * GetSystemAnomalies). SQLite creates the -wal and -shm files with the database's mode, so
 * those made later follow. What cannot be changed (a file of another owner) is logged.
 */
static void store_owner_only(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char p[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		if (stat(p, &st) || (st.st_mode & 077) == 0)
			continue;
		if (chmod(p, st.st_mode & 0700))
			log_warn("database %s: cannot make it readable by its owner only (a reader "
				 "could keep the WAL from being emptied): %s",
				 p, strerror(errno));
	}
}

static int store_open_mode(const char *path, bool readonly, struct store **out)
{
	int flags = SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_FULLMUTEX;
	struct store *st;
	int err;

	*out = NULL;
	if (!path || !*path) {
		log_error("database: no path given");
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->path = strdup(path);
	if (!st->path) {
		free(st);
		return -ENOMEM;
	}
	st->readonly = readonly;
	st->healthy = true;

	flags |= readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	err = store_connect(st, path, flags);
	if (err == -EROFS && access(path, R_OK) == 0 && access(path, W_OK) != 0) {
		/*
		 * A WAL database that we may not write, in a folder where its -shm file is
		 * missing and cannot be created (read-only folder or mount): only an immutable
		 * open can read it. A writer would have to create the -shm file first, which
		 * only root could here; what it wrote then is not seen until the next open.
		 */
		char *uri = store_immutable_uri(path);

		sqlite3_close(st->db);
		st->db = NULL;
		if (!uri) {
			err = -ENOMEM;
			goto fail;
		}
		st->readonly = true;
		err = store_connect(st, uri,
				    SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_FULLMUTEX |
					    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
		free(uri);
		if (err >= 0)
			log_warn("database %s: the file and its folder are read-only: reading it "
				 "as immutable",
				 path);
	}
	if (err >= 0)
		err = store_exec(st, "PRAGMA foreign_keys = ON", "enable foreign keys");
	if (err < 0) {
		/* WAL mode creates PATH-wal and PATH-shm next to the file */
		log_error("database %s: %s%s", path, st->errbuf,
			  err == -EROFS ? "; its folder must be writable (WAL needs -wal and -shm "
					  "files next to it)"
					: "");
		goto fail;
	}
	if (!st->readonly && sqlite3_db_readonly(st->db, "main") == 1)
		st->readonly = true; /* opened, but only for reading: file mode, mount */
	if (!st->readonly) {
		store_pragmas(st);
		store_owner_only(path);
	}

	err = store_migrate(st, readonly);
	if (err)
		goto fail;
	err = store_prepare(st);
	if (err)
		goto fail;
	/*
	 * The first commit of a new WAL syncs its header (store_checkpoint()). The last
	 * connection's close removed the WAL: that commit is made here, while opening, not by
	 * the first row the analyzer's loop writes (2.5-3 ms of waiting for the disk there). It
	 * counts the opens (analyzer_state 'opened_for_writing'): a value that always changes,
	 * since SQLite writes no page for an update that changes nothing.
	 */
	if (!st->readonly)
		sqlite3_exec(
			st->db,
			"INSERT INTO analyzer_state (key, value) VALUES ('opened_for_writing', '1')"
			"  ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
			NULL, NULL, NULL);
	if (st->readonly && !readonly)
		log_warn("database %s: read-only: bans and statistics will not be recorded", path);
	/* what failed while opening is not a write failure */
	st->healthy = true;
	st->errbuf[0] = '\0';
	st->errors = 0;
	*out = st;
	return 0;

fail:
	store_close(st);
	return err;
}

int store_open(const char *path, struct store **out)
{
	return store_open_mode(path, false, out);
}

int store_open_readonly(const char *path, struct store **out)
{
	return store_open_mode(path, true, out);
}

void store_close(struct store *st)
{
	unsigned int i;

	if (!st)
		return;
	if (st->db)
		store_read_end(st); /* a read left open: the checkpoint would wait for it */
	if (st->db && (st->batch_open || st->op_open)) {
		log_warn("database %s: closed inside a store_begin() batch; its rows are lost",
			 st->path);
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	for (i = 0; i < STMT_COUNT_; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db) {
		if (!st->readonly && st->stmt[0])
			sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL);
		sqlite3_close(st->db);
	}
	free(st->top);
	free(st->path);
	free(st);
}

/* --- bans --- */

int64_t store_ban_insert(struct store *st, const struct store_ban *ban)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_INSERT];
	const char *reason = store_reason_name(ban->reason);
	const char *source = store_source_name(ban->source);
	int err;

	if (!reason || !source || strnlen(ban->rule, STORE_RULE_MAX) >= STORE_RULE_MAX ||
	    strnlen(ban->path, STORE_PATH_MAX) >= STORE_PATH_MAX)
		return -EINVAL;
	err = bind_net(s, 1, &ban->net);
	if (err)
		return err;
	sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, ban->rule, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, u64_to_db(ban->hits));
	sqlite3_bind_int64(s, 7, ban->banned_at);
	bind_time_or_null(s, 8, ban->expires_at);
	bind_time_or_null(s, 9, ban->ended_at);
	sqlite3_bind_int64(s, 10, ban->escalation_level);
	sqlite3_bind_int(s, 11, ban->dry_run ? 1 : 0);
	if (ban->ended_at && ban->end_reason[0])
		sqlite3_bind_text(s, 12, ban->end_reason, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 12);
	sqlite3_bind_text(s, 13, ban->path, -1, SQLITE_TRANSIENT);
	if (ban->has_req) {
		sqlite3_bind_int(s, 14, ban->sport);
		sqlite3_bind_int(s, 15, ban->dport);
		sqlite3_bind_int64(s, 16, ban->seq);
		sqlite3_bind_int64(s, 17, ban->conn_isn);
	} else {
		sqlite3_bind_null(s, 14);
		sqlite3_bind_null(s, 15);
		sqlite3_bind_null(s, 16);
		sqlite3_bind_null(s, 17);
	}
	err = store_run(st, STMT_BAN_INSERT, "insert ban");
	if (err)
		return err;
	store_ok(st);
	return sqlite3_last_insert_rowid(st->db);
}

/* Run an UPDATE/DELETE: the number of rows changed or -errno. */
static int store_run_changes(struct store *st, enum store_stmt id, const char *what)
{
	int err = store_run(st, id, what);

	if (err)
		return err;
	store_ok(st);
	return sqlite3_changes(st->db);
}

int store_ban_end(struct store *st, int64_t id, int64_t ended_at)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_END];
	int n;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, ended_at);
	n = store_run_changes(st, STMT_BAN_END, "end ban");
	return n < 0 ? n : n ? 0 : -ENOENT;
}

int store_ban_end_why(struct store *st, int64_t id, int64_t ended_at, const char *why)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_END_WHY];
	int n;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, ended_at);
	sqlite3_bind_text(s, 3, why, -1, SQLITE_TRANSIENT);
	n = store_run_changes(st, STMT_BAN_END_WHY, "end ban");
	return n < 0 ? n : n ? 0 : -ENOENT;
}

int store_state_get(struct store *st, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *s = st->stmt[STMT_STATE_GET];
	int rc, ret = 0;

	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);

		snprintf(buf, len, "%s", v ? v : "");
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = store_fail(st, "read state", rc);
	}
	sqlite3_reset(s);
	return ret;
}

int store_state_set(struct store *st, const char *key, const char *value)
{
	sqlite3_stmt *s = st->stmt[STMT_STATE_SET];
	int err;

	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_TRANSIENT);
	err = store_run(st, STMT_STATE_SET, "write state");
	if (!err)
		store_ok(st);
	return err;
}

int store_ban_end_net(struct store *st, const struct addr_cidr *net, int64_t ended_at)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_END_NET];
	int err;

	err = bind_net(s, 1, net);
	if (err)
		return err;
	sqlite3_bind_int64(s, 3, ended_at);
	return store_run_changes(st, STMT_BAN_END_NET, "end bans of an address");
}

int store_ban_end_expired(struct store *st, int64_t now)
{
	sqlite3_bind_int64(st->stmt[STMT_BAN_END_EXPIRED], 1, now);
	return store_run_changes(st, STMT_BAN_END_EXPIRED, "end expired bans");
}

int store_ban_add_hits(struct store *st, int64_t id, uint64_t delta)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_ADD_HITS];
	int n;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, u64_to_db(delta));
	n = store_run_changes(st, STMT_BAN_ADD_HITS, "count hits");
	return n < 0 ? n : n ? 0 : -ENOENT;
}

/* The current row of a BAN_COLS statement -> *b: 0, or -EINVAL for a row that is bad. */
static int store_ban_row(struct store *st, sqlite3_stmt *s, struct store_ban *b)
{
	const char *text;
	int reason, source;
	sqlite3_int64 level;

	memset(b, 0, sizeof(*b));
	b->id = sqlite3_column_int64(s, 0);
	reason = store_name_index(store_reasons, ARRAY_SIZE(store_reasons),
				  (const char *)sqlite3_column_text(s, 3));
	source = store_name_index(store_sources, ARRAY_SIZE(store_sources),
				  (const char *)sqlite3_column_text(s, 5));
	level = sqlite3_column_int64(s, 10);
	if (db_to_net(s, 1, &b->net) || reason < 0 || source < 0 ||
	    db_to_str(s, 4, b->rule, sizeof(b->rule)) || level < 0 || level > UINT32_MAX) {
		log_debug("database %s: malicious_ips row %" PRId64 " is not readable; skipped",
			  st->path, b->id);
		return -EINVAL;
	}
	b->reason = (enum ebpfmon_ban_reason)reason;
	b->source = (enum store_ban_source)source;
	b->hits = db_to_u64(s, 6);
	b->banned_at = sqlite3_column_int64(s, 7);
	b->expires_at = sqlite3_column_int64(s, 8);
	b->ended_at = sqlite3_column_int64(s, 9);
	b->escalation_level = (uint32_t)level;
	b->dry_run = sqlite3_column_int(s, 11) != 0;
	/* free texts: cut to fit rather than skip the row */
	text = (const char *)sqlite3_column_text(s, 12);
	snprintf(b->end_reason, sizeof(b->end_reason), "%s", text ? text : "");
	text = (const char *)sqlite3_column_text(s, 13);
	snprintf(b->path, sizeof(b->path), "%s", text ? text : "");
	return 0;
}

int store_ban_find_active(struct store *st, const struct addr_cidr *net, struct store_ban *out)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_FIND_ACTIVE];
	int rc, ret = 0;

	ret = bind_net(s, 1, net);
	if (ret)
		return ret;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!store_ban_row(st, s, out)) {
			ret = 1;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_fail(st, "find active ban", rc);
	sqlite3_reset(s);
	return ret;
}

int64_t store_ban_count_since(struct store *st, const struct addr_cidr *net, int64_t since,
			      bool dry_run)
{
	sqlite3_stmt *s = st->stmt[STMT_BAN_COUNT_SINCE];
	int err;

	err = bind_net(s, 1, net);
	if (err)
		return err;
	sqlite3_bind_int64(s, 3, since);
	sqlite3_bind_int(s, 4, dry_run ? 1 : 0);
	return store_run_int(st, STMT_BAN_COUNT_SINCE, "count bans");
}

int64_t store_ban_offences(struct store *st, int64_t since, store_offence_cb cb, void *ctx)
{
	static const char sql[] = "SELECT address, dry_run, count(*) FROM malicious_ips"
				  " WHERE prefix_len IS NULL AND banned_at >= ?"
				  " GROUP BY address, dry_run";
	sqlite3_stmt *s = NULL;
	int64_t n = 0;
	int rc, ret;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_fail(st, "count offences", rc);
	sqlite3_bind_int64(s, 1, since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(s, 0);
		struct ebpfmon_addr addr;

		if (!text || addr_parse(text, &addr))
			continue; /* a row we cannot read: not counted */
		n++;
		ret = cb(&addr, sqlite3_column_int(s, 1) != 0, (uint64_t)sqlite3_column_int64(s, 2),
			 ctx);
		if (ret) {
			sqlite3_finalize(s);
			return ret < 0 ? ret : n;
		}
	}
	if (rc != SQLITE_DONE)
		n = store_fail(st, "count offences", rc);
	sqlite3_finalize(s);
	return n;
}

int64_t store_ban_requests(struct store *st, int64_t since, store_request_cb cb, void *ctx)
{
	static const char sql[] = "SELECT address, sport, dport, seq, banned_at, conn_isn"
				  " FROM malicious_ips"
				  " WHERE banned_at >= ? AND prefix_len IS NULL"
				  " AND reason = 'url_rule' AND seq IS NOT NULL"
				  " ORDER BY banned_at, id";
	sqlite3_stmt *s = NULL;
	int64_t n = 0;
	int rc, ret;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_fail(st, "list requests", rc);
	sqlite3_bind_int64(s, 1, since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(s, 0);
		int64_t sport = sqlite3_column_int64(s, 1), dport = sqlite3_column_int64(s, 2);
		int64_t seq = sqlite3_column_int64(s, 3);
		struct store_request r;

		if (!text || addr_parse(text, &r.addr) || sport < 0 || sport > UINT16_MAX ||
		    dport < 0 || dport > UINT16_MAX || seq < 0 || seq > UINT32_MAX)
			continue; /* a row we cannot read: not remembered */
		r.sport = (uint16_t)sport;
		r.dport = (uint16_t)dport;
		r.seq = (uint32_t)seq;
		r.banned_at = sqlite3_column_int64(s, 4);
		r.conn_isn = (uint32_t)sqlite3_column_int64(s, 5); /* NULL: 0, not known */
		n++;
		ret = cb(&r, ctx);
		if (ret) {
			sqlite3_finalize(s);
			return ret < 0 ? ret : n;
		}
	}
	if (rc != SQLITE_DONE)
		n = store_fail(st, "list requests", rc);
	sqlite3_finalize(s);
	return n;
}

/* Pass every readable row of a bound BAN_COLS statement to cb; see store_ban_list(). */
static int64_t store_ban_walk(struct store *st, enum store_stmt id, const char *what,
			      store_ban_cb cb, void *ctx)
{
	sqlite3_stmt *s = st->stmt[id];
	struct store_ban b;
	int64_t n = 0;
	int rc, ret;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_ban_row(st, s, &b))
			continue;
		n++;
		ret = cb(&b, ctx);
		if (ret) {
			sqlite3_reset(s);
			return ret < 0 ? ret : n;
		}
	}
	if (rc != SQLITE_DONE)
		n = store_fail(st, what, rc);
	sqlite3_reset(s);
	return n;
}

int64_t store_ban_list_active(struct store *st, store_ban_cb cb, void *ctx)
{
	return store_ban_walk(st, STMT_BAN_LIST_RECONCILE, "list active bans", cb, ctx);
}

int64_t store_ban_list(struct store *st, const struct store_query *q, store_ban_cb cb, void *ctx)
{
	enum store_stmt id = q && q->active_only ? STMT_BAN_LIST_ACTIVE : STMT_BAN_LIST;
	sqlite3_stmt *s = st->stmt[id];
	int err;

	if (q && q->net) {
		err = bind_net(s, 1, q->net);
		if (err)
			return err;
	} else {
		sqlite3_bind_null(s, 1);
		sqlite3_bind_null(s, 2);
	}
	bind_time_or_null(s, 3, q ? q->since : 0);
	bind_time_or_null(s, 4, q ? q->until : 0);
	bind_limit(s, 5, q);
	return store_ban_walk(st, id, "list bans", cb, ctx);
}

/*
 * The read transactions of read-only stores in this process (the API's reader) against the
 * checkpoint that empties the WAL. A reader's snapshot keeps the WAL from being started over,
 * and read calls back to back (a client asking for deep pages in a loop) would leave no gap
 * for the checkpoint's TRUNCATE: the WAL would grow as long as they go on. So the checkpoint
 * closes the gate, waits for the reads in progress to end (up to STORE_CKPT_DRAIN_MS), empties
 * the WAL and opens it again; a read that comes meanwhile waits (up to STORE_READ_HOLD_MS).
 */
static struct {
	pthread_once_t once;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	unsigned int reads;
	bool closed;
} read_gate = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER};

static void read_gate_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&read_gate.cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* Wait on the gate until done() or ms have passed; with read_gate.mu held. */
static void read_gate_wait(bool (*done)(void), unsigned int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (!done())
		if (pthread_cond_timedwait(&read_gate.cv, &read_gate.mu, &until))
			break;
}

static bool gate_open(void)
{
	return !read_gate.closed;
}

static bool no_reads(void)
{
	return !read_gate.reads;
}

int store_read_begin(struct store *st)
{
	if (!st->readonly || !sqlite3_get_autocommit(st->db))
		return 0;
	pthread_once(&read_gate.once, read_gate_init);
	pthread_mutex_lock(&read_gate.mu);
	read_gate_wait(gate_open, STORE_READ_HOLD_MS);
	read_gate.reads++;
	pthread_mutex_unlock(&read_gate.mu);
	st->read_open = true;
	return store_exec(st, "BEGIN", "begin a read");
}

void store_read_end(struct store *st)
{
	if (!st->read_open)
		return;
	st->read_open = false;
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_lock(&read_gate.mu);
	read_gate.reads--;
	pthread_cond_broadcast(&read_gate.cv);
	pthread_mutex_unlock(&read_gate.mu);
}

int64_t store_ban_count(struct store *st, const struct store_query *q)
{
	int64_t since = q && q->since ? q->since : INT64_MIN;
	int64_t until = q && q->until ? q->until : INT64_MAX;
	bool active = q && q->active_only;
	enum store_stmt id;
	sqlite3_stmt *s;
	int err;

	if (q && q->net) {
		id = STMT_BAN_COUNT_NET;
		s = st->stmt[id];
		err = bind_net(s, 1, q->net);
		if (err)
			return err;
		sqlite3_bind_int64(s, 3, since);
		sqlite3_bind_int64(s, 4, until);
		sqlite3_bind_int(s, 5, active);
	} else if (!active && since == INT64_MIN && until == INT64_MAX) {
		id = STMT_BAN_COUNT; /* the table's own count */
	} else {
		id = active ? STMT_BAN_COUNT_ACTIVE : STMT_BAN_COUNT_RANGE;
		s = st->stmt[id];
		sqlite3_bind_int64(s, 1, since);
		sqlite3_bind_int64(s, 2, until);
	}
	return store_run_int(st, id, "count bans");
}

/* --- network_stats --- */

/* Insert n top rows of stats_id; the caller holds the transaction. 0 or -errno. */
static int store_top_rows(struct store *st, int64_t stats_id, const struct store_top *top, size_t n)
{
	sqlite3_stmt *s = st->stmt[STMT_TOP_INSERT];
	char buf[ADDR_STRLEN];
	size_t i;
	int err;

	for (i = 0; i < n; i++) {
		addr_format(&top[i].addr, buf, sizeof(buf));
		sqlite3_bind_int64(s, 1, stats_id);
		sqlite3_bind_text(s, 2, buf, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, u64_to_db(top[i].packets));
		sqlite3_bind_int64(s, 4, u64_to_db(top[i].bytes));
		sqlite3_bind_int64(s, 5, u64_to_db(top[i].syns));
		sqlite3_bind_int64(s, 6, u64_to_db(top[i].connections));
		err = store_run(st, STMT_TOP_INSERT, "insert top address");
		/* buf is bound SQLITE_STATIC: unbind it before it goes out of scope */
		sqlite3_bind_null(s, 2);
		if (err)
			return err;
	}
	return 0;
}

int64_t store_stats_insert(struct store *st, const struct store_net_stats *stats,
			   const struct store_top *top, size_t ntop)
{
	sqlite3_stmt *s = st->stmt[STMT_STATS_INSERT];
	int64_t id = 0;
	bool own;
	int err;

	if (ntop && !top)
		return -EINVAL;
	err = store_op_begin(st, "insert snapshot", &own);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, stats->ts);
	sqlite3_bind_int64(s, 2, u64_to_db(stats->rx_packets));
	sqlite3_bind_int64(s, 3, u64_to_db(stats->rx_bytes));
	sqlite3_bind_int64(s, 4, u64_to_db(stats->tx_packets));
	sqlite3_bind_int64(s, 5, u64_to_db(stats->tx_bytes));
	sqlite3_bind_int64(s, 6, u64_to_db(stats->tracked));
	sqlite3_bind_int64(s, 7, u64_to_db(stats->bans_active));
	sqlite3_bind_int64(s, 8, u64_to_db(stats->drops));
	err = store_run(st, STMT_STATS_INSERT, "insert snapshot");
	if (!err) {
		id = sqlite3_last_insert_rowid(st->db);
		err = store_top_rows(st, id, top, ntop);
	}
	err = store_op_end(st, "insert snapshot", own, err);
	return err ? err : id;
}

int64_t store_stats_add_top(struct store *st, int64_t stats_id, const struct store_top *top,
			    size_t n)
{
	bool own;
	int64_t found;
	int err;

	if (n && !top)
		return -EINVAL;
	err = store_op_begin(st, "insert top addresses", &own);
	if (err)
		return err;
	sqlite3_bind_int64(st->stmt[STMT_STATS_EXISTS], 1, stats_id);
	found = store_run_int(st, STMT_STATS_EXISTS, "insert top addresses");
	if (found < 0)
		err = (int)found;
	else if (!found)
		err = -ENOENT;
	else
		err = store_top_rows(st, stats_id, top, n);
	err = store_op_end(st, "insert top addresses", own, err);
	return err ? err : (int64_t)n;
}

/* The top rows of one snapshot into st->top: their number or -errno. */
static int64_t store_top_load(struct store *st, int64_t stats_id)
{
	sqlite3_stmt *s = st->stmt[STMT_TOP_LIST];
	size_t n = 0;
	int rc;

	sqlite3_bind_int64(s, 1, stats_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(s, 0);
		struct store_top *t;

		if (n == st->top_cap) {
			size_t cap = st->top_cap ? st->top_cap * 2 : 16;
			struct store_top *p = realloc(st->top, cap * sizeof(*p));

			if (!p) {
				sqlite3_reset(s);
				return -ENOMEM;
			}
			st->top = p;
			st->top_cap = cap;
		}
		t = &st->top[n];
		if (!text || addr_parse(text, &t->addr)) {
			log_debug("database %s: a network_stats_top row of snapshot %" PRId64
				  " is not readable; skipped",
				  st->path, stats_id);
			continue;
		}
		t->packets = db_to_u64(s, 1);
		t->bytes = db_to_u64(s, 2);
		t->syns = db_to_u64(s, 3);
		t->connections = db_to_u64(s, 4);
		n++;
	}
	if (rc != SQLITE_DONE) {
		int err = store_fail(st, "list top addresses", rc);

		sqlite3_reset(s);
		return err;
	}
	sqlite3_reset(s);
	return (int64_t)n;
}

int64_t store_stats_list(struct store *st, const struct store_query *q, store_stats_cb cb,
			 void *ctx)
{
	sqlite3_stmt *s = st->stmt[STMT_STATS_LIST];
	struct store_net_stats ns;
	int64_t n = 0, ntop;
	int rc, ret;

	bind_time_or_null(s, 1, q ? q->since : 0);
	bind_time_or_null(s, 2, q ? q->until : 0);
	bind_limit(s, 3, q);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ns.id = sqlite3_column_int64(s, 0);
		ns.ts = sqlite3_column_int64(s, 1);
		ns.rx_packets = db_to_u64(s, 2);
		ns.rx_bytes = db_to_u64(s, 3);
		ns.tx_packets = db_to_u64(s, 4);
		ns.tx_bytes = db_to_u64(s, 5);
		ns.tracked = db_to_u64(s, 6);
		ns.bans_active = db_to_u64(s, 7);
		ns.drops = db_to_u64(s, 8);
		ntop = store_top_load(st, ns.id);
		if (ntop < 0) {
			sqlite3_reset(s);
			return ntop;
		}
		n++;
		ret = cb(&ns, ntop ? st->top : NULL, (size_t)ntop, ctx);
		if (ret) {
			sqlite3_reset(s);
			return ret < 0 ? ret : n;
		}
	}
	if (rc != SQLITE_DONE)
		n = store_fail(st, "list snapshots", rc);
	sqlite3_reset(s);
	return n;
}

/* --- system_anomalies --- */

/* Bind a process (pid 0 / comm NULL or "" = unknown: NULL) to ?idx and ?idx+1. */
static void bind_process(sqlite3_stmt *s, int idx, int32_t pid, const char *comm)
{
	if (pid > 0)
		sqlite3_bind_int(s, idx, pid);
	else
		sqlite3_bind_null(s, idx);
	if (comm && *comm)
		sqlite3_bind_text(s, idx + 1, comm, (int)strnlen(comm, STORE_COMM_MAX - 1),
				  SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, idx + 1);
}

int64_t store_anomaly_open(struct store *st, const struct store_anomaly *a)
{
	sqlite3_stmt *s = st->stmt[STMT_ANOM_OPEN];
	const char *kind = store_anomaly_kind_name(a->kind);
	int err;

	if (!kind || !isfinite(a->peak) || !isfinite(a->threshold))
		return -EINVAL;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, a->started_at);
	sqlite3_bind_double(s, 3, a->peak);
	sqlite3_bind_double(s, 4, a->threshold);
	bind_process(s, 5, a->top_pid, a->top_comm);
	err = store_run(st, STMT_ANOM_OPEN, "open anomaly");
	if (err)
		return err;
	store_ok(st);
	return sqlite3_last_insert_rowid(st->db);
}

int store_anomaly_peak(struct store *st, int64_t id, double value, int32_t top_pid,
		       const char *top_comm)
{
	sqlite3_stmt *s = st->stmt[STMT_ANOM_PEAK];
	int n;

	if (!isfinite(value))
		return -EINVAL;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_double(s, 2, value);
	bind_process(s, 3, top_pid, top_comm);
	n = store_run_changes(st, STMT_ANOM_PEAK, "raise anomaly peak");
	return n < 0 ? n : n ? 1 : 0;
}

int store_anomaly_top(struct store *st, int64_t id, int32_t top_pid, const char *top_comm)
{
	sqlite3_stmt *s = st->stmt[STMT_ANOM_TOP];
	int n;

	sqlite3_bind_int64(s, 1, id);
	bind_process(s, 2, top_pid, top_comm);
	n = store_run_changes(st, STMT_ANOM_TOP, "name anomaly top process");
	return n < 0 ? n : n ? 0 : -ENOENT;
}

int store_anomaly_close(struct store *st, int64_t id, int64_t ended_at)
{
	sqlite3_stmt *s = st->stmt[STMT_ANOM_CLOSE];
	int n;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, ended_at);
	n = store_run_changes(st, STMT_ANOM_CLOSE, "close anomaly");
	return n < 0 ? n : n ? 0 : -ENOENT;
}

int store_anomaly_close_all(struct store *st, int64_t ended_at)
{
	sqlite3_bind_int64(st->stmt[STMT_ANOM_CLOSE_ALL], 1, ended_at);
	return store_run_changes(st, STMT_ANOM_CLOSE_ALL, "close open anomalies");
}

int64_t store_anomaly_list(struct store *st, const struct store_query *q, store_anomaly_cb cb,
			   void *ctx)
{
	sqlite3_stmt *s = st->stmt[STMT_ANOM_LIST];
	const char *kind = NULL;
	struct store_anomaly a;
	int64_t n = 0;
	int rc, ret, k;
	double peak, threshold;

	if (q && q->kind) {
		kind = store_anomaly_kind_name(q->kind);
		if (!kind)
			return -EINVAL;
	}
	sqlite3_bind_int(s, 1, q && q->active_only ? 1 : 0);
	if (kind)
		sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	bind_time_or_null(s, 3, q ? q->since : 0);
	bind_time_or_null(s, 4, q ? q->until : 0);
	bind_limit(s, 5, q);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&a, 0, sizeof(a));
		a.id = sqlite3_column_int64(s, 0);
		k = store_name_index(store_kinds, ARRAY_SIZE(store_kinds),
				     (const char *)sqlite3_column_text(s, 1));
		peak = sqlite3_column_double(s, 4);
		threshold = sqlite3_column_double(s, 5);
		if (k < 0) {
			log_debug("database %s: system_anomalies row %" PRId64
				  " is not readable; skipped",
				  st->path, a.id);
			continue;
		}
		a.kind = (enum store_anomaly_kind)k;
		a.started_at = sqlite3_column_int64(s, 2);
		a.ended_at = sqlite3_column_int64(s, 3);
		a.peak = peak;
		a.threshold = threshold;
		a.top_pid = (int32_t)sqlite3_column_int(s, 6);
		/* a comm too long for us is cut rather than dropped: the episode matters more */
		snprintf(a.top_comm, sizeof(a.top_comm), "%s",
			 sqlite3_column_text(s, 7) ? (const char *)sqlite3_column_text(s, 7) : "");
		n++;
		ret = cb(&a, ctx);
		if (ret) {
			sqlite3_reset(s);
			return ret < 0 ? ret : n;
		}
	}
	if (rc != SQLITE_DONE)
		n = store_fail(st, "list anomalies", rc);
	sqlite3_reset(s);
	return n;
}

int64_t store_anomaly_count(struct store *st, const struct store_query *q)
{
	sqlite3_stmt *s = st->stmt[STMT_ANOM_COUNT_MATCH];
	const char *kind = NULL;

	if (!q || (!q->active_only && !q->kind && !q->since && !q->until))
		return store_run_int(st, STMT_ANOM_COUNT, "count anomalies");
	if (q->kind) {
		kind = store_anomaly_kind_name(q->kind);
		if (!kind)
			return -EINVAL;
	}
	sqlite3_bind_int(s, 1, q->active_only ? 1 : 0);
	if (kind)
		sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	bind_time_or_null(s, 3, q->since);
	bind_time_or_null(s, 4, q->until);
	return store_run_int(st, STMT_ANOM_COUNT_MATCH, "count anomalies");
}

/* --- retention --- */

struct store_retention {
	const char *table;
	enum store_stmt count, del_age, del_oldest;
};

static const struct store_retention store_tables[] = {
	{"malicious_ips", STMT_BAN_COUNT, STMT_BAN_DEL_AGE, STMT_BAN_DEL_OLDEST},
	{"network_stats", STMT_STATS_COUNT, STMT_STATS_DEL_AGE, STMT_STATS_DEL_OLDEST},
	{"system_anomalies", STMT_ANOM_COUNT, STMT_ANOM_DEL_AGE, STMT_ANOM_DEL_OLDEST},
};

/* One chunk of a DELETE, bound by the caller, in its own transaction: rows deleted or -errno. */
static int store_delete_chunk(struct store *st, enum store_stmt id, const char *what)
{
	bool own;
	int err, n = 0;

	err = store_op_begin(st, what, &own);
	if (err)
		return err;
	err = store_run(st, id, what);
	if (!err)
		n = sqlite3_changes(st->db);
	err = store_op_end(st, what, own, err);
	return err ? err : n;
}

/* Rows a statement of store_cleanup_some() may still delete: at most chunk, within limit. */
static int cleanup_chunk(int64_t want, int64_t chunk, int64_t total, int64_t limit)
{
	int64_t c = want < chunk ? want : chunk;

	if (c > limit - total)
		c = limit - total;
	return c > 0 ? (int)c : 0;
}

/*
 * Rows the next DELETE of table i takes: STORE_CLEANUP_CHUNK without a deadline; with one,
 * what run->chunk[i] became after the table's last chunk (cleanup_took()).
 */
static int64_t cleanup_rows(const struct store_cleanup *run, unsigned int i)
{
	if (!run || !run->until_ns)
		return STORE_CLEANUP_CHUNK;
	return run->chunk[i] ? run->chunk[i] : STORE_CLEANUP_CHUNK_FIRST;
}

/*
 * True when a run with a deadline reached it: nothing more in this call. A call does one
 * count or chunk (*work) before it looks, so that every call moves the run on.
 */
static bool cleanup_late(struct store_cleanup *run, int *work)
{
	uint64_t now;

	if (!run || !run->until_ns || !(*work)++)
		return false;
	now = mono_ns();
	if (now < run->until_ns &&
	    (!atomic_load_explicit(&run->cut, memory_order_relaxed) || now < run->cut_after_ns))
		return false;
	run->more = true;
	return true;
}

/*
 * A chunk of rows of table i took since_ns until now: the table's next chunk is what
 * STORE_CLEANUP_CHUNK_NS deletes at that cost a row, at most twice the chunk before, within
 * STORE_CLEANUP_CHUNK_MIN..STORE_CLEANUP_CHUNK.
 */
static void cleanup_took(struct store_cleanup *run, unsigned int i, int rows, uint64_t since_ns)
{
	uint64_t took, next, before;

	if (!run || !run->until_ns)
		return;
	before = (uint64_t)cleanup_rows(run, i);
	took = mono_ns() - since_ns;
	next = took ? (uint64_t)rows * STORE_CLEANUP_CHUNK_NS / took : before * 2;
	if (next > before * 2)
		next = before * 2;
	if (next > STORE_CLEANUP_CHUNK)
		next = STORE_CLEANUP_CHUNK;
	if (next < STORE_CLEANUP_CHUNK_MIN)
		next = STORE_CLEANUP_CHUNK_MIN;
	run->chunk[i] = (int)next;
}

int64_t store_cleanup_some(struct store *st, uint32_t max_records, int64_t max_age_seconds,
			   int64_t now, int64_t limit, struct store_cleanup *run)
{
	int64_t total = 0, count, excess;
	unsigned int i;
	uint64_t t0;
	int n, chunk, work = 0;

	_Static_assert(ARRAY_SIZE(store_tables) == ARRAY_SIZE(run->excess), "store_cleanup");
	_Static_assert(ARRAY_SIZE(store_tables) == ARRAY_SIZE(run->chunk), "store_cleanup");
	if (run)
		run->more = false;
	for (i = 0; i < ARRAY_SIZE(store_tables); i++) {
		const struct store_retention *r = &store_tables[i];
		int64_t aged = 0;

		if (max_age_seconds > 0) {
			do {
				chunk = cleanup_chunk(INT64_MAX, cleanup_rows(run, i), total,
						      limit);
				if (!chunk || cleanup_late(run, &work))
					goto out;
				t0 = mono_ns();
				sqlite3_bind_int64(st->stmt[r->del_age], 1, now - max_age_seconds);
				sqlite3_bind_int(st->stmt[r->del_age], 2, chunk);
				n = store_delete_chunk(st, r->del_age, "delete old rows");
				if (n < 0)
					return n;
				cleanup_took(run, i, chunk, t0);
				total += n;
				aged += n;
			} while (n == chunk);
		}
		if (!max_records)
			continue;
		if (run && run->counted[i]) {
			excess = run->excess[i] - aged; /* rows that aged out since the count */
		} else {
			if (cleanup_late(run, &work))
				goto out;
			count = store_run_int(st, r->count, "count rows");
			if (count < 0)
				return count;
			excess = count - (int64_t)max_records;
		}
		while (excess > 0) {
			chunk = cleanup_chunk(excess, cleanup_rows(run, i), total, limit);
			if (!chunk || cleanup_late(run, &work))
				break;
			t0 = mono_ns();
			sqlite3_bind_int(st->stmt[r->del_oldest], 1, chunk);
			n = store_delete_chunk(st, r->del_oldest, "delete oldest rows");
			if (n < 0)
				return n;
			cleanup_took(run, i, chunk, t0);
			total += n;
			excess -= n;
			if (n < chunk)
				excess = 0; /* only active bans / open anomalies are left */
		}
		if (run) {
			run->counted[i] = true;
			run->excess[i] = excess > 0 ? excess : 0;
		}
		if (excess > 0)
			break; /* limit or deadline reached */
	}
out:
	return total;
}

int64_t store_cleanup(struct store *st, uint32_t max_records, int64_t max_age_seconds, int64_t now)
{
	int64_t total = store_cleanup_some(st, max_records, max_age_seconds, now, INT64_MAX, NULL);

	if (total > 0)
		log_debug("database %s: retention deleted %" PRId64 " rows", st->path, total);
	return total;
}

/* --- checkpoints off the writer's thread --- */

bool store_checkpoint_due(const struct store *st)
{
	return st && !st->readonly && st->wal_frames >= STORE_CHECKPOINT_FRAMES &&
	       mono_ns() >= st->checkpoint_at_ns + STORE_CHECKPOINT_GAP_NS;
}

int store_wal_frames(const struct store *st)
{
	return st ? st->wal_frames : 0;
}

void store_checkpoint_started(struct store *st)
{
	if (st)
		st->checkpoint_at_ns = mono_ns();
}

const char *store_path(const struct store *st)
{
	return st ? st->path : NULL;
}

struct store_checkpointer {
	sqlite3 *db;
	char *path;
};

void store_checkpointer_free(struct store_checkpointer *ck)
{
	if (!ck)
		return;
	sqlite3_close(ck->db);
	free(ck->path);
	free(ck);
}

int store_checkpoint(struct store_checkpointer **ckp, const char *path, int *frames, char *err,
		     size_t errlen)
{
	struct store_checkpointer *ck = *ckp;
	int rc, log_frames = -1, done = -1;

	*frames = -1;
	if (ck && strcmp(ck->path, path)) { /* the database moved (a reload) */
		store_checkpointer_free(ck);
		*ckp = ck = NULL;
	}
	if (!ck) {
		ck = calloc(1, sizeof(*ck));
		if (!ck || !(ck->path = strdup(path))) {
			free(ck);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		store_sqlite_once();
		rc = sqlite3_open_v2(path, &ck->db,
				     SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE |
					     SQLITE_OPEN_FULLMUTEX,
				     NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "open a checkpoint connection: %s",
				 ck->db ? sqlite3_errmsg(ck->db) : sqlite3_errstr(rc));
			rc = store_errno(ck->db, rc);
			store_checkpointer_free(ck);
			return rc;
		}
		sqlite3_busy_timeout(ck->db, STORE_BUSY_TIMEOUT_MS);
		/* a connection knows the database is in WAL mode once it has read it */
		rc = sqlite3_exec(ck->db,
				  "PRAGMA synchronous = NORMAL; SELECT count(*) FROM sqlite_master",
				  NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "open a checkpoint connection: %s",
				 sqlite3_errmsg(ck->db));
			rc = store_errno(ck->db, rc);
			store_checkpointer_free(ck);
			return rc;
		}
		*ckp = ck;
	}
	/* first without the write lock, then with it only to empty the WAL */
	rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
	if (rc == SQLITE_OK) {
		/*
		 * TRUNCATE holds the write lock while it waits for readers (an operator's sqlite3
		 * on the file, the API's reader): a writer of the loop waits as long. A reader that
		 * stays longer than STORE_CKPT_READERS_MS keeps the WAL as it is until the next one.
		 */
		pthread_once(&read_gate.once, read_gate_init);
		pthread_mutex_lock(&read_gate.mu);
		read_gate.closed = true;
		read_gate_wait(no_reads, STORE_CKPT_DRAIN_MS);
		pthread_mutex_unlock(&read_gate.mu);
		sqlite3_busy_timeout(ck->db, STORE_CKPT_READERS_MS);
		rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
					       NULL);
		sqlite3_busy_timeout(ck->db, STORE_BUSY_TIMEOUT_MS);
		pthread_mutex_lock(&read_gate.mu);
		read_gate.closed = false;
		pthread_cond_broadcast(&read_gate.cv);
		pthread_mutex_unlock(&read_gate.mu);
	}
	*frames = done;
	if (rc == SQLITE_BUSY) /* a reader stayed: what it did not need is copied back */
		return 0;
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "checkpoint: %s", sqlite3_errmsg(ck->db));
		return store_errno(ck->db, rc);
	}
	/*
	 * The WAL is empty: the next commit writes its header and waits for the disk to have it
	 * (SQLite syncs a new WAL header even with synchronous = NORMAL, so that frames written
	 * after it cannot be mistaken for older ones). This commit is that one, here rather than
	 * on the writer's thread.
	 */
	rc = sqlite3_exec(ck->db, WAL_START_SQL, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "start the WAL: %s", sqlite3_errmsg(ck->db));
		return store_errno(ck->db, rc);
	}
	return 0;
}
