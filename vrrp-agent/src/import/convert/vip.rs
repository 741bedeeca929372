//! Addresses: `virtual_ipaddress` entries and their options,
//! `unicast_peer` entries, and the link-local VIP that RFC 9568 §5.2.9 wants
//! first.

use std::net::IpAddr;

use super::{Converter, Draft, Origin, Val};
use crate::config::VirtualIp;
use crate::import::{Severity, Source, parse::Stmt};

impl Converter {
    /// `ADDR[/MASK] [dev IF] [label L] [brd B] [scope S] ...`.
    pub(super) fn vip(&mut self, d: &mut Draft, s: &Stmt) {
        let addr = s.keyword();
        let vip = match addr.parse::<VirtualIp>() {
            Ok(v) => v,
            Err(e) => {
                self.error(&s.at, "virtual_ipaddress", e);
                return;
            }
        };
        let mut opts = s.words[1..].iter().map(String::as_str);
        while let Some(opt) = opts.next() {
            match opt {
                "dev" => {
                    let dev = opts.next().unwrap_or_default();
                    if d.interface.as_ref().is_none_or(|i| i.v != dev) {
                        self.note_at(
                            &s.at,
                            "virtual_ipaddress",
                            Severity::ChangesFailover,
                            format!(
                                "`dev {dev}`: vrrp-agent puts every VIP on the instance's \
                                 interface; run a second instance on {dev}, or move the \
                                 address in the notify script"
                            ),
                        );
                    }
                }
                "use_vmac" => self.note_at(
                    &s.at,
                    "virtual_ipaddress",
                    Severity::ChangesFailover,
                    "`use_vmac` on a VIP is not carried: the VIP goes on the instance's \
                     interface with its own MAC",
                ),
                "label" | "brd" | "scope" | "peer" | "preferred_lft" | "track_group" => {
                    let val = opts.next().unwrap_or_default();
                    self.note_at(
                        &s.at,
                        "virtual_ipaddress",
                        Severity::Harmless,
                        format!(
                            "VIP option `{opt} {val}` is not carried: the address is added \
                             with the kernel's defaults"
                        ),
                    );
                }
                "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin"
                | "no_track" => self.note_at(
                    &s.at,
                    "virtual_ipaddress",
                    Severity::Harmless,
                    format!("VIP option `{opt}` is not carried"),
                ),
                other => self.error(
                    &s.at,
                    "virtual_ipaddress",
                    format!("unknown option `{other}` after {addr}"),
                ),
            }
        }
        if let IpAddr::V6(_) = vip.addr
            && vip.prefix_len == 128
        {
            self.note_at(
                &s.at,
                "virtual_ipaddress",
                Severity::Difference,
                "keepalived deprecates /128 VIPs (preferred_lft 0) so they are never a \
                 source address; vrrp-agent adds them with the kernel default",
            );
        }
        if let Some(first) = d.vips.first()
            && first.v.family() != vip.family()
        {
            // keepalived logs "address family must match" and ignores it.
            self.note_at(
                &s.at,
                "virtual_ipaddress",
                Severity::Harmless,
                format!(
                    "{} is not of the first VIP's family; keepalived ignores it too. Put it \
                     in its own vrrp_instance",
                    vip.addr
                ),
            );
            return;
        }
        d.vips.push(Val {
            v: vip,
            from: Origin::Line(s.at.clone(), "virtual_ipaddress".into()),
        });
    }

    pub(super) fn unicast_peer(&mut self, d: &mut Draft, s: &Stmt) {
        match s.keyword().parse::<IpAddr>() {
            Ok(a) => d.unicast_peers.push(Val {
                v: a,
                from: Origin::Line(s.at.clone(), "unicast_peer".into()),
            }),
            Err(_) => {
                let msg = format!("`{}` is not an IP address", s.keyword());
                self.error(&s.at, "unicast_peer", msg);
                return;
            }
        }
        if s.words.len() > 1 {
            self.note_at(
                &s.at,
                "unicast_peer",
                Severity::Harmless,
                "min_ttl / max_ttl are not carried: vrrp-agent requires TTL 255 (RFC 9568 §7.1)",
            );
        }
        if d.unicast_peers.len() == 1 {
            self.note_at(
                &s.at,
                "unicast_peer",
                Severity::Difference,
                "vrrp-agent drops adverts whose TTL is not 255 (RFC 9568 §7.1); keepalived \
                 does not check it in unicast mode: the peers must share a link",
            );
        }
    }

    /// RFC 9568 §5.2.9: the first IPv6 address of an advert is link-local;
    /// moved first when listed, else the list is kept and the gap noted.
    pub(super) fn link_local_first(
        &mut self,
        at: &Source,
        vips: &mut Vec<Val<VirtualIp>>,
        vrid: u8,
    ) {
        let is_ll = |v: &Val<VirtualIp>| matches!(v.v.addr, IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80);
        if vips.first().is_some_and(is_ll) {
            return;
        }
        if let Some(i) = vips.iter().position(is_ll) {
            let ll = vips.remove(i);
            if let Some(a) = ll.from.line() {
                self.note_at(
                    a,
                    "virtual_ipaddress",
                    Severity::Difference,
                    format!(
                        "moved the link-local VIP {} first, as RFC 9568 §5.2.9 requires; \
                         keepalived compares VIP lists without regard to order",
                        ll.v.addr
                    ),
                );
            }
            vips.insert(0, ll);
            return;
        }
        // keepalived (without `vrrp_skip_check_adv_addr`) drops adverts whose
        // address list differs from its own: adding a link-local VIP here
        // alone would split the pair. Kept as keepalived has it.
        let first_at = vips
            .first()
            .and_then(|v| v.from.line())
            .unwrap_or(at)
            .clone();
        self.note_at(
            &first_at,
            "virtual_ipaddress",
            Severity::Difference,
            format!(
                "no link-local VIP: the list is kept as keepalived has it (keepalived drops \
                 adverts whose address list differs from its own), so the first address is \
                 global where RFC 9568 §5.2.9 wants a link-local one, and strict receivers \
                 drop these adverts. When you can, add `fe80::{vrid:x}/64` as the first line \
                 on both sides (virtual_ipaddress here, virtual_ips in the converted file)"
            ),
        );
    }
}
