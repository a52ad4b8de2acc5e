"""The status reporter's requests per provider, and its retries, against the loopback status API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gitops_fakes import StatusHost

from worldtree.app.secrets_store import load_keys
from worldtree.app.service import ServiceConfig, submit
from worldtree.gitops import repos
from worldtree.gitops.repos import gitops_store
from worldtree.gitops.status import Reporter
from worldtree.store import RunStore

SHA = "c" * 40
DOC = "name: shapes\njobs:\n  a:\n    steps:\n      - run: 'true'\n"


def _delivery(store: RunStore, tmp_path: Path, provider: str, name: str, api: str, token: str = "tkn") -> str:
    keys = load_keys(str(tmp_path))
    repo = repos.add(store, keys, name=name, provider=provider, clone_url="x", webhook_secret="s",
                     status_token=token, api_url=api)
    gs = gitops_store(store)
    row = gs.add_delivery(provider=provider, delivery_id=f"{provider}-1", repository_id=repo["id"], event="push",
                          payload="{}")
    assert row is not None
    claimed = gs.claim_delivery("t", 60)
    assert claimed is not None
    run_id = submit(store, ServiceConfig(str(tmp_path)), DOC)["id"]
    assert gs.finish_delivery(row, claimed.tries, state="done", sha=SHA, ref="refs/heads/main", run_id=run_id,
                              pipeline="shapes")
    return str(run_id)


@pytest.mark.parametrize(("provider", "name", "prefix", "path", "auth"), [
    ("github", "acme/app", "", "/repos/acme/app/statuses/" + SHA, ("authorization", "Bearer tkn")),
    ("gitea", "acme/app", "/api/v1", "/api/v1/repos/acme/app/statuses/" + SHA, ("authorization", "token tkn")),
    ("gitlab", "group/sub/app", "/api/v4", "/api/v4/projects/group%2Fsub%2Fapp/statuses/" + SHA,
     ("private-token", "tkn")),
])
def test_each_provider_gets_its_own_request(run_store: RunStore, tmp_path: Path, status_host: StatusHost,
                                            provider: str, name: str, prefix: str, path: str,
                                            auth: tuple[str, str]) -> None:
    run_id = _delivery(run_store, tmp_path, provider, name, status_host.url + prefix)
    reporter = Reporter(run_store, load_keys(str(tmp_path)), public_url="https://ci.example/")
    assert reporter.report_due() == 1
    assert reporter.report_due() == 0  # pending shown, the run has not moved
    [posted] = status_host.seen()
    assert posted.path == path
    assert posted.headers[auth[0]] == auth[1]
    assert posted.body["state"] == "pending"
    assert posted.body["target_url"] == f"https://ci.example/console/runs/{run_id}"
    context_key = "name" if provider == "gitlab" else "context"
    assert posted.body[context_key] == "worldtree/shapes"
    if provider == "gitlab":
        assert posted.body["ref"] == "main"


def test_server_errors_are_retried_with_backoff_and_client_errors_given_up(
        run_store: RunStore, tmp_path: Path, status_host: StatusHost) -> None:
    _delivery(run_store, tmp_path, "github", "acme/app", status_host.url)
    reporter = Reporter(run_store, load_keys(str(tmp_path)), public_url="http://x", backoff=0.3)
    status_host.fail_with = [503, 502]
    assert reporter.report_due() == 0  # 503: later
    assert reporter.report_due() == 0  # not before the backoff
    deadline = 50
    while reporter.report_due() == 0:  # 502, then success, each after its backoff
        deadline -= 1
        assert deadline, "never posted"
        time.sleep(0.1)
    assert [r.body["state"] for r in status_host.seen()] == ["pending"]
    [row] = gitops_store(run_store).deliveries()
    assert row.reported == "pending" and row.report_tries == 0

    other = tmp_path / "other"
    other.mkdir()
    status_host.fail_with = [401]
    gs = gitops_store(run_store)
    _delivery(run_store, other, "gitea", "acme/two", status_host.url)
    reporter = Reporter(run_store, load_keys(str(other)), public_url="http://x", backoff=0.01)
    assert reporter.report_due() == 0
    two = next(r for r in gs.deliveries() if r.provider == "gitea")
    assert two.reported == "gave_up"  # a 4xx is not retried
    assert reporter.report_due() == 0 and len(status_host.seen()) == 1
