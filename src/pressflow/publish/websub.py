"""Telling a WebSub hub which feeds changed (https://www.w3.org/TR/websub/).

The hub fetches each changed feed and pushes it to its subscribers. A hub that is down, refuses
or is too slow costs subscribers only the speed-up (they still poll), so it is a warning in the
run's summary, never a failed publish.

httpx's timeouts bound each connect, read and write, not a request: a hub that answers one byte
every few seconds never trips them. So the pings of a publish run under one deadline for them
all (anyio's cancel scope, which cancels whatever request is under way and closes its
connection), in an event loop of their own on a worker thread, whatever the caller runs in.
"""

from __future__ import annotations

from .model import PublishReport

TIMEOUT_SECONDS = 10  # any one connect, read or write
BUDGET_SECONDS = 20  # every ping of a publish together: a publish never waits longer on the hub


def notify(hub: str, report: PublishReport) -> None:
    """POST `hub.mode=publish` with `hub.url=` each changed feed, one request per feed, all
    within BUDGET_SECONDS; what the hub did not answer in time is one warning."""
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    # A thread of its own: anyio.run needs one without a running event loop (the review page,
    # a Prefect task or a test may call publish from inside one).
    with ThreadPoolExecutor(1, thread_name_prefix="websub") as pool:
        pool.submit(anyio.run, _notify, hub, report).result()


async def _notify(hub: str, report: PublishReport) -> None:
    import anyio
    import httpx  # only where a hub is configured: importing it costs every command ~0.1 s

    feeds = list(report.feeds_changed)
    answered = 0
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        with anyio.move_on_after(BUDGET_SECONDS) as deadline:
            for url in feeds:
                try:
                    response = await client.post(hub, data={"hub.mode": "publish", "hub.url": url})
                except httpx.HTTPError as exc:
                    report.warnings.append(f"WebSub hub {hub} did not answer for {url}: {exc or type(exc).__name__}")
                else:
                    if not response.is_success:
                        report.warnings.append(f"WebSub hub {hub} answered {response.status_code} for {url}")
                answered += 1
    if deadline.cancelled_caught:
        report.warnings.append(f"WebSub hub {hub} did not answer within {BUDGET_SECONDS} s (all pings of a publish "
                               f"together); {len(feeds) - answered} changed feed(s) not confirmed: subscribers "
                               "will poll them")
