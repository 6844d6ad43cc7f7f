// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ebpfmonctl: argument parsing (every command, the aliases, the legacy -action form, bad
 * values), rendering (tables and JSON of canned responses, human units), and whole calls
 * against a fake REP server on an ipc:// socket in a temporary folder: a reply, an error
 * reply, a garbage reply, no server, a server that never answers; and top, as plain text and
 * as the live view on a pseudo-terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "args.h"
#include "ctl_text.h"
#include "client.h"
#include "render.h"
#include "run.h"
#include "table.h"

#define NOW ((time_t)1700000000) /* 2023-11-14 22:13:20 UTC */

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* Parse a NULL-terminated argument list (argv[0] "ebpfmonctl" added); the parser's result. */
static int parse_list(struct ctl_args *a, char *err, size_t errlen, const char *first, va_list ap)
{
	char *argv[32];
	int argc = 0;
	const char *s;

	argv[argc++] = (char *)"ebpfmonctl";
	for (s = first; s && argc < 31; s = va_arg(ap, const char *))
		argv[argc++] = (char *)s;
	argv[argc] = NULL;
	return ctl_args_parse(a, argc, argv, NOW, err, errlen);
}

/* Parse and expect success. */
static void __attribute__((sentinel)) parse_ok(struct ctl_args *a, const char *first, ...)
{
	char err[512];
	va_list ap;
	int ret;

	va_start(ap, first);
	ret = parse_list(a, err, sizeof(err), first, ap);
	va_end(ap);
	if (ret)
		fail_msg("parse failed: %s", err);
}

/* Parse and expect -EINVAL with a message that contains want. */
static void __attribute__((sentinel)) parse_bad(const char *want, const char *first, ...)
{
	struct ctl_args a;
	char err[512];
	va_list ap;
	int ret;

	va_start(ap, first);
	ret = parse_list(&a, err, sizeof(err), first, ap);
	va_end(ap);
	if (ret != -EINVAL)
		fail_msg("expected a usage error containing \"%s\", got %d", want, ret);
	if (!strstr(err, want))
		fail_msg("message \"%s\" does not contain \"%s\"", err, want);
}

/* Output captured in memory. */
struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void capture_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static const char *capture_text(struct capture *c)
{
	fflush(c->f);
	return c->buf ? c->buf : "";
}

static void capture_close(struct capture *c)
{
	fclose(c->f);
	free(c->buf);
}

/* Column where word starts in line; fail when it is not there. */
static long col_start(const char *line, const char *word)
{
	const char *p = strstr(line, word);

	if (!p)
		fail_msg("\"%s\" not in line \"%s\"", word, line);
	return p - line;
}

static long col_end(const char *line, const char *word)
{
	return col_start(line, word) + (long)strlen(word);
}

/* In row, the cell under the right-aligned header col of header is exactly cell. */
static void assert_cell_right(const char *header, const char *col, const char *row,
			      const char *cell)
{
	long end = col_end(header, col), n = (long)strlen(cell);

	if (end > (long)strlen(row) || end < n || strncmp(row + end - n, cell, (size_t)n) ||
	    (end > n && row[end - n - 1] != ' ') || (row[end] && row[end] != ' '))
		fail_msg("\"%s\" is not the cell under %s in\n%s\n%s", cell, col, header, row);
}

/* Parse JSON text; fail when it is not one valid document. */
static struct json_object *json_parse_doc(const char *text)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	assert_non_null(tok);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (!o || json_tokener_get_error(tok) != json_tokener_success)
		fail_msg("not one JSON document:\n%s", text);
	/* nothing but white space after it */
	assert_int_equal(strspn(text + json_tokener_get_parse_end(tok), " \n"),
			 strlen(text + json_tokener_get_parse_end(tok)));
	json_tokener_free(tok);
	return o;
}

/* The value at a path of keys and array indexes, e.g. jget(o, "bans", "0", "address", NULL). */
static struct json_object *__attribute__((sentinel)) jget(struct json_object *o, ...)
{
	const char *k;
	va_list ap;

	va_start(ap, o);
	while ((k = va_arg(ap, const char *))) {
		struct json_object *next = NULL;

		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, (size_t)atoi(k));
		else if (!json_object_object_get_ex(o, k, &next))
			fail_msg("no key \"%s\"", k);
		o = next;
	}
	va_end(ap);
	return o;
}

/* ---- canned responses --------------------------------------------------------------------------
 */

static Ebpfmon__V1__Interface canned_ifs[2];
static Ebpfmon__V1__Interface *canned_if_ptrs[2];
static Ebpfmon__V1__Counters canned_counters;
static Ebpfmon__V1__Resources canned_resources;
static Ebpfmon__V1__ProgramStats canned_prog;
static Ebpfmon__V1__ProgramStats *canned_prog_ptrs[1];
static Ebpfmon__V1__GetMonitorStatusResponse canned_status;
static Ebpfmon__V1__Ban canned_bans[3];
static Ebpfmon__V1__Ban *canned_ban_ptrs[3];
static Ebpfmon__V1__GetMaliciousIPsResponse canned_bans_resp;
static Ebpfmon__V1__AddressStats canned_addr[2];
static Ebpfmon__V1__AddressStats *canned_addr_ptrs[2];
static Ebpfmon__V1__Snapshot canned_snap;
static Ebpfmon__V1__Snapshot *canned_snap_ptrs[1];
static Ebpfmon__V1__GetNetworkStatsResponse canned_stats, canned_history, canned_explain;
static Ebpfmon__V1__Anomaly canned_anoms[2];
static Ebpfmon__V1__Anomaly *canned_anom_ptrs[2];
static Ebpfmon__V1__GetSystemAnomaliesResponse canned_anoms_resp;
static Ebpfmon__V1__BanIPResponse canned_ban_resp;
static Ebpfmon__V1__UnbanIPResponse canned_unban_resp;

static void canned_init(void)
{
	static const Ebpfmon__V1__Interface ifc = EBPFMON__V1__INTERFACE__INIT;
	static const Ebpfmon__V1__Counters counters = EBPFMON__V1__COUNTERS__INIT;
	static const Ebpfmon__V1__Resources res = EBPFMON__V1__RESOURCES__INIT;
	static const Ebpfmon__V1__ProgramStats prog = EBPFMON__V1__PROGRAM_STATS__INIT;
	static const Ebpfmon__V1__GetMonitorStatusResponse status =
		EBPFMON__V1__GET_MONITOR_STATUS_RESPONSE__INIT;
	static const Ebpfmon__V1__Ban ban = EBPFMON__V1__BAN__INIT;
	static const Ebpfmon__V1__GetMaliciousIPsResponse bans =
		EBPFMON__V1__GET_MALICIOUS_IPS_RESPONSE__INIT;
	static const Ebpfmon__V1__AddressStats as = EBPFMON__V1__ADDRESS_STATS__INIT;
	static const Ebpfmon__V1__Snapshot snap = EBPFMON__V1__SNAPSHOT__INIT;
	static const Ebpfmon__V1__GetNetworkStatsResponse stats =
		EBPFMON__V1__GET_NETWORK_STATS_RESPONSE__INIT;
	static const Ebpfmon__V1__Anomaly anom = EBPFMON__V1__ANOMALY__INIT;
	static const Ebpfmon__V1__GetSystemAnomaliesResponse anoms =
		EBPFMON__V1__GET_SYSTEM_ANOMALIES_RESPONSE__INIT;
	static const Ebpfmon__V1__BanIPResponse banr = EBPFMON__V1__BAN_IPRESPONSE__INIT;
	static const Ebpfmon__V1__UnbanIPResponse unbanr = EBPFMON__V1__UNBAN_IPRESPONSE__INIT;
	int i;

	for (i = 0; i < 2; i++) {
		canned_ifs[i] = ifc;
		canned_if_ptrs[i] = &canned_ifs[i];
	}
	canned_ifs[0].name = (char *)"eth0";
	canned_ifs[0].ifindex = 2;
	canned_ifs[0].xdp_mode = (char *)"native";
	canned_ifs[1].name = (char *)"wlan0";
	canned_ifs[1].ifindex = 3;
	canned_ifs[1].xdp_mode = (char *)"generic";
	canned_counters = counters;
	canned_counters.rx_seen = 1234567;
	canned_counters.rx_passed = 1230000;
	canned_counters.rx_drop_ban = 4000;
	canned_counters.rx_drop_url = 567;
	canned_counters.events_lost = 3;
	canned_resources = res;
	canned_resources.cpu_percent = 12.3;
	canned_resources.memory_percent = 45.6;
	canned_resources.disk_io_bytes_per_second = 1234567;
	canned_prog = prog;
	canned_prog.name = (char *)"xdp_ingress";
	canned_prog.id = 42;
	canned_prog.run_count = 1000;
	canned_prog.run_time_ns = 85000;
	canned_prog_ptrs[0] = &canned_prog;
	canned_status = status;
	canned_status.version = (char *)"0.1.0";
	canned_status.uptime_seconds = 3 * 86400 + 4 * 3600;
	canned_status.n_interfaces = 2;
	canned_status.interfaces = canned_if_ptrs;
	canned_status.loader_running = 1;
	canned_status.analyzer_running = 1;
	canned_status.counters = &canned_counters;
	canned_status.active_bans = 12;
	canned_status.tracked_addresses = 3456;
	canned_status.database_ok = 1;
	canned_status.resources = &canned_resources;
	canned_status.n_programs = 1;
	canned_status.programs = canned_prog_ptrs;
	canned_status.open_anomalies = 1;

	for (i = 0; i < 3; i++) {
		canned_bans[i] = ban;
		canned_ban_ptrs[i] = &canned_bans[i];
	}
	canned_bans[0].id = 7;
	canned_bans[0].address = (char *)"198.51.100.7";
	canned_bans[0].reason = (char *)"url_rule";
	canned_bans[0].rule = (char *)"/wp-admin";
	canned_bans[0].path = (char *)"/wp-admin/setup.php";
	canned_bans[0].source = (char *)"auto";
	canned_bans[0].hits = 3;
	canned_bans[0].drops = 1500;
	canned_bans[0].banned_unix = NOW - 180;
	canned_bans[0].expires_unix = NOW + 540;
	canned_bans[1].id = 8;
	canned_bans[1].address = (char *)"2001:db8::/64";
	canned_bans[1].reason = (char *)"manual";
	canned_bans[1].rule = (char *)"scanner network";
	canned_bans[1].source = (char *)"manual";
	canned_bans[1].banned_unix = NOW - 7200;
	canned_bans[1].expires_unix = 0;
	canned_bans[1].drops = 18446744073709551615ull;
	canned_bans[2].id = 3;
	canned_bans[2].address = (char *)"198.51.100.7";
	canned_bans[2].reason = (char *)"conn_limit";
	canned_bans[2].source = (char *)"auto";
	canned_bans[2].banned_unix = NOW - 2 * 86400;
	canned_bans[2].expires_unix = NOW - 2 * 86400 + 600;
	canned_bans[2].ended_unix = NOW - 2 * 86400 + 600;
	canned_bans[2].end_reason = (char *)"expired";
	canned_bans[2].escalation_level = 1;
	canned_bans_resp = bans;
	canned_bans_resp.n_bans = 2;
	canned_bans_resp.bans = canned_ban_ptrs;
	canned_bans_resp.total = 5;

	for (i = 0; i < 2; i++) {
		canned_addr[i] = as;
		canned_addr_ptrs[i] = &canned_addr[i];
	}
	canned_addr[0].address = (char *)"198.51.100.7";
	canned_addr[0].rx_packets = 123456;
	canned_addr[0].rx_bytes = 1234567;
	canned_addr[0].tx_packets = 999;
	canned_addr[0].tx_bytes = 20480;
	canned_addr[0].syns = 12;
	canned_addr[0].connections = 3;
	canned_addr[0].first_seen_unix = NOW - 7200;
	canned_addr[0].last_seen_unix = NOW - 3;
	canned_addr[0].banned = 1;
	canned_addr[1].address = (char *)"2001:db8::1";
	canned_addr[1].rx_packets = 42;
	canned_addr[1].rx_bytes = 512;
	canned_addr[1].last_seen_unix = NOW - 60;
	canned_stats = stats;
	canned_stats.n_top = 2;
	canned_stats.top = canned_addr_ptrs;
	canned_stats.tracked_addresses = 3456;

	canned_snap = snap;
	canned_snap.ts_unix = NOW - 600;
	canned_snap.rx_packets = 5000000;
	canned_snap.rx_bytes = 6000000000ull;
	canned_snap.tracked_addresses = 3400;
	canned_snap.active_bans = 11;
	canned_snap.drops = 4500;
	canned_snap.n_top = 1;
	canned_snap.top = canned_addr_ptrs;
	canned_snap_ptrs[0] = &canned_snap;
	canned_history = stats;
	canned_history.n_snapshots = 1;
	canned_history.snapshots = canned_snap_ptrs;

	canned_explain = stats;
	canned_explain.address = &canned_addr[0];
	canned_explain.n_bans = 1;
	canned_explain.bans = canned_ban_ptrs; /* the active url_rule ban */

	for (i = 0; i < 2; i++) {
		canned_anoms[i] = anom;
		canned_anom_ptrs[i] = &canned_anoms[i];
	}
	canned_anoms[0].id = 2;
	canned_anoms[0].kind = (char *)"cpu";
	canned_anoms[0].started_unix = NOW - 300;
	canned_anoms[0].peak = 97.5;
	canned_anoms[0].threshold = 90;
	canned_anoms[0].top_pid = 4242;
	canned_anoms[0].top_comm = (char *)"stress-ng";
	canned_anoms[1].id = 1;
	canned_anoms[1].kind = (char *)"disk_io";
	canned_anoms[1].started_unix = NOW - 86400;
	canned_anoms[1].ended_unix = NOW - 86400 + 90;
	canned_anoms[1].peak = 250e6;
	canned_anoms[1].threshold = 100e6;
	canned_anoms_resp = anoms;
	canned_anoms_resp.n_anomalies = 2;
	canned_anoms_resp.anomalies = canned_anom_ptrs;
	canned_anoms_resp.total = 2;

	canned_ban_resp = banr;
	canned_ban_resp.ban = &canned_bans[1];
	canned_unban_resp = unbanr;
	canned_unban_resp.ended = 1;
}

