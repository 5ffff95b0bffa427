"""The store's schema is made in one place (db.create_schema), safely when several processes
open an empty database at once, on SQLite and on a real PostgreSQL server; the SQLite store
and its folder are readable by their owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest
from sqlalchemy import inspect, select

from pressflow.core import db
from pressflow.deliver import ledger as delivery_ledger
from pressflow.drafts import reviewers
from pressflow.publish import ledger

# Each process imports the store, sleeps until the same moment, then opens the database
# and uses the reviewers table: the moment table creation used to race.
OPEN_AT_ONCE = """
import sys, time
from pressflow.core import db
from pressflow.drafts import reviewers
from pressflow.publish import ledger
from sqlalchemy import select
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
db.get_engine(url)
reviewers.list_users(url)
"""
PROCESSES, TRIALS = 5, 3


def open_at_once(url: str) -> list[subprocess.CompletedProcess]:
    start = time.time() + 4  # every process has imported by then, even on a loaded machine
    children = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, url, str(start)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(PROCESSES)]
    return [subprocess.CompletedProcess(c.args, c.wait(timeout=120), *c.communicate()) for c in children]


def assert_all_opened(results: list[subprocess.CompletedProcess]) -> None:
    failed = [next((line for line in r.stderr.splitlines() if "Error" in line), r.stderr[-300:])
              for r in results if r.returncode != 0]
    assert not failed, failed


def test_processes_opening_an_empty_postgres_database_at_once_all_succeed(postgres_databases):
    for _ in range(TRIALS):
        url = postgres_databases()
        assert_all_opened(open_at_once(url))
        assert "reviewers" in inspect(db.get_engine(url)).get_table_names()


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    for trial in range(TRIALS):
        url = f"sqlite:///{tmp_path / str(trial) / 'state' / 'pressflow.db'}"
        assert_all_opened(open_at_once(url))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_table_comes_with_the_store_including_accounts(backend, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path / 'x.db'}"
    tables = set(inspect(db.get_engine(url)).get_table_names())
    assert set(db.Base.metadata.tables) <= tables
    assert "reviewers" in tables
    assert not hasattr(reviewers, "_ensure_table")  # no second place that makes tables


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_run_once_in_order_and_a_new_one_runs_on_the_next_open(backend, tmp_path, request, monkeypatch):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path / 'x.db'}"
    seen = []
    migrations = dict(db.MIGRATIONS)
    monkeypatch.setattr(db, "MIGRATIONS", migrations)
    latest = max(migrations)
    migrations[latest + 1] = lambda connection: seen.append(("next", connection.dialect.name))

    def reopen() -> None:  # as another process opening it
        if (engine := db._engines.pop(url, None)) is not None:
            engine.dispose()
        db.get_engine(url)

    reopen()  # a new store: every migration
    reopen()  # nothing left to run
    assert seen == [("next", engine_dialect(url))]
    migrations[latest + 2] = lambda connection: seen.append(("after", connection.dialect.name))
    reopen()
    reopen()
    assert [name for name, _ in seen] == ["next", "after"]
    with db.get_engine(url).connect() as connection:
        numbers = connection.scalars(select(db.SchemaMigration.number)).all()
    assert sorted(numbers) == sorted(migrations)  # each registered one, once
    db._engines.pop(url).dispose()  # the next test opens it with the real migrations


def engine_dialect(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"



@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_from_before_sitemap_sizes_gets_them_filled_in(backend, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path / 'x.db'}"
    engine = db.get_engine(url)
    with engine.begin() as connection:  # as an older version left it: no size column, one release kept
        connection.exec_driver_sql("DELETE FROM published_releases")
        connection.exec_driver_sql("DROP INDEX ix_published_releases_sizes")
        connection.exec_driver_sql("ALTER TABLE published_releases DROP COLUMN size")
        connection.exec_driver_sql("INSERT INTO published_releases (slug, position, sitemap_part, urls, sitemap_xml, "
                                   "updated_at) VALUES ('forum', 1, 1, 2, '<url>a</url>', '2030-01-01 00:00:00')")
        connection.exec_driver_sql("DELETE FROM schema_migrations")  # made before numbered migrations
    db._engines.pop(url).dispose()  # as the next process opening it
    with db.session_scope(url) as session:
        assert ledger.sitemap_parts(session) == {1: (2, len("<url>a</url>"))}
        assert ledger.sitemap_places(session, ["forum"]) == {"forum": (1, 2, len("<url>a</url>"))}

def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_sqlite_store_and_its_folder_are_private(settings):
    reviewers.add_user(settings.db_url, "ana", "correct horse", [])  # the store now holds a password hash
    state = settings.out_dir / "state"
    assert mode(state) == 0o700
    database = state / "pressflow.db"
    companions = [p for p in state.iterdir() if p.name.startswith("pressflow.db")]
    assert database in companions and any(p.name.endswith("-wal") for p in companions)
    assert {p.name: mode(p) for p in companions} == {p.name: 0o600 for p in companions}


def test_an_older_world_readable_store_is_tightened_when_opened(settings):
    path = db.sqlite_path(settings.db_url)
    db.get_engine(settings.db_url)
    db._engines.pop(settings.db_url).dispose()
    os.chmod(path, 0o644)
    db.get_engine(settings.db_url)
    assert mode(path) == 0o600


def test_the_latest_migration_number_is_the_last_one_the_stages_register():
    """Opening a current store reads its number against `db.LATEST_MIGRATION` without importing
    the stages; the stages' modules, once imported, register exactly migrations 1 to that number."""
    db.import_schema()
    assert sorted(db.MIGRATIONS) == list(range(1, db.LATEST_MIGRATION + 1))
    owners = {number: step.__module__ for number, step in db.MIGRATIONS.items()}
    assert owners == {1: "pressflow.core.db", 2: "pressflow.drafts.store", 3: "pressflow.drafts.store",
                      4: "pressflow.memory.store", 5: "pressflow.drafts.notices", 6: "pressflow.deliver.ledger",
                      7: "pressflow.drafts.store"}


