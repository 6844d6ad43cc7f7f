// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Resource monitoring: /proc readers, per-process deltas, top lists and the anomaly episode
 * detector. See sysmon.h for what every figure means.
 *
 * Cost: per process, two openat() + read() + close() into a stack buffer, no allocation; the
 * process arrays are reused from one sample to the next and grow only when the host has more
 * processes than ever before.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sysmon.h"

#define SYSMON_SECTOR_BYTES 512
#define SYSMON_NS_PER_SEC   1000000000ull

/* ---- Small helpers ---- */

/* <root>/<name> into buf; -ENAMETOOLONG when it does not fit. */
static int sysmon_path(char *buf, size_t len, const char *root, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", root, name);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

static FILE *sysmon_fopen(const char *root, const char *name, int *err)
{
	char path[PATH_MAX];
	FILE *f;

	*err = sysmon_path(path, sizeof(path), root, name);
	if (*err)
		return NULL;
	f = fopen(path, "re");
	if (!f)
		*err = -errno;
	return f;
}

/*
 * Next line of f into buf (without its end of line), the rest of a longer line dropped.
 * false at end of file.
 */
static bool sysmon_line(FILE *f, char *buf, size_t len)
{
	size_t n;
	int c;

	if (!fgets(buf, (int)len, f))
		return false;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n') {
		buf[n - 1] = '\0';
		return true;
	}
	while ((c = getc(f)) != EOF && c != '\n')
		;
	return true;
}

/* Parse an unsigned decimal at *p (leading blanks skipped), advance *p; false if none. */
static bool sysmon_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

/* Skip n space-separated fields (of any content) after *p. false when the text ends first. */
static bool sysmon_skip_fields(const char **p, unsigned int n)
{
	const char *s = *p;

	while (n--) {
		while (*s == ' ')
			s++;
		if (!*s)
			return false;
		while (*s && *s != ' ')
			s++;
	}
	*p = s;
	return true;
}

static uint64_t sysmon_sub(uint64_t cur, uint64_t prev)
{
	return cur > prev ? cur - prev : 0;
}

/* ---- /proc/stat ---- */

int sysmon_read_cpu(const char *proc_root, struct sysmon_cpu *out)
{
	uint64_t v[8];
	bool found = false;
	char line[512];
	const char *p;
	unsigned int i, ncpu = 0;
	FILE *f;
	int err;

	f = sysmon_fopen(proc_root, "stat", &err);
	if (!f)
		return err;
	while (sysmon_line(f, line, sizeof(line))) {
		if (strncmp(line, "cpu", 3) != 0) {
			if (found)
				break; /* the cpu lines come first; skip intr and the rest */
			continue;
		}
		if (isdigit((unsigned char)line[3])) {
			ncpu++;
			continue;
		}
		if (line[3] != ' ')
			continue;
		p = line + 3;
		memset(v, 0, sizeof(v));
		/* user nice system idle [iowait irq softirq steal [guest guest_nice]] */
		for (i = 0; i < 8 && sysmon_u64(&p, &v[i]); i++)
			;
		if (i < 4)
			break;
		found = true;
	}
	fclose(f);
	if (!found)
		return -EINVAL;
	out->user = v[0];
	out->nice = v[1];
	out->system = v[2];
	out->idle = v[3];
	out->iowait = v[4];
	out->irq = v[5];
	out->softirq = v[6];
	out->steal = v[7];
	out->ncpu = ncpu ? ncpu : 1;
	return 0;
}

double sysmon_cpu_percent(const struct sysmon_cpu *prev, const struct sysmon_cpu *cur)
{
	uint64_t busy, idle;

	busy = sysmon_sub(cur->user, prev->user) + sysmon_sub(cur->nice, prev->nice) +
	       sysmon_sub(cur->system, prev->system) + sysmon_sub(cur->irq, prev->irq) +
	       sysmon_sub(cur->softirq, prev->softirq) + sysmon_sub(cur->steal, prev->steal);
	idle = sysmon_sub(cur->idle, prev->idle) + sysmon_sub(cur->iowait, prev->iowait);
	if (!busy && !idle)
		return 0.0;
	return (double)busy * 100.0 / (double)(busy + idle);
}

/* ---- /proc/meminfo ---- */

int sysmon_read_mem(const char *proc_root, struct sysmon_mem *out)
{
	static const char *const keys[] = {
		"MemTotal:", "MemAvailable:", "MemFree:", "Buffers:", "Cached:"};
	enum { TOTAL, AVAIL, FREE, BUFFERS, CACHED, NKEYS };
	uint64_t val[NKEYS] = {0};
	bool have[NKEYS] = {false};
	char line[256];
	const char *p;
	unsigned int i;
	size_t klen;
	FILE *f;
	int err;

	f = sysmon_fopen(proc_root, "meminfo", &err);
	if (!f)
		return err;
	while (sysmon_line(f, line, sizeof(line))) {
		for (i = 0; i < NKEYS; i++) {
			klen = strlen(keys[i]);
			if (strncmp(line, keys[i], klen) != 0)
				continue;
			p = line + klen;
			have[i] = sysmon_u64(&p, &val[i]);
			break;
		}
		if (have[TOTAL] && have[AVAIL])
			break;
	}
	fclose(f);
	if (!have[TOTAL] || !val[TOTAL])
		return -EINVAL;
	out->total_kb = val[TOTAL];
	if (have[AVAIL])
		out->available_kb = val[AVAIL];
	else
		out->available_kb = val[FREE] + val[BUFFERS] + val[CACHED];
	if (out->available_kb > out->total_kb)
		out->available_kb = out->total_kb;
	return 0;
}

