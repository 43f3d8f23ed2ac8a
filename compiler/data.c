/* data.c: training data for `gradc train` and `gradc eval` (SPEC 4, "Host
 * training"): read, checked against the model, split and standardized.
 *
 * 1. load_data() reads one of three formats, by what the path is:
 *    - a directory: one NAME.npy per model input (NumPy's format 1-3,
 *      little-endian float32, float64, int32 or int64, C order);
 *    - a file ending in .safetensors (or starting like one): a tensor per
 *      model input, by its name, batch first (as `gradc run`'s IN);
 *    - anything else: CSV.  The first line is a header if any of its cells
 *      is not a number.  The columns are the model's float inputs in
 *      declaration order, each flattened row-major, and its int label (the
 *      last column, or the header's column named by --label; a header of
 *      another width, as scikit-learn's "ROWS,FEATURES,names", is only
 *      skipped).  Blank lines are skipped, CRLF accepted, cells may be
 *      "quoted".  Every problem is
 *      "FILE:LINE:COL: error: ..." with the line and a caret: a missing
 *      value, a cell that is not a finite number, a row of another width,
 *      a label that is not a whole number or outside [0, classes).
 *    Arrays are checked by params.c's input_tensor (dtype, shape, labels).
 *    Values become doubles, per input node id of the forward graph.
 * 2. split_data() moves a fraction of the samples, chosen by a Fisher-Yates
 *    shuffle with PCG32 (seed, stream 1), into a validation set.
 * 3. fit_standardize() computes per element of each feature input (a float
 *    input an output depends on, so an mse target is left alone) the
 *    mean and the deviation (population, as scikit-learn's StandardScaler;
 *    a constant column gets 1) over the training samples;
 *    apply_standardize() maps v to (v - mean) / std in the build's
 *    precision, exactly as the generated code of `compile --params` does
 *    (standardize_graph), so the host and the firmware agree bit for bit.
 *
 * Limits: the whole data set is held in memory as doubles.  CSV holds at
 * most one int label; .npz is not read (np.save each array instead).
 */
#include "host.h"
#include "gradc_rt.h"
#include "gradc_safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static Data *new_data(const char *path, const Graph *g, int64_t n)
{
	Data *d = alloc(sizeof *d);
	d->path = path;
	d->n = n;
	d->v = alloc(sizeof(double *) * (size_t)g->n_node);
	return d;
}

/* ---- CSV */

typedef struct Cell {
	const char *s; /* the text, unquoted, trimmed */
	int col;       /* 1-based byte column of the cell's start */
} Cell;

/* Split line p[0..len) at commas into cells (quotes removed: "a,b" is one
 * cell, "" inside quotes is a quote); returns the count.  */
static int split_line(const char *p, size_t len, Cell **out)
{
	int n = 0, cap = 16;
	Cell *c = alloc(sizeof(Cell) * (size_t)cap);
	size_t i = 0;
	for (;;) {
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		int col = (int)i + 1;
		char *text;
		if (i < len && p[i] == '"') { /* copy, "" -> " */
			size_t k = 0;
			text = alloc(len - i + 1);
			for (i++; i < len; i++) {
				if (p[i] == '"' && (i + 1 >= len || p[i + 1] != '"'))
					break;
				i += p[i] == '"';
				text[k++] = p[i];
			}
			i += i < len;
			while (i < len && p[i] != ',')
				i++;
		} else {
			size_t from = i;
			while (i < len && p[i] != ',')
				i++;
			size_t to = i;
			while (to > from && (p[to - 1] == ' ' || p[to - 1] == '\t'))
				to--;
			text = str_ndup(p + from, to - from);
		}
		if (n == cap) {
			c = alloc_grow(c, sizeof(Cell) * (size_t)cap,
				       sizeof(Cell) * (size_t)cap * 2);
			cap *= 2;
		}
		c[n++] = (Cell){text, col};
		if (i >= len)
			break;
		i++; /* the comma */
	}
	*out = c;
	return n;
}

static const char *const na_tokens[] = {"NA", "N/A", "NaN", "nan", "null", "?", NULL};

static bool is_na(const char *s)
{
	for (int k = 0; na_tokens[k]; k++)
		if (!strcmp(s, na_tokens[k]))
			return true;
	return false;
}

