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
	mapconf_url_rule("/wp-admin", 3, false, &key, &rule);
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
	mapconf_url_rule("/cgi-bin/*.sh", 1, false, &key, &rule);
	assert_int_equal(key.prefixlen, 9 * 8);
	assert_memory_equal(key.path, "/cgi-bin/", 9);
	assert_int_equal(rule.action, EBPFMON_URL_REPORT);
}

static void leading_star_matches_every_path(void **state)
{
	struct ebpfmon_url_key key;
	struct ebpfmon_url_rule rule;

	(void)state;
	mapconf_url_rule("*.php", 2, false, &key, &rule);
	assert_int_equal(key.prefixlen, 0);
	assert_int_equal(rule.action, EBPFMON_URL_REPORT);
}

static void nocase_rules_are_lower_case(void **state)
{
	struct ebpfmon_url_key key;
	struct ebpfmon_url_rule rule;

	(void)state;
	mapconf_url_rule("/WP-Admin/X*", 4, true, &key, &rule);
	assert_int_equal(key.prefixlen, 11 * 8);
	assert_memory_equal(key.path, "/wp-admin/x", 11);
	assert_int_equal(rule.action, EBPFMON_URL_REPORT);
	mapconf_url_rule("/WP-Admin", 4, false, &key, &rule); /* case kept without nocase */
	assert_memory_equal(key.path, "/WP-Admin", 9);
}

static void settings_flags_follow_the_config(void **state)
{
	struct ebpfmon_settings set;
	struct config cfg;

	(void)state;
	config_defaults(&cfg); /* ports 80, 8080; 4 patterns; drop unseen; case-sensitive */
	mapconf_settings(&cfg, 0, &set);
	assert_int_equal(set.max_conn_per_ip, 100);
	assert_int_equal(set.http_ports[0], 80);
	assert_int_equal(set.http_ports[1], 8080);
	assert_int_equal(set.http_ports[2], 0);
	assert_int_equal(set.flags, EBPFMON_F_URL_MATCH | EBPFMON_F_DROP_UNSEEN);

	cfg.url_case_insensitive = true;
	cfg.url_drop_unseen = false;
	cfg.dry_run = true;
	mapconf_settings(&cfg, 0, &set);
	assert_int_equal(set.flags, EBPFMON_F_URL_MATCH | EBPFMON_F_URL_NOCASE | EBPFMON_F_DRY_RUN);
}

static void settings_keep_ban_nets_and_nothing_else(void **state)
{
	struct ebpfmon_settings set;
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	/* the old settings said dry run and ban_nets in use: only the latter survives */
	mapconf_settings(&cfg, EBPFMON_F_BAN_NETS | EBPFMON_F_DRY_RUN | EBPFMON_F_URL_NOCASE, &set);
	assert_int_equal(set.flags,
			 EBPFMON_F_URL_MATCH | EBPFMON_F_DROP_UNSEEN | EBPFMON_F_BAN_NETS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prefix_pattern_drops),
		cmocka_unit_test(glob_reports_its_literal_prefix),
		cmocka_unit_test(leading_star_matches_every_path),
		cmocka_unit_test(nocase_rules_are_lower_case),
		cmocka_unit_test(settings_flags_follow_the_config),
		cmocka_unit_test(settings_keep_ban_nets_and_nothing_else),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
