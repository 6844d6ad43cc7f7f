// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The namespace rig of the end-to-end benchmarks; see nsbench.h. */
#include "nsbench.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf_test_env.h"
#include "ebpfmon_abi.h"

#define NETNS_DIR  "/run/netns"
#define BPFFS	   "/sys/fs/bpf"
#define NS_PREFIX  "ebb-"
#define PIN_PREFIX "ebpfmon-bench-"
#define TMP_PREFIX "ebpfmon-bench-"
#define USER_NAME  "ebpfmon"

volatile sig_atomic_t nsb_interrupted;

static struct nsb *g_nsb; /* what nsb_cleanup() undoes */

static void on_signal(int sig)
{
	(void)sig;
	nsb_interrupted = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int nsb_sleep_ms(unsigned int ms)
{
	uint64_t end = mono_ms() + ms;

	while (!nsb_interrupted) {
		uint64_t now = mono_ms();
		struct timespec ts;

		if (now >= end)
			return 0;
		now = end - now > 50 ? 50 : end - now;
		ts = (struct timespec){.tv_sec = 0, .tv_nsec = (long)now * 1000000};
		nanosleep(&ts, NULL);
	}
	return -EINTR;
}

/*
 * Run argv (NULL-terminated) with stdin from in_path (NULL: /dev/null), wait for it. Its
 * output is collected and printed, with the command, when it fails and !quiet. Returns the
 * exit status (128 + signal when killed) or -errno.
 */
static int run_argv(char *const argv[], const char *in_path, bool quiet)
{
	char out[4096];
	size_t len = 0;
	int pfd[2], status;
	ssize_t r;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);

		setpgid(0, 0); /* a terminal's SIGINT is ours to handle, not the tool's */
		if (in < 0 || dup2(in, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	while ((r = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0 ||
	       (r < 0 && errno == EINTR))
		if (r > 0)
			len += (size_t)r;
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (status && !quiet) {
		fprintf(stderr, "command failed (status %d):", status);
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n%s", out);
	}
	return status;
}

#define RUN(quiet, ...) run_argv((char *const[]){__VA_ARGS__, NULL}, NULL, quiet)

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) && errno != ENOENT)
		fprintf(stderr, "cleanup: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void stop_pid(pid_t *pidp, const char *name)
{
	pid_t pid = *pidp;
	int status;

	if (pid <= 0)
		return;
	*pidp = 0;
	if (waitpid(pid, &status, WNOHANG) == pid)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) { /* 5 s */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(50000);
	}
	fprintf(stderr, "cleanup: %s (pid %d) ignored SIGTERM for 5 s: SIGKILL\n", name, (int)pid);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static void unload_pins(const char *loader, const char *pin_root, const char *mon_ns)
{
	char ns_arg[64];

	if (!exists(pin_root))
		return;
	snprintf(ns_arg, sizeof(ns_arg), "--net=" NETNS_DIR "/%s", mon_ns ? mon_ns : "");
	if (access(loader, X_OK) == 0) {
		if (mon_ns && exists(ns_arg + 6))
			RUN(false, "nsenter", ns_arg, "--", (char *)loader, "--unload",
			    "--pin-root", (char *)pin_root);
		else
			RUN(false, (char *)loader, "--unload", "--pin-root", (char *)pin_root);
	}
	if (exists(pin_root)) {
		fprintf(stderr, "cleanup: %s still there after --unload: removing it\n", pin_root);
		rm_rf(pin_root);
	}
}

void nsb_cleanup(void)
{
	struct nsb *n = g_nsb;
	struct sigaction ign = {.sa_handler = SIG_IGN};

	if (!n)
		return;
	g_nsb = NULL;
	/* A second ^C must not cut the cleanup short. */
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGTERM, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	stop_pid(&n->analyzer_pid, "ebpfmon-analyzer");
	stop_pid(&n->loader_pid, "ebpfmon-loader");
	if (n->notify_fd >= 0) {
		close(n->notify_fd);
		n->notify_fd = -1;
	}
	unload_pins(n->loader, n->pin_root, n->made_mon ? n->mon_ns : NULL);
	if (n->orig_netns >= 0)
		close(n->orig_netns);
	if (n->mon_netns >= 0)
		close(n->mon_netns);
	if (n->peer_netns >= 0)
		close(n->peer_netns);
	n->orig_netns = n->mon_netns = n->peer_netns = -1;
	if (n->made_peer)
		RUN(false, "ip", "netns", "del", n->peer_ns);
	if (n->made_mon)
		RUN(false, "ip", "netns", "del", n->mon_ns);
	n->made_mon = n->made_peer = false;
	if (n->tmpdir[0])
		rm_rf(n->tmpdir);
	n->tmpdir[0] = '\0';
}

/* A process that exists and is not a zombie (a killed run may wait a while to be reaped). */
static bool pid_alive(long pid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] != 'Z';
}

/* The pid in NAME = PREFIX PID [SUFFIX...] when that pid is gone, else 0. */
static long stale_pid(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	char *end;
	long pid;

	if (strncmp(name, prefix, pl))
		return 0;
	errno = 0;
	pid = strtol(name + pl, &end, 10);
	if (errno || end == name + pl || pid <= 0 || (*end && *end != '-'))
		return 0;
	return pid_alive(pid) ? 0 : pid;
}

/* Processes (loader, analyzer) of a dead run still using its pin root: killed by pid. */
static void kill_users_of(const char *pin_root)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300], argv[4096];
		size_t len;
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		len = fread(argv, 1, sizeof(argv) - 1, f);
		fclose(f);
		argv[len] = '\0';
		for (size_t off = 0; off < len; off += strlen(argv + off) + 1) {
			if (!strcmp(argv + off, pin_root)) {
				fprintf(stderr, "  killing pid %s of an earlier run (uses %s)\n",
					e->d_name, pin_root);
				kill((pid_t)atol(e->d_name), SIGKILL);
				break;
			}
		}
	}
	closedir(d);
}