double sysmon_mem_percent(const struct sysmon_mem *m)
{
	if (!m->total_kb)
		return 0.0;
	return (double)(m->total_kb - m->available_kb) * 100.0 / (double)m->total_kb;
}

/* ---- /proc/diskstats ---- */

struct sysmon_dev {
	char name[32]; /* DISK_NAME_LEN */
	uint64_t sectors;
};

static int sysmon_dev_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sysmon_dev *)a)->name, ((const struct sysmon_dev *)b)->name);
}

/* Devices layered over disks that are counted already, or that are not disks at all. */
static bool sysmon_dev_virtual(const char *name)
{
	static const char *const prefixes[] = {"loop", "ram", "zram", "md"};
	unsigned int i;
	size_t len;
	char c;

	if (!strncmp(name, "dm-", 3))
		return true;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		len = strlen(prefixes[i]);
		c = name[len];
		if (!strncmp(name, prefixes[i], len) && (isdigit((unsigned char)c) || c == '_'))
			return true;
	}
	return false;
}

static bool sysmon_dev_listed(const struct sysmon_dev *devs, size_t n, const char *name, size_t len)
{
	struct sysmon_dev key = {0};

	if (!len || len >= sizeof(key.name))
		return false;
	memcpy(key.name, name, len);
	key.name[len] = '\0';
	return bsearch(&key, devs, n, sizeof(*devs), sysmon_dev_cmp) != NULL;
}

/* A partition: another listed name + digits, or + "p" + digits when that name ends in one. */
static bool sysmon_dev_partition(const struct sysmon_dev *devs, size_t n, const char *name)
{
	size_t len = strlen(name), i = len;

	while (i > 0 && isdigit((unsigned char)name[i - 1]))
		i--;
	if (i == len || i == 0)
		return false;
	if (sysmon_dev_listed(devs, n, name, i))
		return true;
	return i >= 2 && name[i - 1] == 'p' && isdigit((unsigned char)name[i - 2]) &&
	       sysmon_dev_listed(devs, n, name, i - 1);
}

int sysmon_read_disk(const char *proc_root, struct sysmon_disk *out)
{
	struct sysmon_dev *devs = NULL, *tmp;
	size_t n = 0, cap = 0, i, len;
	uint64_t f[7], sum = 0;
	unsigned int ndisks = 0;
	char line[512], name[64];
	const char *p;
	int err, off;
	FILE *f_in;

	f_in = sysmon_fopen(proc_root, "diskstats", &err);
	if (!f_in)
		return err;
	while (sysmon_line(f_in, line, sizeof(line))) {
		/* major minor name reads merged sectors_read ms writes merged sectors_written */
		off = 0;
		if (sscanf(line, " %*u %*u %63s %n", name, &off) != 1 || !off)
			continue;
		p = line + off;
		for (i = 0; i < 7 && sysmon_u64(&p, &f[i]); i++)
			;
		len = strlen(name);
		if (i < 7 || len >= sizeof(devs->name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			tmp = realloc(devs, cap * sizeof(*devs));
			if (!tmp) {
				free(devs);
				fclose(f_in);
				return -ENOMEM;
			}
			devs = tmp;
		}
		memcpy(devs[n].name, name, len + 1);
		devs[n].sectors = f[2] + f[6];
		n++;
	}
	fclose(f_in);
	if (n)
		qsort(devs, n, sizeof(*devs), sysmon_dev_cmp);
	for (i = 0; i < n; i++) {
		if (sysmon_dev_virtual(devs[i].name) || sysmon_dev_partition(devs, n, devs[i].name))
			continue;
		sum += devs[i].sectors;
		ndisks++;
	}
	free(devs);
	out->sectors = sum;
	out->ndisks = ndisks;
	return 0;
}

/* ---- /proc/PID ---- */

/* Read the file at dfd/path into buf (NUL-terminated): bytes read or -errno. */
static ssize_t sysmon_read_at(int dfd, const char *path, char *buf, size_t len)
{
	size_t got = 0, want;
	ssize_t r;
	int fd, err;

	fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		want = len - 1 - got;
		r = read(fd, buf + got, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			close(fd);
			return err;
		}
		got += (size_t)r;
		/* a proc file comes whole in one read: a short read is its end */
		if ((size_t)r < want)
			break;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* Fill p from the text of /proc/PID/stat; false when it is malformed or cut short. */
static bool sysmon_parse_stat(const char *buf, struct sysmon_proc *p)
{
	const char *open = strchr(buf, '('), *close = strrchr(buf, ')'), *s;
	uint64_t utime, stime, start;
	size_t len, i;

	if (!open || !close || close < open)
		return false;
	len = (size_t)(close - open - 1);
	if (len > SYSMON_COMM_LEN - 1)
		len = SYSMON_COMM_LEN - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)open[1 + i];

		p->comm[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	p->comm[len] = '\0';
	/* after ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue
	 * starttime(22) */
	s = close + 1;
	if (!sysmon_skip_fields(&s, 11) || *s != ' ')
		return false;
	if (!sysmon_u64(&s, &utime) || *s != ' ' || !sysmon_u64(&s, &stime))
		return false;
	if (!sysmon_skip_fields(&s, 6) || *s != ' ' || !sysmon_u64(&s, &start))
		return false;
	p->ticks = utime + stime;
	p->start_ticks = start;
	return true;
}

/* "1234" -> 1234; -1 for anything that is not a positive pid. */
static int32_t sysmon_pid_name(const char *s)
{
	int64_t v = 0;

	if (!*s || *s == '0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > INT32_MAX)
			return -1;
	}
	return (int32_t)v;
}

static int sysmon_proc_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct sysmon_proc *)a)->pid, y = ((const struct sysmon_proc *)b)->pid;

	return (x > y) - (x < y);
}

