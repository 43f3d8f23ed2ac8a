/* target.c: the table of targets (QBE's Target), one row per --target.
 *
 * A row says what the emitted code is shaped for: the vector width its
 * inner loops fill, the registers a tile may hold, the stack a kernel may
 * take, the arena alignment, and what the instruction set offers.  The
 * passes and the emitter read these fields and never a target's name, so
 * adding a target is adding a row (README, "Adding a target").
 *
 * Register shapes.  What makes a product kernel fast is its register
 * tile, and that depends on the machine's registers: 32 of 16 floats
 * (AVX-512), 16 of 8 (AVX2; SSE and NEON are served by the same shape),
 * or 32 single floats of a scalar FPU (Cortex-M4F/M7: no vector, so a
 * tile of 4 x 4 scalars).  A row names its shape by GRADC_KERNELS (1, 2,
 * 3, see gradc_rt.h).
 *
 * portable (the default) must be fast wherever it is compiled, so it
 * carries the product kernels of all three shapes, each under
 * `#if GRADC_KERNELS == N` (select.c chooses each one's tile, gemm.lua
 * prints them), and gradc_rt.h defines GRADC_KERNELS from the compiler's
 * predefined macros: 3 with __AVX512F__, 1 on an ARM without NEON or MVE
 * (a Cortex-M), 2 otherwise.  Everything else (the forms, the arena, the
 * elementwise loops) is the x86-64-v4 row's, so portable's arena is
 * x86-64-v4's and a portable file compiled with -mavx512f is the
 * x86-64-v4 file's code.  A build can force a shape with
 * -DGRADC_KERNELS=N (the embedded tests compile the device's shape on the
 * host to compare bit for bit).
 */
#include "gradc.h"

#include <string.h>

enum { PORTABLE, V4, V3, M4, M7, M55, N_ROWS };

static const Target targets[] = {
	/* name        vec regs stack align fma   int8   tile kernels about */
	[PORTABLE] = {"portable", 64, 32, 4096, 64, true, false, 64, 0,
	 "any C99 compiler; the kernels of every register shape, chosen by the preprocessor"},
	[V4] = {"x86-64-v4", 64, 32, 4096, 64, true, true, 64, 3,
	 "AVX-512 (x86-64-v4): 32 registers of 16 floats"},
	[V3] = {"x86-64-v3", 32, 16, 4096, 64, true, false, 32, 2,
	 "AVX2 and FMA (x86-64-v3): 16 registers of 8 floats"},
	[M4] = {"cortex-m4", 16, 32, 1024, 8, true, false, 4, 1,
	 "Cortex-M4F: a scalar FPU, 32 single-precision registers"},
	[M7] = {"cortex-m7", 16, 32, 1024, 8, true, false, 4, 1,
	 "Cortex-M7 (FPv5): a scalar FPU, 32 single-precision registers, dual issue"},
	[M55] = {"cortex-m55", 16, 32, 1024, 8, true, true, 4, 1,
	 "Cortex-M55 (Helium): the scalar FPU's tiles, 32 single registers (= 8 of 4 floats)"},
};

/* "native": the row of the machine gradc runs on, under its own name */
static Target native;

static const Target *detect_native(void)
{
	const Target *t = &targets[PORTABLE];
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		t = &targets[V4];
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		t = &targets[V3];
#elif defined(__ARM_ARCH) && !defined(__ARM_NEON)
	t = &targets[M4];
#endif
	native = *t;
	native.name = "native";
	native.about = t->about;
	if (!native.kernels)
		native.about = "the host (no row matched its instruction set): portable";
	return &native;
}

const Target *find_target(const char *name, const char **names_out)
{
	if (names_out) {
		Buf b = {0};
		for (int i = 0; i < N_ROWS; i++)
			buf_printf(&b, "%s, ", targets[i].name);
		buf_printf(&b, "native");
		*names_out = b.s;
	}
	for (int i = 0; i < N_ROWS; i++)
		if (!strcmp(targets[i].name, name))
			return &targets[i];
	if (!strcmp(name, "native"))
		return detect_native();
	return NULL;
}

int target_variants(const Target *t, const Target **out)
{
	if (t->kernels) {
		out[0] = t;
		return 1;
	}
	/* portable: printed as #if 3, #elif 1, #else (2: every other compiler) */
	out[0] = &targets[V4];
	out[1] = &targets[M4];
	out[2] = &targets[V3];
	return 3;
}

/* Rows of the xt form's packed blocks: two tile registers; 0 (no xt form)
 * where a tile register is one scalar. */
int pack_rows(const Target *t, DType dt)
{
	int64_t v = t->tile_bytes / dt_bytes(dt);
	return v > 1 ? 2 * (int)v : 0;
}
