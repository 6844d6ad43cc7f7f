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
#include <sys/utsname.h>

#include <bpf/btf.h>

#include "bpf_test_env.h"
#include "pkt.h"
#include "xdp_harness.h"

#define PROG "xdp_cost"

#define DEFAULT_REPEAT	 1000000u
#define DEFAULT_ROUNDS	 9u
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

/* xdp-filter's object as Debian's libxdp1 installs it, and what it names things. */
#define XDPFILT_NAME	 "xdpfilt_alw_ip"
#define XDPFILT_FLAG_SRC 1ull /* xdp-filter's MAP_FLAG_SRC: match the source address */
static const char *const xdpfilt_paths[] = {
	"/usr/lib/x86_64-linux-gnu/bpf/" XDPFILT_NAME ".o",
	"/usr/lib/aarch64-linux-gnu/bpf/" XDPFILT_NAME ".o",
	"/usr/lib/bpf/" XDPFILT_NAME ".o",
	"/usr/local/lib/bpf/" XDPFILT_NAME ".o",
};

enum prog_id {
	P_EMPTY,
	P_EBPFMON,
	P_XDPFILT,
	P_OP, /* the operation programs: ops[] */
};

struct bench_case {
	const char *name;
	const struct frame *f;
	int fd;
	__u32 want;
	bool op;  /* an operation program, printed in the second table */
	bool skb; /* a SCHED_CLS program run on a socket buffer, printed in the third table */
	double ns[MAX_ROUNDS];
};

