package main

import (
	"fmt"
	"io"
	"os"

	"github.com/ledgerd/ledgerd/receipt"
)

func runVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	certPath := fs.String("service-cert", os.Getenv("LEDGER_SERVICE_CERT"), "service certificate (PEM) the receipt must chain to (env LEDGER_SERVICE_CERT)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ledgerctl verify --service-cert FILE RECEIPT.json\n\nRECEIPT.json is the whole GET .../receipt response or just its receipt object.\nA response with applicationClaims (api-version 2023-01-18-preview and later) has its claims checked\nagainst the receipt's claims digest too.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 || *certPath == "" {
		fs.Usage()
		return usagef("verify needs --service-cert and one receipt file")
	}
	certPEM, err := os.ReadFile(*certPath)
	if err != nil {
		return err
	}
	cert, err := receipt.ParseCertificatePEM(certPEM)
	if err != nil {
		return fmt.Errorf("service certificate: %w", err)
	}
	data, err := readInput(fs.Arg(0))
	if err != nil {
		return err
	}
	r, err := receipt.Parse(data)
	if err != nil {
		return fmt.Errorf("INVALID: %w", err)
	}
	claims, err := receipt.ParseApplicationClaims(data)
	if err != nil {
		return fmt.Errorf("INVALID: %w", err)
	}
	if err := r.Verify(cert); err != nil {
		return fmt.Errorf("INVALID: %w", err)
	}
	if claims != nil {
		if err := r.VerifyClaims(claims); err != nil {
			return fmt.Errorf("INVALID: %w", err)
		}
	}
	root, _ := r.ComputeRoot()
	what := "signature transaction"
	if r.LeafComponents != nil {
		what = "transaction"
		if v, s, err := r.TransactionID(); err == nil {
			what = fmt.Sprintf("transaction %d.%d", v, s)
		}
	}
	fmt.Fprintf(stdout, "OK: receipt of %s verifies: root %x signed by node %s, endorsed by the service certificate\n", what, root, r.NodeID)
	if claims != nil {
		fmt.Fprintf(stdout, "OK: its %d application claim(s) match the claims digest %s\n", len(claims), r.LeafComponents.ClaimsDigest)
	}
	return nil
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 2<<20))
	}
	return os.ReadFile(path)
}
