"""Publishing with the site address left at its loopback default says so, once a run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pressflow.cli import app
from pressflow.core.config import Settings

from conftest import EVENTS


def run(tmp_path, monkeypatch, site_url=None):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    if site_url is None:
        monkeypatch.delenv("PRESSFLOW_SITE_URL", raising=False)
    else:
        monkeypatch.setenv("PRESSFLOW_SITE_URL", site_url)
    result = CliRunner().invoke(app, ["run", str(EVENTS / "2021-09-12-green-aral-sea-office.yaml"), "--out",
                                      str(tmp_path / "out"), "--auto-approve"], env={"PRESSFLOW_AUTO_APPROVE_SOURCE": "1"})
    return [line for line in result.stderr.splitlines() if "PRESSFLOW_SITE_URL" in line], result


@pytest.mark.parametrize("site_url, shown", [(None, "is not set"), ("http://localhost:8000", "is http://localhost:8000"),
                                             ("http://127.0.0.1:8000", "is http://127.0.0.1"), ("http://[::1]/", "is http://[::1]")])
def test_a_loopback_or_unset_site_address_is_one_warning(tmp_path, monkeypatch, site_url, shown, no_prefect_server):
    lines, result = run(tmp_path, monkeypatch, site_url)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"warning: PRESSFLOW_SITE_URL {shown}") and "readers cannot reach" in lines[0]


def test_a_public_site_address_is_no_warning(tmp_path, monkeypatch, no_prefect_server):
    lines, result = run(tmp_path, monkeypatch, "https://press.example.org")
    assert lines == [] and result.exit_code == 0, result.output


def test_the_settings_say_it_too():
    assert Settings(site_url="https://press.example.org").site_url_warning() is None
    assert "0.0.0.0" in Settings(site_url="http://0.0.0.0:8000").site_url_warning()
