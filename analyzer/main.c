// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* ebpfmon-analyzer: arguments and configuration; the work is in analyzer.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyzer.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

static const char usage[] =
	"Usage: ebpfmon-analyzer [OPTION]...\n"
	"Act on what the ebpfmon kernel programs see: ban addresses that open too many\n"
	"connections or request malicious URLs. Runs unprivileged; needs the maps that\n"
	"ebpfmon-loader pinned.\n"
	"\n"
	"  -c, --config FILE      configuration (default " EBPFMON_DEFAULT_CONFIG "),\n"
	"                         re-read on SIGHUP\n"
	"      --pin-root DIR     where the loader pinned the maps (default: [loader] pin_root)\n"
	"      --db PATH          SQLite database (default: [database] sqlite_path)\n"
	"      --dry-run          log and record what would be banned; enforce nothing\n"
	"      --wait SECONDS     how long to wait for the loader's pins (default 30)\n"
	"      --log-level LEVEL  debug, info, warn or error (default info)\n"
	"  -v, --verbose          same as --log-level debug\n"
	"  -h, --help             this text\n"
	"\n"
	"Exit status: 0 stopped by a signal, 1 failure (among them: another analyzer runs on the\n"
	"same pins, or this user may not open them), 2 bad option or configuration.\n"
	"\n"
	"EXAMPLES\n"
	"  ebpfmon-analyzer -c /etc/ebpfmon/ebpfmon.conf\n"
	"  ebpfmon-analyzer --dry-run -v\n";

enum { OPT_PIN_ROOT = 256, OPT_DB, OPT_DRY_RUN, OPT_WAIT, OPT_LOG_LEVEL };

static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"pin-root", required_argument, NULL, OPT_PIN_ROOT},
	{"db", required_argument, NULL, OPT_DB},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"wait", required_argument, NULL, OPT_WAIT},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{},
};

/*
 * Every connection to the API and metrics listeners takes a file descriptor: a flood of idle
 * connections must not leave the analyzer without one for its maps and database. Raise the
 * soft limit (1024 by default, also under systemd) to the hard one.
 */
static void raise_nofile(void)
{
	struct rlimit nofile;

	if (getrlimit(RLIMIT_NOFILE, &nofile) || nofile.rlim_cur >= nofile.rlim_max)
		return;
	nofile.rlim_cur = nofile.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		log_warn("cannot raise the open-file limit to %llu: %s",
			 (unsigned long long)nofile.rlim_max, strerror(errno));
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct analyzer_opts opts = {.config_path = EBPFMON_DEFAULT_CONFIG, .wait_s = 30};
	const char *pin_root = NULL;
	enum log_level level;
	char err[4096];
	uint64_t v;
	int opt;

	log_init("ebpfmon-analyzer", LOG_LVL_INFO);
	daemon_journal_attach();
	/* what it creates is its own: the database from its first byte (store.c says why it is
	 * 0600); the API socket sets its own mode (0660, its group may connect) */
	umask(0077);
	raise_nofile();
	while ((opt = getopt_long(argc, argv, "c:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			opts.config_path = optarg;
			break;
		case OPT_PIN_ROOT:
			pin_root = optarg;
			break;
		case OPT_DB:
			opts.db_path = optarg;
			break;
		case OPT_DRY_RUN:
			opts.dry_run = true;
			break;
		case OPT_WAIT:
			if (parse_u64(optarg, 0, 3600, &v)) {
				log_error("--wait %s: not a number of seconds 0..3600", optarg);
				return 2;
			}
			opts.wait_s = v;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &level)) {
				log_error("--log-level %s: not one of debug, info, warn, error",
					  optarg);
				return 2;
			}
			log_set_level(level);
			break;
		case 'v':
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	config_defaults(&cfg);
	if (config_load(opts.config_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		log_error("configuration %s refused; not starting", opts.config_path);
		return 2;
	}
	if (pin_root && config_set(&cfg, "loader", "pin_root", pin_root, err, sizeof(err))) {
		log_error("--pin-root: %s", err);
		return 2;
	}
	if (opts.db_path &&
	    config_set(&cfg, "database", "sqlite_path", opts.db_path, err, sizeof(err))) {
		log_error("--db: %s", err);
		return 2;
	}
	if (geteuid() == 0)
		log_warn(
			"running as root: the analyzer needs no privilege at all; run it as [loader] "
			"user (%s), as its unit does (setpriv --reuid %s --regid %s --init-groups)",
			cfg.user, cfg.user, cfg.group);
	return analyzer_run(&cfg, &opts);
}
