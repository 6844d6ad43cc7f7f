// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Logging to stderr, one write per message.
 *
 * Under systemd, stderr is a stream to journald and JOURNAL_STREAM holds its "device:inode".
 * Each line then starts with "<N>", its syslog priority, which journald strips and files the
 * line at. JOURNAL_STREAM is inherited by children whose stderr may point elsewhere, so the
 * prefix is used only when stderr really is that stream (as sd_journal_stream_fd(3) advises).
 * Everywhere else a line reads "PROGNAME: LEVEL: message".
 *
 * A message with several lines gets the prefix on every line, so that journald files each
 * line at the right priority and a terminal shows which program spoke.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define LOG_PROGNAME_MAX 64
#define LOG_LINE_MAX	 1024 /* messages this long and shorter never touch the heap */

static char log_progname[LOG_PROGNAME_MAX] = "ebpfmon";
static int log_level = LOG_LVL_INFO;
/* -1 until decided, then 0 (plain prefix) or 1 (journald priority prefix). */
static int log_journal = -1;
static log_journal_fn log_journal_sink;

static const char *const log_words[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const int log_syslog_prio[] = {
	[LOG_LVL_ERROR] = 3,
	[LOG_LVL_WARN] = 4,
	[LOG_LVL_INFO] = 6,
	[LOG_LVL_DEBUG] = 7,
};

static enum log_level log_clamp(enum log_level level)
{
	if ((int)level < LOG_LVL_ERROR)
		return LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		return LOG_LVL_DEBUG;
	return level;
}

/* True when stderr is the journald stream named by JOURNAL_STREAM ("DEV:INO"). */
static bool log_stderr_is_journal(void)
{
	unsigned long long dev, ino;
	const char *env;
	struct stat st;
	int end = 0;

	env = getenv("JOURNAL_STREAM");
	if (!env || !*env)
		return false;
	/* NOLINTNEXTLINE(cert-err34-c): an overflowing value matches no stderr: not the journal */
	if (sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2 || env[end] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static bool log_use_journal(void)
{
	int j = __atomic_load_n(&log_journal, __ATOMIC_RELAXED);

	if (j < 0) {
		j = log_stderr_is_journal();
		__atomic_store_n(&log_journal, j, __ATOMIC_RELAXED);
	}
	return j;
}

void log_init(const char *progname, enum log_level level)
{
	int saved = errno;

	if (progname && *progname) {
		const char *slash = strrchr(progname, '/');

		snprintf(log_progname, sizeof(log_progname), "%s", slash ? slash + 1 : progname);
	}
	log_set_level(level);
	__atomic_store_n(&log_journal, log_stderr_is_journal(), __ATOMIC_RELAXED);
	errno = saved;
}

void log_set_level(enum log_level level)
{
	__atomic_store_n(&log_level, log_clamp(level), __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN},   {"warning", LOG_LVL_WARN},
		{"info", LOG_LVL_INFO},	  {"debug", LOG_LVL_DEBUG},
	};
	size_t i;

	if (!s || !out)
		return -EINVAL;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(s, names[i].name)) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Copy msg into out, with prefix before every line and a newline after the last one.
 * Returns the length written; with out == NULL only counts.
 */
static size_t log_compose(char *out, const char *prefix, const char *msg)
{
	size_t plen = strlen(prefix), n = 0;
	const char *p = msg;

	do {
		const char *nl = strchr(p, '\n');
		size_t llen = nl ? (size_t)(nl - p) : strlen(p);

		if (out) {
			memcpy(out + n, prefix, plen);
			memcpy(out + n + plen, p, llen);
			out[n + plen + llen] = '\n';
		}
		n += plen + llen + 1;
		p = nl ? nl + 1 : NULL;
	} while (p && *p); /* a trailing newline ends the message, it starts no empty line */
	if (out)
		out[n] = '\0';
	return n;
}

/* fmt is a printf format taken from the caller: let the compiler check it as one */
__attribute__((format(printf, 2, 0))) void log_vmsg(enum log_level level, const char *fmt,
						    va_list ap);

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char msg_stack[LOG_LINE_MAX], out_stack[LOG_LINE_MAX + 128], prefix[LOG_PROGNAME_MAX + 16];
	char *msg = msg_stack, *out = out_stack, *heap_msg = NULL, *heap_out = NULL;
	int saved = errno, len;
	size_t need;
	va_list aq;

	level = log_clamp(level);
	if (level > log_get_level())
		return;

	/* %m in fmt must print the caller's errno */
	errno = saved;
	va_copy(aq, ap);
	len = vsnprintf(msg_stack, sizeof(msg_stack), fmt, aq);
	va_end(aq);
	if (len < 0) {
		snprintf(msg_stack, sizeof(msg_stack), "(unprintable log message: %s)", fmt);
	} else if ((size_t)len >= sizeof(msg_stack)) {
		heap_msg = malloc((size_t)len + 1);
		if (heap_msg) {
			errno = saved;
			vsnprintf(heap_msg, (size_t)len + 1, fmt, ap);
			msg = heap_msg;
		} /* else print the truncated message */
	}

	if (log_use_journal())
		snprintf(prefix, sizeof(prefix), "<%d>", log_syslog_prio[level]);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s: ", log_progname, log_words[level]);

	need = log_compose(NULL, prefix, msg) + 1;
	if (need > sizeof(out_stack)) {
		heap_out = malloc(need);
		out = heap_out;
	}
	if (out) {
		log_compose(out, prefix, msg);
		fputs(out, stderr);
	} else {
		/* out of memory: still say it, with one prefix for the whole message */
		fprintf(stderr, "%s%s\n", prefix, msg);
	}
	free(heap_out);
	free(heap_msg);
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_set_journal_sink(log_journal_fn fn)
{
	__atomic_store_n(&log_journal_sink, fn, __ATOMIC_RELEASE);
}

void log_event(enum log_level level, const char *message_id, const struct log_field *fields,
	       size_t n, const char *fmt, ...)
{
	log_journal_fn sink = __atomic_load_n(&log_journal_sink, __ATOMIC_ACQUIRE);
	char msg[LOG_LINE_MAX];
	int saved = errno;
	va_list ap;

	level = log_clamp(level);
	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap); /* entries are one short line */
	va_end(ap);
	if (!sink || !log_use_journal() ||
	    sink(log_syslog_prio[level], message_id, fields, n, msg) != 0)
		log_msg(level, "%s", msg);
	errno = saved;
}
