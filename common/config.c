// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The configuration file: INI read with inih, checked strictly.
 *
 * The grammar is inih's own (docs/configuration.md says what it accepts). The file is read
 * into memory and handed to ini_parse_stream() one line at a time by a reader that
 *  - counts lines, so that every message names its line (Debian's libinih is built without
 *    INI_HANDLER_LINENO, so the handler would not know it otherwise);
 *  - hands inih whole lines only: inih 55 reads a line longer than its buffer (200 bytes) as
 *    several lines, so the reader passes the beginning and drops the rest; a key or
 *    continuation line cut that way is refused by the handler ("line is too long"), a long
 *    comment is harmless;
 *  - hands inih a blank line instead of a line with a NUL byte, or of a line inih refused on
 *    an earlier pass (below), and reports it.
 * inih goes on after a line it cannot parse, but only returns the number of the first one.
 * So that every bad line is reported, a pass that ends with a new refused line is run again
 * with that line blanked too (a refused line changes nothing in inih's state, a blank line
 * neither); the last pass reports all of them, in order with the handler's messages.
 *
 * The handler judges each key: unknown sections and keys, bad values, a setting given
 * twice (or under its old name and its new one), an indented line continuing a key that is
 * not a list. inih hands a continuation line's value under the name it kept from the key
 * line, a key line's under a name inside the line it parses: that is how the two are told
 * apart. A list key may be given several times, and continued on indented lines:
 *
 *     malicious_url_patterns = /admin, /wp-admin,
 *                              /.env, /config
 *
 * The file is read into a copy of the defaults; *cfg changes only when the whole file is good.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <nng/nng.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include "config.h"
#include "log.h"

/* nng 1.6 and later tell a TLS peer's certificate subject CN (the API checks tls_admin_names) */
#ifdef NNG_OPT_TLS_PEER_CN
#define CONFIG_TLS_PEER_CN 1
#endif

#define CFG_QUOTE_MAX	 64 /* bytes of a value quoted in a message; longer ones end in "..." */
#define CFG_QUOTE_BUF	 (CFG_QUOTE_MAX * 4 + 8)
#define CFG_MSG_MAX	 1024
#define CFG_ENTRY_MAX	 256 /* copied list entry; longer entries are too long anyway */
#define CFG_ACCOUNT_MAX	 32  /* user and group names */
#define CFG_SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static const char *const cfg_sections[] = {"network", "system", "api", "database", "loader"};
#define CFG_SECTIONS_EXPECTED "expected network, system, api, database or loader"

enum cfg_type {
	CFG_U32,      /* stored multiplied by scale (an old key counting in larger units) */
	CFG_POW2,     /* a CFG_U32 that must be a power of two */
	CFG_DURATION, /* with units; min, max in ms; stored in units of scale ms */
	CFG_BOOL,
	CFG_XDP_MODE,
	CFG_PATH,     /* absolute path */
	CFG_IPC,      /* absolute path, or ipc:// and an absolute path (stored without ipc://) */
	CFG_LISTEN,   /* "" or tcp://HOST:PORT, tls+tcp://HOST:PORT */
	CFG_HTTP,     /* "" or http://HOST:PORT */
	CFG_FILE,     /* "" (none) or an absolute path */
	CFG_NAMES,    /* "" or names separated by commas or blanks, stored "a,b" */
	CFG_ACCOUNT,  /* user or group name */
	CFG_URL_LIST, /* lists from here on */
	CFG_IFACE_LIST,
	CFG_PORT_LIST,
	CFG_CIDR_LIST,
};

struct cfg_key {
	const char *section;
	const char *name;
	enum cfg_type type;
	size_t off;	/* of the field in struct config (scalars); two keys, one setting */
	uint64_t min;	/* numbers */
	uint64_t max;	/* numbers: largest value; strings: longest length */
	uint32_t scale; /* CFG_U32: field = value * scale; CFG_DURATION: the field's unit in ms */
};

#define MS_S   1000ull
#define MS_MIN (60 * MS_S)
#define MS_H   (60 * MS_MIN)
#define MS_D   (24 * MS_H)

