/* test_report.c: `gradc report` text and JSON, the figures, the sweep.
 *
 * The JSON is parsed here (a small strict parser) and checked against a
 * recomputation from its own buffer list: arena = highest end, lower bound
 * = peak of live bytes over steps, unshared = sum, no overlap of
 * simultaneously live buffers; key order fixed; totals from their parts.
 */
#include "testutil.h"

#include <ctype.h>

/* ---- a small JSON parser */

typedef enum JKind { J_NULL, J_NUM, J_STR, J_ARR, J_OBJ, J_BOOL } JKind;

typedef struct JVal {
	JKind kind;
	double num;
	const char *str;
	int n;                /* J_ARR, J_OBJ: elements */
	struct JVal **item;
	const char **key;     /* J_OBJ */
} JVal;

static const char *jp;

static void ws(void)
{
	while (*jp == ' ' || *jp == '\n' || *jp == '\t' || *jp == '\r')
		jp++;
}

static JVal *jvalue(void);

static const char *jstring(void)
{
	ck_assert_int_eq(*jp, '"');
	Buf b = {0};
	buf_printf(&b, "%s", "");
	for (jp++; *jp != '"'; jp++) {
		ck_assert_msg(*jp && (unsigned char)*jp >= 0x20, "bad string");
		if (*jp == '\\') {
			jp++;
			ck_assert_msg(strchr("\"\\/bfnrtu", *jp) != NULL, "bad escape");
			if (*jp == 'u')
				jp += 4;
		}
		buf_printf(&b, "%c", *jp);
	}
	jp++;
	return b.s;
}

static JVal *jlist(char close, bool obj)
{
	JVal *v = alloc(sizeof *v);
	v->kind = obj ? J_OBJ : J_ARR;
	v->item = alloc(sizeof(JVal *) * 256);
	v->key = alloc(sizeof(char *) * 256);
	jp++;
	ws();
	if (*jp == close) {
		jp++;
		return v;
	}
	for (;;) {
		ck_assert_int_lt(v->n, 256);
		ws();
		if (obj) {
			v->key[v->n] = jstring();
			ws();
			ck_assert_int_eq(*jp++, ':');
		}
		v->item[v->n++] = jvalue();
		ws();
		if (*jp == ',') {
			jp++;
			continue;
		}
		ck_assert_int_eq(*jp++, close);
		return v;
	}
}

static JVal *jvalue(void)
{
	ws();
	JVal *v = alloc(sizeof *v);
	if (*jp == '{')
		return jlist('}', true);
	if (*jp == '[')
		return jlist(']', false);
	if (*jp == '"') {
		v->kind = J_STR;
		v->str = jstring();
	} else if (!strncmp(jp, "null", 4)) {
		jp += 4;
	} else {
		char *end;
		v->kind = J_NUM;
		v->num = strtod(jp, &end);
		ck_assert_msg(end != jp && (isdigit((unsigned char)*jp) || *jp == '-'), "bad value at '%.20s'", jp);
		jp = end;
	}
	return v;
}

static JVal *parse_json(const char *s)
{
	jp = s;
	JVal *v = jvalue();
	ws();
	ck_assert_msg(*jp == 0, "trailing text '%.20s'", jp);
	return v;
}

static JVal *get(const JVal *o, const char *key)
{
	ck_assert_int_eq(o->kind, J_OBJ);
	for (int i = 0; i < o->n; i++)
		if (!strcmp(o->key[i], key))
			return o->item[i];
	ck_abort_msg("no key '%s'", key);
	return NULL;
}

static int64_t num(const JVal *o, const char *key)
{
	JVal *v = get(o, key);
	ck_assert_int_eq(v->kind, J_NUM);
	return (int64_t)v->num;
}

/* ---- models */

static Graph *build(const char *text, Mode mode, int batch)
{
	Options o = {.batch = batch};
	Graph *f;
	const char *msg = parse_model_opt(text, &o, &f);
	ck_assert_msg(!msg, "%s", msg);
	lower(f);
	Graph *g = autodiff(f, mode);
	optimize(g, true, true);
	schedule(g);
	plan(g);
	return g;
}