static void reap_stale(const char *loader)
{
	DIR *d;
	struct dirent *e;
	long pid;

	if ((d = opendir(BPFFS))) {
		while ((e = readdir(d))) {
			char root[300];

			if (!(pid = stale_pid(e->d_name, PIN_PREFIX)))
				continue;
			snprintf(root, sizeof(root), BPFFS "/%s", e->d_name);
			fprintf(stderr, "removing leftovers of an earlier benchmark run: %s\n",
				root);
			kill_users_of(root);
			usleep(100000);
			unload_pins(loader, root, NULL);
		}
		closedir(d);
	}
	if ((d = opendir(NETNS_DIR))) {
		while ((e = readdir(d))) {
			if (!stale_pid(e->d_name, NS_PREFIX "mon-") &&
			    !stale_pid(e->d_name, NS_PREFIX "peer-"))
				continue;
			fprintf(stderr,
				"removing leftovers of an earlier benchmark run: netns %s\n",
				e->d_name);
			RUN(false, "ip", "netns", "del", e->d_name);
		}
		closedir(d);
	}
	if ((d = opendir("/tmp"))) {
		while ((e = readdir(d))) {
			char path[300];

			if (!stale_pid(e->d_name, TMP_PREFIX))
				continue;
			snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
			rm_rf(path);
		}
		closedir(d);
	}
}

