// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * f2b_latency: time from a probe of a malicious URL (GET /wp-admin/) to the ban in force,
 * ebpfmon against fail2ban and against CrowdSec, on the same scenario in the same run.
 *
 *   sudo build/test/bench/f2b_latency [-n TRIALS] [-i PROBE_US] [-w WAIT_MS] [-N CS_TRIALS]
 *
 * The rig is ban_latency's (nsbench.h): namespaces ebb-mon-PID (the server) and
 * ebb-peer-PID (the client, one source address per trial) on a veth. Debian's nginx runs in
 * the server namespace, writing the usual combined access log. Three phases, in this order,
 * each with its own source addresses (198.18.230.x, .232.x, .231.x):
 *
 *   fail2ban  fail2ban-server (Debian's, in the server namespace, its own configuration
 *             folder and socket) with one jail on nginx's access log: the filter matches a
 *             request for /wp-admin..., maxretry 1, backend pyinotify, and Debian's nftables
 *             action banning every packet of the address (type=custom, blocktype=drop).
 *   crowdsec  Debian's crowdsec 1.4 (agent and local API in one process, in the server
 *             namespace, LAPI on the namespace's 127.0.0.1:8080, no Central API, SQLite in
 *             the temporary folder) reading nginx's access log, and Debian's
 *             crowdsec-firewall-bouncer in nftables mode (tables ip crowdsec / ip6 crowdsec6
 *             in the server namespace, DROP), pulling decisions every CS_UPDATE_MS (the
 *             package's update_frequency, 10 s, unless -u says otherwise). The parsers are the
 *             package's offline hub (/usr/share/crowdsec/hub: syslog-logs, nginx-logs,
 *             dateparse-enrich, http-logs, what Debian enables for nginx). No scenario of that
 *             hub bans on one request (http-probing overflows past 10 distinct 404s, the
 *             WordPress ones past 5 requests), so the scenario is local, in the folder: a
 *             trigger bucket on a request for /wp-admin..., the rule of the fail2ban jail and
 *             of ebpfmon; the profile is the package's (a 4 h ban of the address). cscli
 *             registers the machine and the bouncer in the private database.
 *   ebpfmon   the real loader on the server's veth and the analyzer as user ebpfmon without
 *             capabilities, malicious_url_patterns = /wp-admin.
 *
 * A trial: a UDP socket from the trial's address sends one datagram (not timed: a warm
 * socket), a TCP connection to nginx is opened, t0 is taken and the request sent (t0 before
 * send(): on a veth the request may go through XDP, the stack and nginx within the call). From then
 * on, every PROBE_US, a numbered datagram goes from the same address to a UDP sink in the server
 * namespace, which is drained after every send. The ban is in force at the first probe that never
 * arrives while no later probe arrives either (ban_latency's definition, "the first dropped probe
 * packet after the request", observed at the receiver so that it means the same for XDP and
 * nftables): checked once that probe is CONFIRM_MS old. "Served": the client got an HTTP status
 * line back for the probe. A trial gives up after WAIT_MS (CrowdSec: CS_WAIT_MS, 30 s by
 * default, since its bouncer polls); one without a ban counts as the wait. CrowdSec runs
 * fewer trials (CS_TRIALS, by default -n's value but at most 10), each after a pause below
 * the bouncer's period: a trial ends just after the pull that banned, so the pause sets where
 * in the polling cycle the next request falls, trial i of n at a random point of the i-th
 * n-th of the cycle (stratified: the median of 10 trials varies less than with pauses drawn
 * from the whole cycle). A trial takes about one period.
 *
 * The resident memory of each user-space stack is read at the end of its phase: VmRSS of
 * ebpfmon-loader + ebpfmon-analyzer, of fail2ban-server, of crowdsec +
 * crowdsec-firewall-bouncer.
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails, 2 on usage. Everything it makes (namespaces, pins, nginx,
 * fail2ban-server, crowdsec and the bouncer and their nftables tables, temporary files with
 * CrowdSec's configuration and database) goes at exit, also after ^C. Nothing under
 * /etc/crowdsec or /var/lib/crowdsec is written or used, but for the grok patterns in
 * /etc/crowdsec/patterns (read).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "benchproc.h"
#include "log.h"
#include "nsbench.h"

#define PROG "f2b_latency"

#define DEFAULT_TRIALS	 20u
#define DEFAULT_PROBE_US 100u
#define DEFAULT_WAIT_MS	 5000u
#define MAX_TRIALS	 200u
#define CONFIRM_MS	 50u
#define PAUSE_MS	 50u
#define HTTP_PORT	 80
#define SINK_PORT	 9001
#define JAIL		 "ebb-wp-admin"
#define MAX_PROBES	 (1u << 20)

#define DEFAULT_CS_TRIALS  10u /* at most, and no more than -n */
#define DEFAULT_CS_WAIT_MS 30000u
#define DEFAULT_CS_UPDATE  10000u /* the package's update_frequency, ms */
#define CS_HUB		   "/usr/share/crowdsec/hub"
#define CS_SCENARIO	   "ebpfmon-bench/wp-admin"
#define CS_READY_S	   30u

/* In the order they run; trial addresses 198.18.(230 + phase).x */
enum phase { PH_F2B, PH_EBPFMON, PH_CS, PH_N };
static const char *const phase_name[PH_N] = {"fail2ban", "ebpfmon", "crowdsec"};

struct opts {
	unsigned int trials, probe_us, wait_ms;
	unsigned int cs_trials, cs_wait_ms, cs_update_ms;
	const char *loader, *analyzer;
};

struct sample {
	uint64_t ban_ns; /* 0: no ban within wait_ms */
	bool served;
};

struct rig {
	struct nsb ns;
	int sink_fd;
	struct sockaddr_in web, sink;
	char web_dir[160], f2b_dir[160], f2b_sock[200];
	char cs_dir[160], cs_conf[200], cs_log[200], bouncer_conf[200], bouncer_log[200];
	pid_t nginx, f2b, cs, bouncer;
	uint64_t *sent_ns; /* per probe number */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"Time from a request for /wp-admin/ to the ban in force (the first probe packet\n"
		"from the client's address that is dropped), ebpfmon against fail2ban + nftables\n"
		"and against CrowdSec + its nftables bouncer on the same nginx in the same run,\n"
		"and whether the probe was served. Needs root, nginx, fail2ban, nftables,\n"
		"python3-pyinotify, crowdsec and crowdsec-firewall-bouncer\n"
		"(packaging/install-deps.sh --bench).\n"
		"\n"
		"  -n, --trials N          trials of ebpfmon and fail2ban, one source address each\n"
		"                          (default %u, 1..%u)\n"
		"  -i, --probe-us US       a probe every US microseconds (default %u, 20..100000)\n"
		"  -w, --wait-ms MS        give up on a trial after MS (default %u, 100..60000)\n"
		"  -N, --cs-trials N       trials of CrowdSec (default: -n, at most %u; 0..%u;\n"
		"                          0 leaves CrowdSec out)\n"
		"  -W, --cs-wait-ms MS     give up on a CrowdSec trial after MS (default %u,\n"
		"                          1000..120000)\n"
		"  -u, --cs-update-ms MS   the bouncer's update_frequency (default %u, the\n"
		"                          package's; 100..60000)\n"
		"      --loader PATH       ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH     ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help              this text\n"
		"\n"
		"Prints, besides the table, one line per figure for test/bench/run-all:\n"
		"  FIGURE<TAB>id<TAB>ebpfmon<TAB>peer<TAB>unit<TAB>target\n"
		"(ban.url_probe_*, rss.user_stack_mb: fail2ban the peer; ban.cs_url_probe_*,\n"
		"rss.cs_user_stack_mb: CrowdSec the peer)\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -n 50 -i 50 -N 0\n"
		"  sudo build/test/bench/%s -N 20 -u 1000\n",
		PROG, DEFAULT_TRIALS, MAX_TRIALS, DEFAULT_PROBE_US, DEFAULT_WAIT_MS,
		DEFAULT_CS_TRIALS, MAX_TRIALS, DEFAULT_CS_WAIT_MS, DEFAULT_CS_UPDATE, PROG, PROG,
		PROG);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { OPT_LOADER = 256, OPT_ANALYZER };
	static const struct option lo[] = {
		{"trials", required_argument, NULL, 'n'},
		{"probe-us", required_argument, NULL, 'i'},
		{"wait-ms", required_argument, NULL, 'w'},
		{"cs-trials", required_argument, NULL, 'N'},
		{"cs-wait-ms", required_argument, NULL, 'W'},
		{"cs-update-ms", required_argument, NULL, 'u'},
		{"loader", required_argument, NULL, OPT_LOADER},
		{"analyzer", required_argument, NULL, OPT_ANALYZER},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	bool cs_trials_set = false;
	int opt;

	*o = (struct opts){.trials = DEFAULT_TRIALS,
			   .probe_us = DEFAULT_PROBE_US,
			   .wait_ms = DEFAULT_WAIT_MS,
			   .cs_wait_ms = DEFAULT_CS_WAIT_MS,
			   .cs_update_ms = DEFAULT_CS_UPDATE};
	while ((opt = getopt_long(argc, argv, "n:i:w:N:W:u:h", lo, NULL)) != -1) {
		unsigned int *dst = NULL;
		long long min = 0, max = 0;

		switch (opt) {
		case 'n':
			dst = &o->trials, min = 1, max = MAX_TRIALS;
			break;
		case 'i':
			dst = &o->probe_us, min = 20, max = 100000;
			break;
		case 'w':
			dst = &o->wait_ms, min = 100, max = 60000;
			break;
		case 'N':
			dst = &o->cs_trials, min = 0, max = MAX_TRIALS;
			cs_trials_set = true;
			break;
		case 'W':
			dst = &o->cs_wait_ms, min = 1000, max = 120000;
			break;
		case 'u':
			dst = &o->cs_update_ms, min = 100, max = 60000;
			break;
		case OPT_LOADER:
			o->loader = optarg;
			continue;
		case OPT_ANALYZER:
			o->analyzer = optarg;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (bench_opt_num(PROG, opt, optarg, min, max, dst)) {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	if (!cs_trials_set)
		o->cs_trials = o->trials < DEFAULT_CS_TRIALS ? o->trials : DEFAULT_CS_TRIALS;
	if ((unsigned long long)o->wait_ms * 1000 / o->probe_us >= MAX_PROBES) {
		fprintf(stderr, "%s: -w %u with -i %u makes more than %u probes a trial\n", PROG,
			o->wait_ms, o->probe_us, MAX_PROBES);
		return -EINVAL;
	}
	if (o->cs_trials && (unsigned long long)o->cs_wait_ms * 1000 / o->probe_us >= MAX_PROBES) {
		fprintf(stderr, "%s: -W %u with -i %u makes more than %u probes a trial\n", PROG,
			o->cs_wait_ms, o->probe_us, MAX_PROBES);
		return -EINVAL;
	}
	return 0;
}

/* Source address of trial i of phase p: 198.18.(230 + p).(1 + i) */
static void trial_addr(enum phase p, unsigned int i, char *buf, size_t len)
{
	snprintf(buf, len, "198.18.%u.%u", (uint8_t)(230 + p), (uint8_t)(1 + i % 250));
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", PROG, path, strerror(errno));
		return -errno;
	}
	fputs(text, f);
	if (fclose(f)) {
		fprintf(stderr, "%s: cannot write %s: %s\n", PROG, path, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* nginx in the server namespace, serving an empty root on NSB_MON_V4:80. 0 or -errno. */
static int start_nginx(struct rig *r)
{
	char conf[4096], path[256], out[2048], log[200];
	int err;

	snprintf(r->web_dir, sizeof(r->web_dir), "%s/nginx", r->ns.tmpdir);
	snprintf(path, sizeof(path), "%s/www", r->web_dir);
	if (mkdir(r->web_dir, 0755) || mkdir(path, 0755)) {
		fprintf(stderr, "%s: mkdir %s: %s\n", PROG, path, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/tmp", r->web_dir);
	if (mkdir(path, 0755))
		return -errno;
	snprintf(conf, sizeof(conf),
		 "# nginx for %s (test/bench): foreground, everything in %s\n"
		 "daemon off;\n"
		 "master_process on;\n"
		 "worker_processes 1;\n"
		 "user nobody nogroup;\n"
		 "pid %s/nginx.pid;\n"
		 "error_log %s/error.log;\n"
		 "events { worker_connections 1024; }\n"
		 "http {\n"
		 "    access_log %s/access.log combined;\n"
		 "    client_body_temp_path %s/tmp/body;\n"
		 "    proxy_temp_path %s/tmp/proxy;\n"
		 "    fastcgi_temp_path %s/tmp/fastcgi;\n"
		 "    uwsgi_temp_path %s/tmp/uwsgi;\n"
		 "    scgi_temp_path %s/tmp/scgi;\n"
		 "    default_type text/plain;\n"
		 "    server {\n"
		 "        listen %s:%d default_server;\n"
		 "        server_name _;\n"
		 "        root %s/www;\n"
		 "    }\n"
		 "}\n",
		 PROG, r->web_dir, r->web_dir, r->web_dir, r->web_dir, r->web_dir, r->web_dir,
		 r->web_dir, r->web_dir, r->web_dir, NSB_MON_V4, HTTP_PORT, r->web_dir);
	snprintf(path, sizeof(path), "%s/nginx.conf", r->web_dir);
	if ((err = write_file(path, conf)))
		return err;
	snprintf(log, sizeof(log), "%s/error.log", r->web_dir);
	err = bp_run(r->ns.mon_ns,
		     (char *const[]){"nginx", "-t", "-p", r->web_dir, "-c", path, "-e", log, NULL},
		     out, sizeof(out));
	if (err) {
		fprintf(stderr, "%s: nginx -t refused %s:\n%s", PROG, path, out);
		return err < 0 ? err : -EINVAL;
	}
	snprintf(out, sizeof(out), "%s/nginx.out", r->web_dir);
	r->nginx = bp_spawn(r->ns.mon_ns,
			    (char *const[]){"nginx", "-p", r->web_dir, "-c", path, "-e", log, NULL},
			    out);
	return r->nginx < 0 ? r->nginx : 0;
}

/* A TCP connection to nginx from src in the peer namespace: fd or -errno. */
static int web_connect(struct rig *r, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct linger lin = {.l_onoff = 1, .l_linger = 0}; /* close = RST, nothing lingers */
	struct timeval tv = {.tv_sec = 2};
	int fd = nsb_socket(&r->ns, r->ns.peer_netns, AF_INET, SOCK_STREAM), err;

	if (fd < 0)
		return fd;
	inet_pton(AF_INET, src, &a.sin_addr);
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    connect(fd, (struct sockaddr *)&r->web, sizeof(r->web))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* nginx answers a plain request (before any ban): 0, or -errno (logged). */
static int web_check(struct rig *r)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	char buf[512];
	int fd, err = -ETIMEDOUT;

	for (int i = 0; i < 50 && err; i++) {
		ssize_t n;

		fd = web_connect(r, NSB_PEER_V4);
		if (fd < 0) {
			err = fd;
			if (nsb_sleep_ms(100))
				return -EINTR;
			continue;
		}
		if (send(fd, req, sizeof(req) - 1, 0) > 0 &&
		    (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 5 && !memcmp(buf, "HTTP/", 5))
			err = 0;
		close(fd);
	}
	if (err)
		fprintf(stderr, "%s: nginx does not answer on %s:%d: %s\n", PROG, NSB_MON_V4,
			HTTP_PORT, strerror(-err));
	return err;
}

/*
 * fail2ban's configuration: Debian's /etc/fail2ban copied (its actions and filters as
 * shipped) without jail.d, plus one jail and its filter, a private socket and pid file, an
 * in-memory database. 0 or -errno.
 */
static int write_f2b_conf(struct rig *r)
{
	char path[256], text[2048], out[1024];
	int err;

	snprintf(r->f2b_dir, sizeof(r->f2b_dir), "%s/fail2ban", r->ns.tmpdir);
	snprintf(r->f2b_sock, sizeof(r->f2b_sock), "%s/fail2ban.sock", r->ns.tmpdir);
	if ((err = bp_run(NULL, (char *const[]){"cp", "-r", "/etc/fail2ban", r->f2b_dir, NULL}, out,
			  sizeof(out)))) {
		fprintf(stderr, "%s: cannot copy /etc/fail2ban: %s", PROG, out);
		return err < 0 ? err : -EIO;
	}
	snprintf(path, sizeof(path), "%s/jail.d", r->f2b_dir);
	bp_run(NULL, (char *const[]){"rm", "-rf", path, NULL}, NULL, 0);
	if (mkdir(path, 0755))
		return -errno;
	snprintf(path, sizeof(path), "%s/fail2ban.local", r->f2b_dir);
	snprintf(text, sizeof(text),
		 "# written by %s (test/bench)\n"
		 "[Definition]\n"
		 "loglevel = INFO\n"
		 "logtarget = %s/fail2ban.log\n"
		 "socket = %s\n"
		 "pidfile = %s/fail2ban.pid\n"
		 "dbfile = :memory:\n",
		 PROG, r->ns.tmpdir, r->f2b_sock, r->ns.tmpdir);
	if ((err = write_file(path, text)))
		return err;
	/* The request line of the combined format; fail2ban cuts the date out ("[]"). */
	snprintf(path, sizeof(path), "%s/filter.d/%s.conf", r->f2b_dir, JAIL);
	if ((err = write_file(path,
			      "# written by " PROG " (test/bench): a request for /wp-admin...\n"
			      "[Definition]\n"
			      "failregex = ^<HOST> \\S+ \\S+ \\[\\] \"[A-Z]+ /wp-admin\n"
			      "ignoreregex =\n"
			      "datepattern = ^[^\\[]*\\[({DATE})\n")))
		return err;
	snprintf(path, sizeof(path), "%s/jail.local", r->f2b_dir);
	snprintf(text, sizeof(text),
		 "# written by %s (test/bench)\n"
		 "[DEFAULT]\n"
		 "ignoreip = 127.0.0.0/8 ::1\n"
		 "\n"
		 "[%s]\n"
		 "enabled = true\n"
		 "filter = %s\n"
		 "logpath = %s/access.log\n"
		 "backend = pyinotify\n"
		 "maxretry = 1\n"
		 "findtime = 10m\n"
		 "bantime = 1h\n"
		 "# every packet of the address dropped, as ebpfmon's ban does\n"
		 "action = nftables[type=custom, blocktype=drop]\n",
		 PROG, JAIL, JAIL, r->web_dir);
	return write_file(path, text);
}

static int start_f2b(struct rig *r)
{
	char log[200], out[2048];
	int st = -1;

	snprintf(log, sizeof(log), "%s/fail2ban-server.out", r->ns.tmpdir);
	r->f2b = bp_spawn(r->ns.mon_ns,
			  (char *const[]){"fail2ban-server", "-f", "-x", "-c", r->f2b_dir, "-s",
					  r->f2b_sock, NULL},
			  log);
	if (r->f2b < 0)
		return r->f2b;
	/* ready: the jail answers (the socket is a file: reachable from any namespace) */
	for (int i = 0; i < 100; i++) {
		st = bp_run(
			NULL,
			(char *const[]){"fail2ban-client", "-s", r->f2b_sock, "status", JAIL, NULL},
			out, sizeof(out));
		if (st == 0 || st == -EINTR)
			break;
		if (nsb_sleep_ms(200))
			return -EINTR;
	}
	if (st) {
		fprintf(stderr, "%s: fail2ban-server did not start the jail %s:\n%s", PROG, JAIL,
			out);
		nsb_tail(log, 10);
		return st < 0 ? st : -EIO;
	}
	return 0;
}

static int stop_f2b(struct rig *r)
{
	char out[1024];

	/* "stop" runs the action's actionstop: the nftables table goes too */
	bp_run(NULL, (char *const[]){"fail2ban-client", "-s", r->f2b_sock, "stop", NULL}, out,
	       sizeof(out));
	bp_wait_exit(&r->f2b, "fail2ban-server", 5000);
	/* whatever a killed server left */
	bp_run(r->ns.mon_ns, (char *const[]){"nft", "delete", "table", "inet", "f2b-table", NULL},
	       NULL, 0);
	return 0;
}

/* Lines of a log file that contain needle. */
static unsigned int log_count(const char *path, const char *needle)
{
	char line[1024];
	unsigned int n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Whether pid has exited, leaving it to be reaped by bp_stop(). */
static bool exited(pid_t pid)
{
	siginfo_t si = {0};

	return pid <= 0 || (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid);
}

/* Wait up to CS_READY_S for needle in the log of pid: 0, -EINTR, or -errno (logged). */
static int wait_log(pid_t pid, const char *name, const char *log, const char *needle)
{
	for (unsigned int i = 0; i < CS_READY_S * 10; i++) {
		if (log_count(log, needle))
			return 0;
		if (exited(pid)) {
			fprintf(stderr, "%s: %s exited while starting:\n", PROG, name);
			nsb_tail(log, 15);
			return -ECHILD;
		}
		if (nsb_sleep_ms(100))
			return -EINTR;
	}
	fprintf(stderr, "%s: %s not ready after %u s (no \"%s\" in its log):\n", PROG, name,
		CS_READY_S, needle);
	nsb_tail(log, 15);
	return -ETIMEDOUT;
}

/*
 * CrowdSec's configuration, all of it in the temporary folder: config.yaml (agent and LAPI,
 * no Central API, no Prometheus listener, SQLite in data/), acquis.yaml (nginx's access log,
 * type nginx), the package's profile, the hub's parsers as symbolic links to the package's
 * offline hub (as Debian's postinst enables them), the local scenario; the machine and the
 * bouncer registered with cscli in that database; the bouncer's configuration with its key.
 * 0 or -errno.
 */
static int write_cs_conf(struct rig *r, const struct opts *o)
{
	static const char *const parsers[] = {
		"s00-raw/crowdsecurity/syslog-logs.yaml",
		"s01-parse/crowdsecurity/nginx-logs.yaml",
		"s02-enrich/crowdsecurity/dateparse-enrich.yaml",
		"s02-enrich/crowdsecurity/http-logs.yaml",
	};
	static const char *const dirs[] = {
		"",
		"/etc",
		"/etc/parsers",
		"/etc/parsers/s00-raw",
		"/etc/parsers/s01-parse",
		"/etc/parsers/s02-enrich",
		"/etc/scenarios",
		"/data",
		"/log",
	};
	char path[256], target[256], text[4096], out[1024], creds[200], key[128];
	const char *d = r->cs_dir;
	int err;

	snprintf(r->cs_dir, sizeof(r->cs_dir), "%s/crowdsec", r->ns.tmpdir);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", d, dirs[i]);
		if (mkdir(path, 0700)) {
			fprintf(stderr, "%s: mkdir %s: %s\n", PROG, path, strerror(errno));
			return -errno;
		}
	}
	for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
		const char *stage_end = strchr(parsers[i], '/'), *base = strrchr(parsers[i], '/');

		snprintf(target, sizeof(target), "%s/parsers/%s", CS_HUB, parsers[i]);
		/* under config_dir without the author's folder, as the postinst links them */
		snprintf(path, sizeof(path), "%s/etc/parsers/%.*s%s", d,
			 (int)(stage_end - parsers[i]), parsers[i], base);
		if (access(target, R_OK) || symlink(target, path)) {
			fprintf(stderr, "%s: %s: %s (the crowdsec package's offline hub)\n", PROG,
				target, strerror(errno));
			return -errno;
		}
	}
	/* grok patterns: the package's (conffiles, read only) */
	snprintf(path, sizeof(path), "%s/etc/patterns", d);
	if (access("/etc/crowdsec/patterns/", R_OK) || symlink("/etc/crowdsec/patterns", path)) {
		fprintf(stderr, "%s: /etc/crowdsec/patterns: %s (the crowdsec package's)\n", PROG,
			strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/etc/scenarios/wp-admin.yaml", d);
	if ((err = write_file(path, "# written by " PROG " (test/bench): one request for "
				    "/wp-admin... bans, as the fail2ban jail and ebpfmon do\n"
				    "type: trigger\n"
				    "name: " CS_SCENARIO "\n"
				    "description: \"a request for /wp-admin...\"\n"
				    "filter: \"evt.Meta.log_type == 'http_access-log' && "
				    "evt.Meta.http_path startsWith '/wp-admin'\"\n"
				    "groupby: evt.Meta.source_ip\n"
				    "labels:\n"
				    "  service: http\n"
				    "  type: scan\n"
				    "  remediation: true\n")))
		return err;
	/* the package's /etc/crowdsec/profiles.yaml, as shipped */
	snprintf(path, sizeof(path), "%s/etc/profiles.yaml", d);
	if ((err = write_file(path, "name: default_ip_remediation\n"
				    "filters:\n"
				    " - Alert.Remediation == true && Alert.GetScope() == \"Ip\"\n"
				    "decisions:\n"
				    " - type: ban\n"
				    "   duration: 4h\n"
				    "on_success: break\n")))
		return err;
	snprintf(path, sizeof(path), "%s/etc/simulation.yaml", d);
	if ((err = write_file(path, "simulation: off\n")))
		return err;
	snprintf(path, sizeof(path), "%s/etc/acquis.yaml", d);
	snprintf(text, sizeof(text), "filenames:\n  - %s/access.log\nlabels:\n  type: nginx\n",
		 r->web_dir);
	if ((err = write_file(path, text)))
		return err;
	snprintf(creds, sizeof(creds), "%s/etc/local_api_credentials.yaml", d);
	snprintf(r->cs_conf, sizeof(r->cs_conf), "%s/etc/config.yaml", d);
	snprintf(r->cs_log, sizeof(r->cs_log), "%s/log/crowdsec.log", d);
	snprintf(text, sizeof(text),
		 "# written by %s (test/bench): everything in %s\n"
		 "common:\n"
		 "  daemonize: false\n"
		 "  log_media: file\n"
		 "  log_level: info\n"
		 "  log_dir: %s/log/\n"
		 "  working_dir: %s\n"
		 "config_paths:\n"
		 "  config_dir: %s/etc/\n"
		 "  data_dir: %s/data/\n"
		 "  simulation_path: %s/etc/simulation.yaml\n"
		 "  hub_dir: %s/\n"
		 "  index_path: %s/.index.json\n"
		 "  notification_dir: %s/etc/notifications/\n"
		 "  plugin_dir: /usr/lib/crowdsec/plugins/\n"
		 "crowdsec_service:\n"
		 "  acquisition_path: %s/etc/acquis.yaml\n"
		 "  parser_routines: 1\n"
		 "cscli:\n"
		 "  output: human\n"
		 "  color: no\n"
		 "db_config:\n"
		 "  log_level: info\n"
		 "  type: sqlite\n"
		 "  db_path: %s/data/crowdsec.db\n"
		 "  use_wal: true\n"
		 "api:\n"
		 "  client:\n"
		 "    credentials_path: %s\n"
		 "  server:\n"
		 "    log_level: info\n"
		 "    listen_uri: 127.0.0.1:8080\n"
		 "    profiles_path: %s/etc/profiles.yaml\n"
		 "    console_path: %s/etc/console.yaml\n"
		 "    trusted_ips:\n"
		 "      - 127.0.0.1\n"
		 "prometheus:\n"
		 "  enabled: false\n",
		 PROG, d, d, d, d, d, d, CS_HUB, CS_HUB, d, d, d, creds, d, d);
	if ((err = write_file(r->cs_conf, text)))
		return err;
	/* cscli writes to the database directly (the LAPI need not run) */
	err = bp_run(NULL,
		     (char *const[]){"cscli", "-c", r->cs_conf, "--error", "machines", "add",
				     "ebpfmon-bench", "--auto", "-f", creds, NULL},
		     out, sizeof(out));
	if (err) {
		fprintf(stderr, "%s: cscli machines add failed:\n%s", PROG, out);
		return err < 0 ? err : -EIO;
	}
	err = bp_run(NULL,
		     (char *const[]){"cscli", "-c", r->cs_conf, "--error", "-o", "raw", "bouncers",
				     "add", "ebpfmon-bench-fw", NULL},
		     out, sizeof(out));
	if (err || sscanf(out, "%127[A-Za-z0-9]", key) != 1) {
		fprintf(stderr, "%s: cscli bouncers add failed:\n%s", PROG, out);
		return err < 0 ? err : -EIO;
	}
	/* the package's crowdsec-firewall-bouncer.yaml, nftables mode, files in the folder */
	snprintf(r->bouncer_conf, sizeof(r->bouncer_conf), "%s/etc/firewall-bouncer.yaml", d);
	snprintf(r->bouncer_log, sizeof(r->bouncer_log), "%s/log/crowdsec-firewall-bouncer.log", d);
	snprintf(text, sizeof(text),
		 "# written by %s (test/bench)\n"
		 "mode: nftables\n"
		 "pid_dir: %s/\n"
		 "update_frequency: %ums\n"
		 "daemonize: false\n"
		 "log_mode: file\n"
		 "log_dir: %s/log/\n"
		 "log_level: info\n"
		 "api_url: http://127.0.0.1:8080/\n"
		 "api_key: %s\n"
		 "disable_ipv6: false\n"
		 "deny_action: DROP\n"
		 "deny_log: false\n"
		 "supported_decisions_types:\n"
		 "  - ban\n"
		 "blacklists_ipv4: crowdsec-blacklists\n"
		 "blacklists_ipv6: crowdsec6-blacklists\n"
		 "nftables:\n"
		 "  ipv4:\n"
		 "    enabled: true\n"
		 "    set-only: false\n"
		 "    table: crowdsec\n"
		 "    chain: crowdsec-chain\n"
		 "  ipv6:\n"
		 "    enabled: true\n"
		 "    set-only: false\n"
		 "    table: crowdsec6\n"
		 "    chain: crowdsec6-chain\n"
		 "prometheus:\n"
		 "  enabled: false\n",
		 PROG, d, o->cs_update_ms, d, key);
	return write_file(r->bouncer_conf, text);
}

/* The nftables tables of the bouncer in the server namespace (it leaves them on SIGTERM). */
static void cs_delete_tables(struct rig *r)
{
	bp_run(r->ns.mon_ns, (char *const[]){"nft", "delete", "table", "ip", "crowdsec", NULL},
	       NULL, 0);
	bp_run(r->ns.mon_ns, (char *const[]){"nft", "delete", "table", "ip6", "crowdsec6", NULL},
	       NULL, 0);
}

/* crowdsec, then the bouncer once the LAPI answers; both in the server namespace. */
static int start_cs(struct rig *r)
{
	char out[256];
	int err;

	snprintf(out, sizeof(out), "%s/crowdsec.out", r->cs_dir);
	r->cs = bp_spawn(r->ns.mon_ns, (char *const[]){"crowdsec", "-c", r->cs_conf, NULL}, out);
	if (r->cs < 0)
		return r->cs;
	/* the LAPI listens before the agent starts; the agent tails the log from its end */
	if ((err = wait_log(r->cs, "crowdsec", r->cs_log, "Starting processing data")) ||
	    (err = nsb_sleep_ms(1000))) /* its file tail settles */
		return err;
	snprintf(out, sizeof(out), "%s/bouncer.out", r->cs_dir);
	r->bouncer = bp_spawn(
		r->ns.mon_ns,
		(char *const[]){"crowdsec-firewall-bouncer", "-c", r->bouncer_conf, NULL}, out);
	if (r->bouncer < 0)
		return r->bouncer;
	/* its first pull done: the tables exist, the ticker runs; the first trial follows */
	if ((err = wait_log(r->bouncer, "crowdsec-firewall-bouncer", r->bouncer_log,
			    "Processing new and deleted decisions")))
		return err;
	err = bp_run(r->ns.mon_ns, (char *const[]){"nft", "list", "table", "ip", "crowdsec", NULL},
		     out, sizeof(out));
	if (err) {
		fprintf(stderr, "%s: no nftables table ip crowdsec in %s:\n%s", PROG, r->ns.mon_ns,
			out);
		return err < 0 ? err : -EIO;
	}
	return 0;
}

static void stop_cs(struct rig *r)
{
	if (r->bouncer > 0)
		bp_stop(&r->bouncer, "crowdsec-firewall-bouncer");
	if (r->cs > 0)
		bp_stop(&r->cs, "crowdsec");
	cs_delete_tables(r);
}

static int sock_from(struct rig *r, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = nsb_socket(&r->ns, r->ns.peer_netns, AF_INET, SOCK_DGRAM), err;

	if (fd < 0)
		return fd;
	inet_pton(AF_INET, src, &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Drain the sink; the highest probe number seen (or *last unchanged). */
static void drain_sink(struct rig *r, long long *last)
{
	uint32_t seq;
	ssize_t n;

	while ((n = recv(r->sink_fd, &seq, sizeof(seq), MSG_DONTWAIT)) >= 0)
		if (n == sizeof(seq) && (long long)seq > *last)
			*last = seq;
}

/* One trial from src: request, then probes until the ban is confirmed or wait_ms passed. */
static int trial(struct rig *r, const struct opts *o, unsigned int wait_ms, const char *src,
		 struct sample *s)
{
	static const char req[] =
		"GET /wp-admin/ HTTP/1.1\r\nHost: bench\r\nUser-Agent: f2b_latency\r\n\r\n";
	uint64_t period = o->probe_us * 1000ull, t0, now;
	uint64_t deadline, confirm = CONFIRM_MS * 1000000ull;
	long long last = -1;
	struct timespec next;
	uint32_t seq = 0, warm = UINT32_MAX;
	int udp, tcp, err = 0;
	char buf[64];

	*s = (struct sample){0};
	udp = sock_from(r, src);
	if (udp < 0)
		return udp;
	tcp = web_connect(r, src);
	if (tcp < 0) {
		fprintf(stderr, "%s: connecting from %s: %s\n", PROG, src, strerror(-tcp));
		close(udp);
		return tcp;
	}
	/* a warm socket; its datagram (number UINT32_MAX) is drained and not counted */
	sendto(udp, &warm, sizeof(warm), 0, (struct sockaddr *)&r->sink, sizeof(r->sink));
	{
		uint32_t tmp;

		while (recv(r->sink_fd, &tmp, sizeof(tmp), MSG_DONTWAIT) >= 0)
			;
	}
	/* t0 before send(): its softirq may already carry the request through XDP and nginx */
	t0 = bench_now();
	if (send(tcp, req, sizeof(req) - 1, 0) != (ssize_t)sizeof(req) - 1) {
		err = -errno;
		goto out;
	}
	deadline = t0 + wait_ms * 1000000ull;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		r->sent_ns[seq] = bench_now();
		if (sendto(udp, &seq, sizeof(seq), 0, (struct sockaddr *)&r->sink,
			   sizeof(r->sink)) < 0 &&
		    errno != EAGAIN && errno != EPERM) { /* EPERM: a local firewall said no */
			err = -errno;
			break;
		}
		seq++;
		drain_sink(r, &last);
		now = bench_now();
		/* probes last+1 .. seq-1 are missing; the ban holds once the first is old */
		if ((uint32_t)(last + 1) < seq && now - r->sent_ns[last + 1] >= confirm) {
			s->ban_ns = r->sent_ns[last + 1] - t0 ?: 1;
			break;
		}
		if (now >= deadline || seq >= MAX_PROBES)
			break;
		if (nsb_interrupted) {
			err = -EINTR;
			break;
		}
		next.tv_nsec += (long)period;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	s->served = recv(tcp, buf, sizeof(buf), MSG_DONTWAIT) >= 5 && !memcmp(buf, "HTTP/", 5);
out:
	close(tcp);
	close(udp);
	return err;
}

/* trials of phase p, one source address each; a trial that never bans counts in *timeouts */
static int run_phase(struct rig *r, const struct opts *o, enum phase p, unsigned int trials,
		     unsigned int wait_ms, struct sample *s, unsigned int *timeouts)
{
	char src[INET_ADDRSTRLEN];
	unsigned int failed = 0;

	*timeouts = 0;
	for (unsigned int i = 0; i < trials; i++) {
		int err;

		/*
		 * The bouncer pulls every cs_update_ms, and a trial that bans ends right after a
		 * pull (the first one starts right after the bouncer's first): without a pause,
		 * every request would come just after a pull and wait almost a whole period. The
		 * pause puts trial i of n at a random point of the i-th n-th of the period, so that
		 * the requests sample the polling cycle evenly, as probes arriving at any time do.
		 */
		if (p == PH_CS && nsb_sleep_ms((unsigned int)((i + random() / (RAND_MAX + 1.0)) /
							      trials * o->cs_update_ms)))
			return -EINTR;
		trial_addr(p, i, src, sizeof(src));
		err = trial(r, o, wait_ms, src, &s[i]);
		if (err == -EINTR)
			return err;
		if (err && ++failed > 3) {
			fprintf(stderr, "%s: too many failed trials; giving up\n", PROG);
			return err;
		}
		if (!err && !s[i].ban_ns)
			(*timeouts)++;
		if (p == PH_EBPFMON && !nsb_analyzer_alive(&r->ns))
			return -ECHILD;
		if (p == PH_CS && (exited(r->cs) || exited(r->bouncer))) {
			fprintf(stderr, "%s: %s exited during the trials\n", PROG,
				exited(r->cs) ? "crowdsec" : "crowdsec-firewall-bouncer");
			nsb_tail(exited(r->cs) ? r->cs_log : r->bouncer_log, 15);
			return -ECHILD;
		}
		if (nsb_sleep_ms(PAUSE_MS))
			return -EINTR;
	}
	return 0;
}

struct result {
	double p50_ms, p99_ms, max_ms;
	unsigned int banned, served;
	double rss_mb;
};

/*
 * p50/p99/max of the trials that banned; a trial with no ban within wait_ms stands above
 * every other, so when there are enough of them to reach a percentile, that figure is
 * wait_ms (and fails its target), and an analyzer that never bans cannot pass.
 */
static void summarize(const struct sample *s, unsigned int n, unsigned int wait_ms,
		      struct result *res)
{
	uint64_t v[MAX_TRIALS];
	unsigned int k = 0;

	res->served = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (s[i].ban_ns)
			v[k++] = s[i].ban_ns;
		res->served += s[i].served;
	}
	qsort(v, k, sizeof(*v), bench_cmp_u64);
	res->banned = k;
	res->p50_ms = k ? bench_pct(v, k, 50) / 1e6 : -1;
	res->p99_ms = k ? bench_pct(v, k, 99) / 1e6 : -1;
	res->max_ms = k ? v[k - 1] / 1e6 : -1;
	if ((n - k) * 100 >= n * 1)
		res->p99_ms = res->max_ms = wait_ms;
	if ((n - k) * 100 >= n * 50)
		res->p50_ms = wait_ms;
}

static int setup_sink(struct rig *r)
{
	r->web = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(HTTP_PORT)};
	inet_pton(AF_INET, NSB_MON_V4, &r->web.sin_addr);
	r->sink = r->web;
	r->sink.sin_port = htons(SINK_PORT);
	r->sink_fd = nsb_socket(&r->ns, r->ns.mon_netns, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK);
	if (r->sink_fd < 0 || bind(r->sink_fd, (struct sockaddr *)&r->sink, sizeof(r->sink))) {
		fprintf(stderr, "%s: UDP sink in %s: %s\n", PROG, r->ns.mon_ns, strerror(errno));
		return -errno;
	}
	return 0;
}

static bool have(const char *path)
{
	if (access(path, X_OK) == 0)
		return true;
	fprintf(stderr, "%s: %s not found (packaging/install-deps.sh --bench installs it)\n", PROG,
		path);
	return false;
}

int main(int argc, char **argv)
{
	static struct rig r = {.sink_fd = -1};
	static struct sample smp[PH_N][MAX_TRIALS];
	static const enum phase shown[PH_N] = {PH_EBPFMON, PH_F2B, PH_CS};
	struct result res[PH_N] = {0};
	unsigned int timeouts[PH_N] = {0}, n[PH_N], wait[PH_N];
	char *addrs[PH_N * MAX_TRIALS], net[512], f2b_log[200];
	struct opts o;
	int err = 0, rc = 1;
	size_t n_addrs = 0;

	if (parse_opts(argc, argv, &o))
		return 2;
	n[PH_F2B] = n[PH_EBPFMON] = o.trials;
	n[PH_CS] = o.cs_trials;
	wait[PH_F2B] = wait[PH_EBPFMON] = o.wait_ms;
	wait[PH_CS] = o.cs_wait_ms;
	log_init(PROG, LOG_LVL_WARN);
	nsb_init(&r.ns, PROG, o.loader, o.analyzer);
	bp_init();
	prctl(PR_SET_TIMERSLACK, 1UL); /* probes every PROBE_US, not PROBE_US + 50 us */
	srandom((unsigned int)bench_now() ^ (unsigned int)getpid());
	if (!have("/usr/sbin/nginx") || !have("/usr/bin/fail2ban-server") || !have("/usr/sbin/nft"))
		return 1;
	if (o.cs_trials && (!have("/usr/bin/crowdsec") || !have("/usr/bin/cscli") ||
			    !have("/usr/bin/crowdsec-firewall-bouncer")))
		return 1;
	if (system("/usr/bin/python3 -c 'import pyinotify' 2>/dev/null")) {
		fprintf(stderr,
			"%s: python3-pyinotify missing (fail2ban's inotify backend; "
			"packaging/install-deps.sh --bench)\n",
			PROG);
		return 1;
	}
	r.sent_ns = calloc(MAX_PROBES, sizeof(*r.sent_ns));
	if (!r.sent_ns)
		return 1;
	for (int p = 0; p < PH_N; p++)
		for (unsigned int i = 0; i < n[p]; i++) {
			addrs[n_addrs] = malloc(INET_ADDRSTRLEN);
			if (!addrs[n_addrs])
				return 1;
			trial_addr((enum phase)p, i, addrs[n_addrs++], INET_ADDRSTRLEN);
		}
	snprintf(net, sizeof(net),
		 "max_connections_per_ip = 100\n"
		 "max_tracked_ips = 65536\n"
		 "http_ports = %d\n"
		 "malicious_url_patterns = /wp-admin\n"
		 "allowlist = 127.0.0.0/8, ::1\n"
		 "cidr_ban_threshold = 0\n"
		 "ban_duration = 1h\n"
		 "monitoring_interval = 1s",
		 HTTP_PORT);
	if ((err = nsb_topology(&r.ns, addrs, n_addrs)) || (err = nsb_write_conf(&r.ns, net)) ||
	    (err = setup_sink(&r)) || (err = start_nginx(&r)) || (err = web_check(&r)) ||
	    (err = write_f2b_conf(&r)) || (o.cs_trials && (err = write_cs_conf(&r, &o))))
		goto out;

	/* fail2ban first: its log backend starts on an access log without probes in it */
	if ((err = start_f2b(&r)) || (err = run_phase(&r, &o, PH_F2B, n[PH_F2B], wait[PH_F2B],
						      smp[PH_F2B], &timeouts[PH_F2B])))
		goto out;
	res[PH_F2B].rss_mb = bench_status_kb(r.f2b, "VmRSS") / 1024.0;
	stop_f2b(&r);

	/* CrowdSec's agent reads the log from its end: the lines of fail2ban's phase are old */
	if (o.cs_trials) {
		if ((err = start_cs(&r)) || (err = run_phase(&r, &o, PH_CS, n[PH_CS], wait[PH_CS],
							     smp[PH_CS], &timeouts[PH_CS])))
			goto out;
		res[PH_CS].rss_mb =
			(bench_status_kb(r.cs, "VmRSS") + bench_status_kb(r.bouncer, "VmRSS")) /
			1024.0;
		stop_cs(&r);
	}

	if ((err = nsb_start_loader(&r.ns, 20)) || (err = nsb_start_analyzer(&r.ns, 15)) ||
	    (err = nsb_sleep_ms(500)) ||
	    (err = run_phase(&r, &o, PH_EBPFMON, n[PH_EBPFMON], wait[PH_EBPFMON], smp[PH_EBPFMON],
			     &timeouts[PH_EBPFMON])))
		goto out;
	res[PH_EBPFMON].rss_mb = (bench_status_kb(r.ns.loader_pid, "VmRSS") +
				  bench_status_kb(r.ns.analyzer_pid, "VmRSS")) /
				 1024.0;

	snprintf(f2b_log, sizeof(f2b_log), "%s/fail2ban.log", r.ns.tmpdir);
	for (int p = 0; p < PH_N; p++)
		summarize(smp[p], n[p], wait[p], &res[p]);
	printf("f2b_latency: %u trials of ebpfmon and fail2ban, %u of CrowdSec, one source "
	       "address each; GET /wp-admin/ to nginx in %s, then a UDP probe every %u us from "
	       "the same address\n",
	       o.trials, o.cs_trials, r.ns.mon_ns, o.probe_us);
	printf("ban in force: the first probe that never arrives (no later one either, checked "
	       "after %u ms); served: the client got nginx's answer\n",
	       CONFIRM_MS);
	printf("fail2ban: fail2ban-server (Debian), jail on nginx's access log, pyinotify, "
	       "maxretry 1, nftables (all packets, drop)\n");
	if (o.cs_trials)
		printf("crowdsec: crowdsec (Debian, agent + local API, package's hub parsers, a "
		       "trigger scenario on /wp-admin), crowdsec-firewall-bouncer (nftables, drop, "
		       "update_frequency %u ms)\n",
		       o.cs_update_ms);
	printf("ebpfmon:  %s on the veth + analyzer as user ebpfmon, malicious_url_patterns = "
	       "/wp-admin\n\n",
	       r.ns.loader);
	printf("  %-9s %9s %9s %9s %9s %10s %14s %9s\n", "system", "banned", "p50 ms", "p99 ms",
	       "max ms", "served", "no ban (ms)", "RSS MB");
	for (int k = 0; k < PH_N; k++) {
		enum phase p = shown[k];

		if (!n[p])
			continue;
		printf("  %-9s %4u/%-4u %9.3f %9.3f %9.3f %5u/%-4u %7u/%-6u %9.1f\n", phase_name[p],
		       res[p].banned, n[p], res[p].p50_ms, res[p].p99_ms, res[p].max_ms,
		       res[p].served, n[p], timeouts[p], wait[p], res[p].rss_mb);
	}
	printf("  (RSS: ebpfmon-loader + ebpfmon-analyzer, against fail2ban-server, against "
	       "crowdsec + crowdsec-firewall-bouncer, at the end of each phase)\n");
	printf("  bans the systems logged: ebpfmon-analyzer %u, fail2ban-server %u, crowdsec %u "
	       "(of the trials above)\n\n",
	       log_count(r.ns.analyzer_log, "banned 198.18.231."),
	       log_count(f2b_log, "Ban 198.18.230."),
	       o.cs_trials ? log_count(r.cs_log, "ban on Ip 198.18.232.") : 0);
	/* always printed: a system that banned nobody has the wait as its figures */
	printf("FIGURE\tban.url_probe_p50_ms\t%.3f\t%.3f\tms\tratio<=1\n", res[PH_EBPFMON].p50_ms,
	       res[PH_F2B].p50_ms);
	printf("FIGURE\tban.url_probe_p99_ms\t%.3f\t%.3f\tms\tratio<=1\n", res[PH_EBPFMON].p99_ms,
	       res[PH_F2B].p99_ms);
	printf("FIGURE\tban.url_probe_served\t%u\t%u\tprobes\t<1\n", res[PH_EBPFMON].served,
	       res[PH_F2B].served);
	printf("FIGURE\trss.user_stack_mb\t%.1f\t%.1f\tMB\tratio<=1\n", res[PH_EBPFMON].rss_mb,
	       res[PH_F2B].rss_mb);
	if (o.cs_trials) {
		printf("FIGURE\tban.cs_url_probe_p50_ms\t%.3f\t%.3f\tms\tratio<=1\n",
		       res[PH_EBPFMON].p50_ms, res[PH_CS].p50_ms);
		printf("FIGURE\tban.cs_url_probe_p99_ms\t%.3f\t%.3f\tms\tratio<=1\n",
		       res[PH_EBPFMON].p99_ms, res[PH_CS].p99_ms);
		printf("FIGURE\tban.cs_url_probe_served\t%u\t%u\tprobes\t<1\n",
		       res[PH_EBPFMON].served, res[PH_CS].served);
		printf("FIGURE\trss.cs_user_stack_mb\t%.1f\t%.1f\tMB\tratio<=1\n",
		       res[PH_EBPFMON].rss_mb, res[PH_CS].rss_mb);
	}
	rc = 0;
out:
	if (err == -EINTR) {
		fprintf(stderr, "%s: interrupted; cleaning up\n", PROG);
		rc = 130;
	} else if (rc) {
		if (r.ns.analyzer_log[0])
			nsb_tail(r.ns.analyzer_log, 10);
	}
	if (r.f2b > 0)
		stop_f2b(&r);
	if (r.cs > 0 || r.bouncer > 0)
		stop_cs(&r);
	if (r.sink_fd >= 0)
		close(r.sink_fd);
	for (size_t i = 0; i < n_addrs; i++)
		free(addrs[i]);
	free(r.sent_ns);
	return rc; /* bp_cleanup() then nsb_cleanup() run at exit */
}
