/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The kernel/user ABI of ebpfmon: map keys and values, ring-buffer events and pin names.
 *
 * Included by the BPF programs (after vmlinux.h) and by user space alike, so it uses only
 * fixed-width __u types and explicit padding. Every struct here is part of the on-disk
 * (pinned) state: change a layout and an old pin becomes incompatible, which the loader
 * detects and replaces with a log line.
 */
#ifndef EBPFMON_ABI_H
#define EBPFMON_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Default pin root; the loader's --pin-root overrides it. */
#define EBPFMON_PIN_ROOT  "/sys/fs/bpf/ebpfmon"
#define EBPFMON_PIN_MAPS  "maps"
#define EBPFMON_PIN_PROGS "progs"
#define EBPFMON_PIN_LINKS "links"
/* Empty: the analyzer's lock (one analyzer per pin root), 0700, its user's. */
#define EBPFMON_PIN_ANALYZER "analyzer"

/* Map names: also the file names of the pins under <root>/maps/. */
#define EBPFMON_MAP_BANS       "bans"
#define EBPFMON_MAP_BAN_NETS   "ban_nets"
#define EBPFMON_MAP_ALLOW_NETS "allow_nets"
#define EBPFMON_MAP_IP_STATS   "ip_stats"
#define EBPFMON_MAP_CONN_COUNT "conn_count"
#define EBPFMON_MAP_CONN_SOCKS "conn_socks"
#define EBPFMON_MAP_URL_RULES  "url_rules"
#define EBPFMON_MAP_SETTINGS   "settings"
#define EBPFMON_MAP_COUNTERS   "counters"
#define EBPFMON_MAP_EVENTS     "events"
#define EBPFMON_MAP_PROC_IO    "proc_io"
#define EBPFMON_MAP_HTTP_FLOWS "http_flows"
#define EBPFMON_MAP_PROG_STATS "prog_stats"

/*
 * One address key for both families: 16 bytes in network order. IPv4 is stored
 * IPv4-mapped (::ffff:a.b.c.d), so one map serves both families.
 */
struct ebpfmon_addr {
	__u8 a[16];
};

/* LPM_TRIE key for ban_nets and allow_nets; prefixlen counts bits of the 128-bit form. */
struct ebpfmon_lpm_key {
	__u32 prefixlen;
	__u8 a[16];
};

/* Why a ban exists (ebpfmon_ban.reason). */
enum ebpfmon_ban_reason {
	EBPFMON_BAN_MANUAL = 0,
	EBPFMON_BAN_CONN_LIMIT = 1,
	EBPFMON_BAN_URL_RULE = 2,
	EBPFMON_BAN_ESCALATED = 3,
};

/* ebpfmon_ban.allow_gen: XDP found no allow_nets entry covering the address (bans only) */
#define EBPFMON_BAN_ALLOW_CHECKED (1u << 31)

/* Value of bans and ban_nets. */
struct ebpfmon_ban {
	__u64 expires_ns;  /* CLOCK_BOOTTIME deadline; 0 = permanent */
	__u64 drops;	   /* packets dropped by this ban, updated by XDP (see ban_drop()) */
	__u64 would_drops; /* packets it would have dropped while settings say dry run */
	__u32 reason;	   /* enum ebpfmon_ban_reason */
	/*
	 * XDP's own note, so that it looks up allow_nets once per ban and not per packet:
	 * settings.allow_gen | EBPFMON_BAN_ALLOW_CHECKED once allow_nets did not cover the
	 * address at that generation. Writers put 0 (not looked at yet); a ban copied back
	 * with its note stays right, since the note is about the address.
	 */
	__u32 allow_gen;
};

/*
 * Value of ip_stats: one value shared by the CPUs (not per-CPU: 65536 addresses on 64 CPUs
 * would lock hundreds of MiB). XDP and egress accounting add without atomics, which cost the
 * clean path a third of its time: counts are exact while the packets of one address reach
 * one CPU at a time (RSS keeps a flow on one queue); two CPUs updating the same address at
 * the same instant can lose one of the two increments.
 */
