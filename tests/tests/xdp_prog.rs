//! The XDP program under BPF_PROG_TEST_RUN: every verdict, every drop
//! reason, the counters, LAST_SEEN, event suppression and the ring buffer.
//!
//! Needs root (CAP_BPF + CAP_NET_ADMIN). Run with
//! `cargo test -p tests --test xdp_prog -- --test-threads=1`.
//! Every test loads its own copy of the object, so maps start empty.
//!
//! BPF_PROG_TEST_RUN presents frames as received on the loopback device of
//! the caller's network namespace, so the VRID keys use lo's ifindex.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::{
    Ebpf,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use tests::{
    frames::{
        self, Advert, Checksum, Envelope, TPID_8021AD, TPID_8021Q, arp_frame, ethernet, ns_frame,
        udp_frame,
    },
    xdp,
};
use vrrp_common::{
    AdvertEvent, ChecksumForm, DROP_REASONS, DropPeer, DropReason, FAMILY_V4, FAMILY_V6,
    INTERARRIVAL_HIST_LEN, LastSeen, PeerKey, STATS_LEN, SeenAdvert, Stat, V2_AUTH_PASS,
    VIP_F_COLLISION, VRID_F_DELIVER_ALL, VRID_F_PEER_FILTER, VipEntry, VipStats, VridConfig,
    VridEntry, VridKey, VridStats, drop_peer_index, event_reason, interarrival_bucket, maps,
    v2_auth_words, vip_index_v4, vip_index_v6, vrid_table_index,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const LL6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100);
const HOST4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);

struct Harness {
    ebpf: Ebpf,
    ifindex: u32,
    /// `LAST_SEEN` slot of each configured VRID, as the agent assigns them.
    slots: std::collections::HashMap<VridKey, u16>,
}

impl Harness {
    /// None (the test then skips) when the objects were not built.
    fn new() -> Option<Self> {
        if !xdp::objects_available() {
            eprintln!("skipping: XDP objects not built (AYA_BUILD_SKIP)");
            return None;
        }
        let ebpf = match xdp::load(xdp::VRRP_OBJECT, vrrp_common::XDP_PROGRAM) {
            Ok(e) => e,
            Err(e) => panic!("loading the XDP program failed (verifier?): {e:#}"),
        };
        let ifindex = nix::net::if_::if_nametoindex("lo").expect("lo exists");
        Some(Self {
            ebpf,
            ifindex,
            slots: Default::default(),
        })
    }

    fn run(&mut self, frame: &[u8]) -> xdp::Run {
        xdp::run(&mut self.ebpf, vrrp_common::XDP_PROGRAM, frame, 1).expect("BPF_PROG_TEST_RUN")
    }

    fn key(&self, vrid: u8, family: u8) -> VridKey {
        VridKey::new(self.ifindex, vrid, family)
    }

    /// Configures a VRID as the agent does (`VRIDS`, `VRID_TABLE`, its
    /// `LAST_SEEN` slot).
    fn configure(&mut self, vrid: u8, family: u8, cfg: VridConfig) {
        self.configure_with(vrid, family, cfg, true);
    }

    /// [`Harness::configure`]; `table`: also the `VRID_TABLE` entry.
    fn configure_with(&mut self, vrid: u8, family: u8, mut cfg: VridConfig, table: bool) {
        let key = self.key(vrid, family);
        let next = u16::try_from(self.slots.len()).unwrap();
        cfg.slot = *self.slots.entry(key).or_insert(next);
        xdp::configure_vrid(&mut self.ebpf, key, cfg, table).unwrap();
    }

    fn configure_v2(&mut self, vrid: u8) {
        self.configure(
            vrid,
            FAMILY_V4,
            VridConfig {
                version: 2,
                v2_adver_int: 1,
                ..Default::default()
            },
        );
    }

    fn configure_v3(&mut self, vrid: u8, family: u8) {
        self.configure(
            vrid,
            family,
            VridConfig {
                version: 3,
                ..Default::default()
            },
        );
    }

    fn vip_entry(&self, index: u32) -> VipEntry {
        let t: Array<_, VipEntry> =
            Array::try_from(self.ebpf.map(maps::VIP_TABLE).unwrap()).unwrap();
        t.get(&index, 0).unwrap()
    }

    /// Fills `VIP_TABLE` as the agent does: the VIP where it is alone at its
    /// index, the collision marker where another VIP is there already.
    fn set_vip_entry(&mut self, index: u32, new: VipEntry) {
        let old = self.vip_entry(index);
        let entry = if old.family == 0 || old == new {
            new
        } else {
            VipEntry {
                flags: VIP_F_COLLISION,
                ..VipEntry::default()
            }
        };
        let mut t: Array<_, VipEntry> =
            Array::try_from(self.ebpf.map_mut(maps::VIP_TABLE).unwrap()).unwrap();
        t.set(index, entry, 0).unwrap();
    }

