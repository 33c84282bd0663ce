"""The numpy forward pass (beatfix.neural.runtime) against the torch module it stands in for on a CPU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from beatfix.errors import ModelError  # noqa: E402
from beatfix.neural import weights  # noqa: E402
from beatfix.neural.judge import predict  # noqa: E402
from beatfix.neural.runtime import NumpyHitNet, gelu  # noqa: E402

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


def test_gelu_is_the_exact_gelu():
    x = np.concatenate([np.linspace(-12, 12, 200_001), [0.0, -0.0, 1e-30, -1e-30, 40.0, -40.0]]).astype(np.float32)
    exact = torch.nn.functional.gelu(torch.from_numpy(x).double()).numpy()
    got = gelu(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.abs(got - exact).max() < 1e-6


@pytest.mark.parametrize("n_events, n_channels", [(1, 1), (37, 3), (130, 8), (5, 16)])
def test_numpy_encode_and_decode_match_torch(n_events, n_channels):
    fast, ref = _both(None)
    assert fast.backend == "numpy" and ref.backend == "torch"
    x = _inputs(fast.net.cfg, n_events, n_channels, seed=n_events)
    a, b = fast.encode(*x), ref.encode(*x)
    assert a.dtype == np.float32 and a.shape == b.shape == (n_events, fast.net.cfg.width)
    np.testing.assert_allclose(a, b, atol=2e-5 * max(1.0, float(np.abs(b).max())))
    context = np.random.default_rng(1).standard_normal((1, n_events, fast.net.cfg.n_context)).astype(np.float32)
    for got, want in zip(fast.decode(b[None], context), ref.decode(b[None], context)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_channel_order_does_not_matter():
    """The channels are a set, in numpy as in torch: permuting them permutes nothing in the answer."""
    fast, _ = _both(None)
    fine, coarse, chan, roles, target = _inputs(fast.net.cfg, 20, 5, seed=4)
    perm = np.array([3, 0, 4, 1, 2])
    inverse = np.argsort(perm)
    a = fast.encode(fine, coarse, chan, roles, target)
    b = fast.encode(fine[:, perm], coarse[:, perm], chan[perm], roles[perm], inverse[target])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_same_decisions_on_a_session():
    session, own, bleed, grid = mini_session(seed=7)
    cands, _ = candidates_of(own, bleed)
    fast, ref = _both(None)
    a, b = predict(fast, session, cands, grid=grid), predict(ref, session, cands, grid=grid)
    np.testing.assert_allclose(a.own_prob, b.own_prob, atol=1e-5)
    np.testing.assert_allclose(a.offset_ms, b.offset_ms, atol=1e-4)
    np.testing.assert_allclose(a.slot_probs, b.slot_probs, atol=1e-5)
    assert ((a.own_prob >= 0.5) == (b.own_prob >= 0.5)).all()


def test_trained_folders_get_both_files_and_old_folders_still_load(tmp_path):
    tiny = weights.tiny_model(tmp_path / "tiny", seed=5)
    sums = (tiny / "SHA256SUMS").read_text().split()
    assert sums[1::2] == ["weights.pt", "weights.npz"]
    fast, ref = _both(tiny)
    x = _inputs(fast.net.cfg, 9, 4)
    np.testing.assert_allclose(fast.encode(*x), ref.encode(*x), atol=1e-5)

    # a folder from before weights.npz: runs through torch, and add_arrays gives it the numpy file
    old = tmp_path / "old"
    shutil.copytree(tiny, old)
    (old / "weights.npz").unlink()
    config = json.loads((old / "config.json").read_text())
    del config["arrays_sha256"]
    (old / "config.json").write_text(json.dumps(config))
    (old / "SHA256SUMS").write_text(f"{config['weights_sha256']}  weights.pt\n")
    assert weights.load_model(old, "cpu").backend == "torch"
    sha = weights.add_arrays(old)
    assert json.loads((old / "config.json").read_text())["arrays_sha256"] == sha
    again = weights.load_model(old, "cpu")
    assert again.backend == "numpy"
    np.testing.assert_array_equal(again.encode(*x), fast.encode(*x))


def test_a_folder_whose_arrays_lack_a_weight_is_a_model_error(tmp_path):
    folder = weights.tiny_model(tmp_path / "tiny", seed=2)
    with np.load(folder / "weights.npz") as arrays:
        kept = {k: arrays[k] for k in arrays.files if k != "attn.in_proj_weight"}
    np.savez(folder / "weights.npz", **kept)
    with pytest.raises(ModelError, match="weights.npz: checksum mismatch"):  # refused before parsing
        weights.load_model(folder, "cpu")
    sha = weights.sha256_file(folder / "weights.npz")  # a consistent folder, but a broken model
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "arrays_sha256": sha}))
    (folder / "SHA256SUMS").write_text(f"{config['weights_sha256']}  weights.pt\n{sha}  weights.npz\n")
    with pytest.raises(ModelError, match="incompatible model.*attn.in_proj_weight"):
        weights.load_model(folder, "cpu")
    with pytest.raises(KeyError, match="attn.in_proj_weight"):
        NumpyHitNet(weights.load_model(folder, "cpu", backend="torch").net.cfg, kept)


def test_running_the_shipped_model_on_a_cpu_does_not_import_torch():
    """``beatfix report`` on the example session, in a fresh interpreter, on the CPU."""
    session = Path(__file__).resolve().parents[1] / "examples" / "session"
    code = ("import sys\n"
            "from beatfix.cli import main\n"
            "stems = sorted(str(p) for p in __import__('pathlib').Path(sys.argv[1]).glob('*.flac'))\n"
            "sys.argv = ['beatfix', 'report', *stems, '--device', 'cpu', '--json']\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, str(session)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["engine"] == "neural"
