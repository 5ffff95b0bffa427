"""Configuration where a Prefect team keeps it: secrets in Secret blocks, worker settings in job variables.

Secret blocks are saved on a real `prefect server` and read back through `Settings`, in this
process and in a fresh `pressflow` process configured by environment only, as a worker's flow
run would be. Without those settings, Prefect is never imported. The work pool's job variables
of `prefect.yaml` are checked as `prefect deploy` stores them in `tests/test_prefect_server.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from pressflow.core.config import Settings
from pressflow.core.errors import ConfigError


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_without_block_settings_prefect_is_never_imported(tmp_path):
    env = {**os.environ, "PRESSFLOW_OUT": str(tmp_path / "out"), "PRESSFLOW_REVIEW_TOKEN": "team-token"}
    result = run_python("import sys\n"
                        "from pressflow.core.config import Settings\n"
                        "s = Settings()\n"
                        "print(s.db_url, s.shared_review_token())\n"
                        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"sqlite:///{tmp_path / 'out' / 'state' / 'pressflow.db'} team-token", "[]"]


def test_a_block_without_a_prefect_server_is_one_line_at_once(tmp_path):
    # No PREFECT_API_URL and no Prefect profile: refused before Prefect is imported, rather than
    # after starting a temporary Prefect server that cannot hold the team's block anyway.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update({"PREFECT_HOME": str(tmp_path / "no-prefect"), "PRESSFLOW_OUT": str(tmp_path / "out"),
                "PRESSFLOW_DATABASE_URL_BLOCK": "pressflow-database-url"})
    result = subprocess.run([str(Path(sys.executable).with_name("pressflow")), "review", "list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "PRESSFLOW_DATABASE_URL_BLOCK=pressflow-database-url names a Prefect Secret block, but no Prefect "
        "server is configured: set PREFECT_API_URL (or `prefect config set PREFECT_API_URL=...`)"), result.stderr
    assert "Traceback" not in result.stderr


def test_the_plain_variable_wins_over_its_block():
    settings = Settings(database_url="sqlite:////tmp/x.db", database_url_block="no-such-block",
                        review_token="plain", review_token_block="no-such-block")
    assert settings.db_url == "sqlite:////tmp/x.db" and settings.shared_review_token() == "plain"


def test_settings_do_not_show_their_secrets():
    settings = Settings(database_url="postgresql+psycopg://u:pw@db/x", review_token="team-token")
    assert "pw@" not in repr(settings) and "team-token" not in repr(settings)


@pytest.mark.slow
def test_secrets_come_from_secret_blocks_on_the_prefect_server(prefect_server, tmp_path):
    from prefect.blocks.system import Secret

    database = f"sqlite:///{tmp_path / 'team' / 'pressflow.db'}"
    names = {kind: f"pressflow-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("database-url", "review-token")}
    Secret(value=database).save(names["database-url"])
    Secret(value="token-from-the-block").save(names["review-token"])

    settings = Settings(out_dir=tmp_path / "out", database_url=None, database_url_block=names["database-url"],
                        review_token=None, review_token_block=names["review-token"])
    assert settings.db_url == database
    assert settings.shared_review_token() == "token-from-the-block"

    # A fresh process configured by environment only, as a flow run on a worker is: the store it
    # opens is the one the block names (a table made there shows in the block's database file).
    env = {**prefect_server, "PRESSFLOW_OUT": str(tmp_path / "out"),
           "PRESSFLOW_DATABASE_URL_BLOCK": names["database-url"], "PRESSFLOW_REVIEW_TOKEN_BLOCK": names["review-token"]}
    env.pop("PRESSFLOW_DATABASE_URL", None)
    env.pop("PRESSFLOW_REVIEW_TOKEN", None)
    (tmp_path / "team").mkdir()
    result = run_python("from pressflow.core.config import Settings\n"
                        "from pressflow.core import db\n"
                        "from pressflow.drafts import store\n"
                        "s = Settings()\n"
                        "db.get_engine(s.db_url)\n"
                        "with db.session_scope(s.db_url) as session:\n"
                        "    print(len(store.list_drafts(session)))\n"
                        "print(s.db_url)\n"
                        "print(s.shared_review_token())", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0", database, "token-from-the-block"]
    assert (tmp_path / "team" / "pressflow.db").stat().st_size > 0
    assert not (tmp_path / "out" / "state" / "pressflow.db").exists()


@pytest.mark.slow
def test_a_missing_block_is_one_line_naming_the_setting(prefect_server):
    settings = Settings(database_url=None, database_url_block="pressflow-no-such-block")
    with pytest.raises(ConfigError) as refused:
        settings.db_url
    message = str(refused.value)
    assert message.startswith("PRESSFLOW_DATABASE_URL_BLOCK=pressflow-no-such-block: cannot read that Prefect Secret block")
    assert "\n" not in message


def test_prefect_yaml_gives_flow_runs_their_output_and_models_folders():
    """The work pool definition every deployment uses sets the flow runs' environment."""
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    pool = project["definitions"]["work_pools"]["pressflow_pool"]
    assert pool["job_variables"]["env"] == {"PRESSFLOW_OUT": "{{ $PWD }}/outputs",
                                            "ARGOS_PACKAGES_DIR": "{{ $HOME }}/.local/share/argos-translate/packages",
                                            # heartbeats, so that a run whose process died is marked Crashed
                                            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    for deployment in project["deployments"]:
        assert deployment["work_pool"] == pool, deployment["name"]