    fn add_vip4(&mut self, vip: Ipv4Addr, slot: u32) {
        let k = u32::from_ne_bytes(vip.octets());
        let mut m: HashMap<_, u32, u32> =
            HashMap::try_from(self.ebpf.map_mut(maps::VIPS_V4).unwrap()).unwrap();
        m.insert(k, slot, 0).unwrap();
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&vip.octets());
        self.set_vip_entry(
            vip_index_v4(vip.octets()),
            VipEntry {
                addr,
                slot,
                family: FAMILY_V4,
                ..VipEntry::default()
            },
        );
    }

    fn add_vip6(&mut self, vip: Ipv6Addr, slot: u32) {
        let o = vip.octets();
        let mut m: HashMap<_, [u8; 16], u32> =
            HashMap::try_from(self.ebpf.map_mut(maps::VIPS_V6).unwrap()).unwrap();
        m.insert(o, slot, 0).unwrap();
        self.set_vip_entry(
            vip_index_v6(o),
            VipEntry {
                addr: o,
                slot,
                family: FAMILY_V6,
                ..VipEntry::default()
            },
        );
    }

    fn add_peer(&mut self, family: u8, addr: IpAddr) {
        let mut a = [0u8; 16];
        match addr {
            IpAddr::V4(v) => a[..4].copy_from_slice(&v.octets()),
            IpAddr::V6(v) => a.copy_from_slice(&v.octets()),
        }
        let k = PeerKey {
            ifindex: self.ifindex,
            family,
            _pad: [0; 3],
            addr: a,
        };
        let mut m: HashMap<_, PeerKey, u8> =
            HashMap::try_from(self.ebpf.map_mut(maps::PEERS).unwrap()).unwrap();
        m.insert(k, 1, 0).unwrap();
    }

    fn percpu_sum(&self, map: &str, idx: u32) -> u64 {
        let a: PerCpuArray<_, u64> = PerCpuArray::try_from(self.ebpf.map(map).unwrap()).unwrap();
        a.get(&idx, 0).unwrap().iter().sum()
    }

    fn stat(&self, s: Stat) -> u64 {
        self.percpu_sum(maps::STATS, s as u32)
    }

    fn stats(&self) -> Vec<u64> {
        (0..STATS_LEN)
            .map(|i| self.percpu_sum(maps::STATS, i))
            .collect()
    }

    fn drops(&self) -> [u64; DROP_REASONS] {
        let mut d = [0; DROP_REASONS];
        for (i, v) in d.iter_mut().enumerate() {
            *v = self.percpu_sum(maps::DROPS, i as u32);
        }
        d
    }

    fn vrid_stats(&self, key: VridKey) -> Option<VridStats> {
        let m: PerCpuHashMap<_, VridKey, VridStats> =
            PerCpuHashMap::try_from(self.ebpf.map(maps::VRID_STATS).unwrap()).unwrap();
        let per_cpu = m.get(&key, 0).ok()?;
        let mut sum = VridStats::default();
        for s in per_cpu.iter() {
            sum.valid += s.valid;
            sum.foreign += s.foreign;
            sum.first_not_link_local += s.first_not_link_local;
            for i in 0..DROP_REASONS {
                sum.drops[i] += s.drops[i];
            }
        }
        Some(sum)
    }

    /// The `DROP_PEERS` entry of a configured VRID for `reason`.
    fn drop_peer(&self, key: VridKey, reason: DropReason) -> DropPeer {
        let slot = self.slots[&key];
        let m: Array<_, DropPeer> =
            Array::try_from(self.ebpf.map(maps::DROP_PEERS).unwrap()).unwrap();
        m.get(&drop_peer_index(slot, reason), 0).unwrap()
    }

    /// The `LAST_SEEN` entry of a configured VRID, `None` while empty.
    fn last_seen(&self, key: VridKey) -> Option<LastSeen> {
        let slot = *self.slots.get(&key)?;
        let m: Array<_, LastSeen> =
            Array::try_from(self.ebpf.map(maps::LAST_SEEN).unwrap()).unwrap();
        let ls = m.get(&u32::from(slot), 0).unwrap();
        (ls.rx_total != 0).then_some(ls)
    }

    fn last_seen_count(&self) -> usize {
        let m: Array<_, LastSeen> =
            Array::try_from(self.ebpf.map(maps::LAST_SEEN).unwrap()).unwrap();
        m.iter()
            .filter(|l| l.as_ref().unwrap().rx_total != 0)
            .count()
    }

    fn vip_stats(&self, slot: u32) -> VipStats {
        let a: PerCpuArray<_, VipStats> =
            PerCpuArray::try_from(self.ebpf.map(maps::VIP_STATS).unwrap()).unwrap();
        let mut sum = VipStats::default();
        for s in a.get(&slot, 0).unwrap().iter() {
            sum.rx_packets += s.rx_packets;
            sum.rx_bytes += s.rx_bytes;
            sum.resolutions += s.resolutions;
        }
        sum
    }

    /// Drains the ring buffer.
    fn events(&mut self) -> Vec<AdvertEvent> {
        let mut rb = RingBuf::try_from(self.ebpf.map_mut(maps::EVENTS).unwrap()).unwrap();
        let mut out = Vec::new();
        while let Some(item) = rb.next() {
            assert_eq!(item.len(), size_of::<AdvertEvent>(), "event record size");
            // SAFETY: the record has exactly the size of AdvertEvent, a
            // #[repr(C)] plain-data type valid for any bit pattern.
            out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<AdvertEvent>()) });
        }
        out
    }

    /// Runs an advert that must be dropped for `reason` and checks that
    /// exactly that counter moved (globally and for the VRID).
    fn expect_drop(&mut self, frame: &[u8], reason: DropReason, key: Option<VridKey>) {
        let before = self.drops();
        let r = self.run(frame);
        assert_eq!(r.action, XDP_DROP, "expected a {} drop", reason.label());
        let after = self.drops();
        for i in 0..DROP_REASONS {
            let want = before[i] + u64::from(i == reason as usize);
            assert_eq!(
                after[i],
                want,
                "DROPS[{}] after a {} drop",
                DropReason::ALL[i].label(),
                reason.label()
            );
        }
        if let Some(key) = key {
            let s = self.vrid_stats(key).expect("VRID_STATS entry");
            assert_eq!(
                s.drops[reason as usize],
                1,
                "VRID_STATS drops[{}]",
                reason.label()
            );
        }
        assert_eq!(self.stat(Stat::AdvertsValid), 0);
        assert_eq!(
            self.last_seen_count(),
            0,
            "a dropped advert must not refresh LAST_SEEN"
        );
        assert!(self.events().is_empty());
    }
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn v6(a: Ipv6Addr) -> IpAddr {
    IpAddr::V6(a)
}

fn first_event(h: &mut Harness) -> AdvertEvent {
    let ev = h.events();
    assert_eq!(ev.len(), 1, "exactly one event: {ev:?}");
    ev[0]
}

// ---------------------------------------------------------------------------
// Valid adverts

#[test]
fn valid_v2_is_passed_stamped_and_announced() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let env = Envelope::v4(7);
    let frame = env.frame(&Advert::v2(7, 120, &[VIP4, Ipv4Addr::new(192, 0, 2, 101)]));
    let r = h.run(&frame);
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(r.data_out, frame, "adverts are passed unmodified");

    let key = h.key(7, FAMILY_V4);
    let ls = h.last_seen(key).expect("LAST_SEEN entry");
    assert_eq!(ls.rx_total, 1);
    assert!(ls.ts_ns > 0);
    assert_eq!(&ls.src_ip[..4], &[192, 0, 2, 1]);
    assert_eq!(&ls.src_ip[4..], &[0; 12]);
    assert_eq!(ls.src_mac, frames::vmac(false, 7));
    assert_eq!(
        (ls.priority, ls.version, ls.interval, ls.count),
        (120, 2, 1, 2)
    );
    assert_eq!(ls.checksum_form, ChecksumForm::MessageOnly as u8);

    assert_eq!(h.stat(Stat::VrrpSeen), 1);
    assert_eq!(h.stat(Stat::AdvertsValid), 1);
    assert_eq!(h.stat(Stat::EventsSent), 1);
    assert_eq!(h.stat(Stat::AdvertsDropped), 0);
    // Valid adverts are counted in LAST_SEEN.rx_total only: no VRID_STATS
    // lookup on the valid path.
    assert_eq!(ls.rx_total, 1);
    assert_eq!(h.vrid_stats(key), None);

    let ev = first_event(&mut h);
    assert_eq!(ev.ts_ns, ls.ts_ns);
    assert_eq!(ev.ifindex, h.ifindex);
    assert_eq!(
        (ev.family, ev.version, ev.vrid, ev.priority, ev.count),
        (FAMILY_V4, 2, 7, 120, 2)
    );
    assert_eq!(ev.checksum_form, ChecksumForm::MessageOnly as u8);
    assert_eq!(ev.reason, event_reason::FIRST);
    assert_eq!(ev.interval, 1);
    assert_eq!(ev.src_mac, frames::vmac(false, 7));
    assert_eq!(&ev.src_ip[..4], &[192, 0, 2, 1]);
    assert_eq!(ev.addrs_copied, 2);
    assert_eq!(&ev.addrs[..8], &[192, 0, 2, 100, 192, 0, 2, 101]);
    assert!(ev.addrs[8..].iter().all(|b| *b == 0));
}

