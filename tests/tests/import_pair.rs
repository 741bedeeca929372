//! Converted configs against their originals: one node runs a corpus file
//! (`vrrp-agent/tests/keepalived/lab_*.conf`, one file for both nodes with
//! `@lb1`/`@lb2` lines) under keepalived 2.2.7, the other runs
//! `import-keepalived`'s conversion of the same file for the other node, and
//! the pair elects, fails over and preempts correctly both ways.
//! `lab_pair.conf` leaves the version to keepalived's default (VRRPv2), so it
//! also proves the importer keeps the pair on one version; `lab_unicast.conf`
//! is unicast VRRPv3 at 100 ms; `lab_ipv6_global.conf` is IPv6 with only a
//! global VIP (the list kept as keepalived has it). `lab_redis.conf` is the Redis tutorial
//! (`vrrp_script` + `track_script`, `notify_master`/`notify_backup`,
//! `nopreempt` on both nodes): a check failure on the master moves the VIP
//! to the other node, whichever runs keepalived, and back. Run as root.
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
    cluster::{Lab, sole_holder, wait_holder, wait_until},
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

/// IPv6 VRRPv3 with only a global VIP, kept as keepalived has it (an added
/// link-local VIP would make keepalived drop our adverts).
const IPV6_GLOBAL: Pair = Pair {
    file: "lab_ipv6_global.conf",
    instance: "VI_V6",
    vip: "2001:db8:53::10",
    settle: Duration::from_secs(15),
    version_line: "version = 3",
    observe: Duration::from_millis(3500),
};

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

#[test]
fn ipv6_global_only_converted_backup_beside_keepalived_master() {
    IPV6_GLOBAL.converted_backup("i6b");
}

#[test]
fn ipv6_global_only_converted_master_beside_keepalived_backup() {
    IPV6_GLOBAL.converted_master("i6m");
}

/// The Redis tutorial pair: `chk_redis` of node `lbN` succeeds while
/// `/run/vrrp-import-redis/lbN.up` exists; `notify_master` touches
/// `lbN.master`, `notify_backup` removes it.
const REDIS: Pair = Pair {
    file: "lab_redis.conf",
    instance: "REDIS",
    vip: "192.0.2.79",
    settle: Duration::from_secs(15),
    version_line: "version = 2",
    observe: Duration::from_millis(3500),
};

const REDIS_DIR: &str = "/run/vrrp-import-redis";

/// The check files of the Redis pair, removed on drop.
struct RedisFiles;

impl RedisFiles {
    fn new() -> RedisFiles {
        let _ = std::fs::remove_dir_all(REDIS_DIR);
        std::fs::create_dir_all(REDIS_DIR).unwrap();
        for id in ["lb1", "lb2"] {
            RedisFiles::up(id, true);
        }
        RedisFiles
    }

    /// `id`'s redis is up (its check succeeds) or down.
    fn up(id: &str, up: bool) {
        let p = Path::new(REDIS_DIR).join(format!("{id}.up"));
        if up {
            std::fs::write(p, "").unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    fn marker(id: &str) -> bool {
        Path::new(REDIS_DIR).join(format!("{id}.master")).exists()
    }
}

impl Drop for RedisFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(REDIS_DIR);
    }
}

/// `agent_id` (`lb1`, priority 150, or `lb2`, 100) runs the conversion, the
/// other node keepalived; node `lbN` is router N-1. lb1 starts first and
/// becomes MASTER; its check failing moves the VIP to lb2; with lb1 healthy
/// again nothing moves (nopreempt); lb2's check failing moves it back.
fn redis_check_moves_the_vip_both_ways(tag: &str, agent_id: &str) {
    let files = RedisFiles::new();
    let lab = Lab::new(tag, 2);
    let hosts = [lab.router(0), lab.router(1)];
    let ka_id = if agent_id == "lb1" { "lb2" } else { "lb1" };
    let ka_router = usize::from(ka_id == "lb2");
    let agent_router = 1 - ka_router;
    let start_agent = || lab.agent(agent_router, &REDIS.converted(agent_id));
    let (agent, _ka) = if agent_id == "lb1" {
        let agent = start_agent();
        agent
            .wait_state(REDIS.instance, "MASTER", REDIS.settle)
            .unwrap();
        (agent, REDIS.keepalived(&lab, ka_router, ka_id))
    } else {
        let ka = REDIS.keepalived(&lab, ka_router, ka_id);
        wait_holder(&hosts, REDIS.vip, 0);
        let agent = start_agent();
        agent
            .wait_state(REDIS.instance, "BACKUP", REDIS.settle)
            .unwrap();
        (agent, ka)
    };
    std::thread::sleep(REDIS.observe);
    assert_eq!(
        sole_holder(&hosts, REDIS.vip),
        Some(0),
        "{}",
        agent.log_tail(20)
    );

    // lb1's redis fails: the VIP moves to lb2.
    RedisFiles::up("lb1", false);
    wait_holder(&hosts, REDIS.vip, 1);
    let want = if agent_id == "lb2" { "MASTER" } else { "FAULT" };
    agent
        .wait_state(REDIS.instance, want, REDIS.settle)
        .unwrap();
    // The converted node ran its notify_master script (on becoming MASTER
    // at start for lb1, here for lb2).
    let marker = wait_until(REDIS.settle, || RedisFiles::marker(agent_id));
    assert!(marker.is_some(), "{}", agent.log_tail(20));

    // lb1 healthy again: nopreempt keeps the VIP on lb2.
    RedisFiles::up("lb1", true);
    if agent_id == "lb1" {
        agent
            .wait_state(REDIS.instance, "BACKUP", REDIS.settle)
            .unwrap();
    }
    std::thread::sleep(REDIS.observe);
    assert_eq!(sole_holder(&hosts, REDIS.vip), Some(1));

    // lb2's redis fails: the VIP moves back to lb1.
    RedisFiles::up("lb2", false);
    wait_holder(&hosts, REDIS.vip, 0);
    let want = if agent_id == "lb1" { "MASTER" } else { "FAULT" };
    agent
        .wait_state(REDIS.instance, want, REDIS.settle)
        .unwrap();
    drop(files);
}

#[test]
fn redis_converted_backup_beside_keepalived_master_check_moves_the_vip() {
    redis_check_moves_the_vip_both_ways("irb", "lb2");
}

#[test]
fn redis_converted_master_beside_keepalived_backup_check_moves_the_vip() {
    redis_check_moves_the_vip_both_ways("irm", "lb1");
}
