"""Real OpenSSH servers on loopback for tests and the benchmark ("several hosts" = several sshd).

Each server gets its own host key; all accept one client key for the test user; servers with
``password=True`` also accept the user's password. The test user (``wtssh``, shell /bin/sh,
no rc files) is created idempotently; we need root for that and for sshd's privilege
separation, which is how these tests run (and CI). Servers are stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = os.environ.get("WORLDTREE_TEST_SSHD", "/usr/sbin/sshd")
#: one user per pytest-xdist worker: each worker's farm sets its own random password, and workers
#: sharing one user overwrote each other's (password logins then failed at random)
USER = "wtssh" + (f"-{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else "")
#: a fast key exchange: post-quantum hybrids add ~80 ms per new connection on these machines
KEX = "curve25519-sha256,curve25519-sha256@libssh.org"


class FarmUnavailable(RuntimeError):
    """sshd cannot be started here; the message says why."""


@dataclass
class Server:
    name: str
    port: int
    password_auth: bool
    host_key: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def accepted(self) -> int:
        """Logins sshd accepted so far (one per connection)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(1 for line in text.splitlines() if "Accepted " in line)


@dataclass
class Farm:
    root: Path
    user: str
    password: str
    client_key: Path
    known_hosts: Path
    servers: list[Server] = field(default_factory=list)

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    def server(self, name: str) -> Server:
        return next(s for s in self.servers if s.name == name)

    def stop(self) -> None:
        """Stop each sshd and the per-connection processes it forked (by PID, children first)."""
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                for child in _children(server.proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGTERM)
                server.proc.terminate()
                try:
                    server.proc.wait(5)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _run(*argv: str, input_text: str | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, input=input_text, text=True)


def ensure_user(password: str) -> None:
    """Create the test user once (idempotent) and set its password."""
    if os.geteuid() != 0:
        raise FarmUnavailable("the SSH tests create a test user and run sshd: run them as root")
    if not shutil.which("useradd"):
        raise FarmUnavailable("useradd is missing")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        _run("useradd", "--create-home", "--shell", "/bin/sh", USER)
    _run("chpasswd", input_text=f"{USER}:{password}\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            return bool(s.recv(4).startswith(b"SSH-"))
        time.sleep(0.05)
    return False


def start_farm(count: int, *, password_servers: int = 1, root: Path | None = None) -> Farm:
    """Start ``count`` sshd on 127.0.0.1; the last ``password_servers`` also take passwords."""
    if not os.path.exists(SSHD):
        raise FarmUnavailable(f"{SSHD} is missing (apt-get install openssh-server)")
    password = "pw-" + secrets.token_hex(8)
    ensure_user(password)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    base = Path(tempfile.mkdtemp(prefix="worldtree-sshd-", dir=root))
    base.chmod(0o755)  # sshd reads authorized_keys as the test user
    client_key = base / "client_key"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "worldtree-test", "-f", str(client_key))
    authorized = base / "authorized_keys"
    shutil.copy(str(client_key) + ".pub", authorized)
    authorized.chmod(0o644)
    farm = Farm(root=base, user=USER, password=password, client_key=client_key,
                known_hosts=base / "known_hosts")
    known: list[str] = []
    try:
        for i in range(count):
            name = f"h{i + 1}"
            port = _free_port()
            host_key = base / f"host_{name}"
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
            with_password = i >= count - password_servers
            config = base / f"sshd_{name}.conf"
            config.write_text("\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
                f"PidFile {base / f'sshd_{name}.pid'}", f"AuthorizedKeysFile {authorized}",
                "StrictModes no", "UsePAM no", f"AllowUsers {USER}", "PermitRootLogin no",
                f"PasswordAuthentication {'yes' if with_password else 'no'}",
                "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
                f"KexAlgorithms {KEX}", "LogLevel INFO", "MaxStartups 200", "MaxSessions 10",
                "UseDNS no", "PrintMotd no", "Subsystem sftp internal-sftp", "",
            ]))
            log = base / f"sshd_{name}.log"
            server = Server(name=name, port=port, password_auth=with_password, host_key=host_key, log=log)
            with log.open("wb") as sink:
                server.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=sink,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            farm.servers.append(server)
            if not _wait_port(port, server.proc, time.monotonic() + 10):
                raise FarmUnavailable(f"sshd {name} did not start on port {port}: "
                                      f"{log.read_text(errors='replace')[-500:]}")
            pub = Path(str(host_key) + ".pub").read_text().split()
            known.append(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}")
        farm.known_hosts.write_text("\n".join(known) + "\n")
        write_ssh_config(farm, farm.ssh_config)
    except BaseException:
        farm.stop()
        raise
    return farm


def farm_or_skip(count: int, *, password_servers: int) -> Iterator[Farm]:
    """A session fixture's body: the farm, stopped afterwards; or a loud skip when sshd cannot start."""
    import pytest  # only fixtures need it; benchmarks import this module too

    try:
        servers = start_farm(count, password_servers=password_servers)
    except FarmUnavailable as exc:
        message = f"SSH TESTS SKIPPED: cannot start OpenSSH sshd: {exc}"
        warnings.warn(message, stacklevel=2)
        print(f"\n*** {message} ***\n", file=sys.stderr)
        pytest.skip(message)
    yield servers
    servers.stop()


def write_ssh_config(farm: Farm, path: Path) -> None:
    """An ssh_config naming each server (``Host h1`` ...) as a user's ~/.ssh/config would."""
    lines: list[str] = []
    for s in farm.servers:
        lines += [f"Host {s.name}", "  HostName 127.0.0.1", f"  Port {s.port}", ""]
    lines += ["Host *", f"  User {farm.user}", f"  IdentityFile {farm.client_key}", "  IdentitiesOnly yes",
              f"  UserKnownHostsFile {farm.known_hosts}", ""]
    path.write_text("\n".join(lines))


def inventory_yaml(farm: Farm, *, names: list[str] | None = None) -> str:
    """An inventory of the farm's key-auth servers plus group ``all-farm``."""
    servers = [s for s in farm.servers if names is None or s.name in names]
    lines = ["defaults:", f"  user: {farm.user}", f"  key_file: {farm.client_key}",
             f"  known_hosts: {farm.known_hosts}", "hosts:"]
    for s in servers:
        lines.append(f"  {s.name}: {{address: 127.0.0.1, port: {s.port}}}")
    lines += ["groups:", "  farm: [" + ", ".join(s.name for s in servers) + "]"]
    return "\n".join(lines) + "\n"
