#!/usr/bin/env python3
"""After the Cortex-M4 ctest: repeat every run labelled `crosscheck` with the
same C source built for the host (sgdx_run_mnist) and require the firmware's
numbers exactly: the same accuracy lines and byte-identical weight files. Then
evaluate each file on all 10,000 test images with the host C API
(sgdx_c_evaluate) and with the CLI (`sgdx eval`, the runtime's own layers).

usage: device_crosscheck.py DEVICE_BUILD HOST_BUILD"""
import json
import re
import subprocess
import sys
from pathlib import Path


def fail(msg):
    print(f"device crosscheck: FAIL: {msg}")
    sys.exit(1)


def device_outputs(log: Path):
    """test name -> its output, from ctest's LastTest.log."""
    text = log.read_text(errors="replace")
    out = {}
    for m in re.finditer(r"\d+/\d+ Testing: (\S+)\n.*?\nOutput:\n-+\n(.*?)<end of output>", text, re.S):
        out[m.group(1)] = m.group(2)
    return out


def result_lines(text):
    """The lines that carry numbers the host must reproduce."""
    keep = ("accuracy", "mean loss", "predicted")
    lines = [l for l in text.splitlines() if any(k in l for k in keep)]
    # The file name differs between the two runs; nothing else may.
    return [re.sub(r"written to \S+", "written to OUT", l) for l in lines]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    device, host = Path(sys.argv[1]), Path(sys.argv[2])
    # Read first: any ctest call, --show-only too, rewrites LastTest.log.
    outputs = device_outputs(device / "Testing/Temporary/LastTest.log")
    tests = json.loads(subprocess.run(["ctest", "--test-dir", str(device), "--show-only=json-v1"],
                                      check=True, capture_output=True, text=True).stdout)["tests"]
    runner = host / "device/sgdx_run_mnist"
    evaluator = host / "device/sgdx_c_evaluate"
    cli = host / "sgdx"
    checked = 0
    for t in tests:
        labels = [v for p in t.get("properties", []) if p["name"] == "LABELS" for v in p["value"]]
        if "crosscheck" not in labels:
            continue
        name = t["name"]
        args = t["command"][-1].split()
        if name not in outputs:
            fail(f"{name}: no firmware output in LastTest.log (did ctest run it?)")
        has_out = len(args) > 5 and "=" not in args[5]
        out_file = Path(args[5]) if has_out else None
        host_file = out_file.with_suffix(".host.safetensors") if has_out else None
        host_args = args[:5] + [str(host_file)] + args[6:] if has_out else args
        run = subprocess.run([str(runner)] + host_args, capture_output=True, text=True)
        dev_lines, host_lines = result_lines(outputs[name]), result_lines(run.stdout)
        print(f"{name}:")
        for l in dev_lines:
            if "accuracy" in l and "inference" not in l:
                print(f"  device: {l}")
        if run.returncode != 0:
            fail(f"{name}: the host run failed:\n{run.stdout}{run.stderr}")
        if not dev_lines or dev_lines != host_lines:
            fail(f"{name}: the host's numbers differ from the firmware's:\n  device: {dev_lines}\n  host:   {host_lines}")
        init = [a[5:] for a in args if a.startswith("init=")]
        if not has_out:  # an int8-only run writes nothing: judge the file it read
            print(f"  host:   the same {len(host_lines)} result lines")
            out_file = Path(init[0])
        elif out_file.read_bytes() != host_file.read_bytes():
            fail(f"{name}: {out_file} (firmware) and {host_file} (host) differ")
        else:
            print(f"  host:   the same {len(host_lines)} result lines; weights byte-identical ({out_file.stat().st_size} bytes)")
        if init and has_out and Path(init[0]).read_bytes() != out_file.read_bytes():
            fail(f"{name}: the firmware read {init[0]} and saved other bytes to {out_file}")
        if init and has_out:
            print(f"  the firmware saved {init[0]} (written by sgdx train) back byte for byte")
        # All 10,000 test images: the host C API, and the runtime's own layers.
        c_api = subprocess.run([str(evaluator), str(out_file), args[0]], capture_output=True, text=True)
        if c_api.returncode != 0:
            fail(f"{name}: sgdx_c_evaluate: {c_api.stderr}")
        c_acc = re.search(r"float accuracy (\d+)\.(\d+)%", c_api.stdout)
        i8_acc = re.search(r"int8 accuracy (\d+)\.(\d+)%", c_api.stdout)
        if c_acc and i8_acc and abs(int(c_acc.group(1) + c_acc.group(2)) - int(i8_acc.group(1) + i8_acc.group(2))) > 50:
            fail(f"{name}: int8 is more than 0.5 points from float on the host: {c_api.stdout.strip()}")
        ev = subprocess.run([str(cli), "eval", "--model", str(out_file), "--data", args[0]],
                            capture_output=True, text=True)
        cli_acc = re.search(r"accuracy 0\.(\d{4})", ev.stdout)
        if ev.returncode != 0 or not cli_acc or not c_acc:
            fail(f"{name}: sgdx eval could not read {out_file}:\n{ev.stdout}{ev.stderr}")
        c_bp, cli_bp = int(c_acc.group(1) + c_acc.group(2)), int(cli_acc.group(1))
        print(f"  10,000 test images: C API {c_bp / 100:.2f}% (int8 {i8_acc.group(1)}.{i8_acc.group(2)}%), "
              f"sgdx eval {cli_bp / 100:.2f}%")
        # Other summation orders (SIMD, channels-last) may flip a near tie or two.
        if abs(c_bp - cli_bp) > 3:
            fail(f"{name}: sgdx eval ({cli_bp} bp) and the C API ({c_bp} bp) disagree by more than 3 images")
        checked += 1
    if checked < 5:
        fail(f"only {checked} crosscheck runs found")
    print(f"device crosscheck: {checked} runs reproduced exactly on the host")
    return 0


if __name__ == "__main__":
    sys.exit(main())