/* ---- arguments ---------------------------------------------------------------------------------
 */

static void test_args_defaults_and_globals(void **state)
{
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "status", NULL);
	assert_int_equal(a.cmd, CTL_CMD_STATUS);
	assert_string_equal(a.url, "ipc:///run/ebpfmon/api.sock");
	assert_int_equal(a.timeout_ms, 5000);
	assert_false(a.json);
	assert_false(a.legacy);

	parse_ok(&a, "-s", "/tmp/x/api.sock", "--json", "--timeout", "250", "status", NULL);
	assert_string_equal(a.url, "ipc:///tmp/x/api.sock");
	assert_true(a.json);
	assert_int_equal(a.timeout_ms, 250);

	parse_ok(&a, "--socket=/run/other.sock", "bans", NULL);
	assert_string_equal(a.url, "ipc:///run/other.sock");
	parse_ok(&a, "--addr", "tcp://127.0.0.1:50051", "status", NULL);
	assert_string_equal(a.url, "tcp://127.0.0.1:50051");
	parse_ok(&a, "--addr=ipc:///run/ebpfmon/api.sock", "status", NULL);
	assert_string_equal(a.url, "ipc:///run/ebpfmon/api.sock");
	parse_ok(&a, "--addr", "abstract://ebpfmon", "status", NULL);
	assert_string_equal(a.url, "abstract://ebpfmon");

	/* global options after the command too */
	parse_ok(&a, "bans", "--json", "-s", "/tmp/a.sock", "--timeout=100", NULL);
	assert_int_equal(a.cmd, CTL_CMD_BANS);
	assert_true(a.json);
	assert_string_equal(a.url, "ipc:///tmp/a.sock");
	assert_int_equal(a.timeout_ms, 100);
	parse_ok(&a, "-j", "status", NULL);
	assert_true(a.json);
}

static void test_args_commands_and_aliases(void **state)
{
	static const struct {
		const char *word;
		enum ctl_command cmd;
	} cases[] = {
		{"status", CTL_CMD_STATUS},
		{"bans", CTL_CMD_BANS},
		{"malicious-ips", CTL_CMD_BANS},
		{"stats", CTL_CMD_STATS},
		{"network-stats", CTL_CMD_STATS},
		{"anomalies", CTL_CMD_ANOMALIES},
		{"system-anomalies", CTL_CMD_ANOMALIES},
		{"version", CTL_CMD_VERSION},
		{"top", CTL_CMD_TOP},
	};
	struct ctl_args a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_ok(&a, cases[i].word, NULL);
		assert_int_equal(a.cmd, cases[i].cmd);
		assert_int_equal(a.help, CTL_HELP_NONE);
	}
	parse_ok(&a, "ban", "192.0.2.1", NULL);
	assert_int_equal(a.cmd, CTL_CMD_BAN);
	assert_string_equal(a.address, "192.0.2.1");
	parse_ok(&a, "unban", "198.51.100.0/24", NULL);
	assert_int_equal(a.cmd, CTL_CMD_UNBAN);
	assert_string_equal(a.address, "198.51.100.0/24");
	parse_ok(&a, "explain", "2001:DB8:0::7", NULL);
	assert_int_equal(a.cmd, CTL_CMD_EXPLAIN);
	assert_string_equal(a.address, "2001:db8::7"); /* normalised */
	assert_string_equal(ctl_command_name(CTL_CMD_BANS), "bans");
}

static void test_args_help(void **state)
{
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "--help", NULL);
	assert_int_equal(a.help, CTL_HELP_USAGE);
	assert_int_equal(a.cmd, CTL_CMD_NONE);
	parse_ok(&a, "-h", NULL);
	assert_int_equal(a.help, CTL_HELP_USAGE);
	parse_ok(&a, "help", NULL);
	assert_int_equal(a.help, CTL_HELP_USAGE);
	assert_int_equal(a.cmd, CTL_CMD_NONE);
	parse_ok(&a, "help", "malicious-ips", NULL);
	assert_int_equal(a.help, CTL_HELP_USAGE);
	assert_int_equal(a.cmd, CTL_CMD_BANS);
	parse_ok(&a, "ban", "--help", NULL); /* no operand needed for help */
	assert_int_equal(a.help, CTL_HELP_USAGE);
	assert_int_equal(a.cmd, CTL_CMD_BAN);
	parse_ok(&a, "--version", NULL);
	assert_int_equal(a.help, CTL_HELP_VERSION);
	parse_ok(&a, "-V", NULL);
	assert_int_equal(a.help, CTL_HELP_VERSION);
	parse_bad("help: unknown command 'frobnicate'", "help", "frobnicate", NULL);
}

static void test_args_bans(void **state)
{
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "bans", NULL);
	assert_false(a.history);
	assert_string_equal(a.address, "");
	assert_int_equal(a.limit, 0);
	assert_int_equal(a.since_unix, 0);

	parse_ok(&a, "bans", "--all", "--net", "198.51.100.0/24", "--reason", "url_rule", "--since",
		 "1h", "--limit", "50", "--offset", "100", NULL);
	assert_true(a.history);
	assert_string_equal(a.address, "198.51.100.0/24");
	assert_string_equal(a.reason, "url_rule");
	assert_int_equal(a.since_unix, NOW - 3600);
	assert_int_equal(a.limit, 50);
	assert_int_equal(a.offset, 100);

	parse_ok(&a, "malicious-ips", "--history", "--net", "2001:DB8::/32", "--since",
		 "2023-11-01T00:00:00Z", NULL);
	assert_true(a.history);
	assert_string_equal(a.address, "2001:db8::/32");
	assert_int_equal(a.since_unix, 1698796800);
	parse_ok(&a, "bans", "--since", "@1600000000", "--net", "192.0.2.1", NULL);
	assert_int_equal(a.since_unix, 1600000000);
	assert_string_equal(a.address, "192.0.2.1");
	parse_ok(&a, "bans", "--limit", "10000", NULL);
	assert_int_equal(a.limit, 10000);
}

static void test_args_stats_anomalies(void **state)
{
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "stats", "--top", "20", "--bytes", NULL);
	assert_int_equal(a.cmd, CTL_CMD_STATS);
	assert_int_equal(a.top, 20);
	assert_true(a.order_bytes);
	assert_false(a.history);
	parse_ok(&a, "network-stats", "--ip", "::FFFF:198.51.100.9", NULL);
	assert_string_equal(a.address, "198.51.100.9");
	parse_ok(&a, "stats", "--history", "--since", "6h", "--limit", "5", NULL);
	assert_true(a.history);
	assert_int_equal(a.since_unix, NOW - 6 * 3600);
	assert_int_equal(a.limit, 5);

	parse_ok(&a, "anomalies", "--open", "--kind", "disk_io", "--since", "2d", NULL);
	assert_int_equal(a.cmd, CTL_CMD_ANOMALIES);
	assert_true(a.open_only);
	assert_string_equal(a.kind, "disk_io");
	assert_int_equal(a.since_unix, NOW - 2 * 86400);
	parse_ok(&a, "system-anomalies", "--kind", "memory", "--limit", "3", "--offset", "6", NULL);
	assert_string_equal(a.kind, "memory");
	assert_int_equal(a.limit, 3);
	assert_int_equal(a.offset, 6);
}

static void test_args_ban(void **state)
{
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "ban", "198.51.100.7", NULL);
	assert_int_equal(a.duration_s, 0);
	assert_false(a.permanent);
	assert_string_equal(a.reason, "");

	parse_ok(&a, "ban", "198.51.100.7", "--duration", "1h30m", "--reason",
		 "credential stuffing", NULL);
	assert_int_equal(a.duration_s, 5400);
	assert_string_equal(a.reason, "credential stuffing");
	/* options before the operand */
	parse_ok(&a, "ban", "--duration=90s", "2001:db8::bad", NULL);
	assert_int_equal(a.duration_s, 90);
	assert_string_equal(a.address, "2001:db8::bad");
	parse_ok(&a, "ban", "198.51.100.0/24", "--duration", "permanent", NULL);
	assert_true(a.permanent);
	assert_int_equal(a.duration_s, 0);
	assert_string_equal(a.address, "198.51.100.0/24");
	parse_ok(&a, "ban", "192.0.2.1", "--duration", "2d", NULL);
	assert_int_equal(a.duration_s, 2 * 86400);
	/* a reason is free text for ban, not one of the filter's names */
	parse_ok(&a, "ban", "192.0.2.1", "--reason", "manual", NULL);
	assert_string_equal(a.reason, "manual");
}

static void test_args_top(void **state)
{
	static const char json_refused[] = "top is a live view for people and has no --json: "
					   "scripts use 'ebpfmonctl stats --json'";
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "top", NULL);
	assert_int_equal(a.cmd, CTL_CMD_TOP);
	assert_int_equal(a.interval_ms, 1000);
	assert_int_equal(a.iterations, 0); /* the live view, when on a terminal */
	assert_int_equal(a.top, 0);	   /* as many as fit */
	assert_false(a.order_bytes);

	parse_ok(&a, "top", "--interval", "500ms", "--bytes", "--top", "20", "--once", NULL);
	assert_int_equal(a.interval_ms, 500);
	assert_true(a.order_bytes);
	assert_int_equal(a.top, 20);
	assert_int_equal(a.iterations, 1);
	parse_ok(&a, "-s", "/tmp/a.sock", "top", "--interval=2s", "--iterations", "5", "--timeout",
		 "200", NULL);
	assert_int_equal(a.interval_ms, 2000);
	assert_int_equal(a.iterations, 5);
	assert_int_equal(a.timeout_ms, 200);
	assert_string_equal(a.url, "ipc:///tmp/a.sock");
	parse_ok(&a, "top", "--interval", "1m30s", NULL);
	assert_int_equal(a.interval_ms, 90000);
	/* the bounds */
	parse_ok(&a, "top", "--interval", "100ms", NULL);
	assert_int_equal(a.interval_ms, 100);
	parse_ok(&a, "top", "--interval", "1h", NULL);
	assert_int_equal(a.interval_ms, 3600000);
	parse_ok(&a, "top", "--interval", "59m60s", NULL);
	assert_int_equal(a.interval_ms, 3600000);
	parse_ok(&a, "top", "--iterations", "1000000", NULL);
	assert_int_equal(a.iterations, 1000000);

	parse_bad("--interval '99ms': not a duration from 100ms to 1h", "top", "--interval", "99ms",
		  NULL);
	parse_bad("--interval '1h1ms'", "top", "--interval", "1h1ms", NULL);
	parse_bad("--interval '2h'", "top", "--interval", "2h", NULL);
	parse_bad("--interval '1': not a duration", "top", "--interval", "1", NULL);
	parse_bad("--interval '1.5s'", "top", "--interval", "1.5s", NULL);
	parse_bad("--interval '0s'", "top", "--interval", "0s", NULL);
	parse_bad("--interval '-1s'", "top", "--interval", "-1s", NULL);
	parse_bad("--interval '1 s'", "top", "--interval", "1 s", NULL);
	parse_bad("--interval '500mss'", "top", "--interval", "500mss", NULL);
	parse_bad("--interval ''", "top", "--interval", "", NULL);
	parse_bad("--iterations '0': not a number 1..1000000", "top", "--iterations", "0", NULL);
	parse_bad("--iterations '1000001'", "top", "--iterations", "1000001", NULL);
	parse_bad("--iterations 'two'", "top", "--iterations", "two", NULL);
	parse_bad("--top '0'", "top", "--top", "0", NULL);
	parse_bad("top: --once is --iterations 1: give one of them", "top", "--once",
		  "--iterations", "3", NULL);
	parse_bad(json_refused, "--json", "top", NULL);
	parse_bad(json_refused, "top", "-j", "--once", NULL);
	parse_bad("unknown or ambiguous option '--limit' for top", "top", "--limit", "5", NULL);
	parse_bad("unknown or ambiguous option '--ip' for top", "top", "--ip", "192.0.2.1", NULL);
	parse_bad("top: unexpected argument 'now'", "top", "now", NULL);
	/* --interval is top's: a ban's --duration does not take milliseconds */
	parse_bad("unknown or ambiguous option '--interval' for stats", "stats", "--interval", "1s",
		  NULL);
	parse_bad("--duration '500ms'", "ban", "192.0.2.1", "--duration", "500ms", NULL);

	/* help needs no server, and --json does not stand in its way */
	parse_ok(&a, "help", "top", NULL);
	assert_int_equal(a.help, CTL_HELP_USAGE);
	assert_int_equal(a.cmd, CTL_CMD_TOP);
	parse_ok(&a, "--json", "top", "--help", NULL);
	assert_int_equal(a.help, CTL_HELP_USAGE);
}

