"""Benchmark: publishing costs what changed, not the archive.

    python bench/publish.py                        # archives of 100, 2,000, 10,000 releases x 9 languages
    python bench/publish.py --sizes 100 500 --repeats 3 --hugo-releases 500
    python bench/publish.py --sizes 100 --dir /dev/shm     # in memory: the disk left out of both sides

First, a full first publish of --hugo-releases releases in one language (`pressflow publish`, a
fresh process, as users run it; and the library call alone), against Hugo building the same
releases (pages, RSS, sitemap) from Markdown files, medians of 3 each, per page:
`publish_vs_hugo=`. For where the difference lies, also against Hugo writing the eight
outbound files pressflow writes beside each page (`publish_vs_hugo_same_files=`), and what Hugo
itself scores writing them (`hugo_same_files_vs_hugo=`). Hugo is Debian's `hugo` package
(`apt-get install hugo`); without it that part is skipped, saying so.

Then, for each archive size N, a store of N releases approved in 9 languages (drafts written
straight into the store, as a reviewer's approval leaves them; no model runs; in a process of
its own), published once (the archive's first publish, in its own process). Then, 3 times, each
archive in turn, a fresh process times an unchanged re-publish and a publish of ONE new release
(approved between the two, outside the clock). Figures are medians of 3; ratios compare N to
the smallest N, measured in the same run. Peak memory is the getrusage maximum of each process.

Targets: one new release at 10,000 <= 1.5x at 100; unchanged re-publish at 10,000 <= 1.5x at
100; publish_vs_hugo <= 1.5; peak memory at 10,000 x 9 < 1 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("en", "es", "fr", "pt", "ru", "zh", "ar", "de", "it")
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
PARAGRAPH = ("Delegates from the member institutions met to agree on joint research in water, energy and "
             "climate, with training for young scientists and a network of field stations. ")


def markdown(i: int, lang: str) -> str:
    body = "\n\n".join(PARAGRAPH * 3 for _ in range(4))
    return (f"# Forum {i} on water and energy ({lang})\n\nSeptember 1, 2021. Delegates met for session {i}.\n\n"
            f"{body}\n\n## About ANSO\n\nThe Alliance of International Science Organizations.\n")


def add_releases(settings, numbers: range, languages=LANGUAGES) -> None:
    """Approved drafts of these releases in every language, straight into the store."""
    from pressflow.core import db
    from pressflow.drafts import store
    from sqlalchemy import insert, select

    now = db.utcnow()
    with db.session_scope(settings.db_url) as session:
        releases, drafts = [], []
        for i in numbers:
            slug = f"release-{i:05d}"
            releases.append({"slug": slug, "title": f"Forum {i}", "date": dt.date(2021, 1 + i % 12, 1 + i % 28),
                             "publish_at": None, "fingerprint": f"{i:032d}", "source_file": None,
                             "record": {"id": slug, "title": f"Forum {i}", "date": "2021-09-01",
                                        "summary": "Delegates met.", "tags": ["science"]},
                             "created_at": now, "updated_at": now})
            for lang in languages:
                for channel, text in [("release", markdown(i, lang))] + [
                        (c, f"Forum {i} ({lang}): delegates met. https://example.org/{slug}\n")
                        for c in ("x", "mastodon", "bluesky", "linkedin")]:
                    drafts.append({"release_slug": slug, "lang": lang, "channel": channel, "fingerprint": f"{i:032d}",
                                   "source_text": "", "text": text, "status": store.APPROVED, "revision": 1,
                                   "approved_revision": 1,
                                   "qa": [], "meta": {}, "reviewer": "bench", "created_at": now, "updated_at": now})
        for chunk in db.in_batches(releases, 2000):
            session.execute(insert(store.Release), chunk)
        for chunk in db.in_batches(drafts, 5000):
            session.execute(insert(store.Draft), chunk)
        # Each draft's first revision, the one approved: what publishing reads.
        from sqlalchemy import literal

        D = store.Draft
        slugs = [r["slug"] for r in releases]
        for chunk in db.in_batches(slugs, 500):
            session.execute(insert(store.Revision).from_select(
                ["draft_id", "number", "text", "author", "created_at"],
                select(D.id, D.revision, D.text, literal("bench"), D.created_at)
                .where(D.release_slug.in_(chunk))))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_seed(out: str, n: int, languages: int) -> dict:
    """Build the archive's store, 500 releases at a time (its own process: it is not publishing)."""
    from pressflow.core.config import Settings

    settings = Settings(out_dir=Path(out))
    for start in range(0, n, 500):
        add_releases(settings, range(start, min(n, start + 500)), LANGUAGES[:languages])
    return {}


def child_first(out: str, n: int, languages: int) -> dict:
    """Publish the archive once (its first publish)."""
    from pressflow.core.config import Settings
    from pressflow.publish import publish

    settings = Settings(out_dir=Path(out))
    start = time.perf_counter()
    publish(settings, now=T0)
    return {"first": time.perf_counter() - start, "peak_mb": peak_mb()}


