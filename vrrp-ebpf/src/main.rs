//! The vrrp-agent XDP program: parse, validate, stamp, count, emit.
//!
//! Per frame, in order of cost:
//!
//! - Anything that is not IPv4, IPv6 or ARP (after at most two VLAN tags,
//!   802.1Q / 802.1ad) passes untouched, without a helper call.
//! - IPv4/IPv6 traffic whose destination is a VIP bumps that VIP's per-CPU
//!   counters; ARP requests and neighbour solicitations whose target is a VIP
//!   bump `resolutions`. The VIP is found by one array lookup (`VIP_TABLE`,
//!   inlined by the verifier, see `vrrp_common::VipEntry`); only addresses
//!   whose table entry is a collision go to the `VIPS_V4`/`VIPS_V6` hashes.
//! - VRRP (IP protocol 112) adverts go through every RFC 9568 §7.1 receive
//!   check that needs no election state, including the checksum. Invalid ones
//!   are dropped and counted by reason; valid ones for a configured VRID
//!   refresh `LAST_SEEN` by `vrrp_common::LastSeen::record`, the rule the
//!   agent's socket path applies too (also their per-VRID counter,
//!   `rx_total`, and the inter-arrival histogram, `hist`, which the agent
//!   cannot measure: it sees only the changes) and wake the agent through
//!   `EVENTS` only when something changed, handing over the timestamp of
//!   the entry they replaced (`prev_ts_ns`); valid ones for other VRIDs
//!   pass and are counted as foreign.
//!
//! Check order (it decides which reason a doubly-broken advert is counted
//! under):
//!
//! 1. Stateless, so a foreign advert must pass them too before it is counted
//!    as foreign (an invalid foreign advert is dropped like any other): IPv4
//!    header checksum (counted as `Checksum`; the stack would discard it),
//!    TTL, version ∈ {2, 3} (v2 only over IPv4), type, length (exactly
//!    8 + count × address size, + 8 auth bytes in v2, per the IP length;
//!    Ethernet padding is ignored), checksum, v2 auth type ∈ {0, 1}, count,
//!    v3 interval ≠ 0. An IPv6 advert whose first address is not
//!    link-local is accepted and counted (`first_not_link_local`).
//! 2. Against the configuration: the VRID lookup (miss: `Family` if the VRID
//!    is configured only for the other family, else foreign), the configured
//!    version, the v2 interval, the v2 auth type and (type 1, simple
//!    password) the 8 bytes of Authentication Data, the peer allow-list.
//!
//! Drops are counted in `DROPS` and, once the fixed header could be read (so
//! the VRID is known, configured or not), in `VRID_STATS[key].drops`.
//!
//! Checksums: short messages (≤ 64 bytes) are summed straight from the
//! packet; longer ones are copied into a per-CPU buffer and summed with
//! `bpf_csum_diff`. A frame longer than the XDP linear buffer (jumbo,
//! multi-buffer) fails the length check: the program is not frags-aware.
//!
//! Passed uncounted (the agent's socket path sees them): IPv4 fragments of
//! protocol 112, and IPv6 packets whose VRRP header sits behind extension
//! headers (only next header 112 directly after the fixed header is parsed).
//!
//! Costs (`cargo xtask bench xdp` measures each step, see
//! `vrrp_common::step`): a hash-map lookup costs ~30 ns, `bpf_ktime_get_ns`
//! ~30 ns, array lookups (inlined by the verifier) 1-2 ns. So the steady
//! state needs no hash lookup: a valid advert finds its configuration and
//! `LAST_SEEN` slot by array (`VRID_TABLE`, checked against the slot's
//! owner; `VRIDS` only on a miss), which leaves the clock as its largest
//! cost; a VIP packet needs one array lookup (`VIP_TABLE`). `VRID_STATS`
//! (per-CPU hash) is touched only by drops and foreign adverts. Packet
//! fields are read with misaligned loads (see build.rs): byte-wise loads
//! cost the checksums and the event copy several ns each.
//!
//! No aya-log: logging would cost a ring-buffer reservation per call.
#![no_std]
#![no_main]

use core::ptr::{addr_of, addr_of_mut, read_unaligned};

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    helpers::{bpf_csum_diff, bpf_ktime_get_ns, bpf_xdp_load_bytes},
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::XdpContext,
};
// The package's library only anchors vrrp-agent's build-dependency.
use vrrp_common::{
    AdvertEvent, ChecksumForm, DROP_PEERS_LEN, DROP_REASONS, DropPeer, DropReason,
    EVENT_ADDR_BYTES, FAMILY_V4, FAMILY_V6, IPPROTO_VRRP, LastSeen, MAX_PEERS, MAX_VIPS, MAX_VRIDS,
    PeerKey, STATS_LEN, SeenAdvert, Stat, V2_AUTH_PASS, VIP_F_COLLISION, VIP_TABLE_LEN,
    VRID_F_DELIVER_ALL, VRID_F_PEER_FILTER, VRID_TABLE_LEN, VipEntry, VipStats, VridConfig,
    VridEntry, VridKey, VridStats, drop_peer_index, fold_v6, step, vip_filter_bit,
    vrid_table_index,
};
use vrrp_ebpf as _;

// ---------------------------------------------------------------------------
// Maps (names and types: vrrp_common::maps)

