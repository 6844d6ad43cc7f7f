// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ebpfmonctl top: frames from samples, rates from two samples, the layout for a height, and
 * the keys. Nothing here reads a clock, the terminal or the network.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "table.h"
#include "top.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Lines of every frame: three of header, a blank, the talkers' title and column headers, a
 * blank, the bans' title.
 */
#define CTL_TOP_FIXED_LINES 8

/* ---- samples ----------------------------------------------------------------------------------
 */

void ctl_top_sample_clear(struct ctl_top_sample *s)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(s->owned); i++)
		if (s->owned[i])
			ebpfmon__v1__response__free_unpacked(s->owned[i], NULL);
	memset(s, 0, sizeof(*s));
}

void ctl_top_sample_move(struct ctl_top_sample *to, struct ctl_top_sample *from)
{
	if (to == from)
		return;
	ctl_top_sample_clear(to);
	*to = *from;
	memset(from, 0, sizeof(*from));
}

/* ---- keys -------------------------------------------------------------------------------------
 */

static const uint32_t ctl_top_steps_ms[] = {
	100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000,
};

/* The next step of the interval scale above (up) or below ms; ms when there is none. */
static uint32_t ctl_top_step(uint32_t ms, bool up)
{
	size_t i;

	if (up) {
		for (i = 0; i < ARRAY_SIZE(ctl_top_steps_ms); i++)
			if (ctl_top_steps_ms[i] > ms)
				return ctl_top_steps_ms[i];
		return ms;
	}
	for (i = ARRAY_SIZE(ctl_top_steps_ms); i-- > 0;)
		if (ctl_top_steps_ms[i] < ms)
			return ctl_top_steps_ms[i];
	return ms;
}

static enum ctl_top_action ctl_top_set_order(struct ctl_top_view *v, bool bytes)
{
	if (v->order_bytes == bytes)
		return CTL_TOP_NONE;
	v->order_bytes = bytes;
	return CTL_TOP_REFRESH;
}

static enum ctl_top_action ctl_top_set_interval(struct ctl_top_view *v, bool up)
{
	uint32_t ms = ctl_top_step(v->interval_ms, up);

	if (ms == v->interval_ms)
		return CTL_TOP_NONE;
	v->interval_ms = ms;
	return CTL_TOP_REDRAW;
}

enum ctl_top_action ctl_top_key(struct ctl_top_view *v, int key)
{
	switch (key) {
	case 'q':
	case 'Q':
	case 0x03: /* Ctrl-C, when the terminal does not turn it into SIGINT */
		return CTL_TOP_QUIT;
	case 'b':
	case 'B':
		return ctl_top_set_order(v, true);
	case 'p':
	case 'P':
		return ctl_top_set_order(v, false);
	case '+':
	case '=':
		return ctl_top_set_interval(v, true);
	case '-':
	case '_':
		return ctl_top_set_interval(v, false);
	case ' ':
		return CTL_TOP_REFRESH;
	case 0x0c: /* Ctrl-L */
		return CTL_TOP_REDRAW;
	default:
		return CTL_TOP_NONE;
	}
}

enum ctl_top_action ctl_top_input(struct ctl_top_view *v, const char *buf, size_t len)
{
	enum ctl_top_action best = CTL_TOP_NONE, a;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == 0x1b) {
			if (i + 1 < len && buf[i + 1] == '[') {
				/* CSI: parameters, intermediates, a final 0x40..0x7e */
				for (i += 2; i < len; i++) {
					c = (unsigned char)buf[i];
					if (c >= 0x40 && c <= 0x7e)
						break;
				}
			} else if (i + 1 < len && buf[i + 1] == 'O') {
				i += 2; /* SS3: one more byte (F1..F4, keypad) */
			} else {
				i++; /* a lone Escape, or Alt with a key */
			}
			continue;
		}
		a = ctl_top_key(v, c);
		if (a > best)
			best = a;
	}
	return best;
}

/* ---- layout -----------------------------------------------------------------------------------
 */

void ctl_top_layout(unsigned int height, size_t n_bans, unsigned int extra_lines, uint32_t top_max,
		    struct ctl_top_rows *r)
{
	unsigned int fixed = CTL_TOP_FIXED_LINES + extra_lines, avail, share, bans, talkers;

