"""JSON text read strictly: the one parser every JSON input goes through.

Python's ``json`` module is lenient where an incident tool cannot be: the
last of two equal keys silently wins (``"status":"pending","status":"dead"``
is triaged as dead), ``NaN`` and ``Infinity`` are accepted and ``1e400``
becomes ``inf`` (neither is JSON, and either would end up in a report), a
5,000-digit integer raises a bare ``ValueError`` (Python's int-digits limit)
and deep nesting a ``RecursionError``. Here each of those is a
:class:`JsonProblem` naming what is wrong (the key, for a duplicate), which
the readers turn into an input error (exit 2, HTTP 422).
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Callable
from typing import Any

from ..errors import shown

# Deeper than any Horizon, RPC, recording or export document (they nest 5 or 6 levels).
MAX_DEPTH = 64
# An integer JSON number may have this many digits (int64, uint64 and i128 all fit).
MAX_INT_DIGITS = 40

_CONTAINERS = (dict, list)


class JsonProblem(ValueError):
    """Text that is not strict JSON. ``key`` names a duplicate key; ``lineno`` the line, if known;
    ``syntax`` is the json module's message for a syntax error (e.g. ``Extra data``)."""

    def __init__(
        self,
        message: str,
        *,
        lineno: int | None = None,
        key: str | None = None,
        syntax: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.key = key
        self.syntax = syntax


class _NumberProblem(JsonProblem):
    """A number JSON does not allow, or one too large: :func:`loads` then finds where it is."""


# Stands in for a refused number while :func:`_where_refused` looks for it.
_REFUSED = object()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        from .rows import contains_seed  # rows imports this module

        counts = collections.Counter(key for key, _value in pairs)
        key = next(key for key, _value in pairs if counts[key] > 1)
        raise JsonProblem(
            "duplicate key in one JSON object (which of its values is meant is ambiguous)",
            key=None if contains_seed(key) else shown(key, quote=False),
        )
    return obj


def _constant(name: str) -> Any:
    raise _NumberProblem(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def finite_float(text: str) -> float:
    """A JSON fraction as a float; :class:`JsonProblem` when it overflows to infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise _NumberProblem(f"the number {shown(text)} is out of range")
    return value


def bounded_int(text: str) -> int:
    """A JSON integer as an int; :class:`JsonProblem` beyond :data:`MAX_INT_DIGITS` digits."""
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _NumberProblem(
            f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)"
        )
    return int(text)


def too_deep(doc: Any, limit: int = MAX_DEPTH) -> bool:
    """True when arrays and objects nest more than ``limit`` levels in ``doc``."""
    stack = [(doc, 1)] if isinstance(doc, _CONTAINERS) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, _CONTAINERS))
    return False


def loads(
    text: str,
    *,
    parse_float: Callable[[str], Any] = finite_float,
    parse_int: Callable[[str], Any] = bounded_int,
) -> Any:
    """The JSON value of ``text``, or :class:`JsonProblem`: never another exception.

    Refuses duplicate keys, ``NaN``/``Infinity``, numbers that overflow,
    integers over :data:`MAX_INT_DIGITS` digits (unless ``parse_int`` keeps
    their text) and nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=parse_float,
            parse_int=parse_int,
        )
    except json.JSONDecodeError as exc:
        raise JsonProblem(
            f"not valid JSON ({exc.msg})", lineno=exc.lineno, syntax=exc.msg
        ) from None
    except RecursionError:
        raise JsonProblem(_DEEP) from None
    except _NumberProblem as exc:
        exc.key = _where_refused(text, parse_float, parse_int)
        raise
    # The count bounds the depth from above: the walk runs only when it could find something.
    if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(doc):
        raise JsonProblem(_DEEP)
    return doc


def _where_refused(
    text: str, parse_float: Callable[[str], Any], parse_int: Callable[[str], Any]
) -> str | None:
    """The path (``endpoints[0].duration_seconds``) of the first number :func:`loads` refused.

    Parses again with the refused numbers as a marker (only ever on the error path).
    """
    from .rows import contains_seed  # rows imports this module

    def marked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
        def parse_or_mark(number: str) -> Any:
            try:
                parse(number)
            except _NumberProblem:
                return _REFUSED
            return 0

        return parse_or_mark

    try:
        doc = json.loads(
            text,
            parse_constant=lambda _name: _REFUSED,
            parse_float=marked(parse_float),
            parse_int=marked(parse_int),
        )
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, node = stack.pop()
        if node is _REFUSED:
            return path or None
        if isinstance(node, dict):
            items = [
                (f"{path}.{key}" if path else key, value)
                for key, value in (
                    ("<key>" if contains_seed(k) else shown(k, quote=False), v)
                    for k, v in node.items()
                )
            ]
        elif isinstance(node, list):
            items = [(f"{path}[{index}]", value) for index, value in enumerate(node)]
        else:
            continue
        stack.extend(reversed(items))  # depth first, in document order
    return None  # pragma: no cover - the marker is where the first parse stopped


_DEEP = f"arrays and objects nested more than {MAX_DEPTH} levels deep"
