"""sgdx and PyTorch take the same SGD, Adam and AdamW steps from the same weights (run when torch is installed).

Each of the tutorial's models (bench/pytorch_tutorial.py) starts from PyTorch's
own initial weights (torch.manual_seed, written with save_file), then trains one
pass over the first N training images in order, in PyTorch
(DataLoader(TensorDataset(x, y), batch_size=64, shuffle=False), F.cross_entropy,
optim.SGD(lr, momentum), optim.Adam or optim.AdamW) and in sgdx
(`sgdx train --init FILE --model X --no-shuffle --valid-size 0 --epochs 1
--train-images SUBSET --train-labels SUBSET` with `--lr --momentum`, or
`--optimizer adam|adamw` and PyTorch's defaults), SUBSET being those N images
written as IDX). Every weight of the two results must agree within the model's
tolerance (max abs difference).
usage: pytorch_training.py SGDX MNIST_DIR TMPDIR
"""
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "bench"))
from pytorch_interop import load_file, save_file, write_subset  # noqa: E402
from pytorch_tutorial import Mnist_CNN, Mnist_Logistic, cnn_sequential, mlp, read_idx  # noqa: E402

BATCH = 64

# The optimisers: (PyTorch's optimiser, its arguments, sgdx's flags for the same).
def sgd(lr, momentum):
    return (optim.SGD, dict(lr=lr, momentum=momentum), ["--lr", str(lr), "--momentum", str(momentum)])


def scheduled(optimiser, schedule):
    """The optimiser stepped by a per-batch schedule over the run: sgdx's --schedule
    onecycle (OneCycleLR(max_lr=lr, total_steps), PyTorch's defaults, momentum/beta1 cycled)
    or cosine (CosineAnnealingLR(T_max=total_steps))."""
    return optimiser[:3] + (schedule,)


def adam(name, **kwargs):  # PyTorch's defaults, which are sgdx's too, unless given
    flags = ["--optimizer", name]
    for key, flag in (("lr", "--lr"), ("weight_decay", "--weight-decay")):
        if key in kwargs:
            flags += [flag, str(kwargs[key])]
    return ({"adam": optim.Adam, "adamw": optim.AdamW}[name], kwargs, flags)


