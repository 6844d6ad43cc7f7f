// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Address and network helpers: parse, print, contain, and the LPM key the kernel sees. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

/* Parse s, print it back and expect want. */
static void round_trip(const char *s, const char *want)
{
	struct ebpfmon_addr a;
	char buf[ADDR_STRLEN];

	assert_int_equal(addr_parse(s, &a), 0);
	assert_ptr_equal(addr_format(&a, buf, sizeof(buf)), buf);
	assert_string_equal(buf, want);
}

static void test_ipv4_mapped(void **state)
{
	static const unsigned char want[16] = {0, 0, 0,	   0,	 0,   0, 0, 0,
					       0, 0, 0xff, 0xff, 192, 0, 2, 1};
	struct ebpfmon_addr a, b;

	(void)state;
	assert_int_equal(addr_parse("192.0.2.1", &a), 0);
	assert_memory_equal(a.a, want, 16);
	assert_true(addr_is_v4(&a));

	addr_from_v4(htonl(0xc0000201), &b);
	assert_memory_equal(b.a, want, 16);

	/* the IPv6 spelling of the same address is the same key */
	assert_int_equal(addr_parse("::ffff:192.0.2.1", &b), 0);
	assert_memory_equal(b.a, want, 16);

	round_trip("192.0.2.1", "192.0.2.1");
	round_trip("0.0.0.0", "0.0.0.0");
	round_trip("255.255.255.255", "255.255.255.255");
	round_trip("::ffff:198.18.0.1", "198.18.0.1");
	round_trip("::ffff:c612:1", "198.18.0.1");
}

static void test_ipv6(void **state)
{
	struct ebpfmon_addr a;

	(void)state;
	assert_int_equal(addr_parse("2001:db8::1", &a), 0);
	assert_false(addr_is_v4(&a));
	assert_int_equal(a.a[0], 0x20);
	assert_int_equal(a.a[1], 0x01);
	assert_int_equal(a.a[15], 0x01);

	round_trip("2001:db8::1", "2001:db8::1");
	round_trip("::1", "::1");
	round_trip("::", "::");
	round_trip("fe80::1:2", "fe80::1:2");
}

/* RFC 5952: lower case, no leading zeros, the longest (then first) zero run as "::", never a
 * single zero group, IPv4 embedded only for mapped addresses. */
static void test_rfc5952(void **state)
{
	(void)state;
	round_trip("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
	round_trip("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
	round_trip("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
	round_trip("2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0");
	round_trip("2001:db8:1:0:0:0:0:0", "2001:db8:1::");
	round_trip("2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::");
	round_trip("0:0:0:0:0:0:0:2", "::2");
	/* ::/96 (the deprecated IPv4-compatible form): hex groups, not a dotted quad */
	round_trip("::1.2.3.4", "::102:304");
	round_trip("::1:0", "::1:0");
	/* SIIT ::ffff:0:a.b.c.d is not IPv4-mapped */
	round_trip("::ffff:0:1.2.3.4", "::ffff:0:102:304");
}

static void test_bad_addresses(void **state)
{
	static const char *const bad[] = {
		"1.2.3",      "1.2.3.4.5",  "256.1.1.1",    "::g",	"",
		"1.2.3.4/33", "1.2.3.4/24", " 1.2.3.4",	    "1.2.3.4 ", "01.2.3.4",
		"1::2::3",    "[::1]",	    "fe80::1%eth0", "1.2.3.-4", "::ffff:1.2.3.256",
		"12345::",    "localhost",  "1.2.3.4\n",
	};
	struct ebpfmon_addr a;
	size_t i;

	(void)state;
	memset(&a, 0xaa, sizeof(a));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (addr_parse(bad[i], &a) != -EINVAL)
			fail_msg("addr_parse(\"%s\") accepted", bad[i]);
	}
	assert_int_equal(addr_parse(NULL, &a), -EINVAL);
	/* nothing written on failure */
	for (i = 0; i < sizeof(a.a); i++)
		assert_int_equal(a.a[i], 0xaa);
}

static void test_format_small_buffer(void **state)
{
	struct ebpfmon_addr a;
	char buf[6];

	(void)state;
	assert_int_equal(addr_parse("192.0.2.1", &a), 0);
	assert_string_equal(addr_format(&a, buf, sizeof(buf)), "192.0");
}

static void cidr_round_trip(const char *s, const char *want, uint32_t prefixlen)
{
	struct addr_cidr c;
	char buf[ADDR_STRLEN];

	if (cidr_parse(s, &c))
		fail_msg("cidr_parse(\"%s\") refused", s);
	assert_int_equal(c.prefixlen, prefixlen);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), want);
}

static void test_cidr_parse_format(void **state)
{
	(void)state;
	cidr_round_trip("192.0.2.0/24", "192.0.2.0/24", 120);
	cidr_round_trip("198.18.0.0/15", "198.18.0.0/15", 111);
	cidr_round_trip("0.0.0.0/0", "0.0.0.0/0", 96);
	cidr_round_trip("192.0.2.7/32", "192.0.2.7", 128);
	cidr_round_trip("192.0.2.7", "192.0.2.7", 128);
	cidr_round_trip("2001:db8::/32", "2001:db8::/32", 32);
	cidr_round_trip("2001:DB8:0::/48", "2001:db8::/48", 48);
	cidr_round_trip("::/0", "::/0", 0);
	cidr_round_trip("::1", "::1", 128);
	cidr_round_trip("::1/128", "::1", 128);
	/* the IPv6 spelling of an IPv4 network is the same network */
	cidr_round_trip("::ffff:192.0.2.0/120", "192.0.2.0/24", 120);
	cidr_round_trip("::ffff:0.0.0.0/96", "0.0.0.0/0", 96);
}

