#!/usr/bin/env bash
# load_test.sh: put every stage under the same load and compare them in one table.
#
# Builds the stages and the load generator (loadgen/) in release, starts each stage on a
# free loopback port with the same --work-ms, runs loadgen against it, stops it, and prints
# one row per stage. Run with --help for the options.
set -euo pipefail
export LC_ALL=C # decimal points, not commas, whatever the learner's locale

# die, note and the stage helpers (find_stages, start_stage, stop_process...), shared with
# bench/compare.sh.
# shellcheck source-path=SCRIPTDIR source=scripts/stages.sh
source "$(dirname "$0")/scripts/stages.sh"

usage() {
	cat <<'EOF'
Usage: ./load_test.sh [OPTIONS] [STAGE...] [-- STAGE FLAGS...]

Puts each stage under the same load and prints one comparison table: req/s, latency
(p50, p99, max), errors, peak requests in flight, peak threads and peak memory (RSS).

  STAGE...             stages to run, by name or number (03_semaphore, 03); default: all.
                       A single stage is shown in detail, with its latency histogram.
Load (passed to loadgen; see `cargo run --release -p loadgen -- --help`):
  --scenario S         normal: --clients healthy clients
                       flood: --flood clients at once, to see threads pile up in stage 02
                       idle: --clients healthy clients while --idle connections send nothing,
                       to see stage 04 starve and stage 05 recover   [default: normal]
  --clients N          healthy clients; enough to keep 02 busy and make 01 queue [default: 50]
  --flood N            clients in the flood scenario [default: 1000]
  --idle K             idle connections in the idle scenario; more than the 4 workers [default: 8]
  --idle-reconnect     idle connections cut by the server connect again at once
  --requests N         stop each run after N requests [default: none, runs are timed]
  --duration S         seconds per stage [default: 8, so five stages take about a minute;
                       none if only --requests is given]
Stages:
  --work-ms MS         simulated work per request, the same for every stage; short enough for
                       a fast table, long enough that stage 01 visibly serves one at a time
                       [default: 20]
  -- FLAGS...          more flags for the stages, e.g. -- --workers 8. Each stage gets only the
                       flags its --help lists; the others are skipped with a note.
                       Every stage is started with --addr 127.0.0.1:0 --work-ms MS --quiet
                       --drain-ms 2000, and 05 with --header-timeout-ms 1000 too, so that idle
                       connections are cut within a run (give -- --header-timeout-ms 5000 for
                       the stage's own default).
Other:
  --url URL            load a server you started yourself (e.g. http://127.0.0.1:1729/);
                       nothing is built but loadgen, nothing is started
  --pid PID            with --url: the server's process id, for peak threads and RSS
  --csv FILE           also write the rows to FILE, with the columns stage, scenario, clients,
                       requests, ok, errors, rps, p50_ms, p90_ms, p99_ms, max_ms,
                       peak_threads, peak_rss_kb
  --no-build           use the binaries already built
  -h, --help           print this help

Peak threads and RSS come from /proc/PID/status (Linux), sampled by loadgen during the run;
"n/a" elsewhere, or with --url and no --pid. Peak in flight is the stage's own count, from
its /stats or its summary line on exit. All traffic stays on 127.0.0.1.

Examples:
  ./load_test.sh                                   all five stages, normal load, ~1 minute
  ./load_test.sh --scenario flood                  watch stage 02's threads
  ./load_test.sh --scenario idle 04 05             stage 04 starves, stage 05 recovers
  ./load_test.sh 03_semaphore -- --max-conns 16    one stage in detail, with a flag of its own
  ./load_test.sh --url http://127.0.0.1:1729/ --pid "$(pgrep -n 01_single)"
EOF
}

# ---- options -------------------------------------------------------------------------------

scenario=normal
clients=""
flood=""
idle=""
idle_reconnect=0
requests=""
duration=""
work_ms=20
csv=""
url=""
pid=""
build=1
stages_wanted=()
user_flags=()

need_value() {
	[[ $# -ge 2 ]] || die "'$1' needs a value (see --help)"
}

whole_number() { # name value
	[[ $2 =~ ^[0-9]+$ ]] || die "'$1' expects a whole number, not '$2'"
}

while [[ $# -gt 0 ]]; do
	arg=$1
	shift
	# --flag=value is the same as --flag value.
	if [[ $arg == --*=* ]]; then
		set -- "${arg#*=}" "$@"
		arg=${arg%%=*}
	fi
	case $arg in
	-h | --help)
		usage
		exit 0
		;;
	--scenario)
		need_value "$arg" "$@"
		scenario=$1
		shift
		[[ $scenario =~ ^(normal|flood|idle)$ ]] || die "--scenario is normal, flood or idle, not '$scenario'"
		;;
	--clients | --flood | --idle | --requests | --work-ms | --pid)
		need_value "$arg" "$@"
		whole_number "$arg" "$1"
		case $arg in
		--clients) clients=$1 ;;
		--flood) flood=$1 ;;
		--idle) idle=$1 ;;
		--requests) requests=$1 ;;
		--work-ms) work_ms=$1 ;;
		--pid) pid=$1 ;;
		esac
		shift
		;;
	--duration)
		need_value "$arg" "$@"
		[[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] || die "'--duration' expects seconds, e.g. 8 or 2.5, not '$1'"
		duration=$1
		shift
		;;
	--idle-reconnect) idle_reconnect=1 ;;
	--csv)
		need_value "$arg" "$@"
		csv=$1
		shift
		;;
	--url)
		need_value "$arg" "$@"
		url=$1
		shift
		;;
	--no-build) build=0 ;;
	--)
		user_flags=("$@")
		break
		;;
	-*) die "unknown option '$arg' (see --help)" ;;
	*) stages_wanted+=("$arg") ;;
	esac
