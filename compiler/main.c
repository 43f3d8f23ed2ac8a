/* main.c: the gradc command line, and the pipeline read top to bottom.
 *
 *   source --parse--> forward graph --lower--> batch explicit
 *     per mode (inference, training step, gradients):
 *       --autodiff--> backward + update --optimize--> dead code out, fusion
 *       --schedule--> order --plan--> arena offsets --emit--> NAME.h, NAME.c
 * (the passes are called in order by pipeline.c)
 *
 * Exit status: 0 success, 1 an error in the user's input, 2 bad usage.
 * `-d LETTERS` dumps the graph after passes: p parse, l lower, a autodiff,
 * o optimize, s schedule, m plan (memory).
 */
#include "host.h"
#include "quant.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
	"usage: gradc compile MODEL.nn [-o DIR] [--batch N] [--infer-only] [--params P.safetensors]\n"
	"                     [--name NAME] [--dtype f32|f64] [--budget BYTES] [--no-fuse] [--no-pack]\n"
	"                     [--fit] [--target T] [--harness compare|embedded|bench]\n"
	"                     [--quantize int8 --calib C.safetensors]\n"
	"       gradc report MODEL.nn [--batch N] [--dtype f32|f64] [--json] [--sweep-batch N,N,...]\n"
	"                     [--budget BYTES [--fit]] [--sweep-budget CURVE.svg] [--no-fuse] [--no-pack]\n"
	"       gradc dot MODEL.nn [--batch N] [--dtype f32|f64]\n"
	"       gradc run MODEL.nn --in IN.safetensors --out OUT.safetensors [--batch N]\n"
	"                 [--dtype f32|f64] [--steps K] [--seed S] [--params P.safetensors]\n"
	"                 [--name NAME] [--no-fuse] [--no-pack] [--budget BYTES [--fit]]\n"
	"       gradc check MODEL.nn [--batch N] [--name NAME] [--no-fuse] [--no-pack]\n"
	"                 [--budget BYTES [--fit]]\n"
	"       gradc train MODEL.nn --data D [options]  (gradc train --help)\n"
	"       gradc eval MODEL.nn --data D --params P.safetensors [options]\n"
	"       gradc import MODEL.onnx [-o OUT.nn] [--name NAME] [--train all|none|P,...]\n"
	"                    [--loss cross_entropy|mse] [--optimizer OPT]\n"
	"every command takes MODEL.onnx for MODEL.nn (imported, its initializers the parameters)\n"
	"compile -MD also writes DIR/NAME.d, a Make/Ninja depfile; gradc --version\n"
	"int8:   --quantize int8 --calib C.safetensors (compile --infer-only --params P, report\n"
	"                    --params P, run): int8 inference calibrated on C's inputs\n"
	"common: --target T  shape the code for a target (report, run, check too)\n"
	"        --budget BYTES --fit  meet a training-RAM budget by recomputation and\n"
	"                    micro-batches (compile, report, run, check)\n"
	"        -d LETTERS  dump the graph after passes (p parse, l lower, a autodiff,\n"
	"                    o optimize, s schedule, m plan) to stderr\n";

static NORETURN void bad_usage(const char *fmt, const char *arg)
{
	usage_exit(usage, fmt, arg);
}

/* ---- arguments */

typedef struct Args {
	const char *cmd, *model, *outdir, *in, *out, *sweep, *sweep_svg;
	const char *harness; /* compile --harness KIND (glue.c), or NULL */
	bool json, depfile;
	int64_t budget;  /* -1: none */
	int steps;
	uint32_t seed;
	Options opt;
} Args;

static int64_t parse_int(const char *s, const char *what, int64_t min, int64_t max)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bad_usage(str_fmt("bad %s '%%s' (an integer from %lld to %lld)", what,
				  (long long)min, (long long)max),
			  s);
	return v;
}

