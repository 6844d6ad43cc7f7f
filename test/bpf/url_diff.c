// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * url_diff: the differential test of the URL canonicalisation. Generated and mutated HTTP
 * payloads go through xdp_ingress (the real object, BPF_PROG_TEST_RUN) and through the
 * user-space reference (common/urlcanon.c); both must give the same URL hits (rule id,
 * action, canonical path, TRUNCATED flag; TCP seq, sport and SPLIT flag of each line) and
 * the same verdict.
 *
 * url_rules holds "/" as a REPORT rule, so that every request line the kernel finds makes one
 * event carrying its canonical path, and a few longer DROP rules that win by longest prefix.
 * Some payloads are sent as 2 to 4 segments of one flow (seq advancing by the payload sent):
 * the kernel must then report the hits the reference finds on the concatenation, and give
 * each segment the verdict of the lines that complete in it (every line is matched; at most
 * EBPFMON_URL_HITS_MAX hits are reported, the rest only decide the verdict). After a dropped
 * segment the rest is not sent.
 *
 *	url_diff [--count N] [--seed S] [--nocase] [--plain] [--no-seq] [--force] [--verbose]
 *
 * Prints "url_diff: N payloads, M request lines, D disagreements"; exits 0 only when D == 0,
 * 1 otherwise (after 10 disagreements at the latest), 77 when it cannot run (no root/BPF,
 * unless EBPFMON_REQUIRE_BPF=1).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_test_env.h"
#include "pkt.h"
#include "urlcanon.h"
#include "xdp_harness.h"

#define PROG "url_diff"

#define PAYLOAD_MAX   1399 /* bytes of TCP payload: one frame under a 1500-byte MTU */
#define HITS_MAX      64   /* hits kept per payload; more are counted */
#define SEGMENTS_MAX  4
#define DISAGREE_STOP 10
#define HTTP_PORT     80

static struct {
	unsigned long count;
	uint64_t seed;
	bool nocase_only;
	bool plain;
	bool no_seq;
	bool force;
	bool verbose;
} opt = {.count = 100000, .seed = 1};

/* ---- random ---------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: enough for a generator, and the same sequence for the same --seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* 0..n-1 */
static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* true with probability 1/n */
static bool one_in(size_t n)
{
	return rnd_below(n) == 0;
}

#define PICK(arr) ((arr)[rnd_below(sizeof(arr) / sizeof((arr)[0]))])

/* ---- rules ----------------------------------------------------------------------------- */

struct rule {
	char pattern[EBPFMON_URL_PATH_MAX + 1];
	uint32_t id;
	uint32_t action;
};

static struct rule rules[8];
static size_t nrules;

/* The rules of one phase: lower-cased when the kernel lower-cases the path. */
static void rules_make(bool nocase)
{
	static const struct {
		const char *pattern;
		uint32_t action;
	} base[] = {
		{"/", EBPFMON_URL_REPORT},	   {"/wp-admin", EBPFMON_URL_DROP},
		{"/.env", EBPFMON_URL_DROP},	   {"/a/b", EBPFMON_URL_DROP},
		{"/Static/X", EBPFMON_URL_REPORT}, {NULL, EBPFMON_URL_DROP}, /* 128 bytes */
	};

	nrules = 0;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		struct rule *r = &rules[nrules++];

		if (base[i].pattern) {
			snprintf(r->pattern, sizeof(r->pattern), "%s", base[i].pattern);
		} else {
			r->pattern[0] = '/';
			memset(r->pattern + 1, 'L', EBPFMON_URL_PATH_MAX - 1);
			r->pattern[EBPFMON_URL_PATH_MAX] = '\0';
		}
		if (nocase)
			for (char *c = r->pattern; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
		r->id = (uint32_t)i + 1;
		r->action = base[i].action;
	}
}

/* The longest rule that is a prefix of path[0..len); "/" matches every canonical path. */
static const struct rule *rules_match(const uint8_t *path, size_t len)
{
	const struct rule *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < nrules; i++) {
		size_t n = strlen(rules[i].pattern);

		if (n <= len && n > best_len && memcmp(path, rules[i].pattern, n) == 0) {
			best = &rules[i];
			best_len = n;
		}
	}
	return best;
}

/* ---- what both sides report ------------------------------------------------------------ */

struct hit {
	uint32_t rule_id;
	uint32_t action;
	uint32_t seq;
	uint16_t sport;
	uint16_t flags; /* EBPFMON_URL_HIT_TRUNCATED, EBPFMON_URL_HIT_SPLIT */
	uint16_t len;
	uint8_t path[EBPFMON_URL_PATH_MAX];
	size_t seg; /* reference only: the segment where the line completed */
};

