/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * HTTP request lines in the ingress hooks (XDP or tc): find every request line of a TCP segment,
 * canonicalise its target the way nginx routes it, and match it against url_rules. docs/url-matching.md is the
 * contract; common/urlcanon.c is the user-space reference, and test/bpf/url_diff.c holds the
 * two to the same answers.
 *
 * The parser is a state machine fed one byte at a time (bpf_loop, so the verifier checks its
 * body once), whose whole state fits in struct http_canon: a segment that ends inside a request
 * line leaves that state in http_flows, keyed by the flow and the sequence number the next
 * segment must carry, and the next segment resumes it.
 *
 * Included by ebpfmon.bpf.c after its maps and helpers (counters, events, allow_nets).
 */
#ifndef EBPFMON_HTTP_H
#define EBPFMON_HTTP_H

#include "parsing.h"

/* v & mask, kept by the compiler even where it can prove the mask idle (the verifier can't). */
static __always_inline __u32 http_mask(__u32 v, __u32 mask)
{
	barrier_var(v);
	return v & mask;
}

/* Where the parser is in a line (struct http_canon.state). */
enum http_state {
	HS_LINE_START = 0, /* start of a line: CR/LF skipped, a method may begin */
	HS_SKIP,	   /* not a request line, or past its target: wait for CR or LF */
	HS_METHOD,
	HS_SPACES, /* SP/HTAB after the method */
	HS_SCHEME, /* absolute form: the scheme */
	HS_COLON,  /* "scheme:" seen, "/" expected */
	HS_SLASH1, /* "scheme:/" seen, "/" expected */
	HS_AUTHORITY,
	HS_PATH,
};

/* Where the path normaliser is in a segment (http_canon.pstate), as nginx's complex URI. */
enum http_pstate {
	PS_USUAL = 0,
	PS_SLASH,  /* the output ends with "/" */
	PS_DOT,	   /* "/." read, the dot not written yet */
	PS_DOTDOT, /* "/.." read, the dots not written yet */
};

/*
 * The parser's state: the canonical path so far (as a url_rules key, so that it is looked up
 * as it stands) and where the parser is. Kept in http_flows between segments.
 */
struct http_canon {
	struct ebpfmon_url_key key; /* key.path: the first EBPFMON_URL_PATH_MAX bytes */
	__u16 vlen;		    /* canonical length, saturated at EBPFMON_URL_PATH_MAX + 1 */
	__u16 deep;  /* "/" of the canonical path at offsets >= EBPFMON_URL_PATH_MAX */
	__u8 state;  /* enum http_state */
	__u8 pstate; /* enum http_pstate */
	__u8 pct;    /* 0; 1: "%" read; 2: "%" and one hex digit read */
	__u8 pct_hi; /* the hex digit read (as sent) */
	__u8 split;  /* the line began in an earlier segment */
	__u8 pad[2];
	__u32 line_seq; /* TCP sequence number of the line's first byte */
	/* Message framing (the stream guard only, http_meta.framing): where a request's body
	 * ends, a new request line may start, line break or not (RFC 9112 §6.3). */
	__u8 hdr;     /* 1: in the header block of a request line */
	__u8 hname;   /* header-name match at this line: enum http_hname */
	__u8 hval;    /* 1: in a Content-Length value, 2: past its digits */
	__u8 eol;     /* 1: the last byte other than CR was LF: an LF now ends the block */
	__u8 te;      /* the header block has Transfer-Encoding: its body is not counted */
	__u8 blocked; /* the stream guard dropped a chunk of this connection: drop the rest */
	/* the connection sent a body framed otherwise than by Content-Length (chunked): from
	 * then on its lines are all read, and no Content-Length is honoured on it again */
	__u8 noframe;
	__u8 ck;	 /* in a chunked body: enum http_chunk (0: not) */
	__u64 clen;	 /* Content-Length of the header block (saturated) */
	__u64 body_left; /* bytes of the body still to come */
};

/* http_canon.hname: the header name matched so far at the start of a header line. */
enum http_hname {
	HN_NONE = 0,	    /* not a header we follow (or past its name) */
	HN_START = 1,	    /* at the first byte of a header line */
	HN_CL = 2,	    /* "content-length": HN_CL + bytes matched */
	HN_TE = HN_CL + 15, /* "transfer-encoding": HN_TE + bytes matched */
	HN_END = HN_TE + 18,
};
/* http_canon.ck: where the guard is in a chunked body (RFC 9112 §7.1). */
enum http_chunk {
	CK_NONE = 0,
	CK_SIZE_FIRST,	  /* the first hex digit of a chunk size */
	CK_SIZE,	  /* more hex digits */
	CK_EXT,		  /* a chunk extension (or whitespace after the size): up to LF */
	CK_SIZE_LF,	  /* CR after the size: LF */
	CK_DATA_CR,	  /* the chunk's data read (body_left): CR or LF */
	CK_DATA_LF,	  /* CR after the data: LF */
	CK_TRAILER_START, /* the start of a trailer line; an empty one ends the message */
	CK_TRAILER_LINE,  /* inside a trailer line: up to LF */
};
#define HTTP_CHUNK_MAX (1ull << 58) /* larger sizes nginx refuses (400): not followed */
#define HTTP_CL_NAME   "content-length"
#define HTTP_TE_NAME   "transfer-encoding"
#define HTTP_CLEN_MAX  (1ull << 62)

