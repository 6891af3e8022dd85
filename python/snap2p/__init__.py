"""snap2p: Stacks-native peer-to-peer sessions and streams, for asyncio.

A :class:`Peer` is a Stacks principal (``stacks:SP…``) with a node key. Peers dial each
other over an encrypted, mutually authenticated session (:class:`Connection`) carrying
any number of byte streams (:class:`Stream`). Every failure raises :class:`Snap2pError`
with the protocol's numeric ``code`` and its ``name``.
"""

from __future__ import annotations

import enum as _enum
from collections.abc import Awaitable as _Awaitable
from typing import Protocol as _Protocol

from ._errors import Snap2pError
from ._snap2p import (
    PROTOCOL_PREFIX,
    AdvertInfo,
    AliasCard,
    Connection,
    ConnectionIterator,
    ConnectionStats,
    EventSubscription,
    GrantInfo,
    Invite,
    LocalWallet,
    Peer,
    PeerEvent,
    PeerStats,
    RelayStats,
    ReservationInfo,
    ResolvedLocator,
    ResolveReport,
    ResolveStep,
    SignRequest,
    Stream,
    StreamIterator,
    Subscription,
    WalletInfo,
    WalletStore,
    __version__,
    _error_codes,
    c32_address,
    c32_address_decode,
    c32_encode,
    decode_advert,
    decode_grant,
    error_name,
    issue_advert,
    issue_grant,
    node_grant_decision,
    normalize_alias,
    parse_principal,
    principal_from_public_key,
    stacks_message_hash,
    verify_advert,
    verify_grant,
    verify_signature,
)

#: The protocol's error codes: ``ErrorCode.NOT_ALLOWED == 4`` (name ``ERR_NOT_ALLOWED``).
ErrorCode = _enum.IntEnum("ErrorCode", _error_codes(), module=__name__)  # type: ignore[misc]


class HostSigner(_Protocol):
    """What ``Peer.create(signer=…)`` takes: a wallet that signs outside this process.

    ``principal`` is ``stacks:SP…`` (or a bare address); ``sign`` may be a plain method
    (run on a worker thread) or ``async def`` (run on the event loop that created the peer)
    and returns a 65-byte recoverable signature r || s || v. An optional
    ``signature_form`` attribute, ``"digest"`` (default) or ``"message"``, says which
    request kind the wallet handles.
    """

    @property
    def principal(self) -> str: ...

    def sign(self, request: SignRequest) -> bytes | _Awaitable[bytes]: ...


__all__ = [
    "PROTOCOL_PREFIX",
    "AdvertInfo",
    "AliasCard",
    "Connection",
    "ConnectionIterator",
    "ConnectionStats",
    "ErrorCode",
    "EventSubscription",
    "GrantInfo",
    "HostSigner",
    "Invite",
    "LocalWallet",
    "Peer",
    "PeerEvent",
    "PeerStats",
    "RelayStats",
    "ReservationInfo",
    "ResolveReport",
    "ResolveStep",
    "ResolvedLocator",
    "SignRequest",
    "Snap2pError",
    "Stream",
    "StreamIterator",
    "Subscription",
    "WalletInfo",
    "WalletStore",
    "__version__",
    "c32_address",
    "c32_address_decode",
    "c32_encode",
    "decode_advert",
    "decode_grant",
    "error_name",
    "issue_advert",
    "issue_grant",
    "node_grant_decision",
    "normalize_alias",
    "parse_principal",
    "principal_from_public_key",
    "stacks_message_hash",
    "verify_advert",
    "verify_grant",
    "verify_signature",
]
