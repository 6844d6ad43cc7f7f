// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Configuration: defaults, the shipped file, every value type, and the exact message an
 * operator sees for every kind of mistake, with its file and line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>

#include "config.h"

#ifndef EBPFMON_CONF_PATH
#error "EBPFMON_CONF_PATH must name the shipped conf/ebpfmon.conf"
#endif

#define ERR_BIG 8192

static char conf_path[64];

/* Write content to a fresh temporary file; its name is in conf_path. */
static void write_conf(const char *content)
{
	size_t len = strlen(content);
	int fd;

	snprintf(conf_path, sizeof(conf_path), "/tmp/ebpfmon-unit-XXXXXX");
	fd = mkstemp(conf_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* config_load() of content, from a temporary file that is gone afterwards. */
static int load(const char *content, struct config *cfg, char *err, size_t errlen)
{
	int ret;

	write_conf(content);
	ret = config_load(conf_path, cfg, err, errlen);
	unlink(conf_path);
	return ret;
}

/* want with every "FILE" replaced by the temporary file's name. */
static void expand(const char *want, char *out, size_t len)
{
	size_t o = 0, plen = strlen(conf_path);

	while (*want && o + plen + 1 < len) {
		if (!strncmp(want, "FILE", 4)) {
			memcpy(out + o, conf_path, plen);
			o += plen;
			want += 4;
		} else {
			out[o++] = *want++;
		}
	}
	out[o] = '\0';
}

/* Loading content fails with -EINVAL, leaves cfg alone, and err is exactly want. */
static void expect_errors(const char *content, const char *want)
{
	static char err[ERR_BIG], expected[ERR_BIG];
	struct config cfg, before;

	memset(&cfg, 0x5a, sizeof(cfg));
	before = cfg;
	assert_int_equal(load(content, &cfg, err, sizeof(err)), -EINVAL);
	expand(want, expected, sizeof(expected));
	assert_string_equal(err, expected);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

/* Loading content succeeds, with no message. */
static void expect_ok(const char *content, struct config *cfg)
{
	static char err[ERR_BIG];

	strcpy(err, "not cleared");
	if (load(content, cfg, err, sizeof(err)))
		fail_msg("config refused:\n%s\n---\n%s", content, err);
	assert_string_equal(err, "");
}

static void assert_config_equal(const struct config *a, const struct config *b)
{
	unsigned int i;

	assert_int_equal(a->max_connections_per_ip, b->max_connections_per_ip);
	assert_int_equal(a->ban_duration_s, b->ban_duration_s);
	assert_int_equal(a->monitoring_interval_ms, b->monitoring_interval_ms);
	assert_int_equal(a->ban_max_duration_s, b->ban_max_duration_s);
	assert_int_equal(a->n_url_patterns, b->n_url_patterns);
	for (i = 0; i < a->n_url_patterns; i++)
		assert_string_equal(a->url_patterns[i], b->url_patterns[i]);
	assert_int_equal(a->n_interfaces, b->n_interfaces);
	for (i = 0; i < a->n_interfaces; i++)
		assert_string_equal(a->interfaces[i], b->interfaces[i]);
	assert_int_equal(a->n_http_ports, b->n_http_ports);
	for (i = 0; i < a->n_http_ports; i++)
		assert_int_equal(a->http_ports[i], b->http_ports[i]);
	assert_int_equal(a->n_allowlist, b->n_allowlist);
	for (i = 0; i < a->n_allowlist; i++) {
		assert_int_equal(a->allowlist[i].prefixlen, b->allowlist[i].prefixlen);
		assert_memory_equal(&a->allowlist[i].addr, &b->allowlist[i].addr, 16);
	}
	assert_int_equal(a->max_tracked_ips, b->max_tracked_ips);
	assert_int_equal(a->dry_run, b->dry_run);
	assert_int_equal(a->url_case_insensitive, b->url_case_insensitive);
	assert_int_equal(a->url_drop_unseen, b->url_drop_unseen);
	assert_int_equal(a->max_bans, b->max_bans);
	assert_int_equal(a->cpu_threshold_percent, b->cpu_threshold_percent);
	assert_int_equal(a->memory_threshold_percent, b->memory_threshold_percent);
	assert_int_equal(a->disk_io_threshold_mbps, b->disk_io_threshold_mbps);
	assert_string_equal(a->uds_socket_path, b->uds_socket_path);
	assert_string_equal(a->listen_address, b->listen_address);
	assert_string_equal(a->metrics_address, b->metrics_address);
	assert_string_equal(a->admin_group, b->admin_group);
	assert_string_equal(a->sqlite_path, b->sqlite_path);
	assert_int_equal(a->max_records, b->max_records);
	assert_string_equal(a->pin_root, b->pin_root);
	assert_string_equal(a->user, b->user);
	assert_string_equal(a->group, b->group);
	assert_int_equal(a->xdp_mode, b->xdp_mode);
	/* unused list slots are zero on both sides too */
	assert_memory_equal(a, b, sizeof(*a));
}

static const char *cidr_str(const struct addr_cidr *c)
{
	static char buf[4][ADDR_STRLEN];
	static int i;

	i = (i + 1) % 4;
	return cidr_format(c, buf[i], sizeof(buf[i]));
}

/* ---- defaults and good files -------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(cfg.max_connections_per_ip, 100);
	assert_int_equal(cfg.ban_duration_s, 3600);
	assert_int_equal(cfg.monitoring_interval_ms, 10000);
	assert_int_equal(cfg.ban_max_duration_s, 7 * 86400);
	assert_int_equal(cfg.ban_escalation_factor, 2);
	assert_int_equal(cfg.n_url_patterns, 4);
	assert_string_equal(cfg.url_patterns[0], "/admin");
	assert_string_equal(cfg.url_patterns[1], "/wp-admin");
	assert_string_equal(cfg.url_patterns[2], "/.env");
	assert_string_equal(cfg.url_patterns[3], "/config");
	assert_int_equal(cfg.n_interfaces, 0);
	assert_int_equal(cfg.n_http_ports, 2);
	assert_int_equal(cfg.http_ports[0], 80);
	assert_int_equal(cfg.http_ports[1], 8080);
	assert_int_equal(cfg.n_allowlist, 2);
	assert_string_equal(cidr_str(&cfg.allowlist[0]), "127.0.0.0/8");
	assert_int_equal(cfg.allowlist[0].prefixlen, 104);
	assert_string_equal(cidr_str(&cfg.allowlist[1]), "::1");
	assert_int_equal(cfg.allowlist[1].prefixlen, 128);
	assert_int_equal(cfg.max_tracked_ips, 65536);
	assert_false(cfg.dry_run);
	assert_false(cfg.url_case_insensitive);
	assert_true(cfg.url_drop_unseen);
	assert_int_equal(cfg.max_bans, 65536);
	assert_int_equal(cfg.cpu_threshold_percent, 80);
	assert_int_equal(cfg.memory_threshold_percent, 85);
	assert_int_equal(cfg.disk_io_threshold_mbps, 100);
	assert_string_equal(cfg.uds_socket_path, "/run/ebpfmon/api.sock");
	assert_string_equal(cfg.listen_address, "");
	assert_string_equal(cfg.metrics_address, "");
	assert_string_equal(cfg.admin_group, "ebpfmon-admin");
	assert_string_equal(cfg.sqlite_path, "/var/lib/ebpfmon/ebpfmon.db");
	assert_int_equal(cfg.max_records, 10000);
	assert_string_equal(cfg.pin_root, "/sys/fs/bpf/ebpfmon");
	assert_string_equal(cfg.user, "ebpfmon");
	assert_string_equal(cfg.group, "ebpfmon");
	assert_int_equal(cfg.xdp_mode, CONFIG_XDP_AUTO);
}

static void test_shipped_conf_is_defaults(void **state)
{
	struct config cfg, def;
	char err[CONFIG_ERR_MAX];

	(void)state;
	memset(&cfg, 0x5a, sizeof(cfg));
	if (config_load(EBPFMON_CONF_PATH, &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(err, "");
	config_defaults(&def);
	assert_config_equal(&cfg, &def);
}

static void test_empty_file_is_defaults(void **state)
{
	struct config cfg, def;

	(void)state;
	memset(&cfg, 0x5a, sizeof(cfg));
	expect_ok("", &cfg);
	config_defaults(&def);
	assert_config_equal(&cfg, &def);

	expect_ok("# nothing but comments\n; and more\n\n[network]\n[loader]\n", &cfg);
	assert_config_equal(&cfg, &def);
}

static void test_every_key(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok("[network]\n"
		  "max_connections_per_ip = 1000000\n"
		  "ban_duration = 0\n"
		  "monitoring_interval = 1d\n"
		  "ban_max_duration = 3650d\n"
		  "malicious_url_patterns = /phpmyadmin, *.php, /cgi-bin/*\n"
		  "interfaces = eth0, veth-peer.1, br@0:x, wlp0s20f3_a\n"
		  "http_ports = 1, 65535, 8443\n"
		  "allowlist = 192.0.2.0/24, 2001:db8::/32, 198.18.0.1\n"
		  "max_tracked_ips = 1024\n"
		  "dry_run = yes\n"
		  "url_case_insensitive = yes\n"
		  "url_drop_unseen = off\n"
		  "max_bans = 4194304\n"
		  "[system]\n"
		  "cpu_threshold_percent = 1\n"
		  "memory_threshold_percent = 100\n"
		  "disk_io_threshold_mbps = 1000000\n"
		  "[api]\n"
		  "uds_socket_path = ipc:///tmp/ebpfmon test/api.sock\n"
		  "listen_address = tcp6://[::1]:9091\n"
		  "metrics_address = http://[::1]:9464\n"
		  "admin_group = wheel\n"
		  "[database]\n"
		  "sqlite_path = /srv/ebpfmon.db\n"
		  "max_records = 100000000\n"
		  "[loader]\n"
		  "pin_root = /sys/fs/bpf/other\n"
		  "user = _ebpfmon\n"
		  "group = adm.grp-1\n"
		  "xdp_mode = generic\n",
		  &cfg);
	assert_int_equal(cfg.max_connections_per_ip, 1000000);
	assert_int_equal(cfg.ban_duration_s, 0);
	assert_int_equal(cfg.monitoring_interval_ms, 86400000);
	assert_int_equal(cfg.ban_max_duration_s, 3650u * 86400);
	assert_int_equal(cfg.n_url_patterns, 3);
	assert_string_equal(cfg.url_patterns[0], "/phpmyadmin");
	assert_string_equal(cfg.url_patterns[1], "*.php");
	assert_string_equal(cfg.url_patterns[2], "/cgi-bin/*");
	assert_string_equal(cfg.url_patterns[3], ""); /* the default's 4th slot is cleared */
	assert_int_equal(cfg.n_interfaces, 4);
	assert_string_equal(cfg.interfaces[0], "eth0");
	assert_string_equal(cfg.interfaces[1], "veth-peer.1");
	assert_string_equal(cfg.interfaces[2], "br@0:x");
	assert_string_equal(cfg.interfaces[3], "wlp0s20f3_a");
	assert_int_equal(cfg.n_http_ports, 3);
	assert_int_equal(cfg.http_ports[0], 1);
	assert_int_equal(cfg.http_ports[1], 65535);
	assert_int_equal(cfg.http_ports[2], 8443);
	assert_int_equal(cfg.n_allowlist, 3);
	assert_string_equal(cidr_str(&cfg.allowlist[0]), "192.0.2.0/24");
	assert_string_equal(cidr_str(&cfg.allowlist[1]), "2001:db8::/32");
	assert_string_equal(cidr_str(&cfg.allowlist[2]), "198.18.0.1");
	assert_int_equal(cfg.max_tracked_ips, 1024);
	assert_true(cfg.dry_run);
	assert_true(cfg.url_case_insensitive);
	assert_false(cfg.url_drop_unseen);
	assert_int_equal(cfg.max_bans, 4194304);
	assert_int_equal(cfg.cpu_threshold_percent, 1);
	assert_int_equal(cfg.memory_threshold_percent, 100);
	assert_int_equal(cfg.disk_io_threshold_mbps, 1000000);
	assert_string_equal(cfg.uds_socket_path, "/tmp/ebpfmon test/api.sock");
	assert_string_equal(cfg.listen_address, "tcp6://[::1]:9091");
	assert_string_equal(cfg.metrics_address, "http://[::1]:9464");
	assert_string_equal(cfg.admin_group, "wheel");
	assert_string_equal(cfg.sqlite_path, "/srv/ebpfmon.db");
	assert_int_equal(cfg.max_records, 100000000);
	assert_string_equal(cfg.pin_root, "/sys/fs/bpf/other");
	assert_string_equal(cfg.user, "_ebpfmon");
	assert_string_equal(cfg.group, "adm.grp-1");
	assert_int_equal(cfg.xdp_mode, CONFIG_XDP_GENERIC);
}

static void test_bools(void **state)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
	static const char *const no[] = {"false", "no", "off", "0", "False", "OFF"};
	char text[128];
	struct config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "[network]\ndry_run = %s\n", yes[i]);
		expect_ok(text, &cfg);
		assert_true(cfg.dry_run);
		snprintf(text, sizeof(text), "[network]\ndry_run = %s\n", no[i]);
		expect_ok(text, &cfg);
		assert_false(cfg.dry_run);
	}
}

