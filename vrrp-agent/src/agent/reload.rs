//! Reload (SIGHUP): which instances keep running, change, stop or start.
//!
//! Decided here (the RFCs say nothing about configuration changes):
//!
//! - An instance is the same across a reload when its name and its
//!   (interface, VRID, family) are the same.
//! - Same and with identical settings: untouched — state, timers and the
//!   delivered-advert record stay, no transition, no advert.
//! - Same with other settings: reconfigured in place
//!   ([`VirtualRouter::reconfigure`]); e.g. a higher priority on a
//!   preempting Backup preempts at once when the master is lower. A MASTER
//!   whose VIP list changed removes the VIPs that went, adds the list and
//!   announces it.
//! - Gone (or moved to another interface, VRID or family): a MASTER resigns
//!   (priority 0) and removes its VIPs; its I/O is released
//!   ([`Command::Forget`]).
//! - New: resolved by the shell, added, and started after the data plane
//!   knows it ([`Agent::finish_reload`]); instances keep the file's order.
//!
//! [`VirtualRouter::reconfigure`]: crate::proto::VirtualRouter::reconfigure

use super::{Agent, Command};
use crate::{config, proto::Instant};

impl Agent {
    /// Applies a new list of instances: stops the removed ones and
    /// reconfigures the changed ones. Returns the new instances, which the
    /// shell resolves and adds with [`Agent::add_instance`] before calling
    /// [`Agent::finish_reload`].
    pub fn reload(&mut self, now: Instant, new: &[config::Instance]) -> Vec<config::Instance> {
        let mut i = 0;
        while i < self.instances.len() {
            let next = {
                let cfg = &self.instances[i].cfg;
                new.iter()
                    .find(|n| n.name == cfg.name && n.key() == cfg.key())
            };
            match next {
                Some(n) if *n == self.instances[i].cfg => i += 1,
                Some(n) => {
                    self.reconfigure(i, now, n.clone());
                    i += 1;
                }
                None => {
                    let inst = &mut self.instances[i];
                    inst.router.handle_shutdown(now);
                    let id = inst.id;
                    self.drain(i, now);
                    self.commands.push_back(Command::Forget { id });
                    self.instances.remove(i);
                }
            }
        }
        self.order = new.iter().map(|n| n.name.clone()).collect();
        new.iter()
            .filter(|n| !self.instances.iter().any(|r| r.cfg.name == n.name))
            .cloned()
            .collect()
    }

    /// Ends a reload: orders the instances as in the file, has the data
    /// plane apply them, then starts the new ones.
    pub fn finish_reload(&mut self, now: Instant) {
        let order = std::mem::take(&mut self.order);
        self.instances.sort_by_key(|r| {
            order
                .iter()
                .position(|n| *n == r.cfg.name)
                .unwrap_or(usize::MAX)
        });
        self.commands.push_back(Command::ApplyDataPlane);
        self.start(now);
    }

    fn reconfigure(&mut self, i: usize, now: Instant, cfg: config::Instance) {
        let inst = &mut self.instances[i];
        let old_vips = std::mem::replace(&mut inst.cfg, cfg).virtual_ips;
        if let Some(src) = inst.source {
            let router_cfg = inst.cfg.router_config(src);
            inst.router.reconfigure(now, router_cfg);
        }
        self.drain(i, now);
        let inst = &self.instances[i];
        if inst.router.state() != crate::proto::State::Master || inst.cfg.virtual_ips == old_vips {
            return;
        }
        let vips = inst.cfg.virtual_ips.clone();
        let gone: Vec<_> = old_vips.into_iter().filter(|v| !vips.contains(v)).collect();
        let id = inst.id;
        let (repeat, interval) = (inst.cfg.garp_repeat, inst.cfg.garp_interval);
        if !gone.is_empty() {
            self.commands
                .push_back(Command::RemoveVips { id, vips: gone });
        }
        self.commands.push_back(Command::AddVips {
            id,
            vips: vips.clone(),
        });
        self.commands.push_back(Command::Announce {
            id,
            vips,
            repeat,
            interval,
            first_round_sent: true,
        });
    }
}
