/* onnx.c: the ONNX messages the importer reads, decoded from protobuf.
 *
 *   ModelProto     ir_version (1), producer_name (2), producer_version (3),
 *                  graph (7), opset_import (8)
 *   OperatorSetId  domain (1), version (2)
 *   GraphProto     node (1), name (2), initializer (5), input (11),
 *                  output (12), sparse_initializer (15: refused)
 *   NodeProto      input (1), output (2), name (3), op_type (4),
 *                  attribute (5), domain (7)
 *   AttributeProto name (1), f (2), i (3), s (4), t (5), g (6), floats (7),
 *                  ints (8), strings (9), type (20)
 *   TensorProto    dims (1), data_type (2), float_data (4), int32_data (5),
 *                  int64_data (7), name (8), raw_data (9), double_data (10),
 *                  external_data (13), data_location (14)
 *   ValueInfoProto name (1), type (2) -> TypeProto tensor_type (1) ->
 *                  elem_type (1), shape (2) -> dim (1) -> dim_value (1),
 *                  dim_param (2)
 * Every other field is skipped (its wire format still checked).
 *
 * A tensor's values become doubles (float types) or int64s (integer types)
 * in the arena, from raw_data (little-endian) or the typed repeated field;
 * the count must match the dimensions.  External data (data_location 1 or
 * external_data entries), a segment and a sparse initializer are refused by
 * name; a tensor whose elements would exceed MAX_BYTES is refused.  A
 * tensor of another element type than FLOAT, DOUBLE, INT32 and INT64 keeps
 * no values (OTensor.f and .i NULL): the node that reads it is refused.  Limits: at most
 * ONNX_MAX_RANK dimensions.
 */
#include "onnx.h"

#include <string.h>

static const char *const dtype_names[] = {
	"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
	"STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128",
	"BFLOAT16",
};

const char *onnx_dtype_name(int dtype)
{
	if (dtype >= 0 && dtype < (int)(sizeof dtype_names / sizeof dtype_names[0]))
		return dtype_names[dtype];
	return str_fmt("type %d", dtype);
}

/* Append an element of 'size' bytes to array *v of *n (capacity *cap). */
static void *grow(void *v, int64_t n, int64_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	int64_t nc = *cap ? 2 * *cap : 4;
	v = alloc_grow(v, size * (size_t)*cap, size * (size_t)nc);
	*cap = nc;
	return v;
}
#define PUSH(arr, n, cap) ((arr) = grow((arr), (n), &(cap), sizeof *(arr)), &(arr)[(n)++])

/* ---- TensorProto */

static size_t elem_size(int dtype)
{
	switch (dtype) {
	case ONNX_FLOAT:
	case ONNX_INT32:
		return 4;
	case ONNX_DOUBLE:
	case ONNX_INT64:
		return 8;
	}
	return 0;
}

/* Values from raw_data's little-endian bytes. */
static void from_raw(Pb *r, OTensor *t, const Pb *raw)
{
	size_t len = (size_t)(raw->end - raw->p), sz = elem_size(t->dtype);
	if (len != (size_t)t->n * sz)
		pb_fail(r, "tensor '%s': raw_data holds %zu bytes; %lld elements of %s need %zu",
			t->name, len, (long long)t->n, onnx_dtype_name(t->dtype), (size_t)t->n * sz);
	bool fl = t->dtype == ONNX_FLOAT || t->dtype == ONNX_DOUBLE;
	if (fl)
		t->f = alloc(sizeof(double) * (size_t)t->n);
	else
		t->i = alloc(sizeof(int64_t) * (size_t)t->n);
	for (int64_t k = 0; k < t->n; k++) {
		const uint8_t *p = raw->p + (size_t)k * sz;
		uint64_t u = 0;
		for (size_t b = sz; b-- > 0;)
			u = u << 8 | p[b];
		if (t->dtype == ONNX_FLOAT) {
			uint32_t w = (uint32_t)u;
			float x;
			memcpy(&x, &w, sizeof x);
			t->f[k] = (double)x;
		} else if (t->dtype == ONNX_DOUBLE) {
			memcpy(&t->f[k], &u, sizeof u);
		} else if (t->dtype == ONNX_INT32) {
			t->i[k] = (int32_t)(uint32_t)u;
		} else {
			t->i[k] = (int64_t)u;
		}
	}
}

