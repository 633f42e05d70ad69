"""One grading run at a time per context: the second waits (and says so), bounded."""
from __future__ import annotations

import threading
import time

import pytest

from fakelab import LAB_ID
from graders import engine, runlock
from graders.errors import ClusterError
from graders.status import RecordingStatus


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("K8SLAB_CACHE", str(tmp_path / "cache"))


def hold(context: str, seconds: float) -> threading.Thread:
    held = threading.Event()

    def run():
        with runlock.exclusive(context):
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=run)
    thread.start()
    held.wait(5)
    return thread


def test_second_run_waits_for_the_first_and_says_so():
    holder = hold("kind-a", 0.6)
    waited = []
    started = time.monotonic()
    with runlock.exclusive("kind-a", on_wait=lambda: waited.append(True)):
        elapsed = time.monotonic() - started
    holder.join()
    assert waited == [True] and elapsed >= 0.3


def test_other_contexts_do_not_wait():
    holder = hold("kind-a", 0.6)
    waited = []
    with runlock.exclusive("kind-b", on_wait=lambda: waited.append(True)):
        pass
    holder.join()
    assert waited == []


def test_waiting_is_bounded():
    holder = hold("kind-a", 1.5)
    with pytest.raises(ClusterError, match="another grading run on context kind-a"):
        with runlock.exclusive("kind-a", timeout=0.3):
            pass
    holder.join()


def test_the_engine_holds_the_lock_while_it_uses_the_cluster(course, cluster):
    holder = hold(cluster.context, 0.6)
    status = RecordingStatus()
    assert engine.grade(LAB_ID, "hello-pod", course / "solutions" / LAB_ID / "hello-pod", cluster=cluster,
                        status=status).passed
    holder.join()
    assert ("hello-pod: waiting for another grading run on kind-fake to finish", None) in status.events