struct answer {
	size_t n; /* hits reported; at most HITS_MAX kept */
	struct hit hit[HITS_MAX];
	size_t nseg;		   /* segments sent */
	int verdict[SEGMENTS_MAX]; /* of each segment sent: XDP_PASS or XDP_DROP */
	uint32_t other_events;	   /* events that are not URL hits */
};

static void answer_add(struct answer *a, const struct hit *h)
{
	if (a->n < HITS_MAX)
		a->hit[a->n] = *h;
	a->n++;
}

static bool hit_equal(const struct hit *x, const struct hit *y)
{
	uint16_t fmask = opt.no_seq ? EBPFMON_URL_HIT_TRUNCATED
				    : EBPFMON_URL_HIT_TRUNCATED | EBPFMON_URL_HIT_SPLIT;

	if (x->rule_id != y->rule_id || x->action != y->action || x->len != y->len ||
	    (x->flags & fmask) != (y->flags & fmask) || memcmp(x->path, y->path, x->len) != 0)
		return false;
	return opt.no_seq || (x->seq == y->seq && x->sport == y->sport);
}

static bool answer_equal(const struct answer *x, const struct answer *y)
{
	if (x->n != y->n || x->nseg != y->nseg || x->other_events || y->other_events)
		return false;
	for (size_t k = 0; k < x->nseg; k++)
		if (x->verdict[k] != y->verdict[k])
			return false;
	for (size_t i = 0; i < x->n && i < HITS_MAX; i++)
		if (!hit_equal(&x->hit[i], &y->hit[i]))
			return false;
	return true;
}

/* ---- one payload ----------------------------------------------------------------------- */

struct payload {
	uint8_t b[PAYLOAD_MAX];
	size_t len;
	size_t nseg;			  /* 1 = sent whole */
	size_t seg_off[SEGMENTS_MAX + 1]; /* segment k is b[seg_off[k]..seg_off[k + 1]) */
	char src[INET_ADDRSTRLEN];
	uint16_t sport;
	uint32_t seq; /* of b[0] */
};

/* The segment that holds byte off. */
static size_t segment_of(const struct payload *pl, size_t off)
{
	size_t k = 0;

	while (k + 1 < pl->nseg && off >= pl->seg_off[k + 1])
		k++;
	return k;
}

/* What the payloads exercised, to see that the generator reaches every rule. */
static struct {
	unsigned long split, no_line, over, truncated, drop, nocase, incomplete, cut;
	unsigned long resumed; /* hits of lines resumed from an earlier segment */
} seen;

struct ref_ctx {
	const struct payload *pl;
	struct answer all; /* the hits of every segment */
	unsigned int hits[SEGMENTS_MAX];
	bool drop[SEGMENTS_MAX];
	bool over[SEGMENTS_MAX]; /* more than EBPFMON_URL_HITS_MAX hits here: not reported */
};

static int ref_line(const struct urlcanon_path *p, void *data)
{
	struct ref_ctx *c = data;
	const struct payload *pl = c->pl;
	size_t seg = segment_of(pl, p->end_off);
	const struct rule *r;
	struct hit h = {0};

	seen.truncated += p->truncated;
	r = rules_match(p->path, p->len);
	if (!r) /* cannot happen with "/" among the rules: the answers will differ */
		return 0;
	/* hits are counted, and bounded, on the segment where their lines complete */
	if (r->action == EBPFMON_URL_DROP)
		c->drop[seg] = true;
	if (++c->hits[seg] > EBPFMON_URL_HITS_MAX) {
		c->over[seg] = true;
		return 0;
	}
	h.rule_id = r->id;
	h.action = r->action;
	h.seq = pl->seq + (uint32_t)p->line_off;
	h.sport = pl->sport;
	h.flags = (uint16_t)((p->truncated ? EBPFMON_URL_HIT_TRUNCATED : 0) |
			     (segment_of(pl, p->line_off) < seg ? EBPFMON_URL_HIT_SPLIT : 0));
	h.len = p->len;
	memcpy(h.path, p->path, p->len);
	h.seg = seg;
	answer_add(&c->all, &h);
	return 0;
}

/*
 * What the kernel must answer, from the reference on the whole payload: the hits and the
 * verdict of each segment. A segment drops when a line completed in it hits a drop rule
 * (reported among its first EBPFMON_URL_HITS_MAX hits or not). The segments after a dropped
 * one are not sent (TCP would retransmit the dropped one instead, and what a flow's state
 * holds past a dropped segment is the kernel's choice), and their lines not expected.
 * Returns the number of complete lines in the segments sent.
 */
