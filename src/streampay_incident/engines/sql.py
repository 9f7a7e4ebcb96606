"""The payout rules as SQL: one definition, rendered for each engine's dialect.

Over 400 lines as one thing: two relations, both built here from a handful
of dialect primitives (:class:`~.dialect.Dialect`), so DuckDB, Spark and (later)
PostgreSQL run the same statements:

``typed_payouts_sql``
    the typed ``payouts`` relation from a relation of text columns named
    like :data:`~streampay_incident.io.payouts.FIELDS` (NULL where a record
    has no value). Amounts become stroops (BIGINT), ``created_at`` UTC epoch
    microseconds, tx hashes lower case, memos a canonical (type, value)
    pair; every value that is not plainly valid leaves its typed column NULL
    and sets ``bad``, and the few shapes SQL does not judge (timestamps in
    another RFC 3339 shape, base64 hash memos) are left for Python
    (``created_odd``, ``memo_odd``), one distinct value at a time.
``findings_sql`` / ``at_risk_sql``
    the five rules of :mod:`streampay_incident.checks.payouts` as group-bys
    and one window: one row per finding with its evidence aggregated, and
    the amount at risk per finding and asset. Only findings leave the engine.

The SQL keeps to what DuckDB, Spark SQL and PostgreSQL share (CTEs, CASE,
``count(DISTINCT CASE ...)``, ``row_number``/``lag`` windows); the rest goes
through the dialect.
"""

from __future__ import annotations

from ..amounts import MAX_INT64
from ..io.payout_fields import FIELDS

# Re-exported: the engines render the rules with ``sql.DUCKDB`` / ``sql.SPARK``.
from .dialect import DUCKDB as DUCKDB
from .dialect import SPARK as SPARK
from .dialect import Dialect

RULE_CODES = (
    "PAYOUT_DUPLICATE_TX_RECORD",
    "PAYOUT_DUPLICATE_SETTLEMENT",
    "PAYOUT_DUPLICATE_MEMO",
    "PAYOUT_IDEMPOTENCY_CONFLICT",
    "PAYOUT_SUSPECTED_REPEAT",
)

# A seed's shape (RE2 and Java lack rows.SEED_PATTERN's look-arounds); in free text also glued
# to other base32 characters (the reference finds those by checksum).
SEED_REGEX, GLUED_SEED_REGEX = "(^|[^A-Z2-7])S[A-Z2-7]{55}([^A-Z2-7]|$)", "S[A-Z2-7]{55}"
MAX_UINT64_TEXT = str(2**64 - 1)
MAX_LEDGER_TEXT = str(2**32 - 1)


# -- the typed relation ---------------------------------------------------------------------


def csv_cells_sql(d: Dialect, header: list[str], table: str) -> str:
    """SELECT the text columns the typed relation reads from ``table``, whose columns
    are ``c0``, ``c1``... in ``header`` order: FIELDS by name (NULL when the export
    has no such column, or the cell is empty), then every other column as
    ``extra_c<i>`` (only searched for secret seeds)."""
    position = {name: f"c{i}" for i, name in enumerate(header)}
    select = [
        f"nullif({position[f]}, '') AS {f}" if f in position else f"CAST(NULL AS {d.text}) AS {f}"
        for f in FIELDS
    ]
    select += [
        f"nullif({column}, '') AS extra_{column}"
        for name, column in position.items()
        if name not in FIELDS
    ]
    return f"SELECT {', '.join(select)} FROM {table}"


_PLAIN_TIME = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_AMOUNT = "[0-9]+([.][0-9]{0,7})?"
_HEX64 = "[0-9a-fA-F]{64}"
_DIGITS = "[0-9]+"
_FREE_TEXT = ("payout_id", "settlement_id", "idempotency_key")
_REQUIRED = ("payout_id", "settlement_id", "destination", "asset", "amount", "status", "created_at")


def canonical_asset(column: str) -> str:
    """The asset as the typed relation keeps it: ``native`` for ``XLM`` too."""
    return f"CASE WHEN {column} IN ('native', 'XLM') THEN 'native' ELSE {column} END"


