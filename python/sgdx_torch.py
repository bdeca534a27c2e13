"""sgdx's model files in PyTorch, with torch and numpy alone (Debian 12's python3-torch).

Put the repository's python/ folder on the path (PYTHONPATH=/path/to/sgdx/python), then:

    from sgdx_torch import load_model, save_model
    model = load_model("model.safetensors")   # the network the file's metadata (or its tensor names) says
    save_model(model, "back.safetensors")     # with the metadata sgdx writes: `sgdx eval --model back.safetensors`

Your own network: any nn.Sequential of Linear, Conv2d (with or without bias), ReLU,
MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Unflatten(1, (C, H, W)), BatchNorm1d,
BatchNorm2d, Dropout and nested Sequentials. save_model writes its printout, repr(model),
as the file's architecture, which sgdx reads instead of C++:

    from torch import nn
    from sgdx_torch import load_model, save_model
    m = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 8, 5, padding=2, bias=False),
                      nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2),
                      nn.Linear(8 * 14 * 14, 10))
    ...                                        # train it on images scaled to [0, 1], as (N, 784) rows
    save_model(m, "mine.safetensors")          # then: sgdx eval --model mine.safetensors
                                               #       sgdx predict --model mine.safetensors digit.pgm
                                               #       sgdx train --init mine.safetensors --save more.safetensors
    m = load_model("more.safetensors")         # an nn.Sequential again, with sgdx's weights (BatchNorm's
                                               # running statistics and int64 num_batches_tracked too)

save_model infers the image size and classes as sgdx does (the first Unflatten's H x W, else
the first Linear's inputs as a square image, else 28x28; the classes are the last Linear's or
Conv2d's outputs); pass image_rows=, image_cols=, classes= to say otherwise. A plain
`save_file(m.state_dict(), path, {"architecture": repr(m)})` is enough for sgdx too.

What it holds:
  - load_file(path) -> {name: tensor} and save_file(tensors, path, metadata=None): the
    safetensors format as `safetensors.torch` reads and writes it (Debian 12 has no
    python3-safetensors): an 8-byte little-endian header length, a JSON header
    {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}, padded with
    spaces so the data starts 8-byte aligned, then the raw little-endian data. F32 and I64
    tensors. read_metadata(path) -> the "__metadata__" dict.
  - the models sgdx knows by name, with PyTorch's state_dict names: Mnist_Logistic (lin.*),
    Mnist_CNN (conv1.* conv2.* conv3.*), cnn_sequential() (1.* 3.* 5.*), mlp(*hidden)
    (0.* 2.* ...) and lenet() (1.* 4.* 8.* 10.*); the first three as the PyTorch tutorial
    "What is torch.nn really?" writes them (its Lambdas in cnn_sequential as nn.Unflatten
    and nn.Flatten, so that the three Sequentials print as sgdx prints them).
  - printouts: parse_printout(text) checks one (core/printout.hpp's form) and from_printout(text)
    builds its nn.Sequential from the classes in LAYERS, with the printout's arguments read as
    Python literals (ast.literal_eval: nothing in a file is evaluated); infer_sizes(model).
  - save_model(model, path, image_rows=None, image_cols=None, classes=None): the state_dict
    with the metadata the sgdx CLI writes (architecture: a Sequential's printout, "logistic"
    or "cnn" for the tutorial's classes; image_rows, image_cols, classes, model, format),
    byte for byte the file `sgdx train --save` writes for the same weights; and
    load_model(path): the model a file holds, found as sgdx finds it (core/architecture.cpp:
    the metadata's architecture, else the tensor names).
"""
import ast
import json
import math
import os
import re
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["load_file", "save_file", "read_metadata", "Mnist_Logistic", "Mnist_CNN", "Lambda", "cnn_sequential",
           "mlp", "lenet", "ARCHITECTURES", "LAYERS", "is_printout", "parse_printout", "from_printout", "infer_sizes",
           "model_spec", "sgdx_metadata", "make_model", "save_model", "load_model"]

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
    """A JSON string as sgdx writes it (core/safetensors.cpp): '"' and '\\' escaped with a
    backslash, other control characters as \\u00XX (a printout's newlines too), the rest as is."""
    out = str(s).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f]", lambda m: f"\\u{ord(m.group()):04x}", out) + '"'


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


