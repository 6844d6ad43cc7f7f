// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

#include "log.h"

int daemon_signalfd(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (fd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -errno;
	}
	return fd;
}
