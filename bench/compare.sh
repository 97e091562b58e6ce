#!/usr/bin/env bash
# bench/compare.sh: every stage measured against nginx and against theory, in one run.
#
# Three measurements, each repeated over --rounds rounds with the servers taking turns
# (A B A B ...), so that a noisy neighbour on a shared machine hits every server alike:
#   1. connection-per-request throughput and latency, --work-ms 0, with wrk and with loadgen,
#      for every stage and for nginx started here on loopback;
#   2. efficiency with --work-ms 100: measured req/s over what Little's law allows;
#   3. threads and memory while 2000 connections are held open and send nothing.
# Ratios are printed as min-median-max over the rounds. Run with --help for the options.
set -euo pipefail
export LC_ALL=C # decimal points, not commas

# die, note and the stage helpers (find_stages, start_stage, stop_process...), shared with
# load_test.sh.
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source "$(dirname "$0")/../scripts/stages.sh"

usage() {
	cat <<'EOF'
Usage: bench/compare.sh [OPTIONS] [STAGE...] [-- STAGE FLAGS...]

Measures every stage against nginx and against theory in one run, the servers taking turns
(A B A B ...) over several rounds, and prints ratios as min-median-max over the rounds,
with the targets of issue 7 marked met or not met.

  1. throughput  connection per request, --work-ms 0 --quiet, at --clients (1, 50, 200):
                 req/s, p50 and p99 with wrk (-H 'Connection: close') and with loadgen,
                 for nginx (2 workers, return 200, no keep-alive) and every stage.
                 Ratios: stage / nginx, p99 / nginx's p99, loadgen / wrk.
  2. efficiency  --work-ms 100, 32 loadgen clients for --efficiency-duration seconds:
                 measured req/s / theory, theory = min(clients, limit) / work; the limit is
                 1 for 01, none for 02, --max-conns 16 for 03, --workers 16 (--queue 16)
                 for 04 and 05. The five stages are loaded at the same time (the work is a
                 sleep, so they do not compete for the CPU), restarted every round.
  3. held        --held connections that send nothing (loadgen --scenario idle), each stage
                 started with --backlog 4096: threads and RSS at rest, and the most seen
                 while every connection is established; RSS per held connection.

  STAGE...                 stages to run, by name or number prefix (01, 04_thread); default: all
  --rounds N               rounds of every measurement [default: 3]
  --quick                  a smoke run of about a minute: 1 round, 1 s runs, a 2 s
                           efficiency run, 200 held connections (explicit options still win)
  --sections LIST          any of throughput,efficiency,held [default: all three]
  --clients LIST           client counts for throughput, e.g. 50,200 [default: 1,50,200]
  --duration S             seconds per throughput run [default: 3]
  --efficiency-duration S  seconds per efficiency run; a 10 s run loses at most about 1% to
                           requests cut at its end [default: 10]
  --held N                 connections held open in section 3 [default: 2000]
  --tools LIST             wrk,loadgen or one of them [default: both]
  --no-nginx               do not start nginx
  --no-build               use the binaries already built
  --keep DIR               keep the raw results (TSV, JSON, wrk output, nginx.conf) in DIR
  -- FLAGS...              more flags for the stages in section 1 (e.g. -- --workers 2); each
                           stage gets only the flags its --help lists
  -h, --help               print this help

wrk is installed with apt-get if it is missing (Debian's wrk package; needs root), or the
wrk columns are skipped. nginx is not installed by this script (Debian's package also starts
a system nginx on port 80): without it the nginx rows and ratios are skipped; install it with
`apt-get install -y nginx`. All traffic stays on 127.0.0.1; every run is bounded in time;
every server started here is stopped on exit, nginx included.

A full default run takes about 7 minutes on 2 cores (a --quick one, about a minute).

Examples:
  bench/compare.sh                         everything, 3 rounds
  bench/compare.sh --quick                 a smoke run
  bench/compare.sh --sections throughput --clients 50,200 --rounds 5 01 04
EOF
}

# ---- options -------------------------------------------------------------------------------

original_args=("$@")
rounds=""
quick=0
sections="throughput,efficiency,held"
clients_list=""
duration=""
eff_duration=""
held=""
tools="wrk,loadgen"
use_nginx=1
build=1
keep=""
stages_wanted=()
user_flags=()

need_value() {
	[[ $# -ge 2 ]] || die "'$1' needs a value (see --help)"
}

whole_number() { # name value
	[[ $2 =~ ^[1-9][0-9]*$ ]] || die "'$1' expects a whole number above 0, not '$2'"
}

seconds() { # name value
	[[ $2 =~ ^[0-9]+([.][0-9]+)?$ && ! $2 =~ ^0+([.]0*)?$ ]] || die "'$1' expects seconds above 0, e.g. 3 or 2.5, not '$2'"
}

while [[ $# -gt 0 ]]; do
	arg=$1
	shift
	if [[ $arg == --*=* ]]; then
		set -- "${arg#*=}" "$@"
		arg=${arg%%=*}
	fi
	case $arg in
	-h | --help)
		usage
		exit 0
		;;
	--rounds | --held)
		need_value "$arg" "$@"
		whole_number "$arg" "$1"
		case $arg in
		--rounds) rounds=$1 ;;
		--held) held=$1 ;;
		esac
		shift
		;;
	--duration | --efficiency-duration)
		need_value "$arg" "$@"
		seconds "$arg" "$1"
		case $arg in
		--duration) duration=$1 ;;
		--efficiency-duration) eff_duration=$1 ;;
		esac
		shift
		;;
	--clients)
		need_value "$arg" "$@"
		[[ $1 =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--clients expects a list like 1,50,200, not '$1'"
		clients_list=$1
		shift
		;;
	--sections)
		need_value "$arg" "$@"
		[[ $1 =~ ^(throughput|efficiency|held)(,(throughput|efficiency|held))*$ ]] || die "--sections is a list of throughput, efficiency, held, not '$1'"
		sections=$1
		shift
		;;
	--tools)
		need_value "$arg" "$@"
		[[ $1 =~ ^(wrk|loadgen)(,(wrk|loadgen))?$ ]] || die "--tools is wrk, loadgen or wrk,loadgen, not '$1'"
		tools=$1
		shift
		;;
	--quick) quick=1 ;;
	--no-nginx) use_nginx=0 ;;
	--no-build) build=0 ;;
	--keep)
		need_value "$arg" "$@"
		keep=$1
		shift
		;;
	--)
		user_flags=("$@")
		break
		;;
	-*) die "unknown option '$arg' (see --help)" ;;
	*) stages_wanted+=("$arg") ;;
	esac
