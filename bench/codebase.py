"""A generated function codebase of realistic size for the cold-start benchmark: a handler and its own package.

The same arguments always give the same files (no clock, no unseeded randomness), so runs compare.
Each module reads like service code: an enum, a dataclass, a repository class, validation with
if/elif chains, loops with break/continue/else, try/except/else/finally, `with`, comprehensions, a
generator, a decorator, a match statement and early returns. The handler imports every module at
init, as an application importing its package does, and each request runs a few of them.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

PACKAGE = "storefront"
HANDLER_MODULE = "app"


def module_source(index: int) -> str:
    """One module of the package, about 200 lines."""
    rng = random.Random(index)
    noun = rng.choice(["order", "invoice", "shipment", "refund", "basket", "voucher", "payment", "review"])
    Noun = noun.capitalize()
    low, high = rng.randint(1, 20), rng.randint(50, 500)
    rate = rng.choice([1.05, 1.07, 1.19, 1.2, 1.21])
    retries = rng.randint(2, 5)
    return textwrap.dedent(f'''\
        """{Noun} handling, module {index} of the generated storefront package."""

        from __future__ import annotations

        import enum
        import functools
        import json
        import time
        from dataclasses import dataclass, field
        from typing import Iterable, Iterator

        MODULE_INDEX = {index}
        LOW_LIMIT = {low}
        HIGH_LIMIT = {high}
        TAX_RATE = {rate}
        MAX_RETRIES = {retries}
        REGIONS = {{"eu": ("de", "fr", "it", "es"), "us": ("us",), "apac": ("jp", "au", "sg")}}


        class Status(enum.Enum):
            NEW = "new"
            ACCEPTED = "accepted"
            REJECTED = "rejected"
            SHIPPED = "shipped"


        class {Noun}Error(Exception):
            """A {noun} that cannot be processed."""


        def timed(func):
            """Records how long the wrapped call took on the result."""

            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                began = time.perf_counter()
                result = func(*args, **kwargs)
                if isinstance(result, dict):
                    result["elapsed_us"] = int((time.perf_counter() - began) * 1e6)
                return result

            return wrapper


        @dataclass
        class Line:
            sku: str
            quantity: int
            unit_price: float

            @property
            def amount(self) -> float:
                return round(self.quantity * self.unit_price, 2)


        @dataclass
        class {Noun}:
            identifier: str
            country: str
            lines: list[Line] = field(default_factory=list)
            status: Status = Status.NEW
            notes: list[str] = field(default_factory=list)

            def region(self) -> str:
                for region, countries in REGIONS.items():
                    if self.country in countries:
                        return region
                else:
                    return "other"

            def subtotal(self) -> float:
                return round(sum(line.amount for line in self.lines if line.quantity > 0), 2)

            def total(self) -> float:
                subtotal = self.subtotal()
                if self.region() == "eu":
                    return round(subtotal * TAX_RATE, 2)
                elif self.region() == "us":
                    return round(subtotal * 1.0825, 2)
                return subtotal


        class {Noun}Repository:
            """An in-memory store with the access pattern of a real one."""

            def __init__(self) -> None:
                self._items: dict[str, {Noun}] = {{}}
                self._writes = 0

            def get(self, identifier: str) -> {Noun} | None:
                return self._items.get(identifier)

            def put(self, item: {Noun}) -> None:
                attempt = 0
                while attempt < MAX_RETRIES:
                    attempt += 1
                    if self._writes % 97 == 96 and attempt == 1:
                        self._writes += 1
                        continue
                    self._items[item.identifier] = item
                    self._writes += 1
                    break

            def find(self, status: Status) -> Iterator[{Noun}]:
                for item in self._items.values():
                    if item.status is status:
                        yield item

            def __len__(self) -> int:
                return len(self._items)


        REPOSITORY = {Noun}Repository()


        def parse_lines(raw: Iterable[dict]) -> list[Line]:
            lines = []
            for entry in raw:
                try:
                    quantity = int(entry.get("quantity", 0))
                    price = float(entry.get("price", 0.0))
                except (TypeError, ValueError):
                    continue
                if quantity < 0:
                    raise {Noun}Error("negative quantity for " + str(entry.get("sku")))
                lines.append(Line(str(entry.get("sku", "?")), quantity, price))
            return lines


        def validate(item: {Noun}) -> list[str]:
            problems = []
            if not item.lines:
                problems.append("no lines")
            total = item.total()
            if total < LOW_LIMIT:
                problems.append("below minimum")
            elif total > HIGH_LIMIT:
                problems.append("needs review")
            if item.country not in {{c for countries in REGIONS.values() for c in countries}}:
                problems.append("unknown country")
            return problems


        def classify(item: {Noun}) -> str:
            match item.region():
                case "eu" if item.total() > HIGH_LIMIT:
                    return "eu-large"
                case "eu":
                    return "eu"
                case "us" | "apac":
                    return "export"
                case _:
                    return "manual"


        def decide(item: {Noun}) -> Status:
            problems = validate(item)
            if not problems:
                return Status.ACCEPTED
            if problems == ["needs review"] and item.region() != "other":
                item.notes.append("accepted after review")
                return Status.ACCEPTED
            item.notes.extend(problems)
            return Status.REJECTED


        def summarize(items: Iterable[{Noun}]) -> dict:
            by_status: dict[str, int] = {{}}
            largest = None
            for item in items:
                by_status[item.status.value] = by_status.get(item.status.value, 0) + 1
                if largest is None or item.total() > largest.total():
                    largest = item
            return {{
                "by_status": dict(sorted(by_status.items(), key=lambda pair: (-pair[1], pair[0]))),
                "largest": largest.identifier if largest else None,
            }}


        @timed
        def process(event: dict) -> dict:
            """Create, validate and store one {noun} from a request."""
            identifier = str(event.get("id", "{noun}-0"))
            existing = REPOSITORY.get(identifier)
            if existing is not None and existing.status is not Status.NEW:
                return {{"id": identifier, "status": existing.status.value, "cached": True}}
            try:
                lines = parse_lines(event.get("lines", []))
            except {Noun}Error as exc:
                return {{"id": identifier, "status": Status.REJECTED.value, "error": str(exc)}}
            else:
                item = {Noun}(identifier, event.get("country", "de"), lines)
            finally:
                event.setdefault("seen_by", []).append(MODULE_INDEX)
            item.status = decide(item)
            REPOSITORY.put(item)
            with _audit(identifier) as audit:
                audit.append(classify(item))
            return {{"id": identifier, "status": item.status.value, "total": item.total(), "notes": item.notes}}


        class _audit:
            """Collects audit entries for one {noun} and writes them out as one JSON line."""

            def __init__(self, identifier: str) -> None:
                self.identifier = identifier
                self.entries: list[str] = []

            def __enter__(self) -> list[str]:
                return self.entries

            def __exit__(self, *exc_info) -> bool:
                self.record = json.dumps({{"id": self.identifier, "entries": self.entries}})
                return False
        ''')


def handler_source(modules: int) -> str:
    """The function's handler module: imports the whole package at init, runs a few modules per request."""
    imports = "\n".join(f"from {PACKAGE} import mod{i:02d}" for i in range(modules))
    names = ", ".join(f"mod{i:02d}" for i in range(modules))
    return f'''"""Handler of the generated storefront function."""

{imports}

MODULES = ({names},)


def handler(event, context):
    seed = int(event.get("seed", 0))
    results = []
    for offset in range(3):
        module = MODULES[(seed * 7 + offset * 13) % len(MODULES)]
        results.append(module.process(dict(event, id=f"{{seed}}-{{offset}}")))
    return {{"statusCode": 200, "results": len(results), "accepted": sum(r["status"] == "accepted" for r in results)}}
'''


def write(root: Path, modules: int = 40) -> dict:
    """The handler module and the package under `root`; returns its size (modules, lines, bytes)."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    files = {package / "__init__.py": '"""The generated storefront package."""\n', root / f"{HANDLER_MODULE}.py": handler_source(modules)}
    for index in range(modules):
        files[package / f"mod{index:02d}.py"] = module_source(index)
    for path, text in files.items():
        path.write_text(text)
    return {"modules": modules, "files": len(files), "lines": sum(text.count("\n") for text in files.values()),
            "bytes": sum(len(text.encode()) for text in files.values())}


def events(count: int) -> list[dict]:
    """Requests for the generated handler, each running a different mix of modules."""
    countries = ("de", "fr", "us", "jp", "br")
    return [
        {"seed": n, "country": countries[n % len(countries)],
         "lines": [{"sku": f"sku-{n}-{k}", "quantity": (n + k) % 4, "price": 3.5 * (k + 1)} for k in range(n % 5 + 1)]}
        for n in range(count)
    ]
