/* gradc.h: the one header of the compiler, a section per file, in pipeline
 * order (QBE's all.h).  main.c calls the passes top to bottom:
 *
 *   parse -> lower -> autodiff (per mode) -> optimize -> schedule -> plan -> emit
 *
 * The IR is a graph of nodes in one array; a node's id is its index and the
 * array is always in a valid topological order (after `schedule`, in schedule
 * order).  Shapes are per sample (as the model is written) plus a flag saying
 * whether the node carries the implicit leading batch dimension.
 */
#ifndef GRADC_H
#define GRADC_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
	MAX_RANK = 4,      /* per-sample rank */
	MAX_IN = 8,        /* inputs of one node (concat: more nest) */
	MAX_NAME = 63,     /* longest name, so every generated symbol fits C */
	MAX_LINE = 4096,   /* longest source line */
	MAX_DEPTH = 200,   /* deepest expression nesting */
	MAX_LIST = 64,     /* names in one output/track statement */
};
/* the largest tensor or arena, in bytes: offsets stay in 32 bits */
#define MAX_BYTES ((int64_t)INT32_MAX)

#define GRADC_VERSION "0.2.0" /* MAJOR.MINOR.PATCH; make install reads it */

#if defined(__GNUC__)
#define PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF(a, b)
#define NORETURN
#endif

/* ---------------------------------------------------------------- util.c */

typedef struct Loc {
	int line, col;  /* 1-based; line 0: no place in the source */
} Loc;

typedef struct Source {
	const char *path;  /* as given on the command line */
	const char *text;  /* whole file, NUL-terminated (copied) */
	size_t len;        /* bytes, without the added NUL */
} Source;

/* The error channel.  error_at() formats into err_msg and longjmps to
 * *err_jmp, which the caller (main, a test, the fuzzer) has set.  */
extern jmp_buf *err_jmp;
extern char err_msg[8192];
extern const Source *err_src;  /* source that Loc refers to */

NORETURN void error_at(Loc loc, const char *fmt, ...) PRINTF(2, 3);
NORETURN void error_plain(const char *fmt, ...) PRINTF(1, 2); /* "gradc: error: ..." */
/* Bad usage: "gradc: " fmt (with one string argument), the usage text,
 * exit status 2.  */
NORETURN void usage_exit(const char *usage, const char *fmt, const char *arg);
/* A command of gradc (main.c, train.c, import.c): body(arg) with err_jmp
 * set; an error prints err_msg on stderr.  The arena is freed either way.
 * Returns body's status, or 1 after an error.  */
int run_command(int (*body)(void *), void *arg);
#define die(...) die_at(__FILE__, __LINE__, __VA_ARGS__)
NORETURN void die_at(const char *file, int line, const char *fmt, ...) PRINTF(3, 4);
/* Called by die_at before it aborts, if set (run.c: remove its temporary
 * directory). */
extern void (*die_hook)(void);

/* One bump arena per compilation: alloc never returns NULL and memory is
 * zeroed; free_all() releases everything at once.  */
void *alloc(size_t n);
void *alloc_grow(void *p, size_t old_n, size_t new_n);
char *str_ndup(const char *s, size_t n);
char *str_fmt(const char *fmt, ...) PRINTF(1, 2);
void free_all(void);
typedef struct AllocMark {
	struct Chunk *chunk;
	size_t used;
} AllocMark;
AllocMark alloc_mark(void);
void alloc_release(AllocMark m);  /* frees what was allocated since the mark */

/* Growable text buffer (for DOT, reports, JSON); lives in the arena. */
typedef struct Buf {
	char *s;
	size_t len, cap;
} Buf;
void buf_printf(Buf *b, const char *fmt, ...) PRINTF(2, 3);

/* Read a whole file; NULL (errno set) on failure, EFBIG beyond MAX_READ
 * bytes (a model pointed at /dev/zero is an error, not out of memory). */
#define MAX_READ ((size_t)16 << 20)
char *read_file(const char *path, size_t *len);
/* Write atomically: a temporary beside 'path', then rename.  0 on success. */
int write_file_atomic(const char *path, const char *data, size_t len);
int make_dirs(const char *path);
/* DIR/PREFIX.h then DIR/PREFIX.c (DIR created), atomically; an error
 * (error_plain) leaves neither behind.  Their paths in *hp and *cp. */
void write_model_files(const char *dir, const char *prefix, const Buf *h, const Buf *c,
		       const char **hp, const char **cp);

/* ------------------------------------------------------------ ops.def */

typedef enum Op {
#define OP(e, name, nin, kind, flags) OP_##e,
#include "ops.def"
#undef OP
	N_OP
} Op;

typedef enum OpKind {
	K_LEAF, K_UNARY, K_BINARY, K_GRAD, K_ROW, K_REDUCE, K_OTHER
} OpKind;

enum {  /* OpFlags, see ops.def */
	F_EW = 1,        /* elementwise: fusable into a producer's loop */
	F_INPLACE = 2,   /* may write over an input that dies at it */
	F_UPDATE = 4,    /* optimizer update of input 0, no value */
	F_CONTRACT = 8,  /* contraction (Node.mm): multiply-adds, GEMM forms */
};

