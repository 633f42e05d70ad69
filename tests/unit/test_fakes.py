"""The fake cluster must keep the real Cluster's method names and parameters, or unit tests test a fiction."""
from __future__ import annotations

import inspect

from fakes import FakeCluster


def test_fake_cluster_methods_exist_on_the_real_cluster_with_the_same_parameters():
    from graders.cluster import Cluster

    for name, fake in inspect.getmembers(FakeCluster, callable):
        if name.startswith("_"):
            continue
        real = getattr(Cluster, name, None)
        assert real is not None, f"FakeCluster.{name} does not exist on graders.cluster.Cluster"
        fake_params = list(inspect.signature(fake).parameters)
        real_params = list(inspect.signature(real).parameters)
        assert fake_params == real_params, f"{name}: fake {fake_params} != real {real_params}"


def test_the_engine_uses_only_methods_the_fake_has():
    import re
    from pathlib import Path

    import graders.engine

    used = set(re.findall(r"cluster\.([a-z_]+)\(", Path(graders.engine.__file__).read_text()))
    assert used <= {n for n in dir(FakeCluster) if not n.startswith("_")}, used
