"""Real coverage.py raw files for the pipeline tests: measured runs of tests/fixtures/pipeline_app, relativized."""

from __future__ import annotations

import importlib.util
import random
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import coverage
from coverage_wrapper import keys
from coverage_wrapper.shipper import relativize

APP = Path(__file__).resolve().parent / "fixtures" / "pipeline_app"
TREES = {"v1": APP / "v1", "v2": APP / "v2"}
# Two days ago (UTC): intake accepts only dates a real flush can carry (at most a day ahead, within the raw retention).
DATE = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%d")


def _load(tree: Path, name: str) -> Any:
    path = tree / "shop" / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"pipeline_app_{tree.name}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _traffic(tree: Path, rng: random.Random, loaded: dict) -> None:
    """One invocation's worth of calls; which branches run depends on the seed."""
    if not loaded:
        loaded.update({n: _load(tree, n) for n in ("cart", "pricing", "discounts")})
    cart_module, pricing, discounts = loaded["cart"], loaded["pricing"], loaded["discounts"]
    cart: dict = {}
    for _ in range(rng.randint(0, 4)):
        try:
            cart_module.add_item(cart, rng.choice(["apple", "pear", "plum", "fig", "kiwi"]), rng.randint(-1, 12))
        except ValueError:
            pass
    if rng.random() < 0.3:
        cart_module.remove_item(cart, rng.choice(["apple", "kiwi"]))
    if rng.random() < 0.5:
        cart_module.count_items(cart)
    amount = pricing.total(cart, tax_rate=rng.choice([0.0, 0.2]))
    if hasattr(pricing, "cheapest") and rng.random() < 0.4:
        pricing.cheapest(cart)
    if discounts is not None and rng.random() < 0.6:
        try:
            discounts.apply_code(amount, rng.choice(["", "half", "bogus"]))
        except KeyError:
            pass


def measured_run(path: Path, version: str, seed: int, branch: bool = True) -> Path:
    """One raw data file from really running the app under coverage.py, paths relative to its root."""
    tree = TREES[version]
    measurement = coverage.Coverage(data_file=str(path), branch=branch, include=[f"{tree}/*"], config_file=False)
    loaded: dict = {}
    measurement.start()
    try:
        _traffic(tree, random.Random(seed), loaded)
    finally:
        measurement.stop()
    measurement.save()
    relativize(str(path), str(tree))
    return path


@dataclass(frozen=True)
class RawFile:
    path: Path
    function: str
    version: str
    key: str


def raw_corpus(directory: Path, prefix: str, functions: dict[str, int], versions=("v1", "v2")) -> list[RawFile]:
    """`functions[name]` files per function, spread over the versions, each a separate measured run."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    seed = 0
    for function, count in functions.items():
        for index in range(count):
            version = versions[index % len(versions)]
            seed += 1
            path = measured_run(directory / f"{function}-{index:04d}.coverage", version, seed)
            day = datetime.strptime(DATE, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            flushed = day.replace(hour=10 + index // 3600, minute=(index // 60) % 60, second=index % 60)
            key = keys.raw_key(prefix, function, flushed, version, f"{seed:08x}", index)
            files.append(RawFile(path, function, version, key))
    return files


def coverage_combine(paths: list[Path], scratch: Path) -> dict[str, Any]:
    """What `coverage combine` makes of the same files: executed lines and arcs per relative path."""
    scratch.mkdir(parents=True, exist_ok=True)
    copies = []
    for index, path in enumerate(paths):
        copy = scratch / f".coverage.part{index:05d}"
        shutil.copyfile(path, copy)
        copies.append(str(copy))
    combined = coverage.Coverage(data_file=str(scratch / ".coverage"), config_file=False)
    combined.combine(copies, keep=True)
    combined.save()
    return measured_content(scratch / ".coverage")


def measured_content(path: Path) -> dict[str, Any]:
    data = coverage.CoverageData(basename=str(path))
    data.read()
    return {
        "files": sorted(data.measured_files()),
        "lines": {f: sorted(data.lines(f) or []) for f in data.measured_files()},
        "arcs": {f: sorted(data.arcs(f) or []) for f in data.measured_files()},
        "has_arcs": data.has_arcs(),
    }


def corrupt(path: Path, sql: str) -> Path:
    """Apply hostile SQL to a copy's schema or contents (how the bad-input corpus is made)."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(sql)
        connection.commit()
    finally:
        connection.close()
    return path
