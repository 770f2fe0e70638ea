package main

import (
	"strconv"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// ledgerctl get quotes contents that hold terminal escape sequences or
// bidirectional formatting characters, unless --raw (issue 9, item 15).
func TestGetEscapesTerminalControls(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	with := func(args ...string) []string { return append(args, l.flags()...) }
	for name, contents := range map[string]string{
		"escape sequence": "ok\x1b]0;pwned\x07\x1b[2J\x1b[31mred",
		"carriage return": "innocent\rEVIL",
		"bidi override":   "invoice \u202egpj.exe",
		"C1 CSI":          "a\u009b31mb",
	} {
		t.Run(name, func(t *testing.T) {
			var tx txOut
			ctl(with("append", "--json", "--wait", contents)...).decode(t, &tx)
			want := "transaction " + tx.TransactionID + ", collection subledger:0:\n" + strconv.Quote(contents) + "\n"
			if out := ctl(with("get", tx.TransactionID)...).ok(t); out != want {
				t.Errorf("get printed %q, want %q", out, want)
			}
			raw := "transaction " + tx.TransactionID + ", collection subledger:0:\n" + contents + "\n"
			if out := ctl(with("get", "--raw", tx.TransactionID)...).ok(t); out != raw {
				t.Errorf("get --raw printed %q, want %q", out, raw)
			}
		})
	}
	// Printable text, over several lines and with tabs, is printed as is.
	var tx txOut
	ctl(with("append", "--json", "--wait", "line one\n\tline two, ünïcödé")...).decode(t, &tx)
	if out := ctl(with("get", tx.TransactionID)...).ok(t); out != "transaction "+tx.TransactionID+", collection subledger:0:\nline one\n\tline two, ünïcödé\n" {
		t.Errorf("get printed %q", out)
	}
}
