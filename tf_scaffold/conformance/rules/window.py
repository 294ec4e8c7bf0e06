"""Sliding-window attention: both engines give layer i a window of `config.sliding_window` tokens when
`config.layer_types[i]` is "sliding_attention" (vLLM `create_attention_instances`, SGLang
`_create_attention_instances`); transformers applies the window only where the modeling code builds the sliding mask.
"""

from __future__ import annotations

from tf_scaffold.conformance.registry import WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.facts import SLIDING_ATTENTION

# What transformers' own models call to apply a window: the sliding mask, or the window handed to the attention call.
WINDOW_MARKERS = ("create_sliding_window_causal_mask", "sliding_window")


def _layer_types(repo: Repo):
    return repo.text_field("layer_types")


def _window(repo: Repo):
    return repo.text_field("sliding_window")


@rule(
    "TFS024",
    "layer-types-inconsistent",
    "config.layer_types does not describe the layers",
    engine=(
        "the engines index layer_types by layer: a list shorter than num_hidden_layers leaves layers without a kind "
        "(IndexError in transformers), and a sliding layer without sliding_window gets no window in the engines"
    ),
    fix="give one entry per layer (num_hidden_layers of them) and set sliding_window when any layer slides",
    requires=("config",),
)
def layer_types_inconsistent(repo: Repo):
    types = _layer_types(repo)
    if types is None:
        return
    layers = repo.text_field("num_hidden_layers")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        yield Issue("config.json", 0, f"layer_types is not a list of strings: {types!r}")
        return
    if isinstance(layers, int) and not isinstance(layers, bool) and len(types) != layers:
        yield Issue("config.json", 0, f"layer_types has {len(types)} entries for {layers} layers")
    if SLIDING_ATTENTION in types and not _window(repo):
        where = (
            "is null" if "sliding_window" in {**repo.config, **repo.section("text_config")} else "is not in the config"
        )
        yield Issue("config.json", 0, f"{types.count(SLIDING_ATTENTION)} sliding layers but sliding_window {where}")


@rule(
    "TFS025",
    "sliding-window-ignored",
    "the config's sliding layers slide in the engines but not in the modeling code",
    engine=(
        "vLLM and SGLang give the sliding layers a window of sliding_window tokens from the config; the code attends "
        "to everything, so past the window the engines' tokens differ from transformers' without any error"
    ),
    fix=(
        "build the sliding layers' mask with create_sliding_window_causal_mask and pass "
        "sliding_window=self.sliding_window to the attention call (as Qwen3 does), or drop layer_types/sliding_window"
    ),
    requires=("config", "base-model"),
    verdicts={"vLLM": "wrong", "SGLang": "wrong"},
)
def sliding_window_ignored(repo: Repo):
    types = _layer_types(repo)
    if not isinstance(types, list) or SLIDING_ATTENTION not in types or not _window(repo):
        return
    decoder = repo.decoder
    if not repo.decoder_attention:
        return  # the decoder's layers are not readable (e.g. built with AutoModel.from_config): nothing to tell
    # the repo's own code, and the transformers classes its decoder and attention inherit from
    refs = [*repo.chain(decoder), *(r for a in repo.decoder_attention for r in repo.chain(a))]
    sources = [s for s in repo.sources.values() if s.in_repo] + [r.source for r in refs]
    if not any(marker in source.text for marker in WINDOW_MARKERS for source in sources):
        owner = decoder or repo.base_model
        file, line = repo.where(owner) if owner is not None else ("config.json", 0)
        sliding = types.count(SLIDING_ATTENTION)
        yield Issue(file, line, f"{sliding} sliding layers, window {_window(repo)}: no code reads it")


@rule(
    "TFS026",
    "sglang-window-one-wider",
    "SGLang gives the sliding layers a window one token wider than transformers",
    engine=(
        "SGLang 0.5.23's Transformers backend hands `config.sliding_window` to its attention, whose kernels take the "
        "window without the current token (its own Gemma and Mistral models pass `sliding_window - 1`): each sliding "
        "layer sees one token more, and past the window SGLang's tokens differ from transformers' (they equal "
        "transformers' with sliding_window + 1); vLLM matches transformers"
    ),
    fix=(
        "nothing in the repo fixes it: serve the model with vLLM, or with an SGLang release that windows as "
        "transformers does; the repo's SGLang tests compare with sliding_window + 1 on 0.5.23 and say so"
    ),
    severity=WARNING,
    requires=("config",),
    verdicts={"SGLang": "wrong"},
)
def sglang_window_one_wider(repo: Repo):
    types = _layer_types(repo)
    if isinstance(types, list) and SLIDING_ATTENTION in types and _window(repo):
        sliding = types.count(SLIDING_ATTENTION)
        yield Issue("config.json", 0, f"{sliding} sliding layers, sliding_window {_window(repo)}")
