/* standardize.c: the statistics of `gradc train --standardize`, in the
 * parameters file and in the generated code.
 *
 * A parameters file carries, per standardized input NAME, the tensors
 * `standardize.NAME.mean` and `standardize.NAME.std` (F64, the input's
 * per-sample shape).  Names with dots are no model's parameters, so the
 * file stays a plain parameters file for every other tool.
 *
 * `eval`, `run` and `train --init` apply them to the data on the host
 * (data.c, apply_standardize); `compile --params` puts them into the
 * graph (standardize_graph), so the firmware takes raw values:
 *   1. copy the forward graph node by node;
 *   2. after each standardized input x, add two frozen parameters x_mean
 *      and x_std (another name if taken: x_mean_2, ...) baked with the
 *      statistics, and u = (x - x_mean) / x_std; the parameters count as
 *      declared after the model's last line, so they come last in the
 *      parameter table and NAME_init gives the model's own parameters the
 *      values (seed streams) it gives them without statistics;
 *   3. every later use of x (operands, outputs, the objective, tracked
 *      values) becomes a use of u.
 * The arithmetic is the host's (v - mean) / std in the build's precision,
 * so both sides agree bit for bit.
 */
#include "host.h"
#include "gradc_safetensors.h"

#include <string.h>

static const char *stat_name(const char *input, bool std)
{
	return str_fmt("standardize.%s.%s", input, std ? "std" : "mean");
}

const char *read_stats(const gradc_st_file *f, const Graph *g, Stats **out)
{
	Stats *s = alloc(sizeof *s);
	s->mean = alloc(sizeof(double *) * (size_t)g->n_node);
	s->std = alloc(sizeof(double *) * (size_t)g->n_node);
	for (int i = 0; i < f->n; i++) {
		const char *name = f->t[i].name;
		if (strncmp(name, "standardize.", 12))
			continue;
		const char *dot = strrchr(name, '.');
		const char *input = str_ndup(name + 12, (size_t)(dot - name - 12));
		bool std = !strcmp(dot, ".std");
		int id = find_name(g, input);
		if ((!std && strcmp(dot, ".mean")) || id < 0 || g->node[id].op != OP_INPUT
		    || dt_is_int(g->node[id].dtype))
			return str_fmt("'%s' names no float input of the model", name);
		double *v;
		Node stand_in = g->node[id];
		stand_in.name = name;
		const char *msg = param_tensor(&f->t[i], &stand_in, &v);
		if (msg)
			return msg;
		for (int64_t k = 0; std && k < shape_numel(stand_in.shape); k++)
			if (!(v[k] > 0))
				return str_fmt("'%s'[%lld] = %g is not positive", name,
					       (long long)k, v[k]);
		*(std ? &s->std[id] : &s->mean[id]) = v;
	}
	for (int id = 0; id < g->n_node; id++) {
		if (!s->mean[id] != !s->std[id])
			return str_fmt("'%s' without '%s'",
				       stat_name(g->node[id].name, !s->std[id]),
				       stat_name(g->node[id].name, !!s->std[id]));
		s->n += s->mean[id] != NULL;
	}
	*out = s->n ? s : NULL;
	return NULL;
}

int stats_tensors(const Stats *s, const Graph *g, gradc_st_tensor *t)
{
	int n = 0;
	for (int id = 0; s && id < g->n_node; id++) {
		if (!s->mean[id])
			continue;
		const Node *nd = &g->node[id];
		for (int k = 0; k < 2; k++) {
			gradc_st_tensor *x = &t[n++];
			x->name = stat_name(nd->name, k);
			x->dtype = GRADC_ST_F64;
			x->rank = nd->shape.rank;
			for (int r = 0; r < nd->shape.rank; r++)
				x->shape[r] = nd->shape.dim[r];
			x->data = k ? s->std[id] : s->mean[id];
			x->nbytes = sizeof(double) * (size_t)shape_numel(nd->shape);
		}
	}
	return n;
}

