"""Per-operation fixtures: facts in -> planned change out, for the package, service, user/group and
archive operations (the end-to-end runs live in their own test files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worldtree.ops.archive import ArchiveDownload, ArchiveState
from worldtree.ops.connection import PathState
from worldtree.ops.facts.services import UnitState
from worldtree.ops.facts.users import GroupEntry, UserEntry
from worldtree.ops.files import Before
from worldtree.ops.operation import OpContext, Operation
from worldtree.ops.packages import PackageApk, PackageApt, PackageDnf, PackagePip, Packages
from worldtree.ops.services import ServiceEnabled, ServiceRestarted, ServiceStarted, ServiceStopped
from worldtree.ops.users import GroupAbsent, GroupPresent, UserAbsent, UserPresent, UserState


def op(cls: type[Operation], **args: Any) -> Operation:
    return cls(cls.args_model.model_validate(args), OpContext(Path("/")))


@pytest.mark.parametrize(("cls", "args", "state", "expected"), [
    (PackageApt, {"name": "curl"}, Packages({}, install=["curl"]), "change: install curl"),
    (PackageApt, {"name": ["a", "b"], "update_cache": True}, Packages({"a": "1"}, install=["b"]),
     "change: install b (after `DEBIAN_FRONTEND=noninteractive apt-get update -q`)"),
    (PackageApt, {"name": "curl"}, Packages({"curl": "8.1"}), "no change: curl 8.1 installed"),
    (PackageApt, {"name": "curl", "state": "absent"}, Packages({"curl": "8.1"}, remove=["curl"]),
     "change: remove curl 8.1"),
    (PackageApt, {"name": "curl", "state": "latest"}, Packages({"curl": "8.1"}, upgrade={"curl": "8.2"}),
     "change: upgrade curl 8.1 -> 8.2"),
    (PackageDnf, {"name": "curl", "state": "latest"},
     Packages({"curl": "8.1"}, upgrade={"curl": ""}, unknown="dnf decides whether a newer version exists"),
     "unknown until run: upgrade curl 8.1 -> newest: dnf decides whether a newer version exists"),
    (PackageApk, {"name": "curl", "state": "absent"}, Packages({"curl": ""}, remove=["curl"]),
     "change: remove curl; rollback: unavailable"),
    (PackagePip, {"name": "rich==13.0", "virtualenv": "/v"}, Packages({"rich": "12.0"}, upgrade={"rich": "13.0"}),
     "change: pip install rich 12.0 -> 13.0 in /v"),
    (PackagePip, {"name": "rich", "virtualenv": "/v", "state": "absent"}, Packages({}),
     "no change: rich not installed in /v"),
    (ServiceStarted, {"name": "nginx"}, UnitState("nginx", "loaded", "inactive", "enabled"),
     "change: systemctl start nginx (now inactive)"),
    (ServiceStarted, {"name": "nginx"}, UnitState("nginx", "loaded", "active", "enabled"),
     "no change: nginx is active"),
    (ServiceStopped, {"name": "nginx"}, UnitState("nginx", "loaded", "failed", "enabled"),
     "no change: nginx is failed"),
    (ServiceRestarted, {"name": "nginx"}, UnitState("nginx", "loaded", "active", "enabled"),
     "change: systemctl restart nginx (now active); rollback: unavailable"),
    (ServiceEnabled, {"name": "nginx", "enabled": False}, UnitState("nginx", "loaded", "active", "enabled"),
     "change: systemctl disable nginx (now enabled)"),
    (ServiceEnabled, {"name": "tmp.mount"}, UnitState("tmp.mount", "loaded", "active", "static"),
     "no change: tmp.mount is static"),
    (UserPresent, {"name": "app", "uid": 1500, "shell": "/bin/sh"}, UserState(None, False, None),
     "change: useradd app (uid 1500, shell /bin/sh)"),
    (UserPresent, {"name": "app", "groups": ["web", "adm"], "shell": "/bin/sh"},
     UserState(UserEntry("app", 1500, 1500, "/home/app", "/bin/bash", ("web",)), True, None),
     "change: usermod app: groups web -> adm,web, shell /bin/bash -> /bin/sh"),
    (UserPresent, {"name": "app", "group": "web"},
     UserState(UserEntry("app", 1500, 33, "/home/app", "/bin/sh"), True, 33),
     "no change: user app exists as wanted (uid 1500)"),
    (UserAbsent, {"name": "app", "remove_home": True}, UserEntry("app", 1500, 1500, "/home/app", "/bin/sh"),
     "change: userdel app (uid 1500) and its home /home/app; rollback: unavailable"),
    (GroupPresent, {"name": "web", "gid": 900}, GroupEntry("web", 901), "change: groupmod web: gid 901 -> 900"),
    (GroupAbsent, {"name": "web"}, GroupEntry("web", 901, ("a", "b")), "change: groupdel web (gid 901, members a,b)"),
    (GroupAbsent, {"name": "web"}, None, "no change: group web does not exist"),
])
def test_plan(cls: type[Operation], args: dict[str, Any], state: Any, expected: str) -> None:
    assert op(cls, **args).plan(state).render() == expected


DIGEST = "sha256:" + "ab" * 32


def test_archive_plans() -> None:
    download = op(ArchiveDownload, src="https://example.org/x.tgz", checksum=DIGEST.upper().replace("SHA", "sha"),
                  dest="/opt/x.tgz")
    assert download.plan(ArchiveState(before=Before(PathState("absent")))).render() == (
        "change: download https://example.org/x.tgz (sha256 abababababab) to /opt/x.tgz")
    extract = op(ArchiveDownload, src="x.tgz", checksum=DIGEST, dest="/opt/x", extract=True)
    assert extract.plan(ArchiveState(marker=DIGEST)).render() == (
        "no change: /opt/x holds the extracted x.tgz (sha256 abababababab)")
    assert extract.plan(ArchiveState(marker=None)).kind == "change"


@pytest.mark.parametrize(("cls", "args", "message"), [
    (PackageApt, {"name": "curl; rm -rf /"}, "is not a package name"),
    (PackageApt, {"name": []}, "give at least one package name"),
    (PackagePip, {"name": "rich", "virtualenv": "venv"}, "is not an absolute path"),
    (UserPresent, {"name": "Bad Name"}, "is not a user or group name"),
    (ServiceStarted, {"name": "-x"}, "is not a unit name"),
    (ArchiveDownload, {"src": "x", "checksum": "md5:abc", "dest": "/x"}, "write the checksum as sha256:"),
    (ArchiveDownload, {"src": "ftp://h/x", "checksum": DIGEST, "dest": "/x"}, "only http:// and https://"),
])
def test_bad_arguments(cls: type[Operation], args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls.args_model.model_validate(args)
