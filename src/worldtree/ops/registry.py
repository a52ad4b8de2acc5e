"""Operation names -> classes. Built-in ones here; ``register`` adds a user's own class."""

from __future__ import annotations

from worldtree.ops.archive import ArchiveDownload
from worldtree.ops.commands import Command
from worldtree.ops.files import FileAbsent, FileDirectory, FileFile, FileLine, FileLink, FileTemplate
from worldtree.ops.operation import Operation
from worldtree.ops.packages import PackageApk, PackageApt, PackageDnf, PackagePip
from worldtree.ops.services import ServiceEnabled, ServiceRestarted, ServiceStarted, ServiceStopped
from worldtree.ops.users import GroupAbsent, GroupPresent, UserAbsent, UserPresent

__all__ = ["OPERATIONS", "register"]

OPERATIONS: dict[str, type[Operation]] = {
    cls.name: cls for cls in (FileDirectory, FileFile, FileTemplate, FileLine, FileAbsent, FileLink, Command,
                              PackageApt, PackageDnf, PackageApk, PackagePip,
                              ServiceStarted, ServiceStopped, ServiceRestarted, ServiceEnabled,
                              UserPresent, UserAbsent, GroupPresent, GroupAbsent, ArchiveDownload)}


def register(cls: type[Operation]) -> type[Operation]:
    """Add an operation class (usable as a decorator); its ``name`` is what ``op:`` says."""
    OPERATIONS[cls.name] = cls
    return cls
