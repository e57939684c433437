"""Tests of :mod:`stream.storage` against SQLite and PostgreSQL.

The ``repo`` fixture is parametrized over ``sqlite`` (a file under ``tmp_path``)
and ``postgresql``. PostgreSQL tests use ``$POISONLAB_TEST_PG_URL`` or else the
first reachable of ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` and
``postgresql+psycopg://root@127.0.0.1:5432/test``; each test gets a fresh schema
``t_<random hex>`` (passed as ``Repository(url, schema=...)``, which maps the
tables into it via ``schema_translate_map``) that is dropped afterwards. When
PostgreSQL or psycopg is missing, those tests skip and say what is missing.
"""

from __future__ import annotations

import doctest
import math
import sqlite3
import time
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateSchema, DropSchema

from stream import storage
from stream.storage import (
    Repository,
    Run,
    StorageError,
    TickMetric,
    mask_url,
    sanitize_json,
)

# --------------------------------------------------------------------------- fixtures
# ``pg_url`` (a reachable PostgreSQL URL, or a skip naming what is missing) is in conftest.py.


@pytest.fixture
def pg_schema(pg_url):
    """A fresh, empty schema ``t_<hex>``, dropped (with its tables) afterwards."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(CreateSchema(schema))
    try:
        yield admin, schema
    finally:
        with admin.begin() as conn:
            conn.execute(DropSchema(schema, cascade=True, if_exists=True))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request, tmp_path):
    if request.param == "sqlite":
        repository = Repository(f"sqlite:///{tmp_path / 'runs.db'}")
    else:
        pg = request.getfixturevalue("pg_url")
        _, schema = request.getfixturevalue("pg_schema")
        repository = Repository(pg, schema=schema)
    try:
        yield repository
    finally:
        repository.close()


def make_doc(run_id: str | None = None, **overrides) -> dict:
    doc = {
        "run_id": run_id or uuid.uuid4().hex,
        "scenario": {
            "name": "coordinated-flip",
            "seed": 7,
            "ticks": 3,
            "attack": {"strategy": "flip", "start_tick": 1, "targets": ["bank_alert", "promo"]},
            "population": {"bot_fraction": 0.1, "honest": None},
            "defense": {"chain": ["reputation"]},
        },
        "defense": "reputation",
        "seed": 7,
        "metrics": {
            "attack_success_rate": 1 / 3,
            "collateral_rate": 0.1 + 0.2,
            "clean_accuracy": 0.987654321012345,
            "clean_fpr": 1e-300,
            "clean_fnr": 0.0,
            "label_precision": None,
            "honest_vote_loss": None,
            "bot_precision": 0.75,
            "bot_recall": 2 / 3,
            "detection_delay_ticks": None,
            "votes": 1234,
            "emails": 5678,
            "wall_s": 1.25,
            "votes_per_s": 987.2,
            "emails_per_s": 4542.4,
            "per_category": {"spam": [0.5, None], "ham": {"fp": 3}},
        },
        "timeline": [
            {
                "tick": t,
                "attack_success_rate": None if t == 0 else t / 7,
                "collateral_rate": None if t == 0 else 0.01 * t,
                "clean_accuracy": 0.9 + t / 100,
                "clean_fpr": 0.02,
                "clean_fnr": 0.03,
                "label_precision": None if t == 0 else 0.5,
                "votes": 10 * t,
                "labels": t,
            }
            for t in range(3)
        ],
    }
    doc.update(overrides)
    return doc


def _iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


# --------------------------------------------------------------------------- round trips


def test_save_result_round_trip(repo):
    doc = make_doc()
    before = datetime.now(timezone.utc)
    repo.save_result(doc, group_id="cmp-1")

    back = repo.get_run(doc["run_id"])
    assert back is not None
    for key in ("run_id", "scenario", "defense", "seed", "metrics", "timeline"):
        assert back[key] == doc[key], key
    # exact float round trip (not just approximately equal)
    assert back["metrics"]["attack_success_rate"] == 1 / 3
    assert back["metrics"]["clean_fpr"] == 1e-300
    assert back["timeline"][1]["attack_success_rate"] == 1 / 7
    assert back["metrics"]["label_precision"] is None
    assert isinstance(back["metrics"]["votes"], int)
    assert back["status"] == "finished"
    assert back["group_id"] == "cmp-1"
    assert abs((_iso(back["created_at"]) - before).total_seconds()) < 60
    assert repo.timeline(doc["run_id"]) == doc["timeline"]


def test_get_run_unknown_is_none(repo):
    assert repo.get_run("nope") is None
    assert repo.timeline("nope") == []
    assert repo.runs_in_group("nope") == []


def test_save_result_keeps_given_created_at_and_status(repo):
    doc = make_doc(created_at="2024-01-02T04:04:05.123456+01:00", status="failed")
    repo.save_result(doc)
    back = repo.get_run(doc["run_id"])
    assert _iso(back["created_at"]) == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert back["status"] == "failed"


def test_nan_and_inf_are_stored_as_none(repo):
    doc = make_doc(
        metrics={"attack_success_rate": math.nan, "wall_s": math.inf, "nested": [math.nan, 1.5], "votes": 3},
        timeline=[{"tick": 0, "clean_accuracy": math.nan, "votes": 1, "labels": 0, "drift": math.nan}],
    )
    repo.save_result(doc)
    back = repo.get_run(doc["run_id"])
    assert back["metrics"] == {"attack_success_rate": None, "wall_s": None, "nested": [None, 1.5], "votes": 3}
    assert back["timeline"][0]["clean_accuracy"] is None
    assert back["timeline"][0]["drift"] is None


def test_save_result_is_atomic(repo):
    doc = make_doc()
    doc["timeline"].append(dict(doc["timeline"][0]))  # duplicate tick -> unique violation
    with pytest.raises(StorageError, match="save_result"):
        repo.save_result(doc)
    assert repo.get_run(doc["run_id"]) is None
    assert repo.list_runs() == []


def test_duplicate_run_id_raises(repo):
    doc = make_doc()
    repo.save_result(doc)
    with pytest.raises(StorageError):
        repo.start_run(doc["run_id"], doc["scenario"], "none", 1)


# --------------------------------------------------------------------------- listing


def test_list_runs_newest_first_with_limit(repo):
    ids = []
    for i in range(3):
        run_id = f"run{i}"
        repo.start_run(run_id, {"name": f"s{i}", "attack": {"strategy": "flip"}}, "reputation+quorum", i)
        ids.append(run_id)
        time.sleep(0.01)
    repo.finish_run("run1", {"clean_fpr": 0.1})

    runs = repo.list_runs()
    assert [r["run_id"] for r in runs] == ids[::-1]
    assert [r["run_id"] for r in repo.list_runs(limit=2)] == ["run2", "run1"]
    first = runs[-1]
    assert set(first) == {
        "run_id", "created_at", "name", "defense", "seed", "status", "attack_strategy", "group_id", "metrics",
    }
    assert first["name"] == "s0"
    assert first["defense"] == "reputation+quorum"
    assert first["seed"] == 0
    assert first["status"] == "running"
    assert first["attack_strategy"] == "flip"
    assert first["group_id"] is None
    assert first["metrics"] is None
    assert runs[1]["status"] == "finished"
    assert runs[1]["metrics"] == {"clean_fpr": 0.1}
    assert _iso(runs[0]["created_at"]) > _iso(runs[2]["created_at"])


def test_runs_in_group(repo):
    for i, defense in enumerate(["none", "reputation", "reputation+quorum"]):
        repo.save_result(make_doc(f"g{i}", defense=defense), group_id="cmp")
        time.sleep(0.005)
    repo.save_result(make_doc("other"))
    grouped = repo.runs_in_group("cmp")
    assert [r["run_id"] for r in grouped] == ["g0", "g1", "g2"]
    assert [r["defense"] for r in grouped] == ["none", "reputation", "reputation+quorum"]
    assert all(r["group_id"] == "cmp" for r in grouped)


# --------------------------------------------------------------------------- incremental writes


def test_add_ticks_incrementally(repo):
    doc = make_doc()
    run_id = doc["run_id"]
    repo.start_run(run_id, doc["scenario"], doc["defense"], doc["seed"], group_id="g")
    assert repo.get_run(run_id)["status"] == "running"
    assert repo.get_run(run_id)["metrics"] is None
    assert repo.timeline(run_id) == []

    repo.add_ticks(run_id, doc["timeline"][:1])
    assert repo.timeline(run_id) == doc["timeline"][:1]
    repo.add_ticks(run_id, [])  # no-op
    repo.add_ticks(run_id, doc["timeline"][2:])
    repo.add_ticks(run_id, doc["timeline"][1:2])  # out of order: still read back by tick
    assert repo.timeline(run_id) == doc["timeline"]

    with pytest.raises(StorageError):
        repo.add_ticks(run_id, doc["timeline"][:1])  # tick 0 again
    assert repo.timeline(run_id) == doc["timeline"]

    repo.finish_run(run_id, doc["metrics"])
    back = repo.get_run(run_id)
    assert back["status"] == "finished"
    for key in ("run_id", "scenario", "defense", "seed", "metrics", "timeline"):
        assert back[key] == doc[key], key


def test_missing_known_tick_keys_read_back_as_none(repo):
    repo.start_run("r", {}, "none", 0)
    repo.add_ticks("r", [{"tick": 4, "clean_accuracy": 0.5}])
    (row,) = repo.timeline("r")
    assert row["tick"] == 4 and row["clean_accuracy"] == 0.5
    assert row["votes"] is None and row["attack_success_rate"] is None


def test_unknown_per_tick_keys_land_in_extra(repo):
    repo.start_run("r", {"name": "x"}, "none", 0)
    ticks = [
        {"tick": 0, "clean_accuracy": 0.9, "votes": 1, "labels": 0, "queue_len": 4, "bots": {"flagged": [1, None]}},
        {"tick": 1, "clean_accuracy": 0.8, "votes": 2, "labels": 1},
    ]
    repo.add_ticks("r", ticks)

    with Session(repo.engine) as session:
        rows = session.scalars(select(TickMetric).where(TickMetric.run_id == "r").order_by(TickMetric.tick)).all()
        assert rows[0].extra == {"queue_len": 4, "bots": {"flagged": [1, None]}}
        assert rows[0].clean_accuracy == 0.9 and rows[0].votes == 1
        assert rows[1].extra is None

    back = repo.timeline("r")
    assert back[0]["queue_len"] == 4
    assert back[0]["bots"] == {"flagged": [1, None]}
    assert "queue_len" not in back[1]


def test_add_ticks_and_finish_unknown_run(repo):
    with pytest.raises(StorageError, match="unknown run"):
        repo.add_ticks("ghost", [{"tick": 0}])
    with pytest.raises(StorageError, match="unknown run"):
        repo.finish_run("ghost", {})


def test_tick_without_tick_and_bad_status(repo):
    repo.start_run("r", {}, "none", 0)
    with pytest.raises(ValueError, match="tick"):
        repo.add_ticks("r", [{"votes": 1}])
    with pytest.raises(ValueError, match="status"):
        repo.finish_run("r", {}, status="exploded")
    repo.finish_run("r", {"error": "boom"}, status="failed")
    assert repo.list_runs()[0]["status"] == "failed"


# --------------------------------------------------------------------------- SQLite specifics


def test_wal_mode_and_busy_timeout_for_file_sqlite(tmp_path):
    path = tmp_path / "wal.db"
    with Repository(f"sqlite:///{path}") as repo:
        with repo.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == storage.SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    raw = sqlite3.connect(path)  # WAL is persistent in the file
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_reader_sees_committed_runs_while_writer_holds_transaction(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Repository(url) as writer, Repository(url) as reader:
        writer.save_result(make_doc("done"))
        with Session(writer.engine) as session:
            session.add(Run(run_id="pending", created_at=datetime.now(timezone.utc), defense="none", seed=0,
                            status="running", scenario={}))
            session.flush()  # write transaction open, not committed
            started = time.monotonic()
            assert [r["run_id"] for r in reader.list_runs()] == ["done"]
            # A reader blocked by the writer would wait out the busy timeout (then fail); a wall-clock
            # bound below it tells "not blocked" from "slow machine" (1 s did not on a loaded one).
            assert time.monotonic() - started < storage.SQLITE_BUSY_TIMEOUT_MS / 1000
            session.rollback()


def test_in_memory_sqlite_and_schema_rejected():
    with Repository("sqlite://") as repo:
        repo.save_result(make_doc("m"))
        assert repo.get_run("m")["run_id"] == "m"
    with pytest.raises(StorageError, match="schema"):
        Repository("sqlite://", schema="x")


def test_doctests_pass():
    result = doctest.testmod(storage, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2
    assert result.failed == 0


# --------------------------------------------------------------------------- PostgreSQL specifics


def test_postgresql_tables_live_in_the_given_schema(pg_url, pg_schema):
    admin, schema = pg_schema
    with Repository(pg_url, schema=schema) as repo:
        repo.save_result(make_doc("pg"))
    tables = set(inspect(admin).get_table_names(schema=schema))
    assert {"runs", "tick_metrics"} <= tables
    with admin.connect() as conn:
        column_types = dict(
            conn.execute(
                text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = :schema AND table_name = 'tick_metrics'"
                ),
                {"schema": schema},
            ).all()
        )
    assert column_types["clean_accuracy"] == "double precision"
    assert column_types["votes"] == "integer"
    assert column_types["extra"] == "jsonb"


# --------------------------------------------------------------------------- errors


def _one_line_message(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    full = "".join(traceback.format_exception(exc_info.value))
    assert "s3cr3t" not in full
    return message


def test_unreachable_postgresql_raises_with_masked_password():
    pytest.importorskip("psycopg", reason="needs the 'psycopg' driver")
    url = "postgresql+psycopg://alice:s3cr3t@127.0.0.1:1/nodb?connect_timeout=3"
    with pytest.raises(StorageError) as exc_info:
        Repository(url)
    message = _one_line_message(exc_info)
    assert "alice:***@127.0.0.1:1/nodb" in message
    assert "cannot open results database" in message


def test_unreachable_sqlite_raises(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    with pytest.raises(StorageError) as exc_info:
        Repository(url)
    assert url in _one_line_message(exc_info)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("not a url", "not a url"),
        ("postgresql+psycopg://alice:s3cr3t@db:notaport/x", "alice:***@db"),
        ("nosuchdialect://alice:s3cr3t@db/x", "nosuchdialect://alice:***@db/x"),
    ],
)
def test_malformed_url_raises_with_masked_password(url, shown):
    with pytest.raises(StorageError) as exc_info:
        Repository(url)
    assert shown in _one_line_message(exc_info)


def test_mask_url():
    assert mask_url("postgresql+psycopg://u:pw@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert mask_url("postgresql://u:pw@h:bad/d") == "postgresql://u:***@h:bad/d"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


# --------------------------------------------------------------------------- sanitising


def test_sanitize_json():
    assert sanitize_json({"a": (1, math.nan), 2: {"b": -math.inf, "c": None, "d": True}}) == {
        "a": [1, None],
        "2": {"b": None, "c": None, "d": True},
    }
    with pytest.raises(TypeError):
        sanitize_json({"x": object()})


def test_sanitize_json_numpy_scalars():
    np = pytest.importorskip("numpy")
    out = sanitize_json({"i": np.int64(3), "f": np.float32(0.5), "n": np.float64("nan"), "b": np.bool_(True)})
    assert out == {"i": 3, "f": 0.5, "n": None, "b": True}
    assert type(out["i"]) is int and type(out["f"]) is float and type(out["b"]) is bool


# --------------------------------------------------------------------------- schema versions and upgrades


_V1_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class _V1Base(DeclarativeBase):
    """The schema exactly as PoisonLab declared it before versioning (``runs`` and ``tick_metrics``)."""


class _V1Run(_V1Base):
    __tablename__ = "runs"
    __table_args__ = (CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_runs_status"),)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    name: Mapped[str | None] = mapped_column(String)
    defense: Mapped[str] = mapped_column(String)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="running")
    attack_strategy: Mapped[str | None] = mapped_column(String)
    group_id: Mapped[str | None] = mapped_column(String(64), index=True)
    scenario: Mapped[dict[str, Any]] = mapped_column(_V1_JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(_V1_JSON)


class _V1TickMetric(_V1Base):
    __tablename__ = "tick_metrics"
    __table_args__ = (UniqueConstraint("run_id", "tick", name="uq_tick_metrics_run_tick"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), index=True)
    tick: Mapped[int] = mapped_column(Integer)
    attack_success_rate: Mapped[float | None] = mapped_column(Double)
    collateral_rate: Mapped[float | None] = mapped_column(Double)
    clean_accuracy: Mapped[float | None] = mapped_column(Double)
    clean_fpr: Mapped[float | None] = mapped_column(Double)
    clean_fnr: Mapped[float | None] = mapped_column(Double)
    label_precision: Mapped[float | None] = mapped_column(Double)
    votes: Mapped[int | None] = mapped_column(Integer)
    labels: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, Any] | None] = mapped_column(_V1_JSON)


def _v1_metadata():
    return _V1Base.metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_db(request, tmp_path):
    """``(url, schema, engine)`` of an empty database (schema-translated on PostgreSQL)."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'old.db'}", None
        engine = create_engine(url)
    else:
        url = request.getfixturevalue("pg_url")
        _, schema = request.getfixturevalue("pg_schema")
        engine = create_engine(url, execution_options={"schema_translate_map": {None: schema}})
    try:
        yield url, schema, engine
    finally:
        engine.dispose()


