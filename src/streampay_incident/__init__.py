"""streampay-incident: incident triage for StreamPay on Stellar/Soroban.

Pure checks behind a pluggy registry. ``import streampay_incident`` stays
light: stellar-sdk is imported lazily, only where XDR or StrKey work happens.
"""

from __future__ import annotations

from .__about__ import __version__
from .checks.payouts import find_payout_anomalies
from .checks.settlements import classify_settlements
from .codes import CODES, FindingCode, Severity
from .errors import InputError, InputProblem
from .hookspecs import hookimpl
from .model import (
    Asset,
    ChainTransaction,
    Finding,
    Memo,
    Payout,
    PayoutPolicy,
    Report,
    Settlement,
    SettlementPolicy,
    SettlementTriage,
    SettlementVerdict,
    make_finding,
)
from .stellar.envelope import inspect_transaction
from .usecases.chain import grade_observations as grade_chain

__all__ = [
    "CODES",
    "Asset",
    "ChainTransaction",
    "Finding",
    "FindingCode",
    "InputError",
    "InputProblem",
    "Memo",
    "Payout",
    "PayoutPolicy",
    "Report",
    "Settlement",
    "SettlementPolicy",
    "SettlementTriage",
    "SettlementVerdict",
    "Severity",
    "__version__",
    "classify_settlements",
    "find_payout_anomalies",
    "grade_chain",
    "hookimpl",
    "inspect_transaction",
    "make_finding",
]
