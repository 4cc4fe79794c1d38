#!/usr/bin/env python3
"""Independent computation of chainsig's key-derivation known answers.

Pure Python (hashlib + textbook secp256k1 arithmetic), sharing no code with the Rust crates,
so the Rust tests compare against values computed a second, unrelated way.
Run: python3 scripts/kat_derivation.py
"""
import hashlib

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
PREFIX = "near-mpc-recovery v0.1.0 epsilon derivation:"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return (x, (lam * (a[0] - x) - a[1]) % P)


def mul(k, pt):
    out = None
    while k:
        if k & 1:
            out = add(out, pt)
        pt = add(pt, pt)
        k >>= 1
    return out


def b58(data):
    n = int.from_bytes(data, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = B58[r] + s
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + s


def compressed(pt):
    return ("03" if pt[1] & 1 else "02") + f"{pt[0]:064x}"


def near(pt):
    return "secp256k1:" + b58(pt[0].to_bytes(32, "big") + pt[1].to_bytes(32, "big"))


root_secret = int.from_bytes(hashlib.sha256(b"chainsig test root key").digest(), "big") % N
root = mul(root_secret, G)
print(f"root secret {root_secret:064x}")
print(f"root compressed {compressed(root)}")
print(f"root near {near(root)}")
for account, path in [("alice.near", "ethereum-1"), ("bob.testnet", ""), ("dev-1.test.near", "bitcoin,1/ünï")]:
    tweak = int.from_bytes(hashlib.sha3_256((PREFIX + account + "," + path).encode()).digest(), "big")
    assert tweak < N
    derived = add(root, mul(tweak, G))
    print(f"{account!r} {path!r}")
    print(f"  tweak {tweak:064x}")
    print(f"  derived compressed {compressed(derived)}")
    print(f"  derived near {near(derived)}")
