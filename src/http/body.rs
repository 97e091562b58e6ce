//! Where a request body ends: `Content-Length`, or the chunked transfer coding.
//!
//! We serve no bodies, but a body a client sends must still be read to its end: until then
//! the client is still sending, and closing on it resets the connection (the client may then
//! lose our answer); with keep-alive (stage 07) the next request starts right after it. So a
//! body is read and thrown away, and all that matters is exactly where it ends.
//!
//! With `Content-Length: N` that is N bytes on. With `Transfer-Encoding: chunked` the body is a
//! series of chunks, each announced by its size in hexadecimal on a line of its own, ended by a
//! chunk of size 0 and an optional trailer section (RFC 9112 §7.1):
//!
//! ```text
//! 5;name=value\r\n      a chunk of 5 bytes, with an extension (ignored)
//! hello\r\n             its data, then CRLF
//! 0\r\n                 the last chunk
//! Expires: never\r\n    trailer fields (read, checked, ignored)
//! \r\n                  the end of the body
//! ```
//!
//! [`Body`] is a state machine fed whatever bytes have arrived, in any pieces: [`Body::take`]
//! says how many of them belong to the body, and never takes a byte past its end. The blocking
//! stages feed it from `read()`, the event loop from non-blocking reads; the answer is the same
//! however the bytes were split (`tests/parser_props.rs`).
//!
//! Limits, so that one client's body costs a bounded amount of work: at most
//! `http::MAX_BODY` bytes of data (413), a size line of at most
//! [`MAX_CHUNK_LINE`] bytes (400), trailers of at most `http::MAX_HEAD`
//! bytes and `http::MAX_HEADERS` lines (431), and at most
//! [`MAX_CHUNKED_WIRE`] bytes on the wire in all (413), which bounds the framing around tiny
//! chunks.
//!
//! Introduced in chapter 0 (`docs/00-the-cafe.md`).

use crate::http::{parse_header_line, Rejection, Status, MAX_BODY, MAX_HEAD, MAX_HEADERS};

/// How a request's body is framed, as its head says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (no Content-Length, or `Content-Length: 0`).
    None,
    /// `Content-Length: N`, with 0 < N <= `MAX_BODY`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The longest chunk size line, extensions included.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most bytes a chunked body may take on the wire, framing included: four times the data
/// limit leaves room for chunks of a few bytes each, not for megabytes of extensions.
pub const MAX_CHUNKED_WIRE: u64 = 4 * MAX_BODY;

/// A body being read and thrown away.
#[derive(Debug)]
pub struct Body {
    step: Step,
    /// Data bytes so far (chunked): against `MAX_BODY`.
    data: u64,
    /// Bytes taken so far (chunked), framing included: against `MAX_CHUNKED_WIRE`.
    wire: u64,
    /// Length of the size or trailer line being read.
    line: usize,
    /// The trailer line being read, kept to check it once it is whole.
    trailer: Vec<u8>,
    /// Trailer bytes and lines so far.
    trailer_bytes: usize,
    trailer_lines: usize,
}

/// Where in the body the next byte falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `Content-Length`: this many bytes left.
    Length { left: u64 },
    /// A chunk size: hex digits so far, and their value.
    Size { digits: usize, value: u64 },
    /// After the size: an extension, up to the line's end.
    Extension { value: u64 },
    /// A CR ended the size line: its LF must follow.
    SizeLf { value: u64 },
    /// Inside a chunk's data.
    Data { left: u64 },
    /// After a chunk's data: its CRLF (or bare LF).
    DataEnd,
    /// After a chunk's data and a CR: its LF.
    DataLf,
    /// After the last chunk: a trailer line, or the empty line that ends the body.
    Trailer,
    /// Inside a trailer line, after a CR: its LF.
    TrailerLf,
    /// The body is over.
    Done,
}

fn bad(why: &'static str) -> Rejection {
    Rejection {
        status: Status::BadRequest,
        why,
    }
}

fn too_large() -> Rejection {
    Rejection {
        status: Status::ContentTooLarge,
        why: "body over 64 KiB",
    }
}

impl Body {
    pub fn new(framing: Framing) -> Body {
        let step = match framing {
            Framing::None => Step::Done,
            Framing::Length(n) => Step::Length { left: n },
            Framing::Chunked => Step::Size {
                digits: 0,
                value: 0,
            },
        };
        Body {
            step,
            data: 0,
            wire: 0,
            line: 0,
            trailer: Vec::new(),
            trailer_bytes: 0,
            trailer_lines: 0,
        }
    }

