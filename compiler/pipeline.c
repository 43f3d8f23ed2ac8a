/* pipeline.c: the passes in order, as every command runs them.
 *
 *   source --parse--> forward graph --lower--> batch explicit
 *     per mode (inference, training step, gradients):
 *       --autodiff--> backward + update --optimize--> dead code out, fusion
 *       --schedule--> order --plan--> arena offsets   (then emit)
 *
 * With --budget BYTES --fit, fitbuild.c starts from these planned graphs:
 * fit.c inserts recomputed forward nodes into the schedule (then plan()
 * and the verifiers again), or the gradients graph is built at a micro-
 * batch and looped over (emitter.lua).
 *
 * Options.dump (`-d LETTERS`) prints the graph after passes: p parse,
 * l lower, a autodiff, o optimize, s schedule, m plan (memory).
 */
#include "gradc.h"

#include <string.h>

static void dump(const Options *o, char pass, const char *title, const Graph *g)
{
	if (!o->dump || !strchr(o->dump, pass))
		return;
	Buf b = {0};
	dump_graph(&b, g);
	fprintf(stderr, "## after %s (%s)\n%s\n", title,
	        g->mode == MODE_INFER ? "infer" : g->mode == MODE_TRAIN ? "train"
	        : g->mode == MODE_GRAD ? "grad" : "forward", b.s ? b.s : "");
}

/* Parse and lower: the forward graph. */
Graph *front_end(const Source *src, const Options *o)
{
	err_src = src;
	Graph *g = parse(src, o);
	dump(o, 'p', "parse", g);
	lower(g);
	dump(o, 'l', "lower", g);
	return g;
}

/* The planned graph of one mode. */
Graph *build_mode(const Graph *fwd, Mode mode, const Options *o)
{
	Graph *g = autodiff(fwd, mode);
	dump(o, 'a', "autodiff", g);
	optimize(g, !o->no_fuse, !o->no_fuse && !o->no_pack);
	dump(o, 'o', "optimize", g);
	select_kernels(g, !o->no_fuse, !o->no_fuse && !o->no_pack);
	select_conv(g, !o->no_fuse);
	schedule(g);
	dump(o, 's', "schedule", g);
	plan(g);
	dump(o, 'm', "plan", g);
	if (g->arena_bytes > MAX_BYTES)  /* offsets must fit in 32 bits */
		error_plain("the %s arena of '%s' needs %lld bytes, more than %lld",
		            mode == MODE_INFER ? "inference" : "training", g->model,
		            (long long)g->arena_bytes, (long long)MAX_BYTES);
	return g;
}

