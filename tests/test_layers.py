"""The house's layers hold: `lint-imports` checks the contracts in pyproject.toml (each stage
imports only the stages below it; siblings never import each other; nothing imports the
top-level `flows/` folder), and prefect.yaml's entrypoints are the flows of `pressflow.flows`."""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    command = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert command, "lint-imports is missing: pip install -e '.[test]'"
    return command


def test_the_import_contracts_are_kept():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([lint_imports(), "--no-cache", "--no-logo"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_nothing_imports_the_top_level_flows_folder():
    """The folder holds prefect.yaml's entrypoints only; code, tests and tools import `pressflow.flows`."""
    importing = re.compile(r"^\s*(from\s+flows(\.|\s)|import\s+flows\b)", re.M)
    for folder in ("src", "tests", "bench", "scripts", "flows"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            assert not importing.search(path.read_text(encoding="utf-8")), path


def test_every_entrypoint_in_prefect_yaml_is_a_flow_of_pressflow_flows():
    from pressflow.flows.deliver import deliver_flow
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    flows = {"prepare_flow": prepare_flow, "publish_flow": publish_flow, "deliver_flow": deliver_flow}
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    entrypoints = {deployment["entrypoint"] for deployment in project["deployments"]}
    assert entrypoints == {"flows/prepare.py:prepare_flow", "flows/publish.py:publish_flow",
                           "flows/deliver.py:deliver_flow"}
    for entrypoint in entrypoints:
        file, _, name = entrypoint.partition(":")
        assert runpy.run_path(str(ROOT / file))[name] is flows[name]
