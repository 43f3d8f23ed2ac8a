/* test_autodiff.c: the backward graph, verified numerically.
 *
 * Every operator: the evaluator's gradient against central finite
 * differences in f64 on small random inputs with broadcasting shapes.
 * The seed network: the derived gradients against the closed forms of the
 * derivation, computed here independently.  Optimizers against their
 * formulas; frozen parameters; weight decay in the graph vs in the optimizer.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradc.h"
#include "testutil.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void)  /* xorshift64, [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static Source src;

/* Random inputs (labels in range) and parameters. */
static void randomize(Eval *e)
{
	const Graph *g = e->g;
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op != OP_INPUT && n->op != OP_PARAM)
			continue;
		int64_t classes = 0;
		for (int j = 0; j < g->n_node; j++)
			if (g->node[j].op == OP_CROSS_ENTROPY && g->node[j].in[1] == i)
				classes = g->node[g->node[j].in[0]].shape.dim[0];
		for (int64_t k = 0; k < node_numel(g, n); k++)
			e->val[i][k] = dt_is_int(n->dtype) ? floor(urand() * (double)classes)
			                                : 2 * urand() - 1;
	}
}

/* Largest per-parameter error |g_fd - g| / max(|g|, 1e-12) over the model. */
static double grad_error(const char *text)
{
	Graph *g = autodiff(lowered_model(text, NULL), MODE_GRAD);
	Eval *e = new_eval(g);
	randomize(e);
	ck_assert_int_eq(eval_run(e), 0);
	double worst = 0;
	for (int p = 0; p < g->n_node; p++) {
		if (g->node[p].op != OP_PARAM || g->node[p].frozen)
			continue;
		int gid = param_grad(g, p);
		ck_assert_msg(gid >= 0, "no gradient for '%s'", g->node[p].name);
		int64_t n = node_numel(g, &g->node[p]);
		double *an = malloc(sizeof(double) * (size_t)n);
		memcpy(an, e->val[gid], sizeof(double) * (size_t)n);
		double num = 0, den = 0;
		for (int64_t k = 0; k < n; k++) {
			double v = e->val[p][k], h = 1e-5 * fmax(1, fabs(v));
			e->val[p][k] = v + h;
			eval_run(e);
			double up = e->val[g->loss][0];
			e->val[p][k] = v - h;
			eval_run(e);
			double dn = e->val[g->loss][0];
			e->val[p][k] = v;
			double fd = (up - dn) / (2 * h);
			num += (fd - an[k]) * (fd - an[k]);
			den += an[k] * an[k];
		}
		free(an);
		eval_run(e);  /* back to the unperturbed values for the next parameter */
		double err = sqrt(num) / fmax(sqrt(den), 1e-12);
		worst = fmax(worst, err);
	}
	free_all();
	return worst;
}

#define HEAD "model t\nbatch 3\ninput x[4]\ninput y int\n"
#define IMG "model t\nbatch 2\ninput x[2, 5, 6]\n"

