// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ebpfmonctl's command line. Global options come before the command (and are accepted after
 * it too); each command has its own options. A bad argument is refused with a message naming
 * it, never guessed at: numbers are decimal and range-checked, addresses and networks go
 * through common/addr.c, durations need a unit.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CTL_TIMEOUT_MAX_MS 3600000u
#define CTL_TOP_MAX	   10000u
#define CTL_OFFSET_MAX	   ((uint64_t)INT64_MAX)
/* A ban for longer than this is a typo: use "permanent". */
#define CTL_DURATION_MAX_S (100ull * 366 * 86400)
/* sun_path holds 108 bytes with the terminating NUL */
#define CTL_IPC_PATH_MAX 107

const char *const ctl_ban_reasons[] = {"conn_limit", "url_rule", "manual", "escalated", NULL};
const char *const ctl_anomaly_kinds[] = {"cpu", "memory", "disk_io", NULL};

enum {
	OPT_ADDR = 256,
	OPT_TIMEOUT,
	OPT_ALL,
	OPT_NET,
	OPT_REASON,
	OPT_SINCE,
	OPT_LIMIT,
	OPT_OFFSET,
	OPT_TOP,
	OPT_BYTES,
	OPT_IP,
	OPT_HISTORY,
	OPT_OPEN,
	OPT_KIND,
	OPT_DURATION,
	OPT_INTERVAL,
	OPT_ONCE,
	OPT_ITERATIONS,
	OPT_CERT,
	OPT_KEY,
	OPT_CA,
	OPT_SERVER_NAME,
};

/* Global options, accepted before the command and after it. */
/* clang-format off */
#define CTL_GLOBAL_OPTS							\
	{"socket", required_argument, NULL, 's'},			\
	{"addr", required_argument, NULL, OPT_ADDR},			\
	{"json", no_argument, NULL, 'j'},				\
	{"timeout", required_argument, NULL, OPT_TIMEOUT},		\
	{"cert", required_argument, NULL, OPT_CERT},			\
	{"key", required_argument, NULL, OPT_KEY},			\
	{"ca", required_argument, NULL, OPT_CA},			\
	{"server-name", required_argument, NULL, OPT_SERVER_NAME},	\
	{"help", no_argument, NULL, 'h'}
/* clang-format on */
#define CTL_GLOBAL_SHORT ":s:jh"

static const struct option opts_global[] = {
	CTL_GLOBAL_OPTS,
	{"version", no_argument, NULL, 'V'},
	{},
};
static const struct option opts_plain[] = {
	CTL_GLOBAL_OPTS,
	{},
};
static const struct option opts_bans[] = {
	CTL_GLOBAL_OPTS,
	{"all", no_argument, NULL, OPT_ALL},
	{"history", no_argument, NULL, OPT_HISTORY},
	{"net", required_argument, NULL, OPT_NET},
	{"reason", required_argument, NULL, OPT_REASON},
	{"since", required_argument, NULL, OPT_SINCE},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"offset", required_argument, NULL, OPT_OFFSET},
	{},
};
static const struct option opts_stats[] = {
	CTL_GLOBAL_OPTS,
	{"top", required_argument, NULL, OPT_TOP},
	{"bytes", no_argument, NULL, OPT_BYTES},
	{"ip", required_argument, NULL, OPT_IP},
	{"history", no_argument, NULL, OPT_HISTORY},
	{"since", required_argument, NULL, OPT_SINCE},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{},
};
static const struct option opts_anomalies[] = {
	CTL_GLOBAL_OPTS,
	{"open", no_argument, NULL, OPT_OPEN},
	{"kind", required_argument, NULL, OPT_KIND},
	{"since", required_argument, NULL, OPT_SINCE},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"offset", required_argument, NULL, OPT_OFFSET},
	{},
};
static const struct option opts_top[] = {
	CTL_GLOBAL_OPTS,
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"bytes", no_argument, NULL, OPT_BYTES},
	{"top", required_argument, NULL, OPT_TOP},
	{"once", no_argument, NULL, OPT_ONCE},
	{"iterations", required_argument, NULL, OPT_ITERATIONS},
	{},
};
static const struct option opts_ban[] = {
	CTL_GLOBAL_OPTS,
	{"duration", required_argument, NULL, OPT_DURATION},
	{"reason", required_argument, NULL, OPT_REASON},
	{},
};

struct ctl_cmd_info {
	enum ctl_command cmd;
	const char *name;
	const char *alias;   /* the original API's name, or NULL */
	const char *operand; /* "ADDR|CIDR", "ADDR", or NULL for none */
	const struct option *opts;
	const char *help;
};

