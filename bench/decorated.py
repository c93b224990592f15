"""The `layer` variant's handler: a shape's handler under `@coverage_handler`, decorated as its module loads."""

import importlib
import os

from coverage_wrapper import coverage_handler

_module, _, _name = os.environ["BENCH_DECORATE"].rpartition(".")
handler = coverage_handler(getattr(importlib.import_module(_module), _name))
