/* target.c: the table of targets (QBE's Target), one row per --target.
 *
 * A row says what the emitted code is shaped for: the vector width its
 * inner loops fill, the registers a tile may hold, the stack a kernel may
 * take, the arena alignment, and what the instruction set offers.  The
 * passes and the emitter read these fields and never a target's name, so
 * adding a target is adding a row (README, "Adding a target").
 *
 * portable is the default: code that is fast wherever it is compiled.  Its
 * constants are today's AVX-512 tuning (the shape every kernel form was
 * measured with); the targets issue gives the other rows their own shapes.
 */
#include "gradc.h"

#include <string.h>

static const Target targets[] = {
	/* name        vec regs stack align fma   int8   about */
	{"portable",    64, 32, 4096, 64, true, false,
	 "any C99 compiler; loops shaped for 16 float lanes"},
	{"x86-64-v4",   64, 32, 4096, 64, true, true,
	 "AVX-512 (x86-64-v4): 32 registers of 16 floats"},
};
enum { N_TARGETS = sizeof targets / sizeof targets[0] };

const Target *find_target(const char *name, const char **names_out)
{
	if (names_out) {
		Buf b = {0};
		for (int i = 0; i < N_TARGETS; i++)
			buf_printf(&b, "%s%s", i ? ", " : "", targets[i].name);
		*names_out = b.s;
	}
	for (int i = 0; i < N_TARGETS; i++)
		if (!strcmp(targets[i].name, name))
			return &targets[i];
	return NULL;
}

int pack_rows(const Target *t, DType dt)
{
	return 2 * t->vec_bytes / dt_bytes(dt);
}
