"""The compiled-code cache: private, bounded, and verified before a library is loaded.

``to_c`` keeps its shared libraries in ``$CIRCUITGRAD_CACHE`` (default ``~/.cache/circuitgrad``)
as ``cg_<key>.so``, the key a hash of the source, compiler and flags. Loading a library runs
its code, so the contract is:

- The directory is created with mode 0700. It, its index and every library loaded from it must
  be owned by the current user and not writable by group or others (as ssh treats its keys);
  otherwise :class:`CacheError` names the path and how to fix it.
- A library is loaded only if ``index.json`` (written with it, under the same rules) records it
  and the SHA-256 of its bytes matches. The bytes hashed are the bytes loaded: the file is
  opened once, checked with ``fstat``, read from that descriptor, hashed, and those bytes are
  written to a fresh private file (a unique name, created exclusively in the checked directory,
  reached through the directory's descriptor) which is what ``dlopen`` maps; it is unlinked at
  once. Nothing swapped in at the path after the check can be loaded.
- The libraries' total size is kept under ``$CIRCUITGRAD_CACHE_MAX`` (bytes, or ``500M``,
  ``2G``, ``64K``: powers of 1024; default 500M) by evicting the least recently used, by the
  time of use the index records (not the file system's atime; a use within
  ``USE_RESOLUTION`` seconds of the recorded one is not rewritten, so repeated hits cost no write). The library being loaded is
  never evicted, so one library larger than the bound stays until the next one.
- Concurrent processes take ``fcntl`` locks on ``lock`` (exclusive to change the index, a
  library or evict); a library is compiled in a private temporary directory outside the lock,
  and its bytes and the index are written to temporary names and renamed into place, so a
  reader sees a whole file or none.
- Many libraries at once (``to_fused``'s, one per kernel) load inside :func:`batched`: one
  descriptor of the directory, one read of the index, one write of the uses at the end, for
  all of them; each library is still read once, hashed and compared with the index's record
  before it is loaded.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CacheError  # noqa: F401  (raised here; its home is errors.py)

DEFAULT_MAX = 500 * 2**20
INDEX, LOCK = "index.json", "lock"
STALE = 3600.0  # seconds: a build directory this old was left by an interrupted build
USE_RESOLUTION = 10.0  # seconds: a use this soon after the recorded one does not rewrite the index
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_loads = itertools.count()  # unique names for the private copies dlopen maps


def cache_dir() -> Path:
    """Where compiled circuits are kept: ``$CIRCUITGRAD_CACHE``, else ``~/.cache/circuitgrad``."""
    return Path(os.environ.get("CIRCUITGRAD_CACHE")
                or Path.home() / ".cache" / "circuitgrad")


def cache_max() -> int:
    """The size bound in bytes: ``$CIRCUITGRAD_CACHE_MAX`` (``123``, ``64K``, ``500M``, ``2G``).

    >>> os.environ["CIRCUITGRAD_CACHE_MAX"] = "1.5K"; cache_max()
    1536
    >>> del os.environ["CIRCUITGRAD_CACHE_MAX"]; cache_max() == DEFAULT_MAX
    True
    """
    text = os.environ.get("CIRCUITGRAD_CACHE_MAX", "").strip()
    if not text:
        return DEFAULT_MAX
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if not m:
        raise CacheError(f"$CIRCUITGRAD_CACHE_MAX={text!r} is not a size: write bytes or a "
                         "number with K, M, G or T (e.g. 500M)")
    return int(float(m[1]) * _UNITS[m[2].upper()])


def _check(path: Path, st: os.stat_result, what: str) -> None:
    """Refuse a file or directory not owned by the current user or writable by group/others."""
    if st.st_uid != os.geteuid():
        raise CacheError(f"to_c's cache: {what} {path} is owned by uid {st.st_uid}, not by you "
                         f"(uid {os.geteuid()}); nothing in it is loaded. Remove it, or set "
                         "$CIRCUITGRAD_CACHE to a directory of your own")
    if st.st_mode & 0o022:
        fix = f"chmod 700 {path}" if stat.S_ISDIR(st.st_mode) else f"rm {path}"
        raise CacheError(f"to_c's cache: {what} {path} is writable by group or others (mode "
                         f"{stat.S_IMODE(st.st_mode):o}); nothing in it is loaded. Fix: {fix}, "
                         "or set $CIRCUITGRAD_CACHE to a private directory")


def _open_dir(directory: Path, create: bool = True) -> int:
    """A descriptor of the checked cache directory (created 0700 where missing)."""
    if create:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.fstat(fd)
        _check(directory, st, "the directory")
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def _locked(dfd: int, exclusive: bool) -> Iterator[None]:
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read(dfd: int, directory: Path, name: str, what: str) -> bytes | None:
    """The bytes of ``name`` read through one checked descriptor, or None where it is missing."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:  # a symbolic link (ELOOP) or unreadable
        raise CacheError(f"to_c's cache: {what} {directory / name} cannot be opened as a plain "
                         f"file ({e.strerror}); remove it (circuitgrad cache clear)") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheError(f"to_c's cache: {what} {directory / name} is not a plain file; "
                             "remove it (circuitgrad cache clear)")
        _check(directory / name, st, what)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _read_index(dfd: int, directory: Path) -> dict[str, dict[str, Any]]:
    data = _read(dfd, directory, INDEX, "the index")
    if data is None:
        return {}
    try:
        index = json.loads(data)
        if not isinstance(index, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("sha256"), str)
                and isinstance(e.get("size"), int) and isinstance(e.get("used"), (int, float))
                for e in index.values()):
            raise ValueError
        return index
    except ValueError:
        raise CacheError(f"to_c's cache: the index {directory / INDEX} is not valid; clear the "
                         "cache (circuitgrad cache clear)") from None


