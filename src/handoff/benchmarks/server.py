"""A `handoff serve --demo` process on 127.0.0.1 for the benchmarks that talk HTTP to it.

It runs on a free port with a throw-away database (SQLite in the given directory, or an empty
one given by URL) and the environment the benchmark adds (its rate limits, above all).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from handoff.settings import Settings


@dataclass(frozen=True, slots=True)
class BenchServer:
    url: str
    port: int
    agent_id: str  # the demo agent's
    process: asyncio.subprocess.Process

    def rss(self) -> int:
        """The server's resident memory in bytes (Linux: /proc)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(row for row in status.splitlines() if row.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024


@asynccontextmanager
async def demo_server(
    data_dir: Path,
    *,
    database_url: str | None,
    timeout_seconds: float,
    environment: Mapping[str, str],
) -> AsyncIterator[BenchServer]:
    """Run `handoff serve --demo` on 127.0.0.1 until the block ends."""
    port = free_port()
    url = database_url or f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    env = {
        **os.environ,
        **environment,
        "HANDOFF_DATABASE_URL": url,
        "HANDOFF_DATA_DIR": str(data_dir),
        "HANDOFF_HOST": "127.0.0.1",
        "HANDOFF_PORT": str(port),
        "HANDOFF_ADMIN_TOKEN": f"hk_bench_{secrets.token_urlsafe(16)}",
        "HANDOFF_SECRET_KEY": secrets.token_urlsafe(32),
        "HANDOFF_LOG_LEVEL": "warning",
    }
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "handoff.cli.main", "serve", "--demo"),
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_until_up(base, process, log_path, timeout_seconds)
        login = json.loads(await asyncio.to_thread((data_dir / "demo-login.json").read_text))
        yield BenchServer(base, port, login["agent_id"], process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


def rate_limits(value: str) -> dict[str, str]:
    """Every public rate limit set to `value` ("" for none), as environment variables.

    All of a benchmark's requests come from 127.0.0.1, into a handful of conversations: the
    per-address and per-conversation limits would otherwise be what is measured."""
    return {
        f"HANDOFF_{name.upper()}": value
        for name in Settings.model_fields
        if name.startswith("rate_limit_")
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_until_up(
    url: str, process: asyncio.subprocess.Process, log_path: Path, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                log = await asyncio.to_thread(log_path.read_text)
                raise RuntimeError(f"the server stopped:\n{log[-2000:]}")
            with suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise TimeoutError(f"the server did not answer in {seconds:g} s")
