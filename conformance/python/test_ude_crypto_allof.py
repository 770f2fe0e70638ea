"""User-defined endpoints and functions, CCF's JS API over real HTTPS with raw `requests`: ccf.crypto (ccf-app's
CCFCrypto: digest, key generation, sign/verifySignature, wrapKey/unwrapKey), an {"all_of": ["user_cert", "jwt"]}
authentication policy (a user's certificate and a bearer token of the ledger's issuer, together), and the runtime
option log_exception_details (the exception is in the server's log only when it is set)."""

import uuid

import ledgerd_support as ls

V = "2024-12-09-preview"
UDE = "/app/userDefinedEndpoints"

APP = r"""
const hex = (buf) => Array.from(new Uint8Array(buf)).map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s) => new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16))).buffer;

export function crypto(request) {
  const data = ccf.strToBuf("signed data");
  const out = { sha256abc: hex(ccf.crypto.digest("SHA-256", ccf.strToBuf("abc"))) };
  for (const [alg, make, arg] of [["ECDSA", "generateEcdsaKeyPair", "secp256r1"], ["EdDSA", "generateEddsaKeyPair", "curve25519"]]) {
    const kp = ccf.crypto[make](arg);
    const params = { name: alg, hash: "SHA-256" };
    const sig = ccf.crypto.sign(params, kp.privateKey, data);
    const flipped = new Uint8Array(sig.slice(0));
    flipped[0] ^= 1;
    out[alg] = [ccf.crypto.verifySignature(params, kp.publicKey, sig, data),
                ccf.crypto.verifySignature(params, kp.publicKey, flipped.buffer, data)];
  }
  // RFC 5649's first AES-KWP vector.
  out.kwp = hex(ccf.crypto.wrapKey(unhex("c37b7e6492584340bed12207808941155068f738"),
                                   unhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"), { name: "AES-KWP" }));
  return { body: out };
}

export function both(request) {
  const c = request.caller;
  return { body: { policy: c.policy, user: c.user_cert.id, oid: c.jwt.jwt.payload.oid } };
}

export function fails(request) { throw new Error("endpoint detail " + request.params.tag); }
"""


def bundle():
    ep = lambda fn, policies: {"js_module": "app.js", "js_function": fn, "forwarding_required": "sometimes",
                               "authn_policies": policies, "mode": "readonly"}
    return {"metadata": {"endpoints": {
        "/crypto": {"get": ep("crypto", ["no_auth"])},
        "/both": {"get": ep("both", [{"all_of": ["user_cert", "jwt"]}])},
        "/fails/{tag}": {"get": ep("fails", ["no_auth"])},
    }}, "modules": [{"name": "app.js", "module": APP}]}


def call(ledger, method, path, pem=None, token=None, **kw):
    import requests  # a fresh connection per call: each call may present another certificate
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = "Bearer " + token
    return requests.request(method, ledger.endpoint + path, cert=str(pem) if pem else None, headers=headers,
                            verify=str(ledger.service_pem), timeout=30, **kw)


def install(ledger):
    resp = call(ledger, "PUT", UDE, ledger.admin_pem, params={"api-version": V}, json=bundle())
    assert resp.status_code == 201, resp.text


def test_ccf_crypto(ledger):
    install(ledger)
    resp = call(ledger, "GET", "/app/crypto")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "sha256abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "ECDSA": [True, False], "EdDSA": [True, False],
        "kwp": "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    }


def test_all_of_policy(ledger, users, jwt_issuer, certs_dir):
    install(ledger)
    reader = users["Reader"]
    oid = str(uuid.uuid4())
    token = jwt_issuer.token(jwt_issuer.claims(oid=oid), alg="ES256")
    resp = call(ledger, "GET", "/app/both", reader.pem_path, token)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"policy": ["jwt", "user_cert"], "user": reader.user_id.replace(":", "").lower(), "oid": oid}
    # Each part is required: the certificate alone, the token alone, or a stranger's certificate with the token.
    stranger = ls.make_user_cert(certs_dir, "allof-stranger")
    for pem, tok in ((reader.pem_path, None), (None, token), (stranger.pem_path, token)):
        resp = call(ledger, "GET", "/app/both", pem, tok)
        assert resp.status_code == 401 and ls.error_body(resp)["code"] == "InvalidAuthenticationInfo", resp.text


def test_log_exception_details(ledger, users):
    install(ledger)
    opts = UDE + "/runtimeOptions"
    patch = lambda body: call(ledger, "PATCH", opts, ledger.admin_pem, params={"api-version": V}, json=body,
                              headers={"Content-Type": "application/merge-patch+json"})
    try:
        quiet, loud = "q" + uuid.uuid4().hex[:8], "l" + uuid.uuid4().hex[:8]
        assert patch({"log_exception_details": False}).status_code == 200
        assert call(ledger, "GET", "/app/fails/" + quiet).status_code == 500
        assert patch({"log_exception_details": True}).status_code == 200
        assert call(ledger, "GET", "/app/fails/" + loud).status_code == 500
        # A function too: its failure is logged with the option only.
        fn = "logged" + uuid.uuid4().hex[:6]
        put = call(ledger, "PUT", f"/app/userDefinedFunctions/{fn}", ledger.admin_pem, params={"api-version": V},
                   json={"code": "export function main(t) { throw new Error('function detail ' + t); }"})
        assert put.status_code == 201, put.text
        for tag, log in ((quiet + "f", False), (loud + "f", True)):
            x = call(ledger, "POST", f"/app/userDefinedFunctions/{fn}:execute", users["Contributor"].pem_path,
                     params={"api-version": V},
                     json={"arguments": [tag], "runtimeOptions": {"log_exception_details": log}})
            assert x.status_code == 200 and x.json()["status"] == "Failed", x.text
        log = ledger.log_path.read_text()
        assert "endpoint detail " + loud in log and "function detail " + loud + "f" in log
        assert quiet not in log
    finally:
        patch({"log_exception_details": None})
