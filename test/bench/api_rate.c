// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * api_rate: round trips of the API over ipc:// against nng's own floor, measured in the same
 * run: GetMonitorStatus and GetNetworkStats(top 100) with 1 and 8 clients, with 100k
 * addresses in ip_stats, first on a quiet analyzer and then while a ban storm (BanIP of 1000
 * new addresses a second) runs.
 *
 *   sudo build/test/bench/api_rate [-t SECONDS] [-r ROUNDS] [-n ADDRESSES] [-b BANS_PER_S]
 *
 * The rig (nsbench.h): the real loader on a veth in a private namespace and pin root, the
 * real analyzer as user ebpfmon without capabilities, its API socket in a private folder;
 * ip_stats is filled before the analyzer starts. The baseline is a trivial nng REP server in
 * a child process, shaped like the API server (API_WORKS contexts over aios, one socket,
 * ipc://): it answers each request from its callback with a body of the size the API's reply
 * to the same call has, so that it costs what nng and the kernel cost for those bytes and
 * nothing else. The same client threads (one REQ socket each, one request in flight) measure
 * both. Each cell runs SECONDS after a short warm-up, ROUNDS times, the cells of a round
 * interleaved so that the machine's load falls on all alike; the table shows the median
 * round with min..max. During the storm, a separate REQ socket (uid 0: may ban) sends BanIP
 * on a fixed schedule; its own round trips are reported too.
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails, 2 on usage. Everything it makes is removed at exit, also after ^C.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ebpfmon.pb-c.h"
#include "ebpfmon_abi.h"
#include "log.h"
#include "nsbench.h"

#define PROG "api_rate"

#define DEFAULT_SECONDS	 3u
#define DEFAULT_ROUNDS	 3u
#define DEFAULT_ADDRS	 100000u
#define DEFAULT_STORM	 1000u
#define DEFAULT_INTERVAL 1000u
#define MAX_TRACKED	 131072u
#define MAX_ADDRS	 (MAX_TRACKED - 256u)
#define MAX_BANS	 131072u
#define FIRST_ADDR	 0xc6120100u /* 198.18.1.0: ip_stats; the storm bans 198.19.0.0/16 */
#define WARMUP_MS	 300u
#define ECHO_WORKS	 8 /* as API_WORKS */
#define TOP_N		 100
#define TARGET_P99_US	 200.0
#define TARGET_RATE	 20000.0
#define MAX_CLIENTS	 8

enum call { CALL_ECHO_STATUS, CALL_ECHO_STATS, CALL_STATUS, CALL_STATS, CALL_N };

static const char *const call_name[CALL_N] = {
	[CALL_ECHO_STATUS] = "nng echo (status size)",
	[CALL_ECHO_STATS] = "nng echo (stats size)",
	[CALL_STATUS] = "GetMonitorStatus",
	[CALL_STATS] = "GetNetworkStats top 100",
};

static const unsigned int clients_of[] = {1, MAX_CLIENTS};
#define N_CLIENTS 2

/* One measurement: a call, a client count, quiet or under the storm, one round. */
struct cell {
	double rate, p50_us, p99_us;
	unsigned long failed;
};

struct opts {
	unsigned int seconds, rounds, addrs, storm, interval_ms;
	const char *loader, *analyzer;
	bool sp_client;
};

static char api_url[200], echo_url[200];
/*
 * --client sp: the measuring clients speak the SP protocols on a Unix stream socket
 * themselves instead of through nng's REQ socket, so that a round trip holds the server's
 * side (nng's and ours) and the kernel's, and none of nng's client threads.
 */
static bool sp_client;

/*
 * Threads that call nng, and nng's own, never take SIGINT/SIGTERM/SIGHUP: a signal that
 * interrupts one of nng 1.5's system calls can leave its sockets spinning, and the run would
 * never end. Only the main thread takes them (nsbench.h: they set nsb_interrupted).
 */
static int spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t set, old;
	int rv;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	rv = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rv;
}