done

if [[ $quick == 1 ]]; then
	rounds=${rounds:-1}
	duration=${duration:-1}
	eff_duration=${eff_duration:-2}
	held=${held:-200}
fi
rounds=${rounds:-3}
duration=${duration:-3}
eff_duration=${eff_duration:-10}
held=${held:-2000}
clients_list=${clients_list:-1,50,200}
IFS=, read -r -a client_counts <<<"$clients_list"

has() { # list word: whether the comma-separated list holds the word
	[[ ,$1, == *,"$2",* ]]
}

# Section 2's choices: 32 clients against a limit of 16, so the limit, not the clients, sets
# the theory for 03-05, and twice as many clients as slots keeps every slot busy.
eff_work_ms=100
eff_clients=32
eff_limit=16
# Section 3: held connections are watched for this long once they are all connected.
held_seconds=3

cd "$(dirname "$0")/.."

# ---- stages and binaries -------------------------------------------------------------------

find_stages
pick_stages "${stages_wanted[@]+"${stages_wanted[@]}"}"
[[ ${#stages[@]} -gt 0 ]] || stages=("${all_stages[@]}")

[[ $build == 0 ]] || build_stages_and_loadgen
locate_binaries # sets bin_dir and loadgen
for stage in "${stages[@]}"; do
	[[ -x $bin_dir/$stage ]] || die "no $bin_dir/$stage; run without --no-build"
done

# ---- tools: wrk and nginx ------------------------------------------------------------------

use_wrk=0
if has "$tools" wrk && has "$sections" throughput; then
	if ! command -v wrk >/dev/null; then
		note "== wrk is not installed: installing Debian's wrk package with apt-get"
		if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
			apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; } ||
				note "   apt-get could not install wrk"
		else
			note "   (not root, or no apt-get: install wrk yourself, e.g. sudo apt-get install -y wrk)"
		fi
	fi
	if command -v wrk >/dev/null; then
		use_wrk=1
	else
		note "== no wrk: the wrk columns are skipped, loadgen alone measures"
	fi
fi
use_loadgen=0
has "$tools" loadgen && use_loadgen=1
if has "$sections" throughput && [[ $use_wrk == 0 && $use_loadgen == 0 ]]; then
	die "no tool left to measure throughput with (--tools $tools)"
fi

nginx_bin=""
if [[ $use_nginx == 1 ]] && has "$sections" throughput; then
	nginx_bin=$(command -v nginx || true)
	[[ -n $nginx_bin || ! -x /usr/sbin/nginx ]] || nginx_bin=/usr/sbin/nginx
	if [[ -z $nginx_bin ]]; then
		note "== nginx is not installed: the nginx rows and every 'x nginx' ratio are skipped"
		note "   (apt-get install -y nginx adds them; this script does not, since Debian's"
		note "   package also starts a system-wide nginx on port 80)"
	fi
fi

# Every held connection is a descriptor in loadgen and, once accepted, one in the server.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -Sn)
if [[ $fd_limit != unlimited ]] && ((fd_limit < held + 100)); then
	note "== ulimit -n is $fd_limit: holding $((fd_limit - 100)) connections instead of $held"
	held=$((fd_limit - 100))
fi
somaxconn=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo unknown)
held_backlog=4096

# ---- cleanup -------------------------------------------------------------------------------

workdir=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
nginx_pid=""

# nginx's workers are children of its master: TERM to the master stops them all; if the
# master has to be killed, its workers (found by their parent's pid) go with it.
stop_nginx() {
	[[ -n $nginx_pid ]] || return 0
	local workers
	workers=$(ps -o pid= --ppid "$nginx_pid" 2>/dev/null || true)
	stop_process "$nginx_pid"
	for p in $workers; do
		kill -KILL "$p" 2>/dev/null || true
	done
	nginx_pid=""
}

cleanup() {
	trap - EXIT INT TERM
	stop_nginx
	stop_started_processes
	if [[ -n $keep ]]; then
		mkdir -p "$keep" && cp -r "$workdir"/. "$keep"/ && note "raw results kept in $keep"
	fi
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- servers -------------------------------------------------------------------------------

declare -A url_of=()
declare -A pid_of=()

# A stage started under a name of its own (its output in $workdir/KEY.out), found later by it.
start_server() { # key stage flags...
	start_stage "$@"
	url_of[$1]=$stage_url
	pid_of[$1]=$stage_pid
}

stop_server() { # key
	stop_process "${pid_of[$1]}"
	unset "pid_of[$1]"
}

# A port nobody uses, below the ephemeral range so that no client socket can hold it.
pick_port() {
	local low high port hex
	read -r low high </proc/sys/net/ipv4/ip_local_port_range || low=32768
	high=$((low - 1))
	low=$((high > 22000 ? 20000 : 10000))
	while :; do
		port=$((low + RANDOM % (high - low)))
		printf -v hex ':%04X ' "$port"
		grep -qs -- "$hex" /proc/net/tcp /proc/net/tcp6 || break
	done
	printf '%s' "$port"
}

# Whether a server answers GET / with 200, asked once by loadgen.
answers() { # url
	"$loadgen" --url "$1" --requests 1 --connect-timeout-ms 300 --timeout-ms 2000 \
		--json --no-server-stats 2>/dev/null | grep -q '"ok":1,'
}

# nginx as issue 7 describes it: 2 workers, return 200 "Hello World\n", no keep-alive, no
# access log. Its listen backlog is 1024, the stages' default, so that the backlog is not a
# difference between the two (nginx's own default on Linux is 511).
start_nginx() {
	local prefix=$workdir/nginx port try i
	mkdir -p "$prefix/logs" "$prefix/tmp"
	for ((try = 0; try < 5; try++)); do
		port=$(pick_port)
		cat >"$prefix/nginx.conf" <<EOF
worker_processes 2;
daemon off;
master_process on;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=1024;
        location / {
            default_type text/plain;
            return 200 "Hello World\n";
        }
    }
}
EOF
		"$nginx_bin" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
			>"$prefix/stdout" 2>"$prefix/stderr" &
		nginx_pid=$!
		running_pids+=("$nginx_pid")
		for ((i = 0; i < 50; i++)); do
			kill -0 "$nginx_pid" 2>/dev/null || break
			if answers "http://127.0.0.1:$port/"; then
				url_of[nginx]=http://127.0.0.1:$port/
				pid_of[nginx]=$nginx_pid
				return 0
			fi
			sleep 0.1
		done
		stop_nginx
		grep -qs "Address already in use" "$prefix/stderr" "$prefix/logs/error.log" || break
	done
	note "== nginx did not start; its rows are skipped. Its words:"
	cat "$prefix/stderr" "$prefix/logs/error.log" >&2 2>/dev/null || true
	return 1
}

