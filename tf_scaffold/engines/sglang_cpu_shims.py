"""Two import-time fixes that let SGLang run on CPU from the registry's packages (installed into the environment
`tf-scaffold env sglang-cpu` builds; a `.pth` file calls `install()` in every interpreter of it, SGLang's spawned
processes included, and nothing happens until the module concerned is imported).

1. torchvision. SGLang imports torchvision unconditionally, and the wheel the registry has for torch 2.13 is
   CUDA-linked: its `_C` extension cannot load against CPU torch. torchvision carries on without its C++ ops, except
   that `torchvision/_meta_registrations.py` calls `register_fake("torchvision::nms")` (and `qnms`), which raises
   "operator torchvision::nms does not exist". Declaring those two schemas first lets it import; the C++ ops (nms,
   roi_align, ...) stay unavailable, and SGLang's text and image paths do not use them.

2. `sglang.srt.utils.common.get_device()`. SGLang 0.5.23's Transformers backend materialises the parameters still on
   the meta device after its module replacement with `get_device()` (`TransformersBase._init_parameters`). That
   function ignores `device="cpu"` and raises "No accelerator (CUDA, XPU, HPU, NPU, MUSA, MPS) or platform plugin
   is available" unless SGLANG_USE_CPU_ENGINE=1, which in turn needs a CPU build of `sgl_kernel` no registry has.
   A text model never gets there (SGLang replaces all its Linear, RMSNorm and embedding layers), but any vision tower
   with a LayerNorm, a convolution or a position embedding does. Where `get_device()` would raise, the wrapper
   answers "cpu", the only device such a machine has; where it finds an accelerator it is unchanged.
"""

import importlib.abc
import importlib.machinery
import sys


def _declare_torchvision_ops() -> None:
    import torch

    for op in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:  # already defined: a working torchvision _C is loaded
            pass


def _cpu_when_no_accelerator(common) -> None:
    get_device = common.get_device

    def get_device_or_cpu(device_id=None):
        try:
            return get_device(device_id)
        except RuntimeError as err:
            if "No accelerator" not in str(err):
                raise
            return "cpu"

    common.get_device = get_device_or_cpu


class _SglangCpuShims(importlib.abc.MetaPathFinder):
    torchvision_done = False

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" and not _SglangCpuShims.torchvision_done:
            _SglangCpuShims.torchvision_done = True
            _declare_torchvision_ops()
            return None  # the normal finders import torchvision
        if name != "sglang.srt.utils.common":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _cpu_when_no_accelerator(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if not any(isinstance(hook, _SglangCpuShims) for hook in sys.meta_path):
        sys.meta_path.insert(0, _SglangCpuShims())
