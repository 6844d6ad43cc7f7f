// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The nng side of the API. Each of API_WORKS `work`s is a small state machine over an nng
 * context and an aio (nng's demo/async/server.c):
 *
 *   INIT -> RECV: nng_ctx_recv()
 *   RECV -> SEND: a request came (nng's thread) that api_handle_fast() answers from the
 *                 published snapshots (GetMonitorStatus, the live top list, a malformed
 *                 request): the reply is sent from the callback
 *   RECV -> READ: a call that only reads the store and the maps (api_is_store_read()):
 *                 queue the work for the reader thread
 *   READ -> SEND: the reader runs the call on a read-only connection of its own to the
 *                 database, puts the reply in the aio and nng_ctx_send()s it; without that
 *                 connection (no database yet, or it cannot be opened) it hands the work
 *                 to the owner (WAIT)
 *   RECV -> WAIT: any other request: note the peer, queue the work for the owner, wake it
 *                 through the eventfd
 *   WAIT -> SEND: api_dispatch() on the owner thread runs the call, puts the reply in the aio
 *                 and nng_ctx_send()s it; a call that waits for fresh snapshots is parked
 *                 and answered by api_resume() after the next cycle (a BanIP or UnbanIP
 *                 while the analyzer's worker holds the database: after the worker's job)
 *   SEND -> RECV: the reply left (or could not: its message is freed); receive the next
 *
 * Callbacks never exit(), never log above debug on the request path, and never touch the
 * policy or the store. A timer (a sleep aio) retries a listener that failed to start and
 * replaces a listener that stopped accepting (check_ipc(), check_tcp()).
 *
 * The reader thread keeps listings of thousands of rows off the owner's loop, so bans go on
 * while they are read. SQLite's WAL lets it read while the owner writes; the owner commits
 * at the end of each of its callbacks, before a reply leaves, so a read that follows a reply
 * (a BanIP, say) sees what that reply reported.
 */
#include "api.h"

#include <errno.h>
#include <grp.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "cpusched.h"
#include "log.h"
#include "monoclock.h"
#include "store.h"

/*
 * A reader that could not open the database tries again after this long (ns), as the owner
 * does (each failure is logged by the store).
 */
#define API_READER_RETRY_NS (60ull * 1000000000ull)
/* The reader thread's nice value over the process's, and SCHED_BATCH (cpusched.h). */
#define API_READER_NICE 5

enum work_state {
	WORK_INIT,
	WORK_RECV,
	WORK_READ, /* queued for the reader thread */
	WORK_WAIT, /* queued for the owner thread */
	WORK_SEND,
};

struct api_work {
	struct api *api;
	enum work_state state;
	nng_aio *aio;
	nng_ctx ctx;
	nng_msg *msg; /* the request while WAIT */
	struct api_peer peer;
	struct api_work *next; /* in the owner's queue */
};

struct api {
	nng_socket sock;
	bool sock_open;
	nng_listener ipc, tcp;
	bool ipc_up, tcp_up; /* listening */
	atomic_int ipc_id;   /* nng_listener_id() of ipc; -1: none */
	char ipc_url[CONFIG_PATH_MAX + 8], tcp_url[CONFIG_PATH_MAX];
	char ipc_path[CONFIG_PATH_MAX];
	gid_t sock_gid;	  /* group of the socket file; (gid_t)-1: leave it */
	nng_aio *retry;	  /* every API_CHECK_MS: the listeners' health, restarts */
	nng_socket probe; /* a REQ socket that dials ipc:// to see that it still accepts */
	bool probe_open;
	struct api_tcp_probe *tcp_probe; /* checks that tcp:// or tls+tcp:// still accepts */
	bool tcp_probed;		 /* tcp_probe went out at the last check */
	char tls_cert[CONFIG_PATH_MAX], tls_key[CONFIG_PATH_MAX], tls_ca[CONFIG_PATH_MAX];
	char tls_admin_names[CONFIG_PATH_MAX];
	bool tls_said;	      /* the TLS set-up's failure is logged */
	uint64_t pipes;	      /* under mu: connections the ipc:// listener took in */
	uint64_t pipes_probe; /* pipes when the probe dialled */

	int efd;
	pthread_mutex_t mu; /* head, tail; stopping is set under it */
	struct api_work *head, *tail;
	atomic_bool stopping;
	/* the owner's: waiting for fresh snapshots, or for the worker's hold on the database */
	struct api_work *parked;

	struct api_env env;
	struct api_work works[API_WORKS];

	/* the reader thread: store_read calls, on a read-only connection of its own */
	pthread_t reader;
	bool reader_started;
	pthread_cond_t rcond;		/* under mu: rhead or stopping changed */
	struct api_work *rhead, *rtail; /* under mu */
	struct store *rstore;		/* the reader's: NULL until opened */
	uint64_t ropen_after_ns;	/* the reader's: no open before (CLOCK_MONOTONIC) */
	char db_path[CONFIG_PATH_MAX];
	atomic_uint_fast64_t requests, refused;
};

static bool stopping(struct api *api)
{
	return atomic_load(&api->stopping);
}

/* "198.51.100.7:41234" or "[2001:db8::7]:41234" */
static void api_sockaddr_str(const nng_sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->s_family == NNG_AF_INET) {
		inet_ntop(AF_INET, &sa->s_in.sa_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(sa->s_in.sa_port));
	} else if (sa->s_family == NNG_AF_INET6) {
		inet_ntop(AF_INET6, sa->s_in6.sa_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(sa->s_in6.sa_port));
	}
}

/* A pipe of the tls+tcp:// listener: its certificate's verdict, address and name. */
static void peer_tls(nng_pipe p, struct api_peer *peer)
{
	nng_sockaddr sa;
	bool verified;
	char *cn = NULL;

	if (nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &verified))
		return; /* tcp:// */
	peer->tls = true;
	peer->tls_verified = verified;
	if (!nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa))
		api_sockaddr_str(&sa, peer->addr, sizeof(peer->addr));
