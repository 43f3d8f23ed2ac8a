/* util.c: the compiler's memory, diagnostics and file helpers.
 *
 * Memory: one bump arena per compilation (QBE's util.c); alloc() never
 * returns NULL (out of memory is a die()), free_all() drops everything.
 * Diagnostics: error_at() formats "FILE:LINE:COL: error: MSG", the source
 * line and a caret into err_msg, then longjmps to *err_jmp: the first error
 * stops the compilation, and the caller (main, a test, the fuzzer) decides
 * what to do with the message.  Compiler bugs go to die(), which aborts.
 */
#include "gradc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

jmp_buf *err_jmp;
void (*die_hook)(void);
char err_msg[8192];
const Source *err_src;

const char *const op_name[N_OP] = {
#define OP(e, name, nin, kind, flags) name,
#include "ops.def"
#undef OP
};
const int op_nin[N_OP] = {
#define OP(e, name, nin, kind, flags) nin,
#include "ops.def"
#undef OP
};
const OpKind op_kind[N_OP] = {
#define OP(e, name, nin, kind, flags) kind,
#include "ops.def"
#undef OP
};
const unsigned op_flags[N_OP] = {
#define OP(e, name, nin, kind, flags) flags,
#include "ops.def"
#undef OP
};

/* ---- arena */

typedef struct Chunk {
	struct Chunk *next;
	size_t used, cap;
	max_align_t data[];
} Chunk;

static Chunk *chunks;
static Chunk *spare;  /* one chunk alloc_release kept for the next alloc */

void *alloc(size_t n)
{
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (!chunks || chunks->cap - chunks->used < n) {
		size_t cap = n > (1u << 20) ? n : (1u << 20);
		Chunk *c;
		if (spare && spare->cap >= cap) {
			c = spare;
			spare = NULL;
			cap = c->cap;
		} else {
			c = malloc(sizeof(Chunk) + cap);
		}
		if (!c)
			die("out of memory (%zu bytes)", n);
		c->next = chunks;
		c->used = 0;
		c->cap = cap;
		chunks = c;
	}
	void *p = (char *)chunks->data + chunks->used;
	chunks->used += n;
	memset(p, 0, n);
	return p;
}

void *alloc_grow(void *p, size_t old_n, size_t new_n)
{
	void *q = alloc(new_n);
	if (p)
		memcpy(q, p, old_n < new_n ? old_n : new_n);
	return q;
}

/* A mark of the arena, and the release of everything allocated after it
 * (fit.c tries thousands of plans; each trial's graphs go back). */
AllocMark alloc_mark(void)
{
	return (AllocMark){chunks, chunks ? chunks->used : 0};
}

void alloc_release(AllocMark m)
{
	while (chunks && chunks != m.chunk) {
		Chunk *next = chunks->next;
		if (!spare || chunks->cap > spare->cap) {
			free(spare);
			spare = chunks;
		} else {
			free(chunks);
		}
		chunks = next;
	}
	if (chunks)
		chunks->used = m.used;
}

void free_all(void)
{
	free(spare);
	spare = NULL;
	while (chunks) {
		Chunk *next = chunks->next;
		free(chunks);
		chunks = next;
	}
}

int run_command(int (*body)(void *), void *arg)
{
	jmp_buf jb;
	err_jmp = &jb;
	if (setjmp(jb)) {
		fputs(err_msg, stderr);
		free_all();
		return 1;
	}
	int rc = body(arg);
	free_all();
	return rc;
}

char *str_ndup(const char *s, size_t n)
{
	char *p = alloc(n + 1);
	memcpy(p, s, n);
	return p;
}

static char *str_vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	char *p = alloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *str_fmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = str_vfmt(fmt, ap);
	va_end(ap);
	return p;
}

