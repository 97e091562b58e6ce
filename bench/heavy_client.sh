#!/usr/bin/env bash
# bench/heavy_client.sh: one heavy client among light ones, on loops the kernel chose
# (stages 09 and 10) and on workers that share the work (stage 11).
#
# A heavy client here computes on the thread that serves it: the stages run with
# --cpu-threads 0 (no kitchen), so each of its requests holds a loop, or a worker, for
# --cpu-ms. Light clients ask /stats, which needs no work. In stages 09 and 10 a light
# client whose connection the kernel put on the heavy client's loop waits behind it while the
# other loop has nothing to do; in stage 11 any idle worker can take its task. The same
# servers with their kitchen on are the reference: nobody computes on a loop there.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF2'
Usage: bench/heavy_client.sh [--rounds N] [--duration S] [--heavy N] [--light N] [--cpu-ms MS]

Starts 09_loop_per_core --loops 2, 10_async --loops 2 and 11_tokio --workers 2, each with
--cpu-threads 0 (no kitchen: a request computes where it is served), --cpu-ms MS --work-ms 0
--quiet, and 09 and 11 again with their kitchen (--cpu-threads 2) as the reference. In each
round, server by server, two loadgen runs at once for --duration seconds: --heavy keep-alive
clients asking / (MS of computing each) and --light keep-alive clients asking /stats (no
work). Prints every run: the light clients' req/s and latency, the heavy clients' req/s,
and the requests each loop served (from /stats; 11 has no loops of its own). Then the
medians over the rounds.

  --rounds N     rounds [default: 3]
  --duration S   seconds per run [default: 5]
  --heavy N      heavy clients [default: 1]
  --light N      light clients [default: 20]
  --cpu-ms MS    computing per heavy request [default: 20]
  -h, --help     print this help

Needs curl and two cores; 127.0.0.1 only; every process started here is stopped on exit.
About 5 x rounds x duration seconds: 75 s by default.
EOF2
}

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source scripts/stages.sh

rounds=3
duration=5
heavy=1
light=20
cpu_ms=20
while [[ $# -gt 0 ]]; do
	case $1 in
	--rounds) rounds=${2:-}; shift 2 ;;
	--duration) duration=${2:-}; shift 2 ;;
	--heavy) heavy=${2:-}; shift 2 ;;
	--light) light=${2:-}; shift 2 ;;
	--cpu-ms) cpu_ms=${2:-}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
for value in "$rounds" "$duration" "$heavy" "$light" "$cpu_ms"; do
	[[ $value =~ ^[1-9][0-9]*$ ]] || die "every option takes a whole number above 0 (see --help)"
done
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

# name: stage and its flags; every one also gets --cpu-ms, --work-ms 0 and --quiet.
servers=(09-no-kitchen 10-no-kitchen 11-no-kitchen 09-kitchen 11-kitchen)
declare -A stage_of=(
	[09-no-kitchen]=09_loop_per_core [10-no-kitchen]=10_async [11-no-kitchen]=11_tokio
	[09-kitchen]=09_loop_per_core [11-kitchen]=11_tokio
)
declare -A flags_of=(
	[09-no-kitchen]="--loops 2 --cpu-threads 0"
	[10-no-kitchen]="--loops 2 --cpu-threads 0"
	[11-no-kitchen]="--workers 2 --cpu-threads 0"
	[09-kitchen]="--loops 2 --cpu-threads 2"
	[11-kitchen]="--workers 2 --cpu-threads 2"
)
declare -A url_of
for server in "${servers[@]}"; do
	# shellcheck disable=SC2086 # the flags are words
	start_stage "$server" "${stage_of[$server]}" --cpu-ms "$cpu_ms" --work-ms 0 --quiet \
		--max-conns 1000 ${flags_of[$server]}
	url_of[$server]=$stage_url
done

# A number from loadgen's one-line JSON, or from a stage's /stats.
json_number() { # key file
	sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$2" | head -n 1
}

# The requests each loop has served, from /stats: "a b" (empty without loops).
loop_requests() { # url
	curl -s --max-time 5 "${1}stats" | tr ',' '\n' |
		sed -n 's/^"loop_[0-9]*_requests":\([0-9]*\)$/\1/p' | tr '\n' ' '
}

printf '$ bench/heavy_client.sh --rounds %s --duration %s --heavy %s --light %s --cpu-ms %s\n' \
	"$rounds" "$duration" "$heavy" "$light" "$cpu_ms"
printf '%s (nproc), %s, Linux %s\n' "$(nproc) cores" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)"
printf 'each run: loadgen --keep-alive --clients %s --url .../ (heavy, %s ms of computing each)\n' \
	"$heavy" "$cpu_ms"
printf '     and, at the same time, loadgen --keep-alive --clients %s --url .../stats (light)\n' "$light"
printf 'no-kitchen: --cpu-threads 0, a request computes on the loop or worker that serves it\n\n'
printf '%-6s %-15s %10s %9s %9s %9s %9s %10s   %s\n' round server "light r/s" "p50 ms" \
	"p90 ms" "p99 ms" "max ms" "heavy r/s" "requests per loop (light + heavy)"

results=$workdir/results.tsv
: >"$results"
for ((round = 1; round <= rounds; round++)); do
	for server in "${servers[@]}"; do
		url=${url_of[$server]}
		read -r -a before <<<"$(loop_requests "$url")"
		"$loadgen" --keep-alive --clients "$heavy" --duration "$duration" --url "$url" \
			--no-live --no-server-stats --json >"$workdir/heavy.json" 2>/dev/null &
		heavy_pid=$!
		"$loadgen" --keep-alive --clients "$light" --duration "$duration" \
			--url "${url}stats" --no-live --no-server-stats --json >"$workdir/light.json" 2>/dev/null ||
			true
		wait "$heavy_pid" || true
		read -r -a after <<<"$(loop_requests "$url")"
		per_loop=""
		for i in "${!after[@]}"; do
			per_loop+="$((after[i] - ${before[i]:-0})) "
		done
		row=(
			"$(json_number rps "$workdir/light.json")"
			"$(json_number p50_ms "$workdir/light.json")"
			"$(json_number p90_ms "$workdir/light.json")"
			"$(json_number p99_ms "$workdir/light.json")"
			"$(json_number max_ms "$workdir/light.json")"
			"$(json_number rps "$workdir/heavy.json")"
		)
		printf '%-6s %-15s %10.0f %9.2f %9.2f %9.2f %9.2f %10.1f   %s\n' "$round" "$server" \
			"${row[0]:-0}" "${row[1]:-0}" "${row[2]:-0}" "${row[3]:-0}" "${row[4]:-0}" "${row[5]:-0}" \
			"${per_loop:--}"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$server" "${row[0]:-0}" "${row[1]:-0}" \
			"${row[2]:-0}" "${row[3]:-0}" "${row[4]:-0}" "${row[5]:-0}" >>"$results"
	done
done

printf '\nmedians over %s round(s)\n' "$rounds"
printf '%-15s %10s %9s %9s %9s %9s %10s\n' server "light r/s" "p50 ms" "p90 ms" "p99 ms" \
	"max ms" "heavy r/s"
awk -F'\t' '
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
	  for (c = 3; c <= 8; c++) col[$2, c] = col[$2, c] " " $c }
	END {
		for (k = 1; k <= n; k++) {
			s = order[k]
			printf "%-15s %10.0f %9.2f %9.2f %9.2f %9.2f %10.1f\n", s, median(col[s, 3]),
				median(col[s, 4]), median(col[s, 5]), median(col[s, 6]), median(col[s, 7]),
				median(col[s, 8])
		}
	}' "$results"
