// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ebpfmonctl top's pure core: frames built from canned samples (rates from two samples,
 * the banned mark, cutting to a width and a height, escaping what a peer sent, the line that
 * says the connection is lost), the terminal painting, the layout for a height, and the keys.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_text.h"
#include "top.h"

#define NOW ((time_t)1700000000) /* 2023-11-14 22:13:20 UTC */
#define T0  1000000ull		 /* a monotonic time, in milliseconds */

/* ---- canned samples: prev at T0, cur two seconds later ---------------------------------------
 */

struct canned {
	Ebpfmon__V1__Counters counters[2];
	Ebpfmon__V1__GetMonitorStatusResponse status[2];
	Ebpfmon__V1__AddressStats addr[2][3];
	Ebpfmon__V1__AddressStats *addr_ptrs[2][3];
	Ebpfmon__V1__GetNetworkStatsResponse stats[2];
	Ebpfmon__V1__Ban bans[12];
	Ebpfmon__V1__Ban *ban_ptrs[12];
	Ebpfmon__V1__GetMaliciousIPsResponse bans_resp;
};

static struct canned cn;

static void canned_init(void)
{
	static const Ebpfmon__V1__Counters counters = EBPFMON__V1__COUNTERS__INIT;
	static const Ebpfmon__V1__GetMonitorStatusResponse status =
		EBPFMON__V1__GET_MONITOR_STATUS_RESPONSE__INIT;
	static const Ebpfmon__V1__AddressStats as = EBPFMON__V1__ADDRESS_STATS__INIT;
	static const Ebpfmon__V1__GetNetworkStatsResponse stats =
		EBPFMON__V1__GET_NETWORK_STATS_RESPONSE__INIT;
	static const Ebpfmon__V1__Ban ban = EBPFMON__V1__BAN__INIT;
	static const Ebpfmon__V1__GetMaliciousIPsResponse bans =
		EBPFMON__V1__GET_MALICIOUS_IPS_RESPONSE__INIT;
	int i, j;

	memset(&cn, 0, sizeof(cn));
	for (i = 0; i < 2; i++) {
		cn.counters[i] = counters;
		cn.status[i] = status;
		cn.status[i].version = (char *)"0.1.0";
		cn.status[i].uptime_seconds = 3 * 86400 + 4 * 3600;
		cn.status[i].counters = &cn.counters[i];
		cn.status[i].active_bans = 12;
		cn.status[i].tracked_addresses = 3456;
		cn.status[i].database_ok = 1;
		cn.status[i].open_anomalies = 1;
		cn.stats[i] = stats;
		cn.stats[i].n_top = 3;
		cn.stats[i].top = cn.addr_ptrs[i];
		cn.stats[i].tracked_addresses = 3456;
		for (j = 0; j < 3; j++) {
			cn.addr[i][j] = as;
			cn.addr_ptrs[i][j] = &cn.addr[i][j];
			cn.addr[i][j].last_seen_unix = NOW - 3;
		}
	}
	/* prev */
	cn.counters[0].rx_seen = 1000000;
	cn.counters[0].rx_passed = 990000;
	cn.counters[0].rx_drop_ban = 10000;
	cn.counters[0].rx_would_drop = 500;
	/* cur, 2 s later: 2000 packets/s seen, 1000/s passed, 1000/s dropped (ban + url) */
	cn.counters[1].rx_seen = 1004000;
	cn.counters[1].rx_passed = 992000;
	cn.counters[1].rx_drop_ban = 11000;
	cn.counters[1].rx_drop_url = 1000;
	cn.counters[1].rx_would_drop = 900;

	/* 198.51.100.7 in both, banned: 500 packets/s, 40 kB/s */
	cn.addr[0][0].address = (char *)"198.51.100.7";
	cn.addr[0][0].packets = 100000;
	cn.addr[0][0].bytes = 8000000;
	cn.addr[1][0].address = (char *)"198.51.100.7";
	cn.addr[1][0].packets = 101000;
	cn.addr[1][0].bytes = 8080000;
	cn.addr[1][0].banned = 1;
	cn.addr[1][0].connections = 3;
	/* 2001:db8::1 in both, counters from rx + tx (packets/bytes unset): 5 packets/s */
	cn.addr[0][1].address = (char *)"2001:db8::1";
	cn.addr[0][1].rx_packets = 40;
	cn.addr[0][1].tx_packets = 10;
	cn.addr[0][1].rx_bytes = 4000;
	cn.addr[1][1].address = (char *)"2001:db8::1";
	cn.addr[1][1].rx_packets = 50;
	cn.addr[1][1].tx_packets = 10;
	cn.addr[1][1].rx_bytes = 5000;
	/* in cur only: no rate */
	cn.addr[0][2].address = (char *)"192.0.2.99";
	cn.addr[0][2].packets = 7;
	cn.addr[1][2].address = (char *)"203.0.113.5";
	cn.addr[1][2].packets = 9000;
	cn.addr[1][2].bytes = 900000;

	for (i = 0; i < 12; i++) {
		cn.bans[i] = ban;
		cn.ban_ptrs[i] = &cn.bans[i];
		cn.bans[i].address = (char *)"198.51.100.7";
		cn.bans[i].reason = (char *)"conn_limit";
		cn.bans[i].banned_unix = NOW - 60 * (i + 1);
		cn.bans[i].expires_unix = NOW + 540;
	}
	cn.bans[0].reason = (char *)"url_rule";
	cn.bans[0].rule = (char *)"/wp-admin";
	cn.bans[0].path = (char *)"/wp-admin/setup.php";
	cn.bans[0].drops = 1500;
	cn.bans[1].address = (char *)"2001:db8::/64";
	cn.bans[1].reason = (char *)"manual";
	cn.bans[1].rule = (char *)"scanner network";
	cn.bans[1].expires_unix = 0;
	cn.bans_resp = bans;
	cn.bans_resp.n_bans = 2;
	cn.bans_resp.bans = cn.ban_ptrs;
	cn.bans_resp.total = 2;
}