static void test_xdp_modes(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok("[loader]\nxdp_mode = native\n", &cfg);
	assert_int_equal(cfg.xdp_mode, CONFIG_XDP_NATIVE);
	expect_ok("[loader]\nxdp_mode = generic\n", &cfg);
	assert_int_equal(cfg.xdp_mode, CONFIG_XDP_GENERIC);
	expect_ok("[loader]\nxdp_mode = auto\n", &cfg);
	assert_int_equal(cfg.xdp_mode, CONFIG_XDP_AUTO);
	expect_ok("[loader]\nxdp_mode = tc\n", &cfg);
	assert_int_equal(cfg.xdp_mode, CONFIG_XDP_TC);

	assert_string_equal(config_xdp_mode_name(CONFIG_XDP_AUTO), "auto");
	assert_string_equal(config_xdp_mode_name(CONFIG_XDP_NATIVE), "native");
	assert_string_equal(config_xdp_mode_name(CONFIG_XDP_GENERIC), "generic");
	assert_string_equal(config_xdp_mode_name(CONFIG_XDP_TC), "tc");
	assert_string_equal(config_xdp_mode_name((enum config_xdp_mode)7), "unknown");
}

static void test_lists(void **state)
{
	struct config cfg;

	(void)state;
	/* a given list replaces the default, it does not add to it */
	expect_ok("[network]\nallowlist = 10.0.0.0/8\n", &cfg);
	assert_int_equal(cfg.n_allowlist, 1);
	assert_string_equal(cidr_str(&cfg.allowlist[0]), "10.0.0.0/8");

	/* empty: an empty list */
	expect_ok("[network]\nallowlist =\nhttp_ports =\nmalicious_url_patterns = \n", &cfg);
	assert_int_equal(cfg.n_allowlist, 0);
	assert_int_equal(cfg.n_http_ports, 0);
	assert_int_equal(cfg.n_url_patterns, 0);

	/* spaces anywhere around entries; one trailing comma */
	expect_ok("[network]\nhttp_ports =80 ,8080,\t 81 ,\n", &cfg);
	assert_int_equal(cfg.n_http_ports, 3);
	assert_int_equal(cfg.http_ports[2], 81);

	/* exactly the maximum */
	expect_ok("[network]\nhttp_ports = 1, 2, 3, 4, 5, 6, 7, 8\n", &cfg);
	assert_int_equal(cfg.n_http_ports, EBPFMON_MAX_HTTP_PORTS);
}

