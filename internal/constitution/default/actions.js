// ledgerd default constitution: the actions.
//
// The action names, their arguments, the tables they write and their checks
// follow CCF's default constitution (microsoft/CCF,
// samples/constitutions/default/actions.js and the virtual-attestation
// actions, Apache-2.0); this text is ledgerd's own. Differences from CCF are
// marked "ledgerd:". Functions of the node are reached through ccf.node.*
// (carried out by the node once apply succeeds) and ccf.network.*.

class Action {
  constructor(validate, apply) {
    this.validate = validate;
    this.apply = apply;
  }
}

// The key of a table that holds a single value.
function singletonKey() {
  return new ArrayBuffer(8);
}

function checkType(value, type, field) {
  let t = type;
  if (t.endsWith("?")) {
    if (value === undefined || value === null) return;
    t = t.slice(0, -1);
  }
  const ok =
    t === "array" ? Array.isArray(value)
    : t === "integer" ? Number.isInteger(value)
    : t === "object" ? typeof value === "object" && value !== null && !Array.isArray(value)
    : typeof value === t;
  if (!ok) {
    throw new Error(`${field} must be of type ${t}, not ${Array.isArray(value) ? "array" : typeof value}`);
  }
}

function checkEnum(value, allowed, field) {
  if (!allowed.includes(value)) {
    throw new Error(`${field} must be one of ${allowed.join(", ")}`);
  }
}

function checkBounds(value, low, high, field) {
  if (value === undefined || value === null) return;
  if (low !== null && value < low) throw new Error(`${field} must be at least ${low}`);
  if (high !== null && value > high) throw new Error(`${field} must be at most ${high}`);
}

function checkNone(args) {
  if (args !== undefined && args !== null) {
    throw new Error("this action takes no arguments");
  }
}

// An entity (member, node) id: the hex SHA-256 of its certificate or key.
function checkEntityId(value, field) {
  checkType(value, "string", field);
  if (!/^[0-9a-fA-F]{64}$/.test(value)) {
    throw new Error(`${field} must be 64 hexadecimal characters`);
  }
}

function checkCertBundle(value, field) {
  if (!ccf.crypto.isValidX509CertBundle(value)) {
    throw new Error(`${field} must be one or more X.509 certificates in PEM`);
  }
}

function checkValidity(args) {
  checkType(args.valid_from, "string", "valid_from");
  checkType(args.validity_period_days, "integer?", "validity_period_days");
  checkBounds(args.validity_period_days, 1, null, "validity_period_days");
}

function checkJwks(jwks, field) {
  checkType(jwks, "object", field);
  checkType(jwks.keys, "array", `${field}.keys`);
  jwks.keys.forEach((jwk, i) => {
    const f = `${field}.keys[${i}]`;
    checkType(jwk, "object", f);
    checkType(jwk.kid, "string", `${f}.kid`);
    checkType(jwk.kty, "string", `${f}.kty`);
    if (jwk.x5c !== undefined) {
      checkType(jwk.x5c, "array", `${f}.x5c`);
      if (jwk.x5c.length === 0) throw new Error(`${f}.x5c must not be empty`);
      jwk.x5c.forEach((der, j) => {
        checkType(der, "string", `${f}.x5c[${j}]`);
        checkCertBundle(`-----BEGIN CERTIFICATE-----\n${der}\n-----END CERTIFICATE-----`, `${f}.x5c[${j}]`);
      });
    } else if (jwk.n !== undefined || jwk.e !== undefined) {
      checkType(jwk.n, "string", `${f}.n`);
      checkType(jwk.e, "string", `${f}.e`);
    } else if (jwk.x !== undefined || jwk.y !== undefined) {
      checkType(jwk.x, "string", `${f}.x`);
      checkType(jwk.y, "string", `${f}.y`);
      checkType(jwk.crv, "string", `${f}.crv`);
    } else {
      throw new Error(`${f} must have x5c, n and e (RSA), or x, y and crv (EC)`);
    }
  });
}

// ledgerd: a JWT issuer's audience is a non-empty string or a non-empty
// list of them.
function checkJwtAudience(audience) {
  if (audience === undefined || audience === null) return;
  const list = Array.isArray(audience) ? audience : [audience];
  if (list.length === 0) throw new Error("audience must not be an empty list");
  list.forEach((a, i) => {
    if (typeof a !== "string" || a.length === 0) throw new Error(`audience[${i}] must be a non-empty string`);
  });
}

