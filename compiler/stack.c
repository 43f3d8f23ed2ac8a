/* stack.c: the worst-case stack of the generated entry points, computed
 * from the C text the emitter wrote (issue 18: stack is RAM too).
 *
 * The kernels keep their tile panels and accumulators in block-scoped
 * arrays (`NAME_real pk[32][16];`); nothing else of size goes on the stack
 * (no VLAs, no recursion, no alloca).  A C compiler gives a block's arrays
 * stack only while the block is open and reuses it for the next one, so the
 * worst case of a function is the largest sum, over the blocks open at
 * once, of the arrays they declare, plus what the compiler adds of its own
 * (saved registers, spills, scalars): STACK_SLACK bytes, an allowance
 * checked against GCC's -fstack-usage (-O2, x86-64 and Cortex-M4F) in
 * tests/t_fit.sh.  A function that calls another generated function adds
 * the callee's worst case (the micro-batch loop calls its step).
 *
 * The portable target's file carries each product's kernel for every
 * register shape, under `#if GRADC_KERNELS == N` (target.c): the scan
 * keeps one shape's lines at a time, and a build's figure is the largest
 * over the shapes (the device's compiler picks one; report lists each).
 *
 * Limits: a text scan of the emitter's own output (one declaration per
 * line, comments in slash-star form, GRADC_KERNELS the only conditional
 * inside functions), not a C parser.
 */
#include "gradc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum { STACK_SLACK = 512, MAX_SCOPE = 64 };

/* The text of C file 'c' with comments blanked (same length). */
static char *strip_comments(const char *c)
{
	size_t n = strlen(c);
	char *s = alloc(n + 1);
	memcpy(s, c, n);
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '/' && s[i + 1] == '*') {
			size_t j = i + 2;
			while (j + 1 < n && !(s[j] == '*' && s[j + 1] == '/'))
				j++;
			for (size_t k = i; k < j + 2 && k < n; k++)
				if (s[k] != '\n')
					s[k] = ' ';
			i = j + 1;
		}
	return s;
}

/* Blank (keeping newlines) the lines of s outside register shape
 * 'shape': the other `#if GRADC_KERNELS == N` branches and the directives. */
static void keep_shape(char *s, int shape)
{
	enum { MAX_IF = 32 };
	struct {
		bool k, taken, on;
	} st[MAX_IF];
	int n = 0;
	for (char *p = s; *p;) {
		char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		bool blank = false, k = strstr(p, "GRADC_KERNELS") && strstr(p, "GRADC_KERNELS") < p + len;
		const char *eq = k ? strstr(p, "==") : NULL;
		int v = eq && eq < p + len ? atoi(eq + 2) : -1;
		if (!strncmp(p, "#if", 3)) {
			if (n == MAX_IF)
				die("stack: conditionals nested deeper than %d", MAX_IF);
			st[n].k = k;
			st[n].on = !k || v == shape;
			st[n].taken = st[n].on;
			n++;
			blank = k;
		} else if (!strncmp(p, "#elif", 5) && n && st[n - 1].k) {
			st[n - 1].on = !st[n - 1].taken && v == shape;
			st[n - 1].taken |= st[n - 1].on;
			blank = true;
		} else if (!strncmp(p, "#else", 5) && n && st[n - 1].k) {
			st[n - 1].on = !st[n - 1].taken;
			st[n - 1].taken = true;
			blank = true;
		} else if (!strncmp(p, "#endif", 6) && n) {
			blank = st[--n].k;
		}
		for (int i = 0; i < n && !blank; i++)
			blank = st[i].k && !st[i].on;
		if (blank)
			memset(p, ' ', len);
		p = eol ? eol + 1 : p + len;
	}
}

