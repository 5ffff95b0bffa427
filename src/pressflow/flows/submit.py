"""`pressflow prepare` / `publish` with a Prefect server: a run of the deployment, followed here.

The command creates a flow run of the deployment (prefect.yaml), a worker runs it, and this
process prints the run's state changes and log lines as they arrive, then returns its final
state: the terminal shows what the Prefect UI shows, and the exit code follows the run.
Ctrl-C stops following, not the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..core.errors import PressflowError

POLL_SECONDS = 1.0
NO_WORKER_NOTICE_SECONDS = 30  # a run still waiting for a worker after this is worth a line


class DeploymentMissing(PressflowError):
    """The deployment to submit to is not on the Prefect server."""


@dataclass(frozen=True)
class Outcome:
    name: str  # the run's name
    state: str  # its final state's name, e.g. "Completed with failures"
    message: str
    ok: bool  # Completed, and not with failures
    url: str


def submit(deployment: str, parameters: dict, say: Callable[[str], None], api_url: str) -> Outcome:
    """Run the deployment with these parameters and follow the run to its end."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            raise DeploymentMissing(f"no deployment {deployment} on the Prefect server at {api_url}; deploy the "
                                    "project with `prefect deploy --all`, or run here with --local") from None
        run = client.create_flow_run_from_deployment(found.id, parameters=parameters)
        url = f"{api_url.rstrip('/').removesuffix('/api')}/runs/flow-run/{run.id}"
        say(f"submitted to {deployment}: flow run {run.name} ({url}); Ctrl-C stops following, not the run")
        state = follow(client, run.id, say)
    completed = state.is_completed()
    return Outcome(run.name, state.name or str(state.type.value), state.message or "",
                   completed and state.name == "Completed", url)


def follow(client, run_id, say: Callable[[str], None]):
    """Print the run's state changes and logs until it reaches a final state; return that state."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    seen_logs, last_state, started = 0, None, time.monotonic()
    waited_said = False
    while True:
        state = client.read_flow_run(run_id).state
        logs = client.read_logs(log_filter=log_filter, offset=seen_logs, sort=LogSort.TIMESTAMP_ASC)
        for line in logs:
            say(f"{line.timestamp:%H:%M:%S} {_level(line.level)} {line.message}")
        seen_logs += len(logs)
        if state is not None and state.name != last_state:
            last_state = state.name
            say(f"state: {state.name}" + (f": {state.message}" if state.message and not state.is_final() else ""))
        if state is not None and state.is_final():
            return _final_logs(client, log_filter, seen_logs, say, state)
        waiting = state is not None and (state.is_scheduled() or state.is_pending())
        if waiting and not waited_said and time.monotonic() - started > NO_WORKER_NOTICE_SECONDS:
            waited_said = True
            say("still waiting for a worker: is `prefect worker start --pool pressflow` running?")
        time.sleep(POLL_SECONDS)


def _final_logs(client, log_filter, seen: int, say, state):
    """Logs sent just before the run ended arrive a moment after its state: read them once more."""
    from prefect.client.schemas.sorting import LogSort

    time.sleep(2 * POLL_SECONDS)
    for line in client.read_logs(log_filter=log_filter, offset=seen, sort=LogSort.TIMESTAMP_ASC):
        say(f"{line.timestamp:%H:%M:%S} {_level(line.level)} {line.message}")
    return state


def _level(level: int) -> str:
    import logging

    return logging.getLevelName(level)
