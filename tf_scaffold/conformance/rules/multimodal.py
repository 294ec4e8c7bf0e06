"""The image contract of a vision-language repo: processor counts, placeholder token, feature extraction, merging."""

from __future__ import annotations

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.files import as_dict
from tf_scaffold.conformance.registry import MULTIMODAL, WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo

PROCESSOR = ("config", "processor")
BASE = ("config", "base-model")


def _processor_location(repo: Repo):
    return repo.where(repo.processor_class)


@rule(
    "TFS050",
    "processor-without-token-count",
    "the processor has no _get_num_multimodal_tokens",
    engine=(
        "vLLM asks the processor how many tokens an image takes before it has the image, and fails with "
        "\"'XProcessor' object has no attribute '_get_num_multimodal_tokens'\""
    ),
    fix=(
        "define _get_num_multimodal_tokens(self, image_sizes=None, **kwargs) returning "
        "MultiModalData(num_image_tokens=[...], num_image_patches=[...])"
    ),
    applies_to=(MULTIMODAL,),
    requires=("config",),
)
def processor_without_token_count(repo: Repo):
    if repo.processor_class is None:
        auto_map = as_dict((repo.processor_config or {}).get("auto_map")) or repo.auto_map
        yield Issue(
            "processor_config.json",
            0,
            f"no processor class found in the repo (AutoProcessor: {auto_map.get('AutoProcessor')!r:.60})",
        )
    elif repo.implemented(repo.processor_class, "_get_num_multimodal_tokens") is None:
        yield Issue(*_processor_location(repo), f"{repo.processor_class.name} has no _get_num_multimodal_tokens")


@rule(
    "TFS051",
    "processor-without-replace",
    "the processor has no replace_image_token",
    engine=(
        'vLLM: "returned no text replacement offsets, so the Transformers modeling backend cannot locate the '
        "placeholder of each item\"; ProcessorMixin's default raises NotImplementedError"
    ),
    fix="define replace_image_token(self, image_inputs, image_idx, **kwargs) returning the expanded placeholder text",
    applies_to=(MULTIMODAL,),
    requires=PROCESSOR,
)
def processor_without_replace(repo: Repo):
    if repo.implemented(repo.processor_class, "replace_image_token") is None:
        yield Issue(*_processor_location(repo), f"{repo.processor_class.name} has no replace_image_token")


@rule(
    "TFS052",
    "processor-without-image-token",
    "the processor sets no image_token / image_token_id",
    engine="the engines cannot find the placeholder to expand, and mm_token_type_ids marks nothing",
    fix="set self.image_token (the placeholder string) and self.image_token_id in the processor's __init__",
    applies_to=(MULTIMODAL,),
    requires=PROCESSOR,
)
def processor_without_image_token(repo: Repo):
    attrs = set(repo.init_attrs(repo.processor_class))
    for current in repo.chain(repo.processor_class):
        attrs |= set(astutil.class_assignments(current.node))
    missing = [a for a in ("image_token", "image_token_id") if a not in attrs]
    if missing:
        yield Issue(*_processor_location(repo), f"{repo.processor_class.name} sets no {', '.join(missing)}")


@rule(
    "TFS053",
    "no-get-image-features",
    "the base model has no get_image_features",
    engine="vLLM encodes images by calling get_image_features(pixel_values) on the base model and fails without it",
    fix=(
        "define get_image_features(pixel_values, **kwargs) returning a ModelOutput whose pooler_output holds the "
        "projected features, one entry per image"
    ),
    applies_to=(MULTIMODAL,),
    requires=BASE,
)
def no_get_image_features(repo: Repo):
    if repo.implemented(repo.base_model, "get_image_features") is None:
        yield Issue(*repo.where(repo.base_model), f"{repo.base_model.name} has no get_image_features")


@rule(
    "TFS054",
    "no-image-token-id",
    "the config has no image_token_id",
    engine="the model cannot find the placeholders to write image features into",
    fix="save image_token_id (the tokenizer's id of the image token) in config.json",
    applies_to=(MULTIMODAL,),
    requires=("config",),
)
def no_image_token_id(repo: Repo):
    if repo.config.get("image_token_id") is None and repo.config.get("image_token_index") is None:
        yield Issue("config.json", 0, "no image_token_id in config.json")


@rule(
    "TFS055",
    "no-language-model",
    "the base model has no language_model",
    engine=(
        "transformers' get_decoder() and vLLM look for the decoder as `language_model`: LoRA, pipeline parallelism "
        "and torch.compile of the decoder then miss it"
    ),
    fix="hold the text decoder in self.language_model of the base model",
    severity=WARNING,
    applies_to=(MULTIMODAL,),
    requires=BASE,
)
def no_language_model(repo: Repo):
    if "language_model" not in repo.children(repo.base_model):
        yield Issue(*repo.where(repo.base_model), f"{repo.base_model.name} has no self.language_model")


@rule(
    "TFS056",
    "forward-without-pixel-values",
    "the base model's forward takes no pixel_values",
    engine="SGLang passes pixel_values to the base model's forward and expects it to merge the image features",
    fix="accept pixel_values in forward and write get_image_features' output at the image_token_id positions",
    severity=WARNING,
    applies_to=(MULTIMODAL,),
    requires=BASE,
)
def forward_without_pixel_values(repo: Repo):
    forward, owner = repo.method(repo.base_model, "forward")
    if forward is not None and "pixel_values" not in astutil.param_names(forward):
        yield Issue(*repo.where(owner, forward), f"{repo.base_model.name}.forward has no pixel_values")


@rule(
    "TFS057",
    "processor-without-auto-map",
    "processor_config.json has no auto_map for the custom processor classes",
    engine="AutoProcessor / AutoImageProcessor cannot find the repo's processor classes, so neither engine can load them",
    fix=(
        "add auto_map {'AutoProcessor': 'processing_x.XProcessor'} and, under image_processor, "
        "{'AutoImageProcessor': 'image_processing_x.XImageProcessor'}"
    ),
    applies_to=(MULTIMODAL,),
    requires=("config",),
)
def processor_without_auto_map(repo: Repo):
    pc = repo.processor_config
    if pc is None:
        return
    if "AutoProcessor" not in (as_dict(pc.get("auto_map")) or {}) and "AutoProcessor" not in repo.auto_map:
        yield Issue("processor_config.json", 0, "no auto_map.AutoProcessor")
    image_pc = as_dict(pc.get("image_processor"))
    if image_pc and "AutoImageProcessor" not in (as_dict(image_pc.get("auto_map")) or {}):
        yield Issue("processor_config.json", 0, "image_processor has no auto_map.AutoImageProcessor")
