package main

import (
	"errors"
	"fmt"
	"sync"
)

// parallel runs fn for every i in [0, n) on workers goroutines and returns
// when all have returned. It returns fn's errors, in no particular order.
func parallel(n, workers int, fn func(i int) error) []error {
	next := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// firstErrors joins the first limit errors of errs and says how many there
// were in all; nil when there are none.
func firstErrors(errs []error, limit int) error {
	if len(errs) == 0 {
		return nil
	}
	shown := errs[:min(limit, len(errs))]
	return fmt.Errorf("%d failed, the first %d: %w", len(errs), len(shown), errors.Join(shown...))
}
