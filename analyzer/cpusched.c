// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "cpusched.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* struct sched_attr, SCHED_ATTR_SIZE_VER1 (include/uapi/linux/sched/types.h) */
struct sched_attr_v1 {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};

_Static_assert(sizeof(struct sched_attr_v1) == 56, "struct sched_attr, version 1");

/*
 * policy (SCHED_OTHER or SCHED_BATCH) with nice and slice (ns, 0: the kernel's default) for
 * thread tid (0: caller).
 */
static int set_fair(pid_t tid, int policy, int nice, uint64_t slice_ns)
{
	struct sched_attr_v1 attr = {
		.size = sizeof(attr),
		.sched_policy = (uint32_t)policy,
		.sched_nice = nice,
		.sched_runtime = slice_ns,
	};

	return syscall(SYS_sched_setattr, tid, &attr, 0) ? -errno : 0;
}

int cpusched_short_slices(void)
{
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0); /* this thread's */
	if (nice == -1 && errno)
		return -errno;
	return set_fair(0, SCHED_OTHER, nice, CPUSCHED_SHORT_SLICE_NS);
}

int cpusched_lower_thread(int nice_delta)
{
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (nice == -1 && errno)
		return -errno;
	nice += nice_delta;
	if (nice > 19)
		nice = 19;
	return set_fair(0, SCHED_BATCH, nice, 0);
}