/* http_flows key: the flow (addresses as in ebpfmon_addr) and the next segment's seq. */
struct http_flow_key {
	struct ebpfmon_addr src;
	struct ebpfmon_addr dst;
	__u16 sport; /* host order */
	__u16 dport;
	__u32 seq; /* sequence number of the segment that resumes the line */
};

/* A rule hit, kept until the segment is scanned (verification is once per segment). */
struct http_hit {
	__u32 rule_id;
	__u32 action;
	__u32 seq;
	__u16 path_len;
	__u16 flags;
	__u8 path[EBPFMON_URL_PATH_MAX];
};

struct http_hits {
	struct http_hit h[EBPFMON_URL_HITS_MAX];
};

/* What the scan of one segment knows besides the parser's state. */
struct http_meta {
	__u32 seq;   /* sequence number of the payload's first byte */
	__u32 lines; /* complete request lines in this segment */
	__u32 nhits; /* hits kept in http_hits (at most EBPFMON_URL_HITS_MAX) */
	__u32 nocase;
	__u32 over;	 /* hits past those */
	__u32 over_drop; /* one of them was a drop rule's */
	__u32 framing;	 /* follow Content-Length framing (http_canon.hdr...): stream guard */
};

/* Per-CPU scratch: the payload, the parser and the hits of one segment. */
struct http_scratch {
	struct http_canon c;
	struct http_meta m;
	struct http_hits hits;
	__u8 buf[EBPFMON_URL_SCAN_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct http_flow_key);
	__type(value, struct http_canon);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} http_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_scratch);
} http_scratch SEC(".maps");

/* Set once a partial line was kept in http_flows: until then no segment needs to look. */
__u32 http_flows_used;

/* The bpf_loop context of one segment's scan. */
struct http_scan_ctx {
	struct http_scratch *s;
	__u32 len; /* payload bytes in s->buf */
};

/* What the parser works on: its state, the segment's facts, the hits so far. */
struct http_parse {
	struct http_canon *c;
	struct http_meta *m;
	struct http_hits *hits;
};

