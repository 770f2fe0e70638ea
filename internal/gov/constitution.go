package gov

import (
	"crypto/sha256"
	"encoding/hex"
)

// DefaultConstitution is the constitution a new service starts with: CCF's
// three hooks (validate, resolve, apply) over the actions ledgerd knows.
// A proposal passes when a strict majority of the active members vote for
// it. ledgerd stores the source in the ledger and reports it at
// GET /app/governance/constitution; the governance engine that runs it is
// not part of this package. internal/constitution/default holds the
// constitution (CCF's actions, as .js files) that is to replace this string
// when issue 10's governance is wired in.
const DefaultConstitution = `// ledgerd default constitution (CCF-style: validate, resolve, apply).
const actions = new Map([
  ["set_user", {
    validate: (a) => {
      if (typeof a.user_id !== "string" || a.user_id.length === 0) throw new Error("user_id must be a non-empty string");
      if (!["Reader", "Contributor", "Administrator"].includes(a.role)) throw new Error("role must be Reader, Contributor or Administrator");
    },
    apply: (a) => {
      ccf.kv["public:ledgerd.users"].set(ccf.strToBuf(a.user_id), ccf.jsonCompatibleToBuf({ assignedRole: a.role }));
    },
  }],
  ["remove_user", {
    validate: (a) => {
      if (typeof a.user_id !== "string" || a.user_id.length === 0) throw new Error("user_id must be a non-empty string");
    },
    apply: (a) => {
      ccf.kv["public:ledgerd.users"].delete(ccf.strToBuf(a.user_id));
    },
  }],
  ["set_member", {
    validate: (a) => {
      if (typeof a.cert !== "string" || !a.cert.includes("BEGIN CERTIFICATE")) throw new Error("cert must be a PEM certificate");
    },
    apply: (a) => {
      const id = ccf.pemToId(a.cert);
      ccf.kv["public:ccf.gov.members.certs"].set(ccf.strToBuf(id), ccf.strToBuf(a.cert));
      ccf.kv["public:ccf.gov.members.info"].set(ccf.strToBuf(id), ccf.jsonCompatibleToBuf({ status: "Accepted" }));
    },
  }],
  ["remove_member", {
    validate: (a) => {
      if (typeof a.member_id !== "string") throw new Error("member_id must be a string");
    },
    apply: (a) => {
      ccf.kv["public:ccf.gov.members.certs"].delete(ccf.strToBuf(a.member_id));
      ccf.kv["public:ccf.gov.members.info"].delete(ccf.strToBuf(a.member_id));
    },
  }],
  ["set_constitution", {
    validate: (a) => {
      if (typeof a.constitution !== "string") throw new Error("constitution must be a string");
    },
    apply: (a) => {
      ccf.kv["public:ccf.gov.constitution"].set(new ArrayBuffer(8), ccf.strToBuf(a.constitution));
    },
  }],
]);

export function validate(input) {
  const proposal = JSON.parse(input);
  const errors = [];
  for (const a of proposal.actions) {
    const def = actions.get(a.name);
    if (def === undefined) {
      errors.push(a.name + ": no such action");
      continue;
    }
    try {
      def.validate(a.args);
    } catch (e) {
      errors.push(a.name + ": " + e.message);
    }
  }
  return errors.length === 0 ? { valid: true, description: "OK" } : { valid: false, description: errors.join("; ") };
}

export function resolve(proposal, proposerId, votes) {
  let active = 0;
  ccf.kv["public:ccf.gov.members.info"].forEach((v) => {
    if (ccf.bufToJsonCompatible(v).status === "Active") active++;
  });
  const yes = votes.filter((v) => v.vote).length;
  if (2 * yes > active) return "Accepted";
  if (2 * (votes.length - yes) >= active) return "Rejected";
  return "Open";
}

export function apply(proposal, proposalId) {
  for (const a of JSON.parse(proposal).actions) actions.get(a.name).apply(a.args, proposalId);
}
`

// Digest returns the digest of a constitution as GET
// /app/governance/constitution reports it: the lowercase hex SHA-256 of the
// script.
func Digest(script string) string {
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:])
}
