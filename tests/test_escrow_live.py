"""Live escrow paging against loopback Horizon and RPC servers serving the recorded bodies."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import load_fixture
from loopback import (
    HANG,
    LoopbackServer,
    RefusingEndpoint,
    Reply,
    Request,
    fixture_reply,
    html_reply,
    json_reply,
    rate_limited,
)
from streampay_incident.checks.coverage import paging_finding, paging_window
from streampay_incident.checks.escrow import reconcile_escrow
from streampay_incident.errors import InputError
from streampay_incident.model import Asset, Payout
from streampay_incident.probes.payments import (
    CursorFile,
    fetch_escrow_payments,
    fetch_horizon_payments,
    fetch_rpc_transfers,
)

pytestmark = pytest.mark.network

ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
MERGED = "GB44UMO65PK5NWMRP4S2OSZA5BD4ACOW5KQ6TWLLO2MP7S7N5MJ2MJVI"
USD = Asset("USD", "GDUKMGUGDZQK6YHYA5Z6AY2G4XDSZPSZ3SW5UN3ARVMO6QSRDWP5YLEX")
USD_TX = "b9d7c534b5fa168570a5bffe0f2089de150d00bf8cbd19ec93e897c565958f3f"
CONTRACT = "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP"
PAYMENTS_PATH = f"/accounts/{ESCROW}/payments"

ROOT_CLOSED_AT = datetime(2024, 12, 15, 11, 39, 19, tzinfo=UTC)
ROOT_LEDGER = 54837706


class TapServer(LoopbackServer):
    """A loopback server that also keeps each request's full target (path and query)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets: list[str] = []

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        server = self

        class Tap:
            first = True

            async def readline(self) -> bytes:
                line = await reader.readline()
                if Tap.first and line:
                    Tap.first = False
                    server.targets.append(line.decode("latin-1").split(" ")[1])
                return line

            async def readexactly(self, n: int) -> bytes:
                return await reader.readexactly(n)

        return await super()._read_request(Tap())  # type: ignore[arg-type]

    def queries(self, path: str) -> list[dict[str, str]]:
        """The query of every request to ``path``, in order."""
        out = []
        for target in self.targets:
            parts = urlsplit(target)
            if parts.path == path:
                query = parse_qs(parts.query, keep_blank_values=True)
                out.append({k: v[0] for k, v in query.items()})
        return out


def findings_of(fetched: Any) -> tuple[Any, ...]:
    """The CHAIN_* finding of a run an endpoint stopped (the probe returns only the stop)."""
    return (paging_finding(fetched.stop),) if fetched.stop is not None else ()


def window_of(fetched: Any) -> Any:
    """The window a run covers (the probe returns only what it reached)."""
    return paging_window(fetched.coverage, fetched.stop)


def recorded_records() -> list[dict[str, Any]]:
    return copy.deepcopy(
        load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    )


def page(records: list[dict[str, Any]], next_cursor: str | None = None) -> Reply:
    doc = copy.deepcopy(load_fixture("horizon/account_payments_pubnet_docs.json"))
    doc["_embedded"]["records"] = records
    if next_cursor is not None:
        doc["_links"]["next"]["href"] = (
            f"https://horizon.example/accounts/{ESCROW}/payments?cursor={next_cursor}&limit=5&order=asc"
        )
    return json_reply(doc)


def ledger_route(closed_at: Callable[[int], datetime]) -> Callable[[Request], Reply]:
    def answer(request: Request) -> Reply:
        seq = int(request.path.rsplit("/", 1)[1])
        when = closed_at(seq).strftime("%Y-%m-%dT%H:%M:%SZ")
        return fixture_reply(
            "horizon/ledger_detail_pubnet_docs.json", overrides={"sequence": seq, "closed_at": when}
        )

    return answer


def horizon(pages: Any, *, elder: int = 1, account: str = ESCROW, **extra: Any) -> TapServer:
    routes: dict[str, Any] = {
        "GET /": fixture_reply(
            "horizon/root_pubnet_2024-12.json", overrides={"history_elder_ledger": elder}
        ),
        f"GET /accounts/{account}/payments": pages,
        # ~5 s per ledger counted back from the recorded root.
        "GET /ledgers/*": ledger_route(
            lambda seq: ROOT_CLOSED_AT - timedelta(seconds=5 * (ROOT_LEDGER - seq))
        ),
    }
    routes.update(extra)
    return TapServer(routes)


def two_pages() -> list[Reply]:
    recs = recorded_records()
    return [
        page(recs[:5], recs[4]["paging_token"]),
        page(recs[5:], recs[9]["paging_token"]),
        page([]),
    ]


