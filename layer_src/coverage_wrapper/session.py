"""The process-wide measurement session: one Coverage object kept running across warm invocations."""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import itertools
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from types import FrameType
from typing import Any, Callable

from . import log
from ._version import __version__
from .config import Config, load_config
from .contexts import MAX_LABELS, OTHER, label
from .datafile import measured_points
from .outbox import Outbox

# coverage.py warnings that are expected in a Lambda process and would only add noise to its logs.
_QUIET_WARNINGS = ["no-data-collected", "module-not-measured", "module-not-imported", "no-ctracer"]


def _utc_iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wall_clock(moment: float | None) -> float | None:
    """A `time.monotonic()` reading as wall-clock time (an invocation reads one clock only)."""
    return None if moment is None else time.time() - (time.monotonic() - moment)


class _HandlerDepth(threading.local):
    """How many decorated handlers this thread is inside: a call within another is part of it, a call from
    another thread is an invocation of its own. A one-item list: a call reads the thread-local attribute once
    and changes the item, which costs a third of setting the attribute twice."""

    def __init__(self) -> None:
        self.open = [0]


def _skip_origin_stack() -> None:
    """coverage.py stores `inspect.stack()`, with every frame's source read, as a debugging aid each time
    it creates a collector: 10-40 ms of cold start for a string nothing here reads."""
    try:
        import coverage.collector

        coverage.collector.short_stack = lambda *args, **kwargs: ""
    except Exception:  # another coverage.py layout: keep its behaviour
        pass


