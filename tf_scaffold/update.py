"""`tf-scaffold update`: bring a generated repo to the installed template and keep the author's edits.

`new` records in `.tf-scaffold.json` the answers, the tool version and the text of every file it rendered or built from
the rendered code (`base`). `update` renders the same answers with the installed tf-scaffold (`new`), and for each file
3-way merges the author's copy (`ours`) with `base -> new` using `git merge-file`: an edit the author made survives, a
template change lands, and where both touched the same lines the file gets standard conflict markers.

Artifacts built from code (config.json, generation_config.json, processor_config.json) are rebuilt and merged only
when the code that defines them changed. Weights are never rewritten unless asked (`--rebuild-weights`): when the
model code changed, the checkpoint's tensor names and shapes are compared with what the updated code builds, and a
mismatch is reported with what to run.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tf_scaffold import record
from tf_scaffold.artifacts import (
    build_model_files,
    build_processor,
    checkpoint_state,
    record_text,
    rendered_package,
    save_weights,
)
from tf_scaffold.errors import ScaffoldError
from tf_scaffold.record import BUILT_TEXT, WEIGHTS


class UpdateError(ScaffoldError):
    """A repo `update` cannot work on (git missing, a record without update data)."""


@dataclass
class FileUpdate:
    path: str
    action: str  # updated | merged | conflict | added | removed | migrated | kept (you deleted it)
    before: str | None
    after: str | None


@dataclass
class UpdateResult:
    path: Path
    old_version: str
    new_version: str
    files: list[FileUpdate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    weights: str | None = None  # what is wrong with the checkpoint after the update, and what to run
    rebuilt_weights: bool = False
    pretend: bool = False

    @property
    def conflicts(self) -> list[str]:
        return [f.path for f in self.files if f.action == "conflict"]

    def diff(self) -> str:
        """The unified diff of what the update changes (or would change) in the author's tree."""
        out = []
        for change in self.files:
            before = (change.before or "").splitlines(keepends=True)
            after = (change.after or "").splitlines(keepends=True)
            out += difflib.unified_diff(before, after, f"a/{change.path}", f"b/{change.path}")
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def template_files(spec) -> dict[str, str]:
    """The files the installed tf-scaffold renders for `spec` (code, card, tests, ruff.toml)."""
    from tf_scaffold.render import render

    return render(spec)


def built_files(spec, rendered: dict[str, str], tokenizer_from: Path) -> dict[str, str]:
    """config.json, generation_config.json (and processor_config.json) as `new` builds them from `rendered`, without
    weights; the tokenizer is copied from `tokenizer_from` (the processor embeds it)."""
    with tempfile.TemporaryDirectory(prefix="tf-scaffold-update-") as tmp:
        folder = Path(tmp)
        for rel, text in rendered.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
            if (tokenizer_from / name).is_file():
                shutil.copy2(tokenizer_from / name, folder / name)
        if spec.multimodal:
            build_processor(spec, folder)
        build_model_files(spec.model_copy(update={"weights": False}), folder)
        return {name: (folder / name).read_text(encoding="utf-8") for name in BUILT_TEXT if (folder / name).is_file()}


VERSION_FIELD = re.compile(r'"transformers_version": "[^"]*"')


def _same_version(text: str, base: str | None) -> str:
    """A rebuilt file with the transformers version its base recorded: which transformers wrote a config.json is not a
    template change (the author's config.json keeps its own)."""
    recorded = VERSION_FIELD.search(base or "")
    return VERSION_FIELD.sub(lambda _: recorded.group(0), text) if recorded else text


def _is_code(rel: str) -> bool:
    return rel.endswith(".py") and not rel.startswith("tests/")


def merge_text(ours: str, base: str, theirs: str, labels: tuple[str, str, str]) -> tuple[str, bool]:
    """(merged text, whether it has conflicts) from `git merge-file`."""
    git = shutil.which("git")
    if git is None:
        raise UpdateError("git is not installed: `update` merges with `git merge-file` (install git and rerun)")
    with tempfile.TemporaryDirectory(prefix="tf-scaffold-merge-") as tmp:
        paths = []
        for name, text in zip(("ours", "base", "theirs"), (ours, base, theirs), strict=True):
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        cmd = [git, "merge-file", "-p", "-L", labels[0], "-L", labels[1], "-L", labels[2], *paths]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode < 0 or proc.returncode > 127:
        raise UpdateError(f"git merge-file failed: {proc.stderr.strip()[:200]}")
    return proc.stdout, proc.returncode > 0


