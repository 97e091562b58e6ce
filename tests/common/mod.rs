//! Test harness: starts a real stage binary on a free port and talks raw TCP to it.
//!
//! Every integration test goes through [`Stage`]: it runs the binary Cargo built
//! (`env!("CARGO_BIN_EXE_...")`) with `--addr 127.0.0.1:0`, reads the start-up line to learn
//! the port, and kills the process when dropped, so a failing test never leaves a server
//! behind.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Every stage: its name and the binary Cargo built for it. A new stage is added here once,
/// and every test that runs all stages (shutdown, the docs' flag checks) picks it up.
pub const ALL_STAGES: &[(&str, &str)] = &[
    ("01_single", env!("CARGO_BIN_EXE_01_single")),
    (
        "02_thread_per_conn",
        env!("CARGO_BIN_EXE_02_thread_per_conn"),
    ),
    ("03_semaphore", env!("CARGO_BIN_EXE_03_semaphore")),
    ("04_thread_pool", env!("CARGO_BIN_EXE_04_thread_pool")),
    ("05_timeouts", env!("CARGO_BIN_EXE_05_timeouts")),
    ("06_event_loop", env!("CARGO_BIN_EXE_06_event_loop")),
    ("07_keep_alive", env!("CARGO_BIN_EXE_07_keep_alive")),
    ("08_cpu_pool", env!("CARGO_BIN_EXE_08_cpu_pool")),
    ("09_loop_per_core", env!("CARGO_BIN_EXE_09_loop_per_core")),
    ("10_async", env!("CARGO_BIN_EXE_10_async")),
    ("11_tokio", env!("CARGO_BIN_EXE_11_tokio")),
];

