"""The hit model exported to ONNX: what :mod:`.runtime` runs, written whenever a model is saved.

Two graphs, because the judge encodes once and decodes twice (without a grid,
then with the fitted one; the features and the encoder are the costly part):

- ``encoder.onnx``: ``fine (E, C, B, F)``, ``coarse (E, C, B, K)``, ``chan (C, 1)``,
  ``roles (C,)`` int64, ``target (E,)`` int64 -> ``emb (E, D)``
- ``decoder.onnx``: ``emb (S, E, D)``, ``context (S, E, G)`` -> ``own_logit (S, E)``,
  ``offset_ms (S, E)``, ``slot_logits (S, E, 3)``

``E`` (events), ``C`` (channels) and ``S`` (sequences) are dynamic axes. Exporting
needs torch and the ``onnx`` package (the ``train`` extra); running needs neither.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
OPSET = 17
ENCODER_INPUTS = ("fine", "coarse", "chan", "roles", "target")
DECODER_INPUTS = ("emb", "context")
DECODER_OUTPUTS = ("own_logit", "offset_ms", "slot_logits")


def export_onnx(net) -> dict[str, bytes]:
    """``{file name: ONNX bytes}`` of ``net``'s encoder and decoder (a :class:`~.net.HitNet`, on any device)."""
    import copy

    import torch

    cfg = net.cfg
    cpu_net = copy.deepcopy(net).cpu().eval()

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = cpu_net

        def forward(self, fine, coarse, chan, roles, target):
            return self.net.encode(fine, coarse, chan, roles, target)

    class _Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = cpu_net

        def forward(self, emb, context):
            return self.net.decode(emb, context)

    # traced with 3 events on 2 channels: sizes above 1, so no axis is frozen as a broadcast
    gen = torch.Generator().manual_seed(0)
    n_ev, n_ch = 3, 2
    enc_args = (torch.randn(n_ev, n_ch, cfg.n_bands, cfg.fine_frames, generator=gen),
                torch.randn(n_ev, n_ch, cfg.n_bands, cfg.coarse_frames, generator=gen),
                torch.randn(n_ch, 1, generator=gen),
                torch.tensor([0, 1], dtype=torch.long), torch.tensor([0, 1, 1], dtype=torch.long))
    dec_args = (torch.randn(2, n_ev, cfg.width, generator=gen), torch.randn(2, n_ev, cfg.n_context, generator=gen))
    events, channels = {0: "events"}, {0: "channels"}
    enc_axes = {"fine": {0: "events", 1: "channels"}, "coarse": {0: "events", 1: "channels"}, "chan": channels,
                "roles": channels, "target": events, "emb": events}
    dec_axes = {name: {0: "sequences", 1: "events"} for name in (*DECODER_INPUTS, *DECODER_OUTPUTS)}
    out = {}
    with tempfile.TemporaryDirectory(prefix="beatfix-export-") as scratch:
        for name, module, args, inputs, outputs, axes in (
                (ENCODER_FILE, _Encoder(), enc_args, ENCODER_INPUTS, ("emb",), enc_axes),
                (DECODER_FILE, _Decoder(), dec_args, DECODER_INPUTS, DECODER_OUTPUTS, dec_axes)):
            path = Path(scratch) / name
            with warnings.catch_warnings():  # not no_grad: it would trace attention's fused kernel, which has no ONNX op
                # the TorchScript exporter: it handles the GRU and attention with fixed opsets and needs no
                # onnxscript; its deprecation and advanced-indexing notes (indices are never negative) are noise here
                warnings.simplefilter("ignore")
                torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET, input_names=list(inputs),
                                  output_names=list(outputs), dynamic_axes=axes, do_constant_folding=True)
            out[name] = path.read_bytes()
    return out