/* A view with both samples (prev at T0, cur at T0 + 2 s), now 5 s after cur. */
static void top_init(struct ctl_top *t)
{
	canned_init();
	memset(t, 0, sizeof(*t));
	t->view.interval_ms = 1000;
	t->prev.status = &cn.status[0];
	t->prev.stats = &cn.stats[0];
	t->prev.bans = &cn.bans_resp;
	t->prev.status_ms = T0;
	t->prev.stats_ms = T0;
	t->cur.status = &cn.status[1];
	t->cur.stats = &cn.stats[1];
	t->cur.bans = &cn.bans_resp;
	t->cur.status_ms = T0 + 2000;
	t->cur.stats_ms = T0 + 2000;
	t->now = NOW;
	t->now_ms = T0 + 7000;
}

/* The frame as plain text (malloc'd), and its number of lines. */
static char *frame_text(const struct ctl_top *t, unsigned int width, unsigned int height,
			size_t *lines)
{
	struct ctl_top_frame f;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	assert_int_equal(ctl_top_frame_build(&f, t, width, height), 0);
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	assert_int_equal(ctl_top_frame_print(&f, m), 0);
	fclose(m);
	if (lines)
		*lines = f.n;
	ctl_top_frame_fini(&f);
	return buf;
}

/* In row, the cell under the right-aligned column col of header is exactly cell. */
static void assert_cell_right(const char *header, const char *col, const char *row,
			      const char *cell)
{
	size_t cl = strlen(col);
	const char *p;
	long end, n = (long)strlen(cell);

	/* the column's name as a whole word ("BYTES", not the start of "BYTES/S") */
	for (p = strstr(header, col); p; p = strstr(p + 1, col))
		if ((p == header || p[-1] == ' ') && (!p[cl] || p[cl] == ' '))
			break;
	if (!p)
		fail_msg("no column %s in %s", col, header);
	end = (p - header) + (long)strlen(col);
	if (end > (long)strlen(row) || end < n || strncmp(row + end - n, cell, (size_t)n) ||
	    (end > n && row[end - n - 1] != ' ') || (row[end] && row[end] != ' '))
		fail_msg("\"%s\" is not the cell under %s in\n%s\n%s", cell, col, header, row);
}

