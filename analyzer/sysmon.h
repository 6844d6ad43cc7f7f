/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Resource monitoring: host CPU %, memory %, disk MB/s and the top processes by CPU, RSS and
 * disk I/O, read from a proc root ("/proc", or a fixture tree in the tests); and the anomaly
 * episode detector that turns a series of samples into episodes (threshold, sustain count,
 * hysteresis). The detector is pure logic: no I/O, no clock, no allocation.
 *
 * What the figures mean:
 * - Host CPU %: busy / (busy + idle) of the jiffies that /proc/stat's "cpu" line gained
 *   between two reads, all CPUs together (0..100). busy = user + nice + system + irq +
 *   softirq + steal; idle = idle + iowait (a CPU waiting for I/O could run anything). guest
 *   and guest_nice are already inside user and nice and are not added twice. Steal counts as
 *   busy: it is time this host wanted a CPU and did not get one, so a VM whose vCPUs are
 *   stolen reads as saturated, as it is to its workload (psutil and `100 - idle` in top agree).
 *   A counter that goes backwards (iowait does on some kernels) adds 0, not a huge number.
 * - Memory %: (MemTotal - MemAvailable) / MemTotal from /proc/meminfo. Without MemAvailable
 *   (kernels before 3.14): MemFree + Buffers + Cached stands in for it.
 * - Disk MB/s: sectors read + written (512 bytes each, whatever the device's block size) by
 *   whole disks in /proc/diskstats, between two reads, divided by the seconds between them;
 *   MB = 10^6 bytes. Not counted, so that no byte is counted twice or counted without
 *   reaching a disk: partitions (a name that is another listed name followed by digits, or by
 *   "p" and digits when that name ends in a digit: sda1, vda3, nvme0n1p2, mmcblk0p1), loop*,
 *   ram*, zram*, dm-* (LVM, LUKS, multipath: their I/O is already counted on the disks under
 *   them) and md* (software RAID, likewise). No /sys is needed. A device that disappears
 *   between two reads makes that interval's total smaller, never negative.
 * - Process CPU %: utime + stime ticks gained between two samples as a percentage of ONE CPU
 *   (top's convention: a process with two busy threads shows 200). A pid that is new, or
 *   reused (its starttime changed), counts all its ticks: it was born during the interval
 *   (capped at every CPU for the whole interval, plus one tick of rounding).
 * - Process RSS: resident pages of /proc/PID/statm times the page size.
 * - Process disk I/O: bytes read and written between two samples, from the values of the
 *   proc_io map that the caller passes in (the kernel accounts every user's processes, which
 *   the unprivileged analyzer could not read from /proc/PID/io).
 *
 * Processes that vanish while /proc is read (ENOENT, ESRCH, a short or malformed file) are
 * skipped silently. `comm` is the text between the first '(' and the last ')' of
 * /proc/PID/stat, truncated to 15 bytes (TASK_COMM_LEN - 1), with control characters
 * replaced by '?'.
 *
 * Not thread-safe: one struct sysmon per thread.
 */
#ifndef EBPFMON_SYSMON_H
#define EBPFMON_SYSMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYSMON_COMM_LEN 16 /* TASK_COMM_LEN, as in struct ebpfmon_proc_io */
#define SYSMON_TOP_N	5  /* rows in each top list of struct sysmon_report */

/* ---- Readers: each takes the proc root ("/proc" or a fixture tree) ---- */

/* The "cpu" line of /proc/stat: clock ticks summed over all CPUs. */
struct sysmon_cpu {
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
	unsigned int ncpu; /* "cpuN" lines: online CPUs */
};

/* 0 and *out, -errno when <proc_root>/stat cannot be read, -EINVAL when it has no cpu line. */
int sysmon_read_cpu(const char *proc_root, struct sysmon_cpu *out);
/* Host CPU % between two reads (see above), 0..100; 0 when no tick passed. */
double sysmon_cpu_percent(const struct sysmon_cpu *prev, const struct sysmon_cpu *cur);

struct sysmon_mem {
	uint64_t total_kb;
	uint64_t available_kb;
};

/* 0 and *out, -errno when <proc_root>/meminfo cannot be read, -EINVAL without MemTotal. */
int sysmon_read_mem(const char *proc_root, struct sysmon_mem *out);
/* (total - available) / total * 100, 0..100. */
double sysmon_mem_percent(const struct sysmon_mem *m);

struct sysmon_disk {
	uint64_t sectors;    /* read + written by the counted (whole) disks, 512-byte units */
	unsigned int ndisks; /* disks counted */
};

/* 0 and *out; -errno when <proc_root>/diskstats cannot be read; -ENOMEM. */
int sysmon_read_disk(const char *proc_root, struct sysmon_disk *out);

struct sysmon_proc {
	int32_t pid;
	char comm[SYSMON_COMM_LEN];
	uint64_t ticks;	      /* utime + stime, in sysconf(_SC_CLK_TCK) ticks */
	uint64_t start_ticks; /* starttime: tells a reused pid from the process it replaced */
	uint64_t rss_bytes;   /* statm resident pages * page size */
};

/* A growable array of processes, sorted by pid; zero-initialise it before first use. */
struct sysmon_proc_list {
	struct sysmon_proc *procs;
	size_t n;
	size_t cap;
	size_t skipped; /* PID folders skipped by the last read: vanished or unreadable */
};

/*
 * Read every <proc_root>/PID into list (its array is reused and grown as needed). Returns the
 * number of processes, -errno when proc_root cannot be listed, or -ENOMEM (list then empty).
 */
int sysmon_read_procs(const char *proc_root, struct sysmon_proc_list *list);

/* The same read in steps: the folder open between them. */
struct sysmon_proc_reader {
	void *dir; /* DIR *, NULL when closed */
	long page_size;
	bool sorted;
};

/* Empty list and open proc_root: 0 or -errno. */
int sysmon_procs_open(const char *proc_root, struct sysmon_proc_list *list,
		      struct sysmon_proc_reader *rd);
/*
 * Read processes into list until clock_ns() (ns) reaches deadline_ns (clock_ns NULL: all):
 * 0 when more are left, 1 when the folder was read to its end (list sorted, reader closed),
 * -errno (list empty, reader closed) as sysmon_read_procs().
 */
int sysmon_procs_step(struct sysmon_proc_reader *rd, struct sysmon_proc_list *list,
		      uint64_t deadline_ns, uint64_t (*clock_ns)(void));
/* Close a reader left half-way; a closed one is fine. */
void sysmon_procs_close(struct sysmon_proc_reader *rd);
/* The process with this pid, or NULL (binary search). */
const struct sysmon_proc *sysmon_proc_find(const struct sysmon_proc_list *list, int32_t pid);
/* Free the array; the list is empty and reusable afterwards. NULL-safe. */
void sysmon_proc_list_free(struct sysmon_proc_list *list);

/* ---- Per-process disk I/O, from the proc_io map ---- */

/* One proc_io map entry as the caller read it: key tgid, value struct ebpfmon_proc_io. */
struct sysmon_io_entry {
	uint32_t tgid;
	char comm[SYSMON_COMM_LEN];
	uint64_t read_bytes;
	uint64_t write_bytes;
};

/* One row of a top list. Fields the sample could not know are 0. */
struct sysmon_top {
	int32_t pid;
	char comm[SYSMON_COMM_LEN];
	double cpu_pct;	      /* % of one CPU over the interval */
	uint64_t rss_bytes;   /* now */
	uint64_t read_bytes;  /* disk bytes read over the interval (proc_io) */
	uint64_t write_bytes; /* disk bytes written over the interval (proc_io) */
};

struct sysmon_io_slot; /* private to sysmon.c */

/*
 * The previous proc_io figures, keyed by tgid, to compute deltas. Zero-initialise it; free
 * it with sysmon_io_table_free(). Its fields are private.
 */
struct sysmon_io_table {
	struct sysmon_io_slot *slots[2];
	size_t n[2];
	size_t cap[2];
	unsigned int cur;
	bool primed; /* a previous array exists: the next update has deltas */
	bool deltas; /* the last update had a previous array */
};

/*
 * Take the current proc_io entries (any order), compute each tgid's bytes since the previous
 * update and write the busiest (read + write, ties by lower tgid; idle ones left out) into
 * top[0..max_top). A tgid absent last time counts all its bytes; a counter that went
 * backwards (entry deleted and created again) counts its new value; tgids gone from the
 * array are forgotten. Only pid, comm, read_bytes and write_bytes of the rows are set.
 * Returns the number of rows (0 on the first update: no deltas yet) or -ENOMEM.
 */
int sysmon_io_update(struct sysmon_io_table *t, const struct sysmon_io_entry *ents, size_t n,
		     struct sysmon_top *top, unsigned int max_top);
/* Bytes read and written by tgid during the last update's interval; false when unknown. */
bool sysmon_io_delta(const struct sysmon_io_table *t, uint32_t tgid, uint64_t *read_bytes,
		     uint64_t *write_bytes);
void sysmon_io_table_free(struct sysmon_io_table *t);

/* ---- The sampler ---- */

enum sysmon_have {
	SYSMON_HAVE_CPU = 1u << 0,     /* cpu_pct, ncpu: needs a previous sample */
	SYSMON_HAVE_MEM = 1u << 1,     /* mem_pct, mem_*_kb */
	SYSMON_HAVE_DISK = 1u << 2,    /* disk_mbps: needs a previous sample */
	SYSMON_HAVE_TOP_CPU = 1u << 3, /* top_cpu: needs a previous sample */
	SYSMON_HAVE_TOP_RSS = 1u << 4, /* top_rss, nprocs */
	SYSMON_HAVE_TOP_IO = 1u << 5,  /* top_io: needs a previous proc_io array */
};

struct sysmon_report {
	uint64_t now_ns;
	uint64_t interval_ns; /* since the previous sample; 0 on the first */
	bool deltas;	      /* false on the first sample (or a clock that did not advance) */
	unsigned int have;    /* enum sysmon_have: which figures below are valid */
	double cpu_pct;
	double mem_pct;
	double disk_mbps;
	unsigned int ncpu;
	uint64_t mem_total_kb;
	uint64_t mem_available_kb;
	unsigned int nprocs;
	/* busiest first; ties by lower pid; top_cpu and top_io leave idle processes out */
	unsigned int n_top_cpu, n_top_rss, n_top_io;
	struct sysmon_top top_cpu[SYSMON_TOP_N];
	struct sysmon_top top_rss[SYSMON_TOP_N];
	struct sysmon_top top_io[SYSMON_TOP_N];
};

struct sysmon; /* opaque: proc root, previous sample, reusable buffers */

/* proc_root NULL means "/proc". 0 and *out, or -EINVAL (root too long), -ENOMEM. */
int sysmon_create(struct sysmon **out, const char *proc_root);
/* NULL-safe. */
void sysmon_destroy(struct sysmon *sm);

/*
 * Read everything once and fill *out. now_ns is any monotonic clock (CLOCK_MONOTONIC or
 * CLOCK_BOOTTIME), the same one on every call. io/n_io are the current proc_io entries; io
 * NULL when the map is not available (no top_io, and the next array starts without deltas),
 * non-NULL with n_io 0 for an empty map. The first call has no deltas
 * (out->deltas false: no CPU %, disk MB/s or top_cpu); the previous sample is kept inside sm.
 * Returns 0 when every source was read, else the first source's -errno with out->have telling
 * what is valid anyway; a source that starts failing is logged once, and again when it
 * recovers.
 */
int sysmon_sample(struct sysmon *sm, uint64_t now_ns, const struct sysmon_io_entry *io, size_t n_io,
		  struct sysmon_report *out);

/*
 * The same sample in steps, so that many processes never hold the caller's loop for long:
 * sysmon_sample_begin() reads the system-wide figures and proc_io (io, n_io as above) and
 * starts on the processes (0); sysmon_sample_step() reads processes until clock_ns() (the
 * clock of deadline_ns, ns) reaches deadline_ns: 0 when more are left, 1 when all are read,
 * -EINVAL without a begin; sysmon_sample_end() reads what is left, fills *out and returns as
 * sysmon_sample() does (-EINVAL without a begin). A begin abandons a sample not ended.
 */
int sysmon_sample_begin(struct sysmon *sm, uint64_t now_ns, const struct sysmon_io_entry *io,
			size_t n_io);
int sysmon_sample_step(struct sysmon *sm, uint64_t deadline_ns, uint64_t (*clock_ns)(void));
int sysmon_sample_end(struct sysmon *sm, struct sysmon_report *out);

/* The report of the latest sysmon_sample(), NULL before the first (or for sm NULL). */
const struct sysmon_report *sysmon_last(const struct sysmon *sm);

/* ---- Anomaly episodes ---- */

enum sysmon_metric {
	SYSMON_METRIC_CPU = 0,
	SYSMON_METRIC_MEMORY = 1,
	SYSMON_METRIC_DISK_IO = 2,
	SYSMON_METRIC_COUNT,
};

/* "cpu", "memory", "disk_io" (the kind stored in system_anomalies); "?" otherwise. */
const char *sysmon_metric_name(enum sysmon_metric metric);

enum sysmon_event {
	SYSMON_EV_NONE = 0,
	SYSMON_EV_OPENED = 1,	    /* an episode began: insert its row */
	SYSMON_EV_PEAK_UPDATED = 2, /* the open episode has a new maximum: update the row */
	SYSMON_EV_CLOSED = 3,	    /* the episode ended: set end_ns */
	SYSMON_EV_TOP_CHANGED = 4,  /* another process now used the most: update the row */
};

struct sysmon_episode {
	enum sysmon_metric metric;
	double threshold;
	double value;	   /* the sample that produced the event */
	double peak;	   /* highest sample since start_ns (the sustain run included) */
	uint64_t start_ns; /* the first sample of the run above the threshold */
	uint64_t peak_ns;
	uint64_t end_ns; /* the sample that closed it; 0 while open */
	/* the process that used the most over the episode so far; 0 when none was known */
	int32_t top_pid;
	char top_comm[SYSMON_COMM_LEN];
	double top_used; /* its use over the episode, in the unit of struct sysmon_use */
};

/*
 * One process's use of the metric during one sample, as the detector accounts it to name
 * the process that used the most over a whole episode (not the one that led one sample):
 * CPU: % of one CPU times the interval in seconds (100 = one CPU-second, as ticks are);
 * memory: RSS bytes (summed over the samples, that is the average RSS times the number of
 * samples: samples come at a fixed interval); disk: bytes read + written in the interval.
 */
struct sysmon_use {
	int32_t pid;	  /* <= 0: ignored */
	const char *comm; /* NULL: "" */
	double used;	  /* <= 0 or not finite: ignored */
};

#define SYSMON_USAGE_MAX 32 /* processes an episode keeps account of */

/* A process's use over the current run or episode (private to the detector). */
struct sysmon_usage {
	int32_t pid;
	char comm[SYSMON_COMM_LEN]; /* the latest name seen */
	double used;
};

/*
 * One detector per metric. An episode opens at the sustain-th consecutive sample above
 * threshold (value > threshold; a sample at or below it restarts the count), stays open while
 * value >= threshold - hysteresis, and closes at the first sample below that. One episode per
 * crossing, however long it lasts and however the value moves inside the band. The episode's
 * top process is the one whose use, summed over every sample from its start (the sustain run
 * included, the closing sample not), is the largest; a tie keeps the one named before. The
 * SYSMON_USAGE_MAX biggest users are kept: a newcomer that used more in its sample than the
 * smallest of them takes its place. Fields are private; set them with sysmon_detector_init().
 */
struct sysmon_detector {
	enum sysmon_metric metric;
	double threshold;
	double hysteresis;
	unsigned int sustain;
	bool open;
	unsigned int run; /* consecutive samples above threshold while not open */
	struct sysmon_episode ep;
	unsigned int n_usage;
	struct sysmon_usage usage[SYSMON_USAGE_MAX];
};

/*
 * 0, or -EINVAL for an unknown metric, a threshold or hysteresis that is not a finite number,
 * a negative hysteresis or sustain 0 (1 opens at the first sample above the threshold).
 */
int sysmon_detector_init(struct sysmon_detector *d, enum sysmon_metric metric, double threshold,
			 double hysteresis, unsigned int sustain);
/*
 * Feed one sample taken at now_ns with what the busiest processes used during it (use[0..n_use),
 * n_use 0 when unknown). Returns what happened; for every event but SYSMON_EV_NONE the
 * episode is copied to *ep (ep may be NULL). SYSMON_EV_PEAK_UPDATED wins over
 * SYSMON_EV_TOP_CHANGED when both happen. A NaN value is ignored (SYSMON_EV_NONE).
 */
enum sysmon_event sysmon_detector_feed(struct sysmon_detector *d, uint64_t now_ns, double value,
				       const struct sysmon_use *use, unsigned int n_use,
				       struct sysmon_episode *ep);
/*
 * Feed the detector's metric from a report, with the use of the processes of the matching
 * top list (top_cpu, top_rss or top_io; see struct sysmon_use). A report without that figure
 * (first sample) is ignored.
 */
enum sysmon_event sysmon_detector_feed_report(struct sysmon_detector *d,
					      const struct sysmon_report *r,
					      struct sysmon_episode *ep);
/* Close an open episode now (shutdown): SYSMON_EV_CLOSED, else SYSMON_EV_NONE. Resets. */
enum sysmon_event sysmon_detector_close(struct sysmon_detector *d, uint64_t now_ns,
					struct sysmon_episode *ep);
bool sysmon_detector_is_open(const struct sysmon_detector *d);

#endif