	bans = n_bans < CTL_TOP_BANS ? (unsigned int)n_bans : CTL_TOP_BANS;
	if (!height) {
		r->bans = bans;
		r->talkers = top_max ? top_max : CTL_TOP_DEFAULT_ROWS;
		return;
	}
	avail = height > fixed ? height - fixed : 0;
	/* the bans' rows and their column headers take a third of the room at most */
	share = avail / 3;
	if (bans && share >= 2)
		bans = bans < share - 1 ? bans : share - 1;
	else
		bans = 0;
	talkers = avail - (bans ? bans + 1 : 0);
	if (top_max && talkers > top_max)
		talkers = top_max;
	r->bans = bans;
	r->talkers = talkers ? talkers : 1;
}

/* ---- frames -----------------------------------------------------------------------------------
 */

struct ctl_top_builder {
	struct ctl_top_frame *f;
	unsigned int width;
	int err;
};

static void ctl_top_push(struct ctl_top_builder *b, enum ctl_top_style style, char *text)
{
	struct ctl_top_frame *f = b->f;

	if (b->width && strlen(text) > b->width)
		text[b->width] = '\0';
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 32;
		struct ctl_top_line *grown = realloc(f->lines, cap * sizeof(*grown));

		if (!grown) {
			free(text);
			b->err = -ENOMEM;
			return;
		}
		f->lines = grown;
		f->cap = cap;
	}
	f->lines[f->n].text = text;
	f->lines[f->n].style = style;
	f->n++;
}

static void __attribute__((format(printf, 3, 4)))
ctl_top_add(struct ctl_top_builder *b, enum ctl_top_style style, const char *fmt, ...)
{
	va_list ap;
	char *text;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -ENOMEM;
		return;
	}
	ctl_top_push(b, style, text);
}

/* The table's lines: the column headers as a heading, then its rows. */
static void ctl_top_add_table(struct ctl_top_builder *b, const struct ctl_table *t)
{
	char *buf = NULL, *line, *next;
	size_t len = 0;
	bool first = true;
	FILE *m;
	int ret;

	if (b->err)
		return;
	m = open_memstream(&buf, &len);
	if (!m) {
		b->err = -ENOMEM;
		return;
	}
	ret = ctl_table_print(t, m);
	if (fclose(m) || ret) {
		free(buf);
		b->err = ret ?: -ENOMEM;
		return;
	}
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		ctl_top_add(b, first ? CTL_TOP_HEADING : CTL_TOP_PLAIN, "%s", line);
		first = false;
	}
	free(buf);
}

const char *ctl_top_fmt_interval(uint32_t ms, char *buf, size_t len)
{
	if (ms % 1000)
		snprintf(buf, len, "%ums", ms);
	else
		ctl_fmt_duration(ms / 1000, buf, len);
	return buf;
}

/* Seconds from a to b (monotonic milliseconds); 0 when b is not after a. */
static double ctl_top_seconds(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1000 : 0;
}

/* (cur - prev) / dt, when that is a rate: two samples apart in time, and no counter reset. */
static bool ctl_top_rate(uint64_t cur, uint64_t prev, double dt, double *rate)
{
	if (!(dt > 0) || cur < prev)
		return false;
	*rate = (double)(cur - prev) / dt;
	return true;
}

static uint64_t ctl_top_round(double v)
{
	return v > 1e18 ? (uint64_t)1e18 : (uint64_t)(v + 0.5);
}

/* "1.2M seen (1.0k/s)", without the rate when there is none */
static const char *ctl_top_counter(const char *what, uint64_t cur, const uint64_t *prev, double dt,
				   char *buf, size_t len)
{
	char n[CTL_FMT_LEN], r[CTL_FMT_LEN];
	double rate;

	ctl_fmt_count(cur, n, sizeof(n));
	if (prev && ctl_top_rate(cur, *prev, dt, &rate))
		snprintf(buf, len, "%s %s (%s/s)", n, what,
			 ctl_fmt_count(ctl_top_round(rate), r, sizeof(r)));
	else
		snprintf(buf, len, "%s %s", n, what);
	return buf;
}

static uint64_t ctl_top_dropped(const Ebpfmon__V1__Counters *k)
{
	return k->rx_drop_ban + k->rx_drop_net + k->rx_drop_url + k->rx_drop_unseen;
}

