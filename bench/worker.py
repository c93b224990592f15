"""One benchmark process: load a handler shape under one variant, invoke it, print timings as one JSON line.

Usage: worker.py VARIANT SHAPE INVOCATIONS [FLUSHES]. Variants: bare (no coverage), layer (this layer's
decorator), zero (zero-code: the handler comes from `_HANDLER`, which the exec wrapper pointed at the
layer, as the Lambda runtime would load it), seed (a new Coverage per invocation: start, stop, save,
JSON report), plain (coverage.py started once after the handler's import and left on: `import coverage`
+ start, the floor any in-process coverage pays). Shapes: cpu, io, tiny (`handlers.py`), powertools
(`rest_api.py`), package (the generated codebase in BENCH_CODE_DIR, with its `events.json`).
BENCH_TRAFFIC=N serves the cpu and powertools shapes N requests of a seeded mix of REST routes
(`traffic.py`) instead of their own events; BENCH_BARE_COPY also times an unmeasured copy in this process.
The parent measures the cold start from its own clock: `first_done` is CLOCK_MONOTONIC, shared by every
process on the machine, so interpreter start-up and sitecustomize are counted too.
"""

import importlib
import importlib.util
import json
import os
import resource
import statistics
import sys
import time

variant, shape, invocations = sys.argv[1], sys.argv[2], int(sys.argv[3])
flushes = int(sys.argv[4]) if len(sys.argv) > 4 else 0
here = os.path.dirname(os.path.abspath(__file__))
code_dir = os.environ.get("BENCH_CODE_DIR", here)
sys.path.insert(0, code_dir)
module_name, attribute = {"powertools": ("rest_api", "handler"), "package": ("app", "handler")}.get(shape, ("handlers", shape))
if shape == "package":
    include = [os.path.join(code_dir, "*")]
else:
    include = [os.path.join(here, "handlers.py"), os.path.join(here, "rest_api.py")]



class StandInRuntime:
    """awslambdaric's runtime client with its HTTP calls to the Runtime API left out.

    The real `bootstrap.run` loads the handler with it, as in Lambda, then asks it for the first
    invocation: that ends the loading. Every invocation after that starts with its
    `wait_next_invocation`, which the layer may have wrapped to count invocations after each response.
    """

    class Loaded(Exception):
        pass

    def __init__(self):
        self.loaded = False

    def wait_next_invocation(self):
        if not self.loaded:
            self.loaded = True
            raise self.Loaded
        return None  # the worker passes each event itself

    def post_init_error(self, error, *args):
        raise RuntimeError(f"the handler failed to load: {error}")


def load_as_the_runtime_does(spec):
    """The handler `spec` names, loaded by awslambdaric's own `bootstrap.run`; and the client's next-invocation call."""
    from awslambdaric import bootstrap

    client = StandInRuntime()
    stdout, stderr = sys.stdout, sys.stderr
    try:
        bootstrap.run(spec, client)
    except StandInRuntime.Loaded:
        pass
    finally:
        sys.stdout, sys.stderr = stdout, stderr  # run() wraps them, unbuffered
    return bootstrap._get_handler(spec), client.wait_next_invocation  # the module is loaded: the same object again


if variant == "zero":
    handler_spec = os.environ["_HANDLER"]
elif variant == "layer":
    handler_spec = "decorated.handler"  # the shape's handler under @coverage_handler, decorated as its module loads
    os.environ["BENCH_DECORATE"] = f"{module_name}.{attribute}"
else:
    handler_spec = f"{module_name}.{attribute}"
handler, next_invocation = load_as_the_runtime_does(handler_spec)
module = sys.modules[module_name]

if shape == "package":
    with open(os.path.join(code_dir, "events.json")) as stream:
        events = json.load(stream)
elif os.environ.get("BENCH_TRAFFIC"):
    import traffic

    events = traffic.mixed(int(os.environ["BENCH_TRAFFIC"]))  # the cpu handler ignores all but its defaults
elif shape == "powertools":
    events = module.EVENTS
else:
    events = [{"n": 2000, "sleep": 0.002, "name": "bench"}]

if variant == "plain":
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


