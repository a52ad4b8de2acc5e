"""package.apt with a throwaway ``.deb`` built here (dpkg-deb) and served from a local ``file:``
apt source (dpkg-scanpackages), selected for the operations' apt through ``APT_CONFIG`` so the
machine's own sources are not read; package.pip against a temporary virtualenv and a wheel
built here (no network); package.dnf/apk on this Debian machine: the missing-tool error."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import run_playbook

from worldtree.errors import SpecError

BOOM = "  - {name: boom, op: command, with: {run: 'false'}}\n"
needs_apt = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("apt-get", "dpkg-deb", "dpkg-scanpackages")),
    reason="installs a .deb: needs root, apt-get, dpkg-deb and dpkg-scanpackages")


def book(tmp_path: Path, tasks: str, name: str = "play.yaml") -> Path:
    path = tmp_path / name
    path.write_text("hosts: local\ntasks:\n" + tasks)
    return path


def build_deb(repo: Path, name: str, version: str) -> None:
    root = repo.parent / f"build-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: worldtree tests <t@example.org>\n"
        f"Description: throwaway package of the worldtree tests\n")
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "version").write_text(version + "\n")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root),
                    str(repo / f"{name}_{version}_all.deb")], check=True, capture_output=True)
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, check=True,
                           capture_output=True, text=True).stdout
    (repo / "Packages").write_text(index)


@pytest.fixture
def apt_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    name = f"wt-test-{secrets.token_hex(3)}"
    repo = tmp_path / "repo"
    repo.mkdir()
    build_deb(repo, name, "1.0")
    apt = tmp_path / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True)
    (apt / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    (apt / "apt.conf").write_text(
        f'Dir::Etc::sourcelist "{apt}/sources.list";\nDir::Etc::sourceparts "-";\n'
        f'Dir::State::Lists "{apt}/lists";\nDir::Cache "{apt}/cache";\n'
        'APT::Sandbox::User "root";\n')
    monkeypatch.setenv("APT_CONFIG", str(apt / "apt.conf"))
    yield name, repo
    subprocess.run(["dpkg", "--purge", name], capture_output=True)


def installed(name: str) -> str | None:
    out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", name], capture_output=True,
                         text=True)
    return out.stdout.split()[1] if out.returncode == 0 and out.stdout.startswith("ii") else None


@needs_apt
@pytest.mark.slow
async def test_apt_install_upgrade_remove_and_rollbacks(tmp_path: Path, apt_repo: tuple[str, Path]) -> None:
    name, repo = apt_repo
    present = book(tmp_path, f"  - {{name: p, op: package.apt, with: {{name: {name}, update_cache: true}}}}\n")
    plan, _ = await run_playbook(present, check=True)
    assert plan.steps()[0].planned is not None
    assert plan.steps()[0].planned.render() == (f"change: install {name} (after `DEBIAN_FRONTEND=noninteractive "
                                                "apt-get update -q`)")
    assert installed(name) is None
    plan, outcome = await run_playbook(present)
    assert outcome is not None and outcome.changed == 1, plan.steps()[0].error
    assert installed(name) == "1.0"
    assert Path(f"/usr/share/{name}/version").read_text() == "1.0\n"
    plan, outcome = await run_playbook(present)
    assert outcome is not None and outcome.ok == 1
    applied = plan.steps()[0].applied
    assert applied is not None and applied.render() == f"no change: {name} 1.0 installed"

    # latest: 1.1 appears in the source; the plan is unknown until the cache is updated; rollback pins 1.0
    build_deb(repo, name, "1.1")
    latest = f"  - {{name: p, op: package.apt, with: {{name: {name}, state: latest, update_cache: true}}}}\n"
    plan, outcome = await run_playbook(book(tmp_path, latest + BOOM, "latest.yaml"), on_failure="rollback")
    assert plan.steps()[0].planned is not None
    assert plan.steps()[0].planned.render().startswith(f"unknown until run: upgrade {name} 1.0 -> newest")
    assert outcome is not None and outcome.rolled_back == 1, [s.error or s.rollback for s in plan.steps()]
    assert installed(name) == "1.0"
    _, outcome = await run_playbook(book(tmp_path, latest, "latest.yaml"))
    assert outcome is not None and outcome.changed == 1 and installed(name) == "1.1"
    plan, outcome = await run_playbook(book(tmp_path, latest.replace(", update_cache: true", ""), "l2.yaml"))
    assert outcome is not None and outcome.ok == 1  # the cache knows 1.1 is the newest: nothing to do

    # absent, undone by rollback (reinstalls the recorded version), then for real
    absent = f"  - {{name: a, op: package.apt, with: {{name: [{name}], state: absent}}}}\n"
    plan, outcome = await run_playbook(book(tmp_path, absent + BOOM, "absent.yaml"), on_failure="rollback")
    assert plan.steps()[0].planned is not None and plan.steps()[0].planned.render() == f"change: remove {name} 1.1"
    assert outcome is not None and outcome.rolled_back == 1 and installed(name) == "1.1"
    _, outcome = await run_playbook(book(tmp_path, absent, "absent.yaml"))
    assert outcome is not None and outcome.changed == 1 and installed(name) is None
    # an install undone by rollback removes only what it installed
    plan, outcome = await run_playbook(book(tmp_path, present.read_text().split("tasks:\n")[1] + BOOM, "f.yaml"),
                                       on_failure="rollback")
    assert outcome is not None and outcome.rolled_back == 1 and installed(name) is None


async def test_dnf_and_apk_say_what_the_host_has(tmp_path: Path) -> None:
    if shutil.which("dnf") or not shutil.which("apt-get"):
        pytest.skip("this check is for a Debian host without dnf")
    for op, tool in (("package.dnf", "dnf"), ("package.apk", "apk")):
        with pytest.raises(SpecError) as info:
            await run_playbook(book(tmp_path, f"  - {{name: p, op: {op}, with: {{name: curl}}}}\n"))
        assert f"{op}: {tool} not found on local; use package.apt for Debian/Ubuntu" in str(info.value)


def wheel(folder: Path, version: str) -> Path:
    path = folder / f"wt_test_pkg-{version}-py3-none-any.whl"
    info = f"wt_test_pkg-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("wt_test_pkg.py", f"VERSION = {version!r}\n")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: wt-test-pkg\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: worldtree-tests\nRoot-Is-Purelib: true\n"
                                     "Tag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", f"wt_test_pkg.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


@pytest.mark.slow
async def test_pip_in_a_virtualenv(tmp_path: Path) -> None:
    venv, wheels = tmp_path / "venv", tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "1.0")
    # --system-site-packages: the base interpreter's pip serves the venv (no ensurepip, no network)
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip",
                    "--system-site-packages", str(venv)], check=True)

    def version() -> str | None:
        out = subprocess.run([str(venv / "bin" / "python"), "-c", "import wt_test_pkg; print(wt_test_pkg.VERSION)"],
                             capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    src = f"virtualenv: {venv}, find_links: {wheels}, no_index: true"
    present = f"  - {{name: p, op: package.pip, with: {{name: wt-test-pkg, {src}}}}}\n"
    plan, outcome = await run_playbook(book(tmp_path, present))
    assert plan.steps()[0].planned is not None
    assert plan.steps()[0].planned.render() == f"change: pip install wt-test-pkg in {venv}"
    assert outcome is not None and outcome.changed == 1, plan.steps()[0].error
    assert version() == "1.0"
    plan, outcome = await run_playbook(book(tmp_path, present))
    assert outcome is not None and outcome.ok == 1
    assert plan.steps()[0].applied is not None
    assert plan.steps()[0].applied.render() == f"no change: wt-test-pkg 1.0 installed in {venv}"
    # a pinned upgrade, undone by rollback
    wheel(wheels, "2.0")
    pinned = f"  - {{name: p, op: package.pip, with: {{name: wt-test-pkg==2.0, {src}}}}}\n"
    plan, outcome = await run_playbook(book(tmp_path, pinned + BOOM, "pin.yaml"), on_failure="rollback")
    assert plan.steps()[0].planned is not None
    assert plan.steps()[0].planned.render() == f"change: pip install wt-test-pkg 1.0 -> 2.0 in {venv}"
    assert outcome is not None and outcome.rolled_back == 1 and version() == "1.0"
    # absent (an install undone by rollback: see the apt test, same record and path)
    absent = f"  - {{name: p, op: package.pip, with: {{name: wt-test-pkg, state: absent, {src}}}}}\n"
    plan, outcome = await run_playbook(book(tmp_path, absent, "absent.yaml"))
    assert outcome is not None and outcome.changed == 1 and version() is None, plan.steps()[0].error
    with pytest.raises(SpecError) as info:
        await run_playbook(book(tmp_path, present.replace(str(venv), str(tmp_path / "none")), "none.yaml"))
    assert f"package.pip: no virtualenv at {tmp_path / 'none'} on local" in str(info.value)