extern const char *const op_name[N_OP];
extern const int op_nin[N_OP];
extern const OpKind op_kind[N_OP];
extern const unsigned op_flags[N_OP];
/* Does op have every flag of 'f'? */
static inline bool op_is(Op op, unsigned f)
{
	return (op_flags[op] & f) == f;
}

/* ---------------------------------------------------------- target.c */

/* What the code is shaped for (QBE's Target): one row of target.c's table
 * per --target.  The emitter takes vector width, register tiles and stack
 * from it, the planner the alignment; nothing else names a machine.  */
typedef struct Target {
	const char *name;
	int vec_bytes;    /* one vector register: the lanes of the inner loops */
	int vec_regs;     /* vector registers a register tile may fill */
	int stack_bytes;  /* stack one kernel may use (packed panels) */
	int align;        /* arena and allocation alignment in bytes (>= 8) */
	bool fma;         /* fused multiply-add in hardware */
	bool int8_dot;    /* a 4-way int8 dot product (VNNI, ...) */
	int tile_bytes;   /* one register of a product's register tile: a
	                   * vector, or one float on a scalar FPU */
	int kernels;      /* GRADC_KERNELS of this register shape (gradc_rt.h);
	                   * 0: portable, which carries every shape's kernels */
	const char *about;  /* one line for --help and the generated banner */
} Target;
/* The lanes of one register of t's register tiles for elements of es
 * bytes: a vector's, or 1 on a scalar FPU. */
static inline int64_t tile_lanes(const Target *t, int64_t es)
{
	return t->tile_bytes / es > 1 ? t->tile_bytes / es : 1;
}
/* The row named 'name', or NULL; names_out (if given): the known names.
 * "native" is the row of the machine gradc runs on (cpuid). */
const Target *find_target(const char *name, const char **names_out);
enum { MAX_VARIANTS = 3 };
/* The register shapes whose product kernels t's output carries (itself,
 * or portable's three, each compiled under its GRADC_KERNELS), in the
 * order they are printed; returns how many. */
int target_variants(const Target *t, const Target **out);

/* -------------------------------------------------------------- ir.c */

/* Element types: every node carries one (Node.dtype).  Float values have
 * the build's float type (--dtype f32|f64: Graph.f64, set before the first
 * node is made), class labels DT_I32; DT_I8 is for int8 inference (not
 * built yet).  */
typedef enum DType { DT_F32, DT_F64, DT_I32, DT_I8 } DType;
static inline bool dt_is_int(DType t)
{
	return t == DT_I32 || t == DT_I8;
}
static inline int dt_bytes(DType t)
{
	return t == DT_F64 ? 8 : t == DT_I8 ? 1 : 4;
}

typedef struct Shape {
	int rank;               /* 0: scalar */
	int64_t dim[MAX_RANK];  /* each >= 1 */
} Shape;

typedef enum Init {  /* parameter initializers, SPEC 1 */
	INIT_ZEROS, INIT_ONES, INIT_CONSTANT, INIT_NORMAL, INIT_UNIFORM,
	INIT_XAVIER, INIT_HE
} Init;

/* Matrix product C = op(L) op(R), repeated nb times (strides in elements;
 * 0 = the same matrix every time).  op(X) = X^T when the flag is set: L is
 * stored [K,M] if ta else [M,K]; R is stored [N,K] if tb else [K,N]; C is
 * [M,N].  acc: the nb products are summed into one C (sc == 0).  */
typedef enum Form {  /* how a product's kernel is computed (select.c) */
	FORM_SIMPLE, FORM_XT, FORM_PACKED, FORM_LANE, FORM_TILE, FORM_PANEL
} Form;

typedef struct Matmul {
	int64_t m, n, k;
	bool ta, tb;
	int64_t nb;
	int64_t sl, sr, sc;
	bool acc;
	int64_t pack;  /* optimize: rows of L transposed into scratch per block; 0: none */
	Form form;     /* select */
	int64_t mb, kc, mr;  /* select, FORM_PACKED: rows of C and values of k per
	                      * panel, rows of the register tile */
	/* select: the kernel of each register shape of the target
	 * (target_variants; tile[0] is form, mb, kc, mr above) */
	struct Tile {
		Form form;
		int64_t v;       /* lanes of the form's vectors, in elements */
		int64_t reg;     /* elements of one register of the shape */
		int64_t mr, nr;  /* register tile: rows, and columns (lane form) or
		                  * vectors of columns (tile, xt forms) */
		int64_t mb, kc;  /* FORM_PACKED's panel; FORM_PANEL: kc = k */
		bool rows;       /* tile, xt, panel forms: each row's broadcast then
		                  * its FMAs, row after row (select.c's rows_tile) */
		bool k2;         /* tile form on a scalar FPU: two values of k a
		                  * step, each row of L's pair one load (k2_tile) */
		int kernels;     /* the GRADC_KERNELS it is compiled under */
	} tile[MAX_VARIANTS];
	int n_tile;
} Matmul;

/* The window of a convolution or pool (SPEC 1, spatial.c), in the geometry
 * of the forward op: its gradient nodes keep the forward's window. */
