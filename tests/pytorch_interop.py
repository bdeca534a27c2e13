"""A PyTorch user's round trip with sgdx model files (run when torch is installed).

For each model sgdx trains (logistic regression, Mnist_CNN, its nn.Sequential form,
the MLP, a two-hidden-layer MLP and the LeNet-like CNN), then, through the helper
users are told to use (python/sgdx_torch.py, the one home of the tutorial's classes,
which the benchmark runs too):
  - PyTorch loads the file into the model's class with a strict load_state_dict,
    and its softmax probabilities on several test images equal `sgdx predict`'s
    (within 1e-5, same argmax); load_model picks that class from the file alone,
    and save_model writes back the very bytes sgdx wrote (metadata included);
  - PyTorch saves its state_dict (no metadata, as torch code would) and
    `sgdx eval --model FILE` reads it back, finding the architecture from the
    tensor names, with exactly the accuracy sgdx reported after training.
Then `sgdx train --init` starts from a PyTorch-written Mnist_CNN file: with 0
epochs it saves the very same weights, with 1 epoch it keeps training from them.
The networks train on a subset of the training images (written as IDX to TMPDIR)
to keep this short. load_file and save_file are the helper's (the `safetensors`
package is not in Debian 12); tests/pytorch_training.py imports them from here.
usage: pytorch_interop.py SGDX MNIST_DIR TMPDIR
"""
import os
import re
import subprocess
import sys
import time
import traceback

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))
sys.path.insert(0, os.path.join(here, "..", "bench"))
from pytorch_tutorial import read_idx  # noqa: E402
from sgdx_torch import (Mnist_CNN, Mnist_Logistic, cnn_sequential, lenet, load_file, load_model,  # noqa: E402
                        mlp, read_metadata, save_file, save_model)


