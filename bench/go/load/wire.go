package main

import (
	"errors"
	"fmt"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const secretTypeURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

// Field numbers of envoy.service.discovery.v3.DiscoveryRequest/Response and
// google.protobuf.Any that the fast paths below read or write.
const (
	reqVersionInfo   = 1
	reqResourceNames = 3
	reqTypeURL       = 4
	reqResponseNonce = 5

	respVersionInfo = 1
	respResources   = 2
	respTypeURL     = 4
	respNonce       = 5

	anyTypeURL = 1
	anyValue   = 2
)

// The load client keeps its own CPU low: requests are pre-encoded bytes and
// responses are scanned for the few top-level fields it needs instead of being
// decoded in full. This codec replaces the default "proto" codec of this binary,
// so the content-type on the wire stays plain "application/grpc".
//   - Marshal: rawMsg goes out as is; any proto.Message is proto-marshalled.
//   - Unmarshal: *respView is scanned; any proto.Message is proto-unmarshalled.
type rawCodec struct{}

type rawMsg []byte

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case rawMsg:
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // valid only until we return: scan copies what it keeps
	} else {
		b = data.Materialize()
	}
	switch m := v.(type) {
	case *respView:
		return m.scan(b)
	case proto.Message:
		return proto.Unmarshal(b, m)
	}
	return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
}

func init() { encoding.RegisterCodecV2(rawCodec{}) }

// respView is what the client keeps of a DiscoveryResponse.
type respView struct {
	version   string
	nonce     string
	typeURL   string
	resources int
	// keepFirst asks scan to copy the first resource (an Any) into first, for
	// verification of a stream's first response.
	keepFirst bool
	first     []byte
}

func (r *respView) scan(b []byte) error {
	r.version, r.nonce, r.typeURL, r.resources, r.first = "", "", "", 0, nil
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			switch num {
			case respVersionInfo:
				r.version = string(v)
			case respNonce:
				r.nonce = string(v)
			case respTypeURL:
				r.typeURL = string(v)
			case respResources:
				if r.resources == 0 && r.keepFirst {
					r.first = append([]byte(nil), v...)
				}
				r.resources++
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

// verifySecret checks a response resource (an Any) the way Envoy would before
// using it: right type URL, a Secret with the requested name, a tls_certificate
// whose chain and key are both set.
func verifySecret(anyBytes []byte, name string) error {
	var a struct{ typeURL, value []byte }
	b := anyBytes
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			switch num {
			case anyTypeURL:
				a.typeURL = v
			case anyValue:
				a.value = v
			}
		}
		b = b[m:]
	}
	if string(a.typeURL) != secretTypeURL {
		return fmt.Errorf("resource type %q, want %q", a.typeURL, secretTypeURL)
	}
	var s tlsv3.Secret
	if err := proto.Unmarshal(a.value, &s); err != nil {
		return fmt.Errorf("decoding Secret: %w", err)
	}
	if s.GetName() != name {
		return fmt.Errorf("secret name %q, want %q", s.GetName(), name)
	}
	tc := s.GetTlsCertificate()
	if tc == nil {
		return errors.New("secret has no tls_certificate")
	}
	if len(tc.GetCertificateChain().GetInlineBytes()) == 0 && tc.GetCertificateChain().GetInlineString() == "" {
		return errors.New("tls_certificate.certificate_chain is empty")
	}
	if len(tc.GetPrivateKey().GetInlineBytes()) == 0 && tc.GetPrivateKey().GetInlineString() == "" {
		return errors.New("tls_certificate.private_key is empty")
	}
	return nil
}

// firstRequest is what Envoy sends when an SDS stream opens: node, type URL,
// the one secret name, empty version, no nonce.
func firstRequest(nodeID, cluster, name string) (rawMsg, error) {
	b, err := proto.Marshal(&discovery.DiscoveryRequest{
		Node:          &core.Node{Id: nodeID, Cluster: cluster},
		TypeUrl:       secretTypeURL,
		ResourceNames: []string{name},
	})
	return rawMsg(b), err
}

// ackPrefix is the part of an ACK that never changes on a stream
// (resource_names, type_url, optionally node); ack appends version and nonce.
func ackPrefix(nodeID, cluster, name string, withNode bool) ([]byte, error) {
	req := &discovery.DiscoveryRequest{TypeUrl: secretTypeURL, ResourceNames: []string{name}}
	if withNode {
		req.Node = &core.Node{Id: nodeID, Cluster: cluster}
	}
	return proto.Marshal(req)
}

// ack builds a fresh ACK (gRPC may still hold the previous one's bytes).
func ack(prefix []byte, version, nonce string) rawMsg {
	b := make([]byte, 0, len(prefix)+len(version)+len(nonce)+8)
	b = append(b, prefix...)
	b = protowire.AppendTag(b, reqVersionInfo, protowire.BytesType)
	b = protowire.AppendString(b, version)
	b = protowire.AppendTag(b, reqResponseNonce, protowire.BytesType)
	b = protowire.AppendString(b, nonce)
	return rawMsg(b)
}
