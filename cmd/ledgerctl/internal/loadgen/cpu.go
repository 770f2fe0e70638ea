package loadgen

import (
	"bytes"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// procCPU is the CPU time (user and system) of a process (0: this one) as
// /proc reports it, or -1 where there is no /proc. It assumes the usual
// USER_HZ of 100.
func procCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	} else if pid < 0 {
		return -1
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces) in
	// parentheses: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// cores is the CPU used between two procCPU readings over d, or -1.
func cores(a, b, d time.Duration) float64 {
	if a < 0 || b < 0 || d <= 0 {
		return -1
	}
	return math.Round(float64(b-a)/float64(d)*100) / 100
}
