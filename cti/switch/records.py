"""Call records (通话记录) written by the switch's own CDR machinery, mod_cdr_sqlite.

cti sets ``cti_rec_<key>`` channel variables on the record's leg as the call goes (the
customer's leg of a hotline call: ``cti.route`` / ``cti.xfer`` run on it and set them on their
own session, no API call; the seat's leg of a ``cti.call``: in its originate's ``{}``). When
the leg ends, mod_cdr_sqlite expands cti's template with the leg's variables and runs
``INSERT INTO cti_calls VALUES (<template>)`` into ``<db_dir>/cti_records.db``: the record is
written even when cti's own code has crashed or its watcher is stopped.

What mod_cdr_sqlite does (v1.10.12 src/mod/event_handlers/mod_cdr_sqlite/mod_cdr_sqlite.c):
- one table, one template for every leg; ``legs`` = ``a`` (default) skips a leg with an
  *originator* caller profile, which a ``uuid_bridge`` (att_xfer's complete/cancel) can give a
  customer leg: cti sets ``legs`` to ``ab`` and keeps the table to its own legs with a
  ``BEFORE INSERT`` trigger that drops (``RAISE(IGNORE)``) every row whose ``direction`` is
  empty, i.e. every leg that does not carry ``cti_rec_direction``;
- the template is expanded with ``switch_channel_expand_variables``, **unescaped**, and pasted
  into the SQL: so every ``${...}`` in it stands inside single quotes, and cti quotes the values
  it sets itself (``quote``); the switch's own values used bare are numbers it formats itself;
- when the table does not exist it creates its own default one (13 columns): cti's table is
  created before the module loads (``scripts/install.sh`` runs ``python3 -m
  cti.switch.records init <file>``).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import urllib.parse
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from cti.domain.record_search import CALLER, HOTLINE, SEAT, Query

# the record's keys (the contract of /work/notes-24-design.md): the table's columns, in order
COLUMNS = (
    ("uuid", "TEXT PRIMARY KEY"),
    ("direction", "TEXT NOT NULL"),
    ("hotline", "TEXT NOT NULL DEFAULT ''"),
    ("caller_number", "TEXT NOT NULL DEFAULT ''"),
    ("caller_name", "TEXT NOT NULL DEFAULT ''"),
    ("entered", "REAL"),
    ("waited", "REAL"),
    ("seats", "TEXT NOT NULL DEFAULT ''"),
    ("talk", "REAL"),
    ("hold", "REAL"),
    ("outcome", "TEXT NOT NULL DEFAULT ''"),
    ("hangup_by", "TEXT NOT NULL DEFAULT ''"),
    ("cause", "TEXT NOT NULL DEFAULT ''"),
    ("recording", "TEXT NOT NULL DEFAULT ''"),
    ("masked", "TEXT NOT NULL DEFAULT ''"),
    ("survey", "INTEGER"),
    ("ended", "REAL"),
    # when record.keep_days deleted the recording (epoch; NULL: not deleted): set afterwards by
    # the switch's call watcher (``mark_pruned``), never by the template (it writes NULL)
    ("pruned", "REAL"),
)
KEYS = tuple(name for name, _ in COLUMNS)
ADDED = ("pruned",)  # columns added after the first schema: ``init`` adds them to an older table
TABLE = "cti_calls"
DB_NAME = "cti_records"  # mod_cdr_sqlite's db-name: the core opens <db_dir>/<name>.db
FILE = DB_NAME + ".db"
PREFIX = "cti_rec_"  # the channel variables cti sets: cti_rec_<key>
# working notes that are no column: a talk the switch continued (open), the recording's start
# (rstart: epoch, for a pause left open at the call's end)
EXTRA = ("open", "rstart")
MARKER = "<!-- cti call records (scripts/install.sh) -->"

INDEXES = (
    ("by_ended", "ended, uuid, seats"),  # a date range; a seat (checked in the index)
    ("by_hotline", "hotline, ended, uuid"),
    ("by_hotline_outcome", "hotline, outcome, ended, uuid"),
    ("by_caller", "caller_number, ended, uuid"),
    ("by_outcome", "outcome, ended, uuid, seats"),  # an outcome; an outcome and a seat
)
OLD_INDEXES = ("ended", "hotline", "caller", "seats")  # the first schema's: replaced by INDEXES

SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (" + ", ".join(f"{n} {t}" for n, t in COLUMNS) + ")",
    # the legs that carry no record variable are not cti's calls: not written
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_only_cti BEFORE INSERT ON {TABLE} "
    "WHEN NEW.direction IS NULL OR NEW.direction = '' BEGIN SELECT RAISE(IGNORE); END",
    # one index per search form of cti.records (newest first, paged on (ended, uuid)): each
    # ends with (ended, uuid) so a page is read in order and stops at its limit; the columns
    # after them are filters checked in the index before the row is read (a seat: in ``seats``)
    *(f"CREATE INDEX IF NOT EXISTS {TABLE}_{name} ON {TABLE} ({cols})" for name, cols in INDEXES),
)


def _v(key: str) -> str:
    """A cti record variable, as an SQL string literal (its value is quoted by cti)."""
    return f"'${{{PREFIX}{key}}}'"


def _num(expr: str) -> str:
    return f"CAST({expr} AS REAL)"


_ENTERED = _num(_v("entered"))
_END = "CAST('${end_uepoch}' AS INTEGER)/1000000.0"
_BRIDGE = "CAST('${bridge_uepoch}' AS INTEGER)"  # the leg's last bridge (0: never bridged)
_OUT = f"{_v('direction')} = 'outbound'"

# One SQL expression per column, in COLUMNS' order. Outbound (the seat's leg of cti.call):
# its bridge is the far party's answer. Inbound: cti notes waited, seats, talk, outcome as they
# happen; ``open`` is a talk still running when cti.route gave the call up (att_xfer's switch
# re-bridged it): it counts until the leg ends.
_EXPRESSIONS = (
    "'${uuid}'",
    _v("direction"),
    _v("hotline"),
    _v("caller_number"),
    _v("caller_name"),
    _ENTERED,
    f"CASE WHEN {_v('waited')} != '' THEN {_num(_v('waited'))}"
    f" WHEN {_BRIDGE} > 0 THEN {_BRIDGE}/1000000.0 - {_ENTERED} ELSE {_END} - {_ENTERED} END",
    _v("seats"),
    f"CASE WHEN {_OUT} THEN (CASE WHEN {_BRIDGE} > 0 THEN {_END} - {_BRIDGE}/1000000.0 ELSE 0 END)"
    f" ELSE {_num(_v('talk'))} + (CASE WHEN {_v('open')} != '' THEN {_END} - {_num(_v('open'))} ELSE 0 END) END",
    _num("'${cti_hold_seconds}'"),
    f"CASE WHEN {_OUT} THEN (CASE WHEN {_BRIDGE} > 0 THEN 'outbound_answered' ELSE 'outbound_unanswered' END)"
    f" WHEN {_v('outcome')} != '' THEN {_v('outcome')} ELSE 'abandoned' END",
    "CASE WHEN '${cti_stopcall_by}' != '' THEN 'supervisor'"
    f" WHEN {_v('hangup_by')} != '' THEN {_v('hangup_by')}"
    " WHEN '${cti_hangup_by}' != '' THEN 'agent'"
    f" WHEN {_OUT} THEN (CASE WHEN '${{sip_hangup_disposition}}' LIKE 'recv%' THEN 'agent' ELSE 'caller' END)"
    " WHEN '${sip_hangup_disposition}' LIKE 'recv%' THEN 'caller'"
    f" WHEN {_v('seats')} != '' THEN 'agent' ELSE 'system' END",
    "'${hangup_cause}'",
    _v("recording"),
    # a pause the agent forgot (``<from>-``) ends with the call: closed at the leg's end
    f"CASE WHEN {_v('masked')} LIKE '%-' AND {_v('rstart')} != ''"
    f" THEN {_v('masked')} || printf('%.1f', {_END} - {_num(_v('rstart'))}) ELSE {_v('masked')} END",
    f"NULLIF(CAST({_v('survey')} AS INTEGER), 0)",
    _END,
    "NULL",  # pruned
)
TEMPLATE = ",".join(_EXPRESSIONS)


def quote(value: str, limit: int = 200) -> str:
    """A value cti puts in a record variable: the template pastes it unescaped between single
    quotes, so a quote is doubled; control characters go; at most ``limit`` characters."""
    text = "".join(c for c in str(value)[:limit] if c >= " " and c != "\x7f")
    return text.replace("'", "''")


def variables(fields: Mapping[str, object]) -> Dict[str, str]:
    """``{key: value}`` -> the channel variables that carry them."""
    out = {}
    for key, value in fields.items():
        if key not in KEYS and key not in EXTRA:
            raise ValueError(f"no record key {key!r}")
        if isinstance(value, float):
            value = f"{value:.3f}"
        out[PREFIX + key] = quote(str(value))
    return out


def unquote(value: str) -> str:
    return value.replace("''", "'")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def conf_xml(db: str = "") -> str:
    """``autoload_configs/cdr_sqlite.conf.xml``: cti's table and template, every leg (``ab``:
    the trigger keeps only cti's). ``db``: the config's ``records.db`` (the core takes a
    db-name starting with '/' as the file itself), else ``<db_dir>/cti_records.db``."""
    return (
        f'<configuration name="cdr_sqlite.conf" description="SQLite CDR">\n  {MARKER}\n  <settings>\n'
        f'    <param name="db-name" value="{_xml_text(db) if db else DB_NAME}"/>\n'
        f'    <param name="db-table" value="{TABLE}"/>\n'
        '    <param name="legs" value="ab"/>\n'
        '    <param name="default-template" value="cti"/>\n'
        "  </settings>\n  <templates>\n"
        f'    <template name="cti">{_xml_text(TEMPLATE)}</template>\n'
        "  </templates>\n</configuration>\n"
    )


def init(path: str) -> None:
    """Create the records file and its table, trigger and indexes (idempotent). A table of the
    wrong shape (mod_cdr_sqlite's own default, made when it loaded first) is renamed aside; cti's
    own table of an earlier version gets the columns added since (``ADDED``, at the end: the
    template's values are in the columns' order). mod_cdr_sqlite must then load the template of
    the same version (``scripts/install.sh`` runs this and reloads it right after)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    con = sqlite3.connect(path)
    try:
        cols = [row[1] for row in con.execute(f"PRAGMA table_info({TABLE})")]
        missing = KEYS[len(cols) :]
        if cols and tuple(cols) == KEYS[: len(cols)] and missing and set(missing) <= set(ADDED):
            for name in missing:
                con.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {dict(COLUMNS)[name]}")
            cols = list(KEYS)
        if cols and tuple(cols) != KEYS:
            con.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_old_{len(cols)}")
        con.execute("PRAGMA journal_mode=WAL")  # readers (cti.records, the web) never block the switch's writes
        for old in OLD_INDEXES:
            con.execute(f"DROP INDEX IF EXISTS {TABLE}_{old}")
        # a table renamed aside keeps its trigger and indexes, names and all: cti's own must be on
        # the table the switch writes, or (IF NOT EXISTS) the new one would get none, and the
        # trigger that keeps other legs out with them
        mine = {f"{TABLE}_only_cti"} | {f"{TABLE}_{name}" for name, _ in INDEXES}
        for kind, name, table in list(
            con.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('index', 'trigger')")
        ):
            if name in mine and table != TABLE:
                con.execute(f"DROP {kind.upper()} {name}")
        for sql in SCHEMA:
            con.execute(sql)
        con.execute(f"DELETE FROM {TABLE} WHERE direction IS NULL OR direction = ''")  # written while it had no trigger
        con.commit()
    finally:
        con.close()


# -- reading (cti.records, cti.stats for past days) -------------------------------------------
BUSY_MS = 2000  # the switch writes in WAL mode: a reader waits only for a checkpoint's moment
_SELECT = f"SELECT {', '.join(KEYS)} FROM {TABLE}"
_ORDER = " ORDER BY ended DESC, uuid DESC LIMIT ?"


def path_of(db_dir: str, configured: str = "") -> str:
    """The records file: the config's ``records.db``, else ``<db_dir>/cti_records.db``."""
    return configured or os.path.join(db_dir or ".", FILE)


def connect(path: str) -> Optional[sqlite3.Connection]:
    """The records file, read-only (``mode=ro``: nothing here can write it), or None when the
    switch never wrote one (no call recorded yet)."""
    if not os.path.isfile(path):
        return None
    con = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=BUSY_MS / 1000)
    con.row_factory = sqlite3.Row
    return con


