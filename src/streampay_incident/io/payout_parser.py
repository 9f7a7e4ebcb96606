"""Payout records -> payouts: the column-wise fast path and the careful reference path.

See :mod:`streampay_incident.io.payouts` for the whole story.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InputError, InputProblem
from ..model import NO_MEMO, Asset, Payout
from ..stellar.strkey import destination_problem
from .payout_fields import (
    _HEX64,
    FIELDS,
    STATUSES,
    FieldError,
    _amounts,
    _created_at,
    _identifier,
    _ledger,
    _memos,
    _plain_text,
    _present,
    _status,
    _text,
    _tx_hash,
    build_payouts,
    parse_amount,
    parse_asset,
    parse_memo,
)
from .rows import Row


class _PayoutParser:
    """Turns records into payouts for one input, keeping per-input caches of validated values."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[InputProblem] = []
        self.payouts: list[Payout] = []
        self.lines = array("I")  # the line of each payout, for duplicate payout_id messages
        self.seen_ids: set[str] = set()
        self.duplicates: list[tuple[int, str]] = []
        # Valid value -> the one shared object every row holding it points at.
        self.destinations: dict[str, str] = {}
        self.assets: dict[str, Asset] = {}

    # -- the fast path: a chunk of records, column by column -------------------------------

    def add_columns(self, lines: Sequence[int], columns: Sequence[Sequence[Any]]) -> bool:
        """Add a chunk whose values are all plainly valid; False (and nothing added) otherwise.

        ``columns`` holds one sequence per name in :data:`FIELDS`, None where a
        record has no value. A False answer sends the chunk to :meth:`add`.
        """
        (ids, settlements, destinations, assets, amounts, statuses, times) = columns[:7]
        (tx_hashes, memo_types, memos, keys, ledgers) = columns[7:]
        if not (_plain_text(ids) and _plain_text(settlements)):
            return False
        try:
            destination_objs = self._cached(destinations, self.destinations, self._destination)
            asset_objs = self._cached(assets, self.assets, self._asset)
            amount_values = _amounts(amounts)
            status_values = list(map(STATUSES.get, statuses))
            if None in status_values:
                return False
            created = self._distinct(times, _created_at)
            if tx_hashes.count(None) == len(tx_hashes):
                hashes: Sequence[str | None] = tx_hashes
            else:
                present = _present(tx_hashes)
                if set(map(type, present)) != {str} or not all(map(_HEX64.match, present)):
                    return False
                hashes = [None if h is None else h.lower() for h in tx_hashes]
            memo_objs = _memos(memo_types, memos)
            present_keys = _present(keys)
            if present_keys and not _plain_text(present_keys):
                return False
            ledger_values = self._distinct(ledgers, _ledger, optional=True)
        except (ValueError, TypeError, KeyError):
            return False
        chunk_ids = set(ids)
        if len(chunk_ids) != len(ids) or not self.seen_ids.isdisjoint(chunk_ids):
            return False
        self.seen_ids.update(chunk_ids)
        self.payouts += build_payouts(
            (
                ids,
                settlements,
                destination_objs,
                asset_objs,
                amount_values,
                status_values,
                created,
                hashes,
                memo_objs,
                keys,
                ledger_values,
            )
        )
        self.lines.extend(lines)
        return True

    @staticmethod
    def _cached(
        column: Sequence[Any], cache: dict[Any, Any], validate: Callable[[Any], Any]
    ) -> Sequence[Any]:
        """Each value's cached object, validating (and caching) the values not seen before."""
        lookup = operator.itemgetter(*column)
        try:
            found = lookup(cache)
        except KeyError:
            for value in [value for value in set(column) if value not in cache]:
                if type(value) is not str:
                    raise TypeError("not a plain string") from None
                cache[value] = validate(value)
            found = lookup(cache)
        return [found] if len(column) == 1 else found

    @staticmethod
    def _distinct(
        column: Sequence[Any], parse: Callable[[Any], Any], *, optional: bool = False
    ) -> list[Any]:
        """Parse each distinct value once; equal values share the parsed object."""
        parsed: dict[Any, Any] = {}
        for value in dict.fromkeys(column):
            if value is None and optional:
                parsed[None] = None
            elif type(value) is not str:
                raise TypeError("not a plain string")
            else:
                parsed[value] = parse(value)
        return list(map(parsed.__getitem__, column))

    def _destination(self, address: str) -> str:
        problem = destination_problem(address)
        if problem is not None:
            raise FieldError(problem)
        return address

    def _asset(self, text: str) -> Asset:
        return parse_asset(text)

    # -- the careful path: one record, every problem named ---------------------------------

    def add(self, row: Row) -> None:
        """Validate one record; append its payout, or record one problem per bad field."""
        get = row.values.get
        line = row.line
        before = len(self.problems)
        payout_id = self._required(get, line, "payout_id", _identifier)
        settlement_id = self._required(get, line, "settlement_id", _identifier)
        destination = self._required(get, line, "destination", self._careful_destination)
        asset = self._required(get, line, "asset", self._careful_asset)
        amount = self._required(get, line, "amount", parse_amount)
        status = self._required(get, line, "status", _status)
        created_at = self._required(get, line, "created_at", _created_at)
        tx_hash = self._optional(get, line, "tx_hash", _tx_hash)
        idempotency_key = self._optional(get, line, "idempotency_key", _identifier)
        ledger = self._optional(get, line, "ledger", _ledger)
        memo = NO_MEMO
        try:
            memo = parse_memo(get("memo_type"), get("memo"))
        except FieldError as exc:
            self._problem(line, exc.field, str(exc))
        if payout_id is not None:
            if payout_id in self.seen_ids:
                self.duplicates.append((line, payout_id))
                return
            self.seen_ids.add(payout_id)
        if len(self.problems) != before:
            return
        self.payouts.append(
            Payout(
                payout_id,
                settlement_id,
                destination,
                asset,
                amount,
                status,
                created_at,
                tx_hash,
                memo,
                idempotency_key,
                ledger,
            )
        )
        self.lines.append(line)

    def _problem(self, line: int, field: str | None, message: str) -> None:
        self.problems.append(InputProblem(self.source, line, field, message))

    def _required(
        self, get: Callable[[str], Any], line: int, field: str, parse: Callable[[Any], Any]
    ) -> Any:
        """``parse(value)``, or None after recording why the field is missing or wrong."""
        value = get(field)
        if value is None:
            self._problem(line, field, "missing required field")
            return None
        return self._parsed(value, line, field, parse)

    def _optional(
        self, get: Callable[[str], Any], line: int, field: str, parse: Callable[[Any], Any]
    ) -> Any:
        value = get(field)
        return None if value is None else self._parsed(value, line, field, parse)

    def _parsed(self, value: Any, line: int, field: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(value)
        except ValueError as exc:  # FieldError, AmountError and timestamp errors are ValueErrors
            self._problem(line, field, str(exc))
            return None

    def _careful_destination(self, value: Any) -> str:
        address = _text(value)
        return self.destinations.setdefault(address, self._destination(address))

    def _careful_asset(self, value: Any) -> Asset:
        text = _text(value)
        asset = self.assets.get(text)
        if asset is None:
            asset = self.assets[text] = parse_asset(text)
        return asset

    # -- the end -------------------------------------------------------------------------

    def finish(self) -> list[Payout]:
        """The payouts in input order, or :class:`InputError` listing every problem."""
        if self.duplicates:
            wanted = {payout_id for _line, payout_id in self.duplicates}
            first_line: dict[str, int] = {}
            for payout, line in zip(self.payouts, self.lines, strict=True):
                if payout.payout_id in wanted:
                    first_line.setdefault(payout.payout_id, line)
            for line, payout_id in self.duplicates:
                seen = first_line.get(payout_id)
                where = f" (first used on line {seen})" if seen is not None else ""
                self._problem(line, "payout_id", f"payout_id is not unique{where}")
        if self.problems:
            order = {name: i for i, name in enumerate(FIELDS)}
            self.problems.sort(
                key=lambda p: (
                    -1 if p.line is None else p.line,
                    order.get(p.field or "", len(order)),
                )
            )
            raise InputError(self.problems)
        return self.payouts
