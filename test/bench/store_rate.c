// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * store_rate: SQLite rows per second through analyzer/store.c, batched against one
 * transaction per row, in the same run, each way on a fresh temporary database.
 *
 *   build/test/bench/store_rate [-n ROWS] [-s SINGLE_ROWS] [-f FULL_ROWS] [-d DIR]
 *
 * The rows are network_stats_top rows (an address and four counters), the bulk table of
 * the store:
 *  - per row (the baseline): store_stats_add_top(n = 1) per row, each its own transaction;
 *  - batch: store_begin(), store_stats_add_top(n = 1) per row (a savepoint each),
 *    store_commit();
 *  - one call: store_stats_add_top(n = ROWS), one transaction, one prepared statement;
 *  - and, with sqlite3 directly on the same schema (store.c is not changed for it), one
 *    transaction per row with synchronous=NORMAL (what store.c sets) and =FULL.
 *
 * No privilege needed. Not a ctest: prints figures and exits 0; 1 when the setup fails.
 * The temporary folder is removed at exit, also after ^C.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench_util.h"
#include "log.h"
#include "store.h"

#define PROG "store_rate"

#define DEFAULT_ROWS	    200000u
#define DEFAULT_SINGLE_ROWS 20000u
#define DEFAULT_FULL_ROWS   2000u
#define TARGET_RATE	    200000.0
#define TARGET_RATIO	    50.0

enum mode { M_SINGLE, M_BATCH, M_ONE_CALL, M_RAW_NORMAL, M_RAW_FULL, M_COUNT };

static const char *const mode_name[M_COUNT] = {
	[M_SINGLE] = "per row: store_stats_add_top(n=1), own transaction",
	[M_BATCH] = "batch: store_begin, add_top(n=1) per row, commit",
	[M_ONE_CALL] = "one call: store_stats_add_top(n=ROWS)",
	[M_RAW_NORMAL] = "sqlite3 directly, per row, synchronous=NORMAL",
	[M_RAW_FULL] = "sqlite3 directly, per row, synchronous=FULL",
};

struct result {
	uint64_t rows, ns;
	int64_t in_db; /* rows counted in the table afterwards */
};

static char g_dir[256];
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void remove_dir(void)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char path[320];

	if (!g_dir[0])
		return;
	for (int m = 0; m < M_COUNT; m++)
		for (size_t s = 0; s < sizeof(suffix) / sizeof(suffix[0]); s++) {
			snprintf(path, sizeof(path), "%s/%d.db%s", g_dir, m, suffix[s]);
			unlink(path);
		}
	if (rmdir(g_dir) && errno != ENOENT)
		fprintf(stderr, "%s: cannot remove %s: %s\n", PROG, g_dir, strerror(errno));
	g_dir[0] = '\0';
}

static void db_path(enum mode m, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%d.db", g_dir, (int)m);
}

static void make_rows(struct store_top *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char text[16];

		/* 198.18.0.0/15 only: 198.18.0.0 + i, wrapping inside the /15 */
		snprintf(text, sizeof(text), "198.%u.%u.%u", 18 + (unsigned)((i >> 16) & 1),
			 (unsigned)((i >> 8) & 0xff), (unsigned)(i & 0xff));
		addr_parse(text, &rows[i].addr);
		rows[i].packets = 1000000 - i;
		rows[i].bytes = (1000000 - i) * 1200;
		rows[i].syns = i % 97;
		rows[i].connections = i % 13;
	}
}

/* A fresh database for mode m with one snapshot: the store, the snapshot id in *id. */
static int fresh_store(enum mode m, struct store **st, int64_t *id)
{
	struct store_net_stats snap = {.ts = 1700000000, .rx_packets = 1};
	char path[320];
	int err;

	db_path(m, path, sizeof(path));
	err = store_open(path, st);
	if (err) {
		fprintf(stderr, "%s: store_open %s: %s\n", PROG, path, strerror(-err));
		return err;
	}
	*id = store_stats_insert(*st, &snap, NULL, 0);
	if (*id < 0) {
		fprintf(stderr, "%s: store_stats_insert: %s\n", PROG, strerror((int)-*id));
		store_close(*st);
		*st = NULL;
		return (int)*id;
	}
	return 0;
}

