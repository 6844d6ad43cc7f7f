// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The ebpfmon data plane.
 *
 * xdp_ingress      per source address: counts traffic, drops banned sources (bans, ban_nets,
 *                  unless allow_nets says otherwise), matches every HTTP request line's
 *                  canonical path to url_rules (http.h), drops what that matcher cannot see.
 * tc_ingress       the same logic (ingress()) as a tcx ingress program, for xdp_mode = tc:
 *                  after GRO, on the socket buffer, without generic XDP's copy.
 * egress_account   tcx egress on each monitored interface: tx packets/bytes per destination.
 * sock_state       raw tracepoint inet_sock_set_state: established server-side TCP
 *                  connections per remote address, in the loader's network namespace only,
 *                  and an event when one crosses the limit.
 * block_io         raw tracepoint block_bio_queue: disk bytes and requests per process.
 * stream_sockops,  the stream guard (stream.h): URL rules on the in-order bytes that server
 * stream_verdict   sockets of HTTP ports receive, before the server reads them.
 *
 * Nothing here blocks or prints; every drop and every error is counted in `counters`.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ebpfmon_abi.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET	    2
#define AF_INET6    10
#define REQ_OP_MASK 0xff

/*
 * A URL hit bans only when its segment belongs to an established connection of this host.
 * The loader never changes this; tests of the matcher alone (BPF_PROG_TEST_RUN has no
 * connection) clear it before load.
 */
const volatile __u32 url_verify = 1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ebpfmon_addr);
	__type(value, struct ebpfmon_ban);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ebpfmon_lpm_key);
	__type(value, struct ebpfmon_ban);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ban_nets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ebpfmon_lpm_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} allow_nets SEC(".maps");

/* Shared by the CPUs, updated without atomics: see struct ebpfmon_ip_stats. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* max_tracked_ips, set by the loader */
	__type(key, struct ebpfmon_addr);
	__type(value, struct ebpfmon_ip_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ebpfmon_addr);
	__type(value, struct ebpfmon_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_count SEC(".maps");

/* Established server-side sockets we counted, so that only those are uncounted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64); /* struct sock * */
	__type(value, struct ebpfmon_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ebpfmon_url_key);
	__type(value, struct ebpfmon_url_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} url_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ebpfmon_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ebpfmon_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* event_buffer_kb, set by the loader */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, struct ebpfmon_proc_io);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} proc_io SEC(".maps");

/* Written by the loader only (struct ebpfmon_prog_stats): the programs' run statistics. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EBPFMON_PROG_STATS_MAX);
	__type(key, __u32);
	__type(value, struct ebpfmon_prog_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} prog_stats SEC(".maps");

/*
 * The value of key in a hash map, created from init when it is not there (a concurrent
 * creation on another CPU is fine: its value is used). NULL when the map is full.
 */
static __always_inline void *map_lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);
	long err;

	if (v)
		return v;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST */)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

/* Never NULL for a one-entry array, but the verifier wants the check. */
static __always_inline struct ebpfmon_counters *get_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline void *event_reserve(struct ebpfmon_counters *cnt, __u32 type, __u32 len,
					   __u64 now)
{
	struct ebpfmon_event_hdr *h = bpf_ringbuf_reserve(&events, len, 0);

	if (!h) {
		cnt->ringbuf_drops++;
		return NULL;
	}
	h->type = type;
	h->len = len;
	h->ts_ns = now;
	cnt->events++;
	return h;
}

static __always_inline bool is_allowed(const struct ebpfmon_addr *src)
{
	struct ebpfmon_lpm_key key = {.prefixlen = 128};

	__builtin_memcpy(key.a, src->a, sizeof(key.a));
	return bpf_map_lookup_elem(&allow_nets, &key) != NULL;
}

/*
 * Whether allow_nets covers the source of a ban in force. A ban_nets entry may cover
 * allowlisted addresses and another not: looked up every time. An exact ban is about one
 * address: the answer "not covered" is noted in the ban (allow_gen) and holds until
 * allow_nets gains an entry (settings.allow_gen grows), so the LPM lookup is paid once per
 * ban, not per packet. The generation is read before the lookup: a note written while
 * allow_nets changes names the old generation and is not trusted.
 */
