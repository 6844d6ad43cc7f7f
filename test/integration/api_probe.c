// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * api_probe: a raw nng REQ client of the ebpfmon API for tests and benchmarks, below what
 * ebpfmonctl lets through.
 *
 *   api_probe --url URL fuzz N [SEED]   N bodies: random bytes, truncated and bit-flipped valid
 *                                       requests; every one must get a Response that decodes
 *                                       (a status other than OK for the invalid ones)
 *   api_probe --url URL version V       a GetMonitorStatus with protocol version V: prints
 *                                       the status name, message and the server's version
 *   api_probe --url URL concurrent N    N clients at once, each a GetMonitorStatus: all OK
 *   api_probe --url URL rate SECONDS CLIENTS [status|stats]
 *                                       round trips for SECONDS with CLIENTS threads: prints
 *                                       requests/s and p50/p99 latency in microseconds
 *   api_probe --url URL banstorm RATE SECONDS
 *                                       BanIP of RATE new addresses a second (198.19.0.0/16,
 *                                       60 s bans) for SECONDS: prints the bans made
 *
 * Exit status: 0 every check held, 1 one did not (the reason on stderr), 2 usage, 3 no server.
 */
#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ebpfmon.pb-c.h"

static const char *url = "ipc:///run/ebpfmon/api.sock";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int dial(nng_socket *s)
{
	int rv = nng_req0_open(s);

	if (rv == 0)
		rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 5000);
	if (rv == 0)
		rv = nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 5000);
	/* a REQ socket resends after this; a test wants one answer per request */
	if (rv == 0)
		rv = nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (rv == 0)
		rv = nng_dial(*s, url, NULL, 0);
	if (rv) {
		fprintf(stderr, "api_probe: %s: %s\n", url, nng_strerror(rv));
		return -1;
	}
	return 0;
}

/* One round trip; *out is the decoded Response (NULL when it did not decode). */
static int call(nng_socket s, const void *body, size_t len, Ebpfmon__V1__Response **out)
{
	void *buf = NULL;
	size_t rlen = 0;
	int rv;

	*out = NULL;
	rv = nng_send(s, (void *)body, len, 0);
	if (rv == 0)
		rv = nng_recv(s, &buf, &rlen, NNG_FLAG_ALLOC);
	if (rv) {
		fprintf(stderr, "api_probe: round trip: %s\n", nng_strerror(rv));
		return -1;
	}
	*out = ebpfmon__v1__response__unpack(NULL, rlen, buf);
	nng_free(buf, rlen);
	return 0;
}

static size_t pack_request(uint32_t version, int which, uint8_t **out)
{
	Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest st = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest ns = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;
	size_t len;

	req.version = version;
	if (which == 1) {
		ns.top = 100;
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
		req.get_network_stats = &ns;
	} else {
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
		req.get_monitor_status = &st;
	}
	len = ebpfmon__v1__request__get_packed_size(&req);
	*out = malloc(len ? len : 1);
	if (!*out)
		abort();
	ebpfmon__v1__request__pack(&req, *out);
	return len;
}

static const char *status_name(int status)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&ebpfmon__v1__status__descriptor, status);

	return v ? v->name : "?";
}

