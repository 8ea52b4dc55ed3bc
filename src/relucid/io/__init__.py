"""Reading networks from files and modules: ONNX, ``.nnet``, PyTorch."""

from relucid.io.loader import data_dir, load_network
from relucid.io.nnet import load_nnet
from relucid.io.onnx_io import load_onnx
from relucid.io.torch_io import from_sequential, load_torch, save_torch

__all__ = [
    "data_dir",
    "from_sequential",
    "load_network",
    "load_nnet",
    "load_onnx",
    "load_torch",
    "save_torch",
]
