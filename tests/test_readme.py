"""The README's five-line example must run and reach the accuracy it promises (full size)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_reaches_85_percent(monkeypatch, capsys):
    text = README.read_text()
    block = re.search(r"<!-- readme-example.*?-->\s*```python\n(.*?)```", text, re.S)
    assert block, "README lost its marked example block"
    code = block.group(1)
    assert len(code.strip().splitlines()) == 5
    monkeypatch.setenv("KDLIB_SMOKE", "0")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    acc = namespace["kd"].evaluate(namespace["net"], *namespace["data"].test)["acc"]
    assert acc >= 0.85
    assert "'acc'" in capsys.readouterr().out
