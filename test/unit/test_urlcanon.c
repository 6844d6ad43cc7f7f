// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The reference URL canonicalisation (common/urlcanon.c): the examples of
 * docs/url-matching.md, then each rule of the request-line scanner and of the path
 * normalisation, with the canonical path a rule would be matched against as the assertion.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "urlcanon.h"

#define LINES_MAX 64

static struct {
	size_t n;
	struct urlcanon_path p[LINES_MAX];
} got;

static int collect(const struct urlcanon_path *p, void *ctx)
{
	(void)ctx;
	if (got.n < LINES_MAX)
		got.p[got.n] = *p;
	got.n++;
	return 0;
}

/* Scan len bytes of s (which may hold NULs); returns the line count, checked against got.n. */
static int scan_n(const char *s, size_t len, unsigned int flags, struct urlcanon_tail *tail)
{
	int rc;

	memset(&got, 0, sizeof(got));
	rc = urlcanon_scan((const uint8_t *)s, len, flags, collect, NULL, tail);
	if (rc >= 0)
		assert_int_equal((size_t)rc, got.n);
	return rc;
}

static int scan(const char *s, unsigned int flags)
{
	return scan_n(s, strlen(s), flags, NULL);
}

/* Line i of the last scan has the canonical path want (not truncated). */
static void line_is_(size_t i, const char *want, const char *file, int line)
{
	const struct urlcanon_path *p = &got.p[i];
	size_t n = strlen(want);

	if (i >= got.n) {
		print_error("line %zu of %zu lines, want \"%s\"\n", i, got.n, want);
		_fail(file, line);
	}
	if (p->len != n || memcmp(p->path, want, n) != 0 || p->truncated) {
		print_error("line %zu: canonical \"%.*s\" (%u bytes%s), want \"%s\"\n", i,
			    (int)p->len, (const char *)p->path, p->len,
			    p->truncated ? ", truncated" : "", want);
		_fail(file, line);
	}
}
#define line_is(i, want) line_is_(i, want, __FILE__, __LINE__)

/* The payload holds exactly one request line, whose canonical path is want. */
static void one_(const char *payload, unsigned int flags, const char *want, const char *file,
		 int line)
{
	int rc = scan(payload, flags);

	if (rc != 1) {
		print_error("\"%s\": %d request lines, want 1\n", payload, rc);
		_fail(file, line);
	}
	line_is_(0, want, file, line);
}
#define one(payload, want)	  one_(payload, 0, want, __FILE__, __LINE__)
#define one_nocase(payload, want) one_(payload, URLCANON_NOCASE, want, __FILE__, __LINE__)

/* The payload holds no complete request line. */
static void none_(const char *payload, const char *file, int line)
{
	int rc = scan(payload, 0);

	if (rc != 0) {
		print_error("\"%s\": %d request lines (first \"%.*s\"), want none\n", payload, rc,
			    (int)got.p[0].len, (const char *)got.p[0].path);
		_fail(file, line);
	}
}
#define none(payload) none_(payload, __FILE__, __LINE__)

/* "GET " target " HTTP/1.1\r\n..." has the canonical path want. */
#define req(target, want) one("GET " target " HTTP/1.1\r\nHost: h\r\n\r\n", want)