static void ctl_top_header(struct ctl_top_builder *b, const struct ctl_top *t)
{
	const Ebpfmon__V1__GetMonitorStatusResponse *m = t->cur.status, *p = t->prev.status;
	const Ebpfmon__V1__Counters *k = m->counters, *pk = p ? p->counters : NULL;
	char ver[128], up[CTL_FMT_LEN], iv[CTL_FMT_LEN], clock[32], db[512], err[512];
	char seen[96], passed[96], dropped[96], would[112], tracked[CTL_FMT_LEN];
	double dt = p ? ctl_top_seconds(t->prev.status_ms, t->cur.status_ms) : 0;
	time_t now = t->now;
	struct tm tm;

	ctl_top_fmt_interval(t->view.interval_ms, iv, sizeof(iv));
	if (t->error_what) {
		char age[CTL_FMT_LEN];

		ctl_fmt_duration((uint64_t)ctl_top_seconds(t->cur.status_ms, t->now_ms), age,
				 sizeof(age));
		ctl_top_add(b, CTL_TOP_ALERT, "%s, retrying every %s (data from %s ago): %s",
			    t->error_what, iv, age, ctl_escape(t->error, err, sizeof(err)));
	}

	if (!localtime_r(&now, &tm) || !strftime(clock, sizeof(clock), "%H:%M:%S", &tm))
		snprintf(clock, sizeof(clock), "-");
	ctl_escape(m->version && *m->version ? m->version : "?", ver, sizeof(ver));
	ctl_fmt_duration(m->uptime_seconds, up, sizeof(up));
	/* the most important first: a narrow terminal cuts the end */
	if (m->database_ok) {
		snprintf(db, sizeof(db), "database ok");
		err[0] = '\0';
	} else {
		char since[CTL_FMT_LEN];

		snprintf(db, sizeof(db), "database FAILING since %s",
			 ctl_fmt_ago(m->database_failing_since_unix, now, since, sizeof(since)));
		ctl_escape(m->database_error && *m->database_error ? m->database_error
								   : "unknown error",
			   err, sizeof(err));
	}
	ctl_top_add(b, m->database_ok ? CTL_TOP_TITLE : CTL_TOP_ALERT,
		    "ebpfmon %s  %s  up %s  %s  %s  every %s%s%s", ver, clock, up,
		    m->dry_run ? "DRY RUN (nothing is dropped)" : "enforcing", db, iv,
		    err[0] ? "  " : "", err);

	if (k) {
		uint64_t pd = pk ? ctl_top_dropped(pk) : 0;

		would[0] = '\0';
		if (m->dry_run) {
			char w[96];

			snprintf(would, sizeof(would), "  %s",
				 ctl_top_counter("would drop", k->rx_would_drop,
						 pk ? &pk->rx_would_drop : NULL, dt, w, sizeof(w)));
		}
		ctl_top_add(b, CTL_TOP_PLAIN, "packets  %s  %s  %s%s",
			    ctl_top_counter("seen", k->rx_seen, pk ? &pk->rx_seen : NULL, dt, seen,
					    sizeof(seen)),
			    ctl_top_counter("passed", k->rx_passed, pk ? &pk->rx_passed : NULL, dt,
					    passed, sizeof(passed)),
			    ctl_top_counter("dropped", ctl_top_dropped(k), pk ? &pd : NULL, dt,
					    dropped, sizeof(dropped)),
			    would);
	} else {
		ctl_top_add(b, CTL_TOP_PLAIN, "packets  no counters");
	}
	ctl_top_add(b, CTL_TOP_PLAIN,
		    "bans     %llu active  tracked %s addresses  anomalies %llu open",
		    (unsigned long long)m->active_bans,
		    ctl_fmt_count(m->tracked_addresses, tracked, sizeof(tracked)),
		    (unsigned long long)m->open_anomalies);
}

static uint64_t ctl_top_packets(const Ebpfmon__V1__AddressStats *s)
{
	return s->packets ? s->packets : s->rx_packets + s->tx_packets;
}

static uint64_t ctl_top_bytes(const Ebpfmon__V1__AddressStats *s)
{
	return s->bytes ? s->bytes : s->rx_bytes + s->tx_bytes;
}

/* The same address in the previous sample's list, or NULL. */
static const Ebpfmon__V1__AddressStats *ctl_top_find(const Ebpfmon__V1__GetNetworkStatsResponse *m,
						     const char *address)
{
	size_t i;

	if (!m || !address)
		return NULL;
	for (i = 0; i < m->n_top; i++)
		if (m->top[i]->address && !strcmp(m->top[i]->address, address))
			return m->top[i];
	return NULL;
}