struct ebpfmon_ip_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 syns; /* TCP SYN without ACK received */
	/* CLOCK_MONOTONIC_COARSE: a tick-precise clock that costs XDP a few ns, where a
	 * precise one would cost it a third of its budget */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	/*
	 * XDP's note that no ban covers the address, so that a packet of a tracked address
	 * looks up ip_stats alone, not bans and ban_nets too: bits 0..19
	 * (EBPFMON_BAN_GEN_MASK) are settings.ban_gen XOR ebpfmon_ban_note_key() of the
	 * address when bans and ban_nets were found without a ban in force on it; bits 20..63
	 * the CLOCK_MONOTONIC_COARSE time (ns, a multiple of 2^20) until which the note holds,
	 * at most EBPFMON_BAN_NOTE_NS after it was made. The key ties the note to the address
	 * it was made for: an LRU element reused for another address between XDP's lookup and
	 * its write of the note carries a note that does not hold for the new address (unless
	 * their keys are equal, about 2^-20 of the seeds for any pair). 0: no note (writers other than XDP put 0).
	 */
	__u64 ban_note;
};

/* ebpfmon_ip_stats.ban_note: the bits of settings.ban_gen ^ the key; the rest is a deadline */
#define EBPFMON_BAN_GEN_MASK 0xfffffull

/*
 * The 20 bits of an address that its ban note is tied to (ebpfmon_ip_stats.ban_note): every
 * byte of the address, mixed with settings.note_seed by two multiplications (the 64-bit
 * golden-ratio and murmur3 constants) and the top 20 bits taken. With the seed unknown to a
 * sender (the loader draws it from getrandom() when it creates the map), which two addresses
 * share a key cannot be chosen: any pair does for about 2^-20 of the seeds. Four ALU
 * instructions and two multiplications.
 */
static inline __u64 ebpfmon_ban_note_key(const struct ebpfmon_addr *a, __u32 seed)
{
	__u64 w0, w1, h;

	__builtin_memcpy(&w0, a->a, 8);
	__builtin_memcpy(&w1, a->a + 8, 8);
	h = (w0 ^ seed) * 0x9e3779b97f4a7c15ull;
	h = (h ^ w1) * 0xc4ceb9fe1a85ec53ull;
	return h >> 44;
}

/*
 * How long XDP trusts a note of "no ban" while settings.ban_gen stays the same: the bound on
 * how late a ban written without growing ban_gen (bpftool) takes effect, 1 s.
 */
#define EBPFMON_BAN_NOTE_NS 1000000000ull

/*
 * Values of ip_stats per key that a lookup (bpf_map_lookup_elem, _batch) returns to user
 * space: one, shared by the CPUs. Readers that add up values per key add up this many.
 */
#define EBPFMON_IP_STATS_NVALS 1

/* Value of conn_count: server-side TCP connections from one remote address. */
struct ebpfmon_conn {
	__u32 active; /* established now */
	__u32 pad;
	__u64 total;   /* ever accepted */
	__u64 last_ns; /* CLOCK_BOOTTIME of the last accept */
};

#define EBPFMON_URL_PATH_MAX 128

/*
 * LPM_TRIE key of url_rules: bytes of the canonical request path (docs/url-matching.md),
 * prefixlen in bits. With EBPFMON_F_URL_NOCASE the rules are stored lower-case.
 */
struct ebpfmon_url_key {
	__u32 prefixlen;
	__u8 path[EBPFMON_URL_PATH_MAX];
};

enum ebpfmon_url_action {
	EBPFMON_URL_REPORT = 0, /* emit an event, pass the packet */
	EBPFMON_URL_DROP = 1,	/* emit an event and drop the packet */
};

struct ebpfmon_url_rule {
	__u32 id;
	__u32 action; /* enum ebpfmon_url_action */
};

