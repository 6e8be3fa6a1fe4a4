# clutto-bridge: runs as an unprivileged user; config, registration and the SQLite
# database live in the /data volume. Set appservice.hostname to 0.0.0.0 in the config.
FROM python:3.11-slim

RUN useradd --system --create-home --uid 1337 clutto \
    && mkdir /data && chown clutto /data

WORKDIR /opt/clutto-bridge
COPY pyproject.toml README.md ./
COPY clutto_bridge ./clutto_bridge
RUN pip install --no-cache-dir .
# What an operator edits next to config.yaml: our policy texts (policy.consent.texts:
# config/policy, relative to /data) and the homeserver snippets. A new volume starts with
# them; a bind mount over /data hides them, and until /data/config/policy exists the
# placeholder packaged with clutto-bridge is used, with a warning.
COPY --chown=clutto config /data/config

USER clutto
WORKDIR /data
VOLUME /data
EXPOSE 29330
# Healthy while the bridge's event loop answers /_clutto/health within the timeout and its
# database answers (a hung bridge delays every message on the homeserver: docs/bridge-down.md).
# Docker only marks the container unhealthy; Swarm, Kubernetes or an autoheal container restart it.
# The config path follows CMD: change both together.
HEALTHCHECK --interval=30s --timeout=15s --start-period=120s --retries=2 \
    CMD ["clutto-bridge", "health", "-c", "/data/config.yaml", "--timeout", "10"]
ENTRYPOINT ["clutto-bridge"]
CMD ["-c", "/data/config.yaml"]
