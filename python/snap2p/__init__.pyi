"""Type stubs of snap2p (the runtime is the Rust extension snap2p._snap2p)."""

import enum
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal, Protocol

from typing_extensions import Self

__version__: str
PROTOCOL_PREFIX: str

_Visibility = Literal["public", "private", "stealth"]
_EventKind = Literal[
    "session_established",
    "session_closed",
    "handshake_failed",
    "inbound_refused",
    "dial_retry",
    "stream_opened",
    "stream_refused",
    "stream_reset",
    "keepalive_timeout",
    "px1_query",
    "rate_limited",
    "lagged",
]
_Path = str | os.PathLike[str]
_Network = Literal["mainnet", "testnet"]
_BytesLike = bytes | bytearray | memoryview
# ``Peer.create(relay=…)``: allowlist (list of principals), max_reservations, max_circuits,
# max_circuits_per_peer, circuit_max_bytes, requests_per_min (ints), circuit_max_duration
# (seconds).
_RelayOptions = dict[str, list[str] | int | float]
_StepName = Literal["cache", "px-1", "mdns", "dht", "bns"]
# ``Peer.create(resolver=…)``: steps (list of step names, in order), timeouts ({step:
# seconds}), dht (bool), dht_bootstrap (list of 'host:port'), dht_publish (bool),
# advert_cache_file (path), mdns (bool), bns_providers (list of Stacks API base URLs).
_ResolverOptions = dict[str, list[str] | dict[str, float] | bool | _Path]

class ErrorCode(enum.IntEnum):
    OK = 0
    UNSPECIFIED = 1
    VERSION_UNSUPPORTED = 2
    AUTH_FAILED = 3
    NOT_ALLOWED = 4
    INVITE_INVALID = 5
    AUTH_INVALID = 6
    AUTH_EXPIRED = 7
    HANDSHAKE_FAILED = 8
    STREAM_ID_IN_USE = 9
    STREAM_NOT_FOUND = 10
    STREAM_CLOSED = 11
    CONNECTION_CLOSED = 12
    TIMEOUT = 13
    MESSAGE_TOO_LARGE = 14
    INVALID_MESSAGE = 15
    RESOURCE_EXHAUSTED = 16
    INTERNAL = 17
    INVITE_REQUIRED = 18
    RATE_LIMITED = 19
    STREAM_REFUSED = 20
    NOT_FOUND = 21
    ALL_LOCATORS_FAILED = 22
    PRINCIPAL_MISMATCH = 23
    WALLET = 24
    INVALID_ARGUMENT = 25
    PROVIDERS_DISAGREE = 26

class Snap2pError(Exception):
    """Every failure: ``code`` is the protocol's error code, ``name`` its ``ERR_…`` name."""

    code: int
    name: str
    message: str
    def __init__(self, message: str, code: int = 1, name: str | None = None) -> None: ...

class SignRequest:
    """What a host signer is asked to sign."""

    @property
    def kind(self) -> Literal["digest", "message"]: ...
    @property
    def digest(self) -> bytes | None: ...
    @property
    def message(self) -> str | None: ...

class HostSigner(Protocol):
    """A host-side wallet: ``sign`` returns a 65-byte r || s || v signature."""

    @property
    def principal(self) -> str: ...
    def sign(self, request: SignRequest) -> bytes | Awaitable[bytes]: ...

