"""Live paging of what left the escrow: Horizon payments (``G...``), RPC transfer events (``C...``).

Horizon: ``GET /accounts/{G}/payments?join=transactions&include_failed=true&order=asc``
``&limit=200&cursor=...``, page after page (the cursor of ``_links.next`` applied to the URL we were
given, so a Horizon behind a proxy that reports another host still works),
from the ledger closed at ``--since`` to ``--until`` (or Horizon's latest
ledger). The start cursor is a ledger TOID (``ledger << 32``) estimated from
the latest ledger and checked against ``/ledgers/{n}``; when the estimate is
not provably at or before ``--since`` paging starts at the beginning of
Horizon's history. ``account_merge`` records carry no amount: the merged
balance is read from the operation's ``account_credited`` effect.

Stellar RPC: ``getEvents`` with ``type=contract`` and topic filters
``["transfer", <escrow>, *, *]`` / ``["transfer", <escrow>, *]``: the Stellar
Asset Contract emits the transfer event, so the escrow is matched in the
``from`` topic rather than in ``contractIds`` (which names the emitting token
contract). ``startLedger`` comes from ``--since`` the same way (``getHealth``
for the retention window, ``getLedgers`` to check the estimate). When the
RPC's retention window starts after ``--since``, the coverage window says so
(``complete=False`` and a note) instead of calling older payouts missing.
``getNetwork`` supplies the passphrase used to check that a transfer event
comes from the real Stellar Asset Contract of the asset it names.

Every request runs under a deadline (``timeout`` seconds, retries only inside
it); an endpoint that hangs, refuses, rate-limits or lies ends the paging with
a ``CHAIN_*`` finding and a coverage window that ends where the data ends.

Resumable: ``cursor_file`` is JSON Lines: a header (source, endpoint kind,
escrow, since), then each completed page's raw records followed by a
``{"cursor": ...}`` line. A re-run reads the records back, continues from the
last cursor, and reconciles the whole span.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs

from ..checks.escrow import ChainPayment, CoverageWindow
from ..errors import InputError, InputProblem
from ..io import strict_json
from ..io.chain_payments import (
    RecordProblem,
    chain_payment_from_rpc_event,
    chain_payments_from_horizon,
)
from ..model import Finding, make_finding
from ..timefmt import format_rfc3339, parse_rfc3339
from .http import (
    READ_RETRY,
    Deadline,
    Exchange,
    as_int,
    as_rfc3339,
    as_unix_time,
    fetch,
    join_url,
    json_object,
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

    ``payments`` lie inside ``window``; ``findings`` are ``CHAIN_*`` findings
    about the endpoint (unreachable, error, rate limited) that cut the run
    short; ``cursor`` is where a re-run would continue.
    """

    payments: tuple[ChainPayment, ...]
    window: CoverageWindow
    findings: tuple[Finding, ...] = ()
    pages: int = 0
    cursor: str | None = None


