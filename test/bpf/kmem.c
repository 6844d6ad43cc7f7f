// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * kernel_memory: the kernel memory each map of the ebpfmon object locks, computed from the
 * map definitions (type, flags, key and value sizes, max_entries as the loader sets them)
 * the way the kernel sizes each map type, for any number of possible CPUs; checked here
 * against what the kernel reports for the loaded maps (the memlock of /proc/PID/fdinfo,
 * which `bpftool map show` prints). docs/kernel-memory.md holds its table.
 *
 * The kernel's own structures (struct bpf_htab, htab_elem, bpf_array, lpm_trie_node,
 * bpf_ringbuf_map and the hash bucket) are sized from the running kernel's BTF, so the model
 * follows the kernel it runs on. How each type is sized (map_mem_usage in kernel/bpf/):
 *
 *   hash, preallocated  sizeof(bpf_htab) + n_buckets * sizeof(bucket)
 *                       + (max_entries [+ CPUs for a plain HASH]) * elem_size
 *                       [+ CPUs * 8 extra-element pointers for a plain HASH]
 *                       [+ entries * CPUs * round8(value) for a per-CPU hash]
 *                       elem_size = sizeof(htab_elem) + round8(key) + round8(value) (or 8:
 *                       the per-CPU pointer); n_buckets = max_entries rounded up to 2^n
 *   hash, NO_PREALLOC   the same head and buckets, + entries * (elem_size + 8)
 *   LPM trie            entries * (sizeof(lpm_trie_node) + key - 4 + value)
 *   array               sizeof(bpf_array) + entries * round8(value) (page-aligned both when
 *                       mmapable); per-CPU: + entries * (8 + CPUs * round8(value))
 *   ring buffer         sizeof(bpf_ringbuf_map) + (3 + size / page) pages
 *                       + (3 + 2 * size / page) * 8 page pointers
 *
 * Exit 0 when the model matches every map here and the total for TRACKED addresses on 64
 * CPUs, with every map full, is at most 64 MiB; 1 otherwise; 77 without root (1 with
 * EBPFMON_REQUIRE_BPF=1); 2 on a bad option.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "bpf_test_env.h"
#include "config.h"
#include "xdp_harness.h"

#define PROG		 "kernel_memory"
#define MIB		 (1024.0 * 1024.0)
#define BUDGET_CPUS	 64
#define BUDGET_BYTES	 (64ull << 20)
#define MAX_CPU_COLUMNS	 8
#define NONPREALLOC_FILL 1000u /* entries written to check the growth of the lazy maps */

/* The kernel's structures, from its BTF. */
struct ksizes {
	uint64_t htab, htab_elem, bucket, array, trie_node, ringbuf_map;
	uint64_t shtab, shtab_bucket, shtab_elem; /* sockhash (net/core/sock_map.c) */
	/* ints per CPU a hash map is charged for its lock counters (HASHTAB_MAP_LOCK_COUNT):
	 * still counted by map_mem_usage where the map_locked[] array is gone (Linux 6.15) */
	uint64_t lock_count;
	long page;
};

static uint64_t round8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

static uint64_t pow2_up(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static uint64_t page_align(uint64_t v, long page)
{
	return (v + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
}

static int struct_size(const struct btf *btf, const char *name, uint64_t *out)
{
	int id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	long long sz = id > 0 ? btf__resolve_size(btf, id) : -1;

	if (sz <= 0) {
		fprintf(stderr, "%s: struct %s is not in the kernel's BTF\n", PROG, name);
		return -ENOENT;
	}
	*out = (uint64_t)sz;
	return 0;
}

static int ksizes_load(struct ksizes *k)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	const struct btf_member *m;
	int id, err;

	memset(k, 0, sizeof(*k));
	k->page = sysconf(_SC_PAGESIZE);
	k->lock_count = 8;
	if (!btf) {
		fprintf(stderr, "%s: cannot read the kernel's BTF: %s\n", PROG, strerror(errno));
		return -errno;
	}
	err = struct_size(btf, "bpf_htab", &k->htab) ?: struct_size(btf, "htab_elem", &k->htab_elem)
	      ?: struct_size(btf, "bpf_array", &k->array)
	      ?: struct_size(btf, "lpm_trie_node", &k->trie_node)
	      ?: struct_size(btf, "bpf_ringbuf_map", &k->ringbuf_map)
	      ?: struct_size(btf, "bpf_shtab", &k->shtab)
	      ?: struct_size(btf, "bpf_shtab_bucket", &k->shtab_bucket)
	      ?: struct_size(btf, "bpf_shtab_elem", &k->shtab_elem);
	if (err)
		goto out;
	/* The bucket is what bpf_htab.buckets points to ("bucket" alone names other structs). */
	id = btf__find_by_name_kind(btf, "bpf_htab", BTF_KIND_STRUCT);
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++, m++) {
		const char *name = btf__name_by_offset(btf, m->name_off);
		const struct btf_type *mt = btf__type_by_id(btf, m->type);

		if (!strcmp(name, "buckets") && btf_is_ptr(mt))
			k->bucket = (uint64_t)btf__resolve_size(btf, mt->type);
		else if (!strcmp(name, "map_locked") && btf_is_array(mt))
			k->lock_count = btf_array(mt)->nelems;
	}
	if (!k->bucket) {
		fprintf(stderr, "%s: bpf_htab.buckets not found in the kernel's BTF\n", PROG);
		err = -ENOENT;
	}
out:
	btf__free(btf);
	return err;
}