static __always_inline bool ban_allowed(struct ebpfmon_ban *ban, const struct ebpfmon_addr *src,
					const struct ebpfmon_settings *set, __u32 from_net)
{
	__u32 gen;

	if (from_net)
		return is_allowed(src);
	gen = *(volatile __u32 *)&set->allow_gen | EBPFMON_BAN_ALLOW_CHECKED;
	if (ban->allow_gen == gen)
		return false;
	if (is_allowed(src))
		return true;
	ban->allow_gen = gen;
	return false;
}

/*
 * CLOCK_MONOTONIC_COARSE, read once per tick: the coarse clock moves only at a tick, which
 * moves jiffies too, and bpf_jiffies64() is one load where bpf_ktime_get_coarse_ns() is a
 * helper call (3-5 ns a packet). The value of the current tick is kept beside the jiffies it
 * was read at; CPUs racing at a tick all store valid pairs, and a reader that sees a new
 * jiffies with the previous value is off by one tick at most, the clock's own precision.
 */
__u64 coarse_jiffies;
__u64 coarse_ns_cached;

static __always_inline __u64 coarse_ns(void)
{
	__u64 j = bpf_jiffies64();

	if (j != coarse_jiffies) {
		coarse_ns_cached = bpf_ktime_get_coarse_ns();
		coarse_jiffies = j;
	}
	return coarse_ns_cached;
}

/*
 * A coarse CLOCK_BOOTTIME for ban deadlines: bpf_ktime_get_boot_ns() costs a packet as much
 * as the rest of the drop path on some clock sources (30 ns under KVM), the coarse monotonic
 * clock a few ns. CLOCK_MONOTONIC_COARSE plus boot_off_ns is within a tick of CLOCK_BOOTTIME
 * (the coarse clock lags by up to a tick); the offset is taken again from a precise read at
 * least once a second of coarse time, so a suspend shifts it for at most that long. Plain
 * 64-bit stores: CPUs racing to refresh it all write valid values.
 */
#define BOOT_REFRESH_NS 1000000000ull
/* more than two ticks at HZ=100: a deadline closer than this is checked precisely */
#define BOOT_MARGIN_NS 25000000ull
__u64 boot_off_ns;
__u64 boot_off_until_ns;

/* CLOCK_BOOTTIME now, precisely; refreshes the coarse estimate's offset on the way. */
static __always_inline __u64 boot_ns_precise(void)
{
	__u64 boot = bpf_ktime_get_boot_ns(), coarse = coarse_ns();

	boot_off_ns = boot - coarse;
	boot_off_until_ns = coarse + BOOT_REFRESH_NS;
	return boot;
}

/*
 * A ban is in force while it is permanent or its deadline is still ahead. A deadline far
 * ahead of the coarse estimate needs no precise clock; one near it, or an estimate due for
 * refresh, reads the precise clock into *now (left 0 otherwise: CLOCK_BOOTTIME is then not
 * known yet).
 */
static __always_inline bool ban_active(const struct ebpfmon_ban *ban, __u64 *now)
{
	__u64 coarse;

	if (!ban->expires_ns)
		return true;
	if (!*now) {
		coarse = coarse_ns();
		if (coarse < boot_off_until_ns &&
		    coarse + boot_off_ns + BOOT_MARGIN_NS < ban->expires_ns)
			return true;
		*now = boot_ns_precise();
	}
	return *now < ban->expires_ns;
}

/*
 * Count a drop on the ban and report the first one, then one every drop_sample_mask + 1.
 * A network ban, which many sources share, counts with an atomic add; an exact ban, whose
 * packets come from one address, with a plain one (3 ns less on the drop path, a sixth of
 * it): exact while one CPU at a time drops for it, as ip_stats. Two CPUs that race on the
 * first drop may both report it; none misses it.
 */
static __always_inline void ban_drop(struct ebpfmon_ban *ban, const struct ebpfmon_addr *src,
				     const struct ebpfmon_settings *set,
				     struct ebpfmon_counters *cnt, __u32 from_net, __u64 now)
{
	struct ebpfmon_ev_ban_drop *ev;
	__u64 prev;

