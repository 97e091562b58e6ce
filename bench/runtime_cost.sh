#!/usr/bin/env bash
# bench/runtime_cost.sh: what each runtime adds to the build and to the binary: stage 10 (our
# runtime, in the library, on mio) and stage 11 (tokio, on the same mio).
#
# Built from nothing in a target directory of its own, in steps, each timed: mio, socket2 and
# libc (what both runtimes stand on); then tokio alone; then stage 10 (the library with our
# runtime, rayon, clap...); then stage 11. Cargo builds every dependency of the package for
# any of its binaries, tokio included, so the tokio step is the price of tokio for all of
# them. Then each binary's size, as built and stripped. Release profile; about 2 minutes on
# 2 cores; the target directory is removed at the end.
set -euo pipefail
export LC_ALL=C

case ${1:-} in
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
"") ;;
*)
	echo "usage: bench/runtime_cost.sh (no options)" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/.."
command -v strip >/dev/null || { echo "needs strip (binutils)" >&2; exit 1; }
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT

# Wall-clock seconds of one cargo build, its output thrown away.
build_seconds() { # cargo build arguments...
	local start end
	start=$(date +%s.%N)
	CARGO_TARGET_DIR=$target cargo build --release --locked "$@" >/dev/null 2>&1
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

printf '$ bench/runtime_cost.sh\n'
printf '%s (nproc), %s, Linux %s; %s\n' "$(nproc) cores" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -r)" \
	"$(rustc --version)"
printf 'load average at the start: %s (1, 5, 15 min)\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
base=$(build_seconds -p mio -p socket2 -p libc)
tokio=$(build_seconds -p tokio)
ours=$(build_seconds --bin 10_async)
eleven=$(build_seconds --bin 11_tokio)
printf '%-52s %8s\n' "build step (release, one after the other)" seconds
printf '%-52s %8s\n' "1. mio, socket2, libc (under both runtimes)" "$base"
printf '%-52s %8s\n' "2. tokio (rt-multi-thread, net, time, sync)" "$tokio"
printf '%-52s %8s\n' "3. 10_async: the library (our runtime), rayon, clap..." "$ours"
printf '%-52s %8s\n' "4. 11_tokio: the stage alone" "$eleven"
printf '\n%-12s %14s %16s\n' binary "bytes" "bytes stripped"
for bin in 10_async 11_tokio; do
	strip -o "$target/$bin.stripped" "$target/release/$bin"
	printf '%-12s %14s %16s\n' "$bin" "$(stat -c %s "$target/release/$bin")" \
		"$(stat -c %s "$target/$bin.stripped")"
done
