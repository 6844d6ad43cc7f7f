/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef EBPFMON_MONOCLOCK_H
#define EBPFMON_MONOCLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in ns: the clock of deadlines and durations within one process. */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
