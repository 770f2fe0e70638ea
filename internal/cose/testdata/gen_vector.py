# Generates vector.json: a CCF governance COSE_Sign1 envelope built without
# the Go code under test. The CBOR is written by hand below, laid out as CCF's
# ccf_cose_sign1 (python/src/ccf/cose.py, pycose + cbor2) writes it: tag 18,
# protected {1: alg, 4: kid, "ccf.gov.msg.type", ["ccf.gov.msg.proposal_id"],
# "ccf.gov.msg.created_at"}, an empty unprotected map, the payload, and the
# ECDSA signature as r || s. Run: python3 gen_vector.py > vector.json
import hashlib, json
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
import datetime

def head(major, n):
    m = major << 5
    if n < 24: return bytes([m | n])
    if n < 256: return bytes([m | 24, n])
    if n < 65536: return bytes([m | 25]) + n.to_bytes(2, "big")
    if n < 2**32: return bytes([m | 26]) + n.to_bytes(4, "big")
    return bytes([m | 27]) + n.to_bytes(8, "big")

def i(v): return head(0, v) if v >= 0 else head(1, -1 - v)
def bstr(b): return head(2, len(b)) + b
def tstr(s): return head(3, len(s.encode())) + s.encode()

out = []
for curve, alg, h, size in [(ec.SECP384R1(), -35, hashes.SHA384(), 48), (ec.SECP256R1(), -7, hashes.SHA256(), 32)]:
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "member0")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, h))
    der = cert.public_bytes(serialization.Encoding.DER)
    kid = hashlib.sha256(der).hexdigest()
    for msg_type, proposal_id, payload in [
        ("proposal", None, b'{"actions":[{"name":"set_constitution","args":{"constitution":"x"}}]}'),
        ("ballot", "a" * 64, b'{"ballot":"export function vote (proposal, proposerId) { return true }"}'),
    ]:
        created_at = 1767225600
        n = 5 if proposal_id else 4
        p = head(5, n) + i(1) + i(alg) + i(4) + bstr(kid.encode())
        p += tstr("ccf.gov.msg.type") + tstr(msg_type)
        if proposal_id:
            p += tstr("ccf.gov.msg.proposal_id") + tstr(proposal_id)
        p += tstr("ccf.gov.msg.created_at") + i(created_at)
        tbs = head(4, 4) + tstr("Signature1") + bstr(p) + bstr(b"") + bstr(payload)
        r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(h)))
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        env = head(6, 18) + head(4, 4) + bstr(p) + head(5, 0) + bstr(payload) + bstr(sig)
        out.append({
            "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "kid": kid, "alg": alg, "msg_type": msg_type, "proposal_id": proposal_id or "",
            "created_at": created_at, "payload": payload.decode(), "envelope_hex": env.hex(),
        })
root = bytes(range(32))
sig = bytes([1]) * 64
out_pid = hashlib.sha256(root + hashlib.sha256(sig).digest()).hexdigest()
print(json.dumps({"envelopes": out, "proposal_id": {"root_hex": root.hex(), "signature_hex": sig.hex(), "id": out_pid}}, indent=1))
