"""The built-in payout checks: the five pinned double-payout rules.

Pure: payout values and a policy in, findings out. Registered as a plugin
through :func:`streampay_incident_register_payout_checks`, like any
third-party check. Over 400 lines as one thing: five rules over one shared
normalisation and grouping, which they must agree on.

Normalisation shared by every rule: tx hashes compare lower-cased (the
parser stores them so); ``native`` equals ``XLM`` (assets compare by their
text, where both read ``native``); amounts compare as stroops; destinations
compare as the exact address given (an ``M...`` address differs from its
``G...`` base and from other muxed ids). A *transfer* is a row with status
``submitted`` or ``confirmed``; transfers are told apart by tx hash, else by
payout_id (:attr:`Payout.transfer_key`).

Every finding carries ``evidence.payout_ids`` (sorted) and
``evidence.amount_at_risk``: per asset, the sum of every transfer of the
group beyond the first, as a decimal string. The first transfer is the
earliest (``created_at``, then transfer key) and is presumed the intended
one; a transfer recorded by several rows counts once, at the amount of its
earliest row. So ``PAYOUT_DUPLICATE_TX_RECORD``, whose rows are one
transaction recorded twice, puts nothing at risk by itself: ``{}``. An
asset whose sum is zero is left out.

Next to it, ``evidence.amount_exposed``: money about to leave. Per asset, the
sum of the group's ``pending`` (queued) rows that would add a transfer beyond
the first: every pending row when the group has a transfer, else every
pending row but the earliest (e.g. a queued row under a conflicting
idempotency key). Each row counts once; zero sums are left out.

Exports run to millions of rows, so each rule first finds the keys that
occur more than once with C-level ``Counter``/``attrgetter`` passes and only
then looks at the few groups that can hold a finding.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime, timedelta
from itertools import compress, islice, repeat
from operator import attrgetter, is_not
from typing import Any

import attrs

from ..amounts import format_stroops
from ..codes import Severity
from ..hookspecs import PayoutCheck, hookimpl
from ..model import NO_MEMO, Finding, Memo, Payout, PayoutPolicy, make_finding
from ..timefmt import format_duration, format_rfc3339

TRANSFER_STATUSES = frozenset({"submitted", "confirmed"})

_CODE_ORDER = {
    "PAYOUT_DUPLICATE_TX_RECORD": 0,
    "PAYOUT_DUPLICATE_SETTLEMENT": 1,
    "PAYOUT_DUPLICATE_MEMO": 2,
    "PAYOUT_IDEMPOTENCY_CONFLICT": 3,
    "PAYOUT_SUSPECTED_REPEAT": 4,
}


@hookimpl
def streampay_incident_register_payout_checks() -> Sequence[PayoutCheck]:
    """The built-in payout rules, run as one check."""
    return [find_payout_anomalies]


def find_payout_anomalies(
    payouts: Iterable[Payout], *, policy: PayoutPolicy | None = None
) -> list[Finding]:
    """Every double-payout finding in ``payouts``: one per group, in a stable order.

    The answer does not depend on the order of ``payouts``. See the module
    docstring for the rules and the evidence each finding carries.
    """
    policy = policy or PayoutPolicy()
    records = _normalised(payouts)
    transfer_rows = _transfer_rows(records)
    findings = [
        *_duplicate_tx_records(records),
        *_duplicate_settlements(transfer_rows),
        *_duplicate_memos(records),
        *_idempotency_conflicts(records),
        *_suspected_repeats(transfer_rows, policy.repeat_window),
    ]
    findings.sort(key=finding_order)
    return findings


# -- rule 1 ---------------------------------------------------------------------------------


def duplicate_tx_records(payouts: Sequence[Payout]) -> list[Finding]:
    """``PAYOUT_DUPLICATE_TX_RECORD`` [warning]: two or more rows name one tx hash."""
    return _duplicate_tx_records(_normalised(payouts))


def _duplicate_tx_records(payouts: Sequence[Payout]) -> list[Finding]:
    findings = []
    for tx_hash, rows in _repeated(payouts, attrgetter("tx_hash")).items():
        settlements = _distinct(rows, "settlement_id")
        findings.append(
            make_finding(
                "PAYOUT_DUPLICATE_TX_RECORD",
                subject=str(tx_hash),
                summary=(
                    f"{len(rows)} payout rows record the same transaction "
                    f"for {count_noun(settlements, 'settlement')}"
                ),
                evidence=_evidence(rows, _transfers(rows)),
            )
        )
    return findings


# -- rule 2 ---------------------------------------------------------------------------------


def duplicate_settlements(payouts: Sequence[Payout]) -> list[Finding]:
    """``PAYOUT_DUPLICATE_SETTLEMENT``: one settlement paid by two or more distinct transfers.

    Critical when at least two of those transfers are confirmed (money left
    twice), else a warning (a second transfer may still land). The finding's
    rows are every row of those transfers.
    """
    return _duplicate_settlements(_transfer_rows(_normalised(payouts)))


def _duplicate_settlements(transfer_rows: Sequence[Payout]) -> list[Finding]:
    findings = []
    for settlement_id, rows in _repeated(transfer_rows, attrgetter("settlement_id")).items():
        transfers = _transfers(rows)
        if len(transfers) < 2:
            continue  # several rows, one transaction: rule 1's business
        confirmed = sum(1 for t in transfers if any(p.status == "confirmed" for p in t))
        severity = Severity.CRITICAL if confirmed >= 2 else Severity.WARNING
        findings.append(
            make_finding(
                "PAYOUT_DUPLICATE_SETTLEMENT",
                subject=str(settlement_id),
                summary=(
                    f"settlement {settlement_id} was paid by {len(transfers)} distinct transfers "
                    f"({confirmed} confirmed)"
                ),
                evidence={
                    **_evidence(rows, transfers),
                    "confirmed_transfers": confirmed,
                },
                severity=severity,
            )
        )
    return findings


# -- rule 3 ---------------------------------------------------------------------------------


def memo_text(memo: Memo) -> str:
    """A memo as readable text: ``text:<value>``, ``id:<n>``, ``hash:<hex>``, ``return:<hex>``.

    Text memos are shown as UTF-8 (invalid bytes as ``\\x..`` escapes); hash
    and return memos as 64 lower-case hex digits; an empty memo as ``none``.
    """
    value = memo.value
    if memo.is_empty:
        return "none"
    if isinstance(value, int):
        return f"{memo.type}:{value}"
    raw = value.encode() if isinstance(value, str) else bytes(value or b"")
    if memo.type == "text":
        return "text:" + raw.decode("utf-8", "backslashreplace")
    return f"{memo.type}:{raw.hex()}"


def _memo_key(memo: Memo) -> tuple[str, Hashable] | None:
    """What makes two memos the same memo: type and value (text as bytes, id as a number)."""
    if memo.is_empty:
        return None
    value = memo.value
    return memo.type, value.encode() if isinstance(value, str) else value


def duplicate_memos(payouts: Sequence[Payout]) -> list[Finding]:
    """``PAYOUT_DUPLICATE_MEMO`` [critical]: one memo on confirmed rows of several settlements.

    Reported when the confirmed rows carrying the memo span two or more
    settlement_ids and two or more distinct transfers. Empty memos and
    ``none`` never group. ``subject`` is :func:`memo_text` of the memo.
    """
    return _duplicate_memos(_normalised(payouts))


def _duplicate_memos(payouts: Sequence[Payout]) -> list[Finding]:
    # Rows with no memo share the one NO_MEMO object: skip them by identity, in C.
    memos = map(attrgetter("memo"), payouts)
    with_memo = list(compress(payouts, map(is_not, memos, repeat(NO_MEMO))))
    confirmed = [p for p in with_memo if p.status == "confirmed"]
    # Pre-filter on the bare value (C-level hashing); the exact key adds the memo type.
    candidates = _repeated(confirmed, attrgetter("memo.value"))
    findings = []
    groups: dict[tuple[str, Hashable], list[Payout]] = defaultdict(list)
    for rows in candidates.values():
        for payout in rows:
            key = _memo_key(payout.memo)
            if key is not None:
                groups[key].append(payout)
    for rows in groups.values():
        settlements = _distinct(rows, "settlement_id")
        transfers = _transfers(rows)
        if len(settlements) < 2 or len(transfers) < 2:
            continue
        memo = rows[0].memo
        subject = memo_text(memo)
        findings.append(
            make_finding(
                "PAYOUT_DUPLICATE_MEMO",
                subject=subject,
                summary=(
                    f"memo {subject} is on {len(transfers)} confirmed transfers "
                    f"for {count_noun(settlements, 'settlement')}"
                ),
                evidence={
                    **_evidence(rows, transfers),
                    "memo_type": memo.type,
                    "memo": subject.partition(":")[2],
                },
            )
        )
    return findings


# -- rule 4 ---------------------------------------------------------------------------------

_CONFLICT_FIELDS: tuple[tuple[str, Callable[[Payout], Hashable]], ...] = (
    ("settlement_id", attrgetter("settlement_id")),
    ("destination", attrgetter("destination")),
    ("asset", lambda p: str(p.asset)),
    ("amount", attrgetter("amount")),
)


def idempotency_conflicts(payouts: Sequence[Payout]) -> list[Finding]:
    """``PAYOUT_IDEMPOTENCY_CONFLICT`` [critical]: one idempotency key, different payouts.

    Rows sharing an ``idempotency_key`` that differ in settlement_id,
    destination, asset or amount. The finding's rows are all rows with that key.
    """
    return _idempotency_conflicts(_normalised(payouts))


def _idempotency_conflicts(payouts: Sequence[Payout]) -> list[Finding]:
    findings = []
    for key, rows in _repeated(payouts, attrgetter("idempotency_key")).items():
        differs = [name for name, get in _CONFLICT_FIELDS if len({get(p) for p in rows}) > 1]
        if not differs:
            continue  # a retry of the same payout under the same key: what keys are for
        findings.append(
            make_finding(
                "PAYOUT_IDEMPOTENCY_CONFLICT",
                subject=str(key),
                summary=(
                    f"idempotency key {key} is on {len(rows)} rows that differ in "
                    f"{', '.join(differs)}"
                ),
                evidence={
                    **_evidence(rows, _transfers(rows)),
                    "differs_in": differs,
                    "assets": sorted({str(p.asset) for p in rows}),
                    "amounts": sorted({format_stroops(p.amount) for p in rows}),
                },
            )
        )
    return findings


# -- rule 5 ---------------------------------------------------------------------------------


def suspected_repeats(
    payouts: Sequence[Payout], *, repeat_window: timedelta = timedelta(minutes=10)
) -> list[Finding]:
    """``PAYOUT_SUSPECTED_REPEAT`` [warning]: the same payment made again and again.

    Transfers with the same destination, asset and amount, sorted by
    ``created_at`` (then transfer key), are chained while each gap is at most
    ``repeat_window``; a chain of two or more transfers holding two or more
    settlement_ids is reported. ``subject`` is the destination.

    Two transfers whose memos are both present and differ are never chained:
    an exchange or custodian credits its customers by memo, so they are
    different customers. A chain holds transfers with one memo, or with no
    memo (a transfer without a memo may chain with any), so each present memo
    is chained with the memo-less transfers separately; a chain found under
    several memos (memo-less transfers only) is reported once.
    """
    return _suspected_repeats(_transfer_rows(_normalised(payouts)), repeat_window)


def _suspected_repeats(transfer_rows: Sequence[Payout], repeat_window: timedelta) -> list[Finding]:
    # Pre-filter on the amount (an int, hashed in C); the exact key adds destination and asset.
    candidates = _repeated(transfer_rows, attrgetter("amount"))
    groups: dict[tuple[str, str, int], list[Payout]] = defaultdict(list)
    for rows in candidates.values():
        for payout in rows:
            groups[(payout.destination, str(payout.asset), payout.amount)].append(payout)
    findings = []
    for (destination, asset, amount), rows in groups.items():
        for chain in _memo_chains(_transfers(rows), repeat_window):
            chain_rows = [p for transfer in chain for p in transfer]
            settlements = _distinct(chain_rows, "settlement_id")
            if len(chain) < 2 or len(settlements) < 2:
                continue
            times = [_first(transfer).created_at for transfer in chain]
            gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
            findings.append(
                make_finding(
                    "PAYOUT_SUSPECTED_REPEAT",
                    subject=destination,
                    summary=(
                        f"{len(chain)} transfers of {format_stroops(amount)} "
                        f"{asset.partition(':')[0]} to the same "
                        f"destination for {count_noun(settlements, 'settlement')}, each within "
                        f"{format_duration(repeat_window)} of the previous"
                    ),
                    evidence={
                        **_evidence(chain_rows, chain),
                        "asset": asset,
                        "amount": format_stroops(amount),
                        "first_created_at": format_rfc3339(times[0]),
                        "last_created_at": format_rfc3339(times[-1]),
                        "largest_gap_seconds": max(gaps).total_seconds(),
                        "repeat_window_seconds": repeat_window.total_seconds(),
                    },
                )
            )
    return findings


def _memo_chains(transfers: list[list[Payout]], window: timedelta) -> list[list[list[Payout]]]:
    """:func:`_chains` per memo class: each present memo with the memo-less transfers."""
    keys = [_memo_key(_first(transfer).memo) for transfer in transfers]
    present = sorted({k for k in keys if k is not None}, key=repr)
    if len(present) <= 1:
        return _chains(transfers, window)  # no two different memos: one class
    chains: list[list[list[Payout]]] = []
    seen: set[tuple[str, ...]] = set()
    for memo in present:
        members = [t for t, k in zip(transfers, keys, strict=True) if k in (memo, None)]
        for chain in _chains(members, window):
            identity = tuple(t[0].transfer_key for t in chain)
            if identity not in seen:
                seen.add(identity)
                chains.append(chain)
    return chains


def _chains(transfers: list[list[Payout]], window: timedelta) -> list[list[list[Payout]]]:
    """Split time-ordered transfers wherever the gap to the previous one exceeds ``window``."""
    chains: list[list[list[Payout]]] = []
    previous: datetime | None = None
    for transfer in transfers:
        moment = _first(transfer).created_at
        if previous is None or moment - previous > window:
            chains.append([])
        chains[-1].append(transfer)
        previous = moment
    return chains


# -- shared ---------------------------------------------------------------------------------


# Keys are remembered in sets of at most this many: a set that grows past ~630k keys
# briefly holds its old and new tables (~48 MB for a million keys); sets of 300k never do.
_KEYS_PER_SET = 300_000


def _repeated(
    payouts: Sequence[Payout], key: Callable[[Payout], Hashable]
) -> dict[Hashable, list[Payout]]:
    """The rows of every key (None aside) that more than one row holds.

    One C-level ``attrgetter`` pass feeds the keys into sets of at most
    :data:`_KEYS_PER_SET` (a repeat inside a block is caught as it is added;
    one across blocks by intersecting the blocks' sets, in C). That is half the
    memory of a Counter and faster on a million unique keys. Only the rows whose
    key repeats are grouped in Python.
    """
    keys = map(key, payouts)
    blocks: list[set[Hashable]] = []
    repeated: set[Hashable] = set()
    while True:
        block: set[Hashable] = set()
        remember = block.add
        repeated |= {k for k in islice(keys, _KEYS_PER_SET) if k in block or remember(k)}
        if not block:
            break
        for earlier in blocks:
            repeated |= block & earlier
        blocks.append(block)
    del blocks
    repeated.discard(None)
    groups: dict[Hashable, list[Payout]] = {}
    if repeated:
        wanted = map(repeated.__contains__, map(key, payouts))
        for payout in compress(payouts, wanted):
            groups.setdefault(key(payout), []).append(payout)
    return groups


# Hashes checked per joined block in _normalised: ~0.6 MB of text at a time.
_HASHES_PER_CHECK = 10_000


def _normalised(payouts: Iterable[Payout]) -> Sequence[Payout]:
    """``payouts`` with every tx hash in lower case (the parser's are; a host's may not be).

    Checked in C over all rows, a block of hashes joined at a time (``str.lower``
    of ASCII text is a table lookup per character, ``str.islower`` is not);
    rows are copied only when a hash needs it.
    """
    records = payouts if isinstance(payouts, list | tuple) else list(payouts)
    hashes = filter(None, map(attrgetter("tx_hash"), records))
    while block := "".join(islice(hashes, _HASHES_PER_CHECK)):
        if block.lower() != block:
            break
    else:
        return records
    return [
        attrs.evolve(p, tx_hash=p.tx_hash.lower()) if p.tx_hash and not p.tx_hash.islower() else p
        for p in records
    ]


def _transfer_rows(payouts: Sequence[Payout]) -> list[Payout]:
    """The submitted and confirmed rows."""
    statuses = map(attrgetter("status"), payouts)
    return list(compress(payouts, map(TRANSFER_STATUSES.__contains__, statuses)))


def _first(rows: Iterable[Payout]) -> Payout:
    """The earliest row (ties broken by payout_id, so input order never matters)."""
    return min(rows, key=lambda p: (p.created_at, p.payout_id))


def _transfers(rows: Iterable[Payout]) -> list[list[Payout]]:
    """The rows grouped into transfers (submitted/confirmed only), earliest transfer first."""
    by_key: dict[str, list[Payout]] = defaultdict(list)
    for payout in rows:
        if payout.status in TRANSFER_STATUSES:
            by_key[payout.transfer_key].append(payout)
    return sorted(by_key.values(), key=lambda t: (_first(t).created_at, t[0].transfer_key))


def _amount_at_risk(transfers: list[list[Payout]]) -> dict[str, str]:
    """Per asset, the sum of every transfer beyond the first (each transfer counted once)."""
    totals: dict[str, int] = defaultdict(int)
    for transfer in transfers[1:]:
        first = _first(transfer)
        totals[str(first.asset)] += first.amount
    return {asset: format_stroops(total) for asset, total in sorted(totals.items()) if total}


def _amount_exposed(rows: Sequence[Payout], transfers: list[list[Payout]]) -> dict[str, str]:
    """Per asset, the queued rows that would add a transfer beyond the first (each row once)."""
    queued = {p.payout_id: p for p in rows if p.status == "pending"}
    waiting = sorted(queued.values(), key=lambda p: (p.created_at, p.payout_id))
    if not transfers:
        waiting = waiting[1:]  # the earliest queued row is the intended payment
    totals: dict[str, int] = defaultdict(int)
    for payout in waiting:
        totals[str(payout.asset)] += payout.amount
    return {asset: format_stroops(total) for asset, total in sorted(totals.items()) if total}


def _evidence(rows: Sequence[Payout], transfers: list[list[Payout]]) -> dict[str, Any]:
    return {
        "payout_ids": sorted(p.payout_id for p in rows),
        "amount_at_risk": _amount_at_risk(transfers),
        "amount_exposed": _amount_exposed(rows, transfers),
        "transfers": len(transfers),
        "settlement_ids": sorted(_distinct(rows, "settlement_id")),
        "tx_hashes": sorted({p.tx_hash for p in rows if p.tx_hash}),
        "destinations": sorted(_distinct(rows, "destination")),
        "statuses": dict(sorted(Counter(p.status for p in rows).items())),
    }


def _distinct(rows: Iterable[Payout], field: str) -> set[Any]:
    return set(map(attrgetter(field), rows))


def count_noun(items: Iterable[Any] | int, noun: str) -> str:
    """``1 payout``, ``3 payouts``: how the payout summaries count (the engines use it too)."""
    n = items if isinstance(items, int) else len(list(items))
    return f"{n} {noun}{'' if n == 1 else 's'}"


def finding_order(finding: Finding) -> tuple[int, str, str, str, str]:
    """The order payout findings are reported in, by every engine."""
    evidence = finding.evidence
    return (
        _CODE_ORDER.get(finding.code, len(_CODE_ORDER)),
        finding.subject,
        str(evidence.get("asset", "")),
        str(evidence.get("amount", "")),
        str(evidence.get("first_created_at", "")),
    )
