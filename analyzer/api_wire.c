// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A walk over a protobuf wire encoding that checks the string fields protobuf-c decoded
 * without looking at them (api_wire.h).
 */
#include "api_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

#define WIRE_DEPTH_MAX 32
#define WIRE_PATH_MAX  256

/* protobuf encoding guide, "Message Structure": the wire types */
enum wire_type {
	WT_VARINT = 0,
	WT_I64 = 1,
	WT_LEN = 2,
	WT_SGROUP = 3,
	WT_EGROUP = 4,
	WT_I32 = 5,
};

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned int shift;

	*v = 0;
	for (shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -EBADMSG;
}

static int walk(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc, char *path,
		size_t path_len, unsigned int depth, char *err, size_t errlen)
{
	const uint8_t *p = buf, *end = buf + len;

	if (depth > WIRE_DEPTH_MAX) {
		snprintf(err, errlen, "%.*smessages nested more than %d deep", (int)path_len, path,
			 WIRE_DEPTH_MAX);
		return -EBADMSG;
	}
	while (p < end) {
		const ProtobufCFieldDescriptor *fd;
		uint64_t key, n;
		size_t bad;

		if (read_varint(&p, end, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
			goto malformed;
		switch ((enum wire_type)(key & 7)) {
		case WT_VARINT:
			if (read_varint(&p, end, &n))
				goto malformed;
			continue;
		case WT_I64:
			n = 8;
			break;
		case WT_I32:
			n = 4;
			break;
		case WT_LEN:
			if (read_varint(&p, end, &n))
				goto malformed;
			break;
		default:
			goto malformed; /* groups: not in proto3 */
		}
		if (n > (uint64_t)(end - p))
			goto malformed;
		fd = (key & 7) == WT_LEN ? protobuf_c_message_descriptor_get_field(
						   desc, (unsigned int)(key >> 3))
					 : NULL;
		if (fd && fd->type == PROTOBUF_C_TYPE_STRING) {
			const uint8_t *nul = memchr(p, 0, n);

			if (nul) {
				snprintf(err, errlen, "%.*s%s holds a NUL byte at byte %zu",
					 (int)path_len, path, fd->name, (size_t)(nul - p));
				return -EINVAL;
			}
			if (!utf8_valid(p, n, &bad)) {
				snprintf(err, errlen, "%.*s%s is not valid UTF-8 (byte %zu)",
					 (int)path_len, path, fd->name, bad);
				return -EINVAL;
			}
		} else if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			size_t name_len = strlen(fd->name);
			int rc;

			if (path_len + name_len + 1 >= WIRE_PATH_MAX)
				goto malformed;
			memcpy(path + path_len, fd->name, name_len);
			path[path_len + name_len] = '.';
			rc = walk(p, n, fd->descriptor, path, path_len + name_len + 1, depth + 1,
				  err, errlen);
			if (rc)
				return rc;
		}
		p += n;
	}
	return 0;
malformed:
	snprintf(err, errlen, "%.*s: the encoding is truncated or not a protobuf message",
		 path_len ? (int)path_len - 1 : (int)strlen(desc->short_name),
		 path_len ? path : desc->short_name);
	return -EBADMSG;
}

int api_wire_check_strings(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
			   char *err, size_t errlen)
{
	char path[WIRE_PATH_MAX];

	if (errlen)
		err[0] = '\0';
	return walk(buf, len, desc, path, 0, 0, err, errlen);
}
