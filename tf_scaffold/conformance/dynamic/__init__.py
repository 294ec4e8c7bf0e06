"""The dynamic checks (`check --trust-remote-code`): import the repo's code and do on CPU what the engines do.

A session builds the model once and runs the checks in order, each guarded: an unexpected exception inside one becomes
an internal-error finding for its ids, and the rest still run. Every selected id ends up either in `ran` or in
`skipped`, with the reason.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path

from tf_scaffold.conformance.dynamic import rules as _rules  # noqa: F401  (registers the dynamic rules)
from tf_scaffold.conformance.dynamic.checks import (
    ATOL,
    MM_IDS,
    _check_generate,
    _check_kv_cache,
    _check_multimodal_dynamic,
    _check_pp_split,
    _check_tp_coverage,
    _check_tp_run,
    first,
    head_auto_class,
    head_auto_class_name,
    maxdiff,
)
from tf_scaffold.conformance.dynamic.generation import cache_argument, first_difference, generate_mismatch
from tf_scaffold.conformance.dynamic.probe import ENGINE, PROBE, Probe, register, set_attn
from tf_scaffold.conformance.files import safetensors_keys
from tf_scaffold.conformance.registry import DECODER, DYNAMIC, ENCODER, ERROR, INTERNAL, MULTIMODAL, RULES, ids
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.conformance.report import Finding
from tf_scaffold.facts import GENERATING_AUTO_CLASSES

__all__ = ["DYNAMIC_IDS", "MM_IDS", "cache_argument", "dynamic_checks", "first_difference", "generate_mismatch"]

DYNAMIC_IDS = ids(DYNAMIC)

# The class whose behaviour each dynamic check tests: its findings point there.
BLAME = {
    "TFS100": "base_model",
    "TFS101": "attention",
    "TFS102": "base_model",
    "TFS103": "base_model",
    "TFS104": "attention",
    "TFS105": "attention",
    "TFS106": "base_model",
    "TFS107": "base_model",
    "TFS108": "text_config_class",
    "TFS109": "text_config_class",
    "TFS110": "decoder",
    "TFS111": "head",
    "TFS120": "processor_class",
    "TFS121": "processor_class",
    "TFS122": "processor_class",
    "TFS123": "base_model",
    "TFS124": "processor_class",
    "TFS125": "base_model",
}


class Session:
    def __init__(self, root: Path, wanted: set[str]):
        self.root = root
        self.wanted = wanted
        self.findings: list[Finding] = []
        self.ran: list[str] = []
        self.skipped: dict[str, str] = {}
        self.view = Repo(root)

    def where(self, check_id: str) -> tuple[str, int]:
        with contextlib.suppress(Exception):
            name = BLAME.get(check_id)
            ref = self.view.decoder_attention[0] if name == "attention" and self.view.decoder_attention else None
            ref = ref or (getattr(self.view, name) if name and name != "attention" else None)
            if ref is not None:
                return self.view.where(ref)
        return "(dynamic)", 0

    def fail(self, check_id: str, message: str) -> None:
        self.findings.append(Finding(check_id, ERROR, *self.where(check_id), message))

    def skip(self, check_id: str, reason: str) -> None:
        self.wanted.discard(check_id)
        self.skipped[check_id] = reason

    def run(self, check_id: str) -> bool:
        """Whether `check_id` is wanted (and then it counts as run)."""
        if check_id in self.wanted and check_id not in self.ran:
            self.ran.append(check_id)
            return True
        return False

    def failed(self, *check_ids: str) -> bool:
        return any(f.id in check_ids for f in self.findings)

    @contextlib.contextmanager
    def guard(self, *check_ids: str):
        """Run a block; an unexpected exception is an internal-error finding of `check_ids`, not a crash."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - a broken check must not take the report down
            for check_id in check_ids:
                if check_id in self.wanted and check_id not in self.skipped:
                    if check_id not in self.ran:
                        self.ran.append(check_id)
                    message = f"the check failed internally: {type(err).__name__}: {err}"[:300]
                    self.findings.append(Finding(check_id, INTERNAL, *self.where(check_id), message))

    def done(self) -> tuple[list[Finding], list[str], dict[str, str]]:
        for check_id in sorted(self.wanted - set(self.ran) - set(self.skipped)):
            self.skipped[check_id] = "did not run: a check it builds on failed (see the errors reported)"
        return self.findings, self.ran, self.skipped