def usd_row(amount: int = 84_9410878) -> Payout:
    return Payout(
        payout_id="p-usd",
        settlement_id="s-usd",
        destination="GASWJWFRYE55KC7MGANZMMRBK5NPXT3HMPDQ6SEXZN6ZPWYXVVYBFRTE",
        asset=USD,
        amount=amount,
        status="confirmed",
        created_at=datetime(2020, 1, 17, 20, 32, 30, tzinfo=UTC),
        tx_hash=USD_TX,
    )


SINCE = datetime(2019, 1, 1, tzinfo=UTC)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from streampay_incident.probes import horizon_payments, rpc_transfers

    monkeypatch.setattr(horizon_payments, "PAGE_LIMIT", 5)
    monkeypatch.setattr(rpc_transfers, "PAGE_LIMIT", 5)


# --- Horizon -------------------------------------------------------------------------------


def test_horizon_pages_through_the_account(small_pages: None) -> None:
    seen: list[tuple[int, int, datetime | None]] = []
    with horizon(two_pages()) as server:
        fetched = asyncio.run(
            fetch_horizon_payments(
                server.url, ESCROW, since=SINCE, progress=lambda *a: seen.append(a)
            )
        )
    assert len(fetched.payments) == 10
    assert findings_of(fetched) == ()
    assert fetched.pages == 2
    recs = recorded_records()
    queries = server.queries(PAYMENTS_PATH)
    assert [q["cursor"] for q in queries[1:]] == [recs[4]["paging_token"], recs[9]["paging_token"]]
    # Paging starts at a ledger estimated from --since and checked against /ledgers/{n}.
    start = int(queries[0]["cursor"])
    assert start % 2**32 == 0 and start < int(recs[0]["paging_token"])
    assert any(t == f"/ledgers/{start >> 32}" for t in server.targets)
    assert queries[0] == {
        "join": "transactions",
        "include_failed": "true",
        "order": "asc",
        "limit": "5",
        "cursor": str(start),
    }
    assert window_of(fetched).since == SINCE
    assert window_of(fetched).until == ROOT_CLOSED_AT
    assert window_of(fetched).complete
    assert fetched.cursor == recs[9]["paging_token"]
    assert [s[0] for s in seen] == [1, 2]
    assert seen[-1][1] == 10
    assert server.requests[0].headers["user-agent"].startswith("streampay-incident/")
    # The one payment out of the escrow is recorded: nothing to report ...
    assert (
        reconcile_escrow([usd_row()], fetched.payments, escrow=ESCROW, window=window_of(fetched))
        == []
    )
    # ... and without the row it is money that left without a record.
    findings = reconcile_escrow([], fetched.payments, escrow=ESCROW, window=window_of(fetched))
    assert [(f.code, f.subject) for f in findings] == [("ESCROW_UNRECORDED_OUTFLOW", USD_TX)]
    assert findings[0].evidence["amount_at_risk"] == {str(USD): "84.9410878"}


def test_until_stops_paging_and_bounds_the_window(small_pages: None) -> None:
    until = datetime(2020, 1, 1, tzinfo=UTC)
    with horizon(two_pages()) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE, until=until))
    assert len(server.queries(PAYMENTS_PATH)) == 1
    assert [p.closed_at <= until for p in fetched.payments] == [True] * 4  # type: ignore[operator]
    assert window_of(fetched).until == until


def test_since_starts_at_an_estimated_ledger_that_is_checked() -> None:
    since = ROOT_CLOSED_AT - timedelta(hours=1)
    with horizon([page([])], elder=48530161) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=since))
    (query,) = server.queries(PAYMENTS_PATH)
    ledger = int(query["cursor"]) >> 32
    assert int(query["cursor"]) == ledger << 32
    assert ROOT_LEDGER - 3600 // 4 - 2 <= ledger <= ROOT_LEDGER - 3600 // 5
    assert window_of(fetched).complete and window_of(fetched).since == since
    assert fetched.payments == ()


def test_an_estimate_after_since_falls_back_to_the_start_of_history() -> None:
    since = ROOT_CLOSED_AT - timedelta(hours=1)
    late = ledger_route(lambda seq: ROOT_CLOSED_AT)  # every ledger claims to be the latest
    with horizon([page([])], elder=48530161, **{"GET /ledgers/*": late}) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=since))
    assert server.queries(PAYMENTS_PATH)[0]["cursor"] == ""
    # The start of history (as this server tells it) is after --since: say so.
    assert not window_of(fetched).complete
    assert "history starts at ledger 48530161" in window_of(fetched).note
    assert window_of(fetched).since == ROOT_CLOSED_AT


