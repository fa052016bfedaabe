package main

import (
	"math"
	"slices"
)

// median returns the middle of the values that are numbers (the mean of
// the two middle ones for an even count), or NaN when there are none.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	mid := len(v) / 2
	if len(v)%2 == 1 {
		return v[mid]
	}
	return (v[mid-1] + v[mid]) / 2
}

// ratio returns a/b, or NaN when either is not a number or b is not
// positive.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b <= 0 {
		return math.NaN()
	}
	return a / b
}

// maxFloat returns the largest value that is a number, or NaN.
func maxFloat(xs []float64) float64 {
	m := math.NaN()
	for _, x := range xs {
		if !math.IsNaN(x) && (math.IsNaN(m) || x > m) {
			m = x
		}
	}
	return m
}

// num is x for JSON: nil (null) when x is not a number.
func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// val is the value behind a JSON number, NaN for null.
func val(x *float64) float64 {
	if x == nil {
		return math.NaN()
	}
	return *x
}