def where(query: Query, mark: Optional[Tuple[float, str]]) -> Tuple[str, List[object]]:
    """The search's WHERE clause and its parameters: every value the user gave is a bound
    parameter, never SQL text."""
    terms, params = ["ended >= ?", "ended < ?"], [query.start, query.end]  # type: List[str], List[object]
    if query.field == HOTLINE:
        terms.append("hotline = ?")
        params.append(query.value)
    elif query.field == SEAT:  # one of the comma-separated seats
        terms.append("instr(',' || seats || ',', ?) > 0")
        params.append(f",{query.value},")
    elif query.field == CALLER:
        terms.append("caller_number = ?")
        params.append(query.value)
    if query.outcome:
        terms.append("outcome = ?")
        params.append(query.outcome)
    if mark is not None:  # keyset: older than the record paged on
        terms.append("ended <= ? AND (ended < ? OR uuid < ?)")
        params.extend((mark[0], mark[0], mark[1]))
    return " WHERE " + " AND ".join(terms), params


class Reader:
    """The domain's records reader (record_search.Reader) over one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _rows(self, sql: str, params: Sequence[object]) -> List[Dict[str, object]]:
        con = connect(self.path)
        if con is None:
            return []
        try:
            try:
                return [dict(row) for row in con.execute(sql, params)]
            except sqlite3.OperationalError as exc:
                if "no such column" not in str(exc) or not any(f" {name}" in sql for name in ADDED):
                    raise
            # a file of an earlier version (install.sh not run again yet): its columns added since are NULL
            have = {row[1] for row in con.execute(f"PRAGMA table_info({TABLE})")}
            for name in ADDED:
                if name not in have:
                    sql = sql.replace(f", {name} FROM", f", NULL AS {name} FROM")
            return [dict(row) for row in con.execute(sql, params)]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the file without cti's table: nothing recorded
                return []
            raise
        finally:
            con.close()

    def find(self, uuid: str) -> Optional[Dict[str, object]]:
        rows = self._rows(_SELECT + " WHERE uuid = ?", (uuid,))
        return rows[0] if rows else None

    def search(self, query: Query, mark: Optional[Tuple[float, str]], limit: int) -> List[Dict[str, object]]:
        clause, params = where(query, mark)
        return self._rows(_SELECT + clause + _ORDER, [*params, limit])

    def sql(self, query: Query, mark: Optional[Tuple[float, str]] = None) -> Tuple[str, List[object]]:
        """The statement a search runs (the benchmark's and the tests' EXPLAIN QUERY PLAN)."""
        clause, params = where(query, mark)
        return _SELECT + clause + _ORDER, [*params, query.limit + 1]

    def totals(self, query: Query) -> List[Dict[str, object]]:
        """Every record of ``query``'s range and filter (no page), with the columns figures are
        made of: ``cti.stats`` for past days."""
        clause, params = where(query, None)
        cols = "direction, hotline, seats, waited, talk, hold, outcome, survey, ended"
        return self._rows(f"SELECT {cols} FROM {TABLE}{clause}", params)


# -- keep_days (cti/switch/recordings.py): the records of the files it deleted -----------------
WRITE_BUSY_MS = 500  # the prune's write waits at most this long for the switch's own (WAL: rarely)


def mark_pruned(path: str, files: Sequence[Tuple[str, str]], when: float) -> int:
    """The records of recordings ``keep_days`` deleted: ``(uuid, recording)`` each (the file's
    record uuid is its name), ``recording`` set to "" and ``pruned`` to ``when``. Each by its
    uuid (the primary key) and only while it still names that file. The number marked; 0 and
    nothing written when the records file does not exist."""
    if not files or not os.path.isfile(path):
        return 0
    con = sqlite3.connect(path, timeout=WRITE_BUSY_MS / 1000)
    try:
        cur = con.executemany(
            f"UPDATE {TABLE} SET recording = '', pruned = ? WHERE uuid = ? AND recording = ?",
            [(when, uuid, recording) for uuid, recording in files],
        )
        con.commit()
        return cur.rowcount
    finally:
        con.close()


def configured(config_path: str) -> str:
    """The config's ``records.db`` ("" none); a config that does not load: "" and why on stderr."""
    if not config_path or not os.path.isfile(config_path):
        return ""
    from cti import config
    from cti.domain.errors import CtiError

    try:
        return config.load(config_path).records.db
    except CtiError as exc:
        sys.stderr.write(f"cti: {exc.reply()}: the records file is <db_dir>/{FILE}\n")
        return ""


def main(argv: list) -> int:
    if len(argv) == 2 and argv[0] == "init":
        init(argv[1])
        return 0
    if argv[:1] == ["conf"] and len(argv) <= 2:
        sys.stdout.write(conf_xml(configured(argv[1]) if len(argv) == 2 else ""))
        return 0
    if len(argv) == 2 and argv[0] == "db":  # the config's records.db, "" for <db_dir>/cti_records.db
        sys.stdout.write(configured(argv[1]) + "\n")
        return 0
    sys.stderr.write("usage: python3 -m cti.switch.records init <file> | conf [<cti.yaml>] | db <cti.yaml>\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