# ---- measuring -----------------------------------------------------------------------------

results=$workdir/results.tsv
: >"$results"

load1() {
	cut -d' ' -f1 /proc/loadavg
}

# The kernel's count of connections dropped because a listen backlog was full, machine-wide
# (other programs' listeners count too): each one is a client whose SYN is retransmitted
# after a second.
listen_overflows() {
	awk '$1 == "TcpExt:" && !names { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") col = i; names = 1; next }
		$1 == "TcpExt:" && names { print $col + 0; exit }' /proc/net/netstat 2>/dev/null || echo 0
}

# A value from loadgen's flat JSON object; empty for null or missing.
json_get() { # file key
	local value
	value=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1")
	value=${value#\"}
	value=${value%\"}
	[[ $value == null ]] && value=""
	printf '%s' "$value"
}

# wrk prints latencies as 420.00us, 3.71ms or 1.02s.
wrk_ms() { # file percentile, or Latency for the maximum
	awk -v p="$2" '($1 == p "%" || ($1 == p && p == "Latency")) && !done {
		done = 1; v = (p == "Latency") ? $4 : $2
		unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
		if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
		printf "%.3f", v }' "$1"
}

# One wrk run: a row "T round server clients wrk rps p50 p99 errors max overflows load".
run_wrk() { # round key clients
	local out=$workdir/wrk-$1-$2-$3.txt threads rps errors overflows
	threads=$(($3 < $(nproc) ? $3 : $(nproc)))
	overflows=$(listen_overflows)
	# --timeout 5s: a request stalled by a SYN retransmit (1 s, then 3 s) still counts in
	# the latency instead of disappearing as a wrk timeout.
	wrk -t"$threads" -c"$3" -d"${duration}s" --timeout 5s --latency \
		-H 'Connection: close' "${url_of[$2]}" >"$out" 2>&1 || true
	rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
	errors=$(awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); n = 0; for (i = 1; i <= NF; i++) n += $i; print n }
		/Non-2xx/ { print $NF }' "$out" | awk '{ s += $1 } END { print s + 0 }')
	printf 'T\t%s\t%s\t%s\twrk\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${rps:-0}" \
		"$(wrk_ms "$out" 50)" "$(wrk_ms "$out" 99)" "$errors" "$(wrk_ms "$out" Latency)" \
		"$(($(listen_overflows) - overflows))" "$(load1)" >>"$results"
}