/* The options each command takes (a usage error otherwise). */
static const struct {
	const char *cmd, *opts;
} cmd_opts[] = {
	{"compile", " -o --batch --infer-only --params --name --dtype --budget --fit --no-fuse "
	            "--no-pack --target --harness -MD -d --quantize --calib "},
	{"report", " --batch --dtype --json --sweep-batch --sweep-budget --budget --fit --no-fuse "
	           "--no-pack --target -d --quantize --calib --params "},
	{"dot", " --batch --dtype -d "},
	{"run", " --in --out --batch --dtype --steps --seed --name --no-fuse --no-pack --params "
	        "--budget --fit --target -d --quantize --calib "},
	{"check", " --batch --name --no-fuse --no-pack --budget --fit --target -d "},
};

static const char *options_of(const char *cmd)
{
	for (size_t i = 0; i < sizeof cmd_opts / sizeof cmd_opts[0]; i++)
		if (!strcmp(cmd, cmd_opts[i].cmd))
			return cmd_opts[i].opts;
	return NULL;
}

/* BYTES with an optional K or M suffix (1024-based). */
static int64_t parse_bytes(const char *s)
{
	size_t n = strlen(s);
	int64_t mul = 1;
	if (n && (s[n - 1] == 'K' || s[n - 1] == 'k'))
		mul = 1024;
	else if (n && (s[n - 1] == 'M' || s[n - 1] == 'm'))
		mul = 1024 * 1024;
	const char *digits = mul == 1 ? s : str_ndup(s, n - 1);
	return parse_int(digits, "byte count", 0, INT64_MAX / mul) * mul;
}

/* The combinations of --quantize (quant_run.c) that make sense. */
static void check_quantize(const Args *a)
{
	const Options *o = &a->opt;
	if (o->calib && !o->quantize)
		bad_usage("%s", "'--calib' goes with '--quantize int8'");
	if (!strcmp(a->cmd, "report") && o->params && !o->quantize)
		bad_usage("%s", "'report --params' goes with '--quantize int8'");
	if (!o->quantize)
		return;
	if (strcmp(o->quantize, "int8"))
		bad_usage("unknown --quantize kind '%s' (int8)", o->quantize);
	if (!o->calib)
		bad_usage("%s", "'--quantize int8' needs '--calib C.safetensors' (calibration inputs)");
	if (!strcmp(a->cmd, "compile") && (!o->infer_only || (!o->params && !is_onnx(a->model))))
		bad_usage("%s", "'compile --quantize int8' builds inference with baked parameters: "
			        "it needs '--infer-only' and '--params P.safetensors'");
	if (!strcmp(a->cmd, "report") && !o->params && !is_onnx(a->model))
		bad_usage("%s", "'report --quantize int8' needs '--params P.safetensors' (the "
			        "weights quantized)");
	if (o->f64 || o->budget_set || o->no_fuse || o->no_pack || o->target || a->steps
	    || a->sweep || a->sweep_svg)
		bad_usage("%s", "'--quantize int8' takes none of --dtype f64, --budget, --fit, "
			        "--no-fuse, --no-pack, --target, --steps, --sweep-*");
}

