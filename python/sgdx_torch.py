"""sgdx's model files in PyTorch, with torch and numpy alone (Debian 12's python3-torch).

Put the repository's python/ folder on the path (PYTHONPATH=/path/to/sgdx/python), then:

    from sgdx_torch import load_model, save_model
    model = load_model("model.safetensors")   # the class the file's metadata (or its tensor names) says
    save_model(model, "back.safetensors")     # with the metadata sgdx writes: `sgdx eval --model back.safetensors`

What it holds:
  - load_file(path) -> {name: tensor} and save_file(tensors, path, metadata=None): the
    safetensors format as `safetensors.torch` reads and writes it (Debian 12 has no
    python3-safetensors): an 8-byte little-endian header length, a JSON header
    {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}, padded with
    spaces so the data starts 8-byte aligned, then the raw little-endian data. F32 and I64
    tensors (sgdx itself reads F32 only). read_metadata(path) -> the "__metadata__" dict.
  - the models sgdx trains, with PyTorch's state_dict names: Mnist_Logistic (lin.*),
    Mnist_CNN (conv1.* conv2.* conv3.*), cnn_sequential() (1.* 3.* 5.*), mlp(*hidden)
    (0.* 2.* ...) and lenet() (1.* 4.* 8.* 10.*); the first three as the PyTorch tutorial
    "What is torch.nn really?" writes them.
  - save_model(model, path): the state_dict with the metadata the sgdx CLI writes
    (architecture, image_rows, image_cols, classes, model, hidden for the MLP, format),
    byte for byte the file `sgdx train --save` writes for the same weights; and
    load_model(path): the model a file holds, found as sgdx finds it (models/zoo.cpp:
    the metadata's architecture, else the tensor names).
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["load_file", "save_file", "read_metadata", "Mnist_Logistic", "Mnist_CNN", "Lambda", "cnn_sequential",
           "mlp", "lenet", "ARCHITECTURES", "model_spec", "sgdx_metadata", "make_model", "save_model", "load_model"]

# safetensors dtype <-> numpy (little-endian) and torch
_DTYPES = {"F32": (np.dtype("<f4"), torch.float32), "I64": (np.dtype("<i8"), torch.int64)}
_MAX_HEADER = 100 * 1000 * 1000  # the format's limit


# ---- the file format ----------------------------------------------------------------

def _read(path):
    """(header without __metadata__, metadata, data section) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f"{path}: truncated, or not a safetensors file (header length {n}, file {len(raw)} bytes)")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, memoryview(raw)[8 + n:]


def read_metadata(path):
    """The file's "__metadata__" (str -> str; {} if it has none)."""
    return _read(path)[1]


def load_file(path):
    """{name: tensor} from a safetensors file, as safetensors.torch.load_file returns it."""
    header, _, data = _read(path)
    return _tensors(header, data, path)


def _tensors(header, data, path):
    out = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {info['dtype']}; only F32 and I64 are supported")
        dtype = _DTYPES[info["dtype"]][0]
        begin, end = info["data_offsets"]
        count = math.prod(info["shape"])
        if not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: tensor '{name}': data_offsets {info['data_offsets']} do not fit its shape "
                             f"{info['shape']} or the {len(data)}-byte data section")
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"])
        out[name] = torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))
    return out


def save_file(tensors, path, metadata=None):
    """Writes {name: tensor} (F32 or I64) and metadata {str: str} as sgdx does: the header
    compact, metadata first, tensors in name order, then padded with spaces to 8 bytes; the
    file replaced atomically (a temporary file beside it, then a rename)."""
    parts, blobs, offset = [], [], 0
    if metadata:
        parts.append('"__metadata__":{' + ",".join(f"{_json(k)}:{_json(v)}" for k, v in sorted(metadata.items())) + "}")
    for name in sorted(tensors):
        t = tensors[name].detach().cpu()
        code = next((c for c, (_, td) in _DTYPES.items() if td == t.dtype), None)
        if code is None:
            raise ValueError(f"tensor '{name}' has dtype {t.dtype}; only float32 and int64 can be saved")
        raw = t.contiguous().numpy().astype(_DTYPES[code][0], copy=False).tobytes()
        parts.append(f'{_json(name)}:{{"dtype":"{code}","shape":[{",".join(str(d) for d in t.shape)}],'
                     f'"data_offsets":[{offset},{offset + len(raw)}]}}')
        blobs.append(raw)
        offset += len(raw)
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (-(8 + len(header)) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + b"".join(blobs))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _json(s):
    return json.dumps(str(s), ensure_ascii=False)


