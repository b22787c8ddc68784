"""Training: the generic loop, checkpoints, distributed helpers."""
