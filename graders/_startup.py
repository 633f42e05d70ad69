"""Start-up speed: import jsonschema without its optional IRI format checker.

jsonschema imports ``rfc3987_syntax`` when it is installed (jupyter pulls it in), and that module builds a
grammar at import time: seconds of start-up (nbformat and kubernetes-validate both import jsonschema) for a
format nothing here checks. Hiding it for that one import keeps ``k8slab`` and ``check()`` quick and lets the
"no cluster" diagnosis arrive within 5 s; anyone importing ``rfc3987_syntax`` later still gets the real module.
"""
from __future__ import annotations

import sys


def import_jsonschema_quickly() -> None:
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # makes that one import fail fast
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        pass
    finally:
        del sys.modules["rfc3987_syntax"]