static OTensor *read_tensor(Pb r)
{
	OTensor *t = alloc(sizeof *t);
	t->name = "";
	int64_t *dims = NULL, n_dims = 0, cap_dims = 0, n_vals = 0, cap_vals = 0;
	void *vals = NULL;
	int vals_field = 0;
	bool has_raw = false, external = false;
	Pb raw = {0};
	PbField f;
	Pb r0 = r;
	while (pb_next(&r, &f)) {
		switch (f.num) {
		case 1:
			pb_repeated(&r, &f, PB_INT64, (void **)&dims, &n_dims, &cap_dims);
			break;
		case 2:
			t->dtype = (int)pb_int(&r, &f);
			break;
		case 3:
			pb_fail(&r, "a tensor in segments (not supported)");
		case 4:
		case 5:
		case 7:
		case 10:
			if (vals_field && vals_field != (int)f.num)
				pb_fail(&r, "a tensor with values in two fields");
			vals_field = (int)f.num;
			pb_repeated(&r, &f, f.num == 4 ? PB_FLOAT : f.num == 10 ? PB_DOUBLE : PB_INT64,
				    &vals, &n_vals, &cap_vals);
			break;
		case 8:
			t->name = pb_string(&r, &f);
			break;
		case 9:
			raw = pb_message(&r, &f, r.msg);
			has_raw = true;
			break;
		case 13:
			(void)pb_message(&r, &f, r.msg);
			external = true;
			break;
		case 14:
			external |= pb_int(&r, &f) == 1;
			break;
		}
	}
	if (external)
		error_at((Loc){0},
			 "tensor '%s' keeps its data in an external file, which gradc does not "
			 "read (save the model with its weights inside: onnx.save(model, path, "
			 "save_as_external_data=False))",
			 t->name);
	if (n_dims > ONNX_MAX_RANK)
		error_at((Loc){0}, "tensor '%s' has %lld dimensions, more than %d", t->name,
			 (long long)n_dims, ONNX_MAX_RANK);
	t->rank = (int)n_dims;
	t->n = 1;
	for (int k = 0; k < t->rank; k++) {
		t->dim[k] = dims[k];
		if (dims[k] < 0 || dims[k] > MAX_BYTES || (t->n *= dims[k]) > MAX_BYTES / 8)
			error_at((Loc){0}, "tensor '%s' has a bad or too large dimension %lld",
				 t->name, (long long)dims[k]);
	}
	if (has_raw && vals_field)
		pb_fail(&r0, "tensor '%s' has both raw_data and typed values", t->name);
	if (!elem_size(t->dtype))
		return t; /* neither f nor i: a node reading it is refused (in_val) */
	if (has_raw) {
		from_raw(&r0, t, &raw);
		return t;
	}
	bool fl = t->dtype == ONNX_FLOAT || t->dtype == ONNX_DOUBLE;
	int want = t->dtype == ONNX_FLOAT ? 4 : t->dtype == ONNX_DOUBLE ? 10
		   : t->dtype == ONNX_INT32 ? 5 : 7;
	if ((vals_field && vals_field != want) || n_vals != t->n)
		pb_fail(&r0, "tensor '%s' of %s %s holds %lld values in field %d; expected %lld",
			t->name, onnx_dtype_name(t->dtype), fl ? "data" : "ints", (long long)n_vals,
			vals_field, (long long)t->n);
	if (fl)
		t->f = vals ? vals : alloc(sizeof(double));
	else
		t->i = vals ? vals : alloc(sizeof(int64_t));
	return t;
}

/* ---- AttributeProto, NodeProto */

/* An attribute's type is the field its value came in (the last one, if
 * several); its 'type' field (20) only types an empty list. */
static void read_attr(Pb r, OAttr *a)
{
	PbField f;
	a->name = "";
	int64_t n_f = 0, cap_f = 0, n_i = 0, cap_i = 0;
	int seen = 0, declared = 0;
	while (pb_next(&r, &f)) {
		switch (f.num) {
		case 1:
			a->name = pb_string(&r, &f);
			break;
		case 2:
			a->f = pb_float(&r, &f);
			seen = AT_FLOAT;
			break;
		case 3:
			a->i = pb_int(&r, &f);
			seen = AT_INT;
			break;
		case 4:
			a->s = pb_string(&r, &f);
			seen = AT_STRING;
			break;
		case 5:
			a->t = read_tensor(pb_message(&r, &f, "TensorProto"));
			seen = AT_TENSOR;
			break;
		case 6:
		case 11:
			(void)pb_message(&r, &f, "GraphProto");
			seen = AT_GRAPH;
			break;
		case 7:
			pb_repeated(&r, &f, PB_FLOAT, (void **)&a->floats, &n_f, &cap_f);
			seen = AT_FLOATS;
			break;
		case 8:
			pb_repeated(&r, &f, PB_INT64, (void **)&a->ints, &n_i, &cap_i);
			seen = AT_INTS;
			break;
		case 9:
			(void)pb_message(&r, &f, r.msg);
			seen = AT_STRINGS;
			break;
		case 20:
			declared = (int)pb_int(&r, &f);
			break;
		}
	}
	a->type = seen ? seen : declared;
	a->n = a->type == AT_FLOATS ? n_f : a->type == AT_INTS ? n_i : 0;
	if (!a->ints)
		a->ints = alloc(sizeof(int64_t));
	if (!a->floats)
		a->floats = alloc(sizeof(double));
}

