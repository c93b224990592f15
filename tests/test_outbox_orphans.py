"""What a flush killed half-way leaves in the outbox counts against its bound and is cleaned up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from coverage_wrapper.config import parse_config
from coverage_wrapper.outbox import ORPHAN_GRACE_SECONDS, Outbox
from coverage_wrapper.shipper import drain
from layer_harness import EVENTS, FIXTURES, copy_app, layer_env, log_lines, outbox_files, run_function

# The function process dies by SIGKILL between copying its data into the outbox and writing the sidecar.
KILLED_MID_FLUSH = (
    "import os, signal\n"
    "import coverage_wrapper.outbox as outbox\n"
    "from coverage_wrapper import coverage_handler\n"
    "from shop.orders import price\n"
    "\n"
    "def killed_before_the_sidecar(path, document):\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "\n"
    "outbox._write_json_atomically = killed_before_the_sidecar\n"
    "\n"
    "@coverage_handler\n"
    "def lambda_handler(event, context):\n"
    "    return price(event['items'], 'de')\n"
)


def _pending(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "outbox" / "pending").iterdir())


def test_a_copy_left_by_a_kill_mid_flush_counts_against_the_bound_and_is_removed_once_stale(tmp_path, capsys):
    app = copy_app(tmp_path)
    (app / "killed.py").write_text(KILLED_MID_FLUSH)
    env = layer_env(app, tmp_path, COVERAGE_FLUSH_INVOCATIONS="1", COVERAGE_OUTBOX_MAX_FILES="2")
    killed = subprocess.run(
        [sys.executable, str(FIXTURES / "run_function.py"), "killed.lambda_handler", json.dumps(EVENTS[:1])],
        env=env, cwd=app, capture_output=True, text=True, timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL
    [orphan] = _pending(tmp_path)
    assert orphan.endswith(".coverage"), "the data copy is there, its sidecar never was"

    # The next execution environment flushes twice into a bound of two files: the orphan takes a place.
    run_function("handler.lambda_handler", [EVENTS[1], EVENTS[0]], env)
    names = _pending(tmp_path)
    assert orphan in names and len([n for n in names if n.endswith(".coverage")]) == 2
    assert len(outbox_files(tmp_path)) == 2 and len(Outbox(str(tmp_path / "outbox")).entries()) == 1

    # Once older than the grace period, the next drain (or put) removes it, and says so.
    stale = time.time() - ORPHAN_GRACE_SECONDS - 1
    os.utime(tmp_path / "outbox" / "pending" / orphan, (stale, stale))
    capsys.readouterr()
    config = parse_config({"COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    drain(Outbox(config.outbox_dir), config)
    assert orphan not in _pending(tmp_path)
    swept = [r for r in log_lines(capsys.readouterr().out) if r.get("operation") == "outbox_sweep"]
    assert [r["removed_files"] for r in swept] == [1]


def test_a_young_copy_without_sidecar_is_left_alone(tmp_path):
    outbox = Outbox(str(tmp_path / "outbox"), max_files=4)
    data = tmp_path / "data.coverage"
    data.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    being_written = tmp_path / "outbox" / "pending" / "00000000000000000001-0000abcd-000001.coverage"
    outbox.put(str(data), {"env": "abcdef12", "seq": 1})
    being_written.write_bytes(b"half a copy")
    outbox.put(str(data), {"env": "abcdef12", "seq": 2})
    assert outbox.sweep() == 0 and being_written.exists(), "another process may be writing its sidecar right now"
    assert [int(e.name.rsplit("-", 1)[1]) for e in outbox.entries()] == [1, 2], "three files, within a bound of four"
