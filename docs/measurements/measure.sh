#!/usr/bin/env bash
# docs/measurements/measure.sh: re-run every load test the book quotes, then redraw its charts.
#
# Each run's printed output goes to NAME.txt (with the command on its first line) and its rows
# to NAME.csv, next to this script; machine.txt names the machine. The chapters quote these
# files through generated blocks: afterwards run `cargo test --test docs -- --ignored refresh`.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: docs/measurements/measure.sh [--only NAME]... [--list]

Runs ./load_test.sh once per measurement the book quotes (about five minutes in all), writes
NAME.txt and NAME.csv for each and machine.txt next to this script, then redraws the charts
with draw.py. Close other programs first: the numbers are only as quiet as the machine.
With --only, machine.txt keeps its description and gains a line saying what was redone.

  --only NAME   run only this measurement (repeatable); see --list for the names
  --list        print the measurements and the load_test.sh arguments of each, then exit
  -h, --help    print this help

Files are replaced only when a run succeeds, so an interrupted run leaves the old ones.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# name|arguments for load_test.sh. Chapters: normal 1-4, flood 2-4, idle 4-5, idle-reconnect
# 5, work-0 4 and 6, backlog-*, pool-16 and pool-40 6.
measurements=(
	"normal|"
	"flood|--scenario flood"
	"idle|--scenario idle"
	"idle-reconnect|--scenario idle --idle-reconnect 04 05"
	"work-0|--work-ms 0"
	"backlog-128|--work-ms 0 --clients 200 01 -- --backlog 128"
	"backlog-1024|--work-ms 0 --clients 200 01 -- --backlog 1024"
	"pool-16|04 -- --workers 16"
	"pool-40|04 -- --workers 40"
)

only=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--list)
		for m in "${measurements[@]}"; do
			printf '%-16s ./load_test.sh %s\n' "${m%%|*}" "${m#*|}"
		done
		exit 0
		;;
	--only)
		[[ $# -ge 2 ]] || {
			echo "measure.sh: --only needs a name (see --list)" >&2
			exit 2
		}
		only+=("$2")
		shift 2
		;;
	*)
		echo "measure.sh: unknown argument '$1' (see --help)" >&2
		exit 2
		;;
	esac
done

for name in "${only[@]}"; do
	known=0
	for m in "${measurements[@]}"; do
		[[ ${m%%|*} == "$name" ]] && known=1
	done
	[[ $known == 1 ]] || {
		echo "measure.sh: no measurement '$name' (see --list)" >&2
		exit 2
	}
done

scratch=$(mktemp -d)
cleanup() {
	rm -rf "$scratch"
}
trap cleanup EXIT

wanted() {
	[[ ${#only[@]} -eq 0 ]] && return 0
	local name
	for name in "${only[@]}"; do
		[[ $name == "$1" ]] && return 0
	done
	return 1
}

# The load average says how busy the machine was with other work when the runs began.
load=$(cut -d ' ' -f 1-3 /proc/loadavg)
today=$(date -u +%Y-%m-%d)
if [[ ${#only[@]} -eq 0 ]]; then
	{
		printf '%s cores (nproc), %s, Linux %s\n' "$(nproc)" \
			"$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" "$(uname -r)"
		printf 'measured on %s with %s\n' "$today" "$(rustc --version)"
		printf 'load average at the start: %s (1, 5, 15 min)\n' "$load"
	} >"$scratch/machine.txt"
else
	# Some measurements again: the machine is the one already described; say which were
	# redone, when, and how busy the machine was then.
	[[ -f $here/machine.txt ]] || {
		echo "measure.sh: no machine.txt yet; run every measurement once first" >&2
		exit 1
	}
	cp "$here/machine.txt" "$scratch/machine.txt"
	printf '%s measured separately on %s, load average at the start: %s\n' \
		"${only[*]}" "$today" "$load" >>"$scratch/machine.txt"
fi

cd "$root"
build_flag=()
for m in "${measurements[@]}"; do
	name=${m%%|*}
	read -r -a args <<<"${m#*|}"
	wanted "$name" || continue
	echo "== $name: ./load_test.sh ${args[*]}" >&2
	{
		printf '%s\n' "\$ ./load_test.sh${args[*]:+ ${args[*]}}"
		# --csv goes first: anything after a `--` in args is for the stages.
		./load_test.sh "${build_flag[@]}" --csv "$scratch/$name.csv" "${args[@]}"
	} >"$scratch/$name.txt"
	# Only the first run needs to build.
	build_flag=(--no-build)
	mv "$scratch/$name.txt" "$scratch/$name.csv" "$here/"
done
mv "$scratch/machine.txt" "$here/"

python3 "$here/draw.py"
echo "now run: cargo test --test docs -- --ignored refresh" >&2
