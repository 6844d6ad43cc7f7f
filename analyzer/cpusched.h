/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * How the analyzer's threads ask the scheduler for CPU time: the event loop, which acts on
 * kernel events, for short slices (it runs at once when an event wakes it on a busy host);
 * the worker of long periodic reads for a lower priority.
 */
#ifndef EBPFMON_CPUSCHED_H
#define EBPFMON_CPUSCHED_H

#define CPUSCHED_SHORT_SLICE_NS 100000u /* the slice the loop asks for: 0.1 ms */

/*
 * Ask for slices of CPUSCHED_SHORT_SLICE_NS for the calling thread (threads it creates after
 * inherit them). Linux 6.12 and later (EEVDF) take sched_attr.sched_runtime of a SCHED_OTHER
 * task as the slice it wants: a task that asks for less than the default 3 ms gets an earlier
 * virtual deadline, so a wakeup preempts what runs instead of waiting for its slice to end. It
 * asks for no more CPU time in all and needs no privilege. 0, or -errno when the kernel
 * refuses (older kernels may also accept and ignore it); the nice value is kept.
 */
int cpusched_short_slices(void);

/*
 * Lower the calling thread alone (not its process) by nice_delta, give it the default slice,
 * and make it SCHED_BATCH: its wakeups never preempt the thread that woke it (the scheduler
 * switches to a batch task at a tick or when the CPU is free, never on a wakeup), so handing it
 * work costs the loop no CPU time of its own. 0 or -errno.
 */
int cpusched_lower_thread(int nice_delta);

#endif
