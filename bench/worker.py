"""One benchmark process: import a handler shape under one variant, invoke it, print timings as JSON.

Variants: bare (no coverage), layer (this layer's decorator), seed (a new Coverage per invocation:
start, stop, save, JSON report), plain (coverage.py started once, always on).
"""

import json
import os
import resource
import sys
import time

started = time.perf_counter()
variant, shape, invocations = sys.argv[1], sys.argv[2], int(sys.argv[3])
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import handlers  # noqa: E402

handler = getattr(handlers, shape)
event = {"n": 2000, "sleep": 0.002, "name": "bench"}
include = [os.path.join(here, "handlers.py")]

if variant == "layer":
    from coverage_wrapper import coverage_handler

    handler = coverage_handler(handler)
elif variant == "plain":
    import coverage

    plain = coverage.Coverage(data_file=None, branch=os.environ.get("COVERAGE_BRANCH_COVERAGE") != "false", include=include, config_file=False)  # core from COVERAGE_CORE
    plain.start()
elif variant == "seed":
    import coverage

    bare_handler = handler

    def handler(event, context):  # noqa: F811 - the seed's per-invocation pattern
        cov = coverage.Coverage(data_file="/tmp/bench-seed.coverage", branch=True, include=include, config_file=False)
        cov.start()
        try:
            return bare_handler(event, context)
        finally:
            cov.stop()
            cov.save()
            cov.json_report(outfile="/tmp/bench-seed.json")

first_began = time.perf_counter()
handler(event, None)
cold_ms = (time.perf_counter() - started) * 1000
first_ms = (time.perf_counter() - first_began) * 1000
samples = []
for _ in range(invocations):
    began = time.perf_counter()
    handler(event, None)
    samples.append((time.perf_counter() - began) * 1e6)

flush_ms = []
if variant == "layer":
    from coverage_wrapper.session import get_session

    session = get_session()
    for n in range(15):
        handler({"n": 2000 + n, "sleep": 0.0, "name": str(n)}, None)
        session._points_shipped = -1  # measure a flush that has new data to write, the costly case
        began = time.perf_counter()
        session.flush(reason="bench")
        flush_ms.append((time.perf_counter() - began) * 1000)

print(json.dumps({
    "samples_us": samples,
    "cold_ms": cold_ms,
    "first_ms": first_ms,
    "flush_ms": flush_ms,
    "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "aws_sdk_loaded": "boto3" in sys.modules or "botocore" in sys.modules,
    "core": os.environ.get("COVERAGE_CORE", ""),
}))