/* ---- frames -----------------------------------------------------------------------------------
 */

static void test_frame_rates(void **state)
{
	char header[256], row[256], line[256];
	struct ctl_top t;
	char *text;

	(void)state;
	top_init(&t);
	text = frame_text(&t, 0, 0, NULL);
	/* the counters: differences over the 2 s between the two status replies */
	line_with(text, "packets", line, sizeof(line));
	assert_string_equal(line, "packets  1.0M seen (2.0k/s)  992k passed (1.0k/s)  12k dropped "
				  "(1.0k/s)");
	assert_contains(text, "bans     12 active  tracked 3.5k addresses  anomalies 1 open\n");
	assert_contains(text, "TOP TALKERS by packets: 3 of 3.5k tracked addresses; rates over "
			      "the last 2.0s\n");

	line_with(text, "ADDRESS  ", header, sizeof(header));
	assert_contains(header, "BAN  ADDRESS");
	line_with(text, "198.51.100.7 ", row, sizeof(row));
	assert_cell_right(header, "PKTS/S", row, "500");
	assert_cell_right(header, "BYTES/S", row, "40 kB");
	assert_cell_right(header, "PACKETS", row, "101k");
	assert_cell_right(header, "BYTES", row, "8.1 MB");
	assert_cell_right(header, "CONNS", row, "3");
	assert_contains(row, "3s ago");
	/* rx + tx when the server left packets and bytes at 0 */
	line_with(text, "2001:db8::1 ", row, sizeof(row));
	assert_cell_right(header, "PKTS/S", row, "5");
	assert_cell_right(header, "BYTES/S", row, "500 B");
	assert_cell_right(header, "PACKETS", row, "60");
	/* not in the previous sample: no rate */
	line_with(text, "203.0.113.5", row, sizeof(row));
	assert_cell_right(header, "PKTS/S", row, "-");
	assert_cell_right(header, "BYTES/S", row, "-");
	assert_cell_right(header, "PACKETS", row, "9.0k");
	assert_lacks(text, "192.0.2.99"); /* only in the previous sample */
	free(text);

	/* a counter that went down (the maps were made again): no rate rather than a huge one */
	cn.counters[1].rx_seen = 10;
	cn.addr[1][0].packets = 5;
	text = frame_text(&t, 0, 0, NULL);
	line_with(text, "packets", line, sizeof(line));
	assert_contains(line, "10 seen  992k passed (1.0k/s)");
	line_with(text, "198.51.100.7 ", row, sizeof(row));
	line_with(text, "ADDRESS  ", header, sizeof(header));
	assert_cell_right(header, "PKTS/S", row, "-");
	assert_cell_right(header, "BYTES/S", row, "40 kB");
	free(text);

	/* one sample (the first frame, --once): no rates at all, and it says when they come */
	top_init(&t);
	memset(&t.prev, 0, sizeof(t.prev));
	text = frame_text(&t, 0, 0, NULL);
	line_with(text, "packets", line, sizeof(line));
	assert_string_equal(line, "packets  1.0M seen  992k passed  12k dropped");
	assert_contains(text, "rates from the second sample on\n");
	line_with(text, "198.51.100.7 ", row, sizeof(row));
	line_with(text, "ADDRESS  ", header, sizeof(header));
	assert_cell_right(header, "PKTS/S", row, "-");
	free(text);

	/* two samples at the same instant: no division by zero */
	top_init(&t);
	t.cur.status_ms = t.prev.status_ms;
	t.cur.stats_ms = t.prev.stats_ms;
	text = frame_text(&t, 0, 0, NULL);
	assert_contains(text, "packets  1.0M seen  992k passed  12k dropped\n");
	assert_lacks(text, "inf");
	assert_lacks(text, "nan");
	free(text);

	/* the analyzer answered both from the same snapshot: no talker rates, whatever our clock */
	top_init(&t);
	t.prev.counted_ms = t.cur.counted_ms = 1700000000000ull;
	text = frame_text(&t, 0, 0, NULL);
	assert_contains(text, "rates from the second sample on\n");
	line_with(text, "198.51.100.7 ", row, sizeof(row));
	line_with(text, "ADDRESS  ", header, sizeof(header));
	assert_cell_right(header, "PKTS/S", row, "-");
	free(text);
}

