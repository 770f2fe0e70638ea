package loadgen

import (
	"math"
	"slices"
	"time"
)

// LatencySummary is a latency distribution, in milliseconds.
type LatencySummary struct {
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// summarize sorts d and returns its nearest-rank percentiles.
func summarize(d []time.Duration) LatencySummary {
	if len(d) == 0 {
		return LatencySummary{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return ms(d[max(0, min(i, len(d)-1))])
	}
	var total time.Duration
	for _, x := range d {
		total += x
	}
	return LatencySummary{
		Mean: ms(total / time.Duration(len(d))),
		P50:  q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999),
		Max: ms(d[len(d)-1]),
	}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }
func round3(x float64) float64   { return math.Round(x*1000) / 1000 }
