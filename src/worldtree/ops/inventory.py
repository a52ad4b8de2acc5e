"""The inventory: named SSH hosts and groups of them, which a job's ``hosts:`` fans out over.

::

    defaults:                      # apply to every host unless the host says otherwise
      user: deploy
      port: 22
      key_file: ~/.ssh/id_ed25519
      host_key_checking: true      # false turns known_hosts checking off for these hosts
      known_hosts: ~/.ssh/known_hosts
    hosts:
      web1: {address: 10.0.0.11, labels: {role: web}, vars: {tier: front}}
      web2: 10.0.0.12              # shorthand: just the address
      db1:  {address: db.internal, port: 2222, user: postgres}
    groups:
      web: [web1, web2]            # shorthand: a list of host names
      all-app: {groups: [web], hosts: [db1], vars: {env: prod}}

Every host is also in the implicit group ``all``. A group may name hosts and other groups;
cycles are errors. Names resolve in order, de-duplicated: ``resolve(["web", "db1", "web1"])``
is ``["web1", "web2", "db1"]``. Passwords never belong here: ``password`` accepts only a
``${SECRET_NAME}`` reference, expanded from the step's environment (where secrets arrive).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from worldtree.compile.diagnostics import Diagnostic
from worldtree.compile.yaml_source import Positions, YamlSourceError, load_yaml
from worldtree.connectors.ssh.target import SshTarget
from worldtree.errors import SpecError
from worldtree.model.refs import REF, expand_required

__all__ = ["GroupSpec", "HostDefaults", "HostSpec", "Inventory", "load_inventory", "load_inventory_text"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_RESERVED = "all"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _vars(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of name: value")
    return value


class HostDefaults(_Model):
    """Connection settings shared by hosts (``defaults:``) and overridable per host."""

    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    key_file: str | None = None
    password: str | None = None
    host_key_checking: bool | None = None
    known_hosts: str | None = None
    connect_timeout: float | None = Field(default=None, gt=0)
    #: a bastion: the name of another inventory host this one is reached through (OpenSSH's ProxyJump)
    proxy_jump: str | None = None
    #: run commands and file changes as ``become_user`` through ``sudo`` (docs/ops.md "become")
    become: bool | None = None
    become_user: str | None = None
    #: ``${SECRET_NAME}`` of the sudo password (never a literal, like ``password``)
    become_password: str | None = None
    #: the sudo program (Ansible's ``become_exe``)
    become_exe: str | None = None

    @field_validator("become_password")
    @classmethod
    def _become_password_is_reference(cls, value: str | None) -> str | None:
        if value is not None and not REF.fullmatch(value):
            raise ValueError("an inventory never holds a password: write `${SECRET_NAME}` and pass the secret "
                             "with --secrets-file or the environment")
        return value

    @field_validator("password")
    @classmethod
    def _password_is_reference(cls, value: str | None) -> str | None:
        if value is not None and not REF.fullmatch(value):
            raise ValueError("an inventory never holds a password: write `${SECRET_NAME}` and list that "
                             "secret in the job's `secrets:`")
        return value


class HostSpec(HostDefaults):
    """One machine. ``address`` defaults to the host's name."""

    address: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, str):
            return {"address": value}
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> dict[str, str]:
        return {str(k): str(v) for k, v in _vars(value).items()}

    @field_validator("vars", mode="before")
    @classmethod
    def _vars(cls, value: Any) -> dict[str, Any]:
        return _vars(value)


class GroupSpec(_Model):
    hosts: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, list):
            return {"hosts": value}
        return value

    @field_validator("vars", mode="before")
    @classmethod
    def _vars(cls, value: Any) -> dict[str, Any]:
        return _vars(value)