# One loadgen run: the same row with tool loadgen.
run_loadgen() { # round key clients
	local json=$workdir/loadgen-$1-$2-$3.json overflows
	overflows=$(listen_overflows)
	"$loadgen" --url "${url_of[$2]}" --clients "$3" --duration "$duration" --json \
		--no-server-stats >"$json" 2>/dev/null || true
	printf 'T\t%s\t%s\t%s\tloadgen\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" \
		"$(json_get "$json" rps)" "$(json_get "$json" p50_ms)" "$(json_get "$json" p99_ms)" \
		"$(json_get "$json" failed)" "$(json_get "$json" max_ms)" \
		"$(($(listen_overflows) - overflows))" "$(load1)" >>"$results"
}

print_machine() {
	local cpu wrk_version="no wrk" nginx_version="no nginx"
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	if [[ $use_wrk == 1 ]]; then
		wrk_version=$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)
	fi
	if [[ -n $nginx_bin ]]; then
		nginx_version=$("$nginx_bin" -v 2>&1 | sed 's/.*: //')
	fi
	printf '%s cores (nproc), %s, Linux %s\n' "$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)"
	printf '%s; %s; %s\n' "$(rustc --version 2>/dev/null || echo 'rustc ?')" "$wrk_version" "$nginx_version"
	printf 'load average at the start: %s (1, 5, 15 min); somaxconn %s; ulimit -n %s\n' \
		"$(cut -d' ' -f1-3 /proc/loadavg)" "$somaxconn" "$fd_limit"
}

note "== the machine"
machine=$(print_machine)
note "$machine"
started_at=$(date +%s)

# ---- 1. throughput -------------------------------------------------------------------------