typedef struct Window {
	int kh, kw;      /* kernel rows and columns */
	int sh, sw;      /* stride */
	int dh, dw;      /* dilation */
	int pt, pl, pb, pr;  /* padding: top, left, bottom, right */
	int groups;      /* conv2d: channel groups (Cin = Cout = groups: depthwise) */
	bool count_pad;  /* avgpool2d: divide by the whole window (count_include_pad) */
} Window;

typedef enum Storage {  /* where a node's value lives (filled by plan) */
	STO_NONE,     /* no memory: literal, fused into its consumer, update */
	STO_INPUT,    /* the caller's input array */
	STO_PARAM,    /* the parameter struct */
	STO_ARENA,    /* the arena, at Node.offset */
	STO_OUTPUT,   /* the caller's output array (inference outputs) */
	STO_GRAD,     /* the caller's gradient struct (MODE_GRAD) */
} Storage;

typedef struct Node {
	/* parse + lower */
	Op op;
	int n_in;
	int in[MAX_IN];      /* input node ids, all < this id */
	Shape shape;         /* per-sample shape */
	bool batched;        /* has the implicit leading batch dimension */
	DType dtype;         /* element type (float: the build's; labels: DT_I32) */
	double attr[2];      /* op constants (see ops.def) */
	Matmul mm;           /* OP_MATMUL, filled by lower / autodiff; conv2d and
	                      * conv2d_dx: only tile, n_tile (select_conv.c) */
	Window win;          /* the convolutions and pools */
	const char *name;    /* user's name, or derived ("dW2"); NULL: anonymous */
	Loc loc;             /* defining line, or the forward node's for gradients */
	const char *text;    /* source text of the defining statement, for comments */
	Init init;           /* OP_PARAM */
	double init_arg[2];  /* OP_PARAM: initializer arguments */
	bool frozen;         /* OP_PARAM: never trained */
	const double *value; /* OP_PARAM with --params: the baked values, or NULL */
	bool stat;           /* OP_PARAM: standardization statistics (value set, not read
	                      * by --params under this name; standardize.c) */
	/* autodiff */
	bool backward;       /* belongs to the backward pass or the update */
	int fwd;             /* backward: the forward node it differentiates, or -1 */
	int grad;            /* OP_PARAM in TRAIN/GRAD: its complete gradient, or -1 (TRAIN
	                      * with the L2 term folded: the rest, the update's input) */
	const char *deriv;   /* backward: the derivative it implements, for comments */
	/* optimize */
	int fuse;            /* computed inside the loop of node 'fuse'; -1: not fused */
	int clobber;         /* the kernel also writes over input clobber - 1; 0: none */
	int side;            /* select: a sumsq this kernel also computes; -1: none */
	const char *note;    /* what the kernel does beyond its value, for comments */
	bool recomputed;     /* fit.c: a forward node repeated for the backward pass */
	int n_use;           /* consumers in the graph */
	/* plan */
	Storage sto;
	int64_t offset;      /* STO_ARENA: byte offset in the arena */
	int64_t bytes;       /* STO_ARENA: allocation size, rounded to the target's align */
	int64_t scratch;     /* bytes of arena the kernel computing this node needs at
	                      * its step only (Matmul.pack), rounded; 0: none */
	int64_t scratch_offset;
	int first, last;     /* live range in schedule steps (node ids), inclusive */
	int alias;           /* shares the allocation of this node (in place); -1 */
} Node;

typedef enum OptKind { OPT_SGD, OPT_ADAM } OptKind;

typedef struct Optim {
	OptKind kind;
	double lr;
	double momentum;               /* sgd */
	double beta1, beta2, eps;      /* adam */
	double weight_decay;
	Loc loc;
} Optim;

typedef enum Mode {
	MODE_FWD,    /* the forward graph as parsed: every definition */
	MODE_INFER,  /* forward to the outputs only */
	MODE_TRAIN,  /* forward, backward, optimizer update */
	MODE_GRAD,   /* forward, backward; parameter gradients to the caller */
} Mode;

typedef struct Graph {
	const char *model;       /* symbol prefix */
	const char *model_name;  /* the name of the model statement (model may be --name) */
	const Source *src;
	Mode mode;
	int batch;               /* B */
	bool f64;                /* --dtype f64 */
	const Target *target;    /* --target, or the portable row */
	Node *node;
	int n_node, cap;
	int objective;           /* per-sample objective J (minimize), or -1 */
	Loc min_loc;             /* the minimize statement */
	int loss;                /* BATCH_MEAN(J): the trained scalar, or -1 */
	int n_out, out[MAX_LIST];      /* output nodes */
	int n_track, track[MAX_LIST];  /* tracked per-sample scalars */
	/* the names of the output and track statements: an alias (`o = h`)
	 * names the node of another name, and one node may be listed under
	 * two names (`output z, h` with `h = z`) */
	const char *out_name[MAX_LIST], *track_name[MAX_LIST];
	Loc out_loc[MAX_LIST];   /* where each output's name is listed */
	int track_mean[MAX_LIST];      /* their BATCH_MEAN nodes (train/grad), or -1 */
	Optim opt;
	bool has_minimize;
	/* plan */
	int64_t arena_bytes;     /* arena size */
	int64_t lower_bound;     /* liveness lower bound for the schedule */
	int64_t unshared_bytes;  /* sum of all arena allocations */
	int64_t stack_bytes;     /* worst-case stack of its entry point (stack.c), 0: unknown */
	int64_t entry_stack[3];  /* of NAME_infer, NAME_train_step, NAME_grad (set_stacks) */
	int64_t shape_stack[3][3]; /* the same by register shape, GRADC_KERNELS 1, 2, 3 */
	/* fitbuild.c, micro-batches: the training step at the micro-batch,
	 * which NAME_train_step and NAME_grad call 'micro' times per batch,
	 * its updates summing the gradients into a parameter struct at arena
	 * offset micro_acc (the arena's end) */
	int micro;               /* 0, 1: not micro-batched */
	int64_t micro_acc;
} Graph;

