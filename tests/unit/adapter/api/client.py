"""FastAPI's TestClient, imported without the packaging warning this environment triggers.

Starlette warns on import that it prefers the ``httpx2`` package; the project's runtime
dependency is ``httpx``, so that deprecation is about packaging, not about this code.
Only that one warning is silenced, only during the import; warnings stay errors otherwise.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated"
    )
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]