static int reference(const struct payload *pl, unsigned int flags, struct answer *a)
{
	static struct ref_ctx c;
	struct urlcanon_tail tail;
	int lines, sent_lines = 0;

	memset(&c, 0, sizeof(c));
	c.pl = pl;
	lines = urlcanon_scan_segments(pl->b, pl->len, pl->seg_off, pl->nseg, flags, ref_line, &c,
				       &tail);
	if (lines < 0) {
		fprintf(stderr, "%s: urlcanon_scan: %s\n", PROG, strerror(-lines));
		exit(EXIT_FAILURE);
	}
	memset(a, 0, sizeof(*a));
	for (size_t k = 0; k < pl->nseg && (k == 0 || a->verdict[k - 1] == XDP_PASS); k++) {
		a->verdict[k] = c.drop[k] ? XDP_DROP : XDP_PASS;
		a->nseg = k + 1;
		sent_lines += (int)c.hits[k]; /* "/" is a rule: every line is a hit */
		seen.over += c.over[k];
		seen.drop += c.drop[k];
	}
	for (size_t i = 0; i < c.all.n && i < HITS_MAX; i++)
		if (c.all.hit[i].seg < a->nseg) {
			answer_add(a, &c.all.hit[i]);
			seen.resumed += !!(c.all.hit[i].flags & EBPFMON_URL_HIT_SPLIT);
		}
	seen.no_line += lines == 0;
	seen.incomplete += tail.incomplete;
	seen.cut += a->nseg < pl->nseg;
	return sent_lines;
}

/* ---- the kernel ------------------------------------------------------------------------ */

static struct ebpfmon *skel;
static struct ring_buffer *rb;
static int prog_fd;
static struct answer *cur; /* where on_event() puts what the ring buffer holds */

static int on_event(void *ctx, void *data, size_t size)
{
	struct answer *a = cur;
	const struct ebpfmon_ev_url_hit *ev = data;
	struct hit h = {0};

	(void)ctx;
	if (!a) {
		fprintf(stderr, "%s: an event outside of a payload's run\n", PROG);
		exit(EXIT_FAILURE);
	}
	if (size != sizeof(*ev) || ev->hdr.type != EBPFMON_EV_URL_HIT) {
		a->other_events++;
		return 0;
	}
	h.rule_id = ev->rule_id;
	h.action = ev->action;
	h.seq = ev->seq;
	h.sport = ev->sport;
	h.flags = ev->flags;
	h.len = ev->path_len > EBPFMON_URL_PATH_MAX ? EBPFMON_URL_PATH_MAX : ev->path_len;
	memcpy(h.path, ev->path, h.len);
	if (ev->path_len > EBPFMON_URL_PATH_MAX)
		h.len = ev->path_len; /* an impossible length: make it differ */
	answer_add(a, &h);
	return 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(err < 0 ? -err : err));
	exit(EXIT_FAILURE);
}

/* One frame: Ethernet, IPv4, TCP (ACK|PSH, seq) to HTTP_PORT, then n bytes of payload. */
static void frame_make(struct frame *f, const struct payload *pl, uint32_t seq, const uint8_t *p,
		       size_t n)
{
	uint8_t *tcp;

	frame_init(f);
	put_eth(f, PKT_ETH_P_IP);
	put_ipv4(f, pl->src, "198.19.0.1", IPPROTO_TCP, 0, 0);
	tcp = f->b + f->len;
	put_tcp(f, pl->sport, HTTP_PORT, TCP_ACK | TCP_PSH);
	tcp[4] = (uint8_t)(seq >> 24);
	tcp[5] = (uint8_t)(seq >> 16);
	tcp[6] = (uint8_t)(seq >> 8);
	tcp[7] = (uint8_t)seq;
	put_bytes(f, p, n);
	frame_finish(f);
}

/* Run the first nseg segments of the payload through xdp_ingress; what it did goes to *a. */
static void kernel(const struct payload *pl, size_t nseg, struct answer *a)
{
	static struct frame f;

	memset(a, 0, sizeof(*a));
	cur = a;
	for (size_t k = 0; k < nseg; k++) {
		size_t off = pl->seg_off[k], n = pl->seg_off[k + 1] - off;
		__u32 verdict = 0;
		int err;

		frame_make(&f, pl, pl->seq + (uint32_t)off, pl->b + off, n);
		err = xh_run(prog_fd, f.b, f.len, 1, &verdict, NULL);
		if (err)
			die("BPF_PROG_TEST_RUN", err);
		err = ring_buffer__consume(rb);
		if (err < 0)
			die("ring_buffer__consume", err);
		a->verdict[k] = (int)verdict;
		a->nseg = k + 1;
	}
	cur = NULL;
}

