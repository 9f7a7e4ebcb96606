"""Transaction envelopes: hashes, memos, time bounds, operations (stellar-sdk, lazily).

Over 400 lines as one thing: everything read from one decoded envelope.

The hash of a Stellar transaction is ``sha256(network_id || envelope type ||
transaction XDR)`` where ``network_id = sha256(passphrase)``: the signature
payload. The wrong passphrase silently gives another hash, so it is always a
required argument.

Speed matters (``tx inspect -`` over a day of envelopes, settlement exports
with an ``envelope_xdr`` column), so this module decodes with the XDR layer
(``stellar_sdk.xdr.TransactionEnvelope.from_xdr_bytes``) and hashes slices of
the raw bytes instead of re-encoding or going through ``TransactionBuilder``:

- a V1 envelope is ``type(4) || Transaction || signatures``, so the transaction
  is the bytes between the type and the signatures;
- a V0 envelope (pre-protocol-13) is hashed as V1: its leading 4-byte type
  ``ENVELOPE_TYPE_TX_V0 = 0`` doubles as the ``KEY_TYPE_ED25519 = 0``
  discriminant of a V1 ``MuxedAccount`` source, and its optional time bounds
  encode exactly like ``PRECOND_NONE``/``PRECOND_TIME``, so ``raw[:-signatures]``
  *is* the V1 transaction;
- a fee-bump is ``type || FeeBumpTransaction || signatures``, and its inner
  V1 transaction sits after the fee source, the fee and the inner type, before
  the inner signatures and the 4-byte fee-bump ``ext``.

Signature lengths come from the decoded signatures, so no guessing is involved;
the reproduction of every real hash in ``tx_hash_triples.json`` is tested.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from ..amounts import format_stroops
from ..errors import InputError, InputProblem
from ..timefmt import format_rfc3339, from_unix

EnvelopeType = Literal["tx_v0", "tx", "tx_fee_bump"]
MemoKind = Literal["none", "text", "id", "hash", "return"]

_TYPE_TX = (2).to_bytes(4, "big")  # ENVELOPE_TYPE_TX
_TYPE_TX_FEE_BUMP = (5).to_bytes(4, "big")  # ENVELOPE_TYPE_TX_FEE_BUMP
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


class EnvelopeError(InputError):
    """Text that is not a transaction envelope; ``reason`` says why, without echoing it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(InputProblem("envelope_xdr", None, None, reason))


@functools.lru_cache(maxsize=32)
def network_id(network_passphrase: str) -> bytes:
    """``sha256(passphrase)``: the network id every signature payload starts with."""
    return hashlib.sha256(network_passphrase.encode("utf-8")).digest()


@attrs.frozen
class EnvelopeIdentity:
    """What identifies a transaction and bounds its life: hashes, source, sequence, time bounds.

    ``hash`` is the hash of what was submitted (the outer hash of a fee-bump);
    ``inner_hash`` is set for fee-bumps only. ``source_account`` and
    ``sequence`` are the inner transaction's: the G... account whose sequence
    number the transaction consumes (the base account of an M... source).
    ``max_time``/``min_time`` are None when absent or 0 (0 means no bound on
    Stellar). ``network_hashes`` holds the hash(es) under each network asked
    for with ``also_under`` (name, hashes), in the order asked.
    """

    hash: str
    inner_hash: str | None
    envelope_type: EnvelopeType
    source_account: str
    sequence: int
    min_time: datetime | None
    max_time: datetime | None
    network_hashes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def hashes(self) -> tuple[str, ...]:
        """Every hash the transaction answers to (outer first)."""
        return (self.hash,) if self.inner_hash is None else (self.hash, self.inner_hash)


@attrs.frozen
class OperationSummary:
    """One operation, with the fields that say where money goes (7-decimal amounts).

    Path payments: ``strict_receive`` has the exact ``amount`` the destination
    gets and the ``send_max`` the source may spend; ``strict_send`` has the
    exact ``send_amount`` and the ``dest_min`` the destination gets at least
    (no ``amount``: the delivered amount is only known from the result).
    """

    type: str
    source_account: str | None = None
    destination: str | None = None
    asset: str | None = None
    amount: str | None = None
    send_asset: str | None = None
    send_amount: str | None = None
    send_max: str | None = None
    dest_min: str | None = None
    from_account: str | None = None

    def to_json(self) -> dict[str, str]:
        """Only the fields that apply; ``from_account`` is spelt ``from``."""
        out: dict[str, str] = {}
        for field in attrs.fields(OperationSummary):
            value = getattr(self, field.name)
            if value is not None:
                out["from" if field.name == "from_account" else field.name] = value
        return out


