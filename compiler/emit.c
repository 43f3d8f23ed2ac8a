/* emit.c: the bridge to the Lua emitter.
 *
 * Requires: planned graphs (optimize, schedule, plan done), MODE_INFER
 *           first, then MODE_TRAIN and MODE_GRAD unless --infer-only.
 * Fills:    the two output buffers, NAME.h and NAME.c.
 *
 * 1. Open a Lua state and register every embedded script of
 *    build/lua_scripts.h (the scripts of compiler/emit) in package.preload, so
 *    `require "kernels"` works from any directory.
 * 2. Convert each graph to plain Lua tables (emit_model_table): one table
 *    per node with every field a kernel may need, ids kept 0-based as in
 *    the C graph, and each input's operand record (push_operands: its
 *    literal value, shape, broadcast strides, label, clobber flag).
 * 3. Call require("emitter").emit(model) and copy the two strings it returns.
 *
 * Errors raised in Lua are compiler bugs: die() with the Lua traceback.
 * The Lua side iterates arrays only, so the output is byte-identical for
 * the same input.
 */
#include "gradc.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#include "lua_scripts.h"
#pragma GCC diagnostic pop

static const char *const sto_name[] = {
	[STO_NONE] = "none", [STO_INPUT] = "input", [STO_PARAM] = "param",
	[STO_ARENA] = "arena", [STO_OUTPUT] = "output", [STO_GRAD] = "grad",
};
static const char *const kind_name[] = {
	[K_LEAF] = "leaf", [K_UNARY] = "unary", [K_BINARY] = "binary", [K_GRAD] = "grad",
	[K_ROW] = "row", [K_REDUCE] = "reduce", [K_OTHER] = "other",
};
static const char *const dtype_name[] = {
	[DT_F32] = "f32", [DT_F64] = "f64", [DT_I32] = "i32", [DT_I8] = "i8",
};
static const char *const form_name[] = {
	[FORM_SIMPLE] = "simple", [FORM_XT] = "xt", [FORM_PACKED] = "packed",
	[FORM_LANE] = "lane", [FORM_TILE] = "tile", [FORM_PANEL] = "panel",
};
static const char *const init_name[] = {
	[INIT_ZEROS] = "zeros", [INIT_ONES] = "ones", [INIT_CONSTANT] = "constant",
	[INIT_NORMAL] = "normal", [INIT_UNIFORM] = "uniform", [INIT_XAVIER] = "xavier",
	[INIT_HE] = "he",
};
static const char *const mode_name[] = {
	[MODE_FWD] = "fwd", [MODE_INFER] = "infer", [MODE_TRAIN] = "train", [MODE_GRAD] = "grad",
};

/* ---- table building: each helper sets t[key] of the table on top */

void set_int(lua_State *L, const char *key, int64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, key);
}

void set_num(lua_State *L, const char *key, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, key);
}

void set_str(lua_State *L, const char *key, const char *s)
{
	if (!s)
		return;
	lua_pushstring(L, s);
	lua_setfield(L, -2, key);
}

static void set_ints(lua_State *L, const char *key, const int64_t *v, int n)
{
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, (lua_Integer)v[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, key);
}

static void set_id_list(lua_State *L, const char *key, const int *v, int n)
{
	int64_t w[MAX_LIST > MAX_IN ? MAX_LIST : MAX_IN];
	for (int i = 0; i < n; i++)
		w[i] = v[i];
	set_ints(L, key, w, n);
}

static void push_matmul(lua_State *L, const Matmul *mm)
{
	lua_createtable(L, 0, 11);
	set_int(L, "m", mm->m);
	set_int(L, "n", mm->n);
	set_int(L, "k", mm->k);
	set_bool(L, "ta", mm->ta);
	set_bool(L, "tb", mm->tb);
	set_int(L, "nb", mm->nb);
	set_int(L, "sl", mm->sl);
	set_int(L, "sr", mm->sr);
	set_int(L, "sc", mm->sc);
	set_bool(L, "acc", mm->acc);
	set_int(L, "pack", mm->pack);
	set_str(L, "form", form_name[mm->form]);
	set_int(L, "mb", mm->mb);
	set_int(L, "kc", mm->kc);
	set_int(L, "mr", mm->mr);
	/* tiles: one per register shape (select.c), with its GRADC_KERNELS */
	lua_createtable(L, mm->n_tile, 0);
	for (int i = 0; i < mm->n_tile; i++) {
		const struct Tile *t = &mm->tile[i];
		lua_createtable(L, 0, 10);
		set_str(L, "form", form_name[t->form]);
		set_int(L, "v", t->v);
		set_int(L, "reg", t->reg);
		set_int(L, "mr", t->mr);
		set_int(L, "nr", t->nr);
		set_int(L, "mb", t->mb);
		set_int(L, "kc", t->kc);
		set_bool(L, "rows", t->rows);
		set_bool(L, "k2", t->k2);
		set_int(L, "kernels", t->kernels);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "tiles");
}

