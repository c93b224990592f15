"""One benchmark process: load a handler shape under one variant, invoke it, print timings as one JSON line.

Usage: worker.py VARIANT SHAPE INVOCATIONS [FLUSHES]. Variants: bare (no coverage), layer (this layer's
decorator), zero (zero-code: the handler comes from `_HANDLER`, which the exec wrapper pointed at the
layer, as the Lambda runtime would load it), seed (a new Coverage per invocation: start, stop, save,
JSON report), plain (coverage.py started once after the handler's import and left on: `import coverage`
+ start, the floor any in-process coverage pays). Shapes: cpu, io, tiny (`handlers.py`), powertools
(`rest_api.py`), package (the generated codebase in BENCH_CODE_DIR, with its `events.json`).
BENCH_TRAFFIC=N serves the cpu and powertools shapes N requests of a seeded mix of REST routes
(`traffic.py`) instead of their own events; BENCH_BARE_COPY also times an unmeasured copy in this process.
Handlers are loaded and served as Lambda's runtime does, by awslambdaric's own code with only its native
HTTP client stood in for (`load_as_the_runtime_does`): an invocation's time is the handler call's, amid
the runtime's own work (ask for the invocation, unmarshal, context, marshal, post); asking for the next
invocation, where the layer counts the previous one, is timed apart.
The parent measures the cold start from its own clock: `first_done` is CLOCK_MONOTONIC, shared by every
process on the machine, so interpreter start-up and the runtime's loading are counted too.
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



class StandInRuntimeAPI:
    """The Runtime API as awslambdaric's native `runtime_client` module reaches it, without HTTP.

    `next()` hands over the event queued by `queue`, with the headers Lambda sends; posting a response
    is a no-op. Until the handler is loaded, `next()` raises `Loaded`: that ends `bootstrap.run`.
    """

    class Loaded(Exception):
        pass

    def __init__(self):
        self.body = None
        self.count = 0

    def queue(self, event):
        self.body = json.dumps(event).encode()

    def next(self):
        if self.body is None:
            raise self.Loaded
        self.count += 1
        headers = {"Lambda-Runtime-Aws-Request-Id": f"bench-{self.count}", "Content-Type": "application/json",
                   "Lambda-Runtime-Deadline-Ms": "4102444800000", "Lambda-Runtime-Trace-Id": "Root=1-bench",
                   "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench"}
        return self.body, headers

    def post_invocation_result(self, *args):
        pass

    def post_error(self, *args):
        raise RuntimeError(f"the bench handler failed: {args}")


def load_as_the_runtime_does(spec):
    """awslambdaric's own `bootstrap.run` loads the handler `spec` names, with a real runtime client whose native
    HTTP calls go to `StandInRuntimeAPI`. Returns the handler, and `invoke(fn, event)`, which serves one
    invocation as the runtime's loop does: ask the client for it, then the steps of awslambdaric's
    `handle_event_request` (unmarshal, context, call `fn`, marshal, post). Returns the seconds the asking
    took and those the call of `fn` took: the handler's time, between the runtime's own work as in Lambda.
    """
    from awslambdaric import bootstrap, lambda_runtime_client

    api = lambda_runtime_client.runtime_client = StandInRuntimeAPI()
    client = lambda_runtime_client.LambdaRuntimeClient("127.0.0.1:9001", False)
    own_next = client.wait_next_invocation
    stdout, stderr = sys.stdout, sys.stderr
    try:
        bootstrap.run(spec, client)
    except StandInRuntimeAPI.Loaded:
        pass
    finally:
        sys.stdout, sys.stderr = stdout, stderr  # run() wraps them, unbuffered
    loaded = bootstrap._get_handler(spec)  # the module is loaded: the same object again
    marshaller, clock = client.marshaller, time.perf_counter

    def invoke(fn, event):
        api.queue(event)
        began = clock()
        # As the layer left it for the loaded handler; the client's own for the unmeasured copy.
        request = (client.wait_next_invocation if fn is loaded else own_next)()
        asked = clock()
        context = bootstrap.create_lambda_context(
            request.client_context, request.cognito_identity, request.deadline_time_in_ms, request.invoke_id,
            request.invoked_function_arn, request.tenant_id)
        unmarshalled = marshaller.unmarshal_request(request.event_body, request.content_type)
        called = clock()
        response = fn(unmarshalled, context)
        took = clock() - called
        result, content_type = marshaller.marshal_response(response)
        client.post_invocation_result(request.invoke_id, result, content_type, request.invocation_id)
        return asked - began, took

    return loaded, invoke


if variant == "zero":
    handler_spec = os.environ["_HANDLER"]
elif variant == "layer":
    handler_spec = "decorated.handler"  # the shape's handler under @coverage_handler, decorated as its module loads
    os.environ["BENCH_DECORATE"] = f"{module_name}.{attribute}"
else:
    handler_spec = f"{module_name}.{attribute}"
handler, invoke = load_as_the_runtime_does(handler_spec)
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


invoke(handler, events[0])
first_done = time.perf_counter()
first_cpu_ms = time.process_time() * 1000  # this process's CPU since it began: what a loaded machine cannot inflate by waiting
samples, between = [], []
for n in range(invocations):
    asking, serving = invoke(handler, events[(n + 1) % len(events)])
    samples.append(serving * 1e6)
    between.append(asking * 1e6)
maxrss_kb = peak_rss_kb()
aws_sdk_loaded = "boto3" in sys.modules or "botocore" in sys.modules  # before any fallback upload needs it


def against_bare_copy(copy_dir, block=50):
    """measured ÷ bare in alternating blocks of `block` invocations of this handler and of an unmeasured copy:
    per round, median invocation against median invocation, and mean against mean.

    Both run in this process, a few ms apart, on the same requests, so load from other work on the
    machine hits them alike. A round serves the copy then the handler, then the handler then the copy,
    and takes the geometric mean of the two orders' ratios: the block that runs second is faster (by
    ~20 % on a 0.2 µs handler, where caches and the allocator decide), and either fixed order would
    report that as the layer's cost or gain. For cores that leave unmeasured code alone (sys.monitoring
    events on measured code objects), and for a tracer, which is taken out of this thread while the copy
    runs (coverage.py's C tracer puts itself back at the next call, as after a debugger).
    """
    spec = importlib.util.spec_from_file_location(f"bare_copy_{module_name}", os.path.join(copy_dir, module_name + ".py"))
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    bare_copy = getattr(copy, attribute)
    bare_copy(dict(events[0]), None)
    tracer = sys.gettrace()

    def serve(fn, batch):
        if tracer is not None:
            sys.settrace(None if fn is bare_copy else tracer)
        return [invoke(fn, event)[1] for event in batch]

    ratios, mean_ratios = [], []
    for round_ in range(max(4, invocations // block // 2)):
        batch = [events[(round_ * block + n) % len(events)] for n in range(block)]  # walks through the traffic
        median_ratio = mean_ratio = 1.0
        for order in ((bare_copy, handler), (handler, bare_copy)):
            took = {fn: serve(fn, batch) for fn in order}
            # A pause of the machine or a policy flush is not the typical invocation; the means include them.
            median_ratio *= statistics.median(took[handler]) / statistics.median(took[bare_copy])
            mean_ratio *= statistics.fmean(took[handler]) / statistics.fmean(took[bare_copy])
        ratios.append(median_ratio ** 0.5)
        mean_ratios.append(mean_ratio ** 0.5)
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
