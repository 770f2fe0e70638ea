"""Helpers for the ledgerd Python conformance suite.

Everything here drives a real ledgerd process: building and starting it,
making user certificates, issuing JWTs, and small bounded polling helpers.
Nothing in here talks to the ledger except through HTTPS.
"""

import base64
import datetime
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import requests
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
API_VERSION = "2022-05-13"
# The scope the SDK asks tokens for is AUDIENCE + "/.default" (acl-api.md §3).
AUDIENCE = "https://confidential-ledger.azure.com"
SCOPE = AUDIENCE + "/.default"
ISSUER = "https://login.ledgerd.test/4a3b2c1d-0000-4000-8000-000000000000/v2.0"
SIGNATURE_INTERVAL = "5ms"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


# ---------------------------------------------------------------- polling


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.02):
    """Calls predicate until it returns a truthy value or timeout_s passes.

    Returns the truthy value; raises AssertionError naming what was awaited.
    """
    deadline = time.monotonic() + timeout_s
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-except
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last error: {last_error!r})")
        time.sleep(interval_s)


# ---------------------------------------------------------------- binaries


def build_binaries(out_dir: Path) -> Dict[str, Path]:
    """Returns paths of ledgerd and ledgerctl: from LEDGERD_BIN/LEDGERCTL_BIN, else built from REPO_ROOT."""
    paths = {}
    for name, env in (("ledgerd", "LEDGERD_BIN"), ("ledgerctl", "LEDGERCTL_BIN")):
        if os.environ.get(env):
            path = Path(os.environ[env]).resolve()
            if not os.access(path, os.X_OK):
                raise RuntimeError(f"{env}={path} is not an executable file")
        else:
            path = out_dir / name
            proc = subprocess.run(
                ["go", "build", "-o", str(path), f"./cmd/{name}"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"go build ./cmd/{name} failed:\n{proc.stdout}\n{proc.stderr}")
        paths[name] = path
    return paths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the server


class LedgerProcess:
    """One real ledgerd node on 127.0.0.1 with its own data directory."""

    def __init__(self, ledgerd: Path, data_dir: Path, log_path: Path, extra_args: Sequence[str] = (), port: int = 0):
        self.ledgerd = ledgerd
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.exit_codes: List[int] = []

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def service_pem(self) -> Path:
        return self.data_dir / "service.pem"

    @property
    def admin_pem(self) -> Path:
        return self.data_dir / "admin.pem"

    @property
    def member0_pem(self) -> Path:
        return self.data_dir / "member0.pem"

    def command(self) -> List[str]:
        return [str(self.ledgerd), "--data", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}", *self.extra_args]

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        log.write(f"\n==== {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        try:
            wait_until(self._healthy, STARTUP_TIMEOUT_S, f"ledgerd on port {self.port} to answer /healthz")
        except AssertionError:
            self.stop()
            raise AssertionError(f"ledgerd did not become healthy; log:\n{self.log_tail()}") from None

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"ledgerd exited with {self.proc.returncode}; log:\n{self.log_tail()}")
        if not self.service_pem.exists():
            return False
        resp = requests.get(self.endpoint + "/healthz", verify=str(self.service_pem), timeout=2)
        return resp.status_code == 200

    def stop(self) -> Optional[int]:
        """Stops the process with SIGTERM (SIGKILL after STOP_TIMEOUT_S); returns its exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
                self.exit_codes.append(-9999)
                raise AssertionError(f"ledgerd did not stop within {STOP_TIMEOUT_S}s of SIGTERM")
        self.exit_codes.append(proc.returncode)
        return proc.returncode

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


# ---------------------------------------------------------------- certificates


def load_cert(path) -> x509.Certificate:
    """The first certificate of a PEM file."""
    return load_cert_pem(Path(path).read_bytes())


def load_cert_pem(pem) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def cert_fingerprint(cert: x509.Certificate) -> str:
    """ACL user id of a certificate user: upper-case colon-separated SHA-256 of the DER (acl-api.md §3)."""
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def spki_sha256_hex(cert: x509.Certificate) -> str:
    """CCF node id: lower-case hex SHA-256 of the DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass
class UserCert:
    name: str
    pem_path: Path  # certificate and key in one PEM, as ConfidentialLedgerCertificateCredential wants
    cert: x509.Certificate

    @property
    def user_id(self) -> str:
        return cert_fingerprint(self.cert)


def make_user_cert(directory: Path, name: str, key_type: str = "ec") -> UserCert:
    """A self-signed client certificate (EC P-256 or RSA-2048) with its key, written to DIR/NAME.pem."""
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path, 0o600)
    return UserCert(name, path, cert)


# ---------------------------------------------------------------- JWT


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int, length: Optional[int] = None) -> str:
    length = length or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(length, "big"))


