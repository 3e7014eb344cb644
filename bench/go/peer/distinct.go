package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// distinctFile is bench/distinct-materials.ts's file: sets[generation % len(sets)][i]
// is the material of secret bench-i, so both servers serve the same certificates.
type distinctFile struct {
	Sets [][]struct {
		Chain string `json:"chain"`
		Key   string `json:"key"`
	} `json:"sets"`
}

func readDistinct(path string, secrets int) ([][]material, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f distinctFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Sets) == 0 {
		return nil, fmt.Errorf("%s: no sets", path)
	}
	out := make([][]material, len(f.Sets))
	for g, set := range f.Sets {
		if len(set) < secrets {
			return nil, fmt.Errorf("%s: set %d has %d materials, fewer than %d secrets", path, g, len(set), secrets)
		}
		out[g] = make([]material, len(set))
		for i, m := range set {
			out[g][i] = material{chainPEM: []byte(m.Chain), keyPEM: []byte(m.Key)}
		}
	}
	return out, nil
}

// secretIndex is i of "bench-i".
func secretIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "bench-"))
	if err != nil {
		panic("not a bench secret name: " + name)
	}
	return i
}
