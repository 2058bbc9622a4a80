"""``--curriculum`` parsing, the schedule of mean recurrences, and the Poisson-log-normal draw."""

from __future__ import annotations

import math

import pytest
import torch

from soup_search.errors import ConfigError
from soup_search.recur.curriculum import parse_curriculum, sample_recurrences


def test_linear_ramps_over_the_given_share_then_holds():
    curriculum = parse_curriculum("linear:1:4:0.5")
    assert [curriculum.mean_at(s, 100) for s in (0, 25, 50, 99)] == [1.0, 2.5, 4.0, 4.0]
    assert curriculum.final == 4.0


def test_linear_ramps_over_half_the_run_by_default():
    assert parse_curriculum("linear:2:6").mean_at(25, 100) == 4.0


def test_one_minus_sqrt_rises_slowly_then_fast():
    curriculum = parse_curriculum("1-sqrt:1:5:1")
    assert curriculum.mean_at(50, 100) == pytest.approx(1 + 4 * (1 - math.sqrt(0.5)))
    assert curriculum.mean_at(50, 100) < parse_curriculum("linear:1:5:1").mean_at(50, 100)
    assert curriculum.mean_at(100, 100) == 5.0


def test_a_list_is_equal_stages_and_constant_is_one_stage():
    stages = parse_curriculum("1,2,4")
    assert [stages.mean_at(s, 90) for s in (0, 29, 30, 59, 60, 89)] == [1, 1, 2, 2, 4, 4]
    assert stages.final == 4
    assert {parse_curriculum("constant:3").mean_at(s, 10) for s in range(10)} == {3.0}
    assert parse_curriculum("2.5").final == 2.5


@pytest.mark.parametrize("spec", ["linear:1", "cubic:1:4", "linear:1:4:1.5", "0,2", "constant:0.5", "abc", "",
                                  "1-sqrt:4:x", "linear:1:nan"])
def test_a_curriculum_that_does_not_parse_is_one_line(spec):
    with pytest.raises(ConfigError) as info:
        parse_curriculum(spec)
    message = str(info.value)
    assert "--curriculum" in message and "\n" not in message and "linear:1:4" in message


def test_a_mean_of_one_always_draws_one():
    gen = torch.Generator().manual_seed(0)
    assert {sample_recurrences(1.0, gen) for _ in range(200)} == {1}


def test_draws_average_to_the_mean_and_never_fall_below_one():
    gen = torch.Generator().manual_seed(0)
    draws = [sample_recurrences(4.0, gen) for _ in range(4000)]
    assert min(draws) == 1 and max(draws) > 8
    assert sum(draws) / len(draws) == pytest.approx(4.0, abs=0.15)


def test_draws_repeat_under_a_seed():
    def draws(seed):
        gen = torch.Generator().manual_seed(seed)
        return [sample_recurrences(3.0, gen) for _ in range(50)]

    assert draws(1) == draws(1) and draws(1) != draws(2)