static int do_fuzz(unsigned long n, unsigned long seed)
{
	uint8_t *valid, body[512];
	size_t vlen = pack_request(1, 0, &valid);
	unsigned long bad_ok = 0, undecoded = 0;
	nng_socket s;

	srandom((unsigned int)seed);
	if (dial(&s))
		return 3;
	for (unsigned long i = 0; i < n; i++) {
		Ebpfmon__V1__Response *r;
		size_t len;

		switch (i % 3) {
		case 0: /* random bytes */
			len = (size_t)random() % sizeof(body);
			for (size_t k = 0; k < len; k++)
				body[k] = (uint8_t)random();
			break;
		case 1: /* a valid request cut short */
			len = vlen ? (size_t)random() % vlen : 0;
			memcpy(body, valid, len);
			break;
		default: /* a valid request with a byte changed */
			memcpy(body, valid, vlen);
			len = vlen;
			if (len)
				body[(size_t)random() % len] ^= (uint8_t)(1 + random() % 255);
			break;
		}
		if (call(s, body, len, &r)) {
			fprintf(stderr, "api_probe: body %lu (%zu bytes) got no reply\n", i, len);
			nng_close(s);
			free(valid);
			return 1;
		}
		if (!r) {
			undecoded++;
			continue;
		}
		/* a changed byte may still make a valid GetMonitorStatus; random bytes may not */
		if (r->status == EBPFMON__V1__STATUS__STATUS_OK && i % 3 == 0 && len > 8)
			bad_ok++;
		ebpfmon__v1__response__free_unpacked(r, NULL);
	}
	/* and the server still answers a plain request */
	{
		Ebpfmon__V1__Response *r;

		if (call(s, valid, vlen, &r) || !r || r->status != EBPFMON__V1__STATUS__STATUS_OK) {
			fprintf(stderr, "api_probe: a valid request after the fuzzing failed\n");
			nng_close(s);
			free(valid);
			return 1;
		}
		ebpfmon__v1__response__free_unpacked(r, NULL);
	}
	nng_close(s);
	free(valid);
	printf("fuzz: %lu bodies, %lu replies that did not decode, %lu random bodies answered OK\n",
	       n, undecoded, bad_ok);
	return undecoded ? 1 : 0;
}

static int do_version(uint32_t version)
{
	Ebpfmon__V1__Response *r;
	uint8_t *body;
	size_t len = pack_request(version, 0, &body);
	nng_socket s;
	int rc = 1;

	if (dial(&s)) {
		free(body);
		return 3;
	}
	if (call(s, body, len, &r) == 0 && r) {
		printf("%s %u %s\n", status_name(r->status), r->version, r->message);
		rc = 0;
		ebpfmon__v1__response__free_unpacked(r, NULL);
	}
	nng_close(s);
	free(body);
	return rc;
}

struct worker {
	pthread_t t;
	int which;
	uint64_t deadline_ns; /* 0: one request */
	uint64_t *lat;	      /* round trips in ns */
	size_t n, cap;
	int failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t *body;
	size_t len = pack_request(1, w->which, &body);
	nng_socket s;

