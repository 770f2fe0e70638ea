package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -5234: "-5,234"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{"hello world": "hello world", "": `""`, "a\nb": `"a\nb"`, "tab\there": `"tab\there"`, "é ok": "é ok"} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	j := fs.Bool("json", false, "")
	c := fs.String("collection", "", "")
	pos, err := parseArgs(fs, []string{"2.5", "--json", "--collection", "c", "x", "--", "-y", "--json"})
	if err != nil || !*j || *c != "c" || strings.Join(pos, " ") != "2.5 x -y --json" {
		t.Errorf("parseArgs: %q %v json=%v collection=%q", pos, err, *j, *c)
	}
	if _, err := parseArgs(fs, []string{"--nope"}); !errors.Is(err, errUsage) {
		t.Errorf("an unknown flag: %v, want a usage error", err)
	}
	if _, err := parseArgs(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestRecordReader(t *testing.T) {
	rr := newRecordReader(strings.NewReader("one\r\n\ntwo\nlast"), false, "c")
	var got []string
	for {
		rec, err := rr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.collection != "c" || rec.index != int64(len(got)) {
			t.Errorf("record %+v", rec)
		}
		got = append(got, rec.contents)
	}
	if strings.Join(got, "|") != "one||two|last" {
		t.Errorf("lines %q", got)
	}
	long := newRecordReader(strings.NewReader(strings.Repeat("x", maxImportLine+10)+"\n"), false, "")
	if _, err := long.read(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a long line: %v", err)
	}
	for line, want := range map[string]string{
		`{"contents":"a"}`:                                         "default:a",
		`{"contents":"a","collectionId":"x"}`:                      "x:a",
		`{"transactionId":"2.5","collectionId":"x","contents":""}`: "x:",
		`{"contents":1}`:                                           "error",
		`{"collectionId":"x"}`:                                     "error",
		`{"contents":"a","collectionId":""}`:                       "error",
		`{"contents":"a"} {}`:                                      "error",
		`{"contents":"a","extra":1}`:                               "error",
		``:                                                         "error",
	} {
		c, contents, err := parseJSONLine([]byte(line), "default")
		if got := c + ":" + contents; err != nil && want != "error" || err == nil && got != want {
			t.Errorf("parseJSONLine(%s) = %q, %v; want %s", line, got, err, want)
		}
	}
}

func TestCountLines(t *testing.T) {
	for data, want := range map[string]int64{"": 0, "a": 1, "a\n": 1, "a\nb": 2, "\n\n": 2} {
		path := filepath.Join(t.TempDir(), "f")
		os.WriteFile(path, []byte(data), 0o644)
		f, _ := os.Open(path)
		n, err := countLines(f)
		f.Close()
		if err != nil || n != want {
			t.Errorf("countLines(%q) = %d, %v; want %d", data, n, err, want)
		}
	}
}

func TestImportStateCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	good := importState{Version: importStateVersion, Lines: 2, Recent: []string{"2.3", "2.5"}, LastTransactionID: "2.5",
		Window: 8, Limit: 8 + checkpointSlack, PrefixSHA256: "x"}
	if err := good.save(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, err := loadImportState(path); err != nil || st.Lines != 2 {
		t.Fatalf("load: %+v, %v", st, err)
	}
	if st, err := loadImportState(path + ".missing"); st != nil || err != nil {
		t.Errorf("a missing state: %+v, %v", st, err)
	}
	for name, mutate := range map[string]func(*importState){
		"version":   func(s *importState) { s.Version = 9 },
		"recent":    func(s *importState) { s.Recent = s.Recent[:1] },
		"last":      func(s *importState) { s.LastTransactionID = "2.3" },
		"window":    func(s *importState) { s.Window = 0 },
		"limit":     func(s *importState) { s.Limit = 1 },
		"bad tx id": func(s *importState) { s.Floor = "two" },
	} {
		bad := good
		bad.Recent = append([]string(nil), good.Recent...)
		mutate(&bad)
		bad.save(path, time.Now())
		if _, err := loadImportState(path); err == nil {
			t.Errorf("%s: a bad state loads", name)
		}
	}
	os.WriteFile(path, []byte(`{"version":1,"lines":`), 0o644)
	if _, err := loadImportState(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("a torn state: %v", err)
	}
}

func TestTokenFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	src := &tokenFileSource{path: path}
	if _, err := src.Token(); err == nil {
		t.Error("a missing token file gives a token")
	}
	os.WriteFile(path, []byte("bearer abc.def.ghi\n"), 0o600)
	if tok, err := src.Token(); err != nil || tok.AccessToken != "abc.def.ghi" {
		t.Errorf("token %+v, %v", tok, err)
	}
	os.WriteFile(path, []byte("two tokens"), 0o600)
	os.Chtimes(path, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if _, err := src.Token(); err == nil {
		t.Error("a file of two words gives a token")
	}
}

func TestProgressCount(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, on: true}
	p.count(5234, 10000, "lines")
	if got := buf.String(); !strings.Contains(got, " 52.3% 5,234/10,000 lines") || !strings.HasPrefix(got, "\r[") {
		t.Errorf("bar %q", got)
	}
	buf.Reset()
	off := newProgress(&buf, true) // not a terminal
	off.count(1, 2, "lines")
	if buf.Len() != 0 {
		t.Errorf("a bar on a non-terminal: %q", &buf)
	}
}

// FuzzRecordReader checks that any input splits into records without
// panicking, and that plain lines come back as written.
func FuzzRecordReader(f *testing.F) {
	f.Add([]byte("a\r\nb\n{\"contents\":\"x\"}\n"), true)
	f.Add([]byte("\n\n\x00\xff"), false)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		rr := newRecordReader(bytes.NewReader(data), jsonl, "")
		var raws [][]byte
		for {
			rec, err := rr.read()
			if err != nil {
				break
			}
			if bytes.IndexByte(rec.raw, '\n') >= 0 {
				t.Fatalf("record %q holds a newline", rec.raw)
			}
			raws = append(raws, rec.raw)
		}
		if !jsonl && !bytes.Contains(data, []byte("\r")) {
			joined := bytes.Join(raws, []byte("\n"))
			if trimmed := bytes.TrimSuffix(data, []byte("\n")); !bytes.Equal(joined, trimmed) {
				t.Fatalf("lines %q do not rejoin into %q", raws, data)
			}
		}
	})
}
