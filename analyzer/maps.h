/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The pinned maps as the unprivileged analyzer opens them. */
#ifndef EBPFMON_MAPS_H
#define EBPFMON_MAPS_H

#include <stdbool.h>

struct maps {
	int bans, ban_nets, allow_nets, url_rules, settings, events; /* read-write */
	int ip_stats, conn_count, counters, proc_io;		      /* read-only */
};

/*
 * Open every map pinned under pin_root/maps, waiting up to wait_s seconds for the loader to
 * pin them (a log line says what it waits for). Read-only maps are opened with BPF_F_RDONLY,
 * so that group read permission on their pins is enough. 0 or -errno (logged, naming the map).
 */
int maps_open(struct maps *m, const char *pin_root, unsigned int wait_s);
void maps_close(struct maps *m);

struct ebpfmon_ban;
/* Now on the clock of ban deadlines (CLOCK_BOOTTIME), in ns. */
unsigned long long maps_boot_ns(void);
/* Whether a ban still drops at boot-time now: permanent, or its deadline ahead. */
bool maps_ban_in_force(const struct ebpfmon_ban *ban, unsigned long long now);

#endif
