"""The project's shape: layout, dependencies in step, data manifest, CI calling the README command."""
import json
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# pip name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def _spec(requirement: str) -> str:
    return requirement.strip()[len(_name(requirement)):].replace(" ", "")


def _conda_deps() -> tuple[dict, dict]:
    conda, pip = {}, {}
    lines = (ROOT / "environment.yml").read_text().splitlines()
    in_pip = False
    for line in lines:
        m = re.match(r"^(\s*)- (.+?)\s*(#.*)?$", line)
        if not m:
            continue
        indent, item = len(m.group(1)), m.group(2)
        if item.rstrip(":") == "pip" and item.endswith(":"):
            in_pip = True
            continue
        if indent <= 2:
            in_pip = False
        if item in ("pip", "conda-forge", "nodefaults") or item.startswith("-e"):
            continue
        (pip if in_pip else conda)[_name(item)] = _spec(item)
    return conda, pip


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): _spec(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    conda, pip = _conda_deps()
    conda.pop("python", None)
    got = {**{k: v for k, v in pip.items()}, **{next((p for p, c in CONDA_NAMES.items() if c == k), k): v
                                                 for k, v in conda.items()}}
    assert got == wanted, "environment.yml and pyproject.toml name different dependencies or ranges"


def test_environment_yml_uses_conda_forge_only():
    text = (ROOT / "environment.yml").read_text()
    channels = re.search(r"channels:\n((?:\s+- .*\n)+)", text).group(1)
    assert "conda-forge" in channels and "defaults\n" not in channels.replace("nodefaults", "")


def test_top_level_layout():
    for name in ("lessons", "solutions", "kdlib", "data", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("environment.yml", "pyproject.toml", "README.md", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_data_folder_tracks_only_readme_and_manifest():
    tracked = subprocess.run(["git", "ls-files", "data"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if tracked:  # inside a git checkout
        assert sorted(tracked) == ["data/README.md", "data/manifest.json"]


def test_manifest_matches_the_code():
    from kdlib.fashion_mnist import FASHION_FILES

    manifest = json.loads((ROOT / "data" / "manifest.json").read_text())["fashion-mnist"]["files"]
    assert [(f["name"], f["md5_gz"], f["md5_content"], f["examples"]) for f in manifest] == [
        (f.name, f.gz_md5, f.raw_md5, f.count) for f in FASHION_FILES]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in (ROOT / "README.md").read_text()


def test_no_cuda_calls_outside_runtime():
    sources = [*(ROOT / "kdlib").glob("*.py"), *(ROOT / "solutions").glob("*.ipynb")]
    offenders = [p.name for p in sources if ".cuda()" in p.read_text()]
    assert offenders == []
