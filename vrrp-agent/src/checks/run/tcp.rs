//! The `tcp` runner: one non-blocking connect per interval, closed with an
//! RST (see the [module doc](super)).

use std::{net::SocketAddr, time::Duration};

use super::Runner;
use crate::checks::state::{Failure, Outcome};

impl Runner {
    pub(super) async fn run_tcp(&self, address: SocketAddr) {
        let mut ticker = self.ticker();
        loop {
            ticker.tick().await;
            let start = std::time::Instant::now();
            let outcome = tcp_once(address, self.spec.timeout).await;
            if !self.send(outcome, start.elapsed()).await {
                return;
            }
        }
    }
}

/// One TCP connect to `address` within `timeout`.
pub async fn tcp_once(address: SocketAddr, timeout: Duration) -> Outcome {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => return Outcome::Failure(Failure::Connect(e.to_string())),
    };
    // Close with an RST: no TIME_WAIT per check on our side.
    let _ = socket.set_zero_linger();
    match tokio::time::timeout(timeout, socket.connect(address)).await {
        Ok(Ok(_stream)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(Failure::Connect(e.to_string())),
        Err(_) => Outcome::Failure(Failure::TimedOut),
    }
}
