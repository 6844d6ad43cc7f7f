// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xdp_ingress, the real object, on hand-built frames through BPF_PROG_TEST_RUN; with
 * --hook=tc the same cases on tc_ingress (a SCHED_CLS test run on a socket buffer), whose
 * verdicts are mapped to XDP's: TC_ACT_SHOT is XDP_DROP, TCX_NEXT is XDP_PASS.
 *
 * Every test starts from empty maps (bans, nets, allowlist, ip_stats, url_rules), zero
 * counters, default settings and a drained ring buffer, and asserts what a user of ebpfmon
 * would notice: the verdict, the global counters, the per-address statistics, the drop
 * counts of bans, and the events the analyzer would receive.
 *
 * Needs root; exits 77 (skipped) without it unless EBPFMON_REQUIRE_BPF=1.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/btf.h>

#include "addr.h"
#include "bpf_test_env.h"
#include "config.h"
#include "mapconf.h"
#include "pkt.h"
#include "xdp_harness.h"

#define PROG "test_bpf_xdp"

static struct ebpfmon *skel;
static struct ring_buffer *rb;
static int prog_fd;
static bool tc_hook;	      /* --hook=tc: the cases run on tc_ingress */
static bool bans_pin_existed; /* before our load */

#define DEFAULT_BANS_PIN "/sys/fs/bpf/" EBPFMON_MAP_BANS

/* ---- events ---------------------------------------------------------------------------- */

#define EV_MAX 64

union ev_any {
	struct ebpfmon_event_hdr hdr;
	struct ebpfmon_ev_url_hit url;
	struct ebpfmon_ev_ban_drop ban;
	struct ebpfmon_ev_conn_limit conn;
	uint8_t raw[256];
};

static struct {
	size_t n;
	size_t size[EV_MAX];
	union ev_any ev[EV_MAX];
} evlog;

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (evlog.n < EV_MAX) {
		memset(&evlog.ev[evlog.n], 0, sizeof(evlog.ev[0]));
		memcpy(&evlog.ev[evlog.n], data,
		       size < sizeof(union ev_any) ? size : sizeof(union ev_any));
		evlog.size[evlog.n] = size;
	}
	evlog.n++;
	return 0;
}

/* Read whatever the ring buffer holds into evlog; returns how many events it has now. */
static size_t events_read(void)
{
	int rc = ring_buffer__consume(rb);

	assert_true(rc >= 0);
	return evlog.n;
}

/* ---- map helpers ----------------------------------------------------------------------- */

/* Extension headers the parser follows (bpf/parsing.h). */
#define IPV6_EXT_MAX 16

#define COUNTER_FIELDS(X)                                                                          \
	X(rx_seen)                                                                                 \
	X(rx_passed)                                                                               \
	X(rx_drop_ban)                                                                             \
	X(rx_drop_net)                                                                             \
	X(rx_drop_url)                                                                             \
	X(rx_allowed)                                                                              \
	X(rx_not_ip)                                                                               \
	X(rx_parse_err)                                                                            \
	X(url_hits)                                                                                \
	X(tx_seen)                                                                                 \
	X(conn_opened)                                                                             \
	X(conn_table_full)                                                                         \
	X(events)                                                                                  \
	X(ringbuf_drops)                                                                           \
	X(io_events)                                                                               \
	X(io_table_full)                                                                           \
	X(rx_drop_unseen)                                                                          \
	X(rx_would_drop)                                                                           \
	X(url_lines)                                                                               \
	X(url_hits_over)                                                                           \
	X(url_split)                                                                               \
	X(url_unverified)                                                                          \
	X(url_scan_cut)                                                                            \
	X(http_flows_full)                                                                         \
	X(url_partial)                                                                             \
	X(url_urgent)                                                                              \
	X(stream_socks)                                                                            \
	X(stream_socks_full)                                                                       \
	X(stream_chunks)                                                                           \
	X(stream_lines)                                                                            \
	X(stream_split)                                                                            \
	X(stream_url_hits)                                                                         \
	X(stream_drop_url)                                                                         \
	X(stream_overlap)                                                                          \
	X(stream_state_full)                                                                       \
	X(stream_nested)                                                                           \
	X(url_to_stream)

_Static_assert(sizeof(struct ebpfmon_counters) == 37 * sizeof(__u64),
	       "COUNTER_FIELDS lists every counter");

/* The counters (summed over CPUs) must equal want, field by field; names the ones that differ. */
static bool counters_equal(const struct ebpfmon_counters *want, const char *what)
{
	struct ebpfmon_counters got;
	bool ok = true;

	assert_int_equal(xh_counters(skel, &got), 0);
#define X(f)                                                                                       \
	if (got.f != want->f) {                                                                    \
		print_error("%s: counters.%s = %" PRIu64 ", want %" PRIu64 "\n", what, #f,         \
			    (uint64_t)got.f, (uint64_t)want->f);                                   \
		ok = false;                                                                        \
	}
	COUNTER_FIELDS(X)
#undef X
	return ok;
}

static void expect_counters_(const struct ebpfmon_counters *want, const char *file, int line)
{
	if (!counters_equal(want, "after the packets"))
		_fail(file, line);
}

/* expect_counters(.rx_seen = 1, .rx_passed = 1): every counter not named must be 0. */
#define expect_counters(...)                                                                       \
	expect_counters_(&(struct ebpfmon_counters){__VA_ARGS__}, __FILE__, __LINE__)

/* A ban written as bpftool writes it: settings.ban_gen left alone. */
static void ban_add_quiet(const char *addr, uint64_t expires_ns)
{
	struct ebpfmon_addr a = pkt_addr(addr);
	struct ebpfmon_ban ban = {.expires_ns = expires_ns, .reason = EBPFMON_BAN_MANUAL};

	assert_int_equal(
		bpf_map__update_elem(skel->maps.bans, &a, sizeof(a), &ban, sizeof(ban), BPF_ANY),
		0);
}

/* A ban written as the analyzer writes it: then settings.ban_gen grows. */
static void ban_add(const char *addr, uint64_t expires_ns)
{
	ban_add_quiet(addr, expires_ns);
	assert_int_equal(mapconf_ban_written(bpf_map__fd(skel->maps.settings)), 0);
}

static struct ebpfmon_ban ban_get(const char *addr)
{
	struct ebpfmon_addr a = pkt_addr(addr);
	struct ebpfmon_ban ban;

	assert_int_equal(bpf_map__lookup_elem(skel->maps.bans, &a, sizeof(a), &ban, sizeof(ban), 0),
			 0);
	return ban;
}

static void ban_net_add(const char *net, unsigned plen, uint64_t expires_ns)
{
	struct ebpfmon_lpm_key k = pkt_lpm_key(net, plen);
	struct ebpfmon_ban ban = {.expires_ns = expires_ns};

	assert_int_equal(bpf_map__update_elem(skel->maps.ban_nets, &k, sizeof(k), &ban, sizeof(ban),
					      BPF_ANY),
			 0);
	assert_int_equal(mapconf_ban_written(bpf_map__fd(skel->maps.settings)), 0);
}

static struct ebpfmon_ban ban_net_get(const char *net, unsigned plen)
{
	struct ebpfmon_lpm_key k = pkt_lpm_key(net, plen);
	struct ebpfmon_ban ban;

	assert_int_equal(
		bpf_map__lookup_elem(skel->maps.ban_nets, &k, sizeof(k), &ban, sizeof(ban), 0), 0);
	return ban;
}

static void allow_add(const char *net, unsigned plen)
{
	struct ebpfmon_lpm_key k = pkt_lpm_key(net, plen);
	__u32 one = 1;

	assert_int_equal(bpf_map__update_elem(skel->maps.allow_nets, &k, sizeof(k), &one,
					      sizeof(one), BPF_ANY),
			 0);
}

/* settings[0] with these flags and HTTP ports; ban_gen grows, as with every writer. */
static void settings(__u32 flags, __u16 port0, __u16 port1)
{
	struct ebpfmon_settings set = {.flags = flags}, old = {0};
	__u32 zero = 0;

	assert_int_equal(bpf_map__lookup_elem(skel->maps.settings, &zero, sizeof(zero), &old,
					      sizeof(old), 0),
			 0);
	set.ban_gen = old.ban_gen + 1; /* as common/mapconf.c: flags such as BAN_NETS may be new */
	set.note_seed = old.note_seed ? old.note_seed : 0x5eed; /* kept, as common/mapconf.c */

	set.http_ports[0] = port0;
	set.http_ports[EBPFMON_MAX_HTTP_PORTS - 1] = port1; /* the last slot is checked too */
	assert_int_equal(xh_settings_set(skel, &set), 0);
}

static void url_rule(const char *pattern, __u32 id, __u32 action)
{
	assert_int_equal(xh_url_rule_add(skel, pattern, id, action), 0);
}

/* ip_stats of addr, which must exist. */
static struct ebpfmon_ip_stats stats_of(const char *addr)
{
	struct ebpfmon_addr a = pkt_addr(addr);
	struct ebpfmon_ip_stats st;
	int err = xh_ip_stats(skel, &a, &st);

	if (err)
		print_error("ip_stats[%s]: %s\n", addr, strerror(-err));
	assert_int_equal(err, 0);
	return st;
}

static bool stats_exist(const char *addr)
{
	struct ebpfmon_addr a = pkt_addr(addr);
	struct ebpfmon_ip_stats st;

	return xh_ip_stats(skel, &a, &st) == 0;
}

#define TC_ACT_SHOT_ 2
#define TCX_NEXT_    ((__u32)-1)

/* The skeleton with the program under test (and xdp_ingress) loaded: xh_load_hooks(). */
static int hook_load(struct ebpfmon **out, uint32_t ip_stats_max, bool url_verify)
{
	return xh_load_hooks(out, ip_stats_max, url_verify, tc_hook);
}

static int hook_fd(const struct ebpfmon *v)
{
	return bpf_program__fd(tc_hook ? v->progs.tc_ingress : v->progs.xdp_ingress);
}

/*
 * repeat runs of the program under test on len bytes of data; *verdict is XDP's (tc_ingress's
 * TC_ACT_SHOT is XDP_DROP, TCX_NEXT XDP_PASS, anything else 100 + its value, which no test
 * wants). gso_segs: the segments the socket buffer stands for (tc only; 0 none).
 */
static int hook_run(int fd, const void *data, size_t len, uint32_t repeat, uint32_t gso_segs,
		    __u32 *verdict)
{
	__u32 rv = 0;
	int err;

	if (!tc_hook)
		return xh_run(fd, data, len, repeat, verdict, NULL);
	err = xh_run_skb(fd, data, len, repeat, gso_segs, &rv, NULL);
	*verdict = rv == TC_ACT_SHOT_ ? XDP_DROP : rv == TCX_NEXT_ ? XDP_PASS : 100 + rv;
	return err;
}

static int run(const struct frame *f)
{
	__u32 verdict = 0;
	int err = hook_run(prog_fd, f->b, f->len, 1, 0, &verdict);

	if (err)
		print_error("BPF_PROG_TEST_RUN on a %zu-byte frame: %s\n", f->len, strerror(-err));
	assert_int_equal(err, 0);
	return (int)verdict;
}

/*
 * A frame that BPF_PROG_TEST_RUN refuses for a socket buffer: one whose IP header is cut
 * (the kernel checks it, Linux 6.18), which XDP's test run takes.
 */
#define RUN_REFUSED (-1000)

/* Run a frame cut to len bytes; RUN_REFUSED for a cut the skb test run refuses (tc only). */
static int run_cut(const struct frame *f, size_t len)
{
	__u32 verdict = 0;
	int err = hook_run(prog_fd, f->b, len, 1, 0, &verdict);

	if (tc_hook && err == -EINVAL)
		return RUN_REFUSED;

	if (err)
		print_error("BPF_PROG_TEST_RUN on %zu of %zu bytes: %s\n", len, f->len,
			    strerror(-err));
	assert_int_equal(err, 0);
	return (int)verdict;
}

/* ---- frames ---------------------------------------------------------------------------- */