static void test_frame_header_and_bans(void **state)
{
	char header[256], row[256];
	struct ctl_top t;
	char *text;

	(void)state;
	top_init(&t);
	t.view.order_bytes = false; /* p pressed, the refresh after it failed: */
	t.cur.order_bytes = true;   /* the list shown is by bytes still */
	t.view.interval_ms = 500;
	text = frame_text(&t, 0, 0, NULL);
	/* TZ is UTC */
	assert_contains(text, "ebpfmon 0.1.0  22:13:20  up 3d4h  enforcing  database ok  every "
			      "500ms\n");
	assert_contains(text, "TOP TALKERS by bytes: 3 of");
	/* the banned talker is marked in the first column, the others not */
	line_with(text, "198.51.100.7 ", row, sizeof(row));
	assert_true(!strncmp(row, "yes  198.51.100.7", 17));
	line_with(text, "2001:db8::1 ", row, sizeof(row));
	assert_true(!strncmp(row, "     2001:db8::1", 16));
	/* the bans: address, reason, when, expiry, drops, rule and path */
	assert_contains(text, "ACTIVE BANS: 2, newest first\n");
	line_with(text, "RULE/PATH", header, sizeof(header));
	assert_string_equal(header, "ADDRESS        REASON    BANNED  EXPIRES    DROPS  RULE/PATH");
	line_with(text, "url_rule", row, sizeof(row));
	assert_string_equal(row, "198.51.100.7   url_rule  1m ago  in 9m       1.5k  /wp-admin: "
				 "/wp-admin/setup.php");
	line_with(text, "manual", row, sizeof(row));
	assert_string_equal(row,
			    "2001:db8::/64  manual    2m ago  permanent      0  scanner network");
	assert_lacks(text, "q quit"); /* the key help is the live view's */
	free(text);

	/* more bans than shown; dry run; a failing database */
	cn.bans_resp.n_bans = 10;
	cn.bans_resp.total = 12;
	cn.status[1].dry_run = 1;
	cn.status[1].database_ok = 0;
	cn.status[1].database_failing_since_unix = NOW - 180;
	cn.status[1].database_error = (char *)"disk I/O error";
	t.keys = true;
	text = frame_text(&t, 0, 0, NULL);
	assert_contains(text, "ebpfmon 0.1.0  22:13:20  up 3d4h  DRY RUN (nothing is dropped)  "
			      "database FAILING since 3m ago  every 500ms  disk I/O error\n");
	assert_contains(text, "  900 would drop (200/s)\n");
	assert_contains(text, "ACTIVE BANS: the 10 newest of 12\n");
	assert_contains(text, "q quit  b by bytes  p by packets  + slower  - faster  space "
			      "refresh\n");
	free(text);

	/* nothing at all */
	top_init(&t);
	cn.stats[1].n_top = 0;
	cn.bans_resp.n_bans = 0;
	cn.bans_resp.total = 0;
	text = frame_text(&t, 0, 0, NULL);
	assert_contains(text, "TOP TALKERS by packets: 0 of 3.5k tracked addresses; rates over the "
			      "last 2.0s\nno traffic recorded\n\nACTIVE BANS: none\n");
	free(text);

	/* no status: no frame */
	{
		struct ctl_top_frame f;

		top_init(&t);
		memset(&t.cur, 0, sizeof(t.cur));
		assert_int_equal(ctl_top_frame_build(&f, &t, 80, 24), -EINVAL);
	}
}

