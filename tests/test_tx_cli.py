"""``streampay-incident tx inspect``: one envelope or JSON Lines from stdin; network required."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from click.testing import CliRunner, Result

from conftest import load_fixture
from streampay_incident.cli import main

TRIPLES = load_fixture("tx_hash_triples.json")["triples"]
NETWORK_NAMES = {
    "Public Global Stellar Network ; September 2015": "public",
    "Test SDF Network ; September 2015": "testnet",
}


def run(args: Sequence[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["tx", "inspect", *args], input=stdin, catch_exceptions=False)


def test_one_envelope_prints_the_flat_json_object() -> None:
    triple = next(t for t in TRIPLES if "inner_transaction_hash" in t)
    result = run([triple["envelope_xdr"], "--network", "public"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["hash"] == triple["expected_hash"]
    assert doc["inner_hash"] == triple["inner_transaction_hash"]
    assert doc["envelope_type"] == "tx_fee_bump"
    assert doc["memo_type"] == "none" and doc["memo"] is None
    assert isinstance(doc["sequence"], str) and isinstance(doc["fee"], int)
    assert doc["min_time"] is None and doc["max_time"] is None
    assert all(isinstance(v, str | int | list | None) for v in doc.values())  # flat
    assert {"type"} <= set(doc["operations"][0])


def test_full_passphrase_works_like_a_name() -> None:
    triple = TRIPLES[0]
    by_name = run([triple["envelope_xdr"], "--network", "public"]).stdout
    by_phrase = run([triple["envelope_xdr"], "--network", triple["network_passphrase"]]).stdout
    assert by_name == by_phrase


def test_text_format() -> None:
    triple = next(t for t in TRIPLES if t["memo_value"] == "hello world")
    result = run([triple["envelope_xdr"], "--network", "public", "--format", "text"])
    assert result.exit_code == 0
    assert f"hash: {triple['expected_hash']}" in result.stdout
    assert "memo: hello world" in result.stdout
    assert "min_time: -" in result.stdout  # null shown as a dash
    assert "  op 1: " in result.stdout


def test_text_format_shows_a_memo_s_control_characters_escaped() -> None:
    """Anyone can pay with any memo: its text must not drive the on-call's terminal."""
    from stellar_sdk import TextMemo

    from test_envelope import TESTNET, build_envelope

    envelope, _ = build_envelope(memo=TextMemo("a\x1b]0;pwned\x07\nfee: 0"))
    result = run([envelope, "--network", TESTNET, "--format", "text"])
    assert result.exit_code == 0
    assert "memo: a\\x1b]0;pwned\\x07\\x0afee: 0\n" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\nfee: 0" not in result.stdout


def test_network_is_required() -> None:
    result = run([TRIPLES[0]["envelope_xdr"]])
    assert result.exit_code == 2
    assert "--network" in result.stderr


def test_not_an_envelope_exits_2_with_a_clear_message() -> None:
    result = run(["hello", "--network", "public"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "not a transaction envelope" in result.stderr
    assert "Traceback" not in result.output


def test_stdin_prints_json_lines_for_every_envelope() -> None:
    chosen = TRIPLES[:5]  # all pubnet
    stdin = "\n".join(t["envelope_xdr"] for t in chosen) + "\n\n"
    result = run(["-", "--network", "public"], stdin=stdin)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [json.loads(line)["hash"] for line in lines] == [t["expected_hash"] for t in chosen]


def test_every_triple_through_stdin_on_its_network() -> None:
    for network in NETWORK_NAMES:
        chosen = [t for t in TRIPLES if t["network_passphrase"] == network]
        stdin = "".join(t["envelope_xdr"] + "\n" for t in chosen)
        result = run(["-", "--network", NETWORK_NAMES[network]], stdin=stdin)
        hashes = [json.loads(line)["hash"] for line in result.stdout.splitlines()]
        assert hashes == [t["expected_hash"] for t in chosen]


def test_stdin_text_format_separates_envelopes() -> None:
    stdin = TRIPLES[0]["envelope_xdr"] + "\n" + TRIPLES[1]["envelope_xdr"] + "\n"
    result = run(["-", "--network", "public", "--format", "text"], stdin=stdin)
    assert result.stdout.count("hash: ") == 2
    assert "\n\nhash: " in result.stdout


def test_bad_stdin_line_is_named_and_nothing_is_printed() -> None:
    first, second = TRIPLES[0]["envelope_xdr"], TRIPLES[1]["envelope_xdr"]
    stdin = "\n".join([first, "", "garbage!", "AAAA", second])
    result = run(["-", "--network", "public"], stdin=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: <stdin>:3: not a transaction envelope (not base64 XDR)",
        "error: <stdin>:4: not a Stellar transaction envelope (XDR decoding failed: EOFError)",
    ]


def test_seed_shaped_input_is_refused_without_echo() -> None:
    from stellar_sdk import Keypair

    seed = Keypair.random().secret
    result = run([seed, "--network", "public"])
    assert result.exit_code == 2
    assert seed not in result.output
    assert "secret seed" in result.stderr
    stdin = f"{TRIPLES[0]['envelope_xdr']}\n{seed}\n"
    stdin_result = run(["-", "--network", "public"], stdin=stdin)
    assert stdin_result.exit_code == 2
    assert seed not in stdin_result.output and "<stdin>:2" in stdin_result.stderr


def test_a_real_process_reads_stdin() -> None:
    stdin = "".join(t["envelope_xdr"] + "\n" for t in TRIPLES[:3])
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streampay_incident.cli import main; main()",
            "tx",
            "inspect",
            "-",
            "--network",
            "public",
        ],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
