"""Serving the console (no browser): `/` sends browsers to it, its assets are package data
(with the vendored layout library's license), nothing outside it is served, whoami by role."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from worldtree.app import tokens
from worldtree.server.app import ServerSettings, create_app
from worldtree.server.routes_console import ASSETS
from worldtree.store import open_store
from worldtree.testing.stores import sqlite_url


def _client(tmp_path: Path, *, auth: bool) -> Iterator[tuple[TestClient, str]]:
    url = sqlite_url(tmp_path)
    app = create_app(ServerSettings(store_url=url, data_dir=str(tmp_path / "data"), executors=0, auth=auth))
    with TestClient(app, follow_redirects=False) as client:
        yield client, url


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    for client, _ in _client(tmp_path, auth=False):
        yield client


def test_root_redirects_browsers_and_describes_itself_to_others(open_client: TestClient) -> None:
    browser = open_client.get("/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 307 and browser.headers["location"] == "/console"
    other = open_client.get("/", headers={"accept": "application/json"})
    assert other.status_code == 200 and other.json()["console"] == "/console"


def test_every_console_address_is_the_page_and_assets_are_typed(open_client: TestClient) -> None:
    for path in ("/console", "/console/", "/console/runs/20261130-000000-abcde", "/console/submit"):
        page = open_client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/console/js/app.js">' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    script = open_client.get("/console/js/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert open_client.get("/console/css/console.css").headers["content-type"].startswith("text/css")
    assert open_client.get("/console/js/missing.js").status_code == 404


def test_nothing_outside_the_console_directory_is_served(open_client: TestClient) -> None:
    for path in ("/console/js/../../routes_console.py", "/console/%2e%2e/app.py", "/console/..%2fapp.py",
                 "/console/js/%2e%2e/%2e%2e/%2e%2e/errors.py"):
        response = open_client.get(path)
        assert "APIRouter" not in response.text and "def " not in response.text, path
    for path in ("/console/js/a%00.js", f"/console/js/{'a' * 5000}.js", "/console/vendor/%ff%fe.js"):
        assert open_client.get(path).status_code == 404, path


def test_every_module_the_page_imports_exists_and_vendored_code_has_its_license() -> None:
    scripts = list((ASSETS / "js").glob("*.js"))
    assert scripts
    for script in scripts:
        for target in re.findall(r'^import .* from "(\.{1,2}/[^"]+)";', script.read_text(), re.M):
            assert (script.parent / target).resolve().is_file(), f"{script.name} imports missing {target}"
    vendored = list((ASSETS / "vendor").glob("*.js"))
    assert vendored and all((ASSETS / "vendor" / "LICENSE.dagre").is_file() for _ in vendored)
    assert "Permission is hereby granted" in (ASSETS / "vendor" / "LICENSE.graphlib").read_text()
    # Every console file is package data (a wheel without them would serve an empty console).
    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["worldtree"]
    package = ASSETS.parents[1]  # src/worldtree
    for file in ASSETS.rglob("*"):
        if file.is_file() and file.name != ".gitignore":
            relative = file.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, glob) and relative.count("/") == glob.count("/") for glob in globs), \
                f"{relative} is not package data"


def test_whoami_names_the_token_and_its_role(tmp_path: Path) -> None:
    for client, url in _client(tmp_path, auth=True):
        assert client.get("/api/v1/whoami").status_code == 401
        store = open_store(url)
        for role in ("viewer", "maintainer", "admin"):
            _, token = tokens.create(store, role, name=f"console {role}")
            me = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()
            assert me["role"] == role and me["name"] == f"console {role}" and me["auth"] is True
            assert me["token_id"] and token not in str(me)
        store.close()


def test_whoami_without_authentication_may_do_everything(open_client: TestClient) -> None:
    assert open_client.get("/api/v1/whoami").json() == {"token_id": None, "name": None, "role": "admin",
                                                         "auth": False}