#define EBPFMON_MAX_HTTP_PORTS 8
/*
 * URL hits reported per TCP segment. Every request line is matched; a hit past this many is
 * counted (url_hits_over) and still drops the segment when its rule says so.
 */
#define EBPFMON_URL_HITS_MAX 16
/*
 * Payload bytes of one segment scanned for request lines (a GRO packet that generic XDP sees
 * can hold 64 KiB); the rest is counted, not seen.
 */
#define EBPFMON_URL_SCAN_MAX 65536
/* ... read in pieces of this many bytes */
#define EBPFMON_URL_SCAN_CHUNK 16384

enum ebpfmon_settings_flags {
	EBPFMON_F_DRY_RUN = 1u << 0,   /* report URL hits, never drop them */
	EBPFMON_F_URL_MATCH = 1u << 1, /* parse HTTP request lines on http_ports */
	/* ban_nets has entries: consult it. Whoever adds the first entry sets it; without it
	 * the clean path skips the LPM lookup (about 12 ns). */
	EBPFMON_F_BAN_NETS = 1u << 2,
	/* match url_rules case-insensitively (ASCII): the canonical path is lower-cased */
	EBPFMON_F_URL_NOCASE = 1u << 3,
	/* drop what the URL matcher cannot see: the first IPv4/IPv6 fragment of a TCP segment
	 * to an HTTP port, and IPv6 packets whose transport header lies past the parser's bound
	 * of extension headers */
	EBPFMON_F_DROP_UNSEEN = 1u << 4,
};

/*
 * settings[0]: thresholds the kernel acts on. The loader fills it when it creates the map;
 * from then on the analyzer owns it, so a restart of either daemon never changes it.
 */
struct ebpfmon_settings {
	__u32 max_conn_per_ip; /* conn_count crossing this emits EBPFMON_EV_CONN_LIMIT */
	__u32 flags;	       /* enum ebpfmon_settings_flags */
	__u16 http_ports[EBPFMON_MAX_HTTP_PORTS]; /* host order; 0 = unused slot */
	__u32 drop_sample_mask; /* a ban drop event every (mask + 1) drops, the first always */
	/* grows whenever allow_nets gains an entry: the notes of ebpfmon_ban.allow_gen made
	 * before then no longer hold (common/mapconf.c keeps it; 0 in a new map) */
	__u32 allow_gen;
	/*
	 * grows after every write of an entry to bans or ban_nets (mapconf_ban_written()) and
	 * with every rewrite of the settings (EBPFMON_F_BAN_NETS may be new): the notes of
	 * ebpfmon_ip_stats.ban_note made before then no longer hold, so the next packet of a
	 * newly banned address is looked up in bans again. A ban written without it takes
	 * effect within EBPFMON_BAN_NOTE_NS. 0 in a new map.
	 */
	__u32 ban_gen;
	/*
	 * mixed into the key that ties a ban note to its address (ebpfmon_ban_note_key()):
	 * drawn from getrandom() by the first full write of the settings (the loader's, when
	 * it creates the map), kept by every later one (common/mapconf.c); 0 in a new map
	 */
	__u32 note_seed;
};

