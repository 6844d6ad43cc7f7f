/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The API server of ebpfmon-analyzer: nng REP on ipc:// ([api] uds_socket_path, mode 0660)
 * and, when configured, a read-only tcp:// listener or a tls+tcp:// one with required client
 * certificates ([api] listen_address, tls_*). Requests are received on nng's threads by
 * API_WORKS contexts. What the loop's published snapshots answer (api_snap.h:
 * GetMonitorStatus, the live top list) and malformed requests are answered there and then;
 * the calls that only read the database and the maps (listings, history, one address) go to
 * a reader thread with a read-only connection of its own; every other request is handed to
 * the owner thread (the analyzer's event loop) through a queue and an eventfd, which runs the
 * call (api_handlers.h) and sends the reply. nng's threads never touch the store, the maps'
 * ban state or the policy; the reader never touches the policy or writes. docs/api.md describes the
 * protocol.
 */
#ifndef EBPFMON_API_H
#define EBPFMON_API_H

#include "api_handlers.h"

struct config;

#define API_WORKS	    8		  /* requests in progress at once (nng contexts) */
#define API_TRANSPORT_MAX   (1024 * 1024) /* NNG_OPT_RECVMAXSZ: larger bodies close the pipe */
#define API_CHECK_MS	    2000	  /* listeners checked and retried this often */
#define API_SEND_TIMEOUT_MS 5000	  /* a reply not taken by then is dropped */
#define API_PEM_MAX	    (256 * 1024)  /* bytes of tls_cert_file or tls_key_file at most */

struct api;

/*
 * Open the socket, start API_WORKS contexts and the listeners, on env (copied; its pointers
 * must outlive the server). A listener that cannot start (folder missing, address in use) is
 * logged and retried every API_CHECK_MS: the analyzer runs on without it meanwhile; a
 * listener that stops accepting (nng 1.5) is replaced within two checks. Returns
 * 0 and *out, or -errno when the socket or the eventfd cannot be made (logged).
 */
int api_create(struct api **out, const struct config *cfg, const struct api_env *env);

/* The eventfd the owner's loop watches for reading: requests are waiting. */
int api_fd(const struct api *api);

/*
 * On the owner thread, when api_fd() is readable: run every waiting request and send its
 * reply. Never blocks on the network.
 */
void api_dispatch(struct api *api);

/*
 * On the owner thread, after api_snap_step() published or a job of the worker that held the
 * database ended: answer the requests that waited (parked), in the order they came; those
 * that still have to wait are parked again.
 */
void api_resume(struct api *api);

/*
 * Stop: no callback runs after it returns (nng_aio_stop on every aio), waiting requests are
 * dropped unanswered, the listeners close (the socket file is removed). NULL is fine.
 */
void api_destroy(struct api *api);

#endif
