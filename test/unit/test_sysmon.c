// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Resource monitoring: the /proc readers on fixture trees (test/unit/fixtures/proc_a and
 * proc_b, ten seconds apart), the proc_io deltas, a full sample pair, the anomaly episode
 * detector fed by hand, and one sanity pass over the real /proc.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sysmon.h"

#define FIX_A	   SYSMON_FIXTURES "/proc_a"
#define FIX_B	   SYSMON_FIXTURES "/proc_b"
#define FIX_OLDMEM SYSMON_FIXTURES "/proc_oldmem"
#define SEC	   1000000000ull

#define assert_near(a, b) assert_near_at((a), (b), __FILE__, __LINE__)

static void assert_near_at(double a, double b, const char *file, int line)
{
	if (fabs(a - b) > 1e-9) {
		print_error("%s:%d: %.12f != %.12f\n", file, line, a, b);
		fail();
	}
}

/* % of one CPU for ticks gained over secs seconds, as sysmon computes it. */
static double pct(uint64_t ticks, double secs)
{
	return (double)ticks * 100.0 / (secs * (double)sysconf(_SC_CLK_TCK));
}

static uint64_t pages(uint64_t n)
{
	return n * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- A temporary folder whose "proc" symlink points at a fixture tree ---- */

static char tmp_dir[64];
static char tmp_proc[96];

static void tmp_make(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ebpfmon-sysmon-XXXXXX");
	assert_non_null(mkdtemp(tmp_dir));
	snprintf(tmp_proc, sizeof(tmp_proc), "%s/proc", tmp_dir);
}

static void tmp_point(const char *target)
{
	unlink(tmp_proc);
	assert_int_equal(symlink(target, tmp_proc), 0);
}

static void tmp_write(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void tmp_mkdir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void tmp_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- /proc/stat ---- */

static void test_cpu_fixture(void **state)
{
	struct sysmon_cpu a, b;

	(void)state;
	assert_int_equal(sysmon_read_cpu(FIX_A, &a), 0);
	assert_int_equal(sysmon_read_cpu(FIX_B, &b), 0);
	assert_int_equal(a.ncpu, 2);
	assert_int_equal(a.user, 1000);
	assert_int_equal(a.nice, 100);
	assert_int_equal(a.system, 500);
	assert_int_equal(a.idle, 8000);
	assert_int_equal(a.iowait, 200);
	assert_int_equal(a.irq, 50);
	assert_int_equal(a.softirq, 50);
	assert_int_equal(a.steal, 100);
	/*
	 * busy: user +310 (guest +200 already inside), system +100, irq +20, softirq +20,
	 * steal +50 = 500; idle +250, iowait +50 = 300: 500 / 800. Adding guest again would give
	 * 70, leaving steal out 60, iowait as busy 68.75.
	 */
	assert_near(sysmon_cpu_percent(&a, &b), 62.5);
	assert_near(sysmon_cpu_percent(&a, &a), 0.0);
}

static void test_cpu_counters_backwards(void **state)
{
	struct sysmon_cpu a = {.user = 100, .idle = 1000, .iowait = 500};
	struct sysmon_cpu b = {.user = 200, .idle = 1100, .iowait = 400};

	(void)state;
	/* iowait went back by 100: it adds 0, not 2^64 - 100 */
	assert_near(sysmon_cpu_percent(&a, &b), 50.0);
	b.user = 1100;
	b.idle = 1000;
	assert_near(sysmon_cpu_percent(&a, &b), 100.0);
}

static void test_cpu_missing(void **state)
{
	struct sysmon_cpu c;

	(void)state;
	assert_int_equal(sysmon_read_cpu(SYSMON_FIXTURES "/no-such", &c), -ENOENT);
	/* proc_oldmem has a meminfo and no stat */
	assert_int_equal(sysmon_read_cpu(FIX_OLDMEM, &c), -ENOENT);
	tmp_make();
	tmp_point(tmp_dir);
	tmp_write("stat", "intr 1 2 3\nctxt 5\n");
	assert_int_equal(sysmon_read_cpu(tmp_proc, &c), -EINVAL);
	/* an old kernel: four fields only */
	tmp_write("stat", "cpu  10 20 30 40\ncpu0 10 20 30 40\n");
	assert_int_equal(sysmon_read_cpu(tmp_proc, &c), 0);
	assert_int_equal(c.idle, 40);
	assert_int_equal(c.steal, 0);
	assert_int_equal(c.ncpu, 1);
	unlink(tmp_proc);
	tmp_remove();
}

/* ---- /proc/meminfo ---- */

static void test_mem_fixture(void **state)
{
	struct sysmon_mem m;

	(void)state;
	assert_int_equal(sysmon_read_mem(FIX_A, &m), 0);
	assert_int_equal(m.total_kb, 16000000);
	assert_int_equal(m.available_kb, 4000000);
	assert_near(sysmon_mem_percent(&m), 75.0);
	assert_int_equal(sysmon_read_mem(FIX_B, &m), 0);
	assert_near(sysmon_mem_percent(&m), 87.5);
	/* no MemAvailable: MemFree 100000 + Buffers 50000 + Cached 250000 of 1000000 */
	assert_int_equal(sysmon_read_mem(FIX_OLDMEM, &m), 0);
	assert_int_equal(m.available_kb, 400000);
	assert_near(sysmon_mem_percent(&m), 60.0);
}

/* ---- /proc/diskstats ---- */

static void test_disk_fixture(void **state)
{
	struct sysmon_disk a, b;

	(void)state;
	assert_int_equal(sysmon_read_disk(FIX_A, &a), 0);
	assert_int_equal(sysmon_read_disk(FIX_B, &b), 0);
	/* sda, sdaa, nvme0n1, mmcblk0, vda, sr0; not sda1 sda2 nvme0n1p1 nvme0n1p2 mmcblk0p1
	 * vda1 loop0 loop1 dm-0 md0 ram0 zram0, nor the short line */
	assert_int_equal(a.ndisks, 6);
	assert_int_equal(b.ndisks, 6);
	assert_int_equal(a.sectors, 300000 + 2000 + 600000 + 0 + 30 + 0);
	/* 990000 + 10000 + 500000 + 250000 + 200000 + 50000 */
	assert_int_equal(b.sectors - a.sectors, 2000000);
}

static void test_disk_names(void **state)
{
	struct sysmon_disk d;

	(void)state;
	tmp_make();
	tmp_point(tmp_dir);
	/* a partition whose disk is absent is a disk; nvme0n1 is not a partition of "nvme0n" */
	tmp_write("diskstats", "8 0 sdb1 1 0 10 0 1 0 5 0 0 0 0\n"
			       "259 0 nvme0n1 1 0 100 0 1 0 50 0 0 0 0\n"
			       "259 5 nvme0n1p12 1 0 1000 0 1 0 500 0 0 0 0\n"
			       "252 0 xvda 1 0 7 0 1 0 0 0 0 0 0\n"
			       "252 1 xvda3 1 0 1000 0 1 0 0 0 0 0 0\n"
			       "7 9 loop9p1 1 0 1000 0 1 0 0 0 0 0 0\n"
			       "7 9 loop9 1 0 1000 0 1 0 0 0 0 0 0\n"
			       "9 1 md127 1 0 1000 0 1 0 0 0 0 0 0\n"
			       "43 0 nbd0 1 0 3 0 1 0 0 0 0 0 0\n");
	assert_int_equal(sysmon_read_disk(tmp_proc, &d), 0);
	assert_int_equal(d.ndisks, 4);
	assert_int_equal(d.sectors, 15 + 150 + 7 + 3);
	tmp_write("diskstats", "");
	assert_int_equal(sysmon_read_disk(tmp_proc, &d), 0);
	assert_int_equal(d.ndisks, 0);
	assert_int_equal(d.sectors, 0);
	unlink(tmp_proc);
	tmp_remove();
	assert_int_equal(sysmon_read_disk(FIX_OLDMEM, &d), -ENOENT);
}

/* ---- /proc/PID ---- */

static void test_procs_fixture(void **state)
{
	struct sysmon_proc_list list = {0};
	const struct sysmon_proc *p;
	static const int32_t want[] = {1, 100, 200, 300, 500, 900, 1000};
	size_t i;

	(void)state;
	assert_int_equal(sysmon_read_procs(FIX_A, &list), 7);
	/* 400: no statm; 600: no stat; 700: stat cut short. Not net/, 123 (a file), 0123 */
	assert_int_equal(list.skipped, 3);
	for (i = 0; i < list.n; i++)
		assert_int_equal(list.procs[i].pid, want[i]);

	p = sysmon_proc_find(&list, 1);
	assert_non_null(p);
	assert_string_equal(p->comm, "systemd");
	assert_int_equal(p->ticks, 500);
	assert_int_equal(p->start_ticks, 10);
	assert_int_equal(p->rss_bytes, pages(3000));

	p = sysmon_proc_find(&list, 100);
	assert_non_null(p);
	assert_string_equal(p->comm, "(sd-pam)");
	assert_int_equal(p->ticks, 10);
	assert_int_equal(p->rss_bytes, pages(500));

	p = sysmon_proc_find(&list, 200);
	assert_non_null(p);
	assert_string_equal(p->comm, "a b) c");
	assert_int_equal(p->ticks, 1000);
	assert_int_equal(p->start_ticks, 2500);
	assert_int_equal(p->rss_bytes, pages(1000));

	p = sysmon_proc_find(&list, 300);
	assert_non_null(p);
	assert_string_equal(p->comm, "((weird))");
	assert_int_equal(p->ticks, 400);
	assert_int_equal(p->start_ticks, 3000);
	assert_int_equal(p->rss_bytes, pages(200));

	/* a workqueue worker's long name, cut to TASK_COMM_LEN - 1; no memory */
	p = sysmon_proc_find(&list, 500);
	assert_non_null(p);
	assert_string_equal(p->comm, "kworker/0:1-eve");
	assert_int_equal(p->ticks, 100);
	assert_int_equal(p->rss_bytes, 0);

	assert_null(sysmon_proc_find(&list, 400));
	assert_null(sysmon_proc_find(&list, 600));
	assert_null(sysmon_proc_find(&list, 700));
	assert_null(sysmon_proc_find(&list, 123));

	/* the array is reused: a second read gives the same */
	assert_int_equal(sysmon_read_procs(FIX_B, &list), 7);
	p = sysmon_proc_find(&list, 300);
	assert_non_null(p);
	assert_string_equal(p->comm, "newproc");
	assert_null(sysmon_proc_find(&list, 200));

	assert_int_equal(sysmon_read_procs(SYSMON_FIXTURES "/no-such", &list), -ENOENT);
	assert_int_equal(list.n, 0);
	sysmon_proc_list_free(&list);
	sysmon_proc_list_free(&list);
	sysmon_proc_list_free(NULL);
}

static void test_procs_odd_comm(void **state)
{
	static const char tail[] = "S 1 2 2 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 99 0 0\n";
	struct sysmon_proc_list list = {0};
	char text[256];

	(void)state;
	tmp_make();
	tmp_point(tmp_dir);
	tmp_mkdir("42");
	tmp_mkdir("43");
	tmp_mkdir("44");
	/* a newline and an escape in comm: kept out of logs and tables */
	snprintf(text, sizeof(text), "42 (x\ny\033) %s", tail);
	tmp_write("42/stat", text);
	tmp_write("42/statm", "10 3 0 0 0 0 0\n");
	/* ")" followed by text that looks like fields */
	snprintf(text, sizeof(text), "43 (a) S 1 (b) %s", tail);
	tmp_write("43/stat", text);
	tmp_write("43/statm", "10 4 0 0 0 0 0\n");
	/* stat with too few fields after comm */
	tmp_write("44/stat", "44 (short) S 1 2 3\n");
	tmp_write("44/statm", "10 4 0 0 0 0 0\n");
	assert_int_equal(sysmon_read_procs(tmp_proc, &list), 2);
	assert_int_equal(list.skipped, 1);
	assert_string_equal(list.procs[0].comm, "x?y?");
	assert_int_equal(list.procs[0].ticks, 15);
	assert_int_equal(list.procs[0].start_ticks, 99);
	assert_int_equal(list.procs[0].rss_bytes, pages(3));
	assert_string_equal(list.procs[1].comm, "a) S 1 (b");
	assert_int_equal(list.procs[1].ticks, 15);
	sysmon_proc_list_free(&list);
	unlink(tmp_proc);
	tmp_remove();
}

/* ---- proc_io deltas ---- */

static struct sysmon_io_entry io(uint32_t tgid, const char *comm, uint64_t r, uint64_t w)
{
	struct sysmon_io_entry e = {.tgid = tgid, .read_bytes = r, .write_bytes = w};

	snprintf(e.comm, sizeof(e.comm), "%s", comm);
	return e;
}

static void test_io_deltas(void **state)
{
	struct sysmon_io_table t = {0};
	struct sysmon_top top[SYSMON_TOP_N];
	struct sysmon_io_entry e[6];
	uint64_t r, w;

	(void)state;
	e[0] = io(10, "db", 1000, 5000);
	e[1] = io(20, "web", 100, 0);
	e[2] = io(30, "idle", 7, 7);
	e[3] = io(40, "restarted", 1000000, 0);
	/* the first update has nothing to compare with */
	assert_int_equal(sysmon_io_update(&t, e, 4, top, SYSMON_TOP_N), 0);
	assert_false(sysmon_io_delta(&t, 10, &r, &w));

	e[0] = io(40, "restarted", 300, 0);	/* counter went back: entry started again */
	e[1] = io(30, "idle", 7, 7);		/* no I/O: left out */
	e[2] = io(10, "db", 1000 + 4096, 5000); /* +4096 */
	e[3] = io(50, "new", 0, 700);		/* new: all of it */
	e[4] = io(60, "tie", 300, 0);		/* ties 40 (300): lower tgid first */
	/* 20 is gone */
	assert_int_equal(sysmon_io_update(&t, e, 5, top, SYSMON_TOP_N), 4);
	assert_int_equal(top[0].pid, 10);
	assert_string_equal(top[0].comm, "db");
	assert_int_equal(top[0].read_bytes, 4096);
	assert_int_equal(top[0].write_bytes, 0);
	assert_int_equal(top[1].pid, 50);
	assert_int_equal(top[1].write_bytes, 700);
	assert_int_equal(top[2].pid, 40);
	assert_int_equal(top[2].read_bytes, 300);
	assert_int_equal(top[3].pid, 60);
	assert_true(sysmon_io_delta(&t, 30, &r, &w));
	assert_int_equal(r + w, 0);
	assert_false(sysmon_io_delta(&t, 20, &r, &w));

	/* max_top cuts the list; 20 comes back as new */
	e[0] = io(10, "db", 1000 + 4096 + 1, 5000);
	e[1] = io(20, "web", 100, 0);
	e[2] = io(40, "restarted", 300 + 10, 0);
	assert_int_equal(sysmon_io_update(&t, e, 3, top, 2), 2);
	assert_int_equal(top[0].pid, 20);
	assert_int_equal(top[0].read_bytes, 100);
	assert_int_equal(top[1].pid, 40);
	assert_int_equal(top[1].read_bytes, 10);

	/* an empty map */
	assert_int_equal(sysmon_io_update(&t, e, 0, top, SYSMON_TOP_N), 0);
	sysmon_io_table_free(&t);
	sysmon_io_table_free(&t);
	sysmon_io_table_free(NULL);
}

static unsigned int count_lines(const char *text, const char *needle)
{
	unsigned int n = 0;

	while ((text = strstr(text, needle))) {
		n++;
		text += strlen(needle);
	}
	return n;
}

/* ---- A full sample pair ---- */

/* A clock always past the deadline: every step reads one process. */
static uint64_t late_clock(void)
{
	return UINT64_MAX;
}

/*
 * The sample in steps (as the analyzer's worker may run it) reports what the sample in one
 * call reports, one process a step when every deadline has passed.
 */
static void test_sample_steps(void **state)
{
	struct sysmon_report whole, stepped;
	struct sysmon *one, *sm;
	unsigned int steps = 0;
	int r;

	(void)state;
	tmp_make();
	tmp_point(FIX_A);
	assert_int_equal(sysmon_create(&one, tmp_proc), 0);
	assert_int_equal(sysmon_create(&sm, tmp_proc), 0);
	assert_int_equal(sysmon_sample_step(sm, 0, NULL), -EINVAL); /* no begin */
	assert_int_equal(sysmon_sample(one, 1000 * SEC, NULL, 0, &whole), 0);
	assert_int_equal(sysmon_sample_begin(sm, 1000 * SEC, NULL, 0), 0);
	assert_null(sysmon_last(sm)); /* nothing reported before the end */
	while ((r = sysmon_sample_step(sm, 0, late_clock)) == 0)
		steps++;
	assert_int_equal(r, 1);
	assert_true(steps >= whole.nprocs); /* one process (or a vanished one) a step */
	assert_int_equal(sysmon_sample_end(sm, &stepped), 0);
	assert_int_equal(sysmon_sample_end(sm, &stepped), -EINVAL); /* ended */
	assert_int_equal(stepped.nprocs, 7);
	assert_int_equal(stepped.have, whole.have);
	assert_int_equal(stepped.n_top_rss, whole.n_top_rss);
	for (unsigned int i = 0; i < whole.n_top_rss; i++) {
		assert_int_equal(stepped.top_rss[i].pid, whole.top_rss[i].pid);
		assert_int_equal(stepped.top_rss[i].rss_bytes, whole.top_rss[i].rss_bytes);
	}

	/* the second sample, in steps ended early by sysmon_sample_end(): deltas as one */
	tmp_point(FIX_B);
	assert_int_equal(sysmon_sample(one, 1010 * SEC, NULL, 0, &whole), 0);
	assert_int_equal(sysmon_sample_begin(sm, 1010 * SEC, NULL, 0), 0);
	assert_int_equal(sysmon_sample_step(sm, 0, late_clock), 0);
	assert_int_equal(sysmon_sample_end(sm, &stepped), 0);
	assert_true(stepped.deltas);
	assert_int_equal(stepped.have, whole.have);
	assert_near(stepped.cpu_pct, whole.cpu_pct);
	assert_int_equal(stepped.nprocs, whole.nprocs);
	assert_int_equal(stepped.n_top_cpu, whole.n_top_cpu);
	for (unsigned int i = 0; i < whole.n_top_cpu; i++) {
		assert_int_equal(stepped.top_cpu[i].pid, whole.top_cpu[i].pid);
		assert_near(stepped.top_cpu[i].cpu_pct, whole.top_cpu[i].cpu_pct);
	}
	assert_int_equal(sysmon_last(sm)->now_ns, 1010 * SEC);
	sysmon_destroy(one);
	sysmon_destroy(sm);
	tmp_remove();
}

static void test_sample_fixtures(void **state)
{
	struct sysmon_io_entry ioa[4], iob[4];
	struct sysmon_report r;
	struct sysmon *sm;

	(void)state;
	tmp_make();
	tmp_point(FIX_A);
	assert_int_equal(sysmon_create(&sm, tmp_proc), 0);
	assert_null(sysmon_last(sm)); /* nothing sampled yet */

	ioa[0] = io(1, "systemd", 1000, 2000);
	ioa[1] = io(200, "a b) c", 5000, 0);
	ioa[2] = io(300, "((weird))", 9999999, 0);
	ioa[3] = io(500, "kworker/0:1", 0, 0);
	assert_int_equal(sysmon_sample(sm, 1000 * SEC, ioa, 4, &r), 0);
	assert_false(r.deltas);
	assert_int_equal(r.interval_ns, 0);
	assert_int_equal(r.have, SYSMON_HAVE_MEM | SYSMON_HAVE_TOP_RSS);
	assert_near(r.mem_pct, 75.0);
	assert_int_equal(r.mem_total_kb, 16000000);
	assert_int_equal(r.ncpu, 2);
	assert_int_equal(r.nprocs, 7);
	assert_int_equal(r.n_top_cpu, 0);
	assert_int_equal(r.n_top_io, 0);
	/* by RSS: 1 (3000 pages), 200 (1000), 100 (500), 300 (200), 900 (100); not 1000 (50) */
	assert_int_equal(r.n_top_rss, 5);
	assert_int_equal(r.top_rss[0].pid, 1);
	assert_int_equal(r.top_rss[0].rss_bytes, pages(3000));
	assert_int_equal(r.top_rss[1].pid, 200);
	assert_string_equal(r.top_rss[1].comm, "a b) c");
	assert_int_equal(r.top_rss[2].pid, 100);
	assert_int_equal(r.top_rss[3].pid, 300);
	assert_int_equal(r.top_rss[4].pid, 900);
	assert_near(r.top_rss[0].cpu_pct, 0.0);

	tmp_point(FIX_B);
	iob[0] = io(1, "systemd", 1000 + 4096, 2000 + 8192);
	iob[1] = io(800, "burner", 1048576, 0);
	iob[2] = io(300, "newproc", 50, 0);
	iob[3] = io(500, "kworker/0:1", 0, 0);
	assert_int_equal(sysmon_sample(sm, 1010 * SEC, iob, 4, &r), 0);
	assert_non_null(sysmon_last(sm)); /* the API's figures: the latest report */
	assert_int_equal(sysmon_last(sm)->now_ns, r.now_ns);
	assert_int_equal(sysmon_last(sm)->have, r.have);
	assert_true(sysmon_last(sm)->cpu_pct == r.cpu_pct && sysmon_last(sm)->mem_pct == r.mem_pct);
	assert_true(r.deltas);
	assert_int_equal(r.interval_ns, 10 * SEC);
	assert_int_equal(r.have, SYSMON_HAVE_CPU | SYSMON_HAVE_MEM | SYSMON_HAVE_DISK |
					 SYSMON_HAVE_TOP_CPU | SYSMON_HAVE_TOP_RSS |
					 SYSMON_HAVE_TOP_IO);
	assert_near(r.cpu_pct, 62.5);
	assert_near(r.mem_pct, 87.5);
	/* 2,000,000 sectors * 512 bytes / 10 s = 102.4 MB/s */
	assert_near(r.disk_mbps, 102.4);
	assert_int_equal(r.nprocs, 7);

	/* 800 is new (all 950 ticks); 300 is a reused pid (its 30 ticks); 1000 gained 1 tick and
	 * is cut off the list; 900 gained nothing */
	assert_int_equal(r.n_top_cpu, 5);
	assert_int_equal(r.top_cpu[0].pid, 800);
	assert_string_equal(r.top_cpu[0].comm, "burner");
	assert_near(r.top_cpu[0].cpu_pct, pct(950, 10));
	assert_int_equal(r.top_cpu[0].rss_bytes, pages(25000));
	assert_int_equal(r.top_cpu[0].read_bytes, 1048576);
	assert_int_equal(r.top_cpu[1].pid, 1);
	assert_near(r.top_cpu[1].cpu_pct, pct(50, 10));
	assert_int_equal(r.top_cpu[1].read_bytes, 4096);
	assert_int_equal(r.top_cpu[1].write_bytes, 8192);
	assert_int_equal(r.top_cpu[2].pid, 300);
	assert_string_equal(r.top_cpu[2].comm, "newproc");
	assert_near(r.top_cpu[2].cpu_pct, pct(30, 10));
	assert_int_equal(r.top_cpu[3].pid, 500);
	assert_near(r.top_cpu[3].cpu_pct, pct(20, 10));
	assert_int_equal(r.top_cpu[4].pid, 100);
	assert_near(r.top_cpu[4].cpu_pct, pct(5, 10));

	assert_int_equal(r.n_top_rss, 5);
	assert_int_equal(r.top_rss[0].pid, 800);
	assert_near(r.top_rss[0].cpu_pct, pct(950, 10));
	assert_int_equal(r.top_rss[1].pid, 1);
	assert_int_equal(r.top_rss[1].rss_bytes, pages(3100));
	assert_int_equal(r.top_rss[2].pid, 100);
	assert_int_equal(r.top_rss[3].pid, 300);
	assert_int_equal(r.top_rss[4].pid, 900);
	assert_near(r.top_rss[4].cpu_pct, 0.0);

	/* by I/O: 800 new (1 MiB), 1 (12 KiB), 300 counter restarted (50); 500 idle */
	assert_int_equal(r.n_top_io, 3);
	assert_int_equal(r.top_io[0].pid, 800);
	assert_int_equal(r.top_io[0].read_bytes, 1048576);
	assert_near(r.top_io[0].cpu_pct, pct(950, 10));
	assert_int_equal(r.top_io[0].rss_bytes, pages(25000));
	assert_int_equal(r.top_io[1].pid, 1);
	assert_int_equal(r.top_io[1].read_bytes + r.top_io[1].write_bytes, 12288);
	assert_int_equal(r.top_io[2].pid, 300);
	assert_int_equal(r.top_io[2].read_bytes, 50);

	/* the same tree again a second later: nothing moved */
	assert_int_equal(sysmon_sample(sm, 1011 * SEC, iob, 4, &r), 0);
	assert_near(r.cpu_pct, 0.0);
	assert_near(r.disk_mbps, 0.0);
	assert_int_equal(r.n_top_cpu, 0);
	assert_int_equal(r.n_top_io, 0);
	assert_true(r.have & SYSMON_HAVE_TOP_CPU);

	/* a clock that did not advance: no deltas */
	assert_int_equal(sysmon_sample(sm, 1011 * SEC, NULL, 0, &r), 0);
	assert_false(r.deltas);
	assert_int_equal(r.have, SYSMON_HAVE_MEM | SYSMON_HAVE_TOP_RSS);

	/* a source that fails: reported, the rest still valid */
	tmp_point(FIX_OLDMEM);
	assert_int_equal(sysmon_sample(sm, 1012 * SEC, NULL, 0, &r), -ENOENT);
	assert_int_equal(r.have, SYSMON_HAVE_MEM | SYSMON_HAVE_TOP_RSS | SYSMON_HAVE_TOP_CPU);
	assert_near(r.mem_pct, 60.0);
	assert_int_equal(r.nprocs, 0);
	assert_int_equal(r.n_top_cpu + r.n_top_rss, 0);
	/* back: deltas again at once for the sources that had a previous read */
	tmp_point(FIX_B);
	assert_int_equal(sysmon_sample(sm, 1013 * SEC, NULL, 0, &r), 0);
	assert_int_equal(r.have, SYSMON_HAVE_MEM | SYSMON_HAVE_TOP_RSS | SYSMON_HAVE_TOP_CPU);
	/* every process of proc_b is new again: all its ticks, capped at 2 CPUs for 1 s (plus a
	 * tick); 1 (550 ticks) and 800 (950) tie at the cap, the lower pid first */
	assert_int_equal(r.n_top_cpu, 5);
	assert_int_equal(r.top_cpu[0].pid, 1);
	assert_int_equal(r.top_cpu[1].pid, 800);
	assert_near(r.top_cpu[0].cpu_pct, pct(2 * sysconf(_SC_CLK_TCK) + 1, 1));
	assert_near(r.top_cpu[1].cpu_pct, r.top_cpu[0].cpu_pct);
	assert_int_equal(r.top_cpu[2].pid, 500);

	sysmon_destroy(sm);
	sysmon_destroy(NULL);
	unlink(tmp_proc);
	tmp_remove();
}

/* A source that keeps failing is logged once, and once more when it comes back. */
static void test_sample_logs_once(void **state)
{
	char cap[] = "/tmp/ebpfmon-sysmon-log-XXXXXX", text[4096];
	struct sysmon_report r;
	struct sysmon *sm;
	int fd, saved;
	ssize_t n;

	(void)state;
	tmp_make();
	tmp_point(FIX_OLDMEM);
	assert_int_equal(sysmon_create(&sm, tmp_proc), 0);
	fd = mkstemp(cap);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	assert_int_equal(sysmon_sample(sm, 1 * SEC, NULL, 0, &r), -ENOENT);
	assert_int_equal(sysmon_sample(sm, 2 * SEC, NULL, 0, &r), -ENOENT);
	assert_int_equal(sysmon_sample(sm, 3 * SEC, NULL, 0, &r), -ENOENT);
	tmp_point(FIX_A);
	assert_int_equal(sysmon_sample(sm, 4 * SEC, NULL, 0, &r), 0);
	assert_int_equal(sysmon_sample(sm, 5 * SEC, NULL, 0, &r), 0);
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(cap);
	assert_true(n > 0);
	text[n] = '\0';
	/* stat and diskstats: one warning each, one recovery each */
	assert_int_equal(count_lines(text, "cannot read"), 2);
	assert_int_equal(count_lines(text, "/proc/stat: No such file or directory"), 1);
	assert_int_equal(count_lines(text, "/proc/diskstats: No such file or directory"), 1);
	assert_int_equal(count_lines(text, "readable again"), 2);
	sysmon_destroy(sm);
	unlink(tmp_proc);
	tmp_remove();
}

static void test_create_args(void **state)
{
	char longroot[8192];
	struct sysmon *sm = NULL;

	(void)state;
	memset(longroot, 'a', sizeof(longroot) - 1);
	longroot[sizeof(longroot) - 1] = '\0';
	assert_int_equal(sysmon_create(&sm, longroot), -EINVAL);
	assert_int_equal(sysmon_create(&sm, ""), -EINVAL);
	assert_int_equal(sysmon_create(&sm, NULL), 0);
	sysmon_destroy(sm);
}

/* ---- Anomaly episodes ---- */

static void test_detector_init(void **state)
{
	struct sysmon_detector d;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 80, 5, 0), -EINVAL);
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 80, -1, 1), -EINVAL);
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, NAN, 5, 1), -EINVAL);
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 80, INFINITY, 1), -EINVAL);
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_COUNT, 80, 5, 1), -EINVAL);
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_DISK_IO, 100, 0, 1), 0);
	assert_false(sysmon_detector_is_open(&d));
	assert_string_equal(sysmon_metric_name(SYSMON_METRIC_CPU), "cpu");
	assert_string_equal(sysmon_metric_name(SYSMON_METRIC_MEMORY), "memory");
	assert_string_equal(sysmon_metric_name(SYSMON_METRIC_DISK_IO), "disk_io");
	assert_string_equal(sysmon_metric_name(SYSMON_METRIC_COUNT), "?");
}