#ifdef NNG_OPT_TLS_PEER_CN
	if (!nng_pipe_get_string(p, NNG_OPT_TLS_PEER_CN, &cn)) {
		snprintf(peer->cn, sizeof(peer->cn), "%s", cn);
		nng_strfree(cn);
	}
#else
	(void)cn;
#endif
}

/* Who sent msg: which listener it came through, and its credentials over ipc://. */
static void peer_of(struct api *api, nng_msg *msg, struct api_peer *peer)
{
	nng_pipe p = nng_msg_get_pipe(msg);
	nng_listener l = nng_pipe_listener(p);
	uint64_t uid, gid;
	int ipc_id = atomic_load(&api->ipc_id);

	*peer = (struct api_peer){0};
	peer->local = ipc_id > 0 && nng_listener_id(l) == ipc_id;
	if (peer->local && !nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) &&
	    !nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid) && uid <= UINT32_MAX &&
	    gid <= UINT32_MAX) {
		peer->has_creds = true;
		peer->uid = (uint32_t)uid;
		peer->gid = (uint32_t)gid;
	}
	if (!peer->local)
		peer_tls(p, peer);
}

static void work_recv(struct api_work *w)
{
	w->state = WORK_RECV;
	nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(w->ctx, w->aio);
}

/* Send the reply out (len bytes, freed here) in msg, the request's message. */
static void work_send(struct api_work *w, nng_msg *msg, void *out, size_t len)
{
	/* the request's message carries the reply: REP keeps the routing in the context */
	nng_msg_clear(msg);
	if (nng_msg_append(msg, out, len)) {
		free(out);
		nng_msg_free(msg);
		log_warn("api: out of memory: a request goes unanswered (its client times out)");
		work_recv(w);
		return;
	}
	free(out);
	nng_aio_set_msg(w->aio, msg);
	nng_aio_set_timeout(w->aio, API_SEND_TIMEOUT_MS); /* a client that never reads */
	w->state = WORK_SEND;
	nng_ctx_send(w->ctx, w->aio);
}

/*
 * nng's thread: answer w's request from the snapshots when they do: true when it is done
 * with (answered, or dropped for want of memory), false when it is for the owner.
 */
static bool work_fast(struct api *api, struct api_work *w)
{
	nng_msg *msg = w->msg;
	void *out = NULL;
	size_t len = 0;
	int status = 0, rv;

	if (!api->env.snap)
		return false;
	rv = api_handle_fast(api->env.snap, &w->peer, nng_msg_body(w->msg), nng_msg_len(w->msg),
			     &out, &len, &status);
	if (rv > 0)
		return false;
	atomic_fetch_add_explicit(&api->requests, 1, memory_order_relaxed);
	if (rv < 0) {
		log_warn("api: out of memory: a request goes unanswered (its client times out)");
		nng_msg_free(w->msg);
		w->msg = NULL;
		work_recv(w);
		return true;
	}
	if (status)
		atomic_fetch_add_explicit(&api->refused, 1, memory_order_relaxed);
	/* w is nng's again once the send is under way: its next request may come at once */
	w->msg = NULL;
	work_send(w, msg, out, len);
	return true;
}

