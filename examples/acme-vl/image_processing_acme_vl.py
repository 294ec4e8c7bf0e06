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

"""AcmeVl image processor: pillow and NumPy only (no torchvision), so it runs wherever transformers does, the CPU build
of vLLM included."""

from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import auto_docstring


class AcmeVlImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    patch_size (`int`, *optional*, defaults to 16):
        Side, in pixels, of the vision tower's patches: each image becomes one image token per patch.
    """

    patch_size: int


# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    custom_intro="""
    The image processor of [`AcmeVlProcessor`]: resizes every image to 64x64, rescales to [0, 1] and normalises with
    mean and std 0.5. Each image gives one `pixel_values` row of shape (3, 64, 64), whatever its size: the vision
    tower's patch grid, and so the number of image tokens, is the same for every image.
    """
)
class AcmeVlImageProcessor(PilBackend):
    # Every value the processor runs with is a valid kwarg, so `save_pretrained` writes it to processor_config.json.
    valid_kwargs = AcmeVlImageProcessorKwargs
    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    # vLLM reads `size` to choose the image it profiles memory with.
    size = {"height": 64, "width": 64}
    patch_size = 16
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    def __init__(self, **kwargs: Unpack[AcmeVlImageProcessorKwargs]):
        super().__init__(**kwargs)

    def get_number_of_image_patches(self, height: int, width: int) -> int:
        """Rows of `pixel_values` an image of this size produces: one, since every image is resized."""
        return 1

    def get_number_of_image_tokens(self, height: int, width: int) -> int:
        """Image tokens for an image of this size: one per patch of the resized image."""
        return (self.size["height"] // self.patch_size) * (self.size["width"] // self.patch_size)


__all__ = ["AcmeVlImageProcessor"]
