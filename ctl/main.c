// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* ebpfmonctl: the command line; the work is in run.c. */
#include <stdio.h>
#include <time.h>

#include "args.h"
#include "run.h"

int main(int argc, char **argv)
{
	struct ctl_args args;
	char err[512];

	if (ctl_args_parse(&args, argc, argv, time(NULL), err, sizeof(err))) {
		fprintf(stderr, "ebpfmonctl: %s\nTry 'ebpfmonctl --help'.\n", err);
		return CTL_EXIT_USAGE;
	}
	return ctl_run(&args, stdout, stderr);
}
