/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The SQLite store of ebpfmon-analyzer: the ban history (malicious_ips), one snapshot of the
 * network per interval (network_stats, with its top addresses in network_stats_top) and
 * resource anomalies (system_anomalies).
 *
 * Conventions of the whole API:
 *  - Times are unix seconds (UTC) in int64_t, in the tables and here alike. In the structs
 *    below 0 stands for SQL NULL: expires_at 0 is a permanent ban, ended_at 0 a ban or an
 *    anomaly that is still active/open.
 *  - Addresses are stored as text in their printed form (addr_format(): "192.0.2.1",
 *    "2001:db8::1"); a network ban stores its network address there and its prefix length in
 *    prefix_len, counted in the address's own family ("/24" is 24 for IPv4). A ban of one
 *    address has prefix_len NULL. In this API a network is a struct addr_cidr, prefix length
 *    in the 128-bit form (a single address is /128, an IPv4 /24 is /120).
 *  - Functions return 0 or a positive value on success and -errno on failure. SQLite's
 *    result codes become: READONLY -EROFS, FULL -ENOSPC, IOERR -EIO, CANTOPEN the system's
 *    errno (else -EIO), BUSY/LOCKED -EBUSY, NOMEM -ENOMEM, CONSTRAINT -EINVAL, CORRUPT and
 *    NOTADB -EBADMSG, TOOBIG -E2BIG, PERM/AUTH -EACCES.
 *  - A failed call leaves the store usable and changes nothing else: a later call simply
 *    tries again (nothing is queued). store_healthy() and store_last_error() say whether the
 *    last write reached the database, for the analyzer's status; failures are logged only at
 *    debug level, so that the caller decides how often to tell the operator.
 *  - A row that cannot be decoded (an address that does not parse, an unknown reason or
 *    kind, a string too long) is skipped by the readers with a debug message; it never stops
 *    a listing and never crashes.
 *  - A struct store has one owner; it is not to be used by two threads at once.
 */
#ifndef EBPFMON_STORE_H
#define EBPFMON_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ebpfmon_abi.h"

/* Schema version this code writes; PRAGMA user_version of a database it created. */
#define STORE_SCHEMA_VERSION 4

/* Milliseconds a statement waits for another connection's lock before failing -EBUSY. */
#define STORE_BUSY_TIMEOUT_MS 1000

#define STORE_RULE_MAX 256 /* bytes of a rule/pattern with its NUL; longer ones are refused */
#define STORE_COMM_MAX 64  /* bytes of a process name with its NUL; longer ones are cut */
#define STORE_ERR_MAX  256 /* bytes of store_last_error() */

struct store;

/* Who asked for a ban (malicious_ips.source). */
enum store_ban_source {
	STORE_SOURCE_AUTO = 0,	 /* "auto": the policy decided */
	STORE_SOURCE_MANUAL = 1, /* "manual": an operator, through the API */
};

/* One row of malicious_ips. */
/* Bytes of store_ban.path: an escaped canonical path (4 per byte) with "..." and the NUL. */
#define STORE_PATH_MAX (4 * 128 + 4)

struct store_ban {
	int64_t id;			/* row id; ignored by store_ban_insert() */
	struct addr_cidr net;		/* address (/128) or network banned */
	enum ebpfmon_ban_reason reason; /* "conn_limit", "url_rule", "manual", "escalated" */
	enum store_ban_source source;
	char rule[STORE_RULE_MAX]; /* the pattern that matched, or "" */
	uint64_t hits;		   /* offences counted against this ban */
	int64_t banned_at;	   /* unix seconds */
	int64_t expires_at;	   /* unix seconds; 0 = permanent */
	int64_t ended_at;	   /* unix seconds; 0 = still active */
	uint32_t escalation_level; /* 0 for a first offence, +1 per repeat */
	bool dry_run;		   /* "would ban": recorded, never enforced */
	/* why it ended ("expired", "unbanned by uid 0"; cut to fit), "" while active;
	 * store_ban_insert() keeps it only for a row that is ended already */
	char end_reason[48];
	/* url_rule: the canonical request path that matched, escaped (urlcanon_escape()); "" */
	char path[STORE_PATH_MAX];
	/* url_rule of one address: the request as TCP delivers it (NULL columns when false) */
	bool has_req;
	uint16_t sport, dport; /* the client's port, the server's */
	uint32_t seq;	       /* TCP sequence number of the request line's first byte */
	uint32_t conn_isn;     /* this host's ISN of the connection (0: not known) */
};

