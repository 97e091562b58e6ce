//! # Stage 10: recipe cards: async/await on a runtime of our own
//!
//! **The idea.** Stage 06 wrote each connection's progress down by hand, as a state machine;
//! stage 05 told a connection's story top to bottom, but held a thread while it waited. An
//! `async fn` does both: `serve` below tells the whole story, top to bottom, and the compiler
//! turns every `.await` into a state of a machine like stage 06's. What drives those machines
//! is a runtime (`src/runtime/`): an executor that polls the tasks that are ready, a reactor
//! that wakes a task when its socket is ready, and timers. This stage has the shape of stage
//! 09: one runtime per core (`--loops`), each on its own thread with its own `SO_REUSEPORT`
//! listener, sharing stage 08's kitchen.
//!
//! **The cafe.** Each order is a recipe card that marks every place where it must wait. The
//! barista works a card until it says "wait", puts it aside, and takes the next; when the
//! bell for that card rings (the milk is hot, the customer is back), the card goes back on
//! the pile.
//!
//! **Changed since stage 09.** The loop and its connection table give way to a runtime and
//! tasks: `accept_loop` spawns a task per connection, and `serve` is that task. The bound on
//! connections is a semaphore, a place for each (at the bound, the regular idle the longest
//! is asked to leave, as in stage 07); shutdown is a value every task can await
//! (`server.stopped()`); deadlines are `timeout_at` around a read.
//!
//! **Run it.** `cargo run --release --bin 10_async`, then a hundred curls at once: they all
//! answer after about a second, from the `loop-N` threads.
//!
//! **What breaks next.** Each runtime keeps the connections the kernel gave it: one busy with
//! a heavy client cannot hand work to an idle one. Stage 11 runs the same `serve` on tokio,
//! whose workers steal work from each other. (Chapter 10: `docs/10-async.md`.)

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use tcp_server::clock::Utc;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::event_loop::conn::Reuse;
use tcp_server::event_loop::kitchen::Kitchen;
use tcp_server::http::body::Body;
use tcp_server::http::handler::{peer_has_left, route, send_fin, Route};
use tcp_server::http::{self, Framed, Input, Persistence, ReadError, Response, Status};
use tcp_server::regulars::Regulars;
use tcp_server::runtime::net::{TcpListener, TcpStream};
use tcp_server::runtime::sync::{OwnedSemaphorePermit, Semaphore};
use tcp_server::runtime::time::{sleep, sleep_until, timeout, timeout_at};
use tcp_server::runtime::{race, spawn, yield_now, Either, Runtime};
use tcp_server::stats::{bump, LoopStats};
use tcp_server::{limits, listener, logging, shutdown, AcceptBackoff, Server, StartError};

const STAGE: &str = "10_async";
/// The most clients one runtime accepts before it lets its other tasks run (see stage 06).
const ACCEPTS_PER_TURN: usize = 64;

/// Stage 09's server, with each connection an `async fn` on a runtime of our own.
#[derive(Parser)]
#[command(name = STAGE)]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// Connections held at once, each a descriptor, a task and its buffers; each runtime
    /// holds its share, and at it the rest wait in its backlog
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = config::count(1..=1_000_000))]
    max_conns: usize,
    /// Total time to send the request, head and body; generous for people, short for idlers
    #[arg(long = "header-timeout-ms", value_name = "MS", default_value = "5000",
          value_parser = config::millis(1..=600_000))]
    header_timeout: Duration,
    /// Total time to write a response to a client that reads slowly or not at all
    #[arg(long = "write-timeout-ms", value_name = "MS", default_value = "5000",
          value_parser = config::millis(1..=600_000))]
    write_timeout: Duration,
    /// How long an idle persistent connection is kept; short, since a kept connection holds a
    /// descriptor and a client may never come back
    #[arg(long = "keep-alive-ms", value_name = "MS", default_value = "5000",
          value_parser = config::millis(1..=600_000))]
    keep_alive: Duration,
    /// Requests on one connection before the server closes it, so no client keeps one for ever
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    max_requests: u64,
    /// The kitchen's threads, which compute --cpu-ms off the runtimes; more threads than
    /// cores only adds switching; 0: no kitchen, a task computes on its runtime's thread, as
    /// stage 07's loop did [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = config::count(0..=1024))]
    cpu_threads: Option<usize>,
    /// Orders that may wait for a free cook; past it a request gets 503 at once, not a wait
    /// of more than that many orders' computing; no queue, and no 503, with no cooks
    /// [default: 32 per thread]
    #[arg(long, value_name = "Q", value_parser = config::count(1..=1_000_000))]
    cpu_queue: Option<usize>,
    /// Runtimes, each on a thread of its own with its own listener; more than cores only
    /// take turns on them [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = config::count(1..=1024))]
    loops: Option<usize>,
}

