#!/usr/bin/env bash
# bench/compare.sh: every stage measured against nginx and against theory, in one run.
#
# Five measurements, each repeated over --rounds rounds with the servers taking turns
# (A B A B ...), so that a noisy neighbour on a shared machine hits every server alike:
#   1. connection-per-request throughput and latency, --work-ms 0, with wrk and with loadgen,
#      for every stage and for nginx started here on loopback;
#   1c. the same with keep-alive on (nginx with keep-alive, and every stage that keeps
#      connections open), in the same rounds as 1;
#   2. efficiency with --work-ms 100: measured req/s over what Little's law allows, at 32
#      clients against a limit of 16, and (2b) at 1000 clients against each design's limit;
#   3. threads and memory while 2000 and 10 000 connections are held open and send nothing,
#      and how fast a normal request is answered meanwhile;
#   4. computing: --cpu-ms 5 at 20 clients, measured req/s over what the cores allow
#      (cores / cpu-ms), and how long a client asking /stats meanwhile waits.
# Ratios are printed as min-median-max over the rounds. Run with --help for the options.
set -euo pipefail
export LC_ALL=C # decimal points, not commas

# die, note and the stage helpers (find_stages, start_stage, stop_process...), shared with
# load_test.sh.
# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source "$(dirname "$0")/../scripts/stages.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
source "$(dirname "$0")/nginx.sh"

usage() {
	cat <<'EOF'
Usage: bench/compare.sh [OPTIONS] [STAGE...] [-- STAGE FLAGS...]

Measures every stage against nginx and against theory in one run, the servers taking turns
(A B A B ...) over several rounds, and prints ratios as min-median-max over the rounds,
with the targets of issues 7 (stages 01-05), 12 (stage 06), 13 (stage 07) and 19 (stage 08)
each marked met or not met.

  1. throughput  connection per request, --work-ms 0 --quiet, at --clients (1, 50, 200):
                 req/s, p50 and p99 with wrk (-H 'Connection: close') and with loadgen,
                 for nginx (2 workers, or with 09 as many as its --loops; return
                 200, no keep-alive) and every stage.
                 Ratios: stage / nginx, p99 / nginx's p99, loadgen / wrk.
  1c. keepalive  the same with keep-alive on, at --ka-clients (50, 200), in the same rounds
                 as 1: wrk without 'Connection: close' and loadgen --keep-alive, for nginx
                 with keep-alive (keepalive_timeout 65s, keepalive_requests 1000000) and
                 every stage that keeps connections (its --help lists --keep-alive-ms: 07,
                 08).
                 Ratios: stage / nginx with keep-alive, and keep-alive / connection per
                 request on the same server (its section-1 run in the same round).
  1e.            with stages 07 and 08 both measured in 1 or 1c: 08 / 07 in the same
                 round, both ways (08 is 07 with a kitchen, idle when nothing computes).
                 With stage 09 in 1 or 1c, the floor of a loop per core takes its turns
                 there too: bench/bare_loop.rs with --threads as many as 09's --loops (the
                 number of cores, or -- --loops N), a key of its own (bare_N_threads, and
                 bare_N_threads+ka with keep-alive), so its ratio to nginx sits beside 09's.
  2. efficiency  --work-ms 100, 32 loadgen clients for --efficiency-duration seconds:
                 measured req/s / theory, theory = min(clients, limit) / work; the limit is
                 1 for 01, none for 02, --max-conns 16 for 03 and 06-08, --workers 16
                 (--queue 16) for 04 and 05. The stages are loaded at the same time (the
                 work is a sleep, so they do not compete for the CPU), restarted every round.
     2b.         1000 clients, --work-ms 100, each stage with its default limit, for
                 --crowd-duration seconds: the event loops (06-08: --max-conns 10000,
                 theory 1000 / 0.1 s = 10 000 req/s) with wrk (-c 1000) and with loadgen,
                 one after the other; stage 04 (4 workers, theory 40 req/s) with loadgen
                 alongside the first of them.
  3. held        --held connections (2000 and 10 000) held open by loadgen --scenario held
                 (opened at 5000 a second, then polled by one thread; for stages that keep
                 connections, --keep-alive: each makes one request first, then is idle),
                 while one normal client makes requests; stages started with --backlog
                 4096 and deadlines of 60 s (so that the header and keep-alive deadlines cut
                 none of them). Threads and RSS at rest (after one request), and the most
                 seen once every connection is established; RSS per held connection; the
                 normal client's p99 and slowest request, and above the backlog the same
                 client alone just before (no connection held). Counts above the backlog
                 (4096) only for the stages that accept without a small limit: 06-08
                 (with --max-conns N + 1000, room for the normal client), and 02 up to
                 --max-threads.
  4. cpu         --work-ms 0 --cpu-ms (5) --quiet, --cpu-clients (20) loadgen clients for
                 --cpu-duration seconds, connection per request, every stage whose --help
                 lists --cpu-ms; meanwhile a probe (loadgen --probe-path /stats) asks for
                 /stats every 100 ms, a request that needs no work. Ratios: req/s over theory,
                 theory = cores / cpu-ms (the most that computing on every core allows:
                 2 / 5 ms = 400 req/s on 2 cores), and stage / 07. The probe's p50 and p99
                 show whether computing stalls everyone (07 computes on its event loop, 08
                 hands it to its kitchen's threads).

  STAGE...                 stages to run, by name or number prefix (01, 04_thread); default: all
  --rounds N               rounds of every measurement [default: 3]
  --quick                  a smoke run of about two minutes: 1 round, 1 s runs, 2 s
                           efficiency and cpu runs, 200 and 10000 held connections held
                           for 1 s
                           (explicit options still win)
  --sections LIST          any of throughput,keepalive,efficiency,held,cpu [default: all five]
  --clients LIST           client counts for throughput, e.g. 50,200 [default: 1,50,200]
  --ka-clients LIST        client counts for keepalive [default: 50,200]
  --duration S             seconds per throughput and keepalive run [default: 3]
  --efficiency-duration S  seconds per efficiency run of section 2; a 10 s run loses at most
                           about 1% to requests cut at its end [default: 10]
  --crowd-duration S       seconds per run of section 2b; a 5 s run loses at most about 2%
                           [default: 5]
  --held LIST              connections held open in section 3, e.g. 2000,10000
                           [default: 2000,10000]
  --cpu-ms MS              computing per request in section 4 [default: 5]
  --cpu-clients N          clients in section 4; enough to keep every core computing
                           [default: 20]
  --cpu-duration S         seconds per run of section 4; 5 s gives the probe 50 answers
                           [default: 5]
  --max-threads N          stage 02 starts a thread per held connection: held counts above
                           N are skipped for it, since kernel.pid_max counts threads machine-
                           wide (32768 here) and every process on the machine shares it
                           [default: 5000]
  --tools LIST             wrk,loadgen or one of them [default: both]
  --no-nginx               do not start nginx
  --no-build               use the binaries already built
  --keep DIR               keep the raw results (TSV, JSON, wrk output, nginx.conf) in DIR
  -- FLAGS...              more flags for the stages in sections 1 and 1c (e.g. -- --workers
                           2); each stage gets only the flags its --help lists
  -h, --help               print this help

wrk is installed with apt-get if it is missing (Debian's wrk package; needs root), or the
wrk columns are skipped. nginx is not installed by this script (Debian's package also starts
a system nginx on port 80): without it the nginx rows and ratios are skipped; install it with
`apt-get install -y nginx`. All traffic stays on 127.0.0.1; every run is bounded in time;
every server started here is stopped on exit, nginx included. Holding 10 000 connections
needs a descriptor limit above 10 100 (the script raises its soft limit to the hard one).

A full default run takes about 15 minutes on 2 cores (a --quick one, about 2 minutes).

Examples:
  bench/compare.sh                         everything, 3 rounds
  bench/compare.sh --quick                 a smoke run
  bench/compare.sh --sections throughput --clients 50,200 --rounds 5 01 04
  bench/compare.sh --sections keepalive 07
  bench/compare.sh --sections held --held 10000 06 07
  bench/compare.sh --sections cpu 07 08    computing on the loop, or in a kitchen
EOF
}

# ---- options -------------------------------------------------------------------------------

original_args=("$@")
rounds=""
quick=0
sections="throughput,keepalive,efficiency,held,cpu"
clients_list=""
ka_clients_list=""
duration=""
eff_duration=""
crowd_duration=""
held_list=""
cpu_ms=5
cpu_clients=20
cpu_duration=""
max_threads=5000
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

number_list() { # name value
	[[ $2 =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "'$1' expects a list like 50,200, not '$2'"
}

seconds() { # name value
	[[ $2 =~ ^[0-9]+([.][0-9]+)?$ && ! $2 =~ ^0+([.]0*)?$ ]] || die "'$1' expects seconds above 0, e.g. 3 or 2.5, not '$2'"
}

section_names='throughput|keepalive|efficiency|held|cpu'
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
	--rounds | --max-threads | --cpu-ms | --cpu-clients)
		need_value "$arg" "$@"
		whole_number "$arg" "$1"
		case $arg in
		--rounds) rounds=$1 ;;
		--max-threads) max_threads=$1 ;;
		--cpu-ms) cpu_ms=$1 ;;
		--cpu-clients) cpu_clients=$1 ;;
		esac
		shift
		;;
	--duration | --efficiency-duration | --crowd-duration | --cpu-duration)
		need_value "$arg" "$@"
		seconds "$arg" "$1"
		case $arg in
		--duration) duration=$1 ;;
		--efficiency-duration) eff_duration=$1 ;;
		--crowd-duration) crowd_duration=$1 ;;
		--cpu-duration) cpu_duration=$1 ;;
		esac
		shift
		;;
	--clients | --ka-clients | --held)
		need_value "$arg" "$@"
		number_list "$arg" "$1"
		case $arg in
		--clients) clients_list=$1 ;;
		--ka-clients) ka_clients_list=$1 ;;
		--held) held_list=$1 ;;
		esac
		shift
		;;
	--sections)
		need_value "$arg" "$@"
		[[ $1 =~ ^($section_names)(,($section_names))*$ ]] || die "--sections is a list of throughput, keepalive, efficiency, held, cpu, not '$1'"
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

