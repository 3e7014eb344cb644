"""StreamSecrets and FetchSecrets against our server with Python grpcio (gRPC C-core,
the library inside Envoy's google_grpc client). Messages travel as raw bytes: the Node
test encodes requests and decodes responses with the upstream protos.

usage: grpcio_client.py ADDRESS STREAM_REQUEST_HEX FETCH_REQUEST_HEX [ROOT_CA CLIENT_CERT CLIENT_KEY]
(PEM files: with them the call is mTLS, else h2c)
prints one JSON object: the first StreamSecrets response (hex), and the status of a
gzip-compressed FetchSecrets call.
"""
import json
import sys

import grpc

SDS = "/envoy.service.secret.v3.SecretDiscoveryService/"


def main() -> int:
    address, request, fetch_request = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
    # Keepalive as the shipped envoy-config/ sends it: a ping every 30 s.
    options = [("grpc.keepalive_time_ms", 30000), ("grpc.keepalive_timeout_ms", 5000)]
    if len(sys.argv) > 6:
        root, cert, key = (open(p, "rb").read() for p in sys.argv[4:7])
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)
        channel = grpc.secure_channel(address, creds, options + [("grpc.ssl_target_name_override", "localhost")])
    else:
        channel = grpc.insecure_channel(address, options)
    with channel:
        stream = channel.stream_stream(SDS + "StreamSecrets")
        call = stream(iter([request]), timeout=20)
        first = next(call)
        call.cancel()
        fetch = channel.unary_unary(SDS + "FetchSecrets")
        fetch_details = ""
        try:
            fetch(fetch_request, timeout=20, compression=grpc.Compression.Gzip)
            fetch_status = "OK"
        except grpc.RpcError as err:
            fetch_status = err.code().name
            fetch_details = err.details()
    print(json.dumps({"response": first.hex(), "fetchStatus": fetch_status, "fetchDetails": fetch_details}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
