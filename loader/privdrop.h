/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Giving up root for good. */
#ifndef EBPFMON_PRIVDROP_H
#define EBPFMON_PRIVDROP_H

#include <sys/types.h>

/*
 * Switch to uid/gid with no supplementary groups, every capability set empty (effective,
 * permitted, inheritable, ambient and the bounding set) and no_new_privs, then check that
 * none of it can be undone. 0 or -errno; on failure the process must not go on.
 */
int privdrop(uid_t uid, gid_t gid);

#endif