Graph *new_graph(const char *model, const Source *src);
Graph *copy_graph(const Graph *g);
/* Node constructors.  Each infers the shape and batch flag, reports a user
 * error at 'loc' on a mismatch, and folds constants (x*1 -> x, FILL op FILL
 * -> FILL, ...): the id returned may be an existing node.  */
int new_leaf(Graph *g, Op op, const char *name, Shape s, bool batched, DType t, Loc loc);
/* The rows of L a packed product of dtype dt transposes per block: two
 * tile registers of the target; 0 (no packing) for scalar tiles (target.c). */
int pack_rows(const Target *t, DType dt);
/* The float element type of g's values (DT_F32 or DT_F64). */
static inline DType float_dtype(const Graph *g)
{
	return g->f64 ? DT_F64 : DT_F32;
}
int new_const(Graph *g, double v, Loc loc);
int new_fill(Graph *g, double v, Shape s, bool batched);
int new_unary(Graph *g, Op op, int a, double attr, Loc loc);
int new_binary(Graph *g, Op op, int a, int b, Loc loc);
int new_node(Graph *g, Op op, int n_in, const int *in, Loc loc); /* everything else */
/* A node of the given shape (checked against MAX_BYTES at 'loc'): the
 * spatial constructors' base.  */
int new_shaped(Graph *g, Op op, int n_in, const int *in, Shape s, bool batched, Loc loc);
/* The gradient kernels of autodiff: result shape given, no user errors. */
int new_grad(Graph *g, Op op, int n_in, const int *in, Shape s, bool batched);
int new_matmul(Graph *g, int l, int r, Matmul mm, Shape s, bool batched);

Shape shape_of(int rank, ...);         /* shape_of(2, 10, 32) */
bool shape_eq(Shape a, Shape b);
int64_t shape_numel(Shape s);
int64_t node_numel(const Graph *g, const Node *n);     /* with the batch */
int64_t node_bytes(const Graph *g, const Node *n);     /* numel * element size */
const char *shape_str(Shape s);                         /* "[10, 32]" */
/* Broadcasting: the NumPy result of two per-sample shapes; false if they
 * do not broadcast.  */
bool broadcast_shape(Shape a, Shape b, Shape *out);
/* Index map from a node's full index space (batch first when batched) onto
 * its input 'in' (possibly broadcast): the stride of 'in' for each full
 * dimension of 'out', 0 where 'in' is broadcast.  Returns the full rank.  */
int full_dims(const Graph *g, const Node *n, int64_t dim[MAX_RANK + 1]);
int bcast_strides(const Graph *g, const Node *out, const Node *in,
                  int64_t stride[MAX_RANK + 1]);
const char *node_label(const Graph *g, int id);  /* name, or "op#id" */
/* A user error at 'loc' if node 'a' is an int (a class label): every
 * operator but the losses' labels takes floats. */
void check_float(const Graph *g, int a, Loc loc);
/* Multiply-adds of one call of node n's kernel over the whole batch (the
 * contractions: products and convolutions; 0 for other ops), and their
 * sum over a graph (SPEC 2: the report's `macs`). */
int64_t node_macs(const Graph *g, const Node *n);
int64_t graph_macs(const Graph *g);
/* The gradient node of parameter 'p' in a TRAIN/GRAD graph, or -1. */
int param_grad(const Graph *g, int p);
/* Renumber the nodes: node i moves to new_id[i], or is dropped where it is
 * -1 (the kept ones take ids 0..n-1).  Every id the graph holds follows
 * (inputs, Node.fuse/fwd/grad, the Graph's lists); Node.alias is reset. */
void remap_ids(Graph *g, const int *new_id);
/* The ids of g's nodes of kind 'op' (inputs, parameters) in declaration
 * order, by source position, as the emitter orders the API; *n of them. */
int *declared_nodes(const Graph *g, Op op, int *n);
/* Mark the values the caller reads after an entry point returns: outputs,
 * the loss, the tracked means, MODE_GRAD's parameter gradients.  */
void caller_reads(const Graph *g, bool *reads);
/* n rounded up to a multiple of 'align'; to the arena alignment of g's target */
static inline int64_t round_to(int64_t n, int align)
{
	return (n + align - 1) / align * align;
}
#define align_up(g, n) round_to((n), (g)->target->align)
int find_name(const Graph *g, const char *name);  /* node id or -1 */
bool valid_name(const char *s);  /* a C identifier of at most MAX_NAME chars */
/* The elementwise ops on one element, (x), (a, b) or (dy, saved), attr 'c':
 * the reference formulas, shared by folding and eval; c: Node.attr.  */
