"""Skills: ./skills, a git source (the git CLI against a local bare repository) and an http source
(a loopback server), load order (later wins), the store's cache (SQLite and PostgreSQL), the CLI,
and plans citing the DNS skill."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worldtree.errors import UsageError
from worldtree.skills import load_skills, sync_sources
from worldtree.skills.catalog import add_source
from worldtree.skills.sources import MAX_BYTES
from worldtree.store import open_store
from worldtree.store.server_data import engine_of
from worldtree.store.stacks import StackRows
from worldtree.testing.stores import pg_unavailable_reason, store_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stack"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        opened.url = url  # type: ignore[attr-defined]
        try:
            yield opened
        finally:
            opened.close()


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _bare_repo(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository whose v1 tag has team/dns and team/deploy-vercel skills; main moved on."""
    work = tmp_path / "skills-work"
    (work / "team" / "dns").mkdir(parents=True)
    (work / "team" / "deploy-vercel").mkdir()
    (work / "team" / "dns" / "SKILL.md").write_text("# DNS (team v1)\nLower the TTL a day before a move.\n")
    (work / "team" / "deploy-vercel" / "SKILL.md").write_text("# Vercel\nBind the domain, then the CNAME.\n")
    (work / "team" / "README.md").write_text("not a skill\n")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "v1", cwd=work)
    _git("tag", "v1", cwd=work)
    commit = _git("rev-parse", "HEAD", cwd=work).strip()
    (work / "team" / "dns" / "SKILL.md").write_text("# DNS (team v2)\n")
    _git("commit", "-q", "-am", "v2", cwd=work)
    bare = tmp_path / "skills.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare, commit


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/obs/observe/SKILL.md":
            body = b"# Observe\nEvery public endpoint gets a blackbox probe.\n"
        elif self.path == "/big/dns/SKILL.md":
            body = b"x" * (MAX_BYTES + 1)
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", '"obs-7"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sources_load_order_and_cache(tmp_path: Path, store: Any, http_base: str) -> None:
    repo = tmp_path / "repo"
    (repo / "skills" / "dns").mkdir(parents=True)
    (repo / "skills" / "dns" / "SKILL.md").write_text("# DNS (repo)\n")
    (repo / "skills" / "runbooks").mkdir()
    (repo / "skills" / "runbooks" / "SKILL.md").write_text("# Runbooks\n")
    bare, v1 = _bare_repo(tmp_path)
    rows = StackRows(engine_of(store))

    assert [(s.name, s.source) for s in load_skills(repo, rows)] == [("dns", "repo"), ("runbooks", "repo")]

    add_source(rows, "team", "git", str(bare), "v1", "team", priority=10)
    add_source(rows, "obs", "http", f"{http_base}/obs/observe/SKILL.md", None, None, priority=20)
    report = sync_sources(rows)
    assert report == [{"source": "team", "skills": ["deploy-vercel", "dns"]}, {"source": "obs", "skills": ["observe"]}]

    found = {s.name: s for s in load_skills(repo, rows)}
    assert sorted(found) == ["deploy-vercel", "dns", "observe", "runbooks"]
    dns = found["dns"]  # the git source comes after ./skills: it wins
    assert (dns.source, dns.version) == ("team", v1)
    assert dns.content.startswith("# DNS (team v1)")
    assert dns.origin == f"{bare}@{v1[:12]}:team/dns/SKILL.md"
    import hashlib

    assert dns.sha256 == hashlib.sha256(dns.content.encode()).hexdigest()
    assert (found["observe"].version, found["observe"].origin) == ("obs-7", f"{http_base}/obs/observe/SKILL.md")

    # a higher-priority source wins over a lower one
    (tmp_path / "mine" / "dns").mkdir(parents=True)
    (tmp_path / "mine" / "dns" / "SKILL.md").write_text("# DNS (mine)\n")
    add_source(rows, "mine", "local", str(tmp_path / "mine"), None, None, priority=30)
    sync_sources(rows)
    assert {s.name: s.source for s in load_skills(repo, rows)}["dns"] == "mine"

    # the cache is in the store: another process (a fresh handle) sees it without fetching
    other = open_store(store.url)
    try:
        cached = {s.name: s.source for s in load_skills(tmp_path / "elsewhere", StackRows(engine_of(other)))}
    finally:
        other.close()
    assert cached == {"deploy-vercel": "team", "dns": "mine", "observe": "obs"}


def test_a_failing_source_keeps_its_cache_and_limits_hold(tmp_path: Path, store: Any, http_base: str) -> None:
    rows = StackRows(engine_of(store))
    bare, _ = _bare_repo(tmp_path)
    add_source(rows, "team", "git", str(bare), "v1", "team", priority=10)
    assert "error" not in sync_sources(rows)[0]
    add_source(rows, "team", "git", str(bare), "no-such-ref", "team", priority=10)
    (result,) = sync_sources(rows)
    assert "git source" in result["error"] and "check the uri, ref and path" in result["error"]
    assert {s.name for s in load_skills(tmp_path, rows)} == {"deploy-vercel", "dns"}

    add_source(rows, "big", "http", f"{http_base}/big/dns/SKILL.md", None, None, priority=20)
    add_source(rows, "gone", "http", f"{http_base}/nothing/x/SKILL.md", None, None, priority=21)
    by_source = {r["source"]: r for r in sync_sources(rows)}
    assert f"larger than {MAX_BYTES} bytes" in by_source["big"]["error"]
    assert "404" in by_source["gone"]["error"]
    add_source(rows, "evil", "git", f"ext::sh -c touch% {tmp_path}/pwned", None, None, priority=22)
    assert "transport 'ext' not allowed" in {r["source"]: r for r in sync_sources(rows)}["evil"]["error"]
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(UsageError, match="one of local, git, http"):
        add_source(rows, "x", "ftp", "ftp://h/", None, None, 1)
    with pytest.raises(UsageError, match="source name"):
        add_source(rows, "repo", "local", "/tmp", None, None, 1)


