"""Installed Argos Translate packages: which pairs we can translate, by which route.

argostranslate does what it is good at here: finding, installing and describing packages
(`argostranslate.package`, a light import). Its `translate` module is never imported on this
path: it pulls in stanza and torch (seconds of start-up) and translates one text at a time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..core.errors import ModelInstallError, ModelMissingError

PIVOT = "en"


@dataclass(frozen=True)
class Model:
    """One installed translation package."""

    source: str
    target: str
    path: Path
    version: str
    target_prefix: str = ""

    @cached_property  # read once: the stage asks for it for every document it assembles
    def engine_id(self) -> str:
        """Names the model in the translation memory: a new model version re-translates."""
        stamp = hashlib.sha256((self.path / "metadata.json").read_bytes()).hexdigest()[:10]
        return f"argos:{self.source}-{self.target}@{self.version}#{stamp}"


def installed_models() -> list[Model]:
    """Every installed translation package (honours ARGOS_PACKAGES_DIR)."""
    import argostranslate.package as argos_package

    models = []
    for pkg in argos_package.get_installed_packages():
        if pkg.type == "translate" and pkg.from_code and pkg.to_code:
            models.append(Model(pkg.from_code, pkg.to_code, Path(pkg.package_path), pkg.package_version or "0",
                                getattr(pkg, "target_prefix", "") or ""))
    return models


def find_route(source: str, target: str, models: list[Model] | None = None) -> list[Model]:
    """The models that take `source` to `target`: direct, else through English.

    Raises ModelMissingError naming the pair when neither exists.
    """
    models = installed_models() if models is None else models
    by_pair = {(m.source, m.target): m for m in models}
    if (source, target) in by_pair:
        return [by_pair[source, target]]
    if PIVOT not in (source, target) and (source, PIVOT) in by_pair and (PIVOT, target) in by_pair:
        return [by_pair[source, PIVOT], by_pair[PIVOT, target]]
    raise ModelMissingError(source, target)


def install_file(path: Path) -> Model:
    """Install a downloaded `.argosmodel` file with argostranslate's own installer."""
    import zipfile

    import argostranslate.package as argos_package

    if not path.is_file():
        raise ModelInstallError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ModelInstallError(f"{path}: not an Argos model (expected a .argosmodel zip file)")
    before = {m.path for m in installed_models()}
    argos_package.install_from_path(path)
    added = [m for m in installed_models() if m.path not in before]
    if not added:
        raise ModelInstallError(f"{path}: installed nothing (was it already installed?)")
    return added[0]


def install_pair(source: str, target: str) -> Model:
    """Download and install the model for a pair from the Argos package index (needs internet)."""
    import argostranslate.package as argos_package
    from argostranslate import settings as argos_settings

    _quietly(argos_package.update_package_index)  # returns without an index when offline
    # get_available_packages() re-downloads, then calls itself again, forever, while the index
    # file is missing; so never call it without the file.
    if not Path(argos_settings.local_package_index).exists():
        raise ModelInstallError(
            f"cannot reach the Argos package index ({argos_settings.remote_package_index}); this machine "
            f"looks offline. Download translate-{source}_{target}-*.argosmodel on a connected machine "
            f"(https://www.argosopentech.com/argospm/index/) and run: pressflow models install FILE.argosmodel"
        )
    available = [p for p in argos_package.get_available_packages()
                 if p.from_code == source and p.to_code == target]
    if not available:
        raise ModelInstallError(f"the Argos index has no {source}->{target} model; "
                                f"translation through English is used when {source}->en and en->{target} exist")
    try:
        argos_package.install_from_path(available[0].download())
    except Exception as exc:  # urllib errors, bad zip: all mean the same to the user
        raise ModelInstallError(f"downloading the {source}->{target} model failed: {exc}") from None
    return find_route(source, target)[0]


def _quietly(action) -> None:
    """Run an argostranslate call with its error log muted: we say what went wrong ourselves."""
    import logging
    import socket

    argos_log = logging.getLogger("argostranslate.utils")
    level, timeout = argos_log.level, socket.getdefaulttimeout()
    argos_log.setLevel(logging.CRITICAL)
    socket.setdefaulttimeout(timeout or 20)  # a firewall that drops packets must not hang the CLI
    try:
        action()
    finally:
        argos_log.setLevel(level)
        socket.setdefaulttimeout(timeout)
