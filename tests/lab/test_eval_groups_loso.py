"""Tests for appliance.lab.eval.groups_loso: the shipped companion rule, its values chosen
leave-one-sequence-out, beats the plain rule on each ETH/UCY sequence left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.device.analytics.groups import DEFAULT_CONFIG
from appliance.lab.eval.groups_loso import SEQUENCES, evaluate, leave_one_out

TRAJECTORIES = Path(__file__).resolve().parents[3] / "shared" / "data" / "trajectories"


@pytest.fixture(scope="module")
def lines():
    return evaluate(TRAJECTORIES)


def test_each_sequence_left_out_beats_the_plain_rule(lines):
    held_out = {line["left_out"]: line for line in lines
                if line["family"] == "drift" and "left_out" in line}
    assert sorted(held_out) == sorted(SEQUENCES)
    for line in held_out.values():
        assert line["f1_left_out"] > line["plain_left_out"], line
    # The plain rule's own family, fitted the same way, does not (the record of issue 15).
    plain = [line for line in lines if line["family"] == "plain"]
    assert len(plain) == 3
    assert any(line["f1_left_out"] < line["plain_left_out"] for line in plain)


def test_shipped_values_are_the_ones_chosen_on_all_three(lines):
    (chosen,) = [line for line in lines if "chosen_on_all" in line]
    assert chosen["chosen_on_all"] == {"together_seconds": DEFAULT_CONFIG.min_together,
                                       "max_drift": DEFAULT_CONFIG.max_drift}
    for f1 in chosen["f1"].values():
        assert f1 >= 0.85, chosen


def test_leave_one_out_never_looks_at_the_sequence_left_out():
    # Rule 0 is best on a and b, rule 1 only on c: leaving c out must pick rule 0 even
    # though rule 1 would score c higher.
    scores = {"a": np.array([0.9, 0.1]), "b": np.array([0.8, 0.2]), "c": np.array([0.1, 1.0])}
    picked = leave_one_out(scores, ["rule 0", "rule 1"])
    assert picked["c"] == ("rule 0", pytest.approx(0.85), 0.1)
    assert picked["a"] == ("rule 1", pytest.approx(0.6), 0.1)