// The Azure AD tenant of a v1 or v2 issuer, or undefined.
function azureTenant(issuer) {
  const m = /^https:\/\/sts\.windows\.net\/([^/]+)\/$/.exec(issuer) ??
    /^https:\/\/login\.microsoftonline\.com\/([^/]+)\/v2\.0$/.exec(issuer);
  return m === null ? undefined : m[1].toLowerCase();
}

// ledgerd: refuses a namespace another issuer has, so that one user id
// never names users of two issuers; the two issuers of one Azure AD tenant
// name one user by one oid and may share one.
function checkJwtNamespaceFree(issuer, namespace) {
  ccf.kv["public:ccf.gov.jwt.issuers"].forEach((raw, key) => {
    const other = ccf.bufToStr(key);
    if (other === issuer || (ccf.bufToJsonCompatible(raw).namespace ?? "") !== namespace) return;
    const tenant = azureTenant(issuer);
    if (tenant !== undefined && tenant === azureTenant(other)) return;
    const what = namespace === "" ? "the default namespace (no namespace)" : `the namespace ${namespace}`;
    throw new Error(`issuer ${other} has ${what} already; give ${issuer} a namespace of its own`);
  });
}

function readJson(table, key) {
  const raw = ccf.kv[table].get(key);
  return raw === undefined ? undefined : ccf.bufToJsonCompatible(raw);
}

function writeJson(table, key, value) {
  ccf.kv[table].set(key, ccf.jsonCompatibleToBuf(value));
}

function serviceConfig() {
  const config = readJson("public:ccf.gov.service.config", singletonKey());
  if (config === undefined) throw new Error("the service configuration is missing");
  return config;
}

function serviceInfo() {
  const info = readJson("public:ccf.gov.service.info", singletonKey());
  if (info === undefined) throw new Error("the service information is missing");
  return info;
}

// A change of the rules (constitution, join policy) drops every other Open
// proposal, so that no vote counts under rules it was not cast for.
function dropOtherOpenProposals(keepId) {
  const proposals = ccf.kv["public:ccf.gov.proposals_info"];
  proposals.forEach((raw, key) => {
    if (ccf.bufToStr(key) === keepId) return;
    const info = ccf.bufToJsonCompatible(raw);
    if (info.state === "Open") {
      info.state = "Dropped";
      proposals.set(key, ccf.jsonCompatibleToBuf(info));
    }
  });
}

function activeRecoveryMembers() {
  let n = 0;
  ccf.kv["public:ccf.gov.members.encryption_public_keys"].forEach((_, id) => {
    const info = readJson("public:ccf.gov.members.info", id);
    if (info === undefined) throw new Error(`recovery member ${ccf.bufToStr(id)} has no information`);
    if (info.status === "Active") n++;
  });
  return n;
}

function updateServiceConfig(change) {
  const config = serviceConfig();
  const to = change.reconfiguration_type;
  if (to !== undefined && to !== config.reconfiguration_type &&
      !((config.reconfiguration_type === undefined || config.reconfiguration_type === "OneTransaction") && to === "TwoTransaction")) {
    throw new Error(`cannot change the reconfiguration type from ${config.reconfiguration_type} to ${to}`);
  }
  const threshold = change.recovery_threshold;
  const thresholdChanged = threshold !== undefined && threshold !== config.recovery_threshold;
  if (thresholdChanged) {
    const status = serviceInfo().status;
    if (status === "WaitingForRecoveryShares") {
      throw new Error(`cannot set the recovery threshold while the service is ${status}`);
    }
    if (status === "Open" && threshold > activeRecoveryMembers()) {
      throw new Error(`recovery threshold ${threshold} would exceed the ${activeRecoveryMembers()} active recovery members`);
    }
    config.recovery_threshold = threshold;
  }
  if (to !== undefined) config.reconfiguration_type = to;
  if (change.recent_cose_proposals_window_size !== undefined) {
    config.recent_cose_proposals_window_size = change.recent_cose_proposals_window_size;
  }
  writeJson("public:ccf.gov.service.config", singletonKey(), config);
  if (thresholdChanged) ccf.node.triggerRecoverySharesRefresh();
}