static void test_frame_connection_lost(void **state)
{
	struct ctl_top_frame f;
	struct ctl_top t;

	(void)state;
	top_init(&t);
	t.error_what = "connection lost";
	snprintf(t.error, sizeof(t.error),
		 "cannot connect to ipc:///run/ebpfmon/api.sock: no such socket");
	assert_int_equal(ctl_top_frame_build(&f, &t, 0, 0), 0);
	/* the first line says it, with how old the data below it is */
	assert_string_equal(f.lines[0].text,
			    "connection lost, retrying every 1s (data from 5s ago): cannot connect "
			    "to ipc:///run/ebpfmon/api.sock: no such socket");
	assert_int_equal(f.lines[0].style, CTL_TOP_ALERT);
	/* the last data stays below it */
	assert_true(!strncmp(f.lines[1].text, "ebpfmon 0.1.0", 13));
	ctl_top_frame_fini(&f);
}

/* Every line of the frame is printable ASCII, whatever the peer sent. */
static void assert_printable(const struct ctl_top_frame *f)
{
	size_t i;
	const unsigned char *c;

	for (i = 0; i < f->n; i++)
		for (c = (const unsigned char *)f->lines[i].text; *c; c++)
			if (*c < 0x20 || *c >= 0x7f)
				fail_msg("byte 0x%02x in line %zu: %s", *c, i, f->lines[i].text);
}

static void test_frame_escaping(void **state)
{
	struct ctl_top_frame f;
	struct ctl_top t;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	(void)state;
	top_init(&t);
	cn.status[1].version = (char *)"0.1\x1b]0;owned\x07";
	cn.status[1].database_ok = 0;
	cn.status[1].database_error = (char *)"bad\nline\r\x1b[2J";
	cn.addr[1][2].address = (char *)"203.0.113.5\x1b[31m";
	cn.bans[0].path = (char *)"/\x1b[2J\x1b[H\xc3\xa9vil\\";
	cn.bans[0].reason = (char *)"url\x08\x08rule";
	t.error_what = "the analyzer refused";
	snprintf(t.error, sizeof(t.error), "STATUS_UNAVAILABLE: \x1b[5mlocked");
	assert_int_equal(ctl_top_frame_build(&f, &t, 0, 0), 0);
	assert_printable(&f);

	m = open_memstream(&buf, &len);
	assert_non_null(m);
	assert_int_equal(ctl_top_frame_print(&f, m), 0);
	fclose(m);
	assert_contains(buf, "ebpfmon 0.1\\x1b]0;owned\\x07  ");
	assert_contains(buf, "bad\\x0aline\\x0d\\x1b[2J");
	assert_contains(buf, "203.0.113.5\\x1b[31m");
	assert_contains(buf, "/\\x1b[2J\\x1b[H\\xc3\\xa9vil\\\\");
	assert_contains(buf, "url\\x08\\x08rule");
	assert_contains(buf, "STATUS_UNAVAILABLE: \\x1b[5mlocked");
	free(buf);

	/* painted: the only escape sequences are the painter's own */
	buf = NULL;
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	assert_int_equal(ctl_top_frame_paint(&f, 200, 60, m), 0);
	fclose(m);
	assert_lacks(buf, "\x1b[2J");
	assert_lacks(buf, "\x1b]");
	assert_lacks(buf, "\x1b[31m");
	assert_lacks(buf, "\x07");
	assert_lacks(buf, "\x08");
	free(buf);
	ctl_top_frame_fini(&f);
}

