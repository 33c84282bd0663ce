"""The neural hit model: bleed vs own drum, onset correction and grid slot for every candidate.

Modules: :mod:`.features` (numpy inputs), :mod:`.arch` (architecture settings),
:mod:`.net` (the torch module: the one definition, for training), :mod:`.export`
(its ONNX graphs), :mod:`.runtime` (onnxruntime: how the model runs),
:mod:`.weights` (versioned model folders, sha256, devices), :mod:`.judge`
(drop-in for the classic judge), :mod:`.dataset` and :mod:`.train` (training on
synthetic sessions). Importing this package does not import torch, and neither
does running the shipped model; torch is the ``train`` extra.
"""
