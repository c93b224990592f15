"""The embedded AWS emulation: moto on loopback running the pipeline's state machines and handlers."""

from .emulation import LOCAL_WINDOW_SECONDS, Endpoints, LocalAws
from .lambda_router import LambdaContext, LambdaRouter

__all__ = ["LOCAL_WINDOW_SECONDS", "Endpoints", "LambdaContext", "LambdaRouter", "LocalAws"]
