"""The server the bench talks to: `create_app(settings)` under uvicorn on a loopback port,
settings from the environment only (never `.env.orchestrator`). `python -m bench.serve
--port N`; SIGTERM shuts it down gracefully, SIGKILL is what the recovery scenario sends."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from neolith_orchestrator.app import create_app
from neolith_orchestrator.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(_env_file=None, host="127.0.0.1", port=args.port)  # type: ignore[call-arg]
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=args.port,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
