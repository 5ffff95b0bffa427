"""Installed Argos Translate packages: which pairs we can translate, by which route.

Packages are what argostranslate defines (`argostranslate.package`: one folder per package in
its packages folders, metadata.json, a CTranslate2 model, a tokenizer), and we use its settings
for where they live. Finding and installing them is done here: argostranslate's discovery fails
whole on one broken folder, and its installer unzips anything over anything (see `scan` and
`install_file`). Its `translate` module is never imported on this path: it pulls in stanza and
torch (seconds of start-up) and translates one text at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Annotated

from packaging.version import InvalidVersion, Version
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ..core.errors import ModelInstallError, ModelMissingError, printable

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


# --- which packages are installed, and which one serves a pair ---------------------------------
#
# argostranslate discovers packages by opening every folder in its packages folder and stops at
# the first that has no metadata.json (`get_installed_packages` raises), so one broken folder
# took every language down. Discovery here reads each folder on its own: a folder that is not a
# usable package is listed with its reason and used for nothing, and the others still serve.

_CODE = re.compile(r"[a-z]{2,3}(?:[_-][A-Za-z0-9]{1,8}){0,3}")  # en, pt, zh_Hant, zt, pb ...
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,39}")
_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_METADATA_MAX_BYTES = 1 << 20
_STAGING_PREFIX = ".pressflow-staging-"  # hidden: discovery skips it; the next install clears one left


class PackageProblem(Exception):
    """Why a folder or file is not a usable translation package (one line, no file name)."""


def _code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise ValueError(f"{printable(value)!s} is not a language code (like en, pt or zh_Hant)")
    return value


def _version(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise ValueError(f"{printable(value)!s} is not a package version (like 1.0 or 1.9.2)")
    return value


def _prefix(value: str) -> str:
    if len(value) > 64 or printable(value) != value:
        raise ValueError("must be at most 64 printable characters")
    return value


class PackageMetadata(BaseModel):
    """What pressflow reads from a package's metadata.json (other fields are left alone)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: str = "translate"
    from_code: Annotated[str, AfterValidator(_code)]
    to_code: Annotated[str, AfterValidator(_code)]
    package_version: Annotated[str, AfterValidator(_version)] = "0"
    target_prefix: Annotated[str, AfterValidator(_prefix)] = ""

    @classmethod
    def read(cls, data: bytes) -> "PackageMetadata":
        """Parse metadata.json's bytes; PackageProblem names the field that is wrong."""
        if len(data) > _METADATA_MAX_BYTES:
            raise PackageProblem(f"metadata.json is larger than {_METADATA_MAX_BYTES >> 20} MiB")
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PackageProblem(f"metadata.json is not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise PackageProblem("metadata.json is not a JSON object")
        try:
            metadata = cls.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "?"
            message = error["msg"].removeprefix("Value error, ")
            raise PackageProblem(f"metadata.json: field {field!r}: {message}") from None
        if metadata.type != "translate":
            raise PackageProblem(f"metadata.json: field 'type': {printable(metadata.type)!s} is not a "
                                 "translation package (pressflow uses type 'translate' only)")
        return metadata


def _model_files_problem(folder: Path) -> str | None:
    """What a package lacks of the files its model needs to load, or None."""
    import ctranslate2

    model = folder / "model"
    if not model.is_dir() or not ctranslate2.contains_model(str(model)):
        return "model/model.bin is missing (no CTranslate2 model)"
    vocabularies = {p.name.rsplit(".", 1)[0] for p in model.iterdir()
                    if p.is_file() and p.suffix in (".json", ".txt")}
    if "shared_vocabulary" not in vocabularies and not {"source_vocabulary", "target_vocabulary"} <= vocabularies:
        return "model/ has no vocabulary (shared_vocabulary.json, or source_ and target_vocabulary)"
    if not (folder / "sentencepiece.model").is_file() and not (folder / "bpe.model").is_file():
        return "no tokenizer (sentencepiece.model or bpe.model)"
    return None


def read_package(folder: Path) -> Model:
    """The installed package in `folder`; PackageProblem says why it cannot be used."""
    metadata_path = folder / "metadata.json"
    if not metadata_path.is_file():
        raise PackageProblem("no metadata.json")
    try:
        data = metadata_path.read_bytes()
    except OSError as exc:
        raise PackageProblem(f"metadata.json cannot be read ({exc.strerror or type(exc).__name__})") from None
    metadata = PackageMetadata.read(data)
    if problem := _model_files_problem(folder):
        raise PackageProblem(problem)
    return Model(metadata.from_code, metadata.to_code, folder, metadata.package_version, metadata.target_prefix)


def _precedence(model: Model) -> tuple:
    """Sort key, best first once reversed: the highest PEP 440 version (any beats none), then
    (kept in order by the stable sort) the first folder name."""
    try:
        return (True, Version(model.version))
    except InvalidVersion:
        return (False, Version("0"))


def ordered(models: list[Model]) -> list[Model]:
    """Models by pair, the one that serves each pair first; the same whatever order they came in."""
    by_name = sorted(models, key=lambda m: (m.source, m.target, m.path.name, str(m.path)))
    by_rank = sorted(by_name, key=_precedence, reverse=True)  # stable: names stay in order within a rank
    return sorted(by_rank, key=lambda m: (m.source, m.target))  # stable again


@dataclass(frozen=True)
class Unusable:
    """A folder in the packages folder that is not a usable translation package."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Catalog:
    """Every folder in the packages folders: usable models (`ordered`) and the rest, with why."""

    models: list[Model]
    unusable: list[Unusable]

    def serving(self) -> dict[tuple[str, str], Model]:
        serving: dict[tuple[str, str], Model] = {}
        for model in self.models:
            serving.setdefault((model.source, model.target), model)
        return serving

    def lines(self) -> tuple[list[str], list[str]]:
        """What `models list` prints: (one line a package, warnings)."""
        serving = self.serving()
        lines, warnings = [], []
        for model in self.models:
            best = serving[model.source, model.target]
            line = f"{model.source} -> {model.target}  {model.version}  {printable(model.path)}"
            lines.append(line if best is model else f"{line}  (not used: {printable(best.path.name)} serves this pair)")
        for (source, target), best in serving.items():
            rivals = [m for m in self.models if (m.source, m.target) == (source, target) and m is not best]
            if rivals:
                warnings.append(
                    f"warning: {len(rivals) + 1} packages translate {source} -> {target}; {printable(best.path.name)} "
                    f"({best.version}) serves it (the highest version, then the first folder name); remove "
                    f"{', '.join(printable(m.path.name) for m in rivals)} or reinstall with --replace")
        for item in self.unusable:
            lines.append(f"not used: {printable(item.path)}: {item.reason}")
        return lines, warnings


def package_dirs() -> list[Path]:
    """The folders argostranslate installs to and reads from (ARGOS_PACKAGES_DIR and its defaults)."""
    from argostranslate import settings as argos_settings

    return list(dict.fromkeys(Path(p) for p in argos_settings.package_dirs))


def scan() -> Catalog:
    """Every installed package (honours ARGOS_PACKAGES_DIR); a broken one never hides the others."""
    models, unusable = [], []
    for directory in package_dirs():
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            continue  # a packages folder not made yet, or unreadable: nothing installed there
        for folder in entries:
            if folder.name.startswith(".") or not folder.is_dir():
                continue  # our staging and lock; argostranslate also ignores files
            try:
                models.append(read_package(folder))
            except PackageProblem as exc:
                unusable.append(Unusable(folder, str(exc)))
            except OSError as exc:
                unusable.append(Unusable(folder, f"cannot be read ({exc.strerror or type(exc).__name__})"))
    return Catalog(ordered(models), unusable)


def installed_models() -> list[Model]:
    """Every usable installed translation package, the one serving each pair first."""
    return scan().models


def find_route(source: str, target: str, models: list[Model] | None = None) -> list[Model]:
    """The models that take `source` to `target`: direct, else through English.

    Where two packages translate one pair, the same one always serves (`ordered`).
    Raises ModelMissingError naming the pair when neither exists.
    """
    models = installed_models() if models is None else models
    by_pair: dict[tuple[str, str], Model] = {}
    for model in ordered(models):
        by_pair.setdefault((model.source, model.target), model)
    if (source, target) in by_pair:
        return [by_pair[source, target]]
    if PIVOT not in (source, target) and (source, PIVOT) in by_pair and (PIVOT, target) in by_pair:
        return [by_pair[source, PIVOT], by_pair[PIVOT, target]]
    raise ModelMissingError(source, target)


# --- installing a package file ----------------------------------------------------------------
#
# argostranslate's `install_from_path` unzips straight into the packages folder: whatever the
# zip holds lands there, over whatever had the same name, however large. Here a package is
# checked first from the zip's own directory (one top folder, safe names, its unpacked size
# against a limit and the free space, its metadata and codes), unpacked into a hidden staging
# folder inside the packages folder (the same filesystem), checked again as installed (the
# files its model needs), and moved into place in one rename, or not at all.

_MAX_ENTRIES = 20_000
_RESERVE_BYTES = 256 << 20  # left free on the disk after an install
_CHUNK = 1 << 20


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


def _plan(archive: zipfile.ZipFile, max_bytes: int) -> tuple[str, list[zipfile.ZipInfo], int]:
    """(top folder, members, unpacked bytes) of a package zip; PackageProblem if it is not one."""
    members = archive.infolist()
    if len(members) > _MAX_ENTRIES:
        raise PackageProblem(f"holds {len(members):,} files, more than a package has ({_MAX_ENTRIES:,} at most)")
    tops = set()
    for info in members:
        name = info.filename
        parts = PurePosixPath(name).parts
        if (not parts or name.startswith("/") or "\\" in name or any(p in (".", "..") for p in parts)
                or printable(name) != name):
            raise PackageProblem(f"holds a file named {printable(name)!r}, which cannot be unpacked safely")
        if info.flag_bits & 0x1:
            raise PackageProblem(f"{printable(name)} is encrypted")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise PackageProblem(f"{printable(name)} is a symbolic link")
        tops.add(parts[0])
    if len(tops) != 1 or not all("/" in i.filename for i in members if not i.is_dir()):
        raise PackageProblem("is not one package folder (an Argos package zips exactly one folder)")
    [top] = tops
    if not _FOLDER.fullmatch(top):
        raise PackageProblem(f"its folder name {printable(top)!r} is not a plain package name")
    unpacked = sum(info.file_size for info in members)
    if unpacked > max_bytes:
        raise PackageProblem(f"unpacks to {_mib(unpacked)}, more than the {_mib(max_bytes)} a package may "
                             "(PRESSFLOW_MODEL_MAX_MB)")
    return top, members, unpacked


def _metadata_in(archive: zipfile.ZipFile, top: str) -> PackageMetadata:
    try:
        info = archive.getinfo(f"{top}/metadata.json")
    except KeyError:
        raise PackageProblem("has no metadata.json in its folder") from None
    if info.file_size > _METADATA_MAX_BYTES:
        raise PackageProblem(f"metadata.json is larger than {_METADATA_MAX_BYTES >> 20} MiB")
    return PackageMetadata.read(archive.read(info))


def _unpack(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], into: Path, declared: int) -> None:
    """Write the members under `into`, never more bytes than their sizes declare in all."""
    written = 0
    for info in members:
        target = into.joinpath(*PurePosixPath(info.filename).parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > declared:
                    raise PackageProblem("holds more data than its directory declares")
                sink.write(chunk)


def install_file(path: Path, *, replace: bool = False, max_bytes: int | None = None) -> Model:
    """Install a `.argosmodel` file, checked, in one rename; never over another package unless
    `replace` (then the package in the same folder and every other one for the same pair go)."""
    from ..core.config import engine_settings

    if not path.is_file():
        raise ModelInstallError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ModelInstallError(f"{path}: not an Argos model (expected a .argosmodel zip file)")
    max_bytes = max_bytes or engine_settings().model_max_mb << 20
    packages = Path(_argos_settings().package_data_dir)
    packages.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(path) as archive, _install_lock(packages):
            top, members, unpacked = _plan(archive, max_bytes)
            metadata = _metadata_in(archive, top)
            destination = packages / top
            displaced = _displaced(destination, (metadata.from_code, metadata.to_code), replace)
            _clear_staging(packages)  # what a killed install left counts against the free space
            free = _free_bytes(packages)
            if unpacked + _RESERVE_BYTES > free:
                raise PackageProblem(f"unpacks to {_mib(unpacked)}, and {printable(packages)} has {_mib(free)} free "
                                     f"({_mib(_RESERVE_BYTES)} must stay free)")
            staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=packages))
            try:
                _unpack(archive, members, staging, unpacked)
                read_package(staging / top)  # the files its model needs, as installed
                for number, old in enumerate(displaced):
                    old.rename(staging / f"replaced-{number}")  # same filesystem: renames, not copies
                try:
                    (staging / top).rename(destination)
                except OSError:
                    for number, old in enumerate(displaced):
                        (staging / f"replaced-{number}").rename(old)
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except PackageProblem as exc:
        raise ModelInstallError(f"{path}: {exc}; nothing was installed") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModelInstallError(f"{path}: not a readable package ({type(exc).__name__}: {exc}); "
                                "nothing was installed") from None
    except OSError as exc:
        raise ModelInstallError(f"{path}: unpacking failed ({exc.strerror or exc}); nothing was installed") from None
    return read_package(destination)


def _displaced(destination: Path, pair: tuple[str, str], replace: bool) -> list[Path]:
    """The installed folders this package would take the place of: refused unless `replace`."""
    taken = destination.exists() or destination.is_symlink()
    same_pair = [m.path for m in scan().models if (m.source, m.target) == pair and m.path != destination]
    if not replace:
        if taken:
            try:
                what = f"{pair_text(read_package(destination))} {read_package(destination).version}"
            except (PackageProblem, OSError):
                what = "an unusable package"
            raise PackageProblem(f"{printable(destination)} already holds {what}; to replace it, run "
                                 "`pressflow models install --replace FILE`")
        if same_pair:
            raise PackageProblem(f"{pair[0]} -> {pair[1]} is already installed in {printable(same_pair[0])}; "
                                 "to use this package instead, run `pressflow models install --replace FILE`")
    # --replace takes away only what is in the folder installed to (other packages folders are
    # not pressflow's to empty); `models list` warns about a pair still served twice.
    return ([destination] if taken else []) + [p for p in same_pair if p.parent == destination.parent]


def pair_text(model: Model) -> str:
    return f"{model.source} -> {model.target}"


@contextmanager
def _install_lock(packages: Path) -> Iterator[None]:
    """One install at a time in a packages folder, across processes: an advisory lock on the
    folder itself (no lock file left beside the packages; the kernel frees it with the process)."""
    import fcntl

    descriptor = os.open(packages, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _clear_staging(packages: Path) -> None:
    """Remove staging folders an interrupted install left (the caller holds the install lock)."""
    for leftover in packages.glob(f"{_STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _argos_settings():
    from argostranslate import settings as argos_settings

    return argos_settings


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
        download = available[0].download()
    except Exception as exc:  # urllib errors: all mean the same to the user
        raise ModelInstallError(f"downloading the {source}->{target} model failed: {exc}") from None
    return install_file(download)  # checked and staged like a file given by hand


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
