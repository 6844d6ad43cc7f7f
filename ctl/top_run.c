// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ebpfmonctl top: the refreshes (three calls to the API each: the status, the newest active
 * bans, the top talkers), the live view on a terminal, and plain-text frames for scripts.
 * What a frame holds is top.c's; the terminal's modes are term.c's.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "render.h"
#include "run.h"
#include "table.h"
#include "term.h"
#include "top.h"

static uint64_t ctl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One call: 0; 1 when the analyzer refused (*resp holds its reply); -errno as ctl_call(). */
static int ctl_top_call(const struct ctl_args *a, const Ebpfmon__V1__Request *req,
			Ebpfmon__V1__Response **resp, char *msg, size_t len)
{
	int ret = ctl_call(a->url, a->timeout_ms, req, resp, msg, len);

	if (ret)
		return ret;
	return (*resp)->status == EBPFMON__V1__STATUS__STATUS_OK ? 0 : 1;
}

/*
 * One sample into *s: the status, the newest active bans, then as many talkers as the height
 * leaves room for after them. 0; 1 when the analyzer refused (*refusal holds its reply, for
 * the caller to free); -errno when it could not be reached or understood (msg says why).
 */
static int ctl_top_sample(const struct ctl_args *a, const struct ctl_top *t, unsigned int height,
			  struct ctl_top_sample *s, Ebpfmon__V1__Response **refusal, char *msg,
			  size_t len)
{
	Ebpfmon__V1__GetMonitorStatusRequest status = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	Ebpfmon__V1__GetMaliciousIPsRequest bans = EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest stats = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;
	Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__Response *resp = NULL;
	struct ctl_top_rows rows;
	int ret;

	memset(s, 0, sizeof(*s));
	*refusal = NULL;
	req.version = CTL_PROTOCOL_VERSION;

	req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
	req.get_monitor_status = &status;
	ret = ctl_top_call(a, &req, &resp, msg, len);
	if (ret)
		goto fail;
	s->owned[0] = resp;
	s->status = resp->get_monitor_status;
	s->status_ms = ctl_mono_ms();

	bans.limit = CTL_TOP_BANS;
	req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS;
	req.get_malicious_ips = &bans;
	ret = ctl_top_call(a, &req, &resp, msg, len);
	if (ret)
		goto fail;
	s->owned[1] = resp;
	s->bans = resp->get_malicious_ips;

	ctl_top_layout(height, s->bans->n_bans, t->keys ? 1 : 0, t->top_max, &rows);
	stats.top = rows.talkers;
	stats.order = t->view.order_bytes
			      ? EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES
			      : EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_PACKETS;
	req.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
	req.get_network_stats = &stats;
	ret = ctl_top_call(a, &req, &resp, msg, len);
	if (ret)
		goto fail;
	s->owned[2] = resp;
	s->stats = resp->get_network_stats;
	s->stats_ms = ctl_mono_ms();
	s->order_bytes = t->view.order_bytes;
	return 0;
fail:
	if (ret > 0)
		*refusal = resp;
	ctl_top_sample_clear(s);
	return ret;
}

/*
 * Refresh t: on success the new sample becomes t->cur and the one before t->prev (the rates
 * are between them); on failure t keeps its data and says what went wrong. Returns as
 * ctl_top_sample(); a refusal's reply is left in *refusal.
 */
static int ctl_top_refresh(const struct ctl_args *a, struct ctl_top *t, unsigned int height,
			   Ebpfmon__V1__Response **refusal, char *msg, size_t len)
{
	struct ctl_top_sample s;
	int ret;

	ret = ctl_top_sample(a, t, height, &s, refusal, msg, len);
	if (!ret) {
		ctl_top_sample_move(&t->prev, &t->cur);
		ctl_top_sample_move(&t->cur, &s);
		t->error_what = NULL;
		t->error[0] = '\0';
	} else if (ret > 0) {
		const char *name = ctl_status_name((*refusal)->status);

		t->error_what = "the analyzer refused";
		snprintf(t->error, sizeof(t->error), "%s: %s", name ? name : "STATUS_?",
			 (*refusal)->message && *(*refusal)->message ? (*refusal)->message
								     : "(no message)");
	} else {
		/* the message's first line; the hint after it is for the command line */
		t->error_what = "connection lost";
		snprintf(t->error, sizeof(t->error), "%.*s", (int)strcspn(msg, "\n"), msg);
	}
	return ret;
}

/* What a failed refresh means for the exit status, with the message on err. */
static int ctl_top_failed(int ret, Ebpfmon__V1__Response *refusal, const char *msg, FILE *err)
{
	if (ret > 0) {
		ctl_print_refused(err, refusal);
		ebpfmon__v1__response__free_unpacked(refusal, NULL);
		return CTL_EXIT_REFUSED;
	}
	fprintf(err, "ebpfmonctl: %s\n", msg);
	return ret == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_UNREACHABLE;
}

static int ctl_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};

			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Paint t on the terminal at fd in one write. */
static int ctl_top_paint(struct ctl_top *t, int fd, unsigned int width, unsigned int height)
{
	struct ctl_top_frame f;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	int ret;

	t->now = time(NULL);
	t->now_ms = ctl_mono_ms();
	ret = ctl_top_frame_build(&f, t, width, height);
	if (ret)
		return ret;
	m = open_memstream(&buf, &len);
	if (!m) {
		ctl_top_frame_fini(&f);
		return -ENOMEM;
	}
	ret = ctl_top_frame_paint(&f, width, height, m);
	if (fclose(m) && !ret)
		ret = -ENOMEM;
	ctl_top_frame_fini(&f);
	if (!ret)
		ret = ctl_write_all(fd, buf, len);
	free(buf);
	return ret;
}

