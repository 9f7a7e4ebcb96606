"""What the chain says about transactions: Horizon records and RPC results into
:class:`ChainTransaction`.

Accepted shapes (the ``--transactions`` file, pinned): a JSON array, a Horizon
page (``_embedded.records``) or JSON Lines, of

- Horizon transaction records (``hash``, ``successful``, ...). A fee-bump
  record answers to both ``fee_bump_transaction.hash`` and
  ``inner_transaction.hash`` (Horizon serves it under either and echoes the
  requested one in ``hash``);
- Stellar RPC ``getTransaction`` results (``txHash``, ``status``
  ``SUCCESS``/``FAILED``/``NOT_FOUND``), bare or inside the JSON-RPC envelope,
  and ``getTransactions`` pages (``result.transactions``). Numbers may be
  strings (older servers). A ``NOT_FOUND`` keeps ``oldestLedgerCloseTime``:
  a transaction older than the RPC's retention window may exist unseen.

:func:`chain_transaction_from_horizon` and :func:`chain_transaction_from_rpc`
are shared with the live probes. Nothing here decodes XDR.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError, InputProblem, SecretSeedError, shown
from ..model import ChainTransaction, ChainTxStatus
from ..observations import as_int
from ..stellar.hashes import TX_HASH
from ..timefmt import from_unix, parse_rfc3339
from .rows import contains_seed, input_name, read_text, seed_problem
from .strict_json import JsonProblem, loads

_TX_HASH = TX_HASH
_RPC_STATUS: dict[str, ChainTxStatus] = {
    "SUCCESS": "success",
    "FAILED": "failed",
    "NOT_FOUND": "not_found",
}


def _problem(source: str, line: int | None, field: str | None, message: str) -> InputError:
    return InputError(InputProblem(source, line, field, message))


def _hash(value: Any, source: str, line: int | None, field: str) -> str:
    if not isinstance(value, str) or not _TX_HASH.match(value.strip()):
        raise _problem(source, line, field, "expected a transaction hash of 64 hex characters")
    return value.strip().lower()


def _integer(value: Any, source: str, line: int | None, field: str) -> int | None:
    """A JSON number or a decimal string (older RPC servers send numbers as strings)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _problem(source, line, field, "expected a whole number")
    number = as_int(value, signed=False)
    if number is None:
        raise _problem(source, line, field, f"expected a whole number, found {shown(value)}")
    return number


def _unix_time(value: Any, source: str, line: int | None, field: str) -> datetime | None:
    seconds = _integer(value, source, line, field)
    if seconds is None:
        return None
    try:
        return from_unix(seconds)
    except ValueError as exc:
        raise _problem(source, line, field, str(exc)) from None


def chain_transaction_from_horizon(
    record: Mapping[str, Any], *, source: str = "horizon", line: int | None = None
) -> ChainTransaction:
    """A Horizon transaction record (``GET /transactions/{hash}`` or one page record).

    ``status`` is ``success`` or ``failed`` from ``successful``; ``hashes``
    holds ``hash`` plus, for a fee-bump, the outer and the inner hash. Raises
    :class:`InputError` naming the field when the record is not usable.
    """
    if not isinstance(record, Mapping):
        raise _problem(source, line, None, "expected a Horizon transaction record (JSON object)")
    if "hash" not in record:
        raise _problem(source, line, "hash", "required field is missing")
    tx_hash = _hash(record["hash"], source, line, "hash")
    successful = record.get("successful")
    if isinstance(successful, str) and successful.lower() in ("true", "false"):
        successful = successful.lower() == "true"
    if not isinstance(successful, bool):
        raise _problem(source, line, "successful", "required field is missing or not true/false")
    hashes = [tx_hash]
    for part in ("fee_bump_transaction", "inner_transaction"):
        nested = record.get(part)
        if isinstance(nested, Mapping) and nested.get("hash") is not None:
            other = _hash(nested["hash"], source, line, f"{part}.hash")
            if other not in hashes:
                hashes.append(other)
    closed_at = None
    created_at = record.get("created_at")
    if created_at is not None:
        try:
            closed_at = parse_rfc3339(str(created_at))
        except ValueError as exc:
            raise _problem(source, line, "created_at", str(exc)) from None
    return ChainTransaction(
        hash=tx_hash,
        status="success" if successful else "failed",
        hashes=tuple(hashes),
        ledger=_integer(record.get("ledger"), source, line, "ledger"),
        closed_at=closed_at,
        source=source,
    )


