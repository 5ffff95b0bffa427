"""A built wheel is all a user needs: installed without the checkout, it renders and publishes.

The wheel is built from this checkout, installed with `--no-deps` into a fresh virtual
environment that sees this one's dependencies (a .pth file naming their folder), and its
`pressflow` command runs the main job from a folder outside the checkout, with the templates
the wheel carries; PRESSFLOW_TEMPLATES still overrides them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import EVENTS, ROOT

pytestmark = pytest.mark.slow
RELEASE = "2021-06-04-global-health-summit"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = dist.glob("pressflow-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, wheel) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Installed before the dependencies are visible, and without PYTHONPATH: pip would take this
    # environment's pressflow (an editable checkout, or the source tree) for the wheel's and
    # install nothing.
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              str(wheel)], capture_output=True, text=True, timeout=600, env=clean_env(venv.parent))
    assert install.returncode == 0, install.stdout + install.stderr
    # The dependencies of this environment, after the fresh one's own packages (pressflow among them).
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    return venv


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRESSFLOW_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect"), **extra}


def test_the_wheel_carries_the_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {f"pressflow/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
               for p in (ROOT / "templates").rglob("*") if p.is_file()}
    assert sources and sources <= names, sorted(sources - names)
    assert "pressflow/data/site-labels.yaml" in names


def test_a_wheel_installed_without_the_checkout_runs_the_main_job(fresh_venv, tmp_path):
    work = tmp_path / "newsroom"  # outside the checkout: nothing of it is at hand
    shutil.copytree(EVENTS, work / "events")
    pressflow = fresh_venv / "bin" / "pressflow"
    where = subprocess.run([str(fresh_venv / "bin" / "python"), "-c",
                            "import pressflow, pressflow.core.config as c; print(pressflow.__file__); "
                            "print(c.Settings().templates_dir)"],
                           cwd=work, env=clean_env(tmp_path), capture_output=True, text=True, check=True)
    module, templates = where.stdout.split()
    assert module.startswith(str(fresh_venv)) and templates.startswith(str(fresh_venv)), where.stdout
    assert Path(templates, "page.html.j2").is_file()

    run = subprocess.run([str(pressflow), "run", "events", "--auto-approve", "--out", "out"], cwd=work,
                         env=clean_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    page = work / "out" / "site" / "en" / f"{RELEASE}.html"
    assert page.is_file(), run.stdout + run.stderr
    assert "<h1>" in page.read_text(encoding="utf-8")
    assert (work / "out" / "outbox" / RELEASE / "en" / "press-release.md").is_file()

    # PRESSFLOW_TEMPLATES still wins over the templates the wheel carries.
    custom = tmp_path / "templates"
    shutil.copytree(templates, custom)
    about = custom / "partials" / "about.md.j2"
    about.write_text(about.read_text(encoding="utf-8") + "\nOverridden by the office's own templates.\n",
                     encoding="utf-8")
    again = subprocess.run([str(pressflow), "run", "events", "--auto-approve", "--out", "out2"], cwd=work,
                           env=clean_env(tmp_path, PRESSFLOW_TEMPLATES=str(custom)),
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    markdown = (work / "out2" / "outbox" / RELEASE / "en" / "press-release.md").read_text(encoding="utf-8")
    assert "Overridden by the office's own templates." in markdown
