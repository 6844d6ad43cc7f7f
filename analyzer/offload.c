// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "offload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "cpusched.h"

struct offload {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	void (*fn)(void *arg); /* the job waiting for the worker, NULL when none */
	void *arg;
	bool stop;
	bool busy; /* loop side: started, not collected */
	int efd;   /* written by the worker when a job is over */
};

static void *worker(void *p)
{
	struct offload *o = p;
	int err = cpusched_lower_thread(OFFLOAD_NICE); /* the loop keeps its own priority */

	if (err)
		log_debug("offload: cannot lower the worker's priority: %s", strerror(-err));
	pthread_mutex_lock(&o->mu);
	for (;;) {
		void (*fn)(void *);
		void *arg;
		uint64_t one = 1;

		while (!o->fn && !o->stop)
			pthread_cond_wait(&o->cond, &o->mu);
		if (o->stop)
			break;
		fn = o->fn;
		arg = o->arg;
		o->fn = NULL;
		pthread_mutex_unlock(&o->mu);
		fn(arg);
		if (write(o->efd, &one, sizeof(one)) < 0)
			log_warn("offload: cannot signal a finished job: %s", strerror(errno));
		pthread_mutex_lock(&o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

int offload_create(struct offload **out)
{
	struct offload *o = calloc(1, sizeof(*o));
	sigset_t all, old;
	int err;

	if (!o)
		return -ENOMEM;
	o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->efd < 0) {
		err = -errno;
		free(o);
		log_error("offload: eventfd: %s", strerror(-err));
		return err;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cond, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&o->thread, NULL, worker, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		close(o->efd);
		free(o);
		log_error("offload: cannot start its thread: %s", strerror(-err));
		return err;
	}
	pthread_setname_np(o->thread, "ebpfmon-offload");
	*out = o;
	return 0;
}

void offload_destroy(struct offload *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->mu);
	pthread_join(o->thread, NULL);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->mu);
	close(o->efd);
	free(o);
}

int offload_fd(const struct offload *o)
{
	return o->efd;
}

int offload_start(struct offload *o, void (*fn)(void *arg), void *arg)
{
	if (o->busy)
		return -EBUSY;
	pthread_mutex_lock(&o->mu);
	o->fn = fn;
	o->arg = arg;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->mu);
	o->busy = true;
	return 0;
}

bool offload_collect(struct offload *o)
{
	uint64_t n;

	if (read(o->efd, &n, sizeof(n)) != sizeof(n))
		return false;
	o->busy = false;
	return true;
}

bool offload_busy(const struct offload *o)
{
	return o->busy;
}
