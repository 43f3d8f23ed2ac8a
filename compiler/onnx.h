/* onnx.h: the ONNX importer's own header (protobuf.c, onnx.c, import.c,
 * import_ops.c); the rest of the compiler sees only gradc.h's import section.
 *
 * protobuf.c reads the wire format, onnx.c decodes the handful of ONNX
 * messages the importer needs into the structs below (everything else is
 * skipped), import.c and import_ops.c translate the graph into .nn text.
 */
#ifndef GRADC_ONNX_H
#define GRADC_ONNX_H

#include "host.h"

/* ---------------------------------------------------------- protobuf.c */

/* A reader over the bytes of one message (a sub-message is a reader over
 * its bytes).  Malformed input is a user error (error_at, no location:
 * "FILE: error: ..." with err_src the .onnx file). */
typedef struct Pb {
	const uint8_t *p, *end;  /* what is left of this message */
	const uint8_t *base;     /* the whole file: offsets in messages */
	const char *msg;         /* the message's type, for messages */
} Pb;

typedef struct PbField {
	uint32_t num;  /* field number */
	int wire;      /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t u;    /* wire 0, 1, 5: the value's bits */
	Pb sub;        /* wire 2: its bytes (msg unset) */
} PbField;

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

/* A reader over buf[0..n) for message type 'msg'. */
Pb pb_reader(const void *buf, size_t n, const char *msg);
/* The next field of 'r' into *f; false at the end of the message. */
bool pb_next(Pb *r, PbField *f);
/* Field accessors; each checks the wire type against the schema's. */
int64_t pb_int(Pb *r, const PbField *f);      /* int32, int64, enum */
double pb_float(Pb *r, const PbField *f);     /* float (fixed32) */
double pb_double(Pb *r, const PbField *f);    /* double (fixed64) */
const char *pb_string(Pb *r, const PbField *f); /* string: NUL-terminated copy */
Pb pb_message(Pb *r, const PbField *f, const char *msg); /* embedded message */
/* Repeated numbers, packed (wire 2) or one per field: appended to *v
 * (grown in the arena), *n of them, *cap allocated. */
typedef enum PbNum { PB_INT64, PB_FLOAT, PB_DOUBLE } PbNum;
void pb_repeated(Pb *r, const PbField *f, PbNum kind, void **v, int64_t *n, int64_t *cap);
/* A malformed-input error in message 'r' (offset of its read position). */
NORETURN void pb_fail(const Pb *r, const char *fmt, ...) PRINTF(2, 3);

/* -------------------------------------------------------------- onnx.c */

enum { ONNX_MAX_RANK = 8 };

enum {  /* TensorProto.DataType, the ones named in messages */
	ONNX_FLOAT = 1, ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_DOUBLE = 11,
};

/* A tensor with its values (TensorProto), or the shape of a value. */
typedef struct OTensor {
	const char *name;
	int dtype;                     /* TensorProto.DataType */
	int rank;
	int64_t dim[ONNX_MAX_RANK];    /* >= 0 */
	int64_t n;                     /* elements */
	double *f;                     /* FLOAT, DOUBLE: the values; else NULL */
	int64_t *i;                    /* INT32, INT64: the values; else NULL */
} OTensor;

typedef enum AttrType {  /* AttributeProto.AttributeType */
	AT_FLOAT = 1, AT_INT = 2, AT_STRING = 3, AT_TENSOR = 4, AT_GRAPH = 5,
	AT_FLOATS = 6, AT_INTS = 7, AT_STRINGS = 8,
} AttrType;

typedef struct OAttr {
	const char *name;
	int type;          /* AttrType (0 if the file gave none: inferred) */
	double f;          /* AT_FLOAT */
	int64_t i;         /* AT_INT */
	const char *s;     /* AT_STRING */
	OTensor *t;        /* AT_TENSOR */
	double *floats;    /* AT_FLOATS */
	int64_t *ints;     /* AT_INTS */
	int64_t n;         /* elements of floats / ints */
	bool used;         /* read by the translation (others are refused) */
} OAttr;

typedef struct ONode {
	const char *name, *op, *domain;
	const char **in, **out;  /* value names; "" for an omitted optional input */
	int64_t n_in, n_out, n_attr;
	OAttr *attr;
} ONode;

/* A graph input or output (ValueInfoProto): element type and shape. */
typedef struct OValue {
	const char *name;
	int dtype;                       /* 0 if not given */
	int rank;                        /* -1: no shape given */
	int64_t dim[ONNX_MAX_RANK];      /* -1 where symbolic or unknown */
	const char *param[ONNX_MAX_RANK]; /* the symbolic dimension's name, or NULL */
} OValue;

typedef struct OModel {
	int64_t ir_version, opset;       /* opset of the default domain */
	const char *producer, *producer_version, *graph_name;
	ONode *node;
	OTensor *init;
	OValue *input, *output;
	int64_t n_node, n_init, n_input, n_output;
} OModel;

/* Decode an ONNX file's bytes; malformed input, external data, a tensor
 * of another element type than float, double, int32 and int64 or of
 * inconsistent size: user errors (err_src must name the file). */
OModel *onnx_decode(const void *buf, size_t n);
/* The attribute 'name' of node 'n' (marked used), or NULL. */
OAttr *onnx_attr(const ONode *n, const char *name);
/* The name of a TensorProto.DataType ("FLOAT", "INT64", ...). */
const char *onnx_dtype_name(int dtype);

/* ------------------------------------------------- import.c, import_ops.c */

enum { BATCH_DIM = -2 };  /* a known shape's element that is the batch (Shape of a batched value) */

