// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The terminal of ebpfmonctl top. Its state is global because the signal handlers and the
 * atexit handler need it; everything they call is async-signal-safe (write, tcsetattr,
 * sigaction, signal, raise, _exit). Handlers may run on nng's threads as well as on the main
 * one: they touch nothing but this state.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "args.h"
#include "term.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* the alternate screen, no cursor, cleared; and back: normal attributes, cursor, main screen */
static const char term_on[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";
static const char term_off[] = "\x1b[m\x1b[?25h\x1b[?1049l";

static struct termios term_saved;
static int term_in = -1, term_out = -1;
static int term_pipe[2] = {-1, -1};
static volatile sig_atomic_t term_raw;	  /* term_in is in the view's mode */
static volatile sig_atomic_t term_screen; /* the alternate screen is on */
static volatile sig_atomic_t term_entered;

/* Signals that end the process, and those that the view handles. */
static const int term_fatal[] = {SIGTERM, SIGHUP, SIGQUIT, SIGSEGV,
				 SIGBUS,  SIGFPE, SIGILL,  SIGABRT};
static const int term_events[] = {SIGWINCH, SIGCONT};

static void term_write(const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(term_out, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Back to how the terminal was. Async-signal-safe, and harmless when done already. */
static void term_restore(void)
{
	int saved = errno;

	if (term_screen) {
		term_write(term_off, sizeof(term_off) - 1);
		term_screen = 0;
	}
	if (term_raw) {
		tcsetattr(term_in, TCSANOW, &term_saved);
		term_raw = 0;
	}
	errno = saved;
}

/* Keys one by one without echo (signals stay: Ctrl-C is SIGINT), and the alternate screen. */
static void term_apply(void)
{
	int saved = errno;

	if (term_in >= 0) {
		struct termios raw = term_saved;

		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (!tcsetattr(term_in, TCSANOW, &raw))
			term_raw = 1;
	}
	term_write(term_on, sizeof(term_on) - 1);
	term_screen = 1;
	errno = saved;
}

static void term_notify(int event)
{
	unsigned char c = (unsigned char)event;
	int saved = errno;
	ssize_t n;

	/* when the pipe is full, it holds events enough to wake the loop */
	n = write(term_pipe[1], &c, 1);
	(void)n;
	errno = saved;
}

static void term_on_signal(int sig);

static void term_catch(int sig, int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = term_on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void term_on_signal(int sig)
{
	switch (sig) {
	case SIGWINCH:
		term_notify(CTL_TERM_RESIZED);
		return;
	case SIGCONT:
		term_notify(CTL_TERM_RESUMED);
		return;
	case SIGTSTP:
		/* stop with the terminal given back; take it again when continued */
		term_restore();
		signal(SIGTSTP, SIG_DFL);
		raise(SIGTSTP); /* SA_NODEFER: the process stops here */
		term_catch(SIGTSTP, SA_RESTART | SA_NODEFER);
		if (term_entered)
			term_apply();
		term_notify(CTL_TERM_RESUMED);
		return;
	case SIGINT:
		/* as q: quit, status 0, even while a call to the analyzer is waiting */
		term_restore();
		_exit(CTL_EXIT_OK);
	default:
		/* end by the same signal, for the parent's sake, with the terminal back */
		term_restore();
		signal(sig, SIG_DFL);
		raise(sig); /* delivered when the handler returns */
		return;
	}
}

static void term_atexit(void)
{
	term_restore();
}

int ctl_term_enter(int in_fd, int out_fd)
{
	static bool registered;
	size_t i;

	if (term_entered)
		return -EBUSY;
	if (pipe2(term_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	if (!registered) {
		if (atexit(term_atexit)) {
			close(term_pipe[0]);
			close(term_pipe[1]);
			term_pipe[0] = term_pipe[1] = -1;
			return -ENOMEM;
		}
		registered = true;
	}
	term_out = out_fd;
	term_in = in_fd >= 0 && isatty(in_fd) && !tcgetattr(in_fd, &term_saved) ? in_fd : -1;
	for (i = 0; i < ARRAY_SIZE(term_fatal); i++)
		term_catch(term_fatal[i], 0);
	for (i = 0; i < ARRAY_SIZE(term_events); i++)
		term_catch(term_events[i], SA_RESTART);
	term_catch(SIGINT, 0);
	term_catch(SIGTSTP, SA_RESTART | SA_NODEFER);
	term_entered = 1;
	term_apply();
	return term_pipe[0];
}

int ctl_term_events(void)
{
	unsigned char buf[64];
	int events = 0;
	ssize_t n, i;

	while ((n = read(term_pipe[0], buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			events |= buf[i];
	return events;
}

void ctl_term_leave(void)
{
	size_t i;

	if (!term_entered)
		return;
	term_entered = 0;
	term_restore();
	for (i = 0; i < ARRAY_SIZE(term_fatal); i++)
		signal(term_fatal[i], SIG_DFL);
	for (i = 0; i < ARRAY_SIZE(term_events); i++)
		signal(term_events[i], SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTSTP, SIG_DFL);
	close(term_pipe[0]);
	close(term_pipe[1]);
	term_pipe[0] = term_pipe[1] = -1;
	term_in = term_out = -1;
}

/* A positive number from the environment, or 0. */
static unsigned int term_env(const char *name)
{
	const char *v = getenv(name);
	uint64_t n;

	if (!v || ctl_parse_u64(v, 1, 10000, &n))
		return 0;
	return (unsigned int)n;
}

void ctl_term_size(int fd, unsigned int *width, unsigned int *height)
{
	struct winsize ws;

	memset(&ws, 0, sizeof(ws));
	if (ioctl(fd, TIOCGWINSZ, &ws))
		memset(&ws, 0, sizeof(ws));
	*width = ws.ws_col ? ws.ws_col : term_env("COLUMNS");
	*height = ws.ws_row ? ws.ws_row : term_env("LINES");
	if (!*width)
		*width = 80;
	if (!*height)
		*height = 24;
}

bool ctl_term_capable(int fd)
{
	const char *term = getenv("TERM");

	return fd >= 0 && isatty(fd) && term && *term && strcmp(term, "dumb");
}