/* A header cell: text that is neither a number nor a missing value. */
static bool is_name(const char *s)
{
	char *end;
	strtod(s, &end);
	return *s && (end == s || *end) && !is_na(s);
}

/* The number in cell 'c', or error at line 'ln'. */
static double cell_number(const Cell *c, int ln, int column)
{
	Loc at = {ln, c->col};
	if (!*c->s)
		error_at(at, "missing value in column %d", column);
	if (is_na(c->s))
		error_at(at, "missing value '%s' in column %d", c->s, column);
	char *end;
	errno = 0;
	double v = strtod(c->s, &end);
	if (end == c->s || *end)
		error_at(at, "'%s' in column %d is not a number", c->s, column);
	if (!isfinite(v) || errno == ERANGE)
		error_at(at, "'%s' in column %d is not a finite number", c->s, column);
	return v;
}

/* What the model takes per CSV row: "input 'x' [4] (4 values) and the
 * label 'y'". */
static const char *row_shape(const Graph *g, const int *ins, int n_in)
{
	Buf b = {0};
	for (int k = 0; k < n_in; k++) {
		const Node *n = &g->node[ins[k]];
		buf_printf(&b, "%s", k == 0 ? "" : k + 1 == n_in ? " and " : ", ");
		if (dt_is_int(n->dtype))
			buf_printf(&b, "the label '%s' (1 column)", n->name);
		else
			buf_printf(&b, "input '%s' %s (%lld columns)", n->name, shape_str(n->shape),
				   (long long)shape_numel(n->shape));
	}
	return b.s;
}

static Data *load_csv(const char *path, const Graph *g, const char *label)
{
	Source *src = alloc(sizeof *src);
	src->path = path;
	src->text = read_file(path, &src->len);
	if (!src->text)
		error_plain("cannot read '%s': %s", path, strerror(errno));
	int n_in, lab = -1;
	int *ins = declared_nodes(g, OP_INPUT, &n_in);
	int64_t width = 0;
	for (int k = 0; k < n_in; k++) {
		const Node *n = &g->node[ins[k]];
		if (dt_is_int(n->dtype) && lab >= 0)
			error_plain(
				"%s: a CSV file holds one int label, but the model has '%s' and "
				"'%s' (use .npy or safetensors)",
				path, g->node[lab].name, n->name);
		if (dt_is_int(n->dtype))
			lab = ins[k];
		width += dt_is_int(n->dtype) ? 1 : shape_numel(n->shape);
	}
	const Source *saved = err_src;
	err_src = src;
	/* the rows: cells per line, the header apart */
	Cell **rows = NULL;
	int *line_of = NULL, n_rows = 0, cap = 0, header_line = 0;
	Cell *header = NULL;
	int n_header = 0, n_cols = 0;
	const char *p = src->text, *end = p + src->len;
	for (int ln = 1; p < end; ln++) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((e ? e : end) - p);
		const char *line = p;
		p = e ? e + 1 : end;
		while (len && line[len - 1] == '\r')
			len--;
		if (strspn(line, " \t") >= len)
			continue;
		Cell *c;
		int n = split_line(line, len, &c);
		if (!header_line && !n_rows) {
			bool names = false;
			for (int k = 0; k < n; k++)
				names = names || is_name(c[k].s);
			if (names) {
				header = c, n_header = n, header_line = ln;
				continue;
			}
		}
		if (!n_rows)
			n_cols = n;
		if (n != n_cols)
			error_at((Loc){ln, 1}, "%d values, but line %d has %d", n, line_of[0],
				 n_cols);
		if (n_rows == cap) {
			int nc = cap ? 2 * cap : 256;
			rows = alloc_grow(rows, sizeof *rows * (size_t)cap,
					  sizeof *rows * (size_t)nc);
			line_of = alloc_grow(line_of, sizeof(int) * (size_t)cap,
					     sizeof(int) * (size_t)nc);
			cap = nc;
		}
		line_of[n_rows] = ln;
		rows[n_rows++] = c;
	}
	err_src = saved;
	if (!n_rows)
		error_plain("%s: no data rows", path);
	if (n_cols != width)
		error_plain("%s: %d columns, but '%s' takes %lld per sample: %s", path, n_cols,
			    g->src->path, (long long)width, row_shape(g, ins, n_in));
	/* the label column */
	int lab_col = lab >= 0 ? n_cols - 1 : -1;
	if (label && lab < 0)
		error_plain("--label '%s': the model has no int label", label);
	if (label) {
		if (!header)
			error_plain("%s: --label '%s' names a column, but the file has no header "
				    "line",
				    path, label);
		if (n_header != n_cols)
			error_plain("%s:%d: --label '%s': the header has %d names, the rows %d "
				    "values",
				    path, header_line, label, n_header, n_cols);
		lab_col = -1;
		for (int k = 0; k < n_header; k++)
			if (!strcmp(header[k].s, label))
				lab_col = k;
		if (lab_col < 0)
			error_plain("%s:%d: no column named '%s' in the header", path, header_line,
				    label);
	}
	Data *d = new_data(path, g, n_rows);
	int64_t classes = lab >= 0 ? label_classes(g, lab) : 0;
	for (int k = 0; k < n_in; k++)
		d->v[ins[k]] = alloc(sizeof(double)
				     * (size_t)(n_rows * shape_numel(g->node[ins[k]].shape)));
	err_src = src;
	for (int r = 0; r < n_rows; r++) {
		int col = 0;
		for (int k = 0; k < n_in; k++) {
			const Node *n = &g->node[ins[k]];
			if (dt_is_int(n->dtype))
				continue;
			int64_t m = shape_numel(n->shape);
			for (int64_t i = 0; i < m; i++, col++) {
				col += col == lab_col;
				d->v[ins[k]][r * m + i] =
					cell_number(&rows[r][col], line_of[r], col + 1);
			}
		}
		if (lab < 0)
			continue;
		const Cell *c = &rows[r][lab_col];
		double y = cell_number(c, line_of[r], lab_col + 1);
		Loc at = {line_of[r], c->col};
		if (y != floor(y))
			error_at(at, "label %s is not a whole number", c->s);
		if (y < 0 || y >= (double)classes)
			error_at(at, "label %s is outside [0, %lld) (the classes of '%s')", c->s,
				 (long long)classes, g->node[lab].name);
		d->v[lab][r] = y;
	}
	err_src = saved;
	return d;
}

