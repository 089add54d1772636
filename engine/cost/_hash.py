"""BLAKE2b without ``hashlib``: importing hashlib also loads OpenSSL's library (~9 ms of every
``engine cost`` start here), and BLAKE2b -- the only hash the scanner uses -- is CPython's own."""
from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python without the module
    from hashlib import blake2b

__all__ = ["blake2b"]
