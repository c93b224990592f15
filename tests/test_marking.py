"""Marking at the bytecode level (`coverage_wrapper.marking`) leaves what the code does, and where its errors
point, as they were; on Python 3.12 and 3.13, over the exactness corpus, the bench codebase and code that
needs wider jumps once marked. The coverage the markers yield is checked by tests/test_exactness.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exactness import harness

ROOT = Path(__file__).resolve().parents[1]

# Runs in the Python under test: marks code, runs it marked and unmarked, and reports what differs.
_CHECK = r"""
import dis, json, sys, traceback, types
sys.path.insert(0, sys.argv[1])
from coverage_wrapper.marking import MARKER_BASE, Marks, mark_code

def code_objects(code):
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from code_objects(constant)

def original_instructions(code):
    # what marking adds: a NOP on a marker line, a JUMP_FORWARD with a line but no columns, and EXTENDED_ARGs
    return [
        (i.opname, i.positions)
        for i in dis.get_instructions(code)
        if (i.positions.lineno or 0) < MARKER_BASE and i.opname != "EXTENDED_ARG"
        and not (i.opname == "JUMP_FORWARD" and i.positions.col_offset is None and i.positions.lineno is not None)
    ]

report = {"files": 0, "code_objects": 0, "markers": 0, "moved": [], "runs": {}}
for path in json.loads(sys.argv[2]):
    with open(path, "rb") as handle:
        code = compile(handle.read(), path, "exec", dont_inherit=True)
    marks = Marks()
    marked = mark_code(code, marks)
    report["files"] += 1
    report["markers"] += len(marks.branch_lines)
    for before, after in zip(code_objects(code), code_objects(marked)):
        report["code_objects"] += 1
        if original_instructions(before) != original_instructions(after):
            report["moved"].append(f"{path}: {before.co_qualname}")

def outcome(function, *args):
    try:
        return ["returned", repr(function(*args))]
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)[1:]
        return ["raised", repr(exc), [(f.lineno, f.end_lineno, f.colno, f.end_colno) for f in frames]]

exec(sys.argv[3], scenario := {})
for name, source, calls in scenario["SCENARIOS"]:
    plain = compile(source, name, "exec")
    namespaces = {}
    for label, code in (("plain", plain), ("marked", mark_code(plain, Marks()))):
        namespace = {}
        exec(code, namespace)
        namespaces[label] = [outcome(namespace[function], *args) for function, args in calls]
    report["runs"][name] = namespaces
print(json.dumps(report))
"""

# Code whose marked jumps need EXTENDED_ARG (a long if/elif chain, a loop over a long body), exceptions
# raised and caught across inserted instructions, and errors whose traceback columns must not move.
_LONG_CHAIN = "def classify(n):\n" + "".join(
    f"    {'if' if i == 0 else 'elif'} n == {i}:\n        result = [n, {i}, n * {i}, str(n) + '{i}']\n" for i in range(150)
) + "    else:\n        result = None\n    return result\n"
_LOOP = "def total(items):\n    acc = 0\n    for item in items:\n" + "".join(
    f"        if item % {k + 2} == 0:\n            acc += {k}\n" for k in range(120)
) + "    else:\n        acc -= 1\n    return acc\n"
_ERRORS = '''
def guarded(values):
    seen = []
    for value in values:
        try:
            if value < 0:
                raise ValueError(value)
            seen.append(10 // value)
        except ZeroDivisionError:
            seen.append("zero")
        finally:
            seen.append("done")
    return seen

def broken(record):
    if record.get("kind") == "a":
        return record["missing"] + 1
    return (record["x"] +
            record["y"])
'''
SCENARIOS = [
    ("long_chain.py", _LONG_CHAIN, [("classify", (n,)) for n in (0, 1, 77, 149, 150, -3)]),
    ("long_loop.py", _LOOP, [("total", (list(range(40)),)), ("total", ([],))]),
    ("errors.py", _ERRORS, [
        ("guarded", ([3, 0, 5],)), ("guarded", ([2, -1, 4],)), ("broken", ({"kind": "a"},)),
        ("broken", ({"kind": "b", "x": 1},)), ("broken", ({"kind": "b", "x": 1, "y": "s"},)),
    ]),
]


def _files(root: Path) -> list[str]:
    """The exactness corpus, and the bench's package of realistic size (8,600 lines)."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench import codebase
    finally:
        sys.path.pop(0)
    codebase.write(root)
    return sorted(str(p) for p in (ROOT / "tests" / "exactness" / "corpus").glob("*.py")) + sorted(str(p) for p in root.rglob("*.py"))


@pytest.mark.parametrize("python", harness.PYTHONS)
def test_marked_code_does_what_the_code_did_and_keeps_every_position(python: str, tmp_path: Path) -> None:
    files = _files(tmp_path / "package")
    done = subprocess.run(
        [str(harness.venv_python(python)), "-c", _CHECK, str(ROOT / "layer_src"), json.dumps(files), f"SCENARIOS = {SCENARIOS!r}"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files"] == len(files) and report["markers"] > 1000, report
    assert report["moved"] == [], "instructions that lost their position once marked:\n" + "\n".join(report["moved"])
    for name, runs in report["runs"].items():
        assert runs["marked"] == runs["plain"], f"{name}: marked code behaves otherwise"
    raised = [run for runs in report["runs"].values() for run in runs["plain"] if run[0] == "raised"]
    assert len(raised) >= 3 and all(run[2] for run in raised), raised  # the tracebacks compared point somewhere
