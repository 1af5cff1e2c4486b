"""Where the workers of a sharded run live: Ray actors (``--workers N``), or the driver's own process.

Ray is an optional extra (``pip install 'twin[ray]'``): imported only when a run asks for more than one worker
or for ``--ray-address``, and its absence is bad input that names the install command (exit 2). Each worker
is one async actor (``ShardProcess``, a ``ShardWorker``), so its methods run in the actor's event loop beside
its shards; the driver awaits them as asyncio futures. Actors ask for no CPU of Ray's accounting and are spread over the
cluster's nodes (``SPREAD``): a worker is one process that keeps one core busy, wherever Ray puts it.

Locally, ``ray.init`` starts a Ray instance of its own (a few seconds), with no dashboard, and shuts it down at
the end; a session already started in this process (a test fixture) or a cluster (``--ray-address``) is
joined and left running.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twin import aio
from twin.datadirs import child_pythonpath
from twin.errors import ConfigError
from twin.run.networked import NetConfig
from twin.run.plan import ShardSpec
from twin.run.shard import ShardWorker

INSTALL_RAY = "pip install 'twin[ray]'"
# A local Ray instance listens here: loopback, like everything a run starts. (Ray turns 127.0.0.1 into the
# machine's own network address; another loopback address stays what it is.)
LOCAL_RAY_IP = "127.0.0.2"


def import_ray() -> Any:
    """Ray, or bad input saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--workers above 1 and --ray-address run the shards on Ray, which is not installed: {INSTALL_RAY}"
        ) from None
    return ray


class LocalWorkers:
    """Every worker in the driver's process and event loop (``--workers 1`` of a factory; no Ray needed)."""

    backend = "in-process"

    def __init__(self, plan: list[list[ShardSpec]], config: NetConfig, run_dir: Path) -> None:
        self.workers = [ShardWorker(specs, config, str(run_dir)) for specs in plan]

    async def call(self, worker: int, method: str, *args: Any) -> Any:
        result = getattr(self.workers[worker], method)(*args)
        return await result if hasattr(result, "__await__") else result

    def close(self) -> None:
        pass


class ShardProcess(ShardWorker):
    """A worker that is its process's whole job (a Ray actor): it collects garbage as ``twin run`` does
    (``twin.aio.collect_less``: a tenth of the CPU per request)."""

    def __init__(self, specs: list[ShardSpec], config: NetConfig, run_dir: str) -> None:
        aio.collect_less()
        super().__init__(specs, config, run_dir)


class RayWorkers:
    """One Ray actor per worker; ``call`` awaits an actor method (a dead actor raises ``RayActorError``)."""

    backend = "ray"

    def __init__(self, plan: list[list[ShardSpec]], config: NetConfig, run_dir: Path, address: str | None) -> None:
        self.ray = ray = import_ray()
        self.owns_session = not ray.is_initialized()
        if self.owns_session:
            path = child_pythonpath()  # the twin package, for workers started from here
            try:
                ray.init(
                    address=address,
                    num_cpus=None if address else max(len(plan), os.cpu_count() or 1),
                    include_dashboard=False,
                    logging_level="ERROR",
                    log_to_driver=False,
                    runtime_env={"env_vars": {"PYTHONPATH": path, **_loop_env()}} if address is None else None,
                    **({"_node_ip_address": LOCAL_RAY_IP} if address is None else {}),
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"--ray-address {address}: cannot join that Ray cluster: {exc} (a cluster started by `ray start` "
                    "wants its token: RAY_AUTH_MODE=token, with ~/.ray/auth_token or RAY_AUTH_TOKEN)"
                ) from None
        remote = ray.remote(ShardProcess).options(num_cpus=0, scheduling_strategy="SPREAD", max_restarts=0)
        self.actors = [remote.remote(specs, config, str(run_dir)) for specs in plan]

    async def call(self, worker: int, method: str, *args: Any) -> Any:
        return await getattr(self.actors[worker], method).remote(*args)

    def kill(self, worker: int) -> None:
        self.ray.kill(self.actors[worker], no_restart=True)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors = []
        if self.owns_session:
            self.ray.shutdown()


def _loop_env() -> dict[str, str]:
    """Ray's async actors run on uvloop when it is installed, as ``twin run`` does (``twin.aio``); with
    ``TWIN_LOOP=asyncio`` the shards run on asyncio's loop too."""
    return {} if aio.loop_factory() is not None else {"RAY_USE_UVLOOP": "0"}
