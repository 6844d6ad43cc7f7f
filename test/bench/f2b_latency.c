// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * f2b_latency: time from a probe of a malicious URL (GET /wp-admin/) to the ban in force,
 * ebpfmon against fail2ban, on the same scenario in the same run.
 *
 *   sudo build/test/bench/f2b_latency [-n TRIALS] [-i PROBE_US] [-w WAIT_MS]
 *
 * The rig is ban_latency's (nsbench.h): namespaces ebb-mon-PID (the server) and
 * ebb-peer-PID (the client, one source address per trial) on a veth. Debian's nginx runs in
 * the server namespace, writing the usual combined access log. Two phases, each with its own
 * source addresses:
 *
 *   fail2ban  fail2ban-server (Debian's, in the server namespace, its own configuration
 *             folder and socket) with one jail on nginx's access log: the filter matches a
 *             request for /wp-admin..., maxretry 1, backend pyinotify, and Debian's nftables
 *             action banning every packet of the address (type=custom, blocktype=drop).
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
 * line back for the probe.
 *
 * The resident memory of each user-space stack is read at the end of its phase: VmRSS of
 * ebpfmon-loader + ebpfmon-analyzer, of fail2ban-server.
 *
 * Not a ctest: prints figures and exits 0; 77 without root (1 when EBPFMON_REQUIRE_BPF=1),
 * 1 when the setup fails, 2 on usage. Everything it makes (namespaces, pins, nginx,
 * fail2ban-server and its nftables table, temporary files) goes at exit, also after ^C.
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

enum phase { PH_F2B, PH_EBPFMON, PH_N };
static const char *const phase_name[PH_N] = {"fail2ban", "ebpfmon"};

