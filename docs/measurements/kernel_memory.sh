#!/usr/bin/env bash
# docs/measurements/kernel_memory.sh: what an idle connection costs on an event loop, in the
# process and in the kernel.
#
# `ps` and /proc/PID/status count the process's memory only. Every socket also lives in the
# kernel: its TCP state, its inode, its open file, its directory entry and, once registered,
# its epoll item, each an object of a slab cache (/proc/slabinfo). This script holds N idle
# connections on stage 06 (connections that sent nothing) and stage 07 (regulars idle between
# two requests) and counts both: the stage's RSS, and the slab objects the connections added.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: docs/measurements/kernel_memory.sh [--connections N] [--rounds R] [--no-build]

For stage 06 (connections that send nothing) and stage 07 (connections idle after one
request, with --keep-alive), R times each: starts the stage, reads its RSS, its sockets and
epoll items, and the kernel's slab caches (/proc/slabinfo), has loadgen hold N idle
connections to it (--scenario held), reads them all again while they are held and once
the stage has stopped, then prints what each connection added: bytes of the process, and
bytes of the kernel's objects for the stage's end of it. A control round first holds N
descriptors that are not sockets, to tell the sockets' objects from any descriptor's.

  --connections N  idle connections to hold, 100 to 15000 [default: 10000]
  --rounds R       rounds per stage, 1 to 5 [default: 2]
  --no-build       use the release binaries already built
  -h, --help       print this help

Linux only, and /proc/slabinfo must be readable (root). The open-file limit is raised to
the hard one, which must leave room for N descriptors in the stage and N in loadgen. Both
ends of every connection are on this machine (127.0.0.1 only), so the socket caches grow by
two objects per connection: one for loadgen's end, one for the stage's. About 15 s a round,
a minute by default. Every process started here is stopped on exit.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."
# shellcheck source-path=SCRIPTDIR source=../../scripts/stages.sh
source scripts/stages.sh

connections=10000
rounds=2
build=1
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--connections | --rounds)
		[[ $# -ge 2 ]] || die "$1 needs a value (see --help)"
		case $1 in
		--connections) connections=$2 ;;
		--rounds) rounds=$2 ;;
		esac
		shift 2
		;;
	--no-build)
		build=0
		shift
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
if ! [[ $connections =~ ^[1-9][0-9]*$ ]] || ((connections < 100 || connections > 15000)); then
	die "--connections takes a whole number from 100 to 15000"
fi
[[ $rounds =~ ^[1-5]$ ]] || die "--rounds takes a whole number from 1 to 5"
[[ $(uname -s) == Linux ]] || die "reads /proc: Linux only"
head -n 1 /proc/slabinfo >/dev/null 2>&1 || die "cannot read /proc/slabinfo (run as root)"
# Every connection is a descriptor in the stage and one in loadgen: the processes started
# here inherit this shell's limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -Sn) >= connections + 100)) ||
	die "the open-file limit ($(ulimit -Sn)) leaves no room for $connections connections"

workdir=$(mktemp -d)
cleanup() {
	stop_started_processes
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((build)); then
	note "== building the stages and loadgen (release)"
	cargo build --release --quiet --workspace --bins
fi
locate_binaries

# The slab caches a connection's objects come from, as Linux 6 names them (a kernel without
# one of them is told so and goes on without it):
# - the socket: TCP (its TCP state, struct tcp_sock), sock_inode_cache (its inode);
# - its open file, as any descriptor has: filp, lsm_file_cache (the security modules' part);
# - its name and inode's security part, which a descriptor listed in /proc/PID/fd also gets
#   there (see the control): dentry, lsm_inode_cache, and proc_inode_cache (/proc's only);
# - the epoll item that watches it: eventpoll_epi, eventpoll_pwq (its wait-queue entry),
#   ep_head (the list of a file's epoll items).
# A cache may be merged with others whose objects have the same size (SLUB does so unless
# booted with slab_nomerge): /proc/slabinfo then counts them all on one line.
socket_caches=(TCP sock_inode_cache)
file_caches=(filp lsm_file_cache)
name_caches=(dentry lsm_inode_cache proc_inode_cache)
epoll_caches=(eventpoll_epi eventpoll_pwq ep_head)

# The line of /proc/slabinfo that counts cache $1: its own, or that of the cache it is merged
# into; empty if this kernel has no such cache.
slab_line() { # cache
	local target alias
	if grep -q "^$1 " /proc/slabinfo; then
		printf '%s' "$1"
		return
	fi
	target=$(readlink "/sys/kernel/slab/$1" 2>/dev/null) || return 0
	for alias in /sys/kernel/slab/*; do
		[[ $(readlink "$alias" 2>/dev/null) == "$target" || $alias == */"$target" ]] || continue
		if grep -q "^${alias##*/} " /proc/slabinfo; then
			printf '%s' "${alias##*/}"
			return
		fi
	done
}

