/* fuzz_onnx.c: libFuzzer target for the ONNX importer (protobuf.c, onnx.c,
 * import*.c) and what it hands on.
 *
 * Each input is the bytes of an ONNX file.  It is imported under a
 * jmp_buf, half the inputs with --loss cross_entropy --train all; an error
 * is fine if it is well formed ("fuzz.onnx: error: MESSAGE" from the
 * reader or the translation, or "fuzz.onnx:L:C: error: ..." with the line
 * and a caret if the generated text did not parse: the importer never
 * hands on what the model language refuses).  An accepted model's text
 * parses again, and for at most BACK_MAX nodes its entry points are built,
 * verified and emitted.  Anything else aborts, as do the sanitizers (ASan,
 * UBSan, leaks: the arena is freed after every input).
 *
 * Build and run: `make fuzz-smoke` (as part of the tests) or `make fuzz
 * FUZZ_TIME=3600` (see fuzz.mk); seeds: tests/onnx/ and tests/onnx/bad/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define CHECK(c)                                                                       \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "fuzz_onnx: check failed: %s (line %d)\n", #c, \
				__LINE__);                                             \
			abort();                                                       \
		}                                                                      \
	} while (0)

enum { BACK_MAX = 400 };

static void check_message(void)
{
	const char *m = err_msg;
	CHECK(!strncmp(m, "fuzz.onnx: error: ", 18) || !strncmp(m, "fuzz.onnx:", 10));
	size_t n = strlen(m);
	CHECK(n > 0 && m[n - 1] == '\n');
	if (m[10] >= '1' && m[10] <= '9')
		CHECK(n >= 2 && m[n - 2] == '^'); /* the generated line and a caret */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jmp_buf jb;
	err_jmp = &jb;
	if (setjmp(jb)) {
		check_message();
	} else {
		ImportOptions o = {0};
		if (size % 2)
			o.loss = "cross_entropy", o.train = "all";
		Imported im = import_onnx("fuzz.onnx", data, size, &o);
		CHECK(im.src && im.src->len == strlen(im.src->text) && im.params);
		Graph *g = front_end(im.src, &(Options){0});
		if (g->n_node <= BACK_MAX) {
			Options bo = {.infer_only = !g->has_minimize};
			Graph *modes[3];
			int n = 0;
			modes[n++] = build_mode(g, MODE_INFER, &bo);
			if (g->has_minimize)
				modes[n++] = build_mode(g, MODE_TRAIN, &bo);
			for (int k = 0; k < n; k++) {
				verify_schedule(modes[k]);
				verify_plan(modes[k]);
			}
			Buf h = {0}, c = {0};
			emit(&h, &c, modes, n, &bo);
			CHECK(h.len > 0 && c.len > 0);
		}
	}
	err_jmp = NULL;
	err_src = NULL;
	free_all();
	return 0;
}
