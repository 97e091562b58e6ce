//! The people outside the door: a listening socket's accept queue, from `/proc/net/tcp`.
//!
//! The kernel completes a client's handshake on its own and puts the connection in the
//! listening socket's accept queue, where it waits until the server calls `accept`. So a
//! client is "connected" long before any server code has seen it. The queue's length is
//! public: every TCP socket is a row of `/proc/net/tcp` (IPv4) or `/proc/net/tcp6`, and for
//! a socket in state `0A` (LISTEN) the `rx_queue` field is the accept queue, what `ss -lnt`
//! shows as `Recv-Q`. It is read from outside the server, so it works for every stage, even
//! one too busy to answer `/stats`.
//!
//! A row, split on whitespace:
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
//!    0: 0100007F:06C1 00000000:0000 0A 00000000:00000003 00:00000000 00000000 1000 ...
//! ```
//!
//! Addresses are hexadecimal 32-bit words as the kernel holds them in memory (so 127.0.0.1
//! reads `0100007F` on a little-endian machine), then the port in plain hexadecimal
//! (`06C1` is 1729).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The accept queue of the socket listening for `target`, read now; `None` when no
/// listening socket for it is found (the server is gone, or this is not Linux).
pub fn accept_queue(target: SocketAddr) -> Option<u64> {
    let read = |path: &str| {
        File::open(path)
            .ok()
            .and_then(|file| accept_queue_in(BufReader::new(file), target))
    };
    match target {
        // An IPv4 client may be queued on an IPv4 listener or on a dual-stack `::` one.
        SocketAddr::V4(_) => read("/proc/net/tcp").or_else(|| read("/proc/net/tcp6")),
        SocketAddr::V6(_) => read("/proc/net/tcp6"),
    }
}

/// The accept queue of the listening rows for `target` in one file's text: the sum over
/// every row in state LISTEN on the target's port whose address is the target's or the
/// wildcard (several sockets may share a port with `SO_REUSEPORT`).
pub fn accept_queue_in(text: impl BufRead, target: SocketAddr) -> Option<u64> {
    let mut found = None;
    for line in text.lines() {
        let Ok(line) = line else {
            break;
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, _, state, queues, ..] = fields[..] else {
            continue; // the heading, or a line cut short
        };
        if state != "0A" {
            // The kernel lists its listening sockets before the connected ones. Once the
            // listener is found, the thousands of connection rows that follow (one per
            // held connection, on both sides) need not be read every 100 ms.
            if found.is_some() {
                break;
            }
            continue;
        }
        let Some((address, port)) = parse_address(local) else {
            continue;
        };
        if port != target.port() || !(address == target.ip() || is_wildcard_for(address, target)) {
            continue;
        }
        let Some(rx_queue) = queues
            .split_once(':')
            .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
        else {
            continue;
        };
        found = Some(found.unwrap_or(0) + rx_queue);
    }
    found
}

/// Whether a listener bound to `address` receives connections for `target`.
fn is_wildcard_for(address: IpAddr, target: SocketAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_unspecified() || (target.is_ipv4() && v6.to_ipv4_mapped() == ipv4_of(target))
        }
    }
}

fn ipv4_of(target: SocketAddr) -> Option<Ipv4Addr> {
    match target.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// `0100007F:06C1` or the 32-digit IPv6 form, to an address and a port.
fn parse_address(field: &str) -> Option<(IpAddr, u16)> {
    let (address, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let address = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(address.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((address, port))
}

// The sample text below was taken on a little-endian machine (x86-64), as the kernel wrote
// it there; a big-endian kernel writes the words the other way round.
#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 1 1 0 100 0 0 10 0
   1: 0100007F:06C1 00000000:0000 0A 00000000:00000070 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 00000000:1F90 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: 0100007F:06C1 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
   4: 0100007F:A1B2 0100007F:06C1 01 00000000:0000004B 00:00000000 00000000     0        0 5 1 0 20 4 30 10 -1
";

    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 6 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 00000000:0000000C 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:2329 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 8 1 0 100 0 0 10 0
";

    fn queue(text: &str, target: &str) -> Option<u64> {
        accept_queue_in(text.as_bytes(), target.parse().unwrap())
    }

    /// 127.0.0.1:1729 has 0x70 = 112 connections waiting to be accepted; the connected rows
    /// on the same port, with bytes in their own queues, are not the listener.
    #[test]
    fn the_listener_of_the_target_gives_its_queue() {
        assert_eq!(queue(TCP, "127.0.0.1:1729"), Some(112));
    }

    /// A listener on 0.0.0.0 takes connections to 127.0.0.1 too; another address does not.
    #[test]
    fn the_wildcard_address_matches_and_other_ports_do_not() {
        assert_eq!(queue(TCP, "127.0.0.1:8080"), Some(2));
        assert_eq!(
            queue(TCP, "127.0.0.1:53"),
            None,
            "listens on 127.0.0.53 only"
        );
        assert_eq!(queue(TCP, "127.0.0.1:9"), None);
    }

    /// IPv6 rows: `::` is the wildcard (and takes IPv4 clients when dual-stack), `::1` is
    /// loopback, and `::ffff:127.0.0.1` is an IPv4 address written the IPv6 way.
    #[test]
    fn ipv6_rows_are_read_too() {
        assert_eq!(queue(TCP6, "[::1]:8081"), Some(5));
        assert_eq!(queue(TCP6, "127.0.0.1:8081"), Some(5));
        assert_eq!(queue(TCP6, "[::1]:9000"), Some(12));
        assert_eq!(queue(TCP6, "127.0.0.1:9000"), None, "::1 is not 127.0.0.1");
        assert_eq!(queue(TCP6, "127.0.0.1:9001"), Some(1));
    }

    #[test]
    fn addresses_and_ports_are_decoded() {
        assert_eq!(
            parse_address("0100007F:06C1"),
            Some(("127.0.0.1".parse().unwrap(), 1729))
        );
        assert_eq!(
            parse_address("00000000000000000000000001000000:0050"),
            Some(("::1".parse().unwrap(), 80))
        );
        assert_eq!(parse_address("zz:06C1"), None);
        assert_eq!(parse_address("0100007F"), None);
    }

    /// Our own listener, with two connections not yet accepted, as the kernel reports it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_listener_shows_its_queue() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(accept_queue(addr), Some(0));
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        // connect() returns once the client has the server's SYN-ACK; the server's side
        // queues the connection when our last ACK arrives, a moment later.
        let until = |n: u64| {
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while accept_queue(addr) != Some(n) && std::time::Instant::now() < give_up {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            accept_queue(addr)
        };
        assert_eq!(until(2), Some(2));
        let _accepted = listener.accept().unwrap();
        assert_eq!(until(1), Some(1));
    }
}
