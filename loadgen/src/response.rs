//! Reading a response: find the end of its head, take the status, `Content-Length` and
//! whether the connection stays open.
//!
//! The mirror of the server's `src/http/mod.rs`. TCP hands us bytes in whatever pieces it likes,
//! so the head may arrive over several reads; [`parse_head`] is called on everything read so
//! far and answers "not yet" until the blank line that ends the head is there. The body is
//! then as long as `Content-Length` says; without one, it lasts until the server closes.
//!
//! With `--keep-alive` the client sends its next request on the same connection, but only
//! if the server will read it: [`Head::persistent`] applies RFC 9112 section 9.3.

/// The parts of a response head the generator needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// `200`, `404`, `408`...
    pub status: u16,
    /// The declared body length; `None` means "until the connection closes".
    pub content_length: Option<u64>,
    /// Bytes up to and including the blank line: the body starts here.
    pub len: usize,
    /// `HTTP/1.0`, whose connections close after one response unless it says `keep-alive`.
    pub http10: bool,
    /// The `Connection` header has the token `close`: the server closes after this response.
    pub close: bool,
    /// The `Connection` header has the token `keep-alive` (what an HTTP/1.0 server must say).
    pub keep_alive: bool,
}

impl Head {
    /// Whether the server will read another request on this connection (RFC 9112 section
    /// 9.3): not after `Connection: close`, not from HTTP/1.0 without `keep-alive`, and not
    /// when the body has no length, because then only the close can end it.
    pub fn persistent(&self) -> bool {
        !self.close && (!self.http10 || self.keep_alive) && self.content_length.is_some()
    }
}

/// Why a response could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Looks for a complete head at the start of `bytes`.
///
/// `Ok(None)`: the head is not complete yet, read more. `Ok(Some(head))`: `head.len` bytes
/// are the head, the rest is the start of the body.
pub fn parse_head(bytes: &[u8]) -> Result<Option<Head>, Malformed> {
    let Some(len) = find_blank_line(bytes) else {
        return Ok(None);
    };
    let mut lines = bytes[..len]
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let (http10, status) = parse_status_line(lines.next().unwrap_or_default())?;
    let mut content_length = None;
    let (mut close, mut keep_alive) = (false, false);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue; // the blank line at the end, or a line we do not care about
        };
        let name = &line[..colon];
        if name.eq_ignore_ascii_case(b"connection") {
            // A comma-separated list of tokens, in any case; several lines add up.
            for token in line[colon + 1..].split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let value = line[colon + 1..].trim_ascii();
            let length = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(Malformed("Content-Length is not a number"))?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(Malformed("two different Content-Length values"));
            }
            content_length = Some(length);
        }
    }
    Ok(Some(Head {
        status,
        content_length,
        len,
        http10,
        close,
        keep_alive,
    }))
}

/// Where the head ends: just after `\r\n\r\n` (or a bare `\n\n`, which RFC 9112 §2.2 lets a
/// recipient accept).
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'\n') {
        let newline = at + offset;
        match bytes.get(newline + 1) {
            Some(b'\n') => return Some(newline + 2),
            Some(b'\r') if bytes.get(newline + 2) == Some(&b'\n') => return Some(newline + 3),
            _ => at = newline + 1,
        }
    }
    None
}

/// The status of a response that starts with `bytes`, as soon as its first line is there:
/// an idle connection's only answer is usually a 408 just before the close.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let line = &bytes[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    parse_status_line(line).ok().map(|(_, status)| status)
}

/// `HTTP/1.1 200 OK` gives 200; the flag says whether it was HTTP/1.0.
fn parse_status_line(line: &[u8]) -> Result<(bool, u16), Malformed> {
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .filter(|rest| rest.len() >= 5 && rest[0].is_ascii_digit() && rest[1] == b' ')
        .ok_or(Malformed("the response does not start with HTTP/1.x"))?;
    let code = &rest[2..5];
    let after = rest.get(5);
    if !code.iter().all(u8::is_ascii_digit) || after.is_some_and(|&b| b != b' ') {
        return Err(Malformed("the status is not a three-digit number"));
    }
    let status = code
        .iter()
        .fold(0u16, |n, &digit| n * 10 + u16::from(digit - b'0'));
    Ok((rest[0] == b'0', status))
}