static void push_window(lua_State *L, const Window *w)
{
	lua_createtable(L, 0, 12);
	set_int(L, "kh", w->kh);
	set_int(L, "kw", w->kw);
	set_int(L, "sh", w->sh);
	set_int(L, "sw", w->sw);
	set_int(L, "dh", w->dh);
	set_int(L, "dw", w->dw);
	set_int(L, "pt", w->pt);
	set_int(L, "pl", w->pl);
	set_int(L, "pb", w->pb);
	set_int(L, "pr", w->pr);
	set_int(L, "groups", w->groups);
	set_bool(L, "count_pad", w->count_pad);
}

/* Node n's operand records, one per input, as n.operands: all that its
 * kernel prints of the nodes it reads (kernels.lua and group.lua read no
 * other node's table):
 *   id        the input (K:read/K:ptr name its buffer);
 *   lit       a literal's value (const, fill: folded into the formula, no
 *             array), else nil;
 *   shape, batched, full   its per-sample shape, batch flag, full dims;
 *   bcast     its strides over n's full index space (bcast_strides: 0
 *             where it is broadcast);
 *   into      reduce_to only: n's strides over the input's index space
 *             (the sum's target element of each input element);
 *   int       a class label (int32);
 *   label     how comments show it: a literal's value, its name, op#id;
 *   name      its name (the member of an accumulated gradient);
 *   clobber   Node.clobber (a loss that left its exps in its logits'
 *             buffer: the gradient reads them, optimize.c step 5).  */
static const char *operand_label(const Graph *g, int id)
{
	const Node *x = &g->node[id];
	if (x->op == OP_CONST || x->op == OP_FILL)
		return str_fmt("%g", x->attr[0]);
	return x->name ? x->name : str_fmt("%s#%d", op_name[x->op], id);
}

static void push_operands(lua_State *L, const Graph *g, const Node *n)
{
	int64_t v[MAX_RANK + 1];
	lua_createtable(L, n->n_in, 0);
	for (int k = 0; k < n->n_in; k++) {
		int id = n->in[k];
		const Node *x = &g->node[id];
		bool lit = x->op == OP_CONST || x->op == OP_FILL;
		lua_createtable(L, 0, 12);
		set_int(L, "id", id);
		if (lit)
			set_num(L, "lit", x->attr[0]);
		set_ints(L, "shape", x->shape.dim, x->shape.rank);
		set_bool(L, "batched", x->batched);
		set_ints(L, "full", v, full_dims(g, x, v));
		set_ints(L, "bcast", v, bcast_strides(g, n, x, v));
		if (n->op == OP_REDUCE_TO)
			set_ints(L, "into", v, bcast_strides(g, x, n, v));
		set_bool(L, "int", dt_is_int(x->dtype));
		set_str(L, "label", operand_label(g, id));
		set_str(L, "name", x->name);
		set_int(L, "clobber", x->clobber);
		lua_rawseti(L, -2, k + 1);
	}
}

