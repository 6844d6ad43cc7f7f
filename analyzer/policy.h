/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Ban policy: turns kernel events and periodic scans into bans in the `bans` map, honouring
 * the allowlist, dry run and escalation of repeat offenders.
 */
#ifndef EBPFMON_POLICY_H
#define EBPFMON_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ebpfmon_abi.h"
#include "maps.h"

struct policy_offence {
	struct ebpfmon_addr addr;
	uint32_t bans;	       /* bans so far */
	uint64_t dry_until_ns; /* dry run: "would be banned" until then, so said once */
};

struct policy {
	const struct config *cfg;
	const struct maps *maps;
	struct policy_offence *hist;
	size_t n_hist, cap_hist;
	uint64_t bans, would_bans, expired; /* since start, for the status line */
};

void policy_init(struct policy *p, const struct config *cfg, const struct maps *maps);
void policy_free(struct policy *p);

/* Ban duration in seconds for an address banned `prior` times before; 0 = permanent. */
uint64_t policy_duration_s(const struct config *cfg, uint32_t prior);

/* Whether a URL-hit path is malicious by cfg's patterns: the pattern it matched or NULL.
 * Prefix patterns compare the start of the path; patterns with '*' are fnmatch(3) globs
 * (case-sensitive, '*' also matches '/'), matched against the whole path. */
const char *policy_url_match(const struct config *cfg, const char *path);

/*
 * Ban addr for reason (detail is logged): nothing when it is allowlisted or already banned;
 * "would ban" only in dry run. Returns 1 when it banned (or would have), 0 when not, -errno.
 */
int policy_ban(struct policy *p, const struct ebpfmon_addr *addr, enum ebpfmon_ban_reason reason,
	       const char *detail);

/* One ring-buffer record; a malformed one is logged and dropped. */
int policy_on_event(struct policy *p, const void *data, size_t len);

/* The periodic pass: addresses over the limit that no event reported, and expired bans. */
void policy_scan(struct policy *p);

#endif