struct opts {
	unsigned int trials, probe_us, wait_ms;
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
	pid_t nginx, f2b;
	uint64_t *sent_ns; /* per probe number */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"\n"
		"Time from a request for /wp-admin/ to the ban in force (the first probe packet\n"
		"from the client's address that is dropped), ebpfmon against fail2ban + nftables "
		"on\n"
		"the same nginx in the same run, and whether the probe was served. Needs root,\n"
		"nginx, fail2ban, nftables and python3-pyinotify (packaging/install-deps.sh\n"
		"--bench).\n"
		"\n"
		"  -n, --trials N       trials per system, one source address each (default %u,\n"
		"                       1..%u)\n"
		"  -i, --probe-us US    a probe every US microseconds (default %u, 20..100000)\n"
		"  -w, --wait-ms MS     give up on a trial after MS (default %u, 100..60000)\n"
		"      --loader PATH    ebpfmon-loader (default: the one of this build tree)\n"
		"      --analyzer PATH  ebpfmon-analyzer (default: the one of this build tree)\n"
		"  -h, --help           this text\n"
		"\n"
		"Prints, besides the table, one line per figure for test/bench/run-all:\n"
		"  FIGURE<TAB>id<TAB>ebpfmon<TAB>fail2ban<TAB>unit<TAB>target\n"
		"\n"
		"EXAMPLES\n"
		"  sudo build/test/bench/%s\n"
		"  sudo build/test/bench/%s -n 50 -i 50\n",
		PROG, DEFAULT_TRIALS, MAX_TRIALS, DEFAULT_PROBE_US, DEFAULT_WAIT_MS, PROG, PROG);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { OPT_LOADER = 256, OPT_ANALYZER };
	static const struct option lo[] = {
		{"trials", required_argument, NULL, 'n'},
		{"probe-us", required_argument, NULL, 'i'},
		{"wait-ms", required_argument, NULL, 'w'},
		{"loader", required_argument, NULL, OPT_LOADER},
		{"analyzer", required_argument, NULL, OPT_ANALYZER},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt;

	*o = (struct opts){
		.trials = DEFAULT_TRIALS, .probe_us = DEFAULT_PROBE_US, .wait_ms = DEFAULT_WAIT_MS};
	while ((opt = getopt_long(argc, argv, "n:i:w:h", lo, NULL)) != -1) {
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
	if ((unsigned long long)o->wait_ms * 1000 / o->probe_us >= MAX_PROBES) {
		fprintf(stderr, "%s: -w %u with -i %u makes more than %u probes a trial\n", PROG,
			o->wait_ms, o->probe_us, MAX_PROBES);
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
static int trial(struct rig *r, const struct opts *o, const char *src, struct sample *s)
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
	deadline = t0 + o->wait_ms * 1000000ull;
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

static int run_phase(struct rig *r, const struct opts *o, enum phase p, struct sample *s,
		     unsigned int *timeouts)
{
	char src[INET_ADDRSTRLEN];
	unsigned int failed = 0;

	*timeouts = 0;
	for (unsigned int i = 0; i < o->trials; i++) {
		int err;

		trial_addr(p, i, src, sizeof(src));
		err = trial(r, o, src, &s[i]);
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
	struct result res[PH_N] = {0};
	unsigned int timeouts[PH_N] = {0};
	char *addrs[PH_N * MAX_TRIALS], net[512], f2b_log[200];
	struct opts o;
	int err = 0, rc = 1;
	size_t n_addrs = 0;

	if (parse_opts(argc, argv, &o))
		return 2;
	log_init(PROG, LOG_LVL_WARN);
	nsb_init(&r.ns, PROG, o.loader, o.analyzer);
	bp_init();
	prctl(PR_SET_TIMERSLACK, 1UL); /* probes every PROBE_US, not PROBE_US + 50 us */
	if (!have("/usr/sbin/nginx") || !have("/usr/bin/fail2ban-server") || !have("/usr/sbin/nft"))
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
		for (unsigned int i = 0; i < o.trials; i++) {
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
	    (err = write_f2b_conf(&r)))
		goto out;

	/* fail2ban first: its log backend starts on an access log without probes in it */
	if ((err = start_f2b(&r)) ||
	    (err = run_phase(&r, &o, PH_F2B, smp[PH_F2B], &timeouts[PH_F2B])))
		goto out;
	res[PH_F2B].rss_mb = bench_status_kb(r.f2b, "VmRSS") / 1024.0;
	stop_f2b(&r);

	if ((err = nsb_start_loader(&r.ns, 20)) || (err = nsb_start_analyzer(&r.ns, 15)) ||
	    (err = nsb_sleep_ms(500)) ||
	    (err = run_phase(&r, &o, PH_EBPFMON, smp[PH_EBPFMON], &timeouts[PH_EBPFMON])))
		goto out;
	res[PH_EBPFMON].rss_mb = (bench_status_kb(r.ns.loader_pid, "VmRSS") +
				  bench_status_kb(r.ns.analyzer_pid, "VmRSS")) /
				 1024.0;

	snprintf(f2b_log, sizeof(f2b_log), "%s/fail2ban.log", r.ns.tmpdir);
	for (int p = 0; p < PH_N; p++)
		summarize(smp[p], o.trials, o.wait_ms, &res[p]);
	printf("f2b_latency: %u trials per system, one source address each; GET /wp-admin/ to "
	       "nginx in %s, then a UDP probe every %u us from the same address\n",
	       o.trials, r.ns.mon_ns, o.probe_us);
	printf("ban in force: the first probe that never arrives (no later one either, checked "
	       "after %u ms); served: the client got nginx's answer\n",
	       CONFIRM_MS);
	printf("fail2ban: fail2ban-server (Debian), jail on nginx's access log, pyinotify, "
	       "maxretry 1, nftables (all packets, drop)\n");
	printf("ebpfmon:  %s on the veth + analyzer as user ebpfmon, malicious_url_patterns = "
	       "/wp-admin\n\n",
	       r.ns.loader);
	printf("  %-9s %9s %9s %9s %9s %10s %12s %9s\n", "system", "banned", "p50 ms", "p99 ms",
	       "max ms", "served", "no ban (ms)", "RSS MB");
	for (int p = PH_N - 1; p >= 0; p--)
		printf("  %-9s %4u/%-4u %9.3f %9.3f %9.3f %5u/%-4u %7u/%-4u %9.1f\n", phase_name[p],
		       res[p].banned, o.trials, res[p].p50_ms, res[p].p99_ms, res[p].max_ms,
		       res[p].served, o.trials, timeouts[p], o.wait_ms, res[p].rss_mb);
	printf("  (RSS: ebpfmon-loader + ebpfmon-analyzer, against fail2ban-server, at the end "
	       "of each phase)\n");
	printf("  bans the systems logged: ebpfmon-analyzer %u, fail2ban-server %u (of %u trials "
	       "each)\n\n",
	       log_count(r.ns.analyzer_log, "banned 198.18.231."),
	       log_count(f2b_log, "Ban 198.18.230."), o.trials);
	/* always printed: a system that banned nobody has the wait as its figures */
	printf("FIGURE\tban.url_probe_p50_ms\t%.3f\t%.3f\tms\tratio<=1\n", res[PH_EBPFMON].p50_ms,
	       res[PH_F2B].p50_ms);
	printf("FIGURE\tban.url_probe_p99_ms\t%.3f\t%.3f\tms\tratio<=1\n", res[PH_EBPFMON].p99_ms,
	       res[PH_F2B].p99_ms);
	printf("FIGURE\tban.url_probe_served\t%u\t%u\tprobes\t<1\n", res[PH_EBPFMON].served,
	       res[PH_F2B].served);
	printf("FIGURE\trss.user_stack_mb\t%.1f\t%.1f\tMB\tratio<=1\n", res[PH_EBPFMON].rss_mb,
	       res[PH_F2B].rss_mb);
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
	if (r.sink_fd >= 0)
		close(r.sink_fd);
	for (size_t i = 0; i < n_addrs; i++)
		free(addrs[i]);
	free(r.sent_ns);
	return rc; /* bp_cleanup() then nsb_cleanup() run at exit */
}
