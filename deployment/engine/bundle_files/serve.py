#!/usr/bin/env python3
"""A small HTTP inference server for the model in this folder (standard library only, besides infer.py's needs).

    python serve.py --port 8080
    curl -s localhost:8080/healthz
    curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' localhost:8080/predict

GET /healthz answers 200 once the model is loaded and has run once (503 before); GET / describes the model;
POST /predict takes one image as the request body (at most --max-bytes) and answers JSON: the top-k labels for a
classifier (`?top_k=5`), the boxes for a detector (`?conf=0.4`; `?format=jpeg` answers the image with the boxes
drawn instead).
"""

import argparse
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # infer.py and tango_common/ sit next to this file

import infer  # noqa: E402
from PIL import Image  # noqa: E402

from tango_common.runtime_loader import describe_session  # noqa: E402

MAX_BYTES = 16 * 1024 * 1024


class Model:
    """The bundle's model, loaded once and warmed up; one request runs it at a time."""

    def __init__(self, bundle_dir):
        self.session, self.config, self.labels = infer.load_bundle(bundle_dir)
        self.task = self.config.get("task", "classification")
        self.runtime = describe_session(bundle_dir, self.session, self.config)
        self.lock = threading.Lock()
        self.ready = False
        size = self.config["input_size"]
        self.predict(Image.new("RGB", (size, size), (128, 128, 128)))  # warm-up: the first run is the slow one
        self.ready = True

    def predict(self, image, *, top_k=3, conf=None) -> dict:
        config = self.config
        with self.lock:
            if self.task == "detection":
                conf = config.get("conf", 0.25) if conf is None else conf
                return infer.detect(self.session, [image], input_size=config["input_size"], labels=self.labels,
                                    conf=conf, iou=config.get("iou", 0.7), max_det=config.get("max_det", 300))[0]
            top_k = max(1, min(top_k, len(self.labels)))
            return infer.predict(self.session, [image], input_size=config["input_size"], labels=self.labels,
                                 mean=config["mean"], std=config["std"], top_k=top_k)[0]

    def info(self) -> dict:
        return {"task": self.task, "model": self.config.get("model_name", ""), "runtime": self.runtime,
                "precision": self.config.get("precision", "fp32"), "input_size": self.config["input_size"],
                "labels": self.labels, "endpoints": ["GET /healthz", "GET /", "POST /predict"]}


class Handler(BaseHTTPRequestHandler):
    model: Model = None
    max_bytes = MAX_BYTES
    server_version = "tango-bundle/1"

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/healthz":
            ready = self.model is not None and self.model.ready
            self._json(200 if ready else 503, {"status": "ok" if ready else "loading",
                                               "runtime": self.model.runtime if ready else None})
        elif path == "/":
            self._json(200, self.model.info())
        else:
            self._json(404, {"detail": "Not found. Try GET /healthz, GET / or POST /predict."})

    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/predict":
            self._json(404, {"detail": "Not found. POST images to /predict."})
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._json(411, {"detail": "Send the image as the request body, with a Content-Length."})
            return
        if int(length) > self.max_bytes:
            self._json(413, {"detail": f"The image is {length} bytes; the limit is {self.max_bytes}."})
            return
        data = self.rfile.read(int(length))
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()  # a truncated or non-image body fails here, before the model sees it
            image = Image.open(io.BytesIO(data)).convert("RGB")
        except Exception:
            self._json(400, {"detail": "The body is not an image Pillow can read (JPEG, PNG, BMP, WebP, ...)."})
            return
        query = parse_qs(url.query)
        try:
            top_k = int(query.get("top_k", ["3"])[0])
            conf = float(query["conf"][0]) if "conf" in query else None
        except ValueError:
            self._json(400, {"detail": "top_k must be an integer and conf a number."})
            return
        started = time.perf_counter()
        result = self.model.predict(image, top_k=top_k, conf=conf)
        result["image"] = self.headers.get("X-Filename", "upload")
        result["latency_ms"] = round(1000 * (time.perf_counter() - started), 2)
        if self.model.task == "detection" and query.get("format", [""])[0] == "jpeg":
            buffer = io.BytesIO()
            infer.draw(image, result).save(buffer, format="JPEG", quality=90)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(buffer.tell()))
            self.end_headers()
            self.wfile.write(buffer.getvalue())
            return
        self._json(200, result)

    def log_message(self, format, *args):  # one short line per request, on stderr
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve the model in this bundle over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="largest image accepted, in bytes")
    parser.add_argument("--bundle-dir", default=str(HERE))
    args = parser.parse_args(argv)
    Handler.model = Model(args.bundle_dir)
    Handler.max_bytes = args.max_bytes
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"Serving {Handler.model.task} on http://{args.host}:{server.server_address[1]} with "
          f"{Handler.model.runtime}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
