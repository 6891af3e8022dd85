"""The exception type of snap2p (raised by the Rust extension too)."""

from __future__ import annotations


class Snap2pError(Exception):
    """Raised by every failing snap2p operation.

    ``code`` is the protocol's numeric error code (the number carried by AUTH_FAIL,
    CLOSE_STREAM and ERROR messages, e.g. 4 for ERR_NOT_ALLOWED) and ``name`` its
    symbolic name. Host signers may raise it to report a specific code.
    """

    def __init__(self, message: str, code: int = 1, name: str | None = None) -> None:
        if name is None:
            from ._snap2p import error_name

            name = error_name(code)
        super().__init__(message, code, name)
        self.message = message
        self.code = code
        self.name = name

    def __str__(self) -> str:
        return f"{self.name} ({self.code}): {self.message}"
