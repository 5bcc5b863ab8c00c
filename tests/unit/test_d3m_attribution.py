"""Attribution against the truth on an exact world: L2-regularised logistic regression on
the synthetic task, where leave-one-out retraining is cheap (spec 9.2-9.3). The scores
come from the same functions the workflow runs on BERT (kronfluence EKFAC, traker)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from biasdrift.config import from_schema
from biasdrift.corpora import generate
from biasdrift.d3m import alignment as al
from biasdrift.d3m import attribution as at
from biasdrift.d3m import linear as lin
from biasdrift.d3m.metrics import classification_metrics

L2 = 6.0


class World:
    def __init__(self, frame):
        self.frame = frame
        self.train, self.val, self.test = (
            frame[frame["split"] == s].sort_values("uid").reset_index(drop=True) for s in ("train", "val", "test")
        )
        self.vocab = lin.vocabulary_of(self.train["text"])
        self.x, self.xv, self.xt = (lin.bag_of_words(d["text"], self.vocab) for d in (self.train, self.val, self.test))
        self.y, self.yv = self.train["label"].to_numpy(), self.val["label"].to_numpy()
        self.theta = lin.fit_logistic(self.x, self.y, L2)

    def datasets(self, x=None, y=None):
        x = self.x if x is None else x
        y = self.y if y is None else y
        return at.TensorDataset(lin.tensors(x, y)), at.TensorDataset(lin.tensors(self.xv, self.yv))

    def influence(self, theta=None, x=None, y=None, tmp=None):
        train, query = self.datasets(x, y)
        cfg = from_schema(at.InfluenceConfig, damping=L2 / 2 / len(train), batch_size=4096)
        model = lin.to_module(self.theta if theta is None else theta)
        return at.influence_scores(model, ["features"], train, query, cfg, tmp / "kronfluence", seed=0)

    def trak(self, theta=None, x=None, y=None, tmp=None, **kwargs):
        train, query = self.datasets(x, y)
        cfg = from_schema(at.TrakConfig, **{"proj_dim": 256, "lambda_reg": 1e-3, "batch_size": 512, **kwargs})
        model = lin.to_module(self.theta if theta is None else theta)
        return at.trak_scores([model], ["features"], train, query, cfg, tmp / "trak")

    def wga_after_removal(self, removed):
        keep = ~self.train["uid"].isin(set(removed)).to_numpy()
        theta = lin.fit_logistic(self.x[keep], self.y[keep], L2)
        return classification_metrics(lin.predictions(self.test, self.xt, theta))["wga_cell"]

    def val_loss(self):
        return lin.predictions(self.val, self.xv, self.theta)["loss"].to_numpy()


@pytest.fixture(scope="module")
def world():
    return World(generate("d3m_synthetic", {}, 0))


@pytest.fixture(scope="module")
def scores(world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scores")
    return {"if": world.influence(tmp=tmp), "trak": world.trak(tmp=tmp)}


@pytest.fixture(scope="module")
def loo(world):
    removed = np.random.default_rng(0).choice(len(world.x), 25, replace=False)
    return removed, lin.leave_one_out(world.x, world.y, world.xv, world.yv, L2, removed)


def test_linear_model_matches_its_nn_module(world):
    model = lin.to_module(world.theta)
    with torch.no_grad():
        logits = model(torch.tensor(world.xv, dtype=torch.float32)).numpy()
    z = lin.decision(world.xv, world.theta)
    assert np.allclose(logits[:, 1] - logits[:, 0], z, atol=1e-4)


def test_influence_ranks_like_leave_one_out(scores, loo):
    removed, truth = loo
    matrix, info = scores["if"]
    assert matrix.shape == (1530, 320) and matrix.dtype == np.float32 and info["dtype"] == str(matrix.dtype)
    assert info["tracked_modules"] == ["linear"]
    rho = spearmanr(matrix[removed].ravel(), truth.ravel())[0]
    assert rho >= 0.9, rho


def test_trak_ranks_like_leave_one_out(scores, loo):
    removed, truth = loo
    matrix, info = scores["trak"]
    assert matrix.shape == (1530, 320) and matrix.dtype == np.float32
    assert info["projector"] == "BasicProjector" and info["dtype"] == str(matrix.dtype) == "float32"
    rho = spearmanr(matrix[removed].ravel(), truth.ravel())[0]
    assert rho >= 0.8, rho


def test_a_training_copy_of_a_query_ranks_top(world, tmp_path):
    query = 17
    x = np.vstack([world.x, world.xv[query : query + 1]])
    y = np.append(world.y, world.yv[query])
    theta = lin.fit_logistic(x, y, L2)
    for method in ("influence", "trak"):
        matrix, _ = getattr(world, method)(theta=theta, x=x, y=y, tmp=tmp_path)
        assert int(np.argmax(matrix[:, query])) == len(x) - 1, method


def test_d3m_removal_beats_random_removal_on_the_linear_world(world, scores):
    base = world.wga_after_removal([])
    assert base < 0.3
    k = 200  # two thirds of the biased majority cell (a|1 = 300)
    random = np.mean([world.wga_after_removal(al.select_random(world.train["uid"], k, s)) for s in range(5)])
    for method in ("if", "trak"):
        table, _ = al.align(scores[method][0], world.train, world.val, world.val_loss(), "cell")
        removed = al.select_lowest(table, k)
        gap = world.wga_after_removal(removed) - random
        assert gap >= 0.25, (method, gap, random)
        share = al.removal_summary(world.train, removed)["removed_per_cell"]["a|1"] / k
        if method == "if":
            assert share >= 0.8, share
    # the thesis's group-only alignment misses the biased cell
    table, _ = al.align(scores["if"][0], world.train, world.val, world.val_loss(), "group")
    group_only = al.removal_summary(world.train, al.select_lowest(table, k))["removed_per_cell"]["a|1"] / k
    assert group_only < 0.5, group_only


def test_trak_checks_its_projection(world, tmp_path):
    with pytest.raises(ValueError, match=r"X\^T X is singular"):
        world.trak(tmp=tmp_path, proj_dim=2000, lambda_reg=0.0)
    noop, info = world.trak(tmp=tmp_path, projector="noop", lambda_reg=1e-3)
    projected, _ = world.trak(tmp=tmp_path, proj_dim=1024, lambda_reg=1e-3)
    assert info["projector"] == "NoOpProjector"
    assert spearmanr(noop.ravel(), projected.ravel())[0] >= 0.95
    with pytest.raises(ValueError, match="CUDA"):
        world.trak(tmp=tmp_path, projector="cuda")


def ill_conditioned_features(n: int = 300, p: int = 32, condition: float = 1e10):
    """Projected gradients (float32) whose X^T X has about ``condition``: singular values
    spread log-evenly over sqrt(condition)."""
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(n, p)))
    v, _ = np.linalg.qr(rng.normal(size=(p, p)))
    return torch.tensor((u * np.logspace(0, -np.log10(condition) / 2, p)) @ v.T, dtype=torch.float32)


def reference_features(grads: torch.Tensor, ridge: float) -> np.ndarray:
    """X (X^T X + ridge x mean diagonal)^-1 in float64, at traker's scale."""
    x = grads.double().numpy()
    xtx = x.T @ x
    inverse = np.linalg.inv(xtx + ridge * xtx.diagonal().mean() * np.eye(len(xtx)))
    return x @ (inverse / np.abs(inverse).mean())


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_trak_inverts_x_transpose_x_in_float64_with_its_relative_ridge(ridge, caplog):
    """traker inverts X^T X in float32, meaningless at a condition number of 1e10 (the demo
    world's is ~6e9); ours matches a float64 reference, adds the ridge relative to the
    mean diagonal, records the condition number and warns when it is ill-conditioned."""
    from trak.score_computers import BasicScoreComputer

    grads = ill_conditioned_features()
    cfg = from_schema(at.TrakConfig, proj_dim=grads.shape[1], ridge=ridge)
    record: list = []
    ours = at._score_computer(cfg, record)(dtype=torch.float32, device="cpu")
    features = ours.get_x_xtx_inv(grads, ours.get_xtx(grads)).numpy()
    reference = reference_features(grads, ridge)
    assert np.allclose(features, reference, rtol=1e-3, atol=1e-3 * np.abs(reference).max())
    x = grads.double().numpy()
    xtx = x.T @ x + ridge * np.trace(x.T @ x) / x.shape[1] * np.eye(x.shape[1])
    assert record[0]["condition"] == pytest.approx(np.linalg.cond(xtx), rel=1e-3)
    assert (f"condition number {record[0]['condition']:.3g}" in caplog.text) == (ridge == 0)
    if ridge == 0:  # what traker's float32 inverse gives is far off
        plain = BasicScoreComputer(dtype=torch.float32, device="cpu")
        theirs = plain.get_x_xtx_inv(grads, plain.get_xtx(grads)).numpy()
        assert not np.allclose(theirs, reference, rtol=1e-1, atol=1e-1 * np.abs(reference).max())


