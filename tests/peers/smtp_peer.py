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


def self_signed_context(directory):
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def main():
    path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else free_port()
    # SMTP_PEER_TLS=implicit (SMTPS) or starttls (required); SMTP_PEER_AUTH=user:password.
    kwargs = {}
    tls = os.environ.get("SMTP_PEER_TLS", "")
    if tls:
        context = self_signed_context(os.path.dirname(os.path.abspath(path)))
        if tls == "implicit":
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
    credentials = os.environ.get("SMTP_PEER_AUTH", "")
    if credentials:
        from aiosmtpd.smtp import AuthResult

        user, password = credentials.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(tls)
    controller = Controller(Recorder(path), hostname="127.0.0.1", port=port, **kwargs)
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