fn main() -> Result<ExitCode, StartError> {
    let Flags {
        common,
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
        cpu_threads,
        cpu_queue,
        loops,
    } = Flags::parse();
    let cpu_threads = cpu_threads.unwrap_or_else(config::cores);
    let loops = loops.unwrap_or_else(config::cores);
    let config = Config {
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
        cpu_threads,
        cpu_queue: cpu_queue.unwrap_or(32 * cpu_threads),
        loops,
        ..common.config(&[
            Flag::MaxHeld,
            Flag::HeaderTimeout,
            Flag::WriteTimeout,
            Flag::KeepAlive,
            Flag::Kitchen,
            Flag::Loops,
        ])
    };
    // One listening socket per runtime, all on one port, as in stage 09.
    let listeners = listener::bind_per_loop(config.addr, config.backlog, loops)
        .map_err(|e| StartError::Bind(config.addr, e))?;
    let local = listeners[0].local_addr().map_err(StartError::Listener)?;
    let share = (limits::connections_allowed(config.max_conns) / loops).max(1);
    let server = Server::start_tasks(STAGE, config, local)?;
    let kitchen = Kitchen::open(&server)?;
    let mut running = Vec::with_capacity(loops);
    let (started, each_started) = mpsc::channel();
    for (lane, listener) in listeners.into_iter().enumerate() {
        let (server, kitchen) = (Arc::clone(&server), Arc::clone(&kitchen));
        let started = started.clone();
        // One runtime per core, on a thread of its own: its tasks never leave it. It is made
        // there (a runtime stays on its thread), and says whether it could be.
        let thread = thread::Builder::new()
            .name(format!("loop-{lane}"))
            .spawn(move || match Runtime::new() {
                Ok(runtime) => {
                    let _ = started.send(Ok(()));
                    runtime.block_on(accept_loop(server, listener, kitchen, lane, share));
                }
                Err(e) => {
                    let _ = started.send(Err(e));
                }
            })
            .map_err(StartError::Thread)?;
        running.push(thread);
    }
    for _ in 0..loops {
        match each_started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::Poll(e)),
            Err(_) => {
                return Err(StartError::Poll(std::io::Error::other(
                    "a runtime's thread ended",
                )))
            }
        }
    }
    server.announce();
    for thread in running {
        if thread.join().is_err() {
            logging::warn(format_args!("a runtime ended with a panic"));
        }
    }
    Ok(server.finish())
}

/// One runtime's door: accepts its clients, a task for each, until Ctrl-C; then closes its
/// listener and waits for its connections to finish, at most `--drain-ms`.
async fn accept_loop(
    server: Arc<Server>,
    listener: StdListener,
    kitchen: Arc<Kitchen>,
    lane: usize,
    share: usize,
) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(e) => return logging::warn(format_args!("a runtime cannot use its listener: {e}")),
    };
    let room = Arc::new(Semaphore::new(share));
    let regulars = Arc::new(Regulars::default());
    let mut backoff = AcceptBackoff::new();
    let mut accepted = 0;
    loop {
        let (stream, peer) = match race(pin!(listener.accept()), server.stopped()).await {
            Either::Left(Ok(client)) => client,
            // One failed accept never closes the cafe: pause, then try again.
            Either::Left(Err(e)) => {
                if let Some(pause) = backoff.after(&e) {
                    sleep(pause).await;
                }
                continue;
            }
            Either::Right(()) => break,
        };
        // Its place under --max-conns. At the bound, the regular idle the longest is asked
        // to leave (stage 07's rule); with none idle, this client waits for a place.
        let place = match Arc::clone(&room).try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                if regulars.make_room() {
                    bump(&server.stats.idle_closed_for_room);
                }
                match race(pin!(Arc::clone(&room).acquire_owned()), server.stopped()).await {
                    Either::Left(Ok(place)) => place,
                    Either::Left(Err(_)) | Either::Right(()) => break,
                }
            }
        };
        spawn(serve(
            stream,
            peer,
            Arc::clone(&server),
            Arc::clone(&kitchen),
            Arc::clone(&regulars),
            lane,
            place,
        ));
        accepted += 1;
        if accepted % ACCEPTS_PER_TURN == 0 {
            yield_now().await;
        }
    }
    // Ctrl-C: close the door, then wait until every place is free again.
    drop(listener);
    let all = u32::try_from(share).unwrap_or(u32::MAX);
    let _ = timeout(shutdown::drain_left(&server), room.acquire_many_owned(all)).await;
}