function maxValidityDays(field) {
  return serviceConfig()[field] ?? 365;
}

function endorseNode(nodeId, info, validFrom, days) {
  if (info.certificate_signing_request === undefined) {
    throw new Error(`node ${nodeId} has no certificate signing request`);
  }
  const max = maxValidityDays("maximum_node_certificate_validity_days");
  if (days !== undefined && days > max) {
    throw new Error(`validity period ${days} days exceeds the maximum of ${max}`);
  }
  const cert = ccf.network.generateEndorsedCertificate(info.certificate_signing_request, validFrom, days ?? max);
  ccf.kv["public:ccf.gov.nodes.endorsed_certificates"].set(ccf.strToBuf(nodeId), ccf.strToBuf(cert));
}

// ledgerd: a certificate user's id is the upper-case, colon-separated
// SHA-256 fingerprint of its certificate (what /app/users uses).
function fingerprint(hexId) {
  return hexId.toUpperCase().match(/../g).join(":");
}

const roles = ["Reader", "Contributor", "Administrator"];

const actions = new Map([
  ["set_constitution", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.constitution, "string", "constitution");
    },
    (args, proposalId) => {
      // ledgerd: the table holds the source itself, not a JSON string.
      ccf.kv["public:ccf.gov.constitution"].set(singletonKey(), ccf.strToBuf(args.constitution));
      dropOtherOpenProposals(proposalId);
    },
  )],

  ["set_member", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkCertBundle(args.cert, "cert");
      checkType(args.encryption_pub_key, "string?", "encryption_pub_key");
      checkType(args.member_data, "object?", "member_data");
      if (args.recovery_role !== undefined && args.recovery_role !== null) {
        checkEnum(args.recovery_role, ["NonParticipant", "Participant", "Owner"], "recovery_role");
        if (args.encryption_pub_key === undefined || args.encryption_pub_key === null) {
          throw new Error("recovery_role needs an encryption_pub_key");
        }
      }
    },
    (args) => {
      const id = ccf.strToBuf(ccf.pemToId(args.cert));
      ccf.kv["public:ccf.gov.members.certs"].set(id, ccf.strToBuf(args.cert));
      const keys = ccf.kv["public:ccf.gov.members.encryption_public_keys"];
      if (args.encryption_pub_key === undefined || args.encryption_pub_key === null) {
        keys.delete(id);
      } else {
        keys.set(id, ccf.strToBuf(args.encryption_pub_key));
      }
      writeJson("public:ccf.gov.members.info", id, {
        member_data: args.member_data,
        recovery_role: args.recovery_role,
        status: "Accepted",
      });
      // The member becomes Active by acknowledging the latest state digest.
      const sig = readJson("public:ccf.internal.signatures", singletonKey());
      writeJson("public:ccf.gov.members.acks", id, sig === undefined ? {} : { state_digest: sig.root });
    },
  )],

  ["remove_member", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkEntityId(args.member_id, "member_id");
    },
    (args) => {
      const id = ccf.strToBuf(args.member_id);
      const info = readJson("public:ccf.gov.members.info", id);
      if (info === undefined) return; // already gone
      const activeRecovery = info.status === "Active" &&
        ccf.kv["public:ccf.gov.members.encryption_public_keys"].has(id);
      if (activeRecovery) {
        const left = activeRecoveryMembers() - 1;
        const threshold = serviceConfig().recovery_threshold;
        if (left < threshold) {
          throw new Error(`${left} active recovery members would be left, fewer than the recovery threshold ${threshold}`);
        }
      }
      for (const t of ["info", "encryption_public_keys", "certs", "acks"]) {
        ccf.kv[`public:ccf.gov.members.${t}`].delete(id);
      }
      ccf.kv["public:ccf.gov.history"].delete(id);
      // A retired recovery member must not read what is written from now
      // on: rekey, which also issues new shares to those left.
      if (activeRecovery) ccf.node.triggerLedgerRekey();
    },
  )],

  ["set_member_data", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkEntityId(args.member_id, "member_id");
      checkType(args.member_data, "object", "member_data");
    },
    (args) => {
      const id = ccf.strToBuf(args.member_id);
      const info = readJson("public:ccf.gov.members.info", id);
      if (info === undefined) throw new Error(`member ${args.member_id} does not exist`);
      info.member_data = args.member_data;
      writeJson("public:ccf.gov.members.info", id, info);
    },
  )],

  // ledgerd: users are ledger users with an ACL role, in the table
  // /app/users writes. args: cert (PEM; the id is its fingerprint) or
  // user_id (a fingerprint, or a JWT oid/sub), and role.
  ["set_user", new Action(
    (args) => {
      checkType(args, "object", "args");
      if ((args.cert === undefined) === (args.user_id === undefined)) {
        throw new Error("exactly one of cert and user_id is needed");
      }
      if (args.cert !== undefined) checkCertBundle(args.cert, "cert");
      if (args.user_id !== undefined) {
        checkType(args.user_id, "string", "user_id");
        if (args.user_id.length === 0) throw new Error("user_id must not be empty");
      }
      checkEnum(args.role, roles, "role");
    },
    (args) => {
      const id = args.cert !== undefined ? fingerprint(ccf.pemToId(args.cert)) : args.user_id;
      writeJson("public:ledgerd.users", ccf.strToBuf(id), { assignedRole: args.role });
    },
  )],

  // ledgerd: user_id is a fingerprint, a JWT oid/sub, or CCF's hex
  // certificate id (which names the same user as its fingerprint).
  ["remove_user", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.user_id, "string", "user_id");
      if (args.user_id.length === 0) throw new Error("user_id must not be empty");
    },
    (args) => {
      const users = ccf.kv["public:ledgerd.users"];
      users.delete(ccf.strToBuf(args.user_id));
      if (/^[0-9a-fA-F]{64}$/.test(args.user_id)) users.delete(ccf.strToBuf(fingerprint(args.user_id)));
    },
  )],

  ["set_recovery_threshold", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.recovery_threshold, "integer", "recovery_threshold");
      checkBounds(args.recovery_threshold, 1, 254, "recovery_threshold");
    },
    (args) => updateServiceConfig({ recovery_threshold: args.recovery_threshold }),
  )],

  ["set_service_configuration", new Action(
    (args) => {
      checkType(args, "object", "args");
      for (const k of Object.keys(args)) {
        checkEnum(k, ["reconfiguration_type", "recovery_threshold", "recent_cose_proposals_window_size"], "setting");
      }
      checkType(args.reconfiguration_type, "string?", "reconfiguration_type");
      checkType(args.recovery_threshold, "integer?", "recovery_threshold");
      checkBounds(args.recovery_threshold, 1, 254, "recovery_threshold");
      checkType(args.recent_cose_proposals_window_size, "integer?", "recent_cose_proposals_window_size");
      checkBounds(args.recent_cose_proposals_window_size, 1, 10000, "recent_cose_proposals_window_size");
    },
    (args) => updateServiceConfig(args),
  )],

  ["trigger_recovery_shares_refresh", new Action(checkNone, () => ccf.node.triggerRecoverySharesRefresh())],
  ["trigger_ledger_rekey", new Action(checkNone, () => ccf.node.triggerLedgerRekey())],
  ["trigger_snapshot", new Action(() => {}, () => ccf.node.triggerSnapshot())],
  ["trigger_ledger_chunk", new Action(() => {}, () => ccf.node.triggerLedgerChunk())],

  ["transition_service_to_open", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkCertBundle(args.next_service_identity, "next_service_identity");
      if (args.previous_service_identity !== undefined) {
        checkCertBundle(args.previous_service_identity, "previous_service_identity");
      }
    },
    (args) => {
      const service = serviceInfo();
      if (service.status === "Recovering" && args.previous_service_identity === undefined) {
        throw new Error("opening a recovering service needs the previous and the next service identity");
      }
      const previous = args.previous_service_identity === undefined
        ? undefined : ccf.strToBuf(args.previous_service_identity);
      ccf.node.transitionServiceToOpen(previous, ccf.strToBuf(args.next_service_identity));
    },
  )],

  ["transition_node_to_trusted", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkEntityId(args.node_id, "node_id");
      checkValidity(args);
    },
    (args) => {
      const id = ccf.strToBuf(args.node_id);
      const info = readJson("public:ccf.gov.nodes.info", id);
      if (info === undefined) throw new Error(`no such node: ${args.node_id}`);
      if (info.status !== "Pending") return;
      info.status = "Trusted";
      info.ledger_secret_seqno = ccf.network.getLatestLedgerSecretSeqno();
      writeJson("public:ccf.gov.nodes.info", id, info);
      if (info.certificate_signing_request !== undefined) {
        endorseNode(args.node_id, info, args.valid_from, args.validity_period_days);
      }
    },
  )],

  ["remove_node", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkEntityId(args.node_id, "node_id");
    },
    (args) => {
      const id = ccf.strToBuf(args.node_id);
      const info = readJson("public:ccf.gov.nodes.info", id);
      if (info === undefined) return;
      if (info.status === "Pending") {
        ccf.kv["public:ccf.gov.nodes.info"].delete(id);
      } else {
        info.status = "Retired";
        writeJson("public:ccf.gov.nodes.info", id, info);
      }
    },
  )],

  ["set_node_data", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkEntityId(args.node_id, "node_id");
    },
    (args) => {
      const id = ccf.strToBuf(args.node_id);
      const info = readJson("public:ccf.gov.nodes.info", id);
      if (info === undefined) throw new Error(`node ${args.node_id} does not exist`);
      info.node_data = args.node_data;
      writeJson("public:ccf.gov.nodes.info", id, info);
    },
  )],

  ["set_node_certificate_validity", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkEntityId(args.node_id, "node_id");
      checkValidity(args);
    },
    (args) => {
      const info = readJson("public:ccf.gov.nodes.info", ccf.strToBuf(args.node_id));
      if (info === undefined) throw new Error(`no such node: ${args.node_id}`);
      if (info.status !== "Trusted") throw new Error(`node ${args.node_id} is not trusted`);
      endorseNode(args.node_id, info, args.valid_from, args.validity_period_days);
    },
  )],

  ["set_all_nodes_certificate_validity", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkValidity(args);
    },
    (args) => {
      ccf.kv["public:ccf.gov.nodes.info"].forEach((raw, id) => {
        const info = ccf.bufToJsonCompatible(raw);
        if (info.status === "Trusted") {
          endorseNode(ccf.bufToStr(id), info, args.valid_from, args.validity_period_days);
        }
      });
    },
  )],

  ["set_service_certificate_validity", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkValidity(args);
    },
    (args) => {
      const max = maxValidityDays("maximum_service_certificate_validity_days");
      const days = args.validity_period_days;
      if (days !== undefined && days > max) {
        throw new Error(`validity period ${days} days exceeds the maximum of ${max}`);
      }
      const info = serviceInfo();
      info.cert = ccf.network.generateNetworkCertificate(args.valid_from, days ?? max);
      writeJson("public:ccf.gov.service.info", singletonKey(), info);
    },
  )],

  ["set_ca_cert_bundle", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.name, "string", "name");
      checkCertBundle(args.cert_bundle, "cert_bundle");
    },
    (args) => writeJson("public:ccf.gov.tls.ca_cert_bundles", ccf.strToBuf(args.name), args.cert_bundle),
  )],

  ["remove_ca_cert_bundle", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.name, "string", "name");
    },
    (args) => ccf.kv["public:ccf.gov.tls.ca_cert_bundles"].delete(ccf.strToBuf(args.name)),
  )],

  // ledgerd: besides CCF's arguments, optional audience (a string or a
  // list of strings; default ACL's, https://confidential-ledger.azure.com
  // with or without a trailing slash), namespace (the issuer's user ids are
  // NAMESPACE:oid; default none, the bare oid) and jwks_uri (a JWK Set URL
  // every node fetches keys from, besides the governed keys). They are kept
  // in the issuer's metadata. No two issuers may share a namespace (or both
  // have none), except the v1 and v2 issuers of one Azure AD tenant.
  ["set_jwt_issuer", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.issuer, "string", "issuer");
      if (args.issuer.length === 0) throw new Error("issuer must not be empty");
      checkType(args.auto_refresh, "boolean?", "auto_refresh");
      checkType(args.ca_cert_bundle_name, "string?", "ca_cert_bundle_name");
      if (args.jwks !== undefined && args.jwks !== null) checkJwks(args.jwks, "jwks");
      if (args.auto_refresh) {
        if (!args.ca_cert_bundle_name) throw new Error("auto_refresh needs ca_cert_bundle_name");
        const m = /^https:\/\/[^/?#]+[^?#]*$/.exec(args.issuer);
        if (m === null) throw new Error("with auto_refresh, issuer must be an https:// URL without query or fragment");
      }
      checkJwtAudience(args.audience);
      checkType(args.namespace, "string?", "namespace");
      if (args.namespace !== undefined && args.namespace !== null && !/^[A-Za-z0-9._-]{1,64}$/.test(args.namespace)) {
        throw new Error("namespace must be 1 to 64 letters, digits, '.', '-' or '_'");
      }
      checkType(args.jwks_uri, "string?", "jwks_uri");
      if (args.jwks_uri !== undefined && args.jwks_uri !== null &&
          !/^(https:\/\/[^/?#\s]+|http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?)([/?][^#\s]*)?$/.test(args.jwks_uri)) {
        throw new Error("jwks_uri must be an https:// URL (http:// only for localhost)");
      }
    },
    (args) => {
      if (args.auto_refresh &&
          !ccf.kv["public:ccf.gov.tls.ca_cert_bundles"].has(ccf.strToBuf(args.ca_cert_bundle_name))) {
        throw new Error(`no CA certificate bundle named ${args.ca_cert_bundle_name}`);
      }
      checkJwtNamespaceFree(args.issuer, args.namespace ?? "");
      const metadata = Object.assign({}, args);
      delete metadata.jwks;
      if (args.jwks) ccf.setJwtPublicSigningKeys(args.issuer, metadata, args.jwks);
      writeJson("public:ccf.gov.jwt.issuers", ccf.strToBuf(args.issuer), metadata);
    },
  )],

  ["set_jwt_public_signing_keys", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.issuer, "string", "issuer");
      checkJwks(args.jwks, "jwks");
    },
    (args) => {
      const metadata = readJson("public:ccf.gov.jwt.issuers", ccf.strToBuf(args.issuer));
      if (metadata === undefined) throw new Error(`issuer ${args.issuer} not found`);
      ccf.setJwtPublicSigningKeys(args.issuer, metadata, args.jwks);
    },
  )],

  ["remove_jwt_issuer", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.issuer, "string", "issuer");
    },
    (args) => {
      const key = ccf.strToBuf(args.issuer);
      if (!ccf.kv["public:ccf.gov.jwt.issuers"].has(key)) return;
      ccf.kv["public:ccf.gov.jwt.issuers"].delete(key);
      ccf.removeJwtPublicSigningKeys(args.issuer);
    },
  )],

  ["add_virtual_measurement", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.measurement, "string", "measurement");
    },
    (args, proposalId) => {
      writeJson("public:ccf.gov.nodes.virtual.measurements", ccf.strToBuf(args.measurement), "AllowedToJoin");
      dropOtherOpenProposals(proposalId);
    },
  )],

  ["remove_virtual_measurement", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.measurement, "string", "measurement");
    },
    (args) => ccf.kv["public:ccf.gov.nodes.virtual.measurements"].delete(ccf.strToBuf(args.measurement)),
  )],

  ["add_virtual_host_data", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.host_data, "string", "host_data");
    },
    (args, proposalId) => {
      ccf.kv["public:ccf.gov.nodes.virtual.host_data"].set(ccf.strToBuf(args.host_data), singletonKey());
      dropOtherOpenProposals(proposalId);
    },
  )],

  ["remove_virtual_host_data", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkType(args.host_data, "string", "host_data");
    },
    (args) => ccf.kv["public:ccf.gov.nodes.virtual.host_data"].delete(ccf.strToBuf(args.host_data)),
  )],

  ["assert_service_identity", new Action(
    (args) => {
      checkType(args, "object", "args");
      checkCertBundle(args.service_identity, "service_identity");
    },
    (args) => {
      if (serviceInfo().cert !== args.service_identity) {
        throw new Error("the service identity is not the service's certificate");
      }
    },
  )],
]);