/* One sample whose only busy process (pid 0: none) used as much as the value says. */
static enum sysmon_event feed1(struct sysmon_detector *d, uint64_t now_ns, double v, int32_t pid,
			       const char *comm, struct sysmon_episode *ep)
{
	struct sysmon_use u = {.pid = pid, .comm = comm, .used = v};

	return sysmon_detector_feed(d, now_ns, v, &u, pid ? 1 : 0, ep);
}

/*
 * Sample i is taken at (i + 1) * 10 s; its only busy process is pid 1000 + i, "p<i>", which
 * used v: over an episode, the one of the highest sample used the most.
 */
static enum sysmon_event feed_at(struct sysmon_detector *d, unsigned int i, double v,
				 struct sysmon_episode *ep)
{
	char comm[SYSMON_COMM_LEN];

	snprintf(comm, sizeof(comm), "p%u", i);
	return feed1(d, (uint64_t)(i + 1) * 10 * SEC, v, (int32_t)(1000 + i), comm, ep);
}

static void test_detector_sequence(void **state)
{
	/* threshold 80, hysteresis 5 (closes below 75), sustain 3 */
	static const struct {
		double v;
		enum sysmon_event ev;
	} seq[] = {
		{50, SYSMON_EV_NONE},		/* 0 */
		{85, SYSMON_EV_NONE},		/* 1: run 1 */
		{90, SYSMON_EV_NONE},		/* 2: run 2 */
		{70, SYSMON_EV_NONE},		/* 3: run broken */
		{80, SYSMON_EV_NONE},		/* 4: at the threshold is not above it */
		{85, SYSMON_EV_NONE},		/* 5: run 1, the start */
		{95, SYSMON_EV_NONE},		/* 6: run 2, the peak so far */
		{81, SYSMON_EV_OPENED},		/* 7: run 3: opens */
		{99, SYSMON_EV_PEAK_UPDATED},	/* 8 */
		{97, SYSMON_EV_NONE},		/* 9 */
		{78, SYSMON_EV_NONE},		/* 10: in the band */
		{81, SYSMON_EV_NONE},		/* 11 */
		{75, SYSMON_EV_NONE},		/* 12: not below 75 */
		{99.5, SYSMON_EV_PEAK_UPDATED}, /* 13 */
		{74.9, SYSMON_EV_CLOSED},	/* 14 */
		{79, SYSMON_EV_NONE},		/* 15 */
		{85, SYSMON_EV_NONE},		/* 16: a new run starts from scratch */
	};
	struct sysmon_detector d;
	struct sysmon_episode ep;
	unsigned int i;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 80, 5, 3), 0);
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		memset(&ep, 0xa5, sizeof(ep));
		assert_int_equal(feed_at(&d, i, seq[i].v, &ep), seq[i].ev);
		switch (i) {
		case 7:
			assert_int_equal(ep.metric, SYSMON_METRIC_CPU);
			assert_near(ep.threshold, 80);
			assert_near(ep.value, 81);
			assert_near(ep.peak, 95);
			assert_int_equal(ep.start_ns, 60 * SEC); /* sample 5 */
			assert_int_equal(ep.peak_ns, 70 * SEC);
			assert_int_equal(ep.end_ns, 0);
			assert_int_equal(ep.top_pid, 1006); /* used the most so far */
			assert_string_equal(ep.top_comm, "p6");
			assert_true(sysmon_detector_is_open(&d));
			break;
		case 8:
			assert_near(ep.peak, 99);
			assert_int_equal(ep.start_ns, 60 * SEC);
			assert_int_equal(ep.top_pid, 1008);
			break;
		case 13:
			assert_near(ep.peak, 99.5);
			assert_int_equal(ep.peak_ns, 140 * SEC);
			assert_string_equal(ep.top_comm, "p13");
			break;
		case 14:
			assert_near(ep.value, 74.9);
			assert_near(ep.peak, 99.5);
			assert_int_equal(ep.start_ns, 60 * SEC);
			assert_int_equal(ep.end_ns, 150 * SEC);
			assert_int_equal(ep.top_pid, 1013);
			assert_false(sysmon_detector_is_open(&d));
			break;
		default:
			break;
		}
	}
}

