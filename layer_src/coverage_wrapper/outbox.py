"""The outbox in /tmp: flushed data files wait here until the extension (or the fallback) ships them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from . import log

_MAX_BACKOFF_SECONDS = 300.0
# A data file without its sidecar is either being written right now (put copies, then writes the sidecar
# within milliseconds) or left by a process killed mid-flush; after this long it is the second.
ORPHAN_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class Entry:
    """One flushed data file and its sidecar of metadata."""

    name: str
    data_path: str
    meta_path: str

    def read_meta(self) -> dict:
        with open(self.meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
        if not isinstance(meta, dict):
            raise ValueError(f"the sidecar holds a JSON {type(meta).__name__}, not an object")
        return meta


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _copy_file(source: str, target: str) -> None:
    """A plain copy: shutil would load the bz2 and lzma libraries into the function's memory for nothing."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while True:
            chunk = reader.read(1 << 20)
            if not chunk:
                return
            writer.write(chunk)


def _write_json_atomically(path: str, document: dict) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(temporary, path)


class Outbox:
    """A bounded directory of pending uploads; the oldest entries are dropped first when it is full.

    `pending/` holds entries (data file + JSON sidecar), `rejected/` the entries that can never be
    uploaded (each with a `.reason.json`), `live/` the data file coverage.py writes in each process.
    """

    def __init__(self, directory: str, max_files: int = 64) -> None:
        self.directory = directory
        self.pending_dir = os.path.join(directory, "pending")
        self.rejected_dir = os.path.join(directory, "rejected")
        self.live_dir = os.path.join(directory, "live")
        self.max_files = max_files

    def _ensure(self) -> None:
        os.makedirs(self.pending_dir, exist_ok=True)

    def put(self, data_path: str, meta: dict) -> Entry:
        """Copy a data file into the outbox with its metadata; the sidecar appears last, atomically."""
        self._ensure()
        name = f"{time.time_ns():020d}-{meta.get('env', 'local')}-{int(meta.get('seq', 0)):06d}"
        entry = self._entry(name)
        _copy_file(data_path, entry.data_path)
        _write_json_atomically(entry.meta_path, dict(meta, attempts=0, not_before=0.0))
        self._enforce_bound()
        return entry

    def _entry(self, name: str) -> Entry:
        base = os.path.join(self.pending_dir, name)
        return Entry(name, base + ".coverage", base + ".json")

    def _pending_names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.pending_dir))
        except FileNotFoundError:
            return []

    def entries(self) -> list[Entry]:
        """Entries whose sidecar is written, oldest first."""
        return [self._entry(n[:-5]) for n in self._pending_names() if n.endswith(".json")]

    def due(self, now: float | None = None) -> list[Entry]:
        """Entries whose retry backoff has passed."""
        now = time.time() if now is None else now
        ready = []
        for entry in self.entries():
            try:
                if float(entry.read_meta().get("not_before", 0.0)) <= now:
                    ready.append(entry)
            except FileNotFoundError:
                continue  # shipped or dropped since the listing
            except (OSError, ValueError, TypeError):
                ready.append(entry)  # an unreadable sidecar is set aside by the shipper
        return ready

    def remove(self, entry: Entry) -> None:
        for path in (entry.meta_path, entry.data_path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def record_failure(self, entry: Entry, error: str, refused: bool = False) -> int:
        """Keep the entry and push its next attempt back exponentially; returns how often S3 refused it.

        `refused` counts failures of this entry itself (S3 answered, and said no to this request), as
        opposed to transport trouble, which says nothing about the entry and never makes it rejectable.
        """
        try:
            meta = entry.read_meta()
            attempts = int(meta.get("attempts", 0)) + 1
            refusals = int(meta.get("refusals", 0)) + (1 if refused else 0)
        except (OSError, ValueError, TypeError):
            return 0
        meta.update(
            attempts=attempts,
            refusals=refusals,
            last_error=error[:500],
            not_before=time.time() + min(_MAX_BACKOFF_SECONDS, 2.0**attempts),
        )
        with contextlib.suppress(OSError):
            _write_json_atomically(entry.meta_path, meta)
        return refusals

    def set_aside(self, entry: Entry, reason: str, detail: str) -> str:
        """Move an entry that can never be uploaded to `rejected/`, with why; returns where it went."""
        os.makedirs(self.rejected_dir, exist_ok=True)
        base = os.path.join(self.rejected_dir, entry.name)
        _write_json_atomically(base + ".reason.json", {"reason": reason, "detail": detail[:1000], "at": time.time()})
        for source, target in ((entry.data_path, base + ".coverage"), (entry.meta_path, base + ".json")):
            with contextlib.suppress(FileNotFoundError):
                os.replace(source, target)
        self._bound_rejected()
        return base

    def rejected(self) -> list[dict]:
        """What was set aside, oldest first: name, reason and detail."""
        found = []
        try:
            names = sorted(n for n in os.listdir(self.rejected_dir) if n.endswith(".reason.json"))
        except FileNotFoundError:
            return []
        for name in names:
            with contextlib.suppress(OSError, ValueError, TypeError):
                with open(os.path.join(self.rejected_dir, name), encoding="utf-8") as handle:
                    found.append(dict(json.load(handle), name=name[: -len(".reason.json")]))
        return found

    def _bound_rejected(self) -> None:
        """Set-aside entries are kept for a human to look at, within the same bound as pending ones."""
        names = [r["name"] for r in self.rejected()]
        for name in names[: max(0, len(names) - self.max_files)]:
            for suffix in (".reason.json", ".coverage", ".json"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.rejected_dir, name + suffix))

    def sweep(self, now: float | None = None) -> int:
        """Remove what an interrupted flush left in `pending/`: data files without a sidecar and temporary
        sidecars, once older than `ORPHAN_GRACE_SECONDS`; returns how many files went."""
        now = time.time() if now is None else now
        names = self._pending_names()
        sidecars = {n[:-5] for n in names if n.endswith(".json")}
        removed = 0
        for name in names:
            orphan = (name.endswith(".coverage") and name[: -len(".coverage")] not in sidecars) or name.endswith(".tmp")
            if not orphan:
                continue
            path = os.path.join(self.pending_dir, name)
            try:
                if now - os.path.getmtime(path) < ORPHAN_GRACE_SECONDS:
                    continue
                os.remove(path)
                removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.warning(
                "Coverage outbox: removed files an interrupted flush left without metadata",
                removed_files=removed,
                operation="outbox_sweep",
            )
        return removed

    def _enforce_bound(self) -> None:
        """Complete entries and data files still without a sidecar both count: /tmp holds them all."""
        self.sweep()
        names = self._pending_names()
        sidecars = sorted(n[:-5] for n in names if n.endswith(".json"))
        complete = set(sidecars)
        unfinished = sum(1 for n in names if n.endswith(".coverage") and n[: -len(".coverage")] not in complete)
        excess = len(sidecars) + unfinished - self.max_files
        dropped = [self._entry(n) for n in sidecars[: max(0, min(excess, len(sidecars) - 1))]]  # never the one just put
        if not dropped:
            return
        for entry in dropped:
            self.remove(entry)
        log.warning(
            "Coverage outbox full: dropped oldest files",
            dropped_files=len(dropped),
            max_files=self.max_files,
            operation="outbox_bound",
        )

    def size(self) -> dict:
        files = 0
        total = 0
        for entry in self.entries():
            files += 1
            with contextlib.suppress(OSError):
                total += os.path.getsize(entry.data_path)
        return {"files": files, "bytes": total}

    # -- live data files: one per process, named by pid so a dead process's file can be recognised ---

    def live_path(self, env_id: str, pid: int | None = None) -> str:
        """Where coverage.py writes this process's data before a flush copies it into `pending/`."""
        return os.path.join(self.live_dir, f"{os.getpid() if pid is None else pid}-{env_id}.coverage")

    def remove_stale_live(self) -> int:
        """Remove the live data files (and SQLite journals) of processes that no longer run."""
        try:
            names = os.listdir(self.live_dir)
        except FileNotFoundError:
            return 0
        removed = 0
        for name in names:
            pid_text = name.split("-", 1)[0]
            if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.live_dir, name))
                removed += 1
        return removed

    # The extension announces itself here so the function process knows not to upload in-process.
    @property
    def _extension_path(self) -> str:
        return os.path.join(self.directory, "extension.json")

    def announce_extension(self, pid: int) -> None:
        os.makedirs(self.directory, exist_ok=True)
        _write_json_atomically(self._extension_path, {"pid": pid})

    def extension_active(self) -> bool:
        try:
            with open(self._extension_path, encoding="utf-8") as handle:
                pid = int(json.load(handle)["pid"])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, KeyError, TypeError):
            return False

    @property
    def _state_path(self) -> str:
        return os.path.join(self.directory, "state.json")

    def write_state(self, state: dict) -> None:
        with contextlib.suppress(OSError):
            os.makedirs(self.directory, exist_ok=True)
            _write_json_atomically(self._state_path, state)

    def read_state(self) -> dict:
        try:
            with open(self._state_path, encoding="utf-8") as handle:
                state = json.load(handle)
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    @contextlib.contextmanager
    def drain_lock(self) -> Iterator[None]:
        """One shipper at a time across processes (extension, fallback thread, tests)."""
        self._ensure()
        with open(os.path.join(self.directory, "drain.lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
