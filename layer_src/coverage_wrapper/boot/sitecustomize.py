"""Zero-code mode's first step: make the layer importable wherever the exec wrapper runs a Python.

The exec wrapper puts this directory first on PYTHONPATH. Lambda puts the layer on the path itself;
elsewhere (a local run of the wrapper) this adds it. Measuring starts later, as the runtime imports the
handler the wrapper named (`coverage_wrapper.instrument`), so neither the interpreter's start nor the
runtime's own loading is measured. The next `sitecustomize` on the path (if any) is imported too, so an
existing one keeps working.
"""

import importlib
import os
import sys


def _find_the_layer() -> None:
    boot_dir = os.path.dirname(os.path.abspath(__file__))
    package_parent = os.path.dirname(os.path.dirname(boot_dir))
    version_dir = os.path.join(package_parent, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    for path in (package_parent, version_dir):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)


def _chain_next_sitecustomize() -> None:
    boot_dir = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != boot_dir]
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if ours is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = ours


_find_the_layer()
_chain_next_sitecustomize()