/* Read PID's stat and statm: 0, or -errno / -EINVAL when it vanished or is unreadable. */
static int sysmon_read_one(int dfd, int32_t pid, long page_size, struct sysmon_proc *p)
{
	char path[32], buf[1024];
	uint64_t size, resident;
	const char *s;
	ssize_t r;

	snprintf(path, sizeof(path), "%d/stat", pid);
	r = sysmon_read_at(dfd, path, buf, sizeof(buf));
	if (r < 0)
		return (int)r;
	if (!sysmon_parse_stat(buf, p))
		return -EINVAL;
	snprintf(path, sizeof(path), "%d/statm", pid);
	r = sysmon_read_at(dfd, path, buf, sizeof(buf));
	if (r < 0)
		return (int)r;
	s = buf;
	if (!sysmon_u64(&s, &size) || !sysmon_u64(&s, &resident))
		return -EINVAL;
	p->pid = pid;
	p->rss_bytes = resident * (uint64_t)page_size;
	return 0;
}

int sysmon_procs_open(const char *proc_root, struct sysmon_proc_list *list,
		      struct sysmon_proc_reader *rd)
{
	list->n = 0;
	list->skipped = 0;
	rd->sorted = true;
	rd->page_size = sysconf(_SC_PAGESIZE);
	if (rd->page_size <= 0)
		rd->page_size = 4096;
	rd->dir = opendir(proc_root);
	return rd->dir ? 0 : -errno;
}

int sysmon_procs_step(struct sysmon_proc_reader *rd, struct sysmon_proc_list *list,
		      uint64_t deadline_ns, uint64_t (*clock_ns)(void))
{
	struct sysmon_proc *tmp;
	struct dirent *de;
	size_t cap;
	int32_t pid;
	int err;

	if (!rd->dir)
		return -EBADF;
	while ((errno = 0, de = readdir(rd->dir))) {
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		pid = sysmon_pid_name(de->d_name);
		if (pid < 0)
			continue;
		if (list->n == list->cap) {
			cap = list->cap ? list->cap * 2 : 256;
			tmp = realloc(list->procs, cap * sizeof(*tmp));
			if (!tmp) {
				sysmon_procs_close(rd);
				list->n = 0;
				return -ENOMEM;
			}
			list->procs = tmp;
			list->cap = cap;
		}
		/* ENOENT, ESRCH, a short file: the process is gone; anything else (EACCES
		 * under hidepid) hides it from us; either way it is not ours to report */
		if (sysmon_read_one(dirfd(rd->dir), pid, rd->page_size, &list->procs[list->n])) {
			list->skipped++;
		} else {
			if (list->n && list->procs[list->n - 1].pid > pid)
				rd->sorted = false;
			list->n++;
		}
		/* a process costs ~10 us of system calls, a clock read ~20 ns */
		if (clock_ns && clock_ns() >= deadline_ns)
			return 0;
	}
	err = errno;
	sysmon_procs_close(rd);
	if (err) {
		list->n = 0;
		return -err;
	}
	/* the kernel lists pids in order; a fixture folder need not */
	if (!rd->sorted)
		qsort(list->procs, list->n, sizeof(*list->procs), sysmon_proc_cmp);
	return 1;
}

void sysmon_procs_close(struct sysmon_proc_reader *rd)
{
	if (rd->dir)
		closedir(rd->dir);
	rd->dir = NULL;
}

int sysmon_read_procs(const char *proc_root, struct sysmon_proc_list *list)
{
	struct sysmon_proc_reader rd;
	int err = sysmon_procs_open(proc_root, list, &rd);

	if (!err)
		err = sysmon_procs_step(&rd, list, 0, NULL);
	return err < 0 ? err : (int)list->n;
}

