"""The Lambda layer's build, validation and publication: one reproducible zip per architecture for Python 3.9–3.13.

`python -m infrastructure.layer_build build|validate|deploy` is what `make build`, `make validate` and
`make deploy` run. A zip holds the shared pure-Python `coverage_wrapper`, coverage.py from its manylinux
wheel for each runtime and that architecture, bytecode compiled by each runtime's own interpreter, the
exec wrapper, the extension and `layer-manifest.json`. Same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_SRC = REPO_ROOT / "layer_src"
VERSION_FILE = LAYER_SRC / "coverage_wrapper" / "_version.py"
DEFAULT_DIST = REPO_ROOT / "dist"
DEFAULT_WHEEL_CACHE = REPO_ROOT / "build" / "wheels"

LAYER_NAME = "lambda-coverage-layer"
RUNTIMES = ("3.9", "3.10", "3.11", "3.12", "3.13")
# Pinned so that a rebuild months later gives the same bytes; 7.10.x is the last for 3.9, 7.16.x for 3.10.
COVERAGE_PINS = {"3.9": "7.10.7", "3.10": "7.16.2", "3.11": "7.17.4", "3.12": "7.17.4", "3.13": "7.17.4"}
MAX_ZIP_BYTES = 2 * 1024 * 1024
MANIFEST_NAME = "layer-manifest.json"
EXEC_WRAPPER = "coverage-instrument"
EXTENSION = "extensions/lambda-coverage-shipper"
EXECUTABLES = (EXEC_WRAPPER, EXTENSION)
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no build time leaks into the bytes
# Files of coverage.py's wheel that nothing reads at run time on Lambda; every reporter keeps its assets.
TRIMMED_FROM_COVERAGE = {
    "coverage/htmlfiles/style.scss": "SCSS source of style.css; the HTML reporter copies style.css only",
    "coverage/tracer.pyi": "type stub for type checkers",
    "coverage/py.typed": "PEP 561 marker for type checkers",
    "a1_coverage.pth": ".pth files are processed only in site directories; Lambda adds layer dirs via PYTHONPATH",
}


@dataclass(frozen=True)
class Architecture:
    """A Lambda architecture and how its wheels and shared objects are named."""

    name: str
    pip_platform: str
    machine: str
    elf_machine: int


ARCHITECTURES = {
    "x86_64": Architecture("x86_64", "manylinux2014_x86_64", "x86_64", 62),
    "arm64": Architecture("arm64", "manylinux2014_aarch64", "aarch64", 183),
}


class LayerBuildError(Exception):
    """A build, validation or deploy step failed; the message says what and what to do."""


# -- inputs --------------------------------------------------------------------------------------


def layer_version() -> str:
    """The layer version from `coverage_wrapper/_version.py`, read without importing it."""
    match = re.search(r'^__version__ = "([^"]+)"', VERSION_FILE.read_text(encoding="utf-8"), re.M)
    if not match:
        raise LayerBuildError(f"no __version__ in {VERSION_FILE}")
    return match.group(1)


def runtime_tag(runtime: str) -> str:
    """`3.11` → `311`."""
    return runtime.replace(".", "")


def zip_name(version: str, architecture: str) -> str:
    return f"{LAYER_NAME}-{version}-{architecture}.zip"


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def find_interpreter(runtime: str) -> Path | None:
    """The newest local CPython `runtime`: pyenv's versions, `python3.X` on PATH, or the one running this."""
    root = _pyenv_root()
    if root is not None and (root / "versions").is_dir():
        pattern = re.compile(rf"^{re.escape(runtime)}\.(\d+)$")
        candidates = []
        for entry in (root / "versions").iterdir():
            match = pattern.match(entry.name)
            if match and (entry / "bin" / "python").is_file():
                candidates.append((int(match.group(1)), entry / "bin" / "python"))
        if candidates:
            return max(candidates)[1]
    on_path = shutil.which(f"python{runtime}")
    if on_path:
        return Path(on_path)
    if runtime == "%d.%d" % sys.version_info[:2]:
        base = Path(sys.base_prefix) / "bin" / f"python{runtime}"
        return base if base.is_file() else Path(sys.executable)
    return None


# -- coverage.py wheels ----------------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialize concurrent builds (xdist workers, two terminals) that share the wheel cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_wheel(cache: Path, runtime: str, arch: Architecture) -> Path | None:
    tag = f"cp{runtime_tag(runtime)}"
    prefix = f"coverage-{COVERAGE_PINS[runtime]}-{tag}-{tag}-"
    found = sorted(
        p for p in cache.glob(f"{prefix}*.whl") if "manylinux" in p.name and p.name.endswith(f"{arch.machine}.whl")
    )
    return found[0] if found else None


