//! Chapter 7's tempting wrong version: a keep-alive server that takes the end of what one
//! `read` returned for the end of a request.
//!
//! It reads, and if the bytes end with the empty line that ends a head, it answers and reads
//! again. That works for a client that sends one request and waits for its answer, as curl
//! does. It breaks on the first client that pipelines: three requests sent in one write can
//! arrive in one read, and get one answer. The client waits for the other two for ever. It
//! breaks the other way too: a head that arrives in two pieces is answered only if the last
//! piece happens to end where the head ends. TCP carries bytes, not messages: where a request
//! ends is for HTTP's framing to say (`src/http/mod.rs`, `src/http/body.rs`), not for `read`.
//!
//! The test in `tests/docs.rs` sends it three pipelined requests and gets one answer; stage
//! 07 gets three.

use std::io::{Read, Write};
use std::net::TcpStream;

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

/// Serves one connection until the client closes it: one answer per read that ends a head.
pub fn serve(mut stream: TcpStream) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Wrong: the end of this read is taken for the end of one request.
        if buf[..n].ends_with(b"\r\n\r\n") && stream.write_all(ANSWER).is_err() {
            return;
        }
    }
}
