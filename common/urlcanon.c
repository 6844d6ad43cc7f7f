// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The reference canonicalisation of docs/url-matching.md. Three steps, each a plain function:
 *
 *   urlcanon_scan()  finds request lines: LINE_START, SKIP, METHOD and SPACES states;
 *   read_target()    reads a request target (origin or absolute form) and percent-decodes
 *                    its path into a work buffer, up to the path's terminator;
 *   normalise()      merges slashes and resolves dot segments of the decoded path.
 *
 * Clarity over speed: the whole decoded and canonical paths are kept (in buffers as long as
 * the input, which bounds both), and only then cut to EBPFMON_URL_PATH_MAX.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urlcanon.h"

static bool is_eol(uint8_t c)
{
	return c == '\r' || c == '\n';
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static bool is_method(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

static bool is_alpha(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_scheme(uint8_t c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* Raw bytes that end a path, and (but '/') an authority. */
static bool is_path_end(uint8_t c)
{
	return is_space(c) || is_eol(c) || c == '?' || c == '#' || c == '\0';
}

/* 0..15, or -1 for a byte that is not a hex digit. */
static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum target_status {
	TARGET_COMPLETE,   /* a path was read to its terminator */
	TARGET_FAIL,	   /* not a request target: read on from next */
	TARGET_INCOMPLETE, /* the buffer ended inside the target */
};

struct target {
	enum target_status status;
	size_t next;	/* COMPLETE, FAIL: the first byte after the terminator or failing byte */
	bool line_end;	/* COMPLETE, FAIL: that byte was a raw CR or LF */
	size_t dec_len; /* COMPLETE: bytes of the decoded path in dec[] */
};

/*
 * Percent-decode the path at buf[i] (a '/') into dec[] up to its terminator: a raw SP, HTAB,
 * CR, LF, '?', '#' or NUL, or a decoded NUL (%00). An invalid escape is a literal '%' and the
 * bytes after it are read as usual. The end of the buffer ends the path when eof_ends, else
 * leaves it incomplete.
 */
static void read_path(const uint8_t *buf, size_t len, size_t i, bool eof_ends, uint8_t *dec,
		      struct target *t)
{
	size_t n = 0;

	while (i < len) {
		uint8_t c = buf[i];
		int hi, lo;

		if (is_path_end(c)) {
			t->status = TARGET_COMPLETE;
			t->next = i + 1;
			t->line_end = is_eol(c);
			t->dec_len = n;
			return;
		}
		hi = c == '%' && i + 1 < len ? hex_value(buf[i + 1]) : -1;
		lo = hi >= 0 && i + 2 < len ? hex_value(buf[i + 2]) : -1;
		if (lo < 0) {
			dec[n++] = c; /* a raw byte, or a '%' that starts no valid escape */
			i++;
			continue;
		}
		c = (uint8_t)(hi << 4 | lo);
		if (c == '\0') {
			t->status = TARGET_COMPLETE;
			t->next = i + 3;
			t->line_end = false;
			t->dec_len = n;
			return;
		}
		dec[n++] = c; /* decoded: '/' and '.' count as raw ones, all else is literal */
		i += 3;
	}
	t->status = eof_ends ? TARGET_COMPLETE : TARGET_INCOMPLETE;
	t->next = len;
	t->line_end = false;
	t->dec_len = n;
}

/*
 * Read the request target at buf[i] (the first byte after the method's spaces) and decode
 * its path into dec[] (which must hold len - i + 1 bytes). Origin form starts with '/';
 * absolute form is scheme "://" authority, then the path from the next '/', or "/" when the
 * authority ends with anything else. Anything else fails at the first byte that does not fit.
 */
static void read_target(const uint8_t *buf, size_t len, size_t i, bool eof_ends, uint8_t *dec,
			struct target *t)
{
	enum { SCHEME_FIRST, SCHEME, SLASH1, SLASH2, AUTHORITY } st = SCHEME_FIRST;

	if (i < len && buf[i] == '/') {
		read_path(buf, len, i, eof_ends, dec, t);
		return;
	}
	for (; i < len; i++) {
		uint8_t c = buf[i];
		bool ok;

		switch (st) {
		case SCHEME_FIRST:
			ok = is_alpha(c);
			st = SCHEME;
			break;
		case SCHEME:
			ok = is_scheme(c) || c == ':';
			if (c == ':')
				st = SLASH1;
			break;
		case SLASH1:
			ok = c == '/';
			st = SLASH2;
			break;
		case SLASH2:
			ok = c == '/';
			st = AUTHORITY;
			break;
		case AUTHORITY:
			if (c == '/') {
				read_path(buf, len, i, eof_ends, dec, t);
				return;
			}
			if (is_path_end(c)) {
				dec[0] = '/';
				t->status = TARGET_COMPLETE;
				t->next = i + 1;
				t->line_end = is_eol(c);
				t->dec_len = 1;
				return;
			}
			ok = true;
			break;
		}
		if (!ok) {
			t->status = TARGET_FAIL;
			t->next = i + 1;
			t->line_end = is_eol(c);
			return;
		}
	}
	if (eof_ends && st == AUTHORITY) {
		dec[0] = '/';
		t->status = TARGET_COMPLETE;
		t->dec_len = 1;
	} else {
		t->status = eof_ends ? TARGET_FAIL : TARGET_INCOMPLETE;
	}
	t->next = len;
	t->line_end = false;
}

/*
 * Merge slashes and resolve dot segments (RFC 3986 §5.2.4, '..' clamped at the root) of the
 * decoded path dec[0..n) (dec[0] == '/'), into out[], which must hold n bytes. Returns the
 * canonical length. out always holds "/" followed by the kept segments, each followed by a
 * '/' except the last segment of the path when it is kept: so "/a/b/.." gives "/a/".
 */
static size_t normalise(const uint8_t *dec, size_t n, uint8_t *out)
{
	size_t o = 0, i = 1;

	out[o++] = '/';
	while (i <= n) {
		size_t end = i, seg;
		bool last;

		while (end < n && dec[end] != '/')
			end++;
		seg = end - i;
		last = end >= n;
		if (seg == 0 || (seg == 1 && dec[i] == '.')) {
			/* an empty segment (merged slashes) or ".": nothing */
		} else if (seg == 2 && dec[i] == '.' && dec[i + 1] == '.') {
			if (o > 1) { /* remove the previous segment and its '/' */
				o--;
				while (out[o - 1] != '/')
					o--;
			}
		} else {
			memcpy(out + o, dec + i, seg);
			o += seg;
			if (!last)
				out[o++] = '/';
		}
		i = end + 1;
	}
	return o;
}

/* Canonicalise the decoded path dec[0..n) into *p (line_off is left to the caller). */
static void canonical(const uint8_t *dec, size_t n, unsigned int flags, uint8_t *work,
		      struct urlcanon_path *p)
{
	size_t full = normalise(dec, n, work);

	if (flags & URLCANON_NOCASE)
		for (size_t k = 0; k < full; k++)
			if (work[k] >= 'A' && work[k] <= 'Z')
				work[k] = (uint8_t)(work[k] - 'A' + 'a');
	memset(p->path, 0, sizeof(p->path));
	p->full_len = full;
	p->truncated = full > EBPFMON_URL_PATH_MAX;
	p->len = (uint16_t)(p->truncated ? EBPFMON_URL_PATH_MAX : full);
	memcpy(p->path, work, p->len);
}

/*
 * Check flags and allocate the decoding and normalising buffers for an input of len bytes (a
 * decoded path is at most as long as the input, plus the "/" of an empty one). On failure
 * both are NULL or freeable; returns 0, -EINVAL or -ENOMEM.
 */
static int work_bufs(unsigned int flags, size_t len, uint8_t **dec, uint8_t **work)
{
	*dec = *work = NULL;
	if (flags & ~URLCANON_NOCASE)
		return -EINVAL;
	*dec = malloc(len + 1);
	*work = malloc(len + 1);
	return *dec && *work ? 0 : -ENOMEM;
}

int urlcanon_scan(const uint8_t *buf, size_t len, unsigned int flags, urlcanon_cb cb, void *ctx,
		  struct urlcanon_tail *tail)
{
	return urlcanon_scan_segments(buf, len, NULL, 0, flags, cb, ctx, tail);
}

int urlcanon_scan_segments(const uint8_t *buf, size_t len, const size_t *seg_off, size_t n_seg,
			   unsigned int flags, urlcanon_cb cb, void *ctx,
			   struct urlcanon_tail *tail)
{
	size_t next_seg = 0;
	enum { LINE_START, SKIP, METHOD, SPACES } st = LINE_START;
	size_t i = 0, line_off = 0;
	uint8_t *dec, *work;
	int lines = 0, err = 0;

	err = work_bufs(flags, len, &dec, &work);
	if (err)
		goto out;
	while (i < len) {
		uint8_t c = buf[i];
		struct urlcanon_path p;
		struct target t;

		/* a segment starts a line unless a request line runs on into it */
		while (next_seg < n_seg && seg_off[next_seg] < i)
			next_seg++;
		if (next_seg < n_seg && seg_off[next_seg] == i && st == SKIP)
			st = LINE_START;

		switch (st) {
		case LINE_START:
			if (is_method(c)) {
				line_off = i;
				st = METHOD;
			} else if (!is_eol(c)) {
				st = SKIP;
			}
			i++;
			continue;
		case SKIP:
			if (is_eol(c))
				st = LINE_START;
			i++;
			continue;
		case METHOD:
			if (is_method(c))
				st = METHOD; /* of any length, as nginx takes it */
			else if (is_space(c))
				st = SPACES;
			else
				st = is_eol(c) ? LINE_START : SKIP;
			i++;
			continue;
		case SPACES:
			if (is_space(c)) {
				i++;
				continue;
			}
			break;
		}

		/* SPACES, at the first byte of the request target */
		read_target(buf, len, i, false, dec, &t);
		if (t.status == TARGET_INCOMPLETE)
			break;
		st = t.line_end ? LINE_START : SKIP;
		i = t.next;
		if (t.status == TARGET_FAIL)
			continue;
		canonical(dec, t.dec_len, flags, work, &p);
		p.line_off = line_off;
		p.end_off = t.next - 1;
		lines++;
		if (cb) {
			err = cb(&p, ctx);
			if (err < 0)
				goto out;
		}
	}
	if (tail) {
		tail->incomplete = st == METHOD || st == SPACES;
		tail->line_off = tail->incomplete ? line_off : 0;
	}
out:
	free(dec);
	free(work);
	return err < 0 ? err : lines;
}

int urlcanon_target(const uint8_t *target, size_t len, unsigned int flags,
		    struct urlcanon_path *out)
{
	uint8_t *dec, *work;
	struct target t;
	int err = 0;

	err = work_bufs(flags, len, &dec, &work);
	if (err)
		goto out;
	read_target(target, len, 0, true, dec, &t);
	if (t.status != TARGET_COMPLETE) {
		err = -EINVAL;
		goto out;
	}
	canonical(dec, t.dec_len, flags, work, out);
	out->line_off = 0;
	out->end_off = t.next - 1;
out:
	free(dec);
	free(work);
	return err;
}

char *urlcanon_escape(const uint8_t *path, size_t n, bool truncated, char *out, size_t size)
{
	size_t o = 0;

	if (!size)
		return out;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = path[i];
		char e[5];
		size_t k;

		if (c > 0x20 && c < 0x7f && c != '\\') {
			e[0] = (char)c;
			k = 1;
		} else {
			snprintf(e, sizeof(e), "\\x%02x", c);
			k = 4;
		}
		if (o + k >= size)
			break;
		memcpy(out + o, e, k);
		o += k;
	}
	if (truncated && o + 3 < size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