/*
 * Queue w (its request in w->msg) for the owner (state WORK_WAIT: woken through the eventfd)
 * or for the reader (WORK_READ); false when stopping: its request is freed.
 */
static bool queue_work(struct api *api, struct api_work *w, enum work_state state)
{
	struct api_work **head = state == WORK_READ ? &api->rhead : &api->head;
	struct api_work **tail = state == WORK_READ ? &api->rtail : &api->tail;
	uint64_t one = 1;

	pthread_mutex_lock(&api->mu);
	if (api->stopping) {
		pthread_mutex_unlock(&api->mu);
		nng_msg_free(w->msg);
		w->msg = NULL;
		return false;
	}
	w->state = state;
	w->next = NULL;
	if (*tail)
		(*tail)->next = w;
	else
		*head = w;
	*tail = w;
	if (state == WORK_READ)
		pthread_cond_signal(&api->rcond);
	pthread_mutex_unlock(&api->mu);
	/* an eventfd write only fails when its counter would overflow: still readable */
	if (state == WORK_WAIT && write(api->efd, &one, sizeof(one)) < 0)
		log_debug("api: eventfd: %s", strerror(errno));
	return true;
}

/* The reader's connection, opened when the database is there: NULL until then. */
static struct store *reader_store(struct api *api)
{
	uint64_t now;

	if (api->rstore)
		return api->rstore;
	now = mono_ns();
	if (now < api->ropen_after_ns || access(api->db_path, R_OK))
		return NULL; /* not yet made by the owner: it answers meanwhile */
	if (store_open_readonly(api->db_path, &api->rstore)) {
		api->rstore = NULL;
		api->ropen_after_ns = now + API_READER_RETRY_NS;
		log_debug("api: the reader cannot open %s: the event loop answers reads",
			  api->db_path);
		return NULL;
	}
	return api->rstore;
}

/* The reader thread: run each queued read call on its own connection and send the reply. */
static void *reader_main(void *arg)
{
	struct api *api = arg;
	struct api_env env = api->env;
	struct api_work *w;
	sigset_t all;

	/* signals are the owner's (signalfd) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "ebpfmon-reader");
	/* below the loop, as the offload worker: a listing never delays a ban */
	if (cpusched_lower_thread(API_READER_NICE))
		log_debug("api: the reader runs at the loop's priority");
	for (;;) {
		pthread_mutex_lock(&api->mu);
		while (!api->rhead && !api->stopping)
			pthread_cond_wait(&api->rcond, &api->mu);
		if (api->stopping) {
			pthread_mutex_unlock(&api->mu);
			break;
		}
		w = api->rhead;
		api->rhead = w->next;
		if (!api->rhead)
			api->rtail = NULL;
		pthread_mutex_unlock(&api->mu);

		env.store = reader_store(api);
		if (!env.store) {
			queue_work(api, w, WORK_WAIT);
			continue;
		}
		nng_msg *msg = w->msg;
		void *out = NULL;
		size_t len = 0;
		int status = 0;
		int rv;

		/* one state of the database for the whole call: a page and its total agree */
		store_read_begin(env.store);
		rv = api_handle(&env, &w->peer, nng_msg_body(msg), nng_msg_len(msg), &out, &len,
				&status);
		store_read_end(env.store);

		if (rv > 0) { /* cannot be for a read call: the owner's then */
			free(out);
			queue_work(api, w, WORK_WAIT);
			continue;
		}
		w->msg = NULL;
		atomic_fetch_add_explicit(&api->requests, 1, memory_order_relaxed);
		if (rv < 0) {
			log_warn("api: out of memory: a request goes unanswered (its client times "
				 "out)");
			nng_msg_free(msg);
			work_recv(w);
			continue;
		}
		if (status)
			atomic_fetch_add_explicit(&api->refused, 1, memory_order_relaxed);
		log_debug("api: read request of %zu bytes from %s uid %u: status %d, reply %zu "
			  "bytes",
			  nng_msg_len(msg), w->peer.local ? "ipc" : "tcp", w->peer.uid, status,
			  len);
		work_send(w, msg, out, len);
	}
	return NULL;
}

