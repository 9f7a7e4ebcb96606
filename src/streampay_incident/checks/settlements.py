"""Built-in settlements checks (placeholder until implemented)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def streampay_incident_register_settlement_checks() -> Sequence[Any]:
    return []


def classify_settlements(settlements: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
