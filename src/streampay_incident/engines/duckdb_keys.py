"""The typed rows of the DuckDB engine, keyed to stay within its memory limit.

``judged`` keeps destinations and assets as 64-bit hashes, transaction hashes
as their 32 bytes, statuses and memo types as one-byte ENUMs: 160 bytes a row
less than the texts, so a 1M-row export stays within the memory limit instead
of spilling (0.5 s of 2.1 s). The rules only compare these values; the rows of
the findings get their texts back from the dictionaries (one pass over the
input before ``judged``, which also hands Python each distinct destination and
asset to judge once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import sql

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


class Collision(Exception):
    """Two texts share a 64-bit hash: the reference must judge this input."""


# The dictionary pass's share of the progress bar (the second pass does far more).
DICTIONARY_SHARE = 20.0
DICTIONARY_SQL = f"""
CREATE TABLE dictionary AS
SELECT grouping(destination) = 0 AS of_destination, coalesce(destination, asset) AS text
FROM (SELECT destination, {sql.canonical_asset("asset")} AS asset FROM raw_payouts)
GROUP BY GROUPING SETS ((destination), (asset))
"""
_DICTIONARIES = {
    "dict_destination": "of_destination",
    "dict_asset": "NOT of_destination",
}


_STATUS = "ENUM('pending', 'submitted', 'confirmed', 'failed')"
_MEMO_TYPE = "ENUM('none', 'text', 'id', 'hash', 'return')"


def keyed_sql(typed: str) -> str:
    """``typed`` (:func:`.sql.typed_payouts_sql`) with destinations and assets as hashes,
    valid transaction hashes as bytes, statuses and memo types as one-byte ENUMs (a bad
    row's are NULL: ``unhex`` and the ENUMs refuse what is not theirs)."""
    return (
        "SELECT * REPLACE (hash(destination) AS destination, hash(asset) AS asset, "
        "CASE WHEN NOT bad THEN unhex(tx_hash) END AS tx_hash, "
        f"CASE WHEN NOT bad THEN CAST(status AS {_STATUS}) END AS status, "
        f"CASE WHEN NOT bad THEN CAST(memo_type AS {_MEMO_TYPE}) END AS memo_type) "
        f"FROM ({typed})"
    )


def as_text(relation: str) -> str:
    """SELECT ``relation`` (keyed rows) with the texts of its destinations, assets,
    transaction hashes, statuses and memo types (ENUMs would sort otherwise)."""
    return (
        f"SELECT r.* REPLACE (d.text AS destination, a.text AS asset, "
        f"{sql.DUCKDB.tx_text('r.tx_hash')} AS tx_hash, CAST(r.status AS VARCHAR) AS status, "
        f"CAST(r.memo_type AS VARCHAR) AS memo_type) FROM {relation} r "
        "LEFT JOIN dict_destination d ON r.destination = d.h "
        "LEFT JOIN dict_asset a ON r.asset = a.h"
    )


def dictionaries(con: duckdb.DuckDBPyConnection, key: str = "hash") -> None:
    """``dict_destination`` and ``dict_asset`` (h, text) from ``dictionary``; Fallback when two
    texts share a hash (never seen: the reference then judges the input). ``key``: the SQL
    function hashing a text (``judged`` uses ``hash``; a test gives one that collides)."""
    for name, which in _DICTIONARIES.items():
        con.execute(
            f"CREATE TABLE {name} AS SELECT {key}(text) AS h, text FROM dictionary "
            f"WHERE {which} AND text IS NOT NULL"
        )
        if con.execute(f"SELECT count(*) - count(DISTINCT h) FROM {name}").fetchall()[0][0]:
            raise Collision(f"two values of {name} share a 64-bit hash")
