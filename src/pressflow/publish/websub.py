"""Telling a WebSub hub which feeds changed (https://www.w3.org/TR/websub/).

The hub fetches each changed feed and pushes it to its subscribers. A hub that is down or
refuses costs subscribers only the speed-up (they still poll), so it is a warning in the run's
summary, never a failed publish.
"""

from __future__ import annotations

from .model import PublishReport

TIMEOUT_SECONDS = 10


def notify(hub: str, report: PublishReport) -> None:
    """POST `hub.mode=publish` with `hub.url=` each changed feed, one request per feed."""
    import httpx  # only where a hub is configured: importing it costs every command ~0.1 s

    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        for url in report.feeds_changed:
            try:
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": url})
            except httpx.HTTPError as exc:
                report.warnings.append(f"WebSub hub {hub} did not answer for {url}: {exc or type(exc).__name__}")
                continue
            if not response.is_success:
                report.warnings.append(f"WebSub hub {hub} answered {response.status_code} for {url}")
