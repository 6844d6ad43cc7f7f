/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Giving up root for good. */
#ifndef EBPFMON_PRIVDROP_H
#define EBPFMON_PRIVDROP_H

#include <stdint.h>
#include <sys/types.h>

/* A set of capabilities, bit N for capability N (CAP_BPF is 39: they all fit). */
#define PRIVDROP_CAP(cap) (UINT64_C(1) << (cap))

/*
 * " (needs CAP_X, which this process does not hold)" naming those of caps that are missing from
 * the effective set, when err is -EPERM or -EACCES (the verifier's refusal) and some are; ""
 * otherwise. For the message of a privileged step that failed: a unit whose
 * CapabilityBoundingSet= lacks one is told which. The text lives until the next call.
 */
const char *privdrop_cap_hint(int err, uint64_t caps);

/*
 * Switch to uid/gid with no supplementary groups, every capability set empty (effective,
 * permitted, inheritable, ambient and the bounding set) and no_new_privs, then check that
 * none of it can be undone. 0 or -errno; on failure the process must not go on.
 */
int privdrop(uid_t uid, gid_t gid);

#endif