/// The server's `/stats` body is one line of JSON with whole-number values. Rather than a
/// JSON parser, this takes the number after `"key":`, which is all the report needs.
pub fn json_u64(json: &str, key: &str) -> Option<u64> {
    let quoted = format!("\"{key}\":");
    let at = json.find(&quoted)? + quoted.len();
    let digits: &str = json[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Like [`json_u64`], for a string value without escapes (`"stage":"01_single"`).
pub fn json_str<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\":\"");
    let at = json.find(&quoted)? + quoted.len();
    let value = &json[at..at + json[at..].find('"')?];
    (!value.contains('\\')).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Type: text/plain\r\n\
                        Content-Length: 12\r\nConnection: close\r\n\r\nHello World\n";

    #[test]
    fn a_whole_response_gives_status_length_and_where_the_body_starts() {
        let head = parse_head(OK).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, Some(12));
        assert_eq!(&OK[head.len..], b"Hello World\n");
    }

    #[test]
    fn a_head_cut_anywhere_is_not_complete_yet() {
        let end = OK.len() - 12;
        for cut in 0..end {
            assert_eq!(parse_head(&OK[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse_head(&OK[..end]).unwrap().is_some());
    }

    #[test]
    fn header_names_are_case_insensitive_and_bare_newlines_are_accepted() {
        let head = parse_head(b"HTTP/1.0 408 Request Timeout\ncontent-LENGTH:  7 \n\nlate...")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.status, head.content_length, head.len, head.http10),
            (408, Some(7), 50, true)
        );
    }

    #[test]
    fn without_content_length_the_body_runs_to_the_close() {
        let head = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.content_length), (204, None));
    }

    #[test]
    fn malformed_heads_are_reported() {
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A status line with no reason phrase is still a status line.
        assert_eq!(
            parse_head(b"HTTP/1.1 200\r\n\r\n").unwrap().unwrap().status,
            200
        );
    }

    /// The cases of RFC 9112 section 9.3 that decide whether the next request may follow.
    #[test]
    fn the_connection_header_and_the_version_decide_persistence() {
        let persistent = |head: &[u8]| parse_head(head).unwrap().unwrap().persistent();
        let cl = "Content-Length: 0\r\n";
        for (head, expected) in [
            (format!("HTTP/1.1 200 OK\r\n{cl}\r\n"), true),
            (
                format!("HTTP/1.1 200 OK\r\n{cl}Connection: close\r\n\r\n"),
                false,
            ),
            (
                format!("HTTP/1.1 200 OK\r\n{cl}connection: CLOSE\r\n\r\n"),
                false,
            ),
            (
                format!("HTTP/1.1 200 OK\r\n{cl}Connection: keep-alive , Close\r\n\r\n"),
                false,
            ),
            (
                format!("HTTP/1.1 200 OK\r\nConnection: upgrade\r\n{cl}Connection: close\r\n\r\n"),
                false,
            ),
            // A token that only contains the word is another token.
            (
                format!("HTTP/1.1 200 OK\r\n{cl}Connection: closed\r\n\r\n"),
                true,
            ),
            (format!("HTTP/1.0 200 OK\r\n{cl}\r\n"), false),
            (
                format!("HTTP/1.0 200 OK\r\n{cl}Connection: Keep-Alive\r\n\r\n"),
                true,
            ),
            // Without a length, only the close ends the body.
            ("HTTP/1.1 200 OK\r\n\r\n".to_string(), false),
        ] {
            assert_eq!(persistent(head.as_bytes()), expected, "{head:?}");
        }
    }

    #[test]
    fn the_status_is_read_from_the_first_line_alone() {
        assert_eq!(
            status_of(b"HTTP/1.1 408 Request Timeout\r\nContent-"),
            Some(408)
        );
        assert_eq!(status_of(b"HTTP/1.1 408 Request Ti"), None);
        assert_eq!(status_of(b"garbage\r\n"), None);
    }

    #[test]
    fn stats_fields_are_read_by_key() {
        let json = "{\"stage\":\"04_thread_pool\",\"uptime_ms\":12,\"accepted\":40,\
                    \"peak_in_flight\":4,\"in_flight\":0}\n";
        assert_eq!(json_u64(json, "peak_in_flight"), Some(4));
        assert_eq!(json_u64(json, "in_flight"), Some(0));
        assert_eq!(json_u64(json, "timeouts"), None);
        assert_eq!(json_str(json, "stage"), Some("04_thread_pool"));
        assert_eq!(json_str(json, "accepted"), None);
    }
}
