//! Properties of the request parser (`tcp_server::http`) and of the body decoder
//! (`tcp_server::http::body`), checked on generated inputs.
//!
//! The unit tests in `src/http/mod.rs` and `src/http/body.rs` pin one decision per row; these check
//! what must hold for *every* input: any bytes, delivered in any pieces, give a request or an
//! error (never a panic, never a wait for more than the cap), the way the bytes are split into
//! reads never changes the answer, a valid request comes back exactly as it was sent, and a
//! chunked body ends exactly where its encoding ends, whatever follows it.

use std::io::{self, Read};

use proptest::prelude::*;
use proptest::sample::select;
use tcp_server::http::body::{Body, Framing};
use tcp_server::http::{self, ReadError, Request, Version, MAX_BODY, MAX_HEAD};

/// Hands out `bytes` in pieces of the given sizes (cycling), then either end-of-file or, if
/// `endless`, the same bytes again forever. Counts what it handed out.
struct Pieces<'a> {
    bytes: &'a [u8],
    at: usize,
    sizes: &'a [usize],
    next_size: usize,
    endless: bool,
    handed_out: usize,
}

impl<'a> Pieces<'a> {
    fn new(bytes: &'a [u8], sizes: &'a [usize], endless: bool) -> Pieces<'a> {
        Pieces {
            bytes,
            at: 0,
            sizes,
            next_size: 0,
            endless,
            handed_out: 0,
        }
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.bytes.len() {
            if !self.endless || self.bytes.is_empty() {
                return Ok(0);
            }
            self.at = 0;
        }
        let size = self.sizes[self.next_size % self.sizes.len()];
        self.next_size += 1;
        let n = size.min(out.len()).min(self.bytes.len() - self.at);
        out[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        self.handed_out += n;
        Ok(n)
    }
}

/// What a read came to, in a form that compares across two reads of the same bytes.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Parsed(String),
    Rejected(u16),
    Closed,
    Other(String),
}

fn outcome(result: Result<(Request<'_>, usize), ReadError>) -> Outcome {
    match result {
        // Everything but how many bytes after the head arrived (that depends on the reads).
        Ok((request, _)) => Outcome::Parsed(format!("{request:?}")),
        Err(ReadError::Rejected(rejection)) => Outcome::Rejected(rejection.status.code()),
        Err(ReadError::Closed) => Outcome::Closed,
        Err(other) => Outcome::Other(format!("{other:?}")),
    }
}

/// Reads `bytes` in pieces of `sizes`, then end-of-file.
fn read_in(bytes: &[u8], sizes: &[usize]) -> (Outcome, usize) {
    let mut reader = Pieces::new(bytes, sizes, false);
    let mut input = http::Input::new();
    let outcome = outcome(http::read_request(&mut reader, &mut input));
    (outcome, reader.handed_out)
}

/// Piece sizes: mostly small (a byte at a time is the hardest case), sometimes large.
fn piece_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![3 => 1usize..8, 1 => 8usize..5000], 1..8)
}

/// Bytes that look like requests often enough to reach every branch of the parser: request
/// line parts, header lines, line endings of all kinds, long runs and random bytes.
fn request_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        4 => select(vec![
            "GET", "HEAD", "POST", "get", "BREW", " ", "  ", "/", "/stats", "*", "http://a/x",
            "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1", "\r\n", "\n", "\r", "\r\n\r\n",
            "Host: a", "Host:", "Host : a", "Content-Length: 5", "Content-Length: -1",
            "Content-Length: 99999", "Transfer-Encoding: chunked", "X-A: b", ":", "\t", "\0",
            " folded", "hello",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => (select(vec![b'a', b'\r', b'\n', b' ', 0xff]), 1usize..5000)
            .prop_map(|(byte, n)| vec![byte; n]),
        2 => prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop::collection::vec(fragment, 0..30).prop_map(|parts| parts.concat())
}

/// A valid request: its parts, the bytes of its head, and bytes that follow the head.
#[derive(Clone, Debug)]
struct Valid {
    method: &'static str,
    target: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    content_length: u64,
    head: Vec<u8>,
    after: Vec<u8>,
}

fn token() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}"
}

