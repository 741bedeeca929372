//! Sending the adverts that fall due together in as few system calls as
//! possible, and the cache of an instance's advert bytes.

use std::{net::IpAddr, sync::Arc};

use crate::proto::{
    Advert, EmitError, V3Checksum,
    auth::{self, Password},
};

use super::{AdvertSender, TxError};

/// One advert to send: by whom, where to, and its bytes.
pub struct Outgoing<'a> {
    /// The instance's sender.
    pub sender: &'a AdvertSender,
    /// 224.0.0.18, ff02::12 or a unicast peer.
    pub dst: IpAddr,
    /// The message (from `Advert::emit`).
    pub msg: &'a [u8],
}

/// Sends every advert of `batch`; consecutive adverts on one socket go in
/// one `sendmmsg` (at 255 instances: one system call, not 255). Returns
/// one result per advert, in order.
pub async fn send_batch(batch: &[Outgoing<'_>]) -> Vec<Result<(), TxError>> {
    let mut results = Vec::with_capacity(batch.len());
    let mut rest = batch;
    while let Some(first) = rest.first() {
        let sock = &first.sender.sock;
        let n = rest
            .iter()
            .take_while(|o| Arc::ptr_eq(&o.sender.sock, sock))
            .count();
        let (run, tail) = rest.split_at(n);
        let msgs: Vec<(IpAddr, &[u8])> = run.iter().map(|o| (o.dst, o.msg)).collect();
        sock.send_many(&msgs, &mut results).await;
        rest = tail;
    }
    results
}

/// The bytes of the last advert an instance sent, per destination.
///
/// A MASTER in steady state sends the same advert every interval: same
/// priority, VIPs, source and destinations. Its bytes (header, VIP list,
/// checksum) are built once and sent again until any input changes; a
/// change of any of them builds them anew.
#[derive(Debug, Default)]
pub struct AdvertCache {
    key: Option<(Advert, IpAddr, V3Checksum, Option<Password>)>,
    msgs: Vec<(IpAddr, Vec<u8>)>,
}

impl AdvertCache {
    /// The message for `dst`: the cached bytes when `advert`, `src`,
    /// `checksum` and the VRRPv2 `password` are those they were built
    /// from, else built now (and cached).
    pub fn get(
        &mut self,
        advert: &Advert,
        src: IpAddr,
        dst: IpAddr,
        checksum: V3Checksum,
        password: Option<&Password>,
    ) -> Result<&[u8], EmitError> {
        let same = self.key.as_ref().is_some_and(|(a, s, c, p)| {
            a == advert && *s == src && *c == checksum && p.as_ref() == password
        });
        if !same {
            self.key = None;
            self.msgs.clear();
        }
        let i = match self.msgs.iter().position(|(d, _)| *d == dst) {
            Some(i) => i,
            None => {
                let mut msg = advert.emit(src, dst, checksum)?;
                if let Some(pass) = password {
                    auth::set_password(&mut msg, pass);
                }
                if self.key.is_none() {
                    self.key = Some((advert.clone(), src, checksum, password.copied()));
                }
                self.msgs.push((dst, msg));
                self.msgs.len() - 1
            }
        };
        Ok(&self.msgs[i].1)
    }

    /// The bytes last built for `dst`, if any.
    pub fn cached(&self, dst: IpAddr) -> Option<&[u8]> {
        self.msgs
            .iter()
            .find(|(d, _)| *d == dst)
            .map(|(_, m)| m.as_slice())
    }
}
