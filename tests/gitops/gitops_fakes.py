"""What GitOps tests need besides a real server: a loopback git host status API, a local repository.

:class:`StatusHost` speaks the commit-status endpoints of GitHub (``POST /repos/{o}/{r}/statuses/{sha}``),
Gitea (the same under ``/api/v1``) and GitLab (``POST /api/v4/projects/{id}/statuses/{sha}``), records
every request (path, headers, JSON body), and answers 201, or the status codes queued in
``fail_with`` first (to exercise retries).
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from worldtree.gitops.signatures import sign

DATA = Path(__file__).parent / "data"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StatusHost:
    requests: list[Recorded] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> StatusHost:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with host.lock:
                    status = host.fail_with.pop(0) if host.fail_with else 201
                    if status == 201:
                        host.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body))
                reply = json.dumps({"id": len(host.requests), **body}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def seen(self) -> list[Recorded]:
        with self.lock:
            return list(self.requests)


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd or Path.cwd()), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_repo(root: Path, files: dict[str, str], branch: str = "main") -> tuple[Path, str]:
    """A bare repository with one commit of ``files`` on ``branch``; (bare path, sha)."""
    bare, work = root / "origin.git", root / "work"
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
    git("init", "--quiet", f"--initial-branch={branch}", str(work))
    return bare, commit(work, bare, files, branch)


def commit(work: Path, bare: Path, files: dict[str, str], branch: str = "main") -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "change", cwd=work)
    git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def github_push(repo: str, clone_url: str, sha: str, ref: str = "refs/heads/main",
                paths: list[str] | None = None) -> bytes:
    """octokit's recorded push payload, rewritten to ``repo`` at ``sha``."""
    data = json.loads((DATA / "push.with-new-branch.payload.json").read_text())
    data["ref"], data["after"] = ref, sha
    data["repository"].update(full_name=repo, name=repo.split("/")[1], clone_url=clone_url, default_branch="main")
    data["head_commit"]["id"] = sha
    data["commits"][0].update(id=sha, added=paths if paths is not None else ["ci.yaml"], modified=[], removed=[])
    return json.dumps(data).encode()


def github_headers(secret: str, body: bytes, delivery: str, event: str = "push") -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "content-type": "application/json",
            "X-Hub-Signature-256": f"sha256={sign(secret, body)}"}