/* nng's thread: the aio of w completed. */
static void work_cb(void *arg)
{
	struct api_work *w = arg;
	struct api *api = w->api;
	int rv;

	switch (w->state) {
	case WORK_INIT:
		work_recv(w);
		break;
	case WORK_RECV:
		rv = nng_aio_result(w->aio);
		if (rv) {
			/* closed or stopped: we are shutting down; anything else: go on */
			if (rv != NNG_ECLOSED && rv != NNG_ECANCELED && !stopping(api))
				work_recv(w);
			return;
		}
		w->msg = nng_aio_get_msg(w->aio);
		nng_aio_set_msg(w->aio, NULL);
		peer_of(api, w->msg, &w->peer);
		if (work_fast(api, w))
			break;
		if (api->reader_started &&
		    api_is_store_read(nng_msg_body(w->msg), nng_msg_len(w->msg)))
			queue_work(api, w, WORK_READ);
		else
			queue_work(api, w, WORK_WAIT);
		break;
	case WORK_SEND:
		rv = nng_aio_result(w->aio);
		if (rv) {
			/* the peer went away before its reply: the reply is ours to free */
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
		}
		if (rv == NNG_ECLOSED || stopping(api))
			return;
		work_recv(w);
		break;
	case WORK_READ:
	case WORK_WAIT:
		break; /* the reader or the owner holds it: no aio is pending */
	}
}

/* The owner thread: answer w's request and send the reply, or park it. */
static void work_answer(struct api *api, struct api_work *w)
{
	nng_msg *msg = w->msg;
	void *out = NULL;
	size_t len = 0;
	int status = 0, rv;

	rv = api_handle(&api->env, &w->peer, nng_msg_body(msg), nng_msg_len(msg), &out, &len,
			&status);
	if (rv > 0) { /* waits for the next snapshots: api_resume() */
		w->next = api->parked;
		api->parked = w;
		return;
	}
	w->msg = NULL;
	atomic_fetch_add_explicit(&api->requests, 1, memory_order_relaxed);
	if (rv < 0) {
		log_warn("api: out of memory: a request goes unanswered (its client times out)");
		nng_msg_free(msg);
		work_recv(w);
		return;
	}
	if (status)
		atomic_fetch_add_explicit(&api->refused, 1, memory_order_relaxed);
	log_debug("api: request of %zu bytes from %s uid %u: status %d, reply %zu bytes",
		  nng_msg_len(msg), w->peer.local ? "ipc" : "tcp", w->peer.uid, status, len);
	work_send(w, msg, out, len);
}

void api_resume(struct api *api)
{
	struct api_work *w = api->parked, *next, *fifo = NULL;

	api->parked = NULL;
	for (; w; w = next) { /* parked newest first: answered in the order they came */
		next = w->next;
		w->next = fifo;
		fifo = w;
	}
	for (w = fifo; w; w = next) {
		next = w->next;
		work_answer(api, w);
	}
}

int api_fd(const struct api *api)
{
	return api->efd;
}

