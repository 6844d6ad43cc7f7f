// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "metrics.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const double ttb_bounds[METRICS_TTB_BUCKETS] = METRICS_TTB_BOUNDS;

void metrics_histogram_observe(struct metrics_histogram *h, double seconds)
{
	if (!(seconds > 0)) /* negative (clocks), or NaN */
		seconds = 0;
	for (int i = 0; i < METRICS_TTB_BUCKETS; i++) {
		if (seconds <= ttb_bounds[i]) {
			h->bucket[i]++;
			break;
		}
	}
	h->count++;
	h->sum += seconds;
}

/* --- the renderer --- */

/* Text into buf as far as it fits; pos counts every byte, as snprintf() does. */
struct out {
	char *buf;
	size_t len, pos;
	bool nomem; /* a piece could not be formatted */
};

static void put_mem(struct out *o, const char *s, size_t n)
{
	if (o->pos < o->len) {
		size_t room = o->len - 1 - o->pos; /* one byte stays for the NUL */

		memcpy(o->buf + o->pos, s, n < room ? n : room);
	}
	o->pos += n;
}

static void put(struct out *o, const char *s)
{
	put_mem(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[256], *big;
	va_list ap, again;
	int n;

	va_start(ap, fmt);
	va_copy(again, ap);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(tmp)) {
		put_mem(o, tmp, (size_t)n);
	} else if (n > 0 && (big = malloc((size_t)n + 1))) {
		vsnprintf(big, (size_t)n + 1, fmt, again);
		put_mem(o, big, (size_t)n);
		free(big);
	} else {
		o->nomem = true;
	}
	va_end(again);
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void put_label_value(struct out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			put(o, "\\\\");
		else if (*v == '"')
			put(o, "\\\"");
		else if (*v == '\n')
			put(o, "\\n");
		else
			put_mem(o, v, 1);
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP ");
	put(o, name);
	put(o, " ");
	put(o, help);
	put(o, "\n# TYPE ");
	put(o, name);
	put(o, " ");
	put(o, type);
	put(o, "\n");
}

static void sample(struct out *o, const char *name, uint64_t v)
{
	putf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void sample_l(struct out *o, const char *name, const char *label, const char *value,
		     uint64_t v)
{
	putf(o, "%s{%s=\"", name, label);
	put_label_value(o, value);
	putf(o, "\"} %llu\n", (unsigned long long)v);
}

/* A double in the shortest form that reads back as the same value. */
static void put_double(struct out *o, double v)
{
	char tmp[32];

	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	put(o, tmp);
}

/* A histogram's samples; label: NULL, or `name="value",` put before le (value plain). */
static void histogram_l(struct out *o, const char *name, const char *label,
			const struct metrics_histogram *h)
{
	const char *l = label ? label : "";
	char sel[160];
	uint64_t cum = 0;

	snprintf(sel, sizeof(sel), "%.*s", label ? (int)strlen(l) - 1 : 0, l); /* no comma */
	for (int i = 0; i < METRICS_TTB_BUCKETS; i++) {
		cum += h->bucket[i];
		putf(o, "%s_bucket{%sle=\"%g\"} %llu\n", name, l, ttb_bounds[i],
		     (unsigned long long)cum);
	}
	putf(o, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, l, (unsigned long long)h->count);
	putf(o, label ? "%s_sum{%s} " : "%s_sum%s ", name, sel);
	put_double(o, h->sum);
	put(o, "\n");
	putf(o, label ? "%s_count{%s} %llu\n" : "%s_count%s %llu\n", name, sel,
	     (unsigned long long)h->count);
}

static void histogram(struct out *o, const char *name, const struct metrics_histogram *h)
{
	histogram_l(o, name, NULL, h);
}

static const char *const loop_tasks[METRICS_LOOP_TASKS] = {
	[METRICS_LOOP_EVENTS] = "events",
	[METRICS_LOOP_API] = "api",
	[METRICS_LOOP_API_SNAP] = "api_snapshot",
	[METRICS_LOOP_MAPS_CHECK] = "maps_check",
	[METRICS_LOOP_SCAN] = "scan",
	[METRICS_LOOP_NETSTATS] = "network_stats",
	[METRICS_LOOP_SYSMON] = "sysmon",
	[METRICS_LOOP_STORE] = "store",
	[METRICS_LOOP_RETENTION] = "retention",
	[METRICS_LOOP_METRICS] = "metrics",
};

const char *metrics_loop_task_name(enum metrics_loop_task t)
{
	return (unsigned int)t < METRICS_LOOP_TASKS ? loop_tasks[t] : "?";
}

static const char *const ban_reasons[METRICS_BAN_REASONS] = {
	[EBPFMON_BAN_MANUAL] = "manual",
	[EBPFMON_BAN_CONN_LIMIT] = "conn_limit",
	[EBPFMON_BAN_URL_RULE] = "url_rule",
	[EBPFMON_BAN_ESCALATED] = "escalated",
};

static void render_kernel(struct out *o, const struct ebpfmon_counters *k)
{
	const struct {
		const char *reason;
		uint64_t n;
	} drops[] = {
		{"ban", k->rx_drop_ban},   {"ban_net", k->rx_drop_net},
		{"url", k->rx_drop_url},   {"unseen", k->rx_drop_unseen},
		{"urgent", k->url_urgent}, {"partial", k->url_partial},
	};
	uint64_t dropped = 0;

	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		dropped += drops[i].n;

	family(o, "ebpfmon_packets_total", "counter",
	       "Packets the ingress program (XDP, or tc) handled on the monitored interfaces, by "
	       "verdict (in dry run what would be dropped passes).");
	sample_l(o, "ebpfmon_packets_total", "verdict", "pass", k->rx_passed);
	sample_l(o, "ebpfmon_packets_total", "verdict", "drop", dropped);

	family(o, "ebpfmon_drops_total", "counter",
	       "Packets the ingress program dropped, by reason.");
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		sample_l(o, "ebpfmon_drops_total", "reason", drops[i].reason, drops[i].n);

	family(o, "ebpfmon_would_drops_total", "counter",
	       "Dry run: drops a ban or a rule would have made; the packets passed.");
	sample(o, "ebpfmon_would_drops_total", k->rx_would_drop);

	family(o, "ebpfmon_allowlisted_packets_total", "counter",
	       "Packets from a banned source passed because the source is allowlisted.");
	sample(o, "ebpfmon_allowlisted_packets_total", k->rx_allowed);

	family(o, "ebpfmon_unparsed_packets_total", "counter",
	       "Packets passed without a look past their headers: not IPv4/IPv6, or malformed.");
	sample_l(o, "ebpfmon_unparsed_packets_total", "reason", "not_ip", k->rx_not_ip);
	sample_l(o, "ebpfmon_unparsed_packets_total", "reason", "malformed", k->rx_parse_err);

	family(o, "ebpfmon_egress_packets_total", "counter",
	       "Packets sent, as egress accounting saw them.");
	sample(o, "ebpfmon_egress_packets_total", k->tx_seen);

	family(o, "ebpfmon_connections_accepted_total", "counter",
	       "Server-side TCP connections established.");
	sample(o, "ebpfmon_connections_accepted_total", k->conn_opened);

	family(o, "ebpfmon_map_full_total", "counter",
	       "Entries a full kernel map refused (that state is not kept), by map.");
	sample_l(o, "ebpfmon_map_full_total", "map", "conn_socks", k->conn_table_full);
	sample_l(o, "ebpfmon_map_full_total", "map", "http_flows", k->http_flows_full);
	sample_l(o, "ebpfmon_map_full_total", "map", "proc_io", k->io_table_full);
	sample_l(o, "ebpfmon_map_full_total", "map", "http_socks", k->stream_socks_full);

	family(o, "ebpfmon_events_total", "counter", "Events the kernel wrote to the ring buffer.");
	sample(o, "ebpfmon_events_total", k->events);

	family(o, "ebpfmon_events_lost_total", "counter",
	       "Events lost because the ring buffer was full (raise event_buffer_kb).");
	sample(o, "ebpfmon_events_lost_total", k->ringbuf_drops);

	family(o, "ebpfmon_url_request_lines_total", "counter",
	       "HTTP request lines XDP matched against the URL rules.");
	sample(o, "ebpfmon_url_request_lines_total", k->url_lines);

	family(o, "ebpfmon_url_split_lines_total", "counter",
	       "Request lines completed from an earlier segment of their connection.");
	sample(o, "ebpfmon_url_split_lines_total", k->url_split);

	family(o, "ebpfmon_url_scan_cut_total", "counter",
	       "Segments longer than XDP scans, scanned in part.");
	sample(o, "ebpfmon_url_scan_cut_total", k->url_scan_cut);

	family(o, "ebpfmon_url_kernel_hits_total", "counter",
	       "Request lines that matched a kernel URL rule: reported to the analyzer, over the "
	       "per-segment report limit, or outside an established connection (never a ban).");
	sample_l(o, "ebpfmon_url_kernel_hits_total", "disposition", "reported", k->url_hits);
	sample_l(o, "ebpfmon_url_kernel_hits_total", "disposition", "over_limit", k->url_hits_over);
	sample_l(o, "ebpfmon_url_kernel_hits_total", "disposition", "unverified",
		 k->url_unverified);

	family(o, "ebpfmon_stream_connections_total", "counter",
	       "Connections to the HTTP ports put under the stream guard (url_stream_guard).");
	sample(o, "ebpfmon_stream_connections_total", k->stream_socks);

	family(o, "ebpfmon_stream_chunks_total", "counter",
	       "In-order chunks the stream guard read before the server, by what became of them.");
	sample_l(o, "ebpfmon_stream_chunks_total", "disposition", "read", k->stream_chunks);
	sample_l(o, "ebpfmon_stream_chunks_total", "disposition", "dropped_url",
		 k->stream_drop_url);
	sample_l(o, "ebpfmon_stream_chunks_total", "disposition", "dropped_state_full",
		 k->stream_state_full);
	sample_l(o, "ebpfmon_stream_chunks_total", "disposition", "overlap_trimmed",
		 k->stream_overlap);
	sample_l(o, "ebpfmon_stream_chunks_total", "disposition", "unread_nested",
		 k->stream_nested);

	family(o, "ebpfmon_url_segments_to_stream_total", "counter",
	       "Segments of this host's connections to the HTTP ports XDP left to the stream guard.");
	sample(o, "ebpfmon_url_segments_to_stream_total", k->url_to_stream);

	family(o, "ebpfmon_stream_request_lines_total", "counter",
	       "HTTP request lines the stream guard matched against the URL rules.");
	sample(o, "ebpfmon_stream_request_lines_total", k->stream_lines);

	family(o, "ebpfmon_stream_url_hits_total", "counter",
	       "Request lines the stream guard found matching a kernel URL rule.");
	sample(o, "ebpfmon_stream_url_hits_total", k->stream_url_hits);

	family(o, "ebpfmon_io_requests_total", "counter",
	       "Block I/O requests accounted to processes.");
	sample(o, "ebpfmon_io_requests_total", k->io_events);
}

static void render_programs(struct out *o, const struct metrics_snapshot *s)
{
	family(o, "ebpfmon_bpf_program_run_seconds_total", "counter",
	       "Time the kernel spent in each ebpfmon BPF program (grows only while "
	       "kernel.bpf_stats_enabled is 1).");
	for (unsigned int i = 0; i < s->n_progs; i++) {
		putf(o, "ebpfmon_bpf_program_run_seconds_total{program=\"");
		put_label_value(o, s->progs[i].name);
		put(o, "\"} ");
		put_double(o, (double)s->progs[i].run_ns / 1e9);
		put(o, "\n");
	}
	family(o, "ebpfmon_bpf_program_runs_total", "counter",
	       "Runs of each ebpfmon BPF program (grows only while kernel.bpf_stats_enabled is 1).");
	for (unsigned int i = 0; i < s->n_progs; i++)
		sample_l(o, "ebpfmon_bpf_program_runs_total", "program", s->progs[i].name,
			 s->progs[i].runs);
}

static void render_interfaces(struct out *o, const struct metrics_snapshot *s)
{
	family(o, "ebpfmon_interface_info", "gauge",
	       "1 for each monitored interface, labelled with how the ingress program is attached "
	       "(mode: native, generic, offload, tc, none, unknown).");
	for (unsigned int i = 0; i < s->n_ifaces; i++) {
		putf(o, "ebpfmon_interface_info{interface=\"");
		put_label_value(o, s->ifaces[i].name);
		putf(o, "\",mode=\"");
		put_label_value(o, s->ifaces[i].mode ? s->ifaces[i].mode : "unknown");
		putf(o, "\"} 1\n");
	}
}

static void render_analyzer(struct out *o, const struct metrics_snapshot *s)
{
	family(o, "ebpfmon_bans_total", "counter",
	       "Bans the analyzer wrote to the kernel maps since it started, by reason.");
	for (int r = 0; r < METRICS_BAN_REASONS; r++)
		sample_l(o, "ebpfmon_bans_total", "reason", ban_reasons[r], s->bans[r]);

	family(o, "ebpfmon_would_bans_total", "counter",
	       "Dry run: bans decided and recorded, none enforced.");
	sample(o, "ebpfmon_would_bans_total", s->would_bans);

	family(o, "ebpfmon_bans_expired_total", "counter",
	       "Bans removed from the kernel maps at their deadline.");
	sample(o, "ebpfmon_bans_expired_total", s->bans_expired);

	family(o, "ebpfmon_bans_active", "gauge",
	       "Bans in force in the kernel maps, per address (bans) or network (ban_nets).");
	sample_l(o, "ebpfmon_bans_active", "scope", "address", s->bans_active);
	sample_l(o, "ebpfmon_bans_active", "scope", "network", s->network_bans_active);

	family(o, "ebpfmon_tracked_addresses", "gauge",
	       "Addresses with traffic counters in the kernel (ip_stats entries).");
	sample(o, "ebpfmon_tracked_addresses", s->tracked_addresses);

	family(o, "ebpfmon_url_hits_total", "counter",
	       "HTTP requests that matched a URL rule (retransmissions not counted), by the "
	       "rule's pattern.");
	for (unsigned int i = 0; i < s->n_rules && i < CONFIG_MAX_URL_PATTERNS; i++)
		sample_l(o, "ebpfmon_url_hits_total", "rule", s->rules[i].pattern,
			 s->rules[i].hits);

	family(o, "ebpfmon_url_retransmits_total", "counter",
	       "URL rule hits that were retransmissions of a request counted already.");
	sample(o, "ebpfmon_url_retransmits_total", s->url_retransmits);

	family(o, "ebpfmon_time_to_ban_seconds", "histogram",
	       "Seconds from the kernel event (connection limit crossed, URL hit) to its ban "
	       "in the map.");
	histogram(o, "ebpfmon_time_to_ban_seconds", &s->time_to_ban);

	family(o, "ebpfmon_loop_hold_seconds", "histogram",
	       "Seconds one callback of the analyzer's loop ran, by task (a sliced task: one "
	       "slice); events and bans wait behind it.");
	for (int t = 0; t < METRICS_LOOP_TASKS; t++) {
		char label[64];

		snprintf(label, sizeof(label), "task=\"%s\",", loop_tasks[t]);
		histogram_l(o, "ebpfmon_loop_hold_seconds", label, &s->loop_hold[t]);
	}

	family(o, "ebpfmon_loop_hold_max_seconds", "gauge",
	       "The longest a callback of each task held the analyzer's loop since it started.");
	for (int t = 0; t < METRICS_LOOP_TASKS; t++) {
		putf(o, "ebpfmon_loop_hold_max_seconds{task=\"%s\"} ", loop_tasks[t]);
		put_double(o, s->loop_hold_max[t]);
		put(o, "\n");
	}

	family(o, "ebpfmon_loop_cpu_max_seconds", "gauge",
	       "The most CPU time one callback of each task used since the analyzer started; "
	       "a hold much longer than it waited for a CPU that other processes used.");
	for (int t = 0; t < METRICS_LOOP_TASKS; t++) {
		putf(o, "ebpfmon_loop_cpu_max_seconds{task=\"%s\"} ", loop_tasks[t]);
		put_double(o, s->loop_cpu_max[t]);
		put(o, "\n");
	}

	family(o, "ebpfmon_anomalies_open", "gauge",
	       "Resource anomalies in progress (1) or not (0), by kind.");
	for (unsigned int i = 0; i < s->n_anomalies && i < METRICS_ANOMALY_KINDS; i++)
		sample_l(o, "ebpfmon_anomalies_open", "kind",
			 s->anomaly_kind[i] ? s->anomaly_kind[i] : "?", s->anomaly_open[i]);

	family(o, "ebpfmon_database_up", "gauge",
	       "1 when the database is open and its last write succeeded, else 0.");
	sample(o, "ebpfmon_database_up", s->database_up);

	family(o, "ebpfmon_database_errors_total", "counter", "Database calls that failed.");
	sample(o, "ebpfmon_database_errors_total", s->database_errors);

	family(o, "ebpfmon_ban_rows_pending", "gauge",
	       "Ban decisions waiting to be written to the database.");
	sample(o, "ebpfmon_ban_rows_pending", s->ban_rows_pending);

	family(o, "ebpfmon_ban_rows_lost_total", "counter",
	       "Ban decisions never written: the database was away longer than the queue holds.");
	sample(o, "ebpfmon_ban_rows_lost_total", s->ban_rows_lost);

	family(o, "ebpfmon_dry_run", "gauge", "1 when dry run is on: nothing is enforced.");
	sample(o, "ebpfmon_dry_run", s->dry_run);
}

int metrics_render(const struct metrics_snapshot *s, char *buf, size_t len)
{
	struct out o = {.buf = buf, .len = buf ? len : 0};

	render_kernel(&o, &s->kernel);
	render_programs(&o, s);
	render_interfaces(&o, s);
	render_analyzer(&o, s);
	if (o.len)
		o.buf[o.pos < o.len ? o.pos : o.len - 1] = '\0';
	if (o.nomem)
		return -ENOMEM;
	return o.pos > INT32_MAX ? -EOVERFLOW : (int)o.pos;
}

/* --- the HTTP listener --- */

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * What the scrapes read: owned by the nng handler (freed with its last reference, after the
 * last scrape that holds it), written by the owner thread through metrics_server_publish().
 */
struct metrics_shared {
	pthread_mutex_t mu;
	bool ready; /* snap holds a published snapshot */
	struct metrics_snapshot snap;
};

struct metrics_server {
	nng_http_server *http;
	nng_http_handler *handler;
	struct metrics_shared *shared; /* until the handler holds it (then its data) */
	char url[CONFIG_PATH_MAX];
};

static void shared_free(void *arg)
{
	struct metrics_shared *sh = arg;

	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

/* A plain-text reply; NULL when even that cannot be allocated. */
static nng_http_res *reply(uint16_t status, const char *body, size_t len)
{
	nng_http_res *res;

	if (nng_http_res_alloc(&res))
		return NULL;
	if (nng_http_res_set_status(res, status) ||
	    nng_http_res_set_header(res, "Content-Type", METRICS_CONTENT_TYPE) ||
	    nng_http_res_copy_data(res, body, len)) {
		nng_http_res_free(res);
		return NULL;
	}
	return res;
}

/* GET /metrics, on an nng thread: copy the snapshot, render, reply. */
static void on_scrape(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct metrics_shared *sh = nng_http_handler_get_data(h);
	struct metrics_snapshot *s = malloc(sizeof(*s));
	nng_http_res *res = NULL;
	char *text = NULL;
	bool ready = false;
	int n;

	/* nng's handler also takes "/metrics/" and "/metrics%00": only the path itself is ours */
	const char *uri = nng_http_req_get_uri(nng_aio_get_input(aio, 0));
	size_t plen = strcspn(uri, "?");

	if (plen != sizeof("/metrics") - 1 || strncmp(uri, "/metrics", plen)) {
		static const char nf[] = "not found: the metrics are at /metrics\n";

		res = reply(NNG_HTTP_STATUS_NOT_FOUND, nf, sizeof(nf) - 1);
		free(s);
		if (!res) {
			nng_aio_finish(aio, NNG_ENOMEM);
			return;
		}
		nng_aio_set_output(aio, 0, res);
		nng_aio_finish(aio, 0);
		return;
	}
	if (s) {
		pthread_mutex_lock(&sh->mu);
		ready = sh->ready;
		if (ready)
			*s = sh->snap;
		pthread_mutex_unlock(&sh->mu);
	}
	if (s && !ready) {
		static const char msg[] = "no metrics yet: the analyzer is starting\n";

		res = reply(NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, msg, sizeof(msg) - 1);
	} else if (s) {
		n = metrics_render(s, NULL, 0);
		text = n >= 0 ? malloc((size_t)n + 1) : NULL;
		if (text && metrics_render(s, text, (size_t)n + 1) == n)
			res = reply(NNG_HTTP_STATUS_OK, text, (size_t)n);
	}
	free(text);
	free(s);
	if (!res) {
		nng_aio_finish(aio, NNG_ENOMEM); /* nng closes the connection */
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static int nng_errno(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
		return -EINVAL;
	case NNG_EPERM:
		return -EACCES;
	default:
		return -EIO;
	}
}

int metrics_server_start(const char *url, struct metrics_server **out)
{
	struct metrics_server *srv = calloc(1, sizeof(*srv));
	nng_url *u = NULL;
	int rv;

	*out = NULL;
	if (!srv || !(srv->shared = calloc(1, sizeof(*srv->shared)))) {
		free(srv);
		log_error("metrics listener %s: %s", url, strerror(ENOMEM));
		return -ENOMEM;
	}
	pthread_mutex_init(&srv->shared->mu, NULL);
	snprintf(srv->url, sizeof(srv->url), "%s", url);
	if ((rv = nng_url_parse(&u, url)) || (rv = nng_http_server_hold(&srv->http, u)) ||
	    (rv = nng_http_handler_alloc(&srv->handler, "/metrics", on_scrape)) ||
	    (rv = nng_http_handler_set_data(srv->handler, srv->shared, shared_free)))
		goto fail;
	/* from here on the handler owns shared: freed with its last reference */
	srv->shared = NULL;
	if ((rv = nng_http_handler_collect_body(srv->handler, true, 0)) ||
	    (rv = nng_http_server_add_handler(srv->http, srv->handler)))
		goto fail;
	if ((rv = nng_http_server_start(srv->http))) {
		nng_http_server_del_handler(srv->http, srv->handler);
		goto fail;
	}
	nng_url_free(u);
	*out = srv;
	return 0;
fail:
	log_error("metrics listener %s: %s", url, nng_strerror(rv));
	if (srv->handler)
		nng_http_handler_free(srv->handler); /* and shared, when it holds it */
	if (srv->shared)
		shared_free(srv->shared);
	if (srv->http)
		nng_http_server_release(srv->http);
	if (u)
		nng_url_free(u);
	free(srv);
	return nng_errno(rv);
}

static struct metrics_shared *shared_of(const struct metrics_server *srv)
{
	return nng_http_handler_get_data(srv->handler);
}

void metrics_server_publish(struct metrics_server *srv, const struct metrics_snapshot *s)
{
	struct metrics_shared *sh = shared_of(srv);

	pthread_mutex_lock(&sh->mu);
	sh->snap = *s;
	sh->ready = true;
	pthread_mutex_unlock(&sh->mu);
}

const char *metrics_server_address(const struct metrics_server *srv)
{
	return srv->url;
}

void metrics_server_stop(struct metrics_server *srv)
{
	if (!srv)
		return;
	nng_http_server_stop(srv->http); /* no new connection; the open ones closed */
	if (nng_http_server_del_handler(srv->http, srv->handler) == 0)
		nng_http_handler_free(srv->handler); /* the reference del_handler gave back */
	nng_http_server_release(srv->http);
	free(srv);
}
