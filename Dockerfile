# The ploomes-cx code location as an image: the gRPC code server that Dagster's webserver and
# daemon load (port 3030), and the image Dagster's K8sRunLauncher starts each run in.
# Build: docker build -t ploomes-cx:<version> .   Values for Dagster's Helm chart: deploy/helm/values.yaml
# The image holds the installed wheel, not the source tree: what runs is what `pip install` gives a user.

# ---- build: the wheel, and the mappings with links resolved (mappings/sandbox.yaml links into the package)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ploomes_cx ./ploomes_cx
COPY mappings ./mappings
RUN pip wheel --no-cache-dir --no-deps . -w /dist \
    && cp -rL mappings /mappings

# ---- the image
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PLOOMES_CX_HOME=/var/lib/ploomes-cx \
    PLOOMES_CX_MAPPINGS=/opt/ploomes-cx/mappings

WORKDIR /opt/ploomes-cx

# Dependencies first, so a change to the code alone reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir ploomes_cx && touch ploomes_cx/__init__.py \
    && pip install '.[postgres,k8s]' \
    && pip uninstall -y ploomes-cx && rm -r ploomes_cx pyproject.toml README.md

# The package itself, from its wheel; the mappings beside it (PLOOMES_CX_MAPPINGS can point
# elsewhere, e.g. at a ConfigMap mounted over /opt/ploomes-cx/mappings).
COPY --from=build /dist /tmp/dist
COPY --from=build /mappings ./mappings
RUN pip install --no-deps /tmp/dist/ploomes_cx-*.whl && rm -r /tmp/dist \
    && useradd --uid 10001 --create-home ploomes \
    && mkdir -p "$DAGSTER_HOME" "$PLOOMES_CX_HOME" \
    && chown -R ploomes "$DAGSTER_HOME" "$PLOOMES_CX_HOME"
USER ploomes

EXPOSE 3030
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "3030", "--module-name", "ploomes_cx.definitions"]
