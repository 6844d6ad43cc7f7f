/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Packet parsing for the ingress hooks (XDP and tc): a header cursor and one function per
 * layer. Every function checks that the whole header lies inside the packet before it reads a
 * byte of it, and returns a negative PARSE_* value, never a guess, when it does not.
 *
 * The packet is either an XDP frame (struct xdp_md) or a socket buffer (struct __sk_buff):
 * struct pkt_ctx names which, as a constant of each program, so that the compiler keeps
 * only that program's helper calls (bpf_xdp_load_bytes or bpf_skb_load_bytes).
 */
#ifndef EBPFMON_PARSING_H
#define EBPFMON_PARSING_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ebpfmon_abi.h"

#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86DD
#define ETH_P_8021Q  0x8100
#define ETH_P_8021AD 0x88A8

#define VLAN_MAX_DEPTH 2
#define IPV6_EXT_MAX   16

#define IP_MF	  0x2000
#define IP_OFFSET 0x1fff

/* IPv6 next-header values (macros in the kernel, so not in vmlinux.h). */
#define NEXTHDR_HOP	 0
#define NEXTHDR_ROUTING	 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH	 51
#define NEXTHDR_NONE	 59
#define NEXTHDR_ICMP	 58
#define NEXTHDR_DEST	 60
#define NEXTHDR_MOBILITY 135

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP = -1,    /* a frame ebpfmon does not look into: passed */
	PARSE_TRUNCATED = -2, /* a header runs past the end of the packet */
	PARSE_MALFORMED = -3, /* a field that no valid packet has (ihl < 5, doff < 5...) */
};

/*
 * The packet of one program run. skb is a constant of the program (never read from memory
 * at run time): the accessors below then compile to one program type's accesses only.
 * data and data_end bound the linear part, what direct access may read (a socket buffer's
 * frags lie past it); the program reads them once, after anything that moves them.
 */
struct pkt_ctx {
	void *ctx; /* struct xdp_md * (skb false) or struct __sk_buff * (skb true) */
	void *data;
	void *data_end;
	bool skb;
};

/*
 * Bytes of the packet from its Ethernet header on, what pkt_load() can read: a socket
 * buffer's whole length (linear part and frags), an XDP frame's linear part (ebpfmon's XDP
 * program takes no multi-buffer frames: generic XDP linearises them).
 */
static __always_inline __u32 pkt_len(struct pkt_ctx pc)
{
	if (pc.skb)
		return ((struct __sk_buff *)pc.ctx)->len;
	return ((struct xdp_md *)pc.ctx)->data_end - ((struct xdp_md *)pc.ctx)->data;
}

/*
 * How many packets the wire carried for this one: after GRO (or from a local GSO sender) a
 * socket buffer holds skb->gso_segs segments. An XDP frame is one: XDP has no such field,
 * and generic XDP counts a GRO super-packet as one.
 */
static __always_inline __u32 pkt_segs(struct pkt_ctx pc)
{
	__u32 segs;

	if (!pc.skb)
		return 1;
	segs = ((struct __sk_buff *)pc.ctx)->gso_segs;
	return segs ? segs : 1;
}

/* Copy len bytes at offset off of the packet (linear part or frags); 0 or -errno. */
static __always_inline long pkt_load(struct pkt_ctx pc, __u32 off, void *to, __u32 len)
{
	if (pc.skb)
		return bpf_skb_load_bytes(pc.ctx, off, to, len);
	return bpf_xdp_load_bytes(pc.ctx, off, to, len);
}

/*
 * The linear part's bounds read afresh from the context, for what runs after the parsers
 * (the URL matcher's socket checks). pc.data and pc.data_end carry the range each parse path
 * proved, one per path, which keeps the verifier from merging the states of the paths behind
 * them (three times the states of xdp_ingress); fresh pointers have none.
 */
static __always_inline void *pkt_data_fresh(struct pkt_ctx pc)
{
	if (pc.skb)
		return (void *)(long)((struct __sk_buff *)pc.ctx)->data;
	return (void *)(long)((struct xdp_md *)pc.ctx)->data;
}

static __always_inline void *pkt_data_end_fresh(struct pkt_ctx pc)
{
	if (pc.skb)
		return (void *)(long)((struct __sk_buff *)pc.ctx)->data_end;
	return (void *)(long)((struct xdp_md *)pc.ctx)->data_end;
}

struct hdr_cursor {
	void *pos;
	void *end;
	struct pkt_ctx pc; /* the packet, for what is read through helpers (IPv6 extensions) */
};

/* What the parsers learn of a packet. Offsets are from the start of the frame. */
struct pkt_info {
	struct ebpfmon_addr src; /* the destination is read when needed: pkt_dst() */
	__u32 l3_off;		 /* first byte of the IP header */
	__u32 l4_off;		 /* first byte of the transport header */
	__u32 payload_off;	 /* first byte after the transport header (TCP/UDP only) */
	__u32 seq;		 /* TCP sequence number, host order */
	__u32 ack;		 /* TCP acknowledgment number, host order */
	__u16 sport;		 /* host order; 0 when not TCP/UDP */
	__u16 dport;		 /* host order; 0 when not TCP/UDP */
	__u8 l4proto;		 /* IPPROTO_*; 0 when the packet carries no transport header */
	__u8 tcp_flags;		 /* TCP flags byte (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10) */
	__u8 v6;		 /* 1 for IPv6 */
	/* the first fragment of a fragmented datagram: its transport header is here, the rest of
	 * its payload is not (the URL matcher cannot read a request split this way) */
	__u8 first_frag;
	/* IPv6 with more than IPV6_EXT_MAX extension headers: the transport is not known */
	__u8 l4_unseen;
	__u8 pad[3];
};

struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

static __always_inline void addr_set_v4(struct ebpfmon_addr *a, __be32 v4)
{
	__u32 *w = (__u32 *)a->a;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = v4;
}

/* Ethernet and up to VLAN_MAX_DEPTH 802.1Q/802.1ad tags; returns the EtherType in *proto. */
static __always_inline int parse_ethhdr(struct hdr_cursor *c, __u16 *proto)
{
	struct ethhdr *eth = c->pos;
	__be16 type;

	if ((void *)(eth + 1) > c->end)
		return PARSE_TRUNCATED;
	c->pos = eth + 1;
	type = eth->h_proto;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		struct vlan_tag *vt = c->pos;

		if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vt + 1) > c->end)
			return PARSE_TRUNCATED;
		c->pos = vt + 1;
		type = vt->encap_proto;
	}
	/* A third tag is more nesting than we follow: not looked into. */
	if (type == bpf_htons(ETH_P_8021Q) || type == bpf_htons(ETH_P_8021AD))
		return PARSE_NOT_IP;
	*proto = bpf_ntohs(type);
	return PARSE_OK;
}

/* IPv4 with options. A non-first fragment has no transport header: l4proto stays 0. */
static __always_inline int parse_ipv4(struct hdr_cursor *c, struct pkt_info *p)
{
	struct iphdr *iph = c->pos;
	__u32 hlen;

	if ((void *)(iph + 1) > c->end)
		return PARSE_TRUNCATED;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED;
	hlen = iph->ihl * 4;
	if (c->pos + hlen > c->end)
		return PARSE_TRUNCATED;
	addr_set_v4(&p->src, iph->saddr);
	c->pos += hlen;
	if (iph->frag_off & bpf_htons(IP_OFFSET))
		return PARSE_OK;
	p->first_frag = !!(iph->frag_off & bpf_htons(IP_MF));
	p->l4proto = iph->protocol;
	return PARSE_OK;
}

static __always_inline bool ipv6_is_ext(__u8 next)
{
	return next == NEXTHDR_HOP || next == NEXTHDR_ROUTING || next == NEXTHDR_DEST ||
	       next == NEXTHDR_MOBILITY || next == NEXTHDR_AUTH || next == NEXTHDR_FRAGMENT;
}

enum ipv6_walk_end {
	IPV6_WALK_MORE = 0, /* still in the chain */
	IPV6_WALK_L4,	    /* next is the transport (or NEXTHDR_NONE) */
	IPV6_WALK_LATER,    /* a non-first fragment: no transport header here */
	IPV6_WALK_TRUNC,    /* a header runs past the end of the packet */
};

/* The bpf_loop context of an extension-header walk. */
struct ipv6_walk {
	void *ctx; /* the packet: struct xdp_md * or struct __sk_buff *, per the callback */
	__u32 off; /* offset of the header of type next */
	__u8 next;
	__u8 end; /* enum ipv6_walk_end */
	__u8 first_frag;
	__u8 pad;
};

/* One extension header (each at least 8 bytes, RFC 8200 §4); returns bpf_loop's answer. */
static __always_inline long ipv6_walk_one(struct ipv6_walk *w, bool skb)
{
	struct pkt_ctx pc = {.ctx = w->ctx, .skb = skb}; /* pkt_load() only */
	__u8 h[8]; /* the smallest extension header whole: next, length, and the rest */

	if (!ipv6_is_ext(w->next)) {
		w->end = IPV6_WALK_L4;
		return 1;
	}
	if (pkt_load(pc, w->off, h, sizeof(h))) {
		w->end = IPV6_WALK_TRUNC;
		return 1;
	}
	if (w->next == NEXTHDR_FRAGMENT) {
		__u16 frag_off = (__u16)h[2] << 8 | h[3];

		/* Only the first fragment carries the transport header. */
		if (frag_off & 0xfff8) {
			w->end = IPV6_WALK_LATER;
			return 1;
		}
		/* M set: more fragments follow; clear: an atomic fragment (RFC 8021) */
		w->first_frag = frag_off & 1;
		w->off += 8;
	} else if (w->next == NEXTHDR_AUTH) {
		w->off += ((__u32)h[1] + 2) * 4;
	} else {
		w->off += ((__u32)h[1] + 1) * 8;
	}
	w->next = h[0];
	return 0;
}

/* bpf_loop callbacks, one per program type (a callback is checked for the helpers it calls). */
static long ipv6_walk_xdp_cb(__u32 i, void *vctx)
{
	return ipv6_walk_one(vctx, false);
}