def _not_blank(column: str) -> str:
    """A cheap test that a text is not all white space; doubtful values go to Python.

    Text starting with a printable ASCII character other than space is not
    blank; the rest (rare) is judged by ``str.isspace`` over the distinct values.
    """
    return f"ascii({column}) BETWEEN 33 AND 126"


def typed_payouts_sql(
    d: Dialect,
    source: str,
    extra_seed_columns: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
) -> str:
    """SELECT the typed payouts from ``source`` (a relation of text columns named by FIELDS).

    Columns: the FIELDS (typed; ``asset`` ``native`` for ``XLM`` too), ``memo_value``,
    ``is_transfer``, ``created_us``, ``amount_stroops``, and the judgement:
    ``bad`` (some value is plainly wrong: missing, malformed, out of range, or
    shaped like a secret seed in any column, ``extra_seed_columns`` included),
    ``created_odd`` / ``memo_odd`` (a value for Python to judge), ``blank_odd``
    (an identifier that may be all white space), and the ``keep`` columns as they are.

    Each part is computed once, a layer of CTEs at a time (engines do not
    share repeated expressions within one projection).
    """
    dec = d.decimal38
    # Only free text can hold a seed and still be valid: every other field is checked
    # whole (a StrKey, hex, digits, a short memo), so a seed there is already refused.
    seeds = " OR ".join(
        f"coalesce(length({c}) >= 56 AND {d.contains_match(c, GLUED_SEED_REGEX)}, false)"
        for c in (*_FREE_TEXT, *extra_seed_columns)
    )
    required = " OR ".join(f"{c} IS NULL" for c in _REQUIRED)
    blank_odd = " OR ".join(f"({c} IS NOT NULL AND NOT {_not_blank(c)})" for c in _FREE_TEXT)
    local = d.local_epoch_seconds("substr(created_at, 1, 19)")
    kept = "".join(", " + c for c in keep)
    return f"""
WITH parts AS (
    SELECT *,
        coalesce(memo_type, CASE WHEN memo IS NULL THEN 'none' ELSE 'text' END) AS kind,
        {d.full_match("amount", _AMOUNT)} AS amount_shaped,
        split_part(amount, '.', 1) AS amount_int,
        rpad(split_part(amount, '.', 2), 7, '0') AS amount_frac,
        ({d.full_match("created_at", _PLAIN_TIME)} AND substr(created_at, 1, 4) <> '0000')
            AS time_shaped,
        CASE WHEN substr(created_at, length(created_at), 1) = 'Z' THEN 1 ELSE 6 END AS tz_len,
        coalesce(nullif(trim(LEADING '0' FROM memo), ''), '0') AS memo_digits,
        coalesce(nullif(trim(LEADING '0' FROM ledger), ''), '0') AS ledger_digits
    FROM {source}
), valued AS (
    SELECT *,
        CASE WHEN amount_shaped AND length(trim(LEADING '0' FROM amount_int)) <= 12
             THEN CAST(amount_int AS {dec}) * 10000000 + CAST(amount_frac AS {dec})
        END AS amount_value,
        CASE WHEN time_shaped THEN {local} END AS local_seconds,
        CASE WHEN time_shaped AND substr(created_at, 20, 1) = '.'
             THEN rpad(substr(created_at, 21, length(created_at) - 20 - tz_len), 6, '0')
             ELSE '000000' END AS fraction,
        CASE WHEN time_shaped AND tz_len = 6
             THEN CAST(substr(created_at, length(created_at) - 4, 2) AS BIGINT) END AS tz_h,
        CASE WHEN time_shaped AND tz_len = 6
             THEN CAST(substr(created_at, length(created_at) - 1, 2) AS BIGINT) END AS tz_m,
        CASE WHEN substr(created_at, length(created_at) - 5, 1) = '-' THEN -1 ELSE 1 END
            AS tz_sign,
        kind = 'id' AND {d.full_match("memo", _DIGITS)} AND (length(memo_digits) < 20
            OR (length(memo_digits) = 20 AND memo_digits <= '{MAX_UINT64_TEXT}')) AS memo_id_ok,
        kind IN ('hash', 'return') AND {d.full_match("memo", _HEX64)} AS memo_hex_ok
    FROM parts
), judged AS (
    SELECT *,
        CASE WHEN amount_value > 0 AND amount_value <= {MAX_INT64}
             THEN CAST(amount_value AS BIGINT) END AS amount_stroops,
        CASE WHEN tz_len = 1 THEN local_seconds * 1000000 + CAST(fraction AS BIGINT)
             WHEN tz_h <= 23 AND tz_m <= 59
             THEN (local_seconds - tz_sign * (tz_h * 3600 + tz_m * 60)) * 1000000
                  + CAST(fraction AS BIGINT)
        END AS created_us,
        CASE WHEN memo IS NULL THEN NULL
             WHEN kind = 'text' THEN memo
             WHEN memo_id_ok THEN memo_digits
             WHEN memo_hex_ok THEN lower(memo) END AS memo_value
    FROM valued
), flagged AS (
    SELECT *,
        ({blank_odd}) AS blank_odd,
        (
            {required}
            OR amount_stroops IS NULL
            OR status NOT IN ('pending', 'submitted', 'confirmed', 'failed')
            OR (tx_hash IS NOT NULL AND NOT {d.full_match("tx_hash", _HEX64)})
            OR kind NOT IN ('none', 'text', 'id', 'hash', 'return')
            OR (memo IS NOT NULL AND (kind = 'none'
                OR (kind = 'text' AND {d.utf8_bytes("memo")} > 28)
                OR (kind = 'id' AND NOT memo_id_ok)))
            OR (ledger IS NOT NULL AND NOT ({d.full_match("ledger", _DIGITS)}
                AND (length(ledger_digits) < 10
                     OR (length(ledger_digits) = 10 AND ledger_digits <= '{MAX_LEDGER_TEXT}'))))
            OR {seeds}
        ) AS bad_sql
    FROM judged
)
SELECT
    payout_id, settlement_id, destination,
    {canonical_asset("asset")} AS asset,
    amount_stroops, status, created_us,
    CASE WHEN created_us IS NULL THEN created_at END AS created_odd,
    lower(tx_hash) AS tx_hash,
    kind AS memo_type,
    memo_value,
    CASE WHEN memo IS NOT NULL AND kind IN ('hash', 'return') AND NOT memo_hex_ok
         THEN memo END AS memo_odd,
    idempotency_key,
    status IN ('submitted', 'confirmed') AS is_transfer,
    blank_odd,
    coalesce(bad_sql, true) AS bad{kept}
FROM flagged
"""