class Inventory(_Model):
    """A loaded, checked inventory. ``source`` is the file it came from, for messages."""

    source: str = "<inventory>"
    defaults: HostDefaults = Field(default_factory=HostDefaults)
    hosts: dict[str, HostSpec] = Field(default_factory=dict)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)

    def host(self, name: str) -> HostSpec:
        """The host ``name`` with ``defaults`` filled in."""
        spec = self.hosts[name]
        merged = {**self.defaults.model_dump(exclude_none=True), **spec.model_dump(exclude_none=True)}
        merged.setdefault("address", name)
        merged["vars"] = {**self.group_vars(name), **spec.vars}
        return HostSpec.model_validate(merged)

    def group_vars(self, host: str) -> dict[str, Any]:
        """Variables a host gets from the groups it is in (later groups in the file win)."""
        out: dict[str, Any] = {}
        for group_name, group in self.groups.items():
            if group.vars and host in self.resolve([group_name]):
                out.update(group.vars)
        return out

    def resolve(self, names: list[str]) -> list[str]:
        """Host and group names -> host names, in order, each once. KeyError for an unknown name."""
        out: dict[str, None] = {}
        for name in names:
            for host in self._expand(name, ()):
                out.setdefault(host, None)
        return list(out)

    def _expand(self, name: str, trail: tuple[str, ...]) -> list[str]:
        if name in self.hosts:
            return [name]
        if name == _RESERVED and name not in self.groups:
            return list(self.hosts)
        group = self.groups.get(name)
        if group is None:
            raise KeyError(f"{name!r} is neither a host nor a group of inventory {self.source}"
                           f"{_suggest(name, [*self.hosts, *self.groups, _RESERVED])}")
        if name in trail:
            raise ValueError(f"group cycle in inventory {self.source}: {' -> '.join((*trail, name))}")
        out = list(group.hosts)
        for sub in group.groups:
            out.extend(self._expand(sub, (*trail, name)))
        return out

    def names(self) -> list[str]:
        return [*self.hosts, *self.groups]

    def target(self, name: str, env: Mapping[str, str] | None = None, _trail: tuple[str, ...] = ()) -> SshTarget:
        """Where host ``name`` is reached, its ``${SECRET}`` password expanded from ``env`` (and its
        ``proxy_jump`` host as the target's ``jump``)."""
        spec = self.host(name)
        password = expand_required(spec.password, env or {}, f"inventory host {name!r}") if spec.password \
            else None
        jump = None
        if spec.proxy_jump and spec.proxy_jump != name:  # `defaults: {proxy_jump: b}` does not make b jump to b
            if spec.proxy_jump in (*_trail, name):
                raise SpecError([Diagnostic("error", "inventory", f"proxy_jump cycle in inventory {self.source}: "
                                            f"{' -> '.join((*_trail, name, spec.proxy_jump))}", self.source)])
            jump = self.target(spec.proxy_jump, env, (*_trail, name))
        return SshTarget(address=spec.address or name, port=spec.port, user=spec.user, password=password,
                         key_file=spec.key_file, label=name, host_key_checking=spec.host_key_checking,
                         known_hosts=spec.known_hosts, connect_timeout=spec.connect_timeout, jump=jump)

    def engine_url(self, name: str) -> str:
        """The ``ssh://`` URL of host ``name`` (no secret: a password stays a ``${NAME}``), so a
        fanned-out graph runs without the inventory file (retry, agents)."""
        spec = self.host(name)
        if spec.proxy_jump and spec.proxy_jump != name:
            raise SpecError([Diagnostic("error", "inventory", f"host {name!r} has proxy_jump, which jobs with "
                                        "`hosts:` do not support yet; use `worldtree apply` for hosts behind a "
                                        "bastion", self.source)])
        address = spec.address or name
        host = f"[{address}]" if ":" in address else quote(address, safe="")
        userinfo = quote(spec.user, safe="") if spec.user else ""
        if spec.password:
            userinfo += ":" + spec.password  # a ${NAME} reference, checked by HostDefaults
        params = {k: v for k, v in (("key_file", spec.key_file), ("known_hosts", spec.known_hosts),
                                    ("connect_timeout", spec.connect_timeout)) if v is not None}
        if spec.host_key_checking is False:
            params["host_key_checking"] = "false"
        query = ("?" + urlencode(params, safe="/~${}")) if params else ""
        port = f":{spec.port}" if spec.port else ""
        return f"ssh://{userinfo + '@' if userinfo else ''}{host}{port}{query}"


def _suggest(name: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_inventory(path: str | Path) -> Inventory:
    """Read and check an inventory file; SpecError with every problem at ``file:line:col``."""
    filename = str(path)
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Diagnostic("error", "file", "no such inventory file; check the path", filename)]) \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Diagnostic("error", "file", f"cannot read the inventory: {exc}",
                                    filename)]) from None
    return load_inventory_text(text, filename)


def load_inventory_text(text: str, filename: str = "<inventory>") -> Inventory:
    try:
        data, positions, diags = load_yaml(text, filename)
    except YamlSourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([Diagnostic("error", "shape", "an inventory is a mapping with `hosts` and `groups`",
                                    filename, *_at(positions, ()))])
    try:
        inventory = Inventory.model_validate({**data, "source": filename})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            where = ".".join(str(p) for p in loc) or "inventory"
            diags.append(Diagnostic("error", "inventory", f"{where}: {msg}", filename, *_at(positions, loc)))
        raise SpecError(sorted(diags, key=lambda d: (d.line, d.col))) from None
    diags.extend(_check_names(inventory, positions, filename))
    if any(d.severity == "error" for d in diags):
        raise SpecError(sorted(diags, key=lambda d: (d.line, d.col)))
    return inventory


def _at(positions: Positions, path: tuple[Any, ...]) -> tuple[int, int]:
    for end in range(len(path), -1, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return (1, 1)


def _check_names(inv: Inventory, positions: Positions, filename: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []

    def err(path: tuple[Any, ...], message: str) -> None:
        diags.append(Diagnostic("error", "inventory", message, filename, *_at(positions, path)))

    for name, spec in inv.hosts.items():
        jump = spec.proxy_jump or inv.defaults.proxy_jump
        if jump is not None and jump != name and jump not in inv.hosts:
            err(("hosts", name, "proxy_jump"), f"host {name!r}: proxy_jump names unknown host {jump!r}"
                f"{_suggest(jump, list(inv.hosts))}; the bastion must be a host of this inventory")
        if not _NAME.match(name):
            err(("hosts", name, "__key__"), f"host name {name!r}: use letters, digits, `_ . : -`")
        if name in inv.groups:
            err(("groups", name, "__key__"), f"{name!r} is both a host and a group; rename one")
    if _RESERVED in inv.hosts:
        err(("hosts", _RESERVED, "__key__"), "`all` is the implicit group of every host; rename this host")
    for gname, group in inv.groups.items():
        if not _NAME.match(gname):
            err(("groups", gname, "__key__"), f"group name {gname!r}: use letters, digits, `_ . : -`")
        for i, host in enumerate(group.hosts):
            if host not in inv.hosts:
                err(("groups", gname, "hosts", i) if isinstance(positions.get(("groups", gname, "hosts")),
                                                                  tuple) else ("groups", gname, i),
                    f"group {gname!r} names unknown host {host!r}{_suggest(host, list(inv.hosts))}")
        for i, sub in enumerate(group.groups):
            if sub not in inv.groups and sub != _RESERVED:
                err(("groups", gname, "groups", i),
                    f"group {gname!r} names unknown group {sub!r}{_suggest(sub, list(inv.groups))}")
    if not diags:
        for gname in inv.groups:
            try:
                inv.resolve([gname])
            except ValueError as exc:
                err(("groups", gname, "__key__"), str(exc))
    return diags
