"""ONNX export of a model's sampling path, for deployment without ganvae or PyTorch (``ganvae export RUN DIR
--format onnx``; ``pip install 'ganvae[onnx]'``).

Two graphs, each with a dynamic batch size ``B``, images ``(B, C, H, W)`` float32 in [0, 1] out:

- ``decoder.onnx``: ``latent`` ``(B, L)`` float32 (and ``label`` ``(B,)`` int64 for a conditional model) -> ``image``.
  The network alone: for walks, edits and latents of your own.
- ``sampler.onnx``: ``uniform`` ``(B, 2)`` (in [0, 1)) and ``normal`` ``(B, D)`` (standard normal) float32 (and
  ``label`` for a conditional model) -> ``image``. The model's whole prior as arithmetic on that noise, then the
  decoder: the learned mixture of an encoder model (``uniform[:, 0]`` picks the class by its share where no label
  is given, ``uniform[:, 1]`` the component by its weight; then ``mean + L @ normal``), a self-conditioned GAN's
  pseudo-class by its share (``uniform[:, 0]``), or N(0, I) itself (``latent = normal``). Draw the noise with any
  random generator (numpy's), and the samples follow the same distribution as ``ganvae sample``.

``onnx.json`` beside them records the shapes, the opset, the check against PyTorch and how to call them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from ganvae.common.files import atomic_write_text
from ganvae.common.pixels import to_unit

OPSET = 18
TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| over pixels in [0, 1] that the export accepts


class Decoder(nn.Module):
    """latent ``(B, L)`` (, label ``(B,)``) -> image ``(B, C, H, W)`` in [0, 1]: ``model.generate`` as one graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, latent: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return to_unit(self.model.decode(latent, label), self.model.value_range).float()


class Sampler(nn.Module):
    """uniform ``(B, 2)``, normal ``(B, D)`` (, label ``(B,)``) -> image: the latent prior's own traceable transform
    of its noise (:meth:`~ganvae.models.latents.LatentPrior.transform`), then the decoder (the module docstring
    says what each prior does)."""

    def __init__(self, model):
        super().__init__()
        self.decoder = Decoder(model)
        self.prior = model.latent_prior
        self.kind = self.prior.kind

    def forward(self, uniform: torch.Tensor, normal: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.prior.transform(uniform, normal, label), label)


