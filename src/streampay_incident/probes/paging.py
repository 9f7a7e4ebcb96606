"""Paging what left the escrow, the parts both sources share: run state, cursor file, stops.

:mod:`streampay_incident.probes.payments` describes the whole protocol; the
Horizon pager is :mod:`.horizon_payments`, the RPC one :mod:`.rpc_transfers`.
A run ends with a :class:`PaymentsFetch`: the payments, what they cover
(:class:`~streampay_incident.observations.PagingCoverage`) and, when an
endpoint cut it short, why (:class:`~streampay_incident.observations.PagingStop`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from ..errors import InputError, InputProblem
from ..io import strict_json
from ..io.chain_payments import (
    RecordProblem,
    chain_payment_from_rpc_event,
    chain_payments_from_horizon,
)
from ..model import ChainPayment
from ..observations import PagingCoverage, PagingStop
from ..timefmt import format_rfc3339, parse_rfc3339
from .http import (
    READ_RETRY,
    Deadline,
    Exchange,
    fetch,
    join_url,
    make_client,
    transport_outcome,
)
from .rpc import rpc_reply, rpc_request_body

SourceKind = Literal["horizon", "rpc"]
CURSOR_FILE_KIND = "streampay-incident.payments-cursor/v1"

PAGE_LIMIT = 200
# Stellar closes a ledger every ~5-6 s; assuming 4 s over-counts ledgers, so an
# estimated start ledger lands before --since, never after (and is then checked).
_FAST_LEDGER_SECONDS = 4.0
_MAX_PAGES = 100_000

Progress = Callable[[int, int, datetime | None], None]
"""Called after each page with (pages, payments so far, close time reached)."""


@attrs.frozen
class PaymentsFetch:
    """What a live paging run brought back.

    ``payments`` lie inside the window ``coverage`` describes; ``stop`` says
    what about the endpoint (unreachable, error, rate limited) cut the run
    short. Both are values: what they mean (the coverage window, the
    ``CHAIN_*`` finding) is decided in :mod:`streampay_incident.checks.coverage`.
    ``cursor`` is where a re-run would continue; ``network_passphrase`` the
    network the endpoint reported (Horizon root, RPC ``getNetwork``), if it did.
    """

    payments: tuple[ChainPayment, ...]
    coverage: PagingCoverage
    stop: PagingStop | None = None
    pages: int = 0
    cursor: str | None = None
    first_ledger: int | None = None
    last_ledger: int | None = None
    network_passphrase: str | None = None


class _Stop(Exception):
    """Paging cannot go on: the stop says why."""

    def __init__(self, stop: PagingStop) -> None:
        super().__init__(stop.summary)
        self.stop = stop


def _endpoint_stop(endpoint: str, exchange: Exchange, what: str) -> PagingStop:
    """Why a call that did not answer as expected stops the paging."""
    decided = transport_outcome(exchange)
    if decided is not None and decided.outcome == "unreachable":
        return PagingStop(
            endpoint,
            exchange.call,
            "unreachable",
            f"{what}: no complete answer ({decided.detail})",
            url=exchange.url,
        )
    if decided is not None and decided.outcome == "rate_limited":
        return PagingStop(
            endpoint,
            exchange.call,
            "rate_limited",
            f"{what}: HTTP 429; re-run later (with --cursor-file to continue)",
            rate_limit=decided.rate_limit,
        )
    detail = decided.detail if decided is not None else f"HTTP {exchange.status}"
    return PagingStop(endpoint, exchange.call, "error", f"{what}: {detail}", url=exchange.url)


def _bad_answer(endpoint: str, exchange: Exchange, why: str, what: str | None = None) -> PagingStop:
    return PagingStop(
        endpoint, exchange.call, "error", f"{what or exchange.call}: {why}", url=exchange.url
    )


# --- the cursor file -----------------------------------------------------------------------


@attrs.define
class CursorFile:
    """An append-only JSON Lines record of a paging run, so a re-run continues it."""

    path: Path
    kind: SourceKind
    escrow: str
    since: datetime | None = None
    records: list[dict[str, Any]] = attrs.field(factory=list)
    cursor: str | None = None
    resumed: bool = False

    @classmethod
    def open(
        cls, path: Path | str, *, kind: SourceKind, escrow: str, since: datetime | None
    ) -> CursorFile:
        """Load ``path`` when it exists (records after the last cursor line are dropped:
        their page never completed), else start a new file. A file written for another
        escrow or source kind is an input error."""
        path = Path(path)
        state = cls(path=path, kind=kind, escrow=escrow, since=since)
        if not path.exists():
            state._write(
                [
                    {
                        "kind": CURSOR_FILE_KIND,
                        "source": kind,
                        "escrow": escrow,
                        "since": format_rfc3339(since) if since else None,
                    }
                ],
                "w",
            )
            return state
        name = str(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            header = strict_json.loads(lines[0]) if lines else None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(InputProblem(name, 1, None, f"not a cursor file ({exc})")) from None
        if not isinstance(header, dict) or header.get("kind") != CURSOR_FILE_KIND:
            raise InputError(InputProblem(name, 1, None, "not a streampay-incident cursor file"))
        if header.get("source") != kind or header.get("escrow") != escrow:
            raise InputError(
                InputProblem(
                    name,
                    1,
                    None,
                    f"written for {header.get('source')} escrow {header.get('escrow')}, "
                    f"not {kind} escrow {escrow}; use another --cursor-file",
                )
            )
        stored_since = header.get("since")
        try:
            state.since = parse_rfc3339(stored_since) if isinstance(stored_since, str) else None
        except ValueError as exc:
            raise InputError(InputProblem(name, 1, "since", str(exc))) from None
        pending: list[dict[str, Any]] = []
        for line in lines[1:]:
            try:
                entry = strict_json.loads(line)
            except ValueError:
                break  # a line cut short by an interrupted write: nothing after it counts
            if isinstance(entry, dict) and "record" in entry:
                pending.append(entry["record"])
            elif isinstance(entry, dict) and "cursor" in entry:
                state.records.extend(pending)
                pending = []
                state.cursor = str(entry["cursor"])
        state.resumed = state.cursor is not None
        if pending:  # rewrite without the incomplete page so appends stay consistent
            state._rewrite()
        return state

    def _write(self, entries: Sequence[Mapping[str, Any]], mode: str) -> None:
        with self.path.open(mode, encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def _rewrite(self) -> None:
        header = {
            "kind": CURSOR_FILE_KIND,
            "source": self.kind,
            "escrow": self.escrow,
            "since": format_rfc3339(self.since) if self.since else None,
        }
        entries: list[Mapping[str, Any]] = [header]
        entries += [{"record": r} for r in self.records]
        if self.cursor is not None:
            entries.append({"cursor": self.cursor})
        self._write(entries, "w")

    def add_page(self, records: Sequence[Mapping[str, Any]], cursor: str) -> None:
        """Append one completed page and the cursor after it."""
        self.records.extend(dict(r) for r in records)
        self.cursor = cursor
        self._write([*({"record": r} for r in records), {"cursor": cursor}], "a")


# --- shared paging state -------------------------------------------------------------------


@attrs.define
class _Run:
    endpoint: str
    escrow: str
    since: datetime | None
    until: datetime | None
    timeout: float
    client: Any
    cursor_file: CursorFile | None
    progress: Progress | None
    payments: list[ChainPayment] = attrs.field(factory=list)
    pages: int = 0
    reached: datetime | None = None
    cursor: str | None = None
    calls: int = 0
    unverified: bool = False  # coverage of --since could not be checked
    network_passphrase: str | None = None  # what the endpoint said it serves
    covered_since: datetime | None = None  # where the endpoint's data starts, when after since
    latest_at: datetime | None = None  # the endpoint's latest ledger close time
    notes: list[str] = attrs.field(factory=list)
    first_ledger: int | None = None  # the first ledger read (RPC startLedger)
    last_ledger: int | None = None  # the latest ledger the endpoint reported
    filters: list[dict[str, Any]] | None = None  # RPC event filters other than the escrow's
    waited: float = 0.0  # seconds spent waiting on the endpoint so far (of ``timeout``)

    def _deadline(self) -> Deadline:
        """What is left of the run's network budget (``timeout``), for the next request."""
        return Deadline(max(0.0, self.timeout - self.waited))

    def _spent(self, started: float) -> None:
        # Only time spent waiting on the endpoint counts against --timeout, not parsing.
        self.waited += time.monotonic() - started

    async def get(self, path_or_url: str, call: str) -> Exchange:
        url = path_or_url if "://" in path_or_url else join_url(self.endpoint, path_or_url)
        started = time.monotonic()
        try:
            return await fetch(
                self.client,
                "GET",
                url,
                endpoint=self.endpoint,
                call=call,
                deadline=self._deadline(),
                retry=READ_RETRY,
            )
        finally:
            self._spent(started)

    async def rpc(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """The ``result`` of one JSON-RPC call; raises :class:`_Stop` with the finding otherwise."""
        self.calls += 1
        started = time.monotonic()
        try:
            exchange = await fetch(
                self.client,
                "POST",
                self.endpoint,
                endpoint=self.endpoint,
                call=f"escrow.{method}",  # not the chain probe's parsed calls: the raw result
                deadline=self._deadline(),
                request_body=rpc_request_body(method, self.calls, params),
                retry=READ_RETRY,
            )
        finally:
            self._spent(started)
        observation, result, _error = rpc_reply(exchange)
        if observation.outcome in ("unreachable", "rate_limited", "http_error"):
            raise _Stop(_endpoint_stop(self.endpoint, exchange, method))
        if observation.outcome != "ok" or not isinstance(result, dict):
            raise _Stop(_bad_answer(self.endpoint, exchange, observation.detail, method))
        return result

    def keep(self, payments: Sequence[ChainPayment]) -> None:
        for p in payments:
            if self.since is not None and p.closed_at is not None and p.closed_at < self.since:
                continue
            if self.until is not None and p.closed_at is not None and p.closed_at > self.until:
                continue
            self.payments.append(p)

    def page_done(self, reached: datetime | None) -> None:
        self.pages += 1
        if reached is not None:
            self.reached = reached
        if self.progress is not None:
            self.progress(self.pages, len(self.payments), self.reached)


async def _page(
    walk: Callable[[_Run], Awaitable[None]],
    kind: SourceKind,
    url: str,
    escrow: str,
    *,
    since: datetime | None,
    until: datetime | None,
    timeout: float,
    client: Any,
    cursor_file: Path | str | None,
    progress: Progress | None,
    filters: list[dict[str, Any]] | None = None,
) -> PaymentsFetch:
    """Run ``walk`` (one endpoint kind's paging) and say what it read.

    Opens the cursor file and, unless ``client`` is given, a client of its own
    (closed again whatever happens); a :class:`_Stop` ends the paging with its
    finding and a window cut where the data ends.
    """
    state = (
        CursorFile.open(cursor_file, kind=kind, escrow=escrow, since=since)
        if cursor_file is not None
        else None
    )
    own = client is None
    client = client or make_client(timeout=timeout)
    run = _Run(url, escrow, since, until, timeout, client, state, progress, filters=filters)
    stopped: PagingStop | None = None
    try:
        await walk(run)
    except _Stop as stop:
        stopped = stop.stop
    finally:
        if own:
            await client.aclose()
    return _fetched(run, stopped)


def _fetched(run: _Run, stopped: PagingStop | None) -> PaymentsFetch:
    """What one paging run read, with the window it covers and why it stopped."""
    coverage = PagingCoverage(
        asked_since=run.since,
        asked_until=run.until,
        covered_since=run.covered_since,
        covered_until=run.latest_at,
        reached=run.reached,
        unverified=run.unverified,
        notes=tuple(run.notes),
    )
    return PaymentsFetch(
        payments=tuple(run.payments),
        coverage=coverage,
        stop=stopped,
        pages=run.pages,
        cursor=run.cursor,
        first_ledger=run.first_ledger,
        last_ledger=run.last_ledger,
        network_passphrase=run.network_passphrase,
    )


def _resume(
    run: _Run, state: CursorFile, notes: list[str], since: datetime | None
) -> datetime | None:
    """Take the payments of an earlier run back from the cursor file."""
    for record in state.records:
        try:
            if run.cursor_file is not None and run.cursor_file.kind == "rpc":
                payment = chain_payment_from_rpc_event(record, network_passphrase=None)
                run.keep([payment] if payment else [])
            else:
                run.keep(chain_payments_from_horizon(record))
        except RecordProblem as exc:
            raise InputError(
                InputProblem(str(state.path), None, exc.field, f"stored record: {exc.message}")
            ) from None
    run.cursor = state.cursor
    notes.append(f"resumed from {state.path} ({len(state.records)} stored record(s))")
    return state.since if since is None or (state.since and state.since > since) else None
