package receipt_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/ledgerd/ledgerd/receipt"
)

// The service certificate is the trusted input: pin it, as Azure clients do
// with ledger_certificate_path. The receipt is untrusted.
func ExampleVerifyPEM() {
	data, err := os.ReadFile("../testdata/acl-receipt-2022-05-13.json")
	if err != nil {
		log.Fatal(err)
	}
	var v struct {
		ServiceCertificate string          `json:"serviceCertificate"`
		Receipt            json.RawMessage `json:"receipt"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		log.Fatal(err)
	}
	if err := receipt.VerifyPEM(v.Receipt, []byte(v.ServiceCertificate)); err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipt verified")
	// Output: receipt verified
}

func ExampleReceipt_Verify() {
	data, err := os.ReadFile("../testdata/acl-receipt-2022-05-13.json")
	if err != nil {
		log.Fatal(err)
	}
	var v struct {
		ServiceCertificate string `json:"serviceCertificate"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		log.Fatal(err)
	}
	serviceCert, err := receipt.ParseCertificatePEM([]byte(v.ServiceCertificate))
	if err != nil {
		log.Fatal(err)
	}
	r, err := receipt.Parse(data) // the file is an object with a "receipt" member
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Verify(serviceCert); err != nil {
		log.Fatal(err)
	}
	view, seqno, err := r.TransactionID()
	if err != nil {
		log.Fatal(err)
	}
	root, err := r.ComputeRoot()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("transaction %d.%d is in the ledger\n", view, seqno)
	fmt.Printf("root %x\n", root)
	// Output:
	// transaction 2.35 is in the ledger
	// root 283afa446263bcc3be31a980957fe3d0196494bf100df6774249f09d10755101
}
