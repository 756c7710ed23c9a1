"""Publishing the paper's Kinetics-400 releases on a hub (maintainers): ``tokshift-zoo publish ORG``.

Each release is fetched through the zoo's sources (a hub copy, the mirror, the authors' Google Drive), converted
and pinned like any load, then pushed with ``convert.publish`` (safetensors, timm ``config.json``, model card).
The printed ``K400_HUB_COPIES`` lines make the hub copies the first source, with real sha256 pins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .convert import publish
from .models.registry import get_weights, list_models
from .weights import download, sha256_file

__all__ = ["PublishedRelease", "publish_releases"]


@dataclass(frozen=True)
class PublishedRelease:
    """One model ``publish_releases`` pushed: its hub repo, the sha256 of its ``model.safetensors``, the commit."""

    name: str
    repo_id: str
    sha256: str
    commit_url: str

    def registry_line(self) -> str:
        """The line to paste into ``K400_HUB_COPIES`` (``models/entries.py``)."""
        return f'    "{self.name}": ("{self.repo_id}", "{self.sha256}"),'


def publish_releases(
    org: str,
    names: list[str] | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> list[PublishedRelease]:
    """Fetch the paper's Kinetics-400 releases (from any source: hub copy, mirror, the authors' Drive), convert
    them, and push each to ``ORG/NAME`` with timm's ``config.json`` and the generated model card.

    Args:
        org: the hub user or organisation.
        names: architectures (default: every entry with an authors' release).

    Returns:
        One ``PublishedRelease`` per model; ``registry_line()`` gives the ``K400_HUB_COPIES`` line to paste so
        that the hub copy becomes the first source, with its sha256 pin.
    """
    if names is None:
        names = [n for n in list_models() if f"{n}.k400" in list_models(pretrained=True)]
        names = [n for n in names if get_weights(f"{n}.k400").drive_folder]
    published = []
    for name in names:
        fetched = download(f"{name}.k400", cache_dir=cache_dir)
        repo_id = f"{org}/{name}"
        commit_url = publish(fetched.path, repo_id, private=private, token=token)
        published.append(PublishedRelease(name, repo_id, sha256_file(fetched.path), commit_url))
    return published