def _schema_shape(engine, schema):
    insp = inspect(engine)
    return {
        table: (
            sorted((c["name"], str(c["type"]).split("(")[0], c["nullable"]) for c in insp.get_columns(table, schema=schema)),
            sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table, schema=schema)),
        )
        for table in insp.get_table_names(schema=schema)
    }


def test_a_version_1_database_is_upgraded_in_place(blank_db, tmp_path):
    url, schema, engine = blank_db
    old = _v1_metadata()
    old.create_all(engine)
    with engine.begin() as conn:
        runs, ticks = old.tables["runs"], old.tables["tick_metrics"]
        conn.execute(runs.insert().values(run_id="old-run", created_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
                                          name="old", defense="none", seed=3, status="finished",
                                          scenario={"name": "old"}, metrics={"votes": 4}))
        conn.execute(ticks.insert().values(run_id="old-run", tick=0, votes=4))

    with Repository(url, schema=schema) as repo:     # upgrades
        old = repo.get_run("old-run")
        assert old["metrics"] == {"votes": 4} and old["timeline"][0]["votes"] == 4
        assert old["sweep_id"] is None
        repo.start_run("new", {}, "none", 1, sweep_id="s", cell_key="c")
        with pytest.raises(StorageError):           # the unique cell index exists after the upgrade
            repo.start_run("dup", {}, "none", 1, sweep_id="s", cell_key="c")
        repo.add_account_outcomes("old-run", [{"account_id": "a", "is_bot": False, "trust": 0.8}])
    with Repository(url, schema=schema):            # opening again changes nothing
        pass
    with engine.connect() as conn:
        versions = conn.execute(select(storage.SchemaVersion.version).order_by(storage.SchemaVersion.version)).scalars().all()
    assert versions == [2]
    upgraded = _schema_shape(engine, schema)

    # a fresh database built by the current code has exactly the same shape
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}" if schema is None else url
    fresh_schema = None if schema is None else schema + "_fresh"
    try:
        with Repository(fresh_url, schema=fresh_schema) as fresh:
            assert _schema_shape(fresh._base_engine, fresh_schema) == upgraded
    finally:
        if fresh_schema is not None:
            with engine.begin() as conn:
                conn.execute(DropSchema(fresh_schema, cascade=True, if_exists=True))