/// One connection, from accept to close: stage 05's story told top to bottom, with `.await`
/// where it would block; each `.await` is a state of stage 06's machine. `_place` is this
/// connection's place under `--max-conns`, given back when the task ends.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    kitchen: Arc<Kitchen>,
    regulars: Arc<Regulars>,
    lane: usize,
    _place: OwnedSemaphorePermit,
) {
    let lane = server.stats.loops.get(lane);
    let _open = Open::count(&server, lane);
    let mut input = Input::new();
    let mut requests = 0;
    // The first request is due within --header-timeout-ms of accept (State::Head).
    let mut since = Instant::now();
    let mut wait = server.config.header_timeout;
    loop {
        // Until a request's first byte: the cheapest wait, holding no buffer (State::Idle).
        // A kept connection may be asked to leave, to make room (stage 07's rule).
        let regulars = (requests > 0).then_some(&*regulars);
        match next_request(&stream, &mut input, &server, since + wait, regulars).await {
            Arrival::Request => {}
            Arrival::Silence if requests == 0 => {
                // Not a byte of a request by the deadline: nothing to answer (as stage 06).
                bump(&server.stats.timeouts);
                return left_without_a_request(&server, peer, since);
            }
            Arrival::Closed if requests == 0 => {
                return left_without_a_request(&server, peer, since)
            }
            Arrival::Failed(e) => return server.connection_error(peer, "read failed", &e),
            Arrival::Silence | Arrival::Closed | Arrival::Stopped | Arrival::AskedToLeave => return,
        }
        if requests > 0 {
            since = Instant::now();
        }
        requests += 1;
        // One request, from its head to its answer. Boxed: only a connection in the middle
        // of a request carries a request's state; one that waits carries the wait's.
        let one = request(
            &mut stream,
            &mut input,
            &server,
            &kitchen,
            peer,
            since,
            requests,
            lane,
        );
        match Box::pin(one).await {
            After::KeepReading => {}
            After::Close { unread } => return Box::pin(linger(&mut stream, &input, unread)).await,
            After::Gone => return,
        }
        // A client that pipelines is served in turn with the others, not ahead of them.
        if input.holds_a_request() {
            yield_now().await;
        } else {
            input.release();
        }
        since = Instant::now();
        wait = server.config.keep_alive;
    }
}

/// What to do once a request is answered.
enum After {
    /// Stage 07: read the next request.
    KeepReading,
    /// Close; linger first if the client may still be sending (`unread`).
    Close { unread: bool },
    /// The connection failed or the client left: close at once.
    Gone,
}