#[map]
static VRIDS: HashMap<VridKey, VridConfig> = HashMap::with_max_entries(MAX_VRIDS, 0);
#[map]
static VRID_TABLE: Array<VridEntry> = Array::with_max_entries(VRID_TABLE_LEN, 0);
#[map]
static LAST_SEEN: Array<LastSeen> = Array::with_max_entries(MAX_VRIDS, 0);
#[map]
static VRID_STATS: PerCpuHashMap<VridKey, VridStats> =
    PerCpuHashMap::with_max_entries(MAX_VRIDS, 0);
#[map]
static PEERS: HashMap<PeerKey, u8> = HashMap::with_max_entries(MAX_PEERS, 0);
#[map]
static VIPS_V4: HashMap<u32, u32> = HashMap::with_max_entries(MAX_VIPS, 0);
#[map]
static VIPS_V6: HashMap<[u8; 16], u32> = HashMap::with_max_entries(MAX_VIPS, 0);
#[map]
static VIP_TABLE: Array<VipEntry> = Array::with_max_entries(VIP_TABLE_LEN, 0);
#[map]
static VIP_STATS: PerCpuArray<VipStats> = PerCpuArray::with_max_entries(MAX_VIPS, 0);
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN, 0);
#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_REASONS as u32, 0);
#[map]
static DROP_PEERS: Array<DropPeer> = Array::with_max_entries(DROP_PEERS_LEN, 0);
/// 256 KiB: room for ~2300 events; the agent drains it continuously.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);
/// Per-CPU copy of the VRRP message for the checksum helper (which needs a
/// bounded buffer, not a variable-length slice of the packet).
#[map]
static VRRP_SCRATCH: PerCpuArray<[u8; SCRATCH_BYTES]> = PerCpuArray::with_max_entries(1, 0);
/// One all-zero `VridStats`, never written: the initial value of new
/// `VRID_STATS` entries.
#[map]
static VRRP_ZERO_STATS: Array<VridStats> = Array::with_max_entries(1, 0);

/// Where to stop, for the benchmark's per-step breakdown (see
/// `vrrp_common::step`); the agent leaves it at `step::ALL`.
#[unsafe(no_mangle)]
static VRRP_STOP_AFTER: u32 = step::ALL;

/// Whether the benchmark asked to stop after step `s`. The verifier knows
/// the frozen `.rodata` value and removes the exits that cannot be taken.
#[inline(always)]
fn stop_after(s: u32) -> bool {
    // SAFETY: reads a plain static; volatile so that the compiler keeps the
    // load (the loader may have changed the value).
    unsafe { core::ptr::read_volatile(addr_of!(VRRP_STOP_AFTER)) == s }
}

// ---------------------------------------------------------------------------
// Wire constants

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
const IPV6_HLEN: usize = 40;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
/// VRRP fixed header: version/type, VRID, priority, count, 2 bytes
/// (v2 auth type + adver int, v3 rsvd + max adver int), checksum.
const VRRP_HLEN: usize = 8;
/// VRRPv2 trailing authentication data (RFC 3768 §5.3.10).
const VRRP_V2_AUTH_LEN: usize = 8;
/// RFC 9568 §5.1.1.3 / §5.1.2.3: TTL / hop limit of every advert.
const VRRP_TTL: u8 = 255;

// ---------------------------------------------------------------------------
// Entry point

/// Entry point.
#[xdp]
pub fn vrrp_xdp(ctx: XdpContext) -> u32 {
    let Some(eth) = Hdr::<ETH_HLEN>::at(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let mut ethertype = eth.be16::<12>();
    let mut l3 = ETH_HLEN;
    // Up to two VLAN tags (QinQ): TCI, then the inner ethertype.
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let Some(tag) = Hdr::<4>::at(&ctx, l3) else {
            return xdp_action::XDP_PASS;
        };
        ethertype = tag.be16::<2>();
        l3 += 4;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            let Some(tag) = Hdr::<4>::at(&ctx, l3) else {
                return xdp_action::XDP_PASS;
            };
            ethertype = tag.be16::<2>();
            l3 += 4;
        }
    }
    match ethertype {
        ETH_P_IP => ipv4(&ctx, l3),
        ETH_P_IPV6 => ipv6(&ctx, l3),
        ETH_P_ARP => arp(&ctx, l3),
        _ => xdp_action::XDP_PASS,
    }
}

// ---------------------------------------------------------------------------
// Packet access

/// `N` bytes of the packet at some offset, bounds-checked once. One check
/// per header keeps the verifier's packet-range tracking simple (a check per
/// field, especially per byte, gets folded by LLVM into `ptr >= end`, which
/// proves nothing to the verifier).
#[derive(Clone, Copy)]
struct Hdr<const N: usize>(*const u8);

impl<const N: usize> Hdr<N> {
    #[inline(always)]
    fn at(ctx: &XdpContext, off: usize) -> Option<Self> {
        let p = ctx.data() + off;
        if p + N > ctx.data_end() {
            return None;
        }
        Some(Self(p as *const u8))
    }

    #[inline(always)]
    fn u8<const K: usize>(self) -> u8 {
        const { assert!(K < N) };
        // SAFETY: `at` checked N bytes; K < N.
        unsafe { *self.0.add(K) }
    }