def tiny_bert(layers: int, vocab: int = 40):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        attn_implementation="eager",
    )
    return BertForSequenceClassification(config).eval()


def test_scopes_of_a_bert_classifier():
    model = tiny_bert(layers=3)
    assert at.scope_modules(model, "head") == ["classifier"]
    assert at.scope_modules(model, "all") is None
    last = at.scope_modules(model, "last", last_n=1)
    assert "classifier" in last and "bert.pooler.dense" in last
    assert all(".layer.2." in n for n in last if ".layer." in n) and any(".layer.2." in n for n in last)
    assert len(at.scope_modules(model, "last", last_n=2)) > len(last)
    params = at.scope_parameters(model, "head")
    assert params == ["classifier.weight", "classifier.bias"]
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        at.scope_modules(torch.nn.Embedding(3, 2), "all")


def test_both_methods_run_on_a_tiny_bert(tmp_path):
    """vmap through BERT needs the 4D mask (transformers 5); kronfluence tracks Linear
    layers; both give finite float32 (n_train, n_query) matrices."""
    model = tiny_bert(layers=2)
    ids = torch.randint(5, 40, (24, 8))
    mask = torch.ones_like(ids)
    mask[::3, 6:] = 0  # padded rows
    tensors = {
        "input_ids": ids,
        "token_type_ids": torch.zeros_like(ids),
        "attention_mask": mask,
        "labels": torch.arange(24) % 2,
    }
    names = ["input_ids", "token_type_ids", "attention_mask"]
    with torch.no_grad():  # the 4D additive mask masks exactly what the 2D one does
        wrapped = at.wrap_logits(model, names)(*(tensors[n] for n in names))
        assert torch.allclose(wrapped, model(**{n: tensors[n] for n in names}).logits, atol=1e-5)
    train = at.TensorDataset({k: v[:16] for k, v in tensors.items()})
    query = at.TensorDataset({k: v[16:] for k, v in tensors.items()})
    trak, info = at.trak_scores(
        [model], names, train, query, from_schema(at.TrakConfig, proj_dim=8, batch_size=8), tmp_path / "t"
    )
    assert trak.shape == (16, 8) and np.isfinite(trak).all() and info["projector"] == "BasicProjector"
    assert not (tmp_path / "t").exists()  # the traker store is removed
    head, info = at.influence_scores(
        model, names, train, query, from_schema(at.InfluenceConfig, scope="head", batch_size=8), tmp_path / "k"
    )
    assert head.shape == (16, 8) and np.isfinite(head).all() and info["tracked_modules"] == ["classifier"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trak_uses_the_cuda_projector_on_gpu(world, tmp_path):
    train, query = world.datasets()
    cfg = from_schema(at.TrakConfig, proj_dim=256, lambda_reg=1e-3)
    _, info = at.trak_scores([lin.to_module(world.theta)], ["features"], train, query, cfg, tmp_path, device="cuda")
    assert info["projector"] in {"CudaProjector", "ChunkedCudaProjector"}


# --------------------------------------------------------------------------- TRAK setup
@pytest.fixture
def no_fast_jl(monkeypatch):
    """fast_jl not importable, whatever is installed (sys.modules None = ImportError)."""
    import sys

    monkeypatch.setitem(sys.modules, "fast_jl", None)


@pytest.fixture
def fake_fast_jl(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "fast_jl", types.ModuleType("fast_jl"))


@pytest.mark.usefixtures("no_fast_jl")
def test_projector_cuda_without_fast_jl_fails_naming_the_install():
    with pytest.raises(at.TrakSetupError, match=r"needs fast_jl.*pip install --no-build-isolation fast_jl"):
        at.choose_projector(from_schema(at.TrakConfig, projector="cuda"), "cuda")
    with pytest.raises(at.TrakSetupError, match="needs a CUDA device"):
        at.choose_projector(from_schema(at.TrakConfig, projector="cuda"), "cpu")


@pytest.mark.usefixtures("fake_fast_jl")
def test_projector_cuda_with_fast_jl_is_chosen():
    assert at.choose_projector(from_schema(at.TrakConfig, projector="cuda"), "cuda") == at.ProjectorChoice(
        "cuda", "cuda"
    )
    assert at.choose_projector(from_schema(at.TrakConfig, projector="auto"), "cuda") == at.ProjectorChoice(
        "auto", "cuda"
    )


@pytest.mark.usefixtures("no_fast_jl")
def test_projector_auto_falls_back_explicitly_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger=at.log.name):
        choice = at.choose_projector(from_schema(at.TrakConfig, projector="auto"), "cuda")
    assert choice.kind == "basic" and "fast_jl cannot be imported" in choice.fallback
    assert any("falling back to BasicProjector" in r.message and "fast_jl==0.1.3" in r.message for r in caplog.records)
    cpu = at.choose_projector(from_schema(at.TrakConfig, projector="auto"), "cpu")
    assert cpu.kind == "basic" and "device is 'cpu'" in cpu.fallback
    assert at.choose_projector(from_schema(at.TrakConfig, projector="basic"), "cuda") == at.ProjectorChoice(
        "basic", "basic"
    )


