# The app image: web, worker and gpu-worker. Runtime requirements only (requirements.txt), every one
# a wheel: python:3.11-slim has no compiler and the install must not need one (--only-binary).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
# torch is pinned to the CPU wheel here; the gpu-worker image overrides it with a CUDA build (TORCH_INDEX_URL).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --only-binary=:all: --extra-index-url ${TORCH_INDEX_URL} -r requirements.txt
COPY . .
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
