//! The bytes the XDP program and the agent agree on.
//!
//! Every type here is `#[repr(C)]`, has explicit padding (the verifier rejects
//! map helpers that read uninitialised stack bytes) and a compile-time size
//! assertion, so a change on one side that the other does not know about
//! fails the build instead of corrupting a map.
//!
//! Map names are constants so that the loader and the program cannot drift.
//! Addresses are stored as raw network-order bytes; IPv4 addresses occupy the
//! first four bytes of a 16-byte field and the rest is zero.
#![no_std]
#![deny(missing_docs)]

use core::mem::size_of;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// Address family tag for IPv4 in keys and events.
pub const FAMILY_V4: u8 = 4;
/// Address family tag for IPv6 in keys and events.
pub const FAMILY_V6: u8 = 6;

/// Bytes of advertised addresses copied into an [`AdvertEvent`]: 16 IPv4 or
/// 4 IPv6 addresses. Adverts carrying more are still validated and delivered;
/// only the copy is truncated (`addrs_copied` says how many made it).
pub const EVENT_ADDR_BYTES: usize = 64;
/// Maximum number of virtual IPs the data plane counts traffic for.
pub const MAX_VIPS: u32 = 1024;
/// Maximum number of (interface, VRID, family) entries.
pub const MAX_VRIDS: u32 = 1024;
/// Maximum number of unicast peers across all instances.
pub const MAX_PEERS: u32 = 1024;
/// Entries of `VIP_TABLE`: one per value of [`vip_filter_bit`] (16 bits).
pub const VIP_TABLE_LEN: u32 = 1 << 16;
/// Entries of `VRID_TABLE`: one per (VRID, family), see [`vrid_table_index`].
pub const VRID_TABLE_LEN: u32 = 512;

/// Map names, shared by the program and the loader.
pub mod maps {
    /// `HashMap<VridKey, VridConfig>`: VRIDs configured per interface (agent writes).
    pub const VRIDS: &str = "VRIDS";
    /// `Array<LastSeen>` of [`crate::MAX_VRIDS`] entries, indexed by
    /// [`crate::VridConfig::slot`]: newest valid advert per configured VRID
    /// (kernel writes; `rx_total == 0` means none yet). An array, not a hash
    /// keyed by [`crate::VridKey`]: the `VRIDS` lookup already found the VRID,
    /// a second hash lookup per advert would cost ~25 ns. The agent zeroes an
    /// entry before giving its slot to a VRID.
    pub const LAST_SEEN: &str = "LAST_SEEN";
    /// `Array<VridEntry>` of [`crate::VRID_TABLE_LEN`] entries, indexed by
    /// [`crate::vrid_table_index`]: the fast path to a VRID's configuration
    /// (an array lookup the verifier inlines, where a `VRIDS` lookup hashes,
    /// ~25 ns). Agent writes; see [`crate::VridEntry`].
    pub const VRID_TABLE: &str = "VRID_TABLE";
    /// `PerCpuHashMap<VridKey, VridStats>`: per-VRID counters, incl. foreign VRIDs.
    /// Not LRU: entries are never evicted (counters never reset under a flood
    /// of foreign VRIDs, and the lookup is cheaper); when full, new keys are
    /// not counted here (`Stat::MapUpdateFailed`), `DROPS` still counts.
    pub const VRID_STATS: &str = "VRID_STATS";
    /// `HashMap<PeerKey, u8>`: unicast allow-list (agent writes).
    pub const PEERS: &str = "PEERS";
    /// `HashMap<u32, u32>`: IPv4 VIP (network-order bytes as a native u32) to VIP slot.
    pub const VIPS_V4: &str = "VIPS_V4";
    /// `HashMap<[u8; 16], u32>`: IPv6 VIP to VIP slot.
    pub const VIPS_V6: &str = "VIPS_V6";
    /// `Array<VipEntry>` of [`crate::VIP_TABLE_LEN`] entries, indexed by
    /// [`crate::vip_filter_bit`]: the VIP at that index, none, or "several,
    /// ask `VIPS_V4`/`VIPS_V6`" (see [`crate::VipEntry`]).
    pub const VIP_TABLE: &str = "VIP_TABLE";
    /// `PerCpuArray<VipStats>`: traffic counters indexed by VIP slot.
    pub const VIP_STATS: &str = "VIP_STATS";
    /// `PerCpuArray<u64>`: global counters indexed by [`crate::Stat`].
    pub const STATS: &str = "STATS";
    /// `PerCpuArray<u64>`: drops by [`crate::DropReason`], whatever the VRID.
    pub const DROPS: &str = "DROPS";
    /// `Array<DropPeer>` of [`crate::DROP_PEERS_LEN`] entries, indexed by
    /// [`crate::drop_peer_index`]: per configured VRID (its `LAST_SEEN` slot)
    /// and reason, the sender of the last advert dropped by a check against
    /// the configuration (version, v2 interval, auth type, password, peer
    /// allow-list), so that the agent can name the peer whose adverts it
    /// ignores. Program writes, on those drop paths only.
    pub const DROP_PEERS: &str = "DROP_PEERS";
    /// `RingBuf`: [`crate::AdvertEvent`] records.
    pub const EVENTS: &str = "EVENTS";
}

