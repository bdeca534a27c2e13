"""A PyTorch user's round trip with sgdx model files (run when torch is installed).

Loads an sgdx-trained model into the tutorial's Mnist_Logistic with a strict
load_state_dict, checks its predictions equal `sgdx predict`, then saves the
state_dict from PyTorch and has `sgdx eval` read it back. The file access follows
the safetensors format spec (the `safetensors` package is not in Debian 12):
8-byte little-endian header length, JSON header, raw little-endian data.
usage: pytorch_interop.py SGDX MNIST_DIR TMPDIR
"""
import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import torch

# The tutorial's model class, as the benchmark runs it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from pytorch_tutorial import Mnist_Logistic  # noqa: E402


def load_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[8 + n + begin:8 + n + end], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(array.copy())
    return out


def save_file(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in sorted(tensors.items()):
        raw = t.detach().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    sgdx, data_dir, tmp = sys.argv[1:4]
    os.makedirs(tmp, exist_ok=True)
    model_path = os.path.join(tmp, "sgdx.safetensors")
    subprocess.run([sgdx, "train", "--data", data_dir, "--epochs", "1", "-q", "--save", model_path], check=True,
                   stdout=subprocess.DEVNULL)
    model = Mnist_Logistic()
    model.load_state_dict(load_file(model_path))  # strict: names and shapes must match exactly

    with open(os.path.join(data_dir, "t10k-images-idx3-ubyte"), "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)
    indices = [0, 1, 2, 3, 4, 8, 1234, 9999]
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor(images[indices], dtype=torch.float32) / 255), dim=1).numpy()
    args = [sgdx, "predict", "--model", model_path, "--images-file", os.path.join(data_dir, "t10k-images-idx3-ubyte")]
    for i in indices:
        args += ["--index", str(i)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    sgdx_probs = np.array([float(v) for v in re.findall(r"^  \d ([0-9.e-]+)$", out, re.M)]).reshape(len(indices), 10)
    assert np.abs(sgdx_probs - probs).max() < 1e-5, np.abs(sgdx_probs - probs).max()
    assert (sgdx_probs.argmax(1) == probs.argmax(1)).all()

    back = os.path.join(tmp, "from-pytorch.safetensors")
    save_file(model.state_dict(), back)
    out = subprocess.run([sgdx, "eval", "--model", back, "--data", data_dir], check=True, capture_output=True,
                         text=True).stdout
    acc = float(re.search(r"accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.88, out
    print(f"pytorch interop: {len(indices)} predictions agree (max |dp| {np.abs(sgdx_probs - probs).max():.2e}), "
          f"PyTorch-written file evaluates to {acc}")
    print("pytorch interop: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