    #[inline(always)]
    fn be16<const K: usize>(self) -> u16 {
        const { assert!(K + 2 <= N) };
        // SAFETY: `at` checked N bytes; packet data has no alignment guarantee.
        u16::from_be(unsafe { read_unaligned(self.0.add(K).cast::<u16>()) })
    }

    /// Four bytes as a native u32 of network-order bytes (how map keys, the
    /// VIP filter and the checksum words see addresses).
    #[inline(always)]
    fn ne32<const K: usize>(self) -> u32 {
        const { assert!(K + 4 <= N) };
        // SAFETY: `at` checked N bytes; packet data has no alignment guarantee.
        unsafe { read_unaligned(self.0.add(K).cast::<u32>()) }
    }

    #[inline(always)]
    fn words4<const K: usize>(self) -> [u32; 4] {
        const { assert!(K + 16 <= N) };
        // SAFETY: `at` checked N bytes; packet data has no alignment guarantee.
        unsafe { read_unaligned(self.0.add(K).cast::<[u32; 4]>()) }
    }
}

#[inline(always)]
fn words_to_bytes(w: [u32; 4]) -> [u8; 16] {
    let [a, b] = words_to_u64s(w);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_ne_bytes());
    out[8..].copy_from_slice(&b.to_ne_bytes());
    out
}

/// A 16-byte address as two native u64 (the bytes in memory order): how it
/// is built on the stack, in two aligned 8-byte stores. Built from four
/// u32, LLVM may merge the middle two into one misaligned store, which the
/// verifier rejects on the stack (see build.rs).
#[inline(always)]
fn words_to_u64s(w: [u32; 4]) -> [u64; 2] {
    let join = |lo: u32, hi: u32| {
        u64::from_ne_bytes({
            let (l, h) = (lo.to_ne_bytes(), hi.to_ne_bytes());
            [l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]]
        })
    };
    [join(w[0], w[1]), join(w[2], w[3])]
}

// ---------------------------------------------------------------------------
// Counters

#[inline(always)]
fn bump(stat: Stat) {
    if let Some(p) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot; no other writer while this program runs on this CPU.
        unsafe { *p += 1 }
    }
}

/// The per-VRID counters. The lookup is inlined (a BPF-to-BPF call costs
/// ~15 ns here); creating the entry is not.
#[inline(always)]
fn vrid_stats(key: &VridKey) -> *mut VridStats {
    match VRID_STATS.get_ptr_mut(key) {
        Some(p) => p,
        None => vrid_stats_create(key),
    }
}

/// Creates the per-VRID counters; null if the map is full. Not inlined:
/// reached from every drop site, and rare.
#[inline(never)]
fn vrid_stats_create(key: &VridKey) -> *mut VridStats {
    // The zero value comes from map memory: 112 bytes of stack would push
    // the call chain over the verifier's 512-byte limit.
    let Some(zero) = VRRP_ZERO_STATS.get_ptr(0) else {
        return core::ptr::null_mut();
    };
    // SAFETY: a map value of the right type, never written.
    let zero: &VridStats = unsafe { &*zero };
    if VRID_STATS.insert(key, zero, BPF_NOEXIST as u64).is_err() {
        bump(Stat::MapUpdateFailed);
    }
    VRID_STATS.get_ptr_mut(key).unwrap_or(core::ptr::null_mut())
}

/// Drops an advert, counting the reason globally and, once the VRID has been
/// read (`key` non-null), per VRID. Not inlined: there are many drop sites.
#[inline(never)]
fn drop_advert(reason: DropReason, key: *const VridKey) -> u32 {
    if let Some(p) = DROPS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot.
        unsafe { *p += 1 }
    }
    bump(Stat::AdvertsDropped);
    if !key.is_null() {
        // SAFETY: non-null `key` points to the caller's live VridKey.
        let s = vrid_stats(unsafe { &*key });
        if !s.is_null() {
            // SAFETY: per-CPU value; `reason` < DROP_REASONS by construction.
            unsafe { (*s).drops[reason as usize] += 1 }
        }
    }
    xdp_action::XDP_DROP
}

/// [`drop_advert`] for a check against the configuration: also remembers
/// the sender in `DROP_PEERS`, so the agent can name the peer whose adverts
/// it ignores (and why). Only on these drop paths: a steady valid advert
/// never comes here. `src` as two u64 built at the call site: a pointer
/// into `Rx` would pin it to the stack, where LLVM merges its fields into
/// misaligned 8-byte stores the verifier rejects.
#[inline(never)]
fn drop_configured(reason: DropReason, key: &VridKey, slot: u16, src: &[u64; 2]) -> u32 {
    if let Some(p) = DROP_PEERS.get_ptr_mut(drop_peer_index(slot, reason)) {
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: a map value; concurrent drops on two CPUs may mix two
        // senders' words or lose a count (diagnostics only).
        unsafe {
            if (*p).key != *key {
                (*p).key = *key;
                (*p).count = 0;
            }
            (*p).src = *src;
            (*p).ts_ns = now;
            (*p).count += 1;
        }
    }
    drop_advert(reason, key)
}

/// Counts an IPv6 advert whose first address is not link-local (accepted).
/// Not inlined: only such peers pay the hash lookup.
#[inline(never)]
fn count_not_link_local(key: &VridKey) {
    let s = vrid_stats(key);
    if !s.is_null() {
        // SAFETY: per-CPU value.
        unsafe { (*s).first_not_link_local += 1 }
    }
}