/// Name of the XDP program in the object.
pub const XDP_PROGRAM: &str = "vrrp_xdp";

/// Per-step cost breakdown of the XDP program (`cargo xtask bench xdp`).
///
/// The program reads the global [`step::GLOBAL`] (a `u32` in `.rodata`,
/// default [`step::ALL`]) and returns `XDP_PASS` right after the step it
/// names. The loader sets it before loading; `.rodata` is frozen, so the
/// verifier knows the value and removes every early exit that cannot be
/// taken: in the agent's program (default) what remains of each is the load
/// of the constant (no branch). Only the
/// benchmark loads variants that stop early; the difference between two
/// consecutive variants is the cost of one step.
pub mod step {
    /// Name of the global in the object.
    pub const GLOBAL: &str = "VRRP_STOP_AFTER";
    /// Ethernet (and VLAN) header, ethertype, IP header, IP protocol.
    pub const PARSE: u32 = 1;
    /// The VIP match (not VRRP).
    pub const VIP_LOOKUP: u32 = 2;
    /// VRRP: the stateless receive checks up to (not incl.) the checksum.
    pub const HEADER: u32 = 3;
    /// VRRP: the checksums (IPv4 header and VRRP message).
    pub const CHECKSUM: u32 = 4;
    /// VRRP: the remaining stateless checks and the VRID lookup.
    pub const VRID_LOOKUP: u32 = 5;
    /// VRRP: the configuration checks and the receive timestamp.
    pub const TIMESTAMP: u32 = 6;
    /// VRRP: the `LAST_SEEN` update ([`crate::LastSeen::record`]).
    pub const LAST_SEEN: u32 = 7;
    /// Everything (the default): counters, ring-buffer event.
    pub const ALL: u32 = u32::MAX;
}

/// Why an advert was dropped. One reason per receive check of RFC 9568 §7.1;
/// the agent's codec reports the same reasons so both paths count alike.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// TTL / hop limit is not 255 (§7.1 item 1).
    Ttl = 0,
    /// Version is neither 2 nor 3, or differs from the configured one (item 2).
    Version = 1,
    /// Type is not 1 = ADVERTISEMENT (item 3).
    Type = 2,
    /// The packet is shorter than its header, or its length does not match
    /// the address count (item 4).
    Length = 3,
    /// The checksum does not verify in any accepted form (item 5).
    Checksum = 4,
    /// v3 Max Adver Int is zero, or a v2 Adver Int differs from ours (items 7, 8).
    Interval = 5,
    /// Count is zero (item 8, RFC 9568 erratum 8299).
    Count = 6,
    /// The addresses' family does not match the IP header, or the VRID is
    /// configured only for the other family.
    Family = 7,
    /// The first IPv6 address is not link-local (item 8, erratum 8300).
    /// No longer a drop (see [`VridStats::first_not_link_local`]); the
    /// counter stays for the status and metrics labels.
    LinkLocal = 8,
    /// Unicast allow-list in force and the source is not on it.
    Peer = 9,
    /// v2 Auth Type is not the configured one: 0 (none; RFC 3768 removed
    /// authentication) or 1 (simple text password, RFC 2338 §5.3.6, which
    /// keepalived still sends); any other type is dropped before the VRID
    /// lookup.
    AuthType = 10,
    /// v2 simple text password (Auth Type 1): the Authentication Data
    /// differs from the configured password (RFC 2338 §5.3.6.1).
    Auth = 11,
}

/// Number of [`DropReason`] values.
pub const DROP_REASONS: usize = 12;

impl DropReason {
    /// Every reason, in index order.
    pub const ALL: [DropReason; DROP_REASONS] = [
        DropReason::Ttl,
        DropReason::Version,
        DropReason::Type,
        DropReason::Length,
        DropReason::Checksum,
        DropReason::Interval,
        DropReason::Count,
        DropReason::Family,
        DropReason::LinkLocal,
        DropReason::Peer,
        DropReason::AuthType,
        DropReason::Auth,
    ];

    /// The label used in status JSON and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::Ttl => "ttl",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::Length => "length",
            DropReason::Checksum => "checksum",
            DropReason::Interval => "interval",
            DropReason::Count => "count",
            DropReason::Family => "family",
            DropReason::LinkLocal => "link_local",
            DropReason::Peer => "peer",
            DropReason::AuthType => "auth_type",
            DropReason::Auth => "auth",
        }
    }
}

