"""A settlements report of any size, written a piece at a time through temporary files.

A report's findings come worst first and its first line counts them: nothing can be
printed before the last settlement is judged. Held as values, the verdicts and findings
of a million-row outbox take gigabytes; :class:`SettlementSpool` keeps them on disk
instead. Each verdict is rendered the moment it comes (verdicts keep input order);
findings are sorted in runs of :data:`FINDINGS_RUN` and the runs merged at the end (an
external merge sort, stable as :func:`~streampay_incident.report.sorted_findings`).
:meth:`SettlementSpool.write` renders the whole report into a file that the shell
copies to stdout only when it is complete: a bad row anywhere still means no report.

The bytes are those of :func:`~streampay_incident.report.render` for the same report:
the pieces are its own (:mod:`streampay_incident.report`). Scratch files only: they are
unlinked from the start (:func:`tempfile.TemporaryFile`) and hold nothing but the report.
"""

from __future__ import annotations

import heapq
import json
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Protocol

import attrs

from .codes import Severity
from .io.rows import may_hold_seed, seed_paths
from .model import Finding, Report, SettlementVerdict
from .report import (
    MARKDOWN_FINDINGS_HEAD,
    TextWriter,
    finding_rank,
    json_item,
    markdown_finding,
    markdown_head,
    markdown_settlements_head,
    markdown_verdict,
    report_to_json,
    text_finding,
    text_group_head,
    text_head,
    text_settlements_head,
    text_verdict,
    verdict_json_item,
    verdict_runbook,
)
from .runbooks import docs_link

#: Findings held in memory before a sorted run of them goes to disk.
FINDINGS_RUN = 20_000
_ITEM = "    "  # the indent of an item of a top-level JSON list
_Ranked = tuple[tuple[int, str, str], Finding]


class SpooledCounts(Protocol):
    """What the head of the report says about what the spool holds
    (:class:`~streampay_incident.usecases.StreamedTriage` is one)."""

    @property
    def findings(self) -> int: ...
    @property
    def severities(self) -> Mapping[Severity, int]: ...
    @property
    def actions(self) -> Mapping[str, int]: ...


