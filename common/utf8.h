/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * UTF-8 as RFC 3629 defines it (section 4, the syntax of UTF-8 byte sequences): no overlong
 * forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF. What the API takes as
 * text (proto3 string fields must be UTF-8) and what ebpfmonctl's JSON output may hold.
 */
#ifndef EBPFMON_UTF8_H
#define EBPFMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4 bytes) of the well-formed UTF-8 sequence at s[0, avail), 0 when s does not
 * start with one (or avail is 0). */
size_t utf8_seq_len(const uint8_t *s, size_t avail);

/* Whether s[0, len) is well-formed UTF-8. *bad (when not NULL) gets the offset of the first
 * byte of the first bad sequence, or len. */
bool utf8_valid(const uint8_t *s, size_t len, size_t *bad);

#endif
