"""Compile layer modules to unchecked-hash pycs; run by each runtime's own interpreter (`python -S -s`).

Reads `[runtime, [[source, target, display, strip_docstrings], ...]]` as JSON on stdin. The pycs hold no
mtime and record `display` (the path under /opt) as their file name, so the bytes do not depend on where or
when the build ran. The modules lose their docstrings (nothing in the layer reads them; asserts and everything
else stay) to fit the size budget.
"""
import ast
import importlib.util
import json
import marshal
import os
import sys

class DropDocstrings(ast.NodeTransformer):
    def drop(self, node):
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            if len(node.body) > 1:
                del node.body[0]
            else:
                node.body[0] = ast.copy_location(ast.Pass(), first)
        return node
    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = drop

want, jobs = json.load(sys.stdin)
if "%d.%d" % sys.version_info[:2] != want:
    sys.exit("interpreter is %d.%d, expected %s" % (sys.version_info[:2] + (want,)))
for source, target, display, strip_docstrings in jobs:
    with open(source, "rb") as handle:
        data = handle.read()
    tree = ast.parse(data, filename=display)
    if strip_docstrings:
        tree = ast.fix_missing_locations(DropDocstrings().visit(tree))
    code = compile(tree, display, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + importlib.util.source_hash(data)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as out:
        out.write(header + marshal.dumps(code))
