#!/usr/bin/env python3
"""Parses Prometheus text exposition from stdin with the official Python client's parser
(prometheus_client.parser) and prints it as JSON: [{"name", "type", "help", "samples":
[{"name", "labels", "value"}]}]. Exits 1 with the parser's error when the text is invalid."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    families = [
        {
            "name": f.name,
            "type": f.type,
            "help": f.documentation,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples],
        }
        for f in text_string_to_metric_families(sys.stdin.read())
    ]
except Exception as e:  # the parser raises ValueError and others on bad input
    print(type(e).__name__ + ": " + str(e))
    sys.exit(1)
print(json.dumps(families))