/* One small model per operator; each exercises broadcasting where it can. */
static const char *const op_models[] = {
	/* + - * / with broadcasting, unbatched and batched operands */
	HEAD "param A[3,4] ~ normal(0, 1)\nparam b[4] ~ normal(0, 1)\nparam c[3,1] ~ normal(0, 1)\n"
	     "u = A * x - b + c\nv = u / (exp(c) + 1)\nJ = sum(v * v) + sum(A / (b * b + 2))\nminimize J\n",
	/* unary minus, relu, leaky_relu both signs, abs */
	HEAD "param W[5,4] ~ normal(0, 1)\nz = W @ x\n"
	     "J = sum(relu(z) - leaky_relu(-z, 0.1) + leaky_relu(z, -0.2) * abs(z))\nminimize J\n",
	/* sigmoid, tanh, exp, log, sqrt */
	HEAD "param W[5,4] ~ normal(0, 1)\nz = W @ x\n"
	     "J = sum(sigmoid(z) * tanh(z) + exp(z) + log(z * z + 1) + sqrt(z * z + 1))\nminimize J\n",
	/* softmax and log_softmax over the last axis of a 2-D value */
	HEAD "param W[3,4] ~ normal(0, 1)\nparam V[4,3] ~ normal(0, 1)\nP = W * x\n"
	     "J = sum(softmax(P) * P) + mean(log_softmax(transpose(P)) * V)\nminimize J\n",
	/* sum, mean, sumsq; a parameter-only term */
	HEAD "param W[3,4] ~ normal(0, 1)\nJ = mean(W @ x) * sum(x) + sumsq(W @ x) + 0.5 * sumsq(W)\n"
	     "minimize J\n",
	/* the three forms of @, with the batch on either side, and transpose */
	HEAD "param A[2,4] ~ normal(0, 1)\nparam B[4,3] ~ normal(0, 1)\nparam C[3,2] ~ normal(0, 1)\n"
	     "param D[4,2] ~ normal(0, 1)\n"
	     "u = A @ x\nv = x @ B\nM = transpose(A) @ transpose(C)\nN = x * transpose(B)\n"
	     "K = N @ D\nQ = A @ transpose(N)\nP = N @ transpose(N)\n"
	     "J = sum(u) * sum(v) + sumsq(M @ v) + sumsq(K) + sum(Q) + sumsq(P) + sum(v @ C)\n"
	     "minimize J\n",
	/* cross_entropy with int labels, through a two-layer net */
	HEAD "param W1[6,4] ~ he\nparam W2[5,6] ~ xavier\nh = tanh(W1 @ x)\no = W2 @ h\n"
	     "L = cross_entropy(o, y)\nminimize L\n",
	/* mse against an input and against a parameter */
	"model t\nbatch 3\ninput x[4]\ninput t[2]\nparam W[2,4] ~ normal(0, 1)\nparam T[2] ~ zeros\n"
	"o = W @ x\nJ = mse(o, t) + mse(sigmoid(o), T)\nminimize J\n",
	/* a per-sample objective reached through a division by a parameter */
	HEAD "param W[3,4] ~ normal(0, 1)\nparam s[1] ~ normal(0, 1)\nq = sum(s * s)\n"
	     "J = sum((W @ x) / (s * s + 1)) - sum(W) / (q + 2)\nminimize J\n",
	/* the spatial operators: conv2d with stride, dilation, asymmetric padding */
	IMG "param W[3,2,3,2] ~ normal(0, 1)\nparam b[3,1,1] ~ normal(0, 1)\n"
	    "c = conv2d(x, W, stride = (2, 1), padding = (1, 0, 2, 1), dilation = (1, 2)) + b\n"
	    "J = sum(tanh(c) * c)\nminimize J\n",
	/* grouped and depthwise, the input trainable too (conv2d_dx) */
	IMG "param X[2,5,6] ~ normal(0, 1)\nparam W[4,1,2,2] ~ normal(0, 1)\n"
	    "param V[2,1,3,3] ~ normal(0, 1)\n"
	    "c = conv2d(x * X, W, groups = 2, stride = 2, padding = 1)\n"
	    "d = conv2d(X, V, groups = 2, padding = (1, 1))\nJ = sum(c * c) + sum(d * x)\n"
	    "minimize J\n",
	/* pointwise */
	IMG "param W[3,2,1,1] ~ normal(0, 1)\nparam X[2,5,6] ~ normal(0, 1)\n"
	    "J = sum(sigmoid(conv2d(x + X, W)))\nminimize J\n",
	/* max pooling with padding and overlapping windows, both average pools */
	IMG "param X[2,5,6] ~ normal(0, 1)\nv = x * X\n"
	    "m = maxpool2d(v, 3, stride = 2, padding = 1)\n"
	    "a = avgpool2d(v, (2, 3), stride = 1, padding = (1, 1))\n"
	    "e = avgpool2d(v, 3, stride = (1, 2), padding = 1, count_include_pad = 0)\n"
	    "J = sum(m * m) + sum(a * a) + sum(e * e)\nminimize J\n",
	/* clip, concat, reshape, flatten, global_avgpool */
	IMG "param X[2,5,6] ~ normal(0, 1)\nparam Y[3,5,6] ~ normal(0, 1)\n"
	    "k = concat(clip(x * X, -0.5, 0.5), Y, x)\nr = reshape(k, 7, 30)\n"
	    "g = global_avgpool(reshape(r * r, 7, 6, 5))\nJ = sum(g * g) + sum(flatten(k) * 0.5)\n"
	    "minimize J\n",
};