# The caches merged with cache $1, comma-separated (empty if none).
merged_with() { # cache
	local target alias names=()
	target=$(readlink "/sys/kernel/slab/$1" 2>/dev/null) || return 0
	for alias in /sys/kernel/slab/*; do
		[[ ${alias##*/} != "$1" && $(readlink "$alias" 2>/dev/null) == "$target" ]] || continue
		names+=("${alias##*/}")
	done
	local IFS=,
	printf '%s' "${names[*]}"
}

# Bytes of one object of cache $1, with its alignment and metadata: /proc/slabinfo's
# objsize, which /sys/kernel/slab/NAME/slab_size also gives for a merged name.
object_bytes() { # cache
	cat "/sys/kernel/slab/$1/slab_size" 2>/dev/null ||
		awk -v name="$(slab_line "$1")" '$1 == name { print $4 }' /proc/slabinfo
}

caches=()
for cache in "${socket_caches[@]}" "${file_caches[@]}" "${name_caches[@]}" "${epoll_caches[@]}"; do
	if [[ -n $(slab_line "$cache") ]]; then
		caches+=("$cache")
	else
		note "(no slab cache $cache in this kernel: left out)"
	fi
done

# Established connections whose local (sport) or remote (dport) port is $2: counted by `ss`,
# over netlink, because listing /proc/PID/fd makes objects of its own (see the control).
connections_on() { # sport|dport port
	ss -Htn state established "( $1 = :$2 )" | wc -l
}

# The descriptors registered with the process's epoll instances: one `tfd:` line each in the
# epoll descriptor's fdinfo (among the first descriptors, where mio opens it).
epoll_items_of() { # pid
	local fd count=0
	for ((fd = 0; fd < 64; fd++)); do
		[[ -e /proc/$1/fdinfo/$fd ]] || continue
		count=$((count + $(grep -c '^tfd:' "/proc/$1/fdinfo/$fd" || true)))
	done
	printf '%s' "$count"
}

# Listing /proc/PID/fd (as ls, lsof or a monitoring agent do) gives each descriptor listed a
# dentry and an inode of /proc, kept while its process lives. Some machines run an agent that
# lists every process's descriptors when it likes; so that the count does not depend on
# whether it came by, every process holding descriptors is listed before the held reading,
# and the control measures what that adds per descriptor. None of it is a connection's cost.
list_descriptors() { # pid...
	local pid
	for pid in "$@"; do
		ls -f "/proc/$pid/fd" >/dev/null 2>&1 || true
	done
}

# One reading, as "key value" lines in file $1: the process's own figures ("-" once it is
# gone), the connections on the port, and the slab caches the kernel shares with everyone.
sample() { # file pid port
	local cache
	{
		if [[ -n $2 && -e /proc/$2/status ]]; then
			printf 'rss_kb %s\n' "$(awk '/^VmRSS:/ { print $2 }' "/proc/$2/status")"
			printf 'epoll_items %s\n' "$(epoll_items_of "$2")"
		else
			printf 'rss_kb -\nepoll_items -\n'
		fi
		printf 'stage_sockets %s\n' "$(connections_on sport "$3")"
		printf 'loadgen_sockets %s\n' "$(connections_on dport "$3")"
		for cache in "${caches[@]}"; do
			printf 'slab_%s %s\n' "$cache" \
				"$(awk -v name="$(slab_line "$cache")" '$1 == name { print $2 }' /proc/slabinfo)"
		done
		printf 'slab_kb %s\n' "$(awk '/^Slab:/ { print $2 }' /proc/meminfo)"
	} >"$1"
}

