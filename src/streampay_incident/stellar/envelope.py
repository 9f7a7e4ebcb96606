"""Transaction envelopes: hashes, memos, time bounds, operations (stellar-sdk, lazily)."""

from __future__ import annotations

from typing import Any


def inspect_transaction(envelope_xdr: str, *, network_passphrase: str) -> Any:
    raise NotImplementedError