/* ---- the generator --------------------------------------------------------------------- */

struct gen {
	uint8_t b[4096];
	size_t len;
};

static void gen_bytes(struct gen *g, const void *p, size_t n)
{
	if (n > sizeof(g->b) - g->len)
		n = sizeof(g->b) - g->len;
	memcpy(g->b + g->len, p, n);
	g->len += n;
}

static void gen_str(struct gen *g, const char *s)
{
	gen_bytes(g, s, strlen(s));
}

static void gen_byte(struct gen *g, uint8_t c)
{
	gen_bytes(g, &c, 1);
}

static void gen_pct(struct gen *g, uint8_t c)
{
	char buf[4];

	snprintf(buf, sizeof(buf), one_in(2) ? "%%%02x" : "%%%02X", c);
	gen_str(g, buf);
}

/* A byte of interest to the parser. */
static uint8_t interesting_byte(void)
{
	static const uint8_t bytes[] = {'/', '.', '%', '?', '#', 0,   ' ', '\t', '\r', '\n',
					'A', 'z', '2', 'f', 'e', ':', '@', 0x80, 0xff, '-'};

	return one_in(4) ? (uint8_t)rnd() : PICK(bytes);
}

/* One path segment (no separator), from a dictionary, random bytes, or long runs. */
static void gen_segment(struct gen *g)
{
	static const char *const dict[] = {
		"",    "",    ".",   "..",   "..",     "wp-admin", ".env", "WP-Admin",
		"a",   "b",   "a/b", "c",    "Static", "X",	   "x",	   "index.php",
		"...", ".a",  "a.",  "%2e",  "%2E%2e", ".%2e",	   "%25",  "%252e",
		"%00", "%",   "%2",  "%zz",  "%2z",    "%%",	   "%3f",  "%23",
		"%2f", "%2F", "%5c", "LLLL", "%4c",    "wp-login", "%20",  "%0d%0a",
	};
	size_t kind = rnd_below(10);

	if (kind < 6) {
		gen_str(g, PICK(dict));
	} else if (kind < 7) { /* random bytes, most of them printable */
		size_t n = 1 + rnd_below(6);

		for (size_t i = 0; i < n; i++)
			gen_byte(g,
				 one_in(3) ? interesting_byte() : (uint8_t)(0x21 + rnd_below(94)));
	} else if (kind < 8) { /* a dictionary word with bytes percent-encoded */
		const char *w = PICK(dict);

		for (const char *c = w; *c; c++)
			if (one_in(2))
				gen_pct(g, (uint8_t)*c);
			else
				gen_byte(g, (uint8_t)*c);
		if (one_in(3))
			gen_pct(g, interesting_byte());
	} else if (kind < 9) { /* long runs around the 128-byte bound, now and then a line that
				 * fills most of a segment */
		size_t n = one_in(12) ? 1000 + rnd_below(250)
				      : (one_in(2) ? 120 : 1) + rnd_below(one_in(2) ? 16 : 300);
		uint8_t c = one_in(2) ? 'L' : (uint8_t)('a' + rnd_below(26));

		for (size_t i = 0; i < n; i++)
			gen_byte(g, c);
	} else { /* an encoding of any byte */
		gen_pct(g, one_in(2) ? interesting_byte() : (uint8_t)rnd());
	}
}

static void gen_path(struct gen *g)
{
	size_t nseg = rnd_below(8);

	if (one_in(8)) { /* a long path that '..' pulls back */
		size_t n = 1 + rnd_below(4);

		for (size_t i = 0; i < n; i++) {
			gen_byte(g, '/');
			for (size_t k = 0, m = 20 + rnd_below(120); k < m; k++)
				gen_byte(g, (uint8_t)('a' + rnd_below(3)));
		}
		for (size_t i = 0, m = rnd_below(n + 2); i < m; i++)
			gen_str(g, one_in(4) ? "/%2e%2e" : "/..");
	}
	gen_byte(g, '/');
	for (size_t i = 0; i < nseg; i++) {
		static const char *const sep[] = {"/", "/", "/", "/", "//", "%2f", "%2F", "/./"};

		if (i)
			gen_str(g, PICK(sep));
		gen_segment(g);
	}
	if (one_in(6))
		gen_str(g, one_in(2) ? "/" : one_in(2) ? "/." : "/..");
}

