"""The background server process `meshcanary sandbox up` starts: `python -m meshcanary.sandbox`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from meshcanary.sandbox import runtime, server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m meshcanary.sandbox")
    parser.add_argument("--name", default="default")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    run(runtime.Sandbox.named(args.name), args.host, args.port)


def run(sandbox: runtime.Sandbox, host: str, port: int) -> None:
    """Serve `sandbox` in this process until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sock = server.bind(host, port)
    sandbox.certificates.ensure(host)
    config = server.ServerConfig(
        database=sandbox.database,
        token=sandbox.token(),
        host=host,
        port=sock.getsockname()[1],
        tls=sandbox.certificates.server_context(),
        settings=sandbox.settings(),
    )

    def ready(bound: int) -> None:
        sandbox.write_kubeconfig(host, bound)
        sandbox.record_server(os.getpid(), host, bound)

    try:
        asyncio.run(server.serve(config, sock, ready))
    finally:
        info = sandbox.server_info()
        if info and info.get("pid") == os.getpid():
            sandbox.forget_server()


if __name__ == "__main__":
    main()
