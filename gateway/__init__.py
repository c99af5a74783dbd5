"""The HTTP gateway: legacy Medic HTTP API -> gRPC."""