#[test]
fn valid_v3_ipv4_both_checksum_forms() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    let key = h.key(9, FAMILY_V4);
    let env = Envelope::v4(9);
    let mut adv = Advert::v3(9, 100, &[v4(VIP4)]);

    adv.checksum = Checksum::PseudoHeader;
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    let ls = h.last_seen(key).expect("LAST_SEEN entry");
    assert_eq!(ls.checksum_form, ChecksumForm::PseudoHeader as u8);
    assert_eq!((ls.version, ls.interval, ls.count), (3, 100, 1));
    assert_eq!(
        first_event(&mut h).checksum_form,
        ChecksumForm::PseudoHeader as u8
    );

    adv.checksum = Checksum::MessageOnly;
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    let ls = h.last_seen(key).expect("LAST_SEEN entry");
    assert_eq!(ls.checksum_form, ChecksumForm::MessageOnly as u8);
    assert_eq!(ls.rx_total, 2);
    assert_eq!(h.stat(Stat::AdvertsValid), 2);
    assert_eq!(h.drops(), [0; DROP_REASONS]);
}

#[test]
fn valid_v3_ipv6() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(3, FAMILY_V6);
    let env = Envelope::v6(3);
    let frame = env.frame(&Advert::v3(3, 200, &[v6(LL6), v6(VIP6)]));
    assert_eq!(h.run(&frame).action, XDP_PASS);
    let key = h.key(3, FAMILY_V6);
    let ls = h.last_seen(key).expect("LAST_SEEN entry");
    assert_eq!(ls.checksum_form, ChecksumForm::PseudoHeader as u8);
    assert_eq!(
        ls.src_ip,
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).octets()
    );
    assert_eq!(ls.src_mac, frames::vmac(true, 3));
    let ev = first_event(&mut h);
    assert_eq!(
        (
            ev.family,
            ev.version,
            ev.priority,
            ev.count,
            ev.addrs_copied
        ),
        (FAMILY_V6, 3, 200, 2, 2)
    );
    assert_eq!(&ev.addrs[..16], &LL6.octets());
    assert_eq!(&ev.addrs[16..32], &VIP6.octets());
}

#[test]
fn vlan_tagged_and_double_tagged() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    h.configure_v3(3, FAMILY_V6);
    let adv = Advert::v2(7, 100, &[VIP4]);
    for (i, vlans) in [
        vec![(TPID_8021Q, 10)],
        vec![(TPID_8021AD, 100), (TPID_8021Q, 10)],
        vec![(TPID_8021Q, 100), (TPID_8021Q, 10)],
    ]
    .into_iter()
    .enumerate()
    {
        let mut env = Envelope::v4(7);
        env.vlans = vlans.clone();
        assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS, "{vlans:?}");
        assert_eq!(
            h.last_seen(h.key(7, FAMILY_V4)).map(|l| l.rx_total),
            Some(i as u64 + 1)
        );
        let mut env6 = Envelope::v6(3);
        env6.vlans = vlans.clone();
        assert_eq!(
            h.run(&env6.frame(&Advert::v3(3, 100, &[v6(LL6)]))).action,
            XDP_PASS
        );
        assert_eq!(
            h.last_seen(h.key(3, FAMILY_V6)).map(|l| l.rx_total),
            Some(i as u64 + 1)
        );
    }
    // A broken advert behind two tags is still seen and dropped.
    let mut env = Envelope::v4(7);
    env.vlans = vec![(TPID_8021AD, 100), (TPID_8021Q, 10)];
    env.ttl = 64;
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_DROP);
    assert_eq!(h.drops()[DropReason::Ttl as usize], 1);
    // Three tags: not parsed, passed uncounted.
    env.vlans = vec![(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3)];
    let before = h.stat(Stat::VrrpSeen);
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    assert_eq!(h.stat(Stat::VrrpSeen), before);
}

#[test]
fn ipv4_with_options() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    h.configure_v3(9, FAMILY_V4);
    let mut env = Envelope::v4(7);
    // Router Alert (RFC 2113) + padding, then the longest header (40 bytes of options).
    for (i, opts) in [vec![0x94, 0x04, 0, 0], vec![1; 40]]
        .into_iter()
        .enumerate()
    {
        env.ip_options = opts;
        assert_eq!(
            h.run(&env.frame(&Advert::v2(7, 100, &[VIP4]))).action,
            XDP_PASS
        );
        assert_eq!(
            h.last_seen(h.key(7, FAMILY_V4)).map(|l| l.rx_total),
            Some(i as u64 + 1)
        );
        // The RFC 5798 pseudo-header form uses the IP payload length, which
        // must exclude the options.
        let mut env9 = Envelope::v4(9);
        env9.ip_options = env.ip_options.clone();
        assert_eq!(
            h.run(&env9.frame(&Advert::v3(9, 100, &[v4(VIP4)]))).action,
            XDP_PASS
        );
        assert_eq!(
            h.last_seen(h.key(9, FAMILY_V4)).map(|l| l.checksum_form),
            Some(ChecksumForm::PseudoHeader as u8)
        );
    }
    assert_eq!(h.drops(), [0; DROP_REASONS]);
}

#[test]
fn ethernet_padding_is_not_part_of_the_advert() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let mut env = Envelope::v4(7);
    env.padding = 6; // 54-byte frame padded to the 60-byte minimum
    let frame = env.frame(&Advert::v2(7, 100, &[VIP4]));
    assert_eq!(frame.len(), 60);
    assert_eq!(h.run(&frame).action, XDP_PASS);
    assert_eq!(h.stat(Stat::AdvertsValid), 1);
}

#[test]
fn many_addresses_are_validated_and_the_copy_truncated() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    h.configure_v3(3, FAMILY_V6);
    // 255 IPv4 addresses: a 1036-byte v2 message.
    let addrs: Vec<Ipv4Addr> = (0..255u8).map(|i| Ipv4Addr::new(198, 51, 100, i)).collect();
    assert_eq!(
        h.run(&Envelope::v4(7).frame(&Advert::v2(7, 100, &addrs)))
            .action,
        XDP_PASS
    );
    let ev = first_event(&mut h);
    assert_eq!((ev.count, ev.addrs_copied), (255, 16));
    let want: Vec<u8> = addrs[..16].iter().flat_map(|a| a.octets()).collect();
    assert_eq!(&ev.addrs[..], &want[..]);
    // 90 IPv6 addresses: the longest IPv6 advert a 1500-byte MTU carries.
    let mut a6: Vec<IpAddr> = vec![v6(LL6)];
    a6.extend((1..90u16).map(|i| v6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i))));
    assert_eq!(
        h.run(&Envelope::v6(3).frame(&Advert::v3(3, 100, &a6)))
            .action,
        XDP_PASS
    );
    let ev = first_event(&mut h);
    assert_eq!((ev.count, ev.addrs_copied), (90, 4));
    assert_eq!(
        &ev.addrs[16..32],
        &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, 1).octets()
    );
    assert_eq!(h.drops(), [0; DROP_REASONS]);
}

// ---------------------------------------------------------------------------
// Invalid adverts: one test per drop reason

