#!/usr/bin/python3
"""A catlip transform stage in Python (type exec.process): drops samples
whose caption matches a regular expression, passes the others unchanged.

    [stages.filter]
    type = "exec.process"
    inputs = ["captions"]
    command = ["/usr/bin/python3", "examples/python/caption_filter.py", "--drop", "\\\\bdogs?\\\\b"]

Samples without the caption field pass (counted as filter.no_caption).
"""
import argparse
import re

import catlip_stage as cs

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--drop", required=True, help="regular expression (Python re.search)")
parser.add_argument("--field", default="txt", help="text field holding the caption (default: txt)")
parser.add_argument("--ignore-case", action="store_true")
args = parser.parse_args()
pattern = re.compile(args.drop, re.IGNORECASE if args.ignore_case else 0)

for sample in cs.samples():
    caption = sample.get(args.field)
    if caption is None:
        cs.count("filter.no_caption")
    elif pattern.search(caption):
        cs.count("filter.dropped")
        continue
    cs.emit(sample)