static Args parse_args(int argc, char **argv)
{
	Args a = {.budget = -1, .outdir = "."};
	if (argc < 2)
		bad_usage("%s", "missing command");
	a.cmd = argv[1];
	const char *allowed = options_of(a.cmd);
	if (!allowed)
		bad_usage("unknown command '%s'", a.cmd);
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (s[0] == '-' && s[1] && strstr(" -o --batch --infer-only --params --name --dtype "
						  "--budget --fit --no-fuse --no-pack --json --sweep-batch --sweep-budget "
						  "--in --out --steps --seed --target --harness -MD -d --quantize --calib ",
						  str_fmt(" %s ", s))
		    && !strstr(allowed, str_fmt(" %s ", s)))
			bad_usage(str_fmt("option '%%s' does not belong to '%s'", a.cmd), s);
#define VAL() (v ? (i++, v) : (bad_usage("option '%s' needs a value", s), v))
		if (!strcmp(s, "-o"))
			a.outdir = VAL();
		else if (!strcmp(s, "--batch"))
			a.opt.batch = (int)parse_int(VAL(), "batch", 1, 1 << 30);
		else if (!strcmp(s, "--infer-only"))
			a.opt.infer_only = true;
		else if (!strcmp(s, "--no-fuse"))
			a.opt.no_fuse = true;
		else if (!strcmp(s, "--no-pack"))
			a.opt.no_pack = true;
		else if (!strcmp(s, "--params"))
			a.opt.params = VAL();
		else if (!strcmp(s, "--name"))
			a.opt.name = VAL();
		else if (!strcmp(s, "--dtype")) {
			const char *d = VAL();
			if (strcmp(d, "f32") && strcmp(d, "f64"))
				bad_usage("bad dtype '%s' (f32 or f64)", d);
			a.opt.f64 = !strcmp(d, "f64");
		} else if (!strcmp(s, "--budget")) {
			a.budget = a.opt.budget = parse_bytes(VAL());
			a.opt.budget_set = true;
		} else if (!strcmp(s, "--fit"))
			a.opt.fit = true;
		else if (!strcmp(s, "--sweep-budget"))
			a.sweep_svg = VAL();
		else if (!strcmp(s, "-MD"))
			a.depfile = true;
		else if (!strcmp(s, "--json"))
			a.json = true;
		else if (!strcmp(s, "--sweep-batch"))
			a.sweep = VAL();
		else if (!strcmp(s, "--in"))
			a.in = VAL();
		else if (!strcmp(s, "--out"))
			a.out = VAL();
		else if (!strcmp(s, "--steps"))
			a.steps = (int)parse_int(VAL(), "step count", 0, 1 << 30);
		else if (!strcmp(s, "--seed"))
			a.seed = (uint32_t)parse_int(VAL(), "seed", 0, UINT32_MAX);
		else if (!strcmp(s, "-d")) {
			a.opt.dump = VAL();
			size_t ok = strspn(a.opt.dump, "plaosm");
			if (!*a.opt.dump || a.opt.dump[ok])
				bad_usage("bad -d letters '%s' (p parse, l lower, a autodiff, o "
					  "optimize, s schedule, m plan)",
					  a.opt.dump);
		} else if (!strcmp(s, "--target"))
			a.opt.target = VAL();
		else if (!strcmp(s, "--harness")) {
			a.harness = VAL();
			if (strcmp(a.harness, "compare") && strcmp(a.harness, "embedded") &&
			    strcmp(a.harness, "bench"))
				bad_usage("bad --harness '%s' (compare, embedded or bench)", a.harness);
		}
		else if (!strcmp(s, "--quantize"))
			a.opt.quantize = VAL();
		else if (!strcmp(s, "--calib"))
			a.opt.calib = VAL();
		else if (s[0] == '-' && s[1])
			bad_usage("unknown option '%s'", s);
		else if (!a.model)
			a.model = s;
		else
			bad_usage("unexpected argument '%s'", s);
#undef VAL
	}
	if (!a.model)
		bad_usage("%s", "missing MODEL.nn");
	const char *known;
	if (a.opt.target && !find_target(a.opt.target, &known))
		bad_usage(str_fmt("unknown target '%%s' (known: %s)", known), a.opt.target);
	if (a.opt.name && !valid_name(a.opt.name))
		bad_usage("--name '%s' is not a C identifier", a.opt.name);
	if (a.opt.name && model_name_problem(a.opt.name))
		bad_usage(str_fmt("--name '%%s' %s", model_name_problem(a.opt.name)), a.opt.name);
	if (!strcmp(a.cmd, "run") && (!a.in || !a.out))
		bad_usage("%s", "'run' needs --in IN.safetensors and --out OUT.safetensors");
	if (a.opt.fit && !a.opt.budget_set)
		bad_usage("%s", "'--fit' needs '--budget BYTES'");
	if (a.opt.fit && a.opt.infer_only)
		bad_usage("%s", "'--fit' fits a training build (not with '--infer-only')");
	check_quantize(&a);
	if (!strcmp(a.cmd, "check"))
		a.opt.f64 = true; /* check builds in f64: literals are read as such */
	return a;
}

