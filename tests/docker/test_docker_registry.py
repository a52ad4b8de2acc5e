"""Authenticated pulls end to end: `worldtree run` pulls a step's image through podman from a
registry we run on loopback (:mod:`fake_registry`), with ``image_registry*`` credentials.

The registry speaks HTTPS with a throwaway certificate trusted through
``/etc/containers/certs.d/<host:port>/ca.crt``: podman reads that directory on every pull,
whereas a ``registries.conf.d`` drop-in marking a plain-HTTP registry insecure is cached by a
running ``podman system service`` and ignored until it restarts.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_support import BUSYBOX
from fake_registry import FakeRegistry, Request, export_oci_layout, self_signed_certificate
from test_docker_cli import assert_clean, worldtree

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_host")]

USER = "ci-bot"
PASSWORD = "Reg1stry-pw-" + uuid.uuid4().hex[:12]
MARKER = "pulled-image-" + uuid.uuid4().hex[:8]  # in /marker of the served image, nowhere else
CERTS_D = Path("/etc/containers/certs.d")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def registry(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeRegistry]:
    """The registry, serving an image whose layer exists nowhere else in local storage (so a
    pull must fetch it) and whose ``/marker`` names it; removed again with everything it needs."""
    if shutil.which("podman") is None or shutil.which("openssl") is None:
        pytest.skip("the registry fixture needs the podman and openssl CLIs")
    if not CERTS_D.parent.is_dir():
        pytest.skip(f"{CERTS_D.parent} does not exist: the engine is not a local podman")
    work = tmp_path_factory.mktemp("registry")
    source, builder = f"localhost/worldtree-registry-source:{MARKER}", f"wt-registry-{MARKER}"
    podman("run", "--name", builder, BUSYBOX, "sh", "-c", f"echo {MARKER} > /marker")
    try:
        podman("commit", "--quiet", builder, source)
        export_oci_layout(source, work / "oci", "1.0")
    finally:
        podman("rm", "--force", builder, check=False)
        podman("rmi", "--force", source, check=False)
    reg = FakeRegistry(work / "oci", "team/tool", "1.0", USER, PASSWORD,
                       certificate=self_signed_certificate(work))
    trust = CERTS_D / reg.address
    with reg:
        trust.mkdir(parents=True, exist_ok=True)
        (trust / "ca.crt").write_bytes((work / "cert.pem").read_bytes())
        try:
            yield reg
        finally:
            podman("rmi", "--force", reg.image, check=False)
            shutil.rmtree(trust, ignore_errors=True)
            with contextlib.suppress(OSError):  # only when empty: other registries may be trusted there
                CERTS_D.rmdir()


@pytest.fixture
def absent(registry: FakeRegistry) -> FakeRegistry:
    """The registry, its image not in local storage and no request recorded yet."""
    podman("rmi", "--force", registry.image, check=False)
    registry.clear()
    return registry


def pipeline(tmp_path: Path, reg: FakeRegistry, password: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"""
name: registry-e2e
stages:
  - name: main
    jobs:
      - name: job
        secrets: [REG_PASSWORD]
        steps:
          - name: from-registry
            image: {reg.image}
            image_registry: {reg.address}
            image_registry_username: {USER}
            image_registry_password: "{password}"
            command: echo "marker=$(cat /marker)"
""")
    return path


def run(tmp_path: Path, reg: FakeRegistry, secret: str) -> subprocess.CompletedProcess[str]:
    store = tmp_path / "store.db"
    return worldtree(str(pipeline(tmp_path, reg, "${REG_PASSWORD}")), cwd=tmp_path,
                     env={"REG_PASSWORD": secret, "WORLDTREE_STORE": f"sqlite:///{store}"})


def pulls(reg: FakeRegistry) -> list[Request]:
    return [r for r in reg.requests() if "/manifests/" in r.path or "/blobs/" in r.path]


def assert_nowhere(secret: str, proc: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    assert secret not in proc.stdout and secret not in proc.stderr
    stored = [p for p in tmp_path.iterdir() if p.name.startswith("store.db")]
    assert stored, list(tmp_path.iterdir())
    for path in stored:  # the database and its WAL
        assert secret.encode() not in path.read_bytes(), path


def test_authenticated_pull_runs_the_step(tmp_path: Path, absent: FakeRegistry) -> None:
    proc = run(tmp_path, absent, PASSWORD)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"marker={MARKER}" in proc.stdout
    fetched = pulls(absent)
    assert all(r.authorized for r in fetched), fetched
    paths = [r.path for r in fetched if r.method == "GET"]
    assert "/v2/team/tool/manifests/1.0" in paths or f"/v2/team/tool/manifests/{absent.manifest_digest}" in paths
    assert sum("/blobs/" in p for p in paths) >= 2, paths  # the config and the new layer
    assert_nowhere(PASSWORD, proc, tmp_path)
    assert_clean(proc.stdout)


def test_wrong_password_fails_naming_the_image(tmp_path: Path, absent: FakeRegistry) -> None:
    wrong = "Wr0ng-pw-" + uuid.uuid4().hex[:12]
    proc = run(tmp_path, absent, wrong)
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines()
              if f"image {absent.image} is not present and cannot be pulled" in line]
    assert errors, proc.stdout + proc.stderr
    assert "unauthorized" in errors[0].lower()
    assert not any(r.authorized for r in absent.requests())
    assert not any("/blobs/" in r.path for r in absent.requests())
    assert_nowhere(wrong, proc, tmp_path)
    assert_clean(proc.stdout)


def test_present_image_is_not_pulled_again(tmp_path: Path, absent: FakeRegistry) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "again").mkdir()
    first = run(tmp_path / "first", absent, PASSWORD)
    assert first.returncode == 0, first.stdout + first.stderr
    assert pulls(absent), "the first run should have pulled"
    absent.clear()
    again = run(tmp_path / "again", absent, PASSWORD)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"marker={MARKER}" in again.stdout
    assert pulls(absent) == []
    assert_clean(again.stdout)