    /// Whether the whole body has been taken.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Takes the body's bytes from the front of `bytes` and returns how many it took: all of
    /// them, or fewer when the body ends inside `bytes` (what follows is not ours).
    pub fn take(&mut self, bytes: &[u8]) -> Result<usize, Rejection> {
        let mut at = 0;
        while at < bytes.len() {
            match self.step {
                Step::Done => break,
                Step::Length { left } => {
                    let n = usize::try_from(left)
                        .map_or(bytes.len() - at, |left| left.min(bytes.len() - at));
                    at += n;
                    let left = left - n as u64;
                    self.step = if left == 0 {
                        Step::Done
                    } else {
                        Step::Length { left }
                    };
                }
                Step::Data { left } => {
                    // The data itself is skipped in one step, not byte by byte.
                    let n = usize::try_from(left)
                        .map_or(bytes.len() - at, |left| left.min(bytes.len() - at));
                    at += n;
                    self.wire += n as u64;
                    let left = left - n as u64;
                    self.step = if left == 0 {
                        Step::DataEnd
                    } else {
                        Step::Data { left }
                    };
                }
                _ => {
                    self.chunk_byte(bytes[at])?;
                    at += 1;
                    self.wire += 1;
                }
            }
            if self.wire > MAX_CHUNKED_WIRE {
                return Err(too_large());
            }
        }
        Ok(at)
    }

    /// One byte of a chunked body's framing: a size line, the CRLF after data, or a trailer.
    fn chunk_byte(&mut self, byte: u8) -> Result<(), Rejection> {
        self.step = match (self.step, byte) {
            (Step::Size { digits, value }, _) if byte.is_ascii_hexdigit() => {
                // Leading zeros are allowed and cost nothing; the value is checked as it grows,
                // so it never overflows.
                let value = value * 16 + u64::from(hex(byte));
                if value > MAX_BODY - self.data {
                    return Err(too_large());
                }
                self.size_line_byte()?;
                Step::Size {
                    digits: digits + 1,
                    value,
                }
            }
            (Step::Size { digits: 0, .. }, _) => return Err(bad("chunk size is not hexadecimal")),
            (Step::Size { value, .. }, b'\r') => Step::SizeLf { value },
            (Step::Size { value, .. } | Step::Extension { value }, b'\n') => self.line_ended(value),
            (Step::Size { value, .. }, b';' | b' ' | b'\t') => {
                self.size_line_byte()?;
                Step::Extension { value }
            }
            (Step::Size { .. }, _) => return Err(bad("chunk size is not hexadecimal")),
            (Step::Extension { value }, b'\r') => Step::SizeLf { value },
            (Step::Extension { value }, _) if byte == b'\t' || (byte >= 0x20 && byte != 0x7f) => {
                self.size_line_byte()?;
                Step::Extension { value }
            }
            (Step::Extension { .. }, _) => return Err(bad("control byte in a chunk extension")),
            (Step::SizeLf { value }, b'\n') => self.line_ended(value),
            (Step::SizeLf { .. }, _) => return Err(bad("bare CR in a chunk size line")),
            (Step::DataEnd, b'\r') => Step::DataLf,
            (Step::DataEnd | Step::DataLf, b'\n') => Step::Size {
                digits: 0,
                value: 0,
            },
            (Step::DataEnd | Step::DataLf, _) => {
                return Err(bad("chunk data not followed by CRLF"))
            }
            (Step::Trailer, b'\r') => Step::TrailerLf,
            (Step::Trailer | Step::TrailerLf, b'\n') => return self.trailer_line_ended(),
            (Step::TrailerLf, _) => return Err(bad("bare CR in a trailer line")),
            (Step::Trailer, _) => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > MAX_HEAD {
                    return Err(Rejection {
                        status: Status::HeaderFieldsTooLarge,
                        why: "trailer section over 8 KiB",
                    });
                }
                self.trailer.push(byte);
                Step::Trailer
            }
            // Length, Data and Done are handled in `take` and never reach here.
            (step @ (Step::Length { .. } | Step::Data { .. } | Step::Done), _) => step,
        };
        Ok(())
    }

    /// Counts a byte of a size line against its cap.
    fn size_line_byte(&mut self) -> Result<(), Rejection> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(bad("chunk size line over 4 KiB"));
        }
        Ok(())
    }

    /// A size line ended: the data of a chunk follows, or, after the last chunk, the trailers.
    fn line_ended(&mut self, value: u64) -> Step {
        self.line = 0;
        if value == 0 {
            return Step::Trailer;
        }
        self.data += value;
        Step::Data { left: value }
    }

    /// A trailer line ended: an empty one ends the body, any other must be a valid field line.
    fn trailer_line_ended(&mut self) -> Result<(), Rejection> {
        if self.trailer.is_empty() {
            self.step = Step::Done;
            return Ok(());
        }
        parse_header_line(&self.trailer)?;
        self.trailer_lines += 1;
        if self.trailer_lines > MAX_HEADERS {
            return Err(Rejection {
                status: Status::HeaderFieldsTooLarge,
                why: "more than 64 trailer lines",
            });
        }
        self.trailer.clear();
        self.step = Step::Trailer;
        Ok(())
    }
}