static const struct ctl_cmd_info ctl_cmds[] = {
	{CTL_CMD_STATUS, "status", NULL, NULL, opts_plain,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... status\n"
	 "The analyzer's health: version and uptime, whether the loader and the analyzer run,\n"
	 "the interfaces and their XDP mode, active bans, tracked addresses, open anomalies,\n"
	 "the database, dry run, CPU, memory and disk I/O, the kernel's counters, and the BPF\n"
	 "programs' run time (when kernel.bpf_stats_enabled is 1).\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl status\n"
	 "  ebpfmonctl --json status | jq .counters.rx_drop_ban\n"},
	{CTL_CMD_BANS, "bans", "malicious-ips", NULL, opts_bans,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... bans [OPTION]...\n"
	 "The active bans, newest first; with --all the ended ones too. Alias: malicious-ips.\n"
	 "\n"
	 "  --all, --history   ended bans too (unbanned, expired)\n"
	 "  --net CIDR         bans of addresses inside CIDR (or of that one address)\n"
	 "  --reason REASON    conn_limit, url_rule, manual or escalated\n"
	 "  --since WHEN       banned at or after WHEN: a duration back from now (90s, 30m,\n"
	 "                     1h, 2d), YYYY-MM-DD[ HH:MM[:SS]] in local time (Z: UTC), or\n"
	 "                     @UNIXSECONDS\n"
	 "  --limit N          at most N bans (1..10000; default: the server's, 100)\n"
	 "  --offset N         skip the N newest first (paging)\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl bans\n"
	 "  ebpfmonctl bans --all --since 1d --reason url_rule\n"
	 "  ebpfmonctl bans --net 198.51.100.0/24\n"
	 "  ebpfmonctl --json bans --all --limit 10000 | jq -r '.bans[].address'\n"},
	{CTL_CMD_STATS, "stats", "network-stats", NULL, opts_stats,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... stats [OPTION]...\n"
	 "Top talkers by packets (or bytes) live from the kernel's maps, snapshots from the\n"
	 "database with --history, or one address with --ip. Alias: network-stats.\n"
	 "\n"
	 "  --top N            the N busiest addresses (1..10000; default 10)\n"
	 "  --bytes            order by bytes instead of packets\n"
	 "  --ip ADDR          one address: its traffic, connections and bans (as explain)\n"
	 "  --history          the database's periodic snapshots instead of the live maps\n"
	 "  --since WHEN       with --history: snapshots at or after WHEN (see bans --help)\n"
	 "  --limit N          with --history: at most N snapshots (1..10000; default 100)\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl stats\n"
	 "  ebpfmonctl stats --top 50 --bytes\n"
	 "  ebpfmonctl stats --history --since 6h\n"
	 "  ebpfmonctl stats --ip 2001:db8::7\n"},
	{CTL_CMD_ANOMALIES, "anomalies", "system-anomalies", NULL, opts_anomalies,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... anomalies [OPTION]...\n"
	 "Episodes of CPU, memory or disk I/O above their thresholds, newest first, with their\n"
	 "peak and the top process. Alias: system-anomalies.\n"
	 "\n"
	 "  --open             only the episodes still going on\n"
	 "  --kind KIND        cpu, memory or disk_io\n"
	 "  --since WHEN       started at or after WHEN (see bans --help)\n"
	 "  --limit N          at most N episodes (1..10000; default: the server's, 100)\n"
	 "  --offset N         skip the N newest first (paging)\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl anomalies --open\n"
	 "  ebpfmonctl anomalies --kind disk_io --since 2d\n"},
	{CTL_CMD_BAN, "ban", NULL, "ADDR|CIDR", opts_ban,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... ban ADDR|CIDR [OPTION]...\n"
	 "Ban an address or a network now: the kernel drops its packets at once, and the ban\n"
	 "is recorded as manual. Needs root or the analyzer's admin group.\n"
	 "\n"
	 "  --duration D       90s, 30m, 1h, 2d, 1w, sums such as 1h30m, or permanent\n"
	 "                     (default: the configured ban_duration)\n"
	 "  --reason TEXT      why, kept with the ban (at most 128 bytes)\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl ban 198.51.100.7\n"
	 "  ebpfmonctl ban 198.51.100.0/24 --duration 2d --reason \"scanner network\"\n"
	 "  ebpfmonctl ban 2001:db8::bad --duration permanent\n"},
	{CTL_CMD_UNBAN, "unban", NULL, "ADDR|CIDR", opts_plain,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... unban ADDR|CIDR\n"
	 "End the ban of an address or a network (as it was banned): the kernel passes its\n"
	 "packets at once, and the ban's row ends. Needs root or the analyzer's admin group.\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl unban 198.51.100.7\n"
	 "  ebpfmonctl unban 198.51.100.0/24\n"},
	{CTL_CMD_EXPLAIN, "explain", NULL, "ADDR", opts_plain,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... explain ADDR\n"
	 "Everything known about one address: its traffic in and out, SYNs, established\n"
	 "connections, when it was first and last seen, and every ban with the rule and the\n"
	 "request path that caused it.\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl explain 198.51.100.7\n"
	 "  ebpfmonctl --json explain 2001:db8::7 | jq '.bans[0].path'\n"},
	{CTL_CMD_TOP, "top", NULL, NULL, opts_top,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... top [OPTION]...\n"
	 "A live view, refreshed every second: the analyzer's health and packets per second,\n"
	 "the top talkers with their packets and bytes per second (banned ones marked), and\n"
	 "the newest active bans. As many talkers as the terminal has room for.\n"
	 "\n"
	 "Keys: q or Ctrl-C quits; b orders the talkers by bytes, p by packets; + refreshes\n"
	 "less often, - more often; space refreshes now. When the analyzer stops answering,\n"
	 "the view says so and keeps trying.\n"
	 "\n"
	 "When standard output is not a terminal, or with --once or --iterations, frames are\n"
	 "printed as plain text instead; rates need two samples, so they appear from the\n"
	 "second frame on.\n"
	 "\n"
	 "  --interval D       time between refreshes, 100ms..1h (default 1s): 500ms, 2s, 1m\n"
	 "  --bytes            order the talkers by bytes instead of packets\n"
	 "  --top N            at most N talkers (1..10000; default: as many as fit, 10 in\n"
	 "                     plain text)\n"
	 "  --once             print one plain-text frame and exit\n"
	 "  --iterations N     print N plain-text frames, --interval apart (1..1000000)\n"
	 "\n"
	 "--json does not apply: scripts use 'ebpfmonctl stats --json' (and status, bans).\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl top\n"
	 "  ebpfmonctl top --interval 500ms --bytes\n"
	 "  ebpfmonctl top --once\n"
	 "  ebpfmonctl top --iterations 2 --interval 10s --top 20 > talkers.txt\n"},
	{CTL_CMD_VERSION, "version", NULL, NULL, opts_plain,
	 "Usage: ebpfmonctl [GLOBAL OPTION]... version\n"
	 "The versions of ebpfmonctl, of the analyzer it talks to, and of the protocol.\n"
	 "(--version prints ebpfmonctl's alone, without asking the analyzer.)\n"
	 "\n"
	 "EXAMPLES\n"
	 "  ebpfmonctl version\n"},
};