def chain_transaction_from_rpc(
    result: Mapping[str, Any],
    requested_hash: str | None = None,
    *,
    source: str = "rpc",
    line: int | None = None,
) -> ChainTransaction:
    """A Stellar RPC ``getTransaction`` result (the ``result`` member, not the envelope).

    ``txHash`` is absent from older servers' answers: ``requested_hash`` (the
    hash that was asked for) stands in. A fee-bump looked up by its inner hash
    answers to both. A ``NOT_FOUND`` keeps ``oldestLedgerCloseTime``.
    """
    if not isinstance(result, Mapping):
        raise _problem(source, line, None, "expected an RPC getTransaction result (JSON object)")
    status_text = result.get("status")
    status = _RPC_STATUS.get(status_text.upper()) if isinstance(status_text, str) else None
    if status is None:
        raise _problem(
            source, line, "status", f"{shown(status_text)}: expected SUCCESS, FAILED or NOT_FOUND"
        )
    requested = None if requested_hash is None else _hash(requested_hash, source, line, "hash")
    if result.get("txHash") is not None:
        tx_hash = _hash(result["txHash"], source, line, "txHash")
    elif requested is not None:
        tx_hash = requested
    else:
        raise _problem(source, line, "txHash", "required field is missing")
    hashes = [tx_hash]
    if requested is not None and requested != tx_hash:
        if result.get("feeBump") is not True:
            raise _problem(
                source, line, "txHash", f"answered for {tx_hash}, but {requested} was asked for"
            )
        hashes.append(requested)
    oldest = None
    if status == "not_found":
        oldest = _unix_time(
            result.get("oldestLedgerCloseTime"), source, line, "oldestLedgerCloseTime"
        )
    return ChainTransaction(
        hash=tx_hash,
        status=status,
        hashes=tuple(hashes),
        ledger=_integer(result.get("ledger"), source, line, "ledger"),
        closed_at=_unix_time(result.get("createdAt"), source, line, "createdAt"),
        oldest_ledger_close_time=oldest,
        source=source,
    )


def _is_rpc(record: Mapping[str, Any]) -> bool:
    return "txHash" in record or (isinstance(record.get("status"), str) and "hash" not in record)


def _is_problem_document(record: Mapping[str, Any]) -> bool:
    return "type" in record and "title" in record and isinstance(record.get("status"), int)


def _records(doc: Any, source: str, line: int | None) -> Iterator[tuple[int | None, Any]]:
    """Flatten one parsed document into ``(line, record)``; ``line`` is the JSON Lines
    line, else the 0-based index in the array or page (as :mod:`.rows` numbers them)."""
    if isinstance(doc, list):
        for index, item in enumerate(doc):
            item_line = line if line is not None else index
            if isinstance(item, Mapping):  # a record, or a JSON-RPC envelope around one
                yield from _records(item, source, item_line)
            else:
                yield item_line, item
        return
    if not isinstance(doc, Mapping):
        raise _problem(source, line, None, "expected a JSON object or array of transactions")
    if "jsonrpc" in doc or ("result" in doc and "id" in doc) or "error" in doc:
        error = doc.get("error")
        if error is not None:
            detail = (
                error
                if not isinstance(error, Mapping)
                else (f"{error.get('code')} {error.get('message')}")
            )
            raise _problem(source, line, "error", f"JSON-RPC error: {detail}")
        yield from _records(doc.get("result"), source, line)
        return
    embedded = doc.get("_embedded")
    if isinstance(embedded, Mapping) and "records" in embedded:
        records = embedded["records"]
        if not isinstance(records, list):
            raise _problem(source, line, "_embedded.records", "expected a list of records")
        yield from _records(records, source, line)
        return
    for key in ("transactions", "records"):  # RPC getTransactions page; recorded corpora
        if isinstance(doc.get(key), list):
            yield from _records(doc[key], source, line)
            return
    yield line, doc


