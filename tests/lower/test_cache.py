"""to_c's compiled-code cache: private, verified before a library is loaded, bounded, shared
safely between processes (circuitgrad/lower/cache.py)."""

import ctypes
import hashlib
import json
import multiprocessing
import os
import subprocess

import pytest

import circuitgrad as cg
from circuitgrad.cli import main
from circuitgrad.lower import cache
from circuitgrad.lower.cache import CacheError

MARKER_C = """
#include <stdio.h>
__attribute__((constructor)) static void planted(void)
{
    FILE *f = fopen("%s", "w");
    if (f) { fputs("ran", f); fclose(f); }
}
"""


@pytest.fixture
def cache_path(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("CIRCUITGRAD_CACHE", str(path))
    monkeypatch.delenv("CIRCUITGRAD_CACHE_MAX", raising=False)
    return path


@pytest.fixture
def planted(tmp_path):
    """A library whose constructor writes a marker file: (its bytes, the marker's path)."""
    marker = tmp_path / "marker"
    src = tmp_path / "planted.c"
    src.write_text(MARKER_C % marker)
    lib = tmp_path / "planted.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib.read_bytes(), marker


def index(path):
    return json.loads((path / "index.json").read_text())


def plant(library, data, recorded: bool):
    """Replace a cached library's bytes by ``data``; ``recorded``: the index records their hash
    (so that only ownership or mode can refuse them)."""
    library.write_bytes(data)
    if recorded:
        entries = index(library.parent)
        entries[library.name]["sha256"] = hashlib.sha256(data).hexdigest()
        (library.parent / "index.json").write_text(json.dumps(entries))


def test_the_marker_library_runs_when_loaded(planted, tmp_path):
    # the control: loading the planted library does write the marker
    data, marker = planted
    (tmp_path / "control.so").write_bytes(data)
    ctypes.CDLL(str(tmp_path / "control.so"))
    assert marker.read_text() == "ran"


def test_directory_is_created_private_and_the_index_records_the_hash(cache_path):
    f = cg.to_c(cg.parse("x * 2.5 + y"))
    assert float(f(x=2.0, y=1.0)) == 6.0
    assert (os.stat(cache_path).st_mode & 0o777) == 0o700
    entry = index(cache_path)[f.library.name]
    assert entry["sha256"] == hashlib.sha256(f.library.read_bytes()).hexdigest()
    assert entry["size"] == f.library.stat().st_size
    assert not list(cache_path.glob("load_*")) and not list(cache_path.glob("build_*"))
    assert float(cg.to_c(cg.parse("x * 2.5 + y"))(x=2.0, y=1.0)) == 6.0  # a hit


def test_a_library_with_another_hash_is_refused_and_never_loaded(cache_path, planted):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 3.25")).library
    plant(library, data, recorded=False)
    with pytest.raises(CacheError, match="SHA-256"):
        cg.to_c(cg.parse("x * 3.25"))
    assert not marker.exists()


@pytest.mark.parametrize("mode", [0o666, 0o720, 0o702])
def test_a_group_or_other_writable_library_is_refused(cache_path, planted, mode):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 4.75")).library
    plant(library, data, recorded=True)
    os.chmod(library, mode)
    with pytest.raises(CacheError, match=f"writable by group or others.*rm {library}"):
        cg.to_c(cg.parse("x * 4.75"))
    assert not marker.exists()


def test_a_writable_directory_or_index_is_refused(cache_path, planted):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 5.5")).library
    plant(library, data, recorded=True)
    os.chmod(cache_path / "index.json", 0o622)
    with pytest.raises(CacheError, match="index.*writable by group or others"):
        cg.to_c(cg.parse("x * 5.5"))
    os.chmod(cache_path / "index.json", 0o600)
    os.chmod(cache_path, 0o777)
    with pytest.raises(CacheError, match=f"chmod 700 {cache_path}"):
        cg.to_c(cg.parse("x * 5.5"))
    assert not marker.exists()
    os.chmod(cache_path, 0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root "
                    "(the mode and hash cases run everywhere)")
@pytest.mark.parametrize("what", ["library", "index", "directory"])
def test_a_file_of_another_owner_is_refused(cache_path, planted, what):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 6.125")).library
    plant(library, data, recorded=True)
    target = {"library": library, "index": cache_path / "index.json",
              "directory": cache_path}[what]
    os.chown(target, 12345, 12345)
    with pytest.raises(CacheError, match=f"{target} is owned by uid 12345, not by you"):
        cg.to_c(cg.parse("x * 6.125"))
    assert not marker.exists()


def test_a_library_the_index_does_not_record_is_rebuilt_not_loaded(cache_path, planted):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 7.5")).library
    (cache_path / "index.json").unlink()
    library.write_bytes(data)
    f = cg.to_c(cg.parse("x * 7.5"))
    assert float(f(x=2.0)) == 15.0 and not marker.exists()
    assert library.read_bytes() != data


def test_a_malformed_index_is_refused(cache_path):
    library = cg.to_c(cg.parse("x * 8.25")).library
    (cache_path / "index.json").write_text(json.dumps({library.name: {"sha256": 1}}))
    with pytest.raises(CacheError, match="index.*not valid.*cache clear"):
        cg.to_c(cg.parse("x * 8.25"))


def test_a_symbolic_link_is_refused(cache_path, planted, tmp_path):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 8.5")).library
    (tmp_path / "elsewhere.so").write_bytes(data)
    plant(library, data, recorded=True)
    library.unlink()
    library.symlink_to(tmp_path / "elsewhere.so")
    with pytest.raises(CacheError, match="plain file"):
        cg.to_c(cg.parse("x * 8.5"))
    assert not marker.exists()


def _build(barrier, queue):
    barrier.wait()  # all start at once, so that the builds overlap
    f = cg.to_c(cg.parse("sin(x) * y + 0.375"))
    queue.put((str(f.library), float(f(x=0.5, y=2.0))))


def test_concurrent_builds_give_one_valid_library(cache_path):
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_build, args=(barrier, queue)) for _ in range(4)]
    for p in processes:
        p.start()
    results = [queue.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len({path for path, _ in results}) == 1
    assert {value for _, value in results} == {float(cg.to_numpy(cg.parse(
        "sin(x) * y + 0.375"))(x=0.5, y=2.0))}
    entries = index(cache_path)
    assert list(entries) == [os.path.basename(results[0][0])]
    library = cache_path / next(iter(entries))
    assert entries[library.name]["sha256"] == hashlib.sha256(library.read_bytes()).hexdigest()
    assert sorted(p.name for p in cache_path.iterdir()) == sorted(["index.json", library.name,
                                                                   "lock"])


def test_eviction_keeps_the_bound_and_the_recently_used(cache_path, monkeypatch):
    monkeypatch.setattr(cache, "USE_RESOLUTION", 0.0)  # every use is recorded
    a = cg.to_c(cg.parse("x * 1.5")).library
    size = a.stat().st_size
    monkeypatch.setenv("CIRCUITGRAD_CACHE_MAX", str(int(size * 2.5)))
    b = cg.to_c(cg.parse("x * 2.5")).library
    cg.to_c(cg.parse("x * 1.5"))  # a is used again: b is now the least recently used
    c = cg.to_c(cg.parse("x * 3.5")).library
    assert a.exists() and c.exists() and not b.exists()
    assert set(index(cache_path)) == {a.name, c.name}
    for k in range(4):
        cg.to_c(cg.parse(f"x * {k + 10.5}"))
        assert sum(e["size"] for e in index(cache_path).values()) <= size * 2.5
        assert len(list(cache_path.glob("cg_*.so"))) == 2


@pytest.mark.parametrize("text, size", [("123", 123), ("64K", 65536), ("500M", 500 * 2**20),
                                        ("2g", 2 * 2**30), ("1.5KiB", 1536), ("", 500 * 2**20)])
def test_the_bound_is_read_from_the_environment(monkeypatch, text, size):
    monkeypatch.setenv("CIRCUITGRAD_CACHE_MAX", text)
    assert cache.cache_max() == size


def test_a_bad_bound_is_refused(monkeypatch):
    monkeypatch.setenv("CIRCUITGRAD_CACHE_MAX", "lots")
    with pytest.raises(CacheError, match="CIRCUITGRAD_CACHE_MAX"):
        cache.cache_max()


def test_cli_cache_info_and_clear(cache_path, capsys):
    library = cg.to_c(cg.parse("x * 9.25")).library
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"directory: {cache_path}" in out
    assert f"libraries: 1, {library.stat().st_size} bytes" in out and "500.0 MiB" in out
    (cache_path / "notes.txt").write_text("mine")
    assert main(["cache", "clear"]) == 0
    assert "removed 1 libraries" in capsys.readouterr().out
    assert sorted(p.name for p in cache_path.iterdir()) == ["lock", "notes.txt"]
    assert main(["cache", "info"]) == 0
    assert "libraries: 0, 0 bytes" in capsys.readouterr().out
    os.chmod(cache_path, 0o775)
    assert main(["cache", "clear"]) == 1
    assert "chmod 700" in capsys.readouterr().err
    assert (cache_path / "notes.txt").exists()


def _counting(monkeypatch, name):
    """Count the calls of ``cache.<name>`` (still made)."""
    calls = []
    original = getattr(cache, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(cache, name, counted)
    return calls


def test_a_batch_reads_the_index_once_and_writes_the_uses_once(cache_path, monkeypatch):
    texts = [f"x * {k + 0.5} + y" for k in range(5)]
    libraries = [cg.to_c(cg.parse(t)).library for t in texts]
    entries = index(cache_path)
    for e in entries.values():  # old uses: each hit records its use
        e["used"] -= 1000.0
    (cache_path / "index.json").write_text(json.dumps(entries))
    reads, writes = _counting(monkeypatch, "_read_index"), _counting(monkeypatch, "_write")
    with cache.batched():
        functions = [cg.to_c(cg.parse(t)) for t in texts]
        assert len(writes) == 0  # (the uses are written at the end)
    assert len(reads) == 2 and len(writes) == 1  # the start, and the one write at the end
    assert [f.library for f in functions] == libraries
    assert [float(f(x=2.0, y=1.0)) for f in functions] == [2 * (k + 0.5) + 1 for k in range(5)]
    after = index(cache_path)
    assert all(after[n]["used"] > entries[n]["used"] + 900 for n in after)
    assert not list(cache_path.glob("load_*")) and not list(cache_path.glob(".tmp_*"))
    reads.clear()  # one by one: the index read by each
    for t in texts:
        cg.to_c(cg.parse(t))
    assert len(reads) == len(texts)


def test_a_batch_builds_what_is_missing_and_refuses_what_changed(cache_path, planted):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 11.25")).library
    with cache.batched():
        plant(library, data, recorded=False)  # (after the batch read the index)
        with pytest.raises(CacheError, match="SHA-256"):
            cg.to_c(cg.parse("x * 11.25"))
        f = cg.to_c(cg.parse("x * 12.25"))  # missing: built, recorded
        assert float(f(x=2.0)) == 24.5
    assert not marker.exists()
    assert f.library.name in index(cache_path)
    library.unlink()
    with cache.batched():  # a library removed since the index was read: built again
        assert float(cg.to_c(cg.parse("x * 11.25"))(x=2.0)) == 22.5
    assert library.exists()


def test_a_batch_refuses_a_writable_library(cache_path, planted):
    data, marker = planted
    library = cg.to_c(cg.parse("x * 13.75")).library
    plant(library, data, recorded=True)
    os.chmod(library, 0o666)
    with cache.batched(), pytest.raises(CacheError, match="writable by group or others"):
        cg.to_c(cg.parse("x * 13.75"))
    assert not marker.exists()


def test_batches_nest_and_follow_the_directory(cache_path, tmp_path, monkeypatch):
    with cache.batched():
        with cache.batched():
            assert float(cg.to_c(cg.parse("x * 14.5"))(x=2.0)) == 29.0
        assert list(cache._batches) == [cache_path]
        monkeypatch.setenv("CIRCUITGRAD_CACHE", str(tmp_path / "other"))
        assert float(cg.to_c(cg.parse("x * 14.5"))(x=2.0)) == 29.0  # (its own cache)
        assert (tmp_path / "other" / "index.json").exists()
    assert not cache._batches


def test_the_private_copies_are_made_in_memory_and_removed(cache_path, monkeypatch):
    made = cache._private_dir()
    if not os.path.isdir(cache.MEMORY_DIR):
        assert made is None
    else:
        fd, here, path = made
        assert str(path).startswith(cache.MEMORY_DIR) and (os.stat(path).st_mode & 0o777) == 0o700
        assert float(cg.to_c(cg.parse("x * 15.5"))(x=2.0)) == 31.0
        assert not os.listdir(path)  # each copy unlinked once loaded
    # without the memory directory: the copy in the cache's own directory, as before
    monkeypatch.setattr(cache, "_private", {os.getpid(): None})
    assert float(cg.to_c(cg.parse("x * 16.5"))(x=2.0)) == 33.0
    assert not list(cache_path.glob("load_*"))


def test_a_noexec_memory_file_system_takes_the_caches_directory(cache_path, monkeypatch):
    """Docker mounts /dev/shm noexec: dlopen of the private copy fails (OSError), and the load
    and every later one take the cache's directory, not a raw OSError."""
    f = cg.to_c(cg.parse("x * 18.5"))
    private = cache._private_dir()
    if private is None:
        pytest.skip("no memory file system here: nothing to refuse")
    real, opened = ctypes.CDLL, []

    def noexec(path, *args, **kwargs):  # (what mapping a noexec mount's file raises)
        opened.append(str(path))
        if str(path).startswith(str(private[1])):
            raise OSError("failed to map segment from shared object")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cache.ctypes, "CDLL", noexec)
    monkeypatch.setattr(cache, "_private", dict(cache._private))
    removed = []
    monkeypatch.setattr(cache, "_remove_dir", removed.append)  # (the session's dir stays)
    again = cg.to_c(cg.parse("x * 18.5"))  # a hit: tried in memory, then the cache's directory
    assert float(again(x=2.0)) == 37.0 and again.library == f.library
    assert len(opened) == 2 and cache._private_dir() is None and removed == [private]
    assert float(cg.to_c(cg.parse("x * 19.5"))(x=2.0)) == 39.0  # (straight to the directory)
    assert len(opened) == 3
    assert not list(cache_path.glob("load_*"))


def test_a_full_memory_file_system_takes_the_caches_directory(cache_path, monkeypatch):
    f = cg.to_c(cg.parse("x * 17.5"))
    written = []
    real = cache._copy

    def full(dfd, name, data):  # the memory directory full (a container's 64 MB /dev/shm)
        written.append(dfd)
        if cache._private_dir() is not None and dfd == cache._private_dir()[0]:
            raise OSError(28, "No space left on device")
        return real(dfd, name, data)

    monkeypatch.setattr(cache, "_copy", full)
    again = cg.to_c(cg.parse("x * 17.5"))  # a hit, loaded through the cache's directory
    assert float(again(x=2.0)) == 35.0 and again.library == f.library
    assert len(written) == (2 if cache._private_dir() is not None else 1)  # (tried, then)
    assert not list(cache_path.glob("load_*"))
