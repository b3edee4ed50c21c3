"""Validate the staged rows (temp table ``_n``) set-based and route them: good rows into ``raw``,
refused rows into ``raw.quarantine``, in the caller's transaction.

A row's reason is the first of: a conversion problem (``_pre``), a failed rule
(:data:`warehouse.ingest.rules.RULES`), an identifier the identifier policy refuses
(:func:`collectors.names.name_problem`), an unknown reference, a duplicate key. Only rows that
pass the checks take part in duplicate detection (a refused row never hides a good one); among
duplicates the first by (file, row) wins, rows already in raw win over new ones.
"""
from __future__ import annotations

from collectors.names import name_problem
from warehouse.ingest.rules import DAY_SPAN_AGG, KEYS, LIST_FIELDS, NAME_FIELDS, REFERENCES, Rule, rules_for


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _rule_sql(r: Rule) -> str:
    return f"when {r.predicate} then {_q(r.field + '|' + r.reason + '|')} || coalesce(cast({r.field} as varchar), 'null')"


def _bad_names(con, kind: str) -> dict[str, int]:
    """Distinct identifier values of the staged rows the policy refuses, into temp table _names;
    returns how many per field (fields without any are not checked row by row)."""
    con.execute("create or replace temp table _names (field varchar, value varchar, reason varchar)")
    rows = []
    for fld in NAME_FIELDS[kind]:
        expr = f"unnest({fld})" if fld in LIST_FIELDS else fld
        for (v,) in con.execute(f"select distinct v from (select {expr} as v from _n) where v is not null").fetchall():
            problem = name_problem(v)
            if problem:
                rows.append([fld, v, f"invalid name: {problem}"])
    if rows:
        con.executemany("insert into _names values (?, ?, ?)", rows)
    counts: dict[str, int] = {}
    for fld, *_ in rows:
        counts[fld] = counts.get(fld, 0) + 1
    return counts


def _name_sql(fld: str) -> str:
    match = f"list_contains(n.{fld}, m.value)" if fld in LIST_FIELDS else f"m.value = n.{fld}"
    return (f"(select {_q(fld + '|')} || any_value(m.reason) || '|' || any_value(m.value) from _names m "
            f"where m.field = {_q(fld)} and {match})")


def reason_sql(kind: str, bad_name_fields) -> str:
    """The SQL expression giving a staged row ``n``'s refusal as 'field|reason|value', or null."""
    case = "case " + " ".join(_rule_sql(r) for r in rules_for(kind)) + " else null end"
    parts = [case] + [_name_sql(f) for f in bad_name_fields]
    refs = [r for r in REFERENCES if r.kind == kind]
    if refs:
        parts.append("case " + " ".join(_rule_sql(r) for r in refs) + " else null end")
    return "coalesce(" + ", ".join(parts) + ")"


