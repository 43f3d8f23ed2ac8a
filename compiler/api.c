/* api.c: the generated API's rules, in one place.
 *
 * What a model's entry points take, in which order, and what they return
 * is decided here; the emitter (api.lua, emitter.lua: the header and the
 * prototypes, from model.api, see emit.c) and every harness that calls the
 * generated code (run.c's, driver.c's glue.h, glue.c's comparison harness
 * of the tests and glue.h of the embedded runs) take it from here instead
 * of re-deriving it.
 *
 *   1. api_describe: the inputs and parameters in declaration order (the
 *      order of the model file, never the node ids), each input's kind (a
 *      real array, or an int32_t class label and its class count), whether
 *      NAME_infer takes it, the outputs by their statements' names, the
 *      tracked scalars;
 *   2. api_call: a call of an entry point with the arguments in the one
 *      order the prototypes have, each argument named by the caller:
 *        NAME_infer(p, inputs it reads..., outputs..., arena)
 *        NAME_train_step(p, s, every input..., st, arena)
 *        NAME_grad(p, every input..., grad, st, arena)
 *   3. api_status: the status codes (gradc_rt.h's enum) and what each
 *      means, for the harnesses' messages.
 */
#include "gradc.h"

#include <string.h>

const ApiStatus api_status[] = {
	{0, "GRADC_OK", "success"},
	{1, "GRADC_EBADLABEL", "a label is outside its range"},
	{2, "GRADC_ENONFINITE", "the objective is not finite"},
	{3, "GRADC_EBLOB", "a saved blob is corrupt or truncated"},
	{4, "GRADC_ELAYOUT", "a blob of another model or layout"},
	{5, "GRADC_ENOARENA", "no arena (the static arena was left out)"},
	{-1, NULL, NULL},
};

const char *api_status_what(int status)
{
	for (int k = 0; api_status[k].name; k++)
		if (api_status[k].code == status)
			return api_status[k].what;
	return "an error";
}

/* The number of classes the int input 'id' of graph 'g' indexes:
 * the smallest logit count of the cross_entropy nodes that use it, or
 * INT32_MAX if none does.  */
int64_t label_classes(const Graph *g, int id)
{
	int64_t classes = INT32_MAX;
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op == OP_CROSS_ENTROPY && n->in[1] == id) {
			const Node *lo = &g->node[n->in[0]];
			int64_t c = lo->shape.rank ? lo->shape.dim[lo->shape.rank - 1] : 1;
			if (c < classes)
				classes = c;
		}
	}
	return classes;
}

/* Does the inference graph 'infer' take input 'name' (it reads or outputs it)? */
static bool infer_takes(const Graph *infer, const char *name)
{
	int id = infer ? find_name(infer, name) : -1;
	if (id < 0)
		return false;
	bool used = infer->node[id].n_use > 0;
	for (int o = 0; o < infer->n_out; o++)
		used = used || infer->out[o] == id;
	return used;
}

Api *api_describe(const Graph *fwd, const Graph *infer, const char *prefix)
{
	Api *a = alloc(sizeof *a);
	a->prefix = prefix;
	a->batch = fwd->batch;
	a->f64 = fwd->f64;
	a->training = fwd->has_minimize;
	int *ins = declared_nodes(fwd, OP_INPUT, &a->n_in);
	int *pas = declared_nodes(fwd, OP_PARAM, &a->n_param);
	a->in = alloc(sizeof *a->in * (size_t)(a->n_in + 1));
	for (int k = 0; k < a->n_in; k++) {
		const Node *n = &fwd->node[ins[k]];
		int64_t c = dt_is_int(n->dtype) ? label_classes(fwd, ins[k]) : 0;
		a->in[k] = (ApiInput){.id = ins[k], .name = n->name, .is_int = dt_is_int(n->dtype),
				      .size = shape_numel(n->shape),
				      .numel = node_numel(fwd, n), .classes = c < INT32_MAX ? c : 0,
				      .infer = infer_takes(infer, n->name)};
	}
	a->param = alloc(sizeof *a->param * (size_t)(a->n_param + 1));
	for (int k = 0; k < a->n_param; k++) {
		const Node *n = &fwd->node[pas[k]];
		a->param[k] = (ApiParam){.id = pas[k], .name = n->name,
					 .count = shape_numel(n->shape), .frozen = n->frozen};
	}
	a->n_out = fwd->n_out;
	a->out = alloc(sizeof *a->out * (size_t)(a->n_out + 1));
	for (int k = 0; k < a->n_out; k++) {
		const Node *n = &fwd->node[fwd->out[k]];
		a->out[k] = (ApiOutput){.id = fwd->out[k], .name = fwd->out_name[k],
					.size = shape_numel(n->shape), .numel = node_numel(fwd, n)};
	}
	a->n_track = fwd->n_track;
	a->track = alloc(sizeof *a->track * (size_t)(a->n_track + 1));
	for (int k = 0; k < a->n_track; k++)
		a->track[k] = fwd->track_name[k] ? fwd->track_name[k] : node_label(fwd, fwd->track[k]);
	return a;
}

void api_classes(Api *a, Graph *const *g, int n)
{
	for (int k = 0; k < a->n_in; k++) {
		int64_t c = INT32_MAX;
		for (int m = 0; m < n && a->in[k].is_int; m++) {
			int id = find_name(g[m], a->in[k].name);
			int64_t cm = id >= 0 ? label_classes(g[m], id) : INT32_MAX;
			c = cm < c ? cm : c;
		}
		a->in[k].classes = c < INT32_MAX ? c : 0;
	}
}

static const char *const entry_name[] = {
	[API_INFER] = "infer", [API_TRAIN] = "train_step", [API_GRAD] = "grad",
};

const char *api_call(const Api *a, ApiEntry e, ApiNamer name, const void *ctx)
{
	Buf b = {0};
	buf_printf(&b, "%s_%s(%s", a->prefix, entry_name[e], name(a, ARG_P, 0, ctx));
	if (e == API_TRAIN)
		buf_printf(&b, ", %s", name(a, ARG_S, 0, ctx));
	for (int k = 0; k < a->n_in; k++)
		if (e != API_INFER || a->in[k].infer)
			buf_printf(&b, ", %s", name(a, ARG_IN, k, ctx));
	for (int k = 0; e == API_INFER && k < a->n_out; k++)
		buf_printf(&b, ", %s", name(a, ARG_OUT, k, ctx));
	if (e == API_GRAD)
		buf_printf(&b, ", %s", name(a, ARG_GRAD, 0, ctx));
	if (e != API_INFER)
		buf_printf(&b, ", %s", name(a, ARG_ST, 0, ctx));
	buf_printf(&b, ", %s)", name(a, ARG_ARENA, 0, ctx));
	return b.s;
}
