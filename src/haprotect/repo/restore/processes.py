"""Restoring with several processes, so that a restore uses every core.

Most of a restore's work runs outside Python's global lock (reading,
decrypting, decompressing, hashing, writing), but what is left (one tree
walk, a few steps per file and per chunk) is enough to keep one process
from using more than about one core. So a restore from a local repository
forks: each process restores the regular files of its own segments
(:class:`~haprotect.repo.restore.options.Share`) with its own threads, and the
first one, the primary, does the rest. Before forking, the primary makes
every directory (and removes the partial files an interrupted restore left
in those that existed), so that no two processes ever race to make one. The
processes publish their counts in a shared page, so progress covers all of
them. A process that fails sends its error to the primary, which raises it;
one that dies is an error too; if the primary fails, the others are killed,
and if it dies they die with it (``PR_SET_PDEATHSIG``), so nothing writes
into the target behind it. The files a killed process was writing stay
under their temporary names, which the next restore into the target
removes. A process that forked never returns into its
parent's code: it blocks SIGINT and SIGTERM until it is inside its own, and
leaves with ``os._exit`` (the repository lock, for one, stays the
primary's; see :mod:`haprotect.repo.process.forking`). The fork happens while
other threads run (the lock's heartbeat, and whatever threads an embedding
program has): the children use none of the locks those threads take, but
a caller whose threads hold C library locks (name service, say) at that
moment could hang a child, so such a caller should restore with
``processes=1``.

Only a repository in a local directory is restored this way: each process
opens the directory again, while a network store's connections cannot be
shared across a fork.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import selectors
import signal
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from haprotect.model.progress import Phase
from haprotect.model.snapshot import FileError, LostFile, LostRange, NodeType, RestoreStats
from haprotect.repo import errors as repo_errors
from haprotect.repo.blobs.blobreader import BlobReader
from haprotect.repo.errors import RestoreError
from haprotect.repo.format.tree import NodeStream, decode_node
from haprotect.repo.process.forking import fork_helper
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.restore.nodemeta import apply_metadata
from haprotect.repo.restore.options import RestoreOptions, Share
from haprotect.repo.restore.restorer import Dirs, Restorer, include_keys, selected
from haprotect.repo.restore.target import Target, components
from haprotect.storage.base import BlobStore
from haprotect.storage.local import LocalStore
from haprotect.storage.wrappers import StoreWrapper

MAX_PROCESSES = 4
_COUNTS = struct.Struct("<qq")
_POLL_S = 0.1

Nodes = Callable[[BlobReader], NodeStream]
"""A snapshot's tree, read through the given reader."""


def local_root(store: BlobStore) -> Path | None:
    """The directory of a local store, under any wrappers; None for other stores."""
    inner = store
    while isinstance(inner, StoreWrapper):
        inner = inner.inner
    return inner.root if isinstance(inner, LocalStore) else None


