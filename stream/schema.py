"""The results schema: SQLAlchemy models of every table the repository uses.

Tables
------
``runs``
    One row per run (see :class:`Run`); a run that belongs to a sweep names
    its ``sweep_id`` and ``cell_key``, and that pair is unique, so a sweep
    cell can never be stored twice.
``tick_metrics``
    One row per ``(run_id, tick)``.
``sweeps``
    One row per sweep: its definition (the hash of which is the id), grid,
    defense chains, seeds, status and the process currently running it.
``account_outcomes``
    One row per ``(run_id, account_id)``: ground truth and what the defenses
    made of the account.
``model_snapshots``
    Serialized models with their SHA-256, one per ``(run_id, tick)``.
``schema_version``
    One row per schema version applied (see :mod:`stream.migrations`).

Rows of a run in ``tick_metrics``, ``account_outcomes`` and ``model_snapshots``
are deleted with the run (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "RUN_STATUSES",
    "SWEEP_STATUSES",
    "AccountOutcome",
    "Base",
    "ModelSnapshot",
    "Run",
    "SchemaVersion",
    "Sweep",
    "TickMetric",
]

#: Allowed values of ``runs.status``.
RUN_STATUSES = ("running", "finished", "failed")

#: Allowed values of ``sweeps.status``.
SWEEP_STATUSES = ("pending", "running", "interrupted", "failed", "finished")

JSON_TYPE = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of the results schema."""


class Run(Base):
    """One simulation run (table ``runs``)."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_runs_status"),
        Index("uq_runs_sweep_cell", "sweep_id", "cell_key", unique=True),
    )

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    name: Mapped[str | None] = mapped_column(String)
    defense: Mapped[str] = mapped_column(String)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="running")
    attack_strategy: Mapped[str | None] = mapped_column(String)
    group_id: Mapped[str | None] = mapped_column(String(64), index=True)
    scenario: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON_TYPE)
    # Added in schema version 2 (no database-level foreign key: SQLite cannot add one in place).
    sweep_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cell_key: Mapped[str | None] = mapped_column(Text, nullable=True)

    ticks: Mapped[list[TickMetric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="TickMetric.tick"
    )


class TickMetric(Base):
    """The metrics of one run at one tick (table ``tick_metrics``)."""

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
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON_TYPE)

    run: Mapped[Run] = relationship(back_populates="ticks")


class Sweep(Base):
    """A grid of runs (table ``sweeps``); ``sweep_id`` is a hash of ``definition``."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'interrupted', 'failed', 'finished')", name="ck_sweeps_status"
        ),
    )

    sweep_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str | None] = mapped_column(String)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    grid: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    defenses: Mapped[list[str]] = mapped_column(JSON_TYPE)
    seeds: Mapped[list[int]] = mapped_column(JSON_TYPE)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    cells_total: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AccountOutcome(Base):
    """What became of one account in one run (table ``account_outcomes``)."""

    __tablename__ = "account_outcomes"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    is_bot: Mapped[bool] = mapped_column(Boolean)
    trust: Mapped[float | None] = mapped_column(Double, nullable=True)
    flagged_tick: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_malicious_tick: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ModelSnapshot(Base):
    """A serialized model with its SHA-256 (table ``model_snapshots``)."""

    __tablename__ = "model_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "tick", name="uq_model_snapshots_run_tick"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), index=True)
    tick: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SchemaVersion(Base):
    """One row per applied schema version (table ``schema_version``)."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
