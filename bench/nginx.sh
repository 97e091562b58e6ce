# shellcheck shell=bash disable=SC2154,SC2034
# (workdir, nginx_bin and loadgen are the sourcing script's; so are the uses of url_of and
# pid_of.)
# bench/nginx.sh: nginx as the benchmarks compare against it, and wrk's output read back,
# sourced by bench/compare.sh and bench/bare_loop.sh after scripts/stages.sh.
#
# The sourcing script sets workdir (a scratch directory), nginx_bin (nginx's path), loadgen
# (found by locate_binaries), and may set nginx_workers (2 if it does not). start_nginx sets url_of[nginx], url_of[nginx+ka],
# pid_of[nginx] and nginx_pid.

declare -A url_of=() pid_of=()
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

# Whether a server answers GET / with 200, asked once by loadgen.
answers() { # url
	"$loadgen" --url "$1" --requests 1 --connect-timeout-ms 300 --timeout-ms 2000 \
		--json --no-server-stats 2>/dev/null | grep -q '"ok":1,'
}

# nginx as issue 7 describes it: 2 workers, return 200 "Hello World\n", no keep-alive, no
# access log; and, on a second port of the same process, the same with keep-alive on for
# section 1c (issue 13): keepalive_timeout 65s, keepalive_requests 1000000, so that wrk's
# connections last the whole run. Both listen backlogs are 1024, the stages' default, so
# that the backlog is not a difference between them (nginx's own default on Linux is 511).
start_nginx() {
	local prefix=$workdir/nginx port ka_port try i block
	mkdir -p "$prefix/logs" "$prefix/tmp"
	for ((try = 0; try < 5; try++)); do
		port=$(pick_port)
		ka_port=$(pick_port)
		[[ $ka_port != "$port" ]] || continue
		block='location / {
            default_type text/plain;
            return 200 "Hello World\n";
        }'
		cat >"$prefix/nginx.conf" <<EOF
worker_processes ${nginx_workers:-2};
daemon off;
master_process on;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=1024;
        keepalive_timeout 0;
        $block
    }
    server {
        listen 127.0.0.1:$ka_port backlog=1024;
        keepalive_timeout 65s;
        keepalive_requests 1000000;
        $block
    }
}
EOF
		"$nginx_bin" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
			>"$prefix/stdout" 2>"$prefix/stderr" &
		nginx_pid=$!
		running_pids+=("$nginx_pid")
		for ((i = 0; i < 50; i++)); do
			kill -0 "$nginx_pid" 2>/dev/null || break
			if answers "http://127.0.0.1:$port/" && answers "http://127.0.0.1:$ka_port/"; then
				url_of[nginx]=http://127.0.0.1:$port/
				url_of[nginx+ka]=http://127.0.0.1:$ka_port/
				pid_of[nginx]=$nginx_pid
				return 0
			fi
			sleep 0.1
		done
		stop_nginx
		grep -qs "Address already in use" "$prefix/stderr" "$prefix/logs/error.log" || break
	done
	note "== nginx did not start. Its words:"
	cat "$prefix/stderr" "$prefix/logs/error.log" >&2 2>/dev/null || true
	return 1
}

# wrk prints latencies as 420.00us, 3.71ms or 1.02s.
wrk_ms() { # file percentile, or Latency for the maximum
	awk -v p="$2" '($1 == p "%" || ($1 == p && p == "Latency")) && !done {
		done = 1; v = (p == "Latency") ? $4 : $2
		unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
		if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
		printf "%.3f", v }' "$1"
}

# wrk's requests per second and its errors (socket errors of every kind, non-2xx answers).
wrk_rps() { # file
	sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"
}
