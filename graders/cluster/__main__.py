"""`python -m graders.cluster`: exit 0 when the course cluster answers, else print why (and the fix), exit 3.
Used by the Makefile and CI scripts to decide whether live tests can run."""
from __future__ import annotations

import sys

from graders.cluster.client import Cluster
from graders.errors import ClusterUnreachable


def main() -> int:
    try:
        cluster = Cluster.connect()
    except ClusterUnreachable as exc:
        print(f"no cluster: {exc.message}\n  fix: {exc.hint}", file=sys.stderr)
        return 3
    print(f"cluster answers: context {cluster.context} at {cluster.server}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
