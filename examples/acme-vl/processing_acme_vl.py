# Copyright The AcmeVl Authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""AcmeVl processor: the image processor and the tokenizer behind one `__call__`.

The engines depend on three things here:

- `replace_image_token`: the generic `ProcessorMixin.__call__` expands each `<|image|>` in the text into the tokens it
  returns, and reports where (vLLM asks with `return_text_replacement_offsets=True` to find each image's placeholders
  in the prompt).
- `_get_num_multimodal_tokens`: vLLM asks how many tokens and `pixel_values` rows an image of a given size takes before
  it has the image (and with 10000x10000 when it profiles memory). Without it vLLM fails with "object has no attribute
  '_get_num_multimodal_tokens'".
- `image_token` / `image_token_id`: the placeholder the model's `forward` looks for, and what `mm_token_type_ids` marks
  when asked for with `return_mm_token_type_ids=True`.
"""

from transformers.processing_utils import MultiModalData, ProcessorMixin
from transformers.utils import auto_docstring


# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    custom_intro="""
    The processor of [`AcmeVlForConditionalGeneration`]: turns text with `<|image|>` placeholders and images into
    `input_ids`, `attention_mask` and `pixel_values`, each placeholder becoming 16 image tokens, one per patch.

    ```python
    >>> from PIL import Image
    >>> from transformers import AutoProcessor

    >>> processor = AutoProcessor.from_pretrained("your-org/acme-vl", trust_remote_code=True)
    >>> inputs = processor(text="<|image|>What is this?", images=Image.new("RGB", (320, 240)))
    ```
    """
)
class AcmeVlProcessor(ProcessorMixin):
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        r"""
        image_processor ([`AcmeVlImageProcessor`]):
            Resizes and normalises the images into `pixel_values`.
        tokenizer ([`PreTrainedTokenizerFast`]):
            The repo's tokenizer, which holds the `<|image|>` placeholder as a special token.
        chat_template (`str`, *optional*):
            A Jinja template that turns a list of chat messages (text and `{"type": "image"}` parts) into a prompt.
        """
        self.image_token = "<|image|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token) if tokenizer is not None else None
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    def _tokens_per_image(self, height: int, width: int) -> tuple[int, int]:
        """(image tokens, pixel_values rows) for one image: the single place both counts come from."""
        return (
            self.image_processor.get_number_of_image_tokens(height, width),
            self.image_processor.get_number_of_image_patches(height, width),
        )

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        height, width = image_inputs["pixel_values"][image_idx].shape[-2:]
        num_tokens, _ = self._tokens_per_image(int(height), int(width))
        return self.image_token * num_tokens

    def _get_num_multimodal_tokens(self, image_sizes: list[list[int]] | None = None, **kwargs) -> MultiModalData:
        """Tokens and `pixel_values` rows per image, from `[height, width]` sizes alone (no pixels needed)."""
        if not image_sizes:
            return MultiModalData()
        counts = [self._tokens_per_image(int(height), int(width)) for height, width in image_sizes]
        return MultiModalData(
            num_image_tokens=[tokens for tokens, _ in counts],
            num_image_patches=[rows for _, rows in counts],
        )

    @property
    def model_input_names(self) -> list[str]:
        return [*self.tokenizer.model_input_names, *self.image_processor.model_input_names]


__all__ = ["AcmeVlProcessor"]