const struct sysmon_proc *sysmon_proc_find(const struct sysmon_proc_list *list, int32_t pid)
{
	struct sysmon_proc key = {.pid = pid};

	if (!list->n)
		return NULL;
	return bsearch(&key, list->procs, list->n, sizeof(key), sysmon_proc_cmp);
}

void sysmon_proc_list_free(struct sysmon_proc_list *list)
{
	if (!list)
		return;
	free(list->procs);
	memset(list, 0, sizeof(*list));
}

/* ---- Top lists ---- */

/* The best max (<= SYSMON_TOP_N) items by key, descending, ties by lower pid. */
struct sysmon_rank {
	unsigned int n, max;
	double key[SYSMON_TOP_N];
	int32_t pid[SYSMON_TOP_N];
	size_t idx[SYSMON_TOP_N];
};

static void sysmon_rank_init(struct sysmon_rank *r, unsigned int max)
{
	r->n = 0;
	r->max = max < SYSMON_TOP_N ? max : SYSMON_TOP_N;
}

static void sysmon_rank_add(struct sysmon_rank *r, double key, int32_t pid, size_t idx)
{
	unsigned int i;

	if (!r->max)
		return;
	i = r->n < r->max ? r->n : r->max;
	/* i: the slot to fill if key beats everything below it */
	while (i > 0 && (key > r->key[i - 1] || (key == r->key[i - 1] && pid < r->pid[i - 1]))) {
		if (i < r->max) {
			r->key[i] = r->key[i - 1];
			r->pid[i] = r->pid[i - 1];
			r->idx[i] = r->idx[i - 1];
		}
		i--;
	}
	if (i >= r->max)
		return;
	r->key[i] = key;
	r->pid[i] = pid;
	r->idx[i] = idx;
	if (r->n < r->max)
		r->n++;
}

/* ---- proc_io deltas ---- */

struct sysmon_io_slot {
	uint32_t tgid;
	char comm[SYSMON_COMM_LEN];
	uint64_t read_bytes, write_bytes; /* absolute, as the map holds them */
	uint64_t d_read, d_write;	  /* over the last interval */
};

static int sysmon_io_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct sysmon_io_slot *)a)->tgid;
	uint32_t y = ((const struct sysmon_io_slot *)b)->tgid;

	return (x > y) - (x < y);
}

static const struct sysmon_io_slot *sysmon_io_find(const struct sysmon_io_slot *v, size_t n,
						   uint32_t tgid)
{
	struct sysmon_io_slot key = {.tgid = tgid};

	if (!n)
		return NULL;
	return bsearch(&key, v, n, sizeof(key), sysmon_io_cmp);
}

static uint64_t sysmon_io_diff(uint64_t cur, uint64_t prev)
{
	return cur >= prev ? cur - prev : cur; /* backwards: the entry started again */
}

int sysmon_io_update(struct sysmon_io_table *t, const struct sysmon_io_entry *ents, size_t n,
		     struct sysmon_top *top, unsigned int max_top)
{
	unsigned int cur = !t->cur, i;
	const struct sysmon_io_slot *old;
	struct sysmon_io_slot *v, *s;
	struct sysmon_rank rank;
	size_t k, m = 0, cap;

