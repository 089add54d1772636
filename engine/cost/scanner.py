"""Scan orchestration: list files, diff them against the ledger, parse what changed (in a
process pool on a cold scan), fold the results in, save the cache.
"""
from __future__ import annotations

import itertools
import os
import sys
from array import array
from datetime import date, datetime, time as dtime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import msgspec

from . import claude as claude_mod
from . import codex as codex_mod
from .jsonl import file_signature, key_hash
from .ledger import (CacheInvalid, Ledger, RawRows, _vec_add, aggregate_claude, aggregate_codex, codex_row_keys,
                     index_files)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .jsonl import Row

    #: a parse task: (kind, path, offset, parser state or None, zone, forks resolved)
    Task = tuple[str, str, int, dict[str, Any] | None, tzinfo, bool]
    #: a parse result: (kind, path, result dict, None) or (kind, path, None, ("fork"|"oserror", ...))
    Result = tuple[str, str, Any, tuple[Any, ...] | None]

Progress = Callable[[int, int], None]

POOL_MIN_BYTES = 8 << 20      # below this a pool costs more than it saves
BATCH_BYTES = 2 << 20         # work unit of the forked parse (see _run_forked)
BATCH_FILES = 32
MAX_BATCHES = 8192           # (and at most a pipe's capacity / 8)
#: a warm scan of both kinds forks one process for the Claude logs (see _scan_split) once the
#: Claude cache index is this large (some hundreds of files): below, a fork costs more than it saves
SPLIT_MIN_INDEX_BYTES = 64 << 10


