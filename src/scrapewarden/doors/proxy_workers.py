"""Running the proxy: one process, or a supervisor with a decider and N workers.

``--workers 1``: one process holds the listening socket and the engine (:class:`LocalDecider`).

``--workers N`` (N > 1)::

    supervisor ──┬── decider   (the one engine: counters, bans, events; Unix socket)
                 ├── worker 1  (SO_REUSEPORT listener, asks the decider per request)
                 └── worker N

The kernel spreads new connections over the workers; every worker asks the same engine, so a
scraper's budget is the same whatever worker its connections land on, and every answer to the
challenge is checked (and spent) by that engine too. Signals go to the supervisor: SIGTERM/SIGINT
drain the workers (grace period) and then stop the decider; SIGHUP is passed on to everyone (the
decider reloads the engine, workers reload the reply settings).

If the decider dies, the supervisor starts a new one (logged; its counters start afresh, bans
and the challenge key come back from the state store) and the workers reconnect; meanwhile they
let requests through and answer ``/.sw/verify`` with a 503 page. A decider that dies before it
listens is not restarted (a policy or state it cannot load, say): the whole proxy stops, as it
does when a worker dies. Restarts are at least :data:`DECIDER_RESTART_GAP` seconds apart, so a
decider that keeps dying costs a log line every few seconds, not a busy loop.

Metrics (``--metrics-listen``): one process serves ``GET /metrics`` on that address of its own —
the proxy itself, or with workers the supervisor, which makes a prometheus multiprocess
directory in its private temporary directory (removed with it) and adds up every child's files,
so counts survive a decider restart (see :mod:`scrapewarden.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from ..core.policy import Policy
from ..metrics import MULTIPROC_ENV
from ..metrics_http import MetricsServer, start_metrics_server
from ..warden import Warden, resolve_policy
from .proxy import ProxyServer, ProxySettings
from .proxy_decider import DeciderService, LocalDecider, RemoteDecider

log = logging.getLogger("scrapewarden.proxy")

DECIDER_RESTART_GAP = 5.0
"""Seconds at least between two starts of the decider."""


def _install_loop() -> None:
    try:
        import uvloop
    except ImportError:  # plain asyncio works, just slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _load_policy(source: str | None, under_attack: bool) -> Policy | None:
    """The policy from ``source`` (a file, or None for env/defaults); None (logged) when unusable.

    ``under_attack`` (``--under-attack``) holds across reloads, whatever the file says."""
    try:
        return resolve_policy(source, under_attack=under_attack)
    except Exception as exc:
        log.error("proxy: policy reload failed, keeping the current policy: %s", exc)
        return None


async def _until_stopped(on_reload: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_reload)
    await stop.wait()


async def serve_single(
    settings: ProxySettings,
    *,
    policy: str | None,
    state: str | None,
    host: str,
    port: int,
    under_attack: bool = False,
    metrics_listen: tuple[str, int] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    decider = LocalDecider(Warden(policy, state=state, under_attack=under_attack))
    server = ProxyServer(settings, decider, loop)
    bound = await server.start(host, port)
    metrics = _serve_metrics(metrics_listen)
    log.warning(
        "scrapewarden proxy on http://%s:%d -> %s:%d (policy mode: %s%s)",
        *bound,
        settings.upstream_host,
        settings.upstream_port,
        decider.policy.mode,
        ", under attack: challenging everyone without clearance"
        if decider.policy.challenge.under_attack
        else "",
    )

    def reload() -> None:
        new = _load_policy(policy, under_attack)
        if new is not None:
            decider.reload(new)
            log.warning("proxy: policy reloaded (mode: %s)", new.mode)

    await _until_stopped(reload)
    await server.shutdown()
    decider.close()
    if metrics is not None:
        metrics.stop()


def _serve_metrics(
    listen: tuple[str, int] | None, multiprocess_dir: str | None = None
) -> MetricsServer | None:
    if listen is None:
        return None
    metrics = start_metrics_server(*listen, multiprocess_dir=multiprocess_dir)
    log.warning("proxy: metrics on http://%s:%d/metrics", *metrics.bound)
    return metrics


# -- several processes ----------------------------------------------------------------------------


def _decider_main(socket_path: str, policy: str | None, state: str | None, under_attack: bool) -> None:
    _install_loop()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s decider[%(process)d] %(levelname)s %(message)s"
    )

    async def run() -> None:
        service = DeciderService(Warden(policy, state=state, under_attack=under_attack))
        server = await service.serve(Path(socket_path))

        def reload() -> None:
            new = _load_policy(policy, under_attack)
            if new is not None:
                service.reload(new)
                log.warning("decider: policy reloaded (mode: %s)", new.mode)

        await _until_stopped(reload)
        server.close()
        await service.drain()
        log.warning("decider: stopping after %s", service.summary())
        service.warden.close()

    asyncio.run(run())


def _worker_main(
    settings: ProxySettings, socket_path: str, policy: str | None, host: str, port: int, under_attack: bool
) -> None:
    _install_loop()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s"
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        first = resolve_policy(policy, under_attack=under_attack)
        decider = RemoteDecider(Path(socket_path), first, loop)
        await decider.connect()
        server = ProxyServer(settings, decider, loop)
        await server.start(host, port, reuse_port=True)
        # Said at the level the workers log at: until every worker says it, the kernel hands
        # connections only to those listening (tests and health checks wait for it).
        logging.getLogger("scrapewarden.proxy").warning("proxy: worker listening on %s:%d", host, port)

        def reload() -> None:
            new = _load_policy(policy, under_attack)
            if new is not None:
                decider.reload(new)

        await _until_stopped(reload)
        await server.shutdown()
        decider.close()
        if decider.unchecked:
            log.warning(
                "worker: %d answers got a 503 because the decider could not check them", decider.unchecked
            )

    asyncio.run(run())


def _start_deaf_to_hup(proc: multiprocessing.process.BaseProcess) -> None:
    """Start ``proc`` with SIGHUP ignored until its event loop installs the reload handler.

    A reload forwarded to a process still starting up would otherwise kill it (SIGHUP's default
    action), and the whole proxy with it. An ignored signal stays ignored across the spawn's
    exec; the handler the process installs later replaces it.
    """
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        proc.start()
    finally:
        signal.signal(signal.SIGHUP, previous)


def serve_workers(
    settings: ProxySettings,
    *,
    policy: str | None,
    state: str | None,
    host: str,
    port: int,
    workers: int,
    under_attack: bool = False,
    metrics_listen: tuple[str, int] | None = None,
) -> None:
    """Run the decider and ``workers`` proxy processes until SIGTERM/SIGINT."""
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="scrapewarden-proxy-") as private,
        _multiprocess_metrics(private, metrics_listen is not None) as metrics_dir,
    ):
        os.chmod(private, 0o700)
        socket_path = os.path.join(private, "decider.sock")
        # Hold the port (bound, not listening) so every worker binds the same one, even port 0.
        holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
        port = holder.getsockname()[1]

        def start_decider() -> multiprocessing.process.BaseProcess:
            started = context.Process(
                target=_decider_main, args=(socket_path, policy, state, under_attack), name="decider"
            )
            _start_deaf_to_hup(started)
            return started

        decider = start_decider()
        decider_since = time.monotonic()
        procs = [
            context.Process(
                target=_worker_main,
                args=(settings, socket_path, policy, host, port, under_attack),
                name=f"worker-{i + 1}",
            )
            for i in range(workers)
        ]
        for proc in procs:
            _start_deaf_to_hup(proc)
        metrics = _serve_metrics(metrics_listen, metrics_dir)
        log.warning(
            "scrapewarden proxy on http://%s:%d -> %s:%d with %d workers and one decider%s",
            host,
            port,
            settings.upstream_host,
            settings.upstream_port,
            workers,
            " (under attack: challenging everyone without clearance)" if under_attack else "",
        )
        log.warning("proxy: decider pid %s, worker pids %s", decider.pid, [proc.pid for proc in procs])
        stopping = False
        restarting = False

        def forward(signum: int, _frame: object) -> None:
            nonlocal stopping
            if signum == signal.SIGHUP:
                for proc in [decider, *procs]:
                    if proc.pid:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(proc.pid, signal.SIGHUP)
                return
            stopping = True

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGHUP, forward)
        try:
            while not stopping and all(proc.is_alive() for proc in procs):
                if not decider.is_alive():
                    if not restarting:
                        if not os.path.exists(socket_path):
                            log.error(
                                "proxy: the decider exited before it was ready (code %s)", decider.exitcode
                            )
                            break
                        log.error(
                            "proxy: the decider (pid %s) exited (code %s); starting a new one",
                            decider.pid,
                            decider.exitcode,
                        )
                        restarting = True
                    if time.monotonic() >= decider_since + DECIDER_RESTART_GAP:
                        if metrics_dir is not None and decider.pid:
                            mark_process_dead(decider.pid, metrics_dir)  # its gauges go, counts stay
                        # Its socket tells the next death apart from a failed start.
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(socket_path)
                        decider = start_decider()
                        decider_since = time.monotonic()
                        restarting = False
                        log.warning("proxy: decider pid %s", decider.pid)
                time.sleep(0.2)
        finally:
            for proc in procs:
                if proc.pid and proc.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.join(settings.grace + 5.0)
                if proc.is_alive():
                    proc.kill()
            if decider.pid and decider.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(decider.pid, signal.SIGTERM)
            decider.join(10.0)
            if decider.is_alive():
                decider.kill()
            holder.close()
            if metrics is not None:
                metrics.stop()


@contextlib.contextmanager
def _multiprocess_metrics(private: str, wanted: bool) -> Iterator[str | None]:
    """With metrics wanted: a multiprocess directory in ``private``, named in the environment
    the children inherit (prometheus-client picks the mode when it is first imported, which in
    a spawned child comes after). The supervisor's own environment is restored afterwards."""
    if not wanted:
        yield None
        return
    path = os.path.join(private, "metrics")
    os.mkdir(path, 0o700)
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous


def run(
    settings: ProxySettings,
    *,
    policy: str | None = None,
    state: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    under_attack: bool = False,
    metrics_listen: tuple[str, int] | None = None,
) -> None:
    """Blocking entry point used by ``scrapewarden proxy``."""
    if workers > 1:
        serve_workers(
            settings,
            policy=policy,
            state=state,
            host=host,
            port=port,
            workers=workers,
            under_attack=under_attack,
            metrics_listen=metrics_listen,
        )
        return
    _install_loop()
    asyncio.run(
        serve_single(
            settings,
            policy=policy,
            state=state,
            host=host,
            port=port,
            under_attack=under_attack,
            metrics_listen=metrics_listen,
        )
    )
