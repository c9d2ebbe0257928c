//! A TCP proxy between the worker and the broker, to break the connection on
//! purpose without touching the broker other tests share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Forwards connections to the broker until told to cut or freeze them.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
    frozen: watch::Sender<bool>,
    stop: CancellationToken,
    accepted: Arc<AtomicU32>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (frozen, _) = watch::channel(false);
        let stop = CancellationToken::new();
        let accepted = Arc::new(AtomicU32::new(0));
        let proxy = Self {
            addr,
            cut: cut.clone(),
            frozen: frozen.clone(),
            stop: stop.clone(),
            accepted: accepted.clone(),
        };
        tokio::spawn(async move {
            loop {
                let accepted_now = tokio::select! {
                    accepted_now = listener.accept() => accepted_now,
                    () = stop.cancelled() => return,
                };
                let Ok((inbound, _)) = accepted_now else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let cut = cut.lock().unwrap().clone();
                tokio::spawn(forward(inbound, outbound, cut, frozen.subscribe()));
            }
        });
        proxy
    }

    /// An AMQP URL through the proxy with one-second heartbeats, so a
    /// silent connection is noticed quickly.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f?heartbeat=1", self.addr)
    }

    /// Connections it has taken so far.
    pub fn accepted(&self) -> u32 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Drops every connection open now, as a broker restart would.
    pub fn cut(&self) {
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Stops (or resumes) forwarding on the connections open now; new
    /// connections still work. A frozen connection looks like a broker
    /// that went silent: no confirms, no heartbeats.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut.lock().unwrap().cancel();
    }
}

async fn forward(
    inbound: TcpStream,
    outbound: TcpStream,
    cut: CancellationToken,
    frozen: watch::Receiver<bool>,
) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    // A connection frozen once stays silent: thawing is for new ones.
    let born_frozen = *frozen.borrow();
    let copies = async {
        tokio::join!(
            copy(in_read, out_write, frozen.clone(), born_frozen),
            copy(out_read, in_write, frozen, born_frozen)
        )
    };
    tokio::select! {
        _ = copies => {}
        () = cut.cancelled() => {}
    }
}

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    born_frozen: bool,
) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        if *frozen.borrow_and_update() && !born_frozen {
            // Hold the bytes for ever: the peer hears nothing more.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
