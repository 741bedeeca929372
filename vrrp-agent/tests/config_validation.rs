//! Config file validation: every rule, reported as `FILE:LINE:COL: message`,
//! all problems at once.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::{net::IpAddr, time::Duration};

use vrrp_agent::{
    config::{Config, ConfigError, VirtualIp, XdpMode},
    proto::{Family, V3Checksum, Version},
};

/// The problems of an invalid config, as `LINE:COL: message` (file name cut).
fn problems(text: &str) -> Vec<String> {
    match Config::parse(text, "t.toml") {
        Ok(_) => panic!("config unexpectedly valid:\n{text}"),
        Err(e) => e
            .lines()
            .into_iter()
            .map(|l| l.strip_prefix("t.toml:").expect("file prefix").to_owned())
            .collect(),
    }
}

fn valid(text: &str) -> Config {
    match Config::parse(text, "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("config unexpectedly invalid:\n{e}\n---\n{text}"),
    }
}

/// A valid instance with `extra` lines appended (later keys must not repeat these).
fn inst(extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 100\n{extra}\n"
    )
}

fn assert_problem(text: &str, pos: &str, needle: &str) {
    let p = problems(text);
    assert!(
        p.iter()
            .any(|l| l.starts_with(&format!("{pos}: ")) && l.contains(needle)),
        "expected `{pos}: ...{needle}...` in {p:#?}"
    );
}

#[test]
fn spec_example_parses_with_its_values() {
    let c = valid(
        r#"
[global]
router_id = "lb1"
control_socket = "/run/vrrp-agent/control.sock"
xdp = "auto"
metrics_listen = "127.0.0.1:9477"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 100
version = 3
advert_interval = "1s"
virtual_ips = ["192.0.2.10/24"]
preempt = true
preempt_delay = "0s"
accept_mode = false
unicast_peers = []
v3_checksum = "rfc5798"
notify = "/etc/vrrp-agent/notify.sh"
"#,
    );
    assert_eq!(c.global.router_id, "lb1");
    assert_eq!(c.global.xdp, XdpMode::Auto);
    assert_eq!(
        c.global.metrics_listen,
        Some("127.0.0.1:9477".parse().unwrap())
    );
    let i = &c.instances[0];
    assert_eq!(
        (i.name.as_str(), i.interface.as_str(), i.vrid, i.priority),
        ("VI_1", "eth0", 51, 100)
    );
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.family, Family::V4);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert_eq!(
        i.virtual_ips,
        vec!["192.0.2.10/24".parse::<VirtualIp>().unwrap()]
    );
    assert_eq!(
        i.notify.any.as_ref().map(|s| s.program()),
        Some(std::path::Path::new("/etc/vrrp-agent/notify.sh"))
    );
}

