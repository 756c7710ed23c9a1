"""The authors' Kinetics-400 release: fetched once, read safely, checked, converted, pinned in the cache.

The paper's seven checkpoints are ``torch.save`` files on the authors' Google Drive, with no published hash.
Sources, tried in order by the router for a ``k400`` tag without a hub copy:

1. a mirror: ``TOKSHIFT_ZOO_AUTHORS_MIRROR`` is a local folder or an ``http(s)://`` base URL holding
   ``NAME.pth`` (organisations with air-gapped clusters keep one; the tests use both kinds);
2. the authors' Google Drive folder of the model, listed and downloaded with gdown; the checkpoint is the
   ``*.pth``/``*.pth.tar``/``*.pt`` file, the one whose name says "best" if there are several.

The release file is read with ``weights_only=True``, mapped and checked by ``convert.convert`` (every key placed,
every shape the architecture's, a 400-class head) and written once as the zoo's safetensors in
``<cache>/authors/NAME/``, under a file lock, so parallel processes and DDP ranks download and convert once.
As the authors publish no hash, the first download pins what it got: ``pins.json`` holds the source file's
sha256 and the converted file's. Every later load verifies the converted file against its pin (a changed file
is removed and refused); a new download must match the source pin. The source file is deleted once converted,
so every file kept in the cache is covered by a pin.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from huggingface_hub import constants as hf_constants
from tqdm.auto import tqdm

from ..atomic import atomic_write
from ..errors import ChecksumError, DownloadError, NotCachedError, WeightsError
from ..models.registry import get_weights
from .local import check_zip_crcs, read_safetensors_metadata
from .pins import Fetched, cache_lock, sha256_file
from .url import DownloadLimits, TransferWatch, http_download, zoo_cache_root

__all__ = ["MIRROR_ENV", "authors_cache_dir", "fetch_authors_release", "pick_checkpoint", "read_pins"]

_logger = logging.getLogger(__name__)

MIRROR_ENV = "TOKSHIFT_ZOO_AUTHORS_MIRROR"
_TAG = "k400"
_CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt")
# builder arguments that change the weights' shapes; the others (frames, shift, image size: the position
# embedding is resampled when loading) leave the release loadable as it is
_SHAPE_KWARGS = ("embed_dim", "depth", "num_heads", "patch_size", "mlp_ratio")
_PIN_KEYS = ("source", "source_sha256", "converted_sha256")
_GDOWN_CHUNK = 512 * 1024  # gdown reports progress once per chunk of this size


def authors_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<zoo cache>/authors``: one folder per model with its converted file and ``pins.json``."""
    return zoo_cache_root(cache_dir) / "authors"


def read_pins(folder: Path) -> dict[str, Any]:
    """The pins of a model's cache folder (empty before the first download).

    Raises:
        ChecksumError: ``pins.json`` is not the JSON object the zoo writes (``_pins_or_fresh`` recovers).
    """
    path = folder / "pins.json"
    if not path.is_file():
        return {}
    try:
        pins = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise ChecksumError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(pins, dict) or not all(isinstance(pins.get(k), str) for k in _PIN_KEYS):
        raise ChecksumError(f"{path}: expected a JSON object with {', '.join(_PIN_KEYS)}, got {str(pins)[:200]}")
    return pins


def _pins_or_fresh(folder: Path, converted: Path) -> dict[str, Any]:
    """The folder's pins; a broken ``pins.json`` is reported and removed with the file it covered (neither can be
    trusted any more), so this call starts again as a first download, instead of failing until removed by hand."""
    try:
        return read_pins(folder)
    except ChecksumError as err:
        print(
            f"{err}. It cannot vouch for the cached files: removed them; the weights are fetched, checked and "
            "pinned again.",
            file=sys.stderr,
        )
        (folder / "pins.json").unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
        return {}


def _drive_url(folder_id: str) -> str:
    return f"https://drive.google.com/drive/folders/{folder_id}"


def _manual_route(name: str, folder_id: str | None) -> str:
    where = f"the authors' Google Drive folder {_drive_url(folder_id)}" if folder_id else "the authors' release"
    return (
        f"Download {name}'s checkpoint from {where} yourself, then either set {MIRROR_ENV} to the folder holding "
        f"it as {name}.pth, or load it directly with create_model({name!r}, checkpoint_path=FILE)."
    )


