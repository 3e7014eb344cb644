//go:build tools

// Package tools pins trust-manager's own main (cmd/trust-manager), which the harness builds
// as it is: unlike cert-manager's, it lives in the module the proxy serves.
package tools

import _ "github.com/cert-manager/trust-manager/cmd/trust-manager"
