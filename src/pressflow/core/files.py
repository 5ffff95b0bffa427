"""Writing files so that readers never see half of one, and nothing escapes the output folder."""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import PressflowError, PublishError


def inside(root: Path, *parts: str) -> Path:
    """`root/parts...`, refusing any path that would resolve outside `root`."""
    root = root.resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise PublishError(f"refusing to write outside the output folder: {'/'.join(parts)}")
    return path


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents readable by their owner only (0700).

    Folders that already exist keep their mode: they may be a user's own, shared on purpose.
    """
    missing, folder = [], path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile
            pass
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists and only its owner can read or write it (0600), with its folder
    made by `private_dir`: the draft store holds reviewers' password hashes. SQLite gives its
    -wal, -shm and -journal files the mode of the database file; those left by an older,
    laxer version are tightened too."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for companion in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            if companion.stat().st_mode & 0o077:
                os.chmod(companion, 0o600)
        except FileNotFoundError:
            pass
    return path


def write_atomic(path: Path, data: str | bytes) -> bool:
    """Replace `path` with `data` in one step; skip the write when the content is unchanged.

    Returns whether the file changed. A crash leaves either the old file or the new one.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_file() and path.stat().st_size == len(payload) and path.read_bytes() == payload:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


FSYNC_EACH_UP_TO = 2000  # staged files flushed one by one (0.4 ms each here); more: the filesystem at once


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Staging:
    """A publish run's new files, each written in full before any of them is put in place.

    `write` puts the new version of a file in a staging folder (unless the file already holds
    it), at the place it will have in the output folder; `commit` makes every staged file
    durable (`_flush`) and puts them in place in the order they were staged: a file by a rename,
    and a folder the output does not have yet (every folder, in a first publish) by one rename
    of the whole folder, so it appears complete. A run that cannot finish, a full disk for one,
    stages without committing, so the published set stays as it was; `discard` removes what it
    staged, and a killed run's staging folder goes at the next run (`remove_stale_temp_files`).
    """

    def __init__(self, out: Path):
        self.out = out.resolve()
        self.folder = self.out / "state" / "staging" / secrets.token_hex(4)
        # Targets in the order staged (a dict keeps it), as strings: a first publish of a large
        # archive stages a million files.
        self.staged: dict[str, None] = {}
        self._folders: set[str] = set()  # folders made in the staging folder
        # target -> sha256 and size of its new content, until `digest` hands it out once
        self.digests: dict[Path, tuple[str, int]] = {}
        self.removals: list[Path] = []  # files that go once every staged file is in place
        # Published files are readable by the web server: set 0644 only where the umask would not.
        self._chmod = (0o666 & ~_umask()) != 0o644

    def write(self, path: Path, data: str | bytes) -> bool:
        """Stage `data` as the new content of `path`; returns whether the file changes."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self.digests[path] = (hashlib.sha256(payload).hexdigest(), len(payload))
        target = str(path)
        if target not in self.staged and _holds(path, payload):
            return False
        staged = self._staged_path(target)
        try:
            if (folder := os.path.dirname(staged)) not in self._folders:
                os.makedirs(folder, exist_ok=True)
                self._folders.add(folder)
            with open(staged, "wb") as handle:
                handle.write(payload)
            if self._chmod:
                os.chmod(staged, 0o644)
        except OSError as exc:
            raise PublishError(f"could not write {self._name(path)}: {exc.strerror or exc}; "
                               "nothing of this run was published") from None
        self.staged[target] = None
        return True

    def digest(self, path: Path) -> tuple[str, int] | None:
        """The sha256 and size of what was staged (or found unchanged) for `path`, once."""
        return self.digests.pop(path, None)

    def _staged_path(self, target: str) -> str:
        """Where `target` (an absolute path inside the output folder) is staged."""
        relative = target.removeprefix(f"{self.out}/")
        if relative == target or ".." in relative.split("/"):
            raise PublishError(f"refusing to write outside the output folder: {target}")
        return f"{self.folder}/{relative}"

    def remove(self, path: Path) -> None:
        """Remove `path` at commit, after every staged file is in place (nothing links to it then)."""
        self.removals.append(path)

    def commit(self) -> None:
        """Put every staged file in place: a crash part-way leaves each file old or new, whole."""
        for path in self.removals:
            if (target := str(path)) in self.staged:  # staged, then removed: its folder goes in without it
                del self.staged[target]
                os.unlink(self._staged_path(target))
        self._rename_all()
        for path in self.removals:
            path.unlink(missing_ok=True)
        self.removals.clear()

    def _rename_all(self) -> None:
        if not self.staged:
            return
        self._flush()
        placed: set[str] = set()  # folders of the output moved in whole from the staging folder
        present: dict[str, bool] = {}  # folder of the output -> whether it existed before
        for target in self.staged:
            try:
                folder = self._new_folder(target, placed, present)
                if folder is None:
                    os.replace(self._staged_path(target), target)
                elif folder not in placed:
                    os.rename(self._staged_path(folder), folder)
                    placed.add(folder)
            except OSError as exc:
                raise PublishError(f"could not put {self._name(Path(target))} in place: {exc.strerror or exc}") from None
        self.staged.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _new_folder(self, target: str, placed: set[str], present: dict[str, bool]) -> str | None:
        """The outermost folder on the way to `target` that the output folder has not got (or
        got in this commit, whole), or None when the target's own folder exists."""
        folder = os.path.dirname(target)
        if present.get(folder):
            return None
        out, relative = str(self.out), folder.removeprefix(f"{self.out}/")
        for part in ([] if folder == out else relative.split("/")):
            out = f"{out}/{part}"
            if out in placed:
                return out
            if out not in present:
                present[out] = os.path.lexists(out)
            if not present[out]:
                return out
        return None

    def _flush(self) -> None:
        """Every staged file on disk before the first rename points readers at it: file by file
        when they are few (a run costs its own files, whatever else the machine is writing), the
        whole filesystem at once when they are many (a first publish of a large archive)."""
        if len(self.staged) > FSYNC_EACH_UP_TO:
            sync_filesystem(self.folder)
            return
        for target in self.staged:
            fd = os.open(self._staged_path(target), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def discard(self) -> None:
        self.staged.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.out))
        except ValueError:
            return str(path)