/// A request for `/` that asks the server to close after its response, so that a client can
/// read to the end of the connection against every stage (07 would otherwise keep it open).
pub const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// Generous bound for anything that should take well under a second.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running stage.
pub struct Stage {
    child: Child,
    pub addr: SocketAddr,
    /// `None` once the test has closed it, to see the stage cope with a closed stdout.
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl Stage {
    /// Starts `bin` with `--addr 127.0.0.1:0` plus `args` and waits for its start-up line.
    pub fn start(bin: &str, args: &[&str]) -> Stage {
        Stage::start_with(bin, args, Launch::default())
    }

    /// As [`Stage::start`], under the limits and environment of `launch`.
    ///
    /// With `launch.ulimit` the stage is started as `sh -c 'ulimit ARGS && exec "$0" "$@"'
    /// BIN --addr ... ARGS...`: `exec` replaces the shell, so the child's PID is the stage's
    /// and its start-up line comes out as usual.
    pub fn start_with(bin: &str, args: &[&str], launch: Launch<'_>) -> Stage {
        let mut command = match launch.ulimit {
            None => Command::new(bin),
            Some(limits) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit {limits} && exec \"$0\" \"$@\""))
                    .arg(bin);
                shell
            }
        };
        command.envs(launch.env.iter().copied());
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the stage binary");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the start-up line");
        let name = bin.rsplit('/').next().unwrap();
        let prefix = format!("{name} listening on http://");
        let addr = line
            .trim_end()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"))
            .parse()
            .expect("a socket address in the start-up line");
        Stage {
            child,
            addr,
            stdout: Some(stdout),
            stderr,
        }
    }

    /// Closes our end of the stage's stdout, as `stage | head -1` does once it has its line:
    /// from now on every write to stdout fails with EPIPE.
    pub fn close_stdout(&mut self) {
        self.stdout = None;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the stage wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A connected client socket with a generous read timeout.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to the stage");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Sends `bytes`, then reads until the server closes. Returns what it sent back.
    pub fn exchange(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = self.connect();
        stream.write_all(bytes).expect("send the request");
        read_to_close(&mut stream)
    }

    /// `GET path` with a Host header (and `Connection: close`, so that stage 07 closes too),
    /// parsed.
    pub fn get(&self, path: &str) -> Reply {
        Reply::parse(&self.exchange(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        ))
    }

    /// The `/stats` counters (all but `stage`) by name.
    pub fn stats(&self) -> HashMap<String, u64> {
        let reply = self.get("/stats");
        assert_eq!(reply.status, 200, "{reply:?}");
        parse_stats(&reply.body)
    }

    /// Threads of the server process right now (Linux: entries of /proc/PID/task).
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The names of the server's threads, sorted (Linux: /proc/PID/task/*/comm), once they
    /// are `expected`, or as they are after [`PATIENCE`]: a new thread names itself only
    /// after it has started, so right after start-up a name may still be the program's.
    pub fn thread_names(&self, expected: &[&str]) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", self.pid()))
                .map(|tasks| {
                    tasks
                        .filter_map(|task| {
                            let comm = task.ok()?.path().join("comm");
                            Some(std::fs::read_to_string(comm).ok()?.trim().to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            if names == expected || Instant::now() > deadline {
                return names;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Open file descriptors of the server process (Linux: entries of /proc/PID/fd).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    /// Sends the signal `name` (`INT`, `TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and the rest of its stdout.
    pub fn wait_exit(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut rest = String::new();
                if let Some(stdout) = self.stdout.as_mut() {
                    stdout.read_to_string(&mut rest).unwrap();
                }
                return (status, rest);
            }
            assert!(
                Instant::now() < deadline,
                "the stage did not exit within {within:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How [`Stage::start_with`] starts a stage: under shell limits, with extra environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Launch<'a> {
    /// Arguments of the shell's `ulimit` (`"-n 64"`, `"-v 1048576"`), applied before the stage
    /// replaces the shell.
    pub ulimit: Option<&'a str>,
    /// Extra environment variables for the stage.
    pub env: &'a [(&'a str, &'a str)],
}

/// Descriptor and thread counts of a server process, to compare with a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub fds: usize,
    pub threads: usize,
}

impl Stage {
    /// Whether the server process is still running (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) {
            // The state is the first field after the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    /// CPU time the server has used so far, user plus system (Linux: /proc/PID/stat).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let (_, rest) = stat.rsplit_once(") ").unwrap();
        // After the command name: state is field 3, utime field 14 and stime field 15.
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
    }

    /// The server's address space in KiB (VmSize in /proc/PID/status).
    pub fn vm_size_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmSize:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmSize in /proc/PID/status")
    }

    /// Descriptors and threads right now.
    pub fn usage(&self) -> Usage {
        Usage {
            fds: self.fds(),
            threads: self.threads(),
        }
    }

    /// Waits until descriptors and threads are both back to `baseline` or below (connections
    /// handed to other threads close after the client has its answer); returns the last count.
    pub fn usage_back_to(&self, baseline: Usage) -> Usage {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.usage();
            if (now.fds <= baseline.fds && now.threads <= baseline.threads)
                || Instant::now() > deadline
            {
                return now;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Polls stderr until it contains `text`; false if it does not within [`PATIENCE`].
    pub fn wait_for_log(&self, text: &str) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while !self.stderr().contains(text) {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// `getconf CLK_TCK`: the unit of the CPU times in /proc (100 on every common Linux).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// How a client's read of a response ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closed its side cleanly (FIN): everything it sent was read.
    Eof,
    /// The connection was reset (RST): what the server sent may have been cut.
    Reset,
    /// Nothing more came within the read timeout, and the connection was still open.
    TimedOut,
    /// Any other error.
    Failed(std::io::ErrorKind),
}

/// Reads until the connection ends; returns what came and how it ended.
pub fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, Ending) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (bytes, Ending::Eof),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) => {
                let ending = match e.kind() {
                    std::io::ErrorKind::ConnectionReset => Ending::Reset,
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        Ending::TimedOut
                    }
                    kind => Ending::Failed(kind),
                };
                return (bytes, ending);
            }
        }
    }
}

/// Closes with a reset instead of a FIN: SO_LINGER with a zero timeout makes close() send RST.
pub fn close_with_reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until EOF (or the read timeout); a reset after some bytes still returns them.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return bytes,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends a request in pieces, pausing between them so each goes out as its own segment.
pub fn send_in_pieces(stream: &mut TcpStream, request: &[u8], pieces: usize, pause: Duration) {
    stream.set_nodelay(true).unwrap();
    let size = request.len().div_ceil(pieces);
    for piece in request.chunks(size) {
        stream.write_all(piece).unwrap();
        thread::sleep(pause);
    }
}

/// Half-closes our side: the server sees EOF after what we sent.
pub fn finish_sending(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
}

/// A response, split into its parts.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn parse(raw: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete head in {text:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("bad header {line:?}"));
                (name.to_string(), value.to_string())
            })
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
            raw: raw.to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw response with the `Date` value replaced by `DATE`, for exact comparisons.
    pub fn without_date(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw).into_owned();
        match self.header("Date") {
            Some(date) => text.replacen(date, "DATE", 1),
            None => text,
        }
    }
}

