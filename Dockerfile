# PoisonLab: the CLI, the defense service and the dashboard in one image.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends procps && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY simulator ./simulator
COPY defenses ./defenses
COPY stream ./stream
COPY dashboard ./dashboard
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . "psycopg[binary]>=3.1"
USER nobody
EXPOSE 8501
CMD ["poisonlab", "--help"]