static const char *model_file(const char *name)
{
	size_t len;
	char *s = read_file(str_fmt("models/%s.nn", name), &len);
	ck_assert_msg(s != NULL, "cannot read models/%s.nn", name);
	return s;
}

static void no_trailing_space(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p == '\n')
			ck_assert_msg(p == s || (p[-1] != ' ' && p[-1] != '\t'), "trailing space before '%.30s'", p + 1);
	ck_assert(s[strlen(s) - 1] == '\n');
}

static const char *const names[] = {"mlp", "deep", "wide", "iris", "cancer", "ops", "cnn", "kws_dscnn"};

/* Check one mode's figures against its buffers. */
static void check_mode(const JVal *root, const char *mode)
{
	static const char *const keys[] = {"params_bytes", "frozen_bytes", "optimizer_bytes",
	                                   "arena_bytes", "lower_bound_bytes", "unshared_bytes",
	                                   "stack_bytes", "total_bytes", "kept_bytes",
	                                   "baseline_lower_bound_bytes", "params_count",
	                                   "trainable_count", "macs", "kept"};
	JVal *f = get(root, mode), *bufs = get(root, "buffers");
	ck_assert_int_eq(f->n, 14);
	for (int k = 0; k < 14; k++)
		ck_assert_str_eq(f->key[k], keys[k]);
	/* the kept list: allocations of this mode's buffer list, summing to
	 * kept_bytes */
	JVal *kept = get(f, "kept");
	ck_assert_int_eq(kept->kind, J_ARR);
	int64_t kept_sum = 0;
	for (int i = 0; i < kept->n; i++) {
		JVal *k = kept->item[i];
		kept_sum += num(k, "bytes");
		ck_assert_int_le(num(k, "first"), num(k, "last"));
		ck_assert_int_ge(get(k, "names")->n, 1);
		bool found = false;
		for (int j = 0; j < bufs->n; j++) {
			JVal *b = bufs->item[j];
			found |= !strcmp(get(b, "mode")->str, mode) &&
			         num(b, "first") == num(k, "first") && num(b, "bytes") == num(k, "bytes") &&
			         !strcmp(get(b, "names")->item[0]->str, get(k, "names")->item[0]->str);
		}
		ck_assert_msg(found, "%s: kept allocation %d is not in the buffer list", mode, i);
	}
	ck_assert_int_eq(kept_sum, num(f, "kept_bytes"));
	if (!strcmp(mode, "infer"))
		ck_assert_int_eq(kept->n, 0);
	ck_assert_int_ge(num(f, "params_count"), num(f, "trainable_count"));
	ck_assert_int_gt(num(f, "macs"), 0);  /* every model here has a product */
	int64_t arena = 0, sum = 0, peak = 0;
	int last_step = 0;
	for (int i = 0; i < bufs->n; i++) {
		JVal *b = bufs->item[i];
		if (strcmp(get(b, "mode")->str, mode))
			continue;
		ck_assert_int_ge(get(b, "names")->n, 1);
		int64_t off = num(b, "offset"), bytes = num(b, "bytes");
		ck_assert_int_eq(off % 64, 0);  /* the portable target */
		ck_assert_int_eq(bytes % 64, 0);
		ck_assert_int_le(num(b, "first"), num(b, "last"));
		arena = off + bytes > arena ? off + bytes : arena;
		sum += bytes;
		last_step = (int)num(b, "last") > last_step ? (int)num(b, "last") : last_step;
		for (int j = 0; j < i; j++) {
			JVal *c = bufs->item[j];
			if (strcmp(get(c, "mode")->str, mode))
				continue;
			bool meet = num(b, "first") <= num(c, "last") && num(c, "first") <= num(b, "last");
			bool overlap = off < num(c, "offset") + num(c, "bytes") &&
			               num(c, "offset") < off + bytes;
			ck_assert_msg(!(meet && overlap), "%s buffers %d and %d overlap", mode, j, i);
		}
	}
	for (int s = 0; s <= last_step; s++) {
		int64_t live = 0;
		for (int i = 0; i < bufs->n; i++) {
			JVal *b = bufs->item[i];
			if (!strcmp(get(b, "mode")->str, mode) && num(b, "first") <= s && s <= num(b, "last"))
				live += num(b, "bytes");
		}
		peak = live > peak ? live : peak;
	}
	ck_assert_int_eq(num(f, "arena_bytes"), arena);
	ck_assert_int_eq(num(f, "lower_bound_bytes"), peak);
	ck_assert_int_eq(num(f, "unshared_bytes"), sum);
	ck_assert_int_eq(num(f, "total_bytes"), num(f, "arena_bytes") + num(f, "params_bytes") +
	                                            num(f, "optimizer_bytes") + num(f, "frozen_bytes") +
	                                            num(f, "stack_bytes"));
}