/* Start nng's threads (they are made with the first socket) with those signals blocked. */
static int nng_start_threads(void)
{
	sigset_t set, old;
	nng_socket s;
	int rv;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	rv = nng_req0_open(&s);
	if (!rv)
		nng_close(s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rv ? -ENOMEM : 0;
}

/* --- the baseline: a REP server shaped like the API's, in a child process --- */

struct echo_work {
	nng_aio *aio;
	nng_ctx ctx;
	bool sending;
};

/* The request's first 4 bytes (little endian) ask for the reply's size. */
static void echo_cb(void *arg)
{
	struct echo_work *w = arg;
	nng_msg *msg;
	uint32_t want = 0;

	if (nng_aio_result(w->aio)) {
		if (w->sending)
			nng_msg_free(nng_aio_get_msg(w->aio));
		if (nng_aio_result(w->aio) == NNG_ECLOSED)
			return;
		w->sending = false;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	if (w->sending) {
		w->sending = false;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	msg = nng_aio_get_msg(w->aio);
	if (nng_msg_len(msg) >= 4)
		memcpy(&want, nng_msg_body(msg), 4);
	if (want > 1024 * 1024)
		want = 1024 * 1024;
	if (nng_msg_realloc(msg, want)) {
		nng_msg_free(msg);
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	nng_aio_set_msg(w->aio, msg);
	w->sending = true;
	nng_ctx_send(w->ctx, w->aio);
}

/* The child: serve echo_url until the parent closes its end of the pipe (or dies). */
static void __attribute__((noreturn)) echo_child(int ready_fd, int quit_fd)
{
	struct echo_work w[ECHO_WORKS] = {0};
	struct pollfd pfd = {.fd = quit_fd, .events = POLLIN};
	nng_socket s;
	char ok = 1;
	int rv;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* the parent unwinds and closes the pipe; nng's threads take no signal (spawn()) */
	signal(SIGTERM, SIG_DFL);
	{
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	rv = nng_rep0_open(&s);
	for (int i = 0; !rv && i < ECHO_WORKS; i++) {
		rv = nng_aio_alloc(&w[i].aio, echo_cb, &w[i]);
		if (!rv)
			rv = nng_ctx_open(&w[i].ctx, s);
	}
	if (!rv)
		rv = nng_listen(s, echo_url, NULL, 0);
	if (rv) {
		fprintf(stderr, "%s: echo server %s: %s\n", PROG, echo_url, nng_strerror(rv));
		_exit(1);
	}
	for (int i = 0; i < ECHO_WORKS; i++)
		nng_ctx_recv(w[i].ctx, w[i].aio);
	if (write(ready_fd, &ok, 1) != 1)
		_exit(1);
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	for (int i = 0; i < ECHO_WORKS; i++)
		nng_aio_stop(w[i].aio);
	nng_close(s);
	_exit(0);
}

static pid_t echo_pid;
static int echo_quit = -1;

static int echo_start(void)
{
	int ready[2], quit[2];
	char c;

	if (pipe2(ready, O_CLOEXEC) || pipe2(quit, O_CLOEXEC))
		return -errno;
	echo_pid = fork();
	if (echo_pid < 0)
		return -errno;
	if (echo_pid == 0) {
		close(ready[0]);
		close(quit[1]);
		echo_child(ready[1], quit[0]);
	}
	close(ready[1]);
	close(quit[0]);
	echo_quit = quit[1];
	if (read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		return -EIO;
	}
	close(ready[0]);
	return 0;
}

static void echo_stop(void)
{
	int status;

	if (echo_quit >= 0)
		close(echo_quit);
	echo_quit = -1;
	if (echo_pid > 0) {
		for (int i = 0; i < 100 && waitpid(echo_pid, &status, WNOHANG) != echo_pid; i++) {
			if (i == 99) {
				kill(echo_pid, SIGKILL);
				waitpid(echo_pid, &status, 0);
			}
			usleep(20000);
		}
	}
	echo_pid = 0;
}

/* --- requests --- */

static size_t pack_call(enum call c, uint8_t *buf, size_t cap, uint32_t echo_size)
{
	Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest st = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	Ebpfmon__V1__GetNetworkStatsRequest ns = EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;

	req.version = 1;
	if (c == CALL_STATS || c == CALL_ECHO_STATS) {
		ns.top = TOP_N;
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
		req.get_network_stats = &ns;
	} else {
		req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
		req.get_monitor_status = &st;
	}
	if (ebpfmon__v1__request__get_packed_size(&req) > cap)
		abort();
	if (c == CALL_ECHO_STATUS || c == CALL_ECHO_STATS) {
		/* as long as the API's request; the first bytes ask for the reply's size */
		size_t n = ebpfmon__v1__request__pack(&req, buf);

		if (n < 4)
			n = 4;
		memcpy(buf, &echo_size, 4);
		return n;
	}
	return ebpfmon__v1__request__pack(&req, buf);
}

static int dial(nng_socket *s, const char *url)
{
	int rv = nng_req0_open(s);

	if (!rv)
		rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 5000);
	if (!rv)
		rv = nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 5000);
	if (!rv)
		rv = nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (!rv)
		rv = nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 0);
	if (!rv)
		rv = nng_dial(*s, url, NULL, 0);
	if (rv)
		fprintf(stderr, "%s: %s: %s\n", PROG, url, nng_strerror(rv));
	return rv ? -EIO : 0;
}

/* One round trip: 0 and the reply's size, or -EIO. check: the reply must decode as OK. */
static long round_trip(nng_socket s, const uint8_t *body, size_t len, bool check)
{
	void *buf = NULL;
	size_t rlen = 0;
	long ret;

	int rv = nng_send(s, (void *)body, len, 0);

	if (!rv)
		rv = nng_recv(s, &buf, &rlen, NNG_FLAG_ALLOC);
	if (rv) {
		fprintf(stderr, "%s: round trip: %s\n", PROG, nng_strerror(rv));
		return -EIO;
	}
	ret = (long)rlen;
	if (check) {
		Ebpfmon__V1__Response *r = ebpfmon__v1__response__unpack(NULL, rlen, buf);

		if (!r || r->status != EBPFMON__V1__STATUS__STATUS_OK) {
			if (r)
				fprintf(stderr, "%s: reply status %d: %s\n", PROG, r->status,
					r->message);
			ret = -EIO;
		}
		if (r)
			ebpfmon__v1__response__free_unpacked(r, NULL);
	}
	nng_free(buf, rlen);
	return ret;
}

/*
 * A REQ peer without nng, for --client sp. The wire format is nanomsg's "SP over IPC"
 * (sp-ipc-mapping-01: an 8-byte header "\0SP\0", the protocol as a 16-bit big-endian
 * number, 2 reserved bytes; then each message as the byte 1, its length as a 64-bit
 * big-endian number, and its bytes) carrying REQ/REP (sp-request-reply-01: a request starts
 * with a 32-bit request ID with its top bit set, and the reply carries it back).
 */
#define SP_PROTO_REQ 0x30
#define SP_PROTO_REP 0x31

struct sp_conn {
	int fd;
	uint32_t next_id;
	uint8_t *buf; /* the last reply */
	size_t cap;
};

static int sp_io(int fd, void *p, size_t n, bool rd)
{
	for (size_t o = 0; o < n;) {
		ssize_t r = rd ? read(fd, (uint8_t *)p + o, n - o)
			       : send(fd, (const uint8_t *)p + o, n - o, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		o += (size_t)r;
	}
	return 0;
}

static int sp_dial(struct sp_conn *c, const char *url)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const uint8_t hello[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ, 0, 0};
	uint8_t peer[8];
	struct timeval tv = {.tv_sec = 5};

	*c = (struct sp_conn){.fd = -1, .next_id = 1};
	if (strncmp(url, "ipc://", 6) || strlen(url + 6) >= sizeof(sa.sun_path))
		return -EINVAL;
	strcpy(sa.sun_path, url + 6);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    sp_io(c->fd, (void *)hello, sizeof(hello), false) ||
	    sp_io(c->fd, peer, sizeof(peer), true) || memcmp(peer, "\0SP\0", 4) || peer[4] != 0 ||
	    peer[5] != SP_PROTO_REP) {
		fprintf(stderr, "%s: %s: the SP handshake failed\n", PROG, url);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return -EIO;
	}
	return 0;
}

static void sp_close(struct sp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* One round trip without nng: the reply's size (its request ID stripped), or -EIO. */
static long sp_round_trip(struct sp_conn *c, const uint8_t *body, size_t len)
{
	uint8_t out[9 + 4 + 256], hdr[9];
	uint32_t id = 0x80000000u | (c->next_id++ & 0x7fffffffu);
	uint64_t rlen = 0;

	if (len > 256)
		return -EIO;
	out[0] = 1;
	be64(out + 1, 4 + len);
	out[9] = (uint8_t)(id >> 24), out[10] = (uint8_t)(id >> 16);
	out[11] = (uint8_t)(id >> 8), out[12] = (uint8_t)id;
	memcpy(out + 13, body, len);
	if (sp_io(c->fd, out, 13 + len, false) || sp_io(c->fd, hdr, sizeof(hdr), true) ||
	    hdr[0] != 1)
		return -EIO;
	for (int i = 1; i < 9; i++)
		rlen = rlen << 8 | hdr[i];
	if (rlen < 4 || rlen > (1u << 24))
		return -EIO;
	if (rlen > c->cap) {
		free(c->buf);
		c->buf = malloc(rlen);
		c->cap = c->buf ? rlen : 0;
		if (!c->buf)
			return -EIO;
	}
	if (sp_io(c->fd, c->buf, rlen, true) ||
	    memcmp(c->buf, (uint8_t[]){out[9], out[10], out[11], out[12]}, 4))
		return -EIO;
	return (long)(rlen - 4);
}

/* --- client threads --- */

struct client {
	pthread_t t;
	const char *url;
	const uint8_t *body;
	size_t len;
	bool is_api;
	uint64_t start_ns, measure_ns, end_ns;
	uint64_t *lat;
	size_t n, cap;
	unsigned long failed;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	nng_socket s = NNG_SOCKET_INITIALIZER;
	struct sp_conn sp = {.fd = -1};
	uint64_t i = 0;

	if (sp_client ? sp_dial(&sp, c->url) : dial(&s, c->url)) {
		c->failed++;
		return NULL;
	}
	while (bench_now() < c->start_ns)
		usleep(100);
	for (;;) {
		uint64_t t0 = bench_now(), t1;
		/* every 1024th reply of the API is decoded and checked; the rest only timed */
		bool check = c->is_api && (i++ & 1023) == 0;
		long r = sp_client ? sp_round_trip(&sp, c->body, c->len)
				   : round_trip(s, c->body, c->len, check);

		if (sp_client && check && r >= 0) {
			Ebpfmon__V1__Response *resp =
				ebpfmon__v1__response__unpack(NULL, (size_t)r, sp.buf + 4);

			if (!resp || resp->status != EBPFMON__V1__STATUS__STATUS_OK)
				r = -EIO;
			if (resp)
				ebpfmon__v1__response__free_unpacked(resp, NULL);
		}

		t1 = bench_now();
		if (r < 0) {
			c->failed++;
			break;
		}
		if (t0 >= c->measure_ns && c->n < c->cap)
			c->lat[c->n++] = t1 - t0;
		if (t1 >= c->end_ns || nsb_interrupted)
			break;
	}
	if (sp_client)
		sp_close(&sp);
	else
		nng_close(s);
	return NULL;
}

static int run_cell(enum call call, unsigned int nclients, unsigned int seconds, uint32_t echo_size,
		    struct cell *out)
{
	struct client cl[MAX_CLIENTS] = {0};
	uint8_t body[256];
	bool api = call == CALL_STATUS || call == CALL_STATS;
	size_t len = pack_call(call, body, sizeof(body), echo_size), total = 0, k = 0;
	uint64_t start = bench_now() + 50000000ull, measure = start + WARMUP_MS * 1000000ull,
		 end = measure + seconds * 1000000000ull;
	uint64_t *all;

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < nclients; i++) {
		cl[i] = (struct client){.url = api ? api_url : echo_url,
					.body = body,
					.len = len,
					.is_api = api,
					.start_ns = start,
					.measure_ns = measure,
					.end_ns = end,
					.cap = (size_t)seconds * 200000};
		cl[i].lat = malloc(cl[i].cap * sizeof(*cl[i].lat));
		if (!cl[i].lat || spawn(&cl[i].t, client_main, &cl[i]))
			abort();
	}
	for (unsigned int i = 0; i < nclients; i++) {
		pthread_join(cl[i].t, NULL);
		total += cl[i].n;
		out->failed += cl[i].failed;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		abort();
	for (unsigned int i = 0; i < nclients; i++) {
		memcpy(all + k, cl[i].lat, cl[i].n * sizeof(*all));
		k += cl[i].n;
		free(cl[i].lat);
	}
	qsort(all, total, sizeof(*all), bench_cmp_u64);
	out->rate = (double)total / seconds;
	out->p50_us = bench_pct(all, total, 50) / 1e3;
	out->p99_us = bench_pct(all, total, 99) / 1e3;
	free(all);
	if (nsb_interrupted)
		return -EINTR;
	return out->failed ? -EIO : 0;
}

/* --- the ban storm --- */

struct storm {
	pthread_t t;
	unsigned int rate;
	atomic_bool stop;
	unsigned long made, refused, failed, sent;
	uint64_t started_ns, stopped_ns;
	uint64_t *lat;
	size_t n, cap;
	bool running;
};

static void *storm_main(void *arg)
{
	struct storm *st = arg;
	uint64_t gap = 1000000000ull / st->rate;
	struct timespec due;
	nng_socket s;

	if (dial(&s, api_url)) {
		st->failed++;
		return NULL;
	}
	st->started_ns = bench_now();
	for (unsigned long i = 0; !atomic_load(&st->stop) && !nsb_interrupted; i++) {
		Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
		Ebpfmon__V1__BanIPRequest ban = EBPFMON__V1__BAN_IPREQUEST__INIT;
		Ebpfmon__V1__Response *r;
		uint64_t when = st->started_ns + i * gap, t0, t1;
		uint8_t body[128], *buf = NULL;
		char addr[32];
		size_t len, rlen = 0;

		due.tv_sec = (time_t)(when / 1000000000ull);
		due.tv_nsec = (long)(when % 1000000000ull);
		/* a fixed schedule: a slow reply delays the next ban, never the pace after it */
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR &&
		       !nsb_interrupted)
			;
		snprintf(addr, sizeof(addr), "198.19.%lu.%lu", (i / 250) % 250 + 1, i % 250 + 1);
		ban.address = addr;
		ban.duration_seconds = 60;
		ban.reason = "api_rate storm";
		req.version = 1;
		req.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
		req.ban_ip = &ban;
		len = ebpfmon__v1__request__pack(&req, body);
		t0 = bench_now();
		st->sent++;
		if (nng_send(s, body, len, 0) || nng_recv(s, &buf, &rlen, NNG_FLAG_ALLOC)) {
			st->failed++;
			break;
		}
		t1 = bench_now();
		r = ebpfmon__v1__response__unpack(NULL, rlen, buf);
		nng_free(buf, rlen);
		if (r && r->status == EBPFMON__V1__STATUS__STATUS_OK)
			st->made++;
		else
			st->refused++;
		if (r)
			ebpfmon__v1__response__free_unpacked(r, NULL);
		if (st->n < st->cap)
			st->lat[st->n++] = t1 - t0;
	}
	st->stopped_ns = bench_now();
	nng_close(s);
	return NULL;
}

static int storm_start(struct storm *st, unsigned int rate, size_t cap)
{
	*st = (struct storm){.rate = rate, .cap = cap};
	st->lat = malloc(cap * sizeof(*st->lat));
	if (!st->lat || spawn(&st->t, storm_main, st))
		return -ENOMEM;
	st->running = true;
	return 0;
}

static void storm_stop(struct storm *st)
{
	if (!st->running)
		return;
	atomic_store(&st->stop, true);
	pthread_join(st->t, NULL);
	st->running = false;
}

/* --- the table --- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct stat3 {
	double med, min, max;
};

static struct stat3 stat_of(const struct cell *c, unsigned int n, size_t off)
{
	double v[64];
	struct stat3 s;

	for (unsigned int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&c[i] + off);
	qsort(v, n, sizeof(v[0]), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

static void print_table(struct cell cells[2][CALL_N][N_CLIENTS][64], unsigned int rounds,
			unsigned int storm)
{
	printf("\n  %-26s %3s %-6s %17s %9s %19s %8s %8s  %s\n", "call", "cl", "storm",
	       "req/s med (min..max)", "p50 us", "p99 us med (min..max)",
	       "req/s:", "p99:", "target p99<200us, >=20k req/s");
	printf("  %-26s %3s %-6s %17s %9s %19s %8s %8s\n", "", "", "", "", "", "", "echo", "echo");
	for (int s = 0; s < 2; s++) {
		for (int c = 0; c < CALL_N; c++) {
			for (int k = 0; k < N_CLIENTS; k++) {
				struct cell *row = cells[s][c][k];
				struct cell *base = cells[s][c == CALL_STATUS  ? CALL_ECHO_STATUS
							     : c == CALL_STATS ? CALL_ECHO_STATS
									       : c][k];
				struct stat3 r = stat_of(row, rounds, offsetof(struct cell, rate));
				struct stat3 p50 =
					stat_of(row, rounds, offsetof(struct cell, p50_us));
				struct stat3 p99 =
					stat_of(row, rounds, offsetof(struct cell, p99_us));
				struct stat3 br =
					stat_of(base, rounds, offsetof(struct cell, rate));
				struct stat3 bp =
					stat_of(base, rounds, offsetof(struct cell, p99_us));
				char rr[40], pp[40], verdict[64] = "";

				snprintf(rr, sizeof(rr), "%6.0f (%.0f..%.0f)", r.med, r.min, r.max);
				snprintf(pp, sizeof(pp), "%5.0f (%.0f..%.0f)", p99.med, p99.min,
					 p99.max);
				if (c == CALL_STATUS || c == CALL_STATS)
					snprintf(
						verdict, sizeof(verdict), "p99 %s, rate %s",
						p99.med < TARGET_P99_US ? "met" : "NOT met",
						k == N_CLIENTS - 1
							? (r.med >= TARGET_RATE ? "met" : "NOT met")
							: "(8 clients)");
				printf("  %-26s %3u %-6s %17s %9.0f %19s %7.2fx %7.2fx  %s\n",
				       call_name[c], clients_of[k], s ? "yes" : "no", rr, p50.med,
				       pp, r.med / br.med, p99.med / bp.med, verdict);
			}
		}
		if (!s && storm)
			printf("  ---- while BanIP runs at %u/s ----\n", storm);
		if (!storm)
			break;
	}
}

/*
 * One FIGURE line per call and load (quiet, storm): p50 and p99 of one client and the rate of
 * MAX_CLIENTS clients, the median round of each, next to the echo's in the same rounds.
 */
static void print_figures(struct cell cells[2][CALL_N][N_CLIENTS][64], unsigned int rounds,
			  unsigned int storm)
{
	static const char *const id[CALL_N] = {
		[CALL_STATUS] = "api.status", [CALL_STATS] = "api.top100"};

	for (int s = 0; s < (storm ? 2 : 1); s++) {
		for (int c = CALL_STATUS; c <= CALL_STATS; c++) {
			int e = c == CALL_STATUS ? CALL_ECHO_STATUS : CALL_ECHO_STATS;
			const char *sfx = s ? (sp_client ? "_storm_sp" : "_storm")
					    : (sp_client ? "_sp" : "");
			struct stat3 p50 =
				stat_of(cells[s][c][0], rounds, offsetof(struct cell, p50_us));
			struct stat3 p99 =
				stat_of(cells[s][c][0], rounds, offsetof(struct cell, p99_us));
			struct stat3 rate = stat_of(cells[s][c][N_CLIENTS - 1], rounds,
						    offsetof(struct cell, rate));
			struct stat3 ep50 =
				stat_of(cells[s][e][0], rounds, offsetof(struct cell, p50_us));
			struct stat3 ep99 =
				stat_of(cells[s][e][0], rounds, offsetof(struct cell, p99_us));
			struct stat3 erate = stat_of(cells[s][e][N_CLIENTS - 1], rounds,
						     offsetof(struct cell, rate));

			printf("FIGURE\t%s_p50_us%s\t%.1f\t%.1f\tus\t-\n", id[c], sfx, p50.med,
			       ep50.med);
			printf("FIGURE\t%s_p99_us%s\t%.1f\t%.1f\tus\t<%.0f\n", id[c], sfx, p99.med,
			       ep99.med, TARGET_P99_US);
			printf("FIGURE\t%s_rps_%ucl%s\t%.0f\t%.0f\treq/s\t>=%.0f\n", id[c],
			       clients_of[N_CLIENTS - 1], sfx, rate.med, erate.med, TARGET_RATE);
		}
	}
}

static void print_load(const char *when)
{
	double l[3];

	if (getloadavg(l, 3) == 3)
		printf("load average %s: %.2f %.2f %.2f (%ld CPUs online)\n", when, l[0], l[1],
		       l[2], sysconf(_SC_NPROCESSORS_ONLN));
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"Round trips of the ebpfmon API over ipc:// (GetMonitorStatus, GetNetworkStats\n"
		"top 100; 1 and %d clients; p50/p99 and requests/s) with ADDRESSES entries in\n"
		"ip_stats, quiet and while BanIP runs at BANS_PER_S, each next to a trivial nng\n"
		"REQ/REP server (same contexts, same clients, replies of the same size) measured\n"
		"in the same run. Needs root; the analyzer runs as user ebpfmon without\n"
		"capabilities, the loader in a private network namespace.\n"
		"\n"
		"  -t, --seconds S      measured seconds per cell and round (default %u, 1..60)\n"
		"  -r, --rounds R       rounds; the table shows the median, min..max (default %u,\n"
		"                       1..15)\n"
		"  -n, --addresses N    entries written to ip_stats (default %u, 0..%u)\n"
		"  -b, --bans-per-s B   the storm's BanIP rate (default %u, 0: no storm, 1..10000)\n"
		"  -i, --interval-ms MS the analyzer's monitoring interval (default %u, 100..60000)\n"
		"  -c, --client KIND    nng: the clients are nng REQ sockets (default); sp: they\n"
		"                       speak SP over IPC on a Unix socket themselves, so that\n"
		"                       a round trip holds only the server's side and the kernel\n"
		"      --loader PATH    ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH  ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help           this text\n"
		"\n"
		"Prints, besides the table, one line per figure for test/bench/run-all:\n"
		"  FIGURE<TAB>id<TAB>ebpfmon<TAB>echo<TAB>unit<TAB>target\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -t 5 -r 5\n"
		"  sudo build/test/bench/%s -n 0 -b 0      # empty maps, no storm\n"
		"  sudo build/test/bench/%s -c sp -b 0     # the server's side alone\n",
		PROG, MAX_CLIENTS, DEFAULT_SECONDS, DEFAULT_ROUNDS, DEFAULT_ADDRS, MAX_ADDRS,
		DEFAULT_STORM, DEFAULT_INTERVAL, PROG, PROG, PROG, PROG);
}