def test_a_newer_schema_is_refused(blank_db):
    url, schema, engine = blank_db
    Repository(url, schema=schema).close()
    with engine.begin() as conn:
        conn.execute(storage.SchemaVersion.__table__.insert().values(version=99, applied_at=datetime.now(timezone.utc)))
    with pytest.raises(StorageError, match="schema is version 99, newer than this PoisonLab's"):
        Repository(url, schema=schema)


#: Lock waits of the racing processes (s): see test_processes_opening_a_new_database_at_once_do_not_race.
RACE_LOCK_WAIT_S = 600


def test_processes_opening_a_new_database_at_once_do_not_race(tmp_path):
    """Processes creating the schema of one new SQLite file at once all succeed (the schema is
    created once, under BEGIN IMMEDIATE, and re-checked under the lock).

    They queue on SQLite's write lock. On a loaded machine the queue can outlast the product's
    5 s busy timeout ("database is locked": the lock was slow, no schema race), so the racing
    processes wait up to RACE_LOCK_WAIT_S instead: at connect (``?timeout=``, the journal-mode
    switch) and for the schema transaction (SQLITE_BUSY_TIMEOUT_MS in the workers only).
    test_wal_mode_and_busy_timeout_for_file_sqlite checks the product's own setting."""
    import concurrent.futures
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'race.db'}?timeout={RACE_LOCK_WAIT_S}"
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_patient_lock_waits) as pool:
        results = list(pool.map(_open_and_write, [url] * 8, range(8)))
    assert results == list(range(8))
    with Repository(url) as repo:
        assert len(repo.list_runs()) == 8