static const char ctl_usage_text[] =
	"Usage: ebpfmonctl [-s SOCKET | --addr URL] [--json] [--timeout MS] COMMAND [OPTION]...\n"
	"Ask ebpfmon-analyzer what it sees and tell it what to ban, over its API socket.\n"
	"\n"
	"Commands:\n"
	"  status             health, counters, interfaces, resources\n"
	"  bans               active bans (--all: ended ones too); alias malicious-ips\n"
	"  stats              top talkers, live or history; alias network-stats\n"
	"  anomalies          CPU, memory and disk I/O episodes; alias system-anomalies\n"
	"  ban ADDR|CIDR      ban an address or a network now\n"
	"  unban ADDR|CIDR    end a ban\n"
	"  explain ADDR       everything known about one address\n"
	"  top                a live view of traffic, top talkers and bans (q quits)\n"
	"  version            the versions of ebpfmonctl and of the analyzer\n"
	"  help [COMMAND]     this text, or one command's\n"
	"\n"
	"Global options:\n"
	"  -s, --socket PATH  the API's Unix socket (default /run/ebpfmon/api.sock)\n"
	"      --addr URL     the API at an nng URL: ipc:///PATH, abstract://NAME,\n"
	"                     tcp://HOST:PORT (a tcp listener is read-only),\n"
	"                     tls+tcp://HOST:PORT (with --cert, --key and --ca)\n"
	"      --cert FILE    tls+tcp://: this client's certificate, PEM (EBPFMONCTL_CERT)\n"
	"      --key FILE     tls+tcp://: its private key, PEM (EBPFMONCTL_KEY)\n"
	"      --ca FILE      tls+tcp://: the CA that signed the analyzer's certificate\n"
	"                     (EBPFMONCTL_CA)\n"
	"      --server-name NAME  tls+tcp://: the name the analyzer's certificate must\n"
	"                     carry (default: the URL's host)\n"
	"  -j, --json         one JSON document on standard output, for scripts and jq\n"
	"      --timeout MS   give up after MS milliseconds for the connection, the request\n"
	"                     and the reply together (1..3600000, default 5000)\n"
	"  -h, --help         this text; COMMAND --help for one command\n"
	"  -V, --version      ebpfmonctl's version\n"
	"\n"
	"The form of the original example client works too:\n"
	"  ebpfmonctl -addr=URL -action=ACTION [-ip=ADDR]\n"
	"  ACTION: status, malicious-ips, network-stats, system-anomalies, ban-ip, unban-ip\n"
	"\n"
	"Exit status: 0 done; 1 the analyzer refused (its status and message are printed);\n"
	"2 bad command line; 3 no connection, no reply in time, or a reply not understood.\n"
	"\n"
	"EXAMPLES\n"
	"  ebpfmonctl status\n"
	"  ebpfmonctl bans --all --since 1h\n"
	"  ebpfmonctl stats --top 20 --bytes\n"
	"  ebpfmonctl ban 198.51.100.7 --duration 1h --reason \"credential stuffing\"\n"
	"  ebpfmonctl unban 198.51.100.0/24\n"
	"  ebpfmonctl explain 198.51.100.7\n"
	"  ebpfmonctl top --interval 2s\n"
	"  ebpfmonctl -s /tmp/api.sock --json bans | jq -r '.bans[].address'\n"
	"  ebpfmonctl --addr tls+tcp://mon1.example.net:50051 --cert ops.pem --key ops.key \\\n"
	"      --ca ebpfmon-ca.pem ban 198.51.100.7\n";

static const struct ctl_cmd_info *ctl_cmd_info(enum ctl_command cmd)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ctl_cmds); i++)
		if (ctl_cmds[i].cmd == cmd)
			return &ctl_cmds[i];
	return NULL;
}

static const struct ctl_cmd_info *ctl_cmd_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ctl_cmds); i++)
		if (!strcmp(ctl_cmds[i].name, name) ||
		    (ctl_cmds[i].alias && !strcmp(ctl_cmds[i].alias, name)))
			return &ctl_cmds[i];
	return NULL;
}

const char *ctl_command_name(enum ctl_command cmd)
{
	const struct ctl_cmd_info *ci = ctl_cmd_info(cmd);

	return ci ? ci->name : NULL;
}

void ctl_usage(FILE *out, enum ctl_command cmd)
{
	const struct ctl_cmd_info *ci = ctl_cmd_info(cmd);

	fputs(ci ? ci->help : ctl_usage_text, out);
	if (ci)
		fputs("\nGlobal options (-s, --addr, --json, --timeout): see ebpfmonctl --help.\n",
		      out);
}

/* ---- strict parsers ----------------------------------------------------------------------- */

int ctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	int saved = errno, ret = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* empty, sign or leading space: strtoull would take them */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		ret = -EINVAL;
	else if (errno == ERANGE || v < min || v > max)
		ret = -ERANGE;
	else
		*out = v;
	errno = saved;
	return ret;
}

/* One unit of a duration: its suffix and its value in the caller's base unit. */
struct ctl_duration_unit {
	const char *suffix;
	uint64_t value;
};

/*
 * Digits followed by a unit, repeated ("1h30m"); units[] is tried in order, so "ms" must come
 * before "m". The sum in the units' base, 1..max; -EINVAL otherwise.
 */
static int ctl_parse_units(const char *s, const struct ctl_duration_unit *units, size_t nunits,
			   uint64_t max, uint64_t *out)
{
	uint64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		uint64_t n = 0, mult = 0;
		size_t i, len = 0;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (n > max)
				continue; /* out of range, unless what follows is not a duration */
			n = n * 10 + (uint64_t)(*p - '0');
		}
		for (i = 0; i < nunits && !mult; i++) {
			len = strlen(units[i].suffix);
			if (!strncmp(p, units[i].suffix, len))
				mult = units[i].value;
		}
		if (!mult)
			return -EINVAL; /* no unit, or an unknown one */
		p += len;
		if (n > max || total > max || n > (max - total) / mult)
			total = max + 1; /* out of range; the rest must still parse */
		else
			total += n * mult;
	}
	if (total > max)
		return -ERANGE;
	if (!total)
		return -EDOM;
	*out = total;
	return 0;
}

