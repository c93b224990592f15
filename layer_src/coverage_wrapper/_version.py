"""The layer's version, shown in health checks and object metadata."""

__version__ = "0.1.0"
