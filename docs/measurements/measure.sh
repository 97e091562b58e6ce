#!/usr/bin/env bash
# docs/measurements/measure.sh: re-run every load test the book quotes, then redraw its charts.
#
# Each run's printed output goes to NAME.txt (with the command on its first line) and its rows
# to NAME.csv, next to this script; machine.txt names the machine. The chapters quote these
# files through generated blocks: afterwards run `cargo test --test docs -- --ignored refresh`.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: docs/measurements/measure.sh [--only NAME]... [--list]

Runs ./load_test.sh once per measurement the book quotes (about five minutes in all), writes
NAME.txt and NAME.csv for each and machine.txt next to this script, then redraws the charts
with draw.py. Close other programs first: the numbers are only as quiet as the machine.
With --only, machine.txt keeps its description and gains a line saying what was redone.

  --only NAME   run only this measurement (repeatable); see --list for the names
  --list        print the measurements and the load_test.sh arguments of each, then exit
  -h, --help    print this help

Files are replaced only when a run succeeds, so an interrupted run leaves the old ones.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# name|arguments for load_test.sh. Chapters: normal 1-6, flood 2-4, idle 4-5, idle-reconnect
# 5, work-0 4, 7 and 8, backlog-*, pool-16 and pool-40 8, siege, held, held-06 and cpu 6, keep-alive,
# work-0-keep-alive and held-keep-alive 7, trace 8 (the timeline chart); the kitchen's chapter
# (stage 08): cpu-pool (computing on the loop or in the kitchen, and a /stats probe meanwhile),
# cpu-pool-0 and cpu-pool-0-keep-alive (what the kitchen costs without computing), cpu-queue-4
# and cpu-queue-default (past --cpu-queue: 503s), compare-cpu and compare-cpu-0. flood and
# idle also record the series of their over-time charts.
measurements=(
	"normal|"
	"flood|--scenario flood --series docs/measurements/series/flood"
	"idle|--scenario idle --series docs/measurements/series/idle"
	"idle-reconnect|--scenario idle --idle-reconnect 04 05"
	"work-0|--work-ms 0"
	"backlog-128|--work-ms 0 --clients 200 01 -- --backlog 128"
	"backlog-1024|--work-ms 0 --clients 200 01 -- --backlog 1024"
	"pool-16|04 -- --workers 16"
	"pool-40|04 -- --workers 40"
	"siege|--scenario siege 05 06 07"
	"held|--scenario held --held 10000 02 05 06 -- --max-conns 11000 --header-timeout-ms 600000"
	"cpu|--work-ms 0 --cpu-ms 5 04 06"
	"keep-alive|--keep-alive"
	"work-0-keep-alive|--work-ms 0 --keep-alive 06 07"
	"held-06|--scenario held --held 10000 06 -- --max-conns 11000 --header-timeout-ms 600000"
	"held-keep-alive|--scenario held --keep-alive --work-ms 0 --held 10000 07 -- --max-conns 11000 --keep-alive-ms 600000"
	"trace|--clients 10 --duration 2 --trace docs/measurements/traces"
	"clients-10|--clients 10 01"
	"clients-100|--clients 100 01"
	"open-40|--rate 40 --clients 60 01"
	"open-60|--rate 60 --clients 100 01"
	"cpu-pool|--work-ms 0 --cpu-ms 5 --clients 20 --probe /stats 06 07 08"
	"cpu-pool-0|--work-ms 0 --cpu-ms 0 07 08"
	"cpu-pool-0-keep-alive|--work-ms 0 --cpu-ms 0 --keep-alive 07 08"
	"cpu-queue-4|--work-ms 0 --cpu-ms 5 --clients 50 08 -- --cpu-threads 2 --cpu-queue 4"
	"cpu-queue-default|--work-ms 0 --cpu-ms 5 --clients 50 08 -- --cpu-threads 2"
)
# Measurements that are not a load_test.sh run: name|what they run (see below).
others=(
	"time-wait|./load_test.sh --work-ms 0 --duration 3 07, with and without --keep-alive; ss -tan state time-wait"
	"strace-06|strace -f of stage 06 serving one request"
	"slowloris|bench/slow_attack.sh --attack slowloris 05 06 07"
	"slow-read-06|bench/slow_attack.sh 06 07"
	"threads-02|stage 02 at rest and holding 1000 idle connections: threads, memory mappings, RSS"
	"thread-start|bench/thread_start.sh"
	"bare-loop|bench/bare_loop.sh: 06, 07, nginx and a bare mio loop, side by side"
	"kernel-memory|docs/measurements/kernel_memory.sh: an idle connection's bytes in 06 and 07 and in the kernel"
	"compare-cpu|bench/compare.sh --sections cpu --rounds 5 06 07 08: --cpu-ms 5 against theory"
	"compare-cpu-0|bench/compare.sh --sections throughput,keepalive --clients 50,200 --tools loadgen --no-nginx --rounds 5 07 08: 08 against 07 without computing"
)

