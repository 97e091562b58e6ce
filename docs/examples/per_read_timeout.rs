//! Why a per-read timeout is not a deadline, as code you can run.
//!
//! Chapter 5 (`docs/05-timeouts.md`) shows these two functions. `tests/docs.rs` compiles this
//! file and proves the point with them: a client that sends one byte every 100 ms keeps
//! [`read_head_with_read_timeout`] busy for as long as it likes, although no single read ever
//! waits the full timeout. The stage 05 server reads through `tcp_server::blocking::deadline` instead.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// The tempting fix for a silent client: give up when one read waits longer than `timeout`.
///
/// Reads until the empty line that ends a request head. Each read may wait up to `timeout`,
/// and every byte that arrives starts that wait over.
pub fn read_head_with_read_timeout(stream: &TcpStream, timeout: Duration) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(timeout))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut stream = stream;
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        // Fails with WouldBlock (TimedOut on Windows) only if *this* read waited `timeout`.
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

/// A slow client: connects and sends `bytes` one at a time, `pause` apart, then reads the
/// answer until the server closes. Returns what the server sent back.
pub fn trickle(addr: SocketAddr, bytes: &[u8], pause: Duration) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    // Send each byte at once, in its own segment, instead of letting the kernel batch them.
    stream.set_nodelay(true)?;
    for byte in bytes {
        if stream.write_all(&[*byte]).is_err() {
            break; // the server has hung up on us
        }
        thread::sleep(pause);
    }
    let mut answer = Vec::new();
    // A reset after the answer still leaves the answer in `answer`.
    let _ = stream.read_to_end(&mut answer);
    Ok(answer)
}