class SettlementSpool:
    """The verdicts and findings of a settlements report, on disk, rendered as ``fmt``.

    :meth:`add` takes a batch (each verdict's findings are in the same batch);
    :meth:`write` renders the report around them. ``seed_paths`` names every part
    holding something shaped like a secret seed (as
    :func:`~streampay_incident.io.rows.seed_paths` of the JSON report would): the
    shell refuses such a report. Close it (or use it as a context manager).
    """

    def __init__(
        self,
        fmt: str,
        *,
        color: bool = False,
        docs_url: str | None = None,
        findings_run: int = FINDINGS_RUN,
    ) -> None:
        self.fmt = fmt
        self.color = color
        self.docs_url = docs_url
        self.findings_run = findings_run
        self.seed_paths: list[str] = []
        # Closed in close(): the spool outlives any one block.
        self._verdicts: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115
            "w+", encoding="utf-8", newline=""
        )
        self._text = TextWriter(self._verdicts, color=color) if fmt == "text" else None
        self._verdict_count = 0
        self._buffer: list[tuple[tuple[int, str, str], int, Finding]] = []
        self._runs: list[IO[bytes]] = []
        self._finding_count = 0

    def __enter__(self) -> SettlementSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._verdicts.close()
        for run in self._runs:
            run.close()

    @property
    def findings_in_memory(self) -> int:
        """Findings held in memory: always fewer than ``findings_run`` between batches."""
        return len(self._buffer)

    # -- filling --------------------------------------------------------------------------

    def add(self, verdicts: Sequence[SettlementVerdict], findings: Sequence[Finding]) -> None:
        """One batch: its verdicts (in input order) and every finding about them."""
        about: dict[str, list[Finding]] = {}
        for f in findings:
            about.setdefault(f.subject, []).append(f)
        for verdict in verdicts:
            self._add_verdict(verdict, tuple(about.get(verdict.settlement_id, ())))
        for f in findings:
            self._buffer.append((finding_rank(f), self._finding_count, f))
            self._finding_count += 1
        if len(self._buffer) >= self.findings_run:
            self._spill()

    def _add_verdict(self, verdict: SettlementVerdict, findings: tuple[Finding, ...]) -> None:
        index = self._verdict_count
        self._verdict_count += 1
        if self.fmt == "json":
            piece = verdict_json_item(verdict)
            self._check_seeds(piece, verdict.to_json(), f"settlements[{index}]")
            self._verdicts.write(f"{',' if index else ''}\n{_ITEM}{piece}")
            return
        self._check_seeds(None, verdict.to_json(), f"settlements[{index}]")
        # A verdict's deciding finding is one of its own, so its batch's findings are enough.
        runbook = docs_link(verdict_runbook(verdict, findings), self.docs_url)
        if self._text is not None:
            text_verdict(self._text, verdict, runbook)
        else:
            self._verdicts.write(markdown_verdict(verdict, runbook) + "\n")

    def _check_seeds(self, text: str | None, doc: Any, path: str) -> None:
        if text is None:
            text = json.dumps(doc, ensure_ascii=False)
        if may_hold_seed(text):
            self.seed_paths += [f"{path}.{p}" for p in seed_paths(doc)]

    def _spill(self) -> None:
        self._buffer.sort(key=lambda item: (item[0], item[1]))
        run = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        for rank, _, finding in self._buffer:
            pickle.dump((rank, finding), run, protocol=pickle.HIGHEST_PROTOCOL)
        run.seek(0)
        self._runs.append(run)
        self._buffer = []

    # -- reading back ---------------------------------------------------------------------

    def _sorted_findings(self) -> Iterator[Finding]:
        if not self._runs:
            self._buffer.sort(key=lambda item: (item[0], item[1]))
            yield from (finding for _, _, finding in self._buffer)
            return
        self._spill()  # runs hold input order, and merge() takes ties from the earlier run
        for _, finding in heapq.merge(*(_read_run(run) for run in self._runs), key=_rank):
            yield finding

    def _shown_findings(self) -> Iterator[tuple[Finding, str | None]]:
        """The findings in report order, seed-checked, with runbook links as shown; for JSON,
        with the finding's item as :func:`render_json` writes it."""
        for index, f in enumerate(self._sorted_findings()):
            doc = f.to_json()
            piece = json_item(doc) if self.fmt == "json" else None
            self._check_seeds(piece, doc, f"findings[{index}]")
            if self.docs_url:
                f = attrs.evolve(f, runbook=docs_link(f.runbook, self.docs_url))
                piece = json_item(f.to_json()) if self.fmt == "json" else None
            yield f, piece

    def write(self, head: Report, counts: SpooledCounts, out: IO[str]) -> None:
        """The whole report into ``out``: ``head`` (a report without findings or verdicts:
        its status, inputs and notes) around what the spool holds; ``counts`` says how many
        findings it holds (``findings``, ``severities``) and ``actions`` (``summary``)."""
        self._verdicts.flush()
        self._verdicts.seek(0)
        if self.fmt == "json":
            self._write_json(head, counts, out)
        elif self.fmt == "markdown":
            self._write_markdown(head, counts, out)
        else:
            self._write_text(head, counts, out)

    def _write_json(self, head: Report, counts: SpooledCounts, out: IO[str]) -> None:
        doc = report_to_json(head)
        doc["summary"] = {"actions": dict(counts.actions)}
        skeleton = json.JSONEncoder(indent=2, ensure_ascii=False).encode(doc)
        # Top-level keys are the only ones indented by exactly two spaces.
        before, rest = skeleton.split('\n  "findings": []', 1)
        between, after = rest.split('\n  "settlements": []', 1)
        out.write(before + '\n  "findings": ')
        if counts.findings:
            out.write("[")
            for index, (_, piece) in enumerate(self._shown_findings()):
                out.write(f"{',' if index else ''}\n{_ITEM}{piece}")
            out.write("\n  ]")
        else:
            out.write("[]")
        out.write(between + '\n  "settlements": ')
        if self._verdict_count:
            out.write("[")
            shutil.copyfileobj(self._verdicts, out)
            out.write("\n  ]")
        else:
            out.write("[]")
        out.write(after + "\n")

    def _write_text(self, head: Report, counts: SpooledCounts, out: IO[str]) -> None:
        console = TextWriter(out, color=self.color)
        text_head(console, head, counts.findings)
        severity = None
        for f, _ in self._shown_findings():
            if f.severity is not severity:
                severity = f.severity
                text_group_head(console, severity, counts.severities[severity])
            text_finding(console, f, runbook_hint=not self.docs_url)
        text_settlements_head(console, counts.actions)
        shutil.copyfileobj(self._verdicts, out)
        if not counts.findings:
            console.line("No findings.")

    def _write_markdown(self, head: Report, counts: SpooledCounts, out: IO[str]) -> None:
        lines = markdown_head(head)
        if counts.findings:
            lines += MARKDOWN_FINDINGS_HEAD
        else:
            lines.append("No findings.")
        out.writelines(line + "\n" for line in lines)
        out.writelines(markdown_finding(f) + "\n" for f, _ in self._shown_findings())
        out.writelines(line + "\n" for line in markdown_settlements_head(counts.actions))
        shutil.copyfileobj(self._verdicts, out)


def _rank(item: _Ranked) -> tuple[int, str, str]:
    return item[0]


def _read_run(run: IO[bytes]) -> Iterator[_Ranked]:
    while True:
        try:
            yield pickle.load(run)  # noqa: S301 - our own scratch file, written above
        except EOFError:
            return
