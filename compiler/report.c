/* report.c: the static memory budget (`gradc report`, `--budget`, sweeps).
 *
 * Requires: planned graphs (plan()).
 *
 * figures() sums what a mode needs in RAM: the trainable and frozen
 * parameters (element bytes, in the caller's parameter struct), the
 * optimizer state (sgd with momentum: one buffer per trainable parameter;
 * adam: two, and a 64-bit step count; plain sgd: nothing), and the arena.
 * report() prints them for both modes, then every arena allocation (offset,
 * rounded size, live steps inclusive, the tensors sharing it: an in-place
 * result is listed in its input's allocation), then an ASCII timeline of
 * the arena, one row per kernel step (TFLM's PrintMemoryPlan).  With --json
 * it prints one object with the keys of issue 4, in a fixed order.
 * Issue 15 adds, per mode, the parameter count (trainable and frozen) and
 * the multiply-adds of one call at the report's batch (graph_macs: the
 * products and convolutions of a training step, forward and backward, or
 * of an inference), and, for training, the allocations behind kept_bytes:
 * the forward values (feature maps) live when the backward pass starts,
 * each with its tensors, model line and the backward nodes reading it.
 *
 * Limits: parameter bytes are element bytes; the emitter's struct may add
 * padding between members.  The timeline has 64 columns, so an allocation
 * smaller than a column shows only where no larger one covers the column.
 */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

enum {
	TIMELINE_COLS = 64,
};

typedef struct Buffer {
	int64_t offset, bytes;
	int first, last;
	int n_names;
	int *names;  /* node ids sharing the allocation, in step order */
} Buffer;

static int cmp_buffer(const void *x, const void *y)
{
	const Buffer *a = x, *b = y;
	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	return (a->offset > b->offset) - (a->offset < b->offset);
}

/* What interval 'id' of graph_intervals holds: a value, or a kernel's
 * scratch ("scratch(z1)"). */
static const char *buffer_name(const Graph *g, int id)
{
	return id >= 0 ? node_label(g, id) : str_fmt("scratch(%s)", node_label(g, -1 - id));
}

/* The arena allocations of planned graph 'g', by first step then offset. */
static Buffer *buffers(const Graph *g, int *n_buf)
{
	int ni, *of, nb = 0;
	Interval *iv = graph_intervals(g, &ni, &of);
	Buffer *b = alloc(sizeof(Buffer) * (size_t)(ni + 1));
	int *slot = alloc(sizeof(int) * (size_t)(ni + 1));
	for (int k = 0; k < ni; k++) {
		if (iv[k].alias >= 0)
			continue;
		slot[k] = nb;
		b[nb++] = (Buffer){iv[k].offset, iv[k].bytes, iv[k].first, iv[k].last, 0,
		                   alloc(sizeof(int) * (size_t)ni)};
	}
	for (int k = 0; k < ni; k++) {
		Buffer *x = &b[slot[iv[k].alias >= 0 ? iv[k].alias : k]];
		x->names[x->n_names++] = of[k];
		x->last = iv[k].last > x->last ? iv[k].last : x->last;
	}
	qsort(b, (size_t)nb, sizeof(Buffer), cmp_buffer);
	*n_buf = nb;
	return b;
}

/* The first step of g's backward pass (g->n_node if it has none). */
static int backward_start(const Graph *g)
{
	int start = g->n_node;
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].backward && op_kind[g->node[i].op] != K_LEAF &&
		    exec_step(g, i) < start)
			start = exec_step(g, i);
	return start;
}

/* The arena allocations of 'g' holding forward values still live when the
 * backward pass starts (the feature maps kept for it), *n of them. */
static Buffer *kept_buffers(const Graph *g, int *n)
{
	int start = backward_start(g), nb, nk = 0;
	Buffer *b = buffers(g, &nb);
	for (int k = 0; k < nb && start < g->n_node; k++) {
		bool fwd = false;
		for (int j = 0; j < b[k].n_names; j++)
			fwd |= b[k].names[j] >= 0 && !g->node[b[k].names[j]].backward;
		if (fwd && b[k].first < start && b[k].last >= start)
			b[nk++] = b[k];
	}
	*n = nk;
	return b;
}

