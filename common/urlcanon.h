/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * URL canonicalisation, the user-space reference of docs/url-matching.md: find the request
 * lines of an HTTP/1.x byte stream and reduce each request target to its canonical path
 * (absolute form cut to its path, %XX decoded once, slashes merged, dot segments resolved,
 * optionally lower-cased), the way nginx routes it.
 *
 * The kernel (bpf/http.h) does the same streaming over TCP segments with a 128-byte buffer;
 * this reference works on whole buffers with unbounded intermediate paths and is written for
 * clarity, so that test/bpf/url_diff.c can hold the kernel to it.
 */
#ifndef EBPFMON_URLCANON_H
#define EBPFMON_URLCANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpfmon_abi.h"

/* Lower-case ASCII A-Z of the canonical path (settings flag EBPFMON_F_URL_NOCASE). */
#define URLCANON_NOCASE 1u

/* One canonical path, as the kernel reports it in struct ebpfmon_ev_url_hit. */
struct urlcanon_path {
	uint8_t path[EBPFMON_URL_PATH_MAX]; /* the first len bytes of the canonical path */
	uint16_t len;	 /* bytes valid in path[], at most EBPFMON_URL_PATH_MAX */
	bool truncated;	 /* the canonical path is longer than path[] */
	size_t full_len; /* length of the whole canonical path, in bytes */
	size_t line_off; /* offset of the request line's first method byte in the buffer */
	size_t end_off;	 /* offset of the byte that completed it: the terminator, the last
			  * digit of a %00, or len - 1 when urlcanon_target() ran to the end */
};

/* How a scanned buffer ends (urlcanon_scan()'s tail argument). */
struct urlcanon_tail {
	bool incomplete; /* the buffer ends inside a request line (method seen, path not ended) */
	size_t line_off; /* when incomplete: offset of that line's first method byte */
};

/* Called for every complete request line in order; a negative return stops the scan. */
typedef int (*urlcanon_cb)(const struct urlcanon_path *p, void *ctx);

/*
 * Scan buf[0..len) from a line start for request lines, as XDP scans one TCP payload (the
 * caller applies EBPFMON_URL_SCAN_MAX and EBPFMON_URL_HITS_MAX, which are per segment). cb
 * may be NULL. tail, when not NULL, says whether the buffer ends inside a request line, which
 * the kernel would complete from the next segment of the flow. flags: URLCANON_NOCASE.
 * Returns the number of complete request lines, -EINVAL for unknown flags, -ENOMEM, or the
 * first negative value cb returned.
 */
int urlcanon_scan(const uint8_t *buf, size_t len, unsigned int flags, urlcanon_cb cb, void *ctx,
		  struct urlcanon_tail *tail);

/*
 * urlcanon_scan() of the payloads of consecutive TCP segments of one flow, concatenated in
 * buf: seg_off[0..n_seg) are the offsets where segments begin, ascending. A segment begins a
 * line, as in XDP, unless a request line (method seen, path not ended) runs on into it.
 */
int urlcanon_scan_segments(const uint8_t *buf, size_t len, const size_t *seg_off, size_t n_seg,
			   unsigned int flags, urlcanon_cb cb, void *ctx,
			   struct urlcanon_tail *tail);

/*
 * Canonicalise one request target (origin form "/p?q" or absolute form "scheme://auth/p"),
 * for the analyzer and the CLI. The path ends where the request line's would (raw SP, HTAB,
 * CR, LF, '?', '#', NUL, or %00) or at the end of target; out->line_off is 0. Returns 0,
 * -EINVAL for unknown flags or a target in neither form ("", "*", "host:80", "http:/x"), or
 * -ENOMEM.
 */
int urlcanon_target(const uint8_t *target, size_t len, unsigned int flags,
		    struct urlcanon_path *out);

/*
 * A canonical path as text for logs, rows and terminals: bytes 0x21..0x7e as they are except
 * '\\', and every other byte (space, controls, a decoded CR or LF, non-ASCII) as \xHH, so
 * that a path can never forge a log line; "..." follows when truncated. Writes at most size
 * bytes with the NUL (4 * n + 4 suffice) and returns out.
 */
char *urlcanon_escape(const uint8_t *path, size_t n, bool truncated, char *out, size_t size);

#endif /* EBPFMON_URLCANON_H */
