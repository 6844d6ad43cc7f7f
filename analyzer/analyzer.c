// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * One thread, one sd-event loop: the ring buffer (kernel events, acted on at once), the
 * interval timer (policy scan, network snapshot, resource sample, retention), SIGTERM/SIGINT
 * (stop) and SIGHUP (reload), and WATCHDOG=1 when systemd asks for it. SQLite is written from
 * this thread only, between events, never from inside a ring-buffer callback's batch of work.
 * Modules that serve from the same loop are set up in modules_start().
 */
#include "analyzer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "api_snap.h"
#include "daemon.h"
#include "log.h"
#include "mapconf.h"
#include "maps.h"
#include "mapwalk.h"
#include "metrics.h"
#include "monoclock.h"
#include "netstats.h"
#include "offload.h"
#include "policy.h"
#include "cpusched.h"
#include "store.h"
#include "sysmon.h"

#define STORE_RETRY_S	  60 /* reopen a database that could not be opened */
#define STORE_WARN_S	  60 /* at most one warning a minute about a failing database */
#define CLEANUP_EVERY_S	  60 /* retention */
#define MAPS_GONE_GRACE_S 5  /* pins missing this long (not replaced) end the analyzer */
#define STATUS_LOG_S	  60 /* off systemd, the status line is logged this often */
#define METRICS_RETRY_S	  60 /* start again a metrics listener that could not start */

struct anomaly_state {
	struct sysmon_detector det;
	int64_t row; /* open system_anomalies row, 0 when none */
};

struct analyzer {
	struct config cfg; /* the configuration in force */
	const struct analyzer_opts *opts;
	struct maps maps;
	struct policy policy;
	struct store *store;
	struct netstats net;
	struct store_net_stats net_row; /* netstats_job()'s results: netstats_finish()'s */
	struct store_top net_top[NETSTATS_TOP_N];
	size_t net_ntop;
	int net_rc;
	struct sysmon *sysmon;
	struct sysmon_io_entry *io;
	size_t io_cap;
	struct anomaly_state anom[SYSMON_METRIC_COUNT];
	struct ring_buffer *rb;
	sd_event *event;	      /* the loop; modules add their sources to it */
	sd_event_source *rb_src;      /* the ring buffer's epoll fd */
	sd_event_source *flush_src;   /* the events' rows and metrics, after the events (defer) */
	sd_event_source *tick;	      /* the interval timer (CLOCK_MONOTONIC, one shot, re-armed) */
	struct api *api;	      /* the API server (api.h) */
	sd_event_source *api_src;     /* its eventfd: requests waiting for this thread */
	struct api_snap *snap;	      /* what the API answers from on nng's threads (api_snap.h) */
	sd_event_source *snap_src;    /* the snapshots' next slice (CLOCK_MONOTONIC) */
	sd_event_source *work_src;    /* the interval's next slice (a defer source) */
	struct offload *offload;      /* the worker of the long reads */
	sd_event_source *offload_src; /* its eventfd: a job is over */
	unsigned int step;	      /* enum interval_step: what the next slice does */
	struct sysmon_report report;  /* the sample the sysmon step fills */
	uint64_t intervals_skipped;   /* due while the previous one still ran */
	uint64_t events;
	unsigned int batch_events; /* handled in this callback of the ring buffer */
	time_t store_retry_at, store_warned_at, cleanup_at, status_logged_at, maps_unchecked_at;
	/* retention, on the offload worker: the run (over intervals), the job's input, its result */
	bool retention_running;		/* a run is under way (a->retention) */
	bool retention_ran;		/* this interval's step started a job */
	struct store_cleanup retention; /* the worker's while its job runs */
	int64_t retention_deleted, retention_n, retention_now, retention_max_age_s;
	uint32_t retention_max_records;
	uint64_t retention_budget_ns;
	struct timespec maps_gone_since; /* when maps_check() first failed; tv_sec 0: it did not */
	struct metrics_server *metrics;	 /* NULL: [api] metrics_address is off, or failed */
	struct metrics_snapshot msnap;	 /* what the loop last published */
	uint64_t metrics_decisions;	 /* policy_decisions() when msnap was filled */
	time_t metrics_retry_at;
	struct store_checkpointer *ckpt; /* the offload worker's own database connection */
	char ckpt_path[4096];		 /* the database it checkpoints (a copy: a job's input) */
	char ckpt_err[STORE_ERR_MAX];	 /* the job's results */
	int ckpt_rc, ckpt_frames;
	bool ckpt_running, ckpt_failing;
	uint64_t ckpt_started_ns; /* CLOCK_MONOTONIC: the job was handed to the worker */
	/* the offload worker's own connection to the database, for its survey and retention */
	bool worker_db;		     /* a->store is open: the jobs may use the database */
	char worker_path[4096];	     /* its path (a job's input) */
	struct store *wstore;	     /* read-write; NULL until a job opened it */
	struct policy_survey survey; /* survey_job()'s results */
	uint32_t survey_limit;	     /* its input: max_connections_per_ip */
};

/*
 * Events one callback of the ring buffer handles at most (~0.5 ms of work): under a flood the
 * loop goes back to its other sources between batches, and the ring buffer's descriptor, still
 * readable, brings it back at once.
 */
#define EVENTS_BATCH	  4096
#define EVENTS_BATCH_FULL (-EAGAIN) /* on_event(): stop consuming, the batch is full */

static int on_event(void *ctx, void *data, size_t len)
{
	struct analyzer *a = ctx;

	a->events++;
	policy_on_event(&a->policy, data, len);
	/* libbpf has moved past this record already: a negative value stops after it */
	return ++a->batch_events >= EVENTS_BATCH ? EVENTS_BATCH_FULL : 0;
}

