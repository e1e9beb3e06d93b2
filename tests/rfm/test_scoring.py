"""The scoring rules on their own: PostgreSQL's percentile_disc, cut points, scores, the
eight segments, and how leaves name segments and stages."""

import pytest

from campaigns.rfm.codes import Segment, Stage, resolve_codes, segment_for
from campaigns.rfm.services import scoring


def test_percentile_disc_is_the_first_value_reaching_the_fraction():
    values = list(range(10, 110, 10))  # 10, 20, ..., 100
    assert [scoring.percentile_disc(values, f) for f in scoring.FRACTIONS] == [20, 40, 60, 80]
    # PostgreSQL says the same: {1,2,2,3} and, with 0.6 x 5 = 3.0000000000000004, {1,2,3,4}
    assert [scoring.percentile_disc([1, 2, 3], f) for f in scoring.FRACTIONS] == [1, 2, 2, 3]
    assert [scoring.percentile_disc([1, 2, 3, 4, 5], f) for f in scoring.FRACTIONS] == [
        1, 2, 3, 4]
    assert scoring.percentile_disc([7], 0.2) == 7


def test_quintile_cuts_and_scores():
    cuts = scoring.quintile_cuts(days=list(range(10)), frequency=[1] * 6 + [2, 3, 4, 9],
                                 monetary=list(range(100, 1100, 100)))
    assert cuts == scoring.Cuts(r=(1, 3, 5, 7), f=(2, 2, 2, 4), m=(201, 401, 601, 801))
    assert [scoring.score_r(days, cuts.r) for days in range(10)] == [
        5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    # six one-time buyers share the lowest F; the ties make the scores skip 2 to 4
    assert [scoring.score_up(f, cuts.f) for f in (1, 2, 3, 4, 9)] == [1, 4, 4, 5, 5]
    assert [scoring.score_up(m, cuts.m) for m in (200, 201, 800, 801)] == [1, 2, 4, 5]


@pytest.mark.parametrize(("scores", "segment"), [
    ((3, 3, 3), "important_value"), ((5, 2, 4), "important_develop"),
    ((2, 5, 3), "important_keep"), ((1, 1, 5), "important_retain"),
    ((4, 4, 2), "general_value"), ((3, 1, 1), "general_develop"),
    ((2, 3, 2), "general_keep"), ((2, 2, 2), "general_retain"),
])
def test_the_eight_segments_at_the_default_high_score(scores, segment):
    assert segment_for(*scores, highs=(3, 3, 3)) == segment


def test_leaf_values_are_codes_or_chinese_names():
    assert resolve_codes("重要价值", Segment, "RFM 分群") == ["important_value"]
    assert resolve_codes(["dormant", "流失", "沉睡"], Stage, "阶段") == ["dormant", "lost"]
    with pytest.raises(ValueError, match="阶段不存在：vip"):
        resolve_codes(["vip"], Stage, "阶段")
    with pytest.raises(ValueError, match="应为"):
        resolve_codes([], Stage, "阶段")
    with pytest.raises(ValueError, match="应为"):
        resolve_codes(3, Stage, "阶段")