def reopened(url: str):
    """The store's engine as the next process opening it gets it."""
    if (engine := db._engines.pop(url, None)) is not None:
        engine.dispose()
    return db.get_engine(url)


def migrations_run(url: str) -> list[int]:
    with db.get_engine(url).connect() as connection:
        return sorted(connection.scalars(select(db.SchemaMigration.number)))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_at_migration_4_gets_the_delivery_tables(backend, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path / 'x.db'}"
    with db.get_engine(url).begin() as connection:  # as migration 4's code left a store never delivered from
        connection.exec_driver_sql("DROP TABLE deliveries")
        connection.exec_driver_sql("DROP TABLE channel_sessions")
        connection.exec_driver_sql("DELETE FROM schema_migrations WHERE number > 4")
    tables = inspect(reopened(url))
    assert {"deliveries", "channel_sessions"} <= set(tables.get_table_names())
    assert {"ix_deliveries_slot", "ix_deliveries_state"} <= {i["name"] for i in tables.get_indexes("deliveries")}
    assert 6 in migrations_run(url)
    db._engines.pop(url).dispose()


def test_migration_6_keeps_delivery_tables_made_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    ledger = delivery_ledger.Ledger(url)
    ledger.sessions().save("bluesky:ana", {"token": "t"})
    with ledger.engine.begin() as connection:  # delivery's tables made on first use, before migration 6
        connection.exec_driver_sql("DROP INDEX ix_deliveries_state")
        connection.exec_driver_sql("DELETE FROM schema_migrations WHERE number > 4")
    reopened(url)
    assert delivery_ledger.Ledger(url).sessions().load("bluesky:ana") == {"token": "t"}
    assert "ix_deliveries_state" in {i["name"] for i in inspect(db.get_engine(url)).get_indexes("deliveries")}
    assert 6 in migrations_run(url)
    db._engines.pop(url).dispose()


def test_a_migration_registered_below_one_the_store_ran_still_runs(tmp_path, monkeypatch):
    """Work merged in another order: a store that ran 6 meets code that also has a 5 it never ran."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    reopened(url)
    seen = []
    migrations = dict(db.MIGRATIONS)
    gap = db.LATEST_MIGRATION - 1  # a store that has not run it, whether this code has it or not
    with db.get_engine(url).begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM schema_migrations WHERE number = {gap}")
    migrations[gap] = lambda connection: seen.append(gap)
    monkeypatch.setattr(db, "MIGRATIONS", migrations)
    reopened(url)
    reopened(url)
    assert seen == [gap]
    assert migrations_run(url) == sorted(migrations)
    db._engines.pop(url).dispose()