def peak_rss_kb():
    """This process's peak RSS. Not ru_maxrss: that keeps the parent's peak across fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def core_in_use():
    if variant in ("layer", "zero"):
        from coverage_wrapper.session import get_session

        return get_session().config.core
    if variant == "plain":
        tracer = getattr(getattr(getattr(plain, "_core", None), "tracer_class", None), "__name__", "")  # what coverage.py picked
        return {"CTracer": "ctrace", "PyTracer": "pytrace", "SysMonitor": "sysmon"}.get(tracer, tracer)
    return ""


next_invocation()
handler(dict(events[0]), None)
first_done = time.perf_counter()
first_cpu_ms = time.process_time() * 1000  # this process's CPU since it began: what a loaded machine cannot inflate by waiting
samples, between = [], []
for n in range(invocations):
    event = dict(events[(n + 1) % len(events)])
    began = time.perf_counter()
    next_invocation()  # after the previous response: the runtime asks for the next invocation
    ready = time.perf_counter()
    handler(event, None)
    samples.append((time.perf_counter() - ready) * 1e6)
    between.append((ready - began) * 1e6)
maxrss_kb = peak_rss_kb()
aws_sdk_loaded = "boto3" in sys.modules or "botocore" in sys.modules  # before any fallback upload needs it


def against_bare_copy(copy_dir, block=50):
    """measured ÷ bare in alternating blocks of `block` invocations of this handler and of an unmeasured copy:
    per block, median invocation against median invocation, and mean against mean.

    Both run in this process, a few ms apart, on the same requests, so load from other work on the
    machine hits them alike. For cores that leave unmeasured code alone (sys.monitoring events on
    measured code objects), and for a tracer, which is taken out of this thread while the copy runs
    (coverage.py's C tracer puts itself back at the next call, as after a debugger).
    """
    spec = importlib.util.spec_from_file_location(f"bare_copy_{module_name}", os.path.join(copy_dir, module_name + ".py"))
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    bare_copy = getattr(copy, attribute)
    bare_copy(dict(events[0]), None)
    tracer = sys.gettrace()
    ratios, mean_ratios = [], []
    for round_ in range(max(4, invocations // block)):
        medians, means = [], []
        batch = [events[(round_ * block + n) % len(events)] for n in range(block)]  # walks through the traffic
        for fn in (bare_copy, handler):
            took = []
            if tracer is not None:
                sys.settrace(None if fn is bare_copy else tracer)
            for event in batch:
                event = dict(event)
                if fn is handler:
                    next_invocation()
                began = time.perf_counter()
                fn(event, None)
                took.append(time.perf_counter() - began)
            medians.append(statistics.median(took))  # a pause of the machine or a policy flush is not the typical invocation
            means.append(statistics.fmean(took))  # every invocation's share, as when some of them record a context
        ratios.append(medians[1] / medians[0])
        mean_ratios.append(means[1] / means[0])
    return ratios, mean_ratios


ab_ratios, ab_mean_ratios = against_bare_copy(os.environ["BENCH_BARE_COPY"]) if os.environ.get("BENCH_BARE_COPY") else ([], [])

flush_ms: list[float] = []
flush_cpu_ms: list[float] = []
upload_ms: list[float] = []
contended_us: list[float] = []
if flushes and variant in ("layer", "zero"):
    from coverage_wrapper.session import get_session

    session = get_session()
    for n in range(flushes):
        handler(dict(events[n % len(events)], n=2000 + n, sleep=0.0, name=str(n)), None)
        session._points_shipped = -1  # a flush with new data to write: the costly case
        began, began_cpu = time.perf_counter(), time.thread_time()
        session.flush(reason="bench")
        flush_ms.append((time.perf_counter() - began) * 1000)
        flush_cpu_ms.append((time.thread_time() - began_cpu) * 1000)
        # Without an extension the upload runs in a thread of this process: invocations served
        # meanwhile share the GIL with it. Time them, and the upload itself.
        # A busy CPU-bound main thread starves the uploader of the GIL (each of its I/O waits costs a
        # switch interval to win back): time a bounded number of contended invocations, then let it finish.
        uploader = session._fallback
        while uploader is not None and uploader.is_alive() and len(contended_us) < 100 * (n + 1):
            tick = time.perf_counter()
            handler(dict(events[0]), None)
            contended_us.append((time.perf_counter() - tick) * 1e6)
        if uploader is not None:
            uploader.join()
            upload_ms.append((time.perf_counter() - began) * 1000)

print(json.dumps({
    "samples_us": samples,
    "between_us": between,
    "first_done": first_done,
    "first_cpu_ms": first_cpu_ms,
    "flush_ms": flush_ms,
    "flush_cpu_ms": flush_cpu_ms,
    "upload_ms": upload_ms,
    "contended_us": contended_us,
    "ab_ratios": ab_ratios,
    "ab_mean_ratios": ab_mean_ratios,
    "maxrss_kb": maxrss_kb,
    "maxrss_end_kb": peak_rss_kb(),
    "aws_sdk_loaded": aws_sdk_loaded,
    "core": core_in_use(),
}))
