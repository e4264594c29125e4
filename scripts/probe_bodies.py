"""Send huge bodies to a local server the way an attacker would, and watch its memory.

    .venv/bin/python scripts/probe_bodies.py [--mib 200] [--parallel 5]

Against a fresh `handoff serve --demo` on 127.0.0.1 it streams, in parallel, `--parallel`
bodies of `--mib` MiB each (chunked, unsigned, no authentication) to:

1. a webhook URL with an unknown id (`/api/v1/webhooks/<random>`),
2. the public conversation endpoint of the demo agent,

and prints, for each, the answers, how much of each body went out before the server answered,
and the server's resident memory before and after (the baseline is the idle server, measured
in the same run).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Run as a script, this folder is on the path; the raw HTTP client is the tests' own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from local_server import LocalServer
from tests.raw_http import streamed

CHUNK = 256 * 1024


def attack(server: LocalServer, path: str, parallel: int, mib: int) -> None:
    before = server.rss_mib()
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(
            pool.map(lambda _: streamed(server.port, path, mib << 20, CHUNK), range(parallel))
        )
    elapsed = time.perf_counter() - started
    after = server.rss_mib()
    statuses = Counter(status for status, _ in results)
    most_sent = max(sent for _, sent in results) / (1 << 20)
    print(f"{path}")
    print(f"  {parallel} x {mib} MiB bodies: answers {dict(statuses)} in {elapsed:.2f} s")
    print(f"  at most {most_sent:.1f} MiB of a body went out before the answer")
    print(f"  server memory: {before:.0f} MiB before, {after:.0f} MiB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="size of each body, MiB")
    parser.add_argument("--parallel", type=int, default=5, help="bodies sent at once")
    args = parser.parse_args()
    with LocalServer() as server:
        print(f"idle server: {server.rss_mib():.0f} MiB resident")
        attack(server, f"/api/v1/webhooks/{secrets.token_hex(16)}", args.parallel, args.mib)
        path = f"/api/v1/agents/{server.demo_agent_id}/conversations"
        attack(server, path, args.parallel, args.mib)


if __name__ == "__main__":
    main()
