"""The `file` table store: tables in a folder of the local file system (or a mounted one).

The only module that touches table paths with `os`, `shutil` and `pathlib`; everything else
names them by `Location` and goes through a `TableStore`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, ClassVar

from meshkit.errors import MeshkitError
from meshkit.tables.store import FileInfo, Location


def local_path(location: Location) -> Path:
    """The path of a ``file`` location (a MeshkitError for any other scheme)."""
    if location.scheme != "file":
        raise MeshkitError(
            f"{location} is not on the local file system",
            hint="this needs a warehouse in a local (or mounted) folder",
        )
    return Path(location)


def local_location(path: str | Path) -> Location:
    """The ``file`` location of a path (made absolute; not resolved, so it prints as given)."""
    return Location(Path(path).absolute().as_uri())


class LocalStore:
    """Tables under a local folder; delta-rs needs no options to open them."""

    scheme: ClassVar[str] = "file"

    @property
    def storage_options(self) -> Mapping[str, str]:
        return {}

    def locate(self, text: str) -> Location:
        if text.startswith("file:"):
            return Location(text)
        return local_location(text)

    def is_absolute(self, text: str) -> bool:
        return text.startswith("file:") or Path(text).is_absolute()

    def make_dir(self, folder: Location) -> None:
        local_path(folder).mkdir(parents=True, exist_ok=False)

    def remove_tree(self, folder: Location) -> None:
        shutil.rmtree(local_path(folder), ignore_errors=True)

    def remove_empty_dirs(self, folder: Location) -> None:
        path = local_path(folder)
        if not path.is_dir():
            return
        for child in path.iterdir():
            if child.is_dir() and not any(child.iterdir()):
                child.rmdir()

    def names(self, folder: Location) -> list[str]:
        try:
            return sorted(p.name for p in local_path(folder).iterdir())
        except OSError:
            return []

    def files(self, folder: Location, *, suffix: str) -> list[Location]:
        return [local_location(p) for p in sorted(local_path(folder).glob(f"*{suffix}"))]

    def exists(self, location: Location) -> bool:
        return local_path(location).exists()

    def info(self, file: Location) -> FileInfo | None:
        path = local_path(file)
        if not path.is_file():
            return None
        stat = path.stat()
        return FileInfo(size=stat.st_size, modified_ms=int(stat.st_mtime * 1000))

    def open(self, file: Location) -> AbstractContextManager[IO[bytes]]:
        return local_path(file).open("rb")

    def relative(self, table: Location, file: str) -> str:
        root = local_path(table).resolve()
        path = Path(file.removeprefix("file://"))
        if path.is_absolute() and path.resolve().is_relative_to(root):
            path = path.resolve().relative_to(root)
        return path.as_posix()
