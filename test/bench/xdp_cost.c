// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xdp_cost: what xdp_ingress costs per packet, side by side with xdp-filter's source-address
 * program (xdpfilt_alw_ip from Debian's xdp-tools) on the same frames, both measured with
 * BPF_PROG_TEST_RUN over an empty XDP program (return XDP_PASS) in the same run. The maps
 * are filled the way a busy server fills them: 100k tracked addresses, 10k bans, URL rules on
 * port 80; xdp-filter denies the same 10k addresses.
 *
 * It also prices each operation the clean path is made of (a hash miss, an LRU update, an
 * LPM lookup, each clock...) with one small program per operation on the very maps
 * xdp_ingress uses, so that a change to the data plane can be judged operation by operation;
 * and with -o it runs another build's ebpfmon object (the one before a change) beside this
 * one, in the same rounds, on the same frames and map contents.
 *
 * tc_ingress, the same logic at tcx (xdp_mode = tc), runs on the same frames as socket
 * buffers (BPF_PROG_TEST_RUN of a SCHED_CLS program) over an empty tc program: its figures
 * have no target, and name xdp_ingress over the empty XDP program as their peer.
 *
 * Each round runs the cases in groups, a group's baseline among them, SUBRUNS times over
 * (forwards and backwards in turn), and keeps each case's least disturbed call; a ratio to a
 * peer is taken per round, over the baselines of the same round, and the figures are the
 * median round's, with the min..max of the rounds beside (timed_run() says what is timed).
 * The XDP programs stay in the kernel's XDP dispatcher meanwhile (keep_in_dispatcher(): a
 * network namespace of the process's own, gone with it). Traffic that is not one frame repeated (banned sources in
 * turn, banned and clean alternating, a stale note on every packet) runs behind a small
 * wrapper program that changes the frame or the settings and tail-calls the program under
 * test, the same wrapper in front of the empty program being the baseline
 * (load_wrapper()).
 *
 * Not a ctest: timings depend on the machine. Besides the human output it prints one
 * FIGURE line per figure (FIGURE, id, ebpfmon, peer, unit, target; tab-separated) and exits
 * 0 whatever the figures are. It exits 77 without root (1 when EBPFMON_REQUIRE_BPF=1), 2 on
 * a bad option, and 1 when the setup fails or a case gives the wrong verdict, because then
 * the figures would not measure what they claim.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sched.h>
#include <sys/utsname.h>
#include <linux/if_link.h>

#include <bpf/btf.h>

#include "bpf_test_env.h"
#include "pkt.h"
#include "xdp_harness.h"

#define PROG "xdp_cost"

#define DEFAULT_REPEAT	 1000000u
#define DEFAULT_ROUNDS	 9u
#define SUBRUNS		 5u /* calls per case and round: repeat / SUBRUNS runs each */
#define MAX_ROUNDS	 15u
#define IP_STATS_MAX	 131072u
#define N_TRACKED	 100000u
#define N_BANS		 10000u
#define DROP_SAMPLE_MASK 1023u
#define TC_ACT_SHOT	 2u
#define TCX_NEXT	 ((__u32)-1) /* the next tcx program, else the stack */

/* ebpfmon over empty / xdp-filter over empty (docs: issue targets) */
#define TARGET_CLEAN_RATIO  1.3
#define TARGET_BANNED_RATIO 0.8

/* Tracked: 198.18.0.0 + i, i < N_TRACKED. Banned: 198.19.200.0 + i, i < N_BANS. */
#define TRACKED_BASE 0xc6120000u /* 198.18.0.0 */
#define BANNED_BASE  0xc613c800u /* 198.19.200.0 */
#define TRACKED_V6   "2001:db8:1::1"
/*
 * The wrappers' sources (load_wrapper()): 198.19.201.0/24, 256 permanent bans, for the
 * banned sources in turn; 198.18.1.0/24, tracked, for the clean ones between them.
 */
#define CYCLE_NET     (BANNED_BASE + 256)  /* 198.19.201.0 */
#define MIX_CLEAN_NET (TRACKED_BASE + 256) /* 198.18.1.0 */
/* what switches one to the other, as the wrapper's 32-bit load of the address holds it */
#define MIX_TOGGLE_LE htonl(CYCLE_NET ^ MIX_CLEAN_NET)

/* xdp-filter's object as Debian's libxdp1 installs it, and what it names things. */
#define XDPFILT_NAME	 "xdpfilt_alw_ip"
#define XDPFILT_FLAG_SRC 1ull /* xdp-filter's MAP_FLAG_SRC: match the source address */
static const char *const xdpfilt_paths[] = {
	"/usr/lib/x86_64-linux-gnu/bpf/" XDPFILT_NAME ".o",
	"/usr/lib/aarch64-linux-gnu/bpf/" XDPFILT_NAME ".o",
	"/usr/lib/bpf/" XDPFILT_NAME ".o",
	"/usr/local/lib/bpf/" XDPFILT_NAME ".o",
};

/*
 * One measurement of every round: a program on a frame, over a baseline case (base: an empty
 * program, or the same wrapper in front of one) measured in the same group of the same round.
 */
struct bench_case {
	const char *name;
	const struct frame *f;
	int fd;
	__u32 want;
	int base;	       /* index of its baseline case; its own for a baseline */
	bool skb;	       /* a SCHED_CLS program run on a socket buffer */
	const char *section;   /* a heading printed before it */
	double ns[MAX_ROUNDS]; /* ns per run: this thread's CPU time over the call / repeat */
	__u32 kns[MAX_ROUNDS]; /* ns per run as the kernel reports it (whole ns) */
};

#define MAX_CASES  64
#define MAX_GROUPS 16

struct bench {
	struct bench_case c[MAX_CASES];
	size_t n;
	size_t group_start[MAX_GROUPS + 1]; /* group g is c[group_start[g] .. group_start[g + 1]) */
	size_t ngroups;
};

/* Start a group: the cases added until the next group run back to back in each round. */
static void group(struct bench *b)
{
	b->group_start[b->ngroups++] = b->n;
	b->group_start[b->ngroups] = b->n;
}

/* Add a case to the current group; base < 0: it is a baseline. Returns its index. */
static int add_case(struct bench *b, const char *name, const struct frame *f, int fd, __u32 want,
		    int base, bool skb)
{
	int i = (int)b->n++;

	b->c[i] = (struct bench_case){.name = name,
				      .f = f,
				      .fd = fd,
				      .want = want,
				      .base = base < 0 ? i : base,
				      .skb = skb};
	b->group_start[b->ngroups] = b->n;
	return i;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [-n REPEAT] [-r ROUNDS] [-x OBJECT] [-o EBPFMON_OBJECT]\n"
		"\n"
		"Measure xdp_ingress per packet with BPF_PROG_TEST_RUN, next to xdp-filter's %s\n"
		"on the same frames, with %u tracked addresses in ip_stats and %u bans (xdp-filter:\n"
		"the same %u addresses denied): clean tracked packets (with a valid and a stale ban\n"
		"note), banned ones (one source; 256 sources in turn; banned and clean alternating),\n"
		"HTTP requests; then each operation of the clean path, and tc_ingress\n"
		"(xdp_mode = tc) on the same frames as socket buffers. Each round runs a group of\n"
		"programs back to back, their baseline (an empty program) among them; a ratio is\n"
		"taken per round, and its median and min..max over the rounds are printed. ns per run\n"
		"come from this thread's CPU time over each call (sub-ns), beside the kernel's figure\n"
		"(whole ns). Needs root. Prints FIGURE lines (FIGURE, id, ebpfmon, peer, unit,\n"
		"target; tab-separated) for a table runner: the values of the round whose ratio is\n"
		"the median.\n"
		"\n"
		"  -n REPEAT  runs per case and round, in 5 calls (default %u, at least 1000;\n"
		"             below 1000000 the figures are noisy)\n"
		"  -r ROUNDS  rounds (default %u, 1..%u)\n"
		"  -x OBJECT  xdp-filter's BPF object (default: the first of /usr/lib/<multiarch>/bpf,\n"
		"             /usr/lib/bpf, /usr/local/lib/bpf holding %s.o; Debian package\n"
		"             xdp-tools). Without it the xdp-filter figures have no peer.\n"
		"  -o EBPFMON_OBJECT\n"
		"             another build's ebpfmon.bpf.o (the one before a change), measured in\n"
		"             the same groups on the same frames and maps: the HTTP figures then\n"
		"             name it as their peer (target: no more than 5%% over it), and every\n"
		"             case gets its ratio to it\n"
		"  -h, --help this help\n"
		"\n"
		"EXAMPLES\n"
		"  sudo %s\n"
		"  sudo %s -n 5000000 -r 9\n"
		"  sudo %s -o ../main/build/bpf/ebpfmon.bpf.o\n",
		PROG, XDPFILT_NAME, N_TRACKED, N_BANS, N_BANS, DEFAULT_REPEAT, DEFAULT_ROUNDS,
		MAX_ROUNDS, XDPFILT_NAME, PROG, PROG, PROG);
}