def payouts_sql(d: Dialect, odd_values: bool) -> str:
    """SELECT the typed ``payouts`` the rules read from ``judged`` (valid by then), with
    ``transfer_key``; with ``odd_values``, the times and memos Python judged filled in
    from ``odd_times (text, us)`` and ``odd_memos (text, hex)``.

    ``transfer_key`` is derived here, not stored in ``judged``: a long text per
    row that only the few rows in candidate groups ever need.
    """
    created, memo, joins = "created_us", "memo_value", ""
    if odd_values:
        created = "coalesce(j.created_us, t.us)"
        memo = "coalesce(j.memo_value, m.hex)"
        joins = (
            " LEFT JOIN odd_times t ON j.created_odd = t.text"
            " LEFT JOIN odd_memos m ON j.memo_odd = m.text"
        )
    return (
        "SELECT j.payout_id, j.settlement_id, j.destination, j.asset, j.amount_stroops, "
        f"j.status, {created} AS created_us, j.tx_hash, j.memo_type, {memo} AS memo_value, "
        "j.idempotency_key, j.is_transfer, "
        f"coalesce('tx:' || {d.tx_text('j.tx_hash')}, 'payout:' || j.payout_id) AS transfer_key "
        f"FROM judged j{joins}"
    )


# -- the rules ------------------------------------------------------------------------------


