"""Write files without ever destroying one that funnelsim did not write.

Every folder funnelsim writes into gets a manifest, ``.funnelsim.json``, listing the
files it wrote there with their size and SHA-256. A file counts as funnelsim's only
while it is listed *and* unchanged: a file the user has since edited is theirs.

- :class:`atomic_folder` writes a run's folder. An empty or missing folder, or one that
  holds only an earlier output of the same command, is replaced whole: the new files
  are written into a temporary folder beside it, which is renamed into place. A folder
  holding anything else (a user's file at any depth) is refused with
  :class:`OutputRefused`; with ``force`` the new files are written into it instead,
  replacing only files funnelsim wrote, and refused if one of the names it needs
  belongs to the user.
- :func:`write_file` writes one named file (a journey log, the JSON Schema): a new
  file, or one funnelsim wrote and nobody changed since, is replaced atomically; any
  other existing file is refused (``force`` does not change this).

Whatever happens — an error, Ctrl-C — no temporary file or folder is left behind, and
the final renames run with Ctrl-C held back until they are done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from funnelsim import __version__
from funnelsim.errors import FunnelsimError

__all__ = [
    "MANIFEST",
    "InterruptedAfterWriting",
    "Manifest",
    "OutputRefused",
    "atomic_folder",
    "check_output_file",
    "check_output_folder",
    "write_file",
    "write_files",
]

MANIFEST = ".funnelsim.json"
_TMP = ".funnelsim-tmp-"


class OutputRefused(FunnelsimError):
    """Writing would replace or delete something funnelsim did not write."""


class InterruptedAfterWriting(KeyboardInterrupt):
    """Ctrl-C came while the finished files were being put in place: they were."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(path: Path, by: str) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": _sha256(path), "by": by}


class Manifest:
    """The files funnelsim wrote into one folder: relative POSIX path → size, SHA-256
    and the command that wrote it."""

    def __init__(self, files: dict[str, dict[str, Any]] | None = None) -> None:
        self.files = dict(files or {})

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The folder's manifest; empty when there is none; None when a file of that
        name exists but is not a funnelsim manifest (then it is the user's)."""
        path = folder / MANIFEST
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not (
            isinstance(data, dict)
            and data.get("written_by") == "funnelsim"
            and isinstance(data.get("files"), dict)
        ):
            return None
        return cls(
            {str(k): v for k, v in data["files"].items() if isinstance(v, dict) and _inner(str(k))}
        )

    def owns(self, folder: Path, rel: str, by: str | None = None) -> bool:
        """Whether ``folder/rel`` is a regular file funnelsim wrote (by command ``by``,
        if given) and nobody changed since."""
        entry = self.files.get(rel)
        path = folder / rel
        if entry is None or path.is_symlink() or not path.is_file():
            return False
        if by is not None and entry.get("by") != by:
            return False
        return entry.get("size") == path.stat().st_size and entry.get("sha256") == _sha256(path)

    def write(self, folder: Path) -> None:
        """Write the manifest into ``folder`` atomically (files in sorted order)."""
        data = {
            "written_by": "funnelsim",
            "version": __version__,
            "note": "files funnelsim wrote here; it replaces only these, and only unchanged",
            "files": dict(sorted(self.files.items())),
        }
        tmp = folder / f"{_TMP}{uuid.uuid4().hex[:8]}.json"
        try:
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, folder / MANIFEST)
        finally:
            tmp.unlink(missing_ok=True)