/* ---- arrays: safetensors and .npy */

static const char *np_shape(const Graph *g, const Node *n)
{
	(void)g;
	if (dt_is_int(n->dtype))
		return "int32 or int64 of shape (N,)";
	Buf b = {0};
	buf_printf(&b, "float32 or float64 of shape (N");
	for (int i = 0; i < n->shape.rank; i++)
		buf_printf(&b, ", %lld", (long long)n->shape.dim[i]);
	buf_printf(&b, ")");
	return b.s;
}

/* Parse the .npy file 'path' into 't' (data in the arena); NULL or a
 * message.  */
static const char *read_npy(const char *path, gradc_st_tensor *t)
{
	size_t len;
	char *s = read_file(path, &len);
	if (!s)
		return str_fmt("cannot read: %s", strerror(errno));
	const unsigned char *u = (const unsigned char *)s;
	if (len < 10 || memcmp(s, "\x93NUMPY", 6))
		return "not a .npy file (no \\x93NUMPY magic)";
	size_t hl = u[6] == 1  ? (size_t)u[8] | (size_t)u[9] << 8
		    : len < 12 ? 0
			       : (size_t)u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16
					 | (size_t)u[11] << 24;
	size_t at = u[6] == 1 ? 10 : 12;
	if (u[6] < 1 || u[6] > 3)
		return str_fmt("unknown .npy version %d", u[6]);
	if (hl > len - at)
		return "truncated header";
	char *h = str_ndup(s + at, hl);
	const char *dp = strstr(h, "'descr'"), *fp = strstr(h, "'fortran_order'");
	const char *sp = strstr(h, "'shape'");
	if (!dp || !fp || !sp)
		return "malformed header (no 'descr', 'fortran_order' or 'shape')";
	char descr[16] = {0};
	dp = strchr(dp + 7, '\'');
	if (!dp || sscanf(dp + 1, "%15[^']", descr) != 1)
		return "malformed 'descr'";
	static const struct {
		const char *d;
		gradc_st_dtype t;
	} types[] = {{"<f4", GRADC_ST_F32},
		     {"<f8", GRADC_ST_F64},
		     {"<i4", GRADC_ST_I32},
		     {"<i8", GRADC_ST_I64}};
	int k = 0;
	while (k < 4 && strcmp(descr, types[k].d))
		k++;
	if (k == 4)
		return str_fmt("dtype '%s' is not read (float32, float64, int32 or int64, "
			       "little-endian)",
			       descr);
	t->dtype = types[k].t;
	fp += strlen("'fortran_order'");
	fp += strspn(fp, ": ");
	if (strncmp(fp, "False", 5))
		return "a Fortran-order array (save np.ascontiguousarray(a))";
	sp = strchr(sp, '(');
	if (!sp)
		return "malformed 'shape'";
	int64_t count = 1;
	for (sp++;;) {
		sp += strspn(sp, " ,");
		if (*sp == ')')
			break;
		char *e;
		long long v = strtoll(sp, &e, 10);
		if (e == sp || v < 0 || t->rank == GRADC_ST_MAX_RANK
		    || (v && count > INT64_MAX / 8 / v))
			return "malformed 'shape'";
		t->shape[t->rank++] = v;
		count *= v;
		sp = e;
	}
	size_t es = gradc_st_dtype_size(t->dtype);
	t->nbytes = (size_t)count * es;
	if (t->nbytes > len - at - hl)
		return str_fmt("truncated: %zu bytes of data, the shape needs %zu", len - at - hl,
			       t->nbytes);
	t->data = alloc(t->nbytes + 8);
	memcpy(t->data, s + at + hl, t->nbytes);
	return NULL;
}

