"""`import kdlib` loads the core only: plotting, widgets, torchvision, the course's experiments and its tooling wait until used.

Each check runs in a fresh interpreter, since this test session has imported everything already.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("matplotlib", "ipywidgets", "torchvision", "nbformat", "nbclient", "jupytext", "IPython",
         "kdlib.tooling", "kdlib.experiments", "kdlib.plots", "kdlib.widgets", "kdlib.shift", "kdlib.augment")


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_kdlib_loads_no_plotting_widgets_torchvision_experiments_or_tooling():
    got = _fresh(f"""
import json, sys
import kdlib as kd
data = kd.load("digits", smoke=True)
net = kd.mlp(64, (8,), 10)
kd.fit(net, data, epochs=1, quiet=True)
kd.evaluate(net, *data.test)
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
""")
    assert got == [], f"loaded before they were used: {got}"


def test_submodules_load_on_first_use():
    got = _fresh("""
import json, sys
import kdlib as kd
before = "matplotlib" in sys.modules
plots = kd.plots
from kdlib import experiments
print(json.dumps([before, "matplotlib" in sys.modules, plots is sys.modules["kdlib.plots"], "plots" in dir(kd),
                  experiments is kd.experiments, kd.distill.softmax_t.__module__]))
""")
    assert got == [False, True, True, True, True, "kdlib.distill"]
    import kdlib

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        kdlib.nonsense  # noqa: B018


def test_import_time_against_torch():
    """`import kdlib` costs little beyond `import torch` (best of three fresh runs; reported with -s)."""
    code = """
import json, time
t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); import kdlib; t2 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1]))
"""
    runs = [_fresh(code) for _ in range(3)]
    torch_s, extra_s = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"\nimport torch {torch_s:.2f} s; import kdlib after it {extra_s:.2f} s more "
          f"= {(torch_s + extra_s) / torch_s:.2f}x import torch")
    assert extra_s < 0.5 * torch_s, (torch_s, extra_s)  # 1.3x torch on top when everything was imported eagerly
