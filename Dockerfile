# alert-receiver: slim Python, non-root, `alert-receiver serve` on 0.0.0.0:9095.
# Binding 0.0.0.0 needs auth tokens (auth.tokens in receiver.yml) or an explicit `auth.required: false`;
# without either the receiver says so and exits.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY receiver ./receiver
RUN pip install . && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /var/lib/alert-receiver --create-home receiver
USER receiver
WORKDIR /var/lib/alert-receiver

ENV RECEIVER_HOST=0.0.0.0 RECEIVER_PORT=9095 RECEIVER_LOG_FORMAT=json \
    RECEIVER_DATABASE_URL=sqlite:////var/lib/alert-receiver/alert-receiver.db
VOLUME ["/var/lib/alert-receiver"]
EXPOSE 9095

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9095/-/healthy', timeout=2).status == 200 else 1)"

ENTRYPOINT ["alert-receiver"]
CMD ["serve"]