def child_runs(out: str, number: int, repeats: int) -> dict:
    """Time unchanged re-publishes and publishes of one new release (numbered `number` on) into the archive."""
    from pressflow.core.config import Settings
    from pressflow.publish import publish

    settings = Settings(out_dir=Path(out))
    publish(settings, now=T0)  # warm: imports, templates, the store's pages in the OS cache
    unchanged, one_new = [], []
    for rep in range(repeats):
        start = time.perf_counter()
        report = publish(settings, now=T0 + dt.timedelta(minutes=1 + 2 * rep))
        unchanged.append(time.perf_counter() - start)
        assert not report.releases, report.releases
        add_releases(settings, range(number + rep, number + rep + 1))
        start = time.perf_counter()
        report = publish(settings, now=T0 + dt.timedelta(minutes=2 + 2 * rep))
        one_new.append(time.perf_counter() - start)
        assert list(report.releases) == [f"release-{number + rep:05d}"], report.releases
    return {"unchanged": unchanged, "one_new": one_new, "peak_mb": peak_mb()}


def run_child(*args) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"child {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# Hugo writing the files pressflow writes for a release (its page, the outbound HTML, Markdown
# and text, four posts and a manifest), as output formats of each page.
HUGO_SAME_FILES = """
[mediaTypes."text/markdown"]
suffixes = ["md"]
[outputs]
page = ["HTML", "standalone", "markdown", "text", "x", "mastodon", "bluesky", "linkedin", "manifest"]
[outputFormats.standalone]
mediaType = "text/html"
baseName = "press-release"
isHTML = true
[outputFormats.markdown]
mediaType = "text/markdown"
baseName = "press-release"
isPlainText = true
[outputFormats.manifest]
mediaType = "application/json"
baseName = "manifest"
isPlainText = true
""" + "".join(f'[outputFormats.{name}]\nmediaType = "text/plain"\nbaseName = "{base}"\nisPlainText = true\n'
              for name, base in [("text", "press-release"), ("x", "x"), ("mastodon", "mastodon"),
                                 ("bluesky", "bluesky"), ("linkedin", "linkedin")])
PAGE = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head>'
        '<body><main><article>{{ .Content }}</article></main></body></html>\n')


def hugo_site(folder: Path, n: int, same_files: bool = False) -> Path:
    """The same releases as a Hugo site: Markdown pages, RSS and sitemap (Hugo's own templates);
    `same_files`: each page also in the outbound formats pressflow writes."""
    site = folder / ("hugo-same-files" if same_files else "hugo")
    layouts = site / "layouts" / "_default"
    (site / "content" / "releases").mkdir(parents=True)
    layouts.mkdir(parents=True)
    (site / "config.toml").write_text('baseURL = "http://127.0.0.1:8000/"\nlanguageCode = "en"\ntitle = "ANSO"\n'
                                      'disableKinds = ["taxonomy", "term"]\n' + (HUGO_SAME_FILES if same_files else ""))
    (layouts / "single.html").write_text(PAGE)
    (layouts / "list.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head><body><ul>'
        '{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul></body></html>\n')
    if same_files:
        (layouts / "single.standalone.html").write_text(PAGE)
        (layouts / "single.markdown.md").write_text("{{ .RawContent }}\n")
        (layouts / "single.text.txt").write_text("{{ .Plain }}\n")
        for channel in ("x", "mastodon", "bluesky", "linkedin"):
            (layouts / f"single.{channel}.txt").write_text("{{ .Title }}: {{ .Summary | plainify }} {{ .Permalink }}\n")
        (layouts / "single.manifest.json").write_text(
            '{"release": {{ .File.BaseFileName | jsonify }}, "title": {{ .Title | jsonify }}, "files": ['
            '{{ range $i, $f := .OutputFormats }}{{ if $i }}, {{ end }}{"path": {{ $f.RelPermalink | jsonify }}, '
            '"sha256": {{ sha256 $.RawContent | jsonify }}}{{ end }}]}\n')
    for i in range(n):
        text = markdown(i, "en").split("\n", 1)[1]
        (site / "content" / "releases" / f"release-{i:05d}.md").write_text(
            f'---\ntitle: "Forum {i} on water and energy"\ndate: 2021-09-01\nsummary: "Delegates met."\n---\n{text}')
    return site