def _inner(rel: str) -> bool:
    """Whether ``rel`` names a file inside the folder (no ``..``, not absolute)."""
    path = Path(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts


def _walk(folder: Path) -> Iterator[tuple[str, bool]]:
    """Every file (and every empty folder, as ``name/``) under ``folder`` at any depth,
    as ``(relative POSIX path, is_folder)``; symbolic links are not followed."""
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        for name in list(dirs):
            if (here / name).is_symlink():
                dirs.remove(name)
                files.append(name)
        for name in files:
            yield (here / name).relative_to(folder).as_posix(), False
        if not dirs and not files and here != folder:
            yield here.relative_to(folder).as_posix() + "/", True


def _survey(folder: Path, by: str) -> tuple[list[str], bool]:
    """``(foreign, only_ours)`` for an existing folder: the entries funnelsim did not
    write (or that changed since), and whether everything in it was written by ``by``."""
    manifest = Manifest.read(folder)
    if manifest is None:
        return [MANIFEST], False
    foreign, only_ours = [], True
    for rel, is_folder in _walk(folder):
        if rel == MANIFEST:
            continue
        if is_folder or not manifest.owns(folder, rel):
            foreign.append(rel)
        elif manifest.files[rel].get("by") != by:
            only_ours = False
    return sorted(foreign), only_ours and not foreign


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _show(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_output_folder(
    target: str | Path, *, force: bool = False, by: str = "run", names: Iterable[str] = ()
) -> str:
    """How :class:`atomic_folder` would write ``target``: ``"replace"`` (swap in a new
    folder) or ``"merge"`` (write into it, replacing only funnelsim's files).

    Raises :class:`OutputRefused` when the folder holds files funnelsim did not write
    and ``force`` is not given, when one of ``names`` (files the writer will write,
    relative to ``target``) is such a file, or when ``target`` is a file. Nothing is
    written.
    """
    target = Path(target).resolve()
    if target.exists() and not target.is_dir():
        raise OutputRefused(
            f"output folder {target} is a file, not a folder — choose another output folder"
        )
    if not target.exists():
        return "replace"
    foreign, only_ours = _survey(target, by)
    if foreign and not force:
        raise OutputRefused(
            f"output folder {target} holds files funnelsim did not write "
            f"({_show(foreign)}); nothing was written — choose a new or empty folder, "
            "or pass --force to write funnelsim's files beside them (only files "
            "funnelsim wrote there before are replaced)"
        )
    taken = sorted(set(foreign) & set(names))
    if taken:
        raise OutputRefused(_taken_message(target, taken))
    if only_ours and not _inside(Path.cwd().resolve(), target):
        return "replace"
    return "merge"


def _taken_message(target: Path, taken: list[str]) -> str:
    return (
        f"{_show([str(target / rel) for rel in taken])}: funnelsim needs "
        f"{'this name' if len(taken) == 1 else 'these names'} but did not write the file "
        "there (or it was changed since); nothing was written — move it away, or choose "
        "another output folder"
    )


@contextlib.contextmanager
def _hold_interrupts() -> Iterator[None]:
    """Hold Ctrl-C back while a few renames finish, then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise InterruptedAfterWriting


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    made = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        made.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_made(made: list[Path]) -> None:
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


class atomic_folder:
    """Context manager yielding a temporary folder whose files end up in ``target``.

    On success, ``target`` is replaced whole by the temporary folder when it is missing,
    empty or an earlier output of the same command (``by``); otherwise (a folder with
    other files, with ``force``; or the current folder) the files are moved into it one
    by one, replacing only files funnelsim wrote and nobody changed. A manifest listing
    the files is added either way. On any error, or Ctrl-C, the temporary folder is
    removed and ``target`` is left exactly as it was. Raises :class:`OutputRefused` (see
    :func:`check_output_folder`) before anything is written.
    """

    def __init__(self, target: str | Path, *, force: bool = False, by: str = "run") -> None:
        self.target = Path(target).resolve()
        self.force = force
        self.by = by
        self.tmp = self.target  # set on entry
        self._made: list[Path] = []

    def __enter__(self) -> Path:
        self.mode = check_output_folder(self.target, force=self.force, by=self.by)
        self._made = _make_parents(self.target if self.mode == "merge" else self.target.parent)
        tag = uuid.uuid4().hex[:8]
        if self.mode == "merge":
            self.tmp = self.target / f"{_TMP}{tag}"
        else:
            self.tmp = self.target.parent / f".{self.target.name}.tmp-{tag}"
        self.tmp.mkdir()
        return self.tmp

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                written = sorted(rel for rel, is_folder in _walk(self.tmp) if not is_folder)
                if self.mode == "replace":
                    self._replace(written)
                else:
                    self._merge(written)
        except InterruptedAfterWriting:
            raise
        except BaseException:
            self._abandon()
            raise
        if exc_type is not None:
            self._abandon()

    def _abandon(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        _remove_made(self._made)

    def _replace(self, written: list[str]) -> None:
        Manifest({rel: _entry(self.tmp / rel, self.by) for rel in written}).write(self.tmp)
        # the folder may have gained files while we wrote: look again
        if check_output_folder(self.target, force=False, by=self.by) != "replace":
            raise OutputRefused(
                f"output folder {self.target} changed while funnelsim was writing; "
                "nothing was written — run again"
            )
        with _hold_interrupts():
            old = None
            if self.target.exists():
                old = self.target.parent / f".{self.target.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(self.target, old)
            try:
                os.replace(self.tmp, self.target)
            except OSError:
                if old is not None:
                    os.replace(old, self.target)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def _merge(self, written: list[str]) -> None:
        target, by = self.target, self.by
        manifest = Manifest.read(target)
        taken = [MANIFEST] if manifest is None else []
        manifest = manifest or Manifest()
        for rel in written:
            dest = target / rel
            clash = next((p for p in [*Path(rel).parents][:-1] if (target / p).is_file()), None)
            if clash is not None:
                taken.append(clash.as_posix())
            elif dest.exists() or dest.is_symlink():
                if not manifest.owns(target, rel):
                    taken.append(rel)
        if taken:
            raise OutputRefused(_taken_message(target, sorted(set(taken))))
        stale = [
            rel
            for rel, entry in manifest.files.items()
            if rel not in written and entry.get("by") == by and manifest.owns(target, rel)
        ]
        kept = {
            rel: entry
            for rel, entry in manifest.files.items()
            if rel not in written and rel not in stale and manifest.owns(target, rel)
        }
        entries = {rel: _entry(self.tmp / rel, by) for rel in written}
        with _hold_interrupts():
            for rel in written:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.tmp / rel, target / rel)
            for rel in stale:  # an earlier run's file this run does not write (a plot)
                (target / rel).unlink()
                for parent in Path(rel).parents:
                    if parent != Path("."):
                        with contextlib.suppress(OSError):
                            (target / parent).rmdir()
            Manifest({**kept, **entries}).write(target)
            shutil.rmtree(self.tmp, ignore_errors=True)


def check_output_file(path: str | Path) -> Path:
    """The resolved ``path``, if :func:`write_file` may write it: it does not exist, or
    funnelsim wrote it and nobody changed it since. Raises :class:`OutputRefused`
    otherwise. Nothing is written."""
    path = Path(path).resolve()
    folder = path.parent
    if path.name == MANIFEST or path.name.startswith(_TMP):
        raise OutputRefused(f"{path}: this name is reserved for funnelsim's own records")
    manifest = Manifest.read(folder) if folder.is_dir() else Manifest()
    if manifest is None:
        raise OutputRefused(
            f"{folder / MANIFEST} is not funnelsim's record of what it wrote, so funnelsim "
            "cannot write into this folder — choose another folder"
        )
    if path.is_dir():
        raise OutputRefused(f"{path} is a folder — name a file")
    if (path.exists() or path.is_symlink()) and not manifest.owns(folder, path.name):
        raise OutputRefused(
            f"{path} already exists and funnelsim did not write it (or it was changed "
            "since); nothing was written — choose another file name, or move the file away"
        )
    return path


def write_file(path: str | Path, write: Callable[[Path], object], *, by: str) -> Path:
    """Write one file with ``write(temporary_path)``, then rename it to ``path`` and
    record it in the folder's manifest.

    An existing ``path`` is replaced only when funnelsim wrote it and nobody changed it
    since; otherwise :class:`OutputRefused` is raised before anything is written
    (:func:`check_output_file`). Returns the resolved path.
    """
    path = check_output_file(path)
    folder = path.parent
    made = _make_parents(folder)
    tmp = folder / f"{_TMP}{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        write(tmp)
        entry = _entry(tmp, by)
        with _hold_interrupts():
            check_output_file(path)  # look again: it may have appeared while we wrote
            os.replace(tmp, path)
            manifest = Manifest.read(folder) or Manifest()
            files = {rel: e for rel, e in manifest.files.items() if (folder / rel).is_file()}
            Manifest({**files, path.name: entry}).write(folder)
    except InterruptedAfterWriting:
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_made(made)
        raise
    return path


def write_files(writers: dict[Path, Callable[[Path], object]], *, by: str) -> list[Path]:
    """Write several files all or nothing: every path is checked first (a file funnelsim
    did not write is never replaced), each is written to a temporary file beside it, and
    only when all succeeded are they renamed into place and recorded in the manifests.
    Returns the resolved paths."""
    paths = [check_output_file(p) for p in writers]
    made: list[Path] = []
    for folder in dict.fromkeys(p.parent for p in paths):
        made += _make_parents(folder)
    temps: list[Path] = []
    try:
        for path, write in zip(paths, writers.values()):
            tmp = path.parent / f"{_TMP}{uuid.uuid4().hex[:8]}{path.suffix}"
            temps.append(tmp)
            write(tmp)
        entries = [_entry(tmp, by) for tmp in temps]
        with _hold_interrupts():
            for path in paths:
                check_output_file(path)  # look again: one may have appeared meanwhile
            for tmp, path in zip(temps, paths):
                os.replace(tmp, path)
            for folder in dict.fromkeys(p.parent for p in paths):
                manifest = Manifest.read(folder) or Manifest()
                files = {r: e for r, e in manifest.files.items() if (folder / r).is_file()}
                files |= {p.name: e for p, e in zip(paths, entries) if p.parent == folder}
                Manifest(files).write(folder)
    except InterruptedAfterWriting:
        raise
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        _remove_made(made)
        raise
    return paths
