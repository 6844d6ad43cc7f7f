// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * One REQ/REP round trip with the API. Every address is dialled once before the request is
 * sent, so that a missing socket, a refused connection, a permission problem or a refused TLS
 * certificate is reported at once rather than retried in the background until the timeout.
 * A local socket (ipc://, abstract://) is dialled synchronously; a TCP connect has no bound
 * of its own (an unreachable host takes minutes), so tcp:// and tls+tcp:// are dialled on a
 * helper thread that the timeout bounds. The send and the reply share what is left of it.
 *
 * There is no bare "is anyone there" connect before the real one: nng 1.5.2 listeners stop
 * accepting after a peer disconnects during the SP handshake (nng issue #1518), so such a
 * probe would take the API down for every later client.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "client.h"

#define HINT_RUNNING "Is ebpfmon-analyzer running (systemctl status ebpfmon-analyzer)?"
#define HINT_PATH    "Is the socket path right (-s PATH; the analyzer's [api] uds_socket_path)?"
#define HINT_GROUP                                                                                 \
	"The socket is for root and group ebpfmon: is this user in group ebpfmon (id -nG; after "  \
	"usermod -aG ebpfmon USER, log in again)?"
#define HINT_STUCK "The analyzer may be busy or stuck (journalctl -u ebpfmon-analyzer)"
#define HINT_PEER                                                                                  \
	"Is this the analyzer's API socket, and are ebpfmonctl and ebpfmon-analyzer from the "     \
	"same release?"

#define HINT_TLS                                                                                   \
	"Does the analyzer's tls_client_ca_file sign this client's --cert, and does --ca hold "    \
	"the CA that signed the analyzer's tls_cert_file, for the name %s (--server-name)?"

static struct ctl_tls ctl_tls;

void ctl_set_tls(const struct ctl_tls *tls)
{
	ctl_tls = *tls;
}

static int __attribute__((format(printf, 4, 5)))
ctl_fail(int ret, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/* The socket path of an ipc:// URL, or NULL for other transports. */
static const char *ctl_ipc_path(const char *url)
{
	return strncmp(url, "ipc://", 6) ? NULL : url + 6;
}

/*
 * nng reports a missing ipc socket as "connection refused" (NNG_ECONNREFUSED): look at the
 * path to tell the cases apart.
 */
static int ctl_ipc_refused(const char *url, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st)) {
		if (errno == EACCES)
			return ctl_fail(-EACCES, err, errlen,
					"cannot connect to %s: permission denied (a folder of %s)\n"
					"hint: " HINT_GROUP,
					url, path);
		return ctl_fail(-ENOENT, err, errlen,
				"cannot connect to %s: no such socket\nhint: " HINT_RUNNING
				" " HINT_PATH,
				url);
	}
	if (!S_ISSOCK(st.st_mode))
		return ctl_fail(-ENOTSOCK, err, errlen,
				"cannot connect to %s: %s is not a socket\nhint: " HINT_PATH, url,
				path);
	return ctl_fail(
		-ECONNREFUSED, err, errlen,
		"cannot connect to %s: connection refused (the socket exists, nobody listens "
		"on it)\nhint: " HINT_RUNNING " A socket left behind by a stopped analyzer "
		"refuses connections.",
		url);
}

/* A failed connection (nng error rv) as -errno and a message with a hint. */
static int ctl_connect_error(const char *url, int rv, uint32_t timeout_ms, char *err, size_t errlen)
{
	const char *path = ctl_ipc_path(url);

	switch (rv) {
	case NNG_ECONNREFUSED:
	case NNG_ENOENT:
		if (path)
			return ctl_ipc_refused(url, path, err, errlen);
		return ctl_fail(
			-ECONNREFUSED, err, errlen,
			"cannot connect to %s: connection refused\nhint: Is ebpfmon-analyzer "
			"running, with [api] listen_address set to this address?",
			url);
	case NNG_EPERM:
		return ctl_fail(-EACCES, err, errlen,
				"cannot connect to %s: permission denied\nhint: " HINT_GROUP, url);
	case NNG_ETIMEDOUT:
		return ctl_fail(
			-ETIMEDOUT, err, errlen,
			"cannot connect to %s: no connection within %u ms (the host does not "
			"answer: down, or a firewall drops the connection)\nhint: Is "
			"ebpfmon-analyzer running there, with [api] listen_address set to this "
			"address? --timeout MS waits longer",
			url, timeout_ms);
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
		return ctl_fail(-EINVAL, err, errlen,
				"cannot connect to %s: %s\nhint: --addr takes ipc:///PATH, "
				"abstract://NAME or tcp://HOST:PORT",
				url, nng_strerror(rv));
	case NNG_EUNREACHABLE:
		return ctl_fail(-EHOSTUNREACH, err, errlen,
				"cannot connect to %s: %s\nhint: Is the host address right?", url,
				nng_strerror(rv));
	case NNG_ENOMEM:
		return ctl_fail(-ENOMEM, err, errlen, "cannot connect to %s: out of memory", url);
	default:
		return ctl_fail(-EIO, err, errlen, "cannot connect to %s: %s\nhint: " HINT_RUNNING,
				url, nng_strerror(rv));
	}
}

/* Sockets on this host connect (or fail) at once: dial them synchronously. */
static bool ctl_is_local(const char *url)
{
	return !strncmp(url, "ipc://", 6) || !strncmp(url, "abstract://", 11);
}

/* Milliseconds left until deadline, at least 1 (a 0 timeout would mean "do not wait"). */
static nng_duration ctl_left(nng_time deadline)
{
	nng_time now = nng_clock();

	return now < deadline ? (nng_duration)(deadline - now) : 1;
}

/* The host of tcp://HOST:PORT, without the brackets of an IPv6 address. */
static void ctl_url_host(const char *url, char *out, size_t len)
{
	const char *h = strstr(url, "://"), *colon = strrchr(url, ':');
	size_t n;

	out[0] = '\0';
	if (!h || !colon || colon < h + 3)
		return;
	h += 3;
	n = (size_t)(colon - h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	snprintf(out, len, "%.*s", (int)n, h);
}

/* Each file the TLS set-up names can be read: 0, or -ENOENT / -EACCES with a message. */
static int ctl_tls_files(const char *url, char *err, size_t errlen)
{
	const char *files[][2] = {
		{"--cert", ctl_tls.cert}, {"--key", ctl_tls.key}, {"--ca", ctl_tls.ca}};
	FILE *f;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (!files[i][1][0])
			continue;
		f = fopen(files[i][1], "re");
		if (f) {
			fclose(f);
			continue;
		}
		return ctl_fail(errno == EACCES ? -EACCES : -ENOENT, err, errlen,
				"cannot connect to %s: %s %s: %s\nhint: %s names a PEM file this "
				"user can read (or set EBPFMONCTL_%s)",
				url, files[i][0], files[i][1], strerror(errno), files[i][0],
				i == 0	 ? "CERT"
				: i == 1 ? "KEY"
					 : "CA");
	}
	return 0;
}

/* A small PEM file, NUL-terminated (malloc()ed), or NULL. */
static char *ctl_read_pem(const char *path)
{
	enum { PEM_MAX = 256 * 1024 };
	char *buf = malloc(PEM_MAX + 1);
	FILE *f = fopen(path, "re");
	size_t n = 0;

	if (buf && f)
		n = fread(buf, 1, PEM_MAX, f);
	if (f)
		fclose(f);
	if (!n) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* --cert and --key (or both in --cert) as the client's certificate: an nng error. */
static int ctl_own_cert(nng_tls_config *tls)
{
	char *cert = ctl_read_pem(ctl_tls.cert);
	char *key = ctl_read_pem(ctl_tls.key[0] ? ctl_tls.key : ctl_tls.cert);
	int rv = cert && key ? nng_tls_config_own_cert(tls, cert, key, NULL) : NNG_EINVAL;

	free(cert);
	free(key);
	return rv;
}

struct ctl_dial {
	nng_dialer d;
	nng_mtx *mtx;
	nng_cv *cv;
	bool done;
	int rv;
};

static void ctl_dial_thread(void *arg)
{
	struct ctl_dial *cd = arg;
	int rv = nng_dialer_start(cd->d, 0);

	nng_mtx_lock(cd->mtx);
	cd->rv = rv;
	cd->done = true;
	nng_cv_wake(cd->cv);
	nng_mtx_unlock(cd->mtx);
}

/*
 * Start dialer d (a TCP transport) and wait until it connected or failed, or until deadline
 * (nng_clock() ms). Returns 0 or the nng error; NNG_ETIMEDOUT at the deadline, when the dial
 * goes on in the background until the socket is closed (nng_close aborts it).
 */
static int ctl_dial_bounded(nng_dialer d, nng_time deadline)
{
	struct ctl_dial cd = {.d = d};
	nng_thread *thr = NULL;
	int rv;

	rv = nng_mtx_alloc(&cd.mtx);
	if (!rv)
		rv = nng_cv_alloc(&cd.cv, cd.mtx);
	if (!rv)
		rv = nng_thread_create(&thr, ctl_dial_thread, &cd);
	if (rv)
		goto out;
	nng_mtx_lock(cd.mtx);
	while (!cd.done && nng_cv_until(cd.cv, deadline) != NNG_ETIMEDOUT)
		;
	rv = cd.done ? cd.rv : NNG_ETIMEDOUT;
	nng_mtx_unlock(cd.mtx);
	if (rv == NNG_ETIMEDOUT)
		nng_dialer_close(d); /* aborts the connect, so that the thread ends */
	nng_thread_destroy(thr);     /* joins it */
out:
	if (cd.cv)
		nng_cv_free(cd.cv);
	if (cd.mtx)
		nng_mtx_free(cd.mtx);
	return rv;
}

/*
 * tls+tcp://: dial once and wait for the handshake, so that a refused certificate is an
 * error now rather than a retry until the timeout.
 */
static int ctl_dial_tls(nng_socket sock, const char *url, uint32_t timeout_ms, nng_time deadline,
			char *err, size_t errlen)
{
	nng_tls_config *tls = NULL;
	nng_dialer d;
	char name[256];
	const char *what = "";
	int rv, ret;

	ret = ctl_tls_files(url, err, errlen);
	if (ret)
		return ret;
	if (ctl_tls.server_name[0])
		snprintf(name, sizeof(name), "%s", ctl_tls.server_name);
	else
		ctl_url_host(url, name, sizeof(name));
	rv = nng_dialer_create(&d, sock, url);
	if (rv)
		return ctl_connect_error(url, rv, timeout_ms, err, errlen);
	rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT);
	if (!rv)
		rv = nng_tls_config_server_name(tls, name);
	if (!rv && ctl_tls.ca[0])
		rv = (what = ctl_tls.ca, nng_tls_config_ca_file(tls, ctl_tls.ca));
	if (!rv)
		rv = nng_tls_config_auth_mode(tls, ctl_tls.ca[0] ? NNG_TLS_AUTH_MODE_REQUIRED
								 : NNG_TLS_AUTH_MODE_NONE);
	if (!rv && ctl_tls.cert[0]) {
		what = ctl_tls.cert;
		rv = ctl_own_cert(tls);
	}
	if (rv) {
		if (tls)
			nng_tls_config_free(tls);
		nng_dialer_close(d);
		return ctl_fail(-ENOENT, err, errlen,
				"cannot connect to %s: %s: %s\nhint: --cert, --key and --ca name "
				"PEM files (an unencrypted key)",
				url, what, nng_strerror(rv));
	}
	rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
	nng_tls_config_free(tls);
	if (!rv)
		rv = ctl_dial_bounded(d, deadline);
	switch (rv) {
	case 0:
		return 0;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
	case NNG_ECONNSHUT:
	case NNG_ECONNRESET:
	case NNG_ECLOSED:
		return ctl_fail(
			-ECONNABORTED, err, errlen,
			"cannot connect to %s: the TLS handshake failed (%s)%s\nhint: " HINT_TLS,
			url, nng_strerror(rv),
			ctl_tls.cert[0] ? ""
					: "; no client certificate was given (--cert, "
					  "--key): the analyzer requires one",
			name);
	default:
		return ctl_connect_error(url, rv, timeout_ms, err, errlen);
	}
}

static int ctl_open(nng_socket *sock, const char *url, uint32_t timeout_ms, nng_time deadline,
		    char *err, size_t errlen)
{
	nng_dialer d;
	int rv;

	rv = nng_req0_open(sock);
	if (!rv)
		rv = nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (!rv)
		rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, CTL_REPLY_MAX);
	if (rv)
		return ctl_fail(rv == NNG_ENOMEM ? -ENOMEM : -EIO, err, errlen,
				"cannot open an nng REQ socket: %s", nng_strerror(rv));
	if (!strncmp(url, "tls+", 4))
		return ctl_dial_tls(*sock, url, timeout_ms, deadline, err, errlen);
	if (ctl_is_local(url))
		rv = nng_dial(*sock, url, NULL, 0);
	else if (!(rv = nng_dialer_create(&d, *sock, url)))
		rv = ctl_dial_bounded(d, deadline);
	if (rv)
		return ctl_connect_error(url, rv, timeout_ms, err, errlen);
	return 0;
}

