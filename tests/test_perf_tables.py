import pytest

from kdlib import perf, tables


def test_matmul_gflops_is_positive():
    assert perf.matmul_gflops(64, seconds=0.05) > 0


def test_achieved_gflops_formula():
    # 1 GFLOP forward per example, 10 examples, 30 s, training = 3 x forward
    assert perf.achieved_gflops(1e9, 10, 30.0) == pytest.approx(1.0)
    assert perf.achieved_gflops(1e9, 10, 10.0, training=False) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        perf.achieved_gflops(1e9, 10, 0)


def test_mean_std_and_table():
    assert tables.mean_std([0.5, 0.7]) == "60.00 ± 14.14"
    assert tables.mean_std([0.5]) == "50.00 ± 0.00"
    with pytest.raises(ValueError):
        tables.mean_std([])
    t = tables.Table([{"a": 1, "b": 0.5}, {"a": 20000, "b": None}], "title")
    text = str(t)
    assert "title" in text and "20,000" in text
    page = t._repr_html_()
    assert page.startswith("<table") and ">title</caption>" in page
    assert "padding:" in page and "white-space:nowrap" in page  # cells never run together, "a ± b" never wraps