def test_partial_history_without_since_is_noted() -> None:
    with horizon([page([])], elder=48530161) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW))
    assert window_of(fetched).complete
    assert window_of(fetched).since is not None and window_of(fetched).since < ROOT_CLOSED_AT
    assert "history starts at ledger 48530161" in window_of(fetched).note


def test_account_merge_amount_comes_from_its_effect(small_pages: None) -> None:
    recs = recorded_records()
    effects = json_reply(
        {
            "_embedded": {
                "records": [
                    {"type": "account_debited", "account": MERGED, "amount": "1.0000000"},
                    {"type": "account_credited", "account": ESCROW, "amount": "1.2345678"},
                ]
            }
        }
    )
    pages = [page(recs[:2]), page([])]
    with horizon(pages, account=MERGED, **{"GET /operations/*/effects": effects}) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, MERGED))
    merge = next(p for p in fetched.payments if p.kind == "account_merge")
    assert merge.amount == 1_2345678
    assert any(t.startswith(f"/operations/{recs[1]['id']}/effects") for t in server.targets)
    with horizon(
        [page(recs[:2]), page([])], account=MERGED
    ) as server:  # no effects: the amount stays unknown
        fetched = asyncio.run(fetch_horizon_payments(server.url, MERGED))
    merge = next(p for p in fetched.payments if p.kind == "account_merge")
    assert merge.amount is None
    empty = json_reply({"_embedded": {"records": []}})
    with horizon(
        [page(recs[:2]), page([])], account=MERGED, **{"GET /operations/*/effects": empty}
    ) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, MERGED))
    assert next(p for p in fetched.payments if p.kind == "account_merge").amount is None


def test_hung_horizon_is_unreachable_within_the_deadline() -> None:
    with LoopbackServer({"*": HANG}) as server:
        started = time.monotonic()
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE, timeout=0.5))
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    (finding,) = findings_of(fetched)
    assert finding.code == "CHAIN_ENDPOINT_UNREACHABLE" and finding.subject == server.url
    assert not window_of(fetched).complete
    assert window_of(fetched).until == SINCE
    assert "paging stopped" in window_of(fetched).note


def test_hang_in_the_middle_keeps_what_came_before(small_pages: None) -> None:
    recs = recorded_records()
    with horizon([page(recs[:5], recs[4]["paging_token"]), HANG]) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE, timeout=0.5))
    assert len(fetched.payments) == 5
    assert findings_of(fetched)[0].code == "CHAIN_ENDPOINT_UNREACHABLE"
    assert window_of(fetched).until == datetime(2020, 1, 17, 20, 32, 38, tzinfo=UTC)
    assert not window_of(fetched).complete
    # A confirmed payout after the data ends is outside the window, not missing.
    late = Payout(
        payout_id="p-late",
        settlement_id="s",
        destination="GASWJWFRYE55KC7MGANZMMRBK5NPXT3HMPDQ6SEXZN6ZPWYXVVYBFRTE",
        asset=USD,
        amount=1,
        status="confirmed",
        created_at=datetime(2021, 3, 10, tzinfo=UTC),
        tx_hash="ab" * 32,
    )
    findings = reconcile_escrow([late], fetched.payments, escrow=ESCROW, window=window_of(fetched))
    codes = sorted(f.code for f in findings)
    assert codes == [
        "ESCROW_COVERAGE_INCOMPLETE",
        "ESCROW_OUTSIDE_WINDOW",
        "ESCROW_UNRECORDED_OUTFLOW",
    ]
    incomplete = next(f for f in findings if f.code == "ESCROW_COVERAGE_INCOMPLETE")
    assert incomplete.evidence["endpoint"] == server.url
    assert "no complete answer" in incomplete.evidence["error"]


def test_refused_connection() -> None:
    with RefusingEndpoint() as endpoint:
        fetched = asyncio.run(fetch_horizon_payments(endpoint.url, ESCROW, timeout=1))
    assert findings_of(fetched)[0].code == "CHAIN_ENDPOINT_UNREACHABLE"
    assert "refused" in findings_of(fetched)[0].summary


@pytest.mark.parametrize(
    ("reply", "code", "text"),
    [
        (html_reply(), "CHAIN_ENDPOINT_ERROR", "HTTP 502"),
        (rate_limited(retry_after="30"), "CHAIN_RATE_LIMITED", "429"),
        (
            fixture_reply("horizon/problems/404_not_found_py.json", 404),
            "CHAIN_ENDPOINT_ERROR",
            "404",
        ),
        (
            Reply(body=b"<html>ok</html>", content_type="text/html"),
            "CHAIN_ENDPOINT_ERROR",
            "not a Horizon payments page",
        ),
    ],
)
def test_misbehaving_payments_pages(reply: Reply, code: str, text: str) -> None:
    with horizon([reply]) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, timeout=2))
    (finding,) = findings_of(fetched)
    assert finding.code == code and text in finding.summary
    if code == "CHAIN_RATE_LIMITED":
        assert finding.evidence["retry-after"] == "30"
        assert "--cursor-file" in finding.summary