/* A parameter name "BASE_SUFFIX" that 'g' does not use yet. */
static const char *fresh_name(const Graph *g, const char *base, const char *suffix)
{
	const char *name = str_fmt("%s_%s", base, suffix);
	for (int k = 2; find_name(g, name) >= 0 || !valid_name(name); k++)
		name = str_fmt("%s_%s_%d", base, suffix, k);
	return name;
}

/* A frozen parameter of 'g' shaped as input 'x', baked with 'v'.  Its
 * place is after the model's last line ('*line', advanced), so the
 * model's own parameters keep their rows and seed streams.  */
static int new_stat(Graph *g, const Node *x, const char *name, const double *v, const Graph *old,
		    int *line)
{
	const char *nm = fresh_name(old, x->name, name);
	int id = new_leaf(g, OP_PARAM, nm, x->shape, false, float_dtype(g), (Loc){++*line, 1});
	Node *n = &g->node[id];
	n->frozen = true;
	n->stat = true;
	n->init = INIT_ZEROS;
	n->value = v;
	n->text = str_fmt("param %s%s ~ zeros frozen   # --params: standardization of '%s'", nm,
			  shape_str(x->shape), x->name);
	return id;
}

Stats *stats_from_file(const char *path, const Graph *fwd)
{
	gradc_st_file f = {0};
	const char *msg = read_tensors(path, &f);
	Stats *s = NULL;
	if (!msg)
		msg = read_stats(&f, fwd, &s);
	gradc_st_free(&f);
	if (msg)
		error_plain("%s", strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg));
	return s;
}

Graph *standardize_graph(const Graph *fwd, const Stats *s)
{
	if (!s)
		return (Graph *)fwd;
	Graph *g = copy_graph(fwd);
	g->n_node = 0;
	int *map = alloc(sizeof(int) * (size_t)fwd->n_node), line = 0;
	for (int i = 0; i < fwd->n_node; i++)
		line = fwd->node[i].loc.line > line ? fwd->node[i].loc.line : line;
	for (int i = 0; i < fwd->n_node; i++) {
		Node n = fwd->node[i];
		for (int k = 0; k < n.n_in; k++)
			n.in[k] = map[n.in[k]];
		if (g->n_node == g->cap) {
			g->node = alloc_grow(g->node, sizeof(Node) * (size_t)g->cap,
					     sizeof(Node) * (size_t)g->cap * 2);
			g->cap *= 2;
		}
		map[i] = g->n_node;
		g->node[g->n_node++] = n;
		if (!s->mean[i])
			continue;
		int x = map[i];
		int mu = new_stat(g, &n, "mean", s->mean[i], fwd, &line);
		int sd = new_stat(g, &n, "std", s->std[i], fwd, &line);
		int u = new_binary(g, OP_DIV, new_binary(g, OP_SUB, x, mu, n.loc), sd, n.loc);
		g->node[u].text = str_fmt("(%s - %s) / %s   # --params: standardized input", n.name,
					  g->node[mu].name, g->node[sd].name);
		map[i] = u;
	}
	for (int k = 0; k < g->n_out; k++)
		g->out[k] = map[g->out[k]];
	for (int k = 0; k < g->n_track; k++)
		g->track[k] = map[g->track[k]];
	if (g->objective >= 0)
		g->objective = map[g->objective];
	if (g->loss >= 0)
		g->loss = map[g->loss];
	return g;
}

void run_params(const char *path, const Graph *fwd, double **param, double **input, int64_t batch)
{
	gradc_st_file f = {0};
	const char *msg = read_tensors(path, &f);
	Stats *s = NULL;
	for (int i = 0; i < fwd->n_node && !msg; i++) {
		const Node *n = &fwd->node[i];
		const gradc_st_tensor *t = n->op == OP_PARAM ? gradc_st_find(&f, n->name) : NULL;
		if (t && !param[i])
			msg = param_tensor(t, n, &param[i]);
	}
	if (!msg)
		msg = read_stats(&f, fwd, &s);
	gradc_st_free(&f);
	if (msg)
		error_plain("%s", strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg));
	Data d = {.path = path, .n = batch, .v = input};
	apply_standardize(&d, fwd, s);
}