def _patient_lock_waits() -> None:
    storage.SQLITE_BUSY_TIMEOUT_MS = RACE_LOCK_WAIT_S * 1000


def _open_and_write(url: str, k: int) -> int:
    with Repository(url) as repo:
        repo.start_run(f"r{k}", {}, "none", k)
    return k


# --------------------------------------------------------------------------- sweeps


def _sweep(repo, sweep_id="sw1", grid=None, defenses=("none", "reputation"), seeds=(7, 8)):
    grid = grid if grid is not None else {"population.bot_fraction": [0.05, 0.1]}
    definition = {"grid": grid, "defenses": list(defenses), "seeds": list(seeds)}
    cells = len(defenses) * len(seeds) * math.prod(len(v) for v in grid.values())
    return repo.create_sweep(sweep_id, definition, name="demo", grid=grid, defenses=list(defenses),
                             seeds=list(seeds), cells_total=cells)


def _cell_run(repo, run_id, sweep_id, defense, seed, fraction, finish=True):
    scenario = {"name": "demo", "population": {"bot_fraction": fraction}, "attack": {"strategy": "flip"}}
    repo.start_run(run_id, scenario, defense, seed, sweep_id=sweep_id, cell_key=f"{defense}|{seed}|{fraction}")
    if finish:
        repo.finish_run(run_id, {"attack_success_rate": fraction}, ticks=[{"tick": 0, "votes": 1}],
                        outcomes=[{"account_id": f"{run_id}-a", "is_bot": True, "trust": 0.2}])