servers=()
if has "$sections" throughput; then
	note ""
	note "== 1. connection per request, --work-ms 0: ${#client_counts[@]} client counts x $rounds rounds x ${duration} s"
	if [[ -n $nginx_bin ]] && start_nginx; then
		servers+=(nginx)
		note "   nginx ${url_of[nginx]} (2 workers, backlog 1024; conf in the --keep directory)"
	fi
	for stage in "${stages[@]}"; do
		stage_flags=()
		add_flags_for "$stage" loud "${user_flags[@]+"${user_flags[@]}"}"
		start_server "$stage" "$stage" --work-ms 0 --quiet --drain-ms 1000 \
			"${stage_flags[@]+"${stage_flags[@]}"}"
		servers+=("$stage")
	done
	# A short warm-up, so that no server's first round pays for its page faults.
	for key in "${servers[@]}"; do
		"$loadgen" --url "${url_of[$key]}" --clients 50 --duration 0.5 --json --no-server-stats \
			>/dev/null 2>&1 || true
	done
	for ((round = 1; round <= rounds; round++)); do
		for clients in "${client_counts[@]}"; do
			note "   round $round/$rounds, $clients client(s): ${servers[*]}  (load $(load1))"
			for key in "${servers[@]}"; do
				# The tools take turns too, the first one alternating from round to round.
				if ((round % 2 == 1)); then
					[[ $use_wrk == 0 ]] || run_wrk "$round" "$key" "$clients"
					[[ $use_loadgen == 0 ]] || run_loadgen "$round" "$key" "$clients"
				else
					[[ $use_loadgen == 0 ]] || run_loadgen "$round" "$key" "$clients"
					[[ $use_wrk == 0 ]] || run_wrk "$round" "$key" "$clients"
				fi
			done
		done
	done
	stop_nginx
	for stage in "${stages[@]}"; do
		stop_server "$stage"
	done
fi

# ---- 2. efficiency -------------------------------------------------------------------------

limit_flags() { # stage: the flags that set its limit to eff_limit, and the limit ("" = none)
	case $1 in
	01_*) printf '1' ;;
	02_*) printf '' ;;
	*)
		if "$bin_dir/$1" --help | grep -q -- '--workers'; then
			printf '%s --workers %s --queue %s' "$eff_limit" "$eff_limit" "$eff_limit"
		elif "$bin_dir/$1" --help | grep -q -- '--max-conns'; then
			printf '%s --max-conns %s' "$eff_limit" "$eff_limit"
		fi
		;;
	esac
}

if has "$sections" efficiency; then
	note ""
	note "== 2. efficiency, --work-ms $eff_work_ms: $eff_clients clients, $rounds rounds x ${eff_duration} s, all stages at once"
	declare -A limit_of=()
	declare -A limit_flags_of=()
	for stage in "${stages[@]}"; do
		read -r limit extra <<<"$(limit_flags "$stage")" || true
		limit_of[$stage]=${limit:-}
		limit_flags_of[$stage]=${extra:-}
	done
	for ((round = 1; round <= rounds; round++)); do
		note "   round $round/$rounds  (load $(load1))"
		# Fresh stages every round: the clients still waiting when a run ends leave their
		# requests in the backlog, and stage 01 would spend the next run's first 3 s serving
		# them (31 x 100 ms) to nobody.
		for stage in "${stages[@]}"; do
			# shellcheck disable=SC2086 # a list of flags
			start_server "eff-$stage" "$stage" --work-ms "$eff_work_ms" --quiet --drain-ms 500 \
				${limit_flags_of[$stage]}
		done
		eff_pids=()
		for stage in "${stages[@]}"; do
			"$loadgen" --url "${url_of[eff-$stage]}" --clients "$eff_clients" \
				--duration "$eff_duration" --json --no-server-stats \
				>"$workdir/eff-$round-$stage.json" 2>/dev/null &
			eff_pids+=($!)
			running_pids+=($!)
		done
		for p in "${eff_pids[@]}"; do
			wait "$p" || true
			forget_pid "$p"
		done
		for stage in "${stages[@]}"; do
			json=$workdir/eff-$round-$stage.json
			limit=${limit_of[$stage]:-$eff_clients}
			slots=$((limit < eff_clients ? limit : eff_clients))
			theory=$(awk -v s="$slots" -v w="$eff_work_ms" 'BEGIN { printf "%.3f", s * 1000 / w }')
			printf 'E\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$stage" "$eff_clients" \
				"${limit_of[$stage]:-none}" "$(json_get "$json" rps)" "$theory" \
				"$(json_get "$json" failed)" "$(load1)" >>"$results"
			stop_server "eff-$stage"
		done
	done
fi

# ---- 3. held connections -------------------------------------------------------------------