static Data *load_npy_dir(const char *dir, const Graph *g)
{
	int n_in;
	int *ins = declared_nodes(g, OP_INPUT, &n_in);
	int64_t batch = 0;
	Data *d = new_data(dir, g, 0);
	for (int k = 0; k < n_in; k++) {
		const Node *n = &g->node[ins[k]];
		const char *path = str_fmt("%s/%s.npy", dir, n->name);
		struct stat sb;
		if (stat(path, &sb) != 0)
			error_plain("%s: no '%s.npy' for input '%s' (%s)", dir, n->name, n->name,
				    np_shape(g, n));
		gradc_st_tensor t = {.name = n->name};
		const char *msg = read_npy(path, &t);
		if (!msg)
			msg = input_tensor(&t, g, n, &batch, &d->v[ins[k]]);
		if (msg)
			error_plain("%s: %s", path, msg);
	}
	d->n = batch;
	return d;
}

static Data *load_st(const char *path, const Graph *g)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(path, &f);
	if (msg)
		error_plain("%s", strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg));
	int n_in;
	int *ins = declared_nodes(g, OP_INPUT, &n_in);
	int64_t batch = 0;
	Data *d = new_data(path, g, 0);
	for (int k = 0; k < n_in && !msg; k++) {
		const Node *n = &g->node[ins[k]];
		const gradc_st_tensor *t = gradc_st_find(&f, n->name);
		if (!t)
			msg = str_fmt("no tensor '%s' for input '%s' (%s)", n->name, n->name,
				      np_shape(g, n));
		else
			msg = input_tensor(t, g, n, &batch, &d->v[ins[k]]);
	}
	gradc_st_free(&f);
	if (msg)
		error_plain("%s: %s", path, msg);
	d->n = batch;
	return d;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

Data *load_data(const char *path, const Graph *g, const char *label)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		error_plain("cannot read '%s': %s", path, strerror(errno));
	if (S_ISDIR(sb.st_mode) && label)
		error_plain("--label names a CSV column; '%s' is a directory", path);
	if (S_ISDIR(sb.st_mode))
		return load_npy_dir(path, g);
	if (ends_with(path, ".safetensors") || ends_with(path, ".st")) {
		if (label)
			error_plain("--label names a CSV column; '%s' is not CSV", path);
		return load_st(path, g);
	}
	return load_csv(path, g, label);
}

