"""Benchmark: prepare and publish N synthetic releases in 8 target languages, with and without Prefect.

    python bench/pipeline.py                 # N = 100 and 1,000, 3 repetitions (~40 min on 2 cores)
    python bench/pipeline.py --sizes 50 200 --repeats 1

For each N it runs the same work in two modes, each run in a fresh process and output folder:
"plain" calls the pipeline functions (pipeline.prepare, publish.publish) directly; "flows" runs
the Prefect flows (prepare_flow, publish_flow) against a local Prefect server started before the
clock starts. Both do the same work in the same order (every language planned, then the units
of model work on as many threads as the model cache holds, then storing), so the difference is
Prefect's orchestration overhead. The modes alternate within each repetition, so a machine
getting busier weighs on both; figures are medians over the repetitions. Each process reports its wall
time and its peak resident memory (getrusage of itself; the Prefect server runs in another process
and is reported apart).

Translation uses tiny random-weight Argos packages (pressflow.translate.testmodel), installed into
a bench-local ARGOS_PACKAGES_DIR. Such a model rarely emits </s>, so decoding is capped
(PRESSFLOW_MAX_DECODING_LENGTH, --decoding-length): figures measure the pipeline, not a real model.

Targets: per-release time at the largest N no worse than linear growth from the smallest
(ratio <= 1.2 allows noise), peak memory < 2 GB, Prefect overhead < 10% of wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("es", "fr", "pt", "ru", "zh", "ar", "de", "it")
MODEL_CACHE = ROOT / "build" / "test-models"
WORDS = ("water energy climate health forum science alliance members research students network "
         "summit office training exhibition biodiversity desert ocean agriculture data").split()


def bench_env(home: Path, decoding_length: int) -> dict[str, str]:
    """Isolated homes, set before the child imports argostranslate (it reads them at import)."""
    env = {**os.environ,
           "ARGOS_PACKAGES_DIR": str(home / "argos-packages"), "ARGOS_CHUNK_TYPE": "SPACY",
           "XDG_DATA_HOME": str(home / "xdg-data"), "XDG_CONFIG_HOME": str(home / "xdg-config"),
           "XDG_CACHE_HOME": str(home / "xdg-cache"), "PREFECT_HOME": str(home / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "PRESSFLOW_MAX_DECODING_LENGTH": str(decoding_length), "PRESSFLOW_AUTO_APPROVE_SOURCE": "1"}
    env.pop("PREFECT_API_URL", None)
    return env


def record(i: int) -> str:
    """A synthetic release whose sentences differ from every other's (no translation-memory hits)."""
    w = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(12)]
    languages = ", ".join(LANGUAGES)
    return (f"id: release-{i:05d}\ntitle: Forum {i} on {w[0]} and {w[1]}\ndate: 2021-{1 + i % 12:02d}-{1 + i % 28:02d}\n"
            f"summary: Delegates met for session {i} to discuss {w[2]}, {w[3]} and {w[4]}.\n"
            f"languages: [{languages}]\ntags: [{w[5]}, {w[6]}]\n"
            f"body:\n  - The meeting number {i} agreed on joint work on {w[7]} and {w[8]}.\n"
            f"  - Results of session {i} on {w[9]} follow in spring.\n"
            f"quotes:\n  - speaker: Speaker {i}\n    text: We will share {w[10]} with {w[11]} partners in year {i}.\n")


# --- child processes ------------------------------------------------------------------------------


def child_install() -> None:
    from pressflow.translate import testmodel

    for lang in LANGUAGES:
        testmodel.install_package(testmodel.build_package("en", lang, MODEL_CACHE))


review = 0.0  # seconds spent approving: a reviewer's job, not counted in any figure


def approve_everything(settings) -> float:
    """Stand in for reviewers: approve every draft, so every language publishes. Returns the clock
    at the end, minus the time spent here. One UPDATE, no drafts loaded: reviewers work in their
    own processes, so neither their time nor their memory belongs to this one's figures."""
    global review
    from sqlalchemy import update

    from pressflow import store

    started = time.perf_counter()
    with store.session_scope(settings.db_url) as session:
        session.execute(update(store.Draft).where(store.Draft.status == store.PENDING)
                        .values(status=store.APPROVED, reviewer="bench"))
    review = time.perf_counter() - started
    return started


