"""``python -m webapp [--host H] [--port P] [--params params.yaml]``: serve the app on uvicorn (localhost by default)."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from .config import ROOT, Settings

    ap = argparse.ArgumentParser(prog="python -m webapp", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--host", default=None, help="bind address (default webapp.host: 127.0.0.1)")
    ap.add_argument("--port", type=int, default=None, help="port (default webapp.port: 8000)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import uvicorn

    from .app import create_app

    settings = Settings.from_params(args.params)
    host = args.host or settings.webapp["host"]
    port = args.port or int(settings.webapp["port"])
    app = create_app(settings)
    loaded = app.state.models.preload()                 # once per process, before the first request
    print(f"webapp: models loaded for {loaded or 'nothing (see the page)'}; http://{host}:{port}", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
