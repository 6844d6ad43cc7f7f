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

/* What mapconf_apply() writes. */
enum mapconf_what {
	MAPCONF_RULES = 1u << 0,    /* allow_nets and url_rules */
	MAPCONF_SETTINGS = 1u << 1, /* settings[0] */
};

/*
 * Make the maps say what cfg says, for the parts in what (enum mapconf_what). The new
 * allowlist and rules are written before the stale entries are removed, so no address loses
 * its allowlisting half-way. settings[0] is written whole from mapconf_settings(), keeping
 * EBPFMON_F_BAN_NETS when the map held it or ban_nets has entries. The loader writes the
 * settings only into a map it has just created; the analyzer owns them from then on. Either
 * way, an allowlist entry that covers addresses not covered before grows settings.allow_gen
 * (XDP then looks up allow_nets again for every ban), and a settings write grows
 * settings.ban_gen (XDP looks every address up in bans and ban_nets again).
 * 0 or -errno (logged, naming the map).
 */
int mapconf_apply(const struct mapconf_fds *fds, const struct config *cfg, unsigned int what);

/*
 * To call after writing an entry to bans or ban_nets (settings_fd: the settings map): grows
 * settings.ban_gen, so that XDP looks the banned address up at its next packet instead of
 * trusting its note that no ban covered it (struct ebpfmon_ip_stats, ban_note). Without
 * it the ban takes effect within EBPFMON_BAN_NOTE_NS. A read-modify-write of settings[0]: not
 * to be raced by another writer of the settings (the analyzer is their one writer while it
 * runs). 0 or -errno (logged).
 */
int mapconf_ban_written(int settings_fd);

/*
 * settings[0] as cfg asks for it: the connection limit, the HTTP ports and the flags
 * URL_MATCH, DRY_RUN, URL_NOCASE and DROP_UNSEEN; EBPFMON_F_BAN_NETS is kept from old_flags
 * (whoever writes the settings never hides ban_nets from XDP).
 */
void mapconf_settings(const struct config *cfg, __u32 old_flags, struct ebpfmon_settings *set);

/*
 * The url_rules entry a pattern becomes: prefix patterns drop, glob patterns report their
 * literal prefix (up to the first '*') so that user space can match the whole glob. With
 * nocase (url_case_insensitive) the key is lower-cased (ASCII), as XDP lower-cases the path.
 */
void mapconf_url_rule(const char *pattern, unsigned int id, bool nocase,
		      struct ebpfmon_url_key *key, struct ebpfmon_url_rule *rule);

#endif
