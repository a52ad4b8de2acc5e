"""``worldtree server`` configuration: ``--config`` (flags and variables win, located errors), TLS,
JSON logs carrying the run's fields, and seed 001's metrics moving."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.server.conftest import Servers, free_port, pipeline


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env.update(extra)
    return env


@pytest.mark.slow
def test_a_config_file_fills_in_what_flags_and_variables_do_not(servers: Servers, tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("# laptop settings\nexecutors: 7\nmax-concurrent: 3\ndrain_seconds: 1\n")
    from_file = servers(executors=1, args=["--config", str(config)])
    stats = from_file.get("/api/v1/queue/stats").json()
    assert stats["executors"] == 1  # the flag wins over the file
    assert stats["max_concurrent"] == 3  # the file fills in what no flag set
    from_env = servers(executors=1, args=["--config", str(config)], env={"WORLDTREE_MAX_CONCURRENT": "5"})
    assert from_env.get("/api/v1/queue/stats").json()["max_concurrent"] == 5  # the variable wins over the file


def test_a_bad_config_is_a_located_error(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("port: 8080\nprot: 9090\nexecutors: many\nlease_seconds: 0.5\nlog_format: xml\n")
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "server", "--config", str(config),
                           "--data-dir", str(tmp_path / "data")], env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"{config}:2:1: error: unknown setting 'prot'" in proc.stderr
    assert re.search(rf"{re.escape(str(config))}:3:\d+: error: executors: .*many", proc.stderr)
    assert re.search(rf"{re.escape(str(config))}:4:\d+: error: lease_seconds: ", proc.stderr)
    assert f"{config}:5:13: error: log_format: 'xml': one of json, console" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "server", "--config",
                              str(tmp_path / "nope.yaml")], env=_env(), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "worldtree test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.slow
def test_tls_serves_https_and_wss(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "server", "--port", str(port),
                             "--data-dir", str(tmp_path / "data"), "--grpc-port", "-1"],
                            env=_env(WORLDTREE_TLS_CERT=str(cert), WORLDTREE_TLS_KEY=str(key)),
                            stdout=log, stderr=log)
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", verify=str(cert), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)  # plain HTTP is not served
        import ssl

        from websockets.sync.client import connect

        context = ssl.create_default_context(cafile=str(cert))
        with connect(f"wss://127.0.0.1:{port}/", ssl=context, open_timeout=10) as conn:
            conn.send(json.dumps({"type": "run", "payload": pipeline(("hi", "echo over tls"))}))
            frames = [json.loads(conn.recv(timeout=60)) for _ in range(2)]
        assert frames == [{"type": "stdout", "payload": "over tls\n"}, {"type": "done", "payload": ""}]
        assert f"https://127.0.0.1:{port}/" in (tmp_path / "server.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    other = tmp_path / "other"
    other.mkdir()
    wrong_cert, _ = _self_signed(other)
    mismatch = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "server", "--port", "0",
                               "--data-dir", str(tmp_path / "data"), "--tls-cert", str(wrong_cert), "--tls-key",
                               str(key)], env=_env(), capture_output=True, text=True, timeout=60)
    assert mismatch.returncode == 2 and "--tls-cert" in mismatch.stderr and "Traceback" not in mismatch.stderr
    alone = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "server", "--tls-cert", str(cert)],
                           env=_env(), capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2 and "go together" in alone.stderr


def test_json_logs_carry_the_run_node_and_executor(servers: Servers) -> None:
    server = servers(executors=1, args=["--grpc-port", "-1"])
    run_id = server.submit(pipeline(("one", "echo 1"), ("two", "echo 2")))
    assert server.wait(run_id)["state"] == "succeeded"
    server.stop()  # every line written
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]  # each one JSON
    assert all({"ts", "level", "event", "logger"} <= set(line) for line in lines)
    nodes = [line for line in lines if line.get("node") and line.get("run_id") == run_id]
    assert {line["node"] for line in nodes} >= {"build/main/one", "build/main/two"}
    assert all(line["executor"] == "executor-1" for line in nodes)
    claimed = [line for line in lines if line["logger"] == "worldtree.executor" and line.get("run_id") == run_id]
    assert claimed and claimed[0]["executor"] == "executor-1" and claimed[0]["attempt"] == 1
    access = [line for line in lines if line["logger"] == "uvicorn.access" and line.get("method") == "POST"]
    assert access and access[0]["path"] == "/api/v1/runs" and access[0]["status"] == 202


def test_metrics_have_seed_001s_series_and_they_move(servers: Servers) -> None:
    idle = servers(executors=0)
    idle.submit(pipeline(("a", "true")))
    queued = idle.get("/metrics").text
    assert re.search(r"^worldtree_queue_size 1\.0$", queued, re.M)
    assert re.search(r"^worldtree_tasks_pending_total 1\.0$", queued, re.M)
    worker = servers(executors=1)  # takes the queued run, then two more
    for command in ("true", "exit 3"):
        worker.submit(pipeline(("a", command)))
    deadline = time.monotonic() + 60
    while worker.get("/api/v1/queue/stats").json()["succeeded"] + \
            worker.get("/api/v1/queue/stats").json()["failed"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    text = worker.get("/metrics").text
    assert re.search(r'^worldtree_tasks_total\{status="succeeded"\} 2\.0$', text, re.M)
    assert re.search(r'^worldtree_tasks_total\{status="failed"\} 1\.0$', text, re.M)
    assert re.search(r'^worldtree_step_executions_total\{status="failed"\} 1\.0$', text, re.M)
    assert re.search(r"^worldtree_task_duration_seconds_count 3\.0$", text, re.M)
    assert re.search(r"^worldtree_queue_size 0\.0$", text, re.M)
    found = re.search(r'^http_request_duration_seconds_count\{method="GET",route="/api/v1/queue/stats",'
                      r'status="200"\} (\d+)\.0$', text, re.M)
    assert found and int(found.group(1)) >= 2