int ctl_parse_duration(const char *s, uint64_t *out)
{
	static const struct ctl_duration_unit units[] = {
		{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400},
	};

	return ctl_parse_units(s, units, ARRAY_SIZE(units), CTL_DURATION_MAX_S, out);
}

int ctl_parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct ctl_duration_unit units[] = {
		{"ms", 1},	    {"s", 1000},	 {"m", 60 * 1000},
		{"h", 3600 * 1000}, {"d", 86400 * 1000}, {"w", 7ull * 86400 * 1000},
	};

	return ctl_parse_units(s, units, ARRAY_SIZE(units), CTL_DURATION_MAX_S * 1000, out);
}

int ctl_parse_time(const char *s, time_t now, int64_t *out)
{
	static const char *const formats[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
					      "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"};
	uint64_t v;
	size_t i;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '@') {
		if (ctl_parse_u64(s + 1, 0, (uint64_t)now, &v))
			return -EINVAL;
		*out = (int64_t)v;
		return 0;
	}
	if (!ctl_parse_duration(s, &v)) {
		if (v > (uint64_t)now)
			return -EINVAL;
		*out = (int64_t)now - (int64_t)v;
		return 0;
	}
	/* strptime() is lenient about digit counts and spaces: insist on YYYY-MM-DD first */
	if (strlen(s) < 10 || strspn(s, "0123456789") != 4 || s[4] != '-' ||
	    strspn(s + 5, "0123456789") != 2 || s[7] != '-' || strspn(s + 8, "0123456789") != 2)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(formats); i++) {
		struct tm tm, want;
		const char *end;
		bool utc;
		time_t t;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, formats[i], &tm);
		if (!end || (*end && strcmp(end, "Z")))
			continue;
		utc = *end == 'Z';
		want = tm;
		tm.tm_isdst = -1;
		t = utc ? timegm(&tm) : mktime(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		/* mktime() normalises 2024-02-31 into March: a date that moved did not exist */
		if (tm.tm_mday != want.tm_mday || tm.tm_mon != want.tm_mon ||
		    tm.tm_year != want.tm_year)
			return -EINVAL;
		if (t > now)
			return -EINVAL;
		*out = (int64_t)t;
		return 0;
	}
	return -EINVAL;
}

/* ---- helpers for the option handlers --------------------------------------------------------- */

struct ctl_parse {
	struct ctl_args *a;
	time_t now;
	char *err;
	size_t errlen;
	bool have_socket, have_addr;
	bool tls_opt; /* --cert, --key, --ca or --server-name given */
};

