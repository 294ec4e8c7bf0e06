"""What the rules take a repo for, its family: a text decoder, a multimodal (vision-language) decoder or an encoder the
engines run with bidirectional attention; and whether vLLM serves it as an embedding model or a classifier."""

from __future__ import annotations

import ast
from functools import cached_property

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.files import as_dict
from tf_scaffold.conformance.registry import DECODER, ENCODER, MULTIMODAL
from tf_scaffold.facts import SEQUENCE_CLASSIFICATION_AUTO_CLASS

# transformers' mask builders: a base model that builds only a padding mask attends bidirectionally (an encoder's).
BIDIRECTIONAL_MASKS = (
    "create_bidirectional_mask",
    "_prepare_4d_attention_mask",
    "_prepare_4d_attention_mask_for_sdpa",
    "get_extended_attention_mask",
)


CAUSAL_MASKS = (
    "create_causal_mask",
    "create_sliding_window_causal_mask",
    "create_chunked_causal_mask",
    "create_masks_for_generate",
    "_prepare_4d_causal_attention_mask",
    "_prepare_4d_causal_attention_mask_for_sdpa",
)


# architectures vLLM does not serve as embedding models although they end with `Model` (`_SUFFIX_TO_DEFAULTS`)
NOT_EMBEDDING_SUFFIXES = ("ChatModel", "LMHeadModel", "ClassificationModel", "RewardModel", "PreTrainedModel")


class FamilyDetection:
    """`Repo.family` and the facts it rests on."""

    @cached_property
    def bidirectional_mask_only(self) -> bool:
        """Whether the base model builds a padding mask and no causal one (in its forward or its submodules')."""
        refs = list(self.chain(self.base_model))
        for child in self.children(self.base_model).values():
            if isinstance(child, ClassRef):
                refs += self.chain(child)
        called: set[str] = set()
        for ref in refs:
            forward = astutil.method(ref.node, "forward")
            if forward is not None:
                called |= {astutil.call_name(n) or "" for n in ast.walk(forward) if isinstance(n, ast.Call)}
        return bool(called & set(BIDIRECTIONAL_MASKS)) and not called & set(CAUSAL_MASKS)

    @cached_property
    def encoder(self) -> bool:
        """A text-only repo the engines run (or should run) with bidirectional attention: no nested text_config, a base
        model that takes input_ids, and a module of it that sets `is_causal` False (what both engines read), or a
        padding mask and no causal one built (what an encoder does, whatever its attention says)."""
        if self.multimodal or self.composite or not self.takes_text:
            return False
        return bool(self.noncausal_modules) or self.bidirectional_mask_only

    @cached_property
    def composite(self) -> bool:
        """Whether config.json nests a text_config: both engines then never take the model for an encoder (vLLM's
        `config != config.get_text_config()`, SGLang's `self.config != self.text_config`)."""
        return bool(as_dict((self.config or {}).get("text_config")))

    @cached_property
    def takes_text(self) -> bool:
        """Whether the base model's forward takes `input_ids`: the engines' Transformers backend serves text (a vision,
        audio or time-series encoder without a vision_config is no text encoder)."""
        forward, _ = self.method(self.base_model, "forward")
        return forward is not None and "input_ids" in astutil.param_names(forward)

    @cached_property
    def embedding(self) -> bool:
        """Whether vLLM serves the repo as an embedding model: architectures[0] ends with `Model` (vLLM's
        `_SUFFIX_TO_DEFAULTS`, where `...LMHeadModel` and the like generate or classify)."""
        arch = self.architectures[0] if self.architectures else ""
        if arch.endswith(("ForTextEncoding", "EmbeddingModel")):
            return True
        return arch.endswith("Model") and not arch.endswith(NOT_EMBEDDING_SUFFIXES)

    @cached_property
    def classifier_head(self) -> ClassRef | None:
        """The sequence classifier of the repo: auto_map's AutoModelForSequenceClassification class, else
        architectures[0] when it is a `...ForSequenceClassification` of the repo."""
        names = [self.auto_class(SEQUENCE_CLASSIFICATION_AUTO_CLASS)]
        names += [a for a in self.architectures[:1] if a.endswith("ForSequenceClassification")]
        return next((ref for name in names if name and (ref := self.find(name)) is not None), None)

    @cached_property
    def family(self) -> str:
        """What the rules take the repo for: multimodal, encoder or decoder (a text decoder)."""
        return MULTIMODAL if self.multimodal else ENCODER if self.encoder else DECODER
