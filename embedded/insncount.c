/* insncount.c: a QEMU TCG plugin that counts the guest instructions executed
 * between calls of a marker function.
 *
 *   qemu-system-arm ... -plugin insncount.so,mark=0xADDR,out=FILE
 *
 * Algorithm:
 *   1. at translation, every translation block gets an inline "add the
 *      block's instruction count to 'count'" (no helper call: cheap);
 *   2. the block that starts at the marker's address (mark=, the Thumb bit
 *      ignored) also gets a callback on its first instruction, which appends
 *      the current 'count' to a list;
 *   3. at exit, FILE gets one line per pair of marks, "insns DELTA fp N
 *      ldst N ldm N branch N other N cycles N": the instructions from one
 *      mark to the next, by class, and the estimated cycles (below).  The
 *      firmware brackets each measured call by two marks and makes a
 *      first, empty pair, whose delta is the cost of marking itself;
 *      subtract it.
 *
 * Classes and cycles.  At translation each instruction is classified by
 * its disassembly (classify()): FP arithmetic (vadd, vmul, vfma, vdiv,
 * ...), single loads and stores (ldr, str, vldr, vstr, and a vldm/vstm of
 * one register: the post-indexed `vldmia r0!, {s0}` GCC emits for *p++),
 * multiple (ldm, stm, push, pop, vldm, vpush, ... of N registers),
 * branches (b, bl, bx, cbz, tbb, ...) and other; each block adds its
 * counts with inline operations, as the total.  The cycle estimate takes
 * the Cortex-M4 Technical Reference Manual's tables (r0p1, 3.3.1 and the
 * FPU's 7.2.3): 1 for data processing, multiplication, VADD/VSUB/VMUL/
 * VNEG/VABS/VCMP/VCVT/VMOV between FP registers; 2 for LDR/STR/VLDR/VSTR,
 * MLA/MLS, VMOV between core and FP registers; 3 for VMLA/VMLS/VFMA/
 * VFMS/VNMLA (and their negated forms); 14 for VDIV and VSQRT; 7 for
 * SDIV/UDIV (2-12); 1 + N for a multiple of N registers (+2 with pc); 3
 * for a branch (1 + P, P = 2 of 1-3 for the pipeline refill, as if taken:
 * loop branches mostly are; one not taken costs 1).  No wait states, no
 * pipelined LDR pairs (each counted 2): an estimate to compare kernels
 * with, not a cycle-accurate model.
 * Counts are exact and repeatable: QEMU translates the same way each run,
 * and a block is counted when it is entered (a block left early by an
 * exception would be over-counted; the measured code raises none).
 *
 * Limits: one vCPU (mps2 boards have one); at most MAX_MARKS marks.
 *
 * QEMU's plugin header (qemu-plugin.h) is not packaged by Debian, so the few
 * declarations used are written out below, from the stable plugin API as in
 * QEMU 7.2 (QEMU_PLUGIN_VERSION 1); every one is unchanged in later versions.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the QEMU plugin API (include/qemu/qemu-plugin.h, QEMU 7.2) */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t; /* not read here */
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
					   char **argv);
QEMU_PLUGIN_EXPORT extern int qemu_plugin_version;

/* ---- the plugin */
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

enum { MAX_MARKS = 1 << 16 };
enum { C_FP, C_LDST, C_LDM, C_BRANCH, C_OTHER, C_CYCLES, N_CLASS };
static const char *const class_name[N_CLASS] = {"fp", "ldst", "ldm", "branch", "other", "cycles"};

static uint64_t count;       /* instructions executed so far */
static uint64_t by_class[N_CLASS];  /* the same by class, and the cycles */
static uint64_t mark_addr;   /* the marker function, Thumb bit cleared */
static uint64_t marks[MAX_MARKS][1 + N_CLASS];
static size_t n_marks;
static char out_path[4096];

/* 1 if mnemonic m starts with a word of the space-separated 'list' */
static int is(const char *m, const char *list)
{
	for (const char *w = list; *w;) {
		size_t n = strcspn(w, " ");
		if (!strncmp(m, w, n))
			return 1;
		w += n;
		while (*w == ' ')
			w++;
	}
	return 0;
}

/* registers in the list of d ("{r4, r5, lr}", "{s8-s11}"): N of a multiple */
static int reg_count(const char *d)
{
	const char *p = strchr(d, '{');
	if (!p)
		return 1;
	int n = 0;
	while (*p && *p != '}') {
		p++;
		while (*p == ' ')
			p++;
		const char *item = p;
		p += strcspn(p, ",}");
		const char *dash = memchr(item, '-', (size_t)(p - item));
		if (dash) {
			long a = strtol(item + 1, NULL, 10), b = strtol(dash + 2, NULL, 10);
			n += b >= a ? (int)(b - a + 1) : 1;
		} else if (p > item) {
			n++;
		}
	}
	return n ? n : 1;
}

