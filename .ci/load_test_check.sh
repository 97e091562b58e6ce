#!/usr/bin/env bash
# .ci/load_test_check.sh: a quick run of ./load_test.sh whose numbers must show each stage's
# idea. Six short runs, checked from their CSV rows:
#   normal  every stage answers, with zero errors and none unfinished, and stage 02 is faster
#           than stage 01;
#   flood   stage 04's thread count stays flat under 200 clients while stage 02's grows;
#   idle    with 8 idle connections stage 04 serves nobody, stage 05 (deadlines) serves;
#   siege   idle and trickling clients that come back: 05 serves nobody, 06 (one event
#           loop) serves, on its two threads;
#   keep    with --keep-alive, 07 and 08 carry many requests per connection, 06 one;
#   cpu     with --cpu-ms, a /stats probe waits behind the computing in 07 (its event loop
#           computes), not in 08 (its kitchen's threads compute).
# The bounds are structural (counts, thread numbers, "more than"), not timings, so a busy
# machine slows the run down without failing it.
set -euo pipefail
export LC_ALL=C

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	echo "Usage: .ci/load_test_check.sh   (no options; builds in release via load_test.sh)"
	exit 0
fi

cd "$(dirname "$0")/.."
workdir=$(mktemp -d "${TMPDIR:-/tmp}/load_test_check.XXXXXX")
trap 'rm -rf "$workdir"' EXIT

failures=0
check() { # description, then a test command
	local what=$1
	shift
	if "$@"; then
		echo "ok    $what"
	else
		echo "FAIL  $what"
		failures=$((failures + 1))
	fi
}

# A column of a stage's row in a CSV that load_test.sh wrote; empty if there is no such row.
value() { # file stage column
	awk -F, -v stage="$2" -v column="$3" '
		NR == 1 { for (i = 1; i <= NF; i++) index_of[$i] = i; next }
		$1 == stage { print $(index_of[column]) }' "$1"
}

equal() { [[ $1 == "$2" ]]; }

# Whether an awk condition on a (and b) holds; false if either is not a number (n/a, empty).
holds() { # condition a [b]
	local condition=$1 v
	shift
	for v in "$@"; do
		[[ $v =~ ^[0-9]+([.][0-9]+)?$ ]] || return 1
	done
	awk -v a="$1" -v b="${2:-0}" "BEGIN { exit !($condition) }"
}

echo "== normal: every stage, 200 requests from 20 clients, --work-ms 5"
./load_test.sh --requests 200 --clients 20 --work-ms 5 --csv "$workdir/normal.csv"

echo "== flood: 200 clients at once against 02 and 04"
./load_test.sh --no-build --scenario flood --flood 200 --duration 2 --work-ms 5 \
	--csv "$workdir/flood.csv" 02 04

echo "== idle: 8 idle connections against 04 and 05 (header deadline 500 ms)"
./load_test.sh --no-build --scenario idle --clients 10 --idle 8 --duration 3 --work-ms 5 \
	--csv "$workdir/idle.csv" 04 05 -- --header-timeout-ms 500

echo "== siege: idle and trickling connections that reconnect, against 05 and 06"
./load_test.sh --no-build --scenario siege --clients 10 --duration 3 --work-ms 5 \
	--csv "$workdir/siege.csv" 05 06

echo "== keep-alive: clients that keep their connections, against 06, 07 and 08"
# Called from another directory, with relative paths: the files land where it was called.
repo=$PWD
(cd "$workdir" && "$repo/load_test.sh" --no-build --keep-alive --clients 10 --requests 400 \
	--work-ms 0 --csv keep.csv --trace traces 06 07 08)

echo "== cpu: 10 ms of computing per request against 07 and 08, a /stats probe meanwhile"
./load_test.sh --no-build --work-ms 0 --cpu-ms 10 --clients 8 --requests 200 --probe /stats \
	--csv "$workdir/cpu.csv" 07 08