double apply_ew(Op op, double x, double y, const double c[2]);
/* The same formulas in float, in the generated code's order (quant_eval.c's
 * float fallback; ew_formula.h holds the one text of both).  */
float apply_ew_f(Op op, float x, float y, const double c[2]);

/* --------------------------------------------------------- spatial.c */

/* Constructors of the spatial ops (SPEC 1's second table), with their
 * diagnostics at 'loc'; windows from the parser (every field set). */
int new_conv2d(Graph *g, int x, int w, Window win, Loc loc);
int new_pool(Graph *g, Op op, int x, Window win, Loc loc);  /* max/avg */
int new_global_avgpool(Graph *g, int x, Loc loc);
int new_reshape(Graph *g, int x, Shape s, Loc loc);
int new_concat(Graph *g, int n, const int *in, Loc loc);
int new_clip(Graph *g, int x, double lo, double hi, Loc loc);
/* The gradient nodes of a forward spatial node 'f' (its window, its
 * input's shape).  */
int new_window_grad(Graph *g, Op op, int n_in, const int *in, const Node *f, Shape s,
                    bool batched);
/* Multiply-adds of a convolution node (forward or gradient), whole batch. */
int64_t conv_macs(const Graph *g, const Node *n);
/* The reference loops of the spatial ops (eval.c): y = the node's value
 * from its inputs' values x[k]. */
void eval_spatial(const Graph *g, const Node *n, const double *const *x, double *y);

/* ------------------------------------------------------------- lex.c */

typedef enum TokKind {
	TOK_IDENT, TOK_NUM, TOK_PUNCT, TOK_NEWLINE, TOK_EOF
} TokKind;

typedef struct Token {
	TokKind kind;
	const char *s;   /* into the source text */
	int len;
	double num;      /* TOK_NUM */
	Loc loc;
} Token;

/* Tokenize the whole source; the array ends with TOK_EOF.  Errors (bad
 * character, malformed number, long line or name) go to error_at.  */
Token *tokenize(const Source *src, int *n_tok);

/* ----------------------------------------------------------- parse.c */

typedef struct Options {
	const char *name;    /* --name, or NULL: the model's own */
	int batch;           /* --batch, or 0: the model's */
	bool f64;            /* --dtype f64 */
	bool infer_only;     /* --infer-only */
	bool no_fuse;        /* --no-fuse */
	bool no_pack;        /* --no-pack: no product packs into scratch (smallest arena) */
	const char *params;  /* --params FILE, or NULL */
	const char *dump;    /* -d letters */
	const char *target;  /* --target NAME, or NULL: portable */
	bool budget_set;     /* --budget BYTES given (compile, report, run, check) */
	int64_t budget;      /* its bytes */
	bool fit;            /* --fit: meet the budget (fitbuild.c) */
	const char *quantize; /* --quantize int8, or NULL: float (quant.c) */
	const char *calib;   /* --calib C.safetensors: calibration inputs */
} Options;

/* Parse a model into its forward graph (MODE_FWD), with per-sample shapes
 * checked and every name resolved.  User errors go to error_at.  */
Graph *parse(const Source *src, const Options *opt);
/* Why 'name' cannot be a model name or --name (a message), or NULL. */
const char *model_name_problem(const char *name);

/* ----------------------------------------------------------- lower.c */

/* Fix the batch size (g->batch), fill Node.mm for every OP_MATMUL, and
 * reject tensors whose bytes at that batch exceed MAX_BYTES.  */
void lower(Graph *g);

/* -------------------------------------------------------- autodiff.c */

/* Derive the graph of a mode from the forward graph: MODE_INFER keeps what
 * the outputs need; MODE_TRAIN and MODE_GRAD add BATCH_MEAN(J), the
 * backward pass, and (TRAIN) one update node per trainable parameter.  */
Graph *autodiff(const Graph *fwd, Mode mode);

/* ------------------------------------------------------------ eval.c */

/* The reference evaluator (in the spirit of Glow's Interpreter): runs a
 * graph in double precision, node by node, with the plainest loops.  It is
 * the oracle for the tests and for the generated code.  val[id] holds
 * node_numel doubles (int labels too); the caller fills inputs and
 * parameters (new_eval zeroes them), runs, and reads any node.  Update nodes
 * change the parameter values in place, as the training step does.  */
typedef struct Eval {
	const Graph *g;
	double **val;        /* per node id */
	double **state[2];   /* per parameter id: momentum / Adam m, v */
	double lr;           /* the optimizer's learning rate (g->opt.lr) */
	int64_t step;        /* optimizer steps taken (Adam's t) */
	int status;          /* 0, 1 bad label, 2 non-finite objective (runtime codes) */
} Eval;
Eval *new_eval(const Graph *g);
/* Run every node once; returns e->status.  A bad label or a non-finite
 * loss stops before any parameter changes.  */
int eval_run(Eval *e);
/* Copy parameter values between evaluators of two modes (same forward). */
void eval_copy_params(Eval *dst, const Eval *src);

/* -------------------------------------------------------- optimize.c */

/* Dead-code elimination, use counts, fusion marks (Node.fuse) and, with
 * pack, the products packed into scratch (Matmul.pack).  */
void optimize(Graph *g, bool fuse, bool pack);

/* ---------------------------------------------------------- select.c */