static void test_doc_examples(void **state)
{
	static const char *const lines[] = {
		"GET //wp-admin/ HTTP/1.1",	     "GET /./wp-admin/ HTTP/1.1",
		"GET /wp%2dadmin/ HTTP/1.1",	     "GET /%2fwp-admin/ HTTP/1.1",
		"GET  /wp-admin/ HTTP/1.1",	     "GET http://198.18.0.1/wp-admin/ HTTP/1.1",
		"GET /static/../wp-admin/ HTTP/1.1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		one(lines[i], "/wp-admin/");
	one("GET /../../wp-admin HTTP/1.1", "/wp-admin");
	one("GET /wp-admin%3f.css HTTP/1.1", "/wp-admin?.css");
	/* what a raw-byte matcher used to see */
	one("GET /wp-admin/x HTTP/1.1\r\n", "/wp-admin/x");
	one("GET /phpmyadmin/index.php?a=1 HTTP/1.1", "/phpmyadmin/index.php");
}

static void test_methods(void **state)
{
	char m32[64], m33[64];

	(void)state;
	one("M-SEARCH /a HTTP/1.1", "/a");
	one("_ /a ", "/a");
	one("- /a ", "/a");
	one("PROPFIND /a\r\n", "/a");
	memset(m32, 'X', 32);
	strcpy(m32 + 32, " /a/../b ");
	one(m32, "/b");
	/* any length: nginx takes it, and a proxy passes it on */
	memset(m33, 'X', 33);
	strcpy(m33 + 33, " /a/../b ");
	one(m33, "/b");
	none("get /wp-admin ");	 /* a method is upper-case... */
	none("GET2 /wp-admin "); /* ...without digits */
	none("GET.X /wp-admin ");
	none(" GET /wp-admin "); /* not at a line start */
	none("xGET /wp-admin ");
	none("GET/wp-admin "); /* no space */
	/* a method cut by a line break: the next line is read */
	one("GET\r\nPOST /x ", "/x");
	assert_int_equal(got.p[0].line_off, 5);
	one("GET\nPOST /x ", "/x");
}

static void test_spaces_and_targets(void **state)
{
	(void)state;
	one("GET \t \t/a\t", "/a");
	one("GET\t/a ", "/a");
	none("GET * HTTP/1.1\r\n");
	none("CONNECT host:443 HTTP/1.1\r\n");
	none("GET ?/wp-admin ");
	none("GET %2fwp-admin ");
	/* SPACES fails at CR or LF to a line start */
	one("GET \rPOST /x ", "/x");
	one("GET *\r\nGET /y ", "/y");
	one("OPTIONS * HTTP/1.1\r\nGET /y ", "/y");
	/* and at anything else to SKIP: the rest of the line is not looked at */
	none("GET * GET /y ");
}

static void test_absolute_form(void **state)
{
	(void)state;
	req("http://198.18.0.1/wp-admin/", "/wp-admin/");
	req("HTTP://H/A", "/A");
	req("hTtPs://h/a", "/a");
	req("svn+ssh.1-x://h/a", "/a");
	req("http://user:pw@h:8080/a/../b", "/b");
	req("http://[2001:db8::1]:80/a", "/a");
	req("http:///x", "/x");	    /* empty authority */
	req("http://h%2f/a", "/a"); /* the authority is not decoded */
	req("http://h//wp-admin", "/wp-admin");
	/* an authority followed by anything but '/' has the path "/" */
	req("http://h", "/");
	req("http://h?x=/wp-admin", "/");
	req("http://h#/wp-admin", "/");
	one("GET http://h\t/wp-admin", "/");
	assert_int_equal(scan_n("GET http://h\0/wp-admin ", 23, 0, NULL), 1);
	line_is(0, "/");
	/* ... and its terminator decides the state: a line break starts the next line */
	assert_int_equal(scan("GET http://h\r\nGET http://h\nGET http://h\rGET /x ", 0), 4);
	line_is(3, "/x");
	/* not a scheme, or not "://" after it */
	none("GET 1http://h/wp-admin ");
	none("GET ht_tp://h/wp-admin ");
	none("GET http:/wp-admin ");
	none("GET http//h/wp-admin ");
	none("GET http:h/wp-admin ");
	none("GET http ");
	one("GET http:\r\nGET /y ", "/y");
	one("GET http:/\nGET /y ", "/y");
	one("GET ht\rGET /y ", "/y");
}

static void test_path_terminators(void **state)
{
	static const char *const ends[] = {" ", "\t", "\r", "\n", "?", "#", "%00"};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		snprintf(buf, sizeof(buf), "GET /wp-admin%sx/../../.env HTTP/1.1", ends[i]);
		one(buf, "/wp-admin");
	}
	assert_int_equal(scan_n("GET /a\0/b ", 10, 0, NULL), 1);
	line_is(0, "/a");
	/* after a raw SP, '?', '#' or NUL, or a decoded NUL, the line is skipped */
	one("GET /a GET /b ", "/a");
	one("GET /a?GET /b ", "/a");
	one("GET /a%00GET /b ", "/a");
	assert_int_equal(got.p[0].end_off, 8); /* the last digit of %00 */
	/* the byte after %00 is read in SKIP: a line break there starts a line */
	assert_int_equal(scan("GET /a%00\nGET /b ", 0), 2);
	line_is(1, "/b");
	assert_int_equal(scan("GET /a?q\r\nGET /b#f\rGET /c\nGET /d ", 0), 4);
	line_is(0, "/a");
	line_is(1, "/b");
	line_is(2, "/c");
	line_is(3, "/d");
	/* decoded SP, HTAB, CR, LF end nothing */
	one("GET /a%20b%09c%0d%0ad ", "/a b\tc\r\nd");
}