#[test]
fn defaults() {
    let c = valid(&inst("virtual_ips = [\"192.0.2.10\"]"));
    let g = &c.global;
    assert_eq!(
        g.control_socket,
        std::path::Path::new("/run/vrrp-agent/control.sock")
    );
    assert_eq!(g.xdp, XdpMode::Auto);
    assert_eq!(g.metrics_listen, None);
    assert_eq!(g.notify_timeout, Duration::from_secs(30));
    assert!(
        !g.router_id.is_empty(),
        "router_id defaults to the hostname"
    );
    let i = &c.instances[0];
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert!(!i.accept_mode);
    assert!(i.unicast_peers.is_empty());
    assert_eq!(i.v3_checksum, V3Checksum::Rfc5798);
    assert_eq!(i.notify, Default::default());
    assert_eq!(i.garp_repeat, 5);
    assert_eq!(i.garp_interval, Duration::from_millis(10));
    // A bare address is a host address.
    assert_eq!(i.virtual_ips[0].prefix_len, 32);
    assert_eq!(
        i.advert_destinations(),
        vec!["224.0.0.18".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn ipv6_instance_and_extensions() {
    let c = valid(&inst(
        "virtual_ips = [\"fe80::51/64\", \"2001:db8::11\"]\nunicast_peers = [\"fe80::2\"]\n\
         v3_checksum = \"rfc9568\"\nadvert_interval = \"40.95s\"\ngarp_repeat = 3\ngarp_interval = \"0s\"",
    ));
    let i = &c.instances[0];
    assert_eq!(i.family, Family::V6);
    assert_eq!(i.virtual_ips[1].prefix_len, 128);
    assert_eq!(i.unicast_peers, vec!["fe80::2".parse::<IpAddr>().unwrap()]);
    assert_eq!(i.v3_checksum, V3Checksum::Rfc9568);
    assert_eq!(i.advert_interval, Duration::from_millis(40_950));
    assert_eq!((i.garp_repeat, i.garp_interval), (3, Duration::ZERO));
    assert_eq!(i.multicast_group(), "ff02::12".parse::<IpAddr>().unwrap());
    assert_eq!(i.advert_destinations(), i.unicast_peers);
    assert_eq!(i.key(), ("eth0", 51, Family::V6));
}

#[test]
fn router_config_helper() {
    let c = valid(&inst(
        "virtual_ips = [\"192.0.2.10/24\"]\nversion = 2\nadvert_interval = \"3s\"\npreempt = false\n\
         preempt_delay = \"1.5s\"\naccept_mode = true",
    ));
    let src: IpAddr = "192.0.2.1".parse().unwrap();
    let rc = c.instances[0].router_config(src);
    assert_eq!(rc.vrid, 51);
    assert_eq!(rc.version, Version::V2);
    assert_eq!(rc.family, Family::V4);
    assert_eq!(rc.priority, 100);
    assert_eq!(rc.advert_interval, Duration::from_secs(3));
    assert!(!rc.preempt);
    assert_eq!(rc.preempt_delay, Duration::from_millis(1500));
    assert!(rc.accept_mode);
    assert_eq!(rc.primary_addr, src);
}

#[test]
fn unknown_keys_with_suggestions() {
    let text = format!(
        "[global]\nrouterid = \"x\"\n\n{}\n[extra]\n",
        inst("virtual_ips = [\"192.0.2.10\"]\nprio = 1")
    );
    assert_problem(
        &text,
        "2:1",
        "unknown key `routerid` in [global], did you mean `router_id`?",
    );
    assert_problem(&text, "12:2", "unknown section `extra`");
    assert_problem(&text, "10:1", "unknown key `prio` in [[instance]]");
}

#[test]
fn syntax_error_has_position() {
    let p = problems("[global]\nrouter_id = \"lb1\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("2:"), "{p:?}");
    assert!(p[0].contains("TOML syntax error"), "{p:?}");
}

#[test]
fn ranges_of_vrid_priority_version() {
    let vip = "virtual_ips = [\"192.0.2.10\"]";
    let t = format!(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 0\npriority = 256\nversion = 4\n{vip}\n"
    );
    assert_problem(&t, "4:8", "`vrid` must be 1..=255, found 0");
    assert_problem(&t, "5:12", "`priority` must be 1..=255, found 256");
    assert_problem(&t, "6:11", "`version` must be 2 or 3");
    let t = format!(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 256\npriority = 0\n{vip}\n"
    );
    assert_problem(&t, "4:8", "found 256");
    assert_problem(&t, "5:12", "found 0");
    // 255 is the address owner and allowed.
    valid(&format!(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 255\npriority = 255\n{vip}\n"
    ));
}

#[test]
fn missing_required_keys_point_at_the_instance() {
    let t = "[global]\n\n[[instance]]\nname = \"a\"\n";
    let p = problems(t);
    for key in ["interface", "vrid", "priority", "virtual_ips"] {
        assert!(
            p.iter()
                .any(|l| l == &format!("3:1: missing required key `{key}`")),
            "{key}: {p:#?}"
        );
    }
}

#[test]
fn wrong_types() {
    let t = inst("virtual_ips = \"192.0.2.10\"\npreempt = \"yes\"\nadvert_interval = 1");
    assert_problem(
        &t,
        "6:15",
        "`virtual_ips` must be an array of strings, found string",
    );
    assert_problem(&t, "7:11", "`preempt` must be true or false, found string");
    assert_problem(
        &t,
        "8:19",
        "`advert_interval` must be a duration string with a unit",
    );
    let t = "instance = 5\n";
    assert_problem(t, "1:12", "`instance` must be an array of tables");
    let t = "[instance]\nname = \"a\"\n";
    assert_problem(t, "1:1", "`instance` must be an array of tables");
}

#[test]
fn no_instances() {
    assert_problem(
        "[global]\nrouter_id = \"lb1\"\n",
        "1:1",
        "no [[instance]] configured",
    );
}

#[test]
fn v2_interval_whole_seconds_1_to_255() {
    for (iv, ok) in [
        ("1s", true),
        ("255s", true),
        ("1.5s", false),
        ("0s", false),
        ("256s", false),
        ("500ms", false),
    ] {
        let t = inst(&format!(
            "virtual_ips = [\"192.0.2.10\"]\nversion = 2\nadvert_interval = \"{iv}\""
        ));
        if ok {
            valid(&t);
        } else {
            assert_problem(&t, "8:19", "VRRPv2 needs whole seconds 1s..=255s");
        }
    }
}

#[test]
fn v3_interval_10ms_steps_up_to_40_95s() {
    for (iv, ok) in [
        ("10ms", true),
        ("40.95s", true),
        ("1.5s", true),
        ("20ms", true),
        ("5ms", false),
        ("15ms", false),
        ("41s", false),
        ("0s", false),
    ] {
        let t = inst(&format!(
            "virtual_ips = [\"192.0.2.10\"]\nadvert_interval = \"{iv}\""
        ));
        if ok {
            valid(&t);
        } else {
            assert_problem(&t, "7:19", "VRRPv3 needs 10ms..=40.95s in steps of 10ms");
        }
    }
}

#[test]
fn default_interval_is_checked_against_version_too() {
    // Default 1s is fine for both versions.
    valid(&inst("virtual_ips = [\"192.0.2.10\"]\nversion = 2"));
}

#[test]
fn durations_need_units() {
    let t = inst("virtual_ips = [\"192.0.2.10\"]\npreempt_delay = \"10\"");
    assert_problem(&t, "7:17", "needs a unit");
    let t = inst("virtual_ips = [\"192.0.2.10\"]\npreempt_delay = \"10 parsecs\"");
    assert_problem(&t, "7:17", "unknown unit");
}

#[test]
fn preempt_delay_limit() {
    valid(&inst(
        "virtual_ips = [\"192.0.2.10\"]\npreempt_delay = \"1000s\"",
    ));
    let t = inst("virtual_ips = [\"192.0.2.10\"]\npreempt_delay = \"1001s\"");
    assert_problem(&t, "7:17", "longer than the maximum 1000s");
}

#[test]
fn ipv6_needs_version_3() {
    let t = inst("version = 2\nvirtual_ips = [\"2001:db8::1/64\"]");
    assert_problem(
        &t,
        "7:16",
        "IPv6 virtual IP `2001:db8::1/64` needs `version = 3`",
    );
}

#[test]
fn one_family_per_instance() {
    let t = inst("virtual_ips = [\"192.0.2.10/24\", \"2001:db8::1\"]");
    assert_problem(
        &t,
        "6:33",
        "is IPv6 but this instance's first virtual IP is IPv4",
    );
}

#[test]
fn at_least_one_vip_and_valid_vips() {
    assert_problem(
        &inst("virtual_ips = []"),
        "6:15",
        "needs at least one address",
    );
    let t = inst(
        "virtual_ips = [\"192.0.2.10/33\", \"224.0.0.5\", \"0.0.0.0\", \"192.0.2.1\", \"192.0.2.1/24\", 7]",
    );
    assert_problem(
        &t,
        "6:16",
        "prefix length in `192.0.2.10/33` must be 0..=32",
    );
    assert_problem(&t, "6:33", "is a multicast address");
    assert_problem(&t, "6:46", "is the unspecified address");
    assert_problem(&t, "6:70", "is listed twice");
    assert_problem(&t, "6:86", "entries must be strings, found integer");
}

#[test]
fn peers_same_family_and_valid() {
    let t = inst(
        "virtual_ips = [\"192.0.2.10\"]\nunicast_peers = [\"2001:db8::2\", \"198.51.100.300\", \"192.0.2.2\", \"192.0.2.2\"]",
    );
    assert_problem(
        &t,
        "7:18",
        "unicast peer `2001:db8::2` is IPv6 but the virtual IPs are IPv4",
    );
    assert_problem(&t, "7:33", "not an IP address");
    assert_problem(&t, "7:64", "listed twice");
}

#[test]
fn names_unique() {
    let t = format!(
        "{}{}",
        inst("virtual_ips = [\"192.0.2.10\"]"),
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth1\"\nvrid = 52\npriority = 100\nvirtual_ips = [\"192.0.2.11\"]\n"
    );
    assert_problem(
        &t,
        "8:8",
        "duplicate instance name `VI_1` (first used on line 2)",
    );
}

#[test]
fn interface_vrid_family_unique() {
    let second = |name: &str, iface: &str, vip: &str| {
        format!(
            "[[instance]]\nname = \"{name}\"\ninterface = \"{iface}\"\nvrid = 51\npriority = 100\nvirtual_ips = [\"{vip}\"]\n"
        )
    };
    let first = inst("virtual_ips = [\"192.0.2.10\"]");
    let t = format!("{first}{}", second("B", "eth0", "192.0.2.11"));
    assert_problem(
        &t,
        "10:8",
        "vrid 51 is already used for IPv4 on interface `eth0` (line 4)",
    );
    // Same vrid on another interface, or for the other family, is fine.
    valid(&format!("{first}{}", second("B", "eth1", "192.0.2.11")));
    valid(&format!("{first}{}", second("B", "eth0", "fe80::1")));
}

#[test]
fn global_values() {
    let t = format!(
        "[global]\nxdp = \"fast\"\nmetrics_listen = \"localhost\"\nrouter_id = \"\"\nnotify_timeout = \"0s\"\n{}",
        inst(
            "virtual_ips = [\"192.0.2.10\"]\nv3_checksum = \"crc\"\ngarp_repeat = 0\ngarp_interval = \"2s\""
        )
    );
    assert_problem(&t, "2:7", "`xdp`");
    assert_problem(
        &t,
        "3:18",
        "`metrics_listen`: `localhost` is not an address:port",
    );
    assert_problem(&t, "4:13", "`router_id` must not be empty");
    assert_problem(&t, "5:18", "`notify_timeout` must be greater than 0");
    assert_problem(
        &t,
        "12:15",
        "`v3_checksum` must be \"rfc5798\" or \"rfc9568\"",
    );
    assert_problem(&t, "13:15", "`garp_repeat` must be 1..=100, found 0");
    assert_problem(&t, "14:17", "`garp_interval` must be at most 1s");
}

#[test]
fn interface_names() {
    let t = "[[instance]]\nname = \"a\"\ninterface = \"a-very-long-interface-name\"\nvrid = 1\npriority = 1\nvirtual_ips = [\"192.0.2.1\"]\n";
    assert_problem(t, "3:13", "longer than 15 bytes");
    let t = "[[instance]]\nname = \"a\"\ninterface = \"eth 0\"\nvrid = 1\npriority = 1\nvirtual_ips = [\"192.0.2.1\"]\n";
    assert_problem(t, "3:13", "not a valid interface name");
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let t = "[global]\nxdp = \"x\"\nfoo = 1\n\n[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 0\npriority = 0\nversion = 2\nadvert_interval = \"1.5s\"\nvirtual_ips = [\"2001:db8::1\"]\nbar = true\n";
    let p = problems(t);
    // xdp, foo, vrid, priority, interval, IPv6 needs v3, bar (a global
    // first IPv6 VIP is only a warning).
    assert_eq!(p.len(), 7, "{p:#?}");
    let lines: Vec<usize> = p
        .iter()
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn error_display_and_load() {
    let dir = std::env::temp_dir().join(format!("vrrp-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[global]\nxdp = 1\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    let shown = err.to_string();
    let _ = std::fs::remove_dir_all(&dir);
    let want = format!(
        "{}:2:7: `xdp` must be a string, found integer",
        path.display()
    );
    assert!(shown.lines().any(|l| l == want), "{shown}");
    assert!(matches!(err, ConfigError::Invalid { .. }));
    let missing = Config::load(&dir.join("nope.toml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }));
}

/// RFC 9568 §5.2.9 / erratum 8300: an IPv6 advert starts with a link-local
/// address; a config that cannot produce one is warned about.
#[test]
fn ipv6_without_link_local_first_is_a_warning() {
    // keepalived compares the whole address list, so matching a peer that
    // lists only global VIPs needs the same list: allowed, with a warning.
    let t = inst("virtual_ips = [\"2001:db8::10/64\"]");
    let (_, lines) = Config::parse_with_warnings(&t, "t.toml").expect("valid");
    assert!(
        lines.iter().any(|l| l.starts_with(
            "t.toml:6:16: warning: the first IPv6 virtual IP `2001:db8::10` is not link-local"
        )),
        "{lines:?}"
    );
    let t = inst("virtual_ips = [\"fe80::51/64\", \"2001:db8::10/64\"]");
    let (_, w) = Config::parse_with_warnings(&t, "t.toml").expect("valid");
    assert!(w.is_empty(), "{w:?}");
    let (_, w) = Config::parse_with_warnings(&inst("virtual_ips = [\"192.0.2.1\"]"), "t.toml")
        .expect("valid");
    assert!(w.is_empty(), "{w:?}");
}

/// `global.advert_dscp`: CS6 (48) unless set, 0..=63 accepted, beyond
/// rejected at its position.
#[test]
fn advert_dscp() {
    let vips = "virtual_ips = [\"192.0.2.10\"]";
    assert_eq!(valid(&inst(vips)).global.advert_dscp, 48);
    for n in [0, 46, 63] {
        let c = valid(&format!("[global]\nadvert_dscp = {n}\n{}", inst(vips)));
        assert_eq!(c.global.advert_dscp, n);
    }
    let t = format!("[global]\nadvert_dscp = 64\n{}", inst(vips));
    assert_problem(&t, "2:15", "`advert_dscp` must be 0..=63, found 64");
    let t = format!("[global]\nadvert_dscp = \"cs6\"\n{}", inst(vips));
    assert_problem(&t, "2:15", "`advert_dscp`");
}

/// Issue 9 defect 5: an advert carries at most 255 addresses and must fit a
/// 1500-byte packet (IPv6: 40 + 8 + 16n bytes, so 90 addresses); `check`
/// rejects what `run` could not advertise, at the first address too many.
#[test]
fn more_vips_than_one_advert_carries_are_rejected() {
    let list = |n: usize, first: &str, addr: &dyn Fn(usize) -> String| {
        let mut v = vec![format!("\"{first}\"")];
        v.extend((1..n).map(|i| format!("\"{}\"", addr(i))));
        format!("virtual_ips = [{}]", v.join(", "))
    };
    let v4 = |i: usize| format!("198.51.{}.{}", i / 256, i % 256);
    let v6 = |i: usize| format!("2001:db8::{i:x}");
    valid(&inst(&list(255, "192.0.2.1", &v4)));
    valid(&inst(&list(90, "fe80::1", &v6)));
    for (text, count, max) in [
        (inst(&list(300, "192.0.2.1", &v4)), 300, 255),
        (inst(&list(91, "fe80::1", &v6)), 91, 90),
    ] {
        let line = text.lines().nth(5).unwrap();
        // Column of the first address beyond the limit.
        let nth_quote = line.match_indices('"').nth(2 * max).unwrap().0;
        let pos = format!("6:{}", nth_quote + 1);
        assert_problem(&text, &pos, &format!("{count} virtual IPs in one instance"));
        assert_problem(&text, &pos, &format!("advert carries at most {max}"));
        assert_problem(&text, &pos, "split them over several instances");
    }
}

/// Issue 9 defect 8: a file that is not UTF-8 is reported at the line and
/// column of its first invalid byte, like every other problem.
#[test]
fn not_utf8_has_a_position() {
    let dir = std::env::temp_dir().join(format!("vrrp-config-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.toml");
    // "lé" in Latin-1: 0xe9 is not UTF-8.
    std::fs::write(&path, b"[global]\nrouter_id = \"l\xe9\"\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    let lines = err.lines();
    let want = format!(
        "{}:2:15: the config is not valid UTF-8 (byte 0xe9)",
        path.display()
    );
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert!(lines.len() == 1 && lines[0].starts_with(&want), "{lines:?}");
}

/// `auth_pass`: VRRPv2 simple password (RFC 2338 §5.3.6, keepalived's
/// `auth_type PASS`), zero-padded to 8 bytes; longer is truncated with a
/// warning as keepalived does; VRRPv3 has none.
#[test]
fn auth_pass_v2_only_padded_and_truncated() {
    let c = valid(&inst(
        "version = 2\nvirtual_ips = [\"192.0.2.10\"]\nauth_pass = \"secret\"",
    ));
    assert_eq!(c.instances[0].auth_pass, Some(*b"secret\0\0"));
    let t = inst("version = 2\nvirtual_ips = [\"192.0.2.10\"]\nauth_pass = \"longpass1234\"");
    let (c, w) = Config::parse_with_warnings(&t, "t.toml").expect("valid");
    assert_eq!(c.instances[0].auth_pass, Some(*b"longpass"));
    assert!(
        w.iter()
            .any(|l| l.starts_with("t.toml:8:13: warning:") && l.contains("first 8")),
        "{w:#?}"
    );
    assert_eq!(
        valid(&inst("virtual_ips = [\"192.0.2.10\"]")).instances[0].auth_pass,
        None
    );
    assert_problem(
        &inst("virtual_ips = [\"192.0.2.10\"]\nauth_pass = \"secret\""),
        "7:13",
        "needs `version = 2`",
    );
    assert_problem(
        &inst("version = 2\nvirtual_ips = [\"192.0.2.10\"]\nauth_pass = \"\""),
        "8:13",
        "auth_pass",
    );
}

/// `unicast_src` (keepalived's `unicast_src_ip`): an address, of the VIPs'
/// family, not one of the VIPs.
#[test]
fn unicast_src_rules() {
    let c = valid(&inst(
        "virtual_ips = [\"192.0.2.10\"]\nunicast_src = \"192.0.2.5\"",
    ));
    assert_eq!(
        c.instances[0].unicast_src,
        Some("192.0.2.5".parse().unwrap())
    );
    assert_eq!(
        valid(&inst("virtual_ips = [\"192.0.2.10\"]")).instances[0].unicast_src,
        None
    );
    assert_problem(
        &inst("virtual_ips = [\"192.0.2.10\"]\nunicast_src = \"2001:db8::5\""),
        "7:15",
        "is IPv6 but the virtual IPs are IPv4",
    );
    assert_problem(
        &inst("virtual_ips = [\"192.0.2.10\"]\nunicast_src = \"192.0.2.10\""),
        "7:15",
        "is one of the virtual IPs",
    );
    assert_problem(
        &inst("virtual_ips = [\"192.0.2.10\"]\nunicast_src = \"224.0.0.18\""),
        "7:15",
        "multicast",
    );
    assert_problem(
        &inst("virtual_ips = [\"192.0.2.10\"]\nunicast_src = \"nope\""),
        "7:15",
        "not an IP address",
    );
}

// ---- Health checks, tracking, notify commands, sync groups (SPEC wave 2) ----

const VIP: &str = "virtual_ips = [\"192.0.2.10/24\"]";

#[test]
fn checks_tracks_notify_and_groups_parse() {
    use vrrp_agent::checks::{CheckKind, InitialState, ProcessTarget, TrackTarget};
    let c = valid(&format!(
        r#"
[[check]]
name = "alive"
kind = "process"
process = "redis-server"

[[check]]
name = "ping"
kind = "exec"
command = ["redis-cli", "-p", "6379", "ping"]
interval = "1s"
timeout = "500ms"
rise = 2
fall = 3
user = "redis"
init_fail = true

[[check]]
name = "port"
kind = "tcp"
address = "127.0.0.1:6379"
interval = "100ms"

[[check]]
name = "weight"
kind = "file"
path = "/etc/vrrp-agent/weight"

[[check]]
name = "pid"
kind = "process"
pidfile = "/run/redis.pid"

{}
track = [
  {{ check = "alive" }},
  {{ check = "ping", weight = -60 }},
  {{ interface = "eth1", weight = 10, reverse = true }},
]
notify = "/etc/n.sh 'a b'"
notify_master = "/etc/vrrp-agent/redis-master.sh 192.0.2.2 6379"
notify_backup = "/etc/b.sh"
notify_fault = "/etc/f.sh"
notify_stop = "/etc/s.sh"

{}
[[sync_group]]
name = "G1"
instances = ["VI_1", "VI_2"]
notify = "/etc/g.sh"
notify_master = "/etc/gm.sh x"
"#,
        inst(VIP),
        inst(VIP)
            .replace("VI_1", "VI_2")
            .replace("vrid = 51", "vrid = 52")
    ));
    assert_eq!(c.checks.len(), 5);
    assert_eq!(
        c.checks[0].kind,
        CheckKind::Process(ProcessTarget::Name("redis-server".into()))
    );
    let ping = &c.checks[1];
    assert_eq!(
        (ping.rise, ping.fall, ping.timeout, ping.initial),
        (2, 3, Duration::from_millis(500), InitialState::Down)
    );
    assert_eq!(
        c.checks[2].timeout,
        Duration::from_millis(100),
        "timeout defaults to interval"
    );
    let i = &c.instances[0];
    assert_eq!(i.track.len(), 3);
    assert_eq!(i.track[1].weight, -60);
    assert_eq!(i.track[2].target, TrackTarget::Interface("eth1".into()));
    assert!(i.track[2].reverse);
    let master = i.notify.master.as_ref().unwrap();
    assert_eq!(
        master.argv,
        ["/etc/vrrp-agent/redis-master.sh", "192.0.2.2", "6379"]
    );
    assert_eq!(i.notify.any.as_ref().unwrap().argv, ["/etc/n.sh", "a b"]);
    // The state's own command as written, then the generic one with
    // keepalived's arguments.
    let cmds = i.notify.commands("INSTANCE", "VI_1", "MASTER", 100);
    assert_eq!(
        cmds,
        [
            vec!["/etc/vrrp-agent/redis-master.sh", "192.0.2.2", "6379"],
            vec!["/etc/n.sh", "a b", "INSTANCE", "VI_1", "MASTER", "100"]
        ]
    );
    assert_eq!(c.sync_groups[0].instances, ["VI_1", "VI_2"]);
    assert_eq!(c.sync_group_of("VI_2").map(|g| g.name.as_str()), Some("G1"));
    assert_eq!(
        c.sync_groups[0].notify.commands("GROUP", "G1", "FAULT", 0),
        [vec!["/etc/g.sh", "GROUP", "G1", "FAULT", "0"]]
    );
}

#[test]
fn check_errors_are_at_their_keys() {
    let t = format!(
        "[[check]]\nname = \"a\"\nkind = \"exec\"\ncommand = []\ninterval = \"5ms\"\n\
         [[check]]\nname = \"b\"\nkind = \"tcp\"\naddress = \"localhost\"\n\
         [[check]]\nname = \"a\"\nkind = \"file\"\npath = \"rel\"\nrise = 2\n\
         [[check]]\nname = \"c\"\nkind = \"process\"\nprocess = \"x\"\npidfile = \"/p\"\n\
         [[check]]\nname = \"d\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ncommand = [\"x\"]\n\
         [[check]]\nname = \"e\"\nkind = \"ping\"\n\
         {}",
        inst(VIP)
    );
    assert_problem(&t, "4:11", "`command`: command is empty");
    assert_problem(&t, "5:12", "`interval`");
    assert_problem(&t, "9:11", "not an address:port");
    assert_problem(
        &t,
        "11:8",
        "duplicate check name `a` (first used on line 2)",
    );
    assert_problem(&t, "13:8", "`path`");
    assert_problem(&t, "14:8", "`rise`");
    assert_problem(&t, "19:11", "`process` and `pidfile` exclude each other");
    assert_problem(&t, "24:1", "unknown key `command` in a tcp [[check]]");
    assert_problem(&t, "27:8", "`kind` must be");
}

#[test]
fn track_errors_are_at_their_keys() {
    let t = format!(
        "[[check]]\nname = \"a\"\nkind = \"file\"\npath = \"/w\"\n{}",
        inst(&format!(
            "{VIP}\ntrack = [\n  {{ check = \"nope\" }},\n  {{ check = \"a\", weight = 300 }},\n  \
             {{ interface = \"eth1\", check = \"a\" }},\n  {{ weight = 1 }},\n  \
             {{ check = \"a\", wieght = 1 }},\n  \"a\",\n]"
        ))
    );
    assert_problem(&t, "12:13", "`check`: no [[check]] named \"nope\"");
    assert_problem(&t, "13:27", "`weight` must be -254..=254, found 300");
    assert_problem(&t, "14:3", "not both");
    assert_problem(&t, "15:3", "needs `check` or `interface`");
    assert_problem(
        &t,
        "16:18",
        "unknown key `wieght` in a `track` entry, did you mean `weight`?",
    );
    assert_problem(&t, "17:3", "must be a table");
}

#[test]
fn track_weights_follow_keepalived_ranges_and_warn() {
    // 254 only for file checks; owner and group weights are accepted with a warning.
    let t = format!(
        "[[check]]\nname = \"x\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n{}",
        inst(&format!(
            "{VIP}\ntrack = [{{ check = \"x\", weight = 254 }}]"
        ))
    );
    assert_problem(&t, "11:34", "weight 254 is outside -253..=253");
    let owner = format!(
        "[[check]]\nname = \"x\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n{}",
        inst(&format!(
            "{VIP}\ntrack = [{{ check = \"x\", weight = 10 }}]"
        ))
        .replace("priority = 100", "priority = 255")
    );
    let (_, warnings) = Config::parse_with_warnings(&owner, "t.toml").unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("t.toml:11:34: warning: weight 10 is ignored"),
        "{warnings:?}"
    );
}

#[test]
fn notify_lines_are_split_with_keepalived_quoting() {
    let t = inst(&format!(
        "{VIP}\nnotify = \"/x.sh 'unclosed\"\nnotify_master = \"\""
    ));
    assert_problem(&t, "7:10", "`notify`: missing closing ' in command line");
    assert_problem(&t, "8:17", "`notify_master` must not be empty");
}

#[test]
fn sync_group_rules() {
    let two = format!(
        "{}{}",
        inst(VIP),
        inst(VIP)
            .replace("VI_1", "VI_2")
            .replace("vrid = 51", "vrid = 52")
    );
    let t = format!(
        "{two}[[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\", \"VI_9\"]\n\
         [[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\"]\nnotfy = \"/x\"\n\
         [[sync_group]]\nname = \"H\"\ninstances = []\n"
    );
    assert_problem(&t, "15:22", "no [[instance]] named `VI_9`");
    assert_problem(
        &t,
        "17:8",
        "duplicate sync group name `G` (first used on line 14)",
    );
    assert_problem(
        &t,
        "18:14",
        "instance `VI_1` is already in a sync group (line 15)",
    );
    assert_problem(
        &t,
        "19:1",
        "unknown key `notfy` in [[sync_group]], did you mean `notify`?",
    );
    assert_problem(&t, "22:13", "`instances` needs at least one instance name");
}