def pick_checkpoint(names: list[str], where: str) -> str:
    """The checkpoint among a release folder's file names (paths relative to the folder).

    ``*.pth``, ``*.pth.tar`` or ``*.pt``; among several, the one whose name says "best".

    Raises:
        DownloadError: none, or several and not exactly one says "best"; the message lists the files found.
    """
    candidates = [n for n in names if n.lower().endswith(_CHECKPOINT_SUFFIXES)]
    if len(candidates) > 1:
        best = [n for n in candidates if "best" in os.path.basename(n).lower()]
        candidates = best if len(best) == 1 else candidates
    if len(candidates) != 1:
        kind = "no checkpoint (*.pth, *.pth.tar, *.pt)" if not candidates else "several checkpoints"
        raise DownloadError(f"{where} holds {kind}; files found: {sorted(names)}")
    return candidates[0]


def _from_mirror(name: str, mirror: str, workdir: Path) -> tuple[Path, str]:
    """(the release file, where it came from) from a mirror folder or an http(s) base URL."""
    if mirror.startswith(("http://", "https://")):
        url = f"{mirror.rstrip('/')}/{name}.pth"
        partial = workdir / f"{name}.pth.incomplete"
        http_download(url, partial, keep_partial=False)  # the work folder goes: nothing to resume
        return partial.rename(workdir / f"{name}.pth"), url
    path = Path(mirror).expanduser() / f"{name}.pth"
    if not path.is_file():
        raise DownloadError(f"{MIRROR_ENV}={mirror}: no {name}.pth in that folder ({path})")
    return path, str(path)


def _from_drive(name: str, folder_id: str, workdir: Path) -> tuple[Path, str]:
    """(the release file, its Drive URL): the folder listed with gdown, the checkpoint picked and downloaded."""
    import gdown
    from gdown.exceptions import DownloadCancelled
    from gdown.exceptions import DownloadError as GdownError

    folder_url = _drive_url(folder_id)

    def refused(err: Exception | str) -> DownloadError:
        if _unreachable(err):  # DNS, refused connection, proxy, timeout: not Drive's quota
            return DownloadError(
                f"could not reach Google Drive for {name} ({_gist(err)}): check the network or use a mirror. "
                f"{_manual_route(name, folder_id)}"
            )
        return DownloadError(
            f"Google Drive refused or failed the download of {name} from {folder_url} ({_gist(err)}). Drive limits "
            f"downloads (quota, 'too many users'); try later, or use a mirror. {_manual_route(name, folder_id)}"
        )

    limits = DownloadLimits.from_env()
    timeout = (limits.connect_s, min(limits.connect_s, limits.stall_s))
    try:
        listing = gdown.download_folder(
            id=folder_id, output=str(workdir), quiet=True, skip_download=True, timeout=timeout
        )
    except (GdownError, OSError, ValueError) as err:  # quota, moved or private folder, network
        raise refused(err) from err
    if not listing:
        raise refused("the folder listing was empty")
    try:
        chosen = pick_checkpoint([f.path for f in listing], f"the Google Drive folder {folder_url}")
    except DownloadError as err:
        raise DownloadError(f"{err}. {_manual_route(name, folder_id)}") from err
    file = next(f for f in listing if f.path == chosen)
    target = workdir / f"{name}.pth.incomplete"
    print(f"downloading {name} from the authors' Google Drive: {chosen}", file=sys.stderr)
    # gdown counts progress per 512 KiB chunk: the stall window spans at least one chunk at the least rate
    window = max(limits.stall_s, _GDOWN_CHUNK / limits.min_rate if limits.min_rate > 0 else 0)
    watch = TransferWatch(f"download of {name} from {folder_url} ({chosen})", limits, window_s=window)
    with _watchdog(watch) as cancel:
        try:
            gdown.download(
                id=file.id,
                output=str(target),
                quiet=False,
                timeout=timeout,
                progress=lambda done, _total: watch.add(done - watch.received),
                cancel=cancel,
            )
        except DownloadCancelled:
            raise DownloadError(f"{watch.error}. The partial file was removed.") from None
        except (GdownError, OSError, ValueError) as err:
            raise refused(err) from err
    if not target.is_file() or target.stat().st_size == 0:
        raise refused("nothing was received")
    return target.rename(workdir / f"{name}.pth"), f"{folder_url} ({chosen})"