/* How the kernel sizes one map (enum bpf_map_type) holding entries, on cpus CPUs. */
struct mapdef {
	const char *name;
	enum bpf_map_type type;
	uint32_t flags, key, value, max_entries;
};

static uint64_t model(const struct ksizes *k, const struct mapdef *d, uint64_t entries,
		      unsigned int cpus)
{
	bool prealloc = !(d->flags & BPF_F_NO_PREALLOC);
	uint64_t u, elem, n;

	switch (d->type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH: {
		bool percpu = d->type == BPF_MAP_TYPE_PERCPU_HASH ||
			      d->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
		bool lru = d->type == BPF_MAP_TYPE_LRU_HASH ||
			   d->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;

		elem = k->htab_elem + round8(d->key) + (percpu ? 8 : round8(d->value));
		u = k->htab + k->bucket * pow2_up(d->max_entries) + 4ull * cpus * k->lock_count;
		if (prealloc) {
			n = d->max_entries + (!percpu && !lru ? cpus : 0);
			u += elem * n;
			if (percpu)
				u += round8(d->value) * cpus * n;
			else if (!lru)
				u += 8ull * cpus;
		} else {
			u += (elem + 8) * entries;
			if (percpu)
				u += (8 + 8 + round8(d->value) * cpus) * entries;
		}
		return u;
	}
	case BPF_MAP_TYPE_LPM_TRIE:
		return (k->trie_node + (d->key - 4) + d->value) * entries;
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		elem = round8(d->value);
		if (d->type == BPF_MAP_TYPE_PERCPU_ARRAY)
			return k->array + d->max_entries * (8 + elem * cpus);
		if (d->flags & BPF_F_MMAPABLE)
			return page_align(k->array, k->page) +
			       page_align(d->max_entries * elem, k->page);
		return k->array + d->max_entries * elem;
	case BPF_MAP_TYPE_SOCKHASH:
		/* sock_hash_mem_usage(): the buckets, then an element per socket in it */
		return k->shtab + k->shtab_bucket * pow2_up(d->max_entries) +
		       (k->shtab_elem + round8(d->key)) * entries;
	case BPF_MAP_TYPE_RINGBUF:
		n = d->max_entries / (uint64_t)k->page;
		return k->ringbuf_map + (3 + n) * (uint64_t)k->page + (3 + 2 * n) * 8;
	default:
		return 0;
	}
}

static bool is_lazy(const struct mapdef *d)
{
	return d->type == BPF_MAP_TYPE_LPM_TRIE ||
	       ((d->type == BPF_MAP_TYPE_HASH || d->type == BPF_MAP_TYPE_PERCPU_HASH) &&
		(d->flags & BPF_F_NO_PREALLOC));
}

/* What the kernel says a map locks: the memlock line of its fdinfo. */
static int64_t memlock_of(int fd)
{
	char path[64], line[256];
	int64_t v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %" SCNd64, &v) == 1)
			break;
	fclose(f);
	return v;
}

static const char *type_name(enum bpf_map_type t)
{
	const char *s = libbpf_bpf_map_type_str(t);

	return s ? s : "?";
}