static void test_frame_fits(void **state)
{
	static const unsigned int sizes[][2] = {
		{80, 24}, {40, 12}, {120, 50}, {20, 3}, {200, 9}, {10, 1}, {60, 14},
	};
	struct ctl_top_frame f;
	struct ctl_top t;
	size_t i, l;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned int w = sizes[i][0], h = sizes[i][1];

		top_init(&t);
		t.keys = true;
		cn.bans_resp.n_bans = 10;
		cn.bans_resp.total = 12;
		assert_int_equal(ctl_top_frame_build(&f, &t, w, h), 0);
		if (f.n > h)
			fail_msg("%zu lines for a height of %u", f.n, h);
		for (l = 0; l < f.n; l++)
			if (strlen(f.lines[l].text) > w)
				fail_msg("line %zu is %zu wide for a width of %u: %s", l,
					 strlen(f.lines[l].text), w, f.lines[l].text);
		ctl_top_frame_fini(&f);
	}

	/*
	 * 80x24 with 3 talkers: the rows they leave go to the bans, up to 10 of them; 23 lines
	 * with the key help
	 */
	top_init(&t);
	t.keys = true;
	cn.bans_resp.n_bans = 10;
	cn.bans_resp.total = 12;
	assert_int_equal(ctl_top_frame_build(&f, &t, 80, 24), 0);
	assert_int_equal(f.n, 23);
	assert_string_equal(f.lines[0].text,
			    "ebpfmon 0.1.0  22:13:20  up 3d4h  enforcing  database ok  every 1s");
	assert_int_equal(f.lines[0].style, CTL_TOP_TITLE);
	assert_int_equal(f.lines[5].style, CTL_TOP_HEADING); /* the talkers' column headers */
	assert_string_equal(f.lines[9].text, "");
	assert_string_equal(f.lines[10].text, "ACTIVE BANS: the 10 newest of 12");
	assert_int_equal(f.lines[11].style, CTL_TOP_HEADING);
	assert_true(!strncmp(f.lines[22].text, "q quit", 6));
	/* cut to the width */
	assert_int_equal(strlen(f.lines[12].text), 80);
	assert_true(!strncmp(f.lines[12].text, "198.51.100.7   url_rule", 23));
	assert_null(strstr(f.lines[12].text, "setup.php"));
	ctl_top_frame_fini(&f);

	/* 40x12: the talkers take what there is, the bans only their title */
	top_init(&t);
	t.keys = true;
	assert_int_equal(ctl_top_frame_build(&f, &t, 40, 12), 0);
	assert_int_equal(f.n, 12);
	assert_string_equal(f.lines[0].text, "ebpfmon 0.1.0  22:13:20  up 3d4h  enforc");
	assert_true(!strncmp(f.lines[6].text, "yes  198.51.100.7", 17));
	assert_true(!strncmp(f.lines[8].text, "     203.0.113.5", 16));
	assert_string_equal(f.lines[10].text, "ACTIVE BANS: 2 (a taller window lists th");
	ctl_top_frame_fini(&f);

	/* --top caps the talkers whatever the height */
	top_init(&t);
	t.top_max = 1;
	assert_int_equal(ctl_top_frame_build(&f, &t, 0, 0), 0);
	for (l = 0; l < f.n; l++)
		assert_null(strstr(f.lines[l].text, "2001:db8::1 "));
	ctl_top_frame_fini(&f);
}

static void test_layout(void **state)
{
	struct ctl_top_rows r;

	(void)state;
	/* no height: --top or 10 talkers, up to 10 bans */
	ctl_top_layout(0, 25, 1, 0, &r);
	assert_int_equal(r.talkers, CTL_TOP_DEFAULT_ROWS);
	assert_int_equal(r.bans, CTL_TOP_BANS);
	ctl_top_layout(0, 3, 0, 50, &r);
	assert_int_equal(r.talkers, 50);
	assert_int_equal(r.bans, 3);
	/* 24 rows, key help: 24 - 9 = 15 free; the bans a third (4 rows and their headers) */
	ctl_top_layout(24, 10, 1, 0, &r);
	assert_int_equal(r.bans, 4);
	assert_int_equal(r.talkers, 10);
	/* fewer bans than their share: the talkers get the rest */
	ctl_top_layout(24, 1, 1, 0, &r);
	assert_int_equal(r.bans, 1);
	assert_int_equal(r.talkers, 13);
	ctl_top_layout(24, 0, 1, 0, &r);
	assert_int_equal(r.bans, 0);
	assert_int_equal(r.talkers, 15);
	/* a tall terminal: 10 bans at most */
	ctl_top_layout(100, 500, 1, 0, &r);
	assert_int_equal(r.bans, 10);
	assert_int_equal(r.talkers, 100 - 9 - 11);
	/* --top caps the talkers */
	ctl_top_layout(100, 0, 1, 20, &r);
	assert_int_equal(r.talkers, 20);
	/* too low for anything: still one talker asked for (0 would mean the server's 10) */
	ctl_top_layout(5, 10, 2, 0, &r);
	assert_int_equal(r.talkers, 1);
	assert_int_equal(r.bans, 0);
}

