"""Commits on disk: one cached bare mirror per repository, a ``git worktree`` per run.

``<data dir>/git/<provider>/<owner>__<name>.git`` is a bare repository that each event fetches
just its commit into (``--depth 1``: history is not needed to build one commit). Fetching a sha
needs a server that allows it (GitHub, GitLab, Gitea and ``git`` over protocol v2 do); when
that fails the ref is fetched and must point at the sha. The run's workspace is a detached
``git worktree`` of the commit, made under ``<data dir>/workspaces``: steps see the checkout in
their working directory and can run ``git`` in it. Stale worktree entries (a workspace removed
after a success) are pruned on the next fetch. A file lock per mirror serialises writers across
threads and processes sharing the data dir.

The git CLI runs without a terminal (no password prompt can hang a consumer), bounded in time;
a clone URL's credentials never appear in an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from worldtree.app.workdir import MARKER
from worldtree.errors import BackendError

GIT_SECONDS = 300.0
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_REF = re.compile(r"^[A-Za-z0-9._/+@-]+$")


class GitError(BackendError):
    """git failed (unreachable remote, unknown commit); the message has git's own words, no credentials."""


def _safe(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def _git(*args: str, cwd: str | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, timeout=GIT_SECONDS,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took more than {GIT_SECONDS:g} s") from None
    except FileNotFoundError:
        raise GitError("git is not installed; install it (apt-get install git) on the server") from None
    if check and done.returncode != 0:
        message = _safe(done.stderr.decode(errors="replace").strip().splitlines()[-1:][0]
                        if done.stderr.strip() else f"exit {done.returncode}")
        raise GitError(f"git {args[0]}: {message}")
    return done


class Mirror:
    """The cached bare mirror of one repository."""

    def __init__(self, data_dir: str, provider: str, name: str, clone_url: str) -> None:
        self.path = Path(data_dir).resolve() / "git" / provider / (name.replace("/", "__") + ".git")
        self.clone_url = clone_url

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _init(self) -> None:
        if not (self.path / "HEAD").exists():
            _git("init", "--bare", "--quiet", str(self.path))
            exclude = self.path / "info" / "exclude"
            exclude.parent.mkdir(parents=True, exist_ok=True)
            with open(exclude, "a") as out:  # the workspace marker is not a change of the checkout
                out.write(f"/{MARKER}\n")

    def fetch(self, sha: str | None, ref: str | None) -> str:
        """Fetch ``sha`` (else the tip of ``ref``) into the mirror; the commit's full sha."""
        # both come from a payload: never let one read as a git option
        if sha is not None and not _SHA.match(sha):
            raise GitError(f"the event's commit {sha[:80]!r} is not a hex object id")
        if ref is not None and not (ref.startswith("refs/") and _REF.match(ref)):
            raise GitError(f"the event's ref {ref[:80]!r} is not a refs/... name")
        with self.locked():
            self._init()
            git_dir = str(self.path)
            _git("--git-dir", git_dir, "worktree", "prune", check=False)
            if sha and _git("--git-dir", git_dir, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0:
                return self._resolve(sha)  # an annotated tag's object id peels to its commit
            if sha:
                tried = _git("--git-dir", git_dir, "fetch", "--quiet", "--no-tags", "--depth", "1", self.clone_url, sha,
                             check=False)
                if tried.returncode == 0:
                    return self._resolve(sha)
            if not ref:
                raise GitError(f"cannot fetch commit {sha} from {_safe(self.clone_url)} and the event names no ref")
            _git("--git-dir", git_dir, "fetch", "--quiet", "--no-tags", "--depth", "1", self.clone_url,
                 f"+{ref}:refs/worldtree/fetched")
            tip = self._resolve("refs/worldtree/fetched")
            if sha and tip != self._resolve_or_none(sha):
                raise GitError(f"{ref} of {_safe(self.clone_url)} is now {tip[:12]}, not {sha[:12]}, and the server "
                               "does not serve commits by sha; the event's commit cannot be built")
            return tip

    def _resolve(self, what: str) -> str:
        return _git("--git-dir", str(self.path), "rev-parse", "--verify", f"{what}^{{commit}}"
                    ).stdout.decode().strip()

    def _resolve_or_none(self, what: str) -> str | None:
        done = _git("--git-dir", str(self.path), "rev-parse", "--verify", "--quiet", f"{what}^{{commit}}",
                    check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def read(self, sha: str, path: str) -> str | None:
        """The file at ``path`` in commit ``sha`` (None when it has none)."""
        done = _git("--git-dir", str(self.path), "show", f"{sha}:{path}", check=False)
        if done.returncode != 0:
            return None
        return done.stdout.decode("utf-8", errors="replace")

    def worktree(self, sha: str, target: str) -> None:
        """Check ``sha`` out (detached) at ``target``, which must not exist yet; mark it as the server's."""
        with self.locked():
            _git("--git-dir", str(self.path), "worktree", "add", "--quiet", "--detach", "--force", target, sha)
        with open(os.path.join(target, MARKER), "w") as marker:  # the executor removes it after a success
            marker.write(os.urandom(8).hex() + "\n")