/* The small models of models/ (the large ones are checked by `gradc check`
 * on the generated code, which samples their elements). */
static const char *const model_files[] = {
	"models/mlp.nn", "models/iris.nn", "models/cancer.nn", "models/ops.nn",
	"tests/models/conv_pad.nn", "tests/models/conv_dw.nn", "tests/models/conv_frozen.nn",
};

START_TEST(every_small_model)
{
	size_t n;
	char *text = read_file(model_files[_i], &n);
	ck_assert_msg(text != NULL, "cannot read %s", model_files[_i]);
	double err = grad_error(text);
	if (getenv("GRADC_VERBOSE"))
		printf("%s: error %.2e\n", model_files[_i], err);
	ck_assert_msg(err < 1e-7, "%s: gradient error %g", model_files[_i], err);
}
END_TEST

START_TEST(every_operator)
{
	double err = grad_error(op_models[_i]);
	if (getenv("GRADC_VERBOSE"))
		printf("operator model %d: error %.2e\n", _i, err);
	ck_assert_msg(err < 1e-7, "model %d: gradient error %g\n%s", _i, err, op_models[_i]);
}
END_TEST

static const char mlp[] =
	"model mlp\nbatch 4\ninput x[6]\ninput y int\n"
	"param W1[5, 6] ~ he\nparam W2[3, 5] ~ xavier\nconst lambda = 1e-2\n"
	"z = W1 @ x\nh = relu(z)\no = W2 @ h\nL = cross_entropy(o, y)\n"
	"s = lambda / 2 * (sumsq(W1) + sumsq(W2))\nJ = L + s\noutput o\ntrack L, s\n"
	"minimize J with sgd(lr = 0.1)\n";

static double *val(Eval *e, const char *name)
{
	int id = find_name(e->g, name);
	ck_assert_msg(id >= 0, "no node '%s'", name);
	return e->val[id];
}

/* dJ/do = (softmax(o) - onehot(y))/B, dJ/dW2 = dJ/do h^T + lambda W2,
 * dJ/dh = W2^T dJ/do, dJ/dz = dJ/dh * relu'(z), dJ/dW1 = dJ/dz x^T + lambda W1 */