static void gen_method(struct gen *g)
{
	static const char *const methods[] = {
		"GET", "GET", "GET", "GET",	 "POST", "HEAD", "PUT",	 "OPTIONS", "M-SEARCH",
		"_",   "-",   "A",   "PROPFIND", "get",	 "G3T",	 "GE T", "GET.",    "Get",
	};
	size_t kind = rnd_below(20);

	if (kind == 0) {
		for (size_t i = 0, n = 31 + rnd_below(4); i < n; i++) /* 31..34 bytes */
			gen_byte(g, (uint8_t)('A' + rnd_below(26)));
	} else {
		gen_str(g, PICK(methods));
	}
}

static void gen_spaces(struct gen *g)
{
	size_t n = one_in(20) ? 0 : 1 + (one_in(4) ? rnd_below(4) : 0);

	for (size_t i = 0; i < n; i++)
		gen_byte(g, one_in(4) ? '\t' : ' ');
	if (one_in(40))
		gen_byte(g, interesting_byte());
}

static void gen_target(struct gen *g)
{
	static const char *const schemes[] = {"http",  "HTTP",	"https", "hTtP", "svn+ssh",
					      "a1.-+", "1http", "ht_tp", "x"};
	static const char *const seps[] = {"://", "://", "://", "://", ":/", ":", "//", ":///"};
	static const char *const auths[] = {"",
					    "h",
					    "198.18.0.1:8080",
					    "user:pw@h",
					    "[2001:db8::1]:80",
					    "h%2f",
					    "H.EXAMPLE",
					    "h:",
					    "@",
					    "h%00"};
	size_t kind = rnd_below(10);

	if (kind < 7) {
		gen_path(g);
		return;
	}
	if (kind < 9) {
		gen_str(g, PICK(schemes));
		gen_str(g, PICK(seps));
		if (one_in(6))
			for (size_t i = 0, n = 1 + rnd_below(5); i < n; i++)
				gen_byte(g, interesting_byte());
		else
			gen_str(g, PICK(auths));
		if (!one_in(4))
			gen_path(g);
		return;
	}
	gen_str(g, one_in(2) ? "*" : "host:443");
}

static void gen_line_end(struct gen *g)
{
	static const char *const ends[] = {
		" HTTP/1.1\r\n",
		" HTTP/1.1\r\n",
		" HTTP/1.1\r\n",
		"?q=1 HTTP/1.1\r\n",
		"#f HTTP/1.0\r\n",
		"\r\n",
		"\n",
		"\r",
		"\t HTTP/1.1\n",
		"%00 x\r\n",
		" GET /wp-admin HTTP/1.1\r\n",
		"?GET /.env\r\n",
	};

	if (one_in(30)) {
		gen_byte(g, 0);
		gen_str(g, "\r\n");
	} else {
		gen_str(g, PICK(ends));
	}
}

/*
 * A head that declares a body, and the body: right or wrong lengths, odd spellings, bodies
 * holding request-like lines, the next request glued to the body's last byte.
 */
static void gen_body(struct gen *g)
{
	static const char *const names[] = {
		"Content-Length:", "content-length:",	"CONTENT-LENGTH:",   "Content-Length :",
		"Content-Lenght:", "X-Content-Length:", "Content-Length:\r",
	};
	static const char *const bodies[] = {
		"hello",
		"a=b\r\n",
		"GET /wp-admin/ HTTP/1.1\r\n",
		"x\nGET /.env HTTP/1.1\n",
		"",
		"\r\n\r\n",
		"%2e%2e/wp-admin",
	};
	const char *body = PICK(bodies);
	size_t blen = strlen(body);
	char num[32];
	long n = (long)blen + (one_in(3) ? (long)rnd_below(7) - 3 : 0);

	if (n < 0)
		n = 0;
	if (one_in(10))
		n = (long)rnd_below(3000);
	snprintf(num, sizeof(num), "%s%ld%s", one_in(4) ? " \t" : " ", n,
		 one_in(6)    ? " "
		 : one_in(10) ? "x"
			      : "");
	gen_str(g, PICK(names));
	gen_str(g, num);
	gen_str(g, one_in(8) ? "\n" : "\r\n");
	if (one_in(4))
		gen_str(g, "Content-Length: 2\r\n"); /* a second one: the last counts */
	gen_str(g, one_in(8) ? "\n" : "\r\n");
	gen_str(g, body);
}

