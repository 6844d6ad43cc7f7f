/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What protobuf-c does not check in a decoded message: that each `string` field is text.
 *
 * protobuf-c 1.4 copies a string field's bytes and appends a NUL, so a NUL inside the field
 * silently cuts it short ("198.51.100.7\0junk" reads as 198.51.100.7), and it does not
 * validate UTF-8, which proto3 requires of every string field (protobuf language guide,
 * "Scalar Value Types"; UTF-8 as RFC 3629 defines it) and which the JSON output of
 * ebpfmonctl and the journal need.
 */
#ifndef EBPFMON_API_WIRE_H
#define EBPFMON_API_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Walk the wire encoding buf[0, len) of a message of type desc (protobuf encoding guide:
 * tag varints, wire types 0, 1, 2, 5; groups are refused) and check every string field,
 * also inside nested messages (up to 32 levels): no NUL byte, valid UTF-8. Unknown fields
 * and other types are skipped. Returns 0 when every string is text; -EINVAL with a message
 * in err (NUL-terminated, at most errlen bytes) naming the field path, e.g. "ban_ip.reason
 * holds a NUL byte at byte 12" or "ban_ip.address is not valid UTF-8 (byte 3)"; -EBADMSG
 * (and a message) for an encoding it cannot walk (truncated, a group, nested too deep).
 */
int api_wire_check_strings(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
			   char *err, size_t errlen);

#endif
