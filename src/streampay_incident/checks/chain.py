"""Built-in chain checks (placeholder until implemented)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def streampay_incident_register_chain_checks() -> Sequence[Any]:
    return []


def grade_chain(observations: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
