"""The worldtree agent: a remote executor that claims jobs from a worldtree server over gRPC."""