@pytest.mark.parametrize(
    ("root", "text"),
    [(html_reply(), "HTTP 502"), (Reply(body=b"[]"), "not a Horizon root")],
)
def test_misbehaving_root(root: Reply, text: str) -> None:
    with horizon([page([])], **{"GET /": root}) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE, timeout=2))
    assert findings_of(fetched)[0].code == "CHAIN_ENDPOINT_ERROR"
    assert text in findings_of(fetched)[0].summary


def test_lying_records_stop_the_paging() -> None:
    recs = recorded_records()
    recs[3]["amount"] = "lots"
    with horizon([page(recs)]) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW))
    assert findings_of(fetched)[0].code == "CHAIN_ENDPOINT_ERROR"
    assert "record 3: amount" in findings_of(fetched)[0].summary
    with horizon([page([recorded_records()[0], 7])]) as server:  # type: ignore[list-item]
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW))
    assert "record 1 is not an object" in findings_of(fetched)[0].summary


def test_page_without_next_link_uses_the_last_paging_token(small_pages: None) -> None:
    recs = recorded_records()
    first = json.loads(page(recs[:5]).body)
    del first["_links"]["next"]
    with horizon([json_reply(first), page([])]) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW))
    assert server.queries(PAYMENTS_PATH)[1]["cursor"] == recs[4]["paging_token"]
    assert len(fetched.payments) == 5


# --- resuming ------------------------------------------------------------------------------


def test_rate_limited_run_resumes_from_the_cursor_file(small_pages: None, tmp_path: Path) -> None:
    recs = recorded_records()
    cursor_file = tmp_path / "escrow.cursor"
    with horizon([page(recs[:5], recs[4]["paging_token"]), rate_limited()]) as server:
        first = asyncio.run(
            fetch_horizon_payments(server.url, ESCROW, since=SINCE, cursor_file=cursor_file)
        )
    assert findings_of(first)[0].code == "CHAIN_RATE_LIMITED"
    assert len(first.payments) == 5 and not window_of(first).complete
    with horizon([page(recs[5:], recs[9]["paging_token"]), page([])]) as server:
        second = asyncio.run(
            fetch_horizon_payments(server.url, ESCROW, since=SINCE, cursor_file=cursor_file)
        )
    assert server.queries(PAYMENTS_PATH)[0]["cursor"] == recs[4]["paging_token"]
    assert findings_of(second) == ()
    assert len(second.payments) == 10
    assert window_of(second).complete and window_of(second).since == SINCE
    assert "resumed from" in window_of(second).note
    window = window_of(second)
    assert reconcile_escrow([usd_row()], second.payments, escrow=ESCROW, window=window) == []
    # A third run asks only for what is new.
    with horizon([page([])]) as server:
        third = asyncio.run(
            fetch_horizon_payments(server.url, ESCROW, since=SINCE, cursor_file=cursor_file)
        )
    assert server.queries(PAYMENTS_PATH)[0]["cursor"] == recs[9]["paging_token"]
    assert len(third.payments) == 10


def test_cursor_file_drops_an_unfinished_page(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    state = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=SINCE)
    recs = recorded_records()
    state.add_page(recs[:2], "t2")
    with path.open("a") as handle:
        handle.write(json.dumps({"record": recs[2]}) + "\n" + '{"record": {"trunc')
    again = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    assert again.cursor == "t2" and len(again.records) == 2 and again.resumed
    assert again.since == SINCE
    reread = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    assert len(reread.records) == 2
    assert path.read_text().count("\n") == 4


def test_cursor_file_for_another_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    with pytest.raises(InputError, match="another --cursor-file"):
        CursorFile.open(path, kind="rpc", escrow=CONTRACT, since=None)
    path.write_text("not json\n")
    with pytest.raises(InputError, match="not a cursor file"):
        CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    path.write_text('{"kind": "something else"}\n')
    with pytest.raises(InputError, match="not a streampay-incident cursor file"):
        CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)


