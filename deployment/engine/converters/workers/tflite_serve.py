"""Runs a .tflite file for the portal, inside the TFLite side environment: the portal's accuracy guard and benchmark
call it like any runtime, through a pipe.

    python tflite_serve.py model.tflite THREADS

Protocol on stdin/stdout, one request at a time: the portal writes a header line of JSON {"shape": [N, 3, S, S]}
followed by N*3*S*S float32 bytes; this writes back a header line {"shape": [...], "cpu_s": seconds} followed by the
output's float32 bytes. `cpu_s` is this process's CPU time for the request (CLOCK_PROCESS_CPUTIME_ID), so the
benchmark's CPU-time figure counts the interpreter's work, not just the portal's wait. The first line written, before
any request, is {"ready": true, "input_shape": [...]} (or {"error": ...}). End of input ends the process.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    import numpy as np
    from tflite_build import interpreter, run_nchw

    out = sys.stdout.buffer
    try:
        interp = interpreter(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
        interp.allocate_tensors()
    except Exception as error:  # noqa: BLE001 - the portal reads the reason
        out.write((json.dumps({"error": f"{type(error).__name__}: {error}"[:800]}) + "\n").encode())
        out.flush()
        return 1
    shape = [int(d) for d in interp.get_input_details()[0]["shape"]]
    out.write((json.dumps({"ready": True, "input_shape": shape}) + "\n").encode())
    out.flush()
    source = sys.stdin.buffer
    while header := source.readline():
        request = json.loads(header)
        count = int(np.prod(request["shape"]))
        batch = np.frombuffer(source.read(4 * count), dtype=np.float32).reshape(request["shape"])
        started = time.process_time()
        result = run_nchw(interp, batch)
        cpu = time.process_time() - started
        result = np.ascontiguousarray(result, dtype=np.float32)
        out.write((json.dumps({"shape": list(result.shape), "cpu_s": cpu}) + "\n").encode())
        out.write(result.tobytes())
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
