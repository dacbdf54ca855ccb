"""Decisions per second of one instance with each state backend: memory, SQLite, Redis, Cluster.

The same synthetic traffic as ``bench engine`` goes through ``Warden.decide_async`` — the path an
async door takes — with ``concurrency`` requests in flight at once, as a server has. With a Redis
state URL the per-actor counters are shared (one Lua call per actor, the actors of a request
concurrently), so the report also gives the calls to Redis per decision. The redis-server and
the three-node Cluster are started here on loopback and stopped at the end; every run is bounded
by ``requests``.

``shares`` (``--record-allowed-shares 0,0.05``): each backend is run once more per share of
``[privacy] record_allowed_share`` (addresses whose allowed requests are recorded too), in the
same run, so the cost of recording them is read against a baseline measured minutes apart.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from ..core.facts import RequestFacts
from ..core.policy import Policy
from .engine_bench import BENCH_POLICY, synthetic_requests
from .redis_servers import RedisCluster, RedisMissing, RedisServer


async def _drive(warden: Any, facts: list[RequestFacts], concurrency: int) -> tuple[float, list[float]]:
    """Decide every request, ``concurrency`` at a time (in time order within each lane)."""
    latencies: list[float] = []
    lanes = [facts[i::concurrency] for i in range(concurrency)]

    async def lane(items: list[RequestFacts]) -> None:
        for f in items:
            started = time.perf_counter()
            await warden.decide_async(f)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(lane(items) for items in lanes))
    return time.perf_counter() - started, latencies


def _policy(share: float | None) -> Policy:
    if share is None:
        return BENCH_POLICY
    privacy = BENCH_POLICY.privacy.model_copy(update={"record_allowed_share": share})
    return BENCH_POLICY.model_copy(update={"privacy": privacy})


def _one(
    state: str, facts: list[RequestFacts], concurrency: int, share: float | None = None
) -> dict[str, Any]:
    from ..warden import Warden

    async def run() -> dict[str, Any]:
        warden = Warden(_policy(share), state=state)
        counters = warden.counters
        try:
            # Warm-up (connections, script loading), not timed.
            await _drive(warden, facts[:200], min(concurrency, 20))
            calls_before = counters.calls if counters else 0
            failures_before = (counters.failures + counters.skipped) if counters else 0
            elapsed, latencies = await _drive(warden, facts, concurrency)
        finally:
            if counters is not None:
                await counters.client.aclose()
            warden.close()
        latencies.sort()
        n = len(latencies)
        return {
            "decisions_per_s": round(n / elapsed),
            "p50_ms": round(latencies[n // 2] * 1000, 3),
            "p99_ms": round(latencies[int(n * 0.99)] * 1000, 3),
            "redis_calls_per_decision": round(((counters.calls - calls_before) / n) if counters else 0.0, 2),
            # Requests counted locally: Redis missed the deadline, or had just missed it.
            "fell_back_to_local": (counters.failures + counters.skipped - failures_before) if counters else 0,
        }

    return asyncio.run(run())


def run(
    requests: int = 20_000,
    actors: int = 5_000,
    concurrency: int = 32,
    seed: int = 1,
    shares: tuple[float, ...] = (),
) -> dict[str, Any]:
    facts = synthetic_requests(requests, actors, seed)
    report: dict[str, Any] = {
        "requests": requests,
        "actors": actors,
        "concurrency": concurrency,
        "backends": {},
    }
    backends = report["backends"]
    # The pre-built requests are the harness's, not the instance's: freeze them so the garbage
    # collector does not rescan them during the timed runs. (Unfrozen, its full collections
    # stalled the loop for up to 200 ms, past the shared counters' 20 ms deadline.)
    gc.collect()
    gc.freeze()
    try:
        _run_backends(backends, facts, concurrency)
        if shares:
            report["record_allowed_share"] = {
                str(share): _sampled_backends(facts, concurrency, share) for share in shares
            }
    finally:
        gc.unfreeze()
    memory = backends["memory"]["decisions_per_s"]
    report["ratio_to_memory"] = {
        name: round(b["decisions_per_s"] / memory, 3)
        for name, b in backends.items()
        if "decisions_per_s" in b
    }
    return report


def _run_backends(backends: dict[str, Any], facts: list[RequestFacts], concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sw-bench-state-") as tmp:
        work = Path(tmp)
        backends["memory"] = _one("memory://", facts, concurrency)
        backends["sqlite"] = _one(f"sqlite:///{work}/state.db", facts, concurrency)
        try:
            server = RedisServer(work).start()
        except RedisMissing as missing:
            backends["redis"] = backends["redis_cluster"] = {"skipped": str(missing)}
            return
        try:
            backends["redis"] = _one(server.url, facts, concurrency)
        finally:
            server.stop()
        cluster = RedisCluster(work).start()
        try:
            backends["redis_cluster"] = _one(cluster.url, facts, concurrency)
        finally:
            cluster.stop()


def _sampled_backends(facts: list[RequestFacts], concurrency: int, share: float) -> dict[str, Any]:
    """Memory, SQLite and Redis (not the Cluster: the events go to the same store either way)
    with ``share`` of addresses recording their allowed requests too."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sw-bench-share-") as tmp:
        work = Path(tmp)
        out["memory"] = _one("memory://", facts, concurrency, share)
        out["sqlite"] = _one(f"sqlite:///{work}/state.db", facts, concurrency, share)
        try:
            server = RedisServer(work).start()
        except RedisMissing as missing:
            out["redis"] = {"skipped": str(missing)}
            return out
        try:
            out["redis"] = _one(server.url, facts, concurrency, share)
        finally:
            server.stop()
    return out
