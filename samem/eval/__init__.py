"""Accuracy against ground truth: mask, centroid, identity and diffusion metrics; classical baseline."""