def rule_steps(d: Dialect, window_us: int) -> list[tuple[str, str]]:
    """The rules as named steps, each a SELECT over ``payouts`` and the steps before it,
    the last one ``members``: (rule, group_key, the finding's rows) for every finding.

    Rule numbers follow RULE_CODES; ``group_key`` is the finding's key within its
    rule. An engine runs them as one query of CTEs (:func:`members_sql`) or one
    table at a time, which keeps each step within DuckDB's memory limit.
    """
    columns = _prefixed(_MEMBER_COLUMNS, "p")
    # Each *_keys step groups by a 64-bit hash of the key (a small hash table even at 10M
    # rows); the step after it groups the rows of those hashes by the key itself, so a
    # hash collision adds a candidate, never a finding.
    keys = {
        "tx": ("tx_hash",), "settlement": ("settlement_id",), "memo": ("memo_type", "memo_value"),
        "idempotency": ("idempotency_key",), "payment": ("destination", "asset", "amount_stroops"),
    }  # fmt: skip
    tx, settlement, memo, idempotency, payment = (d.key_hash(*k) for k in keys.values())
    p_tx, p_settlement, p_memo, p_idempotency, p_payment = (
        d.key_hash(*(f"p.{c}" for c in k)) for k in keys.values()
    )
    steps = [
        (
            "r1_keys",
            f"""
    SELECT {tx} AS h FROM payouts WHERE tx_hash IS NOT NULL GROUP BY 1 HAVING count(*) >= 2
""",
        ),
        (
            "r1",
            f"""
    SELECT p.tx_hash AS group_key FROM payouts p JOIN r1_keys k ON {p_tx} = k.h
    WHERE p.tx_hash IS NOT NULL
    GROUP BY p.tx_hash HAVING count(*) >= 2
""",
        ),
        (
            "r2_keys",
            f"""
    SELECT {settlement} AS h FROM payouts WHERE is_transfer GROUP BY 1 HAVING count(*) >= 2
""",
        ),
        (
            "r2",
            f"""
    SELECT p.settlement_id AS group_key FROM payouts p
    JOIN r2_keys k ON {p_settlement} = k.h
    WHERE p.is_transfer
    GROUP BY p.settlement_id HAVING count(DISTINCT p.transfer_key) >= 2
""",
        ),
        (
            "r3_keys",
            f"""
    SELECT {memo} AS h FROM payouts
    WHERE status = 'confirmed' AND memo_type <> 'none' AND memo_value IS NOT NULL
      AND memo_value <> ''
    GROUP BY 1 HAVING count(*) >= 2
""",
        ),
        (
            "r3",
            f"""
    SELECT p.memo_type, p.memo_value FROM payouts p
    JOIN r3_keys k ON {p_memo} = k.h
    WHERE p.status = 'confirmed' AND p.memo_type <> 'none' AND p.memo_value IS NOT NULL
      AND p.memo_value <> ''
    GROUP BY p.memo_type, p.memo_value
    HAVING count(DISTINCT p.settlement_id) >= 2 AND count(DISTINCT p.transfer_key) >= 2
""",
        ),
        (
            "r4_keys",
            f"""
    SELECT {idempotency} AS h FROM payouts WHERE idempotency_key IS NOT NULL
    GROUP BY 1 HAVING count(*) >= 2
""",
        ),
        (
            "r4_compared",
            f"""
    SELECT p.idempotency_key AS group_key,
        count(DISTINCT p.settlement_id) > 1 AS differs_settlement,
        count(DISTINCT p.destination) > 1 AS differs_destination,
        count(DISTINCT p.asset) > 1 AS differs_asset,
        count(DISTINCT p.amount_stroops) > 1 AS differs_amount
    FROM payouts p JOIN r4_keys k ON {p_idempotency} = k.h
    WHERE p.idempotency_key IS NOT NULL
    GROUP BY p.idempotency_key
""",
        ),
        (
            "r4",
            """
    SELECT * FROM r4_compared
    WHERE differs_settlement OR differs_destination OR differs_asset OR differs_amount
""",
        ),
        (
            "r5_keys",
            f"""
    SELECT {payment} AS h FROM payouts WHERE is_transfer GROUP BY 1 HAVING count(*) >= 2
""",
        ),
        (
            "r5_groups",
            f"""
    SELECT p.destination, p.asset, p.amount_stroops FROM payouts p
    JOIN r5_keys k ON {p_payment} = k.h
    WHERE p.is_transfer
    GROUP BY p.destination, p.asset, p.amount_stroops HAVING count(DISTINCT p.transfer_key) >= 2
""",
        ),
        (
            "r5_rows",
            f"""
    SELECT {columns} FROM payouts p
    JOIN r5_groups g ON p.destination = g.destination AND p.asset = g.asset
        AND p.amount_stroops = g.amount_stroops
    WHERE p.is_transfer
""",
        ),
        (
            "r5_transfers",
            """
    SELECT destination, asset, amount_stroops, transfer_key, created_us AS ts, memo_key FROM (
        SELECT destination, asset, amount_stroops, transfer_key, created_us,
            CASE WHEN memo_type <> 'none' AND memo_value IS NOT NULL AND memo_value <> ''
                 THEN memo_type || ':' || memo_value END AS memo_key,
            row_number() OVER (PARTITION BY destination, asset, amount_stroops, transfer_key
                               ORDER BY created_us, payout_id) AS row_in_transfer
        FROM r5_rows
    ) firsts WHERE row_in_transfer = 1
""",
        ),
        # Two present, different memos are never chained: with two or more memos in a
        # group each memo and the memo-less transfers are a class; else one class ''.
        (
            "r5_memos",
            """
    SELECT destination, asset, amount_stroops, memo_key AS memo_class
    FROM r5_transfers WHERE memo_key IS NOT NULL
    GROUP BY destination, asset, amount_stroops, memo_key
""",
        ),
        (
            "r5_split",
            """
    SELECT destination, asset, amount_stroops FROM r5_memos
    GROUP BY destination, asset, amount_stroops HAVING count(*) >= 2
""",
        ),
        (
            "r5_classed",
            """
    SELECT t.destination, t.asset, t.amount_stroops, t.transfer_key, t.ts, '' AS memo_class
    FROM r5_transfers t LEFT JOIN r5_split s ON t.destination = s.destination
        AND t.asset = s.asset AND t.amount_stroops = s.amount_stroops
    WHERE s.destination IS NULL
    UNION ALL
    SELECT t.destination, t.asset, t.amount_stroops, t.transfer_key, t.ts, t.memo_key
    FROM r5_transfers t JOIN r5_split s ON t.destination = s.destination
        AND t.asset = s.asset AND t.amount_stroops = s.amount_stroops
    WHERE t.memo_key IS NOT NULL
    UNION ALL
    SELECT t.destination, t.asset, t.amount_stroops, t.transfer_key, t.ts, m.memo_class
    FROM r5_transfers t JOIN r5_split s ON t.destination = s.destination
        AND t.asset = s.asset AND t.amount_stroops = s.amount_stroops
    JOIN r5_memos m ON t.destination = m.destination AND t.asset = m.asset
        AND t.amount_stroops = m.amount_stroops
    WHERE t.memo_key IS NULL
""",
        ),
        (
            "r5_gaps",
            """
    SELECT *, ts - lag(ts) OVER (PARTITION BY destination, asset, amount_stroops, memo_class
                                 ORDER BY ts, transfer_key) AS gap
    FROM r5_classed
""",
        ),
        (
            "r5_chained",
            f"""
    SELECT *,
        sum(CASE WHEN gap IS NULL OR gap > {window_us} THEN 1 ELSE 0 END) OVER (
            PARTITION BY destination, asset, amount_stroops, memo_class ORDER BY ts, transfer_key
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS chain_no
    FROM r5_gaps
""",
        ),
        (
            "r5_identities",
            f"""
    SELECT destination, asset, amount_stroops, memo_class, chain_no,
        {d.sorted_list("transfer_key")} AS identity
    FROM r5_chained GROUP BY destination, asset, amount_stroops, memo_class, chain_no
""",
        ),
        (
            "r5_kept",
            """
    SELECT destination, asset, amount_stroops, memo_class, chain_no FROM (
        SELECT *, row_number() OVER (PARTITION BY destination, asset, amount_stroops, identity
                                     ORDER BY memo_class) AS seen
        FROM r5_identities
    ) found WHERE seen = 1
""",
        ),
        (
            "r5_chains",
            f"""
    SELECT c.destination, c.asset, c.amount_stroops, c.memo_class, c.chain_no,
        min(c.ts) AS first_us, max(c.ts) AS last_us,
        max(CASE WHEN c.gap IS NOT NULL AND c.gap <= {window_us} THEN c.gap END) AS largest_gap_us
    FROM r5_chained c
    JOIN r5_kept k ON c.destination = k.destination AND c.asset = k.asset
        AND c.amount_stroops = k.amount_stroops AND c.memo_class = k.memo_class
        AND c.chain_no = k.chain_no
    JOIN r5_rows p ON p.destination = c.destination AND p.asset = c.asset
        AND p.amount_stroops = c.amount_stroops AND p.transfer_key = c.transfer_key
    GROUP BY c.destination, c.asset, c.amount_stroops, c.memo_class, c.chain_no
    HAVING count(DISTINCT c.transfer_key) >= 2 AND count(DISTINCT p.settlement_id) >= 2
""",
        ),
        (
            "members",
            f"""
    SELECT 1 AS rule, {d.tx_text("p.tx_hash")} AS group_key, {columns},
        CAST(NULL AS BOOLEAN) AS differs_settlement, CAST(NULL AS BOOLEAN) AS differs_destination,
        CAST(NULL AS BOOLEAN) AS differs_asset, CAST(NULL AS BOOLEAN) AS differs_amount,
        CAST(NULL AS BIGINT) AS first_us, CAST(NULL AS BIGINT) AS last_us,
        CAST(NULL AS BIGINT) AS largest_gap_us
    FROM payouts p JOIN r1 ON p.tx_hash = r1.group_key
    UNION ALL
    SELECT 2, p.settlement_id, {columns}, {_NO_EXTRAS}
    FROM payouts p JOIN r2 ON p.settlement_id = r2.group_key
    WHERE p.is_transfer
    UNION ALL
    SELECT 3, p.memo_type || ':' || p.memo_value, {columns}, {_NO_EXTRAS}
    FROM payouts p JOIN r3 ON p.memo_type = r3.memo_type AND p.memo_value = r3.memo_value
    WHERE p.status = 'confirmed'
    UNION ALL
    SELECT 4, p.idempotency_key, {columns},
        r4.differs_settlement, r4.differs_destination, r4.differs_asset, r4.differs_amount,
        NULL, NULL, NULL
    FROM payouts p JOIN r4 ON p.idempotency_key = r4.group_key
    UNION ALL
    SELECT 5, CAST(c.destination AS {d.text}) || '|' || CAST(c.asset AS {d.text})
        || '|' || CAST(c.amount_stroops AS {d.text})
        || '|' || c.memo_class || '|' || CAST(c.chain_no AS {d.text}), {columns},
        NULL, NULL, NULL, NULL, c.first_us, c.last_us, c.largest_gap_us
    FROM r5_chained t
    JOIN r5_chains c ON t.destination = c.destination AND t.asset = c.asset
        AND t.amount_stroops = c.amount_stroops AND t.memo_class = c.memo_class
        AND t.chain_no = c.chain_no
    JOIN r5_rows p ON p.destination = t.destination AND p.asset = t.asset
        AND p.amount_stroops = t.amount_stroops AND p.transfer_key = t.transfer_key
""",
        ),
    ]
    return steps


