"""The command line: one module per verb, each thin over the layer below."""