START_TEST(seed_network_closed_form)
{
	Graph *g = autodiff(lowered_model(mlp, NULL), MODE_GRAD);
	Eval *e = new_eval(g);
	randomize(e);
	ck_assert_int_eq(eval_run(e), 0);
	enum { B = 4, I = 6, H = 5, Q = 3 };
	const double lambda = 1e-2, *x = val(e, "x"), *y = val(e, "y"), *W1 = val(e, "W1"),
	             *W2 = val(e, "W2");
	double z[B][H], h[B][H], o[B][Q], dout[B][Q], dh[B][H], dz[B][H];
	double dW1[H][I] = {{0}}, dW2[Q][H] = {{0}};
	for (int b = 0; b < B; b++) {
		for (int j = 0; j < H; j++) {
			z[b][j] = 0;
			for (int i = 0; i < I; i++)
				z[b][j] += W1[j * I + i] * x[b * I + i];
			h[b][j] = z[b][j] > 0 ? z[b][j] : 0;
		}
		double mx = -1e300, sum = 0;
		for (int q = 0; q < Q; q++) {
			o[b][q] = 0;
			for (int j = 0; j < H; j++)
				o[b][q] += W2[q * H + j] * h[b][j];
			mx = fmax(mx, o[b][q]);
		}
		for (int q = 0; q < Q; q++)
			sum += exp(o[b][q] - mx);
		for (int q = 0; q < Q; q++)
			dout[b][q] = (exp(o[b][q] - mx) / sum - (q == (int)y[b])) / B;
		for (int j = 0; j < H; j++) {
			dh[b][j] = 0;
			for (int q = 0; q < Q; q++)
				dh[b][j] += W2[q * H + j] * dout[b][q];
			dz[b][j] = z[b][j] > 0 ? dh[b][j] : 0;
		}
		for (int q = 0; q < Q; q++)
			for (int j = 0; j < H; j++)
				dW2[q][j] += dout[b][q] * h[b][j];
		for (int j = 0; j < H; j++)
			for (int i = 0; i < I; i++)
				dW1[j][i] += dz[b][j] * x[b * I + i];
	}
	const double *g1 = e->val[param_grad(g, find_name(g, "W1"))];
	const double *g2 = e->val[param_grad(g, find_name(g, "W2"))];
	for (int j = 0; j < H; j++)
		for (int i = 0; i < I; i++)
			ck_assert_double_eq_tol(g1[j * I + i], dW1[j][i] + lambda * W1[j * I + i], 1e-14);
	for (int q = 0; q < Q; q++)
		for (int j = 0; j < H; j++)
			ck_assert_double_eq_tol(g2[q * H + j], dW2[q][j] + lambda * W2[q * H + j], 1e-14);
	const double *dout_g = val(e, "do"), *dz_g = val(e, "dz");
	for (int b = 0; b < B; b++) {
		for (int q = 0; q < Q; q++)
			ck_assert_double_eq_tol(dout_g[b * Q + q], dout[b][q], 1e-15);
		for (int j = 0; j < H; j++)
			ck_assert_double_eq_tol(dz_g[b * H + j], dz[b][j], 1e-15);
	}
	free_all();
}
END_TEST

/* The backward graph of the seed is the derivation: no multiplication by
 * one, the penalty's gradient one SCALE of the weight, the seed 1/B. */
START_TEST(seed_network_graph_shape)
{
	Graph *g = autodiff(lowered_model(mlp, NULL), MODE_TRAIN);
	int n_matmul = 0, n_scale = 0, n_update = 0;
	for (int i = 0; i < g->n_node; i++) {
		Node *n = &g->node[i];
		if (!n->backward)
			continue;
		n_matmul += n->op == OP_MATMUL;
		n_update += n->op == OP_SGD_STEP;
		if (n->op == OP_SCALE) {
			n_scale++;
			ck_assert_double_eq_tol(n->attr[0], 1e-2, 1e-18);  /* lambda W */
			ck_assert_int_eq(g->node[n->in[0]].op, OP_PARAM);
		}
		ck_assert(n->op != OP_MUL);  /* nothing multiplied by a literal one */
	}
	ck_assert_int_eq(n_matmul, 3);  /* dW2, dh, dW1: no dx */
	ck_assert_int_eq(n_scale, 2);
	ck_assert_int_eq(n_update, 2);
	int dW2 = param_grad(g, find_name(g, "W2"));
	ck_assert_str_eq(g->node[dW2].name, "dW2");
	ck_assert_str_eq(g->node[dW2].deriv, "dJ/dW2 = dJ/do h^T + 0.01 W2");
	free_all();
}
END_TEST

/* Several steps of a model on a fixed batch; returns the evaluator. */
static Eval *train(const char *text, int steps)
{
	Graph *g = autodiff(lowered_model(text, NULL), MODE_TRAIN);
	Eval *e = new_eval(g);
	rng = 42;
	randomize(e);
	for (int s = 0; s < steps; s++)
		ck_assert_int_eq(eval_run(e), 0);
	return e;
}