static void push_node(lua_State *L, const Graph *g, int id)
{
	const Node *n = &g->node[id];
	int64_t dim[MAX_RANK + 1];
	lua_createtable(L, 0, 40);
	set_int(L, "id", id);
	set_str(L, "op", op_name[n->op]);
	set_str(L, "kind", kind_name[op_kind[n->op]]);
	set_bool(L, "ew", op_is(n->op, F_EW));
	set_bool(L, "update", op_is(n->op, F_UPDATE));
	set_bool(L, "contract", op_is(n->op, F_CONTRACT));
	set_ints(L, "shape", n->shape.dim, n->shape.rank);
	set_bool(L, "batched", n->batched);
	set_str(L, "type", dt_is_int(n->dtype) ? "int" : "f");
	set_str(L, "dtype", dtype_name[n->dtype]);
	lua_createtable(L, 2, 0);
	for (int i = 0; i < 2; i++) {
		lua_pushnumber(L, n->attr[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "attr");
	if (n->op == OP_MATMUL || n->mm.n_tile > 0) {  /* conv: select_conv.c's tiles */
		push_matmul(L, &n->mm);
		lua_setfield(L, -2, "mm");
	}
	if (n->win.kh > 0) {
		push_window(L, &n->win);
		lua_setfield(L, -2, "win");
	}
	set_id_list(L, "inputs", n->in, n->n_in);
	set_ints(L, "full", dim, full_dims(g, n, dim));
	if (n->n_in > 0) {
		push_operands(L, g, n);
		lua_setfield(L, -2, "operands");
	}
	set_str(L, "name", n->name);
	set_int(L, "line", n->loc.line);
	set_int(L, "col", n->loc.col);
	set_str(L, "text", n->text);
	if (n->op == OP_PARAM) {
		set_str(L, "init", init_name[n->init]);
		lua_createtable(L, 2, 0);
		for (int i = 0; i < 2; i++) {
			lua_pushnumber(L, n->init_arg[i]);
			lua_rawseti(L, -2, i + 1);
		}
		lua_setfield(L, -2, "init_arg");
		set_bool(L, "frozen", n->frozen);
		set_int(L, "grad", n->grad);
	}
	set_bool(L, "backward", n->backward);
	set_int(L, "fwd", n->fwd);
	set_str(L, "deriv", n->deriv);
	set_int(L, "fuse", n->fuse);
	set_int(L, "clobber", n->clobber);
	set_int(L, "side", n->side);
	if (n->side >= 0)  /* the sumsq summed in this product: its operand's label */
		set_str(L, "side_label", operand_label(g, g->node[n->side].in[0]));
	if (n->op == OP_RESHAPE) {  /* the same bytes: nothing to copy */
		const Node *x = &g->node[n->in[0]];
		set_bool(L, "in_place", n->sto == STO_ARENA && x->sto == STO_ARENA &&
		                        n->offset == x->offset);
	}
	set_str(L, "note", n->note);
	set_int(L, "n_use", n->n_use);
	set_str(L, "sto", sto_name[n->sto]);
	set_int(L, "offset", n->offset);
	set_int(L, "bytes", n->bytes);
	set_int(L, "scratch", n->scratch);
	set_int(L, "scratch_offset", n->scratch_offset);
	set_int(L, "first", n->first);
	set_int(L, "last", n->last);
	set_int(L, "alias", n->alias);
}

static void set_str_list(lua_State *L, const char *key, const char *const *v, int n)
{
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushstring(L, v[i] ? v[i] : "");
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, key);
}

static void push_optim(lua_State *L, const Optim *o)
{
	lua_createtable(L, 0, 8);
	set_str(L, "kind", o->kind == OPT_ADAM ? "adam" : "sgd");
	set_num(L, "lr", o->lr);
	set_num(L, "momentum", o->momentum);
	set_num(L, "beta1", o->beta1);
	set_num(L, "beta2", o->beta2);
	set_num(L, "eps", o->eps);
	set_num(L, "weight_decay", o->weight_decay);
	set_int(L, "line", o->loc.line);
}

/* Root r's kernel: the ids of the nodes fused into it, in schedule order
 * (verify_schedule keeps them contiguous right before r), as r.members. */
static void push_members(lua_State *L, const Graph *g, const int *root, int r)
{
	int first = r;
	while (first > 0 && root[first - 1] == r)
		first--;
	lua_createtable(L, r - first, 0);
	bool contract = op_is(g->node[r].op, F_CONTRACT);
	for (int j = first; j < r; j++) {
		lua_pushinteger(L, j);
		lua_rawseti(L, -2, j - first + 1);
		contract = contract || op_is(g->node[j].op, F_CONTRACT);
	}
	lua_setfield(L, -2, "members");
	/* an elementwise group's loop nest (kernel.c), as r.loops, r.unroll */
	if (!contract && (op_is(g->node[r].op, F_EW) || op_is(g->node[r].op, F_UPDATE))) {
		int64_t loop[MAX_RANK + 1];
		bool unroll;
		int lanes = g->target->vec_bytes / (g->f64 ? 8 : 4);
		set_ints(L, "loops", loop, ew_loops(g, first, r, lanes, loop, &unroll));
		set_bool(L, "unroll", unroll);
	}
	/* a reduction's loops (kernel.c): r.loops of reduce_to, r.groups of the
	 * per-sample sums */
	const Node *n = &g->node[r];
	int64_t loop[MAX_RANK + 1];
	if (n->op == OP_REDUCE_TO)
		set_ints(L, "loops", loop, reduce_loops(g, n, loop));
	if (n->op == OP_SUM || n->op == OP_MEAN || n->op == OP_SUMSQ)
		set_int(L, "groups", reduce_groups(shape_numel(g->node[n->in[0]].shape),
						   g->target->vec_bytes / (g->f64 ? 8 : 4)));
}

/* The class labels the graph reads, in the order of their first
 * cross_entropy (or its gradient), each with its class count: the smallest
 * logit count of the nodes reading it.  Lua checks them on entry. */
static void push_labels(lua_State *L, const Graph *g)
{
	int64_t *lab = alloc(sizeof(int64_t) * (size_t)(g->n_node + 1));
	int64_t *classes = alloc(sizeof(int64_t) * (size_t)(g->n_node + 1));
	int n = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Node *nd = &g->node[i];
		int y = nd->op == OP_CROSS_ENTROPY ? nd->in[1] : nd->op == OP_CE_GRAD ? nd->in[2] : -1;
		if (y < 0)
			continue;
		int64_t c = g->node[nd->in[nd->op == OP_CROSS_ENTROPY ? 0 : 1]].shape.dim[0];
		int k = 0;
		while (k < n && lab[k] != y)
			k++;
		if (k == n) {
			lab[n] = y;
			classes[n++] = c;
		} else if (c < classes[k]) {
			classes[k] = c;
		}
	}
	set_ints(L, "labels", lab, n);
	set_ints(L, "label_classes", classes, n);
}

