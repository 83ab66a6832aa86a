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