static __always_inline bool http_is_method(__u8 ch)
{
	return (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-';
}

static __always_inline bool http_is_alpha(__u8 ch)
{
	return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
}

static __always_inline int http_hex(__u8 ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* A raw byte that ends the path. */
static __always_inline bool http_path_end(__u8 ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '?' || ch == '#' ||
	       ch == '\0';
}

/* Not (or no longer) a request line: wait for the next line. */
static __always_inline void http_fail(struct http_canon *c, __u8 ch)
{
	c->state = ch == '\r' || ch == '\n' ? HS_LINE_START : HS_SKIP;
}

/* Append one byte to the canonical path. */
static __always_inline void http_emit(struct http_canon *c, __u8 ch, __u8 nocase)
{
	__u32 n = c->vlen;

	if (nocase && ch >= 'A' && ch <= 'Z')
		ch |= 0x20;
	if (n < EBPFMON_URL_PATH_MAX)
		c->key.path[http_mask(n, EBPFMON_URL_PATH_MAX - 1)] = ch;
	else if (ch == '/')
		c->deep++;
	if (n <= EBPFMON_URL_PATH_MAX)
		c->vlen = n + 1;
}

struct http_pop_ctx {
	struct http_canon *c;
	__u32 from; /* scan backwards from key.path[from - 1] */
	__u32 to;   /* out: the length that keeps the "/" found (1 at the root) */
};

/* bpf_loop callback: clear key.path[from - 1 - i] unless it is the "/" sought. */
static long http_pop_cb(__u32 i, void *vctx)
{
	struct http_pop_ctx *x = vctx;
	__u32 j;

	if (i >= x->from || i >= EBPFMON_URL_PATH_MAX)
		return 1;
	j = http_mask(x->from - 1 - i, EBPFMON_URL_PATH_MAX - 1);
	if (x->c->key.path[j] == '/') {
		x->to = j + 1;
		return 1;
	}
	x->c->key.path[j] = 0;
	return 0;
}

/*
 * "/.." read after a path that ends with "/": remove that "/" and the segment before it,
 * keeping the "/" that starts it (RFC 3986 §5.2.4, clamped at the root).
 */
static __always_inline void http_pop(struct http_canon *c)
{
	struct http_pop_ctx x = {.c = c, .to = 1};

	if (c->deep) {
		/* the last "/" lies past the stored bytes */
		c->deep--;
		if (c->deep)
			return; /* so does the one before it: still longer than stored */
		x.from = EBPFMON_URL_PATH_MAX;
	} else {
		if (c->vlen <= 1)
			return; /* "/" alone: the root stays */
		x.from = c->vlen - 1;
		if (x.from > EBPFMON_URL_PATH_MAX)
			x.from = EBPFMON_URL_PATH_MAX;
		/* the last "/" itself */
		c->key.path[http_mask(x.from, EBPFMON_URL_PATH_MAX - 1)] = 0;
	}
	bpf_loop(EBPFMON_URL_PATH_MAX, http_pop_cb, &x, 0);
	if (x.to < 1)
		x.to = 1;
	c->vlen = x.to;
}

/* An ordinary path byte: the dots held back were a segment's start, not a dot segment. */
static __always_inline void http_path_char(struct http_canon *c, __u8 ch, __u8 nocase)
{
	if (c->pstate == PS_DOT) {
		http_emit(c, '.', nocase);
	} else if (c->pstate == PS_DOTDOT) {
		http_emit(c, '.', nocase);
		http_emit(c, '.', nocase);
	}
	http_emit(c, ch, nocase);
	c->pstate = PS_USUAL;
}

/* A path byte as nginx reads it, raw or decoded: "/" and "." shape segments. */
static __always_inline void http_path_sym(struct http_canon *c, __u8 ch, __u8 nocase)
{
	if (ch == '/') {
		switch (c->pstate) {
		case PS_USUAL:
			http_emit(c, '/', nocase);
			break;
		case PS_DOTDOT:
			http_pop(c);
			break;
		default: /* "//" merged; "/./" is "/" */
			break;
		}
		c->pstate = PS_SLASH;
		return;
	}
	if (ch == '.') {
		if (c->pstate == PS_SLASH) {
			c->pstate = PS_DOT;
			return;
		}
		if (c->pstate == PS_DOT) {
			c->pstate = PS_DOTDOT;
			return;
		}
	}
	http_path_char(c, ch, nocase);
}

/* The path starts: an empty canonical path, then its first "/". */
static __always_inline void http_path_begin(struct http_canon *c, __u8 nocase)
{
	__builtin_memset(c->key.path, 0, sizeof(c->key.path));
	c->vlen = 0;
	c->deep = 0;
	c->pct = 0;
	c->pstate = PS_USUAL;
	http_path_sym(c, '/', nocase);
	c->state = HS_PATH;
}

/* A complete path: finish it the way nginx ends a URI, then look it up. */
static __always_inline void http_path_done(struct http_parse *x, struct http_canon *c)
{
	struct ebpfmon_url_rule *rule;
	struct http_hit *h;
	__u32 n;

	if (c->pct) {
		/* an escape cut short by the end of the path: literal bytes */
		http_path_char(c, '%', x->m->nocase);
		if (c->pct == 2)
			http_path_char(c, c->pct_hi, x->m->nocase);
		c->pct = 0;
	}
	if (c->pstate == PS_DOTDOT)
		http_pop(c); /* trailing "/..": the parent, with its "/" */
	/* trailing "/.": the dot was never written */
	c->pstate = PS_USUAL;

	x->m->lines++;
	/* not inside a body, nor inside a header block (where nginx refuses such a line), nor
	 * after a body whose end the guard does not follow */
	if (x->m->framing && !c->body_left && !c->hdr && !c->noframe) {
		/* its header block follows the line's end (a line inside a body starts none) */
		c->hdr = 1;
		c->hname = HN_NONE;
		c->hval = 0;
		c->eol = 0;
		c->te = 0;
		c->clen = 0;
	}
	n = c->vlen > EBPFMON_URL_PATH_MAX ? EBPFMON_URL_PATH_MAX : c->vlen;
	c->key.prefixlen = n * 8;
	rule = bpf_map_lookup_elem(&url_rules, &c->key);
	if (!rule)
		return;
	if (x->m->nhits >= EBPFMON_URL_HITS_MAX) {
		/* not reported, but a drop rule still drops the segment */
		x->m->over++;
		if (rule->action == EBPFMON_URL_DROP)
			x->m->over_drop = 1;
		return;
	}
	h = &x->hits->h[http_mask(x->m->nhits, EBPFMON_URL_HITS_MAX - 1)];
	x->m->nhits++;
	h->rule_id = rule->id;
	h->action = rule->action;
	h->seq = c->line_seq;
	h->path_len = n;
	h->flags = (c->vlen > EBPFMON_URL_PATH_MAX ? EBPFMON_URL_HIT_TRUNCATED : 0) |
		   (c->split ? EBPFMON_URL_HIT_SPLIT : 0);
	__builtin_memcpy(h->path, c->key.path, sizeof(h->path));
}

/* The path ends at raw byte ch (or at a decoded NUL: ch 0). */
static __always_inline void http_path_end_at(struct http_parse *x, struct http_canon *c, __u8 ch)
{
	http_path_done(x, c);
	http_fail(c, ch);
}

/* A byte of the path as sent. */
static __always_inline void http_path_byte(struct http_parse *x, struct http_canon *c, __u8 ch)
{
	int v;

	if (c->pct == 1) {
		if (http_hex(ch) >= 0) {
			c->pct_hi = ch;
			c->pct = 2;
			return;
		}
		c->pct = 0;
		http_path_char(c, '%', x->m->nocase);
	} else if (c->pct == 2) {
		v = http_hex(ch);
		c->pct = 0;
		if (v >= 0) {
			__u8 d = (__u8)(http_hex(c->pct_hi) << 4 | v);

			if (d == 0)
				http_path_end_at(x, c, 0);
			else if (d == '%' || d == '?' || d == '#')
				http_path_char(c, d, x->m->nocase);
			else
				http_path_sym(c, d, x->m->nocase);
			return;
		}
		http_path_char(c, '%', x->m->nocase);
		http_path_char(c, c->pct_hi, x->m->nocase);
	}
	if (http_path_end(ch)) {
		http_path_end_at(x, c, ch);
		return;
	}
	if (ch == '%') {
		c->pct = 1;
		return;
	}
	http_path_sym(c, ch, x->m->nocase);
}

/* The name byte at position pos of a header name we follow (lower case), or 0 past its end. */
static __always_inline __u8 http_hname_at(bool te, __u32 pos)
{
	const char cl[] = HTTP_CL_NAME, tn[] = HTTP_TE_NAME;

	if (te)
		return pos < sizeof(tn) - 1 ? tn[pos & 31] : 0;
	return pos < sizeof(cl) - 1 ? cl[pos & 15] : 0;
}

/*
 * Byte ch of a header block (c->hdr): follow Content-Length and Transfer-Encoding (names in
 * any case, RFC 9110 §5.1; the value after optional whitespace, RFC 9112 §5), and the empty
 * line that ends the block, after which the body is counted. A header that nginx would refuse
 * (a duplicate, a bad value) makes it answer 400 and close: what follows does not matter.
 */
static __always_inline void http_frame_header(struct http_canon *c, __u8 ch)
{
	__u8 l = ch | 0x20;

	if (ch == '\n') {
		if (c->eol) {
			/* the empty line: the body follows (RFC 9112 §6.3): chunked when there is
			 * a Transfer-Encoding (nginx refuses any other, and a Content-Length with
			 * it), else Content-Length bytes */
			c->body_left = c->te ? 0 : c->clen;
			if (c->te) {
				c->ck = CK_SIZE_FIRST;
				c->clen = 0;
			}
			c->hdr = 0;
			c->hname = HN_NONE;
			c->hval = 0;
			return;
		}
		c->eol = 1;
		c->hname = HN_START;
		c->hval = 0;
		return;
	}
	if (ch == '\r')
		return;
	c->eol = 0;
	if (c->hval == 1) {
		if (ch >= '0' && ch <= '9') {
			c->clen = c->clen * 10 + (ch - '0');
			if (c->clen > HTTP_CLEN_MAX)
				c->clen = HTTP_CLEN_MAX;
		} else if (ch != ' ' && ch != '\t') {
			c->hval = 2;
		}
		return;
	}
	if (c->hname == HN_START) {
		c->hname = l == 'c' ? HN_CL + 1 : l == 't' ? HN_TE + 1 : HN_NONE;
		return;
	}
	if (c->hname >= HN_CL && c->hname < HN_END) {
		bool te = c->hname >= HN_TE;
		__u32 pos = c->hname - (te ? HN_TE : HN_CL);
		__u8 want = http_hname_at(te, pos);

		if (want && l == want) {
			c->hname++;
		} else if (!want && ch == ':') {
			c->hname = HN_NONE;
			if (te) {
				c->te = 1;
			} else {
				c->clen = 0;
				c->hval = 1;
			}
		} else {
			c->hname = HN_NONE;
		}
	}
}

/* One byte ch at offset i, for the request-line machine. */
static __always_inline int http_line_step(struct http_parse *x, struct http_canon *c,
					  struct http_meta *m, __u32 ch, __u32 i)
{
	switch (c->state) {
	case HS_LINE_START:
		if (ch == '\r' || ch == '\n')
			return 0;
		if (http_is_method(ch)) {
			c->state = HS_METHOD;
			c->split = 0;
			c->line_seq = m->seq + i;
		} else {
			c->state = HS_SKIP;
		}
		return 0;
	case HS_SKIP:
		if (ch == '\r' || ch == '\n')
			c->state = HS_LINE_START;
		return 0;
	case HS_METHOD:
		/* any length: nginx takes a method of any length, and a proxy passes it on */
		if (http_is_method(ch))
			return 0;
		if (ch == ' ' || ch == '\t')
			c->state = HS_SPACES;
		else
			http_fail(c, ch);
		return 0;
	case HS_SPACES:
		if (ch == ' ' || ch == '\t')
			return 0;
		if (ch == '/')
			http_path_begin(c, x->m->nocase);
		else if (http_is_alpha(ch))
			c->state = HS_SCHEME;
		else
			http_fail(c, ch);
		return 0;
	case HS_SCHEME:
		if (http_is_alpha(ch) || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' ||
		    ch == '.')
			return 0;
		if (ch == ':')
			c->state = HS_COLON;
		else
			http_fail(c, ch);
		return 0;
	case HS_COLON:
	case HS_SLASH1:
		if (ch == '/')
			c->state = c->state == HS_COLON ? HS_SLASH1 : HS_AUTHORITY;
		else
			http_fail(c, ch);
		return 0;
	case HS_AUTHORITY:
		if (ch == '/') {
			http_path_begin(c, x->m->nocase);
		} else if (http_path_end(ch)) {
			/* no path after the authority: "/" */
			http_path_begin(c, x->m->nocase);
			http_path_end_at(x, c, ch);
		}
		return 0;
	case HS_PATH:
		http_path_byte(x, c, ch);
		return 0;
	}
	return 0;
}

/* A chunk's size line is over: its data follows, or the trailer after the last chunk. */
static __always_inline void http_chunk_size_done(struct http_canon *c)
{
	if (c->clen) {
		c->body_left = c->clen;
		c->ck = CK_DATA_CR;
	} else {
		c->ck = CK_TRAILER_START;
	}
}

/*
 * Byte ch of a chunked body outside a chunk's data (RFC 9112 §7.1, as nginx's
 * ngx_http_parse_chunked reads it): sizes, extensions, the line break after the data, the
 * trailer. Anything nginx would refuse (answering 400 and closing) gives the framing up: the
 * connection is read line by line from there (noframe), as if no framing had been followed.
 */
static __always_inline void http_frame_chunk(struct http_canon *c, __u8 ch)
{
	int v = http_hex(ch);

	switch (c->ck) {
	case CK_SIZE_FIRST:
	case CK_SIZE:
		if (v >= 0) {
			c->clen = c->clen * 16 + v;
			c->ck = CK_SIZE;
			if (c->clen <= HTTP_CHUNK_MAX)
				return;
		} else if (c->ck == CK_SIZE && (ch == ';' || ch == ' ' || ch == '\t')) {
			c->ck = CK_EXT;
			return;
		} else if (c->ck == CK_SIZE && ch == '\r') {
			c->ck = CK_SIZE_LF;
			return;
		} else if (c->ck == CK_SIZE && ch == '\n') {
			http_chunk_size_done(c);
			return;
		}
		break;
	case CK_EXT:
		if (ch == '\n')
			http_chunk_size_done(c);
		return;
	case CK_SIZE_LF:
		if (ch != '\n')
			break;
		http_chunk_size_done(c);
		return;
	case CK_DATA_CR:
		if (ch == '\r') {
			c->ck = CK_DATA_LF;
			return;
		}
		if (ch != '\n')
			break;
		c->ck = CK_SIZE_FIRST;
		c->clen = 0;
		return;
	case CK_DATA_LF:
		if (ch != '\n')
			break;
		c->ck = CK_SIZE_FIRST;
		c->clen = 0;
		return;
	case CK_TRAILER_START:
		if (ch == '\r')
			return;
		if (ch == '\n') {
			/* the message is over: a request may start */
			c->ck = CK_NONE;
			c->state = HS_LINE_START;
			return;
		}
		c->ck = CK_TRAILER_LINE;
		return;
	case CK_TRAILER_LINE:
		if (ch == '\n')
			c->ck = CK_TRAILER_START;
		return;
	}
	/* not chunked framing as nginx reads it */
	c->ck = CK_NONE;
	c->noframe = 1;
	c->state = ch == '\r' || ch == '\n' ? HS_LINE_START : HS_SKIP;
}

/*
 * One byte ch of the payload at offset i. A global function: the verifier checks it once, on
 * its own, instead of once per path through the scan loop that calls it.
 */
__noinline int http_step(struct http_canon *c, struct http_meta *m, struct http_hits *hits,
			 __u32 ch, __u32 i)
{
	struct http_parse px = {.c = c, .m = m, .hits = hits}, *x = &px;

	if (!c || !m || !hits)
		return 0;
	ch &= 0xff;
	if (m->framing) {
		if (c->body_left) {
			/* a body (or a chunk's data) is not request lines: the server reads it as
			 * data (RFC 9112 §6.3); after a Content-Length body a request starts */
			if (--c->body_left == 0) {
				if (c->ck) {
					c->ck = CK_DATA_CR;
				} else {
					c->state = HS_LINE_START;
					c->hdr = 0;
				}
			}
			return 0;
		}
		if (c->ck) {
			http_frame_chunk(c, ch);
			return 0;
		}
		if (c->hdr)
			http_frame_header(c, ch);
	}
	http_line_step(x, c, m, ch, i);
	return 0;
}

/* Whether any byte of the 8 in w is CR or LF (the zero-byte test of "Bit Twiddling Hacks"). */
static __always_inline bool http_has_eol(__u64 w)
{
	const __u64 ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	__u64 cr = w ^ (ones * '\r'), lf = w ^ (ones * '\n');

	return ((cr - ones) & ~cr & highs) | ((lf - ones) & ~lf & highs);
}

/*
 * bpf_loop callback: bytes 8i..8i+7 of the payload. Outside a request line only a CR or LF
 * matters, so a word without one is passed over whole: a request body costs a word test per
 * 8 bytes, not a parser step per byte.
 */
static long http_scan_cb(__u32 i, void *vctx)
{
	struct http_scan_ctx *x = vctx;
	struct http_scratch *s = x->s;
	__u32 base = i * 8;

	if (base >= x->len)
		return 1;
	if (s->m.framing && s->c.body_left > 8 && base + 8 <= x->len) {
		s->c.body_left -= 8; /* a body: passed over a word at a time, unread */
		return 0;
	}
	if (s->c.state == HS_SKIP && base + 8 <= x->len &&
	    (!s->m.framing || (!s->c.hdr && !s->c.body_left && !s->c.ck)) &&
	    !http_has_eol(*(__u64 *)&s->buf[http_mask(base, EBPFMON_URL_SCAN_CHUNK - 8)]))
		return 0;
#pragma unroll
	for (__u32 k = 0; k < 8; k++) {
		if (base + k >= x->len)
			return 1;
		http_step(&s->c, &s->m, &s->hits,
			  s->buf[http_mask(base + k, EBPFMON_URL_SCAN_CHUNK - 1)], base + k);
	}
	return 0;
}

/* A state that a segment can end in the middle of a request line in. */
static __always_inline bool http_in_line(const struct http_canon *c)
{
	return c->state != HS_LINE_START && c->state != HS_SKIP;
}

#define SK_USER_DATA_PSOCK_FLAG 4UL /* SK_USER_DATA_PSOCK */

/*
 * This host's initial sequence number of an established connection: SND.UNA less the bytes the
 * peer has acknowledged (tcp_sock.bytes_acked, RFC 4898 tcpEStatsAppHCThruOctetsAcked) less
 * the SYN. The same for every segment of one connection, random from one to the next.
 */
static __always_inline __u32 http_conn_isn(const struct tcp_sock *tp)
{
	return tp->snd_una - (__u32)tp->bytes_acked - 1;
}

/*
 * Whether the segment of p belongs to a connection of this host, as the kernel would take it:
 * an established socket whose receive window holds it (from rcv_nxt on; RFC 9293 §3.10.7.4)
 * and whose acknowledgment is acceptable (RFC 5961 §5.2: SND.UNA - MAX.SND.WND <= SEG.ACK
 * <= SND.NXT), a request socket whose handshake it completes, or a listener whose SYN cookie
 * it carries. A blind spoofer must guess both numbers. in_order: only the segment that
 * starts at rcv_nxt (what the kernel appends next) counts. *isn: this host's initial sequence
 * number of the connection (http_conn_isn()). any_seq: any segment of an established socket
 * under the stream guard counts (what TCP refuses of it never reaches the guard), and of an
 * established socket that is not, none.
 */
static __always_inline bool http_verified(struct pkt_ctx pc, const struct pkt_info *p,
					  const struct ebpfmon_addr *dst, bool in_order, __u32 *isn,
					  bool any_seq)
{
	void *data = pkt_data_fresh(pc);
	void *data_end = pkt_data_end_fresh(pc);
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 tlen;
	bool ok = false;

	if (p->v6) {
		__builtin_memcpy(t.ipv6.saddr, p->src.a, 16);
		__builtin_memcpy(t.ipv6.daddr, dst->a, 16);
		t.ipv6.sport = bpf_htons(p->sport);
		t.ipv6.dport = bpf_htons(p->dport);
		tlen = sizeof(t.ipv6);
	} else {
		__builtin_memcpy(&t.ipv4.saddr, &p->src.a[12], 4);
		__builtin_memcpy(&t.ipv4.daddr, &dst->a[12], 4);
		t.ipv4.sport = bpf_htons(p->sport);
		t.ipv4.dport = bpf_htons(p->dport);
		tlen = sizeof(t.ipv4);
	}
	sk = bpf_skc_lookup_tcp(pc.ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return false;
	if (sk->state == BPF_TCP_ESTABLISHED || sk->state == BPF_TCP_FIN_WAIT1 ||
	    sk->state == BPF_TCP_FIN_WAIT2) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

		if (tp) {
			__u32 nxt = tp->rcv_nxt, wnd = tp->rcv_wnd, una = tp->snd_una;
			__u32 snxt = tp->snd_nxt, maxw = tp->max_window;

			if (any_seq)
				/* a socket in a sockmap carries its psock in sk_user_data, flagged
				 * SK_USER_DATA_PSOCK (include/net/sock.h) */
				ok = (unsigned long)tp->inet_conn.icsk_inet.sk.sk_user_data &
				     SK_USER_DATA_PSOCK_FLAG;
			else
				ok = (in_order ? p->seq == nxt : p->seq - nxt <= wnd) &&
				     p->ack - (una - maxw) <= snxt - (una - maxw);
			*isn = http_conn_isn(tp);
		}
	} else if (sk->state == BPF_TCP_NEW_SYN_RECV) {
		struct tcp_request_sock *req = bpf_skc_to_tcp_request_sock(sk);

		if (req) {
			ok = p->seq == req->rcv_isn + 1 && p->ack == req->snt_isn + 1;
			*isn = req->snt_isn;
		}
	} else if (sk->state == BPF_TCP_LISTEN) {
		__u32 l3 = p->l3_off & 0xff, l4 = p->l4_off & 0x3ff;
		void *iph = data + l3, *th = data + l4;

		if (th + sizeof(struct tcphdr) <= data_end &&
		    iph + sizeof(struct ipv6hdr) <= data_end)
			ok = bpf_tcp_check_syncookie(
				     sk, iph, p->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr),
				     th, sizeof(struct tcphdr)) == 0;
		*isn = p->ack - 1; /* the cookie was our ISN */
	}
	bpf_sk_release(sk);
	return ok;
}

struct http_emit_ctx {
	const struct pkt_info *p;
	struct http_scratch *s;
	struct ebpfmon_counters *cnt;
	__u64 *hits; /* the counter of hits reported: url_hits, stream_url_hits */
	__u32 isn;   /* the connection's initial sequence number on this host's side */
	__u16 flags; /* added to every hit's flags (EBPFMON_URL_HIT_STREAM) */
	__u32 nhits;
	__u32 drop_rule; /* flags: dry run (bit 0), allowlisted (bit 1) */
	__u64 now;
	bool drop;
};

/* bpf_loop callback: report hit i of the segment, and whether it drops. */
static long http_emit_cb(__u32 i, void *vctx)
{
	struct http_emit_ctx *x = vctx;
	struct http_hit *h;
	struct ebpfmon_ev_url_hit *ev;
	__u32 action;
	__u16 flags;

	if (i >= x->nhits)
		return 1;
	h = &x->s->hits.h[http_mask(i, EBPFMON_URL_HITS_MAX - 1)];
	action = h->action;
	flags = h->flags | x->flags;
	(*x->hits)++;
	if (action == EBPFMON_URL_DROP && x->drop_rule) {
		if (x->drop_rule & 1) {
			flags |= EBPFMON_URL_HIT_DRY_RUN;
			x->cnt->rx_would_drop++;
		}
		action = EBPFMON_URL_REPORT;
	}
	if (action == EBPFMON_URL_DROP)
		x->drop = true;
	ev = event_reserve(x->cnt, EBPFMON_EV_URL_HIT, sizeof(*ev), x->now);
	if (!ev)
		return 0;
	ev->addr = x->p->src;
	ev->rule_id = h->rule_id;
	ev->action = action;
	ev->dport = x->p->dport;
	ev->sport = x->p->sport;
	ev->seq = h->seq;
	ev->path_len = h->path_len;
	ev->flags = flags;
	ev->conn_isn = x->isn;
	__builtin_memcpy(ev->path, h->path, sizeof(ev->path));
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* Whether one of the first nhits hits kept in s is a drop rule's. */
static __always_inline bool http_hits_drop(const struct http_scratch *s, __u32 nhits)
{
	bool drop = false;

	for (__u32 i = 0; i < EBPFMON_URL_HITS_MAX && i < nhits; i++)
		drop |= s->hits.h[i].action == EBPFMON_URL_DROP;
	return drop;
}

/*
 * Match every request line of one TCP segment (payload at p->payload_off, read through
 * pkt_load(): a socket buffer's payload may lie in its frags) against url_rules.
 * Returns XDP_DROP when a drop rule hit (and the source may be dropped), or when the segment
 * was read in part and ends inside a request line; XDP_PASS otherwise. Hits past
 * EBPFMON_URL_HITS_MAX are counted, not reported; hits of a segment that belongs to no
 * connection of this host are counted (url_unverified), never reported.
 */
static __always_inline int http_match(struct pkt_ctx pc, const struct pkt_info *p,
				      const struct ebpfmon_settings *set,
				      struct ebpfmon_counters *cnt, __u64 now)
{
	__u32 plen = pkt_len(pc), zero = 0, len;
	struct http_scan_ctx x = {};
	struct http_flow_key fk;
	struct http_canon *prev;
	struct http_scratch *s;
	bool dry = set->flags & EBPFMON_F_DRY_RUN, cut = false, partial = false;
	__u32 isn = 0;

	if (p->payload_off >= plen)
		return XDP_PASS;
	s = bpf_map_lookup_elem(&http_scratch, &zero);
	if (!s)
		return XDP_PASS;
	len = plen - p->payload_off;
	if (len > EBPFMON_URL_SCAN_MAX) {
		cnt->url_scan_cut++;
		len = EBPFMON_URL_SCAN_MAX;
		cut = true;
	}
	if (len < 1)
		return XDP_PASS;

	__builtin_memset(&fk, 0, sizeof(fk));
	fk.src = p->src;
	if (pkt_dst(pc, p, &fk.dst))
		return XDP_PASS;
	fk.sport = p->sport;
	fk.dport = p->dport;
	fk.seq = p->seq;
	if (stream_guard_on && url_verify && !(p->tcp_flags & 0x02) &&
	    http_verified(pc, p, &fk.dst, false, &isn, true)) {
		/* a connection of this host: the stream guard reads what TCP makes of it (a SYN's
		 * data, TCP Fast Open, may not pass through the guard: read here) */
		cnt->url_to_stream++;
		return XDP_PASS;
	}
	prev = http_flows_used ? bpf_map_lookup_elem(&http_flows, &fk) : NULL;
	s->m.lines = 0;
	s->m.nhits = 0;
	s->m.over = 0;
	s->m.over_drop = 0;
	s->m.nocase = !!(set->flags & EBPFMON_F_URL_NOCASE);
	s->m.framing = 0;
	x.s = s;
	if (prev) {
		/* this segment resumes a request line; the entry stays for a retransmission */
		__builtin_memcpy(&s->c, prev, sizeof(s->c));
		s->c.split = 1;
		cnt->url_split++;
	} else {
		s->c.state = HS_LINE_START;
	}
	for (__u32 off = 0; off < len && off < EBPFMON_URL_SCAN_MAX;
	     off += EBPFMON_URL_SCAN_CHUNK) {
		__u32 n = len - off;

		if (n > EBPFMON_URL_SCAN_CHUNK)
			n = EBPFMON_URL_SCAN_CHUNK;
		if (n < 1 || pkt_load(pc, p->payload_off + off, s->buf, n))
			return XDP_PASS;
		s->m.seq = p->seq + off; /* the chunk's offsets count from here */
		x.len = n;
		bpf_loop(EBPFMON_URL_SCAN_CHUNK / 8, http_scan_cb, &x, 0);
	}

	fk.seq = p->seq + len;
	if (http_in_line(&s->c)) {
		if (cut) {
			partial = true; /* the rest of the line was not read: fail closed */
		} else if (!url_verify || http_verified(pc, p, &fk.dst, !prev, &isn, false)) {
			/*
			 * A line begins where the kernel appends next (rcv_nxt); a segment that
			 * resumes it carries it on from wherever it is in the window, since the
			 * segments before it may still be on their way up (the same NAPI poll,
			 * the socket's backlog) and rcv_nxt not past them yet.
			 */
			if (bpf_map_update_elem(&http_flows, &fk, &s->c, BPF_ANY))
				cnt->http_flows_full++;
			else
				http_flows_used = 1;
		}
	} else if (http_flows_used) {
		/* what a discarded segment (a bad checksum, a duplicate) left there is stale */
		bpf_map_delete_elem(&http_flows, &fk);
	}
	cnt->url_lines += s->m.lines;
	cnt->url_hits_over += s->m.over;

	if (s->m.nhits) {
		struct http_emit_ctx e = {
			.p = p,
			.s = s,
			.cnt = cnt,
			.hits = &cnt->url_hits,
			.nhits = s->m.nhits,
		};
		bool verified = !url_verify || http_verified(pc, p, &fk.dst, false, &isn, false);
		/* may a drop rule drop this segment: a real connection's allowlisted client no */
		bool may_drop = !verified || !is_allowed(&p->src);

		if (verified) {
			e.isn = isn;
			e.drop_rule = (dry ? 1 : 0) | (may_drop ? 0 : 2);
			e.now = now ? now : bpf_ktime_get_boot_ns();
			bpf_loop(EBPFMON_URL_HITS_MAX, http_emit_cb, &e, 0);
		} else {
			/* spoofed evidence bans nobody; a drop rule still drops it */
			cnt->url_unverified += e.nhits;
			e.drop |= http_hits_drop(s, e.nhits);
		}
		/* a drop rule's hit past those reported drops as a reported one would */
		e.drop |= s->m.over_drop && may_drop;
		if (e.drop && dry) {
			cnt->rx_would_drop++;
			e.drop = false;
		}
		if (e.drop) {
			cnt->rx_drop_url++;
			return XDP_DROP;
		}
	}
	return partial ? drop_unless_dry(set, cnt, &cnt->url_partial) : XDP_PASS;
}

#endif