def validate_and_insert(con, kind: str, col_list: str) -> tuple[dict, list]:
    """Check the staged rows and insert them; returns ({file: (good, bad)}, good rows' day spans).

    Three set-based statements in the common case, each one pass over the staged rows: the rules
    (one CASE, rows that fail it only are kept), the key candidates (keys seen twice in the batch
    or already in ``raw``: usually none), the insert. Only when there are candidates are their
    rows checked for duplicates, as a small set."""
    keys, day_expr = KEYS[kind]
    key_cols = ", ".join(keys)
    reason = reason_sql(kind, sorted(_bad_names(con, kind)))

    existing_filter = ""
    if kind in ("device_samples", "host_samples"):  # the key holds the day: look only at those days' rows
        existing_filter = (f"where r._date between (select min({day_expr}) from _n) "
                           f"and (select max({day_expr}) from _n)")
    # 1. the rules, one pass: only the refused rows are kept
    con.execute(f"""
        create or replace temp table _bad as
        select _file, _row, _chk as _reason
        from (select _file, _row, coalesce(_pre, {reason}) as _chk from _n n)
        where _chk is not null
    """)
    # 2. the keys that may be duplicates, whatever the rows' checks: seen twice in the staged rows,
    # or already loaded (a refused row never hides a good one: the candidates are a superset)
    con.execute(f"""
        create or replace temp table _cand as
        select {key_cols} from _n group by all having count(*) > 1
        union
        select {', '.join('r.' + k for k in keys)} from raw.{kind} r semi join _n k on {_on(keys, 'r', 'k')}
        {existing_filter}
    """)
    if con.execute("select count(*) from _cand").fetchone()[0]:
        _flag_duplicates(con, kind, keys, existing_filter)
    any_bad = con.execute("select count(*) from _bad").fetchone()[0] > 0
    # always through the anti join, even with no refused row: a plain scan of the Arrow rows is an
    # order-preserving insert whose row groups the next checkpoint rewrites (about 1 s a million rows)
    good = "_n anti join _bad using (_file, _row)"
    con.execute(f"""
        insert into raw.{kind}
        select {col_list}, _file, _row, {day_expr}, now() from {good}
    """)
    if any_bad:
        con.execute(f"""
            insert into raw.quarantine
            select {_q(kind)}, _file, _row, split_part(_reason, '|', 1), split_part(_reason, '|', 2),
                   nullif(array_to_string(string_split(_reason, '|')[3:], '|'), ''), now()
            from _bad
        """)
    return _counts(con, kind, good, any_bad)


def _on(keys: list, a: str, b: str) -> str:
    return " and ".join(f"{a}.{k} = {b}.{k}" for k in keys)


def _flag_duplicates(con, kind: str, keys: list, existing_filter: str) -> None:
    """Add to ``_bad`` the duplicate rows among the key candidates' (``_cand``) good rows."""
    key_cols = ", ".join(keys)
    part = ", ".join(f"o.{k}" for k in keys)
    key_val = " || ' ' || ".join(f"coalesce(cast(n.{k} as varchar), 'null')" for k in keys)
    # 3. the candidates' rows only: among the good ones, the first by (file, row) wins, rows
    # already in raw win over new ones
    con.execute(f"""
        insert into _bad
        with ok as materialized (
            select {', '.join('n.' + k for k in keys)}, n._file, n._row from _n n
            semi join _cand c on {_on(keys, 'n', 'c')}
            anti join _bad b on b._file = n._file and b._row = n._row
        ),
        dupkeys as (select {key_cols} from ok group by all having count(*) > 1),
        d as (
            select {part}, o._file, o._row,
                   row_number() over (partition by {part} order by o._file, o._row) as _nth,
                   first(o._file) over (partition by {part} order by o._file, o._row) as _first_file
            from ok o semi join dupkeys k on {_on(keys, 'o', 'k')}
        ),
        dups as (
            select n._file, n._row,
                   case when n._first_file = n._file then 'key|duplicate within file|' || {key_val}
                        else 'key|duplicate of a row in another file|' || {key_val} end as _reason
            from d n where n._nth > 1
        ),
        known as (
            select distinct {', '.join('r.' + k for k in keys)} from raw.{kind} r
            semi join ok k on {_on(keys, 'r', 'k')}
            {existing_filter}
        ),
        existing as (
            select n._file, n._row, 'key|duplicate of a row already loaded|' || {key_val} as _reason
            from ok n semi join known e on {_on(keys, 'e', 'n')}
            anti join dups x on x._file = n._file and x._row = n._row
        )
        select * from dups
        union all select * from existing
    """)

def _counts(con, kind: str, good: str = "_n anti join _bad using (_file, _row)", any_bad: bool = True
            ) -> tuple[dict, list]:
    first, last = DAY_SPAN_AGG[kind]
    counts: dict[str, list[int]] = {}
    spans = []
    for f, n, a, b in con.execute(f"""
        select _file, count(*), {first}, {last} from {good} group by _file
    """).fetchall():
        counts[f] = [int(n), 0]
        spans.append((a, b))
    if any_bad:
        for f, n in con.execute("select _file, count(*) from _bad group by _file").fetchall():
            counts.setdefault(f, [0, 0])[1] = int(n)
    return {f: tuple(v) for f, v in counts.items()}, spans