	if (dial(&s)) {
		w->failed = 3;
		free(body);
		return NULL;
	}
	do {
		Ebpfmon__V1__Response *r;
		uint64_t t0 = now_ns();

		if (call(s, body, len, &r) || !r || r->status != EBPFMON__V1__STATUS__STATUS_OK) {
			w->failed = 1;
			if (r)
				ebpfmon__v1__response__free_unpacked(r, NULL);
			break;
		}
		ebpfmon__v1__response__free_unpacked(r, NULL);
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 1024;
			w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
			if (!w->lat)
				abort();
		}
		w->lat[w->n++] = now_ns() - t0;
	} while (w->deadline_ns && now_ns() < w->deadline_ns);
	nng_close(s);
	free(body);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int run_workers(unsigned long n, int which, double seconds)
{
	struct worker *w = calloc(n, sizeof(*w));
	uint64_t t0 = now_ns(), *all;
	size_t total = 0, k = 0;
	int failed = 0;

	if (!w)
		abort();
	for (unsigned long i = 0; i < n; i++) {
		w[i].which = which;
		w[i].deadline_ns = seconds > 0 ? t0 + (uint64_t)(seconds * 1e9) : 0;
		if (pthread_create(&w[i].t, NULL, work, &w[i]))
			abort();
	}
	for (unsigned long i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		if (w[i].failed && !failed)
			failed = w[i].failed;
		total += w[i].n;
	}
	double elapsed = (double)(now_ns() - t0) / 1e9;

	all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		abort();
	for (unsigned long i = 0; i < n; i++) {
		memcpy(all + k, w[i].lat, w[i].n * sizeof(*all));
		k += w[i].n;
		free(w[i].lat);
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	if (seconds > 0 && total)
		printf("clients %lu requests %zu req/s %.0f p50_us %.1f p99_us %.1f\n", n, total,
		       (double)total / elapsed, (double)all[total / 2] / 1e3,
		       (double)all[total * 99 / 100] / 1e3);
	else
		printf("concurrent: %lu clients, %zu answered OK\n", n, total);
	free(all);
	free(w);
	if (failed)
		fprintf(stderr, "api_probe: a client failed\n");
	return failed ? failed : (seconds > 0 || total == n ? 0 : 1);
}

/* BanIP of rate addresses a second in 198.19.0.0/16 for the given seconds. */
static int do_banstorm(unsigned long rate, unsigned long seconds)
{
	uint64_t t0 = now_ns(), gap = rate ? 1000000000ull / rate : 0;
	unsigned long made = 0, refused = 0, total = rate * seconds;
	nng_socket s;

	if (dial(&s))
		return 3;
	for (unsigned long i = 0; i < total; i++) {
		Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
		Ebpfmon__V1__BanIPRequest ban = EBPFMON__V1__BAN_IPREQUEST__INIT;
		Ebpfmon__V1__Response *r;
		uint8_t body[128];
		char addr[32];
		size_t len;

		while (now_ns() < t0 + i * gap)
			;
		snprintf(addr, sizeof(addr), "198.19.%lu.%lu", (i / 250) % 250 + 1, i % 250 + 1);
		ban.address = addr;
		ban.duration_seconds = 60;
		ban.reason = "api_probe banstorm";
		req.version = 1;
		req.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
		req.ban_ip = &ban;
		len = ebpfmon__v1__request__pack(&req, body);
		if (call(s, body, len, &r) || !r) {
			nng_close(s);
			return 1;
		}
		if (r->status == EBPFMON__V1__STATUS__STATUS_OK)
			made++;
		else
			refused++;
		ebpfmon__v1__response__free_unpacked(r, NULL);
	}
	nng_close(s);
	printf("banstorm: %lu bans made, %lu refused, in %.2f s\n", made, refused,
	       (double)(now_ns() - t0) / 1e9);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: api_probe [--url URL] fuzz N [SEED] | version V | concurrent N |\n"
		   "                 rate SECONDS CLIENTS [status|stats] | banstorm RATE SECONDS\n"
		   "  --url URL  the API (default ipc:///run/ebpfmon/api.sock)\n"
		   "EXAMPLES\n"
		   "  api_probe --url ipc:///tmp/t/api.sock fuzz 1000\n"
		   "  api_probe rate 5 8 stats\n");
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "api_probe: '%s' is not a number\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	int i = 1;

	if (i < argc && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (i + 1 < argc && !strcmp(argv[i], "--url")) {
		url = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "fuzz") && i + 1 < argc)
		return do_fuzz(num(argv[i + 1]), i + 2 < argc ? num(argv[i + 2]) : 1);
	if (!strcmp(argv[i], "version") && i + 1 < argc)
		return do_version((uint32_t)num(argv[i + 1]));
	if (!strcmp(argv[i], "concurrent") && i + 1 < argc)
		return run_workers(num(argv[i + 1]), 0, 0);
	if (!strcmp(argv[i], "rate") && i + 2 < argc)
		return run_workers(num(argv[i + 2]),
				   i + 3 < argc && !strcmp(argv[i + 3], "stats") ? 1 : 0,
				   (double)num(argv[i + 1]));
	if (!strcmp(argv[i], "banstorm") && i + 2 < argc)
		return do_banstorm(num(argv[i + 1]), num(argv[i + 2]));
	usage(stderr);
	return 2;
}
