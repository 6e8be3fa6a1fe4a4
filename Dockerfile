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
ENTRYPOINT ["clutto-bridge"]
CMD ["-c", "/data/config.yaml"]