/* The memory figures of planned graph 'g' ('flash': params in flash). */
Figures figures(const Graph *g, bool flash)
{
	Figures f = {0};
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op != OP_PARAM)
			continue;
		f.params_count += node_numel(g, n);
		if (n->frozen) {
			f.frozen_bytes += node_bytes(g, n);
		} else {
			f.params_bytes += node_bytes(g, n);
			f.trainable_count += node_numel(g, n);
		}
	}
	f.macs = graph_macs(g);
	if (g->mode == MODE_TRAIN || g->micro > 1) { /* (micro: the step of a training build) */
		/* sizeof(NAME_state): lr and the step count (a real and an int32,
		 * padded to 16 bytes in f64), then momentum or Adam's moments */
		f.optimizer_bytes = g->f64 ? 16 : 8;
		if (g->opt.kind == OPT_ADAM)
			f.optimizer_bytes += 2 * f.params_bytes;
		else if (g->opt.momentum != 0)
			f.optimizer_bytes += f.params_bytes;
		f.baseline_lower_bound_bytes = baseline_lower_bound(g);
	}
	f.arena_bytes = g->arena_bytes;
	f.lower_bound_bytes = g->lower_bound;
	f.unshared_bytes = g->unshared_bytes;
	f.flash = flash;
	f.stack_bytes = g->stack_bytes;
	f.total_bytes = f.arena_bytes + f.optimizer_bytes + f.stack_bytes;
	if (!flash)
		f.total_bytes += f.params_bytes + f.frozen_bytes;

	/* forward values still live when the backward pass starts */
	int nk;
	Buffer *b = kept_buffers(g, &nk);
	for (int k = 0; k < nk; k++)
		f.kept_bytes += b[k].bytes;
	return f;
}

/* The backward nodes reading a tensor of buffer 'b' ("" if none: the value
 * is live for the caller or a tracked mean, not for a gradient). */
static const char *kept_readers(const Graph *g, const Buffer *b)
{
	Buf r = {0};
	buf_printf(&r, "%s", "");
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		bool reads = false;
		for (int k = 0; n->backward && k < n->n_in; k++)
			for (int j = 0; j < b->n_names; j++)
				reads |= n->in[k] == b->names[j];
		if (reads)
			buf_printf(&r, "%s%s", r.len ? ", " : "", node_label(g, i));
	}
	return r.s;
}

/* ---- text */