def test_sweep_lifecycle(repo):
    created = _sweep(repo)
    assert created["status"] == "pending" and created["cells_done"] == 0 and created["cells_total"] == 8
    assert _sweep(repo)["sweep_id"] == "sw1"                       # same definition: found again
    with pytest.raises(StorageError, match="another definition"):
        _sweep(repo, seeds=(1,))

    _cell_run(repo, "r-rep-8-0.1", "sw1", "reputation", 8, 0.1)
    time.sleep(0.002)
    _cell_run(repo, "r-none-7-0.1", "sw1", "none", 7, 0.1)
    time.sleep(0.002)
    _cell_run(repo, "r-none-7-0.05", "sw1", "none", 7, 0.05)
    _cell_run(repo, "r-broken", "sw1", "none", 8, 0.05, finish=False)   # interrupted cell
    repo.save_result(make_doc("unrelated"))
    with pytest.raises(StorageError):                                  # a cell holds one run
        _cell_run(repo, "r-again", "sw1", "none", 7, 0.05)

    [summary] = repo.list_sweeps()
    assert set(summary) == {"sweep_id", "created_at", "name", "grid", "defenses", "seeds", "status",
                            "cells_total", "cells_done"}
    assert summary["cells_done"] == 3 and summary["grid"] == {"population.bot_fraction": [0.05, 0.1]}
    assert summary["defenses"] == ["none", "reputation"] and summary["seeds"] == [7, 8]

    runs = repo.sweep_runs("sw1")
    assert [r["run_id"] for r in runs] == ["r-none-7-0.05", "r-broken", "r-none-7-0.1", "r-rep-8-0.1"]
    assert runs[0]["params"] == {"population.bot_fraction": 0.05}
    assert set(runs[0]) == set(repo.list_runs()[0]) | {"params"}
    assert repo.sweep_runs("nope") == []
    assert set(repo.finished_cells("sw1")) == {"none|7|0.05", "none|7|0.1", "reputation|8|0.1"}

    assert repo.reset_unfinished_cells("sw1") == 1                     # the broken cell goes, with its rows
    assert repo.get_run("r-broken") is None and repo.timeline("r-broken") == []
    assert repo.get_run("unrelated") is not None
    _cell_run(repo, "r-redo", "sw1", "none", 8, 0.05)                   # and can be run again
    assert repo.get_sweep("sw1")["cells_done"] == 4