/* Bytes of the array declared by the line at p ("T name[a][b];"), or 0. */
static int64_t array_decl(const char *p, const char *real, int real_bytes)
{
	static const struct {
		const char *t;
		int bytes;
	} types[] = {{"float", 4}, {"double", 8}, {"int32_t", 4}, {"int64_t", 8},
	             {"int", 4}, {"unsigned char", 1}, {"uint32_t", 4}};
	while (*p == ' ' || *p == '\t')
		p++;
	int bytes = 0;
	size_t rl = strlen(real);
	if (!strncmp(p, real, rl) && p[rl] == ' ') {
		bytes = real_bytes;
		p += rl + 1;
	}
	for (size_t k = 0; !bytes && k < sizeof types / sizeof types[0]; k++) {
		size_t l = strlen(types[k].t);
		if (!strncmp(p, types[k].t, l) && p[l] == ' ') {
			bytes = types[k].bytes;
			p += l + 1;
		}
	}
	if (!bytes || !(isalpha((unsigned char)*p) || *p == '_'))
		return 0;
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	int64_t total = bytes;
	int dims = 0;
	while (*p == '[') {
		char *end;
		long long d = strtoll(p + 1, &end, 10);
		if (end == p + 1 || *end != ']')
			return 0;
		total *= d;
		dims++;
		p = end + 1;
	}
	return dims && *p == ';' ? total : 0;
}

/* The worst-case stack of function 'fn' defined in C text 'c' whose float
 * type is 'real' ('real_bytes' each); callees among fns[0..nf) add theirs.
 * -1 if 'fn' is not defined there. */
int64_t c_stack(const char *c, const char *fn, const char *real, int real_bytes,
                const char *const *fns, int nf, int shape)
{
	char *s = strip_comments(c);
	keep_shape(s, shape);
	const char *def = NULL;
	size_t l = strlen(fn);
	for (const char *p = s; (p = strstr(p, fn)) != NULL; p++) {
		const char *eol = strchr(p, '\n');
		if (p[l] == '(' && p > s && p[-1] == ' ' && eol && eol[-1] == ')' && eol[1] == '{') {
			def = eol + 1;
			break;
		}
	}
	if (!def)
		return -1;
	int64_t scope[MAX_SCOPE] = {0}, cur = 0, peak = 0, callee = 0;
	int depth = 0;
	for (const char *p = def; *p; p++) {
		if (*p == '{') {
			if (++depth >= MAX_SCOPE)
				die("stack: blocks nested deeper than %d in %s", MAX_SCOPE, fn);
			scope[depth] = 0;
		} else if (*p == '}') {
			cur -= scope[depth];
			if (--depth == 0)
				break;
		} else if (*p == '\n' || p == def) {
			int64_t b = array_decl(p + (*p == '\n'), real, real_bytes);
			scope[depth] += b;
			cur += b;
			peak = cur > peak ? cur : peak;
		} else if (*p == '(' ) {
			for (int k = 0; k < nf; k++) {
				size_t fl = strlen(fns[k]);
				if (strcmp(fns[k], fn) && (size_t)(p - def) >= fl && !strncmp(p - fl, fns[k], fl)) {
					int64_t x = c_stack(c, fns[k], real, real_bytes, fns, nf, shape);
					callee = x > callee ? x : callee;
				}
			}
		}
	}
	return peak + STACK_SLACK + callee;
}

/* The worst-case stack of each entry point of a build (infer, train_step,
 * grad; 0 where it is not built), from emitting 'modes': the largest over
 * the register shapes, and by shape (GRADC_KERNELS 1, 2, 3) in by[][]. */
void entry_stacks(Graph *const *modes, int n, const Options *o, int64_t st[3], int64_t by[3][3])
{
	Buf h = {0}, c = {0};
	emit(&h, &c, modes, n, o);
	const char *P = o->name ? o->name : modes[0]->model;
	const char *fns[4] = {str_fmt("%s_infer", P), str_fmt("%s_train_step", P),
	                      str_fmt("%s_grad", P), str_fmt("%s_micro_step_", P)};
	const char *real = str_fmt("%s_real", P);
	int rb = modes[0]->f64 ? 8 : 4;
	for (int k = 0; k < 3; k++) {
		st[k] = 0;
		for (int shape = 1; shape <= 3; shape++) {
			int64_t x = c_stack(c.s, fns[k], real, rb, fns, 4, shape);
			by[k][shape - 1] = x < 0 ? 0 : x;
			st[k] = by[k][shape - 1] > st[k] ? by[k][shape - 1] : st[k];
		}
	}
}
