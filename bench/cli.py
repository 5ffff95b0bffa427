"""Benchmark: what a command a person types costs, against `pressflow review list`.

    python bench/cli.py                  # 5 repetitions (~1 min on 2 cores)
    python bench/cli.py --repeats 9

Side by side, in one run, each command a fresh process (`python -m pressflow.cli`, as the
`pressflow` script runs it), no Prefect server configured (how every newcomer starts):

- `review list`                       the baseline: reads the store, no pipeline work
- `prepare ONE-RECORD`                one new English-only record (prepared into the same store)
- `publish`                           that one new release published (same store)
- `run events --auto-approve`         the four bundled examples, no translation models installed
                                      (a fresh output folder each time: a second run of the same
                                      records has nothing to do)

Every repetition runs the four in this order, so a machine getting busier weighs on all of them;
the figures are medians over the repetitions, and the ratios are medians of a command over the
median of `review list`. Targets: prepare and publish <= 2.0x, run <= 3.0x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"prepare": 2.0, "publish": 2.0, "run": 3.0}


def bench_env(home: Path) -> dict[str, str]:
    """Isolated homes, no models, no Prefect server configured."""
    env = {**os.environ,
           "ARGOS_PACKAGES_DIR": str(home / "argos-packages"), "XDG_DATA_HOME": str(home / "xdg-data"),
           "XDG_CONFIG_HOME": str(home / "xdg-config"), "XDG_CACHE_HOME": str(home / "xdg-cache"),
           "PREFECT_HOME": str(home / "prefect")}
    for name in [n for n in env if n.startswith("PRESSFLOW_")] + ["PREFECT_API_URL", "PREFECT_PROFILE"]:
        env.pop(name, None)
    # English drafts approved as they are prepared (the office setting), so that `publish` has the
    # one new release to publish, as it had when that was the default.
    env["PRESSFLOW_AUTO_APPROVE_SOURCE"] = "1"
    (home / "argos-packages").mkdir(parents=True, exist_ok=True)
    return env


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pressflow.cli", *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"pressflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def record(folder: Path, n: int) -> Path:
    path = folder / f"one-{n}.yaml"
    path.write_text(f"id: bench-one-{n}\ntitle: Bench forum {n}\ndate: 2021-09-{1 + n % 28:02d}\n"
                    f"summary: One English-only release, number {n}.\nlanguages: []\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pressflow-bench-cli-") as tmp:
        home = Path(tmp)
        env, out, records = bench_env(home / "home"), home / "out", home / "records"
        records.mkdir()
        # A store with something in it: the examples, English only (no models), one pending draft list.
        timed(["run", str(ROOT / "events"), "--auto-approve", "--out", str(out)], env, ROOT)
        times: dict[str, list[float]] = {"review list": [], "prepare": [], "publish": [], "run": []}
        for n in range(args.repeats):
            times["review list"].append(timed(["review", "list", "--status", "all", "--out", str(out)], env, ROOT))
            times["prepare"].append(timed(["prepare", str(record(records, n)), "--out", str(out)], env, ROOT))
            times["publish"].append(timed(["publish", "--out", str(out)], env, ROOT))
            times["run"].append(timed(["run", str(ROOT / "events"), "--auto-approve", "--out", str(home / f"run-{n}")],
                                      env, ROOT))
            print(f"repeat {n + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                  flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["review list"]
    print(f"\nmedians of {args.repeats} (fresh processes, one store, no Prefect server configured):")
    ok = True
    for name, median in medians.items():
        if name == "review list":
            print(f"  {name:<12} {median:6.2f} s  (baseline)")
            continue
        ratio, target = median / base, TARGETS[name]
        ok &= ratio <= target
        print(f"  {name:<12} {median:6.2f} s  {ratio:4.2f}x review list  (target <= {target:.1f}x: "
              f"{'met' if ratio <= target else 'MISSED'})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