def _cli(*args: str, cwd: Path, store: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDTREE_", "GITHUB_"))}
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "--store", store, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_cli_and_plans_cite_the_dns_skill(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "skills" / "dns").mkdir(parents=True)
    (tmp_path / "skills" / "dns" / "SKILL.md").write_text("# DNS\nKeep TTLs low during a move.\n")
    bare, v1 = _bare_repo(tmp_path)
    added = _cli("skills", "add-source", "team", "--kind", "git", "--uri", str(bare), "--ref", "v1",
                 "--path", "team", cwd=tmp_path, store=store)
    assert added.returncode == 0, added.stderr
    synced = _cli("skills", "sync", cwd=tmp_path, store=store)
    assert synced.returncode == 0, synced.stderr
    listed = json.loads(_cli("skills", "list", "--json", cwd=tmp_path, store=store).stdout)
    assert [(s["name"], s["source"]) for s in listed] == [("deploy-vercel", "team"), ("dns", "team")]
    shown = _cli("skills", "show", "deploy-vercel", cwd=tmp_path, store=store)
    assert shown.stdout == "# Vercel\nBind the domain, then the CNAME.\n" and v1 in shown.stderr
    missing = _cli("skills", "show", "nope", cwd=tmp_path, store=store)
    assert missing.returncode == 2 and "no skill 'nope'" in missing.stderr

    stack = tmp_path / "s.yaml"
    stack.write_text((EXAMPLES / "vercel-www.yaml").read_text())
    planned = _cli("stack", "plan", "all", str(stack), "--out", "p", cwd=tmp_path, store=store)
    assert planned.returncode == 0, planned.stderr
    cited = json.loads((tmp_path / "p" / "stackflow.skills.json").read_text())["skills"]
    assert [(c["phase"], c["name"], c["version"]) for c in cited] == [("dns", "dns", v1),
                                                                      ("deploy", "deploy-vercel", v1)]
    summary = (tmp_path / "p" / "stackflow.summary.md").read_text()
    assert "### Skills cited" in summary and "| dns | dns |" in summary


def test_local_skills_are_regular_files_inside_the_folder(tmp_path: Path) -> None:
    """A repository's skills/x/SKILL.md linking out handed that file to every assistant reading the
    skill; one linking to /dev/zero (stat size 0) or a FIFO never finished. They are skipped."""
    from worldtree.skills.sources import local

    skills = tmp_path / "skills"
    for name in ("ok", "out", "zero", "fifo", "inner"):
        (skills / name).mkdir(parents=True)
    (skills / "ok" / "SKILL.md").write_text("# ok\n")
    (tmp_path / "credentials").write_text("aws_secret_access_key = s3cr3t\n")
    (skills / "out" / "SKILL.md").symlink_to(tmp_path / "credentials")
    (skills / "zero" / "SKILL.md").symlink_to("/dev/zero")
    os.mkfifo(skills / "fifo" / "SKILL.md")
    (skills / "inner" / "SKILL.md").symlink_to(skills / "ok" / "SKILL.md")  # inside: still a skill
    found = {f.name: f.content for f in local(skills)}
    assert found == {"ok": "# ok\n", "inner": "# ok\n"}


def test_git_skills_big_binary_or_linked(tmp_path: Path) -> None:
    """A SKILL.md over MAX_BYTES is refused from its size in the tree (it was read whole first); one
    that is not UTF-8 is read with replacement characters (it crashed sync with UnicodeDecodeError);
    a symbolic link named SKILL.md is not a skill."""
    from worldtree.skills.sources import git

    work = tmp_path / "w"
    for name in ("latin", "link", "big"):
        (work / name).mkdir(parents=True)
    (work / "latin" / "SKILL.md").write_bytes("caf\u00e9\n".encode("latin-1"))
    (work / "link" / "SKILL.md").symlink_to("../latin/SKILL.md")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "latin", "link", cwd=work)
    _git("commit", "-q", "-m", "skills", cwd=work)
    found = {f.name: f.content for f in git(str(work), None, None)}
    assert found == {"latin": "caf\ufffd\n"}
    (work / "big" / "SKILL.md").write_bytes(b"x" * (MAX_BYTES + 1))
    _git("add", "big", cwd=work)
    _git("commit", "-q", "-m", "big", cwd=work)
    with pytest.raises(UsageError, match=f"big/SKILL.md is larger than {MAX_BYTES} bytes"):
        git(str(work), None, None)


@pytest.mark.parametrize("uri", ["http://u:pw-s3cr3t@[::1/x/SKILL.md", "http://u:pw-s3cr3t@h:port/x/SKILL.md"])
def test_http_source_urls_that_do_not_parse_are_usage_errors(uri: str) -> None:
    """urlsplit's ValueError and httpx.InvalidURL (no HTTPError) escaped sync_sources as crashes."""
    from worldtree.skills.sources import http

    with pytest.raises(UsageError, match=r"http source http://u:\*\*\*@") as info:
        http(uri, None)
    assert "s3cr3t" not in str(info.value)