def _causes(err: Exception | str) -> list[BaseException]:
    """An error and those under it (``raise from``, urllib3's ``reason``, requests' wrapped error), outermost first."""
    chain = []
    while isinstance(err, BaseException) and err not in chain and len(chain) < 16:
        chain.append(err)
        inner = getattr(err, "reason", None)
        if not isinstance(inner, BaseException):
            inner = err.args[0] if err.args and isinstance(err.args[0], BaseException) else None
        err = inner or err.__cause__ or err.__context__
    return chain


def _unreachable(err: Exception | str) -> bool:
    """Whether an error is, underneath, a failure to connect at all (DNS, refused, proxy, timeout)."""
    import requests

    kinds = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
    return any(isinstance(e, kinds) or type(e).__name__ in ("NameResolutionError", "gaierror") for e in _causes(err))


def _gist(err: Exception | str, limit: int = 120) -> str:
    """The innermost error's first line, cut to ``limit`` characters (requests' own repeat the URL and pool)."""
    chain = _causes(err)
    if not chain:
        return str(err)[:limit]
    inner = chain[-1]
    text = f"{type(inner).__name__}: {str(inner).strip().splitlines()[0] if str(inner).strip() else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _watchdog(watch: TransferWatch, every_s: float = 0.2) -> Iterator[threading.Event]:
    """An event that a thread sets once ``watch`` fails (deadline passed, stalled), its error in ``watch.error``:
    gdown's ``cancel``, which interrupts a read that a trickling server keeps from timing out."""
    cancel, done = threading.Event(), threading.Event()

    def run() -> None:
        while not done.wait(every_s):
            if (error := watch.failure()) is not None:
                watch.error = error
                cancel.set()
                return

    thread = threading.Thread(target=run, name="tokshift-zoo download watchdog", daemon=True)
    thread.start()
    try:
        yield cancel
    finally:
        done.set()
        thread.join()


def _verified_cached(name: str, converted: Path, pins: dict[str, Any]) -> Fetched:
    """The converted file, checked against its pins and its own metadata; a file that does not match is removed
    and refused.

    Three things must agree: the file's sha256 with ``converted_sha256``; the model and tag it was converted for
    (its metadata) with ``name`` and ``k400`` (a folder copied or swapped from another model fails here, even
    where the shapes match); the source sha256 in its metadata with ``source_sha256``.
    """
    expected = pins.get("converted_sha256")
    actual = sha256_file(converted)
    if actual != expected:
        pin = f"the pin {expected}" if expected else "no pin"
        problem = (
            f"sha256 {actual} does not match {pin} written at the first download ({converted.parent / 'pins.json'})"
        )
    else:
        try:
            metadata = read_safetensors_metadata(converted)
        except WeightsError as err:
            metadata = {"error": str(err)}
        made_for = f"{metadata.get('architecture')}.{metadata.get('tag')}"
        if made_for != f"{name}.{_TAG}" or pins.get("model", made_for) != made_for:
            problem = f"it was converted for {made_for}, not {name}.{_TAG} (a cache folder copied or swapped?)"
        elif metadata.get("source_sha256") != pins.get("source_sha256"):
            problem = (
                f"its metadata names the source sha256 {metadata.get('source_sha256')}, its pin "
                f"{pins.get('source_sha256')}"
            )
        else:
            return Fetched(converted, pins["source"], sha256=actual, verified_by="cache pin of the first download")
    converted.unlink(missing_ok=True)
    removed = "The file was removed"
    if pins.get("model", f"{name}.{_TAG}") != f"{name}.{_TAG}":  # another model's pins: they vouch for nothing here
        (converted.parent / "pins.json").unlink(missing_ok=True)
        removed = f"The file and its pins (of {pins['model']}) were removed"
    raise ChecksumError(f"{converted}: {problem}. {removed}; a later call downloads and converts again.")