START_TEST(weight_decay_graph_equals_optimizer)
{
	const char *a = "model t\nbatch 3\ninput x[4]\ninput y int\nparam W[3,4] ~ normal(0, 1)\n"
	                "L = cross_entropy(W @ x, y)\nJ = L + 0.05 / 2 * sumsq(W)\n"
	                "minimize J with sgd(lr = 0.3)\n";
	const char *b = "model t\nbatch 3\ninput x[4]\ninput y int\nparam W[3,4] ~ normal(0, 1)\n"
	                "L = cross_entropy(W @ x, y)\nminimize L with sgd(lr = 0.3, weight_decay = 0.05)\n";
	Eval *ea = train(a, 5);
	Eval *eb = train(b, 5);
	const double *wa = val(ea, "W"), *wb = val(eb, "W");
	for (int i = 0; i < 12; i++)
		ck_assert_double_eq_tol(wa[i], wb[i], 1e-14);
	free_all();
}
END_TEST

/* J = sum(w * x) per sample; dJ/dw = mean over the batch of x: known. */
static const char lin[] = "model t\nbatch 2\ninput x[2]\nparam w[2] ~ zeros\n"
                          "J = sum(w * x)\nminimize J with %s\n";

START_TEST(sgd_momentum_formula)
{
	Eval *e = train(str_fmt(lin, "sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.01)"), 0);
	double *x = val(e, "x"), *w = val(e, "w");
	x[0] = 1, x[1] = -2, x[2] = 3, x[3] = 0.5;
	w[0] = 0.2, w[1] = -0.1;
	double buf[2] = {0, 0}, ref[2] = {0.2, -0.1}, gmean[2] = {2, -0.75};
	for (int s = 0; s < 4; s++) {
		ck_assert_int_eq(eval_run(e), 0);
		for (int i = 0; i < 2; i++) {
			double d = gmean[i] + 0.01 * ref[i];
			buf[i] = s == 0 ? d : 0.9 * buf[i] + d;
			ref[i] -= 0.1 * buf[i];
			ck_assert_double_eq_tol(w[i], ref[i], 1e-15);
		}
	}
	free_all();
}
END_TEST

START_TEST(adam_formula)
{
	Eval *e = train(str_fmt(lin, "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-6, "
	                             "weight_decay = 0.1)"), 0);
	double *x = val(e, "x"), *w = val(e, "w");
	x[0] = 1, x[1] = -2, x[2] = 3, x[3] = 0.5;
	w[0] = 0.2, w[1] = -0.1;
	double m[2] = {0}, v[2] = {0}, ref[2] = {0.2, -0.1}, gmean[2] = {2, -0.75};
	for (int t = 1; t <= 5; t++) {
		ck_assert_int_eq(eval_run(e), 0);
		for (int i = 0; i < 2; i++) {
			double d = gmean[i] + 0.1 * ref[i];
			m[i] = 0.8 * m[i] + 0.2 * d;
			v[i] = 0.99 * v[i] + 0.01 * d * d;
			double mh = m[i] / (1 - pow(0.8, t)), vh = v[i] / (1 - pow(0.99, t));
			ref[i] -= 0.01 * mh / (sqrt(vh) + 1e-6);
			ck_assert_double_eq_tol(w[i], ref[i], 1e-12);
		}
	}
	free_all();
}
END_TEST

START_TEST(frozen_prunes_backward)
{
	const char *text = "model t\nbatch 2\ninput x[4]\ninput y int\n"
	                   "param W1[5,4] ~ he frozen\nparam W2[3,5] ~ xavier\n"
	                   "h = relu(W1 @ x)\nL = cross_entropy(W2 @ h, y)\nminimize L\n";
	Eval *e = train(text, 0);
	const Graph *g = e->g;
	int w1 = find_name(g, "W1");
	ck_assert_int_eq(param_grad(g, w1), -1);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (!n->backward)
			continue;
		ck_assert_msg(n->op != OP_RELU_GRAD, "gradient flows into the frozen layer");
		for (int k = 0; k < n->n_in; k++)
			ck_assert_msg(n->op == OP_MATMUL || n->in[k] != w1, "backward reads W1");
	}
	double before[20];
	memcpy(before, e->val[w1], sizeof before);
	for (int s = 0; s < 3; s++)
		ck_assert_int_eq(eval_run(e), 0);
	ck_assert_mem_eq(before, e->val[w1], sizeof before);
	free_all();
}
END_TEST