@attrs.frozen
class TransactionSummary:
    """What ``tx inspect`` prints for one envelope. For a fee-bump the memo, time
    bounds, source, sequence and operations are the inner transaction's; ``fee``
    is the outer (fee-bump) fee and ``inner_fee`` the inner one.
    """

    network_passphrase: str
    hash: str
    inner_hash: str | None
    envelope_type: EnvelopeType
    source_account: str
    fee_source: str | None
    sequence: int
    fee: int
    inner_fee: int | None
    memo_type: MemoKind
    memo: str | None
    memo_encoding: Literal["base64"] | None
    min_time: datetime | None
    max_time: datetime | None
    operations: tuple[OperationSummary, ...]
    signature_count: int

    def to_json(self) -> dict[str, Any]:
        """The pinned flat JSON object (``inner_hash``, ``fee_source``, ``inner_fee``
        only for fee-bumps; ``memo_encoding`` only when the text memo is not UTF-8)."""
        doc: dict[str, Any] = {"hash": self.hash}
        if self.inner_hash is not None:
            doc["inner_hash"] = self.inner_hash
        doc["envelope_type"] = self.envelope_type
        doc["network_passphrase"] = self.network_passphrase
        doc["source_account"] = self.source_account
        if self.fee_source is not None:
            doc["fee_source"] = self.fee_source
        doc["sequence"] = str(self.sequence)
        doc["fee"] = self.fee
        if self.inner_fee is not None:
            doc["inner_fee"] = self.inner_fee
        doc["memo_type"] = self.memo_type
        doc["memo"] = self.memo
        if self.memo_encoding is not None:
            doc["memo_encoding"] = self.memo_encoding
        doc["min_time"] = None if self.min_time is None else format_rfc3339(self.min_time)
        doc["max_time"] = None if self.max_time is None else format_rfc3339(self.max_time)
        doc["operation_count"] = len(self.operations)
        doc["operations"] = [op.to_json() for op in self.operations]
        doc["signature_count"] = self.signature_count
        return doc


@attrs.frozen
class _Decoded:
    envelope: Any  # stellar_sdk.xdr.TransactionEnvelope (imported lazily: ~300 ms)
    envelope_type: EnvelopeType
    hash: str
    inner_hash: str | None
    # What follows the network id in the signature payload(s): outer, then a fee-bump's inner.
    payloads: tuple[bytes, ...] = ()

    def hashes_under(self, network_passphrase: str) -> tuple[str, ...]:
        """The hash(es) this envelope has under another passphrase (outer first)."""
        nid = network_id(network_passphrase)
        return tuple(hashlib.sha256(nid + payload).hexdigest() for payload in self.payloads)


