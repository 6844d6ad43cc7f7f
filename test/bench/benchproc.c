// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Third-party programs beside the nsbench.h rig; see benchproc.h. */
#include "benchproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS     64
#define MAX_SPAWNED  8
#define STOP_WAIT_MS 5000

static struct {
	pid_t pid;
	char name[32];
} spawned[MAX_SPAWNED];

static void bp_cleanup(void)
{
	for (int i = 0; i < MAX_SPAWNED; i++)
		if (spawned[i].pid > 0)
			bp_stop(&spawned[i].pid, spawned[i].name);
}

void bp_init(void)
{
	atexit(bp_cleanup);
}

/* argv, prefixed with nsenter --net=/run/netns/NETNS -- when netns is set, into buf. */
static int ns_argv(const char *netns, char *const argv[], char **buf, char *ns_arg, size_t len)
{
	int k = 0;

	if (netns) {
		snprintf(ns_arg, len, "--net=/run/netns/%s", netns);
		buf[k++] = "nsenter";
		buf[k++] = ns_arg;
		buf[k++] = "--";
	}
	for (int i = 0; argv[i]; i++) {
		if (k == MAX_ARGS - 1)
			return -E2BIG;
		buf[k++] = argv[i];
	}
	buf[k] = NULL;
	return 0;
}

