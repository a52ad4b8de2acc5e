"""Generated gRPC stubs (scripts/gen-protos.sh); do not edit."""
