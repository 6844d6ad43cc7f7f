/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ebpfmon-loader: load, attach and pin the data plane, then stay as an unprivileged supervisor. */
#ifndef EBPFMON_LOADER_H
#define EBPFMON_LOADER_H

#include "config.h"

/* Exit statuses of ebpfmon-loader. */
enum loader_exit {
	LOADER_EXIT_OK = 0,
	LOADER_EXIT_FAIL = 1,  /* could not load, attach, pin or drop privileges */
	LOADER_EXIT_USAGE = 2, /* bad option or configuration */
};

/*
 * Load and attach per cfg (interfaces, xdp_mode, pin_root, user, group), pin everything,
 * drop privileges, tell systemd we are ready and wait for SIGTERM/SIGINT, then remove the
 * link pins (detaching the programs) and keep the map pins. Returns an exit status.
 */
int loader_run(const struct config *cfg);

/* Remove everything under cfg->pin_root that a loader pinned, and the root itself. */
int loader_unload(const struct config *cfg);

/* Report what this kernel offers ebpfmon (--check); 0 when ebpfmon can run here. */
int loader_check(const struct config *cfg);

#endif