static int __attribute__((format(printf, 2, 3))) ctl_bad(struct ctl_parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool ctl_in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static const char *ctl_list_text(const char *const *list, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (; *list && o < len; list++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", *list);
	return buf;
}

static int ctl_set_socket(struct ctl_parse *p, const char *opt, const char *path)
{
	if (p->have_addr)
		return ctl_bad(p, "%s and --addr both name the server: give one", opt);
	if (!*path)
		return ctl_bad(p, "%s: empty socket path", opt);
	if (strstr(path, "://"))
		return ctl_bad(p, "%s '%s': a socket path, not a URL (use --addr URL)", opt, path);
	if (strlen(path) > CTL_IPC_PATH_MAX)
		return ctl_bad(p, "%s: socket path longer than %d bytes", opt, CTL_IPC_PATH_MAX);
	snprintf(p->a->url, sizeof(p->a->url), "ipc://%s", path);
	p->have_socket = true;
	return 0;
}

/* A port: 1..65535 after the last ':' of HOST:PORT. */
static bool ctl_has_port(const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	uint64_t port;

	return colon && colon != hostport && !ctl_parse_u64(colon + 1, 1, 65535, &port);
}

static int ctl_set_url(struct ctl_parse *p, const char *opt, const char *url)
{
	const char *rest;

	if (p->have_socket)
		return ctl_bad(p, "-s and %s both name the server: give one", opt);
	if (strlen(url) >= sizeof(p->a->url))
		return ctl_bad(p, "%s: URL longer than %zu bytes", opt, sizeof(p->a->url) - 1);
	if (!strncmp(url, "ipc://", 6)) {
		rest = url + 6;
		if (!*rest || strlen(rest) > CTL_IPC_PATH_MAX)
			return ctl_bad(p, "%s '%s': ipc:// needs a socket path of 1..%d bytes", opt,
				       url, CTL_IPC_PATH_MAX);
	} else if (!strncmp(url, "abstract://", 11)) {
		if (!url[11])
			return ctl_bad(p, "%s '%s': abstract:// needs a name", opt, url);
	} else if (!strncmp(url, "tcp://", 6) || !strncmp(url, "tcp4://", 7) ||
		   !strncmp(url, "tcp6://", 7)) {
		rest = strstr(url, "://") + 3;
		if (!ctl_has_port(rest))
			return ctl_bad(p, "%s '%s': tcp:// needs HOST:PORT with a port 1..65535",
				       opt, url);
	} else if (!strncmp(url, "tls+tcp://", 10) || !strncmp(url, "tls+tcp4://", 11) ||
		   !strncmp(url, "tls+tcp6://", 11)) {
		rest = strstr(url, "://") + 3;
		if (!ctl_has_port(rest))
			return ctl_bad(p,
				       "%s '%s': tls+tcp:// needs HOST:PORT with a port 1..65535",
				       opt, url);
	} else {
		return ctl_bad(
			p,
			"%s '%s': not a URL ebpfmonctl speaks (ipc:///PATH, abstract://NAME, "
			"tcp://HOST:PORT, tls+tcp://HOST:PORT)",
			opt, url);
	}
	snprintf(p->a->url, sizeof(p->a->url), "%s", url);
	p->have_addr = true;
	return 0;
}

/* --cert, --key, --ca, --server-name: a value of at most len - 1 bytes into field. */
static int ctl_set_tls_opt(struct ctl_parse *p, const char *opt, const char *v, char *field,
			   size_t len)
{
	if (!*v || strlen(v) >= len)
		return ctl_bad(p, "%s '%s': expected 1..%zu bytes", opt, v, len - 1);
	snprintf(field, len, "%s", v);
	return 0;
}

/*
 * After parsing: the TLS options belong to a tls+tcp:// URL, which needs --ca to check the
 * server, and a key with a certificate.
 */
static int ctl_check_tls(struct ctl_parse *p)
{
	const struct ctl_tls *t = &p->a->tls;
	bool tls = !strncmp(p->a->url, "tls+", 4);

	if (!tls && p->tls_opt)
		return ctl_bad(p, "--cert, --key, --ca and --server-name are for a tls+tcp:// "
				  "--addr");
	if (!tls)
		return 0;
	if (!t->ca[0])
		return ctl_bad(p,
			       "--addr %s: --ca FILE (or EBPFMONCTL_CA) names the CA that signed "
			       "the analyzer's certificate",
			       p->a->url);
	if (t->key[0] && !t->cert[0])
		return ctl_bad(p, "--key needs --cert (the certificate of that key)");
	if (t->cert[0] && !t->key[0])
		return ctl_bad(p, "--cert needs --key (its private key), unless --key names the "
				  "same file");
	return 0;
}

static int ctl_set_timeout(struct ctl_parse *p, const char *opt, const char *v)
{
	uint64_t ms;

	if (ctl_parse_u64(v, 1, CTL_TIMEOUT_MAX_MS, &ms))
		return ctl_bad(p, "%s '%s': not a number of milliseconds 1..%u", opt, v,
			       CTL_TIMEOUT_MAX_MS);
	p->a->timeout_ms = (uint32_t)ms;
	return 0;
}

/* A single address (no network): normalised into a->address. */
static int ctl_set_host(struct ctl_parse *p, const char *what, const char *v)
{
	struct ebpfmon_addr addr;

	if (strchr(v, '/'))
		return ctl_bad(p, "%s '%s': one address, not a network", what, v);
	if (addr_parse(v, &addr))
		return ctl_bad(p, "%s '%s': not an IPv4 or IPv6 address", what, v);
	addr_format(&addr, p->a->address, sizeof(p->a->address));
	return 0;
}

/* Whether v is ADDRESS/PREFIX with a good address and a prefix too long for its family. */
static bool ctl_prefix_out_of_range(const char *v)
{
	const char *slash = strrchr(v, '/');
	char a[ADDR_STRLEN];
	struct addr_cidr c;
	uint64_t len;

	if (!slash || (size_t)(slash - v) >= sizeof(a) ||
	    ctl_parse_u64(slash + 1, 0, UINT32_MAX, &len))
		return false;
	memcpy(a, v, (size_t)(slash - v));
	a[slash - v] = '\0';
	if (cidr_parse(a, &c))
		return false;
	return len > (addr_is_v4(&c.addr) ? 32u : 128u);
}

/*
 * An address or a network: normalised into a->address. Host bits beyond the prefix are
 * refused with the network that was probably meant.
 */
static int ctl_set_net(struct ctl_parse *p, const char *what, const char *v)
{
	struct addr_cidr c;
	char meant[ADDR_STRLEN];
	int ret;

	ret = cidr_parse_loose(v, &c);
	if (ret < 0 && ctl_prefix_out_of_range(v))
		return ctl_bad(p,
			       "%s '%s': the prefix length is out of range (0..32 for IPv4, "
			       "0..128 for IPv6)",
			       what, v);
	if (ret < 0)
		return ctl_bad(p,
			       "%s '%s': not an address or a network (for example 198.51.100.7, "
			       "198.51.100.0/24, 2001:db8::/32)",
			       what, v);
	cidr_format(&c, meant, sizeof(meant));
	if (ret > 0)
		return ctl_bad(p, "%s '%s': host bits set beyond the prefix; did you mean %s?",
			       what, v, meant);
	memcpy(p->a->address, meant, sizeof(meant));
	return 0;
}

static int ctl_set_limit(struct ctl_parse *p, const char *opt, const char *v)
{
	uint64_t n;

	if (ctl_parse_u64(v, 1, CTL_LIMIT_MAX, &n))
		return ctl_bad(p, "%s '%s': not a number 1..%u", opt, v, CTL_LIMIT_MAX);
	p->a->limit = (uint32_t)n;
	return 0;
}

static int ctl_set_since(struct ctl_parse *p, const char *opt, const char *v)
{
	if (ctl_parse_time(v, p->now, &p->a->since_unix))
		return ctl_bad(p,
			       "%s '%s': not a past time (a duration back from now such as 30m, "
			       "1h or 2d; YYYY-MM-DD[ HH:MM[:SS]][Z]; or @UNIXSECONDS)",
			       opt, v);
	return 0;
}

static int ctl_set_duration(struct ctl_parse *p, const char *opt, const char *v)
{
	if (!strcmp(v, "permanent")) {
		p->a->permanent = true;
		p->a->duration_s = 0;
		return 0;
	}
	switch (ctl_parse_duration(v, &p->a->duration_s)) {
	case 0:
		break;
	case -ERANGE:
		return ctl_bad(p,
			       "%s '%s': longer than 100 years (the analyzer takes up to ten); "
			       "use permanent for a ban without end",
			       opt, v);
	case -EDOM:
		return ctl_bad(p,
			       "%s '%s': a ban lasts longer than 0; use permanent for a ban "
			       "without end",
			       opt, v);
	default:
		return ctl_bad(p,
			       "%s '%s': not a duration (90s, 30m, 1h, 2d, 1w, sums such as 1h30m, "
			       "or permanent; a number needs its unit)",
			       opt, v);
	}
	p->a->permanent = false;
	return 0;
}

static int ctl_set_ban_reason(struct ctl_parse *p, const char *opt, const char *v)
{
	const unsigned char *c;

	if (strlen(v) > CTL_BAN_REASON_MAX)
		return ctl_bad(p, "%s: longer than %d bytes", opt, CTL_BAN_REASON_MAX);
	for (c = (const unsigned char *)v; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return ctl_bad(p, "%s: control characters are not allowed", opt);
	snprintf(p->a->reason, sizeof(p->a->reason), "%s", v);
	return 0;
}

static int ctl_set_interval(struct ctl_parse *p, const char *opt, const char *v)
{
	uint64_t ms;

	if (ctl_parse_duration_ms(v, &ms) || ms < CTL_INTERVAL_MIN_MS || ms > CTL_INTERVAL_MAX_MS)
		return ctl_bad(p,
			       "%s '%s': not a duration from 100ms to 1h (500ms, 1s, 2s, 1m; a "
			       "number needs its unit)",
			       opt, v);
	p->a->interval_ms = (uint32_t)ms;
	return 0;
}

/* ---- the new form ---------------------------------------------------------------------------- */

/* The option that getopt_long() just refused, for the message. */
static int ctl_getopt_error(struct ctl_parse *p, int opt, char **argv, const char *where)
{
	const char *arg = argv[optind - 1];
	int n;

	if (opt == ':')
		return ctl_bad(p, "option '%s' needs a value%s", arg, where);
	if (arg[0] == '-' && arg[1] == '-') {
		n = (int)strcspn(arg, "=");
		if (optopt && arg[n] == '=')
			return ctl_bad(p, "option '%.*s' takes no value", n, arg);
		return ctl_bad(p, "unknown or ambiguous option '%.*s'%s", n, arg, where);
	}
	return ctl_bad(p, "unknown option '-%c'%s", optopt, where);
}

/* An option every command accepts; 1 when opt was one, 0 when not, -EINVAL when bad. */
static int ctl_global_opt(struct ctl_parse *p, int opt, const char *arg)
{
	switch (opt) {
	case 's':
		return ctl_set_socket(p, "-s", arg) ?: 1;
	case OPT_ADDR:
		return ctl_set_url(p, "--addr", arg) ?: 1;
	case 'j':
		p->a->json = true;
		return 1;
	case OPT_TIMEOUT:
		return ctl_set_timeout(p, "--timeout", arg) ?: 1;
	case OPT_CERT:
		p->tls_opt = true;
		return ctl_set_tls_opt(p, "--cert", arg, p->a->tls.cert, sizeof(p->a->tls.cert))
			       ?: 1;
	case OPT_KEY:
		p->tls_opt = true;
		return ctl_set_tls_opt(p, "--key", arg, p->a->tls.key, sizeof(p->a->tls.key)) ?: 1;
	case OPT_CA:
		p->tls_opt = true;
		return ctl_set_tls_opt(p, "--ca", arg, p->a->tls.ca, sizeof(p->a->tls.ca)) ?: 1;
	case OPT_SERVER_NAME:
		p->tls_opt = true;
		return ctl_set_tls_opt(p, "--server-name", arg, p->a->tls.server_name,
				       sizeof(p->a->tls.server_name))
			       ?: 1;
	case 'h':
		p->a->help = CTL_HELP_USAGE;
		return 1;
	}
	return 0;
}

static int ctl_command_opt(struct ctl_parse *p, const struct ctl_cmd_info *ci, int opt,
			   const char *arg)
{
	struct ctl_args *a = p->a;
	char list[128];

	switch (opt) {
	case OPT_ALL:
	case OPT_HISTORY:
		a->history = true;
		return 0;
	case OPT_NET:
		return ctl_set_net(p, "--net", arg);
	case OPT_REASON:
		if (ci->cmd == CTL_CMD_BAN)
			return ctl_set_ban_reason(p, "--reason", arg);
		if (!ctl_in_list(arg, ctl_ban_reasons))
			return ctl_bad(p, "--reason '%s': not one of %s", arg,
				       ctl_list_text(ctl_ban_reasons, list, sizeof(list)));
		snprintf(a->reason, sizeof(a->reason), "%s", arg);
		return 0;
	case OPT_SINCE:
		return ctl_set_since(p, "--since", arg);
	case OPT_LIMIT:
		return ctl_set_limit(p, "--limit", arg);
	case OPT_OFFSET:
		if (ctl_parse_u64(arg, 0, CTL_OFFSET_MAX, &a->offset))
			return ctl_bad(p, "--offset '%s': not a number 0..%llu", arg,
				       (unsigned long long)CTL_OFFSET_MAX);
		return 0;
	case OPT_TOP: {
		uint64_t n;

		if (ctl_parse_u64(arg, 1, CTL_TOP_MAX, &n))
			return ctl_bad(p, "--top '%s': not a number 1..%u", arg, CTL_TOP_MAX);
		a->top = (uint32_t)n;
		return 0;
	}
	case OPT_BYTES:
		a->order_bytes = true;
		return 0;
	case OPT_IP:
		return ctl_set_host(p, "--ip", arg);
	case OPT_OPEN:
		a->open_only = true;
		return 0;
	case OPT_KIND:
		if (!ctl_in_list(arg, ctl_anomaly_kinds))
			return ctl_bad(p, "--kind '%s': not one of %s", arg,
				       ctl_list_text(ctl_anomaly_kinds, list, sizeof(list)));
		snprintf(a->kind, sizeof(a->kind), "%s", arg);
		return 0;
	case OPT_DURATION:
		return ctl_set_duration(p, "--duration", arg);
	case OPT_INTERVAL:
		return ctl_set_interval(p, "--interval", arg);
	case OPT_ONCE:
		a->iterations = 1;
		return 0;
	case OPT_ITERATIONS: {
		uint64_t n;

		if (ctl_parse_u64(arg, 1, CTL_ITERATIONS_MAX, &n))
			return ctl_bad(p, "--iterations '%s': not a number 1..%u", arg,
				       CTL_ITERATIONS_MAX);
		a->iterations = (uint32_t)n;
		return 0;
	}
	}
	return ctl_bad(p, "internal: option %d not handled", opt);
}

/* top: --once and --iterations say the same thing; --json has no meaning for a live view. */
static int ctl_check_top(struct ctl_parse *p, bool seen_once, bool seen_iterations)
{
	if (seen_once && seen_iterations)
		return ctl_bad(p, "top: --once is --iterations 1: give one of them");
	if (p->a->json)
		return ctl_bad(p, "top is a live view for people and has no --json: scripts use "
				  "'ebpfmonctl stats --json' (and status --json, bans --json)");
	return 0;
}

/* Combinations that make no sense for stats. */
static int ctl_check_stats(struct ctl_parse *p, bool seen_top, bool seen_since, bool seen_limit)
{
	struct ctl_args *a = p->a;

	if (a->address[0] && (seen_top || a->order_bytes || a->history || seen_since || seen_limit))
		return ctl_bad(p, "stats --ip shows one address: --top, --bytes, --history, "
				  "--since and --limit do not apply");
	if (!a->history && (seen_since || seen_limit))
		return ctl_bad(p, "stats: --since and --limit apply to --history");
	return 0;
}

/* argv[0] is the command word; parse its options and operand. */
static int ctl_parse_command(struct ctl_parse *p, const struct ctl_cmd_info *ci, int argc,
			     char **argv)
{
	bool seen_top = false, seen_since = false, seen_limit = false;
	bool seen_once = false, seen_iterations = false;
	char where[64];
	int opt, ret;

	snprintf(where, sizeof(where), " for %s (see ebpfmonctl %s --help)", ci->name, ci->name);
	optind = 0; /* glibc: start afresh */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, CTL_GLOBAL_SHORT, ci->opts, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return ctl_getopt_error(p, opt, argv, where);
		ret = ctl_global_opt(p, opt, optarg);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		seen_top |= opt == OPT_TOP;
		seen_since |= opt == OPT_SINCE;
		seen_limit |= opt == OPT_LIMIT;
		seen_once |= opt == OPT_ONCE;
		seen_iterations |= opt == OPT_ITERATIONS;
		ret = ctl_command_opt(p, ci, opt, optarg);
		if (ret)
			return ret;
	}
	if (p->a->help)
		return 0;
	if (ci->operand) {
		if (optind >= argc)
			return ctl_bad(p, "%s needs %s (see ebpfmonctl %s --help)", ci->name,
				       ci->operand, ci->name);
		ret = ci->cmd == CTL_CMD_EXPLAIN ? ctl_set_host(p, ci->name, argv[optind])
						 : ctl_set_net(p, ci->name, argv[optind]);
		if (ret)
			return ret;
		optind++;
	}
	if (optind < argc)
		return ctl_bad(p, "%s: unexpected argument '%s'", ci->name, argv[optind]);
	if (ci->cmd == CTL_CMD_STATS)
		return ctl_check_stats(p, seen_top, seen_since, seen_limit);
	if (ci->cmd == CTL_CMD_TOP)
		return ctl_check_top(p, seen_once, seen_iterations);
	return 0;
}

static int ctl_parse_new(struct ctl_parse *p, int argc, char **argv)
{
	const struct ctl_cmd_info *ci;
	int opt, ret;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+" CTL_GLOBAL_SHORT "V", opts_global, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return ctl_getopt_error(p, opt, argv, "");
		if (opt == 'V') {
			p->a->help = CTL_HELP_VERSION;
			continue;
		}
		ret = ctl_global_opt(p, opt, optarg);
		if (ret < 0)
			return ret;
	}
	if (p->a->help == CTL_HELP_VERSION)
		return 0;
	if (optind >= argc) {
		if (p->a->help)
			return 0;
		return ctl_bad(p, "no command (status, bans, stats, anomalies, ban, unban, "
				  "explain, top, version; ebpfmonctl --help lists them)");
	}
	if (!strcmp(argv[optind], "help")) {
		p->a->help = CTL_HELP_USAGE;
		if (optind + 1 < argc) {
			ci = ctl_cmd_lookup(argv[optind + 1]);
			if (!ci)
				return ctl_bad(p, "help: unknown command '%s'", argv[optind + 1]);
			p->a->cmd = ci->cmd;
		}
		if (optind + 2 < argc)
			return ctl_bad(p, "help: unexpected argument '%s'", argv[optind + 2]);
		return 0;
	}
	ci = ctl_cmd_lookup(argv[optind]);
	if (!ci)
		return ctl_bad(p, "unknown command '%s' (ebpfmonctl --help lists them)",
			       argv[optind]);
	p->a->cmd = ci->cmd;
	return ctl_parse_command(p, ci, argc - optind, argv + optind);
}

/* ---- the legacy form: -addr=URL -action=NAME -ip=ADDR -----------------------------------------
 */

static const struct {
	const char *action;
	enum ctl_command cmd;
} ctl_legacy_actions[] = {
	{"status", CTL_CMD_STATUS},	  {"malicious-ips", CTL_CMD_BANS},
	{"network-stats", CTL_CMD_STATS}, {"system-anomalies", CTL_CMD_ANOMALIES},
	{"ban-ip", CTL_CMD_BAN},	  {"unban-ip", CTL_CMD_UNBAN},
};

/* "-name", "--name", "-name=..." or "--name=..." */
static bool ctl_legacy_flag_is(const char *arg, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (arg[0] != '-')
		return false;
	arg += arg[1] == '-' ? 2 : 1;
	if (strncmp(arg, name, n))
		return false;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return true;
	}
	if (!arg[n]) {
		*value = NULL;
		return true;
	}
	return false;
}

