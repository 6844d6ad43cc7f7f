// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API's snapshots (api_snap.h): a cycle of slices on the loop's thread that collects the
 * status figures and the live top list, published together; readers on nng's threads take a
 * reference under the mutex and build their reply from it without holding anything.
 *
 * A cycle:  INFO   interfaces, programs, loader, database, resources, open anomalies
 *           BANS   entries of bans in force (a batched walk, sliced), then ban_nets
 *           WALK   ip_stats (a batched walk, sliced): tracked addresses, the top k of each
 *                  order in two min-heaps; merged into one array sorted by address
 *           FINISH connections and the banned flag of each address kept (sliced)
 *           then publish; changes (BanIP, UnbanIP) made during the cycle are applied to
 *           what it publishes.
 */
#include "api_snap.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "maps.h"
#include "monoclock.h"
#include "policy.h"
#include "store.h"
#include "sysmon.h"

#define WALK_BATCH  256
#define CHANGED_MAX 4096 /* changes remembered during a cycle; more: all flags again */

/* A batched walk of a hash map that can stop and go on later. */
struct walker {
	int fd;
	size_t key_size, value_size;
	unsigned char *keys, *vals;
	unsigned char in[32], out[32];
	bool started, done;
};

typedef void (*walk_fn)(void *ctx, const void *key, const void *value);

enum phase { PH_IDLE, PH_INFO, PH_BANS, PH_WALK, PH_FINISH };

static const char *const phase_name[] = {
	[PH_IDLE] = "status figures",
	[PH_INFO] = "status figures",
	[PH_BANS] = "bans",
	[PH_WALK] = "ip_stats",
	[PH_FINISH] = "connections and bans of the top",
};

struct top_build {
	int64_t as_of_unix_ms;
	uint32_t k;
	int ncpus;
	uint64_t tracked;
	struct api_top_entry *heap[API_TOP_ORDERS];
	size_t n[API_TOP_ORDERS];
};

struct api_snap {
	pthread_mutex_t mu; /* the two pointers below */
	struct api_status_snap *status;
	struct api_top_snap *top;

	/* read on any thread, written at creation only */
	int counters_fd, ncpus;
	uint64_t started_ns;

	/* written on any thread */
	atomic_uint_fast64_t demand_ns;
	atomic_uint_fast64_t want_k_ns;
	atomic_uint want_k;

	/* the loop's thread only */
	const struct maps *maps;
	uint64_t due_ns, period_ns;
	bool kicked;
	uint32_t kick_k;
	enum phase phase;
	uint64_t cycle_ns, work_ns, slice_max_ns;
	enum phase slice_max_phase; /* of the longest slice */
	struct api_status_snap *nst;
	struct walker w;
	uint64_t bans_counted;
	int64_t bans_delta;
	struct top_build tb;
	struct api_top_snap *ntop;
	size_t finish_i;
	struct addr_cidr *changed;
	size_t n_changed;
	bool changed_all;
};

uint64_t api_snap_now(void)
{
	return mono_ns();
}

/* --- the walker --- */

static int walker_init(struct walker *w, int fd, size_t key_size, size_t value_size)
{
	*w = (struct walker){.fd = fd, .key_size = key_size, .value_size = value_size};
	if (key_size > sizeof(w->in))
		return -EINVAL;
	w->keys = malloc(WALK_BATCH * key_size);
	w->vals = malloc(WALK_BATCH * value_size);
	return w->keys && w->vals ? 0 : -ENOMEM;
}

static void walker_free(struct walker *w)
{
	free(w->keys);
	free(w->vals);
	w->keys = w->vals = NULL;
}

/* Batches until the deadline or the end: 1 at the end, 0 when there is more, -errno. */
static int walker_step(struct walker *w, walk_fn fn, void *ctx, uint64_t deadline)
{
	do {
		__u32 count = WALK_BATCH;
		int err = bpf_map_lookup_batch(w->fd, w->started ? w->in : NULL, w->out, w->keys,
					       w->vals, &count, NULL);

		if (err && errno != ENOENT)
			return -errno;
		w->started = true;
		for (__u32 i = 0; i < count; i++)
			fn(ctx, w->keys + i * w->key_size, w->vals + i * w->value_size);
		if (err) { /* ENOENT: that was the last batch */
			w->done = true;
			return 1;
		}
		memcpy(w->in, w->out, w->key_size);
	} while (api_snap_now() < deadline);
	return 0;
}

