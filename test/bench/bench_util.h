/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Small helpers shared by the benchmarks: clocks, a strict number parser, percentiles and
 * /proc/PID/status fields. Header-only, like test/bpf/xdp_harness.h.
 */
#ifndef EBPFMON_BENCH_UTIL_H
#define EBPFMON_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in ns: what every interval of the benchmarks is measured on. */
static inline uint64_t bench_now(void)
{
	return bench_ns(CLOCK_MONOTONIC);
}

/* A whole decimal number in [min, max], or -1. */
static inline long long bench_parse_num(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

/*
 * The value of option -opt (its argument arg) into *dst when it is a whole number in
 * [min, max]; otherwise say which option was wrong and what it wants. 0 or -EINVAL.
 */
static inline int bench_opt_num(const char *prog, int opt, const char *arg, long long min,
				long long max, unsigned int *dst)
{
	long long v = bench_parse_num(arg, min, max);

	if (v < 0) {
		fprintf(stderr, "%s: -%c %s: want a number from %lld to %lld\n", prog, opt, arg,
			min, max);
		return -EINVAL;
	}
	*dst = (unsigned int)v;
	return 0;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile (0 < p <= 100) of n values already sorted ascending. */
static inline uint64_t bench_pct(const uint64_t *sorted, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

/* A "kB" field of /proc/PID/status ("VmRSS", "VmHWM"...): kB, or -errno. */
static inline long long bench_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long long kb = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			kb = strtoll(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* utime + stime of a process in ms (from /proc/PID/stat), or -errno. */
static inline long long bench_cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EINVAL;
	return (long long)((ut + st) * 1000 / (unsigned long long)(hz > 0 ? hz : 100));
}

#endif /* EBPFMON_BENCH_UTIL_H */