/// A header value: visible ASCII, obs-text, and spaces or tabs inside (not at the ends,
/// where they are optional whitespace and not part of the value).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x21u8..=0x7e,
        2 => 0x80u8..=0xff,
        1 => select(vec![b' ', b'\t']),
    ];
    prop::collection::vec(byte, 0..40).prop_filter("no whitespace at the ends", |value| {
        value.first().is_none_or(|&b| b != b' ' && b != b'\t')
            && value.last().is_none_or(|&b| b != b' ' && b != b'\t')
    })
}

fn valid_request() -> impl Strategy<Value = Valid> {
    let method = select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "get",
    ]);
    let target = prop_oneof![
        "/[!-~]{0,60}",
        "http://[a-z]{1,8}(/[!-~]{0,20})?",
        Just("*".to_string()),
    ];
    let version = select(vec![Version::Http10, Version::Http11]);
    // Header names that change framing or addressing are added on purpose below.
    let other_headers = prop::collection::vec(
        (
            token().prop_filter("not a framing header", |name| {
                !["host", "content-length", "transfer-encoding"]
                    .contains(&name.to_ascii_lowercase().as_str())
            }),
            header_value(),
        ),
        0..20,
    );
    let host = prop::option::of("[a-z0-9.-]{0,20}(:[0-9]{1,5})?");
    let content_length = prop::option::of(0..=MAX_BODY);
    let leading_empty_lines = select(vec!["", "\r\n", "\n", "\r\n\r\n"]);
    let line_ends = prop::collection::vec(select(vec!["\r\n", "\n"]), 32);
    let after = prop::collection::vec(any::<u8>(), 0..100);
    (
        (method, target, version, other_headers, host),
        (content_length, leading_empty_lines, line_ends, after),
    )
        .prop_filter_map(
            "HTTP/1.1 needs a Host",
            |((method, target, version, others, host), (length, empty, ends, after))| {
                if version == Version::Http11 && host.is_none() {
                    return None;
                }
                let mut headers = others;
                if let Some(host) = host {
                    headers.insert(headers.len() / 2, ("Host".into(), host.into_bytes()));
                }
                if let Some(length) = length {
                    headers.push(("Content-Length".into(), length.to_string().into_bytes()));
                }
                let version_text = match version {
                    Version::Http10 => "HTTP/1.0",
                    Version::Http11 => "HTTP/1.1",
                };
                let mut head = empty.as_bytes().to_vec();
                head.extend_from_slice(format!("{method} {target} {version_text}").as_bytes());
                head.extend_from_slice(ends[0].as_bytes());
                for (i, (name, value)) in headers.iter().enumerate() {
                    head.extend_from_slice(name.as_bytes());
                    head.extend_from_slice(b": ");
                    head.extend_from_slice(value);
                    head.extend_from_slice(ends[i + 1].as_bytes());
                }
                head.extend_from_slice(ends[31].as_bytes());
                Some(Valid {
                    method,
                    target,
                    version,
                    headers,
                    content_length: length.unwrap_or(0),
                    head,
                    after,
                })
            },
        )
}