def write_idx(path, array):
    """An IDX file (uint8) holding `array`: images (N, 28, 28) or labels (N,)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        for d in array.shape:
            f.write(d.to_bytes(4, "big"))
        f.write(array.tobytes())


def write_subset(data_dir, tmp, n):
    """The first n training images and labels as IDX files in tmp; returns their paths."""
    images = os.path.join(tmp, f"train-{n}-images-idx3-ubyte")
    labels = os.path.join(tmp, f"train-{n}-labels-idx1-ubyte")
    write_idx(images, read_idx(os.path.join(data_dir, "train-images-idx3-ubyte"))[:n])
    write_idx(labels, read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte"))[:n])
    return images, labels


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_accuracy(out):
    return float(re.search(r"^test: loss [0-9.]+ +accuracy ([0-9.]+)", out, re.M).group(1))


# name: (torch module factory, sgdx train flags, minimum test accuracy after the short training)
MODELS = {
    "logistic": (Mnist_Logistic, ["--model", "logistic"], 0.88),
    "cnn": (Mnist_CNN, ["--model", "cnn", "--lr", "0.1", "--momentum", "0.9"], 0.6),  # 0.72 measured
    "cnn_sequential": (cnn_sequential, ["--model", "cnn_sequential", "--lr", "0.1", "--momentum", "0.9"], 0.6),
    "mlp": (mlp, ["--model", "mlp", "--lr", "0.1", "--momentum", "0.9"], 0.90),
    "mlp_256_128": (lambda: mlp(256, 128), ["--model", "mlp", "--hidden", "256,128", "--lr", "0.1", "--momentum", "0.9"],
                    0.90),
    "lenet": (lenet, ["--model", "lenet"], 0.9),  # 0.966 measured
}
SUBSET = 16000  # training images for the short runs: 15,000 train (235 batches of 64), the last 1,000 validate
INDICES = [0, 1, 2, 3, 4, 8, 1234, 9999]


def main():
    sgdx, data_dir, tmp = sys.argv[1:4]
    os.makedirs(tmp, exist_ok=True)
    torch.set_num_threads(1)
    test_images_path = os.path.join(data_dir, "t10k-images-idx3-ubyte")
    test_images = read_idx(test_images_path).reshape(-1, 784)
    train_images, train_labels = write_subset(data_dir, tmp, SUBSET)
    short = ["--train-images", train_images, "--train-labels", train_labels, "--valid-size", "1000", "--epochs", "1"]
    passed = failed = 0

    def check(name, fn):
        nonlocal passed, failed
        t0 = time.perf_counter()
        try:
            detail = fn()
            passed += 1
            print(f"ok   {name} ({time.perf_counter() - t0:.1f} s){': ' + detail if detail else ''}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            if isinstance(e, subprocess.CalledProcessError):
                print(f"FAIL {name}: {e}\n{e.stdout}{e.stderr}", flush=True)
            elif isinstance(e, AssertionError):
                print(f"FAIL {name}: {e}", flush=True)
            else:
                print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
                traceback.print_exc()

    def helper_dtypes():
        # The helper's own round trip: F32 and I64 tensors (a BatchNorm's num_batches_tracked is I64), metadata.
        path = os.path.join(tmp, "helper-dtypes.safetensors")
        tensors = {"w": torch.randn(3, 5), "steps": torch.tensor([7, -1], dtype=torch.int64), "empty": torch.zeros(0)}
        save_file(tensors, path, {"note": 'a "quoted" value'})
        back = load_file(path)
        assert sorted(back) == sorted(tensors) and all(
            back[k].dtype == t.dtype and torch.equal(back[k], t) for k, t in tensors.items()), back
        assert read_metadata(path) == {"note": 'a "quoted" value'}, read_metadata(path)
        with open(path, "rb") as f:
            assert (8 + int.from_bytes(f.read(8), "little")) % 8 == 0, "the data does not start 8-byte aligned"

    check("python/sgdx_torch.py: F32 and I64 tensors and metadata round trip", helper_dtypes)
    torch_files = {}
    for name, (factory, flags, min_acc) in MODELS.items():
        model_path = os.path.join(tmp, f"sgdx-{name}.safetensors")
        back = os.path.join(tmp, f"pytorch-{name}.safetensors")

        def sgdx_to_pytorch():
            # The logistic model trains one full epoch as before; the others a short one.
            data = ["--data", data_dir, "--epochs", "1"] if name == "logistic" else ["--data", data_dir] + short
            out = run([sgdx, "train", *flags, *data, "-q", "--save", model_path])
            acc = test_accuracy(out)
            assert acc > min_acc, out
            model = factory()
            model.load_state_dict(load_file(model_path))  # strict: names and shapes must match exactly
            model.eval()
            found = load_model(model_path)
            assert type(found) is type(model) and shapes(found) == shapes(model), f"load_model: {found}"
            again = os.path.join(tmp, f"helper-{name}.safetensors")
            save_model(found, again)
            with open(again, "rb") as a, open(model_path, "rb") as b:
                assert a.read() == b.read(), "save_model(load_model(file)) is not the file sgdx wrote"
            with torch.no_grad():
                probs = torch.softmax(model(torch.tensor(test_images[INDICES], dtype=torch.float32) / 255),
                                      dim=1).numpy()
            args = [sgdx, "predict", "--model", model_path, "--images-file", test_images_path]
            for i in INDICES:
                args += ["--index", str(i)]
            out = run(args)
            sgdx_probs = np.array([float(v) for v in re.findall(r"^  \d ([0-9.e-]+)$", out, re.M)])
            assert sgdx_probs.size == 10 * len(INDICES), out
            sgdx_probs = sgdx_probs.reshape(len(INDICES), 10)
            predicted = [int(k) for k in re.findall(r"predicted (\d)", out)]
            dp = np.abs(sgdx_probs - probs).max()
            assert dp < 1e-5, f"max |dp| {dp:.2e}"
            assert (sgdx_probs.argmax(1) == probs.argmax(1)).all(), (sgdx_probs.argmax(1), probs.argmax(1))
            assert predicted == list(probs.argmax(1)), (predicted, probs.argmax(1))
            save_file(model.state_dict(), back)
            torch_files[name] = (back, acc)
            return (f"test accuracy {acc}, {len(INDICES)} predictions agree (max |dp| {dp:.2e}), "
                    f"load_model + save_model give the same bytes")

        def pytorch_to_sgdx():
            assert name in torch_files, "no PyTorch-written file (the step before failed)"
            written, trained_acc = torch_files[name]
            out = run([sgdx, "eval", "--model", written, "--data", data_dir])
            acc = float(re.search(r"accuracy ([0-9.]+)", out).group(1))
            assert acc == trained_acc, f"eval of the PyTorch-written file: {acc}, after training: {trained_acc}\n{out}"
            return f"PyTorch-written file (no metadata) evaluates to {acc}"

        check(f"{name}: sgdx -> PyTorch", sgdx_to_pytorch)
        check(f"{name}: PyTorch -> sgdx eval", pytorch_to_sgdx)

    def init_round_trip():
        written, _ = torch_files["cnn"]
        out_path = os.path.join(tmp, "init-0-epochs.safetensors")
        run([sgdx, "train", "--init", written, "--model", "cnn", "--data", data_dir, "--epochs", "0", "-q",
             "--save", out_path])
        a, b = load_file(written), load_file(out_path)
        assert sorted(a) == sorted(b), (sorted(a), sorted(b))
        for k in a:
            assert torch.equal(a[k], b[k]), k

    def init_continue():
        written, acc_before = torch_files["cnn"]
        out_path = os.path.join(tmp, "init-1-epoch.safetensors")
        out = run([sgdx, "train", "--init", written, "--model", "cnn", "--lr", "0.1", "--momentum", "0.9",
                   "--data", data_dir, *short, "-q", "--save", out_path])
        acc = test_accuracy(out)
        assert acc > acc_before, f"test accuracy {acc} after one more epoch, {acc_before} before\n{out}"
        Mnist_CNN().load_state_dict(load_file(out_path))
        return f"test accuracy {acc_before} -> {acc}"

    if "cnn" in torch_files:
        check("cnn: sgdx train --init PyTorch file --epochs 0 saves the same weights", init_round_trip)
        check("cnn: sgdx train --init PyTorch file --epochs 1 keeps training", init_continue)
    else:
        failed += 2
        print("FAIL cnn: --init checks skipped (no PyTorch-written cnn file)")
    print(f"pytorch interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
