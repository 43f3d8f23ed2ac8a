/* depfile.c: `compile -MD`, a Make/Ninja depfile beside the output.
 *
 * DIR/NAME.d names what the generated files were made from, so that a
 * build regenerates them when any of it changes (as gcc -MD does for a
 * C file):
 *
 *   DIR/NAME.c DIR/NAME.h: MODEL.nn P.safetensors
 *
 * Paths are written as given on the command line (CMake passes absolute
 * ones); a space, '#' or '$' is escaped the way Make and Ninja read it.
 * The file is written atomically, like the outputs.
 */
#include "gradc.h"

#include <errno.h>
#include <string.h>

/* Append path p, escaped for a Make rule. */
static void dep_path(Buf *b, const char *p)
{
	for (; *p; p++) {
		if (*p == ' ' || *p == '#' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p == '$')
			buf_printf(b, "$$");
		else
			buf_printf(b, "%c", *p);
	}
}

/* Write DIR/NAME.d for the outputs hp and cp made from 'inputs' (NULL
 * entries skipped); 0 on success, else -1 with errno set.  */
int write_depfile(const char *dpath, const char *hp, const char *cp, const char *const *inputs,
		  int n)
{
	Buf b = {0};
	dep_path(&b, cp);
	buf_printf(&b, " ");
	dep_path(&b, hp);
	buf_printf(&b, ":");
	for (int i = 0; i < n; i++) {
		if (!inputs[i])
			continue;
		buf_printf(&b, " ");
		dep_path(&b, inputs[i]);
	}
	buf_printf(&b, "\n");
	return write_file_atomic(dpath, b.s, b.len);
}
