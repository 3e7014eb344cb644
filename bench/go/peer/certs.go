package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// material is one TLS identity as Envoy receives it: a leaf-first PEM chain
// (leaf + intermediate CA) and the leaf's PKCS#8 private key.
type material struct {
	chainPEM []byte
	keyPEM   []byte
}

// newMaterial issues root -> intermediate -> leaf, all ECDSA P-256, and returns
// the chain Envoy would be given (leaf, intermediate; the root stays out as a
// real gateway would have it). About 1.5 KB of PEM in all.
func newMaterial(generation int) (material, error) {
	now := time.Now().Add(-time.Minute)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return material{}, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return material{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return material{}, err
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
		return n.SetBit(n, 126, 1) // fixed bit length, so sizes do not wander
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"SDS Bench"}, CommonName: "SDS Bench Root CA"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return material{}, err
	}
	root, _ := x509.ParseCertificate(rootDER)
	interTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"SDS Bench"}, CommonName: fmt.Sprintf("SDS Bench Intermediate CA G%d", generation%10)},
		NotBefore:             now,
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return material{}, err
	}
	inter, _ := x509.ParseCertificate(interDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"SDS Bench"}, CommonName: "gateway.bench.example.com"},
		DNSNames:     []string{"gateway.bench.example.com", "*.bench.example.com"},
		NotBefore:    now,
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		return material{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return material{}, err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interDER})...)
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return material{chainPEM: chain, keyPEM: key}, nil
}

// newMaterialSets returns `count` identities whose PEM sizes are identical
// (ECDSA signatures vary by a byte or two; we re-issue until they match), so a
// rotation changes content but not message size.
func newMaterialSets(count int) ([]material, error) {
	first, err := newMaterial(0)
	if err != nil {
		return nil, err
	}
	sets := []material{first}
	misses := 0
	for g := 1; len(sets) < count; g++ {
		if g > 100000 {
			return nil, fmt.Errorf("could not issue same-size certificate sets")
		}
		m, err := newMaterial(len(sets))
		if err != nil {
			return nil, err
		}
		if len(m.chainPEM) == len(first.chainPEM) && len(m.keyPEM) == len(first.keyPEM) {
			sets = append(sets, m)
			misses = 0
			continue
		}
		// A first set of a rare size (short ECDSA signatures) is hard to match: start
		// again from the size the new one has.
		if misses++; misses > 50 {
			first, sets, misses = m, []material{m}, 0
		}
	}
	return sets, nil
}
