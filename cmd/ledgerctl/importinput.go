package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxImportLine bounds a line of an import's input: the ledger's request
// bodies are at most 1 MiB (ledgerd's entries at most 8 KiB).
const maxImportLine = 1 << 20

// importRecord is one line of an import's input: one entry to append.
type importRecord struct {
	// index is the line's number, from 0.
	index int64
	// raw is the line without its line ending, as hashed into the state.
	raw []byte
	// collection is the collection to append to ("" for the default).
	collection string
	// contents is the entry's contents.
	contents string
}

// recordReader reads the records of an import's input: one entry per line
// (a final "\r" is dropped with the "\n"; a last line needs no "\n"), or
// with --jsonl one JSON object per line, {"contents":...,"collectionId":...}
// (collectionId optional; a transactionId, as export writes, is ignored).
type recordReader struct {
	r          *bufio.Reader
	jsonl      bool
	collection string // --collection, the default
	next       int64  // index of the next record
}

func newRecordReader(r io.Reader, jsonl bool, collection string) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, 64<<10), jsonl: jsonl, collection: collection}
}

// read returns the next record, or io.EOF after the last.
func (rr *recordReader) read() (importRecord, error) {
	line, err := rr.readLine()
	if err != nil {
		return importRecord{}, err
	}
	rec := importRecord{index: rr.next, raw: line, collection: rr.collection, contents: string(line)}
	if rr.jsonl {
		if rec.collection, rec.contents, err = parseJSONLine(line, rr.collection); err != nil {
			return importRecord{}, fmt.Errorf("line %s: %w", commas(rr.next+1), err)
		}
	}
	rr.next++
	return rec, nil
}

// readLine returns the next line without its line ending.
func (rr *recordReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := rr.r.ReadSlice('\n')
		if len(line)+len(chunk) > maxImportLine+2 {
			return nil, fmt.Errorf("line %s is longer than %d bytes", commas(rr.next+1), maxImportLine)
		}
		line = append(line, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case err != nil && !errors.Is(err, io.EOF):
			return nil, fmt.Errorf("couldn't read line %s: %w", commas(rr.next+1), err)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// parseJSONLine parses a JSON line of --jsonl.
func parseJSONLine(line []byte, defaultCollection string) (collection, contents string, err error) {
	var v struct {
		Contents      *string `json:"contents"`
		CollectionID  *string `json:"collectionId"`
		TransactionID string  `json:"transactionId"` // export's; ignored
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return "", "", fmt.Errorf("not a JSON object {\"contents\":...,\"collectionId\":...}: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", "", errors.New("more than one JSON value")
	}
	switch {
	case v.Contents == nil:
		return "", "", errors.New(`no "contents"`)
	case v.CollectionID == nil:
		return defaultCollection, *v.Contents, nil
	case *v.CollectionID == "":
		return "", "", errors.New(`empty "collectionId"`)
	}
	return *v.CollectionID, *v.Contents, nil
}

// countLines returns the number of lines of a regular file, as
// recordReader splits it.
func countLines(f *os.File) (int64, error) {
	var n int64
	buf := make([]byte, 256<<10)
	last := byte('\n')
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte("\n")))
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last != '\n' {
		n++
	}
	_, err := f.Seek(0, io.SeekStart)
	return n, err
}
