"""The use cases: each one exists once, below both the CLI and the web app.

The shells (``cli/``, ``web/``) read files, the environment, the clock and
the network, then call one of these with values and the plugin manager, and
render the :class:`~streampay_incident.model.Report` it returns. These are the
only callers of the registry's check runners: every verdict and finding passes
through the plugins.

- :func:`triage_payouts` (and :func:`reconcile_escrow` for ``--escrow``);
- :func:`triage_settlements` (:func:`stream_settlement_triage` for an outbox of
  any size, a batch at a time), with :func:`settlement_chain` for what the chain
  says and :func:`find_settlement` for the web app's host lookup;
- :func:`grade_chain` (a report) over :func:`grade_observations` (a grade).
"""

from __future__ import annotations

from ..errors import WrongNetworkError
from .chain import chain_report, grade_chain, grade_observations
from .payouts import (
    check_escrow_network,
    escrow_from_file,
    escrow_from_paging,
    reconcile_escrow,
    resolve_fee_bumps,
    triage_payouts,
)
from .settlement_stream import StreamedTriage, stream_settlement_triage, streams_settlements
from .settlements import (
    SettlementChain,
    check_settlement_network,
    find_settlement,
    settlement_chain,
    triage_settlements,
)

__all__ = [
    "SettlementChain",
    "StreamedTriage",
    "WrongNetworkError",
    "check_settlement_network",
    "chain_report",
    "check_escrow_network",
    "escrow_from_file",
    "escrow_from_paging",
    "find_settlement",
    "grade_chain",
    "grade_observations",
    "reconcile_escrow",
    "resolve_fee_bumps",
    "settlement_chain",
    "stream_settlement_triage",
    "streams_settlements",
    "triage_payouts",
    "triage_settlements",
]