/* --- the status figures --- */

/* The XDP mode of prog_id on the interface name (ifindex per its link), as netlink tells. */
static const char *xdp_mode(const char *name, __u32 ifindex, __u32 prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (!ifindex)
		return "none"; /* the link lost its interface */
	if (if_nametoindex(name) != ifindex || bpf_xdp_query((int)ifindex, 0, &q))
		return "unknown"; /* in another network namespace, or not readable */
	if (q.attach_mode == XDP_ATTACHED_NONE)
		return "none";
	if (q.drv_prog_id == prog_id)
		return "native";
	if (q.skb_prog_id == prog_id)
		return "generic";
	if (q.hw_prog_id == prog_id)
		return "offload";
	return "unknown";
}

/*
 * enum bpf_link_type's BPF_LINK_TYPE_TCX (Linux 6.6), which the uapi headers here may
 * predate. Its bpf_link_info.tcx begins with the ifindex, where .xdp has its own.
 */
#define API_LINK_TYPE_TCX 11

size_t api_snap_interfaces(const char *root, struct api_snap_iface *out, size_t max)
{
	char dir[CONFIG_PATH_MAX + 16], path[CONFIG_PATH_MAX + 300];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", root, EBPFMON_PIN_LINKS);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		struct api_snap_iface *i = &out[n];
		struct bpf_link_info info = {0};
		__u32 len = sizeof(info);
		const char *ifname;
		bool tcx;
		int fd;

		if (!strncmp(de->d_name, "xdp-", 4)) {
			tcx = false;
			ifname = de->d_name + 4;
		} else if (!strncmp(de->d_name, "ingress-", 8)) {
			tcx = true;
			ifname = de->d_name + 8;
		} else {
			continue;
		}
		if (!*ifname)
			continue;
		snprintf(i->name, sizeof(i->name), "%.63s", ifname);
		i->xdp_mode = "unknown";
		i->ifindex = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len)) {
			if (!tcx && info.type == BPF_LINK_TYPE_XDP) {
				i->ifindex = info.xdp.ifindex;
				i->xdp_mode = xdp_mode(i->name, info.xdp.ifindex, info.prog_id);
			} else if (tcx && info.type == API_LINK_TYPE_TCX) {
				/* a detached tcx link (its interface went) has ifindex 0 */
				i->ifindex = info.xdp.ifindex;
				i->xdp_mode = i->ifindex ? "tc" : "none";
			}
		}
		if (fd >= 0)
			close(fd);
		n++;
	}
	closedir(d);
	return n;
}

/* The programs pinned under progs/ (root's: readable only when the analyzer runs as root). */
static void programs(const char *root, struct api_status_snap *st)
{
	char dir[CONFIG_PATH_MAX + 16], path[CONFIG_PATH_MAX + 300];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", root, EBPFMON_PIN_PROGS);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) && st->n_progs < API_SNAP_PROGS) {
		struct api_snap_prog *pr = &st->progs[st->n_progs];
		struct bpf_prog_info info = {0};
		__u32 len = sizeof(info);
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			close(fd);
			continue;
		}
		close(fd);
		snprintf(pr->name, sizeof(pr->name), "%.63s", de->d_name);
		pr->id = info.id;
		pr->run_count = info.run_cnt;
		pr->run_time_ns = info.run_time_ns;
		st->n_progs++;
	}
	closedir(d);
}

/* The programs' statistics as the loader copies them into prog_stats (group-readable). */
static void programs_from_map(const char *root, struct api_status_snap *st)
{
	struct ebpfmon_prog_stats ps[EBPFMON_PROG_STATS_MAX];
	int n = maps_prog_stats(root, ps, EBPFMON_PROG_STATS_MAX);

	for (int i = 0; i < n && st->n_progs < API_SNAP_PROGS; i++) {
		struct api_snap_prog *pr = &st->progs[st->n_progs++];

		snprintf(pr->name, sizeof(pr->name), "%s", ps[i].name);
		pr->id = ps[i].id;
		pr->run_count = ps[i].run_cnt;
		pr->run_time_ns = ps[i].run_time_ns;
	}
}