# Prints the table of the readings before, held and after in $workdir; then, for the control
# (-v mode=control), the objects per descriptor, and for a stage, the bytes per connection.
report() { # awk assignments...
	awk -v n="$connections" -v merged=" $merged " \
		-v sizes="$(for c in "${caches[@]}"; do printf '%s=%s ' "$c" "$(object_bytes "$c")"; done)" \
		-v own_caches=" ${socket_caches[*]} ${file_caches[*]} " \
		-v name_caches=" ${name_caches[*]} " -v epoll_caches=" ${epoll_caches[*]} " "$@" '
		FILENAME ~ /before$/ { before[$1] = $2; order[++keys] = $1 }
		FILENAME ~ /held$/ { held[$1] = $2 }
		FILENAME ~ /after$/ { after[$1] = $2 }
		# What the held descriptors added. The slab caches are shared with every other
		# program, which go on allocating and freeing meanwhile: their baseline is the mean
		# of before and after (both without them), so that a steady drift cancels out. The
		# figures of the stage itself count from before.
		function added(key) {
			if (key ~ /^slab_/)
				return held[key] - (before[key] + after[key]) / 2
			return held[key] - before[key]
		}
		function ratio(a, b) { return b ? a / b : 0 }
		function member(list, word) { return index(list, " " word " ") > 0 }
		END {
			split(sizes, pairs, " ")
			for (p in pairs) { split(pairs[p], kv, "="); size[kv[1]] = kv[2] }
			split(control_list, pairs, " ")
			for (p in pairs) { split(pairs[p], kv, "="); control[kv[1]] = kv[2] }
			label["rss_kb"] = "stage RSS, kB"
			label["epoll_items"] = "stage epoll items"
			label["stage_sockets"] = "stage sockets (ss)"
			label["loadgen_sockets"] = "loadgen sockets (ss)"
			label["slab_kb"] = "all slab caches, kB (meminfo)"
			printf "%-32s %9s %9s %9s %9s %15s\n", "", "before", "held", "after", "added", "per " unit
			for (k = 1; k <= keys; k++) {
				key = order[k]
				if (held[key] == "-" || (mode == "control" && key !~ /^slab_/))
					continue
				name = key ~ /^slab_/ && key != "slab_kb" ? substr(key, 6) " objects" : label[key]
				if (member(merged, substr(key, 6))) { name = name " *"; footnote = 1 }
				printf "%-32s %9d %9d %9s %9.0f %15.2f\n", name, before[key], held[key], after[key], added(key), added(key) / n
			}
			if (footnote)
				print "* merged with other caches (see above): the row counts their objects too"
			if (mode == "control") {
				# What a listed descriptor adds to the name caches: its /proc entry.
				printf "control:"
				for (key in held)
					if (member(name_caches, substr(key, 6)))
						printf " %s=%.2f", substr(key, 6), added(key) / n
				printf "\n"
				exit
			}
			# The stage end of a connection: its socket, open file and name, the objects
			# added over the sockets added (both ends), less, for the name caches, what any
			# listed descriptor adds there (the control); times the stage sockets per
			# connection; then its epoll items, one object of each epoll cache each (merged
			# rows cannot be counted apart).
			sockets = added("stage_sockets") + added("loadgen_sockets")
			per_socket = 0
			detail = ""
			for (k = 1; k <= keys; k++) {
				cache = substr(order[k], 6)
				if (!member(own_caches, cache) && !member(name_caches, cache))
					continue
				objects = ratio(added("slab_" cache), sockets) - (member(name_caches, cache) ? control[cache] : 0)
				per_socket += objects * size[cache]
				detail = detail sprintf("%s%s %.2f x %d", detail == "" ? "" : ", ", cache, objects, size[cache])
			}
			stage_share = added("stage_sockets") / n
			items = added("epoll_items") / n
			item_bytes = 0
			for (cache in size)
				if (member(epoll_caches, cache))
					item_bytes += size[cache]
			kernel = per_socket * stage_share + items * item_bytes
			rss = added("rss_kb") * 1024 / n
			printf "kernel bytes per socket, either end: %.0f (%s)\n", per_socket, detail
			printf "stage sockets per connection %.2f; epoll items per connection %.2f, %d bytes each\n", stage_share, items, item_bytes
			printf "per connection, %s round %d: process %.0f bytes (%.1f KiB), kernel %.0f bytes (%.1f KiB), together %.1f KiB\n", stage, round, rss, rss / 1024, kernel, kernel / 1024, (rss + kernel) / 1024
		}' "$workdir/before" "$workdir/held" "$workdir/after"
}

