"""The hit model's forward pass in numpy: how the shipped model runs on a CPU.

The same weights as :class:`~beatfix.neural.net.HitNet` (its state dict, saved
as ``weights.npz`` next to ``weights.pt``), the same arithmetic in float32, and
no torch: importing torch costs about 180 MB of memory and over a second before
the first sample is read, more than the whole encoder's work on a 4-minute
session (``benchmarks/SPEED.md``). Torch stays the training and CUDA path;
``tests/test_runtime.py`` holds the two to the same outputs.

Layer for layer as in :mod:`.net`: ``Conv1d`` + exact ``GELU``, ``Linear``,
``Embedding``, ``MultiheadAttention`` (batch first, no mask), ``LayerNorm``
(eps 1e-5) and a one-layer bidirectional ``GRU`` (gates r, z, n; zero start).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf

from .arch import CONV_LAYERS, NetConfig

# GELU is exact in the torch model (erf); scipy's float32 erf costs most of the encoder's
# time, so: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7 on erf), in place.
_SQRT_HALF = np.float32(np.sqrt(0.5))
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


def gelu(x: np.ndarray, *, block: int = 1 << 15) -> np.ndarray:
    """``x * Phi(x)`` for float32 ``x``, within 1e-6 of the exact value.

    As ``x / 2 + |x| * (1/2 - Phi(-|x|))``, with no branch, ``block`` values at a
    time so the dozen passes stay in the cache.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    flat, res = x.reshape(-1), out.reshape(-1)
    a, t, q, e = (np.empty(min(block, flat.size), dtype=np.float32) for _ in range(4))
    for lo in range(0, flat.size, block):
        xs = flat[lo:lo + block]
        n = xs.size
        aa, tt, qq, ee = a[:n], t[:n], q[:n], e[:n]
        np.abs(xs, out=aa)
        np.multiply(aa, _P * _SQRT_HALF, out=tt)
        tt += 1.0
        np.reciprocal(tt, out=tt)
        np.multiply(tt, _A[0], out=qq)
        for coef in _A[1:]:
            qq += coef
            qq *= tt
        np.multiply(aa, aa, out=ee)
        ee *= np.float32(-0.5)
        np.exp(ee, out=ee)
        qq *= ee
        qq *= np.float32(0.5)  # Phi(-|x|)
        np.subtract(np.float32(0.5), qq, out=qq)
        qq *= aa
        np.multiply(xs, np.float32(0.5), out=ee)
        np.add(ee, qq, out=res[lo:lo + n])
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32, copy=False)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class NumpyHitNet:
    """``encode`` and ``decode`` of :class:`~beatfix.neural.net.HitNet` on numpy arrays."""

    def __init__(self, cfg: NetConfig, state: dict[str, np.ndarray]):
        self.cfg = cfg
        self.w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
        missing = [k for k in self._needed() if k not in self.w]
        if missing:
            raise KeyError(f"weights lack {missing[0]}")
        # Activations run channels-last, (N, frames, channels): conv kernels become
        # (C_in * kernel, C_out) matrices, one matmul per layer, and the projection
        # reads its input in (frames, channels) order.
        for enc in ("fine", "coarse"):
            for i in range(len(CONV_LAYERS)):
                w = self.w[f"{enc}.conv.{2 * i}.weight"]  # (C_out, C_in, K)
                self.w[f"{enc}.conv.{2 * i}.matrix"] = np.ascontiguousarray(w.reshape(w.shape[0], -1).T)
            proj = self.w[f"{enc}.proj.weight"]  # (D, C * L), channel-major
            c_last = self.w[f"{enc}.conv.{2 * (len(CONV_LAYERS) - 1)}.weight"].shape[0]
            self.w[f"{enc}.proj.matrix"] = np.ascontiguousarray(
                proj.reshape(proj.shape[0], c_last, -1).transpose(0, 2, 1).reshape(proj.shape[0], -1).T)

    def _needed(self) -> list[str]:
        keys = [f"{enc}.conv.{2 * i}.{p}" for enc in ("fine", "coarse") for i in range(len(CONV_LAYERS))
                for p in ("weight", "bias")]
        keys += [f"{enc}.proj.{p}" for enc in ("fine", "coarse") for p in ("weight", "bias")]
        keys += ["role.weight", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                 "attn.out_proj.bias", "attn_norm.weight", "attn_norm.bias"]
        keys += [f"{m}.{i}.{p}" for m in ("channel", "event", "own_head", "offset_head", "slot_head")
                 for i in (0, 2) for p in ("weight", "bias")]
        keys += ["context.0.weight", "context.0.bias"]
        keys += [f"gru.{kind}_{part}_l0{rev}" for kind in ("weight", "bias") for part in ("ih", "hh")
                 for rev in ("", "_reverse")]
        return keys

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _mlp(self, x: np.ndarray, name: str) -> np.ndarray:
        return self._linear(gelu(self._linear(x, f"{name}.0")), f"{name}.2")

    def _frames(self, x: np.ndarray, enc: str) -> np.ndarray:
        """(N, B, F) -> (N, width): three strided convolutions and a projection."""
        x = x.transpose(0, 2, 1)  # (N, F, B)
        for i, (kernel, stride, pad) in enumerate(CONV_LAYERS):
            padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
            win = sliding_window_view(padded, kernel, axis=1)[:, ::stride]  # (N, L, C, K)
            cols = win.reshape(win.shape[0], win.shape[1], -1)  # (N, L, C*K), a copy
            y = cols @ self.w[f"{enc}.conv.{2 * i}.matrix"]
            y += self.w[f"{enc}.conv.{2 * i}.bias"]
            x = gelu(y)
        return x.reshape(x.shape[0], -1) @ self.w[f"{enc}.proj.matrix"] + self.w[f"{enc}.proj.bias"]

    def _attention(self, h: np.ndarray) -> np.ndarray:
        n_ev, n_ch, d = h.shape
        heads = self.cfg.heads
        qkv = (h @ self.w["attn.in_proj_weight"].T + self.w["attn.in_proj_bias"]).reshape(n_ev, n_ch, 3, heads, d // heads)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (E, H, C, d_h)
        scores = softmax((q @ k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(d // heads)))
        out = (scores @ v).transpose(0, 2, 1, 3).reshape(n_ev, n_ch, d)
        return self._linear(out, "attn.out_proj")

    def _layer_norm(self, x: np.ndarray, name: str, eps: float = 1e-5) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + np.float32(eps)) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def encode(self, fine: np.ndarray, coarse: np.ndarray, chan: np.ndarray, roles: np.ndarray,
               target: np.ndarray) -> np.ndarray:
        """``fine (E, C, B, F)``, ``coarse (E, C, B, K)``, ``chan (C, 1)``, ``roles (C,)``, ``target (E,)`` -> ``(E, D)``."""
        n_ev, n_ch = fine.shape[:2]
        f = self._frames(fine.reshape(n_ev * n_ch, *fine.shape[2:]), "fine").reshape(n_ev, n_ch, -1)
        k = self._frames(coarse.reshape(n_ev * n_ch, *coarse.shape[2:]), "coarse").reshape(n_ev, n_ch, -1)
        role = np.broadcast_to(self.w["role.weight"][roles], (n_ev, n_ch, self.cfg.role_dim))
        level = np.broadcast_to(chan.astype(np.float32), (n_ev, n_ch, chan.shape[-1]))
        is_target = np.zeros((n_ev, n_ch, 1), dtype=np.float32)
        rows = np.arange(n_ev)
        is_target[rows, target, 0] = 1.0
        h = self._mlp(np.concatenate([f, k, role, level, is_target], axis=-1), "channel")
        a = self._attention(h)
        h = self._layer_norm(h + a, "attn_norm")
        pooled = np.concatenate([h[rows, target], a[rows, target], h.max(axis=1), h.mean(axis=1)], axis=-1)
        return self._mlp(pooled, "event").astype(np.float32, copy=False)

    def _gru(self, x: np.ndarray, reverse: bool) -> np.ndarray:
        """One direction of the GRU over ``x (E, I)`` -> ``(E, H)``."""
        sfx = "_reverse" if reverse else ""
        w_hh, b_hh = self.w[f"gru.weight_hh_l0{sfx}"], self.w[f"gru.bias_hh_l0{sfx}"]
        gates_x = x @ self.w[f"gru.weight_ih_l0{sfx}"].T + self.w[f"gru.bias_ih_l0{sfx}"]  # (E, 3H)
        n_hidden = w_hh.shape[1]
        w_hh_t = np.ascontiguousarray(w_hh.T)
        out = np.zeros((x.shape[0], n_hidden), dtype=np.float32)
        h = np.zeros(n_hidden, dtype=np.float32)
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        for t in steps:
            gx = gates_x[t]
            gh = h @ w_hh_t + b_hh
            r = sigmoid(gx[:n_hidden] + gh[:n_hidden])
            z = sigmoid(gx[n_hidden:2 * n_hidden] + gh[n_hidden:2 * n_hidden])
            n = np.tanh(gx[2 * n_hidden:] + r * gh[2 * n_hidden:])
            h = (1.0 - z) * n + z * h
            out[t] = h
        return out

    def decode(self, emb: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``emb (S, E, D)``, ``context (S, E, G)`` -> ``own_logit (S, E)``, ``offset_ms (S, E)``, ``slot_logits (S, E, 3)``."""
        x = np.concatenate([emb, gelu(self._linear(context.astype(np.float32), "context.0"))], axis=-1)
        seq = np.stack([np.concatenate([self._gru(xs, False), self._gru(xs, True)], axis=-1) for xs in x])
        z = np.concatenate([x, seq], axis=-1)
        return (self._mlp(z, "own_head")[..., 0], self._mlp(z, "offset_head")[..., 0], self._mlp(z, "slot_head"))