/* One of the top addresses of a network_stats snapshot (network_stats_top). */
struct store_top {
	struct ebpfmon_addr addr;
	uint64_t packets;
	uint64_t bytes;
	uint64_t syns;
	uint64_t connections;
};

/* One row of network_stats: the totals of one interval. */
struct store_net_stats {
	int64_t id; /* row id; ignored by store_stats_insert() */
	int64_t ts; /* unix seconds, end of the interval */
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t tracked;     /* addresses in ip_stats */
	uint64_t bans_active; /* bans in force */
	uint64_t drops;	      /* packets dropped during the interval */
};

/* What an anomaly is about (system_anomalies.kind). 0 is "any" in a struct store_query. */
enum store_anomaly_kind {
	STORE_ANOMALY_CPU = 1,	   /* "cpu", percent */
	STORE_ANOMALY_MEMORY = 2,  /* "memory", percent */
	STORE_ANOMALY_DISK_IO = 3, /* "disk_io", MB/s */
};

/* One row of system_anomalies. */
struct store_anomaly {
	int64_t id; /* row id; ignored by store_anomaly_open() */
	enum store_anomaly_kind kind;
	int64_t started_at; /* unix seconds */
	int64_t ended_at;   /* unix seconds; 0 = still open */
	double peak;	    /* highest value seen */
	double threshold;   /* the threshold crossed */
	int32_t top_pid;    /* the process that used the most over the episode; 0 = unknown */
	char top_comm[STORE_COMM_MAX];
};

/*
 * Filters of the listing functions. A zeroed struct lists everything, newest first.
 * since/until bound: bans by banned_at, snapshots by ts, anomalies by overlap (an anomaly
 * that started at or before until and had not ended before since).
 */
struct store_query {
	int64_t since;		      /* unix seconds, inclusive; 0 = no lower bound */
	int64_t until;		      /* unix seconds, inclusive; 0 = no upper bound */
	bool active_only;	      /* bans not ended / anomalies still open; not for snapshots */
	const struct addr_cidr *net;  /* bans of exactly this address or network; NULL = any */
	enum store_anomaly_kind kind; /* anomalies of this kind; 0 = any */
	uint32_t limit;		      /* at most this many rows; 0 = no limit */
	uint32_t offset;	      /* skip this many rows first (paging) */
};

/*
 * Listing callbacks: called once per row; the pointers are valid during the call only (top
 * is NULL when ntop is 0). Return 0 to go on; anything else stops the listing, and a
 * negative value is then what the listing function returns. A callback may call the store's
 * write functions (end a ban while reconciling), not a listing.
 */
typedef int (*store_ban_cb)(const struct store_ban *ban, void *ctx);
typedef int (*store_stats_cb)(const struct store_net_stats *stats, const struct store_top *top,
			      size_t ntop, void *ctx);
typedef int (*store_anomaly_cb)(const struct store_anomaly *anomaly, void *ctx);

/* --- opening, health, transactions --- */

/*
 * Open (creating it and its schema if needed) the database at path and return it in *out.
 * Sets WAL mode, synchronous=NORMAL, foreign keys and a busy timeout, then applies every
 * migration the file lacks, each in its own transaction, and prepares the statements.
 * A file whose user_version is newer than STORE_SCHEMA_VERSION is refused (-ENOTSUP); one
 * that cannot be opened or created returns its errno (-ENOENT, -EACCES...); one that is not
 * a database -EBADMSG. Every refusal is logged once, naming path. A file that opens only for
 * reading (mode 0444, read-only mount) is accepted when its schema is current (else -EROFS):
 * reads work, writes fail -EROFS and store_healthy() turns false. When its folder is
 * read-only too and the -shm file WAL needs is missing, it is read as immutable.
 */