def ensure_wheel(cache: Path, runtime: str, arch: Architecture) -> Path:
    """coverage.py's manylinux wheel for one runtime and architecture: from the cache, else from PyPI."""
    wheel = _cached_wheel(cache, runtime, arch)
    if wheel is not None:
        return wheel
    with _file_lock(cache / f".download-{runtime}-{arch.name}.lock"):
        wheel = _cached_wheel(cache, runtime, arch)
        if wheel is not None:
            return wheel
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as scratch:
            command = [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--only-binary=:all:", "--platform", arch.pip_platform,
                "--python-version", runtime, "--implementation", "cp", "--dest", scratch,
                f"coverage=={COVERAGE_PINS[runtime]}",
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = " ".join(done.stderr.strip().splitlines()[-3:])
                raise LayerBuildError(
                    f"pip could not download coverage=={COVERAGE_PINS[runtime]} for python{runtime} "
                    f"{arch.name}: {tail}"
                )
            downloaded = _cached_wheel(Path(scratch), runtime, arch)
            if downloaded is None:
                raise LayerBuildError(f"pip downloaded no manylinux wheel for python{runtime} {arch.name}")
            os.replace(downloaded, cache / downloaded.name)
    return cache / downloaded.name


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def unpack_wheel(wheel: Path, site_packages: Path) -> tuple[str, list[str]]:
    """Extract what the layer needs from a wheel; returns its RECORD's path and what was trimmed."""
    trimmed = []
    record_path = ""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if name.endswith(".dist-info/RECORD"):
                record_path = name
            elif name in TRIMMED_FROM_COVERAGE:
                trimmed.append(name)
            else:
                target = site_packages / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
    if not record_path:
        raise LayerBuildError(f"{wheel.name} has no RECORD")
    return record_path, sorted(trimmed)


def write_record(site_packages: Path, record_path: str) -> None:
    """Rewrite the wheel's RECORD so that it lists exactly the files the layer ships."""
    lines = []
    for path in sorted(p for p in site_packages.rglob("*") if p.is_file()):
        name = path.relative_to(site_packages).as_posix()
        if name != record_path:
            data = path.read_bytes()
            lines.append(f"{name},{_record_hash(data)},{len(data)}")
    (site_packages / record_path).write_text("\n".join(lines + [f"{record_path},,"]) + "\n", encoding="utf-8")


# -- bytecode --------------------------------------------------------------------------------------

# Runs inside each runtime's interpreter. Unchecked-hash pycs hold no mtime and the recorded file name is
# the path under /opt, so the bytes do not depend on where or when the build ran. coverage.py's modules
# lose their docstrings (nothing reads them; asserts and everything else stay) to fit the size budget.
_COMPILE_SCRIPT = r"""
import ast, importlib.util, json, marshal, os, sys

class DropDocstrings(ast.NodeTransformer):
    def drop(self, node):
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            if len(node.body) > 1:
                del node.body[0]
            else:
                node.body[0] = ast.copy_location(ast.Pass(), first)
        return node
    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = drop

want, jobs = json.load(sys.stdin)
if "%d.%d" % sys.version_info[:2] != want:
    sys.exit("interpreter is %d.%d, expected %s" % (sys.version_info[:2] + (want,)))
for source, target, display, strip_docstrings in jobs:
    with open(source, "rb") as handle:
        data = handle.read()
    tree = ast.parse(data, filename=display)
    if strip_docstrings:
        tree = ast.fix_missing_locations(DropDocstrings().visit(tree))
    code = compile(tree, display, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + importlib.util.source_hash(data)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as handle:
        handle.write(header + marshal.dumps(code))
"""


@dataclass(frozen=True)
class CompileJob:
    """One module to compile: its source in the staging tree, the pyc to write, the path it has under /opt."""

    source: Path
    target: Path
    display: str
    strip_docstrings: bool


def package_jobs(tree: Path, runtime: str, sources: Sequence[str]) -> list[CompileJob]:
    """coverage_wrapper: sources stay, pycs go to `__pycache__/*.cpython-3X.pyc` beside them."""
    jobs = []
    for relative in sources:
        directory, _, filename = relative.rpartition("/")
        pyc = f"{directory}/__pycache__/{filename[:-3]}.cpython-{runtime_tag(runtime)}.pyc"
        jobs.append(CompileJob(tree / relative, tree / pyc, f"/opt/{relative}", False))
    return jobs


def sourceless_jobs(tree: Path, runtime: str) -> list[CompileJob]:
    """coverage.py in a runtime's own site-packages: each module's pyc replaces its source (`control.pyc`)."""
    site_packages = tree / _site_packages(runtime)
    return [
        CompileJob(path, path.with_suffix(".pyc"), f"/opt/{path.relative_to(tree).as_posix()}", True)
        for path in sorted(site_packages.rglob("*.py"))
    ]


def compile_bytecode(interpreter: Path, runtime: str, jobs: Sequence[CompileJob]) -> None:
    """Compile the jobs with the runtime's own interpreter (bytecode differs between Python versions)."""
    payload = [[str(j.source), str(j.target), j.display, j.strip_docstrings] for j in jobs]
    done = subprocess.run(
        [str(interpreter), "-S", "-s", "-c", _COMPILE_SCRIPT],
        input=json.dumps([runtime, payload]),
        capture_output=True,
        text=True,
        # set literals are marshalled in hash order: a fixed seed keeps the pycs identical between builds
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        check=False,
    )
    if done.returncode != 0:
        raise LayerBuildError(f"python{runtime} ({interpreter}) could not compile the layer: {_last_line(done.stderr)}")


# -- assembling and zipping -------------------------------------------------------------------------


def _copy_layer_sources(tree: Path) -> list[str]:
    """The shared pure-Python package and the two executables; returns the package's .py files."""
    package = tree / "python" / "coverage_wrapper"
    shutil.copytree(
        LAYER_SRC / "coverage_wrapper", package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    )
    for relative in EXECUTABLES:
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LAYER_SRC / relative, tree / relative)
    return sorted(p.relative_to(tree).as_posix() for p in package.rglob("*.py"))