static void test_lines(void **state)
{
	static const char pipeline[] = "\r\n\n\rGET /a HTTP/1.1\r\nHost: h\r\nX: GET /no\r\n"
				       "\r\nPOST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
				       "junk\r\nPUT /c\r\n";

	(void)state;
	assert_int_equal(scan(pipeline, 0), 3);
	line_is(0, "/a");
	assert_int_equal(got.p[0].line_off, 4);
	assert_int_equal(got.p[0].end_off, 10); /* the SP after "/a" */
	line_is(1, "/b");
	assert_int_equal(got.p[1].line_off, (size_t)(strstr(pipeline, "POST") - pipeline));
	line_is(2, "/c");
	assert_int_equal(got.p[2].line_off, (size_t)(strstr(pipeline, "PUT") - pipeline));
	/* CR alone breaks lines; header lines that look like a method are request lines */
	assert_int_equal(scan("GET /a\rHOST: /b\rX-A: /c\r", 0), 1);
	assert_int_equal(scan("GET /a\rHOST /b\rX-A /c\r", 0), 3);
	line_is(2, "/c");
}

static void test_decoding(void **state)
{
	(void)state;
	req("/%2f%2F%77p-admin", "/wp-admin");
	req("/%2e%2e/%2E%2E/wp-admin", "/wp-admin");
	req("/a/%2e/b", "/a/b");
	req("/a/.%2e/b", "/b");
	req("/a%2f..%2fb", "/b");
	/* decoded '?', '#', '%' are ordinary path bytes */
	req("/a%3fb/../c", "/c");
	req("/a%23b", "/a#b");
	req("/a%25b", "/a%b");
	req("/x/.%3f/y", "/x/.?/y");
	req("/x/%3f./y", "/x/?./y");
	req("/x/.%25/y", "/x/.%/y");
	req("/x/%25%2e/y", "/x/%./y");
	/* decoding happens once */
	req("/%252e%252e/wp-admin", "/%2e%2e/wp-admin");
	req("/a%252fb", "/a%2fb");
	req("/%2541", "/%41");
	/* invalid escapes stay literal, and what follows them is read as usual */
	req("/%zz", "/%zz");
	req("/%2z", "/%2z");
	req("/%2", "/%2");
	req("/%", "/%");
	req("/%%41", "/%A");
	req("/%2%41", "/%2A");
	req("/%g0/../b", "/b");
	req("/a%2/../b", "/b");
	assert_int_equal(scan("GET /a%2\r\nGET /b%\nGET /c%2", 0), 2);
	line_is(0, "/a%2");
	line_is(1, "/b%");
}

static void test_dot_segments(void **state)
{
	(void)state;
	req("/a/./b", "/a/b");
	req("/a/b/..", "/a/");
	req("/a/b/../", "/a/");
	req("/a/b/.", "/a/b/");
	req("/a/..", "/");
	req("/..", "/");
	req("/.", "/");
	req("/", "/");
	req("/../../x", "/x");
	req("/a/../../b/", "/b/");
	req("/a//b///c//", "/a/b/c/");
	req("/a/./../b", "/b");
	req("/a/b/c/../../d", "/a/d");
	req("/a.//.a/.../..a/a../x", "/a./.a/.../..a/a../x");
	req("/a/...", "/a/...");
	req("//..//wp-admin", "/wp-admin");
}

/* A path of n bytes: "/" and n - 1 'a's. */
static char *long_path(char *buf, size_t n)
{
	buf[0] = '/';
	memset(buf + 1, 'a', n - 1);
	buf[n] = '\0';
	return buf;
}