proc_field() { # pid field: a number from /proc/PID/status (kB for memory)
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# Established connections whose server side is on PORT: accepted or still in the backlog.
established() { # port
	if command -v ss >/dev/null; then
		ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
	else
		local hex
		printf -v hex ':%04X' "$1"
		awk -v p="$hex" '$4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }' \
			/proc/net/tcp /proc/net/tcp6
	fi
}

# While loadgen runs: the server's most threads and RSS seen while every held connection is
# established (not while they are being opened or closed). Prints "threads rss_kb samples".
watch_held() { # server_pid port held loadgen_pid
	local threads=0 rss=0 samples=0 t r
	while kill -0 "$4" 2>/dev/null; do
		if (($(established "$2") >= $3)); then
			t=$(proc_field "$1" Threads)
			r=$(proc_field "$1" VmRSS)
			((${t:-0} <= threads)) || threads=$t
			((${r:-0} <= rss)) || rss=$r
			samples=$((samples + 1))
		fi
		sleep 0.1
	done
	printf '%s %s %s' "$threads" "$rss" "$samples"
}

if has "$sections" held; then
	note ""
	note "== 3. $held connections held open, stages started with --backlog $held_backlog: $rounds rounds"
	((somaxconn == 0 || somaxconn >= held)) 2>/dev/null ||
		note "   (net.core.somaxconn is $somaxconn: backlogs are capped below $held; some connects will wait)"
	for ((round = 1; round <= rounds; round++)); do
		note "   round $round/$rounds  (load $(load1))"
		for stage in "${stages[@]}"; do
			start_server "held-$stage" "$stage" --work-ms 0 --quiet --drain-ms 500 \
				--backlog "$held_backlog"
			pid=${pid_of[held-$stage]}
			sleep 0.2
			threads_rest=$(proc_field "$pid" Threads)
			rss_rest=$(proc_field "$pid" VmRSS)
			json=$workdir/held-$round-$stage.json
			"$loadgen" --url "${url_of[held-$stage]}" --scenario idle --idle "$held" --clients 1 \
				--duration "$held_seconds" --pid "$pid" --json --no-server-stats \
				>"$json" 2>/dev/null &
			loadgen_pid=$!
			running_pids+=("$loadgen_pid")
			port=${url_of[held-$stage]##*:}
			read -r threads_held rss_held samples <<<"$(watch_held "$pid" "${port%/}" "$held" "$loadgen_pid")"
			wait "$loadgen_pid" || true
			forget_pid "$loadgen_pid"
			((samples > 0)) || note "   ($stage: never saw all $held connections established at once)"
			# Columns: H round stage connects threads_rest threads_held rss_rest_kb
			# rss_held_kb loadgen's peak threads, loadgen's peak RSS (VmHWM), samples, load.
			printf 'H\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$stage" \
				"$(json_get "$json" idle_connects)" "$threads_rest" "$threads_held" "$rss_rest" \
				"$rss_held" "$(json_get "$json" peak_threads)" "$(json_get "$json" peak_rss_kb)" \
				"$samples" "$(load1)" >>"$results"
			stop_server "held-$stage"
		done
	done
fi

# ---- the report ----------------------------------------------------------------------------

# min-median-max of the numbers on stdin, formatted with the printf format given.
spread() { # format
	sort -g | awk -v f="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { printf "n/a"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		if (NR == 1) printf f, v[1]; else printf f "-" f "-" f, v[1], m, v[NR] }'
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print ""; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Values of column N of the T rows for a server, clients and tool, one per round.
t_values() { # key clients tool column
	awk -F'\t' -v k="$1" -v c="$2" -v t="$3" -v n="$4" \
		'$1 == "T" && $3 == k && $4 == c && $5 == t && $n != "" { print $2 "\t" $n }' "$results"
}

# Per-round ratio of column N of server A over server B (same clients, same tool).
t_ratios() { # keyA keyB clients tool column
	join -t $'\t' <(t_values "$1" "$3" "$4" "$5" | sort) <(t_values "$2" "$3" "$4" "$5" | sort) |
		awk -F'\t' '$3 > 0 { printf "%.4f\n", $2 / $3 }'
}

# Per-round loadgen / wrk for a server.
tool_ratios() { # key clients
	join -t $'\t' <(t_values "$1" "$2" loadgen 6 | sort) <(t_values "$1" "$2" wrk 6 | sort) |
		awk -F'\t' '$3 > 0 { printf "%.4f\n", $2 / $3 }'
}

verdicts=()
verdict() { # median threshold ge|le|lt description
	local ok
	if [[ -z $1 ]]; then
		verdicts+=("n/a      $4")
		return
	fi
	ok=$(awk -v m="$1" -v t="$2" -v op="$3" 'BEGIN {
		met = (op == "ge") ? m >= t : (op == "lt") ? m < t : m <= t
		print met ? "met" : "NOT met" }')
	verdicts+=("$(printf '%-8s %s (median %s)' "$ok" "$4" "$(printf '%.3g' "$1")")")
}

stage_rps_target() { # stage: the x nginx target of issue 7
	case $1 in
	01_*) printf '1.15' ;;
	02_* | 03_*) printf '0.5' ;;
	04_* | 05_*) printf '1.1' ;;
	esac
}

