// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The Prometheus renderer on plain snapshots (exact lines, label escaping, histogram
 * buckets), and the HTTP listener on a loopback port: 503 before the first snapshot, the
 * text and its content type after, 404 elsewhere, and a clean stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"

static char *render(const struct metrics_snapshot *s)
{
	int n = metrics_render(s, NULL, 0);
	char *buf;

	assert_true(n > 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(metrics_render(s, buf, (size_t)n + 1), n);
	assert_int_equal(strlen(buf), n);
	return buf;
}

/* text holds want as whole lines (want starts at a line start and ends with '\n'). */
static void assert_lines(const char *text, const char *want)
{
	const char *p = text;

	while ((p = strstr(p, want))) {
		if (p == text || p[-1] == '\n')
			return;
		p++;
	}
	fail_msg("missing lines:\n%s\nin:\n%s", want, text);
}

static void test_families(void **state)
{
	struct metrics_snapshot s = {0};
	char *t;

	(void)state;
	s.kernel.rx_passed = 100;
	s.kernel.rx_drop_ban = 7;
	s.kernel.rx_drop_net = 1;
	s.kernel.rx_drop_url = 2;
	s.kernel.rx_drop_unseen = 3;
	s.kernel.url_urgent = 4;
	s.kernel.url_partial = 5;
	s.kernel.ringbuf_drops = 9;
	s.bans[EBPFMON_BAN_URL_RULE] = 3;
	s.bans[EBPFMON_BAN_ESCALATED] = 1;
	s.bans_active = 12;
	s.network_bans_active = 2;
	s.tracked_addresses = 65536;
	s.database_errors = 18446744073709551615ull;
	s.n_anomalies = 2;
	s.anomaly_kind[0] = "cpu";
	s.anomaly_open[0] = true;
	s.anomaly_kind[1] = "memory";
	t = render(&s);

	assert_lines(t, "# HELP ebpfmon_packets_total Packets the ingress program (XDP, or tc) "
			"handled on the monitored interfaces, by verdict (in dry run what would be "
			"dropped passes).\n"
			"# TYPE ebpfmon_packets_total counter\n"
			"ebpfmon_packets_total{verdict=\"pass\"} 100\n"
			"ebpfmon_packets_total{verdict=\"drop\"} 22\n");
	assert_lines(t,
		     "# HELP ebpfmon_drops_total Packets the ingress program dropped, by reason.\n"
		     "# TYPE ebpfmon_drops_total counter\n"
		     "ebpfmon_drops_total{reason=\"ban\"} 7\n"
		     "ebpfmon_drops_total{reason=\"ban_net\"} 1\n"
		     "ebpfmon_drops_total{reason=\"url\"} 2\n"
		     "ebpfmon_drops_total{reason=\"unseen\"} 3\n"
		     "ebpfmon_drops_total{reason=\"urgent\"} 4\n"
		     "ebpfmon_drops_total{reason=\"partial\"} 5\n");
	assert_lines(t, "# TYPE ebpfmon_events_lost_total counter\n"
			"ebpfmon_events_lost_total 9\n");
	assert_lines(t, "# TYPE ebpfmon_bans_total counter\n"
			"ebpfmon_bans_total{reason=\"manual\"} 0\n"
			"ebpfmon_bans_total{reason=\"conn_limit\"} 0\n"
			"ebpfmon_bans_total{reason=\"url_rule\"} 3\n"
			"ebpfmon_bans_total{reason=\"escalated\"} 1\n");
	assert_lines(t, "# TYPE ebpfmon_bans_active gauge\n"
			"ebpfmon_bans_active{scope=\"address\"} 12\n"
			"ebpfmon_bans_active{scope=\"network\"} 2\n");
	assert_lines(t, "# TYPE ebpfmon_tracked_addresses gauge\n"
			"ebpfmon_tracked_addresses 65536\n");
	assert_lines(t, "# TYPE ebpfmon_anomalies_open gauge\n"
			"ebpfmon_anomalies_open{kind=\"cpu\"} 1\n"
			"ebpfmon_anomalies_open{kind=\"memory\"} 0\n# HELP");
	assert_lines(t, "ebpfmon_database_errors_total 18446744073709551615\n");
	assert_lines(t, "# TYPE ebpfmon_database_up gauge\nebpfmon_database_up 0\n");
	/* no rule configured: the family is there, without samples */
	assert_lines(t, "# TYPE ebpfmon_url_hits_total counter\n# HELP ");
	free(t);
}

/* One sample per monitored interface, with its ingress mode; the family without any. */
static void test_interfaces(void **state)
{
	struct metrics_snapshot s = {0};
	char *t;

	(void)state;
	t = render(&s);
	assert_lines(t, "# TYPE ebpfmon_interface_info gauge\n# HELP ");
	free(t);
	s.n_ifaces = 2;
	snprintf(s.ifaces[0].name, sizeof(s.ifaces[0].name), "eth0");
	s.ifaces[0].mode = "native";
	snprintf(s.ifaces[1].name, sizeof(s.ifaces[1].name), "veth\"1");
	s.ifaces[1].mode = "tc";
	t = render(&s);
	assert_lines(t, "# TYPE ebpfmon_interface_info gauge\n"
			"ebpfmon_interface_info{interface=\"eth0\",mode=\"native\"} 1\n"
			"ebpfmon_interface_info{interface=\"veth\\\"1\",mode=\"tc\"} 1\n");
	free(t);
}

/* The programs' run statistics (from prog_stats): seconds and runs per program name. */
static void test_programs(void **state)
{
	struct metrics_snapshot s = {0};
	char *t;

	(void)state;
	s.kernel.stream_url_hits = 6;
	s.kernel.stream_drop_url = 5;
	s.n_progs = 2;
	snprintf(s.progs[0].name, sizeof(s.progs[0].name), "xdp_ingress");
	s.progs[0].run_ns = 1500000000;
	s.progs[0].runs = 42;
	snprintf(s.progs[1].name, sizeof(s.progs[1].name), "stream_verdict");
	s.progs[1].run_ns = 250000;
	s.progs[1].runs = 7;
	t = render(&s);
	assert_lines(t,
		     "# TYPE ebpfmon_bpf_program_run_seconds_total counter\n"
		     "ebpfmon_bpf_program_run_seconds_total{program=\"xdp_ingress\"} 1.5\n"
		     "ebpfmon_bpf_program_run_seconds_total{program=\"stream_verdict\"} 0.00025\n");
	assert_lines(t, "# TYPE ebpfmon_bpf_program_runs_total counter\n"
			"ebpfmon_bpf_program_runs_total{program=\"xdp_ingress\"} 42\n"
			"ebpfmon_bpf_program_runs_total{program=\"stream_verdict\"} 7\n");
	assert_lines(t, "ebpfmon_stream_url_hits_total 6\n");
	assert_lines(t, "ebpfmon_stream_chunks_total{disposition=\"dropped_url\"} 5\n");
	free(t);
}

/*
 * The conventions, line by line: every sample's family has # HELP then # TYPE before its
 * first sample, each once; counters end in _total, nothing else does; names are ebpfmon_*.
 */
static void test_conventions(void **state)
{
	struct metrics_snapshot s = {0};
	char *t, *line, *save = NULL, family[128] = "", type[32] = "";
	unsigned int families = 0, samples = 0;

	(void)state;
	s.n_rules = 1;
	snprintf(s.rules[0].pattern, sizeof(s.rules[0].pattern), "/wp-admin");
	t = render(&s);
	assert_int_equal(t[strlen(t) - 1], '\n');
	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], help_name[128];

		if (sscanf(line, "# HELP %127s", help_name) == 1) {
			assert_string_not_equal(help_name, family); /* each family once */
			snprintf(family, sizeof(family), "%s", help_name);
			type[0] = '\0';
			families++;
			continue;
		}
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			assert_string_equal(name, family);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
				    !strcmp(type, "histogram"));
			assert_int_equal(!strcmp(type, "counter"),
					 strlen(name) > 6 &&
						 !strcmp(name + strlen(name) - 6, "_total"));
			assert_int_equal(strncmp(name, "ebpfmon_", 8), 0);
			continue;
		}
		assert_int_not_equal(line[0], '#');
		assert_true(type[0]); /* a sample after its # TYPE */
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, "{ "), line);
		if (!strcmp(type, "histogram")) {
			size_t fl = strlen(family);

			assert_int_equal(strncmp(name, family, fl), 0);
			assert_true(!strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
				    !strcmp(name + fl, "_count"));
		} else {
			assert_string_equal(name, family);
		}
		samples++;
	}
	assert_true(families >= 25);
	assert_true(samples > families);
	free(t);
}

