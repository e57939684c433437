"""Schema versions and in-place upgrades of the results database.

The table ``schema_version`` records every version applied. A database made
before versioning existed (tables ``runs`` and ``tick_metrics`` only) is
version 1. :func:`ensure_schema` brings any database to
:data:`SCHEMA_VERSION`: it creates an empty one from the models, upgrades an
older one step by step (each step in :data:`STEPS` is idempotent) and refuses
one written by a newer PoisonLab. Upgrades run in one transaction under a
lock, so processes that open the same database at once (sweep workers) do not
race: ``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on
PostgreSQL.

Versions
--------
1
    ``runs``, ``tick_metrics``.
2
    ``sweeps``, ``account_outcomes``, ``model_snapshots``, ``schema_version``;
    ``runs.sweep_id`` and ``runs.cell_key`` with the unique index
    ``uq_runs_sweep_cell``.

Examples
--------
>>> from sqlalchemy import create_engine
>>> engine = create_engine("sqlite://")
>>> ensure_schema(engine)
2
>>> with engine.connect() as conn:
...     current_version(conn)
2
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Column, Connection, Engine, func, insert, inspect, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateSchema, ExecutableDDLElement

from stream.schema import (
    AccountOutcome,
    Base,
    ModelSnapshot,
    Run,
    SchemaVersion,
    Sweep,
    TickMetric,
)

__all__ = ["SCHEMA_VERSION", "STEPS", "SchemaTooNew", "current_version", "ensure_schema", "upgrade"]

#: The version the code in this checkout reads and writes.
SCHEMA_VERSION = 2

#: Key of the PostgreSQL advisory lock held while the schema is created or upgraded.
PG_LOCK_KEY = 0x706C6162  # "plab"


class SchemaTooNew(Exception):
    """The database was written by a newer PoisonLab than this one."""


class AddColumn(ExecutableDDLElement):
    """``ALTER TABLE ... ADD COLUMN`` for a column of a model table.

    The statement is rendered by the dialect's own DDL compiler (quoting,
    types, schema translation), never from user input.
    """

    inherit_cache = False

    def __init__(self, column: Column) -> None:
        self.column = column


@compiles(AddColumn)
def _compile_add_column(element: AddColumn, compiler, **kw) -> str:
    table = compiler.preparer.format_table(element.column.table)
    return "ALTER TABLE " + table + " ADD COLUMN " + compiler.get_column_specification(element.column)


def current_version(conn: Connection, schema: str | None = None) -> int:
    """The schema version of the database behind `conn` (0 when it is empty).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        A connection (with the repository's ``schema_translate_map``, if any).
    schema : str or None
        The database schema the tables live in.

    Returns
    -------
    int
        The highest version in ``schema_version``; 1 for a database with
        ``runs`` but no ``schema_version`` table; 0 when there are no tables.
    """
    names = set(inspect(conn).get_table_names(schema=schema))
    if SchemaVersion.__tablename__ in names:
        version = conn.scalar(select(func.max(SchemaVersion.version)))
        if version is not None:
            return int(version)
    return 1 if Run.__tablename__ in names else 0


def _add_missing_columns(conn: Connection, schema: str | None, table, names: tuple[str, ...]) -> None:
    existing = {c["name"] for c in inspect(conn).get_columns(table.name, schema=schema)}
    for name in names:
        if name not in existing:
            conn.execute(AddColumn(table.c[name]))


def _to_v2(conn: Connection, schema: str | None) -> None:
    tables = [TickMetric.__table__, Sweep.__table__, AccountOutcome.__table__, ModelSnapshot.__table__,
              SchemaVersion.__table__]
    Base.metadata.create_all(conn, tables=tables, checkfirst=True)
    _add_missing_columns(conn, schema, Run.__table__, ("sweep_id", "cell_key"))
    for index in Run.__table__.indexes:
        index.create(conn, checkfirst=True)


#: ``STEPS[v]`` upgrades a database at version ``v - 1`` to version ``v``.
STEPS: dict[int, Callable[[Connection, str | None], None]] = {2: _to_v2}


def _record(conn: Connection, version: int) -> None:
    conn.execute(insert(SchemaVersion).values(version=version, applied_at=datetime.now(timezone.utc)))


def upgrade(conn: Connection, schema: str | None = None) -> int:
    """Create or upgrade the schema on `conn` (the caller holds the lock and the transaction).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        A connection inside a transaction.
    schema : str or None
        The database schema the tables live in.

    Returns
    -------
    int
        The version before the upgrade (0 for an empty database).

    Raises
    ------
    SchemaTooNew
        If the database is at a version above :data:`SCHEMA_VERSION`.
    """
    before = current_version(conn, schema)
    if before > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database schema is version {before}, newer than this PoisonLab's ({SCHEMA_VERSION}); "
            "upgrade PoisonLab"
        )
    if before == 0:
        Base.metadata.create_all(conn, checkfirst=True)
        _record(conn, SCHEMA_VERSION)
        return before
    for version in range(before + 1, SCHEMA_VERSION + 1):
        STEPS[version](conn, schema)
        _record(conn, version)
    return before


def ensure_schema(engine: Engine, schema: str | None = None) -> int:
    """Bring the database of `engine` to :data:`SCHEMA_VERSION`.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The repository's engine (with its ``schema_translate_map``, if any).
    schema : str or None
        The database schema for the tables (PostgreSQL; created if missing).

    Returns
    -------
    int
        The version the database is at afterwards (:data:`SCHEMA_VERSION`).

    Raises
    ------
    SchemaTooNew
        If the database was written by a newer PoisonLab.
    sqlalchemy.exc.SQLAlchemyError
        If the database cannot be reached or changed.
    """
    with engine.connect() as conn:  # fast path: nothing to do, no lock taken
        found = current_version(conn, schema)
    if found == SCHEMA_VERSION:
        return found
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # we issue BEGIN ourselves
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before looking again
            try:
                upgrade(conn, schema)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        return SCHEMA_VERSION
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(PG_LOCK_KEY)))
        if schema is not None:
            conn.execute(CreateSchema(schema, if_not_exists=True))
        upgrade(conn, schema)
    return SCHEMA_VERSION