	if (from_net) {
		prev = __sync_fetch_and_add(&ban->drops, 1);
	} else {
		prev = ban->drops;
		ban->drops = prev + 1;
	}

	if (prev & set->drop_sample_mask)
		return;
	if (!now)
		now = bpf_ktime_get_boot_ns();
	ev = event_reserve(cnt, EBPFMON_EV_BAN_DROP, sizeof(*ev), now);
	if (!ev)
		return;
	ev->addr = *src;
	ev->drops = prev + 1;
	ev->from_net = from_net;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
}

/*
 * Drop for the reason counted in *why, or in dry run pass and count what would have been
 * dropped. Returns the XDP verdict.
 */
static __always_inline int drop_unless_dry(const struct ebpfmon_settings *set,
					   struct ebpfmon_counters *cnt, __u64 *why)
{
	if (set->flags & EBPFMON_F_DRY_RUN) {
		cnt->rx_would_drop++;
		return XDP_PASS;
	}
	(*why)++;
	return XDP_DROP;
}

/*
 * A ban in force on src: whether to drop. Not an allowlisted source (counted rx_allowed), and
 * not in dry run, where the packet passes and what the ban would have dropped is counted.
 */
static __always_inline bool ban_enforce(struct ebpfmon_ban *ban, const struct ebpfmon_addr *src,
					const struct ebpfmon_settings *set,
					struct ebpfmon_counters *cnt, __u32 from_net, __u64 now)
{
	if (ban_allowed(ban, src, set, from_net)) {
		cnt->rx_allowed++;
		return false;
	}
	if (set->flags & EBPFMON_F_DRY_RUN) {
		__sync_fetch_and_add(&ban->would_drops, 1);
		cnt->rx_would_drop++;
		return false;
	}
	ban_drop(ban, src, set, cnt, from_net, now);
	return true;
}

/*
 * Count a received packet on its source, whose ip_stats entry ban_check() found (st; NULL: not
 * tracked yet, created with this packet counted) and leave note in its ban_note (0: leave it).
 * segs: the wire packets it stands for (pkt_segs()), len its bytes. now:
 * CLOCK_MONOTONIC_COARSE. Plain adds (struct ebpfmon_ip_stats says why).
 */
static __always_inline void stats_rx(const struct pkt_info *p, __u64 len, __u32 segs,
				     struct ebpfmon_ip_stats *st, __u64 note, __u64 now)
{
	__u64 syn = p->l4proto == IPPROTO_TCP && (p->tcp_flags & 0x12) == 0x02;

	if (!st) {
		struct ebpfmon_ip_stats init = {
			.rx_packets = segs,
			.rx_bytes = len,
			.syns = syn,
			.first_seen_ns = now,
			.last_seen_ns = now,
			.ban_note = note,
		};

		if (bpf_map_update_elem(&ip_stats, &p->src, &init, BPF_NOEXIST) != -17 /* EEXIST */)
			return;
		/* another CPU created it first */
		st = bpf_map_lookup_elem(&ip_stats, &p->src);
		if (!st)
			return;
	}
	st->rx_packets += segs;
	st->rx_bytes += len;
	if (syn)
		st->syns++;
	st->last_seen_ns = now;
	if (note)
		st->ban_note = note;
}

/*
 * Whether the note on a tracked address still says that no ban is in force on it: made for
 * this address (key: ebpfmon_ban_note_key()) at the current settings.ban_gen (gen) and not
 * past its deadline (now: CLOCK_MONOTONIC_COARSE). A note of 0 never holds.
 */
static __always_inline bool ban_note_holds(__u64 note, __u32 gen, __u64 key, __u64 now)
{
	return !((note ^ gen ^ key) & EBPFMON_BAN_GEN_MASK) && now < (note & ~EBPFMON_BAN_GEN_MASK);
}

/* The note "no ban in force at generation gen" on the address of key, good for
 * EBPFMON_BAN_NOTE_NS at most. */