int store_open(const char *path, struct store **out);

/*
 * Like store_open() but read-only (SQLITE_OPEN_READONLY): never creates nor migrates; the
 * schema must be exactly STORE_SCHEMA_VERSION (-ENOTSUP otherwise). Every write fails -EROFS.
 * For tools that inspect a database the analyzer writes, and for tests.
 */
int store_open_readonly(const char *path, struct store **out);

/*
 * Finalize the statements and close the database. An open store_begin() batch is rolled
 * back (with a warning). NULL is fine.
 */
void store_close(struct store *st);

/*
 * Checkpoints. A read-write store never checkpoints on its own: SQLite's autocheckpoint
 * would run one inside whichever commit grows the WAL past 1000 frames, and a checkpoint
 * syncs the WAL and the database file (fdatasync, about 1 ms on a disk, far more when the
 * disk is busy) on the thread that commits, which is the analyzer's event loop. Instead the
 * loop asks store_checkpoint_due() once per interval and runs store_checkpoint() on another
 * thread, in a connection of its own: a PASSIVE checkpoint, which writers never wait for
 * (SQLite, "Write-Ahead Logging", section 3.5 "Checkpointing"; sqlite3_wal_checkpoint_v2).
 */
#define STORE_CHECKPOINT_FRAMES 1000 /* WAL frames (pages): SQLite's autocheckpoint default */

/* True when the WAL held STORE_CHECKPOINT_FRAMES or more frames after the last commit and
 * the last checkpoint started 1 s ago or more. False for a read-only store or NULL. */
bool store_checkpoint_due(const struct store *st);
/* Frames in the WAL after the last commit (0 before the first, or for NULL). */
int store_wal_frames(const struct store *st);
/* Note that a checkpoint starts now (for store_checkpoint_due()). NULL is fine. */
void store_checkpoint_started(struct store *st);
/* The database file's path, as store_open() got it; NULL for NULL. */
const char *store_path(const struct store *st);

struct store_checkpointer;
/*
 * Copy the WAL of the database at path back into it and empty it (a TRUNCATE checkpoint),
 * then write the first frame of the next WAL (analyzer_state 'wal_emptied_at', unix seconds),
 * through *ck: a connection opened at the first call (and again when path changes), for one
 * thread at a time other than the writer's. The new WAL's header is synced here, so the
 * writer's next commit only appends (with synchronous = NORMAL it syncs nothing). The
 * checkpoint holds the write lock throughout: the writer should not write meanwhile, or it
 * waits up to STORE_BUSY_TIMEOUT_MS. Before it empties the WAL it holds back new read
 * transactions of this process's read-only stores (store_read_begin()) and waits up to 50 ms
 * for those in progress to end. *frames gets the WAL frames now in the database file
 * (-1 when unknown). 0 (also when a reader kept part of the WAL, which then stays), or
 * -errno with a message in err. SQLite: https://sqlite.org/c3ref/wal_checkpoint_v2.html,
 * https://sqlite.org/wal.html.
 */
int store_checkpoint(struct store_checkpointer **ck, const char *path, int *frames, char *err,
		     size_t errlen);
/* Close the connection of store_checkpoint(). NULL is fine. */
void store_checkpointer_free(struct store_checkpointer *ck);

/* The database's PRAGMA user_version (STORE_SCHEMA_VERSION once opened), or -errno. */
int store_schema_version(struct store *st);

/* False from a failed call until the next write that reaches the database. */
bool store_healthy(const struct store *st);

/* "" when healthy, otherwise what failed last: "insert ban: database or disk is full". */
const char *store_last_error(const struct store *st);

/* Unix seconds of the failure that made the store unhealthy; 0 while healthy. */
int64_t store_failing_since(const struct store *st);

/* Calls that failed since store_open(), for the status and the metrics. */
uint64_t store_error_count(const struct store *st);

