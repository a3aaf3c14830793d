"""Package discovery only; all metadata lives in pyproject.toml.

configs/ (model, serve and training YAML) and synthetic/ (dataset recipes) sit at the
repository root for people to read and edit, and ship inside the wheel as the data
packages ``samem.configs`` and ``samem.recipes``.
"""

from setuptools import find_packages, setup

DATA_PACKAGES = ["samem.configs", "samem.configs.model", "samem.configs.train", "samem.recipes"]

setup(packages=find_packages(include=["samem", "samem.*"]) + DATA_PACKAGES)
