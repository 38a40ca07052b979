#!/usr/bin/env python3
"""Makes a session cookie the way Ory Kratos does (gorilla/sessions CookieStore over
gorilla/securecookie, with Kratos' key pairs: hash key = the secret, block key = SHA-256 of
it), for tessera's migration tests. Standard library plus `cryptography` (AES-CTR).

  kratos_cookie.py SECRET NAME TOKEN   prints the cookie value holding {"session_token": TOKEN}
"""

import base64
import hashlib
import hmac
import os
import sys
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def gob_map(token):
    # encoding/gob of map[interface{}]interface{}{"session_token": token}: the map type's
    # definition (id 65), then the value: one entry, key and value as interface values
    # (type name "string", type id 6 zig-zagged, byte count, delta 0, length, bytes).
    typedef = bytes([0x0E, 0xFF, 0x81, 0x04, 0x01, 0x02, 0xFF, 0x82, 0x00, 0x01, 0x10, 0x01, 0x10, 0x00, 0x00])

    def iface(s):
        b = s.encode()
        return bytes([0x06]) + b"string" + bytes([0x0C, len(b) + 2, 0x00, len(b)]) + b

    body = bytes([0xFF, 0x82, 0x00, 0x01]) + iface("session_token") + iface(token)
    return typedef + bytes([len(body)]) + body


def main():
    secret, name, token = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(hashlib.sha256(secret).digest()), modes.CTR(iv)).encryptor()
    value = base64.urlsafe_b64encode(iv + enc.update(gob_map(token)) + enc.finalize())
    date = str(int(time.time())).encode()
    mac = hmac.new(secret, name.encode() + b"|" + date + b"|" + value, hashlib.sha256).digest()
    print(base64.urlsafe_b64encode(date + b"|" + value + b"|" + mac).decode())


if __name__ == "__main__":
    main()
