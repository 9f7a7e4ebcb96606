"""Query parameters as a hostile client may send them.

A query string is input like a body: a name or value shaped like a Stellar
secret seed is refused with the parameter named and the value never shown;
a timestamp that does not parse gets a message that says why, including the
classic trap that a raw ``+`` in a query string means a space.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..errors import InputProblem
from ..io.rows import contains_seed, seed_problem
from ..timefmt import parse_rfc3339

SOURCE = "query"
SEED_NAMED_PARAMETER = "<parameter name>"
PLUS_IS_SPACE = (
    "a raw '+' in a query string means a space: send the offset as %2B "
    "(e.g. 2026-11-27T03:00:00%2B01:00) or use Z"
)


def seed_problems(parameters: Iterable[tuple[str, str]]) -> list[InputProblem]:
    """One problem per parameter whose name or value looks like a secret seed, value unshown.

    A parameter whose *name* is seed-shaped is reported as ``<parameter name>``.
    """
    problems = []
    for name, value in parameters:
        if contains_seed(name):
            problems.append(seed_problem(SOURCE, None, SEED_NAMED_PARAMETER))
        elif contains_seed(value):
            problems.append(seed_problem(SOURCE, None, name))
    return problems


def only_seed_problems(problems: list[InputProblem]) -> list[InputProblem]:
    """The seed problems when there are any (other messages might quote the seed), else all."""
    seeds = [p for p in problems if "secret seed" in p.message]
    return seeds or problems


def query_time(name: str, text: str, problems: list[InputProblem]) -> datetime | None:
    """``text`` as an RFC 3339 time, or None after adding a problem naming ``name``."""
    try:
        return parse_rfc3339(text)
    except (ValueError, OverflowError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "date out of range"
        if " " in text:
            message = f"{message}; {PLUS_IS_SPACE}"
        problems.append(InputProblem(SOURCE, None, name, message))
        return None