def example_inputs(model, n: int = 4, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Seeded inputs of each graph, by name: the export traces with them and checks onnxruntime against them."""
    g = torch.Generator().manual_seed(seed)
    latent = model.latent_prior.draw(n, g)
    normal = torch.randn(n, model.noise_dim, generator=g)
    uniform = torch.rand(n, 2, generator=g)
    inputs = {"decoder": {"latent": latent}, "sampler": {"uniform": uniform, "normal": normal}}
    if model.conditional:
        label = model.labels_for(n).long().cpu()
        for names in inputs.values():
            names["label"] = label
    return inputs


def export_onnx(model, out: str | Path, check: bool = True, source: str | None = None) -> dict:
    """Write ``decoder.onnx``, ``sampler.onnx`` and ``onnx.json`` for ``model`` (on the CPU, in float32, eval mode)
    into the folder ``out``; with ``check``, run both with onnxruntime on seeded inputs and refuse (``RuntimeError``)
    a graph whose images differ from PyTorch's by more than :data:`TOLERANCE`. ``source``: the run exported, for
    the record (a later export into the same folder replaces an export of the same run only). Returns the record
    written."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(f"--format onnx needs onnx and onnxscript ({err}): pip install 'ganvae[onnx]'") from err
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    inputs = example_inputs(model)
    graphs = {"decoder": Decoder(model).eval(), "sampler": Sampler(model).eval()}
    record = {"format": "ganvae-onnx-1", "opset": OPSET, "value_range": "[0, 1]",
              "image_shape": list(model.image_shape), "conditional": model.conditional,
              "prior": model.latent_prior.describe(), "graphs": {}, "source": {"run": source}}
    batch = torch.export.Dim("batch", min=1)
    for name, module in graphs.items():
        args = inputs[name]
        path = out / f"{name}.onnx"
        tmp = path.with_suffix(".onnx.tmp")
        with torch.no_grad(), _quiet():
            program = torch.onnx.export(module, (), kwargs=args, dynamo=True, opset_version=OPSET,
                                        input_names=list(args), output_names=["image"], external_data=False,
                                        dynamic_shapes={k: {0: batch} for k in args}, verbose=False)
            program.save(str(tmp))
            expected = module(**args)
        tmp.replace(path)  # atomic: a half-written graph never carries the final name
        entry = {"file": path.name, "inputs": {k: {"shape": ["B", *v.shape[1:]], "dtype": str(v.dtype).split(".")[-1]}
                                               for k, v in args.items()},
                 "output": {"image": ["B", *model.image_shape]}}
        if check:
            entry["max_abs_difference"] = _check(path, args, expected)
        record["graphs"][name] = entry
    record["sampler_prior"] = graphs["sampler"].kind
    atomic_write_text(out / "onnx.json", json.dumps(record, indent=2) + "\n")
    return record


@contextlib.contextmanager
def _quiet():
    """The exporter's chatter (optional torchvision ops skipped, constant folding) as errors only."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # the exporter's own deprecation and axis-naming notices
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def card(name: str, record: dict) -> str:
    """The folder's README.md: what each graph takes and gives, and how to call it with onnxruntime and numpy."""
    conditional = record["conditional"]
    label = ', "label": np.full(16, 7, dtype=np.int64)' if conditional else ""
    dec = record["graphs"]["decoder"]["inputs"]["latent"]["shape"][1]
    d = record["graphs"]["sampler"]["inputs"]["normal"]["shape"][1]
    diffs = ", ".join(f"{k} {v['max_abs_difference']:.1e}" for k, v in record["graphs"].items()
                      if "max_abs_difference" in v)
    return f"""# {name} as ONNX

Exported by `ganvae export ... --format onnx` (opset {record['opset']}; dynamic batch size B). Images come out
`(B, {', '.join(map(str, record['image_shape']))})` float32 in [0, 1].

- `sampler.onnx`: `uniform` (B, 2) in [0, 1) and `normal` (B, {d}) standard normal{', and `label` (B,) int64'
                                                                                   if conditional else ''}
  -> `image`. The model's prior ({record['prior']}) is inside the graph: give it noise and it draws samples.
- `decoder.onnx`: `latent` (B, {dec}){' and `label` (B,) int64'
                                      if conditional else ''} -> `image`: the network alone, for latents of your own.

```python
import numpy as np
import onnxruntime as ort

rng = np.random.default_rng(0)
sampler = ort.InferenceSession("sampler.onnx")
images = sampler.run(["image"], {{"uniform": rng.random((16, 2), dtype=np.float32),
                                 "normal": rng.standard_normal((16, {d}), dtype=np.float32){label}}})[0]
```

Checked at export against PyTorch on seeded inputs (largest pixel difference: {diffs or 'not checked'};
tolerance {TOLERANCE}). `onnx.json` records the shapes.
"""


def _check(path: Path, args: dict[str, torch.Tensor], expected: torch.Tensor) -> float:
    """Run ``path`` with onnxruntime on ``args``; the largest pixel difference from PyTorch's ``expected``."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError(f"checking the export needs onnxruntime ({err}): pip install 'ganvae[onnx]' (from "
                          "Python, export_onnx(..., check=False) skips the check)") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["image"], {k: v.numpy() for k, v in args.items()})[0]
    diff = float(abs(torch.from_numpy(got) - expected).max())
    if not diff <= TOLERANCE:
        raise RuntimeError(f"{path}: onnxruntime's images differ from PyTorch's by {diff:.3g} (more than {TOLERANCE}); "
                           "the export is not faithful. Report it with the model's config.")
    return diff
