//! PX-1 peer exchange (spec §10): dial-by-principal through authenticated peers.
//!
//! This first cut only finds principals we are already connected to; the wire messages,
//! cache and resolution through friends of friends come with the PX-1 issue.

use std::net::SocketAddr;
use std::sync::Mutex;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::peer::{DialOptions, Peer};
use crate::policy::Visibility;
use crate::session::{Connection, Stream};

/// Per-peer PX-1 state.
#[derive(Debug)]
pub struct Px1 {
    visibility: Visibility,
    listen_addrs: Mutex<Vec<SocketAddr>>,
}

impl Px1 {
    pub fn new(visibility: Visibility) -> Self {
        Px1 {
            visibility,
            listen_addrs: Mutex::new(Vec::new()),
        }
    }

    pub fn visibility(&self) -> Visibility {
        self.visibility
    }

    pub fn add_listen_addr(&self, addr: SocketAddr) {
        self.listen_addrs.lock().unwrap().push(addr);
    }
}

pub(crate) fn serve_stream(_peer: Peer, _conn: Connection, stream: Stream) {
    stream.reset(ErrorCode::StreamRefused);
}

pub(crate) fn on_connection(_peer: Peer, _conn: Connection) {}

pub(crate) async fn dial_principal(
    peer: &Peer,
    principal: Principal,
    _opts: DialOptions,
) -> Result<Connection, Error> {
    if let Some(c) = peer
        .connections()
        .into_iter()
        .find(|c| *c.remote_principal() == principal)
    {
        return Ok(c);
    }
    Err(Error::new(
        ErrorCode::NotFound,
        format!("no locator known for {principal}"),
    ))
}