/* Loopback is in the default allowlist; the host's own addresses are added at start. */
static void allow_host_addresses(struct config *cfg)
{
	struct ifaddrs *ifs, *i;
	unsigned int added = 0;

	if (getifaddrs(&ifs))
		return;
	for (i = ifs; i; i = i->ifa_next) {
		struct addr_cidr c = {.prefixlen = 128};
		bool dup = false;

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			addr_from_v4(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr, &c.addr);
		else if (i->ifa_addr->sa_family == AF_INET6)
			memcpy(c.addr.a, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		else
			continue;
		for (unsigned int k = 0; k < cfg->n_allowlist && !dup; k++)
			dup = cidr_contains(&cfg->allowlist[k], &c.addr);
		if (dup)
			continue;
		if (cfg->n_allowlist == CONFIG_MAX_ALLOW) {
			log_warn("allowlist full: the host's own addresses are not all on it");
			break;
		}
		cfg->allowlist[cfg->n_allowlist++] = c;
		added++;
	}
	freeifaddrs(ifs);
	if (added)
		log_debug("allowlisted %u addresses of this host", added);
}

static int apply_to_maps(struct analyzer *a)
{
	struct mapconf_fds fds = {
		.settings = a->maps.settings,
		.allow_nets = a->maps.allow_nets,
		.url_rules = a->maps.url_rules,
		.ban_nets = a->maps.ban_nets,
	};

	return mapconf_apply(&fds, &a->cfg, MAPCONF_RULES | MAPCONF_SETTINGS);
}

static uint64_t interval_ms(const struct config *cfg)
{
	return cfg->monitoring_interval_ms;
}

/*
 * Arm the interval timer for due (CLOCK_MONOTONIC, µs), or one interval from now when due is
 * 0. 0 or -errno (logged).
 */
static int interval_arm(struct analyzer *a, uint64_t due)
{
	int r = due ? sd_event_source_set_time(a->tick, due)
		    : sd_event_source_set_time_relative(a->tick, interval_ms(&a->cfg) * 1000);

	if (r >= 0)
		r = sd_event_source_set_enabled(a->tick, SD_EVENT_ONESHOT);
	if (r < 0)
		log_error("cannot arm the interval timer: %s", strerror(-r));
	return r;
}

static int64_t unix_now(void)
{
	return time(NULL);
}

static void detectors_init(struct analyzer *a)
{
	const double thr[SYSMON_METRIC_COUNT] = {
		[SYSMON_METRIC_CPU] = a->cfg.cpu_threshold_percent,
		[SYSMON_METRIC_MEMORY] = a->cfg.memory_threshold_percent,
		[SYSMON_METRIC_DISK_IO] = a->cfg.disk_io_threshold_mbps,
	};

	for (int m = 0; m < SYSMON_METRIC_COUNT; m++) {
		/* New thresholds start the detectors afresh: an open episode ends here. */
		if (a->anom[m].row && a->store)
			store_anomaly_close(a->store, a->anom[m].row, unix_now());
		a->anom[m].row = 0;
		sysmon_detector_init(&a->anom[m].det, m, thr[m],
				     thr[m] * a->cfg.anomaly_hysteresis_percent / 100.0,
				     a->cfg.anomaly_min_intervals);
	}
}

static int64_t ns_to_unix(uint64_t mono)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	return r.tv_sec -
	       (int64_t)(((uint64_t)m.tv_sec * 1000000000ull + m.tv_nsec - mono) / 1000000000ull);
}

static void store_try_open(struct analyzer *a)
{
	time_t now = time(NULL);

	if (a->store || now < a->store_retry_at)
		return;
	if (store_open(a->cfg.sqlite_path, &a->store)) {
		a->store = NULL;
		a->store_retry_at = now + STORE_RETRY_S;
		log_warn("database %s unavailable: bans are enforced but not recorded; retrying "
			 "every %ds",
			 a->cfg.sqlite_path, STORE_RETRY_S);
		return;
	}
	a->policy.store = a->store;
	store_anomaly_close_all(a->store, unix_now()); /* a previous run's episodes are over */
	for (int m = 0; m < SYSMON_METRIC_COUNT; m++)
		a->anom[m].row = 0;
	policy_reconcile(&a->policy);
	policy_load_history(&a->policy);
}

struct io_walk {
	struct analyzer *a;
	size_t n;
};

static int io_one(const void *key, const void *value, void *ctx)
{
	const struct ebpfmon_proc_io *v = value;
	struct io_walk *w = ctx;
	struct analyzer *a = w->a;
	struct sysmon_io_entry *e;

	if (w->n == a->io_cap) {
		size_t cap = a->io_cap ? a->io_cap * 2 : 256;
		struct sysmon_io_entry *io = realloc(a->io, cap * sizeof(*io));

		if (!io)
			return 1; /* what fits is still worth a sample */
		a->io = io;
		a->io_cap = cap;
	}
	e = &a->io[w->n++];
	memcpy(&e->tgid, key, sizeof(e->tgid));
	memcpy(e->comm, v->comm, sizeof(e->comm));
	e->comm[sizeof(e->comm) - 1] = '\0';
	e->read_bytes = v->read_bytes;
	e->write_bytes = v->write_bytes;
	return 0;
}

/* proc_io as sysmon wants it (never NULL: the map is always there; it may be empty). */
static const struct sysmon_io_entry *read_proc_io(struct analyzer *a, size_t *n)
{
	static const struct sysmon_io_entry none;
	struct io_walk w = {.a = a};

	maps_walk(a->maps.proc_io, sizeof(__u32), sizeof(struct ebpfmon_proc_io), io_one, &w);
	*n = w.n;
	return a->io ? a->io : &none;
}

/* An anomaly's opening or end as a structured log entry (fields: kind, peak, top process). */
__attribute__((format(printf, 5, 6))) static void anomaly_log(enum log_level level, const char *mid,
							      int metric,
							      const struct sysmon_episode *ep,
							      const char *fmt, ...)
{
	char peak[32], thr[32], pid[16], msg[512];
	struct log_field f[] = {
		{"EBPFMON_KIND", sysmon_metric_name(metric)},
		{"EBPFMON_PEAK", peak},
		{"EBPFMON_THRESHOLD", thr},
		{"EBPFMON_TOP_PID", pid},
		{"EBPFMON_TOP_COMM", ep->top_comm},
	};
	va_list ap;

	snprintf(peak, sizeof(peak), "%.1f", ep->peak);
	snprintf(thr, sizeof(thr), "%.1f", ep->threshold);
	snprintf(pid, sizeof(pid), "%d", ep->top_pid);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_event(level, mid, LOG_FIELDS(f), "%s", msg);
}

/* A sample's figures to the anomaly detectors, and their openings and ends to the store. */
static void resource_report(struct analyzer *a, const struct sysmon_report *rp)
{
	static const enum store_anomaly_kind kinds[] = {
		[SYSMON_METRIC_CPU] = STORE_ANOMALY_CPU,
		[SYSMON_METRIC_MEMORY] = STORE_ANOMALY_MEMORY,
		[SYSMON_METRIC_DISK_IO] = STORE_ANOMALY_DISK_IO,
	};
	const struct sysmon_report r = *rp;

	for (int m = 0; m < SYSMON_METRIC_COUNT; m++) {
		struct anomaly_state *s = &a->anom[m];
		struct sysmon_episode ep;
		struct store_anomaly row;

		switch (sysmon_detector_feed_report(&s->det, &r, &ep)) {
		case SYSMON_EV_OPENED:
			anomaly_log(
				LOG_LVL_WARN, LOG_MID_ANOMALY_OPEN, m, &ep,
				"%s anomaly: %.1f over the threshold %.0f since %d samples; top "
				"process %d (%s)",
				sysmon_metric_name(m), ep.value, ep.threshold,
				a->cfg.anomaly_min_intervals, ep.top_pid, ep.top_comm);
			row = (struct store_anomaly){
				.kind = kinds[m],
				.started_at = ns_to_unix(ep.start_ns),
				.peak = ep.peak,
				.threshold = ep.threshold,
				.top_pid = ep.top_pid,
			};
			snprintf(row.top_comm, sizeof(row.top_comm), "%s", ep.top_comm);
			s->row = a->store ? store_anomaly_open(a->store, &row) : 0;
			if (s->row < 0)
				s->row = 0;
			break;
		case SYSMON_EV_PEAK_UPDATED:
			if (s->row)
				store_anomaly_peak(a->store, s->row, ep.peak, ep.top_pid,
						   ep.top_comm);
			break;
		case SYSMON_EV_TOP_CHANGED:
			log_info("%s anomaly: process %d (%s) has now used the most since it began",
				 sysmon_metric_name(m), ep.top_pid, ep.top_comm);
			if (s->row)
				store_anomaly_top(a->store, s->row, ep.top_pid, ep.top_comm);
			break;
		case SYSMON_EV_CLOSED:
			anomaly_log(LOG_LVL_INFO, LOG_MID_ANOMALY_CLOSED, m, &ep,
				    "%s anomaly ended: peak %.1f, top process %d (%s), which used "
				    "the most over it",
				    sysmon_metric_name(m), ep.peak, ep.top_pid, ep.top_comm);
			if (s->row)
				store_anomaly_close(a->store, s->row, ns_to_unix(ep.end_ns));
			s->row = 0;
			break;
		case SYSMON_EV_NONE:
			break;
		}
	}
}

