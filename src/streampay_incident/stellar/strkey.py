"""StrKey validation of Stellar addresses: ``G...`` accounts, ``M...`` muxed, ``C...`` contracts.

A StrKey is base32 of ``version byte + payload + CRC16-XModem (little-endian)``.
Validation here checks all of it: prefix, length, alphabet, version byte,
canonical padding bits and checksum, the same rules as stellar-sdk's
``StrKey.is_valid_*`` (a test holds the two to each other). It is done with
``int(..., 32)`` and ``binascii.crc_hqx`` rather than through stellar-sdk
because exports carry tens of thousands of distinct addresses and the SDK's
pure-Python base32 costs ~25 us each plus ~0.4 s to import; stellar-sdk is
still imported lazily for the muxed-account decoding in :func:`muxed_parts`.
Each distinct value is checked once and the answer cached.

The ``*_problem`` functions return ``None`` for a valid address, else a short
reason. The reason never repeats the value: the caller names the record and
field, and a mistyped value could be a secret.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable

# Bounded so a hostile input of a million distinct bad values cannot grow the cache without limit.
_CACHE_SIZE = 1 << 17

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE32 = frozenset(_ALPHABET)
_BASE32_RUN = re.compile("[A-Z2-7]*")
# int(text, 32) reads the digits 0-9a-v; map the StrKey alphabet onto them.
_AS_INT_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")
_LENGTH = {"G": 56, "M": 69, "C": 56}
_VERSION_BYTE = {"G": 6 << 3, "M": 12 << 3, "C": 2 << 3}
_SEED_VERSION_BYTE = 18 << 3
_KIND = {"G": "account ID (G...)", "M": "muxed account (M...)", "C": "contract ID (C...)"}


class StrKeyError(ValueError):
    """A value that is not the expected kind of Stellar address (the message never echoes it)."""


def decode(address: str) -> bytes | None:
    """The payload of a well-formed ``G``/``M``/``C`` StrKey, or None when it is not one.

    Checks length, alphabet, version byte, that unused trailing bits are zero
    (one text per key) and the CRC16-XModem checksum.
    """
    first = address[:1]
    if _LENGTH.get(first) != len(address) or not _BASE32.issuperset(address):
        return None
    bits = len(address) * 5
    size, spare = divmod(bits, 8)
    number = int(address.translate(_AS_INT_DIGITS), 32)
    if number & ((1 << spare) - 1):
        return None  # non-zero padding bits: another spelling of some key, not a StrKey
    raw = (number >> spare).to_bytes(size, "big")
    if raw[0] != _VERSION_BYTE[first]:
        return None
    if binascii.crc_hqx(raw[:-2], 0).to_bytes(2, "little") != raw[-2:]:
        return None
    return raw[1:-2]


def is_secret_seed(text: str) -> bool:
    """True when ``text`` is a well-formed secret seed StrKey: ``S`` + 55 base32, checksum valid.

    For finding a seed hidden in a longer run of base32 characters, where the
    shape alone cannot tell it from the rest of the run; never for accepting one.
    """
    if len(text) != 56 or text[:1] != "S" or not _BASE32.issuperset(text):
        return False
    raw = int(text.translate(_AS_INT_DIGITS), 32).to_bytes(35, "big")  # 280 bits, no padding
    return raw[0] == _SEED_VERSION_BYTE and binascii.crc_hqx(raw[:-2], 0) == int.from_bytes(
        raw[-2:], "little"
    )


def encode(kind: str, payload: bytes) -> str:
    """The StrKey of ``payload`` as a ``G``/``M``/``C`` address (``kind`` is the letter)."""
    raw = bytes([_VERSION_BYTE[kind]]) + payload
    checksum = binascii.crc_hqx(raw, 0).to_bytes(2, "little")
    return base64.b32encode(raw + checksum).decode("ascii").rstrip("=")


def base_account(address: str) -> str:
    """The ``G...`` account behind an ``M...`` muxed address; anything else unchanged."""
    if address[:1] != "M":
        return address
    payload = decode(address)
    if payload is None:
        return address
    return encode("G", payload[:32])


def muxed_address(account: str, muxed_id: int) -> str:
    """The ``M...`` address of ``account`` (a valid ``G...``) with ``muxed_id`` (uint64).

    Raises :class:`StrKeyError` for an invalid account or an id outside uint64.
    """
    if not 0 <= muxed_id < 1 << 64:
        raise StrKeyError("a muxed account id is a 64-bit unsigned integer")
    key = decode(require_account(account))
    assert key is not None  # require_account checked it
    return encode("M", key + muxed_id.to_bytes(8, "big"))


def _problem(address: str, allowed: str) -> str | None:
    """Why ``address`` is not one of the ``allowed`` kinds (by prefix letter), or None."""
    expected = " or ".join(_KIND[k] for k in allowed)
    if not address:
        return f"empty address; expected a Stellar {expected}"
    first = address[0]
    if first == "S" and len(address) == 56:
        return "looks like a secret seed (S...), not an address; never pass secrets to this tool"
    if first not in allowed:
        return f"not a Stellar {expected}"
    kind = _KIND[first]
    if len(address) != _LENGTH[first]:
        return f"a Stellar {kind} has {_LENGTH[first]} characters, this has {len(address)}"
    if not _BASE32.issuperset(address):
        return f"not a valid {kind}: characters outside base32 (A-Z, 2-7)"
    if decode(address) is None:
        return f"not a valid {kind}: bad StrKey checksum or encoding (a typo?)"
    return None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def account_problem(address: str) -> str | None:
    """None when ``address`` is a valid ed25519 account ID (``G...``), else why not."""
    return _problem(address, "G")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def destination_problem(address: str) -> str | None:
    """None when ``address`` is a valid account ID (``G...``) or muxed account (``M...``)."""
    return _problem(address, "GM")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def contract_problem(address: str) -> str | None:
    """None when ``address`` is a valid contract ID (``C...``), else why not."""
    return _problem(address, "C")


def invalid_destinations(addresses: Iterable[str]) -> set[str]:
    """The ``addresses`` :func:`destination_problem` refuses, judged many at a time.

    An export's tens of thousands of distinct ``G...`` addresses of 56
    characters (280 bits: 35 whole bytes each) are decoded as one base32 number
    and their version bytes and checksums compared a slice at a time, about a
    fifth of the cost of one call each; anything else is judged one by one.
    """
    plain: list[str] = []
    bad: set[str] = set()
    for address in addresses:
        if len(address) == 56 and address[:1] == "G":
            plain.append(address)
        elif destination_problem(address) is not None:
            bad.add(address)
    joined = "".join(plain)
    if not plain or not _BASE32_RUN.fullmatch(joined):  # some are not base32: one at a time
        return bad | {address for address in plain if destination_problem(address) is not None}
    raw = int(joined.translate(_AS_INT_DIGITS), 32).to_bytes(35 * len(plain), "big")
    version = _VERSION_BYTE["G"]
    for start, address in zip(range(0, len(raw), 35), plain, strict=True):
        key = raw[start : start + 35]
        if key[0] != version or binascii.crc_hqx(key[:33], 0) != int.from_bytes(key[33:], "little"):
            bad.add(address)
    return bad


def is_account(address: str) -> bool:
    """True for a valid ``G...`` account ID."""
    return account_problem(address) is None


def is_muxed_account(address: str) -> bool:
    """True for a valid ``M...`` muxed account."""
    return address[:1] == "M" and destination_problem(address) is None


def is_contract(address: str) -> bool:
    """True for a valid ``C...`` contract ID."""
    return contract_problem(address) is None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def address_problem(address: str) -> str | None:
    """None when ``address`` is a valid ``G...``, ``M...`` or ``C...`` address, else why not."""
    return _problem(address, "GMC")


def require_account(address: str) -> str:
    """``address`` when it is a valid ``G...`` account ID; else :class:`StrKeyError`."""
    problem = account_problem(address)
    if problem is not None:
        raise StrKeyError(problem)
    return address


def require_destination(address: str) -> str:
    """``address`` when it is a valid ``G...`` or ``M...`` address; else :class:`StrKeyError`."""
    problem = destination_problem(address)
    if problem is not None:
        raise StrKeyError(problem)
    return address


@functools.lru_cache(maxsize=_CACHE_SIZE)
def muxed_parts(address: str) -> tuple[str, int | None]:
    """``(base G... account, muxed id)`` of a G or M address (id None for a G address).

    Raises :class:`StrKeyError` for anything else. An ``M...`` address pays its
    base ``G...`` account on chain; the id only tells the recipient's
    sub-accounts apart, which is why the payout rules compare addresses as given.
    """
    require_destination(address)
    if address[0] == "G":
        return address, None
    from stellar_sdk import MuxedAccount

    muxed = MuxedAccount.from_account(address)
    return muxed.account_id, muxed.account_muxed_id