/* inih's multi-line values: an indented line continues the key above it */
static void test_continuation(void **state)
{
	struct config cfg;

	(void)state;
	/* comments (indented too) and blank lines may come between */
	expect_ok("[network]\n"
		  "malicious_url_patterns = /a, /b,\n"
		  "\t/c\n"
		  "# a comment\n"
		  "  ; an indented comment\n"
		  "\n"
		  "    /d, *e*\n"
		  "http_ports = 80\n",
		  &cfg);
	assert_int_equal(cfg.n_url_patterns, 5);
	assert_string_equal(cfg.url_patterns[2], "/c");
	assert_string_equal(cfg.url_patterns[3], "/d");
	assert_string_equal(cfg.url_patterns[4], "*e*");
	assert_int_equal(cfg.n_http_ports, 1);

	/* the value may start on the next line; a comma at a line's end is optional */
	expect_ok("[network]\nallowlist =\n  192.0.2.0/24,\n  ::1\n  198.18.0.0/15\n", &cfg);
	assert_int_equal(cfg.n_allowlist, 3);
	assert_string_equal(cidr_str(&cfg.allowlist[2]), "198.18.0.0/15");

	/* an inline comment on the key line, not on a continuation line */
	expect_ok("[network]\nhttp_ports = 80, ; the web\n  8080\n", &cfg);
	assert_int_equal(cfg.n_http_ports, 2);
	assert_int_equal(cfg.http_ports[1], 8080);

	/* a section ends the continuation: an indented line there is a key of its own */
	expect_ok("[network]\nallowlist = ::1\n[system]\n  cpu_threshold_percent = 50\n", &cfg);
	assert_int_equal(cfg.n_allowlist, 1);
	assert_int_equal(cfg.cpu_threshold_percent, 50);
	expect_ok("  [database]\n  max_records = 500\n", &cfg);
	assert_int_equal(cfg.max_records, 500);

	/* a list key given again adds to the list; its first occurrence replaces the default */
	expect_ok("[network]\nallowlist = ::1\nhttp_ports = 81\nallowlist = 10.0.0.0/8,\n"
		  "  192.0.2.0/24\n[system]\n[network]\nallowlist = 198.18.0.0/15\n",
		  &cfg);
	assert_int_equal(cfg.n_allowlist, 4);
	assert_string_equal(cidr_str(&cfg.allowlist[0]), "::1");
	assert_string_equal(cidr_str(&cfg.allowlist[1]), "10.0.0.0/8");
	assert_string_equal(cidr_str(&cfg.allowlist[2]), "192.0.2.0/24");
	assert_string_equal(cidr_str(&cfg.allowlist[3]), "198.18.0.0/15");
	assert_int_equal(cfg.n_http_ports, 1);
	expect_ok("[network]\nmalicious_url_patterns =\nmalicious_url_patterns = /x\n", &cfg);
	assert_int_equal(cfg.n_url_patterns, 1);
	assert_string_equal(cfg.url_patterns[0], "/x");

	/* a repeated entry is refused across lines too */
	expect_errors("[network]\nhttp_ports = 80\n  81\nhttp_ports = 80\n",
		      "FILE:4: [network] http_ports: '80' is listed twice");

	/* an indented line continues only lists */
	expect_errors("[database]\nmax_records = 100\n    200\n",
		      "FILE:3: [database] max_records: indented line '200' continues this "
		      "value, but only lists span lines");
	/* an indented key or section continues the key above it: said so */
	expect_errors("[network]\n"
		      "max_connections_per_ip = 5\n"
		      "  max_bans = 2048\n"
		      "allowlist = ::1\n"
		      "  http_ports = 80\n"
		      "  [system]\n"
		      "  ::2 ; loopback\n"
		      "  ::3\n",
		      "FILE:3: [network] max_connections_per_ip: indented line 'max_bans = 2048' "
		      "continues this value; to set max_bans, start the line at its beginning\n"
		      "FILE:5: [network] allowlist: indented line 'http_ports = 80' continues this "
		      "value; to set http_ports, start the line at its beginning\n"
		      "FILE:6: [network] allowlist: indented line '[system]' continues this value; "
		      "to start a section, start the line at its beginning\n"
		      "FILE:7: [network] allowlist: indented line '::2 ; loopback' continues this "
		      "value; a comment on a continuation line is part of the value: put it on a "
		      "line of its own");
	/* after a refused key, its continuation lines are not reported again */
	expect_errors("[network]\nallowlistt = ::1\n   ::2\n  ::3\n",
		      "FILE:2: [network] allowlistt: unknown key");
}

static void test_syntax_variants(void **state)
{
	struct config cfg;

	(void)state;
	/* sections may repeat; inline " ;" comments; CRLF; a byte order mark; "key: value" */
	expect_ok("\xef\xbb\xbf[network]\r\nmax_connections_per_ip = 5 ; five\r\n[system]\r\n"
		  "cpu_threshold_percent: 50\r\n[network]\r\nban_duration_minutes=7\r\n",
		  &cfg);
	assert_int_equal(cfg.max_connections_per_ip, 5);
	assert_int_equal(cfg.cpu_threshold_percent, 50);
	assert_int_equal(cfg.ban_duration_s, 7 * 60);

	/* comments: ';' and '#' at the start of a line, indented or not, and " ;" after a value;
	 * '#' after a value, or ';' without a blank before it, is part of the value */
	expect_ok("; one\n# two\n  ; three\n\t# four\n[api]\n"
		  "admin_group = adm ; the admins\n"
		  "uds_socket_path = /run/x;y.sock\n"
		  "[loader]\n"
		  "pin_root = /sys/fs/bpf/a#b\n"
		  "[network] ; a comment after a section\n"
		  "dry_run = on\t; tab before\n",
		  &cfg);
	assert_string_equal(cfg.admin_group, "adm");
	assert_string_equal(cfg.uds_socket_path, "/run/x;y.sock");
	assert_string_equal(cfg.pin_root, "/sys/fs/bpf/a#b");
	assert_true(cfg.dry_run);
	expect_errors("[network]\nmax_bans = 2048 # two thousand\n",
		      "FILE:2: [network] max_bans: value '2048 # two thousand' is not a number "
		      "(expected 1024..4194304)");

	/* no newline at the end of the file */
	expect_ok("[database]\nmax_records = 100", &cfg);
	assert_int_equal(cfg.max_records, 100);
}

/* A setting is given once: twice is an error naming both lines, old and new names alike. */
static void test_duplicates(void **state)
{
	(void)state;
	expect_errors("[network]\nmax_connections_per_ip = 5\n[system]\n[network]\n"
		      "max_connections_per_ip = 7\n",
		      "FILE:5: [network] max_connections_per_ip: given twice (first on line 2): "
		      "keep one");
	/* the value of the second is checked too */
	expect_errors("[loader]\nxdp_mode = native\nxdp_mode = fast\n",
		      "FILE:3: [loader] xdp_mode: given twice (first on line 2): keep one\n"
		      "FILE:3: [loader] xdp_mode: value 'fast' is not an XDP mode (auto, native, "
		      "generic or tc)");
	expect_errors("[api]\nmetrics_address = http://127.0.0.1:9464\nmetrics_address =\n"
		      "metrics_address =\n",
		      "FILE:3: [api] metrics_address: given twice (first on line 2): keep one\n"
		      "FILE:4: [api] metrics_address: given twice (first on line 2): keep one");
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_err_unknown(void **state)
{
	(void)state;
	/* an unknown section is reported at its first key, once; its keys are not judged */
	expect_errors("[network]\nmax_connections_per_ip = 5\n[netwrok]\nmax_connections = 1\n"
		      "max_bans = 1\n"
		      "[system]\nfoo = 1\ncpu_threshold_percent = 90\nmax_records = 5\n",
		      "FILE:4: [netwrok] max_connections: unknown section (expected network, "
		      "system, api, database or loader)\n"
		      "FILE:7: [system] foo: unknown key\n"
		      "FILE:9: [system] max_records: unknown key (it belongs in [database])");
	expect_errors("max_records = 100\n[database]\n",
		      "FILE:1: max_records: key is outside any [section]");
	/* names are case-sensitive */
	expect_errors("[Network]\nmax_bans = 2048\n",
		      "FILE:2: [Network] max_bans: unknown section (expected network, system, api, "
		      "database or loader)");
	expect_errors("[network]\nMax_bans = 2048\n", "FILE:2: [network] Max_bans: unknown key");
	/* a key on the section's line would be dropped by inih: refused */
	expect_errors("[network]\nmax_bans = 2048\n[system] cpu_threshold_percent = 5\n",
		      "FILE:3: text after the section header [system]: 'cpu_threshold_percent = 5' "
		      "(a key goes on a line of its own)");
	/* a section without keys changes nothing, known or not */
	{
		struct config cfg;

		expect_ok("[netwrok]\n[network]\n", &cfg);
	}
}

static void test_err_numbers(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"[network]\nevent_buffer_kb = 3000\n",
		 "FILE:2: [network] event_buffer_kb: value '3000' is not a power of two"},
		{"[network]\nevent_buffer_kb = 32\n",
		 "FILE:2: [network] event_buffer_kb: value '32' is out of range 64..262144"},
		{"[network]\nmax_connections_per_ip = 0\n",
		 "FILE:2: [network] max_connections_per_ip: value '0' is out of range 1..1000000"},
		{"[network]\n\nmax_connections_per_ip = 1000001\n",
		 "FILE:3: [network] max_connections_per_ip: value '1000001' is out of range "
		 "1..1000000"},
		{"[database]\nmax_records = 99999999999999999999999\n",
		 "FILE:2: [database] max_records: value '99999999999999999999999' is out of range "
		 "100..100000000"},
		{"[network]\nmax_tracked_ips = 1023\n",
		 "FILE:2: [network] max_tracked_ips: value '1023' is out of range 1024..16777216"},
		{"[network]\nmax_bans = 1023\n",
		 "FILE:2: [network] max_bans: value '1023' is out of range 1024..4194304"},
		{"[network]\nmax_bans = 4194305\n",
		 "FILE:2: [network] max_bans: value '4194305' is out of range 1024..4194304"},
		{"[network]\nurl_case_insensitive = maybe\n",
		 "FILE:2: [network] url_case_insensitive: value 'maybe' is not a boolean "
		 "(true/false, yes/no, on/off, 1/0)"},
		{"[system]\ncpu_threshold_percent = 101\n",
		 "FILE:2: [system] cpu_threshold_percent: value '101' is out of range 1..100"},
		{"[system]\nmemory_threshold_percent = -1\n",
		 "FILE:2: [system] memory_threshold_percent: value '-1' is not a number "
		 "(expected 1..100)"},
		{"[system]\ndisk_io_threshold_mbps = +5\n",
		 "FILE:2: [system] disk_io_threshold_mbps: value '+5' is not a number "
		 "(expected 1..1000000)"},
	};
	static const char *const bad[] = {"abc", "1.5", "0x10", "", "5 %"};
	char text[128], want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_errors(cases[i].text, cases[i].want);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[system]\ncpu_threshold_percent = %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "FILE:2: [system] cpu_threshold_percent: value '%s' is not a number "
			 "(expected 1..100)",
			 bad[i]);
		expect_errors(text, want);
	}
}