done

# The same rules loadgen applies, checked before any server is started.
[[ -z $flood || $scenario == flood ]] || die "--flood applies to --scenario flood"
[[ -z $idle && $idle_reconnect == 0 || $scenario == idle ]] || die "--idle and --idle-reconnect apply to --scenario idle"
[[ -z $clients || $scenario != flood ]] || die "in --scenario flood the number of clients is --flood N"
[[ -z $pid || -n $url ]] || die "--pid goes with --url; for the stages it starts the script knows their pids"
[[ -z $url || ${#stages_wanted[@]} -eq 0 ]] || die "give either --url or stage names, not both"
if [[ -z $requests && -z $duration ]]; then
	duration=8
fi
clients=${clients:-50}
flood=${flood:-1000}
idle=${idle:-8}

cd "$(dirname "$0")"

# ---- stages and binaries -------------------------------------------------------------------

find_stages
# A stage may be named in full or by any prefix that picks exactly one (03, 03_sema).
pick_stages "${stages_wanted[@]+"${stages_wanted[@]}"}"
if [[ -z $url && ${#stages[@]} -eq 0 ]]; then
	stages=("${all_stages[@]}")
fi

if [[ $build == 1 ]]; then
	if [[ -n $url ]]; then
		note "== building loadgen (release)"
		cargo build --release -p loadgen
	else
		build_stages_and_loadgen
	fi
fi
locate_binaries # sets bin_dir and loadgen, wherever Cargo put them

# A flood needs a file descriptor per connection on both sides: lift the soft limit.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

# ---- cleanup -------------------------------------------------------------------------------

workdir=$(mktemp -d "${TMPDIR:-/tmp}/load_test.XXXXXX")

# Whatever ends the script (the last line, an error, Ctrl-C), no stage or loadgen is left
# running: every process started is in running_pids until it is stopped.
cleanup() {
	trap - EXIT INT TERM
	stop_started_processes
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- one server ----------------------------------------------------------------------------

# start_stage starts a stage on a free port and sets stage_pid and stage_url;
# add_flags_for picks the flags the stage takes (both in scripts/stages.sh).

# Ctrl-C for the server: it stops accepting, finishes what it has (at most --drain-ms) and
# prints its summary line. Killed if it takes longer than 5 s.
stop_stage() {
	stop_process "$stage_pid" 5
}

# ---- results -------------------------------------------------------------------------------

# A value from loadgen's flat JSON object; n/a for null or missing.
json_get() { # file key
	local value
	value=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1")
	value=${value#\"}
	value=${value%\"}
	[[ -n $value && $value != null ]] || value=n/a
	printf '%s' "$value"
}

fmt_ms() {
	[[ $1 == n/a ]] && { printf 'n/a'; return; }
	awk -v v="$1" 'BEGIN { if (v < 10) printf "%.2f ms", v; else if (v < 100) printf "%.1f ms", v; else printf "%.0f ms", v }'
}

fmt_mib() {
	[[ $1 == n/a ]] && { printf 'n/a'; return; }
	awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'
}

table_rows=()
csv_rows=()

# Reads one run's JSON (and the stage's summary line) into a table row and a CSV row.
add_row() { # stage json_file summary_file
	local stage=$1 json=$2 in_flight
	in_flight=n/a
	if [[ -n ${3:-} && -f $3 ]]; then
		in_flight=$(sed -n 's/.* stopped after .*peak in flight \([0-9][0-9]*\).*/\1/p' "$3")
		in_flight=${in_flight:-n/a}
	fi
	if [[ $in_flight == n/a ]]; then
		in_flight=$(json_get "$json" server_peak_in_flight)
	fi
	local rps ok errors sent p50 p90 p99 max threads rss
	rps=$(json_get "$json" rps)
	ok=$(json_get "$json" ok)
	errors=$(json_get "$json" failed)
	sent=$(json_get "$json" sent)
	p50=$(json_get "$json" p50_ms)
	p90=$(json_get "$json" p90_ms)
	p99=$(json_get "$json" p99_ms)
	max=$(json_get "$json" max_ms)
	threads=$(json_get "$json" peak_threads)
	rss=$(json_get "$json" peak_rss_kb)
	table_rows+=("$(printf '%-20s %9.1f %10s %10s %10s %7s %10s %8s %10s' \
		"$stage" "$rps" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$(fmt_ms "$max")" \
		"$errors" "$in_flight" "$threads" "$(fmt_mib "$rss")")")
	csv_rows+=("$stage,$scenario,$(json_get "$json" clients),$sent,$ok,$errors,$rps,$p50,$p90,$p99,$max,$threads,$rss")
	note "$(printf '   %s: %.1f req/s, %s ok, %s errors, p99 %s' "$stage" "$rps" "$ok" "$errors" "$(fmt_ms "$p99")")"
}

# Runs loadgen with the chosen scenario against a URL; its report goes to report_file.
run_loadgen() { # url json_file report_file [pid]
	local args=(--url "$1" --scenario "$scenario" --json-file "$2")
	case $scenario in
	flood) args+=(--flood "$flood") ;;
	idle)
		args+=(--clients "$clients" --idle "$idle")
		[[ $idle_reconnect == 0 ]] || args+=(--idle-reconnect)
		;;
	*) args+=(--clients "$clients") ;;
	esac
	[[ -z $requests ]] || args+=(--requests "$requests")
	[[ -z $duration ]] || args+=(--duration "$duration")
	[[ -z ${4:-} ]] || args+=(--pid "$4")
	# In the background, so that Ctrl-C reaches the trap at once instead of after the run;
	# the trap then stops loadgen with everything else.
	"$loadgen" "${args[@]}" >"$3" &
	local loadgen_pid=$! status=0
	running_pids+=("$loadgen_pid")
	wait "$loadgen_pid" || status=$?
	forget_pid "$loadgen_pid"
	return "$status"
}

# ---- the runs ------------------------------------------------------------------------------

case $scenario in
flood) load="$flood clients at once" ;;
idle) load="$clients clients + $idle idle connections$([[ $idle_reconnect == 0 ]] || printf ' (reconnecting)')" ;;
*) load="$clients clients" ;;
esac
limit=${duration:+$duration s}
limit=${requests:+$requests requests${limit:+ or }}$limit

if [[ -n $url ]]; then
	note "== loading $url: scenario $scenario, $load, $limit"
	run_loadgen "$url" "$workdir/url.json" "$workdir/url.txt" "$pid" ||
		die "loadgen could not load $url (see above)"
	cat "$workdir/url.txt"
	name=$(json_get "$workdir/url.json" server_stage)
	[[ $name != n/a ]] || name=server
	add_row "$name" "$workdir/url.json" ""
	runs_heading="against $url"
else
	base_flags=(--work-ms "$work_ms" --quiet --drain-ms 2000 --header-timeout-ms 1000)
	for stage in "${stages[@]}"; do
		note "== $stage: scenario $scenario, $load, $limit"
		stage_flags=()
		add_flags_for "$stage" quiet "${base_flags[@]}"
		add_flags_for "$stage" loud "${user_flags[@]+"${user_flags[@]}"}"
		start_stage "$stage" "$stage" "${stage_flags[@]}" # output in $workdir/$stage.out
		if ! run_loadgen "$stage_url" "$workdir/$stage.json" "$workdir/$stage.txt" "$stage_pid"; then
			die "loadgen failed against $stage (see above)"
		fi
		stop_stage
		if [[ ${#stages[@]} -eq 1 ]]; then
			cat "$workdir/$stage.txt"
		fi
		add_row "$stage" "$workdir/$stage.json" "$workdir/$stage.out"
	done
	runs_heading="stages started with --work-ms $work_ms"
fi

# ---- the table -----------------------------------------------------------------------------

cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
printf '\nscenario %s: %s, %s per run; %s (%s cores)\n\n' "$scenario" "$load" "$limit" "$runs_heading" "$cores"
printf '%-20s %9s %10s %10s %10s %7s %10s %8s %10s\n' \
	stage req/s p50 p99 max errors "in flight" threads RSS
for row in "${table_rows[@]}"; do
	printf '%s\n' "$row"
done

if [[ -n $csv ]]; then
	{
		echo "stage,scenario,clients,requests,ok,errors,rps,p50_ms,p90_ms,p99_ms,max_ms,peak_threads,peak_rss_kb"
		printf '%s\n' "${csv_rows[@]}"
	} >"$csv"
	note "rows written to $csv"
fi
note "done in ${SECONDS} s"
