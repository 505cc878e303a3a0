"""pybuild: bit-reproducible AWS Lambda layers from pinned Python requirements."""

from __future__ import annotations

__version__ = "0.1.0"
