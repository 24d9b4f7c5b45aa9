"""FakeHub: a small, real HTTP server speaking the part of the Hugging Face Hub API that
``huggingface_hub`` 2.4.0 uses to create repos, upload folders, tag commits and download files.

Tests run the *real* client against it (``HF_ENDPOINT=http://127.0.0.1:PORT``). Standard library
only: ``http.server.ThreadingHTTPServer`` in a background thread.

Endpoints, with the client code that calls them (paths as built by huggingface_hub 2.4.0)::

    POST /api/repos/create                              HfApi.create_repo (409 if it exists)
    POST /api/validate-yaml                             upload_folder, when README.md is uploaded
    GET  /api/whoami-v2                                 HfApi.whoami
    GET  /api/{type}s/{ns}/{name}[/revision/{rev}]      repo_info / model_info (blobs=1 adds sizes)
    GET  /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]   list_repo_tree / list_repo_files / snapshot_download
    GET  /api/{type}s/{ns}/{name}/refs                  list_repo_refs
    POST /api/{type}s/{ns}/{name}/preupload/{rev}       _commit_api._fetch_upload_modes
    POST /api/{type}s/{ns}/{name}/commit/{rev}          _commit_api._send_commit (ndjson, base64 files)
    POST /api/{type}s/{ns}/{name}/tag/{rev}             HfApi.create_tag (409 if the tag exists)
    POST /api/{type}s/{ns}/{name}/branch/{branch}       HfApi.create_branch (409 if it exists)
    DELETE /api/{type}s/{ns}/{name}/branch/{branch}     HfApi.delete_branch (not main)
    HEAD/GET /[{type}s/]{ns}/{name}/resolve/{rev}/{path} hf_hub_download / snapshot_download

``type`` is model (no URL prefix for resolve), dataset or space. Repo ids must be ``namespace/name``.

How uploads work: with ``hf_xet`` installed, ``upload_folder`` goes through
``_upload_pipeline.pipelined_upload``: it asks the *preupload* endpoint how to send each file, and
would upload "lfs" files through Xet storage (not available here). FakeHub answers ``"regular"``
for every file, which the client accepts for any size: files then travel base64-encoded inside
the commit payload, so there is no LFS batch/Xet endpoint. Preupload also returns the remote git
blob oid of each path, so the client skips unchanged files (a re-upload of the same folder makes no
commit), as on the real Hub. ``lfsFile`` commit operations are rejected with 400.

Storage (under ``root``, survives a restart): ``blobs/<git-blob-sha1>`` holds file contents;
``repos/<type>/<ns>/<name>.json`` holds branches, tags and every commit (40-hex sha, parent,
title, ``{path: blob oid}`` snapshot), so an old tag still serves the old files. A new repo gets an
initial commit holding ``.gitattributes``, as on the Hub, so ``main`` always exists.

Resolve responses carry ``X-Repo-Commit``, ``ETag`` (quoted git blob sha1), ``Content-Length`` and
``Accept-Ranges``, and honour ``Range`` (206 + ``Content-Range``; 416 if unsatisfiable). No
redirects, no ``X-Xet-Hash``: the client does a plain HTTP download.

Errors, shaped like the Hub's (JSON ``{"error": ...}`` plus ``X-Error-Message``/``X-Error-Code``):
  * a token that is not in ``tokens`` -> 401 "Invalid credentials in Authorization header", on any
    request (the real Hub rejects bad tokens even for public reads) -> ``HfHubHTTPError``;
  * a write (create repo, preupload, commit, tag) without a token -> 401 -> ``HfHubHTTPError``;
  * a missing repo -> 404 ``RepoNotFound`` -> ``RepositoryNotFoundError`` (the real Hub answers
    anonymous callers 401 + ``RepoNotFound``; the client raises the same error for both);
  * a private repo read without a token -> 401 ``RepoNotFound`` -> ``RepositoryNotFoundError``;
  * unknown revision -> 404 ``RevisionNotFound``; unknown file -> 404 ``EntryNotFound``.
Any valid token may read and write every repo (no per-user permissions).

Failure injection: ``hub.fail_next_download(after_bytes=N)`` makes the next resolve GET send its
headers (full ``Content-Length``) and only N body bytes, then close the connection. The 2.4.0
client (``file_download.http_get``) treats that as a transient error: it sleeps 1 s and resumes
with ``Range: bytes=N-`` (up to 5 retries without progress). ``hub.requests`` records every request.

Configuring the client -- ``huggingface_hub`` copies its environment into module constants at
import time, so setting ``HF_ENDPOINT`` in a test is not enough. :func:`configure_client` sets the
env vars (for subprocesses) *and* patches the constants used at call time: ``constants.ENDPOINT``,
``constants.HUGGINGFACE_CO_URL_TEMPLATE`` (``hf_hub_url``), ``constants.HF_HUB_OFFLINE`` (tests/
conftest.py sets ``HF_HUB_OFFLINE=1`` before the import), ``HF_HUB_DISABLE_TELEMETRY``, the cache and
token paths (so a developer's stored token is never sent), and the endpoint of the module-level
``huggingface_hub.hf_api.api`` behind ``huggingface_hub.create_repo`` & co. ``HfApi()`` created after
that, ``snapshot_download`` and ``hf_hub_download`` then all talk to the FakeHub.

Usage in a test module (conftest.py exposes the ``hub`` fixture to every test)::

    def test_x(hub, tmp_path):   # hub: a started FakeHub; client configured, HF_TOKEN=HUB_TOKEN
        HfApi().create_repo("alice/m", exist_ok=True)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

HUB_TOKEN = "hf_fakehub_test_token"
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = body or {}  # extra JSON fields, e.g. the "url" the Hub sends with a 409 on create


@dataclass
class Request:
    method: str
    path: str  # URL path, still percent-encoded
    headers: dict[str, str]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Store:
    """Repos, commits and content-addressed blobs under one directory. Thread-safe."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], dict] = {}
        for path in (self.root / "repos").glob("*/*/*.json"):
            repo = json.loads(path.read_text())
            self.repos[(repo["type"], repo["id"])] = repo

    def save(self, repo: dict) -> None:
        path = self.root / "repos" / repo["type"] / f"{repo['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(json.dumps(repo, indent=1))
        path.with_suffix(".tmp").replace(path)

    def put_blob(self, data: bytes) -> str:
        oid = git_blob_oid(data)
        path = self.root / "blobs" / oid
        if not path.exists():
            path.with_suffix(".tmp").write_bytes(data)
            path.with_suffix(".tmp").replace(path)
        return oid

    def blob(self, oid: str) -> bytes:
        return (self.root / "blobs" / oid).read_bytes()

    def blob_size(self, oid: str) -> int:
        return (self.root / "blobs" / oid).stat().st_size

    def create(self, repo_type: str, repo_id: str, private: bool) -> dict:
        repo = {"type": repo_type, "id": repo_id, "private": private, "createdAt": _now(),
                "branches": {}, "tags": {}, "commits": {}}
        self.commit(repo, "main", {".gitattributes": self.put_blob(GITATTRIBUTES)}, "initial commit", "")
        return repo

    def commit(self, repo: dict, branch: str, files: dict[str, str], title: str, description: str) -> str:
        parent = repo["branches"].get(branch)
        date = _now()
        seed = json.dumps([repo["id"], parent, sorted(files.items()), title, date, len(repo["commits"])])
        sha = hashlib.sha1(seed.encode()).hexdigest()
        repo["commits"][sha] = {"parent": parent, "title": title, "message": description, "date": date,
                                "files": dict(sorted(files.items()))}
        repo["branches"][branch] = sha
        self.save(repo)
        return sha

    @staticmethod
    def resolve(repo: dict, revision: str) -> str | None:
        """Branch, tag (optionally as refs/heads/X, refs/tags/X) or full commit sha -> commit sha."""
        for prefix, refs in (("refs/heads/", repo["branches"]), ("refs/tags/", repo["tags"])):
            name = revision[len(prefix):] if revision.startswith(prefix) else revision
            if name in refs:
                return refs[name]
        return revision if revision in repo["commits"] else None