/// Parses the flat JSON object of `/stats` into its numeric fields.
pub fn parse_stats(body: &str) -> HashMap<String, u64> {
    body.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once(':')?;
            Some((key.trim_matches('"').to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Runs `clients` concurrent `GET /` requests; returns each status and the wall time of all.
pub fn concurrent_gets(stage: &Stage, clients: usize) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let addr = stage.addr;
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                stream.write_all(GET_CLOSE).unwrap();
                Reply::parse(&read_to_close(&mut stream)).status
            })
        })
        .collect();
    let statuses = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (statuses, started.elapsed())
}

/// Polls `/stats` until `field` reaches `value` (a request is in progress, say).
pub fn wait_for_stat(stage: &Stage, field: &str, value: u64) {
    let deadline = Instant::now() + PATIENCE;
    while stage.stats()[field] < value {
        assert!(Instant::now() < deadline, "{field} never reached {value}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until only the `/stats` request itself is open (connections handed to other threads
/// may still be closing when a request returns), then returns the counters.
pub fn settled_stats(stage: &Stage) -> HashMap<String, u64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = stage.stats();
        if stats["connections_open"] == 1 || Instant::now() > deadline {
            return stats;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the server's descriptor count is back to `baseline`; returns the last count.
pub fn fds_back_to(stage: &Stage, baseline: usize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = stage.fds();
        if now <= baseline || Instant::now() > deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the responses of one connection one at a time, each framed by its `Content-Length`
/// and checked by a strict parser (httparse, hyper's), so that a persistent connection (stage
/// 07) can carry several.
pub struct Responses<'s> {
    stream: &'s mut TcpStream,
    buf: Vec<u8>,
}

impl<'s> Responses<'s> {
    pub fn new(stream: &'s mut TcpStream) -> Responses<'s> {
        Responses {
            stream,
            buf: Vec::new(),
        }
    }

    /// The connection, to send more on it.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.stream
    }

    /// The next response: `Ok(None)` if the server closed cleanly before a byte of one,
    /// `Err` if what came is not a well-formed HTTP/1.1 response (or the read failed).
    pub fn next(&mut self, head_only: bool) -> Result<Option<Reply>, String> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    if parsed.version != Some(1) {
                        return Err(format!("not HTTP/1.1: {:?}", parsed.version));
                    }
                    let lengths: Vec<usize> = parsed
                        .headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .map(|h| {
                            std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .ok_or("a Content-Length that is not a number".to_string())
                        })
                        .collect::<Result<_, _>>()?;
                    let [length] = lengths[..] else {
                        return Err(format!("{} Content-Length headers", lengths.len()));
                    };
                    let code = parsed.code.unwrap_or(0);
                    // 1xx responses (100 Continue) have no body and are followed by the answer.
                    let body_len = if head_only || (100..200).contains(&code) {
                        0
                    } else {
                        length
                    };
                    let total = head_len + body_len;
                    self.fill_to(total)?;
                    let raw: Vec<u8> = self.buf.drain(..total).collect();
                    let reply = Reply::parse(&raw);
                    if reply.body.len() != body_len {
                        return Err(format!(
                            "a body of {} bytes, not {body_len}",
                            reply.body.len()
                        ));
                    }
                    return Ok(Some(reply));
                }
                Ok(httparse::Status::Partial) => {
                    if !self.read_more()? {
                        return if self.buf.is_empty() {
                            Ok(None)
                        } else {
                            Err(format!(
                                "closed inside a response: {:?}",
                                String::from_utf8_lossy(&self.buf)
                            ))
                        };
                    }
                }
                Err(e) => {
                    return Err(format!(
                        "not a valid response ({e}): {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ))
                }
            }
        }
    }

    /// Reads until `buf` holds `len` bytes.
    fn fill_to(&mut self, len: usize) -> Result<(), String> {
        while self.buf.len() < len {
            if !self.read_more()? {
                return Err(format!("closed with {} of {len} bytes", self.buf.len()));
            }
        }
        Ok(())
    }

    /// One read; false at end-of-file.
    fn read_more(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) => Err(format!("read failed: {e}")),
        }
    }
}

