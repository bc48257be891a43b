"""The example mesh, the `meshkit init` template, and the TPC-H data they run on.

example_mesh_path()   a realistic five-domain mesh over TPC-H (see README.md here)
mesh_template_path()  the minimal one-domain mesh `meshkit init` starts from
copy_tree(src, dest)  copy either of them into a folder, never over an existing mesh
tpch.generate(dest)   the data the example mesh reads (`<mesh>/data`)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from meshkit.errors import MeshkitError

__all__ = ["copy_tree", "example_mesh_path", "mesh_template_path"]

_HERE = Path(__file__).resolve().parent
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")


def example_mesh_path() -> Path:
    """The example mesh shipped with meshkit (read-only: copy it before building)."""
    return _HERE / "mesh"


def mesh_template_path() -> Path:
    """The minimal mesh `meshkit init` copies: one domain, one product, a small CSV."""
    return _HERE / "template"


def copy_tree(src: Path, dest: Path) -> None:
    """Copy the mesh folder `src` into `dest`, refusing to overwrite a mesh already there.

    Other files in `dest` are kept; files of the same name as ones in `src` are replaced.
    """
    if not (src / "mesh.yaml").is_file():
        raise MeshkitError(f"{src} is not a mesh folder (it has no mesh.yaml)")
    existing = dest / "mesh.yaml"
    if existing.is_file() and existing.read_text(encoding="utf-8").strip():
        raise MeshkitError(
            f"{dest} already holds a mesh ({existing} is not empty)",
            hint="choose an empty folder, or remove mesh.yaml if you mean to start over",
        )
    if dest.exists() and not dest.is_dir():
        raise MeshkitError(f"{dest} exists and is not a folder", hint="choose another path")
    shutil.copytree(src, dest, ignore=_IGNORE, dirs_exist_ok=True)