static char buffer_letter(int k)
{
	static const char s[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	return k < (int)sizeof s - 1 ? s[k] : '*';
}

static const char *gap_note(const Figures *f)
{
	if (f->arena_bytes == f->lower_bound_bytes)
		return "arena = lower bound";
	return str_fmt("arena exceeds the lower bound by %lld bytes (%.1f%%)",
	               (long long)(f->arena_bytes - f->lower_bound_bytes),
	               100.0 * (double)(f->arena_bytes - f->lower_bound_bytes) /
	                   (double)(f->lower_bound_bytes ? f->lower_bound_bytes : 1));
}

static void figure_row(Buf *b, const char *what, const Figures *t, const Figures *i, size_t off)
{
	buf_printf(b, "  %-18s", what);
	const Figures *f[2] = {t, i};
	for (int k = 0; k < 2; k++) {
		if (f[k])
			buf_printf(b, " %12lld", (long long)*(const int64_t *)((const char *)f[k] + off));
		else
			buf_printf(b, " %12s", "-");
	}
	buf_printf(b, "\n");
}

static void figures_table(Buf *b, const Figures *t, const Figures *i)
{
	buf_printf(b, "  %-18s %12s %12s\n", "bytes", "training", "inference");
	figure_row(b, "trainable params", t, i, offsetof(Figures, params_bytes));
	figure_row(b, "frozen params", t, i, offsetof(Figures, frozen_bytes));
	figure_row(b, "optimizer state", t, i, offsetof(Figures, optimizer_bytes));
	figure_row(b, "arena", t, i, offsetof(Figures, arena_bytes));
	figure_row(b, "lower bound", t, i, offsetof(Figures, lower_bound_bytes));
	figure_row(b, "unshared", t, i, offsetof(Figures, unshared_bytes));
	figure_row(b, "stack", t, i, offsetof(Figures, stack_bytes));
	figure_row(b, "total RAM", t, i, offsetof(Figures, total_bytes));
	buf_printf(b, "\n  %-18s %12s %12s\n", "count", "training", "inference");
	figure_row(b, "parameters", t, i, offsetof(Figures, params_count));
	figure_row(b, "trainable", t, i, offsetof(Figures, trainable_count));
	figure_row(b, "multiply-adds", t, i, offsetof(Figures, macs));
}

/* Per allocation, the forward values the training step keeps for its
 * backward pass: bytes, live steps, tensors (model line), and the backward
 * nodes that read them. */
static void kept_list(Buf *b, const Graph *g)
{
	int nk;
	Buffer *k = kept_buffers(g, &nk);
	if (nk)
		buf_printf(b, "  %10s %11s  %s\n", "kept bytes", "steps", "tensors, and what reads them");
	for (int i = 0; i < nk; i++) {
		buf_printf(b, "  %10lld %5d-%-5d  ", (long long)k[i].bytes, k[i].first, k[i].last);
		for (int j = 0; j < k[i].n_names; j++) {
			int id = k[i].names[j];
			buf_printf(b, "%s%s", j ? ", " : "", buffer_name(g, id));
			if (id >= 0 && g->node[id].loc.line > 0 && !g->node[id].backward)
				buf_printf(b, " (line %d)", g->node[id].loc.line);
		}
		const char *r = kept_readers(g, &k[i]);
		buf_printf(b, "%s%s\n", *r ? " <- " : "", *r ? r : "  (no gradient reads it)");
	}
}

static const char *opt_str(const Optim *o)
{
	if (o->kind == OPT_ADAM)
		return str_fmt("adam (lr %g): moments m, v and a step count", o->lr);
	if (o->momentum != 0)
		return str_fmt("sgd (lr %g, momentum %g): one momentum buffer", o->lr, o->momentum);
	return str_fmt("sgd (lr %g): state is the learning rate and step count", o->lr);
}

static void notes(Buf *b, const Graph *train, const Figures *t, const Graph *infer,
                  const Figures *i)
{
	if (train) {
		buf_printf(b, "\ntraining: %s; %s\n", opt_str(&train->opt), gap_note(t));
		int64_t base = baseline_lower_bound(train);
		if (train->micro > 1) /* fitbuild.c: the updates sum into the gradient sums */
			buf_printf(b, "  each gradient is summed as soon as it is complete\n");
		else
			buf_printf(b, "  each update runs as soon as its gradient is complete; keeping every\n"
			              "  gradient to one optimizer step at the end would need %lld bytes of\n"
			              "  arena (lower bound), %.1f%% more than this schedule's\n",
			           (long long)base,
			           100.0 * (double)(base - t->lower_bound_bytes) /
			               (double)(t->lower_bound_bytes ? t->lower_bound_bytes : 1));
		buf_printf(b, "  activations kept for backward: %lld bytes\n", (long long)t->kept_bytes);
		kept_list(b, train);
	}
	if (infer) {
		buf_printf(b, "inference: %s\n", gap_note(i));
		buf_printf(b, "  parameters baked in with --params --infer-only live in flash (const);\n"
		              "  inference RAM is then the arena alone: %lld bytes\n",
		           (long long)i->arena_bytes);
	}
	buf_printf(b, "total RAM = arena + trainable params + optimizer state + frozen params + stack\n");
	const Graph *g = train ? train : infer;
	static const char *const entry[3] = {"infer", "train_step", "grad"};
	for (int k = 0, n = 0; k < 3; k++)  /* stack.c, from the code emitted */
		if (g->entry_stack[k])
			buf_printf(b, "%s%s_%s %lld%s", n++ ? ", " : "worst-case stack: ", g->model,
			           entry[k], (long long)g->entry_stack[k],
			           k == 2 || !g->entry_stack[k + 1] ? " bytes\n" : "");
	/* the register shapes a portable file carries (GRADC_KERNELS) */
	for (int k = 0, n = 0; k < 3; k++)
		if (g->entry_stack[k] && (g->shape_stack[k][0] != g->shape_stack[k][2] ||
		                          g->shape_stack[k][1] != g->shape_stack[k][2]))
			buf_printf(b, "%s%s_%s %lld / %lld / %lld%s",
			           n++ ? ", " : "  by kernel shape (GRADC_KERNELS 1 / 2 / 3): ", g->model,
			           entry[k], (long long)g->shape_stack[k][0],
			           (long long)g->shape_stack[k][1], (long long)g->shape_stack[k][2],
			           k == 2 || !g->entry_stack[k + 1] ? "\n" : "");
}

static void buffer_list(Buf *b, const Graph *g, const Buffer *buf, int nb)
{
	buf_printf(b, "  %3s %10s %10s %6s %6s  %s\n", "buf", "offset", "bytes", "first", "last",
	           "tensors");
	for (int k = 0; k < nb; k++) {
		buf_printf(b, "  %3c %10lld %10lld %6d %6d  ", buffer_letter(k),
		           (long long)buf[k].offset, (long long)buf[k].bytes, buf[k].first, buf[k].last);
		for (int j = 0; j < buf[k].n_names; j++)
			buf_printf(b, "%s%s", j ? ", " : "", buffer_name(g, buf[k].names[j]));
		buf_printf(b, "\n");
	}
}

/* The character of one timeline cell: bytes [lo, hi) at 'step'. */
static char cell(const Buffer *buf, int nb, int step, int64_t lo, int64_t hi)
{
	int64_t mid = lo + (hi - lo) / 2;
	char any = '.';
	for (int k = 0; k < nb; k++) {
		const Buffer *x = &buf[k];
		if (step < x->first || step > x->last || x->offset >= hi || x->offset + x->bytes <= lo)
			continue;
		if (x->offset <= mid && mid < x->offset + x->bytes)
			return buffer_letter(k);
		any = buffer_letter(k);
	}
	return any;
}

static void timeline(Buf *b, const Graph *g, const Buffer *buf, int nb)
{
	int64_t arena = g->arena_bytes, col = (arena + TIMELINE_COLS - 1) / TIMELINE_COLS;
	if (nb == 0 || arena == 0)
		return;
	buf_printf(b, "  timeline: one row per kernel step, one column per %lld bytes\n",
	           (long long)col);
	for (int s = 0; s < g->n_node; s++) {
		if (op_kind[g->node[s].op] == K_LEAF || exec_step(g, s) != s)
			continue;
		int64_t live = 0;
		for (int k = 0; k < nb; k++)
			if (buf[k].first <= s && s <= buf[k].last)
				live += buf[k].bytes;
		const char *name = node_label(g, s);
		buf_printf(b, "  %5d %-14.14s |", s, name);
		for (int c = 0; c < TIMELINE_COLS && c * col < arena; c++)
			buf_printf(b, "%c", cell(buf, nb, s, c * col, (c + 1) * col));
		buf_printf(b, "| %lld\n", (long long)live);
	}
}

static void mode_detail(Buf *b, const char *title, const Graph *g)
{
	int nb;
	Buffer *buf = buffers(g, &nb);
	buf_printf(b, "\n%s arena: %d allocation%s, %lld bytes\n", title, nb, nb == 1 ? "" : "s",
	           (long long)g->arena_bytes);
	if (nb)
		buffer_list(b, g, buf, nb);
	timeline(b, g, buf, nb);
}

/* ---- json */

static void json_str(Buf *b, const char *s)
{
	buf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			buf_printf(b, "\\u%04x", c);
		else
			buf_printf(b, "%c", c);
	}
	buf_printf(b, "\"");
}

