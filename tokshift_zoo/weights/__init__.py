"""Where weights come from and how they get into a model: one module per source, a router, pins.

- ``local``: files the user names (the zoo's safetensors, the authors' ``.pth`` read with ``weights_only=True``,
  Google's ViT ``.npz`` through timm's loader), loaded with a report of the keys loaded, re-initialised, unused.
- ``package``: files shipped in the package (``package://tokshift_zoo/data/NAME``), sha256-pinned.
- ``hub``: Hugging Face hub files through huggingface_hub (cache, locks, revisions, ``HF_HUB_OFFLINE``).
- ``url``: plain HTTPS URLs, resumed, under a cache lock.
- ``authors``: the authors' Kinetics-400 release (a mirror folder or URL, or their Google Drive through gdown),
  converted once to safetensors in the cache and pinned there at the first download.
- ``pins``: sha256 / git blob ids, provenance (``Fetched``), the cache lock.
- ``router``: which source serves an entry (``fetch_pretrained``), loading it (``load_pretrained``), and
  ``download`` for ``tokshift-zoo download``.

What this package adds to huggingface_hub is content checks: every network file is hashed after download and
compared with the registry's sha256 pin and, for hub files, with the hub's own hash; on a mismatch the file is
removed and ``ChecksumError`` names both hashes. Only safetensors are loaded from the network.

Importing this package installs ``router.prepare_model`` as the builders' weights loader (see
``models.registry.set_weights_loader``).
"""

from ..errors import ChecksumError, DownloadError, NotCachedError, WeightsError
from ..models.registry import set_weights_loader
from .authors import fetch_authors_release
from .hub import fetch_hub_file, hub_video_cfg
from .local import (
    LoadReport,
    is_training_output,
    load_state_dict_file,
    load_weights_file,
    read_checkpoint_metadata,
    read_safetensors_metadata,
)
from .package import package_file
from .pins import Fetched, sha256_file
from .router import download, fetch_pretrained, load_pretrained, prepare_model
from .url import fetch_url, url_cache_dir

set_weights_loader(prepare_model)

__all__ = [
    "ChecksumError",
    "DownloadError",
    "Fetched",
    "LoadReport",
    "NotCachedError",
    "WeightsError",
    "download",
    "fetch_authors_release",
    "fetch_hub_file",
    "fetch_pretrained",
    "fetch_url",
    "hub_video_cfg",
    "is_training_output",
    "load_pretrained",
    "load_state_dict_file",
    "load_weights_file",
    "package_file",
    "read_checkpoint_metadata",
    "read_safetensors_metadata",
    "sha256_file",
    "url_cache_dir",
]