static void test_label_escaping(void **state)
{
	struct metrics_snapshot s = {0};
	char *t;

	(void)state;
	s.n_rules = 3;
	snprintf(s.rules[0].pattern, sizeof(s.rules[0].pattern), "/wp-admin");
	s.rules[0].hits = 2;
	snprintf(s.rules[1].pattern, sizeof(s.rules[1].pattern), "/a\"b\\c\nd");
	s.rules[1].hits = 1;
	snprintf(s.rules[2].pattern, sizeof(s.rules[2].pattern), "*.php");
	t = render(&s);
	assert_lines(t, "# HELP ebpfmon_url_hits_total HTTP requests that matched a URL rule "
			"(retransmissions not counted), by the rule's pattern.\n"
			"# TYPE ebpfmon_url_hits_total counter\n"
			"ebpfmon_url_hits_total{rule=\"/wp-admin\"} 2\n"
			"ebpfmon_url_hits_total{rule=\"/a\\\"b\\\\c\\nd\"} 1\n"
			"ebpfmon_url_hits_total{rule=\"*.php\"} 0\n");
	free(t);
}

static void test_histogram(void **state)
{
	struct metrics_snapshot s = {0};
	struct metrics_histogram *h = &s.time_to_ban;
	char *t;

	(void)state;
	metrics_histogram_observe(h, 0.00005); /* 0.0001 */
	metrics_histogram_observe(h, 0.0001);  /* 0.0001: le is inclusive */
	metrics_histogram_observe(h, 0.0003);  /* 0.0005 */
	metrics_histogram_observe(h, 0.002);   /* 0.0025 */
	metrics_histogram_observe(h, 0.7);     /* 1 */
	metrics_histogram_observe(h, 20);      /* +Inf only */
	metrics_histogram_observe(h, -1);      /* a clock step: 0 */
	metrics_histogram_observe(h, NAN);     /* 0 */
	assert_int_equal(h->count, 8);
	assert_int_equal(h->bucket[0], 4);
	t = render(&s);
	assert_lines(t, "# HELP ebpfmon_time_to_ban_seconds Seconds from the kernel event "
			"(connection limit crossed, URL hit) to its ban in the map.\n"
			"# TYPE ebpfmon_time_to_ban_seconds histogram\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.0001\"} 4\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.00025\"} 4\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.0005\"} 5\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.001\"} 5\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.0025\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.005\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.01\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.025\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.05\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.1\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.25\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"0.5\"} 6\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"1\"} 7\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"2.5\"} 7\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"5\"} 7\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"10\"} 7\n"
			"ebpfmon_time_to_ban_seconds_bucket{le=\"+Inf\"} 8\n"
			"ebpfmon_time_to_ban_seconds_sum 20.70245\n"
			"ebpfmon_time_to_ban_seconds_count 8\n");
	free(t);
}

