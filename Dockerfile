# One image for the API, the migration step and the workers; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
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
