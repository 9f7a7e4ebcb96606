"""Built-in payouts checks (placeholder until implemented)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def streampay_incident_register_payout_checks() -> Sequence[Any]:
    return []


def find_payout_anomalies(payouts: Any, *, policy: Any = None) -> Any:
    raise NotImplementedError