/// One request: its head and body by the header deadline, the work, the answer by the write
/// deadline. `since` is when it began: accept for the first, its first byte for the next.
#[allow(clippy::too_many_arguments)] // what one request needs, each named where it is used
async fn request(
    stream: &mut TcpStream,
    input: &mut Input,
    server: &Server,
    kitchen: &Arc<Kitchen>,
    peer: SocketAddr,
    since: Instant,
    requests: u64,
    lane: Option<&LoopStats>,
) -> After {
    let by = since + server.config.header_timeout;
    let head_len = match settle(timeout_at(by, read_head(stream, input)).await, server, peer) {
        Ok(head_len) => head_len,
        Err(Some(answer)) => {
            let line = input.request_line().unwrap_or("-").to_string();
            return refuse(stream, server, peer, answer, &line, since).await;
        }
        Err(None) => return After::Gone,
    };
    count_request(server, lane, requests);
    let request = match http::parse_head(&input.bytes()[..head_len]) {
        Ok(request) => request,
        Err(rejection) => {
            let line = input.request_line().unwrap_or("-").to_string();
            return refuse(
                stream,
                server,
                peer,
                Response::rejection(rejection),
                &line,
                since,
            )
            .await;
        }
    };
    let line = request.line.to_string();
    let reuse = Reuse::KeepAlive {
        idle: server.config.keep_alive,
        max_requests: server.config.max_requests,
    };
    let persistence = reuse.persistence(&request, requests, server.shutting_down());
    let (framing, expect_continue) = (request.framing, request.expect_continue);
    let plan = match route(&request, server) {
        Route::Refuse(answer) => return refuse(stream, server, peer, answer, &line, since).await,
        Route::Serve(plan) => plan,
    };
    input.consume(head_len);
    // In flight from here to its answer written, as in stage 06 (Body, Working, Writing).
    let _busy = server.stats.in_flight.enter();
    // The body, read to its end and thrown away, by the same deadline (State::Body).
    let body = Body::new(framing);
    let read = timeout_at(by, read_body(stream, input, body, expect_continue)).await;
    match settle(read, server, peer) {
        Ok(()) => {}
        Err(Some(answer)) => return refuse(stream, server, peer, answer, &line, since).await,
        Err(None) => return After::Gone,
    }
    // The work: the kitchen computes, a timer waits (State::Cooking, State::Working).
    let has_work = plan.has_work();
    let mut answer = plan.response;
    answer.persistence = persistence;
    if has_work {
        match work(stream, input, kitchen, plan.cpu, plan.work).await {
            Worked::Done => {}
            Worked::ClientLeft => {
                abandoned(server, peer, &line, since);
                return After::Gone;
            }
            Worked::KitchenFull => answer = kitchen_full(),
        }
    }
    // The answer, by the write deadline (State::Writing). Ctrl-C since: the last one.
    if server.shutting_down() {
        answer.persistence = Persistence::Close;
    }
    if !respond(stream, server, peer, &answer, &line, since).await {
        return After::Gone;
    }
    match answer.persistence {
        Persistence::KeepAlive { .. } => After::KeepReading,
        Persistence::Close => After::Close { unread: false },
    }
}

/// What a read by a deadline leaves to do when it did not give what it was for: an answer to
/// send before closing (`Some`: the request's rejection, or 408 at the deadline), or nothing
/// more (`None`: the client left, or the read failed, logged here).
fn settle<T, Late>(
    read: Result<Result<T, ReadError>, Late>,
    server: &Server,
    peer: SocketAddr,
) -> Result<T, Option<Response>> {
    match read {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(ReadError::Rejected(rejection))) => Err(Some(Response::rejection(rejection))),
        Ok(Err(ReadError::Io(e))) => {
            server.connection_error(peer, "read failed", &e);
            Err(None)
        }
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some(timed_out(server))),
    }
}

/// Answers a request that will not be served (a refusal, a 408), then closes: its client may
/// still be sending.
async fn refuse(
    stream: &mut TcpStream,
    server: &Server,
    peer: SocketAddr,
    answer: Response,
    line: &str,
    since: Instant,
) -> After {
    match respond(stream, server, peer, &answer, line, since).await {
        true => After::Close { unread: true },
        false => After::Gone,
    }
}

/// How the wait for a request ended.
enum Arrival {
    /// A byte of a request is in `input`.
    Request,
    /// Not one byte before the deadline.
    Silence,
    /// The client closed.
    Closed,
    /// Its socket failed (a reset, say).
    Failed(std::io::Error),
    /// Ctrl-C.
    Stopped,
    /// Idle the longest when a new client needed its place.
    AskedToLeave,
}

/// Waits for the first byte of a request, until `until`, holding no buffer: the socket's
/// readiness, the deadline, Ctrl-C and, for a kept connection, a request to make room, raced.
/// Empty lines are not a request.
async fn next_request(
    stream: &TcpStream,
    input: &mut Input,
    server: &Server,
    until: Instant,
    regulars: Option<&Regulars>,
) -> Arrival {
    while !input.holds_a_request() {
        let (readable, deadline) = (pin!(stream.readable()), pin!(sleep_until(until)));
        let asked = pin!(async {
            match regulars {
                Some(regulars) => regulars.asked_to_leave().await,
                None => std::future::pending().await,
            }
        });
        let ended = race(server.stopped(), asked);
        match race(race(readable, ended), deadline).await {
            Either::Left(Either::Left(Ok(()))) => match read_now(stream, input) {
                Ok(()) => {}
                Err(ReadError::Io(e)) => return Arrival::Failed(e),
                // 16 KiB of empty lines: the request's reading refuses them (400).
                Err(ReadError::Rejected(_)) => return Arrival::Request,
                Err(_) => return Arrival::Closed,
            },
            Either::Left(Either::Left(Err(e))) => return Arrival::Failed(e),
            Either::Left(Either::Right(Either::Left(()))) => return Arrival::Stopped,
            Either::Left(Either::Right(Either::Right(()))) => return Arrival::AskedToLeave,
            Either::Right(()) => return Arrival::Silence,
        }
    }
    Arrival::Request
}