/* counters[0], per CPU. */
struct ebpfmon_counters {
	__u64 rx_seen; /* packets XDP looked at */
	__u64 rx_passed;
	__u64 rx_drop_ban;  /* dropped: source in bans */
	__u64 rx_drop_net;  /* dropped: source in ban_nets */
	__u64 rx_drop_url;  /* dropped: URL rule with action drop */
	__u64 rx_allowed;   /* banned but allowlisted, passed */
	__u64 rx_not_ip;    /* not IPv4/IPv6 (ARP, LLDP...), passed */
	__u64 rx_parse_err; /* malformed or truncated, passed */
	__u64 url_hits;
	__u64 tx_seen;	   /* packets seen by egress accounting */
	__u64 conn_opened; /* server-side connections established */
	__u64 conn_table_full;
	__u64 events;	     /* events written to the ring buffer */
	__u64 ringbuf_drops; /* events lost: ring buffer full */
	__u64 io_events;     /* block I/O requests accounted */
	__u64 io_table_full;
	__u64 rx_drop_unseen;  /* dropped: TCP fragment or transport past the parser's bound */
	__u64 rx_would_drop;   /* dry run: passed, but a ban or a rule would have dropped it */
	__u64 url_lines;       /* request lines matched against url_rules */
	__u64 url_hits_over;   /* hits past EBPFMON_URL_HITS_MAX in one segment: not reported */
	__u64 url_split;       /* request lines completed from an earlier segment of the flow */
	__u64 url_unverified;  /* URL hits outside an established connection: never a ban */
	__u64 url_scan_cut;    /* segments longer than EBPFMON_URL_SCAN_MAX, scanned in part */
	__u64 http_flows_full; /* partial request lines not kept: http_flows refused them */
	__u64 url_partial;     /* dropped: read in part (EBPFMON_URL_SCAN_MAX), ending inside
				  * a request line */
	__u64 url_urgent;      /* dropped: TCP urgent data to an HTTP port (not in the stream) */
	/* the stream guard (bpf/stream.h): what HTTP-port sockets receive, in order */
	__u64 stream_socks;	 /* connections put under the stream guard */
	__u64 stream_socks_full; /* connections not watched: http_socks full */
	__u64 stream_chunks;	 /* chunks read before the server */
	__u64 stream_lines;	 /* request lines matched there */
	__u64 stream_split;	 /* request lines completed from an earlier chunk */
	__u64 stream_url_hits;	 /* URL hits found there */
	__u64 stream_drop_url;	 /* chunks dropped: a drop rule's hit */
	__u64 stream_overlap;	 /* chunks overlapping bytes already read: the old bytes kept */
	__u64 stream_state_full; /* chunks dropped: a partial line, http_streams full */
	__u64 stream_nested;	 /* chunks passed unread: verdicts nested too deep on a CPU */
	__u64 url_to_stream;	 /* segments of this host's connections XDP left to the guard */
};

/* Value of proc_io, keyed by __u32 tgid. */
struct ebpfmon_proc_io {
	__u64 read_bytes;
	__u64 write_bytes;
	__u64 read_ops;
	__u64 write_ops;
	__u64 last_ns;
	char comm[16];
};

/*
 * Value of prog_stats, an array of EBPFMON_PROG_STATS_MAX indexed by enum ebpfmon_prog: the
 * kernel's run statistics of each program (bpf_prog_info), copied by the loader every few
 * seconds so that the unprivileged analyzer can report them. run_time_ns and run_cnt grow only
 * while kernel.bpf_stats_enabled is 1 (Documentation/admin-guide/sysctl/kernel.rst); id 0: the
 * program is not loaded.
 */
enum ebpfmon_prog {
	EBPFMON_PROG_XDP_INGRESS = 0, /* xdp_ingress, or tc_ingress (xdp_mode tc) */
	EBPFMON_PROG_EGRESS_ACCOUNT,
	EBPFMON_PROG_SOCK_STATE,
	EBPFMON_PROG_BLOCK_IO,
	EBPFMON_PROG_STREAM_VERDICT,
	EBPFMON_PROG_STREAM_SOCKOPS,
	EBPFMON_PROG_STATS_MAX,
};

struct ebpfmon_prog_stats {
	__u64 run_time_ns; /* total time in the program */
	__u64 run_cnt;	   /* runs */
	__u32 id;	   /* program id (bpftool prog show id ID) */
	__u32 pad;
	char name[16]; /* as the kernel names it (15 bytes and a NUL) */
};

/* Ring-buffer events: every one starts with this header. */
enum ebpfmon_event_type {
	EBPFMON_EV_CONN_LIMIT = 1,
	EBPFMON_EV_URL_HIT = 2,
	EBPFMON_EV_BAN_DROP = 3,
};

