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

/// Generous bound for anything that should take well under a second.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running stage.
pub struct Stage {
    child: Child,
    pub addr: SocketAddr,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

impl Stage {
    /// Starts `bin` with `--addr 127.0.0.1:0` plus `args` and waits for its start-up line.
    pub fn start(bin: &str, args: &[&str]) -> Stage {
        let mut child = Command::new(bin)
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
            stdout,
            stderr,
        }
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

    /// `GET path` with a Host header, parsed.
    pub fn get(&self, path: &str) -> Reply {
        Reply::parse(
            &self.exchange(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()),
        )
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

    /// Open file descriptors of the server process (Linux: entries of /proc/PID/fd).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
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
                self.stdout.read_to_string(&mut rest).unwrap();
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
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                    .unwrap();
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