static void push_graph(lua_State *L, const Graph *g)
{
	lua_createtable(L, 0, 20);
	/* a micro-batched step (fitbuild.c) is the build's training graph */
	set_str(L, "mode", g->micro > 1 ? "train" : mode_name[g->mode]);
	if (g->micro > 1) {
		set_int(L, "micro", g->micro);
		set_int(L, "micro_acc", g->micro_acc);
	}
	set_int(L, "batch", g->batch);
	set_int(L, "loss", g->loss);
	set_int(L, "objective", g->objective);
	set_id_list(L, "out", g->out, g->n_out);
	set_id_list(L, "track", g->track, g->n_track);
	set_id_list(L, "track_mean", g->track_mean, g->n_track);
	set_str_list(L, "out_name", g->out_name, g->n_out);
	set_str_list(L, "track_name", g->track_name, g->n_track);
	set_bool(L, "has_minimize", g->has_minimize);
	push_labels(L, g);
	set_int(L, "arena_bytes", g->arena_bytes);
	set_int(L, "lower_bound", g->lower_bound);
	set_int(L, "unshared_bytes", g->unshared_bytes);
	push_optim(L, &g->opt);
	lua_setfield(L, -2, "opt");
	int *root = alloc(sizeof(int) * (size_t)(g->n_node + 1));
	for (int i = 0; i < g->n_node; i++)
		root[i] = op_kind[g->node[i].op] == K_LEAF ? -1 : exec_step(g, i);
	lua_createtable(L, g->n_node, 0);
	for (int i = 0; i < g->n_node; i++) {
		push_node(L, g, i);
		set_int(L, "step", root[i]); /* the root that computes it, -1: a leaf */
		if (root[i] == i)
			push_members(L, g, root, i);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "nodes");
}

/* Baked parameter values (Node.value, --params), once per parameter name,
 * as model.values = { {name = "W1", text = "\t\t0x1p-3f, ..."}, ... }: the
 * initializer's rows, written by bake.c (in Lua they took seconds).  */
static void push_values(lua_State *L, Graph *const *modes, int n_modes, const Options *opt)
{
	lua_newtable(L);
	int n = 0;
	const Graph *g = n_modes > 0 ? modes[0] : NULL;
	for (int i = 0; g && i < g->n_node; i++) {
		const Node *nd = &g->node[i];
		if (nd->op != OP_PARAM || !nd->value)
			continue;
		lua_createtable(L, 0, 2);
		set_str(L, "name", nd->name);
		size_t len;
		const char *text = bake_values(nd->value, shape_numel(nd->shape), opt->f64,
					       opt->params, nd->name, &len);
		lua_pushlstring(L, text, len);
		lua_setfield(L, -2, "text");
		lua_rawseti(L, -2, ++n);
	}
}