	if (n > t->cap[cur]) {
		cap = t->cap[cur] ? t->cap[cur] : 64;
		while (cap < n)
			cap *= 2;
		v = realloc(t->slots[cur], cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->slots[cur] = v;
		t->cap[cur] = cap;
	}
	v = t->slots[cur];
	for (k = 0; k < n; k++) {
		v[k].tgid = ents[k].tgid;
		memcpy(v[k].comm, ents[k].comm, SYSMON_COMM_LEN);
		v[k].comm[SYSMON_COMM_LEN - 1] = '\0';
		v[k].read_bytes = ents[k].read_bytes;
		v[k].write_bytes = ents[k].write_bytes;
	}
	if (n)
		qsort(v, n, sizeof(*v), sysmon_io_cmp);
	/* one slot per tgid (a map has unique keys; an array built by hand might not) */
	for (k = 0; k < n; k++) {
		if (m && v[m - 1].tgid == v[k].tgid) {
			v[m - 1].read_bytes += v[k].read_bytes;
			v[m - 1].write_bytes += v[k].write_bytes;
			continue;
		}
		v[m++] = v[k];
	}
	sysmon_rank_init(&rank, max_top);
	for (k = 0; k < m; k++) {
		s = &v[k];
		old = t->primed ? sysmon_io_find(t->slots[t->cur], t->n[t->cur], s->tgid) : NULL;
		s->d_read = old ? sysmon_io_diff(s->read_bytes, old->read_bytes) : s->read_bytes;
		s->d_write = old ? sysmon_io_diff(s->write_bytes, old->write_bytes)
				 : s->write_bytes;
		if (t->primed && (s->d_read || s->d_write))
			sysmon_rank_add(&rank, (double)s->d_read + (double)s->d_write,
					(int32_t)s->tgid, k);
	}
	t->n[cur] = m;
	t->cur = cur;
	t->deltas = t->primed;
	if (!t->primed) {
		t->primed = true;
		return 0;
	}
	for (i = 0; i < rank.n; i++) {
		s = &v[rank.idx[i]];
		memset(&top[i], 0, sizeof(top[i]));
		top[i].pid = (int32_t)s->tgid;
		memcpy(top[i].comm, s->comm, SYSMON_COMM_LEN);
		top[i].read_bytes = s->d_read;
		top[i].write_bytes = s->d_write;
	}
	return (int)rank.n;
}

bool sysmon_io_delta(const struct sysmon_io_table *t, uint32_t tgid, uint64_t *read_bytes,
		     uint64_t *write_bytes)
{
	const struct sysmon_io_slot *s;

	if (!t->deltas)
		return false;
	s = sysmon_io_find(t->slots[t->cur], t->n[t->cur], tgid);
	if (!s)
		return false;
	*read_bytes = s->d_read;
	*write_bytes = s->d_write;
	return true;
}

void sysmon_io_table_free(struct sysmon_io_table *t)
{
	if (!t)
		return;
	free(t->slots[0]);
	free(t->slots[1]);
	memset(t, 0, sizeof(*t));
}

/* ---- The sampler ---- */

enum sysmon_source {
	SYSMON_SRC_STAT,
	SYSMON_SRC_MEMINFO,
	SYSMON_SRC_DISKSTATS,
	SYSMON_SRC_PROCS,
	SYSMON_SRC_COUNT,
};

struct sysmon {
	char root[PATH_MAX - 32];
	long clk_tck;
	bool sampled; /* a previous sample exists */
	uint64_t prev_ns;
	bool prev_cpu_ok, prev_disk_ok, prev_procs_ok;
	struct sysmon_cpu prev_cpu;
	struct sysmon_disk prev_disk;
	struct sysmon_proc_list procs[2]; /* [cur] this sample, [!cur] the previous one */
	unsigned int cur;
	struct sysmon_io_table io;
	unsigned int failing;	   /* bit per enum sysmon_source: logged as failing */
	struct sysmon_report last; /* what the latest sysmon_sample() reported */
	struct {		   /* a sample between sysmon_sample_begin() and _end() */
		bool active, deltas;
		int first, procs; /* first error; processes read, 1 when done, or -errno */
		double secs, ticks_per_pct;
		uint64_t tick_cap;
		struct sysmon_proc_reader rd;
		struct sysmon_report out;
	} pend;
};

int sysmon_create(struct sysmon **out, const char *proc_root)
{
	struct sysmon *sm;

	if (!proc_root)
		proc_root = "/proc";
	if (!*proc_root || strlen(proc_root) >= sizeof(sm->root))
		return -EINVAL;
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	snprintf(sm->root, sizeof(sm->root), "%s", proc_root);
	sm->clk_tck = sysconf(_SC_CLK_TCK);
	if (sm->clk_tck <= 0)
		sm->clk_tck = 100;
	*out = sm;
	return 0;
}

void sysmon_destroy(struct sysmon *sm)
{
	if (!sm)
		return;
	sysmon_procs_close(&sm->pend.rd);
	sysmon_proc_list_free(&sm->procs[0]);
	sysmon_proc_list_free(&sm->procs[1]);
	sysmon_io_table_free(&sm->io);
	free(sm);
}

/* Log a source's failure once, and its recovery; keep the first error for the caller. */
static void sysmon_note(struct sysmon *sm, enum sysmon_source src, int err, int *first)
{
	static const char *const names[] = {"stat", "meminfo", "diskstats", "PID folders"};
	unsigned int bit = 1u << src;

	if (err < 0) {
		if (!*first)
			*first = err;
		if (!(sm->failing & bit))
			log_warn("sysmon: cannot read %s/%s: %s (logged once until it recovers)",
				 sm->root, names[src], strerror(-err));
		sm->failing |= bit;
	} else if (sm->failing & bit) {
		log_info("sysmon: %s/%s readable again", sm->root, names[src]);
		sm->failing &= ~bit;
	}
}

/* Ticks cur gained since the previous sample (all of them when it is new or a reused pid). */
static uint64_t sysmon_proc_ticks(const struct sysmon_proc_list *prev, const struct sysmon_proc *p,
				  uint64_t cap)
{
	const struct sysmon_proc *o = sysmon_proc_find(prev, p->pid);
	uint64_t d;

	if (o && o->start_ticks == p->start_ticks)
		d = sysmon_sub(p->ticks, o->ticks);
	else
		d = p->ticks;
	return d < cap ? d : cap;
}

static void sysmon_top_fill(struct sysmon *sm, struct sysmon_top *row, const struct sysmon_proc *p,
			    double ticks_per_pct, uint64_t tick_cap, bool deltas)
{
	const struct sysmon_proc_list *prev = &sm->procs[!sm->cur];

	memset(row, 0, sizeof(*row));
	row->pid = p->pid;
	memcpy(row->comm, p->comm, SYSMON_COMM_LEN);
	row->rss_bytes = p->rss_bytes;
	if (deltas)
		row->cpu_pct = (double)sysmon_proc_ticks(prev, p, tick_cap) / ticks_per_pct;
	sysmon_io_delta(&sm->io, (uint32_t)p->pid, &row->read_bytes, &row->write_bytes);
}

int sysmon_sample_begin(struct sysmon *sm, uint64_t now_ns, const struct sysmon_io_entry *io,
			size_t n_io)
{
	struct sysmon_report *out = &sm->pend.out;
	struct sysmon_disk disk;
	struct sysmon_cpu cpu;
	struct sysmon_mem mem;
	double secs = 0, ticks_per_pct = 1;
	uint64_t tick_cap = UINT64_MAX;
	bool deltas, io_primed;
	int err, first = 0, n;

	sysmon_procs_close(&sm->pend.rd); /* a sample never ended */
	memset(out, 0, sizeof(*out));
	out->now_ns = now_ns;
	deltas = sm->sampled && now_ns > sm->prev_ns;
	if (deltas) {
		out->interval_ns = now_ns - sm->prev_ns;
		secs = (double)out->interval_ns / (double)SYSMON_NS_PER_SEC;
		ticks_per_pct = secs * (double)sm->clk_tck / 100.0;
	}
	out->deltas = deltas;

	err = sysmon_read_cpu(sm->root, &cpu);
	sysmon_note(sm, SYSMON_SRC_STAT, err, &first);
	if (!err) {
		/* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): set on success */
		out->ncpu = cpu.ncpu;
		if (deltas && sm->prev_cpu_ok) {
			out->cpu_pct = sysmon_cpu_percent(&sm->prev_cpu, &cpu);
			out->have |= SYSMON_HAVE_CPU;
		}
		/* no process can gain more ticks than every CPU for the whole interval */
		if (deltas)
			tick_cap = (uint64_t)(secs * (double)sm->clk_tck * cpu.ncpu + 0.5) + 1;
		sm->prev_cpu = cpu;
	}
	sm->prev_cpu_ok = !err;

	err = sysmon_read_mem(sm->root, &mem);
	sysmon_note(sm, SYSMON_SRC_MEMINFO, err, &first);
	if (!err) {
		/* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): set on success */
		out->mem_total_kb = mem.total_kb;
		out->mem_available_kb = mem.available_kb;
		out->mem_pct = sysmon_mem_percent(&mem);
		out->have |= SYSMON_HAVE_MEM;
	}

	err = sysmon_read_disk(sm->root, &disk);
	sysmon_note(sm, SYSMON_SRC_DISKSTATS, err, &first);
	if (!err) {
		if (deltas && sm->prev_disk_ok) {
			out->disk_mbps = (double)sysmon_sub(disk.sectors, sm->prev_disk.sectors) *
					 SYSMON_SECTOR_BYTES / 1e6 / secs;
			out->have |= SYSMON_HAVE_DISK;
		}
		sm->prev_disk = disk;
	}
	sm->prev_disk_ok = !err;

	/* I/O first, so that the CPU and RSS rows can carry their I/O figures */
	if (io) {
		io_primed = sm->io.primed;
		n = sysmon_io_update(&sm->io, io, n_io, out->top_io, SYSMON_TOP_N);
		if (n < 0 && !first)
			first = n;
		if (n >= 0 && io_primed) {
			out->n_top_io = (unsigned int)n;
			out->have |= SYSMON_HAVE_TOP_IO;
		}
	} else {
		/* no map this time: the next array starts afresh, without deltas */
		sysmon_io_table_free(&sm->io);
	}

	sm->cur = !sm->cur;
	sm->pend.procs = sysmon_procs_open(sm->root, &sm->procs[sm->cur], &sm->pend.rd);
	sm->pend.active = true;
	sm->pend.deltas = deltas;
	sm->pend.first = first;
	sm->pend.secs = secs;
	sm->pend.ticks_per_pct = ticks_per_pct;
	sm->pend.tick_cap = tick_cap;
	return 0;
}

int sysmon_sample_step(struct sysmon *sm, uint64_t deadline_ns, uint64_t (*clock_ns)(void))
{
	if (!sm->pend.active)
		return -EINVAL;
	if (sm->pend.procs == 0)
		sm->pend.procs =
			sysmon_procs_step(&sm->pend.rd, &sm->procs[sm->cur], deadline_ns, clock_ns);
	return sm->pend.procs != 0;
}

int sysmon_sample_end(struct sysmon *sm, struct sysmon_report *out)
{
	struct sysmon_proc_list *procs = &sm->procs[sm->cur];
	double ticks_per_pct = sm->pend.ticks_per_pct;
	uint64_t tick_cap = sm->pend.tick_cap;
	const struct sysmon_proc *p;
	struct sysmon_rank rcpu, rrss;
	int first = sm->pend.first, n;
	unsigned int i;
	size_t k;

	if (!sm->pend.active)
		return -EINVAL;
	while (!sm->pend.procs) /* not read to the end yet: the rest now */
		sysmon_sample_step(sm, 0, NULL);
	sm->pend.active = false;
	*out = sm->pend.out;
	n = sm->pend.procs < 0 ? sm->pend.procs : (int)procs->n;
	sysmon_note(sm, SYSMON_SRC_PROCS, n < 0 ? n : 0, &first);
	if (n >= 0) {
		bool cpu_ok = sm->pend.deltas && sm->prev_procs_ok;
		out->nprocs = (unsigned int)n;
		sysmon_rank_init(&rcpu, SYSMON_TOP_N);
		sysmon_rank_init(&rrss, SYSMON_TOP_N);
		for (k = 0; k < procs->n; k++) {
			p = &procs->procs[k];
			if (p->rss_bytes)
				sysmon_rank_add(&rrss, (double)p->rss_bytes, p->pid, k);
			if (cpu_ok) {
				uint64_t d = sysmon_proc_ticks(&sm->procs[!sm->cur], p, tick_cap);

				if (d)
					sysmon_rank_add(&rcpu, (double)d, p->pid, k);
			}
		}
		for (i = 0; i < rrss.n; i++)
			sysmon_top_fill(sm, &out->top_rss[i], &procs->procs[rrss.idx[i]],
					ticks_per_pct, tick_cap, cpu_ok);
		out->n_top_rss = rrss.n;
		out->have |= SYSMON_HAVE_TOP_RSS;
		if (cpu_ok) {
			for (i = 0; i < rcpu.n; i++)
				sysmon_top_fill(sm, &out->top_cpu[i], &procs->procs[rcpu.idx[i]],
						ticks_per_pct, tick_cap, true);
			out->n_top_cpu = rcpu.n;
			out->have |= SYSMON_HAVE_TOP_CPU;
		}
		/* the I/O rows get the CPU and RSS of the process when it is still there */
		for (i = 0; i < out->n_top_io; i++) {
			struct sysmon_top *row = &out->top_io[i];

			p = sysmon_proc_find(procs, row->pid);
			if (!p)
				continue;
			memcpy(row->comm, p->comm, SYSMON_COMM_LEN);
			row->rss_bytes = p->rss_bytes;
			if (cpu_ok)
				row->cpu_pct = (double)sysmon_proc_ticks(&sm->procs[!sm->cur], p,
									 tick_cap) /
					       ticks_per_pct;
		}
	}
	sm->prev_procs_ok = n >= 0;

	sm->sampled = true;
	sm->prev_ns = out->now_ns;
	sm->last = *out;
	return first;
}

int sysmon_sample(struct sysmon *sm, uint64_t now_ns, const struct sysmon_io_entry *io, size_t n_io,
		  struct sysmon_report *out)
{
	sysmon_sample_begin(sm, now_ns, io, n_io);
	return sysmon_sample_end(sm, out);
}

const struct sysmon_report *sysmon_last(const struct sysmon *sm)
{
	return sm && sm->sampled ? &sm->last : NULL;
}

/* ---- Anomaly episodes ---- */

const char *sysmon_metric_name(enum sysmon_metric metric)
{
	switch (metric) {
	case SYSMON_METRIC_CPU:
		return "cpu";
	case SYSMON_METRIC_MEMORY:
		return "memory";
	case SYSMON_METRIC_DISK_IO:
		return "disk_io";
	default:
		return "?";
	}
}

int sysmon_detector_init(struct sysmon_detector *d, enum sysmon_metric metric, double threshold,
			 double hysteresis, unsigned int sustain)
{
	if ((unsigned int)metric >= SYSMON_METRIC_COUNT || !isfinite(threshold) ||
	    !isfinite(hysteresis) || hysteresis < 0 || !sustain)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->metric = metric;
	d->threshold = threshold;
	d->hysteresis = hysteresis;
	d->sustain = sustain;
	return 0;
}

/* Add one sample's use to the run's accounts (see struct sysmon_detector for the rules). */
static void sysmon_usage_add(struct sysmon_detector *d, const struct sysmon_use *u)
{
	struct sysmon_usage *slot = NULL, *least = NULL;
	unsigned int i;

	if (u->pid <= 0 || !(u->used > 0) || !isfinite(u->used))
		return;
	for (i = 0; i < d->n_usage && !slot; i++) {
		if (d->usage[i].pid == u->pid)
			slot = &d->usage[i];
		else if (!least || d->usage[i].used < least->used)
			least = &d->usage[i];
	}
	if (!slot) {
		if (d->n_usage < SYSMON_USAGE_MAX)
			slot = &d->usage[d->n_usage++];
		else if (least && u->used > least->used)
			slot = least;
		else
			return;
		slot->pid = u->pid;
		slot->used = 0;
	}
	slot->used += u->used;
	snprintf(slot->comm, sizeof(slot->comm), "%s", u->comm ? u->comm : "");
}

/* Account a sample and name the biggest user in d->ep; true when that is another process. */
static bool sysmon_usage_account(struct sysmon_detector *d, const struct sysmon_use *use,
				 unsigned int n_use)
{
	const struct sysmon_usage *top = NULL;
	unsigned int i;

	for (i = 0; i < n_use; i++)
		sysmon_usage_add(d, &use[i]);
	for (i = 0; i < d->n_usage; i++) {
		const struct sysmon_usage *u = &d->usage[i];

		/* strictly more to take over: the one named before keeps a tie */
		if (!top || u->used > top->used ||
		    (u->used == top->used && u->pid == d->ep.top_pid))
			top = u;
	}
	if (!top)
		return false;
	d->ep.top_used = top->used;
	if (top->pid == d->ep.top_pid) {
		memcpy(d->ep.top_comm, top->comm, sizeof(d->ep.top_comm));
		return false;
	}
	d->ep.top_pid = top->pid;
	memcpy(d->ep.top_comm, top->comm, sizeof(d->ep.top_comm));
	return true;
}

static enum sysmon_event sysmon_detector_emit(struct sysmon_detector *d, enum sysmon_event ev,
					      struct sysmon_episode *ep)
{
	if (ep)
		*ep = d->ep;
	return ev;
}

enum sysmon_event sysmon_detector_feed(struct sysmon_detector *d, uint64_t now_ns, double value,
				       const struct sysmon_use *use, unsigned int n_use,
				       struct sysmon_episode *ep)
{
	bool top_changed;

