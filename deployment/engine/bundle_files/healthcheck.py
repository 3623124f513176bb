#!/usr/bin/env python3
"""Exit 0 when serve.py answers GET /healthz with 200, 1 otherwise: the container's and Kubernetes' health check.

    python healthcheck.py                 # http://127.0.0.1:$PORT/healthz, PORT defaults to 8080
    python healthcheck.py http://host:8080
"""

import json
import os
import sys
import urllib.error
import urllib.request


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    base = argv[0] if argv else f"http://127.0.0.1:{os.environ.get('PORT', '8080')}"
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
