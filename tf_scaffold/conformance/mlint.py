"""The transformers-convention layer of `check`: transformers-mlinter's own rules (through its Python API), reported
with their own ids in a separate, non-blocking section. tf-scaffold's rules stay about the engines."""

from __future__ import annotations

import re
from pathlib import Path

from tf_scaffold.conformance.files import FULL_PARSE_BYTES, confined, decode_source, read_bytes
from tf_scaffold.conformance.report import LintViolation

PATTERNS = ("modeling_*.py", "configuration_*.py", "processing_*.py", "image_processing_*.py")


def lint(root: Path) -> tuple[list[LintViolation], str | None]:
    """(violations, why the lint did not run) for the model files of a repo, with mlinter's default rules."""
    try:
        import mlinter
    except ImportError:
        return [], "transformers-mlinter is not installed (pip install transformers-mlinter)"
    violations: list[LintViolation] = []
    too_large = []
    for pattern in PATTERNS:
        for path in sorted(Path(root).glob(pattern)):
            if confined(Path(root), path.name) is None:
                continue
            data, _problem = read_bytes(path, FULL_PARSE_BYTES)
            if data is None:
                too_large.append(path.name)
                continue
            try:
                found = mlinter.analyze_file(path, decode_source(data), set(mlinter.DEFAULT_ENABLED_TRF_RULES))
            except Exception:  # noqa: BLE001 - a file mlinter cannot read is reported by our own rules (TFS010)
                continue
            for v in found:
                message = re.sub(r"\s+", " ", re.sub(r"^TRF\d+:\s*", "", v.message)).strip()
                violations.append(LintViolation(v.rule_id or "TRF", path.name, v.line_number, message))
    why = f"{', '.join(too_large)} too large or unreadable for the convention lint" if too_large else None
    return violations, why