/* clang-format off */
#define CFG_NUM(sec, field, lo, hi) \
	{sec, #field, CFG_U32, offsetof(struct config, field), lo, hi, 1}
/* an old name of a duration: a number in its own unit, stored in the field's */
#define CFG_OLD(sec, name, field, lo, hi, scale) \
	{sec, name, CFG_U32, offsetof(struct config, field), lo, hi, scale}
#define CFG_DUR(sec, name, field, lo_ms, hi_ms, unit_ms) \
	{sec, name, CFG_DURATION, offsetof(struct config, field), lo_ms, hi_ms, unit_ms}
#define CFG_STR(sec, field, type, maxlen) \
	{sec, #field, type, offsetof(struct config, field), 0, maxlen, 1}
/* clang-format on */

static const struct cfg_key cfg_keys[] = {
	CFG_NUM("network", max_connections_per_ip, 1, 1000000),
	/* 0 is a permanent ban; any other duration is at least the unit, 1 s */
	CFG_DUR("network", "ban_duration", ban_duration_s, 0, 365 * MS_D, MS_S),
	CFG_OLD("network", "ban_duration_minutes", ban_duration_s, 0, 525600, 60),
	CFG_DUR("network", "monitoring_interval", monitoring_interval_ms, 100, MS_D, 1),
	CFG_OLD("network", "monitoring_interval_seconds", monitoring_interval_ms, 1, 86400, 1000),
	{"network", "malicious_url_patterns", CFG_URL_LIST, 0, 0, 0, 1},
	{"network", "interfaces", CFG_IFACE_LIST, 0, 0, 0, 1},
	{"network", "http_ports", CFG_PORT_LIST, 0, 0, 0, 1},
	{"network", "allowlist", CFG_CIDR_LIST, 0, 0, 0, 1},
	CFG_NUM("network", max_tracked_ips, 1024, 16777216),
	{"network", "dry_run", CFG_BOOL, offsetof(struct config, dry_run), 0, 0, 1},
	CFG_NUM("network", ban_escalation_factor, 1, 100),
	CFG_DUR("network", "ban_max_duration", ban_max_duration_s, MS_S, 3650 * MS_D, MS_S),
	CFG_OLD("network", "ban_max_duration_minutes", ban_max_duration_s, 1, 5256000, 60),
	CFG_NUM("network", cidr_ban_threshold, 0, 256),
	{"network", "event_buffer_kb", CFG_POW2, offsetof(struct config, event_buffer_kb), 64,
	 262144, 1},
	{"network", "url_case_insensitive", CFG_BOOL, offsetof(struct config, url_case_insensitive),
	 0, 0, 1},
	{"network", "url_drop_unseen", CFG_BOOL, offsetof(struct config, url_drop_unseen), 0, 0, 1},
	{"network", "url_stream_guard", CFG_BOOL, offsetof(struct config, url_stream_guard), 0, 0,
	 1},
	CFG_NUM("network", max_bans, 1024, 4194304),

	CFG_NUM("system", cpu_threshold_percent, 1, 100),
	CFG_NUM("system", memory_threshold_percent, 1, 100),
	CFG_NUM("system", disk_io_threshold_mbps, 1, 1000000),
	CFG_NUM("system", anomaly_min_intervals, 1, 1000),
	CFG_NUM("system", anomaly_hysteresis_percent, 0, 50),

	CFG_STR("api", uds_socket_path, CFG_IPC, CFG_SUN_PATH_MAX),
	CFG_STR("api", listen_address, CFG_LISTEN, CONFIG_PATH_MAX - 1),
	CFG_STR("api", tls_cert_file, CFG_FILE, CONFIG_PATH_MAX - 1),
	CFG_STR("api", tls_key_file, CFG_FILE, CONFIG_PATH_MAX - 1),
	CFG_STR("api", tls_client_ca_file, CFG_FILE, CONFIG_PATH_MAX - 1),
	CFG_STR("api", tls_admin_names, CFG_NAMES, CONFIG_PATH_MAX - 1),
	CFG_STR("api", metrics_address, CFG_HTTP, CONFIG_PATH_MAX - 1),
	CFG_STR("api", admin_group, CFG_ACCOUNT, CFG_ACCOUNT_MAX),

	CFG_STR("database", sqlite_path, CFG_PATH, CONFIG_PATH_MAX - 1),
	CFG_NUM("database", max_records, 100, 100000000),
	CFG_NUM("database", max_age_days, 0, 36500),

	CFG_STR("loader", pin_root, CFG_PATH, CONFIG_PATH_MAX - 1),
	CFG_STR("loader", user, CFG_ACCOUNT, CFG_ACCOUNT_MAX),
	CFG_STR("loader", group, CFG_ACCOUNT, CFG_ACCOUNT_MAX),
	{"loader", "xdp_mode", CFG_XDP_MODE, offsetof(struct config, xdp_mode), 0, 0, 1},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- error messages ----------------------------------------------------------------------- */

/* Messages, one a line, into the caller's buffer; what does not fit is cut and ends in "...". */
struct cfg_err {
	char *buf;
	size_t len;
	size_t used;
	bool full;
	unsigned int count;
	const char *file; /* prefix "FILE:LINE: " when set (line 0: "FILE: ") */
	int line;
};

static void cfg_err_init(struct cfg_err *e, char *buf, size_t len, const char *file)
{
	memset(e, 0, sizeof(*e));
	e->buf = buf;
	e->len = buf ? len : 0;
	e->file = file;
	if (e->len)
		buf[0] = '\0';
}

static void cfg_err_put(struct cfg_err *e, const char *msg)
{
	size_t n = strlen(msg), sep = e->used ? 1 : 0;

	e->count++;
	if (!e->len || e->full)
		return;
	if (e->used + sep + n < e->len) {
		if (sep)
			e->buf[e->used++] = '\n';
		memcpy(e->buf + e->used, msg, n + 1);
		e->used += n;
		return;
	}
	e->full = true;
	snprintf(e->buf + e->used, e->len - e->used, "%s%s", sep ? "\n" : "", msg);
	e->used = e->len - 1;
	if (e->len >= 4)
		memcpy(e->buf + e->len - 4, "...", 4);
}

/* "FILE:LINE: " (if the error sink has a file) + what fmt says. */
__attribute__((format(printf, 2, 3))) static void cfg_errf(struct cfg_err *e, const char *fmt, ...)
{
	char msg[CFG_MSG_MAX];
	int n = 0;
	va_list ap;

	if (e->file && e->line > 0)
		n = snprintf(msg, sizeof(msg), "%s:%d: ", e->file, e->line);
	else if (e->file)
		n = snprintf(msg, sizeof(msg), "%s: ", e->file);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	cfg_err_put(e, msg);
}

/* "[section] key: " + what fmt says. */
__attribute__((format(printf, 4, 5))) static void cfg_keyerr(struct cfg_err *e, const char *section,
							     const char *key, const char *fmt, ...)
{
	char msg[CFG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_errf(e, "[%s] %s: %s", section, key, msg);
}

/* 'value' for a message: at most CFG_QUOTE_MAX bytes of it, control bytes as \xNN. */
static const char *cfg_quote_n(const char *v, size_t vlen, char *buf)
{
	size_t i, o = 0;

	buf[o++] = '\'';
	for (i = 0; i < vlen && i < CFG_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)sprintf(buf + o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (vlen > CFG_QUOTE_MAX) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

static const char *cfg_quote(const char *v, char *buf)
{
	return cfg_quote_n(v, strlen(v), buf);
}

/* ---- values ------------------------------------------------------------------------------- */

/* Decimal digits only: -EINVAL for anything else, -ERANGE beyond 2^64 - 1. */
static int cfg_strtou64(const char *s, uint64_t *out)
{
	unsigned long long v;
	int saved = errno, ret = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* empty, sign or leading space */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		ret = -EINVAL;
	else if (errno == ERANGE)
		ret = -ERANGE;
	else
		*out = v;
	errno = saved;
	return ret;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (!out || cfg_strtou64(s, &v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	size_t i;

	for (i = 0; i < ARRAY_LEN(yes); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const cfg_xdp_names[] = {
	[CONFIG_XDP_AUTO] = "auto",
	[CONFIG_XDP_NATIVE] = "native",
	[CONFIG_XDP_GENERIC] = "generic",
	[CONFIG_XDP_TC] = "tc",
};

const char *config_xdp_mode_name(enum config_xdp_mode mode)
{
	if ((unsigned int)mode < ARRAY_LEN(cfg_xdp_names))
		return cfg_xdp_names[mode];
	return "unknown";
}

static bool cfg_has_ctrl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	}
	return false;
}

static int cfg_set_u32(void *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	char q[CFG_QUOTE_BUF];
	uint64_t n;
	int ret;

	ret = cfg_strtou64(v, &n);
	if (ret == -EINVAL) {
		cfg_keyerr(e, k->section, k->name, "value %s is not a number (expected %llu..%llu)",
			   cfg_quote(v, q), (unsigned long long)k->min, (unsigned long long)k->max);
		return -EINVAL;
	}
	if (ret || n < k->min || n > k->max) {
		cfg_keyerr(e, k->section, k->name, "value %s is out of range %llu..%llu",
			   cfg_quote(v, q), (unsigned long long)k->min, (unsigned long long)k->max);
		return -EINVAL;
	}
	if (k->type == CFG_POW2 && (n & (n - 1))) {
		cfg_keyerr(e, k->section, k->name, "value %s is not a power of two",
			   cfg_quote(v, q));
		return -EINVAL;
	}
	*(uint32_t *)field = (uint32_t)(n * k->scale);
	return 0;
}

/* 2^53 ms (285 000 years): far beyond any bound, and exact in a double */
#define CFG_DURATION_MAX_MS (1ull << 53)

int parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {
		/* "ms" before "m" */
		{"ms", 1}, {"s", MS_S}, {"m", MS_MIN}, {"h", MS_H}, {"d", MS_D}, {"w", 7 * MS_D},
	};
	uint64_t total = 0;
	const char *p = s;

	if (!s || !ms || !*s)
		return -EINVAL;
	while (*p) {
		uint64_t n = 0, mult = 0;
		size_t i, len = 0;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (n > CFG_DURATION_MAX_MS)
				return -ERANGE;
			n = n * 10 + (uint64_t)(*p - '0');
		}
		for (i = 0; i < ARRAY_LEN(units) && !mult; i++) {
			len = strlen(units[i].name);
			if (!strncmp(p, units[i].name, len) && !isalpha((unsigned char)p[len]))
				mult = units[i].ms;
		}
		if (!mult)
			return -EINVAL; /* no unit, or an unknown one */
		p += len;
		if (n > (CFG_DURATION_MAX_MS - total) / mult)
			return -ERANGE;
		total += n * mult;
	}
	*ms = total;
	return 0;
}

/* ms as the largest unit that divides it: "100ms", "90s", "7d"; "0" for 0. */
static const char *cfg_duration_str(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {{"d", MS_D}, {"h", MS_H}, {"m", MS_MIN}, {"s", MS_S}};
	size_t i;

	for (i = 0; i < ARRAY_LEN(units) && ms; i++) {
		if (ms % units[i].ms == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(ms / units[i].ms),
				 units[i].name);
			return buf;
		}
	}
	snprintf(buf, len, ms ? "%llums" : "0", (unsigned long long)ms);
	return buf;
}

/*
 * NUMBER UNIT ..., stored in units of k->scale ms. A bare number is refused (which unit?),
 * except 0 where 0 is allowed; "permanent" is 0 too there.
 */
static int cfg_set_duration(void *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	char q[CFG_QUOTE_BUF], lo[32], hi[32], unit[32];
	uint64_t ms;
	int ret;

	cfg_duration_str(k->min ? k->min : k->scale, lo, sizeof(lo));
	cfg_duration_str(k->max, hi, sizeof(hi));
	if (!k->min && (!strcmp(v, "0") || !strcmp(v, "permanent"))) {
		*(uint32_t *)field = 0;
		return 0;
	}
	if (*v && !v[strspn(v, "0123456789")] && v[strspn(v, "0")]) {
		cfg_keyerr(e, k->section, k->name, "value %s needs a unit, e.g. %.20ss",
			   cfg_quote(v, q), v);
		return -EINVAL;
	}
	ret = *v && !v[strspn(v, "0")] ? (ms = 0, 0) : parse_duration_ms(v, &ms);
	if (ret == -EINVAL) {
		cfg_keyerr(e, k->section, k->name,
			   "value %s is not a duration (a number and a unit, ms, s, m, h, d or w, "
			   "such as 90s or 1h30m)",
			   cfg_quote(v, q));
		return -EINVAL;
	}
	if (ret || ms < k->min || ms > k->max || (ms && ms < k->scale)) {
		cfg_keyerr(e, k->section, k->name, "value %s is out of range %s%s..%s",
			   cfg_quote(v, q), k->min ? "" : "0 (permanent), ", lo, hi);
		return -EINVAL;
	}
	if (ms % k->scale) {
		cfg_keyerr(e, k->section, k->name, "value %s is not a multiple of %s",
			   cfg_quote(v, q), cfg_duration_str(k->scale, unit, sizeof(unit)));
		return -EINVAL;
	}
	*(uint32_t *)field = (uint32_t)(ms / k->scale);
	return 0;
}

static int cfg_set_path(char *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	size_t len = strlen(v);
	char q[CFG_QUOTE_BUF];

	if (!len) {
		cfg_keyerr(e, k->section, k->name, "empty value, expected an absolute path");
		return -EINVAL;
	}
	if (v[0] != '/') {
		cfg_keyerr(e, k->section, k->name, "path %s is not absolute", cfg_quote(v, q));
		return -EINVAL;
	}
	if (len > k->max) {
		cfg_keyerr(e, k->section, k->name, "path %s is %zu bytes long, at most %llu",
			   cfg_quote(v, q), len, (unsigned long long)k->max);
		return -EINVAL;
	}
	if (cfg_has_ctrl(v, len)) {
		cfg_keyerr(e, k->section, k->name, "path %s contains a control character",
			   cfg_quote(v, q));
		return -EINVAL;
	}
	memcpy(field, v, len + 1);
	return 0;
}

/* "" (no listener), tcp[46]://HOST:PORT or tls+tcp[46]://HOST:PORT (HOST may be empty). */
static int cfg_set_listen(char *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	static const char *const schemes[] = {"tcp://",	    "tcp4://",	   "tcp6://",
					      "tls+tcp://", "tls+tcp4://", "tls+tcp6://"};
	const char *rest = NULL, *colon;
	size_t len = strlen(v), i;
	char q[CFG_QUOTE_BUF];
	uint64_t port;

	for (i = 0; i < ARRAY_LEN(schemes) && len; i++) {
		if (!strncmp(v, schemes[i], strlen(schemes[i])))
			rest = v + strlen(schemes[i]);
	}
	if (len && (!rest || len > k->max || cfg_has_ctrl(v, len) || strpbrk(v, " \t"))) {
		cfg_keyerr(e, k->section, k->name,
			   "address %s is not tcp://HOST:PORT (or empty for none)",
			   cfg_quote(v, q));
		return -EINVAL;
	}
	if (len) {
		colon = strrchr(rest, ':');
		if (!colon || parse_u64(colon + 1, 1, 65535, &port)) {
			cfg_keyerr(e, k->section, k->name, "address %s needs a port in 1..65535",
				   cfg_quote(v, q));
			return -EINVAL;
		}
	}
	memcpy(field, v, len + 1);
	return 0;
}

/*
 * "" (no listener), or http://HOST:PORT: HOST a name or IPv4 address (A-Z a-z 0-9 . -), an
 * IPv6 address in brackets, or empty for every address; PORT 1..65535; no path (the metrics
 * are at /metrics).
 */
static int cfg_set_http(char *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	static const char scheme[] = "http://";
	size_t len = strlen(v), hlen;
	const char *host = v + strlen(scheme), *colon;
	char q[CFG_QUOTE_BUF], addr[64];
	struct in6_addr a6;
	uint64_t port;

	if (!len) {
		field[0] = '\0';
		return 0;
	}
	if (strncmp(v, scheme, strlen(scheme)) || len > k->max || cfg_has_ctrl(v, len)) {
		cfg_keyerr(e, k->section, k->name,
			   "address %s is not http://HOST:PORT (or empty for none)",
			   cfg_quote(v, q));
		return -EINVAL;
	}
	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		hlen = end ? (size_t)(end - host - 1) : 0;
		if (hlen && hlen < sizeof(addr)) {
			memcpy(addr, host + 1, hlen);
			addr[hlen] = '\0';
		}
		if (!hlen || hlen >= sizeof(addr) || inet_pton(AF_INET6, addr, &a6) != 1) {
			cfg_keyerr(e, k->section, k->name,
				   "address %s: the host in brackets is not an IPv6 address",
				   cfg_quote(v, q));
			return -EINVAL;
		}
		colon = end + 1;
	} else {
		hlen = strspn(host,
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-");
		colon = host + hlen;
	}
	if (*colon == '/' || (*colon == ':' && strchr(colon, '/'))) {
		cfg_keyerr(
			e, k->section, k->name,
			"address %s has a path: give http://HOST:PORT, the metrics are served at "
			"/metrics",
			cfg_quote(v, q));
		return -EINVAL;
	}
	if (*colon != ':' || parse_u64(colon + 1, 1, 65535, &port)) {
		cfg_keyerr(e, k->section, k->name,
			   *colon == ':' || !*colon
				   ? "address %s needs a port in 1..65535"
				   : "address %s is not http://HOST:PORT (or empty for none)",
			   cfg_quote(v, q));
		return -EINVAL;
	}
	memcpy(field, v, len + 1);
	return 0;
}

/*
 * Certificate names: separated by commas or blanks, each of printable characters; stored
 * joined by commas ("" for none).
 */
static int cfg_set_names(char *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	static const char sep[] = ", \t";
	char out[CONFIG_PATH_MAX], q[CFG_QUOTE_BUF];
	size_t o = 0, n;

	if (strlen(v) > k->max || cfg_has_ctrl(v, strlen(v))) {
		cfg_keyerr(e, k->section, k->name,
			   "value %s is not names separated by commas (at most %llu bytes, no "
			   "control characters)",
			   cfg_quote(v, q), (unsigned long long)k->max);
		return -EINVAL;
	}
	for (v += strspn(v, sep); *v; v += strspn(v, sep)) {
		n = strcspn(v, sep);
		if (o + n + 2 > sizeof(out))
			break; /* cannot happen: the input is shorter */
		if (o)
			out[o++] = ',';
		memcpy(out + o, v, n);
		o += n;
		v += n;
	}
	out[o] = '\0';
	memcpy(field, out, o + 1);
	return 0;
}

static int cfg_set_account(char *field, const struct cfg_key *k, const char *v, struct cfg_err *e)
{
	size_t len = strlen(v);
	char q[CFG_QUOTE_BUF];

	if (len < 1 || len > k->max || v[0] == '-' ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len) {
		cfg_keyerr(e, k->section, k->name,
			   "name %s is not a valid user or group name (1..%llu characters of "
			   "A-Z a-z 0-9 . _ -, not starting with '-')",
			   cfg_quote(v, q), (unsigned long long)k->max);
		return -EINVAL;
	}
	memcpy(field, v, len + 1);
	return 0;
}

/* ---- lists -------------------------------------------------------------------------------- */

static const char *cfg_list_noun(enum cfg_type t)
{
	switch (t) {
	case CFG_URL_LIST:
		return "patterns";
	case CFG_IFACE_LIST:
		return "interfaces";
	case CFG_PORT_LIST:
		return "ports";
	default:
		return "networks";
	}
}

static unsigned int *cfg_list_count(struct config *cfg, enum cfg_type t, unsigned int *cap)
{
	switch (t) {
	case CFG_URL_LIST:
		*cap = CONFIG_MAX_URL_PATTERNS;
		return &cfg->n_url_patterns;
	case CFG_IFACE_LIST:
		*cap = CONFIG_MAX_INTERFACES;
		return &cfg->n_interfaces;
	case CFG_PORT_LIST:
		*cap = EBPFMON_MAX_HTTP_PORTS;
		return &cfg->n_http_ports;
	default:
		*cap = CONFIG_MAX_ALLOW;
		return &cfg->n_allowlist;
	}
}

static void cfg_list_clear(struct config *cfg, enum cfg_type t)
{
	switch (t) {
	case CFG_URL_LIST:
		memset(cfg->url_patterns, 0, sizeof(cfg->url_patterns));
		cfg->n_url_patterns = 0;
		break;
	case CFG_IFACE_LIST:
		memset(cfg->interfaces, 0, sizeof(cfg->interfaces));
		cfg->n_interfaces = 0;
		break;
	case CFG_PORT_LIST:
		memset(cfg->http_ports, 0, sizeof(cfg->http_ports));
		cfg->n_http_ports = 0;
		break;
	default:
		memset(cfg->allowlist, 0, sizeof(cfg->allowlist));
		cfg->n_allowlist = 0;
		break;
	}
}

/*
 * Check one list entry (s, len bytes; ent is the same, NUL-terminated and possibly cut) and
 * store it at index n when n < cap. 0, or -EINVAL after a message.
 */

/*
 * Why a URL pattern can never match a canonical path (docs/url-matching.md), or NULL. Only
 * the literal part is judged: up to the first '*' (or '?' or '[' in a glob). A '%' is
 * allowed: a request's %25 decodes to it and an invalid escape stays literal.
 */
static const char *cfg_pattern_noncanonical(const char *pat)
{
	bool glob = strchr(pat, '*') != NULL;
	size_t n = glob ? strcspn(pat, "*?[") : strlen(pat);
	char lit[EBPFMON_URL_PATH_MAX];

	snprintf(lit, sizeof(lit), "%.*s", (int)n, pat);
	if (strpbrk(lit, "?#"))
		return "the path ends at '?' or '#', so a pattern cannot go past them";
	if (strstr(lit, "//"))
		return "a canonical path has no '//' (runs of '/' are merged)";
	if (strstr(lit, "/./") || strstr(lit, "/../"))
		return "a canonical path has no '.' or '..' segment";
	return NULL;
}

static int cfg_list_entry(struct config *cfg, const struct cfg_key *k, const char *s, size_t len,
			  const char *ent, unsigned int n, unsigned int cap, struct cfg_err *e)
{
	char q[CFG_QUOTE_BUF], net[ADDR_STRLEN];
	struct addr_cidr c;
	unsigned int i;
	uint64_t port;
	const char *why;
	int ret;

	cfg_quote_n(s, len, q);
	switch (k->type) {
	case CFG_URL_LIST:
		if (len > EBPFMON_URL_PATH_MAX - 1) {
			cfg_keyerr(e, k->section, k->name,
				   "pattern %s is %zu bytes long, at most %d", q, len,
				   EBPFMON_URL_PATH_MAX - 1);
			return -EINVAL;
		}
		if (strpbrk(ent, " \t\v\f\r\n")) {
			cfg_keyerr(e, k->section, k->name, "pattern %s contains whitespace", q);
			return -EINVAL;
		}
		if (cfg_has_ctrl(s, len)) {
			cfg_keyerr(e, k->section, k->name,
				   "pattern %s contains a control character", q);
			return -EINVAL;
		}
		if (ent[0] != '/' && !strchr(ent, '*')) {
			cfg_keyerr(e, k->section, k->name,
				   "pattern %s must start with '/' or contain '*'", q);
			return -EINVAL;
		}
		if (strspn(ent, "/*") == len) {
			cfg_keyerr(e, k->section, k->name,
				   "pattern %s matches every request: every client would be banned",
				   q);
			return -EINVAL;
		}
		if ((why = cfg_pattern_noncanonical(ent))) {
			cfg_keyerr(e, k->section, k->name,
				   "pattern %s can never match: %s (docs/url-matching.md)", q, why);
			return -EINVAL;
		}
		for (i = 0; i < n && i < cap; i++) {
			if (!strcmp(cfg->url_patterns[i], ent))
				goto dup;
		}
		if (n < cap)
			memcpy(cfg->url_patterns[n], ent, len + 1);
		return 0;

	case CFG_IFACE_LIST:
		if (len < 1 || len > IF_NAMESIZE - 1 || !strcmp(ent, ".") || !strcmp(ent, "..") ||
		    strspn(ent,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-@:") !=
			    len) {
			cfg_keyerr(e, k->section, k->name,
				   "interface name %s is not valid (1..%d characters of "
				   "A-Z a-z 0-9 _ . - @ :)",
				   q, IF_NAMESIZE - 1);
			return -EINVAL;
		}
		for (i = 0; i < n && i < cap; i++) {
			if (!strcmp(cfg->interfaces[i], ent))
				goto dup;
		}
		if (n < cap)
			memcpy(cfg->interfaces[n], ent, len + 1);
		return 0;

	case CFG_PORT_LIST:
		ret = cfg_strtou64(ent, &port);
		if (ret == -EINVAL || len >= CFG_ENTRY_MAX) {
			cfg_keyerr(e, k->section, k->name,
				   "port %s is not a number (expected 1..65535)", q);
			return -EINVAL;
		}
		if (ret || port < 1 || port > 65535) {
			cfg_keyerr(e, k->section, k->name, "port %s is out of range 1..65535", q);
			return -EINVAL;
		}
		for (i = 0; i < n && i < cap; i++) {
			if (cfg->http_ports[i] == port)
				goto dup;
		}
		if (n < cap)
			cfg->http_ports[n] = (uint16_t)port;
		return 0;

	default:
		ret = len < CFG_ENTRY_MAX ? cidr_parse_loose(ent, &c) : -EINVAL;
		if (ret < 0) {
			cfg_keyerr(e, k->section, k->name,
				   "%s is not an IPv4 or IPv6 address or network", q);
			return -EINVAL;
		}
		if (ret > 0) {
			cfg_keyerr(e, k->section, k->name,
				   "%s has host bits set beyond the prefix; did you mean %s?", q,
				   cidr_format(&c, net, sizeof(net)));
			return -EINVAL;
		}
		for (i = 0; i < n && i < cap; i++) {
			if (cfg->allowlist[i].prefixlen == c.prefixlen &&
			    !memcmp(&cfg->allowlist[i].addr, &c.addr, sizeof(c.addr)))
				goto dup;
		}
		if (n < cap)
			cfg->allowlist[n] = c;
		return 0;
	}
dup:
	cfg_keyerr(e, k->section, k->name, "%s is listed twice", q);
	return -EINVAL;
}

/*
 * A comma-separated list: replaces the list, or with append (an indented continuation line)
 * extends it. *total counts the entries given for this key so far, kept or not, so that "too
 * many" names the real number. An empty value is an empty list; one trailing comma is
 * allowed (it reads naturally before a continuation line); other empty entries are errors.
 */
static int cfg_set_list(struct config *cfg, const struct cfg_key *k, const char *value, bool append,
			unsigned int *total, struct cfg_err *e)
{
	unsigned int cap, *count = cfg_list_count(cfg, k->type, &cap);
	unsigned int n, index = 0, given = 0;
	const char *p = value;
	int ret = 0;

	if (!append) {
		cfg_list_clear(cfg, k->type);
		*total = 0;
	}
	n = *count;

	while (isspace((unsigned char)*p))
		p++;
	while (*p) {
		const char *comma = strchr(p, ',');
		const char *next = comma ? comma + 1 : p + strlen(p);
		const char *s = p, *end = comma ? comma : next;
		char ent[CFG_ENTRY_MAX];
		size_t len;

		p = next;
		index++;
		while (s < end && isspace((unsigned char)*s))
			s++;
		while (end > s && isspace((unsigned char)end[-1]))
			end--;
		len = (size_t)(end - s);
		if (!len) {
			/* only blanks after the last comma (a trailing comma) are not an entry */
			if (comma) {
				cfg_keyerr(e, k->section, k->name, "entry %u is empty", index);
				ret = -EINVAL;
			}
			continue;
		}
		snprintf(ent, sizeof(ent), "%.*s", (int)len, s);
		given++;
		if (cfg_list_entry(cfg, k, s, len, ent, n, cap, e)) {
			ret = -EINVAL;
			continue;
		}
		n++;
	}
	*total += given;
	if (given && *total > cap) {
		cfg_keyerr(e, k->section, k->name, "%u %s, at most %u", *total,
			   cfg_list_noun(k->type), cap);
		ret = -EINVAL;
	}
	*count = n < cap ? n : cap;
	return ret;
}

/* ---- keys --------------------------------------------------------------------------------- */

static bool cfg_section_known(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(cfg_sections); i++) {
		if (!strcmp(cfg_sections[i], name))
			return true;
	}
	return false;
}

/* Keys of the [testing] section, which is gone, and what to write instead. */
static const struct {
	const char *name;
	const char *now;
	const char *unit;
	const char *example;
} cfg_gone[] = {
	{"ban_duration_seconds", "ban_duration", "s", "ban_duration = 5s"},
	{"monitoring_interval_ms", "monitoring_interval", "ms", "monitoring_interval = 500ms"},
};

/* A key of the old [testing] section, or one of its keys elsewhere: what to write instead. */
static bool cfg_gone_key(const char *section, const char *name, const char *value,
			 struct cfg_err *e)
{
	bool testing = !strcmp(section, "testing");
	const char *why = testing ? "the [testing] section is no longer read" : "unknown key";
	uint64_t n;
	size_t i;

	for (i = 0; i < ARRAY_LEN(cfg_gone); i++) {
		if (strcmp(name, cfg_gone[i].name))
			continue;
		if (!value || cfg_strtou64(value, &n))
			cfg_keyerr(e, section, name,
				   "%s: write %s under [network] with a unit (e.g. %s)", why,
				   cfg_gone[i].now, cfg_gone[i].example);
		else if (!n && testing)
			/* the default file before [testing] went had both keys at 0 ("not set"):
			 * an upgraded host whose file was kept still starts */
			log_warn("%s:%d: [testing] %s: ignored: the [testing] section is no longer "
				 "read (0 meant 'not set'); delete this line",
				 e->file ? e->file : "config", e->line, name);
		else if (!n)
			cfg_keyerr(e, section, name,
				   "%s, and 0 here meant 'not set': delete this line", why);
		else
			cfg_keyerr(e, section, name,
				   "%s: write \"%s = %llu%s\" under [network] instead", why,
				   cfg_gone[i].now, (unsigned long long)n, cfg_gone[i].unit);
		return true;
	}
	if (testing)
		cfg_keyerr(e, section, name,
			   "the [testing] section is no longer read: durations are set under "
			   "[network], with units (e.g. ban_duration = 5s, monitoring_interval = "
			   "500ms)");
	return testing;
}

/* The key, or NULL after a message (unknown section or key). */
static const struct cfg_key *cfg_lookup(const char *section, const char *name, const char *value,
					struct cfg_err *e)
{
	const char *elsewhere = NULL;
	size_t i;

	if (!strcmp(section, "testing")) {
		cfg_gone_key(section, name, value, e);
		return NULL;
	}
	if (!cfg_section_known(section)) {
		cfg_keyerr(e, section, name, "unknown section (" CFG_SECTIONS_EXPECTED ")");
		return NULL;
	}
	for (i = 0; i < ARRAY_LEN(cfg_keys); i++) {
		if (strcmp(cfg_keys[i].name, name))
			continue;
		if (!strcmp(cfg_keys[i].section, section))
			return &cfg_keys[i];
		elsewhere = cfg_keys[i].section;
	}
	if (elsewhere)
		cfg_keyerr(e, section, name, "unknown key (it belongs in [%s])", elsewhere);
	else if (!cfg_gone_key(section, name, value, e))
		cfg_keyerr(e, section, name, "unknown key");
	return NULL;
}

static int cfg_apply(struct config *cfg, const struct cfg_key *k, const char *v, bool append,
		     unsigned int *total, struct cfg_err *e)
{
	char *field = (char *)cfg + k->off;
	char q[CFG_QUOTE_BUF];
	bool b;

	switch (k->type) {
	case CFG_U32:
	case CFG_POW2:
		return cfg_set_u32(field, k, v, e);
	case CFG_DURATION:
		return cfg_set_duration(field, k, v, e);
	case CFG_BOOL:
		if (cfg_parse_bool(v, &b)) {
			cfg_keyerr(e, k->section, k->name,
				   "value %s is not a boolean (true/false, yes/no, on/off, 1/0)",
				   cfg_quote(v, q));
			return -EINVAL;
		}
		*(bool *)field = b;
		return 0;
	case CFG_XDP_MODE:
		for (size_t i = 0; i < ARRAY_LEN(cfg_xdp_names); i++) {
			if (!strcasecmp(v, cfg_xdp_names[i])) {
				*(enum config_xdp_mode *)field = (enum config_xdp_mode)i;
				return 0;
			}
		}
		cfg_keyerr(e, k->section, k->name,
			   "value %s is not an XDP mode (auto, native, generic or tc)",
			   cfg_quote(v, q));
		return -EINVAL;
	case CFG_PATH:
		return cfg_set_path(field, k, v, e);
	case CFG_FILE:
		if (!*v) {
			*(char *)field = '\0';
			return 0;
		}
		return cfg_set_path(field, k, v, e);
	case CFG_NAMES:
		return cfg_set_names(field, k, v, e);
	case CFG_IPC:
		/* "ipc:///run/x.sock" names the same socket as "/run/x.sock" */
		return cfg_set_path(field, k, strncmp(v, "ipc://", 6) ? v : v + 6, e);
	case CFG_LISTEN:
		return cfg_set_listen(field, k, v, e);
	case CFG_HTTP:
		return cfg_set_http(field, k, v, e);
	case CFG_ACCOUNT:
		return cfg_set_account(field, k, v, e);
	default:
		return cfg_set_list(cfg, k, v, append, total, e);
	}
}

void config_defaults(struct config *cfg)
{
	static const char *const urls[] = {"/admin", "/wp-admin", "/.env", "/config"};
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_connections_per_ip = 100;
	cfg->ban_duration_s = 3600;
	cfg->monitoring_interval_ms = 10000;
	for (i = 0; i < ARRAY_LEN(urls); i++)
		snprintf(cfg->url_patterns[i], sizeof(cfg->url_patterns[i]), "%s", urls[i]);
	cfg->n_url_patterns = ARRAY_LEN(urls);
	cfg->n_interfaces = 0;
	cfg->http_ports[0] = 80;
	cfg->http_ports[1] = 8080;
	cfg->n_http_ports = 2;
	cidr_parse("127.0.0.0/8", &cfg->allowlist[0]);
	cidr_parse("::1", &cfg->allowlist[1]);
	cfg->n_allowlist = 2;
	cfg->max_tracked_ips = 65536;
	cfg->dry_run = false;
	cfg->ban_escalation_factor = 2;
	cfg->ban_max_duration_s = 7 * 86400;
	cfg->cidr_ban_threshold = 0;
	cfg->event_buffer_kb = 4096;
	cfg->url_case_insensitive = false;
	cfg->url_drop_unseen = true;
	cfg->url_stream_guard = true;
	cfg->max_bans = 65536;

	cfg->cpu_threshold_percent = 80;
	cfg->memory_threshold_percent = 85;
	cfg->disk_io_threshold_mbps = 100;
	cfg->anomaly_min_intervals = 3;
	cfg->anomaly_hysteresis_percent = 5;

	snprintf(cfg->uds_socket_path, sizeof(cfg->uds_socket_path), "/run/ebpfmon/api.sock");
	cfg->listen_address[0] = '\0';
	cfg->metrics_address[0] = '\0';
	snprintf(cfg->admin_group, sizeof(cfg->admin_group), "ebpfmon-admin");

	snprintf(cfg->sqlite_path, sizeof(cfg->sqlite_path), "/var/lib/ebpfmon/ebpfmon.db");
	cfg->max_records = 10000;
	cfg->max_age_days = 30;

	snprintf(cfg->pin_root, sizeof(cfg->pin_root), "%s", EBPFMON_PIN_ROOT);
	snprintf(cfg->user, sizeof(cfg->user), "ebpfmon");
	snprintf(cfg->group, sizeof(cfg->group), "ebpfmon");
	cfg->xdp_mode = CONFIG_XDP_AUTO;
}

int config_set(struct config *cfg, const char *section, const char *key, const char *value,
	       char *err, size_t errlen)
{
	const struct cfg_key *k;
	unsigned int total = 0;
	struct config *tmp;
	struct cfg_err e;
	int ret;

	cfg_err_init(&e, err, errlen, NULL);
	if (!cfg || !section || !key || !value)
		return -EINVAL;
	k = cfg_lookup(section, key, value, &e);
	if (!k)
		return -EINVAL;
	/* all or nothing: a list with one bad entry leaves cfg as it was */
	tmp = malloc(sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	*tmp = *cfg;
	ret = cfg_apply(tmp, k, value, false, &total, &e);
	if (!ret)
		*cfg = *tmp;
	free(tmp);
	return ret;
}

/* ---- the file ----------------------------------------------------------------------------- */

#define CFG_BAD_LINES_MAX 100 /* refused lines reported; beyond, the file is not INI at all */

struct cfg_load {
	/* the file */
	const char *data;
	size_t len;
	/* the reader, for one pass */
	size_t pos;
	int lineno;
	const char *line; /* the current line in data, and its length without '\n' */
	size_t line_len;
	bool line_cut;	 /* longer than inih's buffer: inih got the beginning */
	const char *buf; /* the buffer inih parses the line in, and its size */
	size_t buf_len;
	int bad[CFG_BAD_LINES_MAX]; /* lines inih refused, ascending: handed over blank */
	unsigned int n_bad;
	/* the handler, for one pass */
	struct config *cfg;
	struct cfg_err err;
	int set_line[ARRAY_LEN(cfg_keys)]; /* where each key was first given; 0: not yet */
	unsigned int list_total[ARRAY_LEN(cfg_keys)];
	const struct cfg_key *key; /* of the last key line; NULL if unknown or refused */
	char skip_section[64];	   /* an unknown section, reported once, its keys skipped */
};

static bool cfg_is_bad_line(const struct cfg_load *ld, int lineno)
{
	for (unsigned int i = 0; i < ld->n_bad; i++) {
		if (ld->bad[i] == lineno)
			return true;
	}
	return false;
}

/* "syntax error: ..., got 'LINE'" for the current line, without its surrounding blanks. */
static void cfg_syntax_error(struct cfg_load *ld)
{
	const char *s = ld->line, *end = ld->line + ld->line_len;
	char q[CFG_QUOTE_BUF];

	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	cfg_errf(&ld->err, "syntax error: expected [section], key = value or a comment, got %s",
		 cfg_quote_n(s, (size_t)(end - s), q));
}

/*
 * inih reads "[system] cpu_threshold_percent = 5" as the section header alone and drops the
 * rest without a word: refuse text after a section header that is not a comment.
 */
static void cfg_section_tail(struct cfg_load *ld, const char *line)
{
	const char *p = line + strspn(line, " \t"), *end;

	if (*p != '[' || !(end = strchr(p, ']')))
		return;
	end++;
	end += strspn(end, " \t\r");
	if (*end && *end != ';' && *end != '#')
		cfg_errf(&ld->err,
			 "text after the section header %.*s: '%s' (a key goes on a line "
			 "of its own)",
			 (int)(strchr(p, ']') - p + 1), p, end);
}

/* ini_reader: the next line of the file, counted; see the top of this file. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_load *ld = stream;
	size_t max = num > 1 ? (size_t)num - 1 : 0, n;
	const char *nl;

	if (!max || ld->pos >= ld->len)
		return NULL;
	ld->line = ld->data + ld->pos;
	nl = memchr(ld->line, '\n', ld->len - ld->pos);
	ld->line_len = nl ? (size_t)(nl - ld->line) : ld->len - ld->pos;
	ld->pos += ld->line_len + (nl ? 1 : 0);
	ld->lineno++;
	ld->err.line = ld->lineno;
	ld->buf = str;
	ld->buf_len = (size_t)num;
	ld->line_cut = ld->line_len > max;
	n = ld->line_cut ? max : ld->line_len;

	str[0] = '\0';
	if (memchr(ld->line, '\0', ld->line_len))
		cfg_errf(&ld->err, "line contains a NUL byte");
	else if (cfg_is_bad_line(ld, ld->lineno) && ld->line_cut)
		cfg_errf(&ld->err, "line is too long (%zu bytes, at most %zu)", ld->line_len, max);
	else if (cfg_is_bad_line(ld, ld->lineno))
		cfg_syntax_error(ld);
	else {
		memcpy(str, ld->line, n);
		str[n] = '\0';
		cfg_section_tail(ld, str);
	}
	return str;
}

/*
 * Whether inih calls the handler for an indented line that continues the previous key: it
 * passes a key line's name inside the line it parses (the reader's buffer), and a
 * continuation's under the name it kept from that key line.
 */
static bool cfg_continues(const struct cfg_load *ld, const char *name)
{
	uintptr_t p = (uintptr_t)name, b = (uintptr_t)ld->buf;

	return p < b || p >= b + ld->buf_len;
}

/*
 * Why an indented line that continues a value was probably meant otherwise, or NULL: it reads
 * like one of our keys, or a section, or it holds an inline comment (inih 55 reads none on a
 * continuation line).
 */
static const char *cfg_continuation_hint(const char *v, char *buf, size_t len)
{
	size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz_");
	char sep = v[n + strspn(v + n, " \t")];

	if (n && (sep == '=' || sep == ':')) {
		for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++) {
			if (strlen(cfg_keys[i].name) == n && !strncmp(cfg_keys[i].name, v, n)) {
				snprintf(buf, len, "to set %s, start the line at its beginning",
					 cfg_keys[i].name);
				return buf;
			}
		}
	}
	if (v[0] == '[' && strchr(v, ']'))
		return "to start a section, start the line at its beginning";
	if (strstr(v, " ;") || strstr(v, "\t;"))
		return "a comment on a continuation line is part of the value: put it on a line "
		       "of its own";
	return NULL;
}

/* A continuation line: the list goes on, or an error. */
static void cfg_continuation(struct cfg_load *ld, const char *section, const char *name,
			     const char *value)
{
	const struct cfg_key *k = ld->key;
	char q[CFG_QUOTE_BUF], buf[128];
	const char *hint = cfg_continuation_hint(value, buf, sizeof(buf));

	if (!k)
		return; /* the key was refused, and that was said */
	if (hint) {
		cfg_keyerr(&ld->err, section, name, "indented line %s continues this value; %s",
			   cfg_quote(value, q), hint);
		return;
	}
	if (k->type < CFG_URL_LIST) {
		cfg_keyerr(&ld->err, section, name,
			   "indented line %s continues this value, but only lists span lines",
			   cfg_quote(value, q));
		return;
	}
	cfg_apply(ld->cfg, k, value, true, &ld->list_total[k - cfg_keys], &ld->err);
}

/*
 * A key line. A setting is given once: twice, or under its old name and its new one, is an
 * error naming both lines (the value is still checked). A list key may be given again: its
 * entries add to the list.
 */
static void cfg_key_line(struct cfg_load *ld, const char *section, const char *name,
			 const char *value)
{
	const struct cfg_key *k;
	unsigned int idx;
	bool again = false;

	if (!*section) {
		cfg_errf(&ld->err, "%s: key is outside any [section]", name);
		return;
	}
	if (!strcmp(section, ld->skip_section))
		return; /* said at its first key */
	if (strcmp(section, "testing") && !cfg_section_known(section))
		snprintf(ld->skip_section, sizeof(ld->skip_section), "%s", section);
	k = cfg_lookup(section, name, value, &ld->err);
	if (!k)
		return;
	idx = (unsigned int)(k - cfg_keys);
	if (k->type >= CFG_URL_LIST) {
		again = ld->set_line[idx] != 0;
	} else {
		for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++) {
			const struct cfg_key *o = &cfg_keys[i];

			if (!ld->set_line[i] || o->off != k->off || o->type >= CFG_URL_LIST)
				continue;
			if (o == k)
				cfg_keyerr(&ld->err, section, name,
					   "given twice (first on line %d): keep one",
					   ld->set_line[i]);
			else
				cfg_keyerr(&ld->err, section, name,
					   "the same setting as %s on line %d: keep one of the two "
					   "lines",
					   o->name, ld->set_line[i]);
			break; /* one message: the setting was given before */
		}
	}
	if (!ld->set_line[idx])
		ld->set_line[idx] = ld->err.line;
	ld->key = k;
	cfg_apply(ld->cfg, k, value, again, &ld->list_total[idx], &ld->err);
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_load *ld = user;

	if (ld->line_cut) {
		/* a key or continuation line that inih got only the beginning of */
		cfg_errf(&ld->err, "line is too long (%zu bytes, at most %zu)", ld->line_len,
			 ld->buf_len - 1);
		if (!cfg_continues(ld, name))
			ld->key = NULL;
		return 1;
	}
	if (cfg_continues(ld, name)) {
		cfg_continuation(ld, section, name, value);
		return 1;
	}
	ld->key = NULL;
	if (!*name) {
		cfg_syntax_error(ld); /* "= value" */
		return 1;
	}
	cfg_key_line(ld, section, name, value);
	/* errors are collected in ld->err: keep going so that every one is reported */
	return 1;
}

/* The whole file into *data (NUL-terminated, *len bytes). 0 or -errno (-EFBIG: too large). */
static int cfg_read_file(FILE *f, char **data, size_t *len)
{
	size_t cap = 4096, n = 0, got;
	char *buf = NULL, *nbuf;

	for (;;) {
		if (!buf || n + 1 >= cap) {
			cap = buf ? cap * 2 : cap;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				free(buf);
				return -ENOMEM;
			}
			buf = nbuf;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n > CONFIG_FILE_MAX) {
			free(buf);
			return -EFBIG;
		}
		if (!got)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return errno ? -errno : -EIO;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

/*
 * One pass of inih over the file into a fresh copy of the defaults: 0 when every line inih
 * refused is known, 1 when it refused one more (now in ld->bad), or -ENOMEM.
 */
static int cfg_pass(struct cfg_load *ld, const char *path)
{
	int ret;

	ld->pos = 0;
	ld->lineno = 0;
	ld->key = NULL;
	ld->skip_section[0] = '\0';
	memset(ld->set_line, 0, sizeof(ld->set_line));
	memset(ld->list_total, 0, sizeof(ld->list_total));
	cfg_err_init(&ld->err, ld->err.buf, ld->err.len, path);
	config_defaults(ld->cfg);

	ret = ini_parse_stream(cfg_reader, ld, cfg_handler, ld);
	if (ret < 0)
		return -ENOMEM;
	if (ret == 0 || cfg_is_bad_line(ld, ret))
		return 0;
	if (ld->n_bad == CFG_BAD_LINES_MAX) {
		ld->err.line = ret;
		cfg_errf(&ld->err,
			 "syntax error, and more after it: only the first %d are reported",
			 CFG_BAD_LINES_MAX);
		return 0;
	}
	/* lines are refused in order: the new one comes after every known one */
	ld->bad[ld->n_bad++] = ret;
	return 1;
}

/* Whether path can be read by this process and holds a PEM block whose label contains what. */
static int cfg_check_pem(struct cfg_err *e, const char *key, const char *path, const char *what)
{
	char buf[64 * 1024];
	size_t n;
	FILE *f;

	if (!path[0]) {
		cfg_keyerr(e, "api", key, "required by a tls+tcp:// listen_address");
		return -EINVAL;
	}
	f = fopen(path, "re");
	if (!f) {
		cfg_keyerr(e, "api", key, "cannot read %s: %s%s", path, strerror(errno),
			   errno == EACCES ? " (it must be readable by the analyzer's user)" : "");
		return -EINVAL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (const char *b = strstr(buf, "-----BEGIN "); b; b = strstr(b + 1, "-----BEGIN ")) {
		const char *end = strstr(b + 11, "-----");

		if (end && memmem(b, (size_t)(end - b), what, strlen(what)))
			return 0;
	}
	cfg_keyerr(e, "api", key, "%s holds no PEM %s (-----BEGIN ...%s-----)", path, what, what);
	return -EINVAL;
}

/*
 * What one key cannot check alone: a tls+tcp:// listener needs its certificate, key and
 * client CA, readable now (at start and on reload), and names only when the peer's CN is known.
 */
static void cfg_check_tls(const struct config *cfg, struct cfg_err *e)
{
	e->line = 0;
	if (!strncmp(cfg->listen_address, "tls+", 4)) {
		cfg_check_pem(e, "tls_cert_file", cfg->tls_cert_file, "CERTIFICATE");
		cfg_check_pem(e, "tls_key_file", cfg->tls_key_file, "PRIVATE KEY");
		cfg_check_pem(e, "tls_client_ca_file", cfg->tls_client_ca_file, "CERTIFICATE");
	}
#ifndef CONFIG_TLS_PEER_CN
	if (cfg->tls_admin_names[0])
		cfg_keyerr(e, "api", "tls_admin_names",
			   "this build's libnng (before 1.6) cannot tell a TLS peer's certificate "
			   "name, so names cannot be checked: leave it empty and have the CA of "
			   "tls_client_ca_file sign only the clients that may change bans");
#endif
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct cfg_load *ld = NULL;
	char *data = NULL;
	struct cfg_err e;
	struct stat st;
	size_t len = 0;
	FILE *f;
	int ret;

	cfg_err_init(&e, err, errlen, path);
	if (!path || !cfg)
		return -EINVAL;
	f = fopen(path, "re");
	ret = !f ? -errno : fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode) ? -EISDIR : 0;
	if (ret) {
		cfg_errf(&e, "cannot open: %s", strerror(-ret));
		if (f)
			fclose(f);
		return ret;
	}
	ret = cfg_read_file(f, &data, &len);
	fclose(f);
	if (ret == -EFBIG) {
		cfg_errf(&e, "larger than %d bytes: not a configuration file", CONFIG_FILE_MAX);
		return ret;
	}
	if (ret) {
		cfg_errf(&e, "cannot read: %s", strerror(-ret));
		return ret;
	}
	ld = calloc(1, sizeof(*ld));
	if (ld)
		ld->cfg = malloc(sizeof(*ld->cfg));
	if (!ld || !ld->cfg) {
		ret = -ENOMEM;
		cfg_errf(&e, "cannot read: %s", strerror(-ret));
		goto out;
	}
	ld->data = data;
	ld->len = len;
	ld->err = e;
	do
		ret = cfg_pass(ld, path);
	while (ret == 1);
	e = ld->err;
	if (ret < 0) {
		e.line = 0;
		cfg_errf(&e, "cannot read: %s", strerror(-ret));
		goto out;
	}
	if (!e.count)
		cfg_check_tls(ld->cfg, &e);
	if (e.count) {
		ret = -EINVAL;
		goto out;
	}
	*cfg = *ld->cfg;
	ret = 0;
out:
	if (ld)
		free(ld->cfg);
	free(ld);
	free(data);
	return ret;
}