/*
 * The legacy form is recognised by -action (either dash count), or a single-dash -addr or
 * -ip: the new form spells its options --addr and --ip, and single-dash "-addr" would be a
 * cluster of short options it does not have.
 */
static bool ctl_is_legacy(int argc, char **argv)
{
	const char *v;
	int i;

	for (i = 1; i < argc; i++) {
		if (ctl_legacy_flag_is(argv[i], "action", &v))
			return true;
		if (argv[i][0] == '-' && argv[i][1] != '-' &&
		    (ctl_legacy_flag_is(argv[i], "addr", &v) ||
		     ctl_legacy_flag_is(argv[i], "ip", &v)))
			return true;
	}
	return false;
}

static int ctl_parse_legacy(struct ctl_parse *p, int argc, char **argv)
{
	static const char *const value_flags[] = {"addr", "action", "ip", "timeout", NULL};
	const char *action = "status", *ip = NULL, *v;
	struct ctl_args *a = p->a;
	char flag[32];
	size_t i;
	int k, ret;

	a->legacy = true;
	for (k = 1; k < argc; k++) {
		const char *arg = argv[k];
		const char *const *f;
		bool matched = false;

		if (ctl_legacy_flag_is(arg, "h", &v) || ctl_legacy_flag_is(arg, "help", &v)) {
			a->help = CTL_HELP_USAGE;
			continue;
		}
		if (ctl_legacy_flag_is(arg, "json", &v)) {
			if (v && strcmp(v, "true") && strcmp(v, "false"))
				return ctl_bad(p, "-json='%s': true or false", v);
			a->json = !v || !strcmp(v, "true");
			continue;
		}
		for (f = value_flags; *f && !matched; f++) {
			if (!ctl_legacy_flag_is(arg, *f, &v))
				continue;
			matched = true;
			snprintf(flag, sizeof(flag), "-%s", *f);
			if (!v) {
				if (k + 1 >= argc)
					return ctl_bad(p, "option '%s' needs a value", arg);
				v = argv[++k];
			}
			ret = 0;
			if (!strcmp(*f, "addr"))
				ret = ctl_set_url(p, flag, v);
			else if (!strcmp(*f, "timeout"))
				ret = ctl_set_timeout(p, flag, v);
			else if (!strcmp(*f, "action"))
				action = v;
			else
				ip = v;
			if (ret)
				return ret;
		}
		if (!matched) {
			if (arg[0] == '-')
				return ctl_bad(
					p,
					"unknown flag '%s' in the -action form (it has -addr, "
					"-action, -ip, -json, -timeout)",
					arg);
			return ctl_bad(p, "unexpected argument '%s' in the -action form", arg);
		}
	}
	for (i = 0; i < sizeof(ctl_legacy_actions) / sizeof(ctl_legacy_actions[0]); i++)
		if (!strcmp(action, ctl_legacy_actions[i].action))
			a->cmd = ctl_legacy_actions[i].cmd;
	if (a->cmd == CTL_CMD_NONE)
		return ctl_bad(p,
			       "-action '%s': not one of status, malicious-ips, network-stats, "
			       "system-anomalies, ban-ip, unban-ip",
			       action);
	if (a->help)
		return 0;
	switch (a->cmd) {
	case CTL_CMD_BAN:
	case CTL_CMD_UNBAN:
		if (!ip)
			return ctl_bad(p, "-action=%s needs -ip=ADDR", action);
		return ctl_set_net(p, "-ip", ip);
	case CTL_CMD_BANS:
		return ip ? ctl_set_net(p, "-ip", ip) : 0;
	case CTL_CMD_STATS:
		return ip ? ctl_set_host(p, "-ip", ip) : 0;
	default:
		if (ip)
			return ctl_bad(p, "-ip is not used by -action=%s", action);
		return 0;
	}
}