static int count_anomaly(const struct store_anomaly *a, void *ctx)
{
	(void)a;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* Everything of the status but the map counts. */
static void status_info(struct policy *p, const struct sysmon *sm, struct api_status_snap *st)
{
	const struct sysmon_report *rep = sysmon_last(sm);
	struct store_query q = {.active_only = true};
	struct store *db = p->store;
	uint64_t open = 0;

	st->n_ifaces = api_snap_interfaces(p->cfg->pin_root, st->ifaces, API_SNAP_IFACES);
	programs(p->cfg->pin_root, st);
	if (!st->n_progs) /* the program pins are root's: the loader's copy instead */
		programs_from_map(p->cfg->pin_root, st);
	st->db_open = db != NULL;
	st->db_ok = db && store_healthy(db);
	if (db && !st->db_ok) {
		st->db_failing_since = store_failing_since(db);
		snprintf(st->db_error, sizeof(st->db_error), "%s", store_last_error(db));
	}
	st->dry_run = p->cfg->dry_run;
	if (rep) {
		st->have = rep->have;
		st->cpu_pct = rep->cpu_pct;
		st->mem_pct = rep->mem_pct;
		st->disk_bps = rep->disk_mbps * 1e6;
	}
	if (db && store_anomaly_list(db, &q, count_anomaly, &open) >= 0)
		st->open_anomalies = open;
}

/*
 * Whether the loader runs: a process holds the exclusive flock() the loader takes on links/ of
 * the pin root (lock_folder(), loader.c; the folder is this user's, 0700, while a loader runs).
 * Tried with a shared lock that does not wait: taken, it goes again at once (the loader tries
 * again when it meets it). /proc/locks, which would name the holder, is not read: its read
 * waits for an RCU grace period and holds up every file lock of the system meanwhile,
 * SQLite's too (8-24 ms here).
 */
static bool loader_running(const char *pin_root)
{
	char path[CONFIG_PATH_MAX + 16];
	bool held;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_root, EBPFMON_PIN_LINKS);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	held = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
	close(fd); /* and with it the shared lock, when it was taken */
	return held;
}

struct count_ctx {
	unsigned long long now;
	uint64_t n;
};

static void count_in_force(void *ctx, const void *key, const void *value)
{
	struct count_ctx *c = ctx;

	(void)key;
	c->n += maps_ban_in_force(value, c->now);
}

/* --- the top list --- */

static uint64_t key_of(const struct api_top_entry *e, int o)
{
	return o == API_TOP_BYTES ? e->rx_bytes + e->tx_bytes : e->rx_packets + e->tx_packets;
}

static void heap_swap(struct api_top_entry *h, size_t a, size_t b)
{
	struct api_top_entry t = h[a];

	h[a] = h[b];
	h[b] = t;
}

/* Offer e to the min-heap of the k largest of order o. */
static void heap_offer(struct top_build *tb, int o, const struct api_top_entry *e)
{
	struct api_top_entry *h = tb->heap[o];
	size_t i, n = tb->n[o];

	if (n < tb->k) {
		h[n] = *e;
		tb->n[o] = n + 1;
		for (i = n; i && key_of(&h[(i - 1) / 2], o) > key_of(&h[i], o); i = (i - 1) / 2)
			heap_swap(h, i, (i - 1) / 2);
		return;
	}
	if (!n || key_of(e, o) <= key_of(&h[0], o))
		return;
	h[0] = *e;
	for (i = 0;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < n && key_of(&h[l], o) < key_of(&h[m], o))
			m = l;
		if (l + 1 < n && key_of(&h[l + 1], o) < key_of(&h[m], o))
			m = l + 1;
		if (m == i)
			break;
		heap_swap(h, i, m);
		i = m;
	}
}

static void top_one(void *ctx, const void *key, const void *value)
{
	struct top_build *tb = ctx;
	const struct ebpfmon_ip_stats *v = value;
	struct api_top_entry e = {0};

	memcpy(&e.addr, key, sizeof(e.addr));
	for (int c = 0; c < tb->ncpus; c++) {
		e.rx_packets += v[c].rx_packets;
		e.rx_bytes += v[c].rx_bytes;
		e.tx_packets += v[c].tx_packets;
		e.tx_bytes += v[c].tx_bytes;
		e.syns += v[c].syns;
		if (v[c].first_seen_ns && (!e.first_ns || v[c].first_seen_ns < e.first_ns))
			e.first_ns = v[c].first_seen_ns;
		if (v[c].last_seen_ns > e.last_ns)
			e.last_ns = v[c].last_seen_ns;
	}
	tb->tracked++;
	for (int o = 0; o < API_TOP_ORDERS; o++)
		heap_offer(tb, o, &e);
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tb_init(struct top_build *tb, uint32_t k, int ncpus)
{
	*tb = (struct top_build){.k = k, .ncpus = ncpus, .as_of_unix_ms = unix_ms()};
	for (int o = 0; o < API_TOP_ORDERS; o++)
		tb->heap[o] = malloc((k ? k : 1) * sizeof(struct api_top_entry));
	return tb->heap[0] && tb->heap[1] ? 0 : -ENOMEM;
}

static void tb_free(struct top_build *tb)
{
	for (int o = 0; o < API_TOP_ORDERS; o++) {
		free(tb->heap[o]);
		tb->heap[o] = NULL;
	}
}

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct api_top_entry *)a)->addr,
		      &((const struct api_top_entry *)b)->addr, sizeof(struct ebpfmon_addr));
}

