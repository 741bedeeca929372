//! One `[[instance]]`: its keys, the rules across them (one family, what
//! one advert can carry, the interval the version can encode, the source
//! address), and the address lists.

use std::{collections::HashSet, fmt, net::IpAddr, time::Duration};

use toml::de::DeValue;

use super::super::values::{
    boolean, check_ifname, check_interval, check_unicast, duration, duration_at_most, int, int_in,
    non_empty, string,
};
use super::super::{
    ADVERT_MTU, DEFAULT_GARP_INTERVAL, DEFAULT_GARP_REPEAT, Instance, MAX_PREEMPT_DELAY, VirtualIp,
    max_advert_addrs,
};
use super::{Parser, Section, Seen, Span, Val, family_name, tracking};
use crate::proto::packet::{Family, V3Checksum, Version};

impl Parser<'_> {
    /// One `[[instance]]`; `seen` gets what the cross-instance checks need.
    /// (~110 lines: one getter per key, in the order of [`Instance`]'s fields.)
    // Long because: one getter per `[[instance]]` key in the order of `Instance`'s fields.
    pub(super) fn instance(
        &mut self,
        v: &Val<'_>,
        seen: &mut Seen,
        checks: &[(crate::checks::CheckSpec, Span)],
        groups: &[tracking::ParsedGroup],
    ) -> Option<Instance> {
        let DeValue::Table(t) = v.get_ref() else {
            self.err(
                v.span(),
                "each `instance` must be a table: write [[instance]]",
            );
            return None;
        };
        let t = &mut Section::new(t, v.span().start);
        let name = self.req(t, "name", |k, v| non_empty(k, v).map(str::to_owned));
        let interface = self.req(t, "interface", |k, v| {
            let s = string(k, v)?;
            check_ifname(s).map_err(|e| format!("`{k}`: {e}"))?;
            Ok(s.to_owned())
        });
        let vrid = self.req(t, "vrid", |k, v| int_in(k, v, 1, 255));
        let priority = self.req(t, "priority", |k, v| int_in(k, v, 1, 255));
        let version = self.opt(t, "version", Version::V3, |k, v| match int(k, v)? {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            n => Err(format!("`{k}` must be 2 or 3, found {n}")),
        });
        let advert_interval = self.opt(t, "advert_interval", Duration::from_secs(1), duration);
        let virtual_ips = self.addresses(t, ("virtual_ips", "virtual IP"), true, |s| {
            s.parse::<VirtualIp>()
                .map(|v| (v, v.addr))
                .map_err(|e| format!("`virtual_ips`: {e}"))
        });
        let preempt = self.opt(t, "preempt", true, boolean);
        let preempt_delay = self.opt(t, "preempt_delay", Duration::ZERO, |k, v| {
            duration_at_most(k, v, MAX_PREEMPT_DELAY)
        });
        let accept_mode = self.opt(t, "accept_mode", false, boolean);
        let unicast_peers = self.addresses(t, ("unicast_peers", "unicast peer"), false, |s| {
            let a = s.trim().parse::<IpAddr>();
            a.map(|a| (a, a))
                .map_err(|_| format!("unicast peer `{s}` is not an IP address"))
        });
        let v3_checksum = self.opt(
            t,
            "v3_checksum",
            V3Checksum::Rfc5798,
            |k, v| match string(k, v)? {
                "rfc5798" => Ok(V3Checksum::Rfc5798),
                "rfc9568" => Ok(V3Checksum::Rfc9568),
                s => Err(format!(
                    "`{k}` must be \"rfc5798\" or \"rfc9568\", found `{s}`"
                )),
            },
        );
        let auth_pass = self.auth_pass(t, version);
        let unicast_src = self.opt(t, "unicast_src", None, |k, v| {
            let s = string(k, v)?;
            let a = s
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("`{k}` `{s}` is not an IP address"))?;
            check_unicast(&a).map_err(|e| format!("`{k}` `{a}` {e}"))?;
            Ok(Some(a))
        });
        let notify = self.notify(t);
        let in_group = name.as_ref().is_some_and(|n| {
            groups
                .iter()
                .any(|g| g.group.instances.iter().any(|i| i == n))
        });
        let track = self.track(t, checks, priority, in_group);
        let garp_repeat = self.opt(t, "garp_repeat", DEFAULT_GARP_REPEAT, |k, v| {
            int_in(k, v, 1, 100)
        });
        let garp_interval = self.opt(t, "garp_interval", DEFAULT_GARP_INTERVAL, |k, v| {
            duration_at_most(k, v, Duration::from_secs(1))
        });

        if let (Some(n), Some(span)) = (&name, t.span("name")) {
            seen.name = Some((n.clone(), span));
        }
        let vips = virtual_ips.as_deref().unwrap_or_default();
        let family = vips.first().map(|(v, _)| v.family());
        if let (Some(i), Some(vrid), Some(f), Some(span)) =
            (&interface, vrid, family, t.span("vrid"))
        {
            seen.key = Some(((i.clone(), vrid, f), span));
        }
        self.unknown_keys(t, "[[instance]]");
        let before = self.problems.len();
        let peers = unicast_peers.as_deref().unwrap_or_default();
        self.address_rules(vips, peers, vrid.unwrap_or(1), version);
        if let (Some(ver), Some(d)) = (version, advert_interval)
            && let Err(e) = check_interval(ver, d)
        {
            let span = t.span("advert_interval").or_else(|| t.span("version"));
            self.err(
                span.unwrap_or(t.at..t.at),
                format!("`advert_interval`: {e}"),
            );
        }
        if let (Some(Some(src)), Some(span)) = (unicast_src, t.span("unicast_src")) {
            self.source_rules(src, span, vips);
        }
        if self.problems.len() != before {
            return None;
        }
        Some(Instance {
            name: name?,
            interface: interface?,
            vrid: vrid?,
            priority: priority?,
            version: version?,
            family: family?,
            advert_interval: advert_interval?,
            virtual_ips: virtual_ips?.into_iter().map(|(v, _)| v).collect(),
            preempt: preempt?,
            preempt_delay: preempt_delay?,
            accept_mode: accept_mode?,
            unicast_peers: unicast_peers?.into_iter().map(|(p, _)| p).collect(),
            v3_checksum: v3_checksum?,
            auth_pass: auth_pass?,
            unicast_src: unicast_src?,
            notify: notify?,
            track: track?,
            garp_repeat: garp_repeat?,
            garp_interval: garp_interval?,
        })
    }

    /// `unicast_src`: of the VIPs' family, and not one of them (a VIP moves
    /// with the master; the source must stay).
    fn source_rules(&mut self, src: IpAddr, span: Span, vips: &[(VirtualIp, Span)]) {
        let Some((first, _)) = vips.first() else {
            return;
        };
        if Family::of(src) != first.family() {
            let msg = format!(
                "`unicast_src` `{src}` is {} but the virtual IPs are {}",
                family_name(Family::of(src)),
                family_name(first.family())
            );
            self.err(span, msg);
        } else if vips.iter().any(|(v, _)| v.addr == src) {
            self.err(
                span,
                format!(
                    "`unicast_src` `{src}` is one of the virtual IPs; use an address \
                     of this host that does not move (keepalived's `unicast_src_ip`)"
                ),
            );
        }
    }

    /// `auth_pass`: VRRPv2 simple text password (see `proto::auth`); the
    /// first 8 bytes, with a warning when longer (keepalived truncates
    /// too). VRRPv3 has no authentication.
    fn auth_pass(
        &mut self,
        t: &mut Section,
        version: Option<Version>,
    ) -> Option<Option<crate::proto::auth::Password>> {
        let Some(v) = t.get("auth_pass") else {
            return Some(None);
        };
        let text = self.check(v.span(), non_empty("auth_pass", v.get_ref()))?;
        if version == Some(Version::V3) {
            self.err(
                v.span(),
                "`auth_pass` needs `version = 2`: VRRPv3 has no authentication (RFC 5798 §9)",
            );
            return None;
        }
        let (pass, truncated) = crate::proto::auth::password(text);
        if truncated {
            self.warnings.push((
                v.span(),
                format!(
                    "`auth_pass` is {} bytes; only the first 8 are sent and compared \
                     (as keepalived does)",
                    text.len()
                ),
            ));
        }
        Some(Some(pass))
    }

    /// The rules across an instance's addresses: one family, what the
    /// version can carry, and what fits in one advert.
    fn address_rules(
        &mut self,
        vips: &[(VirtualIp, Span)],
        peers: &[(IpAddr, Span)],
        vrid: u8,
        version: Option<Version>,
    ) {
        let Some(((first, first_span), rest)) = vips.split_first() else {
            return;
        };
        let fam = first.family();
        for (peer, span) in peers.iter().filter(|(p, _)| Family::of(*p) != fam) {
            let msg = format!(
                "unicast peer `{peer}` is {} but the virtual IPs are {}",
                family_name(Family::of(*peer)),
                family_name(fam)
            );
            self.err(span.clone(), msg);
        }
        // RFC 9568 §5.2.9: the first IPv6 address of an advert is the
        // router's link-local VIP; receivers applying erratum 8300 drop
        // adverts without one. But keepalived runs such configs (warning
        // only) and drops adverts whose address list differs from its own
        // (count and each address), so matching a keepalived peer that
        // lists only global VIPs needs the same list here: a warning.
        if let IpAddr::V6(a) = first.addr
            && (a.segments()[0] & 0xffc0) != 0xfe80
        {
            let msg = format!(
                "the first IPv6 virtual IP `{a}` is not link-local (RFC 9568 §5.2.9): \
                 compliant receivers drop such adverts; keep it only to match a keepalived \
                 peer listing the same addresses, else write \
                 virtual_ips = [\"fe80::{vrid:x}/64\", \"{a}/64\"] (and the same there)"
            );
            self.warnings.push((first_span.clone(), msg));
        }
        for (vip, span) in rest.iter().filter(|(v, _)| v.family() != fam) {
            let msg = format!(
                "`{vip}` is {} but this instance's first virtual IP is {}; \
                 use one address family per instance (two instances may share a vrid)",
                family_name(vip.family()),
                family_name(fam)
            );
            self.err(span.clone(), msg);
        }
        if version == Some(Version::V2) {
            for (vip, span) in vips.iter().filter(|(v, _)| v.family() == Family::V6) {
                let msg =
                    format!("IPv6 virtual IP `{vip}` needs `version = 3` (VRRPv2 is IPv4 only)");
                self.err(span.clone(), msg);
            }
        }
        let max = max_advert_addrs(fam, version.unwrap_or(Version::V3));
        if let Some((_, span)) = vips.get(max) {
            let msg = format!(
                "{} virtual IPs in one instance, but one {} advert carries at most {max} \
                 (the count field is 8 bits and the advert must fit a {ADVERT_MTU}-byte packet); \
                 split them over several instances (another vrid)",
                vips.len(),
                family_name(fam)
            );
            self.err(span.clone(), msg);
        }
    }

    /// An array of address strings: each parsed, unicast, listed once. An
    /// absent key is an empty list, unless `required` (then at least one).
    fn addresses<T: fmt::Display>(
        &mut self,
        t: &mut Section,
        (key, what): (&'static str, &str),
        required: bool,
        parse: impl Fn(&str) -> Result<(T, IpAddr), String>,
    ) -> Option<Vec<(T, Span)>> {
        let Some(v) = t.get(key) else {
            if required {
                self.missing(t, key);
            }
            return (!required).then(Vec::new);
        };
        let arr = match v.get_ref() {
            DeValue::Array(arr) if arr.is_empty() && required => {
                self.err(v.span(), format!("`{key}` needs at least one address"));
                return None;
            }
            DeValue::Array(arr) => arr,
            other => {
                let msg = format!(
                    "`{key}` must be an array of strings, found {}",
                    other.type_str()
                );
                self.err(v.span(), msg);
                return None;
            }
        };
        let mut dup = HashSet::new();
        let mut out = Vec::new();
        for item in arr.iter() {
            let r = string(key, item.get_ref())
                .map_err(|_| {
                    format!(
                        "`{key}` entries must be strings, found {}",
                        item.get_ref().type_str()
                    )
                })
                .and_then(&parse)
                .and_then(|(x, a)| {
                    check_unicast(&a).map_err(|e| format!("{what} `{x}` {e}"))?;
                    if dup.insert(a) {
                        Ok(x)
                    } else {
                        Err(format!("{what} `{a}` is listed twice"))
                    }
                });
            if let Some(x) = self.check(item.span(), r) {
                out.push((x, item.span()));
            }
        }
        Some(out)
    }
}
