"""Recordings: every raw answer of a probe round, written to JSON and read back.

``streampay-incident chain --record FILE`` writes one; ``--snapshot FILE
--now T`` grades it again offline, so an incident can be replayed and
attached to a postmortem. The recording holds what came over the wire
(status, the headers that matter, the body text, timing, when it was seen),
not our interpretation of it: a replay goes through the same parsers and the
same grader as the live run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from ..__about__ import __version__
from ..errors import InputError, InputProblem, SecretSeedError, shown
from ..io import strict_json
from ..io.rows import input_name, is_stream, read_text, seed_paths, seed_problem
from ..timefmt import format_rfc3339, parse_rfc3339
from .exchange import Exchange, as_seconds

SCHEMA = "streampay-incident.chain-recording/v1"

EndpointKind = Literal["horizon", "rpc"]


@attrs.frozen
class RecordedEndpoint:
    """One endpoint of a round: the URL as given, its kind, and how long it took."""

    url: str
    kind: EndpointKind
    duration_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "duration_seconds": self.duration_seconds}


@attrs.frozen
class Recording:
    """A probe round as recorded: the configuration, the endpoints, every exchange.

    ``now`` is the moment the live run graded it (replay with ``--now`` set to
    it to get the same report); ``started_at``/``finished_at`` bound the round.
    """

    network_passphrase: str
    timeout_seconds: float
    endpoints: tuple[RecordedEndpoint, ...]
    exchanges: tuple[Exchange, ...]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    now: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tool": {"name": "streampay-incident", "version": __version__},
            "network_passphrase": self.network_passphrase,
            "timeout_seconds": self.timeout_seconds,
            "started_at": _time(self.started_at),
            "finished_at": _time(self.finished_at),
            "now": _time(self.now),
            "endpoints": [e.to_json() for e in self.endpoints],
            "exchanges": [x.to_json() for x in self.exchanges],
        }

    @classmethod
    def from_json(cls, doc: Any, *, source: str = "recording") -> Recording:
        """Read a recording; :class:`InputError` naming every malformed part.

        Anything shaped like a secret seed, anywhere (an endpoint URL, a body),
        is refused naming where it is, never what it is: a replay prints URLs.
        """
        secret = seed_paths(doc)
        if secret:
            raise SecretSeedError([seed_problem(source, None, path) for path in secret])
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise InputError(
                InputProblem(source, None, "schema", f"not a chain recording (expected {SCHEMA})")
            )
        problems: list[InputProblem] = []
        passphrase = doc.get("network_passphrase")
        if not isinstance(passphrase, str) or not passphrase:
            problems.append(InputProblem(source, None, "network_passphrase", "missing"))
        try:
            timeout = as_seconds(doc.get("timeout_seconds", 0), "timeout_seconds")
        except ValueError as exc:
            message = str(exc).removeprefix("timeout_seconds: ")
            problems.append(InputProblem(source, None, "timeout_seconds", message))
            timeout = 0.0
        endpoints: list[RecordedEndpoint] = []
        for index, item in enumerate(_list(doc, "endpoints", source, problems)):
            try:
                kind = item["kind"]
                if kind not in ("horizon", "rpc"):
                    raise ValueError(f"kind {shown(kind)} is not horizon or rpc")
                endpoints.append(
                    RecordedEndpoint(
                        url=str(item["url"]),
                        kind=kind,
                        duration_seconds=as_seconds(
                            item.get("duration_seconds") or 0.0, "duration_seconds"
                        ),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                problems.append(InputProblem(source, None, f"endpoints[{index}]", _why(exc)))
        if not endpoints and not problems:
            problems.append(InputProblem(source, None, "endpoints", "no endpoint recorded"))
        exchanges: list[Exchange] = []
        for index, item in enumerate(_list(doc, "exchanges", source, problems)):
            try:
                exchanges.append(Exchange.from_json(item))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                problems.append(InputProblem(source, None, f"exchanges[{index}]", _why(exc)))
        times: dict[str, datetime | None] = {}
        for key in ("started_at", "finished_at", "now"):
            value = doc.get(key)
            try:
                times[key] = None if value is None else parse_rfc3339(str(value))
            except ValueError as exc:
                problems.append(InputProblem(source, None, key, str(exc)))
        if problems:
            raise InputError(problems)
        return cls(
            network_passphrase=str(passphrase),
            timeout_seconds=timeout,
            endpoints=tuple(endpoints),
            exchanges=tuple(exchanges),
            started_at=times["started_at"],
            finished_at=times["finished_at"],
            now=times["now"],
        )


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_rfc3339(moment)


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {shown(exc.args[0])}"
    return str(exc) or type(exc).__name__


def _list(doc: Mapping[str, Any], key: str, source: str, problems: list[InputProblem]) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        problems.append(InputProblem(source, None, key, "missing or not a list"))
        return []
    return value


class Recorder:
    """Collects every exchange of a round (a sink for :func:`~.http.fetch`) and writes it out."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.endpoints: list[RecordedEndpoint] = []
        self.network_passphrase: str = ""
        self.timeout_seconds: float = 0.0
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.now: datetime | None = None

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def recording(self) -> Recording:
        return Recording(
            network_passphrase=self.network_passphrase,
            timeout_seconds=self.timeout_seconds,
            endpoints=tuple(self.endpoints),
            exchanges=tuple(self.exchanges),
            started_at=self.started_at,
            finished_at=self.finished_at,
            now=self.now,
        )

    def write(self, path: Path | str) -> None:
        """Write the recording as indented JSON (UTF-8), replacing ``path``."""
        text = json.dumps(self.recording().to_json(), indent=2, ensure_ascii=False) + "\n"
        Path(path).write_text(text, encoding="utf-8")


def read_recording(path: Path | str) -> Recording:
    """Load a recording file (or ``-``, a FIFO: read once); :class:`InputError` when
    unreadable or malformed."""
    source = input_name(path) if is_stream(path) else Path(path).name
    try:
        doc = strict_json.loads(read_text(path, source=source))
    except strict_json.JsonProblem as exc:
        raise InputError(InputProblem(source, exc.lineno, exc.key, exc.message)) from None
    return Recording.from_json(doc, source=source)