def test_traker_silent_fallback_is_an_error_for_cuda_and_recorded_for_auto():
    class BasicProjector:  # what traker builds when its fast_jl test projection fails
        pass

    class Traker:
        projector = BasicProjector()

    with pytest.raises(RuntimeError, match="fast_jl does not run here"):
        at.check_projector(Traker(), at.ProjectorChoice("cuda", "cuda"))
    auto = at.ProjectorChoice("auto", "cuda")
    assert at.check_projector(Traker(), auto) == "BasicProjector" and "fell back" in auto.fallback


def test_basic_projector_blocks_fit_in_memory():
    bert_base = 109_483_778  # parameters of bert-base-uncased + a 2-class head
    block = at.basic_block_size(2048, bert_base)
    assert block >= 1 and block * bert_base * 4 <= at.BASIC_BLOCK_BYTES
    assert at.basic_block_size(256, 5_000) == 100 and at.basic_block_size(8, 5_000) == 4  # < proj_dim


def test_trak_records_the_projector_choice(world, tmp_path):
    _, info = world.trak(tmp=tmp_path, proj_dim=64)
    assert info["projector"] == "BasicProjector" and info["projector_requested"] == "auto"
    assert "device is 'cpu'" in info["projector_fallback"]
    _, info = world.trak(tmp=tmp_path, proj_dim=64, projector="basic")
    assert info["projector_fallback"] is None


