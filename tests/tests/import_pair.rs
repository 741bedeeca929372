//! Converted configs against their originals: one node runs a corpus file
//! (`vrrp-agent/tests/keepalived/lab_*.conf`, one file for both nodes with
//! `@lb1`/`@lb2` lines) under keepalived 2.2.7, the other runs
//! `import-keepalived`'s conversion of the same file for the other node, and
//! the pair elects, fails over and preempts correctly both ways.
//! `lab_pair.conf` leaves the version to keepalived's default (VRRPv2), so it
//! also proves the importer keeps the pair on one version; `lab_unicast.conf`
//! is unicast VRRPv3 at 100 ms. Run as root.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use nix::sys::signal::Signal;
use tests::{
    cluster::{Lab, sole_holder, wait_holder},
    netns::{ChildGuard, unique_name},
};
use vrrp_agent::import::{ReadOptions, import};

/// A corpus file that runs in the lab; its node `lb1` has the higher priority.
#[derive(Clone, Copy)]
struct Pair {
    file: &'static str,
    instance: &'static str,
    vip: &'static str,
    /// Master_Down_Interval plus start-up, with margin.
    settle: Duration,
    /// The `version = N` line the conversion must keep.
    version_line: &'static str,
    /// Several adverts, to see keepalived keep accepting ours.
    observe: Duration,
}

/// keepalived's default VRRPv2 at 1 s, multicast.
const MULTICAST_V2: Pair = Pair {
    file: "lab_pair.conf",
    instance: "VI_LAB",
    vip: "192.0.2.10",
    settle: Duration::from_secs(15),
    version_line: "version = 2",
    observe: Duration::from_millis(3500),
};

/// VRRPv3 at 100 ms, unicast both ways (keepalived `unicast_peer`, ours
/// `unicast_peers`).
const UNICAST_V3: Pair = Pair {
    file: "lab_unicast.conf",
    instance: "VI_UNICAST",
    vip: "192.0.2.20",
    settle: Duration::from_secs(8),
    version_line: "version = 3",
    observe: Duration::from_millis(500),
};

impl Pair {
    fn path(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vrrp-agent/tests/keepalived")
            .join(self.file)
    }

    /// The conversion for node `id`; it must be faithful (exit status 0
    /// or only differences).
    fn converted(&self, id: &str) -> String {
        let opts = ReadOptions {
            config_id: Some(id.to_owned()),
        };
        let conv = import(&self.path(), &opts).expect("corpus file");
        assert_eq!(conv.exit_status(), 0, "{:?}", conv.notes);
        let toml = conv.toml.expect("converted");
        assert!(toml.contains(self.version_line), "{toml}");
        toml
    }

    /// keepalived on router `router` as node `id` (keepalived's `-i`, which
    /// `netns::keepalived` does not pass).
    fn keepalived(&self, lab: &Lab, router: usize, id: &str) -> ChildGuard {
        let name = unique_name("ka");
        let p = |suffix: &str| {
            lab.dir
                .path()
                .join(format!("{name}.{suffix}"))
                .display()
                .to_string()
        };
        let conf = self.path().display().to_string();
        let log = lab.dir.path().join(format!("{name}.log"));
        let args = [
            "--dont-fork",
            "--log-console",
            "--vrrp",
            "--config-id",
            id,
            "--use-file",
            &conf,
            "--pid",
            &p("pid"),
            "--vrrp_pid",
            &p("vrrp.pid"),
            "--checkers_pid",
            &p("checkers.pid"),
        ];
        lab.router(router)
            .spawn("keepalived", &args, Some(&log))
            .expect("keepalived")
    }

    /// keepalived is the preferred master (lb1 on router 0), the converted
    /// agent its backup (lb2 on router 1): election, takeover when
    /// keepalived stops, preemption when it returns.
    fn converted_backup(&self, tag: &str) {
        let lab = Lab::new(tag, 2);
        let hosts = [lab.router(0), lab.router(1)];
        let mut ka = self.keepalived(&lab, 0, "lb1");
        let agent = lab.agent(1, &self.converted("lb2"));

        agent
            .wait_state(self.instance, "BACKUP", self.settle)
            .unwrap();
        wait_holder(&hosts, self.vip, 0);
        assert_eq!(
            agent.state(self.instance).as_deref(),
            Some("BACKUP"),
            "{}",
            agent.log_tail(20)
        );

        ka.stop(Duration::from_secs(5));
        agent
            .wait_state(self.instance, "MASTER", self.settle)
            .unwrap();
        wait_holder(&hosts, self.vip, 1);

        let _ka = self.keepalived(&lab, 0, "lb1");
        agent
            .wait_state(self.instance, "BACKUP", self.settle)
            .unwrap();
        wait_holder(&hosts, self.vip, 0);
        assert_eq!(sole_holder(&hosts, self.vip), Some(0));
    }

    /// The converted agent is the preferred master (lb1 on router 0),
    /// keepalived its backup (lb2 on router 1): election, keepalived takes
    /// over when the agent stops, the agent preempts when it returns.
    fn converted_master(&self, tag: &str) {
        let lab = Lab::new(tag, 2);
        let hosts = [lab.router(0), lab.router(1)];
        let _ka = self.keepalived(&lab, 1, "lb2");
        let mut agent = lab.agent(0, &self.converted("lb1"));

        agent
            .wait_state(self.instance, "MASTER", self.settle)
            .unwrap();
        wait_holder(&hosts, self.vip, 0);
        std::thread::sleep(self.observe);
        assert_eq!(
            sole_holder(&hosts, self.vip),
            Some(0),
            "keepalived took the VIP: it rejects the converted agent's adverts"
        );

        agent.signal(Signal::SIGTERM).unwrap();
        assert!(agent.wait_exit(Duration::from_secs(5)));
        wait_holder(&hosts, self.vip, 1);

        let again = lab.agent(0, &self.converted("lb1"));
        again
            .wait_state(self.instance, "MASTER", self.settle)
            .unwrap();
        wait_holder(&hosts, self.vip, 0);
        assert_eq!(sole_holder(&hosts, self.vip), Some(0));
    }
}

#[test]
fn multicast_v2_converted_backup_beside_keepalived_master() {
    MULTICAST_V2.converted_backup("imb");
}

#[test]
fn multicast_v2_converted_master_beside_keepalived_backup() {
    MULTICAST_V2.converted_master("imm");
}

#[test]
fn unicast_v3_converted_backup_beside_keepalived_master() {
    UNICAST_V3.converted_backup("iub");
}

#[test]
fn unicast_v3_converted_master_beside_keepalived_backup() {
    UNICAST_V3.converted_master("ium");
}
