#!/usr/bin/env python3
"""A real SMTP server process for tessera's courier tests (aiosmtpd from PyPI).

    smtp_peer.py OUTFILE [PORT]

Listens on 127.0.0.1 (PORT, or one the OS picks), prints "PORT <n>" once it accepts
connections, and appends every received message to OUTFILE as one JSON line
{"from": …, "to": [...], "data": "<the raw message>"}. Recipients containing "reject" are
refused with 550. Runs until killed.
Exit status 3 when aiosmtpd is not installed.
"""

import email
import email.policy
import json
import os
import socket
import sys
import threading
import time

try:
    from aiosmtpd.controller import Controller
except ImportError:
    print("aiosmtpd is not installed (pip install aiosmtpd)", file=sys.stderr)
    sys.exit(3)

LOCK = threading.Lock()


class Recorder:
    def __init__(self, path):
        self.path = path

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Addresses with "reject" in them are refused for good (a permanent 5xx).
        if "reject" in address:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        entry = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "data": envelope.content.decode("utf-8", errors="replace"),
        }
        # The decoded parts, so tests read codes and links as the recipient would (benchmarks
        # switch this off with SMTP_PEER_PARSE=0).
        if os.environ.get("SMTP_PEER_PARSE") != "0":
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            entry["subject"] = str(message.get("Subject", ""))
            for part in message.walk():
                kind = part.get_content_type()
                if kind in ("text/plain", "text/html") and not part.is_multipart():
                    entry["text" if kind == "text/plain" else "html"] = part.get_content()
        # One write of the whole line, so a reader never sees half an entry.
        line = (json.dumps(entry) + "\n").encode("utf-8")
        with LOCK:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else free_port()
    controller = Controller(Recorder(path), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"PORT {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
