"""Errors raised at the edges of the tool (parsers, probes, CLI)."""

from __future__ import annotations

import attrs


@attrs.frozen
class InputProblem:
    """One thing wrong with one record of an input: where, which field, what."""

    source: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f": field {self.field!r}"
        return f"{where}: {self.message}"


class InputError(Exception):
    """Input that cannot be triaged. Carries every problem found, not only the first.

    The CLI turns it into exit code 2 with one line per problem and no report;
    the web app into HTTP 422.
    """

    def __init__(self, problems: list[InputProblem] | InputProblem | str) -> None:
        if isinstance(problems, str):
            problems = [InputProblem("input", None, None, problems)]
        elif isinstance(problems, InputProblem):
            problems = [problems]
        self.problems: list[InputProblem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SecretSeedError(InputError):
    """An input held something shaped like a Stellar secret seed. Never echo it."""


# Values in messages are cut to this many characters: a 10 MB bad cell must not flood a terminal.
SHOWN_CHARS = 80


def shown(value: object, *, quote: bool = True) -> str:
    """``value`` for an error message: its first :data:`SHOWN_CHARS` characters, quoted.

    A longer value ends with ``...`` and its length. Never pass a value that
    may be a secret seed; name its field instead.
    """
    text = value if isinstance(value, str) else str(value)
    cut = text[:SHOWN_CHARS]
    out = repr(cut) if quote else cut
    return out if len(text) <= SHOWN_CHARS else f"{out}... ({len(text)} characters)"


class WrongNetworkError(InputError):
    """The evidence says the input or an endpoint is on another network than ``--network``.

    Exit 2 in the CLI, before any verdict: under the wrong passphrase every
    hash is "not found", which reads as "retry is safe".
    """