static void v4_tcp(struct frame *f, const char *src, uint16_t dport, uint8_t flags,
		   const char *payload)
{
	frame_init(f);
	put_eth(f, PKT_ETH_P_IP);
	put_ipv4(f, src, "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(f, 40000, dport, flags);
	if (payload)
		put_str(f, payload);
	frame_finish(f);
}

static void v6_tcp(struct frame *f, const char *src, uint16_t dport, uint8_t flags,
		   const char *payload)
{
	frame_init(f);
	put_eth(f, PKT_ETH_P_IPV6);
	put_ipv6(f, src, "2001:db8::1", IPPROTO_TCP);
	put_tcp(f, 40000, dport, flags);
	if (payload)
		put_str(f, payload);
	frame_finish(f);
}

/* hop-by-hop, routing, destination options and a first fragment, then TCP. */
static void v6_ext_tcp(struct frame *f, const char *src, uint16_t dport, uint8_t flags,
		       const char *payload)
{
	frame_init(f);
	put_eth(f, PKT_ETH_P_IPV6);
	put_ipv6(f, src, "2001:db8::1", PKT_NEXTHDR_HOP);
	put_ipv6_ext(f, PKT_NEXTHDR_ROUTING, 0);  /* hop-by-hop, 8 bytes */
	put_ipv6_routing(f, PKT_NEXTHDR_DEST, 2); /* routing, 24 bytes */
	put_ipv6_ext(f, PKT_NEXTHDR_FRAGMENT, 1); /* destination options, 16 bytes */
	put_ipv6_frag(f, IPPROTO_TCP, 0, false);  /* atomic (RFC 8021): a whole packet */
	put_tcp(f, 40000, dport, flags);
	if (payload)
		put_str(f, payload);
	frame_finish(f);
}

static void vlan_v4_tcp(struct frame *f, const char *src, uint8_t flags)
{
	frame_init(f);
	put_eth(f, PKT_ETH_P_8021Q);
	put_vlan(f, 100, PKT_ETH_P_IP);
	put_ipv4(f, src, "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(f, 40000, 443, flags);
	frame_finish(f);
}

#define HTTP_REQ(path) "GET " path " HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t\r\n\r\n"

/* ---- fixture --------------------------------------------------------------------------- */

/*
 * Zero a variable of the object's .bss, static ones too (the skeleton names only the others),
 * found by name in the BTF of the section. Returns 0 or -ENOENT.
 */
static int bss_zero(const char *name)
{
	const struct btf *btf = bpf_object__btf(skel->obj);
	int id = btf ? btf__find_by_name_kind(btf, ".bss", BTF_KIND_DATASEC) : -1;
	const struct btf_type *sec = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_var_secinfo *vs = sec ? btf_var_secinfos(sec) : NULL;

	for (int i = 0; sec && i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *v = btf__type_by_id(btf, vs->type);

		if (!strcmp(btf__name_by_offset(btf, v->name_off), name)) {
			memset((char *)skel->bss + vs->offset, 0, vs->size);
			return 0;
		}
	}
	print_error(".bss has no variable %s\n", name);
	return -ENOENT;
}

static int reset(void **state)
{
	struct bpf_map *maps[] = {skel->maps.bans,     skel->maps.ban_nets,  skel->maps.allow_nets,
				  skel->maps.ip_stats, skel->maps.url_rules, skel->maps.http_flows};
	struct ebpfmon_settings set = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (xh_map_clear(maps[i]) < 0)
			return -1;
	if (xh_counters_zero(skel) || xh_settings_set(skel, &set))
		return -1;
	/* XDP's per-CPU hints of the drops before (bpf/ebpfmon.bpf.c, struct drop_memo_slot) */
	if (bss_zero("drop_memo"))
		return -1;
	if (ring_buffer__consume(rb) < 0)
		return -1;
	memset(&evlog, 0, sizeof(evlog));
	return 0;
}

/* ---- loading --------------------------------------------------------------------------- */

/* The skeleton loaded with every pin path cleared: no map is pinned, none was reused. */
static void test_load_pins_nothing(void **state)
{
	struct bpf_map *map;
	struct stat st;

	(void)state;
	bpf_object__for_each_map(map, skel->obj)
	{
		assert_null(bpf_map__pin_path(map));
		assert_false(bpf_map__is_pinned(map));
		assert_true(bpf_map__fd(map) >= 0);
	}
	/* what LIBBPF_PIN_BY_NAME would have created under libbpf's default root */
	if (!bans_pin_existed)
		assert_int_not_equal(stat(DEFAULT_BANS_PIN, &st), 0);
	assert_true(bpf_program__fd(skel->progs.xdp_ingress) >= 0);
	assert_true(tc_hook ? bpf_program__fd(skel->progs.tc_ingress) >= 0
			    : bpf_program__fd(skel->progs.tc_ingress) < 0);
	assert_true(bpf_program__fd(skel->progs.sock_state) < 0); /* autoload off */
}

/* ---- clean traffic --------------------------------------------------------------------- */

static void test_v4_tcp_clean(void **state)
{
	struct frame syn, synack, ack;
	struct ebpfmon_ip_stats st;
	uint64_t t0 = xh_coarse_ns(), t1;

	(void)state;
	v4_tcp(&syn, "198.51.100.10", 443, TCP_SYN, NULL);
	v4_tcp(&synack, "198.51.100.10", 443, TCP_SYN | TCP_ACK, NULL);
	v4_tcp(&ack, "198.51.100.10", 443, TCP_ACK, "hello");
	assert_int_equal(run(&syn), XDP_PASS);
	assert_int_equal(run(&synack), XDP_PASS);
	assert_int_equal(run(&ack), XDP_PASS);
	t1 = xh_coarse_ns();

	st = stats_of("198.51.100.10");
	assert_int_equal(st.rx_packets, 3);
	assert_int_equal(st.rx_bytes, syn.len + synack.len + ack.len);
	assert_int_equal(st.syns, 1); /* SYN without ACK only */
	assert_int_equal(st.tx_packets, 0);
	assert_true(st.first_seen_ns >= t0 && st.first_seen_ns <= st.last_seen_ns);
	assert_true(st.last_seen_ns <= t1);
	assert_false(stats_exist("192.0.2.1")); /* the destination is not counted */
	expect_counters(.rx_seen = 3, .rx_passed = 3);
	assert_int_equal(events_read(), 0);
}

static void test_v4_udp_clean(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.11", "192.0.2.1", IPPROTO_UDP, 0, 0);
	put_udp(&f, 5353, 53);
	put_str(&f, "dns?");
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("198.51.100.11");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);
	assert_int_equal(st.syns, 0);
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

static void test_v4_icmp_clean(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.12", "192.0.2.1", IPPROTO_ICMP, 0, 0);
	put_icmp(&f, 8);
	put_str(&f, "ping");
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("198.51.100.12");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

static void test_v6_tcp_clean(void **state)
{
	struct frame syn, ack;
	struct ebpfmon_ip_stats st;

	(void)state;
	v6_tcp(&syn, "2001:db8:1::10", 22, TCP_SYN, NULL);
	v6_tcp(&ack, "2001:db8:1::10", 22, TCP_ACK | TCP_PSH, "SSH-2.0-x\r\n");
	assert_int_equal(run(&syn), XDP_PASS);
	assert_int_equal(run(&ack), XDP_PASS);
	st = stats_of("2001:db8:1::10");
	assert_int_equal(st.rx_packets, 2);
	assert_int_equal(st.rx_bytes, syn.len + ack.len);
	assert_int_equal(st.syns, 1);
	expect_counters(.rx_seen = 2, .rx_passed = 2);
}

static void test_v6_udp_clean(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::11", "2001:db8::1", IPPROTO_UDP);
	put_udp(&f, 5353, 53);
	put_str(&f, "dns?");
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("2001:db8:1::11");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

static void test_v6_icmp_clean(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::12", "2001:db8::1", IPPROTO_ICMPV6);
	put_icmp(&f, 128);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("2001:db8:1::12");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

static void test_vlan_single(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	vlan_v4_tcp(&f, "198.51.100.20", TCP_SYN);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("198.51.100.20");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);
	assert_int_equal(st.syns, 1); /* TCP found behind the tag */
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

/* 802.1ad outer, 802.1Q inner, for both families. */
static void test_qinq(void **state)
{
	struct frame f4, f6;

	(void)state;
	frame_init(&f4);
	put_eth(&f4, PKT_ETH_P_8021AD);
	put_vlan(&f4, 10, PKT_ETH_P_8021Q);
	put_vlan(&f4, 20, PKT_ETH_P_IP);
	put_ipv4(&f4, "198.51.100.21", "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(&f4, 1, 443, TCP_SYN);
	frame_finish(&f4);

	frame_init(&f6);
	put_eth(&f6, PKT_ETH_P_8021AD);
	put_vlan(&f6, 10, PKT_ETH_P_8021Q);
	put_vlan(&f6, 20, PKT_ETH_P_IPV6);
	put_ipv6(&f6, "2001:db8:1::21", "2001:db8::1", IPPROTO_TCP);
	put_tcp(&f6, 1, 443, TCP_SYN);
	frame_finish(&f6);

	assert_int_equal(run(&f4), XDP_PASS);
	assert_int_equal(run(&f6), XDP_PASS);
	assert_int_equal(stats_of("198.51.100.21").syns, 1);
	assert_int_equal(stats_of("198.51.100.21").rx_bytes, f4.len);
	assert_int_equal(stats_of("2001:db8:1::21").syns, 1);
	expect_counters(.rx_seen = 2, .rx_passed = 2);
}

/* More tags than the parser follows: passed, not looked into, and not an error. */
static void test_three_tags_not_ip(void **state)
{
	struct frame f;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_8021AD);
	put_vlan(&f, 10, PKT_ETH_P_8021Q);
	put_vlan(&f, 20, PKT_ETH_P_8021Q);
	put_vlan(&f, 30, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.22", "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(&f, 1, 443, TCP_SYN);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	assert_false(stats_exist("198.51.100.22"));
	expect_counters(.rx_seen = 1, .rx_passed = 1, .rx_not_ip = 1);
}

static void test_arp_lldp_not_ip(void **state)
{
	static const uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1}; /* who-has, rest zero */
	struct frame f;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_ARP);
	put_bytes(&f, arp, sizeof(arp));
	assert_int_equal(run(&f), XDP_PASS);

	frame_init(&f);
	put_eth(&f, PKT_ETH_P_LLDP);
	put_str(&f, "\x02\x07\x04\x02\x00\x00\x00\x00\x01");
	assert_int_equal(run(&f), XDP_PASS);

	/* ARP inside a VLAN, and a bare Ethernet header of an unknown type */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_8021Q);
	put_vlan(&f, 5, PKT_ETH_P_ARP);
	put_bytes(&f, arp, sizeof(arp));
	assert_int_equal(run(&f), XDP_PASS);
	frame_init(&f);
	put_eth(&f, 0x9000);
	assert_int_equal(run(&f), XDP_PASS);

	expect_counters(.rx_seen = 4, .rx_passed = 4, .rx_not_ip = 4);
}

/* ihl 6..15: TCP is found after the options (a SYN read at the wrong offset is no SYN). */
static void test_v4_options(void **state)
{
	(void)state;
	for (unsigned words = 1; words <= 10; words++) {
		char src[32];
		struct frame f;
		struct ebpfmon_ip_stats st;

		snprintf(src, sizeof(src), "198.51.100.%u", 30 + words);
		frame_init(&f);
		put_eth(&f, PKT_ETH_P_IP);
		put_ipv4(&f, src, "192.0.2.1", IPPROTO_TCP, words, 0);
		put_tcp(&f, 1, 443, TCP_SYN);
		frame_finish(&f);
		assert_int_equal(f.b[ETH_HLEN_] & 0x0f, 5 + words);
		assert_int_equal(run(&f), XDP_PASS);
		st = stats_of(src);
		assert_int_equal(st.rx_packets, 1);
		assert_int_equal(st.rx_bytes, f.len);
		if (st.syns != 1)
			print_error("ihl %u: TCP SYN not found after the options\n", 5 + words);
		assert_int_equal(st.syns, 1);
	}
	expect_counters(.rx_seen = 10, .rx_passed = 10);
}

/* ihl 0..4 is no IPv4 header: passed as a parse error, nothing attributed to its "source". */
static void test_v4_ihl_below_5(void **state)
{
	(void)state;
	for (unsigned ihl = 0; ihl < 5; ihl++) {
		struct frame f;

		v4_tcp(&f, "198.51.100.40", 443, TCP_SYN, NULL);
		f.b[ETH_HLEN_] = (uint8_t)(0x40 | ihl);
		assert_int_equal(run(&f), XDP_PASS);
	}
	assert_false(stats_exist("198.51.100.40"));
	expect_counters(.rx_seen = 5, .rx_passed = 5, .rx_parse_err = 5);
}

/* A version nibble that does not match the EtherType, either way round. */
static void test_ip_version_mismatch(void **state)
{
	struct frame f;

	(void)state;
	v4_tcp(&f, "198.51.100.41", 443, TCP_SYN, NULL);
	f.b[ETH_HLEN_] = 0x65;
	assert_int_equal(run(&f), XDP_PASS);
	v6_tcp(&f, "2001:db8:1::41", 443, TCP_SYN, NULL);
	f.b[ETH_HLEN_] = 0x45;
	assert_int_equal(run(&f), XDP_PASS);
	assert_false(stats_exist("198.51.100.41"));
	assert_false(stats_exist("2001:db8:1::41"));
	expect_counters(.rx_seen = 2, .rx_passed = 2, .rx_parse_err = 2);
}

/* TCP doff < 5: the source is known and counted, the segment is a parse error. */
static void test_tcp_doff_below_5(void **state)
{
	struct frame f;

	(void)state;
	settings(EBPFMON_F_URL_MATCH, 80, 0);
	url_rule("/wp-admin", 1, EBPFMON_URL_DROP);
	v4_tcp(&f, "198.51.100.42", 80, TCP_ACK, HTTP_REQ("/wp-admin/x"));
	f.b[ETH_HLEN_ + IPV4_HLEN_ + 12] = 4 << 4;
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(stats_of("198.51.100.42").rx_packets, 1);
	expect_counters(.rx_seen = 1, .rx_passed = 1, .rx_parse_err = 1);
	assert_int_equal(events_read(), 0);
}

static void test_v6_ext_headers(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	v6_ext_tcp(&f, "2001:db8:1::50", 443, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("2001:db8:1::50");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);
	assert_int_equal(st.syns, 1); /* TCP found behind four extension headers */

	/* an authentication header ((len + 2) * 4 bytes) before TCP */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::51", "2001:db8::1", PKT_NEXTHDR_AUTH);
	put_ipv6_auth(&f, IPPROTO_TCP, 4);
	put_tcp(&f, 1, 443, TCP_SYN);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(stats_of("2001:db8:1::51").syns, 1);

	/* no next header: counted, no transport */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::52", "2001:db8::1", PKT_NEXTHDR_HOP);
	put_ipv6_ext(&f, PKT_NEXTHDR_NONE, 0);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(stats_of("2001:db8:1::52").rx_packets, 1);

	expect_counters(.rx_seen = 3, .rx_passed = 3);
}

/* A chain longer than the parser follows: the source is counted, the transport is unknown. */
static void test_v6_ext_chain_too_long(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::53", "2001:db8::1", PKT_NEXTHDR_DEST);
	for (int i = 0; i < IPV6_EXT_MAX + 1; i++)
		put_ipv6_ext(&f, i < IPV6_EXT_MAX ? PKT_NEXTHDR_DEST : IPPROTO_TCP, 0);
	put_tcp(&f, 1, 443, TCP_SYN);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("2001:db8:1::53");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.syns, 0);
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

/*
 * A non-first fragment has no transport header: bytes that look like a SYN to port 80
 * carrying a request line are neither a SYN nor a request; the source is still counted.
 */
static void test_v4_fragments(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	settings(EBPFMON_F_URL_MATCH, 80, 0);
	url_rule("/wp-admin", 1, EBPFMON_URL_DROP);

	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.60", "192.0.2.1", IPPROTO_TCP, 0, 185);
	put_tcp(&f, 1, 80, TCP_SYN);
	put_str(&f, HTTP_REQ("/wp-admin/"));
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	f.b[ETH_HLEN_ + 6] |= IPV4_MF >> 8; /* a middle fragment */
	assert_int_equal(run(&f), XDP_PASS);
	st = stats_of("198.51.100.60");
	assert_int_equal(st.rx_packets, 2);
	assert_int_equal(st.rx_bytes, 2 * f.len);
	assert_int_equal(st.syns, 0);

	/* The first fragment (MF, offset 0) does carry TCP. */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.61", "192.0.2.1", IPPROTO_TCP, 0, IPV4_MF);
	put_tcp(&f, 1, 443, TCP_SYN);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(stats_of("198.51.100.61").syns, 1);

	expect_counters(.rx_seen = 3, .rx_passed = 3);
	assert_int_equal(events_read(), 0);
}

static void test_v6_fragments(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	settings(EBPFMON_F_URL_MATCH, 80, 0);
	url_rule("/wp-admin", 1, EBPFMON_URL_DROP);

	for (int more = 0; more <= 1; more++) {
		frame_init(&f);
		put_eth(&f, PKT_ETH_P_IPV6);
		put_ipv6(&f, "2001:db8:1::60", "2001:db8::1", PKT_NEXTHDR_FRAGMENT);
		put_ipv6_frag(&f, IPPROTO_TCP, 185, more);
		put_tcp(&f, 1, 80, TCP_SYN);
		put_str(&f, HTTP_REQ("/wp-admin/"));
		frame_finish(&f);
		assert_int_equal(run(&f), XDP_PASS);
	}
	st = stats_of("2001:db8:1::60");
	assert_int_equal(st.rx_packets, 2);
	assert_int_equal(st.syns, 0);

	/* behind a hop-by-hop header too */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::61", "2001:db8::1", PKT_NEXTHDR_HOP);
	put_ipv6_ext(&f, PKT_NEXTHDR_FRAGMENT, 0);
	put_ipv6_frag(&f, IPPROTO_TCP, 1, false);
	put_tcp(&f, 1, 80, TCP_SYN);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(stats_of("2001:db8:1::61").syns, 0);

	expect_counters(.rx_seen = 3, .rx_passed = 3);
	assert_int_equal(events_read(), 0);
}

/* ---- truncation ------------------------------------------------------------------------ */

/*
 * Cut the frame at every length from 14 bytes (the least BPF_PROG_TEST_RUN accepts for XDP)
 * up to but excluding full: each cut must pass, count one parse error, and not crash. A cut
 * at l4_off or later leaves the source readable, so it is counted in ip_stats.
 */
static void check_truncations(const struct frame *f, size_t full, size_t l4_off, const char *src,
			      const char *what)
{
	uint64_t counted = 0;

	for (size_t len = ETH_HLEN_; len < full; len++) {
		char label[96];
		int verdict;

		assert_int_equal(xh_counters_zero(skel), 0);
		verdict = run_cut(f, len);
		if (verdict == RUN_REFUSED && len < l4_off)
			continue; /* tc: an IP header cut, which the test run refuses */
		snprintf(label, sizeof(label), "%s cut at %zu of %zu bytes", what, len, full);
		if (verdict != XDP_PASS)
			print_error("%s: verdict %d, want XDP_PASS\n", label, verdict);
		assert_int_equal(verdict, XDP_PASS);
		if (!counters_equal(&(struct ebpfmon_counters){.rx_seen = 1,
							       .rx_passed = 1,
							       .rx_parse_err = 1},
				    label))
			fail_msg("%s", label);
		if (len >= l4_off)
			counted++;
		if (counted ? stats_of(src).rx_packets != counted : stats_exist(src))
			fail_msg("%s: ip_stats[%s] has the wrong packet count", label, src);
	}
	/* and the whole header is clean */
	assert_int_equal(xh_counters_zero(skel), 0);
	assert_int_equal(run_cut(f, full), XDP_PASS);
	expect_counters(.rx_seen = 1, .rx_passed = 1);
}

static void test_trunc_v4_tcp(void **state)
{
	struct frame f;

	(void)state;
	v4_tcp(&f, "198.51.100.70", 443, TCP_SYN, NULL);
	check_truncations(&f, ETH_HLEN_ + IPV4_HLEN_ + TCP_HLEN_, ETH_HLEN_ + IPV4_HLEN_,
			  "198.51.100.70", "IPv4+TCP");

	/* with options: the cut falls inside them too */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.71", "192.0.2.1", IPPROTO_TCP, 3, 0);
	put_tcp(&f, 1, 443, TCP_SYN);
	frame_finish(&f);
	check_truncations(&f, f.len, ETH_HLEN_ + IPV4_HLEN_ + 12, "198.51.100.71",
			  "IPv4(options)+TCP");
}

static void test_trunc_v4_udp_icmp(void **state)
{
	struct frame f;

	(void)state;
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.72", "192.0.2.1", IPPROTO_UDP, 0, 0);
	put_udp(&f, 1, 53);
	frame_finish(&f);
	check_truncations(&f, f.len, ETH_HLEN_ + IPV4_HLEN_, "198.51.100.72", "IPv4+UDP");

	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "198.51.100.73", "192.0.2.1", IPPROTO_ICMP, 0, 0);
	put_icmp(&f, 8);
	frame_finish(&f);
	check_truncations(&f, f.len, ETH_HLEN_ + IPV4_HLEN_, "198.51.100.73", "IPv4+ICMP");
}

static void test_trunc_v6_tcp(void **state)
{
	struct frame f;

	(void)state;
	v6_tcp(&f, "2001:db8:1::70", 443, TCP_SYN, NULL);
	check_truncations(&f, f.len, ETH_HLEN_ + IPV6_HLEN_, "2001:db8:1::70", "IPv6+TCP");

	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::71", "2001:db8::1", IPPROTO_ICMPV6);
	put_icmp(&f, 128);
	frame_finish(&f);
	check_truncations(&f, f.len, ETH_HLEN_ + IPV6_HLEN_, "2001:db8:1::71", "IPv6+ICMPv6");
}

/*
 * Cut inside the extension headers: the source is known once the fixed header is in, but
 * an extension header that runs past the end is a parse error before anything is counted.
 */
static void test_trunc_v6_ext(void **state)
{
	struct frame f;
	size_t l3 = ETH_HLEN_ + IPV6_HLEN_, tcp_off;

	(void)state;
	v6_ext_tcp(&f, "2001:db8:1::72", 443, TCP_SYN, NULL);
	tcp_off = f.len - TCP_HLEN_;
	assert_int_equal(tcp_off, l3 + 8 + 24 + 16 + 8);
	/* ip_stats is only reached once the chain is complete (cut at tcp_off or later) */
	check_truncations(&f, f.len, tcp_off, "2001:db8:1::72", "IPv6+ext+TCP");
}

static void test_trunc_vlan(void **state)
{
	struct frame f;

	(void)state;
	vlan_v4_tcp(&f, "198.51.100.74", TCP_SYN);
	check_truncations(&f, f.len, ETH_HLEN_ + VLAN_HLEN_ + IPV4_HLEN_, "198.51.100.74",
			  "VLAN+IPv4+TCP");

	frame_init(&f);
	put_eth(&f, PKT_ETH_P_8021AD);
	put_vlan(&f, 10, PKT_ETH_P_8021Q);
	put_vlan(&f, 20, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::74", "2001:db8::1", IPPROTO_TCP);
	put_tcp(&f, 1, 443, TCP_SYN);
	frame_finish(&f);
	check_truncations(&f, f.len, ETH_HLEN_ + 2 * VLAN_HLEN_ + IPV6_HLEN_, "2001:db8:1::74",
			  "QinQ+IPv6+TCP");
}

/* Enforcement needs only layer 3: a banned source whose transport header is cut is dropped. */
static void test_trunc_l4_banned_dropped(void **state)
{
	struct frame f4, f6;
	size_t l4_4 = ETH_HLEN_ + IPV4_HLEN_, l4_6 = ETH_HLEN_ + IPV6_HLEN_;
	uint64_t n = 0;
	int verdict;

	(void)state;
	ban_add("203.0.113.80", 0);
	ban_add("2001:db8:bad::80", 0);
	v4_tcp(&f4, "203.0.113.80", 80, TCP_SYN, NULL);
	v6_tcp(&f6, "2001:db8:bad::80", 80, TCP_SYN, NULL);
	for (size_t len = l4_4; len <= f4.len; len++, n++)
		if (run_cut(&f4, len) != XDP_DROP)
			fail_msg("banned IPv4 source cut at %zu bytes: not dropped", len);
	for (size_t len = l4_6; len <= f6.len; len++, n++)
		if (run_cut(&f6, len) != XDP_DROP)
			fail_msg("banned IPv6 source cut at %zu bytes: not dropped", len);
	assert_int_equal(ban_get("203.0.113.80").drops, f4.len - l4_4 + 1);
	assert_int_equal(ban_get("2001:db8:bad::80").drops, f6.len - l4_6 + 1);
	/* drop_sample_mask 0: every drop is reported */
	expect_counters(.rx_seen = n, .rx_drop_ban = n, .events = n);
	/* cut before the source address: nothing to enforce on, a parse error (a cut the skb
	 * test run refuses to make) */
	assert_int_equal(xh_counters_zero(skel), 0);
	verdict = run_cut(&f4, l4_4 - 1);
	if (verdict == RUN_REFUSED)
		return;
	assert_int_equal(verdict, XDP_PASS);
	expect_counters(.rx_seen = 1, .rx_passed = 1, .rx_parse_err = 1);
}

/* ---- bans ------------------------------------------------------------------------------ */

static void check_ban_drop_event(size_t i, const char *addr, uint64_t drops, uint32_t from_net,
				 uint64_t t0, uint64_t t1)
{
	const struct ebpfmon_ev_ban_drop *ev = &evlog.ev[i].ban;
	struct ebpfmon_addr a = pkt_addr(addr);

	assert_int_equal(evlog.size[i], sizeof(*ev));
	assert_int_equal(ev->hdr.type, EBPFMON_EV_BAN_DROP);
	assert_int_equal(ev->hdr.len, sizeof(*ev));
	assert_true(ev->hdr.ts_ns >= t0 && ev->hdr.ts_ns <= t1);
	assert_memory_equal(ev->addr.a, a.a, sizeof(a.a));
	assert_int_equal(ev->drops, drops);
	assert_int_equal(ev->from_net, from_net);
}

static void check_permanent_ban(const char *src, struct frame *f)
{
	uint64_t t0 = xh_boot_ns(), t1;

	ban_add(src, 0);
	assert_int_equal(run(f), XDP_DROP);
	assert_int_equal(run(f), XDP_DROP);
	t1 = xh_boot_ns();
	assert_int_equal(ban_get(src).drops, 2);
	assert_false(stats_exist(src)); /* dropped before it is counted */
	expect_counters(.rx_seen = 2, .rx_drop_ban = 2, .events = 2);
	assert_int_equal(events_read(), 2);
	check_ban_drop_event(0, src, 1, 0, t0, t1);
	check_ban_drop_event(1, src, 2, 0, t0, t1);
}

static void test_ban_v4(void **state)
{
	struct frame f;

	(void)state;
	v4_tcp(&f, "203.0.113.1", 22, TCP_SYN, NULL);
	check_permanent_ban("203.0.113.1", &f);
	/* a neighbour is not affected */
	v4_tcp(&f, "203.0.113.2", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_PASS);
}

static void test_ban_v6(void **state)
{
	struct frame f;

	(void)state;
	v6_tcp(&f, "2001:db8:bad::1", 22, TCP_SYN, NULL);
	check_permanent_ban("2001:db8:bad::1", &f);
	v6_tcp(&f, "2001:db8:bad::2", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_PASS);
}

/* Banned sources are dropped whatever they carry: UDP, VLAN-tagged, a non-first fragment. */
static void test_ban_any_traffic(void **state)
{
	struct frame f;

	(void)state;
	ban_add("203.0.113.3", 0);
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.3", "192.0.2.1", IPPROTO_UDP, 0, 0);
	put_udp(&f, 1, 53);
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_DROP);
	vlan_v4_tcp(&f, "203.0.113.3", TCP_ACK);
	assert_int_equal(run(&f), XDP_DROP);
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.3", "192.0.2.1", IPPROTO_TCP, 0, 100);
	put_str(&f, "fragment body");
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(ban_get("203.0.113.3").drops, 3);
	expect_counters(.rx_seen = 3, .rx_drop_ban = 3, .events = 3);
}

/* The first drop of a ban is reported, then one every drop_sample_mask + 1 drops. */
static void test_ban_drop_sampling(void **state)
{
	struct ebpfmon_settings set = {.drop_sample_mask = 3};
	struct frame f;
	uint64_t t0 = xh_boot_ns();

	(void)state;
	assert_int_equal(xh_settings_set(skel, &set), 0);
	ban_add("203.0.113.4", 0);
	v4_tcp(&f, "203.0.113.4", 22, TCP_SYN, NULL);
	for (int i = 0; i < 9; i++)
		assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(ban_get("203.0.113.4").drops, 9);
	assert_int_equal(events_read(), 3);
	check_ban_drop_event(0, "203.0.113.4", 1, 0, t0, xh_boot_ns());
	check_ban_drop_event(1, "203.0.113.4", 5, 0, t0, xh_boot_ns());
	check_ban_drop_event(2, "203.0.113.4", 9, 0, t0, xh_boot_ns());
	expect_counters(.rx_seen = 9, .rx_drop_ban = 9, .events = 3);
}

/* The kernel honours expiry by itself: an expired ban stops dropping. */
static void test_ban_expired(void **state)
{
	struct frame f4, f6;

	(void)state;
	ban_add("203.0.113.5", xh_boot_ns() - 1000000000ull);
	ban_add("2001:db8:bad::5", xh_boot_ns() - 1000000000ull);
	v4_tcp(&f4, "203.0.113.5", 22, TCP_SYN, NULL);
	v6_tcp(&f6, "2001:db8:bad::5", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f4), XDP_PASS);
	assert_int_equal(run(&f6), XDP_PASS);
	assert_int_equal(ban_get("203.0.113.5").drops, 0);
	assert_int_equal(stats_of("203.0.113.5").rx_packets, 1);
	assert_int_equal(stats_of("2001:db8:bad::5").rx_packets, 1);
	expect_counters(.rx_seen = 2, .rx_passed = 2);
	assert_int_equal(events_read(), 0);
}

static void test_ban_future_deadline(void **state)
{
	struct frame f;

	(void)state;
	ban_add("203.0.113.6", xh_boot_ns() + 3600ull * 1000000000ull);
	v4_tcp(&f, "203.0.113.6", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(ban_get("203.0.113.6").drops, 1);
	expect_counters(.rx_seen = 1, .rx_drop_ban = 1, .events = 1);
	assert_int_equal(events_read(), 1);
	check_ban_drop_event(0, "203.0.113.6", 1, 0, 0, UINT64_MAX);
}

/*
 * A deadline near enough that the coarse clock could misjudge it is checked on the precise
 * one: the ban drops until its deadline and not a packet after.
 */
static void test_ban_deadline_near(void **state)
{
	struct frame f;
	uint64_t deadline = xh_boot_ns() + 30000000ull; /* 30 ms */
	struct timespec ts = {.tv_nsec = 1000000};

	(void)state;
	ban_add("203.0.113.8", deadline);
	v4_tcp(&f, "203.0.113.8", 22, TCP_SYN, NULL);
	/* Before the deadline: dropped. (Checked by time, not by count: the machine may stall.) */
	while (xh_boot_ns() + 2000000ull < deadline) {
		assert_int_equal(run(&f), XDP_DROP);
		nanosleep(&ts, NULL);
	}
	while (xh_boot_ns() <= deadline)
		nanosleep(&ts, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	/* A ban rewritten with a deadline in the past stops at once. */
	ban_add("203.0.113.8", xh_boot_ns() + 3600ull * 1000000000ull);
	assert_int_equal(run(&f), XDP_DROP);
	ban_add("203.0.113.8", xh_boot_ns() - 1);
	assert_int_equal(run(&f), XDP_PASS);
}

static void test_ban_net_v4(void **state)
{
	struct frame in, out;

	(void)state;
	ban_net_add("203.0.113.0", 24, 0);
	v4_tcp(&in, "203.0.113.77", 22, TCP_SYN, NULL);
	v4_tcp(&out, "203.0.114.77", 22, TCP_SYN, NULL);

	/* without EBPFMON_F_BAN_NETS the trie is not consulted */
	assert_int_equal(run(&in), XDP_PASS);
	expect_counters(.rx_seen = 1, .rx_passed = 1);

	settings(EBPFMON_F_BAN_NETS, 0, 0);
	assert_int_equal(xh_counters_zero(skel), 0);
	assert_int_equal(run(&in), XDP_DROP);
	assert_int_equal(run(&out), XDP_PASS);
	assert_int_equal(ban_net_get("203.0.113.0", 24).drops, 1);
	expect_counters(.rx_seen = 2, .rx_passed = 1, .rx_drop_net = 1, .events = 1);
	assert_int_equal(events_read(), 1);
	check_ban_drop_event(0, "203.0.113.77", 1, 1, 0, UINT64_MAX);
}

/* ---- the note of "no ban" on tracked addresses (ip_stats.ban_note) ------------------------ */

static struct ebpfmon_settings settings_now(void)
{
	struct ebpfmon_settings set;
	__u32 zero = 0;

	assert_int_equal(bpf_map__lookup_elem(skel->maps.settings, &zero, sizeof(zero), &set,
					      sizeof(set), 0),
			 0);
	return set;
}

static __u32 ban_gen_now(void)
{
	return settings_now().ban_gen;
}

/* A tracked address passes; the analyzer bans it (ban, then ban_gen): the next packet drops. */
static void test_ban_note_ban_drops_next(void **state)
{
	uint64_t t0 = xh_coarse_ns(), t1;
	struct ebpfmon_ip_stats st;
	struct frame f;

	(void)state;
	v4_tcp(&f, "198.51.100.60", 443, TCP_ACK, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(run(&f), XDP_PASS);
	t1 = xh_coarse_ns();
	/* the note: this generation, good for at most EBPFMON_BAN_NOTE_NS */
	st = stats_of("198.51.100.60");
	{
		struct ebpfmon_addr a = pkt_addr("198.51.100.60");

		assert_int_equal(
			st.ban_note & EBPFMON_BAN_GEN_MASK,
			(ban_gen_now() ^ ebpfmon_ban_note_key(&a, settings_now().note_seed)) &
				EBPFMON_BAN_GEN_MASK);
	}
	assert_true((st.ban_note & ~EBPFMON_BAN_GEN_MASK) > t0);
	assert_true((st.ban_note & ~EBPFMON_BAN_GEN_MASK) <= t1 + EBPFMON_BAN_NOTE_NS);

	ban_add("198.51.100.60", 0);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(ban_get("198.51.100.60").drops, 1);
	assert_int_equal(stats_of("198.51.100.60").rx_packets, 2);
	expect_counters(.rx_seen = 3, .rx_passed = 2, .rx_drop_ban = 1, .events = 1);
}

/*
 * A ban written without growing ban_gen (bpftool map update) on an address with a fresh note:
 * the note is trusted until its deadline, then the ban drops.
 */
static void test_ban_note_bpftool_ban_bounded(void **state)
{
	struct timespec ts = {.tv_sec = EBPFMON_BAN_NOTE_NS / 1000000000ull,
			      .tv_nsec = 50 * 1000000};
	struct frame f;

	(void)state;
	v4_tcp(&f, "198.51.100.61", 443, TCP_ACK, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	ban_add_quiet("198.51.100.61", 0);
	/* within the note's time: bans is not looked up */
	assert_int_equal(run(&f), XDP_PASS);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(ban_get("198.51.100.61").drops, 2);
	/* an address without a note (not tracked) is looked up at its first packet */
	ban_add_quiet("198.51.100.62", 0);
	v4_tcp(&f, "198.51.100.62", 443, TCP_ACK, NULL);
	assert_int_equal(run(&f), XDP_DROP);
}

/*
 * A note is about the address it was made for. An ip_stats element that LRU reuses for
 * another address while XDP holds it can get the note XDP made for the old address (made at
 * the current ban_gen): that note must not spare the new address, banned, from a lookup.
 */
static void test_ban_note_other_address(void **state)
{
	struct ebpfmon_addr x = pkt_addr("198.51.100.64"), y = pkt_addr("198.51.100.65");
	struct ebpfmon_ip_stats st;
	struct frame fx, fy;

	(void)state;
	ban_add("198.51.100.65", 0);
	v4_tcp(&fx, "198.51.100.64", 443, TCP_ACK, NULL);
	v4_tcp(&fy, "198.51.100.65", 443, TCP_ACK, NULL);
	assert_int_equal(run(&fx), XDP_PASS);
	st = stats_of("198.51.100.64");
	assert_true(st.ban_note != 0);
	/* the element of x, note and all, now under y's key */
	assert_int_equal(bpf_map__delete_elem(skel->maps.ip_stats, &x, sizeof(x), 0), 0);
	assert_int_equal(
		bpf_map__update_elem(skel->maps.ip_stats, &y, sizeof(y), &st, sizeof(st), BPF_ANY),
		0);
	assert_int_equal(run(&fy), XDP_DROP);
	assert_int_equal(ban_get("198.51.100.65").drops, 1);
	/* the IPv6 halves count too: an address in another /64 with the same interface id */
	ban_add("2001:db8:0:2::5", 0);
	v6_tcp(&fx, "2001:db8:0:1::5", 443, TCP_ACK, NULL);
	v6_tcp(&fy, "2001:db8:0:2::5", 443, TCP_ACK, NULL);
	x = pkt_addr("2001:db8:0:1::5");
	y = pkt_addr("2001:db8:0:2::5");
	assert_int_equal(run(&fx), XDP_PASS);
	st = stats_of("2001:db8:0:1::5");
	assert_int_equal(bpf_map__delete_elem(skel->maps.ip_stats, &x, sizeof(x), 0), 0);
	assert_int_equal(
		bpf_map__update_elem(skel->maps.ip_stats, &y, sizeof(y), &st, sizeof(st), BPF_ANY),
		0);
	assert_int_equal(run(&fy), XDP_DROP);
}

/*
 * A flood from many banned sources in turn, with clean tracked packets among them: bans are
 * then looked up first (a hint, struct drop_memo_slot), and every verdict and count stays
 * what it is without the flood: each ban counts its drops, each clean packet is counted on its
 * address, a ban the analyzer writes during the flood drops the next packet, and once the flood
 * is over a clean address keeps its note.
 */
static void test_ban_flood_many_sources(void **state)
{
	static const char *const banned[] = {"203.0.113.101", "203.0.113.102", "203.0.113.103",
					     "2001:db8:bad::104"};
	struct frame fb[4], fc, fn;
	uint64_t t0 = xh_coarse_ns();

	(void)state;
	for (int i = 0; i < 4; i++) {
		ban_add(banned[i], 0);
		if (i < 3)
			v4_tcp(&fb[i], banned[i], 443, TCP_SYN, NULL);
		else
			v6_tcp(&fb[i], banned[i], 443, TCP_SYN, NULL);
	}
	v4_tcp(&fc, "198.51.100.70", 443, TCP_ACK, NULL);
	v4_tcp(&fn, "198.51.100.71", 443, TCP_ACK, NULL);
	assert_int_equal(run(&fn), XDP_PASS); /* tracked, with a note, before the flood */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 4; i++)
			assert_int_equal(run(&fb[i]), XDP_DROP);
		assert_int_equal(run(&fc), XDP_PASS);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(ban_get(banned[i]).drops, 5);
	assert_int_equal(stats_of("198.51.100.70").rx_packets, 5);
	assert_false(stats_exist("203.0.113.101")); /* dropped before it is counted */
	/* banned by the analyzer during the flood: its next packet drops */
	ban_add("198.51.100.71", 0);
	assert_int_equal(run(&fn), XDP_DROP);
	expect_counters(.rx_seen = 27, .rx_passed = 6, .rx_drop_ban = 21, .events = 21);
	/* the flood is over: clean packets pass and leave their note */
	for (int i = 0; i < 8; i++)
		assert_int_equal(run(&fc), XDP_PASS);
	assert_int_equal(stats_of("198.51.100.70").rx_packets, 13);
	assert_true((stats_of("198.51.100.70").ban_note & ~EBPFMON_BAN_GEN_MASK) > t0);
}

/* Unbanned (the entry deleted, ban_gen left alone): the very next packet passes. */
static void test_ban_note_unban_passes(void **state)
{
	struct ebpfmon_addr a = pkt_addr("198.51.100.63");
	struct frame f;

	(void)state;
	v4_tcp(&f, "198.51.100.63", 443, TCP_ACK, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	ban_add("198.51.100.63", 0);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(bpf_map__delete_elem(skel->maps.bans, &a, sizeof(a), 0), 0);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 4, .rx_passed = 3, .rx_drop_ban = 1, .events = 1);
	/* counted again once it passes (after a drop it is looked up in bans first) */
	assert_int_equal(stats_of("198.51.100.63").rx_packets, 3);
	assert_true(stats_of("198.51.100.63").ban_note != 0);
}

/*
 * A network ban over tracked addresses drops their next packets; an allowlisted address inside
 * it keeps passing, counted as allowed on every packet (no note is made for it).
 */
static void test_ban_note_net_ban(void **state)
{
	struct ebpfmon_lpm_key net = pkt_lpm_key("203.0.113.0", 24);
	struct ebpfmon_ban ban = {0};
	struct frame in, allowed, out;

	(void)state;
	settings(EBPFMON_F_BAN_NETS, 0, 0);
	allow_add("203.0.113.200", 32);
	v4_tcp(&in, "203.0.113.20", 443, TCP_ACK, NULL);
	v4_tcp(&allowed, "203.0.113.200", 443, TCP_ACK, NULL);
	v4_tcp(&out, "203.0.114.20", 443, TCP_ACK, NULL);
	assert_int_equal(run(&in), XDP_PASS);
	assert_int_equal(run(&allowed), XDP_PASS);
	assert_int_equal(run(&out), XDP_PASS);

	ban_net_add("203.0.113.0", 24, 0);
	assert_int_equal(run(&in), XDP_DROP);
	assert_int_equal(run(&allowed), XDP_PASS);
	assert_int_equal(run(&out), XDP_PASS);
	assert_int_equal(run(&in), XDP_DROP);
	assert_int_equal(run(&allowed), XDP_PASS);
	assert_int_equal(ban_net_get("203.0.113.0", 24).drops, 2);
	expect_counters(.rx_seen = 8, .rx_passed = 6, .rx_drop_net = 2, .rx_allowed = 2,
			.events = 2);

	/* ban_nets written alone, then switched on after the notes were made: the settings
	 * write grows ban_gen */
	assert_true(xh_map_clear(skel->maps.ban_nets) >= 0);
	settings(0, 0, 0);
	v4_tcp(&in, "203.0.113.21", 443, TCP_ACK, NULL);
	assert_int_equal(run(&in), XDP_PASS);
	assert_int_equal(bpf_map__update_elem(skel->maps.ban_nets, &net, sizeof(net), &ban,
					      sizeof(ban), BPF_ANY),
			 0);
	settings(EBPFMON_F_BAN_NETS, 0, 0);
	assert_int_equal(run(&in), XDP_DROP);
}

static void test_ban_net_v6(void **state)
{
	struct frame in, out;

	(void)state;
	settings(EBPFMON_F_BAN_NETS, 0, 0);
	ban_net_add("2001:db8:bad::", 48, 0);
	ban_net_add("2001:db8:dead::", 48, xh_boot_ns() - 1000000000ull); /* expired */
	v6_tcp(&in, "2001:db8:bad:1::9", 22, TCP_SYN, NULL);
	v6_tcp(&out, "2001:db8:dead::9", 22, TCP_SYN, NULL);
	assert_int_equal(run(&in), XDP_DROP);
	assert_int_equal(run(&out), XDP_PASS);
	expect_counters(.rx_seen = 2, .rx_passed = 1, .rx_drop_net = 1, .events = 1);
	assert_int_equal(events_read(), 1);
	check_ban_drop_event(0, "2001:db8:bad:1::9", 1, 1, 0, UINT64_MAX);
}

static void test_allowlist_overrides_ban(void **state)
{
	struct frame f4, f6;

	(void)state;
	ban_add("198.18.0.7", 0);
	ban_add("2001:db8:a11::7", 0);
	allow_add("198.18.0.0", 15);
	allow_add("2001:db8:a11::", 48);
	v4_tcp(&f4, "198.18.0.7", 22, TCP_SYN, NULL);
	v6_tcp(&f6, "2001:db8:a11::7", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f4), XDP_PASS);
	assert_int_equal(run(&f6), XDP_PASS);
	assert_int_equal(ban_get("198.18.0.7").drops, 0);
	assert_int_equal(stats_of("198.18.0.7").rx_packets, 1);
	assert_int_equal(stats_of("2001:db8:a11::7").rx_packets, 1);
	expect_counters(.rx_seen = 2, .rx_passed = 2, .rx_allowed = 2);
	assert_int_equal(events_read(), 0);
}

/*
 * XDP notes in a ban that allow_nets does not cover its address, and looks again only when
 * allow_nets gains an entry: what the loader and the analyzer apply (mapconf_apply) makes
 * such a ban pass from the next packet on, whether it writes the settings or not.
 */
static void test_allowlist_added_after_ban(void **state)
{
	static const char *const addrs[] = {"198.18.5.7", "2001:db8:a12::7"};
	static const char *const nets[] = {"198.18.5.0/24", "2001:db8:a12::/48"};
	struct mapconf_fds fds = {.settings = bpf_map__fd(skel->maps.settings),
				  .allow_nets = bpf_map__fd(skel->maps.allow_nets),
				  .url_rules = bpf_map__fd(skel->maps.url_rules),
				  .ban_nets = bpf_map__fd(skel->maps.ban_nets)};
	static struct config cfg;
	struct frame f[2];
	struct ebpfmon_settings set;
	uint32_t zero = 0;

	(void)state;
	config_defaults(&cfg);
	for (int i = 0; i < 2; i++) {
		ban_add(addrs[i], 0);
		if (i == 0)
			v4_tcp(&f[i], addrs[i], 22, TCP_SYN, NULL);
		else
			v6_tcp(&f[i], addrs[i], 22, TCP_SYN, NULL);
		assert_int_equal(run(&f[i]), XDP_DROP);
		assert_int_equal(run(&f[i]), XDP_DROP);
		assert_int_equal(ban_get(addrs[i]).allow_gen, EBPFMON_BAN_ALLOW_CHECKED);
	}
	/* The same allowlist again adds nothing: the notes stay. */
	assert_int_equal(mapconf_apply(&fds, &cfg, MAPCONF_RULES | MAPCONF_SETTINGS), 0);
	assert_int_equal(run(&f[0]), XDP_DROP);
	assert_int_equal(mapconf_apply(&fds, &cfg, MAPCONF_RULES | MAPCONF_SETTINGS), 0);
	assert_int_equal(bpf_map__lookup_elem(skel->maps.settings, &zero, sizeof(zero), &set,
					      sizeof(set), 0),
			 0);
	assert_int_equal(run(&f[0]), XDP_DROP);
	assert_int_equal(ban_get(addrs[0]).allow_gen, EBPFMON_BAN_ALLOW_CHECKED | set.allow_gen);

	/* The IPv4 network through a loader (rules only), the IPv6 one through an analyzer. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(run(&f[i]), XDP_DROP); /* noted at the generation of now */
		assert_int_equal(cidr_parse(nets[i], &cfg.allowlist[cfg.n_allowlist]), 0);
		cfg.n_allowlist++;
		assert_int_equal(
			mapconf_apply(&fds, &cfg,
				      i == 0 ? MAPCONF_RULES : MAPCONF_RULES | MAPCONF_SETTINGS),
			0);
		assert_int_equal(run(&f[i]), XDP_PASS);
	}
	assert_int_equal(ban_get(addrs[0]).drops, 5);
	assert_int_equal(ban_get(addrs[1]).drops, 3);
	/* events: every drop before the configuration's drop_sample_mask, none after */
	expect_counters(.rx_seen = 10, .rx_passed = 2, .rx_allowed = 2, .rx_drop_ban = 8,
			.events = 4);
}

static void test_allowlist_overrides_ban_net(void **state)
{
	struct frame f;

	(void)state;
	settings(EBPFMON_F_BAN_NETS, 0, 0);
	ban_net_add("198.18.0.0", 16, 0);
	allow_add("198.18.1.1", 32);
	v4_tcp(&f, "198.18.1.1", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	v4_tcp(&f, "198.18.1.2", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_DROP);
	expect_counters(.rx_seen = 2, .rx_passed = 1, .rx_allowed = 1, .rx_drop_net = 1,
			.events = 1);
}

/* ---- URL rules ------------------------------------------------------------------------- */

static void check_url_event(size_t i, const char *src, uint32_t rule_id, uint32_t action,
			    uint16_t dport, const char *path, size_t path_len)
{
	const struct ebpfmon_ev_url_hit *ev = &evlog.ev[i].url;
	struct ebpfmon_addr a = pkt_addr(src);

	assert_int_equal(evlog.size[i], sizeof(*ev));
	assert_int_equal(ev->hdr.type, EBPFMON_EV_URL_HIT);
	assert_int_equal(ev->hdr.len, sizeof(*ev));
	assert_true(ev->hdr.ts_ns > 0 && ev->hdr.ts_ns <= xh_boot_ns());
	assert_memory_equal(ev->addr.a, a.a, sizeof(a.a));
	assert_int_equal(ev->rule_id, rule_id);
	assert_int_equal(ev->action, action);
	assert_int_equal(ev->dport, dport);
	assert_int_equal(ev->path_len, path_len);
	assert_memory_equal(ev->path, path, path_len);
}

static void url_setup(__u32 extra_flags)
{
	settings(EBPFMON_F_URL_MATCH | extra_flags, 80, 8080);
	url_rule("/wp-admin", 10, EBPFMON_URL_DROP);
	url_rule("/.env", 11, EBPFMON_URL_DROP);
	url_rule("/phpmyadmin", 12, EBPFMON_URL_REPORT);
}

static void test_url_drop(void **state)
{
	struct frame f;
	struct ebpfmon_ip_stats st;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.100", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_DROP);
	expect_counters(.rx_seen = 1, .rx_drop_url = 1, .url_hits = 1, .events = 1, .url_lines = 1);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "203.0.113.100", 10, EBPFMON_URL_DROP, 80, "/wp-admin/x", 11);
	/* the packet was seen before it was judged */
	st = stats_of("203.0.113.100");
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, f.len);

	/* the last http_ports slot counts as well */
	v4_tcp(&f, "203.0.113.100", 8080, TCP_ACK | TCP_PSH, HTTP_REQ("/.env"));
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 2);
	check_url_event(1, "203.0.113.100", 11, EBPFMON_URL_DROP, 8080, "/.env", 5);
}