def tz_key(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or repr(tz)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- worker side

def _finish_full(kind: str, path: str, res: dict[str, Any]) -> dict[str, Any]:
    """Per-file aggregates, key hashes, day span and signature of a whole-file parse (worker side)."""
    if kind == "claude":
        rows = res["rows"]
        res["agg"], res["days"] = aggregate_claude(itertools.chain(rows.values(), res["unkeyed"]))
        res["keys"] = array("q", [key_hash(k) for k in rows])  # (an array pickles as one bytes copy)
        # rows travel (and land in the cache) as JSON bytes: far cheaper than pickled lists
        res["rows"] = RawRows(msgspec.json.encode({"rows": rows, "unkeyed": res.pop("unkeyed")}))
    else:
        rows = res["rows"]
        res["agg"], res["days"] = aggregate_codex(rows)
        res["keys"] = array("q", _codex_keys(res["state"], path, rows))
        res["rows"] = RawRows(msgspec.json.encode(rows))
    if not res.get("sig"):
        res["sig"] = file_signature(path, res["offset"])
    return res


def _parse_one(task: Task) -> Result:
    kind, path, offset, state, tz, forks_resolved = task
    try:
        if kind == "claude":
            res = claude_mod.parse_claude_file(path, offset, tz)
        else:
            res = codex_mod.parse_codex_file(path, offset, tz, state, forks_resolved)
        return kind, path, (_finish_full(kind, path, res) if offset == 0 else res), None
    except codex_mod.NeedsFork as fork:
        return kind, path, None, ("fork", fork.parent, fork.fork_ts, fork.sid)
    except OSError as exc:
        return kind, path, None, ("oserror", str(exc))


def can_fork() -> bool:
    """Whether this process may fork workers: POSIX, and no other Python thread running (a host
    app's thread could hold a lock that the forked copy would then wait for forever)."""
    if not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")  # (not imported: no Python threads)
    return threading is None or threading.active_count() <= 1


def _forks(tasks: list[Task], total: int, workers: int) -> bool:
    """Whether parsing ``tasks`` (``total`` bytes) is worth forking workers."""
    return workers > 1 and len(tasks) > 1 and total >= POOL_MIN_BYTES and can_fork()


def _run_tasks(tasks: list[Task], sizes: dict[str, int], progress: Progress | None,
               workers: int) -> list[Result]:
    total = sum(sizes[t[1]] - t[2] for t in tasks)
    if progress:
        progress(0, total)
    if _forks(tasks, total, workers):
        return _run_forked(tasks, sizes, progress, workers, total)[0]
    results: list[Result] = []
    done = 0
    for t in tasks:
        results.append(_parse_one(t))
        if progress:
            done += sizes[t[1]] - t[2]
            progress(done, total)
    return results


class FoldedLedger:
    """What a worker process sends back of a ledger it folded and saved: its totals and count
    of skipped lines (all :func:`~engine.cost.scan_cost` reads of a ledger)."""

    def __init__(self, totals: dict[str, list[Any]], skipped: int):
        self._totals, self._skipped = totals, skipped

    def totals(self) -> dict[str, list[Any]]:
        return self._totals

    def skipped_lines(self) -> int:
        return self._skipped


class _Handoff:
    """A kind whose results the first worker process folds into its ledger and saves, while this
    process folds the other kinds: ``plan`` as made before the fork, ``tz`` for ``_fold``."""

    def __init__(self, kind: str, plan: _Plan, tz: tzinfo):
        self.kind, self.plan, self.tz = kind, plan, tz


_unreaped: list[int] = []   # ended worker processes not collected yet (see _reap)

#: set to a list by a caller whose process ends right after the scan without freeing anything
#: (the ``engine`` command, see engine.cli.console): the scan's large intermediate structures are
#: put there instead of being freed object by object (~5 ms on a large history)
graveyard: list[Any] | None = None


def _reap(pid: int) -> None:
    """Collect a worker that has sent its last message, without waiting for the OS to finish
    tearing it down (a few milliseconds for a worker that held a large heap): if it has not
    quite ended yet, a later call collects it (this process's exit, at the latest, hands it to
    init)."""
    _unreaped.append(pid)
    _collect()


def _collect() -> None:
    for p in list(_unreaped):
        try:
            done = os.waitpid(p, os.WNOHANG)[0]
        except ChildProcessError:
            done = p
        if done:
            _unreaped.remove(p)


def _fork_worker(work: Callable[[int], None]) -> tuple[int, int]:
    """Fork a process that runs ``work(w)`` -- ``w`` the write end of a pipe to this process --
    and ends (at once, with status 1 and nothing more sent if ``work`` raises: the reader sees
    the pipe end).  Returns its pid and the pipe's read end; collect it with :func:`_reap`."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            work(w)
        except BaseException:  # noqa: BLE001 - the reader sees the pipe end
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _big_pipe(fcntl: Any) -> tuple[int, int]:
    """A pipe for results (megabytes): as large a buffer as the system allows unprivileged (1 MiB
    on Linux), so a transfer takes a few writes and context switches, not one per 64 KiB."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):
        pass
    return r, w


def _send(fd: int, obj: object) -> None:
    import pickle

    _send_bytes(fd, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _recv(fd: int) -> Any:
    import pickle

    return pickle.loads(_recv_bytes(fd))


def _send_bytes(fd: int, blob: bytes) -> None:
    data = memoryview(len(blob).to_bytes(8, "little") + blob)  # length-prefixed: no EOF needed
    while data:
        data = data[os.write(fd, data):]


def _recv_bytes(fd: int) -> bytes:
    def exactly(n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError("worker process died")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    return exactly(int.from_bytes(exactly(8), "little"))


def _run_forked(tasks: list[Task], sizes: dict[str, int], progress: Progress | None, workers: int,
                total: int, handoff: _Handoff | None = None) -> tuple[list[Result], Callable[[], Any] | None]:
    """Parse ``tasks`` in this process and ``workers - 1`` forked children.

    Tasks are grouped into batches of about ``BATCH_BYTES``, largest files first; every process
    claims the next batch from a shared pipe of batch numbers until none are left, so all
    cores stay busy to the end whatever the per-byte cost of each file.  The children inherit
    the task list through ``fork`` and send their results back once, pickled, when done; the
    parent's own results are never pickled.  (Cheaper than a ``multiprocessing.Pool``: no
    handler threads and one message per child instead of two per batch.)  Every message is a
    length-prefixed pickle (:func:`_send`, :func:`_recv`).

    With a ``handoff``, its kind's batches and the others' sit in two queues: the first child
    starts on the hand-off kind, this process on the others, both then help with the rest.  At
    the end the first child sends back only the other kinds' results, receives the hand-off
    kind's results of every other process, folds them into that kind's ledger and saves it,
    while this process folds the other kinds.  Returns the results of the kinds left to fold
    here and, with a handoff, a function that waits for the first child's :class:`FoldedLedger`.
    """
    import fcntl  # (POSIX only, like fork itself; not imported where it cannot be used)
    import signal

    # the work queues: one 4-byte batch number per batch (a pipe read of 4 bytes is atomic, so
    # each number is taken by exactly one process), all written up front, then closed for
    # writing so that they end in EOF; so there are never more batches than a pipe can hold
    q_r, q_w = os.pipe()
    try:
        pipe_size = fcntl.fcntl(q_w, fcntl.F_GETPIPE_SZ)
    except (AttributeError, OSError):
        pipe_size = 4096
    max_batches = max(1, min(MAX_BATCHES, pipe_size // 4) // 2)
    batch_bytes = max(BATCH_BYTES, total // max_batches + 1)
    batch_files = max(BATCH_FILES, len(tasks) // max_batches + 1)
    batches: list[tuple[list[Task], int]] = []

    def fill(group: list[Task], w: int) -> None:
        cur: list[Task] = []
        cur_bytes = 0
        first = len(batches)
        for t in sorted(group, key=lambda t: sizes[t[1]] - t[2], reverse=True):
            cur.append(t)
            cur_bytes += sizes[t[1]] - t[2]
            if cur_bytes >= batch_bytes or len(cur) >= batch_files:
                batches.append((cur, cur_bytes))
                cur, cur_bytes = [], 0
        if cur:
            batches.append((cur, cur_bytes))
        queue = memoryview(b"".join(i.to_bytes(4, "little") for i in range(first, len(batches))))
        while queue:
            queue = queue[os.write(w, queue):]
        os.close(w)

    if handoff is None:
        fill(tasks, q_w)
        queues = [q_r]
    else:
        h_r, h_w = os.pipe()  # the hand-off kind's batches
        fill([t for t in tasks if t[0] != handoff.kind], q_w)
        fill([t for t in tasks if t[0] == handoff.kind], h_w)
        queues = [q_r, h_r]
    nproc = min(workers, len(batches))

    def work(order: list[int], on_batch: Callable[[int], None] | None = None) -> list[Result]:
        out: list[Result] = []
        for q in order:
            while True:
                tok = os.read(q, 4)
                if len(tok) < 4:
                    break
                batch, nbytes = batches[int.from_bytes(tok, "little")]
                out.extend(_parse_one(t) for t in batch)
                if on_batch is not None:
                    on_batch(nbytes)
        return out

    children: list[tuple[int, int]] = []
    folder: tuple[int, int, int] | None = None   # the first child's pid, its pipe to us, ours to it
    results: list[Result] = []
    try:
        for n in range(nproc - 1):
            r, w = _big_pipe(fcntl)
            back_r, back_w = _big_pipe(fcntl) if handoff is not None and n == 0 else (-1, -1)
            pid = os.fork()
            if pid == 0:  # child: parse claimed batches, send back, exit
                code = 0
                try:
                    os.close(r)
                    out = work(queues[::-1])
                    if back_r < 0:
                        _send(w, ("ok", out))
                    else:  # the hand-off worker
                        assert handoff is not None
                        os.close(back_w)
                        _send(w, ("ok", [x for x in out if x[0] != handoff.kind]))
                        mine = [x for x in out if x[0] == handoff.kind] + _recv(back_r)
                        try:
                            led = _fold(handoff.plan, mine, handoff.tz)
                            _send(w, ("folded", led.totals(), led.skipped_lines()))
                        except BaseException as exc:  # noqa: BLE001 - reported to the parent
                            _send(w, ("error", f"{type(exc).__name__}: {exc}"))
                        else:
                            led.sweep()  # (the parent has what it needs: off its path)
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    code = 1
                    try:
                        _send(w, ("error", f"{type(exc).__name__}: {exc}"))
                    except BaseException:  # noqa: BLE001
                        pass
                finally:
                    os._exit(code)
            os.close(w)
            if back_r >= 0:
                os.close(back_r)
                folder = (pid, r, back_w)
            else:
                children.append((pid, r))
        mine_bytes = 0

        def on_batch(nbytes: int) -> None:
            nonlocal mine_bytes
            if progress:  # an estimate: the other processes are assumed to keep pace
                mine_bytes += nbytes
                progress(min(mine_bytes * nproc, total), total)

        results = work(queues, on_batch)
    except BaseException:
        for pid in [c[0] for c in children] + ([folder[0]] if folder else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if folder is not None:
            os.close(folder[1])
            os.close(folder[2])
            os.waitpid(folder[0], 0)
            folder = None
        raise
    finally:
        for q in queues:
            os.close(q)
        failures = []
        for pid, r in children:
            try:
                status, payload = _recv(r)
            except Exception:  # noqa: BLE001 - child died before sending its results
                status, payload = "error", "worker process died"
            os.close(r)
            _reap(pid)
            if status == "ok":
                results.extend(payload)
            else:
                failures.append(payload)
    finish: Callable[[], Any] | None = None
    if folder is not None:
        assert handoff is not None
        pid, r, back_w = folder
        try:
            status, payload = _recv(r)
            if status != "ok":
                raise RuntimeError(payload)
            results.extend(payload)
            _send(back_w, [x for x in results if x[0] == handoff.kind])
            results = [x for x in results if x[0] != handoff.kind]
        except BaseException as exc:
            os.close(back_w)
            os.close(r)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            if isinstance(exc, Exception):
                failures.append(f"{type(exc).__name__}: {exc}")
            else:
                raise
        else:
            os.close(back_w)

            def finish() -> Any:
                try:
                    status, *rest = _recv(r)
                finally:
                    os.close(r)
                    _reap(pid)
                if status != "folded":
                    raise RuntimeError(f"hand-off worker failed: {rest[0] if rest else status}")
                return FoldedLedger(rest[0], rest[1])
    if failures:
        raise RuntimeError(f"parse worker failed: {failures[0]}")
    if progress:
        progress(total, total)
    return results, finish


def sweep_in_background(ledgers: Iterable[Any]) -> Callable[[], None]:
    """Delete the cache files the ledgers' saves replaced (:meth:`Ledger.sweep`) in a thread,
    while the caller builds its report: unlinking a synced file costs ~0.5-1 ms on this ext4.
    Returns the function that waits for it (call it before returning to the caller's caller)."""
    todo = [led for led in ledgers if isinstance(led, Ledger) and led.needs_sweep]
    if not todo:
        return lambda: None
    import _thread  # (the low-level module: no import cost, and nothing else needs threading)

    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            for led in todo:
                led.sweep()
        except BaseException:  # noqa: BLE001 - the files are removed by a later save then
            pass
        finally:
            done.release()

    try:
        _thread.start_new_thread(run, ())
    except RuntimeError:  # no threads here: sweep now
        run()

    def wait() -> None:
        done.acquire()
        done.release()

    return wait


# --------------------------------------------------------------------------- listing

def _day_start_epoch(day: str, tz: tzinfo) -> float:
    return datetime.combine(date.fromisoformat(day), dtime(0), tzinfo=tz).timestamp()


class _Stat:
    """What the scan reads of a log's ``stat`` (as listed by another process)."""

    __slots__ = ("st_size", "st_mtime_ns", "st_ino", "st_dev")

    def __init__(self, size: int, mtime_ns: int, ino: int, dev: int):
        self.st_size, self.st_mtime_ns, self.st_ino, self.st_dev = size, mtime_ns, ino, dev


#: a cold scan of both kinds lists the Claude logs in a forked process (while this one lists the
#: Codex logs) when the Claude roots hold at least this many projects
LISTER_MIN_PROJECTS = 6


def _claude_lister(home: Path, env: Mapping[str, str]) -> Callable[[], dict[str, Any] | None] | None:
    """Start listing the Claude logs in a forked process; returns the function that collects the
    listing (``None`` if the process failed: list here then), or ``None`` when not worth a fork.
    Most of a listing is ``stat`` calls, which do not get faster in one process."""
    roots = claude_mod.claude_roots(home, env)
    projects = 0
    for root in roots:
        try:
            projects += len(os.listdir(root))
        except OSError:
            pass
    if projects < LISTER_MIN_PROJECTS:
        return None
    def listing(w: int) -> None:
        found = claude_mod.list_claude_files(roots)
        _send_bytes(w, msgspec.msgpack.encode([(p, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
                                               for p, st in found.items()]))

    pid, r = _fork_worker(listing)
    got: list[dict[str, Any] | None] = []

    def collect() -> dict[str, Any] | None:
        if not got:
            try:
                got.append({p: _Stat(size, mtime, ino, dev)
                            for p, size, mtime, ino, dev in msgspec.msgpack.decode(_recv_bytes(r))})
            except Exception:  # noqa: BLE001 - it died: list here
                got.append(None)
            finally:
                os.close(r)
                _reap(pid)
        return got[0]

    return collect


def _listing(kind: str, led: Ledger, home: Path, env: Mapping[str, str], tz: tzinfo,
             scan_since: str, scan_until: str, refresh: bool,
             listed: Callable[[], dict[str, Any] | None] | None = None) -> tuple[dict[str, Any], list[Path]]:
    if kind == "claude":
        roots = claude_mod.claude_roots(home, env)
        found = listed() if listed is not None else None
        return (claude_mod.list_claude_files(roots) if found is None else found), roots
    roots = codex_mod.codex_roots(home, env)
    cold = refresh or not led.stat
    found = codex_mod.list_codex_files(roots, scan_since, scan_until,
                                       lookback_since=_day_start_epoch(scan_since, tz) if cold else None,
                                       full=refresh)
    for path, st_entry in led.stat.items():
        first, last = st_entry[3], st_entry[4]
        if path in found or first is None or last < scan_since or first > scan_until:
            continue
        try:
            found[path] = os.stat(path)
        except OSError:
            pass
    # one file reachable through two paths (hard link / copy by link) counts once: the path of the
    # first root, then the smallest (the order of the listing itself does not matter otherwise)
    if len({(st.st_dev, st.st_ino) for st in found.values()}) == len(found):
        return found, roots
    root_strs = tuple(str(r) + os.sep for r in roots)

    def order(p: str) -> tuple[int, str]:
        for i, r in enumerate(root_strs):
            if p.startswith(r):
                return (i, p)
        return (len(root_strs), p)

    seen: set[tuple[int, int]] = set()
    out: dict[str, os.stat_result] = {}
    for p in sorted(found, key=order):
        st = found[p]
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            continue
        seen.add(ident)
        out[p] = st
    return out, roots


# --------------------------------------------------------------------------- folding results in

def _meta(st: os.stat_result, path: str, res: dict[str, Any], agg: dict[str, list[Any]],
          days: list[str] | None) -> dict[str, Any]:
    off = res["offset"]
    return {"size": st.st_size, "mtime": st.st_mtime_ns, "ino": st.st_ino, "dev": st.st_dev, "offset": off,
            "sig": res.get("sig") or file_signature(path, off), "agg": agg, "days": days,
            "skipped": res["skipped"], "tail_bad": res["tail_bad"]}


def _days_of(days_iter: Iterable[str]) -> list[str] | None:
    ds = list(days_iter)
    return [min(ds), max(ds)] if ds else None


def _apply_claude(led: Ledger, path: str, st: os.stat_result, res: dict[str, Any], incremental: bool) -> None:
    if incremental:
        old = led.claude_rows(path)
        rows = dict(old["rows"])
        for k, row in res["rows"].items():
            rows.pop(k, None)
            rows[k] = row
        unkeyed = list(old["unkeyed"]) + res["unkeyed"]
        res = dict(res, skipped=res["skipped"] + led.meta(path).get("skipped", 0))  # type: ignore[union-attr]
        agg, days = aggregate_claude(itertools.chain(rows.values(), unkeyed))
        meta = _meta(st, path, res, agg, days)
        led.put(path, meta, {"rows": rows, "unkeyed": unkeyed}, [key_hash(k) for k in rows])
    else:
        meta = _meta(st, path, res, res["agg"], res["days"])
        led.put(path, meta, res["rows"], res["keys"])


def _codex_keys(meta_state: dict[str, Any], file: str | os.stat_result, rows: list[Row]) -> list[int]:
    """The rows' keys: they name the session, or -- a file without a session id -- the file (its
    device and inode, from ``file``: a stat result, or a path to stat)."""
    sid = meta_state.get("sid")
    if sid:
        return codex_row_keys(f"session:{sid}", rows)
    st = os.stat(file) if isinstance(file, str) else file
    return codex_row_keys(f"file:{st.st_dev}:{st.st_ino}", rows)


def _apply_codex(led: Ledger, path: str, st: os.stat_result, res: dict[str, Any], incremental: bool) -> None:
    rows = res["rows"]
    if incremental:
        old: dict[str, Any] = led.meta(path)  # type: ignore[assignment]  # (incremental: in the ledger)
        agg = {k: list(v) for k, v in old["agg"].items()}
        for k, v in aggregate_codex(rows)[0].items():
            _vec_add(agg.setdefault(k, [0, 0, 0, 0, 0.0, 0]), v)
        days = [r[2] for r in rows] + (old["days"] or [])
        res = dict(res, skipped=res["skipped"] + old.get("skipped", 0))
        meta = _meta(st, path, res, agg, _days_of(days))
        meta["state"] = res["state"]
        led.extend_codex(path, meta, rows, _codex_keys(res["state"], st, rows))
    else:
        meta = _meta(st, path, res, res["agg"], res["days"])
        meta["state"] = res["state"]
        led.put(path, meta, rows, res["keys"])


def _resolve_forks(pending: list[tuple[str, str, str | None, str | None]], led: Ledger, roots: list[Path],
                   tz: tzinfo, listing: dict[str, os.stat_result]) -> list[Task]:
    """Parse forked Codex sessions once their parent's totals at the fork time are known."""
    sid_paths = {m["state"]["sid"]: p for p, m in led.files.items() if (m.get("state") or {}).get("sid")}
    walked = False
    out: list[Task] = []
    for path, parent, fork_ts, _sid in pending:
        ppath = sid_paths.get(parent)
        if ppath is None and not walked:
            walked = True
            every: dict[str, os.stat_result] = {}
            for r in roots:
                codex_mod._walk(str(r), every, None, skip_years=False)
            for p in sorted(every):
                sid = codex_mod.session_id_of(p)
                if sid and sid not in sid_paths:
                    sid_paths[sid] = p
            ppath = sid_paths.get(parent)
        totals, resolved = None, False
        if ppath is not None and fork_ts:
            totals, resolved = codex_mod.parent_totals_at(ppath, tz, fork_ts), True
        state = codex_mod.fork_state(totals, resolved)
        out.append(("codex", path, 0, state, tz, True))
    return out


class _Plan:
    """One kind's scan before parsing: its ledger, listing and parse tasks."""

    __slots__ = ("kind", "led", "listing", "roots", "tasks", "incremental")

    def __init__(self, kind: str, led: Ledger, listing: dict[str, os.stat_result], roots: list[Path],
                 tasks: list[Task], incremental: set[str]):
        self.kind, self.led, self.listing, self.roots = kind, led, listing, roots
        self.tasks, self.incremental = tasks, incremental


def scan_kind(kind: str, *, home: Path, env: Mapping[str, str], tz: tzinfo, scan_since: str, scan_until: str,
              cache_dir: Path | None, refresh: bool, progress: Progress | None = None,
              workers: int | None = None) -> Ledger:
    """Bring the ``kind`` (``claude``|``codex``) ledger up to date and return it."""
    try:
        return _scan(kind, home, env, tz, scan_since, scan_until, cache_dir, refresh, progress, workers)
    except CacheInvalid:
        return _scan(kind, home, env, tz, scan_since, scan_until, cache_dir, True, progress, workers)


def scan_kinds(kinds: list[str], *, home: Path, env: Mapping[str, str], tz: tzinfo, scan_since: str,
               scan_until: str, cache_dir: Path | None, refresh: bool, progress: Progress | None = None,
               workers: int | None = None) -> dict[str, Ledger | FoldedLedger | Exception]:
    """:func:`scan_kind` for several kinds at once: the files of all kinds are parsed by one
    process pool (so both cores stay busy to the end and the pool starts once).  A kind whose
    scan fails maps to its exception; the other kinds are unaffected."""
    args = (home, env, tz, scan_since, scan_until, cache_dir)
    if _unreaped:
        _collect()
    if _splits(kinds, cache_dir, refresh, workers):
        return _scan_split(kinds, home, env, tz, scan_since, scan_until, cache_dir, progress)
    out: dict[str, Ledger | FoldedLedger | Exception] = {}
    plans: dict[str, _Plan] = {}
    listed = (_claude_lister(home, env) if sorted(kinds) == ["claude", "codex"] and (workers or cpu_count()) > 1
              and can_fork() else None)
    try:
        for kind in sorted(kinds, key=lambda k: k == "claude"):  # (Claude last: its listing is under way)
            try:
                try:
                    plans[kind] = _plan(kind, *args, refresh, listed)
                except CacheInvalid:
                    plans[kind] = _plan(kind, *args, True, listed)
            except Exception as exc:  # noqa: BLE001 - reported per provider
                out[kind] = exc
    finally:
        if listed is not None:
            listed()  # (collected in any case)
    tasks = [t for p in plans.values() for t in p.tasks]
    by_kind: dict[str, list[Result]] = {k: [] for k in plans}
    handoff: _Handoff | None = None
    finish: Callable[[], Any] | None = None
    if tasks:
        sizes: dict[str, int] = {}
        for p in plans.values():
            sizes.update((path, st.st_size) for path, st in p.listing.items())
        workers = workers or cpu_count()
        total = sum(sizes[t[1]] - t[2] for t in tasks)
        # with two kinds to parse in worker processes, the first worker also folds and saves the
        # Claude ledger while this process does the Codex one
        handoff = (_Handoff("claude", plans["claude"], tz)
                   if "claude" in plans and len(plans) > 1 and plans["claude"].tasks
                   and any(t[0] != "claude" for t in tasks) and _forks(tasks, total, workers) else None)
        try:
            if handoff is not None:
                if progress:
                    progress(0, total)
                results, finish = _run_forked(tasks, sizes, progress, workers, total, handoff)
            else:
                results, finish = _run_tasks(tasks, sizes, progress, workers), None
        except Exception:  # noqa: BLE001 - isolate the failing kind by scanning each on its own
            for kind in plans:
                try:
                    out[kind] = scan_kind(kind, home=home, env=env, tz=tz, scan_since=scan_since,
                                          scan_until=scan_until, cache_dir=cache_dir, refresh=refresh,
                                          workers=workers)
                except Exception as exc:  # noqa: BLE001
                    out[kind] = exc
            return out
        for r in results:
            by_kind[r[0]].append(r)
        if graveyard is not None:
            graveyard.append((plans, results, by_kind))
    handed = handoff.kind if handoff is not None and finish is not None else None  # (a worker folds it)
    for kind, plan in plans.items():
        if kind == handed:
            continue
        try:
            try:
                out[kind] = _fold(plan, by_kind[kind], tz)
            except CacheInvalid:
                out[kind] = _scan(kind, *args, True, None, workers)
        except Exception as exc:  # noqa: BLE001
            out[kind] = exc
    if handoff is not None and finish is not None:
        try:
            out[handoff.kind] = finish()
        except Exception:  # noqa: BLE001 - the worker failed: scan that kind here (its cache is whole)
            try:
                out[handoff.kind] = scan_kind(handoff.kind, home=home, env=env, tz=tz, scan_since=scan_since,
                                              scan_until=scan_until, cache_dir=cache_dir, refresh=refresh,
                                              workers=1)
            except Exception as exc:  # noqa: BLE001
                out[handoff.kind] = exc
    return {k: out[k] for k in kinds if k in out}


def _splits(kinds: list[str], cache_dir: Path | None, refresh: bool, workers: int | None) -> bool:
    """Whether to scan the two kinds in two processes from the start (:func:`_scan_split`): both
    kinds, a large Claude cache to bring up to date (a cold or refreshed scan plans both kinds
    here and shares the parsing instead), two usable cores and fork."""
    if sorted(kinds) != ["claude", "codex"] or refresh or cache_dir is None:
        return False
    index = index_files(cache_dir, "claude")
    try:
        if not index or os.stat(cache_dir / index[0][1]).st_size < SPLIT_MIN_INDEX_BYTES:
            return False
    except OSError:
        return False
    return (workers or cpu_count()) > 1 and can_fork()


def _scan_split(kinds: list[str], home: Path, env: Mapping[str, str], tz: tzinfo, scan_since: str,
                scan_until: str, cache_dir: Path | None, progress: Progress | None) -> dict[str, Ledger | FoldedLedger | Exception]:
    """:func:`scan_kinds` of a warm cache in two processes: a forked child brings the Claude
    ledger up to date (listing, parsing, folding, saving) and sends back its totals
    (:class:`FoldedLedger`) while this process does the Codex one.  Most of a warm scan is
    listing and ``stat``-ing the logs, which no single process can do faster.  If the child
    fails, the Claude scan is done here afterwards (its cache was saved atomically, or not at all)."""
    common: dict[str, Any] = dict(home=home, env=env, tz=tz, scan_since=scan_since, scan_until=scan_until,
                                  cache_dir=cache_dir, refresh=False, workers=1)
    out: dict[str, Ledger | FoldedLedger | Exception] = {}
    def claude(w: int) -> None:
        led = scan_kind("claude", **common)
        # (msgpack, not pickle: no import; floats round-trip exactly)
        _send_bytes(w, msgspec.msgpack.encode(("folded", led.totals(), led.skipped_lines())))
        led.sweep()  # (the parent has what it needs: off its path)

    pid, r = _fork_worker(claude)
    try:
        try:
            out["codex"] = scan_kind("codex", **common, progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported per provider
            out["codex"] = exc
        try:
            status, *rest = msgspec.msgpack.decode(_recv_bytes(r))
        except Exception:  # noqa: BLE001 - the child failed (it ends without a word then)
            status, rest = "error", []
    except BaseException:
        import signal

        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        raise
    finally:
        os.close(r)
        _reap(pid)
    if status == "folded":
        out["claude"] = FoldedLedger(rest[0], rest[1])
    else:
        try:
            out["claude"] = scan_kind("claude", **common)
        except Exception as exc:  # noqa: BLE001
            out["claude"] = exc
    return {k: out[k] for k in kinds}


def _plan(kind: str, home: Path, env: Mapping[str, str], tz: tzinfo, scan_since: str, scan_until: str,
          cache_dir: Path | None, refresh: bool, listed: Callable[[], dict[str, Any] | None] | None = None) -> _Plan:
    led = Ledger(kind, cache_dir, tz_key(tz)) if refresh else Ledger.load(kind, cache_dir, tz_key(tz))
    listing, roots = _listing(kind, led, home, env, tz, scan_since, scan_until, refresh, listed)
    tasks: list[Task] = []
    incremental: set[str] = set()
    for path, st in listing.items():
        s = led.stat.get(path)
        if s is not None and s[0] == st.st_size and s[1] == st.st_mtime_ns and s[2] == st.st_ino:
            continue
        m = led.meta(path) if s is not None else None
        if (m is not None and m["ino"] == st.st_ino and st.st_size >= m["size"]
                and file_signature(path, m["offset"]) == m["sig"]):
            incremental.add(path)
            tasks.append((kind, path, m["offset"], dict(m.get("state") or {}) or None, tz, True))
        else:
            tasks.append((kind, path, 0, None, tz, False))
    for path in [p for p in led.stat if p not in listing]:
        led.remove(path)
    return _Plan(kind, led, listing, roots, tasks, incremental)


def _fold(plan: _Plan, results: list[Result], tz: tzinfo) -> Ledger:
    """Fold parse results (``_parse_one`` tuples) into the plan's ledger, resolve forks, save."""
    led, listing, incremental = plan.led, plan.listing, plan.incremental
    if plan.tasks:
        sizes = {p: st.st_size for p, st in listing.items()}
        forks = []
        apply = _apply_claude if plan.kind == "claude" else _apply_codex
        for _, path, res, special in sorted(results, key=lambda r: r[1]):
            if special is not None:
                if special[0] == "fork":
                    forks.append((path, special[1], special[2], special[3]))
                else:
                    led.remove(path)
                continue
            apply(led, path, listing[path], res, path in incremental)
        if forks:
            for _, path, res, special in _run_tasks(_resolve_forks(forks, led, plan.roots, tz, listing),
                                                    sizes, None, 1):
                if special is None:
                    apply(led, path, listing[path], res, False)
                else:
                    led.remove(path)
    led.totals()
    try:
        led.save(sweep=False)  # (the deletion of older cache files is left to sweep_in_background)
    except OSError:
        pass
    return led


def _scan(kind: str, home: Path, env: Mapping[str, str], tz: tzinfo, scan_since: str, scan_until: str,
          cache_dir: Path | None, refresh: bool, progress: Progress | None, workers: int | None) -> Ledger:
    plan = _plan(kind, home, env, tz, scan_since, scan_until, cache_dir, refresh)
    results = (_run_tasks(plan.tasks, {p: st.st_size for p, st in plan.listing.items()}, progress,
                          workers or cpu_count()) if plan.tasks else [])
    return _fold(plan, results, tz)
