"""The ONNX export run by onnxruntime (how the model runs) against the torch module it is exported from."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from beatfix.errors import ModelError  # noqa: E402
from beatfix.neural import weights  # noqa: E402
from beatfix.neural.judge import predict  # noqa: E402

from test_neural import candidates_of, mini_session  # noqa: E402


def _inputs(cfg, n_events: int, n_channels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_events, n_channels, cfg.n_bands, cfg.fine_frames)).astype(np.float32) * 2,
            rng.standard_normal((n_events, n_channels, cfg.n_bands, cfg.coarse_frames)).astype(np.float32) * 2,
            rng.standard_normal((n_channels, 1)).astype(np.float32),
            rng.integers(0, cfg.n_roles, n_channels),
            rng.integers(0, n_channels, n_events))


def _both(folder):
    return weights.load_model(folder, "cpu"), weights.load_model(folder, "cpu", backend="torch")


@pytest.fixture(scope="module")
def shipped_pair():
    return _both(None)


@pytest.mark.parametrize("n_events, n_channels", [(1, 1), (37, 3), (130, 8), (200, 12), (5, 16)])
def test_onnx_encode_and_decode_match_torch(shipped_pair, n_events, n_channels):
    """One graph for any event and channel count (the axes are dynamic), within float32 rounding."""
    fast, ref = shipped_pair
    assert fast.backend == "onnx" and ref.backend == "torch"
    cfg = ref.net.cfg
    x = _inputs(cfg, n_events, n_channels, seed=n_events)
    a, b = fast.encode(*x), ref.encode(*x)
    assert a.dtype == np.float32 and a.shape == b.shape == (n_events, cfg.width)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(1.0, float(np.abs(b).max())))
    context = np.random.default_rng(1).standard_normal((2, n_events, cfg.n_context)).astype(np.float32)
    emb = np.stack([b, b[::-1]])
    for got, want in zip(fast.decode(emb, context), ref.decode(emb, context)):
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_written_out_attention_is_torchs_multihead_attention(shipped_pair):
    """The training module spells attention out (exportable); it is nn.MultiheadAttention's arithmetic."""
    net = shipped_pair[1].net
    h = torch.randn(9, 6, net.cfg.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, _ = net.attn(h, h, h, need_weights=False)
        np.testing.assert_allclose(net._attend(h).numpy(), want.numpy(), rtol=0, atol=1e-6)


def test_channel_order_does_not_matter(shipped_pair):
    """The channels are a set in the exported graph too: permuting them permutes nothing in the answer."""
    fast, ref = shipped_pair
    fine, coarse, chan, roles, target = _inputs(ref.net.cfg, 20, 5, seed=4)
    perm = np.array([3, 0, 4, 1, 2])
    inverse = np.argsort(perm)
    a = fast.encode(fine, coarse, chan, roles, target)
    b = fast.encode(fine[:, perm], coarse[:, perm], chan[perm], roles[perm], inverse[target])
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_the_same_decisions_on_a_session(shipped_pair):
    session, own, bleed, grid = mini_session(seed=7)
    cands, _ = candidates_of(own, bleed)
    fast, ref = shipped_pair
    a, b = predict(fast, session, cands, grid=grid), predict(ref, session, cands, grid=grid)
    np.testing.assert_allclose(a.own_prob, b.own_prob, atol=1e-5)
    np.testing.assert_allclose(a.offset_ms, b.offset_ms, atol=1e-4)
    np.testing.assert_allclose(a.slot_probs, b.slot_probs, atol=1e-5)
    assert ((a.own_prob >= 0.5) == (b.own_prob >= 0.5)).all()
    assert (a.slot_delta == b.slot_delta).all()


def test_saved_folders_ship_onnx_and_old_folders_get_it(tmp_path):
    """Every save exports the graphs (a retrained model runs at once); add_onnx upgrades an older folder."""
    tiny = weights.tiny_model(tmp_path / "tiny", seed=5)
    sums = (tiny / "SHA256SUMS").read_text().split()
    assert sums[1::2] == ["weights.pt", "encoder.onnx", "decoder.onnx"]
    fast, ref = _both(tiny)
    x = _inputs(ref.net.cfg, 9, 4)
    np.testing.assert_allclose(fast.encode(*x), ref.encode(*x), rtol=0, atol=1e-5)

    # a folder of beatfix 0.1: weights.pt and weights.npz, no graphs
    old = tmp_path / "old"
    shutil.copytree(tiny, old)
    for name in ("encoder.onnx", "decoder.onnx"):
        (old / name).unlink()
    (old / "weights.npz").write_bytes(b"arrays of the numpy forward pass")
    config = json.loads((old / "config.json").read_text())
    config = {k: v for k, v in config.items() if k not in ("encoder_sha256", "decoder_sha256")}
    (old / "config.json").write_text(json.dumps({**config, "arrays_sha256": "0" * 64}))
    (old / "SHA256SUMS").write_text(f"{config['weights_sha256']}  weights.pt\n{'0' * 64}  weights.npz\n")
    with pytest.raises(ModelError, match="encoder.onnx is missing.*add_onnx"):
        weights.load_model(old, "cpu")
    assert weights.load_model(old, "cpu", backend="torch").backend == "torch"  # still a start for fine-tuning
    shas = weights.add_onnx(old)
    upgraded = json.loads((old / "config.json").read_text())
    assert upgraded["encoder_sha256"] == shas["encoder.onnx"] and "arrays_sha256" not in upgraded
    assert not (old / "weights.npz").exists()
    np.testing.assert_allclose(weights.load_model(old, "cpu").encode(*x), fast.encode(*x), rtol=0, atol=1e-6)


def test_a_consistent_folder_with_a_broken_graph_is_a_model_error(tmp_path):
    """Checksums right (recorded after the damage), graph unparseable: still one ModelError, no protobuf traceback."""
    folder = weights.tiny_model(tmp_path / "tiny", seed=2)
    (folder / "encoder.onnx").write_bytes((folder / "encoder.onnx").read_bytes()[:5000])
    sha = weights.sha256_file(folder / "encoder.onnx")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "encoder_sha256": sha}))
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(ModelError, match="incompatible model"):
        weights.load_model(folder, "cpu")


def test_a_graph_that_disagrees_with_its_config_is_refused(tmp_path):
    """A graph exported for other frame counts than config.json says is refused at load, not mid-analysis."""
    a = weights.tiny_model(tmp_path / "a", seed=1)
    config = json.loads((a / "config.json").read_text())
    config["architecture"]["fine_frames"] = config["features"]["fine_frames"] = 48
    (a / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="incompatible model.*fine"):
        weights.load_model(a, "cpu")


def test_export_needs_no_gpu_and_leaves_the_module_as_it_was():
    from beatfix.neural.export import DECODER_FILE, ENCODER_FILE, export_onnx
    from beatfix.neural.net import HitNet, NetConfig

    net = HitNet(NetConfig(width=16, role_dim=4, heads=2, gru_hidden=8)).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    graphs = export_onnx(net)
    assert set(graphs) == {ENCODER_FILE, DECODER_FILE} and all(len(g) > 1000 for g in graphs.values())
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_retraining_records_the_parent_by_name(tmp_path):
    """``init`` in a retrained config names the parent model and version, not a path on the trainer's machine."""
    from beatfix.neural.train import init_name

    parent = weights.tiny_model(tmp_path / "parent", seed=4)
    sha = json.loads((parent / "config.json").read_text())["weights_sha256"]
    assert init_name(weights.load_model(parent, "cpu", backend="torch")) == f"parent 0.0.0-tiny (weights sha256 {sha})"