static void test_cidr_bad(void **state)
{
	static const char *const bad[] = {
		"1.2.3.4/33",	  "2001:db8::/129", "192.0.2.0/",    "192.0.2.0/-1", "192.0.2.0/+8",
		"192.0.2.0/ 8",	  "192.0.2.0/8/8",  "192.0.2.0/0x8", "/24",	     "",
		"192.0.2.0/0024", "1.2.3/24",	    "::g/64",	     "192.0.2.0/a",
	};
	struct addr_cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cidr_parse(bad[i], &c) != -EINVAL)
			fail_msg("cidr_parse(\"%s\") accepted", bad[i]);
	}
	assert_int_equal(cidr_parse(NULL, &c), -EINVAL);
}

static void test_cidr_host_bits(void **state)
{
	struct addr_cidr c;
	char buf[ADDR_STRLEN];

	(void)state;
	/* a typo must not silently widen the network */
	assert_int_equal(cidr_parse("192.0.2.1/16", &c), -EINVAL);
	assert_int_equal(cidr_parse("2001:db8::1/32", &c), -EINVAL);
	assert_int_equal(cidr_parse("::ffff:1.2.3.4/24", &c), -EINVAL);

	/* the loose form clears them and says so */
	assert_int_equal(cidr_parse_loose("192.0.2.1/16", &c), 1);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), "192.0.0.0/16");
	assert_int_equal(cidr_parse_loose("2001:db8:ffff::1/33", &c), 1);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), "2001:db8:8000::/33");
	assert_int_equal(cidr_parse_loose("192.0.2.0/24", &c), 0);
	assert_int_equal(cidr_parse_loose("192.0.2.0/33", &c), -EINVAL);
}

static void test_cidr_contains(void **state)
{
	struct ebpfmon_addr a;
	struct addr_cidr c;

	(void)state;
	assert_int_equal(cidr_parse("192.0.2.0/24", &c), 0);
	assert_int_equal(addr_parse("192.0.2.0", &a), 0);
	assert_true(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("192.0.2.255", &a), 0);
	assert_true(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("192.0.3.0", &a), 0);
	assert_false(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("2001:db8::c000:201", &a), 0);
	assert_false(cidr_contains(&c, &a));

	/* 0.0.0.0/0 is every IPv4 address and no IPv6 one */
	assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
	assert_int_equal(addr_parse("203.0.113.9", &a), 0);
	assert_true(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("2001:db8::1", &a), 0);
	assert_false(cidr_contains(&c, &a));

	/* ::/0 is everything, both families */
	assert_int_equal(cidr_parse("::/0", &c), 0);
	assert_true(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("203.0.113.9", &a), 0);
	assert_true(cidr_contains(&c, &a));

	/* a prefix that ends inside a byte */
	assert_int_equal(cidr_parse("198.18.0.0/15", &c), 0);
	assert_int_equal(addr_parse("198.19.255.255", &a), 0);
	assert_true(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("198.20.0.0", &a), 0);
	assert_false(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("198.17.255.255", &a), 0);
	assert_false(cidr_contains(&c, &a));

	/* a host route */
	assert_int_equal(cidr_parse("2001:db8::7", &c), 0);
	assert_int_equal(addr_parse("2001:db8::7", &a), 0);
	assert_true(cidr_contains(&c, &a));
	assert_int_equal(addr_parse("2001:db8::6", &a), 0);
	assert_false(cidr_contains(&c, &a));
}

static void test_lpm_key(void **state)
{
	static const unsigned char want4[16] = {0, 0, 0,    0,	  0,   0, 0, 0,
						0, 0, 0xff, 0xff, 192, 0, 2, 0};
	static const unsigned char want6[16] = {0x20, 0x01, 0x0d, 0xb8};
	struct ebpfmon_lpm_key key;
	struct addr_cidr c;

	(void)state;
	assert_int_equal(cidr_parse("192.0.2.0/24", &c), 0);
	memset(&key, 0xaa, sizeof(key));
	cidr_to_lpm_key(&c, &key);
	assert_int_equal(key.prefixlen, 120);
	assert_memory_equal(key.a, want4, 16);

	assert_int_equal(cidr_parse("2001:db8::/32", &c), 0);
	cidr_to_lpm_key(&c, &key);
	assert_int_equal(key.prefixlen, 32);
	assert_memory_equal(key.a, want6, 16);

	assert_int_equal(cidr_parse("192.0.2.9", &c), 0);
	cidr_to_lpm_key(&c, &key);
	assert_int_equal(key.prefixlen, 128);
	assert_int_equal(key.a[15], 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_mapped),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_rfc5952),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_cidr_parse_format),
		cmocka_unit_test(test_cidr_bad),
		cmocka_unit_test(test_cidr_host_bits),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_lpm_key),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
