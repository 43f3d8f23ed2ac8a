#!/bin/sh
# Install what a target needs and the machine lacks (Debian, non-interactive).
# deps.sh build|test|demo|embedded|bench
# Called by the Makefile before anything else, so it may assume nothing but
# sh, dpkg and apt-get (make itself excepted, a fresh Debian 12 has no C
# compiler).  Packages already installed are not asked for again.
set -e
need=""
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
want() { for p in "$@"; do have_pkg "$p" || need="$need $p"; done; }

case "$1" in
build) want gcc libc6-dev liblua5.4-dev pkg-config ;;
# python3: the tests' JSON and reference checks (t_report, t_fit, t_mlperf, t_conv_ref);
# cmake: the examples built against a staged install (tests/t_cmake.sh)
test) want gcc libc6-dev liblua5.4-dev pkg-config check clang python3 cmake ;;
demo) want gcc libc6-dev liblua5.4-dev pkg-config ;;
# the host side of embedded: the harness's twin and the QEMU plugin (gcc)
embedded) want gcc libc6-dev gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm ;;
bench) want libopenblas-dev valgrind ;;
*) echo "deps.sh: unknown target '$1'" >&2; exit 2 ;;
esac

[ -z "$need" ] && exit 0
echo "deps: installing$need"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# several builds may install at once: wait for dpkg's lock instead of failing
lock="-o DPkg::Lock::Timeout=600"
# shellcheck disable=SC2086 # $lock is two words
$SUDO apt-get $lock update -qq >/dev/null
# shellcheck disable=SC2086 # $need is a list
$SUDO apt-get $lock install -y -qq --no-install-recommends $need >/dev/null