/* What the importer knows of one ONNX value. */
typedef struct Val {
	const char *onnx;     /* the ONNX name */
	const char *hint;     /* the name its .nn name is made from (usually 'onnx') */
	const char *origin;   /* known values: the initializer they come from, or NULL */
	OTensor *c;           /* values known at import time (shape in c->dim), or NULL */
	bool f64;             /* a DOUBLE tensor */
	/* a value of the .nn model: */
	const char *nn;       /* its name there (a param: once materialized), or NULL */
	bool batched;         /* carries the batch (its shape below is per sample) */
	int rank;             /* the per-sample ONNX shape */
	int64_t dim[ONNX_MAX_RANK];
	Shape nns;            /* the .nn value's per-sample shape (global_avgpool gives [C]
	                       * for ONNX's [C, 1, 1]); params: their declared shape */
	const ONode *pad;     /* a Pad waiting to be folded into its consumer, or NULL */
	struct Val *base;     /* with 'pad': the value it pads */
	int64_t pads[4];      /* its padding (top, left, bottom, right) */
} Val;

typedef struct Imp {
	const char *path;     /* the .onnx file */
	const OModel *m;
	const ImportOptions *o;
	Val **v;              /* every value, by ONNX name */
	int64_t n_v, cap_v;
	const char **taken;   /* .nn names in use */
	int64_t n_taken, cap_taken;
	Buf decl, body;       /* param declarations, statements */
	struct gradc_st_tensor *st; /* the params' values, for OUT.safetensors */
	int64_t n_st, cap_st;
	const ONode *node;    /* the node being translated */
	int64_t batch;        /* the inputs' concrete batch, or 0 (symbolic) */
	bool any_f64;
	const char **use_names; /* every name a node reads or the graph outputs, sorted */
	int64_t n_use_names;
	const ONode **folded; /* BatchNormalization nodes folded into their producer */
	const ONode **folded_into;
	int64_t n_folded, cap_folded;
} Imp;

/* import.c: values and names */
Val *find_val(Imp *I, const char *onnx);                /* or NULL */
int64_t uses_of(const Imp *I, const char *onnx); /* node inputs and graph outputs naming it */
Val *new_val(Imp *I, const char *onnx);
Val *in_val(Imp *I, int k);    /* input k of the node; NULL if absent or "" */
Val *need_in(Imp *I, int k);   /* input k, which must be there */
Val *out_val(Imp *I, int k);   /* output k (a new value) */
NORETURN void node_fail(Imp *I, const char *fmt, ...) PRINTF(2, 3);
/* The .nn text of 'v' as an operand: a literal for a known scalar if
 * 'lit', a param (declared on first use, leading 1s dropped down to
 * 'rank' dimensions; 'rank' < 0: as is), a value (which must be batched:
 * the input of a spatial op, ...). */
const char *operand(Imp *I, Val *v, bool lit, int rank);
/* A known tensor as a param of exactly shape 's' (same count). */
const char *param_shaped(Imp *I, Val *v, Shape s);
/* 'v' with its .nn shape made its ONNX shape (a reshape line if they differ). */
const char *value_of(Imp *I, Val *v);
/* "out = expr   # node 'N' (OP)" with out's per-sample shape 's'. */
void define(Imp *I, Val *out, const char *expr, Shape s);
void alias(Imp *I, Val *out, Val *in, const char *why);  /* out = in, no computation */
void set_known(Val *out, OTensor *t);
OTensor *new_tensor(int dtype, int rank, const int64_t *dim);
const char *num_text(double x);          /* a literal of the language */
/* The shortest literal of a value stored as a float (FLOAT tensors and
 * attributes): "0.1" for 0.1f, which PyTorch's double model computes with. */
const char *fnum_text(double x);
Shape val_shape(const Val *v);           /* the per-sample ONNX shape as a Shape */
/* import_ops.c (elementwise, products, spatial, BatchNormalization) and
 * import_shape.c (shapes, constants, the rule table): one rule per operator */
typedef void (*Translate)(Imp *I, const ONode *n);
typedef struct OpRule {
	const char *op;
	Translate fn;
	const char *attrs;   /* the attributes it reads, space-separated */
} OpRule;
const OpRule *find_rule(const char *op);
const char *supported_ops(void);   /* "Abs, Add, ..." */
/* shared by the rules: attributes (the default if absent), known values,
 * shapes, messages */
int64_t attr_int(const ONode *n, const char *name, int64_t def);
double attr_float(const ONode *n, const char *name, double def);
int attr_ints(Imp *I, const ONode *n, const char *name, int64_t *v, int max); /* -1: absent */
double kval(const OTensor *t, int64_t k);
int known_ints(Imp *I, const Val *v, int64_t *out, int max, const char *what);
double known_scalar(Imp *I, const Val *v, const char *what);
void copy_shape(Val *out, const Val *in);
void set_shape(Val *out, Shape s);    /* batched, per-sample 's' */
const char *dims_text(const int64_t *d, int n);  /* "2, 3" */
const char *full_text(const Val *v);  /* "[B, 2, 3]" */
Val *batched_in(Imp *I, int k);       /* input k, computed from the inputs */
void tr_unary(Imp *I, const ONode *n);
void tr_binary(Imp *I, const ONode *n);
void tr_gemm(Imp *I, const ONode *n);
void tr_matmul(Imp *I, const ONode *n);
void tr_softmax(Imp *I, const ONode *n);
void tr_clip(Imp *I, const ONode *n);
void tr_conv(Imp *I, const ONode *n);
void tr_pool(Imp *I, const ONode *n);
void tr_gap(Imp *I, const ONode *n);
void tr_pad(Imp *I, const ONode *n);
void tr_batchnorm(Imp *I, const ONode *n);
/* BatchNormalization after a Conv or Gemm whose output it alone reads:
 * its scale and shift folded into their weights (before translation). */
void fold_batchnorms(Imp *I);

#endif