static void test_args_legacy(void **state)
{
	struct ctl_args a;

	(void)state;
	parse_ok(&a, "-addr=ipc:///tmp/api.sock", "-action=status", NULL);
	assert_true(a.legacy);
	assert_int_equal(a.cmd, CTL_CMD_STATUS);
	assert_string_equal(a.url, "ipc:///tmp/api.sock");

	parse_ok(&a, "-action=malicious-ips", NULL);
	assert_int_equal(a.cmd, CTL_CMD_BANS);
	assert_string_equal(a.url, "ipc:///run/ebpfmon/api.sock");
	parse_ok(&a, "-action", "network-stats", "-ip", "198.51.100.7", NULL);
	assert_int_equal(a.cmd, CTL_CMD_STATS);
	assert_string_equal(a.address, "198.51.100.7");
	parse_ok(&a, "--addr=tcp://127.0.0.1:50051", "--action=system-anomalies", NULL);
	assert_int_equal(a.cmd, CTL_CMD_ANOMALIES);
	assert_string_equal(a.url, "tcp://127.0.0.1:50051");
	parse_ok(&a, "-addr", "ipc:///tmp/api.sock", "-action=ban-ip", "-ip=198.51.100.0/24", NULL);
	assert_int_equal(a.cmd, CTL_CMD_BAN);
	assert_string_equal(a.address, "198.51.100.0/24");
	parse_ok(&a, "-action=unban-ip", "-ip=2001:DB8::1", "-json", NULL);
	assert_int_equal(a.cmd, CTL_CMD_UNBAN);
	assert_string_equal(a.address, "2001:db8::1");
	assert_true(a.json);
	parse_ok(&a, "-ip=192.0.2.1", "-action=malicious-ips", NULL);
	assert_int_equal(a.cmd, CTL_CMD_BANS);
	assert_string_equal(a.address, "192.0.2.1");

	parse_bad("-action 'frobnicate': not one of status, malicious-ips", "-action=frobnicate",
		  NULL);
	parse_bad("-action=ban-ip needs -ip=ADDR", "-action=ban-ip", NULL);
	parse_bad("-ip is not used by -action=status", "-action=status", "-ip=192.0.2.1", NULL);
	parse_bad("-ip '300.1.1.1'", "-action=ban-ip", "-ip=300.1.1.1", NULL);
	parse_bad("unknown flag '-bogus'", "-action=status", "-bogus", NULL);
	parse_bad("unexpected argument 'status'", "-action", "status", "status", NULL);
	parse_bad("option '-action' needs a value", "-addr=ipc:///x", "-action", NULL);
	parse_bad("-addr 'http://x'", "-addr=http://x", "-action=status", NULL);
}

/* tls+tcp:// and its options, from the command line or the environment. */
static void test_args_tls(void **state)
{
	struct ctl_args a;

	(void)state;
	unsetenv("EBPFMONCTL_CERT");
	unsetenv("EBPFMONCTL_KEY");
	unsetenv("EBPFMONCTL_CA");
	parse_ok(&a, "--addr", "tls+tcp://mon1.example.net:50051", "--cert", "/c.pem", "--key",
		 "/c.key", "--ca", "/ca.pem", "ban", "192.0.2.1", NULL);
	assert_string_equal(a.url, "tls+tcp://mon1.example.net:50051");
	assert_string_equal(a.tls.cert, "/c.pem");
	assert_string_equal(a.tls.key, "/c.key");
	assert_string_equal(a.tls.ca, "/ca.pem");
	assert_string_equal(a.tls.server_name, "");
	assert_int_equal(a.cmd, CTL_CMD_BAN);
	/* after the command too, and --server-name */
	parse_ok(&a, "--addr", "tls+tcp6://[::1]:9", "status", "--ca", "/ca.pem", "--server-name",
		 "mon1", NULL);
	assert_string_equal(a.tls.server_name, "mon1");
	assert_string_equal(a.tls.cert, "");
	/* the environment gives defaults; options win */
	setenv("EBPFMONCTL_CERT", "/env.pem", 1);
	setenv("EBPFMONCTL_KEY", "/env.key", 1);
	setenv("EBPFMONCTL_CA", "/env-ca.pem", 1);
	parse_ok(&a, "--addr", "tls+tcp://127.0.0.1:9", "--key", "/k", "status", NULL);
	assert_string_equal(a.tls.cert, "/env.pem");
	assert_string_equal(a.tls.key, "/k");
	assert_string_equal(a.tls.ca, "/env-ca.pem");
	/* set in the environment, unused by ipc:// */
	parse_ok(&a, "status", NULL);
	unsetenv("EBPFMONCTL_CERT");
	unsetenv("EBPFMONCTL_KEY");
	unsetenv("EBPFMONCTL_CA");

	parse_bad("--ca FILE (or EBPFMONCTL_CA)", "--addr", "tls+tcp://127.0.0.1:9", "--cert", "/c",
		  "--key", "/k", "status", NULL);
	parse_bad("--cert needs --key", "--addr", "tls+tcp://127.0.0.1:9", "--ca", "/ca", "--cert",
		  "/c", "status", NULL);
	parse_bad("--key needs --cert", "--addr", "tls+tcp://127.0.0.1:9", "--ca", "/ca", "--key",
		  "/k", "status", NULL);
	parse_bad("are for a tls+tcp:// --addr", "--addr", "tcp://127.0.0.1:9", "--ca", "/ca",
		  "status", NULL);
	parse_bad("are for a tls+tcp:// --addr", "--cert", "/c", "status", NULL);
	parse_bad("tls+tcp:// needs HOST:PORT", "--addr", "tls+tcp://127.0.0.1", "--ca", "/ca",
		  "status", NULL);
	parse_bad("--ca '': expected 1..255 bytes", "--addr", "tls+tcp://127.0.0.1:9", "--ca", "",
		  "status", NULL);
	parse_bad("option '--cert' needs a value", "status", "--cert", NULL);
}

static void test_args_bad(void **state)
{
	(void)state;
	{
		char *argv[] = {(char *)"ebpfmonctl", NULL};
		struct ctl_args a;
		char err[256];

		assert_int_equal(ctl_args_parse(&a, 1, argv, NOW, err, sizeof(err)), -EINVAL);
		assert_contains(err, "no command");
	}
	parse_bad("no command", "--json", NULL);
	parse_bad("unknown command 'frobnicate'", "frobnicate", NULL);
	parse_bad("unknown option '-x'", "-x", "status", NULL);
	parse_bad("unknown or ambiguous option '--frobnicate' for bans", "bans", "--frobnicate",
		  NULL);
	parse_bad("option '--json' takes no value", "bans", "--json=yes", NULL);
	parse_bad("option '--limit' needs a value", "bans", "--limit", NULL);
	parse_bad("option '-s' needs a value", "-s", NULL);
	parse_bad("status: unexpected argument 'now'", "status", "now", NULL);
	parse_bad("unknown or ambiguous option '--top' for bans", "bans", "--top", "5", NULL);

	/* addresses and networks */
	parse_bad("ban needs ADDR|CIDR", "ban", NULL);
	parse_bad("ban 'not-an-ip': not an address or a network", "ban", "not-an-ip", NULL);
	parse_bad("ban '192.0.2.1/24': host bits set beyond the prefix; did you mean 192.0.2.0/24?",
		  "ban", "192.0.2.1/24", NULL);
	parse_bad("ban '192.0.2.0/33': the prefix length is out of range (0..32 for IPv4", "ban",
		  "192.0.2.0/33", NULL);
	parse_bad("ban '2001:db8::/129': the prefix length is out of range", "ban",
		  "2001:db8::/129", NULL);
	parse_bad("ban: unexpected argument '192.0.2.2'", "ban", "192.0.2.1", "192.0.2.2", NULL);
	parse_bad("unban needs ADDR|CIDR", "unban", NULL);
	parse_bad("unban '2001:db8::1/32': host bits", "unban", "2001:db8::1/32", NULL);
	parse_bad("explain '192.0.2.0/24': one address, not a network", "explain", "192.0.2.0/24",
		  NULL);
	parse_bad("explain '192.0.2.256': not an IPv4 or IPv6 address", "explain", "192.0.2.256",
		  NULL);
	parse_bad("--net '10.0.0.1/8': host bits", "bans", "--net", "10.0.0.1/8", NULL);
	parse_bad("--ip 'host.example'", "stats", "--ip", "host.example", NULL);

	/* durations */
	parse_bad("--duration '90': not a duration", "ban", "192.0.2.1", "--duration", "90", NULL);
	parse_bad("--duration '0s': a ban lasts longer than 0; use permanent", "ban", "192.0.2.1",
		  "--duration", "0s", NULL);
	parse_bad("--duration '99999d': longer than 100 years", "ban", "192.0.2.1", "--duration",
		  "99999d", NULL);
	parse_bad("--duration '1x'", "ban", "192.0.2.1", "--duration", "1x", NULL);
	parse_bad("--duration '-1h'", "ban", "192.0.2.1", "--duration", "-1h", NULL);
	parse_bad("--duration ''", "ban", "192.0.2.1", "--duration", "", NULL);
	parse_bad("--duration '1h30'", "ban", "192.0.2.1", "--duration", "1h30", NULL);
	parse_bad("--duration 'forever'", "ban", "192.0.2.1", "--duration", "forever", NULL);
	parse_bad("--duration '99999999999999999999s'", "ban", "192.0.2.1", "--duration",
		  "99999999999999999999s", NULL);
	parse_bad("--reason: longer than 128 bytes", "ban", "192.0.2.1", "--reason",
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		  NULL);
	parse_bad("--reason: control characters", "ban", "192.0.2.1", "--reason", "a\nb", NULL);

	/* numbers */
	parse_bad("--limit '0': not a number 1..10000", "bans", "--limit", "0", NULL);
	parse_bad("--limit '10001'", "bans", "--limit", "10001", NULL);
	parse_bad("--limit 'ten'", "bans", "--limit", "ten", NULL);
	parse_bad("--limit '-5'", "bans", "--limit", "-5", NULL);
	parse_bad("--limit ' 5'", "bans", "--limit", " 5", NULL);
	parse_bad("--limit '5x'", "bans", "--limit", "5x", NULL);
	parse_bad("--limit '+5'", "bans", "--limit", "+5", NULL);
	parse_bad("--offset '18446744073709551616'", "bans", "--offset", "18446744073709551616",
		  NULL);
	parse_bad("--top '0'", "stats", "--top", "0", NULL);
	parse_bad("--timeout '0': not a number of milliseconds", "--timeout", "0", "status", NULL);
	parse_bad("--timeout '3600001'", "--timeout", "3600001", "status", NULL);
	parse_bad("--timeout '5s'", "status", "--timeout", "5s", NULL);

	/* filters */
	parse_bad("--reason 'bogus': not one of conn_limit, url_rule, manual, escalated", "bans",
		  "--reason", "bogus", NULL);
	parse_bad("--kind 'gpu': not one of cpu, memory, disk_io", "anomalies", "--kind", "gpu",
		  NULL);
	parse_bad("--since 'tomorrow'", "bans", "--since", "tomorrow", NULL);
	parse_bad("--since '2099-01-01'", "bans", "--since", "2099-01-01", NULL); /* future */
	parse_bad("--since '2023-02-30'", "bans", "--since", "2023-02-30", NULL);
	parse_bad("--since '23-01-01'", "bans", "--since", "23-01-01", NULL);
	parse_bad("--since '@1800000000'", "bans", "--since", "@1800000000", NULL);
	parse_bad("stats --ip shows one address", "stats", "--ip", "192.0.2.1", "--top", "5", NULL);
	parse_bad("stats: --since and --limit apply to --history", "stats", "--since", "1h", NULL);

	/* where the server is */
	parse_bad("-s: empty socket path", "-s", "", "status", NULL);
	parse_bad("a socket path, not a URL", "-s", "ipc:///x", "status", NULL);
	parse_bad("-s and --addr both name the server", "--addr", "ipc:///x", "-s", "/y", "status",
		  NULL);
	parse_bad("--addr 'http://x'", "--addr", "http://x", "status", NULL);
	parse_bad("--addr 'tcp://localhost': tcp:// needs HOST:PORT", "--addr", "tcp://localhost",
		  "status", NULL);
	parse_bad("--addr 'tcp://127.0.0.1:0'", "--addr", "tcp://127.0.0.1:0", "status", NULL);
	parse_bad("--ca FILE", "--addr", "tls+tcp://127.0.0.1:1", "status", NULL);
	parse_bad("--addr 'ipc://': ipc:// needs a socket path", "--addr", "ipc://", "status",
		  NULL);
}

