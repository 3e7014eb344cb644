// sds-translate: Envoy Gateway's own Gateway-API-to-xDS translation (the packages behind
// `egctl x translate`), with SDS Secret references enabled as an EnvoyGateway configured
// with `extensionApis.enableSDSSecretRef: true` has them. egctl v1.9.1 translates with
// that switch off (it refuses a Secret of type gateway.envoyproxy.io/sds), so the test
// runs egctl for that refusal and this for the translation itself.
//
// The module path sits under github.com/envoyproxy/gateway/ because Go only lets packages
// of that tree import its internal/ packages, which hold the translator.
//
// Usage: sds-translate < resources.yaml > xds.json
// Output: {"listenerConditions": [...], "xds": {"<type URL>": [<resource as protojson>...]}}
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"github.com/envoyproxy/gateway/internal/gatewayapi"
	"github.com/envoyproxy/gateway/internal/gatewayapi/resource"
	"github.com/envoyproxy/gateway/internal/logging"
	"github.com/envoyproxy/gateway/internal/xds/translator"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sds-translate:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	yamlBytes, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	resources, err := resource.LoadResourcesFromYAMLBytes(yamlBytes, false, nil)
	if err != nil {
		return err
	}
	if resources.GatewayClass == nil {
		return fmt.Errorf("the input needs a GatewayClass")
	}
	quiet := logging.DefaultLogger(io.Discard, egv1a1.LogLevelInfo)
	gt := &gatewayapi.Translator{
		GatewayControllerName:   string(resources.GatewayClass.Spec.ControllerName),
		GatewayClassName:        gwapiv1.ObjectName(resources.GatewayClass.Name),
		EndpointRoutingDisabled: true,
		SDSSecretRefEnabled:     true,
		Logger:                  quiet,
	}
	result, _ := gt.Translate(context.Background(), resources)

	type condition struct {
		Gateway, Listener, Type, Status, Reason, Message string
	}
	conditions := []condition{}
	for _, gw := range result.Gateways {
		for _, l := range gw.Status.Listeners {
			for _, c := range l.Conditions {
				conditions = append(conditions, condition{gw.Namespace + "/" + gw.Name, string(l.Name), c.Type, string(c.Status), c.Reason, c.Message})
			}
		}
	}
	xds := map[string][]json.RawMessage{}
	for key, ir := range result.XdsIR {
		xt := &translator.Translator{Logger: quiet}
		table, err := xt.Translate(context.Background(), ir)
		if err != nil {
			return fmt.Errorf("xds translation of %s: %w", key, err)
		}
		for typeURL, list := range table.XdsResources {
			for _, r := range list {
				b, err := protojson.Marshal(r)
				if err != nil {
					return err
				}
				xds[typeURL] = append(xds[typeURL], b)
			}
		}
	}
	return json.NewEncoder(out).Encode(map[string]any{"listenerConditions": conditions, "xds": xds})
}
