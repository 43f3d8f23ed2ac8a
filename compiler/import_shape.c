/* import_shape.c: the ONNX rules that move data around or compute on
 * known values (Shape, Gather, Unsqueeze, Squeeze, Concat, Cast, Constant,
 * ConstantOfShape, Slice, Reshape, Flatten, Transpose, Identity, Dropout),
 * and the rule table.  F.pad's exported pads (ConstantOfShape, Concat,
 * Reshape, Slice with step -1, Transpose, Cast) fold like the shapes.
 *
 * Known values carry their shape in OTensor.dim; a shape computed from a
 * batched value holds BATCH_DIM where the batch is, so PyTorch's
 * `x.view(x.size(0), -1)` (Shape -> Gather 0 -> Unsqueeze -> Concat with
 * [-1] -> Reshape) folds to a Reshape whose first element is the batch.
 * A Reshape must keep the batch first (BATCH_DIM, 0, -1 with the rest
 * known, or the inputs' concrete batch); anything that moves it is
 * refused, as is every computation on the batch size itself.
 */
#include "onnx.h"

#include <math.h>
#include <string.h>

/* Axis 'a' of a rank-'r' tensor, negative counted from the end. */
static int norm_axis(Imp *I, int64_t a, int r)
{
	if (a < -r || a >= r)
		node_fail(I, "axis %lld is out of range for rank %d", (long long)a, r);
	return (int)(a < 0 ? a + r : a);
}

/* The values of known 'x' in a new tensor of shape dim[0..r). */
static OTensor *reshaped(const OTensor *x, int r, const int64_t *dim)
{
	OTensor *t = new_tensor(x->dtype, r, dim);
	if (x->f)
		memcpy(t->f, x->f, sizeof(double) * (size_t)x->n);
	else
		memcpy(t->i, x->i, sizeof(int64_t) * (size_t)x->n);
	return t;
}

static void known_out(Imp *I, Val *out, const Val *from, OTensor *t)
{
	(void)I;
	set_known(out, t);
	out->origin = from ? from->origin : NULL;
}

/* A batched value 'x' reshaped to per-sample 's': an alias if the .nn
 * value has that shape already, else a reshape. */
static void reshape_to(Imp *I, Val *out, Val *x, Shape s, const char *why)
{
	if (s.rank < 1 || s.rank > MAX_RANK)
		node_fail(I, "gives per-sample values of %d dimensions (gradc: 1 to %d)", s.rank,
			  MAX_RANK);
	const char *a = operand(I, x, false, -1);
	if (shape_eq(x->nns, s)) {
		alias(I, out, x, why);
	} else {
		Buf d = {0};
		for (int k = 0; k < s.rank; k++)
			buf_printf(&d, ", %lld", (long long)s.dim[k]);
		define(I, out, str_fmt("reshape(%s%s)", a, d.s), s);
	}
	set_shape(out, s);
}

static void tr_identity(Imp *I, const ONode *n)
{
	(void)n;
	alias(I, out_val(I, 0), need_in(I, 0), "removed (Identity)");
}

static void tr_dropout(Imp *I, const ONode *n)
{
	Val *mode = in_val(I, 2);
	if (mode && known_scalar(I, mode, "training_mode") != 0)
		node_fail(I, "training_mode is true (supported: inference)");
	(void)attr_float(n, "ratio", 0);
	alias(I, out_val(I, 0), need_in(I, 0), "removed (inference)");
}