static __always_inline __u64 ban_note_make(__u32 gen, __u64 key, __u64 now)
{
	return ((now + EBPFMON_BAN_NOTE_NS) & ~EBPFMON_BAN_GEN_MASK) |
	       ((gen ^ key) & EBPFMON_BAN_GEN_MASK);
}

/*
 * Per CPU, what ban_check() learnt from the drops there: a hint, never a verdict (a wrong
 * hint costs a lookup). A banned source that keeps sending is one flow, which RSS keeps on one
 * CPU: its next packets there (src, the source of the last drop) look bans up first, one
 * lookup per drop as before ip_stats notes, not ip_stats first (two). Many banned sources in
 * turn, a flood from banned addresses, are not one flow: `streak` grows by 2 with a drop (up
 * to DROP_STREAK_MAX) and halves with a packet that passes, and while it is not 0 every
 * packet looks bans up first. A clean packet then pays a bans lookup more and a banned one an
 * ip_stats lookup less: the better trade while more than about a third of the packets are
 * dropped, which is when the streak stays above 0.
 *
 * A global array indexed by the CPU costs the packet a ns or two less than a per-CPU map
 * lookup (the verifier inlines bpf_get_smp_processor_id() on x86-64); one slot per cache
 * line, so that CPUs never write the same line. CPUs past DROP_MEMO_SLOTS share slots: a hint
 * wrong more often, never a wrong verdict.
 */
#define DROP_MEMO_SLOTS 128
#define DROP_STREAK_MAX 8

struct drop_memo_slot {
	struct ebpfmon_addr src; /* zero: none */
	__u32 streak;
} __attribute__((aligned(64)));

static struct drop_memo_slot drop_memo[DROP_MEMO_SLOTS];

static __always_inline struct drop_memo_slot *drop_memo_slot(void)
{
	return &drop_memo[bpf_get_smp_processor_id() & (DROP_MEMO_SLOTS - 1)];
}

/* IPv4-mapped addresses differ in their last 8 bytes: compared first. */
static __always_inline bool addr_eq(const struct ebpfmon_addr *a, const struct ebpfmon_addr *b)
{
	const __u64 *x = (const __u64 *)a->a, *y = (const __u64 *)b->a;

	return x[1] == y[1] && x[0] == y[0];
}

/*
 * The ban check of a packet from src: XDP_DROP when a ban in force (bans, then ban_nets while
 * EBPFMON_F_BAN_NETS is set) drops it, else XDP_PASS. A tracked address whose ip_stats note
 * holds (ban_note_holds()) is not looked up in bans or ban_nets: the clean path pays one hash
 * lookup, in ip_stats, which it needs anyway. Otherwise both are looked up, and when no ban
 * is in force *note is set to the note to leave on the address (0 otherwise: a ban that
 * passes the packet, allowlisted or dry run, is looked at on every packet, as its counters
 * say). While this CPU drops (struct drop_memo_slot), bans is looked up first, so that a
 * banned flood pays one lookup per packet, not two. *st: the ip_stats entry of src,
 * NULL when not tracked. *now: CLOCK_BOOTTIME when a ban's deadline needed it, else 0;
 * *coarse: CLOCK_MONOTONIC_COARSE, read unless the packet is dropped.
 *
 * settings.ban_gen is read before bans: a writer adds the ban and then grows ban_gen, so a
 * note made from a lookup that missed the new ban names the old generation and does not hold
 * once the new one is visible. Reads that race with that write, or a ban written without
 * growing ban_gen, are bounded by the note's deadline.
 */