/* The snapshot the offload worker made (netstats_job()): the interval's network_stats row. */
static void network_snapshot(struct analyzer *a)
{
	if (a->net_rc >= 0) {
		a->msnap.tracked_addresses = a->net_row.tracked;
		a->msnap.bans_active = a->net_row.bans_active;
	}
	if (a->net_rc == 1 && a->store)
		store_stats_insert(a->store, &a->net_row, a->net_top, a->net_ntop);
}

/* A warning, at most every STORE_WARN_S, while the database cannot be written. */
static void store_upkeep(struct analyzer *a)
{
	time_t now = time(NULL);

	if (!a->store)
		return;
	if (!store_healthy(a->store) && now >= a->store_warned_at + STORE_WARN_S) {
		a->store_warned_at = now;
		log_warn("database %s cannot be written (%s): bans are still enforced; retrying",
			 a->cfg.sqlite_path, store_last_error(a->store));
	}
}

/*
 * The one-line status: systemd's STATUS= (systemctl status) under a service manager; off it,
 * the same line in the log when the analyzer is ready and every STATUS_LOG_S seconds.
 */
static void status(struct analyzer *a)
{
	const char *db = !a->store ? "unavailable" : store_healthy(a->store) ? "ok" : "failing";
	struct timespec now;
	char line[256];

	snprintf(line, sizeof(line),
		 "%llu events, %llu bans%s, %llu network bans, %llu expired; database %s"
		 " (%zu rows waiting, %llu dropped)",
		 (unsigned long long)a->events,
		 (unsigned long long)(a->cfg.dry_run ? a->policy.would_bans : a->policy.bans),
		 a->cfg.dry_run ? " (dry run: would-be)" : "",
		 (unsigned long long)a->policy.net_bans, (unsigned long long)a->policy.expired, db,
		 a->policy.n_pending, (unsigned long long)a->policy.unrecorded);
	if (getenv("NOTIFY_SOCKET")) {
		sd_notifyf(0, "STATUS=%s", line);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (a->status_logged_at && now.tv_sec - a->status_logged_at < STATUS_LOG_S)
		return;
	a->status_logged_at = now.tv_sec;
	log_info("status: %s", line);
}

/* --- metrics: the loop fills a snapshot, the listener's threads serve copies of it --- */

/* Grows with every decision the metrics show: a batch of events that changed it publishes. */
static uint64_t policy_decisions(const struct policy *p)
{
	uint64_t n = p->bans + p->would_bans + p->net_bans + p->retransmits;

	for (unsigned int i = 0; i < p->n_url_hits; i++)
		n += p->url_hits[i].hits;
	return n;
}

/* What the loop knows now into a->msnap (the map walks of an interval are filled there). */
static void metrics_fill(struct analyzer *a)
{
	struct metrics_snapshot *s = &a->msnap;
	const struct policy *p = &a->policy;

	struct ebpfmon_prog_stats ps[EBPFMON_PROG_STATS_MAX];
	int n;

	maps_counters_sum(&a->maps, &s->kernel); /* unreadable: the last figures stay */
	n = maps_prog_stats(a->cfg.pin_root, ps, EBPFMON_PROG_STATS_MAX);
	if (n >= 0) {
		s->n_progs = (unsigned int)n;
		for (int i = 0; i < n; i++) {
			memcpy(s->progs[i].name, ps[i].name, sizeof(s->progs[i].name));
			s->progs[i].run_ns = ps[i].run_time_ns;
			s->progs[i].runs = ps[i].run_cnt;
		}
	}
	memcpy(s->bans, p->bans_by_reason, sizeof(s->bans));
	s->would_bans = p->would_bans;
	s->bans_expired = p->expired;
	s->url_retransmits = p->retransmits;
	s->ban_rows_pending = p->n_pending;
	s->ban_rows_lost = p->unrecorded;
	s->time_to_ban = p->time_to_ban;
	s->database_up = a->store && store_healthy(a->store);
	s->database_errors = a->store ? store_error_count(a->store) : 0;
	s->dry_run = a->cfg.dry_run;
	s->n_anomalies = SYSMON_METRIC_COUNT;
	for (int m = 0; m < SYSMON_METRIC_COUNT; m++) {
		s->anomaly_kind[m] = sysmon_metric_name(m);
		s->anomaly_open[m] = sysmon_detector_is_open(&a->anom[m].det);
	}
	s->n_rules = a->cfg.n_url_patterns;
	for (unsigned int i = 0; i < s->n_rules; i++) {
		memcpy(s->rules[i].pattern, a->cfg.url_patterns[i], sizeof(s->rules[i].pattern));
		s->rules[i].hits = policy_url_hits(p, a->cfg.url_patterns[i]);
	}
	a->metrics_decisions = policy_decisions(p);
}

/* The listener [api] metrics_address asks for: started, moved after a reload, or stopped. */
static void metrics_listen(struct analyzer *a)
{
	const char *want = a->cfg.metrics_address;
	time_t now = time(NULL);

	if (a->metrics && strcmp(metrics_server_address(a->metrics), want)) {
		metrics_server_stop(a->metrics);
		a->metrics = NULL;
		a->metrics_retry_at = 0;
	}
	if (!a->metrics && want[0] && now >= a->metrics_retry_at) {
		if (metrics_server_start(want, &a->metrics)) {
			a->metrics_retry_at = now + METRICS_RETRY_S;
			log_warn("no metrics at %s: retrying every %ds; bans are not affected",
				 want, METRICS_RETRY_S);
		} else {
			log_info("metrics at %s/metrics", want);
		}
	}
}

/* The monitored interfaces and their ingress modes (the loader's link pins) into a->msnap. */
static void metrics_interfaces(struct analyzer *a)
{
	struct api_snap_iface ifs[METRICS_IFACES];
	size_t n = api_snap_interfaces(a->cfg.pin_root, ifs, METRICS_IFACES);

	a->msnap.n_ifaces = (unsigned int)n;
	for (size_t i = 0; i < n; i++) {
		memcpy(a->msnap.ifaces[i].name, ifs[i].name, sizeof(a->msnap.ifaces[i].name));
		a->msnap.ifaces[i].mode = ifs[i].xdp_mode;
	}
}

/*
 * Each interval: the listener, and a full snapshot for it (503 until the first one). The
 * interfaces are read here only: an XDP link's mode costs a netlink query.
 */
static void metrics_interval(struct analyzer *a)
{
	long n;

	metrics_listen(a);
	if (!a->metrics)
		return;
	n = maps_bans_in_force(a->maps.ban_nets, sizeof(struct ebpfmon_lpm_key));
	if (n >= 0)
		a->msnap.network_bans_active = (uint64_t)n;
	metrics_interfaces(a);
	metrics_fill(a);
	metrics_server_publish(a->metrics, &a->msnap);
}

/* After a batch of events: publish at once what it decided (bans, URL hits). */
static void metrics_events(struct analyzer *a)
{
	if (!a->metrics || policy_decisions(&a->policy) == a->metrics_decisions)
		return;
	metrics_fill(a);
	metrics_server_publish(a->metrics, &a->msnap);
}

/*
 * Whether the pinned maps are still the ones this analyzer holds. When a loader replaced them
 * (--unload, then a new loader) the ring buffer it reads is not the one XDP writes and its bans
 * land in maps no longer attached; its lock is on a removed folder and excludes no other
 * analyzer. The one remedy is a restart, which attaches to the new maps: 0, or -ESTALE after
 * the one error line. Pins that cannot be checked are given MAPS_GONE_GRACE_S first.
 */
static int maps_watch(struct analyzer *a)
{
	const char *root = a->cfg.pin_root;
	struct timespec now;
	char what[700];
	int ret = maps_check(&a->maps, root, what, sizeof(what));

	if (ret == 0) {
		a->maps_gone_since.tv_sec = 0;
		return 0;
	}
	if (ret > 0) {
		log_error("the maps under %s were replaced (a loader ran --unload?): %s; exiting "
			  "so that a restart attaches to the new ones (systemd's "
			  "Restart=on-failure starts the analyzer again)",
			  root, what);
		return -ESTALE;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ret != -ENOENT) {
		/* out of file descriptors or memory (a flood of connections to a listener) says
		 * nothing of the pins: keep going, and say so at most once a minute */
		if (!a->maps_unchecked_at || now.tv_sec - a->maps_unchecked_at >= 60) {
			a->maps_unchecked_at = now.tv_sec;
			log_warn("cannot check the maps under %s: %s", root, what);
		}
		return 0;
	}
	if (!a->maps_gone_since.tv_sec) {
		a->maps_gone_since = now;
		log_debug("cannot check the maps under %s (%s): waiting %ds", root, what,
			  MAPS_GONE_GRACE_S);
		return 0;
	}
	if (now.tv_sec - a->maps_gone_since.tv_sec < MAPS_GONE_GRACE_S)
		return 0;
	log_error("the maps under %s were replaced or removed (a loader ran --unload?): %s for "
		  "%lds; exiting so that a restart attaches to the new ones (systemd's "
		  "Restart=on-failure starts the analyzer again)",
		  root, what, (long)(now.tv_sec - a->maps_gone_since.tv_sec));
	return -ESTALE;
}

/*
 * ---- The interval's work, in slices ---------------------------------------------------------
 *
 * The loop runs one callback at a time, and a ban waits for whatever runs. So the interval's
 * work is a sequence of steps, each run in short slices from a defer source of a lower
 * priority than the ring buffer and the API: between two slices the loop acts on the
 * events and requests that came meanwhile. What grows with the host's state runs on the
 * offload worker (offload.h) while the loop goes on: the walk of ip_stats, the processes of
 * /proc, the survey of the ban maps and the database, retention and checkpoints; the step that
 * started one waits for its end, and the worker's own connection to the database writes only
 * while the loop's rows wait (policy.rows_wait). How long each slice held the loop is in the
 * metrics (ebpfmon_loop_hold_seconds, by task).
 */

#define HOLD_LOG_NS 1000000ull /* a callback that holds the loop longer is logged (debug) */
/*
 * Retention runs on the offload worker, for at most a quarter of the interval at a time (and
 * at least RETENTION_JOB_MIN_NS): a run with much to delete goes on over several intervals. Its
 * chunks are short transactions (struct store_cleanup), so a BanIP that writes meanwhile waits
 * at most for one.
 */
#define RETENTION_JOB_MIN_NS 20000000ull
#define RETENTION_JOB_MAX_NS 500000000ull /* the loop's rows wait at most about this */
/* Rows of decisions one callback writes (~7 us each): a backlog is written over several. */
#define FLUSH_ROWS 64
/* A slice of the survey's actions (policy_survey_apply()) lasts about this, plus one action. */
#define SURVEY_SLICE_NS 200000ull

enum interval_step {
	STEP_WATCH,	     /* the pins are ours; the database is open */
	STEP_SURVEY,	     /* conn_count, the ban maps, the active rows (the offload worker) */
	STEP_SURVEY_APPLY,   /* then bans over the limit, expired ones removed, rows reconciled */
	STEP_NETSTATS,	     /* the walk of ip_stats and the snapshot (the offload worker) */
	STEP_NETSTATS_ROW,   /* then the network_stats row */
	STEP_SYSMON,	     /* the resource sample */
	STEP_SYSMON_REPORT,  /* then the detectors */
	STEP_STORE,	     /* the bans' rows, the database's health, the status line */
	STEP_RETENTION,	     /* every CLEANUP_EVERY_S, on the offload worker */
	STEP_RETENTION_END,  /* then its rows, and whether the run goes on */
	STEP_CHECKPOINT,     /* the database's WAL, on the offload worker, when due */
	STEP_CHECKPOINT_END, /* then its outcome */
	STEP_METRICS,	     /* the snapshot /metrics serves */
	STEP_DONE
};

static const enum metrics_loop_task step_task[STEP_DONE] = {
	[STEP_WATCH] = METRICS_LOOP_MAPS_CHECK,

	[STEP_SURVEY] = METRICS_LOOP_SCAN,
	[STEP_SURVEY_APPLY] = METRICS_LOOP_SCAN,
	[STEP_NETSTATS] = METRICS_LOOP_NETSTATS,
	[STEP_NETSTATS_ROW] = METRICS_LOOP_NETSTATS,
	[STEP_SYSMON] = METRICS_LOOP_SYSMON,
	[STEP_SYSMON_REPORT] = METRICS_LOOP_SYSMON,
	[STEP_STORE] = METRICS_LOOP_STORE,
	[STEP_RETENTION] = METRICS_LOOP_RETENTION,
	[STEP_RETENTION_END] = METRICS_LOOP_RETENTION,
	[STEP_CHECKPOINT] = METRICS_LOOP_STORE,
	[STEP_CHECKPOINT_END] = METRICS_LOOP_STORE,
	[STEP_METRICS] = METRICS_LOOP_METRICS,
};

static const char *const step_name[STEP_DONE] = {
	[STEP_WATCH] = "maps_check",
	[STEP_SURVEY] = "scan_walk",
	[STEP_SURVEY_APPLY] = "scan_apply",
	[STEP_NETSTATS] = "network_stats_walk",
	[STEP_NETSTATS_ROW] = "network_stats_row",
	[STEP_SYSMON] = "sysmon_sample",
	[STEP_SYSMON_REPORT] = "sysmon_report",
	[STEP_STORE] = "store",
	[STEP_RETENTION] = "retention",
	[STEP_RETENTION_END] = "retention_end",
	[STEP_CHECKPOINT] = "checkpoint",
	[STEP_CHECKPOINT_END] = "checkpoint_end",
	[STEP_METRICS] = "metrics",
};

/* CPU time of this thread, in ns. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Where a callback started: the clocks, and the thread's context switches so far. */
struct hold_mark {
	uint64_t ns, cpu_ns; /* mono_ns(), thread_cpu_ns() */
	long waits;	     /* ru_nvcsw: the thread slept (a lock, I/O) */
	long preempted;	     /* ru_nivcsw: the scheduler ran something else */
};

static void hold_start(struct hold_mark *m)
{
	struct rusage ru;

	m->ns = mono_ns();
	m->cpu_ns = thread_cpu_ns();
	if (getrusage(RUSAGE_THREAD, &ru))
		ru.ru_nvcsw = ru.ru_nivcsw = 0;
	m->waits = ru.ru_nvcsw;
	m->preempted = ru.ru_nivcsw;
}

/*
 * One callback of task t (what: the step, or NULL) held the loop since m. One held long is
 * logged (debug) with the CPU time it used and how often the thread slept or was preempted
 * meanwhile: a hold with little CPU time is a wait, for a lock or I/O (sleeps) or for a CPU
 * that another thread took (preemptions), not long work.
 */
static void hold_observe(struct analyzer *a, enum metrics_loop_task t, const char *what,
			 const struct hold_mark *m)
{
	uint64_t held = mono_ns() - m->ns, cpu = thread_cpu_ns() - m->cpu_ns;
	double sec = (double)held / 1e9;
	struct rusage ru;

	metrics_histogram_observe(&a->msnap.loop_hold[t], sec);
	if (sec > a->msnap.loop_hold_max[t])
		a->msnap.loop_hold_max[t] = sec;
	if ((double)cpu / 1e9 > a->msnap.loop_cpu_max[t])
		a->msnap.loop_cpu_max[t] = (double)cpu / 1e9;
	if (held <= HOLD_LOG_NS || getrusage(RUSAGE_THREAD, &ru))
		return;
	log_debug("the loop was held %.3f ms by %s%s%s (%.3f ms of CPU; the thread slept %ld "
		  "times and was preempted %ld times meanwhile)",
		  (double)held / 1e6, metrics_loop_task_name(t), what ? ", step " : "",
		  what ? what : "", (double)cpu / 1e6, ru.ru_nvcsw - m->waits,
		  ru.ru_nivcsw - m->preempted);
}

/*
 * On the offload worker: the whole walk of ip_stats, then the snapshot of it, whose map reads
 * (the bans in force: a walk of bans, O(max_bans)) are long too; the loop writes its row.
 */
static void netstats_job(void *arg)
{
	struct analyzer *a = arg;

	netstats_begin(&a->net);
	netstats_step(&a->net, 0, NULL);
	a->net_rc = netstats_finish(&a->net, unix_now(), &a->net_row, a->net_top, &a->net_ntop);
}

/* On the offload worker: proc_io and every process (sysmon_sample_end() on the loop). */
static void sysmon_job(void *arg)
{
	struct analyzer *a = arg;
	size_t n_io;
	const struct sysmon_io_entry *io = read_proc_io(a, &n_io);

	sysmon_sample_begin(a->sysmon, mono_ns(), io, n_io);
	sysmon_sample_step(a->sysmon, 0, NULL);
}

/*
 * On the offload worker: its own read-write connection to the database at a->worker_path,
 * opened at the first job that needs it and again after the path changed; NULL while the loop
 * has no database (a->worker_db) or when it cannot be opened (logged by store_open()).
 */
static struct store *worker_store(struct analyzer *a)
{
	if (a->wstore && (!a->worker_db || strcmp(store_path(a->wstore), a->worker_path))) {
		store_close(a->wstore);
		a->wstore = NULL;
	}
	if (a->worker_db && !a->wstore && store_open(a->worker_path, &a->wstore))
		a->wstore = NULL;
	return a->wstore;
}

/* A job's input, on the loop: whether and where the worker may use the database. */
static void worker_input(struct analyzer *a)
{
	a->worker_db = a->store != NULL;
	if (a->store)
		snprintf(a->worker_path, sizeof(a->worker_path), "%s", store_path(a->store));
}

/*
 * On the offload worker: the walks of conn_count, bans and ban_nets, and the database's
 * active bans read through the worker's own connection, compared (policy_survey()).
 */
static void survey_job(void *arg)
{
	struct analyzer *a = arg;

	policy_survey(&a->maps, a->survey_limit, worker_store(a), &a->survey);
}

/* On the offload worker: retention for a->retention_budget_ns (store_cleanup_some()). */
static void retention_job(void *arg)
{
	struct analyzer *a = arg;
	struct store *st = worker_store(a);

	a->retention.until_ns = mono_ns() + a->retention_budget_ns;
	/* a BanIP may cut the job short (db_wanted()), after its first RETENTION_JOB_MIN_NS */
	a->retention.cut_after_ns =
		a->retention.until_ns - a->retention_budget_ns + RETENTION_JOB_MIN_NS;
	a->retention_n = st ? store_cleanup_some(st, a->retention_max_records,
						 a->retention_max_age_s, a->retention_now,
						 INT64_MAX, &a->retention)
			    : -ENODEV;
}

/*
 * Rows of decisions, FLUSH_ROWS at a time (policy_flush_some()): what is left is written by
 * the flush source on the loop's next turns, between events and requests.
 */
static void flush_rows(struct analyzer *a)
{
	if (policy_flush_some(&a->policy, FLUSH_ROWS))
		sd_event_source_set_enabled(a->flush_src, SD_EVENT_ONESHOT);
}

/* On the offload worker: copy the WAL back and empty it (every fdatasync of it, too). */
static void checkpoint_job(void *arg)
{
	struct analyzer *a = arg;

	a->ckpt_rc = store_checkpoint(&a->ckpt, a->ckpt_path, &a->ckpt_frames, a->ckpt_err,
				      sizeof(a->ckpt_err));
}

#define STEP_WAIT 2 /* step_slice(): the step waits for the offload worker */

/*
 * Start a job of the offload worker that writes through its own connection: the loop's rows
 * wait in memory until writing_job_end() (policy.rows_wait), so that the loop never waits
 * for the worker's write lock. STEP_WAIT, or 1 when the job ran here.
 */
static int writing_job_start(struct analyzer *a, void (*job)(void *))
{
	a->policy.rows_wait = true;
	if (offload_start(a->offload, job, a)) { /* cannot be: no job is left */
		job(a);
		return 1;
	}
	return STEP_WAIT;
}

/*
 * The step after a writing job: the rows that waited are written (FLUSH_ROWS at a time), and
 * the BanIP and UnbanIP calls that waited are answered.
 */
static void writing_job_end(struct analyzer *a)
{
	a->policy.rows_wait = false;
	flush_rows(a);
	if (a->api)
		api_resume(a->api);
}

/*
 * api_env.db_wanted, on the loop: a BanIP or UnbanIP waits for the worker's writing job.
 * Retention stops after its current chunk (about 50 us; the run goes on at the next
 * interval), once the job ran RETENTION_JOB_MIN_NS (20 ms), so that a stream of bans slows
 * retention down without stopping it; a checkpoint runs to its end (its TRUNCATE waits 10 ms
 * at most for readers).
 */
static void db_wanted(void *arg)
{
	struct analyzer *a = arg;

	atomic_store_explicit(&a->retention.cut, true, memory_order_relaxed);
}

/*
 * One slice of the current step: 1 when the step is over, 0 when it has more to do, STEP_WAIT
 * when the offload worker took it over (on_offload() goes on), -ESTALE when the maps were
 * replaced.
 */
static int step_slice(struct analyzer *a)
{
	switch (a->step) {
	case STEP_WATCH:
		if (maps_watch(a))
			return -ESTALE;
		store_try_open(a);
		return 1;
	case STEP_SURVEY:
		policy_survey_prepare(&a->policy, &a->survey);
		worker_input(a);
		a->survey_limit = a->cfg.max_connections_per_ip;
		if (offload_start(a->offload, survey_job, a)) { /* cannot be: no job is left */
			survey_job(a);
			return 1;
		}
		return STEP_WAIT;
	case STEP_SURVEY_APPLY:
		if (!policy_survey_apply(&a->policy, &a->survey, SURVEY_SLICE_NS))
			return 0;
		policy_survey_free(&a->survey);
		return 1;
	case STEP_NETSTATS:
		if (offload_start(a->offload, netstats_job, a)) { /* cannot be: no job is left */
			netstats_job(a);
			return 1;
		}
		return STEP_WAIT;
	case STEP_NETSTATS_ROW:
		network_snapshot(a); /* also after an unreadable map: its figures stay */
		return 1;
	case STEP_SYSMON:
		if (offload_start(a->offload, sysmon_job, a)) { /* cannot be: no job is left */
			sysmon_job(a);
			return 1;
		}
		return STEP_WAIT;
	case STEP_SYSMON_REPORT:
		sysmon_sample_end(a->sysmon, &a->report);
		if (a->store)
			store_begin(a->store);
		resource_report(a, &a->report);
		if (a->store)
			store_commit(a->store);
		return 1;
	case STEP_STORE:
		flush_rows(a);
		store_upkeep(a);
		status(a);
		return 1;
	case STEP_RETENTION: {
		uint64_t budget = (uint64_t)interval_ms(&a->cfg) * 1000000ull / 4;

		a->retention_ran = false;
		if (!a->store || (!a->retention_running && time(NULL) < a->cleanup_at))
			return 1;
		if (!a->retention_running) { /* a new run: it counts the tables first */
			memset(&a->retention, 0, sizeof(a->retention));
			a->retention_deleted = 0;
			a->retention_running = true;
		}
		worker_input(a);
		a->retention_max_records = a->cfg.max_records;
		a->retention_max_age_s = (int64_t)a->cfg.max_age_days * 86400;
		a->retention_now = time(NULL);
		if (budget < RETENTION_JOB_MIN_NS)
			budget = RETENTION_JOB_MIN_NS;
		if (budget > RETENTION_JOB_MAX_NS)
			budget = RETENTION_JOB_MAX_NS;
		a->retention_budget_ns = budget;
		atomic_store_explicit(&a->retention.cut, false, memory_order_relaxed);
		a->retention_ran = true;
		return writing_job_start(a, retention_job); /* write lock chunk after chunk */
	}
	case STEP_RETENTION_END:
		if (!a->retention_ran)
			return 1;
		writing_job_end(a);
		if (a->retention_n > 0)
			a->retention_deleted += a->retention_n;
		if (a->retention_n >= 0 && a->retention.more)
			return 1; /* the run goes on at the next interval */
		if (a->retention_n < 0)
			log_warn("database %s: retention stopped: %s", a->cfg.sqlite_path,
				 a->wstore ? store_last_error(a->wstore)
					   : strerror(-(int)a->retention_n));
		else if (a->retention_deleted)
			log_debug("database %s: retention deleted %" PRId64 " rows",
				  a->cfg.sqlite_path, a->retention_deleted);
		a->retention_running = false;
		a->cleanup_at = time(NULL) + CLEANUP_EVERY_S;
		return 1;
	case STEP_CHECKPOINT:
		a->ckpt_running = false;
		/* both writers' commits count (the worker's connection is idle while this runs) */
		if (!(store_checkpoint_due(a->store) || store_checkpoint_due(a->wstore)) ||
		    snprintf(a->ckpt_path, sizeof(a->ckpt_path), "%s", store_path(a->store)) >=
			    (int)sizeof(a->ckpt_path))
			return 1;
		store_checkpoint_started(a->store);
		store_checkpoint_started(a->wstore);
		a->ckpt_running = true;
		a->ckpt_started_ns = mono_ns();
		return writing_job_start(a, checkpoint_job); /* TRUNCATE holds the write lock */
	case STEP_CHECKPOINT_END:
		if (!a->ckpt_running)
			return 1;
		writing_job_end(a);
		if (a->ckpt_rc && !a->ckpt_failing)
			log_warn(
				"database %s: the WAL cannot be copied back (%s); it grows until it "
				"can",
				a->ckpt_path, a->ckpt_err);
		else if (!a->ckpt_rc && a->ckpt_failing)
			log_info("database %s: the WAL is copied back again", a->ckpt_path);
		else if (!a->ckpt_rc)
			log_debug("database %s: checkpoint, %d WAL frames in the file, %.1f ms",
				  a->ckpt_path, a->ckpt_frames,
				  (double)(mono_ns() - a->ckpt_started_ns) / 1e6);
		a->ckpt_failing = a->ckpt_rc != 0;
		return 1;
	case STEP_METRICS:
		metrics_interval(a);
		return 1;
	}
	return 1;
}

/* The next slice of the interval's work; the source stays on until the last step is over. */
static int on_work(sd_event_source *s, void *userdata)
{
	struct analyzer *a = userdata;
	unsigned int step = a->step;
	struct hold_mark m;
	int r;

	if (step >= STEP_DONE)
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	hold_start(&m);
	r = step_slice(a);
	hold_observe(a, step_task[step], step_name[step], &m);
	if (r < 0)
		return sd_event_exit(sd_event_source_get_event(s), r);
	if (r == 1)
		a->step++;
	if (a->step >= STEP_DONE || r == STEP_WAIT)
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
	return 0;
}

/* The offload worker finished the current step's job: the steps go on. */
static int on_offload(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct analyzer *a = userdata;

	(void)s;
	(void)fd;
	(void)revents;
	if (!offload_collect(a->offload))
		return 0;
	a->step++;
	sd_event_source_set_enabled(a->work_src, SD_EVENT_ON);
	return 0;
}

/* An interval is due: its steps start, unless the previous interval's still run. */
static void interval_start(struct analyzer *a)
{
	if (a->step < STEP_DONE) {
		a->intervals_skipped++;
		log_debug("interval skipped: the previous one is still at work (%llu skipped)",
			  (unsigned long long)a->intervals_skipped);
		return;
	}
	a->step = STEP_WATCH;
	sd_event_source_set_enabled(a->work_src, SD_EVENT_ON);
}

/*
 * Keys read only when the analyzer starts (docs/configuration.md, "analyzer restart") keep
 * their running values in a reloaded configuration, with a line saying when a change applies:
 * the store, the API's reader thread and the API's sockets go on with what they opened.
 */
static void keep_restart_keys(const struct analyzer *a, struct config *next)
{
	static const struct {
		const char *key;
		size_t off, len;
	} keys[] = {
		{"sqlite_path", offsetof(struct config, sqlite_path), sizeof(next->sqlite_path)},
		{"uds_socket_path", offsetof(struct config, uds_socket_path),
		 sizeof(next->uds_socket_path)},
		{"listen_address", offsetof(struct config, listen_address),
		 sizeof(next->listen_address)},
		{"tls_cert_file", offsetof(struct config, tls_cert_file),
		 sizeof(next->tls_cert_file)},
		{"tls_key_file", offsetof(struct config, tls_key_file), sizeof(next->tls_key_file)},
		{"tls_client_ca_file", offsetof(struct config, tls_client_ca_file),
		 sizeof(next->tls_client_ca_file)},
		{"pin_root", offsetof(struct config, pin_root), sizeof(next->pin_root)},
		{"group", offsetof(struct config, group), sizeof(next->group)},
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *run = (const char *)&a->cfg + keys[i].off;
		char *new = (char *)next + keys[i].off;

		if (!strcmp(run, new))
			continue;
		log_info("reload: %s changes from %s to %s at the next start of the analyzer",
			 keys[i].key, run, new);
		snprintf(new, keys[i].len, "%s", run);
	}
}

/* SIGHUP: a new configuration replaces the old only when all of it is good. */
static void reload(struct analyzer *a)
{
	static struct config next;
	char err[4096];

	config_defaults(&next);
	if (config_load(a->opts->config_path, &next, err, sizeof(err))) {
		log_error("reload refused, the configuration in force stays:\n%s", err);
		return;
	}
	if (a->opts->dry_run)
		next.dry_run = true;
	if (a->opts->db_path)
		snprintf(next.sqlite_path, sizeof(next.sqlite_path), "%s", a->opts->db_path);
	keep_restart_keys(a, &next);
	allow_host_addresses(&next);
	a->cfg = next;
	a->metrics_retry_at = 0; /* a new metrics_address is tried at once, not a minute on */
	detectors_init(a);
	if (apply_to_maps(a) || interval_arm(a, 0)) {
		log_error("reload: could not write the new settings to the maps");
		return;
	}
	log_info("reloaded %s: limit %u connections, %u URL patterns, %u allowlist entries%s",
		 a->opts->config_path, a->cfg.max_connections_per_ip, a->cfg.n_url_patterns,
		 a->cfg.n_allowlist, a->cfg.dry_run ? ", dry run" : "");
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct analyzer *a = userdata;

	if (si->ssi_signo == SIGHUP) {
		reload(a);
		return 0;
	}
	log_info("%s: stopping", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_ring_buffer(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct analyzer *a = userdata;
	struct hold_mark m;
	int r;

	(void)s;
	(void)fd;
	(void)revents;
	hold_start(&m);
	a->batch_events = 0;
	r = ring_buffer__consume(a->rb);
	if (r < 0 && r != EVENTS_BATCH_FULL)
		log_warn("ring buffer: %s", strerror(-r));
	/* the bans are in the kernel: their rows once no event waits (on_flush()) */
	if (a->batch_events)
		sd_event_source_set_enabled(a->flush_src, SD_EVENT_ONESHOT);
	hold_observe(a, METRICS_LOOP_EVENTS, NULL, &m);
	return 0;
}

/*
 * After the ring buffer's callbacks, once no event waits: the decisions' rows in one
 * transaction (a burst of bans is one write) and their metrics.
 */
static int on_flush(sd_event_source *s, void *userdata)
{
	struct analyzer *a = userdata;
	struct hold_mark m;

	(void)s;
	hold_start(&m);
	flush_rows(a);
	metrics_events(a);
	hold_observe(a, METRICS_LOOP_STORE, NULL, &m);
	return 0;
}

/*
 * The interval keeps a fixed schedule, as a periodic timer does: the next one is due one
 * interval after this one was due, however long its work takes, and intervals that passed
 * while the loop was busy are skipped, not run back to back. Ends the loop with -ESTALE when
 * the maps were replaced (maps_watch()).
 */
static int on_interval(sd_event_source *s, uint64_t due, void *userdata)
{
	struct analyzer *a = userdata;
	sd_event *e = sd_event_source_get_event(s);
	uint64_t step = interval_ms(&a->cfg) * 1000, next = due + step, now;
	int r;

	if (sd_event_now(e, CLOCK_MONOTONIC, &now) >= 0 && next <= now)
		next += (now - due) / step * step;
	r = interval_arm(a, next);
	if (r < 0)
		return sd_event_exit(e, r);
	interval_start(a);
	return 0;
}

/* The ring buffer and the interval timer, once the maps and the ring buffer exist. */
static int add_sources(struct analyzer *a)
{
	int r;

	r = sd_event_add_io(a->event, &a->rb_src, ring_buffer__epoll_fd(a->rb), EPOLLIN,
			    on_ring_buffer, a);
	if (r < 0) {
		log_error("cannot watch the events ring buffer: %s", strerror(-r));
		return r;
	}
	/* Accuracy 1 µs: the interval is due when configured, not coalesced up to 250 ms late. */
	r = sd_event_add_time_relative(a->event, &a->tick, CLOCK_MONOTONIC,
				       interval_ms(&a->cfg) * 1000, 1, on_interval, a);
	if (r < 0) {
		log_error("cannot arm the interval timer: %s", strerror(-r));
		return r;
	}
	/* After the ring buffer, before the interval's work. */
	r = sd_event_add_defer(a->event, &a->flush_src, on_flush, a);
	if (r >= 0)
		r = sd_event_source_set_priority(a->flush_src, SD_EVENT_PRIORITY_NORMAL + 1);
	if (r >= 0)
		r = sd_event_source_set_enabled(a->flush_src, SD_EVENT_OFF);
	if (r < 0) {
		log_error("cannot add the events' rows: %s", strerror(-r));
		return r;
	}
	/* After the ring buffer, the API's eventfd and the rows, before the API's snapshots. */
	a->step = STEP_DONE;
	r = sd_event_add_defer(a->event, &a->work_src, on_work, a);
	if (r >= 0)
		r = sd_event_source_set_priority(a->work_src, SD_EVENT_PRIORITY_NORMAL + 5);
	if (r >= 0)
		r = sd_event_source_set_enabled(a->work_src, SD_EVENT_OFF);
	if (r >= 0)
		r = offload_create(&a->offload);
	if (r >= 0)
		r = sd_event_add_io(a->event, &a->offload_src, offload_fd(a->offload), EPOLLIN,
				    on_offload, a);
	if (r < 0) {
		log_error("cannot add the interval's work: %s", strerror(-r));
		return r;
	}
	return 0;
}

/*
 * ---- Modules served from the loop -----------------------------------------------------------
 *
 * A module that answers from this process (the API server: nng's threads hand each
 * request to the loop through an eventfd) keeps its state in struct analyzer, is set up in
 * modules_start() and torn down in modules_stop(). It adds its sources to a->event
 * (sd_event_add_io() on its eventfd, say), so that its callbacks run on this thread, which
 * alone writes SQLite and the policy state.
 *
 * modules_start() runs once the maps, the policy, the ring buffer, the interval timer and the
 * first attempt at the store are in place, and before READY=1, so that the service is ready
 * only when it answers. a->store may still be NULL (the database is retried every interval):
 * read it when a request comes, not here. modules_stop() runs on every exit path, after the
 * loop has returned and STOPPING=1 is sent, and before any of those is freed; it must be safe
 * for a module that never started.
 */

/* The snapshots' timer due at next_ns (CLOCK_MONOTONIC ns); 0: off until a request asks. */
static void snap_arm(struct analyzer *a, uint64_t next_ns)
{
	int r;

	if (!a->snap_src)
		return;
	if (!next_ns) {
		sd_event_source_set_enabled(a->snap_src, SD_EVENT_OFF);
		return;
	}
	r = sd_event_source_set_time(a->snap_src, next_ns / 1000);
	if (r >= 0)
		r = sd_event_source_set_enabled(a->snap_src, SD_EVENT_ONESHOT);
	if (r < 0)
		log_warn("api: cannot arm the snapshots' timer: %s", strerror(-r));
}

static int on_api(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct analyzer *a = userdata;
	struct hold_mark m;

	(void)s;
	(void)fd;
	(void)revents;
	hold_start(&m);
	api_dispatch(a->api);		    /* the calls run here, on the loop's thread */
	snap_arm(a, api_snap_due(a->snap)); /* a call that waits for snapshots starts a cycle */
	hold_observe(a, METRICS_LOOP_API, NULL, &m);
	return 0;
}

/* One slice of the snapshots' cycle (at most API_SNAP_SLICE_NS), then the loop goes on. */
static int on_snap(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct analyzer *a = userdata;
	struct hold_mark m;
	uint64_t next;

	(void)s;
	(void)usec;
	hold_start(&m);
	if (api_snap_step(a->snap, &a->policy, a->sysmon, api_snap_now(), &next))
		api_resume(a->api);
	snap_arm(a, api_snap_due(a->snap));
	hold_observe(a, METRICS_LOOP_API_SNAP, NULL, &m);
	return 0;
}

/* 0 or -errno (logged by the module); on failure, modules_stop() undoes what started. */
static int modules_start(struct analyzer *a)
{
	struct api_env env = {.policy = &a->policy, .sysmon = a->sysmon, .own_uid = geteuid()};
	struct timespec now;
	int r;

	metrics_listen(a); /* a listener that cannot start is retried, never a failure */
	clock_gettime(CLOCK_MONOTONIC, &now);
	env.started_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	r = api_snap_create(&a->snap, &a->maps, env.started_ns);
	if (r) {
		log_error("api: cannot make its snapshots: %s", strerror(-r));
		return r;
	}
	env.snap = a->snap;
	env.db_wanted = db_wanted;
	env.db_wanted_arg = a;
	/*
	 * Its slices come after the ring buffer and the API's eventfd when those are pending
	 * too (a larger number runs later), so that a cycle never delays a ban.
	 */
	r = sd_event_add_time(a->event, &a->snap_src, CLOCK_MONOTONIC, 0, 1, on_snap, a);
	if (r >= 0)
		r = sd_event_source_set_priority(a->snap_src, SD_EVENT_PRIORITY_NORMAL + 10);
	if (r >= 0) /* off until a request asks for snapshots */
		r = sd_event_source_set_enabled(a->snap_src, SD_EVENT_OFF);
	if (r < 0) {
		log_error("cannot arm the API's snapshots timer: %s", strerror(-r));
		return r;
	}
	/* a listener that cannot start yet is no failure: the API retries it by itself */
	r = api_create(&a->api, &a->cfg, &env);
	if (r)
		return r;
	r = sd_event_add_io(a->event, &a->api_src, api_fd(a->api), EPOLLIN, on_api, a);
	if (r < 0)
		log_error("cannot watch the API's eventfd: %s", strerror(-r));
	return r < 0 ? r : 0;
}

static void modules_stop(struct analyzer *a)
{
	a->api_src = sd_event_source_unref(a->api_src);
	a->snap_src = sd_event_source_unref(a->snap_src);
	api_destroy(a->api); /* no nng callback runs after this */
	a->api = NULL;
	api_snap_destroy(a->snap); /* nor reader of the snapshots */
	a->snap = NULL;
	metrics_server_stop(a->metrics);
	a->metrics = NULL;
}

/* ---- End of modules served from the loop ---------------------------------------------------- */

int analyzer_run(const struct config *cfg, const struct analyzer_opts *opts)
{
	static struct analyzer a; /* large (struct config); one per process */
	int ret = 1, r;

	a.cfg = *cfg;
	a.opts = opts;
	r = cpusched_short_slices(); /* before any thread: nng's and the worker inherit it */
	if (r)
		log_debug("short scheduler slices not available: %s", strerror(-r));
	if (opts->dry_run)
		a.cfg.dry_run = true;
	allow_host_addresses(&a.cfg);

	memset(&a.maps, -1, sizeof(a.maps)); /* every fd -1: maps_close() is safe at once */
	/*
	 * Signals blocked first, before any thread exists; a SIGTERM that comes while the maps
	 * are awaited waits for the loop. The lock before anything is written to the maps or
	 * read from the ring buffer.
	 */
	if (daemon_event_new(&a.event, on_signal, &a) ||
	    maps_open(&a.maps, a.cfg.pin_root, opts->wait_s) || maps_lock(&a.maps, a.cfg.pin_root))
		goto out;
	policy_init(&a.policy, &a.cfg, &a.maps, NULL);
	if (apply_to_maps(&a) || netstats_init(&a.net, &a.maps) || sysmon_create(&a.sysmon, NULL))
		goto out;
	detectors_init(&a);
	a.rb = ring_buffer__new(a.maps.events, on_event, &a, NULL);
	if (!a.rb) {
		log_error("cannot map the events ring buffer: %s", strerror(errno));
		goto out;
	}
	if (add_sources(&a))
		goto out;
	store_try_open(&a);
	policy_scan(&a.policy); /* what happened while nobody was listening */
	if (modules_start(&a))
		goto out;
	log_info("ready: maps under %s, database %s%s, limit %u connections, %u URL patterns%s",
		 a.cfg.pin_root, a.cfg.sqlite_path, a.store ? "" : " (unavailable)",
		 a.cfg.max_connections_per_ip, a.cfg.n_url_patterns,
		 a.cfg.dry_run ? ", dry run: nothing is enforced" : "");
	sd_notify(0, "READY=1");
	status(&a);
	ret = daemon_event_run(a.event) ? 1 : 0;
out:
	sd_notify(0, "STOPPING=1");
	modules_stop(&a);
	/* The sources before what they watch: the ring buffer's epoll fd goes with it. */
	sd_event_source_unref(a.rb_src);
	sd_event_source_unref(a.flush_src);
	sd_event_source_unref(a.tick);
	sd_event_source_unref(a.work_src);
	sd_event_source_unref(a.offload_src);
	offload_destroy(a.offload); /* after its job: what the job uses is freed below */
	store_checkpointer_free(a.ckpt);
	store_close(a.wstore);
	policy_survey_free(&a.survey);
	a.policy.rows_wait = false;
	policy_flush(&a.policy); /* the last decisions' rows */
	sd_event_unref(a.event); /* and the signal sources it owns */
	ring_buffer__free(a.rb);
	if (a.store) {
		for (int m = 0; m < SYSMON_METRIC_COUNT; m++)
			if (a.anom[m].row)
				store_anomaly_close(a.store, a.anom[m].row, unix_now());
		store_close(a.store);
	}
	sysmon_destroy(a.sysmon);
	netstats_free(&a.net);
	free(a.io);
	policy_free(&a.policy);
	maps_close(&a.maps);
	return ret;
}
