// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Aligned text tables and human units. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

void ctl_table_init(struct ctl_table *t, const struct ctl_column *cols, unsigned int ncols)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->ncols = ncols > CTL_TABLE_MAX_COLS ? CTL_TABLE_MAX_COLS : ncols;
}

const char *ctl_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!len)
		return buf;
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[5];
		size_t n;

		if (c < 0x20 || c >= 0x7f) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			n = 4;
		} else if (c == '\\') {
			esc[0] = esc[1] = '\\';
			n = 2;
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		if (o + n >= len)
			break;
		memcpy(buf + o, esc, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

/* The escaped copy of s, allocated; NULL on -ENOMEM. */
static char *ctl_escape_dup(const char *s)
{
	size_t len = 4 * strlen(s) + 1;
	char *buf = malloc(len);

	if (buf)
		ctl_escape(s, buf, len);
	return buf;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	unsigned int c;
	char **row;

	if (t->err)
		return t->err;
	if (t->rows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		char **grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));

		if (!grown)
			return t->err = -ENOMEM;
		t->cells = grown;
		t->cap = cap;
	}
	row = t->cells + t->rows * t->ncols;
	for (c = 0; c < t->ncols; c++) {
		row[c] = ctl_escape_dup(cells[c] ? cells[c] : "-");
		if (!row[c]) {
			while (c--)
				free(row[c]);
			return t->err = -ENOMEM;
		}
	}
	t->rows++;
	return 0;
}

static void ctl_table_cell(FILE *out, const char *s, size_t width, enum ctl_align align, bool last)
{
	size_t pad = width - strlen(s);

	if (align == CTL_ALIGN_RIGHT)
		fprintf(out, "%*s%s", (int)pad, "", s);
	else if (last)
		fputs(s, out);
	else
		fprintf(out, "%s%*s", s, (int)pad, "");
}

int ctl_table_print(const struct ctl_table *t, FILE *out)
{
	size_t width[CTL_TABLE_MAX_COLS], r;
	unsigned int c;

	for (c = 0; c < t->ncols; c++) {
		width[c] = strlen(t->cols[c].header);
		for (r = 0; r < t->rows; r++) {
			size_t w = strlen(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (c = 0; c < t->ncols; c++) {
		if (c)
			fputs("  ", out);
		ctl_table_cell(out, t->cols[c].header, width[c], t->cols[c].align,
			       c + 1 == t->ncols);
	}
	fputc('\n', out);
	for (r = 0; r < t->rows; r++) {
		for (c = 0; c < t->ncols; c++) {
			if (c)
				fputs("  ", out);
			ctl_table_cell(out, t->cells[r * t->ncols + c], width[c], t->cols[c].align,
				       c + 1 == t->ncols);
		}
		fputc('\n', out);
	}
	if (t->err)
		return t->err;
	return ferror(out) ? -EIO : 0;
}

void ctl_table_fini(struct ctl_table *t)
{
	size_t i;

	for (i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->rows = t->cap = 0;
}

/* ---- human units ------------------------------------------------------------------------------
 */

/* n in steps of 1000 with one of units[] (nunits of them) after it, sep between. */
static const char *ctl_fmt_si(uint64_t n, const char *const *units, unsigned int nunits,
			      const char *sep, char *buf, size_t len)
{
	double v = (double)n;
	unsigned int k = 0;

	if (n < 1000) {
		snprintf(buf, len, "%llu%s%s", (unsigned long long)n, sep, units[0]);
		return buf;
	}
	/* 999.5 would print as "1000": it is the next unit's 1.0 */
	while (v >= 999.5 && k + 1 < nunits) {
		v /= 1000;
		k++;
	}
	snprintf(buf, len, v < 9.95 ? "%.1f%s%s" : "%.0f%s%s", v, sep, units[k]);
	return buf;
}

const char *ctl_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};

	return ctl_fmt_si(n, units, 7, " ", buf, len);
}

const char *ctl_fmt_count(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"", "k", "M", "G", "T", "P", "E"};

	return ctl_fmt_si(n, units, 7, "", buf, len);
}

const char *ctl_fmt_ns(uint64_t ns, char *buf, size_t len)
{
	static const char *const units[] = {"ns", "us", "ms", "s"};

	return ctl_fmt_si(ns, units, 4, " ", buf, len);
}

const char *ctl_fmt_rate(double bytes_per_second, char *buf, size_t len)
{
	char b[CTL_FMT_LEN];

	if (!(bytes_per_second >= 0)) /* negative or NaN: nothing sensible to say */
		bytes_per_second = 0;
	if (bytes_per_second > 1e18)
		bytes_per_second = 1e18;
	snprintf(buf, len, "%s/s", ctl_fmt_bytes((uint64_t)(bytes_per_second + 0.5), b, sizeof(b)));
	return buf;
}

const char *ctl_fmt_duration(uint64_t s, char *buf, size_t len)
{
	static const struct {
		uint64_t seconds;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	unsigned int i = 0;
	uint64_t a, b;

	while (i < 3 && s < units[i].seconds)
		i++;
	a = s / units[i].seconds;
	b = i < 3 ? (s % units[i].seconds) / units[i + 1].seconds : 0;
	if (a < 10 && b)
		snprintf(buf, len, "%llu%c%llu%c", (unsigned long long)a, units[i].unit,
			 (unsigned long long)b, units[i + 1].unit);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)a, units[i].unit);
	return buf;
}

const char *ctl_fmt_ago(int64_t t, time_t now, char *buf, size_t len)
{
	char d[CTL_FMT_LEN];
	int64_t diff;

	if (!t) {
		snprintf(buf, len, "-");
		return buf;
	}
	diff = (int64_t)now - t;
	if (diff == 0)
		snprintf(buf, len, "just now");
	else if (diff > 0)
		snprintf(buf, len, "%s ago", ctl_fmt_duration((uint64_t)diff, d, sizeof(d)));
	else
		snprintf(buf, len, "in %s", ctl_fmt_duration((uint64_t)-diff, d, sizeof(d)));
	return buf;
}

const char *ctl_fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !localtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
	return buf;
}