struct order_ctx {
	const struct api_top_entry *e;
	int o;
};

/* Largest first; equal keys by address. */
static int order_cmp(const void *a, const void *b, void *arg)
{
	const struct order_ctx *c = arg;
	const struct api_top_entry *x = &c->e[*(const uint32_t *)a],
				   *y = &c->e[*(const uint32_t *)b];
	uint64_t kx = key_of(x, c->o), ky = key_of(y, c->o);

	if (kx != ky)
		return kx > ky ? -1 : 1;
	return memcmp(&x->addr, &y->addr, sizeof(x->addr));
}

static void top_put(struct api_top_snap *t)
{
	if (!t)
		return;
	for (int o = 0; o < API_TOP_ORDERS; o++)
		free(t->cache[o].buf);
	pthread_mutex_destroy(&t->cache_mu);
	free(t->e);
	free((void *)t->banned);
	for (int o = 0; o < API_TOP_ORDERS; o++)
		free(t->by[o]);
	free(t);
}

/* The heaps into one snapshot: entries sorted by address, both orders as indices. */
static struct api_top_snap *tb_finish(struct top_build *tb)
{
	struct api_top_snap *t = calloc(1, sizeof(*t));
	size_t n = 0, all = tb->n[0] + tb->n[1];

	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	atomic_init(&t->gen, 0);
	pthread_mutex_init(&t->cache_mu, NULL);
	t->k = tb->k;
	t->tracked = tb->tracked;
	t->as_of_unix_ms = tb->as_of_unix_ms;
	t->e = malloc((all ? all : 1) * sizeof(*t->e));
	t->banned = calloc(all ? all : 1, 1);
	for (int o = 0; o < API_TOP_ORDERS; o++)
		t->by[o] = malloc((tb->n[o] ? tb->n[o] : 1) * sizeof(uint32_t));
	if (!t->e || !t->banned || !t->by[0] || !t->by[1]) {
		top_put(t);
		return NULL;
	}
	for (int o = 0; o < API_TOP_ORDERS; o++)
		for (size_t i = 0; i < tb->n[o]; i++) {
			t->e[n] = tb->heap[o][i];
			t->e[n++].in = (uint8_t)(1u << o);
		}
	qsort(t->e, n, sizeof(*t->e), addr_cmp);
	/* one entry per address: in both heaps, it is the same sum */
	t->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (t->n && !addr_cmp(&t->e[t->n - 1], &t->e[i]))
			t->e[t->n - 1].in |= t->e[i].in;
		else
			t->e[t->n++] = t->e[i];
	}
	for (int o = 0; o < API_TOP_ORDERS; o++) {
		struct order_ctx c = {t->e, o};

		for (size_t i = 0; i < t->n; i++)
			if (t->e[i].in & (1u << o))
				t->by[o][t->n_by[o]++] = (uint32_t)i;
		qsort_r(t->by[o], t->n_by[o], sizeof(uint32_t), order_cmp, &c);
	}
	return t;
}

/* Whether addr is banned now: by bans, or by a network of ban_nets. */
static bool banned_now(const struct maps *m, const struct ebpfmon_addr *addr,
		       unsigned long long now)
{
	struct addr_cidr one = {.addr = *addr, .prefixlen = 128};
	struct ebpfmon_lpm_key lpm;
	struct ebpfmon_ban b;

	if (!bpf_map_lookup_elem(m->bans, addr, &b) && maps_ban_in_force(&b, now))
		return true;
	cidr_to_lpm_key(&one, &lpm); /* the longest network holding addr */
	return !bpf_map_lookup_elem(m->ban_nets, &lpm, &b) && maps_ban_in_force(&b, now);
}