/*
 * Batch writes in one transaction. A nesting counter: only the outermost store_begin()
 * starts the transaction (BEGIN IMMEDIATE) and only the outermost store_commit() commits.
 * Every store_begin() must be paired with one store_commit(), even when store_begin()
 * failed; the writes in between then run one transaction each, as without a batch.
 * Each write call stays atomic inside a batch (a savepoint): a snapshot is stored whole or
 * not at all. When SQLite itself rolls the batch back (disk full, I/O error), the writes
 * before that are lost, the later ones run one transaction each, and store_commit() returns
 * the error. Returns 0 or -errno.
 */
int store_begin(struct store *st);
/* End a store_begin(); see there. -EINVAL without a store_begin(). */
int store_commit(struct store *st);

/* --- malicious_ips: bans --- */

/*
 * Record a ban (ban->id is ignored). Returns the new row id (> 0) or -errno; -EINVAL for a
 * bad reason, source, network or a rule of STORE_RULE_MAX bytes or more.
 */
int64_t store_ban_insert(struct store *st, const struct store_ban *ban);

/* Set ended_at of an active ban: 0, -ENOENT when no active ban has that id, or -errno. */
int store_ban_end(struct store *st, int64_t id, int64_t ended_at);

/*
 * Set ended_at of an active ban and why it ended (malicious_ips.end_reason, free text such
 * as "removed from the map" or "evicted: bans map full"; expired bans say "expired"):
 * 0, -ENOENT when no active ban has that id, or -errno.
 */
int store_ban_end_why(struct store *st, int64_t id, int64_t ended_at, const char *why);

/*
 * The analyzer's notes that outlive it (table analyzer_state): the value of key into buf
 * (len bytes, cut to fit): 1, 0 when there is none, or -errno. store_state_set() writes it:
 * 0 or -errno.
 */
int store_state_get(struct store *st, const char *key, char *buf, size_t len);
int store_state_set(struct store *st, const char *key, const char *value);

/*
 * End every active ban of exactly this address or network (an unban): the number of rows
 * ended (0 when there was none) or -errno.
 */
int store_ban_end_net(struct store *st, const struct addr_cidr *net, int64_t ended_at);

/*
 * End every active ban whose expires_at is at or before now, recording expires_at (when it
 * really ended) as ended_at: for the reconciliation after the analyzer was down. Returns the
 * number of bans ended or -errno.
 */
int store_ban_end_expired(struct store *st, int64_t now);

/* Add delta to the hits of a ban: 0, -ENOENT for an unknown id, or -errno. */
int store_ban_add_hits(struct store *st, int64_t id, uint64_t delta);

/*
 * The active ban of exactly this address or network (the newest if there are several):
 * 1 and *out filled, 0 when there is none, or -errno. Dry-run rows count; see out->dry_run.
 */
int store_ban_find_active(struct store *st, const struct addr_cidr *net, struct store_ban *out);

/*
 * Bans of exactly this address or network with banned_at >= since and the given dry_run
 * flag, ended or not: the repeat offences that escalation counts. A dry run thus escalates as
 * the real thing would, and its would-bans never lengthen a real ban. Returns the count or
 * -errno.
 */
int64_t store_ban_count_since(struct store *st, const struct addr_cidr *net, int64_t since,
			      bool dry_run);

/*
 * Bans per single address since `since` (network bans left out), real and dry-run apart:
 * cb(addr, dry_run, count) once per address and kind, to seed the escalation counts of the
 * policy at start without a query per offence. Returns the rows passed or -errno.
 */
typedef int (*store_offence_cb)(const struct ebpfmon_addr *addr, bool dry_run, uint64_t count,
				void *ctx);
int64_t store_ban_offences(struct store *st, int64_t since, store_offence_cb cb, void *ctx);

/* The request behind a url_rule ban of one address (store_ban_requests()). */
struct store_request {
	struct ebpfmon_addr addr;
	uint16_t sport, dport;
	uint32_t seq;
	uint32_t conn_isn; /* 0 for a row from before it was kept */
	int64_t banned_at; /* unix seconds */
};