class CoverageSession:
    """Starts coverage.py once, counts invocations, and flushes data into the outbox by policy."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env_id = os.urandom(4).hex()
        self.sampled = config.enabled and (config.sample_rate >= 1.0 or random.random() < config.sample_rate)
        self.outbox = Outbox(config.outbox_dir, config.outbox_max_files)
        self.data_file = self.outbox.live_path(self.env_id)
        self.errors: collections.deque[str] = collections.deque(maxlen=10)
        self.invocations = 0
        self._first_invocation_at: float | None = None  # time.monotonic() at the end of the first invocation
        self._last_invocation_at: float | None = None
        self.flushes = 0
        self.last_flush: dict[str, Any] | None = None
        self._coverage: Any = None
        self._ran_before: dict[str, set[int]] = {}
        self._imported_before: list[str] = []
        self._context = ""
        self._contexts_seen: set[str] = {""}
        self._measuring = False
        self._continuous = False
        # Measuring across invocations with no context to switch: nothing to do before a handler runs.
        self._plain_invocations = False
        self._handler_depth = _HandlerDepth()
        self._depth = 0  # CoverageContext blocks open, in any thread
        self._seq = 0
        self._points_shipped = -1
        self._invocations_shipped = 0
        self._schedule_next_flush()
        self._fallback: threading.Thread | None = None
        self._hooks_installed = False
        self._watcher_fds: tuple[int, int] | None = None
        self._deferred_sigterm: Callable[[], None] | None = None
        self._new_locks()

    # -- measurement -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._coverage is not None

    @property
    def first_invocation(self) -> float | None:
        """When the first invocation ended (wall-clock seconds), or None."""
        return _wall_clock(self._first_invocation_at)

    @property
    def last_invocation(self) -> float | None:
        """When the last invocation ended (wall-clock seconds), or None."""
        return _wall_clock(self._last_invocation_at)

    def _start(self) -> bool:
        """Create and start coverage.py on first use; False when it cannot (logged, never raised)."""
        if self._coverage is not None:
            if not self._measuring:
                self._coverage.start()
                self._measuring = True
            return True
        began = time.perf_counter()
        try:
            from .sources import measurement_patterns

            os.makedirs(os.path.dirname(self.data_file), exist_ok=True)
            include, omit = measurement_patterns(
                self.config.source_root, self.config.include_patterns, self.config.exclude_patterns
            )
            log.debug("Coverage measures these files", operation="coverage_initialization", include=include, omit=omit)
            from .imported import measured_modules
            from .sources import is_measured

            # Their module-level code ran unmeasured: the data says which they are (zero-code mode: none).
            self._imported_before = [name for _, name in measured_modules(lambda path: is_measured(path, include, omit))]
            cov = self._new_core(include, omit)
            try:
                cov.start()
            except Exception as exc:
                if self.config.core != "markers":
                    raise
                self._record_error("The markers core could not start; using ctrace", exc)
                self.config = dataclasses.replace(self.config, core="ctrace")
                cov = self._new_core(include, omit)
                cov.start()
        except Exception as exc:
            self._record_error("Coverage could not start", exc)
            self.sampled = False
            self._plain_invocations = False
            return False
        self._coverage = cov
        self._measuring = True
        self._install_shutdown_hooks()
        log.info(
            "Coverage measurement started",
            operation="coverage_initialization",
            duration_ms=round((time.perf_counter() - began) * 1000, 2),
            core=self.config.core,
            branch=self.config.branch,
            source_root=self.config.source_root,
        )
        if not self.config.bucket:  # once: measuring starts once per execution environment
            log.warning(
                "COVERAGE_S3_BUCKET is not set: coverage is measured but not uploaded",
                operation="configuration",
            )
        return True

    def _new_core(self, include: list[str], omit: list[str]) -> Any:
        """The measuring core: `markers` for branches on Python 3.12/3.13, else coverage.py itself."""
        if self.config.core == "markers":
            from .markers import MarkersCore

            core = MarkersCore(self.data_file, include, omit, self._imported_before)
            core.fresh_copies = core.fresh_copies and self.config.contexts == "off"
            return core
        from .imported import lines_run_before

        self._ran_before = lines_run_before(self._imported_before)
        # coverage.py reads the same variable; make it see the core chosen for what is measured.
        os.environ["COVERAGE_CORE"] = self.config.core
        import coverage

        _skip_origin_stack()
        cov = coverage.Coverage(
            data_file=self.data_file,
            branch=self.config.branch,
            include=include,
            omit=omit,
            config_file=False,
            messages=False,
        )
        cov.set_option("run:disable_warnings", _QUIET_WARNINGS)
        return cov

    def start_continuous(self) -> None:
        """Measure from now on, across invocations (decorator and zero-code mode)."""
        with self._lock:
            if self.sampled and self._start():
                self._continuous = True
                self._plain_invocations = self.config.contexts == "off"

    def measure_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """`handler`, counted per invocation and flushed by policy; its result and exceptions pass through.

        The outermost call in a thread is an invocation. Once measuring runs and no context is switched, a
        call costs this thread's depth and, at its end, `end_invocation`: no call before the handler runs.
        """
        handler_depth = self._handler_depth

        def measured_handler(*args: Any, **kwargs: Any) -> Any:
            open_calls = handler_depth.open
            depth = open_calls[0]
            open_calls[0] = depth + 1
            counted = not depth and (
                self._plain_invocations or self.begin_invocation(args[0] if args else kwargs.get("event"))
            )
            try:
                return handler(*args, **kwargs)
            finally:
                open_calls[0] = depth
                if counted:
                    self.end_invocation()

        return measured_handler

    def measure_runtime_loop(self, next_invocation: Callable[[], Any]) -> Callable[[], Any]:
        """The runtime's `wait_next_invocation`, ending the previous invocation first (see runtime_loop).

        Called after the runtime posted the previous response, so counting and a policy flush are off the
        response path; measuring starts, in decorator mode, as the first invocation arrives.
        """
        serving = [False]

        def wait_next_invocation() -> Any:
            if serving[0]:
                serving[0] = False
                self.end_invocation()
            request = next_invocation()  # the runtime's own errors pass through untouched
            serving[0] = self._plain_invocations or self.begin_invocation()
            return request

        wait_next_invocation.__counts_invocations__ = True  # type: ignore[attr-defined]
        return wait_next_invocation

    def begin_invocation(self, event: Any = None) -> bool:
        """Before an outermost handler call that has work to do first: start measuring on the first, switch the
        context when COVERAGE_CONTEXTS asks. True when the invocation is measured, and so to be counted."""
        try:
            if not self.sampled:
                return False
            with self._lock:
                if not self._continuous:
                    self.start_continuous()
                    if not self._continuous:
                        return False
                if self.config.contexts != "off" and self._coverage is not None:
                    self._switch_context(event)
                return True
        except Exception as exc:
            self._record_error("Coverage could not begin an invocation", exc)
            return False

    def _switch_context(self, event: Any) -> None:
        """Record which request this invocation served (COVERAGE_CONTEXTS), for a sampled share of them.

        Invocations left out by COVERAGE_CONTEXTS_SAMPLE_RATE are measured under the empty context.
        """
        rate = self.config.contexts_sample_rate
        context = label(self.config.contexts, event) if rate >= 1.0 or random.random() < rate else ""
        if context not in self._contexts_seen:
            # The data file is cumulative per execution environment: past a bound the pipeline would refuse
            # it whole, so further labels (ids in ALB paths, say) are recorded as `other`.
            if len(self._contexts_seen) >= MAX_LABELS:
                context = OTHER
            self._contexts_seen.add(context)
        if context != self._context:
            self._coverage.switch_context(context)
            self._context = context

    def end_invocation(self) -> None:
        """A measured invocation returned or raised: count it, and flush when the policy says so.

        One clock read, for the timestamps and the deadline alike. The lock keeps counts exact across threads;
        taken with acquire/release, which costs less than a `with` block on every invocation.
        """
        try:
            now = time.monotonic()
            lock = self._lock
            lock.acquire()
            try:
                self.invocations = count = self.invocations + 1
                if self._first_invocation_at is None:
                    self._first_invocation_at = now
                self._last_invocation_at = now
                if count >= self._flush_at_count or now >= self._flush_deadline:
                    self.flush(reason="policy")
            finally:
                lock.release()
        except Exception as exc:
            self._record_error("Coverage could not end an invocation", exc)

    def enter_block(self, frame: FrameType | None = None) -> bool:
        """A `CoverageContext` block begins in `frame`; inside an invocation it only nests."""
        try:
            with self._lock:
                if not self.sampled:
                    return False
                self._depth += 1
                if self._depth > 1 or self._continuous:
                    return False
                started = self._start()
                if started and frame is not None:
                    self._measure_running_frame(frame)
                return started
        except Exception as exc:
            self._record_error("Coverage could not begin a block", exc)
            return False

    def _measure_running_frame(self, frame: FrameType) -> None:
        """Measure the rest of a frame that was already running when measuring started: the block's own lines.

        sys.monitoring cores turn on line events for the frame's code. coverage.py's tracers only follow
        frames that start after them: replaying the `call` of each frame from the block's up to this one,
        in one C-level call so that no line event lands in between, lets them follow the block.
        """
        cov = self._coverage
        if hasattr(cov, "measure_running"):
            cov.measure_running(frame.f_code)
            return
        tracer = cov._collector.tracers[-1]
        if hasattr(tracer, "sysmon_py_start"):
            tracer.sysmon_py_start(frame.f_code, 0)
            return
        stack = []
        current: FrameType | None = sys._getframe(0)
        while current is not None and current is not frame:
            stack.append(current)
            current = current.f_back
        if current is None:
            return
        stack.append(frame)
        trace = tracer if callable(tracer) else tracer._cached_bound_method_trace
        stack.reverse()
        traces = list(itertools.starmap(trace, [(each, "call", None) for each in stack]))
        if not callable(tracer):  # Python-level tracing delivers events through each frame's f_trace
            for each, frame_trace in zip(stack, traces):
                each.f_trace = frame_trace

    def exit_block(self, outermost: bool) -> None:
        try:
            with self._lock:
                if self._depth:
                    self._depth -= 1
                if not outermost or self._continuous:
                    return
                if self._measuring:
                    self._coverage.stop()
                    self._measuring = False
                self.end_invocation()
        except Exception as exc:
            self._record_error("Coverage could not end a block", exc)

    # -- flushing ----------------------------------------------------------------------------

    def _schedule_next_flush(self) -> None:
        """The flush policy as the count and the moment that make the next flush due: an invocation only compares."""
        self._flush_at_count = self.invocations + self.config.flush_invocations
        self._flush_deadline = time.monotonic() + self.config.flush_seconds

    def flush(self, reason: str = "manual", final: bool = False) -> dict[str, Any]:
        """Save what was measured; when it grew, put a copy in the outbox and have it shipped."""
        if self._is_busy():  # called from a signal handler (or code it runs) inside this thread's own flush
            return {"flushed": False, "reason": "a flush is already running in this thread"}
        with self._busy_section():
            return self._flush(reason, final)

    def _flush(self, reason: str, final: bool) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            with self._flush_lock:
                if self._coverage is None:
                    return {"flushed": False, "reason": "coverage is not running"}
                if self._ran_before:
                    self._save_ran_before()
                self._coverage.save()
                self._schedule_next_flush()
                points = measured_points(self.data_file, self.config.branch)
                grew = points != self._points_shipped
                counted = final and self.invocations > self._invocations_shipped
                if not (grew or counted):
                    return {"flushed": False, "reason": "no new coverage since the last flush"}
                self._seq += 1
                entry = self.outbox.put(self.data_file, self._metadata())
                self._points_shipped = points
                self._invocations_shipped = self.invocations
                self.flushes += 1
                result = {
                    "flushed": True,
                    "reason": reason,
                    "outbox_file": entry.data_path,
                    "seq": self._seq,
                    "measured_points": points,
                    "duration_ms": round((time.perf_counter() - began) * 1000, 3),
                }
                self.last_flush = dict(result, at=_utc_iso(time.time()))
            log.info(
                "Coverage data flushed to outbox",
                operation="coverage_flush",
                flush_reason=reason,
                duration_ms=result["duration_ms"],
                file_size=os.path.getsize(entry.data_path),
                invocations=self.invocations,
                seq=result["seq"],  # not self._seq: a final flush in another thread may have run since
            )
            self._ship(wait=final)
            return result
        except Exception as exc:
            self._record_error("Coverage flush failed", exc)
            return {"flushed": False, "reason": f"error: {exc}"}

    def _save_ran_before(self) -> None:
        """Module-level lines of modules imported before measuring began ran: coverage.py's tracers never saw them."""
        data = self._coverage.get_data()
        data.set_context(None)  # they ran at import, for no request
        if self.config.branch:
            data.add_arcs({path: {(line, line) for line in lines} for path, lines in self._ran_before.items()})
        else:
            data.add_lines(self._ran_before)
        data.set_context(self._context or None)
        self._ran_before = {}

    def _metadata(self) -> dict[str, Any]:
        config = self.config
        return {
            "bucket": config.bucket,  # the destination travels with the entry, whoever drains the outbox
            "prefix": config.prefix,
            "function": config.function_name,
            "function_version": config.function_version,
            "code_version_label": config.code_version,
            "runtime": os.environ.get("AWS_EXECUTION_ENV") or f"python{sys.version_info[0]}.{sys.version_info[1]}",
            "layer_version": __version__,
            "invocations": self.invocations,
            "first_invocation": _utc_iso(self.first_invocation) if self.first_invocation else "",
            "last_invocation": _utc_iso(self.last_invocation) if self.last_invocation else "",
            "flushed_at": time.time(),
            "source_root": config.source_root,
            "include_patterns": list(config.include_patterns),
            "exclude_patterns": list(config.exclude_patterns),
            "core": config.core,
            "branch": config.branch,
            "env": self.env_id,
            "seq": self._seq,
            "imported_before": self._imported_before,
        }

    def _ship(self, wait: bool) -> None:
        """Leave shipping to the extension when one runs; otherwise upload in-process.

        Policy flushes upload from a background thread; the final flush (SIGTERM, exit) uploads in
        this thread, since no new thread may start while the interpreter shuts down.
        """
        if not self.config.bucket or self.outbox.extension_active():
            return
        if wait:
            running = self._fallback
            if running is not None and running.is_alive():
                running.join(self.config.upload_timeout + 5)
            self._drain_in_process(everything=True)
            return
        with self._fallback_lock:
            if self._fallback is not None and self._fallback.is_alive():
                self._fallback_again = True
                return
            self._fallback = threading.Thread(target=self._ship_in_background, name="coverage-shipper", daemon=True)
            self._fallback.start()

    def _ship_in_background(self) -> None:
        sys.settrace(None)  # the shipper's own code is not the user's code: do not trace this thread
        while True:
            self._drain_in_process(everything=False)
            with self._fallback_lock:
                if not self._fallback_again:
                    return
                self._fallback_again = False

    def _drain_in_process(self, everything: bool) -> None:
        try:
            from .shipper import drain

            drain(self.outbox, self.config, everything=everything)
        except Exception as exc:
            self._record_error("In-process upload failed", exc)

    # -- shutdown ----------------------------------------------------------------------------

    def _new_locks(self) -> None:
        """The invocation bookkeeping, the flush, the fallback uploader and the shutdown each have their own
        lock, and the flush's is not re-entrant: a SIGTERM handler never re-enters a flush it interrupted.
        A forked child gets new ones (a lock held by another thread at fork stays held forever)."""
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._fallback_lock = threading.Lock()
        self._fallback_again = False
        self._shutdown_claim = threading.Lock()
        self._shutdown_done = threading.Event()
        self._busy = threading.local()

    def _is_busy(self) -> bool:
        return getattr(self._busy, "depth", 0) > 0

    @contextlib.contextmanager
    def _busy_section(self) -> Iterator[None]:
        """This thread flushes or shuts down; a SIGTERM the main thread takes meanwhile waits for the end."""
        self._busy.depth = getattr(self._busy, "depth", 0) + 1
        try:
            yield
        finally:
            self._busy.depth -= 1
            deferred = self._deferred_sigterm
            if deferred is not None and self._busy.depth == 0 and threading.current_thread() is threading.main_thread():
                self._deferred_sigterm = None
                deferred()

    def _install_shutdown_hooks(self) -> None:
        """Final flush at exit and at SIGTERM, and a new identity in forked children; once per process."""
        if self._hooks_installed:
            return
        self._hooks_installed = True
        atexit.register(self.shutdown, "exit")
        os.register_at_fork(after_in_child=self._after_fork_in_child)
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            previous = signal.getsignal(signal.SIGTERM)

            def pass_on(signum: int, frame: Any) -> None:
                if callable(previous):
                    previous(signum, frame)
                elif previous == signal.SIG_DFL:  # end as without the layer: killed by the signal
                    self._remove_live_file()
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    os.kill(os.getpid(), signal.SIGTERM)

            def on_sigterm(signum: int, frame: Any) -> None:
                if self._is_busy():
                    # The main thread was interrupted inside its own flush or shutdown: re-entering would
                    # corrupt it, waiting would deadlock. It finishes, then shuts down and passes the signal on.
                    def shut_down_then_pass_on() -> None:
                        self.shutdown("sigterm")
                        pass_on(signum, None)

                    self._deferred_sigterm = shut_down_then_pass_on
                    return
                self.shutdown("sigterm")
                pass_on(signum, frame)

            signal.signal(signal.SIGTERM, on_sigterm)
            self._watch_sigterm()
        except (ValueError, OSError) as exc:
            self._record_error("Could not install the SIGTERM flush", exc)

    def _watch_sigterm(self) -> None:
        """Flush on SIGTERM even while the main thread is blocked in native code.

        Python runs signal handlers in the main thread only, between bytecodes; a runtime waiting for
        the next invocation inside a C call (awslambdaric before Python 3.12) never gets there, and
        Lambda kills it 300 ms later. The C-level handler still writes to the wakeup fd, so a thread
        reading it can flush in time. Skipped when someone else already owns the wakeup fd.
        """
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        if previous_fd != -1:
            signal.set_wakeup_fd(previous_fd)
            os.close(read_fd)
            os.close(write_fd)
            return
        self._watcher_fds = (read_fd, write_fd)

        def watch() -> None:
            sys.settrace(None)
            while True:
                try:
                    received = os.read(read_fd, 64)
                except OSError:
                    return
                if not received:
                    return
                if signal.SIGTERM in received:
                    self.shutdown("sigterm")

        threading.Thread(target=watch, name="coverage-sigterm", daemon=True).start()

    def shutdown(self, reason: str) -> None:
        """The final flush, at SIGTERM or interpreter exit; the extension uploads it at SHUTDOWN.

        One path, run once and never re-entered: SIGTERM reaches both the watcher thread and the main
        thread's handler, and exit follows. The first caller flushes; later ones wait for it (unless they
        run inside it), so the process never ends mid-flush.
        """
        if self._coverage is None:
            return
        if not self._shutdown_claim.acquire(blocking=False):
            if not self._is_busy():
                self._shutdown_done.wait(self.config.upload_timeout + 5)
            return
        began = time.perf_counter()
        with self._busy_section():
            try:
                flushed = bool(self._flush(reason, final=True).get("flushed"))
                if not flushed:
                    self._ship(wait=True)  # earlier flushes may still wait in the outbox
                log.info(
                    "Coverage shut down",
                    operation="coverage_shutdown",
                    shutdown_reason=reason,
                    flushed=flushed,
                    duration_ms=round((time.perf_counter() - began) * 1000, 2),
                )
                if reason == "exit":
                    self._remove_live_file()
            finally:
                self._shutdown_done.set()

    def _remove_live_file(self) -> None:
        """The process ends: its data is in the outbox, its live file would only fill /tmp."""
        try:
            os.remove(self.data_file)
        except OSError:
            pass

    def _after_fork_in_child(self) -> None:
        """A forked child (multiprocessing in a handler, a runtime's worker processes) is another process:
        its own environment id and live data file, new locks, no flush state of the parent's."""
        try:
            self._new_locks()
            self._deferred_sigterm = None
            self._fallback = None
            self.env_id = os.urandom(4).hex()
            self.data_file = self.outbox.live_path(self.env_id)
            self.invocations = self.flushes = self._seq = 0
            self._first_invocation_at = self._last_invocation_at = None
            self.last_flush = None
            self._points_shipped = -1
            self._invocations_shipped = 0
            self._schedule_next_flush()
            if self._watcher_fds is not None:
                # The pipe is the parent's: its watcher would take this process's SIGTERM for its own.
                signal.set_wakeup_fd(-1)
                for fd in self._watcher_fds:
                    os.close(fd)
                self._watcher_fds = None
                self._watch_sigterm()
            self._measure_in_child()
            self._flush_when_multiprocessing_ends()
        except Exception as exc:
            self._record_error("Coverage could not give a forked process its own data file", exc)

    def _measure_in_child(self) -> None:
        core, measuring = self._coverage, self._measuring
        if core is None:
            return
        adopt = getattr(core, "after_fork_in_child", None)
        if callable(adopt):
            adopt(self.data_file)  # the core keeps measuring, into the child's own file
            return
        # coverage.py's own answer to a fork (its `patch = fork`): stop the parent's object, start another.
        # Without it the child's first save would erase the parent's data file and write its own there.
        self._coverage, self._measuring = None, False
        if measuring:
            core.stop()
            self._start()

    def _flush_when_multiprocessing_ends(self) -> None:
        """multiprocessing ends its children with os._exit, past atexit; its own finalizers still run.

        Registered as an after-fork hook of its own, since a child's Process._bootstrap first clears the
        finalizers it inherited, then runs those hooks.
        """
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is None:
            return

        def finalize_at_exit(session: CoverageSession) -> None:
            mp_util.Finalize(session, session.shutdown, args=("exit",), exitpriority=10)

        mp_util.register_after_fork(self, finalize_at_exit)

    # -- status ------------------------------------------------------------------------------

    def _record_error(self, message: str, exc: BaseException) -> None:
        text = f"{message}: {type(exc).__name__}: {exc}"
        self.errors.append(text)
        log.error(message, error=str(exc), error_type=type(exc).__name__)

    def status(self) -> dict[str, Any]:
        config = self.config
        return {
            "coverage_enabled": config.enabled,
            "sampled": self.sampled,
            "measuring": self._measuring,
            "mode": "continuous" if self._continuous else ("blocks" if self.active else "idle"),
            "core": config.core,
            "branch": config.branch,
            "env_id": self.env_id,
            "invocations": self.invocations,
            "flushes": self.flushes,
            "flush_policy": {"invocations": config.flush_invocations, "seconds": config.flush_seconds},
            "last_flush": self.last_flush,
            "layer_version": __version__,
            # markers core: modules whose marked code `lambda-coverage mark` built, and those marked at import
            "modules_marked": {
                "ahead": getattr(self._coverage, "marked_ahead", 0),
                "at_import": getattr(self._coverage, "marked_at_import", 0),
            },
            "errors": list(self.errors),
        }


_session: CoverageSession | None = None
_session_lock = threading.Lock()


def get_session() -> CoverageSession:
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                _session = CoverageSession(load_config())
    return _session