static void read_node(Pb r, ONode *n)
{
	PbField f;
	int64_t cap_in = 0, cap_out = 0, cap_attr = 0;
	n->name = n->op = n->domain = "";
	while (pb_next(&r, &f)) {
		switch (f.num) {
		case 1:
			*PUSH(n->in, n->n_in, cap_in) = pb_string(&r, &f);
			break;
		case 2:
			*PUSH(n->out, n->n_out, cap_out) = pb_string(&r, &f);
			break;
		case 3:
			n->name = pb_string(&r, &f);
			break;
		case 4:
			n->op = pb_string(&r, &f);
			break;
		case 5:
			read_attr(pb_message(&r, &f, "AttributeProto"), PUSH(n->attr, n->n_attr, cap_attr));
			break;
		case 7:
			n->domain = pb_string(&r, &f);
			break;
		}
	}
}

OAttr *onnx_attr(const ONode *n, const char *name)
{
	for (int64_t k = 0; k < n->n_attr; k++)
		if (!strcmp(n->attr[k].name, name)) {
			n->attr[k].used = true;
			return &n->attr[k];
		}
	return NULL;
}

/* ---- ValueInfoProto */

static void read_shape(Pb r, OValue *v)
{
	PbField f;
	v->rank = 0;
	while (pb_next(&r, &f)) {
		if (f.num != 1)
			continue;
		if (v->rank == ONNX_MAX_RANK)
			error_at((Loc){0}, "value '%s' has more than %d dimensions", v->name,
				 ONNX_MAX_RANK);
		Pb d = pb_message(&r, &f, "TensorShapeProto.Dimension");
		int k = v->rank++;
		v->dim[k] = -1;
		PbField g;
		while (pb_next(&d, &g)) {
			if (g.num == 1)
				v->dim[k] = pb_int(&d, &g);
			else if (g.num == 2)
				v->param[k] = pb_string(&d, &g);
		}
		if (v->dim[k] < -1)
			v->dim[k] = -1;
	}
}

static void read_value(Pb r, OValue *v)
{
	PbField f;
	v->name = "";
	v->rank = -1;
	while (pb_next(&r, &f)) {
		if (f.num == 1) {
			v->name = pb_string(&r, &f);
		} else if (f.num == 2) {
			Pb ty = pb_message(&r, &f, "TypeProto");
			PbField g;
			while (pb_next(&ty, &g)) {
				if (g.num != 1)
					continue;
				Pb tt = pb_message(&ty, &g, "TypeProto.Tensor");
				PbField h;
				while (pb_next(&tt, &h))
					if (h.num == 1)
						v->dtype = (int)pb_int(&tt, &h);
					else if (h.num == 2)
						read_shape(pb_message(&tt, &h, "TensorShapeProto"), v);
			}
		}
	}
}

/* ---- GraphProto, ModelProto */

static void read_graph(Pb r, OModel *m)
{
	PbField f;
	int64_t cap_node = 0, cap_init = 0, cap_in = 0, cap_out = 0;
	while (pb_next(&r, &f)) {
		switch (f.num) {
		case 1:
			read_node(pb_message(&r, &f, "NodeProto"), PUSH(m->node, m->n_node, cap_node));
			break;
		case 2:
			m->graph_name = pb_string(&r, &f);
			break;
		case 5:
			*PUSH(m->init, m->n_init, cap_init) = *read_tensor(pb_message(&r, &f, "TensorProto"));
			break;
		case 11:
			read_value(pb_message(&r, &f, "ValueInfoProto"), PUSH(m->input, m->n_input, cap_in));
			break;
		case 12:
			read_value(pb_message(&r, &f, "ValueInfoProto"),
				   PUSH(m->output, m->n_output, cap_out));
			break;
		case 15:
			error_at((Loc){0}, "the graph has sparse initializers (not supported)");
		}
	}
}

OModel *onnx_decode(const void *buf, size_t n)
{
	OModel *m = alloc(sizeof *m);
	m->producer = m->producer_version = m->graph_name = "";
	m->opset = -1;
	Pb r = pb_reader(buf, n, "ModelProto");
	PbField f;
	bool has_graph = false;
	while (pb_next(&r, &f)) {
		switch (f.num) {
		case 1:
			m->ir_version = pb_int(&r, &f);
			break;
		case 2:
			m->producer = pb_string(&r, &f);
			break;
		case 3:
			m->producer_version = pb_string(&r, &f);
			break;
		case 7:
			if (has_graph)
				pb_fail(&r, "two graphs");
			read_graph(pb_message(&r, &f, "GraphProto"), m);
			has_graph = true;
			break;
		case 8: {
			Pb s = pb_message(&r, &f, "OperatorSetIdProto");
			const char *domain = "";
			int64_t version = -1;
			PbField g;
			while (pb_next(&s, &g))
				if (g.num == 1)
					domain = pb_string(&s, &g);
				else if (g.num == 2)
					version = pb_int(&s, &g);
			if (!*domain || !strcmp(domain, "ai.onnx"))
				m->opset = version;
			break;
		}
		}
	}
	if (!has_graph)
		error_at((Loc){0}, "not an ONNX model: no graph (a truncated or empty file?)");
	return m;
}
