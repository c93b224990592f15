"""`lambda_coverage`: the CLI, the CDK app and construct, the local emulation and the pipeline services.

In a checkout this package is the `infrastructure/` folder, with `services/` as `lambda_coverage.services`;
installed, the state machine definitions, the examples and the layer's scripts ship inside it.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """A folder of files the package ships that are not Python modules (`statemachine`, `examples`,
    `layer_src`): inside the package when installed, at the top of the repository in a checkout."""
    installed = _HERE / name
    return installed if installed.is_dir() else _HERE.parent / name