// ---------------------------------------------------------------------------
// VIP traffic

#[inline(always)]
fn vip_count_packet(ctx: &XdpContext, slot: u32) {
    if let Some(s) = VIP_STATS.get_ptr_mut(slot) {
        let len = (ctx.data_end() - ctx.data()) as u64;
        // SAFETY: per-CPU slot.
        unsafe {
            (*s).rx_packets += 1;
            (*s).rx_bytes += len;
        }
        bump(Stat::VipPackets);
    }
}

#[inline(always)]
fn vip_count_resolution(slot: u32) {
    if let Some(s) = VIP_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot.
        unsafe { (*s).resolutions += 1 }
        bump(Stat::VipResolutions);
    }
}

/// The `VIP_TABLE` entry for `folded` (see `vrrp_common::VipEntry`): an
/// array lookup, inlined by the verifier.
#[inline(always)]
fn vip_entry(folded: u32) -> Option<*const VipEntry> {
    VIP_TABLE.get_ptr(vip_filter_bit(folded))
}

#[inline(always)]
fn vip_v4_slot(addr: u32) -> Option<u32> {
    let e = vip_entry(addr)?;
    // SAFETY: a map value; the agent writes whole entries (a torn read
    // miscounts one packet at most).
    let (family, flags, slot, a0) = unsafe {
        (
            (*e).family,
            (*e).flags,
            (*e).slot,
            read_unaligned(addr_of!((*e).addr).cast::<u32>()),
        )
    };
    if flags & VIP_F_COLLISION != 0 {
        // SAFETY: the value is a plain u32 copied out at once.
        return unsafe { VIPS_V4.get(addr) }.copied();
    }
    if family == FAMILY_V4 && a0 == addr {
        Some(slot)
    } else {
        None
    }
}

#[inline(always)]
fn vip_v6_slot(w: [u32; 4]) -> Option<u32> {
    let e = vip_entry(fold_v6(w))?;
    // SAFETY: as in `vip_v4_slot`.
    let (family, flags, slot, a) = unsafe {
        (
            (*e).family,
            (*e).flags,
            (*e).slot,
            read_unaligned(addr_of!((*e).addr).cast::<[u32; 4]>()),
        )
    };
    if flags & VIP_F_COLLISION != 0 {
        let key = words_to_u64s(w);
        // SAFETY: [u64; 2] and [u8; 16] have the same size; u8 has no
        // alignment; the value is a plain u32 copied out at once.
        return unsafe { VIPS_V6.get(*key.as_ptr().cast::<[u8; 16]>()) }.copied();
    }
    if family == FAMILY_V6 && a == w {
        Some(slot)
    } else {
        None
    }
}

/// ARP request (Ethernet/IPv4) whose target protocol address is a VIP.
#[inline(always)]
fn arp(ctx: &XdpContext, l3: usize) -> u32 {
    // htype 1, ptype 0x0800 | hlen 6, plen 4, oper 1 (request); RFC 826.
    const HW_PROTO: u32 = u32::from_ne_bytes([0, 1, 0x08, 0x00]);
    const LEN_OP: u32 = u32::from_ne_bytes([6, 4, 0, 1]);
    let Some(h) = Hdr::<28>::at(ctx, l3) else {
        return xdp_action::XDP_PASS;
    };
    let (a, b, tpa) = (h.ne32::<0>(), h.ne32::<4>(), h.ne32::<24>());
    if a == HW_PROTO
        && b == LEN_OP
        && let Some(slot) = vip_v4_slot(tpa)
    {
        vip_count_resolution(slot);
    }
    xdp_action::XDP_PASS
}

// ---------------------------------------------------------------------------
// IPv4 / IPv6

#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> u32 {
    let Some(ip) = Hdr::<20>::at(ctx, l3) else {
        return xdp_action::XDP_PASS;
    };
    let (vihl, proto, dst) = (ip.u8::<0>(), ip.u8::<9>(), ip.ne32::<16>());
    if vihl >> 4 != 4 || stop_after(step::PARSE) {
        return xdp_action::XDP_PASS;
    }
    if proto == IPPROTO_VRRP {
        return vrrp_v4(ctx, l3, ip);
    }
    if let Some(slot) = vip_v4_slot(dst) {
        if stop_after(step::VIP_LOOKUP) {
            return xdp_action::XDP_PASS;
        }
        vip_count_packet(ctx, slot);
    }
    xdp_action::XDP_PASS
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize) -> u32 {
    let Some(ip) = Hdr::<IPV6_HLEN>::at(ctx, l3) else {
        return xdp_action::XDP_PASS;
    };
    let (vtc, nh, dst) = (ip.u8::<0>(), ip.u8::<6>(), ip.words4::<24>());
    if vtc >> 4 != 6 || stop_after(step::PARSE) {
        return xdp_action::XDP_PASS;
    }
    if nh == IPPROTO_VRRP {
        return vrrp_v6(ctx, l3, ip);
    }
    if let Some(slot) = vip_v6_slot(dst) {
        vip_count_packet(ctx, slot);
    }
    // Neighbour solicitation (RFC 4861 §4.3): type, code, checksum, reserved,
    // then the 16-byte target address.
    if nh == IPPROTO_ICMPV6
        && let Some(ns) = Hdr::<24>::at(ctx, l3 + IPV6_HLEN)
        && ns.u8::<0>() == ND_NEIGHBOR_SOLICIT
        && let Some(slot) = vip_v6_slot(ns.words4::<8>())
    {
        vip_count_resolution(slot);
    }
    xdp_action::XDP_PASS
}

