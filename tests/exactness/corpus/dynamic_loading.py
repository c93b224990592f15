"""Modules loaded without a plain import: by file path through importlib, and reloaded."""

import importlib
import importlib.util
import os

PLUGIN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_dynamic_loading_plugin.py")


def load_plugin():
    spec = importlib.util.spec_from_file_location("exactness_plugin", PLUGIN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reload_self(module_name):
    module = importlib.import_module(module_name)
    if getattr(module, "RELOADED", False):
        return module
    module.RELOADED = True
    return importlib.reload(module)


def exercise() -> None:
    plugin = load_plugin()
    assert plugin.run({"fast": True}) == "fast"
    assert plugin.run({"other": 1}) == "slow"
    assert reload_self(__name__).RELOADED