// ---- What every stage that keeps connections must do (07, 09, 10, 11) ----------------------

/// `GET /` on a kept connection.
pub const GET_KEPT: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
/// `GET /stats` on a kept connection.
pub const STATS_KEPT: &[u8] = b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n";

/// `n` regulars: each asks for `/stats` on a connection of its own, gets its 200, and stays,
/// idle and kept.
pub fn idle_regulars(stage: &Stage, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut stream = stage.connect();
            stream.write_all(STATS_KEPT).unwrap();
            let reply = Responses::new(&mut stream).next(false).unwrap().unwrap();
            assert_eq!(reply.status, 200);
            stream
        })
        .collect()
}

/// Ctrl-C while `regulars` are idle and `busy` is in the middle of a request: every regular
/// is closed at once (within 500 ms: they must not hold the drain), the busy one gets its 200
/// with `Connection: close`, and the process exits 0. Returns what it printed on stdout.
pub fn ctrl_c_closes_the_idle_and_finishes_the_busy(
    stage: Stage,
    mut regulars: Vec<TcpStream>,
    mut busy: TcpStream,
) -> String {
    let started = Instant::now();
    stage.interrupt();
    for stream in &mut regulars {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).map_err(|e| e.kind()), Ok(0));
    }
    let idle_closed = started.elapsed();
    let reply = Reply::parse(&read_to_close(&mut busy));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    let (status, stdout) = stage.wait_exit(PATIENCE);
    assert!(status.success(), "{status}");
    assert!(
        idle_closed < Duration::from_millis(500),
        "idle ones waited {idle_closed:?}"
    );
    stdout
}

/// Stage 07's rule, for a stage started with `--max-conns 2 --work-ms 0`: with two regulars
/// idle between requests, a third client is served at once (within 2 s); the one idle the
/// longest is closed to make room (counted in `idle_closed_for_room`), and the other keeps
/// its connection.
pub fn the_longest_idle_regular_makes_room(stage: &Stage) {
    let mut oldest = stage.connect();
    let mut newer = stage.connect();
    for stream in [&mut oldest, &mut newer] {
        stream.write_all(GET_KEPT).unwrap();
        let reply = Responses::new(stream).next(false).unwrap().unwrap();
        assert_eq!(reply.status, 200);
        thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    assert_eq!(stage.get("/").status, 200);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the third client waited {took:?}"
    );
    let mut byte = [0u8; 1];
    assert_eq!(oldest.read(&mut byte).map_err(|e| e.kind()), Ok(0));
    newer.write_all(STATS_KEPT).unwrap();
    let reply = Responses::new(&mut newer).next(false).unwrap().unwrap();
    assert_eq!(parse_stats(&reply.body)["idle_closed_for_room"], 1);
}

/// For a stage started with a long header deadline and `--backlog 4096`: two thousand
/// connections that send nothing are held without one thread more, and a normal request is
/// answered meanwhile. Returns the stats seen with them held.
pub fn two_thousand_silent_connections(stage: &Stage) -> HashMap<String, u64> {
    let before = stage.threads();
    let silent: Vec<TcpStream> = (0..2000).map(|_| stage.connect()).collect();
    wait_for_stat(stage, "connections_open", 2001);
    assert_eq!(stage.get("/stats").status, 200);
    let stats = stage.stats();
    assert_eq!(stage.threads(), before);
    drop(silent);
    stats
}