// ---------------------------------------------------------------------------
// VRRP

/// The configuration and `LAST_SEEN` entry of `key` by `VRID_TABLE`: an
/// array lookup, trusted only if the slot it names belongs to `key` (see
/// `vrrp_common::VridEntry`). `None`: ask `VRIDS`.
#[inline(always)]
fn vrid_by_table(key: &VridKey) -> Option<(VridConfig, *mut LastSeen)> {
    let e = VRID_TABLE.get_ptr(vrid_table_index(key.vrid, key.family))?;
    // SAFETY: a map value (a torn read is caught by the owner check, or
    // mixes one flag of an update for one packet).
    let (ifindex, cfg) = unsafe { ((*e).ifindex, (*e).cfg) };
    if ifindex != key.ifindex {
        return None;
    }
    let ls = LAST_SEEN.get_ptr_mut(cfg.slot as u32)?;
    // SAFETY: a map value; the owner fields are written only by the agent,
    // when it gives the slot to a VRID.
    if !unsafe { (*ls).is_owned_by(key) } {
        return None;
    }
    Some((cfg, ls))
}

/// A valid advert for a VRID not configured on this interface: dropped as
/// `Family` if the VRID is configured for the other family, else passed and
/// counted as foreign. Not inlined: off the steady-state path.
#[inline(never)]
fn unconfigured_vrid(ifindex: u32, vrid: u8, family: u8, key: &VridKey) -> u32 {
    let other = VridKey::new(
        ifindex,
        vrid,
        if family == FAMILY_V4 {
            FAMILY_V6
        } else {
            FAMILY_V4
        },
    );
    if VRIDS.get_ptr(other).is_some() {
        return drop_advert(DropReason::Family, key);
    }
    bump(Stat::AdvertsForeign);
    let s = vrid_stats(key);
    if !s.is_null() {
        // SAFETY: per-CPU value.
        unsafe { (*s).foreign += 1 }
    }
    xdp_action::XDP_PASS
}

/// What the IP layer tells the VRRP checks.
struct Rx {
    family: u8,
    ttl: u8,
    /// Offset of the VRRP message in the frame.
    off: usize,
    /// Length of the VRRP message per the IP header.
    len: usize,
    /// Ones-complement partial sum of the IP pseudo-header (native words).
    pseudo: u64,
    /// Source address (IPv4 in the first word).
    src: [u32; 4],
}

#[inline(always)]
fn vrrp_v4(ctx: &XdpContext, l3: usize, ip: Hdr<20>) -> u32 {
    bump(Stat::VrrpSeen);
    let ihl = ((ip.u8::<0>() & 0x0f) as usize) * 4;
    let (tot_len, frag, ttl, src, dst) = (
        ip.be16::<2>(),
        ip.be16::<6>(),
        ip.u8::<8>(),
        ip.ne32::<12>(),
        ip.ne32::<16>(),
    );
    // MF set or a non-zero offset: leave reassembly to the kernel.
    if frag & 0x3fff != 0 {
        return xdp_action::XDP_PASS;
    }
    let tot_len = tot_len as usize;
    if ihl < 20 || tot_len < ihl + VRRP_HLEN {
        return drop_advert(DropReason::Length, core::ptr::null());
    }
    // The IPv4 header checksum too: the stack would discard a corrupt
    // header, so such an advert must not refresh LAST_SEEN either.
    // Without options (the usual case) from the header already in hand.
    let header_sum = if ihl == 20 {
        Some(
            ip.ne32::<0>() as u64
                + ip.ne32::<4>() as u64
                + ip.ne32::<8>() as u64
                + src as u64
                + dst as u64,
        )
    } else {
        sum_packet(ctx, l3, ihl)
    };
    match header_sum {
        Some(s) if fold(s) == 0xffff => {}
        Some(_) => return drop_advert(DropReason::Checksum, core::ptr::null()),
        None => return drop_advert(DropReason::Length, core::ptr::null()),
    }
    let len = tot_len - ihl;
    // RFC 768-style pseudo-header: src, dst, zero, protocol, length.
    let pseudo = src as u64
        + dst as u64
        + u32::from_ne_bytes([0, IPPROTO_VRRP, (len >> 8) as u8, len as u8]) as u64;
    let rx = Rx {
        family: FAMILY_V4,
        ttl,
        off: l3 + ihl,
        len,
        pseudo,
        src: [src, 0, 0, 0],
    };
    vrrp(ctx, &rx, l3 + tot_len)
}