#[test]
fn drop_ttl() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let mut env = Envelope::v4(7);
    env.ttl = 254;
    h.expect_drop(
        &env.frame(&Advert::v2(7, 100, &[VIP4])),
        DropReason::Ttl,
        Some(h.key(7, FAMILY_V4)),
    );
    let mut env6 = Envelope::v6(3);
    env6.ttl = 1;
    h.configure_v3(3, FAMILY_V6);
    h.expect_drop(
        &env6.frame(&Advert::v3(3, 100, &[v6(LL6)])),
        DropReason::Ttl,
        Some(h.key(3, FAMILY_V6)),
    );
}

#[test]
fn drop_version() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let key = h.key(7, FAMILY_V4);
    let env = Envelope::v4(7);
    let mut adv = Advert::v2(7, 100, &[VIP4]);
    adv.version = 4;
    h.expect_drop(&env.frame(&adv), DropReason::Version, Some(key));
    // A valid v3 advert for a VRID configured as v2.
    let mut h = Harness::new().unwrap();
    h.configure_v2(7);
    h.expect_drop(
        &env.frame(&Advert::v3(7, 100, &[v4(VIP4)])),
        DropReason::Version,
        Some(key),
    );
    // VRRPv2 over IPv6 does not exist.
    let mut h = Harness::new().unwrap();
    h.configure_v3(3, FAMILY_V6);
    let mut adv6 = Advert::v3(3, 100, &[v6(LL6)]);
    adv6.version = 2;
    h.expect_drop(
        &Envelope::v6(3).frame(&adv6),
        DropReason::Version,
        Some(h.key(3, FAMILY_V6)),
    );
}

#[test]
fn drop_type() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    let mut adv = Advert::v3(9, 100, &[v4(VIP4)]);
    adv.kind = 2;
    h.expect_drop(
        &Envelope::v4(9).frame(&adv),
        DropReason::Type,
        Some(h.key(9, FAMILY_V4)),
    );
}

#[test]
fn drop_length() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let key = h.key(7, FAMILY_V4);
    // Count says 2, one address present.
    let mut adv = Advert::v2(7, 100, &[VIP4]);
    adv.count = Some(2);
    h.expect_drop(&Envelope::v4(7).frame(&adv), DropReason::Length, Some(key));
    // Trailing bytes beyond header + addresses + auth data.
    let mut h = Harness::new().unwrap();
    h.configure_v2(7);
    let mut adv = Advert::v2(7, 100, &[VIP4]);
    adv.trailer = vec![0; 4];
    h.expect_drop(&Envelope::v4(7).frame(&adv), DropReason::Length, Some(key));
    // IPv4 addresses in an IPv6 advert.
    let mut h = Harness::new().unwrap();
    h.configure_v3(3, FAMILY_V6);
    let adv = Advert::v3(3, 100, &[v4(VIP4)]);
    h.expect_drop(
        &Envelope::v6(3).frame(&adv),
        DropReason::Length,
        Some(h.key(3, FAMILY_V6)),
    );
}

#[test]
fn drop_checksum() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let mut adv = Advert::v2(7, 100, &[VIP4]);
    adv.checksum = Checksum::Corrupt;
    h.expect_drop(
        &Envelope::v4(7).frame(&adv),
        DropReason::Checksum,
        Some(h.key(7, FAMILY_V4)),
    );
    // v2 does not accept the pseudo-header form.
    let mut h = Harness::new().unwrap();
    h.configure_v2(7);
    adv.checksum = Checksum::PseudoHeader;
    h.expect_drop(
        &Envelope::v4(7).frame(&adv),
        DropReason::Checksum,
        Some(h.key(7, FAMILY_V4)),
    );
    // v3 IPv4 in neither form.
    let mut h = Harness::new().unwrap();
    h.configure_v3(9, FAMILY_V4);
    let mut adv = Advert::v3(9, 100, &[v4(VIP4)]);
    adv.checksum = Checksum::Corrupt;
    h.expect_drop(
        &Envelope::v4(9).frame(&adv),
        DropReason::Checksum,
        Some(h.key(9, FAMILY_V4)),
    );
    // v3 IPv6 must include the pseudo-header.
    let mut h = Harness::new().unwrap();
    h.configure_v3(3, FAMILY_V6);
    let mut adv = Advert::v3(3, 100, &[v6(LL6)]);
    adv.checksum = Checksum::MessageOnly;
    h.expect_drop(
        &Envelope::v6(3).frame(&adv),
        DropReason::Checksum,
        Some(h.key(3, FAMILY_V6)),
    );
    // A corrupt IPv4 header (checksum) is dropped before the VRID is read.
    let mut h = Harness::new().unwrap();
    h.configure_v2(7);
    let mut frame = Envelope::v4(7).frame(&Advert::v2(7, 100, &[VIP4]));
    frame[14 + 10] ^= 0x01;
    h.expect_drop(&frame, DropReason::Checksum, None);
    // A foreign advert with a bad checksum is dropped too, not counted foreign.
    let mut h = Harness::new().unwrap();
    let mut adv = Advert::v2(77, 100, &[VIP4]);
    adv.checksum = Checksum::Corrupt;
    h.expect_drop(
        &Envelope::v4(77).frame(&adv),
        DropReason::Checksum,
        Some(h.key(77, FAMILY_V4)),
    );
    assert_eq!(h.stat(Stat::AdvertsForeign), 0);
}

#[test]
fn drop_interval() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    let mut adv = Advert::v3(9, 100, &[v4(VIP4)]);
    adv.interval = 0;
    h.expect_drop(
        &Envelope::v4(9).frame(&adv),
        DropReason::Interval,
        Some(h.key(9, FAMILY_V4)),
    );
    // v2: Adver Int differs from the configured one (RFC 3768 §7.1).
    let mut h = Harness::new().unwrap();
    h.configure_v2(7);
    let mut adv = Advert::v2(7, 100, &[VIP4]);
    adv.interval = 3;
    h.expect_drop(
        &Envelope::v4(7).frame(&adv),
        DropReason::Interval,
        Some(h.key(7, FAMILY_V4)),
    );
}

#[test]
fn drop_count() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    h.expect_drop(
        &Envelope::v4(9).frame(&Advert::v3(9, 100, &[])),
        DropReason::Count,
        Some(h.key(9, FAMILY_V4)),
    );
    let mut h = Harness::new().unwrap();
    h.configure_v2(7);
    h.expect_drop(
        &Envelope::v4(7).frame(&Advert::v2(7, 100, &[])),
        DropReason::Count,
        Some(h.key(7, FAMILY_V4)),
    );
}

#[test]
fn drop_family() {
    let Some(mut h) = Harness::new() else { return };
    // VRID 9 is configured for IPv6 only; an IPv4 advert for it arrives.
    h.configure_v3(9, FAMILY_V6);
    h.expect_drop(
        &Envelope::v4(9).frame(&Advert::v3(9, 100, &[v4(VIP4)])),
        DropReason::Family,
        Some(h.key(9, FAMILY_V4)),
    );
}

