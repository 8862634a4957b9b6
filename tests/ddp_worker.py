"""Run by tests/test_ddp.py under torchrun: the same kdlib.fit call a single process would make."""
import json
import os
import sys

import torch

import kdlib as kd

out = sys.argv[1]
ds = kd.load("digits", smoke=False)
torch.manual_seed(int(os.environ["RANK"]))  # different initial weights per rank: DDP must sync them
net = kd.mlp(64, (64,), 10)
history = kd.fit(net, ds, epochs=10, lr=3e-3, batch_size=64, quiet=True, device="cpu")
rank = int(os.environ["RANK"])
torch.save(net.state_dict(), os.path.join(out, f"rank{rank}.pt"))
with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
    json.dump({"test_acc": kd.evaluate(net, *ds.test)["acc"], "steps": len(history),
               "world": torch.distributed.get_world_size()}, f)
torch.distributed.destroy_process_group()