def dynamic_checks(root: Path, select=None, tp: bool = True) -> tuple[list[Finding], list[str], dict[str, str]]:
    """Import the repo's code and run the engines' calls on CPU: (findings, ids that ran, {id: why it did not run})."""
    import torch
    from transformers import AutoConfig, AutoModel

    root = Path(root)
    s = Session(root, set(select or DYNAMIC_IDS))
    try:
        family = s.view.family
    except Exception:  # noqa: BLE001 - the static rules report it (TFS071); the decoder checks still run
        family = MULTIMODAL if s.view.multimodal else DECODER
    encoder = family == ENCODER
    for check_id in sorted(s.wanted):
        if family not in RULES[check_id].applies_to and check_id not in MM_IDS:  # the image checks say it their way
            s.skip(check_id, RULES[check_id].skip_reason(family))
    # a decoder whose only head is a classifier (AutoModelForSequenceClassification) has nothing to decode
    head_class = head_auto_class_name(s.view.auto_map)
    if head_class not in GENERATING_AUTO_CLASSES:
        for check_id in ("TFS105", "TFS111"):
            if check_id in s.wanted:
                s.skip(check_id, f"the repo's head ({head_class}) does not generate: no KV cache to decode with")
    # what the engines serve, and shard, when architectures[0] is the base model (an embedding model): the base model
    tp_on_base = encoder or s.view.embedding
    if not tp and "TFS109" in s.wanted:
        s.skip("TFS109", "the 2-process tensor-parallel run was switched off (--no-tp)")

    s.run("TFS100")
    try:
        config = AutoConfig.from_pretrained(root, trust_remote_code=True)
        with torch.device("meta"):
            AutoModel.from_config(config, trust_remote_code=True)
    except Exception as err:  # noqa: BLE001 - any failure here is the finding
        s.fail("TFS100", f"AutoModel.from_config on the meta device failed: {type(err).__name__}: {err}")
        return s.done()

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    probe = Probe()
    register(probe)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            source = _weights_source(root, config, work)
            base = AutoModel.from_pretrained(source, trust_remote_code=True, dtype=torch.float32).eval()
        except Exception as err:  # noqa: BLE001 - any failure here is the finding
            s.fail("TFS100", f"AutoModel.from_pretrained failed: {type(err).__name__}: {err}")
            return s.done()
        g = torch.Generator().manual_seed(0)
        ids_ = torch.randint(3, min(text.vocab_size, 1000), (1, 12), generator=g)

        with torch.no_grad():
            with s.guard("TFS101", "TFS102"):
                _probe_calls(s, base, probe, ids_, text.num_hidden_layers)
            if "TFS103" in s.wanted and s.failed("TFS101", "TFS102"):
                s.skip("TFS103", "needs keyword arguments to reach the attention once per layer (TFS101/TFS102)")
            with s.guard("TFS103"):
                if s.run("TFS103"):
                    _packed(s, base, ids_, decode=not encoder)
            with s.guard("TFS104"):
                if s.run("TFS104"):
                    _implementations(s, base, ids_)
            set_attn(base, "eager")

        head, head_error = None, None
        # an encoder's TP run shards the base model: the engines never run its classifier sharded
        if s.wanted & {"TFS105", "TFS111"} or ("TFS109" in s.wanted and not tp_on_base):
            try:
                head = head_auto_class(config).from_pretrained(source, trust_remote_code=True, dtype=torch.float32)
                head = head.eval()
            except Exception as err:  # noqa: BLE001 - a head that does not load is the finding
                head_error = f"cannot load the head class: {type(err).__name__}: {err}"
        with s.guard("TFS105"):
            if s.run("TFS105"):
                if head is None:
                    s.fail("TFS105", head_error)
                else:
                    _check_kv_cache(head, ids_, s.fail)
        with s.guard("TFS111"):
            if s.run("TFS111"):
                if head is None:
                    s.fail("TFS111", head_error)
                else:
                    _check_generate(head, text, s.fail)
        with s.guard("TFS106"):
            if s.run("TFS106"):
                _buffers(s, base, config)
        with s.guard("TFS107"):
            if s.run("TFS107"):
                _roundtrip(s, root, base, ids_, work)
        with s.guard("TFS108"):
            if s.run("TFS108"):
                _check_tp_coverage(base, text, s.fail)
        if root.joinpath("processor_config.json").is_file() or hasattr(config, "vision_config"):
            with s.guard(*MM_IDS):
                # the image prompt's generate() check too, unless TFS111 already failed on text
                gen_head = head if "TFS111" in s.ran and not s.failed("TFS111") else None
                _check_multimodal_dynamic(root, base, gen_head, config, s.wanted, s.ran, s.fail, s.skip)
        else:
            for check_id in MM_IDS:
                if check_id in s.wanted:
                    s.skip(check_id, f"the repo is a text-only {family} (no vision_config, no processor_config.json)")
        with s.guard("TFS110"):
            if "TFS110" in s.wanted:
                reason = _check_pp_split(base, ids_, s.fail)
                if reason:
                    s.skip("TFS110", reason)
                else:
                    s.run("TFS110")
        with s.guard("TFS109"):
            if "TFS109" in s.wanted and tp_on_base:
                reason = _check_tp_run(source, base, ids_, work, s.fail, auto_class="AutoModel")
                if reason:
                    s.skip("TFS109", reason)
                else:
                    s.run("TFS109")
            elif "TFS109" in s.wanted:
                if head is None:
                    s.run("TFS109")
                    s.fail("TFS109", head_error)
                else:
                    reason = _check_tp_run(source, head, ids_, work, s.fail)
                    if reason:
                        s.skip("TFS109", reason)
                    else:
                        s.run("TFS109")
    return s.done()