#[inline(always)]
fn vrrp_v6(ctx: &XdpContext, l3: usize, ip: Hdr<IPV6_HLEN>) -> u32 {
    bump(Stat::VrrpSeen);
    let (plen, hop, src, dst) = (
        ip.be16::<4>(),
        ip.u8::<7>(),
        ip.words4::<8>(),
        ip.words4::<24>(),
    );
    let len = plen as usize;
    if len < VRRP_HLEN {
        return drop_advert(DropReason::Length, core::ptr::null());
    }
    // RFC 8200 §8.1 pseudo-header: src, dst, upper-layer length (u32),
    // three zero bytes, next header.
    let pseudo = src[0] as u64
        + src[1] as u64
        + src[2] as u64
        + src[3] as u64
        + dst[0] as u64
        + dst[1] as u64
        + dst[2] as u64
        + dst[3] as u64
        + u32::from_ne_bytes([0, 0, (len >> 8) as u8, len as u8]) as u64
        + u32::from_ne_bytes([0, 0, 0, IPPROTO_VRRP]) as u64;
    let rx = Rx {
        family: FAMILY_V6,
        ttl: hop,
        off: l3 + IPV6_HLEN,
        len,
        pseudo,
        src,
    };
    vrrp(ctx, &rx, l3 + IPV6_HLEN + len)
}

