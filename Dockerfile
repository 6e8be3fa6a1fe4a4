# clutto-bridge: runs as an unprivileged user; config, registration and the SQLite
# database live in the /data volume. Set appservice.hostname to 0.0.0.0 in the config.
FROM python:3.11-slim

RUN useradd --system --create-home --uid 1337 clutto \
    && mkdir /data && chown clutto /data

WORKDIR /opt/clutto-bridge
COPY pyproject.toml README.md ./
COPY clutto_bridge ./clutto_bridge
# The placeholder policy texts ship in the package and are used (with a warning) until
# /data/config/policy holds your own.
RUN pip install --no-cache-dir .

USER clutto
WORKDIR /data
VOLUME /data
EXPOSE 29330
ENTRYPOINT ["clutto-bridge"]
CMD ["-c", "/data/config.yaml"]
