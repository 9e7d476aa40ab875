"""Latency and throughput of one rate-limit decision, beside a plain Redis PING.

    .venv/bin/python -m bench.ratelimit [--redis-url redis://127.0.0.1:6379/15] [--calls 5000] [--repeats 5]

One decision = RateLimiter.check_prediction (the Lua token bucket over the session AND
the user bucket, one EVALSHA round trip). Each repeat measures, interleaved, PING and the
decision from 1 thread, then both from 8 threads; figures are medians over repeats.
The embedded backend (fakeredis, same Lua) is measured too, for reference.
Target: decision p99 < 1 ms from one thread and within 3x of PING. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from core.config import load_settings
from core.ratelimit import RateLimiter


def _settings(redis_url: str | None):
    root = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    env = {"APP_ENV": "test", "DATA_DIR": str(root), "RATE_LIMIT_DEFAULT": "100000", "RATE_LIMIT_LOGIN": "1000"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return load_settings(env)


def _measure(fn: Callable[[int], None], calls: int, threads: int) -> dict[str, float]:
    """Per-call latencies (ms) over all threads and total calls per second."""
    per_thread = calls // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        out = latencies[index]
        barrier.wait()
        for _ in range(per_thread):
            start = time.perf_counter_ns()
            fn(index)
            out.append((time.perf_counter_ns() - start) / 1e6)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    wall = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - wall
    merged = sorted(x for chunk in latencies for x in chunk)
    return {
        "p50_ms": merged[len(merged) // 2],
        "p99_ms": merged[min(len(merged) - 1, int(len(merged) * 0.99))],
        "per_s": len(merged) / wall,
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ratelimit", description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    p.add_argument("--calls", type=int, default=5000, help="calls per measurement (split over threads)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    redis_limiter = RateLimiter(_settings(args.redis_url), key_prefix=prefix)
    if redis_limiter.status().backend != "redis" or redis_limiter.status().degraded:
        print(f"Redis at {args.redis_url} is not reachable: {redis_limiter.status().detail}", file=sys.stderr)
        return 2
    embedded_limiter = RateLimiter(_settings(None), key_prefix=prefix)
    client = redis_limiter._redis.client  # same connection pool as the decisions

    def ping(_: int) -> None:
        client.ping()

    def decide(index: int) -> None:
        if not redis_limiter.check_prediction("default", f"session-{index}", f"user-{index}").allowed:
            raise RuntimeError("bench bucket ran dry: raise RATE_LIMIT_DEFAULT")

    def decide_embedded(index: int) -> None:
        embedded_limiter.check_prediction("default", f"session-{index}", f"user-{index}")

    # warm up: connections, script load, imports
    for _ in range(200):
        ping(0)
        decide(0)
        decide_embedded(0)

    cases = {
        "ping_1t": (ping, 1),
        "decision_1t": (decide, 1),
        "ping_8t": (ping, 8),
        "decision_8t": (decide, 8),
        "embedded_1t": (decide_embedded, 1),
        "embedded_8t": (decide_embedded, 8),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (fn, threads) in cases.items():
            runs[name].append(_measure(fn, args.calls, threads))
    result = {name: _median(r) for name, r in runs.items()}
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)

    print(f"rate-limit decision vs PING, {args.calls} calls x {args.repeats} repeats, medians ({args.redis_url})")
    print(f"{'case':<14}{'p50 ms':>10}{'p99 ms':>10}{'per s':>12}")
    for name, r in result.items():
        print(f"{name:<14}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{r['per_s']:>12.0f}")
    one, ping_one = result["decision_1t"], result["ping_1t"]
    ratio_p50 = one["p50_ms"] / ping_one["p50_ms"]
    ratio_p99 = one["p99_ms"] / ping_one["p99_ms"]
    passed = one["p99_ms"] < 1.0 and ratio_p99 <= 3.0 and ratio_p50 <= 3.0
    print(f"decision/PING single-thread: p50 x{ratio_p50:.2f}, p99 x{ratio_p99:.2f}; target p99 < 1 ms and <= 3x PING: {'met' if passed else 'NOT met'}")
    summary = {
        "bench": "ratelimit",
        "calls": args.calls,
        "repeats": args.repeats,
        **{f"{name}_{k}": v for name, r in result.items() for k, v in r.items()},
        "ratio_p50_1t": round(ratio_p50, 3),
        "ratio_p99_1t": round(ratio_p99, 3),
        "target_met": passed,
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
