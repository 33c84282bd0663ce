"""The neural hit model: bleed vs own drum, onset correction and grid slot for every candidate.

Modules: :mod:`.features` (numpy inputs), :mod:`.arch` (architecture settings),
:mod:`.net` (the torch module: training, CUDA), :mod:`.runtime` (the same forward
pass in numpy: the CPU), :mod:`.weights` (versioned model folders, sha256,
devices), :mod:`.judge` (drop-in for the classic judge), :mod:`.dataset` and
:mod:`.train` (training on synthetic sessions). Importing this package does not
import torch, and neither does running the shipped model on a CPU.
"""