START_TEST(json_recomputed)
{
	for (size_t m = 0; m < sizeof names / sizeof *names; m++) {
		const char *text = model_file(names[m]);
		Graph *t = build(text, MODE_TRAIN, 0), *i = build(text, MODE_INFER, 0);
		Buf b = {0};
		report(&b, t, i, true);
		no_trailing_space(b.s);
		JVal *root = parse_json(b.s);
		static const char *const keys[] = {"model", "batch", "dtype", "train", "infer", "buffers"};
		ck_assert_int_eq(root->n, 6);
		for (int k = 0; k < 6; k++)
			ck_assert_str_eq(root->key[k], keys[k]);
		ck_assert_str_eq(get(root, "model")->str, names[m]);
		ck_assert_int_eq(num(root, "batch"), t->batch);
		ck_assert_str_eq(get(root, "dtype")->str, "f32");
		check_mode(root, "train");
		check_mode(root, "infer");
		ck_assert_int_eq(num(get(root, "train"), "arena_bytes"), t->arena_bytes);
		ck_assert_int_eq(num(get(root, "infer"), "arena_bytes"), i->arena_bytes);
		ck_assert_int_eq(num(get(root, "train"), "macs"), graph_macs(t));
		ck_assert_int_eq(num(get(root, "infer"), "macs"), graph_macs(i));
		ck_assert_int_gt(num(get(root, "train"), "macs"), num(get(root, "infer"), "macs"));
		ck_assert_int_eq(num(get(root, "train"), "params_count"),
		                 num(get(root, "infer"), "params_count"));
		ck_assert_int_gt(num(get(root, "train"), "kept_bytes"), 0);
		Buf again = {0};
		report(&again, t, i, true);
		ck_assert_str_eq(b.s, again.s);
	}
}
END_TEST

START_TEST(json_infer_only)
{
	const char *text = "model p\ninput x[3]\nparam W[2, 3] ~ he\no = W @ x\noutput o\n";
	Graph *i = build(text, MODE_INFER, 4);
	Buf b = {0};
	report(&b, NULL, i, true);
	JVal *root = parse_json(b.s);
	ck_assert_int_eq(get(root, "train")->kind, J_NULL);
	ck_assert_int_eq(num(root, "batch"), 4);
	check_mode(root, "infer");
}
END_TEST

START_TEST(text_report)
{
	const char *text = model_file("mlp");
	Graph *t = build(text, MODE_TRAIN, 0), *i = build(text, MODE_INFER, 0);
	Buf b = {0};
	report(&b, t, i, false);
	no_trailing_space(b.s);
	const char *want[] = {"trainable params", "frozen params", "optimizer state", "arena",
	                      "lower bound", "unshared", "total RAM", "arena = lower bound",
	                      "training arena:", "inference arena:", "timeline", "flash",
	                      /* counts: 2368 parameters; multiply-adds at batch 32 */
	                      "  parameters                 2368         2368\n",
	                      "  multiply-adds            161792        75776\n",
	                      /* the kept activations, per allocation, and their readers */
	                      "activations kept for backward: 5696 bytes\n",
	                      "4096     6-22     h (line 12) <- dz, matmul#21\n"};
	for (size_t k = 0; k < sizeof want / sizeof *want; k++)
		ck_assert_msg(strstr(b.s, want[k]) != NULL, "no '%s' in\n%s", want[k], b.s);
	/* every arena tensor is named once in its mode's list */
	for (int id = 0; id < t->n_node; id++)
		if (t->node[id].sto == STO_ARENA)
			ck_assert_msg(strstr(b.s, node_label(t, id)) != NULL, "%s not listed",
			              node_label(t, id));
}
END_TEST