static long ipv6_walk_skb_cb(__u32 i, void *vctx)
{
	return ipv6_walk_one(vctx, true);
}

/*
 * IPv6 and a chain of up to IPV6_EXT_MAX extension headers, walked in bpf_loop (an unrolled
 * walk costs the verifier exponentially in its length). A longer chain leaves the transport
 * unknown: p->l4_unseen.
 */
static __always_inline int parse_ipv6(struct hdr_cursor *c, void *data, struct pkt_info *p)
{
	struct ipv6hdr *ip6h = c->pos;
	struct ipv6_walk w = {};
	__u32 off;

	if ((void *)(ip6h + 1) > c->end)
		return PARSE_TRUNCATED;
	if (ip6h->version != 6)
		return PARSE_MALFORMED;
	__builtin_memcpy(p->src.a, &ip6h->saddr, sizeof(p->src.a));
	p->v6 = 1;
	c->pos = ip6h + 1;
	w.next = ip6h->nexthdr;
	if (!ipv6_is_ext(w.next)) {
		if (w.next != NEXTHDR_NONE)
			p->l4proto = w.next;
		return PARSE_OK;
	}

	w.ctx = c->pc.ctx;
	w.off = c->pos - data;
	if (c->pc.skb)
		bpf_loop(IPV6_EXT_MAX + 1, ipv6_walk_skb_cb, &w, 0);
	else
		bpf_loop(IPV6_EXT_MAX + 1, ipv6_walk_xdp_cb, &w, 0);
	p->first_frag = w.first_frag;
	switch (w.end) {
	case IPV6_WALK_TRUNC:
		return PARSE_TRUNCATED;
	case IPV6_WALK_LATER:
		return PARSE_OK;
	case IPV6_WALK_MORE:
		p->l4_unseen = 1;
		return PARSE_OK;
	}
	off = w.off;
	if (off > 0x3fff) {
		/* farther than the verifier lets a packet offset go: as good as unseen */
		p->l4_unseen = 1;
		return PARSE_OK;
	}
	barrier_var(off);
	c->pos = data + (off & 0x3fff);
	if (c->pos > c->end)
		return PARSE_TRUNCATED;
	if (w.next != NEXTHDR_NONE)
		p->l4proto = w.next;
	return PARSE_OK;
}

/*
 * The destination address of a packet parse_l2_l3() took (the URL matcher's flow key and
 * socket lookup need it; the per-packet path does not). Returns 0, or -1 when the header
 * is not in the frame.
 */
static __always_inline int pkt_dst(struct pkt_ctx pc, const struct pkt_info *p,
				   struct ebpfmon_addr *dst)
{
	__u32 off = p->l3_off & 0xff; /* after at most Ethernet and two VLAN tags */
	__be32 v4;

	if (p->v6)
		return pkt_load(pc, off + offsetof(struct ipv6hdr, daddr), dst->a, sizeof(dst->a))
			       ? -1
			       : 0;
	if (pkt_load(pc, off + offsetof(struct iphdr, daddr), &v4, sizeof(v4)))
		return -1;
	addr_set_v4(dst, v4);
	return 0;
}

/* Layers 2 and 3: on PARSE_OK, p->src and p->l4proto are set and c->pos is at layer 4. */
static __always_inline int parse_l2_l3(struct hdr_cursor *c, void *data, struct pkt_info *p)
{
	__u16 proto;
	int rc;

	rc = parse_ethhdr(c, &proto);
	if (rc)
		return rc;
	p->l3_off = c->pos - data;
	if (proto == ETH_P_IP)
		return parse_ipv4(c, p);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(c, data, p);
	return PARSE_NOT_IP;
}

/* Layer 4 for TCP and UDP (ports, flags, payload offset) and ICMP/ICMPv6 (length only). */
static __always_inline int parse_l4(struct hdr_cursor *c, void *data, struct pkt_info *p)
{
	p->l4_off = c->pos - data;

	if (p->l4proto == IPPROTO_TCP) {
		struct tcphdr *th = c->pos;
		__u32 hlen;

		if ((void *)(th + 1) > c->end)
			return PARSE_TRUNCATED;
		if (th->doff < 5)
			return PARSE_MALFORMED;
		hlen = th->doff * 4;
		if (c->pos + hlen > c->end)
			return PARSE_TRUNCATED;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->seq = bpf_ntohl(th->seq);
		p->ack = bpf_ntohl(th->ack_seq);
		p->tcp_flags = ((__u8 *)th)[13];
		c->pos += hlen;
		p->payload_off = c->pos - data;
	} else if (p->l4proto == IPPROTO_UDP) {
		struct udphdr *uh = c->pos;

		if ((void *)(uh + 1) > c->end)
			return PARSE_TRUNCATED;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		c->pos = uh + 1;
		p->payload_off = c->pos - data;
	} else if (p->l4proto == IPPROTO_ICMP || p->l4proto == NEXTHDR_ICMP) {
		/* type, code, checksum and the 4-byte rest of header */
		if (c->pos + 8 > c->end)
			return PARSE_TRUNCATED;
	}
	return PARSE_OK;
}

#endif
