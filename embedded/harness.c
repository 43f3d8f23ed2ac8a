/* harness.c: the program `make embedded` builds twice, for a Cortex-M4F under
 * QEMU (picolibc, semihosting) and for the host, and whose outputs must agree.
 *
 * Algorithm:
 *   1. NAME_init from the fixed seed EMB_SEED (or, in the inference-only
 *      build, the parameters baked into flash with --params);
 *   2. one inference on fixed data (checksum of the outputs);
 *   3. EMB_STEPS training steps, each on a new batch of fixed data, each
 *      printing the status, the objective and every tracked scalar;
 *   4. a checksum of the parameters: their sum, the sum of magnitudes (both
 *      in double, in one fixed order) and the FNV-1a hash of their bits.
 * The data come from an integer LCG: x[i] = ((s >> 8) & 0xffff) / 2^15 - 1,
 * exactly representable, labels (s >> 16) % classes: identical everywhere.
 * Floats are printed as their bits (hex) and with 9 significant digits: the
 * comparison (scripts/embedded.sh) checks the decimals to a relative
 * tolerance and reports whether the bits agree as well.
 *
 * The model is reached through glue.h, which gradc writes for each model
 * (compile --harness embedded, from the API's rules in compiler/api.c):
 * GLUE(x) pastes the model prefix; glue_fill() fills the inputs;
 * GLUE_TRAIN(p, s, st) and GLUE_INFER(p) call the entry points on them;
 * glue_outputs() prints the outputs' checksums.
 *
 * On the device (__ARM_EABI__), each measured call is bracketed by
 * emb_mark(): the TCG plugin (embedded/insncount.c) records the executed
 * instruction count whenever that function is entered, so the difference of
 * two marks minus that of an empty pair is the call's instruction count.  A
 * painted stack gives each call's stack high-water mark as a cross-check of
 * the static figure.  -DEMB_BASELINE leaves the model out entirely: the
 * difference in size between the two firmwares is the model's flash.
 *
 * Limits: the parameters are assumed to be one array of NAME_real (they
 * are: the params struct has only NAME_real members).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef EMB_STEPS
#define EMB_STEPS 3
#endif
#define EMB_SEED 20240607u
/* not every model uses every helper (f32 or f64, labels or not) */
#define EMB_UNUSED __attribute__((unused))

/* ------------------------------------------------------------ data */

static uint32_t lcg = 12345u;

static uint32_t lcg_next(void)
{
	lcg = lcg * 1664525u + 1013904223u;
	return lcg;
}

/* x[0..n) uniform in [-1, 1) on a grid of 2^-15: exact in float and double */
EMB_UNUSED static void fill_real_f(float *x, int n)
{
	for (int i = 0; i < n; i++)
		x[i] = (float)((lcg_next() >> 8) & 0xffffu) / 32768.0f - 1.0f;
}

EMB_UNUSED static void fill_real_d(double *x, int n)
{
	for (int i = 0; i < n; i++)
		x[i] = (double)((lcg_next() >> 8) & 0xffffu) / 32768.0 - 1.0;
}

EMB_UNUSED static void fill_label(int32_t *y, int n, int classes)
{
	for (int i = 0; i < n; i++)
		y[i] = (int32_t)((lcg_next() >> 16) % (uint32_t)classes);
}

/* ------------------------------------------------------------ printing */

static uint32_t fnv = 2166136261u;

static void fnv_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		fnv = (fnv ^ b[i]) * 16777619u;
}

/* "val NAME BITS DECIMAL": one scalar */
EMB_UNUSED static void print_f(const char *name, float v)
{
	uint32_t u;
	memcpy(&u, &v, sizeof u);
	printf("val %s %08lx %.9g\n", name, (unsigned long)u, (double)v);
}

EMB_UNUSED static void print_d(const char *name, double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof u);
	printf("val %s %08lx%08lx %.17g\n", name, (unsigned long)(u >> 32),
	       (unsigned long)(u & 0xffffffffu), v);
}