/* A whole decimal number in [min, max], or -1. */
static long long parse_num(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

static void v4_text(uint32_t host_order, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", host_order >> 24, (host_order >> 16) & 0xff,
		 (host_order >> 8) & 0xff, host_order & 0xff);
}

static struct ebpfmon_addr v4_addr(uint32_t host_order)
{
	char buf[16];

	v4_text(host_order, buf, sizeof(buf));
	return pkt_addr(buf);
}

/* A map of an ebpfmon object by name; NULL (said) when it has none. */
static struct bpf_map *obj_map(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m)
		fprintf(stderr, "%s: the object has no map %s\n", PROG, name);
	return m;
}

/* ip_stats and bans of an ebpfmon object (this build's or an older one, -o). */
static int fill_maps(struct bpf_object *obj)
{
	struct bpf_map *ip_stats = obj_map(obj, EBPFMON_MAP_IP_STATS);
	struct bpf_map *bans = obj_map(obj, EBPFMON_MAP_BANS);
	size_t vsz = ip_stats ? bpf_map__value_size(ip_stats) : 0;
	bool percpu = ip_stats && bpf_map__type(ip_stats) == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	size_t n = percpu ? (size_t)xh_ncpus() : 1;
	struct ebpfmon_ban ban = {.expires_ns = 0, .reason = EBPFMON_BAN_MANUAL};
	/* an older build's value may be shorter (-o): its leading fields are these */
	uint64_t now = xh_coarse_ns();
	struct ebpfmon_ip_stats v = {
		.rx_packets = 10, .rx_bytes = 1000, .first_seen_ns = now, .last_seen_ns = now};
	char *vals = calloc(n, vsz);
	int err = 0;

	if (!ip_stats || !bans || vsz < offsetof(struct ebpfmon_ip_stats, last_seen_ns) + 8 ||
	    vsz > sizeof(v)) {
		free(vals);
		return -EINVAL;
	}
	if (!vals)
		return -ENOMEM;
	for (size_t c = 0; c < n; c++)
		memcpy(vals + c * vsz, &v, vsz);
	for (uint32_t i = 0; i <= N_TRACKED && !err; i++) {
		struct ebpfmon_addr a = i < N_TRACKED ? v4_addr(TRACKED_BASE + i)
						      : pkt_addr(TRACKED_V6);

		err = bpf_map__update_elem(ip_stats, &a, sizeof(a), vals, n * vsz, BPF_NOEXIST);
		if (err)
			fprintf(stderr, "%s: ip_stats entry %u: %s\n", PROG, i, strerror(-err));
	}
	free(vals);
	for (uint32_t i = 0; i < N_BANS && !err; i++) {
		struct ebpfmon_addr a = v4_addr(BANNED_BASE + i);

		/* BANNED_BASE + 3: a ban with a deadline (an hour), as the policy writes them */
		ban.expires_ns = i == 3 ? xh_boot_ns() + 3600 * 1000000000ull : 0;
		err = bpf_map__update_elem(bans, &a, sizeof(a), &ban, sizeof(ban), BPF_NOEXIST);
		if (err)
			fprintf(stderr, "%s: bans entry %u: %s\n", PROG, i, strerror(-err));
	}
	return err;
}

static int configure(struct bpf_object *obj)
{
	struct bpf_map *settings = obj_map(obj, EBPFMON_MAP_SETTINGS);
	struct bpf_map *url_rules = obj_map(obj, EBPFMON_MAP_URL_RULES);
	struct bpf_map *allow_nets = obj_map(obj, EBPFMON_MAP_ALLOW_NETS);
	static const char *const patterns[] = {"/admin", "/wp-admin", "/.env", "/config"};
	static const char *const allow[][2] = {{"127.0.0.0", "8"},
					       {"198.19.200.2", "32"}, /* banned too */
					       {"2001:db8:a11::", "48"}};
	struct ebpfmon_settings set = {.flags = EBPFMON_F_URL_MATCH,
				       .drop_sample_mask = DROP_SAMPLE_MASK};
	__u32 one = 1, zero = 0;
	int err;

	if (!settings || !url_rules || !allow_nets)
		return -EINVAL;
	set.http_ports[0] = 80;
	/* an older build's settings may be shorter (-o): its leading fields are these */
	err = bpf_map__value_size(settings) > sizeof(set)
		      ? -EINVAL
		      : bpf_map__update_elem(settings, &zero, sizeof(zero), &set,
					     bpf_map__value_size(settings), BPF_ANY);
	for (size_t i = 0; !err && i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		struct ebpfmon_url_key k = {.prefixlen = (__u32)strlen(patterns[i]) * 8};
		struct ebpfmon_url_rule rule = {.id = (__u32)i + 1, .action = EBPFMON_URL_DROP};

		memcpy(k.path, patterns[i], strlen(patterns[i]));
		err = bpf_map__update_elem(url_rules, &k, sizeof(k), &rule, sizeof(rule), BPF_ANY);
	}
	for (size_t i = 0; !err && i < sizeof(allow) / sizeof(allow[0]); i++) {
		struct ebpfmon_lpm_key k = pkt_lpm_key(allow[i][0], (unsigned)atoi(allow[i][1]));

		err = bpf_map__update_elem(allow_nets, &k, sizeof(k), &one, sizeof(one), BPF_ANY);
	}
	if (err)
		fprintf(stderr, "%s: settings, url_rules or allow_nets: %s\n", PROG,
			strerror(-err));
	return err;
}

/*
 * The operation programs: a few instructions each, written out here so that each prices one
 * thing on the maps of the loaded skeleton. Enough of an assembler for that.
 */
#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV_IMM(d, i)	    INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV_REG(d, s)	    INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD_IMM(d, i)	    INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define ADD_REG(d, s)	    INSN(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define SUB_REG(d, s)	    INSN(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define ST_W(d, o, i)	    INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define STX_DW(d, s, o)	    INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define LDX_DW(d, s, o)	    INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define LDX_W(d, s, o)	    INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define XADD_DW(d, s, o)    INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define CALL(fn)	    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, fn)
#define JEQ_IMM(d, i, o)    INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define EXIT		    INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define STX_W(d, s, o)	    INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ALU32_IMM(op, d, i) INSN(BPF_ALU | (op) | BPF_K, d, 0, 0, i)
#define JGT_REG(d, s, o)    INSN(BPF_JMP | BPF_JGT | BPF_X, d, s, o, 0)

struct asm_buf {
	struct bpf_insn i[64];
	int n;
};

static void emit(struct asm_buf *b, struct bpf_insn insn)
{
	if (b->n >= (int)(sizeof(b->i) / sizeof(b->i[0]))) {
		fprintf(stderr, "%s: an operation program outgrew its buffer\n", PROG);
		abort();
	}
	b->i[b->n++] = insn;
}

static void emit_map_fd(struct asm_buf *b, int reg, int fd)
{
	emit(b, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd));
	emit(b, INSN(0, 0, 0, 0, 0));
}

/* r2 = a key on the stack at r10 + off: the 16 address bytes, after a prefix length if lpm */
static void emit_key(struct asm_buf *b, const struct ebpfmon_addr *a, bool lpm)
{
	int off = lpm ? -20 : -16;
	int32_t w[4];

	memcpy(w, a->a, sizeof(w));
	if (lpm)
		emit(b, ST_W(BPF_REG_10, -24, 128));
	for (int k = 0; k < 4; k++)
		emit(b, ST_W(BPF_REG_10, off + 4 * k, w[k]));
	emit(b, MOV_REG(BPF_REG_2, BPF_REG_10));
	emit(b, ADD_IMM(BPF_REG_2, lpm ? -24 : -16));
}

enum op_kind {
	OP_CALL,	 /* a helper without arguments */
	OP_LOOKUP,	 /* bpf_map_lookup_elem of a fixed key */
	OP_PERCPU_INC,	 /* lookup of key 0 in a one-entry array, then ++ of its first u64 */
	OP_STATS,	 /* lookup in ip_stats, then packets++, bytes += len, last_seen = len */
	OP_STATS_ATOMIC, /* the same with atomic adds */
	OP_BAN_XADD,	 /* lookup in bans, then an atomic add to drops */
};

struct op {
	const char *name;
	enum op_kind kind;
	int helper;
	struct bpf_map *map;
	struct ebpfmon_addr key;
	bool lpm;
};