/// An IPv6 advert whose first address is not link-local (keepalived with a
/// global-only `virtual_ipaddress`) is accepted and counted per VRID, not
/// dropped: a mixed pair must not split over it.
#[test]
fn ipv6_first_not_link_local_accepted_and_counted() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(3, FAMILY_V6);
    let key = h.key(3, FAMILY_V6);
    let r = h.run(&Envelope::v6(3).frame(&Advert::v3(3, 100, &[v6(VIP6), v6(LL6)])));
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(h.drops(), [0; DROP_REASONS]);
    assert_eq!(h.stat(Stat::AdvertsValid), 1);
    assert_eq!(h.last_seen(key).expect("LAST_SEEN").rx_total, 1);
    assert_eq!(
        h.vrid_stats(key).expect("VRID_STATS").first_not_link_local,
        1
    );
    // The compliant form does not touch the counter.
    let r = h.run(&Envelope::v6(3).frame(&Advert::v3(3, 100, &[v6(LL6), v6(VIP6)])));
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(h.vrid_stats(key).unwrap().first_not_link_local, 1);
    assert_eq!(h.stat(Stat::AdvertsValid), 2);
}

#[test]
fn drop_peer() {
    let Some(mut h) = Harness::new() else { return };
    h.configure(
        7,
        FAMILY_V4,
        VridConfig {
            version: 2,
            v2_adver_int: 1,
            flags: VRID_F_PEER_FILTER,
            ..Default::default()
        },
    );
    h.add_peer(FAMILY_V4, v4(Ipv4Addr::new(192, 0, 2, 2)));
    let adv = Advert::v2(7, 100, &[VIP4]);
    h.expect_drop(
        &Envelope::v4(7).frame(&adv),
        DropReason::Peer,
        Some(h.key(7, FAMILY_V4)),
    );
    // The listed peer is accepted.
    let mut env = Envelope::v4(7);
    env.src = v4(Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    assert_eq!(h.stat(Stat::AdvertsValid), 1);
}

#[test]
fn drop_auth_type() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let mut adv = Advert::v2(7, 100, &[VIP4]);
    adv.auth_type = 1;
    h.expect_drop(
        &Envelope::v4(7).frame(&adv),
        DropReason::AuthType,
        Some(h.key(7, FAMILY_V4)),
    );
}

/// RFC 2338 §5.3.6.1 / §7.1 (keepalived `auth_type PASS`): with a password
/// configured, only Auth Type 1 with the same 8 bytes is accepted; the
/// wrong password is `Auth`, the wrong type `AuthType`. The data sits after
/// a variable number of addresses (three here).
#[test]
fn v2_simple_password() {
    let Some(mut h) = Harness::new() else { return };
    let pass = *b"secret\0\0";
    h.configure(
        7,
        FAMILY_V4,
        VridConfig {
            version: 2,
            v2_adver_int: 1,
            v2_auth_type: V2_AUTH_PASS,
            v2_auth_data: v2_auth_words(&pass),
            ..Default::default()
        },
    );
    let key = Some(h.key(7, FAMILY_V4));
    let vips = [
        VIP4,
        Ipv4Addr::new(192, 0, 2, 11),
        Ipv4Addr::new(192, 0, 2, 12),
    ];
    let mut adv = Advert::v2(7, 100, &vips);
    adv.auth_type = 1;
    adv.auth_data = *b"Secret\0\0";
    h.expect_drop(&Envelope::v4(7).frame(&adv), DropReason::Auth, key);
    adv.auth_data = *b"secret\0\x01";
    let before = h.vrid_stats(h.key(7, FAMILY_V4)).unwrap().drops[DropReason::Auth as usize];
    assert_eq!(
        h.run(&Envelope::v4(7).frame(&adv)).action,
        XDP_DROP,
        "last byte differs"
    );
    let after = h.vrid_stats(h.key(7, FAMILY_V4)).unwrap().drops[DropReason::Auth as usize];
    assert_eq!(after, before + 1);
    // The sender is remembered for the agent to name (DROP_PEERS).
    let named = h.drop_peer(h.key(7, FAMILY_V4), DropReason::Auth);
    assert_eq!(named.key, h.key(7, FAMILY_V4));
    assert_eq!(named.count, 2);
    let env = Envelope::v4(7);
    let mut src = [0u8; 16];
    if let IpAddr::V4(a) = env.src {
        src[..4].copy_from_slice(&a.octets());
    }
    assert_eq!(named.src, SeenAdvert::src_words(&src));
    assert!(named.ts_ns > 0);
    let mut none = Advert::v2(7, 100, &vips);
    none.auth_data = pass;
    h.expect_drop(&Envelope::v4(7).frame(&none), DropReason::AuthType, key);
    adv.auth_data = pass;
    let r = h.run(&Envelope::v4(7).frame(&adv));
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(h.stat(Stat::AdvertsValid), 1);
    assert_eq!(h.last_seen(h.key(7, FAMILY_V4)).unwrap().rx_total, 1);
}

/// Auth Type 2 (IP AH in RFC 2338, never carried in protocol 112) is
/// dropped before the VRID lookup; a type 1 advert for a VRID not
/// configured here passes as foreign (a keepalived pair next door).
#[test]
fn v2_auth_type_2_dropped_type_1_foreign_passes() {
    let Some(mut h) = Harness::new() else { return };
    let mut adv = Advert::v2(9, 100, &[VIP4]);
    adv.auth_type = 2;
    h.expect_drop(
        &Envelope::v4(9).frame(&adv),
        DropReason::AuthType,
        Some(h.key(9, FAMILY_V4)),
    );
    adv.auth_type = 1;
    adv.auth_data = *b"whatever";
    assert_eq!(h.run(&Envelope::v4(9).frame(&adv)).action, XDP_PASS);
    assert_eq!(h.stat(Stat::AdvertsForeign), 1);
}

#[test]
fn every_truncation_is_dropped_or_passed_never_accepted() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    h.configure_v3(3, FAMILY_V6);
    let mut tagged = Envelope::v4(7);
    tagged.vlans = vec![(TPID_8021AD, 5), (TPID_8021Q, 6)];
    tagged.ip_options = vec![0x94, 0x04, 0, 0];
    let frames = [
        Envelope::v4(7).frame(&Advert::v2(7, 100, &[VIP4])),
        tagged.frame(&Advert::v2(7, 100, &[VIP4])),
        Envelope::v6(3).frame(&Advert::v3(3, 100, &[v6(LL6), v6(VIP6)])),
    ];
    for full in &frames {
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
        for len in 14..full.len() {
            let r = h.run(&full[..len]);
            assert!(
                r.action == XDP_PASS || r.action == XDP_DROP,
                "prefix {len}: verdict {}",
                r.action
            );
            assert_eq!(h.stat(Stat::AdvertsValid), 0, "prefix {len} was accepted");
            assert_eq!(
                h.stat(Stat::AdvertsForeign),
                0,
                "prefix {len} counted foreign"
            );
        }
    }
    assert_eq!(h.last_seen_count(), 0);
    assert!(h.events().is_empty());
    // Every drop was for length (the headers that are present are fine).
    let d = h.drops();
    assert_eq!(d.iter().sum::<u64>(), d[DropReason::Length as usize]);
    assert!(d[DropReason::Length as usize] > 0);
    // The full frames are valid.
    for full in &frames {
        assert_eq!(h.run(full).action, XDP_PASS);
    }
    assert_eq!(h.stat(Stat::AdvertsValid), 3);
}

