"""Issue 9 §6: an unreachable source is not evidence. ``settlements --horizon/--rpc`` names
every endpoint that failed with its error, and counts the lookups that were answered."""

from __future__ import annotations

import json
from pathlib import Path

from loopback import LoopbackServer, RefusingEndpoint, html_reply
from streampay_incident.checks.evidence import endpoint_errors_line, endpoint_lookups
from streampay_incident.model import ChainTransaction
from streampay_incident.observations import (
    ChainObservations,
    SettlementChainObservations,
    TransactionAnswer,
)
from test_chain_cli import SETTLEMENT_NOW, _testnet_rpc, settlement_rows, settlements_run


def test_every_failed_endpoint_is_named_with_its_error(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    with (
        RefusingEndpoint() as refused,
        LoopbackServer({"*": html_reply(502)}) as proxy,
        LoopbackServer(_testnet_rpc()) as rpc,
    ):
        args = [
            str(path), "--horizon", refused.url, "--rpc", proxy.url, "--rpc", rpc.url,
            "--network", "testnet", "--now", SETTLEMENT_NOW, "--timeout", "2",
        ]  # fmt: skip
        result = settlements_run(*args, "--format", "json")
        text = settlements_run(*args, "--format", "text").output
    doc = json.loads(result.output)
    by_url = {e["url"]: e for e in doc["inputs"]["endpoints"]}
    assert set(by_url) == {refused.url, proxy.url, rpc.url}
    assert by_url[refused.url]["kind"] == "horizon"
    assert by_url[refused.url]["lookups_answered"] == 0
    assert by_url[refused.url]["lookups_asked"] == 4
    assert any("refused" in e for e in by_url[refused.url]["errors"])
    assert any("HTTP 502" in e for e in by_url[proxy.url]["errors"])
    assert by_url[rpc.url]["errors"] == []
    assert by_url[rpc.url]["lookups_answered"] == 4
    # Answered, not asked: only the healthy RPC's four answers count.
    assert doc["inputs"]["live_transaction_records"] == 4
    assert doc["inputs"]["live_lookups_asked"] == 12
    line = doc["inputs"]["endpoint_errors"]
    assert refused.url in line and proxy.url in line and rpc.url not in line
    assert f"horizon {refused.url}:" in text and "refused" in text
    assert f"rpc {proxy.url}:" in text and "HTTP 502" in text


def test_endpoint_lookups_counts_an_endpoint_seen_only_in_answers() -> None:
    """A round cut off before any chain observation still names the lookups' endpoints."""
    unknown = ChainTransaction("ab" * 32, "unknown", source="rpc http://r", detail="timeout")
    found = ChainTransaction("cd" * 32, "success", source="horizon http://h")
    odd = ChainTransaction("ef" * 32, "unknown", source="input")
    observed = SettlementChainObservations(
        chain=ChainObservations(()),
        transactions=(
            TransactionAnswer("http://r", unknown),
            TransactionAnswer("http://h", found),
            TransactionAnswer("http://x", odd),
        ),
        sequences=(),
    )
    endpoints = endpoint_lookups(observed)
    assert endpoints == [
        {
            "url": "http://r",
            "kind": "rpc",
            "lookups_asked": 1,
            "lookups_answered": 0,
            "errors": ["1 lookup(s): timeout"],
        },
        {
            "url": "http://h",
            "kind": "horizon",
            "lookups_asked": 1,
            "lookups_answered": 1,
            "errors": [],
        },
        {
            "url": "http://x",
            "kind": "unknown",
            "lookups_asked": 1,
            "lookups_answered": 0,
            "errors": ["1 lookup(s): no answer"],
        },
    ]
    assert endpoint_errors_line(endpoints) == (
        "rpc http://r: 1 lookup(s): timeout; unknown http://x: 1 lookup(s): no answer"
    )
