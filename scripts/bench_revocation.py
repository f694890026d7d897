"""Revocation-to-enforcement: how long after a revocation is acknowledged does an instance
answer `revoked`? Run by scripts/bench-revocation; needs the `cryptography` package of the
peers venv (scripts/install-peers).

PostgreSQL: two `easgate serve` on one schema; each certificate is revoked through instance
A's REST API and instance B's OCSP responder is asked until it says revoked (the gateway
decides from the same in-memory state). SQLite, side by side: one instance; the revocation
is made by the CLI (another process, as an admin runs it) and that instance's OCSP is asked.
Prints the p50/p99/max delay of each and their ratio.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

EASGATE = os.environ["EASGATE_BIN"]
COUNT = int(os.environ.get("COUNT", "100"))


def run(data_dir, db_url, *args, json_out=True):
    cmd = [EASGATE, "--data-dir", data_dir, "--database-url", db_url]
    cmd += list(args)
    if json_out:
        cmd.append("--json")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if json_out else out


class Server:
    def __init__(self, data_dir, db_url):
        self.proc = subprocess.Popen(
            [EASGATE, "--data-dir", data_dir, "--database-url", db_url, "serve",
             "--public-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
             "--gateway-listen", "127.0.0.1:0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "EASGATE_LOG": "warn"})
        self.public = self.admin = None
        deadline = time.time() + 60
        while (self.public is None or self.admin is None) and time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise SystemExit("serve ended before listening")
            m = re.search(r"(public PKI|admin) listening on https?://(\S+)", line)
            if m:
                if m.group(1) == "admin":
                    self.admin = m.group(2)
                else:
                    self.public = m.group(2)
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


def setup(data_dir, db_url):
    run(data_dir, db_url, "init", "--no-ca", json_out=False)
    run(data_dir, db_url, "ca", "create", "default", json_out=False)
    run(data_dir, db_url, "template", "create", "phones", "--ca", "default", "--subject",
        "CN={DeviceUid}", "--san", "email:{EmailAddress}", "--san", "upn:{UserPrincipalName}",
        json_out=False)
    run(data_dir, db_url, "user", "add", "bench@corp.example", "--email",
        "bench@corp.example", json_out=False)
    run(data_dir, db_url, "device", "enroll", "--user", "bench@corp.example", "--platform",
        "ios", "--uid", "bench1")


def issue(admin, token, count):
    """`count` certificates for device bench1 through the API: [(cert, serial hex)]."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench1")]))
           .sign(key, hashes.SHA256()))
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    certs = []
    for _ in range(count):
        body = json.dumps({"template": "phones", "device": "bench1", "csr_pem": pem})
        answer = api(admin, token, "POST", "/api/v1/certificates", body)
        cert = x509.load_pem_x509_certificate(answer["pem"].encode())
        certs.append((cert, answer["certificate"]["serial"]))
    return certs


def api(admin, token, method, path, body=None):
    req = urllib.request.Request(
        f"http://{admin}{path}", method=method, data=body.encode() if body else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def ocsp_revoked(public, request_der):
    req = urllib.request.Request(f"http://{public}/ocsp/default", data=request_der,
                                 headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = ocsp.load_der_ocsp_response(resp.read())
    return answer.certificate_status == ocsp.OCSPCertStatus.REVOKED


def measure(certs, ca, revoke, public):
    """Delay from each revocation's acknowledgement to `revoked` on `public`, in seconds."""
    delays = []
    for cert, serial in certs:
        request = (ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA1())
                   .build().public_bytes(serialization.Encoding.DER))
        assert not ocsp_revoked(public, request), f"{serial} revoked before the test"
        revoke(serial)
        acknowledged = time.perf_counter()
        while not ocsp_revoked(public, request):
            if time.perf_counter() - acknowledged > 30:
                raise SystemExit(f"{serial}: not revoked on the other side after 30 s")
            time.sleep(0.001)
        delays.append(time.perf_counter() - acknowledged)
    return delays


def summary(name, delays):
    ordered = sorted(delays)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    print(f"{name}: {len(ordered)} revocations, p50 {p(0.5) * 1000:.1f} ms, "
          f"p99 {p(0.99) * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms, "
          f"mean {statistics.mean(ordered) * 1000:.1f} ms")
    return p(0.99)


def token_of(data_dir):
    with open(os.path.join(data_dir, "admin-token")) as f:
        return f.read().strip()


def postgres(pg_url):
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        setup(data, pg_url)
        a, b = Server(data, pg_url), Server(data, pg_url)
        try:
            token = token_of(data)
            certs = issue(a.admin, token, COUNT)
            ca = x509.load_pem_x509_certificate(open(export(data, pg_url, work), "rb").read())
            time.sleep(2)  # let B learn of every new certificate
            revoke = lambda serial: api(a.admin, token, "POST",
                                        f"/api/v1/certificates/{serial}/revoke",
                                        '{"reason":"keyCompromise"}')
            return measure(certs, ca, revoke, b.public)
        finally:
            a.stop()
            b.stop()


def sqlite():
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        url = f"sqlite://{data}/easgate.db"
        os.makedirs(data, mode=0o700)
        setup(data, url)
        server = Server(data, url)
        try:
            token = token_of(data)
            certs = issue(server.admin, token, COUNT)
            ca = x509.load_pem_x509_certificate(open(export(data, url, work), "rb").read())
            time.sleep(2)
            revoke = lambda serial: run(data, url, "cert", "revoke", serial, "--reason",
                                        "keyCompromise", json_out=False)
            return measure(certs, ca, revoke, server.public)
        finally:
            server.stop()


def export(data, url, work):
    path = os.path.join(work, "ca.pem")
    run(data, url, "ca", "export", "default", "--out", path, json_out=False)
    return path


def main():
    pg_url = sys.argv[1]
    print(f"== revocation-to-enforcement, {COUNT} revocations each")
    lite = summary("SQLite, CLI revocation -> the server's OCSP", sqlite())
    pg = summary("PostgreSQL, API revocation on instance A -> instance B's OCSP", postgres(pg_url))
    print(f"p99 ratio PostgreSQL across instances / SQLite in one: {pg / lite:.2f} "
          f"(goal: PostgreSQL p99 <= 1000 ms: {'met' if pg <= 1.0 else 'MISSED'})")


if __name__ == "__main__":
    main()
