"""Shipped model weights (``default.pt``: samem's trained default, see docs/model_card.md)."""