class AliasCard:
    @property
    def principal(self) -> str: ...
    @property
    def alias(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def issued_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...

class Invite:
    @property
    def token(self) -> str | None: ...
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def one_time(self) -> bool: ...
    @property
    def uses(self) -> int: ...

class Subscription:
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...
    @property
    def active(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class PeerEvent:
    """One event (docs/EVENTS.md); ``kind`` says which fields are set, the others are None."""

    @property
    def kind(self) -> _EventKind: ...
    @property
    def at(self) -> float:
        """Wall-clock time, seconds since the Unix epoch (as ``time.time()``)."""
    @property
    def connection(self) -> str | None:
        """``Connection.id`` of the session concerned."""
    @property
    def direction(self) -> Literal["inbound", "outbound"] | None: ...
    @property
    def transport(self) -> str | None:
        """``tcp``, ``ws``, ``wss`` (``external``: a stream handed to the core)."""
    @property
    def remote_addr(self) -> str | None: ...
    @property
    def remote_principal(self) -> str | None: ...
    @property
    def code(self) -> int | None:
        """The protocol's error code (``ErrorCode``; 0 for a clean close)."""
    @property
    def reason(self) -> str | None: ...
    @property
    def duration(self) -> float | None:
        """Seconds: handshake, session age, time spent, or pause before a retry."""
    @property
    def bytes_sent(self) -> int | None: ...
    @property
    def bytes_received(self) -> int | None: ...
    @property
    def missed(self) -> int | None: ...
    @property
    def stream(self) -> int | None:
        """The stream concerned (its id within the session)."""
    @property
    def label(self) -> str | None: ...
    @property
    def count(self) -> int | None:
        """``px1_query``: how many items the answer held."""
    @property
    def hs2(self) -> bool | None:
        """``session_established``: whether the handshake was hs2 (PROTOCOL.md §5.8) or v1."""

class EventSubscription:
    """``async for event in peer.events()``; ``close()`` or ``async with`` stops it."""

    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> PeerEvent: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class PeerStats:
    @property
    def sessions_open(self) -> int: ...
    @property
    def sessions_inbound(self) -> int: ...
    @property
    def sessions_outbound(self) -> int: ...
    @property
    def sessions_hs2(self) -> int:
        """Of those, the sessions whose handshake was hs2 (PROTOCOL.md §5.8); the others ran v1."""
    @property
    def handshakes_failed(self) -> dict[int, int]:
        """Failed handshakes (either direction) by error code."""
    @property
    def inbound_refused(self) -> dict[int, int]:
        """Inbound connections turned away before any handshake, by error code."""
    @property
    def pending_handshakes(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...
    @property
    def bytes_received(self) -> int: ...

class ReservationInfo:
    """A reservation this peer keeps on a relay (``listen('relay://host:port')``)."""

    @property
    def relay(self) -> str:
        """The relay, ``'relay://host:port'``."""
    @property
    def active(self) -> bool:
        """Whether the reservation's session is up now."""
    @property
    def observed(self) -> str | None:
        """This peer's ``'ip:port'`` as the relay sees it (what a hole punch aims at)."""

class RelayStats:
    """What this peer serves as a relay now (all 0 unless it serves)."""

    @property
    def reservations(self) -> int: ...
    @property
    def circuits(self) -> int:
        """Circuits open now."""
    @property
    def circuits_total(self) -> int:
        """Circuits opened since the peer started."""
    @property
    def spliced_total(self) -> int:
        """Of those, circuits spliced onto plain connections to the relay (PROTOCOL.md §32.3)."""
    @property
    def bytes_forwarded(self) -> int:
        """Bytes spliced through circuits, both directions."""
    @property
    def refused(self) -> int:
        """Requests refused (admission, limits, rate)."""

class ConnectionStats:
    """One session's counters; times in seconds."""

    @property
    def bytes_sent(self) -> int: ...
    @property
    def bytes_received(self) -> int: ...
    @property
    def frames_sent(self) -> int:
        """Frames written, handshake included."""
    @property
    def frames_received(self) -> int: ...
    @property
    def open_streams(self) -> int: ...
    @property
    def streams_opened(self) -> int:
        """Streams opened since the session began, either side."""
    @property
    def rtt(self) -> float | None: ...
    @property
    def handshake(self) -> float | None: ...
    @property
    def hs2(self) -> bool:
        """Whether the handshake was hs2, of two round trips (PROTOCOL.md §5.8), or v1's three."""
    @property
    def age(self) -> float: ...
    @property
    def transport(self) -> str:
        """The current path: ``tcp``, ``ws``, ``wss``, ``relay``, ``punch`` (hole-punched), …"""
    @property
    def remote_addr(self) -> str | None: ...
    @property
    def local_addr(self) -> str | None: ...

class Stream:
    @property
    def id(self) -> int: ...
    @property
    def label(self) -> str | None: ...
    async def read(self, n: int = -1) -> bytes: ...
    async def readinto(self, buf: bytearray | memoryview) -> int: ...
    def write(self, data: _BytesLike) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...
    def reset(self, code: int = 1) -> None: ...
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> bytes: ...

class StreamIterator:
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Stream: ...

class Connection:
    @property
    def remote_principal(self) -> str: ...
    @property
    def remote_alias(self) -> AliasCard | None: ...
    @property
    def remote_addr(self) -> str | None: ...
    @property
    def local_addr(self) -> str | None: ...
    @property
    def session_id(self) -> bytes: ...
    @property
    def id(self) -> str:
        """First 8 bytes of the session id, hex: the ``connection`` of its events."""
    def stats(self) -> ConnectionStats: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def close_reason(self) -> Snap2pError | None: ...
    async def open_stream(self, label: str | None = None) -> Stream: ...
    async def present_grant(self, grant: bytes) -> None: ...
    async def accept_stream(self) -> Stream: ...
    def streams(self) -> StreamIterator: ...
    def on_stream(self, callback: Callable[[Stream], Any]) -> Subscription: ...
    def close(self, code: int = 0, reason: str = "") -> None: ...
    async def wait_closed(self) -> int: ...

class ConnectionIterator:
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Connection: ...

class LocalWallet:
    @staticmethod
    def generate(network: _Network = "mainnet") -> LocalWallet: ...
    @staticmethod
    def from_mnemonic(
        mnemonic: str, account_index: int = 0, network: _Network = "mainnet"
    ) -> LocalWallet: ...
    @property
    def principal(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def network(self) -> _Network: ...
    @property
    def account_index(self) -> int: ...
    @property
    def public_key(self) -> bytes: ...
    def mnemonic(self) -> str: ...
    def sign_digest(self, digest: bytes) -> bytes: ...
    def sign_message(self, message: str) -> bytes: ...
    async def issue_grant(
        self,
        holder: str,
        labels: list[str],
        ttl_secs: int = 2592000,
        delegable: bool = False,
        parent: bytes | None = None,
        form: str = "message",
    ) -> bytes: ...
    async def issue_grant_with_nonce(
        self,
        holder: str,
        labels: list[str],
        issued_at: int,
        ttl_secs: int,
        nonce: bytes,
        delegable: bool = False,
        parent: bytes | None = None,
        form: str = "message",
    ) -> bytes:
        """``issue_grant`` at ``issued_at`` with a 32-byte ``nonce``: same inputs, same bytes."""

class GrantInfo:
    """A decoded PermissionGrant (``decode_grant``): its fields and what the core derives."""

    @property
    def id(self) -> str:
        """The grant id (64 hex characters), the key ``revoke_grant`` takes."""
    @property
    def version(self) -> int: ...
    @property
    def issuer(self) -> str: ...
    @property
    def holder(self) -> str: ...
    @property
    def labels(self) -> list[str]: ...
    @property
    def delegable(self) -> bool: ...
    @property
    def parent(self) -> bytes | None:
        """The parent grant's wire bytes (a delegated grant), else ``None``."""
    @property
    def issued_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def form(self) -> str:
        """``"message"`` or ``"digest"``."""
    @property
    def signature(self) -> bytes: ...
    @property
    def signing_bytes(self) -> bytes:
        """The canonical CBOR the signature covers."""
    @property
    def message_text(self) -> str: ...
    @property
    def signed_digest(self) -> bytes: ...
    @property
    def wire(self) -> bytes:
        """The grant re-encoded."""

class ResolvedLocator:
    """One locator ``Peer.resolve`` found."""

    @property
    def locator(self) -> str: ...
    @property
    def verified(self) -> bool:
        """Listed by a live signed advert of the principal (checked); ``False``: a hint."""

class ResolveStep:
    """What one step of the resolver chain did."""

    @property
    def name(self) -> str: ...
    @property
    def outcome(self) -> Literal["found", "not_found", "timeout", "error", "skipped"]: ...
    @property
    def duration(self) -> float:
        """Seconds."""
    @property
    def count(self) -> int:
        """Locators found (0 unless ``found``)."""
    @property
    def code(self) -> int:
        """Its error's code when it failed, else 0."""
    @property
    def error(self) -> str | None: ...

class ResolveReport:
    """What ``Peer.resolve`` found and how (the core's ResolveReport)."""

    @property
    def principal(self) -> str:
        """``stacks:SP…`` (the owner, when a BNS name was resolved)."""
    @property
    def name(self) -> str | None:
        """The BNS name resolved first, lower-cased."""
    @property
    def answered_by(self) -> str | None: ...
    @property
    def locators(self) -> list[ResolvedLocator]: ...
    @property
    def steps(self) -> list[ResolveStep]: ...
    @property
    def duration(self) -> float:
        """Seconds."""

class AdvertInfo:
    """A signed endpoint advert's fields (docs/PROTOCOL.md §34)."""

    @property
    def principal(self) -> str: ...
    @property
    def node_key(self) -> bytes: ...
    @property
    def seq(self) -> int: ...
    @property
    def issued_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def locators(self) -> list[str]: ...
    @property
    def attestation(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def signing_input(self) -> bytes: ...
    @property
    def encoded(self) -> bytes: ...

class WalletInfo:
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def network(self) -> _Network: ...
    @property
    def created_at(self) -> str: ...

class WalletStore:
    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, scrypt_log_n: int | None = None
    ) -> None: ...
    @property
    def path(self) -> str: ...
    def create(
        self, name: str, password: str, network: _Network = "mainnet"
    ) -> tuple[WalletInfo, LocalWallet]: ...
    def restore(
        self, name: str, mnemonic: str, password: str, network: _Network = "mainnet"
    ) -> tuple[WalletInfo, LocalWallet]: ...
    def list(self) -> list[WalletInfo]: ...
    def unlock(self, name_or_id: str, password: str) -> LocalWallet: ...
    def rename(self, name_or_id: str, new_name: str) -> WalletInfo: ...
    def delete(self, name_or_id: str) -> None: ...
    def export(self, name_or_id: str, password: str) -> str: ...

class Peer:
    @staticmethod
    async def create(
        *,
        visibility: _Visibility = "public",
        allowlist: list[str] | None = None,
        alias: str | tuple[str, str] | None = None,
        signer: HostSigner | None = None,
        wallet: LocalWallet | None = None,
        network: _Network = "mainnet",
        px1: bool | None = None,
        allowlist_gate: bool | None = None,
        rekey_after_bytes: int | None = None,
        rekey_after_frames: int | None = None,
        rekey_interval: float | None = None,
        tls_cert_file: _Path | None = None,
        tls_key_file: _Path | None = None,
        tls_root_file: _Path | None = None,
        external_locators: list[str] | None = None,
        relay: bool | _RelayOptions | None = None,
        compat: Literal["ts", "standard"] | None = None,
        resolver: _ResolverOptions | None = None,
        hs2: bool | None = None,
    ) -> Peer: ...
    @property
    def principal(self) -> str: ...
    @property
    def node_public_key(self) -> bytes: ...
    @property
    def visibility(self) -> _Visibility: ...
    @property
    def listen_addrs(self) -> list[str]: ...
    @property
    def listen_locators(self) -> list[str]: ...
    @property
    def reachable_locators(self) -> list[str]: ...
    @property
    def allowlist(self) -> list[str]: ...
    @property
    def alias(self) -> AliasCard | None: ...
    @property
    def is_closed(self) -> bool: ...
    async def listen(self, addr: int | str) -> str: ...
    async def dial(
        self, target: str, *, invite: str | bytes | None = None, expect: str | None = None
    ) -> Connection: ...
    async def accept(self) -> Connection | None: ...
    def connections(self) -> ConnectionIterator: ...
    def on_connection(self, callback: Callable[[Connection], Any]) -> Subscription: ...
    def open_connections(self) -> list[Connection]: ...
    def events(self) -> EventSubscription: ...
    def stats(self) -> PeerStats: ...
    async def resolve(self, target: str) -> ResolveReport: ...
    def relay_reservations(self) -> list[ReservationInfo]: ...
    def relay_stats(self) -> RelayStats: ...
    async def hole_punch(self, conn: Connection) -> Connection: ...
    def create_invite(self, ttl: int | None = None, one_time: bool = False) -> Invite: ...
    def list_invites(self) -> list[Invite]: ...
    def revoke_invite(self, token_or_id: str) -> bool: ...
    def set_permissions(self, rules: str | None) -> None: ...
    def add_grant_owner(self, principal: str) -> None: ...
    def revoke_grant(self, id_or_principal: str) -> None: ...
    def allow(self, principal: str) -> None: ...
    def disallow(self, principal: str) -> None: ...
    async def set_alias(self, alias: str, display_name: str | None = None) -> AliasCard: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

def error_name(code: int) -> str: ...
def parse_principal(principal: str) -> str: ...
def principal_from_public_key(public_key: bytes, network: _Network = "mainnet") -> str: ...
def c32_address(version: int, hash160: bytes) -> str: ...
def c32_address_decode(address: str) -> tuple[int, bytes]: ...
def c32_encode(data: bytes) -> str: ...
def stacks_message_hash(message: str) -> bytes: ...
def verify_signature(digest: bytes, signature: bytes, principal: str) -> None: ...
def normalize_alias(alias: str) -> str: ...
def decode_grant(wire: bytes) -> GrantInfo: ...
def decode_advert(wire: bytes) -> AdvertInfo: ...
def verify_advert(
    wire: bytes, now: int, *, node_key: bytes | None = None, principal: str | None = None
) -> AdvertInfo: ...
def issue_advert(
    node_seed: bytes,
    attestation: bytes,
    *,
    locators: list[str],
    seq: int,
    issued_at: int,
    ttl_secs: int,
) -> bytes: ...
def verify_grant(wire: bytes, now: int) -> str | None: ...
async def issue_grant(
    signer: HostSigner,
    holder: str,
    labels: list[str],
    ttl_secs: int | None = None,
    delegable: bool = False,
    parent: bytes | None = None,
) -> bytes:
    """A grant signed by a host signer (in its ``signature_form``): the wire bytes."""

def node_grant_decision(
    wire: bytes, owners: list[str], revoked: list[str], presenter: str, now: int
) -> list[str]: ...
