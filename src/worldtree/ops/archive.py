"""``archive.download``: a file from a local path or an HTTP(S) URL, checked against a required
checksum, written to ``dest`` or extracted (tar, tar.gz, zip) into the directory ``dest``.

The controller fetches and checks the bytes (seed 001's resource abstraction: the host never
needs ``curl`` or network access, SSH hosts get the bytes over SFTP); a checksum mismatch is an
error before anything is written, so nothing is left behind. Extraction also happens on the
controller, member by member through the connection, refusing members that would land outside
``dest`` (absolute paths, ``..``, links pointing out) and device files; every path it creates
or replaces is recorded, so rollback puts back the previous bytes or removes what it created.

Idempotence: a plain download compares ``dest``'s sha256 with the checksum (no download when
it matches); an extraction keeps ``dest/.worldtree-archive`` holding the checksum it
extracted, and compares that.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from worldtree.ops.connection import Connection
from worldtree.ops.files import Before, _restore, _snapshot
from worldtree.ops.operation import Args, Operation, OpError, Planned, ValidMode

__all__ = ["MAX_ARCHIVE", "ArchiveDownload"]

#: downloads and extracted trees are held in memory on the controller: bigger ones are refused
MAX_ARCHIVE = 512 << 20
#: bytes an extraction may write in all (members' declared sizes; a compressed bomb is refused before it is read)
MAX_EXTRACTED = MAX_ARCHIVE
MARKER = ".worldtree-archive"
#: permission bits an extracted file keeps: setuid, setgid and sticky are dropped (as tarfile's ``data``
#: filter does), so an archive extracted as root cannot plant a setuid-root program
_MODE_BITS = 0o777
_CHECKSUM = re.compile(r"(sha256|sha512):([0-9a-fA-F]+)")


class ArchiveArgs(Args, ValidMode):
    src: str
    #: ``sha256:<hex>`` (or ``sha512:<hex>``): required, a download is checked before use
    checksum: str
    dest: str
    extract: bool = False
    mode: int = 0o644
    #: seconds for the whole download
    timeout: float = Field(default=300.0, gt=0)

    @field_validator("checksum")
    @classmethod
    def _checksum(cls, value: str) -> str:
        m = _CHECKSUM.fullmatch(value.strip())
        size = {"sha256": 64, "sha512": 128}
        if m is None or len(m.group(2)) != size[m.group(1)]:
            raise ValueError("write the checksum as sha256:<64 hex digits> (e.g. the output of sha256sum)")
        return f"{m.group(1)}:{m.group(2).lower()}"

    @field_validator("dest")
    @classmethod
    def _dest(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path; write the full path on the host")
        return posixpath.normpath(value)

    @model_validator(mode="after")
    def _src(self) -> ArchiveArgs:
        if not self.src:
            raise ValueError("`src` is a local path or an http(s):// URL")
        if "://" in self.src and not self.src.startswith(("http://", "https://")):
            raise ValueError(f"{self.src!r}: only http:// and https:// URLs are fetched")
        return self


@dataclass
class ArchiveState:
    #: the plain download's ``dest`` before, or the marker's content for an extraction
    before: Before | None = None
    marker: str | None = None


@dataclass
class Extracted:
    """What an extraction did: directories it created, and every file or link it wrote with what was there."""

    created_dirs: list[str] = field(default_factory=list)
    replaced: list[tuple[str, Before]] = field(default_factory=list)


def _digest(algorithm: str, data: bytes) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class ArchiveDownload(Operation):
    """``archive.download``: see the module docstring."""

    name = "archive.download"
    args_model = ArchiveArgs
    args: ArchiveArgs

    def writes(self) -> list[str]:
        return [self.args.dest]

    @property
    def _marker(self) -> str:
        return posixpath.join(self.args.dest, MARKER)

    async def precheck(self, conn: Connection) -> ArchiveState:
        if not self.args.extract:
            return ArchiveState(before=await _snapshot(conn, self.args.dest))
        st = await conn.stat(self._marker)
        marker = (await conn.read(self._marker)).decode("utf-8", "replace").strip() if st.kind == "file" else None
        return ArchiveState(marker=marker)

    def plan(self, state: ArchiveState) -> Planned:
        a = self.args
        short = a.checksum.split(":", 1)[0] + " " + a.checksum.split(":", 1)[1][:12]
        if a.extract:
            if state.marker == a.checksum:
                return Planned("none", f"{a.dest} holds the extracted {posixpath.basename(a.src)} ({short})")
            return Planned("change", f"download {a.src} ({short}) and extract it into {a.dest}")
        before = state.before
        assert before is not None
        if before.state.kind == "file" and before.data is not None:
            algorithm = a.checksum.split(":", 1)[0]
            if _digest(algorithm, before.data) == a.checksum:
                if before.state.mode == a.mode:
                    return Planned("none", f"{a.dest} has {short}")
                return Planned("change", f"chmod {a.dest} {before.state.mode:04o} -> {a.mode:04o}")
            return Planned("change", f"download {a.src} ({short}) over {a.dest}")
        if before.state.exists and before.state.kind != "file":
            raise OpError(f"{a.dest} is a {before.state.kind}, not a file; remove it first (file.absent)")
        return Planned("change", f"download {a.src} ({short}) to {a.dest}")

    async def fetch(self) -> bytes:
        """The checked bytes of ``src``; an error (nothing written anywhere) when they do not match."""
        a = self.args
        algorithm = a.checksum.split(":", 1)[0]
        if a.src.startswith(("http://", "https://")):
            data = await self._download(a.src)
        else:
            path = Path(a.src) if Path(a.src).is_absolute() else self.context.base_dir / a.src
            try:
                if path.stat().st_size > MAX_ARCHIVE:
                    raise OpError(f"{path} is larger than {MAX_ARCHIVE >> 20} MiB")
                data = path.read_bytes()
            except OSError as exc:
                raise OpError(f"cannot read src {path}: {exc.strerror or exc}") from None
        got = _digest(algorithm, data)
        if got != a.checksum:
            raise OpError(f"checksum mismatch for {a.src}: expected {a.checksum}, got {got}; nothing was written")
        return data

    async def _download(self, url: str) -> bytes:
        import httpx  # here: only a download pays for its import

        chunks = bytearray()

        async def get() -> None:
            async with (httpx.AsyncClient(follow_redirects=True, timeout=self.args.timeout) as client,
                        client.stream("GET", url) as response):
                if response.status_code != 200:
                    raise OpError(f"GET {url}: HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    chunks.extend(chunk)
                    if len(chunks) > MAX_ARCHIVE:
                        raise OpError(f"{url} is larger than {MAX_ARCHIVE >> 20} MiB")

        try:
            # `timeout` bounds the whole download too: httpx's applies to each read, so a server
            # dripping a byte now and then kept the task running for ever
            await asyncio.wait_for(get(), self.args.timeout)
        except TimeoutError:
            raise OpError(f"GET {url}: not downloaded within {self.args.timeout:g} s (`timeout`)") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError (`http://[::1/x`)
            raise OpError(f"GET {url}: {type(exc).__name__}: {exc}") from None
        return bytes(chunks)

    async def run(self, conn: Connection, state: ArchiveState) -> Any:
        a = self.args
        if not a.extract:
            before = state.before
            assert before is not None
            if before.data is not None and _digest(a.checksum.split(":", 1)[0], before.data) == a.checksum:
                await conn.chmod(a.dest, a.mode)
            else:
                await conn.write(a.dest, await self.fetch(), a.mode)
            return before
        data = await self.fetch()
        done = Extracted()
        try:
            await self._extract(conn, data, done)
            done.replaced.append((self._marker, await _snapshot(conn, self._marker)))
            await conn.write(self._marker, (a.checksum + "\n").encode(), 0o644)
        except BaseException:
            await self.rollback(conn, done)  # a half-extracted tree is put back as it was
            raise
        return done

    async def _mkdirs(self, conn: Connection, path: str, done: Extracted) -> None:
        missing = []
        while not (await conn.stat(path)).exists:
            missing.append(path)
            path = posixpath.dirname(path)
        for p in reversed(missing):
            await conn.mkdir(p, 0o755)
            done.created_dirs.append(p)

    def _inside(self, name: str) -> str:
        rel = posixpath.normpath(name) if name else "."
        if name.startswith("/") or rel == ".." or rel.startswith("../"):
            raise OpError(f"archive member {name!r} would land outside {self.args.dest}; refusing the archive")
        return self.args.dest if rel == "." else posixpath.join(self.args.dest, rel)

    async def _no_link_above(self, conn: Connection, path: str, checked: set[str]) -> None:
        """Refuse ``path`` when a directory between ``dest`` and it is a symbolic link: a link the
        archive made (``a -> .`` then ``a/b -> ..``) or one already there would carry the member
        outside ``dest`` although its name reads as inside. ``checked``: directories seen to be real."""
        parent = posixpath.dirname(path)
        above: list[str] = []
        while parent != self.args.dest and parent.startswith(self.args.dest + "/") and parent not in checked:
            above.append(parent)
            parent = posixpath.dirname(parent)
        for directory in reversed(above):
            st = await conn.stat(directory)
            if st.kind == "link":
                raise OpError(f"archive member {path!r} is under the symbolic link {directory}, which would carry "
                              f"it outside {self.args.dest}; refusing the archive")
            if st.kind == "dir":
                checked.add(directory)

    async def _put(self, conn: Connection, path: str, data: bytes, mode: int, done: Extracted) -> None:
        await self._mkdirs(conn, posixpath.dirname(path), done)
        before = await _snapshot(conn, path)
        if before.state.kind == "dir":
            raise OpError(f"{path} is a directory on the host; the archive has a file there")
        done.replaced.append((path, before))
        await conn.write(path, data, mode)

    async def _extract(self, conn: Connection, data: bytes, done: Extracted) -> None:
        import tarfile  # here: only an extraction pays for these imports
        import zipfile

        await self._mkdirs(conn, self.args.dest, done)
        checked: set[str] = set()
        budget = [MAX_EXTRACTED]

        def spend(name: str, size: int) -> None:
            budget[0] -= size
            if budget[0] < 0:
                raise OpError(f"archive member {name!r}: the archive unpacks to more than {MAX_EXTRACTED >> 20} MiB; "
                              "refusing it")

        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    path = self._inside(info.filename)
                    await self._no_link_above(conn, path, checked)
                    if info.is_dir():
                        await self._mkdirs(conn, path, done)
                    else:
                        spend(info.filename, info.file_size)  # zipfile reads no more than file_size
                        mode = (info.external_attr >> 16) & _MODE_BITS or 0o644
                        await self._put(conn, path, zf.read(info), mode, done)
            return
        try:
            tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed by the with below)
        except tarfile.TarError:
            raise OpError(f"{self.args.src} is neither a tar(.gz/.bz2/.xz) nor a zip archive") from None
        with tf:
            for member in tf:  # lazily: a bomb is refused at its first oversized member, not scanned whole
                path = self._inside(member.name)
                await self._no_link_above(conn, path, checked)
                if member.isdir():
                    await self._mkdirs(conn, path, done)
                elif member.isfile():
                    spend(member.name, member.size)  # tarfile reads exactly the header's size
                    fh = tf.extractfile(member)
                    assert fh is not None
                    await self._put(conn, path, fh.read(), member.mode & _MODE_BITS, done)
                elif member.issym():
                    target = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                    self._inside(posixpath.relpath(target, self.args.dest))
                    await self._mkdirs(conn, posixpath.dirname(path), done)
                    done.replaced.append((path, await _snapshot(conn, path)))
                    checked.difference_update({c for c in checked if c == path or c.startswith(path + "/")})
                    await conn.symlink(member.linkname, path)
                else:
                    raise OpError(f"archive member {member.name!r} is a {'hard link' if member.islnk() else 'device'}"
                                  "; only files, directories and symbolic links are extracted")

    async def rollback(self, conn: Connection, record: Any) -> None:
        if isinstance(record, Before):
            await _restore(conn, self.args.dest, record)
            return
        assert isinstance(record, Extracted)
        for path, before in reversed(record.replaced):
            await _restore(conn, path, before)
        for path in reversed(record.created_dirs):
            await conn.remove(path)
