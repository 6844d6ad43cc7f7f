// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * api_example: the ebpfmon API with nng and protobuf-c alone, without ebpfmonctl
 * (docs/api.md, "A client in C"). One request, one reply, both printed.
 *
 *   api_example [-s URL] status
 *   api_example [-s URL] ban ADDRESS SECONDS [REASON]
 *   api_example [-s URL] unban ADDRESS
 *
 * URL defaults to ipc:///run/ebpfmon/api.sock. Built from the Debian packages libnng-dev,
 * libprotobuf-c-dev and protobuf-c-compiler:
 *
 *   protoc-c --proto_path=proto --c_out=. ebpfmon.proto
 *   cc -I. -o api_example docs/examples/api_example.c ebpfmon.pb-c.c -lnng -lprotobuf-c
 *
 * Exit status: 0 the reply's status is STATUS_OK, 1 another status, 2 usage, 3 no reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebpfmon.pb-c.h"

static int usage(FILE *to, int rc)
{
	fputs("usage: api_example [-s URL] status\n"
	      "       api_example [-s URL] ban ADDRESS SECONDS [REASON]\n"
	      "       api_example [-s URL] unban ADDRESS\n"
	      "URL: the analyzer's API (default ipc:///run/ebpfmon/api.sock)\n",
	      to);
	return rc;
}

/* The name of a Status value ("STATUS_OK"), from the descriptor protoc-c generated. */
static const char *status_name(int status)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&ebpfmon__v1__status__descriptor, status);

	return v ? v->name : "?";
}

/*
 * Send the packed Request rq to url and return the unpacked Response (free it with
 * ebpfmon__v1__response__free_unpacked), or NULL with the reason on stderr.
 */
static Ebpfmon__V1__Response *call(const char *url, const Ebpfmon__V1__Request *rq)
{
	Ebpfmon__V1__Response *resp = NULL;
	size_t len = ebpfmon__v1__request__get_packed_size(rq), rlen = 0;
	uint8_t *body = malloc(len ? len : 1);
	void *reply = NULL;
	nng_socket s = NNG_SOCKET_INITIALIZER;
	int rv;

	if (!body) {
		fprintf(stderr, "api_example: %s\n", strerror(ENOMEM));
		return NULL;
	}
	ebpfmon__v1__request__pack(rq, body);
	rv = nng_req0_open(&s);
	/* a listing can exceed nng's default 1 MiB receive limit: no limit */
	if (rv == 0)
		rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	if (rv == 0)
		rv = nng_dial(s, url, NULL, 0);
	if (rv == 0)
		rv = nng_send(s, body, len, 0);
	if (rv == 0)
		rv = nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC);
	if (rv) {
		fprintf(stderr, "api_example: %s: %s\n", url, nng_strerror(rv));
	} else {
		printf("> %zu bytes sent, %zu bytes received\n", len, rlen);
		resp = ebpfmon__v1__response__unpack(NULL, rlen, reply);
		if (!resp)
			fprintf(stderr, "api_example: the reply is not an ebpfmon.v1.Response\n");
		nng_free(reply, rlen);
	}
	nng_close(s);
	free(body);
	return resp;
}

static void print_ban(const Ebpfmon__V1__Ban *b)
{
	printf("ban: id %" PRIu64 ", address %s, reason %s, rule '%s', source %s, banned %" PRId64
	       ", expires %" PRId64 "\n",
	       b->id, b->address, b->reason, b->rule, b->source, b->banned_unix, b->expires_unix);
}

static void print_status(const Ebpfmon__V1__GetMonitorStatusResponse *m)
{
	printf("analyzer %s, up %" PRIu64 " s, loader running: %s, dry run: %s\n", m->version,
	       m->uptime_seconds, m->loader_running ? "yes" : "no", m->dry_run ? "yes" : "no");
	for (size_t i = 0; i < m->n_interfaces; i++)
		printf("interface %s (ifindex %u): XDP %s\n", m->interfaces[i]->name,
		       m->interfaces[i]->ifindex, m->interfaces[i]->xdp_mode);
	printf("active bans %" PRIu64 ", tracked addresses %" PRIu64 ", database %s\n",
	       m->active_bans, m->tracked_addresses, m->database_ok ? "ok" : m->database_error);
	if (m->counters)
		printf("packets seen %" PRIu64 ", passed %" PRIu64 ", ban drops %" PRIu64 "\n",
		       m->counters->rx_seen, m->counters->rx_passed,
		       m->counters->rx_drop_ban + m->counters->rx_drop_net);
}

