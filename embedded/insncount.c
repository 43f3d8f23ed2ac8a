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
 *   3. at exit, FILE gets one line per pair of marks, "insns DELTA": the
 *      instructions from one mark to the next.  The firmware brackets each
 *      measured call by two marks and makes a first, empty pair, whose
 *      delta is the cost of marking itself; subtract it.
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
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
					   char **argv);
QEMU_PLUGIN_EXPORT extern int qemu_plugin_version;

/* ---- the plugin */
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

enum { MAX_MARKS = 1 << 16 };

static uint64_t count;       /* instructions executed so far */
static uint64_t mark_addr;   /* the marker function, Thumb bit cleared */
static uint64_t marks[MAX_MARKS];
static size_t n_marks;
static char out_path[4096];

static void on_mark(unsigned int vcpu, void *udata)
{
	(void)vcpu;
	(void)udata;
	if (n_marks < MAX_MARKS)
		marks[n_marks++] = count;
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	size_t n = qemu_plugin_tb_n_insns(tb);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &count, n);
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
	for (size_t i = 0; i + 1 < n_marks; i += 2)
		fprintf(f, "insns %" PRIu64 "\n", marks[i + 1] - marks[i]);
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
