/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The configuration's share of the kernel state: settings, allow_nets and url_rules. */
#ifndef EBPFMON_MAPCONF_H
#define EBPFMON_MAPCONF_H

#include "config.h"

struct mapconf_fds {
	int settings;
	int allow_nets;
	int url_rules;
	int ban_nets;
};

/*
 * Make the maps say what cfg says. The new allowlist and rules are written before the stale
 * entries are removed, so no address loses its allowlisting half-way. 0 or -errno (logged).
 */
int mapconf_apply(const struct mapconf_fds *fds, const struct config *cfg);

/* The url_rules entry a pattern becomes: prefix patterns drop, glob patterns report their
 * literal prefix (up to the first '*') so that user space can match the whole glob. */
void mapconf_url_rule(const char *pattern, unsigned int id, struct ebpfmon_url_key *key,
		      struct ebpfmon_url_rule *rule);

#endif
