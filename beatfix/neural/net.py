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
"""

from __future__ import annotations

import torch
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
        is_target = torch.zeros(n_ev, n_ch, 1, dtype=f.dtype, device=f.device)
        is_target[torch.arange(n_ev, device=f.device), target, 0] = 1.0
        h = self.channel(torch.cat([f, k, role, level, is_target], dim=-1))  # (E, C, D)
        a, _ = self.attn(h, h, h, need_weights=False)
        h = self.attn_norm(h + a)
        own = h[torch.arange(n_ev, device=h.device), target]  # (E, D)
        return self.event(torch.cat([own, a[torch.arange(n_ev, device=h.device), target],
                                     h.max(dim=1).values, h.mean(dim=1)], dim=-1))

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
