// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* How URL patterns become url_rules entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "mapconf.h"

static void prefix_pattern_drops(void **state)
{
	struct ebpfmon_url_key key;
	struct ebpfmon_url_rule rule;

	(void)state;
	mapconf_url_rule("/wp-admin", 3, &key, &rule);
	assert_int_equal(key.prefixlen, 9 * 8);
	assert_memory_equal(key.path, "/wp-admin", 9);
	assert_int_equal(key.path[9], 0);
	assert_int_equal(rule.id, 3);
	assert_int_equal(rule.action, EBPFMON_URL_DROP);
}

static void glob_reports_its_literal_prefix(void **state)
{
	struct ebpfmon_url_key key;
	struct ebpfmon_url_rule rule;

	(void)state;
	mapconf_url_rule("/cgi-bin/*.sh", 1, &key, &rule);
	assert_int_equal(key.prefixlen, 9 * 8);
	assert_memory_equal(key.path, "/cgi-bin/", 9);
	assert_int_equal(rule.action, EBPFMON_URL_REPORT);
}

static void leading_star_matches_every_path(void **state)
{
	struct ebpfmon_url_key key;
	struct ebpfmon_url_rule rule;

	(void)state;
	mapconf_url_rule("*.php", 2, &key, &rule);
	assert_int_equal(key.prefixlen, 0);
	assert_int_equal(rule.action, EBPFMON_URL_REPORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prefix_pattern_drops),
		cmocka_unit_test(glob_reports_its_literal_prefix),
		cmocka_unit_test(leading_star_matches_every_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