START_TEST(objective_without_trainable_param)
{
	const char *text = "model t\ninput x[2]\nparam W[2,2] ~ he frozen\nJ = sum(W @ x)\nminimize J\n";
	src = (Source){.path = "test.nn", .text = text, .len = strlen(text)};
	err_src = &src;
	jmp_buf jb;
	err_jmp = &jb;
	if (setjmp(jb) == 0) {
		Options o = {0};
		Graph *g = parse(&src, &o);
		lower(g);
		autodiff(g, MODE_TRAIN);
		ck_abort_msg("no error");
	}
	err_jmp = NULL;
	ck_assert_ptr_nonnull(strstr(err_msg, "test.nn:5:10: error: "));
	ck_assert_ptr_nonnull(strstr(err_msg, "trainable parameter"));
	free_all();
}
END_TEST

START_TEST(bad_label_and_nonfinite_leave_params)
{
	Eval *e = train(mlp, 0);
	double *W1 = val(e, "W1"), *y = val(e, "y"), *x = val(e, "x");
	double before[30];
	memcpy(before, W1, sizeof before);
	y[1] = 3;  /* 3 classes: out of range */
	ck_assert_int_eq(eval_run(e), 1);
	ck_assert_mem_eq(before, W1, sizeof before);
	y[1] = 0;
	x[0] = INFINITY;
	ck_assert_int_eq(eval_run(e), 2);
	ck_assert_mem_eq(before, W1, sizeof before);
	free_all();
}
END_TEST

/* Hand-worked spatial cases: the model (objective J = sum of its last
 * value, parameters X and W set here), then the value and gradients. */
static Eval *hand_case(const char *text, const double *X, int nx, const double *W, int nw)
{
	Graph *g = autodiff(lowered_model(text, NULL), MODE_GRAD);
	Eval *e = new_eval(g);
	memcpy(val(e, "X"), X, sizeof(double) * (size_t)nx);
	if (W)
		memcpy(val(e, "W"), W, sizeof(double) * (size_t)nw);
	ck_assert_int_eq(eval_run(e), 0);
	return e;
}

static void expect(const double *got, const double *want, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		ck_assert_msg(fabs(got[i] - want[i]) < 1e-12, "%s[%d]: %g, want %g", what, i, got[i],
		              want[i]);
}

static const double *grad_of(Eval *e, const char *name)
{
	return e->val[param_grad(e->g, find_name(e->g, name))];
}