/// Indices into the global `STATS` per-CPU array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Frames carrying IP protocol 112 on an attached interface.
    VrrpSeen = 0,
    /// Adverts that passed every check.
    AdvertsValid = 1,
    /// Valid adverts for a VRID not configured on the interface (passed).
    AdvertsForeign = 2,
    /// Events written to the ring buffer.
    EventsSent = 3,
    /// Valid adverts that only refreshed `LAST_SEEN` (no event needed).
    EventsSuppressed = 4,
    /// Events lost because the ring buffer was full.
    RingbufFull = 5,
    /// Frames to a VIP (IPv4 or IPv6 destination).
    VipPackets = 6,
    /// ARP requests and neighbour solicitations asking for a VIP.
    VipResolutions = 7,
    /// Adverts dropped (all reasons).
    AdvertsDropped = 8,
    /// `VRID_STATS` updates that failed (map full), or a `VridConfig::slot`
    /// out of range.
    MapUpdateFailed = 9,
}

/// Number of [`Stat`] values.
pub const STATS_LEN: u32 = 10;

/// Which checksum computation an advert verified under.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumForm {
    /// Over the VRRP message only: VRRPv2, and VRRPv3 IPv4 per RFC 9568.
    MessageOnly = 1,
    /// Message plus the IP pseudo-header: VRRPv3 IPv4 per RFC 5798 (keepalived,
    /// FRR), and VRRPv3 IPv6 always.
    PseudoHeader = 2,
}

/// Key of the per-interface VRID tables.
// Aligned to 8 (same size and layout): the program builds it on the stack,
// where the verifier rejects the misaligned 8-byte stores LLVM may merge
// its fields into (see vrrp-ebpf/build.rs).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VridKey {
    /// Interface the advert arrived on.
    pub ifindex: u32,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<VridKey>() == 8);

impl VridKey {
    /// A key with zeroed padding.
    pub const fn new(ifindex: u32, vrid: u8, family: u8) -> Self {
        Self {
            ifindex,
            vrid,
            family,
            _pad: [0; 2],
        }
    }
}

/// [`VridConfig::flags`]: deliver every valid advert as an event (the agent
/// is MASTER, or wants to see each one, e.g. right after a state change).
pub const VRID_F_DELIVER_ALL: u8 = 1 << 0;
/// [`VridConfig::flags`]: only sources in `PEERS` are accepted.
pub const VRID_F_PEER_FILTER: u8 = 1 << 1;

/// What the agent tells the data plane about one configured VRID.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VridConfig {
    /// Configured VRRP version, 2 or 3; others are dropped as `Version`.
    pub version: u8,
    /// `VRID_F_*` bits.
    pub flags: u8,
    /// The instance's current (effective) priority; informational.
    pub local_priority: u8,
    /// v2 only: the Auth Type adverts must carry, [`V2_AUTH_NONE`] or
    /// [`V2_AUTH_PASS`]; another one is dropped as `AuthType`.
    pub v2_auth_type: u8,
    /// v2 only: the configured Adver Int in seconds; a differing one is
    /// dropped as `Interval` (RFC 3768 §7.1).
    pub v2_adver_int: u16,
    /// Index of this VRID's entry in `LAST_SEEN` (< [`MAX_VRIDS`]), chosen
    /// by the agent, unique among configured VRIDs.
    pub slot: u16,
    /// v2 with [`V2_AUTH_PASS`]: the 8 bytes of Authentication Data adverts
    /// must carry, as two native u32 of the wire bytes (the program
    /// compares two loads); zero otherwise.
    pub v2_auth_data: [u32; 2],
}
const _: () = assert!(size_of::<VridConfig>() == 16);

/// VRRPv2 Auth Type 0: no authentication (RFC 3768).
pub const V2_AUTH_NONE: u8 = 0;
/// VRRPv2 Auth Type 1: simple text password (RFC 2338 §5.3.6.1; removed by
/// RFC 3768, still sent by keepalived's `auth_type PASS`).
pub const V2_AUTH_PASS: u8 = 1;
/// Length of the VRRPv2 Authentication Data field.
pub const V2_AUTH_DATA_LEN: usize = 8;

/// The [`VridConfig::v2_auth_data`] words of a password's 8 wire bytes.
pub const fn v2_auth_words(pass: &[u8; V2_AUTH_DATA_LEN]) -> [u32; 2] {
    [
        u32::from_ne_bytes([pass[0], pass[1], pass[2], pass[3]]),
        u32::from_ne_bytes([pass[4], pass[5], pass[6], pass[7]]),
    ]
}

/// Entries of `DROP_PEERS`: one per (`LAST_SEEN` slot, drop reason).
pub const DROP_PEERS_LEN: u32 = MAX_VRIDS * DROP_REASONS as u32;

/// `DROP_PEERS` index of a VRID's slot and a drop reason.
#[inline(always)]
pub const fn drop_peer_index(slot: u16, reason: DropReason) -> u32 {
    slot as u32 * DROP_REASONS as u32 + reason as u32
}

