// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * IPv4/IPv6 addresses and networks in the ABI form: 16 bytes in network order, IPv4 stored
 * IPv4-mapped (::ffff:a.b.c.d), prefix lengths counted over all 128 bits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

static const unsigned char addr_v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool addr_is_v4(const struct ebpfmon_addr *a)
{
	return !memcmp(a->a, addr_v4_mapped_prefix, sizeof(addr_v4_mapped_prefix));
}

void addr_from_v4(uint32_t be_addr, struct ebpfmon_addr *out)
{
	memcpy(out->a, addr_v4_mapped_prefix, sizeof(addr_v4_mapped_prefix));
	memcpy(out->a + 12, &be_addr, sizeof(be_addr));
}

int addr_parse(const char *s, struct ebpfmon_addr *out)
{
	struct ebpfmon_addr a;
	struct in_addr v4;

	if (!s || !out || strlen(s) >= INET6_ADDRSTRLEN)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &v4) == 1) {
		addr_from_v4(v4.s_addr, out);
		return 0;
	}
	if (inet_pton(AF_INET6, s, a.a) == 1) {
		*out = a;
		return 0;
	}
	return -EINVAL;
}

/* Copy text into buf (truncating, always terminated when len > 0) and return buf. */
static const char *addr_copy_out(const char *text, char *buf, size_t len)
{
	if (buf && len)
		snprintf(buf, len, "%s", text);
	return buf;
}

/* RFC 5952 text of a into tmp (INET6_ADDRSTRLEN bytes); dotted quad for IPv4-mapped. */
static void addr_text(const struct ebpfmon_addr *a, char *tmp)
{
	static const unsigned char zero12[12];

	if (addr_is_v4(a)) {
		inet_ntop(AF_INET, a->a + 12, tmp, INET6_ADDRSTRLEN);
		return;
	}
	/*
	 * glibc prints the deprecated IPv4-compatible form (::a.b.c.d) for ::/96 addresses with
	 * a non-zero seventh group; RFC 5952 wants plain hex groups there: ::102:304.
	 */
	if (!memcmp(a->a, zero12, sizeof(zero12)) && (a->a[12] || a->a[13])) {
		snprintf(tmp, INET6_ADDRSTRLEN, "::%x:%x", (unsigned int)(a->a[12] << 8 | a->a[13]),
			 (unsigned int)(a->a[14] << 8 | a->a[15]));
		return;
	}
	if (!inet_ntop(AF_INET6, a->a, tmp, INET6_ADDRSTRLEN))
		snprintf(tmp, INET6_ADDRSTRLEN, "?");
}

const char *addr_format(const struct ebpfmon_addr *a, char *buf, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];

	addr_text(a, tmp);
	return addr_copy_out(tmp, buf, len);
}

/* Clear the bits of a beyond prefixlen; return true if any was set. */
static bool addr_mask(struct ebpfmon_addr *a, uint32_t prefixlen)
{
	bool host_bits = false;
	unsigned int i;

	for (i = 0; i < sizeof(a->a); i++) {
		unsigned int keep = prefixlen >= (i + 1) * 8 ? 8
				    : prefixlen > i * 8	     ? prefixlen - i * 8
							     : 0;
		unsigned char mask = keep ? (unsigned char)(0xff << (8 - keep)) : 0;

		if (a->a[i] & ~mask)
			host_bits = true;
		a->a[i] &= mask;
	}
	return host_bits;
}

int cidr_parse_loose(const char *s, struct addr_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 5], *slash;
	struct addr_cidr c;
	unsigned int bits = 0, max;
	size_t len;
	const char *p;

	if (!s || !out)
		return -EINVAL;
	len = strlen(s);
	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len + 1);

	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (addr_parse(buf, &c.addr))
		return -EINVAL;
	max = addr_is_v4(&c.addr) && !strchr(buf, ':') ? 32 : 128;
	if (slash) {
		p = slash + 1;
		/* 1 to 3 decimal digits, nothing else: no sign, no space, no second '/' */
		/* and no leading zeros: "/08" is not octal, nor anything else */
		if (!*p || strlen(p) > 3 || (p[0] == '0' && p[1]))
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			bits = bits * 10 + (unsigned int)(*p - '0');
		}
		if (bits > max)
			return -EINVAL;
	} else {
		bits = max;
	}
	c.prefixlen = max == 32 ? 96 + bits : bits;
	*out = c;
	return addr_mask(&out->addr, out->prefixlen) ? 1 : 0;
}

int cidr_parse(const char *s, struct addr_cidr *out)
{
	struct addr_cidr c;
	int ret;

	ret = cidr_parse_loose(s, &c);
	if (ret < 0)
		return ret;
	if (ret > 0)
		return -EINVAL; /* host bits set beyond the prefix */
	*out = c;
	return 0;
}

const char *cidr_format(const struct addr_cidr *c, char *buf, size_t len)
{
	char tmp[INET6_ADDRSTRLEN], out[ADDR_STRLEN];
	uint32_t bits = c->prefixlen > 128 ? 128 : c->prefixlen;
	bool v4 = addr_is_v4(&c->addr) && bits >= 96;

	if (v4) {
		inet_ntop(AF_INET, c->addr.a + 12, tmp, sizeof(tmp));
	} else if (addr_is_v4(&c->addr)) {
		/* not from cidr_parse(): a mapped address under a prefix shorter than /96 */
		if (!inet_ntop(AF_INET6, c->addr.a, tmp, sizeof(tmp)))
			snprintf(tmp, sizeof(tmp), "?");
	} else {
		addr_text(&c->addr, tmp);
	}
	if (bits == 128)
		snprintf(out, sizeof(out), "%s", tmp);
	else
		snprintf(out, sizeof(out), "%s/%u", tmp, v4 ? bits - 96 : bits);
	return addr_copy_out(out, buf, len);
}

bool cidr_contains(const struct addr_cidr *c, const struct ebpfmon_addr *a)
{
	struct ebpfmon_addr net = *a;

	addr_mask(&net, c->prefixlen > 128 ? 128 : c->prefixlen);
	return !memcmp(net.a, c->addr.a, sizeof(net.a));
}

void cidr_to_lpm_key(const struct addr_cidr *c, struct ebpfmon_lpm_key *key)
{
	struct ebpfmon_addr net = c->addr;

	key->prefixlen = c->prefixlen > 128 ? 128 : c->prefixlen;
	addr_mask(&net, key->prefixlen);
	memcpy(key->a, net.a, sizeof(key->a));
}