static void json_figures(Buf *b, const char *key, const Graph *g, const Figures *f)
{
	buf_printf(b, " \"%s\": ", key);
	if (!f) {
		buf_printf(b, "null,\n");
		return;
	}
	buf_printf(b, "{\"params_bytes\": %lld, \"frozen_bytes\": %lld, \"optimizer_bytes\": %lld, "
	              "\"arena_bytes\": %lld, \"lower_bound_bytes\": %lld, \"unshared_bytes\": %lld, "
	              "\"stack_bytes\": %lld, \"total_bytes\": %lld, \"kept_bytes\": %lld, "
	              "\"baseline_lower_bound_bytes\": %lld, \"params_count\": %lld, "
	              "\"trainable_count\": %lld, \"macs\": %lld, \"kept\": [",
	           (long long)f->params_bytes, (long long)f->frozen_bytes,
	           (long long)f->optimizer_bytes, (long long)f->arena_bytes,
	           (long long)f->lower_bound_bytes, (long long)f->unshared_bytes,
	           (long long)f->stack_bytes, (long long)f->total_bytes, (long long)f->kept_bytes,
	           (long long)f->baseline_lower_bound_bytes, (long long)f->params_count,
	           (long long)f->trainable_count, (long long)f->macs);
	/* the allocations of kept_bytes: the feature maps kept for backward */
	int nk;
	Buffer *k = kept_buffers(g, &nk);
	for (int i = 0; i < nk; i++) {
		buf_printf(b, "%s{\"names\": [", i ? ", " : "");
		for (int j = 0; j < k[i].n_names; j++) {
			buf_printf(b, "%s", j ? ", " : "");
			json_str(b, buffer_name(g, k[i].names[j]));
		}
		int id = k[i].names[0];
		buf_printf(b, "], \"bytes\": %lld, \"first\": %d, \"last\": %d, \"line\": %d, "
		              "\"read_by\": ",
		           (long long)k[i].bytes, k[i].first, k[i].last,
		           id >= 0 ? g->node[id].loc.line : 0);
		json_str(b, kept_readers(g, &k[i]));
		buf_printf(b, "}");
	}
	buf_printf(b, "]},\n");
}

