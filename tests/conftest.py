"""Shared fixtures: real `handoff serve` processes on SQLite and PostgreSQL, fresh databases."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from handoff.decide import Encoder, get_encoder
from handoff.domain import ActionConfig, Channel, Message, Role
from handoff.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

POSTGRES_URL = os.environ.get("HANDOFF_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if os.environ.get("CI"):
        pytest.fail("HANDOFF_TEST_POSTGRES_URL is not set; run the suite with `make test`")
    pytest.skip("PostgreSQL tests need HANDOFF_TEST_POSTGRES_URL (`make test` sets it)")


async def _create_database(base_url: str, name: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    plain = base_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(plain)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def fresh_database_url(backend: str, tmp_path: Path, postgres: str | None = None) -> str:
    """Return the URL of a new, empty database on the given backend (on PostgreSQL, on the
    test server or the one at the URL `postgres`)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / f'test-{secrets.token_hex(4)}.db'}"
    base = postgres or require_postgres()
    return asyncio.run(_create_database(base, f"handoff_{secrets.token_hex(6)}"))


@dataclass
class Server:
    """A running `handoff serve --demo` and what a test needs to talk to it."""

    backend: str
    url: str
    database_url: str
    admin_token: str
    demo_agent_id: str
    member_email: str
    member_password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)


# Every test talks from 127.0.0.1 to servers shared by many tests: their rate limits are
# far out of reach, except where a test sets its own (tests/web/test_rate_limits.py).
UNREACHABLE_RATE_LIMITS = {
    f"HANDOFF_{name.upper()}": "100000/minute"
    for name in Settings.model_fields
    if name.startswith("rate_limit_")
}


def start_server(
    backend: str,
    tmp: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    postgres: str | None = None,
) -> Server:
    """Start `handoff serve --demo` on a fresh database; `env` adds settings. On PostgreSQL
    the database is made on the test server, or on the one at the URL `postgres`."""
    data_dir = tmp / "data"
    port = free_port()
    admin_token = f"hk_test_{secrets.token_urlsafe(16)}"
    environment = {
        **os.environ,
        # The fake helpdesks listen on 127.0.0.1; a test of the address guard passes "false".
        "HANDOFF_ALLOW_PRIVATE_URLS": "true",
        **UNREACHABLE_RATE_LIMITS,
        **(env or {}),
        "HANDOFF_DATA_DIR": str(data_dir),
        "HANDOFF_PORT": str(port),
        "HANDOFF_HOST": "127.0.0.1",
        "HANDOFF_ADMIN_TOKEN": admin_token,
        "HANDOFF_SECRET_KEY": secrets.token_urlsafe(32),
        "HANDOFF_WORKER_POLL_SECONDS": "0.2",
        "HANDOFF_EVENT_POLL_SECONDS": "0.2",
    }
    database_url = (
        fresh_database_url("postgres", tmp, postgres)
        if backend == "postgres"
        else f"sqlite+aiosqlite:///{data_dir / 'handoff.db'}"
    )
    environment["HANDOFF_DATABASE_URL"] = database_url
    return launch_server(backend, environment, tmp / "server.log", *extra_args)


def start_beside(server: Server, log_path: Path, *extra_args: str) -> Server:
    """Start another `handoff serve` on `server`'s database and settings, on its own port."""
    environment = {**server.env, "HANDOFF_PORT": str(free_port())}
    return launch_server(server.backend, environment, log_path, *extra_args)


def launch_server(
    backend: str, environment: dict[str, str], log_path: Path, *extra_args: str
) -> Server:
    """Run `handoff serve --demo` with `environment` and wait until it answers."""
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "handoff.cli.main", "serve", "--demo", *extra_args],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{environment['HANDOFF_PORT']}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
    login = json.loads((Path(environment["HANDOFF_DATA_DIR"]) / "demo-login.json").read_text())
    return Server(
        backend=backend,
        url=url,
        database_url=environment["HANDOFF_DATABASE_URL"],
        admin_token=environment["HANDOFF_ADMIN_TOKEN"],
        demo_agent_id=login["agent_id"],
        member_email=login["email"],
        member_password=login["password"],
        process=process,
        log_path=log_path,
        env=environment,
    )


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Start servers lazily, one per backend, and stop them at the end of the session."""
    started: dict[str, Server] = {}

    class Lazy(dict[str, Server]):
        def __missing__(self, backend: str) -> Server:
            if backend == "postgres":
                require_postgres()
            started[backend] = start_server(backend, tmp_path_factory.mktemp(backend))
            self[backend] = started[backend]
            return started[backend]

    yield Lazy()
    for server in started.values():
        stop_server(server)


@pytest.fixture(scope="session")
def server(servers: dict[str, Server]) -> Server:
    """The SQLite server (browser tests use this one)."""
    return servers["sqlite"]


@pytest.fixture(params=BACKENDS)
def any_server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    """Each HTTP test runs once per database backend."""
    return servers[request.param]


# --- the language-model side: one encoder per session (loading it takes seconds) ---------

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return get_encoder()


@pytest.fixture
def action() -> ActionConfig:
    return ActionConfig(
        name="Escalate_To_Human",
        platform="native",
        when_to_use="Escalate when the user asks for a person or the AI cannot help.",
        channels=frozenset({Channel.WIDGET}),
    )


def convo(*turns: tuple[str, str] | tuple[str, str, float]) -> list[Message]:
    """Build a transcript from (role, text[, confidence]) tuples."""
    out: list[Message] = []
    for turn in turns:
        role, text = Role(turn[0]), turn[1]
        confidence = turn[2] if len(turn) == 3 else None
        out.append(Message(role=role, text=text, created_at=T0, confidence=confidence))
    return out


@pytest.fixture
def make_convo() -> Callable[..., list[Message]]:
    return convo