/*
 * The live view: paint, then wait for the next refresh, a key or a signal. A refresh that
 * fails leaves the last data on the screen under a line that says so, and the next one is
 * tried an interval later. Returns the exit status.
 */
static int ctl_top_live(const struct ctl_args *a, struct ctl_top *t, int out_fd, FILE *err)
{
	int in_fd = isatty(STDIN_FILENO) ? STDIN_FILENO : -1, ev_fd, ret = 0;
	uint64_t last = t->cur.stats_ms, now;
	bool paint = true, refresh = false;
	unsigned int width, height;
	char msg[1024];

	ev_fd = ctl_term_enter(in_fd, out_fd);
	if (ev_fd < 0) {
		fprintf(err, "ebpfmonctl: cannot set up the terminal: %s\n", strerror(-ev_fd));
		return CTL_EXIT_REFUSED;
	}
	ctl_term_size(out_fd, &width, &height);
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = ev_fd, .events = POLLIN},
			{.fd = in_fd, .events = POLLIN},
		};
		enum ctl_top_action act = CTL_TOP_NONE;
		uint64_t next;
		int n;

		now = ctl_mono_ms();
		if (refresh || now >= last + t->view.interval_ms) {
			Ebpfmon__V1__Response *refusal = NULL;

			ctl_top_refresh(a, t, height, &refusal, msg, sizeof(msg));
			if (refusal)
				ebpfmon__v1__response__free_unpacked(refusal, NULL);
			last = now;
			refresh = false;
			paint = true;
		}
		if (paint) {
			ret = ctl_top_paint(t, out_fd, width, height);
			if (ret)
				break;
			paint = false;
		}
		next = last + t->view.interval_ms;
		now = ctl_mono_ms();
		n = poll(pfd, in_fd >= 0 ? 2 : 1, next > now ? (int)(next - now) : 0);
		if (n < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (n <= 0)
			continue;
		if (pfd[0].revents && ctl_term_events()) {
			/* resized, or back from Ctrl-Z: everything again, at the new size */
			ctl_term_size(out_fd, &width, &height);
			paint = true;
		}
		if (in_fd >= 0 && pfd[1].revents) {
			char keys[64];
			ssize_t got = read(in_fd, keys, sizeof(keys));

			if (got > 0)
				act = ctl_top_input(&t->view, keys, (size_t)got);
			else if (!got || (errno != EINTR && errno != EAGAIN))
				in_fd = -1; /* the terminal went away: no more keys */
		}
		if (act == CTL_TOP_QUIT)
			break;
		refresh |= act == CTL_TOP_REFRESH;
		paint |= act == CTL_TOP_REDRAW;
	}
	ctl_term_leave();
	if (ret) {
		fprintf(err, "ebpfmonctl: writing to the terminal: %s\n", strerror(-ret));
		return CTL_EXIT_REFUSED;
	}
	return CTL_EXIT_OK;
}

/* Sleep until the monotonic clock reads deadline_ms. */
static void ctl_sleep_until(uint64_t deadline_ms)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ms / 1000),
		.tv_nsec = (long)(deadline_ms % 1000) * 1000000,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * Plain text: a frame per refresh, a blank line between them, --interval apart; the first
 * is t's. A refresh that fails ends it, as any other command would.
 */
static int ctl_top_plain(const struct ctl_args *a, struct ctl_top *t, FILE *out, FILE *err)
{
	uint32_t n = a->iterations ? a->iterations : 1, i;
	uint64_t start = ctl_mono_ms();
	char msg[1024];
	int ret;

	for (i = 0; i < n; i++) {
		struct ctl_top_frame f;

		if (i) {
			Ebpfmon__V1__Response *refusal = NULL;

			ctl_sleep_until(start + (uint64_t)i * t->view.interval_ms);
			ret = ctl_top_refresh(a, t, 0, &refusal, msg, sizeof(msg));
			if (ret)
				return ctl_top_failed(ret, refusal, msg, err);
			fputc('\n', out);
		}
		t->now = time(NULL);
		t->now_ms = ctl_mono_ms();
		ret = ctl_top_frame_build(&f, t, 0, 0);
		if (!ret) {
			ret = ctl_top_frame_print(&f, out);
			ctl_top_frame_fini(&f);
		}
		if (!ret && fflush(out))
			ret = -errno;
		if (ret) {
			fprintf(err, "ebpfmonctl: writing the output: %s\n", strerror(-ret));
			return CTL_EXIT_REFUSED;
		}
	}
	return CTL_EXIT_OK;
}

int ctl_top_run(const struct ctl_args *a, FILE *out, FILE *err)
{
	Ebpfmon__V1__Response *refusal = NULL;
	int out_fd = fileno(out), ret, status;
	unsigned int width = 0, height = 0;
	struct ctl_top t;
	char msg[1024];

	memset(&t, 0, sizeof(t));
	t.view.order_bytes = a->order_bytes;
	t.view.interval_ms = a->interval_ms ? a->interval_ms : CTL_INTERVAL_DEFAULT_MS;
	t.top_max = a->top;
	/* the live view on a terminal; plain text for pipes, files, TERM=dumb, and on request */
	t.keys = !a->iterations && ctl_term_capable(out_fd);
	if (t.keys)
		ctl_term_size(out_fd, &width, &height);

	/* the first refresh decides the exit status as any other command's call does */
	ret = ctl_top_refresh(a, &t, height, &refusal, msg, sizeof(msg));
	if (ret) {
		status = ctl_top_failed(ret, refusal, msg, err);
	} else if (t.keys) {
		fflush(out);
		status = ctl_top_live(a, &t, out_fd, err);
	} else {
		status = ctl_top_plain(a, &t, out, err);
	}
	ctl_top_sample_clear(&t.cur);
	ctl_top_sample_clear(&t.prev);
	return status;
}