void api_dispatch(struct api *api)
{
	struct api_work *w, *next;
	uint64_t n;

	if (read(api->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug("api: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&api->mu);
	w = api->head;
	api->head = api->tail = NULL;
	pthread_mutex_unlock(&api->mu);
	for (; w; w = next) {
		next = w->next;
		work_answer(api, w);
	}
}

/* --- listeners --- */

static int listen_ipc(struct api *api)
{
	int rv = nng_listener_create(&api->ipc, api->sock, api->ipc_url);

	if (rv)
		return rv;
	/* known before the first connection comes in */
	atomic_store(&api->ipc_id, nng_listener_id(api->ipc));
	rv = nng_listener_set_int(api->ipc, NNG_OPT_IPC_PERMISSIONS, 0660);
	if (!rv)
		rv = nng_listener_start(api->ipc, 0);
	if (rv) {
		atomic_store(&api->ipc_id, -1);
		nng_listener_close(api->ipc);
		return rv;
	}
	/* the socket's group: [loader] group, whose members may read (chown needs membership) */
	if (api->sock_gid != (gid_t)-1 && chown(api->ipc_path, (uid_t)-1, api->sock_gid))
		log_warn("api: cannot give %s to group %u: %s; its group is this process's",
			 api->ipc_path, (unsigned int)api->sock_gid, strerror(errno));
	api->ipc_up = true;
	return 0;
}

static bool is_tls(const char *url)
{
	return !strncmp(url, "tls+", 4);
}

/* The whole of a small file (a PEM certificate or key), NUL-terminated; NULL: errno. */
static char *read_pem(const char *path)
{
	char *buf = malloc(API_PEM_MAX + 1);
	size_t n = 0;
	FILE *f;

	if (!buf)
		return NULL;
	f = fopen(path, "re");
	if (f) {
		n = fread(buf, 1, API_PEM_MAX, f);
		fclose(f);
	}
	if (!f || !n) {
		if (f)
			errno = EINVAL;
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * The server side of tls+tcp://: the certificate chain and key, and client certificates
 * required, signed by the client CA. Logs what fails and returns an nng error.
 */
static int tls_setup(struct api *api, nng_listener l)
{
	char *cert = read_pem(api->tls_cert), *key = cert ? read_pem(api->tls_key) : NULL;
	nng_tls_config *tls = NULL;
	const char *what = "memory";
	int rv = NNG_ENOMEM;

	if (!cert || !key) {
		if (!api->tls_said)
			log_error("api: cannot read %s: %s", cert ? api->tls_key : api->tls_cert,
				  strerror(errno));
		api->tls_said = true;
		rv = NNG_ENOENT;
		goto out;
	}
	rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER);
	if (!rv && (what = api->tls_cert, rv = nng_tls_config_own_cert(tls, cert, key, NULL)))
		goto bad;
	if (!rv && (what = api->tls_ca, rv = nng_tls_config_ca_file(tls, api->tls_ca)))
		goto bad;
	what = "the TLS configuration";
	if (!rv)
		rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED);
	if (!rv)
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
bad:
	/* once until it works: the listener is retried every API_CHECK_MS */
	if (rv && !api->tls_said)
		log_error("api: %s for %s: %s%s", what, api->tcp_url, nng_strerror(rv),
			  rv == NNG_ECRYPTO ? " (not a PEM certificate and matching key, or CA?)"
					    : "");
	api->tls_said = rv != 0;
out:
	if (tls)
		nng_tls_config_free(tls); /* the listener holds its own reference */
	free(cert);
	free(key);
	return rv;
}

static int listen_tcp(struct api *api)
{
	int rv = nng_listener_create(&api->tcp, api->sock, api->tcp_url);

	if (!rv && is_tls(api->tcp_url))
		rv = tls_setup(api, api->tcp);
	if (!rv)
		rv = nng_listener_start(api->tcp, 0);
	if (rv) {
		nng_listener_close(api->tcp);
		return rv;
	}
	api->tcp_up = true;
	return 0;
}

/* Start what is not listening yet: 0 when everything listens, else the first nng error. */
static int listen_all(struct api *api, bool say)
{
	int rv = 0, r;

	if (!api->ipc_up) {
		r = listen_ipc(api);
		if (r && say)
			log_error("api: cannot listen on %s: %s%s; retrying every %ds",
				  api->ipc_url, nng_strerror(r),
				  r == NNG_ENOENT || r == NNG_EPERM
					  ? " (does its folder exist, writable by this user?)"
				  : r == NNG_EADDRINUSE ? " (another analyzer serves it?)"
							: "",
				  API_CHECK_MS / 1000);
		else if (!r && say)
			log_info("api: listening on %s (mode 0660)", api->ipc_url);
		rv = r;
	}
	if (api->tcp_url[0] && !api->tcp_up) {
		r = listen_tcp(api);
		if (r && say)
			log_error("api: cannot listen on %s: %s; retrying every %ds", api->tcp_url,
				  nng_strerror(r), API_CHECK_MS / 1000);
		else if (!r && say && is_tls(api->tcp_url))
			log_info("api: listening on %s (client certificates signed by %s required; "
				 "BanIP and UnbanIP for %s)",
				 api->tcp_url, api->tls_ca,
				 api->tls_admin_names[0] ? api->tls_admin_names
							 : "every such client");
		else if (!r && say)
			log_info("api: listening on %s (read-only: BanIP and UnbanIP are refused "
				 "there)",
				 api->tcp_url);
		rv = rv ? rv : r;
	}
	return rv;
}

/* nng's thread: the REP socket took a connection in (its listener works). */
static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct api *api = arg;

	(void)ev;
	pthread_mutex_lock(&api->mu);
	/* the ipc:// listener's only: the tcp:// probe's connections say nothing about it */
	if (nng_listener_id(nng_pipe_listener(p)) == api->ipc_id)
		api->pipes++;
	pthread_mutex_unlock(&api->mu);
}

/*
 * nng 1.5's listeners stop accepting for good when a peer leaves during the SP handshake
 * (a bare connect and close does it): whoever may open the socket could take the API down.
 * So every API_CHECK_MS the API dials itself; a dial that did not complete by the next check
 * means the listener is stuck, and it is closed and started afresh.
 */
static void check_ipc(struct api *api)
{
	bool ok;

	if (api->probe_open) {
		/* the probe's connection, or any other, reached the socket since it dialled */
		pthread_mutex_lock(&api->mu);
		ok = api->pipes != api->pipes_probe;
		pthread_mutex_unlock(&api->mu);
		nng_close(api->probe); /* established, or the listener is replaced below */
		api->probe_open = false;
		if (!ok && api->ipc_up) {
			log_warn("api: %s stopped accepting connections (a client left during the "
				 "handshake, which stops nng 1.5 listeners): listening afresh",
				 api->ipc_url);
			atomic_store(&api->ipc_id, -1);
			nng_listener_close(api->ipc);
			api->ipc_up = false;
		}
	}
	if (!api->ipc_up && !listen_ipc(api))
		log_info("api: listening on %s now", api->ipc_url);
	if (!api->ipc_up || nng_req0_open(&api->probe))
		return;
	api->probe_open = true;
	pthread_mutex_lock(&api->mu);
	api->pipes_probe = api->pipes;
	pthread_mutex_unlock(&api->mu);
	if (nng_dial(api->probe, api->ipc_url, NULL, NNG_FLAG_NONBLOCK)) {
		nng_close(api->probe);
		api->probe_open = false;
	}
}

/*
 * The same check for the tcp:// or tls+tcp:// listener, which anyone on the network can
 * reach. A TLS probe has no client certificate, so it cannot complete a connection; it
 * dials a plain stream and waits for the listener to answer: a tcp:// listener sends its SP
 * header once it took the connection in (the probe sends a REQ header back and leaves as an
 * established peer does), a tls+tcp:// one answers the ClientHello (and then refuses the
 * probe for want of a certificate). No answer within API_CHECK_MS / 2: the listener is
 * stuck, and is replaced at the next check. A refused handshake does not stop nng 1.5
 * listeners; a connection that leaves during it might.
 */
struct api_tcp_probe {
	nng_stream_dialer *dialer;
	nng_aio *aio;
	nng_stream *conn;
	bool tls, sent, answered;
	uint8_t hdr[8];
};

static void tcp_probe_cb(void *arg)
{
	struct api_tcp_probe *pr = arg;
	int rv = nng_aio_result(pr->aio);
	nng_iov iov;

	if (!pr->conn && !rv) {
		pr->conn = nng_aio_get_output(pr->aio, 0);
		/* the SP header of a REQ peer: 0 S P 0, protocol 0x0030, 0 0 */
		memcpy(pr->hdr, "\0SP\0\0\x30\0\0", 8);
		iov = (nng_iov){.iov_buf = pr->hdr, .iov_len = 8};
		nng_aio_set_iov(pr->aio, 1, &iov);
		if (pr->tls) /* its ClientHello goes out with the first read */
			nng_stream_recv(pr->conn, pr->aio);
		else
			nng_stream_send(pr->conn, pr->aio);
		return;
	}
	if (pr->conn && !pr->tls && !pr->sent && !rv) {
		pr->sent = true;
		iov = (nng_iov){.iov_buf = pr->hdr, .iov_len = 1};
		nng_aio_set_iov(pr->aio, 1, &iov);
		nng_stream_recv(pr->conn, pr->aio);
		return;
	}
	/* tcp://: a byte of its header; tls+tcp://: any answer, even a refused handshake */
	pr->answered =
		pr->conn &&
		(pr->tls ? rv != NNG_ETIMEDOUT && rv != NNG_ECANCELED && rv != NNG_ECLOSED : !rv);
	if (!pr->conn && pr->tls)
		pr->answered = rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH || rv == NNG_ECONNSHUT ||
			       rv == NNG_ECONNRESET;
}

static void tcp_probe_free(struct api_tcp_probe *pr)
{
	if (!pr)
		return;
	if (pr->aio)
		nng_aio_stop(pr->aio);
	if (pr->conn)
		nng_stream_free(pr->conn);
	nng_stream_dialer_free(pr->dialer);
	nng_aio_free(pr->aio);
	free(pr);
}

/* A probe that dials url, or NULL (then the listener goes unchecked; logged). */
static struct api_tcp_probe *tcp_probe_new(const char *listen_url)
{
	struct api_tcp_probe *pr = calloc(1, sizeof(*pr));
	char url[CONFIG_PATH_MAX + 16];
	const char *host = strstr(listen_url, "://"), *colon = strrchr(listen_url, ':');
	nng_tls_config *tls = NULL;
	size_t hlen;
	int rv = NNG_ENOMEM;

	if (!pr || !host || !colon)
		goto fail;
	host += 3;
	hlen = (size_t)(colon - host);
	pr->tls = is_tls(listen_url);
	/* a listener on every address is dialled on loopback */
	if (!hlen || (hlen == 7 && !strncmp(host, "0.0.0.0", 7)) || (hlen == 1 && *host == '*'))
		snprintf(url, sizeof(url), "%.*s127.0.0.1%s", (int)(host - listen_url), listen_url,
			 colon);
	else if (hlen == 4 && !strncmp(host, "[::]", 4))
		snprintf(url, sizeof(url), "%.*s[::1]%s", (int)(host - listen_url), listen_url,
			 colon);
	else
		snprintf(url, sizeof(url), "%s", listen_url);
	rv = nng_aio_alloc(&pr->aio, tcp_probe_cb, pr);
	if (!rv)
		rv = nng_stream_dialer_alloc(&pr->dialer, url);
	if (!rv && pr->tls) {
		rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT);
		if (!rv)
			rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE);
		if (!rv)
			rv = nng_stream_dialer_set_ptr(pr->dialer, NNG_OPT_TLS_CONFIG, tls);
		if (tls)
			nng_tls_config_free(tls);
	}
	if (!rv)
		return pr;
fail:
	log_warn("api: cannot make the probe that checks %s: %s; it goes unchecked", listen_url,
		 nng_strerror(rv));
	tcp_probe_free(pr);
	return NULL;
}

