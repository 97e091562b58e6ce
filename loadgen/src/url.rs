//! The target: `http://HOST:PORT/PATH`, the address it resolves to, and the request bytes.
//!
//! Only loopback addresses are accepted. A load generator pointed at another machine is a
//! denial-of-service tool; this one measures the servers on your own.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed `http://` URL. Only what a GET needs: where to connect and what to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `HOST` or `HOST:PORT` exactly as given: the `Host` header repeats it.
    pub authority: String,
    /// The host without the port; IPv6 literals without their brackets.
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http://HOST[:PORT][/PATH]`. The port defaults to 80 and the path to `/`.
    pub fn parse(text: &str) -> Result<Url, String> {
        let rest = text
            .strip_prefix("http://")
            .ok_or("expected a URL starting with http:// (https is not spoken here)")?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        // Fragments never go on the wire; a bare query still needs its slash.
        let path = path.split('#').next().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        check_path(&path)?;
        if authority.is_empty() || authority.contains('@') {
            return Err("expected a host, e.g. http://127.0.0.1:1729/".into());
        }
        let (host, port) = split_host_port(authority)?;
        Ok(Url {
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The URL for another path on the same server (`/stats`).
    pub fn with_path(&self, path: &str) -> Url {
        Url {
            path: path.to_string(),
            ..self.clone()
        }
    }

    /// The one request every client sends, built once and reused for every request.
    /// Without keep-alive, `Connection: close` says what stages 01-05 do anyway: one request
    /// per connection. With it, the header is left out: HTTP/1.1 connections are persistent
    /// unless one side says otherwise (RFC 9112 section 9.3).
    pub fn request(&self, keep_alive: bool) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: loadgen\r\n{}\r\n",
            self.path,
            self.authority,
            if keep_alive {
                ""
            } else {
                "Connection: close\r\n"
            }
        )
        .into_bytes()
    }

    /// Resolves the host to a loopback address, or says why it cannot.
    pub fn resolve_loopback(&self) -> Result<SocketAddr, String> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve '{}': {e}", self.host))?
            .collect();
        // localhost may resolve to both ::1 and 127.0.0.1; the stages listen on 127.0.0.1.
        addrs
            .iter()
            .find(|a| a.is_ipv4() && a.ip().is_loopback())
            .or_else(|| addrs.iter().find(|a| a.ip().is_loopback()))
            .copied()
            .ok_or_else(|| {
                format!(
                    "'{}' is not a loopback address: loadgen only sends load to this machine \
                     (127.0.0.1, ::1 or localhost)",
                    self.host
                )
            })
    }
}

/// A path as a request line carries it: from `/`, without spaces or control characters
/// (which would end the request line early or smuggle a header in).
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "expected a path starting with /, e.g. /stats, not '{path}'"
        ));
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the path may not contain spaces or control characters".into());
    }
    Ok(())
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ']'")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("expected a host, e.g. http://127.0.0.1:1729/".into());
    }
    let port = match port {
        None => 80,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("'{port}' is not a port number from 1 to 65535"))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_splits_into_its_parts() {
        let url = Url::parse("http://127.0.0.1:1729/stats?x=1#top").unwrap();
        assert_eq!(url.authority, "127.0.0.1:1729");
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 1729));
        assert_eq!(url.path, "/stats?x=1");
        assert_eq!(url.to_string(), "http://127.0.0.1:1729/stats?x=1");
    }

    #[test]
    fn port_and_path_have_defaults() {
        let url = Url::parse("http://localhost").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert_eq!(Url::parse("http://localhost?q").unwrap().path, "/?q");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets_in_the_host_header() {
        let url = Url::parse("http://[::1]:8080/").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 8080));
        let request = String::from_utf8(url.request(false)).unwrap();
        assert_eq!(
            request,
            "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: loadgen\r\nConnection: close\r\n\r\n"
        );
    }

    /// With keep-alive the request says nothing about the connection: HTTP/1.1's default
    /// is to keep it.
    #[test]
    fn a_keep_alive_request_has_no_connection_header() {
        let url = Url::parse("http://127.0.0.1:1729/").unwrap();
        let request = String::from_utf8(url.request(true)).unwrap();
        assert_eq!(
            request,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:1729\r\nUser-Agent: loadgen\r\n\r\n"
        );
    }

    #[test]
    fn malformed_urls_are_refused() {
        for text in [
            "127.0.0.1:1729",
            "https://127.0.0.1/",
            "http://",
            "http://:80/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://[::1/",
            "http://user@127.0.0.1/",
            "http://127.0.0.1/a b",
        ] {
            assert!(Url::parse(text).is_err(), "{text} should be refused");
        }
    }

    /// A path alone (`--probe-path`) follows the URL's rules: from `/`, nothing that would
    /// break the request line.
    #[test]
    fn a_path_alone_is_checked_like_a_urls() {
        assert_eq!(check_path("/stats?x=1"), Ok(()));
        for path in ["stats", "", "/a b", "/a\r\nX: y", "/\u{7f}"] {
            assert!(check_path(path).is_err(), "{path:?} should be refused");
        }
    }

    #[test]
    fn only_loopback_is_a_target() {
        let local = Url::parse("http://127.0.0.1:1729/").unwrap();
        assert_eq!(
            local.resolve_loopback().unwrap(),
            "127.0.0.1:1729".parse().unwrap()
        );
        let remote = Url::parse("http://192.0.2.1:80/").unwrap();
        assert!(remote
            .resolve_loopback()
            .unwrap_err()
            .contains("not a loopback address"));
    }
}
