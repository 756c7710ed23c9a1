"""Loopback stand-ins for the Hugging Face hub and for a plain HTTPS file host, for the weight tests.

``HubServer`` answers the part of the hub's HTTP protocol that huggingface_hub's download and upload paths use:

- ``HEAD``/``GET /{org}/{repo}/resolve/{revision}/{path}``: ``X-Repo-Commit``, ``ETag`` (git blob sha1, or the
  sha256 for LFS files), ``X-Linked-Etag`` and ``X-Linked-Size`` for LFS files, ``Content-Length``, Range
  requests; 404 with ``X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound``.
- ``GET /api/models/{repo}[/revision/{revision}]`` (id, sha, siblings); ``GET /api/models/{repo}/tree/{revision}
  [/{path}]`` (the files under ``path``, as one page: what ``list_repo_files`` and ``upload_folder``'s
  ``delete_patterns`` read).
- ``POST /api/repos/create``, ``POST /api/validate-yaml``, ``POST /api/models/{repo}/preupload/{revision}``,
  ``POST /{repo}.git/info/lfs/objects/batch`` (basic transfer), ``PUT`` of the LFS object, and
  ``POST /api/models/{repo}/commit/{revision}`` (ndjson: header, file, lfsFile, deletedFile).

Not served: Xet storage (tests set ``HF_HUB_DISABLE_XET``), auth, redirects, pull requests.

``FileServer`` serves ``GET``/``HEAD /files/{name}`` with Range requests. Both take faults per file
(``tamper``, ``truncate``, ``drop``, ``gone``) and count the GETs of each file. Both bind 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

__all__ = ["Fault", "FileServer", "HubServer"]


@dataclass
class Fault:
    """How to spoil the next ``times`` GETs of a file (None: all of them).

    kind: ``tamper`` (one byte flipped, headers unchanged), ``truncate`` (half the file served as if complete),
    ``drop`` (the full length announced, half sent, connection closed), ``gone`` (like drop, then the whole
    server stops), ``trickle`` (the full length announced, then one byte every ``interval`` seconds).
    """

    kind: str
    times: int | None = None
    interval: float = 0.5


@dataclass
class _Entry:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()  # noqa: S324 - git's id


@dataclass
class _Repo:
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, _Entry]] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: _Loopback) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), owner.handler)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        self.connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: _Loopback

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _send_file(self, key: tuple[str, str], data: bytes, headers: dict[str, str]) -> None:
        """Send ``data`` (or the asked range), spoiled by the file's fault if one is set."""
        owner = self.owner
        fault = owner._take_fault(key) if self.command == "GET" else None
        with owner._lock:
            owner.log.append((self.command, key[1], self.headers.get("Range")))
            if self.command == "GET":
                owner.downloads[key] += 1
        start, status = 0, 200
        asked = self.headers.get("Range", "") if owner.ranges else ""
        if match := re.fullmatch(r"bytes=(\d+)-(\d*)", asked):
            start = int(match.group(1))
            if start >= len(data):
                self._reply(416, headers={"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
            data = data[:end]
        body = data[start:]
        if fault is not None and fault.kind == "tamper":
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        if fault is not None and fault.kind == "truncate":
            body = body[: len(body) // 2]
        self.send_response(status)
        for name, value in {**headers, **({"Accept-Ranges": "bytes"} if owner.ranges else {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.kind in ("drop", "gone"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            if fault.kind == "gone":  # refuse new connections before the client sees this one end
                owner.stop()  # cuts this connection too
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "trickle":
            for offset in range(len(body)):
                self.wfile.write(body[offset : offset + 1])
                self.wfile.flush()
                time.sleep(fault.interval)
            return
        for offset in range(0, len(body), 1 << 16):
            self.wfile.write(body[offset : offset + (1 << 16)])
            if owner.throttle:
                time.sleep(owner.throttle)


class _Loopback:
    """A server on 127.0.0.1 with a random port, run in a daemon thread."""

    handler: type[_Handler]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: dict[tuple[str, str], Fault] = {}
        self.downloads: Counter[tuple[str, str]] = Counter()
        self.log: list[tuple[str, str, str | None]] = []  # (method, file, Range header) of each file request
        self.throttle = 0.0  # seconds to sleep after each 64 KiB of a file body
        self.ranges = True  # False: ignore Range headers and send whole files with 200, as some servers do
        self.handler = type("Handler", (self.handler,), {"owner": self})
        self._server: _Server | None = None
        self.url = ""

    def start(self) -> _Loopback:
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection: from now on, connections are refused."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in list(server.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _take_fault(self, key: tuple[str, str]) -> Fault | None:
        with self._lock:
            fault = self.faults.get(key)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[key]
            return fault

    def __enter__(self) -> _Loopback:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _FileHandler(_Handler):
    owner: FileServer

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        name = unquote(urlsplit(self.path).path).removeprefix("/files/")
        data = self.owner.files.get(name)
        if data is None:
            self._error(404, None, f"no file {name}")
            return
        self._send_file(("", name), data, {"Content-Type": "application/octet-stream"})


class FileServer(_Loopback):
    """A plain file host: ``GET /files/NAME``, with Range requests, faults and GET counts."""

    handler = _FileHandler

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def add(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``NAME``; returns its URL (valid once started)."""
        self.files[name] = data
        return f"{self.url}/files/{name}"

    def set_fault(self, name: str, fault: Fault) -> None:
        self.faults[("", name)] = fault

    def gets(self, name: str) -> int:
        return self.downloads[("", name)]


_LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".npz", ".ckpt")


def _is_lfs(path: str, data: bytes) -> bool:
    return path.endswith(_LFS_SUFFIXES) or len(data) > 10 * 1024 * 1024


class _HubHandler(_Handler):
    owner: HubServer

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            self._resolve(match.group(1), unquote(match.group(2)), unquote(match.group(3)))
        elif match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.+))?", path):
            self._tree(match.group(1), unquote(match.group(2)), unquote(match.group(3) or ""))
        elif match := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            self._model_info(match.group(1), unquote(match.group(2) or "main"))
        else:
            self._error(404, None, f"not found: {path}")

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        hub = self.owner
        with hub._lock:
            repo = hub.repos.get(repo_id)
            commit = None if repo is None else repo.branches.get(revision, revision)
            tree = None if repo is None else repo.commits.get(commit or "")
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if tree is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        entry = tree.get(filename)
        if entry is None:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
            return
        headers = {"X-Repo-Commit": commit, "Content-Type": "application/octet-stream"}
        if entry.lfs:
            headers |= {
                "ETag": f'"{entry.sha256}"',
                "X-Linked-Etag": f'"{entry.sha256}"',
                "X-Linked-Size": str(len(entry.data)),
            }
        else:
            headers["ETag"] = f'"{entry.git_oid}"'
        self._send_file((repo_id, filename), entry.data, headers)

    def _model_info(self, repo_id: str, revision: str) -> None:
        with self.owner._lock:
            repo = self.owner.repos.get(repo_id)
            commit = None if repo is None else repo.branches.get(revision, revision)
            tree = None if repo is None else repo.commits.get(commit or "")
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        elif tree is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
        else:
            siblings = [{"rfilename": path} for path in sorted(tree)]
            self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False, "siblings": siblings})

    def _tree(self, repo_id: str, revision: str, folder: str) -> None:
        with self.owner._lock:
            repo = self.owner.repos.get(repo_id)
            tree = None if repo is None else repo.commits.get(repo.branches.get(revision, revision))
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if tree is None and revision == "main" and not repo.branches:  # a new repo: the hub's main is empty
            tree = {}
        if tree is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries = []
        for path, entry in sorted(tree.items()):
            if not path.startswith(prefix):
                continue
            item = {"type": "file", "path": path, "size": len(entry.data), "oid": entry.git_oid}
            if entry.lfs:
                item["lfs"] = {"oid": entry.sha256, "size": len(entry.data), "pointerSize": 134}
            entries.append(item)
        self._json(200, entries)

    def do_PUT(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        match = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if not match:
            self._error(404, None, f"not found: {path}")
            return
        data = self._body()
        if hashlib.sha256(data).hexdigest() != match.group(1):
            self._error(400, None, "uploaded content does not match its oid")
            return
        with self.owner._lock:
            self.owner.lfs_objects[match.group(1)] = data
        self._reply(200)

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/api/repos/create":
            self._create_repo(json.loads(body))
        elif path == "/api/validate-yaml":
            self._json(200, {"errors": [], "warnings": []})
        elif match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path):
            self._preupload(match.group(1), unquote(match.group(2)), json.loads(body))
        elif match := re.fullmatch(r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
            self._lfs_batch(json.loads(body))
        elif match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path):
            self._commit(match.group(1), unquote(match.group(2)), body)
        else:
            self._error(404, None, f"not found: {path}")

    def _create_repo(self, payload: dict) -> None:
        repo_id = f"{payload['organization']}/{payload['name']}"
        with self.owner._lock:
            exists = repo_id in self.owner.repos
            if not exists:
                self.owner.repos[repo_id] = _Repo()
        url = f"{self.owner.url}/{repo_id}"
        if exists:  # the hub's 409 still names the repo's URL
            self._json(409, {"error": "You already created this model repo", "url": url}, {"X-Error-Message": "exists"})
        else:
            self._json(200, {"url": url, "name": repo_id})

    def _preupload(self, repo_id: str, revision: str, payload: dict) -> None:
        with self.owner._lock:
            repo = self.owner.repos.get(repo_id)
            tree = repo.commits.get(repo.branches.get(revision, ""), {}) if repo else None
        if tree is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        files = []
        for item in payload["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = item["path"].endswith(_LFS_SUFFIXES) or item["size"] > 10 * 1024 * 1024 or b"\0" in sample
            existing = tree.get(item["path"])
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid)
            files.append(
                {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._json(200, {"files": files, "commitOid": None})

    def _lfs_batch(self, payload: dict) -> None:
        objects = []
        for obj in payload["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.owner.lfs_objects:
                item["actions"] = {"upload": {"href": f"{self.owner.url}/lfs-upload/{obj['oid']}"}}
            objects.append(item)
        self._json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        hub = self.owner
        with hub._lock:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return
            tree = dict(repo.commits.get(repo.branches.get(revision, ""), {}))
            for line in lines:
                value = line["value"]
                if line["key"] == "file":
                    tree[value["path"]] = _Entry(base64.b64decode(value["content"]), lfs=False)
                elif line["key"] == "lfsFile":
                    if value["oid"] not in hub.lfs_objects:
                        self._error(400, None, f"LFS object {value['oid']} was not uploaded")
                        return
                    tree[value["path"]] = _Entry(hub.lfs_objects[value["oid"]], lfs=True)
                elif line["key"] == "deletedFile":
                    tree.pop(value["path"], None)
            commit = hub._store_commit(repo, revision, tree)
        self._json(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{commit}", "commitOid": commit})


class HubServer(_Loopback):
    """An in-memory hub: model repos with branches and commits, LFS objects, faults and GET counts per file."""

    handler = _HubHandler

    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[str, _Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}

    def _store_commit(self, repo: _Repo, branch: str, tree: dict[str, _Entry]) -> str:
        parent = repo.branches.get(branch, "")
        listing = sorted((path, entry.git_oid) for path, entry in tree.items())
        commit = hashlib.sha1(json.dumps([parent, listing]).encode()).hexdigest()  # noqa: S324 - a git-like id
        repo.commits[commit] = tree
        repo.branches[branch] = commit
        return commit

    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main", lfs: bool | None = None) -> str:
        """Add or replace ``files`` in ``repo_id`` (created if new) on ``branch``; returns the commit id.

        ``lfs``: store the files in LFS (True) or in git (False); None: by suffix and size, as the hub does.
        """
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo())
            tree = dict(repo.commits.get(repo.branches.get(branch, ""), {}))
            for path, data in files.items():
                tree[path] = _Entry(data, lfs=_is_lfs(path, data) if lfs is None else lfs)
                if tree[path].lfs:
                    self.lfs_objects[tree[path].sha256] = data
            return self._store_commit(repo, branch, tree)

    def file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        """The content of ``path`` in ``repo_id`` at ``revision`` (branch or commit)."""
        repo = self.repos[repo_id]
        return repo.commits[repo.branches.get(revision, revision)][path].data

    def set_fault(self, repo_id: str, path: str, fault: Fault) -> None:
        self.faults[(repo_id, path)] = fault

    def gets(self, repo_id: str, path: str) -> int:
        """How many GETs of ``path`` in ``repo_id`` the server has answered (HEADs are not counted)."""
        return self.downloads[(repo_id, path)]
