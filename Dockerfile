# The browser libraries no PyPI package vendors (ECharts), from the npm registry, pinned.
FROM node:20-slim AS assets
WORKDIR /assets
COPY tools/vendor-assets.sh tools/
RUN bash tools/vendor-assets.sh

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scrm scrm
COPY --from=assets /assets/scrm/static/vendor scrm/static/vendor
COPY members members
COPY tags tags
COPY points points
COPY campaigns campaigns
COPY integrations integrations
COPY templates templates
COPY manage.py ./
RUN pip install --no-cache-dir . && python manage.py collectstatic --no-input --verbosity 0
EXPOSE 8000
CMD ["gunicorn", "scrm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
