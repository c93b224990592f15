"""Module bodies: conditionals, loops, try and with at top level, `if __debug__`, `if False`, `if TYPE_CHECKING`."""

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

if sys.version_info >= (3, 12):
    FLAVOR = "modern"
else:
    FLAVOR = "legacy"

if os.environ.get("EXACTNESS_NEVER_SET"):
    MODE = "set"
elif sys.platform == "never":
    MODE = "never"
else:
    MODE = "default"

if __debug__:
    CHECKS = True

if not __debug__:
    CHECKS = False

if False:
    UNREACHABLE = True

if 0:
    ALSO_UNREACHABLE = True

if True:
    ALWAYS = 1

if 1:
    ONE = 1
else:
    NOT_ONE = 0

TOTAL = 0
for _n in range(3):
    if _n == 1:
        continue
    TOTAL += _n

_queue = [1, 2]
while _queue:
    _queue.pop()
else:
    DRAINED = True

try:
    import exactness_module_that_does_not_exist  # noqa: F401
except ImportError:
    OPTIONAL = None
else:
    OPTIONAL = True

with open(__file__, encoding="utf-8") as _source:
    FIRST_LINE = _source.readline()

if (count := len(FIRST_LINE)) > 1000:
    LONG = True

LABEL = "big" if TOTAL > 1 else "small"


def total(values: "Iterable[int]") -> int:
    result = 0
    for value in values:
        if value:
            result += value
    return result


def _main() -> None:
    print(total([1, 2]))


if __name__ == "__main__":
    _main()


def exercise() -> None:
    total([0, 1])
