"""kdlib's command line: ``python -m kdlib doctor | data fetch | data verify | course build | course run | bench``."""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _dataset_rows() -> list[tuple[str, str]]:
    from . import data

    rows = []
    try:
        folder, label = data.locate_fashion_mnist()
        rows.append(("fashion_mnist", f"available — {label} ({folder})"))
    except data.DataNotFoundError:
        rows.append(("fashion_mnist", "MISSING — run `python -m kdlib data fetch` (see README)"))
    try:
        import sklearn

        rows.append(("digits", f"available — bundled with scikit-learn {sklearn.__version__}"))
    except ImportError:
        rows.append(("digits", "MISSING — pip install scikit-learn"))
    try:
        from importlib.metadata import version

        rows.append(("mnist1d", f"available — generated locally by mnist1d {version('mnist1d')}"))
    except Exception:
        rows.append(("mnist1d", "MISSING — pip install mnist1d"))
    return rows


def doctor() -> int:
    """Print what this machine will run the course with (lesson 0)."""
    import numpy
    import torch
    import torchvision

    from . import __version__
    from .data import data_dir
    from .runtime import choose_device, is_smoke

    choice = choose_device()
    rows = [
        ("kdlib", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("numpy", numpy.__version__),
        ("device", f"{choice.device} — {choice.reason}"),
        ("threads", f"{torch.get_num_threads()} torch threads on {os.cpu_count()} CPU cores"),
        ("size", "SMOKE (KDLIB_SMOKE set)" if is_smoke() else "full"),
        ("data dir", str(data_dir())),
    ]
    print("Environment")
    print(_table(rows))
    print("Datasets")
    print(_table(_dataset_rows()))
    from .energy import available_backends

    print("Energy meters")
    print(_table(list(available_backends().items())))
    return 0


def data_command(action: str) -> int:
    from . import data

    try:
        if action == "fetch":
            try:
                folder, label = data.locate_fashion_mnist()
            except data.DataNotFoundError:
                print("Fashion-MNIST not found locally; downloading with torchvision...")
                folder, label = data.download_fashion_mnist(), "downloaded"
        else:
            folder, label = data.locate_fashion_mnist()
        for spec in data.FASHION_FILES:
            data.verify_file(folder / spec.name, spec)
            print(f"  ok  {spec.name}  ({label}: {folder})")
    except (data.DataNotFoundError, data.CorruptDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("Fashion-MNIST verified against the published MD5 checksums. "
          "digits and MNIST-1D need no download.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="versions, device, threads and datasets available here")
    data_p = sub.add_parser("data", help="get or check the data sets")
    data_p.add_argument("action", choices=["fetch", "verify"])
    bench_p = sub.add_parser("bench", help="kdlib side by side with plain PyTorch (KDLIB_SMOKE=1 for a quick run)")
    bench_p.add_argument("--out", type=Path, default=Path("build") / "bench.json", help="where to write JSON")
    course_p = sub.add_parser("course", help="build lessons/ and the .py pairs from solutions/, or run every solution at full size")
    course_p.add_argument("action", choices=["build", "run"])
    course_p.add_argument("--out", type=Path, default=Path("build") / "course", help="folder for executed notebooks")
    course_p.add_argument("names", nargs="*", help="only notebooks whose file name contains one of these")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return doctor()
    if args.command == "data":
        return data_command(args.action)
    if args.command == "course":
        from . import course

        if args.action == "build":
            try:
                written = course.build()
            except course.PairConflictError as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            for path in written:
                print(f"wrote {path}")
            return 0
        return 1 if course.run(args.out, args.names) else 0
    from . import bench

    bench.run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