#[test]
fn unknown_vrid_is_passed_and_counted_foreign() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    let frame = Envelope::v4(8).frame(&Advert::v2(8, 100, &[VIP4]));
    let r = h.run(&frame);
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(r.data_out, frame);
    assert_eq!(h.stat(Stat::AdvertsForeign), 1);
    assert_eq!(h.stat(Stat::AdvertsValid), 0);
    let s = h
        .vrid_stats(h.key(8, FAMILY_V4))
        .expect("VRID_STATS for the foreign VRID");
    assert_eq!((s.foreign, s.valid), (1, 0));
    assert_eq!(h.last_seen_count(), 0);
    assert!(h.events().is_empty());
    // A foreign IPv6 advert, any version the RFCs define.
    assert_eq!(
        h.run(&Envelope::v6(8).frame(&Advert::v3(8, 100, &[v6(LL6)])))
            .action,
        XDP_PASS
    );
    assert_eq!(h.stat(Stat::AdvertsForeign), 2);
}

// ---------------------------------------------------------------------------
// Event suppression and ring-buffer contents

#[test]
fn identical_adverts_are_suppressed_changes_are_announced() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    let key = h.key(9, FAMILY_V4);
    let env = Envelope::v4(9);
    let mut adv = Advert::v3(9, 100, &[v4(VIP4)]);
    let run = |h: &mut Harness, env: &Envelope, adv: &Advert| {
        assert_eq!(h.run(&env.frame(adv)).action, XDP_PASS);
        h.events()
    };

    assert_eq!(run(&mut h, &env, &adv)[0].reason, event_reason::FIRST);
    let ts1 = h.last_seen(key).unwrap().ts_ns;
    assert!(
        run(&mut h, &env, &adv).is_empty(),
        "identical advert: no event"
    );
    assert_eq!(h.stat(Stat::EventsSuppressed), 1);
    let ls = h.last_seen(key).unwrap();
    assert_eq!(ls.rx_total, 2);
    assert!(ls.ts_ns >= ts1, "LAST_SEEN refreshed even when suppressed");

    adv.priority = 110;
    let ev = run(&mut h, &env, &adv);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].reason, event_reason::PRIORITY);
    assert_eq!(ev[0].priority, 110);

    adv.interval = 200;
    assert_eq!(run(&mut h, &env, &adv)[0].reason, event_reason::INTERVAL);

    let mut env2 = env.clone();
    env2.src = v4(Ipv4Addr::new(192, 0, 2, 2));
    let ev = run(&mut h, &env2, &adv);
    assert_eq!(ev[0].reason, event_reason::NEW_SOURCE);
    assert_eq!(&ev[0].src_ip[..4], &[192, 0, 2, 2]);

    // Other changes (the address list) do not wake the agent.
    adv.addrs.push(v4(Ipv4Addr::new(192, 0, 2, 101)));
    assert!(run(&mut h, &env2, &adv).is_empty());
    assert_eq!(h.last_seen(key).unwrap().count, 2);

    // Resignation: always announced, even when repeated.
    adv.priority = 0;
    assert_eq!(
        run(&mut h, &env2, &adv)[0].reason,
        event_reason::PRIORITY | event_reason::PRIORITY_ZERO
    );
    assert_eq!(
        run(&mut h, &env2, &adv)[0].reason,
        event_reason::PRIORITY_ZERO
    );

    assert_eq!(h.stat(Stat::EventsSent), 6);
    assert_eq!(h.stat(Stat::EventsSuppressed), 2);
    assert_eq!(h.stat(Stat::AdvertsValid), 8);
    assert_eq!(h.last_seen(key).unwrap().rx_total, 8);
}

/// A run of identical adverts A1..An ends with a different advert B: B's
/// event carries An's receive time, which only LAST_SEEN had seen.
#[test]
fn event_after_a_suppressed_run_carries_the_last_suppressed_timestamp() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    let key = h.key(9, FAMILY_V4);
    let env = Envelope::v4(9);
    let mut adv = Advert::v3(9, 150, &[v4(VIP4)]);

    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    let first = first_event(&mut h);
    assert_eq!(first.prev_ts_ns, 0, "no predecessor");
    let mut an = first.ts_ns;
    for _ in 0..3 {
        assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
        assert!(h.events().is_empty(), "identical advert: no event");
        let ts = h.last_seen(key).unwrap().ts_ns;
        assert!(ts >= an);
        an = ts;
    }
    assert!(an > first.ts_ns, "the suppressed run took time");

    adv.priority = 50;
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    let b = first_event(&mut h);
    assert_eq!(b.reason, event_reason::PRIORITY);
    assert_eq!(b.prev_ts_ns, an, "An's timestamp, not A1's");
    assert!(b.ts_ns >= an);
    assert_eq!(h.last_seen(key).unwrap().ts_ns, b.ts_ns);

    // The next change right after: the predecessor is B itself.
    adv.priority = 60;
    assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
    assert_eq!(first_event(&mut h).prev_ts_ns, b.ts_ns);
}

/// Every valid advert, suppressed or not, feeds the VRID's inter-arrival
/// histogram in LAST_SEEN with the time since its predecessor from the same
/// source; a new source starts a new series.
#[test]
fn interarrival_histogram_counts_every_advert_of_a_source() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v3(9, FAMILY_V4);
    let key = h.key(9, FAMILY_V4);
    let env = Envelope::v4(9);
    let mut adv = Advert::v3(9, 150, &[v4(VIP4)]);
    let hist = |h: &Harness| {
        let ls = h.last_seen(key).unwrap();
        (ls.hist.map(u64::from), ls.hist_sum_ns)
    };

    // Expected histogram, from the timestamps the program stored.
    let mut want = [0u64; INTERARRIVAL_HIST_LEN];
    let mut want_sum = 0u64;
    let mut prev: Option<u64> = None;
    let mut observe = |h: &Harness, want: &mut [u64; INTERARRIVAL_HIST_LEN]| {
        let ts = h.last_seen(key).unwrap().ts_ns;
        if let Some(p) = prev {
            assert!(ts > p, "the clock moves between two test runs");
            want[interarrival_bucket(ts - p)] += 1;
            want_sum += ts - p;
        }
        prev = Some(ts);
        ts
    };

    const RUNS: u64 = 6;
    let mut deltas = Vec::new();
    let mut last = 0;
    for i in 0..RUNS {
        if i == 3 {
            // One gap of more than 20 ms lands beyond the first buckets.
            std::thread::sleep(std::time::Duration::from_millis(21));
        }
        if i == 4 {
            // A priority change (same source) is an event, still observed.
            adv.priority = 140;
        }
        assert_eq!(h.run(&env.frame(&adv)).action, XDP_PASS);
        let ts = observe(&h, &mut want);
        if i > 0 {
            deltas.push(ts - last);
        }
        last = ts;
    }
    let (counts, sum) = hist(&h);
    assert_eq!(counts.iter().sum::<u64>(), RUNS - 1);
    assert_eq!((counts, sum), (want, want_sum));
    assert!(interarrival_bucket(deltas[2]) >= 3, "> 20 ms: {deltas:?}");
    assert!(counts[3..].iter().sum::<u64>() >= 1);
    let reasons: Vec<u8> = h.events().iter().map(|e| e.reason).collect();
    assert_eq!(reasons, [event_reason::FIRST, event_reason::PRIORITY]);

    // A new source: no observation (the gap is a failover) ...
    let mut env2 = env.clone();
    env2.src = v4(Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(h.run(&env2.frame(&adv)).action, XDP_PASS);
    assert_eq!(first_event(&mut h).reason, event_reason::NEW_SOURCE);
    assert_eq!(
        hist(&h),
        (want, want_sum),
        "a new source starts a new series"
    );
    let b1 = h.last_seen(key).unwrap().ts_ns;
    // ... but its next advert is one.
    assert_eq!(h.run(&env2.frame(&adv)).action, XDP_PASS);
    let b2 = h.last_seen(key).unwrap().ts_ns;
    want[interarrival_bucket(b2 - b1)] += 1;
    want_sum += b2 - b1;
    let (counts, sum) = hist(&h);
    assert_eq!(counts.iter().sum::<u64>(), RUNS);
    assert_eq!((counts, sum), (want, want_sum));
    assert_eq!(h.last_seen(key).unwrap().rx_total, RUNS + 2);
}

