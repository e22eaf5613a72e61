# CTest "interop: ftfy ...": catlip's fix_text against ftfy.fix_text (6.3.1) on a
# 5,000-string sample of tools/python/ftfy_corpus.py; exit 77 without ftfy.
"""usage: test_ftfy.py SOURCE_DIR CATLIP_BINARY [--count N] [--min-agreement PCT]"""
import os
import sys

src, catlip = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, "tools", "python"))
try:
    import ftfy  # noqa: F401
except ImportError as e:
    print(f"SKIPPED: ftfy is not importable ({e}); `tools/setup.sh --test-deps` installs it")
    sys.exit(77)
if not os.access(catlip, os.X_OK):
    print(f"FAILED: no catlip binary at {catlip}")
    sys.exit(1)
import ftfy_parity  # noqa: E402

sys.argv = [sys.argv[0], "--catlip", catlip, "--count", "5000", "--seed", "7", "--min-agreement", "99.9"] + sys.argv[3:]
sys.exit(ftfy_parity.main())