#define MAX_SECONDS (10LL * 366 * 86400) /* BanIP takes at most ten years */

/* SECONDS of `ban`: a whole number from 1 to MAX_SECONDS, or -1 (said on stderr). */
static long long parse_seconds(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MAX_SECONDS) {
		fprintf(stderr, "api_example: SECONDS '%s': not a whole number from 1 to %lld\n", s,
			MAX_SECONDS);
		return -1;
	}
	return v;
}

int main(int argc, char **argv)
{
	Ebpfmon__V1__Request rq = EBPFMON__V1__REQUEST__INIT;
	Ebpfmon__V1__GetMonitorStatusRequest st = EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	Ebpfmon__V1__BanIPRequest ban = EBPFMON__V1__BAN_IPREQUEST__INIT;
	Ebpfmon__V1__UnbanIPRequest unban = EBPFMON__V1__UNBAN_IPREQUEST__INIT;
	Ebpfmon__V1__Response *resp;
	const char *url = "ipc:///run/ebpfmon/api.sock";
	long long secs;
	int a = 1, rc;

	if (argc == 2 && !strcmp(argv[1], "--help"))
		return usage(stdout, 0);
	if (argc > 2 && !strcmp(argv[1], "-s")) {
		url = argv[2];
		a = 3;
	}
	if (a >= argc)
		return usage(stderr, 2);

	rq.version = EBPFMON__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1; /* must be 1 */
	if (!strcmp(argv[a], "status") && argc == a + 1) {
		rq.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
		rq.get_monitor_status = &st;
		printf("> GetMonitorStatus\n");
	} else if (!strcmp(argv[a], "ban") && (argc == a + 3 || argc == a + 4)) {
		secs = parse_seconds(argv[a + 2]);
		if (secs < 0)
			return 2;
		ban.address = argv[a + 1];
		ban.duration_seconds = (uint64_t)secs;
		ban.reason = argc == a + 4 ? argv[a + 3] : "";
		rq.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
		rq.ban_ip = &ban;
		printf("> BanIP address '%s' duration_seconds %" PRIu64 " reason '%s'\n",
		       ban.address, ban.duration_seconds, ban.reason);
	} else if (!strcmp(argv[a], "unban") && argc == a + 2) {
		unban.address = argv[a + 1];
		rq.call_case = EBPFMON__V1__REQUEST__CALL_UNBAN_IP;
		rq.unban_ip = &unban;
		printf("> UnbanIP address '%s'\n", unban.address);
	} else {
		return usage(stderr, 2);
	}

	resp = call(url, &rq);
	if (!resp)
		return 3;
	/* an error is a status and a message naming what was wrong, never a dropped connection */
	printf("< %s (%d)%s%s\n", status_name(resp->status), resp->status,
	       resp->message[0] ? ": " : "", resp->message);
	switch (resp->result_case) {
	case EBPFMON__V1__RESPONSE__RESULT_GET_MONITOR_STATUS:
		print_status(resp->get_monitor_status);
		break;
	case EBPFMON__V1__RESPONSE__RESULT_BAN_IP:
		if (resp->ban_ip->ban)
			print_ban(resp->ban_ip->ban);
		break;
	case EBPFMON__V1__RESPONSE__RESULT_UNBAN_IP:
		printf("bans ended: %u\n", resp->unban_ip->ended);
		break;
	default: /* no result: only a STATUS_OK response carries one */
		break;
	}
	rc = resp->status == EBPFMON__V1__STATUS__STATUS_OK ? 0 : 1;
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	return rc;
}