static void test_detector_short_spikes(void **state)
{
	struct sysmon_detector d;
	unsigned int i;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_MEMORY, 85, 5, 3), 0);
	/* spikes of two samples, forever: never an episode */
	for (i = 0; i < 300; i++)
		assert_int_equal(feed_at(&d, i, i % 3 == 2 ? 40 : 100, NULL), SYSMON_EV_NONE);
	assert_false(sysmon_detector_is_open(&d));
	/* a dip inside the band still breaks a run that has not opened yet */
	assert_int_equal(feed_at(&d, 300, 90, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed_at(&d, 301, 90, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed_at(&d, 302, 84, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed_at(&d, 303, 90, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed_at(&d, 304, 90, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed_at(&d, 305, 90, NULL), SYSMON_EV_OPENED);
}

static void test_detector_flapping(void **state)
{
	struct sysmon_detector d;
	struct sysmon_episode ep;
	unsigned int i, opened = 0, closed = 0, peaks = 0;
	enum sysmon_event ev;
	double v;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 80, 10, 2), 0);
	/* flapping across 80 but never below 70: one episode, opened at sample 1 */
	for (i = 0; i < 200; i++) {
		v = (i % 2) ? 85.0 + (i % 7) : 71.0 + (i % 9);
		ev = feed_at(&d, i, i == 0 ? 90 : v, &ep);
		opened += ev == SYSMON_EV_OPENED;
		closed += ev == SYSMON_EV_CLOSED;
		peaks += ev == SYSMON_EV_PEAK_UPDATED;
		if (ev == SYSMON_EV_OPENED) {
			assert_int_equal(i, 1);
			assert_int_equal(ep.start_ns, 10 * SEC);
		}
	}
	assert_int_equal(opened, 1);
	assert_int_equal(closed, 0);
	assert_int_equal(peaks, 1); /* 90 from sample 0, then 91 at sample 13 */
	assert_true(sysmon_detector_is_open(&d));
	assert_int_equal(feed_at(&d, 200, 69.9, &ep), SYSMON_EV_CLOSED);
	assert_int_equal(ep.start_ns, 10 * SEC);
	assert_int_equal(ep.end_ns, 2010 * SEC);
}

static void test_detector_crossings(void **state)
{
	struct sysmon_detector d;
	unsigned int i, opened = 0, closed = 0, open_at[3], close_at[3];
	enum sysmon_event ev;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_DISK_IO, 100, 20, 2), 0);
	/* three plateaus above the threshold: exactly three episodes, whatever their length */
	for (i = 0; i < 100; i++) {
		double v = 10;

		if ((i >= 10 && i < 30) || (i >= 50 && i < 52) || (i >= 70 && i < 95))
			v = 150;
		ev = feed_at(&d, i, v, NULL);
		if (ev == SYSMON_EV_OPENED)
			open_at[opened++] = i;
		if (ev == SYSMON_EV_CLOSED)
			close_at[closed++] = i;
		assert_true(opened <= 3 && closed <= 3);
	}
	assert_int_equal(opened, 3);
	assert_int_equal(closed, 3);
	assert_int_equal(open_at[0], 11);
	assert_int_equal(close_at[0], 30);
	assert_int_equal(open_at[1], 51);
	assert_int_equal(close_at[1], 52);
	assert_int_equal(open_at[2], 71);
	assert_int_equal(close_at[2], 95);
}

