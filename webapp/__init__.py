"""The web page and JSON API: classify an uploaded beat image or record, browse the dataset, read the benchmark.

``python -m webapp`` (``make serve``) serves :func:`webapp.app.create_app` on uvicorn at
``webapp.host:webapp.port`` of ``params.yaml`` (127.0.0.1:8000). See ``docs/webapp.md``.
"""
