//! Scripts and tracking: `notify`, `vrrp_sync_group`, and the `track_*`
//! keywords of an instance (listed, not carried yet).

use super::{Converter, Draft, Val, block};
use crate::import::{Severity, parse::Stmt};

impl Converter {
    /// `notify SCRIPT [USER [GROUP]]`; SCRIPT may be a quoted command line.
    pub(super) fn notify(&mut self, d: &mut Draft, s: &Stmt) {
        let Some(cmd) = s.arg(1) else {
            self.error(&s.at, "notify", "`notify` needs a script");
            return;
        };
        let words = crate::import::parse::split_words(cmd);
        if words.len() != 1 {
            self.changes(
                s,
                "a notify command with arguments is not carried: vrrp-agent runs a path as \
                 `PATH INSTANCE name STATE priority`; wrap the command in a script",
            );
            return;
        }
        d.notify = Some(Val::new(words[0].clone(), s));
        if let Some(user) = s.arg(2) {
            self.note(
                s,
                Severity::Difference,
                format!(
                    "the script runs as vrrp-agent's user, not as `{user}`; drop privileges \
                     inside the script"
                ),
            );
        }
    }

    pub(super) fn sync_group(&mut self, s: &Stmt) {
        for g in block(s) {
            match g.keyword() {
                "group" => {
                    let n = block(g).len();
                    if n >= 2 {
                        let members: Vec<&str> = block(g).iter().map(|m| m.keyword()).collect();
                        self.note(
                            s,
                            Severity::ChangesFailover,
                            format!(
                                "instances {} would fail over independently: vrrp-agent has \
                                 no sync groups yet; give them the same priorities and \
                                 tracking so they elect the same node",
                                members.join(", ")
                            ),
                        );
                    }
                }
                "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    self.changes(
                        g,
                        "group notify scripts are not carried: call the script from each \
                         member's `notify` instead",
                    )
                }
                "track_script" | "track_interface" | "track_file" | "track_process"
                | "track_bfd" => self.changes(
                    g,
                    "group tracking is not carried yet: priority and FAULT will not follow it",
                ),
                _ => self.harmless(g, "not carried; nothing to set in vrrp-agent"),
            }
        }
    }

    /// `track_script`, `track_interface`, `track_file`, `track_process`,
    /// `track_bfd` in an instance: a failover change; a tracked script or
    /// file not defined in the file is named too.
    pub(super) fn track(&mut self, s: &Stmt) {
        let what: Vec<String> = block(s).iter().map(|t| t.words.join(" ")).collect();
        self.changes(
            s,
            format!(
                "tracking ({}) is not carried yet: priority and FAULT will not follow \
                 it. Until `track` lands, stop vrrp-agent when the tracked service \
                 fails (systemd `BindsTo=` that service): a graceful stop hands the \
                 VIPs over at once",
                what.join("; ")
            ),
        );
        if s.keyword() == "track_script" || s.keyword() == "track_file" {
            for t in block(s) {
                if !self.tracked.contains(t.keyword()) {
                    let msg = format!(
                        "`{}` is not defined in this file (keepalived ignores it)",
                        t.keyword()
                    );
                    self.note_at(&t.at, s.keyword(), Severity::Harmless, msg);
                }
            }
        }
    }
}
