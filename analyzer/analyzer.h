/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ebpfmon-analyzer: the unprivileged event loop over the pinned maps. */
#ifndef EBPFMON_ANALYZER_H
#define EBPFMON_ANALYZER_H

#include "config.h"

struct analyzer_opts {
	const char *config_path; /* re-read on SIGHUP */
	unsigned int wait_s;	 /* how long to wait for the loader's pins */
	bool dry_run;		 /* --dry-run: overrides the configuration */
	const char *db_path;	 /* --db: overrides [database] sqlite_path */
};

/* Run until SIGTERM/SIGINT; returns an exit status (0, 1 failure, 2 bad configuration). */
int analyzer_run(const struct config *cfg, const struct analyzer_opts *opts);

#endif
