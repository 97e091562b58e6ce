#!/usr/bin/env bash
# bench/contention.sh: what a shared atomic counter costs, for chapter 9's shared counters.
#
# Builds bench/contention.rs (a Cargo example) and runs it: nanoseconds per Relaxed
# fetch_add for one thread alone, two threads on one shared counter, and two threads on
# counters of their own in one cache line or 128 bytes apart. Run with --help for the options.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'USAGE'
Usage: bench/contention.sh [--increments N] [--rounds R]

Times four cases, each thread pinned to a core of its own when the system allows it:
  one thread incrementing its own AtomicU64;
  two threads incrementing one shared AtomicU64;
  two threads each incrementing its own, both in one 64-byte cache line (false sharing);
  two threads each incrementing its own, 128 bytes apart (as src/stats.rs's LoopStats).
Prints ns per increment (a thread's CPU time over its increments, median of the rounds)
and each case over the first.

  --increments N  Relaxed fetch_add per thread and round [default: 10000000]
  --rounds R      rounds per case, the median is printed [default: 5]
  -h, --help      print this help

Takes about two seconds on 2 cores. Linux pins the threads (sched_setaffinity); elsewhere
they are not pinned, and the table says so.
USAGE
}

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source scripts/stages.sh

args=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--increments | --rounds)
		[[ $# -ge 2 ]] || die "$1 needs a value (see --help)"
		[[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 takes a whole number above 0, not '$2'"
		args+=("$1" "$2")
		shift 2
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

cargo build --release --quiet --example contention
printf '$ bench/contention.sh'
if [[ ${#args[@]} -gt 0 ]]; then
	printf ' %s' "${args[@]}"
fi
echo
printf '%s cores (nproc), %s, Linux %s, %s\n' "$(nproc)" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)" "$(rustc --version)"
printf 'load average at the start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
cargo run --release --quiet --example contention -- "${args[@]+"${args[@]}"}"
