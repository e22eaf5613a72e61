#!/usr/bin/python3
"""A catlip source stage in Python (type exec.source): emits --count
image-caption-like samples with a text field "txt" (as shards.source emits
captions) and an int-list field "n" = [i]. Each replica makes its share:
items i with i % replicas == replica.

    [stages.captions]
    type = "exec.source"
    command = ["/usr/bin/python3", "examples/python/captions_source.py", "--count", "100"]
"""
import argparse

import catlip_stage as cs

CAPTIONS = [
    "a photo of a dog on the grass",
    "a cat asleep on a red sofa",
    "two dogs playing with a ball",
    "a bicycle leaning on a wall",
    "a small bird in the sky",
]

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--count", type=int, default=100)
args = parser.parse_args()

hello = cs.info()
replica, replicas = hello["replica"], hello["replicas"]
for i in range(replica, args.count, replicas):
    cs.emit(cs.Sample("cap%06d" % i, {"txt": CAPTIONS[i % len(CAPTIONS)], "n": [i]},
                      url="captions_source", shard=replica, index=i))
