"""ACL's how-to for user-defined endpoints, step by step (azure-security-docs
articles/confidential-ledger/advanced-user-defined-function.md), with ACL's banking sample
(azureconfidentialledger-app-samples/banking-app): deploy the bundle, create the "manager" and "teller" roles with
the how-to's role_actions, create a user of each with assignedRoles, patch the runtime options, then call the
application. The sample's endpoints (banking.ts) are written out in JavaScript as its TypeScript compiles, with a
small @microsoft/ccf-app stand-in module (typedKv, string, uint32 and the ccf global) that a rollup build would
bundle. Its transfer endpoint sets the transaction's claims digest (ccf.rpc.setClaimsDigest: SHA-256 of the claim
"<caller> transferred <value> from <from> to <to>", which it keeps in its current_claim table): the receipt of the
transfer's transaction (GET /app/transactions/{id}/receipt) verifies with that digest as its claims digest, checked
with the receipt algorithm written out in test_application_claims.py. The sample's getTransactionReceipt endpoint is
left out: it reads ccf.historical, which ledgerd does not provide."""

import hashlib
import json

import pytest

import ledgerd_support as ls
from test_application_claims import verify_receipt

V = "2024-08-22-preview"  # the how-to's api-version

CCF_APP = r"""
export function typedKv(nameOrMap, kt, vt) {
  const m = typeof nameOrMap === "string" ? ccf.kv[nameOrMap] : nameOrMap;
  return {
    has: (k) => m.has(kt.encode(k)),
    get: (k) => { const v = m.get(kt.encode(k)); return v === undefined ? undefined : vt.decode(v); },
    set: (k, v) => { m.set(kt.encode(k), vt.encode(v)); },
    delete: (k) => m.delete(kt.encode(k)),
  };
}
export const string = { encode: (s) => ccf.strToBuf(s), decode: (b) => ccf.bufToStr(b) };
export const uint32 = {
  encode: (n) => { const b = new ArrayBuffer(4); new DataView(b).setUint32(0, n, true); return b; },
  decode: (b) => new DataView(b).getUint32(0, true),
};
export function json() {
  return { encode: (v) => ccf.jsonCompatibleToBuf(v), decode: (b) => ccf.bufToJsonCompatible(b) };
}
"""

CCF_GLOBAL = "const g = ccf;\nexport { g as ccf };\n"