	if (isnan(value))
		return SYSMON_EV_NONE;
	if (d->open) {
		d->ep.value = value;
		if (value < d->threshold - d->hysteresis) {
			d->ep.end_ns = now_ns;
			d->open = false;
			d->run = 0;
			return sysmon_detector_emit(d, SYSMON_EV_CLOSED, ep);
		}
		top_changed = sysmon_usage_account(d, use, n_use);
		if (value <= d->ep.peak)
			return top_changed ? sysmon_detector_emit(d, SYSMON_EV_TOP_CHANGED, ep)
					   : SYSMON_EV_NONE;
		d->ep.peak = value;
		d->ep.peak_ns = now_ns;
		return sysmon_detector_emit(d, SYSMON_EV_PEAK_UPDATED, ep);
	}
	if (!(value > d->threshold)) {
		d->run = 0;
		return SYSMON_EV_NONE;
	}
	/* above the threshold: start or extend the run, remember its peak and its users */
	if (!d->run) {
		memset(&d->ep, 0, sizeof(d->ep));
		d->ep.metric = d->metric;
		d->ep.threshold = d->threshold;
		d->ep.start_ns = now_ns;
		d->n_usage = 0;
	}
	if (!d->run || value > d->ep.peak) {
		d->ep.peak = value;
		d->ep.peak_ns = now_ns;
	}
	d->run++;
	d->ep.value = value;
	sysmon_usage_account(d, use, n_use);
	if (d->run < d->sustain)
		return SYSMON_EV_NONE;
	d->open = true;
	d->run = 0;
	return sysmon_detector_emit(d, SYSMON_EV_OPENED, ep);
}

enum sysmon_event sysmon_detector_feed_report(struct sysmon_detector *d,
					      const struct sysmon_report *r,
					      struct sysmon_episode *ep)
{
	struct sysmon_use use[SYSMON_TOP_N];
	const struct sysmon_top *rows;
	double value, secs = (double)r->interval_ns / (double)SYSMON_NS_PER_SEC;
	unsigned int n, i;

