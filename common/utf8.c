// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "utf8.h"

size_t utf8_seq_len(const uint8_t *s, size_t avail)
{
	uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte (RFC 3629 section 4) */
	size_t n, i;

	if (!avail)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0; /* a continuation byte first, C0/C1 (overlong) or F5..FF */
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

bool utf8_valid(const uint8_t *s, size_t len, size_t *bad)
{
	size_t i = 0, n;

	while (i < len && (n = utf8_seq_len(s + i, len - i)))
		i += n;
	if (bad)
		*bad = i;
	return i == len;
}