/* EBPFMONCTL_CERT, _KEY, _CA: defaults of --cert, --key, --ca (too long: ignored). */
static void ctl_tls_env(struct ctl_args *a)
{
	const char *v;

	if ((v = getenv("EBPFMONCTL_CERT")) && strlen(v) < sizeof(a->tls.cert))
		snprintf(a->tls.cert, sizeof(a->tls.cert), "%s", v);
	if ((v = getenv("EBPFMONCTL_KEY")) && strlen(v) < sizeof(a->tls.key))
		snprintf(a->tls.key, sizeof(a->tls.key), "%s", v);
	if ((v = getenv("EBPFMONCTL_CA")) && strlen(v) < sizeof(a->tls.ca))
		snprintf(a->tls.ca, sizeof(a->tls.ca), "%s", v);
}

int ctl_args_parse(struct ctl_args *a, int argc, char **argv, time_t now, char *err, size_t errlen)
{
	struct ctl_parse p = {.a = a, .now = now, .err = err, .errlen = errlen};
	int ret;

	memset(a, 0, sizeof(*a));
	snprintf(a->url, sizeof(a->url), "%s", CTL_DEFAULT_URL);
	a->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	a->interval_ms = CTL_INTERVAL_DEFAULT_MS;
	if (errlen)
		err[0] = '\0';
	if (argc < 1 || !argv)
		return ctl_bad(&p, "no arguments");
	ctl_tls_env(a);
	ret = ctl_is_legacy(argc, argv) ? ctl_parse_legacy(&p, argc, argv)
					: ctl_parse_new(&p, argc, argv);
	optind = 0;
	if (!ret && !a->help)
		ret = ctl_check_tls(&p);
	return ret;
}
