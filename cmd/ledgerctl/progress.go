package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress draws a progress bar on stderr when it is a terminal.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	on   bool
	last time.Time
}

func newProgress(w io.Writer, enabled bool) *progress {
	f, ok := w.(*os.File)
	on := enabled && ok && isTerminal(f)
	return &progress{w: w, on: on}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(done, total int64) {
	if !p.on || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	const width = 40
	filled := int(float64(width) * float64(done) / float64(total))
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d/%d MB", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		100*float64(done)/float64(total), done>>20, total>>20)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