static void check_tcp(struct api *api)
{
	struct api_tcp_probe *pr = api->tcp_probe;

	if (!pr)
		return;
	/* a probe still waiting is cancelled: no answer (a stopped aio could not be reused) */
	nng_aio_cancel(pr->aio);
	nng_aio_wait(pr->aio);
	if (pr->conn) {
		nng_stream_free(pr->conn);
		pr->conn = NULL;
	}
	if (api->tcp_probed && !pr->answered && api->tcp_up) {
		log_warn("api: %s stopped accepting connections (a client left during the "
			 "handshake, which stops nng 1.5 listeners): listening afresh",
			 api->tcp_url);
		nng_listener_close(api->tcp);
		api->tcp_up = false;
	}
	api->tcp_probed = false;
	if (!api->tcp_up)
		return;
	pr->sent = pr->answered = false;
	api->tcp_probed = true;
	nng_aio_set_timeout(pr->aio, API_CHECK_MS / 2);
	nng_stream_dialer_dial(pr->dialer, pr->aio);
}

/* nng's thread, every API_CHECK_MS: check the listeners, retry what failed to start. */
static void retry_cb(void *arg)
{
	struct api *api = arg;
	int rv = nng_aio_result(api->retry);

	/* the sleep ended (0, or NNG_ETIMEDOUT), unless it was stopped */
	if ((rv && rv != NNG_ETIMEDOUT) || stopping(api))
		return;
	check_ipc(api);
	check_tcp(api);
	if (api->tcp_url[0] && !api->tcp_up && !listen_tcp(api))
		log_info("api: listening on %s now", api->tcp_url);
	nng_sleep_aio(API_CHECK_MS, api->retry);
}