proptest! {
    // A failure prints its minimal input; it then becomes a row of `found_by_the_properties`
    // below, rather than a regressions file.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any bytes, in any pieces, then end-of-file: a request, a rejection or "closed"; never a
    /// panic, an I/O error or more than MAX_HEAD bytes taken from the connection.
    #[test]
    fn any_bytes_give_a_request_or_an_error(
        bytes in prop_oneof![request_like_bytes(), prop::collection::vec(any::<u8>(), 0..10_000)],
        sizes in piece_sizes(),
    ) {
        let (outcome, taken) = read_in(&bytes, &sizes);
        prop_assert!(taken <= MAX_HEAD, "took {taken} bytes");
        prop_assert!(!matches!(outcome, Outcome::Other(_)), "{outcome:?}");
    }

    /// A client that never stops sending never makes the parser wait for ever or buffer
    /// more: within MAX_HEAD bytes it has a request or a rejection.
    #[test]
    fn endless_bytes_are_answered_within_the_cap(
        bytes in prop_oneof![request_like_bytes(), prop::collection::vec(any::<u8>(), 1..10_000)]
            .prop_filter("something to repeat", |b| !b.is_empty()),
        sizes in piece_sizes(),
    ) {
        let mut reader = Pieces::new(&bytes, &sizes, true);
        let mut input = http::Input::new();
        let outcome = outcome(http::read_request(&mut reader, &mut input));
        prop_assert!(reader.handed_out <= MAX_HEAD, "took {} bytes", reader.handed_out);
        prop_assert!(
            matches!(outcome, Outcome::Parsed(_) | Outcome::Rejected(_)),
            "{outcome:?}"
        );
    }

    /// How the bytes are split into reads never changes the answer: byte by byte, in random
    /// pieces and all at once give the same request or the same status.
    #[test]
    fn the_split_into_reads_never_changes_the_answer(
        bytes in request_like_bytes(),
        sizes in piece_sizes(),
    ) {
        let (at_once, _) = read_in(&bytes, &[usize::MAX]);
        let (in_pieces, _) = read_in(&bytes, &sizes);
        prop_assert_eq!(&in_pieces, &at_once);
        // Byte by byte costs a read per byte: kept to shorter inputs so the suite stays fast.
        if bytes.len() <= 2048 {
            let (bytewise, _) = read_in(&bytes, &[1]);
            prop_assert_eq!(&bytewise, &at_once);
        }
    }

    /// A valid request, in any pieces and followed by anything, parses to exactly what was
    /// sent: method, target, version, every header name and value, the body length.
    #[test]
    fn a_valid_request_parses_to_what_was_sent(valid in valid_request(), sizes in piece_sizes()) {
        prop_assume!(valid.head.len() <= MAX_HEAD);
        let bytes = [valid.head.as_slice(), &valid.after].concat();
        let mut reader = Pieces::new(&bytes, &sizes, false);
        let mut input = http::Input::new();
        let (request, after_head) = match http::read_request(&mut reader, &mut input) {
            Ok(parsed) => parsed,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?} for {:?}", String::from_utf8_lossy(&valid.head)))),
        };
        prop_assert_eq!(request.method, known_method(valid.method));
        prop_assert_eq!(request.target, valid.target.as_str());
        prop_assert_eq!(request.version, valid.version);
        let expected_line = format!("{} {} {}", valid.method, valid.target, match valid.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        });
        prop_assert_eq!(request.line, expected_line.as_str());
        let headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|h| (String::from_utf8_lossy(h.name).into_owned(), h.value.to_vec()))
            .collect();
        prop_assert_eq!(&headers, &valid.headers);
        let framing = match valid.content_length {
            0 => http::Framing::None,
            n => http::Framing::Length(n),
        };
        prop_assert_eq!(request.framing, framing);
        prop_assert!(after_head <= valid.after.len());
    }
}

fn known_method(token: &str) -> Option<http::Method> {
    use http::Method::*;
    Some(match token {
        "GET" => Get,
        "HEAD" => Head,
        "POST" => Post,
        "PUT" => Put,
        "DELETE" => Delete,
        "OPTIONS" => Options,
        "PATCH" => Patch,
        _ => return None,
    })
}

/// Inputs the properties once found answered differently depending on how they were split
/// into reads, kept as fixed cases: a request line over the cap is 400 or 414 by its looks,
/// not by where the reads ended, and a line of exactly the cap is fine even when its CR and
/// LF arrive apart.
#[test]
fn found_by_the_properties() {
    let mut spaces = vec![b' '; 5000];
    spaces.extend_from_slice(b"\r\n");
    let mut longest_line = b"\r\n\r\nGET /".to_vec();
    longest_line.resize(4 + 8192 - " HTTP/1.1".len(), b'a');
    longest_line.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    let cr_at = longest_line.iter().position(|&b| b == b'a').unwrap() + 8186;
    let cases: &[(&[u8], &[usize], Outcome)] = &[
        (&spaces, &[1], Outcome::Rejected(400)),
        (&spaces, &[usize::MAX], Outcome::Rejected(400)),
        (
            &longest_line,
            &[cr_at, 1, usize::MAX],
            read_in(&longest_line, &[usize::MAX]).0,
        ),
    ];
    for (bytes, sizes, want) in cases {
        assert_eq!(&read_in(bytes, sizes).0, want, "pieces {sizes:?}");
    }
    assert!(matches!(
        read_in(&longest_line, &[usize::MAX]).0,
        Outcome::Parsed(_)
    ));
}