static void child_exec(char **argv, int out_fd)
{
	int in = open("/dev/null", O_RDONLY);

	setpgid(0, 0); /* a terminal's ^C is the benchmark's to handle */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (in < 0 || dup2(in, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(127);
	execvp(argv[0], argv);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int bp_run(const char *netns, char *const argv[], char *out, size_t outlen)
{
	char *av[MAX_ARGS], ns_arg[128], sink[4096];
	size_t len = 0;
	int pfd[2], status, err;
	pid_t pid;

	if ((err = ns_argv(netns, argv, av, ns_arg, sizeof(ns_arg))))
		return err;
	if (!out || !outlen) {
		out = sink;
		outlen = sizeof(sink);
	}
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0)
		child_exec(av, pfd[1]);
	close(pfd[1]);
	for (;;) {
		char *dst = len < outlen - 1 ? out + len : sink; /* past outlen: read and drop */
		size_t room = len < outlen - 1 ? outlen - 1 - len : sizeof(sink);
		ssize_t r = read(pfd[0], dst, room);

		if (r > 0) {
			if (dst != sink)
				len += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR && !nsb_interrupted)
			continue;
		break;
	}
	out[len] = '\0';
	close(pfd[0]);
	if (nsb_interrupted) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		return -EINTR;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

pid_t bp_spawn(const char *netns, char *const argv[], const char *log_path)
{
	char *av[MAX_ARGS], ns_arg[128];
	int slot = -1, fd, err;
	pid_t pid;

	for (int i = 0; i < MAX_SPAWNED && slot < 0; i++)
		if (spawned[i].pid <= 0)
			slot = i;
	if (slot < 0)
		return -EMFILE;
	if ((err = ns_argv(netns, argv, av, ns_arg, sizeof(ns_arg))))
		return err;
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (pid == 0)
		child_exec(av, fd);
	close(fd);
	spawned[slot].pid = pid;
	snprintf(spawned[slot].name, sizeof(spawned[slot].name), "%s", argv[0]);
	return pid;
}

int bp_stop(pid_t *pidp, const char *name)
{
	pid_t pid = *pidp;
	int status;

	if (pid <= 0)
		return -ESRCH;
	*pidp = 0;
	for (int i = 0; i < MAX_SPAWNED; i++)
		if (spawned[i].pid == pid)
			spawned[i].pid = 0;
	if (waitpid(pid, &status, WNOHANG) != pid) {
		struct timespec ts = {.tv_nsec = 20 * 1000000L};
		int waited = 0;

		kill(pid, SIGTERM);
		while (waitpid(pid, &status, WNOHANG) != pid) {
			if (waited >= STOP_WAIT_MS) {
				fprintf(stderr, "%s (pid %d) ignored SIGTERM for %d s: SIGKILL\n",
					name, (int)pid, STOP_WAIT_MS / 1000);
				kill(pid, SIGKILL);
				if (waitpid(pid, &status, 0) < 0)
					return -errno;
				break;
			}
			nanosleep(&ts, NULL);
			waited += 20;
		}
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int bp_wait_exit(pid_t *pidp, const char *name, unsigned int ms)
{
	struct timespec ts = {.tv_nsec = 20 * 1000000L};
	int status;

	if (*pidp <= 0)
		return -ESRCH;
	for (unsigned int waited = 0; waited < ms; waited += 20) {
		if (waitpid(*pidp, &status, WNOHANG) == *pidp) {
			for (int i = 0; i < MAX_SPAWNED; i++)
				if (spawned[i].pid == *pidp)
					spawned[i].pid = 0;
			*pidp = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		nanosleep(&ts, NULL);
	}
	return bp_stop(pidp, name);
}

int bp_stop_daemons(struct nsb *n)
{
	int err = 0;

	if (n->analyzer_pid > 0 && nsb_stop_analyzer(n) < 0)
		err = -EIO;
	if (n->loader_pid > 0) {
		int st = bp_stop(&n->loader_pid, "ebpfmon-loader");

		if (st) {
			fprintf(stderr, "%s: ebpfmon-loader exited with status %d on SIGTERM\n",
				n->prog, st);
			nsb_tail(n->loader_log, 10);
			err = -EIO;
		}
	}
	return err;
}

#define RUN(ns, ...) bp_run(ns, (char *const[]){__VA_ARGS__, NULL}, out, sizeof(out))

int bp_topology(struct nsb *n, const char *mon_addr, const char *peer_addr)
{
	char out[2048], path[128], mon_ip[64];

	if (RUN(NULL, "ip", "netns", "add", n->mon_ns))
		goto fail;
	n->made_mon = true;
	if (RUN(NULL, "ip", "netns", "add", n->peer_ns))
		goto fail;
	n->made_peer = true;
	if (RUN(NULL, "ip", "-n", n->mon_ns, "link", "add", n->mon_if, "type", "veth", "peer",
		"name", n->peer_if, "netns", n->peer_ns) ||
	    RUN(NULL, "ip", "-n", n->mon_ns, "link", "set", "lo", "up") ||
	    RUN(NULL, "ip", "-n", n->peer_ns, "link", "set", "lo", "up") ||
	    RUN(NULL, "ip", "-n", n->mon_ns, "addr", "add", (char *)mon_addr, "dev", n->mon_if) ||
	    RUN(NULL, "ip", "-n", n->peer_ns, "addr", "add", (char *)peer_addr, "dev",
		n->peer_if) ||
	    RUN(NULL, "ip", "-n", n->mon_ns, "link", "set", n->mon_if, "up") ||
	    RUN(NULL, "ip", "-n", n->peer_ns, "link", "set", n->peer_if, "up"))
		goto fail;
	n->orig_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", n->mon_ns);
	n->mon_netns = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", n->peer_ns);
	n->peer_netns = open(path, O_RDONLY | O_CLOEXEC);
	if (n->orig_netns < 0 || n->mon_netns < 0 || n->peer_netns < 0) {
		fprintf(stderr, "%s: cannot open the namespaces: %s\n", n->prog, strerror(errno));
		return -errno;
	}
	/* The monitored side answers before any BPF is loaded (DAD-free IPv4: at once). */
	snprintf(mon_ip, sizeof(mon_ip), "%.*s", (int)strcspn(mon_addr, "/"), mon_addr);
	for (int i = 0; i < 10; i++) {
		int st = RUN(n->peer_ns, "ping", "-n", "-q", "-c", "1", "-W", "1", mon_ip);

		if (!st)
			return 0;
		if (st == -EINTR)
			return st;
	}
	fprintf(stderr, "%s: %s cannot ping %s\n", n->prog, n->peer_ns, mon_ip);
	return -EHOSTUNREACH;
fail:
	fprintf(stderr, "%s: setting up the namespaces failed:\n%s", n->prog, out);
	return nsb_interrupted ? -EINTR : -EIO;
}

int bp_xdp_attached(const struct nsb *n)
{
	char out[4096];
	int st = RUN(n->mon_ns, "ip", "link", "show", "dev", (char *)n->mon_if);

	if (st)
		return st < 0 ? st : -EIO;
	return strstr(out, " xdp") != NULL;
}