# Rules 1-3 carry none of rule 4's and rule 5's own evidence.
_NO_EXTRAS = ", ".join(["NULL"] * 7)
_MEMBER_COLUMNS = (
    "payout_id, settlement_id, destination, asset, amount_stroops, status, created_us, "
    "tx_hash, memo_type, memo_value, idempotency_key, is_transfer, transfer_key"
)


def members_sql(d: Dialect, window_us: int) -> str:
    """SELECT every finding's rows from ``payouts`` in one query (see :func:`rule_steps`),
    with the rule's own evidence (rule 4: which fields differ; rule 5: the chain's
    times and largest gap). Engines keep this small relation as ``members`` for
    :func:`findings_sql` and :func:`at_risk_sql`.
    """
    ctes = ",\n".join(f"{name} AS (\n{query}\n)" for name, query in rule_steps(d, window_us))
    return f"WITH {ctes}\nSELECT * FROM members"


def findings_sql(d: Dialect) -> str:
    """One row per finding of ``members``: its rule, key and evidence, aggregated."""
    return f"""
SELECT m.rule, m.group_key,
    count(*) AS row_count,
    {d.sorted_list("m.payout_id")} AS payout_ids,
    {d.sorted_list("m.settlement_id", distinct=True)} AS settlement_ids,
    {d.sorted_list("m.tx_hash", distinct=True)} AS tx_hashes,
    {d.sorted_list("m.destination", distinct=True)} AS destinations,
    {d.sorted_list("m.asset", distinct=True)} AS assets,
    {d.sorted_list("m.amount_stroops", distinct=True)} AS amounts,
    count(CASE WHEN m.status = 'confirmed' THEN 1 END) AS n_confirmed,
    count(CASE WHEN m.status = 'failed' THEN 1 END) AS n_failed,
    count(CASE WHEN m.status = 'pending' THEN 1 END) AS n_pending,
    count(CASE WHEN m.status = 'submitted' THEN 1 END) AS n_submitted,
    count(DISTINCT CASE WHEN m.is_transfer THEN m.transfer_key END) AS transfers,
    count(DISTINCT CASE WHEN m.status = 'confirmed' THEN m.transfer_key END)
        AS confirmed_transfers,
    min(m.memo_type) AS memo_type, min(m.memo_value) AS memo_value,
    min(m.destination) AS destination, min(m.asset) AS asset,
    min(m.amount_stroops) AS amount_stroops,
    max(CASE WHEN m.differs_settlement THEN 1 ELSE 0 END) AS differs_settlement,
    max(CASE WHEN m.differs_destination THEN 1 ELSE 0 END) AS differs_destination,
    max(CASE WHEN m.differs_asset THEN 1 ELSE 0 END) AS differs_asset,
    max(CASE WHEN m.differs_amount THEN 1 ELSE 0 END) AS differs_amount,
    min(m.first_us) AS first_us, min(m.last_us) AS last_us,
    min(m.largest_gap_us) AS largest_gap_us
FROM members m
GROUP BY m.rule, m.group_key
"""