/* Leading bytes and header lines, between request lines. */
static void gen_filler(struct gen *g)
{
	static const char *const fill[] = {
		"",
		"",
		"\r\n",
		"\n",
		"\r",
		"\r\n\r\n",
		"Host: h\r\n",
		"X-A: b\r\n\r\n",
		"junk\r\n",
		"HOST /wp-admin\r\n",
		"Referer: GET /wp-admin\r\n",
		"\r\n\r\n\r\n\n",
		"User-Agent: x\r\nAccept: */*\r\n\r\n",
		"  GET /.env\r\n",
	};

	gen_str(g, PICK(fill));
}

static void gen_mutate(struct gen *g)
{
	for (size_t m = 0, n = 1 + rnd_below(4); m < n && g->len; m++) {
		size_t at = rnd_below(g->len), span = 1 + rnd_below(8);

		switch (rnd_below(5)) {
		case 0: /* flip */
			g->b[at] = one_in(2) ? (uint8_t)(g->b[at] ^ (1u << rnd_below(8)))
					     : interesting_byte();
			break;
		case 1: /* insert */
			if (g->len < sizeof(g->b)) {
				memmove(g->b + at + 1, g->b + at, g->len - at);
				g->b[at] = interesting_byte();
				g->len++;
			}
			break;
		case 2: /* delete */
			if (span > g->len - at)
				span = g->len - at;
			memmove(g->b + at, g->b + at + span, g->len - at - span);
			g->len -= span;
			break;
		default: { /* duplicate a range */
			size_t to = rnd_below(g->len + 1);
			uint8_t tmp[8];

			if (span > g->len - at)
				span = g->len - at;
			if (span > sizeof(g->b) - g->len)
				break;
			memcpy(tmp, g->b + at, span);
			memmove(g->b + to + span, g->b + to, g->len - to);
			memcpy(g->b + to, tmp, span);
			g->len += span;
			break;
		}
		}
	}
}

/*
 * A plain payload: "GET /simple/path HTTP/1.1", the one request line, then headers; lower-case,
 * no dot segment, no "//", no escape, shorter than 128 bytes, where even a raw-byte matcher
 * and the canonical one agree.
 */
static void gen_plain(struct gen *g)
{
	static const char *const words[] = {"wp-admin",	    "a",   "b",	     ".env",
					    "index.html",   "x-y", "static", "img",
					    "wp-login.php", "lib"};

	gen_str(g, "GET ");
	for (size_t i = 0, n = 1 + rnd_below(5); i < n; i++) {
		gen_byte(g, '/');
		gen_str(g, PICK(words));
	}
	if (one_in(4))
		gen_byte(g, '/');
	gen_str(g, " HTTP/1.1\r\nHost: h\r\nUser-Agent: url_diff\r\n\r\n");
}

static void gen_payload(struct payload *pl)
{
	static struct gen g;

	g.len = 0;
	if (opt.plain) {
		gen_plain(&g);
	} else if (one_in(20)) {
		/* around EBPFMON_URL_HITS_MAX short request lines in one segment */
		for (size_t i = 0, n = 14 + rnd_below(6); i < n; i++) {
			gen_str(&g, one_in(4) ? "\r\n" : "");
			gen_str(&g, one_in(8) ? "get" : "GET");
			gen_spaces(&g);
			gen_byte(&g, '/');
			gen_segment(&g);
			gen_str(&g, one_in(2) ? "\r\n" : " HTTP/1.1\r\n");
		}
	} else {
		size_t lines = 1 + rnd_below(4);

		for (size_t i = 0; i < lines; i++) {
			gen_filler(&g);
			gen_method(&g);
			gen_spaces(&g);
			gen_target(&g);
			if (i + 1 < lines || !one_in(6)) /* the last line may stop short */
				gen_line_end(&g);
			if (one_in(3))
				gen_str(&g, "Host: h\r\n\r\n");
			else if (one_in(3))
				gen_body(&g);
		}
		if (one_in(3))
			gen_mutate(&g);
	}
	pl->len = g.len < PAYLOAD_MAX ? g.len : PAYLOAD_MAX;
	memcpy(pl->b, g.b, pl->len);
}

