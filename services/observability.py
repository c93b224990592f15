"""Powertools wiring shared by the pipeline Lambdas: one Logger and Tracer per service, metrics in one namespace."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "LambdaCoverage"


def powertools(service: str) -> tuple[Logger, Tracer]:
    """Logger and Tracer for one service; the Tracer is a no-op under POWERTOOLS_TRACE_DISABLED."""
    return Logger(service=service), Tracer(service=service)


def publish(name: str, value: float, unit: MetricUnit, service: str, **dimensions: str) -> None:
    """Publish one metric in the LambdaCoverage namespace.

    `single_metric` keeps no state between calls, unlike `Metrics`, whose metric set is shared by
    every instance in the process: the local emulation runs Map iterations in parallel threads of
    one process, where a shared set would be flushed by whichever invocation ends first.
    """
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=service)
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)


def count(name: str, value: int, service: str) -> None:
    """Publish a positive count (zero counts are left out)."""
    if value > 0:
        publish(name, value, MetricUnit.Count, service)
