"""One rank of the 2-process tensor-parallel check (TFS109), run by `torch.distributed.run`:

    python -m torch.distributed.run --nproc-per-node 2 --module tf_scaffold.conformance.dynamic.tp_worker \\
        SOURCE IDS_PT OUT_PT AUTO_CLASS

Loads the repo's model through AUTO_CLASS (a decoder's head, an encoder's AutoModel) sharded by its tensor-parallel
plan (`DistributedConfig(tp_plan="auto")`, gloo on CPU), runs the ids, and on rank 0 saves its output (the logits, or
the last hidden state of a base model) and the names of the parameters each rank holds only a shard of.
"""

import sys

import torch
import transformers
from transformers.distributed import DistributedConfig


def main() -> None:
    source, ids_path, out_path, auto_class = sys.argv[1:5]
    model = (
        getattr(transformers, auto_class)
        .from_pretrained(
            source, trust_remote_code=True, dtype=torch.float32, distributed_config=DistributedConfig(tp_plan="auto")
        )
        .eval()
    )
    ids = torch.load(ids_path)
    with torch.no_grad():
        out = model(input_ids=ids)
        logits = out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state
    sharded = [n for n, p in model.named_parameters() if getattr(p, "_local_tensor", p).numel() < p.numel()]
    if torch.distributed.get_rank() == 0:
        torch.save({"logits": logits, "sharded": sharded}, out_path)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
