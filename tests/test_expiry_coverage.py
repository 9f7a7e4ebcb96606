"""Issue 13 §3: the expiry proof checks its own coverage. A Horizon keeping partial history
(its root's ``history_elder_ledger``) answers 404 for older transactions: that 404 covers
only the ledgers from its elder ledger's close time, like an RPC's retention window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopback import HORIZON_ELDER_LEDGER, LoopbackServer, fixture_reply
from streampay_incident.probes.transactions import HorizonHistory, horizon_transaction
from test_chain_cli import (
    SETTLEMENT_NOW,
    _testnet_horizon,
    _testnet_rpc,
    settlement_rows,
    settlements_run,
    verdicts,
)


def run(path: Path, *urls: str) -> dict[str, tuple[str, bool, str]]:
    args = [str(path), *urls, "--network", "testnet", "--now", SETTLEMENT_NOW, "--no-search"]
    return verdicts(settlements_run(*args, "--timeout", "2", "--format", "json"))


def elder(closed_at: str) -> Any:
    return fixture_reply(
        "horizon/ledger_detail_pubnet_docs.json",
        overrides={"sequence": HORIZON_ELDER_LEDGER, "closed_at": closed_at},
    )


def test_a_404_from_before_horizons_history_proves_nothing(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    old_history = _testnet_horizon()
    # History starting at 02:50, after the rows' last change (02:40): the 404 is not proof.
    young = _testnet_horizon(
        **{f"GET /ledgers/{HORIZON_ELDER_LEDGER}": elder("2026-11-27T02:50:00Z")}
    )
    with LoopbackServer(old_history) as h_old, LoopbackServer(young) as h_young:
        covered = run(path, "--horizon", h_old.url)
        uncovered = run(path, "--horizon", h_young.url)
    assert covered["expired"] == ("stuck", True, "tx_expired")
    assert uncovered["expired"] == ("stuck", False, "tx_status_unknown")


def test_an_unknown_history_start_makes_the_404_unknown(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    no_ledger = _testnet_horizon(**{f"GET /ledgers/{HORIZON_ELDER_LEDGER}": elder("garbage")})
    with LoopbackServer(no_ledger) as h:
        doc = json.loads(
            settlements_run(
                str(path), "--horizon", h.url, "--network", "testnet", "--now", SETTLEMENT_NOW,
                "--no-search", "--format", "json",
            ).output
        )  # fmt: skip
    assert {v["settlement_id"]: v["retry_reason"] for v in doc["settlements"]}["expired"] == (
        "tx_status_unknown"
    )
    (endpoint,) = doc["inputs"]["endpoints"]
    assert any("keeps history from ledger 48530161" in e for e in endpoint["errors"])


def test_rpc_not_found_after_the_last_change_is_still_unknown(tmp_path: Path) -> None:
    """The chain issue's rule holds: an RPC NOT_FOUND whose window starts after updated_at."""
    path = settlement_rows(tmp_path)
    with LoopbackServer(_testnet_rpc()) as r:
        got = run(path, "--rpc", r.url)
    assert got["outside-window"] == ("stuck", False, "tx_status_unknown")
    assert got["expired"] == ("stuck", True, "tx_expired")


def test_horizon_history_kinds() -> None:
    from datetime import UTC, datetime

    from streampay_incident.probes.http import Exchange

    def exchange(status: int) -> Exchange:
        return Exchange("http://h", "transaction", "GET", "http://h/t", datetime.now(UTC), 0.0,
                        status=status, body="{}")  # fmt: skip

    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert horizon_transaction(exchange(404), "a" * 64).status == "not_found"
    windowed = horizon_transaction(exchange(404), "a" * 64, HorizonHistory(False, 9, start))
    assert windowed.oldest_ledger_close_time == start
    unknown = horizon_transaction(exchange(404), "a" * 64, HorizonHistory(False))
    assert unknown.status == "unknown" and "an unknown ledger" in unknown.detail
