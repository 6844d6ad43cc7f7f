/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Logging to stderr. Under systemd (JOURNAL_STREAM set) each line starts with its syslog
 * priority ("<3>"), so journald files it at the right level; on a terminal it starts with
 * the program name and the level word instead.
 */
#ifndef EBPFMON_LOG_H
#define EBPFMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Program name for the prefix and the lowest level printed (default: info). */
void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug", "info", "warn"/"warning", "error" -> 0 and *out, or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

/*
 * Structured entries for the decisions an operator searches for (bans, unbans, anomalies):
 * under journald each is one journal entry with a stable MESSAGE_ID (docs/operations.md lists
 * them) and its fields, so that `journalctl MESSAGE_ID=...` or
 * `journalctl EBPFMON_ADDRESS=198.51.100.7` finds it; elsewhere it is the same line log_msg()
 * prints.
 */
#define LOG_MID_BAN	       "100b12c5333a4931b5494b767a39e081" /* an address banned */
#define LOG_MID_WOULD_BAN      "bc48b79ffa8e4ec3bbcf02cc2496a547" /* dry run: would ban */
#define LOG_MID_NET_BAN	       "6056127d97fb4f3d83eb1265642cae89" /* a network banned */
#define LOG_MID_UNBAN	       "9e4142525f93446fb5c73063fb7fb7b0" /* lifted by hand (API) */
#define LOG_MID_BAN_ENDED      "e35c5a0a6a684b8584b3f5609eec3eaf" /* expired */
#define LOG_MID_BAN_REMOVED    "a44218e6327b4f95b81b4a88cb62a7a3" /* removed from the map */
#define LOG_MID_ANOMALY_OPEN   "af30648b864b4973850ca0ebe10efa3d"
#define LOG_MID_ANOMALY_CLOSED "98077d7e12be4364bc30965eca258492"

/* The fields and count arguments of log_event() from an array of struct log_field. */
#define LOG_FIELDS(f) (f), (sizeof(f) / sizeof((f)[0]))

/* One field of a structured entry: a journal field name (A-Z, 0-9, _) and its text. */
struct log_field {
	const char *name;
	const char *value;
};

/*
 * Sends one structured entry to the journal: returns 0 when it was sent, else -errno (the entry
 * is then printed as a line). Set by a program that links libsystemd
 * (daemon_journal_attach()); without one, entries are lines.
 */
typedef int (*log_journal_fn)(int priority, const char *message_id, const struct log_field *fields,
			      size_t n, const char *message);
void log_set_journal_sink(log_journal_fn fn);

/* A structured entry: message_id (32 hex digits), n fields, the message as for log_msg(). */
void log_event(enum log_level level, const char *message_id, const struct log_field *fields,
	       size_t n, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
