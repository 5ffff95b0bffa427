"""A team's Prefect server on PostgreSQL (README, "A team's Prefect server: on PostgreSQL").

`prefect server start` with PREFECT_API_DATABASE_CONNECTION_URL on a fresh database of the
tests' throwaway PostgreSQL cluster: it runs its migrations there, and a publish flow run in
this process is recorded in it, state, logs and the shared publish slot included.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from conftest import ROOT
from test_prefect_server import PREFECT, Service, free_port, wait_healthy

pytestmark = pytest.mark.slow


def test_a_prefect_server_on_postgresql_records_a_flow_run(postgres_databases, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pressflow.core.config import Settings
    from pressflow.flows import using_settings
    from pressflow.flows.publish import publish_flow

    database = postgres_databases()  # postgresql+psycopg://...: Prefect's server speaks asyncpg
    prefect_url = make_url(database).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_API_DATABASE_CONNECTION_URL": prefect_url,
           "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false", "PWD": str(ROOT)}
    server = Service("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    try:
        wait_healthy(server, env["PREFECT_API_URL"])
        EventsWorker.drain_all()  # this process's events go to this server
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            with using_settings(Settings(out_dir=tmp_path / "out")):
                state = publish_flow(return_state=True)
            assert state.is_completed(), state
            with get_client(sync_client=True) as client:
                run = client.read_flow_run(state.state_details.flow_run_id)
                limit = client.read_global_concurrency_limit_by_name("pressflow-publish")
            EventsWorker.drain_all()
        assert run.state.is_completed() and run.name.startswith("publish ")
        assert limit.limit == 1 and limit.active_slots == 0
        # The run is in PostgreSQL, not in a SQLite file of the server's home.
        engine = create_engine(database)
        try:
            with engine.connect() as connection:
                names = connection.execute(text("SELECT name FROM flow_run")).scalars().all()
        finally:
            engine.dispose()
        assert run.name in names
        assert not list((tmp_path / "prefect-home").glob("*.db"))
    finally:
        server.stop()
        print(f"----- prefect server log -----\n{server.output()[-8000:]}")
