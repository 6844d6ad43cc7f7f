// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "mapconf.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void mapconf_url_rule(const char *pattern, unsigned int id, struct ebpfmon_url_key *key,
		      struct ebpfmon_url_rule *rule)
{
	size_t len = strcspn(pattern, "*");

	memset(key, 0, sizeof(*key));
	if (len > sizeof(key->path))
		len = sizeof(key->path);
	memcpy(key->path, pattern, len);
	key->prefixlen = len * 8;
	rule->id = id;
	rule->action = pattern[len] == '*' ? EBPFMON_URL_REPORT : EBPFMON_URL_DROP;
}

/* Delete every key of map fd for which keep(key) is false. */
static int map_prune(int fd, size_t key_size, bool (*keep)(const void *key, const void *arg),
		     const void *arg, const char *name)
{
	unsigned char *keys = NULL, *cur = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	for (;;) {
		unsigned char next[256];

		if (bpf_map_get_next_key(fd, cur, next))
			break;
		if (n == cap) {
			unsigned char *k = realloc(keys, (cap = cap ? cap * 2 : 64) * key_size);

			if (!k) {
				err = -ENOMEM;
				goto out;
			}
			keys = k;
		}
		cur = keys + n++ * key_size;
		memcpy(cur, next, key_size);
	}
	for (size_t i = 0; i < n; i++) {
		if (keep(keys + i * key_size, arg))
			continue;
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT) {
			err = -errno;
			log_error("cannot remove a stale entry from map %s: %s", name,
				  strerror(errno));
		}
	}
out:
	free(keys);
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

		mapconf_url_rule(cfg->url_patterns[i], i + 1, &k, &r);
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

int mapconf_apply(const struct mapconf_fds *fds, const struct config *cfg)
{
	struct ebpfmon_settings set = {};
	unsigned int i, n;
	__u32 zero = 0, one = 1;
	char buf[ADDR_STRLEN];
	int err;

	for (i = 0; i < cfg->n_allowlist; i++) {
		struct ebpfmon_lpm_key k;

		cidr_to_lpm_key(&cfg->allowlist[i], &k);
		if (bpf_map_update_elem(fds->allow_nets, &k, &one, BPF_ANY)) {
			err = -errno;
			log_error("cannot add %s to map allow_nets: %s",
				  cidr_format(&cfg->allowlist[i], buf, sizeof(buf)), strerror(errno));
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

		mapconf_url_rule(cfg->url_patterns[i], i + 1, &k, &r);
		if (r.action == EBPFMON_URL_REPORT &&
		    !bpf_map_lookup_elem(fds->url_rules, &k, &old) && old.action == EBPFMON_URL_DROP &&
		    old.id > i + 1)
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

	set.max_conn_per_ip = cfg->max_connections_per_ip;
	for (i = 0, n = 0; i < cfg->n_http_ports && n < EBPFMON_MAX_HTTP_PORTS; i++)
		set.http_ports[n++] = cfg->http_ports[i];
	if (n && cfg->n_url_patterns)
		set.flags |= EBPFMON_F_URL_MATCH;
	if (cfg->dry_run)
		set.flags |= EBPFMON_F_DRY_RUN;
	if (!map_empty(fds->ban_nets))
		set.flags |= EBPFMON_F_BAN_NETS;
	set.drop_sample_mask = 0xffff;
	if (bpf_map_update_elem(fds->settings, &zero, &set, BPF_ANY)) {
		err = -errno;
		log_error("cannot write map settings: %s", strerror(errno));
		return err;
	}
	return 0;
}
