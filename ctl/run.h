/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A parsed ebpfmonctl command carried out: the request, the call, the output, the exit status. */
#ifndef EBPFMON_CTL_RUN_H
#define EBPFMON_CTL_RUN_H

#include <stdio.h>

#include "args.h"
#include "ebpfmon.pb-c.h"

/*
 * Carry out a: help and --version without a call, every other command with one call to the
 * API. Results go to out, errors (one line, and a hint where there is one) to err.
 * Returns the exit status (enum ctl_exit).
 */
int ctl_run(const struct ctl_args *a, FILE *out, FILE *err);

/*
 * top (top_run.c): the live view when out is a terminal and no --once or --iterations was
 * given, else plain-text frames. The first refresh fails as any call does (exit 1, 2 or 3);
 * later ones, in the live view, are shown and retried. Returns the exit status.
 */
int ctl_top_run(const struct ctl_args *a, FILE *out, FILE *err);

/* The analyzer said no: its status name and message on err, and a hint where there is one. */
void ctl_print_refused(FILE *err, const Ebpfmon__V1__Response *resp);

#endif