/// The last advert a configured VRID dropped for one reason (`DROP_PEERS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DropPeer {
    /// Sender address: 16 bytes (IPv4 in the first four) as two native u64.
    pub src: [u64; 2],
    /// `bpf_ktime_get_ns` of the last one.
    pub ts_ns: u64,
    /// Drops counted here since `key` last changed (a slot given to another
    /// VRID restarts it). Shared by all CPUs: may lose an increment.
    pub count: u64,
    /// The VRID the entry is about; the agent ignores entries of another
    /// (a slot that changed hands).
    pub key: VridKey,
}
const _: () = assert!(size_of::<DropPeer>() == 40);

/// Newest valid advert seen for a configured VRID, kept by the data plane so
/// the agent need not be woken for adverts that change nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LastSeen {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) of the newest valid advert.
    pub ts_ns: u64,
    /// Valid adverts received for this VRID since it was configured (the
    /// per-VRID "valid" counter). Shared by all CPUs: concurrent adverts for
    /// one VRID on two CPUs may lose an increment.
    pub rx_total: u64,
    /// Sender address (IPv4 in the first four bytes).
    pub src_ip: [u8; 16],
    /// Sender MAC.
    pub src_mac: [u8; 6],
    /// Advertised priority.
    pub priority: u8,
    /// Advertised version.
    pub version: u8,
    /// Raw interval field: v2 seconds, v3 centiseconds.
    pub interval: u16,
    /// Count IPvX Addr.
    pub count: u8,
    /// [`ChecksumForm`] as u8.
    pub checksum_form: u8,
    /// The VRID this slot belongs to: its interface (with `owner_vrid`,
    /// `owner_family`). Written by the agent when it gives the slot to a
    /// VRID (zeroing the rest), never by the program, which trusts a
    /// `VRID_TABLE` entry only if the slot it names is owned by the advert's
    /// VRID (see [`VridEntry`]).
    pub owner_ifindex: u32,
    /// Sum of the inter-arrival times observed in `hist`, in ns (wraps).
    pub hist_sum_ns: u64,
    /// Inter-arrival histogram of this VRID's adverts: observations (not
    /// cumulative, wrapping) per bucket of [`interarrival_bucket`]. The time
    /// between an advert and the previous one (`ts_ns`) is observed when
    /// both came from the same source and the clock moved forward; a new
    /// source starts a new series (that gap is a failover, not an
    /// inter-arrival time). Kept by the data plane because it sees every
    /// advert, the agent only the changes.
    pub hist: [u32; INTERARRIVAL_HIST_LEN],
    /// See `owner_ifindex`.
    pub owner_vrid: u8,
    /// See `owner_ifindex`.
    pub owner_family: u8,
    /// Zero.
    pub _pad1: [u8; 2],
}
const _: () = assert!(size_of::<LastSeen>() == 128);

impl LastSeen {
    /// The empty entry of a slot given to `key` (no advert yet).
    pub const fn owned_by(key: VridKey) -> Self {
        Self {
            ts_ns: 0,
            rx_total: 0,
            src_ip: [0; 16],
            src_mac: [0; 6],
            priority: 0,
            version: 0,
            interval: 0,
            count: 0,
            checksum_form: 0,
            owner_ifindex: key.ifindex,
            hist_sum_ns: 0,
            hist: [0; INTERARRIVAL_HIST_LEN],
            owner_vrid: key.vrid,
            owner_family: key.family,
            _pad1: [0; 2],
        }
    }

    /// Whether the slot belongs to `key`.
    #[inline(always)]
    pub const fn is_owned_by(&self, key: &VridKey) -> bool {
        self.owner_ifindex == key.ifindex
            && self.owner_vrid == key.vrid
            && self.owner_family == key.family
    }
}

/// One entry of `VRID_TABLE`: a configured VRID of one family, on one
/// interface.
///
/// A valid advert needs its VRID's configuration; `VRIDS` (a hash keyed by
/// interface, VRID and family) costs a hash per advert. The table, indexed
/// by [`vrid_table_index`], answers with an array lookup when
/// `ifindex` is the advert's interface. Several interfaces may configure the
/// same VRID and family: the table holds one of them (the agent's choice),
/// the others, and every miss, go to `VRIDS`.
///
/// The agent writes whole entries, but an array update is not atomic: a
/// reader racing it may see a torn entry. So the program uses an entry only
/// if the `LAST_SEEN` slot it names is owned by the advert's VRID
/// ([`LastSeen::is_owned_by`]): a torn or stale entry can then at worst
/// apply one packet's worth of a flag (deliver-all, peer filter) being
/// changed, never update another VRID's `LAST_SEEN`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VridEntry {
    /// As in `VRIDS`.
    pub cfg: VridConfig,
    /// The interface; 0: no entry.
    pub ifindex: u32,
    /// Zero.
    pub _pad: u32,
}
const _: () = assert!(size_of::<VridEntry>() == 24);

