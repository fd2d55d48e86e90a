"""moto's S3 server with its requests applied one at a time.

    python3 moto_serial.py HOST PORT

moto checks If-None-Match / If-Match and then writes, without a lock: with
truly concurrent requests two conditional creates of one key can both
succeed (seen with 16 racers), which real S3 never allows. Applying each
request under one lock makes every request atomic, as on S3, while
connections are still served concurrently. Tests of the stores' own
races (several requests per operation) keep their power: only single
requests are made atomic.
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
