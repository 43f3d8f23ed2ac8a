/* params.c: parameter and input tensors from safetensors files.
 *
 * `--params P.safetensors` (load_params) and `gradc run`'s IN file both hand
 * the compiler tensors that must match the model exactly.  This file reads
 * them with the runtime's host reader (runtime/host/gradc_safetensors.c,
 * which checks the container: header, offsets, sizes) and checks what only
 * the model knows: each parameter present by its name, F32 or F64, of
 * exactly its declared shape; each input F32/F64 (float) or I32/I64 (int
 * label) of shape [B, per-sample dims...]; labels inside [0, classes).
 * Values become doubles in the compiler's arena.
 *
 * The checks return a message instead of raising the error themselves, so
 * the caller can free the file (malloc'd by the reader) before
 * error_plain() longjmps away.  Tensors in the file that the model does not
 * name are ignored (an OUT file of `gradc run`, with its grad.* and outputs,
 * can be used as parameters).
 */
#include "host.h"

#include <math.h>
#include "gradc_safetensors.h"

#include <string.h>

/* "[2, 3]" for a tensor's shape. */
static const char *st_shape_str(const gradc_st_tensor *t)
{
	Buf b = {0};
	buf_printf(&b, "[");
	for (int i = 0; i < t->rank; i++)
		buf_printf(&b, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
	buf_printf(&b, "]");
	return b.s;
}

/* Element i of a tensor of any of the four dtypes, as a double. */
static double st_elem(const gradc_st_tensor *t, size_t i)
{
	switch (t->dtype) {
	case GRADC_ST_F32:
		return (double)((const float *)t->data)[i];
	case GRADC_ST_F64:
		return ((const double *)t->data)[i];
	case GRADC_ST_I32:
		return (double)((const int32_t *)t->data)[i];
	case GRADC_ST_I64:
		return (double)((const int64_t *)t->data)[i];
	}
	return 0;
}

/* Check tensor 't' against parameter node 'n' (F32 or F64, exactly the
 * declared shape); on success store its values as doubles in *values and
 * return NULL, else return the message (without the file name).  */
const char *param_tensor(const struct gradc_st_tensor *t, const Node *n, double **values)
{
	if (t->dtype != GRADC_ST_F32 && t->dtype != GRADC_ST_F64)
		return str_fmt("parameter '%s' has dtype %s; expected F32 or F64", n->name,
			       gradc_st_dtype_name(t->dtype));
	bool same = t->rank == n->shape.rank;
	for (int i = 0; same && i < t->rank; i++)
		same = t->shape[i] == n->shape.dim[i];
	if (!same)
		return str_fmt("parameter '%s' has shape %s; expected %s", n->name, st_shape_str(t),
			       shape_str(n->shape));
	size_t count = (size_t)shape_numel(n->shape);
	double *v = alloc(sizeof(double) * count);
	for (size_t i = 0; i < count; i++)
		v[i] = st_elem(t, i);
	*values = v;
	return NULL;
}

/* Check tensor 't' against input node 'n' of forward graph 'g': F32/F64
 * [B, dims...] for a float input, I32/I64 [B] with every label in
 * [0, classes) for an int one.  *batch: B so far (0: not yet known; set
 * here).  On success store B * per-sample-count doubles in *values and
 * return NULL, else the message.  */
const char *input_tensor(const struct gradc_st_tensor *t, const Graph *g, const Node *n,
			 int64_t *batch, double **values)
{
	bool is_int = dt_is_int(n->dtype);
	const char *want = is_int ? "I32 or I64" : "F32 or F64";
	bool dtype_ok = is_int ? t->dtype == GRADC_ST_I32 || t->dtype == GRADC_ST_I64
			       : t->dtype == GRADC_ST_F32 || t->dtype == GRADC_ST_F64;
	const char *full = n->shape.rank ? str_fmt("[B, %s", shape_str(n->shape) + 1) : "[B]";
	if (!dtype_ok)
		return str_fmt("input '%s' has dtype %s; expected %s", n->name,
			       gradc_st_dtype_name(t->dtype), want);
	bool same = t->rank == n->shape.rank + 1;
	for (int i = 0; same && i < n->shape.rank; i++)
		same = t->shape[i + 1] == n->shape.dim[i];
	if (!same)
		return str_fmt("input '%s' has shape %s; expected %s %s", n->name, st_shape_str(t),
			       want, full);
	int64_t b = t->shape[0];
	if (b < 1)
		return str_fmt("input '%s' has shape %s: the batch is empty", n->name,
			       st_shape_str(t));
	if (b > (1 << 30))
		return str_fmt("input '%s' has shape %s: a batch of at most %d", n->name,
			       st_shape_str(t), 1 << 30);
	if (*batch && b != *batch)
		return str_fmt("input '%s' has batch %lld, but an earlier input has %lld", n->name,
			       (long long)b, (long long)*batch);
	*batch = b;
	size_t count = (size_t)(b * shape_numel(n->shape));
	double *v = alloc(sizeof(double) * count);
	int64_t classes = is_int ? label_classes(g, (int)(n - g->node)) : 0;
	for (size_t i = 0; i < count; i++) {
		v[i] = st_elem(t, i);
		if (is_int && (v[i] < 0 || v[i] >= (double)classes)) {
			long long raw = t->dtype == GRADC_ST_I32
						? ((const int32_t *)t->data)[i]
						: (long long)((const int64_t *)t->data)[i];
			return str_fmt("label '%s'[%zu] = %lld is outside [0, %lld)", n->name, i,
				       raw, (long long)classes);
		}
	}
	*values = v;
	return NULL;
}

/* Read 'path'; every parameter of every graph must be there (by name) as
 * F32 or F64 of its exact shape.  Sets Node.value (shared between the modes,
 * converted once per name).  */
void load_params(const char *path, Graph *const *modes, int n_modes)
{
	gradc_st_file f = {0};
	const char *msg = read_tensors(path, &f);
	if (msg)
		error_plain("%s", strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg));
	/* name -> values, over every mode */
	const char **names = NULL;
	const double **vals = NULL;
	int n = 0, cap = 0;
	for (int m = 0; m < n_modes && !msg; m++) {
		Graph *g = modes[m];
		for (int i = 0; i < g->n_node && !msg; i++) {
			Node *p = &g->node[i];
			if (p->op != OP_PARAM || p->stat) /* baked by standardize_graph */
				continue;
			int k = 0;
			while (k < n && strcmp(names[k], p->name))
				k++;
			if (k == n) {
				const gradc_st_tensor *t = gradc_st_find(&f, p->name);
				double *v = NULL;
				if (!t)
					msg = str_fmt(
						"missing parameter '%s' (F32 or F64 of shape %s)",
						p->name, shape_str(p->shape));
				else
					msg = param_tensor(t, p, &v);
				/* an f32 build bakes floats: a finite double beyond their
				 * range would silently become infinity */
				for (int64_t e = 0; !msg && !g->f64 && e < shape_numel(p->shape); e++)
					if (isfinite(v[e]) && fabs(v[e]) >= 0x1.ffffffp127)
						msg = str_fmt("parameter '%s' holds %g (element %lld), "
							      "out of range for f32 (--dtype f64 "
							      "takes it)",
							      p->name, v[e], (long long)e);
				if (msg)
					break;
				if (n == cap) {
					int nc = cap ? 2 * cap : 16;
					names = alloc_grow(names, sizeof *names * (size_t)cap,
							   sizeof *names * (size_t)nc);
					vals = alloc_grow(vals, sizeof *vals * (size_t)cap,
							  sizeof *vals * (size_t)nc);
					cap = nc;
				}
				names[n] = p->name;
				vals[n++] = v;
			}
			p->value = vals[k];
		}
	}
	gradc_st_free(&f);
	if (msg)
		error_plain("%s: %s", path, msg);
}
