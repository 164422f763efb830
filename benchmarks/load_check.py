"""Can the webhook benchmark's load generator drive the load it claims? (issue #11)

Runs webhooks.py's closed and open loops against a stub server of known capacity: an ASGI app
on uvicorn (uvloop, httptools, as `a2n up`) answering every request after 0.1 s, at most
`--slots` at a time, so `slots / 0.1` answers a second at most and the same whatever the
concurrency. A loop that reports much less than that at a load above it measures itself, not
the server.

    .venv/bin/python benchmarks/load_check.py [--slots 14] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from connections import free_port
from webhooks import SEEN, closed_loop, good_run, open_loop

SERVICE_SECONDS = 0.1
_slots: asyncio.Semaphore | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The stub: a JSON answer good_run accepts, SERVICE_SECONDS after the request came, with
    at most STUB_SLOTS requests served at once."""
    global _slots
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    _slots = _slots or asyncio.Semaphore(int(os.environ["STUB_SLOTS"]))
    while (await receive()).get("more_body"):
        pass
    async with _slots:
        await asyncio.sleep(SERVICE_SECONDS)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'[{"seen": true}]'})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=14, help="requests the stub serves at once")
    parser.add_argument("--rate", type=int, default=200, help="requests/s of the open loop")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    uvicorn = ["uvicorn", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    stub = subprocess.Popen(
        [sys.executable, "-m", *uvicorn, "--port", str(port), "load_check:app"],
        cwd=Path(__file__).resolve().parent,
        env={**os.environ, "STUB_SLOTS": str(args.slots)},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base, timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        capacity = args.slots / SERVICE_SECONDS
        print(f"stub server: at most {capacity:,.0f} answers/s, each after {SERVICE_SECONDS} s")
        closed = asyncio.run(closed_loop(base, "/", {}, good_run, connections=50, seconds=5))
        print(f"50 connections:          {closed.per_second:7.1f} answers/s")
        opened = asyncio.run(open_loop(base, "/", {}, SEEN, rate=args.rate, seconds=args.seconds))
        print(
            f"{args.rate} requests/s offered: {opened.per_second:7.1f} answers/s "
            f"(expected: {min(capacity, args.rate):,.0f}), p50 {opened.p(50) * 1000:,.0f} ms"
        )
    finally:
        stub.terminate()
        stub.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
