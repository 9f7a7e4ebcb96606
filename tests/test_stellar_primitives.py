"""stellar/: the one StrKey, tx-hash and muxed-address code, held to stellar-sdk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stellar_sdk import MuxedAccount, StrKey

from streampay_incident.checks.escrow import base_account as escrow_base_account
from streampay_incident.stellar import strkey
from streampay_incident.stellar.hashes import is_tx_hash

ACCOUNT = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
CONTRACT = "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP"

keys = st.binary(min_size=32, max_size=32)
ids = st.integers(min_value=0, max_value=(1 << 64) - 1)


@given(keys)
def test_encode_matches_stellar_sdk(key: bytes) -> None:
    assert strkey.encode("G", key) == StrKey.encode_ed25519_public_key(key)
    assert strkey.encode("C", key) == StrKey.encode_contract(key)
    assert strkey.decode(strkey.encode("G", key)) == key


@given(keys, ids)
def test_muxed_address_and_its_base_match_stellar_sdk(key: bytes, muxed_id: int) -> None:
    account = StrKey.encode_ed25519_public_key(key)
    muxed = strkey.muxed_address(account, muxed_id)
    assert muxed == MuxedAccount(account, muxed_id).account_muxed
    assert strkey.base_account(muxed) == account
    assert strkey.muxed_parts(muxed) == (account, muxed_id)


def _spoiled(address: str, how: int, where: int) -> str:
    """``address`` with one character changed ``how`` (a typo, lower case, a non-base32
    digit, an underscore int() would skip, a space), or cut short."""
    at = where % len(address)
    swaps = {
        0: "A" if address[at] != "A" else "B",
        1: address[at].lower(),
        2: "1",
        3: "_",
        4: " ",
    }
    if how == 5:
        return address[:at]
    return address[:at] + swaps[how] + address[at + 1 :]


@given(
    st.lists(
        st.tuples(keys, st.integers(0, 7), st.integers(0, 100), st.integers(0, 2**64 - 1)),
        max_size=12,
    ),
    st.lists(st.text(max_size=70), max_size=3),
)
def test_invalid_destinations_judges_as_destination_problem_does(
    cases: list[tuple[bytes, int, int, int]], others: list[str]
) -> None:
    """The batch judgement (one base32 number for many G addresses) refuses exactly what
    ``destination_problem`` refuses, whatever the mix of valid, spoiled and muxed values."""
    addresses = list(others)
    for key, how, where, muxed_id in cases:
        account = strkey.encode("G", key)
        if how == 6:
            addresses.append(account)
        elif how == 7:
            addresses.append(strkey.muxed_address(account, muxed_id))
        else:
            addresses.append(_spoiled(account, how, where))
    expected = {a for a in addresses if strkey.destination_problem(a) is not None}
    assert strkey.invalid_destinations(addresses) == expected
    assert strkey.invalid_destinations(reversed(addresses)) == expected


def test_base_account_leaves_anything_else_alone() -> None:
    assert escrow_base_account is strkey.base_account
    assert strkey.base_account(ACCOUNT) == ACCOUNT
    assert strkey.base_account(CONTRACT) == CONTRACT
    broken = strkey.muxed_address(ACCOUNT, 7)[:-1] + "A"
    assert strkey.base_account(broken) == broken


def test_muxed_address_refuses_ids_outside_uint64() -> None:
    with pytest.raises(strkey.StrKeyError, match="64-bit"):
        strkey.muxed_address(ACCOUNT, 1 << 64)
    with pytest.raises(strkey.StrKeyError):
        strkey.muxed_address(CONTRACT, 1)


def test_address_problem_takes_every_kind_with_a_checksum() -> None:
    assert strkey.address_problem(ACCOUNT) is None
    assert strkey.address_problem(CONTRACT) is None
    assert strkey.address_problem(strkey.muxed_address(ACCOUNT, 1)) is None
    assert strkey.address_problem(ACCOUNT[:-1] + "A") is not None
    assert strkey.address_problem("X" * 56) is not None


def test_tx_hash_pattern() -> None:
    assert is_tx_hash("ab" * 32) and is_tx_hash("AB" * 32)
    assert not is_tx_hash("ab" * 32 + "\n") and not is_tx_hash("g" * 64)


# --- one int-or-string reader, one unix-time conversion --------------------------------------


def test_as_int_reads_numbers_and_decimal_strings() -> None:
    from streampay_incident.observations import as_int

    assert as_int(5) == 5 and as_int(" 12 ") == 12 and as_int("-3") == -3
    assert as_int("-3", signed=False) is None and as_int(-3, signed=False) == -3
    assert as_int(True) is None and as_int("1.5") is None and as_int("--1") is None


def test_from_unix_says_when_out_of_range() -> None:
    from datetime import UTC, datetime

    from streampay_incident.timefmt import from_unix, parse_unix_or_rfc3339

    assert from_unix(0) == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="out of range"):
        from_unix(10**20)
    with pytest.raises(ValueError, match="out of range"):
        parse_unix_or_rfc3339("9" * 20)


def test_chain_payment_times_and_integers() -> None:
    from streampay_incident.io.payment_records import RecordProblem, _int, _time

    assert _time("1700000000", "closed_at").year == 2023
    with pytest.raises(RecordProblem, match="out of range"):
        _time("9" * 20, "closed_at")
    assert _int("42", "ledger") == 42
    with pytest.raises(RecordProblem, match="not an integer"):
        _int("-1", "ledger")
