"""The ``streampay-incident`` commands shown in the docs, as the tests run them.

Reads the shell blocks (```sh, bash, shell, console) of a Markdown file, joins
backslash continuations, splits ``a && b`` / ``a ; b`` into separate commands and
turns each tool invocation into a :class:`RunbookCommand`: its ``NAME=value``
environment, its arguments (placeholders such as ``<PAYOUTS_FILE>`` kept) and the
file given with ``< FILE`` as its stdin.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_SHELL_LANGS = {"sh", "bash", "shell", "console"}
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
_STOP_TOKENS = {"|", "||", ">", ">>", "<", ";", "&", "&&", "2>", "2>&1"}
_SEPARATOR = re.compile(r"\s(?:&&|;)\s")


def _code_blocks(path: Path) -> Iterator[tuple[str, int, str]]:
    """(language, line number of the first body line, body) of every fenced block."""
    text = path.read_text(encoding="utf-8")
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start("body")) + 1
        indent = match.group("indent")
        body = "\n".join(
            ln[len(indent) :] if ln.startswith(indent) else ln
            for ln in match.group("body").splitlines()
        )
        yield match.group("lang").lower(), line, body


def _logical_lines(body: str, first_line: int) -> Iterator[tuple[int, str]]:
    """Lines of a shell block, backslash continuations joined, with their line numbers."""
    pending = ""
    start = first_line
    for offset, raw in enumerate(body.splitlines()):
        if not pending:
            start = first_line + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield start, (pending + raw).strip()
        pending = ""
    if pending:
        yield start, pending.strip()


class RunbookCommand:
    """One ``streampay-incident`` invocation shown in a runbook."""

    def __init__(
        self,
        path: Path,
        line: int,
        text: str,
        env: dict[str, str],
        args: list[str],
        stdin: str | None = None,
    ):
        self.path = path
        self.line = line
        self.text = text
        self.env = env
        self.args = args
        self.stdin = stdin

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"

    def placeholders(self) -> set[str]:
        found = {p for a in self.args for p in _PLACEHOLDER.findall(a)}
        found |= {p for v in self.env.values() for p in _PLACEHOLDER.findall(v)}
        return found


def parse_command(path: Path, line: int, text: str) -> RunbookCommand | None:
    """The tool invocation in one shell line, or None when the line runs something else.

    Placeholders are protected from the shell tokenizer (``<`` and ``>`` are
    redirections to it); the command ends at the first pipe, redirection or
    separator; leading ``NAME=value`` words become the environment.
    """
    if text.startswith("$ "):
        text = text[2:]
    if not text or text.startswith("#") or "streampay-incident" not in text:
        return None
    protected = _PLACEHOLDER.sub(lambda m: f"@@{m.group(1)}@@", text)
    lexer = shlex.shlex(protected, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    env: dict[str, str] = {}
    index = 0
    while index < len(tokens) and _ENV_ASSIGNMENT.match(tokens[index]):
        name, _, value = tokens[index].partition("=")
        env[name] = value
        index += 1
    if index >= len(tokens) or tokens[index] != "streampay-incident":
        # The tool later in a pipeline (`echo ... | streampay-incident ...`) could not be
        # run by this test; `pipx install streampay-incident` is not an invocation.
        later = [i for i, t in enumerate(tokens) if t == "streampay-incident" and i > 0]
        if any(tokens[i - 1] in _STOP_TOKENS for i in later):
            raise AssertionError(
                f"{path.name}:{line}: the tool must start the command (after NAME=value words) "
                f"so the tests can run it: {text}"
            )
        return None
    args: list[str] = []
    stdin = None
    rest = tokens[index + 1 :]
    for position, token in enumerate(rest):
        if token in _STOP_TOKENS:
            if token == "<" and position + 1 < len(rest):
                stdin = rest[position + 1]
            break
        args.append(token)
    unprotect = re.compile(r"@@([A-Z][A-Z0-9_]*)@@")
    args = [unprotect.sub(r"<\1>", a) for a in args]
    env = {k: unprotect.sub(r"<\1>", v) for k, v in env.items()}
    return RunbookCommand(path, line, text, env, args, stdin)


def parse_commands(path: Path, line: int, text: str) -> list[RunbookCommand]:
    """Every tool invocation in one shell line (``a && b`` and ``a ; b`` are two)."""
    found = (parse_command(path, line, part.strip()) for part in _SEPARATOR.split(text))
    return [command for command in found if command is not None]


def commands_in(path: Path) -> list[RunbookCommand]:
    """Every tool invocation in the shell blocks of one Markdown file, in order."""
    commands = []
    for lang, first_line, body in _code_blocks(path):
        if lang not in _SHELL_LANGS:
            continue
        for line, text in _logical_lines(body, first_line):
            commands.extend(parse_commands(path, line, text))
    return commands