def _weights_source(root: Path, config, work: Path) -> Path:
    """The repo itself when it has weights; else a copy with random weights saved like a real checkpoint."""
    if any(isinstance(keys, list) for keys in safetensors_keys(root).values()):
        return root
    source = work / f"random-{uuid.uuid4().hex[:12]}"
    head_auto_class(config).from_config(config, trust_remote_code=True).save_pretrained(source)
    for code in root.glob("*.py"):
        shutil.copy(code, source / code.name)
    return source


def _probe_calls(s: Session, base, probe: Probe, ids_, n_layers: int) -> None:
    """TFS101/TFS102: the registered probe is called once per layer, and a keyword passed to the base model reaches
    every call (the engines' metadata travels that way)."""
    import torch

    if not {"TFS101", "TFS102"} & s.wanted:
        return
    set_attn(base, ENGINE)
    sentinel = object()
    probe.calls.clear()
    try:
        base(
            input_ids=ids_,
            position_ids=torch.arange(12)[None],
            use_cache=False,
            return_dict=False,
            tfs_sentinel=sentinel,
        )
    except TypeError as err:  # a forward without **kwargs refuses the engines' keywords outright
        if s.run("TFS102"):
            s.fail("TFS102", f"the base model's forward refuses a keyword argument the engines pass: {err}")
        if "TFS101" in s.wanted:
            s.skip("TFS101", "the forward refused the keyword argument the attention probe needs (TFS102)")
        return
    layers = [c[0] for c in probe.calls]
    if s.run("TFS101") and sorted(layers, key=str) != sorted(range(n_layers), key=str):
        s.fail("TFS101", f"probe called {len(layers)} times for {n_layers} layers, layer_idx seen: {layers}")
    if "TFS102" in s.wanted and not probe.calls:
        # nothing to observe: the layers bypass the interface (TFS101), and the engines' verdict is that rule's
        s.skip("TFS102", "no layer called the attention interface, so no keyword can be seen reaching it (TFS101)")
    elif s.run("TFS102"):
        reached = sum(1 for c in probe.calls if c[1] is sentinel)
        if reached != len(probe.calls):
            s.fail(
                "TFS102", f"a kwarg passed to the base model reached {reached} of {len(probe.calls)} attention calls"
            )


