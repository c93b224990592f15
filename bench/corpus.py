"""A realistic raw-file corpus for the merge benchmark: a generated 30-module codebase, real runs, and variants.

Real coverage.py runs are the expensive part (a process, imports, a save), so a few hundred real runs
are made in one process per core, and the thousands of distinct files the benchmark needs are cheap
SQLite rewrites of them: each variant keeps a real run's schema, meta and file table and gets, per
measured file, a different arc set drawn from the arcs real runs observed in that file.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MODULES = 30
PACKAGE = "shop"


def module_source(index: int) -> str:
    """One module: a few functions with branches, loops and early returns, driven by integer inputs."""
    return textwrap.dedent(f'''\
        """Generated module {index} of the benchmark codebase."""

        RATE = {index % 7 + 1}
        LIMITS = {{"low": {index}, "high": {index * 10 + 5}}}


        def classify(value):
            if value < LIMITS["low"]:
                return "low"
            elif value > LIMITS["high"]:
                return "high"
            if value % 2 == 0:
                return "even"
            return "odd"


        def price(items, country):
            total = 0
            for quantity, unit in items:
                if quantity <= 0:
                    continue
                total += quantity * unit * RATE
            if country == "de":
                total *= 1.19
            elif country == "fr":
                total *= 1.2
            else:
                total *= 1.0
            return round(total, 2)


        def route(event):
            kind = event.get("kind", 0) % 5
            if kind == 0:
                return classify(event.get("value", 0))
            if kind == 1:
                return price([(event.get("value", 0) % 4, 3)], "de")
            if kind == 2:
                return price([(1, event.get("value", 0))], "fr")
            try:
                if kind == 3:
                    raise ValueError("kind 3")
                return {{"module": {index}, "value": event.get("value")}}
            except ValueError as exc:
                return str(exc)


        def audit(records):
            seen = set()
            for record in records:
                if record in seen:
                    return False
                seen.add(record)
            return True
        ''')


def write_codebase(root: Path) -> Path:
    """The `shop` package of MODULES modules plus a dispatcher, under `root`."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""The benchmark codebase."""\n')
    for index in range(MODULES):
        (package / f"mod{index:02d}.py").write_text(module_source(index))
    (package / "dispatch.py").write_text(textwrap.dedent(f'''\
        """Runs a subset of the modules, chosen by the request, as a Lambda handler would."""

        import importlib


        def handle(seed):
            results = []
            for index in range({MODULES}):
                if (seed >> (index % 12)) & 1 or index % 7 == seed % 7:
                    module = importlib.import_module("{PACKAGE}.mod%02d" % index)
                    results.append(module.route({{"kind": seed + index, "value": seed * 3 + index}}))
                    if seed % 3 == 0:
                        module.audit([seed, index, seed])
            return results
        '''))
    return root


_RUNNER = '''
import os, sys, coverage
root, out, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, root)
for seed in range(first, first + count):
    for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
        del sys.modules[name]  # module-level lines run again in every "process"
    cov = coverage.Coverage(data_file=os.path.join(out, "real.%05d" % seed), branch=True,
                            include=[os.path.join(root, "shop", "*")], config_file=False)
    cov.start()
    import shop.dispatch
    shop.dispatch.handle(seed)
    cov.stop()
    cov.save()
'''


def real_runs(root: Path, out: Path, runs: int, processes: int = 2) -> list[Path]:
    """`runs` real coverage.py data files, one per input, made by `processes` processes side by side."""
    out.mkdir(parents=True, exist_ok=True)
    share = -(-runs // processes)
    workers = [
        subprocess.Popen([sys.executable, "-c", _RUNNER, str(root), str(out), str(n * share), str(min(share, runs - n * share))])
        for n in range(processes) if runs - n * share > 0
    ]
    for worker in workers:
        if worker.wait() != 0:
            raise RuntimeError("a real coverage run failed")
    files = sorted(out.glob("real.*"))
    relativize_all(files, str(root))
    return files


def relativize_all(files: list[Path], root: str) -> None:
    """Paths relative to the source root, as the layer ships them."""
    prefix = root.rstrip("/") + "/"
    for path in files:
        with sqlite3.connect(path) as connection:
            connection.execute("update file set path = substr(path, ?) where path like ?", (len(prefix) + 1, prefix + "%"))


def _arcs(path: Path) -> dict[str, set[tuple[int, int]]]:
    with sqlite3.connect(path) as connection:
        names = dict(connection.execute("select id, path from file"))
        found: dict[str, set[tuple[int, int]]] = {name: set() for name in names.values()}
        for file_id, start, end in connection.execute("select file_id, fromno, tono from arc"):
            found[names[file_id]].add((start, end))
    return found


def _write_variants(job: tuple[list[str], dict[str, list[tuple[int, int]]], str, int, int]) -> int:
    templates, observed, out, first, count = job
    rng = random.Random(first)
    template_arcs = {template: _arcs(Path(template)) for template in templates}
    for number in range(first, first + count):
        template = templates[number % len(templates)]
        target = os.path.join(out, ".coverage.%05d" % number)
        shutil.copyfile(template, target)
        connection = sqlite3.connect(target)
        connection.execute("pragma synchronous = off")
        connection.execute("pragma journal_mode = memory")
        with connection:
            for file_id, name in connection.execute("select id, path from file").fetchall():
                ran = template_arcs[template][name]
                # Keep most of what the real run did, drop a few of its arcs and add a few that other
                # real runs took in the same file: a distinct run whose arcs all exist in the code.
                kept = [arc for arc in sorted(ran) if rng.random() < 0.9]
                kept += [arc for arc in observed[name] if arc not in ran and rng.random() < 0.05]
                connection.execute("delete from arc where file_id = ?", (file_id,))
                connection.executemany("insert into arc (file_id, context_id, fromno, tono) values (?, 1, ?, ?)", [(file_id, a, b) for a, b in kept])
        connection.close()
    return count


def variants(templates: list[Path], out: Path, count: int, start: int = 0, processes: int = 2) -> list[Path]:
    """Distinct data files `start` … `count - 1` rewritten from the real runs, arcs drawn from those observed per file."""
    out.mkdir(parents=True, exist_ok=True)
    observed: dict[str, set[tuple[int, int]]] = {}
    for template in templates:
        for name, arcs in _arcs(template).items():
            observed.setdefault(name, set()).update(arcs)
    ordered = {name: sorted(arcs) for name, arcs in observed.items()}
    share = -(-(count - start) // processes)
    jobs = [([str(t) for t in templates], ordered, str(out), start + n * share, min(share, count - start - n * share))
            for n in range(processes) if count - start - n * share > 0]
    with ProcessPoolExecutor(len(jobs)) as pool:
        list(pool.map(_write_variants, jobs))
    return sorted(out.glob(".coverage.*"))