/* The target row (target.c): what the kernels are shaped for. */
static void push_target(lua_State *L, const Target *t)
{
	lua_createtable(L, 0, 8);
	set_str(L, "name", t->name);
	set_int(L, "vec_bytes", t->vec_bytes);
	set_int(L, "vec_regs", t->vec_regs);
	set_int(L, "stack_bytes", t->stack_bytes);
	set_int(L, "align", t->align);
	set_bool(L, "fma", t->fma);
	set_bool(L, "int8_dot", t->int8_dot);
	set_int(L, "tile_bytes", t->tile_bytes);
	set_int(L, "kernels", t->kernels);
}

/* The API's rules (api.c) as model.api = {inputs = {{name, infer,
 * classes}, ...}, params = {name, ...}}, each in declaration order. */
static void push_api(lua_State *L, Graph *const *modes, int n_modes, const char *prefix)
{
	Api *a = api_describe(modes[0], modes[0], prefix);
	api_classes(a, modes, n_modes);
	lua_createtable(L, 0, 2);
	lua_createtable(L, a->n_in, 0);
	for (int k = 0; k < a->n_in; k++) {
		lua_createtable(L, 0, 3);
		set_str(L, "name", a->in[k].name);
		set_bool(L, "infer", a->in[k].infer);
		if (a->in[k].classes)
			set_int(L, "classes", a->in[k].classes);
		lua_rawseti(L, -2, k + 1);
	}
	lua_setfield(L, -2, "inputs");
	lua_createtable(L, a->n_param, 0);
	for (int k = 0; k < a->n_param; k++) {
		lua_pushstring(L, a->param[k].name);
		lua_rawseti(L, -2, k + 1);
	}
	lua_setfield(L, -2, "params");
}

/* The options that regenerate this output, for the banner's "Regenerate:"
 * line (what the command line was, so the printers need not read flags). */
static void push_regenerate(lua_State *L, const Graph *g0, const Options *opt)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	const char *sep = "";
#define FLAG(...) (luaL_addstring(&b, sep), lua_pushfstring(L, __VA_ARGS__), luaL_addvalue(&b), sep = " ")
	if (opt->batch > 0)
		FLAG("--batch %d", (int)opt->batch);
	if (opt->f64)
		FLAG("--dtype f64");
	if (opt->infer_only)
		FLAG("--infer-only");
	if (opt->no_fuse)
		FLAG("--no-fuse");
	if (strcmp(g0->target->name, "portable") != 0)
		FLAG("--target %s", g0->target->name);
	if (opt->params)
		FLAG("--params %s", opt->params);
	if (opt->name && strcmp(opt->name, g0->model) != 0)
		FLAG("--name %s", opt->name);
#undef FLAG
	luaL_pushresult(&b);
	lua_setfield(L, -2, "regenerate");
	set_str(L, "fusion", opt->no_fuse ? "no fusion (one loop nest per graph node)"
	                                  : "elementwise chains fused into their producers");
}

