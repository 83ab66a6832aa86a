import torch

from unsup3d.evaluation import baseline_scores, summary_table
from unsup3d.metrics import erode_mask


class DepthSet:
    def __init__(self, depths):
        self.depths = depths

    def __len__(self):
        return len(self.depths)

    def __getitem__(self, index):
        return {"depth": self.depths[index]}


def test_baselines_on_analytic_depths():
    gen = torch.Generator().manual_seed(0)
    base = 1.0 + 0.02 * torch.rand(8, 8, generator=gen, dtype=torch.float64)
    depths = [base.clone(), base.clone()]
    depths[1][:2] = float("nan")  # background rows
    scores = baseline_scores(DepthSet(depths))
    # Every map equals the average where defined: the average baseline is exact.
    assert float(scores["average"]["side"].abs().max()) < 1e-12
    assert float(scores["average"]["mad"].abs().max()) < 1e-4
    # A constant prediction leaves the masked standard deviation of log depth.
    mask = erode_mask(torch.isfinite(depths[0])[None])[0]
    expected = torch.log(base[mask]).std(unbiased=False)
    assert abs(float(scores["constant"]["side"][0]) - float(expected)) < 1e-12
    table = summary_table(scores)
    assert "constant" in table and "average" in table


def test_predicting_depth_leaves_the_model_in_its_own_mode():
    from unsup3d.config import ModelConfig
    from unsup3d.evaluation import predict_view_depth
    from unsup3d.model import PhotoGeometricAutoencoder

    small = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}
    model = PhotoGeometricAutoencoder(ModelConfig(**small))
    images = torch.rand(2, 3, 64, 64)
    for training in (True, False):
        model.train(training)
        depth, valid, view = predict_view_depth(model, images)
        assert model.training is training
        assert depth.shape == valid.shape == (2, 64, 64) and view.shape == (2, 6)


# ---------------------------------------------------------------------- keypoint depth correlation
SMALL_MODEL = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}


def _keypoint_items(count: int, keypoints: int, size: int = 64) -> list[dict]:
    gen = torch.Generator().manual_seed(5)
    return [
        {
            "image": torch.rand(3, size, size, generator=gen),
            "keypoints": torch.rand(keypoints, 2, generator=gen) * (size - 1),
            "keypoint_depth": 1.0 + 0.05 * torch.rand(keypoints, generator=gen),
            "keypoint_visible": torch.rand(keypoints, generator=gen) > 0.2,
        }
        for _ in range(count)
    ]


def test_keypoint_depth_evaluation_matches_a_per_image_loop():
    import math

    import numpy as np

    from unsup3d.config import ModelConfig
    from unsup3d.evaluation import evaluate_keypoint_depth, keypoint_summary, predict_view_depth
    from unsup3d.model import PhotoGeometricAutoencoder

    model = PhotoGeometricAutoencoder(ModelConfig(**SMALL_MODEL, perceptual="none"))
    items = _keypoint_items(5, 4)
    scores = evaluate_keypoint_depth(model, items, batch_size=3, device=torch.device("cpu"))
    images = torch.stack([item["image"] for item in items])
    depths = torch.cat([predict_view_depth(model, images[:3])[0], predict_view_depth(model, images[3:])[0]]).double()
    predicted = np.zeros((5, 4))
    for n, item in enumerate(items):  # bilinear sampling by hand, one keypoint at a time (same batches of 3)
        depth = depths[n]
        for k, (u, v) in enumerate(item["keypoints"].tolist()):
            i, j = min(int(v), 62), min(int(u), 62)
            fy, fx = v - i, u - j
            top = (1 - fx) * depth[i, j] + fx * depth[i, j + 1]
            bottom = (1 - fx) * depth[i + 1, j] + fx * depth[i + 1, j + 1]
            predicted[n, k] = float((1 - fy) * top + fy * bottom)
    visible = torch.stack([item["keypoint_visible"] for item in items]).numpy()
    true = torch.stack([item["keypoint_depth"] for item in items]).double().numpy()
    expected = [np.corrcoef(predicted[visible[:, k], k], true[visible[:, k], k])[0, 1] for k in range(4)]
    assert np.allclose(scores["correlations"].numpy(), expected, atol=1e-9)
    assert math.isclose(float(scores["depth_corr"]), float(np.abs(expected).sum()), abs_tol=1e-9)
    assert math.isclose(float(scores["depth_corr_signed"]), float(np.sum(expected)), abs_tol=1e-9)
    assert scores["images"].tolist() == visible.sum(0).tolist()
    assert "max 4" in keypoint_summary(scores)


def test_cli_evaluate_reports_keypoints_only_where_the_set_has_them(tmp_path, capsys):
    import dataclasses
    import json

    import numpy as np
    from PIL import Image

    from unsup3d.checkpoint import write_checkpoint
    from unsup3d.cli import main
    from unsup3d.config import Config, ModelConfig
    from unsup3d.model import PhotoGeometricAutoencoder

    config = Config(model=ModelConfig(**SMALL_MODEL, perceptual="none")).validate()
    model = PhotoGeometricAutoencoder(config.model)
    state = {"format_version": 1, "iteration": 1, "model_config": dataclasses.asdict(config.model)}
    state.update(config=config.to_dict(), model=model.state_dict())
    checkpoint = write_checkpoint(tmp_path / "step_1.pt", state)
    data = tmp_path / "pairs"
    (data / "image").mkdir(parents=True)
    (data / "depth").mkdir()
    records = []
    for n, item in enumerate(_keypoint_items(3, 4)):
        Image.fromarray((item["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(data / f"image/{n}.png")
        np.save(data / f"depth/{n}.npy", np.ones((64, 64), np.float32))
        keypoints = {"uv": item["keypoints"].tolist(), "depth": item["keypoint_depth"].tolist()}
        records.append(json.dumps({"name": str(n), "keypoints": keypoints}) + "\n")
    (data / "meta.jsonl").write_text("".join(records))
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--output", str(scores)]
    assert main(argv) == 0
    assert "keypoint depth correlation (Table 5, sum of |r| over 4 keypoints, max 4)" in capsys.readouterr().out
    keypoints = json.loads(scores.read_text())["keypoint_depth"]
    assert set(keypoints) == {"depth_corr", "depth_corr_signed", "correlations", "images"}
    assert len(keypoints["correlations"]) == 4 and keypoints["images"] == [3, 3, 3, 3]
    (data / "meta.jsonl").unlink()
    assert main(argv) == 0
    assert "keypoint" not in capsys.readouterr().out
    assert "keypoint_depth" not in json.loads(scores.read_text())


def test_collapse_statistics_of_a_dataset_do_not_depend_on_its_batches():
    import pytest

    from unsup3d.config import ModelConfig
    from unsup3d.diagnostics import CollapseInputs
    from unsup3d.evaluation import evaluation_pass
    from unsup3d.model import PhotoGeometricAutoencoder

    small = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}
    torch.manual_seed(0)
    model = PhotoGeometricAutoencoder(ModelConfig(**small)).eval()
    images = torch.rand(17, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        inputs = CollapseInputs()
        inputs.add(model(images, with_flip=False))
        whole = inputs.statistics(model.config)
    model.train()
    dataset = [{"image": image} for image in images]
    batched = evaluation_pass(model, dataset, 5, torch.device("cpu"), depth=False, collapse=True)["collapse"]
    assert model.training and set(batched) == set(whole) and "translation_yaw_correlation" in whole
    for name, value in whole.items():
        assert batched[name] == pytest.approx(value, rel=1e-4, abs=1e-7), name
