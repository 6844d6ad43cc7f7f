/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Hand-built Ethernet frames for BPF_PROG_TEST_RUN: one put_* function per header, each
 * appending its header to the frame in wire order, and frame_finish() to fill in the
 * lengths and the IPv4 header checksum. The caller chains the layers itself (the EtherType
 * or next-header argument names what comes next), so that a test reads like the packet:
 *
 *	frame_init(&f);
 *	put_eth(&f, ETH_P_8021Q);
 *	put_vlan(&f, 100, ETH_P_IP);
 *	put_ipv4(&f, "192.0.2.1", "192.0.2.2", IPPROTO_TCP, 0, 0);
 *	put_tcp(&f, 40000, 80, TCP_SYN);
 *	frame_finish(&f);
 *
 * Malformed packets are made by building a valid one and patching bytes afterwards.
 */
#ifndef EBPFMON_TEST_PKT_H
#define EBPFMON_TEST_PKT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebpfmon_abi.h"

#define FRAME_MAX 2048

#define PKT_ETH_P_IP	 0x0800
#define PKT_ETH_P_ARP	 0x0806
#define PKT_ETH_P_IPV6	 0x86DD
#define PKT_ETH_P_8021Q	 0x8100
#define PKT_ETH_P_8021AD 0x88A8
#define PKT_ETH_P_LLDP	 0x88CC

#define PKT_NEXTHDR_HOP	     0
#define PKT_NEXTHDR_ROUTING  43
#define PKT_NEXTHDR_FRAGMENT 44
#define PKT_NEXTHDR_AUTH     51
#define PKT_NEXTHDR_NONE     59
#define PKT_NEXTHDR_DEST     60

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

#define IPV4_MF 0x2000

#define ETH_HLEN_  14
#define VLAN_HLEN_ 4
#define IPV4_HLEN_ 20
#define IPV6_HLEN_ 40
#define TCP_HLEN_  20
#define UDP_HLEN_  8
#define ICMP_HLEN_ 8

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
	size_t l3_off;	/* first byte of the IP header */
	int l3;		/* 4, 6, or 0 when there is no IP header */
	size_t l4_off;	/* first byte of the UDP header, for its length */
	size_t tcp_off; /* first byte of the TCP header */
	bool udp;
};

static inline void frame_init(struct frame *f)
{
	memset(f, 0, sizeof(*f));
}

/* Append n zeroed bytes and return them. A frame that does not fit is a test bug. */
static inline uint8_t *frame_put(struct frame *f, size_t n)
{
	uint8_t *p;

	if (f->len + n > sizeof(f->b)) {
		fprintf(stderr, "pkt.h: frame of %zu bytes exceeds FRAME_MAX\n", f->len + n);
		abort();
	}
	p = f->b + f->len;
	memset(p, 0, n);
	f->len += n;
	return p;
}

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline uint16_t pkt_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Text address -> 16 bytes in the ABI form (IPv4 as ::ffff:a.b.c.d). Aborts on a typo. */
static inline struct ebpfmon_addr pkt_addr(const char *s)
{
	struct ebpfmon_addr a = {{0}};
	struct in_addr v4;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		a.a[10] = 0xff;
		a.a[11] = 0xff;
		memcpy(&a.a[12], &v4, 4);
		return a;
	}
	if (inet_pton(AF_INET6, s, a.a) == 1)
		return a;
	fprintf(stderr, "pkt.h: bad address '%s'\n", s);
	abort();
}

/* An LPM key for a network given as text address and the prefix length of that family. */
static inline struct ebpfmon_lpm_key pkt_lpm_key(const char *s, unsigned plen)
{
	struct ebpfmon_lpm_key k = {0};
	struct ebpfmon_addr a = pkt_addr(s);
	bool v4 = strchr(s, ':') == NULL;

	k.prefixlen = v4 ? 96 + plen : plen;
	memcpy(k.a, a.a, sizeof(k.a));
	return k;
}

