/* hostcc.c: the temporary directory of a host build, shared by `gradc
 * run`, `gradc check` and `gradc train` (driver.c).
 *
 * make_tmpdir creates it (mkdtemp under $TMPDIR or /tmp) and from then on
 * removes it on every exit path: drop_tmpdir when the caller is done or
 * unwinds an error, die_hook on a compiler bug, and a handler of SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT and SIGPIPE that removes it and dies of the
 * signal.  The files in it are flat (no subdirectories).
 */
#define _XOPEN_SOURCE 700
#include "host.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#define lua_scripts runtime_src
#include "runtime_src.h"
#undef lua_scripts
#pragma GCC diagnostic pop


static char *volatile tmpdir; /* removed by cleanup(); NULL: none */

/* Remove the directory and what is in it (no arena allocation: it also
 * runs from a signal handler and from die_hook).  */
void cleanup(void)
{
	char *dir = tmpdir;
	if (!dir)
		return;
	tmpdir = NULL;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char p[4096];
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
				remove(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
enum { N_SIGS = sizeof sigs / sizeof sigs[0] };
static struct sigaction old_sa[N_SIGS];

/* A signal while the directory exists: remove it, then die of the signal. */
static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Catch the signals (on) or give them back their old handlers. */
static void guard_signals(bool on)
{
	for (int i = 0; i < N_SIGS; i++) {
		if (on) {
			struct sigaction sa;
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = on_signal;
			sigemptyset(&sa.sa_mask);
			sigaction(sigs[i], &sa, &old_sa[i]);
		} else {
			sigaction(sigs[i], &old_sa[i], NULL);
		}
	}
	die_hook = on ? cleanup : NULL;
}

void make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	if (!t || !*t)
		t = "/tmp";
	char *p = str_fmt("%s/gradc-XXXXXX", t);
	guard_signals(true);
	if (!mkdtemp(p))
		error_plain("cannot create a temporary directory in '%s': %s", t, strerror(errno));
	tmpdir = p;
}

const char *tmp_path(const char *name)
{
	return str_fmt("%s/%s", tmpdir, name);
}

void put_file(const char *name, const char *text, size_t len)
{
	const char *p = tmp_path(name);
	FILE *f = fopen(p, "wb");
	bool ok = f && (!len || fwrite(text, 1, len, f) == len);
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
		error_plain("cannot write '%s': %s", p, strerror(errno));
}

/* 's' quoted for sh. */
const char *sh_quote(const char *s)
{
	Buf b = {0};
	buf_printf(&b, "'");
	for (; *s; s++)
		if (*s == '\'')
			buf_printf(&b, "'\\''");
		else
			buf_printf(&b, "%c", *s);
	buf_printf(&b, "'");
	return b.s;
}

/* The last 'max' bytes of file 'name' in the directory, for messages. */
const char *log_tail(const char *name, size_t max)
{
	size_t n;
	char *s = read_file(tmp_path(name), &n);
	if (!s || !n)
		return "";
	return n > max ? str_fmt("...%s", s + n - max) : s;
}

/* Build gradc_harness.c, PREFIX.c and the runtime of the directory into
 * gradc_harness with $CC (default cc) -std=c99 -O2; on failure an error
 * naming 'path' and 'what' (the kind of code) with the compiler's last
 * words. */
void build_harness(const char *path, const char *prefix, const char *what)
{
	const char *cc = getenv("CC");
	if (!cc || !*cc)
		cc = "cc";
	const char *cmd = str_fmt("%s -std=c99 -O2 -o %s %s %s %s -lm >%s 2>&1", cc,
				  sh_quote(tmp_path("gradc_harness")),
				  sh_quote(tmp_path("gradc_harness.c")),
				  sh_quote(tmp_path(str_fmt("%s.c", prefix))),
				  sh_quote(tmp_path("gradc_rt.c")), sh_quote(tmp_path("cc.log")));
	int st = system(cmd);
	if (st != 0)
		error_plain("%s: the generated %s did not build with '%s' (status %d):\n%s",
			    path, what, cc, WIFEXITED(st) ? WEXITSTATUS(st) : st,
			    log_tail("cc.log", 4000));
}

/* The runtime (embedded in gradc) into the directory. */
void put_runtime(void)
{
	/* the Makefile embeds gradc_rt.h, then gradc_rt.c (both named "gradc_rt") */
	if (!runtime_src[0].text || !runtime_src[1].text
	    || !strstr(runtime_src[0].text, "#define GRADC_RT_H"))
		die("build/runtime_src.h: not gradc_rt.h then gradc_rt.c");
	put_file("gradc_rt.h", runtime_src[0].text, strlen(runtime_src[0].text));
	put_file("gradc_rt.c", runtime_src[1].text, strlen(runtime_src[1].text));
}

void drop_tmpdir(void)
{
	cleanup();
	guard_signals(false);
}

void in_tmpdir(void (*body)(void *), void *arg)
{
	jmp_buf jb, *prev = err_jmp;
	err_jmp = &jb;
	if (setjmp(jb)) {
		err_jmp = prev;
		drop_tmpdir();
		longjmp(*prev, 1);
	}
	make_tmpdir();
	body(arg);
	drop_tmpdir();
	err_jmp = prev;
}