static int parse(int argc, char **argv, struct opts *o)
{
	enum { OPT_LOADER = 256, OPT_ANALYZER };
	static const struct option lo[] = {
		{"seconds", required_argument, NULL, 't'},
		{"rounds", required_argument, NULL, 'r'},
		{"addresses", required_argument, NULL, 'n'},
		{"bans-per-s", required_argument, NULL, 'b'},
		{"interval-ms", required_argument, NULL, 'i'},
		{"client", required_argument, NULL, 'c'},
		{"loader", required_argument, NULL, OPT_LOADER},
		{"analyzer", required_argument, NULL, OPT_ANALYZER},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt;

	*o = (struct opts){.seconds = DEFAULT_SECONDS,
			   .rounds = DEFAULT_ROUNDS,
			   .addrs = DEFAULT_ADDRS,
			   .storm = DEFAULT_STORM,
			   .interval_ms = DEFAULT_INTERVAL};
	while ((opt = getopt_long(argc, argv, "t:r:n:b:i:c:h", lo, NULL)) != -1) {
		long long v = 0;
		unsigned int *dst = NULL;
		long long lo_v = 0, hi_v = 0;

		switch (opt) {
		case 't':
			dst = &o->seconds, lo_v = 1, hi_v = 60;
			break;
		case 'r':
			dst = &o->rounds, lo_v = 1, hi_v = 15;
			break;
		case 'n':
			dst = &o->addrs, lo_v = 0, hi_v = MAX_ADDRS;
			break;
		case 'b':
			dst = &o->storm, lo_v = 0, hi_v = 10000;
			break;
		case 'i':
			dst = &o->interval_ms, lo_v = 100, hi_v = 60000;
			break;
		case 'c':
			if (strcmp(optarg, "nng") && strcmp(optarg, "sp")) {
				fprintf(stderr, "%s: -c %s: want nng or sp\n", PROG, optarg);
				return 2;
			}
			o->sp_client = !strcmp(optarg, "sp");
			continue;
		case OPT_LOADER:
			o->loader = optarg;
			continue;
		case OPT_ANALYZER:
			o->analyzer = optarg;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
		v = bench_parse_num(optarg, lo_v, hi_v);
		if (v < 0) {
			fprintf(stderr, "%s: -%c %s: want %lld..%lld\n", PROG, opt, optarg, lo_v,
				hi_v);
			return 2;
		}
		*dst = (unsigned int)v;
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* The size of the API's reply to call (for the echo to answer with as many bytes). */
static long reply_size(enum call call)
{
	uint8_t body[256];
	size_t len = pack_call(call, body, sizeof(body), 0);
	nng_socket s;
	long n;

	if (dial(&s, api_url))
		return -EIO;
	n = round_trip(s, body, len, true);
	nng_close(s);
	return n;
}

int main(int argc, char **argv)
{
	static struct nsb ns;
	static struct cell cells[2][CALL_N][N_CLIENTS][64];
	struct opts o;
	struct storm storm = {0};
	char net[512];
	long size[CALL_N] = {0};
	int err = 0, ip_fd = -1, rc = 1;

	if ((rc = parse(argc, argv, &o)))
		return rc;
	rc = 1;
	sp_client = o.sp_client;
	log_init(PROG, LOG_LVL_WARN);
	nsb_init(&ns, PROG, o.loader, o.analyzer);
	snprintf(api_url, sizeof(api_url), "ipc://%s/var/api.sock", ns.tmpdir);
	snprintf(echo_url, sizeof(echo_url), "ipc://%s/echo.sock", ns.tmpdir);
	/* before this process starts any nng thread */
	if ((err = echo_start())) {
		fprintf(stderr, "%s: cannot start the echo server: %s\n", PROG, strerror(-err));
		goto fail;
	}
	if ((err = nng_start_threads()))
		goto fail;
	snprintf(net, sizeof(net),
		 "max_tracked_ips = %u\n"
		 "max_bans = %u\n"
		 "max_connections_per_ip = 100\n"
		 "http_ports = 80\n"
		 "allowlist = 127.0.0.0/8, ::1\n"
		 "cidr_ban_threshold = 0\n"
		 "monitoring_interval = %ums",
		 MAX_TRACKED, MAX_BANS, o.interval_ms);
	if ((err = nsb_topology(&ns, NULL, 0)) || (err = nsb_write_conf(&ns, net)) ||
	    (err = nsb_start_loader(&ns, 20)))
		goto fail;
	ip_fd = nsb_map_fd(&ns, EBPFMON_MAP_IP_STATS);
	if (ip_fd < 0) {
		err = ip_fd;
		goto fail;
	}
	if (o.addrs && (err = nsb_fill_ip_stats(&ns, ip_fd, FIRST_ADDR, o.addrs)))
		goto fail;
	if ((err = nsb_start_analyzer(&ns, 20)))
		goto fail;
	/* the first interval has passed: the analyzer's start-up work is behind it */
	if ((err = nsb_sleep_ms(o.interval_ms + 500)))
		goto fail;
	size[CALL_STATUS] = reply_size(CALL_STATUS);
	size[CALL_STATS] = reply_size(CALL_STATS);
	if (size[CALL_STATUS] < 0 || size[CALL_STATS] < 0) {
		fprintf(stderr, "%s: the API did not answer OK\n", PROG);
		err = -EIO;
		goto fail;
	}
	size[CALL_ECHO_STATUS] = size[CALL_STATUS];
	size[CALL_ECHO_STATS] = size[CALL_STATS];

	printf("api_rate: %s as user ebpfmon without capabilities; %u addresses in ip_stats "
	       "(max_tracked_ips %u), monitoring_interval %u ms, %d possible CPUs\n",
	       ns.analyzer, o.addrs, MAX_TRACKED, o.interval_ms, libbpf_num_possible_cpus());
	printf("replies: GetMonitorStatus %ld bytes, GetNetworkStats top %d %ld bytes; each cell "
	       "%u s after %u ms warm-up, %u rounds\n",
	       size[CALL_STATUS], TOP_N, size[CALL_STATS], o.seconds, WARMUP_MS, o.rounds);
	printf("clients: %s\n", sp_client ? "SP over IPC without nng (--client sp): the server's "
					    "side and the kernel's"
					  : "nng REQ sockets");
	print_load("at start");
	fflush(stdout);

	for (int s = 0; s < (o.storm ? 2 : 1); s++) {
		if (s && (err = storm_start(&storm, o.storm,
					    (size_t)o.storm * (o.seconds + 2) * CALL_N * N_CLIENTS *
						    o.rounds)))
			goto fail;
		for (unsigned int r = 0; r < o.rounds; r++)
			for (int c = 0; c < CALL_N; c++)
				for (int k = 0; k < N_CLIENTS; k++) {
					err = run_cell(c, clients_of[k], o.seconds,
						       (uint32_t)size[c], &cells[s][c][k][r]);
					if (err == -EINTR)
						goto fail;
					if (err) {
						fprintf(stderr, "%s: %s with %u clients failed\n",
							PROG, call_name[c], clients_of[k]);
						if (nsb_analyzer_alive(&ns))
							nsb_tail(ns.analyzer_log, 10);
						goto fail;
					}
				}
		if (!nsb_analyzer_alive(&ns)) {
			err = -ECHILD;
			goto fail;
		}
	}
	storm_stop(&storm);
	print_load("at end");
	print_table(cells, o.rounds, o.storm);
	if (o.storm) {
		double secs = (storm.stopped_ns - storm.started_ns) / 1e9;

		qsort(storm.lat, storm.n, sizeof(*storm.lat), bench_cmp_u64);
		printf("\nstorm: %lu BanIP sent in %.1f s (%.0f/s, asked %u/s): %lu banned, %lu "
		       "refused, %lu failed; BanIP round trip p50 %.0f us, p99 %.0f us, max %.0f "
		       "us\n",
		       storm.sent, secs, storm.sent / secs, o.storm, storm.made, storm.refused,
		       storm.failed, bench_pct(storm.lat, storm.n, 50) / 1e3,
		       bench_pct(storm.lat, storm.n, 99) / 1e3,
		       bench_pct(storm.lat, storm.n, 100) / 1e3);
	}
	printf("\n(echo: a REP server in a child process, %d contexts answering from nng's "
	       "callback with as many bytes as the API's reply; ratios: the API's median over "
	       "the echo's median of the same row)\n\n",
	       ECHO_WORKS);
	print_figures(cells, o.rounds, o.storm);
	rc = 0;
	goto out;
fail:
	if (err == -EINTR) {
		fprintf(stderr, "%s: interrupted; cleaning up\n", PROG);
		rc = 130;
	}
out:
	storm_stop(&storm);
	free(storm.lat);
	echo_stop();
	if (ip_fd >= 0)
		close(ip_fd);
	return rc; /* nsb_cleanup() runs at exit */
}
