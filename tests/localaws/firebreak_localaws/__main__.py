"""Runs moto with Firebreak's extension: `MOTO_PORT=5000 python -m firebreak_localaws`."""

import os
import sys

from moto.server import main

from . import install

if __name__ == "__main__":
    port = os.environ.get("MOTO_PORT", "5000")
    install()
    main(["-H", "127.0.0.1", "-p", port] + sys.argv[1:])
