"""A discarding OTLP/HTTP endpoint, to measure tracing's cost in the services themselves.

    .venv/bin/python -m bench.otlp_sink --port 4318 &
    OTEL_TRACES_EXPORTER=otlp .venv/bin/python -m bench.e2e --cases 400

Answers every `POST /v1/traces` with 200 after reading the body (no decoding, so the sink
costs little of the machine the services share); prints the requests and bytes received
when stopped (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

received = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        received["requests"] += 1
        received["bytes"] += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Sink)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print(f"otlp sink: {received['requests']} requests, {received['bytes']:,} bytes")


if __name__ == "__main__":
    main()