/// Reads until a whole head is in `input`; returns its length. Waits for readability holding
/// no buffer; the bytes go into `input`, which grows only as a head needs.
async fn read_head(stream: &TcpStream, input: &mut Input) -> Result<usize, ReadError> {
    loop {
        if let Some(head_len) = input.head_len()? {
            return Ok(head_len);
        }
        stream.readable().await?;
        read_now(stream, input)?;
    }
}

/// One read of what is here now into `input`: 0 bytes read is the end. The first bytes of a
/// request go through a buffer on the stack, so an idle connection holds no buffer at all.
fn read_now(stream: &TcpStream, input: &mut Input) -> Result<(), ReadError> {
    let result = if input.is_empty() {
        let mut first = [0u8; http::FIRST_READ];
        stream
            .try_read(&mut first)
            .map(|n| input.push(&first[..n]).map(|()| n))
    } else {
        let space = input.space()?;
        stream.try_read(space).map(|n| {
            input.fill(n);
            Ok(n)
        })
    };
    match result {
        Ok(Ok(0)) => Err(ReadError::Closed),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(rejection)) => Err(ReadError::Rejected(rejection)),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads the body to its end and throws it away, after `100 Continue` if the client waits
/// for one. What follows the body stays in `input`: the next request.
async fn read_body(
    stream: &mut TcpStream,
    input: &mut Input,
    mut body: Body,
    expect_continue: bool,
) -> Result<(), ReadError> {
    if expect_continue && !body.is_done() && input.is_empty() {
        write_framed(stream, &Framed::interim(http::CONTINUE)).await?;
    }
    loop {
        let taken = body.take(input.bytes()).map_err(ReadError::Rejected)?;
        input.consume(taken);
        if body.is_done() {
            return Ok(());
        }
        stream.readable().await?;
        read_now(stream, input)?;
    }
}

/// How the work went.
enum Worked {
    Done,
    /// The client closed while it waited: nobody wants the answer.
    ClientLeft,
    /// `--cpu-queue` orders already wait for the kitchen.
    KitchenFull,
}

/// The work of a request: `cpu` computed by the kitchen, then `wait` on a timer. A client that
/// has left wants no work, and one that leaves during it is let go at once (stage 06 does the
/// same); bytes of a next request meanwhile only wait their turn.
async fn work(
    stream: &TcpStream,
    input: &mut Input,
    kitchen: &Arc<Kitchen>,
    cpu: Duration,
    wait: Duration,
) -> Worked {
    if peer_has_left(stream) {
        return Worked::ClientLeft;
    }
    if !cpu.is_zero() {
        let Ok(cooking) = kitchen.order(cpu) else {
            return Worked::KitchenFull;
        };
        if !unless_the_client_leaves(stream, input, cooking).await {
            return Worked::ClientLeft;
        }
    }
    if !wait.is_zero() && !unless_the_client_leaves(stream, input, sleep(wait)).await {
        return Worked::ClientLeft;
    }
    Worked::Done
}

/// Awaits `work`, unless the client closes first: then false. What the socket has meanwhile
/// is read into `input`: the start of a next request (pipelined) is kept for later, the end
/// means the client has gone. (A readiness that finds nothing is no news: tokio's may be
/// stale, and only a read that finds nothing clears it.) Once `input` is full, the rest of
/// the work is awaited alone.
async fn unless_the_client_leaves(
    stream: &TcpStream,
    input: &mut Input,
    work: impl std::future::Future,
) -> bool {
    let mut work = pin!(work);
    loop {
        match race(work.as_mut(), pin!(stream.readable())).await {
            Either::Left(_) => return true,
            Either::Right(Err(_)) => return false,
            Either::Right(Ok(())) => match read_now(stream, input) {
                Ok(()) => {}
                Err(ReadError::Rejected(_)) => {
                    work.await;
                    return true;
                }
                Err(_) => return false,
            },
        }
    }
}

/// Writes `answer` by the write deadline, then counts and logs it. False if it could not be
/// written (logged): the connection is then closed.
async fn respond(
    stream: &mut TcpStream,
    server: &Server,
    peer: SocketAddr,
    answer: &Response,
    line: &str,
    since: Instant,
) -> bool {
    let out = answer.frame(&Utc::now().http_format());
    match timeout(server.config.write_timeout, write_framed(stream, &out)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            server.connection_error(peer, "write failed", &e);
            return false;
        }
        Err(_) => {
            bump(&server.stats.timeouts);
            let why = "the response was not written within --write-timeout-ms";
            server.connection_error(peer, "write failed", &why);
            return false;
        }
    }
    bump(&server.stats.served);
    if !server.config.quiet {
        let status = answer.status.code();
        logging::request(peer, line, status, since.elapsed(), Duration::ZERO);
    }
    true
}