/// Feeds `bytes` to a chunked body in pieces of `sizes` (cycling) until it ends or fails:
/// the status of a rejection, or how many bytes it took and whether it ended.
fn decode_chunked(bytes: &[u8], sizes: &[usize]) -> Result<(usize, bool), u16> {
    let mut body = Body::new(Framing::Chunked);
    let (mut at, mut next) = (0, 0);
    while at < bytes.len() && !body.is_done() {
        let size = sizes[next % sizes.len()].max(1);
        next += 1;
        let piece = &bytes[at..bytes.len().min(at + size)];
        let taken = body.take(piece).map_err(|r| r.status.code())?;
        assert!(taken <= piece.len(), "took more than it was given");
        at += taken;
        if taken < piece.len() {
            assert!(body.is_done(), "stopped short of a piece without ending");
        }
    }
    Ok((at, body.is_done()))
}

/// A chunked encoding of `data`: chunks of the given sizes (cycling), each size line with an
/// optional extension, CRLF or bare LF line ends, and optional trailer lines.
fn chunked_encoding() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let data = prop::collection::vec(any::<u8>(), 0..6000);
    let sizes = prop::collection::vec(1usize..3000, 1..6);
    let extension = select(vec!["", ";a", ";a=b", " ;q=\"x y\"", "\t;n"]);
    let line_end = select(vec!["\r\n", "\n"]);
    let trailers = prop::collection::vec(
        (token(), header_value()).prop_map(|(n, v)| [n.into_bytes(), b": ".to_vec(), v].concat()),
        0..3,
    );
    (data, sizes, extension, line_end, trailers, any::<bool>()).prop_map(
        |(data, sizes, ext, end, trailers, upper)| {
            let mut out = Vec::new();
            let (mut at, mut i) = (0, 0);
            while at < data.len() {
                let n = sizes[i % sizes.len()].min(data.len() - at);
                i += 1;
                let size = if upper {
                    format!("{n:X}")
                } else {
                    format!("{n:x}")
                };
                out.extend_from_slice(format!("{size}{ext}{end}").as_bytes());
                out.extend_from_slice(&data[at..at + n]);
                out.extend_from_slice(end.as_bytes());
                at += n;
            }
            out.extend_from_slice(format!("0{end}").as_bytes());
            for trailer in &trailers {
                out.extend_from_slice(trailer);
                out.extend_from_slice(end.as_bytes());
            }
            out.extend_from_slice(end.as_bytes());
            let len = out.len();
            (out, len)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A valid chunked body, in any pieces and followed by anything (the next request), ends
    /// exactly where its encoding ends: not a byte sooner, not a byte later.
    #[test]
    fn a_chunked_body_ends_exactly_where_it_was_encoded(
        (encoding, len) in chunked_encoding(),
        after in prop::collection::vec(any::<u8>(), 0..200),
        sizes in piece_sizes(),
    ) {
        let bytes = [encoding.as_slice(), &after].concat();
        prop_assert_eq!(decode_chunked(&bytes, &sizes), Ok((len, true)));
        prop_assert_eq!(decode_chunked(&bytes, &[usize::MAX]), Ok((len, true)));
    }

    /// Any bytes as a chunked body: never a panic, never more than MAX_BODY of data accepted,
    /// and the same answer byte by byte, in pieces and at once.
    #[test]
    fn any_bytes_as_a_chunked_body_give_the_same_answer_however_split(
        bytes in prop_oneof![
            request_like_bytes(),
            prop::collection::vec(any::<u8>(), 0..3000),
            prop::collection::vec(select(vec![b'0', b'1', b'f', b'\r', b'\n', b';', b'x', b' ']), 0..400),
        ],
        sizes in piece_sizes(),
    ) {
        let at_once = decode_chunked(&bytes, &[usize::MAX]);
        prop_assert_eq!(decode_chunked(&bytes, &sizes), at_once);
        if bytes.len() <= 1000 {
            prop_assert_eq!(decode_chunked(&bytes, &[1]), at_once);
        }
        if let Ok((taken, _)) = at_once {
            prop_assert!(taken as u64 <= 4 * MAX_BODY);
        }
    }
}