/* The table handed to emitter.emit(): flags, then one table per mode. */
static void push_model(lua_State *L, Graph *const *modes, int n_modes, const Options *opt)
{
	const Graph *g0 = modes[0];
	lua_createtable(L, 0, 20);
	set_str(L, "name", opt->name ? opt->name : g0->model);
	set_str(L, "model", g0->model);
	set_str(L, "model_name", g0->model_name ? g0->model_name : g0->model);
	set_str(L, "source", g0->src ? g0->src->path : "model.nn");
	set_str(L, "version", GRADC_VERSION);
	set_int(L, "batch", g0->batch);
	set_bool(L, "f64", opt->f64);
	set_bool(L, "infer_only", opt->infer_only);
	set_str(L, "params", opt->params);
	push_regenerate(L, g0, opt);
	const char *ew[N_OP];
	int n_ew = 0;
	for (int op = 0; op < N_OP; op++)
		if (op_is((Op)op, F_EW))
			ew[n_ew++] = op_name[op];
	set_str_list(L, "ew_ops", ew, n_ew); /* each needs its formula in group.lua */
	push_target(L, g0->target);
	lua_setfield(L, -2, "target");
	set_int(L, "align", g0->target->align);
	lua_createtable(L, n_modes, 0);
	for (int i = 0; i < n_modes; i++) {
		push_graph(L, modes[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "modes");
	push_values(L, modes, n_modes, opt);
	lua_setfield(L, -2, "values");
	push_api(L, modes, n_modes, opt->name ? opt->name : g0->model);
	lua_setfield(L, -2, "api");
}

/* ---- the Lua state */

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
	return 1;
}

/* package.preload loader: the embedded script named by upvalue 1. */
static int load_script(lua_State *L)
{
	int i = (int)lua_tointeger(L, lua_upvalueindex(1));
	const char *text = lua_scripts[i].text;
	const char *chunk = lua_pushfstring(L, "@emit/%s.lua", lua_scripts[i].name);
	if (luaL_loadbuffer(L, text, strlen(text), chunk) != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, lua_scripts[i].name);
	lua_call(L, 1, 1);
	return 1;
}

/* require("gradc").lane_chunks(j0, j1, lanes) -> {{start, count, width},
 * ...}, rest: kernel.c's chunks of a row loop, for conv.lua.  */
static int l_lane_chunks(lua_State *L)
{
	int64_t chunk[MAX_CHUNKS][3];
	int n;
	int64_t rest = lane_chunks(luaL_checkinteger(L, 1), luaL_checkinteger(L, 2),
	                           luaL_checkinteger(L, 3), chunk, &n);
	lua_createtable(L, n, 0);
	for (int k = 0; k < n; k++) {
		lua_createtable(L, 3, 0);
		for (int i = 0; i < 3; i++) {
			lua_pushinteger(L, chunk[k][i]);
			lua_rawseti(L, -2, i + 1);
		}
		lua_rawseti(L, -2, k + 1);
	}
	lua_pushinteger(L, rest);
	return 2;
}

/* A fresh state with the standard libraries, the embedded scripts
 * registered as modules and the module "gradc" of the C decisions the
 * printers ask for while printing (lane_chunks).  */
lua_State *emit_lua_state(void)
{
	lua_State *L = luaL_newstate();
	if (!L)
		die("cannot create a Lua state");
	luaL_openlibs(L);
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "preload");
	for (int i = 0; lua_scripts[i].name; i++) {
		lua_pushinteger(L, i);
		lua_pushcclosure(L, load_script, 1);
		lua_setfield(L, -2, lua_scripts[i].name);
	}
	lua_getfield(L, -2, "loaded");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_lane_chunks);
	lua_setfield(L, -2, "lane_chunks");
	lua_setfield(L, -2, "gradc");
	lua_pop(L, 3);
	return L;
}

/* Call require(module)[fn] with the value on top of the stack as its one
 * argument; leaves 'nret' results.  A Lua error is a compiler bug.  */
void emit_lua_call(lua_State *L, const char *module, const char *fn, int nret)
{
	int arg = lua_gettop(L);
	lua_pushcfunction(L, traceback);
	lua_getglobal(L, "require");
	lua_pushstring(L, module);
	if (lua_pcall(L, 1, 1, arg + 1) != LUA_OK)
		die("lua: %s", lua_tostring(L, -1));
	lua_getfield(L, -1, fn);
	lua_remove(L, -2);
	lua_pushvalue(L, arg);
	if (lua_pcall(L, 1, nret, arg + 1) != LUA_OK)
		die("lua: %s", lua_tostring(L, -1));
	lua_remove(L, arg + 1);
	lua_remove(L, arg);
}

void take_string(lua_State *L, int idx, Buf *b)
{
	size_t n;
	const char *s = lua_tolstring(L, idx, &n);
	if (!s)
		die("lua: the emitter returned no string");
	b->s = alloc(n + 1);
	memcpy(b->s, s, n);
	b->len = n;
	b->cap = n + 1;
}

void emit(Buf *h, Buf *c, Graph *const *modes, int n_modes, const Options *opt)
{
	if (n_modes < 1 || modes[0]->mode != MODE_INFER)
		die("emit: the first graph must be MODE_INFER");
	lua_State *L = emit_lua_state();
	push_model(L, modes, n_modes, opt);
	emit_lua_call(L, "emitter", "emit", 2);
	take_string(L, -2, h);
	take_string(L, -1, c);
	lua_close(L);
}