static void test_paint(void **state)
{
	struct ctl_top_line lines[] = {
		{(char *)"title", CTL_TOP_TITLE},
		{(char *)"COL1  COL2", CTL_TOP_HEADING},
		{(char *)"0123456789", CTL_TOP_PLAIN},
		{(char *)"last", CTL_TOP_PLAIN},
	};
	struct ctl_top_frame f = {.lines = lines, .n = 4, .cap = 4};
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	(void)state;
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	assert_int_equal(ctl_top_frame_paint(&f, 10, 6, m), 0);
	fclose(m);
	/*
	 * home; bold title, rest of the row erased; reverse headers across the width; a full
	 * row without an erase (it would clear its last column); no newline after the last
	 * line; then the rows below erased from the fifth
	 */
	assert_string_equal(buf, "\x1b[H"
				 "\x1b[1mtitle\x1b[m\x1b[K\r\n"
				 "\x1b[7mCOL1  COL2\x1b[m\r\n"
				 "0123456789\r\n"
				 "last\x1b[K"
				 "\x1b[5;1H\x1b[J");
	free(buf);

	/* a frame as high as the terminal: nothing below to erase, nothing scrolls */
	buf = NULL;
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	lines[1].text = (char *)"COL";
	assert_int_equal(ctl_top_frame_paint(&f, 12, 4, m), 0);
	fclose(m);
	assert_string_equal(buf, "\x1b[H"
				 "\x1b[1mtitle\x1b[m\x1b[K\r\n"
				 "\x1b[7mCOL         \x1b[m\r\n"
				 "0123456789\x1b[K\r\n"
				 "last\x1b[K");
	free(buf);
}

static void test_fmt_interval(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(ctl_top_fmt_interval(100, b, sizeof(b)), "100ms");
	assert_string_equal(ctl_top_fmt_interval(1500, b, sizeof(b)), "1500ms");
	assert_string_equal(ctl_top_fmt_interval(1000, b, sizeof(b)), "1s");
	assert_string_equal(ctl_top_fmt_interval(90000, b, sizeof(b)), "1m30s");
	assert_string_equal(ctl_top_fmt_interval(3600000, b, sizeof(b)), "1h");
}

/* ---- keys -------------------------------------------------------------------------------------
 */

static void test_keys(void **state)
{
	struct ctl_top_view v = {.order_bytes = false, .interval_ms = 1000};

	(void)state;
	assert_int_equal(ctl_top_key(&v, 'q'), CTL_TOP_QUIT);
	assert_int_equal(ctl_top_key(&v, 'Q'), CTL_TOP_QUIT);
	assert_int_equal(ctl_top_key(&v, 0x03), CTL_TOP_QUIT);

	/* b and p: another order is a new request; the same order is nothing */
	assert_int_equal(ctl_top_key(&v, 'b'), CTL_TOP_REFRESH);
	assert_true(v.order_bytes);
	assert_int_equal(ctl_top_key(&v, 'B'), CTL_TOP_NONE);
	assert_true(v.order_bytes);
	assert_int_equal(ctl_top_key(&v, 'p'), CTL_TOP_REFRESH);
	assert_false(v.order_bytes);
	assert_int_equal(ctl_top_key(&v, 'P'), CTL_TOP_NONE);

	/* + and - along the scale */
	assert_int_equal(ctl_top_key(&v, '+'), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 2000);
	assert_int_equal(ctl_top_key(&v, '='), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 5000);
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_REDRAW);
	assert_int_equal(ctl_top_key(&v, '_'), CTL_TOP_REDRAW);
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 500);
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_REDRAW);
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 100);
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_NONE); /* the bottom */
	assert_int_equal(v.interval_ms, 100);
	v.interval_ms = 300000;
	assert_int_equal(ctl_top_key(&v, '+'), CTL_TOP_NONE); /* the top */
	/* off the scale (--interval 3s, 1h): to the next step that way */
	v.interval_ms = 3000;
	assert_int_equal(ctl_top_key(&v, '+'), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 5000);
	v.interval_ms = 3000;
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 2000);
	v.interval_ms = 3600000;
	assert_int_equal(ctl_top_key(&v, '+'), CTL_TOP_NONE);
	assert_int_equal(ctl_top_key(&v, '-'), CTL_TOP_REDRAW);
	assert_int_equal(v.interval_ms, 300000);

	assert_int_equal(ctl_top_key(&v, ' '), CTL_TOP_REFRESH);
	assert_int_equal(ctl_top_key(&v, 0x0c), CTL_TOP_REDRAW);
	assert_int_equal(ctl_top_key(&v, 'x'), CTL_TOP_NONE);
	assert_int_equal(ctl_top_key(&v, '\n'), CTL_TOP_NONE);
	assert_int_equal(ctl_top_key(&v, 0xe9), CTL_TOP_NONE);
}