def _packed(s: Session, base, ids_, decode: bool = True) -> None:
    """TFS103: two sequences packed in one row (positions restarting at 0) equal each alone; and, for a decoder
    (`decode`), a decode step at position_ids=[[5]] over the probe's own cache equals the full forward (RoPE is
    relative: only a decode step exposes positions rebuilt instead of read from position_ids). An encoder never
    decodes: its learned positions show in the packed row already."""
    import torch

    set_attn(base, ENGINE)

    def run(input_ids, positions, **kwargs):
        return first(base(input_ids=input_ids, position_ids=positions, use_cache=False, return_dict=False, **kwargs))[
            0
        ]

    a, b = ids_[:, :5], ids_[:, 5:]
    packed = run(
        ids_, torch.cat([torch.arange(5), torch.arange(7)])[None], tfs_segments=torch.tensor([0] * 5 + [1] * 7)
    )
    alone_a = run(a, torch.arange(5)[None], tfs_segments=torch.zeros(5, dtype=torch.long))
    alone_b = run(b, torch.arange(7)[None], tfs_segments=torch.zeros(7, dtype=torch.long))
    diff = max(maxdiff(packed[:5], alone_a), maxdiff(packed[5:], alone_b))
    if diff > ATOL:
        s.fail("TFS103", f"two packed sequences differ from running each alone by {diff:.3g}")
    if not decode:
        return
    cache: dict = {}
    run(a, torch.arange(5)[None], tfs_cache=cache)
    step = run(ids_[:, 5:6], torch.tensor([[5]]), tfs_cache=cache)
    full = run(ids_[:, :6], torch.arange(6)[None])
    diff = maxdiff(step[-1], full[-1])
    if diff > ATOL:
        s.fail(
            "TFS103",
            "a decode step at position_ids=[[5]] after a 5-token prefill differs from the full forward by "
            f"{diff:.3g}: positions are not taken from position_ids",
        )


def _implementations(s: Session, base, ids_) -> None:
    """TFS104: eager, sdpa and the probe agree on the non-pad positions of a left-padded batch."""
    import torch

    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :4] = 0
    batch = torch.cat([ids_, ids_.flip(1)])
    outs = {}
    for impl in ("eager", "sdpa", PROBE):
        set_attn(base, impl)
        outs[impl] = first(base(input_ids=batch, attention_mask=mask, use_cache=False))
    keep = mask.bool()
    for impl in ("sdpa", PROBE):
        diff = maxdiff(outs["eager"][keep], outs[impl][keep])
        if diff > ATOL:
            s.fail("TFS104", f"eager and {impl} differ by {diff:.3g} on non-pad positions")


def _buffers(s: Session, base, config) -> None:
    """TFS106: non-persistent buffers after from_pretrained (meta-device build) equal a fresh build's."""
    import torch
    from transformers import AutoModel

    fresh = dict(AutoModel.from_config(config, trust_remote_code=True).named_buffers())
    persistent = set(base.state_dict())
    for name, buf in base.named_buffers():
        if name in persistent or name not in fresh:
            continue
        if buf.shape != fresh[name].shape or not torch.allclose(buf.float(), fresh[name].float(), atol=1e-6):
            s.fail("TFS106", f"non-persistent buffer {name} after from_pretrained differs from a fresh build")


def _roundtrip(s: Session, root: Path, base, ids_, work: Path) -> None:
    """TFS107: save_pretrained / from_pretrained is exact (a unique folder: transformers caches remote code by it)."""
    import torch
    from transformers import AutoModel

    roundtrip = work / f"roundtrip-{uuid.uuid4().hex[:12]}"
    base.save_pretrained(roundtrip)
    for code in root.glob("*.py"):
        shutil.copy(code, roundtrip / code.name)
    again = AutoModel.from_pretrained(roundtrip, trust_remote_code=True, dtype=torch.float32).eval()
    set_attn(again, "eager")
    sd1, sd2 = base.state_dict(), again.state_dict()
    if sorted(sd1) != sorted(sd2) or any(not torch.equal(sd1[k], sd2[k]) for k in sd1):
        s.fail("TFS107", "state dict changed across save_pretrained/from_pretrained")
        return
    with torch.no_grad():
        if not torch.equal(first(base(input_ids=ids_)), first(again(input_ids=ids_))):
            s.fail("TFS107", "outputs changed across save_pretrained/from_pretrained")