# ---- the models -----------------------------------------------------------------------

class Mnist_Logistic(nn.Module):
    """The tutorial's logistic regression: Linear(784, 10), state_dict lin.weight (10, 784), lin.bias (10)."""

    def __init__(self, in_features=784, classes=10):
        super().__init__()
        self.lin = nn.Linear(in_features, classes)

    def forward(self, xb):
        return self.lin(xb)


class Mnist_CNN(nn.Module):
    """The tutorial's CNN: 3 x (Conv2d 3x3 stride 2 padding 1, relu), avg_pool2d(4);
    state_dict conv1.* (16, 1, 3, 3), conv2.* (16, 16, 3, 3), conv3.* (10, 16, 3, 3)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(16, classes, kernel_size=3, stride=2, padding=1)

    def forward(self, xb):
        xb = xb.view(-1, 1, 28, 28)
        xb = F.relu(self.conv1(xb))
        xb = F.relu(self.conv2(xb))
        xb = F.relu(self.conv3(xb))
        xb = F.avg_pool2d(xb, 4)
        return xb.view(-1, xb.size(1))


class Lambda(nn.Module):
    """The tutorial's Lambda: a function as a layer (no parameters)."""

    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, x):
        return self.func(x)


def _preprocess(x):
    return x.view(-1, 1, 28, 28)


def cnn_sequential(classes=10):
    """The tutorial's CNN as nn.Sequential (state_dict 1.*, 3.*, 5.*): sgdx's --model cnn_sequential."""
    return nn.Sequential(
        Lambda(_preprocess),
        nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, classes, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        Lambda(lambda x: x.view(x.size(0), -1)),
    )


def mlp(*hidden, in_features=784, classes=10):
    """sgdx's --model mlp: nn.Sequential(Linear(784, 128), ReLU(), Linear(128, 10)) (state_dict 0.*, 2.*);
    mlp(256, 128) is --hidden 256,128 (0.*, 2.*, 4.*)."""
    layers, width = [], in_features
    for h in hidden or (128,):
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def lenet(classes=10):
    """sgdx's --model lenet, LeNet-like (state_dict 1.* (16, 1, 5, 5), 4.* (32, 16, 5, 5), 8.* (128, 512),
    10.* (10, 128))."""
    return nn.Sequential(
        Lambda(_preprocess),
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),    # 16 x 12x12
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 4x4
        nn.Flatten(),
        nn.Linear(512, 128), nn.ReLU(),
        nn.Linear(128, classes),
    )


# ---- which model a file holds, as sgdx tells it (models/zoo.cpp) ------------------------

# architecture -> the "model" metadata value sgdx writes
ARCHITECTURES = {"logistic": "MnistLogistic", "cnn": "Mnist_CNN", "cnn_sequential": "Sequential",
                 "mlp": "Sequential", "lenet": "Sequential"}