static void test_parse_primitives(void **state)
{
	uint64_t v;
	int64_t t;

	(void)state;
	assert_int_equal(ctl_parse_duration("90s", &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(ctl_parse_duration("30m", &v), 0);
	assert_int_equal(v, 1800);
	assert_int_equal(ctl_parse_duration("1h", &v), 0);
	assert_int_equal(v, 3600);
	assert_int_equal(ctl_parse_duration("2d", &v), 0);
	assert_int_equal(v, 172800);
	assert_int_equal(ctl_parse_duration("1w", &v), 0);
	assert_int_equal(v, 604800);
	assert_int_equal(ctl_parse_duration("1d2h3m4s", &v), 0);
	assert_int_equal(v, 86400 + 7200 + 180 + 4);
	assert_int_equal(ctl_parse_duration("90", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration("1H", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration("h", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration("0m", &v), -EDOM);
	assert_int_equal(ctl_parse_duration("1 h", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration("36600d", &v), 0); /* 100 years */
	assert_int_equal(ctl_parse_duration("36601d", &v), -ERANGE);
	assert_int_equal(ctl_parse_duration("99999999999999999999999d", &v), -ERANGE);
	assert_int_equal(ctl_parse_duration("99999999999999999999999x", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration("permanent", &v), -EINVAL); /* the caller's word */
	assert_int_equal(ctl_parse_duration("500ms", &v), -EINVAL);

	assert_int_equal(ctl_parse_duration_ms("500ms", &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(ctl_parse_duration_ms("2s", &v), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(ctl_parse_duration_ms("1m30s", &v), 0);
	assert_int_equal(v, 90000);
	assert_int_equal(ctl_parse_duration_ms("1s500ms", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(ctl_parse_duration_ms("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(ctl_parse_duration_ms("1w", &v), 0);
	assert_int_equal(v, 604800000);
	assert_int_equal(ctl_parse_duration_ms("500", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration_ms("500MS", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration_ms("0ms", &v), -EDOM);
	assert_int_equal(ctl_parse_duration_ms("ms", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration_ms("0.5s", &v), -EINVAL);
	assert_int_equal(ctl_parse_duration_ms("36600d", &v), 0);
	assert_int_equal(ctl_parse_duration_ms("36601d", &v), -ERANGE);
	assert_int_equal(ctl_parse_duration_ms("99999999999999999999ms", &v), -ERANGE);

	assert_int_equal(ctl_parse_time("1h", NOW, &t), 0);
	assert_int_equal(t, NOW - 3600);
	assert_int_equal(ctl_parse_time("2023-11-14", NOW, &t), 0); /* TZ=UTC in main() */
	assert_int_equal(t, 1699920000);
	assert_int_equal(ctl_parse_time("2023-11-14 12:30", NOW, &t), 0);
	assert_int_equal(t, 1699920000 + 12 * 3600 + 1800);
	assert_int_equal(ctl_parse_time("2023-11-14T12:30:15Z", NOW, &t), 0);
	assert_int_equal(t, 1699920000 + 12 * 3600 + 1800 + 15);
	assert_int_equal(ctl_parse_time("2023-11-14 12:30:15 ", NOW, &t), -EINVAL);
	assert_int_equal(ctl_parse_time("2023-13-01", NOW, &t), -EINVAL);
	assert_int_equal(ctl_parse_time("@", NOW, &t), -EINVAL);
	assert_int_equal(ctl_parse_time("", NOW, &t), -EINVAL);

	assert_int_equal(ctl_parse_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ctl_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ctl_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(ctl_parse_u64("11", 0, 10, &v), -ERANGE);
	assert_int_equal(ctl_parse_u64("", 0, 10, &v), -EINVAL);
	assert_int_equal(ctl_parse_u64("0x10", 0, 100, &v), -EINVAL);
}

/* ---- units and tables --------------------------------------------------------------------------
 */

static void test_units(void **state)
{
	char b[CTL_FMT_LEN];

	(void)state;
	assert_string_equal(ctl_fmt_bytes(0, b, sizeof(b)), "0 B");
	assert_string_equal(ctl_fmt_bytes(999, b, sizeof(b)), "999 B");
	assert_string_equal(ctl_fmt_bytes(1000, b, sizeof(b)), "1.0 kB");
	assert_string_equal(ctl_fmt_bytes(1234567, b, sizeof(b)), "1.2 MB");
	assert_string_equal(ctl_fmt_bytes(12345678, b, sizeof(b)), "12 MB");
	assert_string_equal(ctl_fmt_bytes(999999, b, sizeof(b)), "1.0 MB");
	assert_string_equal(ctl_fmt_bytes(9960, b, sizeof(b)), "10 kB");
	assert_string_equal(ctl_fmt_bytes(6000000000ull, b, sizeof(b)), "6.0 GB");
	assert_string_equal(ctl_fmt_bytes(UINT64_MAX, b, sizeof(b)), "18 EB");
	assert_string_equal(ctl_fmt_count(999, b, sizeof(b)), "999");
	assert_string_equal(ctl_fmt_count(1234, b, sizeof(b)), "1.2k");
	assert_string_equal(ctl_fmt_count(123456, b, sizeof(b)), "123k");
	assert_string_equal(ctl_fmt_count(5000000, b, sizeof(b)), "5.0M");
	assert_string_equal(ctl_fmt_rate(1234567.0, b, sizeof(b)), "1.2 MB/s");
	assert_string_equal(ctl_fmt_rate(-1, b, sizeof(b)), "0 B/s");
	assert_string_equal(ctl_fmt_ns(850, b, sizeof(b)), "850 ns");
	assert_string_equal(ctl_fmt_ns(85000, b, sizeof(b)), "85 us");
	assert_string_equal(ctl_fmt_ns(2000000000, b, sizeof(b)), "2.0 s");

	assert_string_equal(ctl_fmt_duration(0, b, sizeof(b)), "0s");
	assert_string_equal(ctl_fmt_duration(45, b, sizeof(b)), "45s");
	assert_string_equal(ctl_fmt_duration(90, b, sizeof(b)), "1m30s");
	assert_string_equal(ctl_fmt_duration(720, b, sizeof(b)), "12m");
	assert_string_equal(ctl_fmt_duration(3900, b, sizeof(b)), "1h5m");
	assert_string_equal(ctl_fmt_duration(3 * 86400 + 4 * 3600, b, sizeof(b)), "3d4h");
	assert_string_equal(ctl_fmt_duration(40 * 86400, b, sizeof(b)), "40d");
	assert_string_equal(ctl_fmt_ago(NOW - 180, NOW, b, sizeof(b)), "3m ago");
	assert_string_equal(ctl_fmt_ago(NOW + 540, NOW, b, sizeof(b)), "in 9m");
	assert_string_equal(ctl_fmt_ago(NOW, NOW, b, sizeof(b)), "just now");
	assert_string_equal(ctl_fmt_ago(0, NOW, b, sizeof(b)), "-");
	assert_string_equal(ctl_fmt_time(NOW, b, sizeof(b)), "2023-11-14 22:13:20");
	assert_string_equal(ctl_fmt_time(0, b, sizeof(b)), "-");
}

static void test_table(void **state)
{
	static const struct ctl_column cols[] = {
		{"NAME", CTL_ALIGN_LEFT},
		{"BYTES", CTL_ALIGN_RIGHT},
		{"NOTE", CTL_ALIGN_LEFT},
	};
	const char *r1[] = {"a", "1.2 MB", "first"};
	const char *r2[] = {"longer-name", "12 B", NULL};
	const char *r3[] = {"esc\x1b[2J\\", "0 B", "caf\xc3\xa9"};
	struct ctl_table t;
	struct capture c;

	(void)state;
	capture_open(&c);
	ctl_table_init(&t, cols, 3);
	assert_int_equal(ctl_table_add(&t, r1), 0);
	assert_int_equal(ctl_table_add(&t, r2), 0);
	assert_int_equal(ctl_table_add(&t, r3), 0);
	assert_int_equal(ctl_table_print(&t, c.f), 0);
	ctl_table_fini(&t);
	/* left columns padded, right columns right-aligned, the last one not padded */
	assert_string_equal(capture_text(&c), "NAME           BYTES  NOTE\n"
					      "a             1.2 MB  first\n"
					      "longer-name     12 B  -\n"
					      "esc\\x1b[2J\\\\     0 B  caf\\xc3\\xa9\n");
	capture_close(&c);
}

/* ---- rendering ---------------------------------------------------------------------------------
 */

static void render(const char *what, bool json, struct capture *c)
{
	struct ctl_out o = {.json = json, .now = NOW};
	int ret = -1;

	capture_open(c);
	o.out = c->f;
	if (!strcmp(what, "status"))
		ret = ctl_render_status(&o, &canned_status);
	else if (!strcmp(what, "bans"))
		ret = ctl_render_bans(&o, &canned_bans_resp, false);
	else if (!strcmp(what, "stats"))
		ret = ctl_render_stats(&o, &canned_stats, false);
	else if (!strcmp(what, "history"))
		ret = ctl_render_stats(&o, &canned_history, true);
	else if (!strcmp(what, "explain"))
		ret = ctl_render_explain(&o, &canned_explain, "198.51.100.7");
	else if (!strcmp(what, "anomalies"))
		ret = ctl_render_anomalies(&o, &canned_anoms_resp);
	else if (!strcmp(what, "ban"))
		ret = ctl_render_ban(&o, &canned_ban_resp, "2001:db8::/64");
	else if (!strcmp(what, "unban"))
		ret = ctl_render_unban(&o, &canned_unban_resp, "198.51.100.7");
	assert_int_equal(ret, 0);
}

static void test_render_status(void **state)
{
	struct json_object *doc;
	struct capture c;
	const char *text;
	char line[256];

	(void)state;
	render("status", false, &c);
	text = capture_text(&c);
	assert_contains(text, "ebpfmon 0.1.0, up 3d4h\n");
	assert_contains(text, "  loader:       running\n");
	assert_contains(text, "  mode:         enforcing\n");
	assert_contains(text, "  database:     ok\n");
	assert_contains(text, "  interfaces:   eth0 (native), wlan0 (generic)\n");
	assert_contains(text, "  bans:         12 active\n");
	assert_contains(text, "  tracked:      3.5k addresses\n");
	assert_contains(text, "  resources:    CPU 12.3%, memory 45.6%, disk 1.2 MB/s\n");
	assert_contains(text, "  packets:      1.2M seen, 1.2M passed, 4.6k dropped\n");
	/* counters: exact numbers, right-aligned under VALUE */
	line_with(text, "COUNTER", line, sizeof(line));
	{
		char row[256];
		long end = col_end(line, "VALUE");

		line_with(text, "rx_seen", row, sizeof(row));
		assert_int_equal(col_end(row, "1234567"), end);
		line_with(text, "events_lost", row, sizeof(row));
		assert_int_equal(col_end(row, "3"), end);
	}
	assert_contains(text, "xdp_ingress");
	assert_contains(text, "85 ns"); /* per run */
	capture_close(&c);

	/* failing database and dry run are loud */
	canned_status.database_ok = 0;
	canned_status.database_failing_since_unix = NOW - 300;
	canned_status.database_error = (char *)"disk I/O error";
	canned_status.dry_run = 1;
	render("status", false, &c);
	assert_contains(capture_text(&c), "  database:     FAILING since 5m ago: disk I/O error\n");
	assert_contains(capture_text(&c), "DRY RUN");
	capture_close(&c);
	canned_status.database_ok = 1;
	canned_status.database_failing_since_unix = 0;
	canned_status.database_error = (char *)"";
	canned_status.dry_run = 0;

	render("status", true, &c);
	text = capture_text(&c);
	doc = json_parse_doc(text);
	assert_string_equal(json_object_get_string(jget(doc, "version", NULL)), "0.1.0");
	assert_int_equal(json_object_get_uint64(jget(doc, "counters", "rx_seen", NULL)), 1234567);
	assert_int_equal(json_object_get_int(jget(doc, "interfaces", "1", "ifindex", NULL)), 3);
	assert_string_equal(json_object_get_string(jget(doc, "interfaces", "0", "xdp_mode", NULL)),
			    "native");
	assert_true(json_object_get_boolean(jget(doc, "loader_running", NULL)));
	assert_false(json_object_get_boolean(jget(doc, "dry_run", NULL)));
	assert_true(json_object_get_double(jget(doc, "resources", "cpu_percent", NULL)) == 12.3);
	assert_contains(text, "\"cpu_percent\": 12.3,"); /* not 12.300000000000001 */
	assert_int_equal(json_object_get_int64(jget(doc, "database_failing_since_unix", NULL)), 0);
	assert_string_equal(json_object_get_string(jget(doc, "database_error", NULL)), "");
	assert_int_equal(json_object_get_uint64(jget(doc, "programs", "0", "run_time_ns", NULL)),
			 85000);
	json_object_put(doc);
	capture_close(&c);
}

static void test_render_bans(void **state)
{
	struct json_object *doc, *b0;
	char header[512], row[512], row2[512];
	struct capture c;
	const char *text;

	(void)state;
	render("bans", false, &c);
	text = capture_text(&c);
	line_with(text, "ADDRESS", header, sizeof(header));
	line_with(text, "198.51.100.7", row, sizeof(row));
	line_with(text, "2001:db8::/64", row2, sizeof(row2));
	/* columns line up under their headers */
	assert_int_equal(col_start(row, "url_rule"), col_start(header, "REASON"));
	assert_int_equal(col_start(row2, "manual"), col_start(header, "REASON"));
	assert_int_equal(col_start(row, "3m ago"), col_start(header, "BANNED"));
	assert_int_equal(col_start(row2, "2h ago"), col_start(header, "BANNED"));
	assert_int_equal(col_start(row, "in 9m"), col_start(header, "EXPIRES"));
	assert_int_equal(col_start(row2, "permanent"), col_start(header, "EXPIRES"));
	assert_int_equal(col_end(row, "1.5k"), col_end(header, "DROPS"));
	assert_int_equal(col_end(row2, "18E"), col_end(header, "DROPS"));
	assert_int_equal(col_start(row, "/wp-admin: /wp-admin/setup.php"),
			 col_start(header, "RULE/PATH"));
	assert_int_equal(col_start(row2, "scanner network"), col_start(header, "RULE/PATH"));
	assert_lacks(header, "ENDED"); /* active bans only */
	assert_contains(text, "(2 of 5 shown; --limit and --offset page through them)\n");
	assert_lacks(text, " \n"); /* no trailing blanks */
	capture_close(&c);

	render("bans", true, &c);
	text = capture_text(&c);
	doc = json_parse_doc(text);
	assert_int_equal(json_object_get_uint64(jget(doc, "total", NULL)), 5);
	assert_int_equal(json_object_array_length(jget(doc, "bans", NULL)), 2);
	b0 = jget(doc, "bans", "0", NULL);
	assert_string_equal(json_object_get_string(jget(b0, "address", NULL)), "198.51.100.7");
	assert_string_equal(json_object_get_string(jget(b0, "reason", NULL)), "url_rule");
	assert_string_equal(json_object_get_string(jget(b0, "path", NULL)), "/wp-admin/setup.php");
	assert_int_equal(json_object_get_int64(jget(b0, "banned_unix", NULL)), NOW - 180);
	assert_int_equal(json_object_get_int64(jget(b0, "expires_unix", NULL)), NOW + 540);
	assert_int_equal(json_object_get_int64(jget(b0, "ended_unix", NULL)), 0);
	assert_int_equal(json_object_get_int(jget(b0, "escalation_level", NULL)), 0);
	assert_false(json_object_get_boolean(jget(b0, "dry_run", NULL)));
	assert_true(json_object_get_uint64(jget(doc, "bans", "1", "drops", NULL)) == UINT64_MAX);
	assert_contains(text, "\"path\": \"/wp-admin/setup.php\""); /* slashes not escaped */
	assert_contains(text, "18446744073709551615");
	json_object_put(doc);
	capture_close(&c);

	/* history: an ENDED column; the expired one says so */
	{
		struct ctl_out o = {.json = false, .now = NOW};
		Ebpfmon__V1__GetMaliciousIPsResponse hist = canned_bans_resp;
		Ebpfmon__V1__Ban *list[1] = {&canned_bans[2]};

		hist.n_bans = 1;
		hist.bans = list;
		hist.total = 1;
		capture_open(&c);
		o.out = c.f;
		assert_int_equal(ctl_render_bans(&o, &hist, true), 0);
		text = capture_text(&c);
		line_with(text, "ADDRESS", header, sizeof(header));
		line_with(text, "198.51.100.7", row, sizeof(row));
		assert_int_equal(col_start(row, "1d23h ago (expired)"), col_start(header, "ENDED"));
		assert_contains(row, "conn_limit (level 1)");
		assert_lacks(text, "shown");
		capture_close(&c);

		hist.n_bans = 0;
		capture_open(&c);
		o.out = c.f;
		assert_int_equal(ctl_render_bans(&o, &hist, false), 0);
		assert_string_equal(capture_text(&c), "no active bans\n(1 match; --offset is past "
						      "them)\n");
		capture_close(&c);
	}
}

static void test_render_stats(void **state)
{
	char header[512], row[512], row2[512];
	struct json_object *doc;
	struct capture c;
	const char *text;

	(void)state;
	render("stats", false, &c);
	text = capture_text(&c);
	line_with(text, "ADDRESS", header, sizeof(header));
	line_with(text, "198.51.100.7", row, sizeof(row));
	line_with(text, "2001:db8::1", row2, sizeof(row2));
	assert_int_equal(col_end(row, "123k"), col_end(header, "RX_PKTS"));
	assert_int_equal(col_end(row2, "42"), col_end(header, "RX_PKTS"));
	assert_int_equal(col_end(row, "1.2 MB"), col_end(header, "RX_BYTES"));
	assert_int_equal(col_end(row2, "512 B"), col_end(header, "RX_BYTES"));
	assert_int_equal(col_end(row, "20 kB"), col_end(header, "TX_BYTES"));
	assert_int_equal(col_start(row, "3s ago"), col_start(header, "LAST_SEEN"));
	assert_int_equal(col_start(row2, "1m ago"), col_start(header, "LAST_SEEN"));
	assert_int_equal(col_start(row, "yes"), col_start(header, "BANNED"));
	assert_int_equal(col_start(row2, "no"), col_start(header, "BANNED"));
	assert_contains(text, "(3.5k addresses tracked)\n");
	capture_close(&c);

	render("stats", true, &c);
	doc = json_parse_doc(capture_text(&c));
	assert_int_equal(json_object_get_uint64(jget(doc, "tracked_addresses", NULL)), 3456);
	assert_int_equal(json_object_get_uint64(jget(doc, "top", "0", "rx_bytes", NULL)), 1234567);
	assert_int_equal(json_object_get_uint64(jget(doc, "top", "0", "connections", NULL)), 3);
	assert_true(json_object_get_boolean(jget(doc, "top", "0", "banned", NULL)));
	assert_null(jget(doc, "address", NULL)); /* not asked for: null */
	assert_int_equal(json_object_array_length(jget(doc, "snapshots", NULL)), 0);
	json_object_put(doc);
	capture_close(&c);

	render("history", false, &c);
	text = capture_text(&c);
	line_with(text, "TIME", header, sizeof(header));
	line_with(text, "2023-11-14 22:03:20", row, sizeof(row));
	assert_int_equal(col_end(row, "5.0M"), col_end(header, "RX_PKTS"));
	assert_int_equal(col_end(row, "6.0 GB"), col_end(header, "RX_BYTES"));
	assert_int_equal(col_start(row, "198.51.100.7"), col_start(header, "TOP_ADDRESS"));
	capture_close(&c);
}

static void test_render_explain(void **state)
{
	char header[512], row[512];
	struct json_object *doc;
	struct capture c;
	const char *text;

	(void)state;
	render("explain", false, &c);
	text = capture_text(&c);
	assert_contains(text, "198.51.100.7: banned (url_rule, expires in 9m)\n");
	assert_contains(text, "  traffic in:   123k packets, 1.2 MB\n");
	assert_contains(text, "  traffic out:  999 packets, 20 kB\n");
	assert_contains(text, "  SYNs:         12\n");
	assert_contains(text, "  connections:  3 established\n");
	assert_contains(text, "  first seen:   2h ago (2023-11-14 20:13:20)\n");
	assert_contains(text, "  last seen:    3s ago");
	line_with(text, "ADDRESS", header, sizeof(header));
	line_with(text, "/wp-admin/setup.php", row, sizeof(row));
	assert_int_equal(col_start(row, "/wp-admin: /wp-admin/setup.php"),
			 col_start(header, "RULE/PATH"));
	assert_int_equal(col_start(row, "active"), col_start(header, "ENDED"));
	capture_close(&c);

	render("explain", true, &c);
	doc = json_parse_doc(capture_text(&c));
	assert_string_equal(json_object_get_string(jget(doc, "address", "address", NULL)),
			    "198.51.100.7");
	assert_int_equal(json_object_get_uint64(jget(doc, "address", "syns", NULL)), 12);
	assert_string_equal(json_object_get_string(jget(doc, "bans", "0", "rule", NULL)),
			    "/wp-admin");
	assert_string_equal(json_object_get_string(jget(doc, "bans", "0", "path", NULL)),
			    "/wp-admin/setup.php");
	json_object_put(doc);
	capture_close(&c);

	/* an address never seen and never banned */
	{
		Ebpfmon__V1__GetNetworkStatsResponse none =
			EBPFMON__V1__GET_NETWORK_STATS_RESPONSE__INIT;
		struct ctl_out o = {.json = false, .now = NOW};

		capture_open(&c);
		o.out = c.f;
		assert_int_equal(ctl_render_explain(&o, &none, "192.0.2.99"), 0);
		assert_string_equal(capture_text(&c),
				    "192.0.2.99: not banned\n"
				    "  no traffic recorded (not among the tracked addresses)\n"
				    "\nnever banned\n");
		capture_close(&c);
	}
}

static void test_render_anomalies_ban_unban(void **state)
{
	char header[512], row[512], row2[512];
	struct json_object *doc;
	struct capture c;
	const char *text;

	(void)state;
	render("anomalies", false, &c);
	text = capture_text(&c);
	line_with(text, "KIND", header, sizeof(header));
	line_with(text, "cpu", row, sizeof(row));
	line_with(text, "disk_io", row2, sizeof(row2));
	assert_int_equal(col_start(row, "open"), col_start(header, "ENDED"));
	assert_int_equal(col_end(row, "97.5%"), col_end(header, "PEAK"));
	assert_int_equal(col_end(row2, "250 MB/s"), col_end(header, "PEAK"));
	assert_int_equal(col_end(row2, "100 MB/s"), col_end(header, "THRESHOLD"));
	assert_cell_right(header, "LASTED", row, "5m");
	assert_int_equal(col_end(row2, "1m30s"), col_end(header, "LASTED"));
	assert_int_equal(col_start(row, "stress-ng (4242)"), col_start(header, "TOP_PROCESS"));
	capture_close(&c);

	render("anomalies", true, &c);
	doc = json_parse_doc(capture_text(&c));
	assert_string_equal(json_object_get_string(jget(doc, "anomalies", "0", "kind", NULL)),
			    "cpu");
	assert_true(json_object_get_double(jget(doc, "anomalies", "0", "peak", NULL)) == 97.5);
	assert_int_equal(json_object_get_int(jget(doc, "anomalies", "0", "top_pid", NULL)), 4242);
	assert_true(json_object_get_double(jget(doc, "anomalies", "1", "threshold", NULL)) ==
		    100e6);
	json_object_put(doc);
	capture_close(&c);

	render("ban", false, &c);
	assert_string_equal(capture_text(&c), "banned 2001:db8::/64 permanently; ban 8\n");
	capture_close(&c);
	canned_ban_resp.ban = &canned_bans[0];
	render("ban", false, &c);
	assert_string_equal(capture_text(&c),
			    "banned 198.51.100.7 until 2023-11-14 22:22:20 (in 9m); ban 7\n");
	capture_close(&c);
	render("ban", true, &c);
	doc = json_parse_doc(capture_text(&c));
	assert_int_equal(json_object_get_uint64(jget(doc, "ban", "id", NULL)), 7);
	assert_string_equal(json_object_get_string(jget(doc, "ban", "source", NULL)), "auto");
	json_object_put(doc);
	capture_close(&c);
	canned_ban_resp.ban = &canned_bans[1];

	render("unban", false, &c);
	assert_string_equal(capture_text(&c), "unbanned 198.51.100.7 (1 ban ended)\n");
	capture_close(&c);
	render("unban", true, &c);
	doc = json_parse_doc(capture_text(&c));
	assert_int_equal(json_object_get_int(jget(doc, "ended", NULL)), 1);
	json_object_put(doc);
	capture_close(&c);
}

/* What a peer sends is escaped in tables and made valid UTF-8 in JSON. */
static void test_render_hostile_strings(void **state)
{
	Ebpfmon__V1__Ban b = canned_bans[0];
	Ebpfmon__V1__Ban *list[1] = {&b};
	Ebpfmon__V1__GetMaliciousIPsResponse r = canned_bans_resp;
	struct ctl_out o = {.now = NOW};
	struct json_object *doc;
	struct capture c;

	(void)state;
	b.path = (char *)"/x\r\n\x1b[31m\xff\xfe";
	r.bans = list;
	r.n_bans = 1;
	r.total = 1;
	capture_open(&c);
	o.out = c.f;
	assert_int_equal(ctl_render_bans(&o, &r, false), 0);
	assert_contains(capture_text(&c), "/x\\x0d\\x0a\\x1b[31m\\xff\\xfe");
	assert_lacks(capture_text(&c), "\x1b");
	capture_close(&c);

	o.json = true;
	capture_open(&c);
	o.out = c.f;
	assert_int_equal(ctl_render_bans(&o, &r, false), 0);
	doc = json_parse_doc(capture_text(&c));
	assert_string_equal(json_object_get_string(jget(doc, "bans", "0", "path", NULL)),
			    "/x\r\n\x1b[31m\xef\xbf\xbd\xef\xbf\xbd");
	json_object_put(doc);
	capture_close(&c);
}

static void test_render_version(void **state)
{
	struct ctl_out o = {.now = NOW};
	struct json_object *doc;
	struct capture c;

	(void)state;
	capture_open(&c);
	o.out = c.f;
	assert_int_equal(ctl_render_version(&o, "0.1.0", "0.1.1", 1), 0);
	assert_string_equal(capture_text(&c), "ebpfmonctl 0.1.0\nebpfmon-analyzer 0.1.1\n"
					      "protocol 1\n");
	capture_close(&c);
	o.json = true;
	capture_open(&c);
	o.out = c.f;
	assert_int_equal(ctl_render_version(&o, "0.1.0", NULL, 1), 0);
	doc = json_parse_doc(capture_text(&c));
	assert_string_equal(json_object_get_string(jget(doc, "client_version", NULL)), "0.1.0");
	assert_null(jget(doc, "server_version", NULL));
	assert_int_equal(json_object_get_int(jget(doc, "protocol_version", NULL)), 1);
	json_object_put(doc);
	capture_close(&c);
	assert_string_equal(ctl_status_name(EBPFMON__V1__STATUS__STATUS_NOT_PERMITTED),
			    "STATUS_NOT_PERMITTED");
	assert_null(ctl_status_name(99));
}

/* ---- the client against a fake server ----------------------------------------------------------
 */

enum fake_mode {
	FAKE_OK,	/* the canned result of the call */
	FAKE_REFUSE,	/* STATUS_NOT_PERMITTED with a message */
	FAKE_GARBAGE,	/* bytes that are no Response */
	FAKE_NO_RESULT, /* STATUS_OK without a result */
	FAKE_SILENT,	/* receive, never reply */
};

struct fake {
	char dir[64];
	char path[128];
	char url[160];
	nng_socket sock;
	pthread_t thread;
	enum fake_mode mode;
	pthread_mutex_t lock;
	Ebpfmon__V1__Request *last; /* the last request received */
	int requests;
	/* the last GetNetworkStats (top makes other calls between them) */
	uint32_t stats_top;
	int stats_order;
};

static void fake_reply(struct fake *f, const Ebpfmon__V1__Request *req, nng_msg *msg)
{
	Ebpfmon__V1__Response resp = EBPFMON__V1__RESPONSE__INIT;
	size_t len;

	resp.version = 1;
	switch (f->mode) {
	case FAKE_GARBAGE:
		nng_msg_clear(msg);
		nng_msg_append(msg, "\xff\xff\xff\xff garbage", 12);
		nng_sendmsg(f->sock, msg, 0);
		return;
	case FAKE_REFUSE:
		resp.status = EBPFMON__V1__STATUS__STATUS_NOT_PERMITTED;
		resp.message = (char *)"uid 1000 is neither root nor in group ebpfmon-admin";
		break;
	case FAKE_NO_RESULT:
		break;
	default:
		if (!req || req->version != 1) {
			resp.status = EBPFMON__V1__STATUS__STATUS_UNSUPPORTED_VERSION;
			resp.message = (char *)"unsupported version";
			break;
		}
		resp.result_case = (Ebpfmon__V1__Response__ResultCase)req->call_case;
		switch (req->call_case) {
		case EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS:
			resp.get_monitor_status = &canned_status;
			break;
		case EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS:
			resp.get_malicious_ips = &canned_bans_resp;
			break;
		case EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS:
			resp.get_network_stats = req->get_network_stats->address[0]
							 ? &canned_explain
							 : &canned_stats;
			break;
		case EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES:
			resp.get_system_anomalies = &canned_anoms_resp;
			break;
		case EBPFMON__V1__REQUEST__CALL_BAN_IP:
			resp.ban_ip = &canned_ban_resp;
			break;
		case EBPFMON__V1__REQUEST__CALL_UNBAN_IP:
			resp.unban_ip = &canned_unban_resp;
			break;
		default:
			resp.result_case = EBPFMON__V1__RESPONSE__RESULT__NOT_SET;
			resp.status = EBPFMON__V1__STATUS__STATUS_MALFORMED;
			break;
		}
	}
	len = ebpfmon__v1__response__get_packed_size(&resp);
	nng_msg_clear(msg);
	if (nng_msg_realloc(msg, len)) {
		nng_msg_free(msg);
		return;
	}
	ebpfmon__v1__response__pack(&resp, nng_msg_body(msg));
	if (nng_sendmsg(f->sock, msg, 0))
		nng_msg_free(msg);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	nng_msg *msg;

	while (!nng_recvmsg(f->sock, &msg, 0)) {
		Ebpfmon__V1__Request *req =
			ebpfmon__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));

		pthread_mutex_lock(&f->lock);
		if (f->last)
			ebpfmon__v1__request__free_unpacked(f->last, NULL);
		f->last = req;
		f->requests++;
		if (req && req->call_case == EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS) {
			f->stats_top = req->get_network_stats->top;
			f->stats_order = (int)req->get_network_stats->order;
		}
		pthread_mutex_unlock(&f->lock);
		if (f->mode == FAKE_SILENT) {
			nng_msg_free(msg);
			continue;
		}
		fake_reply(f, req, msg);
	}
	return NULL;
}

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ebpfmon-ctl-test.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/api.sock", f->dir);
	snprintf(f->url, sizeof(f->url), "ipc://%s", f->path);
	pthread_mutex_init(&f->lock, NULL);
	*state = f;
	return 0;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	f->mode = mode;
	assert_int_equal(nng_rep0_open(&f->sock), 0);
	assert_int_equal(nng_listen(f->sock, f->url, NULL, 0), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	if (nng_socket_id(f->sock) > 0) {
		nng_close(f->sock);
		pthread_join(f->thread, NULL);
	}
	if (f->last)
		ebpfmon__v1__request__free_unpacked(f->last, NULL);
	unlink(f->path);
	rmdir(f->dir);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

/* Parse a command line with the fake's socket, run it; its exit status. */
static int __attribute__((sentinel))
run_cmd(struct fake *f, struct capture *out, struct capture *err, const char *first, ...)
{
	struct ctl_args a;
	char msg[512];
	va_list ap;
	int ret;

	va_start(ap, first);
	ret = parse_list(&a, msg, sizeof(msg), first, ap);
	va_end(ap);
	if (ret)
		fail_msg("parse failed: %s", msg);
	if (!a.legacy)
		snprintf(a.url, sizeof(a.url), "%s", f->url);
	capture_open(out);
	capture_open(err);
	ret = ctl_run(&a, out->f, err->f);
	if (ret)
		print_message("exit %d: %s", ret, capture_text(err));
	return ret;
}

static void test_client_reply(void **state)
{
	struct fake *f = *state;
	struct capture out, err;
	struct json_object *doc;

	fake_start(f, FAKE_OK);

	/* bans: the request carries the filters, the reply is rendered */
	assert_int_equal(run_cmd(f, &out, &err, "--json", "bans", "--all", "--net",
				 "198.51.100.0/24", "--reason", "url_rule", "--limit", "20", NULL),
			 CTL_EXIT_OK);
	assert_string_equal(capture_text(&err), "");
	doc = json_parse_doc(capture_text(&out));
	assert_int_equal(json_object_get_uint64(jget(doc, "total", NULL)), 5);
	json_object_put(doc);
	pthread_mutex_lock(&f->lock);
	assert_non_null(f->last);
	assert_int_equal(f->last->version, 1);
	assert_int_equal(f->last->call_case, EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS);
	assert_true(f->last->get_malicious_ips->history);
	assert_string_equal(f->last->get_malicious_ips->network, "198.51.100.0/24");
	assert_string_equal(f->last->get_malicious_ips->reason, "url_rule");
	assert_int_equal(f->last->get_malicious_ips->limit, 20);
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);

	/* ban: address, duration and reason reach the server */
	assert_int_equal(run_cmd(f, &out, &err, "ban", "198.51.100.7", "--duration", "30m",
				 "--reason", "manual test", NULL),
			 CTL_EXIT_OK);
	assert_contains(capture_text(&out), "banned 2001:db8::/64 permanently; ban 8\n");
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last->call_case, EBPFMON__V1__REQUEST__CALL_BAN_IP);
	assert_string_equal(f->last->ban_ip->address, "198.51.100.7");
	assert_int_equal(f->last->ban_ip->duration_seconds, 1800);
	assert_false(f->last->ban_ip->permanent);
	assert_string_equal(f->last->ban_ip->reason, "manual test");
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);

	/* every other command makes its call and renders something */
	assert_int_equal(run_cmd(f, &out, &err, "status", NULL), CTL_EXIT_OK);
	assert_contains(capture_text(&out), "ebpfmon 0.1.0, up 3d4h");
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(run_cmd(f, &out, &err, "stats", "--top", "5", "--bytes", NULL),
			 CTL_EXIT_OK);
	assert_contains(capture_text(&out), "RX_BYTES");
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last->get_network_stats->top, 5);
	assert_int_equal(f->last->get_network_stats->order,
			 EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES);
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(run_cmd(f, &out, &err, "explain", "198.51.100.7", NULL), CTL_EXIT_OK);
	assert_contains(capture_text(&out), "198.51.100.7: banned (url_rule");
	pthread_mutex_lock(&f->lock);
	assert_string_equal(f->last->get_network_stats->address, "198.51.100.7");
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(run_cmd(f, &out, &err, "anomalies", "--open", "--kind", "cpu", NULL),
			 CTL_EXIT_OK);
	assert_contains(capture_text(&out), "stress-ng (4242)");
	pthread_mutex_lock(&f->lock);
	assert_true(f->last->get_system_anomalies->open_only);
	assert_string_equal(f->last->get_system_anomalies->kind, "cpu");
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(run_cmd(f, &out, &err, "unban", "198.51.100.0/24", NULL), CTL_EXIT_OK);
	assert_string_equal(capture_text(&out), "unbanned 198.51.100.0/24 (1 ban ended)\n");
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(run_cmd(f, &out, &err, "version", NULL), CTL_EXIT_OK);
	assert_contains(capture_text(&out), "ebpfmon-analyzer 0.1.0\n");
	capture_close(&out);
	capture_close(&err);

	/* the legacy form reaches the same server */
	{
		char addr[200];

		snprintf(addr, sizeof(addr), "-addr=%s", f->url);
		assert_int_equal(
			run_cmd(f, &out, &err, addr, "-action=unban-ip", "-ip=198.51.100.7", NULL),
			CTL_EXIT_OK);
		assert_string_equal(capture_text(&out), "unbanned 198.51.100.7 (1 ban ended)\n");
		pthread_mutex_lock(&f->lock);
		assert_int_equal(f->last->call_case, EBPFMON__V1__REQUEST__CALL_UNBAN_IP);
		assert_string_equal(f->last->unban_ip->address, "198.51.100.7");
		pthread_mutex_unlock(&f->lock);
		capture_close(&out);
		capture_close(&err);
	}
}

static void test_client_refused(void **state)
{
	struct fake *f = *state;
	struct capture out, err;

	fake_start(f, FAKE_REFUSE);
	assert_int_equal(run_cmd(f, &out, &err, "ban", "198.51.100.7", NULL), CTL_EXIT_REFUSED);
	assert_string_equal(capture_text(&out), "");
	assert_contains(capture_text(&err),
			"ebpfmonctl: the analyzer refused: STATUS_NOT_PERMITTED: uid 1000 is "
			"neither root nor in group ebpfmon-admin\n");
	assert_contains(capture_text(&err), "hint: Bans and unbans need root");
	capture_close(&out);
	capture_close(&err);
}

static void test_client_garbage(void **state)
{
	struct fake *f = *state;
	struct capture out, err;

	fake_start(f, FAKE_GARBAGE);
	assert_int_equal(run_cmd(f, &out, &err, "status", NULL), CTL_EXIT_UNREACHABLE);
	assert_string_equal(capture_text(&out), "");
	assert_contains(capture_text(&err), "the reply (12 bytes) is not an ebpfmon API response");
	assert_contains(capture_text(&err), "hint: Is this the analyzer's API socket");
	capture_close(&out);
	capture_close(&err);

	f->mode = FAKE_NO_RESULT;
	assert_int_equal(run_cmd(f, &out, &err, "bans", NULL), CTL_EXIT_UNREACHABLE);
	assert_contains(capture_text(&err), "the reply does not carry the result of the call");
	capture_close(&out);
	capture_close(&err);
}

static void test_client_timeout(void **state)
{
	struct fake *f = *state;
	struct capture out, err;
	struct timespec t0, t1;
	double elapsed;

	fake_start(f, FAKE_SILENT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(run_cmd(f, &out, &err, "--timeout", "300", "status", NULL),
			 CTL_EXIT_UNREACHABLE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(elapsed >= 0.25 && elapsed < 3);
	assert_contains(capture_text(&err), "no reply within 300 ms");
	assert_contains(capture_text(&err), "--timeout MS waits longer");
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->requests, 1); /* sent once, not resent */
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);
}

static void test_client_no_server(void **state)
{
	Ebpfmon__V1__GetMonitorStatusRequest st = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	Ebpfmon__V1__Response *resp;
	struct fake *f = *state;
	struct capture out, err;
	char msg[1024], url[200];
	nng_time t0;
	int fd;

	req.version = 1;
	req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
	req.get_monitor_status = &st;

	/* nothing at the path */
	assert_int_equal(run_cmd(f, &out, &err, "status", NULL), CTL_EXIT_UNREACHABLE);
	assert_contains(capture_text(&err), "cannot connect to ipc:///tmp/ebpfmon-ctl-test.");
	assert_contains(capture_text(&err), "/api.sock: no such socket\n");
	assert_contains(capture_text(&err), "hint: Is ebpfmon-analyzer running");
	assert_contains(capture_text(&err), "Is the socket path right");
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(ctl_call(f->url, 1000, &req, &resp, msg, sizeof(msg)), -ENOENT);
	assert_null(resp);
	snprintf(url, sizeof(url), "ipc://%s/missing/api.sock", f->dir);
	assert_int_equal(ctl_call(url, 1000, &req, &resp, msg, sizeof(msg)), -ENOENT);

	/* version still prints the client's own */
	assert_int_equal(run_cmd(f, &out, &err, "version", NULL), CTL_EXIT_UNREACHABLE);
	assert_string_equal(capture_text(&out), "ebpfmonctl " EBPFMON_VERSION "\nprotocol 1\n");
	capture_close(&out);
	capture_close(&err);

	/* a socket nobody listens on: refused */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ctl_call(f->url, 1000, &req, &resp, msg, sizeof(msg)), -ECONNREFUSED);
	assert_contains(msg, "connection refused (the socket exists, nobody listens on it)");
	assert_contains(msg, "hint: Is ebpfmon-analyzer running");
	close(fd);
	unlink(f->path);

	/* a file that is not a socket */
	fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ctl_call(f->url, 1000, &req, &resp, msg, sizeof(msg)), -ENOTSOCK);
	assert_contains(msg, "is not a socket");
	unlink(f->path);

	/* nobody on a TCP port: refused at once, long before the timeout; a URL nng cannot
	 * dial: a usage error (a host that does not answer: test_api.py t6) */
	t0 = nng_clock();
	assert_int_equal(ctl_call("tcp://127.0.0.1:1", 5000, &req, &resp, msg, sizeof(msg)),
			 -ECONNREFUSED);
	assert_true(nng_clock() - t0 < 1000);
	assert_contains(msg, "cannot connect to tcp://127.0.0.1:1: connection refused");
	assert_int_equal(ctl_call("bogus://x", 1000, &req, &resp, msg, sizeof(msg)), -EINVAL);
}

/* How many times needle occurs in text. */
static int count_of(const char *text, const char *needle)
{
	int n = 0;

	for (text = strstr(text, needle); text; text = strstr(text + 1, needle))
		n++;
	return n;
}

/* top as plain text: standard output is no terminal here. */
static void test_client_top(void **state)
{
	struct fake *f = *state;
	struct capture out, err;
	struct timespec t0, t1;
	const char *text;
	double elapsed;

	fake_start(f, FAKE_OK);
	assert_int_equal(run_cmd(f, &out, &err, "top", "--once", NULL), CTL_EXIT_OK);
	assert_string_equal(capture_text(&err), "");
	text = capture_text(&out);
	assert_true(!strncmp(text, "ebpfmon 0.1.0  ", 15));
	assert_contains(text, "  up 3d4h  enforcing  database ok  every 1s\n");
	assert_contains(text, "packets  1.2M seen  1.2M passed  4.6k dropped\n");
	assert_contains(text, "bans     12 active  tracked 3.5k addresses  anomalies 1 open\n");
	assert_contains(text, "TOP TALKERS by packets: 2 of 3.5k tracked addresses; rates from the "
			      "second sample on\n");
	assert_contains(text, "yes  198.51.100.7");
	assert_contains(text, "\n     2001:db8::1");
	assert_contains(text, "ACTIVE BANS: the 2 newest of 5\n");
	assert_contains(text, "/wp-admin: /wp-admin/setup.php\n");
	assert_lacks(text, "\x1b"); /* no terminal sequences in plain text */
	assert_lacks(text, "q quit");
	assert_int_equal(count_of(text, "TOP TALKERS"), 1);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->requests, 3); /* status, bans, talkers */
	assert_int_equal(f->last->call_case, EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS);
	assert_int_equal(f->last->get_network_stats->top, 10);
	assert_int_equal(f->last->get_network_stats->order,
			 EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_PACKETS);
	assert_string_equal(f->last->get_network_stats->address, "");
	assert_false(f->last->get_network_stats->history);
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);

	/* the order and the number of talkers reach the server */
	assert_int_equal(run_cmd(f, &out, &err, "top", "--once", "--bytes", "--top", "3", NULL),
			 CTL_EXIT_OK);
	assert_contains(capture_text(&out), "TOP TALKERS by bytes: 2 of");
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last->get_network_stats->top, 3);
	assert_int_equal(f->last->get_network_stats->order,
			 EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES);
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);

	/* two frames an interval apart, a blank line between; the second has rates */
	pthread_mutex_lock(&f->lock);
	f->requests = 0;
	pthread_mutex_unlock(&f->lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
		run_cmd(f, &out, &err, "top", "--iterations", "2", "--interval", "200ms", NULL),
		CTL_EXIT_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(elapsed >= 0.19 && elapsed < 5);
	text = capture_text(&out);
	assert_int_equal(count_of(text, "TOP TALKERS"), 2);
	assert_int_equal(count_of(text, "rates from the second sample on"), 1);
	assert_int_equal(count_of(text, "rates over the last 0."), 1);
	/* the fake's counters do not move: rates of 0 */
	assert_contains(text, "packets  1.2M seen (0/s)  1.2M passed (0/s)  4.6k dropped (0/s)\n");
	assert_contains(text, "\n\nebpfmon 0.1.0  ");
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->requests, 6);
	pthread_mutex_unlock(&f->lock);
	capture_close(&out);
	capture_close(&err);

	/* a refusal at the start is one, as for any command */
	f->mode = FAKE_REFUSE;
	assert_int_equal(run_cmd(f, &out, &err, "top", "--once", NULL), CTL_EXIT_REFUSED);
	assert_string_equal(capture_text(&out), "");
	assert_contains(capture_text(&err),
			"ebpfmonctl: the analyzer refused: STATUS_NOT_PERMITTED: uid 1000");
	capture_close(&out);
	capture_close(&err);
	f->mode = FAKE_GARBAGE;
	assert_int_equal(run_cmd(f, &out, &err, "top", "--once", NULL), CTL_EXIT_UNREACHABLE);
	assert_contains(capture_text(&err), "is not an ebpfmon API response");
	capture_close(&out);
	capture_close(&err);
}

/* ---- top on a pseudo-terminal ------------------------------------------------------------------
 */

#define PTY_OUT_MAX (1u << 20)
#define TERM_LEAVE  "\x1b[m\x1b[?25h\x1b[?1049l" /* attributes, cursor, main screen */

struct pty_child {
	pid_t pid;
	int fd;
	char *out; /* all it wrote, NUL-terminated */
	size_t len;
};

static void pty_start(struct pty_child *c, char **args, unsigned short rows, unsigned short cols)
{
	static char *envp[] = {(char *)"TERM=xterm", (char *)"PATH=/usr/bin:/bin", NULL};
	struct winsize ws = {.ws_row = rows, .ws_col = cols};

	c->out = calloc(1, PTY_OUT_MAX + 1);
	assert_non_null(c->out);
	c->len = 0;
	c->pid = forkpty(&c->fd, NULL, NULL, &ws);
	assert_true(c->pid >= 0);
	if (!c->pid) {
		execve(EBPFMONCTL_PATH, args, envp);
		_exit(121);
	}
}

/* Read what the child writes for up to ms milliseconds, or until it closes; false on the end. */
static bool pty_read(struct pty_child *c, int ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return true;
	n = read(c->fd, c->out + c->len, PTY_OUT_MAX - c->len);
	if (n <= 0)
		return false; /* EIO: the child is gone */
	c->len += (size_t)n;
	c->out[c->len] = '\0';
	return c->len < PTY_OUT_MAX;
}

/* Wait up to 5 s for want in what the child writes from offset from on. */
static void pty_expect(struct pty_child *c, size_t from, const char *want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (c->len > from && strstr(c->out + from, want))
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5 || !pty_read(c, 100))
			break;
	}
	if (!(c->len > from && strstr(c->out + from, want)))
		fail_msg("no \"%s\" on the terminal after 5 s", want);
}

/* Read what is there now, without waiting. */
static void pty_drain(struct pty_child *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	while (c->len < PTY_OUT_MAX && poll(&p, 1, 0) > 0 && pty_read(c, 0))
		;
}

/*
 * Wait up to 5 s for the child to end, reading what it writes; its wait status. The terminal
 * must be as it was: canonical, echoing. No poll() waits on the master meanwhile: the kernel
 * holds back the close of the slave, and so the child's end, while someone waits on the pair.
 */
static int pty_finish(struct pty_child *c)
{
	struct termios tio;
	int status = 0, i;
	pid_t got = 0;

	for (i = 0; i < 500 && !got; i++) {
		pty_drain(c);
		usleep(10 * 1000);
		got = waitpid(c->pid, &status, WNOHANG);
	}
	if (!got) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &status, 0);
		fail_msg("ebpfmonctl top did not end; it wrote:\n%s", c->out);
	}
	pty_drain(c);
	assert_int_equal(tcgetattr(c->fd, &tio), 0);
	assert_true(tio.c_lflag & ICANON);
	assert_true(tio.c_lflag & ECHO);
	close(c->fd);
	return status;
}

static bool ends_with(const char *s, size_t len, const char *end)
{
	size_t n = strlen(end);

	return len >= n && !memcmp(s + len - n, end, n);
}

/* The fake stops: its socket closed and gone. */
static void fake_stop(struct fake *f)
{
	nng_close(f->sock);
	pthread_join(f->thread, NULL);
	f->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
	unlink(f->path);
}

/*
 * The live view: the alternate screen, frames that refresh, b changes the order, a lost
 * connection shows and is retried, q quits with status 0 and the terminal as it was.
 */
static void test_top_terminal(void **state)
{
	struct fake *f = *state;
	struct pty_child c;
	size_t mark;
	int status;
	char *args[] = {(char *)"ebpfmonctl", (char *)"-s",    f->path, (char *)"top",
			(char *)"--interval", (char *)"100ms", NULL};

	fake_start(f, FAKE_OK);
	/* wide enough for the whole "connection lost" line with the socket's path */
	pty_start(&c, args, 24, 160);
	/* a frame may come in several reads */
	pty_expect(&c, 0, "q quit  b by bytes");
	assert_true(!strncmp(c.out, "\x1b[?1049h\x1b[?25l", 14)); /* alternate screen, no cursor */
	assert_contains(c.out, "TOP TALKERS by packets");
	assert_contains(c.out, "\x1b[7mBAN  ADDRESS"); /* column headers in reverse video */
	/* it refreshes: the second frame has rates */
	pty_expect(&c, 0, "rates over the last 0.");

	mark = c.len;
	assert_int_equal(write(c.fd, "b", 1), 1);
	pty_expect(&c, mark, "TOP TALKERS by bytes");
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->stats_order,
			 EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES);
	/* as many talkers as 24 rows leave room for (the fake has 2) */
	assert_int_equal(f->stats_top, 12);
	pthread_mutex_unlock(&f->lock);

	mark = c.len;
	assert_int_equal(write(c.fd, "+", 1), 1);
	pty_expect(&c, mark, "database ok  every 200ms");

	/* the analyzer goes away: the view says so, keeps the last data, and keeps trying */
	fake_stop(f);
	mark = c.len;
	pty_expect(&c, mark, "connection lost, retrying every 200ms (data from ");
	pty_expect(&c, mark, "no such socket");
	pty_expect(&c, mark, "yes  198.51.100.7");
	/* and comes back */
	fake_start(f, FAKE_OK);
	mark = c.len;
	pty_expect(&c, mark, "\x1b[H\x1b[1mebpfmon 0.1.0");

	assert_int_equal(write(c.fd, "q", 1), 1);
	status = pty_finish(&c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CTL_EXIT_OK);
	if (!ends_with(c.out, c.len, TERM_LEAVE))
		fail_msg("the terminal was not given back at the end:\n%s", c.out + c.len - 40);
	free(c.out);
}

/* Ctrl-C quits as q does, even while a call waits; SIGTERM ends it by SIGTERM; both restore. */
static void test_top_terminal_signals(void **state)
{
	struct fake *f = *state;
	struct timespec t0, t1;
	struct pty_child c;
	int status;
	char *args[] = {(char *)"ebpfmonctl", (char *)"-s",    f->path, (char *)"top",
			(char *)"--interval", (char *)"100ms", NULL};

	fake_start(f, FAKE_OK);
	pty_start(&c, args, 24, 80);
	pty_expect(&c, 0, "TOP TALKERS by packets");
	kill(c.pid, SIGTERM);
	status = pty_finish(&c);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_true(ends_with(c.out, c.len, TERM_LEAVE));
	free(c.out);

	/* the analyzer stops answering: Ctrl-C does not wait for the 5 s timeout */
	pty_start(&c, args, 24, 80);
	pty_expect(&c, 0, "TOP TALKERS by packets");
	f->mode = FAKE_SILENT;
	usleep(300 * 1000); /* a refresh is waiting for its reply now */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(write(c.fd, "\x03", 1), 1);
	status = pty_finish(&c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CTL_EXIT_OK);
	assert_true(ends_with(c.out, c.len, TERM_LEAVE));
	free(c.out);
}

/* Run the ebpfmonctl binary (as uid/gid when uid is not -1); its exit status and stderr. */
static int run_binary_at(const char *path, uid_t uid, char *errbuf, size_t errlen,
			 char *const *args)
{
	int pipefd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		dup2(pipefd[1], 2);
		dup2(open("/dev/null", O_WRONLY), 1);
		close(pipefd[0]);
		if (uid != (uid_t)-1 &&
		    (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
			_exit(120);
		execv(path, args);
		_exit(121);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], errbuf + got, errlen - 1 - (size_t)got)) > 0)
		got += n;
	errbuf[got] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int run_binary(uid_t uid, char *errbuf, size_t errlen, char *const *args)
{
	return run_binary_at(EBPFMONCTL_PATH, uid, errbuf, errlen, args);
}

/* A copy of the ebpfmonctl binary in dir, mode 0755 (for a user who cannot reach the build). */
static void copy_binary(const char *dir, char *out, size_t len)
{
	char buf[65536];
	ssize_t n;
	int in, fd;

	snprintf(out, len, "%s/ebpfmonctl", dir);
	in = open(EBPFMONCTL_PATH, O_RDONLY);
	assert_true(in >= 0);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	assert_true(fd >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(fd, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	assert_int_equal(fchmod(fd, 0755), 0);
	close(fd);
}

/* A socket this user may not connect to: permission denied, and the group hint. */
static void test_client_permission(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct fake *f = *state;
	char errbuf[2048], bin[PATH_MAX];
	uid_t uid = (uid_t)-1;
	int fd, rc;
	char *args[] = {(char *)"ebpfmonctl", (char *)"-s", f->path, (char *)"status", NULL};

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	if (geteuid() == 0) {
		/* root passes every permission check: ask as nobody, with the folder open to it */
		uid = 65534;
		assert_int_equal(chmod(f->dir, 0711), 0);
		assert_int_equal(chmod(f->path, 0600), 0);
		if (access(EBPFMONCTL_PATH, X_OK))
			skip();
	} else {
		assert_int_equal(chmod(f->path, 0), 0);
	}
	/* the build may sit in a folder nobody cannot enter: run a copy from the fake's folder */
	if (uid != (uid_t)-1)
		copy_binary(f->dir, bin, sizeof(bin));
	else
		snprintf(bin, sizeof(bin), "%s", EBPFMONCTL_PATH);
	rc = run_binary_at(bin, uid, errbuf, sizeof(errbuf), args);
	close(fd);
	if (uid != (uid_t)-1)
		unlink(bin);
	if (rc == 120 || rc == 121)
		fail_msg("could not run %s (as uid %d): %d", bin, (int)uid, rc);
	assert_int_equal(rc, CTL_EXIT_UNREACHABLE);
	assert_contains(errbuf, "permission denied");
	assert_contains(errbuf, "is this user in group ebpfmon");
}

/* The binary: usage errors exit 2 with the message, help exits 0, no server exits 3. */
static void test_binary_exit_status(void **state)
{
	struct fake *f = *state;
	char errbuf[2048];
	char *bad_limit[] = {(char *)"ebpfmonctl", (char *)"bans", (char *)"--limit", (char *)"0",
			     NULL};
	char *bad_duration[] = {(char *)"ebpfmonctl", (char *)"ban", (char *)"192.0.2.1",
				(char *)"--duration", (char *)"90",  NULL};
	char *help[] = {(char *)"ebpfmonctl", (char *)"ban", (char *)"--help", NULL};
	char *nothing[] = {(char *)"ebpfmonctl", (char *)"-s", f->path, (char *)"status", NULL};
	char *top_json[] = {(char *)"ebpfmonctl", (char *)"--json", (char *)"top", NULL};
	char *top_nothing[] = {(char *)"ebpfmonctl", (char *)"-s", f->path, (char *)"top", NULL};
	char *top_plain[] = {(char *)"ebpfmonctl", (char *)"-s", f->path, (char *)"top", NULL};

	(void)state;
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), bad_limit), CTL_EXIT_USAGE);
	assert_contains(errbuf, "ebpfmonctl: --limit '0': not a number 1..10000\n");
	assert_contains(errbuf, "Try 'ebpfmonctl --help'.");
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), bad_duration),
			 CTL_EXIT_USAGE);
	assert_contains(errbuf, "--duration '90': not a duration");
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), help), CTL_EXIT_OK);
	assert_string_equal(errbuf, "");
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), nothing),
			 CTL_EXIT_UNREACHABLE);
	assert_contains(errbuf, "no such socket");

	/* top: --json refused, no server at the start, and plain text when not on a terminal */
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), top_json), CTL_EXIT_USAGE);
	assert_contains(errbuf, "has no --json: scripts use 'ebpfmonctl stats --json'");
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), top_nothing),
			 CTL_EXIT_UNREACHABLE);
	assert_contains(errbuf, "no such socket");
	fake_start(f, FAKE_OK);
	assert_int_equal(run_binary((uid_t)-1, errbuf, sizeof(errbuf), top_plain), CTL_EXIT_OK);
	assert_string_equal(errbuf, "");
}

