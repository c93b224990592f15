"""A plugin loaded by file path, as plugin systems do, never imported by name."""


def run(event):
    if event.get("fast"):
        return "fast"
    for key in event:
        if key.startswith("x"):
            return key
    return "slow"