def test_cursor_file_with_a_bad_stored_record(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    state = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    bad = recorded_records()[3]
    bad["amount"] = "x"
    state.add_page([bad], "t1")
    with horizon([page([])]) as server, pytest.raises(InputError, match="stored record"):
        asyncio.run(fetch_horizon_payments(server.url, ESCROW, cursor_file=path))


def test_resuming_with_an_earlier_since_is_incomplete(small_pages: None, tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    state = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=SINCE)
    state.add_page(recorded_records()[:5], "t5")
    with horizon([page([])]) as server:
        fetched = asyncio.run(
            fetch_horizon_payments(
                server.url, ESCROW, since=SINCE - timedelta(days=365), cursor_file=path
            )
        )
    assert not window_of(fetched).complete
    assert window_of(fetched).since == SINCE


# --- Stellar RPC ---------------------------------------------------------------------------

HEALTH = load_fixture("rpc/getHealth_healthy_v27_docs.json")["result"]
OLDEST_AT = datetime.fromtimestamp(int(HEALTH["oldestLedgerCloseTime"]), UTC)
LATEST_AT = datetime.fromtimestamp(int(HEALTH["latestLedgerCloseTime"]), UTC)
EVENTS_LATEST = load_fixture("rpc/getEvents_docs.json")["result"]["latestLedger"]


def events_page(
    events: list[dict[str, Any]] | None = None, cursor: str | None = None, **extra: Any
) -> Reply:
    doc = copy.deepcopy(load_fixture("rpc/getEvents_docs.json"))
    if events is not None:
        doc["result"]["events"] = events
    if cursor is not None:
        doc["result"]["cursor"] = cursor
    doc["result"].update(extra)
    return json_reply(doc)


def get_ledgers(close: Callable[[int], datetime]) -> Callable[[Request], Reply]:
    def answer(request: Request) -> Reply:
        start = request.json()["params"]["startLedger"]
        doc = copy.deepcopy(load_fixture("rpc/getLedgers_docs.json"))
        doc["result"]["ledgers"] = [
            doc["result"]["ledgers"][0]
            | {"sequence": start, "ledgerCloseTime": str(int(close(start).timestamp()))}
        ]
        return json_reply(doc)

    return answer


def rpc(events: Any, **extra: Any) -> TapServer:
    latest = HEALTH["latestLedger"]
    routes: dict[str, Any] = {
        "RPC getHealth": fixture_reply("rpc/getHealth_healthy_v27_docs.json"),
        "RPC getNetwork": fixture_reply("rpc/getNetwork_testnet_docs.json"),
        "RPC getLedgers": get_ledgers(
            lambda seq: LATEST_AT - timedelta(seconds=5 * (latest - seq))
        ),
        "RPC getEvents": events,
    }
    routes.update(extra)
    return TapServer(routes)


def rpc_calls(server: LoopbackServer, method: str) -> list[dict[str, Any]]:
    return [r.json()["params"] for r in server.requests if r.rpc_method == method]


def test_rpc_pages_transfer_events_out_of_the_contract() -> None:
    end_cursor = f"{EVENTS_LATEST << 32:019d}-0000000000"
    with rpc([events_page(), events_page([], cursor=end_cursor)]) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT))
    assert len(fetched.payments) == 2
    first, second = rpc_calls(server, "getEvents")
    assert first["startLedger"] == HEALTH["oldestLedger"]
    assert "cursor" not in first["pagination"]
    assert second["pagination"]["cursor"] == "0016010972359577600-0000000008"
    assert "startLedger" not in second
    flt, outflows = first["filters"]
    assert flt["type"] == "contract" and "contractIds" not in flt
    from stellar_sdk import Address, scval

    transfer = scval.to_symbol("transfer").to_xdr()
    escrow = Address(CONTRACT).to_xdr_sc_val().to_xdr()
    assert flt["topics"] == [[transfer, escrow, "*", "*"], [transfer, escrow, "*"]]
    burn, clawback = (scval.to_symbol(n).to_xdr() for n in ("burn", "clawback"))
    assert outflows["topics"] == [[burn, escrow, "*"], [clawback, escrow, "*"]]
    assert window_of(fetched).since == OLDEST_AT
    assert "keeps events from ledger" in window_of(fetched).note
    # The testnet passphrase from getNetwork proves the native asset contract.
    assert {str(p.asset) for p in fetched.payments} == {"native"}
    findings = reconcile_escrow([], fetched.payments, escrow=CONTRACT, window=window_of(fetched))
    assert [(f.code, f.evidence["amount_at_risk"]) for f in findings] == [
        ("ESCROW_UNRECORDED_OUTFLOW", {"native": "4.2558863"})
    ]