static void test_lengths(void **state)
{
	static const size_t lens[] = {127, 128, 129, 300};
	char path[400], line[600];

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i];

		snprintf(line, sizeof(line), "GET %s HTTP/1.1\r\n", long_path(path, n));
		assert_int_equal(scan(line, 0), 1);
		assert_int_equal(got.p[0].full_len, n);
		assert_int_equal(got.p[0].len, n > 128 ? 128 : n);
		assert_int_equal(got.p[0].truncated, n > 128);
		assert_memory_equal(got.p[0].path, path, got.p[0].len);
	}
	/* '..' pulls a long path back under 128 bytes: matched whole */
	snprintf(line, sizeof(line), "GET %s/../wp-admin HTTP/1.1", long_path(path, 300));
	one(line, "/wp-admin");
	snprintf(line, sizeof(line), "GET /x%s/b/../../y HTTP/1.1", long_path(path, 200));
	one(line, "/x/y");
	/* ... or not under it */
	snprintf(line, sizeof(line), "GET %s/b/.. HTTP/1.1", long_path(path, 200));
	assert_int_equal(scan(line, 0), 1);
	assert_int_equal(got.p[0].full_len, 201);
	assert_true(got.p[0].truncated);
	/* 128 bytes after merging and decoding, from many more on the wire */
	snprintf(line, sizeof(line), "GET //%%61%s HTTP/1.1", long_path(path, 127) + 1);
	assert_int_equal(scan(line, 0), 1);
	assert_int_equal(got.p[0].len, 128);
	assert_false(got.p[0].truncated);
}

static void test_nocase(void **state)
{
	(void)state;
	one_nocase("GET /WP-Admin/X HTTP/1.1", "/wp-admin/x");
	one("GET /WP-Admin/X HTTP/1.1", "/WP-Admin/X");
	one_nocase("GET /%57P-%41dmin HTTP/1.1", "/wp-admin");
	one_nocase("GET HTTP://HOST/A/%2E%2E/B HTTP/1.1", "/b");
	/* only ASCII letters are folded */
	one_nocase("GET /\xc3\x89[Z] ", "/\xc3\x89[z]");
	/* the method stays upper-case */
	assert_int_equal(scan("get /wp-admin ", URLCANON_NOCASE), 0);
}

static void test_many_lines(void **state)
{
	char buf[1024];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "GET /%d HTTP/1.1\r\n\r\n", i);
	/* every line is reported: the per-segment bound of 16 is the caller's */
	assert_int_equal(scan(buf, 0), 17);
	line_is(0, "/0");
	line_is(16, "/16");
	assert_int_equal(got.p[16].line_off, (size_t)(strstr(buf, "GET /16") - buf));
}

static void test_incomplete(void **state)
{
	static const char *const partial[] = {
		"G",	      "GET",	     "GET ",	     "GET \t", "GET /",
		"GET /wp",    "GET /a%",     "GET /a%2",     "GET h",  "GET http:",
		"GET http:/", "GET http://", "GET http://h",
	};
	static const char *const ended[] = {
		"", "\r\n", "x", "GET /a ", "GET /a\r\n", "GET * ", "GET /a%00", "get /a",
	};
	struct urlcanon_tail tail;

	(void)state;
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		assert_int_equal(scan_n(partial[i], strlen(partial[i]), 0, &tail), 0);
		if (!tail.incomplete)
			fail_msg("\"%s\" should end inside a request line", partial[i]);
		assert_int_equal(tail.line_off, 0);
	}
	for (size_t i = 0; i < sizeof(ended) / sizeof(ended[0]); i++) {
		scan_n(ended[i], strlen(ended[i]), 0, &tail);
		if (tail.incomplete)
			fail_msg("\"%s\" should not end inside a request line", ended[i]);
	}
	assert_int_equal(scan_n("GET /a\r\n\r\nPOST /b", 17, 0, &tail), 1);
	assert_true(tail.incomplete);
	assert_int_equal(tail.line_off, 10);
}

static int stop_after_one(const struct urlcanon_path *p, void *ctx)
{
	(void)p;
	return ++*(int *)ctx == 1 ? -ECANCELED : 0;
}