def test_sweep_ownership_is_compare_and_set(repo):
    _sweep(repo)
    assert repo.claim_sweep("sw1", "host:1:a", None)
    assert not repo.claim_sweep("sw1", "host:2:b", None)           # already owned
    assert repo.get_sweep("sw1")["status"] == "running"
    assert repo.heartbeat_sweep("sw1", "host:1:a") and not repo.heartbeat_sweep("sw1", "host:2:b")
    assert repo.claim_sweep("sw1", "host:2:b", "host:1:a")           # taking over a presumed-dead owner
    repo.release_sweep("sw1", "host:1:a", "finished")                # the old owner no longer counts
    assert repo.get_sweep("sw1")["owner"] == "host:2:b"
    repo.release_sweep("sw1", "host:2:b", "interrupted")
    sweep = repo.get_sweep("sw1")
    assert (sweep["owner"], sweep["status"], sweep["heartbeat_at"]) == (None, "interrupted", None)
    with pytest.raises(ValueError, match="sweep status"):
        repo.release_sweep("sw1", "x", "exploded")


def test_deleting_a_run_deletes_its_outcomes_and_snapshots(repo):
    _sweep(repo)
    _cell_run(repo, "r1", "sw1", "none", 7, 0.05, finish=False)
    repo.add_account_outcomes("r1", [{"account_id": "a", "is_bot": True}])
    repo.save_model_snapshot("r1", 3, b"blob")
    assert repo.reset_unfinished_cells("sw1") == 1
    assert repo.account_outcomes("r1") == [] and repo.list_model_snapshots("r1") == []