BANKING = r"""
import * as ccfapp from "@microsoft/ccf-app";
import { ccf } from "@microsoft/ccf-app/global";

const aclRolesPrefix = "public:confidentialledger.roles.";
const aclRoleDefinitionsTablePrefix = aclRolesPrefix + "user_roles_definitions.";
const userRolesMapTable = aclRolesPrefix + "user_roles_mapping";

const createAccountAction = "/banking/accounts/post";
const depositAction = "/banking/accounts/put";
const balanceAction = "/banking/accounts/get";
const transferAction = "/banking/accounts/patch";

const claimTableName = "current_claim";
const currentClaimTable = ccfapp.typedKv(claimTableName, ccfapp.string, ccfapp.json());
const keyForClaimTable = "key";

function getAccountTable() {
  return ccfapp.typedKv("user_accounts", ccfapp.string, ccfapp.uint32);
}

function formatCertFingerprint(fingerprint) {
  fingerprint = fingerprint.toUpperCase();
  let chars = [...fingerprint];
  let formatted = fingerprint.substring(0, 2);
  for (let i = 2; i < 64; i++) {
    if (i % 2 == 0) {
      formatted = formatted + ":" + chars[i];
    } else {
      formatted = formatted + chars[i];
    }
  }
  return formatted;
}

function getCallerId(request) {
  let callerId = "";
  const callerCert = request.caller?.cert;
  if (callerCert) {
    callerId = formatCertFingerprint(ccf.pemToId(callerCert));
  } else {
    callerId = request.caller?.jwt?.payload?.oid;
  }
  if (callerId === "" || callerId === undefined) {
    throw "Either user cert or JWT is required";
  }
  return callerId;
}

function isValidUser(userId) {
  let userRolesMapHandle = ccf.kv[userRolesMapTable];
  if (!userRolesMapHandle) {
    return false;
  }
  const quotedUserId = `"${userId}"`;
  return userRolesMapHandle.has(ccf.strToBuf(quotedUserId));
}

function isPositiveInteger(value) {
  return Number.isInteger(value) && value > 0;
}

function isActionAllowed(userId, action) {
  const quotedAction = `"${action}"`;
  const quotedUserId = `"${userId}"`;
  let isAllowed = false;
  try {
    if (isValidUser(userId)) {
      let userRolesMapHandle = ccf.kv[userRolesMapTable];
      let userRolesConcat = ccf.bufToStr(userRolesMapHandle.get(ccf.strToBuf(quotedUserId)));
      let userRoles = userRolesConcat.replace("[", "").replace("]", "").replaceAll("\"", "").split(",");
      userRoles.forEach((role) => {
        let roleMapName = aclRoleDefinitionsTablePrefix + role;
        let handle = ccf.kv[roleMapName];
        if (!handle) {
          return false;
        }
        handle.forEach((_, key) => {
          let action = ccf.bufToStr(key);
          if (quotedAction === action) {
            isAllowed = true;
            return;
          }
        });
      });
    } else {
      return false;
    }
    return isAllowed;
  } catch (e) {
    console.error(`Error when checking role:`, e);
    return false;
  }
}

export function createAccount(request) {
  const userId = getCallerId(request);
  if (!isActionAllowed(userId, createAccountAction)) {
    return { statusCode: 400 };
  }
  const accountToBalance = getAccountTable();
  const accountName = request.params.account_name.trim();
  if (accountToBalance.has(accountName)) {
    return { statusCode: 204 };
  }
  accountToBalance.set(accountName, 0);
  return { statusCode: 204 };
}

export function deposit(request) {
  const userId = getCallerId(request);
  if (!isActionAllowed(userId, depositAction)) {
    return { statusCode: 400 };
  }
  let body;
  try {
    body = request.body.json();
  } catch {
    return { statusCode: 400 };
  }
  const value = body.value;
  if (!isPositiveInteger(value)) {
    return { statusCode: 400 };
  }
  const accountName = request.params.account_name;
  const accountToBalance = getAccountTable();
  if (!accountToBalance.has(accountName)) {
    return { statusCode: 404 };
  }
  accountToBalance.set(accountName, accountToBalance.get(accountName) + value);
  return { statusCode: 204 };
}

export function balance(request) {
  const userId = getCallerId(request);
  if (!isActionAllowed(userId, balanceAction)) {
    return { statusCode: 400 };
  }
  const accountName = request.params.account_name;
  const accountToBalance = getAccountTable();
  if (!accountToBalance.has(accountName)) {
    return { statusCode: 404 };
  }
  return { body: { balance: accountToBalance.get(accountName) } };
}

export function transfer(request) {
  const userId = getCallerId(request);
  if (!isActionAllowed(userId, transferAction)) {
    return { statusCode: 400 };
  }
  let body;
  try {
    body = request.body.json();
  } catch {
    return { statusCode: 400 };
  }
  const value = body.value;
  if (!isPositiveInteger(value)) {
    return { statusCode: 400 };
  }
  const accountNameFrom = request.params.account_name;
  const accountNameTo = body.account_name_to;
  const accountToBalance = getAccountTable();
  if (!accountToBalance.has(accountNameFrom)) {
    return { statusCode: 404 };
  }
  const accountToBalanceTo = getAccountTable();
  if (!accountToBalanceTo.has(accountNameTo)) {
    return { statusCode: 404 };
  }
  const balance = accountToBalance.get(accountNameFrom);
  if (value > balance) {
    return { statusCode: 400, body: "Balance is not enough" };
  }
  accountToBalance.set(accountNameFrom, balance - value);
  accountToBalanceTo.set(accountNameTo, accountToBalanceTo.get(accountNameTo) + value);
  const claim = `${userId} transferred ${value} from ${accountNameFrom} to ${accountNameTo}`;
  currentClaimTable.set(keyForClaimTable, { userId, claim });
  const claimDigest = ccf.crypto.digest("SHA-256", ccf.strToBuf(claim));
  ccf.rpc.setClaimsDigest(claimDigest);
  return { statusCode: 204 };
}
"""


