"""A throw-away `handoff serve --demo` on 127.0.0.1, for the probe scripts beside this file.

    with LocalServer(env={"HANDOFF_...": "..."}) as server:
        httpx.get(f"{server.url}/healthz")

Each server gets a fresh data folder (SQLite unless HANDOFF_DATABASE_URL is given) and is
stopped on exit. Nothing listens or connects beyond loopback.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """Start the demo service on a free loopback port; `url`, `admin_token`, `demo` once up."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="handoff-probe-")
        self.data_dir = Path(self._folder.name) / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = f"hk_probe_{secrets.token_urlsafe(16)}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        self.env |= {
            "HANDOFF_DATA_DIR": str(self.data_dir),
            "HANDOFF_HOST": "127.0.0.1",
            "HANDOFF_PORT": str(self.port),
            "HANDOFF_ADMIN_TOKEN": self.admin_token,
            "HANDOFF_LOG_LEVEL": "warning",
            "HANDOFF_WORKER_POLL_SECONDS": "0.2",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **(env or {}),
        }
        self.log_path = Path(self._folder.name) / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.demo: dict[str, Any] = {}

    def __enter__(self) -> LocalServer:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "serve", "--demo"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_up()
        self.demo = json.loads((self.data_dir / "demo-login.json").read_text())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._folder.cleanup()

    @property
    def demo_agent_id(self) -> str:
        return str(self.demo["agent_id"])

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=60
        )

    def rss_mib(self) -> float:
        """The server process's resident memory, in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+)", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def _wait_until_up(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit("the server did not start within 120 s")
