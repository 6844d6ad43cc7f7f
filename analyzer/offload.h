/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * One worker thread that runs the analyzer's long periodic reads (the walk of ip_stats, the
 * processes of /proc) off its event loop, one job at a time, so that the loop only hands a
 * job over and takes its result back: a ban never waits behind them, and when the host is
 * busy and the scheduler makes the worker wait, the loop does not wait with it.
 *
 * The worker runs at a lower priority than the loop (nice + OFFLOAD_NICE) and as SCHED_BATCH
 * (cpusched_lower_thread()): woken by offload_start(), it does not preempt the loop inside the
 * callback that started it (as a SCHED_OTHER worker did, for the rest of its slice, ~1 ms on
 * a busy host), but runs when a CPU is free or at the next tick. A job must touch
 * nothing the loop uses while it runs; the loop reads the result once offload_collect() says
 * the job is over. The worker blocks every signal (the loop reads them through signalfd).
 */
#ifndef EBPFMON_OFFLOAD_H
#define EBPFMON_OFFLOAD_H

#include <stdbool.h>

#define OFFLOAD_NICE 5 /* the worker's nice value above the loop's */

struct offload;

/* Start the worker. 0 and *out, or -errno (logged). */
int offload_create(struct offload **out);
/* Stop the worker after the job it runs, and free. NULL is fine. */
void offload_destroy(struct offload *o);
/* Readable (EPOLLIN) when a job is over: then call offload_collect(). */
int offload_fd(const struct offload *o);
/* Run fn(arg) on the worker: 0, or -EBUSY while the previous job is not collected. */
int offload_start(struct offload *o, void (*fn)(void *arg), void *arg);
/* True (once per job) when the job started last is over; its results are the caller's again. */
bool offload_collect(struct offload *o);
/* Whether a job was started and not yet collected. */
bool offload_busy(const struct offload *o);

#endif
