"""`examples/` holds generated repos; they must be exactly what the templates produce today."""

import json
from pathlib import Path

import pytest

from tf_scaffold import commands

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VERSION_KEYS = ("transformers_version",)


def normalise(rel: str, data: bytes) -> bytes:
    """Files that record the transformers version they were written with are compared without it."""
    if rel.endswith(".json") and rel != "tokenizer.json":
        obj = json.loads(data)
        if not isinstance(obj, dict):  # modules.json is a list
            return data
        for key in VERSION_KEYS:
            obj.pop(key, None)
        for name, text in (obj.get("base") or {}).items():  # .tf-scaffold.json: the files as written, config.json too
            if name.endswith(".json"):
                obj["base"][name] = normalise(name, text.encode()).decode()
        return json.dumps(obj, sort_keys=True).encode()
    return data


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {"__pycache__", ".pytest_cache", ".ruff_cache"} & set(p.parts)
    }


@pytest.mark.parametrize(
    "answers",
    [
        {"name": "acme-lm"},
        {"name": "acme-vl", "multimodal": True},
        {"name": "acme-moe", "moe": True},
        {"name": "acme-encoder", "arch": "encoder"},
    ],
    ids=["acme-lm", "acme-vl", "acme-moe", "acme-encoder"],
)
def test_example_matches_templates(tmp_path, answers):
    fresh = commands.new(answers, tmp_path).path
    example = EXAMPLES / fresh.name
    assert example.is_dir(), f"examples/{fresh.name} is missing: see examples/README.md to regenerate it"
    ours, theirs = tree(fresh), tree(example)
    assert sorted(ours) == sorted(theirs), "examples/ and the templates list different files: regenerate the example"
    drifted = [rel for rel in ours if normalise(rel, ours[rel]) != normalise(rel, theirs[rel])]
    assert not drifted, f"examples/{fresh.name} drifted from the templates in {drifted}: regenerate it"
