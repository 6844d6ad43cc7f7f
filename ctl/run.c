// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* From parsed arguments to one API call, its output and the exit status. */
#include <errno.h>
#include <string.h>

#include "client.h"
#include "render.h"
#include "run.h"
#include "table.h"

#ifndef EBPFMON_VERSION
#define EBPFMON_VERSION "unknown"
#endif

/* The request messages of one call; only the one the command needs is used. */
struct ctl_request {
	Ebpfmon__V1__Request req;
	Ebpfmon__V1__GetMonitorStatusRequest status;
	Ebpfmon__V1__GetMaliciousIPsRequest bans;
	Ebpfmon__V1__GetNetworkStatsRequest stats;
	Ebpfmon__V1__GetSystemAnomaliesRequest anomalies;
	Ebpfmon__V1__BanIPRequest ban;
	Ebpfmon__V1__UnbanIPRequest unban;
};

static void ctl_build(struct ctl_request *r, const struct ctl_args *a)
{
	static const Ebpfmon__V1__Request req = EBPFMON__V1__REQUEST__INIT;
	static const Ebpfmon__V1__GetMonitorStatusRequest status =
		EBPFMON__V1__GET_MONITOR_STATUS_REQUEST__INIT;
	static const Ebpfmon__V1__GetMaliciousIPsRequest bans =
		EBPFMON__V1__GET_MALICIOUS_IPS_REQUEST__INIT;
	static const Ebpfmon__V1__GetNetworkStatsRequest stats =
		EBPFMON__V1__GET_NETWORK_STATS_REQUEST__INIT;
	static const Ebpfmon__V1__GetSystemAnomaliesRequest anomalies =
		EBPFMON__V1__GET_SYSTEM_ANOMALIES_REQUEST__INIT;
	static const Ebpfmon__V1__BanIPRequest ban = EBPFMON__V1__BAN_IPREQUEST__INIT;
	static const Ebpfmon__V1__UnbanIPRequest unban = EBPFMON__V1__UNBAN_IPREQUEST__INIT;

	r->req = req;
	r->status = status;
	r->bans = bans;
	r->stats = stats;
	r->anomalies = anomalies;
	r->ban = ban;
	r->unban = unban;
	r->req.version = CTL_PROTOCOL_VERSION;

	switch (a->cmd) {
	case CTL_CMD_NONE:
	case CTL_CMD_STATUS:
	case CTL_CMD_VERSION:
	case CTL_CMD_TOP: /* top_run.c makes its own calls */
		r->req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MONITOR_STATUS;
		r->req.get_monitor_status = &r->status;
		break;
	case CTL_CMD_BANS:
		r->bans.history = a->history;
		r->bans.network = (char *)a->address;
		r->bans.reason = (char *)a->reason;
		r->bans.since_unix = a->since_unix;
		r->bans.limit = a->limit;
		r->bans.offset = a->offset;
		r->req.call_case = EBPFMON__V1__REQUEST__CALL_GET_MALICIOUS_IPS;
		r->req.get_malicious_ips = &r->bans;
		break;
	case CTL_CMD_STATS:
	case CTL_CMD_EXPLAIN:
		r->stats.top = a->top;
		r->stats.order =
			a->order_bytes
				? EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_BYTES
				: EBPFMON__V1__GET_NETWORK_STATS_REQUEST__ORDER__ORDER_PACKETS;
		r->stats.address = (char *)a->address;
		r->stats.history = a->history;
		r->stats.since_unix = a->since_unix;
		r->stats.limit = a->limit;
		r->req.call_case = EBPFMON__V1__REQUEST__CALL_GET_NETWORK_STATS;
		r->req.get_network_stats = &r->stats;
		break;
	case CTL_CMD_ANOMALIES:
		r->anomalies.kind = (char *)a->kind;
		r->anomalies.open_only = a->open_only;
		r->anomalies.since_unix = a->since_unix;
		r->anomalies.limit = a->limit;
		r->anomalies.offset = a->offset;
		r->req.call_case = EBPFMON__V1__REQUEST__CALL_GET_SYSTEM_ANOMALIES;
		r->req.get_system_anomalies = &r->anomalies;
		break;
	case CTL_CMD_BAN:
		r->ban.address = (char *)a->address;
		r->ban.duration_seconds = a->duration_s;
		r->ban.permanent = a->permanent;
		r->ban.reason = (char *)a->reason;
		r->req.call_case = EBPFMON__V1__REQUEST__CALL_BAN_IP;
		r->req.ban_ip = &r->ban;
		break;
	case CTL_CMD_UNBAN:
		r->unban.address = (char *)a->address;
		r->req.call_case = EBPFMON__V1__REQUEST__CALL_UNBAN_IP;
		r->req.unban_ip = &r->unban;
		break;
	}
}

