"""cookiecutter hook: delete the files that belong to the other variant (text-only or multimodal).

They render empty, as tf-scaffold's own renderer leaves them out.
"""

from pathlib import Path

for path in sorted(Path.cwd().rglob("*"), reverse=True):
    if path.is_file() and not path.read_text(encoding="utf-8").strip():
        path.unlink()