fn hex(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` to a chunked body `piece` bytes at a time; returns the status of a
    /// rejection, or how many bytes the body took and whether it ended.
    fn chunked(bytes: &[u8], piece: usize) -> Result<(usize, bool), u16> {
        let mut body = Body::new(Framing::Chunked);
        let mut taken = 0;
        for part in bytes.chunks(piece.max(1)) {
            let n = body.take(part).map_err(|r| r.status.code())?;
            taken += n;
            if n < part.len() {
                break;
            }
        }
        Ok((taken, body.is_done()))
    }

    #[test]
    fn a_chunked_body_ends_exactly_after_its_last_chunk_and_trailers() {
        let body: &[u8] = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nExpires: never\r\n\r\n";
        let next = b"GET / HTTP/1.1\r\n";
        let bytes = [body, next].concat();
        for piece in [1, 2, 3, 7, 1000] {
            assert_eq!(
                chunked(&bytes, piece),
                Ok((body.len(), true)),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn chunked_decisions() {
        let cases: &[(&[u8], Result<bool, u16>)] = &[
            (b"0\r\n\r\n", Ok(true)),
            (b"0\n\n", Ok(true)),
            (b"00000A\r\n0123456789\r\n0\r\n\r\n", Ok(true)),
            (b"a \t;ext\r\n0123456789\r\n0\r\n\r\n", Ok(true)),
            (b"3\r\nabc\r\n", Ok(false)),
            (b"\r\n", Err(400)),
            (b"x\r\n", Err(400)),
            (b"-1\r\n", Err(400)),
            (b"3\r\nabcd\r\n", Err(400)),
            (b"3\rx", Err(400)),
            (b"3;a\x01b\r\n", Err(400)),
            (b"3\r\nabc\r\n0\r\nBad Trailer\r\n\r\n", Err(400)),
            (b"3\r\nabc\r\n0\r\n folded: x\r\n\r\n", Err(400)),
            (b"3\r\nabc\r\n0\r\nX: a\rb\r\n\r\n", Err(400)),
            (b"10001\r\n", Err(413)),
            (b"FFFFFFFFFFFFFFFFFFFFFFFF\r\n", Err(413)),
            (b"8000\r\n", Ok(false)),
        ];
        for (bytes, want) in cases {
            let got = chunked(bytes, 1000).map(|(_, done)| done);
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(bytes));
            let bytewise = chunked(bytes, 1).map(|(_, done)| done);
            assert_eq!(
                bytewise,
                *want,
                "byte by byte {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn data_over_the_limit_is_413_across_chunks() {
        let chunk = [b"8000\r\n".as_slice(), &[b'x'; 0x8000], b"\r\n"].concat();
        let two = [chunk.as_slice(), &chunk].concat();
        assert_eq!(
            chunked(&[two.as_slice(), b"0\r\n\r\n"].concat(), 4096).map(|r| r.1),
            Ok(true)
        );
        let three = [two.as_slice(), b"1\r\n"].concat();
        assert_eq!(chunked(&three, 4096), Err(413));
    }

    #[test]
    fn tiny_chunks_and_long_lines_are_bounded() {
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(chunked(&long_ext, 100), Err(400));
        // One byte per chunk costs six bytes on the wire: past the wire cap long before the
        // data cap.
        let tiny: Vec<u8> = b"1\r\nx\r\n".repeat(60_000);
        assert_eq!(chunked(&tiny, 4096), Err(413));
        let mut trailer = b"0\r\nX: ".to_vec();
        trailer.resize(MAX_HEAD + 100, b'a');
        assert_eq!(chunked(&trailer, 500), Err(431));
    }

    #[test]
    fn a_content_length_body_takes_exactly_its_length() {
        let mut body = Body::new(Framing::Length(5));
        assert_eq!(body.take(b"he"), Ok(2));
        assert!(!body.is_done());
        assert_eq!(body.take(b"lloGET"), Ok(3));
        assert!(body.is_done());
        assert_eq!(body.take(b"GET"), Ok(0));
        assert!(Body::new(Framing::None).is_done());
    }
}
