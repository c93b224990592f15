"""The seed's five example functions and the events that exercise them: shared by the demo, the load tests and the CDK app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import data_dir

EXAMPLES_DIR = data_dir("examples")


@dataclass(frozen=True)
class Example:
    """One example function: its construct id (the seed's names), local name, folder, handler, mode and events."""

    construct_id: str
    function_name: str
    folder: str
    handler: str
    zero_code: bool
    description: str
    events: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def path(self) -> Path:
        return EXAMPLES_DIR / self.folder


EXAMPLES: tuple[Example, ...] = (
    Example(
        "SimpleCoverageExample", "simple-function", "simple_function", "handler.lambda_handler", False,
        "Coverage example: @coverage_handler decorator",
        ({"name": "TestUser"}, {"name": "world"}, {}, {"name": 42}, {"name": "ProductionTest"}),
    ),
    Example(
        "ContextManagerExample", "context-manager-function", "context_manager_function", "handler.lambda_handler", False,
        "Coverage example: CoverageContext around the business logic",
        ({"action": "check", "items": ["apple", "pear"]}, {"action": "update", "items": ["apple"]},
         {"action": "update", "items": ["pear"]}, {"action": "delete"}),
    ),
    Example(
        "HealthCheckExample", "health-check-function", "health_check_function", "handler.lambda_handler", False,
        "Coverage example: decorator with a /health route",
        ({"path": "/health"}, {"httpMethod": "GET", "queryStringParameters": {"q": "x"}},
         {"httpMethod": "POST", "body": "{\"sku\": \"A1\"}"}, {"httpMethod": "POST", "body": "not json"},
         {"httpMethod": "DELETE"}),
    ),
    Example(
        "CoverageCombiner", "coverage-combiner", "combiner_function", "handler.coverage_combiner_handler", False,
        "Coverage example: combine_coverage_files over a raw prefix",
        ({"function": "simple-function", "date": "today"}, {"prefix": "coverage/raw/nothing-here/"}),
    ),
    Example(
        "AdvancedUsageExample", "advanced-usage", "advanced_usage", "handler.lambda_handler", True,
        "Coverage example: zero-code via AWS_LAMBDA_EXEC_WRAPPER",
        ({"order": {"lines": [{"qty": 2, "price": 9.5}], "country": "FR", "discount": "welcome10"}},
         {"order": {"lines": [{"qty": 1, "price": 100}], "country": "US"}},
         {"order": {"lines": [{"qty": 0, "price": 1}]}}, {"order": {"lines": []}},
         {"order": {"lines": [{"qty": 1, "price": 5}], "discount": "BOGUS"}}, {"order": "nope"}),
    ),
)