def _chain_transaction(record: Any, source: str, line: int | None) -> ChainTransaction:
    if not isinstance(record, Mapping):
        raise _problem(source, line, None, "expected a transaction record (JSON object)")
    if _is_problem_document(record):
        raise _problem(
            source,
            line,
            None,
            f"a Horizon error document ({record.get('status')} {record.get('title')}), "
            "not a transaction record",
        )
    if _is_rpc(record):
        return chain_transaction_from_rpc(record, source=source, line=line)
    if "hash" in record or "successful" in record:
        return chain_transaction_from_horizon(record, source=source, line=line)
    raise _problem(
        source,
        line,
        None,
        "neither a Horizon transaction record (hash, successful) nor an RPC getTransaction "
        "result (txHash, status)",
    )


def _from_documents(
    documents: Iterable[tuple[int | None, Any]], source: str
) -> list[ChainTransaction]:
    transactions: list[ChainTransaction] = []
    problems: list[InputProblem] = []
    for doc_line, doc in documents:
        try:
            for line, record in _records(doc, source, doc_line):
                try:
                    transactions.append(_chain_transaction(record, source, line))
                except InputError as error:
                    problems.extend(error.problems)
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(problems)
    return transactions


def _parse_text(text: str, source: str) -> list[tuple[int | None, Any]]:
    if contains_seed(text):
        lines = [n for n, part in enumerate(text.splitlines(), 1) if contains_seed(part)]
        raise SecretSeedError([seed_problem(source, n, None) for n in lines])
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        return []
    try:
        doc = loads(stripped)
    except JsonProblem as exc:
        if not (stripped.startswith("{") and exc.syntax == "Extra data"):
            raise _problem(source, exc.lineno, exc.key, exc.message) from None
    else:
        # One object on one line is a one-line JSON Lines file: name its line.
        single_line = isinstance(doc, dict) and "\n" not in stripped.strip()
        return [(1 if single_line else None, doc)]
    documents: list[tuple[int | None, Any]] = []
    problems: list[InputProblem] = []
    for number, part in enumerate(text.splitlines(), 1):
        if not part.strip():
            continue
        try:
            documents.append((number, loads(part)))
        except JsonProblem as exc:
            problems.append(InputProblem(source, number, exc.key, exc.message))
    if problems:
        raise InputError(problems)
    return documents


def transactions_from_json(doc_or_lines: Any, *, source: str) -> list[ChainTransaction]:
    """Every transaction in a parsed JSON document, a whole text (JSON or JSON Lines),
    or a sequence of JSON Lines strings.

    Raises :class:`InputError` listing every bad record (source, line or index,
    field); nothing is returned when any record is bad.
    """
    if isinstance(doc_or_lines, str):
        return _from_documents(_parse_text(doc_or_lines, source), source)
    if (
        isinstance(doc_or_lines, list)
        and doc_or_lines
        and all(isinstance(item, str) for item in doc_or_lines)
    ):
        return _from_documents(_parse_text("\n".join(doc_or_lines), source), source)
    return _from_documents([(None, doc_or_lines)], source)


def read_transactions(path: Path | str) -> list[ChainTransaction]:
    """Read a ``--transactions`` file (or ``-``, a FIFO: read once); see
    :func:`transactions_from_json`."""
    name = input_name(path)
    return transactions_from_json(read_text(path, source=name), source=name)