/* Connections and the banned flag of entries [*i, n) until the deadline: 1 when done. */
static int top_lookups(const struct maps *m, struct api_top_snap *t, size_t *i, uint64_t deadline)
{
	unsigned long long now = maps_boot_ns();

	for (; *i < t->n; (*i)++) {
		struct api_top_entry *e = &t->e[*i];
		struct ebpfmon_conn c;

		if ((*i & 63) == 63 && api_snap_now() >= deadline)
			return 0;
		if (!bpf_map_lookup_elem(m->conn_count, &e->addr, &c))
			e->connections = c.active;
		atomic_store_explicit(&t->banned[*i], banned_now(m, &e->addr, now),
				      memory_order_relaxed);
	}
	return 1;
}

/* The banned flag of entry i as the maps say now; a change makes cached replies stale. */
static void flag_again(const struct maps *m, struct api_top_snap *t, size_t i,
		       unsigned long long now)
{
	bool b = banned_now(m, &t->e[i].addr, now);

	if (atomic_exchange_explicit(&t->banned[i], b, memory_order_relaxed) != b)
		atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
}

/* The banned flag again for the entries inside net. */
static void top_patch(const struct maps *m, struct api_top_snap *t, const struct addr_cidr *net)
{
	unsigned long long now = maps_boot_ns();

	if (net->prefixlen == 128) {
		struct api_top_entry key = {.addr = net->addr};
		struct api_top_entry *e = bsearch(&key, t->e, t->n, sizeof(*t->e), addr_cmp);

		if (e)
			flag_again(m, t, (size_t)(e - t->e), now);
		return;
	}
	for (size_t i = 0; i < t->n; i++)
		if (cidr_contains(net, &t->e[i].addr))
			flag_again(m, t, i, now);
}

int api_snap_top_cached(struct api_top_snap *t, uint32_t k, int o, uint64_t gen, void **buf,
			size_t *len)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&t->cache_mu);
	if (t->cache[o].buf && t->cache[o].k == k && t->cache[o].gen == gen) {
		*buf = malloc(t->cache[o].len ? t->cache[o].len : 1);
		if (*buf) {
			memcpy(*buf, t->cache[o].buf, t->cache[o].len);
			*len = t->cache[o].len;
			ret = 0;
		}
	}
	pthread_mutex_unlock(&t->cache_mu);
	return ret;
}

void api_snap_top_cache(struct api_top_snap *t, uint32_t k, int o, uint64_t gen, const void *buf,
			size_t len)
{
	void *copy = malloc(len ? len : 1);

	if (!copy)
		return;
	memcpy(copy, buf, len);
	pthread_mutex_lock(&t->cache_mu);
	free(t->cache[o].buf);
	t->cache[o].buf = copy;
	t->cache[o].len = len;
	t->cache[o].k = k;
	t->cache[o].gen = gen;
	pthread_mutex_unlock(&t->cache_mu);
}

/* --- sharing --- */

struct api_status_snap *api_snap_status(struct api_snap *s)
{
	struct api_status_snap *st;

	pthread_mutex_lock(&s->mu);
	st = s->status;
	if (st)
		atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->mu);
	return st;
}

void api_snap_put_status(struct api_status_snap *st)
{
	if (st && atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
		free(st);
}

struct api_top_snap *api_snap_top(struct api_snap *s)
{
	struct api_top_snap *t;

	pthread_mutex_lock(&s->mu);
	t = s->top;
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->mu);
	return t;
}

void api_snap_put_top(struct api_top_snap *t)
{
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		top_put(t);
}

void api_snap_demand(struct api_snap *s, uint32_t k)
{
	uint64_t now = api_snap_now();

	atomic_store_explicit(&s->demand_ns, now, memory_order_relaxed);
	if (!k)
		return;
	/* the largest k asked lately; a smaller one takes over once that is old */
	if (k >= atomic_load_explicit(&s->want_k, memory_order_relaxed) ||
	    now - atomic_load_explicit(&s->want_k_ns, memory_order_relaxed) >
		    API_SNAP_DEMAND_MS * 1000000ull) {
		atomic_store_explicit(&s->want_k, k, memory_order_relaxed);
		atomic_store_explicit(&s->want_k_ns, now, memory_order_relaxed);
	} else if (k == atomic_load_explicit(&s->want_k, memory_order_relaxed)) {
		atomic_store_explicit(&s->want_k_ns, now, memory_order_relaxed);
	}
}

