package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// Append an entry, wait until it is committed, read it back, and verify
// its receipt against the pinned service certificate.
func Example() {
	ledger := startLedger() // a ledgerd node in this process (ledger_test.go)
	defer ledger.Stop()
	ctx := context.Background()

	// The files ledgerd writes on its first start: the service certificate
	// to pin, and the Administrator's certificate and key. PollAttempts -1
	// polls until the condition holds (or ctx ends) instead of giving up
	// after a number of polls.
	c, err := client.New(ledger.Endpoint, client.CertificateFile(ledger.AdminPEM),
		&client.Options{ServiceCertFile: ledger.ServicePEM, PollInterval: 10 * time.Millisecond, PollAttempts: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	res, err := c.AppendToLedger(ctx, "Hello world!", client.WaitForCommit())
	if err != nil {
		log.Fatal(err)
	}
	status, err := c.GetTransactionStatus(ctx, res.TransactionID)
	if err != nil {
		log.Fatal(err)
	}
	entry, err := c.GetLedgerEntry(ctx, res.TransactionID, res.CollectionID)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := c.GetTransactionReceipt(ctx, res.TransactionID)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.VerifyReceipt(rec); err != nil {
		log.Fatalf("the receipt does not verify: %v", err)
	}
	fmt.Println("collection:", res.CollectionID)
	fmt.Println("state:", status.State)
	fmt.Println("contents:", entry.Contents)
	fmt.Println("receipt verified:", rec.TransactionID == res.TransactionID)
	// Output:
	// collection: subledger:0
	// state: Committed
	// contents: Hello world!
	// receipt verified: true
}

// List the entries of a collection. The iterator fetches page after page
// as the loop asks for more, and stops when the loop does.
func ExampleClient_GetLedgerEntries() {
	ledger := startLedger() // a ledgerd node in this process (ledger_test.go)
	defer ledger.Stop()
	ctx := context.Background()
	c, err := client.New(ledger.Endpoint, client.CertificateFile(ledger.AdminPEM),
		&client.Options{ServiceCertFile: ledger.ServicePEM, PollInterval: 10 * time.Millisecond, PollAttempts: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var first client.AppendResult
	for i := range 5 {
		res, err := c.AppendToLedger(ctx, fmt.Sprintf("reading %d", i), client.InCollection("sensor-7"))
		if err != nil {
			log.Fatal(err)
		}
		if i == 0 {
			first = res
		}
		if _, err := c.AppendToLedger(ctx, "noise", client.InCollection("sensor-8")); err != nil {
			log.Fatal(err)
		}
	}
	// Ranges list committed entries: wait for the last write.
	last, err := c.AppendToLedger(ctx, "reading 5", client.InCollection("sensor-7"), client.WaitForCommit())
	if err != nil {
		log.Fatal(err)
	}

	for e, err := range c.GetLedgerEntries(ctx, first.TransactionID, last.TransactionID, "sensor-7") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.CollectionID, e.Contents)
		if e.Contents == "reading 3" {
			break // no more requests
		}
	}
	// Output:
	// sensor-7 reading 0
	// sensor-7 reading 1
	// sensor-7 reading 2
	// sensor-7 reading 3
}

// Manage users: give a certificate the Reader role, see what it may do,
// and remove it.
func ExampleClient_CreateOrUpdateUser() {
	ledger := startLedger() // a ledgerd node in this process (ledger_test.go)
	defer ledger.Stop()
	ctx := context.Background()
	opts := &client.Options{ServiceCertFile: ledger.ServicePEM}
	admin, err := client.New(ledger.Endpoint, client.CertificateFile(ledger.AdminPEM), opts)
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()

	// A certificate user's id is its fingerprint.
	cert, err := tls.LoadX509KeyPair(ledger.StrangerPEM, ledger.StrangerPEM)
	if err != nil {
		log.Fatal(err)
	}
	userID := client.CertificateUserID(cert.Certificate[0])
	if _, err := admin.CreateOrUpdateUser(ctx, userID, client.RoleReader); err != nil {
		log.Fatal(err)
	}
	user, err := admin.GetUser(ctx, userID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("role:", user.Role)

	reader, err := client.New(ledger.Endpoint, client.Certificate(cert), opts)
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ListCollections(ctx); err == nil {
		fmt.Println("reader may read")
	}
	if _, err := reader.AppendToLedger(ctx, "let me in"); errors.Is(err, client.ErrForbidden) {
		fmt.Println("reader may not write")
	}

	if err := admin.DeleteUser(ctx, userID); err != nil {
		log.Fatal(err)
	}
	if _, err := admin.GetUser(ctx, userID); errors.Is(err, client.ErrNotFound) {
		fmt.Println("user deleted")
	}
	// Output:
	// role: Reader
	// reader may read
	// reader may not write
	// user deleted
}