static void add_op(struct op *ops, size_t *n, const char *name, enum op_kind kind, int helper)
{
	ops[(*n)++] = (struct op){.name = name, .kind = kind, .helper = helper};
}

static void add_map_op(struct op *ops, size_t *n, const char *name, enum op_kind kind,
		       struct bpf_map *map, const struct ebpfmon_addr *key, bool lpm)
{
	ops[*n] = (struct op){.name = name, .kind = kind, .map = map, .lpm = lpm};
	if (key)
		ops[*n].key = *key;
	(*n)++;
}

static int load_op(const struct op *op)
{
	static char log[65536];
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 0);
	struct asm_buf b = {.n = 0};
	int skip_at = -1, fd;

	emit(&b, MOV_REG(BPF_REG_6, BPF_REG_1));
	switch (op->kind) {
	case OP_CALL:
		emit(&b, CALL(op->helper));
		break;
	case OP_PERCPU_INC:
		emit(&b, ST_W(BPF_REG_10, -8, 0));
		emit(&b, MOV_REG(BPF_REG_2, BPF_REG_10));
		emit(&b, ADD_IMM(BPF_REG_2, -8));
		emit_map_fd(&b, BPF_REG_1, bpf_map__fd(op->map));
		emit(&b, CALL(BPF_FUNC_map_lookup_elem));
		skip_at = b.n;
		emit(&b, JEQ_IMM(BPF_REG_0, 0, 0));
		emit(&b, LDX_DW(BPF_REG_1, BPF_REG_0, 0));
		emit(&b, ADD_IMM(BPF_REG_1, 1));
		emit(&b, STX_DW(BPF_REG_0, BPF_REG_1, 0));
		break;
	case OP_LOOKUP:
	case OP_STATS:
	case OP_STATS_ATOMIC:
	case OP_BAN_XADD:
		emit_key(&b, &op->key, op->lpm);
		emit_map_fd(&b, BPF_REG_1, bpf_map__fd(op->map));
		emit(&b, CALL(BPF_FUNC_map_lookup_elem));
		if (op->kind == OP_LOOKUP)
			break;
		skip_at = b.n;
		emit(&b, JEQ_IMM(BPF_REG_0, 0, 0));
		if (op->kind == OP_BAN_XADD) {
			emit(&b, MOV_IMM(BPF_REG_1, 1));
			emit(&b,
			     XADD_DW(BPF_REG_0, BPF_REG_1, offsetof(struct ebpfmon_ban, drops)));
			break;
		}
		emit(&b, LDX_W(BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data_end)));
		emit(&b, LDX_W(BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data)));
		emit(&b, SUB_REG(BPF_REG_2, BPF_REG_3));
		if (op->kind == OP_STATS_ATOMIC) {
			emit(&b, MOV_IMM(BPF_REG_1, 1));
			emit(&b, XADD_DW(BPF_REG_0, BPF_REG_1,
					 offsetof(struct ebpfmon_ip_stats, rx_packets)));
			emit(&b, XADD_DW(BPF_REG_0, BPF_REG_2,
					 offsetof(struct ebpfmon_ip_stats, rx_bytes)));
		} else {
			emit(&b, LDX_DW(BPF_REG_1, BPF_REG_0,
					offsetof(struct ebpfmon_ip_stats, rx_packets)));
			emit(&b, ADD_IMM(BPF_REG_1, 1));
			emit(&b, STX_DW(BPF_REG_0, BPF_REG_1,
					offsetof(struct ebpfmon_ip_stats, rx_packets)));
			emit(&b, LDX_DW(BPF_REG_1, BPF_REG_0,
					offsetof(struct ebpfmon_ip_stats, rx_bytes)));
			emit(&b, ADD_REG(BPF_REG_1, BPF_REG_2));
			emit(&b, STX_DW(BPF_REG_0, BPF_REG_1,
					offsetof(struct ebpfmon_ip_stats, rx_bytes)));
		}
		emit(&b,
		     STX_DW(BPF_REG_0, BPF_REG_2, offsetof(struct ebpfmon_ip_stats, last_seen_ns)));
		break;
	}
	if (skip_at >= 0)
		b.i[skip_at].off = (__s16)(b.n - skip_at - 1);
	emit(&b, MOV_IMM(BPF_REG_0, XDP_PASS));
	emit(&b, EXIT);
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_cost_op", "GPL", b.i, (size_t)b.n, &opts);
	if (fd < 0) {
		int err = -errno;

		opts.log_level = 1;
		if (bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_cost_op", "GPL", b.i, (size_t)b.n,
				  &opts) < 0)
			fprintf(stderr, "%s: operation program '%s' rejected: %s\n%s\n", PROG,
				op->name, strerror(-err), log);
		return err;
	}
	return fd;
}

/* Two instructions: r0 = XDP_PASS; exit. */
static int load_empty_prog(void)
{
	const struct bpf_insn insns[] = {MOV_IMM(BPF_REG_0, XDP_PASS), EXIT};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_empty", "GPL", insns, 2, NULL);

	return fd < 0 ? -errno : fd;
}

/* The tc baseline, two instructions too: r0 = TCX_NEXT; exit. */
static int load_empty_tc_prog(void)
{
	const struct bpf_insn insns[] = {MOV_IMM(BPF_REG_0, (__s32)TCX_NEXT), EXIT};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "tc_empty", "GPL", insns, 2, NULL);

	return fd < 0 ? -errno : fd;
}

/*
 * What a wrapper (load_wrapper()) changes before each run, so that one BPF_PROG_TEST_RUN call
 * of repeat runs stands for traffic that is not one frame repeated.
 */
enum wrap_kind {
	WRAP_CYCLE, /* the last byte of the IPv4 source + 1 (mod 256): 256 sources in turn */
	WRAP_MIXED, /* the same, and the source switches between MIX_CLEAN_NET and MIX_BANNED_NET */
	WRAP_GEN,   /* settings.ban_gen + 1: every note of "no ban" made before is stale */
};

/*
 * A program that changes the frame (or ebpfmon's settings, settings_fd) as kind says and then
 * tail-calls target_fd through a one-slot PROG_ARRAY, created here (*array_fd). The test run
 * gives each of its repeat runs the same buffer, so what the wrapper wrote is what the next run
 * starts from. The kernel wants the programs of one PROG_ARRAY alike: the wrapper gets the
 * target's expected attach type and flags (BPF_F_XDP_HAS_FRAGS). A failed tail call returns
 * XDP_ABORTED, which no case wants. Returns the wrapper's fd or -errno.
 */