START_TEST(figures_optimizers)
{
	const char *base = "model f\nbatch 2\ninput x[3]\ninput y int\n"
	                   "param W[4, 3] ~ he\nparam F[4, 4] ~ ones frozen\n"
	                   "o = F @ (W @ x)\nL = cross_entropy(o, y)\noutput o\nminimize L with %s\n";
	struct {
		const char *opt;
		int64_t state;  /* in units of the trainable bytes, + extra */
		int64_t extra;
	} cases[] = {{"sgd(0.1)", 0, 8}, {"sgd(0.1, momentum = 0.9)", 1, 8}, {"adam(0.01)", 2, 8}};
	for (int c = 0; c < 3; c++) {
		Graph *t = build(str_fmt(base, cases[c].opt), MODE_TRAIN, 0);
		Figures f = figures(t, false);
		ck_assert_int_eq(f.params_bytes, 4 * 3 * 4);
		ck_assert_int_eq(f.frozen_bytes, 4 * 4 * 4);
		ck_assert_int_eq(f.optimizer_bytes, cases[c].state * f.params_bytes + cases[c].extra);
		ck_assert_int_eq(f.total_bytes, f.arena_bytes + f.params_bytes + f.frozen_bytes +
		                                    f.optimizer_bytes);
		/* 12 + 16 parameters, 12 trainable; per sample 12 + 16 multiply-adds
		 * forward, and backward dh = F^T do (16) and dW = dz x^T (12), but
		 * no dF: the frozen layer prunes its own gradient */
		ck_assert_int_eq(f.params_count, 28);
		ck_assert_int_eq(f.trainable_count, 12);
		ck_assert_int_eq(f.macs, 2 * (28 + 16 + 12));
		Graph *i = build(str_fmt(base, cases[c].opt), MODE_INFER, 0);
		Figures fi = figures(i, false), fl = figures(i, true);
		ck_assert_int_eq(fi.macs, 2 * 28);
		ck_assert_int_eq(fi.params_count, 28);
		ck_assert_int_eq(fi.optimizer_bytes, 0);
		ck_assert_int_eq(fl.total_bytes, fl.arena_bytes);
	}
}
END_TEST

START_TEST(sweep)
{
	const char *text = model_file("deep");
	Buf b = {0};
	report_sweep_header(&b);
	int64_t prev_t = 0, prev_k = 0;
	for (int batch = 1; batch <= 128; batch *= 4) {
		Graph *t = build(text, MODE_TRAIN, batch), *i = build(text, MODE_INFER, batch);
		report_sweep_row(&b, batch, t, i);
		Figures ft = figures(t, false), fi = figures(i, false);
		ck_assert_int_gt(ft.total_bytes, prev_t);
		ck_assert_int_ge(ft.kept_bytes, prev_k);
		ck_assert_int_gt(ft.total_bytes, fi.total_bytes);
		prev_t = ft.total_bytes;
		prev_k = ft.kept_bytes;
	}
	ck_assert_int_gt(prev_k, 0);
	no_trailing_space(b.s);
	ck_assert_ptr_nonnull(strstr(b.s, "batch"));
	fprintf(stderr, "%s", b.s);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("json");
	add_arena_fixture(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, json_recomputed);
	tcase_add_test(tc, json_infer_only);
	suite_add_tcase(s, tc);
	tc = tcase_create("text");
	add_arena_fixture(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, text_report);
	tcase_add_test(tc, figures_optimizers);
	tcase_add_test(tc, sweep);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(report_suite)
