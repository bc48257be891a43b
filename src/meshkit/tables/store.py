"""Where tables live: a `Location` is a URI, a `TableStore` does the file work on it.

The platform names every table, staging folder and log file by a URI: ``file:///srv/warehouse/
sales/orders`` today, ``s3://bucket/warehouse/sales/orders`` or ``abfss://...`` later. Joining
locations is string work on the URI (`Location / "data"`), the same for every scheme; what
touches storage (listing the log, reading a commit file, creating and removing staging folders,
the size of a staged file) is a `TableStore`'s, one implementation per scheme, chosen by the
registry in `meshkit.tables.stores`. delta-rs opens each location with the store's
`storage_options` (credentials, endpoints; none for local files).

A ``file`` location prints as its path (``meshkit show`` shows where the table is, as it always
did), and is path-like: `os.fspath()` of it is the local path, so tools that take a path (an
engine staging Parquet, pyarrow) take a local location too. Any other location prints as its URI
and is not path-like.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, ClassVar, Protocol
from urllib.parse import quote, unquote, urlsplit


@dataclass(frozen=True, order=True)
class Location:
    """A table, or a folder or file in one, as an absolute URI (``scheme://...``)."""

    uri: str

    @property
    def scheme(self) -> str:
        return urlsplit(self.uri).scheme

    @property
    def name(self) -> str:
        """The last segment, decoded (`orders` of ``.../sales/orders``)."""
        return unquote(self.uri.rstrip("/").rsplit("/", 1)[-1])

    @property
    def parent(self) -> Location:
        return Location(self.uri.rstrip("/").rsplit("/", 1)[0])

    def __truediv__(self, relative: str) -> Location:
        """The location `relative` (a ``/``-separated path, encoded here) below this one."""
        return Location(self.uri.rstrip("/") + "/" + quote(relative.strip("/"), safe="/"))

    def is_relative_to(self, other: Location) -> bool:
        return self.uri == other.uri or self.uri.startswith(other.uri.rstrip("/") + "/")

    def __str__(self) -> str:
        return self.__fspath__() if self.scheme == "file" else self.uri

    def __fspath__(self) -> str:
        """The local path of a ``file`` location (a TypeError for any other scheme)."""
        if self.scheme != "file":
            raise TypeError(f"{self.uri} is not on the local file system")
        return unquote(urlsplit(self.uri).path)


@dataclass(frozen=True)
class FileInfo:
    """What a commit records of a data file."""

    size: int
    modified_ms: int


class TableStore(Protocol):
    """The storage work the warehouse does on locations of one URI scheme.

    Listings are sorted, and a folder that does not exist lists as empty. Writes are confined
    to staging folders and their removal: the Delta log itself is written by delta-rs."""

    scheme: ClassVar[str]

    @property
    def storage_options(self) -> Mapping[str, str]:
        """What delta-rs needs to open a table here (credentials, endpoint, region...)."""
        ...

    def locate(self, text: str) -> Location:
        """A location as written in a setting or a spec (a URI, or a path for ``file``)."""
        ...

    def is_absolute(self, text: str) -> bool:
        """Whether `text` names a location by itself, rather than one below the warehouse."""
        ...

    def make_dir(self, folder: Location) -> None:
        """Create `folder` (and its parents); FileExistsError if it already exists."""
        ...

    def remove_tree(self, folder: Location) -> None:
        """Remove `folder` and everything in it; no error if it is already gone."""
        ...

    def remove_empty_dirs(self, folder: Location) -> None:
        """Remove the empty folders directly inside `folder`."""
        ...

    def names(self, folder: Location) -> list[str]:
        """The names of the entries in `folder`."""
        ...

    def files(self, folder: Location, *, suffix: str) -> list[Location]:
        """The files in `folder` whose name ends with `suffix`."""
        ...

    def exists(self, location: Location) -> bool: ...

    def info(self, file: Location) -> FileInfo | None:
        """Size and modification time of `file`, None if there is no such file."""
        ...

    def open(self, file: Location) -> AbstractContextManager[IO[bytes]]:
        """`file` opened for reading; FileNotFoundError if there is no such file."""
        ...

    def relative(self, table: Location, file: str) -> str:
        """`file` (as delta-rs reports it: relative, absolute path or URI) relative to
        `table`, ``/``-separated; unchanged when it is not inside the table."""
        ...
