"""The layering holds without anyone watching: import-linter contracts, names, primitives."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "streampay_incident"


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--config",
            str(ROOT / "pyproject.toml"),
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def importlinter() -> None:
    pytest.importorskip("importlinter")


def test_the_import_contracts_are_kept(importlinter: None) -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("checks/chain.py", "import httpx"),
        ("checks/settlements.py", "from ..probes import ChainConfig"),
        ("io/rows.py", "from .. import usecases"),
    ],
)
def test_a_broken_layer_fails_the_lint(
    importlinter: None, tmp_path: Path, module: str, line: str
) -> None:
    copy = tmp_path / "src" / "streampay_incident"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "demo_data"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", "utf-8")
    result = lint_imports(tmp_path / "src")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


SHELL_MUST_NOT_NAME = ("run_checks", "classify_settlements", "find_payout_anomalies")


def test_the_shells_name_no_triage_function() -> None:
    names = (*SHELL_MUST_NOT_NAME, "settlement_findings")
    for shell in ("cli", "web"):
        for path in (SRC / shell).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in names:
                assert name not in text, f"{path.relative_to(SRC)} names {name}"


def test_strkey_checksum_code_lives_only_under_stellar() -> None:
    checksum = re.compile(r"crc_hqx|crc16|b32encode|b32decode|0x1021", re.IGNORECASE)
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] == "stellar":
            continue
        assert not checksum.search(path.read_text(encoding="utf-8")), path.relative_to(SRC)


def test_no_module_is_over_600_lines_and_long_ones_say_why() -> None:
    for path in SRC.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) <= 600, f"{path.relative_to(SRC)}: {len(lines)} lines"
        if len(lines) > 400:
            head = " ".join(" ".join(lines[:30]).split()).lower()
            assert "over 400 lines" in head, path.relative_to(SRC)
