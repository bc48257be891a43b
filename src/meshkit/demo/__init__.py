"""The example mesh, the `meshkit init` template, and the TPC-H data they run on.

example_mesh_path()   a realistic five-domain mesh over TPC-H (see README.md here)
mesh_template_path()  the minimal one-domain mesh `meshkit init` starts from
copy_tree(src, dest)  copy either of them into a folder, never over an existing mesh
init_mesh(dest)       the template, named after its folder (what `meshkit init` does)
tpch.generate(dest)   the data the example mesh reads (`<mesh>/data`)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from meshkit.errors import MeshkitError

__all__ = ["copy_tree", "example_mesh_path", "init_mesh", "mesh_name_for", "mesh_template_path"]

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


_TEMPLATE_NAME = "name: my-mesh\n"


def mesh_name_for(folder: Path) -> str:
    """A valid mesh name (`^[a-z][a-z0-9_-]*$`) from a folder's name: `Sales Data` ->
    `sales-data`; `my-mesh` when nothing of it is usable."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")
    if name and not name[0].isalpha():
        name = f"mesh-{name}"
    return name or "my-mesh"


def init_mesh(dest: Path) -> str:
    """Copy the `meshkit init` template into `dest`, named after the folder; its name."""
    copy_tree(mesh_template_path(), dest)
    name = mesh_name_for(dest)
    mesh_file = dest / "mesh.yaml"
    text = mesh_file.read_text(encoding="utf-8")
    mesh_file.write_text(text.replace(_TEMPLATE_NAME, f"name: {name}\n", 1), encoding="utf-8")
    return name