/* Cut the payload into 2..SEGMENTS_MAX segments at distinct offsets (or leave it whole). */
static void split(struct payload *pl, bool may_split)
{
	size_t cuts[SEGMENTS_MAX - 1], n = 0;

	pl->nseg = 1;
	pl->seg_off[0] = 0;
	pl->seg_off[1] = pl->len;
	if (!may_split || pl->len < 2 || !one_in(4))
		return;
	for (size_t want = 1 + rnd_below(SEGMENTS_MAX - 1); n < want;) {
		size_t c = 1 + rnd_below(pl->len - 1), i;

		for (i = 0; i < n && cuts[i] != c; i++)
			;
		if (i < n) {
			if (pl->len - 1 <= n)
				break;
			continue;
		}
		cuts[n++] = c;
	}
	for (size_t i = 0; i < n; i++) /* insertion sort of at most three */
		for (size_t j = i + 1; j < n; j++)
			if (cuts[j] < cuts[i]) {
				size_t t = cuts[i];

				cuts[i] = cuts[j];
				cuts[j] = t;
			}
	pl->nseg = n + 1;
	for (size_t i = 0; i < n; i++)
		pl->seg_off[i + 1] = cuts[i];
	pl->seg_off[pl->nseg] = pl->len;
}

/* ---- reporting ------------------------------------------------------------------------- */

static void print_escaped(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c == '\r')
			fputs("\\r", out);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static const char *verdict_name(int v)
{
	return v == XDP_DROP ? "DROP" : v == XDP_PASS ? "PASS" : "other";
}

static void print_answer(FILE *out, const char *who, const struct answer *a)
{
	fprintf(out, "  %s: %zu hit%s, verdict", who, a->n, a->n == 1 ? "" : "s");
	for (size_t k = 0; k < a->nseg; k++)
		fprintf(out, " %s", verdict_name(a->verdict[k]));
	if (a->other_events)
		fprintf(out, ", %u other events", a->other_events);
	fputc('\n', out);
	for (size_t i = 0; i < a->n && i < HITS_MAX; i++) {
		const struct hit *h = &a->hit[i];

		fprintf(out, "    rule %u %s seq %" PRIu32 " sport %u len %u%s%s ", h->rule_id,
			h->action == EBPFMON_URL_DROP ? "DROP" : "REPORT", h->seq, h->sport, h->len,
			h->flags & EBPFMON_URL_HIT_TRUNCATED ? " TRUNCATED" : "",
			h->flags & EBPFMON_URL_HIT_SPLIT ? " SPLIT" : "");
		print_escaped(out, h->path, h->len > EBPFMON_URL_PATH_MAX ? 0 : h->len);
		fputc('\n', out);
	}
}

static void print_payload(FILE *out, const struct payload *pl)
{
	fprintf(out, "  payload (%zu bytes, %zu segment%s, from %s:%u, seq %" PRIu32 "):\n",
		pl->len, pl->nseg, pl->nseg == 1 ? "" : "s", pl->src, pl->sport, pl->seq);
	for (size_t k = 0; k < pl->nseg; k++) {
		fprintf(out, "    seq %" PRIu32 ": ", pl->seq + (uint32_t)pl->seg_off[k]);
		print_escaped(out, pl->b + pl->seg_off[k], pl->seg_off[k + 1] - pl->seg_off[k]);
		fputc('\n', out);
	}
}

/* ---- main ------------------------------------------------------------------------------ */

static void configure(bool nocase)
{
	struct ebpfmon_settings set = {0};
	int err;

	set.flags = EBPFMON_F_URL_MATCH | (nocase ? EBPFMON_F_URL_NOCASE : 0);
	set.http_ports[0] = HTTP_PORT;
	err = xh_settings_set(skel, &set);
	if (err)
		die("settings", err);
	err = xh_map_clear(skel->maps.url_rules);
	if (err < 0)
		die("clearing url_rules", err);
	rules_make(nocase);
	for (size_t i = 0; i < nrules; i++) {
		err = xh_url_rule_add(skel, rules[i].pattern, rules[i].id, rules[i].action);
		if (err)
			die("url_rules", err);
	}
}

