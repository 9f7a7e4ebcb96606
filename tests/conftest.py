"""Shared test fixtures: where the recorded Stellar bodies live, hypothesis profiles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
# Recorded bodies live in the repository (provenance: tests/fixtures/README.md), so a
# fresh clone runs every test with nothing beside it.
FIXTURES_ROOT = REPO / "tests" / "fixtures"
FIXTURES = FIXTURES_ROOT / "stellar"
HMAC_VECTORS = FIXTURES_ROOT / "interop" / "streampay-hmac-v1.json"

# The fixture plugin authors use (they add the same line to their conftest.py).
pytest_plugins = ["streampay_incident.testing"]

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def load_fixture(relative: str) -> Any:
    """A recorded body from ``tests/fixtures/stellar`` as parsed JSON."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def demo_data(tmp_path: Path) -> Path:
    """The bundled demo files, written out by the tool itself (``demo --write-data``)."""
    from click.testing import CliRunner

    from streampay_incident.cli import main

    target = tmp_path / "demo-data"
    result = CliRunner().invoke(main, ["demo", "--write-data", str(target)])
    assert result.exit_code == 0, result.output
    return target