static void test_detector_sustain_one_nan_close(void **state)
{
	struct sysmon_detector d;
	struct sysmon_episode ep;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 50, 0, 1), 0);
	assert_int_equal(feed1(&d, 5, 50, 1, "a", &ep), SYSMON_EV_NONE);
	assert_int_equal(feed1(&d, 6, 50.5, 0, NULL, &ep), SYSMON_EV_OPENED);
	assert_int_equal(ep.start_ns, 6);
	assert_int_equal(ep.top_pid, 0);
	assert_string_equal(ep.top_comm, "");
	/* a NaN changes nothing */
	assert_int_equal(feed1(&d, 7, NAN, 2, "b", &ep), SYSMON_EV_NONE);
	assert_true(sysmon_detector_is_open(&d));
	/* hysteresis 0: at the threshold stays open, below it closes */
	/* the first process known to use anything is named at once */
	assert_int_equal(feed1(&d, 8, 50, 2, "b", &ep), SYSMON_EV_TOP_CHANGED);
	assert_int_equal(ep.top_pid, 2);
	assert_int_equal(feed1(&d, 9, 60, 3, "c", NULL), SYSMON_EV_PEAK_UPDATED);
	/* shutdown closes the open episode, once */
	assert_int_equal(sysmon_detector_close(&d, 10, &ep), SYSMON_EV_CLOSED);
	assert_int_equal(ep.start_ns, 6);
	assert_int_equal(ep.end_ns, 10);
	assert_near(ep.peak, 60);
	assert_int_equal(ep.top_pid, 3);
	assert_int_equal(sysmon_detector_close(&d, 11, &ep), SYSMON_EV_NONE);
	/* a run that has not opened is dropped by close() */
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_CPU, 50, 0, 2), 0);
	assert_int_equal(feed1(&d, 20, 70, 0, NULL, NULL), SYSMON_EV_NONE);
	assert_int_equal(sysmon_detector_close(&d, 21, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed1(&d, 22, 70, 0, NULL, NULL), SYSMON_EV_NONE);
	assert_int_equal(feed1(&d, 23, 70, 0, NULL, NULL), SYSMON_EV_OPENED);
}

