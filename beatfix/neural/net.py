"""The hit model: per-channel encoder, attention across channels, a GRU across events.

Shapes (one session; ``E`` events, ``C`` channels, ``B`` bands, ``F``/``K`` frames,
``G`` context columns, ``D`` = ``width``):

- :meth:`HitNet.encode` ``fine (E, C, B, F)``, ``coarse (E, C, B, K)``, ``chan (C, 1)``,
  ``roles (C,)``, ``target (E,)`` -> event embeddings ``(E, D)``
- :meth:`HitNet.decode` ``emb (S, E, D)``, ``context (S, E, G)`` -> ``own_logit (S, E)``,
  ``offset_ms (S, E)``, ``slot_logits (S, E, 3)`` (slot classes -1, 0, +1 relative to
  the nearest grid slot)

Channels are a set: one shared encoder, role embeddings instead of positions,
and self-attention without positional encoding, so any count (1-16) in any
order gives the same answer for the same event. Events are a sequence in time
order: a bidirectional GRU lets slot decisions see the neighbours' timing.

This module is the training definition; inference runs its ONNX export
(:mod:`.export`, :mod:`.runtime`), so only training and ``beatfix train`` import torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .arch import COARSE_CHANNELS, CONV_LAYERS, FINE_CHANNELS, SLOT_CLASSES, NetConfig, frames_out

__all__ = ["HitNet", "NetConfig", "SLOT_CLASSES", "count_parameters"]


class _Frames(nn.Module):
    """1D CNN over the frames of one channel's bands -> a vector."""

    def __init__(self, n_bands: int, n_frames: int, ch: tuple[int, int, int], out: int):
        super().__init__()
        a, b, c = ch
        layers = []
        for (c_in, c_out), (kernel, stride, pad) in zip(zip((n_bands, a, b), (a, b, c)), CONV_LAYERS):
            layers += [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad), nn.GELU()]
        self.conv = nn.Sequential(*layers)
        n = frames_out(n_frames)
        self.proj = nn.Linear(c * n, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, B, F) -> (N, out)
        return self.proj(self.conv(x).flatten(1))


class HitNet(nn.Module):
    def __init__(self, cfg: NetConfig = NetConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.fine = _Frames(cfg.n_bands, cfg.fine_frames, FINE_CHANNELS, d)
        self.coarse = _Frames(cfg.n_bands, cfg.coarse_frames, COARSE_CHANNELS, d)
        self.role = nn.Embedding(cfg.n_roles, cfg.role_dim)
        self.channel = nn.Sequential(nn.Linear(2 * d + cfg.role_dim + 2, d), nn.GELU(), nn.Linear(d, d))
        self.attn = nn.MultiheadAttention(d, cfg.heads, batch_first=True)
        self.attn_norm = nn.LayerNorm(d)
        self.event = nn.Sequential(nn.Linear(4 * d, d), nn.GELU(), nn.Linear(d, d))
        self.context = nn.Sequential(nn.Linear(cfg.n_context, 16), nn.GELU())
        self.gru = nn.GRU(d + 16, cfg.gru_hidden, batch_first=True, bidirectional=True)
        h = d + 16 + 2 * cfg.gru_hidden
        self.own_head = nn.Sequential(nn.Linear(h, d), nn.GELU(), nn.Linear(d, 1))
        self.offset_head = nn.Sequential(nn.Linear(h, d), nn.GELU(), nn.Linear(d, 1))
        self.slot_head = nn.Sequential(nn.Linear(h, d), nn.GELU(), nn.Linear(d, len(SLOT_CLASSES)))

    def encode(self, fine: torch.Tensor, coarse: torch.Tensor, chan: torch.Tensor,
               roles: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n_ev, n_ch = fine.shape[:2]
        f = self.fine(fine.flatten(0, 1)).view(n_ev, n_ch, -1)
        k = self.coarse(coarse.flatten(0, 1)).view(n_ev, n_ch, -1)
        role = self.role(roles).unsqueeze(0).expand(n_ev, -1, -1)
        level = chan.unsqueeze(0).expand(n_ev, -1, -1)
        # a comparison, not an indexed write: the same ones and zeros, and it exports to ONNX as one op
        is_target = (torch.arange(n_ch, device=f.device) == target.unsqueeze(1)).to(f.dtype).unsqueeze(-1)
        h = self.channel(torch.cat([f, k, role, level, is_target], dim=-1))  # (E, C, D)
        a = self._attend(h)
        h = self.attn_norm(h + a)
        own = h[torch.arange(n_ev, device=h.device), target]  # (E, D)
        return self.event(torch.cat([own, a[torch.arange(n_ev, device=h.device), target],
                                     h.max(dim=1).values, h.mean(dim=1)], dim=-1))

    def _attend(self, h: torch.Tensor) -> torch.Tensor:
        """``self.attn``'s self-attention over the channels, ``(E, C, D) -> (E, C, D)``, written out.

        The same arithmetic and parameters as ``nn.MultiheadAttention`` (no dropout, no mask); its
        own forward freezes the channel count when exported to ONNX.
        """
        n_ev, n_ch, d = h.shape
        heads = self.cfg.heads
        qkv = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.reshape(n_ev, n_ch, 3, heads, d // heads).permute(2, 0, 3, 1, 4)  # each (E, H, C, D / H)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
        return self.attn.out_proj((w @ v).transpose(1, 2).reshape(n_ev, n_ch, d))

    def decode(self, emb: torch.Tensor, context: torch.Tensor):
        x = torch.cat([emb, self.context(context)], dim=-1)  # (S, E, D + 16)
        seq, _ = self.gru(x)
        z = torch.cat([x, seq], dim=-1)
        own_logit = self.own_head(z).squeeze(-1)
        offset_ms = self.offset_head(z).squeeze(-1)
        slot_logits = self.slot_head(z)
        return own_logit, offset_ms, slot_logits

    def forward(self, fine, coarse, chan, roles, target, context):
        """One session's events as one sequence: returns ``(E,)``, ``(E,)``, ``(E, 3)``."""
        emb = self.encode(fine, coarse, chan, roles, target)
        own, off, slot = self.decode(emb.unsqueeze(0), context.unsqueeze(0))
        return own[0], off[0], slot[0]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
