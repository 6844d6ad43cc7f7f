// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * One thread, one epoll loop: the ring buffer (kernel events, acted on at once), a timer
 * (the periodic policy pass and the watchdog) and a signalfd (stop, reload).
 */
#include "analyzer.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "mapconf.h"
#include "maps.h"
#include "policy.h"

struct analyzer {
	struct config cfg; /* the configuration in force */
	const struct analyzer_opts *opts;
	struct maps maps;
	struct policy policy;
	struct ring_buffer *rb;
	int sigfd, tfd, epfd;
	uint64_t events;
};

static int on_event(void *ctx, void *data, size_t len)
{
	struct analyzer *a = ctx;

	a->events++;
	policy_on_event(&a->policy, data, len);
	return 0;
}

static int apply_to_maps(struct analyzer *a)
{
	struct mapconf_fds fds = {
		.settings = a->maps.settings,
		.allow_nets = a->maps.allow_nets,
		.url_rules = a->maps.url_rules,
		.ban_nets = a->maps.ban_nets,
	};

	return mapconf_apply(&fds, &a->cfg);
}

static int arm_timer(struct analyzer *a)
{
	uint64_t ms = a->cfg.monitoring_interval_ms
			      ? a->cfg.monitoring_interval_ms
			      : (uint64_t)a->cfg.monitoring_interval_seconds * 1000;
	struct itimerspec its = {
		.it_interval = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
	};
	uint64_t wd_usec;

	/* The watchdog is fed from this timer: tick at least twice per watchdog period. */
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec / 2000 < ms) {
		ms = wd_usec / 2000 ?: 1;
		its.it_interval = (struct timespec){ ms / 1000, (ms % 1000) * 1000000 };
	}
	its.it_value = its.it_interval;
	if (timerfd_settime(a->tfd, 0, &its, NULL)) {
		log_error("cannot arm the interval timer: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void status(struct analyzer *a)
{
	sd_notifyf(0, "STATUS=%llu events, %llu bans%s, %llu expired",
		   (unsigned long long)a->events,
		   (unsigned long long)(a->cfg.dry_run ? a->policy.would_bans : a->policy.bans),
		   a->cfg.dry_run ? " (dry run: would-be)" : "",
		   (unsigned long long)a->policy.expired);
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
	a->cfg = next;
	if (apply_to_maps(a) || arm_timer(a)) {
		log_error("reload: could not write the new settings to the maps");
		return;
	}
	log_info("reloaded %s: limit %u connections, %u URL patterns, %u allowlist entries%s",
		 a->opts->config_path, a->cfg.max_connections_per_ip, a->cfg.n_url_patterns,
		 a->cfg.n_allowlist, a->cfg.dry_run ? ", dry run" : "");
}

static int add_fd(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int loop(struct analyzer *a)
{
	int rb_fd = ring_buffer__epoll_fd(a->rb);

	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(a->epfd, evs, 4, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == rb_fd) {
				if (ring_buffer__consume(a->rb) < 0)
					log_warn("ring buffer: %s", strerror(errno));
			} else if (fd == a->tfd) {
				uint64_t ticks;

				if (read(a->tfd, &ticks, sizeof(ticks)) > 0) {
					ring_buffer__consume(a->rb); /* events first, then the scan */
					policy_scan(&a->policy);
					status(a);
					sd_notify(0, "WATCHDOG=1");
				}
			} else if (fd == a->sigfd) {
				struct signalfd_siginfo si;

				if (read(a->sigfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					reload(a);
					continue;
				}
				log_info("%s: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
				return 0;
			}
		}
	}
}

int analyzer_run(const struct config *cfg, const struct analyzer_opts *opts)
{
	static struct analyzer a; /* large (struct config); one per process */
	sigset_t mask;
	int ret = 1;

	a.cfg = *cfg;
	a.opts = opts;
	a.sigfd = a.tfd = a.epfd = -1;
	if (opts->dry_run)
		a.cfg.dry_run = true;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	a.sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	a.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a.sigfd < 0 || a.tfd < 0 || a.epfd < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	if (maps_open(&a.maps, a.cfg.pin_root, opts->wait_s))
		goto out;
	policy_init(&a.policy, &a.cfg, &a.maps);
	if (apply_to_maps(&a))
		goto out;
	a.rb = ring_buffer__new(a.maps.events, on_event, &a, NULL);
	if (!a.rb) {
		log_error("cannot map the events ring buffer: %s", strerror(errno));
		goto out;
	}
	if (add_fd(a.epfd, ring_buffer__epoll_fd(a.rb)) || add_fd(a.epfd, a.tfd) ||
	    add_fd(a.epfd, a.sigfd) || arm_timer(&a)) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	policy_scan(&a.policy); /* what happened while nobody was listening */
	log_info("ready: maps under %s, limit %u connections, %u URL patterns%s", a.cfg.pin_root,
		 a.cfg.max_connections_per_ip, a.cfg.n_url_patterns,
		 a.cfg.dry_run ? ", dry run: nothing is enforced" : "");
	sd_notify(0, "READY=1");
	status(&a);
	ret = loop(&a) ? 1 : 0;
out:
	sd_notify(0, "STOPPING=1");
	ring_buffer__free(a.rb);
	policy_free(&a.policy);
	maps_close(&a.maps);
	if (a.epfd >= 0)
		close(a.epfd);
	if (a.tfd >= 0)
		close(a.tfd);
	if (a.sigfd >= 0)
		close(a.sigfd);
	return ret;
}