/* Decode body into *resp and check that it answers the call that was made. */
static int ctl_decode(const char *url, const void *body, size_t len,
		      Ebpfmon__V1__Request__CallCase call, Ebpfmon__V1__Response **resp, char *err,
		      size_t errlen)
{
	Ebpfmon__V1__Response *r;

	r = ebpfmon__v1__response__unpack(NULL, len, body);
	if (!r)
		return ctl_fail(-EPROTO, err, errlen,
				"%s: the reply (%zu bytes) is not an ebpfmon API response\n"
				"hint: " HINT_PEER,
				url, len);
	/* the result cases carry the numbers of the call cases */
	if (r->status == EBPFMON__V1__STATUS__STATUS_OK && (int)r->result_case != (int)call) {
		int got = (int)r->result_case;

		ebpfmon__v1__response__free_unpacked(r, NULL);
		return ctl_fail(-EPROTO, err, errlen,
				"%s: the reply does not carry the result of the call (field %d, "
				"not %d)\nhint: " HINT_PEER,
				url, got, (int)call);
	}
	*resp = r;
	return 0;
}

int ctl_call(const char *url, uint32_t timeout_ms, const Ebpfmon__V1__Request *req,
	     Ebpfmon__V1__Response **resp, char *err, size_t errlen)
{
	nng_time deadline = nng_clock() + timeout_ms;
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	nng_msg *msg = NULL;
	size_t len;
	int rv, ret;

	*resp = NULL;
	if (errlen)
		err[0] = '\0';
	ret = ctl_open(&sock, url, timeout_ms, deadline, err, errlen);
	if (ret)
		goto out;

	len = ebpfmon__v1__request__get_packed_size(req);
	rv = nng_msg_alloc(&msg, len);
	if (rv) {
		ret = ctl_fail(-ENOMEM, err, errlen, "cannot build the request: %s",
			       nng_strerror(rv));
		goto out;
	}
	ebpfmon__v1__request__pack(req, nng_msg_body(msg));
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, ctl_left(deadline));
	rv = nng_sendmsg(sock, msg, 0);
	if (rv) {
		nng_msg_free(msg);
		msg = NULL;
		if (rv == NNG_ETIMEDOUT && !ctl_is_local(url))
			ret = ctl_connect_error(url, rv, timeout_ms, err, errlen);
		else if (rv == NNG_ETIMEDOUT)
			ret = ctl_fail(-ETIMEDOUT, err, errlen,
				       "%s: connected, but no API took the request within %u ms\n"
				       "hint: " HINT_PEER " " HINT_STUCK,
				       url, timeout_ms);
		else
			ret = ctl_fail(-EIO, err, errlen, "%s: sending the request: %s", url,
				       nng_strerror(rv));
		goto out;
	}
	msg = NULL; /* nng owns it now */

	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, ctl_left(deadline));
	rv = nng_recvmsg(sock, &msg, 0);
	if (rv) {
		msg = NULL;
		if (rv == NNG_ETIMEDOUT)
			ret = ctl_fail(-ETIMEDOUT, err, errlen,
				       "%s: no reply within %u ms\nhint: " HINT_STUCK
				       "; --timeout MS waits longer",
				       url, timeout_ms);
		else
			ret = ctl_fail(-EIO, err, errlen, "%s: receiving the reply: %s", url,
				       nng_strerror(rv));
		goto out;
	}
	ret = ctl_decode(url, nng_msg_body(msg), nng_msg_len(msg), req->call_case, resp, err,
			 errlen);
out:
	if (msg)
		nng_msg_free(msg);
	nng_close(sock);
	return ret;
}
