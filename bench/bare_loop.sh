#!/usr/bin/env bash
# bench/bare_loop.sh: stages 06 and 07 against a bare mio loop and nginx, side by side.
#
# A single-threaded mio loop that only accepts, reads to a blank line, writes a fixed
# response and closes (bench/bare_loop.rs, a Cargo example) is the floor of what one thread
# on this machine can do per request. Measured in the same rounds as 06, 07 and nginx, it
# says how much of a gap to nginx is the stages' own code and how much the machine's.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: bench/bare_loop.sh [--rounds N] [--duration S] [--clients LIST]

Starts nginx (2 workers, return 200, one port without keep-alive and one with it), stages
06 and 07 (--work-ms 0 --quiet) and the bare loop (bench/bare_loop.rs, with and without
keep-alive, listening with the stages' backlog of 1024), then, for each client count and
round, loads each with wrk in turn: connection per request (-H 'Connection: close') for
nginx, 06 and the bare loop; keep-alive for nginx, 07 and the bare loop with keep-alive.
Prints every run, then per server the median req/s and p99 and the ratio to nginx of the
same round, min-median-max.

  --rounds N      rounds [default: 3]
  --duration S    seconds per wrk run [default: 5]
  --clients LIST  wrk connections, e.g. 50,200 [default: 50,200]
  -h, --help      print this help

Needs wrk and nginx (apt-get install -y wrk nginx); 127.0.0.1 only; every process started
here is stopped on exit. About 2 x 6 x rounds x duration seconds: 3 minutes by default.
EOF
}

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source scripts/stages.sh
# shellcheck source-path=SCRIPTDIR source=nginx.sh
source bench/nginx.sh

rounds=3
duration=5
clients_list=50,200
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--rounds | --duration | --clients)
		[[ $# -ge 2 ]] || die "$1 needs a value (see --help)"
		case $1 in
		--rounds) rounds=$2 ;;
		--duration) duration=$2 ;;
		--clients) clients_list=$2 ;;
		esac
		shift 2
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $duration =~ ^[1-9][0-9]*$ ]] ||
	die "--rounds and --duration take whole numbers above 0"
[[ $clients_list =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--clients takes a list like 50,200"
IFS=, read -r -a client_counts <<<"$clients_list"
command -v wrk >/dev/null || die "needs wrk (apt-get install -y wrk)"
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

note "== building 06, 07 and the bare loop (release)"
cargo build --release --quiet --workspace --bins
cargo build --release --quiet --example bare_loop
locate_binaries

# nginx as bench/compare.sh starts it, on two ports: without and with keep-alive.
start_nginx || die "nginx did not start"

start_stage 06 06_event_loop --work-ms 0 --quiet
url_of[06_event_loop]=$stage_url
start_stage 07 07_keep_alive --work-ms 0 --quiet
url_of[07_keep_alive+ka]=$stage_url
start_stage bare examples/bare_loop
url_of[bare_loop]=$stage_url
start_stage bare-ka examples/bare_loop --keep-alive
url_of[bare_loop+ka]=$stage_url

printf '$ bench/bare_loop.sh --rounds %s --duration %s --clients %s\n' "$rounds" "$duration" "$clients_list"
printf '%s (nproc), %s, Linux %s\n' "$(nproc) cores" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)"
printf 'wrk -t 2 -d %ss --latency, servers in turn within each round; +ka: keep-alive, else Connection: close\n\n' "$duration"
printf '%-8s %-6s %-18s %12s %10s\n' clients round server req/s "p99 ms"

results=$workdir/results.tsv
: >"$results"
for clients in "${client_counts[@]}"; do
	for ((round = 1; round <= rounds; round++)); do
		for server in nginx 06_event_loop bare_loop nginx+ka 07_keep_alive+ka bare_loop+ka; do
			header=(-H "Connection: close")
			[[ $server == *+ka ]] && header=()
			wrk -t 2 -c "$clients" -d "${duration}s" --latency "${header[@]+"${header[@]}"}" \
				"${url_of[$server]}" >"$workdir/wrk.out" 2>&1 || true
			# 0 for a run that printed nothing (wrk could not connect).
			rate=$(wrk_rps "$workdir/wrk.out")
			p99=$(wrk_ms "$workdir/wrk.out" 99)
			rate=$(printf '%.0f' "${rate:-0}")
			p99=$(printf '%.2f' "${p99:-0}")
			printf '%-8s %-6s %-18s %12s %10s\n' "$clients" "$round" "$server" "$rate" "$p99"
			printf '%s\t%s\t%s\t%s\t%s\n' "$clients" "$round" "$server" "$rate" "$p99" >>"$results"
		done
	done
done

printf '\nmedians over %s round(s); x nginx: req/s / nginx'\''s (or nginx+ka'\''s) in the same round, min-median-max\n' "$rounds"
printf '%-8s %-18s %12s %10s %18s\n' clients server req/s "p99 ms" "x nginx"
awk -F'\t' '
	function median(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function spread(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return sprintf("%.2f-%.2f-%.2f", a[1], median(list), a[n])
	}
	{ rate[$1, $2, $3] = $4; p99[$1, $3] = p99[$1, $3] " " $5; rates[$1, $3] = rates[$1, $3] " " $4
	  if (!(($1, $3) in seen)) { seen[$1, $3] = 1; order[++n] = $1 SUBSEP $3 }
	  if ($3 == "nginx") rounds[$1] = rounds[$1] " " $2 }
	END {
		for (k = 1; k <= n; k++) {
			split(order[k], key, SUBSEP); c = key[1]; s = key[2]
			base = s ~ /\+ka$/ ? "nginx+ka" : "nginx"
			ratios = ""
			split(rounds[c], rs, " ")
			for (r in rs) if ((c, rs[r], base) in rate && rate[c, rs[r], base] > 0 && (c, rs[r], s) in rate)
				ratios = ratios " " rate[c, rs[r], s] / rate[c, rs[r], base]
			x = s == base ? "-" : spread(ratios)
			printf "%-8s %-18s %12.0f %10.2f %18s\n", c, s, median(rates[c, s]), median(p99[c, s]), x
		}
	}' "$results"
