"""weightzoo: train zoos of small MLPs, CNNs and ViTs and study their learnable parameters."""

__version__ = "0.1.0"