static void test_input(void **state)
{
	struct ctl_top_view v = {.order_bytes = false, .interval_ms = 1000};

	(void)state;
	/* arrows and function keys end in letters the view uses (B, P): skipped whole */
	assert_int_equal(ctl_top_input(&v, "\x1b[B", 3), CTL_TOP_NONE);
	assert_int_equal(ctl_top_input(&v, "\x1bOP", 3), CTL_TOP_NONE);
	assert_int_equal(ctl_top_input(&v, "\x1b[1;5B\x1b[15~", 11), CTL_TOP_NONE);
	assert_false(v.order_bytes);
	/* Alt-b and a lone Escape */
	assert_int_equal(ctl_top_input(&v,
				       "\x1b"
				       "b",
				       2),
			 CTL_TOP_NONE);
	assert_int_equal(ctl_top_input(&v, "\x1b", 1), CTL_TOP_NONE);
	assert_false(v.order_bytes);
	/* several keys at once: each applies, the strongest action wins */
	assert_int_equal(ctl_top_input(&v, "+b", 2), CTL_TOP_REFRESH);
	assert_true(v.order_bytes);
	assert_int_equal(v.interval_ms, 2000);
	assert_int_equal(ctl_top_input(&v, "-\x1b[Aq", 5), CTL_TOP_QUIT);
	assert_int_equal(v.interval_ms, 1000);
	/* a sequence cut at the end of the read */
	assert_int_equal(ctl_top_input(&v, "+\x1b[1;", 5), CTL_TOP_REDRAW);
	assert_int_equal(ctl_top_input(&v, "", 0), CTL_TOP_NONE);
}

/* ---- samples ----------------------------------------------------------------------------------
 */

static void test_sample_move(void **state)
{
	Ebpfmon__V1__GetMonitorStatusResponse *st;
	struct ctl_top_sample a, b;
	Ebpfmon__V1__Response *r;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	/* owned replies are freed once, by whoever holds them last (ASan would tell) */
	r = calloc(1, sizeof(*r));
	st = calloc(1, sizeof(*st));
	assert_non_null(r);
	assert_non_null(st);
	ebpfmon__v1__response__init(r);
	ebpfmon__v1__get_monitor_status_response__init(st);
	r->result_case = EBPFMON__V1__RESPONSE__RESULT_GET_MONITOR_STATUS;
	r->get_monitor_status = st;
	a.owned[0] = r;
	a.status = st;
	a.status_ms = 42;
	ctl_top_sample_move(&b, &a);
	assert_null(a.status);
	assert_null(a.owned[0]);
	assert_ptr_equal(b.status, st);
	assert_int_equal(b.status_ms, 42);
	ctl_top_sample_move(&b, &b);
	assert_ptr_equal(b.status, st);
	ctl_top_sample_clear(&b);
	assert_null(b.status);
	ctl_top_sample_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_rates),
		cmocka_unit_test(test_frame_header_and_bans),
		cmocka_unit_test(test_frame_connection_lost),
		cmocka_unit_test(test_frame_escaping),
		cmocka_unit_test(test_frame_fits),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_paint),
		cmocka_unit_test(test_fmt_interval),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_input),
		cmocka_unit_test(test_sample_move),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
