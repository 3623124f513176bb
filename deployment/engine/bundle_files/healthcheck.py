#!/usr/bin/env python3
"""Exit 0 when serve.py answers GET /healthz with 200, 1 otherwise: the container's and Kubernetes' health check.

    python healthcheck.py                 # http://127.0.0.1:$PORT/healthz, PORT defaults to 8080
    python healthcheck.py --port 9000     # the port serve.py was given with --port
    python healthcheck.py http://host:8080
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check that serve.py answers /healthz.")
    parser.add_argument("url", nargs="?", help="the server's address (default: http://127.0.0.1:PORT)")
    # the same flag as serve.py's; the PORT variable (the Dockerfile sets it) stays the default
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    base = args.url or f"http://127.0.0.1:{args.port}"
    try:
        with urllib.request.urlopen(base.rstrip("/") + "/healthz", timeout=5) as answer:
            body = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(f"healthy: {body.get('runtime')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