def time_hugo(site: Path, destination: Path) -> float:
    """Hugo building `site` into a new folder: nothing is deleted before the clock starts (on
    this disk, creating files just after deleting many is several times slower, for both sides)."""
    start = time.perf_counter()
    subprocess.run(["hugo", "--quiet", "--source", str(site), "--destination", str(destination)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def time_publish_command(out: Path) -> float:
    """`pressflow publish` as a user runs it: a fresh process, imports and all."""
    command = [str(Path(sys.executable).with_name("pressflow")), "publish", "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def compare_with_hugo(tmp: Path, n: int, repeats: int) -> None:
    """A full first publish of `n` releases in one language against Hugo building the same
    releases, each side a command in a fresh process, alternating, into folders never used before."""
    site, same_files = hugo_site(tmp, n), hugo_site(tmp, n, same_files=True)
    hugo, hugo_same, ours, ours_call = [], [], [], []
    for rep in range(repeats):  # alternate, so a machine getting busier weighs on every side
        hugo.append(time_hugo(site, tmp / f"hugo-public-{rep}"))
        hugo_same.append(time_hugo(same_files, tmp / f"hugo-same-files-public-{rep}"))
        run_child("seed", tmp / f"one-command-{rep}", n, 1)
        ours.append(time_publish_command(tmp / f"one-command-{rep}"))
        run_child("seed", tmp / f"one-call-{rep}", n, 1)
        ours_call.append(run_child("first", tmp / f"one-call-{rep}", n, 1)["first"])
    h, hs, p, pc = (statistics.median(t) for t in (hugo, hugo_same, ours, ours_call))
    print(f"full first publish of {n} releases in one language: `pressflow publish` {p:.2f} s ({1000 * p / n:.2f} ms "
          f"a page; the library call alone {pc:.2f} s), `hugo` {h:.2f} s ({1000 * h / n:.2f} ms a page), hugo writing "
          f"pressflow's 9 files a release {hs:.2f} s  [pressflow {ours}, call {ours_call}, hugo {hugo}, "
          f"hugo same files {hugo_same}]")
    print(f"publish_vs_hugo={p / h:.2f} (per page, command against command; target <= 1.5)")
    print(f"publish_vs_hugo_same_files={p / hs:.2f} (Hugo also writing the outbound files of each release)")
    print(f"hugo_same_files_vs_hugo={hs / h:.2f} (Hugo itself, writing the files a pressflow release has, against "
          f"the publish_vs_hugo baseline: what any tool writing them would score there)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 2000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--languages", type=int, default=len(LANGUAGES))
    parser.add_argument("--hugo-releases", type=int, default=2000)
    parser.add_argument("--dir", help="where archives and Hugo sites are built (default: the system's temporary "
                                      "folder); a tmpfs such as /dev/shm leaves the disk out of both sides")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, out, n, extra = args.child[0], args.child[1], int(args.child[2]), int(args.child[3])
        child = {"seed": child_seed, "first": child_first, "runs": child_runs}[kind]
        print(json.dumps(child(out, n, extra)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-publish-", dir=args.dir) as tmp:
        # Hugo first, while the disk has only its own files to write.
        if shutil.which("hugo"):
            compare_with_hugo(Path(tmp), args.hugo_releases, args.repeats)
        else:
            print("hugo not installed (Debian: apt-get install hugo): publish_vs_hugo skipped")
        results = {}
        for n in args.sizes:  # every archive first, then the runs of all of them, alternating
            out = Path(tmp) / f"n{n}"
            run_child("seed", out, n, args.languages)
            first = run_child("first", out, n, args.languages)
            results[n] = {"first": first["first"], "first_peak_mb": first["peak_mb"], "runs_peak_mb": 0.0,
                          "unchanged_runs": [], "one_new_runs": []}
            print(f"N={n} x {args.languages}: first publish {first['first']:.1f} s (peak {first['peak_mb']:.0f} MB)",
                  flush=True)
        # One process per archive and repetition, the archives in turn: a disk or machine getting
        # busier for a while (this one's is shared) weighs on every size, not on the last one.
        # Archives stay until the end (about 4 GB at 10,000 x 9): on this disk, creating files
        # just after deleting many is several times slower for a while.
        for rep in range(args.repeats):
            for n in args.sizes:
                runs = run_child("runs", Path(tmp) / f"n{n}", n + rep, 1)
                r = results[n]
                r["unchanged_runs"] += runs["unchanged"]
                r["one_new_runs"] += runs["one_new"]
                r["runs_peak_mb"] = max(r["runs_peak_mb"], runs["peak_mb"])
        for n in args.sizes:
            r = results[n]
            r["unchanged"], r["one_new"] = statistics.median(r["unchanged_runs"]), statistics.median(r["one_new_runs"])
            print(f"N={n} x {args.languages}: unchanged re-publish {r['unchanged']:.3f} s; one new release "
                  f"{r['one_new']:.3f} s (peak {r['runs_peak_mb']:.0f} MB)  "
                  f"[unchanged {r['unchanged_runs']}, one new {r['one_new_runs']}]")
        small, large = min(args.sizes), max(args.sizes)
        print(f"one_new_ratio={results[large]['one_new'] / results[small]['one_new']:.2f} "
              f"(N={large} over N={small}; target <= 1.5)")
        print(f"unchanged_ratio={results[large]['unchanged'] / results[small]['unchanged']:.2f} "
              f"(N={large} over N={small}; target <= 1.5)")
        print(f"peak_mb={max(results[large]['first_peak_mb'], results[large]['runs_peak_mb']):.0f} "
              f"(N={large} x {args.languages}; first publish and later runs; target < 1024)")

if __name__ == "__main__":
    main()