def model_spec(tensors, metadata=None):
    """{architecture, image_rows, image_cols, classes, hidden} of a state_dict (name -> tensor
    or shape), from sgdx's metadata if it names an architecture, else from the tensor names."""
    metadata = metadata or {}
    shapes = {k: list(getattr(v, "shape", v)) for k, v in tensors.items()}

    def shape(name, rank):
        s = shapes.get(name)
        return s if s is not None and len(s) == rank else None

    if "architecture" in metadata:
        arch = metadata["architecture"]
        if arch not in ARCHITECTURES:
            raise ValueError(f"architecture '{arch}' is not one sgdx knows ({', '.join(ARCHITECTURES)})")
        hidden = [int(h) for h in metadata["hidden"].split(",")] if arch == "mlp" else []
        return {"architecture": arch, "image_rows": int(metadata["image_rows"]),
                "image_cols": int(metadata["image_cols"]), "classes": int(metadata["classes"]), "hidden": hidden}
    spec = {"image_rows": 28, "image_cols": 28, "hidden": []}
    if shape("lin.weight", 2):
        spec.update(architecture="logistic", classes=shapes["lin.weight"][0])
        inputs = shapes["lin.weight"][1]
    elif shape("conv3.weight", 4):
        spec.update(architecture="cnn", classes=shapes["conv3.weight"][0])
    elif shape("1.weight", 4) and shape("4.weight", 4):
        spec.update(architecture="lenet", classes=(shape("10.weight", 2) or [10])[0])
    elif shape("5.weight", 4):
        spec.update(architecture="cnn_sequential", classes=shapes["5.weight"][0])
    elif shape("0.weight", 2):
        i, widths = 0, []
        while shape(f"{i}.weight", 2):
            widths.append(shapes[f"{i}.weight"][0])
            i += 2
        if len(widths) < 2:
            raise ValueError("a Sequential of one Linear layer: use Mnist_Logistic's names (lin.*)")
        spec.update(architecture="mlp", classes=widths[-1], hidden=widths[:-1])
        inputs = shapes["0.weight"][1]
    else:
        raise ValueError("cannot tell which model this is (no architecture in its metadata, and none of "
                         "lin.weight, conv3.weight, 5.weight, 0.weight)")
    if spec["architecture"] in ("logistic", "mlp"):  # an image of n pixels: square if it can be, else one row
        side = math.isqrt(inputs)
        spec["image_rows"], spec["image_cols"] = (side, side) if side * side == inputs else (1, inputs)
        if spec["architecture"] == "logistic" and "image_rows" in metadata and "image_cols" in metadata:
            spec["image_rows"], spec["image_cols"] = int(metadata["image_rows"]), int(metadata["image_cols"])
    return spec


def sgdx_metadata(spec):
    """The "__metadata__" the sgdx CLI writes for a model of this spec."""
    meta = {"architecture": spec["architecture"], "image_rows": str(spec["image_rows"]),
            "image_cols": str(spec["image_cols"]), "classes": str(spec["classes"]),
            "model": ARCHITECTURES[spec["architecture"]], "format": "pt"}
    if spec["architecture"] == "mlp":
        meta["hidden"] = ",".join(str(h) for h in spec["hidden"] or [128])
    return meta


def make_model(spec):
    """A fresh module (PyTorch's initialisation) of a spec; the CNNs take 28x28 images only."""
    arch, classes, inputs = spec["architecture"], spec["classes"], spec["image_rows"] * spec["image_cols"]
    if arch in ("cnn", "cnn_sequential", "lenet") and (spec["image_rows"], spec["image_cols"]) != (28, 28):
        raise ValueError(f"{arch} for {spec['image_rows']}x{spec['image_cols']} images: these classes take 28x28")
    if arch == "logistic":
        return Mnist_Logistic(inputs, classes)
    if arch == "cnn":
        return Mnist_CNN(classes)
    if arch == "cnn_sequential":
        return cnn_sequential(classes)
    if arch == "mlp":
        return mlp(*spec["hidden"], in_features=inputs, classes=classes)
    if arch == "lenet":
        return lenet(classes)
    raise ValueError(f"architecture '{arch}' is not one sgdx knows ({', '.join(ARCHITECTURES)})")


def save_model(model, path):
    """Saves model's state_dict with the metadata `sgdx train --save` writes, so `sgdx eval`,
    `predict` and `train --init` know the model; the architecture comes from the tensor names
    (any module with sgdx's names will do), the image size from the input count (square if it
    can be, else one row) for the logistic model and the MLP, 28x28 for the CNNs."""
    state = model.state_dict()
    save_file(state, path, sgdx_metadata(model_spec(state)))


def load_model(path):
    """The model a file (from sgdx, save_model or any safetensors writer) holds, with its weights
    (a strict load_state_dict: every name and shape must match)."""
    header, metadata, data = _read(path)
    tensors = _tensors(header, data, path)
    try:
        model = make_model(model_spec(tensors, metadata))
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    model.load_state_dict(tensors)
    return model
