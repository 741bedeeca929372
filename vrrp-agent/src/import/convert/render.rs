//! The TOML output: every value followed by a comment naming the keepalived
//! line it comes from, or the keepalived default.

use std::{collections::HashMap, fmt::Write as _, net::IpAddr};

use super::{
    Globals, Instance, Origin, Val,
    scripts::{CheckDef, Group},
};
use crate::config::format_duration;
use crate::import::{Note, Severity, Source};

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `key = value` padded to a column, then `# origin`.
/// The rendered TOML and, per line, the keepalived line its value came from,
/// so a value vrrp-agent rejects is reported at the keepalived line.
#[derive(Default)]
pub(super) struct Rendered {
    pub(super) text: String,
    pub(super) origins: HashMap<usize, (Source, String)>,
}

impl Rendered {
    /// `code` padded to a column, then `# origin`.
    fn commented(&mut self, code: &str, from: &Origin) {
        if let Origin::Line(at, kw) = from {
            let line = self.text.matches('\n').count() + 1;
            self.origins.insert(line, (at.clone(), kw.clone()));
        }
        let _ = writeln!(self.text, "{code:<34} # {}", from.comment());
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

/// `key = value  # origin`.
fn kv(out: &mut Rendered, key: &str, value: &str, from: &Origin) {
    out.commented(&format!("{key} = {value}"), from);
}

pub(super) fn render(
    file: &str,
    g: &Globals,
    instances: &[Instance],
    checks: &[CheckDef],
    groups: &[Group],
    notes: &[Note],
) -> Rendered {
    let mut out = Rendered::default();
    let _ = writeln!(
        out.text,
        "# vrrp-agent config converted from {file} by `vrrp-agent import-keepalived`.\n\
         # Each value names the keepalived line it comes from, or the keepalived default.\n\
         # Check it with `vrrp-agent check --config FILE`."
    );
    let listed: Vec<&Note> = notes
        .iter()
        .filter(|n| n.severity != Severity::Harmless)
        .collect();
    if !listed.is_empty() {
        out.push_str("#\n# Read before running:\n");
        for n in listed {
            let _ = writeln!(out.text, "#   {n}");
        }
    }
    out.push_str("\n[global]\n");
    match &g.router_id {
        Some(r) => kv(&mut out, "router_id", &toml_str(&r.v), &r.from),
        None => out.push_str("# router_id: the host name, as in keepalived\n"),
    }
    for c in checks {
        out.push_str("\n[[check]]\n");
        let from = Origin::Line(c.at.clone(), format!("{} {}", c.keyword(), c.name));
        kv(&mut out, "name", &toml_str(&c.name), &from);
        for (key, value, from) in &c.keys {
            kv(&mut out, key, value, from);
        }
    }
    for i in instances {
        render_instance(&mut out, i);
    }
    for grp in groups {
        out.push_str("\n[[sync_group]]\n");
        kv(&mut out, "name", &toml_str(&grp.name.v), &grp.name.from);
        out.push_str("instances = [\n");
        for m in &grp.members {
            out.commented(&format!("  {},", toml_str(&m.v)), &m.from);
        }
        out.push_str("]\n");
        notify(&mut out, &grp.notify);
    }
    out
}

/// `notify*` keys, as written in keepalived.
fn notify(out: &mut Rendered, keys: &[(&str, Val<String>)]) {
    for (key, v) in keys {
        kv(out, key, &toml_str(&v.v), &v.from);
    }
}

/// One `[[instance]]` table.
fn render_instance(out: &mut Rendered, i: &Instance) {
    out.push_str("\n[[instance]]\n");
    kv(out, "name", &toml_str(&i.name.v), &i.name.from);
    if let Some(s) = &i.state {
        let _ = writeln!(
            out.text,
            "# state {} ({}): informational; every node starts as Backup unless priority 255",
            if s.v { "MASTER" } else { "BACKUP" },
            s.from.comment()
        );
    }
    kv(
        out,
        "interface",
        &toml_str(&i.interface.v),
        &i.interface.from,
    );
    kv(out, "vrid", &i.vrid.v.to_string(), &i.vrid.from);
    kv(out, "priority", &i.priority.v.to_string(), &i.priority.from);
    kv(out, "version", &i.version.v.to_string(), &i.version.from);
    kv(
        out,
        "advert_interval",
        &toml_str(&format_duration(i.advert_interval.v)),
        &i.advert_interval.from,
    );
    out.push_str("virtual_ips = [\n");
    for v in &i.vips {
        out.commented(&format!("  {},", toml_str(&v.v.to_string())), &v.from);
    }
    out.push_str("]\n");
    kv(out, "preempt", &i.preempt.v.to_string(), &i.preempt.from);
    kv(
        out,
        "preempt_delay",
        &toml_str(&format_duration(i.preempt_delay.v)),
        &i.preempt_delay.from,
    );
    kv(
        out,
        "accept_mode",
        &i.accept_mode.v.to_string(),
        &i.accept_mode.from,
    );
    if i.unicast_peers.is_empty() {
        kv(
            out,
            "unicast_peers",
            "[]",
            &Origin::Default("multicast (no unicast_peer)".into()),
        );
    } else {
        out.push_str("unicast_peers = [\n");
        for p in &i.unicast_peers {
            out.commented(&format!("  {},", toml_str(&p.v.to_string())), &p.from);
        }
        out.push_str("]\n");
    }
    if let Some(p) = &i.unicast_src {
        kv(out, "unicast_src", &toml_str(&p.v.to_string()), &p.from);
    }
    if let Some(p) = &i.auth_pass {
        kv(out, "auth_pass", &toml_str(&p.v), &p.from);
    }
    if i.version.v == 3 && !matches!(i.vips[0].v.addr, IpAddr::V6(_)) {
        kv(
            out,
            "v3_checksum",
            &toml_str("rfc5798"),
            &Origin::Default("IPv4 pseudo-header included (RFC 5798)".into()),
        );
    }
    if !i.track.is_empty() {
        out.push_str("track = [\n");
        for t in &i.track {
            out.commented(&format!("  {},", t.v), &t.from);
        }
        out.push_str("]\n");
    }
    notify(out, &i.notify);
    kv(
        out,
        "garp_repeat",
        &i.garp_repeat.v.to_string(),
        &i.garp_repeat.from,
    );
    kv(
        out,
        "garp_interval",
        &toml_str(&format_duration(i.garp_interval.v)),
        &i.garp_interval.from,
    );
}
