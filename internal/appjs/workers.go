package appjs

// Calls run on worker goroutines whose stacks have already grown to what
// goja needs. A request's goroutine starts with a small stack, and growing
// it to goja's depth copies it several times: about as much CPU as a
// trivial call itself. Idle workers wait for the next call (at most
// maxIdleWorkers of them; beyond that a finished worker exits), so a burst
// of calls is never queued behind a busy worker.

const maxIdleWorkers = 64

var idleWorkers = make(chan chan func(), maxIdleWorkers)

// onWorker runs f on a worker goroutine and returns when it has returned.
// A panic in f is raised again in the caller.
func onWorker(f func()) {
	done := make(chan any, 1)
	job := func() {
		defer func() { done <- recover() }()
		f()
	}
	select {
	case w := <-idleWorkers:
		w <- job
	default:
		go worker(job)
	}
	if p := <-done; p != nil {
		panic(p)
	}
}

func worker(job func()) {
	jobs := make(chan func())
	for {
		job()
		select {
		case idleWorkers <- jobs:
		default:
			return
		}
		job = <-jobs
	}
}
