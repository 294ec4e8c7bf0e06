"""Conformance checks (the same file is copied into every generated repo's tests/ as conformance.py)."""

from pathlib import Path

CHECKS_FILE = Path(__file__).resolve().parent / "checks.py"
