#!/usr/bin/env python3
"""Test peer: hashes a password with implementations other than tessera's.

Usage: hash_vectors.py PASSWORD

Prints one JSON object {format_name: encoded_hash} with every import format Kratos accepts,
each made by Python libraries (argon2-cffi, bcrypt, hashlib, hmac, passlib, cryptography) and
written in the encoding Kratos reads. tests/api/hash_vectors.rs checks that tessera verifies
all of them. Exits 3 when a required module is missing (pip install argon2-cffi bcrypt passlib
cryptography).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sys

try:
    import argon2.low_level
    import bcrypt
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from passlib.hash import md5_crypt, sha256_crypt, sha512_crypt
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"missing python module: {e.name}", file=sys.stderr)
    sys.exit(3)


def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode()


def b64raw(data: bytes) -> str:
    """Standard base64 without padding."""
    return b64(data).rstrip("=")


def substitute(pattern: bytes, salt: bytes, password: bytes) -> bytes:
    """One pass over the pattern; the inserted text is not scanned again."""
    return re.sub(
        rb"\{SALT\}|\{PASSWORD\}",
        lambda m: salt if m.group(0) == b"{SALT}" else password,
        pattern,
    )


def argon2_hashes(pw: bytes) -> dict:
    out = {}
    for name, kind in (("argon2id", argon2.low_level.Type.ID), ("argon2i", argon2.low_level.Type.I)):
        out[name] = argon2.low_level.hash_secret(
            pw, os.urandom(16), time_cost=2, memory_cost=256, parallelism=2, hash_len=32, type=kind
        ).decode()
    return out


def bcrypt_hashes(pw: bytes) -> dict:
    made = bcrypt.hashpw(pw, bcrypt.gensalt(rounds=4)).decode()
    assert made.startswith("$2b$"), made
    rest = made[len("$2b$"):]
    return {
        "bcrypt-2b": made,
        "bcrypt-2a": "$2a$" + rest,
        "bcrypt-2y": "$2y$" + rest,
        "bcrypt-2z": "$2z$" + rest,
        "bcrypt-2": "$2$" + rest,
    }


def pbkdf2_hashes(pw: bytes) -> dict:
    out = {}
    # Kratos' names: sha224 and sha384 are SHA3-224 and SHA3-384; unknown digits mean SHA-256.
    for name, digest in (
        ("sha1", "sha1"),
        ("sha224", "sha3_224"),
        ("sha256", "sha256"),
        ("sha384", "sha3_384"),
        ("sha512", "sha512"),
        ("sha999", "sha256"),
    ):
        salt = os.urandom(16)
        key = hashlib.pbkdf2_hmac(digest, pw, salt, 1000, 32)
        out[f"pbkdf2-{name}"] = f"$pbkdf2-{name}$i=1000,l=32${b64raw(salt)}${b64raw(key)}"
    return out


def scrypt_hashes(pw: bytes) -> dict:
    salt = os.urandom(16)
    key = hashlib.scrypt(pw, salt=salt, n=1024, r=8, p=1, dklen=32)
    # Kratos reads `ln` as N itself.
    return {"scrypt": f"$scrypt$ln=1024,r=8,p=1${b64(salt)}${b64(key)}"}


def firescrypt_hashes(pw: bytes) -> dict:
    salt, separator, signer_key = os.urandom(12), b"\x07", os.urandom(64)
    mem_cost, rounds = 10, 8
    key = hashlib.scrypt(pw, salt=salt + separator, n=2**mem_cost, r=rounds, p=1, dklen=32)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    hashed = encryptor.update(signer_key) + encryptor.finalize()
    return {
        "firescrypt": f"$firescrypt$ln={mem_cost},r={rounds},p=1${b64(salt)}${b64(hashed)}"
        f"${b64(separator)}${b64(signer_key)}"
    }


def sha_hashes(pw: bytes) -> dict:
    out = {}
    for name in ("sha1", "sha256", "sha512"):
        for i, pattern in enumerate((b"{SALT}{PASSWORD}", b"{PASSWORD}$-{SALT}{SALT}")):
            salt = os.urandom(10)
            digest = hashlib.new(name, substitute(pattern, salt, pw)).digest()
            out[f"{name}-pf{i}"] = f"${name}$pf={b64(pattern)}${b64(salt)}${b64(digest)}"
    return out


def ssha_hashes(pw: bytes) -> dict:
    out = {}
    for tag, name in (("SSHA", "sha1"), ("SSHA256", "sha256"), ("SSHA512", "sha512")):
        salt = os.urandom(8)
        out[tag.lower()] = "{" + tag + "}" + b64(hashlib.new(name, pw + salt).digest() + salt)
    return out


def md5_hashes(pw: bytes) -> dict:
    pattern, salt = b"{PASSWORD}:{SALT}", os.urandom(6)
    return {
        "md5": f"$md5${b64(hashlib.md5(pw).digest())}",
        "md5-pf": f"$md5$pf={b64(pattern)}${b64(salt)}${b64(hashlib.md5(substitute(pattern, salt, pw)).digest())}",
    }


def unix_crypt_hashes(pw: bytes) -> dict:
    out = {}
    made = md5_crypt.hash(pw)
    assert made.startswith("$1$"), made
    out["md5-crypt"] = "$md5-crypt$" + made[len("$1$"):]
    for name, handler, ident in (("sha256-crypt", sha256_crypt, "$5$"), ("sha512-crypt", sha512_crypt, "$6$")):
        # 5000 rounds is the default and is left out of the hash; 1000 is written.
        for rounds in (5000, 1000):
            made = handler.using(rounds=rounds).hash(pw)
            assert made.startswith(ident), made
            out[f"{name}-{rounds}"] = f"${name}$" + made[len(ident):]
    return out


def hmac_hashes(pw: bytes) -> dict:
    out = {}
    names = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
    try:
        hashlib.new("md4")
        names.insert(0, "md4")
    except ValueError:
        pass  # OpenSSL 3 without the legacy provider; md4 is covered by a published vector
    for name in names:
        key = os.urandom(12)
        text = hmac.new(key, pw, name).hexdigest().encode()
        out[f"hmac-{name}"] = f"$hmac-{name}${b64(text)}${b64(key)}"
    return out


def main() -> None:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    pw = os.fsencode(sys.argv[1])  # the bytes as given, whatever the locale
    out = {}
    for make in (
        argon2_hashes,
        bcrypt_hashes,
        pbkdf2_hashes,
        scrypt_hashes,
        firescrypt_hashes,
        sha_hashes,
        ssha_hashes,
        md5_hashes,
        unix_crypt_hashes,
        hmac_hashes,
    ):
        out.update(make(pw))
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
