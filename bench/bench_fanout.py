"""Fan-out: 54 providers (copies of the openrouter spec, pointed at a local server on 127.0.0.1 that answers
after 250 ms) fetched concurrently, vs fetching one of them, in the same run.

    .venv/bin/python bench/bench_fanout.py [--providers 54] [--delay 0.25] [--runs 5]

Target: total <= 1.5x the single fetch (not 54 x 250 ms).
"""
from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import yaml  # noqa: E402

from engine.context import RunContext, _ProxyTransport  # noqa: E402
from engine.functions import iso  # noqa: E402
from engine.load import SPECS_DIR, load_spec  # noqa: E402
from engine.runner import fetch_many  # noqa: E402

DELAY = 0.25


class Slow(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(DELAY)
        body = json.dumps({"data": {"total_credits": 100, "total_usage": 25, "limit": 20, "usage": 5}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(delay: float, ready: "multiprocessing.Queue[int]") -> None:
    global DELAY
    DELAY = delay
    http.server.ThreadingHTTPServer.request_queue_size = 512  # listen backlog: 54 simultaneous connects
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    ready.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--providers", type=int, default=54)
    parser.add_argument("--delay", type=float, default=0.25)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # The slow server runs in its own process, so that it does not compete with the engine for the GIL.
    ready: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.delay, ready), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ready.get(timeout=10)}/api/v1"
    data = yaml.safe_load((SPECS_DIR / "openrouter.yaml").read_text())
    data["inputs"]["base_url"]["policy"] = "https-or-loopback"  # a test copy may talk to loopback
    env = {"OPENROUTER_API_KEY": "sk-or-v1-bench", "OPENROUTER_API_URL": url}
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for i in range(args.providers):
            path = Path(tmp) / f"bench{i}.yaml"
            path.write_text(yaml.safe_dump({**data, "id": f"bench{i}"}, sort_keys=False))
            specs.append(load_spec(path))

        ssl_ctx = httpx.create_ssl_context()

        def ctx() -> RunContext:  # what RunContext.live() builds, minus the real environment
            return RunContext(env=env, home=Path(tmp), clock=lambda: iso("2026-07-01T12:00:00Z"), tz=timezone.utc,
                              transport=_ProxyTransport({}, ssl_ctx),
                              make_transport=lambda: _ProxyTransport({}, ssl_ctx))

        def timed(selection: list) -> float:
            started = time.perf_counter()
            outcomes = asyncio.run(fetch_many(selection, ctx()))
            elapsed = time.perf_counter() - started
            bad = [o.error for o in outcomes if o.error]
            assert not bad, bad[:1]
            return elapsed

        timed(specs[:1])
        singles, fans = [], []
        for _ in range(args.runs):
            singles.append(timed(specs[:1]))
            fans.append(timed(specs))
    server.terminate()
    one, all_ = statistics.median(singles), statistics.median(fans)
    sequential = args.providers * 2 * args.delay
    print(f"one provider (2 requests x {args.delay * 1000:.0f} ms): median {one * 1000:.0f} ms")
    print(f"{args.providers} providers concurrently: median {all_ * 1000:.0f} ms "
          f"(sequential would be ~{sequential:.1f} s)")
    ratio = all_ / one
    print(f"ratio {ratio:.2f}x; target <= 1.5x: {'PASS' if ratio <= 1.5 else 'FAIL'}")


if __name__ == "__main__":
    main()
