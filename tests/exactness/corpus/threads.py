"""Code run in worker threads: a thread pool and a plain thread, with branches taken only there."""

import threading
from concurrent.futures import ThreadPoolExecutor


def classify(value):
    if value % 2:
        return "odd"
    return "even"


def worker(values, out):
    for value in values:
        if value < 0:
            break
        out.append(classify(value))


def exercise() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(classify, [1, 3])) == ["odd", "odd"]
    out = []
    thread = threading.Thread(target=worker, args=([2, -1, 4], out))
    thread.start()
    thread.join()
    assert out == ["even"]
