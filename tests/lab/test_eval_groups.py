"""Tests for appliance.lab.eval.groups: accuracy on ETH/UCY sequences and bad-input messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ApplianceError
from appliance.lab.eval.groups import evaluate_groups

TRAJECTORIES = Path(__file__).resolve().parents[3] / "shared" / "data" / "trajectories"
SEQUENCES = ["eth_seq_eth", "eth_seq_hotel", "ucy_zara01"]


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_pairwise_f1_on_real_sequences(sequence):
    result = evaluate_groups(TRAJECTORIES / sequence)  # the one default setting
    assert result["f1"] >= 0.80, result
    assert result["group_f1"] >= 0.75, result
    assert result["people"] > 100 and result["pairs_true"] > 40


def _sequence(tmp_path: Path, obsmat: str, groups: str | None = "1 2\n") -> Path:
    (tmp_path / "obsmat.txt").write_text(obsmat)
    if groups is not None:
        (tmp_path / "groups.txt").write_text(groups)
    return tmp_path


ROW = "{f} {i} {x} 0 {y} 0 0 0\n"


def _one_line_error(directory: Path) -> str:
    with pytest.raises(ApplianceError) as caught:
        evaluate_groups(directory)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_small_hand_made_sequence(tmp_path):
    # 1 and 2 walk side by side for 8 s; 3 walks the other way; 2.5 fps, frames step 10.
    rows = []
    for k in range(20):
        rows += [ROW.format(f=10 * k, i=1, x=0.52 * k, y=0.0),
                 ROW.format(f=10 * k, i=2, x=0.52 * k, y=0.7),
                 ROW.format(f=10 * k, i=3, x=20 - 0.52 * k, y=3.0)]
    result = evaluate_groups(_sequence(tmp_path, "".join(rows), "1 2\n\n1 2\n"))
    assert result == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "group_f1": 1.0,
                      "pairs_true": 1, "pairs_predicted": 1, "people": 3,
                      "groups_true": 1, "groups_predicted": 1}


def test_missing_groups_file(tmp_path):
    directory = _sequence(tmp_path, ROW.format(f=0, i=1, x=0, y=0), groups=None)
    assert _one_line_error(directory) == f"{directory / 'groups.txt'}: no such file"


def test_missing_obsmat(tmp_path):
    assert _one_line_error(tmp_path) == f"{tmp_path / 'obsmat.txt'}: no such file"


def test_malformed_row_names_its_line(tmp_path):
    obsmat = ROW.format(f=0, i=1, x=0, y=0) + "\n" + "10 1 0.5 zero 0\n"
    message = _one_line_error(_sequence(tmp_path, obsmat))
    assert message.startswith(f"{tmp_path / 'obsmat.txt'}: line 3: ")
    assert "10 1 0.5 zero 0" in message


def test_short_row(tmp_path):
    message = _one_line_error(_sequence(tmp_path, "0 1 2.5\n"))
    assert message.startswith(f"{tmp_path / 'obsmat.txt'}: line 1: ")


def test_empty_obsmat(tmp_path):
    assert _one_line_error(_sequence(tmp_path, "\n")) == f"{tmp_path / 'obsmat.txt'}: empty file"


def test_malformed_groups_line(tmp_path):
    directory = _sequence(tmp_path, ROW.format(f=0, i=1, x=0, y=0), "1 2\n3 x\n")
    assert _one_line_error(directory).startswith(f"{directory / 'groups.txt'}: line 2: ")

