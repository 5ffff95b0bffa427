"""Prefect flows over the one driver (`pressflow.prepare.pipeline`) and `pressflow.publish`.

Thin on purpose: the flows give the driver's steps tasks, retries for errors that can pass,
timeouts, names, final states and artifacts; the work itself is in the plain functions.
`prefect.yaml` points at `pressflow/flows/prepare.py` and `pressflow/flows/publish.py`.

A run that ends "Completed with failures" (a Completed state: Prefect's events say Completed)
emits `pressflow.flow-run.completed-with-failures` (resource `pressflow.flow-run.<id>`; payload
flow, state, message), which automations/runs.yaml turns into a webhook call. Publish runs take
the one slot of the `pressflow-publish` global concurrency limit, leased (`publish_slot`).

Importing this package connects the `pressflow` logger to the Prefect run logs, so that what
pressflow logs inside a flow run (a skipped or failed language, a refused record) shows in that
run's logs in the UI.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Iterator

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

from ..core.config import Settings
from ..core.errors import PressflowError

_given: contextvars.ContextVar[Settings | None] = contextvars.ContextVar("pressflow_settings", default=None)


@contextlib.contextmanager
def using_settings(settings: Settings) -> Iterator[None]:
    """Run flows called inside with these settings (the CLI's, with `--countries` and all).

    Settings are not a flow parameter: a deployment's parameters are a form in the Prefect UI and
    are stored in plain text with each run, no place for a database URL; a deployment's runs take
    the worker's own settings (its environment), with `out_dir` as the one parameter.
    """
    token = _given.set(settings)
    try:
        yield
    finally:
        _given.reset(token)


def settings_for(out_dir: str | None) -> Settings:
    """The settings of this flow run, every path absolute before any task or worker sees them."""
    return (_given.get() or Settings()).with_out(out_dir).absolute()


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, for records logged inside a flow or task run only (outside
    one, e.g. the review page calling the pipeline, there is no run to attach them to)."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            super().emit(record)


def send_logs_to_runs() -> None:
    logger = logging.getLogger("pressflow")
    if not any(isinstance(h, RunLogHandler) for h in logger.handlers):
        logger.addHandler(RunLogHandler(level=logging.INFO))
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # console quietness is the console handler's business


send_logs_to_runs()


def _hopeless(exc: BaseException) -> bool:
    """Errors a retry cannot cure: pressflow's own (a corrupt model, a bad record, a template),
    validation, and database integrity or programming errors."""
    from pydantic import ValidationError
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    return isinstance(exc, (PressflowError, ValidationError, IntegrityError, ProgrammingError,
                            ValueError, TypeError, KeyError, AttributeError))


def _transient(exc: BaseException) -> bool:
    """Errors that can pass: a locked or dropped database, a file system or network hiccup."""
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, (OperationalError, OSError, TimeoutError, ConnectionError))


def can_pass(task, task_run, state) -> bool:
    """`retry_condition_fn` of every task: retry only errors that may not happen again."""
    try:
        exc = state.result(raise_on_failure=False)
    except BaseException as raised:  # noqa: BLE001 - a result that cannot be read: do not retry
        exc = raised
    return isinstance(exc, BaseException) and _transient(exc) and not _hopeless(exc)


COMPLETED_WITH_FAILURES = "pressflow.flow-run.completed-with-failures"


def completed_with_failures(data, message: str):
    """The final state "Completed with failures", announced as an event of its own.

    Its type is COMPLETED (the run did its work; some languages or records did not go through),
    so Prefect's state events and automations see a Completed run. The event
    `pressflow.flow-run.completed-with-failures` is what automations/runs.yaml tells people about.
    """
    from prefect.events import emit_event
    from prefect.runtime import flow_run
    from prefect.states import Completed

    name = "Completed with failures"
    emit_event(event=COMPLETED_WITH_FAILURES,
               resource={"prefect.resource.id": f"pressflow.flow-run.{flow_run.id}",
                         "prefect.resource.name": flow_run.name or ""},
               payload={"flow": flow_run.flow_name, "state": name, "message": message})
    return Completed(name=name, data=data, message=message)


# `publish` and `publish-scheduled` (and any `pressflow publish` with a server) take one slot of
# this global concurrency limit, so two publishes never run at once whichever way they started.
# The slot is leased: the run renews it while alive, and a run whose process died gives it back
# when its lease runs out, instead of holding the only slot for ever.
PUBLISH_LIMIT = "pressflow-publish"
PUBLISH_LEASE_SECONDS = 60
PUBLISH_SLOT_WAIT_SECONDS = 30 * 60


@contextlib.contextmanager
def publish_slot() -> Iterator[None]:
    """Hold the one publish slot for the block (the limit is made on first use)."""
    from prefect.concurrency.sync import concurrency

    ensure_limit(PUBLISH_LIMIT, 1)
    logging.getLogger("pressflow").info("taking the %s concurrency slot (one publish at a time)", PUBLISH_LIMIT)
    with concurrency(PUBLISH_LIMIT, occupy=1, timeout_seconds=PUBLISH_SLOT_WAIT_SECONDS,
                     lease_duration=PUBLISH_LEASE_SECONDS, strict=True):
        yield


def ensure_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit unless it exists (two runs racing: one creates it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            except ObjectAlreadyExists:
                pass