/// `VRID_TABLE` index of a VRID and family.
#[inline(always)]
pub const fn vrid_table_index(vrid: u8, family: u8) -> u32 {
    ((vrid as u32) << 1) | (family == FAMILY_V6) as u32
}

/// One valid advert, as [`LastSeen::record`] stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeenAdvert {
    /// CLOCK_MONOTONIC receive time in ns.
    pub ts_ns: u64,
    /// Sender address: its 16 bytes (IPv4 in the first four, rest zero) as
    /// two native u64 ([`SeenAdvert::src_words`]). Two words, not bytes: the
    /// XDP program builds this on the stack, where the verifier wants
    /// aligned 8-byte stores.
    pub src: [u64; 2],
    /// Sender MAC.
    pub src_mac: [u8; 6],
    /// Advertised priority.
    pub priority: u8,
    /// Advertised version.
    pub version: u8,
    /// Raw interval field: v2 seconds, v3 centiseconds.
    pub interval: u16,
    /// Count IPvX Addr.
    pub count: u8,
    /// [`ChecksumForm`] as u8.
    pub checksum_form: u8,
}

impl SeenAdvert {
    /// The [`SeenAdvert::src`] words of an address given as 16 bytes.
    pub const fn src_words(a: &[u8; 16]) -> [u64; 2] {
        let (a, b) = halves(a);
        [a, b]
    }
}

/// What [`LastSeen::record`] found out about an advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// [`event_reason`] bits: why the agent must be woken (0: it need not).
    pub reason: u8,
    /// Receive time of the advert this one replaced (0 if none), for
    /// [`AdvertEvent::prev_ts_ns`].
    pub prev_ts_ns: u64,
}

/// The two halves of a 16-byte address, for comparing without `memcmp`
/// (which the BPF target cannot call).
#[inline(always)]
const fn halves(a: &[u8; 16]) -> (u64, u64) {
    (
        u64::from_ne_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]),
        u64::from_ne_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]),
    )
}

impl LastSeen {
    /// Records a valid advert of this VRID: the one bookkeeping rule that
    /// both data planes (the XDP program and the agent's socket path) apply,
    /// so the agent's Master_Down catch-up reads the same record whichever
    /// received the adverts.
    ///
    /// - Wake-up reasons: [`event_reason::FIRST`] for the first advert, else
    ///   [`event_reason::NEW_SOURCE`], [`event_reason::PRIORITY`],
    ///   [`event_reason::INTERVAL`] for what changed since the previous one;
    ///   [`event_reason::PRIORITY_ZERO`] for a resigning master;
    ///   [`event_reason::DELIVER_ALL`] when the caller says every advert
    ///   counts. No bit: nothing the agent needs changed (suppressed).
    /// - Inter-arrival histogram ([`interarrival_bucket`]): the time since
    ///   the previous advert, observed only for the same source (a new one
    ///   starts a new series: that gap is a failover) and only when the
    ///   clock moved forward (the same instant on two CPUs is no
    ///   observation).
    /// - `rx_total` counts the advert; the rest of the entry becomes this
    ///   advert, `prev_ts_ns` returns the receive time it replaces.
    #[inline(always)]
    pub fn record(&mut self, a: &SeenAdvert, deliver_all: bool) -> Recorded {
        let mut reason = 0u8;
        let mut prev_ts_ns = 0u64;
        if self.rx_total == 0 {
            reason |= event_reason::FIRST;
        } else {
            let (s0, s1) = halves(&self.src_ip);
            if s0 != a.src[0] || s1 != a.src[1] {
                reason |= event_reason::NEW_SOURCE;
            }
            if self.priority != a.priority {
                reason |= event_reason::PRIORITY;
            }
            if self.interval != a.interval {
                reason |= event_reason::INTERVAL;
            }
            prev_ts_ns = self.ts_ns;
            if reason & event_reason::NEW_SOURCE == 0 && a.ts_ns > prev_ts_ns {
                let delta = a.ts_ns - prev_ts_ns;
                if let Some(c) = self.hist.get_mut(interarrival_bucket(delta)) {
                    *c = c.wrapping_add(1);
                }
                self.hist_sum_ns = self.hist_sum_ns.wrapping_add(delta);
            }
        }
        if a.priority == 0 {
            reason |= event_reason::PRIORITY_ZERO;
        }
        if deliver_all {
            reason |= event_reason::DELIVER_ALL;
        }
        self.ts_ns = a.ts_ns;
        self.rx_total = self.rx_total.wrapping_add(1);
        // Two 8-byte copies (LLVM makes them two stores; an array literal of
        // the bytes became sixteen byte stores on the BPF target).
        self.src_ip[..8].copy_from_slice(&a.src[0].to_ne_bytes());
        self.src_ip[8..].copy_from_slice(&a.src[1].to_ne_bytes());
        self.src_mac = a.src_mac;
        self.priority = a.priority;
        self.version = a.version;
        self.interval = a.interval;
        self.count = a.count;
        self.checksum_form = a.checksum_form;
        Recorded { reason, prev_ts_ns }
    }
}

