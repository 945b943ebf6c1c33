"""Byte pipes between containers and files: compress and hash on the way to disk, decompress on the way back.

Data moves in 1 MiB chunks; nothing is held whole. A set file's name says how it is compressed: ``.zst``
(zstd, what backups write since set format 2), ``.gz`` (gzip, format 1 sets, still read), anything else as is.
zstd, zlib and hashlib release the GIL on large buffers, so several components pump in parallel on several cores.
"""

from __future__ import annotations

import contextlib
import gzip
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
from typing import IO, Protocol

import zstandard

from ..errors import Cancelled, ComponentFailed

CHUNK = 1 << 20
ZSTD = ".zst"
GZIP = ".gz"
# zstd level 1, measured against 2 and 3 on a 200 MB mysqldump (bench/RESULTS.md): the least CPU and, on dumps,
# the same size (~2.9x smaller); gzip level 1 took 5x the CPU for a 15% bigger file.
ZSTD_LEVEL = 1
# Single-threaded per stream, measured: zstd's worker threads (threads=2) gave no wall-time gain at level 1 (it
# compresses ~400 MB/s on one core, far above what mysqldump or tar produce) and cost 13 to 43 MiB of buffers per
# stream. Parallelism comes from the components pumping in parallel and each pump's read-ahead thread instead.
ZSTD_THREADS = 0
# Format 1 sets: gzip level 1 with a gzip header and trailer (they open with gunzip, zcat, tar -z).
GZIP_LEVEL = 1
_GZIP_WBITS = 31
_STDERR_TAIL = 4000


def codec_of(path: Path) -> str | None:
    """How a set file is compressed, by its name: ``zstd``, ``gzip``, or None (stored as the command wrote it)."""
    return {ZSTD: "zstd", GZIP: "gzip"}.get(path.suffix)


class _Packer(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def _packer(path: Path) -> _Packer:
    codec = codec_of(path)
    if codec == "zstd":
        # write_checksum: each frame carries its own checksum, so a damaged file fails loudly when decompressed.
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True).compressobj()
    if codec == "gzip":
        return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    raise ValueError(f"{path.name}: a compressed set file ends in {ZSTD} or {GZIP}")


@contextlib.contextmanager
def open_content(path: Path) -> Iterator[IO[bytes]]:
    """A set file's content, decompressed as its name says; read(n) never returns more than n bytes, so a file
    that decompresses 1000x (a volume of zeros) still moves in bounded chunks."""
    codec = codec_of(path)
    if codec == "zstd":
        with path.open("rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_size=CHUNK, read_across_frames=True)
            with reader:
                yield reader  # type: ignore[misc]
    elif codec == "gzip":
        with gzip.open(path, "rb") as reader:
            yield reader  # type: ignore[misc]
    else:
        with path.open("rb") as reader:
            yield reader


@dataclass(frozen=True)
class WrittenFile:
    name: str
    bytes: int  # on disk
    raw_bytes: int  # as the command produced them
    sha256: str


class Processes:
    """The child processes of one operation, so Ctrl-C or a failure elsewhere can stop them all.

    `mask` hides the stack's secrets in what their error output says (a tool may echo a password or a URL)."""

    def __init__(self, mask: Callable[[str], str] = lambda text: text) -> None:
        self.mask = mask
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
    """Copy a byte stream to `target`, compressed as its name says (or not), hashing what lands on disk; fsync."""
    digest = hashlib.sha256()
    packer = _packer(target) if compress else None
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
    """Feed a set file (decompressed as its name says) into a process's stdin, then close it. Decompression runs
    in the read-ahead thread, so it overlaps with the process reading the previous chunk."""
    if compressed and codec_of(path) is None:
        raise ValueError(f"{path.name}: a compressed set file ends in {ZSTD} or {GZIP}")
    fed = 0
    try:
        with open_content(path) as content:
            for data in read_ahead(content):
                if cancelled is not None and cancelled.is_set():
                    raise Cancelled("cancelled")
                sink.write(data)
                fed += len(data)
                on_progress(fed)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()
    return fed


def read_head(path: Path, size: int, *, compressed: bool = True) -> bytes:
    """The first bytes of a set file's content (e.g. the RDB header) without reading the whole file."""
    with open_content(path) as content:
        data = b""
        while len(data) < size and (chunk := content.read(size - len(data))):
            data += chunk
        return data


def stderr_file() -> IO[bytes]:
    return tempfile.TemporaryFile()


def tail_of(stream: IO[bytes], mask: Callable[[str], str] = lambda text: text) -> str:
    """The last meaningful line a failed command wrote to stderr (never its input, which may hold data), with the
    stack's secrets masked."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - _STDERR_TAIL))
    lines = [line.strip() for line in stream.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return mask(lines[-1]) if lines else "no error output"


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
            raise ComponentFailed(f"{what} exited {process.returncode}: {tail_of(err, processes.mask)}")
        return out
