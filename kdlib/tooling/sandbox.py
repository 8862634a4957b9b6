"""Autograding in a sandbox: ``python -m kdlib grade ASSIGNMENT`` runs ``nbgrader autograde`` with every
submission's kernel inside bubblewrap (``bwrap``).

nbgrader executes a submission's code in a Jupyter kernel with the grader's own rights, and says in its
documentation that it does not sandbox it: an answer cell that deletes files under the course folder
wipes the gradebook and everyone's grades.  Here nbgrader itself runs as usual, outside, and owns the
gradebook; only the kernels it starts are confined.  Each kernel is started through
``python -m kdlib.tooling.sandbox CONNECTION_FILE``, which execs ``bwrap`` with (see
:func:`sandbox_argv`):

* the whole file system read-only (``--ro-bind / /``), a fresh ``/dev``, ``/proc`` and ``/tmp``;
* the **course folder hidden** behind an empty tmpfs: the gradebook, ``source/``, ``release/`` and other
  students' submissions are not there; only the folder the notebook runs in (nbgrader's copy of this
  submission, ``autograded/<student>/<assignment>/``) is bound back, writable, and the Python
  environment and kdlib's data, when they lie inside the course folder, read-only;
* **no network**: a network namespace of its own (``--unshare-net``, loopback only); nbgrader talks to
  the kernel over unix sockets (jupyter's IPC transport) in a runtime folder of this grading run;
* its own PID namespace, all capabilities dropped, a new session, killed with its parent;
* a **scratch zoo**: a folder of links to the instructor's checkpoints (read-only through the links), so
  prepared models load and a model the notebook trains is kept for that kernel only.

What it does not protect against: code that reads files readable by the grader outside the course
folder; CPU, memory or time exhaustion (nbgrader's ``--Execute.timeout`` bounds a cell's time); and the
grade itself, which nbgrader reads from the kernel's own outputs, so a submission that tampers with the
interpreter (``sys.modules``, IPython's exception handling) can still fake a passing check cell.
:func:`suspicious_cells` lists the cells of a submission that touch that machinery, for a person to read.

Introduced with the nbgrader tooling (README, "For instructors").
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The kernelspec name nbgrader is told to use for every submission.
KERNEL = "kdlib-sandbox"
_ROOT_ENV = "KDLIB_SANDBOX_ROOT"      # this grading run's folder: runtime/ (sockets), zoos/ (scratch zoos)
_COURSE_ENV = "KDLIB_SANDBOX_COURSE"  # the course folder the kernel must not see
_KEEP_ENV = "KDLIB_SANDBOX_KEEP"      # os.pathsep-joined folders inside the course folder bound back read-only

#: Code a submission has no business running; each match is shown to the instructor, not scored.
SUSPICIOUS = {
    "replaces a module in sys.modules": re.compile(r"sys\s*\.\s*modules\s*\["),
    "changes IPython's exception handling": re.compile(r"set_custom_exc|showtraceback|excepthook"),
    "assigns to kdlib or its checks": re.compile(r"^\s*(kd|kdlib)(\s*\.\s*checks)?(\s*\.\s*\w+)?\s*=[^=]", re.M),
    "rebinds the builtins": re.compile(r"__builtins__|builtins\s*\.\s*\w+\s*=[^=]"),
    "deletes files": re.compile(r"rmtree|os\s*\.\s*(remove|unlink|rmdir)|\.unlink\s*\("),
}


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing, or cannot create its namespaces on this machine."""


def bwrap() -> str:
    """Path of the ``bwrap`` program, or :class:`SandboxUnavailable` saying how to get it."""
    found = shutil.which("bwrap")
    if not found:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed, so submissions cannot be graded in a sandbox. "
                                 "Install it (Debian/Ubuntu: apt-get install bubblewrap; `make test` does this as root) "
                                 "or grade without the sandbox with plain `nbgrader autograde` (README, For instructors).")
    return found


