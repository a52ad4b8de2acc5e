"""The server's secrets: write-only values, encrypted at rest, resolved into a run's ``secrets:``.

A value is encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) before it
reaches the store, so the database, its backups and its logs hold only tokens. The key comes from
``WORLDTREE_SECRET_KEY`` (one Fernet key, or several separated by commas: the first encrypts, all
decrypt, which is how a key is rotated), else from ``<data dir>/secret.key``, created 0600 at
first start. Replicas must share it: give each the same ``WORLDTREE_SECRET_KEY`` or the same file.
A server whose key cannot decrypt the stored secrets refuses to start (:func:`check_keys`) rather
than failing every run that needs one.

Nothing here returns a value to an interface: only :func:`resolve` does, for an executor.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from worldtree.app.service import NotFoundError
from worldtree.errors import UsageError
from worldtree.store.api import RunStore

KEY_ENV = "WORLDTREE_SECRET_KEY"
KEY_FILE = "secret.key"
#: Names are environment variable names: a step sees the secret under its name.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
MAX_VALUE_BYTES = 64 * 1024


class SecretKeyError(UsageError):
    """The secret key is malformed, or does not decrypt the secrets in the store."""


@dataclass(frozen=True)
class SecretKeys:
    """The keys values are encrypted with (first) and decrypted with (any)."""

    fernet: MultiFernet
    source: str  # where the key came from, for messages: never the key itself

    def encrypt(self, value: str) -> str:
        return self.fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self.fernet.decrypt(token.encode("ascii")).decode("utf-8")


def load_keys(data_dir: str) -> SecretKeys:
    """The keys from ``WORLDTREE_SECRET_KEY``, else the data dir's key file (made, 0600, if absent)."""
    configured = os.environ.get(KEY_ENV, "").strip()
    if configured:
        return SecretKeys(_fernet(configured.split(","), KEY_ENV), KEY_ENV)
    path = Path(data_dir).resolve() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # written whole under a temporary name, then linked: two servers starting at
        # once on one data dir agree on one key, and neither ever reads a half-written file
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key() + b"\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        raise SecretKeyError(f"{path}: the secret key file is readable by others; `chmod 600 {path}`")
    return SecretKeys(_fernet(path.read_text().split(","), str(path)), str(path))


def _fernet(keys: list[str], source: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.strip().encode("ascii")) for k in keys if k.strip()])
    except (ValueError, UnicodeEncodeError):
        raise SecretKeyError(f"{source}: not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
                        ) from None


def _rows(store: RunStore) -> Any:
    from worldtree.store.server_data import SecretRows, engine_of

    return SecretRows(engine_of(store))


def check_keys(store: RunStore, keys: SecretKeys) -> int:
    """Refuse a key that cannot decrypt the stored secrets (another replica's); how many there are."""
    rows = _rows(store).rows()
    for row in rows:
        try:
            keys.decrypt(row.ciphertext)
        except InvalidToken:
            raise SecretKeyError(f"the store holds secrets that the key from {keys.source} cannot decrypt (secret "
                            f"{row.name!r}); every replica needs the same key: set {KEY_ENV} to the key the "
                            "secrets were written with (or copy that server's secret.key into this data dir)"
                            ) from None
    return len(rows)


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise UsageError(f"secret name {name[:60]!r}: use letters, digits and _ (not first: a digit), at most "
                         "200 characters; a step sees the secret as an environment variable of that name")


def put(store: RunStore, keys: SecretKeys, name: str, value: str) -> dict[str, Any]:
    """Create or replace ``name``; its description (never the value) and whether it is new."""
    _check_name(name)
    if not value:
        raise UsageError(f"secret {name}: the value is empty; an empty secret cannot be masked")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise UsageError(f"secret {name}: the value is over {MAX_VALUE_BYTES} bytes")
    created = _rows(store).put(name, keys.encrypt(value))
    described = describe(store, name)
    return {**described, "created": created}


def describe(store: RunStore, name: str) -> dict[str, Any]:
    rows = _rows(store).rows([name])
    if not rows:
        raise NotFoundError(f"no secret {name!r}; GET /api/v1/secrets lists them")
    return _view(rows[0])


def list_secrets(store: RunStore) -> list[dict[str, Any]]:
    """Names with their creation and update times, sorted by name."""
    return [_view(row) for row in _rows(store).rows()]


def delete(store: RunStore, name: str) -> None:
    if not _rows(store).delete(name):
        raise NotFoundError(f"no secret {name!r}; GET /api/v1/secrets lists them")


def resolve(store: RunStore, keys: SecretKeys, names: list[str]) -> dict[str, str]:
    """The values of ``names`` that exist (a missing one fails its job when the job is about to start)."""
    if not names:
        return {}
    values: dict[str, str] = {}
    for row in _rows(store).rows(sorted(set(names))):
        try:
            values[row.name] = keys.decrypt(row.ciphertext)
        except InvalidToken:  # written with another key: as good as missing, and said so in the server log
            import logging

            logging.getLogger("worldtree.secrets").error(
                "secret %s cannot be decrypted with the key from %s; set the same %s on every replica",
                row.name, keys.source, KEY_ENV)
    return values


def _view(row: Any) -> dict[str, Any]:
    return {"name": row.name, "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}


def check_server_key(store_url: str, data_dir: str) -> int:
    """Before a server starts: its key (made if absent) decrypts the stored secrets; how many there are."""
    from worldtree.store import open_store

    store = open_store(store_url)
    try:
        return check_keys(store, load_keys(data_dir))
    finally:
        store.close()