def three_way(
    rel: str, ours: str | None, base: str | None, new: str | None, labels: tuple[str, str, str]
) -> FileUpdate | None:
    """What happens to one file; None when nothing does."""
    if base == new or ours == new:
        return None  # the template did not change it, or the author already has the new text
    if ours == base:
        return FileUpdate(rel, "removed" if new is None else ("added" if ours is None else "updated"), ours, new)
    if ours is None:
        return FileUpdate(rel, "kept (you deleted it)", None, None)
    if new is None:  # the template dropped a file the author edited: keep it, say so
        return FileUpdate(rel, "kept (edited by you, no longer in the template)", ours, ours)
    merged, conflicted = merge_text(ours, base or "", new, labels)
    return FileUpdate(rel, "conflict" if conflicted else "merged", ours, merged)


def _migrated(rel: str, text: str | None) -> str | None:
    """A Python file of the repo with the renames of earlier releases applied (`record.migrate_source`)."""
    return record.migrate_source(text) if text is not None and rel.endswith(".py") else text


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def checkpoint_mismatch(repo: Path, spec) -> str | None:
    """How the checkpoint's tensors differ from what the repo's code builds (None when they match or there are no
    weights). The model is built on the meta device from the repo's config.json: nothing is allocated."""
    import torch
    from safetensors import safe_open

    if not (repo / WEIGHTS).is_file():
        return None
    with safe_open(str(repo / WEIGHTS), framework="pt") as f:
        saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    with rendered_package(repo) as load:
        config_cls = getattr(load(spec.names.configuration_module), spec.names.config_class)
        model_cls = getattr(load(spec.names.modeling_module), spec.names.architecture)
        config = config_cls.from_pretrained(repo)
        with torch.device("meta"):
            model = model_cls(config)
        state = {k: tuple(v.shape) for k, v in checkpoint_state(model).items()}
    missing = sorted(set(state) - set(saved))
    unexpected = sorted(set(saved) - set(state))
    reshaped = sorted(k for k in set(state) & set(saved) if state[k] != saved[k])
    if not (missing or unexpected or reshaped):
        return None
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            parts.append(f"{len(keys)} {what} ({', '.join(keys[:2])}{', ...' if len(keys) > 2 else ''})")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} reshaped ({k}: checkpoint {list(saved[k])}, code {list(state[k])})")
    return f"{WEIGHTS} no longer fits the model code: " + "; ".join(parts)


def rebuild_weights(repo: Path, spec) -> None:
    """Fresh tiny random weights for the repo's code and config.json (what `new` saves, from the answers' seed)."""
    import torch

    with rendered_package(repo) as load:
        config_cls = getattr(load(spec.names.configuration_module), spec.names.config_class)
        model_cls = getattr(load(spec.names.modeling_module), spec.names.architecture)
        config = config_cls.from_pretrained(repo)
        for part in (config, getattr(config, "text_config", None), getattr(config, "vision_config", None)):
            if part is not None:
                part.initializer_range = spec.weights_std
        torch.manual_seed(spec.seed)
        model = model_cls(config).eval()
        save_weights(model, repo / f"{WEIGHTS}.tmp")
    os.replace(repo / f"{WEIGHTS}.tmp", repo / WEIGHTS)


def _write(repo: Path, changes: dict[str, str | None]) -> None:
    """Write every changed file through a temporary sibling and a rename: a file is either old or new, never half."""
    for rel, text in changes.items():
        path = repo / rel
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tf-scaffold-update")
        tmp.write_text(text, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)


