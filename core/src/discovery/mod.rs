//! Finding a principal without a mutual friend (issue 30): signed endpoint
//! advertisements and their durable cache ([`advert`]), the BitTorrent Mainline DHT module
//! ([`dht`], feature `dht`), and the resolver chain a [`crate::Peer`] runs in
//! [`crate::Peer::resolve`] ([`chain`]: cache → PX-1 → mDNS → DHT → BNS).
//!
//! These modules use `px1`, `protocol` and below, never `peer` (docs/ARCHITECTURE.md).

pub mod advert;
pub mod chain;
#[cfg(feature = "dht")]
pub mod dht;

pub use advert::{
    AdvertCache, AdvertReject, EndpointAdvert, Stored, ADVERT_DOMAIN, DEFAULT_ADVERT_TTL_SECS,
    MAX_ADVERT_LEN, MAX_LOCATORS,
};
pub use chain::{ResolveReport, ResolverConfig, ResolverStep, StepOutcome, StepReport};
#[cfg(feature = "dht")]
pub use dht::{AdvertLookup, DhtConfig, DhtDiscovery, DhtResolution, PublishReport};
