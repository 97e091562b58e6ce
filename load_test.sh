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
(p50, p99, max), errors, requests unfinished when time was up, peak requests in flight,
peak threads and peak memory (RSS). While a stage runs, a live view on the terminal shows
the queue outside its door, the clients inside and the answers so far.

  STAGE...             stages to run, by name or number (03_semaphore, 03); default: all.
                       A single stage is shown in detail, with its latency histogram.
Load (passed to loadgen; see `cargo run --release -p loadgen -- --help`):
  --scenario S         normal: --clients healthy clients
                       flood: --flood clients at once, to see threads pile up in stage 02
                       idle: --clients healthy clients while --idle connections send nothing,
                       to see stage 04 starve and stage 05 recover
                       siege: --clients healthy clients among --idle idle and --trickle
                       trickling connections that come back as soon as they are cut, to see
                       even stage 05 suffer (and an event loop not)
                       held: --clients healthy clients while --held idle connections are
                       held open, far more than a thread per connection can serve
                       [default: normal]
  --clients N          healthy clients; enough to keep 02 busy and make 01 queue [default: 50]
  --flood N            clients in the flood scenario [default: 1000]
  --idle K             idle connections in idle and siege; more than the 4 workers [default: 8]
  --idle-reconnect     in idle: idle connections cut by the server connect again at once
                       (always so in siege)
  --trickle T          in siege: connections that send a request one byte at a time
                       [default: 8, with the idle ones four times the 4 workers]
  --trickle-ms MS      in siege: the pause between two bytes of a trickled request
                       [default: 200: 16 s for a request, far past 05's header deadline]
  --held N             in held: idle connections held open, from one loadgen thread
                       [default: 10000; the soft open-file limit is raised to the hard one,
                       which must leave room for them in loadgen and in the stage]
  --keep-alive         HTTP/1.1 persistent connections: each client reuses its connection
                       while the server keeps it open (stages 01-06 close after each answer)
  --rate R             open loop: R requests per second in all, on a timetable whatever the
                       server does, latency counted from when each was due; --clients are
                       the connections to send them, so make it above R x latency
                       [default: none, the closed loop: next request once the last is in]
  --probe PATH         one more client asking PATH (e.g. /stats) every 100 ms beside the
                       others, its latency in columns of its own (probe p50, p99): what the
                       load does to a request that needs no work [default: none]
  --requests N         stop each run after N requests [default: none, runs are timed]
  --duration S         seconds per stage [default: 8, so seven stages take about a minute;
                       none if only --requests is given]
Stages:
  --work-ms MS         simulated work per request that waits, the same for every stage; short
                       enough for a fast table, long enough that stage 01 visibly serves one
                       at a time [default: 20]
  --cpu-ms MS          simulated work per request that computes (a busy loop on the serving
                       thread; in stage 08 on its kitchen's threads, off the event loop), for
                       every stage whose --help lists it [default: none, the stage's own]
  -- FLAGS...          more flags for the stages, e.g. -- --workers 8. Each stage gets only the
                       flags its --help lists; the others are skipped with a note.
                       Every stage is started with --addr 127.0.0.1:0 --work-ms MS --quiet
                       --drain-ms 2000, and 05-08 with --header-timeout-ms 1000 too, so that idle
                       connections are cut within a run (give -- --header-timeout-ms 5000 for
                       the stage's own default).
Output:
  --csv FILE           also write the rows to FILE, with the columns stage, scenario, clients,
                       requests, ok, errors, unfinished, rps, p50_ms, p90_ms, p99_ms, max_ms,
                       peak_threads, peak_rss_kb, not_started, late, connections, retries,
                       probe_p50_ms, probe_p99_ms (empty without --probe)
  --trace DIR          one CSV row per request of every client, in DIR/STAGE.trace.csv
                       (DIR is created; columns in loadgen/README.md)
  --series DIR         each run sampled every 100 ms, in DIR/STAGE.series.csv
  --no-live            no live view (there is none either when stderr is not a terminal;
                       runs longer than 5 s then print a progress line every 5 s)
Other:
  --url URL            load a server you started yourself (e.g. http://127.0.0.1:1729/);
                       nothing is built but loadgen, nothing is started
  --pid PID            with --url: the server's process id, for peak threads and RSS
  --no-build           use the binaries already built
  -h, --help           print this help

Peak threads and RSS come from /proc/PID/status (Linux), sampled by loadgen during the run;
"n/a" elsewhere, or with --url and no --pid. Peak in flight is the stage's own count, from
its /stats or its summary line on exit. Unfinished requests were still waiting for their
answer when the run's time was up: neither served nor failed. All traffic stays on
127.0.0.1.

Examples:
  ./load_test.sh                                   all stages, normal load, ~1 minute
  ./load_test.sh --scenario flood                  watch stage 02's threads
  ./load_test.sh --scenario idle 04 05             stage 04 starves, stage 05 recovers
  ./load_test.sh --scenario siege 05               idlers that come back: even 05 starves
  ./load_test.sh --scenario held --held 2000 04 05 2000 held connections (default 10000)
  ./load_test.sh --keep-alive --clients 20         a connection per client, if the stage agrees
  ./load_test.sh --rate 400 --clients 100 01 02    an open loop: 01's queue shows as latency
  ./load_test.sh --work-ms 0 --cpu-ms 5 --clients 20 --probe /stats 07 08
                                                   computing on the loop, or in a kitchen:
                                                   how long /stats waits meanwhile
  ./load_test.sh --trace traces --series series 03 every request and every 100 ms, as CSV
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
trickle=""
trickle_ms=""
held=""
keep_alive=0
probe=""
rate=""
requests=""
duration=""
work_ms=20
cpu_ms=""
csv=""
trace_dir=""
series_dir=""
live=1
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
		[[ $scenario =~ ^(normal|flood|idle|siege|held)$ ]] ||
			die "--scenario is normal, flood, idle, siege or held, not '$scenario'"
		;;
	--clients | --flood | --idle | --trickle | --trickle-ms | --held | --requests | --work-ms | --cpu-ms | --pid)
		need_value "$arg" "$@"
		whole_number "$arg" "$1"
		case $arg in
		--clients) clients=$1 ;;
		--flood) flood=$1 ;;
		--idle) idle=$1 ;;
		--trickle) trickle=$1 ;;
		--trickle-ms) trickle_ms=$1 ;;
		--held) held=$1 ;;
		--requests) requests=$1 ;;
		--work-ms) work_ms=$1 ;;
		--cpu-ms) cpu_ms=$1 ;;
		--pid) pid=$1 ;;
		esac
		shift
		;;
	--rate)
		need_value "$arg" "$@"
		[[ $1 =~ ^[0-9]+([.][0-9]+)?$ && ! $1 =~ ^0+([.]0+)?$ ]] ||
			die "'--rate' expects requests per second above 0, e.g. 200 or 0.5, not '$1'"
		rate=$1
		shift
		;;
	--probe)
		need_value "$arg" "$@"
		[[ $1 == /* && $1 != *[[:space:][:cntrl:]]* ]] ||
			die "'--probe' expects a path starting with /, e.g. /stats, not '$1'"
		probe=$1
		shift
		;;
	--trace | --series)
		need_value "$arg" "$@"
		[[ -n $1 ]] || die "'$arg' needs a directory"
		case $arg in
		--trace) trace_dir=$1 ;;
		--series) series_dir=$1 ;;
		esac
		shift
		;;
	--keep-alive) keep_alive=1 ;;
	--no-live) live=0 ;;
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
[[ -z $idle || $scenario =~ ^(idle|siege)$ ]] || die "--idle applies to --scenario idle or siege"
[[ $idle_reconnect == 0 || $scenario == idle ]] ||
	die "--idle-reconnect applies to --scenario idle (in siege it is always on)"
[[ -z $trickle && -z $trickle_ms || $scenario == siege ]] ||
	die "--trickle and --trickle-ms apply to --scenario siege"
[[ -z $held || $scenario == held ]] || die "--held applies to --scenario held"
[[ -z $clients || $scenario != flood ]] || die "in --scenario flood the number of clients is --flood N"
[[ -z $pid || -n $url ]] || die "--pid goes with --url; for the stages it starts the script knows their pids"
[[ -z $url || ${#stages_wanted[@]} -eq 0 ]] || die "give either --url or stage names, not both"
if [[ -z $requests && -z $duration ]]; then
	duration=8
fi
clients=${clients:-50}
flood=${flood:-1000}
idle=${idle:-8}
trickle=${trickle:-8}
trickle_ms=${trickle_ms:-200}
held=${held:-10000}

# The files asked for are relative to where the script was called from, not to the checkout.
csv=$(absolute "$csv")
trace_dir=$(absolute "$trace_dir")
series_dir=$(absolute "$series_dir")

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

# A flood, or held connections, need a file descriptor per connection on both sides (loadgen
# and the stage inherit this limit): lift the soft limit to the hard one.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
if [[ $scenario == held ]]; then
	# Each side holds every connection, plus the healthy clients and a few files of its own.
	fds_needed=$((held + clients + 64))
	fds_limit=$(ulimit -Sn)
	if [[ $fds_limit != unlimited && $fds_limit -lt $fds_needed ]]; then
		note "note: the open-file limit is $fds_limit (ulimit -Hn $(ulimit -Hn)), below the $fds_needed that --held $held needs in loadgen and in each stage; only root can raise the hard limit, so connects beyond it will fail"
	fi
fi
[[ -z $trace_dir ]] || mkdir -p -- "$trace_dir" || die "cannot create $trace_dir"
[[ -z $series_dir ]] || mkdir -p -- "$series_dir" || die "cannot create $series_dir"

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

# A value from loadgen's flat JSON object (scripts/stages.sh's json_get); n/a for null or
# missing, as the tables show it.
json_or_na() { # file key
	local value
	value=$(json_get "$1" "$2")
	printf '%s' "${value:-n/a}"
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
		in_flight=$(json_or_na "$json" server_peak_in_flight)
	fi
	local rps ok errors unfinished sent p50 p90 p99 max threads rss
	local not_started late connections retries probe_p50 probe_p99 extra=""
	rps=$(json_or_na "$json" rps)
	ok=$(json_or_na "$json" ok)
	errors=$(json_or_na "$json" failed)
	unfinished=$(json_or_na "$json" unfinished)
	sent=$(json_or_na "$json" sent)
	p50=$(json_or_na "$json" p50_ms)
	p90=$(json_or_na "$json" p90_ms)
	p99=$(json_or_na "$json" p99_ms)
	max=$(json_or_na "$json" max_ms)
	threads=$(json_or_na "$json" peak_threads)
	rss=$(json_or_na "$json" peak_rss_kb)
	not_started=$(json_or_na "$json" not_started)
	late=$(json_or_na "$json" late)
	connections=$(json_or_na "$json" connections)
	retries=$(json_or_na "$json" retries)
	probe_p50=$(json_or_na "$json" probe_p50_ms)
	probe_p99=$(json_or_na "$json" probe_p99_ms)
	# The columns that only mean something in the open loop, with keep-alive, or a probe.
	[[ -z $rate ]] || extra+=$(printf ' %11s' "$not_started")
	[[ $keep_alive == 0 ]] || extra+=$(printf ' %8s' "$(per_connection "$sent" "$connections")")
	[[ -z $probe ]] || extra+=$(printf ' %10s %10s' "$(fmt_ms "$probe_p50")" "$(fmt_ms "$probe_p99")")
	table_rows+=("$(printf '%-20s %9.1f %10s %10s %10s %7s %10s %10s %8s %10s' \
		"$stage" "$rps" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$(fmt_ms "$max")" \
		"$errors" "$unfinished" "$in_flight" "$threads" "$(fmt_mib "$rss")")$extra")
	[[ -n $probe ]] || probe_p50="" probe_p99=""
	csv_rows+=("$stage,$scenario,$(json_or_na "$json" clients),$sent,$ok,$errors,$unfinished,$rps,$p50,$p90,$p99,$max,$threads,$rss,$not_started,$late,$connections,$retries,$probe_p50,$probe_p99")
	note "$(printf '   %s: %.1f req/s, %s ok, %s errors, %s unfinished, p99 %s' \
		"$stage" "$rps" "$ok" "$errors" "$unfinished" "$(fmt_ms "$p99")")"
}

# Requests per connection, one decimal; n/a without connections.
per_connection() { # sent connections
	[[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || { printf 'n/a'; return; }
	awk -v s="$1" -v c="$2" 'BEGIN { printf "%.1f", s / c }'
}

# Runs loadgen with the chosen scenario against a URL; its report goes to report_file, its
# trace and series (if asked) to DIR/NAME.trace.csv and DIR/NAME.series.csv.
run_loadgen() { # url json_file report_file name [pid]
	local args=(--url "$1" --scenario "$scenario" --json-file "$2")
	case $scenario in
	flood) args+=(--flood "$flood") ;;
	idle)
		args+=(--clients "$clients" --idle "$idle")
		[[ $idle_reconnect == 0 ]] || args+=(--idle-reconnect)
		;;
	siege) args+=(--clients "$clients" --idle "$idle" --trickle "$trickle" --trickle-ms "$trickle_ms") ;;
	held) args+=(--clients "$clients" --held "$held") ;;
	*) args+=(--clients "$clients") ;;
	esac
	[[ -z $requests ]] || args+=(--requests "$requests")
	[[ -z $duration ]] || args+=(--duration "$duration")
	[[ -z $rate ]] || args+=(--rate "$rate")
	[[ $keep_alive == 0 ]] || args+=(--keep-alive)
	[[ -z $probe ]] || args+=(--probe-path "$probe")
	[[ $live == 1 ]] || args+=(--no-live)
	[[ -z $trace_dir ]] || args+=(--trace "$trace_dir/$4.trace.csv")
	[[ -z $series_dir ]] || args+=(--series "$series_dir/$4.series.csv")
	[[ -z ${5:-} ]] || args+=(--pid "$5")
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
siege) load="$clients clients + $idle idle + $trickle trickling connections (reconnecting)" ;;
held) load="$clients clients + $held held connections" ;;
*) load="$clients clients" ;;
esac
[[ -z $rate ]] || load+=", open loop at $rate req/s"
[[ $keep_alive == 0 ]] || load+=", keep-alive"
[[ -z $probe ]] || load+=", a probe asking $probe every 100 ms"
limit=${duration:+$duration s}
limit=${requests:+$requests requests${limit:+ or }}$limit

if [[ -n $url ]]; then
	note "== loading $url: scenario $scenario, $load, $limit"
	run_loadgen "$url" "$workdir/url.json" "$workdir/url.txt" server "$pid" ||
		die "loadgen could not load $url (see above)"
	cat "$workdir/url.txt"
	name=$(json_or_na "$workdir/url.json" server_stage)
	[[ $name != n/a ]] || name=server
	# Named after the stage once /stats has said which one it is.
	for dir_kind in "$trace_dir:trace" "$series_dir:series"; do
		dir=${dir_kind%:*}
		kind=${dir_kind##*:}
		if [[ -n $dir && $name != server && -f $dir/server.$kind.csv ]]; then
			mv -f -- "$dir/server.$kind.csv" "$dir/$name.$kind.csv"
		fi
	done
	add_row "$name" "$workdir/url.json" ""
	runs_heading="against $url"
else
	base_flags=(--work-ms "$work_ms" --quiet --drain-ms 2000 --header-timeout-ms 1000)
	for stage in "${stages[@]}"; do
		note "== $stage: scenario $scenario, $load, $limit"
		stage_flags=()
		add_flags_for "$stage" quiet "${base_flags[@]}"
		[[ -z $cpu_ms ]] || add_flags_for "$stage" loud --cpu-ms "$cpu_ms"
		add_flags_for "$stage" loud "${user_flags[@]+"${user_flags[@]}"}"
		start_stage "$stage" "$stage" "${stage_flags[@]}" # output in $workdir/$stage.out
		if ! run_loadgen "$stage_url" "$workdir/$stage.json" "$workdir/$stage.txt" "$stage" "$stage_pid"; then
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
header=$(printf '%-20s %9s %10s %10s %10s %7s %10s %10s %8s %10s' \
	stage req/s p50 p99 max errors unfinished "in flight" threads RSS)
[[ -z $rate ]] || header+=$(printf ' %11s' "not started")
[[ $keep_alive == 0 ]] || header+=$(printf ' %8s' "req/conn")
[[ -z $probe ]] || header+=$(printf ' %10s %10s' "probe p50" "probe p99")
printf '%s\n' "$header"
for row in "${table_rows[@]}"; do
	printf '%s\n' "$row"
done

if [[ -n $csv ]]; then
	{
		echo "stage,scenario,clients,requests,ok,errors,unfinished,rps,p50_ms,p90_ms,p99_ms,max_ms,peak_threads,peak_rss_kb,not_started,late,connections,retries,probe_p50_ms,probe_p99_ms"
		printf '%s\n' "${csv_rows[@]}"
	} >"$csv"
	note "rows written to $csv"
fi
[[ -z $trace_dir ]] || note "traces in $trace_dir/"
[[ -z $series_dir ]] || note "series in $series_dir/"
note "done in ${SECONDS} s"
