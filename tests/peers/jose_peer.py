#!/usr/bin/env python3
"""An independent JOSE implementation for tessera's tokenizer tests (PyJWT + cryptography).

  jose_peer.py keys DIR     writes private JWKS files DIR/{es256,es512,rs256,eddsa}.json made
                            by `cryptography`, each one key with `alg` and `kid`
  jose_peer.py verify       reads {"jwk": <private JWK>, "token": <JWS>} on stdin, verifies the
                            token with the JWK's public half and prints {"header", "claims"};
                            exits 1 (printing the reason) when the signature or form is wrong
"""

import json
import os
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def keys(directory):
    made = {
        "es256": ("ES256", ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)),
        "es512": ("ES512", ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP521R1()), as_dict=True)),
        "rs256": ("RS256", RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048), as_dict=True)),
        "eddsa": ("EdDSA", OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)),
    }
    for name, (alg, jwk) in made.items():
        jwk["alg"] = alg
        jwk["kid"] = "kid-" + name
        with open(os.path.join(directory, name + ".json"), "w") as f:
            json.dump({"keys": [jwk]}, f)


def verify():
    req = json.load(sys.stdin)
    jwk = req["jwk"]
    alg = jwk["alg"]
    private = jwt.PyJWK.from_dict(jwk).key
    public = private.public_key()
    try:
        header = jwt.get_unverified_header(req["token"])
        claims = jwt.decode(
            req["token"],
            key=public,
            algorithms=[alg],
            options={"verify_aud": False, "verify_exp": True, "verify_nbf": True, "verify_iat": True},
        )
    except jwt.PyJWTError as e:
        print(type(e).__name__ + ": " + str(e))
        sys.exit(1)
    print(json.dumps({"header": header, "claims": claims}))


if __name__ == "__main__":
    if sys.argv[1] == "keys":
        keys(sys.argv[2])
    elif sys.argv[1] == "verify":
        verify()
    else:
        sys.exit("usage: jose_peer.py keys DIR | verify")