def bn_cnn():
    """A small CNN with BatchNorm after each hidden learning layer, those without bias (BatchNorm
    removes it: its gradient is zero but for rounding, which Adam would blow up to lr a step)."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(7),
        nn.Flatten(), nn.Linear(16, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))


# (name, torch factory, sgdx --model, images N, optimiser, tolerance on max |dw|)
CASES = [
    # 20 full batches and a partial one of 17: the last partial batch counts as a step in both.
    ("logistic", Mnist_Logistic, "logistic", 20 * BATCH + 17, sgd(0.5, 0.0), 1e-5),
    ("cnn", Mnist_CNN, "cnn", 50 * BATCH, sgd(0.1, 0.9), 1e-4),
    ("cnn_sequential", cnn_sequential, "cnn_sequential", 50 * BATCH, sgd(0.1, 0.9), 1e-4),
    ("mlp", mlp, "mlp", 50000, sgd(0.1, 0.9), 1e-4),  # one whole epoch: 782 steps, the last of 16 images
    # Adam and AdamW. N was chosen by running both trainings for growing N and printing the
    # max |dw| after each (with sgdx's scalar, SSE2 and AVX2 kernels alike). The MLP never turns
    # chaotic within an epoch: 3e-7 after 50 steps, 2e-6 after 200, 3.8e-6 (Adam) and 3.5e-6
    # (AdamW) after all 782, so the whole epoch is compared. The CNN does: Adam divides each
    # gradient by its own running size, so a weight whose gradient is nearly zero moves by about
    # lr whichever way the rounding tips it, and a ReLU that flips on a different summation order
    # is amplified; with PyTorch's defaults its error stays at 2-5e-6 up to 80 steps, then jumps
    # (Adam: 8e-6 at 100, 4e-5 at 120, 1e-3 at 160; AdamW: 1.7e-5 at 100, 5e-5 at 110). So 80
    # steps, 20x inside the tolerance. Adam's CNN case adds weight decay (1e-4, added to the
    # gradient), the MLP cases keep PyTorch's defaults, which are sgdx's (lr 1e-3; AdamW's
    # weight decay 1e-2, decoupled).
    ("mlp_adam", mlp, "mlp", 50000, adam("adam"), 1e-4),
    ("mlp_adamw", mlp, "mlp", 50000, adam("adamw"), 1e-4),
    ("cnn_adam", Mnist_CNN, "cnn", 80 * BATCH, adam("adam", weight_decay=1e-4), 1e-4),
    ("cnn_adamw", Mnist_CNN, "cnn", 80 * BATCH, adam("adamw"), 1e-4),
    # The schedules on the MLP, each over the whole run: OneCycleLR with Adam (beta1 cycled)
    # and with SGD (momentum cycled) for the whole epoch (1.2e-5 and 4.4e-7); CosineAnnealingLR
    # with SGD over 500 steps: runs of 100-500 steps stay within 6.2e-6, those of 600 and 782
    # jump to 9e-3 and 3e-3 (a ReLU flipped, momentum amplifying it: chaos, not a wrong rate;
    # PyTorch's rates and sgdx's agree to 2e-15).
    ("mlp_adam_onecycle", mlp, "mlp", 50000, scheduled(adam("adam", lr=0.003), "onecycle"), 1e-4),
    ("mlp_sgd_onecycle", mlp, "mlp", 50000, scheduled(sgd(0.1, 0.9), "onecycle"), 1e-4),
    # SGD made without momentum: OneCycleLR gives it one (max_momentum 0.95 at once, then cycled)
    ("logistic_sgd0_onecycle", Mnist_Logistic, "logistic", 100 * BATCH, scheduled(sgd(0.5, 0.0), "onecycle"), 1e-5),
    ("mlp_sgd_cosine", mlp, "mlp", 500 * BATCH, scheduled(sgd(0.1, 0.9), "cosine"), 1e-4),
    # Networks sgdx knows only by their printout (--model FILE holding print(model)), with
    # BatchNorm: its running statistics are compared too. BatchNorm centres every ReLU's
    # input on 0, so ReLUs flip early on a different summation order. N from PyTorch itself,
    # float32 against float64 from the same weights: SGD (lr 0.1, momentum 0.9) 1.9e-6 after
    # 10 steps, 1.2e-5 after 20, 1.1e-2 after 50; Adam 3.5e-7 after 10, 5.4e-7 after 20,
    # 5.5e-4 after 50. sgdx against PyTorch float32 after 20 steps: 1.4e-5 and 5.1e-7.
    ("bn_cnn_sgd", bn_cnn, None, 20 * BATCH, sgd(0.1, 0.9), 1e-4),
    ("bn_cnn_adam", bn_cnn, None, 20 * BATCH, adam("adam"), 1e-4),
]


def pytorch_train(model, x, y, optimiser):
    make, kwargs, _ = optimiser[:3]
    schedule = optimiser[3] if len(optimiser) > 3 else None
    opt = make(model.parameters(), **kwargs)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)
    sched = None
    if schedule == "onecycle":
        sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=kwargs["lr"], total_steps=len(loader))
    elif schedule == "cosine":
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(loader))
    model.train()
    steps = 0
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if sched:
            sched.step()
        steps += 1
    return steps


def main():
    sgdx, data_dir, tmp = sys.argv[1:4]
    os.makedirs(tmp, exist_ok=True)
    torch.set_num_threads(1)
    images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte")).reshape(-1, 784)
    labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte"))
    passed = failed = 0
    for name, factory, sgdx_model, n, optimiser, tol in CASES:
        torch.manual_seed(0)
        model = factory()
        init = os.path.join(tmp, f"init-{name}.safetensors")
        out_path = os.path.join(tmp, f"sgdx-{name}.safetensors")
        save_file(model.state_dict(), init)
        if sgdx_model is None:  # the network as PyTorch prints it
            sgdx_model = os.path.join(tmp, f"{name}.txt")
            with open(sgdx_model, "w") as f:
                f.write(repr(model))
        subset_images, subset_labels = write_subset(data_dir, tmp, n)

        x = torch.tensor(images[:n].astype(np.float32) / 255)
        y = torch.tensor(labels[:n].astype(np.int64))
        t0 = time.perf_counter()
        steps = pytorch_train(model, x, y, optimiser)
        t_torch = time.perf_counter() - t0

        t0 = time.perf_counter()
        try:
            subprocess.run([sgdx, "train", "--init", init, "--model", sgdx_model, "--no-shuffle", "--valid-size", "0",
                            "--epochs", "1", *optimiser[2], "--data", data_dir,
                            *(["--schedule", optimiser[3]] if len(optimiser) > 3 else []),
                            "--train-images", subset_images, "--train-labels", subset_labels, "-q",
                            "--save", out_path], check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as e:
            failed += 1
            print(f"FAIL {name}: {e}\n{e.stdout}{e.stderr}", flush=True)
            continue
        t_sgdx = time.perf_counter() - t0

        theirs = model.state_dict()
        ours = load_file(out_path)
        if sorted(ours) != sorted(theirs):
            failed += 1
            print(f"FAIL {name}: sgdx saved {sorted(ours)}, PyTorch has {sorted(theirs)}", flush=True)
            continue
        diffs = {k: (ours[k] - theirs[k]).abs().max().item() for k in theirs}
        start = load_file(init)
        moved = max((theirs[k] - start[k]).abs().max().item() for k in theirs if theirs[k].is_floating_point())
        worst = max(diffs, key=diffs.get)
        ok = diffs[worst] <= tol
        passed += ok
        failed += not ok
        opt_name = optimiser[0].__name__ + " " + (" ".join(f"{k} {v}" for k, v in optimiser[1].items())
                                                  or "(PyTorch's defaults)")
        if len(optimiser) > 3:
            opt_name += f" with {optimiser[3]}"
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {n} images, {steps} steps of {opt_name.strip()}: "
              f"max |dw| {diffs[worst]:.2e} ({worst}; tolerance {tol:.0e}; the weights moved up to {moved:.3f}) "
              f"[PyTorch {t_torch:.1f} s, sgdx {t_sgdx:.1f} s]", flush=True)
    print(f"pytorch training: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