# --------------------------------------------------------------------------- account outcomes


def test_account_outcomes_round_trip(repo):
    np = pytest.importorskip("numpy")
    repo.start_run("r", {}, "reputation", 1)
    outcomes = [{"account_id": f"acct-{i:03d}", "is_bot": np.bool_(i % 3 == 0), "trust": np.float64(i / 7),
                 "flagged_tick": None if i % 2 else np.int64(i), "first_malicious_tick": i if i % 3 == 0 else None}
                for i in range(50)]
    outcomes[5]["trust"] = math.nan
    repo.finish_run("r", {"votes": 1}, outcomes=outcomes)
    back = repo.account_outcomes("r")
    assert [o["account_id"] for o in back] == sorted(o["account_id"] for o in outcomes)
    assert back[3] == {"account_id": "acct-003", "is_bot": True, "trust": 3 / 7, "flagged_tick": None,
                       "first_malicious_tick": 3}
    assert back[4]["flagged_tick"] == 4 and back[4]["is_bot"] is False
    assert back[5]["trust"] is None
    assert repo.account_outcomes("nope") == []
    with pytest.raises(StorageError):
        repo.add_account_outcomes("r", outcomes[:1])                  # an account is stored once per run
    with pytest.raises(StorageError, match="unknown run"):
        repo.add_account_outcomes("ghost", outcomes[:1])
    with pytest.raises(ValueError, match="account_id"):
        repo.add_account_outcomes("r", [{"is_bot": True}])


