"""A recording HTTP/1.1 upstream for gateway tests.

    recording_upstream.py RECORD.jsonl FILES_DIR [IDLE_SECONDS]

Listens on an ephemeral 127.0.0.1 port and prints `port N` once ready. Every request is appended
to RECORD.jsonl as {"method", "path", "version", "headers": [[name, value], ...], "body_len",
"peer_port"} and answered 200 `ok`, except GET /files/NAME, which serves FILES_DIR/NAME (404 if
absent) and is not recorded (that is how tests publish a CRL). Keep-alive connections stay open
until the client closes them, or IDLE_SECONDS without a request.

With the environment variables UPSTREAM_TLS_CERT and UPSTREAM_TLS_KEY (PEM files) it speaks
HTTPS instead.

A request header `X-Test-Answer` picks another HTTP/1.1 framing for the answer (the gateway's
upstream client must read each): `chunked` (two chunks and a trailer), `close` (no length, the
connection closes after the body), `interim` (100 Continue and 103 Early Hints first),
`no-content` (204), `big` (1 MiB with Content-Length), `truncated` (Content-Length 100, 5 bytes,
then close), `garbage` (not HTTP), `stall` (no answer for 10 s, then 200 `late`), `slow` (the
same after 1 s), `reject-early` (413
`too large` at once, the body unread, and the connection closed without draining it, as servers
with a size limit do; such a request is recorded with body_len -1).
"""
import http.server
import json
import os
import sys
import threading
import time

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
        reject = self.headers.get("x-test-answer") == "reject-early"
        body = b"" if reject else self._body()
        entry = {
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": -1 if reject else len(body),
            "peer_port": self.client_address[1],
        }
        with lock, open(record_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        if reject:
            self.send_response(413)
            self.send_header("content-length", "9")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(b"too large")
            self.wfile.flush()
            self.close_connection = True
            return
        special = self.headers.get("x-test-answer")
        if special:
            return self._special(special)
        self._answer(200, b"ok")

    def _special(self, kind):
        if kind in ("stall", "slow"):
            time.sleep(10 if kind == "stall" else 1)
            return self._answer(200, b"late")
        raw = {
            "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"7;ext=1\r\nhello, \r\nd\r\nchunked world\r\n0\r\nX-Trailer: t\r\n\r\n",
            "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the connection closes",
            "interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
            "no-content": b"HTTP/1.1 204 No Content\r\n\r\n",
            "big": b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"b" * 1048576,
            "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            "garbage": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        }[kind]
        self.wfile.write(raw)
        self.wfile.flush()
        if kind in ("close", "truncated", "garbage"):
            self.close_connection = True

    do_GET = do_POST = do_OPTIONS = _handle


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if os.environ.get("UPSTREAM_TLS_CERT"):
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["UPSTREAM_TLS_CERT"], os.environ["UPSTREAM_TLS_KEY"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
