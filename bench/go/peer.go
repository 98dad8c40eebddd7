// peer: the Go peer of the greenworld bench: the same cases with goroutines instead of pthreads,
// printing the same "RESULT key=value" lines. bench/run builds it when `go` is installed and
// runs it with GOMAXPROCS=1 (Go code on one OS thread, as greenworld).
//
//	peer spawn seq|batch [N]
//	peer pingpong socketpair|pipe|chan|cond [N]
//	peer proc spawn|system T [N]  T goroutines share N runs of /bin/true (spawn) or sh -c true
//	                              (system), each started and waited for (os.StartProcess + Wait)
//	peer sleepers [N] [K] [MS]
//	peer echo              (prints "PORT <n>", then a goroutine per connection until killed)
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func arg(i int, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil {
			return v
		}
	}
	return def
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func spawn(mode string, n int) {
	var wg sync.WaitGroup
	noop := func() { wg.Done() }
	t0 := time.Now()
	if mode == "batch" {
		wg.Add(n)
		for i := 0; i < n; i++ {
			go noop()
		}
		wg.Wait()
	} else {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go noop()
			wg.Wait()
		}
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	fmt.Printf("RESULT ns_per_op=%.1f threads=%d mode=%s\n", ns, n, mode)
}

func fileConn(fd int, name string) net.Conn {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	if err != nil {
		die("peer: FileConn: %v", err)
	}
	f.Close()
	return c
}

// streamPingPong starts the two sides of a byte ping-pong over streams: b echoes what it reads
// from br on bw; a writes on aw, reads the echo from ar, and times n round trips into elapsed.
func streamPingPong(wg *sync.WaitGroup, elapsed *time.Duration, n int, ar io.Reader, aw io.Writer, br io.Reader, bw io.Writer) {
	go func() {
		defer wg.Done()
		buf := make([]byte, 1)
		for i := 0; i < n; i++ {
			if _, err := br.Read(buf); err != nil {
				die("peer: read: %v", err)
			}
			if _, err := bw.Write(buf); err != nil {
				die("peer: write: %v", err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := []byte{'x'}
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if _, err := aw.Write(buf); err != nil {
				die("peer: write: %v", err)
			}
			if _, err := ar.Read(buf); err != nil {
				die("peer: read: %v", err)
			}
		}
		*elapsed = time.Since(t0)
	}()
}

func pingpong(mode string, n int) {
	var elapsed time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	switch mode {
	case "socketpair":
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			die("peer: socketpair: %v", err)
		}
		a, b := fileConn(fds[0], "a"), fileConn(fds[1], "b")
		streamPingPong(&wg, &elapsed, n, a, a, b, b)
	case "pipe":
		ar, bw, err := os.Pipe()
		if err != nil {
			die("peer: pipe: %v", err)
		}
		br, aw, err := os.Pipe()
		if err != nil {
			die("peer: pipe: %v", err)
		}
		streamPingPong(&wg, &elapsed, n, ar, aw, br, bw)
	case "chan":
		ping, pong := make(chan byte), make(chan byte)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				pong <- <-ping
			}
		}()
		go func() {
			defer wg.Done()
			t0 := time.Now()
			for i := 0; i < n; i++ {
				ping <- 'x'
				<-pong
			}
			elapsed = time.Since(t0)
		}()
	case "cond":
		var mu sync.Mutex
		toA, toB := sync.NewCond(&mu), sync.NewCond(&mu)
		turn := 0
		go func() {
			defer wg.Done()
			mu.Lock()
			for i := 0; i < n; i++ {
				for turn != 1 {
					toB.Wait()
				}
				turn = 0
				toA.Signal()
			}
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			t0 := time.Now()
			mu.Lock()
			for i := 0; i < n; i++ {
				turn = 1
				toB.Signal()
				for turn != 0 {
					toA.Wait()
				}
			}
			mu.Unlock()
			elapsed = time.Since(t0)
		}()
	default:
		die("usage: peer pingpong socketpair|pipe|chan|cond [N]")
	}
	wg.Wait()
	ns := float64(elapsed.Nanoseconds()) / float64(n)
	fmt.Printf("RESULT ns_per_op=%.1f round_trips=%d mode=%s\n", ns, n, mode)
}

func sleepers(n, k, ms int) {
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			for j := 0; j < k; j++ {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	wall := float64(time.Since(t0).Nanoseconds()) / 1e6
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("RESULT wall_ms=%.1f maxrss_kb=%d ideal_ms=%d threads=%d\n", wall, ru.Maxrss, k*ms, n)
}

// proc: the Go counterpart of bench/spawnproc.c; the children inherit stdin, stdout, stderr and
// the environment, as posix_spawn's and system's do.
func proc(mode string, threads, n int) {
	path, argv := "/bin/true", []string{"true"}
	if mode == "system" {
		path, argv = "/bin/sh", []string{"sh", "-c", "true"}
	} else if mode != "spawn" {
		die("usage: peer proc spawn|system T [N]")
	}
	if threads < 1 || n < threads {
		die("usage: peer proc spawn|system T [N]  (T >= 1, N >= T)")
	}
	attr := &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	one := func() {
		p, err := os.StartProcess(path, argv, attr)
		if err != nil {
			die("peer: start %s: %v", path, err)
		}
		st, err := p.Wait()
		if err != nil || !st.Success() {
			die("peer: wait %s: %v %v", path, st, err)
		}
	}
	for i := 0; i < 10; i++ {
		one()
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(threads)
	for t := 0; t < threads; t++ {
		k := n / threads
		if t < n%threads {
			k++
		}
		go func(k int) {
			defer wg.Done()
			<-start
			for i := 0; i < k; i++ {
				one()
			}
		}(k)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	fmt.Printf("RESULT ns_per_op=%.1f processes=%d threads=%d mode=%s\n", ns, n, threads, mode)
}

func echo() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("peer: listen: %v", err)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(c)
	}
}

func main() {
	if len(os.Args) < 2 {
		die("usage: peer spawn|pingpong|proc|sleepers|echo ...")
	}
	sub := ""
	if len(os.Args) > 2 {
		sub = os.Args[2]
	}
	switch os.Args[1] {
	case "spawn":
		spawn(sub, arg(3, 10000))
	case "pingpong":
		pingpong(sub, arg(3, 200000))
	case "sleepers":
		sleepers(arg(2, 10000), arg(3, 10), arg(4, 10))
	case "proc":
		proc(sub, arg(3, 1), arg(4, 1000))
	case "echo":
		echo()
	default:
		die("usage: peer spawn|pingpong|proc|sleepers|echo ...")
	}
}