def process_count(options: RestoreOptions, store: BlobStore) -> int:
    """How many processes restore from ``store``: one unless it is local."""
    if not hasattr(os, "fork") or local_root(store) is None:
        return 1
    if options.processes:
        return max(1, options.processes)
    return max(1, min(MAX_PROCESSES, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class RestoreParts:
    """The calls and classes a restore uses beside its options: the production's
    unless given (a test watches or fails a step with its own)."""

    target: Callable[[Path], Target] = Target
    """Makes the restore's way into its target directory."""
    share: Callable[..., RestoreStats] | None = None
    """Runs one forked process's share: ``(job, reader, store root, share, team)``
    (None: :func:`restore_share`)."""


@dataclass(frozen=True, slots=True)
class _Job:
    """What every process of one restore does, but through its own reader."""

    snapshot_id: str
    nodes: Nodes
    target: Path
    includes: Sequence[str] | None
    options: RestoreOptions
    make_target: Callable[[Path], Target] = Target

    def run(
        self,
        reader: BlobReader,
        meter: ProgressMeter,
        share: Share | None = None,
        team: _Team | None = None,
        dirs: Dirs | None = None,
    ) -> RestoreStats:
        restorer = Restorer(
            reader,
            self.snapshot_id,
            self.options,
            meter,
            share=share,
            team=team,
            dirs=dirs,
            make_target=self.make_target,
        )
        nodes = self.nodes(reader)
        stats = restorer.run(nodes, self.target, self.includes)
        if nodes.gaps and (share is None or share.primary):
            gaps = tuple(FileError(g.after or "/", g.describe()) for g in nodes.gaps)
            stats = replace(stats, errors=stats.errors + gaps)
        return stats


def restore(
    reader: BlobReader,
    snapshot_id: str,
    nodes: Nodes,
    target: Path,
    includes: Sequence[str] | None,
    options: RestoreOptions,
    meter: ProgressMeter,
    parts: RestoreParts | None = None,
) -> RestoreStats:
    """Restore a snapshot (or the paths in ``includes``) into ``target``."""
    parts = parts or RestoreParts()
    make_target = parts.target
    work = parts.share or restore_share
    job = _Job(snapshot_id, nodes, target, includes, options, make_target)
    count = process_count(options, reader.store)
    if count == 1:
        return job.run(reader, meter)
    root = local_root(reader.store)
    assert root is not None
    dirs: Dirs = []
    team = _Team(count, options.segment)
    try:
        removed = make_dirs(nodes(reader), target, includes, snapshot_id, dirs, make_target)
        for index in range(1, count):
            team.fork(index, lambda share: work(job, reader, root, share, team))
    except BaseException:
        team.stop()
        finish_dirs(target, dirs, options, make_target)
        raise
    try:
        stats = job.run(reader, meter, Share(0, count, options.segment), team, dirs)
    finally:
        team.stop()
    return replace(stats, leftovers_removed=stats.leftovers_removed + removed)


def make_dirs(
    nodes: NodeStream,
    target: Path,
    includes: Sequence[str] | None,
    snapshot_id: str,
    made: Dirs,
    make_target: Callable[[Path], Target] = Target,
) -> int:
    """Make every directory of the tree that the restore will need (mode 0700 until the end).

    Adds each to ``made`` as it is made (so that a failure midway knows them);
    returns how many partial files of an earlier restore were removed.
    """
    wanted = include_keys(includes)
    dest = make_target(target)
    try:
        dest.tidy(())
        for record in nodes.records():
            if b'"type":"dir"' not in record:
                continue
            node = decode_node(record)
            if node.type is not NodeType.DIR:
                continue
            parts = components(node.path, snapshot_id)
            if wanted is None or selected(parts, wanted):
                dest.make_dir(parts, tidy=True)
                made.append((parts, node))
                dest.trim()
    finally:
        dest.close()
    return dest.leftovers_removed


def finish_dirs(
    target: Path,
    dirs: Dirs,
    options: RestoreOptions,
    make_target: Callable[[Path], Target] = Target,
) -> None:
    """Set the metadata of ``dirs``, deepest first, as far as it goes: for a restore that
    failed after they were made and before its restorer could (none will, then)."""
    owners = options.owners if options.owners is not None else os.geteuid() == 0
    dest = make_target(target)
    try:
        for parts, node in reversed(dirs):
            with contextlib.suppress(OSError, RestoreError):
                apply_metadata(dest.dir_fd(parts), node, owners=owners, xattrs=options.xattrs)
            dest.trim()
    finally:
        dest.close()


def restore_share(
    job: _Job, parent: BlobReader, root: Path, share: Share, team: _Team
) -> RestoreStats:
    """In a forked process: one share, read through a store of its own."""
    reader = BlobReader(LocalStore(root), parent.key, parent.index)
    return job.run(reader, ProgressMeter(Phase.RESTORE, None), share, team)


class _Child:
    __slots__ = ("buffer", "index", "pid", "pipe")

    def __init__(self, index: int, pid: int, pipe: int) -> None:
        self.index = index
        self.pid = pid
        self.pipe = pipe
        self.buffer = bytearray()


class _Team:
    """The processes of one restore (see :class:`~haprotect.repo.restore.restorer.Team`)."""

    def __init__(self, count: int, segment: int) -> None:
        self.count = count
        self.segment = segment
        self.index = 0
        # anonymous maps are shared with the processes forked after them
        self._counts = mmap.mmap(-1, _COUNTS.size * count)
        self._children: list[_Child] = []

    def publish(self, files: int, nbytes: int) -> None:
        _COUNTS.pack_into(self._counts, _COUNTS.size * self.index, files, nbytes)

    def totals(self) -> tuple[int, int]:
        files = nbytes = 0
        for f, b in _COUNTS.iter_unpack(self._counts):
            files += f
            nbytes += b
        return files, nbytes

    def fork(self, index: int, work: Callable[[Share], RestoreStats]) -> None:
        read_end, write_end = os.pipe()
        try:
            pid = fork_helper(
                lambda: _child_main(self, index, work, write_end), close_in_child=(read_end,)
            )
        except BaseException:
            os.close(read_end)
            os.close(write_end)
            raise
        os.close(write_end)
        self._children.append(_Child(index, pid, read_end))

    def join(self, meter: ProgressMeter) -> RestoreStats:
        """Wait for every other process; raise the first failure; their stats summed."""
        results: list[dict[str, Any]] = []
        with selectors.DefaultSelector() as selector:
            for child in self._children:
                selector.register(child.pipe, selectors.EVENT_READ, child)
            while selector.get_map():
                for key, _ in selector.select(_POLL_S):
                    child = key.data
                    data = os.read(child.pipe, 1 << 16)
                    if data:
                        child.buffer += data
                        continue
                    selector.unregister(child.pipe)
                    results.append(self._reap(child))
                files, nbytes = self.totals()
                meter.update(files, nbytes, None)
        return _sum(results)

    def _reap(self, child: _Child) -> dict[str, Any]:
        _, status = os.waitpid(child.pid, 0)
        self._children.remove(child)
        os.close(child.pipe)
        try:
            payload: dict[str, Any] = json.loads(child.buffer)
        except ValueError:
            raise RestoreError(
                f"restore process {child.index} (pid {child.pid}) died: {_describe(status)}",
                hint="the files of its share are missing or incomplete; restore again",
            ) from None
        if "error" in payload:
            raise _rebuild(payload)
        return payload

    def stop(self) -> None:
        """Kill and reap the processes still running (after a failure of the primary)."""
        for child in self._children:
            os.close(child.pipe)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
        self._children = []


def _child_main(team: _Team, index: int, work: Callable[[Share], RestoreStats], pipe: int) -> int:
    """Run one share in a forked process and send the outcome; return the exit code."""
    code = 1
    payload: dict[str, Any]
    try:
        team.index = index
        stats = work(Share(index, team.count, team.segment))
        payload = {
            "files": stats.files,
            "dirs": stats.dirs,
            "others": stats.others,
            "bytes": stats.bytes_written,
            "errors": [[e.path, e.message] for e in stats.errors],
            "lost": [asdict(f) for f in stats.lost],
            "leftovers": stats.leftovers_removed,
        }
        code = 0
    except BaseException as exc:
        payload = {
            "error": type(exc).__name__,
            "message": str(exc) or repr(exc),
            "hint": getattr(exc, "hint", None),
        }
    view = memoryview(json.dumps(payload).encode())
    while view:
        view = view[os.write(pipe, view) :]
    return code


def _sum(results: list[dict[str, Any]]) -> RestoreStats:
    errors = [FileError(str(p), str(m)) for r in results for p, m in r["errors"]]
    lost = [
        LostFile(f["path"], tuple(LostRange(**x) for x in f["ranges"]), f["kept_as"])
        for r in results
        for f in r["lost"]
    ]
    return RestoreStats(
        sum(int(r["files"]) for r in results),
        sum(int(r["dirs"]) for r in results),
        sum(int(r["others"]) for r in results),
        sum(int(r["bytes"]) for r in results),
        tuple(errors),
        tuple(lost),
        sum(int(r["leftovers"]) for r in results),
    )


def _rebuild(payload: dict[str, Any]) -> Exception:
    """The error a process sent, as the same class when it is one of the repository's."""
    name, message = str(payload["error"]), str(payload["message"])
    hint = payload.get("hint")
    cls = getattr(repo_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, repo_errors.RepositoryError):
        return cls(message, hint=str(hint) if hint else None)
    return RestoreError(f"a restore process failed: {name}: {message}")


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)} without a report"