only=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--list)
		for m in "${measurements[@]}"; do
			printf '%-18s ./load_test.sh %s\n' "${m%%|*}" "${m#*|}"
		done
		for m in "${others[@]}"; do
			printf '%-18s %s\n' "${m%%|*}" "${m#*|}"
		done
		exit 0
		;;
	--only)
		[[ $# -ge 2 ]] || {
			echo "measure.sh: --only needs a name (see --list)" >&2
			exit 2
		}
		only+=("$2")
		shift 2
		;;
	*)
		echo "measure.sh: unknown argument '$1' (see --help)" >&2
		exit 2
		;;
	esac
done

for name in "${only[@]}"; do
	known=0
	for m in "${measurements[@]}" "${others[@]}"; do
		[[ ${m%%|*} == "$name" ]] && known=1
	done
	[[ $known == 1 ]] || {
		echo "measure.sh: no measurement '$name' (see --list)" >&2
		exit 2
	}
done

scratch=$(mktemp -d)
cleanup() {
	rm -rf "$scratch"
}
trap cleanup EXIT

wanted() {
	[[ ${#only[@]} -eq 0 ]] && return 0
	local name
	for name in "${only[@]}"; do
		[[ $name == "$1" ]] && return 0
	done
	return 1
}

# The load average says how busy the machine was with other work when the runs began.
load=$(cut -d ' ' -f 1-3 /proc/loadavg)
today=$(date -u +%Y-%m-%d)
machine=$(printf '%s cores (nproc), %s, Linux %s' "$(nproc)" \
	"$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" "$(uname -r)")
if [[ ${#only[@]} -eq 0 ]]; then
	{
		printf '%s\n' "$machine"
		printf 'measured on %s with %s\n' "$today" "$(rustc --version)"
		printf 'load average at the start: %s (1, 5, 15 min)\n' "$load"
	} >"$scratch/machine.txt"
else
	# Some measurements again: say which were redone, when, on what (a virtual machine's
	# kernel build can change under a project), and how busy the machine was then.
	[[ -f $here/machine.txt ]] || {
		echo "measure.sh: no machine.txt yet; run every measurement once first" >&2
		exit 1
	}
	cp "$here/machine.txt" "$scratch/machine.txt"
	printf '%s measured separately on %s (%s), load average at the start: %s\n' \
		"${only[*]}" "$today" "$machine" "$load" >>"$scratch/machine.txt"
fi

cd "$root"
build_flag=()
for m in "${measurements[@]}"; do
	name=${m%%|*}
	read -r -a args <<<"${m#*|}"
	wanted "$name" || continue
	echo "== $name: ./load_test.sh ${args[*]}" >&2
	{
		printf '%s\n' "\$ ./load_test.sh${args[*]:+ ${args[*]}}"
		# --csv goes first: anything after a `--` in args is for the stages.
		./load_test.sh "${build_flag[@]}" --csv "$scratch/$name.csv" "${args[@]}"
	} >"$scratch/$name.txt"
	# Only the first run needs to build.
	build_flag=(--no-build)
	mv "$scratch/$name.txt" "$scratch/$name.csv" "$here/"
done

# TIME_WAIT: the closed connections a run leaves behind, counted by `ss` right after a run of
# stage 07 with a connection per request and with keep-alive. The keep-alive run goes first,
# so the thousands left by the other cannot expire during it and skew its count.
time_waits() {
	ss -tan state time-wait | tail -n +2 | wc -l
}
# TIME_WAIT lasts 60 s on Linux: after other runs, wait (at most 65 s) for their sockets to
# go, or they would leave during the run and be counted against it.
settle_time_waits() {
	local i
	for ((i = 0; i < 65; i++)); do
		(($(time_waits) < 1000)) && return 0
		sleep 1
	done
}
if wanted time-wait; then
	echo "== time-wait" >&2
	{
		for mode in --keep-alive ""; do
			settle_time_waits
			before=$(time_waits)
			# shellcheck disable=SC2086 # $mode is one flag or none
			./load_test.sh --no-build --no-live --work-ms 0 --duration 3 $mode 07 >"$scratch/tw.txt"
			after=$(time_waits)
			printf '$ ./load_test.sh --work-ms 0 --duration 3%s 07\n' "${mode:+ $mode}"
			grep -E '^(stage|07_keep_alive) ' "$scratch/tw.txt"
			printf '$ ss -tan state time-wait | tail -n +2 | wc -l    # before %s, after %s\n' "$before" "$after"
			printf 'TIME_WAIT left by the run: %s\n\n' "$((after - before))"
		done
	} >"$scratch/time-wait.txt"
	mv "$scratch/time-wait.txt" "$here/"
fi

# What mio does underneath: the system calls of stage 06 serving one request with 100 ms of
# work, from the start-up line to the close.
if wanted strace-06; then
	echo "== strace-06" >&2
	if command -v strace >/dev/null && command -v curl >/dev/null; then
		bin=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
		strace -f -tt -e trace=epoll_wait,epoll_ctl,accept4,recvfrom,sendto,read,write,close,shutdown \
			-o "$scratch/strace.raw" "$bin/06_event_loop" --addr 127.0.0.1:0 --work-ms 100 --quiet \
			>"$scratch/strace.out" 2>/dev/null &
		tracer=$!
		for _ in $(seq 50); do
			grep -q 'listening on' "$scratch/strace.out" 2>/dev/null && break
			sleep 0.1
		done
		url=$(sed -n 's/.* listening on //p' "$scratch/strace.out")
		curl -s -o /dev/null "$url/"
		sleep 0.2
		# Ctrl-C for the stage, not for strace (which would let go of it and leave it running).
		pkill -INT -P "$tracer" 2>/dev/null || true
		wait "$tracer" 2>/dev/null || true
		{
			printf '$ strace -f -e trace=epoll_wait,epoll_ctl,accept4,recvfrom,sendto,read,write,close,shutdown target/release/06_event_loop --work-ms 100\n'
			printf '$ curl http://127.0.0.1:PORT/    # in another terminal\n'
			# From the first accept to the close of that connection; times, pids and the
			# port made neutral so the excerpt does not change for no reason.
			awk '/accept4\(/ && !on { on = 1; if (prev ~ /epoll_wait/) print prev }
				on { print } on && /close\(/ { exit } { prev = $0 }' "$scratch/strace.raw" |
				sed -E 's/^[0-9]+ +//; s/[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]+ //; s/sin_port=htons\([0-9]+\)/sin_port=htons(PORT)/g; s/^<\.\.\. epoll_wait resumed>/epoll_wait(4, /; s/0x[0-9a-f]{6,}/0x.../g; s/"Date: [^"\\]*\\r/"Date: ...\\r/' |
				head -n 20
		} >"$scratch/strace-06.txt"
		mv "$scratch/strace-06.txt" "$here/"
	else
		echo "   (strace or curl missing: apt-get install -y strace curl)" >&2
	fi
fi

# What a thread costs besides its RSS: each one is a few memory mappings (its stack, its guard
# page), counted against vm.max_map_count. Stage 02 at rest, then with 1000 idle connections,
# each with a thread of its own.
if wanted threads-02; then
	echo "== threads-02" >&2
	bin=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
	"$bin/02_thread_per_conn" --addr 127.0.0.1:0 --quiet --work-ms 0 >"$scratch/02.out" 2>/dev/null &
	stage=$!
	for _ in $(seq 50); do
		grep -q 'listening on' "$scratch/02.out" 2>/dev/null && break
		sleep 0.1
	done
	url=$(sed -n 's/.* listening on //p' "$scratch/02.out")/
	sample() { # label
		printf '%-34s %8s %9s %10s\n' "$1" "$(awk '/^Threads:/ { print $2 }' "/proc/$stage/status")" \
			"$(wc -l <"/proc/$stage/maps")" "$(awk '/^VmRSS:/ { print $2 " kB" }' "/proc/$stage/status")"
	}
	{
		printf '$ target/release/02_thread_per_conn, then loadgen --scenario held --held 1000\n'
		printf '%-34s %8s %9s %10s\n' "" threads mappings RSS
		sample "at rest" | tee "$scratch/rest"
		"$bin/loadgen" --url "$url" --scenario held --held 1000 --clients 1 --duration 4 --no-live >/dev/null 2>&1 &
		loader=$!
		sleep 3
		sample "holding 1000 idle connections" | tee "$scratch/held"
		wait "$loader" || true
		read -r _ _ t0 m0 _ <"$scratch/rest"
		read -r _ _ _ _ t1 m1 _ <"$scratch/held"
		awk -v t0="$t0" -v m0="$m0" -v t1="$t1" -v m1="$m1" \
			'BEGIN { printf "mappings per extra thread: %.1f\n", (m1 - m0) / (t1 - t0) }'
	} >"$scratch/threads-02.txt"
	kill -INT "$stage" 2>/dev/null || true
	wait "$stage" 2>/dev/null || true
	mv "$scratch/threads-02.txt" "$here/"
fi

for attack in slowloris slow-read-06; do
	wanted "$attack" || continue
	echo "== $attack" >&2
	case $attack in
	slowloris) attack_args=(--attack slowloris 05 06 07) ;;
	slow-read-06) attack_args=(06 07) ;;
	esac
	{
		printf '$ bench/slow_attack.sh %s\n' "${attack_args[*]}"
		bench/slow_attack.sh "${attack_args[@]}" 2>/dev/null
	} >"$scratch/$attack.txt"
	mv "$scratch/$attack.txt" "$here/"
done

if wanted bare-loop; then
	echo "== bare-loop" >&2
	bench/bare_loop.sh >"$scratch/bare-loop.txt"
	mv "$scratch/bare-loop.txt" "$here/"
fi

if wanted kernel-memory; then
	echo "== kernel-memory" >&2
	"$here/kernel_memory.sh" --no-build >"$scratch/kernel-memory.txt"
	mv "$scratch/kernel-memory.txt" "$here/"
fi

if wanted compare-cpu; then
	echo "== compare-cpu" >&2
	# Five rounds: on a shared machine one round in three or four can be crowded out.
	bench/compare.sh --sections cpu --rounds 5 06 07 08 >"$scratch/compare-cpu.txt"
	mv "$scratch/compare-cpu.txt" "$here/"
fi

# What the kitchen costs when there is nothing to cook: 08 against 07 in the same rounds,
# connection per request and with keep-alive, loadgen alone (the same tool for both).
if wanted compare-cpu-0; then
	echo "== compare-cpu-0" >&2
	bench/compare.sh --sections throughput,keepalive --clients 50,200 --tools loadgen --no-nginx \
		--rounds 5 07 08 >"$scratch/compare-cpu-0.txt"
	mv "$scratch/compare-cpu-0.txt" "$here/"
fi

if wanted thread-start; then
	echo "== thread-start" >&2
	{
		printf '$ bench/thread_start.sh\n'
		bench/thread_start.sh
	} >"$scratch/thread-start.txt"
	mv "$scratch/thread-start.txt" "$here/"
fi

mv "$scratch/machine.txt" "$here/"

python3 "$here/draw.py"
echo "now run: cargo test --test docs -- --ignored refresh" >&2