/* class and estimated cycles of one instruction from its disassembly.
 * Branch mnemonics are tested last, whole ("b", "bne", "bl", "bx": a
 * b followed by a condition or nothing), so that "bic" or "bfi" are not. */
static void classify(const char *d, int *cls, int *cyc)
{
	char m[16];
	size_t n = strcspn(d, " \t");
	if (n >= sizeof m)
		n = sizeof m - 1;
	memcpy(m, d, n);
	m[n] = 0;
	static const char *const conds[] = {"", "eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl",
	                                    "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"};
	int branch = !strcmp(m, "bl") || !strcmp(m, "blx") || !strcmp(m, "bx") ||
	             !strcmp(m, "cbz") || !strcmp(m, "cbnz") || !strcmp(m, "tbb") || !strcmp(m, "tbh");
	for (size_t i = 0; !branch && i < sizeof conds / sizeof conds[0]; i++) {
		char b[8];
		snprintf(b, sizeof b, "b%s", conds[i]);
		branch = !strcmp(m, b) || (!strncmp(m, b, strlen(b)) && !strcmp(m + strlen(b), ".w")) ||
		         (!strncmp(m, b, strlen(b)) && !strcmp(m + strlen(b), ".n"));
	}
	*cls = C_OTHER;
	*cyc = 1;
	if (is(m, "vldm vstm vpush vpop")) {
		int regs = reg_count(d);
		*cls = regs > 1 ? C_LDM : C_LDST;
		*cyc = 1 + regs;
	} else if (is(m, "ldm stm push pop")) {
		*cls = C_LDM;
		*cyc = 1 + reg_count(d) + (strstr(d, "pc}") ? 2 : 0);
	} else if (is(m, "vldr vstr ldr str")) {
		*cls = C_LDST;
		*cyc = 2;
	} else if (is(m, "vmla vmls vnmla vnmls vfma vfms vfnma vfnms")) {
		*cls = C_FP;
		*cyc = 3;
	} else if (is(m, "vdiv vsqrt")) {
		*cls = C_FP;
		*cyc = 14;
	} else if (is(m, "vadd vsub vmul vnmul vneg vabs vcmp vcvt vmax vmin vsel vrint")) {
		*cls = C_FP;
	} else if (is(m, "vmov")) { /* between core and FP registers: 2 */
		const char *ops = d + n;
		*cyc = (strstr(ops, " r") || strstr(ops, "ip") || strstr(ops, "lr")) ? 2 : 1;
	} else if (branch) {
		*cls = C_BRANCH;
		*cyc = 3;
	} else if (is(m, "mla mls")) {
		*cyc = 2;
	} else if (is(m, "sdiv udiv")) {
		*cyc = 7;
	}
}

static void on_mark(unsigned int vcpu, void *udata)
{
	(void)vcpu;
	(void)udata;
	if (n_marks < MAX_MARKS) {
		marks[n_marks][0] = count;
		memcpy(&marks[n_marks][1], by_class, sizeof by_class);
		n_marks++;
	}
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	size_t n = qemu_plugin_tb_n_insns(tb);
	uint64_t k[N_CLASS] = {0};
	for (size_t i = 0; i < n; i++) {
		char *d = qemu_plugin_insn_disas(qemu_plugin_tb_get_insn(tb, i));
		int cls = C_OTHER, cyc = 1;
		if (d)
			classify(d, &cls, &cyc);
		free(d);
		k[cls]++;
		k[C_CYCLES] += (uint64_t)cyc;
	}
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &count, n);
	for (int c = 0; c < N_CLASS; c++)
		if (k[c])
			qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
								 &by_class[c], k[c]);
	if (n && qemu_plugin_tb_vaddr(tb) == mark_addr)
		qemu_plugin_register_vcpu_insn_exec_cb(qemu_plugin_tb_get_insn(tb, 0), on_mark,
						       QEMU_PLUGIN_CB_NO_REGS, NULL);
}

static void on_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	FILE *f = fopen(out_path, "w");
	if (!f) {
		fprintf(stderr, "insncount: cannot write '%s'\n", out_path);
		return;
	}
	for (size_t i = 0; i + 1 < n_marks; i += 2) {
		fprintf(f, "insns %" PRIu64, marks[i + 1][0] - marks[i][0]);
		for (int c = 0; c < N_CLASS; c++)
			fprintf(f, " %s %" PRIu64, class_name[c], marks[i + 1][1 + c] - marks[i][1 + c]);
		fprintf(f, "\n");
	}
	fprintf(f, "total %" PRIu64 "\n", count);
	fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
					   char **argv)
{
	(void)info;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "mark=", 5))
			mark_addr = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
		else if (!strncmp(argv[i], "out=", 4))
			snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
		else {
			fprintf(stderr, "insncount: unknown argument '%s'\n", argv[i]);
			return -1;
		}
	}
	if (!mark_addr || !out_path[0]) {
		fprintf(stderr, "insncount: need mark=ADDR and out=FILE\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
	qemu_plugin_register_atexit_cb(id, on_exit, NULL);
	return 0;
}
