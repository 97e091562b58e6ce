#!/usr/bin/env bash
# bench/cooks.sh: who computes, and who waits meanwhile, in stages 09, 10 and 11.
#
# 1. heavy: one heavy client among light ones. The heavy client computes on the thread that
#    serves it: the stages run with --cpu-threads 0 (no kitchen), so each of its requests holds
#    a loop, or a worker, for --cpu-ms. Light clients ask /stats, which needs no work. In
#    stages 09 and 10 a light client whose connection the kernel put on the heavy client's
#    loop waits behind it while the other loop has nothing to do; in stage 11 an idle worker
#    takes the waiting tasks. The same servers with their kitchen are the reference.
# 2. cooks: stage 11 under clients that all compute, with a probe asking /stats: its kitchen
#    (a rayon pool), tokio's blocking pool (spawn_blocking) as many threads as cores, the
#    same pool at tokio's default of 512 threads, and no cooks at all.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF2'
Usage: bench/cooks.sh [--parts LIST] [--rounds N] [--duration S] [--cpu-ms MS]
                      [--heavy N] [--light N] [--clients N]

  heavy  09_loop_per_core --loops 2, 10_async --loops 2 and 11_tokio --workers 2, each with
         --cpu-threads 0 (no kitchen: a request computes where it is served), and 09 and 11
         again with their kitchen (--cpu-threads 2) as the reference. Each run: two loadgen
         at once, --heavy keep-alive clients asking / (--cpu-ms of computing each) and
         --light keep-alive clients asking /stats (no work). Prints the light clients'
         req/s and latency, the heavy clients' req/s, and the requests each loop served
         (from /stats; 11 has no loops of its own).
  cooks  11_tokio --workers 2 four ways: its kitchen (--cpu-threads 2), --spawn-blocking
         (tokio's blocking pool, capped at --cpu-threads 2), --spawn-blocking --cpu-threads
         512 (tokio's default cap) and --cpu-threads 0 (no cooks). Each run: --clients
         keep-alive clients asking / (--cpu-ms each) and a probe asking /stats every 20 ms.
         Prints the clients' req/s, the probe's latency and the server's peak threads.
  Every server runs with --work-ms 0 --quiet --max-conns 1000, and the servers take turns
  within each round; the medians over the rounds come last.

  --parts LIST   heavy,cooks or one of them [default: both]
  --rounds N     rounds [default: 3]
  --duration S   seconds per run [default: 5]
  --cpu-ms MS    computing per request that computes [default: 20 in heavy, 5 in cooks]
  --heavy N      heavy clients [default: 1]
  --light N      light clients [default: 20]
  --clients N    computing clients in cooks [default: 20]
  -h, --help     print this help

Needs curl and two cores; 127.0.0.1 only; every process started here is stopped on exit.
About (5 + 4) x rounds x duration seconds: 135 s by default.
EOF2
}

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source scripts/stages.sh

parts=heavy,cooks
rounds=3
duration=5
cpu_ms=""
heavy=1
light=20
clients=20
while [[ $# -gt 0 ]]; do
	case $1 in
	--parts) parts=${2:-}; shift 2 ;;
	--rounds) rounds=${2:-}; shift 2 ;;
	--duration) duration=${2:-}; shift 2 ;;
	--cpu-ms) cpu_ms=${2:-}; shift 2 ;;
	--heavy) heavy=${2:-}; shift 2 ;;
	--light) light=${2:-}; shift 2 ;;
	--clients) clients=${2:-}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
for value in "$rounds" "$duration" "${cpu_ms:-1}" "$heavy" "$light" "$clients"; do
	[[ $value =~ ^[1-9][0-9]*$ ]] || die "every number takes a whole number above 0 (see --help)"
done
[[ $parts =~ ^(heavy|cooks)(,(heavy|cooks))?$ ]] || die "--parts takes heavy,cooks or one of them"
command -v curl >/dev/null || die "needs curl (apt-get install -y curl)"

