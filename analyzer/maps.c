// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "maps.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ebpfmon_abi.h"
#include "log.h"

struct map_spec {
	const char *name;
	size_t off;
	bool writable;
};

static const struct map_spec specs[] = {
	{ EBPFMON_MAP_BANS, offsetof(struct maps, bans), true },
	{ EBPFMON_MAP_BAN_NETS, offsetof(struct maps, ban_nets), true },
	{ EBPFMON_MAP_ALLOW_NETS, offsetof(struct maps, allow_nets), true },
	{ EBPFMON_MAP_URL_RULES, offsetof(struct maps, url_rules), true },
	{ EBPFMON_MAP_SETTINGS, offsetof(struct maps, settings), true },
	{ EBPFMON_MAP_EVENTS, offsetof(struct maps, events), true },
	{ EBPFMON_MAP_IP_STATS, offsetof(struct maps, ip_stats), false },
	{ EBPFMON_MAP_CONN_COUNT, offsetof(struct maps, conn_count), false },
	{ EBPFMON_MAP_COUNTERS, offsetof(struct maps, counters), false },
	{ EBPFMON_MAP_PROC_IO, offsetof(struct maps, proc_io), false },
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

static int *map_fd(struct maps *m, size_t i)
{
	return (int *)((char *)m + specs[i].off);
}

unsigned long long maps_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

bool maps_ban_in_force(const struct ebpfmon_ban *ban, unsigned long long now)
{
	return !ban->expires_ns || ban->expires_ns > now;
}

void maps_close(struct maps *m)
{
	for (size_t i = 0; i < N_SPECS; i++) {
		int *fd = map_fd(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

static int open_one(const char *path, bool writable)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = writable ? 0 : BPF_F_RDONLY);
	int fd = bpf_obj_get_opts(path, &opts);

	return fd < 0 ? -errno : fd;
}

int maps_open(struct maps *m, const char *pin_root, unsigned int wait_s)
{
	struct timespec start, now;
	char path[512];
	bool said = false;
	int fd;

	for (size_t i = 0; i < N_SPECS; i++)
		*map_fd(m, i) = -1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t i = 0; i < N_SPECS; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", pin_root, EBPFMON_PIN_MAPS,
			 specs[i].name);
		for (;;) {
			fd = open_one(path, specs[i].writable);
			/* EACCES: pinned, not yet handed to our group by the loader. */
			if (fd >= 0 || (fd != -ENOENT && fd != -EACCES))
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - start.tv_sec) * 1000000000ll + now.tv_nsec - start.tv_nsec >=
			    (long long)wait_s * 1000000000ll)
				break;
			if (!said) {
				log_info("waiting up to %us for ebpfmon-loader to pin %s", wait_s,
					 path);
				said = true;
			}
			usleep(100 * 1000);
		}
		if (fd < 0) {
			log_error("cannot open map %s (%s): %s%s", path,
				  specs[i].writable ? "read-write" : "read-only", strerror(-fd),
				  fd == -ENOENT ? "; is ebpfmon-loader running?"
				  : fd == -EACCES ? "; is this user in the pins' group?"
						  : "");
			maps_close(m);
			return fd;
		}
		*map_fd(m, i) = fd;
	}
	return 0;
}
