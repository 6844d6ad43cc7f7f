// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* ebpfmon-loader: arguments and configuration; the work is in loader.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "loader.h"
#include "daemon.h"
#include "log.h"
#include "netif.h"

static const char usage[] =
	"Usage: ebpfmon-loader [OPTION]...\n"
	"Load, attach and pin the ebpfmon BPF programs and maps, then drop every privilege\n"
	"and stay as a supervisor until SIGTERM, which detaches the programs and keeps the maps.\n"
	"\n"
	"  -c, --config FILE       configuration (default " EBPFMON_DEFAULT_CONFIG ")\n"
	"  -i, --interface IFACE   monitor IFACE (repeatable; default: the configured\n"
	"                          interfaces, else the interface of the default route)\n"
	"      --xdp-mode MODE     auto (native on NICs, generic on virtual devices), native,\n"
	"                          generic, or tc (a tcx ingress program after GRO instead of\n"
	"                          XDP; Linux 6.6+)\n"
	"      --pin-root DIR      pin folder on bpffs (default " EBPFMON_PIN_ROOT ")\n"
	"      --user NAME         user to drop to (default ebpfmon)\n"
	"      --group NAME        group that owns the pins (default ebpfmon)\n"
	"      --check             report what this kernel supports and exit\n"
	"      --list-interfaces   list network interfaces and exit\n"
	"      --unload            remove everything pinned under the pin root and exit\n"
	"  -v, --verbose           debug logging (with libbpf's messages)\n"
	"  -h, --help              this text\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 bad option or configuration.\n"
	"\n"
	"EXAMPLES\n"
	"  ebpfmon-loader --check -i eth0\n"
	"  ebpfmon-loader -c /etc/ebpfmon/ebpfmon.conf -i eth0 --xdp-mode generic\n"
	"  ebpfmon-loader -i veth0 --xdp-mode tc\n"
	"  ebpfmon-loader --unload\n";

enum { OPT_XDP_MODE = 256, OPT_PIN_ROOT, OPT_USER, OPT_GROUP, OPT_CHECK, OPT_LIST, OPT_UNLOAD };

static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"interface", required_argument, NULL, 'i'},
	{"xdp-mode", required_argument, NULL, OPT_XDP_MODE},
	{"pin-root", required_argument, NULL, OPT_PIN_ROOT},
	{"user", required_argument, NULL, OPT_USER},
	{"group", required_argument, NULL, OPT_GROUP},
	{"check", no_argument, NULL, OPT_CHECK},
	{"list-interfaces", no_argument, NULL, OPT_LIST},
	{"unload", no_argument, NULL, OPT_UNLOAD},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{},
};

/* Command-line values that override the configuration file, applied after it is read. */
struct overrides {
	const char *ifaces[CONFIG_MAX_INTERFACES];
	unsigned int n_ifaces;
	const char *xdp_mode, *pin_root, *user, *group;
};

static int set_override(struct config *cfg, const char *option, const char *section,
			const char *key, const char *value)
{
	char err[CONFIG_ERR_MAX];

	if (config_set(cfg, section, key, value, err, sizeof(err))) {
		log_error("%s: %s", option, err);
		return -EINVAL;
	}
	return 0;
}

static int apply_overrides(struct config *cfg, const struct overrides *o)
{
	char ifaces[CONFIG_MAX_INTERFACES * (IF_NAMESIZE + 1)] = "";

	for (unsigned int i = 0; i < o->n_ifaces; i++) {
		strcat(ifaces, i ? "," : "");
		strncat(ifaces, o->ifaces[i], IF_NAMESIZE);
	}
	if ((o->n_ifaces && set_override(cfg, "-i", "network", "interfaces", ifaces)) ||
	    (o->xdp_mode && set_override(cfg, "--xdp-mode", "loader", "xdp_mode", o->xdp_mode)) ||
	    (o->pin_root && set_override(cfg, "--pin-root", "loader", "pin_root", o->pin_root)) ||
	    (o->user && set_override(cfg, "--user", "loader", "user", o->user)) ||
	    (o->group && set_override(cfg, "--group", "loader", "group", o->group)))
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct overrides o = {};
	const char *config_path = NULL;
	bool check = false, list = false, unload = false;
	char err[4096];
	int opt;

	log_init("ebpfmon-loader", LOG_LVL_INFO);
	daemon_journal_attach();
	while ((opt = getopt_long(argc, argv, "c:i:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'i':
			if (o.n_ifaces == CONFIG_MAX_INTERFACES) {
				log_error("at most %d interfaces", CONFIG_MAX_INTERFACES);
				return LOADER_EXIT_USAGE;
			}
			o.ifaces[o.n_ifaces++] = optarg;
			break;
		case OPT_XDP_MODE:
			o.xdp_mode = optarg;
			break;
		case OPT_PIN_ROOT:
			o.pin_root = optarg;
			break;
		case OPT_USER:
			o.user = optarg;
			break;
		case OPT_GROUP:
			o.group = optarg;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_LIST:
			list = true;
			break;
		case OPT_UNLOAD:
			unload = true;
			break;
		case 'v':
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return LOADER_EXIT_OK;
		default:
			fputs(usage, stderr);
			return LOADER_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return LOADER_EXIT_USAGE;
	}
	if (list)
		return netif_list() ? LOADER_EXIT_FAIL : LOADER_EXIT_OK;

	config_defaults(&cfg);
	/* --check and --unload work without a configuration file; running needs one. */
	if (config_path || !(check || unload)) {
		if (!config_path)
			config_path = EBPFMON_DEFAULT_CONFIG;
		if (config_load(config_path, &cfg, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			log_error("configuration %s refused; not starting", config_path);
			return LOADER_EXIT_USAGE;
		}
	}
	if (apply_overrides(&cfg, &o))
		return LOADER_EXIT_USAGE;

	if (unload)
		return loader_unload(&cfg);
	/* --check looks at the interface the loader would take, and says when there is none */
	if (!cfg.n_interfaces && netif_default_route(cfg.interfaces[0]) == 0) {
		cfg.n_interfaces = 1;
		if (!check)
			log_info("no interface configured: using %s, the interface of the default "
				 "route",
				 cfg.interfaces[0]);
	} else if (!cfg.n_interfaces && !check) {
		log_error("no interface configured and no default route to pick one from: use -i "
			  "IFACE or [network] interfaces");
		return LOADER_EXIT_USAGE;
	}
	if (check)
		return loader_check(&cfg);
	return loader_run(&cfg);
}