def _entry_mode(arcname: str) -> int:
    if arcname in EXECUTABLES or arcname.endswith(".so"):
        return 0o755
    return 0o644


def write_deterministic_zip(tree: Path, target: Path) -> None:
    """Zip a tree with sorted entries, a fixed timestamp, fixed permissions and maximum compression."""
    names = []
    for path in tree.rglob("*"):
        relative = path.relative_to(tree).as_posix()
        names.append(relative + "/" if path.is_dir() else relative)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(scratch, "w") as archive:
        for arcname in sorted(names):
            info = zipfile.ZipInfo(arcname, ZIP_DATE_TIME)
            info.create_system = 3  # Unix, so unzip and Lambda honour the permission bits
            if arcname.endswith("/"):
                info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | _entry_mode(arcname)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, (tree / arcname).read_bytes(), compresslevel=9)
    os.replace(scratch, target)


@dataclass
class BuiltZip:
    """One built layer zip."""

    architecture: str
    path: Path
    size: int
    sha256: str


@dataclass
class BuildResult:
    """What `build` produced and what it could not do (a missing interpreter means no bytecode for it)."""

    version: str
    zips: list[BuiltZip] = field(default_factory=list)
    without_bytecode: list[str] = field(default_factory=list)


def build(
    dist: Path = DEFAULT_DIST,
    wheel_cache: Path = DEFAULT_WHEEL_CACHE,
    architectures: Sequence[str] = tuple(ARCHITECTURES),
    write_latest: bool = True,
) -> BuildResult:
    """Build one zip per architecture into `dist`; the same inputs give byte-identical zips."""
    version = layer_version()
    wheel_cache.mkdir(parents=True, exist_ok=True)
    dist.mkdir(parents=True, exist_ok=True)
    arches = [ARCHITECTURES[name] for name in architectures]
    pairs = [(runtime, arch) for arch in arches for runtime in RUNTIMES]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        wheels = dict(zip(pairs, pool.map(lambda pair: ensure_wheel(wheel_cache, *pair), pairs)))
    interpreters = {runtime: find_interpreter(runtime) for runtime in RUNTIMES}
    result = BuildResult(version, without_bytecode=[r for r in RUNTIMES if interpreters[r] is None])
    with tempfile.TemporaryDirectory(prefix="layer-build-") as scratch:
        trees = {arch.name: Path(scratch) / arch.name for arch in arches}
        package_sources: list[str] = []
        records: dict[tuple[str, str], str] = {}
        trimmed: dict[str, list[str]] = {}
        for arch in arches:
            package_sources = _copy_layer_sources(trees[arch.name])
            for runtime in RUNTIMES:
                site_packages = trees[arch.name] / _site_packages(runtime)
                records[runtime, arch.name], trimmed[runtime] = unpack_wheel(wheels[runtime, arch], site_packages)

        def compile_runtime(runtime: str) -> None:
            interpreter = interpreters[runtime]
            if interpreter is None:
                return
            jobs = [job for tree in trees.values() for job in package_jobs(tree, runtime, package_sources)]
            coverage_jobs = [job for tree in trees.values() for job in sourceless_jobs(tree, runtime)]
            compile_bytecode(interpreter, runtime, jobs + coverage_jobs)
            for job in coverage_jobs:
                job.source.unlink()

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(RUNTIMES)) as pool:
            list(pool.map(compile_runtime, RUNTIMES))
        for arch in arches:
            tree = trees[arch.name]
            for runtime in RUNTIMES:
                write_record(tree / _site_packages(runtime), records[runtime, arch.name])
            manifest = _manifest(version, arch, architectures, wheels, interpreters, trimmed)
            (tree / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            target = dist / zip_name(version, arch.name)
            write_deterministic_zip(tree, target)
            if write_latest:
                shutil.copyfile(target, dist / zip_name("latest", arch.name))
            data = target.read_bytes()
            result.zips.append(BuiltZip(arch.name, target, len(data), hashlib.sha256(data).hexdigest()))
    return result


def _site_packages(runtime: str) -> str:
    return f"python/lib/python{runtime}/site-packages"


def _manifest(
    version: str,
    arch: Architecture,
    architectures: Sequence[str],
    wheels: dict[tuple[str, Architecture], Path],
    interpreters: dict[str, Path | None],
    trimmed: dict[str, list[str]],
) -> dict[str, Any]:
    runtimes = {}
    for runtime in RUNTIMES:
        wheel = wheels[runtime, arch]
        runtimes[f"python{runtime}"] = {
            "coverage": COVERAGE_PINS[runtime],
            "wheel": wheel.name,
            "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "site_packages": _site_packages(runtime),
            "c_tracer": f"coverage/tracer.cpython-{runtime_tag(runtime)}-{arch.machine}-linux-gnu.so",
            "bytecode": interpreters[runtime] is not None,
            "coverage_modules": "bytecode" if interpreters[runtime] is not None else "source",
            "trimmed_from_coverage": trimmed[runtime],
        }
    return {
        "layer": LAYER_NAME,
        "layer_version": version,
        "architecture": arch.name,
        "architectures": sorted(architectures),
        "compatible_runtimes": [f"python{r}" for r in RUNTIMES],
        "runtimes": runtimes,
        "html_reporter_assets": "complete",
        "trimmed_from_coverage": TRIMMED_FROM_COVERAGE,
        "bytecode": (
            "unchecked-hash pycs compiled by each runtime's own interpreter: coverage_wrapper keeps its sources "
            "with __pycache__/*.cpython-3X.pyc beside them; coverage.py ships as sourceless pycs (module.pyc, "
            "docstrings removed) in each runtime's site-packages, which keeps five runtimes within the size budget"
        ),
        "exec_wrapper": f"/opt/{EXEC_WRAPPER}",
        "extension": f"/opt/{EXTENSION}",
    }


# -- validation: structure ---------------------------------------------------------------------------


def _elf_machine(data: bytes) -> int | None:
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


def check_structure(zip_path: Path, max_bytes: int = MAX_ZIP_BYTES) -> list[str]:
    """Everything that can be checked without running the layer; returns the problems found (empty = fine)."""
    problems: list[str] = []
    size = zip_path.stat().st_size
    if size > max_bytes:
        problems.append(f"zip is {size} bytes, over the budget of {max_bytes} bytes")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        return problems + [f"not a readable zip: {exc}"]
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        damaged = archive.testzip()
        if damaged:
            problems.append(f"{damaged}: CRC mismatch")
        for name in infos:
            if name.startswith("/") or ".." in name.split("/"):
                problems.append(f"{name}: path escapes the layer root")
        if MANIFEST_NAME not in infos:
            return problems + [f"{MANIFEST_NAME} is missing"]
        try:
            manifest = json.loads(archive.read(MANIFEST_NAME))
        except ValueError as exc:
            return problems + [f"{MANIFEST_NAME} is not JSON: {exc}"]
        problems += _check_manifest_and_files(archive, infos, manifest)
    return problems


def _check_manifest_and_files(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], manifest: dict) -> list[str]:
    problems: list[str] = []
    arch = ARCHITECTURES.get(manifest.get("architecture", ""))
    if arch is None:
        return [f"{MANIFEST_NAME}: unknown architecture {manifest.get('architecture')!r}"]
    version_entry = "python/coverage_wrapper/_version.py"
    if version_entry in infos:
        found = re.search(r'__version__ = "([^"]+)"', archive.read(version_entry).decode())
        if not found or found.group(1) != manifest.get("layer_version"):
            problems.append(f"{MANIFEST_NAME}: layer_version does not match {version_entry}")
    expected_package = sorted(
        "python/" + p.relative_to(LAYER_SRC).as_posix()
        for p in (LAYER_SRC / "coverage_wrapper").rglob("*.py")
        if "__pycache__" not in p.parts
    )
    for name in expected_package:
        if name not in infos:
            problems.append(f"{name} is missing (rebuild after changing layer_src)")
    for name in EXECUTABLES:
        info = infos.get(name)
        if info is None:
            problems.append(f"{name} is missing")
            continue
        mode = info.external_attr >> 16
        if info.create_system != 3 or not stat.S_ISREG(mode) or mode & 0o111 != 0o111:
            problems.append(f"{name} is not executable in the zip (mode {oct(mode)}); Lambda would not run it")
        if not archive.read(name).startswith(b"#!"):
            problems.append(f"{name} has no #! line")
    runtimes = manifest.get("runtimes", {})
    for runtime in RUNTIMES:
        label = f"python{runtime}"
        if label not in runtimes or label not in manifest.get("compatible_runtimes", []):
            problems.append(f"{MANIFEST_NAME}: {label} is not listed")
            continue
        problems += _check_runtime_files(archive, infos, runtime, runtimes[label], arch, expected_package)
    return problems


