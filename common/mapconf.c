// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "mapconf.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mapwalk.h"

void mapconf_url_rule(const char *pattern, unsigned int id, bool nocase,
		      struct ebpfmon_url_key *key, struct ebpfmon_url_rule *rule)
{
	size_t len = strcspn(pattern, "*");

	memset(key, 0, sizeof(*key));
	if (len > sizeof(key->path))
		len = sizeof(key->path);
	memcpy(key->path, pattern, len);
	for (size_t i = 0; nocase && i < len; i++)
		if (key->path[i] >= 'A' && key->path[i] <= 'Z')
			key->path[i] += 'a' - 'A';
	key->prefixlen = len * 8;
	rule->id = id;
	rule->action = pattern[len] == '*' ? EBPFMON_URL_REPORT : EBPFMON_URL_DROP;
}

struct prune {
	unsigned char *keys;
	size_t n, cap, key_size;
};

static int prune_collect(const void *key, const void *value, void *ctx)
{
	struct prune *pr = ctx;

	(void)value;
	if (pr->n == pr->cap) {
		size_t cap = pr->cap ? pr->cap * 2 : 64;
		unsigned char *k = realloc(pr->keys, cap * pr->key_size);

		if (!k)
			return -ENOMEM;
		pr->keys = k;
		pr->cap = cap;
	}
	memcpy(pr->keys + pr->n++ * pr->key_size, key, pr->key_size);
	return 0;
}

/* Delete every key of map fd for which keep(key) is false. */
static int map_prune(int fd, size_t key_size, bool (*keep)(const void *key, const void *arg),
		     const void *arg, const char *name)
{
	struct prune pr = {.key_size = key_size};
	long n = maps_walk(fd, key_size, 0, prune_collect, &pr);
	int err = 0;

	if (n < 0) {
		log_error("cannot read map %s: %s", name, strerror((int)-n));
		free(pr.keys);
		return (int)n;
	}
	for (size_t i = 0; i < pr.n; i++) {
		if (keep(pr.keys + i * key_size, arg))
			continue;
		if (bpf_map_delete_elem(fd, pr.keys + i * key_size) && errno != ENOENT) {
			err = -errno;
			log_error("cannot remove a stale entry from map %s: %s", name,
				  strerror(errno));
		}
	}
	free(pr.keys);
	return err;
}

static bool allow_keep(const void *key, const void *arg)
{
	const struct config *cfg = arg;

	for (unsigned int i = 0; i < cfg->n_allowlist; i++) {
		struct ebpfmon_lpm_key k;

		cidr_to_lpm_key(&cfg->allowlist[i], &k);
		if (!memcmp(&k, key, sizeof(k)))
			return true;
	}
	return false;
}

static bool url_keep(const void *key, const void *arg)
{
	const struct config *cfg = arg;

	for (unsigned int i = 0; i < cfg->n_url_patterns; i++) {
		struct ebpfmon_url_key k;
		struct ebpfmon_url_rule r;

		mapconf_url_rule(cfg->url_patterns[i], i + 1, cfg->url_case_insensitive, &k, &r);
		if (!memcmp(&k, key, sizeof(k)))
			return true;
	}
	return false;
}

static bool map_empty(int fd)
{
	unsigned char key[256];

	return bpf_map_get_next_key(fd, NULL, key) != 0;
}

void mapconf_settings(const struct config *cfg, __u32 old_flags, struct ebpfmon_settings *set)
{
	unsigned int i, n;

	memset(set, 0, sizeof(*set));
	set->max_conn_per_ip = cfg->max_connections_per_ip;
	for (i = 0, n = 0; i < cfg->n_http_ports && n < EBPFMON_MAX_HTTP_PORTS; i++)
		set->http_ports[n++] = cfg->http_ports[i];
	if (n && cfg->n_url_patterns)
		set->flags |= EBPFMON_F_URL_MATCH;
	if (cfg->dry_run)
		set->flags |= EBPFMON_F_DRY_RUN;
	if (cfg->url_case_insensitive)
		set->flags |= EBPFMON_F_URL_NOCASE;
	if (cfg->url_drop_unseen)
		set->flags |= EBPFMON_F_DROP_UNSEEN;
	set->flags |= old_flags & EBPFMON_F_BAN_NETS;
	set->drop_sample_mask = 0xffff;
}