/* "sum NAME", "abs NAME" and "hash NAME" of v[0..n) */
EMB_UNUSED static void checksum_f(const char *name, const float *v, int n)
{
	double s = 0, a = 0;
	char buf[64];
	fnv = 2166136261u;
	for (int i = 0; i < n; i++) {
		s += (double)v[i];
		a += v[i] < 0 ? -(double)v[i] : (double)v[i];
	}
	fnv_bytes(v, (size_t)n * sizeof *v);
	snprintf(buf, sizeof buf, "%s.sum", name);
	print_d(buf, s);
	snprintf(buf, sizeof buf, "%s.abs", name);
	print_d(buf, a);
	printf("hash %s %08lx\n", name, (unsigned long)fnv);
}

EMB_UNUSED static void checksum_d(const char *name, const double *v, int n)
{
	double s = 0, a = 0;
	char buf[64];
	fnv = 2166136261u;
	for (int i = 0; i < n; i++) {
		s += v[i];
		a += v[i] < 0 ? -v[i] : v[i];
	}
	fnv_bytes(v, (size_t)n * sizeof *v);
	snprintf(buf, sizeof buf, "%s.sum", name);
	print_d(buf, s);
	snprintf(buf, sizeof buf, "%s.abs", name);
	print_d(buf, a);
	printf("hash %s %08lx\n", name, (unsigned long)fnv);
}

/* ------------------------------------------------------------ measuring */

#ifdef __ARM_EABI__
/* The plugin records the instruction count each time this is entered. */
__attribute__((noinline)) void emb_mark(void)
{
	__asm volatile("" ::: "memory");
}

#define PAINT_WORDS (16 * 1024 / 4)
#define PAINT 0xa5a5a5a5u

/* Bytes of stack used below 'top' since it was painted. */
static unsigned stack_used(const uint32_t *top)
{
	const volatile uint32_t *p = top - PAINT_WORDS;
	while (p < top && *p == PAINT)
		p++;
	return (unsigned)((top - (const uint32_t *)p) * 4);
}

/* Paint PAINT_WORDS below the stack pointer (main's frame is above it and
 * nothing interrupts), call, read the high-water mark. */
#define MEASURE(what, call)                                                  \
	do {                                                                 \
		uint32_t *top_;                                              \
		__asm volatile("mov %0, sp" : "=r"(top_));                   \
		for (volatile uint32_t *q_ = top_ - PAINT_WORDS; q_ < top_;) \
			*q_++ = PAINT;                                       \
		emb_mark();                                                  \
		call;                                                        \
		emb_mark();                                                  \
		printf("stack %s %u\n", what, stack_used(top_));             \
	} while (0)
#else
#define MEASURE(what, call) \
	do {                \
		call;       \
	} while (0)
#endif

/* ------------------------------------------------------------ the model */

#ifndef EMB_BASELINE
#include "glue.h"
#endif

#ifdef EMB_PARAMS_BIN
/* Big models: the initial parameters, drawn by NAME_init on the host and
 * linked into flash as raw bytes (EMB_PARAMS_BIN is the file's name in
 * quotes).  Drawing a million normals in soft-float double takes the M4 ~1e4
 * instructions each, minutes under QEMU.  */
__asm__(".section .rodata\n\t.balign 8\n\t.global emb_init_params\n"
	"emb_init_params:\n\t.incbin \"" EMB_PARAMS_BIN "\"\n"
	"emb_init_params_end:\n"
	"\t.size emb_init_params, emb_init_params_end - emb_init_params\n\t.previous\n");
extern const unsigned char emb_init_params[];
#endif

#if !defined(EMB_INFER_ONLY) && !defined(EMB_BASELINE)
/* The state NAME_init leaves: zeros but the learning rate. */
EMB_UNUSED static void init_state(GLUE(state) *s)
{
	memset(s, 0, sizeof *s);
	s->lr = GLUE_LR;
}
#endif

#ifdef EMB_SAVE_PARAMS
#include "gradc_safetensors.h"

