/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The configuration shared by ebpfmon-loader and ebpfmon-analyzer: an INI file read with
 * inih (docs/configuration.md). Every key has a default; an unknown section or key, a value
 * out of range, an unparsable address or a setting given twice is an error naming the file,
 * the line and the key.
 */
#ifndef EBPFMON_CONFIG_H
#define EBPFMON_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "ebpfmon_abi.h"

#define EBPFMON_DEFAULT_CONFIG "/etc/ebpfmon/ebpfmon.conf"

#define CONFIG_MAX_URL_PATTERNS 64
#define CONFIG_MAX_INTERFACES	16
#define CONFIG_MAX_ALLOW	64
#define CONFIG_PATH_MAX		256
#define CONFIG_ERR_MAX		512
#define CONFIG_FILE_MAX		(1024 * 1024) /* bytes of a configuration file at most */

enum config_xdp_mode {
	CONFIG_XDP_AUTO = 0,
	CONFIG_XDP_NATIVE = 1,
	CONFIG_XDP_GENERIC = 2,
	CONFIG_XDP_TC = 3, /* not XDP: a tcx ingress program (Linux 6.6+), after GRO */
};

struct config {
	/* [network] */
	uint32_t max_connections_per_ip; /* 1..1000000, default 100 */
	/* ban_duration (or ban_duration_minutes): 0 (permanent), 1 s..365 d, default 1 h */
	uint32_t ban_duration_s;
	/* monitoring_interval (or monitoring_interval_seconds): 100 ms..1 d, default 10 s */
	uint32_t monitoring_interval_ms;
	/* prefix rules ("/admin") and glob rules ("*.php"), each 1..127 bytes, no spaces */
	char url_patterns[CONFIG_MAX_URL_PATTERNS][EBPFMON_URL_PATH_MAX];
	unsigned int n_url_patterns; /* default: /admin, /wp-admin, /.env, /config */
	char interfaces[CONFIG_MAX_INTERFACES][IF_NAMESIZE];
	unsigned int n_interfaces; /* default none: the interface of the default route */
	uint16_t http_ports[EBPFMON_MAX_HTTP_PORTS];
	unsigned int n_http_ports; /* default 80, 8080 */
	struct addr_cidr allowlist[CONFIG_MAX_ALLOW];
	unsigned int n_allowlist;	/* default 127.0.0.0/8, ::1 */
	uint32_t max_tracked_ips;	/* 1024..16777216, default 65536 */
	bool dry_run;			/* default false */
	uint32_t ban_escalation_factor; /* 1..100, default 2: each repeat offence multiplies */
	/* ban_max_duration (or ban_max_duration_minutes): 1 s..3650 d, default 7 d: the cap */
	uint32_t ban_max_duration_s;
	uint32_t
		cidr_ban_threshold; /* 0 (off)..256: banned addresses in a /24 or /64 that ban it */
	uint32_t event_buffer_kb;   /* 64..262144, a power of two, default 4096: ring buffer */
	bool url_case_insensitive;  /* default false: URL rules match ASCII case-insensitively */
	bool url_drop_unseen;	    /* default true: drop what the URL matcher cannot see */
	/* default true: URL rules also on the in-order bytes HTTP-port sockets receive
	 * (bpf/stream.h); loader restart */
	bool url_stream_guard;
	uint32_t max_bans; /* 1024..4194304, default 65536: entries of the bans map */

	/* [system] */
	uint32_t cpu_threshold_percent;	     /* 1..100, default 80 */
	uint32_t memory_threshold_percent;   /* 1..100, default 85 */
	uint32_t disk_io_threshold_mbps;     /* 1..1000000, default 100 */
	uint32_t anomaly_min_intervals;	     /* 1..1000, default 3: samples above before it opens */
	uint32_t anomaly_hysteresis_percent; /* 0..50, default 5: closes below threshold - this % */

	/* [api] */
	/* default /run/ebpfmon/api.sock; "ipc:///PATH" is accepted and stored as /PATH */
	char uds_socket_path[CONFIG_PATH_MAX];
	/*
	 * default "" (off); tcp://127.0.0.1:9091: read-only; tls+tcp://HOST:PORT: TLS with
	 * client certificates signed by tls_client_ca_file, whose holders may change bans
	 */
	char listen_address[CONFIG_PATH_MAX];
	/* tls+tcp:// only (all three required there; checked readable when loaded), else "" */
	char tls_cert_file[CONFIG_PATH_MAX];	  /* the server's certificate chain, PEM */
	char tls_key_file[CONFIG_PATH_MAX];	  /* its private key, PEM, unencrypted */
	char tls_client_ca_file[CONFIG_PATH_MAX]; /* the CA(s) that sign client certificates */
	/*
	 * certificate subject CNs that may change bans over TLS, comma-separated; "": every
	 * client the CA signed. Refused when libnng cannot tell the peer's CN (nng < 1.6).
	 */
	char tls_admin_names[CONFIG_PATH_MAX];
	char metrics_address[CONFIG_PATH_MAX]; /* default "" (off), e.g. http://127.0.0.1:9464 */
	char admin_group[64]; /* default ebpfmon-admin: peers in it may ban and unban */

	/* [database] */
	char sqlite_path[CONFIG_PATH_MAX]; /* default /var/lib/ebpfmon/ebpfmon.db */
	uint32_t max_records;		   /* 100..100000000, default 10000 */
	uint32_t max_age_days;		   /* 0 (no limit)..36500, default 30 */

	/* [loader] */
	char pin_root[CONFIG_PATH_MAX]; /* default /sys/fs/bpf/ebpfmon */
	char user[64];			/* default ebpfmon: the loader drops to this user */
	char group[64];			/* default ebpfmon: owner group of the pins */
	enum config_xdp_mode xdp_mode;	/* auto|native|generic|tc, default auto */
};

/* Fill *cfg with the defaults listed above. */
void config_defaults(struct config *cfg);

/*
 * Read an INI file over the defaults. 0 on success; on failure -EINVAL (bad content) or
 * -errno (cannot open/read; -EFBIG beyond CONFIG_FILE_MAX bytes) and err holds one message
 * per problem, in the order of the file, lines separated by '\n', each of the form
 * "FILE:LINE: [section] key: what is wrong" ("FILE:LINE: what is wrong" for a line that is
 * not a key, "FILE: ..." when no line applies, such as a missing file).
 * The file is read over config_defaults(), not over what *cfg held, and *cfg is written only
 * when the whole file is good: a failed reload leaves the running configuration as it was.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/*
 * Parse one "section/key = value" into cfg (used by config_load; exposed for tests).
 * On error -EINVAL, cfg unchanged, and err holds "[section] key: what is wrong" (one line per
 * problem, without FILE:LINE).
 */
int config_set(struct config *cfg, const char *section, const char *key, const char *value,
	       char *err, size_t errlen);

const char *config_xdp_mode_name(enum config_xdp_mode mode);

/*
 * A duration with units, in milliseconds: one or more NUMBER UNIT with no space between, the
 * units ms, s, m, h, d and w ("90s", "500ms", "1h30m"). 0 and *ms; -EINVAL when s is not such
 * a duration (a bare number "90" included), -ERANGE beyond 2^53 ms.
 */
int parse_duration_ms(const char *s, uint64_t *ms);

/*
 * Strict number parser (errno, end pointer, range): "42" -> 0 and *out; -EINVAL for empty,
 * trailing garbage, sign or out of [min, max].
 */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