/* ---- splitting */

Data *split_data(Data *d, const Graph *g, double frac, uint32_t seed)
{
	int64_t n = d->n, n_train = (int64_t)floor((double)n * (1 - frac) + 1e-9);
	if (n_train < 1 || n_train >= n)
		error_plain("%s: --val-split %g of %lld samples leaves %lld for training and %lld "
			    "for validation",
			    d->path, frac, (long long)n, (long long)n_train,
			    (long long)(n - n_train));
	int64_t *idx = alloc(sizeof(int64_t) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	gradc_rng r;
	gradc_rng_seed(&r, seed, 1);
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)(gradc_rng_u32(&r) % (uint32_t)(i + 1));
		int64_t t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
	Data *tr = new_data(d->path, g, n_train), *va = new_data(d->path, g, n - n_train);
	for (int id = 0; id < g->n_node; id++) {
		if (!d->v[id])
			continue;
		int64_t m = shape_numel(g->node[id].shape);
		tr->v[id] = alloc(sizeof(double) * (size_t)(n_train * m));
		va->v[id] = alloc(sizeof(double) * (size_t)((n - n_train) * m));
		for (int64_t i = 0; i < n; i++) {
			double *to =
				i < n_train ? tr->v[id] + i * m : va->v[id] + (i - n_train) * m;
			memcpy(to, d->v[id] + idx[i] * m, sizeof(double) * (size_t)m);
		}
	}
	*d = *tr;
	return va;
}

/* ---- standardization */

/* The feature inputs of 'g': float inputs that the outputs depend on.
 * true for node id 'id'.  */
static bool is_feature(const Graph *g, int id)
{
	const Node *n = &g->node[id];
	if (n->op != OP_INPUT || dt_is_int(n->dtype))
		return false;
	/* reachability from the input to an output (ids are topological) */
	bool *reach = alloc((size_t)g->n_node);
	reach[id] = true;
	for (int i = id + 1; i < g->n_node; i++)
		for (int k = 0; k < g->node[i].n_in; k++)
			reach[i] = reach[i] || reach[g->node[i].in[k]];
	for (int k = 0; k < g->n_out; k++)
		if (reach[g->out[k]])
			return true;
	return false;
}

Stats *fit_standardize(const Data *d, const Graph *g)
{
	if (!g->n_out)
		error_plain("--standardize: '%s' has no output, so gradc cannot tell its features "
			    "from its targets",
			    g->src->path);
	Stats *s = alloc(sizeof *s);
	s->mean = alloc(sizeof(double *) * (size_t)g->n_node);
	s->std = alloc(sizeof(double *) * (size_t)g->n_node);
	for (int id = 0; id < g->n_node; id++) {
		if (!is_feature(g, id))
			continue;
		int64_t m = shape_numel(g->node[id].shape), n = d->n;
		double *mu = alloc(sizeof(double) * (size_t)m),
		       *sd = alloc(sizeof(double) * (size_t)m);
		for (int64_t j = 0; j < m; j++) {
			double sum = 0, sq = 0;
			for (int64_t i = 0; i < n; i++)
				sum += d->v[id][i * m + j];
			mu[j] = sum / (double)n;
			for (int64_t i = 0; i < n; i++) {
				double e = d->v[id][i * m + j] - mu[j];
				sq += e * e;
			}
			sd[j] = sqrt(sq / (double)n);
			if (!(sd[j] > 1e-12 * fmax(1, fabs(mu[j]))))
				sd[j] = 1;
		}
		s->mean[id] = mu;
		s->std[id] = sd;
		s->n++;
	}
	return s;
}

void apply_standardize(Data *d, const Graph *g, const Stats *s)
{
	for (int id = 0; s && id < g->n_node; id++) {
		if (!s->mean[id] || !d->v[id])
			continue;
		int64_t m = shape_numel(g->node[id].shape);
		double *v = d->v[id];
		for (int64_t i = 0; i < d->n * m; i++) {
			double mu = s->mean[id][i % m], sd = s->std[id][i % m];
			if (g->f64)
				v[i] = (v[i] - mu) / sd;
			else
				v[i] = (double)(((float)v[i] - (float)mu) / (float)sd);
		}
	}
}