/// Upper bounds (inclusive, ascending) of the advert inter-arrival histogram
/// buckets in ns: 5 ms .. 45 s. They cover VRRPv3 centisecond intervals and
/// VRRPv2 whole seconds up to three missed adverts of the longest common
/// interval; a last, unbounded (`+Inf`) bucket follows.
pub const INTERARRIVAL_BOUNDS_NS: [u64; 16] = [
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    1_250_000_000,
    1_500_000_000,
    2_000_000_000,
    3_000_000_000,
    5_000_000_000,
    10_000_000_000,
    45_000_000_000,
];
/// Buckets of the inter-arrival histogram: one per bound, plus `+Inf`.
pub const INTERARRIVAL_HIST_LEN: usize = INTERARRIVAL_BOUNDS_NS.len() + 1;

/// The histogram bucket of an inter-arrival time of `delta_ns`: the first
/// bound `>= delta_ns`, or the `+Inf` bucket. A binary search over the
/// constant bounds (five compares), cheap enough for the XDP fast path.
#[inline(always)]
pub const fn interarrival_bucket(delta_ns: u64) -> usize {
    const B: [u64; 16] = INTERARRIVAL_BOUNDS_NS;
    if delta_ns > B[15] {
        return 16;
    }
    let mut i = 0;
    if delta_ns > B[7] {
        i = 8;
    }
    if delta_ns > B[i + 3] {
        i += 4;
    }
    if delta_ns > B[i + 1] {
        i += 2;
    }
    if delta_ns > B[i] {
        i += 1;
    }
    i
}

/// Per-VRID counters (per CPU), including VRIDs not configured here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VridStats {
    /// Not written by the XDP program (always 0 there): valid adverts of a
    /// configured VRID are counted in `LastSeen::rx_total`, which the valid
    /// path updates anyway, saving a hash lookup per advert.
    pub valid: u64,
    /// Valid adverts for this VRID while it is not configured (passed).
    pub foreign: u64,
    /// Dropped adverts by [`DropReason`] index.
    pub drops: [u64; DROP_REASONS],
    /// IPv6 adverts accepted although their first address is not
    /// link-local (RFC 9568 §5.2.9; keepalived runs such configs with a
    /// warning): tolerated on receive so that a mixed pair does not split.
    pub first_not_link_local: u64,
}
const _: () = assert!(size_of::<VridStats>() == 8 * (DROP_REASONS + 3));

/// Key of the unicast allow-list.
// Aligned to 8 (same size and layout): the program builds it on the stack,
// where the verifier rejects the misaligned 8-byte stores LLVM may merge
// its fields into (see vrrp-ebpf/build.rs).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PeerKey {
    /// Interface the peer is reached on.
    pub ifindex: u32,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Zero.
    pub _pad: [u8; 3],
    /// Peer address (IPv4 in the first four bytes).
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<PeerKey>() == 24);

/// Traffic counters for one VIP (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VipStats {
    /// IPv4/IPv6 packets whose destination is the VIP.
    pub rx_packets: u64,
    /// Their bytes (whole frame as received, incl. L2 header).
    pub rx_bytes: u64,
    /// ARP requests / neighbour solicitations whose target is the VIP.
    pub resolutions: u64,
    /// Zero.
    pub _pad: u64,
}
const _: () = assert!(size_of::<VipStats>() == 32);

/// [`VipEntry::flags`]: two or more VIPs share this index; the program looks
/// the address up in `VIPS_V4` / `VIPS_V6` instead of comparing.
pub const VIP_F_COLLISION: u8 = 1 << 0;

/// One entry of `VIP_TABLE`, the VIP lookup on the packet path.
///
/// Every IPv4/IPv6 packet (and ARP request, neighbour solicitation) needs
/// "is the destination a VIP, and which slot": the table answers with one
/// array lookup, which the verifier inlines (a hash lookup is a helper call
/// plus hashing, ~25 ns). The index is [`vip_filter_bit`] of the address
/// ([`vip_index_v4`], [`vip_index_v6`]):
///
/// - `family == 0`: no VIP hashes here; the packet is not for a VIP.
/// - `flags & VIP_F_COLLISION`: several VIPs hash here (rare: with 1024 VIPs
///   a handful of the 65536 entries); fall back to the hash maps.
/// - otherwise the one VIP with this index: compare `addr`, count at `slot`.
///
/// The agent writes whole entries; a reader racing an update may see a torn
/// entry and miscount one packet, never more.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VipEntry {
    /// The VIP, network-order bytes (IPv4 in the first four, rest zero).
    pub addr: [u8; 16],
    /// Index into `VIP_STATS`.
    pub slot: u32,
    /// [`FAMILY_V4`], [`FAMILY_V6`], or 0 for an empty entry.
    pub family: u8,
    /// `VIP_F_*` bits.
    pub flags: u8,
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<VipEntry>() == 24);

