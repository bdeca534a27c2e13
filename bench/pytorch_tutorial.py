"""The tutorial's final code ("What is torch.nn really?"), timed per epoch.

Same data and split as sgdx (first 50,000 training images, last 10,000 for
validation), one thread, batch sizes from the command line. Prints
`result: pytorch batch=B train_ms=T valid_ms=V valid_acc=A` per batch size.
"""
import statistics
import sys
import time

import resource

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(784, 10)

    def forward(self, xb):
        return self.lin(xb)


def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item(), len(xb)


def main():
    data_dir = sys.argv[1]
    batches = [int(b) for b in sys.argv[2].split(",")] if len(sys.argv) > 2 else [64]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = read_idx(f"{data_dir}/train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
    labels = read_idx(f"{data_dir}/train-labels-idx1-ubyte").astype(np.int64)
    x_train, y_train, x_valid, y_valid = map(
        torch.tensor, (images[:50000], labels[:50000], images[50000:], labels[50000:]))
    for bs in batches:
        train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs, shuffle=True)
        valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=bs * 2)
        model = Mnist_Logistic()
        opt = optim.SGD(model.parameters(), lr=0.5)
        train_ms, valid_ms = [], []
        for epoch in range(epochs + 1):  # epoch 0 warms up
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
        print(f"result: pytorch batch={bs} train_ms={statistics.median(train_ms):.2f} "
              f"valid_ms={statistics.median(valid_ms):.2f} valid_acc={correct / len(y_valid):.4f}", flush=True)


    print(f"result: pytorch peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
