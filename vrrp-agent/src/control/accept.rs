//! One bounded accept loop, shared by the control socket and the metrics
//! endpoint.
//!
//! Decided here: at most [`MAX_CONNECTIONS`] connections are served at once,
//! both listeners together (each connection is one short request, read
//! with a timeout). A connection beyond that is closed at once, without an
//! answer, and counted ([`ConnLimit::refused`], in the status document as
//! `connections_refused`): a client that opens connections and never sends
//! a request cannot make the daemon spawn tasks without bound.

use std::{
    future::Future,
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::Semaphore,
};
use tracing::{debug, warn};

/// Connections served at once, control socket and metrics together.
pub const MAX_CONNECTIONS: usize = 64;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The connection cap and the count of connections refused by it.
#[derive(Debug)]
pub struct ConnLimit {
    slots: Arc<Semaphore>,
    refused: AtomicU64,
}

impl ConnLimit {
    /// A cap of `max` concurrent connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max)),
            refused: AtomicU64::new(0),
        })
    }

    /// Connections closed unanswered because the cap was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// A listening socket the loop can accept from.
pub trait Listener: Send + Sync + 'static {
    /// An accepted connection.
    type Stream: Send + 'static;
    /// The next connection.
    fn accept_stream(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn accept_stream(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// Accepts connections forever; each within the cap is handled by
/// `handle` in its own task, the others are closed and counted.
pub async fn serve<L, H, Fut>(listener: &L, what: &'static str, limit: Arc<ConnLimit>, handle: H)
where
    L: Listener,
    H: Fn(L::Stream) -> Fut,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    loop {
        let stream = match listener.accept_stream().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "{what}: accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(permit) = limit.slots.clone().try_acquire_owned() else {
            let n = limit.refused.fetch_add(1, Ordering::Relaxed) + 1;
            // Rate-limited: the first refusal and every 1000th.
            if n == 1 || n.is_multiple_of(1000) {
                warn!(
                    refused = n,
                    max = MAX_CONNECTIONS,
                    "{what}: too many connections; refusing"
                );
            }
            drop(stream);
            continue;
        };
        let fut = handle(stream);
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                debug!(error = %e, "{what}: client failed");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Beyond the cap a connection is closed unanswered and counted; once a
    /// slot is free again, connections are served.
    #[tokio::test]
    async fn connections_beyond_the_cap_are_refused_and_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = ConnLimit::new(1);
        let server = {
            let limit = limit.clone();
            tokio::spawn(async move {
                serve(&listener, "test", limit, |mut s: TcpStream| async move {
                    // Echo one byte back, then close.
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b).await?;
                    s.write_all(&b).await
                })
                .await
            })
        };
        // The first connection holds the only slot (it sends nothing yet).
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"").await.unwrap();
        // The second is closed without an answer.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let _ = second.write_all(b"x").await;
        let n = second.read_to_end(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "refused connection got an answer");
        assert_eq!(limit.refused(), 1);
        // The first is served; its slot frees, and the next one is served.
        first.write_all(b"a").await.unwrap();
        let mut b = [0u8; 1];
        first.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"a");
        drop(first);
        let mut third = loop {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"c").await.unwrap();
            let mut b = Vec::new();
            if s.read_to_end(&mut b).await.is_ok() && b == b"c" {
                break s;
            }
            // The first task may still hold the slot for a moment.
            tokio::task::yield_now().await;
        };
        let _ = third.shutdown().await;
        server.abort();
    }
}