/*
 * The requests of url_rule bans of single addresses banned at `since` or later (dry run
 * too), oldest first, so that a retransmission of one after a restart is not a new offence.
 * Returns the rows passed to cb, cb's negative value, or -errno.
 */
typedef int (*store_request_cb)(const struct store_request *req, void *ctx);
int64_t store_ban_requests(struct store *st, int64_t since, store_request_cb cb, void *ctx);

/*
 * Every active enforced ban (ended_at NULL, whether or not expires_at has passed; never a
 * dry run's would-ban, which was never in the map), oldest first, for the reconciliation
 * with the kernel maps. Returns the number of rows passed to cb,
 * or cb's negative value, or -errno.
 */
int64_t store_ban_list_active(struct store *st, store_ban_cb cb, void *ctx);

/*
 * Bans for the API, newest banned_at first, filtered by q (active_only, net, since/until on
 * banned_at, limit, offset; NULL = everything). active_only lists bans in force, never a
 * dry run's would-bans. Returns the number of rows passed to cb, or
 * cb's negative value, or -errno.
 */
int64_t store_ban_list(struct store *st, const struct store_query *q, store_ban_cb cb, void *ctx);
/*
 * How many rows store_ban_list() lists for q without its limit and offset (an API reply's
 * total), counted from an index rather than read: O(matching rows), no row decoded. -errno.
 */
int64_t store_ban_count(struct store *st, const struct store_query *q);

/*
 * On a read-only connection (store_open_readonly()), outside a transaction: begin a read
 * transaction, so that the statements until store_read_end() see one state of the database
 * (a listing and its count agree while another connection writes). Elsewhere it does nothing.
 * While store_checkpoint() empties the WAL it waits first, up to 100 ms: read transactions
 * back to back would otherwise never let it (store.c, read_gate). 0 or -errno.
 */
int store_read_begin(struct store *st);
/* End what store_read_begin() began (nothing when it began nothing). */
void store_read_end(struct store *st);

/* --- network_stats: snapshots --- */

/*
 * Record one snapshot and its ntop top addresses (top may be NULL when ntop is 0), all in
 * one transaction (a savepoint inside a batch). Returns the new snapshot id or -errno.
 */
int64_t store_stats_insert(struct store *st, const struct store_net_stats *stats,
			   const struct store_top *top, size_t ntop);

/*
 * Append n top rows to the snapshot stats_id in one transaction (a savepoint inside a
 * batch), through one prepared statement: the fast path for bulk rows and the benchmark.
 * Returns n or -errno (-ENOENT when there is no such snapshot; then nothing is written).
 */
int64_t store_stats_add_top(struct store *st, int64_t stats_id, const struct store_top *top,
			    size_t n);

/*
 * Snapshots for the API, newest ts first, each with its top rows by packets, filtered by q
 * (since/until on ts, limit, offset; NULL = everything). Returns the number of snapshots
 * passed to cb, or cb's negative value, or -errno.
 */
int64_t store_stats_list(struct store *st, const struct store_query *q, store_stats_cb cb,
			 void *ctx);

/* --- system_anomalies --- */

/* Open an anomaly (a->id and a->ended_at are ignored): the new row id or -errno. */
int64_t store_anomaly_open(struct store *st, const struct store_anomaly *a);

/*
 * Raise the peak of an open anomaly to value, with the top process at that moment (comm
 * may be NULL): 1 when the peak rose, 0 when value is not above it or the anomaly is not
 * open, or -errno.
 */
int store_anomaly_peak(struct store *st, int64_t id, double value, int32_t top_pid,
		       const char *top_comm);

/*
 * Name another top process of an open anomaly (pid 0 and comm NULL: unknown): 0, -ENOENT
 * when no open anomaly has that id, or -errno.
 */
int store_anomaly_top(struct store *st, int64_t id, int32_t top_pid, const char *top_comm);

/* Close an open anomaly: 0, -ENOENT when no open anomaly has that id, or -errno. */
int store_anomaly_close(struct store *st, int64_t id, int64_t ended_at);