static __always_inline int ban_check(const struct ebpfmon_addr *src,
				     const struct ebpfmon_settings *set,
				     struct ebpfmon_counters *cnt, struct ebpfmon_ip_stats **st,
				     __u64 *note, __u64 *now, __u64 *coarse)
{
	struct drop_memo_slot *slot;
	struct ebpfmon_addr *memo;
	struct ebpfmon_ban *ban;
	bool same, recent, clean = false;
	__u32 gen;

	*note = 0;
	*st = NULL;
	slot = drop_memo_slot();
	memo = &slot->src;
	/* bans first: a flood in progress here, or the source of the last drop */
	same = addr_eq(memo, src);
	recent = same || slot->streak;
	gen = *(volatile __u32 *)&set->ban_gen;
	if (!recent) {
		*coarse = coarse_ns();
		*st = bpf_map_lookup_elem(&ip_stats, src);
		if (*st && ban_note_holds((*st)->ban_note, gen,
					  ebpfmon_ban_note_key(src, set->note_seed), *coarse))
			return XDP_PASS;
	}

	ban = bpf_map_lookup_elem(&bans, src);
	if (ban && ban_active(ban, now)) {
		if (ban_enforce(ban, src, set, cnt, 0, *now)) {
			cnt->rx_drop_ban++;
			goto drop;
		}
		goto pass;
	}
	if (set->flags & EBPFMON_F_BAN_NETS) {
		struct ebpfmon_lpm_key key = {.prefixlen = 128};

		__builtin_memcpy(key.a, src->a, sizeof(key.a));
		ban = bpf_map_lookup_elem(&ban_nets, &key);
		if (ban && ban_active(ban, now)) {
			if (ban_enforce(ban, src, set, cnt, 1, *now)) {
				cnt->rx_drop_net++;
				goto drop;
			}
			goto pass;
		}
	}
	clean = true;
pass:
	if (recent) {
		/* the streak halves (0 stays 0 elsewhere); the slot read again, not kept from
		 * above: the verifier then merges more paths */
		drop_memo_slot()->streak >>= 1;
		/* not dropped: no longer the source to look up in bans first */
		__builtin_memset(memo, 0, sizeof(*memo));
		*coarse = coarse_ns();
		*st = bpf_map_lookup_elem(&ip_stats, src);
	}
	if (clean)
		*note = ban_note_make(gen, ebpfmon_ban_note_key(src, set->note_seed), *coarse);
	return XDP_PASS;
drop:
	if (!same)
		*memo = *src;
	if (slot->streak < DROP_STREAK_MAX)
		slot->streak += 2;
	return XDP_DROP;
}

/* Port 0 is no HTTP port: an unused slot (0) then never matches, without a test per slot. */
static __always_inline bool is_http_port(const struct ebpfmon_settings *set, __u16 port)
{
	if (!port)
		return false;
#pragma unroll
	for (int i = 0; i < EBPFMON_MAX_HTTP_PORTS; i++)
		if (set->http_ports[i] == port)
			return true;
	return false;
}

/*
 * Set by the loader once the stream guard (stream.h) watches the HTTP ports: the request
 * lines of this host's connections are then read there, as the server reads them, and XDP
 * leaves those it holds alone (http_verified(): the socket is in a sockmap), and reads every
 * other one as without the guard.
 */
__u32 stream_guard_on;

#include "http.h"

/*
 * The ingress logic of both hooks, run on every received packet of a monitored interface:
 * pc.skb (a constant of each program) says whether it is an XDP frame or a socket buffer.
 * Returns XDP_DROP or XDP_PASS; tc_ingress maps them to its own verdicts.
 */