def _check_runtime_files(
    archive: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    runtime: str,
    entry: dict,
    arch: Architecture,
    package_sources: list[str],
) -> list[str]:
    problems: list[str] = []
    site = _site_packages(runtime)
    suffix = ".pyc" if entry.get("coverage_modules") == "bytecode" else ".py"
    needed = [f"coverage/{module}{suffix}" for module in ("__init__", "control", "collector", "sqldata", "html", "xmlreport")]
    needed += [f"coverage/htmlfiles/{name}" for name in ("style.css", "coverage_html.js", "index.html", "pyfile.html")]
    missing = [name for name in needed if f"{site}/{name}" not in infos]
    if missing:
        return [f"python{runtime}: coverage.py is missing from {site} ({', '.join(missing[:3])}, ...)"]
    metadata = f"{site}/coverage-{entry.get('coverage')}.dist-info/METADATA"
    if metadata not in infos:
        problems.append(f"python{runtime}: {metadata} is missing (coverage version differs from the manifest?)")
    tracer = f"{site}/coverage/tracer.cpython-{runtime_tag(runtime)}-{arch.machine}-linux-gnu.so"
    if tracer not in infos:
        problems.append(f"python{runtime}: coverage.py's C tracer {tracer} is missing")
    elif _elf_machine(archive.read(tracer)) != arch.elf_machine:
        problems.append(f"python{runtime}: {tracer} is not an {arch.machine} shared object")
    if entry.get("bytecode"):
        pycs = [f"{d}/__pycache__/{f[:-3]}.cpython-{runtime_tag(runtime)}.pyc" for d, _, f in (s.rpartition("/") for s in package_sources)]
        pycs += sorted(n for n in infos if n.startswith(f"{site}/") and n.endswith(".pyc"))
        for pyc in pycs:
            if pyc not in infos:
                problems.append(f"python{runtime}: bytecode {pyc} is missing")
                break
            if archive.read(pyc)[4:8] != b"\x01\x00\x00\x00":
                problems.append(f"python{runtime}: {pyc} is not an unchecked-hash pyc")
                break
    return problems