static void tr_constant(Imp *I, const ONode *n)
{
	Val *out = out_val(I, 0);
	OAttr *a;
	OTensor *t = NULL;
	if ((a = onnx_attr(n, "value")) && a->t) {
		t = a->t;
	} else if ((a = onnx_attr(n, "value_float")) || (a = onnx_attr(n, "value_int"))) {
		t = new_tensor(a->type == AT_FLOAT ? ONNX_FLOAT : ONNX_INT64, 0, NULL);
		if (t->f)
			t->f[0] = a->f;
		else
			t->i[0] = a->i;
	} else if ((a = onnx_attr(n, "value_floats")) || (a = onnx_attr(n, "value_ints"))) {
		bool fl = a->type == AT_FLOATS;
		t = new_tensor(fl ? ONNX_FLOAT : ONNX_INT64, 1, &a->n);
		for (int64_t k = 0; k < a->n; k++)
			if (fl)
				t->f[k] = a->floats[k];
			else
				t->i[k] = a->ints[k];
	} else {
		node_fail(I, "no value (supported: value, value_float(s), value_int(s))");
	}
	known_out(I, out, NULL, t);
}

static void tr_constant_of_shape(Imp *I, const ONode *n)
{
	Val *sv = need_in(I, 0), *out = out_val(I, 0);
	int64_t d[ONNX_MAX_RANK];
	int r = known_ints(I, sv, d, ONNX_MAX_RANK, "the shape");
	int64_t total = 1;
	for (int k = 0; k < r; k++)
		if (d[k] < 0 || d[k] > MAX_BYTES || (total *= d[k]) > MAX_BYTES / 8)
			node_fail(I, "the shape [%s] is not supported", dims_text(d, r));
	OAttr *a = onnx_attr(n, "value");
	if (a && (!a->t || a->t->n != 1 || (!a->t->f && !a->t->i)))
		node_fail(I, "the value must be a tensor of one element (FLOAT, DOUBLE, INT32 or "
			     "INT64)");
	OTensor *t = new_tensor(a ? a->t->dtype : ONNX_FLOAT, r, d);
	for (int64_t k = 0; k < t->n; k++)
		if (t->f)
			t->f[k] = a ? a->t->f[0] : 0;
		else
			t->i[k] = a->t->i[0];
	known_out(I, out, NULL, t);
}