{
	echo
	echo "bench/compare.sh: every stage against nginx and against theory"
	echo "$machine"
	printf 'command: bench/compare.sh'
	if ((${#original_args[@]})); then
		printf ' %q' "${original_args[@]}"
	fi
	echo

	if has "$sections" throughput && [[ -s $results ]]; then
		for tool in wrk loadgen; do
			[[ $tool == wrk && $use_wrk == 0 ]] && continue
			[[ $tool == loadgen && $use_loadgen == 0 ]] && continue
			echo
			echo "1. connection per request, --work-ms 0, $tool: medians over $rounds round(s) of ${duration} s; ratios min-median-max;"
			echo "   max ms: the slowest request of all rounds; overflows: the kernel's ListenOverflows during the runs (machine-wide)"
			printf '%-8s %-20s %9s %16s %8s %8s %16s %8s %6s %9s\n' clients server "req/s" "x nginx" "p50 ms" "p99 ms" "p99 / nginx p99" "max ms" errors overflows
			for clients in "${client_counts[@]}"; do
				for key in "${servers[@]}"; do
					rps=$(t_values "$key" "$clients" "$tool" 6 | cut -f2 | median)
					p50=$(t_values "$key" "$clients" "$tool" 7 | cut -f2 | median)
					p99=$(t_values "$key" "$clients" "$tool" 8 | cut -f2 | median)
					errs=$(t_values "$key" "$clients" "$tool" 9 | cut -f2 | awk '{ s += $1 } END { print s + 0 }')
					max=$(t_values "$key" "$clients" "$tool" 10 | cut -f2 | sort -g | tail -n 1)
					overflows=$(t_values "$key" "$clients" "$tool" 11 | cut -f2 | awk '{ s += $1 } END { print s + 0 }')
					x=-
					xp=-
					if [[ $key != nginx && " ${servers[*]} " == *" nginx "* ]]; then
						x=$(t_ratios "$key" nginx "$clients" "$tool" 6 | spread '%.2f')
						xp=$(t_ratios "$key" nginx "$clients" "$tool" 8 | spread '%.2f')
					fi
					printf '%-8s %-20s %9.0f %16s %8.3f %8.2f %16s %8.1f %6s %9s\n' "$clients" "$key" \
						"${rps:-0}" "$x" "${p50:-0}" "${p99:-0}" "$xp" "${max:-0}" "$errs" "$overflows"
				done
			done
		done
		if [[ $use_wrk == 1 && $use_loadgen == 1 ]]; then
			echo
			echo "1b. loadgen / wrk, req/s against the same server in the same round (min-median-max)"
			printf '%-20s' server
			for clients in "${client_counts[@]}"; do
				printf ' %20s' "$clients client(s)"
			done
			echo
			for key in "${servers[@]}"; do
				printf '%-20s' "$key"
				for clients in "${client_counts[@]}"; do
					printf ' %20s' "$(tool_ratios "$key" "$clients" | spread '%.2f')"
				done
				echo
			done
		fi
		# The targets, judged on wrk's figures when wrk ran (loadgen's otherwise).
		judge=wrk
		[[ $use_wrk == 1 ]] || judge=loadgen
		if [[ " ${servers[*]} " == *" nginx "* ]]; then
			for clients in 50 200; do
				has "$clients_list" "$clients" || continue
				for key in "${servers[@]}"; do
					[[ $key == nginx ]] && continue
					target=$(stage_rps_target "$key")
					[[ -n $target ]] || continue
					verdict "$(t_ratios "$key" nginx "$clients" "$judge" 6 | median)" "$target" ge \
						"$key >= $target x nginx's req/s at $clients clients ($judge)"
				done
			done
			if has "$clients_list" 200; then
				for key in "${servers[@]}"; do
					case $key in 01_* | 03_* | 04_* | 05_*) ;; *) continue ;; esac
					verdict "$(t_ratios "$key" nginx 200 "$judge" 8 | median)" 1 le \
						"$key p99 <= nginx's p99 at 200 clients ($judge)"
					# A SYN dropped by a full backlog is retransmitted after a second.
					verdict "$(t_values "$key" 200 "$judge" 10 | cut -f2 | sort -g | tail -n 1)" 1000 le \
						"$key no backlog stall at 200 clients: slowest request < 1 s ($judge, max over rounds)"
				done
			fi
		fi
		if [[ $use_wrk == 1 && $use_loadgen == 1 ]]; then
			for clients in "${client_counts[@]}"; do
				for key in "${servers[@]}"; do
					verdict "$(tool_ratios "$key" "$clients" | median)" 0.8 ge \
						"loadgen >= 0.8 x wrk against $key at $clients client(s)"
				done
			done
		fi
	fi

	if has "$sections" efficiency; then
		echo
		echo "2. efficiency, --work-ms $eff_work_ms, $eff_clients clients, ${eff_duration} s per run: measured / theory (min-median-max over $rounds round(s))"
		printf '%-20s %7s %12s %12s %18s %7s\n' stage limit "theory/s" "req/s" "measured/theory" errors
		for stage in "${stages[@]}"; do
			rows=$(awk -F'\t' -v s="$stage" '$1 == "E" && $3 == s' "$results")
			[[ -n $rows ]] || continue
			limit=$(cut -f5 <<<"$rows" | head -n 1)
			theory=$(cut -f7 <<<"$rows" | head -n 1)
			rps=$(cut -f6 <<<"$rows" | median)
			ratio=$(awk -F'\t' '$7 > 0 { printf "%.4f\n", $6 / $7 }' <<<"$rows")
			errs=$(cut -f8 <<<"$rows" | awk '{ s += $1 } END { print s + 0 }')
			printf '%-20s %7s %12.1f %12.1f %18s %7s\n' "$stage" "$limit" "$theory" "${rps:-0}" \
				"$(spread '%.3f' <<<"$ratio")" "$errs"
			verdict "$(median <<<"$ratio")" 0.98 ge "$stage efficiency >= 0.98 with ${eff_work_ms} ms of work over ${eff_duration} s"
		done
	fi

	if has "$sections" held; then
		echo
		echo "3. $held connections held open (loadgen --scenario idle), stages with --backlog $held_backlog (min-median-max over $rounds round(s));"
		echo "   'held': the most seen while all $held were established; 'peak': loadgen's peak, opening and closing included"
		printf '%-20s %6s %10s %12s %12s %14s %14s %14s\n' stage held "threads" "threads held" "threads peak" "RSS held MiB" "peak RSS MiB" "KiB / conn"
		printf '%-20s %6s %10s\n' "" "" "at rest"
		for stage in "${stages[@]}"; do
			rows=$(awk -F'\t' -v s="$stage" '$1 == "H" && $3 == s && $11 > 0' "$results")
			[[ -n $rows ]] || continue
			connects=$(cut -f4 <<<"$rows" | median)
			rest=$(cut -f5 <<<"$rows" | spread '%.0f')
			during=$(cut -f6 <<<"$rows" | spread '%.0f')
			peak=$(cut -f9 <<<"$rows" | spread '%.0f')
			rss=$(awk -F'\t' '{ printf "%.3f\n", $8 / 1024 }' <<<"$rows" | spread '%.2f')
			hwm=$(awk -F'\t' '$10 != "" { printf "%.3f\n", $10 / 1024 }' <<<"$rows" | spread '%.2f')
			per=$(awk -F'\t' '$4 > 0 { printf "%.3f\n", ($8 - $7) / $4 }' <<<"$rows")
			printf '%-20s %6s %10s %12s %12s %14s %14s %14s\n' "$stage" "${connects:-0}" "$rest" \
				"$during" "$peak" "$rss" "$hwm" "$(spread '%.1f' <<<"$per")"
			case $stage in
			02_*)
				verdict "$(median <<<"$per")" 16 lt "$stage < 16 KiB of RSS per held connection"
				;;
			01_*) ;;
			*)
				# Constant: while the connections are held, the threads at rest plus at most
				# the stage's limit: 03's --max-conns (4) connection threads; 04 and 05 start
				# their workers before the first client.
				allowed=0
				[[ $stage != 03_* ]] || allowed=4
				growth=$(awk -F'\t' '{ print $6 - $5 }' <<<"$rows" | sort -g | tail -n 1)
				verdict "${growth:-}" "$allowed" le "$stage threads while held <= at rest + $allowed (constant, whatever the connections; worst round)"
				verdict "$(awk -F'\t' '$10 != "" { print $10 / 1024 }' <<<"$rows" | median)" 5 lt "$stage < 5 MiB peak RSS (VmHWM)"
				;;
			esac
		done
	fi

	echo
	echo "targets of issue 7 (medians; met / NOT met)"
	for line in "${verdicts[@]+"${verdicts[@]}"}"; do
		echo "  $line"
	done
	printf 'load average at the end: %s; the run took %s s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(($(date +%s) - started_at))"
	awk -F'\t' '$1 == "T" || $1 == "E" { print $NF }' "$results" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) printf "1-minute load average during the measurements: %s to %s\n", v[1], v[NR] }'
}
