// Package client is a Go client of the Azure Confidential Ledger (ACL)
// data-plane API (api-version 2022-05-13), for ledgerd nodes and Azure
// ledgers alike. It has one method per operation of the Python SDK
// (azure-confidentialledger): append, wait for commit, status, entries,
// ranges, receipts, users, collections, consortium, constitution, enclave
// quotes and the ledger identity; and the governance operations of CCF's
// governance API. docs/acl-api.md describes the wire protocol.
//
// # Trust and authentication
//
// A ledger's TLS certificate is issued by its self-signed service
// certificate, which no system trusts: the client pins it (Options), as the
// Python SDK's ledger_certificate_path does, and verifies every connection
// against it alone, with the usual host name check. The same certificate
// verifies receipts offline (Receipt.Verify, package receipt).
//
// The client authenticates with a TLS client certificate (CertificateFile,
// Certificate), whose ledger user id is its fingerprint (CertificateUserID),
// or with bearer tokens (FromTokenSource, FromTokenCredential).
//
// # Usage
//
// With a ledgerd node started as `ledgerd --data DATA`, whose first start
// wrote DATA/service.pem and the Administrator credential DATA/admin.pem:
//
//	c, err := client.New("https://localhost:8443", client.CertificateFile("DATA/admin.pem"),
//		&client.Options{ServiceCertFile: "DATA/service.pem"})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
//	// Append an entry and wait until it is committed.
//	res, err := c.AppendToLedger(ctx, "hello", client.WaitForCommit())
//	if err != nil {
//		return err
//	}
//
//	// Get it back, with a receipt proving it is in the ledger.
//	entry, err := c.GetLedgerEntry(ctx, res.TransactionID, res.CollectionID)
//	if err != nil {
//		return err
//	}
//	rec, err := c.GetTransactionReceipt(ctx, res.TransactionID)
//	if err != nil {
//		return err
//	}
//	if err := c.VerifyReceipt(rec); err != nil {
//		return fmt.Errorf("receipt of %s does not verify: %w", res.TransactionID, err)
//	}
//	fmt.Println(entry.Contents)
//
//	// List a collection, page by page as the loop goes.
//	for e, err := range c.GetLedgerEntries(ctx, "", "", res.CollectionID) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(e.TransactionID, e.Contents)
//	}
//
//	// Let another certificate read the ledger.
//	_, err = c.CreateOrUpdateUser(ctx, client.CertificateUserID(readerCert.Raw), client.RoleReader)
//
// # Tags and application claims
//
// Calls of features newer than Options.APIVersion send the first
// api-version that has them, whatever Options.APIVersion says: entry tags
// (WithTags, ListLedgerEntriesByTags, ListCollectionTags) TagsAPIVersion,
// receipts with application claims (GetTransactionReceiptWithClaims)
// ClaimsAPIVersion. Receipt.VerifyWithClaims verifies a receipt and then
// its claims against the claims digest of its leaf, as the Azure SDK's
// verify_receipt with application_claims does: a LedgerEntry claim then
// proves the entry's collection and contents.
//
// # Governance
//
// The consortium governs the service through CCF's governance API
// (api-version GovAPIVersion, whatever Options.APIVersion says): a member
// proposes actions of the constitution (CreateProposal), members vote with
// ballots (SubmitBallot, Vote), a proposer may withdraw (WithdrawProposal),
// and a new member acks the state digest to become Active
// (UpdateStateDigest, AckStateDigest). Every write is a COSE_Sign1 envelope
// signed with the member's ECDSA key by a MemberSigner: by default the
// client certificate of a CertificateFile credential, such as ledgerd's
// DATA/member0.pem:
//
//	c, err := client.New("https://localhost:8443", client.CertificateFile("DATA/member0.pem"),
//		&client.Options{ServiceCertFile: "DATA/service.pem"})
//	...
//	p, err := c.CreateProposal(ctx, client.Action{Name: "set_user",
//		Args: map[string]any{"cert": userCertPEM, "role": "Contributor"}})
//	if err == nil && p.State == client.ProposalOpen {
//		p, err = c.Vote(ctx, p.ProposalID, true)
//	}
//
// # Errors
//
// An error answer of the ledger is a *ResponseError with its status and ACL
// error code, which matches one of ErrBadRequest, ErrUnauthorized,
// ErrForbidden, ErrNotFound, ErrUncommitted, ErrConflict and ErrThrottled
// under errors.Is; a governance error's code (such as ProposalNotOpen) is
// its Code, taken from the body or the x-ms-error-code header. Polls that
// run out of attempts return ErrTimeout.
//
// # Retries and polling
//
// Requests are retried on 429, 503 and connection failures with
// exponential backoff and full jitter, honouring Retry-After (RetryPolicy
// says which writes are safe to retry). Independently, the operations that
// wait (WaitUntilDurable, WaitForCommit, entries and receipts while the
// ledger answers Loading) poll at PollInterval up to MaxAttempts times. Every
// wait ends when the context does.
package client
