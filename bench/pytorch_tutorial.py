"""The tutorial's models ("What is torch.nn really?"), timed per epoch.

Same data and split as sgdx (first 50,000 training images, last 10,000 for
validation), one thread, batch sizes from the command line.
usage: pytorch_tutorial.py DATA [BATCHES [EPOCHS]] [--model logistic|cnn|cnn_sequential|mlp|lenet] [--lr X] [--momentum X]
Prints `result: pytorch batch=B train_ms=T valid_ms=V valid_acc=A` per batch size
for the logistic model (what scripts/bench.sh parses) and
`result: pytorch model=M batch=B train_ms=T valid_ms=V valid_acc=A` for the others.
Epoch 0 warms up; the times are medians over the other epochs.

The tutorial's models come from python/sgdx_torch.py, their one home (the
classes users load sgdx's files into); this module re-exports them with read_idx
for tests/pytorch_training.py.
"""
import argparse
import os
import statistics
import sys
import time

import resource

import numpy as np
import torch
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from sgdx_torch import Mnist_CNN, Mnist_Logistic, cnn_sequential, lenet, mlp  # noqa: E402,F401  (re-exported)


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


MODELS = {"logistic": Mnist_Logistic, "cnn": Mnist_CNN, "cnn_sequential": cnn_sequential, "mlp": mlp, "lenet": lenet}
# The tutorial's settings: lr 0.5 for the logistic model, lr 0.1 momentum 0.9 from the CNN on
# (lenet: sgdx's own default, 0.05).
DEFAULT_LR = {"logistic": (0.5, 0.0), "cnn": (0.1, 0.9), "cnn_sequential": (0.1, 0.9), "mlp": (0.1, 0.9),
              "lenet": (0.05, 0.9)}


def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item(), len(xb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("batches", nargs="?", default="64", help="comma-separated batch sizes (default 64)")
    parser.add_argument("epochs", nargs="?", type=int, default=3, help="timed epochs after the warm-up (default 3)")
    parser.add_argument("--model", choices=sorted(MODELS), default="logistic")
    parser.add_argument("--lr", type=float, help="default: 0.5 logistic, 0.1 otherwise (the tutorial's)")
    parser.add_argument("--momentum", type=float, help="default: 0 logistic, 0.9 otherwise (the tutorial's)")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.model][0]
    momentum = args.momentum if args.momentum is not None else DEFAULT_LR[args.model][1]
    if args.epochs < 1:
        parser.error("EPOCHS must be at least 1 (epoch 0 only warms up)")

    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = read_idx(f"{args.data_dir}/train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
    labels = read_idx(f"{args.data_dir}/train-labels-idx1-ubyte").astype(np.int64)
    x_train, y_train, x_valid, y_valid = map(
        torch.tensor, (images[:50000], labels[:50000], images[50000:], labels[50000:]))
    tag = "" if args.model == "logistic" else f"model={args.model} "
    for bs in batches:
        train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs, shuffle=True)
        valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=bs * 2)
        model = MODELS[args.model]()
        opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        train_ms, valid_ms = [], []
        for epoch in range(args.epochs + 1):  # epoch 0 warms up
            t0 = time.perf_counter()
            model.train()
            for xb, yb in train_dl:
                loss_batch(model, F.cross_entropy, xb, yb, opt)
            t1 = time.perf_counter()
            model.eval()
            with torch.no_grad():  # the tutorial's validation: the weighted mean loss
                losses, nums = zip(*[loss_batch(model, F.cross_entropy, xb, yb) for xb, yb in valid_dl])
            t2 = time.perf_counter()
            with torch.no_grad():
                correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in valid_dl)
            if epoch:
                train_ms.append((t1 - t0) * 1e3)
                valid_ms.append((t2 - t1) * 1e3)
        print(f"result: pytorch {tag}batch={bs} train_ms={statistics.median(train_ms):.2f} "
              f"valid_ms={statistics.median(valid_ms):.2f} valid_acc={correct / len(y_valid):.4f}", flush=True)

    print(f"result: pytorch peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