static void test_durations(void **state)
{
	static const struct {
		const char *value;
		uint32_t ban_s, mon_ms;
	} good[] = {
		{"1s", 1, 1000},	  {"90s", 90, 90000},	 {"2m", 120, 120000},
		{"1h30m", 5400, 5400000}, {"1h", 3600, 3600000}, {"1d", 86400, 86400000},
		{"1000ms", 1, 1000},	  {"1m30s", 90, 90000},	 {"0h1s", 1, 1000},
	};
	struct config cfg;
	char text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text),
			 "[network]\nban_duration = %s\nmonitoring_interval = %s\n"
			 "ban_max_duration = %s\n",
			 good[i].value, good[i].value, good[i].value);
		expect_ok(text, &cfg);
		assert_int_equal(cfg.ban_duration_s, good[i].ban_s);
		assert_int_equal(cfg.monitoring_interval_ms, good[i].mon_ms);
		assert_int_equal(cfg.ban_max_duration_s, good[i].ban_s);
	}

	/* the bounds */
	expect_ok("[network]\nmonitoring_interval = 100ms\nban_duration = 365d\n"
		  "ban_max_duration = 520w\n",
		  &cfg);
	assert_int_equal(cfg.monitoring_interval_ms, 100);
	assert_int_equal(cfg.ban_duration_s, 365 * 86400);
	assert_int_equal(cfg.ban_max_duration_s, 3640u * 86400);
	expect_ok("[network]\nmonitoring_interval = 1500ms\n", &cfg);
	assert_int_equal(cfg.monitoring_interval_ms, 1500);

	/* a permanent ban: 0 in any unit, bare, or "permanent" */
	expect_ok("[network]\nban_duration = 0\n", &cfg);
	assert_int_equal(cfg.ban_duration_s, 0);
	expect_ok("[network]\nban_duration = permanent\n", &cfg);
	assert_int_equal(cfg.ban_duration_s, 0);
	expect_ok("[network]\nban_duration = 0s\n", &cfg);
	assert_int_equal(cfg.ban_duration_s, 0);

	/* the old names, a number in their own unit */
	expect_ok("[network]\nban_duration_minutes = 90\nmonitoring_interval_seconds = 5\n"
		  "ban_max_duration_minutes = 1\n",
		  &cfg);
	assert_int_equal(cfg.ban_duration_s, 5400);
	assert_int_equal(cfg.monitoring_interval_ms, 5000);
	assert_int_equal(cfg.ban_max_duration_s, 60);
	expect_ok("[network]\nban_duration_minutes = 0\nban_max_duration_minutes = 5256000\n",
		  &cfg);
	assert_int_equal(cfg.ban_duration_s, 0);
	assert_int_equal(cfg.ban_max_duration_s, 315360000);

	expect_errors("[network]\n"
		      "ban_duration = 90\n"
		      "monitoring_interval = 500\n"
		      "ban_max_duration = 7\n",
		      "FILE:2: [network] ban_duration: value '90' needs a unit, e.g. 90s\n"
		      "FILE:3: [network] monitoring_interval: value '500' needs a unit, e.g. 500s\n"
		      "FILE:4: [network] ban_max_duration: value '7' needs a unit, e.g. 7s");
	expect_errors("[network]\nmonitoring_interval = 99ms\n",
		      "FILE:2: [network] monitoring_interval: value '99ms' is out of range "
		      "100ms..1d");
	expect_errors("[network]\nmonitoring_interval = 0\n",
		      "FILE:2: [network] monitoring_interval: value '0' is out of range 100ms..1d");
	expect_errors("[network]\nmonitoring_interval = 86400001ms\n",
		      "FILE:2: [network] monitoring_interval: value '86400001ms' is out of range "
		      "100ms..1d");
	expect_errors("[network]\nban_duration = 366d\n",
		      "FILE:2: [network] ban_duration: value '366d' is out of range 0 (permanent), "
		      "1s..365d");
	expect_errors(
		"[network]\nban_duration = 500ms\n",
		"FILE:2: [network] ban_duration: value '500ms' is out of range 0 (permanent), "
		"1s..365d");
	expect_errors("[network]\nban_duration = 1500ms\n",
		      "FILE:2: [network] ban_duration: value '1500ms' is not a multiple of 1s");
	expect_errors("[network]\nban_max_duration = 0s\n",
		      "FILE:2: [network] ban_max_duration: value '0s' is out of range 1s..3650d");
	expect_errors("[network]\nban_max_duration = permanent\n",
		      "FILE:2: [network] ban_max_duration: value 'permanent' is not a duration (a "
		      "number and a unit, ms, s, m, h, d or w, such as 90s or 1h30m)");
	expect_errors("[network]\nban_duration = 99999999999999999999s\n",
		      "FILE:2: [network] ban_duration: value '99999999999999999999s' is out of "
		      "range 0 (permanent), 1s..365d");
	{
		static const char *const bad[] = {"1 h", "1H", "h",    "1.5h", "-1s", "1hour",
						  "s1",	 "1y", "1mss", "",     "1m x"};
		char want[512];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(text, sizeof(text), "[network]\nban_duration = %s\n", bad[i]);
			snprintf(want, sizeof(want),
				 "FILE:2: [network] ban_duration: value '%s' is not a duration (a "
				 "number and a unit, ms, s, m, h, d or w, such as 90s or 1h30m)",
				 bad[i]);
			expect_errors(text, want);
		}
	}
	/* the old names keep their ranges */
	expect_errors("[network]\nban_duration_minutes = 525601\nmonitoring_interval_seconds = 0\n"
		      "ban_max_duration_minutes = 90s\n",
		      "FILE:2: [network] ban_duration_minutes: value '525601' is out of range "
		      "0..525600\n"
		      "FILE:3: [network] monitoring_interval_seconds: value '0' is out of range "
		      "1..86400\n"
		      "FILE:4: [network] ban_max_duration_minutes: value '90s' is not a number "
		      "(expected 1..5256000)");

	/* both names of one setting: an error naming both lines */
	expect_errors("[network]\n"
		      "ban_duration = 90s\n"
		      "monitoring_interval_seconds = 10\n"
		      "ban_max_duration_minutes = 60\n"
		      "ban_duration_minutes = 60\n"
		      "[system]\n"
		      "[network]\n"
		      "monitoring_interval = 500ms\n"
		      "ban_max_duration = 1h\n",
		      "FILE:5: [network] ban_duration_minutes: the same setting as ban_duration on "
		      "line 2: keep one of the two lines\n"
		      "FILE:8: [network] monitoring_interval: the same setting as "
		      "monitoring_interval_seconds on line 3: keep one of the two lines\n"
		      "FILE:9: [network] ban_max_duration: the same setting as "
		      "ban_max_duration_minutes on line 4: keep one of the two lines");
}