def banking_bundle():
    # app.json of the sample, its receipt endpoint left out.
    def ep(fn, mode):
        return {"js_module": "endpoints/banking.js", "js_function": fn, "forwarding_required": "always",
                "authn_policies": ["any_cert", "jwt"], "mode": mode,
                "openapi": {"responses": {"204": {"description": "Ok"}}, "security": [], "parameters": []}}
    return {
        "metadata": {"endpoints": {
            "/account/{account_name}": {"put": ep("createAccount", "readwrite")},
            "/deposit/{account_name}": {"post": ep("deposit", "readwrite")},
            "/balance/{account_name}": {"get": ep("balance", "readonly")},
            "/transfer/{account_name}": {"post": ep("transfer", "readwrite")},
        }},
        "modules": [
            {"name": "endpoints/banking.js", "module": BANKING},
            {"name": "@microsoft/ccf-app/index.js", "module": CCF_APP},
            {"name": "@microsoft/ccf-app/global.js", "module": CCF_GLOBAL},
        ],
    }


def call(ledger, method, path, pem, **kw):
    import requests
    return requests.request(method, ledger.endpoint + path, cert=str(pem), verify=str(ledger.service_pem),
                            timeout=30, **kw)


def test_how_to_with_the_banking_sample(ledger, certs_dir, admin_client):
    admin = ledger.admin_pem
    # Deploy the application, and view it.
    resp = call(ledger, "PUT", "/app/userDefinedEndpoints", admin, params={"api-version": V}, json=banking_bundle())
    assert resp.status_code == 201, resp.text
    assert "/balance/{account_name}" in call(ledger, "GET", "/app/userDefinedEndpoints", admin,
                                             params={"api-version": V}).json()["metadata"]["endpoints"]

    # Create the roles (the how-to's role_actions, verbatim) and view them.
    role_actions = ('{"roles":[{"role_name":"manager","role_actions":["/banking/accounts/post","/banking/accounts/put",'
                    '"/banking/accounts/get","/banking/accounts/patch"]},{"role_name":"teller","role_actions":'
                    '["/banking/accounts/put","/banking/accounts/get","/banking/accounts/patch"]}]}')
    resp = call(ledger, "PUT", "/app/roles", admin, params={"api-version": V}, data=role_actions,
                headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert call(ledger, "GET", "/app/roles", admin, params={"api-version": V}).status_code == 200

    # A manager and a teller, each a certificate user with its custom role. The how-to PATCHes /app/ledgerUsers
    # with its 2024-08-22-preview, but that version's spec has no /app/ledgerUsers (its /app/users speak
    # assignedRoles); /app/ledgerUsers is 2024-12-09-preview's.
    manager = ls.make_user_cert(certs_dir, "bank-manager")
    teller = ls.make_user_cert(certs_dir, "bank-teller")
    for user, role in ((manager, "manager"), (teller, "teller")):
        resp = call(ledger, "PATCH", f"/app/ledgerUsers/{user.user_id}", admin, params={"api-version": "2024-12-09-preview"},
                    headers={"Content-Type": "application/merge-patch+json"},
                    data=json.dumps({"assignedRoles": [role]}))
        assert resp.status_code == 200, resp.text

    # Update the runtime configuration (the how-to's options, on runTimeOptions).
    runtime_options = ('{"max_heap_bytes":1024,"max_stack_bytes":1024,"max_execution_time_ms":2000,'
                       '"log_exception_details":false,"return_exception_details":false,"max_cached_interpreters":1024}')
    resp = call(ledger, "PATCH", "/app/userDefinedEndpoints/runTimeOptions", admin, params={"api-version": V},
                headers={"Content-Type": "application/merge-patch+json"}, data=runtime_options)
    assert resp.status_code == 200 and resp.json()["max_execution_time_ms"] == 2000, resp.text

    # The application: only a manager opens an account (the teller lacks /banking/accounts/post: the sample
    # answers 400), both deposit and read the balance, the admin (no custom role) does nothing.
    assert call(ledger, "PUT", "/app/account/alice", teller.pem_path).status_code == 400
    assert call(ledger, "PUT", "/app/account/alice", manager.pem_path).status_code == 204
    assert call(ledger, "POST", "/app/deposit/alice", teller.pem_path, json={"value": 40}).status_code == 204
    assert call(ledger, "POST", "/app/deposit/alice", manager.pem_path, json={"value": 2}).status_code == 204
    assert call(ledger, "POST", "/app/deposit/alice", manager.pem_path, json={"value": -1}).status_code == 400
    assert call(ledger, "POST", "/app/deposit/bob", manager.pem_path, json={"value": 1}).status_code == 404
    for user in (teller, manager):
        resp = call(ledger, "GET", "/app/balance/alice", user.pem_path)
        assert resp.status_code == 200 and resp.json() == {"balance": 42}, resp.text
    assert call(ledger, "GET", "/app/balance/alice", admin).status_code == 400
    assert call(ledger, "PUT", "/app/account/carol", admin).status_code == 400

    # The sample's transfer (both roles hold /banking/accounts/patch): the teller moves 40 from alice to bob.
    assert call(ledger, "PUT", "/app/account/bob", manager.pem_path).status_code == 204
    resp = call(ledger, "POST", "/app/transfer/alice", teller.pem_path, json={"value": 100, "account_name_to": "bob"})
    assert resp.status_code == 400 and resp.text == "Balance is not enough", resp.text
    assert call(ledger, "POST", "/app/transfer/alice", admin, json={"value": 1, "account_name_to": "bob"}).status_code == 400
    resp = call(ledger, "POST", "/app/transfer/alice", teller.pem_path, json={"value": 40, "account_name_to": "bob"})
    assert resp.status_code == 204, resp.text
    txid = resp.headers["x-ms-ccf-transaction-id"]
    for account, want in (("alice", 2), ("bob", 40)):
        resp = call(ledger, "GET", f"/app/balance/{account}", manager.pem_path)
        assert resp.status_code == 200 and resp.json() == {"balance": want}, resp.text

    # The transfer's receipt carries the claims digest the endpoint set: SHA-256 of the claim, whose caller id is
    # the sample's (upper-case, colon-separated certificate fingerprint).
    claim = f"{ls.cert_fingerprint(teller.cert)} transferred 40 from alice to bob"
    admin_client.begin_wait_for_commit(txid).result(timeout=30)
    resp = call(ledger, "GET", f"/app/transactions/{txid}/receipt", admin, params={"api-version": V})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["state"] == "Ready" and body["transactionId"] == txid and "applicationClaims" not in body, body
    service = ls.load_cert(ledger.service_pem)
    verify_receipt(body["receipt"], service)
    assert body["receipt"]["leafComponents"]["claimsDigest"] == hashlib.sha256(claim.encode()).hexdigest()
    # Another claim (one byte changed) does not match; a changed claims digest no longer verifies.
    assert body["receipt"]["leafComponents"]["claimsDigest"] != hashlib.sha256(claim.replace("40", "41").encode()).hexdigest()
    bad = json.loads(json.dumps(body["receipt"]))
    digest = bad["leafComponents"]["claimsDigest"]
    bad["leafComponents"]["claimsDigest"] = ("1" if digest[0] == "0" else "0") + digest[1:]
    with pytest.raises(Exception):
        verify_receipt(bad, service)

    # Clean up: uninstall, so that the other tests' /app paths are unaffected.
    resp = call(ledger, "PUT", "/app/userDefinedEndpoints", admin, params={"api-version": V},
                json={"metadata": {"endpoints": {}}, "modules": []})
    assert resp.status_code == 201, resp.text