int api_snap_counters(struct api_snap *s, struct ebpfmon_counters *sum)
{
	__u32 zero = 0;

	if (s->ncpus <= 0)
		return -EINVAL;
	{
		struct ebpfmon_counters c[s->ncpus];
		__u64 *out = (__u64 *)sum;

		if (bpf_map_lookup_elem(s->counters_fd, &zero, c))
			return -errno;
		memset(sum, 0, sizeof(*sum));
		for (int i = 0; i < s->ncpus; i++) {
			const __u64 *v = (const __u64 *)&c[i];

			for (size_t f = 0; f < sizeof(*sum) / sizeof(__u64); f++)
				out[f] += v[f];
		}
	}
	return 0;
}

uint64_t api_snap_started_ns(const struct api_snap *s)
{
	return s->started_ns;
}

/* --- the loop's side --- */

int api_snap_create(struct api_snap **out, const struct maps *m, uint64_t started_ns)
{
	struct api_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->changed = calloc(CHANGED_MAX, sizeof(*s->changed));
	if (!s->changed) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->maps = m;
	s->counters_fd = m->counters;
	s->ncpus = libbpf_num_possible_cpus();
	s->started_ns = started_ns;
	s->period_ns = API_SNAP_PERIOD_MS * 1000000ull;
	/* no cycle before a client asks: the first request waits for one, taken after it came */
	atomic_init(&s->demand_ns, 0);
	*out = s;
	return 0;
}

static void cycle_abort(struct api_snap *s)
{
	free(s->nst);
	s->nst = NULL;
	walker_free(&s->w);
	tb_free(&s->tb);
	top_put(s->ntop);
	s->ntop = NULL;
	s->phase = PH_IDLE;
}

void api_snap_destroy(struct api_snap *s)
{
	if (!s)
		return;
	cycle_abort(s);
	api_snap_put_status(s->status);
	api_snap_put_top(s->top);
	pthread_mutex_destroy(&s->mu);
	free(s->changed);
	free(s);
}

void api_snap_want(struct api_snap *s, uint32_t k)
{
	api_snap_demand(s, k);
	if (k > s->kick_k)
		s->kick_k = k;
	switch (s->phase) {
	case PH_IDLE:
		s->kicked = true;
		s->due_ns = api_snap_now();
		break;
	case PH_INFO:
	case PH_BANS:
		break; /* the walk has not begun: it keeps kick_k addresses at least */
	case PH_WALK:
	case PH_FINISH:
		if (s->tb.k < k)
			s->kicked = true; /* another cycle right after this one */
		break;
	}
}

uint64_t api_snap_due(const struct api_snap *s)
{
	return s->due_ns;
}

/* The k of a cycle: the largest asked lately, API_SNAP_TOP_MIN at least. */
static uint32_t cycle_k(struct api_snap *s, uint64_t now)
{
	uint32_t k = API_SNAP_TOP_MIN, w = atomic_load_explicit(&s->want_k, memory_order_relaxed);

	if (w > k && now - atomic_load_explicit(&s->want_k_ns, memory_order_relaxed) <=
			     API_SNAP_DEMAND_MS * 1000000ull)
		k = w;
	if (s->kick_k > k)
		k = s->kick_k;
	return k;
}

static void publish(struct api_snap *s, uint64_t now)
{
	struct api_status_snap *old_st;
	struct api_top_snap *old_top;
	uint64_t period = s->work_ns * API_SNAP_COST_SHARE;

	if (period < API_SNAP_PERIOD_MS * 1000000ull)
		period = API_SNAP_PERIOD_MS * 1000000ull;
	s->period_ns = period;
	/* what BanIP and UnbanIP changed while the cycle ran */
	if (s->changed_all) {
		size_t i = 0;

		top_lookups(s->maps, s->ntop, &i, UINT64_MAX);
	} else {
		for (size_t i = 0; i < s->n_changed; i++)
			top_patch(s->maps, s->ntop, &s->changed[i]);
	}
	s->n_changed = 0;
	s->changed_all = false;
	s->nst->active_bans = (int64_t)s->bans_counted + s->bans_delta > 0
				      ? (uint64_t)((int64_t)s->bans_counted + s->bans_delta)
				      : 0;
	s->nst->tracked = s->ntop->tracked;
	s->nst->taken_ns = s->ntop->taken_ns = s->cycle_ns;
	/* until two more cycles would have come: a request after that waits for one */
	s->nst->fresh_until_ns = s->ntop->fresh_until_ns = now + 2 * period;
	pthread_mutex_lock(&s->mu);
	old_st = s->status;
	old_top = s->top;
	s->status = s->nst;
	s->top = s->ntop;
	pthread_mutex_unlock(&s->mu);
	api_snap_put_status(old_st);
	api_snap_put_top(old_top);
	s->nst = NULL;
	s->ntop = NULL;
}

