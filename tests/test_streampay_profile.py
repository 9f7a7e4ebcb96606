"""The StreamPay profile: settlement_outbox exports as psql writes them, no reshaping.

The exports under ``tests/postgres/exports/`` were recorded from a real
PostgreSQL 15 holding StreamPay's table (see its README); the live versions
run in ``test_streampay_postgres.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from streampay_incident.cli import main
from streampay_incident.errors import InputError
from streampay_incident.io.pg_timestamps import parse_pg_timestamp, parse_source_timezone
from streampay_incident.io.rows import Row, iter_text_rows
from streampay_incident.io.streampay import (
    OutboxReading,
    PayloadPaths,
    copy_text_problem,
    detect_profile,
    outbox_rows,
    parse_json_path,
)

EXPORTS = Path(__file__).resolve().parent / "postgres" / "exports"
NOW = "2026-11-27T03:00:00Z"
DEAD_ID = "00000000-0000-4000-8000-000000000002"
FORMS = ("outbox.jsonl", "outbox.csv", "outbox-json-agg.json", "outbox-kolkata-timestamptz.csv")


def run(args: Sequence[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def triage(path: Path | str, *extra: str) -> Result:
    return run(["settlements", str(path), "--network", "testnet", "--now", NOW, *extra])


def report(path: Path | str, *extra: str) -> dict[str, Any]:
    result = triage(path, "--format", "json", *extra)
    assert result.exit_code == 1, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def verdicts(doc: dict[str, Any]) -> dict[str, tuple[str, bool, str]]:
    return {
        v["settlement_id"]: (v["state"], v["retry_safe"], v["retry_reason"])
        for v in doc["settlements"]
    }


def outbox(values: dict[str, Any], **reading: Any) -> Any:
    base = {
        "id": "00000000-0000-4000-8000-00000000aaaa",
        "event_key": "settlement:stream-x:1",
        "aggregate_id": "stream-x",
        "status": "pending",
        "created_at": "2026-11-27 02:00:00",
    }
    rows = [Row(1, {**base, **values})]
    return outbox_rows(
        rows, source="t.jsonl", reading=OutboxReading(**reading), network_passphrase=None
    )


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26 23:00:00", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-26T23:00:00", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-26 23:00:00.5", datetime(2026, 11, 26, 23, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-26 23:00:00.123456", datetime(2026, 11, 26, 23, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-26 23:00:00.123456789", datetime(2026, 11, 26, 23, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-26 23:00:00+00", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-27 04:30:00+05:30", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-26 15:00:00-08", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-26 23:53:28+00:53:28", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-26T23:00:00Z", datetime(2026, 11, 26, 23, tzinfo=UTC)),
        ("2026-11-26T23:00:00.25+0000", datetime(2026, 11, 26, 23, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_every_postgresql_timestamp_form_is_read(text: str, expected: datetime) -> None:
    parsed = parse_pg_timestamp(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["infinity", "2026-11-26", "2026-11-26 23:00", "2026-13-01 00:00:00", "", "1 BC"]
)
def test_what_is_not_a_timestamp_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_pg_timestamp(text)


def test_out_of_range_after_conversion_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_pg_timestamp("9999-12-31 23:00:00-05")


def test_a_time_without_offset_is_in_the_source_timezone() -> None:
    berlin = parse_source_timezone("Europe/Berlin")
    assert parse_pg_timestamp("2026-11-27 00:00:00", source_timezone=berlin) == datetime(
        2026, 11, 26, 23, tzinfo=UTC
    )
    # An explicit offset wins over the source zone.
    assert parse_pg_timestamp("2026-11-27 00:00:00+00", source_timezone=berlin) == datetime(
        2026, 11, 27, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("UTC", timedelta(0)),
        ("z", timedelta(0)),
        ("+05:30", timedelta(hours=5, minutes=30)),
        ("-08", timedelta(hours=-8)),
    ],
)
def test_source_timezone_forms(text: str, offset: timedelta) -> None:
    zone = parse_source_timezone(text)
    assert datetime(2026, 11, 27, tzinfo=zone).utcoffset() == offset


def test_an_unknown_source_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="not a time zone"):
        parse_source_timezone("Mars/Olympus")


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_printed_timestamps_round_trip(moment: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    aware = moment.replace(tzinfo=UTC).astimezone(zone)
    hours, rest = divmod(abs(minutes), 60)
    sign = "-" if minutes < 0 else "+"
    text = aware.strftime("%Y-%m-%d %H:%M:%S.%f") + f"{sign}{hours:02d}:{rest:02d}"
    assert parse_pg_timestamp(text) == moment.replace(tzinfo=UTC)


# --- payload paths -----------------------------------------------------------------------------


def test_json_paths() -> None:
    assert parse_json_path("$.result.hash") == ("result", "hash")
    assert parse_json_path("$['tx hash'][0]") == ("tx hash", 0)
    assert parse_json_path('$["a"].b') == ("a", "b")
    assert parse_json_path("transactionHash") == ("transactionHash",)
    for bad in ("", "$", "$.a..b", "$[x]"):
        with pytest.raises(ValueError):
            parse_json_path(bad)


def test_payload_key_specs() -> None:
    paths = PayloadPaths.from_options(["tx_hash=$.result.hash", "tx_hash=$.hashes[1]"])
    assert paths.find("tx_hash", {"result": {"hash": "h1"}, "transactionHash": "x"}) == (
        "payload.result.hash",
        "h1",
    )
    assert paths.find("tx_hash", {"hashes": ["a", "b"]}) == ("payload.hashes[1]", "b")
    assert paths.find("tx_hash", {"hashes": ["a"], "result": "flat"}) is None
    assert PayloadPaths().find("destination", {"to": "G1", "recipient": "G2"}) == (
        "payload.recipient",
        "G2",
    )
    for bad in ("memo=$.m", "tx_hash", "tx_hash=$.a..b"):
        with pytest.raises(ValueError):
            PayloadPaths.from_options([bad])


# --- rows through the profile --------------------------------------------------------------------


def test_detection_by_columns() -> None:
    assert detect_profile(["id", "event_key", "status"]) == "streampay"
    assert detect_profile(["id", "payload"]) == "streampay"
    assert detect_profile(["settlement_id", "id", "event_key"]) == "generic"
    assert detect_profile(["id", "status", "created_at"]) == "generic"


def test_payload_hash_first_match_wins_and_is_lower_cased() -> None:
    (row,) = outbox({"payload": {"hash": "A" * 64, "txHash": "b" * 64}})
    assert row.settlement.tx_hash == "b" * 64
    assert row.event_key == "settlement:stream-x:1" and row.aggregate_id == "stream-x"
    (row,) = outbox({"payload": json.dumps({"hash": "A" * 64})})  # jsonb as text (CSV)
    assert row.settlement.tx_hash == "a" * 64


def test_payload_fields_are_kept_as_given() -> None:
    from streampay_incident.io.streampay import translate_outbox_row

    payload = {"amount": "12.500000000", "asset": "native", "to": "GX", "from": "CY", "ledger": 7}
    problems: list[Any] = []
    translated = translate_outbox_row(Row(1, {"payload": payload}), OutboxReading(), problems, "t")
    assert problems == []
    assert translated.payload == {
        "amount": "12.500000000",
        "asset": "native",
        "destination": "GX",
        "escrow": "CY",
        "ledger": "7",
    }
    assert translated.payload_sources["destination"] == "payload.to"
    (row,) = outbox({"payload": payload, "available_at": "2026-11-27 03:05:00"})
    assert row.settlement.available_at == datetime(2026, 11, 27, 3, 5, tzinfo=UTC)


def test_problems_name_the_outbox_columns() -> None:
    with pytest.raises(InputError) as caught:
        outbox(
            {
                "id": None,
                "created_at": "2026-11-27T02:00",
                "updated_at": 5,
                "payload": {"transactionHash": "zz", "amount": {"v": 1}},
            }
        )
    fields = {p.field for p in caught.value.problems}
    assert fields == {"id", "created_at", "updated_at", "payload.transactionHash", "payload.amount"}
    for payload, message in (("{nope", "not valid JSON"), ("[1]", "expected a JSON object")):
        with pytest.raises(InputError, match=message):
            outbox({"payload": payload})


def test_a_configured_path_replaces_the_default_keys() -> None:
    reading = {"payload_paths": PayloadPaths.from_options(["tx_hash=$.result.hash"])}
    (row,) = outbox({"payload": {"transactionHash": "a" * 64}}, **reading)
    assert row.settlement.tx_hash is None
    (row,) = outbox({"payload": {"result": {"hash": "c" * 64}}}, **reading)
    assert row.settlement.tx_hash == "c" * 64


def test_copy_text_detection() -> None:
    assert copy_text_problem(['{"a": "x \\"q\\""}'], "f") is None
    problem = copy_text_problem(['{"a": 1}', '{"a": "x \\\\"q\\\\""}'], "f")
    assert problem is not None and problem.line == 2
    assert "psql -At" in problem.message and "csv header" in problem.message
    assert copy_text_problem(['{"e": "line\\\\nnext"}'], "f") is not None


# --- the exports as they come -------------------------------------------------------------------


def test_the_export_forms_give_the_same_report() -> None:
    docs = [report(EXPORTS / name) for name in FORMS]
    first = docs[0]
    assert first["inputs"]["profile"] == "streampay" and first["inputs"]["records"] == 20
    for doc in docs[1:]:
        assert verdicts(doc) == verdicts(first)
        assert [(f["code"], f["subject"]) for f in doc["findings"]] == [
            (f["code"], f["subject"]) for f in first["findings"]
        ]
    dead = next(f for f in first["findings"] if f["subject"] == DEAD_ID)
    assert dead["code"] == "SETTLEMENT_DEAD_LETTERED"
    assert dead["evidence"]["event_key"] == "settlement:stream-02:53010002"
    assert dead["evidence"]["aggregate_id"] == "stream-02"
    assert "from horizon\n    at submit" in dead["evidence"]["last_error"]  # multi-line, intact
    # available_at after now: pending and failed rows are backing off (the next attempt is due).
    for backing_off in (
        "00000000-0000-4000-8000-000000000017",
        "00000000-0000-4000-8000-000000000018",
    ):
        assert verdicts(first)[backing_off] == ("backing_off", False, "backing_off")
    assert dead["evidence"]["event_key"] == "settlement:stream-02:53010002"
    # The envelope in the payload gives the hash: the succeeded demo row is settled.
    assert verdicts(first)["00000000-0000-4000-8000-000000000001"][0] == "settled"


def test_text_report_shows_event_key_and_aggregate_id() -> None:
    result = triage(EXPORTS / "outbox.csv")
    assert result.exit_code == 1
    assert "event_key: settlement:stream-02:53010002; aggregate_id: stream-02" in result.stdout
    assert "profile: streampay" in result.stdout


def test_stdin_export() -> None:
    text = (EXPORTS / "outbox.jsonl").read_text(encoding="utf-8")
    result = run(
        ["settlements", "-", "--network", "testnet", "--now", NOW, "--format", "json"], stdin=text
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["inputs"]["records"] == 20


def test_copy_text_export_is_refused_naming_the_forms_that_work(tmp_path: Path) -> None:
    result = triage(EXPORTS / "outbox-copy-text.jsonl")
    assert result.exit_code == 2 and result.stdout == ""
    assert "outbox-copy-text.jsonl:4: doubled backslashes" in result.stderr
    assert "psql -At" in result.stderr and "csv header" in result.stderr
    text = (EXPORTS / "outbox-copy-text.jsonl").read_text(encoding="utf-8")
    stdin = run(["settlements", "-", "--network", "testnet", "--now", NOW], stdin=text)
    assert stdin.exit_code == 2 and "<stdin>:4: doubled backslashes" in stdin.stderr


def test_a_generic_export_with_escaped_backslashes_is_not_mistaken_for_copy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps(
            {
                "settlement_id": "s1",
                "status": "pending",
                "created_at": NOW,
                "last_error": "C:\\new\\temp",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    assert run(["settlements", str(path), "--now", NOW]).exit_code == 0


def test_profile_can_be_forced() -> None:
    result = triage(EXPORTS / "outbox.jsonl", "--profile", "generic")
    assert result.exit_code == 2
    assert "field 'settlement_id': required field is missing" in result.stderr


def test_forcing_streampay_on_a_generic_export_names_id(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps({"settlement_id": "s1", "status": "pending", "created_at": NOW}) + "\n",
        encoding="utf-8",
    )
    result = run(["settlements", str(path), "--profile", "streampay", "--now", NOW])
    assert result.exit_code == 2 and "field 'id': required field is missing" in result.stderr


def test_source_timezone_shifts_offsetless_times(tmp_path: Path) -> None:
    rows = list(iter_text_rows((EXPORTS / "outbox.jsonl").read_text("utf-8"), source="x"))
    pending = next(
        r.values for r in rows if r.values["status"] == "pending" and r.values["id"].endswith("9")
    )  # created 02:58 UTC, 2 min before NOW
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(pending) + "\n", encoding="utf-8")
    assert verdicts(json.loads(triage(path, "--format", "json").stdout))[pending["id"]][0] == (
        "in_flight"
    )
    # Written at UTC+01:00 instead, it was created an hour earlier: stuck unsubmitted.
    late = json.loads(triage(path, "--format", "json", "--source-timezone", "+01:00").stdout)
    assert verdicts(late)[pending["id"]][:2] == ("stuck", True)


def test_payload_key_option(tmp_path: Path) -> None:
    row = {
        "id": "u1",
        "event_key": "settlement:s:1",
        "status": "processing",
        "created_at": "2026-11-27 02:00:00",
        "payload": {"result": {"hash": "d" * 64}},
    }
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    doc = json.loads(
        triage(path, "--format", "json", "--payload-key", "tx_hash=$.result.hash").stdout
    )
    finding = next(f for f in doc["findings"] if f["subject"] == "u1")
    assert finding["code"] == "SETTLEMENT_STUCK_UNCONFIRMED"
    bad = triage(path, "--payload-key", "memo=$.m")
    assert bad.exit_code == 2 and "--payload-key" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["settlements"], "give FILE"),
        (["settlements", "x.jsonl", "--db", "postgresql://h/db"], "not both"),
        (["settlements", "x.jsonl", "--since", "2h"], "need --db"),
        (["settlements", "--db", "postgresql://h/db", "--profile", "generic"], "--profile"),
        (["settlements", "--db", "postgresql://h/db", "--since", "soon"], "duration"),
        (["settlements", "x.jsonl", "--source-timezone", "Nowhere/Land"], "not a time zone"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output


def test_an_empty_file_is_reported_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    result = run(["settlements", str(path), "--now", NOW])
    assert result.exit_code == 1 and "INPUT_EMPTY" in result.stdout


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    result = run(["settlements", str(tmp_path / "nope.jsonl"), "--now", NOW])
    assert result.exit_code == 2 and "file not found" in result.stderr


# --- the streampay payouts view ---------------------------------------------------------------

PAYOUT_FORMS = ("outbox.jsonl", "outbox.csv", "outbox-json-agg.json")
D1 = "GBUYDJH3AOPFFND3L54DUDWIHOMYKUONDV4RAHOHDBNN2D5N4BPPWDQ3"
USDC = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"


def payout_row(line: int = 1, **values: Any) -> Row:
    base: dict[str, Any] = {
        "id": f"u{line}",
        "event_key": f"settlement:stream-{line}:9",
        "aggregate_id": f"stream-{line}",
        "status": "succeeded",
        "created_at": "2026-11-27 02:00:00",
        "payload": {"amount": "12.500000000", "asset": "native", "destination": D1},
    }
    return Row(line, {**base, **values})


def test_outbox_payouts_map_ids_status_and_nine_decimal_amounts() -> None:
    from streampay_incident.io.outbox_payouts import outbox_payouts, payout_status

    rows = [
        payout_row(1),
        payout_row(
            2,
            status="processing",
            payload={"amount": 3, "asset": USDC, "to": D1, "txHash": "A" * 64, "ledger": 77},
        ),
        payout_row(
            3, status="processing", payload={"amount": "1", "asset": "XLM", "recipient": D1}
        ),
        payout_row(4, payload={"note": "no money named"}),
    ]
    view = outbox_payouts(rows, source="o.jsonl", reading=OutboxReading())
    first, second, third = view.payouts
    assert (first.payout_id, first.settlement_id, first.idempotency_key) == (
        "u1",
        "settlement:stream-1:9",
        "settlement:stream-1:9",
    )
    assert first.amount == 125_000_000 and first.status == "confirmed"
    assert first.created_at == datetime(2026, 11, 27, 2, tzinfo=UTC)
    assert (second.status, second.tx_hash, second.ledger) == ("submitted", "a" * 64, 77)
    assert third.status == "pending" and view.skipped == 1
    assert view.streams == {"u1": "stream-1", "u2": "stream-2", "u3": "stream-3"}
    assert [payout_status(s, None) for s in ("failed", "dead", "pending", "processing")] == [
        "failed",
        "failed",
        "pending",
        "pending",
    ]


def test_outbox_payout_problems_name_the_outbox_fields() -> None:
    from streampay_incident.io.outbox_payouts import outbox_payouts

    rows = [
        payout_row(1, payload={"amount": "12.500000001", "asset": "native", "destination": D1}),
        payout_row(2, payload={"amount": "5", "asset": "native", "to": "GNOTANACCOUNT"}),
        payout_row(
            3, created_at="yesterday", payload={"amount": "5", "asset": "native", "destination": D1}
        ),
    ]
    with pytest.raises(InputError) as caught:
        outbox_payouts(rows, source="o.jsonl", reading=OutboxReading())
    problems = {(p.line, p.field) for p in caught.value.problems}
    assert (1, "payload.amount") in problems and (2, "payload.to") in problems
    assert (3, "created_at") in problems
    message = next(p.message for p in caught.value.problems if p.line == 1)
    assert "Stellar amounts have 7 decimals" in message


@pytest.mark.parametrize("name", PAYOUT_FORMS)
def test_payouts_on_outbox_exports(name: str) -> None:
    result = run(["payouts", str(EXPORTS / name), "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["inputs"]["profile"] == "streampay"
    assert doc["inputs"]["records"] == 7 and doc["inputs"]["outbox_rows_without_payout"] == 13
    (finding,) = doc["findings"]
    assert finding["code"] == "PAYOUT_SUSPECTED_REPEAT"
    assert finding["evidence"]["aggregate_ids"] == ["stream-10", "stream-11"]
    text = run(["payouts", str(EXPORTS / name)]).stdout
    assert "streams: stream-10, stream-11" in text


def test_payouts_outbox_amount_past_seven_decimals_is_exit_2(tmp_path: Path) -> None:
    row = payout_row(1, payload={"amount": "2.000000010", "asset": "native", "destination": D1})
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps(row.values) + "\n", encoding="utf-8")
    result = run(["payouts", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert "field 'payload.amount'" in result.stderr
    assert "Stellar amounts have 7 decimals" in result.stderr
    stdin = run(["payouts", "-"], stdin=path.read_text("utf-8"))
    assert stdin.exit_code == 2 and "<stdin>:1" in stdin.stderr


def test_payouts_profile_choice_and_generic_stdin(tmp_path: Path) -> None:
    forced = run(["payouts", str(EXPORTS / "outbox.jsonl"), "--profile", "generic"])
    assert forced.exit_code == 2 and "field 'payout_id'" in forced.stderr
    generic = (
        "payout_id,settlement_id,destination,asset,amount,status,created_at\n"
        f"p1,s1,{D1},native,5,confirmed,2026-11-27T01:00:00Z\n"
    )
    assert run(["payouts", "-"], stdin=generic).exit_code == 0
    path = tmp_path / "p.csv"
    path.write_text(generic, "utf-8")
    wrong = run(["payouts", str(path), "--profile", "streampay"])
    assert wrong.exit_code == 2 and "field 'event_key'" in wrong.stderr
    assert run(["payouts", str(path)]).exit_code == 0
    missing = CliRunner().invoke(main, ["payouts"])
    assert missing.exit_code == 2 and "give FILE" in missing.output


def test_annotations_leave_other_findings_alone() -> None:
    from streampay_incident.codes import Severity
    from streampay_incident.io.outbox_payouts import OutboxPayouts
    from streampay_incident.io.streampay import OutboxRow, annotate_evidence
    from streampay_incident.model import Finding, Settlement

    settlement = Settlement("u1", "dead", datetime(2026, 11, 27, tzinfo=UTC))
    rows = {"u1": OutboxRow(settlement, event_key="k1", aggregate_id=None)}
    other = Finding("PLUGIN_ERROR", Severity.WARNING, "plugin", "boom")
    known = Finding("X", Severity.WARNING, "u1", "s", evidence={"event_key": "given"})
    assert list(annotate_evidence([other, known], rows)) == [other, known]
    assert known.evidence == {"event_key": "given"}
    view = OutboxPayouts([], {"p1": "stream-1"})
    plain = Finding("Y", Severity.WARNING, "d", "s", evidence={"payout_ids": ["p9"]})
    kept = Finding(
        "Z", Severity.WARNING, "d", "s", evidence={"payout_ids": ["p1"], "aggregate_ids": ["mine"]}
    )
    assert [f.evidence for f in view.annotate([plain, kept])] == [plain.evidence, kept.evidence]


def test_a_payout_row_without_aggregate_id() -> None:
    from streampay_incident.io.outbox_payouts import outbox_payouts

    row = payout_row(1)
    del row.values["aggregate_id"]
    view = outbox_payouts([row], source="o", reading=OutboxReading())
    assert len(view.payouts) == 1 and view.streams == {}


def test_the_readers_still_read_standard_input_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI reads streams itself (to detect the profile); the readers keep doing it too.
    import io as io_module
    import sys

    from streampay_incident.io.payouts import read_payouts
    from streampay_incident.io.rows import iter_rows

    csv_text = (
        "payout_id,settlement_id,destination,asset,amount,status,created_at\n"
        f'"p1",s1,{D1},native,5,confirmed,2026-11-27T01:00:00Z\n'
    )
    json_text = (
        json.dumps(
            {
                "payout_id": "p1",
                "settlement_id": "s1",
                "destination": D1,
                "asset": "native",
                "amount": "5",
                "status": "confirmed",
                "created_at": "2026-11-27T01:00:00Z",
            }
        )
        + "\n"
    )
    for text, reader in (
        (csv_text, read_payouts),
        (json_text, read_payouts),
        (csv_text, iter_rows),
    ):
        stdin = io_module.TextIOWrapper(io_module.BytesIO(text.encode()), encoding="utf-8")
        monkeypatch.setattr(sys, "stdin", stdin)
        assert len(list(reader("-"))) == 1
    # A row the fast CSV reader is unsure of goes to the reference reader, which names it.
    short = csv_text + "p2,s2\n"
    stdin = io_module.TextIOWrapper(io_module.BytesIO(short.encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(InputError, match="expected 7 columns"):
        read_payouts("-")