/// Writes a framed response: its head and its shared body, in vectored writes, waiting
/// while the send buffer is full.
async fn write_framed(stream: &TcpStream, out: &Framed) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < out.len() {
        stream.writable().await?;
        match stream.try_write_vectored(&out.slices(sent)) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes without a reset when the client may still be sending: FIN first, then read and
/// throw away what still comes, while it comes, for at most `LINGER` and `LINGER_BYTES`.
async fn linger(stream: &mut TcpStream, input: &Input, unread: bool) {
    if !unread && input.is_empty() {
        return;
    }
    if send_fin(stream).is_err() {
        return;
    }
    let until = Instant::now() + http::LINGER;
    // On the heap, and only now: the task of every connection would otherwise carry it.
    let mut scratch = vec![0u8; 4096];
    let mut drained = input.bytes().len();
    while drained < http::LINGER_BYTES {
        let quiet = until.min(Instant::now() + http::LINGER_IDLE);
        if !matches!(timeout_at(quiet, stream.readable()).await, Ok(Ok(()))) {
            return;
        }
        match stream.try_read(&mut scratch) {
            Ok(n) if n > 0 => drained += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            _ => return,
        }
    }
}

/// Counts a request head read, for the server and for this runtime.
fn count_request(server: &Server, lane: Option<&LoopStats>, requests: u64) {
    bump(&server.stats.requests);
    if requests > 1 {
        bump(&server.stats.keep_alive_reuses);
    }
    if let Some(lane) = lane {
        bump(&lane.requests);
    }
}

fn left_without_a_request(server: &Server, peer: SocketAddr, since: Instant) {
    if !server.config.quiet {
        logging::no_request(peer, since.elapsed());
    }
}

fn abandoned(server: &Server, peer: SocketAddr, line: &str, since: Instant) {
    bump(&server.stats.abandoned);
    if !server.config.quiet {
        logging::abandoned(peer, line, since.elapsed());
    }
}

fn timed_out(server: &Server) -> Response {
    bump(&server.stats.timeouts);
    let ms = server.config.header_timeout.as_millis();
    Response::text(
        Status::RequestTimeout,
        format!("408 Request Timeout: no complete request within {ms} ms\n"),
    )
}

fn kitchen_full() -> Response {
    Response::text(
        Status::ServiceUnavailable,
        "503 Service Unavailable: the kitchen is full; try again in a second\n",
    )
}

/// A connection counted as open, for the server and for this runtime, until dropped.
struct Open<'a> {
    server: &'a Server,
    lane: Option<&'a LoopStats>,
}

impl<'a> Open<'a> {
    fn count(server: &'a Server, lane: Option<&'a LoopStats>) -> Open<'a> {
        server.opened();
        if let Some(lane) = lane {
            bump(&lane.accepted);
            lane.connections_open.up();
        }
        Open { server, lane }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.server.closed();
        if let Some(lane) = self.lane {
            lane.connections_open.down();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a connection costs while it waits: the `serve` future, the state machine the
    /// compiler wrote, against stage 06's hand-written `Conn` (the chapter quotes both).
    #[test]
    fn the_compiler_written_machine_is_about_the_size_of_the_hand_written_one() {
        let runtime = Runtime::new().unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let Flags { common, .. } = Flags::parse_from(["10_async"]);
        let config = common.config(&[]);
        let server = Server::start_tasks(STAGE, config, addr).unwrap();
        let kitchen = Kitchen::open(&server).unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            let place = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
            let regulars = Arc::new(Regulars::default());
            let future = serve(stream, peer, server, kitchen, regulars, 0, place);
            let serve_size = std::mem::size_of_val(&future);
            let conn_size = std::mem::size_of::<tcp_server::event_loop::conn::Conn>();
            println!("serve future: {serve_size} bytes; stage 06's Conn: {conn_size} bytes");
            assert!(serve_size < 1024, "{serve_size} bytes");
        });
    }
}
