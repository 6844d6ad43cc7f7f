/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ebpfmonctl top: the view's pure core. A frame (a list of text lines, each with a style) is
 * built from the last two samples of the API without I/O and without a clock: the caller
 * passes the times in. Rates per second are the difference of two samples' counters divided by
 * the time between them. Keys change the view through ctl_top_key(). The terminal and the
 * calls are top_run.c's.
 */
#ifndef EBPFMON_CTL_TOP_H
#define EBPFMON_CTL_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "ebpfmon.pb-c.h"

#define CTL_TOP_BANS	     10 /* the newest active bans shown, at most */
#define CTL_TOP_DEFAULT_ROWS 10 /* talkers when there is no height to fill */
#define CTL_TOP_ERROR_MAX    256

/*
 * One refresh: the three replies and when they came (a monotonic clock, in milliseconds).
 * The messages are const: a sample either owns the Responses they belong to (owned[], freed
 * by ctl_top_sample_clear()) or points at messages that someone else keeps (the tests).
 */
struct ctl_top_sample {
	const Ebpfmon__V1__GetMonitorStatusResponse *status; /* NULL: no sample */
	const Ebpfmon__V1__GetMaliciousIPsResponse *bans;
	const Ebpfmon__V1__GetNetworkStatsResponse *stats;
	uint64_t status_ms;  /* when the status (its counters) arrived */
	uint64_t stats_ms;   /* when the talkers arrived */
	uint64_t counted_ms; /* when the analyzer counted them (as_of_unix_ms); 0 unknown */
	bool order_bytes;    /* the talkers are the busiest by bytes, not by packets */
	Ebpfmon__V1__Response *owned[3];
};

void ctl_top_sample_clear(struct ctl_top_sample *s);
/* Move *from into *to (cleared first); *from is left empty. */
void ctl_top_sample_move(struct ctl_top_sample *to, struct ctl_top_sample *from);

/* What the keys change. */
struct ctl_top_view {
	bool order_bytes;
	uint32_t interval_ms; /* between refreshes */
};

/* What a key asks of the loop; a larger value includes the smaller ones. */
enum ctl_top_action {
	CTL_TOP_NONE = 0, /* not a key of the view */
	CTL_TOP_REDRAW,	  /* the view changed (the interval), or Ctrl-L: paint again */
	CTL_TOP_REFRESH,  /* ask the analyzer now (space, or another order) */
	CTL_TOP_QUIT,	  /* q, Q, Ctrl-C */
};

/*
 * One key: q/Q/Ctrl-C quit; b/B order by bytes, p/P by packets; + (or =) a longer interval,
 * - (or _) a shorter one, along 100ms 200ms 500ms 1s 2s 5s 10s 30s 1m 5m (from an interval
 * between two steps, to the next step that way); space refreshes; Ctrl-L redraws.
 */
enum ctl_top_action ctl_top_key(struct ctl_top_view *v, int key);
/*
 * What the terminal sent (len bytes, several keys possibly): each key through ctl_top_key(),
 * escape sequences (arrows, function keys: ESC [ ... final, ESC O x) skipped whole.
 * The strongest action of them.
 */
enum ctl_top_action ctl_top_input(struct ctl_top_view *v, const char *buf, size_t len);

/* Everything a frame shows. */
struct ctl_top {
	struct ctl_top_view view;
	uint32_t top_max; /* --top: at most this many talkers; 0: as many as fit */
	bool keys;	  /* the live view: a line of key help at the end */
	struct ctl_top_sample cur, prev;
	/*
	 * The last refresh failed: what kind ("connection lost", "the analyzer refused") and the
	 * message (one line). NULL when it worked.
	 */
	const char *error_what;
	char error[CTL_TOP_ERROR_MAX];
	time_t now;	 /* wall clock: the header's time, "3m ago", "in 9m" */
	uint64_t now_ms; /* monotonic clock: how old the data is */
};

/* How the lines of a given height are shared. */
struct ctl_top_rows {
	unsigned int talkers; /* at least 1 (a request for 0 would mean the server's default) */
	unsigned int bans;
};

/*
 * Rows for the talkers and the bans when the frame may have height lines (0: no limit) and
 * n_bans active bans came: the bans get up to a third of the room (CTL_TOP_BANS at most), the
 * talkers the rest, at most top_max of them (when not 0). extra_lines: lines besides the fixed
 * ones (the key help, an error line).
 */
void ctl_top_layout(unsigned int height, size_t n_bans, unsigned int extra_lines, uint32_t top_max,
		    struct ctl_top_rows *r);

enum ctl_top_style {
	CTL_TOP_PLAIN = 0,
	CTL_TOP_TITLE,	 /* bold */
	CTL_TOP_HEADING, /* a table's column headers: reverse video across the width */
	CTL_TOP_ALERT,	 /* bold reverse: connection lost, database failing, dry run */
};

struct ctl_top_line {
	char *text; /* printable ASCII only: whatever a peer sent is escaped */
	enum ctl_top_style style;
};

struct ctl_top_frame {
	struct ctl_top_line *lines;
	size_t n, cap;
};

/*
 * Build the frame of t: at most height lines (0: no limit), each cut to width columns
 * (0: no limit). t->cur.status must be set. 0 or -ENOMEM; free with ctl_top_frame_fini().
 */
int ctl_top_frame_build(struct ctl_top_frame *f, const struct ctl_top *t, unsigned int width,
			unsigned int height);
void ctl_top_frame_fini(struct ctl_top_frame *f);
/* The frame as plain text, one line each. 0 or -EIO. */
int ctl_top_frame_print(const struct ctl_top_frame *f, FILE *out);
/*
 * The frame for a terminal of width columns and height rows: cursor home, each line with its
 * style and the rest of its row erased, then the rows below erased; nothing scrolls and
 * nothing is cleared first, so the screen does not flicker. 0 or -EIO.
 */
int ctl_top_frame_paint(const struct ctl_top_frame *f, unsigned int width, unsigned int height,
			FILE *out);

/* "500ms", "1s", "1m30s" */
const char *ctl_top_fmt_interval(uint32_t ms, char *buf, size_t len);

#endif