echo "== checks"
normal=$workdir/normal.csv
stages=()
for file in src/bin/[0-9][0-9]_*.rs; do
	name=${file##*/}
	stages+=("${name%.rs}")
done
check "normal: one row per stage (${#stages[@]} stages)" \
	equal "$(($(wc -l <"$normal") - 1))" "${#stages[@]}"
for stage in "${stages[@]}"; do
	check "normal: $stage has exactly one row" equal "$(value "$normal" "$stage" stage)" "$stage"
	check "normal: $stage answered all 200 requests" equal "$(value "$normal" "$stage" ok)" 200
	check "normal: $stage had zero errors" equal "$(value "$normal" "$stage" errors)" 0
	# The column is there (a missing one reads as empty) and a --requests run has none.
	check "normal: $stage left no request unfinished" equal "$(value "$normal" "$stage" unfinished)" 0
done
rps01=$(value "$normal" 01_single rps)
rps02=$(value "$normal" 02_thread_per_conn rps)
check "normal: 02 is faster than 01 ($rps02 vs $rps01 req/s)" holds 'a > b' "$rps02" "$rps01"

flood=$workdir/flood.csv
threads02=$(value "$flood" 02_thread_per_conn peak_threads)
threads04=$(value "$flood" 04_thread_pool peak_threads)
threads04_normal=$(value "$normal" 04_thread_pool peak_threads)
# Flat: 200 clients leave 04 with the threads it had for 20 (main, Ctrl-C, 4 workers).
check "flood: 04's threads stay flat ($threads04 with 200 clients, $threads04_normal with 20)" \
	holds 'a <= b + 1' "$threads04" "$threads04_normal"
check "flood: 02's threads grow far past 04's ($threads02 vs $threads04)" \
	holds 'a >= 4 * b' "$threads02" "$threads04"

idle=$workdir/idle.csv
ok04=$(value "$idle" 04_thread_pool ok)
ok05=$(value "$idle" 05_timeouts ok)
check "idle: 04 serves nobody while idle connections hold its workers ($ok04 ok)" equal "$ok04" 0
check "idle: 05 serves once its deadline cuts them ($ok05 ok)" holds 'a > 0' "$ok05"

siege=$workdir/siege.csv
ok05=$(value "$siege" 05_timeouts ok)
ok06=$(value "$siege" 06_event_loop ok)
threads06=$(value "$siege" 06_event_loop peak_threads)
check "siege: 05's workers are kept busy by clients that come back ($ok05 ok)" equal "$ok05" 0
check "siege: 06 serves through it ($ok06 ok)" holds 'a > 0' "$ok06"
check "siege: on two threads, main and ctrl-c ($threads06)" equal "$threads06" 2

keep=$workdir/keep.csv
check "keep-alive: 07 answered all 400 requests" equal "$(value "$keep" 07_keep_alive ok)" 400
conns06=$(value "$keep" 06_event_loop connections)
conns07=$(value "$keep" 07_keep_alive connections)
check "keep-alive: 06 closes after every request ($conns06 connections for 400)" equal "$conns06" 400
check "keep-alive: 07 keeps them ($conns07 connections for 400)" holds 'a <= 20' "$conns07"
check "keep-alive: 08 answered all 400 requests" equal "$(value "$keep" 08_cpu_pool ok)" 400
conns08=$(value "$keep" 08_cpu_pool connections)
check "keep-alive: 08 keeps them too ($conns08 connections for 400)" holds 'a <= 20' "$conns08"
traced=$(wc -l <"$workdir/traces/07_keep_alive.trace.csv" 2>/dev/null || echo none)
check "keep-alive: --trace traces, relative to the caller: a header and 400 rows ($traced lines)" \
	equal "$traced" 401

cpu=$workdir/cpu.csv
for stage in 07_keep_alive 08_cpu_pool; do
	check "cpu: $stage answered all 200 requests" equal "$(value "$cpu" "$stage" ok)" 200
	check "cpu: $stage had zero errors" equal "$(value "$cpu" "$stage" errors)" 0
done
probe07=$(value "$cpu" 07_keep_alive probe_p50_ms)
probe08=$(value "$cpu" 08_cpu_pool probe_p50_ms)
# 07 answers the probe only between two requests' computing; 08's loop is always free.
check "cpu: the probe waits less in 08 than in 07 (p50 $probe08 vs $probe07 ms)" \
	holds 'a < b' "$probe08" "$probe07"

if [[ $failures -gt 0 ]]; then
	echo "load_test_check: $failures check(s) failed" >&2
	exit 1
fi
echo "load_test_check: all checks passed"