/* Entries of a lazy map: written here to check its growth (a key per i, a zero value). */
static int fill_lazy(struct bpf_map *map, uint32_t n)
{
	size_t ksz = bpf_map__key_size(map), vsz = bpf_map__value_size(map);
	uint8_t *key = calloc(1, ksz), *val = calloc(1, vsz);
	int err = key && val ? 0 : -ENOMEM;

	for (uint32_t i = 0; !err && i < n; i++) {
		memset(key, 0, ksz);
		if (bpf_map__type(map) == BPF_MAP_TYPE_LPM_TRIE) {
			uint32_t plen = (uint32_t)(ksz - 4) * 8; /* the whole key */

			memcpy(key, &plen, sizeof(plen));
			memcpy(key + 4, &i, sizeof(i));
		} else {
			memcpy(key, &i, sizeof(i) < ksz ? sizeof(i) : ksz);
		}
		err = bpf_map__update_elem(map, key, ksz, val, vsz, BPF_NOEXIST);
	}
	free(key);
	free(val);
	return err;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [-t TRACKED] [-c CPUS[,CPUS...]]\n"
		"\n"
		"Load the ebpfmon object with the loader's map sizes (max_tracked_ips = TRACKED,\n"
		"max_bans and event_buffer_kb at their defaults), check the kernel memory model of\n"
		"each map against what the kernel reports here (fdinfo memlock, as `bpftool map\n"
		"show`), then print a Markdown table of each map's memory for CPUS possible CPUs,\n"
		"every map full. Fails when the model is off or the total for %d CPUs exceeds\n"
		"64 MiB. Needs root.\n"
		"\n"
		"  -t TRACKED  ip_stats entries (default 65536)\n"
		"  -c CPUS     CPU counts of the table (default 2,16,64,128)\n"
		"  -h, --help  this help\n"
		"\n"
		"EXAMPLES\n"
		"  sudo %s\n"
		"  sudo %s -t 1048576 -c 64\n",
		PROG, BUDGET_CPUS, PROG, PROG);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	unsigned int cols[MAX_CPU_COLUMNS] = {2, 16, 64, 128}, ncols = 4, here = xh_ncpus();
	uint64_t tracked = 65536, total_load[MAX_CPU_COLUMNS] = {0},
		 total_full[MAX_CPU_COLUMNS] = {0};
	uint64_t model_here = 0;
	int64_t memlock_here = 0;
	struct mapdef defs[32];
	struct ebpfmon *skel = NULL;
	struct bpf_map *map;
	struct config cfg;
	struct ksizes k;
	size_t nd = 0;
	int opt, err, rc = 1, mismatches = 0;

	while ((opt = getopt_long(argc, argv, "t:c:h", longopts, NULL)) != -1) {
		char *end, *s;

		switch (opt) {
		case 't':
			errno = 0;
			tracked = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || tracked < 1024 ||
			    tracked > 16777216) {
				fprintf(stderr,
					"%s: -t %s: want a number from 1024 to 16777216 "
					"(max_tracked_ips)\n",
					PROG, optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'c':
			ncols = 0;
			for (s = optarg;; s = end + 1) {
				unsigned long v;

				errno = 0;
				v = strtoul(s, &end, 10);
				if (errno || end == s || (*end && *end != ',') || v < 1 ||
				    v > 8192 || ncols == MAX_CPU_COLUMNS) {
					fprintf(stderr,
						"%s: -c %s: want up to %d CPU counts from 1 to "
						"8192, comma-separated\n",
						PROG, optarg, MAX_CPU_COLUMNS);
					usage(stderr);
					return 2;
				}
				cols[ncols++] = (unsigned int)v;
				if (!*end)
					break;
			}
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
	if (ksizes_load(&k))
		return 1;
	config_defaults(&cfg);
	err = xh_load_opts(&skel, (uint32_t)tracked, true);
	if (err) {
		bpf_test_skip_if_privilege(PROG, "the ebpfmon BPF object", err);
		fprintf(stderr, "%s: cannot load the ebpfmon BPF object: %s\n", PROG,
			strerror(-err));
		return 1;
	}
	/* The loader sizes these three from the configuration (loader/loader.c); the object
	 * loaded here got ip_stats already, bans and events are checked to be what it sets. */
	if (bpf_map__max_entries(skel->maps.bans) != cfg.max_bans ||
	    bpf_map__max_entries(skel->maps.events) != cfg.event_buffer_kb * 1024) {
		fprintf(stderr,
			"%s: bans or events are not sized as the loader's defaults size "
			"them (max_bans %u, event_buffer_kb %u)\n",
			PROG, cfg.max_bans, cfg.event_buffer_kb);
		goto out;
	}

	printf("Checked on this machine (%u possible CPUs, kernel BTF: bpf_htab %" PRIu64
	       " B, htab_elem %" PRIu64 " B, bucket %" PRIu64 " B, lpm_trie_node %" PRIu64
	       " B, bpf_array %" PRIu64 " B), the model against the kernel's memlock:\n\n",
	       here, k.htab, k.htab_elem, k.bucket, k.trie_node, k.array);
	printf("| map | type | key | value | max_entries | entries | model | memlock |\n");
	printf("|---|---|--:|--:|--:|--:|--:|--:|\n");
	bpf_object__for_each_map(map, skel->obj)
	{
		struct mapdef *d = &defs[nd];
		int fd = bpf_map__fd(map);

		if (nd == sizeof(defs) / sizeof(defs[0]))
			break;
		*d = (struct mapdef){.name = bpf_map__name(map),
				     .type = bpf_map__type(map),
				     .flags = bpf_map__map_flags(map),
				     .key = bpf_map__key_size(map),
				     .value = bpf_map__value_size(map),
				     .max_entries = bpf_map__max_entries(map)};
		nd++;
		/* empty, then with entries when the map grows with them */
		for (int pass = 0; pass < (is_lazy(d) ? 2 : 1); pass++) {
			uint64_t entries = pass ? NONPREALLOC_FILL : 0, m;
			int64_t ml;

			if (pass && fill_lazy(map, NONPREALLOC_FILL)) {
				fprintf(stderr, "%s: cannot write %u entries to %s\n", PROG,
					NONPREALLOC_FILL, d->name);
				goto out;
			}
			m = model(&k, d, entries, here);
			ml = memlock_of(fd);
			printf("| %s | %s | %u | %u | %u | %" PRIu64 " | %" PRIu64 " | %" PRId64
			       " |%s\n",
			       d->name, type_name(d->type), d->key, d->value, d->max_entries,
			       entries, m, ml, (int64_t)m == ml ? "" : " **differs**");
			if ((int64_t)m != ml)
				mismatches++;
			if (pass == 0) {
				model_here += m;
				memlock_here += ml;
			}
		}
	}
	printf("| **total at load** | | | | | | %" PRIu64 " | %" PRId64 " |\n\n", model_here,
	       memlock_here);

	printf("Every map full (lazy maps at max_entries), max_tracked_ips %" PRIu64
	       ", MiB:\n\n| map | type |",
	       tracked);
	for (unsigned int c = 0; c < ncols; c++)
		printf(" %u CPUs |", cols[c]);
	printf("\n|---|---|");
	for (unsigned int c = 0; c < ncols; c++)
		printf("--:|");
	printf("\n");
	for (size_t i = 0; i < nd; i++) {
		printf("| %s | %s |", defs[i].name, type_name(defs[i].type));
		for (unsigned int c = 0; c < ncols; c++) {
			uint64_t full = model(&k, &defs[i], defs[i].max_entries, cols[c]);

			total_full[c] += full;
			total_load[c] += model(&k, &defs[i], 0, cols[c]);
			printf(" %.2f |", full / MIB);
		}
		printf("\n");
	}
	printf("| **total, every map full** | |");
	for (unsigned int c = 0; c < ncols; c++)
		printf(" **%.2f** |", total_full[c] / MIB);
	printf("\n| total at load (lazy maps empty) | |");
	for (unsigned int c = 0; c < ncols; c++)
		printf(" %.2f |", total_load[c] / MIB);
	printf("\n\n");

	{
		uint64_t total = 0;

		for (size_t i = 0; i < nd; i++)
			total += model(&k, &defs[i], defs[i].max_entries, BUDGET_CPUS);
		printf("%s: %d CPUs, %" PRIu64 " tracked addresses, every map full: %.2f MiB "
		       "(budget 64 MiB)%s\n",
		       PROG, BUDGET_CPUS, tracked, total / MIB,
		       total <= BUDGET_BYTES ? "" : ": OVER");
		if (mismatches)
			fprintf(stderr,
				"%s: the model differs from the kernel's memlock for %d "
				"map(s): docs/kernel-memory.md no longer holds\n",
				PROG, mismatches);
		rc = !mismatches && (total <= BUDGET_BYTES || tracked != 65536) ? 0 : 1;
	}
out:
	ebpfmon__destroy(skel);
	return rc;
}
