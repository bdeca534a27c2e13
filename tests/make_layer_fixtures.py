"""Writes the PyTorch fixtures that tests/test_batchnorm.cpp compares sgdx against.

Regenerate (Debian's torch; the pyenv python3 on PATH has none):
    /usr/bin/python3 tests/make_layer_fixtures.py
which rewrites, from torch.manual_seed(0):

tests/fixtures/batchnorm.safetensors, for three layers (metadata: their settings):
  bn1d   nn.BatchNorm1d(3) on (4, 3)
  bn2d   nn.BatchNorm2d(3, eps=1e-3, momentum=0.2) on (4, 3, 5, 7)
  plain  nn.BatchNorm1d(3, affine=False, track_running_stats=False) on (4, 3, 5)
  cumavg nn.BatchNorm1d(3, momentum=None) on (4, 3): the cumulative average
  <layer>.weight, .bias        the initial affine parameters (random, not PyTorch's 1 and 0)
  <layer>.dy                   the gradient of the output at every step: loss = sum(y * dy)
  steps 0 and 1 in training mode, step 2 in eval mode, each on its own input:
  <layer>.x<k>, .y<k>          input and output
  <layer>.dx<k>, .dweight<k>, .dbias<k>    the gradients of that step alone
  <layer>.running_mean<k>, .running_var<k>, .num_batches_tracked<k> (I64, shape [])
                               the buffers after step k (layers that track them)
tests/fixtures/batchnorm2d_state.safetensors: bn2d's state_dict after its steps, as a
  model file (metadata {"format": "pt"}, as sgdx and safetensors.torch write), with
  num_batches_tracked set to 2^53 + 1, which a float or a double cannot hold.
"""
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from sgdx_torch import save_file  # noqa: E402  (F32 and I64, written as sgdx writes)

LAYERS = {
    "bn1d": ("BatchNorm1d(3)", lambda: nn.BatchNorm1d(3), (4, 3)),
    "bn2d": ("BatchNorm2d(3, eps=0.001, momentum=0.2)", lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=0.2), (4, 3, 5, 7)),
    "plain": ("BatchNorm1d(3, affine=False, track_running_stats=False)",
              lambda: nn.BatchNorm1d(3, affine=False, track_running_stats=False), (4, 3, 5)),
    # last, so the layers above draw the same random numbers as before it was added
    "cumavg": ("BatchNorm1d(3, momentum=None)", lambda: nn.BatchNorm1d(3, momentum=None), (4, 3)),
}
TRAINING_STEPS = 2  # then one step in eval mode


def main():
    torch.manual_seed(0)
    tensors, metadata, states = {}, {"format": "pt"}, {}
    for name, (text, make, shape) in LAYERS.items():
        metadata[name] = text
        m = make()
        if m.affine:
            with torch.no_grad():
                m.weight.copy_(torch.randn(3) * 0.5 + 1)
                m.bias.copy_(torch.randn(3) * 0.5)
            tensors[f"{name}.weight"] = m.weight.detach().clone()
            tensors[f"{name}.bias"] = m.bias.detach().clone()
        dy = torch.randn(shape)
        tensors[f"{name}.dy"] = dy
        for k in range(TRAINING_STEPS + 1):
            m.train(k < TRAINING_STEPS)
            # channels of different means and spreads, the batch's mean far from 0
            scale = torch.tensor([0.5, 2.0, 1.0]).view(1, 3, *([1] * (len(shape) - 2)))
            x = (torch.randn(shape) * scale + 1.5 + k).requires_grad_(True)
            y = m(x)
            (y * dy).sum().backward()
            tensors[f"{name}.x{k}"] = x.detach().clone()
            tensors[f"{name}.y{k}"] = y.detach().clone()
            tensors[f"{name}.dx{k}"] = x.grad.detach().clone()
            if m.affine:
                tensors[f"{name}.dweight{k}"] = m.weight.grad.detach().clone()
                tensors[f"{name}.dbias{k}"] = m.bias.grad.detach().clone()
                m.zero_grad()
            if m.track_running_stats:
                tensors[f"{name}.running_mean{k}"] = m.running_mean.detach().clone()
                tensors[f"{name}.running_var{k}"] = m.running_var.detach().clone()
                tensors[f"{name}.num_batches_tracked{k}"] = m.num_batches_tracked.detach().clone()
        states[name] = m.state_dict()
    fixtures = os.path.join(HERE, "fixtures")
    os.makedirs(fixtures, exist_ok=True)
    save_file(tensors, os.path.join(fixtures, "batchnorm.safetensors"), metadata)
    state = {k: v.detach().clone() for k, v in states["bn2d"].items()}
    assert state["num_batches_tracked"].dtype == torch.int64 and state["num_batches_tracked"].shape == ()
    state["num_batches_tracked"] = torch.tensor(2**53 + 1, dtype=torch.int64)
    save_file(state, os.path.join(fixtures, "batchnorm2d_state.safetensors"), {"format": "pt"})


if __name__ == "__main__":
    main()
