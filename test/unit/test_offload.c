// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The analyzer's offload worker: a job runs on it, its end is signalled once, and the worker
 * is scheduled so that handing it a job never preempts the loop (SCHED_BATCH, lower nice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>

#include "offload.h"

struct job {
	pthread_t thread; /* where it ran */
	int policy, nice; /* the worker's scheduling, seen from inside the job */
	int runs;
};

static void job_fn(void *arg)
{
	struct job *j = arg;

	j->thread = pthread_self();
	j->policy = sched_getscheduler(0);
	errno = 0;
	j->nice = getpriority(PRIO_PROCESS, 0); /* the calling thread's on Linux */
	j->runs++;
}

/* Wait up to 5 s for the worker's eventfd: true when it became readable. */
static bool wait_done(struct offload *o)
{
	struct pollfd p = {.fd = offload_fd(o), .events = POLLIN};

	return poll(&p, 1, 5000) == 1 && (p.revents & POLLIN);
}

static void job_runs_on_the_worker_once(void **state)
{
	struct offload *o = NULL;
	struct job j = {0};

	(void)state;
	assert_int_equal(offload_create(&o), 0);
	assert_false(offload_busy(o));
	assert_false(offload_collect(o)); /* nothing ran yet */
	assert_int_equal(offload_start(o, job_fn, &j), 0);
	assert_true(offload_busy(o));
	assert_int_equal(offload_start(o, job_fn, &j), -EBUSY); /* one job at a time */
	assert_true(wait_done(o));
	assert_true(offload_collect(o));
	assert_false(offload_busy(o));
	assert_false(offload_collect(o)); /* once per job */
	assert_int_equal(j.runs, 1);
	assert_false(pthread_equal(j.thread, pthread_self()));
	/* and the next job runs too */
	assert_int_equal(offload_start(o, job_fn, &j), 0);
	assert_true(wait_done(o));
	assert_true(offload_collect(o));
	assert_int_equal(j.runs, 2);
	offload_destroy(o);
}

static void worker_never_preempts_the_loop(void **state)
{
	struct offload *o = NULL;
	struct job j = {0};
	int nice;

	(void)state;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	assert_int_equal(offload_create(&o), 0);
	assert_int_equal(offload_start(o, job_fn, &j), 0);
	assert_true(wait_done(o));
	assert_true(offload_collect(o));
	offload_destroy(o);
	/* a batch task's wakeup does not preempt the thread that woke it */
	assert_int_equal(j.policy, SCHED_BATCH);
	assert_int_equal(j.nice, nice + OFFLOAD_NICE > 19 ? 19 : nice + OFFLOAD_NICE);
	/* and the caller keeps its own scheduling */
	assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
	assert_int_equal(getpriority(PRIO_PROCESS, 0), nice);
}

static void destroy_null_is_fine(void **state)
{
	(void)state;
	offload_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(job_runs_on_the_worker_once),
		cmocka_unit_test(worker_never_preempts_the_loop),
		cmocka_unit_test(destroy_null_is_fine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
