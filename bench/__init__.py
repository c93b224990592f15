"""Benchmarks behind `make bench`: the layer against the bare handler and the seed's pattern."""