/// Folds a ones-complement partial sum to 16 bits.
#[inline(always)]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The RFC 9568 §7.1 receive checks, then stamp/count/emit. `ip_end` is the
/// frame offset where the IP datagram ends (Ethernet padding may follow).
#[inline(always)]
fn vrrp(ctx: &XdpContext, rx: &Rx, ip_end: usize) -> u32 {
    let Some(h) = Hdr::<VRRP_HLEN>::at(ctx, rx.off) else {
        // Not even the fixed header is in the frame: the VRID is unknown.
        return drop_advert(DropReason::Length, core::ptr::null());
    };
    let (ver_type, vrid, priority, count, b4, b5) = (
        h.u8::<0>(),
        h.u8::<1>(),
        h.u8::<2>(),
        h.u8::<3>(),
        h.u8::<4>(),
        h.u8::<5>(),
    );
    let ifindex = ctx.ingress_ifindex() as u32;
    let key = VridKey::new(ifindex, vrid, rx.family);

    // §7.1 item 1.
    if rx.ttl != VRRP_TTL {
        return drop_advert(DropReason::Ttl, &key);
    }
    // Item 2: version 2 or 3; VRRPv2 is IPv4-only (RFC 3768).
    let version = ver_type >> 4;
    if !(version == 3 || (version == 2 && rx.family == FAMILY_V4)) {
        return drop_advert(DropReason::Version, &key);
    }
    // Item 3.
    if ver_type & 0x0f != 1 {
        return drop_advert(DropReason::Type, &key);
    }
    // Item 4: exactly the header, the addresses and (v2) the auth data.
    let alen: usize = if rx.family == FAMILY_V4 { 4 } else { 16 };
    let mut expected = VRRP_HLEN + count as usize * alen;
    if version == 2 {
        expected += VRRP_V2_AUTH_LEN;
    }
    if rx.len != expected || ip_end > ctx.data_end() - ctx.data() {
        return drop_advert(DropReason::Length, &key);
    }
    if stop_after(step::HEADER) {
        return xdp_action::XDP_PASS;
    }

    // Item 5. Short messages (the usual case) are summed straight from the
    // packet; longer ones are copied to a per-CPU buffer and summed by the
    // checksum helper.
    let sum = if expected <= INLINE_SUM_BYTES {
        match sum_packet(ctx, rx.off, expected) {
            Some(s) => s,
            None => return drop_advert(DropReason::Length, &key),
        }
    } else {
        match sum_helper(ctx, rx.off, expected) {
            Some(s) => s,
            None => return drop_advert(DropReason::Length, &key),
        }
    };
    let form = if version == 2 {
        // RFC 3768 §5.3.8: message only.
        if fold(sum) != 0xffff {
            return drop_advert(DropReason::Checksum, &key);
        }
        ChecksumForm::MessageOnly
    } else if rx.family == FAMILY_V6 {
        // RFC 9568 §5.2.8: IPv6 always with the pseudo-header.
        if fold(sum + rx.pseudo) != 0xffff {
            return drop_advert(DropReason::Checksum, &key);
        }
        ChecksumForm::PseudoHeader
    } else if fold(sum) == 0xffff {
        // RFC 9568 §5.2.8 IPv4 form.
        ChecksumForm::MessageOnly
    } else if fold(sum + rx.pseudo) == 0xffff {
        // RFC 5798 §5.2.8 form (keepalived, FRR defaults).
        ChecksumForm::PseudoHeader
    } else {
        return drop_advert(DropReason::Checksum, &key);
    };
    if stop_after(step::CHECKSUM) {
        return xdp_action::XDP_PASS;
    }

    // Item 7 (v2): type 0 (RFC 3768) or 1 (simple password, RFC 2338;
    // keepalived's `auth_type PASS`); which one is checked against the
    // configuration below.
    if version == 2 && b4 > V2_AUTH_PASS {
        return drop_advert(DropReason::AuthType, &key);
    }
    // Item 8, erratum 8299.
    if count == 0 {
        return drop_advert(DropReason::Count, &key);
    }
    let interval: u16 = if version == 2 {
        b5 as u16
    } else {
        (((b4 & 0x0f) as u16) << 8) | b5 as u16
    };
    // Item 8, erratum 8301.
    if version == 3 && interval == 0 {
        return drop_advert(DropReason::Interval, &key);
    }
    // Item 8, erratum 8300: the first IPv6 address is link-local
    // (fe80::/10). Tolerated, counted: keepalived runs configs without one
    // (with a warning), and dropping them would split a mixed pair.
    if rx.family == FAMILY_V6 {
        let Some(a) = Hdr::<{ VRRP_HLEN + 2 }>::at(ctx, rx.off) else {
            return drop_advert(DropReason::Length, &key);
        };
        if a.u8::<8>() != 0xfe || a.u8::<9>() & 0xc0 != 0x80 {
            count_not_link_local(&key);
        }
    }

    // Item 6: the VRID must be configured on this interface. The table
    // first (an array lookup), the hash for the rest.
    let (cfg, ls) = match vrid_by_table(&key) {
        Some(found) => found,
        None => match VRIDS.get_ptr(key) {
            Some(c) => {
                // SAFETY: the agent writes whole values; a torn read only
                // makes us check against a mix of the old and new settings
                // for one packet.
                let cfg = unsafe { *c };
                let ls = LAST_SEEN
                    .get_ptr_mut(cfg.slot as u32)
                    .unwrap_or(core::ptr::null_mut());
                (cfg, ls)
            }
            None => return unconfigured_vrid(ifindex, vrid, rx.family, &key),
        },
    };
    if stop_after(step::VRID_LOOKUP) {
        return xdp_action::XDP_PASS;
    }
    // Item 2 against the configuration.
    if version != cfg.version {
        return drop_configured(DropReason::Version, &key, cfg.slot, &words_to_u64s(rx.src));
    }
    if version == 2 {
        // Item 7 (v2): the Adver Int must equal ours (RFC 3768 §7.1).
        if interval != cfg.v2_adver_int {
            return drop_configured(DropReason::Interval, &key, cfg.slot, &words_to_u64s(rx.src));
        }
        // RFC 2338 §7.1: the configured Auth Type, and for a simple
        // password its 8 bytes (after the IPv4 addresses): two loads.
        if b4 != cfg.v2_auth_type {
            return drop_configured(DropReason::AuthType, &key, cfg.slot, &words_to_u64s(rx.src));
        }
        if b4 == V2_AUTH_PASS {
            let Some(a) = Hdr::<VRRP_V2_AUTH_LEN>::at(ctx, rx.off + VRRP_HLEN + count as usize * 4)
            else {
                return drop_advert(DropReason::Length, &key);
            };
            if a.ne32::<0>() != cfg.v2_auth_data[0] || a.ne32::<4>() != cfg.v2_auth_data[1] {
                return drop_configured(DropReason::Auth, &key, cfg.slot, &words_to_u64s(rx.src));
            }
        }
    }
    if cfg.flags & VRID_F_PEER_FILTER != 0 {
        let mut peer = PeerKey {
            ifindex,
            family: rx.family,
            _pad: [0; 3],
            addr: [0; 16],
        };
        // SAFETY: `addr` sits at offset 8 of the 8-aligned PeerKey: two
        // aligned u64 (see `words_to_u64s`).
        unsafe {
            addr_of_mut!(peer.addr)
                .cast::<[u64; 2]>()
                .write(words_to_u64s(rx.src))
        };
        if PEERS.get_ptr(peer).is_none() {
            return drop_configured(DropReason::Peer, &key, cfg.slot, &words_to_u64s(rx.src));
        }
    }

    // Valid. Counted per VRID in LAST_SEEN.rx_total (below), not in
    // VRID_STATS: that would be one more hash lookup per advert.
    bump(Stat::AdvertsValid);
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(eth) = Hdr::<ETH_HLEN>::at(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let (mac_hi, mac_lo) = (eth.ne32::<6>(), eth.be16::<10>());
    let mut mac = [0u8; 6];
    mac[0..4].copy_from_slice(&mac_hi.to_ne_bytes());
    mac[4..6].copy_from_slice(&mac_lo.to_be_bytes());

    if stop_after(step::TIMESTAMP) {
        return xdp_action::XDP_PASS;
    }
    let seen = SeenAdvert {
        ts_ns: now,
        src: words_to_u64s(rx.src),
        src_mac: mac,
        priority,
        version,
        interval,
        count,
        checksum_form: form as u8,
    };
    if ls.is_null() {
        // A slot out of range: an agent bug.
        bump(Stat::MapUpdateFailed);
        return xdp_action::XDP_PASS;
    }
    // SAFETY: only this program writes LAST_SEEN (the agent reads, and
    // zeroes an entry before its slot is used); concurrent adverts for one
    // VRID on two CPUs race benignly (a lost histogram or rx_total count).
    let rec = unsafe { &mut *ls }.record(&seen, cfg.flags & VRID_F_DELIVER_ALL != 0);
    let (reason, prev_ts) = (rec.reason, rec.prev_ts_ns);
    if stop_after(step::LAST_SEEN) {
        return xdp_action::XDP_PASS;
    }
    if reason == 0 {
        bump(Stat::EventsSuppressed);
        return xdp_action::XDP_PASS;
    }

    let Some(mut entry) = EVENTS.reserve::<AdvertEvent>(0) else {
        bump(Stat::RingbufFull);
        return xdp_action::XDP_PASS;
    };
    let addr_bytes = count as usize * alen;
    let copy_bytes = if addr_bytes < EVENT_ADDR_BYTES {
        addr_bytes
    } else {
        EVENT_ADDR_BYTES
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to a reserved, exclusively owned ring-buffer record
    // of size_of::<AdvertEvent>(); every field is written before submit.
    unsafe {
        (*ev).ts_ns = now;
        (*ev).ifindex = ifindex;
        (*ev).family = rx.family;
        (*ev).version = version;
        (*ev).vrid = vrid;
        (*ev).priority = priority;
        (*ev).count = count;
        (*ev).checksum_form = form as u8;
        (*ev).addrs_copied = (copy_bytes / alen) as u8;
        (*ev).reason = reason;
        (*ev).interval = interval;
        (*ev).src_mac = mac;
        (*ev).src_ip = words_to_bytes(rx.src);
        (*ev)._pad = [0; 4];
        (*ev).prev_ts_ns = prev_ts;
    }
    copy_addrs(ctx, rx.off + VRRP_HLEN, copy_bytes, ev);
    entry.submit(0);
    bump(Stat::EventsSent);
    xdp_action::XDP_PASS
}

/// Messages up to this size are summed straight from the packet, without a
/// helper call: v3 with up to 14 IPv4 or 3 IPv6 addresses, v2 with up to 12.
const INLINE_SUM_BYTES: usize = 64;

/// Ones-complement partial sum (native 32-bit words) of the `len` bytes at
/// `off`; `len` is a multiple of 4 and at most [`INLINE_SUM_BYTES`]. `None`
/// if the frame is shorter (the caller has checked it is not).
#[inline(always)]
fn sum_packet(ctx: &XdpContext, off: usize, len: usize) -> Option<u64> {
    let p = ctx.data() + off;
    let end = ctx.data_end();
    let mut sum = 0u64;
    // Unrolled: one bounds check per word keeps the verifier's packet range
    // simple and costs less than the helper calls.
    macro_rules! word {
        ($($i:literal)*) => {$(
            if $i * 4 < len {
                if p + $i * 4 + 4 > end {
                    return None;
                }
                // SAFETY: bounds checked just above; no alignment guarantee.
                sum += unsafe { read_unaligned((p + $i * 4) as *const u32) } as u64;
            }
        )*};
    }
    word!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    const _: () = assert!(INLINE_SUM_BYTES == 16 * 4);
    Some(sum)
}

/// [`sum_packet`] for any VRRP message: copies it (a multiple of 4 bytes, at
/// most 8 + 255 * 16) into a per-CPU buffer and sums it with
/// `bpf_csum_diff`. Not inlined: rare (long address lists) and bulky.
#[inline(never)]
fn sum_helper(ctx: &XdpContext, off: usize, len: usize) -> Option<u64> {
    let buf = VRRP_SCRATCH.get_ptr_mut(0)?;
    // In [4, SCRATCH_BYTES] whatever `len` is, in a form the verifier can
    // follow (a separate `n == 0` check gets optimised away); equal to `len`
    // for every VRRP message length.
    let n = 4 + ((len as u32).wrapping_sub(4) & SCRATCH_MASK);
    // SAFETY: `buf` is a map value of SCRATCH_BYTES >= SCRATCH_MASK bytes;
    // the helper checks `off + n` against the packet.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, buf.cast(), n) } != 0 {
        return None;
    }
    // SAFETY: as above; the helper reads `n` bytes of the buffer. Depending
    // on the kernel it returns a 32-bit or a folded 16-bit partial sum; both
    // fold to the same checksum.
    let sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, buf.cast(), n, 0) };
    if sum < 0 {
        return None;
    }
    Some(sum as u64)
}