static void test_detector_feed_report(void **state)
{
	struct sysmon_detector cpu, mem, disk;
	struct sysmon_report r;
	struct sysmon_episode ep;

	(void)state;
	assert_int_equal(sysmon_detector_init(&cpu, SYSMON_METRIC_CPU, 80, 5, 1), 0);
	assert_int_equal(sysmon_detector_init(&mem, SYSMON_METRIC_MEMORY, 85, 5, 1), 0);
	assert_int_equal(sysmon_detector_init(&disk, SYSMON_METRIC_DISK_IO, 100, 5, 1), 0);
	memset(&r, 0, sizeof(r));
	r.now_ns = 7 * SEC;
	r.cpu_pct = 99;
	r.mem_pct = 90;
	r.disk_mbps = 500;
	r.have = SYSMON_HAVE_MEM | SYSMON_HAVE_TOP_RSS; /* a first sample */
	r.n_top_rss = 1;
	r.interval_ns = 10 * SEC;
	r.top_rss[0].pid = 42;
	r.top_rss[0].rss_bytes = 1u << 30;
	snprintf(r.top_rss[0].comm, SYSMON_COMM_LEN, "java");
	r.n_top_cpu = 1;
	r.top_cpu[0].pid = 43;
	r.top_cpu[0].cpu_pct = 97;
	snprintf(r.top_cpu[0].comm, SYSMON_COMM_LEN, "burner");
	assert_int_equal(sysmon_detector_feed_report(&cpu, &r, &ep), SYSMON_EV_NONE);
	assert_int_equal(sysmon_detector_feed_report(&disk, &r, &ep), SYSMON_EV_NONE);
	assert_int_equal(sysmon_detector_feed_report(&mem, &r, &ep), SYSMON_EV_OPENED);
	assert_int_equal(ep.metric, SYSMON_METRIC_MEMORY);
	assert_int_equal(ep.top_pid, 42);
	assert_string_equal(ep.top_comm, "java");
	r.have |= SYSMON_HAVE_CPU | SYSMON_HAVE_DISK | SYSMON_HAVE_TOP_CPU | SYSMON_HAVE_TOP_IO;
	assert_int_equal(sysmon_detector_feed_report(&cpu, &r, &ep), SYSMON_EV_OPENED);
	assert_int_equal(ep.top_pid, 43);
	assert_string_equal(ep.top_comm, "burner");
	assert_near(ep.value, 99);
	assert_int_equal(ep.start_ns, 7 * SEC);
	/* no process did I/O: the episode names none */
	assert_int_equal(sysmon_detector_feed_report(&disk, &r, &ep), SYSMON_EV_OPENED);
	assert_int_equal(ep.top_pid, 0);
	assert_near(ep.peak, 500);
}