workdir=$(mktemp -d)
cleanup() {
	stop_started_processes
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_stages_and_loadgen
locate_binaries

# The requests each loop has served, from /stats: "a b" (empty without loops).
loop_requests() { # url
	curl -s --max-time 5 "${1}stats" | tr ',' '\n' |
		sed -n 's/^"loop_[0-9]*_requests":\([0-9]*\)$/\1/p' | tr '\n' ' '
}

# Starts every server of a part: name -> stage and flags, in the arrays below.
declare -A stage_of flags_of url_of pid_of
start_servers() { # cpu_ms name...
	local cpu=$1 server
	shift
	for server in "$@"; do
		# shellcheck disable=SC2086 # the flags are words
		start_stage "$server" "${stage_of[$server]}" --cpu-ms "$cpu" --work-ms 0 --quiet \
			--max-conns 1000 ${flags_of[$server]}
		url_of[$server]=$stage_url
		pid_of[$server]=$stage_pid
	done
}

# Medians of columns 3.. of a TSV of round, server, figures...; printf formats per column.
# Each line says "median" where the runs' lines have their round.
medians() { # file format...
	local file=$1
	shift
	awk -F'\t' -v formats="$*" '
		function median(list,   a, n, i, j, t) {
			n = split(list, a, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{ if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
		  for (c = 3; c <= NF; c++) col[$2, c] = col[$2, c] " " $c; last = NF }
		END {
			split(formats, f, " ")
			for (k = 1; k <= n; k++) {
				printf "%-6s %-20s", "median", order[k]
				for (c = 3; c <= last; c++) printf " " f[c - 2], median(col[order[k], c])
				printf "\n"
			}
		}' "$file"
}

printf '$ bench/cooks.sh --parts %s --rounds %s --duration %s%s\n' "$parts" "$rounds" \
	"$duration" "${cpu_ms:+ --cpu-ms $cpu_ms}"
printf '%s (nproc), %s, Linux %s\n' "$(nproc) cores" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)"
printf 'load average at the start: %s (1, 5, 15 min)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $parts == *heavy* ]]; then
	heavy_ms=${cpu_ms:-20}
	servers=(09-no-kitchen 10-no-kitchen 11-no-kitchen 09-kitchen 11-kitchen)
	stage_of=(
		[09-no-kitchen]=09_loop_per_core [10-no-kitchen]=10_async [11-no-kitchen]=11_tokio
		[09-kitchen]=09_loop_per_core [11-kitchen]=11_tokio
	)
	flags_of=(
		[09-no-kitchen]="--loops 2 --cpu-threads 0" [10-no-kitchen]="--loops 2 --cpu-threads 0"
		[11-no-kitchen]="--workers 2 --cpu-threads 0"
		[09-kitchen]="--loops 2 --cpu-threads 2" [11-kitchen]="--workers 2 --cpu-threads 2"
	)
	start_servers "$heavy_ms" "${servers[@]}"
	printf '\n== heavy: one heavy client among light ones\n'
	printf 'each run: loadgen --keep-alive --clients %s --url .../ (heavy, %s ms of computing each)\n' \
		"$heavy" "$heavy_ms"
	printf '     and, at the same time, loadgen --keep-alive --clients %s --url .../stats (light)\n' "$light"
	printf 'no-kitchen: --cpu-threads 0, a request computes on the loop or worker that serves it\n\n'
	printf '%-6s %-20s %10s %9s %9s %9s %9s %10s   %s\n' round server "light r/s" "p50 ms" \
		"p90 ms" "p99 ms" "max ms" "heavy r/s" "requests per loop (light + heavy)"
	results=$workdir/heavy.tsv
	: >"$results"
	for ((round = 1; round <= rounds; round++)); do
		for server in "${servers[@]}"; do
			url=${url_of[$server]}
			read -r -a before <<<"$(loop_requests "$url")"
			"$loadgen" --keep-alive --clients "$heavy" --duration "$duration" --url "$url" \
				--no-live --no-server-stats --json >"$workdir/heavy.json" 2>/dev/null &
			heavy_pid=$!
			"$loadgen" --keep-alive --clients "$light" --duration "$duration" \
				--url "${url}stats" --no-live --no-server-stats --json >"$workdir/light.json" \
				2>/dev/null || true
			wait "$heavy_pid" || true
			read -r -a after <<<"$(loop_requests "$url")"
			per_loop=""
			for i in "${!after[@]}"; do
				per_loop+="$((after[i] - ${before[i]:-0})) "
			done
			row=()
			for key in rps p50_ms p90_ms p99_ms max_ms; do
				row+=("$(json_get "$workdir/light.json" "$key")")
			done
			row+=("$(json_get "$workdir/heavy.json" rps)")
			printf '%-6s %-20s %10.0f %9.2f %9.2f %9.2f %9.2f %10.1f   %s\n' "$round" "$server" \
				"${row[0]:-0}" "${row[1]:-0}" "${row[2]:-0}" "${row[3]:-0}" "${row[4]:-0}" \
				"${row[5]:-0}" "${per_loop:--}"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$server" "${row[0]:-0}" \
				"${row[1]:-0}" "${row[2]:-0}" "${row[3]:-0}" "${row[4]:-0}" "${row[5]:-0}" >>"$results"
		done
	done
	printf '\nmedians over %s round(s)\n' "$rounds"
	printf '%-6s %-20s %10s %9s %9s %9s %9s %10s\n' "" server "light r/s" "p50 ms" "p90 ms" \
		"p99 ms" "max ms" "heavy r/s"
	medians "$results" '%10.0f' '%9.2f' '%9.2f' '%9.2f' '%9.2f' '%10.1f'
	stop_started_processes
fi

if [[ $parts == *cooks* ]]; then
	cooks_ms=${cpu_ms:-5}
	servers=(kitchen spawn-blocking spawn-blocking-512 no-cooks)
	stage_of=(
		[kitchen]=11_tokio [spawn-blocking]=11_tokio [spawn-blocking-512]=11_tokio
		[no-cooks]=11_tokio
	)
	flags_of=(
		[kitchen]="--workers 2 --cpu-threads 2"
		[spawn-blocking]="--workers 2 --cpu-threads 2 --spawn-blocking"
		[spawn-blocking-512]="--workers 2 --cpu-threads 512 --spawn-blocking"
		[no-cooks]="--workers 2 --cpu-threads 0"
	)
	start_servers "$cooks_ms" "${servers[@]}"
	printf '\n== cooks: stage 11 --workers 2, every client computing, a probe asking /stats\n'
	printf 'each run: loadgen --keep-alive --clients %s --url .../ (%s ms of computing each)\n' \
		"$clients" "$cooks_ms"
	printf '          --probe-path /stats --probe-every-ms 20 --pid (the peak of threads)\n\n'
	printf '%-6s %-20s %10s %9s %9s %9s %9s %8s\n' round server "r/s" "probe p50" "p90 ms" \
		"p99 ms" "max ms" threads
	results=$workdir/cooks.tsv
	: >"$results"
	for ((round = 1; round <= rounds; round++)); do
		for server in "${servers[@]}"; do
			"$loadgen" --keep-alive --clients "$clients" --duration "$duration" \
				--url "${url_of[$server]}" --probe-path /stats --probe-every-ms 20 \
				--pid "${pid_of[$server]}" --no-live --no-server-stats --json \
				>"$workdir/cooks.json" 2>/dev/null || true
			row=()
			for key in rps probe_p50_ms probe_p90_ms probe_p99_ms probe_max_ms peak_threads; do
				row+=("$(json_get "$workdir/cooks.json" "$key")")
			done
			printf '%-6s %-20s %10.0f %9.2f %9.2f %9.2f %9.2f %8s\n' "$round" "$server" \
				"${row[0]:-0}" "${row[1]:-0}" "${row[2]:-0}" "${row[3]:-0}" "${row[4]:-0}" \
				"${row[5]:--}"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$server" "${row[0]:-0}" \
				"${row[1]:-0}" "${row[2]:-0}" "${row[3]:-0}" "${row[4]:-0}" "${row[5]:-0}" >>"$results"
		done
	done
	printf '\nmedians over %s round(s)\n' "$rounds"
	printf '%-6s %-20s %10s %9s %9s %9s %9s %8s\n' "" server "r/s" "probe p50" "p90 ms" \
		"p99 ms" "max ms" threads
	medians "$results" '%10.0f' '%9.2f' '%9.2f' '%9.2f' '%9.2f' '%8.0f'
fi