def test_finish_run_is_atomic_with_outcomes(repo):
    repo.start_run("r", {}, "none", 1)
    with pytest.raises(StorageError):
        repo.finish_run("r", {"votes": 1}, ticks=[{"tick": 0}],
                        outcomes=[{"account_id": "a"}, {"account_id": "a"}])   # duplicate account
    run = repo.get_run("r")
    assert run["status"] == "running" and run["timeline"] == [] and repo.account_outcomes("r") == []


# --------------------------------------------------------------------------- model snapshots


def test_model_snapshots_are_verified_before_loading(repo):
    from stream.classifier import SpamModel

    model = SpamModel()
    model.learn(model.features("win money now"), True)
    model.learn(model.features("meeting notes"), False)
    repo.start_run("r", {}, "none", 1)
    digest = repo.save_model_snapshot("r", 5, model.snapshot())
    repo.save_model_snapshot("r", 9, b"later")
    assert [(s["tick"], s["size"]) for s in repo.list_model_snapshots("r")] == [(5, len(model.snapshot())), (9, 5)]
    assert repo.list_model_snapshots("r")[0]["sha256"] == digest
    assert repo.load_model_snapshot("r") == b"later"
    restored = repo.load_model("r", tick=5)
    assert restored.is_spam(restored.features("win now"))
    with pytest.raises(StorageError):
        repo.save_model_snapshot("r", 5, b"again")                        # one per tick
    with pytest.raises(StorageError, match="no model snapshot"):
        repo.load_model_snapshot("r", tick=6)

    with Session(repo.engine) as session, session.begin():               # corrupt the stored bytes
        row = session.scalars(select(storage.ModelSnapshot).where(storage.ModelSnapshot.tick == 5)).one()
        row.data = row.data[:-1] + bytes([row.data[-1] ^ 1])
    import pickle

    loads = pickle.loads
    calls = []
    pickle.loads = lambda data, *a, **k: calls.append(data) or loads(data, *a, **k)
    try:
        with pytest.raises(StorageError, match="fails its integrity check"):
            repo.load_model("r", tick=5)
    finally:
        pickle.loads = loads
    assert calls == []                                                    # never unpickled


# --------------------------------------------------------------------------- ids


def test_resolve_id_by_prefix(repo):
    for run_id in ("abc111", "abc222", "xyz"):
        repo.start_run(run_id, {}, "none", 1)
    _sweep(repo, sweep_id="abd999")
    assert repo.resolve_id("xy") == ("run", "xyz")
    assert repo.resolve_id("abd") == ("sweep", "abd999")
    assert repo.resolve_id("abc111") == ("run", "abc111")
    with pytest.raises(LookupError, match="ambiguous.*run abc111, run abc222"):
        repo.resolve_id("abc")
    with pytest.raises(LookupError, match="ambiguous"):
        repo.resolve_id("ab")
    with pytest.raises(LookupError, match="no run or sweep with id 'q%'"):
        repo.resolve_id("q%")
    with pytest.raises(LookupError, match="no run or sweep"):
        repo.resolve_id("a_c")                                           # LIKE wildcards are escaped
