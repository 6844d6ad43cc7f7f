/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The terminal of a full-screen view (ebpfmonctl top): single keys without echo, the
 * alternate screen without a cursor, and the terminal given back as it was on every way out:
 * a normal return, exit() (atexit), Ctrl-C, SIGTERM, SIGHUP, SIGQUIT, a crash; Ctrl-Z gives it
 * back while stopped and takes it again on fg. No curses: the escape sequences are the ones
 * every terminal emulator of the last 30 years understands (ECMA-48 and xterm's alternate
 * screen).
 */
#ifndef EBPFMON_CTL_TERM_H
#define EBPFMON_CTL_TERM_H

#include <stdbool.h>

/* What ctl_term_events() reports. */
enum {
	CTL_TERM_RESIZED = 1 << 0, /* SIGWINCH: ask ctl_term_size() again and paint */
	CTL_TERM_RESUMED = 1 << 1, /* SIGCONT: back from Ctrl-Z, paint everything again */
};

/*
 * Take the terminal: keys from in_fd (when it is a terminal; -1 or another file: no keys),
 * the screen on out_fd. Ctrl-C quits at once with status 0 (as q does), even while a call to
 * the analyzer waits; SIGTERM, SIGHUP and SIGQUIT end the process by their signal once the
 * terminal is back. Returns a file descriptor that becomes readable on the events above, or
 * -errno.
 */
int ctl_term_enter(int in_fd, int out_fd);
/* Read the events that arrived (CTL_TERM_*); 0 when none. */
int ctl_term_events(void);
/* Give the terminal back and uninstall the handlers; nothing when not entered. */
void ctl_term_leave(void);
/* Columns and rows of the terminal at fd: TIOCGWINSZ, else $COLUMNS and $LINES, else 80x24. */
void ctl_term_size(int fd, unsigned int *width, unsigned int *height);
/* Whether fd is a terminal that understands the sequences (not TERM=dumb or unset). */
bool ctl_term_capable(int fd);

#endif
