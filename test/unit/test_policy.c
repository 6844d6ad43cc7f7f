// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Ban policy arithmetic and URL matching, without maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "policy.h"

static void set_patterns(struct config *cfg, const char *const *pats, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		snprintf(cfg->url_patterns[i], sizeof(cfg->url_patterns[i]), "%s", pats[i]);
	cfg->n_url_patterns = n;
}

static void duration_escalates_and_caps(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg); /* 60 min, factor 2, cap 10080 min */
	assert_int_equal(policy_duration_s(&cfg, 0), 3600);
	assert_int_equal(policy_duration_s(&cfg, 1), 7200);
	assert_int_equal(policy_duration_s(&cfg, 3), 28800);
	assert_int_equal(policy_duration_s(&cfg, 7), 460800); /* 128 h */
	assert_int_equal(policy_duration_s(&cfg, 8), 604800); /* 256 h, capped at a week */
	assert_int_equal(policy_duration_s(&cfg, 1000), 604800);
	cfg.ban_escalation_factor = 1;
	assert_int_equal(policy_duration_s(&cfg, 5), 3600);
}

static void duration_permanent_and_seconds(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	cfg.ban_duration_minutes = 0;
	assert_int_equal(policy_duration_s(&cfg, 0), 0);
	assert_int_equal(policy_duration_s(&cfg, 4), 0);
	cfg.ban_duration_seconds = 5; /* [testing] replaces the minutes */
	assert_int_equal(policy_duration_s(&cfg, 0), 5);
	assert_int_equal(policy_duration_s(&cfg, 2), 20);
}

static void url_prefix_and_glob(void **state)
{
	static const char *const pats[] = { "/wp-admin", "*.php", "/cgi-bin/*.sh" };
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	set_patterns(&cfg, pats, 3);
	assert_string_equal(policy_url_match(&cfg, "/wp-admin/install.php"), "/wp-admin");
	assert_string_equal(policy_url_match(&cfg, "/index.php"), "*.php");
	assert_string_equal(policy_url_match(&cfg, "/a/b/c.php"), "*.php"); /* '*' spans '/' */
	assert_string_equal(policy_url_match(&cfg, "/cgi-bin/x/y.sh"), "/cgi-bin/*.sh");
	assert_null(policy_url_match(&cfg, "/index.html"));
	assert_null(policy_url_match(&cfg, "/WP-ADMIN")); /* case-sensitive */
	assert_null(policy_url_match(&cfg, "/index.PHP"));
	assert_null(policy_url_match(&cfg, "/cgi-bin/x.py"));

	cfg.url_case_insensitive = true; /* prefix and glob alike */
	assert_string_equal(policy_url_match(&cfg, "/WP-ADMIN"), "/wp-admin");
	assert_string_equal(policy_url_match(&cfg, "/index.PHP"), "*.php");
	assert_string_equal(policy_url_match(&cfg, "/CGI-BIN/x/Y.SH"), "/cgi-bin/*.sh");
	assert_null(policy_url_match(&cfg, "/index.html"));
}

static void decide_allowlist_banned_dry_run(void **state)
{
	struct config cfg;
	struct ebpfmon_addr a, lo, inside;

	(void)state;
	config_defaults(&cfg); /* allowlist 127.0.0.0/8, ::1 */
	assert_int_equal(addr_parse("198.51.100.7", &a), 0);
	assert_int_equal(addr_parse("127.0.0.1", &lo), 0);
	assert_int_equal(policy_decide(&cfg, &a, false), POLICY_BAN);
	assert_int_equal(policy_decide(&cfg, &a, true), POLICY_SKIP_BANNED);
	assert_int_equal(policy_decide(&cfg, &lo, false), POLICY_SKIP_ALLOWED);
	assert_int_equal(policy_decide(&cfg, &lo, true), POLICY_SKIP_ALLOWED);

	assert_int_equal(cidr_parse("198.51.100.0/24", &cfg.allowlist[cfg.n_allowlist++]), 0);
	assert_int_equal(addr_parse("198.51.100.200", &inside), 0);
	assert_int_equal(policy_decide(&cfg, &inside, false), POLICY_SKIP_ALLOWED);

	cfg.dry_run = true;
	assert_int_equal(addr_parse("203.0.113.9", &a), 0);
	assert_int_equal(policy_decide(&cfg, &a, false), POLICY_WOULD_BAN);
	assert_int_equal(policy_decide(&cfg, &a, true), POLICY_SKIP_BANNED);
	assert_int_equal(policy_decide(&cfg, &inside, false), POLICY_SKIP_ALLOWED);
}

static void escalation_network(void **state)
{
	struct ebpfmon_addr a;
	struct addr_cidr net;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(addr_parse("198.51.100.77", &a), 0);
	policy_escalation_net(&a, &net);
	assert_string_equal(cidr_format(&net, buf, sizeof(buf)), "198.51.100.0/24");
	assert_int_equal(addr_parse("2001:db8:1:2:3:4:5:6", &a), 0);
	policy_escalation_net(&a, &net);
	assert_string_equal(cidr_format(&net, buf, sizeof(buf)), "2001:db8:1:2::/64");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(duration_escalates_and_caps),
		cmocka_unit_test(duration_permanent_and_seconds),
		cmocka_unit_test(url_prefix_and_glob),
		cmocka_unit_test(decide_allowlist_banned_dry_run),
		cmocka_unit_test(escalation_network),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