static void test_parse_duration(void **state)
{
	uint64_t ms = 7;

	(void)state;
	assert_int_equal(parse_duration_ms("500ms", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(parse_duration_ms("1w2d3h4m5s6ms", &ms), 0);
	assert_true(ms == ((((9ull * 24 + 3) * 60 + 4) * 60 + 5) * 1000 + 6));
	assert_int_equal(parse_duration_ms("0s", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(parse_duration_ms("9007199254740992ms", &ms), 0); /* 2^53 */
	ms = 7;
	assert_int_equal(parse_duration_ms("9007199254740993ms", &ms), -ERANGE);
	assert_int_equal(parse_duration_ms("99999999999999999999999d", &ms), -ERANGE);
	assert_int_equal(parse_duration_ms("90", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("s", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("1x", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("1msx", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms(NULL, &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("1s", NULL), -EINVAL);
	assert_int_equal(ms, 7);
}

/* The [testing] section is gone: each of its lines says what to write instead. */
static void test_testing_refused(void **state)
{
	(void)state;
	expect_errors(
		"[network]\n"
		"max_connections_per_ip = 3\n"
		"[testing]\n"
		"ban_duration_seconds = 5\n"
		"monitoring_interval_ms = 500\n"
		"ban_duration_seconds = 0\n"
		"monitoring_interval_ms = x\n"
		"other = 1\n",
		"FILE:4: [testing] ban_duration_seconds: the [testing] section is no longer "
		"read: write \"ban_duration = 5s\" under [network] instead\n"
		"FILE:5: [testing] monitoring_interval_ms: the [testing] section is no longer "
		"read: write \"monitoring_interval = 500ms\" under [network] instead\n"
		"FILE:7: [testing] monitoring_interval_ms: the [testing] section is no longer "
		"read: write monitoring_interval under [network] with a unit (e.g. "
		"monitoring_interval = 500ms)\n"
		"FILE:8: [testing] other: the [testing] section is no longer read: durations "
		"are set under [network], with units (e.g. ban_duration = 5s, "
		"monitoring_interval = 500ms)");
	/* its keys under [network] */
	expect_errors("[network]\nban_duration_seconds = 5\n",
		      "FILE:2: [network] ban_duration_seconds: unknown key: write \"ban_duration = "
		      "5s\" under [network] instead");
	/* 0 under [network] is no "not set" */
	expect_errors("[network]\nban_duration_seconds = 0\n",
		      "FILE:2: [network] ban_duration_seconds: unknown key, and 0 here meant 'not "
		      "set': delete this line");
	/* the block the shipped file had until now (both 0, "not set"): a kept file still loads,
	 * with a warning for each line, and the defaults stand */
	{
		struct config cfg;
		char err[256];

		assert_int_equal(load("[loader]\nxdp_mode = auto\n\n[testing]\n# For tests only\n"
				      "ban_duration_seconds = 0\n\nmonitoring_interval_ms = 0\n",
				      &cfg, err, sizeof(err)),
				 0);
		assert_int_equal(cfg.ban_duration_s, 3600);
		assert_int_equal(cfg.monitoring_interval_ms, 10000);
	}
}

static void test_err_bool_xdp(void **state)
{
	(void)state;
	expect_errors("[network]\ndry_run = maybe\n[loader]\nxdp_mode = fast\n",
		      "FILE:2: [network] dry_run: value 'maybe' is not a boolean (true/false, "
		      "yes/no, on/off, 1/0)\n"
		      "FILE:4: [loader] xdp_mode: value 'fast' is not an XDP mode (auto, native, "
		      "generic or tc)");
	expect_errors("[loader]\nxdp_mode =\n",
		      "FILE:2: [loader] xdp_mode: value '' is not an XDP mode (auto, native, "
		      "generic or tc)");
	expect_errors("[network]\ndry_run = 2\n",
		      "FILE:2: [network] dry_run: value '2' is not a boolean (true/false, yes/no, "
		      "on/off, 1/0)");
}

/* A file under dir with content; its path into out. */
static void tls_file(const char *dir, const char *name, const char *content, char *out, size_t len)
{
	FILE *f;

	snprintf(out, len, "%s/%s", dir, name);
	f = fopen(out, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

/* tls+tcp:// needs its certificate, key and client CA, readable and PEM, when loaded. */
static void test_tls(void **state)
{
	static const char cert_pem[] =
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	static const char key_pem[] = "junk before\n-----BEGIN EC PRIVATE KEY-----\nMHc\n"
				      "-----END EC PRIVATE KEY-----\n";
	char dir[] = "/tmp/ebpfmon-unit-tls-XXXXXX", cert[128], key[128], ca[128], junk[128];
	char conf[2048], want[2048];
	struct config cfg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	tls_file(dir, "cert.pem", cert_pem, cert, sizeof(cert));
	tls_file(dir, "key.pem", key_pem, key, sizeof(key));
	tls_file(dir, "ca.pem", cert_pem, ca, sizeof(ca));
	tls_file(dir, "junk.pem", "not PEM at all\n", junk, sizeof(junk));

	snprintf(conf, sizeof(conf),
		 "[api]\nlisten_address = tls+tcp://127.0.0.1:50051\ntls_cert_file = %s\n"
		 "tls_key_file = %s\ntls_client_ca_file = %s\n",
		 cert, key, ca);
	expect_ok(conf, &cfg);
	assert_string_equal(cfg.listen_address, "tls+tcp://127.0.0.1:50051");
	assert_string_equal(cfg.tls_cert_file, cert);
	assert_string_equal(cfg.tls_key_file, key);
	assert_string_equal(cfg.tls_client_ca_file, ca);
	assert_string_equal(cfg.tls_admin_names, "");

	/* the keys are checked only for a tls+tcp:// listener; empty is none */
	expect_ok("[api]\nlisten_address = tcp://127.0.0.1:1\ntls_cert_file = /nonexistent.pem\n"
		  "tls_key_file =\n",
		  &cfg);
	assert_string_equal(cfg.tls_key_file, "");

	expect_errors("[api]\nlisten_address = tls+tcp://127.0.0.1:50051\n",
		      "FILE: [api] tls_cert_file: required by a tls+tcp:// listen_address\n"
		      "FILE: [api] tls_key_file: required by a tls+tcp:// listen_address\n"
		      "FILE: [api] tls_client_ca_file: required by a tls+tcp:// listen_address");

	snprintf(conf, sizeof(conf),
		 "[api]\nlisten_address = tls+tcp4://:50051\ntls_cert_file = %s/none.pem\n"
		 "tls_key_file = %s\ntls_client_ca_file = %s\n",
		 dir, cert, junk);
	snprintf(want, sizeof(want),
		 "FILE: [api] tls_cert_file: cannot read %s/none.pem: No such file or directory\n"
		 "FILE: [api] tls_key_file: %s holds no PEM PRIVATE KEY (-----BEGIN ...PRIVATE "
		 "KEY-----)\n"
		 "FILE: [api] tls_client_ca_file: %s holds no PEM CERTIFICATE (-----BEGIN "
		 "...CERTIFICATE-----)",
		 dir, cert, junk);
	expect_errors(conf, want);

	/* a folder is not a file */
	snprintf(conf, sizeof(conf),
		 "[api]\nlisten_address = tls+tcp://127.0.0.1:50051\ntls_cert_file = %s\n"
		 "tls_key_file = %s\ntls_client_ca_file = %s\n",
		 cert, key, dir);
	snprintf(want, sizeof(want), "FILE: [api] tls_client_ca_file: ");
	{
		static char err[ERR_BIG];

		assert_int_equal(load(conf, &cfg, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "[api] tls_client_ca_file: "));
		assert_non_null(strstr(err, dir));
	}

	/* an unreadable file (root reads it anyway) */
	if (geteuid()) {
		assert_int_equal(chmod(key, 0), 0);
		snprintf(conf, sizeof(conf),
			 "[api]\nlisten_address = tls+tcp://127.0.0.1:50051\ntls_cert_file = %s\n"
			 "tls_key_file = %s\ntls_client_ca_file = %s\n",
			 cert, key, ca);
		snprintf(want, sizeof(want),
			 "FILE: [api] tls_key_file: cannot read %s: Permission denied (it must be "
			 "readable by the analyzer's user)",
			 key);
		expect_errors(conf, want);
	}

	/* tls_admin_names: names by commas or blanks, stored with commas */
	snprintf(conf, sizeof(conf),
		 "[api]\nlisten_address = tls+tcp://127.0.0.1:50051\ntls_cert_file = %s\n"
		 "tls_key_file = %s\ntls_client_ca_file = %s\n"
		 "tls_admin_names = ops-1, ops 2 ,  ,ops.3\n",
		 cert, key, ca);
#ifdef NNG_OPT_TLS_PEER_CN
	expect_ok(conf, &cfg);
	assert_string_equal(cfg.tls_admin_names, "ops-1,ops,2,ops.3");
#else
	expect_errors(conf, "FILE: [api] tls_admin_names: this build's libnng (before 1.6) cannot "
			    "tell a TLS peer's certificate name, so names cannot be checked: leave "
			    "it empty and have the CA of tls_client_ca_file sign only the clients "
			    "that may change bans");
#endif
	expect_errors("[api]\ntls_admin_names = a\x01"
		      "b\n",
		      "FILE:2: [api] tls_admin_names: value 'a\\x01b' is not names separated by "
		      "commas (at most 255 bytes, no control characters)");

	unlink(cert);
	unlink(key);
	unlink(ca);
	unlink(junk);
	assert_int_equal(rmdir(dir), 0);
}

static void test_err_addresses(void **state)
{
	(void)state;
	expect_errors(
		"[network]\n"
		"allowlist = 192.0.2.0/24, 10.0.0.256, 192.0.2.1/24, ::g, 1.2.3.4/33\n"
		"allowlist = 2001:db8::1/32, 1.2.3, 1.2.3.4.5, 256.1.1.1\n"
		"allowlist = ::1, ::1\n",
		"FILE:2: [network] allowlist: '10.0.0.256' is not an IPv4 or IPv6 address or "
		"network\n"
		"FILE:2: [network] allowlist: '192.0.2.1/24' has host bits set beyond the "
		"prefix; did you mean 192.0.2.0/24?\n"
		"FILE:2: [network] allowlist: '::g' is not an IPv4 or IPv6 address or network\n"
		"FILE:2: [network] allowlist: '1.2.3.4/33' is not an IPv4 or IPv6 address or "
		"network\n"
		"FILE:3: [network] allowlist: '2001:db8::1/32' has host bits set beyond the "
		"prefix; did you mean 2001:db8::/32?\n"
		"FILE:3: [network] allowlist: '1.2.3' is not an IPv4 or IPv6 address or "
		"network\n"
		"FILE:3: [network] allowlist: '1.2.3.4.5' is not an IPv4 or IPv6 address or "
		"network\n"
		"FILE:3: [network] allowlist: '256.1.1.1' is not an IPv4 or IPv6 address or "
		"network\n"
		"FILE:4: [network] allowlist: '::1' is listed twice");
}

static void test_err_too_many(void **state)
{
	char text[4096];
	size_t o;
	int i;

	(void)state;
	expect_errors("[network]\nhttp_ports = 1, 2, 3, 4, 5, 6, 7, 8, 9\n",
		      "FILE:2: [network] http_ports: 9 ports, at most 8");

	/* 65 networks over continuation lines: the line that goes beyond is named */
	o = (size_t)snprintf(text, sizeof(text), "[network]\nallowlist = 10.0.0.0/32");
	for (i = 1; i < 65; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s10.0.0.%d",
				      i % 8 ? ", " : ",\n  ", i);
	snprintf(text + o, sizeof(text) - o, "\n[system]\n");
	expect_errors(text, "FILE:10: [network] allowlist: 65 networks, at most 64");

	o = (size_t)snprintf(text, sizeof(text), "[network]\ninterfaces = e0");
	for (i = 1; i < 17; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, ", e%d", i);
	snprintf(text + o, sizeof(text) - o, "\n");
	expect_errors(text, "FILE:2: [network] interfaces: 17 interfaces, at most 16");

	o = (size_t)snprintf(text, sizeof(text), "[network]\nmalicious_url_patterns = /0");
	for (i = 1; i < 65; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s/%d", i % 16 ? ", " : ",\n ",
				      i);
	snprintf(text + o, sizeof(text) - o, "\n");
	expect_errors(text, "FILE:6: [network] malicious_url_patterns: 65 patterns, at most 64");
}

static void test_err_url_patterns(void **state)
{
	char text[512], want[1024], pat[129];

	(void)state;
	memset(pat, 'a', sizeof(pat));
	pat[0] = '/';
	pat[128] = '\0';
	snprintf(text, sizeof(text), "[network]\nmalicious_url_patterns = /ok, %s\n", pat);
	snprintf(want, sizeof(want),
		 "FILE:2: [network] malicious_url_patterns: pattern '%.64s...' is 128 bytes long, "
		 "at most 127",
		 pat);
	expect_errors(text, want);

	/* 127 bytes is fine */
	pat[127] = '\0';
	snprintf(text, sizeof(text), "[network]\nmalicious_url_patterns = %s\n", pat);
	{
		struct config cfg;

		expect_ok(text, &cfg);
		assert_string_equal(cfg.url_patterns[0], pat);
	}

	expect_errors(
		"[network]\n"
		"malicious_url_patterns = /a b, /x\tz, admin, /ok, , /y\n"
		"malicious_url_patterns = ,/a\n"
		"malicious_url_patterns = /a,,\n"
		"malicious_url_patterns = /dup, *dup*, /dup\n",
		"FILE:2: [network] malicious_url_patterns: pattern '/a b' contains whitespace\n"
		"FILE:2: [network] malicious_url_patterns: pattern '/x\\x09z' contains "
		"whitespace\n"
		"FILE:2: [network] malicious_url_patterns: pattern 'admin' must start with '/' "
		"or contain '*'\n"
		"FILE:2: [network] malicious_url_patterns: entry 5 is empty\n"
		"FILE:3: [network] malicious_url_patterns: entry 1 is empty\n"
		"FILE:4: [network] malicious_url_patterns: '/a' is listed twice\n"
		"FILE:4: [network] malicious_url_patterns: entry 2 is empty\n"
		"FILE:5: [network] malicious_url_patterns: '/dup' is listed twice");
	expect_errors("[network]\nmalicious_url_patterns = /a\x01z\n",
		      "FILE:2: [network] malicious_url_patterns: pattern '/a\\x01z' contains a "
		      "control character");

	/* what no canonical path holds: the rule would never match */
	expect_errors(
		"[network]\n"
		"malicious_url_patterns = //wp-admin, /a/./b, /a/../b, /x?y, /p#f\n"
		"malicious_url_patterns = //*.php, /ok/*?x*\n",
		"FILE:2: [network] malicious_url_patterns: pattern '//wp-admin' can never match: a "
		"canonical path has no '//' (runs of '/' are merged) (docs/url-matching.md)\n"
		"FILE:2: [network] malicious_url_patterns: pattern '/a/./b' can never match: a "
		"canonical path has no '.' or '..' segment (docs/url-matching.md)\n"
		"FILE:2: [network] malicious_url_patterns: pattern '/a/../b' can never match: a "
		"canonical path has no '.' or '..' segment (docs/url-matching.md)\n"
		"FILE:2: [network] malicious_url_patterns: pattern '/x?y' can never match: the "
		"path "
		"ends at '?' or '#', so a pattern cannot go past them (docs/url-matching.md)\n"
		"FILE:2: [network] malicious_url_patterns: pattern '/p#f' can never match: the "
		"path "
		"ends at '?' or '#', so a pattern cannot go past them (docs/url-matching.md)\n"
		"FILE:3: [network] malicious_url_patterns: pattern '//*.php' can never match: a "
		"canonical path has no '//' (runs of '/' are merged) (docs/url-matching.md)");
	expect_errors(
		"[network]\nmalicious_url_patterns = /ok, /, /*, *\n",
		"FILE:2: [network] malicious_url_patterns: pattern '/' matches every request: "
		"every client would be banned\n"
		"FILE:2: [network] malicious_url_patterns: pattern '/*' matches every "
		"request: every client would be banned\n"
		"FILE:2: [network] malicious_url_patterns: pattern '*' matches every request: "
		"every client would be banned");
	{
		struct config cfg;

		/* dot-names, a glob's '?' wildcard, a trailing "/." prefix: all can match */
		expect_ok("[network]\nmalicious_url_patterns = /.env, /.git/, /x/*.ph?, /a/.\n",
			  &cfg);
		assert_int_equal(cfg.n_url_patterns, 4);

		/* '%' is a path byte: %25 decodes to it, an invalid escape stays literal */
		expect_ok("[network]\nmalicious_url_patterns = /50%off, /a%zz, /a%2d, /x/*%25*\n",
			  &cfg);
		assert_int_equal(cfg.n_url_patterns, 4);
		assert_string_equal(cfg.url_patterns[0], "/50%off");
		assert_string_equal(cfg.url_patterns[2], "/a%2d");
	}
}

static void test_err_ports_interfaces(void **state)
{
	(void)state;
	expect_errors(
		"[network]\nhttp_ports = 0, 80, 70000, http, 80, -1, 99999999999999999999999\n",
		"FILE:2: [network] http_ports: port '0' is out of range 1..65535\n"
		"FILE:2: [network] http_ports: port '70000' is out of range 1..65535\n"
		"FILE:2: [network] http_ports: port 'http' is not a number (expected "
		"1..65535)\n"
		"FILE:2: [network] http_ports: '80' is listed twice\n"
		"FILE:2: [network] http_ports: port '-1' is not a number (expected 1..65535)\n"
		"FILE:2: [network] http_ports: port '99999999999999999999999' is out of range "
		"1..65535");
	expect_errors(
		"[network]\ninterfaces = eth0, eth0/1, 0123456789abcdef, .., eth 1, eth0\n",
		"FILE:2: [network] interfaces: interface name 'eth0/1' is not valid (1..15 "
		"characters of A-Z a-z 0-9 _ . - @ :)\n"
		"FILE:2: [network] interfaces: interface name '0123456789abcdef' is not valid "
		"(1..15 characters of A-Z a-z 0-9 _ . - @ :)\n"
		"FILE:2: [network] interfaces: interface name '..' is not valid (1..15 "
		"characters of A-Z a-z 0-9 _ . - @ :)\n"
		"FILE:2: [network] interfaces: interface name 'eth 1' is not valid (1..15 "
		"characters of A-Z a-z 0-9 _ . - @ :)\n"
		"FILE:2: [network] interfaces: 'eth0' is listed twice");
}

static void test_err_strings(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"[api]\nuds_socket_path = run/api.sock\n",
		 "FILE:2: [api] uds_socket_path: path 'run/api.sock' is not absolute"},
		{"[api]\nuds_socket_path =\n",
		 "FILE:2: [api] uds_socket_path: empty value, expected an absolute path"},
		{"[api]\nuds_socket_path = ipc://run/api.sock\n",
		 "FILE:2: [api] uds_socket_path: path 'run/api.sock' is not absolute"},
		{"[api]\nlisten_address = http://127.0.0.1:80\n",
		 "FILE:2: [api] listen_address: address 'http://127.0.0.1:80' is not "
		 "tcp://HOST:PORT (or empty for none)"},
		{"[api]\nlisten_address = tcp://127.0.0.1\n",
		 "FILE:2: [api] listen_address: address 'tcp://127.0.0.1' needs a port in "
		 "1..65535"},
		{"[api]\nlisten_address = tcp://[::1]:0\n",
		 "FILE:2: [api] listen_address: address 'tcp://[::1]:0' needs a port in 1..65535"},
		{"[api]\nlisten_address = tcp://127.0.0.1:9091 x\n",
		 "FILE:2: [api] listen_address: address 'tcp://127.0.0.1:9091 x' is not "
		 "tcp://HOST:PORT (or empty for none)"},
		{"[api]\ntls_cert_file = cert.pem\n",
		 "FILE:2: [api] tls_cert_file: path 'cert.pem' is not absolute"},
		{"[api]\nadmin_group = a b\n",
		 "FILE:2: [api] admin_group: name 'a b' is not a valid user or group name (1..32 "
		 "characters of A-Z a-z 0-9 . _ -, not starting with '-')"},
		{"[database]\nsqlite_path = ebpfmon.db\n",
		 "FILE:2: [database] sqlite_path: path 'ebpfmon.db' is not absolute"},
		{"[loader]\nuser = -root\n",
		 "FILE:2: [loader] user: name '-root' is not a valid user or group name (1..32 "
		 "characters of A-Z a-z 0-9 . _ -, not starting with '-')"},
		{"[loader]\ngroup =\n",
		 "FILE:2: [loader] group: name '' is not a valid user or group name (1..32 "
		 "characters of A-Z a-z 0-9 . _ -, not starting with '-')"},
		{"[loader]\nuser = a/b\n",
		 "FILE:2: [loader] user: name 'a/b' is not a valid user or group name (1..32 "
		 "characters of A-Z a-z 0-9 . _ -, not starting with '-')"},
	};
	char text[512], want[1024], path[130];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_errors(cases[i].text, cases[i].want);

	/* a UNIX socket path must fit in sockaddr_un: 107 bytes */
	memset(path, 'x', sizeof(path));
	path[0] = '/';
	path[108] = '\0';
	snprintf(text, sizeof(text), "[api]\nuds_socket_path = %s\n", path);
	snprintf(want, sizeof(want),
		 "FILE:2: [api] uds_socket_path: path '%.64s...' is 108 bytes long, at most 107",
		 path);
	expect_errors(text, want);
}

static void test_metrics_address(void **state)
{
	static const char *const good[] = {
		"http://127.0.0.1:9464",
		"http://localhost:9464",
		"http://[::1]:1",
		"http://[::]:65535",
		"http://:9464",
		"http://metrics.example.org:80",
		"",
	};
	static const struct {
		const char *value, *why;
	} bad[] = {
		{"tcp://127.0.0.1:9464", "is not http://HOST:PORT (or empty for none)"},
		{"https://127.0.0.1:9464", "is not http://HOST:PORT (or empty for none)"},
		{"http://127.0.0.1", "needs a port in 1..65535"},
		{"http://127.0.0.1:0", "needs a port in 1..65535"},
		{"http://127.0.0.1:9464/metrics",
		 "has a path: give http://HOST:PORT, the metrics are served at /metrics"},
		{"http://127.0.0.1/metrics",
		 "has a path: give http://HOST:PORT, the metrics are served at /metrics"},
		{"http://[::1:9464", ": the host in brackets is not an IPv6 address"},
		{"http://[]:9464", ": the host in brackets is not an IPv6 address"},
		{"http://ho st:9464", "is not http://HOST:PORT (or empty for none)"},
		{"http://127.0.0.1:9464?x", "needs a port in 1..65535"},
	};
	char text[256], want[512];
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[api]\nmetrics_address = %s\n", good[i]);
		expect_ok(text, &cfg);
		assert_string_equal(cfg.metrics_address, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[api]\nmetrics_address = %s\n", bad[i].value);
		snprintf(want, sizeof(want), "FILE:2: [api] metrics_address: address '%s'%s%s",
			 bad[i].value, bad[i].why[0] == ':' ? "" : " ", bad[i].why);
		expect_errors(text, want);
	}
}

static void test_err_syntax(void **state)
{
	(void)state;
	/* every line inih refuses is reported, in order with the other errors */
	expect_errors(
		"[network]\n"
		"max_connections_per_ip = 5\n"
		"this line has no equals sign\n"
		"[system\n"
		"cpu_threshold_percent = 0\n"
		"also bad ; = 1\n"
		"max_bans = 1\n"
		"[loader\n",
		"FILE:3: syntax error: expected [section], key = value or a comment, got 'this "
		"line has no equals sign'\n"
		"FILE:4: syntax error: expected [section], key = value or a comment, got "
		"'[system'\n"
		"FILE:5: [network] cpu_threshold_percent: unknown key (it belongs in "
		"[system])\n"
		"FILE:6: syntax error: expected [section], key = value or a comment, got 'also "
		"bad ; = 1'\n"
		"FILE:7: [network] max_bans: value '1' is out of range 1024..4194304\n"
		"FILE:8: syntax error: expected [section], key = value or a comment, got "
		"'[loader'");
	expect_errors("[network]\n= 5\n",
		      "FILE:2: syntax error: expected [section], key = value or a comment, got '= "
		      "5'");
	/* an indented line with no key before it in its section is a line of its own */
	expect_errors("[network]\n   /x\n",
		      "FILE:2: syntax error: expected [section], key = value or a comment, got "
		      "'/x'");
	/* a refused line between a list and its continuation changes nothing */
	{
		struct config cfg;

		expect_errors("[network]\nallowlist = ::1\nbad line\n   ::2\n",
			      "FILE:3: syntax error: expected [section], key = value or a comment, "
			      "got 'bad line'");
		expect_ok("[network]\nallowlist = ::1\n\n   ::2\n", &cfg);
		assert_int_equal(cfg.n_allowlist, 2);
	}

	/* a file that is not INI at all: the first hundred bad lines, and where it went on */
	{
		static char text[8192], err[32768];
		struct config cfg;
		size_t o = 0;
		int lines = 0;

		o += (size_t)snprintf(text + o, sizeof(text) - o, "[network]\n");
		for (int i = 0; i < 150; i++)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "line %d\n", i);
		snprintf(text + o, sizeof(text) - o, "max_bans = 1\n");
		assert_int_equal(load(text, &cfg, err, sizeof(err)), -EINVAL);
		for (o = 0; err[o]; o++)
			lines += err[o] == '\n';
		assert_int_equal(lines, 101);
		assert_non_null(strstr(err,
				       ":101: syntax error: expected [section], key = value or "
				       "a comment, got 'line 99'\n"));
		assert_null(strstr(err, "'line 100'"));
		assert_non_null(strstr(err, ":152: [network] max_bans: value '1' is out of range"));
		assert_non_null(strstr(err, ":102: syntax error, and more after it: only the first "
					    "100 are reported"));
	}

	/* inih ignores what follows a section's ']': the reader refuses it, but not a comment */
	expect_errors("[network] max_connections_per_ip = 7\n",
		      "FILE:1: text after the section header [network]: "
		      "'max_connections_per_ip = 7' (a key goes on a line of its own)");
	{
		struct config cfg;

		expect_ok("[network]   ; the network\n[system]\t# the host\n", &cfg);
	}
}

static void test_err_long_line(void **state)
{
	char text[1024], want[256];

	(void)state;
	memset(text, 0, sizeof(text));
	strcpy(text, "[network]\nallowlist = ::1,");
	memset(text + strlen(text), ' ', 300);
	strcat(text, "::2\nmax_connections_per_ip = 0\n");
	snprintf(want, sizeof(want),
		 "FILE:2: line is too long (%zu bytes, at most 199)\n"
		 "FILE:3: [network] max_connections_per_ip: value '0' is out of range 1..1000000",
		 strlen("allowlist = ::1,") + 300 + 3);
	expect_errors(text, want);

	/* a long comment is fine */
	memset(text, 0, sizeof(text));
	strcpy(text, "[network]\n  # ");
	memset(text + strlen(text), 'c', 300);
	strcat(text, " x = 1\nmax_connections_per_ip = 9\n");
	{
		struct config cfg;

		expect_ok(text, &cfg);
		assert_int_equal(cfg.max_connections_per_ip, 9);
	}

	/* an indented line after a refused line continues nothing */
	memset(text, 0, sizeof(text));
	strcpy(text, "[network]\nallowlist = ::1\nmalicious_url_patterns = /a,");
	memset(text + strlen(text), ' ', 300);
	strcat(text, "/b\n  /c\n");
	snprintf(want, sizeof(want), "FILE:3: line is too long (%zu bytes, at most 199)",
		 strlen("malicious_url_patterns = /a,") + 300 + 2);
	expect_errors(text, want);

	/* a NUL byte: the file is not text */
	{
		static const char bin[] = "[network]\nmax_connections_per_ip = 5\0x\n";
		static char err[ERR_BIG], expected[ERR_BIG];
		struct config cfg;
		int fd;

		snprintf(conf_path, sizeof(conf_path), "/tmp/ebpfmon-unit-XXXXXX");
		fd = mkstemp(conf_path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, bin, sizeof(bin) - 1), (ssize_t)sizeof(bin) - 1);
		close(fd);
		assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), -EINVAL);
		expand("FILE:2: line contains a NUL byte", expected, sizeof(expected));
		assert_string_equal(err, expected);
		unlink(conf_path);
	}
}

static void test_err_files(void **state)
{
	char err[CONFIG_ERR_MAX];
	struct config cfg;

	(void)state;
	assert_int_equal(config_load("/nonexistent/ebpfmon.conf", &cfg, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/ebpfmon.conf: cannot open: No such file or "
				 "directory");
	assert_int_equal(config_load("/tmp", &cfg, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/tmp: cannot open: Is a directory");
	/* beyond 1 MiB it is not a configuration file */
	{
		static char big[CONFIG_FILE_MAX + 2];

		memset(big, '#', sizeof(big) - 1);
		assert_int_equal(load(big, &cfg, err, sizeof(err)), -EFBIG);
		expand("FILE: larger than 1048576 bytes: not a configuration file", big, 256);
		assert_string_equal(err, big);
	}
	/* no buffer for messages is fine */
	assert_int_equal(config_load("/nonexistent/ebpfmon.conf", &cfg, NULL, 0), -ENOENT);
}

/* Many errors into a small buffer: cut at a line, marked with "...", always terminated. */
static void test_err_truncated(void **state)
{
	char text[2048], err[100], big[ERR_BIG];
	struct config cfg;
	size_t o = 0;
	int i;

	(void)state;
	o += (size_t)snprintf(text + o, sizeof(text) - o, "[network]\n");
	for (i = 0; i < 40; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "max_connection_%d = 0\n", i);

	memset(err, 'Z', sizeof(err));
	assert_int_equal(load(text, &cfg, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_string_equal(err + sizeof(err) - 4, "...");

	/* with room, all 40 are there */
	assert_int_equal(load(text, &cfg, big, sizeof(big)), -EINVAL);
	for (o = 0, i = 0; big[o]; o++)
		i += big[o] == '\n';
	assert_int_equal(i, 39);
	assert_non_null(strstr(big, ":41: [network] max_connection_39: unknown key"));

	/* a 1-byte buffer holds only the terminator */
	assert_int_equal(load(text, &cfg, err, 1), -EINVAL);
	assert_string_equal(err, "");
}

/* ---- config_set and parse_u64 ------------------------------------------------------------- */

static void test_config_set(void **state)
{
	struct config cfg, before;
	char err[CONFIG_ERR_MAX];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(
		config_set(&cfg, "network", "max_connections_per_ip", "7", err, sizeof(err)), 0);
	assert_int_equal(cfg.max_connections_per_ip, 7);
	assert_int_equal(config_set(&cfg, "network", "http_ports", "81, 82", err, sizeof(err)), 0);
	assert_int_equal(cfg.n_http_ports, 2);
	assert_int_equal(cfg.http_ports[1], 82);
	assert_int_equal(config_set(&cfg, "network", "ban_duration", "2h", err, sizeof(err)), 0);
	assert_int_equal(cfg.ban_duration_s, 7200);
	assert_int_equal(
		config_set(&cfg, "network", "monitoring_interval_seconds", "3", err, sizeof(err)),
		0);
	assert_int_equal(cfg.monitoring_interval_ms, 3000);

	/* refused: cfg unchanged, message without file and line */
	before = cfg;
	assert_int_equal(config_set(&cfg, "network", "http_ports", "1, 0", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "[network] http_ports: port '0' is out of range 1..65535");
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	assert_int_equal(config_set(&cfg, "nope", "x", "1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "[nope] x: unknown section (expected network, system, api, "
				 "database or loader)");
	assert_int_equal(config_set(&cfg, "testing", "ban_duration_seconds", "5", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "[testing] ban_duration_seconds: the [testing] section is no "
			    "longer read: write \"ban_duration = 5s\" under [network] instead");
	assert_int_equal(config_set(&cfg, "api", "x", "1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "[api] x: unknown key");
	assert_int_equal(config_set(&cfg, "api", "x", "1", NULL, 0), -EINVAL);
	assert_int_equal(config_set(&cfg, "api", "x", NULL, err, sizeof(err)), -EINVAL);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void test_parse_u64(void **state)
{
	uint64_t v = 12345;

	(void)state;
	assert_int_equal(parse_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_u64("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);

	v = 12345;
	assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_u64("11", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("4", 5, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64(" 1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1 ", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("+1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_u64("-0", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1a", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("0x1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1e3", 0, 10000, &v), -EINVAL);
	assert_int_equal(parse_u64(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1", 0, 10, NULL), -EINVAL);
	/* nothing written on failure */
	assert_int_equal(v, 12345);

	/* errno is left as it was */
	errno = 42;
	assert_int_equal(parse_u64("99999999999999999999", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(errno, 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_conf_is_defaults),
		cmocka_unit_test(test_empty_file_is_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_bools),
		cmocka_unit_test(test_xdp_modes),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_syntax_variants),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_err_unknown),
		cmocka_unit_test(test_err_numbers),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_testing_refused),
		cmocka_unit_test(test_err_bool_xdp),
		cmocka_unit_test(test_err_addresses),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_err_too_many),
		cmocka_unit_test(test_err_url_patterns),
		cmocka_unit_test(test_err_ports_interfaces),
		cmocka_unit_test(test_err_strings),
		cmocka_unit_test(test_metrics_address),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_err_long_line),
		cmocka_unit_test(test_err_files),
		cmocka_unit_test(test_err_truncated),
		cmocka_unit_test(test_config_set),
		cmocka_unit_test(test_parse_u64),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