struct ebpfmon_event_hdr {
	__u32 type;  /* enum ebpfmon_event_type */
	__u32 len;   /* whole event in bytes */
	__u64 ts_ns; /* CLOCK_BOOTTIME */
};

/* An address has more established connections than settings.max_conn_per_ip. */
struct ebpfmon_ev_conn_limit {
	struct ebpfmon_event_hdr hdr;
	struct ebpfmon_addr addr;
	__u32 active;
	__u32 limit;
};

/* ebpfmon_ev_url_hit.flags */
enum ebpfmon_url_hit_flags {
	EBPFMON_URL_HIT_TRUNCATED = 1u << 0, /* canonical path longer than path[]: its start */
	EBPFMON_URL_HIT_SPLIT = 1u << 1,     /* the request line began in an earlier segment */
	EBPFMON_URL_HIT_DRY_RUN = 1u << 2,   /* a drop rule matched but dry run passed it */
	EBPFMON_URL_HIT_STREAM = 1u << 3,    /* found by the stream guard (bpf/stream.h), not XDP */
};

/*
 * A canonical request path matched a url_rules prefix, in a segment of an established
 * connection of this host (unverified hits are only counted). Retransmissions of one
 * request carry the same (addr, sport, dport, seq).
 */
struct ebpfmon_ev_url_hit {
	struct ebpfmon_event_hdr hdr;
	struct ebpfmon_addr addr;
	__u32 rule_id;
	__u32 action;	/* what XDP did: enum ebpfmon_url_action, DROP only when it dropped */
	__u16 dport;	/* host order */
	__u16 sport;	/* host order */
	__u32 seq;	/* TCP sequence number of the first byte of the request line */
	__u16 path_len; /* bytes valid in path[] (canonical path, at most EBPFMON_URL_PATH_MAX) */
	__u16 flags;	/* enum ebpfmon_url_hit_flags */
	/* this host's initial sequence number of the connection (0: not known): a new
	 * connection from the same port with the same sequence number is a new request */
	__u32 conn_isn;
	__u8 path[EBPFMON_URL_PATH_MAX];
};

/* A banned source was dropped (the first drop of a ban, then sampled). */
struct ebpfmon_ev_ban_drop {
	struct ebpfmon_event_hdr hdr;
	struct ebpfmon_addr addr;
	__u64 drops;
	__u32 from_net; /* 1 when the match came from ban_nets */
	__u32 pad;
};

#ifndef __VMLINUX_H__
#define EBPFMON_ABI_ASSERT(t, n) _Static_assert(sizeof(t) == (n), "ABI size of " #t)
EBPFMON_ABI_ASSERT(struct ebpfmon_addr, 16);
EBPFMON_ABI_ASSERT(struct ebpfmon_lpm_key, 20);
EBPFMON_ABI_ASSERT(struct ebpfmon_ban, 32);
EBPFMON_ABI_ASSERT(struct ebpfmon_ip_stats, 64);
EBPFMON_ABI_ASSERT(struct ebpfmon_conn, 24);
EBPFMON_ABI_ASSERT(struct ebpfmon_url_key, 132);
EBPFMON_ABI_ASSERT(struct ebpfmon_url_rule, 8);
EBPFMON_ABI_ASSERT(struct ebpfmon_settings, 40);
EBPFMON_ABI_ASSERT(struct ebpfmon_counters, 296);
EBPFMON_ABI_ASSERT(struct ebpfmon_proc_io, 56);
EBPFMON_ABI_ASSERT(struct ebpfmon_prog_stats, 40);
EBPFMON_ABI_ASSERT(struct ebpfmon_event_hdr, 16);
EBPFMON_ABI_ASSERT(struct ebpfmon_ev_conn_limit, 40);
EBPFMON_ABI_ASSERT(struct ebpfmon_ev_url_hit, 184);
EBPFMON_ABI_ASSERT(struct ebpfmon_ev_ban_drop, 48);
#undef EBPFMON_ABI_ASSERT
#endif

#endif /* EBPFMON_ABI_H */
