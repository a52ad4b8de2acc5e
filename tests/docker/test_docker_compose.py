"""The compose subset: parsing and container bodies, without a daemon."""

from __future__ import annotations

import pytest

from worldtree.backends.docker.compose import Deployment, Port, parse_compose, service_container
from worldtree.errors import BackendError

DOC = """
version: '3'
services:
  web:
    image: app:${TAG}
    command: httpd -f -p 8080
    environment: [DB=db, MODE]
    ports: ["8080", "9000:80", "127.0.0.1:9001:81/udp", {target: 82, published: 9002}]
    depends_on:
      db: {condition: service_healthy}
    volumes: [data:/data]
  db:
    image: postgres:13
    environment: {POSTGRES_PASSWORD: "${PW}", DEBUG: true}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      retries: 5
      start_period: 1m
volumes: {data: {}}
"""


def test_parse_orders_dependencies_first_and_interpolates():
    project = parse_compose(DOC, {"TAG": "v2", "PW": "pw", "MODE": "fast"})
    web, db = project.services[1], project.services[0]
    assert [s.name for s in project.services] == ["db", "web"]
    assert web.image == "app:v2" and web.command == ["httpd", "-f", "-p", "8080"]
    assert web.environment == {"DB": "db", "MODE": "fast"}
    assert web.ports == [Port(8080), Port(80, host="9000"), Port(81, "udp", "9001", "127.0.0.1"),
                         Port(82, host="9002")]
    assert web.depends_on == {"db": "service_healthy"}
    assert db.environment == {"POSTGRES_PASSWORD": "pw", "DEBUG": "true"}
    assert db.healthcheck is not None
    assert db.healthcheck.test == ["/bin/sh", "-c", "pg_isready -U postgres"]
    assert (db.healthcheck.interval, db.healthcheck.retries, db.healthcheck.start_period) == (2.0, 5, 60.0)
    assert any("volumes" in w for w in project.warnings)


@pytest.mark.parametrize(("doc", "message"), [
    ("services: {}", "at least one service"),
    ("services: {a: {command: x}}", "needs an `image`"),
    ("services: {a: {image: x, depends_on: [b]}}", "not a service"),
    ("services: {a: {image: x, depends_on: [b]}, b: {image: y, depends_on: [a]}}", "cycle"),
    ("services: {a: {image: x, ports: ['http']}}", "port"),
    ("services: [", "not valid YAML"),
])
def test_invalid_documents(doc, message):
    with pytest.raises(BackendError, match=message):
        parse_compose(doc, {})


def test_service_container_body_for_run_and_kept_deployments():
    svc = parse_compose("services: {db: {image: 'pg:13', ports: ['5432']}}", {}).services[0]
    run = Deployment(name="stack", version="v1", keep=False, run_id="r1", node_id="j/s")
    name, body = service_container(svc, run, "wt-r1")
    assert name == "wt-r1-svc-stack-db"
    assert body["Labels"]["worldtree.run_id"] == "r1"
    assert body["NetworkingConfig"]["EndpointsConfig"]["wt-r1"]["Aliases"] == ["db"]
    assert body["HostConfig"]["PortBindings"] == {"5432/tcp": [{"HostIp": "", "HostPort": ""}]}
    kept = Deployment(name="stack", version="v1", keep=True, run_id="r1", node_id="j/s")
    name, body = service_container(svc, kept, kept.network or "")
    assert name == "wt-svc-stack-db" and kept.network == "wt-svc-stack"
    assert "worldtree.run_id" not in body["Labels"] and body["Labels"]["worldtree.service.version"] == "v1"


def test_healthcheck_forms():
    doc = ("services: {a: {image: x, healthcheck: {test: 'true'}}, b: {image: x, healthcheck: {test: [CMD, "
           "wget, -q, 'http://b']}}, c: {image: x, healthcheck: {disable: true}}}")
    a, b, c = parse_compose(doc, {}).services
    assert a.healthcheck and a.healthcheck.test == ["/bin/sh", "-c", "true"] and a.healthcheck.interval is None
    assert b.healthcheck and b.healthcheck.test == ["wget", "-q", "http://b"]
    assert c.healthcheck is None


def test_interpolation_like_compose():
    from worldtree.backends.docker.compose import expand

    env = {"A": "1", "EMPTY": ""}
    assert expand("$$A ${A} $A ${B:-dflt} ${EMPTY:-d2} ${EMPTY-d3} ${B-d4} $B.", env) == "$A 1 1 dflt d2  d4 ."
