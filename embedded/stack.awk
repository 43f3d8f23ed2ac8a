# stack.awk: worst-case stack of functions from GCC's -fcallgraph-info=su
# files (VCG graphs with each function's frame in bytes).
#
#   awk -v ROOTS="mlp_train_step mlp_infer" -f embedded/stack.awk a.ci b.ci
#
# Prints "ROOT BYTES[+]" for each root: the largest sum of frames along any
# call path from it (the code has no recursion).  "+" marks a path through a
# function with no frame in the files (a library function, e.g. libm's), so
# the figure is a lower bound there.  The helpers GCC calls itself
# (<built-in>: libgcc's soft-double __aeabi_*) count 0: leaf routines that
# push a few registers.
/^node:/ {
	t = $0
	sub(/.*title: "/, "", t)
	sub(/".*/, "", t)
	if (index($0, "<built-in>"))
		builtin[t] = 1
	if (match($0, /[0-9]+ bytes/)) {
		fr = substr($0, RSTART, RLENGTH)
		sub(/ bytes/, "", fr)
		frame[t] = fr + 0
	}
}
/^edge:/ {
	s = $0
	sub(/.*sourcename: "/, "", s)
	sub(/".*/, "", s)
	d = $0
	sub(/.*targetname: "/, "", d)
	sub(/".*/, "", d)
	calls[s] = calls[s] " " d
}
function worst(f,    c, n, i, w, best, u) {
	if (f in memo)
		return memo[f]
	best = 0
	u = !(f in frame) && !(f in builtin)
	n = split(calls[f], c, " ")
	for (i = 1; i <= n; i++) {
		w = worst(c[i])
		if (w > best)
			best = w
		if (unknown[c[i]])
			u = 1
	}
	unknown[f] = u
	memo[f] = (f in frame ? frame[f] : 0) + best
	return memo[f]
}
END {
	n = split(ROOTS, r, " ")
	for (i = 1; i <= n; i++)
		printf "%s %d%s\n", r[i], worst(r[i]), unknown[r[i]] ? "+" : ""
}
