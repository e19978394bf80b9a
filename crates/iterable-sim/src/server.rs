//! Serving: the accept loop, connections that a fault can cut (TCP reset), and the
//! [`Simulator`] handle that owns a running server.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::SimError;
use crate::config::SimConfig;
use crate::sim::Sim;

/// Lets a handler cut the connection its request came on.
#[derive(Clone)]
pub(crate) struct ConnCut {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl ConnCut {
    /// Drops the connection with a TCP reset; no response is sent.
    pub fn cut(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// A TCP stream that resets (linger 0) instead of closing gracefully once cut.
struct CuttableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl Drop for CuttableStream {
    fn drop(&mut self) {
        if self.cut.load(Ordering::SeqCst) {
            // Linger 0 turns the close into a reset, as a dropped connection looks on a real
            // network.
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A running simulator: its address, its state (through `Deref` to [`Sim`]) and its shutdown.
/// Dropping it stops the server as [`Simulator::shutdown`] does, without waiting.
pub struct Simulator {
    sim: Sim,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl std::ops::Deref for Simulator {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        &self.sim
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1:0` (a free port) in the current tokio runtime.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        Self::bind(
            "127.0.0.1:0"
                .parse()
                .map_err(|_| SimError::Config("address".into()))?,
            config,
        )
        .await
    }

    /// Starts a simulator on `addr` in the current tokio runtime.
    pub async fn bind(addr: SocketAddr, config: SimConfig) -> Result<Simulator, SimError> {
        let sim = Sim::new(config)?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let router = crate::http_api::router(sim.clone());
        let task = tokio::spawn(accept_loop(listener, router, rx));
        tracing::info!(%addr, "iterable simulator listening");
        Ok(Simulator {
            sim,
            addr,
            shutdown,
            task,
        })
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, to which a client appends `/api/lists/subscribe`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle on the state that outlives borrowing the simulator.
    pub fn sim(&self) -> Sim {
        self.sim.clone()
    }

    /// Stops accepting, drops every open connection and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Serves until `signal` completes, then shuts down.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_conn(stream, router.clone(), shutdown.clone()));
            }
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_conn(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    let cut = ConnCut {
        flag: Arc::new(AtomicBool::new(false)),
        notify: Arc::new(Notify::new()),
    };
    let io = TokioIo::new(CuttableStream {
        inner: stream,
        cut: cut.flag.clone(),
    });
    let handle = cut.clone();
    let service =
        hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(handle.clone());
            router.clone().oneshot(req)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = cut.notify.notified() => {}
        _ = shutdown.changed() => {}
    }
}