	switch (d->metric) {
	case SYSMON_METRIC_CPU:
		if (!(r->have & SYSMON_HAVE_CPU))
			return SYSMON_EV_NONE;
		value = r->cpu_pct;
		rows = r->top_cpu;
		n = r->n_top_cpu;
		break;
	case SYSMON_METRIC_MEMORY:
		if (!(r->have & SYSMON_HAVE_MEM))
			return SYSMON_EV_NONE;
		value = r->mem_pct;
		rows = r->top_rss;
		n = r->n_top_rss;
		break;
	case SYSMON_METRIC_DISK_IO:
		if (!(r->have & SYSMON_HAVE_DISK))
			return SYSMON_EV_NONE;
		value = r->disk_mbps;
		rows = r->top_io;
		n = r->n_top_io;
		break;
	default:
		return SYSMON_EV_NONE;
	}
	if (n > SYSMON_TOP_N)
		n = SYSMON_TOP_N;
	for (i = 0; i < n; i++) {
		use[i].pid = rows[i].pid;
		use[i].comm = rows[i].comm;
		if (d->metric == SYSMON_METRIC_CPU)
			use[i].used = rows[i].cpu_pct * secs;
		else if (d->metric == SYSMON_METRIC_MEMORY)
			use[i].used = (double)rows[i].rss_bytes;
		else
			use[i].used = (double)rows[i].read_bytes + (double)rows[i].write_bytes;
	}
	return sysmon_detector_feed(d, r->now_ns, value, use, n, ep);
}

enum sysmon_event sysmon_detector_close(struct sysmon_detector *d, uint64_t now_ns,
					struct sysmon_episode *ep)
{
	d->run = 0;
	if (!d->open)
		return SYSMON_EV_NONE;
	d->open = false;
	d->ep.end_ns = now_ns;
	return sysmon_detector_emit(d, SYSMON_EV_CLOSED, ep);
}

bool sysmon_detector_is_open(const struct sysmon_detector *d)
{
	return d->open;
}