int api_create(struct api **out, const struct config *cfg, const struct api_env *env)
{
	struct api *api = calloc(1, sizeof(*api));
	const struct group *gr;
	int rv, err;

	if (!api)
		return -ENOMEM;
	api->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (api->efd < 0) {
		err = -errno;
		log_error("api: cannot make an eventfd: %s", strerror(errno));
		free(api);
		return err;
	}
	pthread_mutex_init(&api->mu, NULL);
	pthread_cond_init(&api->rcond, NULL);
	atomic_init(&api->ipc_id, -1);
	api->env = *env;
	api->env.store = NULL; /* the owner's calls read the policy's connection */
	snprintf(api->db_path, sizeof(api->db_path), "%s", cfg->sqlite_path);
	snprintf(api->ipc_path, sizeof(api->ipc_path), "%s", cfg->uds_socket_path);
	snprintf(api->ipc_url, sizeof(api->ipc_url), "ipc://%s", cfg->uds_socket_path);
	snprintf(api->tcp_url, sizeof(api->tcp_url), "%s", cfg->listen_address);
	snprintf(api->tls_cert, sizeof(api->tls_cert), "%s", cfg->tls_cert_file);
	snprintf(api->tls_key, sizeof(api->tls_key), "%s", cfg->tls_key_file);
	snprintf(api->tls_ca, sizeof(api->tls_ca), "%s", cfg->tls_client_ca_file);
	snprintf(api->tls_admin_names, sizeof(api->tls_admin_names), "%s", cfg->tls_admin_names);
	gr = getgrnam(cfg->group);
	api->sock_gid = gr && gr->gr_gid != getegid() ? gr->gr_gid : (gid_t)-1;

	rv = nng_rep0_open(&api->sock);
	if (rv)
		goto fail;
	api->sock_open = true;
	/* larger bodies close the connection in nng; up to it they get STATUS_TOO_LARGE */
	rv = nng_socket_set_size(api->sock, NNG_OPT_RECVMAXSZ, API_TRANSPORT_MAX);
	if (rv)
		goto fail;
	for (int i = 0; i < API_WORKS; i++) {
		struct api_work *w = &api->works[i];

		w->api = api;
		rv = nng_aio_alloc(&w->aio, work_cb, w);
		if (!rv)
			rv = nng_ctx_open(&w->ctx, api->sock);
		if (rv)
			goto fail;
	}
	rv = nng_pipe_notify(api->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, api);
	if (!rv)
		rv = nng_aio_alloc(&api->retry, retry_cb, api);
	if (rv)
		goto fail;
	/* without a reader, the owner answers the reads too */
	if (api->env.policy && api->db_path[0]) {
		err = pthread_create(&api->reader, NULL, reader_main, api);
		if (err)
			log_warn("api: no reader thread (%s): the event loop answers reads",
				 strerror(err));
		api->reader_started = !err;
	}
	for (int i = 0; i < API_WORKS; i++)
		work_cb(&api->works[i]); /* INIT: start receiving */
	listen_all(api, true);
	if (api->tcp_url[0])
		api->tcp_probe = tcp_probe_new(api->tcp_url);
	nng_sleep_aio(API_CHECK_MS, api->retry);
	*out = api;
	return 0;
fail:
	log_error("api: cannot start the nng REP socket: %s", nng_strerror(rv));
	api_destroy(api);
	return rv == NNG_ENOMEM ? -ENOMEM : -EIO;
}