def test_rpc_since_before_retention_says_so() -> None:
    since = OLDEST_AT - timedelta(days=30)
    with rpc([events_page([], cursor="")]) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, since=since))
    assert rpc_calls(server, "getEvents")[0]["startLedger"] == HEALTH["oldestLedger"]
    window = window_of(fetched)
    assert not window.complete and window.since == OLDEST_AT
    assert "retention window starts at ledger" in window.note and "after --since" in window.note
    row = Payout(
        payout_id="old",
        settlement_id="s",
        destination="GCHHLGOJVLRAPYBB6TR4NS4VRF5VW5RKZXQCVQUGMLGLXPTKJFCINQVE",
        asset=Asset("XLM"),
        amount=1,
        status="confirmed",
        created_at=since + timedelta(days=1),
        tx_hash="cd" * 32,
    )
    findings = reconcile_escrow([row], fetched.payments, escrow=CONTRACT, window=window)
    assert [f.code for f in findings] == ["ESCROW_COVERAGE_INCOMPLETE", "ESCROW_OUTSIDE_WINDOW"]
    assert "retention window" in findings[0].summary
    assert findings[0].evidence["rows_not_checked"] == 0


def test_rpc_since_inside_retention_starts_at_a_checked_ledger() -> None:
    since = LATEST_AT - timedelta(hours=2)
    until = LATEST_AT - timedelta(hours=1)
    with rpc([events_page([], cursor="")]) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, since=since, until=until))
    start = rpc_calls(server, "getEvents")[0]["startLedger"]
    latest = HEALTH["latestLedger"]
    assert latest - 7200 // 4 - 2 <= start <= latest - 7200 // 5
    assert rpc_calls(server, "getLedgers")[0]["startLedger"] == start
    assert window_of(fetched).complete
    assert (window_of(fetched).since, window_of(fetched).until) == (since, until)


def test_rpc_estimate_not_provable_starts_at_the_oldest_ledger() -> None:
    since = LATEST_AT - timedelta(hours=2)
    with rpc(
        [events_page([], cursor="")], **{"RPC getLedgers": get_ledgers(lambda s: LATEST_AT)}
    ) as server:
        asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, since=since))
    assert rpc_calls(server, "getEvents")[0]["startLedger"] == HEALTH["oldestLedger"]
    error = json_reply(
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "method not found"}}
    )
    with rpc([events_page([], cursor="")], **{"RPC getLedgers": error}) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, since=since))
    assert rpc_calls(server, "getEvents")[0]["startLedger"] == HEALTH["oldestLedger"]
    assert findings_of(fetched) == ()


def test_rpc_before_v27_learns_close_times_from_get_ledgers() -> None:
    health = fixture_reply("rpc/getHealth_healthy_pre_v27_py.json")
    with rpc([events_page([], cursor="")], **{"RPC getHealth": health}) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT))
    oldest = json.loads(health.body)["result"]["oldestLedger"]
    assert rpc_calls(server, "getLedgers")[0]["startLedger"] == int(oldest)
    assert window_of(fetched).since is not None


def test_rpc_empty_slices_continue_until_the_latest_ledger() -> None:
    mid = f"{(HEALTH['oldestLedger'] + 10) << 32:019d}-0000000000"
    end = f"{EVENTS_LATEST << 32:019d}-0000000000"
    with rpc([events_page([], cursor=mid), events_page([], cursor=end), events_page()]) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT))
    assert len(rpc_calls(server, "getEvents")) == 2
    assert fetched.payments == ()


def test_rpc_until_stops_at_later_events() -> None:
    until = datetime(2026, 7, 21, 18, 0, tzinfo=UTC)  # the recorded events close at 18:01:10
    with rpc([events_page(), events_page([], cursor="x")]) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, until=until))
    assert len(rpc_calls(server, "getEvents")) == 1
    assert fetched.payments == () and window_of(fetched).until == until


