/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Assertions on text output shared by the ebpfmonctl tests (include after cmocka.h). */
#ifndef EBPFMON_TEST_CTL_TEXT_H
#define EBPFMON_TEST_CTL_TEXT_H

#include <stdio.h>
#include <string.h>

static inline void assert_contains(const char *text, const char *want)
{
	if (!text || !strstr(text, want))
		fail_msg("output does not contain \"%s\":\n%s", want, text ? text : "(no output)");
}

static inline void assert_lacks(const char *text, const char *unwanted)
{
	if (text && strstr(text, unwanted))
		fail_msg("output contains \"%s\":\n%s", unwanted, text);
}

/* The line of text that contains word (copied into buf), or fail. */
static inline const char *line_with(const char *text, const char *word, char *buf, size_t len)
{
	const char *hit = strstr(text, word), *start, *end;

	if (!hit)
		fail_msg("no line with \"%s\" in:\n%s", word, text);
	for (start = hit; start > text && start[-1] != '\n'; start--)
		;
	end = strchr(hit, '\n');
	if (!end)
		end = hit + strlen(hit);
	snprintf(buf, len, "%.*s", (int)(end - start), start);
	return buf;
}

#endif
