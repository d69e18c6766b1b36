# One Dockerfile for the API, the migration step and the workers; the command picks the role (see docker-compose.yml).
# TORCH_INDEX picks torch's build: the CPU wheels (the default: the API, migrations and CPU workers need no CUDA, and
# the image stays small) or a CUDA index for GPU workers, e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128.
# The CUDA wheels carry their own CUDA runtime; the host needs only the NVIDIA driver and container toolkit.
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
WORKDIR /app
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY hub hub
COPY workers workers
COPY lora lora
COPY merging merging
COPY transfer transfer
COPY unlearning unlearning
COPY generation generation
COPY migrations migrations
RUN pip install --no-cache-dir .
ENV ADAPTARIUM_DATA_DIR=/data
EXPOSE 8000
