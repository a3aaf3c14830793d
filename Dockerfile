# samem: live SAM 2 tracking service for liquid-phase TEM (docs/service.md).
#
#   docker build -t samem .                                         # CPU (default)
#   docker build -t samem:cuda --build-arg TORCH_VARIANT=cu126 .   # CUDA wheels; run with --gpus all
#   docker run --rm -p 5555-5557:5555-5557 -v "$PWD/data:/data" -v "$PWD/keys:/keys" samem \
#       --record /data/run.h5 --auto-prompt
#
# The entrypoint (docker/entrypoint.sh) is `samem serve` bound to all interfaces of the container
# (so the published ports reach it) and secured with CurveZMQ: keys are read from /keys, and
# generated there when absent (server.key for clients, client.key_secret for the acquisition PC,
# clients/ for the authorised public keys). Arguments after the image name are serve's options.
# There is no open remote bind; docs/service.md explains the keys.

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

# cpu, or a PyTorch CUDA wheel variant such as cu126 (the CUDA runtime comes inside the wheels;
# the host needs only the NVIDIA driver and container toolkit)
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SAM2_BUILD_CUDA=0

# libgomp: torch/OpenCV threading; libgl/glib are not needed (opencv-python-headless)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# torch first, from the chosen wheel index, so that sam2 and samem do not pull another build
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"

WORKDIR /opt/samem
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY docs ./docs
COPY samem ./samem
COPY configs ./configs
COPY synthetic ./synthetic
COPY examples ./examples
# No build isolation: sam2's setup imports torch, which must be the one installed above.
RUN pip install "setuptools>=68" wheel \
    && PIP_CONSTRAINT=constraints.txt pip install --no-build-isolation ".[formats]" \
    && useradd --create-home --uid 1000 samem \
    && mkdir -p /data /keys && chown samem /data /keys
COPY docker/entrypoint.sh /usr/local/bin/samem-entrypoint

USER samem
WORKDIR /data
EXPOSE 5555 5556 5557
VOLUME ["/keys"]

ENTRYPOINT ["/usr/local/bin/samem-entrypoint"]
CMD []