static int64_t count_rows(enum mode m)
{
	char path[320];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t n = -1;

	db_path(m, path, sizeof(path));
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM network_stats_top", -1, &s, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static int run_store_mode(enum mode m, const struct store_top *rows, size_t n, struct result *r)
{
	struct store *st;
	int64_t id, got = 0;
	uint64_t t0;
	int err = fresh_store(m, &st, &id);

	if (err)
		return err;
	t0 = bench_now();
	switch (m) {
	case M_SINGLE:
		for (size_t i = 0; i < n && got >= 0 && !g_stop; i++)
			got = store_stats_add_top(st, id, &rows[i], 1);
		break;
	case M_BATCH:
		err = store_begin(st);
		for (size_t i = 0; i < n && got >= 0 && !err && !g_stop; i++)
			got = store_stats_add_top(st, id, &rows[i], 1);
		err = store_commit(st) ?: err;
		break;
	default:
		got = store_stats_add_top(st, id, rows, n);
		break;
	}
	r->ns = bench_now() - t0;
	r->rows = n;
	store_close(st);
	if (got < 0 || err) {
		fprintf(stderr, "%s: %s: %s\n", PROG, mode_name[m],
			strerror(got < 0 ? (int)-got : -err));
		return got < 0 ? (int)got : err;
	}
	r->in_db = count_rows(m);
	return g_stop ? -EINTR : 0;
}

static int sql_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "%s: %s: %s\n", PROG, sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* One transaction per row with sqlite3 directly, on a database store_open() created. */
static int run_raw_mode(enum mode m, const struct store_top *rows, size_t n, struct result *r)
{
	struct store *st;
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
	char path[320];
	int64_t id;
	uint64_t t0;
	int err = fresh_store(m, &st, &id);

	if (err)
		return err;
	store_close(st); /* the schema and the snapshot are there; WAL mode stays with the file */
	db_path(m, path, sizeof(path));
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: sqlite3_open %s: %s\n", PROG, path, sqlite3_errmsg(db));
		err = -EIO;
		goto out;
	}
	err = sql_exec(db, "PRAGMA foreign_keys = ON");
	err = err
		      ?: sql_exec(db, m == M_RAW_FULL ? "PRAGMA synchronous = FULL"
						      : "PRAGMA synchronous = NORMAL");
	if (err)
		goto out;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO network_stats_top (stats_id, address, packets, bytes,"
			       " syns, connections) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: prepare: %s\n", PROG, sqlite3_errmsg(db));
		err = -EIO;
		goto out;
	}
	t0 = bench_now();
	for (size_t i = 0; i < n && !err && !g_stop; i++) {
		char text[ADDR_STRLEN];

		addr_format(&rows[i].addr, text, sizeof(text));
		sqlite3_bind_int64(ins, 1, id);
		sqlite3_bind_text(ins, 2, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 3, (int64_t)rows[i].packets);
		sqlite3_bind_int64(ins, 4, (int64_t)rows[i].bytes);
		sqlite3_bind_int64(ins, 5, (int64_t)rows[i].syns);
		sqlite3_bind_int64(ins, 6, (int64_t)rows[i].connections);
		if (sqlite3_step(begin) != SQLITE_DONE || sqlite3_step(ins) != SQLITE_DONE ||
		    sqlite3_step(commit) != SQLITE_DONE) {
			fprintf(stderr, "%s: row %zu: %s\n", PROG, i, sqlite3_errmsg(db));
			err = -EIO;
		}
		sqlite3_reset(begin);
		sqlite3_reset(ins);
		sqlite3_reset(commit);
	}
	r->ns = bench_now() - t0;
	r->rows = n;
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	if (!err)
		r->in_db = count_rows(m);
	return err ?: (g_stop ? -EINTR : 0);
}

