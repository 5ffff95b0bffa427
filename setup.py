"""Only what pyproject.toml cannot say: the wheel carries the templates.

The top-level `templates/` is their source (staff edit it, the design card lives beside them);
a wheel copies it into the package as `pressflow/templates/`, where `config.bundled_templates()`
finds it once pressflow is installed without the checkout (`pip install .`, a built wheel).
An editable install reads the checkout's folder itself, so nothing is copied for it.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class build_py_with_templates(build_py):
    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "pressflow" / "templates"
            shutil.rmtree(target, ignore_errors=True)  # a template removed from the source goes too
            shutil.copytree(TEMPLATES, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": build_py_with_templates})
