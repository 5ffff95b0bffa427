"""Which Prefect task runner spreads the translation units: threads here, or a Dask cluster.

The prepare flow maps one task over (language pair, batch) units (`stage.Unit`). The same flow
runs with Prefect's default thread pool on one machine, or with prefect-dask's DaskTaskRunner:

- `PRESSFLOW_TASK_RUNNER=dask` starts a local Dask cluster for the run
  (`PRESSFLOW_DASK_WORKERS`, default 2 worker processes);
- `PRESSFLOW_DASK_ADDRESS=tcp://scheduler:8786` uses a running cluster instead. Its workers
  need pressflow and the same Argos packages at the same paths (ARGOS_PACKAGES_DIR), and the
  flow's database must be one they can all reach if they run tasks that touch it (PostgreSQL).

prefect-dask (and distributed) are imported only when a Dask runner is asked for.
"""

from __future__ import annotations

import logging
import os

from ..errors import PressflowError

RUNNERS = ("threads", "dask")


class RunnerError(PressflowError):
    """The configured task runner is unknown or cannot be built."""


def task_runner(name: str | None = None):
    """The task runner named by `name`, else by PRESSFLOW_TASK_RUNNER (default: threads)."""
    address = os.environ.get("PRESSFLOW_DASK_ADDRESS")
    name = (name or os.environ.get("PRESSFLOW_TASK_RUNNER") or ("dask" if address else "threads")).lower()
    if name == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        from .engine import MODELS

        # No more tasks at once than the model cache holds: units come grouped by model, so a
        # model in use is never evicted and reloaded, and memory keeps the cache's bound.
        return ThreadPoolTaskRunner(max_workers=MODELS.size)
    if name == "dask":
        return dask_runner(address=address, workers=int(os.environ.get("PRESSFLOW_DASK_WORKERS", "2")))
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
