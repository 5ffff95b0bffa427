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


def _tables() -> dict[str, tuple[str, set[str]]]:
    """Table class name -> (its module, its column attribute names)."""
    import importlib
    import pkgutil

    import pressflow
    from pressflow.core.db import Base

    for module in pkgutil.walk_packages(pressflow.__path__, "pressflow."):  # every table mapped
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    return {mapper.class_.__name__: (mapper.class_.__module__, {column.key for column in mapper.column_attrs})
            for mapper in Base.registry.mappers}


def _stage(module: str) -> str:
    return module.split(".")[1]


def test_no_package_writes_sql_against_another_packages_tables():
    """Each stage owns its tables: another stage calls its functions (and may read the rows they
    return), but never uses a table's columns in a query of its own."""
    import ast

    tables = _tables()
    assert {"Draft", "Release", "Publication", "MemoryEntry", "Notice"} <= set(tables), sorted(tables)
    found = []
    for path in sorted((ROOT / "src" / "pressflow").rglob("*.py")):
        module = ".".join(("pressflow", *path.relative_to(ROOT / "src" / "pressflow").with_suffix("").parts))
        module = module.removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        foreign = set()  # table classes imported from another stage's module, by their names here
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                source = ".".join([*base[:len(base) - node.level + 1], *(node.module or "").split(".")]) \
                    if node.level else node.module
                source = source.strip(".")
                foreign |= {alias.asname or alias.name for alias in node.names if alias.name in tables
                            and tables[alias.name][0] == source and _stage(source) != _stage(module)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in foreign:
                owner = node.value.id
            elif isinstance(node.value, ast.Attribute) and node.value.attr in tables \
                    and _stage(tables[node.value.attr][0]) != _stage(module):
                owner = node.value.attr  # store.Draft.status
            else:
                continue
            if node.attr in tables[owner][1]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {owner}.{node.attr}")
    assert not found, found