/*
 * The episode, through /proc trees written for it, 10 s apart: from sample 1 the
 * host's two CPUs are saturated (100 %, so the peak never rises again). "burst" leads
 * sample 1 alone (1.2 CPUs against stress-ng's 0.8) and then nearly stops; stress-ng takes a
 * whole CPU to the end. Memory likewise: "cache" holds 8 GB for sample 1 only, "leak" 3.2 GB
 * for all three.
 */
struct ep_proc {
	int32_t pid;
	const char *comm;
	uint64_t ticks;	 /* utime, cumulative */
	uint64_t rss_pg; /* resident pages; 0: not running */
};

static void ep_tree(unsigned int i, uint64_t busy, uint64_t idle, uint64_t avail_kb,
		    const struct ep_proc *procs, unsigned int n)
{
	char rel[64], text[512];

	snprintf(rel, sizeof(rel), "s%u", i);
	tmp_mkdir(rel);
	snprintf(rel, sizeof(rel), "s%u/stat", i);
	snprintf(text, sizeof(text),
		 "cpu  %llu 0 0 %llu 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"
		 "cpu1 0 0 0 0 0 0 0 0 0 0\n",
		 (unsigned long long)busy, (unsigned long long)idle);
	tmp_write(rel, text);
	snprintf(rel, sizeof(rel), "s%u/meminfo", i);
	snprintf(text, sizeof(text),
		 "MemTotal:       16000000 kB\nMemFree:  %llu kB\n"
		 "MemAvailable:   %llu kB\n",
		 (unsigned long long)avail_kb, (unsigned long long)avail_kb);
	tmp_write(rel, text);
	snprintf(rel, sizeof(rel), "s%u/diskstats", i);
	tmp_write(rel, "   8       0 sda 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	for (unsigned int k = 0; k < n; k++) {
		if (!procs[k].rss_pg)
			continue;
		snprintf(rel, sizeof(rel), "s%u/%d", i, procs[k].pid);
		tmp_mkdir(rel);
		snprintf(rel, sizeof(rel), "s%u/%d/stat", i, procs[k].pid);
		snprintf(text, sizeof(text),
			 "%d (%s) R 1 %d %d 0 -1 4194304 0 0 0 0 %llu 0 0 0 20 0 1 0 %d 1000 "
			 "%llu 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
			 procs[k].pid, procs[k].comm, procs[k].pid, procs[k].pid,
			 (unsigned long long)procs[k].ticks, 100 + procs[k].pid,
			 (unsigned long long)procs[k].rss_pg);
		tmp_write(rel, text);
		snprintf(rel, sizeof(rel), "s%u/%d/statm", i, procs[k].pid);
		snprintf(text, sizeof(text), "%llu %llu 0 0 0 0 0\n",
			 (unsigned long long)procs[k].rss_pg, (unsigned long long)procs[k].rss_pg);
		tmp_write(rel, text);
	}
}

