// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

static const int daemon_signals[] = {SIGTERM, SIGINT, SIGHUP};

int daemon_event_new(sd_event **ret, sd_event_signal_handler_t on_signal, void *userdata)
{
	__attribute__((cleanup(sd_event_unrefp))) sd_event *e = NULL;
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	for (size_t i = 0; i < sizeof(daemon_signals) / sizeof(daemon_signals[0]); i++)
		sigaddset(&mask, daemon_signals[i]);
	/* sd-event reads signals through a signalfd: they must be blocked before it can. */
	if (sigprocmask(SIG_BLOCK, &mask, NULL)) {
		log_error("cannot block SIGTERM, SIGINT and SIGHUP: %s", strerror(errno));
		return -errno;
	}
	r = sd_event_new(&e);
	if (r < 0) {
		log_error("cannot create the event loop: %s", strerror(-r));
		return r;
	}
	for (size_t i = 0; i < sizeof(daemon_signals) / sizeof(daemon_signals[0]); i++) {
		/* Floating (no source returned): the loop owns it and frees it with itself. */
		r = sd_event_add_signal(e, NULL, daemon_signals[i], on_signal, userdata);
		if (r < 0) {
			log_error("cannot watch SIG%s in the event loop: %s",
				  sigabbrev_np(daemon_signals[i]), strerror(-r));
			return r;
		}
	}
	*ret = e;
	e = NULL;
	return 0;
}

int daemon_event_run(sd_event *e)
{
	int r, code;

	/* Nothing when systemd sets no WATCHDOG_USEC (or a WATCHDOG_PID not ours). */
	r = sd_event_set_watchdog(e, true);
	if (r < 0)
		log_warn("cannot arm the watchdog: %s", strerror(-r));
	r = sd_event_loop(e);
	/* An exit asked for by a callback was logged there; only the loop's own failure is not. */
	if (r < 0 && sd_event_get_exit_code(e, &code) == -ENODATA)
		log_error("the event loop failed: %s", strerror(-r));
	return r;
}

#define JOURNAL_FIELDS_MAX 16

/* log_journal_fn: one entry with MESSAGE, PRIORITY, MESSAGE_ID, SYSLOG_IDENTIFIER and fields. */
static int journal_send(int priority, const char *message_id, const struct log_field *fields,
			size_t n, const char *message)
{
	struct iovec iov[JOURNAL_FIELDS_MAX + 4];
	char *text[JOURNAL_FIELDS_MAX + 4] = {0};
	size_t k = 0;
	int r = 0;

	if (n > JOURNAL_FIELDS_MAX)
		n = JOURNAL_FIELDS_MAX;
	if (asprintf(&text[k++], "MESSAGE=%s", message) < 0 ||
	    asprintf(&text[k++], "PRIORITY=%d", priority) < 0 ||
	    asprintf(&text[k++], "MESSAGE_ID=%s", message_id) < 0 ||
	    asprintf(&text[k++], "SYSLOG_IDENTIFIER=%s", program_invocation_short_name) < 0)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < n; i++)
		if (asprintf(&text[k++], "%s=%s", fields[i].name,
			     fields[i].value ? fields[i].value : "") < 0)
			r = -ENOMEM;
	if (!r) {
		for (size_t i = 0; i < k; i++)
			iov[i] = (struct iovec){.iov_base = text[i], .iov_len = strlen(text[i])};
		r = sd_journal_sendv(iov, (int)k);
	}
	for (size_t i = 0; i < k; i++)
		free(text[i]);
	return r;
}

void daemon_journal_attach(void)
{
	log_set_journal_sink(journal_send);
}
