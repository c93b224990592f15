"""Zero-code mode's first step: start measuring before the Lambda runtime imports the handler module.

The exec wrapper puts this directory first on PYTHONPATH. After starting, the next `sitecustomize` on
the path (if any) is imported too, so an existing one keeps working.
"""

import importlib
import os
import sys


def _start_measuring() -> None:
    boot_dir = os.path.dirname(os.path.abspath(__file__))
    package_parent = os.path.dirname(os.path.dirname(boot_dir))
    version_dir = os.path.join(package_parent, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    for path in (package_parent, version_dir):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    try:
        from coverage_wrapper.session import get_session

        get_session().start_continuous()
    except Exception as exc:  # never stop the runtime from starting
        sys.stdout.write('{"level": "ERROR", "message": "Coverage zero-code start failed", "error": %r}\n' % str(exc))


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


_start_measuring()
_chain_next_sitecustomize()
