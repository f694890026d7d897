"""A recording HTTP/1.1 upstream for gateway tests.

    recording_upstream.py RECORD.jsonl FILES_DIR [IDLE_SECONDS]

Listens on an ephemeral 127.0.0.1 port and prints `port N` once ready. Every request is appended
to RECORD.jsonl as {"method", "path", "version", "headers": [[name, value], ...], "body_len",
"peer_port"} and answered 200 `ok`, except GET /files/NAME, which serves FILES_DIR/NAME (404 if
absent) and is not recorded (that is how tests publish a CRL). Keep-alive connections stay open
until the client closes them, or IDLE_SECONDS without a request.
"""
import http.server
import json
import os
import sys
import threading

record_path, files_dir = sys.argv[1], sys.argv[2]
idle_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else None
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = idle_seconds

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _answer(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        if self.command == "GET" and self.path.startswith("/files/"):
            path = os.path.join(files_dir, os.path.basename(self.path))
            if os.path.exists(path):
                with open(path, "rb") as f:
                    return self._answer(200, f.read(), "application/pkix-crl")
            return self._answer(404, b"not found")
        body = self._body()
        entry = {
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": len(body),
            "peer_port": self.client_address[1],
        }
        with lock, open(record_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self._answer(200, b"ok")

    do_GET = do_POST = do_OPTIONS = _handle


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