/* ---- commands */

/* The entry points' graphs of a compile: inference, then training and
 * gradients unless --infer-only, within --budget (fitbuild.c); returns how
 * many.  Over the budget: status 1 with the report.  */
static int build_modes(Args *a, const Graph *fwd, Graph **modes)
{
	if (!a->opt.infer_only && !fwd->has_minimize)
		error_at((Loc){0}, "no 'minimize' statement: nothing to train "
		                   "(use --infer-only for inference alone%s)",
		         is_onnx(a->model) ? "; gradc import --loss ... --train ... makes "
		                             "an ONNX model trainable" : "");
	int n = 0;
	int64_t ram;
	bool flash = a->opt.infer_only && a->opt.params;
	if (a->opt.infer_only) {
		for (int pass = 0; pass < 2; pass++) {
			modes[0] = build_mode(fwd, MODE_INFER, &a->opt);
			n = 1;
			set_stacks(modes, n, &a->opt);
			ram = build_ram(modes, n, flash);
			if (a->budget < 0 || a->opt.no_pack || ram <= a->budget)
				break;
			a->opt.no_pack = true; /* over the budget: first give up the packing scratch */
		}
	} else {
		Fit r;
		build_fit(fwd, &a->opt, &r);
		a->opt = r.opt;
		for (n = 0; n < r.n; n++)
			modes[n] = r.modes[n];
		ram = r.ram;
	}
	if (a->budget >= 0 && ram > a->budget) {
		Buf b = {0};
		report(&b, n > 1 ? modes[1] : NULL, modes[0], false);
		error_plain("%s needs %lld bytes of RAM (parameters, state, the largest arena of "
		            "the entry points and their stack), over the budget of %lld%s\n%s",
		            n > 1 ? "training" : "inference", (long long)ram, (long long)a->budget,
		            n > 1 ? " (--fit may find a way)" : "", b.s);
	}
	return n;
}

static int cmd_compile(Args *a, const Graph *fwd)
{
	if (a->opt.params) /* statistics of train --standardize: into the graph */
		fwd = standardize_graph(fwd, stats_from_file(a->opt.params, fwd));
	Graph *modes[3];
	int n = build_modes(a, fwd, modes);
	if (a->opt.params)
		load_params(a->opt.params, modes, n);
	Buf h = {0}, c = {0}, t = {0};
	emit(&h, &c, modes, n, &a->opt);
	/* glue.c: a harness of the API beside the model */
	const char *tname = a->harness ? harness_text(a->harness, fwd, modes[0], fwd->model, &t) : NULL;
	if (tname)
		tname = str_fmt("%s/%s", a->outdir, tname);
	const char *hp, *cp;
	write_model_files(a->outdir, fwd->model, &h, &c, &hp, &cp);
	if (tname && write_file_atomic(tname, t.s, t.len) != 0) {
		int e = errno;
		remove(hp);
		remove(cp);
		error_plain("cannot write '%s': %s", tname, strerror(e));
	}
	const char *dp = str_fmt("%s/%s.d", a->outdir, fwd->model);
	/* an imported model's parameters come from the model itself */
	const char *inputs[] = {a->model, a->opt.params != a->model ? a->opt.params : NULL};
	if (a->depfile && write_depfile(dp, hp, cp, inputs, 2) != 0) {
		int e = errno;
		remove(hp);
		remove(cp);
		error_plain("cannot write '%s': %s", dp, strerror(e));
	}
	return 0;
}

