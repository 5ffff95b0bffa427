"""Delivery to Bluesky on a real PDS on loopback: once, across lost answers, SIGKILL, rate
limits, withdrawal and corrections (counted with com.atproto.repo.listRecords)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pds_support import Proxy, create_account, list_posts, start_pds, stop_pds, withdraw, write_outbox
from pressflow.core.config import Settings
from pressflow.deliver import ledger as L
from pressflow.deliver.config import Account
from pressflow.deliver.runner import Runner, resolve

SITE = "https://press.example.org"
_handles = itertools.count()


@pytest.fixture(scope="module")
def pds():
    process, base, data = start_pds()
    yield base
    stop_pds(process, data)


@pytest.fixture
def bsky(pds, tmp_path):
    handle = f"press{next(_handles)}.test"
    did = create_account(pds, handle)
    proxy = Proxy(pds)
    settings = Settings(out_dir=tmp_path / "out", site_url=SITE, database_url=None, database_url_block=None)
    account = Account(channel="bluesky", languages="*", service=proxy.url, handle=handle,
                      password_env="UNUSED", secret="pw-test")
    yield {"pds": pds, "did": did, "proxy": proxy, "settings": settings, "account": account, "out": settings.out_dir}
    proxy.close()


def run(b, **kw):
    return Runner(b["settings"], [b["account"]], **kw).run()


def posts(b):
    return list_posts(b["pds"], b["did"])


def test_sends_each_language_once_with_language_tag_facets_and_image(bsky):
    write_outbox(bsky["out"], "forum", {
        "en": {"bluesky": f"Forum opens #science {SITE}/site/en/forum.html"},
        "zh": {"bluesky": f"论坛开幕 #科学 {SITE}/site/zh/forum.html"},
        "ar": {"bluesky": f"افتتاح المنتدى #علوم {SITE}/site/ar/forum.html"},
    }, site=SITE, image_alt={"en": "A hall", "zh": "大厅", "ar": "قاعة"})
    events = []
    report = run(bsky, on_event=lambda name, row: events.append(name))
    assert len(report.sent) == 3 and report.ok
    records = {r.value.langs[0]: r.value for r in posts(bsky)}
    assert set(records) == {"en", "zh", "ar"}
    zh = records["zh"]
    text = zh.text.encode()
    spans = {f.features[0].py_type.split("#")[1]: text[f.index.byte_start:f.index.byte_end].decode() for f in zh.facets}
    assert spans == {"tag": "#科学", "link": f"{SITE}/site/zh/forum.html"}
    assert zh.embed.images[0].alt == "大厅"
    assert events == ["pressflow.delivery.sent"] * 3
    again = run(bsky)
    assert not again.sent and len(posts(bsky)) == 3


def test_lost_answer_is_confirmed_not_sent_twice(bsky):
    write_outbox(bsky["out"], "lost", {"en": {"bluesky": "One post"}}, site=SITE)
    bsky["proxy"].faults.append(("com.atproto.repo.createRecord", "drop"))
    report = run(bsky)
    assert len(report.sent) == 1, report
    assert len(posts(bsky)) == 1
    row = L.Ledger(bsky["settings"].db_url).rows()[0]
    assert row.state == L.SENT and row.attempts == 1


def test_rate_limit_postpones_then_sends(bsky):
    write_outbox(bsky["out"], "busy", {"en": {"bluesky": "First"}, "fr": {"bluesky": "Premier"}}, site=SITE)
    bsky["proxy"].faults.append(("com.atproto.repo.createRecord", "429"))
    report = run(bsky)
    assert not report.sent and not report.failed and len(report.postponed) == 2
    assert {r.state for r in L.Ledger(bsky["settings"].db_url).rows()} == {L.POSTPONED}
    assert run(bsky).postponed and not posts(bsky)  # not before the reset time
    time.sleep(2.5)
    assert len(run(bsky).sent) == 2 and len(posts(bsky)) == 2


def test_withdrawal_deletes_and_republication_posts_again(bsky):
    write_outbox(bsky["out"], "embargo", {"en": {"bluesky": "Out"}}, site=SITE)
    run(bsky)
    withdraw(bsky["out"], "embargo")
    report = run(bsky)
    assert len(report.deleted) == 1 and posts(bsky) == []
    # a post deleted on the platform already counts as deleted
    write_outbox(bsky["out"], "embargo", {"en": {"bluesky": "Out"}}, site=SITE)
    assert len(run(bsky).sent) == 1 and len(posts(bsky)) == 1


def test_correction_deletes_and_posts_again(bsky):
    write_outbox(bsky["out"], "fix", {"en": {"bluesky": "Teh forum"}}, site=SITE)
    run(bsky)
    write_outbox(bsky["out"], "fix", {"en": {"bluesky": "The forum"}}, site=SITE)
    report = run(bsky)
    assert len(report.sent) == 1
    assert [r.value.text for r in posts(bsky)] == ["The forum"]
    states = [r.state for r in L.Ledger(bsky["settings"].db_url).rows()]
    assert states == [L.DELETED, L.SENT]


def test_thread_parts_reply_to_the_previous_part(bsky):
    write_outbox(bsky["out"], "thread", {"en": {"bluesky": "Part one\n---\nPart two\n---\nPart three"}}, site=SITE)
    assert len(run(bsky).sent) == 3
    records = sorted(posts(bsky), key=lambda r: r.value.created_at)
    assert [r.value.text for r in records] == ["Part one", "Part two", "Part three"]
    assert records[1].value.reply.parent.uri == records[0].uri
    assert records[2].value.reply.parent.uri == records[1].uri
    assert records[2].value.reply.root.uri == records[0].uri


@pytest.mark.parametrize("changed", [0, 1])
def test_a_changed_thread_part_is_posted_again_with_every_part_after_it(bsky, changed):
    parts = ["Part one", "Part two", "Part three"]
    write_outbox(bsky["out"], "threadfix", {"en": {"bluesky": "\n---\n".join(parts)}}, site=SITE)
    assert len(run(bsky).sent) == 3
    before = {r.value.text: r.uri for r in posts(bsky)}
    parts[changed] += ", corrected"
    write_outbox(bsky["out"], "threadfix", {"en": {"bluesky": "\n---\n".join(parts)}}, site=SITE)
    report = run(bsky)
    assert report.ok and len(report.deleted) == 3 - changed and len(report.sent) == 3 - changed
    records = sorted(posts(bsky), key=lambda r: r.value.created_at)
    assert [r.value.text for r in records] == parts  # the old parts are gone from the PDS
    uris = [r.uri for r in records]
    assert uris[:changed] == [before[p] for p in parts[:changed]]  # parts before the change stay
    assert not set(uris[changed:]) & set(before.values())
    for previous, record in zip(records, records[1:]):  # every reply's parent and root exist
        assert record.value.reply.parent.uri == previous.uri
        assert record.value.reply.root.uri == records[0].uri
    ledger = L.Ledger(bsky["settings"].db_url)
    standing = sorted((r.part, r.remote_id) for r in ledger.rows() if r.state == L.SENT)
    assert [remote for _, remote in standing] == uris
    assert sum(r.state == L.DELETED for r in ledger.rows()) == 3 - changed
    again = run(bsky)  # settled: nothing is posted or deleted again
    assert not again.sent and not again.deleted and len(posts(bsky)) == 3


def test_over_limit_is_never_sent(bsky):
    write_outbox(bsky["out"], "long", {"en": {"bluesky": "x" * 301}}, site=SITE)
    report = run(bsky)
    assert len(report.failed) == 1 and "limit" in report.failed[0].last_error
    assert posts(bsky) == []


def test_unknown_is_settled_by_a_person(bsky):
    write_outbox(bsky["out"], "unsure", {"en": {"bluesky": "Maybe"}}, site=SITE)
    ledger = L.Ledger(bsky["settings"].db_url)
    runner = Runner(bsky["settings"], [bsky["account"]])
    channel = runner.channel(bsky["account"])
    from pressflow.deliver.base import Unconfirmable

    def cannot_tell(*a, **k):
        raise Unconfirmable("cannot tell")
    channel.send = cannot_tell
    assert len(runner.run().unknown) == 1
    row = ledger.rows()[0]
    assert row.state == L.UNKNOWN and not posts(bsky)
    assert len(run(bsky).unknown) == 1 and not posts(bsky)  # never sent while unknown
    resolve(bsky["settings"], row.id, not_sent=True)
    assert len(run(bsky).sent) == 1 and len(posts(bsky)) == 1


def test_loopback_site_is_refused_for_a_public_service(tmp_path):
    settings = Settings(out_dir=tmp_path, site_url="http://127.0.0.1:8000", database_url=None, database_url_block=None)
    account = Account(channel="bluesky", languages="*", service="https://bsky.social", handle="a.bsky.social",
                      password_env="X", secret="s")
    report = Runner(settings, [account]).run()
    assert report.errors and "refusing" in report.errors[0]


def test_sigkill_mid_delivery_then_rerun(bsky, tmp_path):
    count = 12
    for n in range(count):
        write_outbox(bsky["out"], f"kill{n:02d}", {"en": {"bluesky": f"Post {n}"}}, site=SITE)
    channels = tmp_path / "channels.yaml"
    channels.write_text(f"- channel: bluesky\n  languages: '*'\n  service: {bsky['proxy'].url}\n"
                        f"  handle: {bsky['account'].handle}\n  password_env: PDS_PASSWORD\n")
    bsky["proxy"].faults.append(("com.atproto.repo.createRecord", "always-delay"))
    env = {**os.environ, "PDS_PASSWORD": "pw-test", "PRESSFLOW_SITE_URL": SITE,
           "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    command = [sys.executable, "-m", "pressflow.cli", "deliver", "--out", str(bsky["out"]), "--channels", str(channels)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ledger = L.Ledger(bsky["settings"].db_url)
    deadline = time.time() + 60
    while time.time() < deadline:  # kill while a post is on the PDS but its row still says sending
        rows = ledger.rows() if (bsky["out"] / "state" / "pressflow.db").exists() else []
        if sum(r.state == L.SENT for r in rows) >= 2 and any(r.state == L.SENDING for r in rows):
            time.sleep(0.5)  # inside the delayed answer: the record exists
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = [r for r in ledger.rows() if r.state == L.SENDING]
    assert left, "killed too late"
    bsky["proxy"].faults.clear()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    texts = sorted(r.value.text for r in posts(bsky))
    assert texts == sorted(f"Post {n}" for n in range(count))  # none twice, none lost
    assert {r.state for r in ledger.rows()} == {L.SENT}


def test_deliver_flow_runs_a_task_per_delivery_and_emits_events(prefect_harness, bsky, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from pressflow.flows import deliver as deliver_module
    from pressflow.flows import using_settings

    emitted = []
    real = deliver_module.emit_delivery_event
    monkeypatch.setattr(deliver_module, "emit_delivery_event", lambda name, row: (emitted.append(name), real(name, row)))
    write_outbox(bsky["out"], "flowed", {"en": {"bluesky": "A\n---\nB"}}, site=SITE)
    channels = tmp_path / "channels.yaml"
    channels.write_text(f"- channel: bluesky\n  languages: [en]\n  service: {bsky['proxy'].url}\n"
                        f"  handle: {bsky['account'].handle}\n  password_env: PDS_PASSWORD\n")
    monkeypatch.setenv("PDS_PASSWORD", "pw-test")
    with using_settings(bsky["settings"]):
        state = deliver_module.deliver_flow(out_dir=str(bsky["out"]), channels=str(channels), return_state=True)
    assert state.is_completed() and state.name == "Completed"
    assert emitted == ["pressflow.delivery.sent"] * 2 and len(posts(bsky)) == 2
    import asyncio

    async def task_names():
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            return sorted(r.name.rsplit("-", 1)[0] for r in runs)
    names = asyncio.run(task_names())
    assert len(names) == 2 and all(n.startswith("deliver flowed en") for n in names)