/// Copies the first `len` bytes (a multiple of 4, at most EVENT_ADDR_BYTES)
/// of the address list at `off` into the event, zeroing the rest.
#[inline(always)]
fn copy_addrs(ctx: &XdpContext, off: usize, len: usize, ev: *mut AdvertEvent) {
    let p = ctx.data() + off;
    let end = ctx.data_end();
    // SAFETY: `ev` is the caller's reserved record; AdvertEvent::addrs is
    // EVENT_ADDR_BYTES long.
    let dst = unsafe { addr_of_mut!((*ev).addrs).cast::<u32>() };
    macro_rules! word {
        ($($i:literal)*) => {$(
            let w = if $i * 4 < len && p + $i * 4 + 4 <= end {
                // SAFETY: bounds checked in the condition.
                unsafe { read_unaligned((p + $i * 4) as *const u32) }
            } else {
                0
            };
            // SAFETY: $i < EVENT_ADDR_BYTES / 4.
            unsafe { dst.add($i).write_unaligned(w) };
        )*};
    }
    word!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    const _: () = assert!(EVENT_ADDR_BYTES == 16 * 4);
}

/// Size of the per-CPU copy of a VRRP message.
const SCRATCH_BYTES: usize = 4096;
/// Bounds the length handed to the helpers (see `sum_helper`); VRRP messages
/// are multiples of 4, at most 8 + 255 * 16.
const SCRATCH_MASK: u32 = (SCRATCH_BYTES as u32 - 1) & !3;
const _: () = assert!(SCRATCH_BYTES.is_power_of_two());
const _: () = assert!(VRRP_HLEN + 255 * 16 <= SCRATCH_MASK as usize + 4);

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