static __always_inline int ingress(struct pkt_ctx pc)
{
	void *data = pc.data;
	void *data_end = pc.data_end;
	struct hdr_cursor c = {.pos = data, .end = data_end, .pc = pc};
	struct pkt_info p = {};
	struct ebpfmon_counters *cnt;
	struct ebpfmon_settings *set;
	struct ebpfmon_ip_stats *st;
	__u64 now = 0, coarse, note;
	__u32 zero = 0;
	int rc;

	cnt = get_counters();
	set = bpf_map_lookup_elem(&settings, &zero);
	if (!cnt || !set)
		return XDP_PASS;
	cnt->rx_seen++;

	rc = parse_l2_l3(&c, data, &p);
	if (rc == PARSE_NOT_IP) {
		cnt->rx_not_ip++;
		goto pass;
	}
	if (rc) {
		cnt->rx_parse_err++;
		goto pass;
	}

	/* The source is known: enforcement does not depend on anything past layer 3. */
	if (ban_check(&p.src, set, cnt, &st, &note, &now, &coarse) == XDP_DROP)
		return XDP_DROP;

	rc = parse_l4(&c, data, &p);
	stats_rx(&p, pkt_len(pc), pkt_segs(pc), st, note, coarse);
	if (p.first_frag || p.l4_unseen) {
		/* What the URL matcher cannot read: the first fragment of a TCP segment to an
		 * HTTP port (or one too short to say which port), or a transport it cannot find. */
		if ((set->flags & (EBPFMON_F_DROP_UNSEEN | EBPFMON_F_URL_MATCH)) ==
			    (EBPFMON_F_DROP_UNSEEN | EBPFMON_F_URL_MATCH) &&
		    (p.l4_unseen ||
		     (p.l4proto == IPPROTO_TCP && (rc || is_http_port(set, p.dport)))) &&
		    drop_unless_dry(set, cnt, &cnt->rx_drop_unseen) == XDP_DROP)
			return XDP_DROP;
	}
	if (rc) {
		cnt->rx_parse_err++;
		goto pass;
	}

	/* a first fragment (url_drop_unseen off) holds only the start of its segment */
	if (p.l4proto == IPPROTO_TCP && (set->flags & EBPFMON_F_URL_MATCH) && !p.first_frag &&
	    is_http_port(set, p.dport)) {
		/* URG: the receiver takes the urgent byte out of the stream the server reads, so
		 * the bytes here are not the request it gets. HTTP never sends urgent data. */
		if ((p.tcp_flags & 0x20) && drop_unless_dry(set, cnt, &cnt->url_urgent) == XDP_DROP)
			return XDP_DROP;
		if (p.payload_off < pkt_len(pc) && http_match(pc, &p, set, cnt, now) == XDP_DROP)
			return XDP_DROP;
	}
pass:
	cnt->rx_passed++;
	return XDP_PASS;
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	return ingress((struct pkt_ctx){.ctx = ctx,
					.data = (void *)(long)ctx->data,
					.data_end = (void *)(long)ctx->data_end,
					.skb = false});
}

#define TC_VERDICT_DROP 2  /* TC_ACT_SHOT */
#define TC_VERDICT_NEXT -1 /* TCX_NEXT: the next tcx program, else the stack */
/*
 * The parsers read headers directly, within the linear part of a socket buffer; what lies in
 * frags they see as a truncated packet, which would pass unchecked. A driver that leaves
 * headers in frags (napi_gro_frags()), a tap whose vnet header gives a short hdr_len, or an
 * AF_PACKET sender with a vnet header all make such buffers. So a non-linear buffer is parsed
 * once ahead (tc_pull_len()), and when a header runs past the linear part, the linear part is
 * pulled as far as the headers go. A packet whose headers the linear part holds, as on a veth
 * and for locally made packets, is never copied.
 */
#define TC_PULL_LEN   (14 + 2 * 4 + 60 + 60) /* Ethernet, two VLAN tags, IPv4 + options, TCP */
#define TC_L4_MAX_LEN 60		     /* the longest TCP header */
/*
 * Bytes in the linear part of skb. Read in assembly: the same fields read again after
 * bpf_skb_pull_data() would let the compiler keep their offsets in registers and address the
 * context with them, which the verifier refuses.
 */
static __always_inline __u32 skb_linear_len(const struct __sk_buff *skb)
{
	__u32 data, end;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(data)
		     : "r"(skb), "i"(offsetof(struct __sk_buff, data)));
	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(end)
		     : "r"(skb), "i"(offsetof(struct __sk_buff, data_end)));
	return end - data;
}

/*
 * How far into the packet the parsers must read directly: 0 when the linear part holds every
 * header they read; else up to the end of the transport header (its longest form), or
 * TC_PULL_LEN when even the network header is cut. Parses on a scratch pkt_info, counts
 * nothing.
 */
static __always_inline __u32 tc_pull_len(struct pkt_ctx pc)
{
	struct hdr_cursor c = {.pos = pc.data, .end = pc.data_end, .pc = pc};
	struct pkt_info p = {};
	int rc = parse_l2_l3(&c, pc.data, &p);

	if (rc == PARSE_TRUNCATED)
		return TC_PULL_LEN;
	if (rc)
		return 0;
	if (parse_l4(&c, pc.data, &p) == PARSE_TRUNCATED)
		return p.l4_off + TC_L4_MAX_LEN;
	return 0;
}