/* Matmul.form (and panels) of every product for g's target, Node.side:
 * what the emitter prints for each kernel.  'fuse', 'pack': as optimize. */
void select_kernels(Graph *g, bool fuse, bool pack);
/* select_conv.c: the register tiles of conv2d and conv2d_dx nodes, in
 * their Node.mm.tile (n_tile; 0: the row form). */
void select_conv(Graph *g, bool fuse);

/* -------------------------------------------------------- schedule.c */

/* Reorder the nodes (renumbering ids) to keep peak live bytes low and to
 * place every update after each read of its parameter's old value.  */
void schedule(Graph *g);
/* die() unless the order is topological, each fused node runs right before
 * its consumer, and every update follows each read of its parameter and
 * the loss.  */
void verify_schedule(const Graph *g);

/* ------------------------------------------------------------ live.c */

/* The offset planner on plain intervals (plan() builds one per arena node).
 * An interval asks for 'bytes' (rounded up to 'align' by the planner) live
 * from step 'first' to 'last' inclusive; alias >= 0: written in place over
 * interval 'alias' (same size, dead by 'first'), sharing its allocation.  */
typedef struct Interval {
	int64_t bytes;   /* requested size */
	int first, last; /* live steps, inclusive */
	int alias;       /* shares the allocation of this interval; -1 */
	int64_t offset;  /* filled by plan_intervals */
} Interval;
/* Node.fuse checked: the consumer computing node 'id', or -1 (leaves never). */
int fused_into(const Graph *g, int id);
/* The step whose kernel computes node 'id' (follows fuse to the end). */
int exec_step(const Graph *g, int id);
/* Fill Node.sto of every node (the storage rules, see live.c). */
void assign_storage(Graph *g);
/* Storage, live ranges, in-place aliases, Graph.lower_bound and
 * unshared_bytes, without offsets; returns the lower bound.  */
int64_t liveness(Graph *g);
/* One interval per STO_ARENA node of a planned graph, in id order, then
 * one per node with scratch; *node_of (if given) maps interval index ->
 * node id, or -1 - id for the scratch of node id.  */
Interval *graph_intervals(const Graph *g, int *n_iv, int **node_of);

/* ------------------------------------------------------------ plan.c */

/* Fill Node.sto/offset/bytes/first/last/alias and Graph.arena_bytes,
 * lower_bound, unshared_bytes.  */
void plan(Graph *g);
/* Check that no two allocations live at the same step overlap; die() if so. */
void verify_plan(const Graph *g);

/* The offset planner on plain intervals (plan() builds one per arena node). */
/* Fill iv[].offset; returns the arena size and sets *lower_bound. */
int64_t plan_intervals(Interval *iv, int n, int align, int64_t *lower_bound);
/* Max over steps of the rounded bytes of the allocations live there. */
int64_t intervals_lower_bound(const Interval *iv, int n, int align);
/* die() on overlap of simultaneously live allocations, misalignment, or an
 * allocation outside [0, arena).  */
void verify_intervals(const Interval *iv, int n, int align, int64_t arena);
/* TRAIN: the lower bound if every parameter gradient were kept to the end
 * (one optimizer step after the backward pass), the baseline of issue 4. */
int64_t baseline_lower_bound(const Graph *g);

/* ------------------------------------------------------------ dot.c */

/* Graphviz DOT of the forward graph and, if 'bwd' is given, its backward. */
void write_dot(Buf *b, const Graph *fwd, const Graph *bwd);
/* One line per node, for the -d dumps and for tests. */
void dump_graph(Buf *b, const Graph *g);

/* ----------------------------------------------------------- report.c */

/* The memory figures of one planned mode, in bytes (issue 4's JSON keys). */
typedef struct Figures {
	int64_t params_bytes;       /* trainable parameters (element bytes) */
	int64_t frozen_bytes;       /* frozen parameters */
	int64_t optimizer_bytes;    /* TRAIN: momentum, or adam m, v + step count */
	int64_t arena_bytes;        /* Graph.arena_bytes */
	int64_t lower_bound_bytes;  /* Graph.lower_bound */
	int64_t unshared_bytes;     /* Graph.unshared_bytes */
	int64_t stack_bytes;        /* worst-case stack of the entry points (stack.c) */
	int64_t total_bytes;        /* arena + optimizer + params (unless flash) + stack */
	int64_t kept_bytes;         /* forward values live when backward starts */
	int64_t baseline_lower_bound_bytes; /* TRAIN: lower bound if every parameter
	                                       gradient lived to one update at the end */
	int64_t params_count;       /* parameter elements, trainable and frozen */
	int64_t trainable_count;    /* trainable parameter elements */
	int64_t macs;               /* multiply-adds of one call at the graph's batch
	                               (graph_macs: products and convolutions) */
	bool flash;                 /* parameters const in flash, not in RAM */
} Figures;
/* Figures of 'g'; 'flash': the parameters are baked in as const (an
 * --infer-only build with --params), so total RAM is the arena alone.  */
Figures figures(const Graph *g, bool flash);
/* `gradc report`: both modes' figures, every arena allocation, a timeline
 * ('json': one object, issue 4).  'train' or 'infer' may be NULL.  */