@pytest.mark.parametrize(
    ("routes", "code", "text"),
    [
        ({"RPC getHealth": HANG}, "CHAIN_ENDPOINT_UNREACHABLE", "getHealth"),
        ({"RPC getEvents": HANG}, "CHAIN_ENDPOINT_UNREACHABLE", "getEvents"),
        ({"RPC getEvents": rate_limited()}, "CHAIN_RATE_LIMITED", "429"),
        ({"RPC getEvents": html_reply()}, "CHAIN_ENDPOINT_ERROR", "502"),
        (
            {
                "RPC getHealth": fixture_reply(
                    "rpc/errors/derived/getHealth_latency_too_high_-32603.json"
                )
            },
            "CHAIN_ENDPOINT_ERROR",
            "-32603",
        ),
        (
            {
                "RPC getEvents": fixture_reply(
                    "rpc/errors/derived/request_exceeded_processing_limit_-32001.json"
                )
            },
            "CHAIN_ENDPOINT_ERROR",
            "-32001",
        ),
        ({"RPC getEvents": events_page(events={})}, "CHAIN_ENDPOINT_ERROR", "events list"),
        (
            {"RPC getEvents": events_page(events=[{"topic": 1}])},
            "CHAIN_ENDPOINT_ERROR",
            "event 0: topic",
        ),
        ({"RPC getEvents": events_page(events=[7])}, "CHAIN_ENDPOINT_ERROR", "not an object"),
        (
            {
                "RPC getHealth": json_reply(
                    {"jsonrpc": "2.0", "id": 1, "result": {"status": "healthy"}}
                )
            },
            "CHAIN_ENDPOINT_ERROR",
            "oldestLedger",
        ),
    ],
)
def test_misbehaving_rpc(routes: dict[str, Any], code: str, text: str) -> None:
    with rpc(events_page([], cursor=""), **routes) as server:
        started = time.monotonic()
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, timeout=0.5))
        assert time.monotonic() - started < 3
    (finding,) = findings_of(fetched)
    assert finding.code == code and text in finding.summary
    assert finding.subject == server.url
    assert not window_of(fetched).complete


def test_rpc_without_get_network_keeps_the_claimed_asset() -> None:
    with rpc(
        [events_page(), events_page([], cursor="0")], **{"RPC getNetwork": html_reply()}
    ) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT))
    assert findings_of(fetched) == ()
    assert {str(p.asset) for p in fetched.payments} == {"native"}


def test_rpc_resumes_from_the_cursor_file(tmp_path: Path) -> None:
    path = tmp_path / "rpc.cursor"
    with rpc([events_page(), rate_limited()]) as server:
        first = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, cursor_file=path))
    assert findings_of(first)[0].code == "CHAIN_RATE_LIMITED" and len(first.payments) == 2
    with rpc([events_page([], cursor="0016010972359577600-0000000008")]) as server:
        second = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, cursor_file=path))
    (params,) = rpc_calls(server, "getEvents")
    assert params["pagination"]["cursor"] == "0016010972359577600-0000000008"
    assert len(second.payments) == 2 and findings_of(second) == ()


# --- the blocking entry point --------------------------------------------------------------


def test_fetch_escrow_payments_picks_the_source_by_escrow_kind() -> None:
    with horizon([page([])]) as server:
        fetched = fetch_escrow_payments(server.url, ESCROW, timeout=2)
    assert findings_of(fetched) == () and server.queries(PAYMENTS_PATH)
    with rpc([events_page([], cursor="")]) as server:
        fetched = fetch_escrow_payments(server.url, CONTRACT, timeout=2)
    assert findings_of(fetched) == () and rpc_calls(server, "getEvents")


# --- edges ---------------------------------------------------------------------------------


def test_since_filters_earlier_records_and_odd_records_pass(small_pages: None) -> None:
    recs = recorded_records()
    trust = {
        "id": "1",
        "paging_token": "1",
        "type": "change_trust",
        "created_at": "2019-12-01T00:00:00Z",
    }
    bare = {"id": "2", "paging_token": "2", "type": "manage_data"}
    since = datetime(2019, 12, 1, tzinfo=UTC)
    with horizon([page([*recs[:4], trust, bare]), page([])]) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=since))
    assert [p.closed_at >= since for p in fetched.payments] == [True]  # type: ignore[operator]
    assert fetched.payments[0].tx_hash.startswith("c25dd847")


def test_until_before_every_record(small_pages: None) -> None:
    with horizon(two_pages()) as server:
        fetched = asyncio.run(
            fetch_horizon_payments(server.url, ESCROW, until=datetime(2000, 1, 1, tzinfo=UTC))
        )
    assert fetched.payments == () and fetched.cursor is None


def test_next_link_without_a_cursor(small_pages: None) -> None:
    recs = recorded_records()
    first = json.loads(page(recs[:5]).body)
    first["_links"]["next"]["href"] = "https://horizon.example/payments?cursor=&limit=5"
    with horizon([json_reply(first), page([])]) as server:
        asyncio.run(fetch_horizon_payments(server.url, ESCROW))
    assert server.queries(PAYMENTS_PATH)[1]["cursor"] == recs[4]["paging_token"]


def test_unknown_ledgers_fall_back_to_the_start_of_history() -> None:
    gone = fixture_reply("horizon/problems/410_before_history_docs.json", 410)
    with horizon([page([])], **{"GET /ledgers/*": gone}) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE))
    assert server.queries(PAYMENTS_PATH)[0]["cursor"] == ""
    assert window_of(fetched).complete  # full history (elder ledger 1): nothing is missing


