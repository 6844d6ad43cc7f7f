/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The API's calls: one request body (a protobuf-c ebpfmon.v1.Request) in, one response body
 * (an ebpfmon.v1.Response) out, on the thread that owns the policy and the store. No nng
 * here: api.c carries the bodies; this file decodes, checks, authorizes, runs the call and
 * encodes, so that every decision is a unit test (docs/api.md lists the calls and statuses).
 */
#ifndef EBPFMON_API_HANDLERS_H
#define EBPFMON_API_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "ebpfmon_abi.h"

struct api_snap;
struct policy;
struct sysmon;

#define API_PROTOCOL_VERSION 1
#define API_BODY_MAX	     (64 * 1024) /* bytes of a request body; more: STATUS_TOO_LARGE */
#define API_LIMIT_DEFAULT    100	 /* rows of a listing when the request says 0 */
#define API_LIMIT_MAX	     10000	 /* rows of a listing at most */
#define API_TOP_DEFAULT	     10		 /* addresses of a live top list when it says 0 */
#define API_REASON_MAX	     128	 /* bytes of BanIP's reason text */
#define API_DURATION_MAX     (10ull * 366 * 86400) /* seconds of a BanIP duration: ten years */

/* What the calls read and change; every pointer stays valid while the server runs. */
struct api_env {
	struct policy *policy;	     /* the configuration, the maps and the store (NULL: closed) */
	const struct sysmon *sysmon; /* the latest resource figures (sysmon_last()); may be NULL */
	uint64_t started_ns;	     /* CLOCK_MONOTONIC when the analyzer started */
	uid_t own_uid;		     /* the analyzer's user: may change bans like root */
	/*
	 * What GetMonitorStatus and the live top list answer from (api_snap.h), and what BanIP
	 * and UnbanIP patch; NULL: both are collected per request (a walk of ip_stats each).
	 */
	struct api_snap *snap;
	/*
	 * A connection of this thread's own to the database, opened read-only (store.h), that
	 * the calls which only read the store and the maps read instead of the policy's: then
	 * they may run on a thread other than the policy's. NULL: the policy's connection.
	 */
	struct store *store;
	/*
	 * A BanIP or UnbanIP found the database held by a job of the analyzer's worker
	 * (policy.rows_wait): the call waits for the job's end, answered by api_resume(), and
	 * db_wanted(db_wanted_arg) asks the job to end soon. NULL: nothing to ask.
	 */
	void (*db_wanted)(void *arg);
	void *db_wanted_arg;
};

/* Who sent a request, as the transport tells. */
struct api_peer {
	bool local;	/* over the ipc:// listener (else tcp:// or tls+tcp://) */
	bool has_creds; /* uid and gid were read from the socket (SO_PEERCRED) */
	uint32_t uid, gid;
	bool tls;	   /* over tls+tcp:// */
	bool tls_verified; /* its client certificate was verified against tls_client_ca_file */
	char addr[64];	   /* tls: its address and port, "" unknown */
	char cn[65];	   /* tls: its certificate's subject CN when libnng tells it, else "" */
};

#define API_WHO_MAX 160 /* "uid 1000", "tls CN=ops-1 from 192.0.2.7:40512", ... */

/*
 * Answer one request body of len bytes from peer, on the thread that owns the policy and the
 * store: *out (malloc()ed, the caller frees it) holds *out_len bytes of an encoded Response,
 * *status (may be NULL) its Status. Every failure of the request is a Response with a status
 * and a message; returns 0, or -ENOMEM when no Response could be encoded at all. With
 * env->snap, returns 1 and no Response when the call waits for fresh snapshots: ask again
 * after api_snap_step() published.
 */
int api_handle(struct api_env *env, const struct api_peer *peer, const void *body, size_t len,
	       void **out, size_t *out_len, int *status);

/*
 * The same on any thread, for what needs neither the policy nor the store: a request that is
 * malformed or of another version, GetMonitorStatus and the live top list of GetNetworkStats
 * from fresh snapshots (and their argument errors). Returns 0 with a Response as above,
 * -ENOMEM, or 1 when the call is for api_handle() on the owner's thread.
 */
int api_handle_fast(struct api_snap *snap, const struct api_peer *peer, const void *body,
		    size_t len, void **out, size_t *out_len, int *status);

/*
 * Whether a request body is a call that reads only the store and the maps, never the policy
 * or the snapshots (GetMaliciousIPs, GetSystemAnomalies, GetNetworkStats of one address or of
 * the history), so that api_handle() may run it on any thread with env->store set. A body
 * that does not decode is not one (api_handle_fast() answers it).
 */
bool api_is_store_read(const void *body, size_t len);

/*
 * Whether peer may change bans (BanIP, UnbanIP): only a local peer with known credentials
 * whose uid is 0 or own_uid, or whose gid or one of groups[0..ngroups) (the supplementary
 * groups of the peer's user) is *admin_gid; admin_gid NULL: the admin group does not exist.
 */
bool api_may_change(const struct api_peer *peer, uid_t own_uid, const gid_t *admin_gid,
		    const gid_t *groups, size_t ngroups);

/*
 * Whether a tls+tcp:// peer may change bans: its certificate was verified and admin_names
 * (comma-separated CNs, [api] tls_admin_names) is empty or holds its CN.
 */
bool api_tls_may_change(const struct api_peer *peer, const char *admin_names);

/*
 * An address or CIDR network as the API takes it ("198.51.100.7", "2001:db8::/32"): 0 and
 * *out, or -EINVAL with a message in err ("host bits set in 198.51.100.7/24: did you mean
 * 198.51.100.0/24?").
 */
int api_parse_net(const char *s, struct addr_cidr *out, char *err, size_t errlen);

/* A ban reason by name ("conn_limit", "url_rule", "manual", "escalated"): 0 or -EINVAL. */
int api_parse_reason(const char *s, enum ebpfmon_ban_reason *out);

#endif
