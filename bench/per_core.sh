#!/usr/bin/env bash
# bench/per_core.sh: one core each, side by side: the event loop and the runtimes against
# nginx with one worker, the server pinned to core 0 and wrk to core 1.
#
# On the whole machine a server shares its cores with the load generator, and a server with
# more threads than another is not comparing like with like. Pinned, each server has exactly
# one core and wrk the other: the figures are per-core efficiency, the same question for
# nginx's worker, stage 07's loop, one loop of stage 09, one runtime of stage 10, one tokio
# worker of stage 11, and stage 11 on tokio's current-thread runtime (one thread, like one
# runtime of stage 10: the same serve on both runtimes, nothing to steal).
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF2'
Usage: bench/per_core.sh [--rounds N] [--duration S] [--clients LIST]

Starts nginx (1 worker, keep-alive), 07_keep_alive, 09_loop_per_core --loops 1,
10_async --loops 1, 11_tokio --workers 1 and 11_tokio --current-thread (shown as
11_current_thread) (all --work-ms 0 --quiet; one cook each),
pins each server (all its threads) to core 0 and runs wrk (-t 1, keep-alive) on core 1,
the servers taking turns in each round. Prints every run, then per server the median req/s
and p99, and the ratio to nginx of the same round, min-median-max.

  --rounds N      rounds [default: 3]
  --duration S    seconds per wrk run [default: 3]
  --clients LIST  wrk connections, e.g. 50,200 [default: 50,200]
  -h, --help      print this help

Needs wrk, nginx and taskset, and two cores; 127.0.0.1 only; every process started here is
stopped on exit. About 2 x 6 x rounds x duration seconds: 110 s by default.
EOF2
}

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source scripts/stages.sh
# shellcheck source-path=SCRIPTDIR source=nginx.sh
source bench/nginx.sh

rounds=3
duration=3
clients_list=50,200
while [[ $# -gt 0 ]]; do
	case $1 in
	--rounds) rounds=${2:-}; shift 2 ;;
	--duration) duration=${2:-}; shift 2 ;;
	--clients) clients_list=${2:-}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $duration =~ ^[1-9][0-9]*$ ]] ||
	die "--rounds and --duration take whole numbers above 0"
[[ $clients_list =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--clients takes a list like 50,200"
IFS=, read -r -a client_counts <<<"$clients_list"
command -v wrk >/dev/null || die "needs wrk (apt-get install -y wrk)"
command -v taskset >/dev/null || die "needs taskset (util-linux)"
[[ $(nproc) -ge 2 ]] || die "needs two cores: one for the server, one for wrk"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || die "needs nginx (apt-get install -y nginx)"

workdir=$(mktemp -d)
cleanup() {
	stop_nginx
	stop_started_processes
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every thread of a process, and of its children (nginx's workers), on core 0.
pin_to_core_0() { # pid
	local p
	for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
		taskset -a -c -p 0 "$p" >/dev/null
	done
}

build_stages_and_loadgen
locate_binaries

nginx_workers=1
start_nginx || die "nginx did not start"
pin_to_core_0 "$nginx_pid"
servers=(nginx+ka)
# name: the stage's flags; 11_current_thread is stage 11 on tokio's current-thread runtime.
declare -A flags_of=(
	[07_keep_alive]=""
	[09_loop_per_core]="--loops 1 --cpu-threads 1"
	[10_async]="--loops 1 --cpu-threads 1"
	[11_tokio]="--workers 1 --cpu-threads 1"
	[11_current_thread]="--current-thread --cpu-threads 1"
)
for name in 07_keep_alive 09_loop_per_core 10_async 11_tokio 11_current_thread; do
	stage=$name
	[[ $name == 11_current_thread ]] && stage=11_tokio
	# shellcheck disable=SC2086 # the flags are words
	start_stage "$name" "$stage" --work-ms 0 --quiet ${flags_of[$name]}
	pin_to_core_0 "$stage_pid"
	url_of[$name]=$stage_url
	servers+=("$name")
done

printf '$ bench/per_core.sh --rounds %s --duration %s --clients %s\n' "$rounds" "$duration" "$clients_list"
printf '%s (nproc), %s, Linux %s\n' "$(nproc) cores" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)"
printf 'servers on core 0 (nginx: 1 worker; 09 --loops 1; 10 --loops 1; 11 --workers 1;\n'
printf '11_current_thread: 11 --current-thread),\n'
printf 'wrk -t 1 -d %ss --latency on core 1, keep-alive, servers in turn within each round\n\n' "$duration"
printf '%-8s %-6s %-18s %12s %10s\n' clients round server req/s "p99 ms"

results=$workdir/results.tsv
: >"$results"
for clients in "${client_counts[@]}"; do
	for ((round = 1; round <= rounds; round++)); do
		for server in "${servers[@]}"; do
			taskset -c 1 wrk -t 1 -c "$clients" -d "${duration}s" --latency \
				"${url_of[$server]}" >"$workdir/wrk.out" 2>&1 || true
			rate=$(wrk_rps "$workdir/wrk.out")
			p99=$(wrk_ms "$workdir/wrk.out" 99)
			rate=$(printf '%.0f' "${rate:-0}")
			p99=$(printf '%.2f' "${p99:-0}")
			printf '%-8s %-6s %-18s %12s %10s\n' "$clients" "$round" "$server" "$rate" "$p99"
			printf '%s\t%s\t%s\t%s\t%s\n' "$clients" "$round" "$server" "$rate" "$p99" >>"$results"
		done
	done
done

printf '\nmedians over %s round(s); x nginx: req/s / nginx'\''s in the same round, min-median-max\n' "$rounds"
printf '%-8s %-18s %12s %10s %18s\n' clients server req/s "p99 ms" "x nginx"
awk -F'\t' '
	function sorted(list, a,   n, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n
	}
	function median(list,   a, n) { n = sorted(list, a); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	function spread(list,   a, n) { n = sorted(list, a); return sprintf("%.2f-%.2f-%.2f", a[1], median(list), a[n]) }
	{ rate[$1, $2, $3] = $4; rates[$1, $3] = rates[$1, $3] " " $4; p99[$1, $3] = p99[$1, $3] " " $5
	  if (!(($1, $3) in seen)) { seen[$1, $3] = 1; order[++n] = $1 SUBSEP $3 }
	  last_round[$1] = $2 }
	END {
		for (k = 1; k <= n; k++) {
			split(order[k], key, SUBSEP); c = key[1]; s = key[2]
			ratios = ""
			for (r = 1; r <= last_round[c]; r++)
				if (rate[c, r, "nginx+ka"] > 0) ratios = ratios " " rate[c, r, s] / rate[c, r, "nginx+ka"]
			x = s == "nginx+ka" ? "-" : spread(ratios)
			printf "%-8s %-18s %12.0f %10.2f %18s\n", c, s, median(rates[c, s]), median(p99[c, s]), x
		}
	}' "$results"