@pytest.mark.usefixtures("no_fast_jl")
def test_scoring_job_fails_before_loading_a_model(tmp_path):
    """A world whose size only preparation knows: the job checks proj_dim and the
    projector before it loads a checkpoint (here none exists)."""
    from biasdrift.d3m.scoring import score_world

    frame = generate("d3m_synthetic", {"n_majority": 10, "n_minority": 2, "n_other": 5}, 0)
    frame.to_parquet(tmp_path / "data.parquet")
    n_train = int((frame["split"] == "train").sum())
    common = {
        "method": "trak",
        "model_dirs": [tmp_path / "no-such-model"],
        "epochs": [],
        "data_path": tmp_path / "data.parquet",
        "query_split": "val",
        "max_length": 16,
        "scores_path": tmp_path / "scores.npy",
        "uids_path": tmp_path / "uids.json",
        "work_dir": tmp_path / "work",
        "seed": 0,
        "where": "studies.d3m.trak.trak on world 'w'",
    }
    with pytest.raises(at.TrakSetupError, match=rf"trak on world 'w': proj_dim {n_train} >= {n_train} training rows"):
        score_world(cfg=from_schema(at.TrakConfig, proj_dim=n_train), device="cpu", **common)
    with pytest.raises(at.TrakSetupError, match="needs fast_jl"):
        score_world(cfg=from_schema(at.TrakConfig, proj_dim=8, projector="cuda"), device="cuda", **common)
    assert not (tmp_path / "scores.npy").exists()