static void test_episode_names_biggest_user(void **state)
{
	const uint64_t T = 10 * (uint64_t)sysconf(_SC_CLK_TCK);		    /* one CPU for 10 s */
	const uint64_t G = 1000000000ull / (uint64_t)sysconf(_SC_PAGESIZE); /* pages in a GB */
	/* sample: cumulative host busy/idle ticks, MemAvailable; burst, stress-ng, cache, leak */
	const struct {
		uint64_t busy, idle, avail_kb, burst, stress, cache_pg, leak_pg;
	} s[] = {
		{0, 2 * T, 8000000, 0, 0, G / 10, G / 10},		       /* 0: quiet, 50 % */
		{2 * T, 2 * T, 480000, T * 12 / 10, T * 8 / 10, 8 * G, 3 * G}, /* 1: 97 % */
		{4 * T, 2 * T, 480000, T * 13 / 10, T * 18 / 10, 0, 32 * G / 10},
		{6 * T, 2 * T, 480000, T * 13 / 10, T * 28 / 10, 0, 32 * G / 10},
		{6 * T + T / 10, 4 * T, 8000000, T * 13 / 10, T * 29 / 10, 0, G / 10}, /* ends */
	};
	struct sysmon_detector cpu, mem;
	struct sysmon_episode ep;
	struct sysmon_report r;
	enum sysmon_event ev[2];
	struct sysmon *sm;
	char rel[300];

	(void)state;
	tmp_make();
	for (unsigned int i = 0; i < 5; i++) {
		struct ep_proc p[] = {
			{100, "burst", s[i].burst, 1000},
			{200, "stress-ng", s[i].stress, 1000},
			{300, "cache", 0, s[i].cache_pg},
			{400, "leak", 0, s[i].leak_pg},
		};

		ep_tree(i, s[i].busy, s[i].idle, s[i].avail_kb, p, 4);
	}
	assert_int_equal(sysmon_detector_init(&cpu, SYSMON_METRIC_CPU, 90, 5, 1), 0);
	assert_int_equal(sysmon_detector_init(&mem, SYSMON_METRIC_MEMORY, 90, 5, 1), 0);
	for (unsigned int i = 0; i < 5; i++) {
		snprintf(rel, sizeof(rel), "%s/s%u", tmp_dir, i);
		tmp_point(rel);
		if (i == 0)
			assert_int_equal(sysmon_create(&sm, tmp_proc), 0);
		assert_int_equal(sysmon_sample(sm, (uint64_t)(i + 1) * 10 * SEC, NULL, 0, &r), 0);
		ev[0] = sysmon_detector_feed_report(&cpu, &r, &ep);
		switch (i) {
		case 1: /* burst leads the first sample of the episode: it is named, for now */
			assert_near(r.cpu_pct, 100);
			assert_int_equal(ev[0], SYSMON_EV_OPENED);
			assert_int_equal(ep.top_pid, 100);
			assert_string_equal(ep.top_comm, "burst");
			break;
		case 2: /* 1.3 CPU-s * 10 against 2.6: stress-ng has used the most from now on */
			assert_int_equal(ev[0], SYSMON_EV_TOP_CHANGED);
			assert_int_equal(ep.top_pid, 200);
			assert_string_equal(ep.top_comm, "stress-ng");
			assert_near(ep.peak, 100);
			break;
		case 3:
			assert_int_equal(ev[0], SYSMON_EV_NONE);
			break;
		case 4:
			assert_int_equal(ev[0], SYSMON_EV_CLOSED);
			assert_int_equal(ep.top_pid, 200);
			assert_string_equal(ep.top_comm, "stress-ng");
			/* CPU-% x s: 0.8 + 1.0 + 1.0 CPUs for 10 s each */
			assert_true(fabs(ep.top_used - 2800.0) < 1e-6);
			break;
		default:
			assert_int_equal(ev[0], SYSMON_EV_NONE);
		}
		ev[1] = sysmon_detector_feed_report(&mem, &r, &ep);
		if (i == 1) {
			assert_int_equal(ev[1], SYSMON_EV_OPENED);
			assert_string_equal(ep.top_comm, "cache"); /* 8 GB against 3 */
		} else if (i == 3) {
			/* cache: 8 GB for one sample; leak: 3 + 3.2 + 3.2 */
			assert_int_equal(ev[1], SYSMON_EV_TOP_CHANGED);
			assert_int_equal(ep.top_pid, 400);
			assert_string_equal(ep.top_comm, "leak");
		} else if (i == 4) {
			assert_int_equal(ev[1], SYSMON_EV_CLOSED);
			assert_string_equal(ep.top_comm, "leak");
		} else {
			assert_int_equal(ev[1], SYSMON_EV_NONE);
		}
	}
	sysmon_destroy(sm);
	tmp_remove();
}

