/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* One round trip to the ebpfmon API: connect, send a Request, receive and decode a Response. */
#ifndef EBPFMON_CTL_CLIENT_H
#define EBPFMON_CTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ebpfmon.pb-c.h"

/* The protocol version ebpfmonctl speaks (Request.version). */
#define CTL_PROTOCOL_VERSION EBPFMON__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1

/* Replies larger than this are refused (a GetMaliciousIPs of 10000 bans is a few MB). */
#define CTL_REPLY_MAX (64u << 20)

/* What a tls+tcp:// connection presents and checks; "" for none. */
struct ctl_tls {
	char cert[256];	       /* --cert: the client's certificate, PEM */
	char key[256];	       /* --key: its private key, PEM, unencrypted */
	char ca[256];	       /* --ca: the CA(s) that sign the server's certificate */
	char server_name[256]; /* --server-name; "": the URL's host */
};

/* The certificate, key and CA that ctl_call() uses for tls+tcp:// URLs (copied). */
void ctl_set_tls(const struct ctl_tls *tls);

/*
 * Send req to the API at url (an nng URL) over a REQ socket and wait for the reply: the
 * connection, the send and the reply together within timeout_ms. REQ's resend timer is off,
 * so a slow ban or unban is not sent a second time while the first is being served.
 * On 0, *resp holds the decoded Response, whatever its status; free it with
 * ebpfmon__v1__response__free_unpacked(). A reply with STATUS_OK but without the result of
 * the call that was made is -EPROTO.
 *
 * On failure, err holds a message naming the URL and what went wrong, followed by a line
 * starting "hint: " with what to check; the return value says what it was:
 *   -ENOENT        no socket at the path
 *   -EACCES        this user may not connect (the socket or its folder)
 *   -ECONNREFUSED  nobody listens on the socket
 *   -ENOTSOCK      the path is not a socket
 *   -ETIMEDOUT     no reply in time; for tcp://, also no connection (refused or not)
 *   -EPROTO        the reply is not an ebpfmon Response (or not the one asked for)
 *   -EINVAL        the URL is not one nng can dial
 *   -ECONNABORTED  tls+tcp://: the TLS handshake failed (a certificate refused either way)
 *   -ENOMEM, -EIO  anything else
 */
int ctl_call(const char *url, uint32_t timeout_ms, const Ebpfmon__V1__Request *req,
	     Ebpfmon__V1__Response **resp, char *err, size_t errlen);

#endif
