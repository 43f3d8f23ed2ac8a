# glue.awk: write embedded/harness.c's glue.h for one model from its
# generated header (the training build's: it names every input).
#
#   awk -v M=NAME -f embedded/glue.awk NAME.h > glue.h
#
# Reads the #define sizes, the NAME_real typedef, the fields of NAME_stats and
# the prototypes of NAME_train_step and NAME_infer; an argument
# "const NAME_real *x" is a real input of NAME_X_SIZE per sample, "const
# int32_t *y" a label input in [0, NAME_Y_CLASSES), "NAME_real *o" (infer
# only) an output of NAME_O_SIZE (a trailing '_' added by the emitter to
# avoid a clash is dropped for the macro).  Sizes are written as numbers so
# that the same glue serves the inference-only build, whose header lacks the
# class counts.  Inputs are filled in training-signature order in both.
function args(line, out,    s, n) {
	s = line
	sub(/^[^(]*\(/, "", s)
	sub(/\).*$/, "", s)
	n = split(s, out, /, */)
	return n
}
function size_of(name,    u) {
	u = toupper(name)
	sub(/_$/, "", u)
	return def[M "_" u "_SIZE"]
}
/^#define / { def[$2] = $3 }
$0 ~ "^typedef (float|double) " M "_real;" { real = $2 }
$0 ~ "^typedef struct " M "_stats" { in_stats = 1; next }
in_stats && /^}/ { in_stats = 0 }
in_stats {
	f = $2
	sub(/;.*/, "", f)
	stats[++n_stats] = f
}
/learning rate \(the model's: / {
	lr = $0
	sub(/.*the model's: /, "", lr)
	sub(/\).*/, "", lr)
}
$0 ~ "^int " M "_train_step\\(" { train = $0 }
$0 ~ "^int " M "_infer\\(" { infer = $0 }
END {
	if (!real || !train || !infer) {
		print "glue.awk: cannot read the header of '" M "'" > "/dev/stderr"
		exit 1
	}
	B = def[M "_BATCH"]
	sfx = real == "float" ? "f" : "d"
	printf "/* glue.h: the harness's view of model '%s' (embedded/glue.awk) */\n", M
	printf "#include \"%s.h\"\n", M
	printf "#define GLUE(x) %s_##x\n", M
	printf "#define print_real print_%s\n#define checksum_real checksum_%s\n", sfx, sfx
	n = args(train, a)
	tcall = ""
	fill = ""
	for (i = 1; i <= n; i++) {
		t = a[i]
		nm = t
		sub(/.*[* ]/, "", nm)
		if (t ~ "^const " M "_real \\*") {
			printf "static %s in_%s[%d * %d];\n", real, nm, B, size_of(nm)
			fill = fill sprintf("\tfill_real_%s(in_%s, %d * %d);\n", sfx, nm, B, size_of(nm))
			tcall = tcall ", in_" nm
		} else if (t ~ /^const int32_t \*/) {
			u = toupper(nm)
			sub(/_$/, "", u)
			printf "static int32_t in_%s[%d * %d];\n", nm, B, size_of(nm)
			fill = fill sprintf("\tfill_label(in_%s, %d * %d, %d);\n", nm, B, size_of(nm), def[M "_" u "_CLASSES"])
			tcall = tcall ", in_" nm
		}
	}
	printf "#define GLUE_LR ((%s)%s)\n", real, lr
	printf "#define GLUE_TRAIN(p, s, st) %s_train_step(p, s%s, st, NULL)\n", M, tcall
	n = args(infer, a)
	icall = ""
	outs = ""
	for (i = 1; i <= n; i++) {
		t = a[i]
		nm = t
		sub(/.*[* ]/, "", nm)
		if (t ~ "^const " M "_real \\*" || t ~ /^const int32_t \*/) {
			icall = icall ", in_" nm
		} else if (t ~ "^" M "_real \\*") {
			printf "static %s out_%s[%d * %d];\n", real, nm, B, size_of(nm)
			outs = outs sprintf("\tchecksum_%s(\"out.%s\", out_%s, %d * %d);\n", sfx, nm, nm, B, size_of(nm))
			icall = icall ", out_" nm
		}
	}
	printf "#define GLUE_INFER(p) %s_infer(p%s, NULL)\n", M, icall
	printf "static void glue_fill(void)\n{\n%s}\n", fill
	printf "static void glue_outputs(void)\n{\n%s}\n", outs
	printf "EMB_UNUSED static const char *const glue_stat_names[] = {"
	for (i = 1; i <= n_stats; i++)
		printf "%s\"%s\"", (i > 1 ? ", " : ""), stats[i]
	printf "};\n"
}