# -- validation: running the layer ---------------------------------------------------------------------


def extract_as_opt(zip_path: Path, opt: Path) -> None:
    """Unpack a layer zip the way Lambda does into /opt: with the permission bits the zip records."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = opt / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)


_FUNCTION_ZERO_CODE = '''"""Imitates user code that knows nothing of the layer."""
import os

GREETING = "hello from " + os.path.basename(__file__)


def handler(event, context):
    return {"greeting": GREETING, "n": event["n"]}
'''
_ZERO_CODE_MODULE_LINES = {2, 4, 7}  # import, assignment, def: they run only at import time
_ZERO_CODE_BODY_LINES = {8}

_FUNCTION_DECORATED = '''"""Imitates a function that uses the seed's decorator."""
from coverage_wrapper import coverage_handler


@coverage_handler
def handler(event, context):
    if event.get("fail"):
        raise LookupError(event["fail"])
    return event["payload"]
'''
_DECORATED_BODY_LINES = {7, 9}

# Stand-ins that make "was boto3 imported?" a real question inside an interpreter without site-packages.
_STUBS = {
    "boto3/__init__.py": '"""Validation stand-in: importing it is what the check looks for."""\n',
    "botocore/__init__.py": '"""Validation stand-in: importing it is what the check looks for."""\n',
    "botocore/session.py": (
        '"""Validation stand-in: no AWS here."""\n\n\ndef get_session():\n'
        '    raise RuntimeError("validation stand-in: no AWS")\n'
    ),
    "botocore/config.py": '"""Validation stand-in."""\n\n\nclass Config:\n    def __init__(self, **kwargs):\n        pass\n',
}

# Runs in the runtime's interpreter with -I -S: only the stdlib, the layer dirs, the function dir and stubs.
_DECORATED_SCRIPT = r"""
import glob, importlib.util, json, os, sys
opt, function_dir, stubs, outbox = sys.argv[1:5]
expect_bytecode = sys.argv[5] == "bytecode"
site_packages = os.path.join(opt, "python", "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
sys.path[:0] = [function_dir, site_packages, os.path.join(opt, "python"), stubs]
report = {"problems": [], "flush_files": []}
aws = ("boto3", "botocore")

def pending():
    return sorted(glob.glob(os.path.join(outbox, "pending", "*.coverage")))

try:
    import coverage_wrapper
    import fn_decorated
    import coverage
    report["coverage"] = coverage.__version__
    if not os.path.realpath(coverage.__file__).startswith(os.path.realpath(opt) + os.sep):
        report["problems"].append("coverage was imported from %s, not from the layer" % coverage.__file__)
    for n in (1, 2, 3):
        payload = {"n": n}
        result = fn_decorated.handler({"payload": payload}, None)
        if result is not payload:
            report["problems"].append("invocation %d: the handler's result did not pass through" % n)
        imported = [name for name in aws if name in sys.modules]
        if n == 1 and imported:
            report["problems"].append("invocation 1 (no flush) imported %s" % ", ".join(imported))
        if n == 2:
            report["flush_files"] = pending()
            if not report["flush_files"]:
                report["problems"].append("invocation 2 should have flushed a data file into the outbox")
    failure = LookupError("passes through")
    try:
        fn_decorated.handler({"fail": failure}, None)
        report["problems"].append("the handler's exception was swallowed")
    except LookupError as exc:
        if exc.args != (failure,):
            report["problems"].append("the handler's exception changed on the way out")
    from coverage.tracer import CTracer
    if report["flush_files"]:
        reports = os.path.join(os.path.dirname(outbox), "reports")
        reader = coverage.Coverage(data_file=report["flush_files"][0], config_file=False)
        reader.load()
        reader.html_report(directory=os.path.join(reports, "html"))
        reader.xml_report(outfile=os.path.join(reports, "coverage.xml"))
        reader.json_report(outfile=os.path.join(reports, "coverage.json"))
        reader.lcov_report(outfile=os.path.join(reports, "lcov.info"))
        for made in ("html/index.html", "html/style*.css", "html/coverage_html*.js", "html/*fn_decorated_py.html",
                     "coverage.xml", "coverage.json", "lcov.info"):
            if not [p for p in glob.glob(os.path.join(reports, made)) if os.path.getsize(p)]:
                report["problems"].append("the report file %s is missing or empty" % made)
    pycs = glob.glob(os.path.join(opt, "python", "coverage_wrapper", "**", "*.%s.pyc" % sys.implementation.cache_tag), recursive=True)
    pycs += glob.glob(os.path.join(site_packages, "**", "*.pyc"), recursive=True)
    stale = [p for p in pycs if open(p, "rb").read(4) != importlib.util.MAGIC_NUMBER]
    if not pycs and expect_bytecode:
        report["problems"].append("no bytecode for this interpreter in the layer")
    if stale:
        report["problems"].append("%d pycs do not match this interpreter's magic number, e.g. %s" % (len(stale), stale[0]))
except Exception as exc:
    import traceback
    report["problems"].append("".join(traceback.format_exception_only(type(exc), exc)).strip())
print("LAYER-VALIDATION " + json.dumps(report))
"""

# The Lambda runtime's bootstrap, reduced to what matters here: import _HANDLER's module, call it once.
_BOOTSTRAP_IMITATION = (
    "import importlib, json, os; "
    "module, _, name = os.environ['_HANDLER'].rpartition('.'); "
    "handler = getattr(importlib.import_module(module), name); "
    "print('LAYER-VALIDATION ' + json.dumps({'result': handler({'n': 1}, None), '_HANDLER': os.environ['_HANDLER']}))"
)


@dataclass
class RuntimeCheck:
    """How the layer behaved in one local interpreter."""

    runtime: str
    interpreter: str
    problems: list[str] = field(default_factory=list)
    coverage: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _report_line(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith("LAYER-VALIDATION "):
            return json.loads(line[len("LAYER-VALIDATION ") :])
    return None


def _measured_lines(data_files: Sequence[str], module_file: str) -> set[int]:
    import coverage

    lines: set[int] = set()
    for data_file in data_files:
        data = coverage.CoverageData(basename=data_file)
        try:
            data.read()
        except coverage.CoverageException:
            continue  # an unreadable file measured nothing; the caller reports the missing lines
        for measured in data.measured_files():
            if measured.endswith("/" + module_file):
                lines |= set(data.lines(measured) or ())
    return lines


def _base_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
    env.update(extra)
    return env


def _run(command: Sequence[str], work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=work, env=env, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, -1, "", "timed out after 120 s")


def _check_decorated(opt: Path, runtime: str, interpreter: Path, work: Path, check: RuntimeCheck) -> None:
    """`@coverage_handler` in an interpreter without site-packages: passthrough, no boto3, a flush, reports."""
    manifest = json.loads((opt / MANIFEST_NAME).read_text(encoding="utf-8"))
    bytecode = "bytecode" if manifest["runtimes"][f"python{runtime}"].get("bytecode") else "source"
    function_dir, stubs, outbox = work / "decorated", work / "stubs", work / "outbox-decorated"
    function_dir.mkdir(parents=True, exist_ok=True)
    (function_dir / "fn_decorated.py").write_text(_FUNCTION_DECORATED)
    for relative, text in _STUBS.items():
        (stubs / relative).parent.mkdir(parents=True, exist_ok=True)
        (stubs / relative).write_text(text)
    done = _run(
        [str(interpreter), "-I", "-S", "-c", _DECORATED_SCRIPT, str(opt), str(function_dir), str(stubs), str(outbox), bytecode],
        work,
        _base_env(
            COVERAGE_SOURCE_ROOT=str(function_dir), COVERAGE_OUTBOX_DIR=str(outbox),
            COVERAGE_FLUSH_INVOCATIONS="2", COVERAGE_S3_BUCKET="layer-validation-bucket",
            AWS_LAMBDA_FUNCTION_NAME="layer-validation",
        ),
    )  # fmt: skip
    report = _report_line(done.stdout)
    if report is None:
        check.problems.append(f"decorator run crashed (exit {done.returncode}): {_last_line(done.stderr)}")
        return
    check.coverage = report.get("coverage", "")
    check.problems += [f"decorator: {problem}" for problem in report["problems"]]
    if report["flush_files"]:
        lines = _measured_lines(report["flush_files"], "fn_decorated.py")
        if not _DECORATED_BODY_LINES <= lines:
            check.problems.append(f"decorator: handler lines {sorted(_DECORATED_BODY_LINES)} not measured (got {sorted(lines)})")


def _check_zero_code(opt: Path, runtime: str, interpreter: Path, work: Path, check: RuntimeCheck) -> None:
    """The exec wrapper around an imitation of the runtime's bootstrap: the handler module's init is measured."""
    function_dir, outbox = work / "zero_code", work / "outbox-zero-code"
    function_dir.mkdir(parents=True, exist_ok=True)
    (function_dir / "fn.py").write_text(_FUNCTION_ZERO_CODE)
    lambda_path = [function_dir, opt / _site_packages(runtime), opt / "python"]  # what Lambda puts on PYTHONPATH
    done = _run(
        [str(opt / EXEC_WRAPPER), str(interpreter), "-s", "-c", _BOOTSTRAP_IMITATION],
        work,
        _base_env(
            _HANDLER="fn.handler", LAMBDA_TASK_ROOT=str(function_dir),
            PYTHONPATH=os.pathsep.join(str(p) for p in lambda_path),
            COVERAGE_SOURCE_ROOT=str(function_dir), COVERAGE_OUTBOX_DIR=str(outbox),
            COVERAGE_FLUSH_INVOCATIONS="1", AWS_LAMBDA_FUNCTION_NAME="layer-validation-zero-code",
        ),
    )  # fmt: skip
    report = _report_line(done.stdout)
    if done.returncode != 0 or report is None:
        check.problems.append(f"zero-code run failed (exit {done.returncode}): {_last_line(done.stderr)}")
        return
    if report["result"] != {"greeting": "hello from fn.py", "n": 1}:
        check.problems.append(f"zero-code: unexpected handler result {report['result']!r}")
    if report["_HANDLER"] != "coverage_wrapper.instrument.handler":
        check.problems.append("zero-code: the exec wrapper did not take over _HANDLER")
    lines = _measured_lines([str(p) for p in sorted((outbox / "pending").glob("*.coverage"))], "fn.py")
    if not _ZERO_CODE_MODULE_LINES | _ZERO_CODE_BODY_LINES <= lines:
        check.problems.append(
            f"zero-code: module-level lines {sorted(_ZERO_CODE_MODULE_LINES)} and handler line "
            f"{sorted(_ZERO_CODE_BODY_LINES)} of fn.py should be measured (got {sorted(lines)})"
        )


def _check_extension(opt: Path, interpreter: Path, work: Path, check: RuntimeCheck) -> None:
    """The extension finds coverage_wrapper from the layer and explains that it needs the Extensions API."""
    done = _run([str(interpreter), "-I", "-S", str(opt / EXTENSION)], work, _base_env())
    if done.returncode != 1 or "AWS_LAMBDA_RUNTIME_API is not set" not in done.stdout:
        check.problems.append(
            f"extension did not start from the layer (exit {done.returncode}): {_last_line(done.stderr or done.stdout)}"
        )


def check_runtime(opt: Path, runtime: str, interpreter: Path, work: Path) -> RuntimeCheck:
    """Run the extracted layer in one interpreter: decorator, zero-code mode and the extension's start."""
    check = RuntimeCheck(runtime, str(interpreter))
    work.mkdir(parents=True, exist_ok=True)
    _check_decorated(opt, runtime, interpreter, work, check)
    _check_zero_code(opt, runtime, interpreter, work, check)
    _check_extension(opt, interpreter, work, check)
    return check


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def host_architecture() -> str | None:
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)


@dataclass
class ValidationReport:
    """Structure problems per zip and the runtime checks of the zip that matches this machine."""

    structure: dict[str, list[str]] = field(default_factory=dict)
    runtime_checks: list[RuntimeCheck] = field(default_factory=list)
    missing_interpreters: list[str] = field(default_factory=list)
    runtime_zip: str = ""

    @property
    def ok(self) -> bool:
        return not any(self.structure.values()) and all(check.ok for check in self.runtime_checks)


def validate(zips: Sequence[Path], run_layer: bool = True) -> ValidationReport:
    """Check every zip's structure, then run the one built for this machine's architecture in each local Python."""
    report = ValidationReport()
    for path in zips:
        report.structure[str(path)] = check_structure(path)
    if not run_layer:
        return report
    host = host_architecture()
    runnable = [p for p in zips if _zip_architecture(p) == host and not report.structure[str(p)]]
    if not runnable:
        return report
    report.runtime_zip = str(runnable[0])
    interpreters = {runtime: find_interpreter(runtime) for runtime in RUNTIMES}
    report.missing_interpreters = [r for r, path in interpreters.items() if path is None]
    with tempfile.TemporaryDirectory(prefix="layer-validate-") as scratch:
        opt = Path(scratch) / "opt"
        extract_as_opt(runnable[0], opt)
        available = [(r, p) for r, p in interpreters.items() if p is not None]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(RUNTIMES)) as pool:
            futures = {r: pool.submit(check_runtime, opt, r, p, Path(scratch) / f"work-{r}") for r, p in available}
            for (runtime, interpreter), future in zip(available, futures.values()):
                try:
                    report.runtime_checks.append(future.result())
                except Exception as exc:  # a check that breaks is a failed check, reported like the others
                    report.runtime_checks.append(RuntimeCheck(runtime, str(interpreter), [f"check crashed: {exc!r}"]))
    return report


def _zip_architecture(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(MANIFEST_NAME)).get("architecture")
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None


def current_zips(dist: Path = DEFAULT_DIST) -> list[Path]:
    """This version's zips in `dist`, one per architecture, those that exist."""
    version = layer_version()
    return [dist / zip_name(version, arch) for arch in ARCHITECTURES if (dist / zip_name(version, arch)).is_file()]


# -- deploy -----------------------------------------------------------------------------------------


def deploy(region: str, dist: Path = DEFAULT_DIST, layer_name: str = LAYER_NAME) -> list[dict[str, Any]]:
    """Publish each architecture's zip as a new version of `{layer_name}-{arch}` (publish-layer-version semantics)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .credentials import has_credentials

    session = boto3.Session(region_name=region)
    if not has_credentials():
        raise LayerBuildError(
            "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); nothing was published"
        )
    try:
        identity = session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise LayerBuildError(f"AWS rejected the credentials or is unreachable ({exc}); nothing was published") from None
    zips = current_zips(dist)
    if len(zips) != len(ARCHITECTURES):
        build(dist)
        zips = current_zips(dist)
    problems = {str(p): found for p, found in ((p, check_structure(p)) for p in zips) if found}
    if problems:
        raise LayerBuildError(f"refusing to publish invalid zips: {problems}")
    client = session.client("lambda")
    published = []
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
        coverage_versions = ", ".join(f"{r} {e['coverage']}" for r, e in manifest["runtimes"].items())
        try:
            answer = client.publish_layer_version(
                LayerName=f"{layer_name}-{manifest['architecture']}",
                Description=f"Lambda Coverage Layer {manifest['layer_version']} (coverage.py: {coverage_versions})"[:256],
                Content={"ZipFile": path.read_bytes()},
                CompatibleRuntimes=manifest["compatible_runtimes"],
                CompatibleArchitectures=[manifest["architecture"]],
                LicenseInfo="MIT",
            )
        except (BotoCoreError, ClientError) as exc:
            raise LayerBuildError(f"publishing {path.name} failed in {region} as {identity.get('Arn')}: {exc}") from None
        published.append(
            {
                "architecture": manifest["architecture"],
                "layer_version_arn": answer["LayerVersionArn"],
                "version": answer["Version"],
                "region": region,
            }
        )
    return published


# -- command line -----------------------------------------------------------------------------------


def _print_validation(report: ValidationReport) -> None:
    for path, problems in report.structure.items():
        state = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"structure  {Path(path).name}: {state} ({Path(path).stat().st_size} bytes)")
        for problem in problems:
            print(f"  - {problem}")
    if report.runtime_zip:
        print(f"runtime    {Path(report.runtime_zip).name} extracted as /opt:")
    for check in report.runtime_checks:
        state = "ok" if check.ok else "FAILED"
        print(f"  python{check.runtime} ({check.interpreter}, coverage {check.coverage or '?'}): {state}")
        for problem in check.problems:
            print(f"    - {problem}")
    for runtime in report.missing_interpreters:
        print(f"  python{runtime}: no local interpreter, not run")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.layer_build", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build one zip per architecture into dist/")
    build_cmd.add_argument("--dist", type=Path, default=DEFAULT_DIST)
    build_cmd.add_argument("--wheel-cache", type=Path, default=DEFAULT_WHEEL_CACHE)
    validate_cmd = commands.add_parser("validate", help="check the zips and run the layer in each local Python")
    validate_cmd.add_argument("zips", nargs="*", type=Path, help="zips to check (default: this version's in --dist)")
    validate_cmd.add_argument("--dist", type=Path, default=DEFAULT_DIST)
    validate_cmd.add_argument("--build-if-missing", action="store_true")
    validate_cmd.add_argument("--structure-only", action="store_true", help="do not run the layer")
    deploy_cmd = commands.add_parser("deploy", help="publish the zips as Lambda layer versions")
    deploy_cmd.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    deploy_cmd.add_argument("--dist", type=Path, default=DEFAULT_DIST)
    deploy_cmd.add_argument("--layer-name", default=LAYER_NAME)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            result = build(args.dist, args.wheel_cache)
            for built in result.zips:
                print(f"{built.path}  {built.size} bytes  sha256 {built.sha256}")
            for runtime in result.without_bytecode:
                print(f"warning: no local python{runtime}: its bytecode is not in the zips (install it with pyenv)")
            return 0
        if args.command == "validate":
            zips = list(args.zips) or current_zips(args.dist)
            if not args.zips and len(zips) < len(ARCHITECTURES) and args.build_if_missing:
                build(args.dist)
                zips = current_zips(args.dist)
            if not zips:
                raise LayerBuildError(f"no layer zips for version {layer_version()} in {args.dist}: run `make build` first")
            report = validate(zips, run_layer=not args.structure_only)
            _print_validation(report)
            if not report.ok:
                print("make validate: the layer is NOT valid (see the problems above)", file=sys.stderr)
                return 1
            print("make validate: all checks passed")
            return 0
        published = deploy(args.region, args.dist, args.layer_name)
        for layer in published:
            print(json.dumps(layer))
        return 0
    except LayerBuildError as exc:
        print(f"make {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
