# compare.awk: compare the harness output of the device (first file) with
# the host's (second file).
#
#   awk -v TOL=1e-5 -f embedded/compare.awk DEVICE.txt HOST.txt
#
# Lines "val NAME BITS DECIMAL", "hash NAME HEX", "status NAME N"; others
# ("stack ...", "begin", "end") are ignored.  Statuses must be equal; every
# value must agree to relative TOL: |a - b| <= TOL * max(|a|, |b|), where for
# a checksum "X.sum" the scale is "X.abs" (a sum may cancel to near 0).
# Prints one line: "bits identical" or "max rel diff D (NAME)"; exits 1 if a
# value is outside TOL, a status differs, or either file lacks a value the
# other has (or the final "end").
function abs(x) { return x < 0 ? -x : x }
FNR == 1 { file++ }
file == 1 && $1 == "end" { end1 = 1 }
file == 2 && $1 == "end" { end2 = 1 }
$1 == "val" || $1 == "hash" || $1 == "status" {
	key = $1 " " $2
	if (file == 1) {
		bits1[key] = $3
		dec1[key] = $4
		order[++n] = key
	} else {
		bits2[key] = $3
		dec2[key] = $4
	}
}
END {
	bad = 0
	same = 1
	worst = 0
	wname = ""
	if (!end1 || !end2) {
		print "incomplete output (" (!end1 ? "device" : "host") ")"
		exit 1
	}
	for (k in bits2)
		if (!(k in bits1)) {
			print "missing on the device: " k
			bad = 1
		}
	for (i = 1; i <= n; i++) {
		k = order[i]
		if (!(k in bits2)) {
			print "missing on the host: " k
			bad = 1
			continue
		}
		if (bits1[k] != bits2[k])
			same = 0
		split(k, w, " ")
		if (w[1] == "status" && bits1[k] != bits2[k]) {
			print "status differs: " k " " bits1[k] " vs " bits2[k]
			bad = 1
		}
		if (w[1] != "val")
			continue
		a = dec1[k] + 0
		b = dec2[k] + 0
		scale = abs(a) > abs(b) ? abs(a) : abs(b)
		if (k ~ /\.sum$/) {
			ak = k
			sub(/\.sum$/, ".abs", ak)
			if (ak in dec2)
				scale = abs(dec2[ak] + 0)
		}
		d = abs(a - b)
		r = scale > 0 ? d / scale : (d > 0 ? 1e300 : 0)
		if (r > worst) {
			worst = r
			wname = w[2]
		}
		if (r > TOL) {
			print "outside tolerance: " w[2] " device " dec1[k] " host " dec2[k]
			bad = 1
		}
	}
	if (same)
		print "bits identical"
	else
		printf "max rel diff %.2g (%s)\n", worst, wname
	exit bad
}
