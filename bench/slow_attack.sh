#!/usr/bin/env bash
# bench/slow_attack.sh: how long a few slow clients keep a stage from answering anyone.
#
# Starts each stage on a free loopback port and runs slowhttptest against it: 150 connections
# that either send their request head slowly (slowloris, -H) or send pipelined requests and
# then read the answers a few bytes a second (slow read, -X -k 3). slowhttptest probes the
# server with a normal request every second; a probe not answered within 2 s counts the
# service as unavailable. Prints, per stage, how many seconds of the run it was unavailable.
set -euo pipefail
export LC_ALL=C

# shellcheck source-path=SCRIPTDIR source=../scripts/stages.sh
source "$(dirname "$0")/../scripts/stages.sh"

usage() {
	cat <<'EOF'
Usage: bench/slow_attack.sh [OPTIONS] [STAGE...] [-- STAGE FLAGS...]

Runs slowhttptest against each stage (default: 04 and later) and prints how many seconds of
the run a normal client could not get an answer.

  STAGE...          stages by name or number prefix (04, 05_time); default: 04 and later
  --attack A        slow-read: 150 connections send 3 pipelined GETs each, then read the
                    answers 5 bytes a second (slowhttptest -X -k 3) [default]
                    slowloris: 150 connections send their heads a header line at a time,
                    one every 10 s (slowhttptest -H)
  --seconds S       length of each run [default: 20]
  --bin-dir DIR     take the stage binaries from DIR instead of building them (to measure
                    another commit's build: check it out elsewhere and build it there)
  --csv-dir DIR     keep slowhttptest's per-second CSV of each run in DIR
  -- FLAGS...       more flags for the stages (each gets those its --help lists)
  -h, --help        print this help

Every stage is started with --work-ms 0 --quiet. slowhttptest is installed with apt-get if
it is missing (Debian's slowhttptest package; needs root). All traffic stays on 127.0.0.1.
EOF
}

attack=slow-read
seconds=20
bin_dir_given=""
csv_dir=""
stages_wanted=()
user_flags=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--attack)
		[[ $# -ge 2 && $2 =~ ^(slow-read|slowloris)$ ]] || die "--attack is slow-read or slowloris"
		attack=$2
		shift 2
		;;
	--seconds)
		[[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || die "--seconds expects a whole number above 0"
		seconds=$2
		shift 2
		;;
	--bin-dir)
		[[ $# -ge 2 ]] || die "--bin-dir needs a directory"
		bin_dir_given=$2
		shift 2
		;;
	--csv-dir)
		[[ $# -ge 2 ]] || die "--csv-dir needs a directory"
		csv_dir=$2
		shift 2
		;;
	--)
		shift
		user_flags=("$@")
		break
		;;
	-*) die "unknown option '$1' (see --help)" ;;
	*)
		stages_wanted+=("$1")
		shift
		;;
	esac
done
# Relative to where the script was called from, not to the checkout.
bin_dir_given=$(absolute "$bin_dir_given")
csv_dir=$(absolute "$csv_dir")

cd "$(dirname "$0")/.."

if ! command -v slowhttptest >/dev/null 2>&1; then
	note "== installing slowhttptest (apt-get)"
	{ apt-get update -qq && apt-get install -y -qq slowhttptest; } >/dev/null 2>&1 ||
		die "slowhttptest is missing and could not be installed (apt-get install slowhttptest)"
fi

find_stages
pick_stages "${stages_wanted[@]+"${stages_wanted[@]}"}"
if [[ ${#stages[@]} -eq 0 ]]; then
	for stage in "${all_stages[@]}"; do
		((10#${stage:0:2} < 4)) || stages+=("$stage")
	done
fi
if [[ -n $bin_dir_given ]]; then
	bin_dir=$bin_dir_given
else
	note "== building the stages (release)"
	cargo build --release --bins -p tcp-server
	locate_binaries
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/slow_attack.XXXXXX")
cleanup() {
	trap - EXIT INT TERM
	stop_started_processes
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case $attack in
slow-read) attack_args=(-X -k 3 -n 1 -z 5 -w 10 -y 20) ;;
slowloris) attack_args=(-H -i 10 -x 24) ;;
esac
common_args=(-c 150 -r 150 -l "$seconds" -p 2 -g)

printf '%s: slowhttptest %s %s, against each stage started with --work-ms 0\n' \
	"$attack" "${attack_args[*]}" "${common_args[*]}"
[[ -z $bin_dir_given ]] || printf 'binaries from %s\n' "$bin_dir_given"
printf '%-20s %s\n' stage "unavailable"
for stage in "${stages[@]}"; do
	stage_flags=()
	add_flags_for "$stage" quiet --work-ms 0 --quiet
	add_flags_for "$stage" loud "${user_flags[@]+"${user_flags[@]}"}"
	start_stage "$stage" "$stage" "${stage_flags[@]}"
	# shellcheck disable=SC2154 # stage_url is set by start_stage
	slowhttptest "${attack_args[@]}" "${common_args[@]}" -u "$stage_url" \
		-o "$workdir/$stage" >"$workdir/$stage.log" 2>&1 || true
	stop_process "$stage_pid" 5
	csv=$workdir/$stage.csv
	[[ -f $csv ]] || die "slowhttptest wrote no report for $stage (see $workdir/$stage.log)"
	# The last column is the probe: 0 when the probe was not answered in time.
	down=$(awk -F, 'NR > 1 && $NF == 0 { n++ } END { print n + 0 }' "$csv")
	total=$(awk -F, 'NR > 1 { n++ } END { print n + 0 }' "$csv")
	printf '%-20s %s of %s s\n' "$stage" "$down" "$total"
	[[ -z $csv_dir ]] || { mkdir -p "$csv_dir" && cp "$csv" "$csv_dir/$attack-$stage.csv"; }
done