static const char *fs_name(const char *path)
{
	static char buf[32];
	struct statfs sf;

	if (statfs(path, &sf))
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x01021994:
		return "tmpfs";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		snprintf(buf, sizeof(buf), "fs magic 0x%lx", (unsigned long)sf.f_type);
		return buf;
	}
}

static double rate(const struct result *r)
{
	return r->ns ? (double)r->rows * 1e9 / (double)r->ns : 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [-n ROWS] [-s SINGLE_ROWS] [-f FULL_ROWS] [-d DIR]\n"
		"\n"
		"SQLite rows per second through analyzer/store.c: batched against one transaction\n"
		"per row, each on a fresh database in a temporary folder.\n"
		"\n"
		"  -n, --rows ROWS                rows of the batched ways (default %u)\n"
		"  -s, --single-rows SINGLE_ROWS  rows of the per-row ways with\n"
		"                                 synchronous=NORMAL (default %u)\n"
		"  -f, --full-rows FULL_ROWS      rows of the per-row way with synchronous=FULL\n"
		"                                 (default %u)\n"
		"  -d, --dir DIR                  where the temporary folder goes (default\n"
		"                                 $TMPDIR or /tmp): the file system decides the\n"
		"                                 synchronous=FULL figure\n"
		"  -h, --help                     this help\n"
		"\n"
		"Besides the table it prints FIGURE lines (tab-separated: id, value, per-row\n"
		"value, unit, target): store.batch_rows_per_s and store.one_call_rows_per_s.\n"
		"\n"
		"EXAMPLES\n"
		"  build/test/bench/%s\n"
		"  build/test/bench/%s -n 1000000 -d /var/tmp\n",
		PROG, DEFAULT_ROWS, DEFAULT_SINGLE_ROWS, DEFAULT_FULL_ROWS, PROG, PROG);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"rows", required_argument, NULL, 'n'},
		{"single-rows", required_argument, NULL, 's'},
		{"full-rows", required_argument, NULL, 'f'},
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	unsigned int rows_n = DEFAULT_ROWS, single_n = DEFAULT_SINGLE_ROWS,
		     full_n = DEFAULT_FULL_ROWS;
	const char *base = getenv("TMPDIR") ?: "/tmp";
	struct sigaction sa = {.sa_handler = on_signal};
	struct result res[M_COUNT] = {0};
	struct store_top *rows = NULL;
	size_t need;
	int opt, err = 0, rc = 1;

	while ((opt = getopt_long(argc, argv, "n:s:f:d:h", lo, NULL)) != -1) {
		long long v;

		switch (opt) {
		case 'n':
		case 's':
		case 'f':
			v = bench_parse_num(optarg, 100, 10000000);
			if (v < 0) {
				fprintf(stderr, "%s: -%c %s: want a number from 100 to 10000000\n",
					PROG, opt, optarg);
				return 2;
			}
			*(opt == 'n'   ? &rows_n
			  : opt == 's' ? &single_n
				       : &full_n) = (unsigned int)v;
			break;
		case 'd':
			base = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	log_init(PROG, LOG_LVL_WARN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	snprintf(g_dir, sizeof(g_dir), "%s/store_rate-XXXXXX", base);
	if (!mkdtemp(g_dir)) {
		fprintf(stderr, "%s: mkdtemp %s: %s\n", PROG, g_dir, strerror(errno));
		g_dir[0] = '\0';
		return 1;
	}
	atexit(remove_dir);

	need = rows_n > single_n ? rows_n : single_n;
	need = need > full_n ? need : full_n;
	rows = calloc(need, sizeof(*rows));
	if (!rows)
		goto out;
	make_rows(rows, need);

	for (int m = 0; m < M_COUNT && !err; m++) {
		size_t n = m == M_SINGLE || m == M_RAW_NORMAL ? single_n
			   : m == M_RAW_FULL		      ? full_n
							      : rows_n;

		err = m >= M_RAW_NORMAL ? run_raw_mode(m, rows, n, &res[m])
					: run_store_mode(m, rows, n, &res[m]);
	}
	if (err) {
		if (err == -EINTR)
			fprintf(stderr, "%s: interrupted\n", PROG);
		rc = err == -EINTR ? 130 : 1;
		goto out;
	}

	printf("store_rate: network_stats_top rows (address + 4 counters, FOREIGN KEY to its "
	       "snapshot, index (stats_id, packets))\n");
	printf("SQLite %s, WAL; each way on a fresh database in %s (%s)\n\n", sqlite3_libversion(),
	       g_dir, fs_name(g_dir));
	printf("  %-52s %8s %9s %11s %9s\n", "how", "rows", "seconds", "rows/s", "vs per-row");
	for (int m = 0; m < M_COUNT; m++) {
		printf("  %-52s %8" PRIu64 " %9.3f %11.0f %8.1fx%s\n", mode_name[m], res[m].rows,
		       (double)res[m].ns / 1e9, rate(&res[m]), rate(&res[m]) / rate(&res[M_SINGLE]),
		       m == M_SINGLE ? " (baseline)" : "");
		if (res[m].in_db != (int64_t)res[m].rows)
			printf("    !! %" PRId64 " rows in the table afterwards, %" PRIu64
			       " written\n",
			       res[m].in_db, res[m].rows);
	}

	printf("\nwhat differs\n"
	       "  per row: every row is a transaction of its own (store.c: BEGIN IMMEDIATE, a\n"
	       "    check that the snapshot exists, INSERT, COMMIT): the write lock, a WAL\n"
	       "    append of the changed pages (table, index) and the lock release per row.\n"
	       "    With synchronous=NORMAL, which store_open() sets, a commit in WAL mode does\n"
	       "    not fsync: the WAL is synced only at checkpoints, so the cost is syscalls\n"
	       "    and page copies, and a power cut may lose the last commits (never corrupt).\n"
	       "  synchronous=FULL: every commit also fsyncs the WAL, so the per-row rate falls "
	       "to\n"
	       "    what the disk under %s (%s) syncs per second; durable per row.\n"
	       "  batch: one BEGIN/COMMIT for all rows; each add_top(n=1) call still opens and\n"
	       "    releases a SAVEPOINT and checks the snapshot, which is what it costs over\n"
	       "    one call.\n"
	       "  one call: one transaction and one prepared INSERT stepped per row: b-tree\n"
	       "    inserts only, the WAL written once at COMMIT.\n",
	       g_dir, fs_name(g_dir));

	printf("\ntargets\n");
	for (int m = M_BATCH; m <= M_ONE_CALL; m++) {
		double r = rate(&res[m]), x = r / rate(&res[M_SINGLE]);

		printf("  %-9s >= %.0f rows/s: %9.0f  %s;  >= %.0fx per-row: %6.1fx  %s\n",
		       m == M_BATCH ? "batch" : "one call", TARGET_RATE, r,
		       r >= TARGET_RATE ? "PASS" : "UNDER", TARGET_RATIO, x,
		       x >= TARGET_RATIO ? "PASS" : "UNDER");
	}
	printf("  (against the per-row way with synchronous=FULL, where every commit syncs: "
	       "batch %.0fx, one call %.0fx)\n",
	       rate(&res[M_BATCH]) / rate(&res[M_RAW_FULL]),
	       rate(&res[M_ONE_CALL]) / rate(&res[M_RAW_FULL]));
	printf("FIGURE\tstore.batch_rows_per_s\t%.0f\t%.0f\trows/s\t>=%.0f\n", rate(&res[M_BATCH]),
	       rate(&res[M_SINGLE]), TARGET_RATE);
	printf("FIGURE\tstore.one_call_rows_per_s\t%.0f\t%.0f\trows/s\t>=%.0f\n",
	       rate(&res[M_ONE_CALL]), rate(&res[M_SINGLE]), TARGET_RATE);
	rc = 0;
out:
	free(rows);
	return rc; /* remove_dir() runs at exit */
}
