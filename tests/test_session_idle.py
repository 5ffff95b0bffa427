"""Review page sign-ins end after PRESSFLOW_SESSION_IDLE_MINUTES without a request, and 12 hours
after they began whatever happens (TestClient over the real app and a real SQLite store)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from pressflow.drafts import reviewers
from pressflow.core.config import Settings
from pressflow.review_app import create_app
from pressflow.review_app.publishing import PublishMode

from test_review_security import PASSWORD, sign_in


@pytest.fixture
def clock(monkeypatch):
    """The sign-in sessions' clock (reviewers.utcnow), moved on by hand."""
    now = [dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.timezone.utc)]
    monkeypatch.setattr(reviewers, "utcnow", lambda: now[0])

    def advance(**delta):
        now[0] += dt.timedelta(**delta)
    return advance


def client_for(settings: Settings) -> TestClient:
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    return TestClient(create_app(settings, PublishMode(on_approve=False, via_prefect=False)), follow_redirects=False)


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_a_sign_in_left_unused_ends_after_the_idle_timeout(settings, clock):
    assert settings.session_idle_minutes == 30  # the documented default
    client = client_for(settings)
    assert sign_in(client).status_code == 303 and signed_in(client)
    clock(minutes=29)
    assert signed_in(client)  # a request: the idle time starts again
    clock(minutes=29)
    assert signed_in(client)
    clock(minutes=31)
    assert not signed_in(client)


def test_a_sign_in_in_use_still_ends_twelve_hours_after_it_began(settings, clock):
    client = client_for(settings)
    sign_in(client)
    for _ in range(11 * 3):
        clock(minutes=20)
        assert signed_in(client)
    clock(minutes=59)
    assert not signed_in(client)


def test_the_idle_timeout_is_configurable(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("PRESSFLOW_SESSION_IDLE_MINUTES", "5")
    settings = Settings(out_dir=tmp_path / "out")
    client = client_for(settings)
    sign_in(client)
    clock(minutes=4)
    assert signed_in(client)
    clock(minutes=6)
    assert not signed_in(client)
