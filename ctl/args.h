/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ebpfmonctl's command line: global options, the command and its options, the legacy
 * "-addr=URL -action=NAME -ip=ADDR" form, and the strict parsers behind them (durations,
 * times, addresses, networks, numbers).
 */
#ifndef EBPFMON_CTL_ARGS_H
#define EBPFMON_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "addr.h"
#include "client.h"

#define CTL_DEFAULT_URL	       "ipc:///run/ebpfmon/api.sock"
#define CTL_DEFAULT_TIMEOUT_MS 5000
#define CTL_URL_MAX	       256
#define CTL_BAN_REASON_MAX     128 /* bytes of free text in BanIPRequest.reason */
#define CTL_LIMIT_MAX	       10000
/* top --interval: bounds and default, in milliseconds */
#define CTL_INTERVAL_MIN_MS	100u
#define CTL_INTERVAL_MAX_MS	3600000u
#define CTL_INTERVAL_DEFAULT_MS 1000u
#define CTL_ITERATIONS_MAX	1000000u

/* The exit statuses, documented in ebpfmonctl(1). */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_REFUSED = 1,	  /* the server answered with an error status */
	CTL_EXIT_USAGE = 2,	  /* a bad command line */
	CTL_EXIT_UNREACHABLE = 3, /* no connection, no reply in time, or a reply not understood */
};

enum ctl_command {
	CTL_CMD_NONE = 0, /* no command: help only */
	CTL_CMD_STATUS,
	CTL_CMD_BANS,
	CTL_CMD_STATS,
	CTL_CMD_ANOMALIES,
	CTL_CMD_BAN,
	CTL_CMD_UNBAN,
	CTL_CMD_EXPLAIN,
	CTL_CMD_VERSION,
	CTL_CMD_TOP,
};

enum ctl_help {
	CTL_HELP_NONE = 0,
	CTL_HELP_USAGE,	  /* --help, or help COMMAND (cmd says which; NONE for the overview) */
	CTL_HELP_VERSION, /* --version: the client's version, no call */
};

struct ctl_args {
	char url[CTL_URL_MAX];
	struct ctl_tls tls; /* --cert, --key, --ca, --server-name (or EBPFMONCTL_*) */
	bool json;
	uint32_t timeout_ms;
	enum ctl_command cmd;
	enum ctl_help help;
	bool legacy; /* the -addr=/-action= form */

	/*
	 * The address or network the command is about, normalised ("2001:DB8::1" becomes
	 * "2001:db8::1"): bans --net, stats --ip, and the operand of ban, unban and explain.
	 * Empty when none.
	 */
	char address[ADDR_STRLEN];
	/* bans --reason (one of ctl_ban_reasons) or ban --reason (free text); "" when none */
	char reason[CTL_BAN_REASON_MAX + 1];
	char kind[16];	     /* anomalies --kind (one of ctl_anomaly_kinds); "" when none */
	bool history;	     /* bans --all/--history, stats --history */
	bool open_only;	     /* anomalies --open */
	bool order_bytes;    /* stats --bytes */
	bool permanent;	     /* ban --duration permanent */
	uint64_t duration_s; /* ban --duration; 0: the server's configured duration */
	int64_t since_unix;  /* --since; 0: none */
	uint32_t limit;	     /* --limit; 0: the server's default */
	uint64_t offset;     /* --offset */
	uint32_t top;	     /* stats --top, top --top; 0: the default */

	/* top */
	uint32_t interval_ms; /* --interval */
	uint32_t iterations;  /* --iterations, --once (1); 0: the live view on a terminal */
};

/* The reasons a ban can have, and the kinds of anomaly: what the filters accept. */
extern const char *const ctl_ban_reasons[];   /* NULL-terminated */
extern const char *const ctl_anomaly_kinds[]; /* NULL-terminated */

/*
 * Parse argv into *a. now is the wall clock that relative --since values count back from.
 * Returns 0, or -EINVAL with a one-line message in err that names the bad argument.
 */
int ctl_args_parse(struct ctl_args *a, int argc, char **argv, time_t now, char *err, size_t errlen);

/* The overview (cmd CTL_CMD_NONE) or one command's help, with examples. */
void ctl_usage(FILE *out, enum ctl_command cmd);
/* "status", "bans", ...; NULL for CTL_CMD_NONE. */
const char *ctl_command_name(enum ctl_command cmd);

/*
 * "90s", "30m", "1h", "2d", "1w" and sums of them ("1h30m") -> seconds; -EINVAL for no unit or
 * an unknown unit, -EDOM for zero, -ERANGE for more than 100 years. "permanent" is for the
 * caller to check.
 */
int ctl_parse_duration(const char *s, uint64_t *out);
/* The same with milliseconds: "500ms", "2s", "1m30s" -> milliseconds. */
int ctl_parse_duration_ms(const char *s, uint64_t *out);
/*
 * A point in time: a duration back from now ("1h" is an hour ago), "@UNIXSECONDS", or
 * "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]", "YYYY-MM-DDTHH:MM[:SS]" in local time, or UTC
 * with a trailing "Z". -EINVAL for anything else or a time after now.
 */
int ctl_parse_time(const char *s, time_t now, int64_t *out);
/* Decimal digits only, within [min, max]: -EINVAL for empty, sign, space, trailing garbage,
 * -ERANGE beyond the range. */
int ctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