void report(Buf *b, const Graph *train, const Graph *infer, bool json);
/* `--sweep-batch`: a header, then one row per batch size (training total,
 * inference total, activations kept for backward); either graph may be NULL. */
void report_sweep_header(Buf *b);
void report_sweep_row(Buf *b, int batch, const Graph *train, const Graph *infer);

/* ------------------------------------------------------------- fit.c */

/* How a plan was searched (fit.c): every set of kept values, the DP over
 * the segments of a chain (fitdp.c), or a greedy. */
typedef enum FitSearch { FIT_ALL, FIT_DP, FIT_GREEDY } FitSearch;
/* A plan of --fit for one graph: what is kept and what recomputed. */
typedef struct FitPlan {
	int n_cand;           /* forward values the plain build keeps for backward */
	const char **cand;    /* their labels, in schedule order */
	int64_t *cand_bytes;  /* their arena bytes */
	bool *drop;           /* per candidate: recomputed instead of kept */
	int n_copy;           /* nodes recomputed */
	int64_t extra_macs;   /* multiply-adds of the recomputed nodes */
	int64_t macs;         /* multiply-adds of the plain graph */
	int64_t arena;        /* the fitted graph's arena */
	FitSearch search;
} FitPlan;
/* One point of the trade-off curve (fit_curve). */
typedef struct FitPoint {
	int64_t arena, extra_macs;
	int n_copy;
} FitPoint;
/* The forward values of planned graph g kept for its backward pass that a
 * plan may recompute, in schedule order; *n of them. */
int *fit_candidates(const Graph *g, int *n);
/* g (planned) with the values drop[id] recomputed right before their
 * backward readers, scheduled but not planned; NULL if refused.  */
Graph *fit_recompute(const Graph *g, const bool *drop, int64_t *macs);
/* The planned graph of the cheapest plan with an arena of at most 'limit'
 * (g itself if it fits), p describing it; NULL if none, and then *least is
 * the smallest arena reachable.  */
Graph *fit_search(const Graph *g, int64_t limit, FitPlan *p, int64_t *least);
/* The curve from g's arena down to the smallest, cheapest plan first;
 * *n points in decreasing arena.  */
FitPoint *fit_curve(const Graph *g, int *n);
void fit_describe(const Graph *g, const Graph *f, const bool *drop, FitPlan *p);
/* fitdp.c: for a chain, the drop sets (per node id) of the DP over
 * segments, cheapest first, at most 'max', *n of them; NULL if g's
 * candidates are no chain.  */
bool **fit_chain_front(const Graph *g, int max, int *n);
/* Candidates up to which every set is tried (12; the tests raise it to
 * check the DP against the exhaustive search). */
extern int fit_all_max;

/* ------------------------------------------------------------ stack.c */

/* The worst-case stack of function 'fn' in generated C text 'c' (float
 * type 'real' of 'real_bytes'), with its callees among fns[0..nf); -1 if
 * not defined there.  */
int64_t c_stack(const char *c, const char *fn, const char *real, int real_bytes,
                const char *const *fns, int nf, int shape);
/* The worst-case stack of each entry point (infer, train_step, grad; 0 if
 * not built), from emitting 'modes'.  */
void entry_stacks(Graph *const *modes, int n, const Options *o, int64_t st[3], int64_t by[3][3]);

/* --------------------------------------------------------- fitbuild.c */

/* A training build under --budget [--fit]. */
typedef struct Fit {
	Options opt;          /* as built (no_pack may be set) */
	Graph *modes[3];      /* infer, train, grad: what emit gets */
	int n;
	int64_t ram;          /* training RAM with the stack */
	int64_t plain_ram;    /* the plain build's */
	int64_t stack;
	bool fitted;          /* --fit changed the build */
	FitPlan plan;         /* the training step's recomputation */
	int micro;            /* micro-batches (1: none) */
	int64_t accum;        /* bytes of the gradient accumulators (micro > 1) */
	FitPlan least_plan;   /* what the smallest RAM reachable takes */
	int least_micro;
	bool least_no_pack;
} Fit;
void build_fit(const Graph *fwd, const Options *o, Fit *r);
void set_stacks(Graph *const *modes, int n, const Options *o);
int64_t build_ram(Graph *const *modes, int n, bool flash);
const char *fit_plan_str(const FitPlan *p, int micro);
void fit_report(Buf *b, const Fit *r);
/* `report --sweep-budget CURVE.svg`: the table on b, the plot in the file. */
void fit_sweep(Buf *b, const Graph *fwd, const Options *o, const char *svg);


/* ----------------------------------------------------------- kernel.c */

/* The loop nest of the elementwise group of root 'r' (its fused members
 * 'first'..r-1): the extents, outermost first, into loop[] (returns how
 * many); *unroll: unroll the innermost.  'lanes': of one target vector. */
int ew_loops(const Graph *g, int first, int r, int lanes, int64_t loop[MAX_RANK + 1],
             bool *unroll);
/* reduce_to node n's loop nest over its input's index space (the input
 * and n's strides over it both contiguous across merged dimensions).  */
int reduce_loops(const Graph *g, const Node *n, int64_t loop[MAX_RANK + 1]);
/* A per-sample sum of m elements: how many groups of 'lanes' independent
 * sums it keeps (0: one plain sum).  */