static void json_buffers(Buf *b, const char *mode, const Graph *g, bool *first)
{
	int nb;
	Buffer *buf = g ? buffers(g, &nb) : NULL;
	for (int k = 0; g && k < nb; k++) {
		buf_printf(b, "%s  {\"mode\": \"%s\", \"names\": [", *first ? "" : ",\n", mode);
		for (int j = 0; j < buf[k].n_names; j++) {
			buf_printf(b, "%s", j ? ", " : "");
			json_str(b, buffer_name(g, buf[k].names[j]));
		}
		buf_printf(b, "], \"offset\": %lld, \"bytes\": %lld, \"first\": %d, \"last\": %d}",
		           (long long)buf[k].offset, (long long)buf[k].bytes, buf[k].first,
		           buf[k].last);
		*first = false;
	}
}

static void report_json(Buf *b, const Graph *train, const Graph *infer, const Figures *t,
                        const Figures *i)
{
	const Graph *g = train ? train : infer;
	buf_printf(b, "{\"model\": ");
	json_str(b, g->model);
	buf_printf(b, ", \"batch\": %d, \"dtype\": \"%s\",\n", g->batch * (g->micro > 1 ? g->micro : 1),
	           g->f64 ? "f64" : "f32");
	json_figures(b, "train", train, t);
	json_figures(b, "infer", infer, i);
	bool first = true;
	buf_printf(b, " \"buffers\": [\n");
	json_buffers(b, "train", train, &first);
	json_buffers(b, "infer", infer, &first);
	buf_printf(b, "%s ]}\n", first ? "" : "\n");
}

/* Append the report of both modes to 'b' (text or JSON). */
void report(Buf *b, const Graph *train, const Graph *infer, bool json)
{
	const Graph *g = train ? train : infer;
	if (!g)
		die("report without a graph");
	Figures ft, fi;
	if (train)
		ft = figures(train, false);
	if (infer)
		fi = figures(infer, false);
	const Figures *t = train ? &ft : NULL, *i = infer ? &fi : NULL;
	if (json) {
		report_json(b, train, infer, t, i);
		return;
	}
	buf_printf(b, "gradc report: model %s, batch %d, dtype %s, arena alignment %d bytes\n\n",
	           g->model, g->batch * (g->micro > 1 ? g->micro : 1), g->f64 ? "f64" : "f32",
	           g->target->align);
	if (g->micro > 1)  /* fitbuild.c: the training graph is one micro-batch's */
		buf_printf(b, "training in %d micro-batches of %d: the training figures and buffers "
		              "are one micro-batch's step and the gradient sums\n\n", g->micro, g->batch);
	figures_table(b, t, i);
	notes(b, train, t, infer, i);
	if (train)
		mode_detail(b, "training", train);
	if (infer)
		mode_detail(b, "inference", infer);
}

/* The header line of --sweep-batch. */
void report_sweep_header(Buf *b)
{
	buf_printf(b, "%6s %14s %14s %14s %8s\n", "batch", "train_total", "infer_total",
	           "kept_for_bwd", "ratio");
}

/* One --sweep-batch row for graphs planned at 'batch'. */
void report_sweep_row(Buf *b, int batch, const Graph *train, const Graph *infer)
{
	Figures t = train ? figures(train, false) : (Figures){0};
	Figures i = infer ? figures(infer, false) : (Figures){0};
	buf_printf(b, "%6d", batch);
	if (train)
		buf_printf(b, " %14lld", (long long)t.total_bytes);
	else
		buf_printf(b, " %14s", "-");
	if (infer)
		buf_printf(b, " %14lld", (long long)i.total_bytes);
	else
		buf_printf(b, " %14s", "-");
	if (train)
		buf_printf(b, " %14lld", (long long)t.kept_bytes);
	else
		buf_printf(b, " %14s", "-");
	if (train && infer && i.total_bytes > 0)
		buf_printf(b, " %7.2fx\n", (double)t.total_bytes / (double)i.total_bytes);
	else
		buf_printf(b, " %8s\n", "-");
}
