/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ebpfmonctl's output: each API response as aligned tables with human units, or as one JSON
 * document (json-c). The JSON document of a call is its response message with the .proto's
 * snake_case field names, every field present (an absent message is null), enums by name;
 * that makes it as stable as the protocol itself.
 */
#ifndef EBPFMON_CTL_RENDER_H
#define EBPFMON_CTL_RENDER_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>

#include "ebpfmon.pb-c.h"

struct ctl_out {
	FILE *out;
	bool json;
	time_t now; /* what relative times ("3m ago") count from */
};

/* All return 0, -ENOMEM, or -EIO when out cannot be written. */
int ctl_render_status(const struct ctl_out *o, const Ebpfmon__V1__GetMonitorStatusResponse *m);
int ctl_render_bans(const struct ctl_out *o, const Ebpfmon__V1__GetMaliciousIPsResponse *m,
		    bool history);
int ctl_render_stats(const struct ctl_out *o, const Ebpfmon__V1__GetNetworkStatsResponse *m,
		     bool history);
/* One address (explain, stats --ip): its counters and its bans. */
int ctl_render_explain(const struct ctl_out *o, const Ebpfmon__V1__GetNetworkStatsResponse *m,
		       const char *address);
int ctl_render_anomalies(const struct ctl_out *o, const Ebpfmon__V1__GetSystemAnomaliesResponse *m);
int ctl_render_ban(const struct ctl_out *o, const Ebpfmon__V1__BanIPResponse *m,
		   const char *address);
int ctl_render_unban(const struct ctl_out *o, const Ebpfmon__V1__UnbanIPResponse *m,
		     const char *address);
/* server_version NULL: the analyzer could not be asked. */
int ctl_render_version(const struct ctl_out *o, const char *client_version,
		       const char *server_version, unsigned int protocol_version);

/* Pieces of a ban for a table cell (not escaped yet: ctl_table_add() does that). */
/* "conn_limit", "conn_limit (level 2)", "manual [dry run]" */
const char *ctl_ban_reason_text(const Ebpfmon__V1__Ban *b, char *buf, size_t len);
/* "permanent", "in 9m", or "3m ago" for one that has expired */
const char *ctl_ban_expiry(const Ebpfmon__V1__Ban *b, time_t now, char *buf, size_t len);
/* "RULE: PATH", either alone, or "-" */
const char *ctl_ban_detail(const Ebpfmon__V1__Ban *b, char *buf, size_t len);

/* A message as a JSON object (see above); NULL on -ENOMEM. Free with json_object_put(). */
struct json_object *ctl_json_message(const ProtobufCMessage *m);
/* "STATUS_NOT_PERMITTED"; NULL for a value this client does not know. */
const char *ctl_status_name(int status);

#endif