/*
 * tcx ingress on each monitored interface (SCHED_CLS), for xdp_mode = tc: ingress() on the
 * socket buffer after GRO, so a super-packet of skb->gso_segs segments is counted as that
 * many packets, and its payload is read wherever it lies (frags too). A packet whose headers
 * run past the linear part is pulled first (tc_pull_len()). Drops with TC_ACT_SHOT; passes with TCX_NEXT,
 * so that later tcx programs still run.
 */
SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	struct pkt_ctx pc = {.ctx = skb, .skb = true};
	__u32 linear = skb_linear_len(skb), need;

	pc.data = (void *)(long)skb->data;
	pc.data_end = (void *)(long)skb->data_end;
	if (skb->len > linear) {
		need = tc_pull_len(pc);
		if (need > linear) {
			bpf_skb_pull_data(skb, need < skb->len ? need : skb->len);
			pc.data = (void *)(long)skb->data;
			pc.data_end = (void *)(long)skb->data_end;
		}
	}
	return ingress(pc) == XDP_DROP ? TC_VERDICT_DROP : TC_VERDICT_NEXT;
}

/*
 * The network namespace whose sockets sock_state counts: the inode number of the loader's
 * /proc/self/ns/net, where the monitored interfaces live. 0 counts every namespace (only
 * for tests that load the object without a loader).
 */
const volatile __u32 mon_netns_ino = 0;

#define EGRESS_NO_VERDICT -1 /* TCX_NEXT, TC_ACT_UNSPEC: the next program or the default */

/* The destination of an Ethernet (up to two VLAN tags) IPv4/IPv6 frame in [data, end). */
static __always_inline int egress_daddr(void *data, void *end, struct ebpfmon_addr *dst)
{
	struct hdr_cursor c = {.pos = data, .end = end};
	__u16 proto;
	int rc;

	rc = parse_ethhdr(&c, &proto);
	if (rc)
		return rc;
	if (proto == ETH_P_IP) {
		struct iphdr *iph = c.pos;

		if ((void *)(iph + 1) > end)
			return PARSE_TRUNCATED;
		if (iph->version != 4 || iph->ihl < 5)
			return PARSE_MALFORMED;
		addr_set_v4(dst, iph->daddr);
		return PARSE_OK;
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6h = c.pos;

		if ((void *)(ip6h + 1) > end)
			return PARSE_TRUNCATED;
		if (ip6h->version != 6)
			return PARSE_MALFORMED;
		__builtin_memcpy(dst->a, &ip6h->daddr, sizeof(dst->a));
		return PARSE_OK;
	}
	return PARSE_NOT_IP;
}

/*
 * tcx egress on each monitored interface (SCHED_CLS): tx packets and bytes per destination
 * of what leaves through that interface, and nothing else: traffic that stays inside this
 * host or inside another network namespace never reaches it. A GSO packet counts its
 * segments as packets and skb->len (headers once) as bytes. Never changes the verdict.
 */
SEC("tc")
int egress_account(struct __sk_buff *skb)
{
	struct ebpfmon_counters *cnt = get_counters();
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ebpfmon_ip_stats *st;
	struct ebpfmon_addr dst;
	__u32 segs = skb->gso_segs ?: 1;
	__u64 now;

	if (!cnt || egress_daddr(data, end, &dst) != PARSE_OK)
		return EGRESS_NO_VERDICT;
	cnt->tx_seen++;
	now = coarse_ns();
	struct ebpfmon_ip_stats init = {.first_seen_ns = now};

	st = map_lookup_or_try_init(&ip_stats, &dst, &init);
	if (!st)
		return EGRESS_NO_VERDICT;
	/* plain adds, as XDP's (struct ebpfmon_ip_stats) */
	st->tx_packets += segs;
	st->tx_bytes += skb->len;
	st->last_seen_ns = now;
	return EGRESS_NO_VERDICT;
}

/* The remote address; an IPv4 client of a dual-stack listener is IPv4-mapped already. */
static __always_inline void sock_remote_addr(const struct sock *sk, struct ebpfmon_addr *a)
{
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET6)
		BPF_CORE_READ_INTO(&a->a, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	else
		addr_set_v4(a, BPF_CORE_READ(sk, __sk_common.skc_daddr));
}

