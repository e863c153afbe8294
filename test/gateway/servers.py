#!/usr/bin/python3
"""Real servers for the gateway's tests and benchmark (test/extra/gateway.sh, bench/gateway.sh).

  servers.py smtp PORT DIR [--count-only] [--delay SECONDS]
      An SMTP server (aiosmtpd) on 127.0.0.1:PORT.  Each message is written to DIR/NNNNNN.eml
      (atomically); with --count-only only DIR/count is kept up to date.  Recipients starting
      with "bounce" are refused with 550 5.1.1, "tempfail" with 451 4.3.0.
      --tls CERT KEY: offer STARTTLS with that certificate and require it before MAIL.
  servers.py http PORT DIR
      An HTTP server that records each POST (path, headers, body) as DIR/NNNNNN.json and
      answers 201 {"id": "..."}: the SMS provider's side of the wire.
  servers.py freeport
      Prints a free TCP port on 127.0.0.1.
Runs until SIGTERM.
"""
import json
import os
import signal
import socket
import sys
import threading
import time


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def smtp(port, folder, count_only, delay, tls=None):
    from aiosmtpd.controller import Controller
    import ssl

    lock = threading.Lock()
    state = {"n": 0}

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            local = address.split("@")[0].lower()
            if local.startswith("bounce"):
                return "550 5.1.1 no such mailbox"
            if local.startswith("tempfail"):
                return "451 4.3.0 try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            if delay:
                time.sleep(delay)
            with lock:
                state["n"] += 1
                n = state["n"]
                if count_only:
                    if n % 100 == 0:
                        write_atomic(os.path.join(folder, "count"), str(n).encode())
                else:
                    write_atomic(os.path.join(folder, "%06d.eml" % n), envelope.original_content)
            return "250 2.0.0 queued"

    extra = {}
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls[0], tls[1])
        extra = {"tls_context": ctx, "require_starttls": True}
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False,
                     data_size_limit=10 * 1024 * 1024, **extra)
    ctl.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.wait(0.2):
        pass
    with lock:
        write_atomic(os.path.join(folder, "count"), str(state["n"]).encode())
    ctl.stop()


def http(port, folder):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()
    state = {"n": 0}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            with lock:
                state["n"] += 1
                n = state["n"]
            rec = {"path": self.path, "headers": dict(self.headers), "body": body}
            write_atomic(os.path.join(folder, "%06d.json" % n), json.dumps(rec).encode())
            out = json.dumps({"id": "SM%06d" % n}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
    srv.serve_forever()


def main():
    if sys.argv[1] == "freeport":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    elif sys.argv[1] == "smtp":
        delay = 0.0
        if "--delay" in sys.argv:
            delay = float(sys.argv[sys.argv.index("--delay") + 1])
        tls = None
        if "--tls" in sys.argv:
            i = sys.argv.index("--tls")
            tls = (sys.argv[i + 1], sys.argv[i + 2])
        smtp(int(sys.argv[2]), sys.argv[3], "--count-only" in sys.argv, delay, tls)
    elif sys.argv[1] == "http":
        http(int(sys.argv[2]), sys.argv[3])


if __name__ == "__main__":
    main()