def cnn_sequential(classes=10):
    """The tutorial's CNN as nn.Sequential (state_dict 1.*, 3.*, 5.*): sgdx's --model cnn_sequential.
    The tutorial's Lambda(preprocess) and Lambda(lambda x: x.view(x.size(0), -1)) are written as
    nn.Unflatten and nn.Flatten, which compute the same and print as sgdx's printout of the model."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, classes, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
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
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),    # 16 x 12x12
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 4x4
        nn.Flatten(),
        nn.Linear(512, 128), nn.ReLU(),
        nn.Linear(128, classes),
    )


# ---- an nn.Sequential as PyTorch prints it (core/printout.hpp) ---------------------------

# The layers sgdx runs: printed class name -> torch.nn class. Each is built from the
# printout's own arguments (literals only), which are its constructor's keywords.
LAYERS = {c.__name__: c for c in (nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                                  nn.Flatten, nn.Unflatten, nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout)}
_WITH_TENSORS = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)  # built on the meta device first
_MAX_NESTING = 8
_LAYER_LINE = re.compile(r"\((\w+)\): (\w+)\((.*)\)")
_OPEN_LINE = re.compile(r"\((\w+)\): Sequential\(")


def is_printout(text):
    """Whether an architecture value is a printout (begins with "Sequential("), not a zoo name."""
    return text.lstrip().startswith("Sequential(")


def _excerpt(text, n=64):
    text = text.strip()
    return repr(text if len(text) <= n else text[:n] + "...")


def _literal(node):
    """A Python literal of the printout (numbers, strings, booleans, None, tuples, lists), or
    torch.Size([...]) as a tuple; nothing is evaluated."""
    if (isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.Size" and len(node.args) == 1
            and not node.keywords):
        return tuple(ast.literal_eval(node.args[0]))
    return ast.literal_eval(node)


def _arguments(text):
    """("1, 16, kernel_size=(3, 3)") -> ([1, 16], {"kernel_size": (3, 3)}), literals only."""
    if len(text) > 1000:
        raise ValueError("arguments longer than 1000 characters")
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        if not isinstance(call, ast.Call) or ast.unparse(call.func) != "f":
            raise ValueError("not an argument list")
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            raise ValueError("*, ** are not arguments a printout holds")
        return [_literal(a) for a in call.args], {k.arg: _literal(k.value) for k in call.keywords}
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
        why = str(e) if str(e).startswith("*") else "numbers, strings, True/False/None, tuples or lists"
        raise ValueError(f"its arguments are not Python literals ({why})") from None


def parse_printout(text):
    """A printout (repr of an nn.Sequential, core/printout.hpp's form) -> the tree
    [(name, line, "Sequential", children) | (name, line, class name, args, kwargs)], checked:
    only the layers in LAYERS, literal arguments, Sequentials at most 8 deep. ValueError
    ("line N: 'excerpt': problem") otherwise."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].strip() != "Sequential(":
        raise ValueError(f"line {1 if first is None else first + 1}: "
                         f"{_excerpt(lines[first] if first is not None else text)}: "
                         "expected 'Sequential(' (PyTorch's printout of an nn.Sequential)")
    root = []
    stack = [root]
    for i in range(first + 1, len(lines)):
        line = lines[i].strip()
        where = f"line {i + 1}: {_excerpt(lines[i])}"
        if not stack:
            if line:
                raise ValueError(f"{where}: text after the Sequential's closing ')'")
            continue
        if line == ")":
            if not stack[-1]:
                raise ValueError(f"{where}: an empty Sequential (it has no layers)")
            stack.pop()
            continue
        names = {c[0] for c in stack[-1]}
        opened = _OPEN_LINE.fullmatch(line)
        if opened:
            if opened.group(1) in names:
                raise ValueError(f"{where}: a second layer named '{opened.group(1)}'")
            if len(stack) >= _MAX_NESTING:
                raise ValueError(f"{where}: Sequentials nested more than {_MAX_NESTING} deep")
            children = []
            stack[-1].append((opened.group(1), i + 1, "Sequential", children))
            stack.append(children)
            continue
        layer = _LAYER_LINE.fullmatch(line)
        if not layer:
            raise ValueError(f"{where}: expected '(name): Layer(...)' or the Sequential's ')'")
        name, kind, arguments = layer.groups()
        if kind not in LAYERS:
            raise ValueError(f"{where}: sgdx does not know the layer {_excerpt(kind, 40)} "
                             f"(it knows {', '.join(LAYERS)} and Sequential)")
        if name in names:
            raise ValueError(f"{where}: a second layer named '{name}'")
        try:
            args, kwargs = _arguments(arguments)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if "device" in kwargs or "dtype" in kwargs:
            raise ValueError(f"{where}: device and dtype are not part of a printout")
        stack[-1].append((name, i + 1, kind, args, kwargs))
    if stack:
        raise ValueError(f"line {len(lines)}: {_excerpt(lines[-1])}: the text ends before the Sequential's closing ')'")
    return root


def _build(tree, meta):
    from collections import OrderedDict
    children = OrderedDict()
    for item in tree:
        name, line = item[0], item[1]
        if item[2] == "Sequential":
            children[name] = _build(item[3], meta)
            continue
        cls, args, kwargs = LAYERS[item[2]], item[3], item[4]
        if meta and cls in _WITH_TENSORS:
            kwargs = dict(kwargs, device="meta")
        try:
            children[name] = cls(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - torch's own complaint, on one line
            raise ValueError(f"line {line}: {item[2]}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return nn.Sequential(children)


def from_printout(text):
    """The nn.Sequential a printout describes (PyTorch's initialisation), built from the
    torch.nn classes in LAYERS with the printout's literal arguments; ValueError otherwise."""
    return _build(parse_printout(text), meta=False)


def _load_printout(text, tensors):
    """The Sequential of a printout with the file's tensors: its shapes are checked on the meta
    device (nothing allocated for a printout that lies), then a strict load_state_dict."""
    model = _build(parse_printout(text), meta=True)
    want = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    for name, (shape, dtype) in want.items():
        if name not in tensors:
            held = ", ".join(sorted(tensors)[:6]) + (", ..." if len(tensors) > 6 else "")
            raise ValueError(f"the printout has tensor '{name}' {list(shape)}, the file does not "
                             f"({len(tensors)} tensors: {held})")
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"tensor '{name}': the printout says {list(shape)}, the file holds "
                             f"{list(tensors[name].shape)}")
        if (tensors[name].dtype == torch.int64) != (dtype == torch.int64):
            raise ValueError(f"tensor '{name}': the printout says {dtype}, the file holds {tensors[name].dtype}")
    extra = sorted(set(tensors) - set(want))
    if extra:
        raise ValueError(f"the file has tensors the printout does not: {', '.join(extra[:6])}")
    model = model.to_empty(device="cpu")
    model.load_state_dict(tensors)
    return model


def infer_sizes(model):
    """(image_rows, image_cols, classes) a Sequential implies, as sgdx infers them
    (core/architecture.cpp infer_sizes): the first Unflatten to (C, H, W) gives H x W, or the
    first Linear's in_features an image (square if it can be, else one row), unless a Conv2d
    comes first (then 28 x 28); the classes are the last Linear's or Conv2d's outputs."""
    layers = [m for m in model.modules() if not isinstance(m, nn.Sequential)]
    rows = cols = 28
    for m in layers:
        if isinstance(m, nn.Unflatten) and len(m.unflattened_size) == 3:
            rows, cols = int(m.unflattened_size[1]), int(m.unflattened_size[2])
            break
        if isinstance(m, nn.Linear):
            rows, cols = _image_size(m.in_features)
            break
        if isinstance(m, nn.Conv2d):
            break
    classes = 10
    for m in layers:
        if isinstance(m, nn.Linear):
            classes = m.out_features
        elif isinstance(m, nn.Conv2d):
            classes = m.out_channels
    return rows, cols, classes


def _image_size(n):
    side = math.isqrt(n)
    return (side, side) if side * side == n else (1, n)


# ---- which model a file holds, as sgdx tells it (models/zoo.cpp) ------------------------

# architecture -> the "model" metadata value sgdx writes
ARCHITECTURES = {"logistic": "MnistLogistic", "cnn": "Mnist_CNN", "cnn_sequential": "Sequential",
                 "mlp": "Sequential", "lenet": "Sequential"}


def model_spec(tensors, metadata=None):
    """{architecture, image_rows, image_cols, classes, hidden} of a state_dict (name -> tensor
    or shape), from sgdx's metadata if it has an architecture (a zoo name, or a printout:
    then architecture is the printout's text), else from the tensor names."""
    metadata = metadata or {}
    shapes = {k: list(getattr(v, "shape", v)) for k, v in tensors.items()}

    def shape(name, rank):
        s = shapes.get(name)
        return s if s is not None and len(s) == rank else None

    if "architecture" in metadata:
        arch = metadata["architecture"]
        if is_printout(arch):
            rows, cols, classes = infer_sizes(_build(parse_printout(arch), meta=True))
            return {"architecture": arch, "image_rows": int(metadata.get("image_rows", rows)),
                    "image_cols": int(metadata.get("image_cols", cols)),
                    "classes": int(metadata.get("classes", classes)), "hidden": []}
        if arch not in ARCHITECTURES:
            raise ValueError(f"architecture {_excerpt(arch)} is neither one of sgdx's models "
                             f"({', '.join(ARCHITECTURES)}) nor a printout ('Sequential(...')")
        hidden = [int(h) for h in metadata["hidden"].split(",")] if arch == "mlp" and "hidden" in metadata else []
        if arch == "mlp" and not hidden:  # sgdx writes an mlp as its printout now
            raise ValueError("metadata names architecture 'mlp' but lacks 'hidden'")
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
        spec["image_rows"], spec["image_cols"] = _image_size(inputs)
        if spec["architecture"] == "logistic" and "image_rows" in metadata and "image_cols" in metadata:
            spec["image_rows"], spec["image_cols"] = int(metadata["image_rows"]), int(metadata["image_cols"])
    return spec


def sgdx_metadata(spec):
    """The "__metadata__" the sgdx CLI writes for a model of this spec: a Sequential's
    architecture is its printout (the zoo's Sequentials' too), the tutorial classes' their name."""
    arch = spec["architecture"]
    printout = arch if is_printout(arch) else repr(make_model(spec)) if ARCHITECTURES[arch] == "Sequential" else None
    return {"architecture": printout or arch, "image_rows": str(spec["image_rows"]),
            "image_cols": str(spec["image_cols"]), "classes": str(spec["classes"]),
            "model": "Sequential" if printout else ARCHITECTURES[arch], "format": "pt"}


def make_model(spec):
    """A fresh module (PyTorch's initialisation) of a spec; the CNNs take 28x28 images only."""
    arch, classes, inputs = spec["architecture"], spec["classes"], spec["image_rows"] * spec["image_cols"]
    if is_printout(arch):
        return from_printout(arch)
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
    raise ValueError(f"architecture {_excerpt(arch)} is not one sgdx knows ({', '.join(ARCHITECTURES)})")


def save_model(model, path, image_rows=None, image_cols=None, classes=None):
    """Saves model's state_dict with the metadata `sgdx train --save` writes, so `sgdx eval`,
    `predict` and `train --init` take the file: byte for byte sgdx's file for the same weights.
      - an nn.Sequential of the layers in LAYERS (nested Sequentials too): architecture is its
        printout, repr(model); image_rows, image_cols and classes are inferred as sgdx infers
        them (infer_sizes), or given here (e.g. the image size of an MLP on 1x784 rows);
      - Mnist_Logistic, Mnist_CNN, or any module with sgdx's tensor names: the architecture
        comes from the names (the tutorial classes keep theirs: "logistic", "cnn"), the image
        size from the input count (square if it can be, else one row), 28x28 for the CNNs.
    ValueError, before anything is written, for a Sequential with a layer sgdx does not run."""
    state = model.state_dict()
    if isinstance(model, nn.Sequential):
        text = repr(model)
        try:
            parse_printout(text)
        except ValueError as e:
            hint = (" (write the tutorial's Lambda(preprocess) as nn.Unflatten(1, (1, 28, 28)) and its "
                    "Lambda(view) as nn.Flatten())" if "'Lambda'" in str(e) else "")
            raise ValueError(f"save_model: {e}{hint}") from None
        rows, cols, n = infer_sizes(model)
        spec = {"architecture": text, "image_rows": rows, "image_cols": cols, "classes": n}
    else:
        spec = model_spec(state)
    for key, value in (("image_rows", image_rows), ("image_cols", image_cols), ("classes", classes)):
        if value is not None:
            spec[key] = int(value)
    save_file(state, path, sgdx_metadata(spec))


def load_model(path):
    """The model a file (from sgdx, save_model or any safetensors writer) holds, with its weights:
    the nn.Sequential its metadata's printout describes (built from LAYERS' classes with the
    printout's literal arguments, its tensors' shapes checked before anything is allocated),
    else the class its zoo name or tensor names say. A strict load_state_dict: every name and
    shape must match. ValueError naming the file and the problem otherwise. A checkpoint
    (`sgdx train --checkpoint`) loads its weights; its optimiser state is passed over."""
    header, metadata, data = _read(path)
    tensors = _tensors(header, data, path)
    if metadata.get("kind") == "sgdx-checkpoint":
        tensors = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    try:
        arch = metadata.get("architecture")
        if arch is not None and is_printout(arch):
            return _load_printout(arch, tensors)
        model = make_model(model_spec(tensors, metadata))
        model.load_state_dict(tensors)
    except (KeyError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: {str(e)[:400]}") from None
    return model
