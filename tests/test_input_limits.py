"""The limits of the edges, one by one: time range, durations, integers, seconds, seed checksums."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from stellar_sdk import Keypair, MuxedAccount

from streampay_incident.cli import main
from streampay_incident.errors import InputError, shown
from streampay_incident.io.chain_payments import parse_chain_payments
from streampay_incident.io.rows import hide_seeds
from streampay_incident.observations import as_int
from streampay_incident.probes.exchange import as_seconds
from streampay_incident.probes.paging import CURSOR_FILE_KIND, CursorFile
from streampay_incident.stellar.strkey import is_secret_seed
from streampay_incident.timefmt import (
    EARLIEST,
    LATEST,
    MAX_DURATION,
    in_range,
    parse_duration,
    parse_rfc3339,
    parse_unix_or_rfc3339,
)

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))


def test_instants_outside_the_range_are_value_errors() -> None:
    assert in_range(EARLIEST) == EARLIEST
    assert parse_rfc3339("8999-12-31T23:59:59Z") == LATEST - timedelta(seconds=1)
    for text in ("9000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValueError, match="out of range"):
            parse_rfc3339(text)
    assert parse_unix_or_rfc3339("0") == EARLIEST
    assert parse_unix_or_rfc3339("1764205200") == datetime(2025, 11, 27, 1, 0, tzinfo=UTC)
    for text in (str(int(LATEST.timestamp())), "9" * 13, "9" * 5000):
        with pytest.raises(ValueError, match="out of range"):
            parse_unix_or_rfc3339(text)


def test_durations_are_bounded_before_any_arithmetic() -> None:
    assert parse_duration(f"{MAX_DURATION.days}d") == MAX_DURATION
    assert parse_duration("000000000000000000000000090s") == timedelta(seconds=90)
    for text in (f"{MAX_DURATION.days + 1}d", "99999999999999999999d", "9" * 5000 + "ms"):
        with pytest.raises(ValueError, match="longer than 36500d"):
            parse_duration(text)


def test_values_in_messages_are_cut_to_80_characters() -> None:
    assert shown("abc") == "'abc'"
    assert shown(12) == "'12'"
    assert shown("x" * 81) == "'" + "x" * 80 + "'... (81 characters)"
    assert shown("y" * 100, quote=False) == "y" * 80 + "... (100 characters)"


def test_probe_integers_and_recorded_seconds() -> None:
    assert as_int("9" * 40) == int("9" * 40)
    assert as_int("9" * 41) is None and as_int("9" * 5000) is None
    assert as_int("-12") == -12
    assert as_seconds("1.5", "x") == 1.5 and as_seconds(0, "x") == 0.0
    for bad in ("nan", "inf", "-1", float("nan"), True, None, [], "soon"):
        with pytest.raises(ValueError, match="^x: expected"):
            as_seconds(bad, "x")


def test_only_a_checksum_valid_seed_is_a_seed() -> None:
    seed = Keypair.random().secret
    assert is_secret_seed(seed)
    assert not is_secret_seed(seed[:-1] + ("A" if seed[-1] != "A" else "B"))
    assert not is_secret_seed(Keypair.random().public_key)
    assert not is_secret_seed(seed[:-1])
    assert not is_secret_seed(seed.lower())


def test_a_muxed_id_beyond_uint64_in_chain_payments_names_the_field() -> None:
    base = Keypair.random().public_key
    record = {
        "type": "invoke_host_function",
        "transaction_hash": "ab" * 32,
        "asset_balance_changes": [
            {
                "type": "transfer",
                "from": Keypair.random().public_key,
                "to": base,
                "amount": "1.0000000",
                "asset_type": "native",
                "destination_muxed_id": str(2**64),
            }
        ],
    }
    with pytest.raises(InputError, match="destination_muxed_id"):
        parse_chain_payments(json.dumps(record), source="pay.json")
    record["asset_balance_changes"][0]["destination_muxed_id"] = str(2**64 - 1)  # type: ignore[index]
    [payment] = parse_chain_payments(json.dumps(record), source="pay.json").payments
    assert payment.to_account == MuxedAccount(base, 2**64 - 1).account_muxed


def test_a_cursor_file_with_a_bad_since_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cursor.jsonl"
    escrow = Keypair.random().public_key
    header = {"kind": CURSOR_FILE_KIND, "source": "horizon", "escrow": escrow, "since": "never"}
    path.write_text(json.dumps(header) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="field 'since'"):
        CursorFile.open(path, kind="horizon", escrow=escrow, since=None)


def test_a_quoted_csv_on_standard_input_goes_to_the_reference_reader() -> None:
    text = (DEMO / "payouts.csv").read_text(encoding="utf-8").replace("p-001,", '"p-001",', 1)
    result = CliRunner().invoke(
        main,
        ["payouts", "-", "--format", "json"],
        input=text,
        env={"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"},
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.stderr
    assert json.loads(result.stdout)["inputs"]["records"] == len(text.splitlines()) - 1


def test_hide_seeds_leaves_text_without_one_alone() -> None:
    seed = Keypair.random().secret
    assert hide_seeds("no secret here") == "no secret here"
    assert hide_seeds(f"a X{seed} b {seed}") == "a S...(hidden) b S...(hidden)"


def test_a_csv_on_standard_input_the_fast_reader_doubts_goes_to_the_reference_reader() -> None:
    text = (DEMO / "payouts.csv").read_text(encoding="utf-8") + "p-x,only-two-cells\n"
    result = CliRunner().invoke(
        main,
        ["payouts", "-"],
        input=text,
        env={"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"},
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    assert f"<stdin>:{len(text.splitlines())}: expected" in result.stderr