def fetch_authors_release(
    name: str,
    model_kwargs: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Fetched:
    """The zoo safetensors of ``name``'s Kinetics-400 release: from the cache (verified), or fetched and converted.

    Args:
        name: a zoo architecture with a ``k400`` tag (one of the paper's seven).
        model_kwargs: builder overrides; those that change shapes (width, depth, heads, patch) are the
            architecture the release is checked against (the registry's when absent).
        cache_dir: the Hugging Face cache whose sibling ``tokshift-zoo`` folder holds the zoo's cache.

    Raises:
        NotCachedError: offline (``HF_HUB_OFFLINE=1``) and not converted yet.
        DownloadError: no source could serve it (the message names the Drive folder, the mirror setting and
            the manual route).
        ChecksumError: the cached file, or a new download, differs from the pinned one (it was removed).
        WeightsError: the release does not fit the architecture (keys, shapes, not 400 classes).
    """
    record = get_weights(f"{name}.{_TAG}")
    folder = authors_cache_dir(cache_dir) / name
    converted = folder / f"{name}.{_TAG}.safetensors"
    if converted.is_file() and (pins := _pins_or_fresh(folder, converted)):
        return _verified_cached(name, converted, pins)
    if hf_constants.is_offline_mode():
        raise NotCachedError(
            f"HF_HUB_OFFLINE is set and {name}.{_TAG} is not in the cache ({converted}). Fetch it once while "
            f"online (`tokshift-zoo download {name}.{_TAG}`), or unset HF_HUB_OFFLINE."
        )
    folder.mkdir(parents=True, exist_ok=True)
    with cache_lock(converted):
        pins = _pins_or_fresh(folder, converted)
        if converted.is_file() and pins:  # another process converted it while this one waited
            return _verified_cached(name, converted, pins)
        return _download_and_convert(name, record.drive_folder, model_kwargs or {}, folder, converted, pins)


def _download_and_convert(
    name: str, folder_id: str | None, model_kwargs: dict[str, Any], folder: Path, converted: Path, pins: dict[str, Any]
) -> Fetched:
    """Fetch, check (zip CRCs, then the source pin), convert and pin; called with the cache lock held."""
    from ..convert import convert  # the converter sits above the weights sources: called, not imported at load

    mirror = os.environ.get(MIRROR_ENV, "").strip()
    workdir = folder / "download"
    shutil.rmtree(workdir, ignore_errors=True)  # a killed run's partial download: the lock is ours
    workdir.mkdir()
    bar = tqdm(total=3, desc=f"{name}: verify, convert, pin", unit="step", disable=None)
    try:
        if mirror:
            src, source = _from_mirror(name, mirror, workdir)
        elif folder_id:
            src, source = _from_drive(name, folder_id, workdir)
        else:
            raise DownloadError(f"no source for {name}.{_TAG}: no Drive folder known. {_manual_route(name, None)}")
        check_zip_crcs(src, f"{source} (the release file)")  # torch itself reads a zip without checking CRCs
        source_sha256 = sha256_file(src)
        bar.update()
        if pins.get("source_sha256") and pins["source_sha256"] != source_sha256:
            raise ChecksumError(
                f"{source}: sha256 {source_sha256} differs from {pins['source_sha256']}, the file first downloaded "
                f"and pinned in {folder / 'pins.json'}. Refusing it; remove that folder to accept the new file."
            )
        shape_kwargs = {k: v for k, v in model_kwargs.items() if k in _SHAPE_KWARGS}
        tmp = workdir / converted.name
        result = convert(src, tmp, name, model_kwargs=shape_kwargs, tag=_TAG, require_classes=400)
        bar.update()
        pins = {
            "model": f"{name}.{_TAG}",
            "source": source,
            "source_sha256": source_sha256,
            "converted_sha256": result.sha256,
        }
        atomic_write(folder / "pins.json", lambda p: p.write_text(json.dumps(pins, indent=2) + "\n"))
        os.replace(tmp, converted)
        bar.update()
    finally:
        bar.close()
        shutil.rmtree(workdir, ignore_errors=True)  # the source, once converted, and any failed partial file
    print(
        f"{name}: the authors publish no hash of their files; this download's sha256 is {source_sha256}, now "
        f"pinned in {folder / 'pins.json'} with the converted file's and checked on every later load",
        file=sys.stderr,
    )
    _logger.info("%s.%s: converted %s (sha256 %s) -> %s", name, _TAG, source, source_sha256, converted)
    return Fetched(converted, source, sha256=pins["converted_sha256"], verified_by="pinned at this first download")
