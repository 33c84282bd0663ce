"""Shipped model weights, installed as ``beatfix._models`` (see pyproject.toml)."""