/* Write the parameters p to 'path' as safetensors, for --params. */
static void save_params(GLUE(params) *p, const char *path)
{
	gradc_st_tensor t[GLUE(N_PARAMS)];
	memset(t, 0, sizeof t);
	for (int i = 0; i < GLUE(N_PARAMS); i++) {
		const GLUE(param_info) *pi = &GLUE(param_table)[i];
		t[i].name = pi->name;
		t[i].dtype = sizeof(GLUE(real)) == 4 ? GRADC_ST_F32 : GRADC_ST_F64;
		t[i].rank = pi->rank;
		for (int r = 0; r < pi->rank; r++)
			t[i].shape[r] = pi->shape[r];
		t[i].data = GLUE(param_values)(p, i);
		t[i].nbytes = (size_t)pi->count * sizeof(GLUE(real));
	}
	const char *msg = gradc_st_write(path, t, GLUE(N_PARAMS));
	if (msg) {
		fprintf(stderr, "harness: %s: %s\n", path, msg);
		exit(1);
	}
}
#endif

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("begin\n");
#ifdef __ARM_EABI__
	emb_mark(); /* an empty pair: the cost of marking itself */
	emb_mark();
#endif
#ifdef EMB_BASELINE
	/* what the harness alone costs: the same printing, no model */
	static float zero[4];
	fill_real_f(zero, 4);
	fill_real_d((double *)0, 0);
	fill_label((int32_t *)0, 0, 1);
	checksum_f("baseline", zero, 4);
	checksum_d("baseline", (double *)0, 0);
	print_f("baseline", zero[0]);
	MEASURE("baseline", zero[1] = zero[0]);
#else
	int status;
#if defined(EMB_INFER_ONLY) && defined(EMB_PARAMS_BIN)
	const GLUE(params) *p = (const GLUE(params) *)(const void *)emb_init_params;
#elif defined(EMB_INFER_ONLY)
	const GLUE(params) *p = &GLUE(baked);
#else
	static GLUE(params) params;
	static GLUE(state) state;
	GLUE(params) *p = &params;
#ifdef EMB_PARAMS_BIN
	memcpy(p, emb_init_params, sizeof *p);
	init_state(&state);
#else
	MEASURE("init", GLUE(init)(p, &state, EMB_SEED));
#endif
#ifdef EMB_SAVE_PARAMS
	if (argc > 2) { /* the initial values: safetensors for --params, raw */
		static GLUE(state) zeros;
		FILE *f = fopen(argv[2], "wb");
		save_params(p, argv[1]);
		if (!f || fwrite(p, sizeof *p, 1, f) != 1 || fclose(f)) {
			fprintf(stderr, "harness: cannot write %s\n", argv[2]);
			return 1;
		}
		init_state(&zeros);
		if (memcmp(&zeros, &state, sizeof state)) {
			fprintf(stderr, "harness: NAME_init's state is not zeros and lr\n");
			return 1;
		}
	}
#endif
#endif
	checksum_real("params", (const GLUE(real) *)p, GLUE(PARAMS_BYTES) / (int)sizeof(GLUE(real)));
	glue_fill();
	MEASURE("infer", status = GLUE_INFER(p));
	printf("status infer %d\n", status);
	glue_outputs();
#ifndef EMB_INFER_ONLY
	for (int k = 0; k < EMB_STEPS; k++) {
		GLUE(stats) st;
		char name[32];
		const GLUE(real) *v = (const GLUE(real) *)&st;
		memset(&st, 0, sizeof st);
		glue_fill();
		MEASURE("train", status = GLUE_TRAIN(p, &state, &st));
		printf("status step%d %d\n", k, status);
		for (int i = 0; i < (int)(sizeof st / sizeof *v); i++) {
			snprintf(name, sizeof name, "step%d.%s", k, glue_stat_names[i]);
			print_real(name, v[i]);
		}
	}
	checksum_real("params", (const GLUE(real) *)p, GLUE(PARAMS_BYTES) / (int)sizeof(GLUE(real)));
	glue_fill();
	MEASURE("infer", status = GLUE_INFER(p));
	printf("status infer %d\n", status);
	glue_outputs();
#endif
#endif
	printf("end\n");
	return 0;
}
