//! `import-keepalived` on the corpus in `tests/keepalived/`: each file is
//! converted, the result parsed with `Config::parse`, and its important
//! values, the keywords listed as not carried, and the exit status checked.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use vrrp_agent::{
    checks::CheckKind,
    config::{Config, Instance, TrackSpec, TrackTarget},
    import::{Conversion, ReadOptions, Severity, import},
    proto::packet::Version,
};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived")
        .join(name)
}

struct Converted {
    conv: Conversion,
    cfg: Option<Config>,
}

impl Converted {
    fn cfg(&self) -> &Config {
        self.cfg.as_ref().expect("a config")
    }

    fn instance(&self, name: &str) -> &Instance {
        self.cfg()
            .instances
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    /// The (keyword, severity) pairs listed, in file order.
    fn listed(&self, severity: Severity) -> Vec<String> {
        self.conv
            .notes
            .iter()
            .filter(|n| n.severity == severity)
            .map(|n| format!("{}:{}", n.at.line, n.keyword))
            .collect()
    }
}

fn convert_with(name: &str, config_id: Option<&str>) -> Converted {
    let opts = ReadOptions {
        config_id: Some(config_id.unwrap_or("node-under-test").to_owned()),
    };
    let conv = import(&corpus(name), &opts).expect("readable");
    let cfg = conv
        .toml
        .as_ref()
        .map(|t| Config::parse(t, name).unwrap_or_else(|e| panic!("{name}: {e}\n{t}")));
    Converted { conv, cfg }
}

fn convert(name: &str) -> Converted {
    convert_with(name, None)
}

fn vips(i: &Instance) -> Vec<String> {
    i.virtual_ips.iter().map(|v| v.to_string()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_corpus_file_converts_to_a_valid_config_or_fails_cleanly() {
    let mut files = Vec::new();
    for e in std::fs::read_dir(corpus("")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "conf") {
            files.push(p);
        }
    }
    files.push(corpus("includes/keepalived.conf"));
    assert!(files.len() >= 15, "corpus has {} files", files.len());
    for f in files {
        let conv = import(&f, &ReadOptions::default()).unwrap();
        match &conv.toml {
            Some(t) => {
                Config::parse(t, "out").unwrap_or_else(|e| panic!("{}: {e}\n{t}", f.display()));
                assert_ne!(conv.exit_status(), 1);
            }
            None => assert_eq!(conv.exit_status(), 1, "{}", f.display()),
        }
        // Every note names its file and line.
        for n in &conv.notes {
            assert!(n.at.line >= 1 && !n.at.file.is_empty() && !n.keyword.is_empty());
        }
    }
}

#[test]
fn haproxy_master_keeps_v2_and_lists_auth_and_tracking() {
    let c = convert("haproxy_master.conf");
    let i = c.instance("VI_1");
    assert_eq!(c.cfg().global.router_id, "haproxy1");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("eth0", 51, 101)
    );
    // keepalived defaults to VRRPv2; the pair must keep speaking it.
    assert_eq!(i.version, Version::V2);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert_eq!(vips(i), ["192.0.2.100/24"]);
    assert!(i.preempt && i.accept_mode);
    assert_eq!(i.garp_repeat, 5);
    // authentication { auth_type PASS auth_pass s3cr3t } is carried.
    assert_eq!(i.auth_pass, Some(*b"s3cr3t\0\0"));
    assert_eq!(c.listed(Severity::ChangesFailover), Vec::<String>::new());
    // vrrp_script weight 2 reaches the track entry.
    assert_eq!(
        i.track,
        [TrackSpec {
            target: TrackTarget::Check("chk_haproxy".into()),
            weight: 2,
            reverse: false
        }]
    );
    assert_eq!(c.listed(Severity::Difference), ["21:state"]);
    assert!(
        c.listed(Severity::Harmless)
            .contains(&"31:virtual_ipaddress".to_owned())
    );
    assert!(
        c.listed(Severity::Harmless)
            .contains(&"4:notification_email".to_owned())
    );
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn nginx_backup_is_carried_faithfully() {
    let c = convert("nginx_backup.conf");
    let i = c.instance("nginx_vip");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("ens192", 60, 90)
    );
    assert_eq!(i.version, Version::V2);
    assert_eq!(vips(i), ["198.51.100.80/24"]);
    assert!(i.unicast_peers.is_empty());
    assert!(c.conv.notes.is_empty(), "{:?}", c.conv.notes);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn redis_nopreempt_check_track_and_notify_scripts_carried() {
    let c = convert("redis_failover.conf");
    let i = c.instance("REDIS");
    assert!(!i.preempt);
    assert_eq!((i.vrid, i.priority), (79, 150));
    assert_eq!(vips(i), ["203.0.113.79/24"]);
    let chk = &c.cfg().checks[0];
    assert_eq!(chk.name, "chk_redis");
    assert_eq!(
        chk.kind,
        CheckKind::Exec {
            command: ["/usr/bin/redis-cli", "-p", "6379", "ping"]
                .map(String::from)
                .to_vec(),
            user: None
        }
    );
    assert_eq!((chk.rise, chk.fall), (2, 2));
    assert_eq!(
        (chk.interval, chk.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    // keepalived's vrrp_script weight defaults to 0: failure -> FAULT.
    assert_eq!(
        i.track,
        [TrackSpec {
            target: TrackTarget::Check("chk_redis".into()),
            weight: 0,
            reverse: false
        }]
    );
    let argv = |s: &Option<vrrp_agent::config::Script>| {
        s.as_ref().map(|s| {
            s.argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        argv(&i.notify.master).unwrap(),
        ["/etc/keepalived/redis-master.sh", "203.0.113.12", "6379"]
    );
    assert_eq!(
        argv(&i.notify.backup).unwrap(),
        ["/etc/keepalived/redis-backup.sh", "203.0.113.12", "6379"]
    );
    assert_eq!(
        argv(&i.notify.fault).unwrap(),
        ["/etc/keepalived/redis-fault.sh"]
    );
    assert_eq!(
        argv(&i.notify.stop).unwrap(),
        ["/etc/keepalived/redis-stop.sh"]
    );
    assert!(c.listed(Severity::ChangesFailover).is_empty());
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn mariadb_notify_script_and_interval_are_carried() {
    let c = convert("mariadb_nopreempt.conf");
    let i = c.instance("VI_MYSQL");
    assert!(!i.preempt);
    assert_eq!(i.advert_interval, Duration::from_secs(2));
    assert_eq!(
        i.notify.any.as_ref().map(|s| s.program()),
        Some(Path::new("/usr/local/bin/mysql-vip-notify.sh"))
    );
    // The user after the script is not carried: the script runs as ours.
    assert_eq!(c.listed(Severity::Difference), ["15:notify"]);
    assert_eq!(c.conv.exit_status(), 0, "{:?}", c.conv.notes);
}

#[test]
fn k8s_vip_without_mask_is_a_host_address() {
    let c = convert("k8s_apiserver.conf");
    let i = c.instance("VI_1");
    assert_eq!(vips(i), ["192.0.2.200/32"]);
    assert_eq!(i.priority, 101);
    assert_eq!(i.auth_pass, Some(*b"42\0\0\0\0\0\0"));
    assert_eq!(c.listed(Severity::ChangesFailover), Vec::<String>::new());
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn cloud_unicast_keeps_peers_and_lists_the_pinned_source() {
    let c = convert("cloud_unicast.conf");
    let i = c.instance("VI_CLOUD");
    assert_eq!(i.unicast_peers, [ip("198.51.100.12")]);
    // unicast_src_ip is the advert source.
    assert_eq!(i.unicast_src, Some(ip("198.51.100.11")));
    assert_eq!(c.listed(Severity::ChangesFailover), Vec::<String>::new());
    assert_eq!(c.listed(Severity::Difference), ["11:unicast_peer"]);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn global_vrrp_version_3_and_sub_second_interval() {
    let c = convert("unicast_v3.conf");
    let i = c.instance("VI_FAST");
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_interval, Duration::from_millis(500));
    assert_eq!(i.unicast_peers, [ip("192.0.2.12"), ip("192.0.2.13")]);
    assert_eq!(i.priority, 200);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn ipv6_with_link_local_first_is_v3_and_unchanged() {
    let c = convert("ipv6_link_local.conf");
    let i = c.instance("VI6");
    assert_eq!(i.version, Version::V3);
    assert_eq!(vips(i), ["fe80::61/64", "2001:db8:61::1/64"]);
    assert!(c.conv.notes.is_empty(), "{:?}", c.conv.notes);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn ipv6_without_link_local_keeps_keepalived_list_and_says_so() {
    let c = convert("ipv6_global_only.conf");
    let i = c.instance("VI6_GLOBAL");
    // keepalived compares the whole address list: no link-local is added.
    assert_eq!(vips(i), ["2001:db8:62::10/64"]);
    let n = &c.conv.notes[0];
    assert_eq!(
        (n.at.line, n.keyword.as_str(), n.severity),
        (9, "virtual_ipaddress", Severity::Difference)
    );
    assert!(n.message.contains("fe80::3e/64"), "{}", n.message);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn authentication_pass_ah_v3_and_incomplete() {
    let c = convert("auth_variants.conf");
    // The text as written; Config keeps the first 8 bytes, as keepalived.
    assert_eq!(c.instance("VI_PASS").auth_pass, Some(*b"longer_t"));
    assert!(
        c.conv
            .toml
            .as_deref()
            .unwrap()
            .contains("auth_pass = \"longer_than_8\""),
    );
    for name in ["VI_AH", "VI_V3", "VI_NO_TYPE"] {
        assert_eq!(c.instance(name).auth_pass, None, "{name}");
    }
    assert_eq!(c.listed(Severity::ChangesFailover), ["18:authentication"]);
    assert_eq!(
        c.listed(Severity::Harmless),
        ["30:authentication", "41:authentication"]
    );
    assert_eq!(c.conv.exit_status(), 2);
}

#[test]
fn dual_stack_moves_the_link_local_first() {
    let c = convert("dual_stack.conf");
    let v4 = c.instance("VI4_GW");
    let v6 = c.instance("VI6_GW");
    assert_eq!((v4.version, v6.version), (Version::V3, Version::V3));
    assert_eq!((v4.vrid, v6.vrid), (10, 10));
    assert_eq!(vips(v6), ["fe80::10/64", "2001:db8:10::1/64"]);
    assert!(
        c.listed(Severity::Difference)
            .contains(&"24:virtual_ipaddress".to_owned())
    );
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn sync_group_and_its_notify_are_carried() {
    let c = convert("sync_group_router.conf");
    assert_eq!(c.cfg().instances.len(), 2);
    assert_eq!(c.instance("VI_INSIDE").interface, "eth1");
    assert_eq!(c.instance("VI_OUTSIDE").interface, "eth2");
    let g = &c.cfg().sync_groups[0];
    assert_eq!(g.name, "G_ROUTER");
    assert_eq!(g.instances, ["VI_INSIDE", "VI_OUTSIDE"]);
    assert_eq!(
        g.notify.master.as_ref().map(|s| s.line.as_str()),
        Some("/etc/keepalived/router.sh master")
    );
    assert!(c.listed(Severity::ChangesFailover).is_empty());
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn several_instances_on_one_interface_with_defaults() {
    let c = convert("multi_instance.conf");
    let names: Vec<&str> = c.cfg().instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["web", "api", "mail"]);
    assert_eq!(vips(c.instance("api")), ["192.0.2.12/24", "192.0.2.13/24"]);
    // `vrrp_instance web { interface eth0` on one line.
    assert_eq!(c.instance("web").interface, "eth0");
    // No priority: keepalived's VRRP_PRIO_DFL.
    assert_eq!(c.instance("mail").priority, 100);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn dual_master_keeps_each_priority() {
    let c = convert("dual_master.conf");
    assert_eq!(c.instance("VIP_A").priority, 150);
    assert_eq!(c.instance("VIP_B").priority, 100);
    assert_eq!(c.listed(Severity::Difference), ["4:state"]);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn include_globs_are_read_relative_to_the_including_file() {
    let c = convert("includes/keepalived.conf");
    let names: Vec<&str> = c.cfg().instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["WEB", "DB"]);
    assert!(!c.instance("DB").preempt);
    assert_eq!(c.cfg().global.router_id, "lb-inc");
    // The source comment names the included file.
    let toml = c.conv.toml.as_deref().unwrap();
    assert!(toml.contains("conf.d/20-db.conf:5 nopreempt"), "{toml}");
    // `includer` of a pattern matching nothing is accepted, as in keepalived.
    assert_eq!(c.listed(Severity::Harmless), ["6:includer"]);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn strict_mode_defaults() {
    let c = convert("strict.conf");
    let s = c.instance("VI_STRICT");
    assert!(!s.accept_mode, "strict mode: no accept for a non-owner");
    assert_eq!(
        s.preempt_delay,
        Duration::ZERO,
        "strict mode clears preempt_delay"
    );
    assert_eq!(s.version, Version::V3);
    let o = c.instance("VI_OWNER");
    assert!(o.accept_mode, "the owner accepts");
    assert_eq!(o.priority, 255);
    assert_eq!(c.listed(Severity::Difference), ["13:preempt_delay"]);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn garp_settings_from_global_defs() {
    let c = convert("garp_tuning.conf");
    let i = c.instance("VI_GARP");
    assert_eq!(i.garp_repeat, 3);
    assert_eq!(i.garp_interval, Duration::from_millis(50));
    assert_eq!(i.preempt_delay, Duration::from_secs(5));
    assert_eq!(
        c.listed(Severity::Harmless),
        ["5:vrrp_garp_master_delay", "6:vrrp_garp_master_refresh"]
    );
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn conditional_lines_and_parameters_follow_the_config_id() {
    let a = convert_with("conditional.conf", Some("lb1"));
    let b = convert_with("conditional.conf", Some("lb2"));
    assert_eq!(a.cfg().global.router_id, "lb1");
    assert_eq!(b.cfg().global.router_id, "lb2");
    assert_eq!(a.instance("VI_COND").priority, 150);
    assert_eq!(b.instance("VI_COND").priority, 100);
    assert_eq!(vips(a.instance("VI_COND")), ["192.0.2.60/24"]);
    assert_eq!(a.instance("VI_COND").unicast_peers, [ip("192.0.2.62")]);
    assert_eq!(b.instance("VI_COND").unicast_peers, [ip("192.0.2.61")]);
}

#[test]
fn state_master_without_priority_is_the_owner_and_keeps_preempt() {
    let c = convert("owner.conf");
    let i = c.instance("VI_OWNER");
    assert_eq!(i.priority, 255);
    assert!(i.preempt, "keepalived clears nopreempt with state MASTER");
    assert!(i.accept_mode);
    assert_eq!(c.listed(Severity::Difference), ["4:nopreempt"]);
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn vip_options_dev_routes_and_excluded_are_listed() {
    let c = convert("vip_options.conf");
    let i = c.instance("VI_OPTS");
    assert_eq!(vips(i), ["192.0.2.70/24", "198.51.100.70/24"]);
    assert_eq!(
        c.listed(Severity::ChangesFailover),
        [
            "10:virtual_ipaddress",
            "12:virtual_ipaddress_excluded",
            "15:virtual_routes"
        ]
    );
    assert_eq!(c.listed(Severity::Difference), ["7:use_vmac"]);
    assert_eq!(c.conv.exit_status(), 2);
}

#[test]
fn lvs_blocks_are_listed_but_do_not_fail() {
    let c = convert("lvs_director.conf");
    assert_eq!(c.instance("VI_LVS").priority, 150);
    assert!(
        c.listed(Severity::Harmless)
            .contains(&"16:virtual_server".to_owned())
    );
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn broken_files_produce_no_config() {
    let c = convert("broken_braces.conf");
    assert!(c.conv.toml.is_none());
    assert_eq!(c.listed(Severity::Error), ["1:{"]);
    assert_eq!(c.conv.exit_status(), 1);
    let c = convert("no_vip.conf");
    assert!(c.conv.toml.is_none());
    assert_eq!(c.listed(Severity::Error), ["2:virtual_ipaddress"]);
}

// ---- through the binary ----

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vrrp-import-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
}

#[test]
fn cli_writes_output_lists_drops_as_file_line_keyword_and_exits_2() {
    let d = TempDir::new("cli");
    let out_file = d.0.join("auth.toml");
    let src = corpus("auth_variants.conf");
    let out = agent()
        .arg("import-keepalived")
        .arg(&src)
        .arg("-o")
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let want = format!("{}:18: authentication: ", src.display());
    assert!(stderr.lines().any(|l| l.starts_with(&want)), "{stderr}");
    // The written file passes `check`.
    let chk = agent()
        .args(["check", "--config"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(chk.status.code(), Some(0), "{chk:?}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        text.contains(&format!("# {}:6 virtual_router_id", src.display())),
        "{text}"
    );
}

#[test]
fn cli_faithful_conversion_exits_0_to_stdout() {
    let out = agent()
        .arg("import-keepalived")
        .arg(corpus("nginx_backup.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    Config::parse(&text, "stdout").unwrap();
}

#[test]
fn cli_unconvertible_exits_1_without_output() {
    let out = agent()
        .arg("import-keepalived")
        .arg(corpus("broken_braces.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let out = agent()
        .arg("import-keepalived")
        .arg(corpus("does-not-exist.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// Converts `text` written to a temporary file.
/// The (line, keyword) of each note of `severity`, in file order.
fn noted(c: &Conversion, severity: Severity) -> Vec<(usize, &str)> {
    c.notes
        .iter()
        .filter(|n| n.severity == severity)
        .map(|n| (n.at.line, n.keyword.as_str()))
        .collect()
}

fn convert_text(tag: &str, text: &str) -> Conversion {
    let d = TempDir::new(tag);
    let f = d.0.join("keepalived.conf");
    std::fs::write(&f, text).unwrap();
    import(&f, &ReadOptions::default()).unwrap()
}

#[test]
fn conflicts_are_errors_at_the_keepalived_line() {
    let dup = "vrrp_instance B {\n interface eth0\n virtual_router_id 6\n virtual_ipaddress { 192.0.2.6/24 }\n}\n\
               vrrp_instance C {\n interface eth0\n virtual_router_id 6\n virtual_ipaddress { 192.0.2.7/24 }\n}\n";
    let c = convert_text("dup", dup);
    assert!(c.toml.is_none());
    let n = noted(&c, Severity::Error);
    assert_eq!(n, [(8, "virtual_router_id")]);

    let family = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n \
                  virtual_ipaddress { 192.0.2.5/24 }\n unicast_peer {\n  2001:db8::2\n }\n}\n";
    let c = convert_text("fam", family);
    assert!(c.toml.is_none());
    assert!(
        c.notes.iter().any(|n| n.severity == Severity::Error
            && n.at.line == 6
            && n.keyword == "unicast_peer"),
        "{:?}",
        c.notes
    );
}

#[test]
fn checked_include_without_match_is_an_error() {
    let c = convert_text(
        "incm",
        "includem nothing.d/*.conf\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n \
         virtual_ipaddress { 192.0.2.5/24 }\n}\n",
    );
    assert_eq!(c.exit_status(), 1);
    assert_eq!(
        (c.notes[0].at.line, c.notes[0].keyword.as_str()),
        (1, "includem")
    );
}

#[test]
fn a_vip_of_the_other_family_is_ignored_as_keepalived_does() {
    let c = convert_text(
        "mixed",
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  \
         192.0.2.5/24\n  2001:db8::5/64\n }\n}\n",
    );
    let cfg = Config::parse(c.toml.as_deref().unwrap(), "mixed").unwrap();
    assert_eq!(vips(&cfg.instances[0]), ["192.0.2.5/24"]);
    assert_eq!(c.exit_status(), 0);
    assert_eq!(
        (c.notes[0].at.line, c.notes[0].severity),
        (6, Severity::Harmless)
    );
}

#[test]
fn a_value_vrrp_agent_rejects_is_reported_at_its_keepalived_line() {
    let c = convert_text(
        "reject",
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n version 3\n advert_int 41\n \
         virtual_ipaddress { 192.0.2.5/24 }\n}\n",
    );
    assert_eq!(c.exit_status(), 1);
    let n = &c.notes[0];
    assert_eq!(
        (n.at.line, n.keyword.as_str(), n.severity),
        (5, "advert_int", Severity::Error)
    );
    assert!(n.message.contains("40.95s"), "{}", n.message);
}

/// Golden files: `tests/keepalived/expected/NAME.toml` (the config) and
/// `NAME.notes` (the listed keywords) for every corpus file, paths relative
/// to the corpus directory. `UPDATE_GOLDEN=1 cargo test --test
/// import_keepalived golden` rewrites them after an intended change.
#[test]
fn golden_outputs() {
    let dir = corpus("");
    let expected = dir.join("expected");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.push("includes/keepalived.conf".into());
    names.sort();
    let prefix = format!("{}/", dir.display().to_string().trim_end_matches('/'));
    let mut stale = Vec::new();
    for name in names {
        let conv = import(
            &dir.join(&name),
            &ReadOptions {
                config_id: Some("lb1".into()),
            },
        )
        .unwrap();
        let toml = conv
            .toml
            .as_deref()
            .unwrap_or_default()
            .replace(&prefix, "");
        let notes: String = conv
            .notes
            .iter()
            .map(|n| format!("{}\n", n.to_string().replace(&prefix, "")))
            .collect::<String>()
            + &format!("exit status {}\n", conv.exit_status());
        let stem = name.trim_end_matches(".conf").replace('/', "_");
        for (ext, got) in [("toml", toml), ("notes", notes)] {
            let path = expected.join(format!("{stem}.{ext}"));
            if update {
                std::fs::create_dir_all(&expected).unwrap();
                std::fs::write(&path, &got).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(got.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "differs from the golden file (UPDATE_GOLDEN=1 to accept): {stale:#?}"
    );
}

#[test]
fn a_script_defined_after_its_instance_is_known() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n \
                virtual_ipaddress { 192.0.2.5/24 }\n track_script {\n  chk\n  missing\n }\n}\n\
                vrrp_script chk {\n script /bin/true\n}\n";
    let c = convert_text("order", text);
    let harmless = noted(&c, Severity::Harmless);
    // Only the undefined one is flagged; the later definition is carried.
    assert_eq!(harmless, [(7, "track_script")]);
    assert!(
        c.toml
            .as_deref()
            .unwrap()
            .contains("{ check = \"chk\", weight = 0 }")
    );
    assert_eq!(c.exit_status(), 0);
}

#[test]
fn track_process_file_interface_and_shell_script_are_carried() {
    let c = convert("haproxy_track_process.conf");
    let i = c.instance("VI_LB");
    let track: Vec<(String, i32)> = i
        .track
        .iter()
        .map(|t| (format!("{:?}", t.target), t.weight))
        .collect();
    assert_eq!(
        track,
        [
            ("Check(\"track_haproxy\")".to_owned(), 10),
            ("Check(\"maintenance\")".to_owned(), -50),
            ("Check(\"chk_port\")".to_owned(), -20),
            ("Interface(\"eth1\")".to_owned(), -30),
        ]
    );
    let port = c
        .cfg()
        .checks
        .iter()
        .find(|k| k.name == "chk_port")
        .unwrap();
    assert_eq!(
        port.kind,
        CheckKind::Exec {
            command: ["/bin/sh", "-c", "ss -ltn | grep -q ':443 '"]
                .map(String::from)
                .to_vec(),
            user: Some("haproxy".into())
        }
    );
    assert_eq!(
        c.listed(Severity::Difference),
        ["4:vrrp_track_process", "8:delay", "17:script"]
    );
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn sync_group_tracking_reaches_every_member() {
    let c = convert("sync_group_tracked.conf");
    for name in ["VI_IN", "VI_OUT"] {
        assert!(
            c.instance(name).track.contains(&TrackSpec {
                target: TrackTarget::Check("chk_uplink".into()),
                weight: 0,
                reverse: false
            }),
            "{name}"
        );
    }
    let chk = &c.cfg().checks[0];
    assert_eq!(chk.initial, vrrp_agent::checks::InitialState::Down);
    assert_eq!(
        (chk.rise, chk.fall, chk.timeout),
        (3, 2, Duration::from_secs(1))
    );
    let g = &c.cfg().sync_groups[0];
    assert_eq!(
        g.notify.any.as_ref().unwrap().line,
        "/usr/local/bin/fw-notify"
    );
    assert_eq!(c.conv.exit_status(), 0);
}

#[test]
fn track_process_with_quorum_or_parameters_changes_failover() {
    let text = "vrrp_track_process p {\n process nginx -g daemon\n quorum 2\n full_command\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 5\n \
                virtual_ipaddress { 192.0.2.5/24 }\n track_process {\n  p\n }\n}\n";
    let c = convert_text("quorum", text);
    let listed = noted(&c, Severity::ChangesFailover);
    assert_eq!(listed, [(2, "process"), (3, "quorum"), (4, "full_command")]);
    assert_eq!(c.exit_status(), 2);
}

/// The redis tutorial with its scripts present: the conversion passes the
/// preflight of `vrrp-agent check` (every script and command executable).
#[test]
fn converted_scripts_pass_the_preflight_when_they_exist() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("preflight");
    let script = |name: &str| {
        let p = d.0.join(name);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    let (chk, master, backup, group) = (
        script("chk.sh"),
        script("master.sh"),
        script("backup.sh"),
        script("group.sh"),
    );
    let text = format!(
        "vrrp_script chk_redis {{\n script \"{chk} -p 6379\"\n interval 1\n fall 2\n rise 2\n}}\n\
         vrrp_sync_group G {{\n group {{\n  REDIS\n }}\n notify \"{group} --log\"\n}}\n\
         vrrp_instance REDIS {{\n state BACKUP\n nopreempt\n interface eth1\n \
         virtual_router_id 79\n priority 150\n virtual_ipaddress {{ 203.0.113.79/24 }}\n \
         track_script {{\n  chk_redis weight -60\n }}\n \
         notify_master \"{master} 203.0.113.12 6379\"\n notify_backup {backup}\n}}\n"
    );
    let c = convert_text("preflight-conf", &text);
    assert_eq!(c.exit_status(), 0, "{:?}", c.notes);
    let toml = c.toml.unwrap();
    let (cfg, _warnings) =
        Config::parse_preflight(&toml, "converted").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(cfg.instances[0].track[0].weight, -60);
    // A missing script is caught by the same preflight.
    std::fs::remove_file(&master).unwrap();
    assert!(Config::parse_preflight(&toml, "converted").is_err());
}

/// keepalived accepts a script timeout above its interval; vrrp-agent does
/// not: the timeout becomes the interval and that is listed.
#[test]
fn a_script_timeout_above_the_interval_is_clamped_and_listed() {
    let text = "vrrp_script chk {\n script /bin/true\n interval 1\n timeout 3\n weight -10\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 5\n priority 100\n \
                virtual_ipaddress { 192.0.2.5/24 }\n track_script {\n  chk weight -20 reverse\n }\n}\n";
    let c = convert_text("timeout", text);
    let listed = noted(&c, Severity::ChangesFailover);
    assert_eq!(listed, [(4, "timeout")]);
    let cfg = Config::parse(c.toml.as_deref().unwrap(), "t").unwrap();
    assert_eq!(cfg.checks[0].timeout, Duration::from_secs(1));
    // The entry's weight and `reverse` override the definition's.
    assert_eq!(
        cfg.instances[0].track,
        [TrackSpec {
            target: TrackTarget::Check("chk".into()),
            weight: -20,
            reverse: true
        }]
    );
    assert_eq!(c.exit_status(), 2);
}
