"""benchmarks/experiments/paper_tables.py end to end at a tiny budget: every row of every table trained, evaluated and
written, then resumed."""

import json
from pathlib import Path

import pytest

# Small networks; the second iteration is photometric (the preset fits its depth prior for 200), so the rows'
# switches act.
TINY = [
    "model.depth_nf=8",
    "model.albedo_nf=8",
    "model.encoder_nf=8",
    "model.conf_nf=8",
    "train.batch_size=4",
    "train.depth_prior_iterations=1",
]


@pytest.fixture(scope="module")
def paper_tables():
    from benchmarks.experiments import paper_tables

    return paper_tables


def _run(module, out: Path, iterations: int, tables=("2", "3", "4", "5")):
    argv = ["--tables", *tables, "--minutes", "5", "--out", str(out), "--n-train", "8", "--n-test", "4"]
    module.main([*argv, "--iterations", str(iterations), "--set", *TINY])


def test_every_row_of_every_table_is_trained_evaluated_and_written(paper_tables, tmp_path):
    _run(paper_tables, tmp_path, iterations=2)
    text = (tmp_path / "tables.md").read_text()
    for table in (2, 3, 4, 5):
        assert f"## Table {table}" in text
    for rows in paper_tables.ROWS.values():
        for row in rows:
            assert f"| {row.label} |" in text, row.key
            report = json.loads((tmp_path / "runs" / row.key / "seed0" / "scores.json").read_text())
            assert report["training"]["iteration"] == 2
            assert len(report["per_image"]["ours"]["side"]) == 4
    assert text.count("| constant depth (face) |") == 1 and "| average depth (car) |" in text
    assert text.count("| ours, full model |") == 3  # Tables 2, 3 and 5
    command = text.split("`")[1].split()  # the command the tables print parses back to the same options
    assert command[:2] == ["python", "benchmarks/experiments/paper_tables.py"]
    argv = ["--tables", "2", "3", "4", "5", "--minutes", "5", "--out", str(tmp_path), "--n-train", "8", "--n-test"]
    expected = paper_tables.parse_args([*argv, "4", "--iterations", "2", "--set", *TINY])
    assert vars(paper_tables.parse_args(command[2:])) == vars(expected)
    side = {
        key: row["ours"]["side"]["mean"]
        for key, row in json.loads((tmp_path / "tables.json").read_text())["rows"].items()
    }
    for row in paper_tables.ROWS[3][1:] + paper_tables.ROWS[4]:
        assert side[row.key] != side["full"], row.key  # each switch (and the perturbation) changed the result
    rows = json.loads((tmp_path / "tables.json").read_text())["rows"]
    assert rows["full"]["ours"]["keypoints"] == 17  # the generator's face keypoints reach Table 5
    assert "keypoint_depth" not in rows["car"]["ours"]
    assert json.loads((tmp_path / "data" / "face_perturbed" / "dataset.json").read_text())["perturbation"]
    # The rows differ as their settings say.
    configs = {key: (tmp_path / "runs" / key / "seed0" / "config.yaml").read_text() for key in rows}
    assert "flip_albedo: false" in configs["no_albedo_flip"] and "flip_albedo: true" in configs["full"]
    assert "supervised: true" in configs["supervised"] and "perceptual: efficientnet_lite0" in configs["perceptual"]

    # Run again: nothing is retrained, the tables come out the same.
    checkpoint = next((tmp_path / "runs" / "full" / "seed0" / "checkpoints").glob("*.pt"))
    stamp = checkpoint.stat().st_mtime_ns
    _run(paper_tables, tmp_path, iterations=2)
    assert checkpoint.stat().st_mtime_ns == stamp
    assert (tmp_path / "tables.md").read_text() == text


def test_a_row_cut_short_continues_from_its_checkpoint(paper_tables, tmp_path):
    _run(paper_tables, tmp_path, iterations=2, tables=("4",))
    run = tmp_path / "runs" / "perturbed_conf" / "seed0"
    (run / "scores.json").unlink()  # as if the evaluation had not happened: training resumes, not restarts
    _run(paper_tables, tmp_path, iterations=3, tables=("4",))
    assert json.loads((run / "scores.json").read_text())["training"]["iteration"] == 3
    assert json.loads((run / "budget.json").read_text())["started"] is None