static bool in_path(const char *tool)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path)
		path = "/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, tool);
		if (access(buf, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

static void default_binary(char *out, size_t len, const char *given, const char *rel)
{
	char self[PATH_MAX], joined[PATH_MAX + 64];
	ssize_t r;

	if (given) {
		snprintf(out, len, "%s", given);
		return;
	}
	r = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (r < 0) {
		snprintf(out, len, "%s", rel);
		return;
	}
	self[r] = '\0';
	snprintf(joined, sizeof(joined), "%s/../../%s", dirname(self), rel);
	if (!realpath(joined, out)) /* out holds PATH_MAX bytes */
		snprintf(out, len, "%.*s", (int)len - 1, joined);
}

void nsb_init(struct nsb *n, const char *prog, const char *loader, const char *analyzer)
{
	static const char *const tools[] = {"ip", "nsenter", "setpriv", "ping"};
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits see EINTR */
	int pid = (int)getpid();
	char why[256];

	memset(n, 0, sizeof(*n));
	n->prog = prog;
	n->notify_fd = n->orig_netns = n->mon_netns = n->peer_netns = -1;
	snprintf(n->mon_ns, sizeof(n->mon_ns), NS_PREFIX "mon-%d", pid);
	snprintf(n->peer_ns, sizeof(n->peer_ns), NS_PREFIX "peer-%d", pid);
	snprintf(n->mon_if, sizeof(n->mon_if), "ebbm%d", pid);
	snprintf(n->peer_if, sizeof(n->peer_if), "ebbp%d", pid);
	snprintf(n->pin_root, sizeof(n->pin_root), BPFFS "/" PIN_PREFIX "%d", pid);
	default_binary(n->loader, sizeof(n->loader), loader, "loader/ebpfmon-loader");
	default_binary(n->analyzer, sizeof(n->analyzer), analyzer, "analyzer/ebpfmon-analyzer");

	if (geteuid() != 0)
		bpf_test_skip(prog, "needs root (network namespaces, XDP, bpffs, setpriv)");
	if (!getpwnam(USER_NAME) || !getgrnam(USER_NAME))
		bpf_test_skip(prog, "no user or group '" USER_NAME "' (packaging/sysusers.d)");
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (!in_path(tools[i])) {
			snprintf(why, sizeof(why), "'%s' not found in PATH", tools[i]);
			bpf_test_skip(prog, why);
		}
	}
	for (const char *b = n->loader; b; b = b == n->loader ? n->analyzer : NULL) {
		if (access(b, X_OK)) {
			fprintf(stderr,
				"%s: %s: %s (build the tree first, or name it with an option)\n",
				prog, b, strerror(errno));
			exit(EXIT_FAILURE);
		}
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	reap_stale(n->loader);
	g_nsb = n;
	atexit(nsb_cleanup);

	snprintf(n->tmpdir, sizeof(n->tmpdir), "/tmp/" TMP_PREFIX "%d-XXXXXX", pid);
	if (!mkdtemp(n->tmpdir)) {
		fprintf(stderr, "%s: mkdtemp %s: %s\n", prog, n->tmpdir, strerror(errno));
		n->tmpdir[0] = '\0';
		exit(EXIT_FAILURE);
	}
	chmod(n->tmpdir, 0755); /* the analyzer (user ebpfmon) reads the configuration */
	snprintf(n->notify_path, sizeof(n->notify_path), "%s/notify.sock", n->tmpdir);
	snprintf(n->loader_log, sizeof(n->loader_log), "%s/loader.log", n->tmpdir);
}

static int ns_fd(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int nsb_topology(struct nsb *n, char *const *extra_peer_v4, size_t n_extra)
{
	char peer_ns_path[128], batch[128];
	int err;

	if (RUN(false, "ip", "netns", "add", n->mon_ns))
		return -EIO;
	n->made_mon = true;
	if (RUN(false, "ip", "netns", "add", n->peer_ns))
		return -EIO;
	n->made_peer = true;
	snprintf(peer_ns_path, sizeof(peer_ns_path), NETNS_DIR "/%s", n->peer_ns);
	if (RUN(false, "ip", "-n", n->mon_ns, "link", "add", n->mon_if, "type", "veth", "peer",
		"name", n->peer_if, "netns", n->peer_ns) ||
	    RUN(false, "ip", "-n", n->mon_ns, "link", "set", "lo", "up") ||
	    RUN(false, "ip", "-n", n->peer_ns, "link", "set", "lo", "up") ||
	    RUN(false, "ip", "-n", n->mon_ns, "addr", "add", NSB_MON_V4 "/16", "dev", n->mon_if) ||
	    RUN(false, "ip", "-n", n->peer_ns, "addr", "add", NSB_PEER_V4 "/16", "dev", n->peer_if))
		return -EIO;
	if (n_extra) {
		FILE *f;

		snprintf(batch, sizeof(batch), "%s/peer-addrs.batch", n->tmpdir);
		f = fopen(batch, "we");
		if (!f)
			return -errno;
		for (size_t i = 0; i < n_extra; i++)
			fprintf(f, "addr add %s/32 dev %s\n", extra_peer_v4[i], n->peer_if);
		if (fclose(f))
			return -errno;
		if (run_argv((char *const[]){"ip", "-n", n->peer_ns, "-batch", "-", NULL}, batch,
			     false))
			return -EIO;
	}
	if (RUN(false, "ip", "-n", n->mon_ns, "link", "set", n->mon_if, "up") ||
	    RUN(false, "ip", "-n", n->peer_ns, "link", "set", n->peer_if, "up"))
		return -EIO;

	n->orig_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	n->mon_netns = ns_fd(n->mon_ns);
	n->peer_netns = ns_fd(n->peer_ns);
	if (n->orig_netns < 0 || n->mon_netns < 0 || n->peer_netns < 0) {
		fprintf(stderr, "%s: cannot open the namespaces: %s\n", n->prog, strerror(errno));
		return -errno;
	}
	/* Baseline: the peer reaches the monitored side before any BPF is loaded. */
	for (int i = 0; i < 10; i++) {
		char arg[160];

		snprintf(arg, sizeof(arg), "--net=%s", peer_ns_path);
		err = RUN(true, "nsenter", arg, "--", "ping", "-n", "-q", "-c", "1", "-W", "1",
			  NSB_MON_V4);
		if (!err)
			return 0;
		if (nsb_interrupted)
			return -EINTR;
	}
	fprintf(stderr, "%s: %s cannot ping %s without BPF\n", n->prog, n->peer_ns, NSB_MON_V4);
	return -EHOSTUNREACH;
}

int nsb_write_conf(struct nsb *n, const char *network_lines)
{
	char dbdir[128];
	FILE *f;

	/*
	 * A private database and API socket, in a folder the analyzer may write: root's until
	 * nsb_start_analyzer() hands it over, so that what the benchmark writes there as root
	 * (ban_latency's rows) is written where no other user can plant a link.
	 */
	snprintf(dbdir, sizeof(dbdir), "%s/var", n->tmpdir);
	if (mkdir(dbdir, 0700))
		return -errno;
	snprintf(n->conf, sizeof(n->conf), "%s/ebpfmon.conf", n->tmpdir);
	f = fopen(n->conf, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"# written by %s (test/bench); removed at exit\n"
		"[network]\n%s\n"
		"[database]\nsqlite_path = %s/ebpfmon.db\n"
		"[api]\nuds_socket_path = %s/api.sock\n%s\n"
		"[loader]\npin_root = %s\n",
		n->prog, network_lines, dbdir, dbdir, n->api_lines ? n->api_lines : "",
		n->pin_root);
	if (fclose(f))
		return -errno;
	return chmod(n->conf, 0644) ? -errno : 0;
}

static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

void nsb_tail(const char *path, int lines)
{
	char buf[16384];
	int count = 0;
	ssize_t len;
	char *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	len = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (len <= 0)
		return;
	buf[len] = '\0';
	for (p = buf + len; p > buf; p--)
		if (p[-1] == '\n' && ++count > lines)
			break;
	fprintf(stderr, "  --- %s (last lines) ---\n", path);
	while (*p) {
		size_t l = strcspn(p, "\n");

		fprintf(stderr, "  | %.*s\n", (int)l, p);
		p += l + (p[l] == '\n');
	}
}

static bool child_exited(pid_t *pidp, int *status)
{
	if (*pidp > 0 && waitpid(*pidp, status, WNOHANG) == *pidp) {
		*pidp = 0;
		return true;
	}
	return false;
}

int nsb_start_loader(struct nsb *n, unsigned int timeout_s)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char ns_arg[128];
	uint64_t deadline;
	int status;

	n->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", n->notify_path);
	if (n->notify_fd < 0 || bind(n->notify_fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    chmod(n->notify_path, 0666)) /* the loader sends READY=1 after dropping to ebpfmon */
		return -errno;
	snprintf(ns_arg, sizeof(ns_arg), "--net=" NETNS_DIR "/%s", n->mon_ns);

	n->loader_pid = fork();
	if (n->loader_pid < 0)
		return -errno;
	if (n->loader_pid == 0) {
		int fd = open_log(n->loader_log), in = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("NOTIFY_SOCKET", n->notify_path, 1);
		execlp("nsenter", "nsenter", ns_arg, "--", n->loader, "-c", n->conf, "-i",
		       n->mon_if, "--pin-root", n->pin_root, (char *)NULL);
		fprintf(stderr, "cannot run nsenter: %s\n", strerror(errno));
		_exit(127);
	}

	deadline = mono_ms() + timeout_s * 1000ull;
	while (mono_ms() < deadline) {
		struct pollfd pfd = {.fd = n->notify_fd, .events = POLLIN};
		char msg[4096], *save = NULL;
		ssize_t len;

		if (nsb_interrupted)
			return -EINTR;
		if (child_exited(&n->loader_pid, &status)) {
			fprintf(stderr, "%s: ebpfmon-loader exited (status 0x%x) before READY=1\n",
				n->prog, status);
			nsb_tail(n->loader_log, 20);
			return -ECHILD;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		len = recv(n->notify_fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
		if (len <= 0)
			continue;
		msg[len] = '\0';
		for (char *line = strtok_r(msg, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (!strcmp(line, "READY=1")) {
				/* Nothing else is read from it: close it rather than let the
				 * loader block on a full queue later. */
				close(n->notify_fd);
				n->notify_fd = -1;
				unlink(n->notify_path);
				return 0;
			}
		}
	}
	fprintf(stderr, "%s: no READY=1 from ebpfmon-loader within %u s\n", n->prog, timeout_s);
	nsb_tail(n->loader_log, 20);
	return -ETIMEDOUT;
}

static bool log_has(const char *path, const char *needle)
{
	char buf[65536];
	ssize_t len;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	len = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	return strstr(buf, needle) != NULL;
}

/*
 * TMPDIR/var and what is in it to the analyzer's user, through descriptors, while it is
 * root's still (what is in it was written by root alone); a second start finds it handed
 * over and changes nothing. 0 or -errno.
 */
static int hand_over_var(const struct nsb *n)
{
	struct passwd *pw = getpwnam(USER_NAME);
	char dbdir[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int fd, err = 0;
	DIR *d;

	if (!pw)
		return -ENOENT;
	snprintf(dbdir, sizeof(dbdir), "%s/var", n->tmpdir);
	fd = open(dbdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!fstat(fd, &st) && st.st_uid != 0) {
		close(fd);
		return 0;
	}
	d = fdopendir(dup(fd));
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    fchownat(fd, e->d_name, pw->pw_uid, pw->pw_gid, AT_SYMLINK_NOFOLLOW))
			err = -errno;
	if (d)
		closedir(d);
	if (!err && fchown(fd, pw->pw_uid, pw->pw_gid))
		err = -errno;
	close(fd);
	return err;
}

int nsb_start_analyzer(struct nsb *n, unsigned int timeout_s)
{
	char comm[64] = "";
	uint64_t deadline;
	int status, err;
	FILE *f;

	err = hand_over_var(n);
	if (err) {
		fprintf(stderr, "%s: cannot give %s/var to %s: %s\n", n->prog, n->tmpdir, USER_NAME,
			strerror(-err));
		return err;
	}

	n->analyzer_runs++;
	snprintf(n->analyzer_log, sizeof(n->analyzer_log), "%s/analyzer-%u.log", n->tmpdir,
		 n->analyzer_runs);
	n->analyzer_pid = fork();
	if (n->analyzer_pid < 0)
		return -errno;
	if (n->analyzer_pid == 0) {
		int fd = open_log(n->analyzer_log), in = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (fd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		unsetenv("NOTIFY_SOCKET");
		execlp("setpriv", "setpriv", "--reuid", USER_NAME, "--regid", USER_NAME,
		       "--init-groups", "--inh-caps=-all", "--bounding-set=-all", n->analyzer, "-c",
		       n->conf, "--pin-root", n->pin_root, "--wait", "10", (char *)NULL);
		fprintf(stderr, "cannot run setpriv: %s\n", strerror(errno));
		_exit(127);
	}
	deadline = mono_ms() + timeout_s * 1000ull;
	for (;;) {
		if (nsb_interrupted)
			return -EINTR;
		if (child_exited(&n->analyzer_pid, &status)) {
			fprintf(stderr,
				"%s: ebpfmon-analyzer exited (status 0x%x) before 'ready'\n",
				n->prog, status);
			nsb_tail(n->analyzer_log, 20);
			return -ECHILD;
		}
		if (log_has(n->analyzer_log, "ready"))
			break;
		if (mono_ms() >= deadline) {
			fprintf(stderr, "%s: no 'ready' line from ebpfmon-analyzer within %u s\n",
				n->prog, timeout_s);
			nsb_tail(n->analyzer_log, 20);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	/* setpriv execs the analyzer: the pid we forked is the analyzer's, uid ebpfmon. */
	snprintf(comm, sizeof(comm), "/proc/%d/comm", (int)n->analyzer_pid);
	f = fopen(comm, "re");
	if (!f || !fgets(comm, sizeof(comm), f) || strncmp(comm, "ebpfmon-analyz", 14)) {
		fprintf(stderr, "%s: pid %d is not the analyzer (%s)\n", n->prog,
			(int)n->analyzer_pid, comm);
		if (f)
			fclose(f);
		return -ESRCH;
	}
	fclose(f);
	return 0;
}

int nsb_stop_analyzer(struct nsb *n)
{
	pid_t pid = n->analyzer_pid;
	int status;

	if (pid <= 0)
		return -ESRCH;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			n->analyzer_pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(50000);
	}
	stop_pid(&n->analyzer_pid, "ebpfmon-analyzer");
	return -ETIMEDOUT;
}

bool nsb_analyzer_alive(struct nsb *n)
{
	int status;

	if (n->analyzer_pid <= 0)
		return false;
	if (child_exited(&n->analyzer_pid, &status)) {
		fprintf(stderr, "%s: ebpfmon-analyzer died (status 0x%x)\n", n->prog, status);
		nsb_tail(n->analyzer_log, 20);
		return false;
	}
	return true;
}

int nsb_db_path(const struct nsb *n, char *path, size_t len)
{
	struct stat st;

	snprintf(path, len, "%s/var/ebpfmon.db", n->tmpdir);
	if (lstat(path, &st))
		return -errno;
	return S_ISREG(st.st_mode) ? 0 : -ELOOP;
}

int nsb_map_fd(const struct nsb *n, const char *name)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/maps/%s", n->pin_root, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = -errno;
		fprintf(stderr, "%s: bpf_obj_get %s: %s\n", n->prog, path, strerror(errno));
	}
	return fd;
}

int nsb_socket(const struct nsb *n, int netns_fd, int domain, int type)
{
	int fd, err;

	if (setns(netns_fd, CLONE_NEWNET))
		return -errno;
	fd = socket(domain, type | SOCK_CLOEXEC, 0);
	err = fd < 0 ? -errno : 0;
	if (setns(n->orig_netns, CLONE_NEWNET)) {
		/* Stuck in the wrong namespace: nothing after this would mean anything. */
		fprintf(stderr, "%s: cannot return to the original netns: %s\n", n->prog,
			strerror(errno));
		exit(EXIT_FAILURE);
	}
	return err ? err : fd;
}

int nsb_fill_ip_stats(const struct nsb *n, int fd, uint32_t first_v4, unsigned int count)
{
	int ncpus = libbpf_num_possible_cpus();
	struct ebpfmon_ip_stats *v;
	struct timespec ts;
	uint64_t now;
	int err = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* the clock of first/last_seen_ns */
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	for (unsigned int i = 0; i < count && !err && !nsb_interrupted; i++) {
		struct ebpfmon_addr key = {.a = {[10] = 0xff, [11] = 0xff}};
		uint32_t be = htonl(first_v4 + i);
		uint64_t packets = 1 + (uint64_t)i * 7919 % 100000;

		memcpy(&key.a[12], &be, 4);
		for (int c = 0; c < ncpus; c++)
			v[c] = (struct ebpfmon_ip_stats){
				.rx_packets = packets,
				.rx_bytes = packets * 700,
				.tx_packets = packets / 2,
				.tx_bytes = packets * 60,
				.syns = i % 5,
				.first_seen_ns = now,
				.last_seen_ns = now,
			};
		if (bpf_map_update_elem(fd, &key, v, BPF_ANY)) {
			err = -errno;
			fprintf(stderr, "%s: ip_stats entry %u: %s\n", n->prog, i, strerror(errno));
		}
	}
	free(v);
	return err ?: (nsb_interrupted ? -EINTR : 0);
}