static void test_url_report(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.101", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/phpmyadmin/index.php?a=1"));
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 1, .rx_passed = 1, .url_hits = 1, .events = 1, .url_lines = 1);
	assert_int_equal(events_read(), 1);
	/* the query is not part of the path */
	check_url_event(0, "203.0.113.101", 12, EBPFMON_URL_REPORT, 80, "/phpmyadmin/index.php",
			21);
}

static void test_url_miss(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.102", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/index.html"));
	assert_int_equal(run(&f), XDP_PASS);
	/* a prefix of a rule is not a hit: "/wp" is shorter than "/wp-admin" */
	v4_tcp(&f, "203.0.113.102", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp"));
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 2, .rx_passed = 2, .url_lines = 2);
	assert_int_equal(events_read(), 0);
	assert_int_equal(stats_of("203.0.113.102").rx_packets, 2);
}

/* Not an HTTP port, or URL matching off: the request line is not looked at. */
static void test_url_not_matched_off_port_or_off(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.103", 22, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_PASS);
	/* the same request, from port 80 (a server's reply direction) to port 40000 */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.103", "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(&f, 80, 40000, TCP_ACK);
	put_str(&f, HTTP_REQ("/wp-admin/x"));
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);
	/* UDP to port 80 */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.103", "192.0.2.1", IPPROTO_UDP, 0, 0);
	put_udp(&f, 1, 80);
	put_str(&f, HTTP_REQ("/wp-admin/x"));
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_PASS);

	settings(0, 80, 8080); /* EBPFMON_F_URL_MATCH off */
	v4_tcp(&f, "203.0.113.103", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_PASS);

	expect_counters(.rx_seen = 4, .rx_passed = 4);
	assert_int_equal(events_read(), 0);
}