/* How long the loop was held, per task: a histogram with a task label, the longest, the CPU. */
static void test_loop_hold(void **state)
{
	struct metrics_snapshot s = {0};
	char *t;

	(void)state;
	metrics_histogram_observe(&s.loop_hold[METRICS_LOOP_NETSTATS], 0.0002);
	metrics_histogram_observe(&s.loop_hold[METRICS_LOOP_NETSTATS], 0.003);
	s.loop_hold_max[METRICS_LOOP_NETSTATS] = 0.003;
	s.loop_cpu_max[METRICS_LOOP_NETSTATS] = 0.00025;
	assert_string_equal(metrics_loop_task_name(METRICS_LOOP_NETSTATS), "network_stats");
	assert_string_equal(metrics_loop_task_name(METRICS_LOOP_TASKS), "?");
	t = render(&s);
	assert_lines(t, "# TYPE ebpfmon_loop_hold_seconds histogram\n");
	assert_lines(t,
		     "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"0.0001\"} 0\n"
		     "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"0.00025\"} 1\n"
		     "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"0.0005\"} 1\n"
		     "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"0.001\"} 1\n"
		     "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"0.0025\"} 1\n"
		     "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"0.005\"} 2\n");
	assert_lines(t, "ebpfmon_loop_hold_seconds_bucket{task=\"network_stats\",le=\"+Inf\"} 2\n"
			"ebpfmon_loop_hold_seconds_sum{task=\"network_stats\"} 0.0032\n"
			"ebpfmon_loop_hold_seconds_count{task=\"network_stats\"} 2\n");
	assert_lines(t, "ebpfmon_loop_hold_seconds_count{task=\"events\"} 0\n");
	assert_lines(t, "ebpfmon_loop_hold_max_seconds{task=\"network_stats\"} 0.003\n");
	assert_lines(t, "ebpfmon_loop_hold_max_seconds{task=\"events\"} 0\n");
	assert_lines(t, "ebpfmon_loop_cpu_max_seconds{task=\"network_stats\"} 0.00025\n");
	free(t);
}

