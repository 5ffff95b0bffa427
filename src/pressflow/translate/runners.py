"""Which Prefect task runner spreads the translation units: threads here, or a Dask cluster.

The prepare flow maps one task over (language pair, batch) units (`stage.Unit`). The same flow
runs with Prefect's default thread pool on one machine, or with prefect-dask's DaskTaskRunner:

- `PRESSFLOW_TASK_RUNNER=dask` starts a local Dask cluster for the run
  (`PRESSFLOW_DASK_WORKERS`, default 2 worker processes);
- `PRESSFLOW_DASK_ADDRESS=tcp://scheduler:8786` uses a running cluster instead. Its workers
  need pressflow and the same Argos packages at the same paths (ARGOS_PACKAGES_DIR).

Only model work (`stage.Unit`: a model path and sentences, nothing else) goes to the runner;
planning, the translation memory and storing drafts stay in the flow's process. A cluster on
other machines is still refused with a SQLite store (`check_reachable`): the store is then a
file on the flow's machine alone, which a team that spreads work over machines (reviewers,
publishers, the next flow run on another worker) cannot share; PostgreSQL is the store for that.

prefect-dask (and distributed) are imported only when a Dask runner is asked for.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from urllib.parse import urlsplit

from ..core.config import Settings
from ..core.errors import PressflowError

RUNNERS = ("threads", "dask")


class RunnerError(PressflowError):
    """The configured task runner is unknown or cannot be built."""


def runner_name(settings: Settings) -> str:
    return (settings.task_runner or ("dask" if settings.dask_address else "threads")).lower()


def task_runner(settings: Settings | None = None):
    """The task runner the settings name (PRESSFLOW_TASK_RUNNER; default: threads)."""
    settings = settings or Settings()
    name, address = runner_name(settings), settings.dask_address
    if name == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        from .engine import MODELS

        # No more tasks at once than the model cache holds: units come grouped by model, so a
        # model in use is never evicted and reloaded, and memory keeps the cache's bound.
        return ThreadPoolTaskRunner(max_workers=MODELS.size)
    if name == "dask":
        return dask_runner(address=address, workers=settings.dask_workers)
    raise RunnerError(f"PRESSFLOW_TASK_RUNNER={name!r} is not a task runner; use one of: {', '.join(RUNNERS)}")


def dask_runner(*, address: str | None = None, workers: int = 2, processes: bool = True):
    """A DaskTaskRunner on a cluster at `address`, or on a local cluster it starts and stops."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise RunnerError("the Dask task runner needs prefect-dask: pip install prefect-dask") from None
    if address:
        return DaskTaskRunner(address=address)
    # A local cluster's start-up chatter (scheduler, nannies) is not news to someone preparing
    # a release; warnings still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": processes, "dashboard_address": None}
    if processes:
        # One CTranslate2 thread pool per worker process: split the cores between them rather
        # than let every worker start a pool as large as the machine (Nanny passes `env` on).
        cluster["env"] = {"PRESSFLOW_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    return DaskTaskRunner(cluster_kwargs=cluster)


def is_local(address: str) -> bool:
    """Whether a Dask scheduler address (tcp://host:port, or host:port) is on this machine."""
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(settings: Settings) -> None:
    """Refuse, before any work, a cluster on other machines with a store on this one alone."""
    address = settings.dask_address
    if address and not is_local(address) and settings.db_url.startswith("sqlite:"):
        raise RunnerError(
            f"the Dask cluster at {address} runs on other machines, but the draft store is a SQLite file "
            f"on this one ({settings.db_url.removeprefix('sqlite:///')}); set PRESSFLOW_DATABASE_URL to a "
            "PostgreSQL database everyone can reach, or use a local cluster")
