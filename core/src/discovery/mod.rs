//! Finding a principal without a mutual friend (issue 30). Each module finds *where* a
//! principal may be and leaves *who* it is to AUTH ([`crate::protocol::Discovery`]):
//!
//! - [`advert`]: signed endpoint advertisements and their durable cache;
//! - [`dht`] (feature `dht`): the BitTorrent Mainline DHT;
//! - [`mdns`] (feature `mdns`): Public peers announce on the LAN; any peer resolves there;
//! - [`bns`] (feature `bns`): BNS names (`alice.btc`) to their owner principal and zonefile
//!   locators, cross-checked across Stacks API providers;
//! - [`chain`]: the resolver chain a [`crate::Peer`] runs in [`crate::Peer::resolve`]
//!   (cache → PX-1 → mDNS → DHT → BNS).
//!
//! These modules use `px1`, `protocol` and below, never `peer` (docs/ARCHITECTURE.md).

pub mod advert;
#[cfg(feature = "bns")]
pub mod bns;
pub mod chain;
#[cfg(feature = "dht")]
pub mod dht;
#[cfg(feature = "mdns")]
pub mod mdns;

pub use advert::{
    AdvertCache, AdvertReject, EndpointAdvert, Stored, ADVERT_DOMAIN, DEFAULT_ADVERT_TTL_SECS,
    MAX_ADVERT_LEN, MAX_LOCATORS,
};
pub use chain::{ResolveReport, ResolverConfig, ResolverStep, StepOutcome, StepReport};
#[cfg(feature = "dht")]
pub use dht::{AdvertLookup, DhtConfig, DhtDiscovery, DhtResolution, PublishReport};
