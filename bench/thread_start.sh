#!/usr/bin/env bash
# bench/thread_start.sh: what starting a thread costs here, and what a smaller stack changes.
#
# Compiles bench/thread_start.rs (a standalone program, not part of the workspace build) with
# rustc -O into a temporary directory and runs it. Run with --help for the options.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'USAGE'
Usage: bench/thread_start.sh [THREADS] [HELD]

Measures, for thread stacks of 2 MiB (std's default), 256 KiB, 64 KiB and 32 KiB:
  - the time to start and finish one thread that zeroes an 8 KiB buffer on its stack (what a
    stage 02/03 connection thread does), joined one at a time, with and without a name, and
    started back to back as stage 02's accept loop does;
  - the RSS each live, blocked thread adds (HELD threads alive at once).

  THREADS    threads per timing measurement, median of 5 rounds [default: 5000]
  HELD       live threads for the memory measurement [default: 2000]
  -h, --help print this help

Needs rustc (any 1.82+). Takes about half a minute on 2 cores.
USAGE
}

case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
esac
threads=${1:-5000}
held=${2:-2000}
[[ $threads =~ ^[1-9][0-9]*$ ]] || { echo "thread_start.sh: THREADS must be a whole number, not '$threads'" >&2; exit 2; }
[[ $held =~ ^[1-9][0-9]*$ ]] || { echo "thread_start.sh: HELD must be a whole number, not '$held'" >&2; exit 2; }

workdir=$(mktemp -d "${TMPDIR:-/tmp}/thread_start.XXXXXX")
cleanup() {
	rm -rf "$workdir"
}
trap cleanup EXIT

here=$(dirname "$0")
rustc -O --edition 2021 -o "$workdir/thread_start" "$here/thread_start.rs"
printf '%s cores (nproc), %s, Linux %s, %s\n' "$(nproc)" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)" "$(rustc --version)"
printf 'load average at the start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
"$workdir/thread_start" "$threads" "$held"