/* More busy processes than the detector keeps: a big user is never crowded out. */
static void test_episode_many_users(void **state)
{
	struct sysmon_use u[5];
	struct sysmon_detector d;
	struct sysmon_episode ep;
	char comm[5][SYSMON_COMM_LEN];
	enum sysmon_event ev;

	(void)state;
	assert_int_equal(sysmon_detector_init(&d, SYSMON_METRIC_DISK_IO, 100, 0, 1), 0);
	for (unsigned int i = 0; i < 40; i++) {
		/* pid 7 ("dd") uses 30 each time; four short-lived ones 10 to 14 each */
		u[0] = (struct sysmon_use){.pid = 7, .comm = "dd", .used = 30};
		for (unsigned int k = 1; k < 5; k++) {
			snprintf(comm[k], sizeof(comm[k]), "w%u", i * 4 + k);
			u[k] = (struct sysmon_use){.pid = (int32_t)(1000 + i * 4 + k),
						   .comm = comm[k],
						   .used = 10.0 + k};
		}
		ev = sysmon_detector_feed(&d, (i + 1) * SEC, 150, u, 5, &ep);
		assert_int_equal(ev, i ? SYSMON_EV_NONE : SYSMON_EV_OPENED);
		assert_int_equal(ep.top_pid, 7);
	}
	assert_int_equal(sysmon_detector_close(&d, 41 * SEC, &ep), SYSMON_EV_CLOSED);
	assert_int_equal(ep.top_pid, 7);
	assert_near(ep.top_used, 40 * 30);
}

/* ---- The real /proc ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void test_real_proc(void **state)
{
	struct sysmon_proc_list list = {0};
	const struct sysmon_proc *p;
	char comm[SYSMON_COMM_LEN] = "";
	struct sysmon_report r;
	struct sysmon *sm;
	volatile uint64_t spin = 0;
	uint64_t t0, t1;
	unsigned int i;
	int n;

	(void)state;
	assert_int_equal(prctl(PR_GET_NAME, comm), 0);
	n = sysmon_read_procs("/proc", &list);
	assert_true(n > 0);
	p = sysmon_proc_find(&list, getpid());
	assert_non_null(p);
	assert_string_equal(p->comm, comm);
	assert_true(p->rss_bytes > 0);
	for (i = 1; i < list.n; i++)
		assert_true(list.procs[i - 1].pid < list.procs[i].pid);
	sysmon_proc_list_free(&list);

	assert_int_equal(sysmon_create(&sm, NULL), 0);
	assert_int_equal(sysmon_sample(sm, now_ns(), NULL, 0, &r), 0);
	assert_false(r.deltas);
	assert_true(r.mem_pct > 0 && r.mem_pct <= 100);
	t0 = now_ns();
	while (now_ns() - t0 < 100000000ull) /* 100 ms of work for this process */
		spin++;
	t0 = now_ns();
	assert_int_equal(sysmon_sample(sm, t0, NULL, 0, &r), 0);
	t1 = now_ns();
	assert_true(r.deltas);
	assert_true(r.have & SYSMON_HAVE_CPU);
	assert_true(r.cpu_pct >= 0 && r.cpu_pct <= 100);
	assert_true(r.mem_pct > 0 && r.mem_pct <= 100);
	assert_true(r.disk_mbps >= 0);
	assert_true(r.ncpu >= 1);
	assert_true(r.nprocs > 0);
	/* we were the busy one */
	assert_true(r.n_top_cpu >= 1);
	for (i = 0; i < r.n_top_cpu; i++)
		if (r.top_cpu[i].pid == getpid())
			break;
	assert_true(i < r.n_top_cpu);
	assert_string_equal(r.top_cpu[i].comm, comm);
	assert_true(r.top_cpu[i].cpu_pct > 10);
	print_message("one sample of the real /proc (%u processes): %.2f ms\n", r.nprocs,
		      (double)(t1 - t0) / 1e6);
	sysmon_destroy(sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_fixture),
		cmocka_unit_test(test_cpu_counters_backwards),
		cmocka_unit_test(test_cpu_missing),
		cmocka_unit_test(test_mem_fixture),
		cmocka_unit_test(test_disk_fixture),
		cmocka_unit_test(test_disk_names),
		cmocka_unit_test(test_procs_fixture),
		cmocka_unit_test(test_procs_odd_comm),
		cmocka_unit_test(test_io_deltas),
		cmocka_unit_test(test_sample_fixtures),
		cmocka_unit_test(test_sample_steps),
		cmocka_unit_test(test_sample_logs_once),
		cmocka_unit_test(test_create_args),
		cmocka_unit_test(test_detector_init),
		cmocka_unit_test(test_detector_sequence),
		cmocka_unit_test(test_detector_short_spikes),
		cmocka_unit_test(test_detector_flapping),
		cmocka_unit_test(test_detector_crossings),
		cmocka_unit_test(test_detector_sustain_one_nan_close),
		cmocka_unit_test(test_detector_feed_report),
		cmocka_unit_test(test_episode_names_biggest_user),
		cmocka_unit_test(test_episode_many_users),
		cmocka_unit_test(test_real_proc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
