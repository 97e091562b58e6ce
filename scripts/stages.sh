# shellcheck shell=bash
# scripts/stages.sh: what load_test.sh and the bench/ scripts all do with the stages, sourced
# by each: find the stages in src/bin, pick them by name, build and find the release
# binaries, pick a free port, start a stage on one, check which flags a stage takes, and stop
# every process a script started, on exit too.
#
# The sourcing script has already run `set -euo pipefail`, calls these functions from the
# repository's root, and sets workdir (a scratch directory) before it starts a stage.

# Messages name the script that failed (load_test.sh, compare.sh), not this file.
die() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

note() {
	printf '%s\n' "$*" >&2
}

# A path the user gave, made absolute against the directory the script was called from, for
# the scripts that then change to the repository's root. Call it before that `cd`.
absolute() { # path (empty stays empty)
	if [[ -z $1 || $1 == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$PWD" "$1"; fi
}

# ---- stages and binaries -------------------------------------------------------------------

# Sets all_stages to the stage names, from the files src/bin/NN_name.rs.
find_stages() {
	local file name
	all_stages=()
	for file in src/bin/[0-9][0-9]_*.rs; do
		name=${file##*/}
		all_stages+=("${name%.rs}")
	done
	[[ ${#all_stages[@]} -gt 0 ]] || die "no stages found in src/bin/"
}

# Sets stages to the stages named, in the order given; empty if none is named.
# A stage may be named in full or by any prefix that picks exactly one (03, 03_sema).
pick_stages() { # name...
	local wanted match stage
	stages=()
	for wanted in "$@"; do
		match=""
		for stage in "${all_stages[@]}"; do
			if [[ $stage == "$wanted"* ]]; then
				[[ -z $match ]] || die "'$wanted' matches both $match and $stage"
				match=$stage
			fi
		done
		[[ -n $match ]] || die "no stage '$wanted'; the stages are: ${all_stages[*]}"
		stages+=("$match")
	done
}

# A value from loadgen's flat JSON object (--json); empty for null or missing.
json_get() { # file key
	local value
	value=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1")
	value=${value#\"}
	value=${value%\"}
	[[ $value == null ]] && value=""
	printf '%s' "$value"
}

build_stages_and_loadgen() {
	note "== building the stages and loadgen (release)"
	cargo build --release --workspace --bins
}

# Sets bin_dir to where the release binaries are and loadgen to the load generator there.
locate_binaries() {
	local target_dir
	# Wherever Cargo puts its output (CARGO_TARGET_DIR, .cargo/config.toml...), it says so here.
	target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
	bin_dir=${target_dir:-target}/release
	loadgen=$bin_dir/loadgen
	[[ -x $loadgen ]] || die "no $loadgen; run without --no-build"
}

# ---- processes -----------------------------------------------------------------------------

# Every process the script started and has not stopped yet: the exit trap stops them.
running_pids=()

forget_pid() { # pid: no longer ours to clean up
	local p kept=()
	for p in "${running_pids[@]+"${running_pids[@]}"}"; do
		[[ $p == "$1" ]] || kept+=("$p")
	done
	running_pids=("${kept[@]+"${kept[@]}"}")
}

# TERM, then up to SECONDS (default 3) to exit, then KILL; and forgets the process.
# For a stage, TERM is Ctrl-C: it stops accepting, finishes what it has (at most its
# --drain-ms) and prints its summary line.
stop_process() { # pid [seconds]
	local i
	kill -TERM "$1" 2>/dev/null || true
	for ((i = 0; i < ${2:-3} * 10; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

# TERM to every process first, so that they wind down together rather than one by one.
stop_started_processes() {
	local p
	for p in "${running_pids[@]+"${running_pids[@]}"}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${running_pids[@]+"${running_pids[@]}"}"; do
		stop_process "$p"
	done
}

# ---- ports ---------------------------------------------------------------------------------

# A port nobody uses, below the ephemeral range so that no client socket can hold it: for a
# server that cannot be told to take port 0 and say which it got (nginx).
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

# ---- one stage -----------------------------------------------------------------------------

stage_pid=""
stage_url=""

# Starts a stage on a free loopback port and waits (at most 10 s) for its first line,
# "<stage> listening on http://IP:PORT"; sets stage_pid and stage_url (with a final /).
# Its output goes to $workdir/NAME.out and NAME.err: a script that starts one stage several
# times gives each start a name of its own.
start_stage() { # name stage flags...
	# shellcheck disable=SC2154 # workdir is the sourcing script's
	local out=$workdir/$1.out err=$workdir/$1.err stage=$2 line="" i
	shift 2
	# Created before the stage starts, so the loop below never reads a file not there yet.
	: >"$out"
	"$bin_dir/$stage" --addr 127.0.0.1:0 "$@" >"$out" 2>"$err" &
	stage_pid=$!
	running_pids+=("$stage_pid")
	for ((i = 0; i < 100; i++)); do
		line=$(head -n 1 "$out")
		[[ $line == *" listening on http://"* ]] && break
		if ! kill -0 "$stage_pid" 2>/dev/null; then
			cat "$err" >&2
			die "$stage exited at start (flags: $*)"
		fi
		sleep 0.1
	done
	[[ $line == *" listening on http://"* ]] || die "$stage did not say 'listening on' within 10 s"
	# shellcheck disable=SC2034 # for the sourcing script
	stage_url=${line##* listening on }/
}

# Whether a stage's --help text lists a flag: a line of clap's list of options that starts with
# it ("      --max-conns <N>  ...", or "  -h, --help  ..."); a wrapped line of a flag's help is
# indented further.
help_lists() { # help_text flag
	grep -qE -- "^( {2}| {6})(-[a-zA-Z], )?$2( |$)" <<<"$1"
}

# A flag's default as a stage's --help text states it ("[default: 4]"), also when clap has
# wrapped it onto a line of its own or cut it in two.
help_default() { # help_text flag
	awk -v flag="$2" '
		/^$/ || /^[^ ]/ { on = 0 }
		/^(  |      )-/ { on = ($1 == flag || $2 == flag) }
		on { text = text " " $0 }
		END {
			if (match(text, /\[default: *[0-9]+\]/)) {
				value = substr(text, RSTART, RLENGTH)
				gsub(/[^0-9]/, "", value)
				print value
			}
		}' <<<"$1"
}

# Adds to stage_flags the flags the stage's --help lists; the rest are skipped, with a note
# in loud mode (for flags the user gave). A flag's value is the next argument unless that is
# a flag itself (or the value came with '=').
stage_flags=()
add_flags_for() { # stage quiet|loud flags...
	local stage=$1 mode=$2 help arg name value skipped=()
	shift 2
	help=$("$bin_dir/$stage" --help 2>/dev/null) || help=""
	while [[ $# -gt 0 ]]; do
		arg=$1
		shift
		name=${arg%%=*}
		value=()
		if [[ $arg != *=* && $# -gt 0 && $1 != --* ]]; then
			value=("$1")
			shift
		fi
		if help_lists "$help" "$name"; then
			stage_flags+=("$arg" "${value[@]+"${value[@]}"}")
		else
			skipped+=("$name")
		fi
	done
	if [[ $mode == loud && ${#skipped[@]} -gt 0 ]]; then
		note "   ($stage has no ${skipped[*]}; not passed)"
	fi
}
