/* quant_emit.c: a QModel (quant.c) as plain Lua tables for emit/int8.lua,
 * which prints NAME.h and NAME.c from them and decides nothing: every
 * scale, zero point, weight, multiplier, shift, clamp and arena offset is
 * already in the tables.  Floats are passed as the exact doubles of the
 * float values the C side chose, printed as hexadecimal literals.
 */
#include "quant.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static const char *const kind_name[] = {
	[Q_QUANTIZE] = "quantize", [Q_DEQUANTIZE] = "dequantize", [Q_FC] = "fc",
	[Q_ADD] = "add", [Q_CLAMP] = "clamp", [Q_FLOAT] = "float", [Q_CONV] = "conv",
	[Q_MAXPOOL] = "maxpool", [Q_AVGPOOL] = "avgpool", [Q_CONCAT] = "concat",
};

static void set_i32s(lua_State *L, const char *k, const int32_t *v, int64_t n)
{
	lua_createtable(L, (int)n, 0);
	for (int64_t i = 0; i < n; i++) {
		lua_pushinteger(L, v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, k);
}

static void set_shape(lua_State *L, const char *k, Shape s)
{
	lua_createtable(L, s.rank, 0);
	for (int i = 0; i < s.rank; i++) {
		lua_pushinteger(L, (lua_Integer)s.dim[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, k);
}

static void push_layer(lua_State *L, const QModel *q, const QLayer *l)
{
	lua_createtable(L, 0, 20);
	set_str(L, "kind", kind_name[l->kind]);
	set_str(L, "what", l->what);
	set_int(L, "out", l->out);
	set_i32s(L, "ins", l->in, l->n_in);
	if (l->node) {
		set_str(L, "text", l->node->text);
		set_int(L, "line", l->node->loc.line);
		set_str(L, "name", l->node->name);
	}
	set_int(L, "lo", l->lo);
	lua_pushboolean(L, l->fused);
	lua_setfield(L, -2, "fused");
	set_int(L, "hi", l->hi);
	if (l->kind == Q_CONV || l->kind == Q_MAXPOOL || l->kind == Q_AVGPOOL) {
		const Window *k = &l->win;
		int32_t geo[] = {(int32_t)l->c, (int32_t)l->h, (int32_t)l->w_, (int32_t)l->co,
				 (int32_t)l->ho, (int32_t)l->wo, (int32_t)l->cg, (int32_t)l->og,
				 k->kh, k->kw, k->sh, k->sw, k->dh, k->dw, k->pt, k->pl,
				 k->count_pad, l->xzp};
		set_i32s(L, "geo", geo, 18);
	}
	if (l->kind == Q_CONCAT) {
		set_i32s(L, "cmult", l->cmult, l->n_in);
		set_i32s(L, "cshift", l->cshift, l->n_in);
	}
	if (l->kind == Q_FC || l->kind == Q_CONV) {
		set_int(L, "rows", l->rows);
		set_int(L, "cols", l->cols);
		set_int(L, "block", l->block);
		lua_pushboolean(L, l->dot4);
		lua_setfield(L, -2, "dot4");
		lua_pushboolean(L, l->pointwise);
		lua_setfield(L, -2, "pointwise");
		int64_t n = l->rows * l->cols;
		int32_t *w = alloc(sizeof(int32_t) * (size_t)n);
		for (int64_t i = 0; i < n; i++)
			w[i] = l->w[i];
		set_i32s(L, "w", w, n);
		set_i32s(L, "bias", l->bias, l->rows);
		set_i32s(L, "mult", l->mult, l->rows);
		set_i32s(L, "shift", l->shift, l->rows);
	}
	if (l->kind == Q_ADD)
		set_i32s(L, "add", l->add, 9);
	if (l->kind == Q_FLOAT) {
		set_str(L, "op", op_name[l->op]);
		set_num(L, "c0", (double)(float)l->attr[0]);
		set_num(L, "c1", (double)(float)l->attr[1]);
		set_int(L, "row", l->row);
		set_int(L, "pside", l->pside);
		if (l->pv) {
			lua_createtable(L, (int)l->pn, 0);
			for (int64_t i = 0; i < l->pn; i++) {
				lua_pushnumber(L, (double)l->pv[i]);
				lua_rawseti(L, -2, (lua_Integer)i + 1);
			}
			lua_setfield(L, -2, "pv");
		}
	}
	(void)q;
}

static void push_qmodel(lua_State *L, const QModel *q, const Options *o)
{
	lua_createtable(L, 0, 16);
	set_str(L, "prefix", q->prefix);
	set_str(L, "model", q->model);
	set_str(L, "path", q->path);
	set_int(L, "batch", q->batch);
	set_int(L, "arena", q->arena_bytes);
	set_int(L, "calib_n", q->calib_n);
	set_str(L, "name_flag", o->name ? str_fmt(" --name %s", o->name) : "");
	lua_createtable(L, q->n_in, 0);
	for (int k = 0; k < q->n_in; k++) {
		lua_createtable(L, 0, 2);
		set_str(L, "name", q->in_name[k]);
		set_shape(L, "shape", q->in_shape[k]);
		lua_rawseti(L, -2, k + 1);
	}
	lua_setfield(L, -2, "inputs");
	lua_createtable(L, q->n_out, 0);
	for (int k = 0; k < q->n_out; k++) {
		lua_createtable(L, 0, 2);
		set_str(L, "name", q->out_name[k]);
		set_shape(L, "shape", q->out_shape[k]);
		lua_rawseti(L, -2, k + 1);
	}
	lua_setfield(L, -2, "outputs");
	lua_createtable(L, q->n_val, 0);
	for (int v = 0; v < q->n_val; v++) {
		const QVal *x = &q->val[v];
		lua_createtable(L, 0, 8);
		lua_pushboolean(L, x->i8);
		lua_setfield(L, -2, "i8");
		set_int(L, "numel", x->numel);
		set_num(L, "scale", (double)x->scale);
		set_int(L, "zp", x->zp);
		set_int(L, "input", x->input);
		set_int(L, "output", x->output);
		set_int(L, "offset", x->offset);
		lua_rawseti(L, -2, v + 1);
	}
	lua_setfield(L, -2, "vals");
	lua_createtable(L, q->n_layer, 0);
	for (int s = 0; s < q->n_layer; s++) {
		push_layer(L, q, &q->layer[s]);
		lua_rawseti(L, -2, s + 1);
	}
	lua_setfield(L, -2, "layers");
}

void quant_emit(Buf *h, Buf *c, const QModel *q, const Options *o)
{
	lua_State *L = emit_lua_state();
	push_qmodel(L, q, o);
	emit_lua_call(L, "int8", "emit", 2);
	take_string(L, -2, h);
	take_string(L, -1, c);
	lua_close(L);
}