class _Stop(Exception):
    """Paging cannot go on: the finding says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.summary)
        self.finding = finding


def _endpoint_finding(endpoint: str, exchange: Exchange, what: str) -> Finding:
    """The ``CHAIN_*`` finding for a call that did not answer as expected."""
    decided = transport_outcome(exchange)
    if decided is not None and decided.outcome == "unreachable":
        return make_finding(
            "CHAIN_ENDPOINT_UNREACHABLE",
            subject=endpoint,
            summary=f"{what}: no complete answer ({decided.detail})",
            evidence={"endpoint": endpoint, "call": exchange.call, "url": exchange.url},
        )
    if decided is not None and decided.outcome == "rate_limited":
        return make_finding(
            "CHAIN_RATE_LIMITED",
            subject=endpoint,
            summary=f"{what}: HTTP 429; re-run later (with --cursor-file to continue)",
            evidence={"endpoint": endpoint, "call": exchange.call, **decided.rate_limit},
        )
    detail = decided.detail if decided is not None else f"HTTP {exchange.status}"
    return make_finding(
        "CHAIN_ENDPOINT_ERROR",
        subject=endpoint,
        summary=f"{what}: {detail}",
        evidence={"endpoint": endpoint, "call": exchange.call, "url": exchange.url},
    )


def _bad_answer(endpoint: str, exchange: Exchange, why: str, what: str | None = None) -> Finding:
    return make_finding(
        "CHAIN_ENDPOINT_ERROR",
        subject=endpoint,
        summary=f"{what or exchange.call}: {why}",
        evidence={"endpoint": endpoint, "call": exchange.call, "url": exchange.url},
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
    covered_since: datetime | None = None  # where the endpoint's data starts, when after since
    latest_at: datetime | None = None  # the endpoint's latest ledger close time
    notes: list[str] = attrs.field(factory=list)

    async def get(self, path_or_url: str, call: str) -> Exchange:
        url = path_or_url if "://" in path_or_url else join_url(self.endpoint, path_or_url)
        return await fetch(
            self.client,
            "GET",
            url,
            endpoint=self.endpoint,
            call=call,
            deadline=Deadline(self.timeout),
            retry=READ_RETRY,
        )

    async def rpc(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """The ``result`` of one JSON-RPC call; raises :class:`_Stop` with the finding otherwise."""
        self.calls += 1
        exchange = await fetch(
            self.client,
            "POST",
            self.endpoint,
            endpoint=self.endpoint,
            call=f"escrow.{method}",  # not the chain probe's parsed calls: the raw result
            deadline=Deadline(self.timeout),
            request_body=rpc_request_body(method, self.calls, params),
            retry=READ_RETRY,
        )
        observation, result, _error = rpc_reply(exchange)
        if observation.outcome in ("unreachable", "rate_limited", "http_error"):
            raise _Stop(_endpoint_finding(self.endpoint, exchange, method))
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


def _window(
    run: _Run,
    *,
    asked_since: datetime | None,
    covered_since: datetime | None,
    covered_until: datetime | None,
    stopped: Finding | None,
    notes: list[str],
) -> CoverageWindow:
    """The window the data covers, and whether that is everything that was asked."""
    complete = not run.unverified
    if asked_since is not None and covered_since is not None and covered_since > asked_since:
        complete = False
    if stopped is not None:
        complete = False
        covered_until = run.reached or covered_since or asked_since
        notes.append(
            f"paging stopped at {format_rfc3339(covered_until) if covered_until else 'the start'}: "
            f"{stopped.summary}"
        )
    until = covered_until
    if run.until is not None and (until is None or run.until < until):
        until = run.until
    since = covered_since if covered_since is not None else asked_since
    return CoverageWindow(since=since, until=until, complete=complete, note="; ".join(notes))


# --- Horizon -------------------------------------------------------------------------------


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
    run = _Run(url, escrow, since, until, timeout, client, state, progress)
    stopped: Finding | None = None
    try:
        await walk(run)
    except _Stop as stop:
        stopped = stop.finding
    finally:
        if own:
            await client.aclose()
    return _fetched(run, stopped)


def _fetched(run: _Run, stopped: Finding | None) -> PaymentsFetch:
    """What one paging run read, with the window it covers and why it stopped."""
    window = _window(
        run,
        asked_since=run.since,
        covered_since=run.covered_since,
        covered_until=run.latest_at,
        stopped=stopped,
        notes=run.notes,
    )
    return PaymentsFetch(
        payments=tuple(run.payments),
        window=window,
        findings=(stopped,) if stopped else (),
        pages=run.pages,
        cursor=run.cursor,
    )


def _next_cursor(page: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str | None:
    href = ((page.get("_links") or {}).get("next") or {}).get("href")
    if isinstance(href, str):
        values = parse_qs(urlsplit(href).query).get("cursor")
        if values and values[0]:
            return values[0]
    token = records[-1].get("paging_token") if records else None
    return str(token) if token is not None else None


async def _horizon_ledger_time(run: _Run, sequence: int) -> datetime | None:
    exchange = await run.get(f"ledgers/{sequence}", "ledger")
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return None
    return as_rfc3339(doc.get("closed_at"))


async def _horizon_root(run: _Run) -> tuple[int | None, datetime | None, int]:
    """(latest ledger, its close time, first ledger of history) from the Horizon root."""
    exchange = await run.get("", "root")
    if transport_outcome(exchange) is not None:
        raise _Stop(_endpoint_finding(run.endpoint, exchange, "Horizon root"))
    root = json_object(exchange)
    if exchange.status != 200 or root is None:
        raise _Stop(
            _bad_answer(run.endpoint, exchange, f"HTTP {exchange.status}: not a Horizon root")
        )
    return (
        as_int(root.get("history_latest_ledger")),
        as_rfc3339(root.get("history_latest_ledger_closed_at")),
        as_int(root.get("history_elder_ledger")) or 1,
    )


async def _horizon_start(
    run: _Run, latest: int | None, latest_at: datetime | None, elder: int, notes: list[str]
) -> tuple[str, datetime | None]:
    """(start cursor, start of coverage when it is not --since itself)."""
    since = run.since
    if since is not None and latest is not None and latest_at is not None:
        guess = latest - math.ceil((latest_at - since).total_seconds() / _FAST_LEDGER_SECONDS) - 1
        if guess > elder:
            at = await _horizon_ledger_time(run, guess)
            if at is not None and at <= since:
                return str(guess << 32), None
    # No --since, or the estimate is not provably early enough: start where history starts.
    elder_at = await _horizon_ledger_time(run, elder) if elder > 2 else None
    if elder_at is not None and (since is None or elder_at > since):
        after = ", after --since" if since is not None else ""
        notes.append(
            f"Horizon's history starts at ledger {elder} ({format_rfc3339(elder_at)}){after}"
        )
        return "", elder_at
    if elder > 2 and elder_at is None and since is not None:
        run.unverified = True
        notes.append(
            f"Horizon's history starts at ledger {elder} and it did not say when that ledger "
            "closed: it may start after --since"
        )
    return "", None


async def _merge_amount(run: _Run, record: Mapping[str, Any]) -> str | None:
    """The merged balance of an ``account_merge``: its ``account_credited`` effect."""
    op_id = record.get("id")
    into = record.get("into")
    exchange = await run.get(f"operations/{op_id}/effects?limit={PAGE_LIMIT}", "effects")
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return None
    for effect in (doc.get("_embedded") or {}).get("records") or []:
        if (
            isinstance(effect, dict)
            and effect.get("type") == "account_credited"
            and effect.get("account") == into
            and isinstance(effect.get("amount"), str)
        ):
            return str(effect["amount"])
    return None


async def _horizon_pages(run: _Run, start_cursor: str) -> None:
    cursor = start_cursor
    base = f"accounts/{run.escrow}/payments"
    while run.pages < _MAX_PAGES:  # pragma: no branch - the bound is a safety net
        query = urlencode(
            {
                "join": "transactions",
                "include_failed": "true",
                "order": "asc",
                "limit": PAGE_LIMIT,
                "cursor": cursor,
            }
        )
        exchange = await run.get(f"{base}?{query}", "payments")
        if transport_outcome(exchange) is not None or exchange.status != 200:
            raise _Stop(_endpoint_finding(run.endpoint, exchange, "payments page"))
        page = json_object(exchange)
        records = ((page or {}).get("_embedded") or {}).get("records")
        if page is None or not isinstance(records, list):
            raise _Stop(_bad_answer(run.endpoint, exchange, "not a Horizon payments page"))
        if not records:
            return
        kept: list[dict[str, Any]] = []
        payments: list[ChainPayment] = []
        past_until = False
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise _Stop(_bad_answer(run.endpoint, exchange, f"record {index} is not an object"))
            record = {k: v for k, v in record.items() if k != "_links"}
            if (
                record.get("type") == "account_merge"
                and record.get("account") == run.escrow
                and "amount" not in record
            ):
                amount = await _merge_amount(run, record)
                if amount is not None:
                    record["amount"] = amount
            try:
                parsed = chain_payments_from_horizon(record)
            except RecordProblem as exc:
                raise _Stop(
                    _bad_answer(
                        run.endpoint, exchange, f"record {index}: {exc.field}: {exc.message}"
                    )
                ) from None
            closed = next((p.closed_at for p in parsed if p.closed_at), None)
            if closed is None:
                closed = as_rfc3339(record.get("created_at"))
            if run.until is not None and closed is not None and closed > run.until:
                past_until = True
                break
            kept.append(record)
            payments.extend(parsed)
            if closed is not None:
                run.reached = closed
        run.keep(payments)
        next_cursor = _next_cursor(page, kept) if kept else None
        if kept and next_cursor is not None:
            cursor = next_cursor
            run.cursor = cursor
            if run.cursor_file is not None:
                run.cursor_file.add_page(kept, cursor)
        run.page_done(run.reached)
        if past_until or len(records) < PAGE_LIMIT or next_cursor is None:
            return


async def fetch_horizon_payments(
    horizon_url: str,
    escrow: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 10.0,
    client: Any = None,
    cursor_file: Path | str | None = None,
    progress: Progress | None = None,
) -> PaymentsFetch:
    """Every payment of ``escrow`` (a ``G...`` account) from ``since`` to ``until``.

    Never raises on network faults: they end the paging with a ``CHAIN_*``
    finding and an incomplete window. Raises :class:`InputError` only for a
    cursor file that belongs to another run.
    """
    return await _page(
        _horizon_walk,
        "horizon",
        horizon_url,
        escrow,
        since=since,
        until=until,
        timeout=timeout,
        client=client,
        cursor_file=cursor_file,
        progress=progress,
    )


async def _horizon_walk(run: _Run) -> None:
    """The Horizon root, the start cursor (or the cursor file's), then the payments pages."""
    latest, run.latest_at, elder = await _horizon_root(run)
    state = run.cursor_file
    if state is not None and state.resumed:
        run.covered_since = _resume(run, state, run.notes, run.since)
        start = state.cursor or ""
    else:
        start, run.covered_since = await _horizon_start(
            run, latest, run.latest_at, elder, run.notes
        )
    await _horizon_pages(run, start)


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


# --- Stellar RPC ---------------------------------------------------------------------------


def _transfer_filters(escrow: str) -> list[dict[str, Any]]:
    from stellar_sdk import Address, scval

    transfer = scval.to_symbol("transfer").to_xdr()
    source = Address(escrow).to_xdr_sc_val().to_xdr()
    return [
        {
            "type": "contract",
            # SAC events have 4 topics (the asset last), other tokens 3.
            "topics": [[transfer, source, "*", "*"], [transfer, source, "*"]],
        }
    ]


async def _rpc_start(
    run: _Run, notes: list[str]
) -> tuple[int, datetime | None, datetime | None, str | None]:
    """(start ledger, start of coverage, latest close time, network passphrase)."""
    health = await run.rpc("getHealth")
    oldest = as_int(health.get("oldestLedger"))
    latest = as_int(health.get("latestLedger"))
    if oldest is None or latest is None:
        raise _Stop(
            make_finding(
                "CHAIN_ENDPOINT_ERROR",
                subject=run.endpoint,
                summary="getHealth: no oldestLedger/latestLedger to page events from",
                evidence={"endpoint": run.endpoint, "call": "getHealth"},
            )
        )
    try:
        network = await run.rpc("getNetwork")
        passphrase = (
            network.get("passphrase") if isinstance(network.get("passphrase"), str) else None
        )
    except _Stop:
        passphrase = None  # only used to double-check asset contracts
    oldest_at = as_unix_time(health.get("oldestLedgerCloseTime"))
    latest_at = as_unix_time(health.get("latestLedgerCloseTime"))
    if oldest_at is None or latest_at is None:
        found = await _rpc_ledger_time(run, oldest)
        oldest_at = oldest_at or found[0]
        latest_at = latest_at or found[1]
    since = run.since
    if oldest_at is None:
        if since is not None:
            run.unverified = True
            notes.append(
                f"the RPC keeps events from ledger {oldest} but did not say when that ledger "
                "closed: it may start after --since"
            )
        return oldest, None, latest_at, passphrase
    if since is None:
        notes.append(f"the RPC keeps events from ledger {oldest} ({format_rfc3339(oldest_at)})")
        return oldest, oldest_at, latest_at, passphrase
    if since < oldest_at:
        notes.append(
            f"the RPC's retention window starts at ledger {oldest} ({format_rfc3339(oldest_at)}), "
            f"after --since {format_rfc3339(since)}: older payouts cannot be checked here"
        )
        return oldest, oldest_at, latest_at, passphrase
    if latest_at is not None:
        guess = latest - math.ceil((latest_at - since).total_seconds() / _FAST_LEDGER_SECONDS) - 1
        if guess > oldest:
            at, _ = await _rpc_ledger_time(run, guess)
            if at is not None and at <= since:
                return guess, None, latest_at, passphrase
    return oldest, None, latest_at, passphrase


async def _rpc_ledger_time(run: _Run, sequence: int) -> tuple[datetime | None, datetime | None]:
    """(close time of ``sequence``, latest close time) from ``getLedgers``; Nones when unknown."""
    try:
        result = await run.rpc("getLedgers", {"startLedger": sequence, "pagination": {"limit": 1}})
    except _Stop:
        return None, None  # an older RPC without getLedgers: fall back to the oldest ledger
    ledgers = result.get("ledgers") or []
    first = ledgers[0] if ledgers and isinstance(ledgers[0], dict) else {}
    at = (
        as_unix_time(first.get("ledgerCloseTime"))
        if as_int(first.get("sequence")) == sequence
        else None
    )
    return at, as_unix_time(result.get("latestLedgerCloseTime"))


def _cursor_ledger(cursor: str) -> int | None:
    """The ledger an RPC events cursor points into: ``<toid>-<index>``, TOID = ledger << 32 | ..."""
    head = cursor.split("-", 1)[0]
    return int(head) >> 32 if head.isdigit() else None


async def _rpc_pages(
    run: _Run, start_ledger: int | None, passphrase: str | None
) -> datetime | None:
    """Page getEvents; returns the latest ledger close time the RPC reported."""
    filters = _transfer_filters(run.escrow)
    cursor = run.cursor
    latest_at: datetime | None = None
    while run.pages < _MAX_PAGES:  # pragma: no branch - the bound is a safety net
        params: dict[str, Any] = {"filters": filters, "pagination": {"limit": PAGE_LIMIT}}
        if cursor:
            params["pagination"]["cursor"] = cursor
        else:
            params["startLedger"] = start_ledger
        result = await run.rpc("getEvents", params)
        events = result.get("events")
        if not isinstance(events, list):
            raise _Stop(
                make_finding(
                    "CHAIN_ENDPOINT_ERROR",
                    subject=run.endpoint,
                    summary="getEvents: result without an events list",
                    evidence={"endpoint": run.endpoint, "call": "getEvents"},
                )
            )
        latest_at = as_unix_time(result.get("latestLedgerCloseTime")) or latest_at
        kept: list[dict[str, Any]] = []
        past_until = False
        for index, event in enumerate(events):
            try:
                if not isinstance(event, dict):
                    raise RecordProblem(None, "not an object")
                payment = chain_payment_from_rpc_event(event, network_passphrase=passphrase)
            except RecordProblem as exc:
                raise _Stop(
                    make_finding(
                        "CHAIN_ENDPOINT_ERROR",
                        subject=run.endpoint,
                        summary=f"getEvents: event {index}: {exc.field}: {exc.message}",
                        evidence={"endpoint": run.endpoint, "call": "getEvents"},
                    )
                ) from None
            closed = payment.closed_at if payment is not None else None
            if run.until is not None and closed is not None and closed > run.until:
                past_until = True
                break
            kept.append(event)
            if payment is not None:
                run.keep([payment])
                if closed is not None:
                    run.reached = closed
        next_cursor = result.get("cursor")
        next_cursor = str(next_cursor) if next_cursor else None
        if next_cursor and not past_until:
            run.cursor = next_cursor
            if run.cursor_file is not None:
                run.cursor_file.add_page(kept, next_cursor)
        run.page_done(run.reached)
        if past_until or next_cursor is None or next_cursor == cursor:
            return latest_at
        if not events:
            # An empty page may only mean the RPC scanned a slice of ledgers: go on until
            # the cursor reaches the latest ledger.
            at, latest = _cursor_ledger(next_cursor), as_int(result.get("latestLedger"))
            if at is None or latest is None or at >= latest:
                return latest_at
        cursor = next_cursor
    return latest_at  # pragma: no cover - a hundred thousand pages


async def fetch_rpc_transfers(
    rpc_url: str,
    escrow: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 10.0,
    client: Any = None,
    cursor_file: Path | str | None = None,
    progress: Progress | None = None,
) -> PaymentsFetch:
    """Every token transfer out of ``escrow`` (a ``C...`` contract) the RPC still keeps.

    Never raises on network faults (see :func:`fetch_horizon_payments`).
    """
    return await _page(
        _rpc_walk,
        "rpc",
        rpc_url,
        escrow,
        since=since,
        until=until,
        timeout=timeout,
        client=client,
        cursor_file=cursor_file,
        progress=progress,
    )


async def _rpc_walk(run: _Run) -> None:
    """The retention window and start ledger (or the cursor file's cursor), then the events."""
    start, run.covered_since, run.latest_at, passphrase = await _rpc_start(run, run.notes)
    state = run.cursor_file
    if state is not None and state.resumed:
        run.notes.clear()  # the cursor file's span replaces the retention notes
        run.covered_since = _resume(run, state, run.notes, run.since)
    run.latest_at = await _rpc_pages(run, start, passphrase) or run.latest_at


def fetch_escrow_payments(
    url: str,
    escrow: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 10.0,
    cursor_file: Path | str | None = None,
    progress: Progress | None = None,
) -> PaymentsFetch:
    """The blocking entry point for the CLI: Horizon for a ``G...`` escrow, RPC for ``C...``."""
    fetcher = fetch_rpc_transfers if escrow.startswith("C") else fetch_horizon_payments
    return asyncio.run(
        fetcher(
            url,
            escrow,
            since=since,
            until=until,
            timeout=timeout,
            cursor_file=cursor_file,
            progress=progress,
        )
    )


__all__ = [
    "CursorFile",
    "PaymentsFetch",
    "fetch_escrow_payments",
    "fetch_horizon_payments",
    "fetch_rpc_transfers",
]