static int load_wrapper(enum wrap_kind kind, int target_fd, enum bpf_attach_type attach,
			__u32 flags, int settings_fd, int *array_fd)
{
	static char log[65536];
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof(log),
		    .expected_attach_type = attach, .prog_flags = flags);
	const int saddr = 14 + 12; /* Ethernet, then the IPv4 header's source address */
	struct asm_buf b = {.n = 0};
	__u32 zero = 0;
	int out_at[2], nout = 0, fd, err;

	*array_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "xdp_cost_tail", 4, 4, 1, NULL);
	if (*array_fd < 0)
		return -errno;
	emit(&b, MOV_REG(BPF_REG_6, BPF_REG_1));
	if (kind == WRAP_GEN) {
		emit(&b, ST_W(BPF_REG_10, -4, 0));
		emit(&b, MOV_REG(BPF_REG_2, BPF_REG_10));
		emit(&b, ADD_IMM(BPF_REG_2, -4));
		emit_map_fd(&b, BPF_REG_1, settings_fd);
		emit(&b, CALL(BPF_FUNC_map_lookup_elem));
		out_at[nout++] = b.n;
		emit(&b, JEQ_IMM(BPF_REG_0, 0, 0));
		emit(&b, LDX_W(BPF_REG_1, BPF_REG_0, offsetof(struct ebpfmon_settings, ban_gen)));
		emit(&b, ALU32_IMM(BPF_ADD, BPF_REG_1, 1));
		emit(&b, STX_W(BPF_REG_0, BPF_REG_1, offsetof(struct ebpfmon_settings, ban_gen)));
	} else {
		emit(&b, LDX_W(BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data)));
		emit(&b, LDX_W(BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data_end)));
		emit(&b, MOV_REG(BPF_REG_4, BPF_REG_2));
		emit(&b, ADD_IMM(BPF_REG_4, saddr + 4));
		out_at[nout++] = b.n;
		emit(&b, JGT_REG(BPF_REG_4, BPF_REG_3, 0));
		/* the address's bytes a.b.c.d, loaded little-endian: d is the top byte */
		emit(&b, LDX_W(BPF_REG_5, BPF_REG_2, saddr));
		if (kind == WRAP_MIXED)
			emit(&b, ALU32_IMM(BPF_XOR, BPF_REG_5, (__s32)MIX_TOGGLE_LE));
		emit(&b, ALU32_IMM(BPF_ADD, BPF_REG_5, (__s32)htonl(1))); /* little-endian: d */
		emit(&b, STX_W(BPF_REG_2, BPF_REG_5, saddr));
	}
	emit(&b, MOV_REG(BPF_REG_1, BPF_REG_6));
	emit_map_fd(&b, BPF_REG_2, *array_fd);
	emit(&b, MOV_IMM(BPF_REG_3, 0));
	emit(&b, CALL(BPF_FUNC_tail_call));
	for (int i = 0; i < nout; i++)
		b.i[out_at[i]].off = (__s16)(b.n - out_at[i] - 1);
	emit(&b, MOV_IMM(BPF_REG_0, XDP_ABORTED));
	emit(&b, EXIT);
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_cost_wrap", "GPL", b.i, (size_t)b.n, &opts);
	if (fd < 0) {
		err = -errno;
		opts.log_level = 1;
		if (bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_cost_wrap", "GPL", b.i, (size_t)b.n,
				  &opts) < 0)
			fprintf(stderr, "%s: the wrapper program was rejected: %s\n%s\n", PROG,
				strerror(-err), log);
		return err;
	}
	if (bpf_map_update_elem(*array_fd, &zero, &target_fd, BPF_ANY)) {
		err = -errno;
		fprintf(stderr, "%s: a wrapper's PROG_ARRAY refuses its target: %s\n", PROG,
			strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/*
 * xdp-filter's program from path (or the first installed copy) loaded without pins, with
 * the same N_BANS IPv4 addresses denied as source. Returns the program's fd, 0 when no
 * object is installed and none was named (said on stderr), or -errno.
 */
static int load_xdp_filter(const char *path, struct bpf_object **out)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	*out = NULL;
	for (size_t i = 0; !path && i < sizeof(xdpfilt_paths) / sizeof(xdpfilt_paths[0]); i++)
		if (access(xdpfilt_paths[i], R_OK) == 0)
			path = xdpfilt_paths[i];
	if (!path) {
		fprintf(stderr,
			"%s: no %s.o installed (apt-get install xdp-tools): the xdp-filter figures "
			"are '-'\n",
			PROG, XDPFILT_NAME);
		return 0;
	}
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		err = -errno;
		fprintf(stderr, "%s: %s: %s\n", PROG, path, strerror(-err));
		return err;
	}
	bpf_object__for_each_map(map, obj)
	{
		err = bpf_map__set_pin_path(map, NULL);
		if (err)
			goto fail;
	}
	err = bpf_object__load(obj);
	if (err)
		goto fail;
	prog = bpf_object__find_program_by_name(obj, XDPFILT_NAME);
	map = bpf_object__find_map_by_name(obj, "filter_ipv4");
	if (!prog || !map || bpf_map__key_size(map) != 4 || bpf_map__value_size(map) != 8 ||
	    bpf_map__type(map) != BPF_MAP_TYPE_PERCPU_HASH || bpf_map__max_entries(map) < N_BANS) {
		fprintf(stderr,
			"%s: %s: not the xdp-filter this bench knows (program %s, map "
			"filter_ipv4, a PERCPU_HASH of __u32 -> __u64 with %u entries)\n",
			PROG, path, XDPFILT_NAME, N_BANS);
		err = -EINVAL;
		goto out;
	}
	/* filter_ipv4 is a PERCPU_HASH: the flags on every CPU (its hit counters too) */
	for (uint32_t i = 0; i < N_BANS; i++) {
		uint32_t key = htonl(BANNED_BASE + i);
		uint64_t val = XDPFILT_FLAG_SRC;

		err = xh_percpu_update(map, &key, sizeof(key), &val, sizeof(val), BPF_NOEXIST);
		if (err)
			goto fail;
	}
	*out = obj;
	return bpf_program__fd(prog);
fail:
	fprintf(stderr, "%s: %s: cannot load or fill it: %s\n", PROG, path, strerror(-err));
out:
	bpf_object__close(obj);
	return err;
}

/*
 * Another build's ebpfmon object (the one before a change, -o), loaded as
 * xh_load_opts() loads this build's: no pins, only xdp_ingress, ip_stats resized, url_verify
 * cleared (set through the BTF of its .rodata, whatever else that holds). Its maps are filled
 * like ours. Returns xdp_ingress's fd or -errno.
 */
static int load_old(const char *path, struct bpf_object **out)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;
	struct bpf_map *map, *rodata = NULL;
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	struct btf *btf;
	int err = 0, id;

	*out = NULL;
	if (!obj) {
		err = -errno;
		fprintf(stderr, "%s: %s: %s\n", PROG, path, strerror(-err));
		return err;
	}
	bpf_object__for_each_map(map, obj)
	{
		const char *name = bpf_map__name(map);
		size_t len = strlen(name);

		err = bpf_map__set_pin_path(map, NULL);
		if (err)
			goto fail;
		if (len >= 7 && !strcmp(name + len - 7, ".rodata"))
			rodata = map;
	}
	bpf_object__for_each_program(prog, obj)
	{
		err = bpf_program__set_autoload(prog,
						!strcmp(bpf_program__name(prog), "xdp_ingress"));
		if (err)
			goto fail;
	}
	map = obj_map(obj, EBPFMON_MAP_IP_STATS);
	err = map ? bpf_map__set_max_entries(map, IP_STATS_MAX) : -EINVAL;
	if (err)
		goto fail;
	btf = bpf_object__btf(obj);
	id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	sec = id > 0 ? btf__type_by_id(btf, id) : NULL;
	if (sec && rodata) {
		size_t sz = 0;
		const void *cur = bpf_map__initial_value(rodata, &sz);
		char *init = cur && sz ? malloc(sz) : NULL;

		if (init)
			memcpy(init, cur, sz);
		vs = btf_var_secinfos(sec);
		for (int i = 0; init && i < btf_vlen(sec); i++, vs++) {
			const struct btf_type *v = btf__type_by_id(btf, vs->type);

			if (!strcmp(btf__name_by_offset(btf, v->name_off), "url_verify") &&
			    vs->offset + sizeof(__u32) <= sz)
				memset(init + vs->offset, 0, sizeof(__u32));
		}
		err = init ? bpf_map__set_initial_value(rodata, init, sz) : 0;
		free(init);
		if (err)
			goto fail;
	}
	err = bpf_object__load(obj);
	if (err)
		goto fail;
	prog = bpf_object__find_program_by_name(obj, "xdp_ingress");
	if (!prog || fill_maps(obj) || configure(obj)) {
		err = -EINVAL;
		goto fail;
	}
	*out = obj;
	return bpf_program__fd(prog);
fail:
	fprintf(stderr, "%s: %s: cannot load it as an ebpfmon object: %s\n", PROG, path,
		strerror(err < 0 ? -err : err));
	bpf_object__close(obj);
	return err < 0 ? err : -err;
}