static void test_errors(void **state)
{
	struct urlcanon_path p;
	int calls = 0;

	(void)state;
	assert_int_equal(urlcanon_scan((const uint8_t *)"GET /a ", 7, 2u, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(urlcanon_target((const uint8_t *)"/a", 2, 2u, &p), -EINVAL);
	assert_int_equal(urlcanon_scan((const uint8_t *)"GET /a\nGET /b\n", 14, 0, stop_after_one,
				       &calls, NULL),
			 -ECANCELED);
	assert_int_equal(calls, 1);
	/* without a callback, the lines are only counted */
	assert_int_equal(
		urlcanon_scan((const uint8_t *)"GET /a\nGET /b\n", 14, 0, NULL, NULL, NULL), 2);
}

static void target_is(const char *target, unsigned int flags, const char *want)
{
	struct urlcanon_path p;

	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(urlcanon_target((const uint8_t *)target, strlen(target), flags, &p), 0);
	assert_int_equal(p.len, strlen(want));
	assert_memory_equal(p.path, want, p.len);
	assert_false(p.truncated);
	assert_int_equal(p.line_off, 0);
}

static void test_target(void **state)
{
	static const char *const bad[] = {
		"", "*", "host:443", "http:", "http:/x", "wp-admin", "?/a", " /a"};
	struct urlcanon_path p;

	(void)state;
	target_is("/a/../b?x=/c", 0, "/b");
	target_is("//wp-admin", 0, "/wp-admin");
	target_is("/A/%2e%2e/B", URLCANON_NOCASE, "/b");
	target_is("/a%2", 0, "/a%2");
	target_is("/a%", 0, "/a%");
	target_is("http://h", 0, "/");
	target_is("http://h/", 0, "/");
	target_is("HTTPS://u@h:1/WP-admin/.", 0, "/WP-admin/");
	target_is("/a b", 0, "/a");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (urlcanon_target((const uint8_t *)bad[i], strlen(bad[i]), 0, &p) != -EINVAL)
			fail_msg("target \"%s\" should be -EINVAL", bad[i]);
}

/*
 * Properties on random request lines: a canonical path starts with '/', holds no empty, "."
 * or ".." segment, and canonicalising it again (when it holds no '%' nor byte that ends a
 * path) gives it back; a scan sees the same lines whatever comes after a complete line.
 */
static void test_invariants(void **state)
{
	static const char alphabet[] = "//..%%2fFe0aAzZ?# \t\x80-"; /* no line break */
	const struct urlcanon_path *p = &got.p[0];
	uint64_t x = 88172645463325252ull;
	char line[128];

	(void)state;
	for (int round = 0; round < 50000; round++) {
		struct urlcanon_path again;
		size_t n = 4, len = (size_t)(round % 40);
		bool plain = true;

		memcpy(line, "GET /", 5);
		for (size_t k = 0; k < len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			line[++n] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		line[++n] = ' ';
		if (scan_n(line, n + 1, round & 1 ? URLCANON_NOCASE : 0, NULL) != 1)
			fail_msg("\"%.*s\": not exactly one request line", (int)n + 1, line);

		assert_true(p->len >= 1 && p->path[0] == '/' && !p->truncated);
		for (size_t k = 0; k < p->len; k++) {
			bool seg_start = p->path[k] == '/';
			size_t e = k + 1;

			if (memchr("% \t\r\n?#", p->path[k], 7))
				plain = false;
			if (!seg_start)
				continue;
			while (e < p->len && p->path[e] != '/')
				e++;
			if (e < p->len || e > k + 1) /* a segment that is not the trailing "" */
				if (e == k + 1 || (e == k + 2 && p->path[k + 1] == '.') ||
				    (e == k + 3 && p->path[k + 1] == '.' && p->path[k + 2] == '.'))
					fail_msg("\"%.*s\": canonical \"%.*s\" has a segment to "
						 "remove",
						 (int)n + 1, line, (int)p->len,
						 (const char *)p->path);
		}
		if (!plain)
			continue;
		assert_int_equal(urlcanon_target(p->path, p->len, 0, &again), 0);
		assert_int_equal(again.len, p->len);
		assert_memory_equal(again.path, p->path, p->len);
	}
}

/* A path as text: never a control byte, a space or a backslash as it is. */
static void test_escape(void **state)
{
	const uint8_t p[] = "/a b\r\nbanned 1.2.3.4\\\x01\xff'";
	char out[4 * sizeof(p) + 4];

	(void)state;
	urlcanon_escape(p, sizeof(p) - 1, false, out, sizeof(out));
	assert_string_equal(out, "/a\\x20b\\x0d\\x0abanned\\x201.2.3.4\\x5c\\x01\\xff'");
	urlcanon_escape((const uint8_t *)"/wp-admin", 9, true, out, sizeof(out));
	assert_string_equal(out, "/wp-admin...");
	/* cut where the buffer ends, never inside an escape */
	urlcanon_escape((const uint8_t *)"/\n\n", 3, false, out, 7);
	assert_string_equal(out, "/\\x0a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_examples),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_spaces_and_targets),
		cmocka_unit_test(test_absolute_form),
		cmocka_unit_test(test_path_terminators),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_decoding),
		cmocka_unit_test(test_dot_segments),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_nocase),
		cmocka_unit_test(test_many_lines),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_invariants),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