#[test]
fn deliver_all_announces_every_advert() {
    let Some(mut h) = Harness::new() else { return };
    h.configure(
        9,
        FAMILY_V4,
        VridConfig {
            version: 3,
            flags: VRID_F_DELIVER_ALL,
            ..Default::default()
        },
    );
    let frame = Envelope::v4(9).frame(&Advert::v3(9, 100, &[v4(VIP4)]));
    for _ in 0..3 {
        assert_eq!(h.run(&frame).action, XDP_PASS);
    }
    let ev = h.events();
    let reasons: Vec<u8> = ev.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            event_reason::FIRST | event_reason::DELIVER_ALL,
            event_reason::DELIVER_ALL,
            event_reason::DELIVER_ALL
        ]
    );
    assert!(ev.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    assert_eq!(h.stat(Stat::EventsSuppressed), 0);
}

// ---------------------------------------------------------------------------
// VIP traffic

#[test]
fn traffic_to_a_vip_is_counted_exactly() {
    let Some(mut h) = Harness::new() else { return };
    h.add_vip4(VIP4, 3);
    h.add_vip6(VIP6, 5);
    let f4 = udp_frame(v4(HOST4), v4(VIP4), 100);
    let f6 = udp_frame(v6(HOST6), v6(VIP6), 333);
    for _ in 0..2 {
        let r = h.run(&f4);
        assert_eq!(r.action, XDP_PASS);
        assert_eq!(r.data_out, f4);
    }
    let r = h.run(&f6);
    assert_eq!((r.action, &r.data_out), (XDP_PASS, &f6));
    let s4 = h.vip_stats(3);
    assert_eq!(
        (s4.rx_packets, s4.rx_bytes, s4.resolutions),
        (2, 2 * f4.len() as u64, 0)
    );
    let s6 = h.vip_stats(5);
    assert_eq!(
        (s6.rx_packets, s6.rx_bytes, s6.resolutions),
        (1, f6.len() as u64, 0)
    );
    assert_eq!(h.stat(Stat::VipPackets), 3);
    // Behind a VLAN tag too; bytes are the whole frame as received.
    let mut tagged = f4.clone();
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    assert_eq!(h.run(&tagged).action, XDP_PASS);
    assert_eq!(
        h.vip_stats(3).rx_bytes,
        2 * f4.len() as u64 + tagged.len() as u64
    );
    // Other slots untouched.
    assert_eq!(h.vip_stats(0), VipStats::default());
}

/// An IPv4 documentation address other than `not` whose `VIP_TABLE` index
/// is `index`.
fn v4_with_index(index: u32, not: Ipv4Addr) -> Ipv4Addr {
    [198u8, 203]
        .into_iter()
        .flat_map(|a| (0..=255u8).flat_map(move |x| (0..=255u8).map(move |y| (a, x, y))))
        .map(|(a, x, y)| Ipv4Addr::new(a, if a == 198 { 51 } else { 0 }, x, y))
        .find(|v| *v != not && vip_index_v4(v.octets()) == index)
        .expect("a colliding address among 131072 candidates")
}

/// Two VIPs sharing a `VIP_TABLE` index are both counted (through the hash
/// maps); an address sharing the index of a lone VIP is not.
#[test]
fn vip_table_collisions_fall_back_to_the_hash_maps() {
    let Some(mut h) = Harness::new() else { return };
    let index = vip_index_v4(VIP4.octets());
    let twin = v4_with_index(index, VIP4);
    let stranger = v4_with_index(index, twin);

    // Lone VIP: an address with the same index is compared and refused.
    h.add_vip4(VIP4, 3);
    assert_eq!(h.vip_entry(index).flags, 0);
    assert_eq!(h.run(&udp_frame(v4(HOST4), v4(twin), 10)).action, XDP_PASS);
    assert_eq!(h.stat(Stat::VipPackets), 0);

    // Collision: both VIPs found in VIPS_V4, the stranger still not.
    h.add_vip4(twin, 4);
    assert_eq!(h.vip_entry(index).flags, VIP_F_COLLISION);
    for dst in [VIP4, twin, twin, stranger] {
        assert_eq!(h.run(&udp_frame(v4(HOST4), v4(dst), 10)).action, XDP_PASS);
    }
    assert_eq!(h.vip_stats(3).rx_packets, 1);
    assert_eq!(h.vip_stats(4).rx_packets, 2);
    assert_eq!(h.stat(Stat::VipPackets), 3);
    // IPv6 VIPs are unaffected.
    h.add_vip6(VIP6, 5);
    assert_eq!(h.run(&udp_frame(v6(HOST6), v6(VIP6), 10)).action, XDP_PASS);
    assert_eq!(h.vip_stats(5).rx_packets, 1);
}

#[test]
fn arp_request_for_a_vip_is_a_resolution() {
    let Some(mut h) = Harness::new() else { return };
    h.add_vip4(VIP4, 3);
    let req = arp_frame(1, HOST4, VIP4);
    let r = h.run(&req);
    assert_eq!((r.action, &r.data_out), (XDP_PASS, &req));
    assert_eq!(h.vip_stats(3).resolutions, 1);
    assert_eq!(h.vip_stats(3).rx_packets, 0);
    // Replies and requests for other addresses are not.
    assert_eq!(h.run(&arp_frame(2, HOST4, VIP4)).action, XDP_PASS);
    assert_eq!(
        h.run(&arp_frame(1, HOST4, Ipv4Addr::new(192, 0, 2, 99)))
            .action,
        XDP_PASS
    );
    assert_eq!(h.vip_stats(3).resolutions, 1);
    assert_eq!(h.stat(Stat::VipResolutions), 1);
}