class JwtIssuer:
    """A local OpenID issuer: one ES256 key (kid "es256-key") and one RS256 key (kid "rs256-key").

    write_jwks() writes the JWKS file that ledgerd's --jwt-issuer flag points to;
    token() signs compact JWS tokens by hand with `cryptography`.
    """

    ES_KID = "es256-key"
    RS_KID = "rs256-key"

    def __init__(self, issuer: str = ISSUER, audience: str = AUDIENCE):
        self.issuer = issuer
        self.audience = audience
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(65537, 2048)
        # A key the server does not know, to forge signatures with.
        self.rogue_ec_key = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict:
        ec_nums = self.ec_key.public_key().public_numbers()
        rsa_nums = self.rsa_key.public_key().public_numbers()
        return {
            "keys": [
                {"kty": "EC", "crv": "P-256", "kid": self.ES_KID, "alg": "ES256", "use": "sig",
                 "x": _int_b64url(ec_nums.x, 32), "y": _int_b64url(ec_nums.y, 32)},
                {"kty": "RSA", "kid": self.RS_KID, "alg": "RS256", "use": "sig",
                 "n": _int_b64url(rsa_nums.n), "e": _int_b64url(rsa_nums.e)},
            ]
        }

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()))
        return path

    def flag(self, jwks_path: Path) -> str:
        return f"{self.issuer},{self.audience},{jwks_path}"

    def claims(self, **overrides) -> dict:
        """Valid claims for a fresh user; overrides replace claims, and an override of None removes one."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now - 60,
            "exp": now + 3600,
            "tid": "4a3b2c1d-0000-4000-8000-000000000000",
            "oid": str(uuid.uuid4()),
            "sub": "subject-" + uuid.uuid4().hex,
        }
        for key, value in overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return claims

    def token(self, claims: dict, alg: str = "ES256", kid: Optional[str] = "default", key=None, header: Optional[dict] = None) -> str:
        if kid == "default":
            kid = self.ES_KID if alg == "ES256" else self.RS_KID
        hdr = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            hdr["kid"] = kid
        hdr.update(header or {})
        signing_input = (b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        data = signing_input.encode("ascii")
        if alg == "ES256":
            der = (key or self.ec_key).sign(data, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants raw r||s, not DER
        elif alg == "RS256":
            sig = (key or self.rsa_key).sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "none":
            sig = b""
        else:
            raise ValueError(alg)
        return signing_input + "." + b64url(sig)


class StaticTokenCredential:
    """A TokenCredential (azure.core protocol) that hands out one fixed token and records the scopes asked for."""

    def __init__(self, token: str, expires_on: Optional[int] = None):
        self.token = token
        self.expires_on = expires_on or int(time.time()) + 3600
        self.scopes_requested: List[tuple] = []

    def get_token(self, *scopes, **kwargs) -> AccessToken:  # pylint: disable=unused-argument
        self.scopes_requested.append(scopes)
        return AccessToken(self.token, self.expires_on)


class AsyncStaticTokenCredential(StaticTokenCredential):
    """The AsyncTokenCredential flavour of StaticTokenCredential."""

    async def get_token(self, *scopes, **kwargs) -> AccessToken:  # pylint: disable=invalid-overridden-method
        return StaticTokenCredential.get_token(self, *scopes, **kwargs)

    async def close(self) -> None:
        return None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *args) -> None:
        return None


# ---------------------------------------------------------------- ledgerctl


def run_ledgerctl(ledgerctl: Path, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(ledgerctl), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False)


def audit_ok(ledgerctl: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """Runs `ledgerctl audit` on a stopped node's data directory and asserts it passes."""
    proc = run_ledgerctl(ledgerctl, "audit", "-q", data_dir)
    assert proc.returncode == 0, f"ledgerctl audit {data_dir} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.startswith("OK:"), proc.stdout
    return proc


# ---------------------------------------------------------------- receipts


def receipt_field(receipt: dict, camel: str):
    """Reads a receipt field in either casing (the real service used snake_case in 2022, the spec camelCase)."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    if camel in receipt:
        return receipt[camel]
    return receipt.get(snake)


def receipt_key(receipt: dict, camel: str) -> str:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return camel if camel in receipt else snake


def flip_hex(value: str, index: int = 0) -> str:
    ch = value[index]
    return value[:index] + ("1" if ch != "1" else "2") + value[index + 1 :]


def flip_b64(value: str, index: int) -> str:
    ch = value[index]
    return value[:index] + ("A" if ch != "A" else "B") + value[index + 1 :]


def parse_txid(txid: str):
    view, seqno = txid.split(".")
    return int(view), int(seqno)


# ---------------------------------------------------------------- raw HTTP


def error_body(resp: requests.Response) -> dict:
    """Asserts resp carries an ACL error body {"error":{"code":str,"message":str}} and returns error."""
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error response Content-Type {ctype!r}, body {resp.content[:300]!r}"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an error body: {body!r}"
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], f"error.code missing/empty: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing/empty: {body!r}"
    return err


def sdk_error(exc) -> dict:
    """The (status, code) of an azure.core HttpResponseError, with its body checked to be an ACL error."""
    resp = exc.response
    body = json.loads(resp.text())
    assert isinstance(body.get("error"), dict), body
    return {"status": resp.status_code, "code": body["error"].get("code"), "message": body["error"].get("message")}


# ---------------------------------------------------------------- an HTTP CONNECT proxy


class ConnectProxy:
    """A minimal HTTPS (CONNECT) proxy on 127.0.0.1 that tunnels CONNECTs to the hosts in `routes`
    (host name -> local port) and refuses every other target with 403. It records the targets asked for.

    It stands in for DNS: the SDK keeps connecting, with TLS and name checks, to the host name it was given.
    """

    def __init__(self, routes: Dict[str, int]):
        self.routes = dict(routes)
        self.requests: List[str] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.port = self._server.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed.set()
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._server.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
            self.requests.append(f"{method} {target}")
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host not in self.routes or port != "443":
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection(("127.0.0.1", self.routes[host]), timeout=30) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        socks = [a, b]
        while True:
            readable, _, _ = select.select(socks, [], [], 30)
            if not readable:
                return
            for sock in readable:
                try:
                    data = sock.recv(65536)
                    if data:
                        (b if sock is a else a).sendall(data)
                except OSError:  # a peer reset the connection (e.g. a TLS client refusing the certificate)
                    return
                if not data:
                    return
