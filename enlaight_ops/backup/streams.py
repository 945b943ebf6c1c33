"""Byte pipes between containers and files: compress and hash on the way to disk, decompress on the way back.

Data moves in 1 MiB chunks; nothing is held whole. zlib and hashlib release the GIL on large buffers, so several
components pump in parallel threads on several cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import Cancelled, ComponentFailed

CHUNK = 1 << 20
# Level 1: dumps are text that still shrinks ~4x, at several times the speed of level 6, so compression keeps
# up with mysqldump instead of slowing it down.
GZIP_LEVEL = 1
_GZIP_WBITS = 31  # zlib with a gzip header and trailer: the files open with gunzip, zcat, tar -z
_STDERR_TAIL = 4000


@dataclass(frozen=True)
class WrittenFile:
    name: str
    bytes: int  # on disk
    raw_bytes: int  # as the command produced them
    sha256: str


class Processes:
    """The child processes of one operation, so Ctrl-C or a failure elsewhere can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self.cancelled = threading.Event()

    def start(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self.cancelled.is_set():
                raise Cancelled("cancelled")
            process = subprocess.Popen(list(argv), **kwargs)
            self._running.add(process)
            return process

    def done(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(process)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            running = list(self._running)
        for process in running:
            if process.poll() is None:
                process.terminate()
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def read_ahead(source: IO[bytes], depth: int = 8) -> Iterator[bytes]:
    """Chunks of `source`, read by a thread of their own so the producer (mysqldump, pg_dump) never waits while
    the previous chunk is compressed and hashed: the two overlap, at most `depth` MiB apart."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)

    def reader() -> None:
        try:
            while chunk := source.read(CHUNK):
                chunks.put(chunk)
            chunks.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which raises it
            chunks.put(exc)

    threading.Thread(target=reader, name="read-ahead", daemon=True).start()
    while (item := chunks.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def pump_to_file(
    source: IO[bytes],
    target: Path,
    *,
    compress: bool,
    on_progress: Callable[[int, int], None] = lambda raw, written: None,
    cancelled: threading.Event | None = None,
    tap: Callable[[bytes], None] | None = None,
) -> WrittenFile:
    """Copy a byte stream to `target`, gzip-compressed or not, hashing what lands on disk; fsync at the end."""
    digest = hashlib.sha256()
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS) if compress else None
    raw = written = 0
    with target.open("wb") as out:
        for chunk in read_ahead(source):
            if cancelled is not None and cancelled.is_set():
                raise Cancelled("cancelled")
            raw += len(chunk)
            if tap is not None:
                tap(chunk)
            data = packer.compress(chunk) if packer else chunk
            if data:
                digest.update(data)
                out.write(data)
                written += len(data)
            on_progress(raw, written)
        if packer:
            data = packer.flush()
            digest.update(data)
            out.write(data)
            written += len(data)
        out.flush()
        os.fsync(out.fileno())
    on_progress(raw, written)
    return WrittenFile(target.name, written, raw, digest.hexdigest())


def pump_from_file(
    path: Path,
    sink: IO[bytes],
    *,
    compressed: bool,
    on_progress: Callable[[int], None] = lambda raw: None,
    cancelled: threading.Event | None = None,
) -> int:
    """Feed a set file (decompressed when it is gzip) into a process's stdin, then close it."""
    unpack = zlib.decompressobj(_GZIP_WBITS) if compressed else None
    fed = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                if cancelled is not None and cancelled.is_set():
                    raise Cancelled("cancelled")
                data = unpack.decompress(chunk) if unpack else chunk
                if data:
                    sink.write(data)
                    fed += len(data)
                    on_progress(fed)
        if unpack:
            data = unpack.flush()
            if data:
                sink.write(data)
                fed += len(data)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()
    return fed


def read_head(path: Path, size: int, *, compressed: bool) -> bytes:
    """The first bytes of a set file's content (e.g. the RDB header) without reading the whole file."""
    unpack = zlib.decompressobj(_GZIP_WBITS) if compressed else None
    with path.open("rb") as handle:
        data = b""
        while len(data) < size and (chunk := handle.read(65536)):
            data += unpack.decompress(chunk, size) if unpack else chunk
        return data[:size]


def stderr_file() -> IO[bytes]:
    return tempfile.TemporaryFile()


def tail_of(stream: IO[bytes]) -> str:
    """The last meaningful line a failed command wrote to stderr (never its input, which may hold data)."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - _STDERR_TAIL))
    lines = [line.strip() for line in stream.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"


def run_bytes(processes: Processes, argv: Sequence[str], what: str, stdin: bytes | None = None) -> bytes:
    """Run a short command to completion (queries, small scripts) and return its stdout."""
    with stderr_file() as err:
        process = processes.start(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            out, _ = process.communicate(stdin)
        finally:
            processes.done(process)
        if processes.cancelled.is_set():
            raise Cancelled("cancelled")
        if process.returncode != 0:
            raise ComponentFailed(f"{what} exited {process.returncode}: {tail_of(err)}")
        return out