/* snprintf() semantics: the whole length back, the start written, always terminated. */
static void test_short_buffer(void **state)
{
	struct metrics_snapshot s = {0};
	char *full, small[100];
	int n;

	(void)state;
	full = render(&s);
	n = metrics_render(&s, small, sizeof(small));
	assert_int_equal(n, strlen(full));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, full, sizeof(small) - 1);
	small[0] = 'x';
	assert_int_equal(metrics_render(&s, small, 1), n);
	assert_int_equal(small[0], '\0');
	free(full);
}

/* --- the listener --- */

/* A loopback port nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* One HTTP/1.0 request; the whole reply (headers and body) into buf. Returns its length. */
static size_t http_get(int port, const char *method, const char *path, char *buf, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 5};
	char req[256];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	return got;
}

/* Connect and close without a word. */
static void bare_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static void assert_has(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("no '%s' in:\n%s", want, text);
}

static void test_server(void **state)
{
	static char reply[65536];
	struct metrics_server *srv;
	struct metrics_snapshot s = {0};
	char url[64];
	int port = free_port();

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	assert_int_equal(metrics_server_start(url, &srv), 0);
	assert_string_equal(metrics_server_address(srv), url);

	http_get(port, "GET", "/metrics", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 503 ");

	/* a connection that sends nothing (a port probe) leaves the listener serving */
	bare_connect(port);
	bare_connect(port);

	s.bans_active = 42;
	metrics_server_publish(srv, &s);
	s.bans_active = 43; /* the server keeps its own copy */
	http_get(port, "GET", "/metrics", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 200 ");
	assert_has(reply, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
	assert_has(reply, "\r\n\r\n# HELP ebpfmon_");
	assert_has(reply, "\nebpfmon_bans_active{scope=\"address\"} 42\n");

	http_get(port, "HEAD", "/metrics", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 200 ");
	assert_null(strstr(reply, "# HELP"));

	http_get(port, "GET", "/", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 404 ");
	http_get(port, "GET", "/metricsx", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 404 ");
	http_get(port, "GET", "/metrics/", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 404 ");
	http_get(port, "GET", "/metrics%00", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 404 ");
	http_get(port, "GET", "/metrics?name[]=x", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 200 ");
	http_get(port, "POST", "/metrics", reply, sizeof(reply));
	assert_has(reply, "HTTP/1.1 405 ");

	/* the port is taken: a second listener says so */
	assert_int_equal(metrics_server_start(url, &(struct metrics_server *){NULL}), -EADDRINUSE);

	metrics_server_stop(srv);
	metrics_server_stop(NULL);

	/* stopped: the port is free again, and a new listener serves it */
	assert_int_equal(metrics_server_start(url, &srv), 0);
	metrics_server_publish(srv, &s);
	http_get(port, "GET", "/metrics", reply, sizeof(reply));
	assert_has(reply, "\nebpfmon_bans_active{scope=\"address\"} 43\n");
	metrics_server_stop(srv);

	assert_int_equal(metrics_server_start("http://[::1:9464", &srv), -EINVAL);
	assert_null(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families),    cmocka_unit_test(test_programs),
		cmocka_unit_test(test_interfaces),  cmocka_unit_test(test_loop_hold),
		cmocka_unit_test(test_conventions), cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_histogram),   cmocka_unit_test(test_short_buffer),
		cmocka_unit_test(test_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