def _write(dfd: int, name: str, data: bytes) -> None:
    """Write ``data`` to ``name`` atomically: a private temporary file, then a rename."""
    tmp = f".tmp_{os.getpid()}_{next(_loads)}_{name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)


def _evict(dfd: int, index: dict[str, dict[str, Any]], keep: str | set[str],
           bound: int) -> None:
    """Remove least recently used libraries until the total size is within ``bound``, never
    those named in ``keep`` (a name or a set of names)."""
    keep = {keep} if isinstance(keep, str) else keep
    total = sum(e["size"] for e in index.values())
    for name in sorted(index, key=lambda n: index[n]["used"]):
        if total <= bound:
            break
        if name not in keep:
            total -= index.pop(name)["size"]
            try:
                os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                pass


MEMORY_DIR = "/dev/shm"  # a memory file system (tmpfs) where the private copies are made


def _private_dir() -> tuple[int, Path, Path] | None:
    """This process's directory for the copies ``dlopen`` maps (its descriptor, the path
    through it, its path): made once (``mkdtemp`` in
    ``MEMORY_DIR``: 0700, a name no one else can take), checked as the cache directory is,
    held by its descriptor, removed at exit; None where there is none (no ``/dev/shm``).
    Creating a file there costs ~10 µs; in the cache's directory on a disk's file system
    0.1-2 ms (it waits for the journal after the libraries just written)."""
    pid = os.getpid()
    made = _private.get(pid)
    if made is None and pid not in _private:
        with _private_lock:  # (to_fused's compilers load from several threads)
            if pid in _private:
                return _private[pid]
            try:
                path = Path(tempfile.mkdtemp(prefix="cg_load_", dir=MEMORY_DIR))
                dfd = _open_dir(path, create=False)
                made = (dfd, _here(dfd, path), path)
                atexit.register(_remove_private_dir, pid)
            except (OSError, CacheError):
                pass
            _private[pid] = made
    return made


_private: dict[int, tuple[int, Path, Path] | None] = {}  # by process (a fork makes its own)
_private_lock = threading.Lock()


def _remove_private_dir(pid: int) -> None:
    made = _private.get(pid)
    if made is not None and os.getpid() == pid:  # (not a forked child's copy of the entry)
        _remove_dir(made)


def _remove_dir(made: tuple[int, Path, Path]) -> None:
    try:
        os.rmdir(made[2])
    except OSError:
        pass


