"""Benchmark: delivery's exactly-once bookkeeping against a bare client loop.

    python bench/deliver.py                 # 1,000 posts
    python bench/deliver.py --posts 200

Starts the local PDS of the tests (tests/tools/pds, on loopback, data in a temporary folder),
makes two accounts, and in the same run:
- pressflow: N releases in the outbox, one Bluesky post each (text, hashtag and link facets,
  a link card, `langs`), delivered by the runner (ledger rows claimed and committed before each
  send, SQLite store);
- bare: the same N records created with the `atproto` client in a plain loop
  (`com.atproto.repo.createRecord`, same record shape, a record key of its own).
Time per post for each, measured between successive posts; prints the medians and their ratio
`deliver_vs_bare=` (target: at most 1.3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from pds_support import create_account, list_posts, start_pds, stop_pds, write_outbox  # noqa: E402

SITE = "https://press.example.org"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=1000)
    args = parser.parse_args()
    from atproto import Client

    from pressflow.core.config import Settings
    from pressflow.deliver.bluesky import Bluesky, facets, tid
    from pressflow.deliver.config import Account
    from pressflow.deliver.runner import Runner

    process, base, data = start_pds()
    try:
        work = Path(tempfile.mkdtemp(prefix="pressflow-bench-deliver-"))
        n = args.posts
        texts = [f"Release {i}: the forum opens #science {SITE}/site/en/r{i:05d}.html" for i in range(n)]

        # bare: the same creates in a plain loop
        did_bare = create_account(base, "barebench.test")
        client = Client(base_url=base)
        client.login("barebench.test", "pw-test", fetch_bsky_profile=False)
        bare: list[float] = []
        for i, text in enumerate(texts):
            start = time.perf_counter()
            rkey = tid(time.time_ns() // 1000, i & 0x3FF)
            record = {"$type": "app.bsky.feed.post", "text": text, "langs": ["en"], "facets": facets(text),
                      "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                      "embed": {"$type": "app.bsky.embed.external",
                                "external": {"uri": f"{SITE}/site/en/r{i:05d}.html", "title": f"r{i:05d} title en",
                                             "description": ""}}}
            client.com.atproto.repo.create_record({"repo": did_bare, "collection": "app.bsky.feed.post",
                                                   "rkey": rkey, "record": record, "validate": True})
            bare.append(time.perf_counter() - start)

        # pressflow: the runner over the outbox
        did = create_account(base, "pressbench.test")
        out = work / "out"
        for i, text in enumerate(texts):
            write_outbox(out, f"r{i:05d}", {"en": {"bluesky": text}}, site=SITE)
        settings = Settings(out_dir=out, site_url=SITE, database_url=None, database_url_block=None)
        account = Account(channel="bluesky", languages="*", service=base, handle="pressbench.test",
                          password_env="UNUSED", secret="pw-test")
        stamps: list[float] = []
        runner = Runner(settings, [account], on_event=lambda name, row: stamps.append(time.perf_counter()))
        start = time.perf_counter()
        report = runner.run()
        total = time.perf_counter() - start
        assert len(report.sent) == n, report.summary()
        ours = [b - a for a, b in zip([start] + stamps[:-1], stamps)]
        assert len(list_posts(base, did)) == n

        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        print(f"posts={n}")
        print(f"bare_median_ms={m_bare * 1000:.2f} bare_total_s={sum(bare):.2f}")
        print(f"deliver_median_ms={m_ours * 1000:.2f} deliver_total_s={total:.2f} (outbox read and ledger included)")
        print(f"deliver_vs_bare={m_ours / m_bare:.2f}")
    finally:
        stop_pds(process, data)


if __name__ == "__main__":
    main()