/// [`AdvertEvent::reason`]: why the data plane woke the agent (bits).
pub mod event_reason {
    /// First advert seen for this VRID (its `LAST_SEEN` entry is empty).
    pub const FIRST: u8 = 1 << 0;
    /// Sender address differs from the previous advert.
    pub const NEW_SOURCE: u8 = 1 << 1;
    /// Priority differs from the previous advert.
    pub const PRIORITY: u8 = 1 << 2;
    /// Interval differs from the previous advert.
    pub const INTERVAL: u8 = 1 << 3;
    /// Priority 0: the master is resigning.
    pub const PRIORITY_ZERO: u8 = 1 << 4;
    /// The VRID asks for every advert (`VRID_F_DELIVER_ALL`).
    pub const DELIVER_ALL: u8 = 1 << 5;
    /// Produced by the socket receive path (no suppression there).
    pub const SOCKET: u8 = 1 << 6;
}

/// One valid advert, as the data plane hands it to the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    /// CLOCK_MONOTONIC receive time in ns (XDP: `bpf_ktime_get_ns`).
    pub ts_ns: u64,
    /// Interface it arrived on.
    pub ifindex: u32,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// 2 or 3.
    pub version: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Advertised priority.
    pub priority: u8,
    /// Count IPvX Addr as on the wire.
    pub count: u8,
    /// [`ChecksumForm`] as u8.
    pub checksum_form: u8,
    /// How many addresses were copied into `addrs`.
    pub addrs_copied: u8,
    /// [`event_reason`] bits.
    pub reason: u8,
    /// Raw interval field: v2 seconds, v3 centiseconds.
    pub interval: u16,
    /// Sender MAC.
    pub src_mac: [u8; 6],
    /// Sender address (IPv4 in the first four bytes).
    pub src_ip: [u8; 16],
    /// Zero.
    pub _pad: [u8; 4],
    /// `ts_ns` of the advert this one replaced in `LAST_SEEN` (0 if none).
    ///
    /// Suppressed adverts only refresh `LAST_SEEN`, so when a run of
    /// identical adverts A1..An ends with a different advert B, B's event
    /// overwrites the only record of An. This field carries An's receive
    /// time so the agent can account for An (and base Master_Down on it,
    /// RFC 9568 §6.4.2) before handling B.
    pub prev_ts_ns: u64,
    /// The first `addrs_copied` addresses, 4 or 16 bytes each, packed.
    pub addrs: [u8; EVENT_ADDR_BYTES],
}
const _: () = assert!(size_of::<AdvertEvent>() == 56 + EVENT_ADDR_BYTES);

/// Bit of the VIP pre-filter for an address given as its 32-bit words (one
/// for IPv4, four for IPv6, each read from network-order bytes as a native
/// u32). Both sides must use exactly this function.
#[inline(always)]
pub const fn vip_filter_bit(folded: u32) -> u32 {
    // Multiplicative hash: cheap in the kernel and spreads sequential VIPs.
    folded.wrapping_mul(0x9E37_79B1) >> (32 - 16)
}

/// Folds an IPv6 address (as four native u32 words of network-order bytes)
/// into the input of [`vip_filter_bit`].
#[inline(always)]
pub const fn fold_v6(w: [u32; 4]) -> u32 {
    w[0] ^ w[1] ^ w[2] ^ w[3]
}

/// `VIP_TABLE` index of an IPv4 address (network-order bytes).
pub const fn vip_index_v4(a: [u8; 4]) -> u32 {
    vip_filter_bit(u32::from_ne_bytes(a))
}

