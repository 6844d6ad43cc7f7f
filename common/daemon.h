/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The event loop both daemons run: libsystemd's sd-event. */
#ifndef EBPFMON_DAEMON_H
#define EBPFMON_DAEMON_H

#include <systemd/sd-event.h>

/*
 * Block SIGTERM, SIGINT and SIGHUP in the process (call it before any thread exists, so that
 * none inherits them unblocked) and make a new event loop that hands each of them to
 * on_signal(userdata). The signal sources belong to the loop and go with it. 0 and *ret, or
 * -errno (logged).
 */
int daemon_event_new(sd_event **ret, sd_event_signal_handler_t on_signal, void *userdata);

/*
 * Run the loop until a callback calls sd_event_exit(), sending WATCHDOG=1 from it when systemd
 * asks for it (WATCHDOG_USEC): between a half and three quarters of the period apart, sooner
 * when the loop wakes for something else then. Call it once READY=1 is sent. Returns the code
 * given to sd_event_exit(), or -errno when the loop itself fails (logged).
 */
int daemon_event_run(sd_event *e);

/*
 * Send log_event() entries to the journal as structured entries (sd_journal_sendv) when stderr
 * is journald's stream; elsewhere they stay lines on stderr.
 */
void daemon_journal_attach(void);

#endif
