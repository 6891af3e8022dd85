//! Discovery modules beyond PX-1 (issue 30): each finds *where* a principal may be and
//! leaves *who* it is to AUTH ([`crate::protocol::Discovery`]).
//!
//! - [`mdns`] (feature `mdns`): Public peers announce on the LAN; any peer resolves there.
//! - [`bns`] (feature `bns`): BNS names (`alice.btc`) to their owner principal and zonefile
//!   locators, cross-checked across Stacks API providers.

#[cfg(feature = "bns")]
pub mod bns;
#[cfg(feature = "mdns")]
pub mod mdns;
