"""Weight files shipped inside the package (``package://tokshift_zoo/data/NAME``), checked against their pin."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ChecksumError
from ..models.registry import PACKAGE_SCHEME, package_file
from .pins import Fetched, sha256_file

__all__ = ["fetch_package_file", "package_file"]


def fetch_package_file(ref: str, sha256: str | None) -> Fetched:
    """The packaged file ``ref`` names, verified against ``sha256`` (a packaged file must be pinned)."""
    package, _, inner = ref.removeprefix(PACKAGE_SCHEME).partition("/")
    traversable = resources.files(package).joinpath(inner)
    if not traversable.is_file():
        raise FileNotFoundError(f"{ref}: no such file in the installed package {package}")
    path = Path(str(traversable))  # the package is installed as files (setuptools, editable or not)
    actual = sha256_file(path)
    if not sha256:
        raise ChecksumError(
            f"{ref}: a packaged weight file must have a sha256 pin in its weights record; this file's is {actual}"
        )
    if actual != sha256.lower():
        raise ChecksumError(
            f"{path}: sha256 mismatch for the packaged weights {ref}: expected {sha256.lower()} (registry pin), "
            f"got {actual}. Reinstall tokshift-zoo."
        )
    return Fetched(path, ref, sha256=actual, verified_by="registry pin")