static void ctl_top_talkers(struct ctl_top_builder *b, const struct ctl_top *t, size_t rows)
{
	static const struct ctl_column cols[] = {
		{"BAN", CTL_ALIGN_LEFT},      {"ADDRESS", CTL_ALIGN_LEFT},
		{"PKTS/S", CTL_ALIGN_RIGHT},  {"BYTES/S", CTL_ALIGN_RIGHT},
		{"PACKETS", CTL_ALIGN_RIGHT}, {"BYTES", CTL_ALIGN_RIGHT},
		{"CONNS", CTL_ALIGN_RIGHT},   {"LAST_SEEN", CTL_ALIGN_LEFT},
	};
	const Ebpfmon__V1__GetNetworkStatsResponse *m = t->cur.stats, *p = t->prev.stats;
	/* on the analyzer's clock when both samples say when they were counted, else on ours */
	double dt = !p ? 0
		    : t->prev.counted_ms && t->cur.counted_ms
			    ? ctl_top_seconds(t->prev.counted_ms, t->cur.counted_ms)
			    : ctl_top_seconds(t->prev.stats_ms, t->cur.stats_ms);
	/* the order of the list shown, which a failed refresh leaves as it was */
	const char *order = t->cur.order_bytes ? "bytes" : "packets";
	char tracked[CTL_FMT_LEN], rates[64];
	struct ctl_table tab;
	size_t i, n;

	n = m ? m->n_top : 0;
	if (n > rows)
		n = rows;
	ctl_fmt_count(m ? m->tracked_addresses : 0, tracked, sizeof(tracked));
	if (dt > 0)
		snprintf(rates, sizeof(rates), "rates over the last %.1fs", dt);
	else
		snprintf(rates, sizeof(rates), "rates from the second sample on");
	ctl_top_add(b, CTL_TOP_TITLE, "TOP TALKERS by %s: %zu of %s tracked addresses; %s", order,
		    n, tracked, rates);
	if (!n) {
		ctl_top_add(b, CTL_TOP_PLAIN, "no traffic recorded");
		return;
	}
	ctl_table_init(&tab, cols, ARRAY_SIZE(cols));
	for (i = 0; i < n; i++) {
		const Ebpfmon__V1__AddressStats *s = m->top[i];
		const Ebpfmon__V1__AddressStats *was = dt > 0 ? ctl_top_find(p, s->address) : NULL;
		char pps[CTL_FMT_LEN], bps[CTL_FMT_LEN], pk[CTL_FMT_LEN], by[CTL_FMT_LEN];
		char conns[CTL_FMT_LEN], seen[CTL_FMT_LEN];
		const char *row[ARRAY_SIZE(cols)] = {
			s->banned ? "yes" : "",
			s->address,
			NULL,
			NULL,
			ctl_fmt_count(ctl_top_packets(s), pk, sizeof(pk)),
			ctl_fmt_bytes(ctl_top_bytes(s), by, sizeof(by)),
			ctl_fmt_count(s->connections, conns, sizeof(conns)),
			ctl_fmt_ago(s->last_seen_unix, t->now, seen, sizeof(seen)),
		};
		double rate;

		if (was && ctl_top_rate(ctl_top_packets(s), ctl_top_packets(was), dt, &rate))
			row[2] = ctl_fmt_count(ctl_top_round(rate), pps, sizeof(pps));
		if (was && ctl_top_rate(ctl_top_bytes(s), ctl_top_bytes(was), dt, &rate))
			row[3] = ctl_fmt_bytes(ctl_top_round(rate), bps, sizeof(bps));
		ctl_table_add(&tab, row);
	}
	ctl_top_add_table(b, &tab);
	ctl_table_fini(&tab);
}

static void ctl_top_bans(struct ctl_top_builder *b, const struct ctl_top *t, size_t rows)
{
	static const struct ctl_column cols[] = {
		{"ADDRESS", CTL_ALIGN_LEFT}, {"REASON", CTL_ALIGN_LEFT},
		{"BANNED", CTL_ALIGN_LEFT},  {"EXPIRES", CTL_ALIGN_LEFT},
		{"DROPS", CTL_ALIGN_RIGHT},  {"RULE/PATH", CTL_ALIGN_LEFT},
	};
	const Ebpfmon__V1__GetMaliciousIPsResponse *m = t->cur.bans;
	size_t i, have = m ? m->n_bans : 0, n = have < rows ? have : rows;
	uint64_t total = m ? m->total : 0;
	struct ctl_table tab;

	if (total < have)
		total = have;
	if (!total) {
		ctl_top_add(b, CTL_TOP_TITLE, "ACTIVE BANS: none");
		return;
	}
	if (!n) {
		ctl_top_add(b, CTL_TOP_TITLE, "ACTIVE BANS: %llu (a taller window lists them)",
			    (unsigned long long)total);
		return;
	}
	if (n == total)
		ctl_top_add(b, CTL_TOP_TITLE, "ACTIVE BANS: %zu, newest first", n);
	else
		ctl_top_add(b, CTL_TOP_TITLE, "ACTIVE BANS: the %zu newest of %llu", n,
			    (unsigned long long)total);
	ctl_table_init(&tab, cols, ARRAY_SIZE(cols));
	for (i = 0; i < n; i++) {
		const Ebpfmon__V1__Ban *ban = m->bans[i];
		char reason[96], banned[CTL_FMT_LEN], expires[CTL_FMT_LEN], drops[CTL_FMT_LEN];
		char detail[1024];
		const char *row[ARRAY_SIZE(cols)] = {
			ban->address,
			ctl_ban_reason_text(ban, reason, sizeof(reason)),
			ctl_fmt_ago(ban->banned_unix, t->now, banned, sizeof(banned)),
			ctl_ban_expiry(ban, t->now, expires, sizeof(expires)),
			ctl_fmt_count(ban->drops, drops, sizeof(drops)),
			ctl_ban_detail(ban, detail, sizeof(detail)),
		};

		ctl_table_add(&tab, row);
	}
	ctl_top_add_table(b, &tab);
	ctl_table_fini(&tab);
}

