/* host.h: the host commands' declarations (run, check, train, eval,
 * import, compile's parameters and harnesses): what runs the generated
 * code on this machine or reads and writes the user's files.  The
 * compiler's passes and the generated API's rules are gradc.h's.
 */
#ifndef GRADC_HOST_H
#define GRADC_HOST_H

#include "gradc.h"

/* ---------------------------------------------------------- params.c */

/* Read parameter values from a safetensors file (F32 or F64, shapes as
 * declared) into Node.value of every parameter of the graphs.  */
void load_params(const char *path, Graph *const *modes, int n_modes);
/* The checks behind load_params and `gradc run`, returning a message (in
 * the arena, without the file name) or NULL, so the caller can free the
 * file before reporting.  Values become doubles in the arena.  */
struct gradc_st_tensor;
/* A parameter: F32 or F64, exactly the declared shape. */
const char *param_tensor(const struct gradc_st_tensor *t, const Node *n, double **values);
/* An input of forward graph 'g': F32/F64 [B, dims...] or (int) I32/I64 [B]
 * with labels in [0, label_classes); *batch: B so far (0: unknown), set.  */
const char *input_tensor(const struct gradc_st_tensor *t, const Graph *g, const Node *n,
                         int64_t *batch, double **values);

/* ---------------------------------------------------------- hostcc.c */

/* The temporary directory of a host build (run, check, train): create it;
 * the path of a file in it; write a file there (error_plain on failure);
 * the embedded runtime into it; remove it and its files (cleanup: also from
 * a signal handler; drop_tmpdir: and give the signals back).  */
void make_tmpdir(void);
const char *tmp_path(const char *name);
void put_file(const char *name, const char *text, size_t len);
void put_runtime(void);
void cleanup(void);
void drop_tmpdir(void);
/* body(arg) in a fresh temporary directory, removed when body returns and
 * when it raises an error (which then goes on to the caller's err_jmp). */
void in_tmpdir(void (*body)(void *), void *arg);
const char *sh_quote(const char *s);                /* quoted for sh */
const char *log_tail(const char *name, size_t max); /* a file's end, for messages */
/* $CC -O2 on gradc_harness.c, PREFIX.c and the runtime -> gradc_harness */
void build_harness(const char *path, const char *prefix, const char *what);

/* ------------------------------------------------------------ glue.c */

/* `compile --harness KIND` (compare, embedded, bench): the harness of the
 * training build of 'fwd' (inference graph 'infer') into 'out'; returns
 * its file name (NAME_compare.c, NAME_glue.h, NAME_bench.h).  */
const char *harness_text(const char *kind, const Graph *fwd, const Graph *infer,
                         const char *prefix, Buf *out);

/* ------------------------------------------------------------- run.c */

int cmd_run(const char *path, const Graph *fwd, const Options *o, const char *in,
            const char *out, int steps, uint32_t seed);

/* What one harness does. */
typedef struct Job {
	const char *path;   /* the model file, for messages */
	const char *in;     /* run: IN, for messages */
	const char *prefix; /* symbol prefix */
	Graph *fwd;         /* at the batch of the data */
	Graph *modes[3];    /* infer, then train and grad (if minimize) */
	int n_modes;
	Graph *infer, *train, *grad;
	bool f64;
	int64_t batch;
	uint32_t seed;
	int steps;
	double **input;    /* per forward node id: B * numel values */
	double **param;    /* per forward node id: given values, or NULL */
	const Graph *orig; /* the forward graph 'input' and 'param' were read for */
	bool check;
} Job;

/* Values exchanged with the harness (in.bin, out.bin): doubles. */
typedef struct Doubles {
	double *v;
	size_t n, cap;
} Doubles;
void push_double(Doubles *d, double v);
/* Build, write and run j's harness (steps 1-5 of run.c's comment) with
 * cleanup on every exit path: 'fill' writes in.bin's values once the
 * graphs are built; the results (after the status pair) in *res, *n_res. */
void run_job(Job *j, const Source *src, const Options *o, void (*fill)(Job *, Doubles *),
             double **res, size_t *n_res);

/* ----------------------------------------------------------- check.c */

enum { CHECK_SEED = 1 };  /* the parameters' seed of `gradc check` (its harness) */

int cmd_check(const char *path, const Graph *fwd, const Options *o);

/* ------------------------------------------------------------ data.c */

/* Samples of a data set, checked against a forward graph. */
typedef struct Data {
	const char *path; /* for messages */
	int64_t n;        /* samples */
	double **v;       /* per node id: an input's n * per-sample values, else NULL */
} Data;
/* Standardization statistics, per input node id (NULL: not standardized). */
typedef struct Stats {
	int n;                /* inputs standardized */
	double **mean, **std; /* per-sample shaped, std > 0 */
} Stats;
/* CSV file, directory of NAME.npy, or safetensors file 'path', with every
 * input of 'g'; 'label': the CSV column of the int label, or NULL (last). */