static inline void put_eth(struct frame *f, uint16_t ethertype)
{
	uint8_t *p = frame_put(f, ETH_HLEN_);
	static const uint8_t dst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
	static const uint8_t src[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	pkt_put16(p + 12, ethertype);
}

/* An 802.1Q/802.1ad tag body (TCI, then the EtherType of what follows). */
static inline void put_vlan(struct frame *f, uint16_t vid, uint16_t inner_type)
{
	uint8_t *p = frame_put(f, VLAN_HLEN_);

	pkt_put16(p, vid & 0x0fff);
	pkt_put16(p + 2, inner_type);
}

/*
 * IPv4 with opt_words 32-bit words of options (ihl = 5 + opt_words, NOPs then an EOL) and
 * the flags/fragment-offset field frag (host order: IPV4_MF | offset in 8-byte units).
 */
static inline void put_ipv4(struct frame *f, const char *src, const char *dst, uint8_t proto,
			    unsigned opt_words, uint16_t frag)
{
	size_t hlen = IPV4_HLEN_ + 4 * opt_words;
	uint8_t *p;

	if (opt_words > 10) {
		fprintf(stderr, "pkt.h: %u option words, at most 10\n", opt_words);
		abort();
	}
	f->l3_off = f->len;
	f->l3 = 4;
	p = frame_put(f, hlen);
	p[0] = 0x40 | (uint8_t)(hlen / 4);
	pkt_put16(p + 4, 0x1234); /* id */
	pkt_put16(p + 6, frag);
	p[8] = 64;
	p[9] = proto;
	if (inet_pton(AF_INET, src, p + 12) != 1 || inet_pton(AF_INET, dst, p + 16) != 1) {
		fprintf(stderr, "pkt.h: bad IPv4 address '%s' or '%s'\n", src, dst);
		abort();
	}
	if (opt_words) {
		memset(p + IPV4_HLEN_, 0x01, hlen - IPV4_HLEN_); /* NOP */
		p[hlen - 1] = 0x00;				 /* EOL */
	}
}

static inline void put_ipv6(struct frame *f, const char *src, const char *dst, uint8_t nexthdr)
{
	uint8_t *p;

	f->l3_off = f->len;
	f->l3 = 6;
	p = frame_put(f, IPV6_HLEN_);
	p[0] = 0x60;
	p[6] = nexthdr;
	p[7] = 64;
	if (inet_pton(AF_INET6, src, p + 8) != 1 || inet_pton(AF_INET6, dst, p + 24) != 1) {
		fprintf(stderr, "pkt.h: bad IPv6 address '%s' or '%s'\n", src, dst);
		abort();
	}
}

/*
 * A hop-by-hop or destination-options header ((len8 + 1) * 8 bytes); which of the two it is
 * was said by the previous header's next-header field.
 */
static inline void put_ipv6_ext(struct frame *f, uint8_t next, uint8_t len8)
{
	size_t n = ((size_t)len8 + 1) * 8;
	uint8_t *p = frame_put(f, n);

	p[0] = next;
	p[1] = len8;
	p[2] = 1; /* PadN over the rest of the header */
	p[3] = (uint8_t)(n - 4);
}

/* A routing header ((len8 + 1) * 8 bytes): segment routing, no segments left. */
static inline void put_ipv6_routing(struct frame *f, uint8_t next, uint8_t len8)
{
	uint8_t *p = frame_put(f, ((size_t)len8 + 1) * 8);

	p[0] = next;
	p[1] = len8;
	p[2] = 4; /* routing type: SRH */
	p[3] = 0; /* segments left */
}

/* An authentication header: (len4 + 2) * 4 bytes. */
static inline void put_ipv6_auth(struct frame *f, uint8_t next, uint8_t len4)
{
	uint8_t *p = frame_put(f, ((size_t)len4 + 2) * 4);

	p[0] = next;
	p[1] = len4;
	p[7] = 1; /* SPI */
}

/* A fragment header; offset8 in 8-byte units. */
static inline void put_ipv6_frag(struct frame *f, uint8_t next, uint16_t offset8, bool more)
{
	uint8_t *p = frame_put(f, 8);

	p[0] = next;
	pkt_put16(p + 2, (uint16_t)(offset8 << 3 | (more ? 1 : 0)));
	p[7] = 0x42; /* identification */
}

static inline void put_tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags)
{
	uint8_t *p;

	f->tcp_off = f->len;
	p = frame_put(f, TCP_HLEN_);

	pkt_put16(p, sport);
	pkt_put16(p + 2, dport);
	p[7] = 1;	/* seq */
	p[12] = 5 << 4; /* doff */
	p[13] = flags;
	pkt_put16(p + 14, 65535);
}

/* The TCP sequence number of a frame that put_tcp() wrote (it writes 1). */
static inline void frame_set_tcp_seq(struct frame *f, uint32_t seq)
{
	pkt_put16(f->b + f->tcp_off + 4, (uint16_t)(seq >> 16));
	pkt_put16(f->b + f->tcp_off + 6, (uint16_t)seq);
}

static inline void put_udp(struct frame *f, uint16_t sport, uint16_t dport)
{
	uint8_t *p;

	f->l4_off = f->len;
	f->udp = true;
	p = frame_put(f, UDP_HLEN_);
	pkt_put16(p, sport);
	pkt_put16(p + 2, dport);
}

/* ICMP or ICMPv6 (type 8 / 128: echo request). */
static inline void put_icmp(struct frame *f, uint8_t type)
{
	uint8_t *p = frame_put(f, ICMP_HLEN_);

	p[0] = type;
	pkt_put16(p + 4, 0x77); /* identifier */
	pkt_put16(p + 6, 1);	/* sequence */
}

static inline void put_bytes(struct frame *f, const void *data, size_t n)
{
	memcpy(frame_put(f, n), data, n);
}

static inline void put_str(struct frame *f, const char *s)
{
	put_bytes(f, s, strlen(s));
}

static inline uint16_t pkt_csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += pkt_get16(p + i);
	if (n & 1)
		sum += p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Fill in the IP total/payload length, the UDP length and the IPv4 header checksum. */
static inline void frame_finish(struct frame *f)
{
	uint8_t *ip = f->b + f->l3_off;

	if (f->l3 == 4) {
		size_t hlen = (size_t)(ip[0] & 0x0f) * 4;

		pkt_put16(ip + 2, (uint16_t)(f->len - f->l3_off));
		pkt_put16(ip + 10, 0);
		pkt_put16(ip + 10, pkt_csum(ip, hlen));
	} else if (f->l3 == 6) {
		pkt_put16(ip + 4, (uint16_t)(f->len - f->l3_off - IPV6_HLEN_));
	}
	if (f->udp)
		pkt_put16(f->b + f->l4_off + 4, (uint16_t)(f->len - f->l4_off));
}

#endif /* EBPFMON_TEST_PKT_H */
