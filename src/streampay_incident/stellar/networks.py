"""Network passphrases. The wrong passphrase silently gives another tx hash, so it is required."""

from __future__ import annotations

PUBLIC = "Public Global Stellar Network ; September 2015"
TESTNET = "Test SDF Network ; September 2015"
FUTURENET = "Test SDF Future Network ; October 2022"
STANDALONE = "Standalone Network ; February 2017"

NAMED: dict[str, str] = {
    "public": PUBLIC,
    "pubnet": PUBLIC,
    "mainnet": PUBLIC,
    "testnet": TESTNET,
    "futurenet": FUTURENET,
    "standalone": STANDALONE,
}

#: The networks a settlement's envelope is also hashed under, to tell a wrong ``--network``.
WELL_KNOWN: tuple[tuple[str, str], ...] = (
    ("public", PUBLIC),
    ("testnet", TESTNET),
    ("futurenet", FUTURENET),
)


def resolve_network(name_or_passphrase: str) -> str:
    """``public`` / ``testnet`` / ``futurenet`` / ``standalone``, or a full passphrase as given."""
    text = name_or_passphrase.strip()
    return NAMED.get(text.lower(), text)


def network_name(passphrase: str) -> str:
    """A short name for a known passphrase, else the passphrase itself."""
    for name in ("public", "testnet", "futurenet", "standalone"):
        if NAMED[name] == passphrase:
            return name
    return passphrase
