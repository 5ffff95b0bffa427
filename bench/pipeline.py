"""Benchmark: prepare and publish N synthetic releases in 8 target languages, with and without Prefect.

    python bench/pipeline.py                 # N = 100 and 1,000, 3 repetitions (~40 min on 2 cores)
    python bench/pipeline.py --sizes 50 200 --repeats 1

For each N it runs the same work in two modes, each run in a fresh process and output folder:
"plain" calls the pipeline functions (pipeline.prepare, publish.publish) directly; "flows" runs
the Prefect flows (prepare_flow, publish_flow) against a local Prefect server started (and sent
one request, which a fresh server answers late) before the clock starts. Both do the same work
in the same order (every language planned, then the units of model work on as many threads as
the model cache holds, then storing), so the difference is Prefect's orchestration overhead.
The modes alternate within each repetition, so a machine getting busier weighs on both;
figures are medians over the repetitions. Each process reports its wall time and its peak
resident memory (getrusage of itself; the Prefect server runs in another process and is
reported apart).

Prefect's share is printed two ways: flows minus plain over flows (what the target names, but a
difference of two noisy runs), and the time within a flows run when none of its task runs was
running (from the server's records of the task runs), over that run's wall time: measured
inside one run, so the machine's load changing between runs does not blur it.

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

    from pressflow.core import db
    from pressflow.drafts import store

    started = time.perf_counter()
    with db.session_scope(settings.db_url) as session:
        session.execute(update(store.Draft).where(store.Draft.status == store.PENDING)
                        .values(status=store.APPROVED, reviewer="bench", approved_revision=store.Draft.revision))
    review = time.perf_counter() - started
    return started


def warm_up() -> None:
    """A server that has just started answers its first API request ~0.5 s late (its own lazy
    set-up). A deployment's server has been up for days, so that belongs to starting the
    server, not to running flows. Only the server warms: this client's own once-per-process
    work (its API version check, the first flow's registration) stays on the clock."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.read_flows(limit=1)


def time_in_tasks() -> float:
    """Seconds in which at least one task run was running, from the server's records of this
    process's runs: the union of their start-end spans, so units running side by side count once."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        seen = -1
        for _ in range(60):  # the server records task runs from events, a moment after they end
            runs, page = [], None
            while page is None or len(page) == 200:  # the API's largest page
                page = client.read_task_runs(limit=200, offset=len(runs))
                runs += page
            if len(runs) == seen and all(r.end_time for r in runs):
                break
            seen = len(runs)
            time.sleep(0.5)
    total, covered_to = 0.0, float("-inf")
    for start, end in sorted((r.start_time.timestamp(), r.end_time.timestamp()) for r in runs if r.end_time):
        if end > covered_to:
            total += end - max(start, covered_to)
            covered_to = end
    return total


def child_run(mode: str, records: Path, out: Path) -> None:
    # Both modes start the clock with pressflow's modules imported (the flows import the same
    # ones), so that the time outside tasks is Prefect's and the flows' own, not Python's imports.
    # Only the flows mode imports Prefect: its objects in memory are part of its cost.
    from pressflow.prepare import pipeline
    from pressflow.core.config import Settings
    from pressflow.publish import publish
    from pressflow.records import load_records

    settings = Settings(out_dir=out)
    server_start = 0.0
    if mode == "flows":
        from prefect.testing.utilities import prefect_test_harness

        started = time.perf_counter()
        harness = prefect_test_harness(server_startup_timeout=120)
        harness.__enter__()
        warm_up()
        server_start = time.perf_counter() - started
        from pressflow.flows.prepare import prepare_flow
        from pressflow.flows.publish import publish_flow
    started = time.perf_counter()
    if mode == "plain":
        loaded = load_records([records])
        prepared = pipeline.prepare(loaded.events, settings)
        failed = prepared.failed
        middle = approve_everything(settings)
        published = publish(settings).releases
    else:
        prepared = prepare_flow(paths=[str(records)], out_dir=str(out))
        failed = prepared.failed
        middle = approve_everything(settings)
        published = publish_flow(out_dir=str(out)).releases
    end = time.perf_counter() - review
    # Flows only: the time no task was running. It is what Prefect adds (flow runs starting and
    # ending, task runs being scheduled) plus the flow code between tasks and the import of the
    # flows; measured inside one run, so unlike flows-minus-plain it is not blurred by the
    # machine's load changing between runs.
    outside_tasks = (end - started) - time_in_tasks() if mode == "flows" else 0.0
    languages = sorted({lang for langs in published.values() for lang in langs})
    print(json.dumps({"prepare": middle - started, "publish": end - middle, "wall": end - started,
                      "outside_tasks": outside_tasks,
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
                      + (f", outside tasks {result['outside_tasks']:.1f} s, Prefect server start "
                         f"{result['server_start']:.1f} s (not counted)" if mode == "flows" else ""), flush=True)
        for mode, done in runs.items():
            results[(n, mode)] = {key: statistics.median(r[key] for r in done)
                                  for key in ("wall", "prepare", "publish", "maxrss_mb", "outside_tasks")}
            results[(n, mode)]["peak"] = max(r["maxrss_mb"] for r in done)
    print(f"\nmedians of {args.repeats} run(s):")
    for (n, mode), result in results.items():
        print(f"N={n:>5} {mode:>5}: wall {result['wall']:8.1f} s (prepare {result['prepare']:.1f}, "
              f"publish {result['publish']:.1f}), {1000 * result['wall'] / n:7.1f} ms/release, "
              f"peak RSS {result['peak']:5.0f} MB")
    for n in args.sizes:
        plain, flows = results[(n, "plain")], results[(n, "flows")]
        overhead = (flows["wall"] - plain["wall"]) / flows["wall"]
        outside = flows["outside_tasks"] / flows["wall"]
        print(f"N={n:>5}: Prefect's share of wall time {100 * overhead:5.1f}% (flows - plain over flows; "
              f"target < 10%), {100 * outside:4.1f}% (time outside tasks within the flows runs, "
              f"{flows['outside_tasks']:.1f} s); peak RSS {max(plain['peak'], flows['peak']):.0f} MB (target < 2048)")
    small, large = min(args.sizes), max(args.sizes)
    for mode in ("plain", "flows"):
        ratio = (results[(large, mode)]["wall"] / large) / (results[(small, mode)]["wall"] / small)
        print(f"{mode:>5}: time per release at N={large} / at N={small} = {ratio:.2f} (target <= 1.2: linear or better)")


if __name__ == "__main__":
    main()