def _dlopen(dfd: int, here: Path, data: bytes, key: str) -> ctypes.CDLL:
    """Load exactly ``data``: a fresh private file (unique name) in this process's private
    directory (:func:`_private_dir`), else in the directory ``dfd`` (whose path ``here``
    names it through ``/proc/self/fd`` where it can), then unlinked. (A copy stays in
    memory while it is mapped: where the memory file system is full, ``/dev/shm`` of a
    container is often 64 MB, the copy goes to the cache's directory.)"""
    name = f"load_{key}_{os.getpid()}_{next(_loads)}.so"  # unique: dlopen matches by name
    private = _private_dir()
    if private is not None:
        try:
            _copy(private[0], name, data)
        except OSError:  # (removed, or full: the cache's directory then)
            pass
        else:
            try:
                return ctypes.CDLL(str(private[1] / name))
            except OSError:  # (a memory file system mounted noexec, Docker's default /dev/shm:
                _private[os.getpid()] = None  # the cache's directory from now on)
            finally:
                os.unlink(name, dir_fd=private[0])
            _remove_dir(private)
    _copy(dfd, name, data)
    try:
        return ctypes.CDLL(str(here / name))
    finally:
        os.unlink(name, dir_fd=dfd)


def _copy(dfd: int, name: str, data: bytes) -> None:
    """``data`` written to a new file ``name`` (created exclusively, 0700) in ``dfd``; no
    file left where it fails."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700, dir_fd=dfd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        os.unlink(name, dir_fd=dfd)
        raise


def _here(dfd: int, directory: Path) -> Path:
    """The checked directory through its descriptor, where ``/proc`` has it."""
    return Path(f"/proc/self/fd/{dfd}") if os.path.isdir(f"/proc/self/fd/{dfd}") else directory


class _Batch:
    """The state :func:`batched` shares between the loads inside it (any thread): the checked
    directory's descriptor, the index as read once at the start, and the uses to record."""

    def __init__(self, directory: Path):
        self.directory, self.users = directory, 0
        self.dfd = _open_dir(directory)
        try:
            with _locked(self.dfd, exclusive=False):
                self.index = _read_index(self.dfd, directory)
        except BaseException:
            os.close(self.dfd)
            raise
        self.here = _here(self.dfd, directory)
        self.used: dict[str, str] = {}  # a library loaded -> the SHA-256 its use is for
        self.lock = threading.Lock()

    def load(self, name: str, key: str) -> ctypes.CDLL | None:
        """The library ``name`` if the index read at the start records it and its bytes hash
        to that record; None for the unbatched path (missing, or changed since: that path
        reads the index again under the lock, and builds or refuses)."""
        entry = self.index.get(name)
        if entry is None:
            return None
        data = _read(self.dfd, self.directory, name, "the library")  # (owner, mode: raises)
        if data is None or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            return None
        if time.time() - entry["used"] >= USE_RESOLUTION:
            with self.lock:
                self.used[name] = entry["sha256"]
        return _dlopen(self.dfd, self.here, data, key)

    def close(self) -> None:
        """The uses recorded in one write of the index (with the eviction they allow), then
        the descriptor closed."""
        try:
            if self.used:
                with _locked(self.dfd, exclusive=True):
                    index = _read_index(self.dfd, self.directory)
                    now = time.time()
                    for name, digest in self.used.items():  # (unless rebuilt since)
                        if name in index and index[name]["sha256"] == digest:
                            index[name]["used"] = now
                    _evict(self.dfd, index, set(self.used), cache_max())
                    _write(self.dfd, INDEX, json.dumps(index, indent=0, sort_keys=True).encode())
        finally:
            os.close(self.dfd)


_batches: dict[Path, _Batch] = {}  # the open batches, by directory
_batches_lock = threading.Lock()


def _join(directory: Path, start: bool) -> _Batch | None:
    """The batch open on ``directory`` (one more user: :func:`_leave` it), a new one where
    ``start``, else None."""
    with _batches_lock:
        batch = _batches.get(directory)
        if batch is None and start:
            batch = _batches[directory] = _Batch(directory)
        if batch is not None:
            batch.users += 1
        return batch


def _leave(batch: _Batch) -> None:
    with _batches_lock:
        batch.users -= 1
        last = batch.users == 0
        if last:
            del _batches[batch.directory]
    if last:  # (no load uses its descriptor now)
        batch.close()


@contextmanager
def batched() -> Iterator[None]:
    """Within it, :func:`load_library` calls (from any thread) that find their library share
    one descriptor of the cache directory and one read of the index (taken under the lock at
    the start), and the uses they record are written to the index once, when the last
    ``batched`` block open on that directory ends: ``to_fused``'s libraries (one per kernel)
    found in ~0.3 ms each, where each on its own opens, locks and reads the index, and
    rewrites it when its last use is older than ``USE_RESOLUTION`` (~5 ms a write here).
    Each library is still read once, checked, hashed and compared with the index's record
    before it is loaded; one missing, or changed since the start, takes the unbatched path.

        >>> with batched():
        ...     pass
    """
    batch = _join(cache_dir(), start=True)
    assert batch is not None
    try:
        yield
    finally:
        _leave(batch)