printf '$ docs/measurements/kernel_memory.sh --connections %s --rounds %s\n' "$connections" "$rounds"
printf '%s cores (nproc), %s, Linux %s\n' "$(nproc)" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)"
printf 'measured on %s; load average at the start: %s\n' "$(date -u +%Y-%m-%d)" \
	"$(cut -d ' ' -f 1-3 /proc/loadavg)"
printf 'object sizes, bytes:'
for cache in "${caches[@]}"; do
	printf ' %s %s' "$cache" "$(object_bytes "$cache")"
done
printf '\n'
merged=""
for cache in "${caches[@]}"; do
	mates=$(merged_with "$cache")
	[[ -n $mates ]] || continue
	merged+=" $cache"
	printf '%s is merged with %s (counted as %s)\n' "$cache" "$mates" "$(slab_line "$cache")"
done

# The control: as many descriptors, none a socket (all of /dev/null, which has one dentry and
# one inode for them all), listed as the sockets will be.
printf '\ncontrol: one process holding %s descriptors of /dev/null, listed in /proc\n' "$connections"
sample "$workdir/before" "" 0
(
	# `exec` with only a redirection opens the descriptor in this shell; sleep inherits them.
	for ((i = 0; i < connections; i++)); do
		exec {fd}</dev/null
	done
	exec sleep 30
) &
holder=$!
running_pids+=("$holder")
sleep 2
list_descriptors "$holder"
sample "$workdir/held" "" 0
stop_process "$holder"
sleep 1
sample "$workdir/after" "" 0
report -v mode=control -v unit=descriptor | tee "$workdir/control"
control=$(sed -n 's/^control: //p' "$workdir/control")

# Per round: the stage's flags, loadgen's flags, and what its connections are.
runs=(
	"06_event_loop|--max-conns $((connections + 1000)) --header-timeout-ms 600000||that sent nothing"
	"07_keep_alive|--max-conns $((connections + 1000)) --keep-alive-ms 600000|--keep-alive|idle after one request each (keep-alive)"
)
# loadgen opens the held connections at 2000 a second, then runs its one healthy client (one
# request a second) for --duration: time enough to read everything while they are held.
open_seconds=$((connections / 2000 + 1))
summary=()
for run in "${runs[@]}"; do
	IFS='|' read -r stage stage_args loadgen_args what <<<"$run"
	read -r -a stage_args <<<"$stage_args"
	read -r -a loadgen_args <<<"$loadgen_args"
	for ((round = 1; round <= rounds; round++)); do
		start_stage "$stage-$round" "$stage" --work-ms 0 --quiet "${stage_args[@]}"
		port=${stage_url%/}
		port=${port##*:}
		sleep 0.5
		sample "$workdir/before" "$stage_pid" "$port"
		"$loadgen" --url "$stage_url" --scenario held --held "$connections" --clients 1 --rate 1 \
			--duration 6 --no-live --no-server-stats "${loadgen_args[@]+"${loadgen_args[@]}"}" \
			>"$workdir/loadgen.out" 2>&1 &
		loader=$!
		running_pids+=("$loader")
		# Held once the stage has a socket for each (or loadgen gave up opening them).
		for ((i = 0; i < (open_seconds + 10) * 5; i++)); do
			(($(connections_on sport "$port") >= connections)) && break
			kill -0 "$loader" 2>/dev/null || break
			sleep 0.2
		done
		# A second for the last ones' first request (07) to be answered and its buffer freed.
		sleep 1
		list_descriptors "$stage_pid" "$loader"
		sample "$workdir/held" "$stage_pid" "$port"
		wait "$loader" || true
		forget_pid "$loader"
		# After: the stage stopped too, so that nothing of its connections is left.
		stop_process "$stage_pid"
		sleep 1
		sample "$workdir/after" "" "$port"

		printf '\n%s, round %s: %s connections held %s\n' "$stage" "$round" "$connections" "$what"
		report -v stage="$stage" -v round="$round" -v control_list="$control" -v unit=connection |
			tee "$workdir/round"
		summary+=("$(tail -n 1 "$workdir/round")")
		grep -E '^  held ' "$workdir/loadgen.out" ||
			printf '  (loadgen printed no held line: %s)\n' "$(tail -n 1 "$workdir/loadgen.out")"
	done
done

printf '\nper idle connection: the process (RSS added / connections) and the kernel (the stage end:\n'
printf 'its socket, open file and epoll item; the client end, here loadgen'\''s, is a socket too,\n'
printf 'but on a network it is on the client'\''s machine)\n'
printf '%s\n' "${summary[@]}"
