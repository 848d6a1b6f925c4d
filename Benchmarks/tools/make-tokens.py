#!/usr/bin/env python3
"""Makes the RS256 material of the token scenarios (run.sh --scenario token-*).

    make-tokens.py DIR [--fresh N] [--issuer URL] [--audience AUD] [--kid KID] [--lifetime S]

Writes into DIR:
  signing.key   RSA-2048 private key (PKCS#8 PEM) that signs every token
  public.pem    its public key (SubjectPublicKeyInfo PEM), for HAProxy's jwt_verify
  jwks.json     {"keys":[{"kty":"RSA","kid":..,"alg":"RS256","use":"sig","n":..,"e":"AQAB"}]}
  token.txt     one valid token (the "repeated" one)
  bad-signature.txt  that token with its signature's first byte changed
  fresh.txt     N valid tokens, one per line, each with its own jti (only with --fresh N)

Every token: header {"alg":"RS256","typ":"JWT","kid":KID}, payload {"iss","aud","sub",
"iat","nbf","exp": now + lifetime,"jti"}. Needs the `cryptography` package
(pip install cryptography). Signing costs ~1 ms per token per core; N tokens are
signed on every core.
"""
import argparse, base64, json, os, sys, time, uuid
from multiprocessing import Pool

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError:
    sys.exit("make-tokens.py needs the Python package 'cryptography' (pip install cryptography)")


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_int(n: int) -> str:
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


_key = None
_header = None
_claims = None


def _init(pem: bytes, header: str, claims: dict):
    global _key, _header, _claims
    _key = serialization.load_pem_private_key(pem, password=None)
    _header, _claims = header, claims


def _sign(jti: str) -> str:
    payload = dict(_claims, jti=jti)
    signing_input = _header + "." + b64u(json.dumps(payload, separators=(",", ":")).encode())
    sig = _key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64u(sig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--fresh", type=int, default=0)
    ap.add_argument("--issuer", default="https://idp.bench")
    ap.add_argument("--audience", default="bench")
    ap.add_argument("--kid", default="k1")
    ap.add_argument("--lifetime", type=int, default=3600)
    a = ap.parse_args()
    if not 0 <= a.fresh <= 2_000_000:
        sys.exit("--fresh must be in 0...2000000")
    os.makedirs(a.dir, exist_ok=True)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key()
    with open(os.path.join(a.dir, "signing.key"), "wb") as f:
        f.write(pem)
    with open(os.path.join(a.dir, "public.pem"), "wb") as f:
        f.write(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    nums = pub.public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": a.kid, "alg": "RS256", "use": "sig",
                      "n": b64u_int(nums.n), "e": b64u_int(nums.e)}]}
    with open(os.path.join(a.dir, "jwks.json"), "w") as f:
        json.dump(jwks, f)

    now = int(time.time())
    header = b64u(json.dumps({"alg": "RS256", "typ": "JWT", "kid": a.kid}, separators=(",", ":")).encode())
    claims = {"iss": a.issuer, "aud": a.audience, "sub": "bench-user",
              "iat": now, "nbf": now, "exp": now + a.lifetime}
    _init(pem, header, claims)
    token = _sign(str(uuid.uuid4()))
    with open(os.path.join(a.dir, "token.txt"), "w") as f:
        f.write(token + "\n")
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0x01
    with open(os.path.join(a.dir, "bad-signature.txt"), "w") as f:
        f.write(f"{head}.{payload}.{b64u(bytes(raw))}\n")

    if a.fresh:
        jtis = [str(uuid.uuid4()) for _ in range(a.fresh)]
        with Pool(os.cpu_count() or 1, initializer=_init, initargs=(pem, header, claims)) as pool, \
                open(os.path.join(a.dir, "fresh.txt"), "w") as f:
            for t in pool.imap(_sign, jtis, chunksize=500):
                f.write(t + "\n")


if __name__ == "__main__":
    main()
