"""One chain payment record at a time: Horizon payment records and RPC transfer events.

The field readers and the two record shapes of
:mod:`streampay_incident.io.chain_payments` (which reads whole documents and
files and says what they hold). A bad field raises :class:`RecordProblem`.
Just over 400 lines and kept whole: the field readers serve both record shapes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..amounts import AmountError, parse_stroops
from ..errors import shown
from ..model import NATIVE, NO_MEMO, PAYMENT_KINDS, Asset, ChainPayment, Memo, PaymentKind
from ..observations import as_int
from ..stellar.hashes import TX_HASH
from ..stellar.strkey import StrKeyError, address_problem, muxed_address
from ..timefmt import from_unix, in_range, parse_rfc3339
from .payout_fields import parse_asset

_HASH = TX_HASH
_ASSET_CODE = re.compile(r"[A-Za-z0-9]{1,12}\Z")

# Every payment kind but SAC transfers, which come from RPC events, not Horizon records.
HORIZON_PAYMENT_TYPES = frozenset(PAYMENT_KINDS) - {"sac_transfer", "sac_burn", "sac_clawback"}
# Horizon's old name for strict-receive path payments (before protocol 12).
_TYPE_ALIASES = {"path_payment": "path_payment_strict_receive"}


class RecordProblem(ValueError):
    """One thing wrong with one record: the field and what is wrong."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- small field readers -------------------------------------------------------------------


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise RecordProblem(field, "missing or not a string")
    return value


def _account(record: Mapping[str, Any], field: str) -> str:
    value = _text(record, field)
    if address_problem(value) is not None:
        raise RecordProblem(field, "not a G..., M... or C... address")
    return value


