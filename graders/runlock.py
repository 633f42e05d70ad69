"""One grading run at a time per cluster context on this machine.

Grader namespaces have fixed names (they are in the lab spec, and learners write them in their manifests), so
two runs of the same lab — a `check()` cell and `make grade`, or two notebooks — would reset each other's
namespaces mid-run. A file lock per kube context serialises them; the second run waits and says so.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import time
from collections.abc import Callable, Iterator

from graders import paths
from graders.errors import ClusterError

WAIT_SECONDS = 600.0
POLL_SECONDS = 0.5


@contextlib.contextmanager
def exclusive(context: str, *, on_wait: Callable[[], None] = lambda: None, timeout: float = WAIT_SECONDS,
              scope: str = "") -> Iterator[None]:
    """Hold the lock of ``context`` for the ``with`` block; ``on_wait`` is called once if we must wait.
    ``scope`` (a run's own namespaces, see graders/nsmap.py) narrows the lock to the runs that share them."""
    lock_dir = paths.cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    key = f"{context or 'default'}-{hashlib.sha256(scope.encode()).hexdigest()[:16]}" if scope else context or "default"
    path = lock_dir / f"grade-{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    on_wait()
                    waited = True
                if time.monotonic() >= deadline:
                    raise ClusterError(f"another grading run on context {context} has held {path} for over "
                                       f"{timeout:g} s", hint="let it finish (or stop it), then grade again") from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
