import json
import subprocess
import sys
from pathlib import Path


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kdlib", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_doctor_prints_the_table():
    out = _run("doctor")
    assert out.returncode == 0, out.stderr
    for word in ("torch", "torchvision", "python", "device", "threads", "fashion_mnist", "digits", "mnist1d",
                 "Energy meters", "estimate"):
        assert word in out.stdout
    assert "available" in out.stdout


def test_data_verify():
    out = _run("data", "verify")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(" ok ") == 4


def test_data_verify_reports_missing_data(tmp_path):
    import os

    env = {**os.environ, "KDLIB_DATA": str(tmp_path)}
    code = ("import sys, kdlib.fashion_mnist as d, kdlib.tooling.cli as m; from pathlib import Path; "
            f"d.DEBIAN_FASHION_DIR = Path({str(tmp_path / 'none')!r}); sys.exit(m.main(['data', 'verify']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "apt-get install dataset-fashion-mnist" in out.stderr


def test_bench_smoke_run(tmp_path):
    import os

    target = tmp_path / "bench.json"
    corpus = Path(__file__).resolve().parent.parent / "data" / "shakespeare"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shakespeare").symlink_to(corpus, target_is_directory=True)  # fetched by make data
    out = _run("bench", "--out", str(target), env={**os.environ, "KDLIB_SMOKE": "1", "KDLIB_DATA": str(tmp_path / "data")})
    assert out.returncode == 0, out.stderr
    result = json.loads(target.read_text())
    assert set(result["epoch"]["ratio_to_kdlib"]) == {"kdlib", "tutorial", "tensordataset", "floor"}
    assert all(v > 0 for v in result["epoch"]["seconds_per_epoch"].values())
    assert "compute floor" in out.stdout
    assert set(result["kd_epoch"]["ratio_to_scratch"]) == {"scratch", "kd_cached", "kd_online"}
    assert 0 < result["teacher"]["share_of_peak"] and result["teacher"]["matmul_peak_gflops"] > 0
    assert result["meter"]["overhead_ratio"] > 0
    assert "estimate" in result["meter"]["source"] or "counter" in result["meter"]["source"]
    assert set(result["latency"]["microseconds"]) == {"teacher", "student", "student_int8"}
    assert set(result["lm"]["ratio_to_scratch"]) == {"scratch", "kd_top8", "kd_bucket8", "kd_sampled8", "kd_top84",
                                                     "kd_online"}
    assert result["lm"]["teacher_share_of_peak"] > 0 and result["lm"]["kv_cache_speedup"] > 0
    assert set(result["lm"]["student_share_of_peak"]) == {"40k", "115k"} and "LM students training" in out.stdout
    eff = result["lm_efficiency"]["share_of_peak"]
    assert set(eff) == {"teacher", "115k", "40k"} and all(row["kdlib"] > 0 and row["plain"] > 0 for row in eff.values())
    par = result["parallel"]
    assert par["identical"] is True and set(par["seconds"]) == {"one process", "one thread, serial", "workers"}
    assert "independent 40k runs" in out.stdout
    threads = result["threads"]
    assert threads["policy"]["writing"] == 1 and {"idle", "loaded"} <= set(threads)
    assert all(v > 0 for v in threads["loaded"]["writing_chars_per_s"].values()) and "Batch-1 work" in out.stdout


def test_unknown_command_fails_cleanly():
    out = _run("frobnicate")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_doctor_shows_invalid_settings_as_rows():
    import os

    out = _run("doctor", env={**os.environ, "KDLIB_SMOKE": "maybe", "KDLIB_DEVICE": "tpu"})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "INVALID — KDLIB_SMOKE='maybe' is not understood" in out.stdout
    assert "INVALID — Unknown device 'tpu'" in out.stdout and "(check KDLIB_DEVICE)" in out.stdout
    assert "fashion_mnist" in out.stdout  # the rest of the report is still there


def test_bench_checks_its_output_path_before_running(tmp_path):
    folder, a_file = tmp_path / "results", tmp_path / "a_file"
    folder.mkdir()
    a_file.write_text("")
    for target, why in ((folder, "it is a folder"), (a_file / "bench.json", "is a file, not a folder")):
        out = _run("bench", "--out", str(target))
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert f"cannot write the benchmark results to {target} (" in out.stderr and why in out.stderr
        assert out.stdout == ""  # nothing was run
