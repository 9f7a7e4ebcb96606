"""The few SQL spellings the bulk engines do not share.

:mod:`.sql` writes the payout rules once; a :class:`Dialect` renders the
handful of expressions whose spelling differs between DuckDB and Spark SQL
(and, for push-down, PostgreSQL).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Dialect:
    """The few spellings the engines do not share (``duckdb``, ``spark`` or ``postgres``).

    PostgreSQL (push-down, :mod:`.postgres_engine`) orders text as its columns'
    collation does: the relation it reads gives every text column ``COLLATE "C"``
    (code-point order, as Python and DuckDB), so the sorted lists, windows and
    ``min`` agree with the reference whatever the database's locale.
    """

    name: str

    def full_match(self, expr: str, pattern: str) -> str:
        """``expr`` matches ``pattern`` as a whole (Python's ``re.match(... \\Z)``)."""
        if self.name == "duckdb":
            return f"regexp_full_match({expr}, '{pattern}')"
        if self.name == "postgres":  # an ARE's $ matches only at the very end
            return f"({expr} ~ '^(?:{pattern})$')"
        # Java's $ also matches before a final newline; \z does not.
        return f"({expr} RLIKE '^(?:{pattern})\\\\z')"

    def contains_match(self, expr: str, pattern: str) -> str:
        if self.name == "duckdb":
            return f"regexp_matches({expr}, '{pattern}')"
        if self.name == "postgres":
            return f"({expr} ~ '{pattern}')"
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
        if self.name == "postgres":
            return postgres_local_epoch_seconds(text19)
        parsed = f"try_to_timestamp({text19}, \"yyyy-MM-dd'T'HH:mm:ss\")"
        return (
            f"CASE WHEN date_format({parsed}, \"yyyy-MM-dd'T'HH:mm:ss\") = {text19} "
            f"THEN unix_seconds({parsed}) END"
        )

    def sorted_list(self, expr: str, *, distinct: bool = False) -> str:
        """The values of ``expr`` in a group, NULLs left out, in code-point order."""
        inner = f"DISTINCT {expr}" if distinct else expr
        if self.name == "duckdb":
            return f"list_sort(list({inner}) FILTER (WHERE {expr} IS NOT NULL))"
        if self.name == "postgres":  # text columns are COLLATE "C": code-point order
            return f"array_agg({inner} ORDER BY {expr}) FILTER (WHERE {expr} IS NOT NULL)"
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

    def tx_text(self, expr: str) -> str:
        """The lower-case hex text of a ``tx_hash`` column of ``payouts``: DuckDB keeps the
        32 bytes (half the memory of the text, see :mod:`.duckdb_keys`), the others the text."""
        return f"lower(hex({expr}))" if self.name == "duckdb" else expr

    @property
    def decimal38(self) -> str:
        return "DECIMAL(38, 0)"

    @property
    def text(self) -> str:
        return {"duckdb": "VARCHAR", "postgres": "TEXT"}.get(self.name, "STRING")


def postgres_local_epoch_seconds(text19: str) -> str:
    """PostgreSQL: seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS`` as UTC, NULL if no such
    time. Never raises (a cast error would abort the whole query): each CASE branch is
    reached only once the one before it held (PostgreSQL may reorder AND, never CASE)."""

    def part(start: int, length: int) -> str:
        return f"CAST(substr({text19}, {start}, {length}) AS INTEGER)"

    year, month, day = part(1, 4), part(6, 2), part(9, 2)
    leap = f"(mod({year}, 4) = 0 AND (mod({year}, 100) <> 0 OR mod({year}, 400) = 0))"
    days = (
        f"CASE WHEN {month} = 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        f"WHEN {month} IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
    )
    return (
        f"CASE WHEN NOT coalesce({text19} ~ "
        "'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$', false) THEN NULL "
        f"WHEN {year} < 1 OR {month} NOT BETWEEN 1 AND 12 OR {part(12, 2)} > 23 "
        f"OR {part(15, 2)} > 59 OR {part(18, 2)} > 59 THEN NULL "
        f"WHEN {day} NOT BETWEEN 1 AND {days} THEN NULL "
        f"ELSE CAST(make_date({year}, {month}, {day}) - DATE '1970-01-01' AS BIGINT) * 86400 "
        f"+ {part(12, 2)} * 3600 + {part(15, 2)} * 60 + {part(18, 2)} END"
    )


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
POSTGRES = Dialect("postgres")