def sandbox_argv(command: list[str], *, workdir: Path, course: Path, runtime: Path, zoo: Path,
                 keep: list[Path] = (), program: str = "bwrap") -> list[str]:
    """The ``bwrap`` command line that runs ``command`` confined as the module docstring describes.

    ``workdir`` is the only writable folder of the course (the notebook's own); ``runtime`` holds the
    kernel's sockets and ``zoo`` its scratch zoo (both writable, outside the course folder); ``keep``
    lists folders inside the course folder to show read-only (a virtual environment, the data).
    """
    workdir, course = Path(workdir).resolve(), Path(course).resolve()
    if not workdir.is_relative_to(course):
        raise ValueError(f"the notebook's folder {workdir} is not inside the course folder {course}")
    for name, path in (("runtime", runtime), ("zoo", zoo)):
        path = Path(path).resolve()
        if path.is_relative_to(course) or course.is_relative_to(path):
            raise ValueError(f"the sandbox's {name} folder {path} must lie outside the course folder {course} "
                             "(binding it writable would expose the course)")
    argv = [program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--tmpfs", str(course)]
    for path in keep:
        path = Path(path).resolve()
        if path.is_relative_to(course) and path.exists():
            argv += ["--ro-bind", str(path), str(path)]
    for path in (runtime, zoo, workdir):
        argv += ["--bind", str(Path(path).resolve()), str(Path(path).resolve())]
    argv += ["--chdir", str(workdir), "--setenv", "HOME", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
             "--setenv", "KDLIB_ZOO", str(Path(zoo).resolve()),
             # the kernel's parent is bwrap's init inside its PID namespace: ipykernel must not poll for
             # nbgrader's PID there (it would shut down at once); --die-with-parent ties it to nbgrader
             "--unsetenv", "JPY_PARENT_PID",
             "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL",
             "--new-session", "--die-with-parent", "--"]
    return argv + list(command)


def scratch_zoo(into: Path, zoo: Path | None) -> Path:
    """A new folder under ``into`` with a link to every checkpoint (and its files) of ``zoo``."""
    folder = Path(tempfile.mkdtemp(prefix="zoo-", dir=into))
    if zoo is not None and zoo.is_dir():
        for path in zoo.iterdir():
            if path.is_file():
                (folder / path.name).symlink_to(path.resolve())
    return folder


def _launch(connection_file: str) -> None:
    """The kernelspec's program: exec the IPython kernel inside the sandbox, in the current folder."""
    from ..zoo import zoo_dir

    root, course = Path(os.environ[_ROOT_ENV]), Path(os.environ[_COURSE_ENV])
    keep = [Path(p) for p in os.environ.get(_KEEP_ENV, "").split(os.pathsep) if p]
    zoo = scratch_zoo(root / "zoos", zoo_dir())
    inside = root / "runtime" / Path(connection_file).name  # nbclient may write it to /tmp, which the kernel cannot see
    if Path(connection_file).resolve() != inside.resolve():
        shutil.copyfile(connection_file, inside)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", str(inside)]
    argv = sandbox_argv(kernel, workdir=Path.cwd(), course=course, runtime=root / "runtime", zoo=zoo, keep=keep,
                        program=bwrap())
    os.execv(argv[0], argv)


def write_kernelspec(root: Path, course: Path, keep: list[Path]) -> Path:
    """``root/kernels/kdlib-sandbox/kernel.json``: the sandboxed Python kernel nbgrader is told to use."""
    folder = root / "kernels" / KERNEL
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "kdlib.tooling.sandbox", "{connection_file}"],
            "display_name": "Python 3 (kdlib sandbox)", "language": "python",
            "env": {_ROOT_ENV: str(root), _COURSE_ENV: str(course), _KEEP_ENV: os.pathsep.join(map(str, keep))}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return folder


def check_works(program: str | None = None) -> None:
    """Run ``true`` in the sandbox once; :class:`SandboxUnavailable` with bwrap's own words if it cannot."""
    program = program or bwrap()
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        for folder in (course / "work", Path(tmp) / "runtime", Path(tmp) / "zoo"):
            folder.mkdir(parents=True)
        argv = sandbox_argv(["true"], workdir=course / "work", course=course, runtime=Path(tmp) / "runtime",
                            zoo=Path(tmp) / "zoo", program=program)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot create its sandbox here: {done.stderr.strip() or done.returncode}. "
                                 "It needs user namespaces, or root; in a container, run it with those allowed.")


def suspicious_cells(notebook: Path) -> list[tuple[int, str]]:
    """``(cell number, what it does)`` for each code cell of a notebook that matches :data:`SUSPICIOUS`."""
    import nbformat

    found = []
    nb = nbformat.read(notebook, as_version=4)
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        found += [(number, what) for what, pattern in SUSPICIOUS.items() if pattern.search(cell.source)]
    return found


def _environment_folders() -> list[Path]:
    """Folders the kernel must read even when they lie inside the course folder: Python, kdlib, the data."""
    from ..cache import data_dir
    from ..zoo import zoo_dir

    kdlib_root = Path(__file__).resolve().parents[2]
    return [Path(sys.prefix), Path(sys.base_prefix), kdlib_root, data_dir(), zoo_dir()]


def grade(assignment: str, course: Path, nbgrader_args: list[str] = ()) -> int:
    """``nbgrader autograde ASSIGNMENT`` in ``course`` with every kernel sandboxed; nbgrader's exit status.

    Before grading, it checks that bubblewrap works here; after, it prints the submissions' cells that
    touch the grading machinery (:func:`suspicious_cells`).
    """
    course = Path(course).resolve()
    if not (course / "submitted").is_dir():
        raise FileNotFoundError(f"{course} has no submitted/ folder: run this in nbgrader's course folder (the one with "
                                "source/, release/ and submitted/), or pass --course.")
    check_works()
    with tempfile.TemporaryDirectory(prefix="kdlib-grade-") as tmp:
        root = Path(tmp)
        (root / "runtime").mkdir()
        (root / "zoos").mkdir()
        write_kernelspec(root, course, _environment_folders())
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # nbgrader runs alembic
        jupyter_path = os.pathsep.join(filter(None, [str(root), os.environ.get("JUPYTER_PATH")]))
        env = {**os.environ, "PATH": path, "JUPYTER_PATH": jupyter_path, "JUPYTER_RUNTIME_DIR": str(root / "runtime")}
        command = [sys.executable, "-m", "nbgrader", "autograde", assignment,
                   f"--ExecutePreprocessor.kernel_name={KERNEL}", "--KernelManager.transport=ipc",
                   # the sockets' path prefix, absolute (the kernel and nbgrader run in different folders)
                   f"--KernelManager.ip={root / 'runtime' / 'kernel'}", *nbgrader_args]
        status = subprocess.run(command, cwd=course, env=env).returncode
    flagged = [(nb, n, what) for nb in sorted((course / "submitted").glob(f"*/{assignment}/*.ipynb"))
               for n, what in suspicious_cells(nb)]
    if flagged:
        print("Read these cells before trusting their grades (they touch the grading machinery or delete files):")
        for nb, n, what in flagged:
            print(f"  {nb.relative_to(course)}, cell {n}: {what}")
    return status


if __name__ == "__main__":  # the kernelspec's entry point
    _launch(sys.argv[1])