class FakeHub:
    """A Hub API server on 127.0.0.1 (random port), storing its repos under ``root``.

    ``tokens``: valid bearer tokens, either an iterable (all map to user ``"user"``) or a mapping
    ``{token: username}``; the username is the namespace of ``create_repo("name")`` without one.
    """

    def __init__(self, root: Path, tokens: Iterable[str] | Mapping[str, str] = (HUB_TOKEN,),
                 host: str = "127.0.0.1", port: int = 0):
        self.store = Store(root)
        self.tokens = dict(tokens) if isinstance(tokens, Mapping) else {t: "user" for t in tokens}
        self.requests: list[Request] = []
        self._failures: list[dict] = []
        self._lock = threading.Lock()
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._server = ThreadingHTTPServer(self._address, _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail_next_download(self, after_bytes: int = 0, *, times: int = 1, filename: str | None = None) -> None:
        """Cut the next ``times`` file downloads (resolve GETs, of ``filename`` if given) after
        ``after_bytes`` body bytes: headers announce the full length, then the connection closes."""
        with self._lock:
            self._failures.append({"after_bytes": after_bytes, "times": times, "filename": filename})

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def _take_failure(self, filename: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure["filename"] in (None, filename):
                    failure["times"] -= 1
                    if failure["times"] <= 0:
                        self._failures.remove(failure)
                    return failure["after_bytes"]
        return None

    # Server-side views for assertions (no HTTP involved).
    def repo_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        with self.store.lock:
            repo = self.store.repos[(repo_type, repo_id)]
            sha = self.store.resolve(repo, revision)
            return {p: self.store.blob(oid) for p, oid in repo["commits"][sha]["files"].items()}

    def refs(self, repo_id: str, repo_type: str = "model") -> dict[str, dict[str, str]]:
        with self.store.lock:
            repo = self.store.repos[(repo_type, repo_id)]
            return {"branches": dict(repo["branches"]), "tags": dict(repo["tags"])}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every response has a Content-Length
    timeout = 60  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

    def log_message(self, format, *args):  # silence the default stderr logging
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def _dispatch(self, method: str) -> None:
        self.hub: FakeHub = self.server.hub  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        body = self._read_body()  # always drain the body: the connection is reused
        with self.hub._lock:
            self.hub.requests.append(Request(method, url.path, dict(self.headers.items())))
        try:
            self.user = self._authenticate()
            self._route(method, segments, body)
        except HubError as e:
            headers = {"X-Error-Message": e.message, **e.headers}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._send(e.status, json.dumps({"error": e.message, **e.body}).encode(), headers)

    def _authenticate(self) -> str | None:
        header = self.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.hub.tokens[token.strip()]

    def _require_user(self) -> str:
        if self.user is None:
            raise HubError(401, "You must be authenticated to perform this action (missing Authorization header)")
        return self.user

    def _flag(self, name: str) -> bool:
        return self.query.get(name, [""])[0].lower() in ("true", "1")

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> dict:
        if write:
            self._require_user()
        repo = self.hub.store.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        if repo["private"] and self.user is None:
            raise HubError(401, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def _revision(self, repo: dict, revision: str) -> str:
        sha = self.hub.store.resolve(repo, revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _route(self, method: str, seg: list[str], body: bytes) -> None:
        if seg[:1] == ["api"]:
            if method == "POST" and seg[1:] == ["repos", "create"]:
                return self._create_repo(json.loads(body or b"{}"))
            if method == "POST" and seg[1:] == ["validate-yaml"]:
                return self._json({"errors": [], "warnings": []})
            if method == "GET" and seg[1:] == ["whoami-v2"]:
                name = self._require_user()
                return self._json({"type": "user", "name": name, "fullname": name, "orgs": [],
                                   "auth": {"accessToken": {"role": "write"}}})
            if len(seg) >= 4 and seg[1] in TYPES:
                repo_type, repo_id, rest = TYPES[seg[1]], f"{seg[2]}/{seg[3]}", seg[4:]
                with self.hub.store.lock:
                    return self._repo_api(method, repo_type, repo_id, rest, body)
        else:
            repo_type = TYPES.get(seg[0]) if seg and seg[0] in ("datasets", "spaces") else "model"
            seg = seg[1:] if repo_type != "model" else seg
            if method in ("GET", "HEAD") and len(seg) >= 5 and seg[2] == "resolve":
                return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        raise HubError(404, f"FakeHub does not implement {method} {self.path}")

    # -- endpoints ------------------------------------------------------------------------------

    def _create_repo(self, payload: dict) -> None:
        user = self._require_user()
        name, namespace = payload.get("name", ""), payload.get("organization") or user
        repo_type = payload.get("type") or "model"
        if not NAME_RE.fullmatch(name) or not NAME_RE.fullmatch(namespace) or repo_type not in URL_PREFIX:
            raise HubError(400, f"Invalid repo name or type: {namespace}/{name} ({repo_type})")
        repo_id = f"{namespace}/{name}"
        url = f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
        with self.hub.store.lock:
            if (repo_type, repo_id) in self.hub.store.repos:
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", body={"url": url})
            private = payload.get("visibility", "private" if payload.get("private") else "public") != "public"
            self.hub.store.repos[(repo_type, repo_id)] = self.hub.store.create(repo_type, repo_id, private)
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _repo_api(self, method: str, repo_type: str, repo_id: str, rest: list[str], body: bytes) -> None:
        action = rest[0] if rest else None
        if method == "GET" and (action is None or (action == "revision" and len(rest) >= 2)):
            repo = self._repo(repo_type, repo_id)
            sha = self._revision(repo, "/".join(rest[1:]) if rest else "main")
            return self._json(self._info(repo, sha, blobs=self._flag("blobs")))
        if method == "GET" and action == "tree" and len(rest) >= 2:
            repo = self._repo(repo_type, repo_id)
            files = repo["commits"][self._revision(repo, rest[1])]["files"]
            return self._json(self._tree(files, "/".join(rest[2:]).strip("/"), self._flag("recursive")))
        if method == "GET" and action == "refs":
            repo = self._repo(repo_type, repo_id)

            def refs(kind, names):
                return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": s} for n, s in names.items()]

            return self._json({"branches": refs("heads", repo["branches"]), "tags": refs("tags", repo["tags"]),
                               "converts": [], "pullRequests": []})
        if action == "branch" and len(rest) == 2 and method in ("POST", "DELETE"):
            repo = self._repo(repo_type, repo_id, write=True)
            return self._branch(repo, method, rest[1], json.loads(body or b"{}"))
        if method == "POST" and action in ("preupload", "commit", "tag") and len(rest) >= 2:
            repo = self._repo(repo_type, repo_id, write=True)
            revision = "/".join(rest[1:])
            if action == "tag":
                return self._create_tag(repo, revision, json.loads(body or b"{}"))
            if "create_pr" in self.query:
                raise HubError(400, "FakeHub does not support pull requests (create_pr)")
            if action == "preupload":  # every file "regular": sent base64 in the commit, no LFS/Xet
                sha = self._revision(repo, revision)
                head = repo["commits"][sha]["files"]
                files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": head.get(f["path"])} for f in json.loads(body)["files"]]
                return self._json({"files": files, "commitOid": sha})
            return self._commit(repo, revision, body)
        raise HubError(404, f"FakeHub does not implement {method} {self.path}")

    def _info(self, repo: dict, sha: str, blobs: bool) -> dict:
        store, commit = self.hub.store, repo["commits"][sha]
        siblings = []
        for path, oid in commit["files"].items():
            siblings.append({"rfilename": path, **({"size": store.blob_size(oid), "blobId": oid} if blobs else {})})
        return {"_id": hashlib.sha1(repo["id"].encode()).hexdigest()[:24], "id": repo["id"],
                "author": repo["id"].split("/")[0], "sha": sha, "private": repo["private"], "gated": False,
                "disabled": False, "lastModified": commit["date"], "createdAt": repo["createdAt"],
                "tags": [], "downloads": 0, "likes": 0, "siblings": siblings}

    def _tree(self, files: dict[str, str], folder: str, recursive: bool) -> list[dict]:
        prefix = f"{folder}/" if folder else ""
        inside = {p: oid for p, oid in files.items() if p.startswith(prefix)}
        if folder and not inside:
            raise HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        entries: dict[str, dict] = {}
        for path, oid in inside.items():
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # folders on the way
                if recursive or depth == 1:
                    d = prefix + "/".join(parts[:depth])
                    entries.setdefault(d, {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                                           "size": 0, "path": d})
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "oid": oid, "size": self.hub.store.blob_size(oid), "path": path}
        return [entries[k] for k in sorted(entries)]

    def _create_tag(self, repo: dict, revision: str, payload: dict) -> None:
        sha, tag = self._revision(repo, revision), payload.get("tag", "")
        if not tag or tag in repo["tags"]:
            raise HubError(409, f"Tag reference refs/tags/{tag} already exists" if tag else "Missing tag name")
        repo["tags"][tag] = sha
        self.hub.store.save(repo)
        self._json({"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": sha})

    def _branch(self, repo: dict, method: str, branch: str, payload: dict) -> None:
        if method == "DELETE":
            if branch == "main" or branch not in repo["branches"]:
                raise HubError(404 if branch != "main" else 403, f"Cannot delete branch {branch!r}")
            del repo["branches"][branch]
        else:
            if branch in repo["branches"]:
                raise HubError(409, f"Reference refs/heads/{branch} already exists")
            repo["branches"][branch] = self._revision(repo, payload.get("startingPoint", "main"))
        self.hub.store.save(repo)
        self._json({})

    def _commit(self, repo: dict, revision: str, body: bytes) -> None:
        branch = revision[len("refs/heads/"):] if revision.startswith("refs/heads/") else revision
        if branch not in repo["branches"]:
            self._revision(repo, revision)  # 404 if unknown at all
            raise HubError(400, f"Can only commit to a branch, not to {revision!r}")
        head = repo["branches"][branch]
        files = dict(repo["commits"][head]["files"])
        header: dict = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                content = value["content"]
                data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                files[value["path"]] = self.hub.store.put_blob(data)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"Entry not found: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].strip("/") + "/"
                files = {p: o for p, o in files.items() if not p.startswith(folder)}
            else:  # lfsFile: never requested, preupload always answers "regular"
                raise HubError(400, f"FakeHub does not support {key!r} commit operations")
        parent = header.get("parentCommit")
        if parent is not None and parent != head:
            raise HubError(412, f"Parent commit {parent} is not the head of {branch} ({head})")
        sha = self.hub.store.commit(repo, branch, files, header.get("summary", ""), header.get("description", ""))
        url = f"{self.hub.url}/{URL_PREFIX[repo['type']]}{repo['id']}"
        self._json({"success": True, "commitOid": sha, "commitUrl": f"{url}/commit/{sha}", "hookOutput": ""})

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        with self.hub.store.lock:
            repo = self._repo(repo_type, repo_id)
            sha = self._revision(repo, revision)
            oid = repo["commits"][sha]["files"].get(path)
            if oid is None:
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
            data = self.hub.store.blob(oid)
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": sha, "ETag": f'"{oid}"',
                   "Accept-Ranges": "bytes"}
        status, size = 200, len(data)
        if self.headers.get("Range"):
            start, end = self._range(self.headers["Range"], size, sha)
            if (start, end) != (0, size - 1) or size == 0:
                status, data = 206, data[start:end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        cut = self.hub._take_failure(path) if self.command == "GET" else None
        if cut is None:
            return self._send(status, data, headers)
        self._send(status, b"", {**headers, "Content-Length": str(len(data))})
        self.wfile.write(data[:cut])  # ...and hang up before the announced length
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _range(header: str, size: int, sha: str) -> tuple[int, int]:
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
        if not match or match.groups() == ("", ""):
            return 0, size - 1  # malformed or multi-range: ignore it and send everything
        start, end = match.groups()
        if start == "":  # suffix range: the last N bytes
            start, end = max(size - int(end), 0), size - 1
        else:
            start, end = int(start), min(int(end), size - 1) if end else size - 1
        if start >= size or start > end:
            raise HubError(416, f"Range {header} not satisfiable for {size} bytes", None,
                           {"Content-Range": f"bytes */{size}", "X-Repo-Commit": sha})
        return start, end


def configure_client(monkeypatch: pytest.MonkeyPatch, hub: FakeHub, hf_home: Path, token: str | None = None) -> None:
    """Point the already-imported ``huggingface_hub`` (and subprocesses, via env) at ``hub``.

    Cache under ``hf_home/hub``; ``HF_TOKEN`` is set to ``token`` (or removed), and the token file
    paths point into ``hf_home`` so no locally stored token leaks into requests.
    """
    from huggingface_hub import constants, hf_api

    hf_home = Path(hf_home)
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_XET_CACHE": str(hf_home / "xet")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_HUB_CACHE_DIR", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    patches = {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)  # behind huggingface_hub.create_repo & co


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A started FakeHub (valid token: ``HUB_TOKEN``, user ``"user"``) with the client pointed at
    it, its cache in ``tmp_path/hf-home/hub`` and ``HF_TOKEN=HUB_TOKEN``. Stopped afterwards."""
    with FakeHub(tmp_path / "fake-hub", {HUB_TOKEN: "user"}) as server:
        configure_client(monkeypatch, server, tmp_path / "hf-home", token=HUB_TOKEN)
        yield server
