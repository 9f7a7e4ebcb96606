"""The one table of finding codes.

Every code the tool can emit is declared here once: its default severity, a
title, and the runbook section an on-call engineer follows. The checks, the
reports, ``streampay-incident checks``, the docs and the alert rules all read
from this table; tests fail when a code has no runbook heading or a runbook
code heading has no code.
"""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

import attrs


class Severity(enum.Enum):
    """How bad a finding is. Ordered: ``info < warning < critical``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

RUNBOOK_DIR = "docs/runbooks"


def anchor_for(code: str) -> str:
    """The explicit heading id of a code: lower case, ``_`` turned into ``-``."""
    return code.lower().replace("_", "-")


@attrs.frozen
class FindingCode:
    """One declared finding code.

    ``severity`` is the default; a code whose check raises it in some cases
    names the higher severity in ``escalates_to`` and says when in ``escalation``.
    ``runbook_url`` (a plugin's own, absolute ``https://`` or ``http://`` URL)
    replaces the link into this repository's runbooks when given.
    """

    code: str
    severity: Severity
    title: str
    runbook_file: str = "README.md"
    escalates_to: Severity | None = None
    escalation: str = ""
    runbook_url: str | None = None

    @property
    def anchor(self) -> str:
        return anchor_for(self.code)

    @property
    def runbook(self) -> str:
        """``runbook_url``, else ``docs/runbooks/<file>.md#<anchor>`` (from the repository root)."""
        if self.runbook_url:
            return self.runbook_url
        return f"{RUNBOOK_DIR}/{self.runbook_file}#{self.anchor}"


_C = Severity.CRITICAL
_W = Severity.WARNING
_I = Severity.INFO

_STUCK = "stuck-settlement.md"
_DOUBLE = "double-payout.md"
_CHAIN = "chain-outage.md"
_INDEX = "README.md"

_TABLE: tuple[FindingCode, ...] = (
    # Payout rules (double payout).
    FindingCode("PAYOUT_DUPLICATE_TX_RECORD", _W, "Several payout rows share one tx hash", _DOUBLE),
    FindingCode(
        "PAYOUT_DUPLICATE_SETTLEMENT",
        _W,
        "One settlement paid by several transfers",
        _DOUBLE,
        escalates_to=_C,
        escalation="two or more of the transfers are confirmed",
    ),
    FindingCode("PAYOUT_DUPLICATE_MEMO", _C, "One memo paid for several settlements", _DOUBLE),
    FindingCode(
        "PAYOUT_IDEMPOTENCY_CONFLICT", _C, "Idempotency key reused with other content", _DOUBLE
    ),
    FindingCode(
        "PAYOUT_SUSPECTED_REPEAT", _W, "Same destination, asset and amount paid repeatedly", _DOUBLE
    ),
    # Escrow reconciliation (escrow leak).
    FindingCode(
        "ESCROW_UNRECORDED_OUTFLOW", _C, "Money left the escrow with no payout record", _DOUBLE
    ),
    FindingCode(
        "ESCROW_RECORD_NOT_ON_CHAIN", _C, "Confirmed payout with no payment on chain", _DOUBLE
    ),
    FindingCode(
        "ESCROW_AMOUNT_MISMATCH", _C, "Payout record and on-chain payment disagree", _DOUBLE
    ),
    FindingCode(
        "ESCROW_OUTSIDE_WINDOW", _I, "Payout rows outside the window the chain data covers", _DOUBLE
    ),
    FindingCode(
        "ESCROW_COVERAGE_INCOMPLETE", _W, "Chain source failed or did not cover the window", _DOUBLE
    ),
    # Settlement rules (stuck settlement).
    FindingCode(
        "SETTLEMENT_CONFIRMED_NOT_RECORDED", _C, "Landed on chain but not recorded as paid", _STUCK
    ),
    FindingCode("SETTLEMENT_TX_FAILED", _W, "Settlement transaction failed on chain", _STUCK),
    FindingCode("SETTLEMENT_DEAD_LETTERED", _C, "Settlement dead-lettered", _STUCK),
    FindingCode(
        "SETTLEMENT_RETRIES_EXHAUSTED", _C, "Settlement failed after every attempt", _STUCK
    ),
    FindingCode("SETTLEMENT_LEASE_EXPIRED", _W, "Worker lease expired while processing", _STUCK),
    FindingCode(
        "SETTLEMENT_STUCK_UNSUBMITTED", _W, "Settlement never submitted to the network", _STUCK
    ),
    FindingCode(
        "SETTLEMENT_STUCK_UNCONFIRMED", _W, "Submitted transaction not confirmed on chain", _STUCK
    ),
    FindingCode(
        "SETTLEMENT_CHAIN_BLOCKED", _W, "Settlement waiting on an unhealthy network", _STUCK
    ),
    FindingCode("SETTLEMENT_ALREADY_PAID", _C, "Settlement already paid by another payout", _STUCK),
    FindingCode(
        "SETTLEMENT_NETWORK_MISMATCH", _C, "Settlement's transaction is on another network", _STUCK
    ),
    FindingCode(
        "SETTLEMENT_SEARCH_AMBIGUOUS", _W, "Several transfers could be the settlement's", _STUCK
    ),
    # Chain health (Stellar outage or Horizon hard-down).
    FindingCode(
        "CHAIN_ENDPOINT_UNREACHABLE", _C, "Endpoint unreachable before the deadline", _CHAIN
    ),
    FindingCode("CHAIN_ENDPOINT_ERROR", _C, "Endpoint answered with an error", _CHAIN),
    FindingCode("CHAIN_RATE_LIMITED", _W, "Endpoint is rate limiting us", _CHAIN),
    FindingCode("CHAIN_HORIZON_UNHEALTHY", _C, "Horizon reports itself unhealthy", _CHAIN),
    FindingCode("CHAIN_RPC_UNHEALTHY", _C, "Stellar RPC reports itself unhealthy", _CHAIN),
    FindingCode("CHAIN_NETWORK_MISMATCH", _C, "Endpoint is on another network", _CHAIN),
    FindingCode(
        "CHAIN_LEDGER_STALE",
        _W,
        "Latest closed ledger is old",
        _CHAIN,
        escalates_to=_C,
        escalation="the ledger is older than 30s (warning from 15s; ChainPolicy)",
    ),
    FindingCode(
        "CHAIN_HORIZON_INGEST_LAG",
        _W,
        "Horizon ingestion lags stellar-core",
        _CHAIN,
        escalates_to=_C,
        escalation="ingestion lags by more than 20 ledgers (warning from 5; ChainPolicy)",
    ),
    FindingCode("CHAIN_PROTOCOL_MISMATCH", _W, "stellar-core behind the network protocol", _CHAIN),
    FindingCode("CHAIN_ENDPOINTS_DIVERGED", _W, "Endpoint far behind the others", _CHAIN),
    FindingCode("CHAIN_FEE_SURGE", _W, "Surge pricing: fees far above the base fee", _CHAIN),
    # The tool itself.
    FindingCode("PLUGIN_ERROR", _W, "A check plugin raised an error", _INDEX),
    FindingCode("INPUT_EMPTY", _W, "An input holds no records", _INDEX),
    FindingCode("PLUGIN_TIMEOUT", _W, "A plugin's check overran its time budget", _INDEX),
)

CODES: dict[str, FindingCode] = {c.code: c for c in _TABLE}


# The table in force: the built-in codes, or while a plugin manager runs its checks, the
# built-in codes plus its plugins' (see :func:`declared`). Never the global table mutated.
_ACTIVE: ContextVar[Mapping[str, FindingCode]] = ContextVar("streampay_incident_codes")


def lookup(code: str) -> FindingCode:
    """The declared code; ``KeyError`` names an undeclared one."""
    try:
        return _ACTIVE.get(CODES)[code]
    except KeyError:
        raise KeyError(f"finding code {code!r} is not declared in codes.py") from None


def all_codes() -> tuple[FindingCode, ...]:
    """Every declared code in force, in table order (built-in codes first)."""
    return tuple(_ACTIVE.get(CODES).values())


_CODE_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")


def validate(code: object) -> FindingCode:
    """``code`` if it is a well-formed :class:`FindingCode`; else ``TypeError``/``ValueError``.

    Well-formed: an upper-case name (``[A-Z][A-Z0-9_]*``, it becomes the
    runbook anchor), a :class:`Severity`, a title, and a ``runbook_url`` that
    is absolute (``https://`` or ``http://``) when given.
    """
    if not isinstance(code, FindingCode):
        raise TypeError(f"declared {type(code).__name__}, not a FindingCode")
    if not isinstance(code.code, str) or not _CODE_NAME.match(code.code):
        raise ValueError(f"finding code {code.code!r} is not an upper-case name")
    if not isinstance(code.severity, Severity):
        raise ValueError(
            f"finding code {code.code!r} has severity {code.severity!r}, "
            "not one of Severity.INFO, WARNING, CRITICAL"
        )
    if code.escalates_to is not None and not isinstance(code.escalates_to, Severity):
        raise ValueError(f"finding code {code.code!r} escalates to {code.escalates_to!r}")
    if not isinstance(code.title, str) or not isinstance(code.runbook_file, str):
        raise TypeError(f"finding code {code.code!r}: title and runbook_file must be strings")
    url = code.runbook_url
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise ValueError(f"finding code {code.code!r}: runbook_url {url!r} is not an absolute URL")
    return code


def declare(table: dict[str, FindingCode], code: FindingCode, *, by: str = "") -> None:
    """Add a plugin's ``code`` to ``table``: new, or identical to its existing declaration.

    ``by`` names who declared the existing one (``built-in`` or a plugin) in
    the error.
    """
    validate(code)
    existing = table.get(code.code)
    if existing is not None and existing != code:
        where = f" ({by})" if by else ""
        raise ValueError(f"finding code {code.code!r} is already declared differently{where}")
    table[code.code] = code


def register_code(code: FindingCode) -> None:
    """Check a plugin's own code against the built-in table (``ValueError`` on a conflict).

    Plugin codes are declared with the plugin manager that loaded the plugin
    (``streampay_incident_register_codes``), not here: nothing is added to
    :data:`CODES`, so one manager's plugins do not leak into another's.
    """
    declare(dict(CODES), code)


@contextlib.contextmanager
def declared(table: Mapping[str, FindingCode]) -> Iterator[None]:
    """Make ``table`` the codes in force (for :func:`lookup`) inside the block."""
    token = _ACTIVE.set(table)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
