/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Aligned text tables and human units for ebpfmonctl's terminal output. */
#ifndef EBPFMON_CTL_TABLE_H
#define EBPFMON_CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CTL_TABLE_MAX_COLS 16
/* Big enough for any ctl_fmt_*() result. */
#define CTL_FMT_LEN 64

enum ctl_align {
	CTL_ALIGN_LEFT = 0,
	CTL_ALIGN_RIGHT,
};

struct ctl_column {
	const char *header;
	enum ctl_align align;
};

/*
 * A table: a header row and rows of cells, printed with each column as wide as its widest
 * cell, two spaces between columns, and no trailing blanks. Cells are copied when added, with
 * control characters, backslashes and bytes outside ASCII escaped (\xNN, \\), so that what a
 * peer sent (a request path, a process name) can neither move the cursor nor break the columns.
 */
struct ctl_table {
	const struct ctl_column *cols;
	unsigned int ncols;
	char **cells; /* rows * ncols, row-major */
	size_t rows, cap;
	int err; /* the first -ENOMEM, reported by ctl_table_print() */
};

void ctl_table_init(struct ctl_table *t, const struct ctl_column *cols, unsigned int ncols);
/* Append one row of t->ncols cells (NULL prints as "-"). 0 or -ENOMEM. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
/* 0, or -ENOMEM when a row could not be added, or -EIO when out failed. */
int ctl_table_print(const struct ctl_table *t, FILE *out);
void ctl_table_fini(struct ctl_table *t);

/* Copy s into buf with the escapes of a table cell; returns buf. */
const char *ctl_escape(const char *s, char *buf, size_t len);

/* Decimal units, three significant digits at most: "512 B", "1.2 kB", "34 MB", "1.0 GB". */
const char *ctl_fmt_bytes(uint64_t n, char *buf, size_t len);
/* "999", "1.2k", "34M" */
const char *ctl_fmt_count(uint64_t n, char *buf, size_t len);
/* "850 ns", "1.2 us", "34 ms", "2.0 s" */
const char *ctl_fmt_ns(uint64_t ns, char *buf, size_t len);
/* "1.2 MB/s" */
const char *ctl_fmt_rate(double bytes_per_second, char *buf, size_t len);
/* "45s", "1m30s", "12m", "1h5m", "2d3h", "40d": the largest unit, and the next below 10. */
const char *ctl_fmt_duration(uint64_t seconds, char *buf, size_t len);
/* "3m ago", "in 9m", "just now"; "-" for t == 0. */
const char *ctl_fmt_ago(int64_t t, time_t now, char *buf, size_t len);
/* "2024-05-01 12:00:00" in local time; "-" for t == 0. */
const char *ctl_fmt_time(int64_t t, char *buf, size_t len);

#endif
