"""Worker for the distributed tests: one rank of gloo jobs on 127.0.0.1 (run by test_distributed.py).

``python dist_worker.py RANK WORLD SPECS.json``: SPECS holds a list of jobs, each ``{"model", "overrides",
"run_dir", "port"[, "resume"]}``, trained one after the other by this process (a process group per job, on its own
port), so a batch of jobs pays for one start-up of Python, torch and ganvae instead of one each.
"""

import json
import os
import sys


def main():
    rank, world, spec_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    import torch

    torch.set_num_threads(1)
    from ganvae.config import build_config
    from ganvae.training.launch import resume_checkpoint
    from ganvae.training.trainer import Trainer

    for spec in json.loads(open(spec_path).read()):
        os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(spec["port"]),
                           "GANVAE_DIST_TIMEOUT": "60"})
        cfg = build_config(spec["model"], overrides=spec["overrides"])
        resume = resume_checkpoint(spec["run_dir"], spec["model"]) if spec.get("resume") else None
        trainer = Trainer(cfg, spec["run_dir"], resume=resume)
        trainer.fit()
        # every rank dumps its final weights (parameters; batch-norm running statistics are rank 0's,
        # broadcast by DDP at each forward) so the test can compare them across ranks
        # (and a self-conditioned model's pseudo-classes, which every rank must share)
        state = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        state.update({k: v.clone() for k, v in trainer.model.state_dict().items() if k.startswith("pseudo_classes.")})
        torch.save(state, os.path.join(spec["run_dir"], f"rank{rank}_weights.pt"))


if __name__ == "__main__":
    main()
