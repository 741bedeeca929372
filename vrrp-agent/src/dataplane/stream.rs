//! The stream of events from either receive path.

use std::task::{Context, Poll};

use tracing::warn;

use super::{DataPlaneError, Event, mismatch, socket, xdp};

/// The receive path an [`EventStream`] reads from.
pub(super) enum Inner {
    Ring(xdp::RingEvents),
    Socket(socket::SocketEvents),
}

/// The stream of [`Event`]s from either path.
pub struct EventStream {
    inner: Inner,
    /// Peers already warned about for a first IPv6 address that is not
    /// link-local (warned once each; bounded by [`mismatch::MAX_ENTRIES`]).
    not_link_local: std::collections::HashSet<(u32, u8, std::net::IpAddr)>,
}

impl EventStream {
    /// A stream reading `inner`.
    pub(super) fn new(inner: Inner) -> Self {
        EventStream {
            inner,
            not_link_local: Default::default(),
        }
    }

    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, DataPlaneError>> {
        let r = match &mut self.inner {
            Inner::Ring(r) => r.poll_recv(cx),
            Inner::Socket(s) => s.poll_recv(cx),
        };
        if let Poll::Ready(Ok(ev)) = &r {
            self.warn_not_link_local(ev);
        }
        r
    }

    /// Warns once per peer about adverts accepted without a link-local
    /// first IPv6 address (every new sender wakes the agent, so each is
    /// seen here at least once).
    fn warn_not_link_local(&mut self, ev: &Event) {
        let Some(std::net::IpAddr::V6(first)) = ev.addrs.first() else {
            return;
        };
        if first.segments()[0] & 0xffc0 == 0xfe80
            || self.not_link_local.len() >= mismatch::MAX_ENTRIES
            || !self.not_link_local.insert((ev.ifindex, ev.vrid, ev.src))
        {
            return;
        }
        warn!(
            vrid = ev.vrid,
            ifindex = ev.ifindex,
            peer = %ev.src,
            "adverts from {} for VRID {} list {first} first, not a link-local address \
             (RFC 9568 §5.2.9; keepalived runs such configs with a warning): accepted and \
             counted as rx_first_not_link_local; warned once per peer",
            ev.src,
            ev.vrid
        );
    }

    /// The next event. Cancel-safe: an event is only removed when returned.
    pub async fn recv(&mut self) -> Result<Event, DataPlaneError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl futures::Stream for EventStream {
    type Item = Result<Event, DataPlaneError>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}
