"""Names derived from the model name: module, classes, files and `auto_map`. One home for every spelling."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from functools import cached_property

from tf_scaffold.errors import SpecError

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_ .][A-Za-z0-9]+)*$")


def normalise_name(name: str) -> tuple[str, str]:
    """Return (module_name, class_prefix) for a user-facing name like ``acme-lm`` or ``AcmeLM``.

    Raises SpecError with a one-line fix when the name cannot become a Python module and class prefix.
    """
    raw = name.strip()
    if not raw:
        raise SpecError("model name is empty: give a name such as `acme-lm`")
    if "/" in raw or "\\" in raw or raw in (".", ".."):
        raise SpecError(
            f"model name {name!r} contains a path separator: give a bare name and choose the folder with -o DIR"
        )
    if any(tok in raw for tok in ("{{", "}}", "{%", "%}", "{#", "#}")):
        raise SpecError(f"model name {name!r} contains template syntax: use letters, digits, '-' or '_'")
    if not _NAME_RE.match(raw):
        raise SpecError(
            f"model name {name!r} is not usable: start with a letter and use only letters, digits and single '-', '_',"
            " '.' or ' ' separators (e.g. `acme-lm`)"
        )
    parts = [p for p in re.split(r"[-_ .]", raw) if p]
    module = "_".join(p.lower() for p in parts)
    prefix = "".join(p[:1].upper() + p[1:] for p in parts)
    if keyword.iskeyword(module) or keyword.issoftkeyword(module) or keyword.iskeyword(prefix):
        raise SpecError(f"model name {name!r} becomes the Python keyword {module!r}: choose another name")
    if not module.isidentifier() or not prefix.isidentifier():
        raise SpecError(
            f"model name {name!r} does not give a valid Python identifier: use letters, digits, '-' or '_'"
        )
    return module, prefix


@dataclass(frozen=True)
class Names:
    """Every name of a repo, from its model name and kind (`multimodal`, an encoder's task, or neither)."""

    name: str
    multimodal: bool = False
    encoder_task: str | None = None  # "embed" or "classify" for an encoder

    @cached_property
    def _parts(self) -> tuple[str, str]:
        return normalise_name(self.name)

    @property
    def module_name(self) -> str:
        return self._parts[0]

    @property
    def class_prefix(self) -> str:
        return self._parts[1]

    @property
    def repo_name(self) -> str:
        return self.module_name.replace("_", "-")

    @property
    def model_type(self) -> str:
        return self.module_name

    @property
    def config_class(self) -> str:
        return f"{self.class_prefix}Config"

    @property
    def base_model_class(self) -> str:
        return f"{self.class_prefix}Model"

    @property
    def head_class(self) -> str:
        """The model class with a head: what `generate()` runs, or an encoder's classifier."""
        if self.encoder_task:
            return f"{self.class_prefix}ForSequenceClassification"
        suffix = "ForConditionalGeneration" if self.multimodal else "ForCausalLM"
        return f"{self.class_prefix}{suffix}"

    @property
    def architecture(self) -> str:
        """`config.architectures[0]`: the class the checkpoint holds. An embedding model's is the base model, which
        is also how the engines tell an embedding model from a classifier."""
        return self.base_model_class if self.encoder_task == "embed" else self.head_class

    @property
    def configuration_module(self) -> str:
        return f"configuration_{self.module_name}"

    @property
    def modeling_module(self) -> str:
        return f"modeling_{self.module_name}"

    @property
    def processing_module(self) -> str:
        return f"processing_{self.module_name}"

    @property
    def image_processing_module(self) -> str:
        return f"image_processing_{self.module_name}"

    @property
    def text_model_type(self) -> str:
        return f"{self.model_type}_text" if self.multimodal else self.model_type

    @property
    def vision_model_type(self) -> str:
        return f"{self.model_type}_vision" if self.multimodal else ""

    @property
    def multimodal_classes(self) -> dict[str, str]:
        """The extra classes of a multimodal repo (empty for a text-only one)."""
        if not self.multimodal:
            return {}
        p = self.class_prefix
        return {
            "text_config": f"{p}TextConfig",
            "vision_config": f"{p}VisionConfig",
            "text_model": f"{p}TextModel",
            "vision_model": f"{p}VisionModel",
            "processor": f"{p}Processor",
            "image_processor": f"{p}ImageProcessor",
        }

    @property
    def text_config_class(self) -> str:
        """The decoder's config: the repo's config, or `text_config` of a multimodal one."""
        return self.multimodal_classes.get("text_config", self.config_class)

    @property
    def text_model_class(self) -> str:
        """The decoder stack: the base model, or `language_model` of a multimodal one."""
        return self.multimodal_classes.get("text_model", self.base_model_class)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class name the repo defines that transformers must not already own."""
        return (self.head_class, self.base_model_class, self.config_class, *self.multimodal_classes.values())

    @property
    def auto_map(self) -> dict[str, str]:
        # The engines import AutoConfig and instantiate only AutoModel (the base model); the head class is for
        # transformers users and `generate()`.
        auto_map = {
            "AutoConfig": f"{self.configuration_module}.{self.config_class}",
            "AutoModel": f"{self.modeling_module}.{self.base_model_class}",
        }
        if self.encoder_task:
            auto_map["AutoModelForSequenceClassification"] = f"{self.modeling_module}.{self.head_class}"
        elif self.multimodal:
            # AutoProcessor is also read from here when processor_config.json has no auto_map of its own.
            auto_map["AutoModelForImageTextToText"] = f"{self.modeling_module}.{self.head_class}"
            auto_map["AutoProcessor"] = f"{self.processing_module}.{self.multimodal_classes['processor']}"
        else:
            auto_map["AutoModelForCausalLM"] = f"{self.modeling_module}.{self.head_class}"
        return auto_map