static void test_url_dry_run(void **state)
{
	struct frame f;

	(void)state;
	url_setup(EBPFMON_F_DRY_RUN);
	v4_tcp(&f, "203.0.113.104", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 1, .rx_passed = 1, .url_hits = 1, .events = 1, .url_lines = 1,
			.rx_would_drop = 1);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "203.0.113.104", 10, EBPFMON_URL_REPORT, 80, "/wp-admin/x", 11);
	assert_int_equal(evlog.ev[0].url.flags, EBPFMON_URL_HIT_DRY_RUN);

	/* a ban in force drops nothing either: it counts what it would have dropped */
	ban_add("203.0.113.104", 0);
	v4_tcp(&f, "203.0.113.104", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(ban_get("203.0.113.104").would_drops, 2);
	assert_int_equal(ban_get("203.0.113.104").drops, 0);
	expect_counters(.rx_seen = 3, .rx_passed = 3, .url_hits = 1, .events = 1, .url_lines = 1,
			.rx_would_drop = 3);
}

static void test_url_allowlisted(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	allow_add("198.18.0.0", 15);
	v4_tcp(&f, "198.18.3.4", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 1, .rx_passed = 1, .url_hits = 1, .events = 1, .url_lines = 1);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "198.18.3.4", 10, EBPFMON_URL_REPORT, 80, "/wp-admin/x", 11);
}

