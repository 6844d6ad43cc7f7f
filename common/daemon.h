/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What both daemons do the same way at start. */
#ifndef EBPFMON_DAEMON_H
#define EBPFMON_DAEMON_H

/*
 * Block SIGTERM, SIGINT and SIGHUP (before any thread exists, so none inherits them
 * unblocked) and return a signalfd that reads them, or -errno (logged).
 */
int daemon_signalfd(void);

#endif