def _hash(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HASH.match(value):
        raise RecordProblem(field, "not a 64-hex transaction hash")
    return value.lower()


def _amount(record: Mapping[str, Any], field: str) -> int:
    value = record.get(field)
    if not isinstance(value, str):
        raise RecordProblem(field, "missing or not a decimal string")
    try:
        return parse_stroops(value, allow_zero=True)
    except AmountError as exc:
        raise RecordProblem(field, str(exc)) from None


def _time(value: Any, field: str) -> datetime:
    seconds = as_int(value, signed=False)
    if seconds is not None:
        try:
            return in_range(from_unix(seconds))
        except ValueError as exc:
            raise RecordProblem(field, str(exc)) from None
    if not isinstance(value, str):
        raise RecordProblem(field, "missing or not a timestamp")
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise RecordProblem(field, str(exc)) from None


def _int(value: Any, field: str) -> int:
    # RPC numbers arrive as JSON numbers or, from older servers, as strings.
    number = as_int(value, signed=False)
    if number is None:
        raise RecordProblem(field, "not an integer")
    return number


def _horizon_asset(record: Mapping[str, Any], prefix: str = "") -> Asset:
    kind = record.get(f"{prefix}asset_type")
    if kind == "native":
        return NATIVE
    if kind in ("credit_alphanum4", "credit_alphanum12"):
        code = record.get(f"{prefix}asset_code")
        issuer = record.get(f"{prefix}asset_issuer")
        if not isinstance(code, str) or not _ASSET_CODE.match(code):
            raise RecordProblem(f"{prefix}asset_code", "missing or not an asset code")
        if not isinstance(issuer, str) or address_problem(issuer) is not None:
            raise RecordProblem(f"{prefix}asset_issuer", "missing or not an issuer account")
        return Asset(code, issuer)
    raise RecordProblem(f"{prefix}asset_type", "missing or not native/credit_alphanum4/12")


def _sep11_asset(text: str) -> Asset:
    """``native`` or ``CODE:ISSUER`` (the asset topic of a Stellar Asset Contract event)."""
    if text == "native":
        return NATIVE
    try:
        return parse_asset(text)
    except ValueError:
        message = f"asset topic {shown(text)} is not native or CODE:ISSUER"
        raise RecordProblem("topic", message) from None


def _memo(tx: Mapping[str, Any]) -> Memo:
    kind = tx.get("memo_type", "none")
    value = tx.get("memo")
    try:
        if kind == "text":
            raw = tx.get("memo_bytes")
            # memo_bytes is the exact value; memo is UTF-8-scrubbed by Horizon.
            if isinstance(raw, str):
                return Memo("text", base64.b64decode(raw, validate=True))
            return Memo("text", (value or "").encode("utf-8"))
        if kind == "id" and isinstance(value, str) and value.isdigit() and len(value) <= 20:
            return Memo("id", int(value))
        if kind in ("hash", "return") and isinstance(value, str):
            return Memo(kind, base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise RecordProblem("transaction.memo", f"not a valid {kind} memo") from None
    if kind in ("none", None):
        return NO_MEMO
    raise RecordProblem("transaction.memo_type", f"unexpected memo {shown(kind)}")


def _muxed(base: str, muxed_id: int) -> str:
    """The ``M...`` address of ``base`` with ``muxed_id``."""
    try:
        return muxed_address(base, muxed_id)
    except StrKeyError as exc:
        raise RecordProblem("destination_muxed_id", str(exc)) from None


# --- Horizon -------------------------------------------------------------------------------


def chain_payments_from_horizon(record: Mapping[str, Any]) -> list[ChainPayment]:
    """The payments one Horizon operation record describes (zero, one, or several).

    Raises :class:`RecordProblem` naming the bad field. Non-payment operation
    types give ``[]``. A record without ``transaction_successful`` counts as
    successful: Horizon lists failed transactions only with ``include_failed``,
    and then always says so.
    """
    op_type = record.get("type")
    if not isinstance(op_type, str):
        raise RecordProblem("type", "missing operation type")
    op_type = _TYPE_ALIASES.get(op_type, op_type)
    if op_type not in HORIZON_PAYMENT_TYPES:
        return []
    tx_hash = _hash(record.get("transaction_hash"), "transaction_hash")
    op_id = record.get("id") or record.get("paging_token")
    op_id = str(op_id) if op_id is not None else None
    tx = record.get("transaction")
    tx = tx if isinstance(tx, Mapping) else {}
    successful = record.get("transaction_successful", tx.get("successful", True))
    if not isinstance(successful, bool):
        raise RecordProblem("transaction_successful", "not true/false")
    hashes = [tx_hash]
    for field, value in (
        ("transaction.hash", tx.get("hash")),
        (
            "transaction.fee_bump_transaction.hash",
            (tx.get("fee_bump_transaction") or {}).get("hash"),
        ),
        ("transaction.inner_transaction.hash", (tx.get("inner_transaction") or {}).get("hash")),
    ):
        if value is not None:
            h = _hash(value, field)
            if h not in hashes:
                hashes.append(h)
    closed = record.get("created_at", tx.get("created_at"))
    closed_at = _time(closed, "created_at") if closed is not None else None
    ledger: int | None = None
    if tx.get("ledger") is not None:
        ledger = _int(tx.get("ledger"), "transaction.ledger")
    elif op_id is not None and op_id.isdigit() and len(op_id) <= 20:
        ledger = int(op_id) >> 32  # a Horizon operation id is a TOID: ledger << 32 | ...
    common: dict[str, Any] = {
        "tx_hash": tx_hash,
        "hashes": tuple(hashes),
        "successful": successful,
        "memo": _memo(tx) if tx else NO_MEMO,
        "ledger": ledger,
        "closed_at": closed_at,
    }
    kind: PaymentKind
    if op_type == "create_account":
        return [
            ChainPayment(
                from_account=_account(record, "funder"),
                to_account=_account(record, "account"),
                asset=NATIVE,
                amount=_amount(record, "starting_balance"),
                kind="create_account",
                operation_id=op_id,
                **common,
            )
        ]
    if op_type == "account_merge":
        destination = record.get("into_muxed") or _account(record, "into")
        return [
            ChainPayment(
                from_account=_account(record, "account"),
                to_account=destination,
                asset=NATIVE,
                # Horizon does not put the merged balance in the payment record; the live
                # probe adds it from the operation's account_credited effect.
                amount=_amount(record, "amount") if "amount" in record else None,
                kind="account_merge",
                operation_id=op_id,
                **common,
            )
        ]
    if op_type == "invoke_host_function":
        return _balance_changes(record, op_id, common)
    kind = op_type  # type: ignore[assignment]
    destination = record.get("to_muxed") or _account(record, "to")
    source_asset = source_amount = None
    if kind != "payment":
        source_asset = _horizon_asset(record, "source_")
        source_amount = _amount(record, "source_amount")
    return [
        ChainPayment(
            from_account=_account(record, "from"),
            to_account=destination,
            asset=_horizon_asset(record),
            # For a path payment ``amount`` is what the destination received.
            amount=_amount(record, "amount"),
            kind=kind,
            operation_id=op_id,
            source_asset=source_asset,
            source_amount=source_amount,
            **common,
        )
    ]


def _balance_changes(
    record: Mapping[str, Any], op_id: str | None, common: dict[str, Any]
) -> list[ChainPayment]:
    changes = record.get("asset_balance_changes")
    changes = [] if changes is None else changes
    if not isinstance(changes, list):
        raise RecordProblem("asset_balance_changes", "not a list")
    out = []
    for index, change in enumerate(changes):
        field = f"asset_balance_changes[{index}]"
        if not isinstance(change, Mapping):
            raise RecordProblem(field, "not an object")
        # mint, burn and clawback pay no destination; only transfers are payments.
        if change.get("type") != "transfer":
            continue
        try:
            source = _account(change, "from")
            destination = _account(change, "to")
            muxed_id = change.get("destination_muxed_id")
            id_type = change.get("destination_muxed_id_type", "uint64")
            memo = common["memo"]
            if muxed_id is not None and destination.startswith("G"):
                if id_type == "uint64" and str(muxed_id).isdigit():
                    if len(str(muxed_id)) > 20 or int(str(muxed_id)) > 2**64 - 1:
                        raise RecordProblem("destination_muxed_id", "not a uint64")
                    destination = _muxed(destination, int(str(muxed_id)))
                elif id_type == "string":
                    memo = Memo("text", str(muxed_id).encode("utf-8"))
            out.append(
                ChainPayment(
                    from_account=source,
                    to_account=destination,
                    asset=_horizon_asset(change),
                    amount=_amount(change, "amount"),
                    kind="invoke_host_function",
                    operation_id=f"{op_id}:{index}" if op_id else None,
                    **{**common, "memo": memo},
                )
            )
        except RecordProblem as exc:
            raise RecordProblem(f"{field}.{exc.field}", exc.message) from None
    return out


# --- Stellar RPC getEvents -----------------------------------------------------------------


def _scval(raw: Any, field: str) -> Any:
    from stellar_sdk import xdr

    if not isinstance(raw, str):
        raise RecordProblem(field, "missing or not a base64 XDR ScVal")
    try:
        return xdr.SCVal.from_xdr(raw)
    except Exception:  # noqa: BLE001 - any decoding failure is one bad field
        raise RecordProblem(field, "not a base64 XDR ScVal") from None


def _scaddress(val: Any, field: str) -> str:
    from stellar_sdk import Address, xdr

    if val.type != xdr.SCValType.SCV_ADDRESS:
        raise RecordProblem(field, "not an address ScVal")
    try:
        return str(Address.from_xdr_sc_address(val.address).address)
    except Exception:  # noqa: BLE001
        raise RecordProblem(field, "address kind not supported") from None


def _event_amount(val: Any) -> tuple[int, Any]:
    """(amount, to_muxed_id ScVal or None) from an i128 or a CAP-67 ``{amount, to_muxed_id}``."""
    from stellar_sdk import scval, xdr

    muxed = None
    if val.type == xdr.SCValType.SCV_MAP and val.map is not None:
        entries = {}
        for entry in val.map.sc_map:
            if entry.key.type == xdr.SCValType.SCV_SYMBOL:
                entries[scval.from_symbol(entry.key)] = entry.val
        if "amount" not in entries:
            raise RecordProblem("value", "transfer value map has no amount")
        muxed = entries.get("to_muxed_id")
        val = entries["amount"]
    if val.type != xdr.SCValType.SCV_I128:
        raise RecordProblem("value", "transfer amount is not an i128")
    amount = scval.from_int128(val)
    if amount < 0:
        raise RecordProblem("value", "negative transfer amount")
    return amount, muxed


def _sac_contract_id(asset: Asset, network_passphrase: str) -> str:
    from stellar_sdk import Asset as SdkAsset

    sdk = SdkAsset.native() if asset.is_native else SdkAsset(asset.code, asset.issuer)
    return str(sdk.contract_id(network_passphrase))


def chain_payment_from_rpc_event(
    event: Mapping[str, Any], *, network_passphrase: str | None = None
) -> ChainPayment | None:
    """A ``transfer`` event as a payment; None for other events.

    Topics: ``["transfer", from, to, asset]`` (the asset topic is a SEP-11
    string, present for Stellar Asset Contract events). Value: an i128, or
    (CAP-67) a map ``{amount, to_muxed_id}``; a u64 ``to_muxed_id`` turns a
    ``G...`` destination into its ``M...`` address. With a
    ``network_passphrase``, an event whose contract is not the Stellar Asset
    Contract of the asset it names (any contract can emit a look-alike event)
    is kept with the asset ``token:<contractId>`` so it never passes for the
    real asset. Events without an asset topic (custom tokens) get that asset
    too.
    """
    from stellar_sdk import scval, xdr

    topics = event.get("topic", event.get("topics"))
    if not isinstance(topics, list) or not topics:
        raise RecordProblem("topic", "missing or not a list of base64 ScVals")
    first = _scval(topics[0], "topic[0]")
    name = scval.from_symbol(first) if first.type == xdr.SCValType.SCV_SYMBOL else None
    if name in ("burn", "clawback"):
        return _outflow_event(event, topics, name, network_passphrase)
    if name != "transfer":
        return None
    if len(topics) not in (3, 4):
        raise RecordProblem("topic", "a transfer event has 3 or 4 topics")
    source = _scaddress(_scval(topics[1], "topic[1]"), "topic[1]")
    destination = _scaddress(_scval(topics[2], "topic[2]"), "topic[2]")
    contract_id = _contract_id(event)
    asset = _event_asset(topics, 3, contract_id, network_passphrase)
    amount, muxed_val = _event_amount(_scval(event.get("value"), "value"))
    memo = NO_MEMO
    if muxed_val is not None:
        if muxed_val.type == xdr.SCValType.SCV_U64 and destination.startswith("G"):
            destination = _muxed(destination, scval.from_uint64(muxed_val))
        elif muxed_val.type == xdr.SCValType.SCV_STRING:
            memo = Memo("text", bytes(scval.from_string(muxed_val)))
        elif muxed_val.type == xdr.SCValType.SCV_BYTES:
            memo = Memo("hash", bytes(scval.from_bytes(muxed_val)))
    tx_hash = _hash(event.get("txHash"), "txHash")
    closed = event.get("ledgerClosedAt")
    successful = event.get("inSuccessfulContractCall", True)
    if not isinstance(successful, bool):
        raise RecordProblem("inSuccessfulContractCall", "not true/false")
    event_id = event.get("id")
    return ChainPayment(
        tx_hash=tx_hash,
        successful=successful,
        from_account=source,
        to_account=destination,
        asset=asset,
        amount=amount,
        kind="sac_transfer",
        memo=memo,
        ledger=_int(event["ledger"], "ledger") if event.get("ledger") is not None else None,
        closed_at=_time(closed, "ledgerClosedAt") if closed is not None else None,
        operation_id=str(event_id) if event_id is not None else None,
    )


def _event_asset(
    topics: list[Any], index: int, contract_id: str, network_passphrase: str | None
) -> Asset:
    """The SEP-11 asset topic at ``index`` when present and (with a passphrase) named by
    its real Stellar Asset Contract; else ``token:<contractId>``."""
    from stellar_sdk import scval, xdr

    asset = Asset("token", contract_id)
    if len(topics) > index:
        field = f"topic[{index}]"
        asset_val = _scval(topics[index], field)
        if asset_val.type != xdr.SCValType.SCV_STRING:
            raise RecordProblem(field, "asset topic is not a string")
        claimed = _sep11_asset(scval.from_string(asset_val).decode("utf-8", "replace"))
        if (
            network_passphrase is None
            or _sac_contract_id(claimed, network_passphrase) == contract_id
        ):
            asset = claimed
    return asset


def _contract_id(event: Mapping[str, Any]) -> str:
    contract_id = event.get("contractId")
    if not isinstance(contract_id, str) or address_problem(contract_id) is not None:
        raise RecordProblem("contractId", "missing or not a C... contract id")
    return contract_id


def _outflow_event(
    event: Mapping[str, Any], topics: list[Any], name: str, network_passphrase: str | None
) -> ChainPayment:
    """A ``burn`` (``["burn", from, asset]``: a classic payment to the issuer) or ``clawback``
    (``["clawback", from, asset]``) event: money that left ``from``, to the asset's issuer
    (the token contract for other tokens). CAP-67 shapes; the asset topic is optional."""

    if len(topics) not in (2, 3):
        raise RecordProblem("topic", f"a {name} event has 2 or 3 topics")
    source = _scaddress(_scval(topics[1], "topic[1]"), "topic[1]")
    contract_id = _contract_id(event)
    asset = _event_asset(topics, 2, contract_id, network_passphrase)
    amount, _ = _event_amount(_scval(event.get("value"), "value"))
    successful = event.get("inSuccessfulContractCall", True)
    if not isinstance(successful, bool):
        raise RecordProblem("inSuccessfulContractCall", "not true/false")
    closed = event.get("ledgerClosedAt")
    event_id = event.get("id")
    kind: PaymentKind = "sac_burn" if name == "burn" else "sac_clawback"
    return ChainPayment(
        tx_hash=_hash(event.get("txHash"), "txHash"),
        successful=successful,
        from_account=source,
        to_account=asset.issuer if asset.code != "token" and asset.issuer else contract_id,
        asset=asset,
        amount=amount,
        kind=kind,
        ledger=_int(event["ledger"], "ledger") if event.get("ledger") is not None else None,
        closed_at=_time(closed, "ledgerClosedAt") if closed is not None else None,
        operation_id=str(event_id) if event_id is not None else None,
    )
