"""kdlib.stats: the seed spread, the t-interval and the twice-the-spread rule, against values worked by hand."""
import math
import re
from pathlib import Path

import pytest

import kdlib as kd
from kdlib import stats

ROOT = Path(__file__).resolve().parent.parent


def test_spread_is_the_sample_standard_deviation():
    # mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n − 1 = 3
    assert stats.spread([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3))
    assert stats.spread([5.0]) == 0.0
    assert kd.tables.spread is stats.spread


def test_t_quantiles():
    assert stats.t_quantile(1) == 12.7062 and stats.t_quantile(2) == 4.3027 and stats.t_quantile(30) == 2.0423
    assert stats.t_quantile(31) == pytest.approx(2.0395, abs=1e-4)   # beyond the table: Cornish–Fisher
    assert stats.t_quantile(10**6) == pytest.approx(1.96, abs=1e-4)  # tends to the normal quantile
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="degrees of freedom"):
            stats.t_quantile(bad)


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, s = 1, n = 3: 2 ± 4.3027 / √3 = 2 ± 2.48416
    low, high = stats.t_interval([1, 2, 3])
    assert low == pytest.approx(2 - 4.3027 / math.sqrt(3)) and high == pytest.approx(2 + 4.3027 / math.sqrt(3))
    assert stats.t_interval([7.0]) == (-math.inf, math.inf)


def test_the_rule_is_strictly_more_than_twice_the_spread():
    assert not stats.is_real(0.5, 0.25)       # equal to twice the spread: does not count
    assert stats.is_real(0.51, 0.25)
    assert not stats.is_real(-1.0, 0.1)       # a loss is not a gain
    assert stats.is_real(1.0, 0.1) and stats.FACTOR == 2.0
    for gain, spread in ((math.nan, 0.1), (1.0, -0.1), (1.0, math.inf)):
        with pytest.raises(ValueError, match="is_real"):
            stats.is_real(gain, spread)


def test_compare_by_hand():
    # baseline mean 81, s = 1; candidate mean 84, s = 1; paired gains (3, 2, 4): mean 3, s = 1
    c = stats.compare([80, 82, 81], [83, 84, 85])
    assert (c.gain, c.spread, c.threshold) == (3.0, 1.0, 2.0)
    assert c.real and not c.worse and c.verdict.startswith("a real gain")
    assert c.differences == (3.0, 2.0, 4.0) and c.difference_spread == 1.0
    assert c.interval == pytest.approx((3 - 4.3027 / math.sqrt(3), 3 + 4.3027 / math.sqrt(3)))
    assert c.describe(2, "points") == ("+3.00 points (twice the seed spread: 2.00; paired 95 % t-interval "
                                       "+0.52 to +5.48) → a real gain (more than twice the seed spread)")
    assert str(c).startswith("+3.000 (twice the seed spread: 2.000;")


def test_compare_loss_noise_and_lower_is_better():
    worse = stats.compare([84, 85, 83], [80, 82, 81])
    assert worse.gain == -3.0 and worse.worse and not worse.real and worse.verdict.startswith("a real loss")
    noise = stats.compare([80, 82, 81], [81, 83, 82])            # gain 1, twice the spread 2
    assert not noise.real and not noise.worse and noise.verdict.startswith("within the seed noise")
    # bits per character: lower is better, so the gain is the decrease: 3.55 − 3.35 = 0.2 > 2 · √0.005
    bpc = stats.compare([3.5, 3.6], [3.4, 3.3], higher_is_better=False)
    assert bpc.gain == pytest.approx(0.2) and bpc.spread == pytest.approx(math.sqrt(0.005)) and bpc.real
    assert bpc.differences == pytest.approx((0.1, 0.3))
    at_threshold = stats.compare([0, 2], [2, 4])                  # gain 2, spread √2: 2 < 2√2
    assert not at_threshold.real


def test_compare_with_one_seed_or_unpaired_runs():
    one = stats.compare([81.0], [84.0])
    assert one.gain == 3.0 and one.spread == 0.0 and not one.real and not one.judged
    assert one.verdict == "one seed: no spread to judge by, no verdict"
    assert "t-interval" not in one.describe()
    unpaired = stats.compare([80, 82, 81], [83, 85])
    assert unpaired.differences is None and unpaired.interval is None and unpaired.real
    assert "t-interval" not in unpaired.describe()


@pytest.mark.parametrize("bad,match", [([], "at least one"), ([1.0, math.nan], "NaN"), ("ab", "numbers"),
                                       ([1.0, None], "numbers")])
def test_compare_rejects_bad_values(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        stats.compare(bad, [1.0, 2.0])


def test_higher_is_better_must_be_a_bool():
    with pytest.raises(TypeError, match="higher_is_better"):
        stats.compare([1.0, 2.0], [1.0, 2.0], higher_is_better="no")


def test_the_lessons_state_the_rule_through_kdlib():
    """The twice-the-spread rule lives in kdlib.stats; no lesson re-codes it as ``2 * spread`` or ``2 * max(...)``."""
    recoded = re.compile(r"2 \* (max\(|spread|statistics\.stdev|kd\.tables\.spread|kd\.stats\.spread)")
    found = [f"{p.name}:{i}" for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if recoded.search(line)]
    assert not found, f"re-coded seed rule (use kd.stats.compare / kd.stats.is_real): {found}"