static bool parse_ulong(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return s[0] && s[0] != '-' && !errno && !*end && *out <= max;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s [--count N] [--seed S] [--nocase] [--plain] [--no-seq] [--force] "
		"[--verbose]\n"
		"  --count N  payloads to try (default 100000)\n"
		"  --seed S   generator seed (default 1)\n"
		"  --nocase   only EBPFMON_F_URL_NOCASE (default: the first half without, the "
		"second with)\n"
		"  --plain    only \"GET /simple/path HTTP/1.1\" payloads, never split\n"
		"  --no-seq   do not compare seq, sport and the SPLIT flag of the hits\n"
		"  --force    run even on a BPF object without http_flows (the old matcher)\n"
		"  --verbose  print every payload and the reference's answer\n"
		"EXAMPLES\n"
		"  %s --count 1000000 --seed 42\n"
		"  %s --plain --no-seq --force --count 1000\n",
		PROG, PROG, PROG);
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"count", required_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 's'},
		{"nocase", no_argument, NULL, 'n'},
		{"plain", no_argument, NULL, 'p'},
		{"no-seq", no_argument, NULL, 'q'},
		{"force", no_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long v;
	int c;

	while ((c = getopt_long(argc, argv, "c:s:npqfvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (!parse_ulong(optarg, ULONG_MAX, &v) || v == 0) {
				fprintf(stderr, "%s: --count: '%s' is not a positive number\n",
					PROG, optarg);
				exit(2);
			}
			opt.count = (unsigned long)v;
			break;
		case 's':
			if (!parse_ulong(optarg, ULLONG_MAX, &v)) {
				fprintf(stderr, "%s: --seed: '%s' is not a number\n", PROG, optarg);
				exit(2);
			}
			opt.seed = v;
			break;
		case 'n':
			opt.nocase_only = true;
			break;
		case 'p':
			opt.plain = true;
			break;
		case 'q':
			opt.no_seq = true;
			break;
		case 'f':
			opt.force = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	static struct payload pl;
	static struct answer want, got;
	unsigned long done = 0, lines = 0, disagree = 0;
	struct ebpfmon_counters cnt;
	int err;

	parse_args(argc, argv);
	rng_state = opt.seed * 0x9e3779b97f4a7c15ull + 1; /* never 0 */

	bpf_test_require_root_or_skip(PROG);
	libbpf_set_print(NULL);
	err = xh_load_opts(&skel, 0, false);
	if (err) {
		bpf_test_skip_if_privilege(PROG, "ebpfmon.bpf.o", err);
		die("loading ebpfmon.bpf.o", err);
	}
	prog_fd = bpf_program__fd(skel->progs.xdp_ingress);
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb)
		die("ring_buffer__new", -errno);

	for (int phase = opt.nocase_only ? 1 : 0; phase < 2; phase++) {
		bool nocase = phase == 1;
		unsigned long end = opt.nocase_only || nocase ? opt.count : opt.count / 2;

		configure(nocase);
		for (; done < end && disagree < DISAGREE_STOP; done++) {
			int n;

			gen_payload(&pl);
			snprintf(pl.src, sizeof(pl.src), "198.18.%lu.%lu", (done >> 8) & 0xff,
				 done & 0xff);
			pl.sport = (uint16_t)(1024 + done % 64000);
			pl.seq = (uint32_t)rnd();
			split(&pl, !opt.plain);
			n = reference(&pl, nocase ? URLCANON_NOCASE : 0, &want);
			lines += (unsigned long)n;
			seen.split += pl.nseg > 1;
			seen.nocase += nocase;
			kernel(&pl, want.nseg, &got);

			if (opt.verbose) {
				printf("payload %lu%s:\n", done, nocase ? " (nocase)" : "");
				print_payload(stdout, &pl);
				print_answer(stdout, "reference", &want);
			}
			if (answer_equal(&want, &got))
				continue;
			disagree++;
			fprintf(stderr, "%s: disagreement on payload %lu (seed %" PRIu64 "%s):\n",
				PROG, done, opt.seed, nocase ? ", nocase" : "");
			print_payload(stderr, &pl);
			print_answer(stderr, "reference", &want);
			print_answer(stderr, "kernel   ", &got);
		}
	}

	err = xh_counters(skel, &cnt);
	if (err)
		die("counters", err);
	if (cnt.ringbuf_drops) {
		fprintf(stderr,
			"%s: %" PRIu64 " events lost in the ring buffer: nothing compared "
			"is trustworthy\n",
			PROG, (uint64_t)cnt.ringbuf_drops);
		disagree++;
	}
	printf("%s: seed %" PRIu64 "; payloads: %lu split, %lu nocase, %lu without a request line, "
	       "%lu ending inside one, %lu not sent whole after a drop; segments: %lu with a drop "
	       "rule hit, %lu over %d lines; %lu lines truncated, %lu resumed from an earlier "
	       "segment\n",
	       PROG, opt.seed, seen.split, seen.nocase, seen.no_line, seen.incomplete, seen.cut,
	       seen.drop, seen.over, EBPFMON_URL_HITS_MAX, seen.truncated, seen.resumed);
	printf("%s: %lu payloads, %lu request lines, %lu disagreements\n", PROG, done, lines,
	       disagree);
	ring_buffer__free(rb);
	ebpfmon__destroy(skel);
	return disagree ? EXIT_FAILURE : EXIT_SUCCESS;
}