def test_since_before_horizon_history() -> None:
    since = datetime(2015, 1, 1, tzinfo=UTC)
    with horizon([page([])], elder=48530161) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=since))
    assert not window_of(fetched).complete
    assert "after --since" in window_of(fetched).note


def test_a_shared_client_is_left_open() -> None:
    from streampay_incident.probes.http import make_client

    async def both(h_url: str, r_url: str) -> None:
        async with make_client(timeout=2) as client:
            await fetch_horizon_payments(h_url, ESCROW, client=client)
            await fetch_rpc_transfers(r_url, CONTRACT, client=client)
            assert not client.is_closed

    with horizon([page([])]) as h, rpc([events_page([], cursor="")]) as r:
        asyncio.run(both(h.url, r.url))


def test_resumed_records_outside_the_window_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    state = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    state.add_page(recorded_records(), "t10")
    until = datetime(2020, 1, 1, tzinfo=UTC)
    with horizon([page([])]) as server:
        fetched = asyncio.run(
            fetch_horizon_payments(server.url, ESCROW, until=until, cursor_file=path)
        )
    assert len(fetched.payments) == 4


def test_cursor_file_odd_lines_and_a_page_without_cursor(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    with path.open("a") as handle:
        handle.write(
            '{"note": "hand edit"}\n' + json.dumps({"record": recorded_records()[0]}) + "\n"
        )
    state = CursorFile.open(path, kind="horizon", escrow=ESCROW, since=None)
    assert not state.resumed and state.records == []
    assert path.read_text().count("\n") == 1  # the unfinished page was dropped


def test_rpc_without_any_close_times() -> None:
    health = fixture_reply("rpc/getHealth_healthy_pre_v27_py.json")
    error = json_reply({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "nope"}})
    routes = {"RPC getHealth": health, "RPC getLedgers": error}
    with rpc([events_page([], cursor="")], **routes) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT))
    assert window_of(fetched).since is None and findings_of(fetched) == ()
    with rpc([events_page([], cursor="")], **routes) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT, since=SINCE))
    oldest = int(json.loads(health.body)["result"]["oldestLedger"])
    assert rpc_calls(server, "getEvents")[0]["startLedger"] == oldest
    assert not window_of(fetched).complete and window_of(fetched).since == SINCE
    assert "did not say when that ledger closed" in window_of(fetched).note


def test_rpc_since_just_after_the_oldest_ledger() -> None:
    with rpc([events_page([], cursor="")]) as server:
        asyncio.run(
            fetch_rpc_transfers(server.url, CONTRACT, since=OLDEST_AT + timedelta(minutes=1))
        )
    assert rpc_calls(server, "getEvents")[0]["startLedger"] == HEALTH["oldestLedger"]
    assert rpc_calls(server, "getLedgers") == []


def test_rpc_pages_with_other_events_and_missing_close_times() -> None:
    from stellar_sdk import scval

    events = copy.deepcopy(load_fixture("rpc/getEvents_docs.json")["result"]["events"])
    events[0]["topic"][0] = scval.to_symbol("mint").to_xdr()
    del events[1]["ledgerClosedAt"]
    with rpc([events_page(events), events_page([], cursor="0")]) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, CONTRACT))
    assert len(fetched.payments) == 1 and fetched.payments[0].closed_at is None


def test_partial_history_of_unknown_age_is_not_called_complete() -> None:
    gone = fixture_reply("horizon/problems/404_not_found_py.json", 404)
    with horizon([page([])], elder=48530161, **{"GET /ledgers/*": gone}) as server:
        fetched = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE))
    assert server.queries(PAYMENTS_PATH)[0]["cursor"] == ""
    assert not window_of(fetched).complete
    assert "did not say when that ledger closed" in window_of(fetched).note


def test_the_timeout_bounds_the_whole_run_not_each_request(small_pages: None) -> None:
    from dataclasses import replace

    recs = recorded_records()

    def slow_pages() -> list[Reply]:
        # Each page answers in 0.3 s: one fits a 0.5 s budget, two do not.
        first = replace(page(recs[:5], recs[4]["paging_token"]), delay=0.3)
        return [first, replace(page(recs[5:]), delay=0.3), page([])]

    with horizon(slow_pages()) as server:
        cut = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE, timeout=0.5))
    assert [f.code for f in findings_of(cut)] == ["CHAIN_ENDPOINT_UNREACHABLE"]
    assert len(cut.payments) == 5 and not window_of(cut).complete
    with horizon(slow_pages()) as server:
        whole = asyncio.run(fetch_horizon_payments(server.url, ESCROW, since=SINCE, timeout=2))
    assert findings_of(whole) == () and len(whole.payments) == 10
