//! The VRRP election: one `VirtualRouter` per (interface, VRID, family).
#![allow(missing_docs, unused_variables)]

use std::net::IpAddr;
use std::time::Duration;

use super::packet::{Family, Version};
use super::time::Instant;

/// Protocol state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
    Stop,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    pub vrid: u8,
    pub version: Version,
    pub family: Family,
    pub priority: u8,
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    pub primary_addr: IpAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxAdvert {
    pub src: IpAddr,
    pub priority: u8,
    pub interval: Duration,
    pub version: Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert { priority: u8 },
    Announce,
    AddVips,
    RemoveVips,
    StateChange { from: State, to: State },
}

#[derive(Debug)]
pub struct VirtualRouter {
    cfg: RouterConfig,
}

impl VirtualRouter {
    pub fn new(cfg: RouterConfig) -> Self {
        Self { cfg }
    }
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }
    pub fn state(&self) -> State {
        todo!()
    }
    pub fn priority(&self) -> u8 {
        todo!()
    }
    pub fn accept_mode(&self) -> bool {
        todo!()
    }
    pub fn master_adver_interval(&self) -> Duration {
        todo!()
    }
    pub fn skew_time(&self) -> Duration {
        todo!()
    }
    pub fn master_down_interval(&self) -> Duration {
        todo!()
    }
    pub fn current_master(&self) -> Option<IpAddr> {
        todo!()
    }
    pub fn handle_startup(&mut self, now: Instant) {
        todo!()
    }
    pub fn handle_shutdown(&mut self, now: Instant) {
        todo!()
    }
    pub fn handle_advert(&mut self, now: Instant, adv: &RxAdvert) {
        todo!()
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }
    pub fn handle_interface(&mut self, now: Instant, up: bool) {
        todo!()
    }
    pub fn set_priority(&mut self, now: Instant, priority: u8) {
        todo!()
    }
    pub fn reconfigure(&mut self, now: Instant, cfg: RouterConfig) {
        todo!()
    }
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    pub fn wants_every_advert(&self) -> bool {
        todo!()
    }
}