static void tcp_frame(struct frame *f, uint32_t src, uint16_t dport, uint8_t flags,
		      const char *payload)
{
	char s[16];

	v4_text(src, s, sizeof(s));
	frame_init(f);
	put_eth(f, PKT_ETH_P_IP);
	put_ipv4(f, s, "192.0.2.1", IPPROTO_TCP, 0, 0);
	put_tcp(f, 40000, dport, flags);
	if (payload)
		put_str(f, payload);
	frame_finish(f);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double minimum(const double *v, unsigned n)
{
	double m = v[0];

	for (unsigned i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double maximum(const double *v, unsigned n)
{
	double m = v[0];

	for (unsigned i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static int discard_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

static const char *verdict_name(__u32 v, bool skb)
{
	if (skb)
		return v == TCX_NEXT ? "NEXT" : v == TC_ACT_SHOT ? "SHOT" : "other";
	return v == XDP_PASS ? "PASS" : v == XDP_DROP ? "DROP" : "other";
}

/*
 * One run of case c: BPF_PROG_TEST_RUN of repeat runs, timed by this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) around the call. *ns: that time / repeat; *kns: the kernel's own
 * figure (whole ns, truncated).
 *
 * What each covers. The kernel times its loop of repeat runs with ktime_get_ns() and divides
 * by repeat, truncating to whole ns (net/bpf/test_run.c, bpf_test_run() and
 * bpf_test_timer_*()); it stops that clock while it reschedules (cond_resched() when another
 * task wants the CPU) but counts interrupts, and the time the hypervisor takes the virtual
 * CPU away (steal time). The CPU time of this thread covers the same loop, and leaves out
 * every time another task ran, as the kernel does; it also leaves out steal time
 * (CONFIG_PARAVIRT_TIME_ACCOUNTING), which the kernel's figure counts; interrupts are in
 * both (without CONFIG_IRQ_TIME_ACCOUNTING, as Debian builds). What it adds is the call's own
 * work outside the loop: the system call and copying the frame in and out, a few microseconds
 * (a few thousandths of a ns per run at 200 000 runs a call), the same for a program and the
 * baseline it is measured over, so that it cancels in the difference; for XDP with
 * repeat > 1 also putting the program into the XDP dispatcher and taking it out again
 * (bpf_prog_change_xdp(), 0.3-0.5 ms), unless the program is there already, which
 * keep_in_dispatcher() sees to. main() prints how far the two figures lie apart.
 */
static int timed_run(const struct bench_case *c, unsigned repeat, __u32 *verdict, double *ns,
		     __u32 *kns)
{
	struct timespec t0, t1;
	int err;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	err = c->skb ? xh_run_skb(c->fd, c->f->b, c->f->len, repeat, 0, verdict, kns)
		     : xh_run(c->fd, c->f->b, c->f->len, repeat, verdict, kns);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	*ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / repeat;
	return err;
}

/*
 * Keep the XDP programs of the cases in the kernel's XDP dispatcher for the whole run:
 * attached (generic mode) each to a veth of its own, left down, in a network namespace that
 * this process makes for itself and that goes away with it. Otherwise a test run of
 * repeat > 1 puts its program into the dispatcher and takes it out again on every call
 * (bpf_prog_change_xdp()), 0.3-0.5 ms of CPU each time, jitter included; a program already
 * there only gains a user, and the call's own work is a few microseconds. The dispatcher
 * holds 48 programs (BPF_DISPATCHER_MAX) with those attached elsewhere on the host: *slow
 * counts the programs whose calls still pay the change (> 50 us for 2 runs). Returns the
 * number kept, or -errno.
 */
static int keep_in_dispatcher(const struct bench *b, int *slow)
{
	int done[MAX_CASES], n = 0;

	*slow = 0;
	if (unshare(CLONE_NEWNET)) {
		int err = -errno;

		fprintf(stderr, "%s: unshare(CLONE_NEWNET): %s\n", PROG, strerror(-err));
		return err;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct bench_case *c = &b->c[i];
		char name[IFNAMSIZ], cmd[96];
		bool seen = false;
		__u32 verdict, kns;
		double ns;
		int err;

		for (int k = 0; k < n; k++)
			seen |= done[k] == c->fd;
		if (c->skb || c->fd <= 0 || seen)
			continue;
		snprintf(name, sizeof(name), "xc%d", n);
		snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %sp", name, name);
		if (system(cmd)) {
			fprintf(stderr, "%s: '%s' failed\n", PROG, cmd);
			return -EIO;
		}
		err = bpf_xdp_attach((int)if_nametoindex(name), c->fd, XDP_FLAGS_SKB_MODE, NULL);
		if (err) {
			fprintf(stderr, "%s: attaching %s to %s: %s\n", PROG, c->name, name,
				strerror(-err));
			return err;
		}
		done[n++] = c->fd;
		if (!timed_run(c, 2, &verdict, &ns, &kns) && ns * 2 > 50000)
			(*slow)++;
	}
	return n;
}

/* ns per run of case i over its baseline in round r */
static double over(const struct bench *b, size_t i, unsigned r)
{
	return b->c[i].ns[r] - b->c[b->c[i].base].ns[r];
}

/*
 * A figure: ours over its baseline, against peer over its own (-1: no peer), round by round.
 * ratio[r] per round; *mid the round of the median ratio (the upper one of an even count).
 */
struct figure_def {
	const char *id;
	int ours, peer;
	const char *target; /* ratio<=X, or - */
};

static bool have(const struct bench *b, int i)
{
	return i >= 0 && b->c[i].fd > 0;
}

static void ratios(const struct bench *b, const struct figure_def *f, unsigned rounds,
		   double *ratio, unsigned *mid)
{
	unsigned order[MAX_ROUNDS];

	for (unsigned r = 0; r < rounds; r++) {
		ratio[r] = over(b, (size_t)f->ours, r) / over(b, (size_t)f->peer, r);
		order[r] = r;
	}
	/* rounds <= MAX_ROUNDS: an insertion sort of the round numbers by ratio */
	for (unsigned i = 1; i < rounds; i++)
		for (unsigned j = i; j > 0 && ratio[order[j]] < ratio[order[j - 1]]; j--) {
			unsigned t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	*mid = order[rounds / 2];
}

/*
 * The FIGURE line of f: with a peer, ours and the peer's ns over their baselines in the round
 * whose ratio is the median of the rounds' (so that value / peer is that median ratio); without
 * one, the median of ours over its baseline.
 */
static void figure(const struct bench *b, const struct figure_def *f, unsigned rounds)
{
	double ratio[MAX_ROUNDS], v[MAX_ROUNDS];
	unsigned mid;

	if (!have(b, f->ours))
		return;
	if (have(b, f->peer)) {
		ratios(b, f, rounds, ratio, &mid);
		printf("FIGURE\t%s\t%.2f\t%.2f\tns\t%s\n", f->id, over(b, (size_t)f->ours, mid),
		       over(b, (size_t)f->peer, mid), f->target);
		return;
	}
	for (unsigned r = 0; r < rounds; r++)
		v[r] = over(b, (size_t)f->ours, r);
	printf("FIGURE\t%s\t%.2f\t-\tns\t-\n", f->id, median(v, rounds));
}

/* A quick run of a wrapper case with the counters it must move, before the rounds. */
static int check_wrapped(struct ebpfmon *skel, const struct bench_case *c, __u64 drops,
			 __u64 passed)
{
	struct ebpfmon_counters before, after;
	__u32 verdict;
	double ns;
	__u32 kns;
	int err;

	err = xh_counters(skel, &before);
	if (!err)
		err = timed_run(c, 1000, &verdict, &ns, &kns);
	if (!err)
		err = xh_counters(skel, &after);
	if (err) {
		fprintf(stderr, "%s: %s: %s\n", PROG, c->name, strerror(-err));
		return err;
	}
	if (after.rx_drop_ban - before.rx_drop_ban != drops ||
	    after.rx_passed - before.rx_passed != passed) {
		fprintf(stderr,
			"%s: %s: 1000 runs dropped %llu and passed %llu, want %llu and %llu: the "
			"wrapper does not feed the sources it should\n",
			PROG, c->name, (unsigned long long)(after.rx_drop_ban - before.rx_drop_ban),
			(unsigned long long)(after.rx_passed - before.rx_passed),
			(unsigned long long)drops, (unsigned long long)passed);
		return -EINVAL;
	}
	return 0;
}

/* The XDP program of an object by name, with what a wrapper in front of it must copy. */
static int prog_of(struct bpf_object *obj, const char *name, enum bpf_attach_type *attach,
		   __u32 *flags)
{
	struct bpf_program *p = obj ? bpf_object__find_program_by_name(obj, name) : NULL;

	if (!p)
		return -ENOENT;
	*attach = bpf_program__expected_attach_type(p);
	*flags = bpf_program__flags(p);
	return bpf_program__fd(p);
}

int main(int argc, char **argv)
{
	static const char http_req_miss[] =
		"GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: bench\r\n"
		"Accept: */*\r\n\r\n";
	static const char http_req_hit[] =
		"GET /wp-admin/setup-config.php HTTP/1.1\r\nHost: www.example.test\r\n"
		"User-Agent: bench\r\nAccept: */*\r\n\r\n";
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	static const enum wrap_kind wkinds[3] = {WRAP_CYCLE, WRAP_MIXED, WRAP_GEN};
	static char http_body[1401];
	static struct frame f_clean4, f_clean6, f_banned, f_timed, f_allowed, f_miss, f_hit, f_body,
		f_cycle, f_mix;
	static struct bench B;
	struct bench *b = &B;
	unsigned repeat = DEFAULT_REPEAT, rounds = DEFAULT_ROUNDS;
	struct op ops[16];
	int op_fd[16], wrap_fd[3][4], array_fd[3][4];
	struct ebpfmon *skel = NULL;
	struct bpf_object *xf_obj = NULL, *old_obj = NULL;
	struct ring_buffer *rb = NULL, *old_rb = NULL;
	struct utsname un;
	const char *xf_path = NULL, *old_path = NULL;
	int opt, err, empty_fd = -1, empty_tc_fd = -1, prog_fd, tc_fd, xf_fd = 0, old_fd = 0;
	int rc = 1, kept = 0, slow = 0;
	size_t nops = 0;
	bool have_xf;
	/* case indices, -1 until added */
	int e4, c4, x4, o4, e6, c6, x6, o6, eb, bn, xb, ob, bt, obt, al, oal, wc[4], wm[4], wg[4];
	int eh, hm, ohm, hh, ohh, hb, ohb, et, t4, t6, tb, tt, tm, th;

	for (size_t i = 0; i < sizeof(op_fd) / sizeof(op_fd[0]); i++)
		op_fd[i] = -1;
	for (int k = 0; k < 3; k++)
		for (int t = 0; t < 4; t++)
			wrap_fd[k][t] = array_fd[k][t] = -1;
	while ((opt = getopt_long(argc, argv, "n:r:x:o:h", longopts, NULL)) != -1) {
		long long v;

		switch (opt) {
		case 'n':
			v = parse_num(optarg, 1000, UINT32_MAX);
			if (v < 0) {
				fprintf(stderr, "%s: -n %s: want a number from 1000 to %u\n", PROG,
					optarg, UINT32_MAX);
				usage(stderr);
				return 2;
			}
			repeat = (unsigned)v;
			break;
		case 'r':
			v = parse_num(optarg, 1, MAX_ROUNDS);
			if (v < 0) {
				fprintf(stderr, "%s: -r %s: want a number from 1 to %u\n", PROG,
					optarg, MAX_ROUNDS);
				usage(stderr);
				return 2;
			}
			rounds = (unsigned)v;
			break;
		case 'x':
			xf_path = optarg;
			break;
		case 'o':
			old_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
		usage(stderr);
		return 2;
	}

	bpf_test_require_root_or_skip(PROG);
	err = xh_load_hooks(&skel, IP_STATS_MAX, false, true);
	if (err) {
		bpf_test_skip_if_privilege(PROG, "the ebpfmon BPF object", err);
		fprintf(stderr, "%s: cannot load the ebpfmon BPF object: %s\n", PROG,
			strerror(-err));
		return 1;
	}
	empty_fd = load_empty_prog();
	if (empty_fd < 0) {
		bpf_test_skip_if_privilege(PROG, "an empty XDP program", empty_fd);
		fprintf(stderr, "%s: cannot load the empty XDP program: %s\n", PROG,
			strerror(-empty_fd));
		goto out;
	}
	empty_tc_fd = load_empty_tc_prog();
	if (empty_tc_fd < 0) {
		fprintf(stderr, "%s: cannot load the empty tc program: %s\n", PROG,
			strerror(-empty_tc_fd));
		goto out;
	}
	prog_fd = bpf_program__fd(skel->progs.xdp_ingress);
	tc_fd = bpf_program__fd(skel->progs.tc_ingress);
	if (fill_maps(skel->obj) || configure(skel->obj))
		goto out;
	if (old_path) {
		old_fd = load_old(old_path, &old_obj);
		if (old_fd < 0)
			goto out;
	}
	xf_fd = load_xdp_filter(xf_path, &xf_obj);
	if (xf_fd < 0 || (xf_path && !xf_fd))
		goto out;
	have_xf = xf_fd > 0;
	/* Nobody else reads the events; drained between runs so each starts empty. */
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), discard_event, NULL, NULL);
	if (old_obj)
		old_rb = ring_buffer__new(bpf_map__fd(obj_map(old_obj, EBPFMON_MAP_EVENTS)),
					  discard_event, NULL, NULL);
	if (!rb || (old_obj && !old_rb)) {
		fprintf(stderr, "%s: ring_buffer__new: %s\n", PROG, strerror(errno));
		goto out;
	}

	/*
	 * The wrappers, each in front of the empty program, ebpfmon, xdp-filter and the other
	 * build (-o): [kind][target]. WRAP_GEN grows the ban_gen of the settings of the object
	 * it runs in front of (ebpfmon's for the empty program and xdp-filter: the same work).
	 */
	{
		struct bpf_object *objs[4] = {NULL, skel->obj, xf_obj, old_obj};
		const char *names[4] = {NULL, "xdp_ingress", XDPFILT_NAME, "xdp_ingress"};
		struct bpf_map *old_set = old_obj ? obj_map(old_obj, EBPFMON_MAP_SETTINGS) : NULL;
		int set_fd = bpf_map__fd(skel->maps.settings), old_set_fd = set_fd;

		if (old_set && bpf_map__value_size(old_set) >=
				       offsetof(struct ebpfmon_settings, ban_gen) + sizeof(__u32))
			old_set_fd = bpf_map__fd(old_set);
		for (int t = 0; t < 4; t++) {
			enum bpf_attach_type attach = 0;
			__u32 flags = 0;
			int target = empty_fd;

			if (t > 0) {
				target = prog_of(objs[t], names[t], &attach, &flags);
				if (target < 0)
					continue; /* not installed, or no -o */
			}
			for (int k = 0; k < 3; k++) {
				wrap_fd[k][t] = load_wrapper(wkinds[k], target, attach, flags,
							     t == 3 ? old_set_fd : set_fd,
							     &array_fd[k][t]);
				if (wrap_fd[k][t] < 0)
					goto out;
			}
		}
	}

	tcp_frame(&f_clean4, TRACKED_BASE + 1, 443, TCP_ACK, NULL);
	frame_init(&f_clean6);
	put_eth(&f_clean6, PKT_ETH_P_IPV6);
	put_ipv6(&f_clean6, TRACKED_V6, "2001:db8::1", IPPROTO_TCP);
	put_tcp(&f_clean6, 40000, 443, TCP_ACK);
	frame_finish(&f_clean6);
	tcp_frame(&f_banned, BANNED_BASE + 1, 443, TCP_SYN, NULL);
	tcp_frame(&f_timed, BANNED_BASE + 3, 443, TCP_SYN, NULL);
	tcp_frame(&f_allowed, BANNED_BASE + 2, 443, TCP_SYN, NULL);
	tcp_frame(&f_cycle, CYCLE_NET, 443, TCP_SYN, NULL);
	tcp_frame(&f_mix, CYCLE_NET, 443, TCP_ACK, NULL);
	tcp_frame(&f_miss, TRACKED_BASE + 2, 80, TCP_ACK | TCP_PSH, http_req_miss);
	tcp_frame(&f_hit, TRACKED_BASE + 3, 80, TCP_ACK | TCP_PSH, http_req_hit);
	/* a full segment of a request body (form data, one line): not a request line */
	for (size_t i = 0; i < sizeof(http_body) - 1; i++)
		http_body[i] = "a=b&c=d%20e&"[i % 12];
	tcp_frame(&f_body, TRACKED_BASE + 4, 80, TCP_ACK, http_body);

	/*
	 * Groups: each round runs a group's cases back to back (in reverse order every other
	 * round, so that drift inside a group hits both ends alike), its baseline among them.
	 */
	group(b);
	e4 = add_case(b, "empty XDP program", &f_clean4, empty_fd, XDP_PASS, -1, false);
	b->c[e4].section = "XDP, each over the empty XDP program of its group";
	c4 = add_case(b, "clean tracked IPv4 TCP ACK", &f_clean4, prog_fd, XDP_PASS, e4, false);
	x4 = add_case(b, "  xdp-filter, same frame", &f_clean4, xf_fd, XDP_PASS, e4, false);
	o4 = add_case(b, "  before (-o)", &f_clean4, old_fd, XDP_PASS, e4, false);
	group(b);
	e6 = add_case(b, "empty XDP program", &f_clean6, empty_fd, XDP_PASS, -1, false);
	c6 = add_case(b, "clean tracked IPv6 TCP ACK", &f_clean6, prog_fd, XDP_PASS, e6, false);
	x6 = add_case(b, "  xdp-filter, same frame", &f_clean6, xf_fd, XDP_PASS, e6, false);
	o6 = add_case(b, "  before (-o)", &f_clean6, old_fd, XDP_PASS, e6, false);
	group(b);
	eb = add_case(b, "empty XDP program", &f_banned, empty_fd, XDP_PASS, -1, false);
	bn = add_case(b, "banned IPv4 (permanent ban)", &f_banned, prog_fd, XDP_DROP, eb, false);
	xb = add_case(b, "  xdp-filter, denied", &f_banned, xf_fd, XDP_DROP, eb, false);
	ob = add_case(b, "  before (-o)", &f_banned, old_fd, XDP_DROP, eb, false);
	bt = add_case(b, "banned IPv4 (1 h ban)", &f_timed, prog_fd, XDP_DROP, eb, false);
	obt = add_case(b, "  before (-o)", &f_timed, old_fd, XDP_DROP, eb, false);
	al = add_case(b, "banned but allowlisted IPv4", &f_allowed, prog_fd, XDP_PASS, eb, false);
	oal = add_case(b, "  before (-o)", &f_allowed, old_fd, XDP_PASS, eb, false);
	/* wrapped: [0] the wrapper in front of the empty program is the baseline */
	{
		static const char *const what[3][4] = {
			{"wrapper + empty program", "banned IPv4, 256 sources in turn",
			 "  xdp-filter, same sources", "  before (-o)"},
			{"wrapper + empty program", "banned, clean, banned... (256 each)",
			 "  xdp-filter, same sources", "  before (-o)"},
			{"wrapper + empty program", "clean tracked IPv4, stale note",
			 "  xdp-filter, same frame", "  before (-o)"}};
		static const char *const heading[3] = {
			"banned sources in turn (a wrapper changes the source before each run, "
			"then tail-calls), over the wrapper + empty program",
			"banned and clean tracked sources alternating, over the wrapper + empty "
			"program",
			"clean tracked IPv4 whose note is stale (a wrapper grows settings.ban_gen "
			"before each run), over the wrapper + empty program"};
		const struct frame *fr[3] = {&f_cycle, &f_mix, &f_clean4};
		/* the mixed sequence ends with a banned source when repeat is even */
		__u32 want[3] = {XDP_DROP, repeat / SUBRUNS % 2 ? XDP_PASS : XDP_DROP, XDP_PASS};
		int *idx[3] = {wc, wm, wg};

		for (int k = 0; k < 3; k++) {
			group(b);
			for (int t = 0; t < 4; t++)
				idx[k][t] = add_case(
					b, what[k][t], fr[k], wrap_fd[k][t] > 0 ? wrap_fd[k][t] : 0,
					t ? want[k] : XDP_PASS, t ? idx[k][0] : -1, false);
			b->c[idx[k][0]].section = heading[k];
		}
	}
	group(b);
	eh = add_case(b, "empty XDP program", &f_miss, empty_fd, XDP_PASS, -1, false);
	b->c[eh].section = "HTTP, over the empty XDP program";
	hm = add_case(b, "HTTP request, rules miss", &f_miss, prog_fd, XDP_PASS, eh, false);
	ohm = add_case(b, "  before (-o)", &f_miss, old_fd, XDP_PASS, eh, false);
	hh = add_case(b, "HTTP request, drop rule hit", &f_hit, prog_fd, XDP_DROP, eh, false);
	ohh = add_case(b, "  before (-o)", &f_hit, old_fd, XDP_DROP, eh, false);
	hb = add_case(b, "HTTP body segment, 1400 B", &f_body, prog_fd, XDP_PASS, eh, false);
	ohb = add_case(b, "  before (-o)", &f_body, old_fd, XDP_PASS, eh, false);

	/* The operations of the clean and the drop path, on the maps xdp_ingress uses. */
	{
		struct ebpfmon_addr tracked = v4_addr(TRACKED_BASE + 1);
		struct ebpfmon_addr banned = v4_addr(BANNED_BASE + 1);
		struct bpf_map *bans = skel->maps.bans, *st = skel->maps.ip_stats;
		struct bpf_map *allow = skel->maps.allow_nets, *nets = skel->maps.ban_nets;
		int eo;

		add_op(ops, &nops, "clock: bpf_ktime_get_ns", OP_CALL, BPF_FUNC_ktime_get_ns);
		add_op(ops, &nops, "clock: bpf_ktime_get_boot_ns", OP_CALL,
		       BPF_FUNC_ktime_get_boot_ns);
		add_op(ops, &nops, "clock: bpf_ktime_get_coarse_ns", OP_CALL,
		       BPF_FUNC_ktime_get_coarse_ns);
		add_op(ops, &nops, "clock: bpf_jiffies64", OP_CALL, BPF_FUNC_jiffies64);
		add_map_op(ops, &nops, "settings lookup (ARRAY)", OP_LOOKUP, skel->maps.settings,
			   NULL, false);
		add_map_op(ops, &nops, "counters ++ (PERCPU_ARRAY)", OP_PERCPU_INC,
			   skel->maps.counters, NULL, false);
		add_map_op(ops, &nops, "bans lookup, miss", OP_LOOKUP, bans, &tracked, false);
		add_map_op(ops, &nops, "bans lookup, hit", OP_LOOKUP, bans, &banned, false);
		add_map_op(ops, &nops, "bans hit + atomic drops++", OP_BAN_XADD, bans, &banned,
			   false);
		add_map_op(ops, &nops, "ip_stats lookup, hit", OP_LOOKUP, st, &tracked, false);
		add_map_op(ops, &nops, "ip_stats hit + update", OP_STATS, st, &tracked, false);
		add_map_op(ops, &nops, "ip_stats hit + atomic update", OP_STATS_ATOMIC, st,
			   &tracked, false);
		add_map_op(ops, &nops, "allow_nets LPM lookup, miss", OP_LOOKUP, allow, &tracked,
			   true);
		add_map_op(ops, &nops, "ban_nets LPM lookup, empty", OP_LOOKUP, nets, &tracked,
			   true);
		group(b);
		eo = add_case(b, "empty XDP program", &f_clean4, empty_fd, XDP_PASS, -1, false);
		b->c[eo].section = "operations, each alone on the clean IPv4 frame";
		for (size_t i = 0; i < nops; i++) {
			op_fd[i] = load_op(&ops[i]);
			if (op_fd[i] < 0)
				goto out;
			add_case(b, ops[i].name, &f_clean4, op_fd[i], XDP_PASS, eo, false);
		}
	}

	/* tc_ingress on socket buffers of the same frames over the empty tc program. */
	group(b);
	et = add_case(b, "empty tc program", &f_clean4, empty_tc_fd, TCX_NEXT, -1, true);
	b->c[et].section = "tc_ingress (xdp_mode = tc) on the same frames as socket buffers "
			   "(SCHED_CLS test run), over the empty tc program";
	t4 = add_case(b, "clean tracked IPv4 TCP ACK", &f_clean4, tc_fd, TCX_NEXT, et, true);
	t6 = add_case(b, "clean tracked IPv6 TCP ACK", &f_clean6, tc_fd, TCX_NEXT, et, true);
	tb = add_case(b, "banned IPv4 (permanent ban)", &f_banned, tc_fd, TC_ACT_SHOT, et, true);
	tt = add_case(b, "banned IPv4 (1 h ban)", &f_timed, tc_fd, TC_ACT_SHOT, et, true);
	tm = add_case(b, "HTTP request, rules miss", &f_miss, tc_fd, TCX_NEXT, et, true);
	th = add_case(b, "HTTP request, drop rule hit", &f_hit, tc_fd, TC_ACT_SHOT, et, true);

	/* The wrappers feed what they should: ebpfmon's counters over 1000 runs. */
	if (check_wrapped(skel, &b->c[wc[1]], 1000, 0) ||
	    check_wrapped(skel, &b->c[wm[1]], 500, 500) ||
	    check_wrapped(skel, &b->c[wg[1]], 0, 1000))
		goto out;

	kept = keep_in_dispatcher(b, &slow);
	if (kept < 0)
		goto out;

	/*
	 * A round runs each group SUBRUNS times over, repeat / SUBRUNS runs per call, forwards and
	 * backwards in turn; a case's figure of the round is its least disturbed call.
	 */
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t g = 0; g < b->ngroups; g++) {
			size_t lo = b->group_start[g], hi = b->group_start[g + 1];

			for (unsigned sub = 0; sub < SUBRUNS; sub++) {
				for (size_t k = lo; k < hi; k++) {
					size_t i = (r * SUBRUNS + sub) % 2 ? hi - 1 - (k - lo) : k;
					struct bench_case *c = &b->c[i];
					__u32 verdict = 0, kns = 0;
					double ns;

					if (c->fd <= 0)
						continue;
					err = timed_run(c, repeat / SUBRUNS, &verdict, &ns, &kns);
					if (err) {
						fprintf(stderr, "%s: BPF_PROG_TEST_RUN (%s): %s\n",
							PROG, c->name, strerror(-err));
						goto out;
					}
					if (verdict != c->want) {
						fprintf(stderr,
							"%s: %s: verdict %s, want %s; the figures "
							"would be meaningless\n",
							PROG, c->name,
							verdict_name(verdict, c->skb),
							verdict_name(c->want, c->skb));
						goto out;
					}
					if (!sub || ns < c->ns[r]) {
						c->ns[r] = ns;
						c->kns[r] = kns;
					}
					ring_buffer__consume(rb);
					if (old_rb)
						ring_buffer__consume(old_rb);
				}
			}
		}
	}

	uname(&un);
	printf("xdp_cost: BPF_PROG_TEST_RUN, %u runs per measurement, %u rounds; ns per run from "
	       "the thread's CPU time over each call\n",
	       repeat, rounds);
	printf("kernel %s, %d possible CPUs; %d XDP programs kept in the XDP dispatcher, %d of "
	       "them still changing it per call\n",
	       un.release, xh_ncpus(), kept, slow);
	printf("maps: ip_stats %u tracked (max %u, %s), bans %u, url_rules /admin /wp-admin "
	       "/.env /config (drop), http_ports {80}, drop_sample_mask %u, ban_nets off\n",
	       N_TRACKED + 1, IP_STATS_MAX,
	       bpf_map__type(skel->maps.ip_stats) == BPF_MAP_TYPE_LRU_PERCPU_HASH
		       ? "LRU_PERCPU_HASH"
	       : bpf_map__type(skel->maps.ip_stats) == BPF_MAP_TYPE_LRU_HASH ? "LRU_HASH"
									     : "other",
	       N_BANS, DROP_SAMPLE_MASK);
	printf("peer: %s\n", have_xf ? "xdp-filter " XDPFILT_NAME ", the same 10000 addresses "
				       "denied in filter_ipv4"
				     : "xdp-filter not installed");
	{
		double d[MAX_CASES * MAX_ROUNDS];
		size_t nd = 0;

		for (size_t i = 0; i < b->n; i++)
			for (unsigned r = 0; b->c[i].fd > 0 && r < rounds; r++)
				d[nd++] = b->c[i].ns[r] - b->c[i].kns[r];
		qsort(d, nd, sizeof(*d), cmp_double);
		printf("CPU time per run - the kernel's figure, over %zu measurements: median %+.2f "
		       "ns (min %+.2f, max %+.2f; the kernel truncates to whole ns and counts steal "
		       "time)\n\n",
		       nd, d[nd / 2], d[0], d[nd - 1]);
	}
	printf("%-38s %6s %8s %8s %17s %7s   %s\n", "case", "bytes", "ns/run", "-base",
	       "-base min..max", "kernel", "verdict");
	for (size_t i = 0; i < b->n; i++) {
		const struct bench_case *c = &b->c[i];
		double raw[MAX_ROUNDS], v[MAX_ROUNDS], k[MAX_ROUNDS];

		if (c->section)
			printf("\n%s\n", c->section);
		if (c->fd <= 0) {
			printf("%-38s %6zu %8s\n", c->name, c->f->len, "-");
			continue;
		}
		for (unsigned r = 0; r < rounds; r++) {
			raw[r] = c->ns[r];
			v[r] = over(b, i, r);
			k[r] = c->kns[r];
		}
		if (c->base == (int)i)
			printf("%-38s %6zu %8.2f %8s %17s %7.0f   %s\n", c->name, c->f->len,
			       median(raw, rounds), "-", "-", median(k, rounds),
			       verdict_name(c->want, c->skb));
		else
			printf("%-38s %6zu %8.2f %+8.2f %+8.2f..%+7.2f %7.0f   %s\n", c->name,
			       c->f->len, median(raw, rounds), median(v, rounds),
			       minimum(v, rounds), maximum(v, rounds), median(k, rounds),
			       verdict_name(c->want, c->skb));
	}
	{
		const struct figure_def figs[] = {
			{"xdp.clean_v4_ns", c4, x4, "ratio<=1.3"},
			{"xdp.clean_v6_ns", c6, x6, "ratio<=1.3"},
			{"xdp.clean_stale_v4_ns", wg[1], wg[2], "ratio<=1.3"},
			{"xdp.banned_v4_ns", bn, xb, "ratio<=0.8"},
			{"xdp.banned_timed_v4_ns", bt, xb, "ratio<=0.8"},
			{"xdp.banned_many_v4_ns", wc[1], wc[2], "ratio<=0.8"},
			{"xdp.banned_mixed_v4_ns", wm[1], wm[2], "-"},
			{"xdp.allowlisted_ban_ns", al, -1, "-"},
			/* HTTP: this build against the one before (-o), when given */
			{"xdp.http_miss_ns", hm, ohm, "ratio<=1.05"},
			{"xdp.http_hit_ns", hh, ohh, "ratio<=1.05"},
			{"xdp.http_body_ns", hb, ohb, "ratio<=1.05"},
			/* tc_ingress over the empty tc program against xdp_ingress over empty XDP */
			{"xdp.tc_clean_v4_ns", t4, c4, "-"},
			{"xdp.tc_clean_v6_ns", t6, c6, "-"},
			{"xdp.tc_banned_v4_ns", tb, bn, "-"},
			{"xdp.tc_banned_timed_v4_ns", tt, bt, "-"},
			{"xdp.tc_http_miss_ns", tm, hm, "-"},
			{"xdp.tc_http_hit_ns", th, hh, "-"},
		};
		/* this build against the one before (-o), case by case */
		const struct figure_def twins[] = {
			{"clean tracked IPv4", c4, o4, "-"},
			{"clean tracked IPv6", c6, o6, "-"},
			{"clean tracked IPv4, stale note", wg[1], wg[3], "-"},
			{"banned IPv4", bn, ob, "-"},
			{"banned IPv4, 1 h ban", bt, obt, "-"},
			{"banned, 256 sources in turn", wc[1], wc[3], "-"},
			{"banned and clean alternating", wm[1], wm[3], "-"},
			{"banned but allowlisted", al, oal, "-"},
			{"HTTP request, rules miss", hm, ohm, "-"},
			{"HTTP request, drop rule hit", hh, ohh, "-"},
			{"HTTP body segment", hb, ohb, "-"},
		};
		double ratio[MAX_ROUNDS];
		unsigned mid;

		printf("\nratios, round by round (each over its baseline in the same round): median "
		       "(min..max) of %u rounds\n",
		       rounds);
		for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
			const struct figure_def *f = &figs[i];
			double bound;

			if (!have(b, f->ours) || !have(b, f->peer))
				continue;
			ratios(b, f, rounds, ratio, &mid);
			printf("  %-27s %5.3f (%5.3f..%5.3f)", f->id, ratio[mid],
			       minimum(ratio, rounds), maximum(ratio, rounds));
			if (sscanf(f->target, "ratio<=%lf", &bound) == 1)
				printf("  target <= %.2f %s", bound,
				       ratio[mid] <= bound ? "PASS" : "OVER");
			printf("\n");
		}
		if (old_fd > 0) {
			printf("\nthis build / before (-o), round by round: median (min..max)\n");
			for (size_t i = 0; i < sizeof(twins) / sizeof(twins[0]); i++) {
				if (!have(b, twins[i].ours) || !have(b, twins[i].peer))
					continue;
				ratios(b, &twins[i], rounds, ratio, &mid);
				printf("  %-32s %5.3f (%5.3f..%5.3f)\n", twins[i].id, ratio[mid],
				       minimum(ratio, rounds), maximum(ratio, rounds));
			}
		}
		if (old_fd > 0 && have_xf) {
			const struct figure_def before[] = {
				{"xdp.clean_v4_ns", o4, x4, "ratio<=1.3"},
				{"xdp.clean_v6_ns", o6, x6, "ratio<=1.3"},
				{"xdp.clean_stale_v4_ns", wg[3], wg[2], "ratio<=1.3"},
				{"xdp.banned_v4_ns", ob, xb, "ratio<=0.8"},
				{"xdp.banned_timed_v4_ns", obt, xb, "ratio<=0.8"},
				{"xdp.banned_many_v4_ns", wc[3], wc[2], "ratio<=0.8"},
				{"xdp.banned_mixed_v4_ns", wm[3], wm[2], "-"},
			};

			printf("\nthe build before (-o) against the same peers, round by round: median "
			       "(min..max)\n");
			for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
				if (!have(b, before[i].ours))
					continue;
				ratios(b, &before[i], rounds, ratio, &mid);
				printf("  %-27s %5.3f (%5.3f..%5.3f)\n", before[i].id, ratio[mid],
				       minimum(ratio, rounds), maximum(ratio, rounds));
			}
		}
		if (!have_xf)
			printf("\ntargets not evaluated: xdp-filter is not installed\n");
		for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++)
			figure(b, &figs[i], rounds);
	}
	rc = 0;
out:
	for (size_t i = 0; i < sizeof(op_fd) / sizeof(op_fd[0]); i++)
		if (op_fd[i] >= 0)
			close(op_fd[i]);
	for (int k = 0; k < 3; k++)
		for (int t = 0; t < 4; t++) {
			if (wrap_fd[k][t] >= 0)
				close(wrap_fd[k][t]);
			if (array_fd[k][t] >= 0)
				close(array_fd[k][t]);
		}
	ring_buffer__free(rb);
	ring_buffer__free(old_rb);
	bpf_object__close(old_obj);
	bpf_object__close(xf_obj);
	if (empty_fd >= 0)
		close(empty_fd);
	if (empty_tc_fd >= 0)
		close(empty_tc_fd);
	ebpfmon__destroy(skel);
	return rc;
}