void api_destroy(struct api *api)
{
	struct api_work *w;

	if (!api)
		return;
	pthread_mutex_lock(&api->mu);
	api->stopping = true;
	pthread_cond_broadcast(&api->rcond);
	pthread_mutex_unlock(&api->mu);
	/* the reader finishes the call it runs (its reply is sent) and takes no other */
	if (api->reader_started)
		pthread_join(api->reader, NULL);
	/* no callback runs once these return; one that ran saw `stopping` and stayed idle */
	if (api->retry)
		nng_aio_stop(api->retry);
	if (api->probe_open)
		nng_close(api->probe);
	tcp_probe_free(api->tcp_probe);
	for (int i = 0; i < API_WORKS; i++)
		if (api->works[i].aio)
			nng_aio_stop(api->works[i].aio);
	/* requests still waiting for the owner are dropped: their clients time out */
	for (w = api->head; w; w = w->next) {
		nng_msg_free(w->msg);
		w->msg = NULL;
	}
	for (w = api->parked; w; w = w->next) {
		nng_msg_free(w->msg);
		w->msg = NULL;
	}
	for (w = api->rhead; w; w = w->next) {
		nng_msg_free(w->msg);
		w->msg = NULL;
	}
	api->head = api->tail = api->parked = api->rhead = api->rtail = NULL;
	store_close(api->rstore);
	if (api->sock_open)
		nng_close(api->sock); /* closes the contexts and listeners */
	for (int i = 0; i < API_WORKS; i++)
		nng_aio_free(api->works[i].aio);
	nng_aio_free(api->retry);
	if (api->ipc_up)
		log_debug("api: stopped serving %s (%llu requests, %llu refused)", api->ipc_url,
			  (unsigned long long)atomic_load(&api->requests),
			  (unsigned long long)atomic_load(&api->refused));
	pthread_cond_destroy(&api->rcond);
	pthread_mutex_destroy(&api->mu);
	close(api->efd);
	free(api);
}