void ctl_print_refused(FILE *err, const Ebpfmon__V1__Response *resp)
{
	const char *name = ctl_status_name(resp->status);
	char msg[1024], num[32];

	if (!name) {
		snprintf(num, sizeof(num), "STATUS_%d", (int)resp->status);
		name = num;
	}
	ctl_escape(resp->message && *resp->message ? resp->message : "(no message)", msg,
		   sizeof(msg));
	fprintf(err, "ebpfmonctl: the analyzer refused: %s: %s\n", name, msg);
	switch (resp->status) {
	case EBPFMON__V1__STATUS__STATUS_NOT_PERMITTED:
		if (strstr(msg, "listener")) /* a read-only tcp:// listener: nobody may change */
			fputs("hint: Bans and unbans go over the local socket (-s) or a tls+tcp:// "
			      "listener with the client certificate of an admin\n",
			      err);
		else
			fputs("hint: Bans and unbans need root or the analyzer's admin group\n",
			      err);
		break;
	case EBPFMON__V1__STATUS__STATUS_UNSUPPORTED_VERSION:
		fprintf(err,
			"hint: The analyzer speaks protocol version %u, this ebpfmonctl %d: use "
			"the "
			"ebpfmonctl of the analyzer's release\n",
			resp->version, CTL_PROTOCOL_VERSION);
		break;
	case EBPFMON__V1__STATUS__STATUS_ALLOWLISTED:
		fputs("hint: The allowlist ([network] allowlist, loopback, the host's own "
		      "addresses) is never banned\n",
		      err);
		break;
	case EBPFMON__V1__STATUS__STATUS_UNAVAILABLE:
		fputs("hint: The analyzer's log says why (journalctl -u ebpfmon-analyzer)\n", err);
		break;
	default:
		break;
	}
}

static int ctl_render(const struct ctl_out *o, const struct ctl_args *a,
		      const Ebpfmon__V1__Response *resp)
{
	switch (a->cmd) {
	case CTL_CMD_NONE:
	case CTL_CMD_STATUS:
	case CTL_CMD_TOP:
		return ctl_render_status(o, resp->get_monitor_status);
	case CTL_CMD_VERSION:
		return ctl_render_version(o, EBPFMON_VERSION, resp->get_monitor_status->version,
					  resp->version ? resp->version : CTL_PROTOCOL_VERSION);
	case CTL_CMD_BANS:
		return ctl_render_bans(o, resp->get_malicious_ips, a->history);
	case CTL_CMD_STATS:
		if (a->address[0])
			return ctl_render_explain(o, resp->get_network_stats, a->address);
		return ctl_render_stats(o, resp->get_network_stats, a->history);
	case CTL_CMD_EXPLAIN:
		return ctl_render_explain(o, resp->get_network_stats, a->address);
	case CTL_CMD_ANOMALIES:
		return ctl_render_anomalies(o, resp->get_system_anomalies);
	case CTL_CMD_BAN:
		return ctl_render_ban(o, resp->ban_ip, a->address);
	case CTL_CMD_UNBAN:
		return ctl_render_unban(o, resp->unban_ip, a->address);
	}
	return -EINVAL;
}

int ctl_run(const struct ctl_args *a, FILE *out, FILE *err)
{
	struct ctl_out o = {.out = out, .json = a->json, .now = time(NULL)};
	Ebpfmon__V1__Response *resp = NULL;
	struct ctl_request r;
	char msg[1024];
	int ret;

	if (a->help == CTL_HELP_USAGE) {
		ctl_usage(out, a->cmd);
		return CTL_EXIT_OK;
	}
	if (a->help == CTL_HELP_VERSION) {
		fprintf(out, "ebpfmonctl %s\n", EBPFMON_VERSION);
		return CTL_EXIT_OK;
	}
	ctl_set_tls(&a->tls);
	if (a->cmd == CTL_CMD_TOP)
		return ctl_top_run(a, out, err);
	ctl_build(&r, a);
	ret = ctl_call(a->url, a->timeout_ms, &r.req, &resp, msg, sizeof(msg));
	if (ret) {
		if (a->cmd == CTL_CMD_VERSION)
			ctl_render_version(&o, EBPFMON_VERSION, NULL, CTL_PROTOCOL_VERSION);
		fprintf(err, "ebpfmonctl: %s\n", msg);
		return ret == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_UNREACHABLE;
	}
	if (resp->status != EBPFMON__V1__STATUS__STATUS_OK) {
		ctl_print_refused(err, resp);
		ebpfmon__v1__response__free_unpacked(resp, NULL);
		return CTL_EXIT_REFUSED;
	}
	ret = ctl_render(&o, a, resp);
	ebpfmon__v1__response__free_unpacked(resp, NULL);
	if (!ret && fflush(out))
		ret = -errno;
	if (ret) {
		fprintf(err, "ebpfmonctl: writing the output: %s\n", strerror(-ret));
		return CTL_EXIT_REFUSED;
	}
	return CTL_EXIT_OK;
}
