"""Calling one plugin check: its keywords, its time budget, its findings checked.

The registry (:mod:`streampay_incident.registry`) decides which checks run;
this module calls one and vets what comes back. A third-party check runs in a
daemon worker thread with a deadline (:func:`call_within`); its findings must
be :class:`~streampay_incident.model.Finding` values with a declared code and
a :class:`~streampay_incident.codes.Severity`, and evidence JSON cannot hold
is made safe (:func:`json_safe`) rather than lost.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from . import codes
from .model import Finding


def check_name(check: Callable[..., Any]) -> str:
    name = getattr(check, "__qualname__", None) or getattr(check, "__name__", None)
    return str(name) if name else repr(check)


def accepts(check: Callable[..., Any], keyword: str) -> bool:
    """Whether ``check`` takes ``keyword`` (by name or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(check).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pass only the old keywords
        return False
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == keyword and p.kind is not p.POSITIONAL_ONLY)
        for p in parameters
    )


class Overrun(Exception):
    """A check that did not return within its budget (left running in its thread)."""


def call_within(budget: float, call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread, waiting at most ``budget`` seconds.

    The thread sees the codes in force (the context is copied). On overrun it
    is abandoned, left to finish in the background: Python cannot stop a
    thread, which is why a check must not hold resources.
    """
    context = contextvars.copy_context()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = context.run(call)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="streampay-incident-check", daemon=True)
    worker.start()
    worker.join(budget)
    if worker.is_alive():
        raise Overrun
    if "error" in box:
        raise box["error"]
    return box["value"]


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: anything else (``Decimal``, ``datetime``, a set, NaN)
    becomes its ``str()``, so a plugin's finding survives ``--format json``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def valid_findings(
    produced: Iterable[Any], table: Mapping[str, codes.FindingCode]
) -> list[Finding]:
    """A check's findings, validated; ``TypeError``/``ValueError`` names the first bad one.

    Each must be a :class:`Finding` with a declared code and a :class:`Severity`;
    evidence JSON cannot hold is made safe (:func:`json_safe`).
    """
    out = []
    for f in produced:
        if not isinstance(f, Finding):
            raise TypeError(f"returned {type(f).__name__}, not a Finding")
        if f.code not in table:
            raise ValueError(f"finding code {f.code!r} is not declared")
        if not isinstance(f.severity, codes.Severity):
            raise ValueError(f"finding {f.code} has severity {f.severity!r}, not a Severity")
        try:
            json.dumps(dict(f.evidence), allow_nan=False)
        except (TypeError, ValueError):
            f = attrs.evolve(f, evidence=json_safe(dict(f.evidence)))
        out.append(f)
    return out