/* x = 1..9 in a 3x3 image, W = [1 2; 3 4], padding bottom and right 1. */
START_TEST(conv_by_hand)
{
	const double X[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, W[4] = {1, 2, 3, 4};
	Eval *e = hand_case("model t\nparam X[1,3,3] ~ zeros\nparam W[1,1,2,2] ~ zeros\n"
	                    "c = conv2d(X, W, padding = (0, 0, 1, 1))\nJ = sum(c)\nminimize J\n",
	                    X, 9, W, 4);
	const double c[9] = {37, 47, 21, 67, 77, 33, 23, 26, 9};
	expect(val(e, "c"), c, 9, "c");
	/* dJ/dW[u][v] = the sum of the inputs tap (u, v) reads */
	const double dW[4] = {45, 33, 39, 28};
	expect(grad_of(e, "W"), dW, 4, "dW");
	/* dJ/dX[i][j] = the sum of the weights whose taps read it */
	const double dX[9] = {1, 3, 3, 4, 10, 10, 4, 10, 10};
	expect(grad_of(e, "X"), dX, 9, "dX");
	free_all();
}
END_TEST

/* Max pooling with padding: the gradient goes to the first maximum. */
START_TEST(maxpool_by_hand)
{
	const double X[6] = {1, 3, 3, 2, 0, 1};
	Eval *e = hand_case("model t\nparam X[1,2,3] ~ zeros\n"
	                    "m = maxpool2d(X, 2, stride = 1, padding = (0, 0, 0, 1))\nJ = sum(m)\n"
	                    "minimize J\n", X, 6, NULL, 0);
	const double m[3] = {3, 3, 3}, dX[6] = {0, 2, 1, 0, 0, 0};
	expect(val(e, "m"), m, 3, "m");
	expect(grad_of(e, "X"), dX, 6, "dX");
	free_all();
}
END_TEST

/* Average pooling counting the padding (PyTorch's default) or not (ONNX's). */
START_TEST(avgpool_by_hand)
{
	const double X[4] = {1, 2, 3, 4};
	const char *fmt = "model t\nparam X[1,2,2] ~ zeros\n"
	                  "a = avgpool2d(X, 2, stride = 1, padding = (0, 0, 1, 1), "
	                  "count_include_pad = %d)\nJ = sum(a)\nminimize J\n";
	Eval *e = hand_case(str_fmt(fmt, 1), X, 4, NULL, 0);
	const double a1[4] = {2.5, 1.5, 1.75, 1}, d1[4] = {0.25, 0.5, 0.5, 1};
	expect(val(e, "a"), a1, 4, "a (count_include_pad 1)");
	expect(grad_of(e, "X"), d1, 4, "dX (count_include_pad 1)");
	e = hand_case(str_fmt(fmt, 0), X, 4, NULL, 0);
	const double a0[4] = {2.5, 3, 3.5, 4}, d0[4] = {0.25, 0.75, 0.75, 2.25};
	expect(val(e, "a"), a0, 4, "a (count_include_pad 0)");
	expect(grad_of(e, "X"), d0, 4, "dX (count_include_pad 0)");
	free_all();
}
END_TEST

/* clip's gradient is 1 on the closed interval [lo, hi], as torch.clamp. */
START_TEST(clip_by_hand)
{
	const double X[5] = {-1, 0, 0.5, 1, 2};
	Eval *e = hand_case("model t\nparam X[5] ~ zeros\nk = clip(X, 0, 1)\nJ = sum(k)\n"
	                    "minimize J\n", X, 5, NULL, 0);
	const double k[5] = {0, 0, 0.5, 1, 1}, dX[5] = {0, 1, 1, 1, 0};
	expect(val(e, "k"), k, 5, "k");
	expect(grad_of(e, "X"), dX, 5, "dX");
	free_all();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("autodiff");
	TCase *t = tcase_create("operators");
	tcase_add_loop_test(t, every_operator, 0, (int)(sizeof op_models / sizeof *op_models));
	tcase_add_loop_test(t, every_small_model, 0,
	                    (int)(sizeof model_files / sizeof *model_files));
	tcase_set_timeout(t, 60);
	suite_add_tcase(s, t);
	t = tcase_create("spatial by hand");
	tcase_add_test(t, conv_by_hand);
	tcase_add_test(t, maxpool_by_hand);
	tcase_add_test(t, avgpool_by_hand);
	tcase_add_test(t, clip_by_hand);
	suite_add_tcase(s, t);
	t = tcase_create("seed network");
	tcase_add_test(t, seed_network_closed_form);
	tcase_add_test(t, seed_network_graph_shape);
	suite_add_tcase(s, t);
	t = tcase_create("optimizers");
	tcase_add_test(t, weight_decay_graph_equals_optimizer);
	tcase_add_test(t, sgd_momentum_formula);
	tcase_add_test(t, adam_formula);
	suite_add_tcase(s, t);
	t = tcase_create("pruning and status");
	tcase_add_test(t, frozen_prunes_backward);
	tcase_add_test(t, objective_without_trainable_param);
	tcase_add_test(t, bad_label_and_nonfinite_leave_params);
	suite_add_tcase(s, t);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
