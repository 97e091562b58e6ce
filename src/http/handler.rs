//! Deciding a request's answer: what to send, and how much work comes first.
//!
//! The decision is [`route`]: a pure function from a request to the response and how much
//! work comes before it. Every stage uses it. The blocking stages (01-05) carry it out in
//! [`crate::blocking::handle_connection`], which sleeps for the work; the event loop (06, 07)
//! carries it out with a timer (`src/event_loop/conn.rs`). One router, two ways of waiting.
//! The work itself, [`compute_for`], and [`peer_has_left`] (is anyone still waiting for the
//! answer?) are shared the same way.
//!
//! Routes: `GET /` (and `HEAD /`) does the simulated work, then says `Hello World`;
//! `GET /stats` answers at once with the counters; anything else is 404.
//!
//! Introduced in chapter 0 (`docs/00-the-cafe.md`).

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{Method, Rejection, Request, Response, Status};
use crate::server::Server;

/// What to do with a well-formed request.
#[derive(Debug)]
pub enum Route {
    /// Answer at once, without reading the body: the client may still be sending it.
    Refuse(Response),
    /// Read the body to its end, do the work, then send the response.
    Serve(Plan),
}

/// A request that will be served: its response, and the work that comes first.
#[derive(Debug)]
pub struct Plan {
    pub response: Response,
    /// Work that waits (`--work-ms`): a sleep here, a timer on the event loop.
    pub work: Duration,
    /// Work that computes (`--cpu-ms`): a busy loop on whichever thread serves the request.
    pub cpu: Duration,
}

impl Plan {
    /// Whether there is work to skip if the client has already left.
    pub fn has_work(&self) -> bool {
        !self.work.is_zero() || !self.cpu.is_zero()
    }
}

/// Decides the answer to a well-formed request. Pure: it reads the request and the server's
/// configuration and counters, and waits for nothing.
pub fn route(request: &Request<'_>, server: &Server) -> Route {
    let head_only = match request.method {
        Some(Method::Get) => false,
        Some(Method::Head) => true,
        Some(_) => {
            return Route::Refuse(refuse(
                Status::MethodNotAllowed,
                "only GET and HEAD are served here",
            ))
        }
        None => return Route::Refuse(refuse(Status::NotImplemented, "unknown method")),
    };
    let mut plan = match request.path() {
        // The simulated work: a database call, a template, a slow upstream.
        "/" => Plan {
            response: Response::text(Status::Ok, Arc::clone(&server.hello)),
            work: server.config.work,
            cpu: server.config.cpu,
        },
        "/stats" => {
            let mut response = Response::json(server.stats_json());
            response.no_store = true;
            Plan {
                response,
                work: Duration::ZERO,
                cpu: Duration::ZERO,
            }
        }
        _ => Plan {
            response: Response::text(Status::NotFound, "404 Not Found: try / or /stats\n"),
            work: Duration::ZERO,
            cpu: Duration::ZERO,
        },
    };
    plan.response.head_only = head_only;
    Route::Serve(plan)
}

fn refuse(status: Status, why: &'static str) -> Response {
    Response::rejection(Rejection { status, why })
}

/// `--cpu-ms`: keeps the calling thread computing until it has used `how_long` of CPU time.
/// Unlike a sleep, the thread cannot do anything else meanwhile, and neither can the core it
/// runs on. CPU time, not wall-clock time: a thread that is preempted halfway (four workers
/// on two cores) has not computed while it waited, and must not count the wait as work.
pub fn compute_for(how_long: Duration) {
    if how_long.is_zero() {
        return;
    }
    let Some(start) = thread_cpu_time() else {
        return;
    };
    let mut x: u64 = 1;
    while thread_cpu_time().is_some_and(|now| now.saturating_sub(start) < how_long) {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// The CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`), which std has no call for.
fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which lives on our stack.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return None;
    }
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Sends FIN: "nothing more from me", while the client can still send and we still read.
pub fn send_fin(stream: &impl AsFd) -> std::io::Result<()> {
    socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write)
}

/// Whether the client has closed its side (or reset), seen without waiting: a peek at the
/// socket returns end-of-file once the client's FIN has arrived.
///
/// TCP cannot tell a client that left from one that only half-closed (`shutdown(SHUT_WR)`,
/// `nc -N`) and still waits for the answer: both send the same FIN. Like nginx, which logs
/// such a request as 499 "client closed request", we take it as gone.
pub fn peer_has_left(stream: &impl AsFd) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(stream)
        .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    {
        Ok(0) => true,
        // More bytes (a pipelined request): still there.
        Ok(_) => false,
        // Nothing new: still waiting for its answer.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            false
        }
        // Reset: gone.
        Err(_) => true,
    }
}