def load_library(key: str, build: Callable[[Path], None]) -> tuple[Path, ctypes.CDLL]:
    """The library ``cg_<key>.so`` from the cache, verified and loaded; built where missing.

    Args:
        key: the cache key (hex: a hash of the source, compiler and flags).
        build: writes a new library to the path it is given (in a private temporary directory).

    Returns:
        The library's path in the cache and the loaded library.

    Raises:
        CacheError: the directory, index or library is not the current user's, is writable by
            group or others, or the library's bytes are not those the index recorded.
    """
    directory = cache_dir()
    name = f"cg_{key}.so"
    batch = _join(directory, start=False) if _batches else None
    if batch is not None:  # (inside batched(): its index, read once)
        try:
            loaded = batch.load(name, key)
        finally:
            _leave(batch)
        if loaded is not None:
            return directory / name, loaded
    dfd = _open_dir(directory)
    try:
        with _locked(dfd, exclusive=True):
            index = _read_index(dfd, directory)
            data = _read(dfd, directory, name, "the library") if name in index else None
            if data is not None:
                if hashlib.sha256(data).hexdigest() != index[name]["sha256"]:
                    raise CacheError(f"to_c's cache: the library {directory / name} is not the "
                                     "one its index recorded (its SHA-256 differs); it is not "
                                     "loaded. Clear the cache: circuitgrad cache clear")
                now = time.time()  # the use, for least-recently-used eviction
                if now - index[name]["used"] >= USE_RESOLUTION:
                    index[name]["used"] = now
                    _evict(dfd, index, name, cache_max())
                    _write(dfd, INDEX, json.dumps(index, indent=0, sort_keys=True).encode())
        here = _here(dfd, directory)
        if data is None:  # not built, or not by this cache: build (outside the lock)
            # in a private temporary directory (mkdtemp: 0700) the compiler can reach by path
            with tempfile.TemporaryDirectory(prefix="cg_build_") as tmp:
                built = Path(tmp) / "circuit.so"
                build(built)
                data = built.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            with _locked(dfd, exclusive=True):
                _write(dfd, name, data)  # atomic; the last of racing builds
                index = _read_index(dfd, directory)
                index[name] = {"sha256": digest, "size": len(data), "used": time.time()}
                _evict(dfd, index, name, cache_max())
                _write(dfd, INDEX, json.dumps(index, indent=0, sort_keys=True).encode())
        return directory / name, _dlopen(dfd, here, data, key)
    finally:
        os.close(dfd)


def info() -> dict[str, Any]:
    """The cache's directory, bound, number of libraries and their total size (bytes).

    Raises:
        CacheError: as :func:`load_library`, where the directory exists and is not private.
    """
    directory = cache_dir()
    result = {"directory": directory, "max": cache_max(), "libraries": 0, "size": 0}
    if not directory.exists():
        return result
    dfd = _open_dir(directory, create=False)
    try:
        with _locked(dfd, exclusive=False):
            index = _read_index(dfd, directory)
    finally:
        os.close(dfd)
    result.update(libraries=len(index), size=sum(e["size"] for e in index.values()))
    return result


def clear() -> int:
    """Remove every library, the index and leftovers of interrupted builds (an hour old: a
    build under way is left to finish); the number of libraries removed. Files the cache did
    not write are left alone."""
    directory = cache_dir()
    if not directory.exists():
        return 0
    dfd = _open_dir(directory, create=False)
    removed = 0
    try:
        with _locked(dfd, exclusive=True):
            for entry in os.scandir(dfd):
                n = entry.name
                if re.fullmatch(r"cg_[0-9a-f]+\.so|load_.*\.so|\.tmp_.*", n) or n == INDEX:
                    os.unlink(n, dir_fd=dfd)
                    removed += n.startswith("cg_")
                elif (n.startswith("build_") and entry.is_dir(follow_symlinks=False)
                      and time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE):
                    shutil.rmtree(directory / n, ignore_errors=True)
    finally:
        os.close(dfd)
    return removed