def _signatures_size(signatures: list[Any]) -> int:
    # count(4) + per signature: hint(4) + length(4) + bytes padded to 4
    return 4 + sum(8 + (len(s.signature.signature) + 3) // 4 * 4 for s in signatures)


def _decode(envelope_xdr: str, network_passphrase: str) -> _Decoded:
    if not isinstance(envelope_xdr, str):
        raise EnvelopeError("not a transaction envelope (expected base64 XDR text)")
    if not network_passphrase:
        raise EnvelopeError("a network passphrase is required to compute the transaction hash")
    text = envelope_xdr.strip()
    if not text:
        raise EnvelopeError("empty envelope")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("not a transaction envelope (not base64 XDR)") from None
    from stellar_sdk import xdr

    try:
        envelope: Any = xdr.TransactionEnvelope.from_xdr_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not an envelope"
        raise EnvelopeError(
            f"not a Stellar transaction envelope (XDR decoding failed: {type(exc).__name__})"
        ) from None
    nid = network_id(network_passphrase)
    kind = envelope.type.value
    if kind == 0:  # ENVELOPE_TYPE_TX_V0: raw minus signatures is the V1 transaction
        end = len(raw) - _signatures_size(envelope.v0.signatures)
        payload = _TYPE_TX + raw[:end]
        tx_hash = hashlib.sha256(nid + payload).hexdigest()
        return _Decoded(envelope, "tx_v0", tx_hash, None, (payload,))
    if kind == 2:  # ENVELOPE_TYPE_TX
        end = len(raw) - _signatures_size(envelope.v1.signatures)
        payload = _TYPE_TX + raw[4:end]
        tx_hash = hashlib.sha256(nid + payload).hexdigest()
        return _Decoded(envelope, "tx", tx_hash, None, (payload,))
    # ENVELOPE_TYPE_TX_FEE_BUMP (the decoder accepts no other type)
    fee_bump = envelope.fee_bump
    outer_end = len(raw) - _signatures_size(fee_bump.signatures)
    outer = _TYPE_TX_FEE_BUMP + raw[4:outer_end]
    outer_hash = hashlib.sha256(nid + outer).hexdigest()
    fee_source_size = 36 if fee_bump.tx.fee_source.type.value == 0 else 44  # G... or M...
    inner_start = 4 + fee_source_size + 8 + 4  # type, fee source, int64 fee, inner type
    inner_end = outer_end - 4 - _signatures_size(fee_bump.tx.inner_tx.v1.signatures)  # minus ext
    inner = _TYPE_TX + raw[inner_start:inner_end]
    inner_hash = hashlib.sha256(nid + inner).hexdigest()
    return _Decoded(envelope, "tx_fee_bump", outer_hash, inner_hash, (outer, inner))


def _inner_tx(decoded: _Decoded) -> Any:
    envelope = decoded.envelope
    if decoded.envelope_type == "tx_v0":
        return envelope.v0.tx
    if decoded.envelope_type == "tx":
        return envelope.v1.tx
    return envelope.fee_bump.tx.inner_tx.v1.tx


def _timestamp(seconds: int) -> datetime | None:
    if seconds == 0:
        return None
    try:
        return from_unix(seconds)
    except ValueError:
        return _LATEST  # beyond year 9999: as good as unbounded, but not 0


def _time_bounds(tx: Any) -> tuple[datetime | None, datetime | None]:
    bounds = None
    if hasattr(tx, "time_bounds"):  # TransactionV0: optional time bounds
        bounds = tx.time_bounds
    else:
        cond = tx.cond
        if cond.type.value == 1:  # PRECOND_TIME
            bounds = cond.time_bounds
        elif cond.type.value == 2:  # PRECOND_V2
            bounds = cond.v2.time_bounds
    if bounds is None:
        return None, None
    return (
        _timestamp(bounds.min_time.time_point.uint64),
        _timestamp(bounds.max_time.time_point.uint64),
    )


def _account(raw_key: bytes) -> str:
    from stellar_sdk.strkey import StrKey

    return StrKey.encode_ed25519_public_key(raw_key)


def _muxed(account: Any) -> str:
    if account.type.value == 0:  # KEY_TYPE_ED25519
        return _account(account.ed25519.uint256)
    from stellar_sdk.strkey import StrKey

    med = account.med25519
    return StrKey.encode_med25519_public_key(med.ed25519.uint256 + med.id.uint64.to_bytes(8, "big"))


def _source_account(tx: Any) -> str:
    if hasattr(tx, "source_account_ed25519"):  # TransactionV0
        return _account(tx.source_account_ed25519.uint256)
    return _muxed(tx.source_account)


def _sequence_account(tx: Any) -> str:
    """The G... account whose sequence number the transaction consumes (also for M... sources)."""
    if hasattr(tx, "source_account_ed25519"):
        return _account(tx.source_account_ed25519.uint256)
    account = tx.source_account
    key = account.ed25519 if account.type.value == 0 else account.med25519.ed25519
    return _account(key.uint256)


def _asset(asset: Any) -> str:
    kind = asset.type.value
    if kind == 0:  # ASSET_TYPE_NATIVE
        return "native"
    if kind == 1:
        code, issuer = asset.alpha_num4.asset_code.asset_code4, asset.alpha_num4.issuer
    else:
        code, issuer = asset.alpha_num12.asset_code.asset_code12, asset.alpha_num12.issuer
    name = code.rstrip(b"\0").decode("ascii", "replace")
    return f"{name}:{_account(issuer.account_id.ed25519.uint256)}"


def _amount(int64: Any) -> str:
    return format_stroops(int64.int64)


def _operation(op: Any) -> OperationSummary:
    body = op.body
    kind = body.type.name.lower()
    source = None if op.source_account is None else _muxed(op.source_account)
    base = {"type": kind, "source_account": source}
    if kind == "payment":
        p = body.payment_op
        return OperationSummary(
            **base,
            destination=_muxed(p.destination),
            asset=_asset(p.asset),
            amount=_amount(p.amount),
        )
    if kind == "create_account":
        c = body.create_account_op
        return OperationSummary(
            **base,
            destination=_account(c.destination.account_id.ed25519.uint256),
            asset="native",
            amount=_amount(c.starting_balance),
        )
    if kind == "path_payment_strict_receive":
        r = body.path_payment_strict_receive_op
        return OperationSummary(
            **base,
            destination=_muxed(r.destination),
            asset=_asset(r.dest_asset),
            amount=_amount(r.dest_amount),
            send_asset=_asset(r.send_asset),
            send_max=_amount(r.send_max),
        )
    if kind == "path_payment_strict_send":
        s = body.path_payment_strict_send_op
        return OperationSummary(
            **base,
            destination=_muxed(s.destination),
            asset=_asset(s.dest_asset),
            dest_min=_amount(s.dest_min),
            send_asset=_asset(s.send_asset),
            send_amount=_amount(s.send_amount),
        )
    if kind == "account_merge":  # moves the whole balance; the amount is only in the result
        return OperationSummary(**base, destination=_muxed(body.destination), asset="native")
    if kind == "create_claimable_balance":
        b = body.create_claimable_balance_op
        return OperationSummary(**base, asset=_asset(b.asset), amount=_amount(b.amount))
    if kind == "clawback":
        k = body.clawback_op
        return OperationSummary(
            **base, asset=_asset(k.asset), amount=_amount(k.amount), from_account=_muxed(k.from_)
        )
    return OperationSummary(**base)  # invoke_host_function and the rest: the type says enough


def _memo(memo: Any) -> tuple[MemoKind, str | None, Literal["base64"] | None]:
    kind = memo.type.value
    if kind == 0:
        return "none", None, None
    if kind == 1:
        text: bytes = memo.text
        try:
            return "text", text.decode("utf-8"), None
        except UnicodeDecodeError:
            return "text", base64.b64encode(text).decode("ascii"), "base64"
    if kind == 2:
        return "id", str(memo.id.uint64), None
    if kind == 3:
        return "hash", memo.hash.hash.hex(), None
    return "return", memo.ret_hash.hash.hex(), None


def envelope_identity(
    envelope_xdr: str,
    *,
    network_passphrase: str,
    also_under: tuple[tuple[str, str], ...] = (),
) -> EnvelopeIdentity:
    """Hash(es), source account, sequence and time bounds of an envelope: the fast path.

    ``also_under``: ``(name, passphrase)`` pairs to hash the same envelope under
    too (one decode, a sha256 per network), into ``network_hashes``. Raises
    :class:`EnvelopeError` (an :class:`InputError`) for text that is not a
    transaction envelope.
    """
    decoded = _decode(envelope_xdr, network_passphrase)
    tx = _inner_tx(decoded)
    min_time, max_time = _time_bounds(tx)
    return EnvelopeIdentity(
        hash=decoded.hash,
        inner_hash=decoded.inner_hash,
        envelope_type=decoded.envelope_type,
        source_account=_sequence_account(tx),
        sequence=tx.seq_num.sequence_number.int64,
        min_time=min_time,
        max_time=max_time,
        network_hashes=tuple((name, decoded.hashes_under(p)) for name, p in also_under),
    )


def transaction_hashes(envelope_xdr: str, *, network_passphrase: str) -> tuple[str, ...]:
    """Only the hash(es): outer first, then the inner hash of a fee-bump."""
    decoded = _decode(envelope_xdr, network_passphrase)
    if decoded.inner_hash is None:
        return (decoded.hash,)
    return (decoded.hash, decoded.inner_hash)


def inspect_transaction(envelope_xdr: str, *, network_passphrase: str) -> TransactionSummary:
    """Decode a base64 ``TransactionEnvelope`` (V0, V1 or fee-bump) into a summary.

    ``hash`` is the hash of the envelope as submitted (the outer hash for a
    fee-bump, whose inner hash is ``inner_hash``), computed for
    ``network_passphrase``. Raises :class:`EnvelopeError` (an
    :class:`~streampay_incident.errors.InputError`) for anything that is not an
    envelope; the message never echoes the input.
    """
    decoded = _decode(envelope_xdr, network_passphrase)
    tx = _inner_tx(decoded)
    memo_type, memo, memo_encoding = _memo(tx.memo)
    min_time, max_time = _time_bounds(tx)
    envelope = decoded.envelope
    if decoded.envelope_type == "tx_fee_bump":
        outer = envelope.fee_bump
        fee_source: str | None = _muxed(outer.tx.fee_source)
        fee, inner_fee = outer.tx.fee.int64, tx.fee.uint32
        signatures = len(outer.signatures) + len(outer.tx.inner_tx.v1.signatures)
    else:
        fee_source, fee, inner_fee = None, tx.fee.uint32, None
        signatures = len((envelope.v0 or envelope.v1).signatures)
    return TransactionSummary(
        network_passphrase=network_passphrase,
        hash=decoded.hash,
        inner_hash=decoded.inner_hash,
        envelope_type=decoded.envelope_type,
        source_account=_source_account(tx),
        fee_source=fee_source,
        sequence=tx.seq_num.sequence_number.int64,
        fee=fee,
        inner_fee=inner_fee,
        memo_type=memo_type,
        memo=memo,
        memo_encoding=memo_encoding,
        min_time=min_time,
        max_time=max_time,
        operations=tuple(_operation(op) for op in tx.operations),
        signature_count=signatures,
    )