Data *load_data(const char *path, const Graph *g, const char *label);
/* Move the fraction 'frac' of 'd' (shuffled with 'seed') into the set returned. */
Data *split_data(Data *d, const Graph *g, double frac, uint32_t seed);
/* Per-element mean and deviation of the feature inputs of 'd'. */
Stats *fit_standardize(const Data *d, const Graph *g);
/* v = (v - mean) / std in the build's precision ('s' may be NULL). */
void apply_standardize(Data *d, const Graph *g, const Stats *s);

/* ----------------------------------------------------- standardize.c */

struct gradc_st_file;
/* The statistics in a parameters file (standardize.NAME.mean / .std), *s
 * NULL if none; NULL or a message.  */
const char *read_stats(const struct gradc_st_file *f, const Graph *g, Stats **s);
/* Fill t[] with the statistics' tensors (2 per input); returns the count. */
int stats_tensors(const Stats *s, const Graph *g, struct gradc_st_tensor *t);
/* The statistics in parameters file 'path', or NULL. */
Stats *stats_from_file(const char *path, const Graph *fwd);
/* 'fwd' with statistics 's' applied to its inputs in the graph (frozen
 * baked parameters NAME_mean, NAME_std), or 'fwd' if 's' is NULL. */
Graph *standardize_graph(const Graph *fwd, const Stats *s);
/* `run --params P`: the parameters P holds that 'param' (per node id) lacks,
 * and P's statistics applied to 'input' (per node id, 'batch' samples). */
void run_params(const char *path, const Graph *fwd, double **param, double **input,
                int64_t batch);

/* ------------------------------------------------------------ train.c */

enum { SCHED_CONST, SCHED_STEP, SCHED_COSINE }; /* --schedule, as harness/trainer.c */

/* The command line of `gradc train` / `gradc eval`. */
typedef struct Targs {
	const char *cmd;         /* "train" or "eval" */
	const char *model, *data, *val, *init, *params; /* files read */
	const char *out, *blob, *log, *plot, *pred;     /* files written, or NULL */
	const char *label;       /* --label: the CSV column of the int label, or NULL */
	double val_split, lr;    /* 0: none, the model's */
	double gamma, min_lr;    /* step and cosine decay */
	int epochs, step_size, warmup, sched;
	uint32_t seed;
	bool no_shuffle, pad, keep_best, standardize;
	Options opt;             /* --batch, --dtype */
} Targs;

/* What gradc knows of the build and the data. */
typedef struct Run {
	const Targs *a;
	const Graph *fwd;
	const char *prefix;         /* symbol prefix */
	int *ins, n_in, *pas, n_pa; /* input and parameter ids, declaration order */
	int label;                  /* the int input, or -1 */
	int64_t classes;            /* of the label (INT32_MAX: no cross_entropy) */
	int pred_out;               /* index of the output argmax'ed, or -1 */
	int n_track;
	Data *train, *val;          /* val: NULL without validation */
	Stats *stats;               /* NULL: not standardized */
	double **init;              /* per parameter node id: initial values, or NULL */
} Run;

/* `gradc train` and `gradc eval`: their own arguments, exit status. */
int train_main(int argc, char **argv);

/* ----------------------------------------------------------- driver.c */

/* Build the driver for 'r' (or take it from the cache), run it ('eval':
 * evaluate r->train instead of training); OUT.bin's bytes, *n of them,
 * after checking its status (a user error if the generated code failed). */
char *run_driver(Run *r, bool eval, size_t *n);

/* `check`'s error of one parameter from the norms ||g_fd - g||, ||g||,
 * ||g_fd|| and the objective J (SPEC 2). */
double check_error(double diff, double g, double g_fd, double objective);

/* ----------------------------------------------------------- import.c */

/* `gradc import` (SPEC 4, ONNX in); the importer's own header is onnx.h. */
typedef struct ImportOptions {
	const char *name;       /* --name, or NULL: the file's name */
	const char *train;      /* --train all|none|P,...; NULL: none */
	const char *loss;       /* --loss cross_entropy|mse, or NULL */
	const char *optimizer;  /* --optimizer, or NULL: sgd(lr = 0.01) */
	const char *params_path; /* where the initializers go (for a comment), or NULL */
} ImportOptions;
/* An ONNX model as .nn text and its initializers as safetensors bytes. */
typedef struct Imported {
	Source *src;            /* path: the .onnx file; text: the model */
	const void *params;     /* safetensors, in the arena */
	size_t params_len;
} Imported;
/* Translate the ONNX file 'path' (its bytes buf[0..n)); errors are user
 * errors "PATH: error: ..." (the generated text is parsed and lowered
 * before it is returned, so it is a valid model). */
Imported import_onnx(const char *path, const void *buf, size_t n, const ImportOptions *o);
/* Does 'path' name an ONNX file (".onnx")? */
bool is_onnx(const char *path);
/* The model at 'path' for every command: a .nn file as read, or a .onnx
 * file imported in memory, its initializers then readable under the name
 * 'path' by read_tensors (the initial parameter values). */
Source *load_model(const char *path);
/* A safetensors file, or the initializers of the model load_model
 * imported from 'path': gradc_st_read's contract. */
const char *read_tensors(const char *path, struct gradc_st_file *f);
/* `gradc import`: its own arguments, exit status. */
int import_main(int argc, char **argv);

#endif