/* Only a request line (a method token, spaces, an origin or absolute target) is matched. */
static void test_url_not_a_request_line(void **state)
{
	static const char *const payloads[] = {
		"get /wp-admin/x HTTP/1.1\r\n\r\n",			 /* lower-case method */
		"Get /wp-admin/x HTTP/1.1\r\n\r\n",			 /* mixed case */
		"GET wp-admin/x HTTP/1.1\r\n\r\n",			 /* no leading slash */
		"GET */wp-admin HTTP/1.1\r\n\r\n",			 /* asterisk form */
		"CONNECT h:80/wp-admin HTTP/1.1\r\n",			 /* authority form */
		"\x16\x03\x01\x02\x10\x01\x02\x01\xfc\x03\x03/wp-admin", /* TLS ClientHello */
		"HTTP/1.1 200 OK\r\n\r\n/wp-admin",			 /* a response */
		"xGET /wp-admin/x HTTP/1.1\r\n",
	};

	(void)state;
	url_setup(0);
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		struct frame f;

		v4_tcp(&f, "203.0.113.105", 80, TCP_ACK | TCP_PSH, payloads[i]);
		if (run(&f) != XDP_PASS)
			fail_msg("payload %zu (%.12s...) was dropped", i, payloads[i]);
		if (events_read() != 0)
			fail_msg("payload %zu (%.12s...) was reported", i, payloads[i]);
	}
	expect_counters(.rx_seen = 8, .rx_passed = 8);
}