# Section 3: held connections are watched for this long once they are all open (the normal
# client makes its requests meanwhile).
held_seconds=3
if [[ $quick == 1 ]]; then
	rounds=${rounds:-1}
	duration=${duration:-1}
	eff_duration=${eff_duration:-2}
	crowd_duration=${crowd_duration:-2}
	cpu_duration=${cpu_duration:-2}
	held_list=${held_list:-200,10000}
	held_seconds=1
fi
rounds=${rounds:-3}
duration=${duration:-3}
eff_duration=${eff_duration:-10}
crowd_duration=${crowd_duration:-5}
cpu_duration=${cpu_duration:-5}
held_list=${held_list:-2000,10000}
clients_list=${clients_list:-1,50,200}
ka_clients_list=${ka_clients_list:-50,200}
IFS=, read -r -a client_counts <<<"$clients_list"
IFS=, read -r -a ka_client_counts <<<"$ka_clients_list"
IFS=, read -r -a held_counts <<<"$held_list"

has() { # list word: whether the comma-separated list holds the word
	[[ ,$1, == *,"$2",* ]]
}

# Section 2's choices: 32 clients against a limit of 16, so the limit, not the clients, sets
# the theory for 03-07, and twice as many clients as slots keeps every slot busy.
eff_work_ms=100
eff_clients=32
eff_limit=16
# Section 2b: as many clients as issue 12 names, far more than a thread design's limit.
crowd_clients=1000
# Section 3: held connections are opened at this rate (a thread-per-connection stage starts
# a thread in 40-70 us, so it keeps up; the backlog takes the rest); a connect that the
# backlog cannot take fails after this long (the kernel would retry its SYN after 1 s).
held_rate=5000
held_connect_ms=1000
# ... and no deadline of a stage may cut a held connection within the run.
held_deadline_ms=60000

# Relative to where the script was called from, not to the checkout.
keep=$(absolute "$keep")
cd "$(dirname "$0")/.."

# ---- stages and binaries -------------------------------------------------------------------