#[test]
fn neighbour_solicitation_for_a_vip_is_a_resolution() {
    let Some(mut h) = Harness::new() else { return };
    h.add_vip6(VIP6, 5);
    let ns = ns_frame(HOST6, VIP6);
    let r = h.run(&ns);
    assert_eq!((r.action, &r.data_out), (XDP_PASS, &ns));
    let s = h.vip_stats(5);
    assert_eq!((s.resolutions, s.rx_packets), (1, 0));
    assert_eq!(
        h.run(&ns_frame(
            HOST6,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x999)
        ))
        .action,
        XDP_PASS
    );
    assert_eq!(h.vip_stats(5).resolutions, 1);
    assert_eq!(h.stat(Stat::VipResolutions), 1);
}

#[test]
fn other_traffic_is_passed_byte_identical_and_uncounted() {
    let Some(mut h) = Harness::new() else { return };
    h.add_vip4(VIP4, 3);
    h.add_vip6(VIP6, 5);
    h.configure_v2(7);
    let lldp = ethernet(
        [0x01, 0x80, 0xc2, 0, 0, 0x0e],
        frames::HOST_MAC,
        &[],
        0x88cc,
        &[0x02, 0x07, 0x04, 1, 2, 3, 4, 5, 6],
    );
    let frames = [
        udp_frame(v4(HOST4), v4(Ipv4Addr::new(192, 0, 2, 101)), 64),
        udp_frame(
            v6(HOST6),
            v6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101)),
            64,
        ),
        udp_frame(v4(VIP4), v4(HOST4), 64), // from a VIP, not to it
        arp_frame(1, HOST4, Ipv4Addr::new(198, 51, 100, 1)),
        ns_frame(HOST6, HOST6),
        lldp,
        vec![0xff; 14],
    ];
    for f in &frames {
        let r = h.run(f);
        assert_eq!(r.action, XDP_PASS);
        assert_eq!(&r.data_out, f, "data_out == data_in");
    }
    assert_eq!(h.stats(), vec![0; STATS_LEN as usize], "no counter moved");
    assert_eq!(h.vip_stats(3), VipStats::default());
    assert_eq!(h.vip_stats(5), VipStats::default());
}

#[test]
fn full_ring_buffer_is_counted() {
    let Some(mut h) = Harness::new() else { return };
    h.configure(
        9,
        FAMILY_V4,
        VridConfig {
            version: 3,
            flags: VRID_F_DELIVER_ALL,
            ..Default::default()
        },
    );
    let frame = Envelope::v4(9).frame(&Advert::v3(9, 100, &[v4(VIP4)]));
    // More events than the 256 KiB ring holds, with nobody draining it.
    const RUNS: u32 = 4000;
    let r =
        xdp::run(&mut h.ebpf, vrrp_common::XDP_PROGRAM, &frame, RUNS).expect("BPF_PROG_TEST_RUN");
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(h.stat(Stat::AdvertsValid), u64::from(RUNS));
    let (sent, full) = (h.stat(Stat::EventsSent), h.stat(Stat::RingbufFull));
    assert!(full > 0, "the ring must have filled");
    assert_eq!(
        sent + full,
        u64::from(RUNS),
        "every event is either sent or counted lost"
    );
    assert_eq!(h.events().len() as u64, sent);
}

// ---------------------------------------------------------------------------
// Passed uncounted by design

#[test]
fn ipv4_fragments_and_ipv6_extension_headers_are_left_to_the_stack() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_v2(7);
    h.configure_v3(3, FAMILY_V6);
    // First fragment (MF set) of an advert.
    let mut frag = Envelope::v4(7).frame(&Advert::v2(7, 100, &[VIP4]));
    frag[14 + 6] |= 0x20;
    let r = h.run(&frag);
    assert_eq!((r.action, &r.data_out), (XDP_PASS, &frag));
    // VRRP behind a hop-by-hop options header.
    let env = Envelope::v6(3);
    let msg = Advert::v3(3, 100, &[v6(LL6)]).message(env.src, env.dst);
    let mut payload = vec![frames::PROTO_VRRP, 0, 1, 4, 0, 0, 0, 0];
    payload.extend_from_slice(&msg);
    let (IpAddr::V6(s), IpAddr::V6(d)) = (env.src, env.dst) else {
        unreachable!()
    };
    let ext = ethernet(
        [0x33, 0x33, 0, 0, 0, 0x12],
        frames::vmac(true, 3),
        &[],
        frames::ETHERTYPE_IPV6,
        &frames::ipv6(s, d, 255, 0, &payload),
    );
    let r = h.run(&ext);
    assert_eq!((r.action, &r.data_out), (XDP_PASS, &ext));
    assert_eq!(h.stat(Stat::AdvertsValid), 0);
    assert_eq!(h.drops(), [0; DROP_REASONS]);
    assert_eq!(h.last_seen_count(), 0);
}

#[test]
fn vrid_without_a_table_entry_is_found_through_vrids() {
    let Some(mut h) = Harness::new() else { return };
    h.configure_with(
        5,
        FAMILY_V4,
        VridConfig {
            version: 3,
            ..Default::default()
        },
        false,
    );
    let f = Envelope::v4(5).frame(&Advert::v3(5, 100, &[v4(VIP4)]));
    assert_eq!(h.run(&f).action, XDP_PASS);
    assert_eq!(h.stat(Stat::AdvertsValid), 1);
    let ls = h
        .last_seen(h.key(5, FAMILY_V4))
        .expect("LAST_SEEN refreshed");
    assert_eq!(ls.rx_total, 1);
    assert_eq!(first_event(&mut h).reason, event_reason::FIRST);
}

/// A `VRID_TABLE` entry naming a slot that its VRID does not own (torn by a
/// concurrent update, or stale) must not make the advert write another
/// VRID's `LAST_SEEN`: the program falls back to `VRIDS`.
#[test]
fn vrid_table_entry_is_trusted_only_for_a_slot_its_vrid_owns() {
    let Some(mut h) = Harness::new() else { return };
    let v3 = VridConfig {
        version: 3,
        ..Default::default()
    };
    h.configure(1, FAMILY_V4, v3);
    h.configure(2, FAMILY_V4, v3);
    let (k1, k2) = (h.key(1, FAMILY_V4), h.key(2, FAMILY_V4));
    let mut t: Array<_, VridEntry> =
        Array::try_from(h.ebpf.map_mut(maps::VRID_TABLE).unwrap()).unwrap();
    t.set(
        vrid_table_index(2, FAMILY_V4),
        VridEntry {
            cfg: VridConfig {
                slot: h.slots[&k1],
                ..v3
            },
            ifindex: h.ifindex,
            _pad: 0,
        },
        0,
    )
    .unwrap();
    let f = Envelope::v4(2).frame(&Advert::v3(2, 100, &[v4(VIP4)]));
    assert_eq!(h.run(&f).action, XDP_PASS);
    assert!(
        h.last_seen(k1).is_none(),
        "VRID 1's LAST_SEEN written by VRID 2's advert"
    );
    assert_eq!(h.last_seen(k2).expect("VRID 2's LAST_SEEN").rx_total, 1);
}