/* Other methods: seven letters is the longest ("OPTIONS"), three the shortest. */
static void test_url_other_methods(void **state)
{
	static const char *const reqs[] = {
		"POST /wp-admin/a HTTP/1.1\r\n\r\n",
		"OPTIONS /wp-admin/a HTTP/1.1\r\n\r\n",
		"PUT /wp-admin/a HTTP/1.1\r\n\r\n",
		"HEAD /wp-admin/a HTTP/1.0\r\n\r\n",
	};

	(void)state;
	url_setup(0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct frame f;

		v4_tcp(&f, "203.0.113.106", 80, TCP_ACK | TCP_PSH, reqs[i]);
		if (run(&f) != XDP_DROP)
			fail_msg("request %zu (%.12s...) was not dropped", i, reqs[i]);
		assert_int_equal(events_read(), i + 1);
		check_url_event(i, "203.0.113.106", 10, EBPFMON_URL_DROP, 80, "/wp-admin/a", 11);
	}
}

/* v4_tcp() with the TCP sequence number seq. */
static void v4_tcp_seq(struct frame *f, const char *src, uint32_t seq, const char *payload)
{
	v4_tcp(f, src, 80, TCP_ACK, payload);
	frame_set_tcp_seq(f, seq);
}

/*
 * A request line cut by the end of a segment is completed from the next segment of the flow
 * (the one whose sequence number follows), however it is cut; its retransmission is judged
 * the same way, and a segment out of sequence does not resume it.
 */
static void test_url_split_request(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	v4_tcp_seq(&f, "203.0.113.107", 1000, "GET /wp");
	assert_int_equal(run(&f), XDP_PASS); /* "/wp/../index.html" would be harmless */
	v4_tcp_seq(&f, "203.0.113.107", 1007, "-admin/ HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "203.0.113.107", 10, EBPFMON_URL_DROP, 80, "/wp-admin/", 10);
	assert_int_equal(evlog.ev[0].url.flags, EBPFMON_URL_HIT_SPLIT);
	assert_int_equal(evlog.ev[0].url.seq, 1000); /* where the request line began */
	assert_int_equal(evlog.ev[0].url.sport, 40000);
	/* the client retransmits the dropped segment: dropped again, the same request */
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 2);
	assert_int_equal(evlog.ev[1].url.seq, 1000);

	/* cut inside the method */
	v4_tcp_seq(&f, "203.0.113.107", 5000, "GE");
	assert_int_equal(run(&f), XDP_PASS);
	v4_tcp_seq(&f, "203.0.113.107", 5002, "T /.env HTTP/1.1\r\n\r\n");
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 3);
	check_url_event(2, "203.0.113.107", 11, EBPFMON_URL_DROP, 80, "/.env", 5);

	/* one byte at a time, escapes and dot segments cut anywhere */
	{
		const char *req = "GET /static/%2E%2e/wp%2dadmin/ HTTP/1.1\r\n\r\n";
		uint32_t seq = 9000;

		for (size_t i = 0; req[i]; i++, seq++) {
			char one[2] = {req[i], 0};

			v4_tcp_seq(&f, "203.0.113.107", seq, one);
			if (run(&f) != (req[i] == ' ' && i > 20 ? XDP_DROP : XDP_PASS))
				fail_msg("byte %zu ('%c') judged wrongly", i, req[i]);
		}
		assert_int_equal(events_read(), 4);
		check_url_event(3, "203.0.113.107", 10, EBPFMON_URL_DROP, 80, "/wp-admin/", 10);
	}

	/* a segment that does not follow (a forgery, or out of order) resumes nothing */
	v4_tcp_seq(&f, "203.0.113.107", 20000, "GET /wp");
	assert_int_equal(run(&f), XDP_PASS);
	v4_tcp_seq(&f, "203.0.113.107", 20100, "-admin/ HTTP/1.1\r\n\r\n");
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(events_read(), 4);
}

/*
 * A long request line is resumed by the next segment of the flow (its sequence number
 * follows), also when that is retransmitted; a segment out of sequence resumes nothing, and a
 * segment that takes the same place without ending inside a line leaves nothing behind.
 */
static void test_url_long_line_resumed(void **state)
{
	char first[1200];
	struct frame f;
	uint32_t n;

	(void)state;
	url_setup(0);
	n = (uint32_t)snprintf(first, sizeof(first), "GET /");
	memset(first + n, 'a', 1100);
	n += 1100;
	first[n] = '\0';
	v4_tcp_seq(&f, "203.0.113.108", 1000, first);
	assert_int_equal(run(&f), XDP_PASS);
	v4_tcp_seq(&f, "203.0.113.108", 1000 + n, "/../wp-admin/ HTTP/1.1\r\n\r\n");
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(run(&f), XDP_DROP); /* its retransmission */
	assert_int_equal(events_read(), 2);
	check_url_event(0, "203.0.113.108", 10, EBPFMON_URL_DROP, 80, "/wp-admin/", 10);
	assert_int_equal(evlog.ev[0].url.flags, EBPFMON_URL_HIT_SPLIT);
	assert_int_equal(evlog.ev[0].url.seq, 1000);

	/* out of sequence: nothing to resume */
	v4_tcp_seq(&f, "203.0.113.108", 50000, first);
	assert_int_equal(run(&f), XDP_PASS);
	v4_tcp_seq(&f, "203.0.113.108", 50000 + n + 100, "/../wp-admin/ HTTP/1.1\r\n\r\n");
	assert_int_equal(run(&f), XDP_PASS);

	/* the same place taken by a segment that ends between lines: the saved line is gone */
	v4_tcp_seq(&f, "203.0.113.108", 90000, first);
	assert_int_equal(run(&f), XDP_PASS);
	memset(first, '\n', n);
	v4_tcp_seq(&f, "203.0.113.108", 90000, first);
	assert_int_equal(run(&f), XDP_PASS);
	v4_tcp_seq(&f, "203.0.113.108", 90000 + n, "/../wp-admin/ HTTP/1.1\r\n\r\n");
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(events_read(), 2);
}

/* TCP urgent data to an HTTP port is dropped: the server never reads the urgent byte. */
static void test_url_urgent_dropped(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.109", 80, TCP_ACK | 0x20, "X");
	assert_int_equal(run(&f), XDP_DROP);
	v4_tcp(&f, "203.0.113.109", 22, TCP_ACK | 0x20, "X");
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 2, .rx_passed = 1, .url_urgent = 1);
}

/* The request target as nginx routes it: every walk-around of a raw-byte match is a hit. */
static void test_url_canonical(void **state)
{
	static const struct {
		const char *req, *path;
	} cases[] = {
		{"GET //wp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET /./wp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET /wp%2dadmin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET /%2fwp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET /%2eenv HTTP/1.1\r\n", "/.env"},
		{"GET  /wp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET \t /wp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET http://198.18.0.1/wp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET HTTPS://user@h:8080//./wp-admin HTTP/1.1\r\n", "/wp-admin"},
		{"GET /static/../wp-admin/ HTTP/1.1\r\n", "/wp-admin/"},
		{"GET /../../wp-admin HTTP/1.1\r\n", "/wp-admin"},
		{"GET /a/b/%2e%2E/../wp-admin HTTP/1.1\r\n", "/wp-admin"},
		{"GET /wp-admin?x=/index.html HTTP/1.1\r\n", "/wp-admin"},
		{"GET /wp-admin#frag HTTP/1.1\r\n", "/wp-admin"},
		{"GET /wp-admin%3f.css HTTP/1.1\r\n", "/wp-admin?.css"},
		{"GET /wp-admin/. HTTP/1.1\r\n", "/wp-admin/"},
		{"GET /wp-admin/x/.. HTTP/1.1\r\n", "/wp-admin/"},
		{"\r\n\r\nGET /.env HTTP/1.1\r\n", "/.env"},
		{"GET /.env\r\n", "/.env"},
		{"PROPFIND /wp-admin HTTP/1.1\r\n", "/wp-admin"},
		{"GE /wp-admin HTTP/1.1\r\n", "/wp-admin"},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA /wp-admin\r\n",
		 "/wp-admin"}, /* a method of any length: a proxy passes it on */
	};

	(void)state;
	url_setup(0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct frame f;

		v4_tcp(&f, "203.0.113.120", 80, TCP_ACK, cases[i].req);
		if (run(&f) != XDP_DROP)
			fail_msg("case %zu (%s) was not dropped", i, cases[i].req);
		assert_int_equal(events_read(), i + 1);
		check_url_event(i, "203.0.113.120", strcmp(cases[i].path, "/.env") ? 10 : 11,
				EBPFMON_URL_DROP, 80, cases[i].path, strlen(cases[i].path));
	}

	/* and what is not the protected path stays unprotected */
	{
		static const char *const misses[] = {
			"GET /wp-admin/../index.html HTTP/1.1\r\n",
			"GET /wp%252dadmin/ HTTP/1.1\r\n", /* decoded once: "/wp%2dadmin/" */
			"GET /WP-ADMIN/ HTTP/1.1\r\n",	   /* case-sensitive unless configured */
			"GET /wp-admin%00 HTTP/1.1\r\n",   /* hmm: ends at the NUL: "/wp-admin" */
		};
		struct frame f;

		for (size_t i = 0; i < 3; i++) {
			v4_tcp(&f, "203.0.113.121", 80, TCP_ACK, misses[i]);
			if (run(&f) != XDP_PASS)
				fail_msg("miss %zu (%s) was dropped", i, misses[i]);
		}
		v4_tcp(&f, "203.0.113.121", 80, TCP_ACK, misses[3]);
		assert_int_equal(run(&f), XDP_DROP);
	}

	/* case-insensitive rules (stored lower-case) */
	settings(EBPFMON_F_URL_MATCH | EBPFMON_F_URL_NOCASE, 80, 0);
	{
		struct frame f;
		size_t n = events_read();

		v4_tcp(&f, "203.0.113.122", 80, TCP_ACK, "GET /WP-Admin/ HTTP/1.1\r\n");
		assert_int_equal(run(&f), XDP_DROP);
		assert_int_equal(events_read(), n + 1);
		check_url_event(n, "203.0.113.122", 10, EBPFMON_URL_DROP, 80, "/wp-admin/", 10);
	}
}

/*
 * Every request line of a segment is matched; past EBPFMON_URL_HITS_MAX hits they are counted,
 * not reported, and a drop rule among them still drops the segment. Many lines that hit
 * nothing (a Dockerfile, a shell script uploaded) pass.
 */
static void test_url_pipelined(void **state)
{
	char payload[1400];
	struct frame f;
	size_t n = 0;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.123", 80, TCP_ACK,
	       "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "203.0.113.123", 10, EBPFMON_URL_DROP, 80, "/wp-admin/", 10);

	/* a POST whose body ends in a line break, then the probe */
	v4_tcp(&f, "203.0.113.123", 80, TCP_ACK,
	       "POST /f HTTP/1.1\r\nContent-Length: 5\r\n\r\na=b\r\nGET /.env HTTP/1.1\r\n\r\n");
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 2);

	/* 40 harmless request-like lines and the probe: matched all the same */
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(payload + n, sizeof(payload) - n, "COPY /b%d /app\n", i);
	v4_tcp(&f, "203.0.113.124", 80, TCP_ACK, payload);
	assert_int_equal(run(&f), XDP_PASS);
	snprintf(payload + n, sizeof(payload) - n, "GET /wp-admin/ HTTP/1.1\r\n\r\n");
	v4_tcp(&f, "203.0.113.124", 80, TCP_ACK, payload);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 3);
	expect_counters(.rx_seen = 4, .rx_passed = 1, .rx_drop_url = 3, .url_hits = 3, .events = 3,
			.url_lines = 2 + 2 + 40 + 41);

	/* 16 reported hits of a report rule, then a drop rule's: not reported, still dropped */
	n = 0;
	for (int i = 0; i < EBPFMON_URL_HITS_MAX; i++)
		n += (size_t)snprintf(payload + n, sizeof(payload) - n,
				      "GET /phpmyadmin/%d HTTP/1.1\r\n\r\n", i);
	snprintf(payload + n, sizeof(payload) - n, "GET /.env HTTP/1.1\r\n\r\n");
	v4_tcp(&f, "203.0.113.125", 80, TCP_ACK, payload);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 3 + EBPFMON_URL_HITS_MAX);
	payload[n] = '\0'; /* the 16 report hits alone: passed */
	v4_tcp(&f, "203.0.113.125", 80, TCP_ACK, payload);
	assert_int_equal(run(&f), XDP_PASS);
	expect_counters(.rx_seen = 6, .rx_passed = 2, .rx_drop_url = 4,
			.url_hits = 3 + 2 * EBPFMON_URL_HITS_MAX,
			.events = 3 + 2 * EBPFMON_URL_HITS_MAX,
			.url_lines = 2 + 2 + 40 + 41 + 17 + 16, .url_hits_over = 1);
}

