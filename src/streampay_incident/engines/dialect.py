"""The few SQL spellings the bulk engines do not share.

:mod:`.sql` writes the payout rules once; a :class:`Dialect` renders the
handful of expressions whose spelling differs between DuckDB and Spark SQL
(and, for push-down, PostgreSQL).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Dialect:
    """The few spellings the engines do not share (``duckdb`` or ``spark``).

    PostgreSQL (for push-down) needs the same five: ``~`` with ``^...$``,
    ``octet_length``, ``to_timestamp``/``to_char`` with ``HH24:MI:SS``,
    ``array_agg(x ORDER BY x COLLATE "C")`` and ``TEXT``.
    """

    name: str

    def full_match(self, expr: str, pattern: str) -> str:
        """``expr`` matches ``pattern`` as a whole (Python's ``re.match(... \\Z)``)."""
        if self.name == "duckdb":
            return f"regexp_full_match({expr}, '{pattern}')"
        # Java's $ also matches before a final newline; \z does not.
        return f"({expr} RLIKE '^(?:{pattern})\\\\z')"

    def contains_match(self, expr: str, pattern: str) -> str:
        if self.name == "duckdb":
            return f"regexp_matches({expr}, '{pattern}')"
        return f"({expr} RLIKE '{pattern}')"

    def utf8_bytes(self, expr: str) -> str:
        return f"strlen({expr})" if self.name == "duckdb" else f"octet_length({expr})"

    def local_epoch_seconds(self, text19: str) -> str:
        """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS`` read as UTC; NULL if no such time.

        Strict, as Python's ``datetime.fromisoformat``: no Feb 30, no hour 24, no
        leap second (Spark's parser is lenient, so its answer must print back unchanged).
        """
        if self.name == "duckdb":  # try_strptime is strict already (tests hold it to that)
            return f"CAST(epoch(try_strptime({text19}, '%Y-%m-%dT%H:%M:%S')) AS BIGINT)"
        parsed = f"try_to_timestamp({text19}, \"yyyy-MM-dd'T'HH:mm:ss\")"
        return (
            f"CASE WHEN date_format({parsed}, \"yyyy-MM-dd'T'HH:mm:ss\") = {text19} "
            f"THEN unix_seconds({parsed}) END"
        )

    def sorted_list(self, expr: str, *, distinct: bool = False) -> str:
        """The values of ``expr`` in a group, NULLs left out, in code-point order."""
        if self.name == "duckdb":
            inner = f"DISTINCT {expr}" if distinct else expr
            return f"list_sort(list({inner}) FILTER (WHERE {expr} IS NOT NULL))"
        return f"sort_array({'collect_set' if distinct else 'collect_list'}({expr}))"

    def key_hash(self, *exprs: str) -> str:
        """A 64-bit hash of the values: the rules group by it first to find candidate keys
        (a hash table of 8-byte keys, not of long texts) and then group those exactly."""
        if self.name == "duckdb":
            return f"hash({', '.join(exprs)})"
        if self.name == "postgres":  # one text of the parts, unit-separated (for push-down)
            parts = " || chr(31) || ".join(f"coalesce(CAST({e} AS TEXT), '')" for e in exprs)
            return f"hashtextextended({parts}, 0)"
        return f"xxhash64({', '.join(exprs)})"

    @property
    def decimal38(self) -> str:
        return "DECIMAL(38, 0)"

    @property
    def text(self) -> str:
        return "VARCHAR" if self.name == "duckdb" else "STRING"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
