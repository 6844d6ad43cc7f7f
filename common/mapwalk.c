// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "mapwalk.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WALK_CHUNK 256
#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's answer for a map type without batch operations */
#endif

/* Key by key, for maps without batch operations. */
static long walk_keys(int fd, size_t key_size, size_t value_size, maps_walk_cb cb, void *ctx)
{
	unsigned char *buf = malloc(2 * key_size + value_size), *key, *next, *val;
	bool first = true;
	long n = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	key = buf;
	next = buf + key_size;
	val = buf + 2 * key_size;
	while (bpf_map_get_next_key(fd, first ? NULL : key, next) == 0) {
		first = false;
		memcpy(key, next, key_size);
		if (value_size && bpf_map_lookup_elem(fd, key, val))
			continue; /* deleted meanwhile */
		ret = cb(key, value_size ? val : NULL, ctx);
		if (ret) {
			free(buf);
			return ret;
		}
		n++;
	}
	if (errno != ENOENT)
		n = -errno;
	free(buf);
	return n;
}

long maps_walk(int fd, size_t key_size, size_t value_size, maps_walk_cb cb, void *ctx)
{
	size_t vsz = value_size ? value_size : 8; /* batch lookup always copies values */
	unsigned char *keys, *vals, *in, *out;
	bool started = false, done = false;
	long n = 0, ret;
	__u32 count;

	if (!key_size || key_size > 4096 || value_size > 65536)
		return -EINVAL;
	keys = malloc(WALK_CHUNK * key_size + 2 * key_size);
	vals = malloc(WALK_CHUNK * vsz);
	if (!keys || !vals) {
		ret = -ENOMEM;
		goto out;
	}
	in = keys + WALK_CHUNK * key_size;
	out = in + key_size;
	while (!done) {
		count = WALK_CHUNK;
		if (bpf_map_lookup_batch(fd, started ? in : NULL, out, keys, vals, &count, NULL)) {
			if (errno == ENOENT) {
				done = true; /* the last entries, if any, are in keys/vals */
			} else if (!started && (errno == EINVAL || errno == ENOTSUPP ||
						errno == EOPNOTSUPP || errno == ENOSPC)) {
				/* no batch for this map type, or a bucket larger than a chunk */
				ret = walk_keys(fd, key_size, value_size, cb, ctx);
				goto out;
			} else {
				ret = -errno;
				goto out;
			}
		}
		started = true;
		for (__u32 i = 0; i < count; i++) {
			ret = cb(keys + i * key_size, value_size ? vals + i * vsz : NULL, ctx);
			if (ret)
				goto out;
			n++;
		}
		memcpy(in, out, key_size);
	}
	ret = n;
out:
	free(keys);
	free(vals);
	return ret;
}