static void add_case(struct bench_case *cases, size_t *nc, const char *name, const struct frame *f,
		     int fd, __u32 want, bool op)
{
	cases[(*nc)++] =
		(struct bench_case){.name = name, .f = f, .fd = fd, .want = want, .op = op};
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [-n REPEAT] [-r ROUNDS] [-x OBJECT] [-o EBPFMON_OBJECT]\n"
		"\n"
		"Measure xdp_ingress per packet with BPF_PROG_TEST_RUN over an empty XDP program,\n"
		"next to xdp-filter's %s on the same frames, with %u tracked addresses in\n"
		"ip_stats and %u bans (xdp-filter: the same %u addresses denied); then the cost of\n"
		"each operation of the clean path on the same maps, and tc_ingress (xdp_mode = tc)\n"
		"on the same frames as socket buffers over an empty tc program. Needs root. Prints\n"
		"FIGURE lines\n"
		"(FIGURE, id, ebpfmon, xdp-filter, unit, target; tab-separated) for a table runner.\n"
		"\n"
		"  -n REPEAT  runs per measurement (default %u, at least 1000; below 1000000\n"
		"             the figures are noisy)\n"
		"  -r ROUNDS  measurements per case (default %u, 1..%u); the median and the minimum\n"
		"             are printed, the targets and FIGURE lines take the minimum\n"
		"  -x OBJECT  xdp-filter's BPF object (default: the first of /usr/lib/<multiarch>/bpf,\n"
		"             /usr/lib/bpf, /usr/local/lib/bpf holding %s.o; Debian package\n"
		"             xdp-tools). Without it the xdp-filter figures are '-'.\n"
		"  -o EBPFMON_OBJECT\n"
		"             another build's ebpfmon.bpf.o (the one before a change), measured in\n"
		"             the same rounds on the same frames and maps: the HTTP figures then\n"
		"             name it as their peer (target: no more than 5%% over it)\n"
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
#define MOV_IMM(d, i)	 INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV_REG(d, s)	 INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD_IMM(d, i)	 INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define ADD_REG(d, s)	 INSN(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define SUB_REG(d, s)	 INSN(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define ST_W(d, o, i)	 INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define STX_DW(d, s, o)	 INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define LDX_DW(d, s, o)	 INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define LDX_W(d, s, o)	 INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define XADD_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define CALL(fn)	 INSN(BPF_JMP | BPF_CALL, 0, 0, 0, fn)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define EXIT		 INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

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

/* One FIGURE line: ebpfmon's ns over empty, and the peer's with the target (or '-'). */
static void figure(const char *id, double ours, double peer, bool have_peer, const char *target)
{
	if (have_peer)
		printf("FIGURE\t%s\t%.1f\t%.1f\tns\t%s\n", id, ours, peer, target);
	else
		printf("FIGURE\t%s\t%.1f\t-\tns\t-\n", id, ours);
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
	static char http_body[1401];
	static struct frame f_clean4, f_clean6, f_banned, f_timed, f_allowed, f_miss, f_hit, f_body;
	unsigned repeat = DEFAULT_REPEAT, rounds = DEFAULT_ROUNDS;
	struct bench_case cases[56];
	struct op ops[16];
	int op_fd[16];
	struct ebpfmon *skel = NULL;
	struct bpf_object *xf_obj = NULL, *old_obj = NULL;
	struct ring_buffer *rb = NULL, *old_rb = NULL;
	struct ebpfmon_counters cnt;
	struct utsname un;
	const char *xf_path = NULL, *old_path = NULL;
	int opt, err, empty_fd = -1, empty_tc_fd = -1, prog_fd, tc_fd, xf_fd = 0, old_fd = 0;
	int rc = 1;
	size_t nc = 0, nops = 0, old_of[12] = {0}, tc_first;
	double empty_ns, empty_min, m[56], mn[56], empty_tc_ns = 0, empty_tc_min = 0;
	bool have_xf;

	for (size_t i = 0; i < sizeof(op_fd) / sizeof(op_fd[0]); i++)
		op_fd[i] = -1;
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
	/* Nobody else reads the events; drained between rounds so each round starts empty. */
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), discard_event, NULL, NULL);
	if (old_obj)
		old_rb = ring_buffer__new(bpf_map__fd(obj_map(old_obj, EBPFMON_MAP_EVENTS)),
					  discard_event, NULL, NULL);
	if (!rb || (old_obj && !old_rb)) {
		fprintf(stderr, "%s: ring_buffer__new: %s\n", PROG, strerror(errno));
		goto out;
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
	tcp_frame(&f_miss, TRACKED_BASE + 2, 80, TCP_ACK | TCP_PSH, http_req_miss);
	tcp_frame(&f_hit, TRACKED_BASE + 3, 80, TCP_ACK | TCP_PSH, http_req_hit);
	/* a full segment of a request body (form data, one line): not a request line */
	for (size_t i = 0; i < sizeof(http_body) - 1; i++)
		http_body[i] = "a=b&c=d%20e&"[i % 12];
	tcp_frame(&f_body, TRACKED_BASE + 4, 80, TCP_ACK, http_body);

	/* Indices fixed: the figures below refer to them. */
	add_case(cases, &nc, "empty XDP program", &f_clean4, empty_fd, XDP_PASS, false);
	add_case(cases, &nc, "clean tracked IPv4 TCP ACK", &f_clean4, prog_fd, XDP_PASS, false);
	add_case(cases, &nc, "  xdp-filter, same frame", &f_clean4, xf_fd, XDP_PASS, false);
	add_case(cases, &nc, "clean tracked IPv6 TCP ACK", &f_clean6, prog_fd, XDP_PASS, false);
	add_case(cases, &nc, "  xdp-filter, same frame", &f_clean6, xf_fd, XDP_PASS, false);
	add_case(cases, &nc, "banned IPv4 (permanent ban)", &f_banned, prog_fd, XDP_DROP, false);
	add_case(cases, &nc, "  xdp-filter, denied", &f_banned, xf_fd, XDP_DROP, false);
	add_case(cases, &nc, "banned IPv4 (1 h ban)", &f_timed, prog_fd, XDP_DROP, false);
	add_case(cases, &nc, "banned but allowlisted IPv4", &f_allowed, prog_fd, XDP_PASS, false);
	add_case(cases, &nc, "HTTP request, rules miss", &f_miss, prog_fd, XDP_PASS, false);
	add_case(cases, &nc, "HTTP request, drop rule hit", &f_hit, prog_fd, XDP_DROP, false);
	add_case(cases, &nc, "HTTP body segment, 1400 B", &f_body, prog_fd, XDP_PASS, false);

	/* The same packets through the other build, when there is one (-o). */
	for (size_t i = 1; old_fd > 0 && i < 12; i++) {
		if (cases[i].fd != prog_fd)
			continue;
		old_of[i] = nc;
		add_case(cases, &nc, "  before (-o)", cases[i].f, old_fd, cases[i].want, false);
	}

	/* The operations of the clean and the drop path, on the maps xdp_ingress uses. */
	{
		struct ebpfmon_addr tracked = v4_addr(TRACKED_BASE + 1);
		struct ebpfmon_addr banned = v4_addr(BANNED_BASE + 1);

		struct bpf_map *bans = skel->maps.bans, *st = skel->maps.ip_stats;
		struct bpf_map *allow = skel->maps.allow_nets, *nets = skel->maps.ban_nets;

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
	}
	for (size_t i = 0; i < nops; i++) {
		op_fd[i] = load_op(&ops[i]);
		if (op_fd[i] < 0)
			goto out;
		add_case(cases, &nc, ops[i].name, &f_clean4, op_fd[i], XDP_PASS, true);
	}

	/* tc_ingress on socket buffers of the same frames; the first is the baseline. */
	tc_first = nc;
	add_case(cases, &nc, "empty tc program", &f_clean4, empty_tc_fd, TCX_NEXT, false);
	add_case(cases, &nc, "clean tracked IPv4 TCP ACK", &f_clean4, tc_fd, TCX_NEXT, false);
	add_case(cases, &nc, "clean tracked IPv6 TCP ACK", &f_clean6, tc_fd, TCX_NEXT, false);
	add_case(cases, &nc, "banned IPv4 (permanent ban)", &f_banned, tc_fd, TC_ACT_SHOT, false);
	add_case(cases, &nc, "banned IPv4 (1 h ban)", &f_timed, tc_fd, TC_ACT_SHOT, false);
	add_case(cases, &nc, "HTTP request, rules miss", &f_miss, tc_fd, TCX_NEXT, false);
	add_case(cases, &nc, "HTTP request, drop rule hit", &f_hit, tc_fd, TC_ACT_SHOT, false);
	for (size_t i = tc_first; i < nc; i++)
		cases[i].skb = true;

	/* Rounds go across the cases, so that drift of the machine hits every case alike. */
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t i = 0; i < nc; i++) {
			struct bench_case *c = &cases[i];
			__u32 verdict = 0, dur = 0;

			if (c->fd <= 0)
				continue;
			err = c->skb ? xh_run_skb(c->fd, c->f->b, c->f->len, repeat, 0, &verdict,
						  &dur)
				     : xh_run(c->fd, c->f->b, c->f->len, repeat, &verdict, &dur);
			if (err) {
				fprintf(stderr, "%s: BPF_PROG_TEST_RUN (%s): %s\n", PROG, c->name,
					strerror(-err));
				goto out;
			}
			if (verdict != c->want) {
				fprintf(stderr,
					"%s: %s: verdict %s, want %s; the figures would be "
					"meaningless\n",
					PROG, c->name, verdict_name(verdict, c->skb),
					verdict_name(c->want, c->skb));
				goto out;
			}
			c->ns[r] = dur;
			ring_buffer__consume(rb);
			if (old_rb)
				ring_buffer__consume(old_rb);
		}
	}
	if (xh_counters(skel, &cnt))
		goto out;

	uname(&un);
	printf("xdp_cost: BPF_PROG_TEST_RUN, %u runs per measurement, median (and min) of %u "
	       "rounds\n",
	       repeat, rounds);
	printf("kernel %s, %d possible CPUs\n", un.release, xh_ncpus());
	printf("maps: ip_stats %u tracked (max %u, %s), bans %u, url_rules /admin /wp-admin "
	       "/.env /config (drop), http_ports {80}, drop_sample_mask %u, ban_nets off\n",
	       N_TRACKED + 1, IP_STATS_MAX,
	       bpf_map__type(skel->maps.ip_stats) == BPF_MAP_TYPE_LRU_PERCPU_HASH
		       ? "LRU_PERCPU_HASH"
	       : bpf_map__type(skel->maps.ip_stats) == BPF_MAP_TYPE_LRU_HASH ? "LRU_HASH"
									     : "other",
	       N_BANS, DROP_SAMPLE_MASK);
	printf("peer: %s\n\n", have_xf ? "xdp-filter " XDPFILT_NAME ", the same "
					 "10000"
					 " addresses denied in filter_ipv4"
				       : "xdp-filter not installed");
	/* Over empty: medians from the empty median, minimums from the empty minimum. */
	empty_ns = median(cases[0].ns, rounds);
	empty_min = minimum(cases[0].ns, rounds);
	empty_tc_ns = median(cases[tc_first].ns, rounds);
	empty_tc_min = minimum(cases[tc_first].ns, rounds);
	for (size_t i = 0; i < nc; i++) {
		/* each over its own baseline: the empty XDP or the empty tc program */
		bool base = i == 0 || i == tc_first;
		double e = cases[i].skb ? empty_tc_ns : empty_ns;
		double emin = cases[i].skb ? empty_tc_min : empty_min;

		m[i] = cases[i].fd > 0 ? median(cases[i].ns, rounds) - (base ? 0 : e) : 0;
		mn[i] = cases[i].fd > 0 ? minimum(cases[i].ns, rounds) - (base ? 0 : emin) : 0;
	}
	printf("%-32s %6s %7s %7s %7s   %s\n", "case", "bytes", "median", "-empty", "min",
	       "verdict");
	printf("%-32s %6s %7s %7s %7s\n", "", "", "ns/pkt", "", "-empty");
	for (size_t k = 0; k < nc; k++) {
		/* the first 12 cases, each followed by its twin of the other build (-o) */
		size_t i = k;
		const struct bench_case *c;

		if (k >= 12 && !cases[k].op && !cases[k].skb)
			continue; /* a twin: printed under its case */
		for (int twin = 0; twin < 2; twin++) {
			if (twin) {
				if (k >= 12 || !old_of[k])
					break;
				i = old_of[k];
			}
			c = &cases[i];
			if (c->op && !cases[i - 1].op)
				printf("\noperations, each alone on the clean IPv4 frame\n");
			if (i == tc_first)
				printf("\ntc_ingress (xdp_mode = tc) on the same frames as socket "
				       "buffers (SCHED_CLS test run), over the empty tc program\n");
			if (c->fd <= 0) {
				printf("%-32s %6zu %7s %7s %7s   %s\n", c->name, c->f->len, "-",
				       "-", "-", "-");
				continue;
			}
			if (i == 0 || i == tc_first)
				printf("%-32s %6zu %7.1f %7s %7.1f   %s\n", c->name, c->f->len,
				       m[i], "-", mn[i], verdict_name(c->want, c->skb));
			else
				printf("%-32s %6zu %7.1f %+7.1f %+7.1f   %s\n", c->name, c->f->len,
				       m[i] + (c->skb ? empty_tc_ns : empty_ns), m[i], mn[i],
				       verdict_name(c->want, c->skb));
		}
	}
	printf("\nevents written %" PRIu64 ", lost to a full ring buffer %" PRIu64
	       " (the URL-hit case fills the %u KiB ring each round: nobody consumes during a "
	       "run)\n",
	       (uint64_t)cnt.events, (uint64_t)cnt.ringbuf_drops,
	       bpf_map__max_entries(skel->maps.events) / 1024);

	printf("\ntargets (ebpfmon over empty / xdp-filter over empty, minimum of the rounds: the "
	       "least disturbed measurement on a shared machine)\n");
	if (have_xf) {
		static const struct {
			const char *what;
			size_t ours, peer;
			double target;
		} t[] = {{"clean tracked IPv4", 1, 2, TARGET_CLEAN_RATIO},
			 {"clean tracked IPv6", 3, 4, TARGET_CLEAN_RATIO},
			 {"banned IPv4", 5, 6, TARGET_BANNED_RATIO},
			 {"banned IPv4, 1 h ban", 7, 6, TARGET_BANNED_RATIO}};

		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			double ratio = mn[t[i].ours] / mn[t[i].peer];

			printf("  %-20s %5.1f / %5.1f ns = %4.2f  (<= %.1f) %s\n", t[i].what,
			       mn[t[i].ours], mn[t[i].peer], ratio, t[i].target,
			       ratio <= t[i].target ? "PASS" : "OVER");
		}
	} else {
		printf("  not evaluated: xdp-filter is not installed\n");
	}
	printf("  IPv6 over IPv4, clean: %+.1f ns\n", mn[3] - mn[1]);
	/* FIGURE lines: minimums, as the targets */
	figure("xdp.clean_v4_ns", mn[1], mn[2], have_xf, "ratio<=1.3");
	figure("xdp.clean_v6_ns", mn[3], mn[4], have_xf, "ratio<=1.3");
	figure("xdp.banned_v4_ns", mn[5], mn[6], have_xf, "ratio<=0.8");
	figure("xdp.banned_timed_v4_ns", mn[7], mn[6], have_xf, "ratio<=0.8");
	figure("xdp.allowlisted_ban_ns", mn[8], 0, false, "-");
	/* HTTP: this build against the one before (-o), when given */
	figure("xdp.http_miss_ns", mn[9], mn[old_of[9]], old_fd > 0, "ratio<=1.05");
	figure("xdp.http_hit_ns", mn[10], mn[old_of[10]], old_fd > 0, "ratio<=1.05");
	figure("xdp.http_body_ns", mn[11], mn[old_of[11]], old_fd > 0, "ratio<=1.05");
	/* tc_ingress over the empty tc program; peer: xdp_ingress over empty XDP, same frame */
	figure("xdp.tc_clean_v4_ns", mn[tc_first + 1], mn[1], true, "-");
	figure("xdp.tc_clean_v6_ns", mn[tc_first + 2], mn[3], true, "-");
	figure("xdp.tc_banned_v4_ns", mn[tc_first + 3], mn[5], true, "-");
	figure("xdp.tc_banned_timed_v4_ns", mn[tc_first + 4], mn[7], true, "-");
	figure("xdp.tc_http_miss_ns", mn[tc_first + 5], mn[9], true, "-");
	figure("xdp.tc_http_hit_ns", mn[tc_first + 6], mn[10], true, "-");
	rc = 0;
out:
	for (size_t i = 0; i < sizeof(op_fd) / sizeof(op_fd[0]); i++)
		if (op_fd[i] >= 0)
			close(op_fd[i]);
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
