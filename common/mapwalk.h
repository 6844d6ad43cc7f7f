/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* One walk over the entries of a BPF map, for every user-space reader of the maps. */
#ifndef EBPFMON_MAPWALK_H
#define EBPFMON_MAPWALK_H

#include <stddef.h>

/*
 * Called once per entry with its key (key_size bytes) and value (value_size bytes; NULL
 * when the walk asked for keys only). The pointers are valid during the call only. Return 0
 * to go on; anything else stops the walk and is what maps_walk() returns. The callback must
 * not delete entries of the map it walks: collect the keys and delete after the walk.
 */
typedef int (*maps_walk_cb)(const void *key, const void *value, void *ctx);

/*
 * Pass every entry of map fd to cb: by BPF_MAP_LOOKUP_BATCH, 256 entries a system call, where
 * the map type has it (hash maps), else key by key (BPF_MAP_GET_NEXT_KEY + lookup: arrays of
 * maps, LPM tries). value_size is the whole value as the lookup returns it (per-CPU maps: the
 * value rounded up to 8 bytes times the possible CPUs), or 0 for keys only. key_size and
 * value_size at most 4096 and 65536 bytes. An entry deleted during the walk is skipped.
 * Returns the number of entries passed (>= 0), cb's nonzero value, or -errno.
 */
long maps_walk(int fd, size_t key_size, size_t value_size, maps_walk_cb cb, void *ctx);

#endif
