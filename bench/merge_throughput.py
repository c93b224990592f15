"""Merge throughput: the layer's `merge_data_files` against coverage.py's own `coverage combine`, same files, same machine.

Both run as a fresh process over the same directory, so each pays its interpreter start and imports;
the order alternates between repeats so neither always runs on a warmer page cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import corpus
from .runtime import REPO

_MERGE = """
import glob, json, sys
from coverage_wrapper.merge import merge_data_files
paths = sorted(glob.glob(sys.argv[1] + "/.coverage.*"))
result = merge_data_files(paths, sys.argv[2], validate=sys.argv[3] == "validate")
print(json.dumps({"merged": len(result.merged), "rejected": len(result.rejected)}))
"""

_LINES = """
import json, sys
from coverage_wrapper.merge import Measurements
found = Measurements()
found.add_file(sys.argv[1])
print(json.dumps(found.executed_lines()))
"""


def _timed(command: list[str], cwd: str) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "layer_src")})
    return time.perf_counter() - began


def _executed_lines(data_file: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _LINES, data_file], check=True, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "layer_src")})
    return json.loads(done.stdout)


def measure(sizes: dict[int, int], real_run_count: int, progress=print) -> dict:
    """For each corpus size → repeats: seconds per tool, files per second, and whether both results agree."""
    results: dict = {"real_runs": real_run_count, "modules": corpus.MODULES, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as scratch:
        root = Path(scratch)
        began = time.perf_counter()
        code = corpus.write_codebase(root / "code")
        real = corpus.real_runs(code, root / "real", real_run_count)
        results["real_runs_seconds"] = time.perf_counter() - began
        previous = 0
        variants_dir = root / "variants"
        for size, repeats in sorted(sizes.items()):
            progress(f"  merge: {size} files")
            began = time.perf_counter()
            # Each size gets its own directory of exactly `size` files; the smaller set is reused.
            target = root / f"files-{size}"
            if size > previous:
                corpus.variants(real, variants_dir, size, start=previous)
            target.mkdir()
            for path in sorted(variants_dir.glob(".coverage.*"))[:size]:
                (target / path.name).symlink_to(path)
            previous = max(previous, size)
            generated = time.perf_counter() - began
            combine_cwd = root / f"combine-{size}"
            combine_cwd.mkdir()  # empty: no .coveragerc, setup.cfg or pyproject.toml for coverage.py to read
            tools = {
                "coverage combine": [sys.executable, "-m", "coverage", "combine", "--keep", "-q", str(target)],
                "merge_data_files (validated)": [sys.executable, "-c", _MERGE, str(target), str(root / f"merged-{size}.sqlite"), "validate"],
                "merge_data_files (no validation)": [sys.executable, "-c", _MERGE, str(target), str(root / f"merged-raw-{size}.sqlite"), "trust"],
            }
            seconds: dict[str, list[float]] = {name: [] for name in tools}
            for repeat in range(repeats):
                order = list(tools) if repeat % 2 == 0 else list(reversed(tools))
                for name in order:
                    seconds[name].append(_timed(tools[name], str(combine_cwd)))
            same = _executed_lines(str(combine_cwd / ".coverage")) == _executed_lines(str(root / f"merged-{size}.sqlite"))
            results["sizes"][size] = {"seconds": seconds, "generate_seconds": generated, "same_result": same}
    return results
