"""Where each Python integration test starts: the build directory it was given (tests/integration/test_*.sh
BUILD_DIR, run from the repository's root) and a temporary directory of its own, with the broker's data directory
in it, which the test removes when it is done."""
import os
import sys
import tempfile


def dirs():
    """(the build directory: the first argument, build/release without one; a new temporary directory; the data
    directory path inside it, not created: synclogd creates it)."""
    build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    root = tempfile.mkdtemp()
    return build, root, os.path.join(root, "data")