def child_run(mode: str, records: Path, out: Path) -> None:
    from pressflow.config import Settings

    settings = Settings(out_dir=out)
    server_start = 0.0
    if mode == "flows":
        from prefect.testing.utilities import prefect_test_harness

        started = time.perf_counter()
        harness = prefect_test_harness(server_startup_timeout=120)
        harness.__enter__()
        server_start = time.perf_counter() - started
    started = time.perf_counter()
    if mode == "plain":
        from pressflow import pipeline
        from pressflow.publish import publish
        from pressflow.records import load_records

        loaded = load_records([records])
        prepared = pipeline.prepare(loaded.events, settings)
        failed = prepared.failed
        middle = approve_everything(settings)
        published = publish(settings).releases
    else:
        from flows.prepare import prepare_flow
        from flows.publish import publish_flow

        prepared = prepare_flow(paths=[str(records)], out_dir=str(out))
        failed = prepared["failed"]
        middle = approve_everything(settings)
        published = publish_flow(out_dir=str(out))["releases"]
    end = time.perf_counter() - review
    languages = sorted({lang for langs in published.values() for lang in langs})
    print(json.dumps({"prepare": middle - started, "publish": end - middle, "wall": end - started,
                      "server_start": server_start, "releases": len(published), "languages": languages,
                      "failed": len(failed),
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    if mode == "flows":
        harness.__exit__(None, None, None)


# --- the parent -----------------------------------------------------------------------------------


def run_child(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"child {args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--decoding-length", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="runs per size and mode (medians are reported)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_install() if args.child[0] == "install" else child_run(args.child[0], Path(args.child[1]),
                                                                           Path(args.child[2]))
    home = Path(tempfile.mkdtemp(prefix="pressflow-bench-"))
    (home / "argos-packages").mkdir()
    (home / "xdg-cache" / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True)
    env = bench_env(home, args.decoding_length)
    print(f"pressflow pipeline benchmark: {len(LANGUAGES)} target languages ({', '.join(LANGUAGES)}) + en, "
          f"tiny random-weight test models, decoding capped at {args.decoding_length} tokens "
          f"(PRESSFLOW_MAX_DECODING_LENGTH), {os.cpu_count()} CPUs; {args.repeats} run(s) per size and mode")
    started = time.perf_counter()
    run_child(env, "install")
    print(f"installed {len(LANGUAGES)} test packages in {time.perf_counter() - started:.1f} s (not counted)")
    results: dict[tuple[int, str], dict] = {}
    for n in args.sizes:
        records = home / f"records-{n}"
        records.mkdir()
        for i in range(n):
            (records / f"release-{i:05d}.yaml").write_text(record(i))
        runs: dict[str, list[dict]] = {"plain": [], "flows": []}
        for repeat in range(args.repeats):
            for mode in ("plain", "flows"):
                result = run_child(env, mode, str(records), str(home / f"out-{n}-{mode}-{repeat}"))
                assert result["releases"] == n and result["failed"] == 0, result
                runs[mode].append(result)
                print(f"N={n:>5} {mode:>5} run {repeat + 1}: wall {result['wall']:7.1f} s "
                      f"(prepare {result['prepare']:.1f}, publish {result['publish']:.1f}), "
                      f"peak RSS {result['maxrss_mb']:5.0f} MB, languages published {len(result['languages'])}"
                      + (f", Prefect server start {result['server_start']:.1f} s (not counted)"
                         if mode == "flows" else ""), flush=True)
        for mode, done in runs.items():
            results[(n, mode)] = {key: statistics.median(r[key] for r in done)
                                  for key in ("wall", "prepare", "publish", "maxrss_mb")}
            results[(n, mode)]["peak"] = max(r["maxrss_mb"] for r in done)
    print(f"\nmedians of {args.repeats} run(s):")
    for (n, mode), result in results.items():
        print(f"N={n:>5} {mode:>5}: wall {result['wall']:8.1f} s (prepare {result['prepare']:.1f}, "
              f"publish {result['publish']:.1f}), {1000 * result['wall'] / n:7.1f} ms/release, "
              f"peak RSS {result['peak']:5.0f} MB")
    for n in args.sizes:
        plain, flows = results[(n, "plain")], results[(n, "flows")]
        overhead = (flows["wall"] - plain["wall"]) / flows["wall"]
        print(f"N={n:>5}: Prefect's share of wall time {100 * overhead:5.1f}% (target < 10%); "
              f"peak RSS {max(plain['peak'], flows['peak']):.0f} MB (target < 2048)")
    small, large = min(args.sizes), max(args.sizes)
    for mode in ("plain", "flows"):
        ratio = (results[(large, mode)]["wall"] / large) / (results[(small, mode)]["wall"] / small)
        print(f"{mode:>5}: time per release at N={large} / at N={small} = {ratio:.2f} (target <= 1.2: linear or better)")


if __name__ == "__main__":
    main()
