#!/usr/bin/env python3
"""Independent cross-check of one Web Push request (RFC 8291 payload, RFC 8292 VAPID).

Owns: decrypting what the QuickTalk server sent with PyPI's `http_ece` (a second,
unrelated implementation of RFC 8188 aes128gcm) and verifying the VAPID JWT with
`cryptography`, so the Rust tests do not only check the server against our own
test decryptor. Used by crates/quicktalk/tests/process/push.rs.

stdin: one JSON object
  {"private_key": b64url raw 32-byte P-256 scalar of the subscriber,
   "auth": b64url 16-byte auth secret,
   "body": b64url encrypted body as POSTed,
   "authorization": "vapid t=<JWT>, k=<b64url key>",
   "audience": "http://127.0.0.1:PORT",
   "now": optional Unix time to check `exp` against (default: the clock),
   "json": optional, default true; false skips the "payload is JSON" check
           (for the RFC 8291 test vector, whose plaintext is plain text)}
stdout: the decrypted payload (JSON) exactly as decrypted, then a newline.
exit 0 on success; non-zero with a message on stderr on any failure.
"""

import base64
import json
import sys
import time

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_EXP_AHEAD = 24 * 60 * 60


class Failure(Exception):
    pass


def b64url(text):
    if not isinstance(text, str):
        raise Failure("expected a base64url string, got %r" % (text,))
    if "=" in text:
        raise Failure("base64url with padding: %r" % (text,))
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_vapid(header):
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "vapid":
        raise Failure("Authorization scheme is %r, not vapid" % (scheme,))
    params = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise Failure("malformed vapid parameter %r" % (part,))
        params[name.strip()] = value.strip()
    if "t" not in params or "k" not in params:
        raise Failure("vapid needs t= and k=, got %r" % (sorted(params),))
    return params["t"], params["k"]


def verify_vapid(header, audience, now):
    token, key_b64 = parse_vapid(header)
    key_bytes = b64url(key_b64)
    if len(key_bytes) != 65 or key_bytes[0] != 4:
        raise Failure("k is not an uncompressed P-256 point (%d bytes)" % len(key_bytes))
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_bytes)
    parts = token.split(".")
    if len(parts) != 3:
        raise Failure("JWT has %d parts" % len(parts))
    head = json.loads(b64url(parts[0]))
    claims = json.loads(b64url(parts[1]))
    signature = b64url(parts[2])
    if head.get("alg") != "ES256":
        raise Failure("JWT alg is %r" % (head.get("alg"),))
    if len(signature) != 64:
        raise Failure("ES256 signature is %d bytes, not 64" % len(signature))
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(
            der, (parts[0] + "." + parts[1]).encode("ascii"), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise Failure("JWT signature does not verify against k")
    if claims.get("aud") != audience:
        raise Failure("aud is %r, want %r" % (claims.get("aud"), audience))
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Failure("exp is not an integer: %r" % (exp,))
    if exp <= now:
        raise Failure("exp %d is not in the future (now %d)" % (exp, now))
    if exp > now + MAX_EXP_AHEAD:
        raise Failure("exp %d is more than 24 h ahead (now %d)" % (exp, now))
    sub = claims.get("sub")
    if not isinstance(sub, str) or not (sub.startswith("mailto:") or sub.startswith("https:")):
        raise Failure("sub is %r, not mailto: or https:" % (sub,))
    return claims


def main():
    request = json.load(sys.stdin)
    scalar = b64url(request["private_key"])
    if len(scalar) != 32:
        raise Failure("private_key is %d bytes, not 32" % len(scalar))
    private_key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    auth = b64url(request["auth"])
    body = b64url(request["body"])
    now = int(request.get("now") or time.time())
    verify_vapid(request["authorization"], request["audience"], now)
    try:
        plaintext = http_ece.decrypt(
            body, private_key=private_key, auth_secret=auth, version="aes128gcm"
        )
    except Exception as e:  # http_ece raises several kinds, InvalidTag among them
        raise Failure("http_ece could not decrypt: %s: %s" % (type(e).__name__, e))
    if request.get("json", True):
        try:
            json.loads(plaintext.decode("utf-8"))
        except ValueError as e:
            raise Failure("decrypted body is not UTF-8 JSON (%s): %r" % (e, plaintext[:200]))
    # The decrypted bytes exactly as they are (checked above to be JSON), so the
    # caller can compare them byte for byte with its own decryption.
    sys.stdout.buffer.write(plaintext)
    sys.stdout.buffer.write(b"\n")


if __name__ == "__main__":
    try:
        main()
    except (Failure, KeyError, ValueError) as e:
        sys.stderr.write("crosscheck failed: %s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