/*
 * A URL hit from a segment that belongs to no connection of this host (a spoofed source) is
 * never reported, so it bans nobody; a drop rule still drops it.
 */
static void test_url_unverified(void **state)
{
	struct ebpfmon *v = NULL;
	struct ebpfmon_settings set = {.flags = EBPFMON_F_URL_MATCH, .http_ports = {80}};
	struct ebpfmon_counters c;
	struct frame f;
	__u32 verdict = 0;

	(void)state;
	assert_int_equal(hook_load(&v, 0, true), 0);
	assert_int_equal(xh_settings_set(v, &set), 0);
	assert_int_equal(xh_url_rule_add(v, "/wp-admin", 1, EBPFMON_URL_DROP), 0);
	v4_tcp(&f, "198.19.77.53", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/"));
	assert_int_equal(hook_run(hook_fd(v), f.b, f.len, 1, 0, &verdict), 0);
	assert_int_equal(verdict, XDP_DROP);
	assert_int_equal(xh_counters(v, &c), 0);
	assert_int_equal(c.url_unverified, 1);
	assert_int_equal(c.url_hits, 0);
	assert_int_equal(c.events, 0);
	assert_int_equal(c.rx_drop_url, 1);
	ebpfmon__destroy(v);
}

#ifndef TCP_REPAIR
#define TCP_REPAIR	 19
#define TCP_REPAIR_QUEUE 20
#define TCP_QUEUE_SEQ	 21
#endif
#define REPAIR_RECV_QUEUE 1
#define REPAIR_SEND_QUEUE 2

/* A sequence number of queue q of fd, read in TCP repair mode (needs CAP_NET_ADMIN). */
static uint32_t repair_seq(int fd, int q)
{
	uint32_t seq = 0;
	socklen_t len = sizeof(seq);
	int on = 1;

	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)), 0);
	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)), 0);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &len), 0);
	return seq;
}

/* One TCP segment 127.0.0.1:cport -> 127.0.0.1:sport with seq, ack and payload: its verdict. */
static __u32 loopback_segment(int prog, uint16_t cport, uint16_t sport, uint32_t seq, uint32_t ack,
			      uint8_t flags, const char *payload)
{
	struct frame f;
	__u32 verdict = 0;

	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "127.0.0.1", "127.0.0.1", IPPROTO_TCP, 0, 0);
	put_tcp(&f, cport, sport, flags);
	put_str(&f, payload);
	frame_finish(&f);
	frame_set_tcp_seq(&f, seq);
	pkt_put16(f.b + f.tcp_off + 8, (uint16_t)(ack >> 16));
	pkt_put16(f.b + f.tcp_off + 10, (uint16_t)ack);
	assert_int_equal(hook_run(prog, f.b, f.len, 1, 0, &verdict), 0);
	return verdict;
}

/*
 * A hit in a segment of a real connection of this host (loopback in this namespace, which is
 * where BPF_PROG_TEST_RUN looks sockets up) is reported; the same bytes a window away from
 * what the socket expects, or with an acknowledgment it would refuse (RFC 5961), are not.
 */
static void test_url_verified_connection(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct ebpfmon_settings set = {.flags = EBPFMON_F_URL_MATCH};
	socklen_t alen = sizeof(a);
	struct ebpfmon_counters c;
	struct ebpfmon *v = NULL;
	uint16_t sport, cport;
	uint32_t seq, ack;
	int lfd, cfd, afd, prog;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	sport = ntohs(a.sin_port);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	alen = sizeof(a);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&a, &alen), 0);
	cport = ntohs(a.sin_port);
	/* what the server side expects next, and what it has sent */
	seq = repair_seq(cfd, REPAIR_SEND_QUEUE);
	ack = repair_seq(cfd, REPAIR_RECV_QUEUE);

	set.http_ports[0] = sport;
	assert_int_equal(hook_load(&v, 0, true), 0);
	prog = hook_fd(v);
	assert_int_equal(xh_settings_set(v, &set), 0);
	assert_int_equal(xh_url_rule_add(v, "/wp-admin", 1, EBPFMON_URL_DROP), 0);

	struct {
		uint32_t seq, ack;
		bool verified;
	} cases[] = {
		{seq, ack, true},
		{seq + 200000, ack, false},	/* far outside the receive window */
		{seq - 1000, ack, false},	/* before what the socket expects */
		{seq, ack + 100000000, false},	/* acknowledges what was never sent */
		{seq, ack - 0x40000000, false}, /* too old an acknowledgment */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(xh_counters_zero(v), 0);
		/* a drop rule drops either way */
		assert_int_equal(loopback_segment(prog, cport, sport, cases[i].seq, cases[i].ack,
						  TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/")),
				 XDP_DROP);
		assert_int_equal(xh_counters(v, &c), 0);
		if (c.url_hits != (cases[i].verified ? 1u : 0u) ||
		    c.url_unverified != (cases[i].verified ? 0u : 1u))
			fail_msg("case %zu: url_hits %" PRIu64 ", url_unverified %" PRIu64, i,
				 (uint64_t)c.url_hits, (uint64_t)c.url_unverified);
	}
	/*
	 * A split line is kept only from the segment the socket expects next: "GET /wp" at
	 * rcv_nxt is resumed by "-admin/..."; the same piece sent as an old duplicate is not.
	 */
	{
		static const char *const piece[2] = {"GET /wp", "-admin/ HTTP/1.1\r\n\r\n"};
		uint32_t at[2][2] = {{seq, seq + 7}, {seq - 7, seq}};

		for (int k = 0; k < 2; k++) {
			assert_int_equal(xh_counters_zero(v), 0);
			assert_int_equal(xh_map_clear(v->maps.http_flows) >= 0, 1);
			for (int j = 0; j < 2; j++)
				loopback_segment(prog, cport, sport, at[k][j], ack, TCP_ACK,
						 piece[j]);
			assert_int_equal(xh_counters(v, &c), 0);
			if (c.url_split != (k == 0 ? 1u : 0u))
				fail_msg("split %d: url_split %" PRIu64, k, (uint64_t)c.url_split);
		}
	}
	/*
	 * A line that began at rcv_nxt goes on being kept by the segments that resume it, also
	 * when rcv_nxt has not moved past them yet (here it never does: nothing is delivered).
	 */
	{
		static const char *const piece[3] = {"GET /w", "p", "-admin/ HTTP/1.1\r\n\r\n"};
		const uint32_t at[3] = {seq, seq + 6, seq + 7};

		assert_int_equal(xh_counters_zero(v), 0);
		assert_int_equal(xh_map_clear(v->maps.http_flows) >= 0, 1);
		for (int j = 0; j < 3; j++)
			assert_int_equal(
				loopback_segment(prog, cport, sport, at[j], ack, TCP_ACK, piece[j]),
				j == 2 ? XDP_DROP : XDP_PASS);
		assert_int_equal(xh_counters(v, &c), 0);
		if (c.url_split != 2 || c.url_hits != 1)
			fail_msg("three pieces: url_split %" PRIu64 ", url_hits %" PRIu64,
				 (uint64_t)c.url_split, (uint64_t)c.url_hits);
	}
	ebpfmon__destroy(v);
	close(afd);
	close(cfd);
	close(lfd);
}

/*
 * HTTP over TCP does not fragment: the first fragment of a TCP segment to an HTTP port (the
 * request would sit in the rest, unseen) is dropped, as is an IPv6 packet whose transport
 * lies past the parser's chain of extension headers. Switchable.
 */
static void test_url_unseen_dropped(void **state)
{
	struct frame f;

	(void)state;
	url_setup(EBPFMON_F_DROP_UNSEEN);
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.130", "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(&f, 40000, 80, TCP_ACK);
	put_str(&f, "GET ");
	frame_finish(&f);
	f.b[ETH_HLEN_ + 6] = 0x20; /* MF, offset 0 */
	assert_int_equal(run(&f), XDP_DROP);
	/* to another port it is none of ours */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.130", "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(&f, 40000, 22, TCP_ACK);
	frame_finish(&f);
	f.b[ETH_HLEN_ + 6] = 0x20;
	assert_int_equal(run(&f), XDP_PASS);

	/* IPv6: a fragment header (M set, offset 0) before TCP */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::130", "2001:db8::1", PKT_NEXTHDR_FRAGMENT);
	put_ipv6_frag(&f, IPPROTO_TCP, 0, true);
	put_tcp(&f, 40000, 80, TCP_ACK);
	put_str(&f, "GET ");
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_DROP);

	/* 17 destination options headers: the transport is past the parser's bound */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::131", "2001:db8::1", PKT_NEXTHDR_DEST);
	for (int i = 0; i < IPV6_EXT_MAX + 1; i++)
		put_ipv6_ext(&f, i < IPV6_EXT_MAX ? PKT_NEXTHDR_DEST : IPPROTO_TCP, 0);
	put_tcp(&f, 40000, 80, TCP_ACK);
	put_str(&f, HTTP_REQ("/wp-admin/"));
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_DROP);
	expect_counters(.rx_seen = 4, .rx_passed = 1, .rx_drop_unseen = 3);

	/* switched off: passed */
	url_setup(0);
	assert_int_equal(run(&f), XDP_PASS);

	/* 6 destination options headers: within the bound, the request is matched */
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_IPV6);
	put_ipv6(&f, "2001:db8:1::132", "2001:db8::1", PKT_NEXTHDR_DEST);
	for (int i = 0; i < 6; i++)
		put_ipv6_ext(&f, i < 5 ? PKT_NEXTHDR_DEST : IPPROTO_TCP, 0);
	put_tcp(&f, 40000, 80, TCP_ACK);
	put_str(&f, HTTP_REQ("/wp-admin/"));
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 1);
}

/* A path longer than EBPFMON_URL_PATH_MAX matches on its first 128 bytes. */
static void test_url_long_path(void **state)
{
	char path[301], req[400];
	struct frame f;

	(void)state;
	url_setup(0);
	memcpy(path, "/wp-admin/", 10);
	for (size_t i = 10; i < sizeof(path) - 1; i++)
		path[i] = (char)('a' + i % 26);
	path[sizeof(path) - 1] = '\0';
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", path);
	v4_tcp(&f, "203.0.113.108", 80, TCP_ACK | TCP_PSH, req);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "203.0.113.108", 10, EBPFMON_URL_DROP, 80, path, EBPFMON_URL_PATH_MAX);

	/* exactly 128 bytes, then the space */
	path[EBPFMON_URL_PATH_MAX] = '\0';
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", path);
	v4_tcp(&f, "203.0.113.108", 80, TCP_ACK | TCP_PSH, req);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 2);
	check_url_event(1, "203.0.113.108", 10, EBPFMON_URL_DROP, 80, path, EBPFMON_URL_PATH_MAX);

	/* a rule of the full 128 bytes hits a path that long exactly */
	assert_int_equal(xh_map_clear(skel->maps.url_rules), 3);
	url_rule(path, 20, EBPFMON_URL_REPORT);
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(events_read(), 3);
	check_url_event(2, "203.0.113.108", 20, EBPFMON_URL_REPORT, 80, path, EBPFMON_URL_PATH_MAX);
}

/* The longest matching rule wins. */
static void test_url_longest_prefix(void **state)
{
	struct frame f;

	(void)state;
	settings(EBPFMON_F_URL_MATCH, 80, 0);
	url_rule("/wp", 1, EBPFMON_URL_REPORT);
	url_rule("/wp-admin", 2, EBPFMON_URL_DROP);
	v4_tcp(&f, "203.0.113.109", 80, TCP_ACK, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_DROP);
	v4_tcp(&f, "203.0.113.109", 80, TCP_ACK, HTTP_REQ("/wp-login.php"));
	assert_int_equal(run(&f), XDP_PASS);
	assert_int_equal(events_read(), 2);
	check_url_event(0, "203.0.113.109", 2, EBPFMON_URL_DROP, 80, "/wp-admin/x", 11);
	check_url_event(1, "203.0.113.109", 1, EBPFMON_URL_REPORT, 80, "/wp-login.php", 13);
}