int reduce_groups(int64_t m, int lanes);
/* The chunks of a row loop over [j0, j1): chunk[k] = {start, count, width}
 * (count inner loops of 'width' lanes each), *n of them (at most
 * MAX_CHUNKS); returns where the rest, done one by one, starts.  */
#define MAX_CHUNKS 8
int64_t lane_chunks(int64_t j0, int64_t j1, int64_t lanes, int64_t chunk[][3], int *n);

/* ------------------------------------------------------------- emit.c */

/* Run the Lua emitter on the planned graphs; fills 'h' and 'c'.  'modes':
 * MODE_INFER first, then (unless --infer-only) MODE_TRAIN and MODE_GRAD.
 * Baked parameter values (--params) come from Node.value of the params.  */
void emit(Buf *h, Buf *c, Graph *const *modes, int n_modes, const Options *opt);
/* depfile.c: `compile -MD`: "CP HP: INPUTS..." into 'dpath' (atomically);
 * NULL inputs are skipped.  0, or -1 with errno set.  */
int write_depfile(const char *dpath, const char *hp, const char *cp, const char *const *inputs,
		  int n);
/* bake.c: the rows of a const initializer of v[0..n), 8 exact hexadecimal
 * literals a line; a value that overflows float is an error naming 'name'
 * of file 'path'.  */
const char *bake_values(const double *v, int64_t n, bool f64, const char *path,
			const char *name, size_t *len);
/* For tests: a Lua state with the embedded emitter scripts as modules, and
 * a call of require(module)[fn](top of stack) leaving 'nret' results (a Lua
 * error is a die()).  */
struct lua_State;
struct lua_State *emit_lua_state(void);
void emit_lua_call(struct lua_State *L, const char *module, const char *fn, int nret);
/* t[key] = v of the table on top of the stack (set_str: nothing if NULL);
 * a string result of the emitter (at 'idx') into 'b'.  For quant_emit.c. */
void set_int(struct lua_State *L, const char *key, int64_t v);
void set_num(struct lua_State *L, const char *key, double v);
void set_str(struct lua_State *L, const char *key, const char *s);
void take_string(struct lua_State *L, int idx, Buf *b);

/* -------------------------------------------------------- pipeline.c */

Graph *front_end(const Source *src, const Options *o);            /* parse, lower */
Graph *build_mode(const Graph *fwd, Mode mode, const Options *o); /* .. plan */

/* ------------------------------------------------------------- api.c */

/* The generated API of a model: what its entry points take, in order. */
typedef struct ApiInput {
	int id;           /* forward node */
	const char *name;
	bool is_int;      /* an int32_t class label (else the build's real) */
	int64_t size;     /* elements per sample (NAME_X_SIZE) */
	int64_t numel;    /* elements of the argument (the batch's) */
	int64_t classes;  /* a label's class count (NAME_X_CLASSES), or 0 */
	bool infer;       /* NAME_infer takes it (it reads or outputs it) */
} ApiInput;
typedef struct ApiOutput {
	int id;           /* forward node */
	const char *name; /* of the output statement (an alias's own) */
	int64_t size, numel;
} ApiOutput;
typedef struct ApiParam {
	int id;           /* forward node; its index is its row of NAME_param_table */
	const char *name;
	int64_t count;
	bool frozen;
} ApiParam;
typedef struct Api {
	const char *prefix; /* symbol prefix */
	int64_t batch;
	bool f64, training; /* training: NAME_train_step and NAME_grad exist */
	int n_in, n_out, n_param, n_track;
	ApiInput *in;       /* declaration order */
	ApiOutput *out;     /* the output statements' order */
	ApiParam *param;    /* declaration order */
	const char **track; /* names, the fields of NAME_stats after the objective */
} Api;
/* The API of forward graph 'fwd' whose inference graph is 'infer' (NULL:
 * inference takes no input), symbols prefixed 'prefix'.  */
Api *api_describe(const Graph *fwd, const Graph *infer, const char *prefix);
/* The class counts of a's labels from the graphs g[0..n) of a build (the
 * smallest over their cross_entropy nodes) instead of the forward graph's. */
void api_classes(Api *a, Graph *const *g, int n);
/* Classes indexed by int input 'id' (the smallest cross_entropy using it),
 * or INT32_MAX if none uses it.  */
int64_t label_classes(const Graph *g, int id);

typedef enum ApiEntry { API_INFER, API_TRAIN, API_GRAD } ApiEntry;
/* The arguments of an entry point: k indexes Api.in or Api.out. */
typedef enum ApiArg { ARG_P, ARG_S, ARG_IN, ARG_OUT, ARG_GRAD, ARG_ST, ARG_ARENA } ApiArg;
typedef const char *(*ApiNamer)(const Api *a, ApiArg arg, int k, const void *ctx);
/* "NAME_train_step(p, s, x, y, st, arena)": a call of entry 'e', the
 * arguments in the prototype's order, each the C text 'name' gives. */
const char *api_call(const Api *a, ApiEntry e, ApiNamer name, const void *ctx);

/* The status codes of the generated code (gradc_rt.h), ended by name NULL. */
typedef struct ApiStatus {
	int code;
	const char *name, *what;
} ApiStatus;
extern const ApiStatus api_status[];
const char *api_status_what(int status); /* "a label is outside its range" */

#endif
