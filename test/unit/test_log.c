// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Logging: the line format on a terminal and under journald, levels, and errno kept. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static char cap_path[64];
static int saved_stderr = -1;

/* Send stderr to a fresh temporary file until capture_end(). */
static void capture_begin(void)
{
	int fd;

	snprintf(cap_path, sizeof(cap_path), "/tmp/ebpfmon-log-XXXXXX");
	fd = mkstemp(cap_path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Restore stderr and return what was written (static buffer). */
static const char *capture_end(void)
{
	static char buf[16384];
	ssize_t n;
	int fd;

	fflush(stderr);
	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	fd = open(cap_path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	unlink(cap_path);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("/usr/sbin/ebpfmon-test", LOG_LVL_INFO);
	return 0;
}

static void test_level_parse(void **state)
{
	enum log_level l = LOG_LVL_INFO;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_LVL_INFO);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_level_parse("warning", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_level_parse("ERROR", &l), 0);
	assert_int_equal(l, LOG_LVL_ERROR);

	assert_int_equal(log_level_parse("verbose", &l), -EINVAL);
	assert_int_equal(log_level_parse("", &l), -EINVAL);
	assert_int_equal(log_level_parse(NULL, &l), -EINVAL);
	assert_int_equal(log_level_parse("info", NULL), -EINVAL);
	assert_int_equal(l, LOG_LVL_ERROR);
}

static void test_plain_format(void **state)
{
	(void)state;
	capture_begin();
	log_info("listening on %s", "ipc:///run/ebpfmon/api.sock");
	log_warn("already has a newline\n");
	log_error("two\nlines");
	log_debug("not shown at info");
	assert_string_equal(capture_end(),
			    "ebpfmon-test: info: listening on ipc:///run/ebpfmon/api.sock\n"
			    "ebpfmon-test: warning: already has a newline\n"
			    "ebpfmon-test: error: two\n"
			    "ebpfmon-test: error: lines\n");
}

static void test_levels(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_WARN);
	assert_int_equal(log_get_level(), LOG_LVL_WARN);
	capture_begin();
	log_info("hidden");
	log_warn("shown");
	log_error("shown too");
	assert_string_equal(capture_end(), "ebpfmon-test: warning: shown\n"
					   "ebpfmon-test: error: shown too\n");

	log_set_level(LOG_LVL_DEBUG);
	capture_begin();
	log_debug("x=%d", 3);
	assert_string_equal(capture_end(), "ebpfmon-test: debug: x=3\n");
	log_set_level(LOG_LVL_INFO);
}

static void test_journal_format(void **state)
{
	char env[64];
	struct stat st;

	(void)state;
	capture_begin();
	/* JOURNAL_STREAM names the stream stderr is connected to, as systemd sets it */
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init("ebpfmon-test", LOG_LVL_DEBUG);
	log_error("e");
	log_warn("w");
	log_info("i\n");
	log_debug("d1\nd2");
	unsetenv("JOURNAL_STREAM");
	log_init("ebpfmon-test", LOG_LVL_INFO);
	assert_string_equal(capture_end(), "<3>e\n<4>w\n<6>i\n<7>d1\n<7>d2\n");
}

static void test_journal_stream_elsewhere(void **state)
{
	(void)state;
	/* inherited from a service, but stderr is no longer that stream: plain lines */
	setenv("JOURNAL_STREAM", "1:1", 1);
	capture_begin();
	log_init("ebpfmon-test", LOG_LVL_INFO);
	log_info("plain");
	unsetenv("JOURNAL_STREAM");
	log_init("ebpfmon-test", LOG_LVL_INFO);
	assert_string_equal(capture_end(), "ebpfmon-test: info: plain\n");
}

static void test_errno_and_long(void **state)
{
	static char big[5000], want[5100];
	const char *out;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	capture_begin();
	errno = ENOENT;
	log_error("open: %m");
	assert_int_equal(errno, ENOENT);
	log_info("%s", big);
	assert_int_equal(errno, ENOENT);
	out = capture_end();
	snprintf(want, sizeof(want), "ebpfmon-test: error: open: %s\nebpfmon-test: info: %s\n",
		 strerror(ENOENT), big);
	assert_string_equal(out, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test_setup(test_plain_format, setup),
		cmocka_unit_test_setup(test_levels, setup),
		cmocka_unit_test_setup(test_journal_format, setup),
		cmocka_unit_test_setup(test_journal_stream_elsewhere, setup),
		cmocka_unit_test_setup(test_errno_and_long, setup),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