static void test_url_v6(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	v6_tcp(&f, "2001:db8:bad::100", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(run(&f), XDP_DROP);
	v6_tcp(&f, "2001:db8:bad::100", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/index.html"));
	assert_int_equal(run(&f), XDP_PASS);
	/* behind extension headers */
	v6_ext_tcp(&f, "2001:db8:bad::101", 80, TCP_ACK | TCP_PSH, HTTP_REQ("/.env"));
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 2);
	check_url_event(0, "2001:db8:bad::100", 10, EBPFMON_URL_DROP, 80, "/wp-admin/x", 11);
	check_url_event(1, "2001:db8:bad::101", 11, EBPFMON_URL_DROP, 80, "/.env", 5);
	expect_counters(.rx_seen = 3, .rx_passed = 1, .rx_drop_url = 2, .url_hits = 2, .events = 2,
			.url_lines = 3);
}

/* Over VLAN and after IPv4 options: the payload offset follows the headers. */
static void test_url_vlan_and_options(void **state)
{
	struct frame f;

	(void)state;
	url_setup(0);
	frame_init(&f);
	put_eth(&f, PKT_ETH_P_8021AD);
	put_vlan(&f, 1, PKT_ETH_P_8021Q);
	put_vlan(&f, 2, PKT_ETH_P_IP);
	put_ipv4(&f, "203.0.113.110", "192.0.2.1", IPPROTO_TCP, 10, 0);
	put_tcp(&f, 1, 80, TCP_ACK);
	put_str(&f, HTTP_REQ("/wp-admin/x"));
	frame_finish(&f);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(events_read(), 1);
	check_url_event(0, "203.0.113.110", 10, EBPFMON_URL_DROP, 80, "/wp-admin/x", 11);
}

/*
 * With the ring buffer full (nobody consuming), enforcement goes on: every URL hit and every
 * ban drop still drops, and each event that did not fit is counted in ringbuf_drops.
 */
static void test_ringbuf_full_still_enforces(void **state)
{
	/* more 184-byte URL events (with the ring's record header) than the ring holds */
	const uint32_t n = bpf_map__max_entries(skel->maps.events) / 184 + 2000;
	struct ebpfmon_counters c;
	struct frame f;
	__u32 verdict = 0;

	(void)state;
	url_setup(0);
	v4_tcp(&f, "203.0.113.112", 80, TCP_ACK, HTTP_REQ("/wp-admin/x"));
	assert_int_equal(hook_run(prog_fd, f.b, f.len, n, 0, &verdict), 0);
	assert_int_equal(verdict, XDP_DROP);
	assert_int_equal(xh_counters(skel, &c), 0);
	assert_int_equal(c.rx_seen, n);
	assert_int_equal(c.rx_drop_url, n);
	assert_int_equal(c.url_hits, n);
	assert_int_equal(c.events + c.ringbuf_drops, n);
	assert_true(c.ringbuf_drops > 0);
	assert_int_equal(events_read(), c.events);

	/* the ring is drained now; fill it again, then a banned source is still dropped */
	assert_int_equal(hook_run(prog_fd, f.b, f.len, n, 0, &verdict), 0);
	ban_add("203.0.113.113", 0);
	v4_tcp(&f, "203.0.113.113", 22, TCP_SYN, NULL);
	assert_int_equal(run(&f), XDP_DROP);
	assert_int_equal(ban_get("203.0.113.113").drops, 1);
	assert_int_equal(xh_counters(skel, &c), 0);
	assert_int_equal(c.rx_drop_ban, 1);
	assert_int_equal(c.events + c.ringbuf_drops, 2 * n + 1);
}

/*
 * The event carries path[] in full; bytes past path_len that the packet did not supply must
 * not be whatever the BPF stack held: the ring buffer is readable by the unprivileged
 * analyzer (group ebpfmon), so stale stack bytes there leak kernel memory (timestamps and,
 * as seen on 6.18, what look like kernel text addresses). Expected: zero there.
 * Several packets are sent because the stale contents depend on what ran before.
 */
/*
 * The verifier accepts xdp_ingress with room to spare: a change that multiplies its paths
 * (a byte loop the verifier walks once per byte) fails here before it fails on a kernel
 * whose verifier is a little stricter.
 */
static void test_verifier_headroom(void **state)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	(void)state;
	assert_int_equal(bpf_obj_get_info_by_fd(prog_fd, &info, &len), 0);
	print_message("%s: %u instructions verified, %u translated\n",
		      tc_hook ? "tc_ingress" : "xdp_ingress", info.verified_insns,
		      info.xlated_prog_len / 8);
	assert_true(info.verified_insns > 0);
	assert_true(info.verified_insns < 400000); /* the limit is 1000000 */
}

/*
 * The object as the loader loads it (url_verify = 1: URL hits checked against this host's
 * sockets) verifies within a budget (xdp_ingress needs about 200000 instructions, tc_ingress
 * 215000; the ban check's flood hint, struct drop_memo_slot, took them from 170000): the socket checks behind every parse path are where the
 * verifier's states multiply when they cannot be merged, as they did when the URL matcher
 * used packet pointers carried from the parse (350000). A loader start pays the verifier's time.
 */
static void test_verifier_headroom_url_verify(void **state)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct ebpfmon *v = NULL;

	(void)state;
	assert_int_equal(hook_load(&v, 0, true), 0);
	assert_int_equal(bpf_obj_get_info_by_fd(hook_fd(v), &info, &len), 0);
	print_message("%s with url_verify: %u instructions verified\n",
		      tc_hook ? "tc_ingress" : "xdp_ingress", info.verified_insns);
	ebpfmon__destroy(v);
	assert_true(info.verified_insns > 0);
	assert_true(info.verified_insns < 300000);
}

static void test_url_event_no_stale_bytes(void **state)
{
	(void)state;
	url_setup(0);
	for (int round = 0; round < 16; round++) {
		const struct ebpfmon_ev_url_hit *ev;
		size_t nonzero = 0;
		struct frame f;

		/* the segment ends with the path: nothing of the packet lies past path_len */
		v4_tcp(&f, "203.0.113.111", 80, TCP_ACK,
		       round & 1 ? "GET /wp-admin HTTP/1.1\r\n" : "GET /.env HTTP/1.1\r\n");
		assert_int_equal(run(&f), XDP_DROP);
		assert_int_equal(events_read(), (size_t)round + 1);
		ev = &evlog.ev[round].url;
		assert_int_equal(ev->path_len, round & 1 ? 9 : 5);
		for (size_t i = ev->path_len; i < EBPFMON_URL_PATH_MAX; i++)
			nonzero += ev->path[i] != 0;
		if (!nonzero)
			continue;
		print_error("event path[]:\n");
		for (size_t i = 0; i < EBPFMON_URL_PATH_MAX; i++)
			print_error("%02x%s", ev->path[i], i % 32 == 31 ? "\n" : " ");
		fail_msg("url_hit event %d: path[%u..%d) carries %zu non-zero stale bytes", round,
			 ev->path_len, EBPFMON_URL_PATH_MAX, nonzero);
	}
}

/*
 * tc_ingress runs after GRO: one socket buffer of gso_segs segments counts as that many
 * packets of its source (bytes: its length, headers once), and the ban drops it whole. XDP
 * has no such count: each frame is one packet.
 */
static void test_gso_segments(void **state)
{
	struct frame f;
	__u32 verdict = 0;

	(void)state;
	if (!tc_hook)
		skip();
	v4_tcp(&f, "198.51.100.71", 443, TCP_ACK, "payload of a GRO super-packet");
	assert_int_equal(hook_run(prog_fd, f.b, f.len, 1, 5, &verdict), 0);
	assert_int_equal(verdict, XDP_PASS);
	assert_int_equal(hook_run(prog_fd, f.b, f.len, 1, 0, &verdict), 0);
	assert_int_equal(verdict, XDP_PASS);
	assert_int_equal(stats_of("198.51.100.71").rx_packets, 5 + 1);
	assert_int_equal(stats_of("198.51.100.71").rx_bytes, 2 * f.len);
	expect_counters(.rx_seen = 2, .rx_passed = 2);

	v6_tcp(&f, "2001:db8:77::71", 443, TCP_ACK, "x");
	assert_int_equal(hook_run(prog_fd, f.b, f.len, 1, 3, &verdict), 0);
	assert_int_equal(stats_of("2001:db8:77::71").rx_packets, 3);
	ban_add("2001:db8:77::71", 0);
	assert_int_equal(hook_run(prog_fd, f.b, f.len, 1, 3, &verdict), 0);
	assert_int_equal(verdict, XDP_DROP);
	assert_int_equal(ban_get("2001:db8:77::71").drops, 1);
}

/* ---- main ------------------------------------------------------------------------------ */

#define T(fn)	  cmocka_unit_test_setup(fn, reset)
#define MAX_NAMES 32 /* --only and --skip arguments, each */

static bool name_listed(const char *name, char **list, int n, bool *used)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(name, list[i]) == 0) {
			used[i] = true;
			return true;
		}
	}
	return false;
}

/*
 * test_bpf_xdp [--only=TEST]... [--skip=TEST]...: run all tests, only the named ones, or all
 * but the named ones (exact names; a name that matches no test is an error). ctest runs the
 * tests of a known bug in bpf/ as entries of their own, so that the failure names the bug.
 */
int main(int argc, char **argv)
{
	static const struct CMUnitTest tests[] = {
		T(test_load_pins_nothing),
		T(test_v4_tcp_clean),
		T(test_v4_udp_clean),
		T(test_v4_icmp_clean),
		T(test_v6_tcp_clean),
		T(test_v6_udp_clean),
		T(test_v6_icmp_clean),
		T(test_vlan_single),
		T(test_qinq),
		T(test_three_tags_not_ip),
		T(test_arp_lldp_not_ip),
		T(test_v4_options),
		T(test_v4_ihl_below_5),
		T(test_ip_version_mismatch),
		T(test_tcp_doff_below_5),
		T(test_v6_ext_headers),
		T(test_v6_ext_chain_too_long),
		T(test_v4_fragments),
		T(test_v6_fragments),
		T(test_trunc_v4_tcp),
		T(test_trunc_v4_udp_icmp),
		T(test_trunc_v6_tcp),
		T(test_trunc_v6_ext),
		T(test_trunc_vlan),
		T(test_trunc_l4_banned_dropped),
		T(test_ban_v4),
		T(test_ban_v6),
		T(test_ban_any_traffic),
		T(test_ban_drop_sampling),
		T(test_ban_expired),
		T(test_ban_future_deadline),
		T(test_ban_deadline_near),
		T(test_ban_net_v4),
		T(test_ban_net_v6),
		T(test_ban_note_ban_drops_next),
		T(test_ban_note_bpftool_ban_bounded),
		T(test_ban_note_other_address),
		T(test_ban_flood_many_sources),
		T(test_ban_note_unban_passes),
		T(test_ban_note_net_ban),
		T(test_allowlist_overrides_ban),
		T(test_allowlist_added_after_ban),
		T(test_allowlist_overrides_ban_net),
		T(test_url_drop),
		T(test_url_report),
		T(test_url_miss),
		T(test_url_not_matched_off_port_or_off),
		T(test_url_dry_run),
		T(test_url_allowlisted),
		T(test_url_not_a_request_line),
		T(test_url_other_methods),
		T(test_url_split_request),
		T(test_url_long_line_resumed),
		T(test_url_urgent_dropped),
		T(test_url_canonical),
		T(test_url_pipelined),
		T(test_url_unverified),
		T(test_url_verified_connection),
		T(test_url_unseen_dropped),
		T(test_url_long_path),
		T(test_url_longest_prefix),
		T(test_url_v6),
		T(test_url_vlan_and_options),
		T(test_ringbuf_full_still_enforces),
		T(test_url_event_no_stale_bytes),
		T(test_verifier_headroom),
		T(test_verifier_headroom_url_verify),
		T(test_gso_segments),
	};
	struct CMUnitTest run_tests[sizeof(tests) / sizeof(tests[0])];
	char *only[MAX_NAMES], *skip[MAX_NAMES];
	bool only_used[MAX_NAMES] = {false}, skip_used[MAX_NAMES] = {false};
	int n_only = 0, n_skip = 0;
	size_t n_run = 0;
	struct stat st;
	int err, failed;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--only=", 7) == 0 && n_only < MAX_NAMES) {
			only[n_only++] = argv[i] + 7;
		} else if (strncmp(argv[i], "--skip=", 7) == 0 && n_skip < MAX_NAMES) {
			skip[n_skip++] = argv[i] + 7;
		} else if (strcmp(argv[i], "--hook=tc") == 0 ||
			   strcmp(argv[i], "--hook=xdp") == 0) {
			tc_hook = argv[i][7] == 't';
		} else {
			fprintf(stderr,
				"usage: %s [--hook=xdp|tc] [--only=TEST]... [--skip=TEST]...\n",
				argv[0]);
			return 2;
		}
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		bool in_only = name_listed(tests[i].name, only, n_only, only_used);
		bool in_skip = name_listed(tests[i].name, skip, n_skip, skip_used);

		if ((n_only && !in_only) || in_skip)
			continue;
		run_tests[n_run++] = tests[i];
	}
	for (int i = 0; i < n_only + n_skip; i++) {
		bool only_arg = i < n_only;

		if (only_arg ? only_used[i] : skip_used[i - n_only])
			continue;
		fprintf(stderr, "%s: --%s=%s: no such test\n", PROG, only_arg ? "only" : "skip",
			only_arg ? only[i] : skip[i - n_only]);
		return 2;
	}

	bpf_test_require_root_or_skip(PROG);
	bans_pin_existed = stat(DEFAULT_BANS_PIN, &st) == 0;
	err = hook_load(&skel, 4096, false);
	if (err) {
		bpf_test_skip_if_privilege(PROG, "the ebpfmon BPF object", err);
		fprintf(stderr, "%s: FAIL: cannot load the ebpfmon BPF object: %s\n", PROG,
			strerror(-err));
		return 1;
	}
	prog_fd = hook_fd(skel);
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "%s: FAIL: ring_buffer__new: %s\n", PROG, strerror(errno));
		ebpfmon__destroy(skel);
		return 1;
	}
	failed = _cmocka_run_group_tests(tc_hook ? "tc_ingress" : "xdp_ingress", run_tests, n_run,
					 NULL, NULL);
	ring_buffer__free(rb);
	ebpfmon__destroy(skel);
	return failed ? 1 : 0;
}
