"""Issue 9 §1 for ``payouts --escrow``: the network comes from the endpoint; a ``--network``
given is only a check of it (exit 2 when the endpoint reports another)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from test_escrow_cli import ACCOUNT_PAGE, USD_CSV_ROW, payouts_cli
from test_escrow_live import CONTRACT, ESCROW, events_page, horizon, page, rpc


def rpc_escrow(tmp_path: Path, *args: str) -> Any:
    with rpc([events_page([], cursor="")]) as server:  # getNetwork: testnet
        return payouts_cli(tmp_path, "", "--escrow", CONTRACT, "--rpc", server.url, *args), server


def test_rpc_escrow_takes_the_network_from_the_endpoint(tmp_path: Path) -> None:
    result, _ = rpc_escrow(tmp_path, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["inputs"]["network"] == "testnet"
    same, _ = rpc_escrow(tmp_path, "--network", "testnet", "--format", "json")
    assert same.exit_code in (0, 1), same.output
    assert json.loads(same.stdout)["inputs"]["network"] == "testnet"


def test_rpc_escrow_on_another_network_than_given_exits_2(tmp_path: Path) -> None:
    result, server = rpc_escrow(tmp_path, "--network", "public")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: --network public: {server.url} reports 'testnet': the escrow is read on the "
        "endpoint's network; drop --network or give the endpoint of that network\n"
    )


@pytest.mark.parametrize(("network", "code"), [("testnet", 2), ("public", 1)])
def test_horizon_escrow_checks_the_roots_passphrase(
    tmp_path: Path, network: str, code: int
) -> None:
    with horizon([page([])]) as server:  # the recorded pubnet root
        result = payouts_cli(
            tmp_path, USD_CSV_ROW, "--escrow", ESCROW, "--horizon", server.url,
            "--network", network, "--format", "json",
        )  # fmt: skip
    assert result.exit_code == code, result.output
    if code == 2:
        assert "reports 'public'" in result.stderr
    else:
        assert json.loads(result.stdout)["inputs"]["network"] == "public"


def test_network_without_escrow_is_a_usage_error(tmp_path: Path) -> None:
    result = payouts_cli(tmp_path, USD_CSV_ROW, "--network", "public")
    assert result.exit_code == 2
    assert "--network needs --escrow" in result.output


def test_a_chain_payments_file_has_no_network_to_check(tmp_path: Path) -> None:
    result = payouts_cli(
        tmp_path, USD_CSV_ROW, "--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE,
        "--network", "testnet", "--format", "json",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert "network" not in json.loads(result.stdout)["inputs"]
