//! Connection limits shared by both listeners: a cap on open connections, a cap on connections
//! still in their handshake, a handshake deadline, and an idle timeout.
//!
//! A TCP connection costs a file descriptor and some memory whether or not it ever says anything,
//! and neither hyper (without a timer) nor tonic closes one that sends nothing. So every accepted
//! stream is wrapped in [`Guarded`], which knows one thing about the protocol above it: whether a
//! request is in flight. That is told by [`Track`], a tower layer that marks the connection
//! *established* at its first request and counts requests until their response bodies end.
//!
//! A request is in flight only once it has *arrived*: its body has ended, or central has started
//! answering (a stream, a refusal that never reads the body). Until then it is still part of the
//! handshake: headers followed by a body that never comes (a form posted to `/oauth/token`, a gRPC
//! unary call whose message never follows its HEADERS frame; both are read before anyone is
//! authenticated) would otherwise hold the connection forever.
//!
//! - Until its first request has arrived, a connection must finish within the handshake timeout
//!   (TLS, the HTTP/2 preface, the request's headers and body); a half-open or slow-drip
//!   connection is closed then. Only so many may be in this state at once: that is all an
//!   unauthenticated client can hold.
//! - With no request in flight, a connection is closed after the idle timeout. An agent's session
//!   stream and an MCP client's SSE stream are requests in flight for as long as they last, so
//!   they are never cut; HTTP/2 pings and SSE keep-alives do not count as activity, so an idle
//!   connection cannot keep itself open with them.
//! - Beyond the total cap, new connections are closed at once.
//!
//! Closing is an end-of-file to the protocol layer above, which then drops the socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Open connections.
    pub(crate) max: usize,
    /// Connections that have not completed their first request.
    pub(crate) max_handshaking: usize,
    /// Time to complete the first request.
    pub(crate) handshake_timeout: Duration,
    /// Time a connection may sit with nothing in flight.
    pub(crate) idle_timeout: Duration,
}

/// The connections of one listener.
pub(crate) struct Tracker {
    name: &'static str,
    limits: ConnLimits,
    epoch: Instant,
    open: AtomicUsize,
    handshaking: AtomicUsize,
    refused: AtomicU64,
    last_warning_ms: AtomicU64,
}

impl Tracker {
    /// A tracker for the listener called `name` (for logs).
    pub(crate) fn new(name: &'static str, limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            name,
            limits,
            epoch: Instant::now(),
            open: AtomicUsize::new(0),
            handshaking: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
        })
    }

    /// Admits an accepted stream, or refuses it (`None`; dropping the stream closes it).
    pub(crate) fn admit<IO>(self: &Arc<Self>, io: IO) -> Option<Guarded<IO>> {
        // Reserve both slots first, then check: concurrent accepts cannot overshoot.
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        let handshaking = self.handshaking.fetch_add(1, Ordering::AcqRel);
        if open >= self.limits.max || handshaking >= self.limits.max_handshaking {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.handshaking.fetch_sub(1, Ordering::AcqRel);
            self.refused_one(open, handshaking);
            return None;
        }
        let state = Arc::new(ConnState {
            tracker: Arc::clone(self),
            accepted: Instant::now(),
            established: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            reader: Mutex::new(None),
            peer: std::sync::OnceLock::new(),
        });
        Some(Guarded { io, state, timer: None, timer_at: None, closed: false })
    }

    fn refused_one(&self, open: usize, handshaking: usize) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        // One warning per ten seconds at most: a flood must not become a log flood.
        let now = self.now_ms();
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 10_000)
            && self.last_warning_ms.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                listener = self.name,
                open,
                handshaking,
                max = self.limits.max,
                max_handshaking = self.limits.max_handshaking,
                refused_so_far = refused,
                "connection limit reached: closing new connections"
            );
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Open connections.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Connections still in their handshake.
    #[cfg(test)]
    pub(crate) fn handshaking(&self) -> usize {
        self.handshaking.load(Ordering::Acquire)
    }
}