static int cmd_report(Args *a, const Graph *fwd, const Source *src)
{
	Buf b = {0};
	if (a->sweep) {
		report_sweep_header(&b);
		for (const char *p = a->sweep; *p;) {
			char *end;
			long bs = strtol(p, &end, 10);
			if (end == p || bs < 1 || bs > (1 << 30) || (*end && *end != ','))
				bad_usage("bad --sweep-batch list '%s'", a->sweep);
			Options o = a->opt;
			o.batch = (int)bs;
			const Graph *f = front_end(src, &o);
			Graph *train = f->has_minimize ? build_mode(f, MODE_TRAIN, &o) : NULL;
			report_sweep_row(&b, (int)bs, train, build_mode(f, MODE_INFER, &o));
			p = *end ? end + 1 : end;
		}
	} else if (a->sweep_svg) {
		if (!fwd->has_minimize)
			error_plain("'%s' has no 'minimize' statement: no training RAM to sweep", a->model);
		fit_sweep(&b, fwd, &a->opt, a->sweep_svg);
	} else if (fwd->has_minimize) {
		Fit r;
		build_fit(fwd, &a->opt, &r);
		if (r.fitted && !a->json)
			fit_report(&b, &r);
		else if (a->opt.fit && !a->json)
			buf_printf(&b, "fit: the plain build fits the budget (training RAM %lld of %lld "
			               "bytes): nothing recomputed, no micro-batches\n\n",
			           (long long)r.ram, (long long)a->opt.budget);
		report(&b, r.modes[1], r.modes[0], a->json);
	} else {
		Graph *infer = build_mode(fwd, MODE_INFER, &a->opt);
		set_stacks(&infer, 1, &a->opt);
		report(&b, NULL, infer, a->json);
	}
	fwrite(b.s, 1, b.len, stdout);
	return 0;
}

static int cmd_dot(Args *a, const Graph *fwd)
{
	Buf b = {0};
	Graph *bwd = fwd->has_minimize ? autodiff(fwd, MODE_TRAIN) : NULL;
	if (bwd)
		optimize(bwd, false, false);
	write_dot(&b, fwd, bwd);
	fwrite(b.s, 1, b.len, stdout);
	(void)a;
	return 0;
}

static int run_cmd(void *arg);

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		puts("gradc " GRADC_VERSION);
		return 0;
	}
	if (argc >= 2 && (!strcmp(argv[1], "train") || !strcmp(argv[1], "eval")))
		return train_main(argc, argv); /* train.c: options of its own */
	if (argc >= 2 && !strcmp(argv[1], "import"))
		return import_main(argc, argv); /* import.c: ONNX in */
	Args a = parse_args(argc, argv);
	return run_command(run_cmd, &a);
}

/* The command of 'arg' (its Args): status 0, or 1 by run_command. */
static int run_cmd(void *arg)
{
	Args a = *(Args *)arg;
	Source *src = load_model(a.model);
	if (is_onnx(a.model) && !a.opt.params && strcmp(a.cmd, "check"))
		a.opt.params = a.model; /* the initializers (read_tensors) */
	int rc;
	if (a.opt.quantize && !strcmp(a.cmd, "compile"))
		rc = quant_compile(a.outdir, front_end(src, &a.opt), &a.opt, a.depfile, a.model);
	else if (a.opt.quantize && !strcmp(a.cmd, "report"))
		rc = quant_report(front_end(src, &a.opt), &a.opt, a.json);
	else if (a.opt.quantize)
		rc = quant_run(a.model, front_end(src, &a.opt), &a.opt, a.in, a.out, a.seed);
	else if (!strcmp(a.cmd, "compile"))
		rc = cmd_compile(&a, front_end(src, &a.opt));
	else if (!strcmp(a.cmd, "report"))
		rc = cmd_report(&a, front_end(src, &a.opt), src);
	else if (!strcmp(a.cmd, "dot"))
		rc = cmd_dot(&a, front_end(src, &a.opt));
	else if (!strcmp(a.cmd, "run"))
		rc = cmd_run(a.model, front_end(src, &a.opt), &a.opt, a.in, a.out, a.steps, a.seed);
	else
		rc = cmd_check(a.model, front_end(src, &a.opt), &a.opt);
	return rc;
}
