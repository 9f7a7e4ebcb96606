"""Transaction hashes: the one pattern of a Stellar tx hash (64 hex characters).

Stored and compared lower-case inside; exports and APIs may write either case.
"""

from __future__ import annotations

import re

#: A transaction hash as written anywhere: 64 hex characters, either case.
TX_HASH = re.compile(r"[0-9a-fA-F]{64}\Z")


def is_tx_hash(text: str) -> bool:
    """True when ``text`` is exactly 64 hex characters."""
    return TX_HASH.match(text) is not None
