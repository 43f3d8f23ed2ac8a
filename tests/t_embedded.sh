#!/bin/bash
# t_embedded.sh: `make embedded` inside `make test`: every model built for a
# Cortex-M4F (arm-none-eabi-gcc, picolibc), run under QEMU (mps2-an386) and
# compared with the same program on the host; the libm-free and the
# inference-only builds must agree bit for bit (scripts/embedded.sh).  The
# toolchain is installed by deps.sh when missing.
set -u
cd "${ROOT:-.}" || exit 1
sh scripts/deps.sh embedded || {
	echo "t_embedded: cannot install the embedded toolchain (scripts/deps.sh embedded)"
	exit 1
}
sh scripts/embedded.sh