/* Slice of a known tensor (PyTorch's F.pad computes its pads with one). */
static void tr_slice(Imp *I, const ONode *n)
{
	(void)n;
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	if (!x->c)
		node_fail(I, "slices a value computed from the inputs (supported: constants)");
	const OTensor *a = x->c;
	int r = a->rank;
	int64_t st[ONNX_MAX_RANK], en[ONNX_MAX_RANK], ax[ONNX_MAX_RANK], sp[ONNX_MAX_RANK];
	int ns = known_ints(I, need_in(I, 1), st, ONNX_MAX_RANK, "starts");
	if (known_ints(I, need_in(I, 2), en, ONNX_MAX_RANK, "ends") != ns)
		node_fail(I, "starts and ends differ in length");
	for (int k = 0; k < ns; k++)
		ax[k] = k, sp[k] = 1;
	if (in_val(I, 3) && known_ints(I, in_val(I, 3), ax, ONNX_MAX_RANK, "axes") != ns)
		node_fail(I, "axes and starts differ in length");
	if (in_val(I, 4) && known_ints(I, in_val(I, 4), sp, ONNX_MAX_RANK, "steps") != ns)
		node_fail(I, "steps and starts differ in length");
	int64_t lo[ONNX_MAX_RANK], step[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
	for (int k = 0; k < r; k++)
		lo[k] = 0, step[k] = 1, d[k] = a->dim[k];
	for (int k = 0; k < ns; k++) {
		int i = norm_axis(I, ax[k], r);
		int64_t dim = a->dim[i], s = sp[k], b = st[k], e = en[k];
		if (s == 0)
			node_fail(I, "a step of 0");
		/* a step beyond the axis takes one element either way (no overflow below) */
		s = s > dim + 1 ? dim + 1 : s < -dim - 1 ? -dim - 1 : s;
		b = b < 0 ? b + dim : b, e = e < 0 ? e + dim : e;
		/* clamp as ONNX does: [0, dim] going up, [-1, dim - 1] going down */
		int64_t min = s > 0 ? 0 : -1, max = s > 0 ? dim : dim - 1;
		b = b < min ? min : b > max ? max : b;
		e = e < min ? min : e > max ? max : e;
		int64_t len = s > 0 ? (e - b + s - 1) / s : (b - e - s - 1) / -s;
		lo[i] = b, step[i] = s, d[i] = len > 0 ? len : 0;
	}
	OTensor *t = new_tensor(a->dtype, r, d);
	for (int64_t e = 0; e < t->n; e++) {
		int64_t rest = e, src = 0, stride = 1;
		for (int k = r - 1; k >= 0; k--) {
			src += (lo[k] + rest % d[k] * step[k]) * stride;
			rest /= d[k];
			stride *= a->dim[k];
		}
		if (t->f)
			t->f[e] = a->f[src];
		else
			t->i[e] = a->i[src];
	}
	known_out(I, out, x, t);
}

static void tr_shape(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	int64_t d[ONNX_MAX_RANK + 1];
	int r;
	if (x->c) {
		r = x->c->rank;
		memcpy(d, x->c->dim, sizeof(int64_t) * (size_t)r);
	} else {
		r = x->rank + 1;
		d[0] = BATCH_DIM;
		memcpy(d + 1, x->dim, sizeof(int64_t) * (size_t)x->rank);
	}
	int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", r);
	start = start < 0 ? start + r : start, end = end < 0 ? end + r : end;
	start = start < 0 ? 0 : start > r ? r : start, end = end < start ? start : end > r ? r : end;
	int64_t len = end - start;
	OTensor *t = new_tensor(ONNX_INT64, 1, &len);
	memcpy(t->i, d + start, sizeof(int64_t) * (size_t)len);
	known_out(I, out, NULL, t);
}

static void tr_gather(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *ix = need_in(I, 1), *out = out_val(I, 0);
	if (!x->c || !ix->c)
		node_fail(I, "gathers from or with a value computed from the inputs (supported: "
			     "constant shapes)");
	if (x->c->rank != 1 || norm_axis(I, attr_int(n, "axis", 0), 1) != 0 || ix->c->f
	    || ix->c->rank > 1)
		node_fail(I, "gathers [%s] by [%s] (supported: one axis of a constant vector, by "
			     "integer indices)",
			  dims_text(x->c->dim, x->c->rank), dims_text(ix->c->dim, ix->c->rank));
	OTensor *t = new_tensor(x->c->dtype, ix->c->rank, ix->c->dim);
	for (int64_t k = 0; k < ix->c->n; k++) {
		int64_t i = ix->c->i[k];
		i = i < 0 ? i + x->c->n : i;
		if (i < 0 || i >= x->c->n)
			node_fail(I, "index %lld is out of range [0, %lld)", (long long)ix->c->i[k],
				  (long long)x->c->n);
		if (t->f)
			t->f[k] = x->c->f[i];
		else
			t->i[k] = x->c->i[i];
	}
	known_out(I, out, x, t);
}

/* The axes of Unsqueeze or Squeeze: an attribute before opset 13, an input
 * from 13; -1 if none given. */
static int read_axes(Imp *I, const ONode *n, int64_t *axes)
{
	Val *v = in_val(I, 1);
	if (v)
		return known_ints(I, v, axes, ONNX_MAX_RANK, "axes");
	return attr_ints(I, n, "axes", axes, ONNX_MAX_RANK);
}

static void tr_unsqueeze(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	int64_t axes[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
	int na = read_axes(I, n, axes);
	if (na < 0)
		node_fail(I, "no axes");
	int r0 = x->c ? x->c->rank : x->rank + 1, r = r0 + na;
	if (r > ONNX_MAX_RANK)
		node_fail(I, "more than %d dimensions", ONNX_MAX_RANK);
	bool is_new[ONNX_MAX_RANK] = {0};
	for (int k = 0; k < na; k++) {
		int a = norm_axis(I, axes[k], r);
		if (is_new[a])
			node_fail(I, "axis %lld given twice", (long long)axes[k]);
		is_new[a] = true;
	}
	const int64_t *src = x->c ? x->c->dim : NULL;
	for (int k = 0, j = 0; k < r; k++)
		d[k] = is_new[k] ? 1 : x->c ? src[j++] : j++ == 0 ? BATCH_DIM : x->dim[j - 2];
	if (x->c) {
		known_out(I, out, x, reshaped(x->c, r, d));
		return;
	}
	if (d[0] != BATCH_DIM)
		node_fail(I, "inserts an axis before the batch (not supported)");
	reshape_to(I, out, x, (Shape){.rank = r - 1, .dim = {d[1], d[2], d[3], d[4]}},
		   "inserts axes of size 1");
}

static void tr_squeeze(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	int64_t axes[ONNX_MAX_RANK], d[ONNX_MAX_RANK + 1];
	int na = read_axes(I, n, axes);
	int r0 = x->c ? x->c->rank : x->rank + 1;
	for (int k = 0; k < r0; k++)
		d[k] = x->c ? x->c->dim[k] : k == 0 ? BATCH_DIM : x->dim[k - 1];
	bool drop[ONNX_MAX_RANK + 1] = {0};
	for (int k = 0; k < na; k++) {
		int a = norm_axis(I, axes[k], r0);
		if (d[a] == BATCH_DIM)
			node_fail(I, "squeezes the batch axis (not supported)");
		if (d[a] != 1)
			node_fail(I, "axis %lld has size %lld, not 1", (long long)axes[k], (long long)d[a]);
		drop[a] = true;
	}
	for (int k = 0; na < 0 && k < r0; k++)
		drop[k] = d[k] == 1;
	int r = 0;
	for (int k = 0; k < r0; k++)
		if (!drop[k])
			d[r++] = d[k];
	if (x->c) {
		known_out(I, out, x, reshaped(x->c, r, d));
		return;
	}
	if (r < 1 || d[0] != BATCH_DIM)
		node_fail(I, "squeezes the batch axis (not supported)");
	Shape s = {.rank = r - 1};
	for (int k = 1; k < r; k++)
		s.dim[k - 1] = d[k];
	reshape_to(I, out, x, s, "drops axes of size 1");
}

static void tr_concat(Imp *I, const ONode *n)
{
	Val *out = out_val(I, 0), *v[64];
	int nv = 0;
	bool all_known = true;
	for (int k = 0; k < n->n_in; k++)
		if (in_val(I, k)) {
			if (nv == 64)
				node_fail(I, "more than 64 inputs");
			v[nv] = in_val(I, k);
			all_known &= v[nv++]->c != NULL;
		}
	if (!nv)
		node_fail(I, "no inputs");
	OAttr *ax = onnx_attr(n, "axis");
	if (!ax || ax->type != AT_INT)
		node_fail(I, "the attribute 'axis' is required");
	if (all_known) {
		const OTensor *a = v[0]->c;
		int axis = norm_axis(I, ax->i, a->rank);
		int64_t d[ONNX_MAX_RANK], outer = 1, total = 0;
		memcpy(d, a->dim, sizeof d);
		for (int k = 0; k < axis; k++)
			outer *= a->dim[k];
		for (int j = 0; j < nv; j++) {
			const OTensor *b = v[j]->c;
			bool ok = b->rank == a->rank && !b->f == !a->f;
			for (int k = 0; ok && k < a->rank; k++)
				ok = k == axis || b->dim[k] == a->dim[k];
			if (!ok)
				node_fail(I, "inputs [%s] and [%s] do not concatenate on axis %d",
					  dims_text(a->dim, a->rank), dims_text(b->dim, b->rank), axis);
			total += b->dim[axis];
		}
		d[axis] = total;
		OTensor *t = new_tensor(a->dtype, a->rank, d);
		int64_t at = 0;
		for (int64_t o = 0; o < outer; o++)
			for (int j = 0; j < nv; j++) {
				const OTensor *b = v[j]->c;
				int64_t chunk = outer ? b->n / outer : 0;
				for (int64_t e = 0; e < chunk; e++, at++)
					if (t->f)
						t->f[at] = b->f[o * chunk + e];
					else
						t->i[at] = b->i[o * chunk + e];
			}
		known_out(I, out, v[0], t);
		return;
	}
	int axis = norm_axis(I, ax->i, v[0]->c ? v[0]->c->rank : v[0]->rank + 1);
	Buf e = {0};
	Shape s = {0};
	for (int j = 0; j < nv; j++) {
		if (v[j]->c)
			node_fail(I, "concatenates the constant '%s' with values computed from the "
				     "inputs (not supported)",
				  v[j]->onnx);
		if (axis != 1 || v[j]->rank != v[0]->rank)
			node_fail(I, "axis %lld of %s: gradc concatenates along the channels (axis 1)",
				  (long long)ax->i, full_text(v[j]));
		Shape sj = val_shape(v[j]);
		for (int k = 1; k < sj.rank; k++)
			if (sj.dim[k] != v[0]->dim[k])
				node_fail(I, "'%s' %s and '%s' %s differ beyond the channels",
					  v[0]->onnx, full_text(v[0]), v[j]->onnx, full_text(v[j]));
		buf_printf(&e, "%s%s", j ? ", " : "", value_of(I, v[j]));
		s = j ? s : sj;
		if (j)
			s.dim[0] += sj.dim[0];
	}
	set_shape(out, s);
	define(I, out, str_fmt("concat(%s)", e.s), s);
}

static void tr_cast(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	int64_t to = attr_int(n, "to", 0);
	bool fl = to == ONNX_FLOAT || to == ONNX_DOUBLE;
	if (!fl && to != ONNX_INT64 && to != ONNX_INT32)
		node_fail(I, "casts to %s (supported: FLOAT, DOUBLE, and INT64, INT32 for constant "
			     "shapes)",
			  onnx_dtype_name((int)to));
	if (!x->c) {
		if (!fl)
			node_fail(I, "casts a value computed from the inputs to %s (non-float tensors "
				     "are not supported)",
				  onnx_dtype_name((int)to));
		alias(I, out, x, str_fmt("cast to %s (gradc computes in one float type)",
					 onnx_dtype_name((int)to)));
		return;
	}
	OTensor *t = new_tensor((int)to, x->c->rank, x->c->dim);
	for (int64_t k = 0; k < t->n; k++) {
		if (!fl && !x->c->f && x->c->i[k] == BATCH_DIM)
			t->i[k] = BATCH_DIM;
		else if (fl && !x->c->f && x->c->i[k] == BATCH_DIM)
			node_fail(I, "computes with the batch size (not supported)");
		else if (fl)
			t->f[k] = to == ONNX_FLOAT ? (double)(float)kval(x->c, k) : kval(x->c, k);
		else if (x->c->f && !(fabs(x->c->f[k]) < 0x1p62))
			node_fail(I, "casts %g to an integer (out of range)", x->c->f[k]);
		else
			t->i[k] = x->c->f ? (int64_t)x->c->f[k] : x->c->i[k];
	}
	known_out(I, out, x, t);
}

static void tr_reshape(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *sv = need_in(I, 1), *out = out_val(I, 0);
	int64_t d[ONNX_MAX_RANK];
	int r = known_ints(I, sv, d, ONNX_MAX_RANK, "the shape");
	bool allowzero = attr_int(n, "allowzero", 0);
	int r0 = x->c ? x->c->rank : x->rank + 1;
	int64_t in[ONNX_MAX_RANK + 1], total = 1, known = 1;
	for (int k = 0; k < r0; k++) {
		in[k] = x->c ? x->c->dim[k] : k == 0 ? BATCH_DIM : x->dim[k - 1];
		total *= k == 0 && !x->c ? 1 : in[k];
	}
	int infer = -1;
	for (int k = 0; k < r; k++) {
		if (d[k] == 0 && !allowzero) {
			if (k >= r0)
				node_fail(I, "copies dimension %d, which the input lacks", k);
			d[k] = in[k];
		}
		if (d[k] == -1) {
			if (infer >= 0)
				node_fail(I, "two dimensions are -1");
			infer = k;
		} else if (d[k] == BATCH_DIM) {
			if (k)
				node_fail(I, "moves the batch to dimension %d (not supported)", k);
		} else if (d[k] < 0 || (d[k] == 0 && allowzero) || d[k] > MAX_BYTES) {
			node_fail(I, "a dimension of %lld is not supported", (long long)d[k]);
		} else if (k || x->c) {
			if (d[k] && known > MAX_BYTES / d[k])
				node_fail(I, "reshapes to [%s], too many elements", dims_text(d, r));
			known *= d[k];
		}
	}
	bool batch_first = !x->c && (d[0] == BATCH_DIM || (I->batch > 0 && d[0] == I->batch)
				     || (infer == 0 && r > 1));
	if (!x->c && !batch_first)
		node_fail(I, "reshapes %s to [%s], across the batch (gradc keeps the batch first)",
			  full_text(x), dims_text(d, r));
	if (infer >= 0 && infer != (batch_first ? 0 : -1)) {
		if (known == 0 || total % known)
			node_fail(I, "cannot infer the -1 of [%s] from %lld elements", dims_text(d, r),
				  (long long)total);
		d[infer] = total / known;
		known *= d[infer];
	}
	if (known != total)
		node_fail(I, "reshapes %lld elements%s to [%s]", (long long)total,
			  x->c ? "" : " per sample", dims_text(d, r));
	if (x->c) {
		known_out(I, out, x, reshaped(x->c, r, d));
		return;
	}
	Shape s = {.rank = r - 1};
	if (s.rank > MAX_RANK)
		node_fail(I, "per-sample values of %d dimensions (gradc: at most %d)", s.rank, MAX_RANK);
	for (int k = 1; k < r; k++)
		s.dim[k - 1] = d[k];
	reshape_to(I, out, x, s, "the same shape");
}

static void tr_flatten(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	int r0 = x->c ? x->c->rank : x->rank + 1;
	int64_t ax = attr_int(n, "axis", 1);
	if (ax < -r0 || ax > r0)
		node_fail(I, "axis %lld is out of range for rank %d", (long long)ax, r0);
	int axis = (int)(ax < 0 ? ax + r0 : ax);
	int64_t d[2] = {1, 1};
	for (int k = 0; k < r0; k++)
		d[k >= axis] *= x->c ? x->c->dim[k] : k ? x->dim[k - 1] : 1;
	if (x->c) {
		known_out(I, out, x, reshaped(x->c, 2, d));
		return;
	}
	if (axis == 0)
		node_fail(I, "axis 0 flattens the batch into the sample (supported: axis >= 1)");
	if (axis > 1) {
		reshape_to(I, out, x, (Shape){2, {d[0], d[1]}}, "the same shape");
		return;
	}
	Shape s = {1, {d[1]}};
	const char *a = operand(I, x, false, -1);
	if (shape_eq(x->nns, s))
		alias(I, out, x, "already flat");
	else
		define(I, out, str_fmt("flatten(%s)", a), s);
	set_shape(out, s);
}

static void tr_transpose(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	int r = x->c ? x->c->rank : x->rank + 1;
	int64_t perm[ONNX_MAX_RANK + 1];
	int np = attr_ints(I, n, "perm", perm, ONNX_MAX_RANK + 1);
	if (np < 0)
		for (np = 0; np < r; np++)
			perm[np] = r - 1 - np;
	bool seen[ONNX_MAX_RANK + 1] = {0};
	if (np != r)
		node_fail(I, "perm has %d values for rank %d", np, r);
	for (int k = 0; k < r; k++) {
		if (perm[k] < 0 || perm[k] >= r || seen[perm[k]])
			node_fail(I, "perm [%s] is not a permutation", dims_text(perm, np));
		seen[perm[k]] = true;
	}
	if (x->c) {
		const OTensor *a = x->c;
		int64_t d[ONNX_MAX_RANK], stride[ONNX_MAX_RANK];
		for (int k = r - 1, s = 1; k >= 0; s *= (int)a->dim[k], k--)
			stride[k] = s;
		for (int k = 0; k < r; k++)
			d[k] = a->dim[perm[k]];
		OTensor *t = new_tensor(a->dtype, r, d);
		for (int64_t e = 0; e < t->n; e++) {
			int64_t rest = e, src = 0;
			for (int k = r - 1; k >= 0; k--) {
				src += rest % d[k] * stride[perm[k]];
				rest /= d[k];
			}
			if (t->f)
				t->f[e] = a->f[src];
			else
				t->i[e] = a->i[src];
		}
		known_out(I, out, x, t);
		return;
	}
	bool ident = true;
	for (int k = 0; k < r; k++)
		ident &= perm[k] == k;
	if (ident) {
		alias(I, out, x, "the identity permutation");
		return;
	}
	if (r != 3 || perm[0] != 0)
		node_fail(I, "perm [%s] of %s (supported: [0, 2, 1], the transpose of per-sample "
			     "matrices)",
			  dims_text(perm, np), full_text(x));
	Shape s = {2, {x->dim[1], x->dim[0]}};
	set_shape(out, s);
	define(I, out, str_fmt("transpose(%s)", value_of(I, x)), s);
}

/* ---- the table */

static const OpRule rules[] = {
	{"Abs", tr_unary, ""},
	{"Add", tr_binary, ""},
	{"AveragePool", tr_pool, "auto_pad ceil_mode count_include_pad kernel_shape pads strides"},
	{"BatchNormalization", tr_batchnorm, "epsilon momentum training_mode spatial"},
	{"Cast", tr_cast, "to"},
	{"Clip", tr_clip, "min max"},
	{"Concat", tr_concat, "axis"},
	{"Constant", tr_constant, "value value_float value_floats value_int value_ints"},
	{"ConstantOfShape", tr_constant_of_shape, "value"},
	{"Conv", tr_conv, "auto_pad dilations group kernel_shape pads strides"},
	{"Div", tr_binary, ""},
	{"Dropout", tr_dropout, "ratio seed"},
	{"Exp", tr_unary, ""},
	{"Flatten", tr_flatten, "axis"},
	{"Gather", tr_gather, "axis"},
	{"Gemm", tr_gemm, "alpha beta transA transB"},
	{"GlobalAveragePool", tr_gap, ""},
	{"Identity", tr_identity, ""},
	{"LeakyRelu", tr_unary, "alpha"},
	{"Log", tr_unary, ""},
	{"LogSoftmax", tr_softmax, "axis"},
	{"MatMul", tr_matmul, ""},
	{"MaxPool", tr_pool, "auto_pad ceil_mode dilations kernel_shape pads storage_order strides"},
	{"Mul", tr_binary, ""},
	{"Neg", tr_unary, ""},
	{"Pad", tr_pad, "mode pads value"},
	{"Relu", tr_unary, ""},
	{"Reshape", tr_reshape, "allowzero"},
	{"Shape", tr_shape, "end start"},
	{"Sigmoid", tr_unary, ""},
	{"Slice", tr_slice, ""},
	{"Softmax", tr_softmax, "axis"},
	{"Sqrt", tr_unary, ""},
	{"Squeeze", tr_squeeze, "axes"},
	{"Sub", tr_binary, ""},
	{"Tanh", tr_unary, ""},
	{"Transpose", tr_transpose, "perm"},
	{"Unsqueeze", tr_unsqueeze, "axes"},
};

const OpRule *find_rule(const char *op)
{
	for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++)
		if (!strcmp(rules[k].op, op))
			return &rules[k];
	return NULL;
}

const char *supported_ops(void)
{
	Buf b = {0};
	for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++)
		buf_printf(&b, "%s%s", k ? ", " : "", rules[k].op);
	return b.s;
}
