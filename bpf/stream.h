/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The stream guard: URL rules on the bytes the server reads.
 *
 * XDP sees packets, and a request can reach the server in ways a packet-by-packet matcher
 * cannot follow: its second half sent before its first, segments overlapping with different
 * bytes, a decoy segment that the kernel discards (a bad checksum), a partial line whose
 * http_flows entry was evicted. The kernel's TCP receive path has sorted all of that out by the
 * time data is queued on the socket, so the guard reads it there:
 *
 * stream_sockops   cgroup sock_ops (root cgroup v2): when a server-side connection to an HTTP
 *                  port of the monitored namespace is established, puts the socket into
 *                  http_socks; when it closes, forgets its partial line.
 * stream_verdict   sockmap SK_SKB verdict (Documentation/bpf/map_sockmap.rst) on http_socks: the
 *                  kernel hands it every in-order chunk of such a socket before the server can
 *                  read it. It runs the parser of http.h over the chunk (a line cut at the end
 *                  of a chunk resumes from http_streams), reports every hit as XDP does, and
 *                  drops the chunk (SK_DROP: the server never reads it) on a drop rule's hit.
 *
 * stream_adopt    iterator (iter/tcp), run once by the loader: the connections already open.
 *
 * Both layers report the same request with the same sequence number (the line's first byte),
 * so the analyzer counts it once. Included by ebpfmon.bpf.c after http.h.
 */
#ifndef EBPFMON_STREAM_H
#define EBPFMON_STREAM_H

#include "http.h"

/* Bytes of one chunk the verdict reads: a GRO packet is at most 64 KiB unless BIG TCP is on. */
#define STREAM_SCAN_MAX (512 * 1024)
#define STREAM_CHUNKS	(STREAM_SCAN_MAX / EBPFMON_URL_SCAN_CHUNK)
/* The verdict may run in process context (the socket backlog) and be interrupted by a softirq
 * that runs it for another socket: one scratch slot per nesting level. */
#define STREAM_DEPTH_MAX 2
#define LOOPBACK_IFINDEX 1

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/*
 * Watched sockets, keyed by socket cookie. Pinned, as http_streams is: across a restart of the
 * loader the sockets stay in it with the verdict they were linked with (a psock keeps its
 * programs), so their streams are read on without a gap; the new loader's verdict serves the
 * connections established after it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} http_socks SEC(".maps");

/* The parser's state of a socket whose last chunk ended inside a request line, a header block
 * or a body. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct http_canon);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} http_streams SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STREAM_DEPTH_MAX);
	__type(key, __u32);
	__type(value, struct http_scratch);
} stream_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} stream_depth SEC(".maps");

/*
 * A server-side TCP socket the guard watches: in the monitored namespace (mon_netns_ino), not
 * on loopback (XDP is not there either), to an HTTP port.
 */
static __always_inline bool stream_watched(struct bpf_sock_ops *skops,
					   const struct ebpfmon_settings *set)
{
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp;
	const struct sock *sk;

	if (!(set->flags & EBPFMON_F_URL_MATCH) || !is_http_port(set, skops->local_port) || !bsk)
		return false;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return false;
	sk = (const struct sock *)tp;
	if (mon_netns_ino && BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != mon_netns_ino)
		return false;
	return BPF_CORE_READ(sk, sk_rx_dst_ifindex) != LOOPBACK_IFINDEX;
}

SEC("sockops")
int stream_sockops(struct bpf_sock_ops *skops)
{
	struct ebpfmon_counters *cnt;
	struct ebpfmon_settings *set;
	__u32 zero = 0;
	__u64 cookie;

	if (skops->op == BPF_SOCK_OPS_STATE_CB) {
		if (skops->args[1] == BPF_TCP_CLOSE) {
			cookie = bpf_get_socket_cookie(skops);
			bpf_map_delete_elem(&http_streams, &cookie);
		}
		return 1;
	}
	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	cnt = get_counters();
	set = bpf_map_lookup_elem(&settings, &zero);
	if (!cnt || !set || !stream_watched(skops, set))
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	if (bpf_sock_hash_update(skops, &http_socks, &cookie, BPF_NOEXIST)) {
		cnt->stream_socks_full++; /* XDP reads this connection: it is in no sockmap */
		return 1;
	}
	cnt->stream_socks++;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}

/* Connections stream_adopt put under the guard, and those it could not (the last error). */
__u64 stream_adopted, stream_adopt_failed;
__s64 stream_adopt_err;

/*
 * Connections established before the guard was attached (a loader start or restart): the
 * loader runs this iterator once over the TCP sockets of its network namespace (the monitored
 * one) and puts those of an HTTP port into http_socks (a sockhash may be updated from an
 * iterator: Documentation/bpf/map_sockmap.rst). What they had received already and their
 * state inside a line are not known: they are read from their next chunk on, as a line start.
 * Their close is not signalled to stream_sockops, so a line, header block or body they leave
 * open keeps its http_streams entry.
 */
SEC("iter/tcp")
int stream_adopt(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct ebpfmon_settings *set;
	const struct sock *sk;
	struct tcp_sock *tp;
	__u32 zero = 0;
	__u64 cookie;
	long err;

	if (!skc || skc->skc_state != BPF_TCP_ESTABLISHED)
		return 0;
	set = bpf_map_lookup_elem(&settings, &zero);
	if (!set || !(set->flags & EBPFMON_F_URL_MATCH) || !is_http_port(set, skc->skc_num))
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (const struct sock *)tp;
	if (BPF_CORE_READ(sk, sk_rx_dst_ifindex) == LOOPBACK_IFINDEX)
		return 0;
	cookie = bpf_get_socket_cookie(tp);
	err = bpf_map_update_elem(&http_socks, &cookie, skc, BPF_NOEXIST);
	if (err == 0) {
		stream_adopted++;
	} else if (err != -17 /* EEXIST: taken in by an earlier walk */) {
		/* EBUSY: still in the sockhash of the loader before us, which is on its way out */
		stream_adopt_failed++;
		stream_adopt_err = err;
	}
	return 0;
}

/* Sequence number of the chunk's first byte: TCP's control block (TCP_SKB_CB(skb)->seq). */
static __always_inline __u32 stream_skb_seq(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 seq = 0;

	bpf_probe_read_kernel(&seq, sizeof(seq), &((struct tcp_skb_cb *)kskb->cb)->seq);
	return seq;
}

/* The bpf_loop context of one chunk's scan. */
struct stream_scan_ctx {
	struct http_scan_ctx h;
	struct __sk_buff *skb;
	__u32 seq;   /* sequence number of the chunk's first byte */
	__u32 total; /* its length */
};

/* bpf_loop callback: read piece i of the chunk (EBPFMON_URL_SCAN_CHUNK bytes) and parse it. */
static long stream_chunk_cb(__u32 i, void *vctx)
{
	struct stream_scan_ctx *x = vctx;
	struct http_scratch *s = x->h.s;
	__u32 off = i * EBPFMON_URL_SCAN_CHUNK, n;

	if (off >= x->total)
		return 1;
	n = x->total - off;
	if (n > EBPFMON_URL_SCAN_CHUNK)
		n = EBPFMON_URL_SCAN_CHUNK;
	if (s->c.body_left > n) {
		s->c.body_left -= n; /* the piece lies inside a Content-Length body: not read */
		return 0;
	}
	if (n < 1 || bpf_skb_load_bytes(x->skb, off, s->buf, n))
		return 1;
	s->m.seq = x->seq + off;
	x->h.len = n;
	bpf_loop(EBPFMON_URL_SCAN_CHUNK / 8, http_scan_cb, &x->h, 0);
	return 0;
}

/* The verdict of one chunk, read with scratch slot s. */
static __always_inline int stream_scan(struct __sk_buff *skb, struct http_scratch *s,
				       const struct ebpfmon_settings *set,
				       struct ebpfmon_counters *cnt)
{
	struct stream_scan_ctx x = {.h = {.s = s}};
	struct bpf_sock *bsk = skb->sk;
	bool dry = set->flags & EBPFMON_F_DRY_RUN;
	const struct sock *sk;
	struct http_canon *prev;
	struct tcp_sock *tp;
	__u32 seq, copied, len;
	int verdict = SK_PASS;
	__u64 cookie;

	if (!bsk)
		return SK_PASS;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return SK_PASS;
	sk = (const struct sock *)tp;
	cnt->stream_chunks++;

	/*
	 * A chunk that begins before copied_seq overlaps bytes the server was given already (a
	 * retransmission that re-segmented the data): TCP keeps the first copy (RFC 9293
	 * §3.10.7.4), and a socket read through recvmsg() skips the old bytes, but the sockmap
	 * path hands the whole chunk on. Trim them, so the server reads what it would have read
	 * without the guard, and the parser reads what the server reads.
	 */
	seq = stream_skb_seq(skb);
	copied = tp->copied_seq;
	if ((__s32)(copied - seq) > 0) {
		__u32 old = copied - seq;

		if (old >= skb->len) {
			cnt->stream_overlap++;
			return SK_DROP;
		}
		/* bpf_skb_adjust_room() takes at most 4095 bytes off an SK_SKB at a time */
		for (int k = 0; k < 32 && old; k++) {
			__u32 step = old > 4095 ? 4095 : old;

			if (bpf_skb_adjust_room(skb, -(__s32)step, BPF_ADJ_ROOM_NET, 0))
				break;
			old -= step;
			seq += step;
		}
		cnt->stream_overlap++;
		/* what could not be trimmed the server reads again, and so does the parser */
	}

	cookie = bpf_get_socket_cookie(skb);
	prev = bpf_map_lookup_elem(&http_streams, &cookie);
	if (prev && prev->blocked) {
		/* the server lost a chunk of this stream to a drop rule: nothing after it can be
		 * judged as the server would read it, and nothing after it reaches the server */
		cnt->stream_drop_url++;
		return SK_DROP;
	}
	s->m.lines = 0;
	s->m.nhits = 0;
	s->m.over = 0;
	s->m.over_drop = 0;
	s->m.nocase = !!(set->flags & EBPFMON_F_URL_NOCASE);
	s->m.framing = 1;
	if (prev) {
		__builtin_memcpy(&s->c, prev, sizeof(s->c));
		if (http_in_line(&s->c)) {
			s->c.split = 1;
			cnt->stream_split++;
		}
	} else {
		s->c.state = HS_LINE_START;
		s->c.hdr = 0;
		s->c.hname = HN_NONE;
		s->c.hval = 0;
		s->c.eol = 0;
		s->c.te = 0;
		s->c.blocked = 0;
		s->c.noframe = 0;
		s->c.ck = CK_NONE;
		s->c.clen = 0;
		s->c.body_left = 0;
	}
	len = skb->len;
	x.skb = skb;
	x.seq = seq;
	x.total = len;
	bpf_loop(STREAM_CHUNKS, stream_chunk_cb, &x, 0);
	if (len > STREAM_SCAN_MAX) {
		/* what lies past the bound was not read: a line open there is cut off */
		cnt->url_scan_cut++;
		s->c.state = HS_SKIP;
	}
	cnt->stream_lines += s->m.lines;
	cnt->url_hits_over += s->m.over;

	if (s->m.nhits || s->m.over_drop) {
		struct pkt_info p = {};
		struct http_emit_ctx e = {
			.p = &p,
			.s = s,
			.cnt = cnt,
			.nhits = s->m.nhits,
			.hits = &cnt->stream_url_hits,
			.flags = EBPFMON_URL_HIT_STREAM,
			.isn = http_conn_isn(tp),
		};
		bool may_drop;

		sock_remote_addr(sk, &p.src);
		p.sport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		p.dport = BPF_CORE_READ(sk, __sk_common.skc_num);
		may_drop = !is_allowed(&p.src);
		if (BPF_CORE_READ(sk, __sk_common.skc_state) == BPF_TCP_SYN_RECV) {
			/* TCP Fast Open data before the handshake completes: the source may be
			 * spoofed (a server may accept TFO without a cookie). Dropped when a drop
			 * rule says so, reported never (RFC 7413 §6). */
			cnt->url_unverified += e.nhits;
			e.drop |= http_hits_drop(s, e.nhits);
		} else {
			e.drop_rule = (dry ? 1 : 0) | (may_drop ? 0 : 2);
			e.now = bpf_ktime_get_boot_ns();
			bpf_loop(EBPFMON_URL_HITS_MAX, http_emit_cb, &e, 0);
		}
		e.drop |= s->m.over_drop && may_drop;
		if (e.drop && dry) {
			cnt->rx_would_drop++;
			e.drop = false;
		}
		if (e.drop) {
			cnt->stream_drop_url++;
			verdict = SK_DROP;
			s->c.blocked = 1;
		}
	}

	if (s->c.blocked || s->c.noframe || s->c.ck || http_in_line(&s->c) || s->c.hdr ||
	    s->c.body_left) {
		if (bpf_map_update_elem(&http_streams, &cookie, &s->c, BPF_ANY)) {
			cnt->stream_state_full++;
			/* A line, a header block or a body open that cannot be followed: the server
			 * gets none of this chunk, which leaves its stream as the parser's was
			 * before it (fail closed: 16384 connections mid-request at once) */
			if (verdict == SK_PASS) {
				if (!dry)
					verdict = SK_DROP;
				else
					cnt->rx_would_drop++;
			}
		}
	} else if (prev) {
		bpf_map_delete_elem(&http_streams, &cookie);
	}
	return verdict;
}

SEC("sk_skb")
int stream_verdict(struct __sk_buff *skb)
{
	struct ebpfmon_counters *cnt = get_counters();
	struct ebpfmon_settings *set;
	struct http_scratch *s;
	__u32 zero = 0, slot, *depth;
	int verdict;

	set = bpf_map_lookup_elem(&settings, &zero);
	depth = bpf_map_lookup_elem(&stream_depth, &zero);
	if (!cnt || !set || !depth || !(set->flags & EBPFMON_F_URL_MATCH))
		return SK_PASS;
	slot = *depth;
	s = slot < STREAM_DEPTH_MAX ? bpf_map_lookup_elem(&stream_scratch, &slot) : NULL;
	if (!s) {
		cnt->stream_nested++;
		return SK_PASS;
	}
	*depth = slot + 1;
	verdict = stream_scan(skb, s, set, cnt);
	*depth = slot;
	return verdict;
}

#endif