/// `VIP_TABLE` index of an IPv6 address (network-order bytes).
pub const fn vip_index_v6(a: [u8; 16]) -> u32 {
    vip_filter_bit(fold_v6([
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]))
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], made only of integers and byte
    // arrays, with explicit padding, so every bit pattern is valid.
    unsafe impl aya::Pod for super::VridKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VridConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LastSeen {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VridStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VipStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::AdvertEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VipEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VridEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropPeer {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interarrival_bucket_matches_a_linear_search() {
        let linear = |d: u64| {
            INTERARRIVAL_BOUNDS_NS
                .iter()
                .position(|b| d <= *b)
                .unwrap_or(INTERARRIVAL_BOUNDS_NS.len())
        };
        assert!(INTERARRIVAL_BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
        for b in INTERARRIVAL_BOUNDS_NS {
            for d in [b - 1, b, b + 1] {
                assert_eq!(interarrival_bucket(d), linear(d), "{d} ns");
            }
        }
        for d in [0, 1, u64::MAX] {
            assert_eq!(interarrival_bucket(d), linear(d), "{d} ns");
        }
        assert_eq!(interarrival_bucket(100_000_000), 4);
        assert_eq!(interarrival_bucket(100_000_001), 5);
        assert_eq!(interarrival_bucket(u64::MAX), INTERARRIVAL_HIST_LEN - 1);
    }

    const MS: u64 = 1_000_000;

    fn advert(ts_ms: u64, src: u8, priority: u8, interval: u16) -> SeenAdvert {
        let mut ip = [0u8; 16];
        ip[..4].copy_from_slice(&[192, 0, 2, src]);
        SeenAdvert {
            ts_ns: ts_ms * MS,
            src: SeenAdvert::src_words(&ip),
            src_mac: [2, 0, 0, 0, 0, src],
            priority,
            version: 3,
            interval,
            count: 1,
            checksum_form: ChecksumForm::PseudoHeader as u8,
        }
    }

    #[test]
    fn record_wakes_for_the_first_advert_and_for_changes_only() {
        let key = VridKey::new(7, 9, FAMILY_V4);
        let mut ls = LastSeen::owned_by(key);
        let r = ls.record(&advert(1000, 1, 100, 100), false);
        assert_eq!(
            r,
            Recorded {
                reason: event_reason::FIRST,
                prev_ts_ns: 0
            }
        );
        assert_eq!((ls.rx_total, ls.ts_ns, ls.priority), (1, 1000 * MS, 100));
        assert_eq!(&ls.src_ip[..4], &[192, 0, 2, 1]);
        assert_eq!(ls.src_mac, [2, 0, 0, 0, 0, 1]);
        // Unchanged: suppressed, and it hands over the replaced timestamp.
        let r = ls.record(&advert(2000, 1, 100, 100), false);
        assert_eq!(
            r,
            Recorded {
                reason: 0,
                prev_ts_ns: 1000 * MS
            }
        );
        assert_eq!((ls.rx_total, ls.ts_ns), (2, 2000 * MS));
        let cases = [
            (advert(3000, 1, 101, 100), false, event_reason::PRIORITY),
            (advert(4000, 1, 101, 200), false, event_reason::INTERVAL),
            (advert(5000, 2, 101, 200), false, event_reason::NEW_SOURCE),
            (
                advert(6000, 2, 0, 200),
                false,
                event_reason::PRIORITY | event_reason::PRIORITY_ZERO,
            ),
            (advert(7000, 2, 0, 200), false, event_reason::PRIORITY_ZERO),
            (
                advert(8000, 2, 0, 200),
                true,
                event_reason::PRIORITY_ZERO | event_reason::DELIVER_ALL,
            ),
        ];
        for (i, (a, deliver_all, want)) in cases.iter().enumerate() {
            let prev = ls.ts_ns;
            let r = ls.record(a, *deliver_all);
            assert_eq!(
                r,
                Recorded {
                    reason: *want,
                    prev_ts_ns: prev
                },
                "case {i}"
            );
        }
        assert_eq!(ls.rx_total, 8);
        assert!(ls.is_owned_by(&key), "record never touches the owner");
        assert!(!ls.is_owned_by(&VridKey::new(7, 9, FAMILY_V6)));
    }

    #[test]
    fn record_observes_inter_arrival_times_of_one_source_moving_forward() {
        let mut ls = LastSeen::default();
        ls.record(&advert(1000, 1, 100, 100), false); // first: no observation
        ls.record(&advert(2000, 1, 100, 100), false); // 1 s
        ls.record(&advert(2000, 1, 100, 100), false); // same instant: none
        ls.record(&advert(1500, 1, 100, 100), false); // clock went back: none
        ls.record(&advert(1510, 1, 100, 100), false); // 10 ms
        ls.record(&advert(1600, 2, 100, 100), false); // new source: none
        ls.record(&advert(1700, 2, 100, 100), false); // 100 ms
        let mut want = [0u32; INTERARRIVAL_HIST_LEN];
        want[interarrival_bucket(1000 * MS)] += 1;
        want[interarrival_bucket(10 * MS)] += 1;
        want[interarrival_bucket(100 * MS)] += 1;
        assert_eq!(ls.hist, want);
        assert_eq!(ls.hist_sum_ns, 1110 * MS);
        assert_eq!(ls.rx_total, 7);
    }

    #[test]
    fn vrid_table_index_is_unique_per_vrid_and_family() {
        let mut seen = [false; VRID_TABLE_LEN as usize];
        for vrid in 0..=255u8 {
            for family in [FAMILY_V4, FAMILY_V6] {
                let i = vrid_table_index(vrid, family) as usize;
                assert!(!seen[i], "VRID {vrid} family {family}");
                seen[i] = true;
            }
        }
    }

    #[test]
    fn drop_reason_table_matches_discriminants() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn vip_filter_bit_in_range() {
        assert!(vip_index_v4([192, 0, 2, 10]) < VIP_TABLE_LEN);
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[15] = 1;
        assert!(vip_index_v6(a) < VIP_TABLE_LEN);
        assert_eq!(vip_filter_bit(u32::MAX) >> 16, 0);
    }
}