/*
 * Close every open anomaly at ended_at, or at its start if that is later (the analyzer at
 * start: the episodes of a previous run cannot be continued). Returns the number closed or
 * -errno.
 */
int store_anomaly_close_all(struct store *st, int64_t ended_at);

/*
 * Anomalies for the API, newest started_at first, filtered by q (active_only = open only,
 * kind, since/until by overlap, limit, offset; NULL = everything). Returns the number of
 * rows passed to cb, or cb's negative value, or -errno. store_anomaly_count(): how many rows
 * the listing gives without its limit and offset, no row decoded; or -errno.
 */
int64_t store_anomaly_count(struct store *st, const struct store_query *q);
int64_t store_anomaly_list(struct store *st, const struct store_query *q, store_anomaly_cb cb,
			   void *ctx);

/* --- retention --- */

/*
 * Retention, for every table: first drop rows older than max_age_seconds before now (bans
 * and anomalies by ended_at, snapshots by ts), then keep at most max_records rows per table,
 * deleting the oldest first (bans and anomalies by ended_at, snapshots by ts). An active ban
 * and an open anomaly are never deleted, so those tables may stay above max_records while
 * they hold more active rows. Snapshots count, not their top rows: the top rows of a deleted
 * snapshot go with it. 0 switches either limit off. Works in chunks of a few thousand rows,
 * each its own transaction (or savepoint in a batch), so the database is never locked long.
 * Returns the number of ban, snapshot and anomaly rows deleted (top rows not counted) or
 * -errno; rows deleted before a failure stay deleted.
 */
int64_t store_cleanup(struct store *st, uint32_t max_records, int64_t max_age_seconds, int64_t now);
/*
 * Where a run of store_cleanup_some() calls is: how many rows each table had over max_records
 * when the run counted it, less the rows deleted since. Zero it to start a run, so that a
 * table is counted once per run (a count(*) walks the whole table: milliseconds at a million
 * rows), not once per call. With until_ns set, no chunk starts after that time, and each
 * table's chunk follows what a row of that table costs: from 2 rows, what 50 us deletes at
 * the last chunk's cost a row, at most doubling (a snapshot's row with 10 top addresses
 * costs ~20 us, a ban's ~4 us); a call then holds its caller until about until_ns plus one
 * chunk.
 */
struct store_cleanup {
	bool counted[3];   /* malicious_ips, network_stats, system_anomalies */
	int64_t excess[3]; /* rows over max_records still to delete */
	int chunk[3];	   /* rows of the table's next chunk (0: the first) */
	uint64_t until_ns; /* CLOCK_MONOTONIC deadline of each call; 0: none */
	bool more;	   /* set by a call that stopped at until_ns (or cut) with rows left */
	/*
	 * Set from any thread: a call with a deadline stops after its current chunk, once
	 * CLOCK_MONOTONIC passed cut_after_ns (so that cuts in a row still let a run go on).
	 */
	atomic_bool cut;
	uint64_t cut_after_ns;
};

/*
 * The same, deleting at most limit rows (> 0) in this call, so that a caller's loop is held
 * briefly: a result equal to limit, or run->more, means there may be more to delete (call
 * again), otherwise the tables are within their limits; -errno as store_cleanup(). run (may
 * be NULL: count every call) carries the tables' counts and chunks from one call to the next;
 * rows added during a run are left to the next run.
 */
int64_t store_cleanup_some(struct store *st, uint32_t max_records, int64_t max_age_seconds,
			   int64_t now, int64_t limit, struct store_cleanup *run);

/* --- names --- */

/* "conn_limit", "url_rule", "manual", "escalated"; NULL for an unknown value. */
const char *store_reason_name(enum ebpfmon_ban_reason reason);
/* "auto", "manual"; NULL for an unknown value. */
const char *store_source_name(enum store_ban_source source);
/* "cpu", "memory", "disk_io"; NULL for an unknown value. */
const char *store_anomaly_kind_name(enum store_anomaly_kind kind);

#endif