static void test_help_text(void **state)
{
	struct capture c;
	static const enum ctl_command cmds[] = {
		CTL_CMD_STATUS, CTL_CMD_BANS,	 CTL_CMD_STATS,	  CTL_CMD_ANOMALIES, CTL_CMD_BAN,
		CTL_CMD_UNBAN,	CTL_CMD_EXPLAIN, CTL_CMD_VERSION, CTL_CMD_TOP,
	};
	size_t i;

	(void)state;
	capture_open(&c);
	ctl_usage(c.f, CTL_CMD_NONE);
	assert_contains(capture_text(&c), "EXAMPLES\n");
	assert_contains(capture_text(&c), "-action=ACTION");
	capture_close(&c);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char usage[64];

		capture_open(&c);
		ctl_usage(c.f, cmds[i]);
		snprintf(usage, sizeof(usage), "Usage: ebpfmonctl [GLOBAL OPTION]... %s",
			 ctl_command_name(cmds[i]));
		assert_contains(capture_text(&c), usage);
		assert_contains(capture_text(&c), "EXAMPLES\n");
		capture_close(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_defaults_and_globals),
		cmocka_unit_test(test_args_commands_and_aliases),
		cmocka_unit_test(test_args_help),
		cmocka_unit_test(test_args_bans),
		cmocka_unit_test(test_args_stats_anomalies),
		cmocka_unit_test(test_args_ban),
		cmocka_unit_test(test_args_top),
		cmocka_unit_test(test_args_legacy),
		cmocka_unit_test(test_args_bad),
		cmocka_unit_test(test_args_tls),
		cmocka_unit_test(test_parse_primitives),
		cmocka_unit_test(test_help_text),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_render_status),
		cmocka_unit_test(test_render_bans),
		cmocka_unit_test(test_render_stats),
		cmocka_unit_test(test_render_explain),
		cmocka_unit_test(test_render_anomalies_ban_unban),
		cmocka_unit_test(test_render_hostile_strings),
		cmocka_unit_test(test_render_version),
		cmocka_unit_test_setup_teardown(test_client_reply, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_client_refused, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_client_garbage, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_client_timeout, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_client_no_server, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_client_permission, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_binary_exit_status, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_client_top, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_top_terminal, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_top_terminal_signals, fake_setup,
						fake_teardown),
	};

	/* times in the tables and --since dates are local time: make that UTC */
	setenv("TZ", "UTC", 1);
	tzset();
	canned_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