/* One slice of the cycle: 1 when it published. */
static int cycle_slice(struct api_snap *s, struct policy *p, const struct sysmon *sm, uint64_t now)
{
	uint64_t deadline = now + API_SNAP_SLICE_NS;
	struct count_ctx bans;
	int r;

	switch (s->phase) {
	case PH_IDLE:
		s->cycle_ns = now;
		s->work_ns = 0;
		s->slice_max_ns = 0;
		s->n_changed = 0;
		s->changed_all = false;
		s->nst = calloc(1, sizeof(*s->nst));
		if (!s->nst)
			return 0;
		atomic_init(&s->nst->refs, 1);
		s->phase = PH_INFO;
		__attribute__((fallthrough)); /* the figures are one slice */
	case PH_INFO:
		status_info(p, sm, s->nst);
		s->nst->loader_running = loader_running(p->cfg->pin_root);
		if (walker_init(&s->w, s->maps->bans, sizeof(struct ebpfmon_addr),
				sizeof(struct ebpfmon_ban))) {
			cycle_abort(s);
			return 0;
		}
		s->bans_counted = 0;
		s->bans_delta = 0;
		s->phase = PH_BANS;
		return 0;
	case PH_BANS:
		bans = (struct count_ctx){.now = maps_boot_ns()};
		r = walker_step(&s->w, count_in_force, &bans, deadline);
		s->bans_counted += bans.n;
		if (r == 0)
			return 0;
		walker_free(&s->w);
		if (r > 0) {
			long nets = maps_bans_in_force(s->maps->ban_nets,
						       sizeof(struct ebpfmon_lpm_key));

			if (nets > 0)
				s->bans_counted += (uint64_t)nets;
		}
		/*
		 * Counted: changes from now on are added to it. (One made while the walk of
		 * bans was between two slices may be counted twice or not at all, until the
		 * next cycle.)
		 */
		s->bans_delta = 0;
		if (tb_init(&s->tb, cycle_k(s, now), EBPFMON_IP_STATS_NVALS) ||
		    walker_init(&s->w, s->maps->ip_stats, sizeof(struct ebpfmon_addr),
				EBPFMON_IP_STATS_NVALS * sizeof(struct ebpfmon_ip_stats))) {
			cycle_abort(s);
			return 0;
		}
		s->kicked = false;
		s->kick_k = 0;
		s->phase = PH_WALK;
		return 0;
	case PH_WALK:
		r = walker_step(&s->w, top_one, &s->tb, deadline);
		if (r == 0)
			return 0;
		walker_free(&s->w);
		if (r < 0) /* unreadable: an empty list, tracked 0 */
			log_debug("api: cannot read map ip_stats: %s", strerror(-r));
		s->ntop = tb_finish(&s->tb);
		tb_free(&s->tb);
		if (!s->ntop) {
			cycle_abort(s);
			return 0;
		}
		s->finish_i = 0;
		s->phase = PH_FINISH;
		return 0;
	case PH_FINISH:
		if (!top_lookups(s->maps, s->ntop, &s->finish_i, deadline))
			return 0;
		now = api_snap_now();
		publish(s, now);
		s->phase = PH_IDLE;
		log_debug(
			"api: snapshot of %llu tracked addresses (top %u per order) in %.1f ms of "
			"work over %.1f ms, the longest slice %.2f ms (%s); the next in %.0f ms "
			"while clients ask",
			(unsigned long long)s->tb.tracked, s->tb.k, s->work_ns / 1e6,
			(now - s->cycle_ns) / 1e6, s->slice_max_ns / 1e6,
			phase_name[s->slice_max_phase], s->period_ns / 1e6);
		return 1;
	}
	return 0;
}

