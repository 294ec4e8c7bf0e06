"""Files built by running code rather than templates: config.json, tokenizer, tiny random weights.

Everything model-shaped comes from importing the *rendered* configuration and modeling modules out of the staging
folder, so the config, the weights and the code can never drift apart.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
import types
import uuid
from contextlib import contextmanager
from pathlib import Path

from tf_scaffold import facts, record, variants
from tf_scaffold.errors import ScaffoldError
from tf_scaffold.facts import BOS_TOKEN_ID, EOS_TOKEN_ID, IMAGE_TOKEN, IMAGE_TOKEN_ID, PAD_TOKEN_ID, SPECIAL_TOKENS
from tf_scaffold.spec import Spec

CORPUS = Path(__file__).resolve().parent / "data" / "corpus.txt"

# ChatML-style turns; the bos token opens the conversation and eos closes every turn (so generation stops there).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# The same turns, with content given as a string or as a list of parts: each image part becomes one image
# placeholder, which the processor expands into that image's tokens.
MULTIMODAL_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '" + IMAGE_TOKEN + "' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@contextmanager
def rendered_package(folder: Path):
    """Import the rendered repo in `folder` as a throw-away package (its modules use relative imports)."""
    name = f"_tf_scaffold_rendered_{uuid.uuid4().hex}"
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(folder)]
    sys.modules[name] = pkg
    try:
        yield lambda module: importlib.import_module(f"{name}.{module}")
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def build_tokenizer(spec: Spec, folder: Path) -> int:
    """Train a byte-level BPE on the shipped corpus (offline, deterministic) and save it. Returns its size."""
    if spec.encoder:
        return build_wordpiece_tokenizer(spec, folder)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [*SPECIAL_TOKENS, IMAGE_TOKEN] if spec.multimodal else list(SPECIAL_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.read_text(encoding="utf-8").splitlines(), trainer=trainer)
    expected = [(PAD_TOKEN_ID, "<|pad|>"), (BOS_TOKEN_ID, "<|bos|>"), (EOS_TOKEN_ID, "<|eos|>")]
    if spec.multimodal:
        expected.append((IMAGE_TOKEN_ID, IMAGE_TOKEN))
    for token_id, token in expected:
        assert tok.token_to_id(token) == token_id, (token, tok.token_to_id(token))

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        additional_special_tokens=specials[len(SPECIAL_TOKENS) - 1 :],
        model_max_length=spec.max_position_embeddings,
        padding_side="left",
        add_bos_token=False,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = MULTIMODAL_CHAT_TEMPLATE if spec.multimodal else CHAT_TEMPLATE
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


def build_wordpiece_tokenizer(spec: Spec, folder: Path) -> int:
    """An encoder's tokenizer, BERT's way: lower-cased WordPiece over the shipped corpus (offline), every sequence
    wrapped as `[CLS] ... [SEP]` (a pair as `[CLS] a [SEP] b [SEP]`, the second segment of token type 1). Returns its
    size.

    The vocabulary is built here rather than by `tokenizers`' WordPiece trainer, whose result changes from run to run
    (ties between equally frequent pairs): the special tokens, every character of the corpus alone and as `##c` (so any
    word of those characters has a tokenization), then the corpus' words, most frequent first."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(
        word
        for line in CORPUS.read_text(encoding="utf-8").splitlines()
        for word, _span in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))
    )
    chars = sorted({char for word in words for char in word})
    vocab = [*facts.ENCODER_SPECIAL_TOKENS, *chars, *(f"##{char}" for char in chars)]
    if len(vocab) > spec.vocab_size:
        raise ScaffoldError(f"vocab-size {spec.vocab_size} is too small for the WordPiece alphabet ({len(vocab)})")
    known = set(vocab)
    for word, _count in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(vocab) == spec.vocab_size:
            break
        if word not in known:
            vocab.append(word)

    pad, unk, cls, sep, mask = facts.ENCODER_SPECIAL_TOKENS
    tok = Tokenizer(models.WordPiece(vocab={token: i for i, token in enumerate(vocab)}, unk_token=unk))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, facts.ENCODER_CLS_TOKEN_ID), (sep, facts.ENCODER_SEP_TOKEN_ID)],
    )
    tok.add_special_tokens(list(facts.ENCODER_SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=pad,
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        mask_token=mask,
        model_max_length=spec.max_position_embeddings,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        # BERT's inputs: the segment of each token goes to the model when it has token types
        model_input_names=["input_ids", "token_type_ids", "attention_mask"]
        if spec.encoder.type_vocab_size
        else ["input_ids", "attention_mask"],
    )
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


def build_processor(spec: Spec, folder: Path) -> None:
    """processor_config.json (with the image processor nested, the v5 layout), from the rendered classes."""
    from transformers import AutoTokenizer

    with rendered_package(folder) as load:
        image_processor_cls = getattr(
            load(spec.names.image_processing_module), spec.names.multimodal_classes["image_processor"]
        )
        processor_cls = getattr(load(spec.names.processing_module), spec.names.multimodal_classes["processor"])
        tokenizer = AutoTokenizer.from_pretrained(folder)
        processor = processor_cls(image_processor_cls(), tokenizer, chat_template=MULTIMODAL_CHAT_TEMPLATE)
        payload = processor.to_dict()
    # `AutoProcessor` / `AutoImageProcessor` find the custom classes through these entries (trust_remote_code).
    payload["auto_map"] = {"AutoProcessor": f"{spec.names.processing_module}.{processor_cls.__name__}"}
    payload["image_processor"]["auto_map"] = {
        "AutoImageProcessor": f"{spec.names.image_processing_module}.{image_processor_cls.__name__}"
    }
    payload.pop("chat_template", None)  # saved once, beside the tokenizer
    (folder / "processor_config.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def build_model_files(spec: Spec, folder: Path) -> None:
    """config.json, generation_config.json and (when asked) model.safetensors, from the rendered code."""
    import torch
    from transformers import GenerationConfig

    with rendered_package(folder) as load:
        config_mod = load(spec.names.configuration_module)
        # the rendered defaults are the spec's values; an encoder's label count is PreTrainedConfig's own field
        extra = {"num_labels": spec.encoder.num_labels} if spec.encoder else {}
        config = getattr(config_mod, spec.names.config_class)(**extra)
        config.architectures = [spec.names.architecture]
        config.auto_map = dict(spec.names.auto_map)
        config.dtype = "float32"
        config.save_pretrained(folder)

        if not spec.encoder:  # an encoder does not generate
            GenerationConfig(
                bos_token_id=BOS_TOKEN_ID,
                eos_token_id=EOS_TOKEN_ID,
                pad_token_id=PAD_TOKEN_ID,
                max_new_tokens=256,
            ).save_pretrained(folder)

        if not spec.weights:
            return
        modeling_mod = load(spec.names.modeling_module)
        model_cls = getattr(modeling_mod, spec.names.architecture)
        init_config = copy.deepcopy(config)
        # Placeholder weights only; config.json keeps 0.02. Each tower initialises from its own config.
        for part in (
            init_config,
            getattr(init_config, "text_config", None),
            getattr(init_config, "vision_config", None),
        ):
            if part is not None:
                part.initializer_range = spec.weights_std
        torch.manual_seed(spec.seed)
        model = model_cls(init_config).eval()
        save_weights(model, folder / "model.safetensors")


def checkpoint_state(model) -> dict:
    """The tensors as the checkpoint stores them: tied copies dropped, and the repo's checkpoint conversions reverted
    (an MoE repo's packed experts saved one expert at a time), as `save_pretrained` does."""
    from transformers.core_model_loading import revert_weight_conversion

    state = model.state_dict()
    if getattr(model.config, "tie_word_embeddings", False):
        for target in getattr(model, "_tied_weights_keys", None) or {}:
            state.pop(target, None)
    return revert_weight_conversion(model, state)


def save_weights(model, path: Path) -> None:
    """Save the model as safetensors: `save_pretrained`'s tensors, minus its extras."""
    from safetensors.torch import save_file

    state = checkpoint_state(model)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})


def record_text(spec: Spec, base: dict[str, str]) -> str:
    """The text of the repo's `.tf-scaffold.json` for `spec`, with `base` as what tf-scaffold wrote."""
    return record.payload(spec.answers(), variants.kind_of(spec).name, base)


def write_answers(spec: Spec, folder: Path, rendered: dict[str, str]) -> None:
    """The answers `new` was given (`tf-scaffold new --spec .tf-scaffold.json` regenerates the repo), the tool version,
    and what it wrote from templates and code: the base `tf-scaffold update` merges against."""
    built = {
        name: (folder / name).read_text(encoding="utf-8") for name in record.BUILT_TEXT if (folder / name).is_file()
    }
    (folder / record.NAME).write_text(record_text(spec, {**rendered, **built}), encoding="utf-8")