void buf_printf(Buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		b->s = alloc_grow(b->s, b->len, cap);
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---- diagnostics */

/* Append the source line of 'loc' and a caret under its column.  Tabs are
 * copied to the caret line so the caret lines up in any tab width; a long
 * line is shown as a window around the column.  */
static size_t show_line(char *out, size_t cap, Loc loc)
{
	if (!err_src || loc.line <= 0)
		return 0;
	const char *p = err_src->text, *end = p + err_src->len;
	for (int l = 1; l < loc.line && p < end; p++)
		if (*p == '\n')
			l++;
	const char *e = p;
	while (e < end && *e != '\n' && *e != '\r')
		e++;
	long col = loc.col - 1, from = 0, len = (long)(e - p);
	if (col > len)
		col = len;
	if (col > 120)
		from = col - 60;
	if (len - from > 160)
		len = from + 160;
	size_t n = 0;
	n += (size_t)snprintf(out + n, cap - n, "  ");
	for (long i = from; i < len && n + 8 < cap; i++) {
		unsigned char c = (unsigned char)p[i];
		out[n++] = (char)(c == '\t' || (c >= 32 && c < 127) || c >= 128 ? c : '?');
	}
	n += (size_t)snprintf(out + n, cap - n, "\n  ");
	for (long i = from; i < col && n + 8 < cap; i++)
		out[n++] = p[i] == '\t' ? '\t' : ' ';
	n += (size_t)snprintf(out + n, cap - n, "^\n");
	return n;
}

void error_at(Loc loc, const char *fmt, ...)
{
	size_t n = 0, cap = sizeof err_msg;
	const char *path = err_src ? err_src->path : "gradc";
	if (loc.line > 0)
		n += (size_t)snprintf(err_msg, cap, "%s:%d:%d: error: ", path, loc.line, loc.col);
	else
		n += (size_t)snprintf(err_msg, cap, "%s: error: ", path);
	va_list ap;
	va_start(ap, fmt);
	n += (size_t)vsnprintf(err_msg + n, cap - n, fmt, ap);
	va_end(ap);
	if (n + 2 < cap) {
		err_msg[n++] = '\n';
		err_msg[n] = 0;
		show_line(err_msg + n, cap - n, loc);
	}
	if (!err_jmp)
		die("error_at without a handler: %s", err_msg);
	longjmp(*err_jmp, 1);
}

void error_plain(const char *fmt, ...)
{
	int n = snprintf(err_msg, sizeof err_msg, "gradc: error: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(err_msg + n, sizeof err_msg - (size_t)n, fmt, ap);
	va_end(ap);
	if ((size_t)n + 2 < sizeof err_msg)
		strcpy(err_msg + n, "\n");
	if (!err_jmp)
		die("error_plain without a handler: %s", err_msg);
	longjmp(*err_jmp, 1);
}

void usage_exit(const char *usage, const char *fmt, const char *arg)
{
	fprintf(stderr, "gradc: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	exit(2);
}

void die_at(const char *file, int line, const char *fmt, ...)
{
	fprintf(stderr, "gradc: internal error at %s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (die_hook) {
		void (*h)(void) = die_hook;
		die_hook = NULL;
		h();
	}
	abort();
}

/* ---- files */

char *read_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *p = malloc(cap);
	bool big = false;
	for (size_t k; p && (errno = 0, k = fread(p + n, 1, cap - n - 1, f)) > 0;) {
		n += k;
		if (n > MAX_READ) {
			big = true;
			break;
		}
		if (cap - n - 1 == 0) {
			char *q = realloc(p, cap * 2);
			if (!q) {
				free(p);
				p = NULL;
				break;
			}
			p = q;
			cap *= 2;
		}
	}
	/* fread's errno (EISDIR for a directory), EIO if it left none */
	int err = ferror(f) ? (errno ? errno : EIO) : 0;
	if (f != stdin)
		fclose(f);
	if (!p || err || big) {
		free(p);
		errno = big ? EFBIG : err ? err : ENOMEM;
		return NULL;
	}
	char *s = str_ndup(p, n);
	free(p);
	*len = n;
	return s;
}

void write_model_files(const char *dir, const char *prefix, const Buf *h, const Buf *c,
		       const char **hp, const char **cp)
{
	if (make_dirs(dir) != 0)
		error_plain("cannot create '%s': %s", dir, strerror(errno));
	*hp = str_fmt("%s/%s.h", dir, prefix);
	*cp = str_fmt("%s/%s.c", dir, prefix);
	if (write_file_atomic(*hp, h->s, h->len) != 0)
		error_plain("cannot write '%s': %s", *hp, strerror(errno));
	if (write_file_atomic(*cp, c->s, c->len) != 0) {
		int e = errno;
		remove(*hp);
		error_plain("cannot write '%s': %s", *cp, strerror(e));
	}
}

int write_file_atomic(const char *path, const char *data, size_t len)
{
	char *tmp = str_fmt("%s.tmp%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -1;
	size_t k = fwrite(data, 1, len, f);
	if (fclose(f) != 0 || k != len || rename(tmp, path) != 0) {
		int e = errno;
		remove(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/* mkdir -p: every missing directory of path; 0 or -1 with errno. */
int make_dirs(const char *path)
{
	char *p = str_ndup(path, strlen(path));
	for (char *s = p + (*p != 0);; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			return -1;
		if (!(*s = c))
			break;
	}
	return 0;
}
