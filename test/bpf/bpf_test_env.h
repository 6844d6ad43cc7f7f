/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Skip-or-fail policy for tests that need root and BPF.
 *
 * Without the privilege a test cannot run, so it exits 77, which ctest reports as skipped
 * (SKIP_RETURN_CODE 77). Where the environment promises BPF (EBPFMON_REQUIRE_BPF=1, set by
 * CI), the same condition is a failure: it exits 1 with the same message, so that a runner
 * that lost its privilege cannot turn the whole BPF suite green by skipping it.
 */
#ifndef EBPFMON_BPF_TEST_ENV_H
#define EBPFMON_BPF_TEST_ENV_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BPF_TEST_EXIT_SKIP   77
#define BPF_TEST_REQUIRE_ENV "EBPFMON_REQUIRE_BPF"

/* True when EBPFMON_REQUIRE_BPF=1: a missing privilege is then a failure, not a skip. */
static inline bool bpf_test_required(void)
{
	const char *v = getenv(BPF_TEST_REQUIRE_ENV);

	return v && strcmp(v, "1") == 0;
}

/* Exit 77 (skipped) with why, or 1 (failed) when EBPFMON_REQUIRE_BPF=1. Never returns. */
static inline void __attribute__((noreturn)) bpf_test_skip(const char *prog, const char *why)
{
	if (bpf_test_required()) {
		fprintf(stderr, "%s: FAIL: %s (and %s=1 says BPF must be available)\n", prog, why,
			BPF_TEST_REQUIRE_ENV);
		exit(EXIT_FAILURE);
	}
	fprintf(stderr, "%s: SKIP: %s (set %s=1 to make this a failure)\n", prog, why,
		BPF_TEST_REQUIRE_ENV);
	exit(BPF_TEST_EXIT_SKIP);
}

/* Skip (or fail, see above) unless running as root. */
static inline void bpf_test_require_root_or_skip(const char *prog)
{
	if (geteuid() != 0)
		bpf_test_skip(prog, "needs root (BPF_PROG_TEST_RUN and map creation)");
}

/* A load error that means "not allowed", as opposed to a broken object or verifier reject. */
static inline bool bpf_test_err_is_privilege(int err)
{
	if (err < 0)
		err = -err;
	return err == EPERM || err == EACCES;
}

/*
 * After a failed load: skip (or fail) when the cause is a missing privilege; otherwise
 * return, and the caller fails the test, because a BPF object that does not load is a bug.
 */
static inline void bpf_test_skip_if_privilege(const char *prog, const char *what, int err)
{
	char why[256];

	if (!bpf_test_err_is_privilege(err))
		return;
	snprintf(why, sizeof(why), "cannot load %s: %s", what, strerror(err < 0 ? -err : err));
	bpf_test_skip(prog, why);
}

#endif /* EBPFMON_BPF_TEST_ENV_H */
