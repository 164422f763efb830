# One image for every role: `a2n serve`, `a2n project`, `a2n migrate up` (see docker-compose.yml).
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY domain domain
COPY application application
COPY projections projections
COPY api api
COPY migrations migrations
RUN UV_PROJECT_ENVIRONMENT=/opt/a2n uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --system --create-home a2n
COPY --from=build /opt/a2n /opt/a2n
ENV PATH=/opt/a2n/bin:$PATH \
    A2N_HOST=0.0.0.0 \
    A2N_EMBEDDED_POSTGRES=never \
    A2N_DATA_DIR=/home/a2n/.a2n
USER a2n
WORKDIR /home/a2n
EXPOSE 8000
CMD ["a2n", "serve"]
