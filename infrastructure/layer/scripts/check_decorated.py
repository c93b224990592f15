"""The decorator check, run by one runtime's interpreter with `-I -S`: only the stdlib, the layer, the function and stubs.

Arguments: the extracted /opt, the function's directory, the boto3/botocore stand-ins, the outbox, and
`bytecode` or `source` (whether the manifest says this runtime has bytecode). Prints one
`LAYER-VALIDATION {json}` line: the problems found, the data files flushed and coverage.py's version.
"""
import glob
import importlib.util
import json
import os
import sys

opt, function_dir, stubs, outbox = sys.argv[1:5]
expect_bytecode = sys.argv[5] == "bytecode"
site_packages = os.path.join(opt, "python", "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
sys.path[:0] = [function_dir, site_packages, os.path.join(opt, "python"), stubs]
report: dict = {"problems": [], "flush_files": []}
aws = ("boto3", "botocore")

def pending():
    return sorted(glob.glob(os.path.join(outbox, "pending", "*.coverage")))

try:
    import coverage_wrapper  # noqa: F401 (the check: the layer's package imports on this runtime)
    import fn_decorated
    import coverage
    report["coverage"] = coverage.__version__
    if not os.path.realpath(coverage.__file__).startswith(os.path.realpath(opt) + os.sep):
        report["problems"].append("coverage was imported from %s, not from the layer" % coverage.__file__)
    for n in (1, 2, 3):
        payload = {"n": n}
        result = fn_decorated.handler({"payload": payload}, None)
        if result is not payload:
            report["problems"].append("invocation %d: the handler's result did not pass through" % n)
        imported = [name for name in aws if name in sys.modules]
        if n == 1 and imported:
            report["problems"].append("invocation 1 (no flush) imported %s" % ", ".join(imported))
        if n == 2:
            report["flush_files"] = pending()
            if not report["flush_files"]:
                report["problems"].append("invocation 2 should have flushed a data file into the outbox")
    failure = LookupError("passes through")
    try:
        fn_decorated.handler({"fail": failure}, None)
        report["problems"].append("the handler's exception was swallowed")
    except LookupError as exc:
        if exc.args != (failure,):
            report["problems"].append("the handler's exception changed on the way out")
    from coverage.tracer import CTracer  # noqa: F401 (the check: the C tracer for this runtime and machine loads)
    if report["flush_files"]:
        reports = os.path.join(os.path.dirname(outbox), "reports")
        reader = coverage.Coverage(data_file=report["flush_files"][0], config_file=False)
        reader.load()
        reader.html_report(directory=os.path.join(reports, "html"))
        reader.xml_report(outfile=os.path.join(reports, "coverage.xml"))
        reader.json_report(outfile=os.path.join(reports, "coverage.json"))
        reader.lcov_report(outfile=os.path.join(reports, "lcov.info"))
        for made in ("html/index.html", "html/style*.css", "html/coverage_html*.js", "html/*fn_decorated_py.html",
                     "coverage.xml", "coverage.json", "lcov.info"):
            if not [p for p in glob.glob(os.path.join(reports, made)) if os.path.getsize(p)]:
                report["problems"].append("the report file %s is missing or empty" % made)
    pycs = glob.glob(os.path.join(opt, "python", "coverage_wrapper", "**", "*.%s.pyc" % sys.implementation.cache_tag), recursive=True)
    pycs += glob.glob(os.path.join(site_packages, "**", "*.pyc"), recursive=True)
    stale = [p for p in pycs if open(p, "rb").read(4) != importlib.util.MAGIC_NUMBER]
    if not pycs and expect_bytecode:
        report["problems"].append("no bytecode for this interpreter in the layer")
    if stale:
        report["problems"].append("%d pycs do not match this interpreter's magic number, e.g. %s" % (len(stale), stale[0]))
except Exception as exc:
    import traceback
    report["problems"].append("".join(traceback.format_exception_only(type(exc), exc)).strip())
print("LAYER-VALIDATION " + json.dumps(report))