def at_risk_sql() -> str:
    """Per finding of ``members`` and asset, the sums of its evidence (``kind``): ``at_risk``,
    every transfer but the earliest, each at its earliest row; ``exposed``, the pending rows
    (each once), but the earliest when the group has no transfer (as checks/payouts.py).
    Summed as DECIMAL(38, 0): a few amounts near the int64 limit overflow a BIGINT sum
    (Spark wraps it silently)."""
    return """
WITH transfer_rows AS (
    SELECT rule, group_key, transfer_key, asset, amount_stroops, created_us,
        row_number() OVER (PARTITION BY rule, group_key, transfer_key
                           ORDER BY created_us, payout_id) AS row_in_transfer
    FROM members WHERE is_transfer
),
ranked AS (
    SELECT rule, group_key, asset, amount_stroops,
        row_number() OVER (PARTITION BY rule, group_key
                           ORDER BY created_us, transfer_key) AS transfer_no
    FROM transfer_rows WHERE row_in_transfer = 1
),
has_transfer AS (
    SELECT rule, group_key, max(CASE WHEN is_transfer THEN 1 ELSE 0 END) AS transfers
    FROM members GROUP BY rule, group_key
),
queued AS (
    SELECT rule, group_key, asset, amount_stroops,
        row_number() OVER (PARTITION BY rule, group_key
                           ORDER BY created_us, payout_id) AS queue_no
    FROM members WHERE status = 'pending'
)
SELECT 'at_risk' AS kind, rule, group_key, asset, sum(CAST(amount_stroops AS DECIMAL(38, 0)))
    AS stroops
FROM ranked WHERE transfer_no > 1
GROUP BY rule, group_key, asset
UNION ALL
SELECT 'exposed', q.rule, q.group_key, q.asset, sum(CAST(q.amount_stroops AS DECIMAL(38, 0)))
FROM queued q JOIN has_transfer t ON q.rule = t.rule AND q.group_key = t.group_key
WHERE t.transfers = 1 OR q.queue_no > 1
GROUP BY q.rule, q.group_key, q.asset
"""


def _prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))