find_stages
pick_stages "${stages_wanted[@]+"${stages_wanted[@]}"}"
[[ ${#stages[@]} -gt 0 ]] || stages=("${all_stages[@]}")

[[ $build == 0 ]] || build_stages_and_loadgen
locate_binaries # sets bin_dir and loadgen
declare -A help_of=()
for stage in "${stages[@]}"; do
	[[ -x $bin_dir/$stage ]] || die "no $bin_dir/$stage; run without --no-build"
	help_of[$stage]=$("$bin_dir/$stage" --help 2>/dev/null || true)
done

# The floor beside stage 09 in sections 1 and 1c: a bare mio loop per thread, each with its
# own SO_REUSEPORT listener (bench/bare_loop.rs), as many threads as 09 runs loops.
bare_threads=""
for stage in "${stages[@]}"; do
	[[ $stage == 09_* ]] || continue
	bare_threads=$(nproc)
	for ((i = 0; i < ${#user_flags[@]}; i++)); do
		case ${user_flags[i]} in
		--loops) bare_threads=${user_flags[i + 1]:-$bare_threads} ;;
		--loops=*) bare_threads=${user_flags[i]#--loops=} ;;
		esac
	done
	[[ $bare_threads =~ ^[1-9][0-9]*$ ]] || die "--loops expects a whole number above 0, not '$bare_threads'"
done
# nginx's workers: 2, or with stage 09 as many as its loops, so that 09 meets nginx with as
# many threads serving as it has (bench/nginx.sh reads nginx_workers).
nginx_workers=${bare_threads:-2}
bare_key=""
if [[ -n $bare_threads ]] && { has "$sections" throughput || has "$sections" keepalive; }; then
	[[ $build == 0 ]] || cargo build --release --quiet --example bare_loop
	if [[ -x $bin_dir/examples/bare_loop ]]; then
		bare_key=bare_${bare_threads}_threads
	else
		note "== no $bin_dir/examples/bare_loop (run without --no-build): no floor beside 09"
	fi
fi

# Whether a stage's --help lists a flag.
takes() { # stage flag
	help_lists "${help_of[$1]}" "$2"
}

# A flag's default as the stage's --help states it ("[default: 4]").
default_of() { # stage flag
	help_default "${help_of[$1]}" "$2"
}

# Stages 01-05 serve each connection on a thread of their own (one, one each, or a pool's);
# the later ones run an event loop, where a connection is a few hundred bytes.
thread_design() { # stage
	[[ $1 == 0[1-5]_* ]]
}

# The stages that keep a connection open for the next request (section 1c).
ka_stages=()
for stage in "${stages[@]}"; do
	if takes "$stage" --keep-alive-ms; then
		ka_stages+=("$stage")
	fi
done
if has "$sections" keepalive && [[ ${#ka_stages[@]} -eq 0 ]]; then
	note "== keepalive: none of the stages keeps connections alive (no --keep-alive-ms); section 1c is skipped"
fi
measure_ka=0
has "$sections" keepalive && [[ ${#ka_stages[@]} -gt 0 ]] && measure_ka=1
measure_throughput=0
has "$sections" throughput && measure_throughput=1
# Section 1 and 1c share their rounds: both need the servers started for them.
measure_requests=$((measure_throughput || measure_ka))

# ---- tools: wrk and nginx ------------------------------------------------------------------

use_wrk=0
if has "$tools" wrk && { ((measure_requests)) || has "$sections" efficiency; }; then
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
if ((measure_requests)) && [[ $use_wrk == 0 && $use_loadgen == 0 ]]; then
	die "no tool left to measure throughput with (--tools $tools)"
fi

nginx_bin=""
if [[ $use_nginx == 1 ]] && ((measure_requests)); then
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
if [[ $fd_limit != unlimited ]]; then
	capped=()
	for count in "${held_counts[@]}"; do
		if ((count + 100 > fd_limit)); then
			note "== ulimit -n is $fd_limit: holding $((fd_limit - 100)) connections instead of $count"
			count=$((fd_limit - 100))
		fi
		[[ " ${capped[*]+"${capped[*]}"} " == *" $count "* ]] || capped+=("$count")
	done
	held_counts=("${capped[@]}")
fi
somaxconn=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo unknown)
held_backlog=4096

# ---- cleanup -------------------------------------------------------------------------------

workdir=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
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

# Servers are known by a key: nginx, a stage's name, or either with "+ka" for the same server
# asked with keep-alive on (section 1c). A stage's "+ka" key is the same process.
# (url_of and pid_of are declared by bench/nginx.sh.)

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


wrk_errors() { # file
	awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); n = 0; for (i = 1; i <= NF; i++) n += $i; print n }
		/Non-2xx/ { print $NF }' "$1" | awk '{ s += $1 } END { print s + 0 }'
}

# One wrk run: a row "T round server clients wrk rps p50 p99 errors max overflows load".
# A "+ka" server is asked with keep-alive, wrk's default; the others with 'Connection: close'.
run_wrk() { # round key clients
	local out=$workdir/wrk-$1-$2-$3.txt threads overflows close=(-H 'Connection: close')
	[[ $2 != *+ka ]] || close=()
	threads=$(($3 < $(nproc) ? $3 : $(nproc)))
	overflows=$(listen_overflows)
	# --timeout 5s: a request stalled by a SYN retransmit (1 s, then 3 s) still counts in
	# the latency instead of disappearing as a wrk timeout.
	wrk -t"$threads" -c"$3" -d"${duration}s" --timeout 5s --latency \
		"${close[@]+"${close[@]}"}" "${url_of[$2]}" >"$out" 2>&1 || true
	printf 'T\t%s\t%s\t%s\twrk\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(wrk_rps "$out")" \
		"$(wrk_ms "$out" 50)" "$(wrk_ms "$out" 99)" "$(wrk_errors "$out")" "$(wrk_ms "$out" Latency)" \
		"$(($(listen_overflows) - overflows))" "$(load1)" >>"$results"
}

# One loadgen run: the same row with tool loadgen (with --keep-alive for a "+ka" server).
run_loadgen() { # round key clients
	local json=$workdir/loadgen-$1-$2-$3.json overflows ka=()
	[[ $2 != *+ka ]] || ka=(--keep-alive)
	overflows=$(listen_overflows)
	"$loadgen" --url "${url_of[$2]}" --clients "$3" --duration "$duration" --json \
		--no-server-stats "${ka[@]+"${ka[@]}"}" >"$json" 2>/dev/null || true
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

# ---- 1. throughput, and 1c. keep-alive -----------------------------------------------------

# servers: section 1's keys (connection per request), in the order they take turns;
# ka_servers: section 1c's (keep-alive). keys_at: what is measured at a client count.
servers=()
ka_servers=()
declare -A keys_at=()
if ((measure_requests)); then
	# Section 1 starts every stage; 1c alone only those that keep connections, which are
	# also measured connection per request, for the ratio of the two.
	started=("${stages[@]}")
	((measure_throughput)) || started=("${ka_stages[@]}")
	request_counts=()
	((measure_throughput)) && request_counts+=("${client_counts[@]}")
	((measure_ka)) && request_counts+=("${ka_client_counts[@]}")
	mapfile -t request_counts < <(printf '%s\n' "${request_counts[@]}" | sort -n -u)
	note ""
	note "== 1. requests, --work-ms 0: client counts ${request_counts[*]} x $rounds rounds x ${duration} s"
	nginx_up=0
	if [[ -n $nginx_bin ]] && start_nginx; then
		nginx_up=1
		note "   nginx ${url_of[nginx]} and, with keep-alive, ${url_of[nginx+ka]} ($nginx_workers worker(s), backlog 1024; conf in the --keep directory)"
	else
		note "   nginx's rows are skipped"
	fi
	((nginx_up)) && servers+=(nginx)
	for stage in "${started[@]}"; do
		stage_flags=()
		add_flags_for "$stage" loud "${user_flags[@]+"${user_flags[@]}"}"
		start_server "$stage" "$stage" --work-ms 0 --quiet --drain-ms 1000 \
			"${stage_flags[@]+"${stage_flags[@]}"}"
		servers+=("$stage")
	done
	# The floor: two processes, since the bare loop either closes after each answer or keeps
	# every connection, whatever the client asks.
	if [[ -n $bare_key ]]; then
		start_server "$bare_key" examples/bare_loop --threads "$bare_threads"
		servers+=("$bare_key")
		if ((measure_ka)); then
			start_server "$bare_key+ka" examples/bare_loop --threads "$bare_threads" --keep-alive
		fi
		note "   the floor beside 09: bare_loop --threads $bare_threads (${url_of[$bare_key]}, with keep-alive ${url_of[$bare_key+ka]:-none})"
	fi
	if ((measure_ka)); then
		((nginx_up)) && ka_servers+=(nginx+ka)
		for stage in "${ka_stages[@]}"; do
			url_of[$stage+ka]=${url_of[$stage]}
			ka_servers+=("$stage+ka")
		done
		[[ -z $bare_key ]] || ka_servers+=("$bare_key+ka")
	fi
	for clients in "${request_counts[@]}"; do
		keys=()
		if ((measure_throughput)) && has "$clients_list" "$clients"; then
			keys+=("${servers[@]}")
		elif ((measure_ka)) && has "$ka_clients_list" "$clients"; then
			# Only the servers the keep-alive rows are compared with.
			((nginx_up)) && keys+=(nginx)
			keys+=("${ka_stages[@]}")
			[[ -z $bare_key ]] || keys+=("$bare_key")
		fi
		if ((measure_ka)) && has "$ka_clients_list" "$clients"; then
			keys+=("${ka_servers[@]}")
		fi
		keys_at[$clients]="${keys[*]}"
	done
	# A short warm-up, so that no server's first round pays for its page faults.
	for key in "${servers[@]}" ${bare_key:+"$bare_key+ka"}; do
		[[ -n ${url_of[$key]:-} ]] || continue
		"$loadgen" --url "${url_of[$key]}" --clients 50 --duration 0.5 --json --no-server-stats \
			>/dev/null 2>&1 || true
	done
	for ((round = 1; round <= rounds; round++)); do
		for clients in "${request_counts[@]}"; do
			read -r -a keys <<<"${keys_at[$clients]}"
			note "   round $round/$rounds, $clients client(s): ${keys[*]}  (load $(load1))"
			for key in "${keys[@]}"; do
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
	for stage in "${started[@]}"; do
		stop_server "$stage"
	done
	for key in ${bare_key:+"$bare_key" "$bare_key+ka"}; do
		[[ -z ${pid_of[$key]:-} ]] || stop_server "$key"
	done
	# Section 1's table lists only what section 1 measured.
	((measure_throughput)) || servers=()
fi

# ---- 2. efficiency -------------------------------------------------------------------------

limit_flags() { # stage: the flags that set its limit to eff_limit, and the limit ("" = none)
	case $1 in
	01_*) printf '1' ;;
	02_*) printf '' ;;
	*)
		if takes "$1" --workers; then
			printf '%s --workers %s --queue %s' "$eff_limit" "$eff_limit" "$eff_limit"
		elif takes "$1" --max-conns; then
			printf '%s --max-conns %s' "$eff_limit" "$eff_limit"
		fi
		;;
	esac
}

# Section 2b: the event loops, and stage 04 to show what a pool's default allows.
crowd_loops=()
crowd_pool=""
for stage in "${stages[@]}"; do
	if ! thread_design "$stage"; then
		crowd_loops+=("$stage")
	elif [[ $stage == 04_* ]]; then
		crowd_pool=$stage
	fi
done

# A stage's limit under its defaults: its --workers or its --max-conns.
default_limit() { # stage
	local limit
	limit=$(default_of "$1" --workers)
	[[ -n $limit ]] || limit=$(default_of "$1" --max-conns)
	printf '%s' "$limit"
}

# One run of section 2b: a row "C round stage tool clients limit rps theory errors load".
crowd_row() { # round stage tool rps errors
	local limit slots theory
	limit=$(default_limit "$2")
	slots=$((${limit:-$crowd_clients} < crowd_clients ? ${limit:-$crowd_clients} : crowd_clients))
	theory=$(awk -v s="$slots" -v w="$eff_work_ms" 'BEGIN { printf "%.3f", s * 1000 / w }')
	printf 'C\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$crowd_clients" \
		"${limit:-none}" "${4:-0}" "$theory" "${5:-0}" "$(load1)" >>"$results"
}

crowd_loadgen() { # round key stage: starts loadgen in the background, sets crowd_pid
	"$loadgen" --url "${url_of[$2]}" --clients "$crowd_clients" --duration "$crowd_duration" \
		--json --no-server-stats >"$workdir/crowd-$1-$3.json" 2>/dev/null &
	crowd_pid=$!
	running_pids+=("$crowd_pid")
}

crowd_wait() { # round stage: waits for crowd_loadgen's run and writes its row
	local json=$workdir/crowd-$1-$2.json
	wait "$crowd_pid" || true
	forget_pid "$crowd_pid"
	crowd_row "$1" "$2" loadgen "$(json_get "$json" rps)" "$(json_get "$json" failed)"
}

crowd_wrk() { # round key stage
	local out=$workdir/crowd-wrk-$1-$3.txt
	wrk -t"$(nproc)" -c"$crowd_clients" -d"${crowd_duration}s" --timeout 5s \
		-H 'Connection: close' "${url_of[$2]}" >"$out" 2>&1 || true
	crowd_row "$1" "$3" wrk "$(wrk_rps "$out")" "$(wrk_errors "$out")"
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

	if [[ ${#crowd_loops[@]} -gt 0 || -n $crowd_pool ]]; then
		crowd_tools=()
		[[ $use_wrk == 0 ]] || crowd_tools+=(wrk)
		[[ $use_loadgen == 0 ]] || crowd_tools+=(loadgen)
		note ""
		note "== 2b. efficiency, --work-ms $eff_work_ms: $crowd_clients clients, default limits, $rounds rounds x ${crowd_duration} s:"
		note "   ${crowd_loops[*]} in turn (${crowd_tools[*]}), ${crowd_pool:-no pool} alongside the first run"
		for ((round = 1; round <= rounds; round++)); do
			note "   round $round/$rounds  (load $(load1))"
			# Fresh stages every round, as above; the event loops take turns, since each keeps
			# a core busy at 10 000 connections a second (with its load generator).
			for stage in "${crowd_loops[@]}" ${crowd_pool:+"$crowd_pool"}; do
				start_server "crowd-$stage" "$stage" --work-ms "$eff_work_ms" --quiet --drain-ms 500
			done
			pool_pid=""
			if [[ -n $crowd_pool ]]; then
				crowd_loadgen "$round" "crowd-$crowd_pool" "$crowd_pool"
				pool_pid=$crowd_pid
			fi
			order=("${crowd_tools[@]}")
			if ((round % 2 == 0 && ${#order[@]} == 2)); then
				order=("${order[1]}" "${order[0]}")
			fi
			for stage in "${crowd_loops[@]}"; do
				for tool in "${order[@]}"; do
					if [[ $tool == wrk ]]; then
						crowd_wrk "$round" "crowd-$stage" "$stage"
					else
						crowd_loadgen "$round" "crowd-$stage" "$stage"
						crowd_wait "$round" "$stage"
					fi
				done
			done
			if [[ -n $pool_pid ]]; then
				crowd_pid=$pool_pid
				crowd_wait "$round" "$crowd_pool"
			fi
			for stage in "${crowd_loops[@]}" ${crowd_pool:+"$crowd_pool"}; do
				stop_server "crowd-$stage"
			done
		done
	fi
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

# Microseconds since the epoch.
now_us() {
	local t=${EPOCHREALTIME/./}
	printf '%s' "${t#0}"
}

# While loadgen runs: the server's most threads and RSS seen once every held connection is
# established (or, for a server whose backlog cannot take them all, once the opening's
# deadline has passed), not while they are being opened. Counting the connections costs
# 50 ms of CPU at 10 000 (ss), so it stops as soon as they are all there: the normal
# client's requests that follow are not disturbed by it. Prints "threads rss_kb samples".
watch_held() { # server_pid port count loadgen_pid opening_deadline_us
	local threads=0 rss=0 samples=0 t r open=1
	while kill -0 "$4" 2>/dev/null; do
		if ((open)) && { (($(now_us) >= $5)) || (($(established "$2") >= $3)); }; then
			open=0
		fi
		if ((!open)); then
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

# Whether a stage is measured holding COUNT connections: any stage up to the backlog; beyond
# it, only those that accept them all. 01, 03, 04 and 05 take 1, 4, 20 and 20 at most and
# leave the rest in the backlog, which holds 4096; 02 would start COUNT threads.
holds() { # stage count
	(($2 <= held_backlog)) && return 0
	case $1 in
	02_*) (($2 <= max_threads)) ;;
	*) ! thread_design "$1" ;;
	esac
}

if has "$sections" held; then
	note ""
	note "== 3. connections held open (${held_counts[*]}), stages started with --backlog $held_backlog: $rounds rounds"
	for count in "${held_counts[@]}"; do
		((somaxconn == 0 || somaxconn >= count || count > held_backlog)) 2>/dev/null ||
			note "   (net.core.somaxconn is $somaxconn: backlogs are capped below $count; some connects will wait)"
		skipped=()
		for stage in "${stages[@]}"; do
			holds "$stage" "$count" || skipped+=("$stage")
		done
		[[ ${#skipped[@]} -eq 0 ]] || note "   $count held: skipping ${skipped[*]} (see --help, section 3)"
	done
	for ((round = 1; round <= rounds; round++)); do
		for count in "${held_counts[@]}"; do
			note "   round $round/$rounds, $count held  (load $(load1))"
			for stage in "${stages[@]}"; do
				holds "$stage" "$count" || continue
				stage_flags=()
				add_flags_for "$stage" quiet --header-timeout-ms "$held_deadline_ms" \
					--keep-alive-ms "$held_deadline_ms"
				# An event loop's limit is on the connections it holds: room for them all
				# and for the normal client.
				thread_design "$stage" || add_flags_for "$stage" quiet --max-conns $((count + 1000))
				key=held-$count-$stage
				start_server "$key" "$stage" --work-ms 0 --quiet --drain-ms 500 \
					--backlog "$held_backlog" "${stage_flags[@]+"${stage_flags[@]}"}"
				pid=${pid_of[$key]}
				json=$workdir/held-$round-$count-$stage.json
				ka=()
				! takes "$stage" --keep-alive-ms || ka=(--keep-alive)
				if ((count > held_backlog)); then
					# The same normal client first alone, on the same process: what the
					# machine allows a request without any held connection.
					alone=$workdir/alone-$round-$count-$stage.json
					"$loadgen" --url "${url_of[$key]}" --clients 1 --duration "$held_seconds" \
						--connect-timeout-ms "$held_connect_ms" --json --no-server-stats \
						"${ka[@]+"${ka[@]}"}" >"$alone" 2>/dev/null || true
					printf 'A\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$stage" "$count" \
						"$(json_get "$alone" ok)" "$(json_get "$alone" p99_ms)" \
						"$(json_get "$alone" max_ms)" "$(load1)" >>"$results"
				else
					answers "${url_of[$key]}" || true
				fi
				# At rest: started and past a first request (or the normal client's run
				# above), so that what a first request allocates once is not counted as the
				# held connections' memory.
				sleep 0.2
				threads_rest=$(proc_field "$pid" Threads)
				rss_rest=$(proc_field "$pid" VmRSS)
				opening_us=$((count * 1000000 / held_rate + held_connect_ms * 1000 + 500000))
				deadline_us=$(($(now_us) + opening_us))
				"$loadgen" --url "${url_of[$key]}" --scenario held --held "$count" \
					--held-rate "$held_rate" --connect-timeout-ms "$held_connect_ms" --clients 1 \
					--duration "$held_seconds" --pid "$pid" --json --no-server-stats \
					"${ka[@]+"${ka[@]}"}" >"$json" 2>/dev/null &
				loadgen_pid=$!
				running_pids+=("$loadgen_pid")
				port=${url_of[$key]##*:}
				read -r threads_held rss_held samples <<<"$(watch_held "$pid" "${port%/}" "$count" \
					"$loadgen_pid" "$deadline_us")"
				wait "$loadgen_pid" || true
				forget_pid "$loadgen_pid"
				((samples > 0)) || note "   ($stage: no sample once all $count connections were open)"
				# Columns: H round stage count established threads_rest threads_held
				# rss_rest_kb rss_held_kb loadgen's peak threads, loadgen's peak RSS (VmHWM),
				# samples, the normal client's answers, its p99 and max in ms, load.
				printf 'H\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" \
					"$stage" "$count" "$(json_get "$json" held_established)" "$threads_rest" \
					"$threads_held" "$rss_rest" "$rss_held" "$(json_get "$json" peak_threads)" \
					"$(json_get "$json" peak_rss_kb)" "$samples" "$(json_get "$json" ok)" \
					"$(json_get "$json" p99_ms)" "$(json_get "$json" max_ms)" "$(load1)" >>"$results"
				stop_server "$key"
			done
		done
	done
fi

# ---- 4. computing --------------------------------------------------------------------------

# The stages that take --cpu-ms; theory: every core computing all the time.
cpu_stages=()
for stage in "${stages[@]}"; do
	if takes "$stage" --cpu-ms; then
		cpu_stages+=("$stage")
	fi
done
cpu_theory=$(awk -v c="$(nproc)" -v ms="$cpu_ms" 'BEGIN { printf "%.3f", c * 1000 / ms }')
# The probe: a request that needs no work, asked often enough for a p99 over a run.
cpu_probe=/stats
cpu_probe_every_ms=100

if has "$sections" cpu && [[ ${#cpu_stages[@]} -gt 0 ]]; then
	note ""
	note "== 4. computing, --work-ms 0 --cpu-ms $cpu_ms: $cpu_clients clients and a probe on $cpu_probe,"
	note "   ${cpu_stages[*]} in turn, $rounds rounds x ${cpu_duration} s; theory $(nproc) cores / $cpu_ms ms = $cpu_theory req/s"
	for stage in "${cpu_stages[@]}"; do
		start_server "cpu-$stage" "$stage" --work-ms 0 --cpu-ms "$cpu_ms" --quiet --drain-ms 1000
	done
	for ((round = 1; round <= rounds; round++)); do
		note "   round $round/$rounds  (load $(load1))"
		for stage in "${cpu_stages[@]}"; do
			json=$workdir/cpu-$round-$stage.json
			"$loadgen" --url "${url_of[cpu-$stage]}" --clients "$cpu_clients" --duration "$cpu_duration" \
				--probe-path "$cpu_probe" --probe-every-ms "$cpu_probe_every_ms" --json \
				--no-server-stats >"$json" 2>/dev/null || true
			# Columns: P round stage clients rps p50 p99 probe_ok probe_p50 probe_p99 probe_max
			# errors load.
			printf 'P\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$stage" \
				"$cpu_clients" "$(json_get "$json" rps)" "$(json_get "$json" p50_ms)" \
				"$(json_get "$json" p99_ms)" "$(json_get "$json" probe_ok)" \
				"$(json_get "$json" probe_p50_ms)" "$(json_get "$json" probe_p99_ms)" \
				"$(json_get "$json" probe_max_ms)" "$(json_get "$json" failed)" "$(load1)" >>"$results"
		done
	done
	for stage in "${cpu_stages[@]}"; do
		stop_server "cpu-$stage"
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

# Per-round req/s of stage A over stage B in section 4.
p_ratios() { # stageA stageB
	join -t $'\t' <(awk -F'\t' -v s="$1" '$1 == "P" && $3 == s && $5 != "" { print $2 "\t" $5 }' "$results" | sort) \
		<(awk -F'\t' -v s="$2" '$1 == "P" && $3 == s && $5 != "" { print $2 "\t" $5 }' "$results" | sort) |
		awk -F'\t' '$3 > 0 { printf "%.4f\n", $2 / $3 }'
}

# "08_x 07_y" when the keys given hold both stage 08 and stage 07 (the ratio issue 19 asks
# for), else nothing.
pair_08_07() { # key...
	local key s08="" s07=""
	for key in "$@"; do
		case $key in
		08_*) s08=$key ;;
		07_*) s07=$key ;;
		esac
	done
	[[ -z $s08 || -z $s07 ]] || printf '%s %s' "$s08" "$s07"
}

# Per-round loadgen / wrk for a server.
tool_ratios() { # key clients
	join -t $'\t' <(t_values "$1" "$2" loadgen 6 | sort) <(t_values "$1" "$2" wrk 6 | sort) |
		awk -F'\t' '$3 > 0 { printf "%.4f\n", $2 / $3 }'
}

# Each verdict is kept with the issue whose target it judges.
verdicts=()
verdict() { # issue median threshold ge|le|lt description
	local ok
	if [[ -z $2 ]]; then
		verdicts+=("$1|n/a      $5")
		return
	fi
	ok=$(awk -v m="$2" -v t="$3" -v op="$4" 'BEGIN {
		met = (op == "ge") ? m >= t : (op == "lt") ? m < t : m <= t
		print met ? "met" : "NOT met" }')
	verdicts+=("$1|$(printf '%-8s %s (median %s)' "$ok" "$5" "$(printf '%.3g' "$2")")")
}

stage_rps_target() { # stage: the x nginx target of issue 7 (01-05) or issue 12 (06)
	case $1 in
	01_*) printf '7 1.15' ;;
	02_* | 03_*) printf '7 0.5' ;;
	04_* | 05_*) printf '7 1.1' ;;
	06_*) printf '12 1.2' ;;
	esac
}

stage_p99_issue() { # stage: the issue whose target is a p99 at 200 clients <= nginx's
	case $1 in
	01_* | 03_* | 04_* | 05_*) printf '7' ;;
	06_*) printf '12' ;;
	esac
}

# A table of section 1 or 1c for one tool: a row per server and client count, with the
# ratios to the reference server (nginx, or nginx with keep-alive) and, for a "+ka" server,
# to the same server connection per request in the same rounds.
requests_table() { # tool reference counts_list key...
	local tool=$1 ref=$2 counts=$3 clients key rps p50 p99 errs max overflows x xp xc
	shift 3
	local keys=("$@") ka_column=0
	[[ $ref == nginx ]] || ka_column=1
	if ((ka_column)); then
		printf '%-8s %-20s %9s %16s %8s %8s %16s %8s %6s %9s %16s\n' clients server "req/s" "x nginx+ka" \
			"p50 ms" "p99 ms" "p99 / nginx+ka" "max ms" errors overflows "x close"
	else
		printf '%-8s %-20s %9s %16s %8s %8s %16s %8s %6s %9s\n' clients server "req/s" "x nginx" \
			"p50 ms" "p99 ms" "p99 / nginx p99" "max ms" errors overflows
	fi
	IFS=, read -r -a counts <<<"$counts"
	for clients in "${counts[@]}"; do
		for key in "${keys[@]}"; do
			[[ -n $(t_values "$key" "$clients" "$tool" 6) ]] || continue
			rps=$(t_values "$key" "$clients" "$tool" 6 | cut -f2 | median)
			p50=$(t_values "$key" "$clients" "$tool" 7 | cut -f2 | median)
			p99=$(t_values "$key" "$clients" "$tool" 8 | cut -f2 | median)
			errs=$(t_values "$key" "$clients" "$tool" 9 | cut -f2 | awk '{ s += $1 } END { print s + 0 }')
			max=$(t_values "$key" "$clients" "$tool" 10 | cut -f2 | sort -g | tail -n 1)
			overflows=$(t_values "$key" "$clients" "$tool" 11 | cut -f2 | awk '{ s += $1 } END { print s + 0 }')
			x=-
			xp=-
			if [[ $key != "$ref" && -n $(t_values "$ref" "$clients" "$tool" 6) ]]; then
				x=$(t_ratios "$key" "$ref" "$clients" "$tool" 6 | spread '%.2f')
				xp=$(t_ratios "$key" "$ref" "$clients" "$tool" 8 | spread '%.2f')
			fi
			if ((ka_column)); then
				xc=-
				if [[ $key == *+ka && -n $(t_values "${key%+ka}" "$clients" "$tool" 6) ]]; then
					xc=$(t_ratios "$key" "${key%+ka}" "$clients" "$tool" 6 | spread '%.2f')
				fi
				printf '%-8s %-20s %9.0f %16s %8.3f %8.2f %16s %8.1f %6s %9s %16s\n' "$clients" "$key" \
					"${rps:-0}" "$x" "${p50:-0}" "${p99:-0}" "$xp" "${max:-0}" "$errs" "$overflows" "$xc"
			else
				printf '%-8s %-20s %9.0f %16s %8.3f %8.2f %16s %8.1f %6s %9s\n' "$clients" "$key" \
					"${rps:-0}" "$x" "${p50:-0}" "${p99:-0}" "$xp" "${max:-0}" "$errs" "$overflows"
			fi
		done
	done
}

# loadgen / wrk per server and client count.
tools_table() { # counts_list key...
	local counts clients key
	IFS=, read -r -a counts <<<"$1"
	shift
	printf '%-20s' server
	for clients in "${counts[@]}"; do
		printf ' %20s' "$clients client(s)"
	done
	echo
	for key in "$@"; do
		printf '%-20s' "$key"
		for clients in "${counts[@]}"; do
			printf ' %20s' "$(tool_ratios "$key" "$clients" | spread '%.2f')"
		done
		echo
	done
}

# The targets are judged on wrk's figures when wrk ran (loadgen's otherwise).
judge=wrk
[[ $use_wrk == 1 ]] || judge=loadgen

{
	echo
	echo "bench/compare.sh: every stage against nginx and against theory"
	echo "$machine"
	printf 'command: bench/compare.sh'
	if ((${#original_args[@]})); then
		printf ' %q' "${original_args[@]}"
	fi
	echo

	if ((measure_throughput)) && [[ -s $results ]]; then
		for tool in wrk loadgen; do
			[[ $tool == wrk && $use_wrk == 0 ]] && continue
			[[ $tool == loadgen && $use_loadgen == 0 ]] && continue
			echo
			echo "1. connection per request, --work-ms 0, $tool: medians over $rounds round(s) of ${duration} s; ratios min-median-max;"
			echo "   max ms: the slowest request of all rounds; overflows: the kernel's ListenOverflows during the runs (machine-wide)"
			requests_table "$tool" nginx "$clients_list" "${servers[@]}"
		done
		if [[ $use_wrk == 1 && $use_loadgen == 1 ]]; then
			echo
			echo "1b. loadgen / wrk, req/s against the same server in the same round (min-median-max)"
			tools_table "$clients_list" "${servers[@]}"
		fi
		if [[ " ${servers[*]} " == *" nginx "* ]]; then
			for clients in 50 200; do
				has "$clients_list" "$clients" || continue
				for key in "${servers[@]}"; do
					[[ $key == nginx ]] && continue
					read -r issue target <<<"$(stage_rps_target "$key")" || true
					[[ -n ${target:-} ]] || continue
					verdict "$issue" "$(t_ratios "$key" nginx "$clients" "$judge" 6 | median)" "$target" ge \
						"$key >= $target x nginx's req/s at $clients clients ($judge)"
				done
			done
			if has "$clients_list" 200; then
				for key in "${servers[@]}"; do
					issue=$(stage_p99_issue "$key")
					[[ -n $issue ]] || continue
					verdict "$issue" "$(t_ratios "$key" nginx 200 "$judge" 8 | median)" 1 le \
						"$key p99 <= nginx's p99 at 200 clients ($judge)"
					[[ $issue == 7 ]] || continue
					# A SYN dropped by a full backlog is retransmitted after a second.
					verdict 7 "$(t_values "$key" 200 "$judge" 10 | cut -f2 | sort -g | tail -n 1)" 1000 le \
						"$key no backlog stall at 200 clients: slowest request < 1 s ($judge, max over rounds)"
				done
			fi
		fi
		if [[ $use_wrk == 1 && $use_loadgen == 1 ]]; then
			for clients in "${client_counts[@]}"; do
				for key in "${servers[@]}"; do
					[[ $key != bare_* ]] || continue
					verdict 7 "$(tool_ratios "$key" "$clients" | median)" 0.8 ge \
						"loadgen >= 0.8 x wrk against $key at $clients client(s)"
				done
			done
		fi
		# Stage 08 is stage 07 with a kitchen: without computing it must cost nothing.
		pair=$(pair_08_07 "${servers[@]}")
		if [[ -n $pair ]]; then
			read -r s08 s07 <<<"$pair"
			for clients in "${client_counts[@]}"; do
				[[ $clients -ge 50 ]] || continue
				verdict 19 "$(t_ratios "$s08" "$s07" "$clients" "$judge" 6 | median)" 0.95 ge \
					"$s08 >= 0.95 x $s07's req/s, --cpu-ms 0, connection per request, $clients clients ($judge)"
			done
		fi
	fi

	if ((measure_ka)) && [[ -s $results ]]; then
		for tool in wrk loadgen; do
			[[ $tool == wrk && $use_wrk == 0 ]] && continue
			[[ $tool == loadgen && $use_loadgen == 0 ]] && continue
			how="wrk without 'Connection: close'"
			[[ $tool == wrk ]] || how="loadgen --keep-alive"
			echo
			echo "1c. keep-alive, --work-ms 0, $how (+ka; the rows without +ka: connection per request,"
			echo "   from section 1's rounds): medians over $rounds round(s) of ${duration} s; ratios min-median-max;"
			echo "   x close: the same server connection per request, same round, same tool"
			ka_rows=()
			[[ -z ${url_of[nginx+ka]:-} ]] || ka_rows+=(nginx+ka)
			for stage in "${ka_stages[@]}"; do
				ka_rows+=("$stage+ka" "$stage")
			done
			[[ -z $bare_key ]] || ka_rows+=("$bare_key+ka" "$bare_key")
			[[ -z ${url_of[nginx+ka]:-} ]] || ka_rows+=(nginx)
			requests_table "$tool" nginx+ka "$ka_clients_list" "${ka_rows[@]}"
		done
		if [[ $use_wrk == 1 && $use_loadgen == 1 ]]; then
			echo
			echo "1d. loadgen --keep-alive / wrk (keep-alive), req/s against the same server in the same round (min-median-max)"
			tools_table "$ka_clients_list" "${ka_servers[@]}"
		fi
		for stage in "${ka_stages[@]}"; do
			[[ $stage == 07_* ]] || continue
			for clients in 50 200; do
				has "$ka_clients_list" "$clients" || continue
				if [[ -n ${url_of[nginx+ka]:-} ]]; then
					target=1.0
					((clients < 200)) || target=0.9
					verdict 13 "$(t_ratios "$stage+ka" nginx+ka "$clients" "$judge" 6 | median)" "$target" ge \
						"$stage with keep-alive >= $target x nginx's with keep-alive at $clients clients ($judge)"
					verdict 13 "$(t_ratios "$stage+ka" nginx+ka "$clients" "$judge" 8 | median)" 1 le \
						"$stage with keep-alive: p99 <= nginx's with keep-alive at $clients clients ($judge)"
				fi
				verdict 13 "$(t_ratios "$stage+ka" "$stage" "$clients" "$judge" 6 | median)" 3 ge \
					"$stage with keep-alive >= 3 x itself connection per request at $clients clients ($judge)"
			done
		done
		pair=$(pair_08_07 "${ka_stages[@]}")
		if [[ -n $pair ]]; then
			read -r s08 s07 <<<"$pair"
			for clients in "${ka_client_counts[@]}"; do
				verdict 19 "$(t_ratios "$s08+ka" "$s07+ka" "$clients" "$judge" 6 | median)" 0.95 ge \
					"$s08 with keep-alive >= 0.95 x $s07's, --cpu-ms 0, $clients clients ($judge)"
			done
		fi
	fi

	# Stage 08 is stage 07 with a kitchen: what the kitchen costs when nothing computes.
	pair=$(pair_08_07 "${servers[@]+"${servers[@]}"}" "${ka_stages[@]+"${ka_stages[@]}"}")
	if ((measure_requests)) && [[ -n $pair && -s $results ]]; then
		read -r s08 s07 <<<"$pair"
		echo
		echo "1e. $s08 / $s07, req/s in the same round (min-median-max, $judge), --work-ms 0 --cpu-ms 0:"
		echo "   what the kitchen costs when nothing computes"
		printf '%-8s %24s %24s\n' clients "connection per request" "keep-alive"
		for clients in "${request_counts[@]}"; do
			printf '%-8s %24s %24s\n' "$clients" \
				"$(t_ratios "$s08" "$s07" "$clients" "$judge" 6 | spread '%.2f')" \
				"$(t_ratios "$s08+ka" "$s07+ka" "$clients" "$judge" 6 | spread '%.2f')"
		done
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
			thread_design "$stage" || continue
			verdict 7 "$(median <<<"$ratio")" 0.98 ge "$stage efficiency >= 0.98 with ${eff_work_ms} ms of work over ${eff_duration} s"
		done
		if grep -q '^C' "$results"; then
			echo
			echo "2b. efficiency, --work-ms $eff_work_ms, $crowd_clients clients, ${crowd_duration} s per run, default limits: measured / theory"
			echo "   (min-median-max over $rounds round(s)); wrk -c $crowd_clients with 'Connection: close', or loadgen"
			printf '%-20s %-8s %7s %12s %12s %18s %7s\n' stage tool limit "theory/s" "req/s" "measured/theory" errors
			for stage in "${crowd_loops[@]}" ${crowd_pool:+"$crowd_pool"}; do
				for tool in wrk loadgen; do
					rows=$(awk -F'\t' -v s="$stage" -v t="$tool" '$1 == "C" && $3 == s && $4 == t' "$results")
					[[ -n $rows ]] || continue
					limit=$(cut -f6 <<<"$rows" | head -n 1)
					theory=$(cut -f8 <<<"$rows" | head -n 1)
					rps=$(cut -f7 <<<"$rows" | median)
					ratio=$(awk -F'\t' '$8 > 0 { printf "%.4f\n", $7 / $8 }' <<<"$rows")
					errs=$(cut -f9 <<<"$rows" | awk '{ s += $1 } END { print s + 0 }')
					printf '%-20s %-8s %7s %12.1f %12.1f %18s %7s\n' "$stage" "$tool" "$limit" "$theory" \
						"${rps:-0}" "$(spread '%.3f' <<<"$ratio")" "$errs"
					[[ $stage == 06_* ]] || continue
					verdict 12 "$(median <<<"$ratio")" 0.95 ge \
						"$stage reaches >= 0.95 x $crowd_clients / ${eff_work_ms} ms = $(awk -v c="$crowd_clients" -v w="$eff_work_ms" 'BEGIN { print c * 1000 / w }') req/s with $crowd_clients clients ($tool)"
				done
			done
		fi
	fi

	if has "$sections" cpu && grep -q '^P' "$results"; then
		echo
		echo "4. computing, --work-ms 0 --cpu-ms $cpu_ms, $cpu_clients clients (loadgen, connection per request), ${cpu_duration} s per run;"
		echo "   theory = $(nproc) cores / $cpu_ms ms = $(printf '%.0f' "$cpu_theory") req/s; meanwhile a probe asks for $cpu_probe every $cpu_probe_every_ms ms"
		echo "   (a request that needs no work); medians over $rounds round(s), ratios min-median-max"
		printf '%-20s %9s %16s %16s %8s %8s %9s %20s %20s %6s\n' stage "req/s" "x theory" "x 07" \
			"p50 ms" "p99 ms" "probe ok" "probe p50 ms" "probe p99 ms" errors
		s07=""
		for stage in "${cpu_stages[@]}"; do
			[[ $stage != 07_* ]] || s07=$stage
		done
		for stage in "${cpu_stages[@]}"; do
			rows=$(awk -F'\t' -v s="$stage" '$1 == "P" && $3 == s' "$results")
			[[ -n $rows ]] || continue
			ratio=$(awk -F'\t' -v t="$cpu_theory" '$5 != "" { printf "%.4f\n", $5 / t }' <<<"$rows")
			x07=-
			if [[ -n $s07 && $stage != "$s07" ]]; then
				x07=$(p_ratios "$stage" "$s07" | spread '%.2f')
			fi
			probe_p50=$(cut -f9 <<<"$rows" | median)
			probe_p99=$(cut -f10 <<<"$rows" | median)
			printf '%-20s %9.1f %16s %16s %8.2f %8.2f %9s %20s %20s %6s\n' "$stage" \
				"$(cut -f5 <<<"$rows" | median)" "$(spread '%.2f' <<<"$ratio")" "$x07" \
				"$(cut -f6 <<<"$rows" | median)" "$(cut -f7 <<<"$rows" | median)" \
				"$(cut -f8 <<<"$rows" | median)" "$(cut -f9 <<<"$rows" | spread '%.2f')" \
				"$(cut -f10 <<<"$rows" | spread '%.2f')" \
				"$(cut -f12 <<<"$rows" | awk '{ s += $1 } END { print s + 0 }')"
			[[ $stage == 08_* ]] || continue
			verdict 19 "$(median <<<"$ratio")" 0.92 ge \
				"$stage >= 0.92 x theory ($(printf '%.0f' "$cpu_theory") req/s) with --cpu-ms $cpu_ms at $cpu_clients clients"
			verdict 19 "$probe_p50" 2 le "$stage: the $cpu_probe probe's p50 <= 2 ms meanwhile"
			verdict 19 "$probe_p99" 5 le "$stage: the $cpu_probe probe's p99 <= 5 ms meanwhile"
		done
	fi

	if has "$sections" held; then
		for count in "${held_counts[@]}"; do
			echo
			echo "3. $count connections held open (loadgen --scenario held; +ka: with --keep-alive, each made one request first),"
			echo "   stages with --backlog $held_backlog (min-median-max over $rounds round(s)); 'held': the most seen once all"
			echo "   were established; 'peak': loadgen's peak, opening and closing included; normal: one client's requests meanwhile"
			((count <= held_backlog)) ||
				echo "   (alone): the same normal client on the same process just before, with no connection held"
			printf '%-20s %6s %10s %12s %12s %14s %14s %14s %12s %12s\n' stage held "threads" "threads held" \
				"threads peak" "RSS held MiB" "peak RSS MiB" "KiB / conn" "normal p99" "normal max"
			printf '%-20s %6s %10s %12s %12s %14s %14s %14s %12s %12s\n' "" "" "at rest" "" "" "" "" "" "ms" "ms"
			for stage in "${stages[@]}"; do
				rows=$(awk -F'\t' -v s="$stage" -v c="$count" '$1 == "H" && $3 == s && $4 == c && $12 > 0' "$results")
				[[ -n $rows ]] || continue
				name=$stage
				! takes "$stage" --keep-alive-ms || name=$stage+ka
				connects=$(cut -f5 <<<"$rows" | median)
				rest=$(cut -f6 <<<"$rows" | spread '%.0f')
				during=$(cut -f7 <<<"$rows" | spread '%.0f')
				peak=$(cut -f10 <<<"$rows" | spread '%.0f')
				rss=$(awk -F'\t' '{ printf "%.3f\n", $9 / 1024 }' <<<"$rows" | spread '%.2f')
				hwm=$(awk -F'\t' '$11 != "" { printf "%.3f\n", $11 / 1024 }' <<<"$rows" | spread '%.2f')
				per=$(awk -F'\t' '$5 > 0 { printf "%.3f\n", ($9 - $8) / $5 }' <<<"$rows")
				p99=$(awk -F'\t' '$13 > 0 && $14 != "" { print $14 }' <<<"$rows")
				slowest=$(awk -F'\t' '$13 > 0 && $15 != "" { print $15 }' <<<"$rows")
				printf '%-20s %6s %10s %12s %12s %14s %14s %14s %12s %12s\n' "$name" "${connects:-0}" "$rest" \
					"$during" "$peak" "$rss" "$hwm" "$(spread '%.2f' <<<"$per")" \
					"$( [[ -n $p99 ]] && spread '%.2f' <<<"$p99" || echo -)" \
					"$( [[ -n $slowest ]] && spread '%.1f' <<<"$slowest" || echo -)"
				alone=$(awk -F'\t' -v s="$stage" -v c="$count" '$1 == "A" && $3 == s && $4 == c && $5 > 0' "$results")
				if [[ -n $alone ]]; then
					printf '%-20s %6s %10s %12s %12s %14s %14s %14s %12s %12s\n' "  (alone)" 0 - - - - - - \
						"$(cut -f6 <<<"$alone" | spread '%.2f')" "$(cut -f7 <<<"$alone" | spread '%.1f')"
				fi
				# Threads while held, worst round, over threads at rest.
				growth=$(awk -F'\t' '{ print $7 - $6 }' <<<"$rows" | sort -g | tail -n 1)
				case $stage in
				02_*)
					verdict 7 "$(median <<<"$per")" 16 lt "$stage < 16 KiB of RSS per held connection, $count held"
					;;
				03_* | 04_* | 05_*)
					# Constant: while the connections are held, the threads at rest plus at most
					# the stage's limit: 03's --max-conns (4) connection threads; 04 and 05 start
					# their workers before the first client.
					allowed=0
					[[ $stage != 03_* ]] || allowed=4
					verdict 7 "${growth:-}" "$allowed" le "$stage threads while $count held <= at rest + $allowed (constant, whatever the connections; worst round)"
					verdict 7 "$(awk -F'\t' '$11 != "" { print $11 / 1024 }' <<<"$rows" | median)" 5 lt "$stage < 5 MiB peak RSS (VmHWM), $count held"
					;;
				06_*)
					((count >= 10000)) || continue
					verdict 12 "${growth:-}" 0 le "$stage threads while $count held <= at rest (constant; worst round)"
					verdict 12 "$(median <<<"$per")" 0.5 le "$stage <= 0.5 KiB of RSS per held connection, $count held"
					verdict 12 "$(median <<<"$p99")" 5 le "$stage a normal request's p99 <= 5 ms while $count are held"
					verdict 12 "$(median <<<"$slowest")" 5 le "$stage a normal request's slowest <= 5 ms while $count are held (each round's max)"
					;;
				esac
			done
		done
	fi

	for issue in 7 12 13 19; do
		lines=()
		for line in "${verdicts[@]+"${verdicts[@]}"}"; do
			[[ ${line%%|*} == "$issue" ]] && lines+=("${line#*|}")
		done
		[[ ${#lines[@]} -gt 0 ]] || continue
		echo
		case $issue in
		7) echo "targets of issue 7 (medians; met / NOT met)" ;;
		12) echo "targets of issue 12, stage 06 (medians; met / NOT met)" ;;
		13) echo "targets of issue 13, stage 07 (medians; met / NOT met)" ;;
		19) echo "targets of issue 19, stage 08 (medians; met / NOT met)" ;;
		esac
		for line in "${lines[@]}"; do
			echo "  $line"
		done
	done
	printf 'load average at the end: %s; the run took %s s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(($(date +%s) - started_at))"
	awk -F'\t' '$1 == "T" || $1 == "E" || $1 == "C" || $1 == "P" { print $NF }' "$results" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) printf "1-minute load average during the measurements: %s to %s\n", v[1], v[NR] }'
}
