/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The pinned maps as the unprivileged analyzer opens them. */
#ifndef EBPFMON_MAPS_H
#define EBPFMON_MAPS_H

#include <stdbool.h>
#include <stddef.h>

struct maps {
	int bans, ban_nets, allow_nets, url_rules, settings, events; /* read-write */
	int ip_stats, conn_count, counters, proc_io;		     /* read-only */
	int lock;	      /* pin_root/analyzer, flock()ed by maps_lock(); -1 when not held */
	unsigned int ids[10]; /* kernel map id of each fd above, in their order (maps_open()) */
	/* the folder pin_root/maps when maps_open() had opened them; 0 0: not known */
	unsigned long long maps_dev, maps_ino;
};

/*
 * Open every map pinned under pin_root/maps, waiting up to wait_s seconds for the loader to
 * pin them (a log line says what it waits for). Read-only maps are opened with BPF_F_RDONLY,
 * so that group read permission on their pins is enough. A pin (or a folder above it) that
 * exists but that this user may not open fails at once with -EACCES or -EPERM, the message
 * naming the object, its owner, group and mode, and the user; only while the loader has not
 * yet handed its pins over (still owned by root:root) is that waited for. 0 or -errno
 * (logged, naming the map).
 */
int maps_open(struct maps *m, const char *pin_root, unsigned int wait_s);
/*
 * Make this process the only analyzer of pin_root: an exclusive flock() on the folder
 * pin_root/analyzer, held until maps_close(). The loader makes it, empty, mode 0700 and
 * owned by its user, which the analyzer runs as: readers of the pins (group ebpfmon) cannot
 * open it, so cannot take the lock and keep an analyzer from starting, as they could on the
 * group-readable maps/. 0; -EBUSY when another process holds it (logged with its pid, from
 * /proc/locks, and the path); other -errno (logged: -EACCES names the folder's owner and this
 * user).
 */
int maps_lock(struct maps *m, const char *pin_root);
/*
 * Whether the maps pinned under pin_root are still the ones m holds: every pin's map id and
 * the folder pin_root/maps that maps_open() opened them in. 0 when they are; 1 when one was replaced
 * (a loader ran --unload, or replaced an incompatible pin), what says which; -errno when a pin
 * or the folder cannot be checked now (-ENOENT: gone), what says which. Logs nothing.
 */
int maps_check(const struct maps *m, const char *pin_root, char *what, size_t len);
struct ebpfmon_prog_stats;
/*
 * The programs' run statistics the loader copies into pin_root/maps/prog_stats (opened
 * read-only for this call): up to n entries into out, those of programs not loaded (id 0)
 * left out. The count, or -errno when the map cannot be opened or read.
 */
int maps_prog_stats(const char *pin_root, struct ebpfmon_prog_stats *out, size_t n);
/* Close every map and release the lock. */
void maps_close(struct maps *m);

struct ebpfmon_counters;
/* counters[0] summed over the CPUs into *sum: 0 or -errno (*sum unchanged). */
int maps_counters_sum(const struct maps *m, struct ebpfmon_counters *sum);
/* Entries of a ban map (bans: key_size 16, ban_nets: 20) in force now, or -errno. */
long maps_bans_in_force(int fd, size_t key_size);

struct ebpfmon_ban;
/* Now on the clock of ban deadlines (CLOCK_BOOTTIME), in ns. */
unsigned long long maps_boot_ns(void);
/* Whether a ban still drops at boot-time now: permanent, or its deadline ahead. */
bool maps_ban_in_force(const struct ebpfmon_ban *ban, unsigned long long now);

#endif
