"""Pieces of the defense service without a broker: id factorization, the state store's bulk paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.service import factorize, votes_array
from stream.service_state import _CHUNK, Batch, ServiceStore


@given(st.lists(st.binary(min_size=0, max_size=20), max_size=60), st.integers(1, 24))
def test_factorize_agrees_with_np_unique(values, width) -> None:
    values = np.array([v[:width] for v in values], dtype=f"S{width}")
    uniques, first, inverse = factorize(values)
    expected, expected_first, _ = np.unique(values, return_index=True, return_inverse=True)
    assert sorted(uniques.tolist()) == expected.tolist()
    assert (uniques[inverse] == values).all()
    order = np.argsort(uniques)   # same first occurrences, whatever the order of the uniques
    assert first[order].tolist() == expected_first.tolist()


def test_factorize_survives_a_hash_collision() -> None:
    # Two different 16-byte strings whose 64-bit polynomial hashes collide: the check falls back.
    from stream.service import _HASH_MULTIPLIER

    a = np.frombuffer(np.array([1, 2], dtype="<u8").tobytes(), dtype="S16")
    # b = (1 + 1) * M + (2 - M) == 1 * M + 2  (mod 2**64)
    m = int(_HASH_MULTIPLIER)
    b = np.frombuffer(np.array([2, (2 - m) % 2**64], dtype="<u8").tobytes(), dtype="S16")
    values = np.concatenate([a, b, a])
    uniques, first, inverse = factorize(values)
    assert len(uniques) == 2 and (uniques[inverse] == values).all() and sorted(first.tolist()) == [0, 1]


def test_votes_array_keeps_widths_and_batch_flags() -> None:
    v = votes_array(np.array([b"acc-1", b"a"]), [b"m", b"mail-22"], [1, 0], [0.5, 1.5], [np.nan, 2.0], batched=True)
    assert v.dtype["account"].itemsize == 5 and v.dtype["email"].itemsize == 7
    assert v["batched"].all() and v["email"].tolist() == [b"m", b"mail-22"]


def _exercise_store(url: str) -> None:
    """Bulk commit and chunked lookups of more keys than one query takes."""
    store = ServiceStore(url, "units")
    other = ServiceStore(url, "other")   # same tables, another namespace: never seen here
    try:
        n = 2 * _CHUNK + 7
        claim = store.claim("feedback", [0, 1], topic_id="t1")
        other.claim("feedback", [0], topic_id="t1")
        deltas = [(f"acc-{i}", f, float(i % 3)) for i in range(n) for f in ("0.rep.alpha", "0.rep.beta")]
        labels = [(f"m{i}@w0:p0", f"m{i}", 0, "spam", 1.0, 0.5, 3, "rep", 3600.0) for i in range(n)]
        store.commit(Batch(offsets={p: (5, 1.5, 0, c.epoch) for p, c in claim.items()},
                           seen=[(f"e:{i}", 1.0) for i in range(n)], deltas=deltas, labels=labels,
                           outbox=[("deadletter", "k", {"v": 1, "reason": "bad", "record": "é"})],
                           outbox_batches=[("labels", "w0", b"\x93NUMPY...")]))
        other.commit(Batch(deltas=[("acc-1", "0.rep.alpha", 100.0)], seen=[("e:x", 1.0)]))
        store.commit(Batch(deltas=[("acc-1", "0.rep.alpha", 2.0)]))   # added to what is stored
        state = store.account_state([f"acc-{i}" for i in range(n)] + ["nobody"], ["0.rep.alpha"])
        expected = [float(i % 3) for i in range(n)] + [0.0]
        expected[1] += 2.0
        assert state["0.rep.alpha"].tolist() == expected
        assert state["0.rep.beta"][:n].tolist() == [float(i % 3) for i in range(n)]
        asked = [f"e:{i}" for i in range(0, n + 50, 2)] + ["e:x"]
        assert store.seen(asked) == {f"e:{i}" for i in range(0, n, 2)}
        assert len(store.labels()) == n and store.labels()["m7@w0:p0"]["weight"] == 1.0
        assert store.offsets("feedback") == {0: 5, 1: 5}
        (row,) = store.unpublished()
        assert row[1:] == ("deadletter", "k", '{"v":1,"reason":"bad","record":"é"}')
        (blob,) = store.unpublished_batches()
        assert blob[1:] == ("labels", "w0", b"\x93NUMPY...")
        assert store.has_unpublished()
        store.mark_published([row[0]])
        store.mark_published([blob[0]], batches=True)
        assert not store.has_unpublished()
        assert store.republish(["labels", "deadletter"]) == 2 and store.has_unpublished()
    finally:
        store.close()
        other.close()


def test_store_bulk_paths_on_sqlite(tmp_path) -> None:
    _exercise_store(f"sqlite:///{tmp_path / 'units.db'}")


def test_store_bulk_paths_on_postgresql(pg_url) -> None:
    from tests.test_service import _drop_schema, _pg_schema_url

    schema, url = _pg_schema_url(pg_url)
    try:
        _exercise_store(url)
    finally:
        _drop_schema(pg_url, schema)


def test_commit_is_fenced_and_atomic(tmp_path) -> None:
    from stream.service_state import FencedError

    url = f"sqlite:///{tmp_path / 'fence.db'}"
    a, b = ServiceStore(url, "g"), ServiceStore(url, "g")
    try:
        old = a.claim("feedback", [0], topic_id="t")[0]
        b.claim("feedback", [0], topic_id="t")          # another instance took the partition over
        with pytest.raises(FencedError):
            a.commit(Batch(offsets={0: (9, 1.0, 0, old.epoch)}, deltas=[("acc", "f", 1.0)],
                           labels=[("m@w0:p0", "m", 0, "spam", 1.0, 1.0, 1, "rep", 1.0)]))
        assert a.account_state(["acc"], ["f"])["f"].tolist() == [0.0] and a.labels() == {}
        assert a.offsets("feedback") == {0: 0}
    finally:
        a.close()
        b.close()


def _open_together(url: str, n: int = 6) -> list[Exception]:
    import threading

    errors: list[Exception] = []

    def open_store() -> None:
        try:
            ServiceStore(url, "together").close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_instances_starting_together_create_the_tables_once(tmp_path, pg_url) -> None:
    from tests.test_service import _drop_schema, _pg_schema_url

    assert _open_together(f"sqlite:///{tmp_path / 'together.db'}") == []
    schema, url = _pg_schema_url(pg_url)
    try:
        assert _open_together(url) == []   # unlocked CREATE TABLEs race on PostgreSQL's catalog
    finally:
        _drop_schema(pg_url, schema)