def sync_filesystem(folder: Path) -> None:
    """Flush what was written to the filesystem holding `folder` (Linux's syncfs), or to every
    filesystem where that call is missing: one flush for a whole run's files, where an fsync
    per file would cost a disk round trip each, and `sync` waits for every other disk too."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(folder, os.O_RDONLY)
    except (OSError, AttributeError):
        os.sync()
        return
    try:
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _holds(path: Path, payload: bytes) -> bool:
    try:
        return path.stat().st_size == len(payload) and path.read_bytes() == payload
    except OSError:
        return False


def trash_folder(root: Path) -> Path:
    """Where `remove_tree` moves what it deletes: inside the output folder (the same filesystem,
    so moving is one rename), out of readers' way."""
    return root / "state" / "trash"


def remove_tree(folder: Path, root: Path) -> None:
    """Delete `folder` (inside the output folder `root`) so that nobody sees part of it: it moves
    to the trash folder in one step, then is deleted. A crash while deleting leaves it there,
    for `remove_stale_temp_files`."""
    trash = trash_folder(root)
    trash.mkdir(parents=True, exist_ok=True)
    tmp = trash / f"{folder.name}.{secrets.token_hex(4)}"
    os.rename(folder, tmp)
    shutil.rmtree(tmp)


def remove_stale_temp_files(root: Path) -> int:
    """Delete what a publisher killed mid-run leaves behind: its staging folder, the folders
    `remove_tree` was deleting, and temporary files `write_atomic` wrote beside files in the
    output folder itself. Three places, whatever the archive's size: no folder of releases
    is listed.

    Only call this while holding the publish lock: then no other writer owns a temp file.
    """
    removed = 0
    for folder in (root / "state" / "staging", trash_folder(root)):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
            removed += 1
    for tmp in sorted(root.glob(".*.tmp")) if root.is_dir() else []:
        if tmp.is_symlink() or not tmp.exists():
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_inside(root: Path, relative: str) -> Path | None:
    """`root/relative` with every symlink followed, or None when it leads out of `root`."""
    root = root.resolve()
    path = (root / relative).resolve()
    return path if path == root or root in path.parents else None


class FileKindError(PressflowError):
    """A file to read is not a regular file, or is larger than allowed (the message says which)."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file (or a link to one), refusing anything over `limit` bytes.

    `st_size` is 0 for a FIFO and for /dev/zero, so the check is on the file's type and the read
    is bounded as well. O_NONBLOCK keeps opening a FIFO from waiting for a writer forever.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileKindError(f"not a regular file ({_file_kind(mode)}); only plain files are read")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileKindError(f"file is over {limit:,} bytes, the limit")
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket", stat.S_ISDIR: "a folder"}
    return next((name for test, name in kinds.items() if test(mode)), "a special file")