int ctl_top_frame_build(struct ctl_top_frame *f, const struct ctl_top *t, unsigned int width,
			unsigned int height)
{
	struct ctl_top_builder b = {.f = f, .width = width};
	size_t n_top, n_bans, talkers, bans;
	struct ctl_top_rows r;

	memset(f, 0, sizeof(*f));
	if (!t->cur.status)
		return -EINVAL;
	n_top = t->cur.stats ? t->cur.stats->n_top : 0;
	n_bans = t->cur.bans ? t->cur.bans->n_bans : 0;
	ctl_top_layout(height, n_bans, (t->keys ? 1 : 0) + (t->error_what ? 1 : 0), t->top_max, &r);
	talkers = n_top < r.talkers ? n_top : r.talkers;
	bans = r.bans;
	/* rows the talkers leave free go to the bans (one to their column headers if need be) */
	if (height && talkers < r.talkers) {
		size_t spare = r.talkers - talkers;

		bans = bans ? bans + spare : spare - 1;
	}
	if (bans > CTL_TOP_BANS)
		bans = CTL_TOP_BANS;

	ctl_top_header(&b, t);
	ctl_top_add(&b, CTL_TOP_PLAIN, "%s", "");
	ctl_top_talkers(&b, t, talkers);
	ctl_top_add(&b, CTL_TOP_PLAIN, "%s", "");
	ctl_top_bans(&b, t, bans);
	if (t->keys)
		ctl_top_add(&b, CTL_TOP_PLAIN,
			    "q quit  b by bytes  p by packets  + slower  - faster  space refresh");
	if (b.err) {
		ctl_top_frame_fini(f);
		return b.err;
	}
	/* a terminal lower than the fixed lines: the end goes */
	while (height && f->n > height)
		free(f->lines[--f->n].text);
	return 0;
}

void ctl_top_frame_fini(struct ctl_top_frame *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->lines[i].text);
	free(f->lines);
	memset(f, 0, sizeof(*f));
}

int ctl_top_frame_print(const struct ctl_top_frame *f, FILE *out)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		fputs(f->lines[i].text, out);
		fputc('\n', out);
	}
	return ferror(out) ? -EIO : 0;
}

int ctl_top_frame_paint(const struct ctl_top_frame *f, unsigned int width, unsigned int height,
			FILE *out)
{
	static const char *const sgr[] = {
		[CTL_TOP_PLAIN] = "",
		[CTL_TOP_TITLE] = "\x1b[1m",
		[CTL_TOP_HEADING] = "\x1b[7m",
		[CTL_TOP_ALERT] = "\x1b[1;7m",
	};
	size_t i;

	fputs("\x1b[H", out);
	for (i = 0; i < f->n; i++) {
		const struct ctl_top_line *l = &f->lines[i];
		size_t len = strlen(l->text);
		const char *on = (unsigned int)l->style < ARRAY_SIZE(sgr) ? sgr[l->style] : "";

		fputs(on, out);
		fputs(l->text, out);
		/* reverse video across the whole row */
		if ((l->style == CTL_TOP_HEADING || l->style == CTL_TOP_ALERT) && len < width) {
			fprintf(out, "%*s", (int)(width - len), "");
			len = width;
		}
		if (*on)
			fputs("\x1b[m", out);
		/*
		 * Erase the rest of the row, unless the line filled it: the cursor then sits on
		 * the last column, which an erase would clear.
		 */
		if (!width || len < width)
			fputs("\x1b[K", out);
		if (i + 1 < f->n)
			fputs("\r\n", out);
	}
	/* the rows below, from the next one's start (a newline could scroll) */
	if (!height || f->n < height)
		fprintf(out, "\x1b[%zu;1H\x1b[J", f->n + 1);
	return ferror(out) ? -EIO : 0;
}
