/* fuzz_frontend.c: libFuzzer target for the whole compiler (lex, parse,
 * lower, and for small graphs autodiff, optimize, schedule, plan, emit).
 *
 * Each input is a model file.  It is tokenized, parsed and lowered under a
 * jmp_buf; a user error is fine, but it must be well formed (GNU format,
 * the source line, a caret).  A model that is accepted must give a sane
 * graph: inputs of every node before it, dimensions >= 1, the per-sample
 * bytes within MAX_BYTES, outputs and tracks and the objective in range.
 * Then, if it has at most BACK_MAX nodes, the entry points' graphs are
 * built (inference, and training and gradients with a `minimize`), their
 * schedules and plans verified, and the emitter runs (so its name handling
 * is fuzzed: user names against gradc's); the header must define each
 * macro once.  Anything else aborts (die() aborts too: a compiler bug),
 * and so do the sanitizers (ASan, UBSan, leaks: the arena is freed after
 * every input).
 *
 * Build and run: `make fuzz-smoke` (60 s, as part of the tests) or
 * `make fuzz FUZZ_TIME=3600` (see fuzz.mk).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradc.h"

#define CHECK(c)                                                                           \
	do {                                                                               \
		if (!(c)) {                                                                \
			fprintf(stderr, "fuzz_frontend: check failed: %s (line %d)\n", #c, \
				__LINE__);                                                 \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The diagnostic in err_msg is "fuzz.nn:L:C: error: M\n  LINE\n  ^\n" or,
 * for errors without a place, "fuzz.nn: error: M\n" / "gradc: error: M\n".  */
static void check_message(void)
{
	const char *m = err_msg;
	CHECK(!strncmp(m, "fuzz.nn:", 8) || !strncmp(m, "gradc: error: ", 14));
	CHECK(strstr(m, "error: "));
	size_t n = strlen(m);
	CHECK(n > 0 && m[n - 1] == '\n');
	const char *nl = strchr(m, '\n');
	if (!strncmp(m, "fuzz.nn:", 8) && m[8] >= '1' && m[8] <= '9') {
		CHECK(nl[1] == ' ' && nl[2] == ' '); /* the source line */
		CHECK(n >= 2 && m[n - 2] == '^');    /* the caret */
	}
}

static void check_graph(const Graph *g)
{
	CHECK(g->model && valid_name(g->model));
	CHECK(g->batch >= 1);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		CHECK(n->op >= 0 && n->op < N_OP);
		CHECK(n->n_in >= 0 && n->n_in <= MAX_IN);
		for (int k = 0; k < n->n_in; k++)
			CHECK(n->in[k] >= 0 && n->in[k] < i);
		CHECK(n->shape.rank >= 0 && n->shape.rank <= MAX_RANK);
		int64_t numel = 1;
		for (int k = 0; k < n->shape.rank; k++) {
			CHECK(n->shape.dim[k] >= 1);
			numel *= n->shape.dim[k];
			CHECK(numel <= MAX_BYTES);
		}
		if (n->name)
			CHECK(valid_name(n->name));
		CHECK(!dt_is_int(n->dtype) || n->op == OP_INPUT);
	}
	CHECK(g->n_out >= 0 && g->n_out <= MAX_LIST && g->n_track >= 0 && g->n_track <= MAX_LIST);
	for (int i = 0; i < g->n_out; i++)
		CHECK(g->out[i] >= 0 && g->out[i] < g->n_node && g->node[g->out[i]].batched);
	for (int i = 0; i < g->n_track; i++)
		CHECK(g->track[i] >= 0 && g->track[i] < g->n_node
		      && g->node[g->track[i]].shape.rank == 0);
	if (g->has_minimize)
		CHECK(g->objective >= 0 && g->objective < g->n_node
		      && g->node[g->objective].shape.rank == 0 && g->opt.lr > 0);
	else
		CHECK(g->objective == -1);
}

enum { BACK_MAX = 400 };

/* Every "#define NAME" of the header once. */
static void check_macros(const Buf *h)
{
	Buf seen = {0};
	buf_printf(&seen, " ");
	for (const char *p = h->s; (p = strstr(p, "\n#define ")) != NULL;) {
		p += 9;
		size_t n = strcspn(p, " \n");
		const char *key = str_fmt(" %.*s ", (int)n, p);
		CHECK(!strstr(seen.s, key));
		buf_printf(&seen, "%.*s ", (int)n, p);
	}
}

/* The back end on an accepted graph: every mode, verified, and emitted. */
static void back_end(const Graph *fwd, bool fuse)
{
	static const Options base;
	Options o = base;
	o.no_fuse = !fuse;
	o.infer_only = !fwd->has_minimize;
	Graph *modes[3];
	int n = 0;
	modes[n++] = build_mode(fwd, MODE_INFER, &o);
	if (fwd->has_minimize) {
		modes[n++] = build_mode(fwd, MODE_TRAIN, &o);
		modes[n++] = build_mode(fwd, MODE_GRAD, &o);
	}
	for (int k = 0; k < n; k++) {
		verify_schedule(modes[k]);
		verify_plan(modes[k]);
	}
	Buf h = {0}, c = {0};
	emit(&h, &c, modes, n, &o);
	CHECK(h.len > 0 && c.len > 0);
	check_macros(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Source src = {"fuzz.nn", str_ndup((const char *)data, size), size};
	jmp_buf jb;
	err_jmp = &jb;
	if (setjmp(jb)) {
		check_message();
	} else {
		Graph *g = parse(&src, NULL);
		lower(g);
		check_graph(g);
		if (g->n_node <= BACK_MAX) {
			back_end(g, true);
			back_end(g, size % 2);
		}
	}
	err_jmp = NULL;
	err_src = NULL;
	free_all();
	return 0;
}
