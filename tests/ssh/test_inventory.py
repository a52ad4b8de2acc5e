"""Inventory loading, errors at file:line:col, and group resolution (pure)."""

from __future__ import annotations

import pytest

from worldtree.errors import SpecError
from worldtree.ops.inventory import load_inventory, load_inventory_text

GOOD = """\
defaults:
  user: deploy
  port: 2222
hosts:
  web1: {address: 10.0.0.1, labels: {role: web}, vars: {tier: front}}
  web2: 10.0.0.2
  db1:
    address: db.internal
    port: 5432
    user: postgres
    password: ${DB_PW}
groups:
  web: [web1, web2]
  app:
    groups: [web]
    hosts: [db1]
    vars: {env: prod}
"""


def test_load_and_defaults() -> None:
    inv = load_inventory_text(GOOD, "inv.yaml")
    web2 = inv.host("web2")
    assert (web2.address, web2.port, web2.user) == ("10.0.0.2", 2222, "deploy")
    db = inv.host("db1")
    assert (db.port, db.user, db.password) == (5432, "postgres", "${DB_PW}")
    assert inv.host("web1").labels == {"role": "web"}
    assert inv.host("web1").vars == {"env": "prod", "tier": "front"}


def test_resolve_expands_groups_in_order_without_duplicates() -> None:
    inv = load_inventory_text(GOOD, "inv.yaml")
    assert inv.resolve(["web"]) == ["web1", "web2"]
    assert inv.resolve(["db1", "app", "web1"]) == ["db1", "web1", "web2"]
    assert inv.resolve(["all"]) == ["web1", "web2", "db1"]
    with pytest.raises(KeyError, match="did you mean 'web'"):
        inv.resolve(["wbe"])


def test_errors_point_at_the_line() -> None:
    text = """\
hosts:
  web1: {address: 10.0.0.1, port: 99999}
  web2: {adress: 10.0.0.2}
  db1: {password: plaintext}
groups:
  web: [web1, web3]
  loop: {groups: [loop2]}
  loop2: {groups: [loop]}
"""
    with pytest.raises(SpecError) as info:
        load_inventory_text(text, "inv.yaml")
    rendered = [d.render() for d in info.value.diagnostics]
    assert any(r.startswith("inv.yaml:2:") and "port" in r for r in rendered), rendered
    assert any(r.startswith("inv.yaml:3:") and "adress" in r for r in rendered), rendered
    assert any(r.startswith("inv.yaml:4:") and "never holds a password" in r for r in rendered), rendered
    assert "plaintext" not in str(info.value)
    # name errors are reported once the shapes are right
    with pytest.raises(SpecError) as info:
        load_inventory_text("hosts: {web1: 1.2.3.4}\ngroups:\n  web: [web1, web3]\n  a: {groups: [b]}\n"
                            "  b: {groups: [a]}\n", "inv.yaml")
    rendered = [d.render() for d in info.value.diagnostics]
    assert any(r.startswith("inv.yaml:3:") and "unknown host 'web3'" in r for r in rendered), rendered
    with pytest.raises(SpecError, match="cycle"):
        load_inventory_text("hosts: {h: x}\ngroups:\n  a: {groups: [b]}\n  b: {groups: [a]}\n", "i.yaml")


def test_file_errors(tmp_path) -> None:
    with pytest.raises(SpecError, match="no such inventory file"):
        load_inventory(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: [\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:"):
        load_inventory(bad)
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(SpecError, match="mapping"):
        load_inventory(tmp_path / "list.yaml")
