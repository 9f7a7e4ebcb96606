"""What a settlement pays, when the export says: payer, destination, asset, amount.

Optional columns of a settlement export (the outbox payload's transfer):
``payer`` (or ``escrow``: the ``G...`` account or ``C...`` contract that pays),
``destination`` (``G...`` or muxed ``M...``), ``asset`` (``native``/``XLM`` or
``CODE:ISSUER``) and ``amount`` (a decimal string, 7 decimals). The submission
search needs all four; each one given is checked, and a bad one is an input
error naming its field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..model import Asset
from ..stellar.strkey import destination_problem, is_account, is_contract
from .payout_fields import FieldError, parse_amount, parse_asset


def _string(values: Mapping[str, Any], field: str, add: Callable[[str, str], None]) -> str | None:
    value = values.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        add(field, f"expected a string, found {type(value).__name__}")
        return None
    return value.strip() or None


def settlement_payment(
    values: Mapping[str, Any], add_problem: Callable[[str, str], None]
) -> tuple[str | None, str | None, Asset | None, int | None]:
    """(payer, destination, asset, amount) of one row, each None when absent or bad
    (``add_problem(field, message)`` is called for each bad one)."""
    payer_field = "payer" if values.get("payer") is not None else "escrow"
    payer = _string(values, payer_field, add_problem)
    if payer is not None and not (is_account(payer) or is_contract(payer)):
        add_problem(payer_field, "expected a G... account or C... contract")
        payer = None
    destination = _string(values, "destination", add_problem)
    if destination is not None and (problem := destination_problem(destination)) is not None:
        add_problem("destination", problem)
        destination = None
    asset: Asset | None = None
    asset_text = _string(values, "asset", add_problem)
    if asset_text is not None:
        try:
            asset = parse_asset(asset_text)
        except ValueError as exc:
            add_problem("asset", str(exc))
    amount: int | None = None
    if values.get("amount") is not None:
        try:
            amount = parse_amount(values["amount"])
        except FieldError as exc:
            add_problem("amount", str(exc))
    return payer, destination, asset, amount
