"""What a run leaves behind besides metrics: per-account outcomes and model snapshots.

:class:`ArtifactRecords` is a part of :class:`stream.storage.Repository` (a
mixin: it uses the repository's sessions and error handling).

Model snapshots are stored with their SHA-256 and size, and
:meth:`ArtifactRecords.load_model_snapshot` refuses a blob whose digest does
not match, so a truncated or corrupted blob is never handed to ``pickle``. The
digest protects against accidental damage, not against someone who can write
to the database (they could rewrite the digest too): load snapshots only from
databases you trust.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from stream.dbutil import StorageError, aware, clean_float, clean_int
from stream.schema import AccountOutcome, ModelSnapshot, Run

if TYPE_CHECKING:
    from stream.classifier import SpamModel

__all__ = ["OUTCOME_KEYS", "ArtifactRecords"]

#: Keys of one account outcome, as stored and as read back.
OUTCOME_KEYS = ("account_id", "is_bot", "trust", "flagged_tick", "first_malicious_tick")


def _outcome_row(run_id: str, outcome: Mapping[str, Any]) -> dict[str, Any]:
    account = outcome.get("account_id")
    if account is None or str(account) == "":
        raise ValueError(f"account outcome without an account_id: {dict(outcome)!r}")
    return {
        "run_id": run_id,
        "account_id": str(account),
        "is_bot": bool(outcome.get("is_bot", False)),
        "trust": clean_float(outcome.get("trust")),
        "flagged_tick": clean_int(outcome.get("flagged_tick")),
        "first_malicious_tick": clean_int(outcome.get("first_malicious_tick")),
    }


class ArtifactRecords:
    """Per-account outcomes and model snapshots of runs (mixed into the repository).

    Examples
    --------
    >>> from stream.storage import Repository
    >>> repo = Repository("sqlite://")
    >>> repo.start_run("r", {}, "reputation", 1)
    >>> repo.add_account_outcomes("r", [{"account_id": "b", "is_bot": True, "trust": 0.1},
    ...                                 {"account_id": "a", "is_bot": False, "trust": 0.9}])
    >>> [(o["account_id"], o["is_bot"], o["flagged_tick"]) for o in repo.account_outcomes("r")]
    [('a', False, None), ('b', True, None)]
    >>> digest = repo.save_model_snapshot("r", 10, b"model bytes")
    >>> repo.load_model_snapshot("r") == b"model bytes", digest == repo.list_model_snapshots("r")[0]["sha256"]
    (True, True)
    >>> repo.close()
    """

    # -- account outcomes ---------------------------------------------------------------

    @staticmethod
    def _outcome_rows(run_id: str, outcomes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [_outcome_row(run_id, outcome) for outcome in outcomes]

    @staticmethod
    def _insert_outcomes(session: Session, rows: list[dict[str, Any]]) -> None:
        if rows:
            session.execute(insert(AccountOutcome), rows)

    def add_account_outcomes(self, run_id: str, outcomes: Iterable[Mapping[str, Any]]) -> None:
        """Store what became of each account in a run.

        Parameters
        ----------
        run_id : str
            An existing run.
        outcomes : iterable of dict
            One dict per account: ``account_id`` (required), ``is_bot``,
            ``trust`` (``None`` when the chain keeps no reputation),
            ``flagged_tick`` and ``first_malicious_tick`` (``None`` when it
            never happened). Other keys are ignored.

        Raises
        ------
        ValueError
            If an outcome has no ``account_id``.
        StorageError
            If the run is unknown, an account is stored twice, or the database fails.
        """
        rows = self._outcome_rows(str(run_id), outcomes)
        if not rows:
            return
        with self._transaction(f"add_account_outcomes({run_id!r})") as session:
            if session.get(Run, str(run_id)) is None:
                raise StorageError(f"unknown run {run_id!r}")
            self._insert_outcomes(session, rows)

    def account_outcomes(self, run_id: str) -> list[dict[str, Any]]:
        """The per-account outcomes of a run, ordered by account id.

        Parameters
        ----------
        run_id : str
            The run.

        Returns
        -------
        list of dict
            Keys :data:`OUTCOME_KEYS`; empty for an unknown run or one stored
            without outcomes.
        """
        columns = [getattr(AccountOutcome, key) for key in OUTCOME_KEYS]
        query = select(*columns).where(AccountOutcome.run_id == str(run_id)).order_by(AccountOutcome.account_id)
        with self._reading(f"account_outcomes({run_id!r})") as session:
            return [dict(zip(OUTCOME_KEYS, row)) for row in session.execute(query)]

    # -- model snapshots ----------------------------------------------------------------

    def save_model_snapshot(self, run_id: str, tick: int, data: bytes) -> str:
        """Store a serialized model of a run at a tick.

        Parameters
        ----------
        run_id : str
            An existing run.
        tick : int
            The tick the model is from (one snapshot per run and tick).
        data : bytes
            The serialized model (e.g. :meth:`stream.classifier.SpamModel.snapshot`).

        Returns
        -------
        str
            The SHA-256 of `data` (hex).

        Raises
        ------
        StorageError
            If the run is unknown, it already has a snapshot at `tick`, or the
            database fails.
        """
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        with self._transaction(f"save_model_snapshot({run_id!r}, {tick!r})") as session:
            if session.get(Run, str(run_id)) is None:
                raise StorageError(f"unknown run {run_id!r}")
            session.add(ModelSnapshot(run_id=str(run_id), tick=int(tick), created_at=datetime.now(timezone.utc),
                                      sha256=digest, size=len(data), data=data))
        return digest

    def list_model_snapshots(self, run_id: str) -> list[dict[str, Any]]:
        """The snapshots of a run (without their bytes), ordered by tick.

        Returns
        -------
        list of dict
            ``tick``, ``sha256``, ``size`` and ``created_at`` (ISO 8601).
        """
        query = (select(ModelSnapshot.tick, ModelSnapshot.sha256, ModelSnapshot.size, ModelSnapshot.created_at)
                 .where(ModelSnapshot.run_id == str(run_id)).order_by(ModelSnapshot.tick))
        with self._reading(f"list_model_snapshots({run_id!r})") as session:
            return [{"tick": t, "sha256": s, "size": n, "created_at": aware(c).isoformat()}
                    for t, s, n, c in session.execute(query)]

    def load_model_snapshot(self, run_id: str, tick: int | None = None) -> bytes:
        """The bytes of a snapshot, after checking them against their stored SHA-256.

        Parameters
        ----------
        run_id : str
            The run.
        tick : int or None, default None
            The snapshot's tick; ``None`` for the latest.

        Returns
        -------
        bytes
            The verified bytes.

        Raises
        ------
        StorageError
            If there is no such snapshot, or its bytes do not match the stored
            size and SHA-256 (nothing is returned then).
        """
        query = select(ModelSnapshot).where(ModelSnapshot.run_id == str(run_id))
        query = query.order_by(ModelSnapshot.tick.desc()) if tick is None else query.where(
            ModelSnapshot.tick == int(tick))
        with self._reading(f"load_model_snapshot({run_id!r})") as session:
            row = session.scalars(query.limit(1)).first()
            if row is None:
                where = "" if tick is None else f" at tick {tick}"
                raise StorageError(f"run {run_id!r} has no model snapshot{where}")
            data = bytes(row.data)
            expected, size, at = row.sha256, row.size, row.tick
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected or len(data) != size:
            raise StorageError(
                f"model snapshot of run {run_id!r} at tick {at} fails its integrity check "
                f"(SHA-256 {actual[:12]}..., expected {expected[:12]}...); refusing to load it"
            )
        return data

    def load_model(self, run_id: str, tick: int | None = None) -> SpamModel:
        """A :class:`~stream.classifier.SpamModel` restored from a verified snapshot.

        The blob is unpickled only after :meth:`load_model_snapshot` has
        checked it against its SHA-256.
        """
        from stream.classifier import SpamModel

        data = self.load_model_snapshot(run_id, tick)  # raises before any unpickling
        model = SpamModel()
        model.restore(data)
        model.alpha = model.nb.alpha
        return model
