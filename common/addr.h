/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Address helpers: parse and print IPv4/IPv6 addresses and CIDR networks in the ABI form. */
#ifndef EBPFMON_ADDR_H
#define EBPFMON_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpfmon_abi.h"

/* Big enough for any address printed by addr_format() or cidr_format(), with NUL. */
#define ADDR_STRLEN 64

/* A network: the address (host bits zero) and the prefix length in the 128-bit form. */
struct addr_cidr {
	struct ebpfmon_addr addr;
	uint32_t prefixlen; /* 0..128; an IPv4 /24 is 96 + 24 = 120 */
};

/* "192.0.2.1" or "2001:db8::1" -> 0, IPv4 stored IPv4-mapped; -EINVAL otherwise. */
int addr_parse(const char *s, struct ebpfmon_addr *out);
/* "a.b.c.d" for IPv4-mapped addresses, RFC 5952 text for the rest; returns buf. */
const char *addr_format(const struct ebpfmon_addr *a, char *buf, size_t len);
bool addr_is_v4(const struct ebpfmon_addr *a);
void addr_from_v4(uint32_t be_addr, struct ebpfmon_addr *out);

/*
 * "192.0.2.0/24", "2001:db8::/32" or a bare address (a host route) -> 0; -EINVAL for a bad
 * address or prefix. Host bits set beyond the prefix are an error (-EINVAL), so that a typo
 * such as 192.0.2.1/16 is not silently widened.
 */
int cidr_parse(const char *s, struct addr_cidr *out);
/*
 * Like cidr_parse(), but host bits beyond the prefix are cleared instead of refused: 0 when
 * there were none, 1 when some were cleared (so a caller can say "did you mean 192.0.2.0/24"),
 * -EINVAL for a bad address or prefix.
 */
int cidr_parse_loose(const char *s, struct addr_cidr *out);
/* "192.0.2.0/24" or "2001:db8::/32" (a host prefix is printed without "/N"); returns buf. */
const char *cidr_format(const struct addr_cidr *c, char *buf, size_t len);
bool cidr_contains(const struct addr_cidr *c, const struct ebpfmon_addr *a);
void cidr_to_lpm_key(const struct addr_cidr *c, struct ebpfmon_lpm_key *key);

#endif
