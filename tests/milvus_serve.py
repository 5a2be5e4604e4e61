"""A real Milvus standalone server (the PyPI package `milvus`, 2.3) on loopback, run by
tests/milvus_fixtures.py with the interpreter of .venv-milvus (scripts/setup.sh makes it:
the server package needs setuptools<81 and marshmallow<4, which anyfind's venv does not
pin). Prints "started" once it answers; stops when its stdin closes. With `auth` it
requires credentials (user root, password Milvus: the server's default), as a real
deployment does.

    .venv-milvus/bin/python tests/milvus_serve.py BASE_DIR PORT [auth]
"""

import sys
import time

from milvus import MilvusServer

server = MilvusServer()
server.set_base_dir(sys.argv[1])
server.listen_port = int(sys.argv[2])
if sys.argv[3:] == ["auth"]:
    server.config.set("authorization_enabled", True)
began = time.monotonic()
server.start()
print(f"started in {time.monotonic() - began:.1f} s", flush=True)
sys.stdin.read()
server.stop()