def update(repo: Path, *, pretend: bool = False, adopt: bool = False, weights: bool = False) -> UpdateResult:
    """Update `repo` to the installed template. `adopt`: record the installed template as the base of a repo made
    before update data existed, changing nothing else. `weights`: rebuild tiny random weights when they no longer
    fit the code."""
    from tf_scaffold import __version__
    from tf_scaffold.spec import build_spec

    repo = repo.resolve()
    saved = record.read(repo)
    old_version = str(saved.get("tf_scaffold_version", "unknown"))
    spec = build_spec(saved["answers"])
    result = UpdateResult(repo, old_version, __version__, pretend=pretend)
    new = template_files(spec)
    ours = {rel: _read(repo / rel) for rel in new}

    if not record.has_base(saved):
        if not adopt:
            raise UpdateError(
                f"{repo} was made by tf-scaffold {old_version}, which recorded no update data: run "
                f"`tf-scaffold update {repo} --adopt --pretend` to see how it differs from the installed template, "
                "merge what you want by hand, then `--adopt` to record it (see docs/life-of-a-repo.md)"
            )
        base = {**new, **built_files(spec, new, repo)}
        for rel in sorted(new):
            if ours[rel] != new[rel]:
                result.files.append(FileUpdate(rel, "differs from the template", ours[rel], new[rel]))
        result.notes.append("recorded the installed template as the base of later updates; no file was changed")
        if not pretend:
            _write(repo, {record.NAME: record_text(spec, base)})
        return result
    if adopt:
        raise UpdateError(f"{repo} already has update data: run `tf-scaffold update {repo}` without --adopt")

    # the harness's import as the package is named today, in the author's copy and in the base alike (one rename
    # the template made, which the merge then never conflicts over)
    base = {rel: _migrated(rel, text) for rel, text in saved["base"].items()}
    labels = ("yours", f"tf-scaffold {old_version}", f"tf-scaffold {__version__}")
    for rel in sorted(set(new) | {r for r in base if r not in BUILT_TEXT}):
        on_disk = _read(repo / rel)
        ours_now = _migrated(rel, on_disk)
        change = three_way(rel, ours_now, base.get(rel), new.get(rel), labels)
        if change is None and ours_now != on_disk:
            change = FileUpdate(rel, "migrated", on_disk, ours_now)
        elif change is not None and change.before is not None:
            change.before = on_disk
        if change is not None:
            result.files.append(change)

    code_changed = any(base.get(rel) != text for rel, text in new.items() if _is_code(rel))
    built: dict[str, str] = {}
    if code_changed:
        built = {rel: _same_version(text, base.get(rel)) for rel, text in built_files(spec, new, repo).items()}
        for rel, text in built.items():
            change = three_way(rel, _read(repo / rel), base.get(rel), text, labels)
            if change is not None:
                result.files.append(change)
        result.notes.append(
            "the model code changed: config.json and the other files built from it follow (3-way merged)"
        )
    new_base = {**new, **{rel: base[rel] for rel in BUILT_TEXT if rel in base}, **built}

    if not pretend:
        _write(repo, {c.path: c.after for c in result.files if c.after != c.before})
        if new_base != base or old_version != __version__:
            _write(repo, {record.NAME: record_text(spec, new_base)})
    modeling_conflict = any(_is_code(rel) for rel in result.conflicts)
    # The checkpoint is compared with the code whenever the code is not the template's as recorded: changed by this
    # update, or edited by the author (a resolved conflict included).
    edited = any(_read(repo / rel) != text for rel, text in new.items() if _is_code(rel))
    if (code_changed or edited or weights) and not pretend and not modeling_conflict:
        try:
            result.weights = checkpoint_mismatch(repo, spec)
        except Exception as err:  # noqa: BLE001 - the author's code: conflict markers, a typo, a missing import
            where = (
                f"{Path(err.filename).name} line {err.lineno}: "
                if isinstance(err, SyntaxError) and err.filename
                else ""
            )
            result.weights = (
                f"the repo's code does not build a model ({where}{type(err).__name__}: {str(err)[:160]}), so "
                f"{WEIGHTS} was not compared with it: fix that (conflict markers left?), then run update again"
            )
            return result
        if result.weights and weights:
            rebuild_weights(repo, spec)
            result.rebuilt_weights, result.weights = True, None
        elif result.weights:
            result.weights += (
                f"; for the tiny random weights run `tf-scaffold update {repo} --rebuild-weights`, "
                "for a trained checkpoint convert it to the new names and shapes"
            )
    elif code_changed and modeling_conflict:
        result.notes.append(
            "the checkpoint was not compared with the code: resolve the conflicts, then run update again"
        )
    return result


def fingerprint(repo: Path) -> dict[str, str]:
    """{relative path: sha256} of every file in a repo (for tests and --pretend's promise)."""
    return {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
    }