/* allow_added: allow_nets gained an entry, so XDP's notes on bans no longer hold */
static int write_settings(const struct mapconf_fds *fds, const struct config *cfg, bool allow_added)
{
	struct ebpfmon_settings set, old = {};
	__u32 zero = 0;
	int err;

	bpf_map_lookup_elem(fds->settings, &zero, &old); /* a fresh map reads as zeros */
	if (!map_empty(fds->ban_nets))
		old.flags |= EBPFMON_F_BAN_NETS;
	mapconf_settings(cfg, old.flags, &set);
	set.allow_gen = old.allow_gen + allow_added;
	set.ban_gen = old.ban_gen + 1; /* EBPFMON_F_BAN_NETS may be new: notes no longer hold */
	set.note_seed = old.note_seed;
	/* a new map: a seed no sender knows (a short read leaves 0, which still works) */
	while (!set.note_seed &&
	       getrandom(&set.note_seed, sizeof(set.note_seed), 0) != sizeof(set.note_seed))
		if (errno != EINTR)
			break;
	if (bpf_map_update_elem(fds->settings, &zero, &set, BPF_ANY)) {
		err = -errno;
		log_error("cannot write map settings: %s", strerror(errno));
		return err;
	}
	return 0;
}

/* settings.allow_gen + 1 alone, for a writer that leaves the rest of the settings alone. */
static int bump_allow_gen(const struct mapconf_fds *fds)
{
	struct ebpfmon_settings set;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fds->settings, &zero, &set) == 0) {
		set.allow_gen++;
		if (bpf_map_update_elem(fds->settings, &zero, &set, BPF_ANY) == 0)
			return 0;
	}
	log_error("cannot write map settings: %s", strerror(errno));
	return -errno;
}

int mapconf_ban_written(int settings_fd)
{
	struct ebpfmon_settings set;
	__u32 zero = 0;
	int err;

	if (bpf_map_lookup_elem(settings_fd, &zero, &set) == 0) {
		set.ban_gen++;
		if (bpf_map_update_elem(settings_fd, &zero, &set, BPF_ANY) == 0)
			return 0;
	}
	err = -errno;
	log_error("cannot write map settings (ban_gen): %s; a new ban may take up to 1 s",
		  strerror(errno));
	return err;
}

int mapconf_apply(const struct mapconf_fds *fds, const struct config *cfg, unsigned int what)
{
	__u32 one = 1, had;
	char buf[ADDR_STRLEN];
	bool allow_added = false;
	unsigned int i;
	int err;

	if (!(what & MAPCONF_RULES))
		goto settings;
	for (i = 0; i < cfg->n_allowlist; i++) {
		struct ebpfmon_lpm_key k;

		cidr_to_lpm_key(&cfg->allowlist[i], &k);
		allow_added |= bpf_map_lookup_elem(fds->allow_nets, &k, &had) != 0;
		if (bpf_map_update_elem(fds->allow_nets, &k, &one, BPF_ANY)) {
			err = -errno;
			log_error("cannot add %s to map allow_nets: %s",
				  cidr_format(&cfg->allowlist[i], buf, sizeof(buf)),
				  strerror(errno));
			return err;
		}
	}
	err = map_prune(fds->allow_nets, sizeof(struct ebpfmon_lpm_key), allow_keep, cfg,
			EBPFMON_MAP_ALLOW_NETS);
	if (err)
		return err;

	/* Walk backwards so that the first pattern wins when two share a kernel prefix, and a
	 * drop rule is never weakened by a glob's report rule with the same prefix. */
	for (i = cfg->n_url_patterns; i-- > 0;) {
		struct ebpfmon_url_key k;
		struct ebpfmon_url_rule r, old;

		mapconf_url_rule(cfg->url_patterns[i], i + 1, cfg->url_case_insensitive, &k, &r);
		if (r.action == EBPFMON_URL_REPORT &&
		    !bpf_map_lookup_elem(fds->url_rules, &k, &old) &&
		    old.action == EBPFMON_URL_DROP && old.id > i + 1)
			continue;
		if (bpf_map_update_elem(fds->url_rules, &k, &r, BPF_ANY)) {
			err = -errno;
			log_error("cannot add URL pattern '%s' to map url_rules: %s",
				  cfg->url_patterns[i], strerror(errno));
			return err;
		}
	}
	err = map_prune(fds->url_rules, sizeof(struct ebpfmon_url_key), url_keep, cfg,
			EBPFMON_MAP_URL_RULES);
	if (err)
		return err;
settings:
	if (what & MAPCONF_SETTINGS)
		return write_settings(fds, cfg, allow_added);
	return allow_added ? bump_allow_gen(fds) : 0;
}