int api_snap_step(struct api_snap *s, struct policy *p, const struct sysmon *sm, uint64_t now_ns,
		  uint64_t *next_ns)
{
	int published = 0;

	if (s->due_ns && now_ns >= s->due_ns) {
		enum phase ph = s->phase;
		uint64_t took;

		published = cycle_slice(s, p, sm, now_ns);
		took = api_snap_now() - now_ns;
		s->work_ns += took;
		if (took > s->slice_max_ns) {
			s->slice_max_ns = took;
			s->slice_max_phase = ph;
		}
		if (s->phase != PH_IDLE) {
			s->due_ns = now_ns; /* the next slice after the loop's other work */
		} else {
			uint64_t demand = atomic_load_explicit(&s->demand_ns, memory_order_relaxed);
			uint64_t next = s->cycle_ns + s->period_ns;

			if (s->kicked)
				s->due_ns = now_ns; /* a request waits for more addresses */
			else if (demand + API_SNAP_DEMAND_MS * 1000000ull > now_ns)
				s->due_ns = next > now_ns ? next : now_ns;
			else
				s->due_ns = 0; /* nobody asks: no cycles */
		}
	}
	*next_ns = s->due_ns;
	return published;
}

void api_snap_bans_changed(struct api_snap *s, const struct addr_cidr *net, int delta)
{
	struct api_status_snap *st, *copy = NULL;
	struct api_top_snap *t;

	pthread_mutex_lock(&s->mu);
	st = s->status;
	if (st && delta && (copy = malloc(sizeof(*copy)))) {
		*copy = *st;
		atomic_init(&copy->refs, 1);
		copy->active_bans = delta < 0 && copy->active_bans < (uint64_t)-delta
					    ? 0
					    : copy->active_bans + (uint64_t)(int64_t)delta;
		s->status = copy;
	} else {
		st = NULL; /* nothing replaced */
	}
	t = s->top;
	pthread_mutex_unlock(&s->mu);
	api_snap_put_status(st);
	/* the loop alone replaces s->top: t stays valid here */
	if (t)
		top_patch(s->maps, t, net);
	if (s->phase == PH_IDLE)
		return;
	s->bans_delta += delta;
	if (s->n_changed < CHANGED_MAX)
		s->changed[s->n_changed++] = *net;
	else
		s->changed_all = true;
}

/* --- without a loop --- */

static void count_one(void *ctx, const void *key, const void *value)
{
	(void)key;
	(void)value;
	(*(uint64_t *)ctx)++;
}

void api_snap_collect_status(struct policy *p, const struct sysmon *sm, struct api_status_snap *out)
{
	const struct maps *m = p->maps;
	struct count_ctx bans = {.now = maps_boot_ns()};
	long nets;
	struct walker w;

	memset(out, 0, sizeof(*out));
	status_info(p, sm, out);
	out->loader_running = loader_running(p->cfg->pin_root);
	if (!walker_init(&w, m->bans, sizeof(struct ebpfmon_addr), sizeof(struct ebpfmon_ban)))
		walker_step(&w, count_in_force, &bans, UINT64_MAX);
	walker_free(&w);
	nets = maps_bans_in_force(m->ban_nets, sizeof(struct ebpfmon_lpm_key));
	out->active_bans = bans.n + (nets > 0 ? (uint64_t)nets : 0);
	if (!walker_init(&w, m->ip_stats, sizeof(struct ebpfmon_addr),
			 EBPFMON_IP_STATS_NVALS * sizeof(struct ebpfmon_ip_stats)))
		walker_step(&w, count_one, &out->tracked, UINT64_MAX);
	walker_free(&w);
}

struct api_top_snap *api_snap_collect_top(const struct maps *m, uint32_t k, int *err)
{
	struct api_top_snap *t = NULL;
	struct top_build tb;
	struct walker w;
	size_t i = 0;
	int r;

	r = tb_init(&tb, k, EBPFMON_IP_STATS_NVALS);
	if (!r)
		r = walker_init(&w, m->ip_stats, sizeof(struct ebpfmon_addr),
				EBPFMON_IP_STATS_NVALS * sizeof(struct ebpfmon_ip_stats));
	else
		w = (struct walker){0};
	if (!r)
		r = walker_step(&w, top_one, &tb, UINT64_MAX);
	walker_free(&w);
	if (r >= 0) {
		t = tb_finish(&tb);
		r = t ? 0 : -ENOMEM;
	}
	tb_free(&tb);
	if (t) {
		t->taken_ns = api_snap_now();
		top_lookups(m, t, &i, UINT64_MAX);
	}
	*err = r;
	return t;
}
