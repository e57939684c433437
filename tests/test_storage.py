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
import os
import sqlite3
import time
import traceback
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateSchema, DropSchema

from stream import storage
from stream.storage import Repository, Run, StorageError, TickMetric, mask_url, sanitize_json

PG_URL_ENV = "POISONLAB_TEST_PG_URL"
PG_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL, or skip naming what is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need the 'psycopg' package (pip install 'psycopg[binary]')")
    candidates = [os.environ[PG_URL_ENV]] if os.environ.get(PG_URL_ENV) else list(PG_CANDIDATES)
    failures = []
    for url in candidates:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
            reason = " ".join(str(getattr(exc, "orig", exc)).split())
            failures.append(f"{mask_url(url)} ({reason})")
        finally:
            engine.dispose()
    pytest.skip(f"no reachable PostgreSQL server (set ${PG_URL_ENV}); tried: {'; '.join(failures)}")


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
            assert time.monotonic() - started < 1.0
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
