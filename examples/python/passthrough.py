#!/usr/bin/python3
"""The smallest catlip stage in Python: every sample passes unchanged."""
import catlip_stage as cs

for sample in cs.samples():
    cs.emit(sample)