/// What one connection's IO wrapper and its requests share.
struct ConnState {
    tracker: Arc<Tracker>,
    accepted: Instant,
    established: AtomicBool,
    in_flight: AtomicUsize,
    /// When the last request finished (ms on the tracker's clock).
    last_done_ms: AtomicU64,
    /// The task reading the connection, woken when the last request ends so it arms the idle
    /// timer.
    reader: Mutex<Option<Waker>>,
    /// The peer's address, when the stream knows it (`mttrly-cli login`'s confirmation page
    /// shows where a device login came from).
    peer: std::sync::OnceLock<Option<std::net::SocketAddr>>,
}

impl ConnState {
    /// Leaves the handshaking count, once.
    fn establish(&self) {
        if !self.established.swap(true, Ordering::AcqRel) {
            self.tracker.handshaking.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// When the connection must be closed, if nothing changes.
    fn deadline(&self) -> Option<Instant> {
        let limits = &self.tracker.limits;
        if !self.established.load(Ordering::Acquire) {
            return Some(self.accepted + limits.handshake_timeout);
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let done = Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        Some(self.tracker.epoch + done + limits.idle_timeout)
    }
}

/// A connection's handle, carried in its requests' extensions (tonic puts it there as the
/// connection info; central's HTTP loop inserts it).
#[derive(Clone)]
pub(crate) struct ConnHandle(Arc<ConnState>);

impl ConnHandle {
    /// A request's headers arrived. It counts (the connection is established and busy) only once
    /// [`InFlight::arrived`] is called, until the guard drops.
    pub(crate) fn begin(&self) -> InFlight {
        InFlight(Arc::new(RequestState { conn: Arc::clone(&self.0), phase: AtomicU8::new(ARRIVING) }))
    }

    /// The peer's address, if known.
    pub(crate) fn peer(&self) -> Option<std::net::SocketAddr> {
        self.0.peer.get().copied().flatten()
    }
}

/// The request's body is still arriving and nobody has answered: it holds nothing open.
const ARRIVING: u8 = 0;
/// Arrived (body ended, or an answer started): the connection is busy.
const ACTIVE: u8 = 1;
/// The answer ended or was abandoned.
const DONE: u8 = 2;

/// One request's phase, shared by its guard and its request body.
struct RequestState {
    conn: Arc<ConnState>,
    phase: AtomicU8,
}

impl RequestState {
    /// The request has arrived: from now on it holds the connection open. Once only, and never
    /// after the request is done (a body that ends after its answer must not count again).
    fn arrived(&self) {
        if self.phase.compare_exchange(ARRIVING, ACTIVE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.conn.establish();
            self.conn.in_flight.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn done(&self) {
        if self.phase.swap(DONE, Ordering::AcqRel) != ACTIVE {
            return;
        }
        self.conn.last_done_ms.store(self.conn.tracker.now_ms(), Ordering::Release);
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waker = self.conn.reader.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// One request; dropped when its response body ends (or is abandoned).
pub(crate) struct InFlight(Arc<RequestState>);

impl InFlight {
    /// The request has arrived (see [`RequestState::arrived`]).
    pub(crate) fn arrived(&self) {
        self.0.arrived();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.done();
    }
}

/// An accepted stream under the listener's limits.
pub(crate) struct Guarded<IO> {
    io: IO,
    state: Arc<ConnState>,
    timer: Option<Pin<Box<Sleep>>>,
    timer_at: Option<Instant>,
    closed: bool,
}

impl<IO> Guarded<IO> {
    /// The handle requests carry.
    pub(crate) fn handle(&self) -> ConnHandle {
        ConnHandle(Arc::clone(&self.state))
    }

    /// The stream inside.
    pub(crate) fn get_ref(&self) -> &IO {
        &self.io
    }

    /// Whether the connection's time is up; arms the timer for `cx` otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.closed {
            return true;
        }
        // Registered before reading the state, so an `InFlight` dropped in between still wakes us.
        {
            let mut reader = self.state.reader.lock().unwrap_or_else(PoisonError::into_inner);
            match &*reader {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *reader = Some(cx.waker().clone()),
            }
        }
        loop {
            let Some(at) = self.state.deadline() else {
                // A request in flight: no deadline until it ends. An agent's session lasts for
                // days, so its timer (armed for the handshake) goes rather than sit in memory.
                self.timer = None;
                self.timer_at = None;
                return false;
            };
            if Instant::now() >= at {
                let phase = if self.state.established.load(Ordering::Acquire) { "idle" } else { "handshake" };
                tracing::debug!(listener = self.state.tracker.name, phase, "closing a connection past its deadline");
                self.closed = true;
                return true;
            }
            if self.timer_at != Some(at) {
                let deadline = tokio::time::Instant::from_std(at);
                match &mut self.timer {
                    Some(timer) => timer.as_mut().reset(deadline),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                self.timer_at = Some(at);
            }
            match self.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {} // loop: the deadline may have moved meanwhile
                _ => return false,
            }
        }
    }
}

impl<IO> Drop for Guarded<IO> {
    fn drop(&mut self) {
        self.state.establish();
        self.state.tracker.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            // End of file: the protocol layer closes the connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Guarded<tokio::net::TcpStream> {
    type ConnectInfo = ConnHandle;

    fn connect_info(&self) -> ConnHandle {
        let _ = self.state.peer.set(self.io.peer_addr().ok());
        self.handle()
    }
}

/// The tower layer that tells a connection about its requests (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// See [`TrackLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Track<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request body type the layer can wrap and box again (tonic's and axum's).
pub(crate) trait Rebody: http_body::Body + Sized {
    /// `body`, boxed as this type.
    fn rebox<T>(body: T) -> Self
    where
        T: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        T::Error: Into<tower::BoxError>;
}

impl Rebody for tonic::body::Body {
    fn rebox<T>(body: T) -> Self
    where
        T: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        T::Error: Into<tower::BoxError>,
    {
        Self::new(body)
    }
}

impl Rebody for axum::body::Body {
    fn rebox<T>(body: T) -> Self
    where
        T: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        T::Error: Into<tower::BoxError>,
    {
        Self::new(body)
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Track<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    B: Rebody + http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = http::Response<TrackedBody<R>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request.extensions().get::<ConnHandle>().map(ConnHandle::begin);
        let request = match &guard {
            // No body to wait for: it has arrived with its headers.
            Some(g) if request.body().is_end_stream() => {
                g.arrived();
                request
            }
            Some(g) => {
                let state = Arc::clone(&g.0);
                request.map(|body| B::rebox(ArrivingBody { body: Box::pin(body), state }))
            }
            None => request,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            // Answering (a stream, or a refusal that never read the body): it has arrived.
            if let Some(g) = &guard {
                g.arrived();
            }
            Ok(response.map(|body| TrackedBody { body: Box::pin(body), _guard: guard }))
        })
    }
}

/// A request body that marks its request arrived when it ends.
struct ArrivingBody<B> {
    body: Pin<Box<B>>,
    state: Arc<RequestState>,
}

impl<B: http_body::Body> http_body::Body for ArrivingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = this.body.as_mut().poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || (polled.is_ready() && this.body.is_end_stream()) {
            this.state.arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request in flight until it ends or is dropped.
pub(crate) struct TrackedBody<B> {
    body: Pin<Box<B>>,
    _guard: Option<InFlight>,
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.get_mut().body.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn limits(max: usize, max_handshaking: usize) -> ConnLimits {
        ConnLimits {
            max,
            max_handshaking,
            handshake_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(300),
        }
    }

    #[tokio::test]
    async fn caps_hold_and_slots_come_back() {
        let tracker = Tracker::new("test", limits(3, 2));
        let (a, _) = tokio::io::duplex(64);
        let (b, _) = tokio::io::duplex(64);
        let (c, _) = tokio::io::duplex(64);
        let a = tracker.admit(a).unwrap();
        let b = tracker.admit(b).unwrap();
        assert!(tracker.admit(c).is_none(), "two handshaking already");
        let busy = a.handle().begin();
        assert_eq!(tracker.handshaking(), 2, "headers alone do not establish a connection");
        busy.arrived();
        assert_eq!(tracker.handshaking(), 1);
        let (c, _) = tokio::io::duplex(64);
        let c = tracker.admit(c).unwrap();
        let (d, _) = tokio::io::duplex(64);
        assert!(tracker.admit(d).is_none(), "three open");
        drop((b, c));
        assert_eq!((tracker.open(), tracker.handshaking()), (1, 0));
        drop(busy);
        drop(a);
        assert_eq!((tracker.open(), tracker.handshaking()), (0, 0));
    }

    #[tokio::test]
    async fn a_silent_connection_reads_end_of_file_at_the_handshake_deadline() {
        let tracker = Tracker::new("test", limits(10, 10));
        let (io, mut peer) = tokio::io::duplex(64);
        let mut io = tracker.admit(io).unwrap();
        peer.write_all(b"GET / HT").await.unwrap(); // a slow drip, never finished
        let started = Instant::now();
        let mut buf = Vec::new();
        io.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"GET / HT");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn a_request_still_arriving_holds_nothing_open() {
        let tracker = Tracker::new("test", limits(10, 10));
        let (io, _peer) = tokio::io::duplex(64);
        let mut io = tracker.admit(io).unwrap();
        // Headers, and a body that never ends: still the handshake.
        let arriving = io.handle().begin();
        let started = Instant::now();
        let mut buf = Vec::new();
        io.read_to_end(&mut buf).await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(2), "{waited:?}");
        // A request that arrives only after it is done does not count again.
        let state = Arc::clone(&arriving.0);
        drop(arriving);
        state.arrived();
        assert_eq!(io.state.in_flight.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn the_layer_counts_a_request_once_its_body_is_read_and_until_its_answer_ends() {
        use tower::{Layer as _, ServiceExt as _};
        let tracker = Tracker::new("test", limits(10, 10));
        let (io, _peer) = tokio::io::duplex(64);
        let io = tracker.admit(io).unwrap();
        let state = Arc::clone(&io.state);
        let seen = Arc::clone(&state);
        // A handler that reads the whole body, then works a while before answering.
        let service = TrackLayer.layer(tower::service_fn(move |request: http::Request<axum::body::Body>| {
            let seen = Arc::clone(&seen);
            async move {
                let before = seen.in_flight.load(Ordering::Acquire);
                let body = axum::body::to_bytes(request.into_body(), 1024).await.unwrap();
                let after = seen.in_flight.load(Ordering::Acquire);
                Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::from(format!(
                    "{before}/{after}/{}",
                    body.len()
                ))))
            }
        }));
        let mut request = http::Request::new(axum::body::Body::from("hello"));
        request.extensions_mut().insert(io.handle());
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(state.in_flight.load(Ordering::Acquire), 1, "answering");
        let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1024).await.unwrap();
        assert_eq!(&body[..], b"0/1/5", "not counted while the body arrived, counted once it had");
        assert_eq!(state.in_flight.load(Ordering::Acquire), 0, "the answer ended");
        assert!(state.established.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn requests_in_flight_hold_the_connection_and_idleness_ends_it() {
        let tracker = Tracker::new("test", limits(10, 10));
        let (io, mut peer) = tokio::io::duplex(64);
        let mut io = tracker.admit(io).unwrap();
        let busy = io.handle().begin();
        busy.arrived();
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            io.read_to_end(&mut buf).await.unwrap();
            buf
        });
        // Well past both timeouts with a request in flight: still open.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!reader.is_finished());
        peer.write_all(b"x").await.unwrap();
        let ended = Instant::now();
        drop(busy);
        let buf = tokio::time::timeout(Duration::from_secs(3), reader).await.unwrap().unwrap();
        assert_eq!(buf, b"x");
        let idle = ended.elapsed();
        assert!(idle >= Duration::from_millis(250) && idle < Duration::from_secs(2), "{idle:?}");
    }
}