static __always_inline void conn_opened(const struct sock *sk, struct ebpfmon_counters *cnt)
{
	struct ebpfmon_settings *set;
	struct ebpfmon_ev_conn_limit *ev;
	struct ebpfmon_conn *c;
	struct ebpfmon_addr addr;
	__u64 skp = (__u64)sk, now = bpf_ktime_get_boot_ns();
	__u32 zero = 0, active;

	sock_remote_addr(sk, &addr);
	if (bpf_map_update_elem(&conn_socks, &skp, &addr, BPF_NOEXIST)) {
		cnt->conn_table_full++;
		return;
	}
	cnt->conn_opened++;
	c = map_lookup_or_try_init(&conn_count, &addr, &(struct ebpfmon_conn){});
	if (!c)
		return;
	active = __sync_fetch_and_add(&c->active, 1) + 1;
	__sync_fetch_and_add(&c->total, 1);
	c->last_ns = now;
	set = bpf_map_lookup_elem(&settings, &zero);
	if (!set || !set->max_conn_per_ip || active != set->max_conn_per_ip + 1)
		return;
	ev = event_reserve(cnt, EBPFMON_EV_CONN_LIMIT, sizeof(*ev), now);
	if (!ev)
		return;
	ev->addr = addr;
	ev->active = active;
	ev->limit = set->max_conn_per_ip;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void conn_closed(const struct sock *sk)
{
	struct ebpfmon_addr *a, addr;
	struct ebpfmon_conn *c;
	__u64 skp = (__u64)sk;

	a = bpf_map_lookup_elem(&conn_socks, &skp);
	if (!a)
		return; /* a client-side socket, or one we could not track */
	addr = *a;
	bpf_map_delete_elem(&conn_socks, &skp);
	c = bpf_map_lookup_elem(&conn_count, &addr);
	if (c && c->active)
		__sync_fetch_and_sub(&c->active, 1);
}

/*
 * A server-side connection is established when it moves SYN_RECV -> ESTABLISHED (the client
 * side moves from SYN_SENT); it ends when it leaves ESTABLISHED, whichever way.
 */
SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(sock_state, const struct sock *sk, int oldstate, int newstate)
{
	struct ebpfmon_counters *cnt;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	/* Only sockets of the monitored interfaces' namespace: not a container's own. */
	if (mon_netns_ino && BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != mon_netns_ino)
		return 0;
	cnt = get_counters();
	if (!cnt)
		return 0;
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)
		conn_opened(sk, cnt);
	else if (oldstate == TCP_ESTABLISHED)
		conn_closed(sk);
	return 0;
}

/* Disk I/O per process, counted where the issuing task submits the bio. */
SEC("raw_tp/block_bio_queue")
int BPF_PROG(block_io, struct bio *bio)
{
	struct ebpfmon_counters *cnt = get_counters();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 op = BPF_CORE_READ(bio, bi_opf) & REQ_OP_MASK;
	__u64 bytes = BPF_CORE_READ(bio, bi_iter.bi_size);
	struct ebpfmon_proc_io *io;

	if (!cnt || (op != REQ_OP_READ && op != REQ_OP_WRITE))
		return 0;
	cnt->io_events++;
	io = map_lookup_or_try_init(&proc_io, &tgid, &(struct ebpfmon_proc_io){});
	if (!io) {
		cnt->io_table_full++;
		return 0;
	}
	if (op == REQ_OP_READ) {
		__sync_fetch_and_add(&io->read_bytes, bytes);
		__sync_fetch_and_add(&io->read_ops, 1);
	} else {
		__sync_fetch_and_add(&io->write_bytes, bytes);
		__sync_fetch_and_add(&io->write_ops, 1);
	}
	io->last_ns = bpf_ktime_get_boot_ns();
	/* The name now, not at the first I/O: that may have been before exec (the binary's pages). */
	bpf_get_current_comm(io->comm, sizeof(io->comm));
	return 0;
}

#include "stream.h"
