"""``stackflow-plugin-dns-powerdns``: the reference DNS plugin, against PowerDNS's HTTP API.

Configuration comes only from the environment, as plugin spec v1 wants: ``POWERDNS_API_URL``
(e.g. ``http://127.0.0.1:8081``, passed through as a plain setting), ``POWERDNS_API_KEY`` (a
credential: masked by worldtree in everything the plugin prints) and optionally
``POWERDNS_SERVER_ID`` (default ``localhost``).

``plan`` reads the zone and reports what ``apply`` would change; ``apply`` makes those changes
with one PATCH of ``REPLACE`` rrsets, creating the zone (Native) when it does not exist. Both
compare (ttl, sorted contents) per (name, type), so a second apply changes nothing. A record
whose ``valueFrom`` has no value in the recorded state yet is left alone and said so on stderr.
Records are whole rrsets: one (fqdn, type) per record, which the stack's checks guarantee.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx

from worldtree.plugins.protocol import API_VERSION
from worldtree.stack.model import record_fqdn
from worldtree.stack.plans import value_from_source

DEFAULT_TTL = 300
TIMEOUT = 15.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def desired_rrsets(plan: dict[str, Any], state: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(fqdn., type) -> {ttl, contents} for every record with a value (resolved valueFrom included)."""
    domain = plan["global"]["domain"]
    outputs = state.get("outputs", {})
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in plan["records"]:
        fqdn = record_fqdn(rec["name"], domain)
        value = rec.get("value")
        if value is None:
            ref = rec["valueFrom"]
            owner, output = value_from_source(ref, rec["target"])
            value = outputs.get(owner, {}).get(output)
            if value is None:
                _log(f"{fqdn} {rec['type']}: valueFrom {ref} has no value yet (apply iac first); left alone")
                continue
        wanted[(_absolute(fqdn), rec["type"])] = {"ttl": int(rec.get("ttl") or DEFAULT_TTL),
                                                  "contents": [str(value)]}
    return wanted


class PowerDNS:
    def __init__(self, url: str, key: str, server: str = "localhost") -> None:
        self.client = httpx.Client(base_url=f"{url.rstrip('/')}/api/v1/servers/{server}",
                                   headers={"X-API-Key": key}, timeout=TIMEOUT)

    def zone(self, zone: str) -> dict[str, Any] | None:
        resp = self.client.get(f"/zones/{zone}")
        if resp.status_code == 404:
            return None
        _check(resp, f"read zone {zone}")
        data: dict[str, Any] = resp.json()
        return data

    def create_zone(self, zone: str) -> None:
        _check(self.client.post("/zones", json={"name": zone, "kind": "Native", "nameservers": []}),
               f"create zone {zone}")

    def replace(self, zone: str, rrsets: list[dict[str, Any]]) -> None:
        _check(self.client.patch(f"/zones/{zone}", json={"rrsets": rrsets}), f"update zone {zone}")


def _check(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 300:
        raise RuntimeError(f"PowerDNS refused to {what}: HTTP {resp.status_code} {resp.text[:300]}")


def changes_for(zone: dict[str, Any] | None, wanted: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for rrset in (zone or {}).get("rrsets", []):
        current[(rrset["name"], rrset["type"])] = {"ttl": rrset.get("ttl"),
                                                   "contents": sorted(r["content"] for r in rrset["records"])}
    out = []
    for (name, rtype), want in sorted(wanted.items()):
        have = current.get((name, rtype))
        if have is not None and have["ttl"] == want["ttl"] and have["contents"] == sorted(want["contents"]):
            continue
        out.append({"resource": f"{name} {rtype}", "action": "create" if have is None else "update",
                    "before": have, "after": want})
    return out


def run(subcommand: str, request: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    url, key = environ.get("POWERDNS_API_URL", ""), environ.get("POWERDNS_API_KEY", "")
    if not url or not key:
        raise RuntimeError("set POWERDNS_API_URL and POWERDNS_API_KEY")
    api = PowerDNS(url, key, environ.get("POWERDNS_SERVER_ID", "localhost"))
    zone_name = _absolute(request["plan"]["global"]["domain"].lower())
    wanted = desired_rrsets(request["plan"], request.get("state", {}))
    zone = api.zone(zone_name)
    changes = changes_for(zone, wanted)
    if zone is None:
        changes.insert(0, {"resource": zone_name, "action": "create", "before": None, "after": {"kind": "Native"}})
    if subcommand == "apply" and changes:
        if zone is None:
            api.create_zone(zone_name)
        rrsets = [{"name": c["resource"].split(" ")[0], "type": c["resource"].split(" ")[1], "changetype": "REPLACE",
                   "ttl": c["after"]["ttl"], "records": [{"content": v, "disabled": False}
                                                         for v in c["after"]["contents"]]}
                  for c in changes if " " in c["resource"]]
        if rrsets:
            api.replace(zone_name, rrsets)
        _log(f"applied {len(changes)} change(s) to {zone_name}")
    elif not changes:
        _log(f"{zone_name}: no changes")
    return {"apiVersion": API_VERSION, "kind": "Response", "ok": True, "changes": changes, "artifacts": [],
            "links": [f"{url.rstrip('/')}/api/v1/servers/localhost/zones/{zone_name}"]}


def main() -> None:
    subcommand = sys.argv[1] if len(sys.argv) > 1 else ""
    if subcommand == "info":
        print(json.dumps({"name": "powerdns", "version": "1", "phases": ["dns"], "plan": True,
                          "credentials": ["POWERDNS_API_KEY"], "env": ["POWERDNS_API_URL", "POWERDNS_SERVER_ID"]}))
        return
    if subcommand not in ("plan", "apply"):
        _log("usage: stackflow-plugin-dns-powerdns info|plan|apply (request JSON on stdin)")
        sys.exit(2)
    try:
        print(json.dumps(run(subcommand, json.load(sys.stdin), dict(os.environ))))
    except (RuntimeError, httpx.HTTPError, ValueError, KeyError) as exc:
        _log(f"error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
